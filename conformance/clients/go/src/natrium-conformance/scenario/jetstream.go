// JetStream scenarios through nats.go's JetStreamContext. The servers run
// with `-js -sd <fresh dir>` (Spec::jetstream() in the Rust harness). The
// expectations mirror the async-nats scenarios of the same names in
// conformance/tests/conformance/jetstream.rs (js_get_and_purge combines
// parts of js_msg_get, js_msg_delete and js_purge).
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// "natrium" or "nats-server": set by the Rust harness for the checks that
// differ between the two (KNOWN DIFFERENCE in conformance/DIFFERENCES.md).
var serverKind = os.Getenv("NATRIUM_CONFORMANCE_SERVER")

func jsConnect() (*nats.Conn, nats.JetStreamContext) {
	nc := connect()
	js, err := nc.JetStream(nats.MaxWait(3 * time.Second))
	must(err, "JetStream context")
	return nc, js
}

// The JetStream API error inside err (nil when there is none).
func apiError(err error) *nats.APIError {
	var ae *nats.APIError
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

// err must carry the API error code `code`.
func checkAPIErr(err error, code nats.ErrorCode, what string) *nats.APIError {
	check(err != nil, "%s: expected API error %d, got success", what, code)
	ae := apiError(err)
	check(ae != nil, "%s: expected API error %d, got %T %v", what, code, err, err)
	check(ae.ErrorCode == code, "%s: err_code %d (%q), want %d", what, ae.ErrorCode, ae.Description, code)
	return ae
}

func streamInfo(js nats.JetStreamContext, name string) *nats.StreamInfo {
	info, err := js.StreamInfo(name)
	must(err, "stream info "+name)
	return info
}

// (messages, bytes, first_seq, last_seq) of a stream state.
func stateOf(st nats.StreamState) string {
	return fmt.Sprintf("msgs=%d bytes=%d first=%d last=%d", st.Msgs, st.Bytes, st.FirstSeq, st.LastSeq)
}

func checkState(st nats.StreamState, msgs, bytes, first, last uint64, what string) {
	want := fmt.Sprintf("msgs=%d bytes=%d first=%d last=%d", msgs, bytes, first, last)
	check(stateOf(st) == want, "%s: state %s, want %s", what, stateOf(st), want)
}

// Like checkState without the byte count.
func checkCounts(st nats.StreamState, msgs, first, last uint64, what string) {
	check(st.Msgs == msgs && st.FirstSeq == first && st.LastSeq == last,
		"%s: state %s, want msgs=%d first=%d last=%d", what, stateOf(st), msgs, first, last)
}

func streamNames(js nats.JetStreamContext) []string {
	var names []string
	for n := range js.StreamNames() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Create (file storage), idempotent create, info, update, names, list,
// delete; info of a missing stream is nats.ErrStreamNotFound.
func jsStreamCrud() {
	nc, js := jsConnect()
	defer nc.Close()
	cfg := &nats.StreamConfig{Name: "CRUD", Subjects: []string{"crud.>"}, Storage: nats.FileStorage}
	step("create")
	info, err := js.AddStream(cfg)
	must(err, "add stream")
	c := info.Config
	check(c.Name == "CRUD", "name %q", c.Name)
	check(len(c.Subjects) == 1 && c.Subjects[0] == "crud.>", "subjects %v", c.Subjects)
	check(c.MaxMsgs == -1 && c.MaxBytes == -1 && c.MaxMsgsPerSubject == -1 && c.MaxConsumers == -1,
		"defaults: max_msgs %d max_bytes %d max_msgs_per_subject %d max_consumers %d",
		c.MaxMsgs, c.MaxBytes, c.MaxMsgsPerSubject, c.MaxConsumers)
	check(c.Duplicates == 2*time.Minute, "duplicate window %v", c.Duplicates)
	check(c.Replicas == 1, "replicas %d", c.Replicas)
	check(c.Storage == nats.FileStorage, "storage %v", c.Storage)
	check(c.Retention == nats.LimitsPolicy && c.Discard == nats.DiscardOld, "retention %v discard %v", c.Retention, c.Discard)
	checkState(info.State, 0, 0, 0, 0, "new stream")

	step("create again with the same config")
	_, err = js.AddStream(cfg)
	must(err, "add stream again with the same config")
	step("create with a different config")
	_, err = js.AddStream(&nats.StreamConfig{Name: "CRUD", Subjects: []string{"crud.>"}, MaxMsgs: 5})
	check(errors.Is(err, nats.ErrStreamNameAlreadyInUse), "different config: %v", err)
	checkAPIErr(err, nats.JSErrCodeStreamNameInUse, "different config")

	step("info")
	info = streamInfo(js, "CRUD")
	check(info.Config.Name == "CRUD" && info.Config.Storage == nats.FileStorage, "info config %+v", info.Config)

	step("update")
	upd := *cfg
	upd.MaxMsgs = 100
	upd.Subjects = []string{"crud.>", "crud2.*"}
	info, err = js.UpdateStream(&upd)
	must(err, "update stream")
	check(info.Config.MaxMsgs == 100, "updated max_msgs %d", info.Config.MaxMsgs)
	check(len(info.Config.Subjects) == 2, "updated subjects %v", info.Config.Subjects)
	check(streamInfo(js, "CRUD").Config.MaxMsgs == 100, "info after update")
	bad := upd
	bad.Storage = nats.MemoryStorage
	_, err = js.UpdateStream(&bad)
	checkAPIErr(err, 10052, "update of the storage type")
	_, err = js.UpdateStream(&nats.StreamConfig{Name: "NOPE"})
	check(errors.Is(err, nats.ErrStreamNotFound), "update of a missing stream: %v", err)

	step("names and list")
	_, err = js.AddStream(&nats.StreamConfig{Name: "CRUD_B", Subjects: []string{"crudb"}, Storage: nats.FileStorage})
	must(err, "add stream CRUD_B")
	names := streamNames(js)
	check(strings.Join(names, ",") == "CRUD,CRUD_B", "stream names %v", names)
	var listed []string
	for si := range js.StreamsInfo() {
		listed = append(listed, si.Config.Name)
	}
	sort.Strings(listed)
	check(strings.Join(listed, ",") == "CRUD,CRUD_B", "stream list %v", listed)
	name, err := js.StreamNameBySubject("crud2.x")
	must(err, "stream name by subject")
	check(name == "CRUD", "stream by subject crud2.x: %q", name)

	step("delete")
	must(js.DeleteStream("CRUD_B"), "delete stream")
	_, err = js.StreamInfo("CRUD_B")
	check(errors.Is(err, nats.ErrStreamNotFound), "info of a deleted stream: %v", err)
	check(strings.Contains(err.Error(), "stream not found"), "error text %q", err.Error())
	checkAPIErr(err, nats.JSErrCodeStreamNotFound, "info of a deleted stream")
	err = js.DeleteStream("CRUD_B")
	check(errors.Is(err, nats.ErrStreamNotFound), "delete of a deleted stream: %v", err)
	_, err = js.StreamInfo("MISSING")
	check(errors.Is(err, nats.ErrStreamNotFound), "info of a missing stream: %v", err)
	names = streamNames(js)
	check(strings.Join(names, ",") == "CRUD", "stream names after delete %v", names)

	step("create the deleted stream again")
	info, err = js.AddStream(&nats.StreamConfig{Name: "CRUD_B", Subjects: []string{"crudb"}, Storage: nats.FileStorage})
	must(err, "add the deleted stream again")
	checkState(info.State, 0, 0, 0, 0, "re-created stream")
}

// PubAcks carry the stream and increasing sequences; Nats-Msg-Id dedup;
// Nats-Expected-Last-Sequence mismatch; async publishes; headers stored;
// no stream for the subject.
func jsPublishAcks() {
	nc, js := jsConnect()
	defer nc.Close()
	_, err := js.AddStream(&nats.StreamConfig{Name: "ACKS", Subjects: []string{"acks.>"}, Storage: nats.FileStorage})
	must(err, "add stream")
	step("publish with acks")
	for i := uint64(1); i <= 3; i++ {
		ack, err := js.Publish("acks.a", []byte(fmt.Sprintf("m%d", i)))
		must(err, "publish")
		check(ack.Stream == "ACKS" && ack.Sequence == i && !ack.Duplicate, "ack %+v, want ACKS seq %d", *ack, i)
	}

	step("dedup with a message id")
	ack, err := js.Publish("acks.d", []byte("one"), nats.MsgId("id-1"))
	must(err, "publish id-1")
	check(ack.Sequence == 4 && !ack.Duplicate, "first id-1: %+v", *ack)
	ack, err = js.Publish("acks.d", []byte("one again"), nats.MsgId("id-1"))
	must(err, "publish id-1 again")
	check(ack.Stream == "ACKS" && ack.Sequence == 4 && ack.Duplicate, "duplicate id-1: %+v", *ack)
	ack, err = js.Publish("acks.e", []byte("other subject"), nats.MsgId("id-1"))
	must(err, "publish id-1 on another subject")
	check(ack.Sequence == 4 && ack.Duplicate, "id-1 on another subject: %+v", *ack)
	ack, err = js.Publish("acks.d", []byte("two"), nats.MsgId("id-2"))
	must(err, "publish id-2")
	check(ack.Sequence == 5 && !ack.Duplicate, "id-2: %+v", *ack)
	m, err := js.GetMsg("ACKS", 4)
	must(err, "get 4")
	check(string(m.Data) == "one", "seq 4 keeps the first payload: %q", m.Data)

	step("expected last sequence")
	_, err = js.Publish("acks.a", []byte("x"), nats.ExpectLastSequence(2))
	ae := checkAPIErr(err, nats.JSErrCodeStreamWrongLastSequence, "expected last sequence 2")
	check(strings.Contains(err.Error(), "wrong last sequence"), "error text %q", err.Error())
	check(ae.Description == "wrong last sequence: 5", "description %q", ae.Description)
	ack, err = js.Publish("acks.a", []byte("6"), nats.ExpectLastSequence(5))
	must(err, "publish with the right last sequence")
	check(ack.Sequence == 6, "ack %+v", *ack)
	_, err = js.Publish("acks.a", []byte("x"), nats.ExpectStream("OTHER"))
	checkAPIErr(err, 10060, "expected stream OTHER")

	step("async publishes")
	var futures []nats.PubAckFuture
	for i := 0; i < 3; i++ {
		f, err := js.PublishAsync("acks.async", []byte(fmt.Sprintf("async-%d", i)))
		must(err, "publish async")
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(wait):
		fail("async publishes not acked within %v", wait)
	}
	for i, f := range futures {
		select {
		case a := <-f.Ok():
			check(a.Stream == "ACKS" && a.Sequence == uint64(7+i), "async ack %d: %+v", i, *a)
		case err := <-f.Err():
			fail("async publish %d: %v", i, err)
		}
	}

	step("headers are stored")
	msg := nats.NewMsg("acks.h")
	msg.Header.Set("X-Custom", "v1")
	msg.Data = []byte("hdr")
	ack, err = js.PublishMsg(msg)
	must(err, "publish with headers")
	check(ack.Sequence == 10, "ack %+v", *ack)
	m, err = js.GetMsg("ACKS", 10)
	must(err, "get 10")
	check(m.Subject == "acks.h" && string(m.Data) == "hdr" && m.Header.Get("X-Custom") == "v1",
		"stored message %s %q %v", m.Subject, m.Data, m.Header)

	st := streamInfo(js, "ACKS").State
	checkCounts(st, 10, 1, 10, "after publishing")

	step("no stream for the subject")
	_, err = js.Publish("nostream.x", []byte("x"), nats.RetryAttempts(0))
	check(errors.Is(err, nats.ErrNoStreamResponse), "publish outside every stream: %v", err)
}

// The limits-based stream example: EVENTS on events.>, 6 sync and 6 async
// publishes, then MaxMsgs=10, MaxBytes=300, MaxAge=1s (figures as in the
// async-nats js_limits_example).
func jsLimitsExample() {
	nc, js := jsConnect()
	defer nc.Close()
	cfg := &nats.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: nats.FileStorage}
	_, err := js.AddStream(cfg)
	must(err, "add stream EVENTS")
	step("6 sync publishes")
	for _, s := range []string{"events.page_loaded", "events.mouse_clicked", "events.mouse_clicked",
		"events.page_loaded", "events.mouse_clicked", "events.input_focused"} {
		_, err := js.Publish(s, nil)
		must(err, "publish "+s)
	}
	step("6 async publishes")
	var futures []nats.PubAckFuture
	for _, s := range []string{"events.input_changed", "events.input_blurred", "events.key_pressed",
		"events.input_focused", "events.input_changed", "events.input_blurred"} {
		f, err := js.PublishAsync(s, nil)
		must(err, "publish async "+s)
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(wait):
		fail("async publishes not acked within %v", wait)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			fail("async publish %d: %v", i, err)
		}
	}
	checkState(streamInfo(js, "EVENTS").State, 12, 594, 1, 12, "12 messages")

	step("MaxMsgs=10")
	cfg.MaxMsgs = 10
	info, err := js.UpdateStream(cfg)
	must(err, "update MaxMsgs")
	check(info.Config.MaxMsgs == 10, "max_msgs %d", info.Config.MaxMsgs)
	checkState(info.State, 10, 496, 3, 12, "MaxMsgs=10")

	step("MaxBytes=300")
	cfg.MaxBytes = 300
	info, err = js.UpdateStream(cfg)
	must(err, "update MaxBytes")
	check(info.Config.MaxBytes == 300, "max_bytes %d", info.Config.MaxBytes)
	checkState(info.State, 6, 298, 7, 12, "MaxBytes=300")

	step("MaxAge=1s")
	cfg.MaxAge = time.Second
	// The duplicate window may not exceed max_age.
	cfg.Duplicates = time.Second
	info, err = js.UpdateStream(cfg)
	must(err, "update MaxAge")
	check(info.Config.MaxAge == time.Second, "max_age %v", info.Config.MaxAge)
	time.Sleep(1500 * time.Millisecond)
	deadline := time.Now().Add(3 * time.Second)
	st := streamInfo(js, "EVENTS").State
	for st.Msgs != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		st = streamInfo(js, "EVENTS").State
	}
	checkState(st, 0, 0, 13, 12, "after MaxAge")
}

// Get by sequence, last message by subject, delete a message, purge with a
// subject filter and purge all; counts via stream info.
func jsGetAndPurge() {
	nc, js := jsConnect()
	defer nc.Close()
	_, err := js.AddStream(&nats.StreamConfig{Name: "GP", Subjects: []string{"gp.>"}, Storage: nats.FileStorage})
	must(err, "add stream")
	for i, p := range [][2]string{{"gp.a", "a1"}, {"gp.b", "b1"}, {"gp.a", "a2"}, {"gp.b", "b2"}, {"gp.c", "c1"}} {
		ack, err := js.Publish(p[0], []byte(p[1]))
		must(err, "publish")
		check(ack.Sequence == uint64(i+1), "ack %+v", *ack)
	}

	step("get by sequence")
	m, err := js.GetMsg("GP", 2)
	must(err, "get 2")
	check(m.Sequence == 2 && m.Subject == "gp.b" && string(m.Data) == "b1", "seq 2: %d %s %q", m.Sequence, m.Subject, m.Data)
	check(!m.Time.IsZero() && time.Since(m.Time) < time.Minute, "time %v", m.Time)
	step("last message by subject")
	m, err = js.GetLastMsg("GP", "gp.a")
	must(err, "last gp.a")
	check(m.Sequence == 3 && string(m.Data) == "a2", "last gp.a: %d %q", m.Sequence, m.Data)
	_, err = js.GetMsg("GP", 99)
	check(errors.Is(err, nats.ErrMsgNotFound), "get 99: %v", err)
	_, err = js.GetLastMsg("GP", "gp.zzz")
	check(errors.Is(err, nats.ErrMsgNotFound), "last gp.zzz: %v", err)
	_, err = js.GetMsg("NOPE", 1)
	check(errors.Is(err, nats.ErrStreamNotFound), "get from a missing stream: %v", err)

	step("delete a message")
	must(js.DeleteMsg("GP", 3), "delete 3")
	info := streamInfo(js, "GP")
	checkCounts(info.State, 4, 1, 5, "after delete")
	check(info.State.NumDeleted == 1, "num_deleted %d", info.State.NumDeleted)
	_, err = js.GetMsg("GP", 3)
	check(errors.Is(err, nats.ErrMsgNotFound), "get deleted 3: %v", err)
	m, err = js.GetLastMsg("GP", "gp.a")
	if serverKind == "nats-server" {
		// KNOWN DIFFERENCE: nats-server 2.9.10's file store does not move a
		// subject's last sequence back when that message is deleted, so the
		// last message of gp.a (seq 1) is "not found". natrium returns seq 1.
		check(errors.Is(err, nats.ErrMsgNotFound), "last gp.a after deleting its last message (nats-server 2.9.10): %v", err)
	} else {
		must(err, "last gp.a after delete")
		check(m.Sequence == 1, "last gp.a after delete: %d", m.Sequence)
	}
	check(js.DeleteMsg("GP", 99) != nil, "delete of a missing sequence must fail")

	step("purge with a subject filter")
	must(js.PurgeStream("GP", &nats.StreamPurgeRequest{Subject: "gp.a"}), "purge gp.a")
	checkCounts(streamInfo(js, "GP").State, 3, 2, 5, "after purging gp.a")
	_, err = js.GetLastMsg("GP", "gp.a")
	check(errors.Is(err, nats.ErrMsgNotFound), "last gp.a after purge: %v", err)
	m, err = js.GetLastMsg("GP", "gp.b")
	must(err, "last gp.b after purge")
	check(m.Sequence == 4, "last gp.b: %d", m.Sequence)

	step("purge all")
	must(js.PurgeStream("GP"), "purge")
	checkState(streamInfo(js, "GP").State, 0, 0, 6, 5, "after purge")
	ack, err := js.Publish("gp.a", []byte("after"))
	must(err, "publish after purge")
	check(ack.Sequence == 6, "seq after purge %d", ack.Sequence)
	checkCounts(streamInfo(js, "GP").State, 1, 6, 6, "after publishing again")
	err = js.PurgeStream("NOPE")
	checkAPIErr(err, nats.JSErrCodeStreamNotFound, "purge of a missing stream")
}

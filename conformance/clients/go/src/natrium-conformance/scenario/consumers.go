// JetStream consumer scenarios through nats.go: pull work queue, durable
// push resume, deliver policies, NAK/ack-wait/in-progress/term redelivery
// and max_deliver. The names match the async-nats scenarios in
// conformance/tests/conformance/consumers.rs.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Run f in a goroutine; the channel gets "" when it returns, else its
// failure (fail/check/must panic, which must not escape a goroutine).
func spawn(f func()) <-chan string {
	ch := make(chan string, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				if fl, ok := r.(failure); ok {
					ch <- fl.msg
				} else {
					ch <- fmt.Sprintf("panic: %v", r)
				}
				return
			}
			ch <- ""
		}()
		f()
	}()
	return ch
}

func metaOf(m *nats.Msg) *nats.MsgMetadata {
	md, err := m.Metadata()
	must(err, "metadata of a message on "+m.Subject)
	return md
}

func consumerInfo(js nats.JetStreamContext, stream, name string) *nats.ConsumerInfo {
	ci, err := js.ConsumerInfo(stream, name)
	must(err, "consumer info "+stream+"/"+name)
	return ci
}

// Consumer counters as one comparable line.
func consumerState(ci *nats.ConsumerInfo) string {
	return fmt.Sprintf("delivered=%d ack_floor=%d num_pending=%d num_ack_pending=%d",
		ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending)
}

func checkConsumer(ci *nats.ConsumerInfo, delivered, ackFloor, pending uint64, ackPending int, what string) {
	want := fmt.Sprintf("delivered=%d ack_floor=%d num_pending=%d num_ack_pending=%d", delivered, ackFloor, pending, ackPending)
	check(consumerState(ci) == want, "%s: consumer %s, want %s", what, consumerState(ci), want)
}

// Poll `get` until `ok` holds (bounded by `wait`); returns the last value.
func pollConsumer(get func() *nats.ConsumerInfo, ok func(*nats.ConsumerInfo) bool) *nats.ConsumerInfo {
	deadline := time.Now().Add(wait)
	ci := get()
	for !ok(ci) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		ci = get()
	}
	return ci
}

// A work-queue stream with one durable pull consumer shared by two workers
// (each on its own connection) fetching batches: every job is processed
// exactly once, the stream ends empty, the consumer has nothing pending.
func jsPullWorkQueue() {
	nc, js := jsConnect()
	defer nc.Close()
	_, err := js.AddStream(&nats.StreamConfig{Name: "WQ", Subjects: []string{"wq.>"},
		Retention: nats.WorkQueuePolicy, Storage: nats.FileStorage})
	must(err, "add stream")
	ci, err := js.AddConsumer("WQ", &nats.ConsumerConfig{Durable: "WORKERS", AckPolicy: nats.AckExplicitPolicy})
	must(err, "add consumer")
	check(ci.Name == "WORKERS" && ci.Config.AckPolicy == nats.AckExplicitPolicy && ci.Config.DeliverSubject == "",
		"consumer info %+v", ci.Config)

	const n = 120
	step("publish %d jobs", n)
	for i := 0; i < n; i++ {
		_, err := js.PublishAsync("wq.job", []byte(strconv.Itoa(i)))
		must(err, "publish async")
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(wait):
		fail("async publishes not acked within %v", wait)
	}
	checkCounts(streamInfo(js, "WQ").State, n, 1, n, "before the workers")
	checkConsumer(consumerInfo(js, "WQ", "WORKERS"), 0, 0, n, 0, "before the workers")

	step("two workers fetch batches and ack")
	subs := make([]*nats.Subscription, 2)
	for w := range subs {
		wnc, wjs := jsConnect()
		defer wnc.Close()
		subs[w], err = wjs.PullSubscribe("", "WORKERS", nats.Bind("WQ", "WORKERS"))
		must(err, "pull subscribe (bind)")
	}
	var mu sync.Mutex
	owner := map[int]int{}
	var counts [2]int
	deadline := time.Now().Add(15 * time.Second)
	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(owner) == n
	}
	worker := func(w int) {
		for !done() {
			check(time.Now().Before(deadline), "worker %d: jobs not all processed in time", w)
			msgs, err := subs[w].Fetch(7, nats.MaxWait(500*time.Millisecond))
			if errors.Is(err, nats.ErrTimeout) {
				continue
			}
			must(err, fmt.Sprintf("worker %d fetch", w))
			check(len(msgs) >= 1 && len(msgs) <= 7, "worker %d: batch of %d", w, len(msgs))
			for _, m := range msgs {
				md := metaOf(m)
				i, err := strconv.Atoi(string(m.Data))
				must(err, "job payload")
				check(md.Stream == "WQ" && md.Consumer == "WORKERS", "metadata %+v", md)
				check(md.Sequence.Stream == uint64(i+1), "job %d has stream sequence %d", i, md.Sequence.Stream)
				check(md.NumDelivered == 1, "job %d delivered %d times", i, md.NumDelivered)
				mu.Lock()
				prev, dup := owner[i]
				owner[i] = w
				counts[w]++
				mu.Unlock()
				check(!dup, "job %d processed twice (workers %d and %d)", i, prev, w)
				// One worker acks fire-and-forget, the other waits for the
				// server's confirmation.
				if w == 0 {
					must(m.Ack(), "ack")
				} else {
					must(m.AckSync(), "ack sync")
				}
			}
		}
	}
	results := []<-chan string{spawn(func() { worker(0) }), spawn(func() { worker(1) })}
	for _, r := range results {
		if msg := <-r; msg != "" {
			fail("%s", msg)
		}
	}
	step("jobs per worker %v", counts)
	check(len(owner) == n, "%d distinct jobs processed, want %d", len(owner), n)
	check(counts[0] > 0 && counts[1] > 0, "both workers must get jobs: %v", counts)
	for w, sub := range subs {
		msgs, err := sub.Fetch(1, nats.MaxWait(300*time.Millisecond))
		check(errors.Is(err, nats.ErrTimeout), "worker %d: fetch after all jobs: %d messages, %v", w, len(msgs), err)
	}

	step("stream is empty, consumer has nothing pending")
	deadline = time.Now().Add(wait)
	st := streamInfo(js, "WQ").State
	for st.Msgs != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		st = streamInfo(js, "WQ").State
	}
	checkState(st, 0, 0, n+1, n, "after the workers")
	ci = pollConsumer(func() *nats.ConsumerInfo { return consumerInfo(js, "WQ", "WORKERS") },
		func(ci *nats.ConsumerInfo) bool { return ci.NumAckPending == 0 })
	checkConsumer(ci, n, n, 0, 0, "after the workers")
	check(ci.NumRedelivered == 0, "num_redelivered %d", ci.NumRedelivered)
}

// A durable push consumer with a deliver subject (ack_wait 1s): the first
// connection gets all 10 messages, acks 1..5 and closes; a new connection
// binds to the same durable and gets exactly 6..10 (redelivered, so
// NumDelivered 2), and nothing more once it has acked them.
func jsPushDurableResume() {
	nc, js := jsConnect()
	defer nc.Close()
	_, err := js.AddStream(&nats.StreamConfig{Name: "PUSH", Subjects: []string{"push.>"}, Storage: nats.FileStorage})
	must(err, "add stream")
	for i := 1; i <= 10; i++ {
		_, err := js.Publish("push.m", []byte(fmt.Sprintf("m%d", i)))
		must(err, "publish")
	}
	ci, err := js.AddConsumer("PUSH", &nats.ConsumerConfig{Durable: "RESUME", DeliverSubject: "deliver.resume",
		AckPolicy: nats.AckExplicitPolicy, AckWait: time.Second})
	must(err, "add consumer")
	check(ci.Config.DeliverSubject == "deliver.resume" && ci.Config.AckWait == time.Second, "consumer config %+v", ci.Config)
	check(!ci.PushBound, "push_bound before any subscription")

	step("first connection gets 1..10, acks 1..5")
	nc1, js1 := jsConnect()
	sub1, err := js1.SubscribeSync("", nats.Bind("PUSH", "RESUME"))
	must(err, "bind the first connection")
	check(sub1.Subject == "deliver.resume", "bound to %q", sub1.Subject)
	for i := 1; i <= 10; i++ {
		m := next(sub1)
		md := metaOf(m)
		check(md.Sequence.Stream == uint64(i) && md.Sequence.Consumer == uint64(i) && md.NumDelivered == 1,
			"first connection message %d: stream seq %d consumer seq %d delivered %d",
			i, md.Sequence.Stream, md.Sequence.Consumer, md.NumDelivered)
		check(string(m.Data) == fmt.Sprintf("m%d", i), "payload %q", m.Data)
		if i <= 5 {
			must(m.AckSync(), "ack sync")
		}
	}
	ci = pollConsumer(func() *nats.ConsumerInfo { return consumerInfo(js, "PUSH", "RESUME") },
		func(ci *nats.ConsumerInfo) bool { return ci.PushBound })
	check(ci.PushBound, "push_bound while the first connection is subscribed")
	_, err = js.SubscribeSync("", nats.Bind("PUSH", "RESUME"))
	check(err != nil && strings.Contains(err.Error(), "already bound"), "second bind while bound: %v", err)
	checkConsumer(ci, 10, 5, 0, 5, "after acking half")
	nc1.Close()

	step("the consumer is unbound once the first connection is gone")
	ci = pollConsumer(func() *nats.ConsumerInfo { return consumerInfo(js, "PUSH", "RESUME") },
		func(ci *nats.ConsumerInfo) bool { return !ci.PushBound })
	check(!ci.PushBound, "push_bound after the first connection closed")

	step("second connection gets exactly 6..10")
	nc2, js2 := jsConnect()
	defer nc2.Close()
	sub2, err := js2.SubscribeSync("", nats.Bind("PUSH", "RESUME"))
	must(err, "bind the second connection")
	for i := 6; i <= 10; i++ {
		m := next(sub2)
		md := metaOf(m)
		check(md.Sequence.Stream == uint64(i) && md.NumDelivered == 2,
			"second connection: stream seq %d delivered %d, want seq %d delivered 2", md.Sequence.Stream, md.NumDelivered, i)
		check(string(m.Data) == fmt.Sprintf("m%d", i), "payload %q", m.Data)
		must(m.AckSync(), "ack sync")
	}
	// Longer than ack_wait: nothing acked comes back.
	noMsg(sub2, 1500*time.Millisecond)
	checkConsumer(consumerInfo(js, "PUSH", "RESUME"), 10, 10, 0, 0, "after the second connection")
}

type dpMsg struct{ subj, data string }

// Every deliver policy, with and without a filter subject: exactly which
// stream sequences arrive, with consumer sequences and num_pending.
func jsDeliverPolicies() {
	nc, js := jsConnect()
	defer nc.Close()
	_, err := js.AddStream(&nats.StreamConfig{Name: "DP", Subjects: []string{"dp.>"}, Storage: nats.FileStorage})
	must(err, "add stream")
	stored := map[uint64]dpMsg{1: {"dp.a", "a1"}, 2: {"dp.b", "b1"}, 3: {"dp.a", "a2"}, 4: {"dp.c", "c1"}, 5: {"dp.b", "b2"}}
	var startTime time.Time
	for seq := uint64(1); seq <= 5; seq++ {
		if seq == 4 {
			time.Sleep(100 * time.Millisecond)
			startTime = time.Now()
			time.Sleep(100 * time.Millisecond)
		}
		ack, err := js.Publish(stored[seq].subj, []byte(stored[seq].data))
		must(err, "publish")
		check(ack.Sequence == seq, "ack %+v", *ack)
	}

	expect := func(what string, sub *nats.Subscription, want []uint64) {
		for i, seq := range want {
			m := next(sub)
			md := metaOf(m)
			check(md.Sequence.Stream == seq, "%s: message %d has stream seq %d, want %v", what, i+1, md.Sequence.Stream, want)
			check(m.Subject == stored[seq].subj && string(m.Data) == stored[seq].data,
				"%s: seq %d is %s %q", what, seq, m.Subject, m.Data)
			check(md.Sequence.Consumer == uint64(i+1), "%s: seq %d has consumer seq %d", what, seq, md.Sequence.Consumer)
			check(md.NumDelivered == 1, "%s: seq %d delivered %d times", what, seq, md.NumDelivered)
			check(md.NumPending == uint64(len(want)-i-1), "%s: seq %d has num_pending %d, want %d",
				what, seq, md.NumPending, len(want)-i-1)
		}
		noMsg(sub, quiet)
	}
	// Each consumer is created before anything listens on its deliver
	// subject, so its num_pending is that of a consumer that has delivered
	// nothing yet; then a subscription binds to it.
	cases := []struct {
		what string
		cfg  nats.ConsumerConfig
		want []uint64
	}{
		{"all", nats.ConsumerConfig{DeliverPolicy: nats.DeliverAllPolicy}, []uint64{1, 2, 3, 4, 5}},
		{"last", nats.ConsumerConfig{DeliverPolicy: nats.DeliverLastPolicy}, []uint64{5}},
		{"last_per_subject", nats.ConsumerConfig{DeliverPolicy: nats.DeliverLastPerSubjectPolicy, FilterSubject: "dp.>"}, []uint64{3, 4, 5}},
		{"by_start_sequence 3", nats.ConsumerConfig{DeliverPolicy: nats.DeliverByStartSequencePolicy, OptStartSeq: 3}, []uint64{3, 4, 5}},
		{"by_start_time", nats.ConsumerConfig{DeliverPolicy: nats.DeliverByStartTimePolicy, OptStartTime: &startTime}, []uint64{4, 5}},
		{"all, filter dp.a", nats.ConsumerConfig{DeliverPolicy: nats.DeliverAllPolicy, FilterSubject: "dp.a"}, []uint64{1, 3}},
		{"last, filter dp.a", nats.ConsumerConfig{DeliverPolicy: nats.DeliverLastPolicy, FilterSubject: "dp.a"}, []uint64{3}},
		{"by_start_sequence 2, filter dp.a", nats.ConsumerConfig{DeliverPolicy: nats.DeliverByStartSequencePolicy, OptStartSeq: 2, FilterSubject: "dp.a"}, []uint64{3}},
		{"by_start_time, filter dp.b", nats.ConsumerConfig{DeliverPolicy: nats.DeliverByStartTimePolicy, OptStartTime: &startTime, FilterSubject: "dp.b"}, []uint64{5}},
		{"last_per_subject, filter dp.b", nats.ConsumerConfig{DeliverPolicy: nats.DeliverLastPerSubjectPolicy, FilterSubject: "dp.b"}, []uint64{5}},
	}
	for i, c := range cases {
		step("%s", c.what)
		cfg := c.cfg
		cfg.Durable = fmt.Sprintf("DP%d", i)
		cfg.DeliverSubject = nc.NewInbox()
		cfg.AckPolicy = nats.AckNonePolicy
		ci, err := js.AddConsumer("DP", &cfg)
		must(err, c.what+": add consumer")
		check(ci.Config.DeliverPolicy == c.cfg.DeliverPolicy && ci.Config.FilterSubject == c.cfg.FilterSubject,
			"%s: consumer config %+v", c.what, ci.Config)
		check(ci.NumPending == uint64(len(c.want)) && ci.Delivered.Consumer == 0,
			"%s: new consumer num_pending %d delivered %d, want %d and 0", c.what, ci.NumPending, ci.Delivered.Consumer, len(c.want))
		sub, err := js.SubscribeSync(cfg.FilterSubject, nats.Bind("DP", cfg.Durable))
		must(err, c.what+": bind")
		expect(c.what, sub, c.want)
		// delivered.stream_seq: nats-server reports the last stream sequence
		// it looked at (5, past messages the filter skipped), at least the
		// last one delivered.
		ci = consumerInfo(js, "DP", cfg.Durable)
		last := c.want[len(c.want)-1]
		check(ci.NumPending == 0 && ci.Delivered.Consumer == uint64(len(c.want)) && ci.Delivered.Stream >= last && ci.Delivered.Stream <= 5,
			"%s: consumer num_pending %d delivered %d/%d, want 0 and %d/%d..5",
			c.what, ci.NumPending, ci.Delivered.Consumer, ci.Delivered.Stream, len(c.want), last)
		must(sub.Unsubscribe(), c.what+": unsubscribe")
		must(js.DeleteConsumer("DP", cfg.Durable), c.what+": delete consumer")
	}

	step("new")
	sub, err := js.SubscribeSync("dp.>", nats.DeliverNew(), nats.AckNone(), nats.BindStream("DP"))
	must(err, "new: subscribe")
	noMsg(sub, quiet)
	stored[6] = dpMsg{"dp.c", "c2"}
	_, err = js.Publish("dp.c", []byte("c2"))
	must(err, "publish")
	expect("new", sub, []uint64{6})
	must(sub.Unsubscribe(), "new: unsubscribe")
}

// A pull consumer with ack_wait 1s: NAK -> redelivered at once with
// NumDelivered 2; NAK with a delay longer than ack_wait -> not before the
// delay; no ack -> redelivered after ack_wait; InProgress pushes the
// deadline back; Term -> never again (and the MSG_TERMINATED advisory).
func jsNakRedelivery() {
	nc, js := jsConnect()
	defer nc.Close()
	_, err := js.AddStream(&nats.StreamConfig{Name: "NAK", Subjects: []string{"nak.>"}, Storage: nats.FileStorage})
	must(err, "add stream")
	_, err = js.AddConsumer("NAK", &nats.ConsumerConfig{Durable: "NAKC", AckPolicy: nats.AckExplicitPolicy, AckWait: time.Second})
	must(err, "add consumer")
	term, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.NAK.NAKC")
	must(err, "subscribe to the terminated advisory")
	flush(nc)
	sub, err := js.PullSubscribe("", "NAKC", nats.Bind("NAK", "NAKC"))
	must(err, "pull subscribe")

	publish := func(seq uint64) {
		ack, err := js.Publish("nak.x", []byte(fmt.Sprintf("n%d", seq)))
		must(err, "publish")
		check(ack.Sequence == seq, "ack %+v", *ack)
	}
	// The next message within d: it must be stream seq `seq`, delivered `dc` times.
	fetch := func(what string, d time.Duration, seq, dc uint64) *nats.Msg {
		msgs, err := sub.Fetch(1, nats.MaxWait(d))
		must(err, what+": fetch")
		check(len(msgs) == 1, "%s: %d messages", what, len(msgs))
		md := metaOf(msgs[0])
		check(md.Sequence.Stream == seq && md.NumDelivered == dc, "%s: stream seq %d delivered %d, want seq %d delivered %d",
			what, md.Sequence.Stream, md.NumDelivered, seq, dc)
		check(string(msgs[0].Data) == fmt.Sprintf("n%d", seq), "%s: payload %q", what, msgs[0].Data)
		return msgs[0]
	}
	none := func(what string, d time.Duration) {
		msgs, err := sub.Fetch(1, nats.MaxWait(d))
		if err == nil {
			md := metaOf(msgs[0])
			fail("%s: got stream seq %d (delivered %d) too early", what, md.Sequence.Stream, md.NumDelivered)
		}
		check(errors.Is(err, nats.ErrTimeout), "%s: fetch: %v", what, err)
	}

	step("nak")
	publish(1)
	m := fetch("first delivery", wait, 1, 1)
	check(metaOf(m).Sequence.Consumer == 1, "consumer seq %d", metaOf(m).Sequence.Consumer)
	t0 := time.Now()
	must(m.Nak(), "nak")
	m = fetch("after nak", wait, 1, 2)
	check(time.Since(t0) < 800*time.Millisecond, "redelivery after a nak took %v (ack_wait is 1s)", time.Since(t0))
	check(metaOf(m).Sequence.Consumer == 2, "redelivery consumer seq %d", metaOf(m).Sequence.Consumer)
	must(m.AckSync(), "ack")

	step("nak with a delay of 1.5s (ack_wait 1s)")
	publish(2)
	m = fetch("first delivery", wait, 2, 1)
	t0 = time.Now()
	must(m.NakWithDelay(1500*time.Millisecond), "nak with delay")
	none("before the nak delay", 1200*time.Millisecond)
	m = fetch("after the nak delay", wait, 2, 2)
	check(time.Since(t0) >= 1500*time.Millisecond, "redelivered %v after a nak with a 1.5s delay", time.Since(t0))
	must(m.AckSync(), "ack")

	step("no ack: redelivered after ack_wait")
	publish(3)
	fetch("first delivery", wait, 3, 1)
	t0 = time.Now()
	none("before ack_wait", 700*time.Millisecond)
	m = fetch("after ack_wait", wait, 3, 2)
	check(time.Since(t0) >= 950*time.Millisecond, "redelivered %v after delivery (ack_wait 1s)", time.Since(t0))
	must(m.AckSync(), "ack")

	step("in progress extends the deadline")
	publish(4)
	m = fetch("first delivery", wait, 4, 1)
	t0 = time.Now()
	time.Sleep(600 * time.Millisecond)
	must(m.InProgress(), "in progress")
	none("before the extended deadline", 800*time.Millisecond)
	m = fetch("after the extended deadline", wait, 4, 2)
	check(time.Since(t0) >= 1500*time.Millisecond, "redelivered %v after delivery, in progress at 600ms (ack_wait 1s)", time.Since(t0))
	must(m.AckSync(), "ack")

	step("term stops redelivery")
	publish(5)
	m = fetch("first delivery", wait, 5, 1)
	must(m.Term(), "term")
	none("after term", 1500*time.Millisecond)
	a := next(term)
	var adv struct {
		Type     string `json:"type"`
		Stream   string `json:"stream"`
		Consumer string `json:"consumer"`
		Seq      uint64 `json:"stream_seq"`
		Dc       uint64 `json:"deliveries"`
	}
	must(json.Unmarshal(a.Data, &adv), "terminated advisory JSON")
	check(adv.Type == "io.nats.jetstream.advisory.v1.terminated" && adv.Stream == "NAK" && adv.Consumer == "NAKC" &&
		adv.Seq == 5 && adv.Dc == 1, "terminated advisory %s", a.Data)
	noMsg(term, quiet)
	checkConsumer(consumerInfo(js, "NAK", "NAKC"), 5, 5, 0, 0, "at the end")
}

// max_deliver 3 with ack_wait 500ms, never acked: exactly 3 deliveries
// (NumDelivered 1, 2, 3, about ack_wait apart) and one MAX_DELIVERIES
// advisory on $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>.
func jsMaxDeliver() {
	nc, js := jsConnect()
	defer nc.Close()
	adv, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.MD.MDC")
	must(err, "subscribe to the advisory")
	flush(nc)
	_, err = js.AddStream(&nats.StreamConfig{Name: "MD", Subjects: []string{"md.>"}, Storage: nats.FileStorage})
	must(err, "add stream")
	ci, err := js.AddConsumer("MD", &nats.ConsumerConfig{Durable: "MDC", DeliverSubject: "deliver.md",
		AckPolicy: nats.AckExplicitPolicy, AckWait: 500 * time.Millisecond, MaxDeliver: 3})
	must(err, "add consumer")
	check(ci.Config.MaxDeliver == 3, "max_deliver %d", ci.Config.MaxDeliver)
	sub, err := js.SubscribeSync("", nats.Bind("MD", "MDC"))
	must(err, "bind")
	flush(nc)
	_, err = js.Publish("md.x", []byte("poison"))
	must(err, "publish")

	step("three deliveries, never acked")
	var last time.Time
	for dc := uint64(1); dc <= 3; dc++ {
		m := next(sub)
		md := metaOf(m)
		check(md.Sequence.Stream == 1 && md.NumDelivered == dc && string(m.Data) == "poison",
			"delivery %d: stream seq %d delivered %d %q", dc, md.Sequence.Stream, md.NumDelivered, m.Data)
		if dc > 1 {
			check(time.Since(last) >= 450*time.Millisecond, "delivery %d only %v after the previous one (ack_wait 500ms)", dc, time.Since(last))
		}
		last = time.Now()
	}
	step("no fourth delivery")
	noMsg(sub, 1500*time.Millisecond)

	step("max deliveries advisory")
	a := next(adv)
	var v struct {
		Type     string `json:"type"`
		Stream   string `json:"stream"`
		Consumer string `json:"consumer"`
		Seq      uint64 `json:"stream_seq"`
		Dc       uint64 `json:"deliveries"`
	}
	must(json.Unmarshal(a.Data, &v), "advisory JSON")
	check(v.Type == "io.nats.jetstream.advisory.v1.max_deliver" && v.Stream == "MD" && v.Consumer == "MDC" &&
		v.Seq == 1 && v.Dc == 3, "advisory %s", a.Data)
	noMsg(adv, quiet)
	ci = consumerInfo(js, "MD", "MDC")
	check(ci.Delivered.Stream == 1 && ci.NumPending == 0, "consumer %s", consumerState(ci))
}

// Key-value and object-store scenarios through nats.go (both are built on
// JetStream streams and consumers). The names match the async-nats
// scenarios in conformance/tests/conformance/kv.rs.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

func entryString(e nats.KeyValueEntry) string {
	if e == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s=%q rev %d %s", e.Key(), e.Value(), e.Revision(), e.Operation())
}

func checkEntry(e nats.KeyValueEntry, key, value string, rev uint64, op nats.KeyValueOp, what string) {
	want := fmt.Sprintf("%s=%q rev %d %s", key, value, rev, op)
	check(entryString(e) == want, "%s: entry %s, want %s", what, entryString(e), want)
}

// Bucket with history 5: put, get, get by revision, create on an existing
// key fails, update with a wrong revision fails (10071), update with the
// right one, delete, create over a deleted key, history, purge, keys,
// status, the history limit.
func jsKvBasic() {
	nc, js := jsConnect()
	defer nc.Close()
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: "CFG", History: 5, Storage: nats.FileStorage})
	must(err, "create bucket")
	check(kv.Bucket() == "CFG", "bucket %q", kv.Bucket())
	c := streamInfo(js, "KV_CFG").Config
	check(len(c.Subjects) == 1 && c.Subjects[0] == "$KV.CFG.>", "bucket stream subjects %v", c.Subjects)
	check(c.MaxMsgsPerSubject == 5 && c.AllowRollup && c.DenyDelete && c.Discard == nats.DiscardNew,
		"bucket stream config: max_msgs_per_subject %d allow_rollup %v deny_delete %v discard %v",
		c.MaxMsgsPerSubject, c.AllowRollup, c.DenyDelete, c.Discard)

	step("put and get")
	for i, p := range [][2]string{{"a", "1"}, {"b", "x"}, {"a", "2"}} {
		rev, err := kv.Put(p[0], []byte(p[1]))
		must(err, "put "+p[0])
		check(rev == uint64(i+1), "put %s: revision %d, want %d", p[0], rev, i+1)
	}
	e, err := kv.Get("a")
	must(err, "get a")
	checkEntry(e, "a", "2", 3, nats.KeyValuePut, "get a")
	check(e.Bucket() == "CFG" && time.Since(e.Created()) < time.Minute, "entry bucket %q created %v", e.Bucket(), e.Created())
	e, err = kv.GetRevision("a", 1)
	must(err, "get a revision 1")
	checkEntry(e, "a", "1", 1, nats.KeyValuePut, "get a revision 1")
	_, err = kv.GetRevision("a", 2)
	check(errors.Is(err, nats.ErrKeyNotFound), "get a at revision 2 (a revision of b): %v", err)
	_, err = kv.Get("missing")
	check(errors.Is(err, nats.ErrKeyNotFound), "get a missing key: %v", err)

	step("create")
	_, err = kv.Create("a", []byte("again"))
	check(errors.Is(err, nats.ErrKeyExists), "create on an existing key: %v", err)
	checkAPIErr(err, nats.JSErrCodeStreamWrongLastSequence, "create on an existing key")
	rev, err := kv.Create("c", []byte("c1"))
	must(err, "create c")
	check(rev == 4, "create c: revision %d", rev)

	step("update")
	_, err = kv.Update("a", []byte("3"), 1)
	ae := checkAPIErr(err, nats.JSErrCodeStreamWrongLastSequence, "update a with revision 1")
	check(ae.Description == "wrong last sequence: 3", "description %q", ae.Description)
	rev, err = kv.Update("a", []byte("3"), 3)
	must(err, "update a with revision 3")
	check(rev == 5, "update a: revision %d", rev)
	_, err = kv.Update("a", []byte("4"), 3)
	checkAPIErr(err, nats.JSErrCodeStreamWrongLastSequence, "update a with the stale revision 3")
	_, err = kv.Update("new", []byte("x"), 2)
	checkAPIErr(err, nats.JSErrCodeStreamWrongLastSequence, "update of a missing key with revision 2")

	step("delete")
	must(kv.Delete("b"), "delete b")
	_, err = kv.Get("b")
	check(errors.Is(err, nats.ErrKeyNotFound), "get a deleted key: %v", err)
	err = kv.Delete("c", nats.LastRevision(1))
	checkAPIErr(err, nats.JSErrCodeStreamWrongLastSequence, "delete c with the wrong last revision")
	rev, err = kv.Create("b", []byte("b2"))
	must(err, "create over a deleted key")
	check(rev == 7, "create b: revision %d (the delete marker is 6)", rev)

	step("history")
	hist, err := kv.History("a")
	must(err, "history a")
	check(len(hist) == 3, "history a: %d entries", len(hist))
	for i, want := range []struct {
		v   string
		rev uint64
	}{{"1", 1}, {"2", 3}, {"3", 5}} {
		checkEntry(hist[i], "a", want.v, want.rev, nats.KeyValuePut, fmt.Sprintf("history a[%d]", i))
	}
	hist, err = kv.History("b")
	must(err, "history b")
	check(len(hist) == 3, "history b: %d entries", len(hist))
	checkEntry(hist[0], "b", "x", 2, nats.KeyValuePut, "history b[0]")
	checkEntry(hist[1], "b", "", 6, nats.KeyValueDelete, "history b[1]")
	checkEntry(hist[2], "b", "b2", 7, nats.KeyValuePut, "history b[2]")

	step("purge")
	must(kv.Purge("a"), "purge a")
	_, err = kv.Get("a")
	check(errors.Is(err, nats.ErrKeyNotFound), "get a purged key: %v", err)
	hist, err = kv.History("a")
	must(err, "history a after purge")
	check(len(hist) == 1, "history a after purge: %d entries", len(hist))
	checkEntry(hist[0], "a", "", 8, nats.KeyValuePurge, "history a after purge")

	step("keys and status")
	keys, err := kv.Keys()
	must(err, "keys")
	sort.Strings(keys)
	check(strings.Join(keys, ",") == "b,c", "keys %v", keys)
	status, err := kv.Status()
	must(err, "status")
	check(status.Bucket() == "CFG" && status.History() == 5, "status bucket %q history %d", status.Bucket(), status.History())
	// a: the purge marker; b: 2, 6 (delete), 7; c: 4.
	check(status.Values() == 5, "status values %d, want 5", status.Values())

	step("history keeps the last 5 revisions")
	// c2..c7 are revisions 9..14.
	for i := 2; i <= 7; i++ {
		_, err := kv.Put("c", []byte(fmt.Sprintf("c%d", i)))
		must(err, "put c")
	}
	hist, err = kv.History("c")
	must(err, "history c")
	check(len(hist) == 5, "history c: %d entries, want 5", len(hist))
	for i, e := range hist {
		checkEntry(e, "c", fmt.Sprintf("c%d", i+3), uint64(10+i), nats.KeyValuePut, fmt.Sprintf("history c[%d]", i))
	}
	e, err = kv.Get("c")
	must(err, "get c")
	checkEntry(e, "c", "c7", 14, nats.KeyValuePut, "get c")
	_, err = kv.GetRevision("c", 4)
	check(errors.Is(err, nats.ErrKeyNotFound), "get c at its dropped revision 4: %v", err)
}

// The next update of a watcher (nil is the "initial values done" marker).
func nextUpdate(w nats.KeyWatcher, what string) nats.KeyValueEntry {
	select {
	case e, ok := <-w.Updates():
		check(ok, "%s: watcher closed", what)
		return e
	case <-time.After(wait):
		fail("%s: no update within %v", what, wait)
	}
	return nil
}

func noUpdate(w nats.KeyWatcher, what string) {
	select {
	case e := <-w.Updates():
		fail("%s: unexpected update %s", what, entryString(e))
	case <-time.After(quiet):
	}
}

func expectUpdates(w nats.KeyWatcher, what string, want ...string) {
	for i, s := range want {
		e := nextUpdate(w, what)
		check(entryString(e) == s, "%s: update %d is %s, want %s", what, i+1, entryString(e), s)
	}
}

// Watch a key pattern and watch all: the initial values (latest revision
// per key, in revision order), then the nil "initial values done" marker,
// then live puts, deletes and purges; a watch with nothing to send starts
// with the marker; IgnoreDeletes.
func jsKvWatch() {
	nc, js := jsConnect()
	defer nc.Close()
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: "WATCH", Storage: nats.FileStorage})
	must(err, "create bucket")

	step("watch with no values yet")
	empty, err := kv.Watch("none.*")
	must(err, "watch none.*")
	defer empty.Stop()
	check(nextUpdate(empty, "none.*") == nil, "none.* must start with the nil marker")

	for _, p := range [][2]string{{"k.a", "1"}, {"k.b", "1"}, {"other", "x"}, {"k.a", "2"}} {
		_, err := kv.PutString(p[0], p[1])
		must(err, "put "+p[0])
	}
	step("initial values")
	w, err := kv.Watch("k.*")
	must(err, "watch k.*")
	defer w.Stop()
	expectUpdates(w, "k.* initial", `k.b="1" rev 2 KeyValuePutOp`, `k.a="2" rev 4 KeyValuePutOp`, "<nil>")
	all, err := kv.WatchAll()
	must(err, "watch all")
	defer all.Stop()
	expectUpdates(all, "all initial", `k.b="1" rev 2 KeyValuePutOp`, `other="x" rev 3 KeyValuePutOp`,
		`k.a="2" rev 4 KeyValuePutOp`, "<nil>")
	noUpdate(w, "k.* after the initial values")

	step("live updates")
	_, err = kv.PutString("k.b", "2")
	must(err, "put k.b")
	_, err = kv.PutString("other", "y")
	must(err, "put other")
	must(kv.Delete("k.a"), "delete k.a")
	must(kv.Purge("k.b"), "purge k.b")
	_, err = kv.PutString("k.c", "new")
	must(err, "put k.c")
	expectUpdates(w, "k.* live", `k.b="2" rev 5 KeyValuePutOp`, `k.a="" rev 7 KeyValueDeleteOp`,
		`k.b="" rev 8 KeyValuePurgeOp`, `k.c="new" rev 9 KeyValuePutOp`)
	expectUpdates(all, "all live", `k.b="2" rev 5 KeyValuePutOp`, `other="y" rev 6 KeyValuePutOp`,
		`k.a="" rev 7 KeyValueDeleteOp`, `k.b="" rev 8 KeyValuePurgeOp`, `k.c="new" rev 9 KeyValuePutOp`)
	noUpdate(w, "k.* after the live updates")
	noUpdate(all, "all after the live updates")
	noUpdate(empty, "none.* after the live updates")
	_, err = kv.PutString("none.x", "n")
	must(err, "put none.x")
	expectUpdates(empty, "none.* live", `none.x="n" rev 10 KeyValuePutOp`)

	step("a new watch sees the delete and purge markers")
	w2, err := kv.Watch("k.*")
	must(err, "watch k.* again")
	expectUpdates(w2, "k.* again", `k.a="" rev 7 KeyValueDeleteOp`, `k.b="" rev 8 KeyValuePurgeOp`,
		`k.c="new" rev 9 KeyValuePutOp`, "<nil>")
	must(w2.Stop(), "stop watcher")
	w3, err := kv.Watch("k.*", nats.IgnoreDeletes())
	must(err, "watch k.* ignoring deletes")
	expectUpdates(w3, "k.* ignoring deletes", `k.c="new" rev 9 KeyValuePutOp`, "<nil>")
	must(w3.Stop(), "stop watcher")
}

// 5 MiB of deterministic pseudo-random bytes: SHA-256 of "natrium-object-"
// + the big-endian block number, block after block (the nats-py scenario
// builds the same bytes).
func objectData() []byte {
	const size = 5 << 20
	data := make([]byte, 0, size)
	var ctr [8]byte
	for i := uint64(0); len(data) < size; i++ {
		binary.BigEndian.PutUint64(ctr[:], i)
		sum := sha256.Sum256(append([]byte("natrium-object-"), ctr[:]...))
		data = append(data, sum[:]...)
	}
	return data[:size]
}

// Its digest as the object info carries it (both programs check it).
const objectDigest = "SHA-256=hg90Q-nsSpKXz9-PG8vvpXKMcOQ0uluzXWZIwxNKVBM="

func nextObjUpdate(w nats.ObjectWatcher, what string) *nats.ObjectInfo {
	select {
	case info, ok := <-w.Updates():
		check(ok, "%s: watcher closed", what)
		return info
	case <-time.After(wait):
		fail("%s: no update within %v", what, wait)
	}
	return nil
}

func objString(i *nats.ObjectInfo) string {
	if i == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s size %d chunks %d deleted %v", i.Name, i.Size, i.Chunks, i.Deleted)
}

// A 5 MiB object put and got back (byte-compared, digest checked), info,
// list, links, delete, and a watcher that sees it all.
func jsObjectStore() {
	nc, js := jsConnect()
	defer nc.Close()
	obs, err := js.CreateObjectStore(&nats.ObjectStoreConfig{Bucket: "FILES", Storage: nats.FileStorage})
	must(err, "create object store")
	c := streamInfo(js, "OBJ_FILES").Config
	check(strings.Join(c.Subjects, ",") == "$O.FILES.C.>,$O.FILES.M.>" && c.AllowRollup,
		"object store stream subjects %v allow_rollup %v", c.Subjects, c.AllowRollup)

	data := objectData()
	sum := sha256.Sum256(data)
	digest := "SHA-256=" + base64.URLEncoding.EncodeToString(sum[:])
	check(digest == objectDigest, "test data digest %s, want %s", digest, objectDigest)

	step("watch the empty store")
	w, err := obs.Watch()
	must(err, "watch")
	defer w.Stop()
	check(nextObjUpdate(w, "empty store") == nil, "the watch of an empty store starts with the nil marker")

	step("put 5 MiB")
	t0 := time.Now()
	info, err := obs.PutBytes("big.bin", data)
	must(err, "put")
	step("put took %v", time.Since(t0))
	check(info.Name == "big.bin" && info.Bucket == "FILES" && info.NUID != "", "put info %+v", info)
	check(info.Size == 5<<20 && info.Chunks == 40 && info.Digest == digest,
		"put info: size %d chunks %d digest %s", info.Size, info.Chunks, info.Digest)
	check(objString(nextObjUpdate(w, "put big.bin")) == "big.bin size 5242880 chunks 40 deleted false", "watch after put")
	checkCounts(streamInfo(js, "OBJ_FILES").State, 41, 1, 41, "40 chunks and the meta message")

	step("get it back")
	t0 = time.Now()
	got, err := obs.GetBytes("big.bin")
	must(err, "get")
	step("get took %v", time.Since(t0))
	check(len(got) == len(data), "got %d bytes, want %d", len(got), len(data))
	check(bytes.Equal(got, data), "got different bytes")
	res, err := obs.Get("big.bin")
	must(err, "get (reader)")
	h := sha256.New()
	n, err := io.Copy(h, res)
	must(err, "read the object")
	must(res.Close(), "close the object reader")
	check(n == 5<<20 && "SHA-256="+base64.URLEncoding.EncodeToString(h.Sum(nil)) == digest, "read %d bytes, digest mismatch", n)

	step("info")
	gi, err := obs.GetInfo("big.bin")
	must(err, "info")
	check(gi.Name == "big.bin" && gi.Size == 5<<20 && gi.Chunks == 40 && gi.Digest == digest && gi.NUID == info.NUID && !gi.Deleted,
		"info %+v", gi)
	_, err = obs.GetInfo("nope")
	check(errors.Is(err, nats.ErrObjectNotFound), "info of a missing object: %v", err)

	step("a small object, replaced")
	_, err = obs.PutString("small.txt", "hello")
	must(err, "put small")
	small, err := obs.PutString("small.txt", "hello object store")
	must(err, "put small again")
	check(small.Size == 18 && small.Chunks == 1, "small info %+v", small)
	s, err := obs.GetString("small.txt")
	must(err, "get small")
	check(s == "hello object store", "small %q", s)
	check(objString(nextObjUpdate(w, "put small.txt")) == "small.txt size 5 chunks 1 deleted false", "watch after the first small put")
	check(objString(nextObjUpdate(w, "put small.txt")) == "small.txt size 18 chunks 1 deleted false", "watch after the second small put")
	// The first version's chunk is purged, its meta rolled up.
	check(streamInfo(js, "OBJ_FILES").State.Msgs == 43, "stream messages %d, want 43", streamInfo(js, "OBJ_FILES").State.Msgs)

	step("link")
	link, err := obs.AddLink("alias", small)
	must(err, "add link")
	check(link.Opts != nil && link.Opts.Link != nil && link.Opts.Link.Bucket == "FILES" && link.Opts.Link.Name == "small.txt",
		"link info %+v", link)
	s, err = obs.GetString("alias")
	must(err, "get through the link")
	check(s == "hello object store", "through the link %q", s)
	li := nextObjUpdate(w, "add link")
	check(li != nil && li.Name == "alias" && li.Opts != nil && li.Opts.Link != nil && li.Opts.Link.Name == "small.txt", "watch after the link: %s", objString(li))

	step("list")
	list, err := obs.List()
	must(err, "list")
	var names []string
	for _, i := range list {
		names = append(names, i.Name)
	}
	sort.Strings(names)
	check(strings.Join(names, ",") == "alias,big.bin,small.txt", "list %v", names)

	step("delete")
	must(obs.Delete("big.bin"), "delete")
	_, err = obs.GetInfo("big.bin")
	check(errors.Is(err, nats.ErrObjectNotFound), "info of a deleted object: %v", err)
	_, err = obs.GetBytes("big.bin")
	check(errors.Is(err, nats.ErrObjectNotFound), "get of a deleted object: %v", err)
	gi, err = obs.GetInfo("big.bin", nats.GetObjectInfoShowDeleted())
	must(err, "info of a deleted object, deleted shown")
	check(gi.Deleted && gi.Size == 0 && gi.Chunks == 0 && gi.Digest == "", "deleted info %+v", gi)
	check(objString(nextObjUpdate(w, "delete big.bin")) == "big.bin size 0 chunks 0 deleted true", "watch after delete")
	list, err = obs.List()
	must(err, "list after delete")
	names = names[:0]
	for _, i := range list {
		names = append(names, i.Name)
	}
	sort.Strings(names)
	check(strings.Join(names, ",") == "alias,small.txt", "list after delete %v", names)
	// big.bin: its deleted meta; small.txt: a chunk and its meta; alias: its meta.
	st := streamInfo(js, "OBJ_FILES").State
	check(st.Msgs == 4 && st.Bytes < 4096, "stream after delete: %s", stateOf(st))
	status, err := obs.Status()
	must(err, "status")
	check(status.Bucket() == "FILES" && !status.Sealed() && status.Size() == st.Bytes,
		"status bucket %q sealed %v size %d", status.Bucket(), status.Sealed(), status.Size())
	select {
	case i := <-w.Updates():
		fail("unexpected watch update %s", objString(i))
	case <-time.After(quiet):
	}
}

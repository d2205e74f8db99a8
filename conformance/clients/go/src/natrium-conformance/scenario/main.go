// Conformance scenarios driven through nats.go (the Debian package
// golang-github-nats-io-go-nats-dev, built offline in GOPATH mode).
//
// Usage: scenario <name> <url>
//
// Prints progress lines and finally `OK` (exit 0) or `FAIL: <reason>`
// (exit 1). The reconnect scenario prints `READY` and then waits for a
// `RESTARTED` line on stdin (the Rust harness restarts the server on the
// same port in between). Credentials and subjects match the catalogue in
// conformance/src/lib.rs (module `configs`).
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

const wait = 5 * time.Second
const quiet = 200 * time.Millisecond

type failure struct{ msg string }

func fail(format string, args ...interface{}) {
	panic(failure{fmt.Sprintf(format, args...)})
}

func check(cond bool, format string, args ...interface{}) {
	if !cond {
		fail(format, args...)
	}
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func step(format string, args ...interface{}) {
	fmt.Printf("step: "+format+"\n", args...)
}

var url string

func connect(opts ...nats.Option) *nats.Conn {
	opts = append([]nats.Option{nats.Timeout(3 * time.Second), nats.MaxReconnects(0)}, opts...)
	nc, err := nats.Connect(url, opts...)
	must(err, "connect")
	return nc
}

func flush(nc *nats.Conn) {
	must(nc.FlushTimeout(wait), "flush")
}

func next(sub *nats.Subscription) *nats.Msg {
	m, err := sub.NextMsg(wait)
	must(err, "next message on "+sub.Subject)
	return m
}

func noMsg(sub *nats.Subscription, d time.Duration) {
	m, err := sub.NextMsg(d)
	if err == nil {
		fail("expected no message on %s, got %s %q", sub.Subject, m.Subject, m.Data)
	}
}

func nextNonInbox(sub *nats.Subscription) *nats.Msg {
	for {
		m := next(sub)
		if !strings.HasPrefix(m.Subject, "_INBOX.") {
			return m
		}
	}
}

var scenarios = map[string]func(){
	"pub_sub_ordering":                pubSubOrdering,
	"wildcard_star":                   wildcardStar,
	"wildcard_full":                   wildcardFull,
	"queue_groups":                    queueGroups,
	"request_reply":                   func() { requestReply(false) },
	"request_reply_old_style":         func() { requestReply(true) },
	"no_responders":                   noResponders,
	"no_responders_after_unsubscribe": noRespondersAfterUnsubscribe,
	"headers_multi_value":             headersMultiValue,
	"auto_unsubscribe":                autoUnsubscribe,
	"auto_unsubscribe_after_partial":  autoUnsubscribeAfterPartial,
	"max_msgs_exactly_once":           maxMsgsExactlyOnce,
	"subscription_drain":              subscriptionDrain,
	"client_drain":                    clientDrain,
	"flush_rtt":                       flushRTT,
	"max_payload_client_side":         maxPayloadClientSide,
	"config_users":                    configUsers,
	"config_users_bcrypt":             configUsersBcrypt,
	"config_token":                    configToken,
	"reconnect_after_restart":         reconnectAfterRestart,
	"js_stream_crud":                  jsStreamCrud,
	"js_publish_acks":                 jsPublishAcks,
	"js_limits_example":               jsLimitsExample,
	"js_get_and_purge":                jsGetAndPurge,
	"js_pull_work_queue":              jsPullWorkQueue,
	"js_push_durable_resume":          jsPushDurableResume,
	"js_deliver_policies":             jsDeliverPolicies,
	"js_nak_redelivery":               jsNakRedelivery,
	"js_max_deliver":                  jsMaxDeliver,
	"js_kv_basic":                     jsKvBasic,
	"js_kv_watch":                     jsKvWatch,
	"js_object_store":                 jsObjectStore,
}

func main() {
	if len(os.Args) != 3 {
		fmt.Println("FAIL: usage: scenario <name> <url>")
		os.Exit(2)
	}
	name := os.Args[1]
	url = os.Args[2]
	f, ok := scenarios[name]
	if !ok {
		fmt.Printf("FAIL: unknown scenario %q\n", name)
		os.Exit(2)
	}
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(failure); ok {
				fmt.Printf("FAIL: %s\n", f.msg)
			} else {
				fmt.Printf("FAIL: panic: %v\n", r)
			}
			os.Exit(1)
		}
	}()
	f()
	fmt.Println("OK")
}

// A message published before the subscription is not received; greet.*
// gets joe, pam, bob in publish order.
func pubSubOrdering() {
	pub := connect()
	defer pub.Close()
	nc := connect()
	defer nc.Close()
	must(pub.Publish("greet.early", []byte("too early")), "publish")
	flush(pub)
	sub, err := nc.SubscribeSync("greet.*")
	must(err, "subscribe")
	flush(nc)
	names := []string{"joe", "pam", "bob"}
	for _, n := range names {
		must(pub.Publish("greet."+n, []byte("hello "+n)), "publish")
	}
	flush(pub)
	for _, n := range names {
		m := next(sub)
		check(m.Subject == "greet."+n, "subject %q, want greet.%s", m.Subject, n)
		check(string(m.Data) == "hello "+n, "payload %q", m.Data)
		check(m.Reply == "", "unexpected reply %q", m.Reply)
	}
	noMsg(sub, quiet)
}

func wildcardStar() {
	nc := connect()
	defer nc.Close()
	star, _ := nc.SubscribeSync("foo.*")
	mid, _ := nc.SubscribeSync("a.*.c")
	flush(nc)
	for _, s := range []string{"foo", "foo.a.b", "foo.x", "a.b.c", "a.b.c.d", "a.c", "a.x.c"} {
		must(nc.Publish(s, []byte(s)), "publish")
	}
	flush(nc)
	check(next(star).Subject == "foo.x", "foo.* first")
	check(next(mid).Subject == "a.b.c", "a.*.c first")
	check(next(mid).Subject == "a.x.c", "a.*.c second")
	noMsg(star, quiet)
	noMsg(mid, 50*time.Millisecond)
}

func wildcardFull() {
	nc := connect()
	defer nc.Close()
	full, _ := nc.SubscribeSync("foo.>")
	all, _ := nc.SubscribeSync(">")
	lit, _ := nc.SubscribeSync("foo")
	flush(nc)
	for _, s := range []string{"foo", "foo.a", "foo.a.b", "bar.a"} {
		must(nc.Publish(s, []byte(s)), "publish")
	}
	flush(nc)
	check(next(full).Subject == "foo.a", "foo.> first must be foo.a (foo.> must not match foo)")
	check(next(full).Subject == "foo.a.b", "foo.> second")
	for _, want := range []string{"foo", "foo.a", "foo.a.b", "bar.a"} {
		m := nextNonInbox(all)
		check(m.Subject == want && string(m.Data) == want, "> got %q, want %q", m.Subject, want)
	}
	check(next(lit).Subject == "foo", "literal foo")
	noMsg(full, quiet)
	noMsg(lit, 50*time.Millisecond)
}

func queueGroups() {
	const n = 100
	var members []*nats.Subscription
	var conns []*nats.Conn
	for i := 0; i < 3; i++ {
		c := connect()
		defer c.Close()
		s, err := c.QueueSubscribeSync("work", "q")
		must(err, "queue subscribe")
		flush(c)
		members = append(members, s)
		conns = append(conns, c)
	}
	pc := connect()
	defer pc.Close()
	plain, _ := pc.SubscribeSync("work")
	flush(pc)
	pub := connect()
	defer pub.Close()
	for i := 0; i < n; i++ {
		must(pub.Publish("work", []byte(strconv.Itoa(i))), "publish")
	}
	flush(pub)
	for i := 0; i < n; i++ {
		m := next(plain)
		check(string(m.Data) == strconv.Itoa(i), "plain subscriber order: got %q want %d", m.Data, i)
	}
	for _, c := range conns {
		flush(c)
	}
	seen := map[int]bool{}
	var counts []int
	for _, s := range members {
		count := 0
		for {
			m, err := s.NextMsg(300 * time.Millisecond)
			if err != nil {
				break
			}
			v, _ := strconv.Atoi(string(m.Data))
			check(!seen[v], "message %d delivered to two queue members", v)
			seen[v] = true
			count++
		}
		counts = append(counts, count)
	}
	check(len(seen) == n, "queue members got %v messages (%d distinct of %d)", counts, len(seen), n)
	for _, c := range counts {
		check(c > 0, "every member must be used: %v", counts)
	}
	step("distribution %v", counts)
}

func requestReply(oldStyle bool) {
	resp := connect()
	defer resp.Close()
	_, err := resp.Subscribe("svc.echo", func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		resp.Publish(m.Reply, append([]byte("echo: "), m.Data...))
	})
	must(err, "subscribe")
	flush(resp)
	var opts []nats.Option
	if oldStyle {
		opts = append(opts, nats.UseOldRequestStyle())
	}
	req := connect(opts...)
	defer req.Close()
	check(req.Opts.UseOldRequestStyle == oldStyle, "old request style option")
	for i := 0; i < 3; i++ {
		r, err := req.Request("svc.echo", []byte(fmt.Sprintf("ping %d", i)), wait)
		must(err, "request")
		check(string(r.Data) == fmt.Sprintf("echo: ping %d", i), "reply %q", r.Data)
		check(strings.HasPrefix(r.Subject, "_INBOX."), "reply subject %q", r.Subject)
	}
}

func expectNoResponders(nc *nats.Conn, subj string) {
	start := time.Now()
	_, err := nc.Request(subj, []byte("hi"), 10*time.Second)
	check(errors.Is(err, nats.ErrNoResponders), "want ErrNoResponders, got %v", err)
	check(time.Since(start) < 2*time.Second, "must fail at once, took %v", time.Since(start))
}

func noResponders() {
	nc := connect()
	defer nc.Close()
	expectNoResponders(nc, "nobody.home")
	step("new style ok")
	old := connect(nats.UseOldRequestStyle())
	defer old.Close()
	expectNoResponders(old, "nobody.home")
	step("old style ok")
}

func noRespondersAfterUnsubscribe() {
	resp := connect()
	defer resp.Close()
	sub, err := resp.Subscribe("svc.gone", func(m *nats.Msg) { m.Respond([]byte("ok")) })
	must(err, "subscribe")
	flush(resp)
	req := connect()
	defer req.Close()
	r, err := req.Request("svc.gone", []byte("1"), wait)
	must(err, "first request")
	check(string(r.Data) == "ok", "reply %q", r.Data)
	must(sub.Unsubscribe(), "unsubscribe")
	flush(resp)
	expectNoResponders(req, "svc.gone")
}

func headersMultiValue() {
	nc := connect()
	defer nc.Close()
	sub, _ := nc.SubscribeSync("hdr")
	flush(nc)
	m := nats.NewMsg("hdr")
	m.Header.Set("X-Single", "one")
	m.Header.Add("X-Multi", "first")
	m.Header.Add("X-Multi", "second")
	m.Header.Add("X-Multi", "third")
	m.Data = []byte("body")
	must(nc.PublishMsg(m), "publish")
	m2 := nats.NewMsg("hdr")
	m2.Header.Set("Only", "headers")
	must(nc.PublishMsg(m2), "publish")
	flush(nc)
	got := next(sub)
	check(string(got.Data) == "body", "payload %q", got.Data)
	check(got.Header.Get("X-Single") == "one", "X-Single %q", got.Header.Get("X-Single"))
	multi := got.Header.Values("X-Multi")
	check(strings.Join(multi, ",") == "first,second,third", "X-Multi values %v", multi)
	got = next(sub)
	check(len(got.Data) == 0, "empty payload, got %q", got.Data)
	check(got.Header.Get("Only") == "headers", "Only %q", got.Header.Get("Only"))
}

// AutoUnsubscribe(50), 60 publishes: exactly 50 arrive, in order.
func autoUnsubscribe() {
	nc := connect()
	defer nc.Close()
	sub, _ := nc.SubscribeSync("auto")
	must(sub.AutoUnsubscribe(50), "auto unsubscribe")
	flush(nc)
	pub := connect()
	defer pub.Close()
	for i := 0; i < 60; i++ {
		must(pub.Publish("auto", []byte(strconv.Itoa(i))), "publish")
	}
	flush(pub)
	for i := 0; i < 50; i++ {
		m := next(sub)
		check(string(m.Data) == strconv.Itoa(i), "message %d: %q", i, m.Data)
	}
	noMsg(sub, quiet)
	flush(nc)
	check(!sub.IsValid(), "subscription must be closed after max")
}

// After 3 deliveries, AutoUnsubscribe(5) lets exactly 2 more through.
func autoUnsubscribeAfterPartial() {
	nc := connect()
	defer nc.Close()
	sub, _ := nc.SubscribeSync("auto2")
	flush(nc)
	pub := connect()
	defer pub.Close()
	for i := 0; i < 3; i++ {
		must(pub.Publish("auto2", []byte(strconv.Itoa(i))), "publish")
	}
	flush(pub)
	for i := 0; i < 3; i++ {
		check(string(next(sub).Data) == strconv.Itoa(i), "message %d", i)
	}
	must(sub.AutoUnsubscribe(5), "auto unsubscribe")
	flush(nc)
	for i := 3; i < 13; i++ {
		must(pub.Publish("auto2", []byte(strconv.Itoa(i))), "publish")
	}
	flush(pub)
	flush(nc)
	for i := 3; i < 5; i++ {
		check(string(next(sub).Data) == strconv.Itoa(i), "message %d", i)
	}
	noMsg(sub, quiet)
}

// 50 messages to a callback subscriber with max 50: each arrives exactly once.
func maxMsgsExactlyOnce() {
	nc := connect()
	defer nc.Close()
	var mu sync.Mutex
	got := map[string]int{}
	var order []string
	done := make(chan struct{})
	sub, err := nc.Subscribe("max50", func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		got[string(m.Data)]++
		order = append(order, string(m.Data))
		if len(order) == 50 {
			close(done)
		}
	})
	must(err, "subscribe")
	must(sub.AutoUnsubscribe(50), "auto unsubscribe")
	flush(nc)
	pub := connect()
	defer pub.Close()
	for i := 0; i < 50; i++ {
		must(pub.Publish("max50", []byte(strconv.Itoa(i))), "publish")
	}
	flush(pub)
	select {
	case <-done:
	case <-time.After(wait):
		mu.Lock()
		fail("only %d of 50 messages arrived", len(order))
	}
	flush(nc)
	// Anything published now must not arrive.
	must(pub.Publish("max50", []byte("extra")), "publish")
	flush(pub)
	flush(nc)
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	check(len(order) == 50, "delivered %d messages, want 50", len(order))
	for i := 0; i < 50; i++ {
		check(order[i] == strconv.Itoa(i), "message %d out of order: %q", i, order[i])
		check(got[strconv.Itoa(i)] == 1, "message %d delivered %d times", i, got[strconv.Itoa(i)])
	}
}

func subscriptionDrain() {
	nc := connect()
	defer nc.Close()
	pub := connect()
	defer pub.Close()
	sub, _ := nc.SubscribeSync("drain.sub")
	flush(nc)
	for i := 0; i < 20; i++ {
		must(pub.Publish("drain.sub", []byte(strconv.Itoa(i))), "publish")
	}
	flush(pub)
	flush(nc)
	must(sub.Drain(), "drain")
	for i := 0; i < 20; i++ {
		check(string(next(sub).Data) == strconv.Itoa(i), "message %d", i)
	}
	deadline := time.Now().Add(wait)
	for sub.IsValid() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	check(!sub.IsValid(), "drained subscription must end")
	must(pub.Publish("drain.sub", []byte("late")), "publish")
	flush(pub)
	other, _ := nc.SubscribeSync("drain.other")
	flush(nc)
	must(pub.Publish("drain.other", []byte("x")), "publish")
	check(string(next(other).Data) == "x", "connection still usable")
}

func clientDrain() {
	closed := make(chan struct{})
	nc := connect(nats.ClosedHandler(func(*nats.Conn) { close(closed) }), nats.DrainTimeout(wait))
	pub := connect()
	defer pub.Close()
	var mu sync.Mutex
	got := map[string][]string{}
	for _, s := range []string{"cd.a", "cd.b"} {
		_, err := nc.Subscribe(s, func(m *nats.Msg) {
			mu.Lock()
			got[m.Subject] = append(got[m.Subject], string(m.Data))
			mu.Unlock()
		})
		must(err, "subscribe")
	}
	flush(nc)
	for i := 0; i < 10; i++ {
		must(pub.Publish("cd.a", []byte(strconv.Itoa(i))), "publish")
		must(pub.Publish("cd.b", []byte(strconv.Itoa(i))), "publish")
	}
	flush(pub)
	flush(nc)
	must(nc.Drain(), "drain")
	select {
	case <-closed:
	case <-time.After(wait):
		fail("connection not closed after drain")
	}
	check(nc.IsClosed(), "closed after drain")
	mu.Lock()
	for _, s := range []string{"cd.a", "cd.b"} {
		check(len(got[s]) == 10, "%s got %d messages", s, len(got[s]))
		for i, v := range got[s] {
			check(v == strconv.Itoa(i), "%s message %d = %q", s, i, v)
		}
	}
	mu.Unlock()
	c2 := connect()
	defer c2.Close()
	sub, _ := c2.SubscribeSync("cd.a")
	flush(c2)
	must(pub.Publish("cd.a", []byte("again")), "publish")
	check(string(next(sub).Data) == "again", "server unaffected")
}

// FlushTimeout is a real round trip: after the publisher's flush and the
// subscriber's flush, the message is already in the subscriber's pending queue.
func flushRTT() {
	nc := connect()
	defer nc.Close()
	pub := connect()
	defer pub.Close()
	must(nc.FlushTimeout(time.Second), "flush")
	rtt, err := nc.RTT()
	must(err, "rtt")
	check(rtt > 0 && rtt < time.Second, "rtt %v", rtt)
	sub, _ := nc.SubscribeSync("flush.x")
	flush(nc)
	for i := 0; i < 5; i++ {
		must(pub.Publish("flush.x", []byte(strconv.Itoa(i))), "publish")
	}
	flush(pub)
	flush(nc)
	n, _, err := sub.Pending()
	must(err, "pending")
	check(n == 5, "after both flushes all 5 messages must be pending, got %d", n)
	step("rtt %v", rtt)
}

func maxPayloadClientSide() {
	nc := connect()
	defer nc.Close()
	check(nc.MaxPayload() == 1024, "MaxPayload %d", nc.MaxPayload())
	err := nc.Publish("foo", make([]byte, 2000))
	check(errors.Is(err, nats.ErrMaxPayload), "want ErrMaxPayload, got %v", err)
	sub, _ := nc.SubscribeSync("foo")
	flush(nc)
	must(nc.Publish("foo", make([]byte, 1024)), "publish exactly max_payload")
	flush(nc)
	check(len(next(sub).Data) == 1024, "payload length")
	check(nc.IsConnected(), "still connected")
}

func assertWorks(nc *nats.Conn) {
	sub, _ := nc.SubscribeSync("auth.check")
	flush(nc)
	must(nc.Publish("auth.check", []byte("ok")), "publish")
	check(string(next(sub).Data) == "ok", "auth.check")
}

func assertRejected(what string, opts ...nats.Option) {
	opts = append([]nats.Option{nats.Timeout(3 * time.Second), nats.MaxReconnects(0)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		nc.Close()
		fail("%s: connection must be rejected", what)
	}
	check(errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization violation"),
		"%s: want authorization violation, got %v", what, err)
}

func configUsers() {
	for _, up := range [][2]string{{"a", "b"}, {"c", "d"}} {
		nc := connect(nats.UserInfo(up[0], up[1]))
		assertWorks(nc)
		nc.Close()
	}
	assertRejected("wrong password", nats.UserInfo("a", "d"))
	assertRejected("unknown user", nats.UserInfo("z", "b"))
	assertRejected("no credentials")
}

const bcryptHash = "$2a$10$0kdsqr7Uqdy3xug/sG.v1.ErK3dTDoLXSvrJUxk1/ZzsrYRbxSUXG"

func configUsersBcrypt() {
	nc := connect(nats.UserInfo("plain", "plainpass"))
	assertWorks(nc)
	nc.Close()
	nc = connect(nats.UserInfo("hashed", "s3cret"))
	assertWorks(nc)
	nc.Close()
	assertRejected("bcrypt user, wrong password", nats.UserInfo("hashed", "wrong"))
	assertRejected("bcrypt user, the hash as password", nats.UserInfo("hashed", bcryptHash))
	assertRejected("plain user, wrong password", nats.UserInfo("plain", "s3cret"))
	assertRejected("no credentials")
}

func configToken() {
	nc := connect(nats.Token("s3cr3t-token"))
	assertWorks(nc)
	nc.Close()
	assertRejected("wrong token", nats.Token("nope"))
	assertRejected("no credentials")
}

// Subscribe, print READY, wait for RESTARTED on stdin (the server was
// restarted on the same port), wait for the reconnect, then check that the
// subscription works again.
func reconnectAfterRestart() {
	reconnected := make(chan struct{}, 1)
	nc := connect(
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectJitter(0, 0),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}),
	)
	defer nc.Close()
	sub, _ := nc.SubscribeSync("re.x")
	wsub, _ := nc.SubscribeSync("re.>")
	flush(nc)
	must(nc.Publish("re.x", []byte("before")), "publish")
	flush(nc)
	check(string(next(sub).Data) == "before", "before restart")
	check(string(next(wsub).Data) == "before", "before restart (wildcard)")
	fmt.Println("READY")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	must(err, "read stdin")
	check(strings.TrimSpace(line) == "RESTARTED", "unexpected stdin line %q", line)
	select {
	case <-reconnected:
	case <-time.After(15 * time.Second):
		fail("no reconnect within 15s (status %v)", nc.Status())
	}
	step("reconnected")
	flush(nc)
	pub := connect()
	defer pub.Close()
	must(pub.Publish("re.x", []byte("after")), "publish")
	flush(pub)
	check(string(next(sub).Data) == "after", "subscription resumed after restart")
	check(string(next(wsub).Data) == "after", "wildcard subscription resumed after restart")
	must(nc.Publish("re.x", []byte("own")), "publish")
	check(string(next(sub).Data) == "own", "own publish after restart")
}

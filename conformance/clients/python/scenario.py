"""Conformance scenarios driven through nats-py (pinned in scripts/test).

Usage: scenario.py <name> <url>

Prints progress lines and finally `OK` (exit 0) or `FAIL: <reason>` (exit 1).
The reconnect scenario prints `READY`, then waits for a `RESTARTED` line on
stdin (the Rust harness restarts the server on the same port in between).
Credentials and subjects match the catalogue in conformance/src/lib.rs
(module `configs`).
"""

import asyncio
import json
import os
import sys
import time
import traceback
from urllib.parse import urlparse

import nats
from nats import errors
from nats.js import errors as js_errors
from nats.js.api import StorageType, StreamConfig

WAIT = 5.0
QUIET = 0.2
URL = ""
BCRYPT_HASH = "$2a$10$0kdsqr7Uqdy3xug/sG.v1.ErK3dTDoLXSvrJUxk1/ZzsrYRbxSUXG"


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def step(msg):
    print(f"step: {msg}", flush=True)


async def connect(**kw):
    opts = dict(connect_timeout=3, allow_reconnect=False, max_reconnect_attempts=0)
    opts.update(kw)
    return await nats.connect(URL, **opts)


async def sync(nc):
    """A real round trip on `nc`: everything sent before has been processed
    by the server, and everything it sent before has been received.

    Not `nc.flush()`: nats-py 2.16.0 writes the flush PING straight to the
    socket while earlier SUB/PUB commands may still sit in its pending
    buffer, so the PONG can come back before the server has seen them (about
    5% of runs here, against both servers). Publishing to a private inbox
    goes through the same buffer, so its echo is a proper barrier."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(inbox, b"")
    await sub.next_msg(timeout=WAIT)
    await sub.unsubscribe()


async def next_msg(sub, timeout=WAIT):
    return await sub.next_msg(timeout=timeout)


async def no_msg(sub, timeout=QUIET):
    try:
        m = await sub.next_msg(timeout=timeout)
    except errors.TimeoutError:
        return
    raise Failure(f"expected no message on {sub.subject}, got {m.subject} {m.data!r}")


async def next_non_inbox(sub):
    while True:
        m = await next_msg(sub)
        if not m.subject.startswith("_INBOX."):
            return m


async def pub_sub_ordering():
    pub = await connect()
    nc = await connect()
    await pub.publish("greet.early", b"too early")
    await sync(pub)
    sub = await nc.subscribe("greet.*")
    await sync(nc)
    names = ["joe", "pam", "bob"]
    for n in names:
        await pub.publish(f"greet.{n}", f"hello {n}".encode())
    await sync(pub)
    for n in names:
        m = await next_msg(sub)
        check(m.subject == f"greet.{n}", f"subject {m.subject!r}, want greet.{n}")
        check(m.data == f"hello {n}".encode(), f"payload {m.data!r}")
        check(not m.reply, f"unexpected reply {m.reply!r}")
    await no_msg(sub)
    await pub.close()
    await nc.close()


async def wildcard_star():
    nc = await connect()
    star = await nc.subscribe("foo.*")
    mid = await nc.subscribe("a.*.c")
    await sync(nc)
    for s in ["foo", "foo.a.b", "foo.x", "a.b.c", "a.b.c.d", "a.c", "a.x.c"]:
        await nc.publish(s, s.encode())
    await sync(nc)
    check((await next_msg(star)).subject == "foo.x", "foo.* first")
    check((await next_msg(mid)).subject == "a.b.c", "a.*.c first")
    check((await next_msg(mid)).subject == "a.x.c", "a.*.c second")
    await no_msg(star)
    await no_msg(mid, 0.05)
    await nc.close()


async def wildcard_full():
    nc = await connect()
    full = await nc.subscribe("foo.>")
    alls = await nc.subscribe(">")
    lit = await nc.subscribe("foo")
    await sync(nc)
    for s in ["foo", "foo.a", "foo.a.b", "bar.a"]:
        await nc.publish(s, s.encode())
    await sync(nc)
    check((await next_msg(full)).subject == "foo.a", "foo.> first must be foo.a (foo.> must not match foo)")
    check((await next_msg(full)).subject == "foo.a.b", "foo.> second")
    for want in ["foo", "foo.a", "foo.a.b", "bar.a"]:
        m = await next_non_inbox(alls)
        check(m.subject == want and m.data == want.encode(), f"> got {m.subject!r}, want {want!r}")
    check((await next_msg(lit)).subject == "foo", "literal foo")
    await no_msg(full)
    await no_msg(lit, 0.05)
    await nc.close()


async def queue_groups():
    n = 100
    members, conns = [], []
    for _ in range(3):
        c = await connect()
        members.append(await c.subscribe("work", queue="q"))
        await sync(c)
        conns.append(c)
    pc = await connect()
    plain = await pc.subscribe("work")
    await sync(pc)
    pub = await connect()
    for i in range(n):
        await pub.publish("work", str(i).encode())
    await sync(pub)
    for i in range(n):
        m = await next_msg(plain)
        check(m.data == str(i).encode(), f"plain subscriber order: got {m.data!r} want {i}")
    for c in conns:
        await sync(c)
    seen = set()
    counts = []
    for s in members:
        count = 0
        while True:
            try:
                m = await s.next_msg(timeout=0.3)
            except errors.TimeoutError:
                break
            v = int(m.data)
            check(v not in seen, f"message {v} delivered to two queue members")
            seen.add(v)
            count += 1
        counts.append(count)
    check(len(seen) == n, f"queue members got {counts} ({len(seen)} distinct of {n})")
    check(all(c > 0 for c in counts), f"every member must be used: {counts}")
    step(f"distribution {counts}")
    for c in conns + [pc, pub]:
        await c.close()


async def _request_reply(old_style):
    resp = await connect()

    async def handler(m):
        if m.reply:
            await resp.publish(m.reply, b"echo: " + m.data)

    await resp.subscribe("svc.echo", cb=handler)
    await sync(resp)
    req = await connect()
    for i in range(3):
        r = await req.request("svc.echo", f"ping {i}".encode(), timeout=WAIT, old_style=old_style)
        check(r.data == f"echo: ping {i}".encode(), f"reply {r.data!r}")
        check(r.subject.startswith("_INBOX."), f"reply subject {r.subject!r}")
    await req.close()
    await resp.close()


async def request_reply():
    await _request_reply(False)


async def request_reply_old_style():
    await _request_reply(True)


async def expect_no_responders(nc, subj, old_style):
    start = time.monotonic()
    try:
        r = await nc.request(subj, b"hi", timeout=10, old_style=old_style)
    except errors.NoRespondersError:
        pass
    except Exception as e:  # noqa: BLE001
        raise Failure(f"want NoRespondersError (old_style={old_style}), got {type(e).__name__}: {e}")
    else:
        raise Failure(f"request without responders returned {r!r}")
    took = time.monotonic() - start
    check(took < 2, f"must fail at once, took {took:.2f}s")


async def no_responders():
    nc = await connect()
    await expect_no_responders(nc, "nobody.home", False)
    step("new style ok")
    await expect_no_responders(nc, "nobody.home", True)
    step("old style ok")
    await nc.close()


async def no_responders_after_unsubscribe():
    resp = await connect()

    async def handler(m):
        await m.respond(b"ok")

    sub = await resp.subscribe("svc.gone", cb=handler)
    await sync(resp)
    req = await connect()
    r = await req.request("svc.gone", b"1", timeout=WAIT)
    check(r.data == b"ok", f"reply {r.data!r}")
    await sub.unsubscribe()
    await sync(resp)
    await expect_no_responders(req, "svc.gone", False)
    await req.close()
    await resp.close()


async def headers_multi_value():
    """nats-py headers are a plain dict (one value per key): publishing cannot
    express repeated keys, and a received repeated key keeps only its last
    value. So: dict headers round-trip; a raw HPUB with a repeated key is
    delivered and nats-py reports the last value."""
    nc = await connect()
    sub = await nc.subscribe("hdr")
    await sync(nc)
    await nc.publish("hdr", b"body", headers={"X-Single": "one", "X-Other": "two"})
    await nc.publish("hdr", b"", headers={"Only": "headers"})
    await sync(nc)
    m = await next_msg(sub)
    check(m.data == b"body", f"payload {m.data!r}")
    check(m.headers.get("X-Single") == "one" and m.headers.get("X-Other") == "two", f"headers {m.headers!r}")
    m = await next_msg(sub)
    check(m.data == b"", f"empty payload, got {m.data!r}")
    check(m.headers.get("Only") == "headers", f"headers {m.headers!r}")

    u = urlparse(URL)
    reader, writer = await asyncio.open_connection(u.hostname, u.port)
    await asyncio.wait_for(reader.readline(), WAIT)  # INFO
    hdr = b"NATS/1.0\r\nX-Multi: first\r\nX-Multi: second\r\nX-Multi: third\r\n\r\n"
    body = b"raw"
    writer.write(b'CONNECT {"verbose":false,"headers":true}\r\n')
    writer.write(b"HPUB hdr %d %d\r\n" % (len(hdr), len(hdr) + len(body)) + hdr + body + b"\r\nPING\r\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), WAIT)
    check(line == b"PONG\r\n", f"raw publisher got {line!r}")
    writer.close()
    m = await next_msg(sub)
    check(m.data == b"raw", f"payload {m.data!r}")
    check(m.headers.get("X-Multi") == "third", f"nats-py keeps the last value of a repeated key: {m.headers!r}")
    await nc.close()


async def auto_unsubscribe():
    nc = await connect()
    sub = await nc.subscribe("auto")
    await sub.unsubscribe(limit=50)
    await sync(nc)
    pub = await connect()
    for i in range(60):
        await pub.publish("auto", str(i).encode())
    await sync(pub)
    for i in range(50):
        m = await next_msg(sub)
        check(m.data == str(i).encode(), f"message {i}: {m.data!r}")
    await sync(nc)
    check(sub.delivered == 50, f"delivered {sub.delivered}")
    check(sub.pending_msgs == 0, f"pending {sub.pending_msgs} after max")
    await pub.close()
    await nc.close()


async def auto_unsubscribe_after_partial():
    nc = await connect()
    sub = await nc.subscribe("auto2")
    await sync(nc)
    pub = await connect()
    for i in range(3):
        await pub.publish("auto2", str(i).encode())
    await sync(pub)
    for i in range(3):
        check((await next_msg(sub)).data == str(i).encode(), f"message {i}")
    await sub.unsubscribe(limit=5)
    await sync(nc)
    for i in range(3, 13):
        await pub.publish("auto2", str(i).encode())
    await sync(pub)
    await sync(nc)
    for i in range(3, 5):
        check((await next_msg(sub)).data == str(i).encode(), f"message {i}")
    check(sub.pending_msgs == 0, f"pending {sub.pending_msgs} after max")
    check(sub.delivered == 5, f"delivered {sub.delivered}")
    await pub.close()
    await nc.close()


async def max_msgs_exactly_once():
    nc = await connect()
    got = []
    done = asyncio.get_running_loop().create_future()

    async def cb(m):
        got.append(m.data.decode())
        if len(got) == 50 and not done.done():
            done.set_result(True)

    await nc.subscribe("max50", cb=cb, max_msgs=50)
    await sync(nc)
    pub = await connect()
    for i in range(50):
        await pub.publish("max50", str(i).encode())
    await sync(pub)
    try:
        await asyncio.wait_for(done, WAIT)
    except asyncio.TimeoutError:
        raise Failure(f"only {len(got)} of 50 messages arrived")
    await pub.publish("max50", b"extra")
    await sync(pub)
    await sync(nc)
    await asyncio.sleep(0.1)
    check(got == [str(i) for i in range(50)], f"delivered {got}")
    await pub.close()
    await nc.close()


async def subscription_drain():
    nc = await connect()
    pub = await connect()
    got = []

    async def cb(m):
        got.append(m.data.decode())

    sub = await nc.subscribe("drain.sub", cb=cb)
    await sync(nc)
    for i in range(20):
        await pub.publish("drain.sub", str(i).encode())
    await sync(pub)
    await sync(nc)
    # drain(): UNSUB, a round trip, then wait until the callback has
    # processed every pending message.
    await asyncio.wait_for(sub.drain(), WAIT)
    check(got == [str(i) for i in range(20)], f"drained subscription got {got}")
    await pub.publish("drain.sub", b"late")
    await sync(pub)
    await sync(nc)
    check(len(got) == 20, f"message after drain delivered: {got[20:]}")
    other = await nc.subscribe("drain.other")
    await sync(nc)
    await pub.publish("drain.other", b"x")
    await sync(pub)
    check((await next_msg(other)).data == b"x", "connection still usable")
    await pub.close()
    await nc.close()


async def client_drain():
    closed = asyncio.Event()

    async def closed_cb():
        closed.set()

    nc = await connect(closed_cb=closed_cb, drain_timeout=WAIT)
    pub = await connect()
    got = {"cd.a": [], "cd.b": []}

    async def cb(m):
        got[m.subject].append(m.data.decode())

    for s in got:
        await nc.subscribe(s, cb=cb)
    await sync(nc)
    for i in range(10):
        await pub.publish("cd.a", str(i).encode())
        await pub.publish("cd.b", str(i).encode())
    await sync(pub)
    await sync(nc)
    await asyncio.wait_for(nc.drain(), WAIT)
    await asyncio.wait_for(closed.wait(), WAIT)
    check(nc.is_closed, "closed after drain")
    for s, v in got.items():
        check(v == [str(i) for i in range(10)], f"{s} got {v}")
    c2 = await connect()
    sub = await c2.subscribe("cd.a")
    await sync(c2)
    await pub.publish("cd.a", b"again")
    check((await next_msg(sub)).data == b"again", "server unaffected")
    await c2.close()
    await pub.close()


async def flush_rtt():
    """flush() and rtt() round-trip to the server (PING/PONG). nats-py's
    flush() is not a barrier for earlier commands (see sync()), so the
    delivery check uses sync()."""
    nc = await connect()
    pub = await connect()
    await nc.flush(timeout=1)
    await pub.flush(timeout=1)
    rtt = await nc.rtt()
    check(0 < rtt < 1, f"rtt {rtt}")
    sub = await nc.subscribe("flush.x")
    await sync(nc)
    for i in range(5):
        await pub.publish("flush.x", str(i).encode())
    await sync(pub)
    await sync(nc)
    check(sub.pending_msgs == 5, f"after both round trips all 5 messages must be pending, got {sub.pending_msgs}")
    step(f"rtt {rtt * 1e6:.0f}us")
    await pub.close()
    await nc.close()


async def max_payload_client_side():
    nc = await connect()
    check(nc.max_payload == 1024, f"max_payload {nc.max_payload}")
    try:
        await nc.publish("foo", b"\0" * 2000)
    except errors.MaxPayloadError:
        pass
    else:
        raise Failure("publish over max_payload must fail client-side")
    sub = await nc.subscribe("foo")
    await sync(nc)
    await nc.publish("foo", b"\1" * 1024)
    await sync(nc)
    check(len((await next_msg(sub)).data) == 1024, "payload length")
    check(nc.is_connected, "still connected")
    await nc.close()


async def assert_works(nc):
    sub = await nc.subscribe("auth.check")
    await sync(nc)
    await nc.publish("auth.check", b"ok")
    check((await next_msg(sub)).data == b"ok", "auth.check")
    await nc.close()


async def assert_rejected(what, **kw):
    errs = []

    async def error_cb(e):
        errs.append(e)

    try:
        nc = await connect(error_cb=error_cb, **kw)
    except Exception as e:  # noqa: BLE001
        errs.append(e)
    else:
        await nc.close()
        raise Failure(f"{what}: connection must be rejected")
    text = " ".join(f"{type(e).__name__}: {e}" for e in errs)
    check(
        any(isinstance(e, errors.AuthorizationError) or "authorization violation" in str(e).lower() for e in errs),
        f"{what}: want authorization violation, got {text}",
    )


async def config_users():
    for u, p in [("a", "b"), ("c", "d")]:
        await assert_works(await connect(user=u, password=p))
    await assert_rejected("wrong password", user="a", password="d")
    await assert_rejected("unknown user", user="z", password="b")
    await assert_rejected("no credentials")


async def config_users_bcrypt():
    await assert_works(await connect(user="plain", password="plainpass"))
    await assert_works(await connect(user="hashed", password="s3cret"))
    await assert_rejected("bcrypt user, wrong password", user="hashed", password="wrong")
    await assert_rejected("bcrypt user, the hash as password", user="hashed", password=BCRYPT_HASH)
    await assert_rejected("plain user, wrong password", user="plain", password="s3cret")
    await assert_rejected("no credentials")


async def config_token():
    await assert_works(await connect(token="s3cr3t-token"))
    await assert_rejected("wrong token", token="nope")
    await assert_rejected("no credentials")


async def reconnect_after_restart():
    reconnected = asyncio.Event()

    async def reconnected_cb():
        reconnected.set()

    async def error_cb(e):
        step(f"error callback: {type(e).__name__}: {e}")

    nc = await connect(
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.1,
        reconnected_cb=reconnected_cb,
        error_cb=error_cb,
    )
    sub = await nc.subscribe("re.x")
    wsub = await nc.subscribe("re.>")
    await sync(nc)
    await nc.publish("re.x", b"before")
    await sync(nc)
    check((await next_msg(sub)).data == b"before", "before restart")
    check((await next_msg(wsub)).data == b"before", "before restart (wildcard)")
    print("READY", flush=True)
    line = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline), 30)
    check(line.strip() == "RESTARTED", f"unexpected stdin line {line!r}")
    try:
        await asyncio.wait_for(reconnected.wait(), 15)
    except asyncio.TimeoutError:
        raise Failure("no reconnect within 15s")
    step("reconnected")
    await sync(nc)
    pub = await connect()
    await pub.publish("re.x", b"after")
    await sync(pub)
    check((await next_msg(sub)).data == b"after", "subscription resumed after restart")
    check((await next_msg(wsub)).data == b"after", "wildcard subscription resumed after restart")
    await nc.publish("re.x", b"own")
    check((await next_msg(sub)).data == b"own", "own publish after restart")
    await pub.close()
    await nc.close()


# ---------------------------------------------------------------------------
# JetStream (servers started with `-js -sd <dir>`). The expectations mirror
# the async-nats scenarios of the same names in tests/conformance/jetstream.rs
# (js_get_and_purge combines parts of js_msg_get, js_msg_delete, js_purge).

# "natrium" or "nats-server": set by the Rust harness for the checks that
# differ between the two (KNOWN DIFFERENCE in conformance/DIFFERENCES.md).
SERVER_KIND = os.environ.get("NATRIUM_CONFORMANCE_SERVER", "")


async def js_connect():
    nc = await connect()
    return nc, nc.jetstream(timeout=3)


def check_api_err(e, err_code, what):
    check(isinstance(e, js_errors.APIError), f"{what}: expected an API error, got {type(e).__name__}: {e}")
    check(e.err_code == err_code, f"{what}: err_code {e.err_code} ({e.description!r}), want {err_code}")
    return e


async def expect_api_err(coro, err_code, what, cls=js_errors.APIError):
    try:
        r = await coro
    except js_errors.APIError as e:
        check(isinstance(e, cls), f"{what}: {type(e).__name__} is not a {cls.__name__}: {e}")
        return check_api_err(e, err_code, what)
    raise Failure(f"{what}: expected API error {err_code}, got {r!r}")


def state_of(st):
    return f"msgs={st.messages} bytes={st.bytes} first={st.first_seq} last={st.last_seq}"


def check_state(st, msgs, nbytes, first, last, what):
    want = f"msgs={msgs} bytes={nbytes} first={first} last={last}"
    check(state_of(st) == want, f"{what}: state {state_of(st)}, want {want}")


def check_counts(st, msgs, first, last, what):
    check(
        (st.messages, st.first_seq, st.last_seq) == (msgs, first, last),
        f"{what}: state {state_of(st)}, want msgs={msgs} first={first} last={last}",
    )


async def js_stream_crud():
    nc, js = await js_connect()
    step("create")
    cfg = StreamConfig(name="CRUD", subjects=["crud.>"], storage=StorageType.FILE)
    info = await js.add_stream(cfg)
    c = info.config
    check(c.name == "CRUD", f"name {c.name!r}")
    check(c.subjects == ["crud.>"], f"subjects {c.subjects}")
    check(
        (c.max_msgs, c.max_bytes, c.max_msgs_per_subject, c.max_consumers) == (-1, -1, -1, -1),
        f"defaults: {c.max_msgs} {c.max_bytes} {c.max_msgs_per_subject} {c.max_consumers}",
    )
    check(c.duplicate_window == 120, f"duplicate window {c.duplicate_window}")
    check(c.num_replicas == 1, f"replicas {c.num_replicas}")
    check(c.storage == StorageType.FILE, f"storage {c.storage}")
    check_state(info.state, 0, 0, 0, 0, "new stream")

    step("create again with the same config")
    await js.add_stream(cfg)
    step("create with a different config")
    await expect_api_err(
        js.add_stream(name="CRUD", subjects=["crud.>"], max_msgs=5),
        10058,
        "different config",
        js_errors.BadRequestError,
    )

    step("info")
    info = await js.stream_info("CRUD")
    check(info.config.name == "CRUD" and info.config.storage == StorageType.FILE, f"info {info.config}")

    step("update")
    info = await js.update_stream(cfg, max_msgs=100, subjects=["crud.>", "crud2.*"])
    check(info.config.max_msgs == 100, f"updated max_msgs {info.config.max_msgs}")
    check(len(info.config.subjects) == 2, f"updated subjects {info.config.subjects}")
    check((await js.stream_info("CRUD")).config.max_msgs == 100, "info after update")
    await expect_api_err(
        js.update_stream(cfg, max_msgs=100, subjects=["crud.>", "crud2.*"], storage=StorageType.MEMORY),
        10052,
        "update of the storage type",
    )
    await expect_api_err(js.update_stream(name="NOPE"), 10059, "update of a missing stream", js_errors.NotFoundError)

    step("names and list")
    await js.add_stream(name="CRUD_B", subjects=["crudb"], storage=StorageType.FILE)
    listed = sorted(si.config.name for si in await js.streams_info())
    check(listed == ["CRUD", "CRUD_B"], f"stream list {listed}")
    name = await js.find_stream_name_by_subject("crud2.x")
    check(name == "CRUD", f"stream by subject crud2.x: {name!r}")
    names = await nc.request("$JS.API.STREAM.NAMES", b"", timeout=WAIT)
    got = sorted(json.loads(names.data)["streams"])
    check(got == ["CRUD", "CRUD_B"], f"stream names {got}")

    step("delete")
    check(await js.delete_stream("CRUD_B") is True, "delete CRUD_B")
    e = await expect_api_err(js.stream_info("CRUD_B"), 10059, "info of a deleted stream", js_errors.NotFoundError)
    check(e.description == "stream not found", f"description {e.description!r}")
    check("stream not found" in str(e), f"error text {e}")
    await expect_api_err(js.delete_stream("CRUD_B"), 10059, "delete of a deleted stream", js_errors.NotFoundError)
    await expect_api_err(js.stream_info("MISSING"), 10059, "info of a missing stream", js_errors.NotFoundError)
    listed = [si.config.name for si in await js.streams_info()]
    check(listed == ["CRUD"], f"stream list after delete {listed}")

    step("create the deleted stream again")
    info = await js.add_stream(name="CRUD_B", subjects=["crudb"], storage=StorageType.FILE)
    check_state(info.state, 0, 0, 0, 0, "re-created stream")
    await nc.close()


async def js_publish_acks():
    nc, js = await js_connect()
    await js.add_stream(name="ACKS", subjects=["acks.>"], storage=StorageType.FILE)
    step("publish with acks")
    for i in range(1, 4):
        ack = await js.publish("acks.a", f"m{i}".encode())
        check(ack.stream == "ACKS" and ack.seq == i and not ack.duplicate, f"ack {ack}, want ACKS seq {i}")

    step("dedup with a message id")
    ack = await js.publish("acks.d", b"one", headers={"Nats-Msg-Id": "id-1"})
    check(ack.seq == 4 and not ack.duplicate, f"first id-1: {ack}")
    ack = await js.publish("acks.d", b"one again", headers={"Nats-Msg-Id": "id-1"})
    check(ack.stream == "ACKS" and ack.seq == 4 and ack.duplicate is True, f"duplicate id-1: {ack}")
    ack = await js.publish("acks.e", b"other subject", headers={"Nats-Msg-Id": "id-1"})
    check(ack.seq == 4 and ack.duplicate is True, f"id-1 on another subject: {ack}")
    ack = await js.publish("acks.d", b"two", headers={"Nats-Msg-Id": "id-2"})
    check(ack.seq == 5 and not ack.duplicate, f"id-2: {ack}")
    m = await js.get_msg("ACKS", 4)
    check(m.data == b"one", f"seq 4 keeps the first payload: {m.data!r}")

    step("expected last sequence")
    e = await expect_api_err(
        js.publish("acks.a", b"x", headers={"Nats-Expected-Last-Sequence": "2"}),
        10071,
        "expected last sequence 2",
        js_errors.BadRequestError,
    )
    check("wrong last sequence" in str(e), f"error text {e}")
    check(e.description == "wrong last sequence: 5", f"description {e.description!r}")
    ack = await js.publish("acks.a", b"6", headers={"Nats-Expected-Last-Sequence": "5"})
    check(ack.seq == 6, f"ack {ack}")
    await expect_api_err(js.publish("acks.a", b"x", stream="OTHER"), 10060, "expected stream OTHER")

    step("async publishes")
    futs = [await js.publish_async("acks.async", f"async-{i}".encode()) for i in range(3)]
    await asyncio.wait_for(js.publish_async_completed(), WAIT)
    for i, f in enumerate(futs):
        a = f.result()
        check(a.stream == "ACKS" and a.seq == 7 + i, f"async ack {i}: {a}")

    step("headers are stored")
    ack = await js.publish("acks.h", b"hdr", headers={"X-Custom": "v1"})
    check(ack.seq == 10, f"ack {ack}")
    m = await js.get_msg("ACKS", 10)
    check(
        m.subject == "acks.h" and m.data == b"hdr" and (m.headers or {}).get("X-Custom") == "v1",
        f"stored message {m.subject} {m.data!r} {m.headers}",
    )
    check_counts((await js.stream_info("ACKS")).state, 10, 1, 10, "after publishing")

    step("no stream for the subject")
    try:
        r = await js.publish("nostream.x", b"x")
    except js_errors.NoStreamResponseError:
        pass
    else:
        raise Failure(f"publish outside every stream: got {r}")
    await nc.close()


async def js_limits_example():
    nc, js = await js_connect()
    cfg = StreamConfig(name="EVENTS", subjects=["events.>"], storage=StorageType.FILE)
    await js.add_stream(cfg)
    step("6 sync publishes")
    for s in [
        "events.page_loaded",
        "events.mouse_clicked",
        "events.mouse_clicked",
        "events.page_loaded",
        "events.mouse_clicked",
        "events.input_focused",
    ]:
        await js.publish(s, b"")
    step("6 async publishes")
    futs = []
    for s in [
        "events.input_changed",
        "events.input_blurred",
        "events.key_pressed",
        "events.input_focused",
        "events.input_changed",
        "events.input_blurred",
    ]:
        futs.append(await js.publish_async(s, b""))
    await asyncio.wait_for(asyncio.gather(*futs), WAIT)
    check_state((await js.stream_info("EVENTS")).state, 12, 594, 1, 12, "12 messages")

    step("MaxMsgs=10")
    info = await js.update_stream(cfg, max_msgs=10)
    check(info.config.max_msgs == 10, f"max_msgs {info.config.max_msgs}")
    check_state(info.state, 10, 496, 3, 12, "MaxMsgs=10")

    step("MaxBytes=300")
    info = await js.update_stream(cfg, max_msgs=10, max_bytes=300)
    check(info.config.max_bytes == 300, f"max_bytes {info.config.max_bytes}")
    check_state(info.state, 6, 298, 7, 12, "MaxBytes=300")

    step("MaxAge=1s")
    # The duplicate window may not exceed max_age.
    info = await js.update_stream(cfg, max_msgs=10, max_bytes=300, max_age=1.0, duplicate_window=1.0)
    check(info.config.max_age == 1.0, f"max_age {info.config.max_age}")
    await asyncio.sleep(1.5)
    deadline = time.monotonic() + 3
    st = (await js.stream_info("EVENTS")).state
    while st.messages != 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        st = (await js.stream_info("EVENTS")).state
    check_state(st, 0, 0, 13, 12, "after MaxAge")
    await nc.close()


async def js_get_and_purge():
    nc, js = await js_connect()
    await js.add_stream(name="GP", subjects=["gp.>"], storage=StorageType.FILE)
    for i, (s, p) in enumerate([("gp.a", "a1"), ("gp.b", "b1"), ("gp.a", "a2"), ("gp.b", "b2"), ("gp.c", "c1")]):
        ack = await js.publish(s, p.encode())
        check(ack.seq == i + 1, f"ack {ack}")

    step("get by sequence")
    m = await js.get_msg("GP", 2)
    check((m.seq, m.subject, m.data) == (2, "gp.b", b"b1"), f"seq 2: {m.seq} {m.subject} {m.data!r}")
    step("last message by subject")
    m = await js.get_last_msg("GP", "gp.a")
    check((m.seq, m.data) == (3, b"a2"), f"last gp.a: {m.seq} {m.data!r}")
    await expect_api_err(js.get_msg("GP", 99), 10037, "get 99", js_errors.NotFoundError)
    await expect_api_err(js.get_last_msg("GP", "gp.zzz"), 10037, "last gp.zzz", js_errors.NotFoundError)
    await expect_api_err(js.get_msg("NOPE", 1), 10059, "get from a missing stream", js_errors.NotFoundError)

    step("delete a message")
    check(await js.delete_msg("GP", 3) is True, "delete 3")
    info = await js.stream_info("GP")
    check_counts(info.state, 4, 1, 5, "after delete")
    check(info.state.num_deleted == 1, f"num_deleted {info.state.num_deleted}")
    await expect_api_err(js.get_msg("GP", 3), 10037, "get deleted 3", js_errors.NotFoundError)
    last_a = js.get_last_msg("GP", "gp.a")
    if SERVER_KIND == "nats-server":
        # KNOWN DIFFERENCE: nats-server 2.9.10's file store does not move a
        # subject's last sequence back when that message is deleted, so the
        # last message of gp.a (seq 1) is "not found". natrium returns seq 1.
        await expect_api_err(last_a, 10037, "last gp.a after deleting its last message (nats-server 2.9.10)")
    else:
        m = await last_a
        check(m.seq == 1, f"last gp.a after delete: {m.seq}")
    try:
        await js.delete_msg("GP", 99)
    except js_errors.APIError:
        pass
    else:
        raise Failure("delete of a missing sequence must fail")

    step("purge with a subject filter")
    check(await js.purge_stream("GP", subject="gp.a") is True, "purge gp.a")
    check_counts((await js.stream_info("GP")).state, 3, 2, 5, "after purging gp.a")
    await expect_api_err(js.get_last_msg("GP", "gp.a"), 10037, "last gp.a after purge", js_errors.NotFoundError)
    m = await js.get_last_msg("GP", "gp.b")
    check(m.seq == 4, f"last gp.b: {m.seq}")

    step("purge all")
    check(await js.purge_stream("GP") is True, "purge")
    check_state((await js.stream_info("GP")).state, 0, 0, 6, 5, "after purge")
    ack = await js.publish("gp.a", b"after")
    check(ack.seq == 6, f"seq after purge {ack.seq}")
    check_counts((await js.stream_info("GP")).state, 1, 6, 6, "after publishing again")
    await expect_api_err(js.purge_stream("NOPE"), 10059, "purge of a missing stream", js_errors.NotFoundError)
    await nc.close()


SCENARIOS = {
    f.__name__: f
    for f in [
        pub_sub_ordering,
        wildcard_star,
        wildcard_full,
        queue_groups,
        request_reply,
        request_reply_old_style,
        no_responders,
        no_responders_after_unsubscribe,
        headers_multi_value,
        auto_unsubscribe,
        auto_unsubscribe_after_partial,
        max_msgs_exactly_once,
        subscription_drain,
        client_drain,
        flush_rtt,
        max_payload_client_side,
        config_users,
        config_users_bcrypt,
        config_token,
        reconnect_after_restart,
        js_stream_crud,
        js_publish_acks,
        js_limits_example,
        js_get_and_purge,
    ]
}


def main():
    global URL
    if len(sys.argv) != 3:
        print("FAIL: usage: scenario.py <name> <url>", flush=True)
        sys.exit(2)
    name, URL = sys.argv[1], sys.argv[2]
    f = SCENARIOS.get(name)
    if f is None:
        print(f"FAIL: unknown scenario {name!r}", flush=True)
        sys.exit(2)
    try:
        asyncio.run(asyncio.wait_for(f(), 25))
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    except BaseException as e:  # noqa: BLE001
        traceback.print_exc(file=sys.stdout)
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
    print("OK", flush=True)


if __name__ == "__main__":
    main()

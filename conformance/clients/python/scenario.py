"""Conformance scenarios driven through nats-py (pinned in scripts/test).

Usage: scenario.py <name> <url>

Prints progress lines and finally `OK` (exit 0) or `FAIL: <reason>` (exit 1).
The reconnect scenario prints `READY`, then waits for a `RESTARTED` line on
stdin (the Rust harness restarts the server on the same port in between).
Credentials and subjects match the catalogue in conformance/src/lib.rs
(module `configs`).
"""

import asyncio
import base64
import datetime
import hashlib
import json
import os
import sys
import time
import traceback
from urllib.parse import urlparse

import nats
from nats import errors
from nats.js import errors as js_errors
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

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


# JetStream consumers, key-value and object store (the same scenarios as the
# nats.go program's consumers.go and kv.go, names as in the async-nats
# consumers.rs and kv.rs).


# Note: nats-py's fetch() raises a plain asyncio.TimeoutError on some paths
# (not nats.errors.TimeoutError, which is a subclass of it), so fetch
# timeouts are caught as asyncio.TimeoutError.


def meta_str(m):
    md = m.metadata
    return f"stream seq {md.sequence.stream} consumer seq {md.sequence.consumer} delivered {md.num_delivered}"


def consumer_state(ci):
    return (
        f"delivered={ci.delivered.stream_seq} ack_floor={ci.ack_floor.stream_seq} "
        f"num_pending={ci.num_pending} num_ack_pending={ci.num_ack_pending}"
    )


def check_consumer(ci, delivered, ack_floor, pending, ack_pending, what):
    want = f"delivered={delivered} ack_floor={ack_floor} num_pending={pending} num_ack_pending={ack_pending}"
    check(consumer_state(ci) == want, f"{what}: consumer {consumer_state(ci)}, want {want}")


async def poll_consumer(js, stream, name, ok):
    """Consumer info, polled until `ok` holds (bounded by WAIT)."""
    deadline = time.monotonic() + WAIT
    ci = await js.consumer_info(stream, name)
    while not ok(ci) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        ci = await js.consumer_info(stream, name)
    return ci


async def js_pull_work_queue():
    """A work-queue stream with one durable pull consumer shared by two
    workers (each on its own connection, asyncio tasks) fetching batches:
    every job is processed exactly once, the stream ends empty, the consumer
    has nothing pending."""
    nc, js = await js_connect()
    await js.add_stream(name="WQ", subjects=["wq.>"], retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE)
    ci = await js.add_consumer("WQ", durable_name="WORKERS", ack_policy=AckPolicy.EXPLICIT)
    check(ci.name == "WORKERS" and ci.config.ack_policy == AckPolicy.EXPLICIT, f"consumer {ci.config}")
    n = 120
    step(f"publish {n} jobs")
    futs = [await js.publish_async("wq.job", str(i).encode()) for i in range(n)]
    await asyncio.wait_for(asyncio.gather(*futs), WAIT)
    check_counts((await js.stream_info("WQ")).state, n, 1, n, "before the workers")
    check_consumer(await js.consumer_info("WQ", "WORKERS"), 0, 0, n, 0, "before the workers")

    step("two workers fetch batches and ack")
    conns, subs = [], []
    for _ in range(2):
        wnc, wjs = await js_connect()
        conns.append(wnc)
        subs.append(await wjs.pull_subscribe_bind("WORKERS", stream="WQ"))
    owner = {}
    counts = [0, 0]
    deadline = time.monotonic() + 15

    async def worker(w):
        while len(owner) < n:
            check(time.monotonic() < deadline, f"worker {w}: jobs not all processed in time")
            try:
                msgs = await subs[w].fetch(7, timeout=0.5)
            except asyncio.TimeoutError:
                continue
            check(1 <= len(msgs) <= 7, f"worker {w}: batch of {len(msgs)}")
            for m in msgs:
                md = m.metadata
                i = int(m.data)
                check(md.stream == "WQ" and md.consumer == "WORKERS", f"metadata {md}")
                check(md.sequence.stream == i + 1, f"job {i} has stream sequence {md.sequence.stream}")
                check(md.num_delivered == 1, f"job {i} delivered {md.num_delivered} times")
                check(i not in owner, f"job {i} processed twice (workers {owner.get(i)} and {w})")
                owner[i] = w
                counts[w] += 1
                # One worker acks fire-and-forget, the other waits for the
                # server's confirmation.
                if w == 0:
                    await m.ack()
                else:
                    await m.ack_sync()

    await asyncio.gather(worker(0), worker(1))
    step(f"jobs per worker {counts}")
    check(len(owner) == n, f"{len(owner)} distinct jobs processed, want {n}")
    check(counts[0] > 0 and counts[1] > 0, f"both workers must get jobs: {counts}")
    for w, sub in enumerate(subs):
        try:
            msgs = await sub.fetch(1, timeout=0.3)
        except asyncio.TimeoutError:
            continue
        raise Failure(f"worker {w}: fetch after all jobs got {[meta_str(m) for m in msgs]}")

    step("stream is empty, consumer has nothing pending")
    deadline = time.monotonic() + WAIT
    st = (await js.stream_info("WQ")).state
    while st.messages != 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        st = (await js.stream_info("WQ")).state
    check_state(st, 0, 0, n + 1, n, "after the workers")
    ci = await poll_consumer(js, "WQ", "WORKERS", lambda ci: ci.num_ack_pending == 0)
    check_consumer(ci, n, n, 0, 0, "after the workers")
    check(ci.num_redelivered == 0, f"num_redelivered {ci.num_redelivered}")
    for c in conns + [nc]:
        await c.close()


async def js_push_durable_resume():
    """A durable push consumer with a deliver subject (ack_wait 1s): the first
    connection gets all 10 messages, acks 1..5 and closes; a new connection
    binds to the same durable and gets exactly 6..10 (redelivered, so
    num_delivered 2), and nothing more once it has acked them."""
    nc, js = await js_connect()
    await js.add_stream(name="PUSH", subjects=["push.>"], storage=StorageType.FILE)
    for i in range(1, 11):
        await js.publish("push.m", f"m{i}".encode())
    ci = await js.add_consumer(
        "PUSH",
        durable_name="RESUME",
        deliver_subject="deliver.resume",
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=1.0,
    )
    check(ci.config.deliver_subject == "deliver.resume" and ci.config.ack_wait == 1.0, f"consumer {ci.config}")
    check(not ci.push_bound, "push_bound before any subscription")

    step("first connection gets 1..10, acks 1..5")
    nc1, js1 = await js_connect()
    sub1 = await js1.subscribe("push.>", durable="RESUME", stream="PUSH")
    for i in range(1, 11):
        m = await next_msg(sub1)
        md = m.metadata
        check(
            (md.sequence.stream, md.sequence.consumer, md.num_delivered) == (i, i, 1),
            f"first connection message {i}: {meta_str(m)}",
        )
        check(m.data == f"m{i}".encode(), f"payload {m.data!r}")
        if i <= 5:
            await m.ack_sync()
    ci = await poll_consumer(js, "PUSH", "RESUME", lambda ci: ci.push_bound)
    check(ci.push_bound, "push_bound while the first connection is subscribed")
    try:
        await js.subscribe("push.>", durable="RESUME", stream="PUSH")
    except js_errors.Error as e:
        check("already bound" in str(e), f"second bind while bound: {e}")
    else:
        raise Failure("a second subscription to a bound push consumer must be refused")
    check_consumer(ci, 10, 5, 0, 5, "after acking half")
    await nc1.close()

    step("the consumer is unbound once the first connection is gone")
    ci = await poll_consumer(js, "PUSH", "RESUME", lambda ci: not ci.push_bound)
    check(not ci.push_bound, "push_bound after the first connection closed")

    step("second connection gets exactly 6..10")
    nc2, js2 = await js_connect()
    sub2 = await js2.subscribe("push.>", durable="RESUME", stream="PUSH")
    for i in range(6, 11):
        m = await next_msg(sub2)
        md = m.metadata
        check(
            (md.sequence.stream, md.num_delivered) == (i, 2),
            f"second connection: {meta_str(m)}, want stream seq {i} delivered 2",
        )
        check(m.data == f"m{i}".encode(), f"payload {m.data!r}")
        await m.ack_sync()
    # Longer than ack_wait: nothing acked comes back.
    await no_msg(sub2, 1.5)
    check_consumer(await js.consumer_info("PUSH", "RESUME"), 10, 10, 0, 0, "after the second connection")
    await nc2.close()
    await nc.close()


async def js_deliver_policies():
    """Every deliver policy, with and without a filter subject: exactly which
    stream sequences arrive, with consumer sequences and num_pending."""
    nc, js = await js_connect()
    await js.add_stream(name="DP", subjects=["dp.>"], storage=StorageType.FILE)
    stored = {1: ("dp.a", b"a1"), 2: ("dp.b", b"b1"), 3: ("dp.a", b"a2"), 4: ("dp.c", b"c1"), 5: ("dp.b", b"b2")}
    start_time = None
    for seq in range(1, 6):
        if seq == 4:
            await asyncio.sleep(0.1)
            start_time = datetime.datetime.now(datetime.timezone.utc)
            await asyncio.sleep(0.1)
        ack = await js.publish(stored[seq][0], stored[seq][1])
        check(ack.seq == seq, f"ack {ack}")

    async def expect(what, sub, want):
        for i, seq in enumerate(want):
            m = await next_msg(sub)
            md = m.metadata
            check(
                md.sequence.stream == seq, f"{what}: message {i + 1} has stream seq {md.sequence.stream}, want {want}"
            )
            check((m.subject, m.data) == stored[seq], f"{what}: seq {seq} is {m.subject} {m.data!r}")
            check(md.sequence.consumer == i + 1, f"{what}: seq {seq} has consumer seq {md.sequence.consumer}")
            check(md.num_delivered == 1, f"{what}: seq {seq} delivered {md.num_delivered} times")
            pending = len(want) - i - 1
            check(md.num_pending == pending, f"{what}: seq {seq} has num_pending {md.num_pending}, want {pending}")
        await no_msg(sub)

    # Each consumer is created before anything listens on its deliver
    # subject, so its num_pending is that of a consumer that has delivered
    # nothing yet; then a subscription binds to it.
    D = DeliverPolicy
    cases = [
        ("all", dict(deliver_policy=D.ALL), [1, 2, 3, 4, 5]),
        ("last", dict(deliver_policy=D.LAST), [5]),
        ("last_per_subject", dict(deliver_policy=D.LAST_PER_SUBJECT, filter_subject="dp.>"), [3, 4, 5]),
        ("by_start_sequence 3", dict(deliver_policy=D.BY_START_SEQUENCE, opt_start_seq=3), [3, 4, 5]),
        ("by_start_time", dict(deliver_policy=D.BY_START_TIME, opt_start_time=start_time), [4, 5]),
        ("all, filter dp.a", dict(deliver_policy=D.ALL, filter_subject="dp.a"), [1, 3]),
        ("last, filter dp.a", dict(deliver_policy=D.LAST, filter_subject="dp.a"), [3]),
        (
            "by_start_sequence 2, filter dp.a",
            dict(deliver_policy=D.BY_START_SEQUENCE, opt_start_seq=2, filter_subject="dp.a"),
            [3],
        ),
        (
            "by_start_time, filter dp.b",
            dict(deliver_policy=D.BY_START_TIME, opt_start_time=start_time, filter_subject="dp.b"),
            [5],
        ),
        ("last_per_subject, filter dp.b", dict(deliver_policy=D.LAST_PER_SUBJECT, filter_subject="dp.b"), [5]),
    ]
    for i, (what, params, want) in enumerate(cases):
        step(what)
        name = f"DP{i}"
        # name and durable_name: nats-py creates it with
        # $JS.API.CONSUMER.CREATE.<stream>.<name>[.<filter>].
        ci = await js.add_consumer(
            "DP",
            name=name,
            durable_name=name,
            deliver_subject=nc.new_inbox(),
            ack_policy=AckPolicy.NONE,
            **params,
        )
        check(
            ci.config.deliver_policy == params["deliver_policy"]
            and ci.config.filter_subject == params.get("filter_subject"),
            f"{what}: consumer config {ci.config}",
        )
        check(
            (ci.num_pending, ci.delivered.consumer_seq) == (len(want), 0),
            f"{what}: new consumer num_pending {ci.num_pending} delivered {ci.delivered.consumer_seq}, "
            f"want {len(want)} and 0",
        )
        sub = await js.subscribe_bind("DP", ci.config, name)
        await expect(what, sub, want)
        # delivered.stream_seq: nats-server reports the last stream sequence
        # it looked at (5, past messages the filter skipped), at least the
        # last one delivered.
        ci = await js.consumer_info("DP", name)
        check(
            ci.num_pending == 0 and ci.delivered.consumer_seq == len(want) and want[-1] <= ci.delivered.stream_seq <= 5,
            f"{what}: consumer num_pending {ci.num_pending} delivered "
            f"{ci.delivered.consumer_seq}/{ci.delivered.stream_seq}, want 0 and {len(want)}/{want[-1]}..5",
        )
        await sub.unsubscribe()
        check(await js.delete_consumer("DP", name) is True, f"{what}: delete consumer")

    step("new")
    sub = await js.subscribe(
        "dp.>", stream="DP", deliver_policy=D.NEW, config=ConsumerConfig(ack_policy=AckPolicy.NONE)
    )
    await no_msg(sub)
    stored[6] = ("dp.c", b"c2")
    await js.publish("dp.c", b"c2")
    await expect("new", sub, [6])
    await sub.unsubscribe()
    await nc.close()


async def js_nak_redelivery():
    """A pull consumer with ack_wait 1s: NAK -> redelivered at once with
    num_delivered 2; NAK with a delay longer than ack_wait (nats-py 2.16's
    `nak(delay=)`) -> not before the delay; no ack -> redelivered after
    ack_wait; in_progress pushes the deadline back; term -> never again
    (and the MSG_TERMINATED advisory)."""
    nc, js = await js_connect()
    await js.add_stream(name="NAK", subjects=["nak.>"], storage=StorageType.FILE)
    await js.add_consumer("NAK", durable_name="NAKC", ack_policy=AckPolicy.EXPLICIT, ack_wait=1.0)
    term = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.NAK.NAKC")
    await sync(nc)
    sub = await js.pull_subscribe_bind("NAKC", stream="NAK")

    async def publish(seq):
        ack = await js.publish("nak.x", f"n{seq}".encode())
        check(ack.seq == seq, f"ack {ack}")

    async def fetch(what, timeout, seq, dc):
        """The next message within `timeout`: stream seq `seq`, delivered `dc` times."""
        try:
            msgs = await sub.fetch(1, timeout=timeout)
        except asyncio.TimeoutError:
            raise Failure(f"{what}: no message within {timeout}s")
        check(len(msgs) == 1, f"{what}: {len(msgs)} messages")
        m = msgs[0]
        md = m.metadata
        check(
            (md.sequence.stream, md.num_delivered) == (seq, dc),
            f"{what}: {meta_str(m)}, want stream seq {seq} delivered {dc}",
        )
        check(m.data == f"n{seq}".encode(), f"{what}: payload {m.data!r}")
        return m

    async def none(what, timeout):
        try:
            msgs = await sub.fetch(1, timeout=timeout)
        except asyncio.TimeoutError:
            return
        raise Failure(f"{what}: got {meta_str(msgs[0])} too early")

    step("nak")
    await publish(1)
    m = await fetch("first delivery", WAIT, 1, 1)
    check(m.metadata.sequence.consumer == 1, f"consumer seq {m.metadata.sequence.consumer}")
    t0 = time.monotonic()
    await m.nak()
    m = await fetch("after nak", WAIT, 1, 2)
    el = time.monotonic() - t0
    check(el < 0.8, f"redelivery after a nak took {el:.3f}s (ack_wait is 1s)")
    check(m.metadata.sequence.consumer == 2, f"redelivery consumer seq {m.metadata.sequence.consumer}")
    await m.ack_sync()

    step("nak with a delay of 1.5s (ack_wait 1s)")
    await publish(2)
    m = await fetch("first delivery", WAIT, 2, 1)
    t0 = time.monotonic()
    await m.nak(delay=1.5)
    await none("before the nak delay", 1.2)
    m = await fetch("after the nak delay", WAIT, 2, 2)
    el = time.monotonic() - t0
    check(el >= 1.5, f"redelivered {el:.3f}s after a nak with a 1.5s delay")
    await m.ack_sync()

    step("no ack: redelivered after ack_wait")
    await publish(3)
    await fetch("first delivery", WAIT, 3, 1)
    t0 = time.monotonic()
    await none("before ack_wait", 0.7)
    m = await fetch("after ack_wait", WAIT, 3, 2)
    el = time.monotonic() - t0
    check(el >= 0.95, f"redelivered {el:.3f}s after delivery (ack_wait 1s)")
    await m.ack_sync()

    step("in progress extends the deadline")
    await publish(4)
    m = await fetch("first delivery", WAIT, 4, 1)
    t0 = time.monotonic()
    await asyncio.sleep(0.6)
    await m.in_progress()
    await none("before the extended deadline", 0.8)
    m = await fetch("after the extended deadline", WAIT, 4, 2)
    el = time.monotonic() - t0
    check(el >= 1.5, f"redelivered {el:.3f}s after delivery, in progress at 0.6s (ack_wait 1s)")
    await m.ack_sync()

    step("term stops redelivery")
    await publish(5)
    m = await fetch("first delivery", WAIT, 5, 1)
    await m.term()
    await none("after term", 1.5)
    a = json.loads((await next_msg(term)).data)
    check(
        (a.get("type"), a.get("stream"), a.get("consumer"), a.get("stream_seq"), a.get("deliveries"))
        == ("io.nats.jetstream.advisory.v1.terminated", "NAK", "NAKC", 5, 1),
        f"terminated advisory {a}",
    )
    await no_msg(term)
    check_consumer(await js.consumer_info("NAK", "NAKC"), 5, 5, 0, 0, "at the end")
    await nc.close()


async def js_max_deliver():
    """max_deliver 3 with ack_wait 500ms, never acked: exactly 3 deliveries
    (num_delivered 1, 2, 3, about ack_wait apart) and one MAX_DELIVERIES
    advisory on $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>."""
    nc, js = await js_connect()
    adv = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.MD.MDC")
    await sync(nc)
    await js.add_stream(name="MD", subjects=["md.>"], storage=StorageType.FILE)
    ci = await js.add_consumer(
        "MD",
        durable_name="MDC",
        deliver_subject="deliver.md",
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=0.5,
        max_deliver=3,
    )
    check(ci.config.max_deliver == 3, f"max_deliver {ci.config.max_deliver}")
    sub = await js.subscribe("md.>", durable="MDC", stream="MD")
    await sync(nc)
    await js.publish("md.x", b"poison")

    step("three deliveries, never acked")
    last = None
    for dc in range(1, 4):
        m = await next_msg(sub)
        md = m.metadata
        check(
            (md.sequence.stream, md.num_delivered, m.data) == (1, dc, b"poison"),
            f"delivery {dc}: {meta_str(m)} {m.data!r}",
        )
        now = time.monotonic()
        if last is not None:
            check(now - last >= 0.45, f"delivery {dc} only {now - last:.3f}s after the previous one (ack_wait 0.5s)")
        last = now
    step("no fourth delivery")
    await no_msg(sub, 1.5)

    step("max deliveries advisory")
    a = json.loads((await next_msg(adv)).data)
    check(
        (a.get("type"), a.get("stream"), a.get("consumer"), a.get("stream_seq"), a.get("deliveries"))
        == ("io.nats.jetstream.advisory.v1.max_deliver", "MD", "MDC", 1, 3),
        f"advisory {a}",
    )
    await no_msg(adv)
    ci = await js.consumer_info("MD", "MDC")
    check(ci.delivered.stream_seq == 1 and ci.num_pending == 0, f"consumer {consumer_state(ci)}")
    await nc.close()


def entry_str(e):
    """A KV entry as one comparable line (nats-py's operation is None for a put)."""
    if e is None:
        return "<None>"
    return f"{e.key}={e.value!r} rev {e.revision} {e.operation or 'PUT'}"


def check_entry(e, key, value, rev, op, what):
    want = f"{key}={value!r} rev {rev} {op}"
    check(entry_str(e) == want, f"{what}: entry {entry_str(e)}, want {want}")


async def expect_raises(coro, cls, what):
    try:
        r = await coro
    except cls as e:
        return e
    except Exception as e:  # noqa: BLE001
        raise Failure(f"{what}: expected {cls.__name__}, got {type(e).__name__}: {e}")
    raise Failure(f"{what}: expected {cls.__name__}, got {r!r}")


async def js_kv_basic():
    """Bucket with history 5: put, get, get by revision, create on an existing
    key fails, update with a wrong revision fails (wrong last sequence), update
    with the right one, delete, create over a deleted key, history, purge,
    keys, status, the history limit."""
    nc, js = await js_connect()
    kv = await js.create_key_value(bucket="CFG", history=5, storage=StorageType.FILE)
    c = (await js.stream_info("KV_CFG")).config
    check(c.subjects == ["$KV.CFG.>"], f"bucket stream subjects {c.subjects}")
    check(
        (c.max_msgs_per_subject, c.allow_rollup_hdrs, c.deny_delete, c.discard) == (5, True, True, DiscardPolicy.NEW),
        f"bucket stream config {c}",
    )

    step("put and get")
    for i, (k, v) in enumerate([("a", b"1"), ("b", b"x"), ("a", b"2")]):
        rev = await kv.put(k, v)
        check(rev == i + 1, f"put {k}: revision {rev}, want {i + 1}")
    e = await kv.get("a")
    check_entry(e, "a", b"2", 3, "PUT", "get a")
    check(e.bucket == "CFG", f"entry bucket {e.bucket!r}")
    check_entry(await kv.get("a", revision=1), "a", b"1", 1, "PUT", "get a revision 1")
    await expect_raises(kv.get("a", revision=2), js_errors.KeyNotFoundError, "get a at revision 2 (a revision of b)")
    await expect_raises(kv.get("missing"), js_errors.KeyNotFoundError, "get a missing key")

    step("create")
    e = await expect_raises(kv.create("a", b"again"), js_errors.KeyWrongLastSequenceError, "create on an existing key")
    check(e.description == "wrong last sequence: 3", f"description {e.description!r}")
    rev = await kv.create("c", b"c1")
    check(rev == 4, f"create c: revision {rev}")

    step("update")
    e = await expect_raises(
        kv.update("a", b"3", last=1), js_errors.KeyWrongLastSequenceError, "update a with revision 1"
    )
    check(e.description == "wrong last sequence: 3", f"description {e.description!r}")
    rev = await kv.update("a", b"3", last=3)
    check(rev == 5, f"update a: revision {rev}")
    await expect_raises(kv.update("a", b"4", last=3), js_errors.KeyWrongLastSequenceError, "update a with revision 3")
    await expect_raises(
        kv.update("new", b"x", last=2), js_errors.KeyWrongLastSequenceError, "update of a missing key with revision 2"
    )

    step("delete")
    check(await kv.delete("b") is True, "delete b")
    await expect_raises(kv.get("b"), js_errors.KeyNotFoundError, "get a deleted key")
    e = await expect_raises(kv.delete("c", last=1), js_errors.APIError, "delete c with the wrong last revision")
    check(e.err_code == 10071, f"delete c with the wrong last revision: err_code {e.err_code} ({e.description!r})")
    rev = await kv.create("b", b"b2")
    check(rev == 7, f"create b: revision {rev} (the delete marker is 6)")

    step("history")
    hist = await kv.history("a")
    check(
        [entry_str(e) for e in hist] == ["a=b'1' rev 1 PUT", "a=b'2' rev 3 PUT", "a=b'3' rev 5 PUT"],
        f"history a {[entry_str(e) for e in hist]}",
    )
    hist = await kv.history("b")
    check(
        [entry_str(e) for e in hist] == ["b=b'x' rev 2 PUT", "b=b'' rev 6 DEL", "b=b'b2' rev 7 PUT"],
        f"history b {[entry_str(e) for e in hist]}",
    )

    step("purge")
    check(await kv.purge("a") is True, "purge a")
    await expect_raises(kv.get("a"), js_errors.KeyNotFoundError, "get a purged key")
    hist = await kv.history("a")
    check(
        [entry_str(e) for e in hist] == ["a=b'' rev 8 PURGE"], f"history a after purge {[entry_str(e) for e in hist]}"
    )

    step("keys and status")
    keys = sorted(await kv.keys())
    check(keys == ["b", "c"], f"keys {keys}")
    status = await kv.status()
    check((status.bucket, status.history) == ("CFG", 5), f"status bucket {status.bucket!r} history {status.history}")
    # a: the purge marker; b: 2, 6 (delete), 7; c: 4.
    check(status.values == 5, f"status values {status.values}, want 5")

    step("history keeps the last 5 revisions")
    # c2..c7 are revisions 9..14.
    for i in range(2, 8):
        await kv.put("c", f"c{i}".encode())
    hist = [entry_str(e) for e in await kv.history("c")]
    want = [f"c=b'c{i + 3}' rev {10 + i} PUT" for i in range(5)]
    check(hist == want, f"history c {hist}, want {want}")
    check_entry(await kv.get("c"), "c", b"c7", 14, "PUT", "get c")
    await expect_raises(kv.get("c", revision=4), js_errors.KeyNotFoundError, "get c at its dropped revision 4")
    await nc.close()


async def next_update(w, what):
    try:
        return await w.updates(timeout=WAIT)
    except errors.TimeoutError:
        raise Failure(f"{what}: no update within {WAIT}s")


async def no_update(w, what):
    try:
        e = await w.updates(timeout=QUIET)
    except errors.TimeoutError:
        return
    raise Failure(f"{what}: unexpected update {entry_str(e)}")


async def expect_updates(w, what, *want):
    for i, s in enumerate(want):
        e = await next_update(w, what)
        check(entry_str(e) == s, f"{what}: update {i + 1} is {entry_str(e)}, want {s}")


async def js_kv_watch():
    """Watch a key pattern and watch all: the initial values (latest revision
    per key, in revision order), then the None "initial values done" marker
    (nats-py puts None on the updates queue like nats.go's nil entry), then
    live puts, deletes and purges; a watch with nothing to send starts with
    the marker; ignore_deletes."""
    nc, js = await js_connect()
    kv = await js.create_key_value(bucket="WATCH", storage=StorageType.FILE)

    step("watch with no values yet")
    empty = await kv.watch("none.*")
    check(await next_update(empty, "none.*") is None, "none.* must start with the None marker")

    for k, v in [("k.a", b"1"), ("k.b", b"1"), ("other", b"x"), ("k.a", b"2")]:
        await kv.put(k, v)
    step("initial values")
    w = await kv.watch("k.*")
    await expect_updates(w, "k.* initial", "k.b=b'1' rev 2 PUT", "k.a=b'2' rev 4 PUT", "<None>")
    alls = await kv.watchall()
    await expect_updates(
        alls, "all initial", "k.b=b'1' rev 2 PUT", "other=b'x' rev 3 PUT", "k.a=b'2' rev 4 PUT", "<None>"
    )
    await no_update(w, "k.* after the initial values")

    step("live updates")
    await kv.put("k.b", b"2")
    await kv.put("other", b"y")
    await kv.delete("k.a")
    await kv.purge("k.b")
    await kv.put("k.c", b"new")
    await expect_updates(
        w, "k.* live", "k.b=b'2' rev 5 PUT", "k.a=b'' rev 7 DEL", "k.b=b'' rev 8 PURGE", "k.c=b'new' rev 9 PUT"
    )
    await expect_updates(
        alls,
        "all live",
        "k.b=b'2' rev 5 PUT",
        "other=b'y' rev 6 PUT",
        "k.a=b'' rev 7 DEL",
        "k.b=b'' rev 8 PURGE",
        "k.c=b'new' rev 9 PUT",
    )
    await no_update(w, "k.* after the live updates")
    await no_update(alls, "all after the live updates")
    await no_update(empty, "none.* after the live updates")
    await kv.put("none.x", b"n")
    await expect_updates(empty, "none.* live", "none.x=b'n' rev 10 PUT")

    step("a new watch sees the delete and purge markers")
    w2 = await kv.watch("k.*")
    await expect_updates(w2, "k.* again", "k.a=b'' rev 7 DEL", "k.b=b'' rev 8 PURGE", "k.c=b'new' rev 9 PUT", "<None>")
    await w2.stop()
    w3 = await kv.watch("k.*", ignore_deletes=True)
    await expect_updates(w3, "k.* ignoring deletes", "k.c=b'new' rev 9 PUT", "<None>")
    await w3.stop()
    for x in (w, alls, empty):
        await x.stop()
    await nc.close()


def object_data():
    """5 MiB of deterministic pseudo-random bytes: SHA-256 of
    "natrium-object-" + the big-endian block number, block after block (the
    nats.go scenario builds the same bytes)."""
    size = 5 << 20
    return b"".join(hashlib.sha256(b"natrium-object-" + i.to_bytes(8, "big")).digest() for i in range(size // 32))


# Its digest as the object info carries it (both programs check it).
OBJECT_DIGEST = "SHA-256=hg90Q-nsSpKXz9-PG8vvpXKMcOQ0uluzXWZIwxNKVBM="


def obj_str(i):
    if i is None:
        return "<None>"
    return f"{i.name} size {i.size} chunks {i.chunks} deleted {bool(i.deleted)}"


async def js_object_store():
    """A 5 MiB object put and got back (byte-compared, digest checked), info,
    list, delete, and a watcher that sees it all. nats-py 2.16 has no object
    links (no add_link), so links are not exercised here."""
    nc, js = await js_connect()
    obs = await js.create_object_store("FILES", storage=StorageType.FILE)
    c = (await js.stream_info("OBJ_FILES")).config
    check(
        c.subjects == ["$O.FILES.C.>", "$O.FILES.M.>"] and c.allow_rollup_hdrs,
        f"object store stream subjects {c.subjects} allow_rollup {c.allow_rollup_hdrs}",
    )
    data = object_data()
    digest = "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
    check(digest == OBJECT_DIGEST, f"test data digest {digest}, want {OBJECT_DIGEST}")

    step("watch the empty store")
    w = await obs.watch()
    check(await w.updates(timeout=WAIT) is None, "the watch of an empty store starts with the None marker")

    async def next_obj(what):
        try:
            return await w.updates(timeout=WAIT)
        except errors.TimeoutError:
            raise Failure(f"{what}: no watch update within {WAIT}s")

    step("put 5 MiB")
    t0 = time.monotonic()
    info = await obs.put("big.bin", data)
    step(f"put took {time.monotonic() - t0:.3f}s")
    check(info.name == "big.bin" and info.bucket == "FILES" and info.nuid, f"put info {info}")
    check(
        (info.size, info.chunks, info.digest) == (5 << 20, 40, digest),
        f"put info: size {info.size} chunks {info.chunks} digest {info.digest}",
    )
    check(obj_str(await next_obj("put big.bin")) == "big.bin size 5242880 chunks 40 deleted False", "watch after put")
    check_counts((await js.stream_info("OBJ_FILES")).state, 41, 1, 41, "40 chunks and the meta message")

    step("get it back")
    t0 = time.monotonic()
    res = await obs.get("big.bin")
    step(f"get took {time.monotonic() - t0:.3f}s")
    check(len(res.data) == len(data), f"got {len(res.data)} bytes, want {len(data)}")
    check(res.data == data, "got different bytes")
    check(res.info.digest == digest, f"get info digest {res.info.digest}")

    step("info")
    gi = await obs.get_info("big.bin")
    check(
        (gi.name, gi.size, gi.chunks, gi.digest, gi.nuid, bool(gi.deleted))
        == ("big.bin", 5 << 20, 40, digest, info.nuid, False),
        f"info {gi}",
    )
    await expect_raises(obs.get_info("nope"), js_errors.ObjectNotFoundError, "info of a missing object")

    step("a small object, replaced")
    await obs.put("small.txt", b"hello")
    small = await obs.put("small.txt", b"hello object store")
    check((small.size, small.chunks) == (18, 1), f"small info {small}")
    check((await obs.get("small.txt")).data == b"hello object store", "small object content")
    check(obj_str(await next_obj("put small.txt")) == "small.txt size 5 chunks 1 deleted False", "first small put")
    check(obj_str(await next_obj("put small.txt")) == "small.txt size 18 chunks 1 deleted False", "second small put")
    # The first version's chunk is purged, its meta rolled up.
    msgs = (await js.stream_info("OBJ_FILES")).state.messages
    check(msgs == 43, f"stream messages {msgs}, want 43")

    step("list")
    names = sorted(i.name for i in await obs.list())
    check(names == ["big.bin", "small.txt"], f"list {names}")

    step("delete")
    await obs.delete("big.bin")
    await expect_raises(obs.get_info("big.bin"), js_errors.ObjectNotFoundError, "info of a deleted object")
    await expect_raises(obs.get("big.bin"), js_errors.ObjectNotFoundError, "get of a deleted object")
    gi = await obs.get_info("big.bin", show_deleted=True)
    check(gi.deleted and gi.size == 0 and gi.chunks == 0 and not gi.digest, f"deleted info {gi}")
    check(obj_str(await next_obj("delete big.bin")) == "big.bin size 0 chunks 0 deleted True", "watch after delete")
    names = sorted(i.name for i in await obs.list(ignore_deletes=True))
    check(names == ["small.txt"], f"list after delete {names}")
    # big.bin: its deleted meta; small.txt: a chunk and its meta.
    st = (await js.stream_info("OBJ_FILES")).state
    check(st.messages == 3 and st.bytes < 4096, f"stream after delete: {state_of(st)}")
    status = await obs.status()
    check(
        (status.bucket, status.sealed, status.size) == ("FILES", False, st.bytes),
        f"status bucket {status.bucket!r} sealed {status.sealed} size {status.size}",
    )
    try:
        i = await w.updates(timeout=QUIET)
    except errors.TimeoutError:
        pass
    else:
        raise Failure(f"unexpected watch update {obj_str(i)}")
    await w.stop()
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
        js_pull_work_queue,
        js_push_durable_resume,
        js_deliver_policies,
        js_nak_redelivery,
        js_max_deliver,
        js_kv_basic,
        js_kv_watch,
        js_object_store,
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

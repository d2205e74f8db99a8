//! Wire transcripts of the engine against nats-server 2.9.10's behaviour.
//!
//! Each test drives [`natrium_engine::Server`] through the harness in `support`
//! and snapshots the transcript (`C1:` client bytes, `S1:` server bytes). Every
//! snapshot was checked against a real nats-server 2.9.10 (and its source) before
//! it was committed; the matrix rows each test covers are cited in its comment
//! (see /work/shared/spec/feature-matrix.md, section 1).

mod support;

use std::time::Duration;

use insta::assert_snapshot;
use natrium_engine::config::{Permissions, SubjectPermission, User};
use natrium_engine::{CloseReason, Config};
use support::{config, parse_msgs, Harness};

const QUIET: &str = r#"{"verbose":false,"pedantic":false}"#;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ----- 1.1 basics -----

/// C1, C2, I1–I10: INFO is the first thing the server sends, on accept.
#[test]
fn info_on_accept() {
    let mut h = Harness::new(config());
    h.connect();
    assert_snapshot!(h.transcript());
}

/// I2: without a configured name, server_name is the server id. I10: auth_required.
#[test]
fn info_default_name_and_auth_required() {
    let mut cfg = Config::default();
    cfg.auth.user = Some("u".into());
    cfg.auth.password = Some("p".into());
    let mut h = Harness::new(cfg);
    h.connect();
    let id = h.server.server_id().to_string();
    assert_eq!(id.len(), 56);
    assert!(id.starts_with('N'));
    let t = h.transcript();
    assert!(t.contains(&format!(r#""server_id":"{id}","server_name":"{id}""#)));
    assert_snapshot!(t);
}

/// C3, C10, C12, K1: CONNECT verbose gets +OK, PING gets PONG.
#[test]
fn connect_verbose_ping_pong() {
    let mut h = Harness::new(config());
    let c = h.connect();
    h.send(c, "CONNECT {\"verbose\":true}\r\nPING\r\n");
    h.send(c, "ping\r\n");
    assert_snapshot!(h.transcript());
}

/// K1, K2, K6, C12: with the fields absent, verbose (and pedantic, echo) default to
/// true, so `CONNECT {}` is answered with +OK, as are SUB, PUB and UNSUB.
#[test]
fn connect_empty_object_is_verbose() {
    let mut h = Harness::new(config());
    let c = h.connect();
    h.clear_log();
    h.send(c, "CONNECT {}\r\n");
    h.send(c, "SUB foo 1\r\n");
    h.send(c, "PUB foo 2\r\nhi\r\n");
    h.send(c, "UNSUB 1\r\n");
    h.send(c, "PING\r\n");
    assert_snapshot!(h.transcript());
}

/// C1: op names are case-insensitive, fields split by runs of spaces or tabs.
#[test]
fn ops_case_insensitive_and_whitespace() {
    let mut h = Harness::new(config());
    let c = h.connect();
    h.clear_log();
    h.send(c, &format!("connect {QUIET}\r\n"));
    h.send(c, "sub  foo\t 1\r\n");
    h.send(c, "pub foo \t3\r\nabc\r\n");
    h.send(c, "PiNg\r\n");
    assert_snapshot!(h.transcript());
}

/// C4, C8, C15, W5: MSG framing, reply subjects carried unchanged, a zero-length
/// payload, one copy per matching sid (overlapping subs on one connection).
#[test]
fn pub_sub_msg_framing() {
    let mut h = Harness::new(config());
    let sub = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.clear_log();
    h.send(sub, "SUB foo 1\r\nSUB foo 2\r\nSUB bar 3\r\nPING\r\n");
    h.send(publ, "PUB foo 5\r\nhello\r\n");
    h.send(publ, "PUB foo _INBOX.abc 3\r\nreq\r\n");
    h.send(publ, "PUB bar 0\r\n\r\n");
    h.send(publ, "PUB nobody 2\r\nno\r\n");
    h.send(publ, "PUB bar 4\r\na\r\nb\r\n");
    assert_snapshot!(h.transcript());
}

/// C4: a payload split across reads, and several ops in one read.
#[test]
fn split_reads_and_pipelining() {
    let mut h = Harness::new(config());
    let sub = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.clear_log();
    h.send(sub, "SUB foo 1\r\n");
    h.send(publ, "PU");
    h.send(publ, "B foo 1");
    h.send(publ, "0\r\nhello");
    h.send(publ, "world\r");
    h.send(publ, "\nPUB foo 1\r\nx\r\nPUB foo 1\r\ny\r\nPING\r\n");
    assert_snapshot!(h.transcript());
}

/// C5, C9, K7: HPUB to a subscriber with headers:true arrives as HMSG; to one
/// without headers as a plain MSG with the header block removed.
#[test]
fn hpub_hmsg_and_header_stripping() {
    let mut h = Harness::new(config());
    let with = h.connect_with(r#"{"verbose":false,"headers":true}"#);
    let without = h.connect_with(QUIET);
    let publ = h.connect_with(r#"{"verbose":false,"headers":true}"#);
    h.clear_log();
    h.send(with, "SUB foo 1\r\n");
    h.send(without, "SUB foo 2\r\n");
    h.send(
        publ,
        "HPUB foo 24 29\r\nNATS/1.0\r\nA: 1\r\nB: 2\r\n\r\nhello\r\n",
    );
    h.send(publ, "HPUB foo rep 12 12\r\nNATS/1.0\r\n\r\n\r\n");
    h.send(publ, "PUB foo 3\r\nabc\r\n");
    assert_snapshot!(h.transcript());
}

/// C14, K6: echo:false stops a connection's own messages coming back to it; other
/// subscribers still get them.
#[test]
fn echo_false() {
    let mut h = Harness::new(config());
    let noecho = h.connect_with(r#"{"verbose":false,"echo":false}"#);
    let echo = h.connect_with(QUIET);
    h.clear_log();
    h.send(noecho, "SUB foo 1\r\n");
    h.send(echo, "SUB foo 1\r\n");
    h.send(noecho, "PUB foo 2\r\nme\r\n");
    h.send(echo, "PUB foo 3\r\nyou\r\n");
    h.send(echo, "PUB foo 4\r\nself\r\n");
    assert_snapshot!(h.transcript());
}

// ----- UNSUB -----

/// C7: UNSUB removes at once; an unknown sid is ignored (still +OK when verbose).
#[test]
fn unsub_now_and_unknown_sid() {
    let mut h = Harness::new(config());
    let sub = h.connect_with(r#"{"verbose":true}"#);
    let publ = h.connect_with(QUIET);
    h.clear_log();
    h.send(sub, "SUB foo 1\r\n");
    h.send(publ, "PUB foo 1\r\na\r\n");
    h.send(sub, "UNSUB 1\r\n");
    h.send(publ, "PUB foo 1\r\nb\r\n");
    h.send(sub, "UNSUB 99\r\nUNSUB 1\r\nPING\r\n");
    assert_eq!(h.server.num_subscriptions(), 0);
    assert_snapshot!(h.transcript());
}

/// C7: UNSUB <sid> <max> auto-unsubscribes after max deliveries in total.
#[test]
fn unsub_with_max() {
    let mut h = Harness::new(config());
    let sub = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.clear_log();
    h.send(sub, "SUB foo 1\r\nUNSUB 1 2\r\n");
    for p in ["a", "b", "c"] {
        h.send(publ, &format!("PUB foo 1\r\n{p}\r\n"));
    }
    assert_eq!(h.server.num_subscriptions(), 0);
    assert_snapshot!(h.transcript());
}

/// C7: a max counts messages already delivered: UNSUB 1 2 after two deliveries
/// removes the sub at once; UNSUB 1 3 after two lets exactly one more through.
#[test]
fn unsub_max_counts_earlier_deliveries() {
    let mut h = Harness::new(config());
    let sub = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.clear_log();
    h.send(sub, "SUB foo 1\r\nSUB foo 2\r\n");
    h.send(publ, "PUB foo 1\r\na\r\nPUB foo 1\r\nb\r\n");
    h.send(sub, "UNSUB 1 2\r\nUNSUB 2 3\r\n");
    assert_eq!(h.server.num_subscriptions(), 1);
    h.send(publ, "PUB foo 1\r\nc\r\nPUB foo 1\r\nd\r\n");
    assert_eq!(h.server.num_subscriptions(), 0);
    assert_snapshot!(h.transcript());
}

/// C7: a max that is not a number counts as -1 in nats-server: the sub is removed
/// at once and the connection stays open.
#[test]
fn unsub_non_numeric_max_removes_now() {
    let mut h = Harness::new(config());
    let sub = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.clear_log();
    h.send(sub, "SUB foo 1\r\nUNSUB 1 x\r\n");
    h.send(publ, "PUB foo 1\r\na\r\n");
    h.send(sub, "PING\r\n");
    assert_eq!(h.server.num_subscriptions(), 0);
    assert_snapshot!(h.transcript());
}

/// C6: re-using a sid keeps the existing sub (no second copy).
#[test]
fn sub_reusing_sid_keeps_first() {
    let mut h = Harness::new(config());
    let sub = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.clear_log();
    h.send(sub, "SUB foo 1\r\nSUB bar 1\r\n");
    h.send(publ, "PUB foo 1\r\na\r\nPUB bar 1\r\nb\r\n");
    assert_eq!(h.server.num_subscriptions(), 1);
    assert_snapshot!(h.transcript());
}

// ----- 1.5 subjects and queue groups -----

/// W2, W3, W5: `*` matches one token, `>` one or more trailing tokens.
#[test]
fn wildcards() {
    let mut h = Harness::new(config());
    let sub = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.clear_log();
    h.send(
        sub,
        "SUB foo.* 1\r\nSUB foo.> 2\r\nSUB *.bar 3\r\nSUB foo* 4\r\n",
    );
    for s in ["foo", "foo.bar", "foo.bar.baz", "x.bar", "foo*"] {
        h.send(publ, &format!("PUB {s} 0\r\n\r\n"));
    }
    assert_snapshot!(h.transcript());
}

/// W6: each queue group gets one copy (one member), plain subs get theirs too.
#[test]
fn queue_groups_one_member_each() {
    let mut h = Harness::new(config());
    let a = h.connect_with(QUIET);
    let b = h.connect_with(QUIET);
    let plain = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.clear_log();
    h.send(a, "SUB work g 1\r\nSUB work h 2\r\n");
    h.send(b, "SUB work g 1\r\nSUB work.* g 2\r\n");
    h.send(plain, "SUB work 1\r\n");
    for i in 0..6 {
        h.send(publ, &format!("PUB work 1\r\n{i}\r\n"));
    }
    // Every message: exactly one copy to group g, one to group h, one plain.
    let mut g = 0;
    let mut hq = 0;
    for c in [a, b] {
        for m in parse_msgs(h.received(c)) {
            if c == a && m.sid == "2" {
                hq += 1;
            } else {
                g += 1;
            }
        }
    }
    assert_eq!((g, hq), (6, 6));
    assert_eq!(parse_msgs(h.received(plain)).len(), 6);
    assert_snapshot!(h.transcript());
}

/// C16: a request nobody receives is answered to the publisher's own sub on the
/// reply subject with a 503 status, when it has headers and no_responders.
#[test]
fn no_responders_503() {
    let mut h = Harness::new(config());
    let c = h.connect_with(r#"{"verbose":false,"headers":true,"no_responders":true}"#);
    let plain = h.connect_with(r#"{"verbose":false,"headers":true}"#);
    h.clear_log();
    h.send(c, "SUB _INBOX.r1 7\r\nPUB svc _INBOX.r1 2\r\nhi\r\n");
    h.send(c, "HPUB svc _INBOX.r1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    // Not subscribed to the reply subject: nothing comes back.
    h.send(c, "PUB svc _INBOX.other 0\r\n\r\nPING\r\n");
    // Without no_responders there is no status either.
    h.send(
        plain,
        "SUB _INBOX.r2 1\r\nPUB svc _INBOX.r2 0\r\n\r\nPING\r\n",
    );
    // When somebody is listening the request is just delivered.
    h.send(plain, "SUB svc 2\r\n");
    h.send(c, "PUB svc _INBOX.r1 0\r\n\r\n");
    assert_snapshot!(h.transcript());
}

// ----- 1.4 errors -----

/// E1: an unknown operation gets -ERR and a close (reason Parse Error).
#[test]
fn e1_unknown_protocol_operation() {
    let mut h = Harness::new(config());
    let c = h.connect_with(QUIET);
    h.clear_log();
    h.send(c, "GARBAGE\r\n");
    assert_eq!(h.closed(c), Some(CloseReason::ParseError));
    assert_snapshot!(h.transcript());
}

/// E1: ops only servers send to each other (`RS+`, `LS+`) are unknown from a client.
#[test]
fn e1_route_op_from_client() {
    let mut h = Harness::new(config());
    let c = h.connect_with(QUIET);
    h.clear_log();
    h.send(c, "RS+ $G foo\r\n");
    assert_eq!(h.closed(c), Some(CloseReason::ParseError));
    assert_snapshot!(h.transcript());
}

/// E1: an op name with no arguments at all (`PUB`, `UNSUB`) is an unknown op to
/// nats-server's state machine, which expects a space after the name.
#[test]
fn e1_op_name_without_arguments() {
    let mut h = Harness::new(config());
    for op in ["PUB\r\n", "UNSUB\r\n", "SUB\r\n"] {
        let c = h.connect_with(QUIET);
        h.send(c, op);
        assert_eq!(h.closed(c), Some(CloseReason::ParseError), "{op:?}");
    }
    assert_snapshot!(h.transcript());
}

fn auth_config() -> Config {
    let mut cfg = config();
    cfg.auth.user = Some("u".into());
    cfg.auth.password = Some("p".into());
    cfg
}

/// E2, A1: wrong credentials.
#[test]
fn e2_authorization_violation_bad_creds() {
    let mut h = Harness::new(auth_config());
    let bad = h.connect();
    h.send(bad, "CONNECT {\"user\":\"u\",\"pass\":\"x\"}\r\nPING\r\n");
    let none = h.connect();
    h.send(none, "CONNECT {}\r\n");
    let good = h.connect();
    h.send(good, "CONNECT {\"user\":\"u\",\"pass\":\"p\"}\r\nPING\r\n");
    assert_eq!(h.closed(bad), Some(CloseReason::AuthenticationViolation));
    assert_eq!(h.closed(none), Some(CloseReason::AuthenticationViolation));
    assert!(h.is_open(good));
    assert_snapshot!(h.transcript());
}

/// E2, C3: with auth required, any op before CONNECT (even garbage) is an
/// Authorization Violation.
#[test]
fn e2_authorization_violation_op_before_connect() {
    let mut h = Harness::new(auth_config());
    for op in ["PING\r\n", "SUB foo 1\r\n", "PUB foo 0\r\n\r\n", "XYZ\r\n"] {
        let c = h.connect();
        h.send(c, op);
        assert_eq!(h.closed(c), Some(CloseReason::AuthenticationViolation));
    }
    assert_snapshot!(h.transcript());
}

/// E3: no CONNECT within auth.timeout (2s).
#[test]
fn e3_authentication_timeout() {
    let mut h = Harness::new(auth_config());
    let c = h.connect();
    h.advance(Duration::from_millis(1999));
    assert!(h.is_open(c));
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(c), Some(CloseReason::AuthenticationTimeout));
    // A client that authenticated in time is not affected.
    let ok = h.connect();
    h.send(
        ok,
        "CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"p\"}\r\n",
    );
    h.advance(secs(3));
    assert!(h.is_open(ok));
    assert_snapshot!(h.transcript());
}

/// E5, L1: a payload larger than max_payload; HPUB counts headers too.
#[test]
fn e5_maximum_payload_violation() {
    let mut cfg = config();
    cfg.max_payload = 8;
    let mut h = Harness::new(cfg);
    let ok = h.connect_with(r#"{"verbose":false,"headers":true}"#);
    let c = h.connect_with(QUIET);
    let hc = h.connect_with(r#"{"verbose":false,"headers":true}"#);
    h.clear_log();
    h.send(ok, "PUB foo 8\r\n12345678\r\nPING\r\n");
    h.send(c, "PUB foo 9\r\n123456789\r\n");
    h.send(hc, "HPUB foo 12 13\r\nNATS/1.0\r\n\r\nx\r\n");
    assert_eq!(h.closed(c), Some(CloseReason::MaxPayloadExceeded));
    assert_eq!(h.closed(hc), Some(CloseReason::MaxPayloadExceeded));
    assert_snapshot!(h.transcript());
}

/// E6, L2: nats-server compares the control line's *argument* (after the op name
/// and its whitespace, without the CR) with max_control_line: 32 bytes pass, 33
/// fail, whether or not the CRLF has arrived yet. CONNECT's JSON counts too.
#[test]
fn e6_maximum_control_line_exceeded() {
    let mut cfg = config();
    cfg.max_control_line = 32;
    let mut h = Harness::new(cfg);
    let ok = h.connect_with(r#"{"verbose":false}"#);
    let a = h.connect_with(r#"{"verbose":false}"#);
    let b = h.connect_with(r#"{"verbose":false}"#);
    let c = h.connect_with(r#"{"verbose":false,"pedantic":false}"#);
    assert_eq!(h.closed(c), Some(CloseReason::MaxControlLineExceeded));
    // "x{30} 1" is exactly 32 bytes of argument.
    h.send(ok, &format!("SUB {} 1\r\nPING\r\n", "x".repeat(30)));
    assert!(h.is_open(ok));
    h.send(a, &format!("SUB {} 1\r\n", "x".repeat(31)));
    h.send(b, &format!("SUB {}", "x".repeat(40)));
    assert_eq!(h.closed(a), Some(CloseReason::MaxControlLineExceeded));
    assert_eq!(h.closed(b), Some(CloseReason::MaxControlLineExceeded));
    assert_snapshot!(h.transcript());
}

/// E7, L5: over max_connections the new client gets INFO, -ERR and a close.
#[test]
fn e7_maximum_connections_exceeded() {
    let mut cfg = config();
    cfg.max_connections = 1;
    let mut h = Harness::new(cfg);
    let first = h.connect_with(QUIET);
    let second = h.connect();
    assert_eq!(h.closed(second), Some(CloseReason::MaxConnectionsExceeded));
    h.send(first, "PING\r\n");
    // Once the first leaves there is room again.
    h.hang_up(first);
    let third = h.connect_with(QUIET);
    h.send(third, "PING\r\n");
    assert_snapshot!(h.transcript());
}

/// E9, L6: over max_subscriptions the SUB is refused and the connection stays open.
#[test]
fn e9_maximum_subscriptions_exceeded() {
    let mut cfg = config();
    cfg.max_subscriptions = 1;
    let mut h = Harness::new(cfg);
    let c = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.clear_log();
    h.send(c, "SUB a 1\r\nSUB b 2\r\nPING\r\n");
    h.send(publ, "PUB a 1\r\na\r\nPUB b 1\r\nb\r\n");
    assert!(h.is_open(c));
    assert_eq!(h.server.num_subscriptions(), 1);
    assert_snapshot!(h.transcript());
}

/// E10, K5: protocol outside 0..=1.
#[test]
fn e10_invalid_client_protocol() {
    let mut h = Harness::new(config());
    let c = h.connect();
    h.send(c, "CONNECT {\"protocol\":2}\r\n");
    assert_eq!(h.closed(c), Some(CloseReason::BadClientProtocolVersion));
    assert_snapshot!(h.transcript());
}

/// E11, K8: no_responders without headers.
#[test]
fn e11_no_responders_requires_headers() {
    let mut h = Harness::new(config());
    let c = h.connect();
    h.send(c, "CONNECT {\"no_responders\":true}\r\n");
    assert_eq!(h.closed(c), Some(CloseReason::NoRespondersRequiresHeaders));
    assert_snapshot!(h.transcript());
}

/// E12, C6, W1: a malformed SUB subject; the connection stays open.
#[test]
fn e12_invalid_subject() {
    let mut h = Harness::new(config());
    let c = h.connect_with(QUIET);
    h.clear_log();
    h.send(
        c,
        "SUB foo..bar 1\r\nSUB .foo 2\r\nSUB foo. 3\r\nSUB foo.>.bar 4\r\n",
    );
    h.send(c, "SUB foo.> 5\r\nPING\r\n");
    assert!(h.is_open(c));
    assert_eq!(h.server.num_subscriptions(), 1);
    assert_snapshot!(h.transcript());
}

/// E13, C18, W4: pedantic PUB to a wildcard subject gets -ERR but stays open, and
/// (as nats-server does) the message is still routed.
#[test]
fn e13_invalid_publish_subject_pedantic() {
    let mut h = Harness::new(config());
    let c = h.connect_with(r#"{"verbose":false,"pedantic":true}"#);
    h.clear_log();
    h.send(
        c,
        "SUB a.> 1\r\nPUB a.* 1\r\nx\r\nPUB a.b 1\r\ny\r\nPING\r\n",
    );
    assert!(h.is_open(c));
    assert_snapshot!(h.transcript());
}

fn perm_list(allow: &[&str], deny: &[&str]) -> Option<SubjectPermission> {
    Some(SubjectPermission {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
    })
}

fn perm_config() -> Config {
    let mut cfg = config();
    cfg.auth.users = vec![User {
        user: "a".into(),
        password: "a".into(),
        permissions: Some(Permissions {
            publish: perm_list(&["ok"], &[]),
            subscribe: perm_list(&["ok", "q grp"], &["secret"]),
        }),
    }];
    cfg
}

const PERM_USER: &str = r#"{"verbose":false,"user":"a","pass":"a"}"#;

/// E14, A3, A6: a denied publish is dropped; the connection stays open.
#[test]
fn e14_permissions_violation_publish() {
    let mut h = Harness::new(perm_config());
    let c = h.connect_with(PERM_USER);
    h.clear_log();
    h.send(c, "SUB ok 1\r\nPUB x 1\r\na\r\nPUB ok 1\r\nb\r\nPING\r\n");
    assert!(h.is_open(c));
    assert_snapshot!(h.transcript());
}

/// E15, A6: a denied subscribe (plain and queue forms); no sub is created.
#[test]
fn e15_permissions_violation_subscription() {
    let mut h = Harness::new(perm_config());
    let c = h.connect_with(PERM_USER);
    h.clear_log();
    h.send(c, "SUB x 1\r\nSUB secret 2\r\nSUB q 3\r\nSUB q other 4\r\n");
    h.send(c, "SUB q grp 5\r\nSUB ok 6\r\nPING\r\n");
    assert!(h.is_open(c));
    assert_eq!(h.server.num_subscriptions(), 2);
    assert_snapshot!(h.transcript());
}

/// A6: permissions with wildcards (`ok.>`, `q.* grp`), deny wins.
#[test]
fn permissions_with_wildcards() {
    let mut cfg = config();
    cfg.auth.users = vec![User {
        user: "a".into(),
        password: "a".into(),
        permissions: Some(Permissions {
            publish: perm_list(&["ok.>"], &["ok.no"]),
            subscribe: perm_list(&["ok.>", "q.* grp"], &["ok.secret"]),
        }),
    }];
    let mut h = Harness::new(cfg);
    let c = h.connect_with(PERM_USER);
    h.clear_log();
    h.send(
        c,
        "SUB ok.> 1\r\nSUB ok.secret 2\r\nSUB q.a grp 3\r\nSUB q.a 4\r\n",
    );
    h.send(
        c,
        "PUB ok.x 1\r\na\r\nPUB ok.no 1\r\nb\r\nPUB ok 1\r\nc\r\nPING\r\n",
    );
    assert_snapshot!(h.transcript());
}

/// E16, C19: a reply with a reserved prefix is refused and the message dropped,
/// with or without configured permissions.
#[test]
fn e16_permissions_violation_reply() {
    let mut h = Harness::new(config());
    let c = h.connect_with(QUIET);
    h.clear_log();
    h.send(c, "SUB foo 1\r\n");
    for reply in ["$JS.ACK.x", "_R_.x", "_R_.", "_GR_.a", "$JS.ACK.", "_GR_."] {
        h.send(c, &format!("PUB foo {reply} 0\r\n\r\n"));
    }
    h.send(c, "PING\r\n");
    assert!(h.is_open(c));
    assert_snapshot!(h.transcript());
}

fn ping_config() -> Config {
    let mut cfg = config();
    cfg.ping_interval = secs(10);
    cfg.ping_max = 2;
    cfg
}

/// E17, C11: ping_max unanswered PINGs, then Stale Connection. The first PING
/// comes with the first timer (~2s), so with ping_interval 10s the close is at
/// ~22s, as nats-server does.
#[test]
fn e17_stale_connection() {
    let mut h = Harness::new(ping_config());
    let c = h.connect_with(QUIET);
    for _ in 0..5 {
        h.advance(secs(10));
    }
    assert_eq!(h.closed(c), Some(CloseReason::StaleConnection));
    assert_snapshot!(h.transcript());
}

/// C11: answering the server's PINGs keeps the connection alive.
#[test]
fn pong_keeps_connection_alive() {
    let mut h = Harness::new(ping_config());
    let c = h.connect_with(QUIET);
    for _ in 0..8 {
        h.advance(secs(10));
        if h.take_received(c).ends_with(b"PING\r\n") {
            h.send(c, "PONG\r\n");
        }
    }
    assert!(h.is_open(c));
    assert_snapshot!(h.transcript());
}

/// C11: the first timer after CONNECT always pings (nats-server's `needRTT`);
/// after that, client traffic counts as activity and no PING is needed.
#[test]
fn client_traffic_delays_server_ping() {
    let mut h = Harness::new(ping_config());
    let c = h.connect_with(QUIET);
    for _ in 0..8 {
        h.advance(secs(5));
        h.send(c, "PUB foo 0\r\n\r\n");
    }
    assert!(h.is_open(c));
    assert_snapshot!(h.transcript());
}

/// E19, L3: a subscriber that never drains passes max_pending: no -ERR, closed
/// as a slow consumer; another subscriber keeps receiving.
#[test]
fn e19_slow_consumer_pending_bytes() {
    let mut cfg = config();
    cfg.max_pending = 100;
    let mut h = Harness::new(cfg);
    let slow = h.connect_with(QUIET);
    let fast = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.send(slow, "SUB foo 1\r\nPING\r\n");
    h.send(fast, "SUB foo 1\r\n");
    h.clear_log();
    h.stall(slow);
    for i in 0..6 {
        h.send(publ, &format!("PUB foo 20\r\nmessage-number-{i:05}\r\n"));
    }
    // Past half of max_pending the publisher is stalled; each stall times out
    // (the consumer never drains) and publishing goes on until the limit.
    h.advance(secs(5));
    assert_eq!(h.closed(slow), Some(CloseReason::SlowConsumerPendingBytes));
    assert_eq!(h.server.stats().slow_consumers, 1);
    assert_eq!(parse_msgs(h.received(fast)).len(), 6);
    assert!(!String::from_utf8_lossy(h.received(slow)).contains("-ERR"));
    assert_snapshot!(h.transcript());
}

/// L3: replies count toward max_pending too. A client that sends PINGs and
/// never reads is closed as a slow consumer once its PONGs pass the limit,
/// instead of queueing them without end (nats-server's queueOutbound).
#[test]
fn l3_unread_pongs_make_a_slow_consumer() {
    let mut cfg = config();
    cfg.max_pending = 100;
    let mut h = Harness::new(cfg);
    let c = h.connect_with(QUIET);
    h.clear_log();
    h.stall(c);
    h.send(c, &"PING\r\n".repeat(1000));
    assert_eq!(h.closed(c), Some(CloseReason::SlowConsumerPendingBytes));
    assert_eq!(h.server.stats().slow_consumers, 1);
    let pongs = String::from_utf8_lossy(h.received(c))
        .matches("PONG")
        .count();
    assert!(
        pongs <= 100 / "PONG\r\n".len(),
        "{pongs} PONGs queued past max_pending"
    );
}

/// L3: a publisher that fills a subscriber past half of max_pending is stalled
/// (its reads pause) until the subscriber drains; nothing is lost or reordered.
#[test]
fn fast_producer_stalls_until_consumer_drains() {
    let mut cfg = config();
    cfg.max_pending = 200;
    let mut h = Harness::new(cfg);
    let sub = h.connect_with(QUIET);
    let publ = h.connect_with(QUIET);
    h.send(sub, "SUB foo 1\r\nPING\r\n");
    h.clear_log();
    h.stall(sub);
    let mut burst = String::new();
    for i in 0..8 {
        burst.push_str(&format!("PUB foo 20\r\nmessage-number-{i:05}\r\n"));
    }
    h.send(publ, &burst);
    assert!(
        h.read_paused(publ),
        "publisher stalled past half of max_pending"
    );
    let held = parse_msgs(h.received(sub)).len();
    assert!(held < 8, "the rest of the burst waits unparsed");
    h.unstall(sub);
    assert!(!h.read_paused(publ));
    let got: Vec<String> = parse_msgs(h.received(sub))
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    let want: Vec<String> = (0..8).map(|i| format!("message-number-{i:05}")).collect();
    assert_eq!(got, want);
    assert!(h.is_open(sub));
    assert_snapshot!(h.transcript());
}

/// E19, L4: writes that make no progress for write_deadline: slow consumer.
#[test]
fn slow_consumer_write_deadline() {
    let mut h = Harness::new(config());
    let slow = h.connect_with(QUIET);
    h.stall(slow);
    h.send(slow, "PING\r\n");
    h.advance(secs(9));
    assert!(h.is_open(slow));
    h.advance(secs(1));
    assert_eq!(h.closed(slow), Some(CloseReason::SlowConsumerWriteDeadline));
    assert_snapshot!(h.transcript());
}

/// E20, C4, C5: argument errors close the connection without an -ERR.
#[test]
fn e20_argument_errors_close_silently() {
    let mut h = Harness::new(config());
    let cases = [
        "PUB foo\r\n",
        "PUB foo abc\r\n",
        "PUB foo bar baz 1\r\n",
        "SUB foo\r\n",
        "SUB a b c d\r\n",
        "HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n",
    ];
    for op in cases {
        let c = h.connect_with(QUIET);
        h.send(c, op);
        assert_eq!(h.closed(c), Some(CloseReason::ProtocolViolation), "{op:?}");
    }
    let c = h.connect();
    h.send(c, "CONNECT {bad\r\n");
    assert_eq!(h.closed(c), Some(CloseReason::ProtocolViolation));
    let t = h.transcript();
    assert!(!t.contains("-ERR"));
    assert_snapshot!(t);
}

/// C2, L7: shutdown closes every client, after flushing.
#[test]
fn shutdown_closes_everyone() {
    let mut h = Harness::new(config());
    let a = h.connect_with(QUIET);
    let b = h.connect();
    h.clear_log();
    h.server.handle_shutdown(h.now);
    h.pump();
    assert_eq!(h.closed(a), Some(CloseReason::ServerShutdown));
    assert_eq!(h.closed(b), Some(CloseReason::ServerShutdown));
    assert_snapshot!(h.transcript());
}

/// C3, K1: a second CONNECT replaces the options of the first.
#[test]
fn connect_twice_second_options_win() {
    let mut h = Harness::new(config());
    let c = h.connect();
    h.clear_log();
    h.send(
        c,
        "CONNECT {\"verbose\":true}\r\nCONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPING\r\n",
    );
    assert_snapshot!(h.transcript());
}

/// E2, A1: credentials are checked on every CONNECT, not just the first.
#[test]
fn e2_second_connect_with_bad_credentials() {
    let mut h = Harness::new(auth_config());
    let c = h.connect();
    h.clear_log();
    h.send(
        c,
        "CONNECT {\"user\":\"u\",\"pass\":\"p\",\"verbose\":false}\r\nCONNECT {\"user\":\"u\",\"pass\":\"x\"}\r\nPING\r\n",
    );
    assert_eq!(h.closed(c), Some(CloseReason::AuthenticationViolation));
    assert_snapshot!(h.transcript());
}

/// C14, W6: with echo:false a queue member on the publishing connection is
/// skipped and another member gets the message.
#[test]
fn echo_false_skips_own_queue_member() {
    let mut h = Harness::new(config());
    let a = h.connect_with(r#"{"verbose":false,"echo":false}"#);
    let b = h.connect_with(QUIET);
    h.clear_log();
    h.send(a, "SUB foo q 1\r\nPUB foo 1\r\na\r\nPING\r\n");
    h.send(b, "SUB foo q 1\r\n");
    h.send(a, "PUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\nPUB foo 1\r\nd\r\n");
    assert_eq!(parse_msgs(h.received(b)).len(), 3);
    assert_snapshot!(h.transcript());
}

/// C12: with verbose, an op refused with -ERR gets no +OK; UNSUB of an unknown
/// sid still does.
#[test]
fn verbose_no_ok_after_err() {
    let mut h = Harness::new(config());
    let c = h.connect();
    h.clear_log();
    h.send(
        c,
        "CONNECT {\"verbose\":true}\r\nSUB foo..x 1\r\nPUB foo $JS.ACK.x 0\r\n\r\nUNSUB 5\r\n",
    );
    assert_snapshot!(h.transcript());
}

/// C11: the keep-alive timer restarts from CONNECT (nats-server's processConnect
/// calls setFirstPingTimer), and that first timer always sends a PING, however
/// recent the client's activity (no RTT measured yet: `needRTT`). Checked against
/// nats-server 2.9.10 with ping_interval 10s and CONNECT at 1.9s: PINGs at 4.03s
/// and 14.03s, Stale Connection at 24.03s.
#[test]
fn keepalive_timer_restarts_at_connect() {
    let mut h = Harness::new(ping_config());
    let c = h.connect();
    h.advance(Duration::from_millis(1900));
    h.send(c, &format!("CONNECT {QUIET}\r\n"));
    h.advance(Duration::from_millis(1900)); // t = 3.8s
    assert!(!h.received(c).ends_with(b"PING\r\n"));
    h.advance(Duration::from_millis(600)); // t = 4.4s
    assert!(h.received(c).ends_with(b"PING\r\n"));
    h.advance(Duration::from_millis(9400)); // t = 13.8s
    h.advance(Duration::from_millis(600)); // t = 14.4s
    h.advance(Duration::from_millis(9400)); // t = 23.8s
    assert!(h.is_open(c));
    h.advance(Duration::from_millis(600)); // t = 24.4s
    assert_eq!(h.closed(c), Some(CloseReason::StaleConnection));
    assert_snapshot!(h.transcript());
}

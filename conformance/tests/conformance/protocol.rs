//! Raw protocol: INFO, CONNECT, PING/PONG, verbose +OK, parser errors.

use natrium_conformance::*;

natrium_conformance::scenarios! {
    client = results::RAW_TCP;
    info_first_line;
    connect_ping_pong;
    verbose_ok;
    connect_defaults_to_verbose;
    ping_before_connect;
    raw_pub_sub_msg_format;
    unknown_operation_closes;
    headers_stripped_for_non_header_client;
    hpub_without_headers_closes;
}

/// I1-I8: the first line is `INFO {json}` with server_id, version, proto=1,
/// headers=true, max_payload and host/port.
async fn info_first_line(s: &Server) {
    let mut c = s.raw().await;
    let info = c.read_info().await;
    let id = info["server_id"].as_str().expect("server_id string");
    assert!(!id.is_empty(), "{info}");
    assert!(
        info["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{info}"
    );
    assert_eq!(info["proto"], 1, "{info}");
    assert_eq!(info["headers"], true, "{info}");
    assert_eq!(
        info["max_payload"],
        1024 * 1024,
        "default max_payload is 1MB: {info}"
    );
    assert_eq!(info["host"], "127.0.0.1", "{info}");
    assert_eq!(info["port"], s.port, "{info}");
    assert!(
        info.get("auth_required").is_none() || info["auth_required"] == false,
        "{info}"
    );
    // async-nats parses it too.
    let client = s.connect().await;
    let si = client.server_info();
    assert_eq!(si.server_id, id);
    assert_eq!(si.max_payload, 1024 * 1024);
    assert!(si.headers);
    assert_eq!(si.proto, 1);
}

/// C10: CONNECT then PING gets PONG (no +OK with verbose false).
async fn connect_ping_pong(s: &Server) {
    let mut c = s.raw().await;
    c.read_info().await;
    c.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")
        .await;
    assert_eq!(c.line().await, "PONG");
    c.send("PING\r\nPING\r\n").await;
    assert_eq!(c.line().await, "PONG");
    assert_eq!(c.line().await, "PONG");
}

/// C12: with `"verbose":true` every accepted operation is acknowledged with +OK.
async fn verbose_ok(s: &Server) {
    let mut c = s.raw().await;
    c.read_info().await;
    c.send("CONNECT {\"verbose\":true}\r\n").await;
    assert_eq!(c.line().await, "+OK");
    c.send("SUB v 1\r\n").await;
    assert_eq!(c.line().await, "+OK");
    c.send("PUB v 2\r\nhi\r\n").await;
    // The +OK for the PUB and the MSG both come; +OK is queued first.
    assert_eq!(c.line().await, "+OK");
    assert_eq!(c.line().await, "MSG v 1 2");
    assert_eq!(c.read_payload(2).await, b"hi");
    c.send("UNSUB 1\r\n").await;
    assert_eq!(c.line().await, "+OK");
    // PING is answered with PONG, not +OK.
    c.send("PING\r\n").await;
    assert_eq!(c.line().await, "PONG");
}

/// C12: in nats-server an empty `CONNECT {}` leaves verbose at its default,
/// which is *true*: the CONNECT itself is acknowledged with +OK.
async fn connect_defaults_to_verbose(s: &Server) {
    let mut c = s.raw().await;
    c.read_info().await;
    c.send("CONNECT {}\r\nPING\r\n").await;
    assert_eq!(c.line().await, "+OK");
    assert_eq!(c.line().await, "PONG");
}

/// C10: without auth, PING before CONNECT is answered.
async fn ping_before_connect(s: &Server) {
    let mut c = s.raw().await;
    c.read_info().await;
    c.send("PING\r\n").await;
    assert_eq!(c.line().await, "PONG");
}

/// C4, C8: wire format of MSG, with and without reply subject.
async fn raw_pub_sub_msg_format(s: &Server) {
    let mut c = s.raw().await;
    c.read_info().await;
    c.send("CONNECT {\"verbose\":false}\r\nSUB foo.* 42\r\nPUB foo.bar 5\r\nhello\r\nPUB foo.baz reply.to 0\r\n\r\nPING\r\n").await;
    assert_eq!(c.line().await, "MSG foo.bar 42 5");
    assert_eq!(c.read_payload(5).await, b"hello");
    assert_eq!(c.line().await, "MSG foo.baz 42 reply.to 0");
    assert_eq!(c.read_payload(0).await, b"");
    assert_eq!(c.line().await, "PONG");
}

/// Parser error: an unknown operation gets `-ERR 'Unknown Protocol Operation'`
/// and the server closes the connection.
async fn unknown_operation_closes(s: &Server) {
    let mut c = s.raw().await;
    c.read_info().await;
    c.send("CONNECT {\"verbose\":false}\r\nFOO\r\n").await;
    assert_eq!(c.line().await, "-ERR 'Unknown Protocol Operation'");
    let rest = c.expect_closed(WAIT).await;
    assert!(rest.is_empty(), "nothing after the error, got {rest:?}");
}

/// C9: a subscriber that did not announce `"headers":true` receives a header
/// message as a plain `MSG` carrying only the payload; a header-capable one
/// gets `HMSG` with the header block intact.
async fn headers_stripped_for_non_header_client(s: &Server) {
    let mut plain = s.raw().await;
    plain.read_info().await;
    plain
        .send("CONNECT {\"verbose\":false}\r\nSUB h 1\r\nPING\r\n")
        .await;
    assert_eq!(plain.line().await, "PONG");
    let mut hdr = s.raw().await;
    hdr.read_info().await;
    hdr.send("CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB h 9\r\nPING\r\n")
        .await;
    assert_eq!(hdr.line().await, "PONG");

    let mut publisher = s.raw().await;
    publisher.read_info().await;
    publisher.send("CONNECT {\"verbose\":false,\"headers\":true}\r\nHPUB h 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\nPING\r\n").await;
    assert_eq!(publisher.line().await, "PONG");

    assert_eq!(hdr.line().await, "HMSG h 9 18 20");
    assert_eq!(hdr.read_payload(20).await, b"NATS/1.0\r\nA: b\r\n\r\nhi");
    assert_eq!(plain.line().await, "MSG h 1 2");
    assert_eq!(plain.read_payload(2).await, b"hi");
}

/// C9: HPUB from a client that did not announce `"headers":true` is a
/// protocol error: nats-server 2.9.10 closes the connection (observed: it
/// sends no -ERR line first, and the PING after it is never answered).
async fn hpub_without_headers_closes(s: &Server) {
    let mut c = s.raw().await;
    c.read_info().await;
    c.send("CONNECT {\"verbose\":false}\r\nHPUB h 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n")
        .await;
    let rest = c.expect_closed(WAIT).await;
    assert!(
        !rest
            .iter()
            .any(|l| l == "PONG" || l.starts_with("MSG") || l.starts_with("HMSG")),
        "connection must be closed without processing further input, got {rest:?}"
    );
}

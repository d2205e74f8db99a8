//! Property tests of the engine as a whole, driven through the test harness:
//! queue-group delivery (row W6), determinism for a seed, and robustness against
//! arbitrary input on one connection.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use support::{config, parse_msgs, Client, Harness};

const QUIET: &str = r#"{"verbose":false,"pedantic":false}"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// W6: with 1..8 members of one queue group (spread over 1..4 connections,
    /// some on the subject and some on a matching wildcard) every message reaches
    /// exactly one member: none lost, none duplicated. A plain subscriber gets all.
    #[test]
    fn queue_group_delivers_each_message_once(
        seed in any::<u64>(),
        members in prop::collection::vec((0usize..4, any::<bool>()), 1..8),
        nmsgs in 1usize..200,
    ) {
        let mut h = Harness::with_seed(config(), seed);
        h.record = false;
        let conns: Vec<Client> = (0..4).map(|_| h.connect_with(QUIET)).collect();
        let plain = h.connect_with(QUIET);
        let publ = h.connect_with(QUIET);
        for (i, &(c, wild)) in members.iter().enumerate() {
            let subject = if wild { "jobs.*" } else { "jobs.run" };
            h.send(conns[c], &format!("SUB {subject} workers m{i}\r\n"));
        }
        h.send(plain, "SUB jobs.> p\r\n");
        for i in 0..nmsgs {
            h.send(publ, &format!("PUB jobs.run {}\r\n{i}\r\n", i.to_string().len()));
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut per_member: HashMap<String, usize> = HashMap::new();
        for &c in &conns {
            for m in parse_msgs(h.received(c)) {
                *seen.entry(String::from_utf8(m.payload).unwrap()).or_default() += 1;
                *per_member.entry(m.sid).or_default() += 1;
            }
        }
        prop_assert_eq!(seen.len(), nmsgs);
        for i in 0..nmsgs {
            prop_assert_eq!(seen.get(&i.to_string()).copied(), Some(1), "message {}", i);
        }
        prop_assert!(per_member.keys().all(|k| k.starts_with('m')));
        prop_assert_eq!(parse_msgs(h.received(plain)).len(), nmsgs);
        prop_assert!((0..conns.len() + 2).all(|i| h.closed(Client(i + 1)).is_none()));
    }
}

/// One step of a generated client session.
#[derive(Debug, Clone)]
enum Step {
    Connect,
    Sub {
        client: usize,
        subject: usize,
        queue: Option<usize>,
    },
    Unsub {
        client: usize,
        sid: usize,
        max: Option<u8>,
    },
    Pub {
        client: usize,
        subject: usize,
        reply: bool,
        len: usize,
    },
    Ping(usize),
    Advance(u64),
    HangUp(usize),
}

const SUBJECTS: [&str; 6] = ["a", "a.b", "a.c", "a.*", "a.>", "*.b"];
const PUB_SUBJECTS: [&str; 4] = ["a", "a.b", "a.c", "x.b"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::Connect),
        4 => (0usize..6, 0usize..SUBJECTS.len(), prop::option::of(0usize..3))
            .prop_map(|(client, subject, queue)| Step::Sub { client, subject, queue }),
        1 => (0usize..6, 0usize..20, prop::option::of(0u8..4))
            .prop_map(|(client, sid, max)| Step::Unsub { client, sid, max }),
        8 => (0usize..6, 0usize..PUB_SUBJECTS.len(), any::<bool>(), 0usize..40)
            .prop_map(|(client, subject, reply, len)| Step::Pub { client, subject, reply, len }),
        1 => (0usize..6).prop_map(Step::Ping),
        1 => (0u64..200_000).prop_map(Step::Advance),
        1 => (0usize..6).prop_map(Step::HangUp),
    ]
}

/// Run a script; returns the transcript and every client's received bytes.
fn run_script(seed: u64, script: &[Step]) -> (String, Vec<Vec<u8>>) {
    let mut cfg = config();
    cfg.ping_interval = Duration::from_secs(30);
    let mut h = Harness::with_seed(cfg, seed);
    let mut clients: Vec<Client> = Vec::new();
    let mut sids: Vec<usize> = Vec::new();
    let connect = |h: &mut Harness, clients: &mut Vec<Client>, sids: &mut Vec<usize>| {
        let c = h.connect_with(
            r#"{"verbose":false,"pedantic":false,"headers":true,"no_responders":true}"#,
        );
        clients.push(c);
        sids.push(0);
    };
    connect(&mut h, &mut clients, &mut sids);
    for s in script {
        let pick = |i: usize| i % clients.len();
        match *s {
            Step::Connect => connect(&mut h, &mut clients, &mut sids),
            Step::Sub {
                client,
                subject,
                queue,
            } => {
                let i = pick(client);
                sids[i] += 1;
                let q = queue.map(|q| format!(" q{q}")).unwrap_or_default();
                h.send(
                    clients[i],
                    &format!("SUB {}{q} {}\r\n", SUBJECTS[subject], sids[i]),
                );
            }
            Step::Unsub { client, sid, max } => {
                let m = max.map(|m| format!(" {m}")).unwrap_or_default();
                h.send(clients[pick(client)], &format!("UNSUB {sid}{m}\r\n"));
            }
            Step::Pub {
                client,
                subject,
                reply,
                len,
            } => {
                let i = pick(client);
                let r = if reply {
                    format!(" _INBOX.{i}")
                } else {
                    String::new()
                };
                let payload: String = (0..len).map(|k| (b'a' + (k % 26) as u8) as char).collect();
                h.send(
                    clients[i],
                    &format!("PUB {}{r} {len}\r\n{payload}\r\n", PUB_SUBJECTS[subject]),
                );
            }
            Step::Ping(client) => h.send(clients[pick(client)], "PING\r\n"),
            Step::Advance(ms) => h.advance(Duration::from_millis(ms)),
            Step::HangUp(client) => {
                let c = clients[pick(client)];
                if h.is_open(c) {
                    h.hang_up(c);
                }
            }
        }
    }
    let received = clients.iter().map(|&c| h.received(c).to_vec()).collect();
    (h.transcript(), received)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The same seed and the same inputs give byte-identical outputs, queue-group
    /// choices and keep-alive timing included.
    #[test]
    fn same_seed_same_output(
        seed in any::<u64>(),
        script in prop::collection::vec(step(), 1..120),
    ) {
        let (t1, r1) = run_script(seed, &script);
        let (t2, r2) = run_script(seed, &script);
        prop_assert_eq!(t1, t2);
        prop_assert_eq!(r1, r2);
    }
}

/// A valid op, to be corrupted.
fn valid_op() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"CONNECT {\"verbose\":true,\"headers\":true}\r\n".to_vec()),
        Just(b"PING\r\n".to_vec()),
        Just(b"PONG\r\n".to_vec()),
        Just(b"SUB good 1\r\n".to_vec()),
        Just(b"SUB g.* q 2\r\n".to_vec()),
        Just(b"UNSUB 1 3\r\n".to_vec()),
        Just(b"PUB good 5\r\nhello\r\n".to_vec()),
        Just(b"PUB good rep 0\r\n\r\n".to_vec()),
        Just(b"HPUB good 12 17\r\nNATS/1.0\r\n\r\nhello\r\n".to_vec()),
        Just(b"HPUB good 22 22\r\nNATS/1.0 503\r\nA: b\r\n\r\n\r\n".to_vec()),
    ]
}

/// Valid ops with random bytes overwritten, inserted or removed.
fn corrupted_ops() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(valid_op(), 1..12),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..6),
    )
        .prop_map(|(ops, edits)| {
            let mut bytes: Vec<u8> = ops.concat();
            for (at, b, kind) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match kind {
                    0 => bytes[i] = b,
                    1 => bytes.insert(i, b),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            bytes
        })
}

/// Split bytes into chunks at the given cut points.
fn chunks(bytes: &[u8], cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

fn check_isolation(with_connect: bool, input: &[u8], cuts: &[prop::sample::Index]) {
    let mut cfg = config();
    cfg.max_payload = 1024;
    cfg.max_control_line = 256;
    let mut h = Harness::new(cfg);
    h.record = false;
    let good = h.connect_with(QUIET);
    h.send(good, "SUB good 1\r\nSUB g.* goodqueue 2\r\n");
    let bad = h.connect();
    if with_connect {
        h.send(bad, r#"CONNECT {"verbose":false,"headers":true}"#);
        h.send(bad, "\r\n");
    }
    for chunk in chunks(input, cuts) {
        h.send_bytes(bad, &chunk);
        h.advance(Duration::from_millis(1));
    }
    h.advance(Duration::from_secs(5));
    let publ = h.connect_with(QUIET);
    h.take_received(good);
    h.send(publ, "PUB good 6\r\nmarker\r\nPUB g.x 7\r\nmarker2\r\n");
    let msgs = parse_msgs(h.received(good));
    assert!(h.is_open(good), "good subscriber was closed");
    assert!(
        msgs.iter()
            .any(|m| m.subject == "good" && m.payload == b"marker"),
        "good subscriber missed the marker: {msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.subject == "g.x" && m.payload == b"marker2"),
        "good queue subscriber missed the marker: {msgs:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes on one connection, in arbitrary chunks, never panic the
    /// engine, and other connections keep working.
    #[test]
    fn arbitrary_bytes_do_not_disturb_others(
        with_connect in any::<bool>(),
        input in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        check_isolation(with_connect, &input, &cuts);
    }

    /// Valid operations with random corruption, likewise.
    #[test]
    fn corrupted_ops_do_not_disturb_others(
        with_connect in any::<bool>(),
        input in corrupted_ops(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        check_isolation(with_connect, &input, &cuts);
    }
}

/// A publisher's traffic: PUB and HPUB with payloads from empty to several
/// read-sized chunks, PINGs, and SUBs of its own.
fn publisher_traffic() -> impl Strategy<Value = Vec<u8>> {
    let op = prop_oneof![
        (0usize..3000, any::<bool>()).prop_map(|(len, reply)| {
            let r = if reply { " r.1" } else { "" };
            let mut op = format!("PUB t.a{r} {len}\r\n").into_bytes();
            op.extend((0..len).map(|k| b'a' + (k % 26) as u8));
            op.extend_from_slice(b"\r\n");
            op
        }),
        (0usize..300).prop_map(|len| {
            let hdr = "NATS/1.0\r\nK: v\r\n\r\n";
            let mut op =
                format!("HPUB t.b {} {}\r\n{hdr}", hdr.len(), hdr.len() + len).into_bytes();
            op.extend((0..len).map(|k| b'0' + (k % 10) as u8));
            op.extend_from_slice(b"\r\n");
            op
        }),
        Just(b"PING\r\n".to_vec()),
        Just(b"SUB t.* 9\r\n".to_vec()),
    ];
    prop::collection::vec(op, 1..40).prop_map(|ops| {
        let mut bytes = ops.concat();
        bytes.extend_from_slice(b"PUB t.end 0\r\n\r\n");
        bytes
    })
}

/// What a subscriber and the publisher itself receive when the publisher's
/// bytes arrive in the given pieces.
fn deliveries(pieces: Vec<Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    let mut h = Harness::new(config());
    h.record = false;
    let sub = h.connect_with(QUIET);
    h.send(sub, "SUB t.> 1\r\n");
    let publ = h.connect_with(r#"{"verbose":false,"pedantic":false,"headers":true}"#);
    h.take_received(sub);
    h.take_received(publ);
    for piece in pieces {
        h.send_bytes(publ, &piece);
    }
    (h.received(sub).to_vec(), h.received(publ).to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// However a connection's bytes are split into reads (ops cut anywhere, in
    /// their control line or payload, or many ops in one read), every client
    /// receives exactly the same bytes as when they arrive in one piece.
    #[test]
    fn read_boundaries_do_not_change_deliveries(
        input in publisher_traffic(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let whole = deliveries(vec![input.clone()]);
        let split = deliveries(chunks(&input, &cuts));
        prop_assert!(!whole.0.is_empty());
        prop_assert_eq!(whole, split);
    }
}

//! A JetStream harness: a [`Server`] with JetStream on, a [`SimDisk`] behind it, a
//! fake clock, and one raw protocol client that makes API requests and publishes
//! with reply inboxes (`_R.<n>`, all received through one `SUB _R.>`).
//!
//! Storage operations the server emits are queued on the disk. With
//! [`JsHarness::auto`] set, every input is followed by performing all of them and
//! delivering their completions until the server is quiet; with it cleared the
//! test decides ([`JsHarness::perform`], [`JsHarness::deliver`]).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use base64::Engine as _;
use natrium_engine::{Config, ConnId, Instant, Output, Server};

use super::parse_msgs;
use super::simdisk::SimDisk;

/// Unix nanoseconds at the harness's instant zero.
pub const WALL_BASE: i64 = 1_700_000_000_000_000_000;

pub struct JsHarness {
    pub server: Server,
    pub disk: SimDisk,
    pub now: Instant,
    pub cfg: Config,
    pub seed: u64,
    /// Perform storage operations and deliver completions after every input.
    pub auto: bool,
    conn: ConnId,
    next_reply: u64,
    /// Replies that arrived, by reply number, in arrival order.
    pub arrived: Vec<(u64, Vec<u8>)>,
    /// Header blocks of replies that had one, by reply number.
    pub arrived_hdrs: BTreeMap<u64, Vec<u8>>,
    /// Everything the server ever transmitted to the client (every incarnation).
    pub wire: Vec<u8>,
    /// Number of restarts so far (reply numbers stay unique across them).
    pub restarts: u32,
}

/// A message as MSG.GET returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GotMsg {
    pub seq: u64,
    pub subject: String,
    pub hdrs: Vec<u8>,
    pub data: Vec<u8>,
}

pub fn js_config() -> Config {
    Config {
        server_name: Some("js-crash".to_string()),
        jetstream: true,
        jetstream_persist: true,
        ..Config::default()
    }
}

impl JsHarness {
    /// A server on an empty disk, recovered (nothing to recover) and connected.
    pub fn new(seed: u64) -> JsHarness {
        JsHarness::with_disk(js_config(), seed, SimDisk::new())
    }

    pub fn with_disk(cfg: Config, seed: u64, disk: SimDisk) -> JsHarness {
        let now = Instant(1_000_000_000);
        let server = Server::new(cfg.clone(), seed);
        let mut h = JsHarness {
            server,
            disk,
            now,
            cfg,
            seed,
            auto: true,
            conn: ConnId(0),
            next_reply: 1,
            arrived: Vec::new(),
            arrived_hdrs: BTreeMap::new(),
            wire: Vec::new(),
            restarts: 0,
        };
        h.boot();
        h
    }

    /// Start the server that was just created: recover, then connect the client.
    fn boot(&mut self) {
        self.server
            .set_wall_clock(self.now, WALL_BASE + self.now.0 as i64);
        self.drain();
        let auto = std::mem::replace(&mut self.auto, true);
        self.settle();
        assert!(self.server.jetstream_ready(), "recovery did not finish");
        let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40001);
        self.conn = self.server.handle_accept(self.now, peer);
        self.drain();
        self.send_raw(b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB _R.> 1\r\n");
        self.auto = auto;
    }

    /// Perform every storage operation and deliver every completion until the
    /// server emits no more.
    pub fn settle(&mut self) {
        loop {
            self.disk.perform_all();
            if self.disk.completions() == 0 {
                break;
            }
            self.deliver(usize::MAX);
        }
    }

    /// Drain the server's outputs once (no storage progress).
    pub fn drain(&mut self) {
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Transmit { conn, data } => {
                    assert_eq!(conn, self.conn, "transmit to an unknown connection");
                    self.wire.extend_from_slice(&data);
                    for m in parse_msgs(&data) {
                        if let Some(n) = m.subject.strip_prefix("_R.") {
                            let n: u64 = n.parse().expect("reply number");
                            if let Some(hd) = m.headers {
                                self.arrived_hdrs.insert(n, hd);
                            }
                            self.arrived.push((n, m.payload));
                        }
                    }
                    self.server.handle_written(self.now, conn, data.len());
                }
                Output::Storage { id, op } => self.disk.submit(id, op),
                Output::Close { conn, reason } => panic!("server closed {conn}: {reason}"),
                Output::PauseRead { .. } | Output::ResumeRead { .. } => {}
            }
        }
    }

    /// Drain, and with `auto` on, run the disk until quiet.
    pub fn pump(&mut self) {
        self.drain();
        if self.auto {
            self.settle();
        }
    }

    /// Perform up to `n` queued storage operations (completions held).
    pub fn perform(&mut self, n: usize) -> usize {
        self.disk.perform(n)
    }

    /// Deliver up to `n` completions of performed operations, in order.
    pub fn deliver(&mut self, n: usize) -> usize {
        let mut k = 0;
        while k < n {
            let Some((id, result)) = self.disk.next_completion() else {
                break;
            };
            self.server.handle_storage(self.now, id, result);
            self.drain();
            k += 1;
        }
        k
    }

    /// The client sends raw protocol bytes (one read).
    pub fn send_raw(&mut self, data: &[u8]) {
        self.server.handle_read(self.now, self.conn, data);
        self.pump();
    }

    pub fn reply_no(&mut self) -> u64 {
        let n = self.next_reply;
        self.next_reply += 1;
        n
    }

    /// Take the reply numbered `n` if it arrived.
    pub fn take_reply(&mut self, n: u64) -> Option<Vec<u8>> {
        let i = self.arrived.iter().position(|(k, _)| *k == n)?;
        Some(self.arrived.remove(i).1)
    }

    /// An API request; its reply must come at once.
    pub fn request(&mut self, subject: &str, body: &str) -> serde_json::Value {
        let n = self.reply_no();
        let frame = format!("PUB {subject} _R.{n} {}\r\n{body}\r\n", body.len());
        self.send_raw(frame.as_bytes());
        let reply = self
            .take_reply(n)
            .unwrap_or_else(|| panic!("no reply to {subject} {body}"));
        serde_json::from_slice(&reply).expect("JSON reply")
    }

    /// Create a stream; panics on an error reply.
    pub fn create_stream(&mut self, name: &str, cfg_json: &str) -> serde_json::Value {
        let r = self.request(&format!("$JS.API.STREAM.CREATE.{name}"), cfg_json);
        assert!(r.get("error").is_none(), "stream create failed: {r}");
        r
    }

    /// The wire bytes of one publish with reply `_R.<n>`.
    pub fn pub_frame(
        &self,
        n: u64,
        subject: &str,
        msg_id: Option<&str>,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = Vec::new();
        match msg_id {
            None => {
                f.extend_from_slice(
                    format!("PUB {subject} _R.{n} {}\r\n", payload.len()).as_bytes(),
                );
            }
            Some(id) => {
                let hdr = format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n");
                f.extend_from_slice(
                    format!(
                        "HPUB {subject} _R.{n} {} {}\r\n{hdr}",
                        hdr.len(),
                        hdr.len() + payload.len()
                    )
                    .as_bytes(),
                );
            }
        }
        f.extend_from_slice(payload);
        f.extend_from_slice(b"\r\n");
        f
    }

    /// Publish a batch in one read; returns the reply number of each publish.
    pub fn publish_batch(&mut self, msgs: &[(String, Option<String>, Vec<u8>)]) -> Vec<u64> {
        let mut data = Vec::new();
        let mut ns = Vec::new();
        for (subject, id, payload) in msgs {
            let n = self.reply_no();
            data.extend(self.pub_frame(n, subject, id.as_deref(), payload));
            ns.push(n);
        }
        self.send_raw(&data);
        ns
    }

    /// Publish one message; returns its reply number.
    pub fn publish(&mut self, subject: &str, payload: &[u8]) -> u64 {
        self.publish_batch(&[(subject.to_string(), None, payload.to_vec())])[0]
    }

    /// `$JS.API.STREAM.MSG.GET.<stream>` by sequence.
    pub fn msg_get(&mut self, stream: &str, seq: u64) -> Option<GotMsg> {
        let r = self.request(
            &format!("$JS.API.STREAM.MSG.GET.{stream}"),
            &format!("{{\"seq\":{seq}}}"),
        );
        if let Some(e) = r.get("error") {
            assert_eq!(e["err_code"], 10037, "MSG.GET {seq}: {r}");
            return None;
        }
        let m = &r["message"];
        let b64 = |v: &serde_json::Value| {
            v.as_str()
                .map(|s| {
                    base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .expect("base64")
                })
                .unwrap_or_default()
        };
        Some(GotMsg {
            seq: m["seq"].as_u64().expect("seq"),
            subject: m["subject"].as_str().expect("subject").to_string(),
            hdrs: b64(&m["hdrs"]),
            data: b64(&m["data"]),
        })
    }

    /// `$JS.API.DIRECT.GET.<stream>` with a JSON body; returns the reply's
    /// header block and payload, which must come at once.
    pub fn direct_get(&mut self, stream: &str, body: &str) -> (Vec<u8>, Vec<u8>) {
        let n = self.reply_no();
        let frame = format!(
            "PUB $JS.API.DIRECT.GET.{stream} _R.{n} {}\r\n{body}\r\n",
            body.len()
        );
        self.send_raw(frame.as_bytes());
        let payload = self
            .take_reply(n)
            .unwrap_or_else(|| panic!("no reply to DIRECT.GET {body}"));
        let hdrs = self.arrived_hdrs.remove(&n).unwrap_or_default();
        (hdrs, payload)
    }

    /// `$JS.API.STREAM.INFO.<stream>`'s state.
    pub fn state(&mut self, stream: &str) -> serde_json::Value {
        let r = self.request(&format!("$JS.API.STREAM.INFO.{stream}"), "");
        assert!(r.get("error").is_none(), "stream info failed: {r}");
        r["state"].clone()
    }

    /// Every message of a stream, by sequence (MSG.GET of first..=last).
    pub fn messages(&mut self, stream: &str) -> BTreeMap<u64, GotMsg> {
        let st = self.state(stream);
        let first = st["first_seq"].as_u64().unwrap_or(0).max(1);
        let last = st["last_seq"].as_u64().unwrap_or(0);
        let mut out = BTreeMap::new();
        for seq in first..=last {
            if let Some(m) = self.msg_get(stream, seq) {
                assert_eq!(m.seq, seq);
                out.insert(seq, m);
            }
        }
        assert_eq!(
            out.len() as u64,
            st["messages"].as_u64().unwrap_or(0),
            "stream state counts differ from MSG.GET: {st}"
        );
        out
    }

    /// Move the clock forward by `ns` nanoseconds, firing every server timer
    /// that falls due on the way (at its own deadline).
    pub fn advance(&mut self, ns: u64) {
        let end = Instant(self.now.0 + ns);
        while let Some(at) = self.server.poll_timeout() {
            if at > end {
                break;
            }
            self.now = self.now.max(at);
            self.server.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
        self.server.handle_timeout(self.now);
        self.pump();
    }

    /// Every MSG/HMSG the client received after byte `from` of the wire.
    pub fn msgs_since(&self, from: usize) -> Vec<super::ParsedMsg> {
        parse_msgs(&self.wire[from..])
    }

    /// A request whose replies (deliveries and status messages) are collected
    /// from the wire: returns the wire offset before it was sent.
    pub fn send_request(&mut self, subject: &str, reply: &str, body: &str) -> usize {
        let mark = self.wire.len();
        let frame = format!("PUB {subject} {reply} {}\r\n{body}\r\n", body.len());
        self.send_raw(frame.as_bytes());
        mark
    }

    /// Power loss and restart: the disk crashes (see [`SimDisk::crash`]), the
    /// server is dropped, and a new one on the same disk recovers until ready and
    /// every storage operation it emitted has completed. Returns the torn bytes kept.
    pub fn crash_restart(&mut self, torn: Option<u64>) -> usize {
        let kept = self.disk.crash(torn);
        self.reboot();
        kept
    }

    /// The process is killed (kill -9) and started again: what was performed
    /// stays in the page cache, what was still queued is lost.
    pub fn kill_restart(&mut self) {
        self.disk.kill();
        self.reboot();
    }

    /// A clean restart: everything emitted is performed first, then the server
    /// is replaced (the disk keeps its volatile state, as after a process exit).
    pub fn restart(&mut self) {
        self.settle();
        self.reboot();
    }

    fn reboot(&mut self) {
        self.restarts += 1;
        self.arrived.clear();
        // Storage ids start again with the new server.
        self.disk.performed_ok.clear();
        self.disk.delivered.clear();
        self.server = Server::new(self.cfg.clone(), self.seed);
        self.boot();
    }
}

//! A test harness that drives the sans-IO [`Server`] directly, with a fake clock,
//! and records a readable transcript of everything that crosses the wire.
//!
//! Transcript lines:
//! - `C1: <line>`: bytes client 1 sent, split on CRLF (payload lines included),
//! - `S1: <line>`: bytes the server transmitted to client 1, split on CRLF,
//! - `S1: <closed: reason>`: the server closed client 1,
//! - `-- +2s (t=4s) --`: the fake clock moved forward,
//! - `# note`: a comment a test added.
//!
//! Every transmit is acknowledged at once with `handle_written` unless the client
//! was [`Harness::stall`]ed, so the write deadline never fires by accident.
#![allow(dead_code)]

pub mod js;
pub mod simdisk;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use natrium_engine::{CloseReason, Config, ConnId, Instant, Output, Server};

/// A client of the harness: its number in the transcript (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Client(pub usize);

struct ClientState {
    id: ConnId,
    /// Acknowledge transmits with `handle_written`.
    ack: bool,
    /// Everything the server transmitted to this client.
    received: Vec<u8>,
    /// Bytes transmitted while stalled, not yet acknowledged.
    unacked: usize,
    /// The engine asked the runtime to stop reading from this client.
    read_paused: bool,
    /// Set once the server closed the connection (or the client hung up).
    closed: Option<CloseReason>,
    hung_up: bool,
}

pub struct Harness {
    pub server: Server,
    pub now: Instant,
    clients: Vec<ClientState>,
    log: Vec<String>,
    /// Record the transcript (property tests switch it off for speed).
    pub record: bool,
}

pub const SEED: u64 = 1;

impl Harness {
    pub fn new(cfg: Config) -> Harness {
        Harness::with_seed(cfg, SEED)
    }

    pub fn with_seed(cfg: Config, seed: u64) -> Harness {
        Harness {
            server: Server::new(cfg, seed),
            now: Instant(0),
            clients: Vec::new(),
            log: Vec::new(),
            record: true,
        }
    }

    /// Accept a new client from 127.0.0.1:(40000 + n) and deliver its INFO.
    pub fn connect(&mut self) -> Client {
        let n = self.clients.len() + 1;
        let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000 + n as u16);
        let id = self.server.handle_accept(self.now, peer);
        self.clients.push(ClientState {
            id,
            ack: true,
            received: Vec::new(),
            unacked: 0,
            read_paused: false,
            closed: None,
            hung_up: false,
        });
        self.pump();
        Client(n)
    }

    /// Accept a client and send it a CONNECT with this JSON, then drain.
    pub fn connect_with(&mut self, json: &str) -> Client {
        let c = self.connect();
        self.send(c, &format!("CONNECT {json}\r\n"));
        c
    }

    pub fn id(&self, c: Client) -> ConnId {
        self.clients[c.0 - 1].id
    }

    /// Client `c` sends `data`.
    pub fn send(&mut self, c: Client, data: &str) {
        self.send_bytes(c, data.as_bytes());
    }

    pub fn send_bytes(&mut self, c: Client, data: &[u8]) {
        if self.record {
            for line in split_lines(data) {
                self.log.push(format!("C{}: {}", c.0, line));
            }
        }
        let id = self.clients[c.0 - 1].id;
        self.server.handle_read(self.now, id, data);
        self.pump();
    }

    /// The client hangs up (the runtime saw EOF).
    pub fn hang_up(&mut self, c: Client) {
        if self.record {
            self.log.push(format!("C{}: <hang up>", c.0));
        }
        let st = &mut self.clients[c.0 - 1];
        st.hung_up = true;
        let id = st.id;
        self.server.handle_closed(self.now, id);
        self.pump();
    }

    /// Stop acknowledging writes to `c`: its socket never drains.
    pub fn stall(&mut self, c: Client) {
        self.clients[c.0 - 1].ack = false;
    }

    /// `c`'s socket drains again: everything held back is acknowledged.
    pub fn unstall(&mut self, c: Client) {
        let st = &mut self.clients[c.0 - 1];
        st.ack = true;
        let (id, n) = (st.id, std::mem::take(&mut st.unacked));
        if n > 0 {
            self.server.handle_written(self.now, id, n);
        }
        self.pump();
    }

    /// Whether the engine has paused reading from `c` (a stalled fast producer).
    pub fn read_paused(&self, c: Client) -> bool {
        self.clients[c.0 - 1].read_paused
    }

    /// Add a comment line to the transcript.
    pub fn note(&mut self, text: &str) {
        if self.record {
            self.log.push(format!("# {text}"));
        }
    }

    /// Move the fake clock forward by `d`, firing every timer that falls due on
    /// the way (at its own deadline).
    pub fn advance(&mut self, d: Duration) {
        let target = self.now.after(d);
        if self.record {
            self.log.push(format!(
                "-- +{} (t={}) --",
                fmt_dur(d),
                fmt_dur(Duration::from_nanos(target.0))
            ));
        }
        while let Some(at) = self.server.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.server.handle_timeout(self.now);
            self.pump();
        }
        self.now = target;
    }

    /// Drain `poll_output`, logging and (unless stalled) acknowledging transmits.
    pub fn pump(&mut self) {
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Transmit { conn, data } => {
                    let i = self.index_of(conn);
                    if self.record {
                        for line in split_lines(&data) {
                            self.log.push(format!("S{}: {}", i + 1, line));
                        }
                    }
                    let st = &mut self.clients[i];
                    assert!(st.closed.is_none(), "transmit after close to {conn}");
                    st.received.extend_from_slice(&data);
                    if st.ack {
                        self.server.handle_written(self.now, conn, data.len());
                    } else {
                        st.unacked += data.len();
                    }
                }
                Output::Storage { id, op } => {
                    panic!("unexpected storage operation {id:?}: {op:?} (JetStream is off in transcripts)")
                }
                Output::PauseRead { conn } | Output::ResumeRead { conn } => {
                    let paused = matches!(out, Output::PauseRead { .. });
                    let i = self.index_of(conn);
                    if self.record {
                        let what = if paused {
                            "read paused"
                        } else {
                            "read resumed"
                        };
                        self.log.push(format!("S{}: <{what}>", i + 1));
                    }
                    self.clients[i].read_paused = paused;
                }
                Output::Close { conn, reason } => {
                    let i = self.index_of(conn);
                    if self.record {
                        self.log.push(format!("S{}: <closed: {reason}>", i + 1));
                    }
                    let st = &mut self.clients[i];
                    assert!(st.closed.is_none(), "second close of {conn}");
                    st.closed = Some(reason);
                }
            }
        }
    }

    fn index_of(&self, conn: ConnId) -> usize {
        self.clients
            .iter()
            .position(|s| s.id == conn)
            .unwrap_or_else(|| panic!("output for unknown connection {conn}"))
    }

    /// Why the server closed `c`, if it did.
    pub fn closed(&self, c: Client) -> Option<CloseReason> {
        self.clients[c.0 - 1].closed
    }

    pub fn is_open(&self, c: Client) -> bool {
        let st = &self.clients[c.0 - 1];
        st.closed.is_none() && !st.hung_up
    }

    /// Everything transmitted to `c` so far.
    pub fn received(&self, c: Client) -> &[u8] {
        &self.clients[c.0 - 1].received
    }

    /// Take and forget what `c` has received so far.
    pub fn take_received(&mut self, c: Client) -> Vec<u8> {
        std::mem::take(&mut self.clients[c.0 - 1].received)
    }

    /// The transcript so far, one line each.
    pub fn transcript(&self) -> String {
        let mut s = String::new();
        for line in &self.log {
            s.push_str(line);
            s.push('\n');
        }
        s
    }

    /// Forget the transcript so far (keeps snapshots focused).
    pub fn clear_log(&mut self) {
        self.log.clear();
    }
}

/// The default configuration with a fixed name, so INFO lines are short and stable.
pub fn config() -> Config {
    Config {
        server_name: Some("natrium-test".to_string()),
        ..Config::default()
    }
}

/// Split on CRLF; a last piece without CRLF is shown with a `<no CRLF>` marker.
/// Bytes that are not printable ASCII are escaped.
fn split_lines(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(p) => {
                out.push(escape(&rest[..p]));
                rest = &rest[p + 2..];
            }
            None => {
                out.push(format!("{} <no CRLF>", escape(rest)));
                break;
            }
        }
    }
    out
}

fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s
}

fn fmt_dur(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

/// Parse a stream of server frames into `(subject, sid, reply, headers, payload)`
/// for each MSG/HMSG, skipping everything else. Panics on malformed framing.
pub fn parse_msgs(mut data: &[u8]) -> Vec<ParsedMsg> {
    let mut msgs = Vec::new();
    while !data.is_empty() {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("frame without CRLF");
        let line = std::str::from_utf8(&data[..eol]).expect("utf8 control line");
        data = &data[eol + 2..];
        let mut parts = line.split(' ');
        let op = parts.next().unwrap();
        let args: Vec<&str> = parts.collect();
        match op {
            "MSG" | "HMSG" => {
                let has_hdr = op == "HMSG";
                let nfixed = if has_hdr { 4 } else { 3 };
                let (reply, rest) = if args.len() == nfixed + 1 {
                    (Some(args[2].to_string()), &args[3..])
                } else {
                    assert_eq!(args.len(), nfixed, "bad {op} line {line:?}");
                    (None, &args[2..])
                };
                let (hlen, total): (usize, usize) = if has_hdr {
                    (rest[0].parse().unwrap(), rest[1].parse().unwrap())
                } else {
                    (0, rest[0].parse().unwrap())
                };
                let body = &data[..total];
                assert_eq!(
                    &data[total..total + 2],
                    b"\r\n",
                    "payload not CRLF-terminated"
                );
                data = &data[total + 2..];
                msgs.push(ParsedMsg {
                    subject: args[0].to_string(),
                    sid: args[1].to_string(),
                    reply,
                    headers: has_hdr.then(|| body[..hlen].to_vec()),
                    payload: body[hlen..].to_vec(),
                });
            }
            _ => {}
        }
    }
    msgs
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMsg {
    pub subject: String,
    pub sid: String,
    pub reply: Option<String>,
    pub headers: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

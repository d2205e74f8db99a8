//! The simulated clients. Each keeps (re)connecting until the run ends and
//! records what it sent and saw in [`Obs`]; checks that need only its own view
//! (order, duplicates, UNSUB) are made as messages arrive.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use base64::Engine as _;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::proto::{Conn, Frame, Msg};
use crate::scenario::{END, QUIET_PUBLISH, SAFETY_END};
use crate::trace::{now, Trace};
use crate::worker::{ConsumerObs, ConsumerView, CONSUMER};

/// A client's keepalive: a PING after this much silence...
const KEEPALIVE: Duration = Duration::from_millis(150);
/// ...and the connection is given up when its PONG takes longer than this.
const PONG_TIMEOUT: Duration = Duration::from_millis(600);
/// Messages each publisher sends in the quiet phase, per subject kind.
const QUIET_BATCH: u64 = 5;
/// A JetStream publish waits this long for its PubAck.
const ACK_TIMEOUT: Duration = Duration::from_millis(600);
/// Attempts of one JetStream message before it is given up.
const JS_ATTEMPTS: u32 = 3;
/// The stream every JetStream client publishes to.
pub const STREAM: &str = "S";

/// A message published by a core publisher.
#[derive(Clone, Debug)]
pub struct Published {
    pub subject: String,
    pub sent: Duration,
    /// Part of the quiet batch, confirmed processed by the server (PONG).
    pub quiet: bool,
}

/// One connection's lifetime as a client saw it.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// When its subscription (if any) was confirmed by a PONG.
    pub ready: Option<Duration>,
    pub ended: Option<Duration>,
}

#[derive(Default)]
pub struct SubObs {
    pub filter: String,
    pub sessions: Vec<Session>,
    /// (publisher, seq) -> when it arrived.
    pub received: BTreeMap<(u64, u64), Duration>,
}

#[derive(Default)]
pub struct JsAck {
    pub msg: u64,
    pub client: u64,
    pub seq: u64,
    pub duplicate: bool,
    pub at: Duration,
}

/// Everything the clients observed.
#[derive(Default)]
pub struct Obs {
    /// (publisher, seq) -> what was published.
    pub published: BTreeMap<(u64, u64), Published>,
    pub subs: Vec<SubObs>,
    /// Queue group members' sessions, and (publisher, seq) -> member.
    pub workers: Vec<Vec<Session>>,
    pub worked: BTreeMap<(u64, u64), usize>,
    pub responders: Vec<Vec<Session>>,
    /// Requests: n -> (sent, on a session ready since, answered).
    pub requests: BTreeMap<u64, (Duration, Duration, bool)>,
    pub requester_sessions: Vec<Session>,
    /// JetStream: (client, msg) -> payload, for every message attempted.
    pub js_sent: BTreeMap<(u64, u64), Vec<u8>>,
    pub js_acks: Vec<JsAck>,
    /// JetStream messages whose ack is required (quiet phase, healthy disk).
    pub js_required: Vec<(u64, u64)>,
    pub js_done: usize,
    /// What the verifier read back: the stream's state and messages.
    pub stream: Option<StreamView>,
    /// JetStream pull workers and the consumer they share.
    pub consumer: ConsumerObs,
    /// When the server started again after a crash (simulated time).
    pub server_starts: Vec<Duration>,
}

#[derive(Debug, Default)]
pub struct StreamView {
    pub messages: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// seq -> (subject, Nats-Msg-Id, payload).
    pub msgs: BTreeMap<u64, (String, Option<String>, Vec<u8>)>,
}

pub type Shared = Rc<RefCell<Obs>>;

/// What every client has: its name, its schedule and the run's trace.
#[derive(Clone)]
pub struct Ctx {
    pub name: String,
    pub trace: Trace,
    pub obs: Shared,
    /// When this client drops its connection on purpose.
    pub disconnects: Vec<Duration>,
    pub rng_seed: u64,
}

impl Ctx {
    pub(crate) fn log(&self, what: impl std::fmt::Display) {
        let name = &self.name;
        self.trace.log(|| format!("{name}: {what}"));
    }

    pub(crate) fn violation(&self, what: impl std::fmt::Display) {
        self.trace.violation(format!("{}: {what}", self.name));
    }
}

/// A connection plus the PINGs it has outstanding, each with a purpose.
pub struct Sess {
    pub conn: Conn,
    pings: VecDeque<u64>,
    last_heard: Duration,
    keepalive_sent: Option<Duration>,
}

impl Sess {
    async fn ping(&mut self, tag: u64) -> io::Result<()> {
        self.pings.push_back(tag);
        self.conn.send(b"PING\r\n").await
    }
}

/// Tags of PINGs a role sends; KEEPALIVE_TAG is the session's own.
const KEEPALIVE_TAG: u64 = u64::MAX;

/// What a client does on its connection (the simulation is single-threaded:
/// nothing here needs `Send`).
#[allow(async_fn_in_trait)]
pub trait Role {
    fn ctx(&self) -> &Ctx;
    /// How often `tick` runs.
    fn period(&self) -> Duration;
    /// When the client stops.
    fn until(&self) -> Duration {
        END
    }
    async fn connected(&mut self, s: &mut Sess) -> io::Result<()>;
    async fn message(&mut self, s: &mut Sess, m: Msg) -> io::Result<()>;
    async fn tick(&mut self, s: &mut Sess) -> io::Result<()>;
    fn pong(&mut self, tag: u64);
    fn disconnected(&mut self);
}

/// Connect, run sessions until `until`, reconnect after failures.
pub async fn run_role<R: Role>(mut role: R) -> turmoil::Result {
    let mut disconnects: VecDeque<Duration> = role.ctx().disconnects.clone().into();
    let mut rng = SmallRng::seed_from_u64(role.ctx().rng_seed ^ 0x5eed);
    while now() < role.until() {
        let name = role.ctx().name.clone();
        let conn = match tokio::time::timeout(PONG_TIMEOUT, Conn::connect(&name)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                role.ctx().log(format_args!("connect failed: {e}"));
                tokio::time::sleep(Duration::from_millis(rng.random_range(20..120))).await;
                continue;
            }
            Err(_) => {
                role.ctx().log("connect timed out");
                continue;
            }
        };
        role.ctx().log("connected");
        // Disconnects due while there was no connection are moot.
        while disconnects.front().is_some_and(|d| *d <= now()) {
            disconnects.pop_front();
        }
        let mut s = Sess {
            conn,
            pings: VecDeque::new(),
            last_heard: now(),
            keepalive_sent: None,
        };
        let why = session(&mut role, &mut s, &mut disconnects).await;
        role.ctx().log(format_args!("session over: {why}"));
        role.disconnected();
        if now() >= QUIET_PUBLISH - Duration::from_millis(300) && now() < role.until() {
            role.ctx()
                .violation(format_args!("connection lost in the quiet phase: {why}"));
        }
        drop(s);
        tokio::time::sleep(Duration::from_millis(rng.random_range(10..60))).await;
    }
    Ok(())
}

async fn session<R: Role>(
    role: &mut R,
    s: &mut Sess,
    disconnects: &mut VecDeque<Duration>,
) -> String {
    if let Err(e) = role.connected(s).await {
        return format!("setup failed: {e}");
    }
    let mut next_tick = now();
    loop {
        let t = now();
        if t >= role.until() {
            return "done".into();
        }
        if disconnects.front().is_some_and(|d| *d <= t) {
            disconnects.pop_front();
            return "disconnecting on purpose".into();
        }
        if let Some(sent) = s.keepalive_sent {
            if t.saturating_sub(sent) > PONG_TIMEOUT {
                return "no PONG: connection given up".into();
            }
        } else if t.saturating_sub(s.last_heard) >= KEEPALIVE {
            s.keepalive_sent = Some(t);
            if let Err(e) = s.ping(KEEPALIVE_TAG).await {
                return format!("write failed: {e}");
            }
        }
        let wait = next_tick.saturating_sub(t).min(Duration::from_millis(50));
        let frame = tokio::select! {
            biased;
            f = s.conn.next() => Some(f),
            _ = tokio::time::sleep(wait) => None,
        };
        let result = match frame {
            None => {
                if now() >= next_tick {
                    next_tick = now() + role.period();
                    role.tick(s).await
                } else {
                    Ok(())
                }
            }
            Some(Err(e)) => return format!("read failed: {e}"),
            Some(Ok(f)) => {
                s.last_heard = now();
                match f {
                    Frame::Ping => s.conn.send(b"PONG\r\n").await,
                    Frame::Pong => {
                        match s.pings.pop_front() {
                            Some(KEEPALIVE_TAG) => s.keepalive_sent = None,
                            Some(tag) => role.pong(tag),
                            None => role.ctx().violation("PONG without a PING"),
                        }
                        Ok(())
                    }
                    Frame::Msg(m) => role.message(s, m).await,
                    Frame::Err(e) => {
                        role.ctx().log(format_args!("-ERR {e}"));
                        Ok(())
                    }
                    Frame::Info | Frame::Ok => Ok(()),
                }
            }
        };
        if let Err(e) = result {
            return format!("failed: {e}");
        }
    }
}

fn parse_core(payload: &[u8]) -> Option<(u64, u64, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let head = text.split(':').next()?;
    let mut it = head.split('.');
    let p = it.next()?.parse().ok()?;
    let inc = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    Some((p, inc, seq))
}

// ---------------------------------------------------------------- publisher

pub struct Publisher {
    pub ctx: Ctx,
    pub id: u64,
    pub workers: bool,
    rng: SmallRng,
    seq: u64,
    incarnation: u64,
    quiet_sent: Vec<u64>,
    quiet_confirmed: bool,
}

const QUIET_TAG: u64 = 1;

impl Publisher {
    pub fn new(ctx: Ctx, id: u64, workers: bool) -> Publisher {
        let rng = SmallRng::seed_from_u64(ctx.rng_seed);
        Publisher {
            ctx,
            id,
            workers,
            rng,
            seq: 0,
            incarnation: 0,
            quiet_sent: Vec::new(),
            quiet_confirmed: false,
        }
    }

    async fn publish(&mut self, s: &mut Sess, work: bool, quiet: bool) -> io::Result<()> {
        self.seq += 1;
        let subject = if work {
            format!("work.p{}", self.id)
        } else {
            format!("core.p{}", self.id)
        };
        let filler = "x".repeat(self.rng.random_range(0..64));
        let payload = format!("{}.{}.{}:{filler}", self.id, self.incarnation, self.seq);
        self.ctx.obs.borrow_mut().published.insert(
            (self.id, self.seq),
            Published {
                subject: subject.clone(),
                sent: now(),
                quiet: false,
            },
        );
        if quiet {
            self.quiet_sent.push(self.seq);
        }
        s.conn
            .publish(&subject, None, None, payload.as_bytes())
            .await
    }
}

impl Role for Publisher {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }
    fn period(&self) -> Duration {
        Duration::from_millis(10)
    }
    async fn connected(&mut self, _s: &mut Sess) -> io::Result<()> {
        self.incarnation += 1;
        Ok(())
    }
    async fn message(&mut self, _s: &mut Sess, _m: Msg) -> io::Result<()> {
        Ok(())
    }
    async fn tick(&mut self, s: &mut Sess) -> io::Result<()> {
        let t = now();
        if t < SAFETY_END {
            for _ in 0..self.rng.random_range(1..=4) {
                let work = self.workers && self.rng.random_bool(0.5);
                self.publish(s, work, false).await?;
            }
        } else if t >= QUIET_PUBLISH && self.quiet_sent.is_empty() && !self.quiet_confirmed {
            for _ in 0..QUIET_BATCH {
                self.publish(s, false, true).await?;
                if self.workers {
                    self.publish(s, true, true).await?;
                }
            }
            s.ping(QUIET_TAG).await?;
        }
        Ok(())
    }
    fn pong(&mut self, tag: u64) {
        if tag == QUIET_TAG {
            self.quiet_confirmed = true;
            let mut obs = self.ctx.obs.borrow_mut();
            for seq in self.quiet_sent.drain(..) {
                if let Some(p) = obs.published.get_mut(&(self.id, seq)) {
                    p.quiet = true;
                }
            }
            drop(obs);
            self.ctx.log("quiet batch confirmed");
        }
    }
    fn disconnected(&mut self) {
        // An unconfirmed quiet batch is sent again on the next connection.
        self.quiet_sent.clear();
    }
}

// --------------------------------------------------------------- subscriber

pub struct Subscriber {
    pub ctx: Ctx,
    /// Index in Obs::subs (or Obs::workers when `queue`).
    pub index: usize,
    pub filter: String,
    pub queue: Option<&'static str>,
    pub slow: bool,
    rng: SmallRng,
    /// Per (publisher, incarnation): the last seq seen.
    last: BTreeMap<(u64, u64), u64>,
    seen: BTreeSet<(u64, u64)>,
    /// A second subscription being added and removed (UNSUB checks).
    extra: Option<u64>,
    next_sid: u64,
    /// Sids whose UNSUB the server has processed (a PONG came after it).
    dead: BTreeSet<u64>,
    /// Messages received per extra sid.
    counts: BTreeMap<u64, u64>,
    /// Extra sids with an auto-unsubscribe (`UNSUB sid max`): max, and the
    /// count when the PONG after it arrived (once it has).
    auto: BTreeMap<u64, (u64, Option<u64>)>,
}

const READY_TAG: u64 = 2;
/// UNSUB tags are the sid plus this.
const UNSUB_TAG: u64 = 1 << 32;
/// Auto-unsubscribe tags are the sid plus this.
const AUTO_TAG: u64 = 1 << 40;

impl Subscriber {
    pub fn new(
        ctx: Ctx,
        index: usize,
        filter: String,
        queue: Option<&'static str>,
        slow: bool,
    ) -> Self {
        let rng = SmallRng::seed_from_u64(ctx.rng_seed);
        Subscriber {
            ctx,
            index,
            filter,
            queue,
            slow,
            rng,
            last: BTreeMap::new(),
            seen: BTreeSet::new(),
            extra: None,
            next_sid: 100,
            dead: BTreeSet::new(),
            counts: BTreeMap::new(),
            auto: BTreeMap::new(),
        }
    }

    fn sessions<R>(&self, f: impl FnOnce(&mut Vec<Session>) -> R) -> R {
        let mut obs = self.ctx.obs.borrow_mut();
        if self.queue.is_some() {
            f(&mut obs.workers[self.index])
        } else {
            f(&mut obs.subs[self.index].sessions)
        }
    }
}

impl Role for Subscriber {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }
    fn period(&self) -> Duration {
        Duration::from_millis(40)
    }
    async fn connected(&mut self, s: &mut Sess) -> io::Result<()> {
        self.sessions(|v| v.push(Session::default()));
        self.extra = None;
        let q = self.queue.map(|q| format!(" {q}")).unwrap_or_default();
        s.conn
            .send(format!("SUB {}{q} 1\r\n", self.filter).as_bytes())
            .await?;
        s.ping(READY_TAG).await
    }
    async fn message(&mut self, _s: &mut Sess, m: Msg) -> io::Result<()> {
        if self.dead.contains(&m.sid) {
            self.ctx.violation(format_args!(
                "message on {} for sid {} after its UNSUB was processed",
                m.subject, m.sid
            ));
        }
        if m.sid != 1 {
            let n = self.counts.entry(m.sid).or_insert(0);
            *n += 1;
            // After `UNSUB sid max` is processed, the subscription takes at most
            // max messages in all (or none more, if it had as many already).
            if let Some(&(max, Some(at_pong))) = self.auto.get(&m.sid) {
                if *n > max.max(at_pong) {
                    let n = *n;
                    self.ctx.violation(format_args!(
                        "sid {} got {n} messages after UNSUB {} {max} ({at_pong} when it was processed)",
                        m.sid, m.sid
                    ));
                }
            }
            return Ok(());
        }
        let Some((p, inc, seq)) = parse_core(&m.payload) else {
            self.ctx
                .violation(format_args!("unreadable payload {:?}", m.payload));
            return Ok(());
        };
        if !self.seen.insert((p, seq)) {
            self.ctx
                .violation(format_args!("message {p}.{seq} delivered twice"));
        }
        let last = self.last.entry((p, inc)).or_insert(0);
        if seq <= *last {
            self.ctx.violation(format_args!(
                "publisher {p} (connection {inc}) message {seq} after {}",
                *last
            ));
        }
        *last = seq;
        let t = now();
        let other = {
            let mut obs = self.ctx.obs.borrow_mut();
            if self.queue.is_some() {
                obs.worked.insert((p, seq), self.index)
            } else {
                obs.subs[self.index].received.insert((p, seq), t);
                None
            }
        };
        if let Some(other) = other {
            self.ctx.violation(format_args!(
                "queue message {p}.{seq} also delivered to member {other}"
            ));
        }
        if self.slow && t < SAFETY_END {
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        Ok(())
    }
    async fn tick(&mut self, s: &mut Sess) -> io::Result<()> {
        if now() >= SAFETY_END || self.queue.is_some() || !self.rng.random_bool(0.3) {
            return Ok(());
        }
        match self.extra.take() {
            None => {
                let sid = self.next_sid;
                self.next_sid += 1;
                self.extra = Some(sid);
                s.conn
                    .send(format!("SUB {} {sid}\r\n", self.filter).as_bytes())
                    .await
            }
            Some(sid) if self.rng.random_bool(0.3) => {
                // Auto-unsubscribe; the sid is left to run out.
                let max = self.rng.random_range(1..=5);
                self.auto.insert(sid, (max, None));
                s.conn
                    .send(format!("UNSUB {sid} {max}\r\n").as_bytes())
                    .await?;
                s.ping(AUTO_TAG + sid).await
            }
            Some(sid) => {
                s.conn.send(format!("UNSUB {sid}\r\n").as_bytes()).await?;
                s.ping(UNSUB_TAG + sid).await
            }
        }
    }
    fn pong(&mut self, tag: u64) {
        if tag == READY_TAG {
            let t = now();
            self.sessions(|v| {
                if let Some(last) = v.last_mut() {
                    last.ready = Some(t);
                }
            });
        } else if tag >= AUTO_TAG {
            let sid = tag - AUTO_TAG;
            let count = self.counts.get(&sid).copied().unwrap_or(0);
            if let Some(a) = self.auto.get_mut(&sid) {
                a.1 = Some(count);
            }
        } else if tag >= UNSUB_TAG {
            self.dead.insert(tag - UNSUB_TAG);
        }
    }
    fn disconnected(&mut self) {
        let t = now();
        self.sessions(|v| {
            if let Some(last) = v.last_mut() {
                last.ended = Some(t);
            }
        });
        // Sids are per connection: a new connection starts clean.
        self.dead.clear();
        self.counts.clear();
        self.auto.clear();
        self.last.clear();
    }
}

// ------------------------------------------------------- request and reply

pub struct Responder {
    pub ctx: Ctx,
    pub index: usize,
}

impl Role for Responder {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }
    fn period(&self) -> Duration {
        Duration::from_millis(100)
    }
    async fn connected(&mut self, s: &mut Sess) -> io::Result<()> {
        self.ctx.obs.borrow_mut().responders[self.index].push(Session::default());
        s.conn.send(b"SUB svc rs 1\r\n").await?;
        s.ping(READY_TAG).await
    }
    async fn message(&mut self, s: &mut Sess, m: Msg) -> io::Result<()> {
        match &m.reply {
            Some(r) => s.conn.publish(r, None, None, &m.payload).await,
            None => Ok(()),
        }
    }
    async fn tick(&mut self, _s: &mut Sess) -> io::Result<()> {
        Ok(())
    }
    fn pong(&mut self, tag: u64) {
        if tag == READY_TAG {
            if let Some(s) = self.ctx.obs.borrow_mut().responders[self.index].last_mut() {
                s.ready = Some(now());
            }
        }
    }
    fn disconnected(&mut self) {
        if let Some(s) = self.ctx.obs.borrow_mut().responders[self.index].last_mut() {
            s.ended = Some(now());
        }
    }
}

pub struct Requester {
    pub ctx: Ctx,
    pub id: u64,
    n: u64,
    ready: Option<Duration>,
    quiet_sent: bool,
}

impl Requester {
    pub fn new(ctx: Ctx, id: u64) -> Requester {
        Requester {
            ctx,
            id,
            n: 0,
            ready: None,
            quiet_sent: false,
        }
    }

    async fn request(&mut self, s: &mut Sess) -> io::Result<()> {
        self.n += 1;
        let n = self.n;
        let ready = self.ready.unwrap_or(Duration::MAX);
        self.ctx
            .obs
            .borrow_mut()
            .requests
            .insert(n, (now(), ready, false));
        let reply = format!("_INBOX.r{}.{n}", self.id);
        s.conn
            .publish("svc", Some(&reply), None, n.to_string().as_bytes())
            .await
    }
}

impl Role for Requester {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }
    fn period(&self) -> Duration {
        Duration::from_millis(20)
    }
    async fn connected(&mut self, s: &mut Sess) -> io::Result<()> {
        self.ready = None;
        self.ctx
            .obs
            .borrow_mut()
            .requester_sessions
            .push(Session::default());
        s.conn
            .send(format!("SUB _INBOX.r{}.* 1\r\n", self.id).as_bytes())
            .await?;
        s.ping(READY_TAG).await
    }
    async fn message(&mut self, _s: &mut Sess, m: Msg) -> io::Result<()> {
        let n = m
            .subject
            .rsplit('.')
            .next()
            .and_then(|n| n.parse::<u64>().ok());
        let body = std::str::from_utf8(&m.payload)
            .ok()
            .and_then(|b| b.parse::<u64>().ok());
        match (n, body) {
            (Some(n), Some(b)) if n == b => {
                let mut obs = self.ctx.obs.borrow_mut();
                match obs.requests.get_mut(&n) {
                    Some(r) if r.2 => {
                        drop(obs);
                        self.ctx
                            .violation(format_args!("request {n} answered twice"));
                    }
                    Some(r) => r.2 = true,
                    None => {
                        drop(obs);
                        self.ctx
                            .violation(format_args!("reply to unknown request {n}"));
                    }
                }
            }
            _ => self.ctx.violation(format_args!(
                "reply {:?} on {} does not match its request",
                m.payload, m.subject
            )),
        }
        Ok(())
    }
    async fn tick(&mut self, s: &mut Sess) -> io::Result<()> {
        let t = now();
        if t < SAFETY_END {
            self.request(s).await
        } else if t >= QUIET_PUBLISH && !self.quiet_sent && self.ready.is_some() {
            self.quiet_sent = true;
            for _ in 0..QUIET_BATCH {
                self.request(s).await?;
            }
            Ok(())
        } else {
            Ok(())
        }
    }
    fn pong(&mut self, tag: u64) {
        if tag == READY_TAG {
            self.ready = Some(now());
            if let Some(s) = self.ctx.obs.borrow_mut().requester_sessions.last_mut() {
                s.ready = self.ready;
            }
        }
    }
    fn disconnected(&mut self) {
        if let Some(s) = self.ctx.obs.borrow_mut().requester_sessions.last_mut() {
            s.ended = Some(now());
        }
    }
}

// ---------------------------------------------------------------- JetStream

/// Publishes to the stream one message at a time with a Nats-Msg-Id, retrying
/// after timeouts with the same id, and records every PubAck. Client 0 also
/// reads the stream back at the end.
pub struct JsPublisher {
    pub ctx: Ctx,
    pub id: u64,
    pub max_msgs: Option<u64>,
    pub healthy_disk: bool,
    pub verifier: bool,
    /// Whether the verifier also reads the workers' consumer back.
    pub consumer: bool,
}

impl JsPublisher {
    fn stream_config(&self) -> String {
        let max = self.max_msgs.map_or(-1, |m| m as i64);
        format!(
            "{{\"name\":\"{STREAM}\",\"subjects\":[\"js.>\"],\"storage\":\"file\",\"retention\":\"limits\",\"max_msgs\":{max},\"discard\":\"old\",\"duplicate_window\":120000000000,\"num_replicas\":1}}"
        )
    }

    pub async fn run(self) -> turmoil::Result {
        let mut rng = SmallRng::seed_from_u64(self.ctx.rng_seed);
        let mut msg = 0u64;
        let mut attempt = 0u32;
        let mut created = false;
        let stop = QUIET_PUBLISH + Duration::from_millis(500);
        let mut disconnects: VecDeque<Duration> = self.ctx.disconnects.clone().into();
        let mut quiet_done = false;
        let mut quiet_msg: Option<u64> = None;
        'outer: while now() < stop {
            let mut conn =
                match tokio::time::timeout(PONG_TIMEOUT, Conn::connect(&self.ctx.name)).await {
                    Ok(Ok(c)) => c,
                    _ => {
                        tokio::time::sleep(Duration::from_millis(rng.random_range(20..120))).await;
                        continue;
                    }
                };
            self.ctx.log("connected");
            while disconnects.front().is_some_and(|d| *d <= now()) {
                disconnects.pop_front();
            }
            let inbox = format!("_INBOX.j{}", self.id);
            if conn
                .send(format!("SUB {inbox}.> 1\r\n").as_bytes())
                .await
                .is_err()
            {
                continue;
            }
            while !created {
                let cfg = self.stream_config();
                let reply = format!("{inbox}.create");
                let subject = format!("$JS.API.STREAM.CREATE.{STREAM}");
                if conn
                    .publish(&subject, Some(&reply), None, cfg.as_bytes())
                    .await
                    .is_err()
                {
                    continue 'outer;
                }
                match self.wait_reply(&mut conn, &reply, ACK_TIMEOUT).await {
                    Ok(Some(body)) => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        if v.get("error").is_none() {
                            created = true;
                            self.ctx.log("stream ready");
                        } else {
                            self.ctx.log(format_args!("stream create: {v}"));
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    Ok(None) => {}
                    Err(_) => continue 'outer,
                }
                if now() >= stop {
                    break 'outer;
                }
            }
            loop {
                let t = now();
                if t >= stop {
                    break 'outer;
                }
                if disconnects.front().is_some_and(|d| *d <= t) {
                    disconnects.pop_front();
                    self.ctx.log("disconnecting on purpose");
                    continue 'outer;
                }
                if t >= SAFETY_END && t < QUIET_PUBLISH {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    // Answer server PINGs while waiting.
                    if self
                        .wait_reply(&mut conn, "-", Duration::ZERO)
                        .await
                        .is_err()
                    {
                        continue 'outer;
                    }
                    continue;
                }
                if t >= QUIET_PUBLISH && quiet_done {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                if t >= QUIET_PUBLISH && quiet_msg.is_none() {
                    attempt = 0;
                }
                if attempt == 0 || attempt >= JS_ATTEMPTS {
                    msg += 1;
                    attempt = 0;
                    let filler: String = (0..rng.random_range(0..200))
                        .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
                        .collect();
                    let payload = format!("j{}-{msg}:{filler}", self.id).into_bytes();
                    self.ctx
                        .obs
                        .borrow_mut()
                        .js_sent
                        .insert((self.id, msg), payload);
                    if t >= QUIET_PUBLISH {
                        quiet_msg = Some(msg);
                        if self.healthy_disk {
                            self.ctx.obs.borrow_mut().js_required.push((self.id, msg));
                        }
                    }
                }
                attempt += 1;
                let payload = self.ctx.obs.borrow().js_sent[&(self.id, msg)].clone();
                let headers = format!("NATS/1.0\r\nNats-Msg-Id: j{}-{msg}\r\n\r\n", self.id);
                let reply = format!("{inbox}.{msg}.{attempt}");
                let subject = format!("js.p{}", self.id);
                if conn
                    .publish(&subject, Some(&reply), Some(headers.as_bytes()), &payload)
                    .await
                    .is_err()
                {
                    continue 'outer;
                }
                match self.wait_reply(&mut conn, &reply, ACK_TIMEOUT).await {
                    Ok(Some(body)) => {
                        if !self.record_ack(msg, &body) {
                            // An error reply: not stored; try again (a new attempt).
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            if attempt >= JS_ATTEMPTS {
                                self.ctx.log(format_args!("message {msg} given up"));
                            }
                            continue;
                        }
                        attempt = 0;
                        if quiet_msg == Some(msg) {
                            quiet_done = true;
                        }
                    }
                    Ok(None) => {
                        self.ctx
                            .log(format_args!("message {msg} attempt {attempt}: no ack"));
                    }
                    Err(_) => continue 'outer,
                }
            }
        }
        self.ctx.obs.borrow_mut().js_done += 1;
        if self.verifier {
            self.verify().await;
        }
        Ok(())
    }

    /// Record a PubAck (true) or an error reply (false).
    fn record_ack(&self, msg: u64, body: &[u8]) -> bool {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        if v.get("error").is_some() {
            self.ctx.log(format_args!("message {msg}: {v}"));
            return false;
        }
        let Some(seq) = v.get("seq").and_then(|s| s.as_u64()) else {
            self.ctx
                .violation(format_args!("PubAck without a seq: {v}"));
            return false;
        };
        let duplicate = v
            .get("duplicate")
            .and_then(|d| d.as_bool())
            .unwrap_or(false);
        self.ctx.log(format_args!(
            "message {msg} acked seq {seq} duplicate {duplicate}"
        ));
        self.ctx.obs.borrow_mut().js_acks.push(JsAck {
            msg,
            client: self.id,
            seq,
            duplicate,
            at: now(),
        });
        true
    }

    /// Wait for the reply on `subject`. Late PubAcks of earlier attempts are
    /// recorded as they come. `Ok(None)`: timed out; `Err`: connection lost.
    async fn wait_reply(
        &self,
        conn: &mut Conn,
        subject: &str,
        wait: Duration,
    ) -> io::Result<Option<Vec<u8>>> {
        let deadline = now() + wait;
        loop {
            let left = deadline.saturating_sub(now());
            let frame = tokio::select! {
                biased;
                f = conn.next() => f?,
                _ = tokio::time::sleep(left) => return Ok(None),
            };
            match frame {
                Frame::Ping => conn.send(b"PONG\r\n").await?,
                Frame::Msg(m) if m.subject == subject => return Ok(Some(m.payload.to_vec())),
                Frame::Msg(m) => {
                    // _INBOX.j<id>.<msg>.<attempt>: a late ack.
                    let mut parts = m.subject.rsplit('.');
                    let _attempt = parts.next();
                    if let Some(late) = parts.next().and_then(|p| p.parse::<u64>().ok()) {
                        self.record_ack(late, &m.payload);
                    }
                }
                _ => {}
            }
        }
    }

    /// Read the whole stream back: its state, then every message by sequence.
    async fn verify(&self) {
        let started = now();
        while now() < END {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for _ in 0..5 {
            match self.read_stream().await {
                Ok(view) => {
                    self.ctx.log(format_args!(
                        "stream read back: {} messages, {}..={}",
                        view.messages, view.first_seq, view.last_seq
                    ));
                    self.ctx.obs.borrow_mut().stream = Some(view);
                    return;
                }
                Err(e) => {
                    self.ctx.log(format_args!("reading the stream failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        self.ctx.violation(format_args!(
            "the stream could not be read back (from {started:?})"
        ));
    }

    async fn read_stream(&self) -> io::Result<StreamView> {
        let mut conn = Conn::connect(&format!("{}-verify", self.ctx.name)).await?;
        conn.send(b"SUB _INBOX.v.> 1\r\n").await?;
        let info = self
            .request(
                &mut conn,
                &format!("$JS.API.STREAM.INFO.{STREAM}"),
                "_INBOX.v.info",
                b"",
            )
            .await?;
        let mut view = StreamView::default();
        if let Some(err) = info.get("error") {
            // No stream: fine only if nothing was ever acked (checked later).
            self.ctx.log(format_args!("stream info: {err}"));
            return Ok(view);
        }
        let state = &info["state"];
        view.messages = state["messages"].as_u64().unwrap_or(0);
        view.first_seq = state["first_seq"].as_u64().unwrap_or(0);
        view.last_seq = state["last_seq"].as_u64().unwrap_or(0);
        if view.last_seq > 100_000 {
            return Err(io::Error::other(format!(
                "last_seq {} is absurd",
                view.last_seq
            )));
        }
        for seq in view.first_seq.max(1)..=view.last_seq {
            let body = format!("{{\"seq\":{seq}}}");
            let reply = format!("_INBOX.v.{seq}");
            let v = self
                .request(
                    &mut conn,
                    &format!("$JS.API.STREAM.MSG.GET.{STREAM}"),
                    &reply,
                    body.as_bytes(),
                )
                .await?;
            let Some(m) = v.get("message") else { continue };
            let b64 = base64::engine::general_purpose::STANDARD;
            let data = m["data"]
                .as_str()
                .and_then(|d| b64.decode(d).ok())
                .unwrap_or_default();
            let hdrs = m["hdrs"]
                .as_str()
                .and_then(|h| b64.decode(h).ok())
                .unwrap_or_default();
            let id = String::from_utf8_lossy(&hdrs)
                .lines()
                .find_map(|l| l.strip_prefix("Nats-Msg-Id:").map(|v| v.trim().to_string()));
            let subject = m["subject"].as_str().unwrap_or("").to_string();
            view.msgs.insert(seq, (subject, id, data));
        }
        if self.consumer {
            // Last: every ack the workers sent has been processed by now.
            let v = self
                .request(
                    &mut conn,
                    &format!("$JS.API.CONSUMER.INFO.{STREAM}.{CONSUMER}"),
                    "_INBOX.v.consumer",
                    b"",
                )
                .await?;
            let n = |a: &str, b: Option<&str>| {
                let x = &v[a];
                b.map_or(x, |b| &x[b]).as_u64().unwrap_or(0)
            };
            let info = ConsumerView {
                num_ack_pending: n("num_ack_pending", None),
                num_pending: n("num_pending", None),
                num_redelivered: n("num_redelivered", None),
                delivered_stream_seq: n("delivered", Some("stream_seq")),
                ack_floor_stream_seq: n("ack_floor", Some("stream_seq")),
                error: v.get("error").map(|e| e.to_string()),
            };
            self.ctx.log(format_args!("consumer read back: {info:?}"));
            self.ctx.obs.borrow_mut().consumer.info = Some(info);
        }
        Ok(view)
    }

    async fn request(
        &self,
        conn: &mut Conn,
        subject: &str,
        reply: &str,
        body: &[u8],
    ) -> io::Result<serde_json::Value> {
        conn.publish(subject, Some(reply), None, body).await?;
        match self.wait_reply(conn, reply, Duration::from_secs(2)).await? {
            Some(b) => serde_json::from_slice(&b).map_err(io::Error::other),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no reply to {subject}"),
            )),
        }
    }
}

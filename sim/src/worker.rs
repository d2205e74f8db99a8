//! JetStream pull workers: members of one work queue, the durable pull
//! consumer `W` on stream `S`. Each pulls in a loop, one request at a time,
//! and acks what it gets: in the safety phase with an AckSync, a plain +ACK
//! or not at all (so the message comes back after `ack_wait`); in the quiet
//! phase always with an AckSync. Everything is recorded in [`ConsumerObs`]
//! for the checks in `lib.rs`; what needs only the worker's own connection
//! (no delivery outside a pull request) is checked as it arrives.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::proto::Msg;
use crate::roles::{Ctx, Role, Sess, Session, STREAM};
use crate::scenario::{END, SAFETY_END};
use crate::trace::now;

/// The durable consumer every worker shares.
pub const CONSUMER: &str = "W";
/// Its ack_wait: a delivery into a dead inbox comes back well within the quiet phase.
pub const ACK_WAIT: Duration = Duration::from_secs(1);
/// Workers send no pull request after this (their last ones still deliver),
/// so every delivery is acked before the run ends.
pub const PULL_END: Duration = Duration::from_millis(END.as_millis() as u64 - 400);
/// A create request without a reply is sent again after this.
const CREATE_TIMEOUT: Duration = Duration::from_millis(600);
/// A pull request neither filled nor ended by a status this long after it
/// expired is given up (with the session).
const PULL_GRACE: Duration = Duration::from_millis(500);
/// Deliveries left unacked that a worker keeps, to ack on its next connection.
const MAX_LATE: usize = 16;

/// One message as a worker received it from the consumer.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub worker: usize,
    /// Index into the worker's sessions.
    pub session: usize,
    /// Stream sequence and delivery count, from the ack subject.
    pub seq: u64,
    pub count: u64,
    pub subject: String,
    pub id: Option<String>,
    pub payload: Vec<u8>,
    pub at: Duration,
    /// Its place in [`ConsumerObs::events`] order.
    pub order: u64,
    /// When (and in event order) its pull request was sent: the server
    /// chose to send it after that.
    pub asked_at: Duration,
    pub asked: u64,
}

/// An ack sent as a request (AckSync).
#[derive(Clone, Debug)]
pub struct AckSync {
    pub worker: usize,
    pub session: usize,
    pub seq: u64,
    pub count: u64,
    pub sent_at: Duration,
    /// When the pull request of the delivery it acks was sent.
    pub asked_at: Duration,
    /// It acks a delivery of an earlier connection (maybe of an earlier server).
    pub late: bool,
    /// When the empty reply came, and its place in event order: from then on
    /// the ack must survive any crash.
    pub answered: Option<(Duration, u64)>,
}

/// The consumer as `CONSUMER.INFO` showed it at the end.
#[derive(Clone, Debug, Default)]
pub struct ConsumerView {
    pub num_ack_pending: u64,
    pub num_pending: u64,
    pub num_redelivered: u64,
    pub delivered_stream_seq: u64,
    pub ack_floor_stream_seq: u64,
    /// The API error, when there was no consumer to show.
    pub error: Option<String>,
}

/// What the workers observed.
#[derive(Default)]
pub struct ConsumerObs {
    /// Each worker's sessions; `ready` once the consumer was there to pull from.
    pub sessions: Vec<Vec<Session>>,
    pub deliveries: Vec<Delivery>,
    pub syncs: Vec<AckSync>,
    /// Stream sequences a plain +ACK was sent for.
    pub plain_acks: BTreeSet<u64>,
    /// Events counted in the order the single-threaded simulation ran them:
    /// a request sent after an answer arrived reached the server after the
    /// server sent that answer.
    pub events: u64,
    /// Read by the verifier after the run.
    pub info: Option<ConsumerView>,
}

impl ConsumerObs {
    fn next_event(&mut self) -> u64 {
        self.events += 1;
        self.events
    }
}

/// The pull request a worker has open (one at a time, so every delivery on
/// its connection belongs to it: TCP keeps the server's order).
struct Pull {
    reply: String,
    batch: u64,
    got: u64,
    expires: Duration,
    sent_at: Duration,
    order: u64,
}

#[derive(PartialEq)]
enum Phase {
    /// The create request is out; sent again at `retry` without a reply.
    Creating {
        retry: Duration,
    },
    Ready,
}

/// A delivery not acked yet.
struct Unacked {
    ack: String,
    seq: u64,
    count: u64,
    asked_at: Duration,
}

pub struct JsWorker {
    pub ctx: Ctx,
    pub index: usize,
    rng: SmallRng,
    /// Sessions so far; the current one is `sessions - 1`.
    sessions: usize,
    /// This session's inbox prefix (one per session: nothing meant for an
    /// earlier connection can arrive on this one).
    inbox: String,
    phase: Phase,
    /// Counters for reply subjects.
    creates: u64,
    pulls: u64,
    acks: u64,
    pull: Option<Pull>,
    /// AckSyncs waiting for their answer: reply -> index in `ConsumerObs::syncs`.
    syncs: BTreeMap<String, usize>,
    /// Deliveries this connection left unacked...
    unacked: Vec<Unacked>,
    /// ...and those of earlier connections, acked (or not) on the next one.
    late: Vec<Unacked>,
}

impl JsWorker {
    pub fn new(ctx: Ctx, index: usize) -> JsWorker {
        let rng = SmallRng::seed_from_u64(ctx.rng_seed);
        JsWorker {
            ctx,
            index,
            rng,
            sessions: 0,
            inbox: String::new(),
            phase: Phase::Ready,
            creates: 0,
            pulls: 0,
            acks: 0,
            pull: None,
            syncs: BTreeMap::new(),
            unacked: Vec::new(),
            late: Vec::new(),
        }
    }

    fn session(&self) -> usize {
        self.sessions - 1
    }

    async fn create(&mut self, s: &mut Sess) -> io::Result<()> {
        self.creates += 1;
        let reply = format!("{}.c{}", self.inbox, self.creates);
        let body = format!(
            "{{\"stream_name\":\"{STREAM}\",\"config\":{{\"durable_name\":\"{CONSUMER}\",\"ack_policy\":\"explicit\",\"ack_wait\":{}}}}}",
            ACK_WAIT.as_nanos()
        );
        self.phase = Phase::Creating {
            retry: now() + CREATE_TIMEOUT,
        };
        let subject = format!("$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{CONSUMER}");
        s.conn
            .publish(&subject, Some(&reply), None, body.as_bytes())
            .await
    }

    async fn request(&mut self, s: &mut Sess) -> io::Result<()> {
        self.pulls += 1;
        let reply = format!("{}.p{}", self.inbox, self.pulls);
        let batch = self.rng.random_range(1..=10);
        let expires = Duration::from_millis(self.rng.random_range(300..=500));
        let body = format!("{{\"batch\":{batch},\"expires\":{}}}", expires.as_nanos());
        let order = self.ctx.obs.borrow_mut().consumer.next_event();
        self.pull = Some(Pull {
            reply: reply.clone(),
            batch,
            got: 0,
            expires,
            sent_at: now(),
            order,
        });
        let subject = format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{CONSUMER}");
        s.conn
            .publish(&subject, Some(&reply), None, body.as_bytes())
            .await
    }

    /// Ack a delivery as a request; the answer says the ack is on disk.
    async fn ack_sync(&mut self, s: &mut Sess, d: Unacked, late: bool) -> io::Result<()> {
        self.acks += 1;
        let reply = format!("{}.a{}", self.inbox, self.acks);
        let session = self.session();
        let idx = {
            let mut obs = self.ctx.obs.borrow_mut();
            obs.consumer.syncs.push(AckSync {
                worker: self.index,
                session,
                seq: d.seq,
                count: d.count,
                sent_at: now(),
                asked_at: d.asked_at,
                late,
                answered: None,
            });
            obs.consumer.syncs.len() - 1
        };
        self.syncs.insert(reply.clone(), idx);
        s.conn.publish(&d.ack, Some(&reply), None, b"+ACK").await
    }

    async fn delivery(&mut self, s: &mut Sess, m: Msg, ack: String) -> io::Result<()> {
        // $JS.ACK.<stream>.<consumer>.<count>.<seq>.<dseq>.<ts>.<pending>
        let tokens: Vec<&str> = ack.split('.').collect();
        let num = |i: usize| tokens.get(i).and_then(|t| t.parse::<u64>().ok());
        let (Some(count), Some(seq), true) = (
            num(4),
            num(5),
            tokens.len() == 9 && tokens[2] == STREAM && tokens[3] == CONSUMER,
        ) else {
            self.ctx
                .violation(format_args!("delivery with a bad ack subject {ack}"));
            return Ok(());
        };
        let id = m.headers.as_ref().and_then(|h| {
            String::from_utf8_lossy(h)
                .lines()
                .find_map(|l| l.strip_prefix("Nats-Msg-Id:").map(|v| v.trim().to_string()))
        });
        let t = now();
        let session = self.session();
        let Some(pull) = self.pull.as_mut() else {
            self.ctx.violation(format_args!(
                "seq {seq} (delivery {count}) arrived with no pull request open"
            ));
            return Ok(());
        };
        pull.got += 1;
        let (asked_at, asked) = (pull.sent_at, pull.order);
        if pull.got >= pull.batch {
            self.pull = None;
        }
        {
            let mut obs = self.ctx.obs.borrow_mut();
            let order = obs.consumer.next_event();
            obs.consumer.deliveries.push(Delivery {
                worker: self.index,
                session,
                seq,
                count,
                subject: m.subject.clone(),
                id: id.clone(),
                payload: m.payload.to_vec(),
                at: t,
                order,
                asked_at,
                asked,
            });
        }
        // The quiet phase must end with everything acked, and durably.
        let how = if t >= SAFETY_END {
            0
        } else {
            self.rng.random_range(0..4)
        };
        let how_name = ["AckSync", "AckSync", "+ACK", "no ack"][how];
        self.ctx.log(format_args!(
            "seq {seq} delivery {count} ({} {id:?}): {how_name}",
            m.subject
        ));
        let d = Unacked {
            ack,
            seq,
            count,
            asked_at,
        };
        match how {
            0 | 1 => self.ack_sync(s, d, false).await,
            2 => {
                self.ctx.obs.borrow_mut().consumer.plain_acks.insert(seq);
                s.conn.publish(&d.ack, None, None, b"+ACK").await
            }
            _ => {
                self.unacked.push(d);
                Ok(())
            }
        }
    }

    fn status(&mut self, m: &Msg) {
        let head = m
            .headers
            .as_ref()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default();
        let code = head.split_whitespace().nth(1).unwrap_or("");
        if code == "100" {
            return;
        }
        if self.pull.as_ref().is_some_and(|p| p.reply == m.subject) {
            let p = self.pull.take().expect("checked");
            if code != "408" {
                self.ctx.log(format_args!(
                    "pull request {} ({} of {}) ended: {head}",
                    p.reply, p.got, p.batch
                ));
            }
        } else {
            self.ctx.violation(format_args!(
                "status {head:?} on {} for no open pull request",
                m.subject
            ));
        }
    }

    fn created(&mut self, m: &Msg) {
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
        if let Some(err) = v.get("error") {
            self.ctx.log(format_args!("consumer create: {err}"));
            if matches!(self.phase, Phase::Creating { .. }) {
                // 10059 stream not found: the publishers have not made it yet.
                self.phase = Phase::Creating {
                    retry: now() + Duration::from_millis(50),
                };
            }
            return;
        }
        if self.phase != Phase::Ready {
            self.phase = Phase::Ready;
            self.ctx.log("consumer ready");
            let t = now();
            let i = self.index;
            if let Some(s) = self.ctx.obs.borrow_mut().consumer.sessions[i].last_mut() {
                s.ready = Some(t);
            }
        }
    }

    fn answered(&mut self, m: &Msg) {
        let Some(idx) = self.syncs.remove(&m.subject) else {
            self.ctx
                .violation(format_args!("AckSync answer on {} twice", m.subject));
            return;
        };
        let mut obs = self.ctx.obs.borrow_mut();
        if !m.payload.is_empty() || m.headers.is_some() {
            let seq = obs.consumer.syncs[idx].seq;
            drop(obs);
            self.ctx.log(format_args!(
                "AckSync of seq {seq} failed: {:?}",
                String::from_utf8_lossy(&m.payload)
            ));
            return;
        }
        let order = obs.consumer.next_event();
        let a = &mut obs.consumer.syncs[idx];
        a.answered = Some((now(), order));
        let (seq, count) = (a.seq, a.count);
        drop(obs);
        self.ctx
            .log(format_args!("seq {seq} delivery {count}: AckSync answered"));
    }
}

impl Role for JsWorker {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }
    fn period(&self) -> Duration {
        Duration::from_millis(10)
    }
    async fn connected(&mut self, s: &mut Sess) -> io::Result<()> {
        self.sessions += 1;
        self.inbox = format!("_INBOX.w{}.{}", self.index, self.sessions);
        self.pull = None;
        self.syncs.clear();
        let i = self.index;
        self.ctx.obs.borrow_mut().consumer.sessions[i].push(Session::default());
        s.conn
            .send(format!("SUB {}.> 1\r\n", self.inbox).as_bytes())
            .await?;
        self.create(s).await
    }
    async fn message(&mut self, s: &mut Sess, m: Msg) -> io::Result<()> {
        if let Some(ack) = m.reply.clone().filter(|r| r.starts_with("$JS.ACK.")) {
            return self.delivery(s, m, ack).await;
        }
        let kind = m
            .subject
            .strip_prefix(self.inbox.as_str())
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.chars().next());
        match kind {
            Some('c') => self.created(&m),
            Some('p') => self.status(&m),
            Some('a') => self.answered(&m),
            _ => self.ctx.violation(format_args!(
                "unexpected message on {} (reply {:?})",
                m.subject, m.reply
            )),
        }
        Ok(())
    }
    async fn tick(&mut self, s: &mut Sess) -> io::Result<()> {
        let t = now();
        if let Phase::Creating { retry } = self.phase {
            if t >= retry {
                self.create(s).await?;
            }
            return Ok(());
        }
        if !self.late.is_empty() {
            // Deliveries of an earlier connection (maybe of an earlier server):
            // some are acked now, the rest come back by themselves.
            for late in std::mem::take(&mut self.late) {
                if self.rng.random_bool(0.5) {
                    self.ctx.log(format_args!(
                        "late AckSync of seq {} delivery {}",
                        late.seq, late.count
                    ));
                    self.ack_sync(s, late, true).await?;
                }
            }
        }
        match &self.pull {
            Some(p) if t > p.sent_at + p.expires + PULL_GRACE => {
                let why = format!(
                    "pull request {} (batch {}, {} delivered, expires {:?}) never ended",
                    p.reply, p.batch, p.got, p.expires
                );
                if p.sent_at >= SAFETY_END {
                    self.ctx.violation(&why);
                }
                Err(io::Error::other(why))
            }
            Some(_) => Ok(()),
            None if t < PULL_END => self.request(s).await,
            None => Ok(()),
        }
    }
    fn pong(&mut self, _tag: u64) {}
    fn disconnected(&mut self) {
        let t = now();
        let i = self.index;
        if let Some(s) = self.ctx.obs.borrow_mut().consumer.sessions[i].last_mut() {
            s.ended = Some(t);
        }
        self.pull = None;
        self.syncs.clear();
        self.late.append(&mut self.unacked);
        let extra = self.late.len().saturating_sub(MAX_LATE);
        self.late.drain(..extra);
    }
}

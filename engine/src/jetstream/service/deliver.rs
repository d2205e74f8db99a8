//! Consumer delivery (matrix sections 4.8–4.10): pull requests and their
//! waiting queue, push delivery while the deliver subject has interest, acks,
//! redelivery, idle heartbeats, flow control, and retention by acks.
//!
//! Delivery runs in [`JetStream::pump`], which the server calls at the end of
//! each input with a way to ask whether a subject has subscribers. Only
//! consumers marked dirty by something that can change what they may send
//! (a stored or synced message, an ack, a pull request, a flow-control reply,
//! a subscription, a deadline) are looked at. Each pump sends at most
//! [`PUMP_BUDGET`] messages per consumer; a consumer with more to send stays
//! dirty and the service asks to be called again at once.
//!
//! Durability: a consumer delivers a message of a file-backed stream only once
//! its log record is durable ([`Stream::deliverable_last`]). nats-server
//! delivers at once; a message delivered, acknowledged and then lost at a
//! power failure would leave the consumer's ack state naming a sequence the
//! stream assigns again after the restart.
//!
//! Status messages to pull requesters, with their texts from nats-server
//! 2.9.10: `404 No Messages`, `408 Request Timeout` and `409 Message Size
//! Exceeds MaxBytes` (with `Nats-Pending-Messages` / `Nats-Pending-Bytes`),
//! `408 Requests Pending`, `409 Exceeded MaxWaiting`, `409 Consumer Deleted`,
//! `100 Idle Heartbeat`, and row PL7's request caps.
//!
//! Not done: `rate_limit_bps` and `sample_freq` are accepted and stored but
//! have no effect.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;

use super::*;
use crate::jetstream::acks::AckState;
use crate::jetstream::consumer::{
    AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy, PullRequest, PullStatus, ReplayPolicy,
    SequenceInfo,
};
use crate::jetstream::consumer_store::{Snapshot, StateFile};

/// Messages one consumer sends in one pump before yielding.
pub const PUMP_BUDGET: usize = 4096;
/// AckSync replies one consumer holds while its state is written.
const MAX_HELD_ACK_SYNCS: usize = 16 * 1024;
/// State writes of one consumer in flight at once.
const MAX_STATE_WRITES: usize = 16;
/// A durable consumer's changed state is written at most this long (ns)
/// after the change, or at once for an AckSync.
const STATE_WRITE_DELAY: i64 = 50_000_000;
/// Messages a consumer reads back from the log ahead of sending them ...
const READ_AHEAD: usize = 128;
/// ... and at most this many bytes of them.
const READ_AHEAD_BYTES: u64 = 4 * 1024 * 1024;
/// Flow control: the largest window of unacknowledged push bytes
/// (`JsFlowControlMaxPending`); the window starts at a sixteenth of it and
/// doubles with every flow-control reply.
const FC_MAX_PENDING: i64 = 32 * 1024 * 1024;

const ACK_PREFIX: &str = "$JS.ACK.";
const FC_PREFIX: &str = "$JS.FC.";
const NEXT_PREFIX: &str = "$JS.API.CONSUMER.MSG.NEXT.";

/// A pull request waiting for messages (at most `max_waiting` per consumer).
#[derive(Clone, Debug)]
pub struct Waiter {
    reply: Bytes,
    /// Messages still wanted.
    n: i64,
    /// Bytes still allowed (0: no limit).
    b: i64,
    no_wait: bool,
    /// Unix ns after which it ends with 408 (None: never).
    expires: Option<i64>,
    hb: i64,
    hb_next: Option<i64>,
    /// Messages sent for it so far.
    d: u64,
}

/// Push flow control (row PU3).
#[derive(Clone, Debug)]
struct FlowControl {
    pbytes: i64,
    maxpb: i64,
    /// The reply subject of the outstanding flow-control request.
    fcid: Option<String>,
    fcsz: i64,
}

/// The cached count of messages a consumer has not been sent yet.
#[derive(Clone, Copy, Debug)]
struct PendingCount {
    n: u64,
    /// The store's removal count and last sequence when it was right.
    removals: u64,
    last: u64,
}

/// Original-speed replay (row PE6) while catching up to `until`.
#[derive(Clone, Copy, Debug)]
struct Replay {
    until: u64,
    last_ts: i64,
    last_sent: i64,
    /// When the next message is due.
    wake: Option<i64>,
}

/// One consumer of a stream: its configuration and delivery state.
#[derive(Clone, Debug)]
pub struct Consumer {
    /// The normalized configuration (its name filled in).
    pub config: ConsumerConfig,
    /// Unix nanoseconds.
    pub created: i64,
    /// Names the consumer's internal subscriptions ([`Target::Consumer`]).
    pub uid: u64,
    pub acks: AckState,
    /// `last_per_subject`: the sequences still to send first, then where to go on.
    skip: Option<(VecDeque<u64>, u64)>,
    waiting: VecDeque<Waiter>,
    fc: Option<FlowControl>,
    /// Push: whether the deliver subject had interest at the last look.
    active: bool,
    /// Push: when the next idle heartbeat is due.
    hb_next: Option<i64>,
    /// Since when an ephemeral has had no interest (push) or no requests (pull).
    idle_since: Option<i64>,
    /// Reads of messages from the log for this consumer in flight.
    pub(super) reading: usize,
    /// Messages read back (or held back by replay pacing), used once each;
    /// at most [`READ_AHEAD`] of them.
    fetched: BTreeMap<u64, StoredMsg>,
    replay: Option<Replay>,
    npc: Option<PendingCount>,
    /// Delivery or ack state changed since it was last written.
    pub(super) changed: bool,
    /// Durable consumers of file-backed streams: where their state is written.
    pub(super) file: Option<StateFile>,
    /// When the oldest change not yet written was seen by a flush.
    changed_at: Option<i64>,
    /// Its `meta.json` failed to be written: write it again.
    meta_again: bool,
}

/// Why a pump of one consumer stopped early.
#[derive(Default)]
struct PumpOut {
    /// Budget used up: pump again at once.
    more: bool,
    /// Read these sequences back from the log.
    read: Vec<u64>,
    /// Sequences acknowledged by delivery (ack policy none on an interest or
    /// work-queue stream).
    acked: Vec<u64>,
    /// Delete this (ephemeral) consumer: inactive past its threshold.
    expired: bool,
}

impl Consumer {
    pub fn new(config: ConsumerConfig, created: i64, uid: u64, store: &MsgStore) -> Consumer {
        let start = starting_seq(&config, store);
        let skip = (config.deliver_policy == DeliverPolicy::LastPerSubject).then(|| {
            let filters = filter_bytes(&config);
            let mut seqs = store.subject_lasts(&filters);
            seqs.sort_unstable();
            (seqs.into(), store.last_seq() + 1)
        });
        let fc = (config.flow_control && !config.is_pull()).then_some(FlowControl {
            pbytes: 0,
            maxpb: FC_MAX_PENDING / 16,
            fcid: None,
            fcsz: 0,
        });
        let replay = (config.replay_policy == ReplayPolicy::Original).then_some(Replay {
            until: store.last_seq(),
            last_ts: 0,
            last_sent: 0,
            wake: None,
        });
        Consumer {
            acks: AckState::new(&config, start),
            skip,
            config,
            created,
            uid,
            waiting: VecDeque::new(),
            fc,
            active: false,
            hb_next: None,
            idle_since: Some(created),
            reading: 0,
            fetched: BTreeMap::new(),
            replay,
            npc: None,
            changed: true,
            file: None,
            changed_at: None,
            meta_again: false,
        }
    }

    /// Its ack state was read back from disk: what was planned from the
    /// stream at creation (the last-per-subject list, replay pacing) follows it.
    pub(super) fn restored(&mut self) {
        let sseq = self.acks.sseq;
        if let Some((seqs, resume)) = self.skip.as_mut() {
            seqs.retain(|&s| s >= sseq);
            if seqs.is_empty() {
                let resume = *resume;
                self.skip = None;
                self.acks.skip_to(resume);
            }
        }
        self.replay = None;
        self.npc = None;
    }

    /// Take an updated configuration (what `check_update` lets change).
    pub fn reconfigure(&mut self, config: ConsumerConfig) {
        self.acks.reconfigure(&config);
        self.config = config;
        self.npc = None;
    }

    /// The consumer's info (row S16): delivered is one before the next
    /// sequences, the ack floor as acks moved it, `num_pending` the stream's
    /// messages not sent yet that match the filters.
    pub fn info(&self, stream: &str, store: &MsgStore) -> ConsumerInfo {
        let delivered = SequenceInfo {
            consumer_seq: self.acks.dseq - 1,
            stream_seq: self.acks.sseq.saturating_sub(1),
            last_active: None,
        };
        let ack_floor = SequenceInfo {
            consumer_seq: self.acks.floor_dseq,
            stream_seq: self.acks.floor_sseq,
            last_active: None,
        };
        ConsumerInfo {
            stream_name: stream.to_string(),
            name: self.config.consumer_name().to_string(),
            created: Timestamp::from_unix_nanos(self.created),
            config: self.config.clone(),
            delivered,
            ack_floor,
            num_ack_pending: self.acks.num_ack_pending() as u64,
            num_redelivered: self.acks.num_redelivered() as u64,
            num_waiting: self.waiting.len() as u64,
            num_pending: self.count_pending(store),
            cluster: None,
            push_bound: !self.config.is_pull() && self.active,
        }
    }

    /// Messages not sent yet (2.9.10's `numPending`), counted afresh.
    fn count_pending(&self, store: &MsgStore) -> u64 {
        let filters = filter_bytes(&self.config);
        match &self.skip {
            Some((seqs, resume)) => seqs.len() as u64 + store.count_from(*resume, &filters),
            None => store.count_from(self.acks.sseq, &filters),
        }
    }

    /// [`Consumer::count_pending`], kept up to date incrementally: new
    /// messages are added; any removal from the store makes it count again.
    fn pending_now(&mut self, store: &MsgStore) -> u64 {
        if let Some(pc) = self.npc.as_mut() {
            if pc.removals == store.removals() {
                if store.last_seq() > pc.last {
                    let from = (pc.last + 1).max(self.acks.sseq);
                    pc.n += store.count_from(from, &filter_bytes(&self.config));
                    pc.last = store.last_seq();
                }
                return pc.n;
            }
        }
        let n = self.count_pending(store);
        self.npc = Some(PendingCount {
            n,
            removals: store.removals(),
            last: store.last_seq(),
        });
        n
    }

    /// Whether this consumer's filters take `subject`.
    pub fn takes(&self, subject: &[u8]) -> bool {
        let f = self.config.filters();
        f.is_empty() || f.iter().any(|f| subject_matches(f.as_bytes(), subject))
    }

    /// The earliest time this consumer has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        let mut at = self.acks.next_deadline();
        let mut min = |t: Option<i64>| {
            if let Some(t) = t {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        };
        min(self.hb_next);
        for w in &self.waiting {
            min(w.expires);
            min(w.hb_next);
        }
        if !self.config.is_durable() {
            min(self
                .idle_since
                .map(|t| t.saturating_add(self.config.inactive_threshold)));
        }
        if let Some(r) = &self.replay {
            min(r.wake);
        }
        at
    }

    fn send_status(reply: &Bytes, hdr: String, fx: &mut Effects) {
        fx.publish.push(Outgoing {
            subject: reply.clone(),
            reply: None,
            deliver: None,
            headers: Some(Bytes::from(hdr)),
            payload: Bytes::new(),
        });
    }

    fn pending_status(code: u16, text: &str, w: &Waiter) -> String {
        format!(
            "NATS/1.0 {code} {text}\r\nNats-Pending-Messages: {}\r\nNats-Pending-Bytes: {}\r\n\r\n",
            w.n, w.b
        )
    }

    /// End every waiting request with `409 Consumer Deleted` (row PL8).
    fn close_waiting(&mut self, fx: &mut Effects) {
        for w in self.waiting.drain(..) {
            Consumer::send_status(&w.reply, "NATS/1.0 409 Consumer Deleted\r\n\r\n".into(), fx);
        }
    }

    /// Expire waiting requests, drop those whose requester is gone, send
    /// heartbeats that are due (2.9.10's `processWaiting`). With `eos` (no
    /// more messages now), one-shot requests that got something end with 408.
    fn process_waiting(
        &mut self,
        eos: bool,
        now: i64,
        interest: &mut dyn FnMut(&[u8]) -> bool,
        fx: &mut Effects,
    ) {
        let (sseq, dseq) = (self.acks.sseq - 1, self.acks.dseq - 1);
        self.waiting.retain_mut(|w| {
            if (eos && w.no_wait && w.d > 0) || w.expires.is_some_and(|e| now >= e) {
                let hdr = Consumer::pending_status(408, "Request Timeout", w);
                Consumer::send_status(&w.reply, hdr, fx);
                return false;
            }
            if !interest(&w.reply) {
                return false;
            }
            if let Some(at) = w.hb_next.filter(|&at| now >= at) {
                let _ = at;
                Consumer::send_status(&w.reply, heartbeat(dseq, sseq, None), fx);
                w.hb_next = Some(now.saturating_add(w.hb));
            }
            true
        });
    }

    /// A pull request (`$JS.API.CONSUMER.MSG.NEXT`, or the request half of
    /// `+NXT`), handled as 2.9.10's `processNextMsgRequest`.
    fn next_request(
        &mut self,
        reply: &Bytes,
        body: &[u8],
        stream_pending: u64,
        now: i64,
        interest: &mut dyn FnMut(&[u8]) -> bool,
        fx: &mut Effects,
    ) {
        if reply.is_empty() {
            return;
        }
        let status = |code: u16, text: &str, fx: &mut Effects| {
            Consumer::send_status(reply, format!("NATS/1.0 {code} {text}\r\n\r\n"), fx)
        };
        if !self.config.is_pull() {
            return status(409, "Consumer is push based", fx);
        }
        let req = match PullRequest::parse(body).and_then(|r| {
            r.check_limits(&self.config)?;
            Ok(r)
        }) {
            Ok(r) => r,
            Err(PullStatus { code, description }) => return status(code, &description, fx),
        };
        let max_waiting = self.config.max_waiting.max(1) as usize;
        if self.waiting.len() >= max_waiting {
            self.process_waiting(false, now, interest, fx);
        }
        if req.no_wait {
            let pending = stream_pending + self.acks.num_redeliveries_queued();
            if pending == 0 && req.expires <= 0 {
                return status(404, "No Messages", fx);
            }
            let wanted: i64 = self.waiting.iter().map(|w| w.n).sum();
            if pending > 0 && (pending as i64) < wanted {
                return status(408, "Requests Pending", fx);
            }
        }
        if self.waiting.len() >= max_waiting {
            return status(409, "Exceeded MaxWaiting", fx);
        }
        let hb = req.idle_heartbeat.max(0);
        self.waiting.push_back(Waiter {
            reply: reply.clone(),
            n: req.batch.max(1),
            b: req.max_bytes.max(0),
            no_wait: req.no_wait,
            expires: (req.expires > 0).then(|| now.saturating_add(req.expires)),
            hb,
            hb_next: (hb > 0).then(|| now.saturating_add(hb)),
            d: 0,
        });
        self.idle_since = None;
    }

    /// The waiting request the next message of `size` bytes goes to; requests
    /// it exceeds the byte budget of end with 409 (2.9.10's `nextWaiting`).
    fn next_waiter(
        &mut self,
        size: i64,
        interest: &mut dyn FnMut(&[u8]) -> bool,
        fx: &mut Effects,
    ) -> Option<usize> {
        while let Some(w) = self.waiting.front_mut() {
            if w.b > 0 && size > w.b {
                let hdr = Consumer::pending_status(409, "Message Size Exceeds MaxBytes", w);
                Consumer::send_status(&w.reply, hdr, fx);
                self.waiting.pop_front();
                continue;
            }
            if !interest(&w.reply) {
                self.waiting.pop_front();
                continue;
            }
            return Some(0);
        }
        None
    }

    /// Send what this consumer may send now.
    #[allow(clippy::too_many_arguments)]
    fn pump(
        &mut self,
        stream: &StreamView<'_>,
        now: i64,
        rng: &mut SmallRng,
        interest: &mut dyn FnMut(&[u8]) -> bool,
        fx: &mut Effects,
    ) -> PumpOut {
        let mut out = PumpOut::default();
        let store = stream.store;
        let pull = self.config.is_pull();
        let deliver = self.config.deliver_subject.clone();
        // Queued redeliveries of messages removed meanwhile, and pending
        // deliveries below the stream's first sequence, are dropped.
        self.acks.expire(now);
        if !pull {
            let active = interest(deliver.as_bytes());
            if active && !self.active {
                self.hb_next = (self.config.idle_heartbeat > 0)
                    .then(|| now.saturating_add(self.config.idle_heartbeat));
            }
            self.active = active;
            if !active {
                self.hb_next = None;
                self.idle_since.get_or_insert(now);
                out.expired = self.inactive_expired(now);
                return out;
            }
            self.idle_since = None;
        } else {
            self.process_waiting(false, now, interest, fx);
        }
        let mut sent = 0;
        let mut exceeded = Vec::new();
        let mut eos = false;
        loop {
            if pull && self.waiting.is_empty() {
                break;
            }
            if self.fc.as_ref().is_some_and(|fc| fc.pbytes > fc.maxpb) {
                break;
            }
            if sent >= PUMP_BUDGET {
                out.more = true;
                break;
            }
            let redelivery = self.acks.next_redelivery(&mut exceeded);
            let seq = match redelivery {
                Some(seq) if !store.contains(seq) => {
                    self.acks.forget(seq);
                    self.changed = true;
                    continue;
                }
                Some(seq) => seq,
                None => {
                    if self.acks.at_max_pending(self.config.max_ack_pending) {
                        break;
                    }
                    match self.next_new(store, stream.last) {
                        Some(seq) => seq,
                        None => {
                            eos = true;
                            break;
                        }
                    }
                }
            };
            let fetched = self.fetched.remove(&seq);
            let Some(msg) = fetched.or_else(|| store.get(seq)) else {
                if self.reading == 0 {
                    out.read = self.read_plan(seq, redelivery.is_none(), store, stream.last);
                }
                break;
            };
            // Original replay: wait out the gap to the previous message.
            if let Some(r) = self.replay.as_mut() {
                if seq <= r.until && r.last_ts > 0 {
                    let due = r.last_sent.saturating_add(msg.ts.saturating_sub(r.last_ts));
                    if due > now.saturating_add(1_000_000) {
                        r.wake = Some(due);
                        self.fetched.insert(seq, msg);
                        break;
                    }
                }
            }
            let first = redelivery.is_none();
            let pending = self.pending_now(store).saturating_sub(u64::from(first));
            let dc = if first {
                1
            } else {
                self.acks.redeliveries(seq) + 2
            };
            let ack = format!(
                "{ACK_PREFIX}{}.{}.{dc}.{seq}.{}.{}.{pending}",
                stream.name,
                self.config.consumer_name(),
                self.acks.dseq,
                msg.ts
            );
            let (headers, payload) = if self.config.headers_only {
                (
                    Some(Bytes::from(headers::append(
                        &msg.headers,
                        &[("Nats-Msg-Size", msg.data.len().to_string().as_str())],
                    ))),
                    Bytes::new(),
                )
            } else {
                (
                    (!msg.headers.is_empty()).then(|| msg.headers.clone()),
                    msg.data.clone(),
                )
            };
            let size = (msg.subject.len()
                + ack.len()
                + headers.as_ref().map_or(0, |h| h.len())
                + payload.len()) as i64;
            let target = if pull {
                let Some(i) = self.next_waiter(size, interest, fx) else {
                    break;
                };
                let w = &mut self.waiting[i];
                if w.b > 0 {
                    w.b -= size;
                    if w.b == 0 {
                        w.n = 1;
                    }
                }
                w.n -= 1;
                w.d += 1;
                let reply = w.reply.clone();
                if w.n <= 0 {
                    self.waiting.remove(i);
                } else if w.hb > 0 {
                    w.hb_next = Some(now.saturating_add(w.hb));
                }
                reply
            } else {
                Bytes::from(deliver.clone())
            };
            fx.publish.push(Outgoing {
                subject: msg.subject.clone(),
                reply: Some(Bytes::from(ack)),
                deliver: Some(target),
                headers,
                payload,
            });
            if first {
                // Taken off the count only now that it went out.
                if let Some(pc) = self.npc.as_mut() {
                    pc.n = pending;
                }
                if let Some((seqs, resume)) = self.skip.as_mut() {
                    if seqs.front() == Some(&seq) {
                        seqs.pop_front();
                    }
                    if seqs.is_empty() {
                        let resume = *resume;
                        self.skip = None;
                        self.acks.skip_to(resume);
                    }
                }
            }
            self.acks.delivered(seq, now);
            // A delivery alone need not be durable (after a crash it is sent
            // again); with ack policy none it moves the ack floor.
            if self.config.ack_policy == AckPolicy::None {
                self.changed = true;
            }
            sent += 1;
            if self.config.ack_policy == AckPolicy::None && stream.retention_by_acks {
                out.acked.push(seq);
            }
            if let Some(r) = self.replay.as_mut() {
                r.last_ts = msg.ts;
                r.last_sent = now;
                r.wake = None;
                if seq >= r.until {
                    self.replay = None;
                }
            }
            if !pull && self.config.idle_heartbeat > 0 {
                self.hb_next = Some(now.saturating_add(self.config.idle_heartbeat));
            }
            if let Some(fc) = self.fc.as_mut() {
                fc.pbytes += size;
                if fc.fcid.is_none() && fc.pbytes > fc.maxpb / 2 {
                    let id = format!(
                        "{FC_PREFIX}{}.{}.{}",
                        stream.name,
                        self.config.consumer_name(),
                        random_token(rng, 4)
                    );
                    fc.fcsz = fc.pbytes;
                    fc.fcid = Some(id.clone());
                    fx.publish.push(Outgoing {
                        subject: Bytes::from(deliver.clone()),
                        reply: Some(Bytes::from(id)),
                        deliver: None,
                        headers: Some(Bytes::from_static(
                            b"NATS/1.0 100 FlowControl Request\r\n\r\n",
                        )),
                        payload: Bytes::new(),
                    });
                } else if fc.fcid.is_some() && fc.pbytes - fc.fcsz >= fc.maxpb {
                    fc.fcsz += size;
                }
            }
        }
        for (seq, dc) in exceeded {
            self.changed = true;
            fx.publish.push(advisory(
                rng,
                now,
                &format!(
                    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
                    stream.name,
                    self.config.consumer_name()
                ),
                serde_json::json!({
                    "type": "io.nats.jetstream.advisory.v1.max_deliver",
                    "stream": stream.name,
                    "consumer": self.config.consumer_name(),
                    "stream_seq": seq,
                    "deliveries": dc,
                }),
            ));
        }
        if pull {
            self.process_waiting(eos, now, interest, fx);
            if self.waiting.is_empty() {
                self.idle_since.get_or_insert(now);
            } else {
                self.idle_since = None;
            }
        } else if let Some(at) = self.hb_next.filter(|&at| now >= at) {
            let _ = at;
            let stalled = self.fc.as_ref().and_then(|fc| fc.fcid.clone());
            Consumer::send_status(
                &Bytes::from(deliver),
                heartbeat(self.acks.dseq - 1, self.acks.sseq - 1, stalled.as_deref()),
                fx,
            );
            self.hb_next = Some(now.saturating_add(self.config.idle_heartbeat));
        }
        out.expired = self.inactive_expired(now);
        out
    }

    fn inactive_expired(&self, now: i64) -> bool {
        !self.config.is_durable()
            && self.config.inactive_threshold > 0
            && self
                .idle_since
                .is_some_and(|t| now >= t.saturating_add(self.config.inactive_threshold))
    }

    /// What to read back from the log when `seq` is not cached: it, and
    /// (for a first delivery) the next messages this consumer will send that
    /// are not cached either, up to [`READ_AHEAD`] messages or
    /// [`READ_AHEAD_BYTES`].
    fn read_plan(&self, seq: u64, first: bool, store: &MsgStore, last: u64) -> Vec<u64> {
        let mut plan = vec![seq];
        if !first || self.skip.is_some() {
            return plan;
        }
        let filters = filter_bytes(&self.config);
        let mut bytes = 0u64;
        for m in store.iter_from(seq + 1) {
            if m.seq > last || plan.len() >= READ_AHEAD || bytes >= READ_AHEAD_BYTES {
                break;
            }
            if !filters.is_empty() && !filters.iter().any(|f| subject_matches(f, &m.subject)) {
                continue;
            }
            if !store.is_cached(m.seq) && !self.fetched.contains_key(&m.seq) {
                bytes += u64::from(m.hdr_len) + u64::from(m.data_len);
                plan.push(m.seq);
            }
        }
        plan
    }

    /// The next message to send for the first time, at most `last`.
    fn next_new(&mut self, store: &MsgStore, last: u64) -> Option<u64> {
        if let Some((seqs, _)) = &mut self.skip {
            while let Some(&s) = seqs.front() {
                if store.contains(s) {
                    return (s <= last).then_some(s);
                }
                seqs.pop_front();
            }
            if let Some((_, resume)) = self.skip.take() {
                self.acks.skip_to(resume);
            }
        }
        let from = self.acks.sseq;
        let filters = self.config.filters();
        let found = if filters.is_empty() {
            store.next_held(from)
        } else {
            filters
                .iter()
                .filter_map(|f| store.next_matching(from, f.as_bytes()))
                .min()
        };
        match found {
            Some(s) if s <= last => Some(s),
            Some(_) => None,
            None => {
                self.acks.skip_to(last.min(store.last_seq()) + 1);
                None
            }
        }
    }

    /// A flow-control reply on `subject`.
    fn flow_control_reply(&mut self, subject: &str) {
        if let Some(fc) = self.fc.as_mut() {
            if fc.fcid.as_deref() == Some(subject) {
                fc.maxpb = (fc.maxpb * 2).min(FC_MAX_PENDING);
                fc.pbytes = (fc.pbytes - fc.fcsz).max(0);
                fc.fcid = None;
                fc.fcsz = 0;
            }
        }
    }
}

/// The contents of a consumer's `meta.json`.
#[derive(Serialize, Deserialize)]
pub(super) struct ConsumerMeta {
    pub config: ConsumerConfig,
    pub created: i64,
}

/// A run of records read with one Read: segment, file, offset, and each
/// record's (sequence, offset in the run, length).
type Run = (u64, String, u64, Vec<(u64, u64, u64)>);

/// How one message read for a consumer ended.
pub(super) enum ReadOutcome {
    Got(StoredMsg),
    /// Failed or unreadable: the consumer tries again at its next pump.
    Failed,
    /// Not issued: too many reads in flight.
    Refused,
}

/// What a pump needs of the consumer's stream.
struct StreamView<'a> {
    name: &'a str,
    store: &'a MsgStore,
    /// The last sequence that may be delivered (durable).
    last: u64,
    retention_by_acks: bool,
}

/// `NATS/1.0 100 Idle Heartbeat` with the last delivered sequences (and the
/// stalled flow-control subject).
fn heartbeat(dseq: u64, sseq: u64, stalled: Option<&str>) -> String {
    let mut h = format!(
        "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: {dseq}\r\nNats-Last-Stream: {sseq}\r\n"
    );
    if let Some(s) = stalled {
        h.push_str(&format!("Nats-Consumer-Stalled: {s}\r\n"));
    }
    h.push_str("\r\n");
    h
}

const TOKEN_CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_token(rng: &mut SmallRng, n: usize) -> String {
    (0..n)
        .map(|_| TOKEN_CHARS[rng.random_range(0..TOKEN_CHARS.len())] as char)
        .collect()
}

/// An advisory event: `body` plus its `id` and `timestamp`.
fn advisory(rng: &mut SmallRng, now: i64, subject: &str, mut body: serde_json::Value) -> Outgoing {
    if let Some(m) = body.as_object_mut() {
        m.insert("id".into(), random_token(rng, 22).into());
        if let Ok(ts) = serde_json::to_value(Timestamp::from_unix_nanos(now)) {
            m.insert("timestamp".into(), ts);
        }
    }
    Outgoing {
        subject: Bytes::copy_from_slice(subject.as_bytes()),
        reply: None,
        deliver: None,
        headers: None,
        payload: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
    }
}

fn filter_bytes(cfg: &ConsumerConfig) -> Vec<&[u8]> {
    cfg.filters().into_iter().map(str::as_bytes).collect()
}

/// 2.9.10's `selectStartingSeqNo`: the first stream sequence a new consumer
/// delivers, clamped to the stream's first sequence and one past its last.
fn starting_seq(cfg: &ConsumerConfig, store: &MsgStore) -> u64 {
    let first = store.reported_first_seq();
    let last = store.last_seq();
    let filters = filter_bytes(cfg);
    let seq = if cfg.opt_start_seq > 0 {
        cfg.opt_start_seq
    } else {
        match cfg.deliver_policy {
            DeliverPolicy::All | DeliverPolicy::ByStartSequence => first,
            DeliverPolicy::Last if filters.is_empty() => last,
            // No match gives 0, which the clamp below makes the first sequence.
            DeliverPolicy::Last => filters
                .iter()
                .filter_map(|f| store.last_matching(f))
                .max()
                .unwrap_or(0),
            DeliverPolicy::LastPerSubject => store
                .subject_lasts(&filters)
                .into_iter()
                .min()
                .unwrap_or(last),
            DeliverPolicy::ByStartTime => match cfg.opt_start_time {
                Some(t) => {
                    let ns = t.unix_nanos().unwrap_or(if t < Timestamp::UNIX_EPOCH {
                        i64::MIN
                    } else {
                        i64::MAX
                    });
                    store.seq_from_time(ns)
                }
                None => last.saturating_add(1),
            },
            DeliverPolicy::New => last.saturating_add(1),
        }
    };
    if first == 0 {
        1
    } else if seq < first {
        first
    } else if seq > last {
        last.saturating_add(1)
    } else {
        seq
    }
}

/// Parse a Go duration (`1.5s`, `300ms`, `2m30s`) into nanoseconds.
fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * unit;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let v = total as i64;
    Some(if neg { -v } else { v })
}

/// The delay of a `-NAK` body: `-NAK {"delay": ns}` or `-NAK <go duration>`.
/// `None`: no delay (also for a bad value, which 2.9.10 logs and treats as a plain NAK).
fn nak_delay(body: &[u8]) -> Option<i64> {
    let arg = body.get(4..)?.trim_ascii();
    if arg.is_empty() {
        return None;
    }
    if arg[0] == b'{' {
        #[derive(Deserialize)]
        struct Nak {
            #[serde(default)]
            delay: i64,
        }
        return serde_json::from_slice::<Nak>(arg).ok().map(|n| n.delay);
    }
    parse_go_duration(std::str::from_utf8(arg).ok()?)
}

impl JetStream {
    /// Write the state of durable consumers whose state changed (one
    /// snapshot each): at once when an AckSync waits for it, otherwise once
    /// the first unwritten change is [`STATE_WRITE_DELAY`] old (plain acks
    /// are final when written, and are not worth an fsync each). Held AckSync
    /// replies wait for the write that holds their ack.
    pub(super) fn flush_consumers(&mut self, now: i64, fx: &mut Effects) {
        let mut due: Option<i64> = None;
        for s in self.streams.values_mut() {
            if s.persist.is_none() {
                continue;
            }
            for c in s.consumers.values_mut() {
                let Some(f) = c.file.as_mut().filter(|f| c.changed && !f.staging) else {
                    continue;
                };
                // At most MAX_STATE_WRITES of one consumer in flight; the
                // rest waits for their completions (a stalled disk).
                if self
                    .state_done
                    .get(&c.uid)
                    .is_some_and(|w| w.len() >= MAX_STATE_WRITES)
                {
                    continue;
                }
                let since = *c.changed_at.get_or_insert(now);
                let held = self.consumer_acks.contains_key(&c.uid);
                if !held && now < since.saturating_add(STATE_WRITE_DELAY) {
                    let at = since.saturating_add(STATE_WRITE_DELAY);
                    due = Some(due.map_or(at, |d| d.min(at)));
                    continue;
                }
                c.changed = false;
                c.changed_at = None;
                if std::mem::take(&mut c.meta_again) {
                    if let Some(json) = f.meta_retry.clone() {
                        let before = self.ids.last();
                        let (sync, generation, rename, tmp) =
                            f.write_meta(json, &mut self.ids, &mut fx.storage);
                        for op in self.ids.since(before).filter(|op| *op != sync) {
                            self.meta_parts.insert(op, sync);
                        }
                        self.meta_renames
                            .insert(sync, (c.uid, generation, rename, tmp, false));
                    }
                }
                let before = self.ids.last();
                let (id, rename) = f.write(&Snapshot::of(&c.acks), &mut self.ids, &mut fx.storage);
                for op in self.ids.since(before) {
                    self.state_ops.insert(op, c.uid);
                }
                if let Some(op) = rename {
                    self.state_renames.insert(id, (c.uid, op));
                }
                self.state_done.entry(c.uid).or_default().insert(id);
                if let Some(held) = self.consumer_acks.remove(&c.uid) {
                    self.waiting.entry(id).or_default().extend(held);
                }
            }
        }
        self.state_due = due;
    }

    /// Give a new durable consumer of a file-backed stream its files; returns
    /// the operation after which its `meta.json` is durable.
    pub(super) fn persist_consumer(
        &mut self,
        stream: &str,
        name: &str,
        fx: &mut Effects,
    ) -> Option<StorageId> {
        let s = self.streams.get_mut(stream)?;
        s.persist.as_ref()?;
        let c = s.consumers.get_mut(name)?;
        if !c.config.is_durable() {
            return None;
        }
        let file = c
            .file
            .get_or_insert_with(|| StateFile::new(stream, name, 0));
        let meta = ConsumerMeta {
            config: c.config.clone(),
            created: c.created,
        };
        let json = Bytes::from(serde_json::to_vec(&meta).ok()?);
        c.changed = true;
        let uid = c.uid;
        let before = self.ids.last();
        file.meta_retry = Some(json.clone());
        let (sync, generation, rename, tmp) = file.write_meta(json, &mut self.ids, &mut fx.storage);
        for op in self.ids.since(before) {
            if op != sync {
                self.meta_parts.insert(op, sync);
            }
        }
        self.meta_renames
            .insert(sync, (uid, generation, rename, tmp, false));
        Some(sync)
    }

    /// An operation writing a consumer's `meta.json` replacement completed.
    /// Once its Sync did, the replacement is renamed over `meta.json` if all
    /// of it succeeded and no newer one was started (replies waiting for it
    /// then wait for the Rename); otherwise its temporary file is removed.
    /// Whether `id` was such an operation and is fully handled.
    pub(super) fn meta_op_done(&mut self, id: StorageId, failed: bool, fx: &mut Effects) -> bool {
        if let Some(sync) = self.meta_parts.remove(&id) {
            if let (true, Some(m)) = (failed, self.meta_renames.get_mut(&sync)) {
                m.4 = true;
            }
            return true;
        }
        let Some((uid, generation, rename, tmp, part_failed)) = self.meta_renames.remove(&id)
        else {
            return false;
        };
        let latest = self
            .consumer_at
            .get(&uid)
            .and_then(|(s, c)| self.streams.get(s)?.consumers.get(c)?.file.as_ref())
            .is_some_and(|f| f.meta_gen == generation);
        if failed || part_failed || !latest {
            if failed || part_failed {
                tracing::warn!("JetStream consumer meta.json write failed: {tmp}; written again");
                if let Some(c) = self.consumer_by_uid(uid) {
                    // The next state write (within STATE_WRITE_DELAY) retries it.
                    c.changed = true;
                    c.meta_again = true;
                }
            }
            fx.storage
                .push((self.ids.alloc(), StorageOp::Remove { file: tmp }));
            // A superseded one is answered now; a failed one with an error.
            if failed || part_failed {
                self.doomed.insert(id);
            }
            return false;
        }
        let rid = self.ids.alloc();
        fx.storage.push((rid, rename));
        if let Some(held) = self.waiting.remove(&id) {
            self.waiting.entry(rid).or_default().extend(held);
        }
        if let Some(c) = self.consumer_by_uid(uid) {
            if let Some(f) = c.file.as_mut() {
                f.meta_retry = None;
            }
        }
        true
    }

    /// The consumer with `uid`.
    fn consumer_by_uid(&mut self, uid: u64) -> Option<&mut Consumer> {
        let (s, c) = self.consumer_at.get(&uid)?;
        self.streams.get_mut(s)?.consumers.get_mut(c)
    }

    /// Subscriptions of a consumer: its acks, pull requests or flow-control replies.
    pub(super) fn consumer_subjects(stream: &str, c: &Consumer) -> Vec<(Target, String)> {
        let name = c.config.consumer_name();
        let t = Target::Consumer(c.uid);
        let mut subs = vec![(t, format!("{ACK_PREFIX}{stream}.{name}.>"))];
        // Push consumers answer pull requests with 409 (2.9.10 does too).
        subs.push((t, format!("{NEXT_PREFIX}{stream}.{name}")));
        if c.config.flow_control {
            subs.push((t, format!("{FC_PREFIX}{stream}.{name}.>")));
        }
        subs
    }

    /// A consumer was added: subscribe it and look at it at the next pump.
    pub(super) fn consumer_added(&mut self, stream: &str, name: &str, fx: &mut Effects) {
        let Some(c) = self.streams.get(stream).and_then(|s| s.consumers.get(name)) else {
            return;
        };
        fx.subscribe.extend(JetStream::consumer_subjects(stream, c));
        self.consumer_at
            .insert(c.uid, (stream.to_string(), name.to_string()));
        self.dirty.insert(c.uid);
    }

    /// A consumer was removed (deleted, expired, or its stream deleted).
    pub(super) fn consumer_removed(&mut self, stream: &str, mut c: Consumer, fx: &mut Effects) {
        if let Some(f) = &c.file {
            f.remove(&mut self.ids, &mut fx.storage);
        }
        // AckSyncs held for a state that will not be written.
        for a in self.consumer_acks.remove(&c.uid).unwrap_or_default() {
            a.send(fx);
        }
        fx.unsubscribe
            .extend(JetStream::consumer_subjects(stream, &c));
        self.consumer_at.remove(&c.uid);
        self.dirty.remove(&c.uid);
        c.close_waiting(fx);
    }

    /// Mark every consumer of stream `id` for a look at the next pump.
    pub(super) fn stream_changed(&mut self, id: u64) {
        if let Some(s) = self.streams.values().find(|s| s.id == id) {
            self.dirty.extend(s.consumers.values().map(|c| c.uid));
        }
    }

    /// A client subscription came or went: push consumers look again at
    /// their deliver subject (to start, or to stop and count as inactive),
    /// pull consumers at their waiting requesters. Work: one step per consumer.
    pub fn interest_changed(&mut self) {
        for s in self.streams.values() {
            for c in s.consumers.values() {
                if !c.config.is_pull() || !c.waiting.is_empty() {
                    self.dirty.insert(c.uid);
                }
            }
        }
    }

    /// A message on one of consumer `uid`'s subscriptions.
    #[allow(clippy::too_many_arguments)]
    pub fn consumer_msg(
        &mut self,
        uid: u64,
        subject: &str,
        reply: Option<&Bytes>,
        body: &Bytes,
        now: i64,
        interest: &mut dyn FnMut(&[u8]) -> bool,
        fx: &mut Effects,
    ) {
        let Some((sname, cname)) = self.consumer_at.get(&uid).cloned() else {
            return;
        };
        let Some(stream) = self.streams.get_mut(&sname) else {
            return;
        };
        let Some(c) = stream.consumers.get_mut(&cname) else {
            return;
        };
        self.dirty.insert(uid);
        if subject.starts_with(NEXT_PREFIX) {
            if let Some(r) = reply {
                let pending = c.pending_now(&stream.store);
                c.next_request(r, body, pending, now, interest, fx);
            }
            return;
        }
        if subject.starts_with(FC_PREFIX) {
            c.flow_control_reply(subject);
            return;
        }
        // $JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending>
        let tokens: Vec<&str> = subject.split('.').collect();
        let num = |i: usize| {
            tokens
                .get(i)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let (dc, sseq, dseq) = if tokens.len() == 9 {
            (num(4), num(5), num(6))
        } else {
            (0, 0, 0)
        };
        let body = &body[..];
        let mut acked = Vec::new();
        // An ack of a message this consumer has not delivered (as far as its
        // state after a restart knows) does nothing, and the message will
        // come: an AckSync of it gets no answer rather than a false one.
        let ahead = sseq >= c.acks.sseq && !c.acks.is_pending(sseq);
        let mut reply_ok = sseq != 0;
        let name = c.config.consumer_name().to_string();
        if body.is_empty() || body == b"+ACK" || body == b"+OK" {
            acked = c.acks.ack(sseq, dseq).seqs;
            reply_ok &= !ahead;
        } else if let Some(rest) = body.strip_prefix(b"+NXT") {
            acked = c.acks.ack(sseq, dseq).seqs;
            if let Some(r) = reply {
                let pending = c.pending_now(&stream.store);
                c.next_request(r, rest, pending, now, interest, fx);
            }
            reply_ok = false;
        } else if body.starts_with(b"-NAK") {
            if c.acks.nak(sseq, dseq, nak_delay(body), now) {
                fx.publish.push(advisory(
                    &mut self.rng,
                    now,
                    &format!("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.{sname}.{name}"),
                    serde_json::json!({
                        "type": "io.nats.jetstream.advisory.v1.nak",
                        "stream": sname, "consumer": name,
                        "consumer_seq": dseq, "stream_seq": sseq, "deliveries": dc,
                    }),
                ));
            }
        } else if body == b"+WPI" {
            c.acks.progress(sseq, now);
        } else if body.starts_with(b"+TERM") {
            acked = c.acks.ack(sseq, dseq).seqs;
            reply_ok &= !ahead;
            fx.publish.push(advisory(
                &mut self.rng,
                now,
                &format!("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{sname}.{name}"),
                serde_json::json!({
                    "type": "io.nats.jetstream.advisory.v1.terminated",
                    "stream": sname, "consumer": name,
                    "consumer_seq": dseq, "stream_seq": sseq, "deliveries": dc,
                }),
            ));
        }
        c.changed = true;
        let durable_wait = c.config.is_durable() && stream.persist.is_some();
        let removed = stream.acked(&cname, &acked);
        if !removed.is_empty() {
            stream.log_removed(&removed);
        }
        if let (Some(r), true) = (reply.filter(|r| !r.is_empty()), reply_ok) {
            let ack = PendingAck {
                reply: r.clone(),
                payload: Bytes::new(),
            };
            if durable_wait && self.cfg.persist {
                // AckSync: answered once the consumer's state is on disk.
                let held = self.consumer_acks.entry(uid).or_default();
                // Bounded: past the cap (a stalled disk) it gets no answer,
                // which clients read as a failed AckSync.
                if held.len() < MAX_HELD_ACK_SYNCS {
                    held.push(ack);
                }
            } else {
                ack.send(fx);
            }
        }
    }

    /// Send what dirty consumers may send; remove ephemerals inactive past
    /// their threshold. `interest` says whether a subject has subscribers.
    pub fn pump(&mut self, now: i64, interest: &mut dyn FnMut(&[u8]) -> bool, fx: &mut Effects) {
        let due = self.next_consumer_deadline.is_some_and(|t| t <= now);
        // Most inputs (core traffic) touch no consumer: nothing to look at.
        if self.dirty.is_empty() && !due {
            return;
        }
        // Consumers with a deadline that has passed.
        if due {
            for s in self.streams.values() {
                for c in s.consumers.values() {
                    if c.next_deadline().is_some_and(|t| t <= now) {
                        self.dirty.insert(c.uid);
                    }
                }
            }
        }
        let dirty = std::mem::take(&mut self.dirty);
        let mut expired = Vec::new();
        for uid in dirty {
            let Some((sname, cname)) = self.consumer_at.get(&uid) else {
                continue;
            };
            let Some(stream) = self.streams.get_mut(sname) else {
                continue;
            };
            let last = stream.deliverable_last();
            let view_store = &stream.store;
            let Some(c) = stream.consumers.get_mut(cname) else {
                continue;
            };

            let view = StreamView {
                name: sname,
                store: view_store,
                last,
                retention_by_acks: stream.config.retention != RetentionPolicy::Limits,
            };
            let out = c.pump(&view, now, &mut self.rng, interest, fx);
            if out.more {
                self.again.insert(uid);
            }
            c.reading += out.read.len();
            let (sname, cname) = (sname.clone(), cname.clone());
            if !out.acked.is_empty() {
                let removed = stream.acked(&cname, &out.acked);
                stream.log_removed(&removed);
            }
            if !out.read.is_empty() {
                self.read_for_consumer(&sname, uid, &out.read, fx);
            }
            if out.expired {
                expired.push((sname, cname));
            }
        }
        for (sname, cname) in expired {
            if let Some(c) = self
                .streams
                .get_mut(&sname)
                .and_then(|s| s.consumers.remove(&cname))
            {
                self.consumer_removed(&sname, c, fx);
            }
        }
        self.dirty.append(&mut self.again);
        // Consumers waiting for reads are looked at when they complete.
        self.next_consumer_deadline = self
            .streams
            .values()
            .flat_map(|s| s.consumers.values())
            .filter(|c| c.reading == 0)
            .filter_map(Consumer::next_deadline)
            .min();
        if !self.dirty.is_empty() {
            // More to send: come back at once.
            self.next_consumer_deadline = Some(now);
        }
    }

    /// Read back messages a consumer wants from the log: runs of records
    /// that lie together in one segment are read with one Read; a record
    /// still queued for writing is decoded at once. The consumer counted
    /// every sequence in `reading`; each ends in
    /// [`JetStream::consumer_read_done`].
    fn read_for_consumer(&mut self, stream: &str, uid: u64, seqs: &[u64], fx: &mut Effects) {
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        let mut outcomes = Vec::new();
        // The run being gathered: its segment, file, start and parts.
        let mut run: Option<Run> = None;
        let mut runs = Vec::new();
        for &seq in seqs {
            let loc = s.store.meta(seq).and_then(|m| m.loc);
            let how = match (loc, &s.persist) {
                (Some(loc), Some(p)) => p.read_record(loc).map(|r| (loc, r)),
                _ => None,
            };
            match how {
                Some((loc, Ok(StorageOp::Read { file, .. }))) => {
                    let joins = run.as_ref().is_some_and(|(seg, _, start, parts)| {
                        let end = parts.last().map_or(*start, |&(_, o, l)| start + o + l);
                        *seg == loc.seg && loc.offset >= end && loc.offset - end <= 64 * 1024
                    });
                    if !joins {
                        runs.extend(run.take());
                        run = Some((loc.seg, file, loc.offset, Vec::new()));
                    }
                    if let Some((_, _, start, parts)) = run.as_mut() {
                        parts.push((seq, loc.offset - *start, loc.len));
                    }
                }
                Some((_, Ok(_))) => outcomes.push((seq, ReadOutcome::Failed)),
                Some((_, Err(record))) => {
                    let got = api::record_msg(&record, seq);
                    outcomes.push((seq, got.map_or(ReadOutcome::Failed, ReadOutcome::Got)));
                }
                None => {
                    tracing::warn!(
                        "JetStream stream '{stream}': message {seq} has no readable record"
                    );
                    if let Some(c) = s.consumers.values_mut().find(|c| c.uid == uid) {
                        c.acks.forget(seq);
                        c.acks.skip_to(seq + 1);
                    }
                    outcomes.push((seq, ReadOutcome::Failed));
                }
            }
        }
        runs.extend(run);
        let stream_id = s.id;
        for (_, file, offset, parts) in runs {
            if self.reads.len() >= MAX_PENDING_READS {
                // Too many reads in flight: tried again after one completes.
                outcomes.extend(parts.iter().map(|p| (p.0, ReadOutcome::Refused)));
                continue;
            }
            let len = parts.last().map_or(0, |&(_, o, l)| o + l);
            let id = self.ids.alloc();
            fx.storage.push((id, StorageOp::Read { file, offset, len }));
            let seq = parts[0].0;
            let getter = Getter::Consumer(uid, parts);
            self.reads.insert(
                id,
                PendingRead {
                    stream_id,
                    seq,
                    getter,
                },
            );
        }
        for (_, o) in outcomes {
            self.consumer_read_done(uid, o);
        }
    }

    /// A run of records read for consumer `uid` came back.
    pub(super) fn consumer_range_done(
        &mut self,
        uid: u64,
        parts: &[(u64, u64, u64)],
        result: StorageResult,
    ) {
        for &(seq, off, len) in parts {
            let got = match &result {
                StorageResult::Data(data) => {
                    let (a, b) = (off as usize, (off + len) as usize);
                    data.get(a..b)
                        .and_then(|_| api::record_msg(&data.slice(a..b), seq))
                }
                other => {
                    tracing::warn!("JetStream consumer read of message {seq} gave {other:?}");
                    None
                }
            };
            self.consumer_read_done(uid, got.map_or(ReadOutcome::Failed, ReadOutcome::Got));
        }
    }

    /// A storage operation of a consumer's state write completed. A failure
    /// fails every AckSync waiting on a state write of that consumer still in
    /// flight (a later append may lie past a hole that recovery stops at),
    /// and the next snapshot replaces the file.
    pub(super) fn state_op_done(&mut self, id: StorageId, failed: bool) {
        let Some(uid) = self.state_ops.remove(&id) else {
            return;
        };
        if let Some(set) = self.state_done.get_mut(&uid) {
            if failed {
                self.doomed.extend(set.iter().copied());
                set.clear();
            } else {
                set.remove(&id);
            }
            if set.is_empty() {
                self.state_done.remove(&uid);
            }
        }
        if failed {
            tracing::warn!("JetStream consumer state write failed; the state file is rewritten");
            if let Some(c) = self.consumer_by_uid(uid) {
                if let Some(f) = c.file.as_mut() {
                    f.rewrite = true;
                }
                c.changed = true;
            }
        }
    }

    /// The Sync of a consumer's replacement state file completed: rename it
    /// over the state file if every operation writing it succeeded (the
    /// AckSyncs held for it then wait for the Rename); otherwise the next
    /// snapshot tries again. Whether `id` was such a Sync.
    pub(super) fn state_staged_done(
        &mut self,
        id: StorageId,
        failed: bool,
        fx: &mut Effects,
    ) -> bool {
        let Some((uid, rename)) = self.state_renames.remove(&id) else {
            return false;
        };
        let ok = !failed && !self.doomed.contains(&id);
        let Some(c) = self.consumer_by_uid(uid) else {
            return false;
        };
        if let Some(f) = c.file.as_mut() {
            f.staging = false;
            f.rewrite |= !ok;
        }
        c.changed |= !ok;
        self.dirty.insert(uid);
        if !ok {
            return false;
        }
        let rid = self.ids.alloc();
        fx.storage.push((rid, rename));
        self.state_ops.insert(rid, uid);
        self.state_done.entry(uid).or_default().insert(rid);
        if let Some(held) = self.waiting.remove(&id) {
            self.waiting.entry(rid).or_default().extend(held);
        }
        true
    }

    /// A read for consumer `uid` completed. The consumer looks again once
    /// its last read is in.
    pub(super) fn consumer_read_done(&mut self, uid: u64, outcome: ReadOutcome) {
        let refused = matches!(outcome, ReadOutcome::Refused);
        let Some(c) = self.consumer_by_uid(uid) else {
            return;
        };
        c.reading = c.reading.saturating_sub(1);
        match outcome {
            ReadOutcome::Got(m) => {
                if c.fetched.len() >= READ_AHEAD * 2 {
                    // Drop what it no longer needs; if that is not enough,
                    // everything (it is only a read-ahead).
                    let (next, acks) = (c.acks.sseq, &c.acks);
                    c.fetched.retain(|&s, _| s >= next || acks.is_pending(s));
                    if c.fetched.len() >= READ_AHEAD * 2 {
                        c.fetched.clear();
                    }
                }
                c.fetched.insert(m.seq, m);
            }
            // Not read (too many reads in flight): looked at again after the
            // next read of any consumer completes. Failed: the pump tries again.
            ReadOutcome::Refused | ReadOutcome::Failed => {}
        }
        let idle = c.reading == 0;
        if refused {
            self.starved.insert(uid);
        }
        if idle && !self.starved.contains(&uid) {
            self.dirty.insert(uid);
        }
    }
}

impl Stream {
    /// The last sequence consumers may deliver: for a file-backed stream, the
    /// last one whose log record is durable.
    pub fn deliverable_last(&self) -> u64 {
        if self.persist.is_some() {
            let before_hole = self.hole_from.map_or(u64::MAX, |h| h - 1);
            self.durable_seq.min(self.store.last_seq()).min(before_hole)
        } else {
            self.store.last_seq()
        }
    }

    /// Consumer `by` acknowledged `seqs`: on a work-queue stream they go; on
    /// an interest stream they go once no consumer still needs them (2.9.10's
    /// `ackMsg`). Returns the sequences removed.
    pub fn acked(&mut self, by: &str, seqs: &[u64]) -> Vec<u64> {
        let mut removed = Vec::new();
        if self.config.retention == RetentionPolicy::Limits {
            return removed;
        }
        for &seq in seqs {
            let Some(meta) = self.store.meta(seq) else {
                continue;
            };
            let keep = self.config.retention == RetentionPolicy::Interest
                && self
                    .consumers
                    .iter()
                    .any(|(n, c)| n != by && c.takes(&meta.subject) && c.acks.needs_ack(seq));
            if !keep && self.store.remove(seq).is_some() {
                removed.push(seq);
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::{nak_delay, parse_go_duration};

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1s"), Some(1_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("2m30s"), Some(150_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("x"), None);
        assert_eq!(nak_delay(b"-NAK"), None);
        assert_eq!(nak_delay(b"-NAK {\"delay\": 5000}"), Some(5000));
        assert_eq!(nak_delay(b"-NAK 2s"), Some(2_000_000_000));
        assert_eq!(nak_delay(b"-NAK bogus"), None);
    }
}

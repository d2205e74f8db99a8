//! A consumer's delivery and ack bookkeeping (rows AK1–AK9), as nats-server
//! 2.9.10 keeps it: the next stream and delivery sequences, the ack floor,
//! the deliveries waiting for an ack with their redelivery deadlines, the
//! redelivery counts and the redelivery queue.
//!
//! Pure state: it sees no store and sends nothing. The caller picks the next
//! message (a redelivery from [`AckState::next_redelivery`] first, else the
//! next stream message at or after [`AckState::sseq`]), delivers it and
//! reports it with [`AckState::delivered`]. Times are unix nanoseconds given
//! by the caller; deadlines come back through [`AckState::next_deadline`].
//!
//! Bounds: `pending` holds at most `max_ack_pending` new deliveries (the
//! caller stops delivering new messages at the limit), and `rdq`, `rdc` and
//! `deadlines` only hold sequences that are in `pending`. With
//! `max_ack_pending` -1 they are bounded by the stream's messages.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::consumer::{AckPolicy, ConsumerConfig};

/// One delivery waiting for its ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The delivery sequence of its first delivery (acks name it by this).
    pub dseq: u64,
    /// When it is redelivered if not acked (absent while queued for redelivery).
    pub deadline: Option<i64>,
}

/// What an ack changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acked {
    /// Stream sequences acknowledged by it (for interest and work-queue
    /// retention), in ascending order.
    pub seqs: Vec<u64>,
}

#[derive(Clone, Debug)]
pub struct AckState {
    policy: AckPolicy,
    ack_wait: i64,
    backoff: Vec<i64>,
    /// Deliveries allowed per message (0: unlimited).
    max_deliver: u64,
    /// The next stream sequence to consider for a first delivery.
    pub sseq: u64,
    /// The next delivery sequence.
    pub dseq: u64,
    /// The ack floor: everything at or below it is acknowledged.
    pub floor_dseq: u64,
    pub floor_sseq: u64,
    pending: BTreeMap<u64, Pending>,
    deadlines: BTreeSet<(i64, u64)>,
    /// Redeliveries so far per stream sequence (a first delivery has none).
    rdc: BTreeMap<u64, u64>,
    rdq: VecDeque<u64>,
    rdq_set: BTreeSet<u64>,
}

impl AckState {
    /// Fresh state for a consumer whose first delivery is stream sequence `start`.
    pub fn new(cfg: &ConsumerConfig, start: u64) -> AckState {
        AckState {
            policy: cfg.ack_policy,
            ack_wait: cfg.ack_wait,
            backoff: cfg.backoff.clone(),
            max_deliver: u64::try_from(cfg.max_deliver).unwrap_or(0),
            sseq: start,
            dseq: 1,
            floor_dseq: 0,
            floor_sseq: start.saturating_sub(1),
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            rdc: BTreeMap::new(),
            rdq: VecDeque::new(),
            rdq_set: BTreeSet::new(),
        }
    }

    /// Take the settings an update may change (ack_wait, backoff, max_deliver).
    pub fn reconfigure(&mut self, cfg: &ConsumerConfig) {
        self.ack_wait = cfg.ack_wait;
        self.backoff = cfg.backoff.clone();
        self.max_deliver = u64::try_from(cfg.max_deliver).unwrap_or(0);
    }

    pub fn num_ack_pending(&self) -> usize {
        self.pending.len()
    }

    pub fn num_redelivered(&self) -> usize {
        self.rdc.len()
    }

    pub fn pending(&self) -> impl Iterator<Item = (u64, &Pending)> {
        self.pending.iter().map(|(s, p)| (*s, p))
    }

    pub fn redeliveries(&self, sseq: u64) -> u64 {
        self.rdc.get(&sseq).copied().unwrap_or(0)
    }

    pub fn is_pending(&self, sseq: u64) -> bool {
        self.pending.contains_key(&sseq)
    }

    /// Whether this consumer still holds stream sequence `sseq` unacknowledged
    /// (interest retention keeps a message while some consumer does; the
    /// caller checks the filters first).
    pub fn needs_ack(&self, sseq: u64) -> bool {
        if sseq <= self.floor_sseq {
            return false;
        }
        match self.policy {
            AckPolicy::None | AckPolicy::All => true,
            AckPolicy::Explicit => sseq >= self.sseq || self.pending.contains_key(&sseq),
        }
    }

    /// Redeliveries queued.
    pub fn num_redeliveries_queued(&self) -> u64 {
        self.rdq.len() as u64
    }

    /// Whether new deliveries must wait for acks (`max_ack_pending`; -1 or 0: no limit).
    pub fn at_max_pending(&self, max_ack_pending: i64) -> bool {
        self.policy.requires_ack()
            && max_ack_pending > 0
            && self.pending.len() as u64 >= max_ack_pending as u64
    }

    /// How long a delivery waits for its ack after `redeliveries` earlier ones:
    /// the backoff entry for it (the last one past the end), else `ack_wait`.
    fn wait_for(&self, redeliveries: u64) -> i64 {
        match self.backoff.len() {
            0 => self.ack_wait,
            n => self.backoff[(redeliveries as usize).min(n - 1)],
        }
    }

    /// The next redelivery, dropping those past `max_deliver` first; each
    /// dropped one is reported in `exceeded` as (stream sequence, deliveries)
    /// for the MAX_DELIVERIES advisory. The redelivery stays queued until
    /// [`AckState::delivered`] takes it.
    pub fn next_redelivery(&mut self, exceeded: &mut Vec<(u64, u64)>) -> Option<u64> {
        while let Some(&seq) = self.rdq.front() {
            let dc = self.redeliveries(seq) + 2;
            if self.max_deliver > 0 && dc > self.max_deliver {
                self.rdq.pop_front();
                self.rdq_set.remove(&seq);
                exceeded.push((seq, dc - 1));
                // It is never delivered again. With explicit acks it counts
                // as handled for the floor; with ack all the floor moves only
                // by acks (a drop must not lift it over earlier pending ones).
                if self.policy == AckPolicy::Explicit {
                    self.settle(seq);
                } else if let Some(p) = self.pending.remove(&seq) {
                    if let Some(d) = p.deadline {
                        self.deadlines.remove(&(d, seq));
                    }
                }
                continue;
            }
            return Some(seq);
        }
        None
    }

    /// Stream sequence `sseq` was delivered at `now` (the front redelivery,
    /// or a first delivery at or after [`AckState::sseq`]). Returns the
    /// delivery sequence and the delivery count.
    pub fn delivered(&mut self, sseq: u64, now: i64) -> (u64, u64) {
        let dseq = self.dseq;
        self.dseq += 1;
        let redelivery = self.rdq.front() == Some(&sseq);
        let dc = if redelivery {
            self.rdq.pop_front();
            self.rdq_set.remove(&sseq);
            let n = self.rdc.entry(sseq).or_insert(0);
            *n += 1;
            *n + 1
        } else {
            if sseq >= self.sseq {
                self.sseq = sseq + 1;
            }
            1
        };
        match self.policy {
            AckPolicy::None => {
                self.floor_dseq = dseq;
                self.floor_sseq = self.floor_sseq.max(sseq);
            }
            AckPolicy::All | AckPolicy::Explicit => {
                let deadline = now.saturating_add(self.wait_for(dc - 1));
                let p = self.pending.entry(sseq).or_insert(Pending {
                    dseq,
                    deadline: None,
                });
                if let Some(old) = p.deadline.replace(deadline) {
                    self.deadlines.remove(&(old, sseq));
                }
                self.deadlines.insert((deadline, sseq));
            }
        }
        (dseq, dc)
    }

    /// Nothing at or after `sseq` is there to deliver yet: first deliveries
    /// resume at `next`.
    pub fn skip_to(&mut self, next: u64) {
        self.sseq = self.sseq.max(next);
    }

    fn unqueue(&mut self, sseq: u64) {
        if self.rdq_set.remove(&sseq) {
            self.rdq.retain(|&s| s != sseq);
        }
    }

    /// Forget a pending delivery and move the floor as an explicit ack does.
    fn settle(&mut self, sseq: u64) -> bool {
        let Some(p) = self.pending.remove(&sseq) else {
            return false;
        };
        if let Some(d) = p.deadline {
            self.deadlines.remove(&(d, sseq));
        }
        self.unqueue(sseq);
        if self.pending.is_empty() {
            self.floor_dseq = self.dseq - 1;
            self.floor_sseq = self.sseq - 1;
        } else if p.dseq == self.floor_dseq + 1 {
            // The floor moves up to just before the next delivery still pending.
            if let Some((&next, np)) = self.pending.range(sseq + 1..).next() {
                self.floor_dseq = np.dseq - 1;
                self.floor_sseq = next - 1;
            } else {
                self.floor_dseq = p.dseq;
                self.floor_sseq = sseq;
            }
        }
        true
    }

    /// `+ACK` (or `+TERM`, or the ack half of `+NXT`) of the delivery of
    /// stream sequence `sseq` with delivery sequence `dseq`.
    pub fn ack(&mut self, sseq: u64, dseq: u64) -> Acked {
        match self.policy {
            AckPolicy::None => Acked::default(),
            AckPolicy::Explicit => {
                let was = self.settle(sseq);
                self.rdc.remove(&sseq);
                Acked {
                    seqs: if was { vec![sseq] } else { vec![] },
                }
            }
            AckPolicy::All => {
                if dseq <= self.floor_dseq || sseq <= self.floor_sseq || sseq >= self.sseq {
                    return Acked::default();
                }
                let from = self.floor_sseq + 1;
                self.floor_dseq = dseq;
                self.floor_sseq = sseq;
                let done: Vec<u64> = self.pending.range(from..=sseq).map(|(s, _)| *s).collect();
                for s in &done {
                    if let Some(p) = self.pending.remove(s) {
                        if let Some(d) = p.deadline {
                            self.deadlines.remove(&(d, *s));
                        }
                    }
                    self.unqueue(*s);
                }
                // Redelivery counts of everything covered go, dropped ones included.
                let counted: Vec<u64> = self.rdc.range(from..=sseq).map(|(s, _)| *s).collect();
                for s in counted {
                    self.rdc.remove(&s);
                }
                Acked {
                    seqs: (from..=sseq).collect(),
                }
            }
        }
    }

    /// `-NAK`: redeliver now, or (with a delay) once `delay` has passed.
    /// Whether it applied (the delivery was pending).
    pub fn nak(&mut self, sseq: u64, dseq: u64, delay: Option<i64>, now: i64) -> bool {
        if dseq <= self.floor_dseq || dseq >= self.dseq || !self.pending.contains_key(&sseq) {
            return false;
        }
        match delay {
            Some(d) => {
                self.unqueue(sseq);
                self.set_deadline(sseq, now.saturating_add(d.max(0)));
            }
            None => {
                if let Some(p) = self.pending.get_mut(&sseq) {
                    if let Some(d) = p.deadline.take() {
                        self.deadlines.remove(&(d, sseq));
                    }
                }
                if self.rdq_set.insert(sseq) {
                    self.rdq.push_back(sseq);
                }
            }
        }
        true
    }

    fn set_deadline(&mut self, sseq: u64, at: i64) {
        if let Some(p) = self.pending.get_mut(&sseq) {
            if let Some(old) = p.deadline.replace(at) {
                self.deadlines.remove(&(old, sseq));
            }
            self.deadlines.insert((at, sseq));
        }
    }

    /// `+WPI`: the ack deadline starts again from `now`.
    pub fn progress(&mut self, sseq: u64, now: i64) {
        if self
            .pending
            .get(&sseq)
            .is_some_and(|p| p.deadline.is_some())
        {
            let wait = self.wait_for(self.redeliveries(sseq));
            self.set_deadline(sseq, now.saturating_add(wait));
        }
    }

    /// Queue for redelivery every delivery whose deadline is at or before
    /// `now`, in stream order. Whether any was queued.
    pub fn expire(&mut self, now: i64) -> bool {
        let mut due = Vec::new();
        while let Some(&(at, seq)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(p) = self.pending.get_mut(&seq) {
                p.deadline = None;
            }
            due.push(seq);
        }
        due.sort_unstable();
        for seq in &due {
            if self.rdq_set.insert(*seq) {
                self.rdq.push_back(*seq);
            }
        }
        !due.is_empty()
    }

    /// The earliest ack deadline.
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// The message at `sseq` is gone from the stream: nothing waits for it.
    pub fn forget(&mut self, sseq: u64) {
        self.settle(sseq);
        self.rdc.remove(&sseq);
    }

    /// The stream was purged up to `first` (its new first sequence): what
    /// lay below is acknowledged for this consumer, as 2.9.10's consumer
    /// `purge` does.
    pub fn purged(&mut self, first: u64) {
        self.sseq = self.sseq.max(first);
        if self.floor_sseq >= first.saturating_sub(1) {
            return;
        }
        self.floor_sseq = first - 1;
        let below: Vec<u64> = self.pending.range(..first).map(|(s, _)| *s).collect();
        for s in below {
            if let Some(p) = self.pending.remove(&s) {
                self.floor_dseq = self.floor_dseq.max(p.dseq);
                if let Some(d) = p.deadline {
                    self.deadlines.remove(&(d, s));
                }
            }
            self.rdc.remove(&s);
            self.unqueue(s);
        }
        if self.pending.is_empty() {
            self.floor_dseq = self.dseq - 1;
        }
    }

    /// Restore a pending delivery read back from disk (redelivered after `deadline`).
    pub fn restore_pending(&mut self, sseq: u64, dseq: u64, redeliveries: u64, deadline: i64) {
        self.pending.insert(
            sseq,
            Pending {
                dseq,
                deadline: Some(deadline),
            },
        );
        self.deadlines.insert((deadline, sseq));
        if redeliveries > 0 {
            self.rdc.insert(sseq, redeliveries);
        }
    }

    /// Restore the positions read back from disk.
    pub fn restore_positions(&mut self, sseq: u64, dseq: u64, floor_sseq: u64, floor_dseq: u64) {
        self.sseq = sseq;
        self.dseq = dseq;
        self.floor_sseq = floor_sseq;
        self.floor_dseq = floor_dseq;
    }
}

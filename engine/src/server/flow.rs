//! Keep-alive, write deadlines and the fast-producer stall: the per-connection
//! timers and flow control of the server.

use super::frames::PING;
use super::*;

impl Server {
    // ----- timers -----

    /// Set a connection's timer of this kind (replacing an earlier one).
    pub(super) fn arm(&mut self, key: usize, at: Instant, timer: Timer) {
        let Some(c) = self.core.conns.get_mut(key) else {
            return;
        };
        if let Some(old) = c.timers[timer as usize].replace(at) {
            self.timers.remove(&(old, c.id, timer));
        }
        self.timers.insert((at, c.id, timer));
    }

    pub(super) fn ping_timer(&mut self, now: Instant, key: usize) {
        let interval = self.cfg.ping_interval.max(MIN_TIMER_INTERVAL);
        let c = &mut self.core.conns[key];
        if c.closing {
            return;
        }
        // As in nats-server's processPingTimer, recent activity only delays the PING
        // when an RTT is known and the server has pinged within the last hour; so
        // the first timer after CONNECT always pings.
        let need_rtt = !c.rtt_known
            || c.rtt_start
                .is_none_or(|t| now.since(t) > RTT_MEASUREMENT_INTERVAL);
        let active = !need_rtt && now.since(c.last_activity) < interval;
        if !active {
            if c.pings_out + 1 > self.cfg.ping_max {
                return self.close(key, CloseReason::StaleConnection, Some("Stale Connection"));
            }
            c.pings_out += 1;
            c.rtt_start = Some(now);
            self.core.send(key, PING);
        }
        self.arm(key, now.after(interval), Timer::Ping);
    }

    pub(super) fn write_deadline_timer(&mut self, now: Instant, key: usize) {
        let c = &self.core.conns[key];
        if c.closing || c.in_flight == 0 {
            return;
        }
        let due = c.write_progress_at.after(self.cfg.write_deadline);
        if now >= due {
            self.core.stats.slow_consumers += 1;
            tracing::info!(
                "cid:{} - Slow Consumer Detected: WriteDeadline of {:?} exceeded",
                c.id,
                self.cfg.write_deadline
            );
            return self.close(key, CloseReason::SlowConsumerWriteDeadline, None);
        }
        self.arm(key, due, Timer::WriteDeadline);
    }

    // ----- fast-producer stall -----

    /// Pause reading from `producer` until `consumer` drains below half of
    /// max_pending, or a while passes (longer the fuller the consumer is).
    pub(super) fn stall_producer(&mut self, producer: usize, consumer: usize) {
        let mp = self.cfg.max_pending.max(1);
        let Some(cons) = self.core.conns.get(consumer) else {
            return;
        };
        let pending = cons.pending();
        let Some(p) = self.core.conns.get_mut(producer) else {
            return;
        };
        if p.closing || p.read_paused {
            return;
        }
        p.read_paused = true;
        let pid = p.id;
        self.flow.push_back(Output::PauseRead { conn: ConnId(pid) });
        tracing::trace!(
            "cid:{pid} - stalled: cid:{} has {pending} bytes pending",
            self.core.conns[consumer].id
        );
        let half = mp / 2;
        let wait = if pending >= mp {
            STALL_MAX
        } else {
            // nats-server adds the minimum again for every tenth of the upper half.
            let steps = pending.saturating_sub(half) / (half / 10).max(1);
            (STALL_MIN * (1 + steps as u32)).min(STALL_MAX)
        };
        let waiters = &mut self.core.conns[consumer].stalled_producers;
        if !waiters.contains(&pid) {
            waiters.push(pid);
        }
        let at = self.now.after(wait);
        self.arm(producer, at, Timer::Stall);
    }

    /// Let every producer stalled on `consumer` read again.
    pub(super) fn release_producers(&mut self, consumer: usize) {
        let Some(c) = self.core.conns.get_mut(consumer) else {
            return;
        };
        let waiting = std::mem::take(&mut c.stalled_producers);
        for pid in waiting {
            if let Some(&pk) = self.by_id.get(&pid) {
                self.resume_producer(pk);
            }
        }
    }

    pub(super) fn resume_producer(&mut self, key: usize) {
        let Some(p) = self.core.conns.get_mut(key) else {
            return;
        };
        if !p.read_paused {
            return;
        }
        p.read_paused = false;
        let pid = p.id;
        if let Some(at) = p.timers[Timer::Stall as usize].take() {
            self.timers.remove(&(at, pid, Timer::Stall));
        }
        if !p.closing {
            self.flow
                .push_back(Output::ResumeRead { conn: ConnId(pid) });
            self.resumed.push(key);
        }
    }
}

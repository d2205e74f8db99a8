//! Engine services inside the routing core: internal subscriptions, the messages
//! they receive, and what the services ask for in return (publishes, storage
//! operations, more subscriptions). JetStream is the only service today.

use super::core::{Msg, Sub, INTERNAL_CONN};
use super::*;
use crate::jetstream::service::{Effects, JetStream, JsConfig, Target};
use crate::storage::{StorageId, StorageResult};

/// Internal messages handled in one input before the rest are dropped: a guard
/// against services that feed each other without end.
const INTERNAL_BUDGET: usize = 1_000_000;

impl Server {
    /// Start JetStream when the config enables it.
    pub(super) fn start_services(&mut self) {
        if !self.cfg.jetstream {
            return;
        }
        let cfg = JsConfig {
            server_name: self
                .cfg
                .server_name
                .clone()
                .unwrap_or_else(|| self.server_id.clone()),
            max_memory: self.cfg.jetstream_max_memory,
            max_store: self.cfg.jetstream_max_store,
            persist: self.cfg.jetstream_persist,
            sync_interval_ns: self
                .cfg
                .jetstream_sync_interval
                .map_or(0, |d| d.as_nanos() as i64),
            cache_bytes: self.cfg.jetstream_cache_bytes,
            index_flushes: self.cfg.jetstream_index_flushes,
            // Derived from the seed without drawing from the server's generator,
            // so queue-group choices stay as they were.
            rng_seed: self.hash_seed ^ 0x4a53_2d43_4f4e_5355,
            ack_before_sync: self.cfg.has_bug(crate::config::InjectedBug::AckBeforeSync),
        };
        let mut fx = Effects::default();
        self.js = Some(JetStream::start(cfg, &mut fx));
        self.apply_effects(fx);
    }

    /// Wall-clock time (unix nanoseconds) at monotonic instant `now`.
    pub(super) fn wall(&self, now: Instant) -> i64 {
        self.wall_origin.saturating_add(now.as_nanos() as i64)
    }

    fn subscribe_internal(&mut self, target: Target, subject: &str) {
        let key = (target, Box::<[u8]>::from(subject.as_bytes()));
        if self.internal_subs.contains_key(&key) {
            return;
        }
        let sk = self.core.subs.insert(Sub {
            conn: INTERNAL_CONN,
            sid: Box::default(),
            subject: key.1.clone(),
            queue: None,
            max: 0,
            delivered: 0,
            internal: Some(target),
        });
        self.index.insert(subject.as_bytes(), None, sk);
        self.internal_subs.insert(key, sk);
    }

    fn unsubscribe_internal(&mut self, target: Target, subject: &str) {
        if let Some(sk) = self
            .internal_subs
            .remove(&(target, Box::from(subject.as_bytes())))
        {
            self.remove_sub(sk);
        }
    }

    /// Carry out what a service asked for.
    pub(super) fn apply_effects(&mut self, fx: Effects) {
        for (t, s) in fx.unsubscribe {
            self.unsubscribe_internal(t, &s);
        }
        for (t, s) in fx.subscribe {
            self.subscribe_internal(t, &s);
        }
        self.storage_out.extend(fx.storage);
        for out in fx.publish {
            let msg = Msg {
                subject: &out.subject,
                reply: out.reply.as_deref(),
                headers: out.headers.as_deref(),
                payload: &out.payload,
            };
            match &out.deliver {
                Some(to) => self.route_as(INTERNAL_CONN, to, &msg),
                None => self.route(INTERNAL_CONN, &msg),
            };
        }
    }

    /// Hand queued internal messages to their service.
    pub(super) fn run_internal(&mut self) {
        let mut budget = INTERNAL_BUDGET;
        while let Some(m) = self.core.internal.pop_front() {
            if budget == 0 {
                self.core.internal.clear();
                tracing::warn!("internal message budget exhausted; dropped the rest of this input's service messages");
                break;
            }
            budget -= 1;
            let now = self.wall(self.now);
            let Some(js) = self.js.as_mut() else { continue };
            let mut fx = Effects::default();
            match m.target {
                Target::Api => {
                    let subject = String::from_utf8_lossy(&m.subject);
                    js.api(&subject, m.reply.as_ref(), &m.payload, now, &mut fx);
                }
                Target::Stream(id) => js.capture(
                    id,
                    &m.subject,
                    m.reply.as_ref(),
                    m.headers.as_ref(),
                    &m.payload,
                    now,
                    &mut fx,
                ),
                Target::Direct(id) => {
                    let subject = String::from_utf8_lossy(&m.subject);
                    js.direct_get(id, &subject, m.reply.as_ref(), &m.payload, &mut fx);
                }
                Target::Consumer(uid) => {
                    let subject = String::from_utf8_lossy(&m.subject);
                    let (index, subs) = (&mut self.index, &self.core.subs);
                    let mut interest = |s: &[u8]| client_interest(index, subs, s);
                    js.consumer_msg(
                        uid,
                        &subject,
                        m.reply.as_ref(),
                        &m.payload,
                        now,
                        &mut interest,
                        &mut fx,
                    );
                }
            }
            self.apply_effects(fx);
        }
    }

    /// The end of an input: services flush (one write and fsync per stream for
    /// everything this input stored) and JetStream's expiry timer is re-armed.
    pub(super) fn end_of_input(&mut self) {
        // Slow consumers found by control replies (see `Core::send`).
        self.after_delivery();
        self.run_internal();
        let now = self.wall(self.now);
        let Some(js) = self.js.as_mut() else { return };
        if std::mem::take(&mut self.interest_changed) {
            js.interest_changed();
        }
        // Consumers send what they may, before the flush that writes their state.
        let mut fx = Effects::default();
        let (index, subs) = (&mut self.index, &self.core.subs);
        js.pump(
            now,
            &mut |s: &[u8]| client_interest(index, subs, s),
            &mut fx,
        );
        self.apply_effects(fx);
        self.run_internal();
        let Some(js) = self.js.as_mut() else { return };
        let mut fx = Effects::default();
        js.flush(now, &mut fx);
        self.apply_effects(fx);
        self.run_internal();
        self.arm_jetstream_timer();
    }

    fn arm_jetstream_timer(&mut self) {
        let Some(js) = self.js.as_ref() else { return };
        let wanted = js.next_expiry().map(|at_wall| {
            let delta = at_wall.saturating_sub(self.wall(self.now)).max(0) as u64;
            Instant(self.now.as_nanos().saturating_add(delta))
        });
        if wanted == self.js_timer {
            return;
        }
        if let Some(old) = self.js_timer.take() {
            self.timers.remove(&(old, 0, Timer::JetStream));
        }
        if let Some(at) = wanted {
            self.timers.insert((at, 0, Timer::JetStream));
            self.js_timer = Some(at);
        }
    }

    /// JetStream's expiry timer fired.
    pub(super) fn jetstream_timer(&mut self, now: Instant) {
        self.js_timer = None;
        let wall = self.wall(now);
        if let Some(js) = self.js.as_mut() {
            let mut fx = Effects::default();
            js.tick(wall, &mut fx);
            self.apply_effects(fx);
        }
    }

    /// A storage operation completed.
    pub fn handle_storage(&mut self, now: Instant, id: StorageId, result: StorageResult) {
        self.now = self.now.max(now);
        if let Some(js) = self.js.as_mut() {
            let mut fx = Effects::default();
            js.storage_done(id, result, &mut fx);
            self.apply_effects(fx);
        }
        self.end_of_input();
    }

    /// Tell the engine the wall-clock time (unix nanoseconds) at `now`. Call it
    /// once before the first input; message timestamps derive from it.
    pub fn set_wall_clock(&mut self, now: Instant, unix_nanos: i64) {
        self.wall_origin = unix_nanos.saturating_sub(now.as_nanos() as i64);
    }

    /// Whether JetStream (if enabled) has finished recovering its streams.
    pub fn jetstream_ready(&self) -> bool {
        self.js.as_ref().is_none_or(JetStream::is_ready)
    }
}

/// Whether a client (not a service) subscribes to `subject`.
fn client_interest(
    index: &mut crate::subject::SubjectIndex<usize>,
    subs: &slab::Slab<Sub>,
    subject: &[u8],
) -> bool {
    let m = index.matches(subject);
    m.plain
        .iter()
        .chain(m.queues.iter().flat_map(|(_, q)| q.iter()))
        .any(|&sk| subs.get(sk).is_some_and(|s| s.internal.is_none()))
}

//! Deterministic simulation of natrium.
//!
//! One seed is one run: [`Scenario::generate`] picks the clients, the server's
//! settings, the network's latency and a fault schedule; the server host runs
//! the real engine through runtime-tokio's driver on turmoil's network and a
//! [`SimDisk`]; the clients are small protocol clients ([`roles`]). A run has a
//! safety phase with faults, then a quiet phase in which everything must
//! converge. Afterwards [`check`] holds the observations against the
//! invariants. The trace hash covers every byte that crossed the engine's
//! boundary, so the same seed must give the same hash.

pub mod disk;
pub mod net;
pub mod proto;
pub mod roles;
pub mod scenario;
pub mod trace;
pub mod worker;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use natrium_engine::config::InjectedBug;
use natrium_engine::{Config, Server};

pub use disk::SimDisk;
use roles::{Ctx, JsPublisher, Obs, Publisher, Requester, Responder, Shared, SubObs, Subscriber};
pub use scenario::{Fault, Scenario};
use scenario::{END, HARD_LIMIT, QUIET_PUBLISH, SAFETY_END};
pub use trace::Trace;
use worker::JsWorker;

/// Simulated time per step. Every host runs once per step, so this is the
/// grain of the simulation; 2 ms keeps a seed near 30 ms of CPU.
pub const TICK: Duration = Duration::from_millis(2);

/// An AckSync sent this long before the end must have its answer by then.
const ANSWER_MARGIN: Duration = Duration::from_millis(300);

/// The server's client port.
pub const PORT: u16 = 4222;

/// How to run a seed.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A deliberate engine bug (debug builds only), to show it is caught.
    pub bug: Option<InjectedBug>,
}

/// The outcome of one seed.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    /// Hash of every byte through the engine's boundary.
    pub hash: u64,
    pub violations: Vec<String>,
    /// The readable event log.
    pub log: Vec<String>,
    /// One line: what the seed ran.
    pub summary: String,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Run one seed.
pub fn run(seed: u64, opts: &Options) -> Report {
    let scenario = Scenario::generate(seed);
    let trace = Trace::default();
    let obs: Shared = Rc::new(RefCell::new(Obs::default()));
    let summary = describe(&scenario);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        simulate(seed, &scenario, opts, &trace, &obs)
    }));
    match outcome {
        Ok(Ok(())) => check(&scenario, &obs.borrow(), &trace),
        Ok(Err(e)) => trace.violation(format!("simulation failed: {e}")),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            trace.violation(format!("panic: {msg}"))
        }
    }
    Report {
        seed,
        hash: trace.hash(),
        violations: trace.violations(),
        log: trace.take_log(),
        summary,
    }
}

fn describe(s: &Scenario) -> String {
    let crashes = s
        .faults
        .iter()
        .filter(|(_, f)| matches!(f, Fault::Kill | Fault::PowerLoss { .. }))
        .count();
    let partitions = s
        .faults
        .iter()
        .filter(|(_, f)| matches!(f, Fault::Partition { .. }))
        .count();
    format!(
        "pubs {} subs {} workers {} req/rsp {}/{} js {}{} js workers {} | latency {:?}..{:?} | crashes {crashes} partitions {partitions} disconnects {} disk errors {} slow subs {}",
        s.publishers,
        s.subscribers.len(),
        s.queue_workers,
        s.requesters,
        s.responders,
        s.js_publishers,
        s.sync_interval.map(|d| format!(" (sync_interval {d:?})")).unwrap_or_default(),
        s.js_workers,
        s.min_latency,
        s.max_latency,
        s.disconnects.len(),
        s.disk_errors(),
        s.subscribers.iter().filter(|x| x.slow).count(),
    )
}

fn server_config(s: &Scenario, opts: &Options) -> Config {
    Config {
        port: PORT,
        max_pending: s.max_pending,
        ping_interval: s.ping_interval,
        ping_max: 2,
        write_deadline: Duration::from_secs(2),
        jetstream: s.js_publishers > 0,
        jetstream_sync_interval: s.sync_interval,
        injected_bug: opts.bug,
        ..Config::default()
    }
}

fn simulate(
    seed: u64,
    sc: &Scenario,
    opts: &Options,
    trace: &Trace,
    obs: &Shared,
) -> Result<(), String> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        .simulation_duration(HARD_LIMIT + Duration::from_secs(5))
        .tick_duration(TICK)
        .min_message_latency(sc.min_latency)
        .max_message_latency(sc.max_latency)
        .build();
    let disk = SimDisk::new(seed ^ 0xd15c, trace.clone());
    disk.set_faults(0.0, sc.disk_latency);
    let cfg = server_config(sc, opts);
    let incarnation = Arc::new(AtomicU64::new(0));
    {
        let (trace, disk) = (trace.clone(), disk.clone());
        sim.host("server", move || {
            let (trace, disk, cfg) = (trace.clone(), disk.clone(), cfg.clone());
            let n = incarnation.fetch_add(1, Ordering::Relaxed);
            async move {
                trace.log(|| format!("server: starting (incarnation {n})"));
                let listener = net::SimListener::bind(PORT, trace.clone()).await?;
                let server = Server::new(cfg, seed.wrapping_add(n.wrapping_mul(0x9e37_79b9)));
                let unix = turmoil::since_epoch().unwrap_or_default().as_nanos() as i64;
                let observer = trace.clone();
                let observe = move |s: &Server| {
                    if let Err(e) = s.check_bounds() {
                        observer.violation(format!("server: bound exceeded: {e}"));
                    }
                };
                let storage = |done| Ok(Some(disk.start(done)));
                natrium_runtime_tokio::drive(
                    server,
                    listener,
                    unix,
                    storage,
                    observe,
                    std::future::pending(),
                )
                .await?;
                Ok(())
            }
        });
    }

    let ctx = |name: String, k: u64| Ctx {
        disconnects: sc
            .disconnects
            .iter()
            .filter(|(_, who)| *who == name)
            .map(|(t, _)| *t)
            .collect(),
        name,
        trace: trace.clone(),
        obs: obs.clone(),
        rng_seed: seed.wrapping_mul(31).wrapping_add(k),
    };
    let mut k = 0;
    let mut next = || {
        k += 1;
        k
    };
    for i in 0..sc.publishers {
        let name = format!("pub{i}");
        let p = Publisher::new(ctx(name.clone(), next()), i as u64, sc.queue_workers > 0);
        sim.client(name, roles::run_role(p));
    }
    for (i, spec) in sc.subscribers.iter().enumerate() {
        let name = format!("sub{i}");
        obs.borrow_mut().subs.push(SubObs {
            filter: spec.filter.clone(),
            ..SubObs::default()
        });
        let s = Subscriber::new(
            ctx(name.clone(), next()),
            i,
            spec.filter.clone(),
            None,
            spec.slow,
        );
        sim.client(name, roles::run_role(s));
    }
    for i in 0..sc.queue_workers {
        let name = format!("qw{i}");
        obs.borrow_mut().workers.push(Vec::new());
        let s = Subscriber::new(
            ctx(name.clone(), next()),
            i,
            "work.>".into(),
            Some("q"),
            false,
        );
        sim.client(name, roles::run_role(s));
    }
    for i in 0..sc.responders {
        let name = format!("rsp{i}");
        obs.borrow_mut().responders.push(Vec::new());
        let r = Responder {
            ctx: ctx(name.clone(), next()),
            index: i,
        };
        sim.client(name, roles::run_role(r));
    }
    for i in 0..sc.requesters {
        let name = format!("req{i}");
        let r = Requester::new(ctx(name.clone(), next()), i as u64);
        sim.client(name, roles::run_role(r));
    }
    for i in 0..sc.js_publishers {
        let name = format!("js{i}");
        let j = JsPublisher {
            ctx: ctx(name.clone(), next()),
            id: i as u64,
            max_msgs: sc.max_msgs,
            healthy_disk: !sc.disk_errors(),
            verifier: i == 0,
            consumer: sc.js_workers > 0,
        };
        sim.client(name, j.run());
    }
    for i in 0..sc.js_workers {
        let name = format!("jw{i}");
        obs.borrow_mut().consumer.sessions.push(Vec::new());
        let w = JsWorker::new(ctx(name.clone(), next()), i);
        sim.client(name, roles::run_role(w));
    }

    let mut faults = sc.faults.iter().peekable();
    loop {
        let t = sim.elapsed();
        while let Some((_, fault)) = faults.next_if(|(at, _)| *at <= t) {
            trace.log_at(t, || format!("FAULT {fault:?}"));
            match fault {
                Fault::Partition { client, hold } => {
                    if *hold {
                        sim.hold("server", client.as_str());
                    } else {
                        sim.partition("server", client.as_str());
                    }
                }
                Fault::Repair { client, hold } => {
                    if *hold {
                        sim.release("server", client.as_str());
                    } else {
                        sim.repair("server", client.as_str());
                    }
                }
                Fault::Kill => sim.crash("server"),
                Fault::PowerLoss { torn } => {
                    sim.crash("server");
                    let kept = disk.power_loss(*torn);
                    trace.log_at(t, || format!("disk: power lost, {kept} torn bytes kept"));
                }
                Fault::Restart => {
                    sim.bounce("server");
                    obs.borrow_mut().server_starts.push(t);
                }
                Fault::DiskErrors(rate) => disk.set_faults(*rate, sc.disk_latency),
            }
        }
        if t > HARD_LIMIT {
            return Err(format!("clients still running at {t:?}"));
        }
        match sim.step() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(format!("a host failed: {e}")),
        }
    }
}

fn filter_matches(filter: &str, subject: &str) -> bool {
    let f: Vec<&str> = filter.split('.').collect();
    let s: Vec<&str> = subject.split('.').collect();
    for (i, tok) in f.iter().enumerate() {
        match *tok {
            ">" => return s.len() > i,
            "*" if i < s.len() => {}
            t if i < s.len() && s[i] == t => {}
            _ => return false,
        }
    }
    f.len() == s.len()
}

/// A session that was ready (subscribed) by `at` and lasted until the end.
fn stable_at(sessions: &[roles::Session], at: Duration) -> bool {
    sessions
        .last()
        .is_some_and(|s| s.ready.is_some_and(|r| r <= at) && s.ended.is_none_or(|e| e >= END))
}

/// The invariants over everything the clients observed.
pub fn check(sc: &Scenario, obs: &Obs, trace: &Trace) {
    // Core: in the quiet phase, delivery is complete.
    for (i, sub) in obs.subs.iter().enumerate() {
        for (&(p, seq), m) in &obs.published {
            if !m.quiet || !filter_matches(&sub.filter, &m.subject) {
                continue;
            }
            if stable_at(&sub.sessions, m.sent) && !sub.received.contains_key(&(p, seq)) {
                trace.violation(format!(
                    "sub{i}: quiet-phase message {p}.{seq} on {} never arrived",
                    m.subject
                ));
            }
        }
    }
    for (&(p, seq), m) in &obs.published {
        if !m.quiet || !m.subject.starts_with("work.") {
            continue;
        }
        let all_stable =
            !obs.workers.is_empty() && obs.workers.iter().all(|w| stable_at(w, m.sent));
        if all_stable && !obs.worked.contains_key(&(p, seq)) {
            trace.violation(format!(
                "queue group: quiet-phase message {p}.{seq} never delivered"
            ));
        }
    }
    let responders_stable =
        |at| !obs.responders.is_empty() && obs.responders.iter().all(|r| stable_at(r, at));
    let requester_stable = obs
        .requester_sessions
        .last()
        .is_some_and(|s| s.ended.is_none_or(|e| e >= END));
    for (n, &(sent, ready, answered)) in &obs.requests {
        if sent >= QUIET_PUBLISH
            && ready <= sent
            && requester_stable
            && responders_stable(sent)
            && !answered
        {
            trace.violation(format!("req0: quiet-phase request {n} never answered"));
        }
    }
    check_jetstream(sc, obs, trace);
    check_consumer(sc, obs, trace);
}

fn check_jetstream(sc: &Scenario, obs: &Obs, trace: &Trace) {
    if sc.js_publishers == 0 {
        return;
    }
    let mut by_msg: std::collections::BTreeMap<(u64, u64), u64> = Default::default();
    let mut by_seq: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
    let mut last_new: std::collections::BTreeMap<u64, u64> = Default::default();
    let restarts: Vec<Duration> = sc
        .faults
        .iter()
        .filter(|(_, f)| matches!(f, Fault::Restart))
        .map(|(t, _)| *t)
        .collect();
    let first_kept = obs.stream.as_ref().map_or(0, |v| v.first_seq);
    for a in &obs.js_acks {
        let key = (a.client, a.msg);
        if let Some(&seq) = by_msg.get(&key) {
            // Known and shared with nats-server 2.9.10: a restart rebuilds the
            // duplicate window from the messages still stored, so an id whose
            // message max_msgs already removed is forgotten, and a retry after
            // the restart is stored again.
            // (The first ack may arrive after the restart: held in the network
            // since before the crash. So any restart before the second counts.)
            let forgotten = sc.max_msgs.is_some()
                && seq < first_kept
                && seq < a.seq
                && restarts.iter().any(|r| *r < a.at);
            if seq != a.seq && forgotten {
                trace.log_at(a.at, || {
                    format!(
                        "js: j{}-{} stored again as seq {} (seq {seq} was removed by max_msgs before a restart)",
                        a.client, a.msg, a.seq
                    )
                });
            } else if seq != a.seq {
                trace.violation(format!(
                    "js: message j{}-{} acked as seq {seq} and as seq {}",
                    a.client, a.msg, a.seq
                ));
            }
        }
        by_msg.insert(key, a.seq);
        if let Some(&other) = by_seq.get(&a.seq) {
            if other != key {
                trace.violation(format!(
                    "js: seq {} acked for j{}-{} and for j{}-{}",
                    a.seq, other.0, other.1, a.client, a.msg
                ));
            }
        }
        by_seq.insert(a.seq, key);
        if !a.duplicate {
            let last = last_new.entry(a.client).or_insert(0);
            if a.seq <= *last {
                trace.violation(format!(
                    "js{}: new message acked with seq {} after seq {}",
                    a.client, a.seq, *last
                ));
            }
            *last = a.seq;
        }
    }
    for key in &obs.js_required {
        if !by_msg.contains_key(key) {
            trace.violation(format!(
                "js{}: quiet-phase message j{}-{} never acked",
                key.0, key.0, key.1
            ));
        }
    }
    let Some(view) = &obs.stream else {
        if !obs.js_acks.is_empty() {
            trace.violation("js: the stream was never read back".into());
        }
        return;
    };
    if let Some(max) = sc.max_msgs {
        if view.messages > max {
            trace.violation(format!(
                "js: {} messages stored, max_msgs {max}",
                view.messages
            ));
        }
    }
    if view.messages != view.msgs.len() as u64 {
        trace.violation(format!(
            "js: stream state says {} messages, {} found in {}..={}",
            view.messages,
            view.msgs.len(),
            view.first_seq,
            view.last_seq
        ));
    }
    let mut ids = std::collections::BTreeMap::new();
    for (seq, (_, id, _)) in &view.msgs {
        if let Some(id) = id {
            if let Some(first) = ids.insert(id.clone(), *seq) {
                trace.violation(format!(
                    "js: Nats-Msg-Id {id} stored twice (seq {first} and {seq})"
                ));
            }
        }
    }
    for (&(client, msg), &seq) in &by_msg {
        let expect_id = format!("j{client}-{msg}");
        if seq < view.first_seq || view.last_seq == 0 {
            if sc.max_msgs.is_none() {
                trace.violation(format!(
                    "js: acked {expect_id} (seq {seq}) is gone: stream holds {}..={}",
                    view.first_seq, view.last_seq
                ));
            }
            continue;
        }
        match view.msgs.get(&seq) {
            None => trace.violation(format!("js: acked {expect_id} (seq {seq}) lost")),
            Some((subject, id, data)) => {
                let sent = obs.js_sent.get(&(client, msg));
                if id.as_deref() != Some(&expect_id)
                    || subject != &format!("js.p{client}")
                    || sent != Some(data)
                {
                    trace.violation(format!(
                        "js: seq {seq} should be {expect_id}, holds {subject} id {id:?} ({} bytes)",
                        data.len()
                    ));
                }
            }
        }
    }
}

/// The consumer invariants over what the pull workers saw: an answered
/// AckSync is final; one delivery goes to one worker; delivered messages are
/// the stream's; after the faults, every stored message is delivered and acked.
fn check_consumer(sc: &Scenario, obs: &Obs, trace: &Trace) {
    if sc.js_workers == 0 {
        return;
    }
    let c = &obs.consumer;
    let restarts = &obs.server_starts;
    let mut answered: std::collections::BTreeMap<u64, Vec<&worker::AckSync>> = Default::default();
    for a in c.syncs.iter().filter(|a| a.answered.is_some()) {
        answered.entry(a.seq).or_default().push(a);
    }

    // An answered AckSync survives everything: a delivery of its sequence
    // that the server chose after sending the answer is a violation. Known
    // to be after: later on the same connection (TCP keeps the server's
    // order), or for a pull request sent after the answer arrived.
    for d in &c.deliveries {
        let Some(acks) = answered.get(&d.seq) else {
            continue;
        };
        let later = acks.iter().find(|a| {
            let (_, order) = a.answered.expect("filtered");
            (d.worker == a.worker && d.session == a.session && d.order > order) || d.asked > order
        });
        let Some(a) = later else {
            continue;
        };
        let (at, _) = a.answered.expect("filtered");
        let what = format!(
            "seq {} delivered again (delivery {} to jw{} at {:?}, pulled at {:?}) after jw{}'s AckSync of delivery {} was answered at {:?}",
            d.seq, d.count, d.worker, d.at, d.asked_at, a.worker, a.count, at
        );
        trace.violation(format!("consumer: {what}"));
    }

    // One delivery (sequence and delivery count) reaches one worker, once.
    // A restart may send it again: the count is only as durable as the
    // consumer's last snapshot. Both were chosen after their pull requests.
    let mut first: std::collections::BTreeMap<(u64, u64), &worker::Delivery> = Default::default();
    for d in &c.deliveries {
        let Some(p) = first.get(&(d.seq, d.count)) else {
            first.insert((d.seq, d.count), d);
            continue;
        };
        let (lo, hi) = (p.asked_at.min(d.asked_at), p.at.max(d.at));
        if let Some(r) = restarts.iter().find(|r| lo <= **r && **r <= hi) {
            trace.log_at(d.at, || {
                format!(
                    "consumer: seq {} delivery {} again (jw{} at {:?}, then jw{}), across the restart at {r:?}",
                    d.seq, d.count, p.worker, p.at, d.worker
                )
            });
        } else {
            trace.violation(format!(
                "consumer: seq {} delivery {} went to jw{} at {:?} and to jw{} at {:?}, with no restart between",
                d.seq, d.count, p.worker, p.at, d.worker, d.at
            ));
        }
    }

    let redelivered = c.deliveries.iter().filter(|d| d.count > 1).count();
    trace.log_at(END, || {
        format!(
            "consumer: {} deliveries ({redelivered} redeliveries), {} of {} AckSyncs answered, {} plain acks; at the end {:?}",
            c.deliveries.len(),
            c.syncs.iter().filter(|a| a.answered.is_some()).count(),
            c.syncs.len(),
            c.plain_acks.len(),
            c.info
        )
    });
    let Some(view) = &obs.stream else {
        return;
    };

    // What was delivered is what the stream stores at that sequence (or,
    // removed by max_msgs since, the message PubAck'd with it). Only
    // durable messages are delivered, so none is lost afterwards.
    let mut by_seq = std::collections::BTreeMap::new();
    for a in &obs.js_acks {
        by_seq.insert(a.seq, (a.client, a.msg));
    }
    for d in &c.deliveries {
        let expected = match view.msgs.get(&d.seq) {
            Some((subject, id, data)) => Some((subject.clone(), id.clone(), data)),
            None if d.seq < view.first_seq && sc.max_msgs.is_some() => {
                by_seq.get(&d.seq).and_then(|&(client, msg)| {
                    let data = obs.js_sent.get(&(client, msg))?;
                    Some((
                        format!("js.p{client}"),
                        Some(format!("j{client}-{msg}")),
                        data,
                    ))
                })
            }
            None => {
                trace.violation(format!(
                    "consumer: seq {} (delivered to jw{} at {:?}) is not in the stream ({}..={})",
                    d.seq, d.worker, d.at, view.first_seq, view.last_seq
                ));
                continue;
            }
        };
        if let Some((subject, id, data)) = expected {
            if subject != d.subject || id != d.id || *data != d.payload {
                trace.violation(format!(
                    "consumer: seq {} delivered to jw{} at {:?} as {} id {:?} ({} bytes), the stream holds {subject} id {id:?} ({} bytes)",
                    d.seq,
                    d.worker,
                    d.at,
                    d.subject,
                    d.id,
                    d.payload.len(),
                    data.len()
                ));
            }
        }
    }

    // Completeness needs a healthy disk (a failed write stops the stream
    // until a restart) and a worker pulling through the quiet phase.
    if sc.disk_errors() {
        return;
    }
    for (i, sessions) in c.sessions.iter().enumerate() {
        if !stable_at(sessions, QUIET_PUBLISH) {
            trace.violation(format!(
                "jw{i}: not pulling from the consumer through the quiet phase"
            ));
        }
    }
    if !c.sessions.iter().any(|s| stable_at(s, QUIET_PUBLISH)) {
        return;
    }
    let delivered: std::collections::BTreeSet<u64> = c.deliveries.iter().map(|d| d.seq).collect();
    let mut acked = c.plain_acks.clone();
    acked.extend(c.syncs.iter().map(|a| a.seq));
    for (&seq, (subject, _, _)) in &view.msgs {
        if !delivered.contains(&seq) {
            trace.violation(format!(
                "consumer: seq {seq} ({subject}) never delivered to a worker"
            ));
        } else if !acked.contains(&seq) {
            trace.violation(format!(
                "consumer: seq {seq} ({subject}) delivered but never acked"
            ));
        }
    }
    // Once everything has settled, an AckSync is answered (when its
    // connection lasts: a lost connection is a violation of its own).
    for a in &c.syncs {
        let lasted = c.sessions[a.worker]
            .get(a.session)
            .is_some_and(|s| s.ended.is_none_or(|e| e >= END));
        let settled = a.sent_at >= SAFETY_END + worker::ACK_WAIT;
        if a.answered.is_none() && lasted && settled && a.sent_at + ANSWER_MARGIN <= END {
            trace.violation(format!(
                "jw{}: AckSync of seq {} delivery {} sent at {:?} never answered",
                a.worker, a.seq, a.count, a.sent_at
            ));
        }
    }
    match &c.info {
        None => trace.violation("consumer: never read back".into()),
        Some(i) if i.error.is_some() => trace.violation(format!(
            "consumer: gone at the end: {}",
            i.error.as_deref().unwrap_or_default()
        )),
        Some(i) if i.num_ack_pending > 0 || i.num_pending > 0 => trace.violation(format!(
            "consumer: at the end {} acks pending and {} messages not delivered ({i:?})",
            i.num_ack_pending, i.num_pending
        )),
        Some(_) => {}
    }
}

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
use scenario::{END, HARD_LIMIT, QUIET_PUBLISH};
pub use trace::Trace;

/// Simulated time per step. Every host runs once per step, so this is the
/// grain of the simulation; 2 ms keeps a seed near 30 ms of CPU.
pub const TICK: Duration = Duration::from_millis(2);

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
        "pubs {} subs {} workers {} req/rsp {}/{} js {}{} | latency {:?}..{:?} | crashes {crashes} partitions {partitions} disconnects {} disk errors {} slow subs {}",
        s.publishers,
        s.subscribers.len(),
        s.queue_workers,
        s.requesters,
        s.responders,
        s.js_publishers,
        s.sync_interval.map(|d| format!(" (sync_interval {d:?})")).unwrap_or_default(),
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
        };
        sim.client(name, j.run());
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
                Fault::Restart => sim.bounce("server"),
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

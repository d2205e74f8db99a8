//! What a seed decides: the clients, the server's settings, the network's
//! latency, and the fault schedule of the safety phase.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Faults happen before this; then the network is healed and the server is up.
pub const SAFETY_END: Duration = Duration::from_millis(2000);
/// Publishers send the quiet phase's batch, which must be delivered completely.
pub const QUIET_PUBLISH: Duration = Duration::from_millis(3500);
/// Clients stop; the JetStream verifier reads the stream back.
pub const END: Duration = Duration::from_millis(4500);
/// A run that has not finished by now is a liveness failure.
pub const HARD_LIMIT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct SubSpec {
    /// The subject filter of its subscription.
    pub filter: String,
    /// Reads slowly during the safety phase (a slow consumer).
    pub slow: bool,
}

#[derive(Clone, Debug)]
pub enum Fault {
    /// Messages between a client and the server are dropped (`hold`: delayed).
    Partition {
        client: String,
        hold: bool,
    },
    Repair {
        client: String,
        hold: bool,
    },
    /// The server process is killed: unsynced writes survive (page cache).
    Kill,
    /// The server host loses power: unsynced writes are lost, maybe torn.
    PowerLoss {
        torn: Option<u64>,
    },
    /// The server starts again on the same disk.
    Restart,
    /// Writes and fsyncs fail with this probability (0: healthy).
    DiskErrors(f64),
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub publishers: usize,
    pub subscribers: Vec<SubSpec>,
    pub queue_workers: usize,
    pub requesters: usize,
    pub responders: usize,
    pub js_publishers: usize,
    /// Pull workers sharing the durable consumer `W` on the stream (0-2 when
    /// there are JetStream publishers).
    pub js_workers: usize,
    /// The stream's max_msgs (discard old), when limited.
    pub max_msgs: Option<u64>,
    pub min_latency: Duration,
    pub max_latency: Duration,
    pub max_pending: u64,
    pub ping_interval: Duration,
    pub disk_latency: Duration,
    /// JetStream's `sync_interval` (relaxed durability: acks after the write,
    /// fsync on a timer). Such runs have no power losses, only kills, since
    /// the operator traded the last interval's acks on power loss away.
    pub sync_interval: Option<Duration>,
    /// Client disconnects (by the client), by client name.
    pub disconnects: Vec<(Duration, String)>,
    /// Network, server and disk faults, in time order.
    pub faults: Vec<(Duration, Fault)>,
}

impl Scenario {
    pub fn generate(seed: u64) -> Scenario {
        let mut rng = SmallRng::seed_from_u64(seed);
        let publishers = rng.random_range(1..=3);
        let filters = ["core.>", "core.*", "core.p0", "core.p1"];
        let subscribers = (0..rng.random_range(1..=3))
            .map(|_| SubSpec {
                filter: filters[rng.random_range(0..filters.len())].to_string(),
                slow: rng.random_bool(0.15),
            })
            .collect::<Vec<_>>();
        let queue_workers = if rng.random_bool(0.6) {
            rng.random_range(2..=3)
        } else {
            0
        };
        let (requesters, responders) = if rng.random_bool(0.5) {
            (1, rng.random_range(1..=2))
        } else {
            (0, 0)
        };
        let js_publishers = if rng.random_bool(0.7) {
            rng.random_range(1..=2)
        } else {
            0
        };
        let max_msgs = rng.random_bool(0.3).then(|| rng.random_range(20..200));
        let min_latency = Duration::from_micros(rng.random_range(0..2000));
        let max_latency = min_latency + Duration::from_micros(rng.random_range(0..20_000));
        let slow = subscribers.iter().any(|s| s.slow);
        let max_pending = if slow && rng.random_bool(0.7) {
            rng.random_range(8..64) * 1024
        } else {
            64 * 1024 * 1024
        };
        let ping_interval = Duration::from_millis(rng.random_range(150..400));
        let disk_latency = [0, 100, 1000, 5000][rng.random_range(0..4)];
        let sync_interval = rng
            .random_bool(0.2)
            .then(|| Duration::from_millis(rng.random_range(5..200)));

        let mut names = Vec::new();
        names.extend((0..publishers).map(|i| format!("pub{i}")));
        names.extend((0..subscribers.len()).map(|i| format!("sub{i}")));
        names.extend((0..queue_workers).map(|i| format!("qw{i}")));
        names.extend((0..requesters).map(|i| format!("req{i}")));
        names.extend((0..responders).map(|i| format!("rsp{i}")));
        names.extend((0..js_publishers).map(|i| format!("js{i}")));

        let at = |rng: &mut SmallRng, from: u64, to: u64| {
            Duration::from_millis(rng.random_range(from..to.max(from + 1)))
        };
        let safety = SAFETY_END.as_millis() as u64;
        let mut disconnects = Vec::new();
        for _ in 0..rng.random_range(0..=3) {
            let who = names[rng.random_range(0..names.len())].clone();
            disconnects.push((at(&mut rng, 100, safety - 100), who));
        }
        disconnects.sort();

        let mut faults = Vec::new();
        for _ in 0..rng.random_range(0..=2) {
            let client = names[rng.random_range(0..names.len())].clone();
            let hold = rng.random_bool(0.5);
            let start = at(&mut rng, 100, safety - 400);
            let end = (start + at(&mut rng, 50, 800)).min(SAFETY_END - Duration::from_millis(50));
            faults.push((
                start,
                Fault::Partition {
                    client: client.clone(),
                    hold,
                },
            ));
            faults.push((end, Fault::Repair { client, hold }));
        }
        // Server crashes: one or two, each followed by a restart.
        let crashes = match rng.random_range(0..10) {
            0..=3 => 0,
            4..=7 => 1,
            8 => 2,
            _ => 3,
        };
        let mut t = 150u64;
        for _ in 0..crashes {
            if t + 300 >= safety {
                break;
            }
            let start = at(&mut rng, t, (t + 700).min(safety - 250));
            let down = at(&mut rng, 10, 400);
            let crash = if rng.random_bool(0.5) || sync_interval.is_some() {
                Fault::Kill
            } else {
                Fault::PowerLoss {
                    torn: rng.random_bool(0.5).then(|| rng.random()),
                }
            };
            faults.push((start, crash));
            let up = (start + down).min(SAFETY_END - Duration::from_millis(100));
            faults.push((up, Fault::Restart));
            t = up.as_millis() as u64 + 50;
        }
        if js_publishers > 0 && rng.random_bool(0.25) {
            let start = at(&mut rng, 100, safety - 500);
            let rate = [0.01, 0.05, 0.3][rng.random_range(0..3)];
            faults.push((start, Fault::DiskErrors(rate)));
            let end = (start + at(&mut rng, 50, 1000)).min(SAFETY_END - Duration::from_millis(50));
            faults.push((end, Fault::DiskErrors(0.0)));
        }

        // Drawn after everything above, so that a seed keeps the clients and
        // faults it had before consumers joined.
        let js_workers = if js_publishers > 0 {
            rng.random_range(0..=2)
        } else {
            0
        };
        for i in 0..js_workers {
            let who = format!("jw{i}");
            if rng.random_bool(0.3) {
                disconnects.push((at(&mut rng, 100, safety - 100), who.clone()));
            }
            if rng.random_bool(0.3) {
                let hold = rng.random_bool(0.5);
                let start = at(&mut rng, 100, safety - 400);
                let end =
                    (start + at(&mut rng, 50, 800)).min(SAFETY_END - Duration::from_millis(50));
                faults.push((
                    start,
                    Fault::Partition {
                        client: who.clone(),
                        hold,
                    },
                ));
                faults.push((end, Fault::Repair { client: who, hold }));
            }
        }
        disconnects.sort();
        faults.sort_by_key(|(t, _)| *t);

        Scenario {
            publishers,
            subscribers,
            queue_workers,
            requesters,
            responders,
            js_publishers,
            js_workers,
            max_msgs,
            min_latency,
            max_latency,
            max_pending,
            ping_interval,
            disk_latency: Duration::from_micros(disk_latency),
            sync_interval,
            disconnects,
            faults,
        }
    }

    pub fn disk_errors(&self) -> bool {
        self.faults
            .iter()
            .any(|(_, f)| matches!(f, Fault::DiskErrors(r) if *r > 0.0))
    }
}

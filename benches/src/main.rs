//! natrium-benches: a NATS load generator and a natrium vs nats-server comparison.
//!
//! `cargo run -p natrium-benches --release -- compare [--rounds N] [--quick]`
//! starts both servers on free loopback ports, runs every workload on each,
//! alternating, N rounds (5 by default), prints the medians with the
//! natrium/nats-server ratio per figure, and rewrites the results section of
//! benches/README.md and the chart in benches/results/.

mod client;
mod report;
mod servers;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use servers::{Binaries, Kind};
use workloads::{Params, Workload};

struct Opts {
    rounds: usize,
    quick: bool,
    only: Option<String>,
    natrium: Option<PathBuf>,
    nats_server: Option<PathBuf>,
    write: bool,
}

const USAGE: &str = "usage: natrium-benches compare [--rounds N] [--quick] [--only TEXT] \
[--natrium PATH] [--nats-server PATH] [--no-write]\n       natrium-benches list";

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("compare") => {}
        Some("list") => {
            for w in workloads::ALL {
                println!("{}", w.name());
            }
            std::process::exit(0);
        }
        _ => return Err(USAGE.into()),
    }
    let mut o = Opts {
        rounds: 5,
        quick: false,
        only: None,
        natrium: None,
        nats_server: None,
        write: true,
    };
    let mut rounds_given = false;
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--rounds" => {
                o.rounds = val()?.parse().map_err(|_| "--rounds takes a number")?;
                rounds_given = true;
            }
            "--quick" => o.quick = true,
            "--only" => o.only = Some(val()?),
            "--natrium" => o.natrium = Some(val()?.into()),
            "--nats-server" => o.nats_server = Some(val()?.into()),
            "--no-write" => o.write = false,
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    if o.quick && !rounds_given {
        o.rounds = 1;
    }
    if o.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let bins = match (|| {
        Ok::<_, std::io::Error>(Binaries {
            natrium: servers::find_natrium(o.natrium.clone())?,
            nats_server: servers::find_nats_server(o.nats_server.clone())?,
        })
    })() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let nofile = servers::raise_nofile();
    // Each idle connection is one descriptor here and one in the server; keep
    // room for the rest.
    let idle_conns = 10_000usize.min(nofile.saturating_sub(200) as usize);
    if idle_conns < 10_000 {
        eprintln!("RLIMIT_NOFILE is {nofile}: idle connections scaled down to {idle_conns}");
    }
    let params = Params {
        scale: if o.quick { 0.2 } else { 1.0 },
        time_limit: if o.quick {
            Duration::from_millis(700)
        } else {
            Duration::from_secs(3)
        },
        idle_conns,
    };
    let selected: Vec<Workload> = workloads::ALL
        .iter()
        .copied()
        .filter(|w| {
            o.only
                .as_ref()
                .is_none_or(|t| w.name().contains(t.as_str()))
        })
        .collect();
    eprintln!(
        "natrium: {}\nnats-server: {}\n{} workloads x {} rounds{}",
        bins.natrium.display(),
        bins.nats_server.display(),
        selected.len(),
        o.rounds,
        if o.quick { " (quick)" } else { "" }
    );
    let started = Instant::now();
    let mut results = report::Results::default();
    for round in 0..o.rounds {
        for &w in &selected {
            for &kind in w.kinds() {
                let r = run_one(&bins, w, kind, &params);
                match &r {
                    Ok(out) => eprintln!(
                        "[round {}] {:<40} {:<28} {}",
                        round + 1,
                        w.name(),
                        kind.label(),
                        report::summary(out)
                    ),
                    Err(e) => eprintln!(
                        "[round {}] {:<40} {:<28} ERROR {e}",
                        round + 1,
                        w.name(),
                        kind.label()
                    ),
                }
                results.add(w, kind, r);
            }
        }
    }
    let took = started.elapsed();
    let machine = report::Machine::detect(&bins, &o, took, &params);
    let table = results.table(&selected);
    println!("{}", table);
    if o.write {
        if let Err(e) = report::write(&results, &selected, &machine, &table) {
            eprintln!("error writing the report: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("done in {:.0} s", took.as_secs_f64());
    ExitCode::SUCCESS
}

impl Opts {
    pub fn describe(&self) -> String {
        let mut s = format!("compare --rounds {}", self.rounds);
        if self.quick {
            s.push_str(" --quick");
        }
        if let Some(t) = &self.only {
            s.push_str(&format!(" --only '{t}'"));
        }
        s
    }
}

fn run_one(
    bins: &Binaries,
    w: Workload,
    kind: Kind,
    p: &Params,
) -> std::io::Result<report::RunResult> {
    let server = servers::start(bins, kind, w.jetstream())?;
    let out = w.run(&server, p)?;
    let (_, hwm) = server.memory();
    Ok(report::RunResult { out, peak_rss: hwm })
}

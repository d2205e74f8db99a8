//! `cargo run -p natrium-sim --release -- --seeds N [--from S]`: run fresh seeds.
//! `--seed S` replays one seed and prints its event log.

use std::time::Instant;

use clap::Parser;
use natrium_engine::config::InjectedBug;
use natrium_sim::{run, Options};

#[derive(Parser)]
#[command(about = "Deterministic simulation of natrium under faults")]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Replay this one seed and print its event log.
    #[arg(long)]
    seed: Option<u64>,
    /// With --seed: run it twice and compare trace hashes.
    #[arg(long)]
    twice: bool,
    /// Stop at the first failing seed.
    #[arg(long)]
    fail_fast: bool,
    /// Print every seed's trace hash (compare two runs' outputs to check determinism).
    #[arg(long)]
    hashes: bool,
    /// Switch on a deliberate engine bug (debug builds only):
    /// ack-before-sync or deliver-after-unsub.
    #[arg(long)]
    bug: Option<String>,
}

fn replay_command(seed: u64) -> String {
    format!("cargo run -p natrium-sim --release -- --seed {seed}")
}

fn main() {
    let args = Args::parse();
    let bug = match args.bug.as_deref() {
        None => None,
        Some("ack-before-sync") => Some(InjectedBug::AckBeforeSync),
        Some("deliver-after-unsub") => Some(InjectedBug::DeliverAfterUnsub),
        Some(other) => {
            eprintln!("unknown bug {other}: ack-before-sync or deliver-after-unsub");
            std::process::exit(2);
        }
    };
    if bug.is_some() && !cfg!(debug_assertions) {
        eprintln!("--bug needs a debug build (cargo run -p natrium-sim without --release)");
        std::process::exit(2);
    }
    let opts = Options { bug };
    if let Some(seed) = args.seed {
        let r = run(seed, &opts);
        for line in &r.log {
            println!("{line}");
        }
        println!("seed {seed}: {}", r.summary);
        println!("trace hash {:016x}", r.hash);
        if args.twice {
            let again = run(seed, &opts);
            if again.hash != r.hash {
                println!("NOT DETERMINISTIC: second run hash {:016x}", again.hash);
                std::process::exit(2);
            }
            println!("second run: same hash");
        }
        for v in &r.violations {
            println!("VIOLATION: {v}");
        }
        std::process::exit(if r.ok() { 0 } else { 1 });
    }
    let started = Instant::now();
    let mut failed = Vec::new();
    for seed in args.from..args.from.saturating_add(args.seeds) {
        let r = run(seed, &opts);
        if args.hashes {
            println!(
                "seed {seed} {} trace {:016x}",
                if r.ok() { "ok" } else { "FAILED" },
                r.hash
            );
        }
        if !r.ok() {
            println!("seed {seed} FAILED ({}):", r.summary);
            for v in &r.violations {
                println!("  {v}");
            }
            println!("  replay: {}", replay_command(seed));
            failed.push(seed);
            if args.fail_fast {
                break;
            }
        }
        let done = seed - args.from + 1;
        if done % 1000 == 0 {
            println!(
                "{done} seeds, {} failed, {:.1?} elapsed",
                failed.len(),
                started.elapsed()
            );
        }
    }
    println!(
        "{} seeds from {}: {} failed {:?} in {:.1?}",
        args.seeds,
        args.from,
        failed.len(),
        failed,
        started.elapsed()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}

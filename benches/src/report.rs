//! Medians, the comparison table, benches/README.md's results section and the chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use crate::servers::{Binaries, Kind};
use crate::workloads::{Outcome, Params, Workload};
use crate::Opts;

pub struct RunResult {
    pub out: Outcome,
    /// The server's VmHWM at the end of the run (each run has a fresh server).
    pub peak_rss: u64,
}

/// Whether a larger value of a figure is better.
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Higher,
    Lower,
}

fn figures(w: Workload, r: &RunResult) -> Vec<(&'static str, f64, Better)> {
    let o = &r.out;
    let secs = o.elapsed.as_secs_f64().max(1e-9);
    let per = o.msgs.max(1) as f64;
    let mut f = Vec::new();
    let rate_name = match w {
        Workload::IdleConns => "connections/s",
        Workload::ReqReply => "requests/s",
        Workload::JsPubSync(_) | Workload::JsPubAsync(_) => "acked msgs/s",
        Workload::JsFetch(_) => "fetched+acked msgs/s",
        Workload::Pub(_) | Workload::Subs100k => "published msgs/s",
        _ => "delivered msgs/s",
    };
    f.push((rate_name, o.msgs as f64 / secs, Better::Higher));
    if let Some(b) = o.rss_per_conn {
        f.push(("server RSS per connection (KiB)", b / 1024.0, Better::Lower));
    } else {
        let unit = match w {
            Workload::ReqReply => "server CPU per request (µs)",
            Workload::Pub(_) | Workload::Subs100k => "server CPU per published msg (µs)",
            Workload::JsPubSync(_) | Workload::JsPubAsync(_) => "server CPU per acked msg (µs)",
            Workload::JsFetch(_) => "server CPU per fetched+acked msg (µs)",
            _ => "server CPU per delivered msg (µs)",
        };
        f.push((unit, o.cpu.as_secs_f64() * 1e6 / per, Better::Lower));
    }
    f.push((
        "server peak RSS (MiB)",
        r.peak_rss as f64 / (1024.0 * 1024.0),
        Better::Lower,
    ));
    if !o.latencies.is_empty() {
        let l = &o.latencies;
        let pct = |p: f64| {
            let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
            l[i].as_secs_f64() * 1e6
        };
        f.push(("latency p50 (µs)", pct(0.50), Better::Lower));
        f.push(("latency p90 (µs)", pct(0.90), Better::Lower));
        f.push(("latency p99 (µs)", pct(0.99), Better::Lower));
        f.push(("latency p99.9 (µs)", pct(0.999), Better::Lower));
        f.push(("latency max (µs)", pct(1.0), Better::Lower));
    }
    f
}

pub fn summary(r: &RunResult) -> String {
    let o = &r.out;
    let mut s = format!(
        "{} in {:.2} s = {:.0}/s, server cpu {:.2} s, peak rss {:.1} MiB",
        o.msgs,
        o.elapsed.as_secs_f64(),
        o.msgs as f64 / o.elapsed.as_secs_f64().max(1e-9),
        o.cpu.as_secs_f64(),
        r.peak_rss as f64 / 1048576.0
    );
    if let Some(b) = o.rss_per_conn {
        let _ = write!(s, ", {:.1} KiB/conn", b / 1024.0);
    }
    if !o.latencies.is_empty() {
        let _ = write!(s, ", p50 {:?}", o.latencies[o.latencies.len() / 2]);
    }
    if let Some(n) = &o.note {
        let _ = write!(s, " ({n})");
    }
    s
}

#[derive(Default)]
struct Cell {
    /// figure name -> (values over rounds, direction)
    figures: BTreeMap<&'static str, (Vec<f64>, Better)>,
    order: Vec<&'static str>,
    notes: Vec<String>,
    errors: Vec<String>,
}

#[derive(Default)]
pub struct Results {
    cells: BTreeMap<(String, Kind), Cell>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1} k", x / 1e3)
    } else if a >= 100.0 {
        format!("{:.0}", x)
    } else if a >= 10.0 {
        format!("{:.1}", x)
    } else {
        format!("{:.2}", x)
    }
}

/// One row of the comparison.
struct Row {
    workload: String,
    variant: Kind,
    figure: &'static str,
    natrium: Option<f64>,
    nats: Option<f64>,
    better: Better,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        match (self.natrium, self.nats) {
            (Some(a), Some(b)) if b != 0.0 => Some(a / b),
            _ => None,
        }
    }
}

impl Results {
    pub fn add(&mut self, w: Workload, kind: Kind, r: io::Result<RunResult>) {
        let cell = self.cells.entry((w.name(), kind)).or_default();
        match r {
            Ok(r) => {
                for (name, v, b) in figures(w, &r) {
                    let e = cell.figures.entry(name).or_insert_with(|| (Vec::new(), b));
                    e.0.push(v);
                    if !cell.order.contains(&name) {
                        cell.order.push(name);
                    }
                }
                if let Some(n) = r.out.note {
                    if !cell.notes.contains(&n) {
                        cell.notes.push(n);
                    }
                }
            }
            Err(e) => cell.errors.push(e.to_string()),
        }
    }

    fn rows(&self, selected: &[Workload]) -> Vec<Row> {
        let mut rows = Vec::new();
        for w in selected {
            let name = w.name();
            let nats = self.cells.get(&(name.clone(), Kind::NatsServer));
            for &variant in w.kinds().iter().filter(|k| **k != Kind::NatsServer) {
                let nat = self.cells.get(&(name.clone(), variant));
                let order = nat
                    .map(|c| c.order.clone())
                    .filter(|o| !o.is_empty())
                    .or_else(|| nats.map(|c| c.order.clone()))
                    .unwrap_or_default();
                for fig in order {
                    let get = |c: Option<&Cell>| {
                        c.and_then(|c| c.figures.get(fig)).map(|(v, _)| median(v))
                    };
                    let better = nat
                        .or(nats)
                        .and_then(|c| c.figures.get(fig))
                        .map(|x| x.1)
                        .unwrap_or(Better::Higher);
                    rows.push(Row {
                        workload: name.clone(),
                        variant,
                        figure: fig,
                        natrium: get(nat),
                        nats: get(nats),
                        better,
                    });
                }
            }
        }
        rows
    }

    /// natrium's two runtimes side by side: medians on runtime-tokio (the
    /// default) and runtime-mio, and mio / tokio.
    fn runtime_table(&self, selected: &[Workload]) -> String {
        let rows = self.rows(selected);
        let mut s = String::new();
        for r in rows.iter().filter(|r| r.variant == Kind::NatriumMio) {
            let tokio = rows
                .iter()
                .find(|t| {
                    t.variant == Kind::Natrium && t.workload == r.workload && t.figure == r.figure
                })
                .and_then(|t| t.natrium);
            let ratio = match (r.natrium, tokio) {
                (Some(m), Some(t)) if t != 0.0 => format!("{:.2}", m / t),
                _ => "–".into(),
            };
            let opt = |x: Option<f64>| x.map(fmt_num).unwrap_or_else(|| "error".into());
            let dir = match r.better {
                Better::Higher => "↑",
                Better::Lower => "↓",
            };
            let _ = writeln!(
                s,
                "| {} | {} {} | {} | {} | {} |",
                r.workload,
                r.figure,
                dir,
                opt(tokio),
                opt(r.natrium),
                ratio
            );
        }
        if s.is_empty() {
            return s;
        }
        format!(
            "\nnatrium's runtimes (same runs as above): tokio is the default, mio is `--runtime mio`.\n\n| workload | figure | runtime-tokio | runtime-mio | mio / tokio |\n|---|---|--:|--:|--:|\n{s}"
        )
    }

    /// The Markdown table of medians and ratios, then notes and errors.
    pub fn table(&self, selected: &[Workload]) -> String {
        let mut s = String::new();
        s.push_str("| workload | figure | natrium | nats-server | natrium / nats-server |\n");
        s.push_str("|---|---|--:|--:|--:|\n");
        let opt = |x: Option<f64>| x.map(fmt_num).unwrap_or_else(|| "error".into());
        for r in self.rows(selected) {
            let wl = if r.variant == Kind::NatriumRelaxed {
                format!("{} [natrium sync_interval 2m]", r.workload)
            } else if r.variant == Kind::NatriumMio {
                format!("{} [natrium runtime mio]", r.workload)
            } else if r.workload.starts_with("JS") && r.workload.ends_with("file") {
                format!("{} [natrium default: fsync before ack]", r.workload)
            } else {
                r.workload.clone()
            };
            let ratio = match r.ratio() {
                Some(x) => {
                    let good = match r.better {
                        Better::Higher => x >= 1.0,
                        Better::Lower => x <= 1.0,
                    };
                    format!("{:.2}{}", x, if good { "" } else { " ✗" })
                }
                None => "–".into(),
            };
            let dir = match r.better {
                Better::Higher => "↑",
                Better::Lower => "↓",
            };
            let _ = writeln!(
                s,
                "| {} | {} {} | {} | {} | {} |",
                wl,
                r.figure,
                dir,
                opt(r.natrium),
                opt(r.nats),
                ratio
            );
        }
        s.push_str(&self.runtime_table(selected));
        let mut notes = String::new();
        for ((w, k), c) in &self.cells {
            for n in &c.notes {
                let _ = writeln!(notes, "- {w}, {}: {n}", k.label());
            }
            for e in &c.errors {
                let _ = writeln!(notes, "- {w}, {}: run failed: {e}", k.label());
            }
        }
        if !notes.is_empty() {
            s.push_str("\nNotes from the runs:\n\n");
            s.push_str(&notes);
        }
        s
    }
}

pub struct Machine {
    pub text: String,
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
            t.push_str(&String::from_utf8_lossy(&o.stderr));
            t.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

impl Machine {
    pub fn detect(bins: &Binaries, o: &Opts, took: Duration, p: &Params) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let mem = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / 1048576.0))
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
        let nats_v = first_line(&bins.nats_server.to_string_lossy(), &["--version"]);
        let commit = first_line("git", &["rev-parse", "--short", "HEAD"]);
        let text = format!(
            "- Date: {date}; natrium at commit {commit}; reference {nats_v}\n\
             - Machine: {cores} cores ({model}), {mem} memory, Linux {}\n\
             - Command: `cargo run -p natrium-benches --release -- {}` ({:.0} s; \
               runs capped at {:.1} s each, counts x{}, {} idle connections)\n\
             - Client and servers share these {cores} cores: the load generator competes with \
               the server for CPU, which distorts absolute numbers (both servers alike).",
            kernel.trim(),
            o.describe(),
            took.as_secs_f64(),
            p.time_limit.as_secs_f64(),
            p.scale,
            p.idle_conns,
        );
        Machine { text }
    }
}

const START: &str = "<!-- results:start -->";
const END: &str = "<!-- results:end -->";
const CHART: &str = "results/ratios.svg";

pub fn write(
    results: &Results,
    selected: &[Workload],
    machine: &Machine,
    table: &str,
) -> io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("results"))?;
    chart(results, selected, &dir.join(CHART))?;
    let readme = dir.join("README.md");
    let old = std::fs::read_to_string(&readme).unwrap_or_default();
    let section = format!(
        "{START}\n{}\n\nMedians over the rounds; ratio = natrium / nats-server; ↑ higher is better, \
         ↓ lower is better; ✗ marks a figure where natrium does worse.\n\n{}\n![ratios]({CHART})\n{END}",
        machine.text, table
    );
    let new = match (old.find(START), old.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &old[..a], section, &old[b + END.len()..]),
        _ => format!("{old}\n## Results\n\n{section}\n"),
    };
    std::fs::write(&readme, new)?;
    eprintln!(
        "wrote {} and {}",
        readme.display(),
        dir.join(CHART).display()
    );
    Ok(())
}

/// Horizontal bars: per workload, natrium / nats-server for throughput, server
/// CPU per message and peak RSS. The line at 1.0 is parity.
fn chart(results: &Results, selected: &[Workload], path: &Path) -> io::Result<()> {
    struct Bar {
        label: String,
        vals: [Option<f64>; 3],
    }
    let mut bars: Vec<Bar> = Vec::new();
    for r in results.rows(selected) {
        let label = if r.variant == Kind::NatriumRelaxed {
            format!("{} (sync 2m)", r.workload)
        } else if r.variant == Kind::NatriumMio {
            format!("{} (mio)", r.workload)
        } else {
            r.workload.clone()
        };
        let slot = if r.figure.ends_with("/s") {
            0
        } else if r.figure.starts_with("server CPU") || r.figure.starts_with("server RSS per") {
            1
        } else if r.figure.starts_with("server peak RSS") {
            2
        } else {
            continue;
        };
        if bars.last().is_none_or(|b| b.label != label) {
            bars.push(Bar {
                label,
                vals: [None; 3],
            });
        }
        bars.last_mut().unwrap().vals[slot] = r.ratio();
    }
    let (w, row_h, top, left) = (1000i32, 36i32, 70i32, 330i32);
    let h = top + row_h * bars.len() as i32 + 40;
    // Log2 scale from 1/8 to 32: bars grow from parity (1.0) either way.
    let (lo, hi) = (-3.0f64, 5.0f64);
    let plot_w = (w - left - 40) as f64;
    let x = |v: f64| left + ((v.log2().clamp(lo, hi) - lo) / (hi - lo) * plot_w) as i32;
    let err = |e: DrawingAreaErrorKind<_>| io::Error::other(format!("chart: {e:?}"));
    let root = SVGBackend::new(path, (w as u32, h as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let font = ("sans-serif", 13).into_font();
    let colors = [
        RGBColor(52, 101, 164),
        RGBColor(230, 126, 34),
        RGBColor(120, 120, 120),
    ];
    let names = [
        "throughput (higher: natrium faster)",
        "server CPU per msg / RSS per conn (lower: natrium cheaper)",
        "server peak RSS (lower: natrium smaller)",
    ];
    root.draw(&Text::new(
        "natrium / nats-server, log scale (red line = parity)",
        (10, 10),
        ("sans-serif", 18).into_font(),
    ))
    .map_err(err)?;
    for (i, n) in names.iter().enumerate() {
        let lx = 10 + i as i32 * 330;
        root.draw(&Rectangle::new(
            [(lx, 40), (lx + 12, 52)],
            colors[i].filled(),
        ))
        .map_err(err)?;
        root.draw(&Text::new(*n, (lx + 16, 40), font.clone()))
            .map_err(err)?;
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + i as i32 * row_h;
        root.draw(&Text::new(b.label.clone(), (10, y + 10), font.clone()))
            .map_err(err)?;
        for (j, v) in b.vals.iter().enumerate() {
            let Some(v) = v else { continue };
            let y0 = y + 3 + j as i32 * 10;
            let (a, z) = (x(1.0).min(x(*v)), x(1.0).max(x(*v)));
            root.draw(&Rectangle::new(
                [(a, y0), (z.max(a + 1), y0 + 9)],
                colors[j].filled(),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                format!("{v:.2}"),
                (z + 3, y0 - 1),
                ("sans-serif", 9).into_font(),
            ))
            .map_err(err)?;
        }
    }
    let bottom = top + row_h * bars.len() as i32;
    root.draw(&PathElement::new(
        vec![(left, top - 5), (left, bottom)],
        BLACK,
    ))
    .map_err(err)?;
    for e in lo as i32..=hi as i32 {
        let t = 2f64.powi(e);
        let style = if e == 0 {
            ShapeStyle::from(&RED).stroke_width(2)
        } else {
            ShapeStyle::from(&RGBColor(200, 200, 200)).stroke_width(1)
        };
        root.draw(&PathElement::new(
            vec![(x(t), top - 5), (x(t), bottom)],
            style,
        ))
        .map_err(err)?;
        let label = if e < 0 {
            format!("1/{}", 1 << -e)
        } else {
            format!("{}", 1 << e)
        };
        root.draw(&Text::new(label, (x(t) - 6, bottom + 6), font.clone()))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

//! Per-test results and the generated scenario x client x server table in
//! conformance/README.md.
//!
//! Every scenario test writes one file under [`results_dir`] when it ends
//! (pass, or fail when it panicked). `cargo run -p natrium-conformance --bin
//! conformance-table` turns the files into a Markdown table and rewrites it
//! between the marker comments in the README. scripts/test empties the
//! directory before the tests and runs the generator after them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::Target;

pub const ASYNC_NATS: &str = "async-nats";
pub const NATS_GO: &str = "nats.go";
pub const NATS_PY: &str = "nats-py";
pub const RAW_TCP: &str = "raw TCP";

/// Column order of the table.
pub const CLIENTS: [&str; 4] = [ASYNC_NATS, NATS_GO, NATS_PY, RAW_TCP];
pub const SERVERS: [&str; 2] = ["natrium", "nats-server"];

pub const TABLE_START: &str = "<!-- conformance-table:start -->";
pub const TABLE_END: &str = "<!-- conformance-table:end -->";

/// `$NATRIUM_CONFORMANCE_RESULTS`, else `<target dir>/conformance-results`.
pub fn results_dir() -> PathBuf {
    match std::env::var_os("NATRIUM_CONFORMANCE_RESULTS").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => crate::target_dir().join("conformance-results"),
    }
}

/// Records the outcome of one scenario test when dropped.
pub struct Record {
    client: &'static str,
    scenario: &'static str,
    target: Target,
}

impl Record {
    pub fn new(client: &'static str, scenario: &'static str, target: Target) -> Record {
        let client = if client == ASYNC_NATS && scenario.starts_with("raw_") {
            RAW_TCP
        } else {
            client
        };
        Record {
            client,
            scenario,
            target,
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let result = if std::thread::panicking() {
            "fail"
        } else {
            "pass"
        };
        let dir = results_dir();
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let slug: String = format!("{}.{}.{}", self.client, self.scenario, self.target.name())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let line = format!(
            "{}\t{}\t{}\t{}\n",
            self.client,
            self.scenario,
            self.target.name(),
            result
        );
        let tmp = dir.join(format!(".{slug}.{}", std::process::id()));
        if std::fs::write(&tmp, line).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join(slug));
        }
    }
}

/// (scenario, client, server) -> passed
pub type Results = BTreeMap<(String, String, String), bool>;

/// Read every result file in `dir`.
pub fn read_results(dir: &Path) -> Results {
    let mut out = Results::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() == 4 {
                out.insert(
                    (f[1].to_string(), f[0].to_string(), f[2].to_string()),
                    f[3] == "pass",
                );
            }
        }
    }
    out
}

/// The Markdown table: one row per scenario (sorted), one column per
/// client x server. ✅ pass, ❌ fail, — not run / not applicable.
pub fn render_table(results: &Results) -> String {
    let scenarios: BTreeSet<&str> = results.keys().map(|k| k.0.as_str()).collect();
    let mut clients: Vec<String> = CLIENTS.iter().map(|c| c.to_string()).collect();
    for k in results.keys() {
        if !clients.contains(&k.1) {
            clients.push(k.1.clone());
        }
    }
    let mut out = String::from("| scenario |");
    for c in &clients {
        for s in SERVERS {
            out.push_str(&format!(" {c} / {s} |"));
        }
    }
    out.push_str("\n|---|");
    for _ in 0..clients.len() * SERVERS.len() {
        out.push_str(":-:|");
    }
    out.push('\n');
    let (mut pass, mut fail) = (0, 0);
    for sc in &scenarios {
        out.push_str(&format!("| `{sc}` |"));
        for c in &clients {
            for s in SERVERS {
                let cell = match results.get(&(sc.to_string(), c.clone(), s.to_string())) {
                    Some(true) => {
                        pass += 1;
                        "✅"
                    }
                    Some(false) => {
                        fail += 1;
                        "❌"
                    }
                    None => "—",
                };
                out.push_str(&format!(" {cell} |"));
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{} scenarios, {pass} passed, {fail} failed.\n",
        scenarios.len()
    ));
    out
}

/// Replace the text between [`TABLE_START`] and [`TABLE_END`] in `readme`.
pub fn replace_table(readme: &str, table: &str) -> Option<String> {
    let start = readme.find(TABLE_START)? + TABLE_START.len();
    let end = readme[start..].find(TABLE_END)? + start;
    Some(format!("{}\n{}{}", &readme[..start], table, &readme[end..]))
}

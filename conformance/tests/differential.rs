//! Differential protocol corpus: every `corpus/*.txt` case is replayed as raw
//! bytes against natrium and against the reference nats-server 2.9.10; the
//! normalised outputs must be byte-for-byte equal, except for the cases listed
//! in `DIFFERENCES.md`. The case format is described in `corpus/README.md`.
//!
//! Environment: `CORPUS_FILTER=<substring>` runs only matching cases;
//! `CORPUS_SHOW=1` prints every case's output. Binaries are chosen as in the
//! rest of the crate (`NATRIUM_TEST_SERVER`, `NATRIUM_BIN`, `NATS_SERVER_BIN`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natrium_conformance::tokio;
use natrium_conformance::{Server, Spec, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

/// A connection is done when nothing arrived for this long (or it closed).
const QUIET: Duration = Duration::from_millis(300);
/// Upper bound for collecting output after the last step of a case.
const COLLECT_LIMIT: Duration = Duration::from_secs(3);
/// Upper bound for a `? text` wait and for the first INFO.
const WAIT_LIMIT: Duration = Duration::from_secs(2);
/// Default pause between chunks in split mode.
const SPLIT_DELAY: Duration = Duration::from_millis(2);
/// Cases run in sequence on one server pair, at most this many per pair.
const SHARD: usize = 8;
/// Server pairs in use at the same time.
const PARALLEL: usize = 8;

/// One step of a case.
#[derive(Debug, Clone)]
enum Step {
    /// Bytes to write on the current connection (consecutive sends are one write).
    Send(Vec<u8>),
    /// Sleep.
    Pause(Duration),
    /// Write in chunks of `size` bytes, `delay` apart (`None` = whole writes).
    Split(Option<(usize, Duration)>),
    /// Switch to connection `n` (opened and its INFO awaited on first use).
    Conn(usize),
    /// Wait until the current connection received `text` since the last wait.
    Wait(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    description: String,
    config: Option<String>,
    steps: Vec<Step>,
}

fn unescape(s: &str, path: &Path, lineno: usize) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let bad = || -> ! { panic!("{}:{lineno}: bad escape in {s:?}", path.display()) };
        match b.get(i + 1) {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b's') => out.push(b' '),
            Some(b'0') => out.push(0),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = s.get(i + 2..i + 4).unwrap_or_else(|| bad());
                out.push(u8::from_str_radix(hex, 16).unwrap_or_else(|_| bad()));
                i += 2;
            }
            _ => bad(),
        }
        i += 2;
    }
    out
}

fn parse_case(path: &Path) -> Case {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let mut description = String::new();
    let mut config: Vec<String> = Vec::new();
    let mut steps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let fail = |what: &str| -> ! { panic!("{}:{lineno}: {what}: {line:?}", path.display()) };
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim();
            if let Some(cfg) = rest.strip_prefix("config:") {
                config.push(cfg.trim().to_string());
            } else if description.is_empty() {
                description = rest.to_string();
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(">>") {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            steps.push(Step::Send(unescape(rest, path, lineno)));
        } else if let Some(rest) = line.strip_prefix('>') {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            let mut bytes = unescape(rest, path, lineno);
            bytes.extend_from_slice(b"\r\n");
            steps.push(Step::Send(bytes));
        } else if let Some(rest) = line.strip_prefix('~') {
            let ms: u64 = rest.trim().parse().unwrap_or_else(|_| fail("bad pause"));
            steps.push(Step::Pause(Duration::from_millis(ms)));
        } else if let Some(rest) = line.strip_prefix('?') {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            steps.push(Step::Wait(unescape(rest, path, lineno)));
        } else if let Some(rest) = line.strip_prefix('=') {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                ["whole"] => steps.push(Step::Split(None)),
                ["split", n] | ["split", n, _] => {
                    let n: usize = n.parse().unwrap_or_else(|_| fail("bad chunk size"));
                    let delay = match words.get(2) {
                        Some(ms) => {
                            Duration::from_millis(ms.parse().unwrap_or_else(|_| fail("bad delay")))
                        }
                        None => SPLIT_DELAY,
                    };
                    if n == 0 {
                        fail("chunk size 0");
                    }
                    steps.push(Step::Split(Some((n, delay))));
                }
                ["conn", n] => {
                    steps.push(Step::Conn(n.parse().unwrap_or_else(|_| fail("bad conn"))))
                }
                _ => fail("unknown directive"),
            }
        } else {
            fail("unknown line kind");
        }
    }
    if description.is_empty() {
        panic!(
            "{}: first comment line must describe the case",
            path.display()
        );
    }
    let config = if config.is_empty() {
        None
    } else {
        Some(config.join("\n") + "\n")
    };
    Case {
        name,
        description,
        config,
        steps,
    }
}

/// Everything one connection received.
#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    closed: bool,
    last: Option<Instant>,
}

struct Conn {
    writer: Option<OwnedWriteHalf>,
    rx: Arc<Mutex<Received>>,
    /// Offset in `rx.bytes` after the last satisfied `?` wait.
    waited: usize,
    reader: tokio::task::JoinHandle<()>,
}

impl Conn {
    async fn open(port: u16) -> Conn {
        let stream = tokio::time::timeout(WAIT_LIMIT, TcpStream::connect(("127.0.0.1", port)))
            .await
            .expect("connect timeout")
            .expect("connect");
        stream.set_nodelay(true).ok();
        let (mut r, w) = stream.into_split();
        let rx = Arc::new(Mutex::new(Received::default()));
        let rx2 = rx.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = r.read(&mut buf).await.unwrap_or(0);
                let mut g = rx2.lock().unwrap();
                g.last = Some(Instant::now());
                if n == 0 {
                    // EOF and connection reset are both "closed".
                    g.closed = true;
                    return;
                }
                g.bytes.extend_from_slice(&buf[..n]);
            }
        });
        let mut conn = Conn {
            writer: Some(w),
            rx,
            waited: 0,
            reader,
        };
        // Behave like a client: wait for the INFO line before talking.
        conn.wait_for(b"\r\n", WAIT_LIMIT).await;
        conn.waited = 0;
        conn
    }

    async fn wait_for(&mut self, text: &[u8], limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            {
                let g = self.rx.lock().unwrap();
                let hay = &g.bytes[self.waited.min(g.bytes.len())..];
                if let Some(pos) = hay.windows(text.len()).position(|w| w == text) {
                    self.waited += pos + text.len();
                    return;
                }
                if g.closed || Instant::now() > deadline {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn send(&mut self, bytes: &[u8], split: Option<(usize, Duration)>) {
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        let ok = match split {
            None => w.write_all(bytes).await.is_ok(),
            Some((n, delay)) => {
                let mut ok = true;
                for chunk in bytes.chunks(n) {
                    if w.write_all(chunk).await.is_err() {
                        ok = false;
                        break;
                    }
                    tokio::time::sleep(delay).await;
                }
                ok
            }
        };
        if !ok {
            // The server closed the connection; what it sent is still recorded.
            self.writer = None;
        }
    }
}

/// Run `case` against the server on `port`; returns the normalised output.
async fn run_case(case: &Case, port: u16) -> String {
    // Connections are opened on first use, so a case may start with a pause.
    let mut conns: BTreeMap<usize, Conn> = BTreeMap::new();
    let mut cur = 1;
    async fn conn(conns: &mut BTreeMap<usize, Conn>, n: usize, port: u16) -> &mut Conn {
        if let std::collections::btree_map::Entry::Vacant(e) = conns.entry(n) {
            e.insert(Conn::open(port).await);
        }
        conns.get_mut(&n).unwrap()
    }
    let mut split = None;
    // Consecutive sends are one write; any other step flushes them first.
    let mut pending: Vec<u8> = Vec::new();
    for step in &case.steps {
        if let Step::Send(b) = step {
            pending.extend_from_slice(b);
            continue;
        }
        if !pending.is_empty() {
            conn(&mut conns, cur, port)
                .await
                .send(&pending, split)
                .await;
            pending.clear();
        }
        match step {
            Step::Send(_) => unreachable!(),
            Step::Pause(d) => tokio::time::sleep(*d).await,
            Step::Split(s) => split = *s,
            Step::Conn(n) => {
                cur = *n;
                conn(&mut conns, cur, port).await;
            }
            Step::Wait(t) => {
                conn(&mut conns, cur, port)
                    .await
                    .wait_for(t, WAIT_LIMIT)
                    .await
            }
        }
    }
    if !pending.is_empty() || conns.is_empty() {
        conn(&mut conns, cur, port)
            .await
            .send(&pending, split)
            .await;
    }
    // Collect until every connection is closed or quiet.
    let start = Instant::now();
    loop {
        let now = Instant::now();
        let done = conns.values().all(|c| {
            let g = c.rx.lock().unwrap();
            g.closed || now.duration_since(g.last.unwrap_or(start).max(start)) >= QUIET
        });
        if done || now.duration_since(start) > COLLECT_LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let multi = conns.len() > 1;
    let mut out = String::new();
    for (n, c) in conns {
        c.reader.abort();
        let g = c.rx.lock().unwrap();
        if multi {
            out.push_str(&format!("[conn {n}]\n"));
        }
        out.push_str(&render(&normalise(&g.bytes)));
        if g.closed {
            out.push_str("<EOF>\n");
        }
    }
    out
}

/// Fields of INFO that legitimately differ between servers or runs.
const MASKED: &[&str] = &["server_id", "nonce", "client_id", "port", "version", "go"];

/// Mask the volatile INFO fields in place, keeping key order and all other
/// bytes. `server_name` is masked only when it equals `server_id`.
fn normalise(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    let mut at_line_start = true;
    while !rest.is_empty() {
        if at_line_start && rest.starts_with(b"INFO ") {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .map(|p| p + 2)
                .unwrap_or(rest.len());
            let line = String::from_utf8_lossy(&rest[..end]).into_owned();
            out.extend_from_slice(mask_info(&line).as_bytes());
            rest = &rest[end..];
            at_line_start = true;
            continue;
        }
        let b = rest[0];
        out.push(b);
        at_line_start = b == b'\n';
        rest = &rest[1..];
    }
    out
}

/// Extent (start, end) of the JSON value of top-level-ish key `key` in `s`.
fn value_span(s: &str, key: &str) -> Option<(usize, usize)> {
    let pat = format!("\"{key}\":");
    let start = s.find(&pat)? + pat.len();
    let b = s.as_bytes();
    let mut i = start;
    if b.get(i) == Some(&b'"') {
        i += 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => return Some((start, i + 1)),
                _ => i += 1,
            }
        }
        None
    } else {
        while i < b.len() && !matches!(b[i], b',' | b'}') {
            i += 1;
        }
        Some((start, i))
    }
}

fn mask_info(line: &str) -> String {
    let mut s = line.to_string();
    let id = value_span(&s, "server_id").map(|(a, b)| s[a..b].to_string());
    let name = value_span(&s, "server_name").map(|(a, b)| s[a..b].to_string());
    let mut keys: Vec<&str> = MASKED.to_vec();
    if id.is_some() && id == name {
        keys.push("server_name");
    }
    for key in keys {
        if let Some((a, b)) = value_span(&s, key) {
            s.replace_range(a..b, &format!("\"<{key}>\""));
        }
    }
    s
}

/// Bytes as readable text: printable ASCII as is, `\r`, `\n` (followed by a
/// real line break), `\t`, `\\` and `\xNN` for everything else.
fn render(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if !s.is_empty() && !s.ends_with('\n') {
        s.push_str("<no line end>\n");
    }
    s
}

/// Minimal line diff (LCS); `-` is nats-server, `+` is natrium.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("   {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("  -{}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("  +{}\n", b[j]));
            j += 1;
        }
    }
    out
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn load_cases() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("read corpus dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    paths.iter().map(|p| parse_case(p)).collect()
}

/// Case names listed in DIFFERENCES.md: list items starting with `` `name` ``.
fn allowed_differences() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("DIFFERENCES.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("- `") else {
            continue;
        };
        if let Some(end) = rest.find('`') {
            names.insert(rest[..end].to_string());
        }
    }
    names
}

struct Outcome {
    case: Case,
    natrium: String,
    reference: String,
}

async fn run_shard(cases: Vec<Case>) -> Vec<Outcome> {
    let spec = || match &cases[0].config {
        Some(c) => Spec::config(c),
        None => Spec::new(),
    };
    let (nat, refr) = tokio::join!(
        Server::start(Target::Natrium, spec()),
        Server::start(Target::NatsServer, spec())
    );
    let mut out = Vec::new();
    for case in cases {
        let (natrium, reference) =
            tokio::join!(run_case(&case, nat.port), run_case(&case, refr.port));
        out.push(Outcome {
            case,
            natrium,
            reference,
        });
    }
    out
}

#[test]
fn differential_corpus() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let filter = std::env::var("CORPUS_FILTER").unwrap_or_default();
    let show = std::env::var_os("CORPUS_SHOW").is_some();
    let mut cases = load_cases();
    let total = cases.len();
    let allowed = allowed_differences();
    let names: BTreeSet<String> = cases.iter().map(|c| c.name.clone()).collect();
    let unknown: Vec<&String> = allowed.difference(&names).collect();
    assert!(
        unknown.is_empty(),
        "DIFFERENCES.md lists cases that do not exist: {unknown:?}"
    );
    cases.retain(|c| c.name.contains(&filter));

    // Group by config, then shard each group.
    let mut groups: BTreeMap<Option<String>, Vec<Case>> = BTreeMap::new();
    for c in cases {
        groups.entry(c.config.clone()).or_default().push(c);
    }
    let shards: Vec<Vec<Case>> = groups
        .into_values()
        .flat_map(|g| g.chunks(SHARD).map(|c| c.to_vec()).collect::<Vec<_>>())
        .collect();

    let started = Instant::now();
    let mut outcomes: Vec<Outcome> = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut tasks = Vec::new();
        for shard in shards {
            let sem = sem.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.unwrap();
                run_shard(shard).await
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("shard task panicked"));
        }
        all
    });
    outcomes.sort_by(|a, b| a.case.name.cmp(&b.case.name));

    let mut failed = Vec::new();
    let mut deliberate = Vec::new();
    let mut stale = Vec::new();
    for o in &outcomes {
        let same = o.natrium == o.reference;
        if show {
            println!(
                "=== {} ({}){}\n{}",
                o.case.name,
                o.case.description,
                if same { "" } else { " DIFFERS" },
                o.reference
            );
        }
        if same {
            if allowed.contains(&o.case.name) {
                stale.push(o.case.name.clone());
            }
            continue;
        }
        let allowed_here = allowed.contains(&o.case.name);
        println!(
            "--- {} ({}){}\n  (- nats-server, + natrium)\n{}",
            o.case.name,
            o.case.description,
            if allowed_here {
                " [deliberate, DIFFERENCES.md]"
            } else {
                ""
            },
            diff(&o.reference, &o.natrium)
        );
        if allowed_here {
            deliberate.push(o.case.name.clone());
        } else {
            failed.push(o.case.name.clone());
        }
    }
    println!(
        "corpus: {} cases run ({} in corpus) in {:.1?}; {} match, {} deliberate differences, {} mismatches",
        outcomes.len(),
        total,
        started.elapsed(),
        outcomes.len() - failed.len() - deliberate.len(),
        deliberate.len(),
        failed.len()
    );
    if !stale.is_empty() {
        println!("note: listed in DIFFERENCES.md but identical now: {stale:?}");
    }
    assert!(
        failed.is_empty(),
        "{} corpus cases differ from nats-server: {failed:?}",
        failed.len()
    );
}

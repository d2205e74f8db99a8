//! Scenario programs written against other client libraries: nats.go (Go,
//! from Debian packages, built offline in GOPATH mode) and nats-py (Python,
//! in a virtualenv under the target dir). Each is ONE program taking
//! `<scenario> <url>`; it prints progress lines and finally `OK` or
//! `FAIL: <reason>` and exits non-zero on failure. The environment variable
//! `NATRIUM_CONFORMANCE_SERVER` ([`SERVER_KIND_ENV`]) is `natrium` or
//! `nats-server`, for the few checks that differ by server.
//!
//! - Go: sources in `conformance/clients/go/src/natrium-conformance/scenario`,
//!   built with `GO111MODULE=off GOPATH=conformance/clients/go:/usr/share/gocode`
//!   into `<target>/conformance-go/scenario`, rebuilt when a source is newer.
//!   `NATRIUM_GO` overrides the `go` binary.
//! - Python: `conformance/clients/python/scenario.py`, run by `$NATRIUM_PY`,
//!   else `<target>/conformance-venv/bin/python` (created with
//!   `python3 -m venv` and `pip install nats-py==NATS_PY_VERSION` when missing).
//!
//! Builds and venv creation are serialized across the test processes that
//! nextest starts in parallel with a lock directory, and done once per
//! process.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::results::{NATS_GO, NATS_PY};
use crate::Server;

/// nats-py version installed into the virtualenv (scripts/test pins the same).
pub const NATS_PY_VERSION: &str = "2.16.0";

/// Environment variable telling a scenario program which server it talks
/// to (`natrium` or `nats-server`, see [`Server::is_natrium`]), for the
/// checks marked `KNOWN DIFFERENCE` (conformance/DIFFERENCES.md).
pub const SERVER_KIND_ENV: &str = "NATRIUM_CONFORMANCE_SERVER";

/// Bound for one client program run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(27);

/// A client library with a scenario program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientLib {
    Go,
    Python,
}

impl ClientLib {
    /// Column label in the results table.
    pub const fn label(self) -> &'static str {
        match self {
            ClientLib::Go => NATS_GO,
            ClientLib::Python => NATS_PY,
        }
    }

    fn from_label(label: &str) -> Option<ClientLib> {
        match label {
            NATS_GO => Some(ClientLib::Go),
            NATS_PY => Some(ClientLib::Python),
            _ => None,
        }
    }

    /// The command that runs scenario `name` against `url` (building the
    /// program or creating the venv first if needed).
    fn command(self, name: &str, url: &str) -> Command {
        match self {
            ClientLib::Go => {
                let mut c = Command::new(go_program());
                c.arg(name).arg(url);
                c
            }
            ClientLib::Python => {
                let mut c = Command::new(python());
                c.arg("-u").arg(python_script()).arg(name).arg(url);
                c
            }
        }
    }
}

/// Build/create what the client program for `label` needs, outside the
/// scenario timeout (called by the `scenarios!` tests before the server starts).
pub async fn prepare(label: &str) {
    if let Some(lib) = ClientLib::from_label(label) {
        tokio::task::spawn_blocking(move || match lib {
            ClientLib::Go => {
                go_program();
            }
            ClientLib::Python => {
                python();
            }
        })
        .await
        .expect("prepare client program");
    }
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

fn python_script() -> PathBuf {
    clients_dir().join("python").join("scenario.py")
}

/// Run `f` while holding the lock directory `lock` (created atomically;
/// a lock older than 10 minutes is considered stale and removed).
fn with_lock<T>(lock: &Path, f: impl FnOnce() -> T) -> T {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        match std::fs::create_dir(lock) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let stale = std::fs::metadata(lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > Duration::from_secs(600));
                if stale {
                    let _ = std::fs::remove_dir(lock);
                    continue;
                }
                if Instant::now() > deadline {
                    panic!("timed out waiting for lock {}", lock.display());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("create lock {}: {e}", lock.display()),
        }
    }
    struct Unlock<'a>(&'a Path);
    impl Drop for Unlock<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(self.0);
        }
    }
    let _unlock = Unlock(lock);
    f()
}

fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let t = if p.is_dir() {
                newest_mtime(&p)
            } else {
                e.metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH)
            };
            newest = newest.max(t);
        }
    }
    newest
}

fn run_checked(mut cmd: Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}): {cmd:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Path of the built nats.go scenario program (built on first use).
pub fn go_program() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = clients_dir().join("go");
        let out_dir = crate::target_dir().join("conformance-go");
        std::fs::create_dir_all(&out_dir).expect("create conformance-go dir");
        let bin = out_dir.join("scenario");
        let fresh = |bin: &Path| {
            std::fs::metadata(bin)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= newest_mtime(&src))
        };
        if fresh(&bin) {
            return bin;
        }
        with_lock(&out_dir.join("build.lock"), || {
            if fresh(&bin) {
                return;
            }
            let tmp = out_dir.join(format!("scenario.tmp.{}", std::process::id()));
            let go = std::env::var_os("NATRIUM_GO").unwrap_or_else(|| "go".into());
            let gopath = std::env::join_paths([src.clone(), PathBuf::from("/usr/share/gocode")])
                .expect("GOPATH");
            let mut cmd = Command::new(go);
            cmd.arg("build")
                .arg("-o")
                .arg(&tmp)
                .arg("natrium-conformance/scenario")
                .current_dir(&src)
                .env("GO111MODULE", "off")
                .env("GOPATH", gopath)
                .env("GOPROXY", "off")
                .env("GOFLAGS", "")
                .env("GOCACHE", out_dir.join("gocache"));
            run_checked(
                cmd,
                "building the nats.go scenario program (needs golang-go and golang-github-nats-io-go-nats-dev)",
            );
            std::fs::rename(&tmp, &bin).expect("install scenario binary");
        });
        bin
    })
    .clone()
}

/// The Python interpreter with nats-py (the venv is created on first use).
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        if let Some(p) = std::env::var_os("NATRIUM_PY").filter(|v| !v.is_empty()) {
            return PathBuf::from(p);
        }
        let venv = crate::target_dir().join("conformance-venv");
        let py = venv.join("bin").join("python");
        let ready = venv.join(format!(".nats-py-{NATS_PY_VERSION}"));
        if ready.exists() {
            return py;
        }
        std::fs::create_dir_all(crate::target_dir()).expect("create target dir");
        let lock = crate::target_dir().join("conformance-venv.lock");
        with_lock(&lock, || {
            if ready.exists() {
                return;
            }
            if !py.exists() {
                let mut cmd = Command::new("python3");
                cmd.arg("-m").arg("venv").arg(&venv);
                run_checked(cmd, "creating the nats-py virtualenv (needs python3-venv)");
            }
            let mut cmd = Command::new(&py);
            cmd.args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                .arg(format!("nats-py=={NATS_PY_VERSION}"));
            run_checked(cmd, "pip install nats-py");
            std::fs::write(&ready, "").expect("mark venv ready");
        });
        py
    })
    .clone()
}

/// A running scenario program: its stdout lines (also kept, with stderr, in
/// a transcript that failures print), its stdin, bounded waits.
pub struct ClientRun {
    lib: ClientLib,
    name: String,
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    transcript: Arc<Mutex<String>>,
    deadline: Instant,
}

impl ClientRun {
    /// Start scenario `name` of `lib` against `s`.
    pub async fn start(lib: ClientLib, name: &str, s: &Server) -> ClientRun {
        let url = s.url();
        let mut cmd = tokio::process::Command::from(lib.command(name, &url));
        let kind = if s.is_natrium() {
            "natrium"
        } else {
            "nats-server"
        };
        cmd.env(SERVER_KIND_ENV, kind)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{} scenario {name}: spawn: {e}", lib.label()));
        let transcript = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        {
            let transcript = transcript.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(stdout).lines();
                while let Ok(Some(l)) = r.next_line().await {
                    transcript.lock().unwrap().push_str(&format!("{l}\n"));
                    let _ = tx.send(l);
                }
            });
        }
        {
            let transcript = transcript.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(stderr).lines();
                while let Ok(Some(l)) = r.next_line().await {
                    transcript
                        .lock()
                        .unwrap()
                        .push_str(&format!("stderr: {l}\n"));
                }
            });
        }
        ClientRun {
            lib,
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            transcript,
            deadline: Instant::now() + CLIENT_TIMEOUT,
        }
    }

    fn fail(&self, why: &str) -> ! {
        // Give the reader tasks a moment to collect the last output.
        std::thread::sleep(Duration::from_millis(50));
        panic!(
            "{} scenario `{}`: {why}\n--- client output ---\n{}--- end of client output ---",
            self.lib.label(),
            self.name,
            self.transcript.lock().unwrap()
        );
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Wait (bounded) for a stdout line equal to `want`; earlier lines are skipped.
    pub async fn expect_line(&mut self, want: &str) {
        loop {
            match tokio::time::timeout(self.left(), self.lines.recv()).await {
                Ok(Some(l)) if l == want => return,
                Ok(Some(l)) if l.starts_with("FAIL") => {
                    self.fail(&format!("failed while {want:?} was expected"))
                }
                Ok(Some(_)) => continue,
                Ok(None) => self.fail(&format!("exited before printing {want:?}")),
                Err(_) => self.fail(&format!("timed out waiting for {want:?}")),
            }
        }
    }

    /// Write one line to the program's stdin.
    pub async fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        if let Err(e) = stdin.write_all(format!("{line}\n").as_bytes()).await {
            self.fail(&format!("write to stdin: {e}"));
        }
        let _ = stdin.flush().await;
    }

    /// Wait (bounded; the child is killed on timeout) for the program to
    /// exit; assert it succeeded and printed `OK` last.
    pub async fn finish(mut self) {
        drop(self.stdin.take());
        let status: ExitStatus = match tokio::time::timeout(self.left(), self.child.wait()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => self.fail(&format!("wait: {e}")),
            Err(_) => {
                let _ = self.child.kill().await;
                self.fail(&format!(
                    "did not finish within {CLIENT_TIMEOUT:?} (killed)"
                ))
            }
        };
        let mut last = None;
        while let Ok(Some(l)) =
            tokio::time::timeout(Duration::from_secs(2), self.lines.recv()).await
        {
            last = Some(l);
        }
        if !status.success() || last.as_deref() != Some("OK") {
            self.fail(&format!("exit status {status}, last line {last:?}"));
        }
    }
}

/// Run scenario `name` of `lib` against `s` to completion.
pub async fn run_client(lib: ClientLib, name: &str, s: &Server) {
    ClientRun::start(lib, name, s).await.finish().await;
}

/// The reconnect scenario: the program subscribes and prints `READY`; the
/// server is restarted on the same port; the program is told `RESTARTED`
/// and checks that it reconnects and its subscriptions resume.
pub async fn run_client_reconnect(lib: ClientLib, s: &Server) {
    let mut run = ClientRun::start(lib, "reconnect_after_restart", s).await;
    run.expect_line("READY").await;
    s.restart().await;
    run.send_line("RESTARTED").await;
    run.finish().await;
}

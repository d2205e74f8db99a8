//! Conformance harness: starts a NATS server binary (natrium or the reference
//! Go `nats-server`) as a child process on a free loopback port, and offers
//! small bounded helpers for driving it with async-nats or with raw TCP.
//!
//! Every scenario is written once as `async fn name(s: &Server)` and the
//! [`scenarios!`] macro expands it into two `#[tokio::test]`s:
//! `natrium::name` and `nats_server::name`.
//!
//! Binary selection (see README.md):
//! - natrium side: `NATRIUM_TEST_SERVER` (any binary, e.g. nats-server, to
//!   prove the catalogue), else `NATRIUM_BIN`, else
//!   `$CARGO_TARGET_DIR/release/natrium`, else `<workspace>/target/release/natrium`.
//! - reference side: `NATS_SERVER_BIN`, else `/usr/sbin/nats-server`, else
//!   `nats-server` on `PATH`.
//!
//! Runtime: `NATRIUM_TEST_RUNTIME=mio` (or `tokio`) starts natrium with
//! `--runtime <it>`; the README's test command runs the natrium side of the
//! suite once per runtime.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

pub mod clients;
pub mod configs;
pub mod results;

pub use async_nats;
pub use futures;
pub use serde_json;
pub use tokio;

/// Default bound for a single wait inside a scenario.
pub const WAIT: Duration = Duration::from_secs(5);
/// Bound for a whole scenario (server start excluded).
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound for the server to start accepting TCP connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Which server implementation a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Natrium,
    NatsServer,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Natrium => "natrium",
            Target::NatsServer => "nats-server",
        }
    }

    /// Path of the binary to run for this target (see crate docs).
    pub fn binary(self) -> PathBuf {
        match self {
            Target::Natrium => {
                for var in ["NATRIUM_TEST_SERVER", "NATRIUM_BIN"] {
                    if let Some(p) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                        return PathBuf::from(p);
                    }
                }
                if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
                    let p = PathBuf::from(dir).join("release").join("natrium");
                    if p.exists() {
                        return p;
                    }
                }
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join("target")
                    .join("release")
                    .join("natrium")
            }
            Target::NatsServer => {
                if let Some(p) = std::env::var_os("NATS_SERVER_BIN").filter(|v| !v.is_empty()) {
                    return PathBuf::from(p);
                }
                let debian = PathBuf::from("/usr/sbin/nats-server");
                if debian.exists() {
                    return debian;
                }
                if let Some(path) = std::env::var_os("PATH") {
                    for dir in std::env::split_paths(&path) {
                        let p = dir.join("nats-server");
                        if p.exists() {
                            return p;
                        }
                    }
                }
                PathBuf::from("nats-server")
            }
        }
    }
}

/// How to start a server: extra command-line arguments and/or config file text.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub args: Vec<String>,
    pub config: Option<String>,
    /// Start with JetStream on (`-js -sd <dir>`), with a fresh store
    /// directory per server that [`Server::restart`] keeps.
    pub jetstream: bool,
}

impl Spec {
    pub fn new() -> Spec {
        Spec::default()
    }

    /// Extra command-line arguments (e.g. `["--user", "u", "--pass", "p"]`).
    pub fn args(args: &[&str]) -> Spec {
        Spec {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Spec::default()
        }
    }

    /// JetStream on (`-js -sd <fresh temp dir>`), nothing else.
    pub fn jetstream() -> Spec {
        Spec::new().with_jetstream()
    }

    /// This spec with JetStream on (`-js -sd <fresh temp dir>`).
    pub fn with_jetstream(mut self) -> Spec {
        self.jetstream = true;
        self
    }

    /// Config file contents, passed with `-c <file>`.
    pub fn config(text: &str) -> Spec {
        Spec {
            config: Some(text.to_string()),
            ..Spec::default()
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn scratch_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "natrium-conformance-{}-{}-{}",
        std::process::id(),
        n,
        nanos
    ));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// A running server child process; killed (and reaped) on drop. If the
/// current thread is panicking when it is dropped, the server's stderr log
/// is printed to help diagnose the failure.
pub struct Server {
    pub target: Target,
    pub port: u16,
    child: Mutex<Child>,
    dir: PathBuf,
    log: PathBuf,
    cmdline: String,
    bin: PathBuf,
    args: Vec<String>,
    store_dir: Option<PathBuf>,
}

/// `NATRIUM_TEST_RUNTIME`, unless the natrium side is another binary.
fn natrium_runtime() -> Option<String> {
    let custom = std::env::var_os("NATRIUM_TEST_SERVER").is_some_and(|v| !v.is_empty());
    std::env::var("NATRIUM_TEST_RUNTIME")
        .ok()
        .filter(|r| !r.is_empty() && !custom)
}

impl Server {
    /// Start `target` with `spec` and wait until its port accepts TCP.
    pub async fn start(target: Target, spec: Spec) -> Server {
        let bin = target.binary();
        if !bin.exists() && bin.components().count() > 1 {
            panic!(
                "{} binary not found at {} (build it with `cargo build --release`, or set NATRIUM_BIN / NATRIUM_TEST_SERVER / NATS_SERVER_BIN)",
                target.name(),
                bin.display()
            );
        }
        let mut last_err = String::new();
        // A port picked by free_port() can be taken by a concurrent test
        // before our server binds it; retry with a fresh port in that case.
        for _attempt in 0..5 {
            let dir = scratch_dir();
            let port = free_port();
            let mut args: Vec<String> = vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ];
            if let Some(cfg) = &spec.config {
                let path = dir.join("server.conf");
                std::fs::write(&path, cfg).expect("write config");
                args.push("-c".into());
                args.push(path.display().to_string());
            }
            let store_dir = if spec.jetstream {
                let store = dir.join("store");
                std::fs::create_dir_all(&store).expect("create store dir");
                args.push("-js".into());
                args.push("-sd".into());
                args.push(store.display().to_string());
                Some(store)
            } else {
                None
            };
            if let Some(rt) = natrium_runtime().filter(|_| target == Target::Natrium) {
                args.push("--runtime".into());
                args.push(rt);
            }
            args.extend(spec.args.iter().cloned());
            let log = dir.join("stderr.log");
            let cmdline = format!("{} {}", bin.display(), args.join(" "));
            let child = spawn_server(&bin, &args, &log, &cmdline);
            let server = Server {
                target,
                port,
                child: Mutex::new(child),
                dir,
                log,
                cmdline,
                bin: bin.clone(),
                args,
                store_dir,
            };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(e) => {
                    last_err = format!("{e}\n--- server log ---\n{}", server.log_text());
                    // Dropped here: killed and reaped, retry.
                }
            }
        }
        panic!("{} did not start: {last_err}", target.name());
    }

    /// The JetStream store directory (`-sd`), when started with
    /// [`Spec::jetstream`]. It survives [`Server::restart`].
    pub fn store_dir(&self) -> Option<&Path> {
        self.store_dir.as_deref()
    }

    /// Kill the server with SIGKILL (`kill -9`: no shutdown, no flush) and
    /// reap it. [`Server::restart`] starts it again.
    pub fn kill9(&self) {
        let mut child = self.child.lock().unwrap();
        // std's Child::kill sends SIGKILL on Unix.
        let _ = child.kill();
        let _ = child.wait();
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&self.log) {
            let _ = writeln!(f, "=== harness: kill -9 ===");
        }
    }

    /// Kill the server (SIGKILL, if still running) and start it again with
    /// the same arguments on the same port (clients reconnect to the same
    /// URL) and the same JetStream store directory. The log is appended
    /// to. Retries a few times if the port is not yet free.
    pub async fn restart(&self) {
        {
            let mut child = self.child.lock().unwrap();
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut last_err = String::new();
        for _attempt in 0..10 {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&self.log) {
                let _ = writeln!(f, "=== harness: restarting `{}` ===", self.cmdline);
            }
            let child = spawn_server(&self.bin, &self.args, &self.log, &self.cmdline);
            *self.child.lock().unwrap() = child;
            match self.wait_ready().await {
                Ok(()) => return,
                Err(e) => {
                    last_err = e;
                    let mut child = self.child.lock().unwrap();
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "{} did not restart on port {}: {last_err}\n--- server log ---\n{}",
            self.target.name(),
            self.port,
            self.log_text()
        );
    }

    fn exited(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                return Err(format!("`{}` exited early: {status}", self.cmdline));
            }
            if let Ok(Ok(_conn)) = tokio::time::timeout(
                Duration::from_millis(500),
                TcpStream::connect(("127.0.0.1", self.port)),
            )
            .await
            {
                // Make sure it is *our* child listening, not someone else
                // who grabbed the port: our child must still be alive.
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Some(status) = self.exited() {
                    return Err(format!("`{}` exited early: {status}", self.cmdline));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "`{}` did not accept TCP within {START_TIMEOUT:?}",
                    self.cmdline
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The runtime natrium runs on, as given by `NATRIUM_TEST_RUNTIME`
    /// (None: the binary's default).
    pub fn runtime(&self) -> Option<String> {
        natrium_runtime().filter(|_| self.target == Target::Natrium)
    }

    /// Is this server natrium? Not when `NATRIUM_TEST_SERVER` points the
    /// natrium side at another binary (e.g. nats-server, to prove the
    /// catalogue): then the nats-server side of each known difference
    /// applies.
    pub fn is_natrium(&self) -> bool {
        self.target == Target::Natrium
            && std::env::var_os("NATRIUM_TEST_SERVER").is_none_or(|v| v.is_empty())
    }

    /// `nats://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Connect an async-nats client with default options (bounded).
    pub async fn connect(&self) -> async_nats::Client {
        self.connect_with(async_nats::ConnectOptions::new()).await
    }

    /// Connect an async-nats client with the given options; panics on error.
    pub async fn connect_with(&self, opts: async_nats::ConnectOptions) -> async_nats::Client {
        within("async-nats connect", self.try_connect_with(opts))
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url()))
    }

    /// Connect an async-nats client; returns the error instead of panicking.
    /// Reconnects are limited so a rejected connection fails promptly.
    pub async fn try_connect_with(
        &self,
        opts: async_nats::ConnectOptions,
    ) -> Result<async_nats::Client, async_nats::ConnectError> {
        opts.connection_timeout(Duration::from_secs(3))
            .max_reconnects(1)
            .connect(self.url())
            .await
    }

    /// Open a raw TCP protocol connection.
    pub async fn raw(&self) -> RawClient {
        RawClient::connect(&self.addr()).await
    }

    /// The server's stdout/stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Is the child still running?
    pub fn is_running(&mut self) -> bool {
        self.exited().is_none()
    }
}

fn spawn_server(bin: &Path, args: &[String], log: &Path, cmdline: &str) -> Child {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open stderr log");
    let stdout = stderr.try_clone().expect("clone log handle");
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn `{cmdline}`: {e}"))
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(child) = self.child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "=== {} server `{}` log ({}) ===\n{}\n=== end of server log ===",
                self.target.name(),
                self.cmdline,
                self.log.display(),
                self.log_text()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Await `fut` for at most [`WAIT`]; panic with `what` on timeout.
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    within_for(WAIT, what, fut).await
}

/// Await `fut` for at most `limit`; panic with `what` on timeout.
pub async fn within_for<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?} waiting for: {what}"),
    }
}

/// A real round trip through the server on `client`'s connection.
///
/// async-nats' `Client::flush()` only flushes the socket; it does NOT wait
/// for the server. To know that the server has processed everything this
/// connection sent before (SUBs, PUBs) and that everything the server queued
/// to it before has arrived, publish to a private inbox on the same
/// connection and wait for the echo.
pub async fn sync(client: &async_nats::Client) {
    let inbox = client.new_inbox();
    let mut sub = client
        .subscribe(inbox.clone())
        .await
        .expect("sync: subscribe");
    client
        .publish(inbox, bytes::Bytes::new())
        .await
        .expect("sync: publish");
    within("sync round trip", sub.next())
        .await
        .expect("sync: subscription ended");
    sub.unsubscribe().await.ok();
}

/// Next message of a subscription (bounded); panics if the stream ended.
pub async fn next_msg(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    within("next message", sub.next())
        .await
        .expect("subscription ended unexpectedly")
}

/// Assert that no message arrives within `quiet`.
pub async fn assert_no_msg(sub: &mut async_nats::Subscriber, quiet: Duration) {
    if let Ok(m) = tokio::time::timeout(quiet, sub.next()).await {
        panic!("expected no message, got {m:?}");
    }
}

/// Assert that the subscription stream ends (yields `None`) within [`WAIT`]
/// without delivering any further message.
pub async fn assert_ended(sub: &mut async_nats::Subscriber) {
    if let Some(m) = within("subscription end", sub.next()).await {
        panic!("expected end of subscription, got message {m:?}");
    }
}

/// A raw NATS protocol connection for checks that a client library would hide.
pub struct RawClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl RawClient {
    pub async fn connect(addr: &str) -> RawClient {
        let stream = within("raw TCP connect", TcpStream::connect(addr))
            .await
            .unwrap_or_else(|e| panic!("raw connect {addr}: {e}"));
        stream.set_nodelay(true).ok();
        let (r, w) = stream.into_split();
        RawClient {
            reader: BufReader::with_capacity(64 * 1024, r),
            writer: w,
        }
    }

    /// Send raw bytes.
    pub async fn send(&mut self, data: impl AsRef<[u8]>) {
        within("raw write", self.writer.write_all(data.as_ref()))
            .await
            .expect("raw write");
    }

    /// Send raw bytes; return the error instead of panicking (the server
    /// may already have closed the connection).
    pub async fn try_send(&mut self, data: impl AsRef<[u8]>) -> std::io::Result<()> {
        within("raw write", self.writer.write_all(data.as_ref())).await
    }

    /// Read one line (without the trailing CRLF); `None` on EOF. Panics on
    /// timeout or I/O error.
    pub async fn read_line(&mut self) -> Option<String> {
        self.try_read_line()
            .await
            .unwrap_or_else(|e| panic!("raw read: {e}"))
    }

    /// Read one line, bounded by [`WAIT`]; `Ok(None)` on EOF.
    pub async fn try_read_line(&mut self) -> std::io::Result<Option<String>> {
        let mut buf = Vec::new();
        let n = within("raw line", self.reader.read_until(b'\n', &mut buf)).await?;
        if n == 0 {
            return Ok(None);
        }
        while buf.last() == Some(&b'\n') || buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// Read one line, panicking on EOF.
    pub async fn line(&mut self) -> String {
        self.read_line()
            .await
            .expect("raw connection closed (EOF) while a line was expected")
    }

    /// Read exactly `n` bytes (a payload) plus the trailing CRLF.
    pub async fn read_payload(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n + 2];
        within("raw payload", self.reader.read_exact(&mut buf))
            .await
            .expect("raw payload read");
        assert_eq!(&buf[n..], b"\r\n", "payload must be followed by CRLF");
        buf.truncate(n);
        buf
    }

    /// Read the first line, assert it is `INFO {json}`, return the JSON.
    pub async fn read_info(&mut self) -> serde_json::Value {
        let line = self.line().await;
        let json = line
            .strip_prefix("INFO ")
            .unwrap_or_else(|| panic!("first line must be INFO, got {line:?}"));
        serde_json::from_str(json).unwrap_or_else(|e| panic!("INFO json {json:?}: {e}"))
    }

    /// Read lines until one equal to `want` arrives; return the lines before it.
    pub async fn read_until_line(&mut self, want: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.read_line().await {
                Some(l) if l == want => return seen,
                Some(l) => seen.push(l),
                None => panic!("EOF before {want:?}; lines seen: {seen:?}"),
            }
        }
    }

    /// Assert the server closes the connection within `limit`: reads (and
    /// discards) whatever is pending until EOF or a reset. Returns the lines read.
    pub async fn expect_closed(&mut self, limit: Duration) -> Vec<String> {
        let mut lines = Vec::new();
        let fut = async {
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match self.reader.read_until(b'\n', &mut buf).await {
                    Ok(0) => return,
                    Ok(_) => lines.push(String::from_utf8_lossy(&buf).trim_end().to_string()),
                    Err(_) => return, // connection reset also counts as closed
                }
            }
        };
        within_for(limit, "server to close the connection", fut).await;
        lines
    }

    /// Drain bytes until EOF/reset; returns how many bytes were read.
    pub async fn drain_to_close(&mut self, limit: Duration) -> usize {
        let fut = async {
            let mut total = 0usize;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match self.reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        };
        within_for(limit, "server to close the connection", fut).await
    }
}

/// Expand scenario functions into `natrium::<name>` and `nats_server::<name>`
/// tests. Each entry is `name` (default server) or `name => spec_expr`
/// where `spec_expr` is a [`Spec`]. The scenario is `async fn name(s: &Server)`
/// in the invoking module. An optional first line `client = "label";` names
/// the client library for the results table (default `async-nats`; scenario
/// names starting with `raw_` count as `raw TCP`).
///
/// ```ignore
/// scenarios! {
///     pub_sub_ordering;
///     max_payload => Spec::config("max_payload: 1024");
/// }
/// ```
#[macro_export]
macro_rules! scenarios {
    ( client = $client:expr ; $( $name:ident $( => $spec:expr )? ; )* ) => {
        mod natrium {
            $( $crate::__scenario_test!($client, Natrium, $name $(, $spec)?); )*
        }
        mod nats_server {
            $( $crate::__scenario_test!($client, NatsServer, $name $(, $spec)?); )*
        }
    };
    ( $( $name:ident $( => $spec:expr )? ; )* ) => {
        $crate::scenarios! { client = $crate::results::ASYNC_NATS; $( $name $( => $spec )? ; )* }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __scenario_test {
    ($client:expr, $target:ident, $name:ident) => {
        $crate::__scenario_test!($client, $target, $name, $crate::Spec::new());
    };
    ($client:expr, $target:ident, $name:ident, $spec:expr) => {
        #[$crate::tokio::test(
            flavor = "multi_thread",
            worker_threads = 2,
            crate = "::natrium_conformance::tokio"
        )]
        async fn $name() {
            let client: &'static str = {
                #[allow(unused_imports)]
                use super::*;
                $client
            };
            let _record =
                $crate::results::Record::new(client, stringify!($name), $crate::Target::$target);
            $crate::clients::prepare(client).await;
            let spec: $crate::Spec = {
                #[allow(unused_imports)]
                use super::*;
                $spec
            };
            let server = $crate::Server::start($crate::Target::$target, spec).await;
            $crate::within_for(
                $crate::SCENARIO_TIMEOUT,
                concat!("scenario ", stringify!($name)),
                super::$name(&server),
            )
            .await;
        }
    };
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
/// Built client programs, the Python virtualenv and the results live here.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_dir().join(d)
            }
        }
        None => workspace_dir().join("target"),
    }
}

/// The workspace root (the parent of this crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace dir")
        .to_path_buf()
}

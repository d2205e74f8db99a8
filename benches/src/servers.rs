//! Starting the servers under test and reading their resource use from /proc.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which server, and how it is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// natrium with its defaults (file streams fsync before each PubAck).
    Natrium,
    /// The reference: Debian's nats-server.
    NatsServer,
    /// natrium with `jetstream { sync_interval: "2m" }` (acks before fsync, as
    /// nats-server does by default). Used only for JetStream file workloads.
    NatriumRelaxed,
    /// natrium on its second runtime (`--runtime mio`). Core workloads only.
    NatriumMio,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Natrium => "natrium",
            Kind::NatsServer => "nats-server",
            Kind::NatriumRelaxed => "natrium (sync_interval 2m)",
            Kind::NatriumMio => "natrium (runtime mio)",
        }
    }
}

pub struct Binaries {
    pub natrium: PathBuf,
    pub nats_server: PathBuf,
}

/// A running server; killed on drop, its store directory removed.
pub struct Running {
    pub kind: Kind,
    pub addr: SocketAddr,
    child: Child,
    dir: Option<PathBuf>,
}

static DIR_SEQ: AtomicUsize = AtomicUsize::new(0);

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn start(bins: &Binaries, kind: Kind, jetstream: bool) -> io::Result<Running> {
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut dir = None;
    let bin = match kind {
        Kind::NatsServer => &bins.nats_server,
        _ => &bins.natrium,
    };
    let mut cmd = Command::new(bin);
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
    if kind == Kind::NatriumMio {
        cmd.args(["--runtime", "mio"]);
    }
    if jetstream || kind == Kind::NatriumRelaxed {
        let d = std::env::temp_dir().join(format!(
            "natrium-bench-{}-{}",
            std::process::id(),
            DIR_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d)?;
        if kind == Kind::NatriumRelaxed {
            let conf = d.join("natrium.conf");
            std::fs::write(
                &conf,
                format!(
                    "jetstream {{\n  store_dir: \"{}\"\n  sync_interval: \"2m\"\n}}\n",
                    d.join("store").display()
                ),
            )?;
            cmd.arg("-c").arg(&conf);
        } else {
            cmd.arg("-js").arg("-sd").arg(d.join("store"));
        }
        dir = Some(d);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", bin.display())))?;
    let mut running = Running {
        kind,
        addr,
        child,
        dir,
    };
    running.wait_ready()?;
    Ok(running)
}

impl Running {
    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{} exited at start: {st}",
                    self.kind.label()
                )));
            }
            if let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)) {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut b = [0u8; 4];
                if s.read_exact(&mut b).is_ok() && &b == b"INFO" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{} did not come up on {}",
                    self.kind.label(),
                    self.addr
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// utime + stime of the server process so far.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.pid()).unwrap_or_default()
    }

    /// (VmRSS, VmHWM) in bytes.
    pub fn memory(&self) -> (u64, u64) {
        memory(self.pid()).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let l = st.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = l[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Raise RLIMIT_NOFILE's soft limit to the hard limit; the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 1024;
        }
        if rl.rlim_cur < rl.rlim_max {
            let want = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        rl.rlim_cur
    }
}

/// Find natrium: `--natrium`, `$NATRIUM_BIN`, then the release build in the
/// target dir (built with cargo when missing).
pub fn find_natrium(explicit: Option<PathBuf>) -> io::Result<PathBuf> {
    if let Some(p) = explicit.or_else(|| std::env::var_os("NATRIUM_BIN").map(PathBuf::from)) {
        return Ok(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join("natrium");
    if !bin.exists() {
        eprintln!("building natrium (release)...");
        let st = Command::new("cargo")
            .args(["build", "--release", "--bin", "natrium"])
            .current_dir(&root)
            .status()?;
        if !st.success() {
            return Err(io::Error::other(
                "cargo build --release --bin natrium failed",
            ));
        }
    }
    Ok(bin)
}

/// Find nats-server: `--nats-server`, `$NATS_SERVER_BIN`, PATH, /usr/sbin; else
/// install Debian's package with apt-get (as scripts/test does).
pub fn find_nats_server(explicit: Option<PathBuf>) -> io::Result<PathBuf> {
    if let Some(p) = explicit.or_else(|| std::env::var_os("NATS_SERVER_BIN").map(PathBuf::from)) {
        return Ok(p);
    }
    let look = || -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
            .map(|d| d.join("nats-server"))
            .find(|p| p.exists())
    };
    if let Some(p) = look() {
        return Ok(p);
    }
    eprintln!("nats-server not found: installing it with apt-get");
    let ok = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()?
        .success()
        && Command::new("apt-get")
            .args(["install", "-y", "-qq", "nats-server"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?
            .success();
    match look() {
        Some(p) if ok => Ok(p),
        _ => Err(io::Error::other("could not install nats-server")),
    }
}

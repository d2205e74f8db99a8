//! nats-server's command-line flags (matrix section 2.3). Go's flag package takes
//! `-flag` and `--flag` alike, and nats-server has multi-letter short forms
//! (`-js`, `-sd`, `-DV`), so arguments are normalised before clap sees them.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{self, Options};

/// Command-line flags. Flags override the config file.
#[derive(Parser, Debug, Default)]
#[command(name = "natrium", about = "A NATS server", disable_version_flag = true)]
pub struct Cli {
    /// Bind to host address (default: 0.0.0.0)
    #[arg(short = 'a', long = "addr", visible_alias = "net", value_name = "HOST")]
    pub addr: Option<String>,
    /// Use port for clients (default: 4222; -1 picks a free port)
    #[arg(short = 'p', long = "port", allow_hyphen_values = true)]
    pub port: Option<i32>,
    /// Configuration file
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Test the configuration file and exit
    #[arg(short = 't')]
    pub test_config: bool,
    /// Server name (default: the server id)
    #[arg(short = 'n', long = "name", visible_alias = "server_name")]
    pub name: Option<String>,
    /// User required for connections
    #[arg(long)]
    pub user: Option<String>,
    /// Password required for connections
    #[arg(long)]
    pub pass: Option<String>,
    /// Authorization token required for connections
    #[arg(long)]
    pub auth: Option<String>,
    /// Enable debugging output
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Trace the raw protocol
    #[arg(short = 'V', long = "trace")]
    pub trace: bool,
    /// Debug and trace
    #[arg(long = "DV", hide = true)]
    pub debug_trace: bool,
    /// Verbose trace (accepted; same as -V)
    #[arg(long = "VV", hide = true)]
    pub trace_verbose: bool,
    /// Debug and verbose trace (accepted; same as -DV)
    #[arg(long = "DVV", hide = true)]
    pub debug_trace_verbose: bool,
    /// Timestamp log entries (always on)
    #[arg(short = 'T', long = "logtime", num_args = 0..=1, default_missing_value = "true")]
    pub logtime: Option<String>,
    /// File to redirect log output
    #[arg(
        short = 'l',
        long = "log",
        visible_alias = "log_file",
        value_name = "FILE"
    )]
    pub log: Option<PathBuf>,
    /// File to store the process id
    #[arg(short = 'P', long = "pid", value_name = "FILE")]
    pub pid: Option<PathBuf>,
    /// Maximum message payload in bytes
    #[arg(long = "max_payload")]
    pub max_payload: Option<String>,
    /// Enable JetStream
    #[arg(long = "jetstream", visible_alias = "js")]
    pub jetstream: bool,
    /// JetStream storage directory
    #[arg(long = "store_dir", visible_alias = "sd", value_name = "DIR")]
    pub store_dir: Option<PathBuf>,
    /// Runtime that drives the engine: tokio (default) or mio
    #[arg(long = "runtime", value_name = "tokio|mio")]
    pub runtime: Option<String>,
    /// Print the version and exit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

/// Rewrite Go-style arguments into what clap understands: `-port` becomes
/// `--port`, `-js` `--js`, `-DV` `--DV`. Single-letter flags and negative
/// numbers (`-p -1`) are left alone.
pub fn normalize_args<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let b = a.as_bytes();
            let go_long = i > 0
                && b.len() > 2
                && b[0] == b'-'
                && b[1] != b'-'
                && b[1].is_ascii_alphabetic()
                && a.split('=')
                    .next()
                    .is_some_and(|f| f[1..].bytes().all(|c| c.is_ascii_alphabetic() || c == b'_'));
            if go_long {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

/// Parse a size flag the way the config file does: `1024`, `1KB`, `1mb`.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" | "ki" | "kib" => 1024,
        "m" => 1000 * 1000,
        "mb" | "mi" | "mib" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" | "gi" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

impl Cli {
    /// The effective options: defaults, then the config file, then these flags.
    pub fn options(&self) -> Result<Options, String> {
        let mut o = match &self.config {
            Some(path) => config::load_file(path).map_err(|e| e.to_string())?,
            None => Options::default(),
        };
        if let Some(a) = &self.addr {
            o.host = a.clone();
        }
        if let Some(p) = self.port {
            o.port = p;
        }
        if let Some(r) = &self.runtime {
            o.runtime = r.parse()?;
        }
        if let Some(n) = &self.name {
            o.engine.server_name = Some(n.clone());
        }
        if let Some(u) = &self.user {
            o.engine.auth.user = Some(u.clone());
        }
        if let Some(p) = &self.pass {
            o.engine.auth.password = Some(p.clone());
        }
        if let Some(t) = &self.auth {
            o.engine.auth.token = Some(t.clone());
        }
        o.debug |= self.debug || self.debug_trace || self.debug_trace_verbose;
        o.trace |= self.trace || self.debug_trace || self.trace_verbose || self.debug_trace_verbose;
        if let Some(l) = &self.log {
            o.logfile = Some(l.clone());
        }
        if let Some(p) = &self.pid {
            o.pid_file = Some(p.clone());
        }
        if let Some(mp) = &self.max_payload {
            let n = parse_size(mp)
                .filter(|&n| n > 0 && n <= i32::MAX as u64)
                .ok_or_else(|| format!("invalid value {mp:?} for --max_payload"))?;
            o.engine.max_payload = n as u32;
        }
        o.jetstream |= self.jetstream;
        if let Some(sd) = &self.store_dir {
            o.store_dir = Some(sd.clone());
        }
        o.engine.jetstream = o.jetstream;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let args = normalize_args(args.iter().map(|s| s.to_string()));
        Cli::try_parse_from(args).expect("parses")
    }

    #[test]
    fn runtime_flag_overrides_the_config() {
        use crate::config::Runtime;
        assert_eq!(
            parse(&["natrium"]).options().unwrap().runtime,
            Runtime::Tokio
        );
        assert_eq!(
            parse(&["natrium", "--runtime", "mio"])
                .options()
                .unwrap()
                .runtime,
            Runtime::Mio
        );
        assert_eq!(
            parse(&["natrium", "-runtime=mio"])
                .options()
                .unwrap()
                .runtime,
            Runtime::Mio
        );
        let e = parse(&["natrium", "--runtime", "threads"])
            .options()
            .unwrap_err();
        assert!(e.contains("unknown runtime"), "{e}");
    }

    // X1–X5, X8–X10: the flags nats-server users type.
    #[test]
    fn go_style_flags() {
        let c = parse(&[
            "natrium",
            "-p",
            "-1",
            "-a",
            "127.0.0.1",
            "-js",
            "-sd",
            "/tmp/x",
            "-DV",
            "-n",
            "srv",
        ]);
        assert_eq!(c.port, Some(-1));
        assert_eq!(c.addr.as_deref(), Some("127.0.0.1"));
        assert!(c.jetstream && c.debug_trace);
        assert_eq!(c.store_dir, Some(PathBuf::from("/tmp/x")));
        let o = c.options().unwrap();
        assert!(o.debug && o.trace && o.jetstream && o.engine.jetstream);
        assert_eq!(o.engine.server_name.as_deref(), Some("srv"));

        let c = parse(&[
            "natrium",
            "-port=4333",
            "--net",
            "::1",
            "--user",
            "u",
            "--pass",
            "p",
            "-max_payload",
            "2KB",
        ]);
        let o = c.options().unwrap();
        assert_eq!(o.port, 4333);
        assert_eq!(o.host, "::1");
        assert_eq!(o.engine.auth.user.as_deref(), Some("u"));
        assert_eq!(o.engine.max_payload, 2048);
        let c = parse(&[
            "natrium",
            "--auth",
            "tok",
            "-l",
            "/tmp/log",
            "-P",
            "/tmp/pid",
            "--jetstream",
            "--store_dir",
            "d",
        ]);
        let o = c.options().unwrap();
        assert_eq!(o.engine.auth.token.as_deref(), Some("tok"));
        assert_eq!(o.pid_file, Some(PathBuf::from("/tmp/pid")));
        assert!(o.jetstream);
    }

    #[test]
    fn bad_max_payload_is_an_error() {
        assert!(parse(&["natrium", "--max_payload", "lots"])
            .options()
            .is_err());
    }
}

//! The `natrium` binary: flags and config file in, a NATS server on tokio (or
//! mio, `--runtime mio`) out.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use natrium::cli::{normalize_args, Cli};
use natrium::config::{Options, Runtime};
use natrium_engine::{Server, SERVER_VERSION};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize_args(std::env::args())) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if cli.version {
        println!(
            "natrium: v{} (nats-server {SERVER_VERSION} compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    let opts = match cli.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("natrium: {e}");
            return ExitCode::from(1);
        }
    };
    if cli.test_config {
        let file = cli
            .config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        println!("natrium: configuration file {file} is valid");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = natrium::logging::init(opts.debug, opts.trace, opts.logfile.as_deref()) {
        eprintln!("natrium: cannot open log file: {e}");
        return ExitCode::from(1);
    }
    let runtime = opts.runtime;
    let result = setup(opts).and_then(|(server, listener, store_dir)| match runtime {
        Runtime::Tokio => run_tokio(server, listener, store_dir),
        Runtime::Mio => run_mio(server, listener, store_dir),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Log the banner, prepare the store directory, bind the listener, build the engine.
fn setup(mut opts: Options) -> Result<(Server, TcpListener, Option<PathBuf>), String> {
    tracing::info!("Starting natrium");
    tracing::info!(
        "  Version:  {} (nats-server {SERVER_VERSION} compatible)",
        env!("CARGO_PKG_VERSION")
    );
    tracing::info!("  Git:      [not set]");
    if let Some(name) = &opts.engine.server_name {
        tracing::info!("  Name:     {name}");
    }
    for w in &opts.warnings {
        tracing::warn!("{w}");
    }
    let mut store_dir = None;
    if opts.jetstream {
        let dir = opts
            .store_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("nats"));
        let js = dir.join("jetstream");
        std::fs::create_dir_all(&js)
            .map_err(|e| format!("Could not create storage directory {}: {e}", js.display()))?;
        tracing::info!("Starting JetStream");
        tracing::info!("  Store Directory: \"{}\"", js.display());
        opts.engine.jetstream_persist = true;
        store_dir = Some(js);
    }

    let port = if opts.port < 0 { 0 } else { opts.port as u16 };
    let host = opts.host.clone();
    let bind_host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (bind_host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("Error listening on port: {host}:{port}, cannot resolve host"))?;
    let listener = TcpListener::bind(addr)
        .map_err(|e| format!("Error listening on port: {host}:{port}, \"{e}\""))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let bound: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    opts.engine.host = host.clone();
    opts.engine.port = bound.port();
    let shown = if bound.is_ipv6() {
        format!("[{}]", bound.ip())
    } else {
        bound.ip().to_string()
    };
    tracing::info!(
        "Listening for client connections on {shown}:{}",
        bound.port()
    );
    if let Some(pid_file) = &opts.pid_file {
        natrium::logging::write_pid_file(pid_file)
            .map_err(|e| format!("Could not write pidfile: {e}"))?;
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 32);
    let server = Server::new(opts.engine, seed);
    tracing::info!("Server is ready");
    Ok((server, listener, store_dir))
}

fn run_tokio(
    server: Server,
    listener: TcpListener,
    store_dir: Option<PathBuf>,
) -> Result<(), String> {
    // One thread: the engine is single-threaded anyway, so worker threads would
    // only move socket syscalls around, and their work-stealing spins burn the
    // cores that clients on the same machine need (request/reply on 2 cores:
    // 84 µs p50 with the multi-threaded scheduler, 52 µs with this one; see
    // benches/README.md). File I/O runs on the disk executor's own thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("Error starting runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        natrium_runtime_tokio::serve(server, listener, store_dir, shutdown_signal()).await
    })
    .map_err(|e| e.to_string())
}

fn run_mio(
    server: Server,
    listener: TcpListener,
    store_dir: Option<PathBuf>,
) -> Result<(), String> {
    let rt =
        natrium_runtime_mio::Runtime::new().map_err(|e| format!("Error starting runtime: {e}"))?;
    let stopper = rt.stopper();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| format!("Error installing signal handlers: {e}"))?;
    std::thread::Builder::new()
        .name("natrium-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                stopper.stop();
            }
        })
        .map_err(|e| e.to_string())?;
    rt.serve(server, listener, store_dir)
        .map_err(|e| e.to_string())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! Options from the config file: the parsed tree ([`crate::conf`]) mapped onto
//! defaults, following nats-server's `server/opts.go`.
//!
//! Keys are matched case-insensitively. Options natrium implements are mapped; other
//! options nats-server knows ([`ACCEPTED_IGNORED`]) are accepted and reported in
//! [`Options::warnings`] so existing configs still load; any other key is an error,
//! unless it was used as a variable (`$name`), as nats-server does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use natrium_engine::config::{AuthConfig, Permissions, SubjectPermission, User};

use crate::conf::{self, Entry, Map, Node, Pos, Value};

pub use crate::conf::ConfigError;

/// Everything the config file sets.
#[derive(Clone, Debug)]
pub struct Options {
    /// server_name, max_payload, max_control_line, max_pending, max_connections,
    /// max_subscriptions, ping_interval, ping_max, write_deadline, auth, jetstream.
    pub engine: natrium_engine::Config,
    /// Listen host (`host`, `net`, `listen`); default `0.0.0.0`.
    pub host: String,
    /// Listen port (`port`, `listen`); default 4222; -1 means a random port.
    pub port: i32,
    pub debug: bool,
    pub trace: bool,
    pub logfile: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub jetstream: bool,
    pub store_dir: Option<PathBuf>,
    /// Which runtime drives the engine (`runtime: mio` in a config file,
    /// `--runtime mio` on the command line); tokio by default.
    pub runtime: Runtime,
    /// Options accepted but not acted on, and other advice, as `file:line:col: text`.
    pub warnings: Vec<String>,
}

/// The runtimes the binary can drive the engine with (issue 7: both have
/// every feature; they differ only in how they make syscalls).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Runtime {
    /// tokio's current-thread scheduler, with reader and writer tasks.
    #[default]
    Tokio,
    /// One thread and one mio `Poll`.
    Mio,
}

impl std::str::FromStr for Runtime {
    type Err = String;

    fn from_str(s: &str) -> Result<Runtime, String> {
        match s.to_ascii_lowercase().as_str() {
            "tokio" => Ok(Runtime::Tokio),
            "mio" => Ok(Runtime::Mio),
            _ => Err(format!("unknown runtime {s:?} (tokio or mio)")),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            engine: natrium_engine::Config::default(),
            host: "0.0.0.0".to_string(),
            port: 4222,
            debug: false,
            trace: false,
            logfile: None,
            pid_file: None,
            jetstream: false,
            store_dir: None,
            runtime: Runtime::Tokio,
            warnings: Vec::new(),
        }
    }
}

/// Top-level options nats-server knows that natrium accepts without acting on them.
pub const ACCEPTED_IGNORED: &[&str] = &[
    "client_advertise",
    "logtime",
    "logtime_utc",
    "mappings",
    "maps",
    "disable_sublist_cache",
    "no_sublist_cache",
    "accounts",
    "default_sentinel",
    "http",
    "https",
    "http_port",
    "monitor_port",
    "https_port",
    "http_base_path",
    "cluster",
    "gateway",
    "leaf",
    "leafnodes",
    "logfile_size_limit",
    "log_size_limit",
    "logfile_max_num",
    "log_max_num",
    "syslog",
    "remote_syslog",
    "ports_file_dir",
    "prof_port",
    "prof_block_rate",
    "proxy_protocol",
    "max_traced_msg_len",
    "max_sub_tokens",
    "max_subscription_tokens",
    "tls",
    "ocsp",
    "allow_non_tls",
    "write_timeout",
    "lame_duck_duration",
    "lame_duck_grace_period",
    "operator",
    "operators",
    "roots",
    "root",
    "root_operators",
    "root_operator",
    "resolver",
    "account_resolver",
    "accounts_resolver",
    "resolver_tls",
    "resolver_preload",
    "resolver_pinned_accounts",
    "system_account",
    "system",
    "no_system_account",
    "no_system",
    "no_sys_acc",
    "no_header_support",
    "trusted",
    "trusted_keys",
    "connect_error_reports",
    "reconnect_error_reports",
    "websocket",
    "ws",
    "mqtt",
    "server_tags",
    "server_metadata",
    "feature_flags",
    "default_js_domain",
    "ocsp_cache",
    "no_fast_producer_stall",
    "max_closed_clients",
    "proxies",
];

/// `jetstream { … }` fields accepted without acting on them.
pub const JETSTREAM_ACCEPTED_IGNORED: &[&str] = &[
    "strict",
    "domain",
    "key",
    "ek",
    "encryption_key",
    "prev_key",
    "prev_ek",
    "prev_encryption_key",
    "cipher",
    "extension_hint",
    "limits",
    "tpm",
    "unique_tag",
    "max_outstanding_catchup",
    "max_buffered_size",
    "max_buffered_msgs",
    "request_queue_limit",
    "info_queue_limit",
    "meta_compact",
    "meta_compact_size",
    "meta_compact_sync",
    "max_concurrent_io",
];

/// nats-server warns above this max_payload (8MB).
pub const MAX_PAYLOAD_WARN_SIZE: i64 = 8 * 1024 * 1024;

/// Parses `path` and maps it onto the defaults.
pub fn load_file(path: &Path) -> Result<Options, ConfigError> {
    let tree = conf::parse_file(path)?;
    let mut opts = Options::default();
    if tree.is_empty() {
        opts.warnings.push(format!(
            "{}: config has no values or is empty",
            path.display()
        ));
    }
    apply(&mut opts, &tree)?;
    Ok(opts)
}

/// Parses config text (`file` names it in errors) and maps it onto the defaults.
pub fn load_str(src: &str, file: &str) -> Result<Options, ConfigError> {
    let tree = conf::parse_str(src, file)?;
    let mut opts = Options::default();
    apply(&mut opts, &tree)?;
    Ok(opts)
}

fn type_err(e: &Entry, want: &str) -> ConfigError {
    ConfigError::at(
        &e.node.pos,
        format!(
            "expected {want} for '{}', got {}",
            e.key,
            e.node.value.type_name()
        ),
    )
}

fn want_str(e: &Entry) -> Result<&str, ConfigError> {
    match &e.node.value {
        Value::String(s) => Ok(s),
        _ => Err(type_err(e, "a string")),
    }
}

fn want_int(e: &Entry) -> Result<i64, ConfigError> {
    match &e.node.value {
        Value::Integer(n) => Ok(*n),
        _ => Err(type_err(e, "an integer")),
    }
}

/// A size limit that fits nats-server's int32 fields: 0..=i32::MAX.
fn want_limit(e: &Entry) -> Result<i64, ConfigError> {
    let n = want_int(e)?;
    if n > i32::MAX as i64 {
        return Err(ConfigError::at(
            &e.node.pos,
            format!("{} value is too big", e.key),
        ));
    }
    if n < 0 {
        return Err(ConfigError::at(
            &e.node.pos,
            format!("{} value can not be negative", e.key),
        ));
    }
    Ok(n)
}

fn want_bool(e: &Entry) -> Result<bool, ConfigError> {
    match &e.node.value {
        Value::Bool(b) => Ok(*b),
        _ => Err(type_err(e, "a boolean")),
    }
}

fn want_map(e: &Entry) -> Result<&Map, ConfigError> {
    match &e.node.value {
        Value::Map(m) => Ok(m),
        _ => Err(type_err(e, "a map")),
    }
}

fn unknown(e: &Entry) -> ConfigError {
    ConfigError::at(&e.key_pos, format!("unknown field \"{}\"", e.key))
}

fn ignored(opts: &mut Options, e: &Entry, what: &str) {
    opts.warnings.push(format!(
        "{}: {what} '{}' is not supported by natrium yet; ignored",
        e.key_pos, e.key
    ));
}

/// Parses a Go duration (`1h30m`, `500ms`, `2.5s`, `0`). Units: ns, us (µs, μs), ms,
/// s, m, h. Negative durations are refused (they mean nothing here).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration \"{s}\"");
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let n: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale = match unit {
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("time: unknown unit \"{u}\" in duration \"{s}\"")),
        };
        total += n * scale;
    }
    if neg && total > 0.0 {
        return Err(format!("negative duration \"{s}\" is not allowed"));
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

/// A duration option: a Go duration string, or (old style) an integer of seconds.
fn duration(opts: &mut Options, e: &Entry) -> Result<Duration, ConfigError> {
    match &e.node.value {
        Value::String(s) => parse_go_duration(s)
            .map_err(|err| ConfigError::at(&e.node.pos, format!("error parsing {}: {err}", e.key))),
        Value::Integer(n) => {
            opts.warnings.push(format!(
                "{}: invalid use of field \"{}\": {} should be converted to a duration",
                e.key_pos, e.key, e.key
            ));
            if *n < 0 {
                return Err(ConfigError::at(
                    &e.node.pos,
                    format!("{} can not be negative", e.key),
                ));
            }
            Ok(Duration::from_secs(*n as u64))
        }
        _ => Err(type_err(e, "a duration")),
    }
}

fn parse_listen(e: &Entry) -> Result<(Option<String>, i32), ConfigError> {
    let bad = |m: String| ConfigError::at(&e.node.pos, m);
    match &e.node.value {
        Value::Integer(n) => Ok((None, port_of(e, *n)?)),
        Value::String(s) => {
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
                let n = s
                    .parse::<i64>()
                    .map_err(|_| bad(format!("could not parse port \"{s}\"")))?;
                return Ok((None, port_of(e, n)?));
            }
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| bad(format!("could not parse address string \"{s}\"")))?;
            let host = if let Some(h) = host.strip_prefix('[') {
                h.strip_suffix(']')
                    .ok_or_else(|| bad(format!("could not parse address string \"{s}\"")))?
            } else if host.contains(':') {
                return Err(bad(format!("could not parse address string \"{s}\"")));
            } else {
                host
            };
            let n: i64 = port
                .parse()
                .map_err(|_| bad(format!("could not parse port \"{port}\"")))?;
            let host = if host.is_empty() {
                None
            } else {
                Some(host.to_string())
            };
            Ok((host, port_of(e, n)?))
        }
        _ => Err(type_err(e, "port or host:port")),
    }
}

fn port_of(e: &Entry, n: i64) -> Result<i32, ConfigError> {
    if !(-1..=65535).contains(&n) {
        return Err(ConfigError::at(
            &e.node.pos,
            format!("invalid port {n}: must be -1 (random), 0 or up to 65535"),
        ));
    }
    Ok(n as i32)
}

fn set_port(opts: &mut Options, port: i32) {
    opts.port = port;
    if port > 0 {
        opts.engine.port = port as u16;
    }
}

fn set_host(opts: &mut Options, host: String) {
    opts.engine.host = host.clone();
    opts.host = host;
}

fn set_store_dir(opts: &mut Options, seen: &mut bool, e: &Entry) -> Result<(), ConfigError> {
    if *seen {
        return Err(ConfigError::at(
            &e.key_pos,
            "Duplicate 'store_dir' configuration",
        ));
    }
    *seen = true;
    opts.store_dir = Some(PathBuf::from(want_str(e)?));
    Ok(())
}

fn set_jetstream(opts: &mut Options, on: bool) {
    opts.jetstream = on;
    opts.engine.jetstream = on;
}

/// Maps a parsed config onto `opts`.
pub fn apply(opts: &mut Options, tree: &Map) -> Result<(), ConfigError> {
    let mut store_dir_seen = false;
    let mut payload_at: Option<Pos> = None;
    let mut pending_at: Option<Pos> = None;
    let mut no_auth_user: Option<(&Entry, String)> = None;
    let mut users_elsewhere = false;
    for e in tree.iter() {
        let key = e.key.to_ascii_lowercase();
        match key.as_str() {
            "listen" => {
                let (host, port) = parse_listen(e)?;
                set_host(opts, host.unwrap_or_else(|| "0.0.0.0".to_string()));
                set_port(opts, port);
            }
            "port" => {
                let p = port_of(e, want_int(e)?)?;
                set_port(opts, p);
            }
            "host" | "net" => set_host(opts, want_str(e)?.to_string()),
            "server_name" => {
                let s = want_str(e)?;
                if s.contains(' ') {
                    return Err(ConfigError::at(
                        &e.node.pos,
                        "server name cannot contain spaces",
                    ));
                }
                opts.engine.server_name = Some(s.to_string());
            }
            "debug" => opts.debug = want_bool(e)?,
            "trace" => opts.trace = want_bool(e)?,
            "trace_verbose" | "trace_headers" => {
                opts.trace = want_bool(e)?;
                if key == "trace_headers" {
                    ignored(opts, e, "option");
                }
            }
            "logfile" | "log_file" => opts.logfile = Some(PathBuf::from(want_str(e)?)),
            "pidfile" | "pid_file" => opts.pid_file = Some(PathBuf::from(want_str(e)?)),
            // natrium's own key: which runtime drives the engine.
            "runtime" => {
                opts.runtime = want_str(e)?
                    .parse()
                    .map_err(|m: String| ConfigError::at(&e.node.pos, &m))?
            }
            "max_control_line" => {
                let n = want_limit(e)?;
                if n > 0 {
                    opts.engine.max_control_line = n as u32;
                }
            }
            "max_payload" => {
                let n = want_limit(e)?;
                if n > 0 {
                    opts.engine.max_payload = n as u32;
                }
                if n > MAX_PAYLOAD_WARN_SIZE {
                    opts.warnings.push(format!(
                        "{}: maximum payload over 8.00 MB is not recommended",
                        e.key_pos
                    ));
                }
                payload_at = Some(e.key_pos.clone());
            }
            "max_pending" => {
                let n = want_int(e)?;
                if n < 0 {
                    return Err(ConfigError::at(
                        &e.node.pos,
                        format!("{} value can not be negative", e.key),
                    ));
                }
                if n > 0 {
                    opts.engine.max_pending = n as u64;
                }
                pending_at = Some(e.key_pos.clone());
            }
            "max_connections" | "max_conn" => {
                // nats-server: 0 means no connections at all (not "default").
                let n = want_int(e)?;
                opts.engine.max_connections = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
            }
            "max_subscriptions" | "max_subs" => {
                let n = want_int(e)?;
                opts.engine.max_subscriptions = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
            }
            "ping_interval" => opts.engine.ping_interval = duration(opts, e)?,
            "ping_max" => {
                let n = want_int(e)?;
                opts.engine.ping_max = u32::try_from(n).map_err(|_| {
                    ConfigError::at(&e.node.pos, format!("{} value is out of range", e.key))
                })?;
            }
            "write_deadline" => opts.engine.write_deadline = duration(opts, e)?,
            "authorization" => apply_authorization(opts, e)?,
            "no_auth_user" => no_auth_user = Some((e, want_str(e)?.to_string())),
            "store_dir" | "storedir" => set_store_dir(opts, &mut store_dir_seen, e)?,
            "jetstream" => apply_jetstream(opts, &mut store_dir_seen, e)?,
            k if ACCEPTED_IGNORED.contains(&k) => {
                if k == "accounts" {
                    users_elsewhere = true;
                }
                ignored(opts, e, "option");
            }
            _ if e.used_as_variable => {}
            _ => return Err(unknown(e)),
        }
    }
    if opts.engine.max_payload as u64 > opts.engine.max_pending {
        let pos = payload_at.or(pending_at);
        let msg = format!(
            "max_payload ({}) cannot be higher than max_pending ({})",
            opts.engine.max_payload, opts.engine.max_pending
        );
        return Err(match pos {
            Some(p) => ConfigError::at(&p, msg),
            None => ConfigError::in_file("config", msg),
        });
    }
    if let Some((e, name)) = no_auth_user {
        let auth = &opts.engine.auth;
        if !users_elsewhere {
            if auth.users.is_empty() {
                return Err(ConfigError::at(
                    &e.node.pos,
                    format!("no_auth_user: \"{name}\" present, but users/nkeys are not defined"),
                ));
            }
            if !auth.users.iter().any(|u| u.user == name) {
                return Err(ConfigError::at(
                    &e.node.pos,
                    format!("no_auth_user: \"{name}\" not present as user or nkey in authorization block or account configuration"),
                ));
            }
        }
        opts.engine.auth.no_auth_user = Some(name);
    }
    Ok(())
}

fn apply_jetstream(
    opts: &mut Options,
    store_dir_seen: &mut bool,
    e: &Entry,
) -> Result<(), ConfigError> {
    match &e.node.value {
        Value::Bool(b) => set_jetstream(opts, *b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" => set_jetstream(opts, true),
            "disabled" | "disable" => set_jetstream(opts, false),
            _ => {
                return Err(ConfigError::at(
                    &e.node.pos,
                    format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"),
                ))
            }
        },
        Value::Map(m) => {
            let mut enable = true;
            for f in m.iter() {
                let k = f.key.to_ascii_lowercase();
                match k.as_str() {
                    "store" | "store_dir" | "storedir" => set_store_dir(opts, store_dir_seen, f)?,
                    "enable" | "enabled" => enable = want_bool(f)?,
                    "max_memory_store" | "max_mem_store" | "max_mem" => {
                        opts.engine.jetstream_max_memory = want_int(f)?;
                    }
                    "max_file_store" | "max_file" => {
                        opts.engine.jetstream_max_store = want_int(f)?;
                    }
                    "sync_interval" | "sync" => {
                        let always = matches!(&f.node.value, Value::String(v) if v.eq_ignore_ascii_case("always"));
                        opts.engine.jetstream_sync_interval = if always {
                            None
                        } else {
                            Some(duration(opts, f)?).filter(|d| !d.is_zero())
                        };
                    }
                    k if JETSTREAM_ACCEPTED_IGNORED.contains(&k) => {
                        ignored(opts, f, "jetstream option")
                    }
                    _ if f.used_as_variable => {}
                    _ => return Err(unknown(f)),
                }
            }
            set_jetstream(opts, enable);
        }
        _ => return Err(type_err(e, "a boolean, 'enabled'/'disabled' or a map")),
    }
    Ok(())
}

fn apply_authorization(opts: &mut Options, e: &Entry) -> Result<(), ConfigError> {
    let m = want_map(e)?;
    let mut auth = AuthConfig::default();
    let mut users: Option<Vec<User>> = None;
    for f in m.iter() {
        match f.key.to_ascii_lowercase().as_str() {
            "user" | "username" => auth.user = Some(want_str(f)?.to_string()),
            "pass" | "password" => auth.password = Some(want_str(f)?.to_string()),
            "token" => auth.token = Some(want_str(f)?.to_string()),
            "timeout" => {
                let secs = match &f.node.value {
                    Value::Integer(n) => *n as f64,
                    Value::Float(x) => *x,
                    Value::String(s) => parse_go_duration(s)
                        .map_err(|err| {
                            ConfigError::at(
                                &f.node.pos,
                                format!("error parsing authorization config, 'timeout' {err}"),
                            )
                        })?
                        .as_secs_f64(),
                    _ => {
                        return Err(ConfigError::at(
                            &f.node.pos,
                            "error parsing authorization config, 'timeout' wrong type",
                        ))
                    }
                };
                if secs > 60.0 {
                    opts.warnings.push(format!(
                        "{}: invalid use of field \"{}\": timeout of {secs} seconds is high, consider keeping it under 60 seconds. possibly caused by unquoted duration; use '1m' instead of 1m, for example",
                        f.key_pos, f.key
                    ));
                }
                auth.timeout = Duration::try_from_secs_f64(secs).map_err(|_| {
                    ConfigError::at(
                        &f.node.pos,
                        "error parsing authorization config, 'timeout' must be a non-negative number of seconds",
                    )
                })?;
            }
            "users" => users = Some(parse_users(opts, f)?),
            "default_permission" | "default_permissions" | "permissions" => {
                auth.default_permissions = Some(parse_permissions(opts, f)?)
            }
            "auth_callout" | "auth_hook" | "proxy_required" => {
                ignored(opts, f, "authorization option")
            }
            _ if f.used_as_variable => {}
            _ => return Err(unknown(f)),
        }
    }
    if (auth.user.is_some() || auth.password.is_some()) && auth.token.is_some() {
        return Err(ConfigError::at(
            &e.key_pos,
            "Cannot have a user/pass and token",
        ));
    }
    if let Some(users) = users {
        if auth.user.is_some() {
            return Err(ConfigError::at(
                &e.key_pos,
                "Can not have a single user/pass and a users array",
            ));
        }
        if auth.token.is_some() {
            return Err(ConfigError::at(
                &e.key_pos,
                "Can not have a token and a users array",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for u in &users {
            if !seen.insert(u.user.clone()) {
                return Err(ConfigError::at(
                    &e.key_pos,
                    format!("Duplicate user \"{}\" detected", u.user),
                ));
            }
        }
        auth.users = users;
    }
    auth.no_auth_user = opts.engine.auth.no_auth_user.take();
    opts.engine.auth = auth;
    Ok(())
}

fn parse_users(opts: &mut Options, e: &Entry) -> Result<Vec<User>, ConfigError> {
    let Value::Array(items) = &e.node.value else {
        return Err(ConfigError::at(
            &e.node.pos,
            format!(
                "Expected users field to be an array, got {}",
                e.node.value.type_name()
            ),
        ));
    };
    let mut users = Vec::new();
    for item in items {
        let Value::Map(um) = &item.value else {
            return Err(ConfigError::at(
                &item.pos,
                format!(
                    "Expected user entry to be a map/struct, got {}",
                    item.value.type_name()
                ),
            ));
        };
        let mut user = User::default();
        let mut has_user = false;
        let mut nkey = false;
        for f in um.iter() {
            match f.key.to_ascii_lowercase().as_str() {
                "user" | "username" => {
                    user.user = want_str(f)?.to_string();
                    has_user = true;
                }
                "pass" | "password" => user.password = want_str(f)?.to_string(),
                "permission" | "permissions" | "authorization" => {
                    user.permissions = Some(parse_permissions(opts, f)?)
                }
                "nkey" => {
                    want_str(f)?;
                    nkey = true;
                    ignored(opts, f, "nkey user");
                }
                "allowed_connection_types" | "connection_types" | "clients" | "proxy_required" => {
                    ignored(opts, f, "user option")
                }
                _ if f.used_as_variable => {}
                _ => return Err(unknown(f)),
            }
        }
        if nkey {
            if has_user || !user.password.is_empty() {
                return Err(ConfigError::at(
                    &item.pos,
                    "Nkey users do not take usernames or passwords",
                ));
            }
            continue;
        }
        if !has_user || user.user.is_empty() {
            return Err(ConfigError::at(&item.pos, "User entry requires a user"));
        }
        users.push(user);
    }
    Ok(users)
}

fn parse_permissions(opts: &mut Options, e: &Entry) -> Result<Permissions, ConfigError> {
    let Value::Map(m) = &e.node.value else {
        return Err(ConfigError::at(
            &e.node.pos,
            format!(
                "Expected permissions to be a map/struct, got {}",
                e.node.value.type_name()
            ),
        ));
    };
    let mut p = Permissions::default();
    for f in m.iter() {
        match f.key.to_ascii_lowercase().as_str() {
            "pub" | "publish" | "import" => p.publish = subject_permission(&f.node, false)?,
            "sub" | "subscribe" | "export" => p.subscribe = subject_permission(&f.node, true)?,
            "publish_allow_responses" | "allow_responses" => ignored(opts, f, "permission"),
            _ if f.used_as_variable => {}
            _ => {
                return Err(ConfigError::at(
                    &f.key_pos,
                    format!("Unknown field \"{}\" parsing permissions", f.key),
                ))
            }
        }
    }
    Ok(p)
}

/// A string, an array (allow list), or `{ allow, deny }`.
fn subject_permission(
    node: &Node,
    allow_queue: bool,
) -> Result<Option<SubjectPermission>, ConfigError> {
    match &node.value {
        Value::Map(m) => {
            if m.is_empty() {
                return Ok(None);
            }
            let mut sp = SubjectPermission::default();
            for f in m.iter() {
                match f.key.to_ascii_lowercase().as_str() {
                    "allow" => sp.allow = subjects(&f.node, allow_queue)?,
                    "deny" => sp.deny = subjects(&f.node, allow_queue)?,
                    _ if f.used_as_variable => {}
                    _ => return Err(ConfigError::at(
                        &f.key_pos,
                        format!("Unknown field name \"{}\" parsing subject permissions, only 'allow' or 'deny' are permitted", f.key),
                    )),
                }
            }
            Ok(Some(sp))
        }
        _ => Ok(Some(SubjectPermission {
            allow: subjects(node, allow_queue)?,
            deny: Vec::new(),
        })),
    }
}

fn subjects(node: &Node, allow_queue: bool) -> Result<Vec<String>, ConfigError> {
    let list = match &node.value {
        Value::String(s) => vec![(s.clone(), &node.pos)],
        Value::Array(items) => {
            let mut v = Vec::new();
            for i in items {
                match &i.value {
                    Value::String(s) => v.push((s.clone(), &i.pos)),
                    _ => {
                        return Err(ConfigError::at(
                            &i.pos,
                            "Subject in permissions array cannot be cast to string",
                        ))
                    }
                }
            }
            v
        }
        other => {
            return Err(ConfigError::at(
                &node.pos,
                format!(
                    "Expected subject permissions to be a subject, or array of subjects, got {}",
                    other.type_name()
                ),
            ))
        }
    };
    let mut out = Vec::new();
    for (s, pos) in list {
        if !valid_subject(&s) {
            let parts: Vec<&str> = s.split_whitespace().collect();
            let queue_ok = allow_queue
                && parts.len() == 2
                && valid_subject(parts[0])
                && valid_subject(parts[1]);
            if !queue_ok {
                return Err(ConfigError::at(
                    pos,
                    format!("subject \"{s}\" is not a valid subject"),
                ));
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// nats-server's IsValidSubject: non-empty tokens, no white space, `>` only last.
fn valid_subject(s: &str) -> bool {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return false;
    }
    let toks: Vec<&str> = s.split('.').collect();
    let n = toks.len();
    toks.iter()
        .enumerate()
        .all(|(i, t)| !(t.is_empty() || (*t == ">" && i != n - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> Options {
        load_str(src, "t.conf").unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(src: &str) -> String {
        load_str(src, "t.conf")
            .expect_err("should fail")
            .to_string()
    }

    fn sp(allow: &[&str], deny: &[&str]) -> Option<SubjectPermission> {
        Some(SubjectPermission {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn runtime_key() {
        assert_eq!(load("").runtime, Runtime::Tokio);
        assert_eq!(load("runtime: mio").runtime, Runtime::Mio);
        assert_eq!(load("runtime: \"Tokio\"").runtime, Runtime::Tokio);
        let e = err("port: 4222\nruntime: uring\n");
        assert!(
            e.starts_with("t.conf:2:") && e.contains("unknown runtime"),
            "{e}"
        );
    }

    #[test]
    fn defaults() {
        let o = load("");
        assert_eq!(o.host, "0.0.0.0");
        assert_eq!(o.port, 4222);
        assert!(!o.debug && !o.trace && !o.jetstream);
        assert_eq!(o.engine.max_payload, 1024 * 1024);
    }

    #[test]
    fn listen_host_port() {
        let o = load("listen: 127.0.0.1:4242");
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 4242));
        let o = load("listen: \":5222\"");
        assert_eq!((o.host.as_str(), o.port), ("0.0.0.0", 5222));
        let o = load("listen: 6222");
        assert_eq!(o.port, 6222);
        let o = load("listen: \"7222\"");
        assert_eq!(o.port, 7222);
        let o = load("listen: \"[::1]:4222\"");
        assert_eq!(o.host, "::1");
        let o = load("listen: localhost:4222");
        assert_eq!((o.host.as_str(), o.port), ("localhost", 4222));
        let o = load("host: 10.0.0.1\nport: -1");
        assert_eq!((o.host.as_str(), o.port), ("10.0.0.1", -1));
        let o = load("net: myhost\nPORT: 1234");
        assert_eq!((o.host.as_str(), o.port), ("myhost", 1234));
        assert_eq!(o.engine.port, 1234);
        assert_eq!(
            err("listen: \"nohost\""),
            "t.conf:1:9: could not parse address string \"nohost\""
        );
        assert!(err("port: 70000").starts_with("t.conf:1:7: invalid port"));
    }

    #[test]
    fn limits_and_durations() {
        let o = load(
            "server_name: my-server\nmax_payload: 2MB\nmax_pending: 100mb\nmax_control_line: 2kb\nmax_connections: 100\nmax_subscriptions: 1000\nping_interval: \"30s\"\nping_max: 3\nwrite_deadline: \"1h30m\"\n",
        );
        let e = &o.engine;
        assert_eq!(e.server_name.as_deref(), Some("my-server"));
        assert_eq!(e.max_payload, 2 << 20);
        assert_eq!(e.max_pending, 100 << 20);
        assert_eq!(e.max_control_line, 2048);
        assert_eq!(e.max_connections, 100);
        assert_eq!(e.max_subscriptions, 1000);
        assert_eq!(e.ping_interval, Duration::from_secs(30));
        assert_eq!(e.ping_max, 3);
        assert_eq!(e.write_deadline, Duration::from_secs(5400));
        let o = load(
            "max_conn: 5\nmax_subs: 6\nmax_payload: \"1024\""
                .replace("\"1024\"", "1024")
                .as_str(),
        );
        assert_eq!(
            (o.engine.max_connections, o.engine.max_subscriptions),
            (5, 6)
        );
        assert_eq!(o.engine.max_payload, 1024);
        // a bare integer duration means seconds, with a warning
        let o = load("ping_interval: 60\nwrite_deadline: 2");
        assert_eq!(o.engine.ping_interval, Duration::from_secs(60));
        assert_eq!(o.engine.write_deadline, Duration::from_secs(2));
        assert_eq!(o.warnings.len(), 2);
        assert!(o.warnings[0].contains("should be converted to a duration"));
        let o = load("write_deadline: '500ms'");
        assert_eq!(o.engine.write_deadline, Duration::from_millis(500));
        assert_eq!(
            err("ping_interval: \"10x\""),
            "t.conf:1:16: error parsing ping_interval: time: unknown unit \"x\" in duration \"10x\""
        );
        assert_eq!(
            err("max_payload: 2MB\nmax_pending: 1MB\n"),
            "t.conf:1:1: max_payload (2097152) cannot be higher than max_pending (1048576)"
        );
        assert!(err("max_payload: 4GB").contains("value is too big"));
        let o = load("max_payload: 16MB");
        assert!(o.warnings[0].contains("not recommended"));
        assert!(err("server_name: \"a b\"").contains("cannot contain spaces"));
    }

    #[test]
    fn go_durations() {
        let d = |s| parse_go_duration(s).unwrap();
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("2m"), Duration::from_secs(120));
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d("10us"), Duration::from_micros(10));
        assert_eq!(d("10µs"), Duration::from_micros(10));
        assert_eq!(d("7ns"), Duration::from_nanos(7));
        assert_eq!(d("+1s"), Duration::from_secs(1));
        for bad in ["", "1", "1d", "s", "-1s", "1..5s", ".s", "abc"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn logging_and_files() {
        let o = load("debug: true\ntrace: yes\nlogfile: \"/tmp/nats.log\"\npid_file: /tmp/nats.pid\nlogtime: false\nsyslog: on");
        assert!(o.debug && o.trace);
        assert_eq!(o.logfile, Some(PathBuf::from("/tmp/nats.log")));
        assert_eq!(o.pid_file, Some(PathBuf::from("/tmp/nats.pid")));
        let o = load("log_file: a.log\npidfile: b.pid\ntrace_verbose: true");
        assert_eq!(o.logfile, Some(PathBuf::from("a.log")));
        assert_eq!(o.pid_file, Some(PathBuf::from("b.pid")));
        assert!(o.trace);
        assert_eq!(
            err("debug: 1"),
            "t.conf:1:8: expected a boolean for 'debug', got integer"
        );
        assert_eq!(
            err("port: \"x\""),
            "t.conf:1:7: expected an integer for 'port', got string"
        );
    }

    #[test]
    fn jetstream() {
        assert!(load("jetstream: true").jetstream);
        assert!(load("jetstream: enabled").engine.jetstream);
        assert!(!load("jetstream: disabled").jetstream);
        assert!(!load("jetstream: false").jetstream);
        let o = load("jetstream { store_dir: /data/js\nmax_mem: 1G\nmax_file: 10G }");
        assert_eq!(o.engine.jetstream_max_memory, 1_000_000_000);
        assert_eq!(o.engine.jetstream_max_store, 10_000_000_000);
        assert!(o.jetstream && o.engine.jetstream);
        assert_eq!(o.store_dir, Some(PathBuf::from("/data/js")));
        assert!(
            o.warnings.is_empty(),
            "max_mem and max_file are applied now"
        );
        assert_eq!(
            load("jetstream { sync_interval: \"2s\" }")
                .engine
                .jetstream_sync_interval,
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(
            load("jetstream { sync_interval: always }")
                .engine
                .jetstream_sync_interval,
            None
        );
        let o = load("jetstream { store: /x, enabled: false }");
        assert!(!o.jetstream);
        assert_eq!(o.store_dir, Some(PathBuf::from("/x")));
        let o = load("jetstream {}\nstore_dir: /y");
        assert!(o.jetstream);
        assert_eq!(o.store_dir, Some(PathBuf::from("/y")));
        assert_eq!(
            err("store_dir: /a\njetstream {\n  store_dir: /b\n}"),
            "t.conf:3:3: Duplicate 'store_dir' configuration"
        );
        assert_eq!(
            err("jetstream { store_dir: /b }\nstore_dir: /a"),
            "t.conf:2:1: Duplicate 'store_dir' configuration"
        );
        assert!(err("jetstream: maybe").contains("Expected 'enabled' or 'disabled'"));
        assert_eq!(
            err("jetstream { bogus: 1 }"),
            "t.conf:1:13: unknown field \"bogus\""
        );
    }

    #[test]
    fn authorization_single_user() {
        let o = load("authorization {\n  user: derek\n  password: porkchop\n  timeout: 1\n}");
        let a = &o.engine.auth;
        assert_eq!(a.user.as_deref(), Some("derek"));
        assert_eq!(a.password.as_deref(), Some("porkchop"));
        assert_eq!(a.timeout, Duration::from_secs(1));
        assert!(a.required());
        let o = load("authorization { username: u, pass: p, timeout: 0.5 }");
        assert_eq!(o.engine.auth.password.as_deref(), Some("p"));
        assert_eq!(o.engine.auth.timeout, Duration::from_millis(500));
        let o = load("authorization { token: s3cr3t, timeout: \"3s\" }");
        assert_eq!(o.engine.auth.token.as_deref(), Some("s3cr3t"));
        assert_eq!(o.engine.auth.timeout, Duration::from_secs(3));
        // bcrypt, unquoted
        let o = load("authorization {\n  user: derek\n  password: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG\n}");
        assert_eq!(
            o.engine.auth.password.as_deref(),
            Some("$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG")
        );
        assert_eq!(
            err("authorization {\n user: a\n token: b\n}"),
            "t.conf:1:1: Cannot have a user/pass and token"
        );
        assert_eq!(
            err("debug = false\nauthorization { user: a, users: [] }"),
            "t.conf:2:1: Can not have a single user/pass and a users array"
        );
        assert!(err("authorization { token: a, users: [] }").contains("token and a users array"));
        assert!(err("authorization { timeout: true }").contains("'timeout' wrong type"));
        assert!(err("authorization { timeout: -1 }").contains("non-negative"));
        assert_eq!(
            err("authorization { nope: 1 }"),
            "t.conf:1:17: unknown field \"nope\""
        );
        assert!(load("authorization { timeout: 120 }").warnings[0].contains("is high"));
    }

    #[test]
    fn authorization_users_and_permissions() {
        let o = load(
            r#"
authorization {
  ADMIN = { publish = ">", subscribe = ">" }
  REQUESTOR = {
    publish = ["req.a", "req.b"]
    subscribe = "_INBOX.>"
  }
  default_permissions: { sub: "PUBLIC.>" }
  users = [
    {user: alice, password: foo, permissions: $ADMIN}
    {user: bob,   password: bar, permissions: $REQUESTOR}
    {user: carol, password: baz, permissions: {
        publish: { allow: ["a.>", "b"], deny: "a.secret" }
        subscribe: { deny: ["x.*"] }
    }}
    {user: dave, password: qux}
    {user: erin, password: q, permissions: { pub: "p", sub: "s q" }}
  ]
}
no_auth_user: dave
"#,
        );
        let a = &o.engine.auth;
        assert_eq!(a.users.len(), 5);
        assert_eq!(a.users[0].user, "alice");
        let p0 = a.users[0].permissions.as_ref().unwrap();
        assert_eq!(p0.publish, sp(&[">"], &[]));
        assert_eq!(p0.subscribe, sp(&[">"], &[]));
        let p1 = a.users[1].permissions.as_ref().unwrap();
        assert_eq!(p1.publish, sp(&["req.a", "req.b"], &[]));
        assert_eq!(p1.subscribe, sp(&["_INBOX.>"], &[]));
        let p2 = a.users[2].permissions.as_ref().unwrap();
        assert_eq!(p2.publish, sp(&["a.>", "b"], &["a.secret"]));
        assert_eq!(p2.subscribe, sp(&[], &["x.*"]));
        assert!(a.users[3].permissions.is_none());
        let p4 = a.users[4].permissions.as_ref().unwrap();
        assert_eq!(p4.subscribe, sp(&["s q"], &[]));
        assert_eq!(
            a.default_permissions.as_ref().unwrap().subscribe,
            sp(&["PUBLIC.>"], &[])
        );
        assert_eq!(a.no_auth_user.as_deref(), Some("dave"));
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);

        assert!(err("authorization { users: [ {user: a}, {user: a} ] }")
            .contains("Duplicate user \"a\""));
        assert!(err("authorization { users: [ {password: a} ] }")
            .contains("User entry requires a user"));
        assert!(err("authorization { users: [ 1 ] }").contains("Expected user entry to be a map"));
        assert!(err("authorization { users: { } }").contains("Expected users field to be an array"));
        assert!(
            err("authorization { users: [ {user: a, permissions: { publish: \"a..b\" }} ] }")
                .contains("not a valid subject")
        );
        assert!(
            err("authorization { users: [ {user: a, permissions: { what: x }} ] }")
                .contains("Unknown field \"what\" parsing permissions")
        );
        assert!(err(
            "authorization { users: [ {user: a, permissions: { pub: { allow: x, nope: y } }} ] }"
        )
        .contains("only 'allow' or 'deny'"));
        assert!(
            err("authorization { users: [ {user: a, permissions: { pub: [1] }} ] }")
                .contains("cannot be cast to string")
        );
        assert_eq!(
            err("authorization { users: [ {user: a} ] }\nno_auth_user: b"),
            "t.conf:2:15: no_auth_user: \"b\" not present as user or nkey in authorization block or account configuration"
        );
        assert!(err("no_auth_user: b").contains("users/nkeys are not defined"));
        // allow_responses is accepted with a warning
        let o =
            load("authorization { permissions: { publish_allow_responses: true, subscribe: x } }");
        assert_eq!(o.warnings.len(), 1);
    }

    #[test]
    fn unknown_and_ignored_keys() {
        assert_eq!(
            err("port: 4222\nbogus_option: 1"),
            "t.conf:2:1: unknown field \"bogus_option\""
        );
        assert_eq!(
            err("  permissions { publish: x }"),
            "t.conf:1:3: unknown field \"permissions\""
        );
        let o = load(
            "cluster { name: c, listen: 0.0.0.0:6222, routes: [nats://a:6222] }\ngateway { name: g }\nleafnodes { port: 7422 }\nwebsocket { port: 8080, no_tls: true }\nmqtt { port: 1883 }\naccounts { A: { users: [{user: x, password: y}] } }\ntls { cert_file: a, key_file: b }\nhttp_port: 8222\nhttp: 8222\nmonitor_port: 8222\nlame_duck_duration: \"30s\"\nlame_duck_grace_period: \"10s\"\nmappings { a: b }\nsystem_account: SYS\nserver_tags: [a, b]\nlogtime: true\n",
        );
        assert_eq!(o.warnings.len(), 16);
        assert!(
            o.warnings[0].starts_with("t.conf:1:1: option 'cluster'"),
            "{}",
            o.warnings[0]
        );
        // variables used elsewhere are not options
        let o = load("MYPORT = 4333\nport = $MYPORT");
        assert_eq!(o.port, 4333);
        // keys are case-insensitive
        let o = load("Debug: true\nMAX_PAYLOAD: 100");
        assert!(o.debug);
        assert_eq!(o.engine.max_payload, 100);
    }

    #[test]
    fn load_file_with_includes_and_env() {
        let dir = std::env::temp_dir().join(format!("natrium-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("auth")).unwrap();
        let var = format!("NATRIUM_CONFIG_TEST_PORT_{}", std::process::id());
        std::env::set_var(&var, "4555");
        std::fs::write(
            dir.join("auth/users.conf"),
            "users = [\n  {user: alice, password: $2a$11$x9lB8tq9aVc1YpSYeFYdKerhp1Cy0dfGK3/nSMXDCGCxrHzbHYrjG}\n]\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("main.conf"),
            format!(
                "# realistic\nport: ${var}\nserver_name: \"n1\"\nauthorization {{\n  include 'auth/users.conf'\n}}\njetstream {{\n  store_dir: \"{}\"\n}}\n",
                dir.join("js").display()
            ),
        )
        .unwrap();
        let o = load_file(&dir.join("main.conf"));
        std::env::remove_var(&var);
        let res = std::fs::remove_dir_all(&dir);
        let o = o.unwrap_or_else(|e| panic!("{e}"));
        res.unwrap();
        assert_eq!(o.port, 4555);
        assert_eq!(o.engine.server_name.as_deref(), Some("n1"));
        assert_eq!(o.engine.auth.users[0].user, "alice");
        assert!(o.engine.auth.users[0].password.starts_with("$2a$11$"));
        assert!(o.jetstream);
        assert!(o.store_dir.unwrap().ends_with("js"));
        let e = load_file(Path::new("/nonexistent/natrium.conf")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("/nonexistent/natrium.conf: error opening config file"));
    }

    /// Config files modelled on nats-server's server/configs/.
    #[test]
    fn nats_server_sample_configs() {
        let test_conf = r#"
# Simple config file

server_name: testing_server

server_metadata {
  key1: value1
  key2: value2
}

listen: 127.0.0.1:4242

http: 8222

http_base_path: /nats

authorization {
  user:     derek
  password: porkchop
  timeout:  1
}

# logging options
debug:   false
trace:   true
logtime: false
syslog: true
remote_syslog: "udp://foo.com:33"

# pid file
pid_file: "/tmp/nats-server/nats-server.pid"

# prof_port
prof_port: 6543

# max_connections
max_connections: 100

# max_subscriptions (per connection)
max_subscriptions: 1000

# max_pending
max_pending: 10000000

# maximum control line
max_control_line: 2048

# maximum payload
max_payload: 65536

# ping interval and no pong threshold
ping_interval: "60s"
ping_max: 3

# how long server can block on a socket write to a client
write_deadline: "3s"

lame_duck_duration: "4m"

# report repeated failed route/gateway/leafNode connection
# every 24hour (24*60*60)
connect_error_reports: 86400

# report failed reconnect events every 5 attempts
reconnect_error_reports: 5
"#;
        let o = load(test_conf);
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 4242));
        assert_eq!(o.engine.server_name.as_deref(), Some("testing_server"));
        assert_eq!(o.engine.auth.user.as_deref(), Some("derek"));
        assert!(!o.debug && o.trace);
        assert_eq!(
            o.pid_file,
            Some(PathBuf::from("/tmp/nats-server/nats-server.pid"))
        );
        assert_eq!(o.engine.max_connections, 100);
        assert_eq!(o.engine.max_subscriptions, 1000);
        assert_eq!(o.engine.max_pending, 10_000_000);
        assert_eq!(o.engine.max_control_line, 2048);
        assert_eq!(o.engine.max_payload, 65536);
        assert_eq!(o.engine.ping_interval, Duration::from_secs(60));
        assert_eq!(o.engine.ping_max, 3);
        assert_eq!(o.engine.write_deadline, Duration::from_secs(3));

        let authorization_conf = r#"
listen: 127.0.0.1:4222

authorization {
  # Our role based permissions.

  # Superuser can do anything.
  super_user = {
    publish = "*"
    subscribe = ">"
  }
  # Can do requests on foo or bar, and subscribe to anything
  # that is a response to an _INBOX.
  #
  # Notice that authorization filters can be singletons or arrays.
  req_pub_user = {
    publish = ["req.foo", "req.bar"]
    subscribe = "_INBOX.>"
  }

  # Setup a default user that can subscribe to anything, but has
  # no publish capabilities.
  default_user = {
    subscribe = "PUBLIC.>"
  }

  # Service can listen on the request subject and respond to any
  # received reply subject.
  my_service = {
    subscribe = "my.service.req"
    publish_allow_responses: true
  }

  # Can support a map with max messages and expiration of the permission.
  my_stream_service = {
    subscribe = "my.service.req"
    allow_responses: {max: 10, expires: "1m"}
  }

  # Default permissions if none presented. e.g. susan below.
  default_permissions: $default_user

  # Users listed with persmissions.
  users = [
    {user: alice, password: foo, permissions: $super_user}
    {user: bob,   password: bar, permissions: $req_pub_user}
    {user: susan, password: baz}
    {user: svca,  password: pc,  permissions: $my_service}
    {user: svcb,  password: sam, permissions: $my_stream_service}
  ]
}"#;
        let o = load(authorization_conf);
        assert_eq!(o.engine.auth.users.len(), 5);
        assert_eq!(
            o.engine.auth.users[1].permissions.as_ref().unwrap().publish,
            sp(&["req.foo", "req.bar"], &[])
        );

        let cluster_conf = r#"
# Cluster config file

port: 4242
net: 127.0.0.1

authorization {
  user: derek
  password: porkchop
  timeout: 1
}

pid_file: '/tmp/nats-server/nats_cluster_test.pid'

cluster {
  host: '127.0.0.1'
  port: 4244

  authorization {
    user: route_user
    password: top_secret
    timeout: 1
  }

  # Routes are actively solicited and connected to from this server.
  routes = [
    nats-route://foo:bar@127.0.0.1:4245
    nats-route://foo:bar@127.0.0.1:4246
  ]
}
"#;
        let o = load(cluster_conf);
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 4242));
        assert_eq!(o.warnings.len(), 1);

        let js_conf = r#"
listen: 127.0.0.1:-1
server_name: "S1"
jetstream: {max_mem_store: 256MB, max_file_store: 2GB, store_dir: '/tmp/js', domain: hub}
leaf {
  listen: 127.0.0.1:-1
  remotes [ { url: "nats-leaf://127.0.0.1:7422", account: "$SYS" } ]
}
accounts {
  $SYS { users = [ { user: "admin", pass: "s3cr3t!" } ] }
  JS { jetstream: enabled, users = [ {user: js, password: js} ] }
}
no_auth_user: js
"#;
        let o = load(js_conf);
        assert_eq!(o.port, -1);
        assert!(o.jetstream);
        assert_eq!(o.store_dir, Some(PathBuf::from("/tmp/js")));
        assert_eq!(o.engine.auth.no_auth_user.as_deref(), Some("js"));

        let json_conf = r#"{
  "port": 4333,
  "authorization": {
    "users": [ {"user": "a", "password": "b"} ]
  },
  "max_payload": 1048576
}"#;
        let o = load(json_conf);
        assert_eq!(o.port, 4333);
        assert_eq!(o.engine.auth.users[0].password, "b");
        let tls_conf = r#"
listen: 127.0.0.1:4443
tls {
  cert_file: "./configs/certs/server.pem"
  key_file:  "./configs/certs/key.pem"
  timeout: 2
  cipher_suites: [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
  ]
}
authorization {
  user: derek
  password: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG
  timeout: 2
}
"#;
        let o = load(tls_conf);
        assert!(o
            .engine
            .auth
            .password
            .as_deref()
            .unwrap()
            .starts_with("$2a$11$W2zko"));
    }

    proptest::proptest! {
        #[test]
        fn load_never_panics(src in "[a-z_0-9 =:{}\\[\\],;#\"'$.\\n-]{0,120}") {
            let _ = load_str(&src, "p.conf");
        }

        #[test]
        fn durations_never_panic(s in "\\PC{0,20}") {
            let _ = parse_go_duration(&s);
        }
    }
}

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
    /// Options accepted but not acted on, and other advice, as `file:line:col: text`.
    pub warnings: Vec<String>,
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
    "sync",
    "sync_interval",
    "max_memory_store",
    "max_mem_store",
    "max_mem",
    "max_file_store",
    "max_file",
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
            "max_control_line" => {
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
                if n > 0 {
                    opts.engine.max_control_line = n as u32;
                }
            }
            "max_payload" => {
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
        .all(|(i, t)| !t.is_empty() && !(*t == ">" && i != n - 1))
}

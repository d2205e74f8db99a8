//! Per-connection protocol state: CONNECT options, the partial-input buffer, the
//! outbound buffer and its accounting, keep-alive counters. No routing decisions.

use std::sync::Arc;

use bytes::BytesMut;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::auth::CompiledPermissions;
use crate::time::Instant;
use crate::Map;

/// The fields of CONNECT the server acts on (section 1.3). Fields a client leaves
/// out keep nats-server's defaults: verbose, pedantic and echo start out true.
/// Decoded by [`ConnectOptions::apply_json`], which follows Go's `encoding/json`.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    pub verbose: bool,
    pub pedantic: bool,
    pub echo: bool,
    pub headers: bool,
    pub no_responders: bool,
    pub protocol: i64,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth_token: Option<String>,
    pub account: Option<String>,
    pub new_account: Option<bool>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            protocol: 0,
            name: None,
            lang: None,
            version: None,
            user: None,
            pass: None,
            auth_token: None,
            account: None,
            new_account: None,
        }
    }
}

/// The JSON keys of nats-server's `ClientOpts`; other keys are ignored.
const CONNECT_FIELDS: [&str; 20] = [
    "echo",
    "verbose",
    "pedantic",
    "tls_required",
    "nkey",
    "jwt",
    "sig",
    "auth_token",
    "user",
    "pass",
    "name",
    "lang",
    "version",
    "protocol",
    "account",
    "new_account",
    "headers",
    "no_responders",
    "import",
    "export",
];

/// A top-level JSON value that must be an object (its members in document
/// order, duplicates kept) or `null`.
struct GoObject(Option<Vec<(String, Value)>>);

impl<'de> Deserialize<'de> for GoObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GoObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object or null")
            }
            fn visit_unit<E>(self) -> Result<GoObject, E> {
                Ok(GoObject(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<GoObject, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = m.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(GoObject(Some(entries)))
            }
        }
        d.deserialize_any(V)
    }
}

fn go_bool(v: &Value) -> Result<bool, ()> {
    v.as_bool().ok_or(())
}

fn go_string(v: &Value) -> Result<String, ()> {
    v.as_str().map(str::to_owned).ok_or(())
}

/// `import`/`export` (`*SubjectPermission`): an object whose `allow` and
/// `deny` are arrays of strings. Only checked; clients have no use for them.
fn go_subject_permission(v: &Value) -> Result<(), ()> {
    let obj = v.as_object().ok_or(())?;
    for (k, v) in obj {
        if !(k.eq_ignore_ascii_case("allow") || k.eq_ignore_ascii_case("deny")) || v.is_null() {
            continue;
        }
        let list = v.as_array().ok_or(())?;
        if !list.iter().all(|s| s.is_string() || s.is_null()) {
            return Err(());
        }
    }
    Ok(())
}

impl ConnectOptions {
    /// Apply a CONNECT argument the way nats-server's `json.Unmarshal(arg,
    /// &c.opts)` does: onto the current options (a second CONNECT updates the
    /// first), keys matched exactly or else ASCII case-insensitively, later
    /// duplicates win, `null` values (and a `null` document) change nothing,
    /// unknown keys are ignored, a known key of the wrong JSON type is an error,
    /// and invalid UTF-8 inside strings becomes U+FFFD. On error the options may
    /// be partly updated; the caller closes the connection.
    pub fn apply_json(&mut self, json: &[u8]) -> Result<(), ()> {
        let text = String::from_utf8_lossy(json);
        let GoObject(entries) = serde_json::from_str(&text).map_err(|_| ())?;
        for (key, v) in entries.unwrap_or_default() {
            let field = CONNECT_FIELDS
                .iter()
                .find(|f| **f == key)
                .or_else(|| CONNECT_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(&key)));
            let Some(field) = field else {
                continue;
            };
            if v.is_null() {
                continue;
            }
            match *field {
                "echo" => self.echo = go_bool(&v)?,
                "verbose" => self.verbose = go_bool(&v)?,
                "pedantic" => self.pedantic = go_bool(&v)?,
                "headers" => self.headers = go_bool(&v)?,
                "no_responders" => self.no_responders = go_bool(&v)?,
                "new_account" => self.new_account = Some(go_bool(&v)?),
                "tls_required" => {
                    go_bool(&v)?;
                }
                "protocol" => self.protocol = v.as_i64().ok_or(())?,
                "name" => self.name = Some(go_string(&v)?),
                "lang" => self.lang = Some(go_string(&v)?),
                "version" => self.version = Some(go_string(&v)?),
                "user" => self.user = Some(go_string(&v)?),
                "pass" => self.pass = Some(go_string(&v)?),
                "auth_token" => self.auth_token = Some(go_string(&v)?),
                "account" => self.account = Some(go_string(&v)?),
                "nkey" | "jwt" | "sig" => {
                    go_string(&v)?;
                }
                _ => go_subject_permission(&v)?,
            }
        }
        Ok(())
    }

    /// nats-server rejects `account` (non-empty) and `new_account: true`.
    pub fn names_account(&self) -> bool {
        self.account.as_deref().is_some_and(|a| !a.is_empty()) || self.new_account == Some(true)
    }
}

/// One client connection.
pub(crate) struct Conn {
    pub id: u64,
    pub opts: ConnectOptions,
    /// CONNECT has been processed.
    pub connected: bool,
    /// Auth is required and CONNECT has not been seen yet.
    pub awaiting_auth: bool,
    pub permissions: Option<Arc<CompiledPermissions>>,
    /// Deliveries are filtered through the subscribe deny list: set once a
    /// wildcard subscription overlapped it (nats-server's `mperms`).
    pub deny_filter: bool,
    /// Client sid -> subscription key.
    pub sids: Map<Box<[u8]>, usize>,
    /// Bytes of an operation that has not fully arrived yet.
    pub partial: Vec<u8>,
    /// Total length `partial` must reach before parsing can progress.
    pub partial_need: usize,
    /// Frames waiting to be handed to the runtime.
    pub out: BytesMut,
    /// Bytes handed to the runtime and not yet reported written.
    pub in_flight: u64,
    /// When the runtime last reported write progress (or when in-flight bytes began).
    pub write_progress_at: Instant,
    /// Already in the server's list of connections with data to transmit.
    pub dirty: bool,
    /// Being closed: no more input is parsed and nothing more is delivered.
    pub closing: bool,
    pub pings_out: u32,
    pub last_activity: Instant,
    pub rtt_known: bool,
    /// When the server last sent a keep-alive PING (nats-server's `rttStart`).
    pub rtt_start: Option<Instant>,
    /// Armed deadlines, indexed by timer kind (at most one of each).
    pub timers: [Option<Instant>; 4],
    /// Reading is paused: this connection is a stalled fast producer.
    pub read_paused: bool,
    /// Producers (by id) stalled until this connection drains. Bounded by the
    /// number of connections; each producer is in at most one list at a time.
    pub stalled_producers: Vec<u64>,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
}

impl Conn {
    pub fn new(id: u64, now: Instant, awaiting_auth: bool, hash_seed: u64) -> Conn {
        Conn {
            id,
            opts: ConnectOptions::default(),
            connected: false,
            awaiting_auth,
            permissions: None,
            deny_filter: false,
            sids: Map::with_hasher(foldhash::fast::FixedState::with_seed(hash_seed)),
            partial: Vec::new(),
            partial_need: 0,
            out: BytesMut::new(),
            in_flight: 0,
            write_progress_at: now,
            dirty: false,
            closing: false,
            pings_out: 0,
            last_activity: now,
            rtt_known: false,
            rtt_start: None,
            timers: [None; 4],
            read_paused: false,
            stalled_producers: Vec::new(),
            in_msgs: 0,
            in_bytes: 0,
            out_msgs: 0,
            out_bytes: 0,
        }
    }

    /// Outbound bytes not yet written to the socket: the max_pending measure (row L3).
    pub fn pending(&self) -> u64 {
        self.out.len() as u64 + self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectOptions;

    fn apply(json: &str) -> Result<ConnectOptions, ()> {
        let mut o = ConnectOptions::default();
        o.apply_json(json.as_bytes()).map(|()| o)
    }

    #[test]
    fn connect_json_follows_go_encoding_json() {
        // null document and null values change nothing.
        assert!(apply("null").unwrap().verbose);
        let o = apply(r#"{"verbose":null,"protocol":null,"name":null}"#).unwrap();
        assert!(o.verbose && o.protocol == 0 && o.name.is_none());
        // Only an object (or null) is accepted.
        for bad in ["[]", "\"x\"", "1", "true", "{", "{} x"] {
            assert!(apply(bad).is_err(), "{bad}");
        }
        // Later duplicates win; keys match case-insensitively.
        assert!(
            !apply(r#"{"verbose":true,"verbose":false}"#)
                .unwrap()
                .verbose
        );
        let o = apply(r#"{"VERBOSE":false,"Pedantic":false,"ECHO":false}"#).unwrap();
        assert!(!o.verbose && !o.pedantic && !o.echo);
        // Known keys must have the right type, also the ones natrium ignores.
        for bad in [
            r#"{"verbose":1}"#,
            r#"{"protocol":"1"}"#,
            r#"{"protocol":1.5}"#,
            r#"{"protocol":1e0}"#,
            r#"{"tls_required":"x"}"#,
            r#"{"jwt":1}"#,
            r#"{"import":5}"#,
            r#"{"export":{"allow":[1]}}"#,
        ] {
            assert!(apply(bad).is_err(), "{bad}");
        }
        // Unknown keys are ignored whatever their type.
        assert!(apply(r#"{"foo":[1,{}],"x":null}"#).is_ok());
        // Invalid UTF-8 inside a string is replaced, not rejected.
        let o = ConnectOptions::default();
        let mut o2 = o.clone();
        o2.apply_json(b"{\"name\":\"\xff\"}").unwrap();
        assert_eq!(o2.name.as_deref(), Some("\u{fffd}"));
        // account: only a non-empty name or new_account:true count.
        assert!(!apply(r#"{"account":"","new_account":false}"#)
            .unwrap()
            .names_account());
        assert!(apply(r#"{"account":"A"}"#).unwrap().names_account());
        assert!(apply(r#"{"new_account":true}"#).unwrap().names_account());
    }

    #[test]
    fn second_connect_updates_the_first() {
        let mut o = ConnectOptions::default();
        o.apply_json(br#"{"verbose":false,"headers":true}"#)
            .unwrap();
        o.apply_json(b"{}").unwrap();
        assert!(!o.verbose && o.headers);
    }
}

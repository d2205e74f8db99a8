//! Serde types for the JetStream API, shaped like nats-server 2.9.10's JSON.
//!
//! Field names, field order and "omitempty" rules follow the Go struct tags of
//! nats-server v2.9.10 (`stream.go`, `store.go`, `jetstream_api.go`,
//! `jetstream.go`). Durations are integer nanoseconds (`i64`), times are
//! [`Timestamp`]s (RFC 3339, UTC), byte payloads are standard base64 with
//! padding (Go's `[]byte` encoding). Unknown fields are ignored on input (row
//! J4, 2.9.10 behaviour), and a JSON `null` for a plain field leaves its default,
//! as Go's `encoding/json` does.
//!
//! Responses are one struct per API call: `type` first, then `error` (only when
//! set), then the payload fields, exactly as Go marshals its embedded
//! `ApiResponse` + payload structs. Build them with `ok(..)` / `error(..)`.
//!
//! [`StreamConfig::normalize`] applies 2.9.10's `checkStreamCfg` defaults and
//! validation, [`check_update`] its `configUpdateCheck`.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::errors::{self, ApiError};
use super::time::Timestamp;
use crate::subject::is_valid_subject;

/// Maximum length of stream (and consumer) names (`JSMaxNameLen`).
pub const MAX_NAME_LEN: usize = 255;
/// Maximum length of descriptions (`JSMaxDescriptionLen`).
pub const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// Maximum `num_replicas` (`StreamMaxReplicas`).
pub const MAX_REPLICAS: i64 = 5;
/// Default duplicate window: 2 minutes, in nanoseconds.
pub const DEFAULT_DUPLICATE_WINDOW: i64 = 120 * NANOS_PER_SEC;
/// Page size of the names endpoints (`JSApiNamesLimit`).
pub const API_NAMES_LIMIT: usize = 1024;
/// Page size of the list endpoints (`JSApiListLimit`).
pub const API_LIST_LIMIT: usize = 256;
/// Maximum subject details in one stream info (`JSMaxSubjectDetails`).
pub const MAX_SUBJECT_DETAILS: usize = 100_000;

const NANOS_PER_SEC: i64 = 1_000_000_000;
const MIN_WINDOW: i64 = 100_000_000; // 100ms

/// `type` strings of the responses (they equal the JSON Schema titles).
pub mod response_type {
    /// `$JS.API.INFO`
    pub const ACCOUNT_INFO: &str = "io.nats.jetstream.api.v1.account_info_response";
    /// `$JS.API.STREAM.CREATE.*`
    pub const STREAM_CREATE: &str = "io.nats.jetstream.api.v1.stream_create_response";
    /// `$JS.API.STREAM.UPDATE.*`
    pub const STREAM_UPDATE: &str = "io.nats.jetstream.api.v1.stream_update_response";
    /// `$JS.API.STREAM.INFO.*`
    pub const STREAM_INFO: &str = "io.nats.jetstream.api.v1.stream_info_response";
    /// `$JS.API.STREAM.DELETE.*`
    pub const STREAM_DELETE: &str = "io.nats.jetstream.api.v1.stream_delete_response";
    /// `$JS.API.STREAM.NAMES`
    pub const STREAM_NAMES: &str = "io.nats.jetstream.api.v1.stream_names_response";
    /// `$JS.API.STREAM.LIST`
    pub const STREAM_LIST: &str = "io.nats.jetstream.api.v1.stream_list_response";
    /// `$JS.API.STREAM.PURGE.*`
    pub const STREAM_PURGE: &str = "io.nats.jetstream.api.v1.stream_purge_response";
    /// `$JS.API.STREAM.MSG.GET.*`
    pub const STREAM_MSG_GET: &str = "io.nats.jetstream.api.v1.stream_msg_get_response";
    /// `$JS.API.STREAM.MSG.DELETE.*`
    pub const STREAM_MSG_DELETE: &str = "io.nats.jetstream.api.v1.stream_msg_delete_response";
}

// ---------------------------------------------------------------------------
// serde helpers

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}
pub(crate) fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}
pub(crate) fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_usize(v: &usize) -> bool {
    *v == 0
}

/// Deserialize `null` as the default, like Go's `encoding/json` leaving the
/// field untouched.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Serialize an empty vector as `null`, like Go marshals a nil slice.
fn nil_if_empty<S: Serializer, T: Serialize>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        v.serialize(s)
    }
}

/// Base64 (standard alphabet, padded) for byte payloads, like Go's `[]byte`.
mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
            None => Ok(Bytes::new()),
            Some(s) => STANDARD
                .decode(s.as_bytes())
                .map(Bytes::from)
                .map_err(serde::de::Error::custom),
        }
    }
}

// ---------------------------------------------------------------------------
// Enums

/// Retention policy (row PE1). Default `limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum RetentionPolicy {
    /// Keep messages until a limit is hit.
    #[default]
    #[serde(rename = "limits")]
    Limits,
    /// Keep messages while a consumer still has interest.
    #[serde(rename = "interest")]
    Interest,
    /// Delete a message on its first ack.
    #[serde(rename = "workqueue")]
    WorkQueue,
}

/// Discard policy (row PE2). Default `old`. Parsed case-insensitively, as Go does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum DiscardPolicy {
    /// Evict the oldest messages.
    #[default]
    #[serde(rename = "old")]
    Old,
    /// Reject new messages.
    #[serde(rename = "new")]
    New,
}

impl<'de> Deserialize<'de> for DiscardPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        if s.eq_ignore_ascii_case("old") {
            Ok(DiscardPolicy::Old)
        } else if s.eq_ignore_ascii_case("new") {
            Ok(DiscardPolicy::New)
        } else {
            Err(serde::de::Error::custom(format_args!(
                "can not unmarshal {s:?} into a discard policy"
            )))
        }
    }
}

/// Storage type (row PE3). Default `file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum StorageType {
    /// File storage.
    #[default]
    #[serde(rename = "file")]
    File,
    /// Memory storage.
    #[serde(rename = "memory")]
    Memory,
}

// ---------------------------------------------------------------------------
// StreamConfig

/// A stream's configuration (`stream_configuration`, rows SC1–SC39).
///
/// Limits use -1 for "unlimited" once normalized; 2.9.10 only rewrites 0 to -1,
/// so other negative values survive normalization and must also be read as
/// "unlimited" (nats-server's stores only apply limits that are > 0).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    /// Stream name (required, filename-safe, immutable).
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Free-form description, ≤ 4096 bytes.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub description: String,
    /// Subjects captured by the stream (default `[name]`).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub subjects: Vec<String>,
    /// Retention policy.
    pub retention: RetentionPolicy,
    /// Maximum consumers (-1: unlimited).
    #[serde(deserialize_with = "null_default")]
    pub max_consumers: i64,
    /// Maximum messages (-1: unlimited).
    #[serde(deserialize_with = "null_default")]
    pub max_msgs: i64,
    /// Maximum bytes (-1: unlimited).
    #[serde(deserialize_with = "null_default")]
    pub max_bytes: i64,
    /// Maximum age in nanoseconds (0: unlimited).
    #[serde(deserialize_with = "null_default")]
    pub max_age: i64,
    /// Maximum messages per subject (-1: unlimited).
    #[serde(deserialize_with = "null_default")]
    pub max_msgs_per_subject: i64,
    /// Maximum message size (-1: unlimited); omitted when 0.
    #[serde(skip_serializing_if = "is_zero_i32", deserialize_with = "null_default")]
    pub max_msg_size: i32,
    /// Discard policy.
    pub discard: DiscardPolicy,
    /// Storage type.
    pub storage: StorageType,
    /// Replicas (normalized to 1 on a single server).
    #[serde(deserialize_with = "null_default")]
    pub num_replicas: i64,
    /// Do not send PubAcks.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "null_default")]
    pub no_ack: bool,
    /// Owning stream template (deprecated).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub template_owner: String,
    /// Duplicate window in nanoseconds (default 2 minutes).
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub duplicate_window: i64,
    /// Cluster placement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Mirror origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    /// Sources.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub sources: Vec<StreamSource>,
    /// Republish stored messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<RePublish>,
    /// Enable direct get (always sent).
    #[serde(deserialize_with = "null_default")]
    pub allow_direct: bool,
    /// Mirror answers direct gets for its origin (always sent).
    #[serde(deserialize_with = "null_default")]
    pub mirror_direct: bool,
    /// Discard new per subject (needs discard new and max_msgs_per_subject > 0).
    #[serde(skip_serializing_if = "is_false", deserialize_with = "null_default")]
    pub discard_new_per_subject: bool,
    /// Sealed: no writes, deletes or purges; cannot be unset.
    #[serde(deserialize_with = "null_default")]
    pub sealed: bool,
    /// Deny MSG.DELETE; cannot be unset.
    #[serde(deserialize_with = "null_default")]
    pub deny_delete: bool,
    /// Deny PURGE; cannot be unset.
    #[serde(deserialize_with = "null_default")]
    pub deny_purge: bool,
    /// Allow the `Nats-Rollup` header.
    #[serde(deserialize_with = "null_default")]
    pub allow_rollup_hdrs: bool,
    /// Initial sequence (2.10; accepted, sent back only when non-zero).
    #[serde(skip_serializing_if = "is_zero_u64", deserialize_with = "null_default")]
    pub first_seq: u64,
    /// User metadata (2.10; accepted, sent back only when non-empty).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub metadata: BTreeMap<String, String>,
}

/// Cluster placement (`placement`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    /// Cluster name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub cluster: String,
    /// Server tags.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub tags: Vec<String>,
}

/// A mirror or source origin (`StreamSource`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamSource {
    /// Origin stream name.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Start sequence.
    #[serde(skip_serializing_if = "is_zero_u64", deserialize_with = "null_default")]
    pub opt_start_seq: u64,
    /// Start time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<Timestamp>,
    /// Subject filter.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub filter_subject: String,
    /// Origin in another account/domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
}

/// Qualifies a source in another account (`ExternalStream`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalStream {
    /// API prefix.
    #[serde(rename = "api", deserialize_with = "null_default")]
    pub api_prefix: String,
    /// Delivery prefix.
    #[serde(rename = "deliver", deserialize_with = "null_default")]
    pub deliver_prefix: String,
}

/// Republish configuration (`republish`, row SC26).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RePublish {
    /// Source filter (empty means `>`).
    #[serde(
        rename = "src",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub source: String,
    /// Destination (transform) subject.
    #[serde(rename = "dest", deserialize_with = "null_default")]
    pub destination: String,
    /// Republish headers only (plus `Nats-Msg-Size`).
    #[serde(skip_serializing_if = "is_false", deserialize_with = "null_default")]
    pub headers_only: bool,
}

/// What [`StreamConfig::normalize`] needs to know about the server and account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerLimits {
    /// `jetstream { limits { duplicate_window } }`: cap on `duplicate_window`
    /// in nanoseconds (0: none).
    pub max_duplicate_window: i64,
    /// The account requires `max_bytes` on every stream (10113).
    pub max_bytes_required: bool,
    /// The account's `memory_max_stream_bytes` (≤ 0: none, 10122).
    pub memory_max_stream_bytes: i64,
    /// The account's `storage_max_stream_bytes` (≤ 0: none, 10122).
    pub storage_max_stream_bytes: i64,
}

impl StreamConfig {
    /// A config with just a name (everything else default, not normalized).
    pub fn named(name: impl Into<String>) -> StreamConfig {
        StreamConfig {
            name: name.into(),
            ..StreamConfig::default()
        }
    }

    /// The create-only checks of 2.9.10's `jsStreamCreateRequest`, then
    /// [`normalize`](Self::normalize): the name may not hold a path separator
    /// (10128), a create may not be sealed, and `mirror_direct` needs a mirror.
    /// (The caller checks the name in the subject against `name` first, 10056.)
    pub fn normalize_for_create(&mut self, limits: &ServerLimits) -> Result<(), ApiError> {
        if self.name.contains(['/', '\\']) {
            return Err(errors::stream_name_contains_path_separators());
        }
        if self.sealed {
            return Err(invalid("stream configuration for create can not be sealed"));
        }
        if self.mirror_direct && self.mirror.is_none() {
            return Err(invalid("stream has no mirror but does have mirror direct"));
        }
        self.normalize(limits)
    }

    /// Fill in defaults and validate, following 2.9.10's `checkStreamCfg` (in
    /// its order, with its error texts), plus the single-server replica check
    /// of `addStream` (10074). On error `self` may be partly normalized.
    ///
    /// Not checked here (the caller's job): the name in the API subject (10056),
    /// overlap with other streams' subjects (10065), account stream/storage
    /// limits. Mirrors and sources are rejected as not supported yet (10052).
    pub fn normalize(&mut self, limits: &ServerLimits) -> Result<(), ApiError> {
        if !is_valid_name(&self.name) {
            return Err(invalid(
                "stream name is required and can not contain '.', '*', '>'",
            ));
        }
        if self.name.len() > MAX_NAME_LEN {
            return Err(invalid(format!(
                "stream name is too long, maximum allowed is {MAX_NAME_LEN}"
            )));
        }
        if self.name.contains(['/', '\\']) {
            // 2.9.10 checks this in the create handler only; the name cannot
            // change on update, so checking it here changes nothing.
            return Err(errors::stream_name_contains_path_separators());
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            return Err(invalid(format!(
                "stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
            )));
        }

        if self.num_replicas == 0 {
            self.num_replicas = 1;
        }
        if self.num_replicas > MAX_REPLICAS {
            return Err(invalid(format!("maximum replicas is {MAX_REPLICAS}")));
        }
        if self.num_replicas < 0 {
            return Err(errors::replicas_count_cannot_be_negative());
        }
        for v in [
            &mut self.max_msgs,
            &mut self.max_msgs_per_subject,
            &mut self.max_bytes,
            &mut self.max_consumers,
        ] {
            if *v == 0 {
                *v = -1;
            }
        }
        if self.max_msg_size == 0 {
            self.max_msg_size = -1;
        }

        let lim_dup = limits.max_duplicate_window;
        if self.duplicate_window == 0 && self.mirror.is_none() {
            let mut max_window = DEFAULT_DUPLICATE_WINDOW;
            if lim_dup > 0 && max_window > lim_dup {
                max_window = lim_dup;
            }
            self.duplicate_window = if self.max_age != 0 && self.max_age < max_window {
                self.max_age
            } else {
                max_window
            };
        }
        if self.max_age > 0 && self.max_age < MIN_WINDOW {
            return Err(invalid("max age needs to be >= 100ms"));
        }
        if self.duplicate_window < 0 {
            // Also what a negative max_age ends in: the default window copies it.
            return Err(invalid("duplicates window can not be negative"));
        }
        if self.max_age != 0 && self.duplicate_window > self.max_age {
            return Err(invalid("duplicates window can not be larger then max age"));
        }
        if lim_dup > 0 && self.duplicate_window > lim_dup {
            return Err(invalid(format!(
                "duplicates window can not be larger then server limit of {}",
                go_duration_string(lim_dup)
            )));
        }
        if self.duplicate_window > 0 && self.duplicate_window < MIN_WINDOW {
            return Err(invalid("duplicates window needs to be >= 100ms"));
        }

        if self.deny_purge && self.allow_rollup_hdrs {
            return Err(invalid("roll-ups require the purge permission"));
        }
        if self.discard_new_per_subject {
            if self.discard != DiscardPolicy::New {
                return Err(invalid(
                    "discard new per subject requires discard new policy to be set",
                ));
            }
            if self.max_msgs_per_subject <= 0 {
                return Err(invalid(
                    "discard new per subject requires max msgs per subject > 0",
                ));
            }
        }

        if self.mirror.is_some() {
            if !self.subjects.is_empty() {
                return Err(errors::mirror_with_subjects());
            }
            if !self.sources.is_empty() {
                return Err(errors::mirror_with_sources());
            }
        }
        if self.mirror.is_some() || !self.sources.is_empty() {
            return Err(errors::mirrors_and_sources_not_supported());
        }

        if self.subjects.is_empty() {
            self.subjects.push(self.name.clone());
        } else {
            for (i, subj) in self.subjects.iter().enumerate() {
                if self.subjects[..i].contains(subj) {
                    return Err(invalid("duplicate subjects detected"));
                }
                if is_subset_match(subj, "$JS.API.>") {
                    return Err(invalid("subjects overlap with jetstream api"));
                }
                if !is_valid_subject(subj.as_bytes()) || subj.contains('\x0c') {
                    return Err(invalid("invalid subject"));
                }
            }
        }

        let max_stream_bytes = match self.storage {
            StorageType::Memory => limits.memory_max_stream_bytes,
            StorageType::File => limits.storage_max_stream_bytes,
        };
        if limits.max_bytes_required && self.max_bytes <= 0 {
            return Err(errors::stream_max_bytes_required());
        } else if max_stream_bytes > 0 && self.max_bytes > max_stream_bytes {
            return Err(errors::stream_max_stream_bytes_exceeded());
        }

        for subj in &self.subjects {
            for other in &self.subjects {
                if other != subj && subjects_overlap(other, subj) {
                    return Err(invalid(format!("subject {subj:?} overlaps with {other:?}")));
                }
            }
        }

        if let Some(rp) = &mut self.republish {
            if rp.source.is_empty() {
                rp.source = ">".to_owned();
            }
            if !self
                .subjects
                .iter()
                .any(|s| subjects_overlap(&rp.source, s))
            {
                return Err(invalid(
                    "stream configuration for republish source is not valid subset of subjects",
                ));
            }
            if self
                .subjects
                .iter()
                .any(|s| subjects_overlap(&rp.destination, s))
            {
                return Err(invalid(
                    "stream configuration for republish destination forms a cycle",
                ));
            }
            if !is_valid_transform(&rp.source, &rp.destination) {
                return Err(invalid("stream configuration for republish not valid"));
            }
        }

        // addStream on a single, non-clustered server.
        if self.num_replicas > 1 {
            return Err(errors::stream_replicas_not_supported());
        }
        Ok(())
    }
}

/// 2.9.10's `configUpdateCheck`: may the stream with the (normalized) config
/// `old` be updated to the (normalized, see [`StreamConfig::normalize`]) `new`?
///
/// In 2.9.10 the name, `max_consumers`, storage type, retention policy (any
/// change, not only to/from workqueue), template owner, mirror and republish
/// are immutable, and `sealed`, `deny_delete`, `deny_purge` cannot be unset.
/// Subjects may change; their overlap with other streams (10065) and account
/// limits are the caller's checks. Use [`apply_update`] for the config to store.
pub fn check_update(old: &StreamConfig, new: &StreamConfig) -> Result<(), ApiError> {
    const P: &str = "stream configuration update";
    if new.name != old.name {
        return Err(invalid("stream configuration name must match original"));
    }
    if new.max_consumers != old.max_consumers {
        return Err(invalid(format!("{P} can not change MaxConsumers")));
    }
    if new.storage != old.storage {
        return Err(invalid(format!("{P} can not change storage type")));
    }
    if new.retention != old.retention {
        return Err(invalid(format!("{P} can not change retention policy")));
    }
    if !old.template_owner.is_empty() {
        return Err(invalid(format!("{P} not allowed on template owned stream")));
    }
    if !new.template_owner.is_empty() {
        return Err(invalid(format!("{P} can not be owned by a template")));
    }
    if old.sealed && !new.sealed {
        return Err(invalid(format!("{P} can not unseal a sealed stream")));
    }
    if old.deny_delete && !new.deny_delete {
        return Err(invalid(format!("{P} can not cancel deny message deletes")));
    }
    if old.deny_purge && !new.deny_purge {
        return Err(invalid(format!("{P} can not cancel deny purge")));
    }
    if new.mirror != old.mirror {
        return Err(errors::stream_mirror_not_updatable());
    }
    if new.republish != old.republish {
        return Err(invalid(format!("{P} can not change RePublish")));
    }
    if new.discard_new_per_subject {
        if new.discard != DiscardPolicy::New {
            return Err(invalid(
                "discard new per subject requires discard new policy to be set",
            ));
        }
        if new.max_msgs_per_subject <= 0 {
            return Err(invalid(
                "discard new per subject requires max msgs per subject > 0",
            ));
        }
    }
    Ok(())
}

/// [`check_update`], then the adjustments 2.9.10 makes when an update seals a
/// stream (no max age, discard new, deny delete and purge, no rollups).
/// Returns the config to store.
pub fn apply_update(old: &StreamConfig, new: &StreamConfig) -> Result<StreamConfig, ApiError> {
    check_update(old, new)?;
    let mut cfg = new.clone();
    if cfg.sealed {
        cfg.max_age = 0;
        cfg.discard = DiscardPolicy::New;
        cfg.deny_delete = true;
        cfg.deny_purge = true;
        cfg.allow_rollup_hdrs = false;
    }
    Ok(cfg)
}

fn invalid(reason: impl std::fmt::Display) -> ApiError {
    errors::stream_invalid_config(reason)
}

/// 2.9.10's `isValidName`: non-empty, no whitespace (space, tab, CR, LF, FF),
/// `.`, `*` or `>`. (Path separators are checked separately, 10128.)
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.bytes().any(|b| {
            matches!(
                b,
                b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'.' | b'*' | b'>'
            )
        })
}

/// Whether some literal subject matches both patterns `a` and `b` (which may
/// hold `*` and `>` wildcard tokens): nats-server's `SubjectsCollide`.
///
/// Tokenwise: `*` matches any one token, `>` (last) one or more tokens, and any
/// other token only itself; `foo.*` and `*.bar` overlap (`foo.bar`), `foo.>`
/// and `foo` do not.
pub fn subjects_overlap(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let mut ta = a.split('.');
    let mut tb = b.split('.');
    loop {
        match (ta.next(), tb.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x == ">" || y == ">" {
                    return true;
                }
                if x != "*" && y != "*" && x != y {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// nats-server's `subjectIsSubsetMatch`: whether every subject `subject`
/// matches is also matched by `test` (both may hold wildcards).
pub fn is_subset_match(subject: &str, test: &str) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    let test: Vec<&str> = test.split('.').collect();
    for (i, t2) in test.iter().enumerate() {
        let Some(t1) = tokens.get(i) else {
            return false;
        };
        if t2.is_empty() {
            return false;
        }
        if *t2 == ">" {
            return true;
        }
        if t1.is_empty() || *t1 == ">" {
            return false;
        }
        if *t1 == "*" {
            if *t2 != "*" {
                return false;
            }
            continue;
        }
        if *t2 != "*" && t1 != t2 {
            return false;
        }
    }
    tokens.len() == test.len()
}

/// A simplified form of nats-server's subject transform validation
/// (`newTransform`): both subjects valid, no `*` in the destination, `>` in
/// both or neither, and every `*` of the source used by a destination
/// placeholder (`$N` or a `{{function(N, …)}}` token).
fn is_valid_transform(src: &str, dest: &str) -> bool {
    if !is_valid_subject(src.as_bytes()) || !is_valid_subject(dest.as_bytes()) {
        return false;
    }
    let src_pwcs = src.split('.').filter(|t| *t == "*").count();
    let src_fwc = src.split('.').any(|t| t == ">");
    let dest_fwc = dest.split('.').any(|t| t == ">");
    if dest.split('.').any(|t| t == "*") || src_fwc != dest_fwc {
        return false;
    }
    if src_pwcs == 0 && !src_fwc {
        return true;
    }
    let mut placeholders = 0;
    for tok in dest.split('.') {
        let indexes: Vec<usize> = if let Some(n) = tok.strip_prefix('$') {
            match n.parse() {
                Ok(n) => vec![n],
                Err(_) => continue,
            }
        } else if let Some(inner) = tok.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
            let Some((func, args)) = inner.trim().split_once('(') else {
                return false;
            };
            let Some(args) = args.strip_suffix(')') else {
                return false;
            };
            let args: Vec<&str> = args.split(',').map(str::trim).collect();
            let idx_args = match func.trim().to_ascii_lowercase().as_str() {
                "wildcard" => &args[..],
                "partition" => args.get(1..).unwrap_or(&[]),
                "split" | "splitfromleft" | "splitfromright" | "slicefromleft"
                | "slicefromright" => args.get(..1).unwrap_or(&[]),
                _ => return false,
            };
            let mut v = Vec::new();
            for a in idx_args {
                match a.parse() {
                    Ok(n) => v.push(n),
                    Err(_) => return false,
                }
            }
            v
        } else {
            continue;
        };
        if indexes.iter().any(|&i| i == 0 || i > src_pwcs) {
            return false;
        }
        placeholders += 1;
    }
    placeholders >= src_pwcs
}

/// Go's `time.Duration.String()` of `ns` nanoseconds: `1m0s`, `1.5s`, `100ms`.
pub fn go_duration_string(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_owned();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    let frac = |v: u64, prec: u32| -> String {
        let p = 10u64.pow(prec);
        let (int, f) = (v / p, v % p);
        if f == 0 {
            return int.to_string();
        }
        let f = format!("{f:0width$}", width = prec as usize);
        format!("{int}.{}", f.trim_end_matches('0'))
    };
    if u < 1_000_000_000 {
        let (v, unit) = if u < 1_000 {
            (frac(u, 0), "ns")
        } else if u < 1_000_000 {
            (frac(u, 3), "µs")
        } else {
            (frac(u, 6), "ms")
        };
        return format!("{sign}{v}{unit}");
    }
    let secs = u / 1_000_000_000;
    let s = frac(secs % 60 * 1_000_000_000 + u % 1_000_000_000, 9);
    let mins = secs / 60;
    if mins == 0 {
        return format!("{sign}{s}s");
    }
    let hours = mins / 60;
    if hours == 0 {
        return format!("{sign}{}m{s}s", mins % 60);
    }
    format!("{sign}{hours}h{}m{s}s", mins % 60)
}

// ---------------------------------------------------------------------------
// State and info

/// A stream's state (`StreamState`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamState {
    /// Stored messages.
    pub messages: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// First sequence.
    pub first_seq: u64,
    /// Time of the first message (zero time when empty).
    pub first_ts: Timestamp,
    /// Last sequence.
    pub last_seq: u64,
    /// Time of the last message (zero time when none).
    pub last_ts: Timestamp,
    /// Number of distinct subjects.
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub num_subjects: usize,
    /// Per-subject message counts (when asked for with `subjects_filter`).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub subjects: BTreeMap<String, u64>,
    /// Number of interior deletes.
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub num_deleted: usize,
    /// Deleted sequences (when asked for with `deleted_details`).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub deleted: Vec<u64>,
    /// Lost data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostStreamData>,
    /// Number of consumers.
    #[serde(rename = "consumer_count")]
    pub consumer_count: usize,
}

/// Messages lost (`LostStreamData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LostStreamData {
    /// Lost sequences.
    #[serde(deserialize_with = "null_default")]
    pub msgs: Vec<u64>,
    /// Lost bytes.
    pub bytes: u64,
}

/// Stream info (`StreamInfo`): the payload of create/update/info responses and
/// the entries of the list response.
///
/// Which fields 2.9.10 fills per endpoint: create sends `config`, `created`,
/// `state` only; update and list add `domain`, `mirror`, `sources`; info adds
/// `cluster` ([`ClusterInfo::single_server`]) and `alternates` as well.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamInfo {
    /// Active configuration.
    pub config: StreamConfig,
    /// Creation time.
    pub created: Timestamp,
    /// Current state.
    pub state: StreamState,
    /// JetStream domain.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub domain: String,
    /// Cluster information. A single 2.9.10 server sends
    /// `{"leader":"<server name>"}` in stream info (with `name` when it has a
    /// cluster name), and nothing in create/update/list responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    /// Mirror state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSourceInfo>,
    /// Source states.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub sources: Vec<StreamSourceInfo>,
    /// Mirrors answering direct gets for this stream.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub alternates: Vec<StreamAlternate>,
}

/// Cluster information (`ClusterInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterInfo {
    /// Cluster name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub name: String,
    /// Leader's server name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub leader: String,
    /// Other replicas.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub replicas: Vec<PeerInfo>,
}

impl ClusterInfo {
    /// What a single, non-clustered 2.9.10 server puts in stream info:
    /// `{"leader":"<server name>"}` (plus `name` when a cluster name is set).
    pub fn single_server(server_name: impl Into<String>, cluster_name: impl Into<String>) -> Self {
        ClusterInfo {
            name: cluster_name.into(),
            leader: server_name.into(),
            replicas: Vec::new(),
        }
    }
}

/// A replica peer (`PeerInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    /// Server name.
    pub name: String,
    /// Whether it is current.
    pub current: bool,
    /// Whether it is offline.
    #[serde(skip_serializing_if = "is_false")]
    pub offline: bool,
    /// Nanoseconds since last active.
    pub active: i64,
    /// Operations behind.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub lag: u64,
    /// Peer id.
    pub peer: String,
}

/// Mirror/source state (`StreamSourceInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamSourceInfo {
    /// Origin stream name.
    pub name: String,
    /// External origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    /// Messages behind.
    pub lag: u64,
    /// Nanoseconds since last active.
    pub active: i64,
    /// Error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

/// A mirror that can answer direct gets (`StreamAlternate`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamAlternate {
    /// Stream name.
    pub name: String,
    /// Domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Cluster.
    pub cluster: String,
}

/// A stored message as MSG.GET returns it (`StoredMsg`). `hdrs` and `data` are
/// base64 and omitted when empty, as Go omits an empty `[]byte`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredMsg {
    /// Subject.
    pub subject: String,
    /// Sequence.
    pub seq: u64,
    /// Raw header block (`NATS/1.0\r\n…\r\n\r\n`).
    #[serde(with = "b64", skip_serializing_if = "Bytes::is_empty")]
    pub hdrs: Bytes,
    /// Payload.
    #[serde(with = "b64", skip_serializing_if = "Bytes::is_empty")]
    pub data: Bytes,
    /// Store time.
    pub time: Timestamp,
}

// ---------------------------------------------------------------------------
// PubAck

/// A successful publish acknowledgement (`PubAck`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PubAck {
    /// Stream name.
    pub stream: String,
    /// Stored sequence (the original one for a duplicate).
    pub seq: u64,
    /// JetStream domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// The message was a duplicate within the window.
    #[serde(skip_serializing_if = "is_false")]
    pub duplicate: bool,
}

impl PubAck {
    /// The exact bytes 2.9.10 sends for a successful PubAck. It builds them
    /// from a template rather than marshalling: `{"stream":"S", "seq":N}`,
    /// `{"stream":"S", "domain":"D", "seq":N}` with a domain, and
    /// `…"seq":N,"duplicate": true}` for a duplicate (note the spaces).
    pub fn to_wire(&self) -> Vec<u8> {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut out = format!("{{\"stream\":{}, ", q(&self.stream));
        if !self.domain.is_empty() {
            out.push_str(&format!("\"domain\":{}, ", q(&self.domain)));
        }
        out.push_str(&format!("\"seq\":{}", self.seq));
        if self.duplicate {
            out.push_str(",\"duplicate\": true");
        }
        out.push('}');
        out.into_bytes()
    }
}

/// The reply to a publish (`JSPubAckResponse`): `error` first, then the PubAck
/// fields. On error 2.9.10 still includes `stream` and `seq` (0):
/// `{"error":{…},"stream":"S","seq":0}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PubAckResponse {
    /// The error, if the publish failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// The acknowledgement fields.
    #[serde(flatten)]
    pub ack: Option<PubAck>,
}

impl PubAckResponse {
    /// A success.
    pub fn ok(ack: PubAck) -> Self {
        PubAckResponse {
            error: None,
            ack: Some(ack),
        }
    }

    /// A failure for `stream`, as 2.9.10 sends it (with `"seq":0`).
    pub fn error(stream: impl Into<String>, error: ApiError) -> Self {
        PubAckResponse {
            error: Some(error),
            ack: Some(PubAck {
                stream: stream.into(),
                ..PubAck::default()
            }),
        }
    }
}

// ---------------------------------------------------------------------------
// Account info

/// Account limits (`JetStreamAccountLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLimits {
    /// Memory storage limit (-1: unlimited).
    pub max_memory: i64,
    /// File storage limit (-1: unlimited).
    pub max_storage: i64,
    /// Streams limit (-1: unlimited).
    pub max_streams: i64,
    /// Consumers limit (-1: unlimited).
    pub max_consumers: i64,
    /// Max ack pending per consumer (-1: unlimited).
    pub max_ack_pending: i64,
    /// Per memory stream max bytes.
    pub memory_max_stream_bytes: i64,
    /// Per file stream max bytes.
    pub storage_max_stream_bytes: i64,
    /// Streams must set max_bytes.
    pub max_bytes_required: bool,
}

/// Usage of one tier (`JetStreamTier`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountTier {
    /// Memory used.
    pub memory: u64,
    /// Storage used.
    pub storage: u64,
    /// Streams.
    pub streams: usize,
    /// Consumers.
    pub consumers: usize,
    /// Limits.
    pub limits: AccountLimits,
}

/// API call counters (`JetStreamAPIStats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiStats {
    /// Total API calls.
    pub total: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Calls in flight (omitted when 0).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub inflight: u64,
}

/// Account usage and limits (`JetStreamAccountStats`), the `$JS.API.INFO` payload.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountStats {
    /// Memory used.
    pub memory: u64,
    /// Storage used.
    pub storage: u64,
    /// Memory reserved for the account (2.10; always 0 here). nats-server
    /// 2.9.10 does not send it; async-nats 0.51 needs it to read account
    /// info, and so to create KV buckets.
    pub reserved_memory: u64,
    /// Storage reserved for the account (2.10; always 0 here).
    pub reserved_storage: u64,
    /// Streams.
    pub streams: usize,
    /// Consumers.
    pub consumers: usize,
    /// Limits.
    pub limits: AccountLimits,
    /// JetStream domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// API counters.
    pub api: ApiStats,
    /// Per-tier usage (omitted when empty).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub tiers: BTreeMap<String, AccountTier>,
}

// ---------------------------------------------------------------------------
// Requests

/// Paging of names/list responses (`ApiPaged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiPaged {
    /// Total entries.
    pub total: usize,
    /// Offset of the first entry returned.
    pub offset: usize,
    /// Page size.
    pub limit: usize,
}

/// `$JS.API.STREAM.INFO` request (`JSApiStreamInfoRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInfoRequest {
    /// Offset into the subject details.
    #[serde(deserialize_with = "null_default")]
    pub offset: usize,
    /// Include deleted sequences.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "null_default")]
    pub deleted_details: bool,
    /// Include per-subject counts for subjects matching this filter.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub subjects_filter: String,
}

/// `$JS.API.STREAM.NAMES` request (`JSApiStreamNamesRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamNamesRequest {
    /// Page offset.
    #[serde(deserialize_with = "null_default")]
    pub offset: usize,
    /// Only streams with a subject overlapping this one.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub subject: String,
}

/// `$JS.API.STREAM.LIST` request (`JSApiStreamListRequest`), same shape as names.
pub type StreamListRequest = StreamNamesRequest;

/// `$JS.API.STREAM.PURGE` request (`JSApiStreamPurgeRequest`). `seq` and `keep`
/// together are a bad request (10003).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamPurgeRequest {
    /// Purge up to but not including this sequence.
    #[serde(skip_serializing_if = "is_zero_u64", deserialize_with = "null_default")]
    pub seq: u64,
    /// Only messages matching this subject.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub filter: String,
    /// Keep this many newest messages.
    #[serde(skip_serializing_if = "is_zero_u64", deserialize_with = "null_default")]
    pub keep: u64,
}

/// `$JS.API.STREAM.MSG.GET` request (`JSApiMsgGetRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgGetRequest {
    /// By sequence (or start sequence with `next_by_subj`).
    #[serde(skip_serializing_if = "is_zero_u64", deserialize_with = "null_default")]
    pub seq: u64,
    /// Last message on this subject.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub last_by_subj: String,
    /// Next message on this subject from `seq`.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub next_by_subj: String,
}

/// `$JS.API.STREAM.MSG.DELETE` request (`JSApiMsgDeleteRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgDeleteRequest {
    /// Sequence to delete.
    #[serde(deserialize_with = "null_default")]
    pub seq: u64,
    /// Just remove, do not overwrite the data.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "null_default")]
    pub no_erase: bool,
}

/// 2.9.10's `isEmptyRequest`: an empty body, or a JSON object with no fields.
pub fn is_empty_request(body: &[u8]) -> bool {
    if body.is_empty() || body == b"{}" {
        return true;
    }
    matches!(
        serde_json::from_slice::<serde_json::Value>(body),
        Ok(serde_json::Value::Object(m)) if m.is_empty()
    )
}

/// Parse a request body: an empty request ([`is_empty_request`]) or `null`
/// gives the default; bad JSON gives [`errors::invalid_json`] (10025). Unknown fields are
/// ignored.
pub fn parse_request<T>(body: &[u8]) -> Result<T, ApiError>
where
    T: serde::de::DeserializeOwned + Default,
{
    // Go's json.Unmarshal of `null` into a struct is a no-op.
    if is_empty_request(body) || body.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(errors::invalid_json)
}

// ---------------------------------------------------------------------------
// Responses

macro_rules! response_ctors {
    ($ty:ident, $kind:expr) => {
        impl $ty {
            /// The `type` string of this response.
            pub const TYPE: &'static str = $kind;

            /// An error response.
            pub fn error(error: ApiError) -> Self {
                $ty {
                    kind: $kind.to_owned(),
                    error: Some(error),
                    ..Default::default()
                }
            }
        }
    };
}
pub(crate) use response_ctors;

/// `$JS.API.INFO` response (`JSApiAccountInfoResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountInfoResponse {
    /// `io.nats.jetstream.api.v1.account_info_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Usage and limits (flattened).
    #[serde(flatten)]
    pub stats: Option<AccountStats>,
}
response_ctors!(AccountInfoResponse, response_type::ACCOUNT_INFO);
impl AccountInfoResponse {
    /// A success.
    pub fn ok(stats: AccountStats) -> Self {
        AccountInfoResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            stats: Some(stats),
        }
    }
}

/// `$JS.API.STREAM.CREATE` response (`JSApiStreamCreateResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamCreateResponse {
    /// `io.nats.jetstream.api.v1.stream_create_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Stream info (flattened).
    #[serde(flatten)]
    pub info: Option<StreamInfo>,
    /// 2.9.10 sets this on every successful create (also the idempotent case).
    #[serde(default, skip_serializing_if = "is_false")]
    pub did_create: bool,
}
response_ctors!(StreamCreateResponse, response_type::STREAM_CREATE);
impl StreamCreateResponse {
    /// A success (2.9.10 sends `did_create: true`).
    pub fn ok(info: StreamInfo) -> Self {
        StreamCreateResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            info: Some(info),
            did_create: true,
        }
    }
}

/// `$JS.API.STREAM.UPDATE` response (`JSApiStreamUpdateResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamUpdateResponse {
    /// `io.nats.jetstream.api.v1.stream_update_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Stream info (flattened).
    #[serde(flatten)]
    pub info: Option<StreamInfo>,
}
response_ctors!(StreamUpdateResponse, response_type::STREAM_UPDATE);
impl StreamUpdateResponse {
    /// A success.
    pub fn ok(info: StreamInfo) -> Self {
        StreamUpdateResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            info: Some(info),
        }
    }
}

/// `$JS.API.STREAM.INFO` response (`JSApiStreamInfoResponse`). Go embeds
/// `ApiPaged`, so `total`, `offset` and `limit` are always present (zero unless
/// subject details were asked for), errors included.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamInfoResponse {
    /// `io.nats.jetstream.api.v1.stream_info_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Paging of `state.subjects`.
    #[serde(flatten)]
    pub paged: ApiPaged,
    /// Stream info (flattened).
    #[serde(flatten)]
    pub info: Option<StreamInfo>,
}
response_ctors!(StreamInfoResponse, response_type::STREAM_INFO);
impl StreamInfoResponse {
    /// A success.
    pub fn ok(info: StreamInfo, paged: ApiPaged) -> Self {
        StreamInfoResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            paged,
            info: Some(info),
        }
    }
}

/// `$JS.API.STREAM.DELETE` response (`JSApiStreamDeleteResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamDeleteResponse {
    /// `io.nats.jetstream.api.v1.stream_delete_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Deleted (omitted when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}
response_ctors!(StreamDeleteResponse, response_type::STREAM_DELETE);
impl StreamDeleteResponse {
    /// A success.
    pub fn ok() -> Self {
        StreamDeleteResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            success: true,
        }
    }
}

/// `$JS.API.STREAM.NAMES` response (`JSApiStreamNamesResponse`). Go sends
/// `"streams":null` when there are none (a nil slice), errors included.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamNamesResponse {
    /// `io.nats.jetstream.api.v1.stream_names_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Paging.
    #[serde(flatten)]
    pub paged: ApiPaged,
    /// Stream names (sorted).
    #[serde(
        default,
        serialize_with = "nil_if_empty",
        deserialize_with = "null_default"
    )]
    pub streams: Vec<String>,
}
response_ctors!(StreamNamesResponse, response_type::STREAM_NAMES);
impl StreamNamesResponse {
    /// A success.
    pub fn ok(streams: Vec<String>, paged: ApiPaged) -> Self {
        StreamNamesResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            paged,
            streams,
        }
    }
}

/// `$JS.API.STREAM.LIST` response (`JSApiStreamListResponse`). `streams` is
/// always an array here (2.9.10 initializes it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamListResponse {
    /// `io.nats.jetstream.api.v1.stream_list_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Paging.
    #[serde(flatten)]
    pub paged: ApiPaged,
    /// Stream infos.
    #[serde(default, deserialize_with = "null_default")]
    pub streams: Vec<StreamInfo>,
    /// Streams that could not be reached (clustered).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub missing: Vec<String>,
}
response_ctors!(StreamListResponse, response_type::STREAM_LIST);
impl StreamListResponse {
    /// A success.
    pub fn ok(streams: Vec<StreamInfo>, paged: ApiPaged) -> Self {
        StreamListResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            paged,
            streams,
            missing: Vec::new(),
        }
    }
}

/// `$JS.API.STREAM.PURGE` response (`JSApiStreamPurgeResponse`); `purged` is
/// always present.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamPurgeResponse {
    /// `io.nats.jetstream.api.v1.stream_purge_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Purged (omitted when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
    /// Messages purged.
    #[serde(default)]
    pub purged: u64,
}
response_ctors!(StreamPurgeResponse, response_type::STREAM_PURGE);
impl StreamPurgeResponse {
    /// A success.
    pub fn ok(purged: u64) -> Self {
        StreamPurgeResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            success: true,
            purged,
        }
    }
}

/// `$JS.API.STREAM.MSG.GET` response (`JSApiMsgGetResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MsgGetResponse {
    /// `io.nats.jetstream.api.v1.stream_msg_get_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// The message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<StoredMsg>,
}
response_ctors!(MsgGetResponse, response_type::STREAM_MSG_GET);
impl MsgGetResponse {
    /// A success.
    pub fn ok(message: StoredMsg) -> Self {
        MsgGetResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            message: Some(message),
        }
    }
}

/// `$JS.API.STREAM.MSG.DELETE` response (`JSApiMsgDeleteResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MsgDeleteResponse {
    /// `io.nats.jetstream.api.v1.stream_msg_delete_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Deleted (omitted when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}
response_ctors!(MsgDeleteResponse, response_type::STREAM_MSG_DELETE);
impl MsgDeleteResponse {
    /// A success.
    pub fn ok() -> Self {
        MsgDeleteResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            success: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (100_000_000, "100ms"),
            (1_500_000_000, "1.5s"),
            (60 * NANOS_PER_SEC, "1m0s"),
            (90 * NANOS_PER_SEC, "1m30s"),
            (3600 * NANOS_PER_SEC, "1h0m0s"),
            (3661 * NANOS_PER_SEC + 5, "1h1m1.000000005s"),
            (-2 * NANOS_PER_SEC, "-2s"),
        ] {
            assert_eq!(go_duration_string(ns), want, "{ns}");
        }
    }

    #[test]
    fn transforms() {
        assert!(is_valid_transform(">", "out.>"));
        assert!(is_valid_transform("foo.bar", "baz"));
        assert!(is_valid_transform("foo.*", "out.$1"));
        assert!(is_valid_transform(
            "foo.*.*",
            "out.{{wildcard(2)}}.{{wildcard(1)}}"
        ));
        assert!(is_valid_transform("foo.*", "out.{{partition(10,1)}}"));
        assert!(!is_valid_transform("foo.*", "out"));
        assert!(!is_valid_transform("foo.*", "out.$2"));
        assert!(!is_valid_transform("foo.*", "out.*"));
        assert!(!is_valid_transform(">", "out"));
        assert!(!is_valid_transform("foo", "out.>"));
        assert!(!is_valid_transform("foo.*", "out.{{bogus(1)}}"));
        assert!(!is_valid_transform("foo..bar", "out"));
    }
}

//! Consumer configuration, its validation, and the consumer API's JSON bodies,
//! as nats-server 2.9.10 has them (rows CC1–CC31, PE4–PE6, PL1).
//!
//! Owns the serde shapes (field names, order and "omitempty" of the Go struct
//! tags, durations as `i64` nanoseconds, JSON `null` leaves the default,
//! unknown fields ignored) and the rules; it keeps no consumer state and sends
//! nothing. 2.10 fields that clients already send (`filter_subjects`,
//! `metadata`, the create `action`) are accepted and checked as 2.10 checks
//! them; 2.9.10 itself would ignore them.
//!
//! A create runs, in 2.9.10's order:
//! 1. [`ConsumerConfig::normalize`]: `setConsumerConfigDefaults` and
//!    `checkConsumerCfg`;
//! 2. for an existing name, [`check_update`] (`checkNewConsumerConfig`), and
//!    stop there;
//! 3. the `max_consumers` limit (10026, the caller's);
//! 4. [`check_work_queue`] on a work-queue stream;
//! 5. [`ConsumerConfig::check_name`], after giving an unnamed ephemeral a
//!    [`generate_consumer_name`].
//!
//! The create handler's subject checks (10056, 10127, 10131, 10074 for
//! `num_replicas > 1` on a single server, which comes before all of the above)
//! are the API layer's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::errors::{self, ApiError};
use super::time::Timestamp;
use super::types::{
    go_duration_string, is_false, is_subset_match, is_valid_name, is_zero_i64, is_zero_u64,
    null_default, response_ctors, subjects_overlap, ApiPaged, ClusterInfo, RetentionPolicy,
    StreamConfig, MAX_DESCRIPTION_LEN, MAX_NAME_LEN,
};
use crate::subject::is_valid_subject;

const NANOS_PER_MS: i64 = 1_000_000;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Default `ack_wait` for ack policies `explicit` and `all` (`JsAckWaitDefault`).
pub const DEFAULT_ACK_WAIT: i64 = 30 * NANOS_PER_SEC;
/// Default `max_ack_pending` when acks are required (`JsDefaultMaxAckPending`).
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// Default `max_waiting` of pull consumers (`JSWaitQueueDefaultMax`).
pub const DEFAULT_MAX_WAITING: i64 = 512;
/// Default `inactive_threshold` of ephemerals (`JsDeleteWaitTimeDefault`).
pub const DEFAULT_INACTIVE_THRESHOLD: i64 = 5 * NANOS_PER_SEC;
/// Smallest `idle_heartbeat` of a push consumer.
pub const MIN_IDLE_HEARTBEAT: i64 = 100 * NANOS_PER_MS;
/// Smallest non-zero `max_expires`.
pub const MIN_MAX_EXPIRES: i64 = NANOS_PER_MS;
/// Largest total size of `metadata` keys and values (`JSMaxMetadataLen`, 2.10).
pub const MAX_METADATA_LEN: usize = 128 * 1024;
/// Length of a server-generated consumer name.
pub const GENERATED_NAME_LEN: usize = 8;

/// `type` strings of the consumer responses (they equal the JSON Schema titles).
pub mod response_type {
    /// `$JS.API.CONSUMER.CREATE.*`, `$JS.API.CONSUMER.DURABLE.CREATE.*`
    pub const CONSUMER_CREATE: &str = "io.nats.jetstream.api.v1.consumer_create_response";
    /// `$JS.API.CONSUMER.INFO.*`
    pub const CONSUMER_INFO: &str = "io.nats.jetstream.api.v1.consumer_info_response";
    /// `$JS.API.CONSUMER.DELETE.*`
    pub const CONSUMER_DELETE: &str = "io.nats.jetstream.api.v1.consumer_delete_response";
    /// `$JS.API.CONSUMER.NAMES.*`
    pub const CONSUMER_NAMES: &str = "io.nats.jetstream.api.v1.consumer_names_response";
    /// `$JS.API.CONSUMER.LIST.*`
    pub const CONSUMER_LIST: &str = "io.nats.jetstream.api.v1.consumer_list_response";
}

// ---------------------------------------------------------------------------
// Enums

/// Where a consumer starts (row PE4). Default `all`; 2.9.10 also reads
/// `"undefined"` as `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DeliverPolicy {
    /// From the first message.
    #[default]
    #[serde(rename = "all", alias = "undefined")]
    All,
    /// From the last message.
    #[serde(rename = "last")]
    Last,
    /// Only messages stored after the consumer is created.
    #[serde(rename = "new")]
    New,
    /// From `opt_start_seq`.
    #[serde(rename = "by_start_sequence")]
    ByStartSequence,
    /// From the first message at or after `opt_start_time`.
    #[serde(rename = "by_start_time")]
    ByStartTime,
    /// The last message of each subject (needs a filter).
    #[serde(rename = "last_per_subject")]
    LastPerSubject,
}

/// How deliveries are acknowledged (row PE5). Go's zero value is `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum AckPolicy {
    /// No acks.
    #[default]
    #[serde(rename = "none")]
    None,
    /// An ack acknowledges every earlier delivery too.
    #[serde(rename = "all")]
    All,
    /// Every delivery is acked on its own.
    #[serde(rename = "explicit")]
    Explicit,
}

impl AckPolicy {
    /// Whether deliveries wait for acks (`explicit` or `all`).
    pub fn requires_ack(self) -> bool {
        self != AckPolicy::None
    }
}

/// Delivery pacing (row PE6). Default `instant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ReplayPolicy {
    /// As fast as possible.
    #[default]
    #[serde(rename = "instant")]
    Instant,
    /// With the original gaps between messages.
    #[serde(rename = "original")]
    Original,
}

// ---------------------------------------------------------------------------
// ConsumerConfig

/// A consumer's configuration (`consumer_configuration`, rows CC1–CC26).
///
/// Fields in the order of 2.9.10's Go struct (with 2.10's `filter_subjects`
/// and `metadata` where 2.10 puts them); counts and limits are `i64` (Go `int`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    /// Durable name: set means durable (deprecated in favour of `name`).
    #[serde(
        rename = "durable_name",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub durable: String,
    /// Consumer name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub name: String,
    /// Free-form description, ≤ 4096 bytes.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub description: String,
    /// Starting point (immutable).
    #[serde(deserialize_with = "null_default")]
    pub deliver_policy: DeliverPolicy,
    /// Start sequence for `by_start_sequence`.
    #[serde(skip_serializing_if = "is_zero_u64", deserialize_with = "null_default")]
    pub opt_start_seq: u64,
    /// Start time for `by_start_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<Timestamp>,
    /// Ack policy (immutable).
    #[serde(deserialize_with = "null_default")]
    pub ack_policy: AckPolicy,
    /// Redelivery delay in nanoseconds (default 30s when acks are required).
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub ack_wait: i64,
    /// Maximum deliveries (-1: unlimited).
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub max_deliver: i64,
    /// Redelivery delays in nanoseconds; the first overrides `ack_wait`.
    #[serde(
        rename = "backoff",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub backoff: Vec<i64>,
    /// Single subject filter.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub filter_subject: String,
    /// Several subject filters (2.10).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub filter_subjects: Vec<String>,
    /// Replay policy (immutable).
    #[serde(deserialize_with = "null_default")]
    pub replay_policy: ReplayPolicy,
    /// Push delivery rate limit in bits per second.
    #[serde(
        rename = "rate_limit_bps",
        skip_serializing_if = "is_zero_u64",
        deserialize_with = "null_default"
    )]
    pub rate_limit_bps: u64,
    /// Ack sampling: `"N"` or `"N%"`.
    #[serde(
        rename = "sample_freq",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub sample_freq: String,
    /// Pull: maximum waiting requests (default 512, immutable).
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub max_waiting: i64,
    /// Maximum unacknowledged deliveries (-1: unlimited).
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub max_ack_pending: i64,
    /// Push: idle heartbeat interval in nanoseconds (immutable).
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub idle_heartbeat: i64,
    /// Push: flow control (immutable).
    #[serde(skip_serializing_if = "is_false", deserialize_with = "null_default")]
    pub flow_control: bool,
    /// Deliver headers only, plus `Nats-Msg-Size`.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "null_default")]
    pub headers_only: bool,
    /// Pull: largest batch per request.
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub max_batch: i64,
    /// Pull: largest `expires` per request, in nanoseconds.
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub max_expires: i64,
    /// Pull: largest `max_bytes` per request.
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub max_bytes: i64,
    /// Push: where messages go (set means push).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub deliver_subject: String,
    /// Push: queue group of the deliver subject.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub deliver_group: String,
    /// Delete after this long without activity, in nanoseconds (ephemerals: 5s).
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub inactive_threshold: i64,
    /// Replicas (0: the stream's); always sent.
    #[serde(deserialize_with = "null_default")]
    pub num_replicas: i64,
    /// Keep the consumer's state in memory.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "null_default")]
    pub mem_storage: bool,
    /// Internal consumer of mirrors and sources.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "null_default")]
    pub direct: bool,
    /// User metadata (2.10).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub metadata: BTreeMap<String, String>,
}

/// What [`ConsumerConfig::normalize`] needs to know about server and account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumerLimits {
    /// `jetstream { limits { max_ack_pending } }` (≤ 0: none).
    pub server_max_ack_pending: i64,
    /// The account's `max_ack_pending` (≤ 0: none).
    pub account_max_ack_pending: i64,
    /// `jetstream { limits { max_request_batch } }` (≤ 0: none).
    pub server_max_request_batch: i64,
}

impl ConsumerConfig {
    /// Durable (2.9.10's `isDurableConsumer`: `durable_name` is set; a
    /// consumer with only `name` is a named ephemeral).
    pub fn is_durable(&self) -> bool {
        !self.durable.is_empty()
    }

    /// Pull consumer (no `deliver_subject`).
    pub fn is_pull(&self) -> bool {
        self.deliver_subject.is_empty()
    }

    /// The consumer's name: `durable_name` when set, else `name` (empty for an
    /// ephemeral still to be named).
    pub fn consumer_name(&self) -> &str {
        if self.is_durable() {
            &self.durable
        } else {
            &self.name
        }
    }

    /// The subject filters, `filter_subject` or `filter_subjects` (empty: none).
    pub fn filters(&self) -> Vec<&str> {
        if self.filter_subject.is_empty() {
            self.filter_subjects.iter().map(String::as_str).collect()
        } else {
            vec![self.filter_subject.as_str()]
        }
    }

    /// Fill in 2.9.10's defaults (`setConsumerConfigDefaults`) and validate
    /// (`checkConsumerCfg`, in its order, with its error codes and texts),
    /// against the normalized config of the owning `stream`. Ephemerals
    /// without an `inactive_threshold` get 5s, as `updateInactiveThreshold`
    /// stamps it. On error `self` may be partly normalized.
    pub fn normalize(
        &mut self,
        stream: &StreamConfig,
        limits: &ConsumerLimits,
    ) -> Result<(), ApiError> {
        self.apply_defaults(limits);
        self.validate(stream, limits)?;
        if !self.is_durable() && self.inactive_threshold <= 0 {
            self.inactive_threshold = DEFAULT_INACTIVE_THRESHOLD;
        }
        Ok(())
    }

    fn apply_defaults(&mut self, limits: &ConsumerLimits) {
        if self.is_pull() && self.max_waiting == 0 {
            self.max_waiting = DEFAULT_MAX_WAITING;
        }
        if self.ack_wait == 0 && self.ack_policy.requires_ack() {
            self.ack_wait = DEFAULT_ACK_WAIT;
        }
        // Only 0 becomes -1 in 2.9.10; other negative values are kept.
        if self.max_deliver == 0 {
            self.max_deliver = -1;
        }
        if let Some(&first) = self.backoff.first() {
            self.ack_wait = first;
        }
        if self.ack_policy.requires_ack() && self.max_ack_pending == 0 {
            let mut pending = DEFAULT_MAX_ACK_PENDING;
            for lim in [
                limits.server_max_ack_pending,
                limits.account_max_ack_pending,
            ] {
                if lim > 0 && lim < pending {
                    pending = lim;
                }
            }
            self.max_ack_pending = pending;
        }
        if self.is_pull() && self.max_batch == 0 && limits.server_max_request_batch > 0 {
            self.max_batch = limits.server_max_request_batch;
        }
    }

    fn validate(&self, stream: &StreamConfig, limits: &ConsumerLimits) -> Result<(), ApiError> {
        if self.num_replicas > 0 && self.num_replicas > stream.num_replicas {
            return Err(errors::consumer_replicas_exceeds_stream());
        }
        if self.num_replicas < 0 {
            return Err(errors::replicas_count_cannot_be_negative());
        }
        // 2.10 also requires interest/work-queue consumers to have the
        // stream's replicas (10134); on a single server 10126 covers it.

        // Not in 2.9.10 (added in 2.11), checked where newer servers do.
        if self.backoff.iter().any(|&b| b < 0) {
            return Err(errors::consumer_back_off_negative());
        }
        if self.ack_wait < 0 {
            return Err(errors::consumer_ack_wait_negative());
        }
        // 2.9.10's rule: max_deliver must exceed the number of backoffs, so
        // a backoff needs an explicit max_deliver (-1 fails). 2.10 lets -1 pass.
        if !self.backoff.is_empty() && self.max_deliver <= backoff_len(&self.backoff) {
            return Err(errors::consumer_max_deliver_backoff());
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            return Err(errors::consumer_description_too_long(MAX_DESCRIPTION_LEN));
        }

        if self.is_pull() {
            self.validate_pull(stream, limits)?;
        } else {
            self.validate_push(stream)?;
        }
        for lim in [
            limits.server_max_ack_pending,
            limits.account_max_ack_pending,
        ] {
            if lim > 0 && self.max_ack_pending > lim {
                return Err(errors::consumer_max_pending_ack_excess(lim));
            }
        }

        if self.direct {
            if self.is_pull() {
                return Err(errors::consumer_direct_requires_push());
            }
            if self.is_durable() {
                return Err(errors::consumer_direct_requires_ephemeral());
            }
        }

        self.validate_filters(stream)?;
        self.validate_start()?;

        if !self.sample_freq.is_empty() {
            let s = self
                .sample_freq
                .strip_suffix('%')
                .unwrap_or(&self.sample_freq);
            match go_atoi(s) {
                Ok(n) if n >= 0 => {}
                // Go formats the nil error of a negative value as "<nil>".
                Ok(_) => return Err(errors::consumer_invalid_sampling("<nil>")),
                Err(e) => return Err(errors::consumer_invalid_sampling(e)),
            }
        }
        if self.flow_control && self.idle_heartbeat == 0 {
            return Err(errors::consumer_with_flow_control_needs_heartbeats());
        }
        if !self.durable.is_empty() && !self.name.is_empty() && self.durable != self.name {
            return Err(errors::consumer_create_durable_and_name_mismatch());
        }
        let metadata_len: usize = self.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if metadata_len > MAX_METADATA_LEN {
            return Err(errors::consumer_metadata_length(format_args!(
                "{}KB",
                MAX_METADATA_LEN / 1024
            )));
        }
        Ok(())
    }

    fn validate_push(&self, stream: &StreamConfig) -> Result<(), ApiError> {
        let ds = &self.deliver_subject;
        if !is_literal(ds) {
            return Err(errors::consumer_deliver_to_wildcards());
        }
        if !is_valid_go_subject(ds) {
            return Err(errors::consumer_invalid_deliver_subject());
        }
        if stream.subjects.iter().any(|s| is_subset_match(ds, s)) {
            return Err(errors::consumer_deliver_cycle());
        }
        if self.max_waiting != 0 {
            return Err(errors::consumer_push_max_waiting());
        }
        if self.max_ack_pending > 0 && self.ack_policy == AckPolicy::None {
            return Err(errors::consumer_max_pending_ack_policy_required());
        }
        if self.idle_heartbeat > 0 && self.idle_heartbeat < MIN_IDLE_HEARTBEAT {
            return Err(errors::consumer_small_heartbeat());
        }
        Ok(())
    }

    fn validate_pull(
        &self,
        stream: &StreamConfig,
        limits: &ConsumerLimits,
    ) -> Result<(), ApiError> {
        if self.ack_policy == AckPolicy::None && stream.retention == RetentionPolicy::WorkQueue {
            return Err(errors::consumer_pull_requires_ack());
        }
        if self.rate_limit_bps > 0 {
            return Err(errors::consumer_pull_with_rate_limit());
        }
        if self.max_waiting < 0 {
            return Err(errors::consumer_max_waiting_negative());
        }
        if self.idle_heartbeat > 0 {
            return Err(errors::consumer_hb_requires_push());
        }
        if self.flow_control {
            return Err(errors::consumer_fc_requires_push());
        }
        if self.max_batch < 0 {
            return Err(errors::consumer_max_request_batch_negative());
        }
        if self.max_expires != 0 && self.max_expires < MIN_MAX_EXPIRES {
            return Err(errors::consumer_max_request_expires_too_small());
        }
        let lim = limits.server_max_request_batch;
        if lim > 0 && self.max_batch > lim {
            return Err(errors::consumer_max_request_batch_exceeded(lim));
        }
        Ok(())
    }

    /// Filters: 2.10's `filter_subjects` rules (10136, 10139, 10138) around
    /// 2.9.10's subset check (10093). 2.10+ dropped the subset check (a filter
    /// may name subjects the stream does not hold yet); 2.9.10 rejects a
    /// filter that is invalid or matches none of the stream's subjects.
    fn validate_filters(&self, stream: &StreamConfig) -> Result<(), ApiError> {
        if !self.filter_subject.is_empty() && !self.filter_subjects.is_empty() {
            return Err(errors::consumer_duplicate_filter_subjects());
        }
        if self.filter_subjects.iter().any(String::is_empty) {
            return Err(errors::consumer_empty_filter());
        }
        let filters = self.filters();
        for f in &filters {
            if !is_valid_filter(f, &stream.subjects) {
                return Err(errors::consumer_filter_not_subset());
            }
        }
        for (i, a) in filters.iter().enumerate() {
            for (j, b) in filters.iter().enumerate() {
                if i != j && subjects_overlap(a, b) {
                    return Err(errors::consumer_overlapping_subject_filters());
                }
            }
        }
        Ok(())
    }

    /// Deliver policy against `opt_start_seq` / `opt_start_time` (10094).
    fn validate_start(&self) -> Result<(), ApiError> {
        let bad_start = |dp: &str, start: &str| {
            errors::consumer_invalid_policy(format_args!(
                "consumer delivery policy is deliver {dp}, but optional start {start} is also set"
            ))
        };
        let not_set = |dp: &str, what: &str| {
            errors::consumer_invalid_policy(format_args!(
                "consumer delivery policy is deliver {dp}, but optional {what} is not set"
            ))
        };
        let (seq, time) = (self.opt_start_seq > 0, self.opt_start_time.is_some());
        let simple = |dp: &str| {
            if seq {
                Err(bad_start(dp, "sequence"))
            } else if time {
                Err(bad_start(dp, "time"))
            } else {
                Ok(())
            }
        };
        match self.deliver_policy {
            DeliverPolicy::All => simple("all"),
            DeliverPolicy::Last => simple("last"),
            DeliverPolicy::New => simple("new"),
            DeliverPolicy::LastPerSubject => {
                simple("last per subject")?;
                if self.filters().is_empty() {
                    return Err(not_set("last per subject", "filter subject"));
                }
                Ok(())
            }
            DeliverPolicy::ByStartSequence => {
                if !seq {
                    Err(not_set("by start sequence", "start sequence"))
                } else if time {
                    Err(bad_start("by start sequence", "time"))
                } else {
                    Ok(())
                }
            }
            DeliverPolicy::ByStartTime => {
                if !time {
                    Err(not_set("by start time", "start time"))
                } else if seq {
                    Err(bad_start("by start time", "start sequence"))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The name checks `addConsumer` makes last: a durable name of at most
    /// 255 bytes (10102), and a name without whitespace, `.`, `*` or `>`
    /// (10103). An unnamed ephemeral passes (it gets a generated name).
    pub fn check_name(&self) -> Result<(), ApiError> {
        if self.is_durable() && self.durable.len() > MAX_NAME_LEN {
            return Err(errors::consumer_name_too_long(MAX_NAME_LEN));
        }
        let name = self.consumer_name();
        if !name.is_empty() && !is_valid_name(name) {
            return Err(errors::consumer_bad_durable_name());
        }
        Ok(())
    }
}

fn backoff_len(backoff: &[i64]) -> i64 {
    i64::try_from(backoff.len()).unwrap_or(i64::MAX)
}

/// Go's `IsValidSubject` (our check plus form feed, which Go also rejects).
fn is_valid_go_subject(s: &str) -> bool {
    is_valid_subject(s.as_bytes()) && !s.contains('\x0c')
}

/// Go's `subjectIsLiteral`: no token is `*` or `>`.
fn is_literal(s: &str) -> bool {
    !s.split('.').any(|t| t == "*" || t == ">")
}

/// 2.9.10's `validFilteredSubject`: a valid subject inside one of the stream's
/// subjects, or a wildcard filter wider than one of them.
fn is_valid_filter(filter: &str, subjects: &[String]) -> bool {
    if !is_valid_go_subject(filter) {
        return false;
    }
    let wildcard = !is_literal(filter);
    subjects
        .iter()
        .any(|s| is_subset_match(filter, s) || (wildcard && is_subset_match(s, filter)))
}

/// Go's `strconv.Atoi` on a 64-bit platform, with its error text.
fn go_atoi(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        use std::num::IntErrorKind::{NegOverflow, PosOverflow};
        let why = match e.kind() {
            PosOverflow | NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {s:?}: {why}")
    })
}

// ---------------------------------------------------------------------------
// Update and work-queue rules

/// 2.9.10's `checkNewConsumerConfig` (row CC30): may the consumer with the
/// normalized config `old` take the normalized config `new`? Assumes nobody
/// is subscribed to the old deliver subject; see [`check_update_bound`].
pub fn check_update(old: &ConsumerConfig, new: &ConsumerConfig) -> Result<(), ApiError> {
    check_update_bound(old, new, false)
}

/// [`check_update`] for a push consumer whose current deliver subject has
/// subscribers (`old_deliver_bound`): then it may not move to another deliver
/// subject (10013, "consumer name already in use").
///
/// Refusals are 10012 (500) with 2.9.10's texts, as its create handler wraps
/// them. Like 2.9.10, a config with an `opt_start_time` cannot change at all
/// ("start time can not be updated": Go compares the time pointers).
pub fn check_update_bound(
    old: &ConsumerConfig,
    new: &ConsumerConfig,
    old_deliver_bound: bool,
) -> Result<(), ApiError> {
    if old == new {
        return Ok(());
    }
    let refuse = |what: &str| Err(errors::consumer_create(what));
    if old.deliver_policy != new.deliver_policy {
        return refuse("deliver policy can not be updated");
    }
    if old.opt_start_seq != new.opt_start_seq {
        return refuse("start sequence can not be updated");
    }
    if old.opt_start_time.is_some() || new.opt_start_time.is_some() {
        return refuse("start time can not be updated");
    }
    if old.ack_policy != new.ack_policy {
        return refuse("ack policy can not be updated");
    }
    if old.replay_policy != new.replay_policy {
        return refuse("replay policy can not be updated");
    }
    if old.idle_heartbeat != new.idle_heartbeat {
        return refuse("heart beats can not be updated");
    }
    if old.flow_control != new.flow_control {
        return refuse("flow control can not be updated");
    }
    if old.max_waiting != new.max_waiting {
        return refuse("max waiting can not be updated");
    }
    if old.deliver_subject != new.deliver_subject {
        if old.deliver_subject.is_empty() {
            return refuse("can not update pull consumer to push based");
        }
        if new.deliver_subject.is_empty() {
            return refuse("can not update push consumer to pull based");
        }
        if old_deliver_bound {
            return Err(errors::consumer_name_exist());
        }
    }
    if !new.backoff.is_empty() && new.max_deliver <= backoff_len(&new.backoff) {
        return Err(errors::consumer_max_deliver_backoff());
    }
    Ok(())
}

/// 2.9.10's work-queue checks of `addConsumer` (rows CC31, PE1) for a new
/// consumer `cfg` on a work-queue stream that already has the consumers
/// `existing`: explicit acks (10098); with other consumers, a filter (10099)
/// that is unique, i.e. no other consumer is unfiltered and no filter is a
/// subset of the other (10100); deliver policy `all` (10101). `direct`
/// consumers are exempt. Other retention policies pass.
///
/// 2.9.10 compares filters by subset, so `foo.*` and `*.bar` may coexist.
/// With 2.10's `filter_subjects`, every pair of filters is compared.
pub fn check_work_queue<'a>(
    stream: &StreamConfig,
    cfg: &ConsumerConfig,
    existing: impl IntoIterator<Item = &'a ConsumerConfig>,
) -> Result<(), ApiError> {
    if stream.retention != RetentionPolicy::WorkQueue || cfg.direct {
        return Ok(());
    }
    if cfg.ack_policy != AckPolicy::Explicit {
        return Err(errors::consumer_wq_requires_explicit_ack());
    }
    let filters = cfg.filters();
    let mut existing = existing.into_iter().peekable();
    if existing.peek().is_some() {
        if filters.is_empty() {
            return Err(errors::consumer_wq_multiple_unfiltered());
        }
        for other in existing {
            let theirs = other.filters();
            let clash = theirs.is_empty()
                || filters.iter().any(|a| {
                    theirs
                        .iter()
                        .any(|b| is_subset_match(a, b) || is_subset_match(b, a))
                });
            if clash {
                return Err(errors::consumer_wq_consumer_not_unique());
            }
        }
    }
    if cfg.deliver_policy != DeliverPolicy::All {
        return Err(errors::consumer_wq_consumer_not_deliver_all());
    }
    Ok(())
}

/// A server-generated consumer name from the engine's random `rand`: 8
/// characters of `[0-9A-Za-z]`, the shape of 2.9.10's `createConsumerName`
/// (which hashes a NUID; the engine draws its randomness from its own seeded
/// generator instead). Equal inputs give equal names.
pub fn generate_consumer_name(rand: u64) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut state = rand;
    let mut name = String::with_capacity(GENERATED_NAME_LEN);
    for _ in 0..GENERATED_NAME_LEN {
        // splitmix64: every character depends on all bits of `rand`.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let idx = usize::try_from(z % 62).unwrap_or(0);
        name.push(char::from(DIGITS[idx]));
    }
    name
}

// ---------------------------------------------------------------------------
// Requests

/// The create `action` (2.10, row PE8): `""` creates or updates, `"create"`
/// fails if the consumer exists with another config, `"update"` fails if it
/// does not exist. 2.9.10 ignores the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ConsumerAction {
    /// Create or update.
    #[default]
    #[serde(rename = "")]
    CreateOrUpdate,
    /// Create only.
    #[serde(rename = "create")]
    Create,
    /// Update only.
    #[serde(rename = "update")]
    Update,
}

impl ConsumerAction {
    fn is_default(&self) -> bool {
        *self == ConsumerAction::CreateOrUpdate
    }
}

/// `$JS.API.CONSUMER.CREATE` body (`CreateConsumerRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateConsumerRequest {
    /// Stream name (must equal the one in the subject, 10056).
    #[serde(rename = "stream_name", deserialize_with = "null_default")]
    pub stream_name: String,
    /// The configuration.
    #[serde(deserialize_with = "null_default")]
    pub config: ConsumerConfig,
    /// Create/update intent (2.10).
    #[serde(
        skip_serializing_if = "ConsumerAction::is_default",
        deserialize_with = "null_default"
    )]
    pub action: ConsumerAction,
}

/// A pull request (`JSApiConsumerGetNextRequest`, row PL1). Durations in
/// nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PullRequest {
    /// Relative expiry (0: none).
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub expires: i64,
    /// Messages wanted. 2.9.10 takes it as given (0 or negative included).
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub batch: i64,
    /// Byte budget (0: none).
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "null_default")]
    pub max_bytes: i64,
    /// Answer `404 No Messages` rather than wait when nothing is pending.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "null_default")]
    pub no_wait: bool,
    /// Heartbeat interval while waiting (0: none).
    #[serde(
        rename = "idle_heartbeat",
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "null_default"
    )]
    pub idle_heartbeat: i64,
}

/// A status reply to a pull request: `NATS/1.0 <code> <description>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullStatus {
    /// Status code (400, 409, …).
    pub code: u16,
    /// Description after the code.
    pub description: String,
}

impl PullStatus {
    fn new(code: u16, description: impl Into<String>) -> PullStatus {
        PullStatus {
            code,
            description: description.into(),
        }
    }

    /// The header block 2.9.10 sends: `NATS/1.0 <code> <description>\r\n\r\n`.
    pub fn to_header(&self) -> Vec<u8> {
        format!("NATS/1.0 {} {}\r\n\r\n", self.code, self.description).into_bytes()
    }
}

impl PullRequest {
    /// Parse a pull request body as 2.9.10's `nextReqFromMsg` does, after
    /// trimming whitespace: empty is a batch of 1; a body starting with `{` is
    /// JSON (bad JSON: `400 Bad Request - <reason>`; an `idle_heartbeat` more
    /// than half of `expires`: `400 Bad Request - heartbeat value too large`);
    /// anything else is a decimal batch size, or a batch of 1 when it is not
    /// a number. The JSON reason is serde's text, not Go's.
    pub fn parse(body: &[u8]) -> Result<PullRequest, PullStatus> {
        let body = body.trim_ascii();
        if body.is_empty() {
            return Ok(PullRequest::batch(1));
        }
        if body.first() == Some(&b'{') {
            let req: PullRequest = serde_json::from_slice(body)
                .map_err(|e| PullStatus::new(400, format!("Bad Request - {e}")))?;
            // Go's Duration arithmetic wraps; so does this.
            if req.idle_heartbeat > 0 && req.idle_heartbeat.wrapping_mul(2) > req.expires {
                return Err(PullStatus::new(
                    400,
                    "Bad Request - heartbeat value too large",
                ));
            }
            return Ok(req);
        }
        let n = std::str::from_utf8(body)
            .ok()
            .and_then(|s| go_atoi(s).ok())
            .unwrap_or(1);
        Ok(PullRequest::batch(n))
    }

    /// A request for `n` messages and nothing else.
    pub fn batch(n: i64) -> PullRequest {
        PullRequest {
            batch: n,
            ..PullRequest::default()
        }
    }

    /// The consumer's request caps (row PL7): `409 Exceeded MaxRequestBatch
    /// of N`, `409 Exceeded MaxRequestExpires of <duration>`, `409 Exceeded
    /// MaxRequestMaxBytes of N`, checked in that order.
    pub fn check_limits(&self, cfg: &ConsumerConfig) -> Result<(), PullStatus> {
        if cfg.max_batch > 0 && self.batch > cfg.max_batch {
            return Err(PullStatus::new(
                409,
                format!("Exceeded MaxRequestBatch of {}", cfg.max_batch),
            ));
        }
        if self.expires > 0 && cfg.max_expires > 0 && self.expires > cfg.max_expires {
            return Err(PullStatus::new(
                409,
                format!(
                    "Exceeded MaxRequestExpires of {}",
                    go_duration_string(cfg.max_expires)
                ),
            ));
        }
        if self.max_bytes > 0 && cfg.max_bytes > 0 && self.max_bytes > cfg.max_bytes {
            return Err(PullStatus::new(
                409,
                format!("Exceeded MaxRequestMaxBytes of {}", cfg.max_bytes),
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Info

/// A consumer and a stream sequence, with the time of the last activity
/// (`SequenceInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SequenceInfo {
    /// Consumer sequence.
    #[serde(rename = "consumer_seq")]
    pub consumer_seq: u64,
    /// Stream sequence.
    #[serde(rename = "stream_seq")]
    pub stream_seq: u64,
    /// Last delivery (or ack, for the ack floor); omitted when never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_active: Option<Timestamp>,
}

/// Consumer info (`ConsumerInfo`): the payload of create and info responses
/// and the entries of the list response. A single 2.9.10 server sends no
/// `cluster` here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerInfo {
    /// Stream name.
    #[serde(rename = "stream_name")]
    pub stream_name: String,
    /// Consumer name.
    pub name: String,
    /// Creation time.
    pub created: Timestamp,
    /// Active configuration.
    pub config: ConsumerConfig,
    /// Last delivered.
    pub delivered: SequenceInfo,
    /// Highest contiguous ack.
    pub ack_floor: SequenceInfo,
    /// Deliveries waiting for an ack.
    pub num_ack_pending: u64,
    /// Messages redelivered at least once.
    pub num_redelivered: u64,
    /// Waiting pull requests.
    pub num_waiting: u64,
    /// Messages not yet delivered.
    pub num_pending: u64,
    /// Cluster information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    /// A push consumer with a subscriber on its deliver subject.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_default"
    )]
    pub push_bound: bool,
}

// ---------------------------------------------------------------------------
// Responses

/// `$JS.API.CONSUMER.CREATE` response (`JSApiConsumerCreateResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerCreateResponse {
    /// `io.nats.jetstream.api.v1.consumer_create_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Consumer info (flattened).
    #[serde(flatten)]
    pub info: Option<ConsumerInfo>,
}
response_ctors!(ConsumerCreateResponse, response_type::CONSUMER_CREATE);
impl ConsumerCreateResponse {
    /// A success.
    pub fn ok(info: ConsumerInfo) -> Self {
        ConsumerCreateResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            info: Some(info),
        }
    }
}

/// `$JS.API.CONSUMER.INFO` response (`JSApiConsumerInfoResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerInfoResponse {
    /// `io.nats.jetstream.api.v1.consumer_info_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Consumer info (flattened).
    #[serde(flatten)]
    pub info: Option<ConsumerInfo>,
}
response_ctors!(ConsumerInfoResponse, response_type::CONSUMER_INFO);
impl ConsumerInfoResponse {
    /// A success.
    pub fn ok(info: ConsumerInfo) -> Self {
        ConsumerInfoResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            info: Some(info),
        }
    }
}

/// `$JS.API.CONSUMER.DELETE` response (`JSApiConsumerDeleteResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerDeleteResponse {
    /// `io.nats.jetstream.api.v1.consumer_delete_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Deleted (omitted when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}
response_ctors!(ConsumerDeleteResponse, response_type::CONSUMER_DELETE);
impl ConsumerDeleteResponse {
    /// A success.
    pub fn ok() -> Self {
        ConsumerDeleteResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            success: true,
        }
    }
}

/// `$JS.API.CONSUMER.NAMES` response (`JSApiConsumerNamesResponse`).
/// `consumers` is always an array (2.9.10 initializes it), errors included.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerNamesResponse {
    /// `io.nats.jetstream.api.v1.consumer_names_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Paging.
    #[serde(flatten)]
    pub paged: ApiPaged,
    /// Consumer names (sorted).
    #[serde(default, deserialize_with = "null_default")]
    pub consumers: Vec<String>,
}
response_ctors!(ConsumerNamesResponse, response_type::CONSUMER_NAMES);
impl ConsumerNamesResponse {
    /// A success.
    pub fn ok(consumers: Vec<String>, paged: ApiPaged) -> Self {
        ConsumerNamesResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            paged,
            consumers,
        }
    }
}

/// `$JS.API.CONSUMER.LIST` response (`JSApiConsumerListResponse`).
/// `consumers` is always an array (2.9.10 initializes it), errors included.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerListResponse {
    /// `io.nats.jetstream.api.v1.consumer_list_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Paging.
    #[serde(flatten)]
    pub paged: ApiPaged,
    /// Consumer infos.
    #[serde(default, deserialize_with = "null_default")]
    pub consumers: Vec<ConsumerInfo>,
    /// Consumers that could not be reached (clustered).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub missing: Vec<String>,
}
response_ctors!(ConsumerListResponse, response_type::CONSUMER_LIST);
impl ConsumerListResponse {
    /// A success.
    pub fn ok(consumers: Vec<ConsumerInfo>, paged: ApiPaged) -> Self {
        ConsumerListResponse {
            kind: Self::TYPE.to_owned(),
            error: None,
            paged,
            consumers,
            missing: Vec::new(),
        }
    }
}

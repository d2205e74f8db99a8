//! JetStream API errors, as nats-server sends them.
//!
//! An [`ApiError`] serializes as `{"code":400,"err_code":10058,"description":"…"}`
//! (Go's `ApiError` with `err_code` and `description` omitted when empty). The
//! constructors are named after nats-server's `NewJS…Error` functions, in snake
//! case without the `JS` prefix and `Error` suffix (`NewJSStreamNotFoundError`
//! is [`stream_not_found`]). Code, err_code and description template of each
//! come from nats-server's `errors.json` (the copy in
//! `engine/tests/data/jetstream-errors.json`; a unit test checks every entry of
//! [`TEMPLATES`] against it). Placeholders such as `{err}` or `{seq}` are
//! replaced by the constructor's arguments.
//!
//! Where 2.9.10 differs from that table: 2.9.10's "invalid JSON" error (10025)
//! has no `: {err}` suffix; [`invalid_json`] follows the newer table.
//! 10084 has 2.9.10's text ([`consumer_pull_requires_ack`], outside the table).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A JetStream API error: `code` is HTTP-like (400, 404, 500, 503, …),
/// `err_code` the JetStream-specific 10xxx code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiError {
    /// HTTP-like status code.
    pub code: u16,
    /// JetStream error code (10xxx); omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub err_code: u16,
    /// Human readable text; omitted from JSON when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

fn is_zero(v: &u16) -> bool {
    *v == 0
}

impl ApiError {
    /// An error with the given code, err_code and description.
    pub fn new(code: u16, err_code: u16, description: impl Into<String>) -> ApiError {
        ApiError {
            code,
            err_code,
            description: description.into(),
        }
    }

    /// Build from a description template, replacing each `(placeholder, value)`.
    fn from_template(
        code: u16,
        err_code: u16,
        template: &str,
        args: &[(&str, String)],
    ) -> ApiError {
        let mut description = template.to_owned();
        for (ph, value) in args {
            description = description.replace(ph, value);
        }
        ApiError {
            code,
            err_code,
            description,
        }
    }
}

/// Like Go's `ApiError.Error()`: `"<description> (<err_code>)"`.
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description, self.err_code)
    }
}

impl std::error::Error for ApiError {}

/// One entry of nats-server's error table, as a constructor here uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorTemplate {
    /// The constructor's name in this module.
    pub function: &'static str,
    /// nats-server's constant (`JSStreamNotFoundErr`).
    pub constant: &'static str,
    /// HTTP-like status code.
    pub code: u16,
    /// JetStream error code.
    pub err_code: u16,
    /// Description with `{placeholders}`.
    pub description: &'static str,
}

macro_rules! api_errors {
    ($(
        $(#[$doc:meta])*
        $name:ident($($arg:ident => $ph:literal),*) = $constant:literal, $code:literal, $err_code:literal, $desc:literal;
    )*) => {
        $(
            $(#[$doc])*
            #[doc = concat!("\n\n`", $constant, "`: ", stringify!($code), " / ", stringify!($err_code), " `", $desc, "`")]
            pub fn $name($($arg: impl fmt::Display),*) -> ApiError {
                ApiError::from_template($code, $err_code, $desc, &[$(($ph, $arg.to_string())),*])
            }
        )*

        /// Every constructor of this module with the table entry it uses.
        pub const TEMPLATES: &[ErrorTemplate] = &[$(
            ErrorTemplate {
                function: stringify!($name),
                constant: $constant,
                code: $code,
                err_code: $err_code,
                description: $desc,
            },
        )*];
    };
}

api_errors! {
    // General API errors.
    /// Malformed request (e.g. purge with both `seq` and `keep`).
    bad_request() = "JSBadRequestErr", 400, 10003, "bad request";
    /// The request body is not valid JSON for the request type.
    invalid_json(err => "{err}") = "JSInvalidJSONErr", 400, 10025, "invalid JSON: {err}";
    /// JetStream is not enabled for the requesting account.
    not_enabled_for_account() = "JSNotEnabledForAccountErr", 503, 10039, "JetStream not enabled for account";
    /// JetStream is not enabled on this server.
    not_enabled() = "JSNotEnabledErr", 503, 10076, "JetStream not enabled";
    /// A clustered-only operation on a single server.
    cluster_required() = "JSClusterRequiredErr", 503, 10010, "JetStream clustering support required";
    /// No limits apply to the account.
    no_limits() = "JSNoLimitsErr", 400, 10120, "no JetStream default or applicable tiered limit present";
    /// Account resource limits exceeded.
    account_resources_exceeded() = "JSAccountResourcesExceededErr", 400, 10002, "resource limits exceeded for account";
    /// Server-wide resources exhausted.
    insufficient_resources() = "JSInsufficientResourcesErr", 503, 10023, "insufficient resources";
    /// A request that must have an empty body had one.
    not_empty_request() = "JSNotEmptyRequestErr", 400, 10038, "expected an empty request payload";
    /// Memory store limit reached.
    memory_resources_exceeded() = "JSMemoryResourcesExceededErr", 500, 10028, "insufficient memory resources available";
    /// File store limit reached.
    storage_resources_exceeded() = "JSStorageResourcesExceededErr", 500, 10047, "insufficient storage resources available";
    /// The account's stream count limit is reached.
    maximum_streams_limit() = "JSMaximumStreamsLimitErr", 400, 10027, "maximum number of streams reached";
    /// The stream's or account's consumer count limit is reached.
    maximum_consumers_limit() = "JSMaximumConsumersLimitErr", 400, 10026, "maximum consumers limit reached";

    // Stream management.
    /// No stream with that name.
    stream_not_found() = "JSStreamNotFoundErr", 404, 10059, "stream not found";
    /// A stream with that name exists with a different configuration.
    stream_name_exist() = "JSStreamNameExistErr", 400, 10058, "stream name already in use with a different configuration";
    /// The stream name in the API subject differs from the body's `name`.
    stream_mismatch() = "JSStreamMismatchErr", 400, 10056, "stream name in subject does not match request";
    /// The stream name contains `/` or `\`.
    stream_name_contains_path_separators() = "JSStreamNameContainsPathSeparatorsErr", 400, 10128, "Stream name can not contain path separators";
    /// The subjects overlap with another stream's.
    stream_subject_overlap() = "JSStreamSubjectOverlapErr", 400, 10065, "subjects overlap with an existing stream";
    /// Most configuration validation failures; `err` is the reason.
    stream_invalid_config(err => "{err}") = "JSStreamInvalidConfigF", 500, 10052, "{err}";
    /// `num_replicas > 1` on a single, non-clustered server.
    stream_replicas_not_supported() = "JSStreamReplicasNotSupportedErr", 500, 10074, "replicas > 1 not supported in non-clustered mode";
    /// Replicas cannot be changed by an update.
    stream_replicas_not_updatable() = "JSStreamReplicasNotUpdatableErr", 400, 10061, "Replicas configuration can not be updated";
    /// Negative `num_replicas`.
    replicas_count_cannot_be_negative() = "JSReplicasCountCannotBeNegative", 400, 10133, "replicas count cannot be negative";
    /// The mirror configuration cannot be changed by an update.
    stream_mirror_not_updatable() = "JSStreamMirrorNotUpdatableErr", 400, 10055, "stream mirror configuration can not be updated";
    /// A mirror with `subjects`.
    mirror_with_subjects() = "JSMirrorWithSubjectsErr", 400, 10034, "stream mirrors can not contain subjects";
    /// A mirror with `sources`.
    mirror_with_sources() = "JSMirrorWithSourcesErr", 400, 10031, "stream mirrors can not also contain other sources";
    /// The account requires `max_bytes` on every stream.
    stream_max_bytes_required() = "JSStreamMaxBytesRequired", 400, 10113, "account requires a stream config to have max bytes set";
    /// `max_bytes` above the account's per-stream limit.
    stream_max_stream_bytes_exceeded() = "JSStreamMaxStreamBytesExceeded", 400, 10122, "stream max bytes exceeds account limit max stream bytes";
    /// Generic stream creation failure.
    stream_create(err => "{err}") = "JSStreamCreateErrF", 500, 10049, "{err}";
    /// Generic stream update failure.
    stream_update(err => "{err}") = "JSStreamUpdateErrF", 500, 10069, "{err}";
    /// Generic stream deletion failure.
    stream_delete(err => "{err}") = "JSStreamDeleteErrF", 500, 10050, "{err}";
    /// Generic stream failure.
    stream_general_error(err => "{err}") = "JSStreamGeneralErrorF", 500, 10051, "{err}";
    /// Stream limits failure.
    stream_limits(err => "{err}") = "JSStreamLimitsErrF", 500, 10053, "{err}";
    /// The stream is not in a valid state.
    stream_invalid() = "JSStreamInvalidErr", 500, 10096, "stream not valid";
    /// Subject details in a stream info would exceed the maximum.
    stream_info_max_subjects() = "JSStreamInfoMaxSubjectsErr", 500, 10117, "subject details would exceed maximum allowed";

    // Publishing.
    /// `Nats-Expected-Stream` mismatch.
    stream_not_match() = "JSStreamNotMatchErr", 400, 10060, "expected stream does not match";
    /// `Nats-Expected-Last-Sequence` / `…-Last-Subject-Sequence` mismatch.
    stream_wrong_last_sequence(seq => "{seq}") = "JSStreamWrongLastSequenceErrF", 400, 10071, "wrong last sequence: {seq}";
    /// `Nats-Expected-Last-Msg-Id` mismatch.
    stream_wrong_last_msg_id(id => "{id}") = "JSStreamWrongLastMsgIDErrF", 400, 10070, "wrong last msg ID: {id}";
    /// Clustered sequence mismatch.
    stream_sequence_not_match() = "JSStreamSequenceNotMatchErr", 503, 10063, "expected stream sequence does not match";
    /// Payload larger than `max_msg_size` (or the account max payload).
    stream_message_exceeds_maximum() = "JSStreamMessageExceedsMaximumErr", 400, 10054, "message size exceeds maximum allowed";
    /// Headers larger than 64 KiB.
    stream_header_exceeds_maximum() = "JSStreamHeaderExceedsMaximumErr", 400, 10097, "header size exceeds maximum allowed of 64k";
    /// Store failure (e.g. `maximum messages exceeded` with discard new).
    stream_store_failed(err => "{err}") = "JSStreamStoreFailedF", 503, 10077, "{err}";
    /// Rollup not permitted or invalid.
    stream_rollup_failed(err => "{err}") = "JSStreamRollupFailedF", 500, 10111, "{err}";
    /// Write, delete or purge on a sealed stream.
    stream_sealed() = "JSStreamSealedErr", 400, 10109, "invalid operation on sealed stream";

    // Stream data operations.
    /// MSG.GET found nothing.
    no_message_found() = "JSNoMessageFoundErr", 404, 10037, "no message found";
    /// MSG.DELETE of a missing sequence.
    sequence_not_found(seq => "{seq}") = "JSSequenceNotFoundErrF", 400, 10043, "sequence {seq} not found";
    /// MSG.DELETE failure (e.g. `message delete not permitted`).
    stream_msg_delete_failed(err => "{err}") = "JSStreamMsgDeleteFailedF", 500, 10057, "{err}";
    /// PURGE failure (e.g. `stream purge not permitted`).
    stream_purge_failed(err => "{err}") = "JSStreamPurgeFailedF", 500, 10110, "{err}";

    // Consumers (the ones stream operations can hit).
    /// No consumer with that name.
    consumer_not_found() = "JSConsumerNotFoundErr", 404, 10014, "consumer not found";
    /// A consumer with that name exists.
    consumer_name_exist() = "JSConsumerNameExistErr", 400, 10013, "consumer name already in use";
    /// Generic consumer creation failure.
    consumer_create(err => "{err}") = "JSConsumerCreateErrF", 500, 10012, "{err}";
    /// `action: create` for an existing consumer with another config (2.10).
    consumer_already_exists() = "JSConsumerAlreadyExists", 400, 10148, "consumer already exists";
    /// `action: update` for a consumer that does not exist (2.10).
    consumer_does_not_exist() = "JSConsumerDoesNotExist", 400, 10149, "consumer does not exist";

    // The consumer create subject against the request.
    /// A consumer name in the subject with `/` or `\`.
    consumer_name_contains_path_separators() = "JSConsumerNameContainsPathSeparatorsErr", 400, 10127, "Consumer name can not contain path separators";
    /// `DURABLE.CREATE` without a durable name token.
    consumer_durable_name_not_in_subject() = "JSConsumerDurableNameNotInSubjectErr", 400, 10016, "consumer expected to be durable but no durable name set in subject";
    /// The name in the subject is not the request's `durable_name`.
    consumer_durable_name_not_match_subject() = "JSConsumerDurableNameNotMatchSubjectErr", 400, 10017, "consumer name in subject does not match durable name in request";
    /// `DURABLE.CREATE` with no `durable_name` in the request.
    consumer_durable_name_not_set() = "JSConsumerDurableNameNotSetErr", 400, 10018, "consumer expected to be durable but a durable name was not set";
    /// The ephemeral create subject with a `durable_name` in the request.
    consumer_ephemeral_with_durable_name() = "JSConsumerEphemeralWithDurableNameErr", 400, 10020, "consumer expected to be ephemeral but a durable name was set in request";
    /// The filter in the create subject is not the request's `filter_subject` (2.10).
    consumer_create_filter_subject_mismatch() = "JSConsumerCreateFilterSubjectMismatchErr", 400, 10131, "Consumer create request did not match filtered subject from create subject";
    /// A filter in the create subject and `filter_subjects` in the request (2.10).
    consumer_multiple_filters_not_allowed() = "JSConsumerMultipleFiltersNotAllowed", 400, 10137, "consumer with multiple subject filters cannot use subject based API";

    // Consumer configuration (`checkConsumerCfg`, `addConsumer`).
    /// `num_replicas` above the stream's.
    consumer_replicas_exceeds_stream() = "JSConsumerReplicasExceedsStream", 400, 10126, "consumer config replica count exceeds parent stream";
    /// Negative `ack_wait` (2.11+ check).
    consumer_ack_wait_negative() = "JSConsumerAckWaitNegativeErr", 400, 10183, "consumer ack wait needs to be positive";
    /// Negative `backoff` entry (2.11+ check).
    consumer_back_off_negative() = "JSConsumerBackOffNegativeErr", 400, 10184, "consumer backoff needs to be positive";
    /// `max_deliver` too small for the `backoff` list.
    consumer_max_deliver_backoff() = "JSConsumerMaxDeliverBackoffErr", 400, 10116, "max deliver is required to be > length of backoff values";
    /// Description longer than 4096 bytes.
    consumer_description_too_long(max => "{max}") = "JSConsumerDescriptionTooLongErrF", 400, 10107, "consumer description is too long, maximum allowed is {max}";
    /// `deliver_subject` with wildcards.
    consumer_deliver_to_wildcards() = "JSConsumerDeliverToWildcardsErr", 400, 10079, "consumer deliver subject has wildcards";
    /// `deliver_subject` not a valid subject.
    consumer_invalid_deliver_subject() = "JSConsumerInvalidDeliverSubject", 400, 10112, "invalid push consumer deliver subject";
    /// `deliver_subject` inside the stream's subjects.
    consumer_deliver_cycle() = "JSConsumerDeliverCycleErr", 400, 10081, "consumer deliver subject forms a cycle";
    /// `max_waiting` on a push consumer.
    consumer_push_max_waiting() = "JSConsumerPushMaxWaitingErr", 400, 10080, "consumer in push mode can not set max waiting";
    /// `max_ack_pending` on a push consumer with ack policy none.
    consumer_max_pending_ack_policy_required() = "JSConsumerMaxPendingAckPolicyRequiredErr", 400, 10082, "consumer requires ack policy for max ack pending";
    /// `idle_heartbeat` below 100ms.
    consumer_small_heartbeat() = "JSConsumerSmallHeartbeatErr", 400, 10083, "consumer idle heartbeat needs to be >= 100ms";
    /// `rate_limit_bps` on a pull consumer.
    consumer_pull_with_rate_limit() = "JSConsumerPullWithRateLimitErr", 400, 10086, "consumer in pull mode can not have rate limit set";
    /// Negative `max_waiting`.
    consumer_max_waiting_negative() = "JSConsumerMaxWaitingNegativeErr", 400, 10087, "consumer max waiting needs to be positive";
    /// `idle_heartbeat` on a pull consumer.
    consumer_hb_requires_push() = "JSConsumerHBRequiresPushErr", 400, 10088, "consumer idle heartbeat requires a push based consumer";
    /// `flow_control` on a pull consumer.
    consumer_fc_requires_push() = "JSConsumerFCRequiresPushErr", 400, 10089, "consumer flow control requires a push based consumer";
    /// Negative `max_batch`.
    consumer_max_request_batch_negative() = "JSConsumerMaxRequestBatchNegativeErr", 400, 10114, "consumer max request batch needs to be > 0";
    /// `max_expires` below 1ms.
    consumer_max_request_expires_too_small() = "JSConsumerMaxRequestExpiresTooSmall", 400, 10115, "consumer max request expires needs to be >= 1ms";
    /// `max_batch` above the server limit.
    consumer_max_request_batch_exceeded(limit => "{limit}") = "JSConsumerMaxRequestBatchExceededF", 400, 10125, "consumer max request batch exceeds server limit of {limit}";
    /// `max_ack_pending` above the server or account limit.
    consumer_max_pending_ack_excess(limit => "{limit}") = "JSConsumerMaxPendingAckExcessErrF", 400, 10121, "consumer max ack pending exceeds system limit of {limit}";
    /// `direct` on a pull consumer.
    consumer_direct_requires_push() = "JSConsumerDirectRequiresPushErr", 400, 10090, "consumer direct requires a push based consumer";
    /// `direct` on a durable consumer.
    consumer_direct_requires_ephemeral() = "JSConsumerDirectRequiresEphemeralErr", 400, 10091, "consumer direct requires an ephemeral consumer";
    /// Both `filter_subject` and `filter_subjects` (2.10).
    consumer_duplicate_filter_subjects() = "JSConsumerDuplicateFilterSubjects", 400, 10136, "consumer cannot have both FilterSubject and FilterSubjects specified";
    /// An empty entry in `filter_subjects` (2.10).
    consumer_empty_filter() = "JSConsumerEmptyFilter", 400, 10139, "consumer filter in FilterSubjects cannot be empty";
    /// Overlapping entries in `filter_subjects` (2.10).
    consumer_overlapping_subject_filters() = "JSConsumerOverlappingSubjectFilters", 400, 10138, "consumer subject filters cannot overlap";
    /// A filter outside the stream's subjects (2.9.10 only).
    consumer_filter_not_subset() = "JSConsumerFilterNotSubsetErr", 400, 10093, "consumer filter subject is not a valid subset of the interest subjects";
    /// Deliver policy and `opt_start_*` do not agree.
    consumer_invalid_policy(err => "{err}") = "JSConsumerInvalidPolicyErrF", 400, 10094, "{err}";
    /// Bad `sample_freq`.
    consumer_invalid_sampling(err => "{err}") = "JSConsumerInvalidSamplingErrF", 400, 10095, "failed to parse consumer sampling configuration: {err}";
    /// `flow_control` without `idle_heartbeat`.
    consumer_with_flow_control_needs_heartbeats() = "JSConsumerWithFlowControlNeedsHeartbeats", 400, 10108, "consumer with flow control also needs heartbeats";
    /// `durable_name` and `name` both set and different.
    consumer_create_durable_and_name_mismatch() = "JSConsumerCreateDurableAndNameMismatch", 400, 10132, "Consumer Durable and Name have to be equal if both are provided";
    /// `metadata` larger than 128 KiB (2.10).
    consumer_metadata_length(limit => "{limit}") = "JSConsumerMetadataLengthErrF", 400, 10135, "consumer metadata exceeds maximum size of {limit}";
    /// Durable name longer than 255 bytes.
    consumer_name_too_long(max => "{max}") = "JSConsumerNameTooLongErrF", 400, 10102, "consumer name is too long, maximum allowed is {max}";
    /// Consumer name with whitespace, `.`, `*` or `>`.
    consumer_bad_durable_name() = "JSConsumerBadDurableNameErr", 400, 10103, "durable name can not contain '.', '*', '>'";
    /// Work-queue stream, ack policy other than explicit.
    consumer_wq_requires_explicit_ack() = "JSConsumerWQRequiresExplicitAckErr", 400, 10098, "workqueue stream requires explicit ack";
    /// Work-queue stream, a second consumer without a filter.
    consumer_wq_multiple_unfiltered() = "JSConsumerWQMultipleUnfilteredErr", 400, 10099, "multiple non-filtered consumers not allowed on workqueue stream";
    /// Work-queue stream, a filter that is not unique among the consumers.
    consumer_wq_consumer_not_unique() = "JSConsumerWQConsumerNotUniqueErr", 400, 10100, "filtered consumer not unique on workqueue stream";
    /// Work-queue stream, deliver policy other than all.
    consumer_wq_consumer_not_deliver_all() = "JSConsumerWQConsumerNotDeliverAllErr", 400, 10101, "consumer must be deliver all on workqueue stream";
}

/// A pull consumer without acks on a work-queue stream (10084), with
/// 2.9.10's text; newer servers say "consumer in pull mode requires explicit
/// ack policy on workqueue stream".
pub fn consumer_pull_requires_ack() -> ApiError {
    ApiError::new(400, 10084, "consumer in pull mode requires ack policy")
}

/// `message delete not permitted` (MSG.DELETE on a `deny_delete` stream), as
/// 2.9.10 builds it: [`stream_msg_delete_failed`] with that text (10057).
pub fn message_delete_not_permitted() -> ApiError {
    stream_msg_delete_failed("message delete not permitted")
}

/// `stream purge not permitted` (PURGE on a `deny_purge` stream), as 2.9.10
/// builds it: [`stream_purge_failed`] with that text (10110).
pub fn stream_purge_not_permitted() -> ApiError {
    stream_purge_failed("stream purge not permitted")
}

/// `rollup not permitted` (a `Nats-Rollup` header without
/// `allow_rollup_hdrs`, or with `deny_purge`): [`stream_rollup_failed`] (10111).
pub fn rollup_not_permitted() -> ApiError {
    stream_rollup_failed("rollup not permitted")
}

/// Stream mirrors and sources are not implemented by Natrium yet. Reported as
/// an invalid configuration (10052, 500), which clients surface verbatim.
pub fn mirrors_and_sources_not_supported() -> ApiError {
    stream_invalid_config("stream mirrors and sources are not supported yet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_like_nats_server() {
        let e = stream_not_found();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":404,"err_code":10059,"description":"stream not found"}"#
        );
        let bare = ApiError::new(503, 0, "");
        assert_eq!(serde_json::to_string(&bare).unwrap(), r#"{"code":503}"#);
        let back: ApiError = serde_json::from_str(r#"{"code":503}"#).unwrap();
        assert_eq!(back, bare);
        assert_eq!(e.to_string(), "stream not found (10059)");
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            stream_wrong_last_sequence(42).description,
            "wrong last sequence: 42"
        );
        assert_eq!(
            stream_wrong_last_msg_id("abc").description,
            "wrong last msg ID: abc"
        );
        assert_eq!(sequence_not_found(7).description, "sequence 7 not found");
        let e = stream_invalid_config("max age needs to be >= 100ms");
        assert_eq!((e.code, e.err_code), (500, 10052));
        assert_eq!(e.description, "max age needs to be >= 100ms");
        assert_eq!(
            invalid_json("expected value").description,
            "invalid JSON: expected value"
        );
        assert_eq!(
            message_delete_not_permitted(),
            ApiError::new(500, 10057, "message delete not permitted")
        );
        assert_eq!(
            stream_purge_not_permitted(),
            ApiError::new(500, 10110, "stream purge not permitted")
        );
        assert_eq!(
            rollup_not_permitted(),
            ApiError::new(500, 10111, "rollup not permitted")
        );
    }

    /// Every constructor's code, err_code and description template is the one in
    /// nats-server's error table.
    #[test]
    fn templates_match_error_table() {
        #[derive(Deserialize)]
        struct Entry {
            constant: String,
            code: u16,
            error_code: u16,
            description: String,
        }
        let table: Vec<Entry> =
            serde_json::from_str(include_str!("../../tests/data/jetstream-errors.json")).unwrap();
        let mut seen = std::collections::HashSet::new();
        for t in TEMPLATES {
            assert!(seen.insert(t.function), "duplicate {}", t.function);
            let e = table
                .iter()
                .find(|e| e.constant == t.constant)
                .unwrap_or_else(|| panic!("{} not in the error table", t.constant));
            assert_eq!(
                (e.code, e.error_code, e.description.as_str()),
                (t.code, t.err_code, t.description),
                "{} ({})",
                t.function,
                t.constant
            );
        }
        assert!(TEMPLATES.len() >= 45);
    }
}

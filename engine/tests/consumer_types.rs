//! Consumer configuration (rows CC1–CC31, PE4–PE6), pull request bodies
//! (PL1, PL7) and the consumer API responses: 2.9.10's defaults, every
//! validation error checked against nats-server's error table
//! (`tests/data/jetstream-errors.json`), update and work-queue rules, and JSON
//! Schema validation against the jsm.go consumer schemas.

use std::collections::BTreeMap;

use natrium_engine::jetstream::consumer::*;
use natrium_engine::jetstream::errors::{self, ApiError};
use natrium_engine::jetstream::time::Timestamp;
use natrium_engine::jetstream::types::{
    ApiPaged, RetentionPolicy, ServerLimits, StreamConfig, API_LIST_LIMIT, API_NAMES_LIMIT,
};
use serde::Serialize;
use serde_json::{json, Value};

#[path = "support/schema.rs"]
mod schema;
use schema::{assert_valid, schema};

const SEC: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

fn stream(retention: RetentionPolicy) -> StreamConfig {
    let mut s = StreamConfig::named("ORDERS");
    s.subjects = vec!["orders.>".into(), "audit".into()];
    s.retention = retention;
    s.normalize(&ServerLimits::default()).unwrap();
    s
}

fn limits_stream() -> StreamConfig {
    stream(RetentionPolicy::Limits)
}

fn pull(durable: &str) -> ConsumerConfig {
    ConsumerConfig {
        durable: durable.into(),
        ack_policy: AckPolicy::Explicit,
        ..ConsumerConfig::default()
    }
}

fn push(deliver: &str) -> ConsumerConfig {
    ConsumerConfig {
        deliver_subject: deliver.into(),
        ..ConsumerConfig::default()
    }
}

fn normalized(cfg: ConsumerConfig) -> Result<ConsumerConfig, ApiError> {
    normalized_with(cfg, &limits_stream(), &ConsumerLimits::default())
}

fn normalized_with(
    mut cfg: ConsumerConfig,
    stream: &StreamConfig,
    limits: &ConsumerLimits,
) -> Result<ConsumerConfig, ApiError> {
    cfg.normalize(stream, limits).map(|()| cfg)
}

/// nats-server's error table entry for `constant`: (code, err_code, description).
fn table(constant: &str) -> (u16, u16, String) {
    let text = include_str!("data/jetstream-errors.json");
    let entries: Vec<Value> = serde_json::from_str(text).unwrap();
    let e = entries
        .iter()
        .find(|e| e["constant"] == constant)
        .unwrap_or_else(|| panic!("{constant} not in the error table"));
    (
        e["code"].as_u64().unwrap() as u16,
        e["error_code"].as_u64().unwrap() as u16,
        e["description"].as_str().unwrap().to_owned(),
    )
}

/// `err` has the code and err_code of `constant` in the error table.
fn assert_is(err: &ApiError, constant: &str) {
    let (code, err_code, _) = table(constant);
    assert_eq!(
        (err.code, err.err_code),
        (code, err_code),
        "{constant}: got {err:?}"
    );
}

/// `cfg` fails normalization with `constant`, and (for fixed texts) with the
/// table's description.
fn assert_rejected(cfg: ConsumerConfig, stream: &StreamConfig, constant: &str) -> ApiError {
    let err = normalized_with(cfg, stream, &ConsumerLimits::default())
        .expect_err(&format!("expected {constant}"));
    assert_is(&err, constant);
    let (_, _, desc) = table(constant);
    if !desc.contains('{') && constant != "JSConsumerPullRequiresAckErr" {
        assert_eq!(err.description, desc, "{constant}");
    }
    err
}

// ---------------------------------------------------------------------------
// Defaults (CC6, CC7, CC8, CC14, CC15, CC22)

#[test]
fn cc6_cc14_cc15_pull_explicit_defaults() {
    let cfg = normalized(pull("D")).unwrap();
    assert_eq!(cfg.ack_wait, 30 * SEC);
    assert_eq!(cfg.max_deliver, -1);
    assert_eq!(cfg.max_waiting, 512);
    assert_eq!(cfg.max_ack_pending, 1000);
    assert_eq!(cfg.deliver_policy, DeliverPolicy::All);
    assert_eq!(cfg.replay_policy, ReplayPolicy::Instant);
    // CC22: durables are only deleted when inactive_threshold is set.
    assert_eq!(cfg.inactive_threshold, 0);
    assert_eq!(cfg.num_replicas, 0);
}

#[test]
fn cc6_cc15_ack_all_gets_defaults_too() {
    let cfg = normalized(ConsumerConfig {
        ack_policy: AckPolicy::All,
        ..pull("D")
    })
    .unwrap();
    assert_eq!((cfg.ack_wait, cfg.max_ack_pending), (30 * SEC, 1000));
}

#[test]
fn cc14_push_ack_none_defaults() {
    let cfg = normalized(push("deliver.here")).unwrap();
    assert_eq!(cfg.ack_wait, 0);
    assert_eq!(cfg.max_ack_pending, 0);
    assert_eq!(cfg.max_waiting, 0);
    assert_eq!(cfg.max_deliver, -1);
    // CC22: ephemerals default to 5s.
    assert_eq!(cfg.inactive_threshold, 5 * SEC);
}

#[test]
fn cc22_named_ephemeral_gets_inactive_threshold_but_set_value_is_kept() {
    let cfg = normalized(ConsumerConfig {
        durable: String::new(),
        name: "eph".into(),
        ..pull("")
    })
    .unwrap();
    assert_eq!(cfg.inactive_threshold, 5 * SEC);
    let cfg = normalized(ConsumerConfig {
        inactive_threshold: 60 * SEC,
        ..pull("")
    })
    .unwrap();
    assert_eq!(cfg.inactive_threshold, 60 * SEC);
}

#[test]
fn cc7_only_zero_max_deliver_becomes_unlimited() {
    assert_eq!(normalized(pull("D")).unwrap().max_deliver, -1);
    let cfg = normalized(ConsumerConfig {
        max_deliver: -5,
        ..pull("D")
    })
    .unwrap();
    assert_eq!(cfg.max_deliver, -5, "2.9.10 keeps other negative values");
    let cfg = normalized(ConsumerConfig {
        max_deliver: 3,
        ..pull("D")
    })
    .unwrap();
    assert_eq!(cfg.max_deliver, 3);
}

#[test]
fn cc8_backoff_overrides_ack_wait() {
    let cfg = normalized(ConsumerConfig {
        ack_wait: 10 * SEC,
        backoff: vec![SEC, 2 * SEC],
        max_deliver: 3,
        ..pull("D")
    })
    .unwrap();
    assert_eq!(cfg.ack_wait, SEC);
}

#[test]
fn cc15_max_ack_pending_default_capped_by_limits() {
    let s = limits_stream();
    let lim = ConsumerLimits {
        server_max_ack_pending: 500,
        account_max_ack_pending: 200,
        server_max_request_batch: 0,
    };
    let cfg = normalized_with(pull("D"), &s, &lim).unwrap();
    assert_eq!(cfg.max_ack_pending, 200);
    let lim = ConsumerLimits {
        server_max_ack_pending: 300,
        ..ConsumerLimits::default()
    };
    assert_eq!(
        normalized_with(pull("D"), &s, &lim)
            .unwrap()
            .max_ack_pending,
        300
    );
    // An explicit value is kept (and checked, see 10121).
    let cfg = normalized(ConsumerConfig {
        max_ack_pending: -1,
        ..pull("D")
    })
    .unwrap();
    assert_eq!(cfg.max_ack_pending, -1);
}

#[test]
fn cc18_server_max_request_batch_is_the_pull_default() {
    let lim = ConsumerLimits {
        server_max_request_batch: 100,
        ..ConsumerLimits::default()
    };
    let s = limits_stream();
    assert_eq!(normalized_with(pull("D"), &s, &lim).unwrap().max_batch, 100);
    assert_eq!(
        normalized_with(push("d.x"), &s, &lim).unwrap().max_batch,
        0,
        "push consumers get no max_batch"
    );
    let err = normalized_with(
        ConsumerConfig {
            max_batch: 101,
            ..pull("D")
        },
        &s,
        &lim,
    )
    .unwrap_err();
    assert_is(&err, "JSConsumerMaxRequestBatchExceededF");
    assert_eq!(
        err.description,
        "consumer max request batch exceeds server limit of 100"
    );
}

#[test]
fn normalize_is_idempotent() {
    for cfg in [pull("D"), push("d.x"), ConsumerConfig::default()] {
        let once = normalized(cfg).unwrap();
        let twice = normalized(once.clone()).unwrap();
        assert_eq!(once, twice);
    }
}

// ---------------------------------------------------------------------------
// Validation errors, one minimal bad config each

#[test]
fn validation_errors_match_the_error_table() {
    let lim = limits_stream();
    let wq = stream(RetentionPolicy::WorkQueue);
    let cases: Vec<(&str, ConsumerConfig, &StreamConfig, &str)> = vec![
        (
            "CC23 replicas over the stream's",
            ConsumerConfig {
                num_replicas: 3,
                ..pull("D")
            },
            &lim,
            "JSConsumerReplicasExceedsStream",
        ),
        (
            "CC23 negative replicas",
            ConsumerConfig {
                num_replicas: -1,
                ..pull("D")
            },
            &lim,
            "JSReplicasCountCannotBeNegative",
        ),
        (
            "CC8 negative backoff",
            ConsumerConfig {
                backoff: vec![SEC, -1],
                max_deliver: 5,
                ..pull("D")
            },
            &lim,
            "JSConsumerBackOffNegativeErr",
        ),
        (
            "CC6 negative ack_wait",
            ConsumerConfig {
                ack_wait: -1,
                ..pull("D")
            },
            &lim,
            "JSConsumerAckWaitNegativeErr",
        ),
        (
            "CC7 backoff without max_deliver",
            ConsumerConfig {
                backoff: vec![SEC],
                ..pull("D")
            },
            &lim,
            "JSConsumerMaxDeliverBackoffErr",
        ),
        (
            "CC7 max_deliver equal to the backoff count",
            ConsumerConfig {
                backoff: vec![SEC, SEC],
                max_deliver: 2,
                ..pull("D")
            },
            &lim,
            "JSConsumerMaxDeliverBackoffErr",
        ),
        (
            "CC19 wildcard deliver subject",
            push("deliver.*"),
            &lim,
            "JSConsumerDeliverToWildcardsErr",
        ),
        (
            "CC19 invalid deliver subject",
            push("deliver..x"),
            &lim,
            "JSConsumerInvalidDeliverSubject",
        ),
        (
            "CC19 deliver subject inside the stream",
            push("orders.new"),
            &lim,
            "JSConsumerDeliverCycleErr",
        ),
        (
            "CC14 max_waiting on push",
            ConsumerConfig {
                max_waiting: 10,
                ..push("d.x")
            },
            &lim,
            "JSConsumerPushMaxWaitingErr",
        ),
        (
            "CC15 max_ack_pending on push without acks",
            ConsumerConfig {
                max_ack_pending: 10,
                ..push("d.x")
            },
            &lim,
            "JSConsumerMaxPendingAckPolicyRequiredErr",
        ),
        (
            "CC21 heartbeat below 100ms",
            ConsumerConfig {
                idle_heartbeat: 99 * MS,
                ..push("d.x")
            },
            &lim,
            "JSConsumerSmallHeartbeatErr",
        ),
        (
            "CC5 pull without acks on a work queue",
            ConsumerConfig {
                ack_policy: AckPolicy::None,
                ..pull("D")
            },
            &wq,
            "JSConsumerPullRequiresAckErr",
        ),
        (
            "CC12 rate limit on pull",
            ConsumerConfig {
                rate_limit_bps: 1024,
                ..pull("D")
            },
            &lim,
            "JSConsumerPullWithRateLimitErr",
        ),
        (
            "CC14 negative max_waiting",
            ConsumerConfig {
                max_waiting: -1,
                ..pull("D")
            },
            &lim,
            "JSConsumerMaxWaitingNegativeErr",
        ),
        (
            "CC21 heartbeat on pull",
            ConsumerConfig {
                idle_heartbeat: SEC,
                ..pull("D")
            },
            &lim,
            "JSConsumerHBRequiresPushErr",
        ),
        (
            "CC16 flow control on pull",
            ConsumerConfig {
                flow_control: true,
                ..pull("D")
            },
            &lim,
            "JSConsumerFCRequiresPushErr",
        ),
        (
            "CC18 negative max_batch",
            ConsumerConfig {
                max_batch: -1,
                ..pull("D")
            },
            &lim,
            "JSConsumerMaxRequestBatchNegativeErr",
        ),
        (
            "CC18 max_expires below 1ms",
            ConsumerConfig {
                max_expires: MS - 1,
                ..pull("D")
            },
            &lim,
            "JSConsumerMaxRequestExpiresTooSmall",
        ),
        (
            "CC25 direct pull",
            ConsumerConfig {
                direct: true,
                ..pull("")
            },
            &lim,
            "JSConsumerDirectRequiresPushErr",
        ),
        (
            "CC25 direct durable",
            ConsumerConfig {
                direct: true,
                durable: "D".into(),
                ..push("d.x")
            },
            &lim,
            "JSConsumerDirectRequiresEphemeralErr",
        ),
        (
            "CC9 both filter fields",
            ConsumerConfig {
                filter_subject: "orders.a".into(),
                filter_subjects: vec!["orders.b".into()],
                ..pull("D")
            },
            &lim,
            "JSConsumerDuplicateFilterSubjects",
        ),
        (
            "CC9 filter outside the stream (2.9.10)",
            ConsumerConfig {
                filter_subject: "payments.>".into(),
                ..pull("D")
            },
            &lim,
            "JSConsumerFilterNotSubsetErr",
        ),
        (
            "CC9 invalid filter",
            ConsumerConfig {
                filter_subject: "orders..x".into(),
                ..pull("D")
            },
            &lim,
            "JSConsumerFilterNotSubsetErr",
        ),
        (
            "CC10 empty entry in filter_subjects",
            ConsumerConfig {
                filter_subjects: vec!["orders.a".into(), String::new()],
                ..pull("D")
            },
            &lim,
            "JSConsumerEmptyFilter",
        ),
        (
            "CC10 overlapping filter_subjects",
            ConsumerConfig {
                filter_subjects: vec!["orders.*".into(), "orders.a".into()],
                ..pull("D")
            },
            &lim,
            "JSConsumerOverlappingSubjectFilters",
        ),
        (
            "CC10 filter_subjects entry outside the stream",
            ConsumerConfig {
                filter_subjects: vec!["orders.a".into(), "elsewhere".into()],
                ..pull("D")
            },
            &lim,
            "JSConsumerFilterNotSubsetErr",
        ),
        (
            "PE4 opt_start_seq with deliver all",
            ConsumerConfig {
                opt_start_seq: 5,
                ..pull("D")
            },
            &lim,
            "JSConsumerInvalidPolicyErrF",
        ),
        (
            "CC13 bad sample_freq",
            ConsumerConfig {
                sample_freq: "often".into(),
                ..pull("D")
            },
            &lim,
            "JSConsumerInvalidSamplingErrF",
        ),
        (
            "CC16 flow control without heartbeat",
            ConsumerConfig {
                flow_control: true,
                ..push("d.x")
            },
            &lim,
            "JSConsumerWithFlowControlNeedsHeartbeats",
        ),
        (
            "CC1 durable and name differ",
            ConsumerConfig {
                name: "other".into(),
                ..pull("D")
            },
            &lim,
            "JSConsumerCreateDurableAndNameMismatch",
        ),
        (
            "CC26 metadata over 128KB",
            ConsumerConfig {
                metadata: BTreeMap::from([("k".to_string(), "v".repeat(128 * 1024))]),
                ..pull("D")
            },
            &lim,
            "JSConsumerMetadataLengthErrF",
        ),
    ];
    for (what, cfg, stream, constant) in cases {
        let err = normalized_with(cfg, stream, &ConsumerLimits::default())
            .expect_err(&format!("{what}: expected {constant}"));
        let (code, err_code, desc) = table(constant);
        assert_eq!(
            (err.code, err.err_code),
            (code, err_code),
            "{what}: {err:?}"
        );
        if !desc.contains('{') && constant != "JSConsumerPullRequiresAckErr" {
            assert_eq!(err.description, desc, "{what}");
        }
    }
}

#[test]
fn cc3_description_too_long() {
    let err = assert_rejected(
        ConsumerConfig {
            description: "x".repeat(4097),
            ..pull("D")
        },
        &limits_stream(),
        "JSConsumerDescriptionTooLongErrF",
    );
    assert_eq!(
        err.description,
        "consumer description is too long, maximum allowed is 4096"
    );
    assert!(normalized(ConsumerConfig {
        description: "x".repeat(4096),
        ..pull("D")
    })
    .is_ok());
}

#[test]
fn cc5_pull_requires_ack_has_the_2_9_10_text() {
    let err = assert_rejected(
        ConsumerConfig {
            ack_policy: AckPolicy::None,
            ..pull("D")
        },
        &stream(RetentionPolicy::WorkQueue),
        "JSConsumerPullRequiresAckErr",
    );
    assert_eq!(err.description, "consumer in pull mode requires ack policy");
    // On a limits stream a pull consumer without acks is fine.
    assert!(normalized(ConsumerConfig {
        ack_policy: AckPolicy::None,
        ..pull("D")
    })
    .is_ok());
}

#[test]
fn cc15_max_ack_pending_over_limits_10121() {
    let s = limits_stream();
    let lim = ConsumerLimits {
        server_max_ack_pending: 2000,
        account_max_ack_pending: 100,
        server_max_request_batch: 0,
    };
    let cfg = ConsumerConfig {
        max_ack_pending: 3000,
        ..pull("D")
    };
    let err = normalized_with(cfg.clone(), &s, &lim).unwrap_err();
    assert_is(&err, "JSConsumerMaxPendingAckExcessErrF");
    assert_eq!(
        err.description,
        "consumer max ack pending exceeds system limit of 2000"
    );
    let cfg = ConsumerConfig {
        max_ack_pending: 1500,
        ..cfg
    };
    let err = normalized_with(cfg, &s, &lim).unwrap_err();
    assert_eq!(
        err.description,
        "consumer max ack pending exceeds system limit of 100"
    );
}

#[test]
fn cc26_metadata_limit_text_and_boundary() {
    let err = normalized(ConsumerConfig {
        metadata: BTreeMap::from([("k".to_string(), "v".repeat(128 * 1024))]),
        ..pull("D")
    })
    .unwrap_err();
    assert_eq!(
        err.description,
        "consumer metadata exceeds maximum size of 128KB"
    );
    assert!(normalized(ConsumerConfig {
        metadata: BTreeMap::from([("k".to_string(), "v".repeat(128 * 1024 - 1))]),
        ..pull("D")
    })
    .is_ok());
}

#[test]
fn pe4_deliver_policy_texts() {
    let t = Some(Timestamp::from_unix_nanos(1_700_000_000 * SEC));
    let cases = [
        (
            DeliverPolicy::All,
            5,
            None,
            "consumer delivery policy is deliver all, but optional start sequence is also set",
        ),
        (
            DeliverPolicy::Last,
            0,
            t,
            "consumer delivery policy is deliver last, but optional start time is also set",
        ),
        (
            DeliverPolicy::New,
            1,
            None,
            "consumer delivery policy is deliver new, but optional start sequence is also set",
        ),
        (
            DeliverPolicy::LastPerSubject,
            0,
            None,
            "consumer delivery policy is deliver last per subject, but optional filter subject is not set",
        ),
        (
            DeliverPolicy::ByStartSequence,
            0,
            None,
            "consumer delivery policy is deliver by start sequence, but optional start sequence is not set",
        ),
        (
            DeliverPolicy::ByStartSequence,
            3,
            t,
            "consumer delivery policy is deliver by start sequence, but optional start time is also set",
        ),
        (
            DeliverPolicy::ByStartTime,
            0,
            None,
            "consumer delivery policy is deliver by start time, but optional start time is not set",
        ),
        (
            DeliverPolicy::ByStartTime,
            3,
            t,
            "consumer delivery policy is deliver by start time, but optional start start sequence is also set",
        ),
    ];
    for (dp, seq, time, want) in cases {
        let err = normalized(ConsumerConfig {
            deliver_policy: dp,
            opt_start_seq: seq,
            opt_start_time: time,
            ..pull("D")
        })
        .unwrap_err();
        assert_is(&err, "JSConsumerInvalidPolicyErrF");
        assert_eq!(err.description, want);
    }
    // And the valid combinations.
    for cfg in [
        ConsumerConfig {
            deliver_policy: DeliverPolicy::ByStartSequence,
            opt_start_seq: 3,
            ..pull("D")
        },
        ConsumerConfig {
            deliver_policy: DeliverPolicy::ByStartTime,
            opt_start_time: t,
            ..pull("D")
        },
        ConsumerConfig {
            deliver_policy: DeliverPolicy::LastPerSubject,
            filter_subject: "orders.*".into(),
            ..pull("D")
        },
        ConsumerConfig {
            deliver_policy: DeliverPolicy::LastPerSubject,
            filter_subjects: vec!["orders.a".into(), "orders.b".into()],
            ..pull("D")
        },
    ] {
        normalized(cfg.clone()).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
    }
}

#[test]
fn cc13_sample_freq() {
    for ok in ["50", "50%", "0", "+7"] {
        assert!(
            normalized(ConsumerConfig {
                sample_freq: ok.into(),
                ..pull("D")
            })
            .is_ok(),
            "{ok}"
        );
    }
    let desc = |s: &str| {
        normalized(ConsumerConfig {
            sample_freq: s.into(),
            ..pull("D")
        })
        .unwrap_err()
        .description
    };
    assert_eq!(
        desc("often"),
        "failed to parse consumer sampling configuration: strconv.Atoi: parsing \"often\": invalid syntax"
    );
    assert_eq!(
        desc("-5%"),
        "failed to parse consumer sampling configuration: <nil>"
    );
    assert_eq!(
        desc("99999999999999999999"),
        "failed to parse consumer sampling configuration: strconv.Atoi: parsing \"99999999999999999999\": value out of range"
    );
}

#[test]
fn cc9_filter_subset_rules_of_2_9_10() {
    // Inside the stream's subjects, or a wildcard wider than one of them.
    for f in ["orders.new", "orders.*", "orders.>", "audit", ">", "*"] {
        assert!(
            normalized(ConsumerConfig {
                filter_subject: f.into(),
                ..pull("D")
            })
            .is_ok(),
            "{f}"
        );
    }
    for f in ["orders", "audit.x", "other.>"] {
        let err = normalized(ConsumerConfig {
            filter_subject: f.into(),
            ..pull("D")
        })
        .unwrap_err();
        assert_is(&err, "JSConsumerFilterNotSubsetErr");
    }
}

#[test]
fn cc19_push_deliver_subject_ok_and_heartbeat_boundary() {
    let cfg = normalized(ConsumerConfig {
        idle_heartbeat: 100 * MS,
        flow_control: true,
        ..push("deliver.x")
    })
    .unwrap();
    assert!(cfg.flow_control);
    // A delivery subject that merely contains `*` in a token is literal.
    assert!(normalized(push("deliver.a*b")).is_ok());
    // The cycle check is a subset check: `orders` is not inside `orders.>`.
    assert!(normalized(push("orders")).is_ok());
    assert!(normalized(push("audit")).is_err());
}

#[test]
fn cc1_cc2_names() {
    assert!(normalized(ConsumerConfig {
        name: "D".into(),
        ..pull("D")
    })
    .is_ok());
    let err = pull(&"n".repeat(256)).check_name().unwrap_err();
    assert_is(&err, "JSConsumerNameTooLongErrF");
    assert_eq!(
        err.description,
        "consumer name is too long, maximum allowed is 255"
    );
    assert!(pull(&"n".repeat(255)).check_name().is_ok());
    for bad in ["a.b", "a*", "a>", "a b", "a\tb"] {
        assert_is(
            &pull(bad).check_name().unwrap_err(),
            "JSConsumerBadDurableNameErr",
        );
        let eph = ConsumerConfig {
            name: bad.into(),
            ..pull("")
        };
        assert_is(
            &eph.check_name().unwrap_err(),
            "JSConsumerBadDurableNameErr",
        );
    }
    // An unnamed ephemeral passes; it gets a generated name.
    assert!(pull("").check_name().is_ok());
}

#[test]
fn cc2_generated_names() {
    let a = generate_consumer_name(1);
    assert_eq!(a.len(), 8);
    assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
    assert_eq!(a, generate_consumer_name(1), "deterministic");
    let names: std::collections::BTreeSet<String> =
        (0..1000u64).map(generate_consumer_name).collect();
    assert_eq!(names.len(), 1000);
    let cfg = ConsumerConfig {
        name: generate_consumer_name(u64::MAX),
        ..pull("")
    };
    assert!(cfg.check_name().is_ok());
}

// ---------------------------------------------------------------------------
// Update rules (CC30)

fn update(old: ConsumerConfig, new: ConsumerConfig) -> Result<(), ApiError> {
    let old = normalized(old).unwrap();
    let new = normalized(new).unwrap();
    check_update(&old, &new)
}

#[test]
fn cc30_mutable_fields() {
    let base = pull("D");
    assert!(update(base.clone(), base.clone()).is_ok());
    let changes = [
        ConsumerConfig {
            description: "new".into(),
            ..base.clone()
        },
        ConsumerConfig {
            ack_wait: 5 * SEC,
            ..base.clone()
        },
        ConsumerConfig {
            max_deliver: 10,
            backoff: vec![SEC, 2 * SEC],
            ..base.clone()
        },
        ConsumerConfig {
            filter_subject: "orders.a".into(),
            ..base.clone()
        },
        ConsumerConfig {
            max_ack_pending: 20,
            ..base.clone()
        },
        ConsumerConfig {
            headers_only: true,
            ..base.clone()
        },
        ConsumerConfig {
            max_batch: 10,
            max_expires: SEC,
            max_bytes: 1024,
            ..base.clone()
        },
        ConsumerConfig {
            inactive_threshold: 60 * SEC,
            ..base.clone()
        },
        ConsumerConfig {
            metadata: BTreeMap::from([("a".to_string(), "b".to_string())]),
            ..base.clone()
        },
    ];
    for new in changes {
        update(base.clone(), new.clone()).unwrap_or_else(|e| panic!("{new:?}: {e}"));
    }
    // Push: another deliver subject, while nobody listens on the old one.
    assert!(update(push("d.one"), push("d.two")).is_ok());
}

#[test]
fn cc30_immutable_fields() {
    let base = pull("D");
    let t = Some(Timestamp::from_unix_nanos(1_700_000_000 * SEC));
    let cases = [
        (
            ConsumerConfig {
                deliver_policy: DeliverPolicy::New,
                ..base.clone()
            },
            "deliver policy can not be updated",
        ),
        (
            ConsumerConfig {
                ack_policy: AckPolicy::All,
                ..base.clone()
            },
            "ack policy can not be updated",
        ),
        (
            ConsumerConfig {
                replay_policy: ReplayPolicy::Original,
                ..base.clone()
            },
            "replay policy can not be updated",
        ),
        (
            ConsumerConfig {
                max_waiting: 10,
                ..base.clone()
            },
            "max waiting can not be updated",
        ),
        // Pull to push: a pull consumer's max_waiting (512 by default) cannot
        // be kept by a push one (10080), so 2.9.10 says this first.
        (
            ConsumerConfig {
                ack_policy: AckPolicy::Explicit,
                ..push("d.x")
            },
            "max waiting can not be updated",
        ),
    ];
    for (new, want) in cases {
        let err = update(base.clone(), new).unwrap_err();
        assert_is(&err, "JSConsumerCreateErrF");
        assert_eq!(err.description, want);
    }
    let by_seq = |seq| ConsumerConfig {
        deliver_policy: DeliverPolicy::ByStartSequence,
        opt_start_seq: seq,
        ..base.clone()
    };
    assert_eq!(
        update(by_seq(1), by_seq(2)).unwrap_err().description,
        "start sequence can not be updated"
    );
    let hb = |ms| ConsumerConfig {
        idle_heartbeat: ms * MS,
        flow_control: true,
        ..push("d.x")
    };
    assert_eq!(
        update(hb(200), hb(300)).unwrap_err().description,
        "heart beats can not be updated"
    );
    let fc = ConsumerConfig {
        idle_heartbeat: SEC,
        ..push("d.x")
    };
    assert_eq!(
        update(
            fc.clone(),
            ConsumerConfig {
                flow_control: true,
                ..fc
            }
        )
        .unwrap_err()
        .description,
        "flow control can not be updated"
    );
    // The mode texts proper, on configs that agree on max_waiting.
    let (p, q) = (push("d.x"), ConsumerConfig::default());
    assert_eq!(
        check_update(&p, &q).unwrap_err().description,
        "can not update push consumer to pull based"
    );
    assert_eq!(
        check_update(&q, &p).unwrap_err().description,
        "can not update pull consumer to push based"
    );
    // 2.9.10 compares opt_start_time pointers: any other change fails.
    let by_time = ConsumerConfig {
        deliver_policy: DeliverPolicy::ByStartTime,
        opt_start_time: t,
        ..base.clone()
    };
    assert!(update(by_time.clone(), by_time.clone()).is_ok());
    assert_eq!(
        update(
            by_time.clone(),
            ConsumerConfig {
                description: "x".into(),
                ..by_time
            }
        )
        .unwrap_err()
        .description,
        "start time can not be updated"
    );
}

#[test]
fn cc30_bound_deliver_subject_and_backoff() {
    let old = normalized(push("d.one")).unwrap();
    let new = normalized(push("d.two")).unwrap();
    assert_is(
        &check_update_bound(&old, &new, true).unwrap_err(),
        "JSConsumerNameExistErr",
    );
    assert!(check_update_bound(&old, &old, true).is_ok());
    // The backoff rule again, on a config that skipped normalize.
    let old = normalized(pull("D")).unwrap();
    let new = ConsumerConfig {
        backoff: vec![SEC],
        ..old.clone()
    };
    assert_is(
        &check_update(&old, &new).unwrap_err(),
        "JSConsumerMaxDeliverBackoffErr",
    );
}

// ---------------------------------------------------------------------------
// Work-queue rules (CC31, PE1)

#[test]
fn cc31_work_queue_rules() {
    let wq = stream(RetentionPolicy::WorkQueue);
    let filtered = |f: &str| ConsumerConfig {
        filter_subject: f.into(),
        ..pull("")
    };
    let none: [&ConsumerConfig; 0] = [];
    assert!(check_work_queue(&wq, &pull("A"), none).is_ok());

    let err = check_work_queue(
        &wq,
        &ConsumerConfig {
            ack_policy: AckPolicy::All,
            ..pull("A")
        },
        none,
    )
    .unwrap_err();
    assert_is(&err, "JSConsumerWQRequiresExplicitAckErr");

    let unfiltered = pull("A");
    assert_is(
        &check_work_queue(&wq, &pull("B"), [&unfiltered]).unwrap_err(),
        "JSConsumerWQMultipleUnfilteredErr",
    );
    assert_is(
        &check_work_queue(&wq, &filtered("orders.a"), [&unfiltered]).unwrap_err(),
        "JSConsumerWQConsumerNotUniqueErr",
    );
    let a = filtered("orders.a");
    let wide = filtered("orders.>");
    assert!(check_work_queue(&wq, &filtered("orders.b"), [&a]).is_ok());
    assert_is(
        &check_work_queue(&wq, &filtered("orders.a"), [&a]).unwrap_err(),
        "JSConsumerWQConsumerNotUniqueErr",
    );
    assert_is(
        &check_work_queue(&wq, &filtered("orders.*.x"), [&wide]).unwrap_err(),
        "JSConsumerWQConsumerNotUniqueErr",
    );
    assert_is(
        &check_work_queue(&wq, &wide, [&a]).unwrap_err(),
        "JSConsumerWQConsumerNotUniqueErr",
    );
    // 2.9.10 compares by subset: these two overlap but are allowed.
    let star_first = filtered("*.x");
    assert!(check_work_queue(&wq, &filtered("orders.*"), [&star_first]).is_ok());
    // 2.10 filter_subjects take part.
    let multi = ConsumerConfig {
        filter_subjects: vec!["orders.b".into(), "orders.a".into()],
        ..pull("")
    };
    assert_is(
        &check_work_queue(&wq, &multi, [&a]).unwrap_err(),
        "JSConsumerWQConsumerNotUniqueErr",
    );

    let err = check_work_queue(
        &wq,
        &ConsumerConfig {
            deliver_policy: DeliverPolicy::New,
            ..pull("A")
        },
        none,
    )
    .unwrap_err();
    assert_is(&err, "JSConsumerWQConsumerNotDeliverAllErr");

    // Direct consumers and other retention policies are exempt.
    let direct = ConsumerConfig {
        direct: true,
        ack_policy: AckPolicy::None,
        ..push("d.x")
    };
    assert!(check_work_queue(&wq, &direct, [&unfiltered]).is_ok());
    assert!(check_work_queue(&limits_stream(), &pull("B"), [&unfiltered]).is_ok());
}

// ---------------------------------------------------------------------------
// Pull requests (PL1, PL7)

#[test]
fn pl1_pull_body_forms() {
    assert_eq!(PullRequest::parse(b"").unwrap(), PullRequest::batch(1));
    assert_eq!(PullRequest::parse(b" \r\n").unwrap(), PullRequest::batch(1));
    assert_eq!(PullRequest::parse(b"10").unwrap(), PullRequest::batch(10));
    assert_eq!(PullRequest::parse(b" 7 ").unwrap(), PullRequest::batch(7));
    assert_eq!(
        PullRequest::parse(b"lots").unwrap(),
        PullRequest::batch(1),
        "not a number: batch 1"
    );
    let req = PullRequest::parse(
        br#"{"batch":5,"expires":5000000000,"no_wait":true,"max_bytes":1024,"idle_heartbeat":1000000000,"group":"x"}"#,
    )
    .unwrap();
    assert_eq!(
        req,
        PullRequest {
            batch: 5,
            expires: 5 * SEC,
            no_wait: true,
            max_bytes: 1024,
            idle_heartbeat: SEC,
        }
    );
    // JSON with nothing set is a batch of 0, as in 2.9.10.
    assert_eq!(PullRequest::parse(b"{}").unwrap().batch, 0);
    assert_eq!(
        PullRequest::parse(br#"{"batch":null,"expires":null}"#).unwrap(),
        PullRequest::default()
    );
}

#[test]
fn pl1_pull_body_errors() {
    let err = PullRequest::parse(br#"{"batch":"x"}"#).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(err.description.starts_with("Bad Request - "), "{err:?}");
    let err = PullRequest::parse(br#"{"batch":1"#).unwrap_err();
    assert_eq!(err.code, 400);

    // Heartbeat more than half of expires.
    let err =
        PullRequest::parse(br#"{"expires":1000000000,"idle_heartbeat":600000000}"#).unwrap_err();
    assert_eq!(
        err,
        PullStatus {
            code: 400,
            description: "Bad Request - heartbeat value too large".into()
        }
    );
    assert_eq!(
        err.to_header(),
        b"NATS/1.0 400 Bad Request - heartbeat value too large\r\n\r\n".to_vec()
    );
    // A heartbeat without expires is too large as well.
    assert!(PullRequest::parse(br#"{"idle_heartbeat":1000000000}"#).is_err());
    assert!(PullRequest::parse(br#"{"expires":1000000000,"idle_heartbeat":500000000}"#).is_ok());
}

#[test]
fn pl7_request_caps() {
    let cfg = normalized(ConsumerConfig {
        max_batch: 10,
        max_expires: 2 * SEC,
        max_bytes: 1000,
        ..pull("D")
    })
    .unwrap();
    assert!(PullRequest::batch(10).check_limits(&cfg).is_ok());
    let desc = |r: PullRequest| r.check_limits(&cfg).unwrap_err();
    let e = desc(PullRequest::batch(11));
    assert_eq!(
        (e.code, e.description.as_str()),
        (409, "Exceeded MaxRequestBatch of 10")
    );
    let e = desc(PullRequest {
        expires: 3 * SEC,
        ..PullRequest::batch(1)
    });
    assert_eq!(e.description, "Exceeded MaxRequestExpires of 2s");
    let e = desc(PullRequest {
        max_bytes: 1001,
        ..PullRequest::batch(1)
    });
    assert_eq!(e.description, "Exceeded MaxRequestMaxBytes of 1000");
    // No caps set: anything goes.
    let open = normalized(pull("D")).unwrap();
    assert!(PullRequest {
        batch: 1_000_000,
        expires: 3600 * SEC,
        max_bytes: 1 << 30,
        ..PullRequest::default()
    }
    .check_limits(&open)
    .is_ok());
}

// ---------------------------------------------------------------------------
// Serde shape

#[test]
fn pe4_pe5_pe6_enum_strings() {
    for (p, s) in [
        (DeliverPolicy::All, "all"),
        (DeliverPolicy::Last, "last"),
        (DeliverPolicy::New, "new"),
        (DeliverPolicy::ByStartSequence, "by_start_sequence"),
        (DeliverPolicy::ByStartTime, "by_start_time"),
        (DeliverPolicy::LastPerSubject, "last_per_subject"),
    ] {
        assert_eq!(serde_json::to_value(p).unwrap(), json!(s));
        assert_eq!(
            serde_json::from_value::<DeliverPolicy>(json!(s)).unwrap(),
            p
        );
    }
    assert_eq!(
        serde_json::from_value::<DeliverPolicy>(json!("undefined")).unwrap(),
        DeliverPolicy::All
    );
    for (p, s) in [
        (AckPolicy::None, "none"),
        (AckPolicy::All, "all"),
        (AckPolicy::Explicit, "explicit"),
    ] {
        assert_eq!(serde_json::to_value(p).unwrap(), json!(s));
        assert_eq!(serde_json::from_value::<AckPolicy>(json!(s)).unwrap(), p);
    }
    for (p, s) in [
        (ReplayPolicy::Instant, "instant"),
        (ReplayPolicy::Original, "original"),
    ] {
        assert_eq!(serde_json::to_value(p).unwrap(), json!(s));
        assert_eq!(serde_json::from_value::<ReplayPolicy>(json!(s)).unwrap(), p);
    }
    assert!(serde_json::from_value::<AckPolicy>(json!("Explicit")).is_err());
    assert!(serde_json::from_value::<DeliverPolicy>(json!("first")).is_err());
}

#[test]
fn config_json_like_nats_server() {
    let cfg = normalized(pull("D")).unwrap();
    assert_eq!(
        serde_json::to_string(&cfg).unwrap(),
        r#"{"durable_name":"D","deliver_policy":"all","ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":512,"max_ack_pending":1000,"num_replicas":0}"#
    );
    let cfg = normalized(ConsumerConfig {
        name: "kv".into(),
        filter_subjects: vec!["orders.a".into(), "orders.b".into()],
        headers_only: true,
        deliver_group: "q".into(),
        metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
        idle_heartbeat: 5 * SEC,
        flow_control: true,
        mem_storage: true,
        num_replicas: 1,
        ..push("d.x")
    })
    .unwrap();
    assert_eq!(
        serde_json::to_string(&cfg).unwrap(),
        r#"{"name":"kv","deliver_policy":"all","ack_policy":"none","max_deliver":-1,"filter_subjects":["orders.a","orders.b"],"replay_policy":"instant","idle_heartbeat":5000000000,"flow_control":true,"headers_only":true,"deliver_subject":"d.x","deliver_group":"q","inactive_threshold":5000000000,"num_replicas":1,"mem_storage":true,"metadata":{"k":"v"}}"#
    );
}

#[test]
fn config_parsing_nulls_and_unknown_fields() {
    let cfg: ConsumerConfig = serde_json::from_value(json!({
        "durable_name": "D",
        "deliver_policy": null,
        "ack_policy": "explicit",
        "ack_wait": null,
        "backoff": null,
        "filter_subject": null,
        "metadata": null,
        "opt_start_time": null,
        "pause_until": "2030-01-01T00:00:00Z",
        "priority_groups": ["a"],
    }))
    .unwrap();
    assert_eq!(cfg, pull("D"));
    let cfg: ConsumerConfig = serde_json::from_value(json!({
        "deliver_policy": "by_start_time",
        "opt_start_time": "2023-01-02T03:04:05.123Z",
        "backoff": [1000000000, 2000000000],
    }))
    .unwrap();
    assert_eq!(cfg.deliver_policy, DeliverPolicy::ByStartTime);
    assert_eq!(
        cfg.opt_start_time.map(|t| t.to_string()).as_deref(),
        Some("2023-01-02T03:04:05.123Z")
    );
    assert_eq!(cfg.backoff, vec![SEC, 2 * SEC]);
}

#[test]
fn create_request_shape() {
    let req: CreateConsumerRequest = serde_json::from_value(json!({
        "stream_name": "ORDERS",
        "config": {"durable_name": "D", "ack_policy": "explicit"},
    }))
    .unwrap();
    assert_eq!(req.stream_name, "ORDERS");
    assert_eq!(req.config, pull("D"));
    assert_eq!(req.action, ConsumerAction::CreateOrUpdate);
    let v = serde_json::to_value(&req).unwrap();
    assert!(v.get("action").is_none(), "{v}");
    for (s, a) in [
        ("create", ConsumerAction::Create),
        ("update", ConsumerAction::Update),
        ("", ConsumerAction::CreateOrUpdate),
    ] {
        let req: CreateConsumerRequest =
            serde_json::from_value(json!({"stream_name":"S","config":{},"action":s})).unwrap();
        assert_eq!(req.action, a);
    }
}

fn info(cfg: ConsumerConfig) -> ConsumerInfo {
    ConsumerInfo {
        stream_name: "ORDERS".into(),
        name: cfg.consumer_name().to_owned(),
        created: Timestamp::from_unix_nanos(1_700_000_000 * SEC + 5),
        config: cfg,
        delivered: SequenceInfo {
            consumer_seq: 4,
            stream_seq: 9,
            last_active: Some(Timestamp::from_unix_nanos(1_700_000_100 * SEC)),
        },
        ack_floor: SequenceInfo {
            consumer_seq: 2,
            stream_seq: 5,
            last_active: None,
        },
        num_ack_pending: 2,
        num_redelivered: 1,
        num_waiting: 0,
        num_pending: 10,
        cluster: None,
        push_bound: false,
    }
}

#[test]
fn info_json_shape() {
    let resp = ConsumerInfoResponse::ok(info(normalized(pull("D")).unwrap()));
    // Field order as Go marshals it: `type`, then the ConsumerInfo fields.
    assert_eq!(
        serde_json::to_string(&resp).unwrap(),
        concat!(
            r#"{"type":"io.nats.jetstream.api.v1.consumer_info_response","stream_name":"ORDERS","name":"D","#,
            r#""created":"2023-11-14T22:13:20.000000005Z","config":{"durable_name":"D","deliver_policy":"all","#,
            r#""ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","#,
            r#""max_waiting":512,"max_ack_pending":1000,"num_replicas":0},"#,
            r#""delivered":{"consumer_seq":4,"stream_seq":9,"last_active":"2023-11-14T22:15:00Z"},"#,
            r#""ack_floor":{"consumer_seq":2,"stream_seq":5},"num_ack_pending":2,"num_redelivered":1,"#,
            r#""num_waiting":0,"num_pending":10}"#
        )
    );
    let v = serde_json::to_value(&resp).unwrap();
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.consumer_info_response");
    assert_eq!(v["created"], "2023-11-14T22:13:20.000000005Z");
    assert_eq!(
        v["delivered"],
        json!({"consumer_seq":4,"stream_seq":9,"last_active":"2023-11-14T22:15:00Z"})
    );
    assert_eq!(v["ack_floor"], json!({"consumer_seq":2,"stream_seq":5}));

    let e =
        serde_json::to_value(ConsumerInfoResponse::error(errors::consumer_not_found())).unwrap();
    assert_eq!(
        e,
        json!({"type":"io.nats.jetstream.api.v1.consumer_info_response","error":{"code":404,"err_code":10014,"description":"consumer not found"}})
    );
    let n =
        serde_json::to_value(ConsumerNamesResponse::ok(Vec::new(), ApiPaged::default())).unwrap();
    assert_eq!(n["consumers"], json!([]), "2.9.10 sends an empty array");
    let d = serde_json::to_value(ConsumerDeleteResponse::ok()).unwrap();
    assert_eq!(
        d,
        json!({"type":"io.nats.jetstream.api.v1.consumer_delete_response","success":true})
    );
}

#[test]
fn responses_round_trip() {
    fn rt<T>(v: &T)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let s = serde_json::to_string(v).unwrap();
        let back: T = serde_json::from_str(&s).unwrap();
        assert_eq!(&back, v, "{s}");
    }
    let i = info(normalized(pull("D")).unwrap());
    rt(&ConsumerCreateResponse::ok(i.clone()));
    rt(&ConsumerCreateResponse::error(errors::stream_not_found()));
    rt(&ConsumerInfoResponse::ok(i.clone()));
    rt(&ConsumerInfoResponse::error(errors::consumer_not_found()));
    rt(&ConsumerDeleteResponse::ok());
    rt(&ConsumerNamesResponse::ok(
        vec!["A".into(), "B".into()],
        ApiPaged {
            total: 2,
            offset: 0,
            limit: API_NAMES_LIMIT,
        },
    ));
    rt(&ConsumerListResponse::ok(
        vec![i],
        ApiPaged {
            total: 1,
            offset: 0,
            limit: API_LIST_LIMIT,
        },
    ));
}

// ---------------------------------------------------------------------------
// JSON Schema validation

fn sample_configs() -> Vec<ConsumerConfig> {
    let t = Some(Timestamp::from_unix_nanos(1_700_000_000 * SEC));
    vec![
        normalized(pull("D")).unwrap(),
        normalized(push("d.x")).unwrap(),
        normalized(ConsumerConfig {
            deliver_policy: DeliverPolicy::ByStartSequence,
            opt_start_seq: 7,
            backoff: vec![SEC, 5 * SEC],
            max_deliver: 4,
            filter_subject: "orders.*".into(),
            sample_freq: "50%".into(),
            max_batch: 10,
            max_expires: SEC,
            max_bytes: 1024,
            description: "d".into(),
            ..pull("D")
        })
        .unwrap(),
        normalized(ConsumerConfig {
            name: "ordered".into(),
            deliver_policy: DeliverPolicy::ByStartTime,
            opt_start_time: t,
            ack_wait: 22 * 3600 * SEC,
            max_deliver: 1,
            flow_control: true,
            idle_heartbeat: 5 * SEC,
            mem_storage: true,
            num_replicas: 1,
            rate_limit_bps: 1 << 20,
            headers_only: true,
            filter_subjects: vec!["orders.a".into(), "audit".into()],
            metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
            ..push("d.x")
        })
        .unwrap(),
        normalized(ConsumerConfig {
            deliver_policy: DeliverPolicy::LastPerSubject,
            filter_subject: "orders.>".into(),
            replay_policy: ReplayPolicy::Original,
            ack_policy: AckPolicy::All,
            ..pull("")
        })
        .unwrap(),
    ]
}

#[test]
fn schema_consumer_configuration() {
    for cfg in sample_configs() {
        assert_valid("consumer_configuration", &cfg);
    }
}

#[test]
fn schema_schemas_catch_a_bad_config() {
    // The validation is live: a config outside the schema is reported.
    let mut v = serde_json::to_value(normalized(pull("D")).unwrap()).unwrap();
    v["ack_policy"] = json!("sometimes");
    assert!(!schema("consumer_configuration").is_valid(&v));
}

#[test]
fn schema_requests() {
    for cfg in sample_configs() {
        assert_valid(
            "consumer_create_request",
            &CreateConsumerRequest {
                stream_name: "ORDERS".into(),
                config: cfg,
                action: ConsumerAction::Create,
            },
        );
    }
    assert_valid(
        "consumer_getnext_request",
        &PullRequest {
            batch: 10,
            expires: 30 * SEC,
            max_bytes: 1 << 20,
            no_wait: true,
            idle_heartbeat: 5 * SEC,
        },
    );
    assert_valid("consumer_getnext_request", &PullRequest::batch(1));
}

#[test]
fn schema_responses() {
    for cfg in sample_configs() {
        let mut i = info(cfg);
        i.push_bound = !i.config.deliver_subject.is_empty();
        assert_valid(
            "consumer_info_response",
            &ConsumerInfoResponse::ok(i.clone()),
        );
        assert_valid("consumer_create_response", &ConsumerCreateResponse::ok(i));
    }
    assert_valid(
        "consumer_info_response",
        &ConsumerInfoResponse::error(errors::consumer_not_found()),
    );
    assert_valid(
        "consumer_create_response",
        &ConsumerCreateResponse::error(errors::consumer_filter_not_subset()),
    );
    assert_valid("consumer_delete_response", &ConsumerDeleteResponse::ok());
    assert_valid(
        "consumer_delete_response",
        &ConsumerDeleteResponse::error(errors::consumer_not_found()),
    );
    let paged = ApiPaged {
        total: 2,
        offset: 0,
        limit: API_NAMES_LIMIT,
    };
    assert_valid(
        "consumer_names_response",
        &ConsumerNamesResponse::ok(vec!["A".into(), "B".into()], paged),
    );
    assert_valid(
        "consumer_names_response",
        &ConsumerNamesResponse::ok(Vec::new(), ApiPaged::default()),
    );
    // 2.9.10 initializes `consumers` to `[]`, so its error bodies carry it
    // and match both branches of the schemas' `oneOf`. We keep the server's
    // shape; without `consumers` the error body must validate.
    for (name, mut v) in [
        (
            "consumer_names_response",
            serde_json::to_value(ConsumerNamesResponse::error(errors::stream_not_found())).unwrap(),
        ),
        (
            "consumer_list_response",
            serde_json::to_value(ConsumerListResponse::error(errors::stream_not_found())).unwrap(),
        ),
    ] {
        assert_eq!(v["consumers"], json!([]), "{name}");
        assert!(!schema(name).is_valid(&v), "{name}");
        v.as_object_mut().unwrap().remove("consumers");
        assert_valid(name, &v);
    }
    assert_valid(
        "consumer_list_response",
        &ConsumerListResponse::ok(
            sample_configs().into_iter().map(info).collect(),
            ApiPaged {
                total: 5,
                offset: 0,
                limit: API_LIST_LIMIT,
            },
        ),
    );
}

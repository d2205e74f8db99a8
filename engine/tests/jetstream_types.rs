//! JetStream API types: serde shape, stream config normalization and update
//! rules (2.9.10), subject overlap, and JSON Schema validation of every response
//! against the jsm.go schemas in `tests/schemas/jetstream/api/v1/` (validated
//! with the `jsonschema` crate, draft-07, files loaded by path).

use std::collections::BTreeMap;

use bytes::Bytes;
use natrium_engine::jetstream::errors::{self, ApiError};
use natrium_engine::jetstream::time::Timestamp;
use natrium_engine::jetstream::types::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

#[path = "support/schema.rs"]
mod schema;
use schema::{assert_valid, schema};

const SEC: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

fn normalized(cfg: StreamConfig) -> Result<StreamConfig, ApiError> {
    let mut cfg = cfg;
    cfg.normalize(&ServerLimits::default()).map(|()| cfg)
}

fn invalid(desc: &str) -> ApiError {
    ApiError::new(500, 10052, desc)
}

// ---------------------------------------------------------------------------
// Normalization

#[test]
fn normalize_defaults() {
    let cfg = normalized(StreamConfig::named("ORDERS")).unwrap();
    assert_eq!(cfg.subjects, vec!["ORDERS".to_string()]);
    assert_eq!(cfg.retention, RetentionPolicy::Limits);
    assert_eq!(cfg.storage, StorageType::File);
    assert_eq!(cfg.discard, DiscardPolicy::Old);
    assert_eq!(cfg.num_replicas, 1);
    assert_eq!(
        (
            cfg.max_consumers,
            cfg.max_msgs,
            cfg.max_bytes,
            cfg.max_msgs_per_subject,
            cfg.max_msg_size
        ),
        (-1, -1, -1, -1, -1)
    );
    assert_eq!(cfg.max_age, 0);
    assert_eq!(cfg.duplicate_window, 120 * SEC);
    // Idempotent.
    assert_eq!(normalized(cfg.clone()).unwrap(), cfg);
    // Exactly what 2.9.10 sends back for `nats stream add ORDERS --defaults`-like input.
    assert_eq!(
        serde_json::to_value(&cfg).unwrap(),
        json!({
            "name": "ORDERS", "subjects": ["ORDERS"], "retention": "limits",
            "max_consumers": -1, "max_msgs": -1, "max_bytes": -1, "max_age": 0,
            "max_msgs_per_subject": -1, "max_msg_size": -1, "discard": "old",
            "storage": "file", "num_replicas": 1, "duplicate_window": 120_000_000_000i64,
            "allow_direct": false, "mirror_direct": false, "sealed": false,
            "deny_delete": false, "deny_purge": false, "allow_rollup_hdrs": false
        })
    );
}

#[test]
fn normalize_keeps_explicit_values() {
    let cfg = normalized(StreamConfig {
        max_msgs: 10,
        max_msgs_per_subject: -5, // 2.9.10 only rewrites 0
        max_age: 30 * SEC,
        ..StreamConfig::named("S")
    })
    .unwrap();
    assert_eq!(cfg.max_msgs, 10);
    assert_eq!(cfg.max_msgs_per_subject, -5);
    // Window capped to max_age.
    assert_eq!(cfg.duplicate_window, 30 * SEC);
    let cfg = normalized(StreamConfig {
        max_age: 10 * 60 * SEC,
        ..StreamConfig::named("S")
    })
    .unwrap();
    assert_eq!(cfg.duplicate_window, 120 * SEC);
}

#[test]
fn normalize_server_duplicate_limit() {
    let lim = ServerLimits {
        max_duplicate_window: 60 * SEC,
        ..ServerLimits::default()
    };
    let mut cfg = StreamConfig::named("S");
    cfg.normalize(&lim).unwrap();
    assert_eq!(cfg.duplicate_window, 60 * SEC);
    let mut cfg = StreamConfig {
        duplicate_window: 90 * SEC,
        ..StreamConfig::named("S")
    };
    assert_eq!(
        cfg.normalize(&lim),
        Err(invalid(
            "duplicates window can not be larger then server limit of 1m0s"
        ))
    );
}

#[test]
fn normalize_account_max_bytes() {
    let lim = ServerLimits {
        max_bytes_required: true,
        ..ServerLimits::default()
    };
    let mut cfg = StreamConfig::named("S");
    assert_eq!(
        cfg.normalize(&lim),
        Err(ApiError::new(
            400,
            10113,
            "account requires a stream config to have max bytes set"
        ))
    );
    let lim = ServerLimits {
        memory_max_stream_bytes: 1000,
        ..ServerLimits::default()
    };
    let mut cfg = StreamConfig {
        max_bytes: 1001,
        storage: StorageType::Memory,
        ..StreamConfig::named("S")
    };
    assert_eq!(cfg.normalize(&lim).unwrap_err().err_code, 10122);
    // The limit is per storage type.
    let mut cfg = StreamConfig {
        max_bytes: 1001,
        ..StreamConfig::named("S")
    };
    cfg.normalize(&lim).unwrap();
}

#[test]
fn normalize_errors() {
    fn with(f: impl FnOnce(&mut StreamConfig)) -> StreamConfig {
        let mut c = StreamConfig::named("S");
        f(&mut c);
        c
    }
    let long = "x".repeat(256);
    let cases: Vec<(&str, StreamConfig, ApiError)> = vec![
        (
            "empty name",
            StreamConfig::default(),
            invalid("stream name is required and can not contain '.', '*', '>'"),
        ),
        (
            "dot in name",
            StreamConfig::named("a.b"),
            invalid("stream name is required and can not contain '.', '*', '>'"),
        ),
        (
            "star in name",
            StreamConfig::named("a*"),
            invalid("stream name is required and can not contain '.', '*', '>'"),
        ),
        (
            "gt in name",
            StreamConfig::named("a>"),
            invalid("stream name is required and can not contain '.', '*', '>'"),
        ),
        (
            "space in name",
            StreamConfig::named("a b"),
            invalid("stream name is required and can not contain '.', '*', '>'"),
        ),
        (
            "tab in name",
            StreamConfig::named("a\tb"),
            invalid("stream name is required and can not contain '.', '*', '>'"),
        ),
        (
            "long name",
            StreamConfig::named(long.clone()),
            invalid("stream name is too long, maximum allowed is 255"),
        ),
        (
            "slash in name",
            StreamConfig::named("a/b"),
            errors::stream_name_contains_path_separators(),
        ),
        (
            "backslash in name",
            StreamConfig::named("a\\b"),
            ApiError::new(400, 10128, "Stream name can not contain path separators"),
        ),
        (
            "long description",
            with(|c| c.description = "d".repeat(4097)),
            invalid("stream description is too long, maximum allowed is 4096"),
        ),
        (
            "too many replicas",
            with(|c| c.num_replicas = 6),
            invalid("maximum replicas is 5"),
        ),
        (
            "negative replicas",
            with(|c| c.num_replicas = -1),
            ApiError::new(400, 10133, "replicas count cannot be negative"),
        ),
        (
            "replicas on a single server",
            with(|c| c.num_replicas = 3),
            ApiError::new(
                500,
                10074,
                "replicas > 1 not supported in non-clustered mode",
            ),
        ),
        (
            "max age below 100ms",
            with(|c| c.max_age = 99 * MS),
            invalid("max age needs to be >= 100ms"),
        ),
        (
            "negative max age",
            with(|c| c.max_age = -SEC),
            invalid("duplicates window can not be negative"),
        ),
        (
            "negative duplicate window",
            with(|c| c.duplicate_window = -1),
            invalid("duplicates window can not be negative"),
        ),
        (
            "window above max age",
            with(|c| {
                c.max_age = SEC;
                c.duplicate_window = 2 * SEC;
            }),
            invalid("duplicates window can not be larger then max age"),
        ),
        (
            "window below 100ms",
            with(|c| c.duplicate_window = 50 * MS),
            invalid("duplicates window needs to be >= 100ms"),
        ),
        (
            "deny purge with rollups",
            with(|c| {
                c.deny_purge = true;
                c.allow_rollup_hdrs = true;
            }),
            invalid("roll-ups require the purge permission"),
        ),
        (
            "discard new per subject without discard new",
            with(|c| {
                c.discard_new_per_subject = true;
                c.max_msgs_per_subject = 1;
            }),
            invalid("discard new per subject requires discard new policy to be set"),
        ),
        (
            "discard new per subject without per-subject limit",
            with(|c| {
                c.discard_new_per_subject = true;
                c.discard = DiscardPolicy::New;
            }),
            invalid("discard new per subject requires max msgs per subject > 0"),
        ),
        (
            "mirror with subjects",
            with(|c| {
                c.mirror = Some(StreamSource {
                    name: "O".into(),
                    ..Default::default()
                });
                c.subjects = vec!["x".into()];
            }),
            ApiError::new(400, 10034, "stream mirrors can not contain subjects"),
        ),
        (
            "mirror with sources",
            with(|c| {
                c.mirror = Some(StreamSource {
                    name: "O".into(),
                    ..Default::default()
                });
                c.sources = vec![StreamSource {
                    name: "P".into(),
                    ..Default::default()
                }];
            }),
            ApiError::new(
                400,
                10031,
                "stream mirrors can not also contain other sources",
            ),
        ),
        (
            "mirror",
            with(|c| {
                c.mirror = Some(StreamSource {
                    name: "O".into(),
                    ..Default::default()
                })
            }),
            invalid("stream mirrors and sources are not supported yet"),
        ),
        (
            "sources",
            with(|c| {
                c.sources = vec![StreamSource {
                    name: "P".into(),
                    ..Default::default()
                }]
            }),
            invalid("stream mirrors and sources are not supported yet"),
        ),
        (
            "duplicate subjects",
            with(|c| c.subjects = vec!["a".into(), "b".into(), "a".into()]),
            invalid("duplicate subjects detected"),
        ),
        (
            "jetstream api subject",
            with(|c| c.subjects = vec!["$JS.API.STREAM.INFO.x".into()]),
            invalid("subjects overlap with jetstream api"),
        ),
        (
            "jetstream api wildcard",
            with(|c| c.subjects = vec!["$JS.API.>".into()]),
            invalid("subjects overlap with jetstream api"),
        ),
        (
            "invalid subject",
            with(|c| c.subjects = vec!["a..b".into()]),
            invalid("invalid subject"),
        ),
        (
            "misplaced gt",
            with(|c| c.subjects = vec!["a.>.b".into()]),
            invalid("invalid subject"),
        ),
        (
            "subject with space",
            with(|c| c.subjects = vec!["a b".into()]),
            invalid("invalid subject"),
        ),
        (
            "overlapping subjects",
            with(|c| c.subjects = vec!["foo.*".into(), "foo.bar".into()]),
            invalid(r#"subject "foo.*" overlaps with "foo.bar""#),
        ),
        (
            "overlapping wildcards",
            with(|c| c.subjects = vec!["a.b".into(), "*.c".into(), "a.>".into()]),
            invalid(r#"subject "a.b" overlaps with "a.>""#),
        ),
        (
            "republish source outside subjects",
            with(|c| {
                c.subjects = vec!["foo.>".into()];
                c.republish = Some(RePublish {
                    source: "bar.>".into(),
                    destination: "out.>".into(),
                    headers_only: false,
                });
            }),
            invalid("stream configuration for republish source is not valid subset of subjects"),
        ),
        (
            "republish cycle",
            with(|c| {
                c.subjects = vec!["foo.>".into()];
                c.republish = Some(RePublish {
                    source: "".into(),
                    destination: "foo.out.>".into(),
                    headers_only: false,
                });
            }),
            invalid("stream configuration for republish destination forms a cycle"),
        ),
        (
            "republish invalid transform",
            with(|c| {
                c.subjects = vec!["foo.>".into()];
                c.republish = Some(RePublish {
                    source: "foo.>".into(),
                    destination: "out".into(),
                    headers_only: false,
                });
            }),
            invalid("stream configuration for republish not valid"),
        ),
    ];
    for (what, cfg, want) in cases {
        assert_eq!(normalized(cfg), Err(want), "{what}");
    }
}

#[test]
fn normalize_accepts() {
    // Subjects outside $JS.API (2.9.10 only reserves that), non-overlapping sets,
    // republish, discard new per subject.
    for subjects in [
        vec!["$JS.>"],
        vec![">"],
        vec!["$JS.API"],
        vec!["$JS.EVENT.>"],
        vec!["a.*", "b.*", "a"],
        vec!["foo.*.bar", "foo.*.baz"],
    ] {
        let cfg = StreamConfig {
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            ..StreamConfig::named("S")
        };
        normalized(cfg).unwrap_or_else(|e| panic!("{subjects:?}: {e}"));
    }
    let cfg = normalized(StreamConfig {
        subjects: vec!["foo.>".into()],
        republish: Some(RePublish {
            source: String::new(),
            destination: "out.>".into(),
            headers_only: true,
        }),
        discard: DiscardPolicy::New,
        discard_new_per_subject: true,
        max_msgs_per_subject: 1,
        ..StreamConfig::named("S")
    })
    .unwrap();
    assert_eq!(cfg.republish.unwrap().source, ">");
    let cfg = normalized(StreamConfig {
        subjects: vec!["foo.*".into()],
        republish: Some(RePublish {
            source: "foo.*".into(),
            destination: "out.$1".into(),
            headers_only: false,
        }),
        ..StreamConfig::named("S")
    });
    assert!(cfg.is_ok(), "{cfg:?}");
}

#[test]
fn normalize_for_create() {
    let lim = ServerLimits::default();
    let mut c = StreamConfig {
        sealed: true,
        ..StreamConfig::named("S")
    };
    assert_eq!(
        c.normalize_for_create(&lim),
        Err(invalid("stream configuration for create can not be sealed"))
    );
    let mut c = StreamConfig {
        mirror_direct: true,
        ..StreamConfig::named("S")
    };
    assert_eq!(
        c.normalize_for_create(&lim),
        Err(invalid("stream has no mirror but does have mirror direct"))
    );
    // Path separators come before the name syntax check on create.
    let mut c = StreamConfig::named("a.b/c");
    assert_eq!(c.normalize_for_create(&lim).unwrap_err().err_code, 10128);
    let mut c = StreamConfig::named("KV_x");
    c.normalize_for_create(&lim).unwrap();
    // Sealing by update is fine.
    let mut c = StreamConfig {
        sealed: true,
        ..StreamConfig::named("S")
    };
    c.normalize(&lim).unwrap();
}

// ---------------------------------------------------------------------------
// Update rules

#[test]
fn update_rules() {
    let base = normalized(StreamConfig {
        subjects: vec!["a".into()],
        deny_delete: true,
        deny_purge: true,
        ..StreamConfig::named("S")
    })
    .unwrap();
    let upd = |f: &dyn Fn(&mut StreamConfig)| {
        let mut n = base.clone();
        f(&mut n);
        check_update(&base, &n)
    };
    // Allowed changes.
    upd(&|c| c.subjects = vec!["a".into(), "b.>".into()]).unwrap();
    upd(&|c| c.max_msgs = 5).unwrap();
    upd(&|c| c.max_age = 3600 * SEC).unwrap();
    upd(&|c| c.description = "x".into()).unwrap();
    upd(&|c| c.allow_direct = true).unwrap();
    upd(&|c| c.sealed = true).unwrap();
    upd(&|c| c.discard = DiscardPolicy::New).unwrap();
    type Case<'a> = (&'a str, &'a dyn Fn(&mut StreamConfig), ApiError);
    let cases: Vec<Case> = vec![
        (
            "name",
            &|c| c.name = "T".into(),
            invalid("stream configuration name must match original"),
        ),
        (
            "max consumers",
            &|c| c.max_consumers = 10,
            invalid("stream configuration update can not change MaxConsumers"),
        ),
        (
            "storage",
            &|c| c.storage = StorageType::Memory,
            invalid("stream configuration update can not change storage type"),
        ),
        (
            "retention to interest",
            &|c| c.retention = RetentionPolicy::Interest,
            invalid("stream configuration update can not change retention policy"),
        ),
        (
            "retention to workqueue",
            &|c| c.retention = RetentionPolicy::WorkQueue,
            invalid("stream configuration update can not change retention policy"),
        ),
        (
            "template owner",
            &|c| c.template_owner = "T".into(),
            invalid("stream configuration update can not be owned by a template"),
        ),
        (
            "deny delete",
            &|c| c.deny_delete = false,
            invalid("stream configuration update can not cancel deny message deletes"),
        ),
        (
            "deny purge",
            &|c| c.deny_purge = false,
            invalid("stream configuration update can not cancel deny purge"),
        ),
        (
            "mirror",
            &|c| {
                c.mirror = Some(StreamSource {
                    name: "O".into(),
                    ..Default::default()
                })
            },
            ApiError::new(400, 10055, "stream mirror configuration can not be updated"),
        ),
        (
            "republish",
            &|c| {
                c.republish = Some(RePublish {
                    source: ">".into(),
                    destination: "x.>".into(),
                    headers_only: false,
                })
            },
            invalid("stream configuration update can not change RePublish"),
        ),
    ];
    for (what, f, want) in cases {
        assert_eq!(upd(f), Err(want), "{what}");
    }

    let sealed = StreamConfig {
        sealed: true,
        ..base.clone()
    };
    assert_eq!(
        check_update(&sealed, &base),
        Err(invalid(
            "stream configuration update can not unseal a sealed stream"
        ))
    );
    let templated = StreamConfig {
        template_owner: "T".into(),
        ..base.clone()
    };
    assert_eq!(
        check_update(&templated, &templated),
        Err(invalid(
            "stream configuration update not allowed on template owned stream"
        ))
    );

    // Sealing adjusts the stored config.
    let mut n = base.clone();
    n.sealed = true;
    n.max_age = 3600 * SEC;
    n.deny_purge = true;
    let stored = apply_update(&base, &n).unwrap();
    assert_eq!(stored.max_age, 0);
    assert_eq!(stored.discard, DiscardPolicy::New);
    assert!(stored.deny_delete && stored.deny_purge && !stored.allow_rollup_hdrs);
}

// ---------------------------------------------------------------------------
// Subject overlap

#[test]
fn overlap() {
    let yes = [
        ("foo", "foo"),
        ("foo.*", "foo.bar"),
        ("foo.*", "*.bar"),
        ("foo.>", "foo.bar.baz"),
        ("foo.>", "*.bar"),
        (">", "a"),
        (">", "a.b.c"),
        ("*.*", "a.>"),
        ("foo.*.baz", "foo.bar.*"),
        ("*", "*"),
        (">", ">"),
        ("a.*.>", "a.b.c"),
    ];
    let no = [
        ("foo", "bar"),
        ("foo.>", "foo"),
        ("foo.*", "foo"),
        ("foo.*", "foo.bar.baz"),
        ("*.*", "a"),
        ("*.*", "a.b.c"),
        ("foo.*.baz", "foo.bar.qux"),
        ("a.*.>", "a.b"),
        ("foo*", "foox"),
    ];
    for (a, b) in yes {
        assert!(subjects_overlap(a, b), "{a} / {b}");
        assert!(subjects_overlap(b, a), "{b} / {a}");
    }
    for (a, b) in no {
        assert!(!subjects_overlap(a, b), "{a} / {b}");
        assert!(!subjects_overlap(b, a), "{b} / {a}");
    }
}

#[test]
fn subset_match() {
    assert!(is_subset_match("$JS.API.>", "$JS.API.>"));
    assert!(is_subset_match("$JS.API.STREAM.*", "$JS.API.>"));
    assert!(is_subset_match("foo.*", ">"));
    assert!(is_subset_match("foo.*", "*.*"));
    assert!(is_subset_match("foo.bar", "foo.*"));
    assert!(!is_subset_match("$JS.>", "$JS.API.>"));
    assert!(!is_subset_match(">", "$JS.API.>"));
    assert!(!is_subset_match("$JS.*.X", "$JS.API.>"));
    assert!(!is_subset_match("$JS.API", "$JS.API.>"));
    assert!(!is_subset_match("foo.*", "foo.bar"));
}

#[test]
fn names() {
    assert!(is_valid_name("ORDERS"));
    assert!(is_valid_name("KV_bucket-1"));
    for bad in ["", "a.b", "a b", "a*", "a>", "a\nb", "a\x0cb"] {
        assert!(!is_valid_name(bad), "{bad:?}");
    }
}

// ---------------------------------------------------------------------------
// Serde

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) -> String {
    let s = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(&back, v, "{s}");
    s
}

fn full_config() -> StreamConfig {
    StreamConfig {
        name: "ORDERS".into(),
        description: "orders".into(),
        subjects: vec!["orders.>".into()],
        retention: RetentionPolicy::WorkQueue,
        max_consumers: 10,
        max_msgs: 1000,
        max_bytes: 1 << 20,
        max_age: 3600 * SEC,
        max_msgs_per_subject: 5,
        max_msg_size: 1024,
        discard: DiscardPolicy::New,
        storage: StorageType::Memory,
        num_replicas: 1,
        no_ack: true,
        template_owner: String::new(),
        duplicate_window: 60 * SEC,
        placement: Some(Placement {
            cluster: "c1".into(),
            tags: vec!["ssd".into()],
        }),
        mirror: None,
        sources: vec![],
        republish: Some(RePublish {
            source: "orders.>".into(),
            destination: "copy.>".into(),
            headers_only: true,
        }),
        allow_direct: true,
        mirror_direct: false,
        discard_new_per_subject: true,
        sealed: false,
        deny_delete: true,
        deny_purge: false,
        allow_rollup_hdrs: true,
        first_seq: 0,
        metadata: BTreeMap::from([("owner".to_string(), "team".to_string())]),
    }
}

fn full_state() -> StreamState {
    StreamState {
        messages: 3,
        bytes: 300,
        first_seq: 5,
        first_ts: Timestamp::from_unix_nanos(1_669_799_554_123_000_000),
        last_seq: 8,
        last_ts: Timestamp::from_unix_nanos(1_669_799_555_000_000_000),
        num_subjects: 2,
        subjects: BTreeMap::from([("orders.a".into(), 2), ("orders.b".into(), 1)]),
        num_deleted: 1,
        deleted: vec![6],
        lost: Some(LostStreamData {
            msgs: vec![1, 2],
            bytes: 20,
        }),
        consumer_count: 2,
    }
}

fn full_info() -> StreamInfo {
    StreamInfo {
        config: full_config(),
        created: Timestamp::from_unix_nanos(1_669_799_000_000_000_001),
        state: full_state(),
        domain: "hub".into(),
        cluster: Some(ClusterInfo::single_server("natrium-1", "")),
        mirror: None,
        sources: vec![],
        alternates: vec![],
    }
}

fn empty_info() -> StreamInfo {
    StreamInfo {
        config: normalized(StreamConfig::named("EMPTY")).unwrap(),
        created: Timestamp::from_unix_nanos(1_669_799_000_000_000_000),
        state: StreamState::default(),
        ..StreamInfo::default()
    }
}

fn stored_msg() -> StoredMsg {
    StoredMsg {
        subject: "orders.a".into(),
        seq: 5,
        hdrs: Bytes::from_static(b"NATS/1.0\r\nA: b\r\n\r\n"),
        data: Bytes::from_static(b"hello"),
        time: Timestamp::from_unix_nanos(1_669_799_554_123_000_000),
    }
}

fn account_stats() -> AccountStats {
    let limits = AccountLimits {
        max_memory: -1,
        max_storage: -1,
        max_streams: -1,
        max_consumers: -1,
        max_ack_pending: -1,
        memory_max_stream_bytes: -1,
        storage_max_stream_bytes: -1,
        max_bytes_required: false,
    };
    AccountStats {
        memory: 0,
        storage: 1234,
        reserved_memory: 0,
        reserved_storage: 0,
        streams: 1,
        consumers: 2,
        limits,
        domain: String::new(),
        api: ApiStats {
            total: 10,
            errors: 1,
            inflight: 0,
        },
        tiers: BTreeMap::new(),
    }
}

#[test]
fn config_json_shape() {
    let cfg = full_config();
    let s = round_trip(&cfg);
    // Field order follows the Go struct.
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&s)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let _ = keys; // serde_json::Map is sorted; check order on the raw text instead.
    let order = [
        "\"name\"",
        "\"description\"",
        "\"subjects\"",
        "\"retention\"",
        "\"max_consumers\"",
        "\"max_msgs\"",
        "\"max_bytes\"",
        "\"max_age\"",
        "\"max_msgs_per_subject\"",
        "\"max_msg_size\"",
        "\"discard\"",
        "\"storage\"",
        "\"num_replicas\"",
        "\"no_ack\"",
        "\"duplicate_window\"",
        "\"placement\"",
        "\"republish\"",
        "\"allow_direct\"",
        "\"mirror_direct\"",
        "\"discard_new_per_subject\"",
        "\"sealed\"",
        "\"deny_delete\"",
        "\"deny_purge\"",
        "\"allow_rollup_hdrs\"",
        "\"metadata\"",
    ];
    let pos: Vec<usize> = order
        .iter()
        .map(|k| s.find(k).unwrap_or_else(|| panic!("{k} missing in {s}")))
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{s}");
    assert!(s.contains(r#""retention":"workqueue""#));
    assert!(s.contains(r#""storage":"memory""#));
    assert!(s.contains(r#""discard":"new""#));
    assert!(s.contains(r#""republish":{"src":"orders.>","dest":"copy.>","headers_only":true}"#));
    assert!(!s.contains("template_owner") && !s.contains("mirror\"") && !s.contains("sources"));
}

#[test]
fn config_input_leniency() {
    // Unknown fields ignored, nulls leave defaults, discard is case-insensitive,
    // 2.10 fields accepted.
    let cfg: StreamConfig = serde_json::from_str(
        r#"{"name":"S","subjects":null,"max_msgs":null,"discard":"NEW","bogus":1,
            "compression":"s2","first_seq":10,"metadata":{"a":"b"},
            "subject_transform":{"src":"a","dest":"b"}}"#,
    )
    .unwrap();
    assert_eq!(cfg.name, "S");
    assert!(cfg.subjects.is_empty());
    assert_eq!(cfg.max_msgs, 0);
    assert_eq!(cfg.discard, DiscardPolicy::New);
    assert_eq!(cfg.first_seq, 10);
    assert_eq!(cfg.metadata["a"], "b");
    assert!(serde_json::from_str::<StreamConfig>(r#"{"name":"S","retention":"bogus"}"#).is_err());
    assert!(serde_json::from_str::<StreamConfig>(r#"{"name":"S","storage":"disk"}"#).is_err());
    assert!(
        serde_json::from_str::<StreamConfig>(r#"{"name":"S","max_msg_size":3000000000}"#).is_err()
    );
}

#[test]
fn state_and_info_shape() {
    round_trip(&full_state());
    let s = round_trip(&full_info());
    assert!(
        s.contains(r#""domain":"hub","cluster":{"leader":"natrium-1"}}"#),
        "{s}"
    );
    round_trip(&empty_info());
    let empty = serde_json::to_string(&StreamState::default()).unwrap();
    assert_eq!(
        empty,
        r#"{"messages":0,"bytes":0,"first_seq":0,"first_ts":"0001-01-01T00:00:00Z","last_seq":0,"last_ts":"0001-01-01T00:00:00Z","consumer_count":0}"#
    );
}

#[test]
fn stored_msg_shape() {
    let s = round_trip(&stored_msg());
    assert_eq!(
        s,
        r#"{"subject":"orders.a","seq":5,"hdrs":"TkFUUy8xLjANCkE6IGINCg0K","data":"aGVsbG8=","time":"2022-11-30T09:12:34.123Z"}"#
    );
    let bare = StoredMsg {
        hdrs: Bytes::new(),
        data: Bytes::new(),
        ..stored_msg()
    };
    let s = round_trip(&bare);
    assert!(!s.contains("hdrs") && !s.contains("data"), "{s}");
}

#[test]
fn requests() {
    round_trip(&StreamInfoRequest {
        offset: 3,
        deleted_details: true,
        subjects_filter: ">".into(),
    });
    round_trip(&StreamNamesRequest {
        offset: 1,
        subject: "foo.*".into(),
    });
    round_trip(&StreamPurgeRequest {
        seq: 10,
        filter: "a.>".into(),
        keep: 0,
    });
    round_trip(&MsgGetRequest {
        seq: 0,
        last_by_subj: "$KV.b.k".into(),
        next_by_subj: String::new(),
    });
    round_trip(&MsgDeleteRequest {
        seq: 4,
        no_erase: true,
    });
    assert_eq!(
        serde_json::to_string(&StreamInfoRequest::default()).unwrap(),
        r#"{"offset":0}"#
    );
    assert_eq!(
        serde_json::to_string(&MsgDeleteRequest::default()).unwrap(),
        r#"{"seq":0}"#
    );
    assert_eq!(
        serde_json::to_string(&StreamPurgeRequest::default()).unwrap(),
        "{}"
    );

    assert_eq!(
        parse_request::<StreamInfoRequest>(b" null ").unwrap(),
        StreamInfoRequest::default()
    );
    assert!(is_empty_request(b""));
    assert!(is_empty_request(b"{}"));
    assert!(is_empty_request(b" { } "));
    assert!(!is_empty_request(b"null"));
    assert!(!is_empty_request(b"{\"seq\":1}"));
    assert_eq!(
        parse_request::<MsgGetRequest>(b"").unwrap(),
        MsgGetRequest::default()
    );
    assert_eq!(
        parse_request::<MsgGetRequest>(br#"{"seq":7,"unknown":true}"#)
            .unwrap()
            .seq,
        7
    );
    let e = parse_request::<MsgGetRequest>(b"{nope").unwrap_err();
    assert_eq!((e.code, e.err_code), (400, 10025));
    assert!(e.description.starts_with("invalid JSON: "), "{e}");
}

#[test]
fn pub_ack_shapes() {
    let ack = PubAck {
        stream: "S".into(),
        seq: 7,
        domain: String::new(),
        duplicate: false,
    };
    assert_eq!(ack.to_wire(), br#"{"stream":"S", "seq":7}"#);
    let dup = PubAck {
        duplicate: true,
        ..ack.clone()
    };
    assert_eq!(
        dup.to_wire(),
        br#"{"stream":"S", "seq":7,"duplicate": true}"#
    );
    let dom = PubAck {
        domain: "hub".into(),
        ..ack.clone()
    };
    assert_eq!(dom.to_wire(), br#"{"stream":"S", "domain":"hub", "seq":7}"#);
    // The wire form parses back to the same PubAck.
    for a in [&ack, &dup, &dom] {
        assert_eq!(&serde_json::from_slice::<PubAck>(&a.to_wire()).unwrap(), a);
    }
    let ok = PubAckResponse::ok(dup.clone());
    assert_eq!(
        round_trip(&ok),
        r#"{"stream":"S","seq":7,"duplicate":true}"#
    );
    let err = PubAckResponse::error("S", errors::stream_wrong_last_sequence(3));
    assert_eq!(
        round_trip(&err),
        r#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"S","seq":0}"#
    );
}

#[test]
fn response_shapes() {
    let e = errors::stream_not_found();
    let err_json = r#""error":{"code":404,"err_code":10059,"description":"stream not found"}"#;
    assert_eq!(
        round_trip(&StreamInfoResponse::error(e.clone())),
        format!(
            r#"{{"type":"io.nats.jetstream.api.v1.stream_info_response",{err_json},"total":0,"offset":0,"limit":0}}"#
        )
    );
    assert_eq!(
        round_trip(&StreamCreateResponse::error(e.clone())),
        format!(r#"{{"type":"io.nats.jetstream.api.v1.stream_create_response",{err_json}}}"#)
    );
    assert_eq!(
        round_trip(&StreamDeleteResponse::ok()),
        r#"{"type":"io.nats.jetstream.api.v1.stream_delete_response","success":true}"#
    );
    assert_eq!(
        round_trip(&StreamPurgeResponse::error(e.clone())),
        format!(
            r#"{{"type":"io.nats.jetstream.api.v1.stream_purge_response",{err_json},"purged":0}}"#
        )
    );
    assert_eq!(
        round_trip(&StreamNamesResponse::ok(
            vec![],
            ApiPaged {
                total: 0,
                offset: 0,
                limit: API_NAMES_LIMIT
            }
        )),
        r#"{"type":"io.nats.jetstream.api.v1.stream_names_response","total":0,"offset":0,"limit":1024,"streams":null}"#
    );
    assert_eq!(
        round_trip(&StreamListResponse::ok(
            vec![],
            ApiPaged {
                total: 0,
                offset: 0,
                limit: API_LIST_LIMIT
            }
        )),
        r#"{"type":"io.nats.jetstream.api.v1.stream_list_response","total":0,"offset":0,"limit":256,"streams":[]}"#
    );
    assert_eq!(
        round_trip(&MsgDeleteResponse::error(errors::sequence_not_found(9))),
        r#"{"type":"io.nats.jetstream.api.v1.stream_msg_delete_response","error":{"code":400,"err_code":10043,"description":"sequence 9 not found"}}"#
    );
    // Payload flattened after type; did_create last.
    let s = round_trip(&StreamCreateResponse::ok(empty_info()));
    assert!(
        s.starts_with(
            r#"{"type":"io.nats.jetstream.api.v1.stream_create_response","config":{"name":"EMPTY""#
        ),
        "{s}"
    );
    assert!(
        s.ends_with(r#""consumer_count":0},"did_create":true}"#),
        "{s}"
    );
    // 2.10's reserved_memory/reserved_storage are sent (async-nats 0.51 needs them).
    let s = round_trip(&AccountInfoResponse::ok(account_stats()));
    assert_eq!(
        s,
        r#"{"type":"io.nats.jetstream.api.v1.account_info_response","memory":0,"storage":1234,"reserved_memory":0,"reserved_storage":0,"streams":1,"consumers":2,"limits":{"max_memory":-1,"max_storage":-1,"max_streams":-1,"max_consumers":-1,"max_ack_pending":-1,"memory_max_stream_bytes":-1,"storage_max_stream_bytes":-1,"max_bytes_required":false},"api":{"total":10,"errors":1}}"#
    );
    round_trip(&AccountInfoResponse::error(
        errors::not_enabled_for_account(),
    ));
    round_trip(&StreamInfoResponse::ok(
        full_info(),
        ApiPaged {
            total: 2,
            offset: 0,
            limit: MAX_SUBJECT_DETAILS,
        },
    ));
    round_trip(&StreamUpdateResponse::ok(full_info()));
    round_trip(&MsgGetResponse::ok(stored_msg()));
    round_trip(&MsgGetResponse::error(errors::no_message_found()));
    round_trip(&StreamListResponse::ok(
        vec![full_info(), empty_info()],
        ApiPaged {
            total: 2,
            offset: 0,
            limit: API_LIST_LIMIT,
        },
    ));
}

// ---------------------------------------------------------------------------
// JSON Schema validation

#[test]
fn schema_stream_config() {
    // Normalized configs are what the server emits; they carry every field the
    // schema requires.
    assert_valid("stream_configuration", &full_config());
    assert_valid(
        "stream_configuration",
        &normalized(StreamConfig::named("S")).unwrap(),
    );
}

#[test]
fn schema_requests() {
    assert_valid("stream_create_request", &full_config());
    assert_valid(
        "stream_info_request",
        &StreamInfoRequest {
            offset: 0,
            deleted_details: true,
            subjects_filter: "orders.*".into(),
        },
    );
    assert_valid(
        "stream_names_request",
        &StreamNamesRequest {
            offset: 0,
            subject: "orders.>".into(),
        },
    );
    assert_valid("stream_list_request", &StreamListRequest::default());
    assert_valid(
        "stream_purge_request",
        &StreamPurgeRequest {
            seq: 0,
            filter: "orders.a".into(),
            keep: 1,
        },
    );
    assert_valid(
        "stream_msg_get_request",
        &MsgGetRequest {
            seq: 5,
            ..Default::default()
        },
    );
    assert_valid(
        "stream_msg_delete_request",
        &MsgDeleteRequest {
            seq: 5,
            no_erase: true,
        },
    );
}

#[test]
fn schema_responses() {
    let paged = |total, limit| ApiPaged {
        total,
        offset: 0,
        limit,
    };
    assert_valid(
        "stream_create_response",
        &StreamCreateResponse::ok(full_info()),
    );
    assert_valid(
        "stream_create_response",
        &StreamCreateResponse::ok(empty_info()),
    );
    assert_valid(
        "stream_update_response",
        &StreamUpdateResponse::ok(full_info()),
    );
    assert_valid(
        "stream_info_response",
        &StreamInfoResponse::ok(full_info(), paged(2, MAX_SUBJECT_DETAILS)),
    );
    assert_valid(
        "stream_info_response",
        &StreamInfoResponse::ok(empty_info(), ApiPaged::default()),
    );
    assert_valid(
        "stream_names_response",
        &StreamNamesResponse::ok(
            vec!["EMPTY".into(), "ORDERS".into()],
            paged(2, API_NAMES_LIMIT),
        ),
    );
    assert_valid(
        "stream_names_response",
        &StreamNamesResponse::ok(vec![], paged(0, API_NAMES_LIMIT)),
    );
    assert_valid(
        "stream_list_response",
        &StreamListResponse::ok(vec![full_info(), empty_info()], paged(2, API_LIST_LIMIT)),
    );
    assert_valid("stream_delete_response", &StreamDeleteResponse::ok());
    assert_valid("stream_purge_response", &StreamPurgeResponse::ok(12));
    assert_valid("stream_msg_get_response", &MsgGetResponse::ok(stored_msg()));
    assert_valid("stream_msg_delete_response", &MsgDeleteResponse::ok());
    assert_valid(
        "account_info_response",
        &AccountInfoResponse::ok(account_stats()),
    );
    let mut with_domain = account_stats();
    with_domain.domain = "hub".into();
    assert_valid(
        "account_info_response",
        &AccountInfoResponse::ok(with_domain),
    );
    assert_valid(
        "pub_ack_response",
        &PubAckResponse::ok(PubAck {
            stream: "S".into(),
            seq: 1,
            domain: "hub".into(),
            duplicate: true,
        }),
    );
    let wire: Value = serde_json::from_slice(
        &PubAck {
            stream: "S".into(),
            seq: 1,
            ..PubAck::default()
        }
        .to_wire(),
    )
    .unwrap();
    assert_valid("pub_ack_response", &wire);
}

#[test]
fn schema_error_responses() {
    let e = errors::stream_not_found();
    assert_valid(
        "stream_create_response",
        &StreamCreateResponse::error(e.clone()),
    );
    assert_valid(
        "stream_update_response",
        &StreamUpdateResponse::error(e.clone()),
    );
    assert_valid(
        "stream_info_response",
        &StreamInfoResponse::error(e.clone()),
    );
    // 2.9.10 marshals `streams` in errors too (`null` for names, `[]` for
    // list), which makes the schemas' `oneOf` match both branches. We keep the
    // server's shape; without `streams` the error body must validate.
    for (name, mut v) in [
        (
            "stream_names_response",
            serde_json::to_value(StreamNamesResponse::error(e.clone())).unwrap(),
        ),
        (
            "stream_list_response",
            serde_json::to_value(StreamListResponse::error(e.clone())).unwrap(),
        ),
    ] {
        assert!(v.get("streams").is_some(), "{name}");
        assert!(!schema(name).is_valid(&v), "{name}");
        v.as_object_mut().unwrap().remove("streams");
        assert_valid(name, &v);
    }
    assert_valid(
        "stream_delete_response",
        &StreamDeleteResponse::error(e.clone()),
    );
    assert_valid(
        "stream_purge_response",
        &StreamPurgeResponse::error(e.clone()),
    );
    assert_valid("stream_msg_get_response", &MsgGetResponse::error(e.clone()));
    assert_valid("stream_msg_delete_response", &MsgDeleteResponse::error(e));
    assert_valid(
        "account_info_response",
        &AccountInfoResponse::error(errors::not_enabled_for_account()),
    );
    assert_valid(
        "pub_ack_response",
        &PubAckResponse::error("S", errors::stream_not_match()),
    );
}

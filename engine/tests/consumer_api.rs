//! The consumer management API through the real engine (matrix 4.2 rows
//! S13–S19, 4.7 rows CC*): create in every subject form, info with
//! `num_pending` per deliver policy, delete, names and list, and the error
//! codes nats-server 2.9.10 (and 2.10 for the newer create forms) answers
//! with. Every response is checked against its JSON Schema.

mod support;

use natrium_engine::Instant;
use serde_json::{json, Value};
use support::js::{JsHarness, WALL_BASE};

#[path = "support/schema.rs"]
mod schema;
use schema::assert_valid;

const SEC: i64 = 1_000_000_000;

fn harness() -> JsHarness {
    let mut h = JsHarness::new(7);
    h.create_stream("S", r#"{"name":"S","subjects":["s.>"],"storage":"memory"}"#);
    h
}

/// A request whose response must validate against `schema`.
fn call(h: &mut JsHarness, subject: &str, body: &str, schema: &str) -> Value {
    let r = h.request(subject, body);
    assert_valid(schema, &r);
    r
}

fn create(h: &mut JsHarness, subject: &str, body: Value) -> Value {
    call(
        h,
        &format!("$JS.API.CONSUMER.{subject}"),
        &body.to_string(),
        "consumer_create_response",
    )
}

/// A create that must succeed.
fn create_ok(h: &mut JsHarness, subject: &str, body: Value) -> Value {
    let r = create(h, subject, body.clone());
    assert!(r.get("error").is_none(), "create {subject} {body}: {r}");
    r
}

fn info(h: &mut JsHarness, stream: &str, name: &str) -> Value {
    call(
        h,
        &format!("$JS.API.CONSUMER.INFO.{stream}.{name}"),
        "",
        "consumer_info_response",
    )
}

fn delete(h: &mut JsHarness, stream: &str, name: &str) -> Value {
    call(
        h,
        &format!("$JS.API.CONSUMER.DELETE.{stream}.{name}"),
        "",
        "consumer_delete_response",
    )
}

/// A names or list request. 2.9.10's error bodies carry `consumers: []` and
/// so match both branches of the schema's `oneOf`; we keep that shape and
/// validate them without it (as `consumer_types.rs` does).
fn paged(h: &mut JsHarness, subject: &str, body: &str, schema: &str) -> Value {
    let r = h.request(subject, body);
    let mut checked = r.clone();
    if r.get("error").is_some() {
        assert_eq!(r["consumers"], json!([]), "{r}");
        checked.as_object_mut().unwrap().remove("consumers");
    }
    assert_valid(schema, &checked);
    r
}

fn names(h: &mut JsHarness, stream: &str, body: &str) -> Value {
    paged(
        h,
        &format!("$JS.API.CONSUMER.NAMES.{stream}"),
        body,
        "consumer_names_response",
    )
}

fn list(h: &mut JsHarness, stream: &str, body: &str) -> Value {
    paged(
        h,
        &format!("$JS.API.CONSUMER.LIST.{stream}"),
        body,
        "consumer_list_response",
    )
}

/// The error of a response: (code, err_code, description).
fn err(r: &Value) -> (u64, u64, String) {
    let e = r
        .get("error")
        .unwrap_or_else(|| panic!("expected an error: {r}"));
    (
        e["code"].as_u64().unwrap(),
        e["err_code"].as_u64().unwrap(),
        e["description"].as_str().unwrap().to_string(),
    )
}

fn err_code(r: &Value) -> u64 {
    err(r).1
}

fn stream_info(h: &mut JsHarness, stream: &str) -> Value {
    call(
        h,
        &format!("$JS.API.STREAM.INFO.{stream}"),
        "",
        "stream_info_response",
    )
}

fn account_consumers(h: &mut JsHarness) -> u64 {
    let r = call(h, "$JS.API.INFO", "", "account_info_response");
    r["consumers"].as_u64().unwrap()
}

/// Publish and check the PubAck's sequence.
fn publish(h: &mut JsHarness, subject: &str, expect_seq: u64) {
    let n = h.publish(subject, b"x");
    let ack: Value = serde_json::from_slice(&h.take_reply(n).expect("puback")).unwrap();
    assert_eq!(ack["seq"], expect_seq, "{ack}");
}

fn pull(durable: &str) -> Value {
    json!({"durable_name": durable, "ack_policy": "explicit"})
}

fn req(stream: &str, config: Value) -> Value {
    json!({"stream_name": stream, "config": config})
}

// ---------------------------------------------------------------------------
// Create

/// S15: legacy durable create; S14: named create, with and without a filter
/// token; S13: the legacy subject with a named (2.10) config.
#[test]
fn s13_s14_s15_create_in_each_subject_form() {
    let mut h = harness();
    let r = create_ok(&mut h, "DURABLE.CREATE.S.d1", req("S", pull("d1")));
    assert_eq!(r["name"], "d1");
    assert_eq!(r["stream_name"], "S");
    assert_eq!(r["config"]["durable_name"], "d1");
    // Defaults filled in (CC rows): ack_wait 30s, max_deliver -1, max_waiting 512.
    assert_eq!(r["config"]["ack_wait"], 30 * SEC);
    assert_eq!(r["config"]["max_deliver"], -1);
    assert_eq!(r["config"]["max_waiting"], 512);
    assert_eq!(r["config"]["max_ack_pending"], 1000);
    assert_eq!(r["created"], "2023-11-14T22:13:21Z");

    let r = create_ok(&mut h, "CREATE.S.d2", req("S", pull("d2")));
    assert_eq!(r["name"], "d2");

    let cfg = json!({"name": "n3", "ack_policy": "explicit", "filter_subject": "s.a.b"});
    let r = create_ok(&mut h, "CREATE.S.n3.s.a.b", req("S", cfg));
    assert_eq!(r["name"], "n3");
    assert_eq!(r["config"]["filter_subject"], "s.a.b");
    // A named ephemeral (no durable_name) gets the 5s inactive threshold.
    assert_eq!(r["config"]["inactive_threshold"], 5 * SEC);

    // Named create without a config name takes the subject's.
    let cfg = json!({"ack_policy": "none", "filter_subject": "s.x"});
    let r = create_ok(&mut h, "CREATE.S.n4.s.x", req("S", cfg));
    assert_eq!(r["name"], "n4");
    assert_eq!(r["config"]["name"], "n4");

    let r = create_ok(&mut h, "CREATE.S", req("S", json!({"name": "n5"})));
    assert_eq!(r["name"], "n5");

    let r = names(&mut h, "S", "");
    assert_eq!(r["consumers"], json!(["d1", "d2", "n3", "n4", "n5"]));
}

/// S13: an unnamed ephemeral gets an 8-character name from the engine's
/// seeded generator: the same seed gives the same name.
#[test]
fn s13_ephemeral_gets_generated_name() {
    let mut h = harness();
    let a = create_ok(&mut h, "CREATE.S", req("S", json!({})));
    let b = create_ok(&mut h, "CREATE.S", req("S", json!({})));
    let name = a["name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 8);
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
    assert_eq!(a["config"]["name"], name.as_str());
    assert!(a["config"].get("durable_name").is_none());
    assert_ne!(b["name"], a["name"]);
    assert_eq!(a["config"]["inactive_threshold"], 5 * SEC);
    assert_eq!(a["config"]["ack_policy"], "none");

    let mut h2 = harness();
    let again = create_ok(&mut h2, "CREATE.S", req("S", json!({})));
    assert_eq!(again["name"], a["name"], "same seed, same name");
}

/// CC30 / S14: creating again with the same config returns the existing
/// consumer (same created time), also with `action: create`.
#[test]
fn cc30_create_is_idempotent_with_same_config() {
    let mut h = harness();
    let first = create_ok(&mut h, "CREATE.S.d", req("S", pull("d")));
    h.now = Instant(h.now.0 + 5_000_000_000);
    let again = create_ok(&mut h, "CREATE.S.d", req("S", pull("d")));
    assert_eq!(again, first);
    let body = json!({"stream_name": "S", "config": pull("d"), "action": "create"});
    let again = create_ok(&mut h, "CREATE.S.d", body);
    assert_eq!(again["created"], first["created"]);
    assert_eq!(names(&mut h, "S", "")["total"], 1);
}

/// CC30: without an action, an existing durable with another config is an
/// update; mutable fields change, immutable ones are refused with 10012.
#[test]
fn cc30_update_allowed_and_refused() {
    let mut h = harness();
    create_ok(&mut h, "DURABLE.CREATE.S.d", req("S", pull("d")));
    let mut cfg = pull("d");
    cfg["description"] = json!("changed");
    cfg["ack_wait"] = json!(10 * SEC);
    cfg["max_ack_pending"] = json!(5);
    let r = create_ok(&mut h, "DURABLE.CREATE.S.d", req("S", cfg.clone()));
    assert_eq!(r["config"]["description"], "changed");
    assert_eq!(r["config"]["ack_wait"], 10 * SEC);
    let r = info(&mut h, "S", "d");
    assert_eq!(r["config"]["max_ack_pending"], 5);

    // action update of an existing consumer.
    cfg["description"] = json!("again");
    let body = json!({"stream_name": "S", "config": cfg, "action": "update"});
    let r = create_ok(&mut h, "CREATE.S.d", body);
    assert_eq!(r["config"]["description"], "again");

    let mut bad = pull("d");
    bad["ack_policy"] = json!("all");
    let r = create(&mut h, "DURABLE.CREATE.S.d", req("S", bad));
    assert_eq!(
        err(&r),
        (500, 10012, "ack policy can not be updated".to_string())
    );
    let mut bad = pull("d");
    bad["deliver_policy"] = json!("new");
    let r = create(&mut h, "CREATE.S.d", req("S", bad));
    assert_eq!(
        err(&r),
        (500, 10012, "deliver policy can not be updated".to_string())
    );
    let mut bad = pull("d");
    bad["deliver_subject"] = json!("out");
    let r = create(&mut h, "CREATE.S.d", req("S", bad));
    assert_eq!(err_code(&r), 10012);
    assert_eq!(info(&mut h, "S", "d")["config"]["description"], "again");
}

/// S13–S15: the subject and body checks, in 2.9.10's (and 2.10's) order and codes.
#[test]
fn s13_s15_create_errors() {
    let mut h = harness();
    // 10059: no such stream.
    let r = create(&mut h, "CREATE.X.d", req("X", pull("d")));
    assert_eq!(err(&r), (404, 10059, "stream not found".to_string()));
    // 10025: bad JSON, and an empty body (Go's json.Unmarshal fails on it).
    let r = call(
        &mut h,
        "$JS.API.CONSUMER.CREATE.S",
        "{",
        "consumer_create_response",
    );
    assert_eq!(err_code(&r), 10025);
    let r = call(
        &mut h,
        "$JS.API.CONSUMER.CREATE.S",
        "",
        "consumer_create_response",
    );
    assert_eq!(err_code(&r), 10025);
    // 10056: stream in body differs from the subject's.
    let r = create(&mut h, "CREATE.S.d", req("T", pull("d")));
    assert_eq!(err_code(&r), 10056);
    let r = create(&mut h, "CREATE.S", json!({"config": {}}));
    assert_eq!(err_code(&r), 10056);
    // 10127: path separators in the subject's name.
    let r = create(&mut h, "CREATE.S.a\\b", req("S", json!({})));
    assert_eq!(err_code(&r), 10127);
    let r = create(&mut h, "DURABLE.CREATE.S.a/b", req("S", pull("a/b")));
    assert_eq!(err_code(&r), 10127);
    // 10018: DURABLE.CREATE without durable_name.
    let r = create(&mut h, "DURABLE.CREATE.S.d", req("S", json!({})));
    assert_eq!(err_code(&r), 10018);
    // 10017: durable_name differs from the subject's name.
    let r = create(&mut h, "DURABLE.CREATE.S.d", req("S", pull("e")));
    assert_eq!(err_code(&r), 10017);
    let r = create(&mut h, "CREATE.S.d", req("S", pull("e")));
    assert_eq!(err_code(&r), 10017);
    // 10020: the ephemeral subject with a durable_name.
    let r = create(&mut h, "CREATE.S", req("S", pull("d")));
    assert_eq!(
        err(&r),
        (
            400,
            10020,
            "consumer expected to be ephemeral but a durable name was set in request".to_string()
        )
    );
    // 10131: filter token differs from filter_subject (also when it is unset).
    let mut cfg = pull("d");
    cfg["filter_subject"] = json!("s.b");
    let r = create(&mut h, "CREATE.S.d.s.a", req("S", cfg));
    assert_eq!(err_code(&r), 10131);
    let r = create(&mut h, "CREATE.S.d.s", req("S", pull("d")));
    assert_eq!(err_code(&r), 10131);
    // 10137: filter token with filter_subjects.
    let mut cfg = pull("d");
    cfg["filter_subjects"] = json!(["s.a", "s.b"]);
    let r = create(&mut h, "CREATE.S.d.s.a", req("S", cfg));
    assert_eq!(err_code(&r), 10137);
    // 10074: replicas on a single server.
    let mut cfg = pull("d");
    cfg["num_replicas"] = json!(3);
    let r = create(&mut h, "CREATE.S.d", req("S", cfg));
    assert_eq!(err(&r).0, 500);
    assert_eq!(err_code(&r), 10074);
    // 10149: action update of a missing consumer.
    let body = json!({"stream_name": "S", "config": pull("d"), "action": "update"});
    let r = create(&mut h, "CREATE.S.d", body);
    assert_eq!(err(&r), (400, 10149, "consumer does not exist".to_string()));
    // 10103: a bad name given in the config of the legacy subject.
    let r = create(&mut h, "CREATE.S", req("S", json!({"name": "a*b"})));
    assert_eq!(err_code(&r), 10103);
    // 10093: filter outside the stream's subjects (config validation).
    let mut cfg = pull("d");
    cfg["filter_subject"] = json!("other");
    let r = create(&mut h, "CREATE.S.d.other", req("S", cfg));
    assert_eq!(err_code(&r), 10093);
    // Nothing was created by any of the above.
    assert_eq!(names(&mut h, "S", "")["total"], 0);

    // 10148: action create of an existing consumer with another config.
    create_ok(&mut h, "CREATE.S.d", req("S", pull("d")));
    let mut cfg = pull("d");
    cfg["description"] = json!("other");
    let body = json!({"stream_name": "S", "config": cfg, "action": "create"});
    let r = create(&mut h, "CREATE.S.d", body);
    assert_eq!(err(&r), (400, 10148, "consumer already exists".to_string()));
}

/// CC31: work-queue streams need explicit acks (10098) and unique filters
/// (10099, 10100).
#[test]
fn cc31_work_queue_rules() {
    let mut h = JsHarness::new(7);
    h.create_stream(
        "W",
        r#"{"name":"W","subjects":["w.>"],"storage":"memory","retention":"workqueue"}"#,
    );
    let r = create(
        &mut h,
        "CREATE.W.d",
        req("W", json!({"durable_name": "d", "ack_policy": "all"})),
    );
    assert_eq!(err_code(&r), 10098);
    create_ok(&mut h, "CREATE.W.d", req("W", pull("d")));
    // The same consumer again is fine (an update of itself).
    create_ok(&mut h, "CREATE.W.d", req("W", pull("d")));
    let r = create(&mut h, "CREATE.W.e", req("W", pull("e")));
    assert_eq!(err_code(&r), 10099);
    delete(&mut h, "W", "d");
    let mut a = pull("a");
    a["filter_subject"] = json!("w.a");
    create_ok(&mut h, "CREATE.W.a", req("W", a));
    let mut b = pull("b");
    b["filter_subject"] = json!("w.*");
    let r = create(&mut h, "CREATE.W.b", req("W", b));
    assert_eq!(err_code(&r), 10100);
}

/// S13 / 10026: a stream's max_consumers counts existing consumers; updates
/// of existing ones still pass; a delete makes room.
#[test]
fn s13_max_consumers() {
    let mut h = JsHarness::new(7);
    h.create_stream(
        "M",
        r#"{"name":"M","subjects":["m"],"storage":"memory","max_consumers":2}"#,
    );
    create_ok(&mut h, "CREATE.M.a", req("M", pull("a")));
    create_ok(&mut h, "CREATE.M.b", req("M", pull("b")));
    let r = create(&mut h, "CREATE.M.c", req("M", pull("c")));
    assert_eq!(
        err(&r),
        (400, 10026, "maximum consumers limit reached".to_string())
    );
    let r = create(&mut h, "CREATE.M", req("M", json!({})));
    assert_eq!(err_code(&r), 10026);
    let mut upd = pull("b");
    upd["description"] = json!("still fine");
    create_ok(&mut h, "CREATE.M.b", req("M", upd));
    assert_eq!(delete(&mut h, "M", "a")["success"], true);
    create_ok(&mut h, "CREATE.M.c", req("M", pull("c")));
}

// ---------------------------------------------------------------------------
// Info

/// Publish s.a, s.b, s.a, s.c, s.a (seqs 1–5), one second apart.
fn five_messages(h: &mut JsHarness) {
    for (i, s) in ["s.a", "s.b", "s.a", "s.c", "s.a"].iter().enumerate() {
        h.now = Instant(h.now.0 + 1_000_000_000);
        publish(h, s, i as u64 + 1);
    }
}

/// (num_pending, delivered.stream_seq, ack_floor.stream_seq) of a new consumer.
fn pending_of(h: &mut JsHarness, name: &str, mut cfg: Value) -> (u64, u64, u64) {
    cfg["durable_name"] = json!(name);
    let created = create_ok(h, &format!("CREATE.S.{name}"), req("S", cfg));
    let r = info(h, "S", name);
    assert!(r.get("error").is_none(), "{r}");
    assert_eq!(r["num_pending"], created["num_pending"]);
    for k in ["num_ack_pending", "num_redelivered", "num_waiting"] {
        assert_eq!(r[k], 0, "{k}: {r}");
    }
    assert_eq!(r["delivered"]["consumer_seq"], 0);
    assert_eq!(r["ack_floor"]["consumer_seq"], 0);
    (
        r["num_pending"].as_u64().unwrap(),
        r["delivered"]["stream_seq"].as_u64().unwrap(),
        r["ack_floor"]["stream_seq"].as_u64().unwrap(),
    )
}

/// S16 / PE4: num_pending for each deliver policy, with and without filters;
/// delivered and ack floor sit one before the starting sequence (2.9.10).
#[test]
fn s16_num_pending_per_deliver_policy() {
    let mut h = harness();
    assert_eq!(pending_of(&mut h, "empty", json!({})), (0, 0, 0));
    five_messages(&mut h);
    let t3 = WALL_BASE + h.now.0 as i64 - 2 * SEC;
    let t3 = natrium_engine::jetstream::time::Timestamp::from_unix_nanos(t3).to_string();

    assert_eq!(pending_of(&mut h, "all", json!({})), (5, 0, 0));
    assert_eq!(
        pending_of(&mut h, "all_a", json!({"filter_subject": "s.a"})),
        (3, 0, 0)
    );
    assert_eq!(
        pending_of(&mut h, "all_ab", json!({"filter_subjects": ["s.a", "s.b"]})),
        (4, 0, 0)
    );
    assert_eq!(
        pending_of(&mut h, "last", json!({"deliver_policy": "last"})),
        (1, 4, 4)
    );
    assert_eq!(
        pending_of(
            &mut h,
            "last_b",
            json!({"deliver_policy": "last", "filter_subject": "s.b"})
        ),
        (1, 1, 1)
    );
    assert_eq!(
        pending_of(&mut h, "new", json!({"deliver_policy": "new"})),
        (0, 5, 5)
    );
    assert_eq!(
        pending_of(
            &mut h,
            "seq3",
            json!({"deliver_policy": "by_start_sequence", "opt_start_seq": 3})
        ),
        (3, 2, 2)
    );
    assert_eq!(
        pending_of(
            &mut h,
            "seq3_a",
            json!({"deliver_policy": "by_start_sequence", "opt_start_seq": 3, "filter_subject": "s.a"})
        ),
        (2, 2, 2)
    );
    // A start sequence past the end clamps to one past the last message.
    assert_eq!(
        pending_of(
            &mut h,
            "seq99",
            json!({"deliver_policy": "by_start_sequence", "opt_start_seq": 99})
        ),
        (0, 5, 5)
    );
    assert_eq!(
        pending_of(
            &mut h,
            "time3",
            json!({"deliver_policy": "by_start_time", "opt_start_time": t3})
        ),
        (3, 2, 2)
    );
    assert_eq!(
        pending_of(
            &mut h,
            "lps",
            json!({"deliver_policy": "last_per_subject", "filter_subject": "s.>"})
        ),
        (3, 1, 1)
    );
    assert_eq!(
        pending_of(
            &mut h,
            "lps_a",
            json!({"deliver_policy": "last_per_subject", "filter_subject": "s.a"})
        ),
        (1, 4, 4)
    );

    // Later messages count for the consumers that have not passed them.
    publish(&mut h, "s.b", 6);
    assert_eq!(info(&mut h, "S", "new")["num_pending"], 1);
    assert_eq!(info(&mut h, "S", "all")["num_pending"], 6);
    assert_eq!(info(&mut h, "S", "all_a")["num_pending"], 3);
    assert_eq!(info(&mut h, "S", "last_b")["num_pending"], 2);
    // last_per_subject sends the three subjects' lasts, then everything
    // stored after its creation: four messages to come.
    assert_eq!(info(&mut h, "S", "lps")["num_pending"], 4);
}

/// S16: info of a missing consumer is 10014, of a missing stream 10059, and
/// a body is refused with 10038.
#[test]
fn s16_info_errors() {
    let mut h = harness();
    let r = info(&mut h, "S", "nope");
    assert_eq!(err(&r), (404, 10014, "consumer not found".to_string()));
    let r = info(&mut h, "X", "nope");
    assert_eq!(err_code(&r), 10059);
    create_ok(&mut h, "CREATE.S.d", req("S", pull("d")));
    let r = call(
        &mut h,
        "$JS.API.CONSUMER.INFO.S.d",
        r#"{"x":1}"#,
        "consumer_info_response",
    );
    assert_eq!(
        err(&r),
        (400, 10038, "expected an empty request payload".to_string())
    );
    let r = call(
        &mut h,
        "$JS.API.CONSUMER.INFO.S.d",
        "{}",
        "consumer_info_response",
    );
    assert_eq!(r["name"], "d");
}

// ---------------------------------------------------------------------------
// Delete, names, list, counts

/// S17: delete, then info and delete again give 10014; consumer_count in
/// stream info and consumers in account info follow.
#[test]
fn s17_delete_and_counts() {
    let mut h = harness();
    assert_eq!(stream_info(&mut h, "S")["state"]["consumer_count"], 0);
    create_ok(&mut h, "CREATE.S.a", req("S", pull("a")));
    create_ok(&mut h, "CREATE.S", req("S", json!({})));
    assert_eq!(stream_info(&mut h, "S")["state"]["consumer_count"], 2);
    assert_eq!(account_consumers(&mut h), 2);

    let r = delete(&mut h, "S", "a");
    assert_eq!(r["success"], true);
    assert_eq!(err_code(&info(&mut h, "S", "a")), 10014);
    assert_eq!(err_code(&delete(&mut h, "S", "a")), 10014);
    assert_eq!(err_code(&delete(&mut h, "X", "a")), 10059);
    let r = call(
        &mut h,
        "$JS.API.CONSUMER.DELETE.S.a",
        "x",
        "consumer_delete_response",
    );
    assert_eq!(err_code(&r), 10038);
    assert_eq!(stream_info(&mut h, "S")["state"]["consumer_count"], 1);
    assert_eq!(account_consumers(&mut h), 1);
    // Stream list reports the count too.
    let r = call(&mut h, "$JS.API.STREAM.LIST", "", "stream_list_response");
    assert_eq!(r["streams"][0]["state"]["consumer_count"], 1);
}

/// S17: deleting a stream drops its consumers; a stream created again under
/// the same name starts without any.
#[test]
fn s17_stream_delete_drops_consumers() {
    let mut h = harness();
    create_ok(&mut h, "CREATE.S.a", req("S", pull("a")));
    let r = call(
        &mut h,
        "$JS.API.STREAM.DELETE.S",
        "",
        "stream_delete_response",
    );
    assert_eq!(r["success"], true);
    assert_eq!(account_consumers(&mut h), 0);
    assert_eq!(err_code(&info(&mut h, "S", "a")), 10059);
    assert_eq!(err_code(&names(&mut h, "S", "")), 10059);
    assert_eq!(err_code(&list(&mut h, "S", "")), 10059);
    h.create_stream("S", r#"{"name":"S","subjects":["s.>"],"storage":"memory"}"#);
    assert_eq!(err_code(&info(&mut h, "S", "a")), 10014);
    assert_eq!(names(&mut h, "S", "")["consumers"], json!([]));
}

/// S18, S19, J6: names page at 1024 and lists at 256, sorted by name; the
/// offset is clamped to the total; a bad body is 10025.
#[test]
fn s18_s19_names_and_list_paging() {
    let mut h = harness();
    for n in ["e", "b", "d", "a", "c"] {
        create_ok(&mut h, &format!("CREATE.S.{n}"), req("S", pull(n)));
    }
    let r = names(&mut h, "S", "");
    assert_eq!(r["consumers"], json!(["a", "b", "c", "d", "e"]));
    assert_eq!(
        (&r["total"], &r["offset"], &r["limit"]),
        (&json!(5), &json!(0), &json!(1024))
    );
    let r = names(&mut h, "S", r#"{"offset":2}"#);
    assert_eq!(r["consumers"], json!(["c", "d", "e"]));
    assert_eq!(r["offset"], 2);
    let r = names(&mut h, "S", r#"{"offset":10}"#);
    assert_eq!(r["consumers"], json!([]));
    assert_eq!((&r["total"], &r["offset"]), (&json!(5), &json!(5)));
    let r = names(&mut h, "S", "{");
    assert_eq!(err_code(&r), 10025);
    assert_eq!(r["consumers"], json!([]));

    let r = list(&mut h, "S", r#"{"offset":3}"#);
    let got: Vec<&str> = r["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["d", "e"]);
    assert_eq!(
        (&r["total"], &r["offset"], &r["limit"]),
        (&json!(5), &json!(3), &json!(256))
    );
    assert_eq!(r["consumers"][0]["stream_name"], "S");
    let r = list(&mut h, "S", "null");
    assert_eq!(r["consumers"].as_array().unwrap().len(), 5);
    let r = list(&mut h, "S", r#"{"offset":"x"}"#);
    assert_eq!(err_code(&r), 10025);
}

/// PE1 interest retention: with no consumer a message is not kept; once a
/// consumer with a matching filter exists it is.
#[test]
fn interest_retention_keeps_messages_for_consumers() {
    let mut h = JsHarness::new(7);
    h.create_stream(
        "I",
        r#"{"name":"I","subjects":["i.>"],"storage":"memory","retention":"interest"}"#,
    );
    publish(&mut h, "i.a", 1);
    assert_eq!(stream_info(&mut h, "I")["state"]["messages"], 0);
    let mut cfg = pull("d");
    cfg["filter_subject"] = json!("i.a");
    create_ok(&mut h, "CREATE.I.d.i.a", req("I", cfg));
    publish(&mut h, "i.b", 2);
    assert_eq!(stream_info(&mut h, "I")["state"]["messages"], 0);
    publish(&mut h, "i.a", 3);
    assert_eq!(stream_info(&mut h, "I")["state"]["messages"], 1);
    assert_eq!(info(&mut h, "I", "d")["num_pending"], 1);
}

//! Key-value and object stores (feature matrix section 5): the client
//! conventions of async-nats on top of streams, direct get, rollup,
//! expected-last-subject-sequence, purge and ordered push consumers. Row
//! IDs (KV, OS, S, P) refer to the feature matrix.
//!
//! async-nats 0.51's `create_key_value` first calls `query_account`, which
//! requires the 2.10 account-info fields (`reserved_memory`, ...) that
//! 2.9.10 does not send, so it fails against the reference server. The
//! bucket's stream is therefore created with the exact configuration
//! async-nats would send (`kv_to_stream_config`), and the store is opened
//! with `get_key_value`, as against a bucket made by another client.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use async_nats::jetstream::object_store::{self, ObjectMetadata};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use natrium_conformance::tokio::io::AsyncReadExt;
use natrium_conformance::*;
use serde_json::{json, Value};

use crate::jetstream::{api, counts, err_code, js, ok, pub_raw};

natrium_conformance::scenarios! {
    js_kv_basic => Spec::jetstream();
    js_kv_watch => Spec::jetstream();
    js_kv_ttl_and_status => Spec::jetstream();
    js_object_store => Spec::jetstream();
}

// ---------------------------------------------------------------------------
// Helpers

/// KV1: create bucket `name` as async-nats does (stream `KV_<name>`), then
/// open it.
async fn kv_bucket(
    ctx: &jetstream::Context,
    name: &str,
    history: i64,
    max_age: Duration,
) -> kv::Store {
    ctx.create_stream(stream::Config {
        name: format!("KV_{name}"),
        description: Some(String::new()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: history,
        max_bytes: -1,
        max_age,
        max_message_size: -1,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("create KV_{name}: {e}"));
    ctx.get_key_value(name)
        .await
        .unwrap_or_else(|e| panic!("open bucket {name}: {e}"))
}

/// (revision, operation, value) of an entry.
fn rov(e: &kv::Entry) -> (u64, Operation, String) {
    (
        e.revision,
        e.operation,
        String::from_utf8(e.value.to_vec()).unwrap(),
    )
}

fn put(rev: u64, value: &str) -> (u64, Operation, String) {
    (rev, Operation::Put, value.to_string())
}

/// The whole history of `key` (bounded).
async fn history(store: &kv::Store, key: &str) -> Vec<(u64, Operation, String)> {
    let h = within("history", store.history(key))
        .await
        .unwrap_or_else(|e| panic!("history {key}: {e}"));
    within("history entries", h.try_collect::<Vec<_>>())
        .await
        .unwrap_or_else(|e| panic!("history {key}: {e}"))
        .iter()
        .map(rov)
        .collect()
}

/// The next `n` entries of a watch, as (key, revision, operation, value).
async fn next_entries(w: &mut kv::Watch, n: usize) -> Vec<(String, u64, Operation, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let e = within("watch entry", w.next())
            .await
            .expect("watch ended")
            .expect("watch error");
        let (rev, op, value) = rov(&e);
        out.push((e.key.clone(), rev, op, value));
    }
    out
}

/// The bucket's status, fresh: async-nats' `Store::status` returns the
/// stream info cached when the store was opened, so open it again.
async fn status(ctx: &jetstream::Context, name: &str) -> kv::bucket::Status {
    let store = ctx.get_key_value(name).await.expect("open bucket");
    store.status().await.expect("status")
}

fn ent(key: &str, rev: u64, op: Operation, value: &str) -> (String, u64, Operation, String) {
    (key.to_string(), rev, op, value.to_string())
}

async fn assert_no_entry(w: &mut kv::Watch, quiet: Duration) {
    if let Ok(e) = tokio::time::timeout(quiet, w.next()).await {
        panic!("expected no watch entry, got {e:?}");
    }
}

// ---------------------------------------------------------------------------
// Scenarios

/// KV1-KV5, KV7 (history, keys), P7, P9: put, get, revisions, create,
/// update, delete, purge, history and keys on a bucket with history 5.
async fn js_kv_basic(s: &Server) {
    let (c, ctx) = js(s).await;
    let store = kv_bucket(&ctx, "BASIC", 5, Duration::ZERO).await;
    let v = ok(api(&c, "$JS.API.STREAM.INFO.KV_BASIC", "").await);
    let cfg = &v["config"];
    assert_eq!(cfg["subjects"], json!(["$KV.BASIC.>"]), "{v}");
    assert_eq!(
        (
            &cfg["max_msgs_per_subject"],
            &cfg["discard"],
            &cfg["allow_rollup_hdrs"],
            &cfg["deny_delete"],
            &cfg["allow_direct"]
        ),
        (
            &json!(5),
            &json!("new"),
            &json!(true),
            &json!(true),
            &json!(true)
        ),
        "{v}"
    );

    // KV2 put: the revision is the stream sequence.
    assert_eq!(store.put("a", "1".into()).await.unwrap(), 1);
    assert_eq!(store.put("b", "x".into()).await.unwrap(), 2);
    assert_eq!(store.put("a", "2".into()).await.unwrap(), 3);
    // KV4 get (direct get of the subject's last message), and by revision.
    assert_eq!(store.get("a").await.unwrap(), Some(Bytes::from("2")));
    assert_eq!(store.get("nope").await.unwrap(), None);
    let e = store.entry("a").await.unwrap().expect("entry a");
    assert_eq!((e.key.as_str(), e.bucket.as_str()), ("a", "BASIC"));
    assert_eq!(rov(&e), put(3, "2"));
    let e = store
        .entry_for_revision("a", 1)
        .await
        .unwrap()
        .expect("rev 1");
    assert_eq!(rov(&e), put(1, "1"));
    assert!(
        store.entry_for_revision("a", 2).await.unwrap().is_none(),
        "revision 2 is key b"
    );

    // KV3 create: only when the key has no value.
    let err = store.create("a", "x".into()).await.expect_err("a exists");
    assert_eq!(err.kind(), kv::CreateErrorKind::AlreadyExists, "{err}");
    assert_eq!(store.create("c", "new".into()).await.unwrap(), 4);
    // KV3 update: only from the current revision. On the wire: 10071.
    let err = store
        .update("a", "3".into(), 1)
        .await
        .expect_err("wrong revision");
    assert_eq!(err.kind(), kv::UpdateErrorKind::WrongLastRevision, "{err}");
    let v = pub_raw(
        &c,
        "$KV.BASIC.a",
        &[("Nats-Expected-Last-Subject-Sequence", "1")],
        "3",
    )
    .await;
    assert_eq!(err_code(&v), 10071, "{v}");
    assert_eq!(v["error"]["description"], "wrong last sequence: 3", "{v}");
    assert_eq!(store.update("a", "3".into(), 3).await.unwrap(), 5);
    assert_eq!(store.get("a").await.unwrap(), Some(Bytes::from("3")));

    // KV5 delete: a DEL marker; get says none, entry shows the marker.
    store.delete("b").await.unwrap();
    assert_eq!(store.get("b").await.unwrap(), None);
    let e = store.entry("b").await.unwrap().expect("delete marker");
    assert_eq!(rov(&e), (6, Operation::Delete, String::new()));
    assert_eq!(
        history(&store, "b").await,
        vec![put(2, "x"), (6, Operation::Delete, String::new())]
    );
    // deny_delete: the stream refuses raw message deletes.
    let v = api(
        &c,
        "$JS.API.STREAM.MSG.DELETE.KV_BASIC",
        &json!({"seq":2}).to_string(),
    )
    .await;
    assert_eq!(err_code(&v), 10057, "deny_delete: {v}");
    assert_eq!(
        v["error"]["description"], "message delete not permitted",
        "{v}"
    );
    // Create after a delete works (from the marker's revision).
    assert_eq!(store.create("b", "again".into()).await.unwrap(), 7);

    // History of a key: every revision, oldest first.
    assert_eq!(
        history(&store, "a").await,
        vec![put(1, "1"), put(3, "2"), put(5, "3")]
    );
    // KV6 purge: a PURGE marker with rollup sub removes the older ones.
    store.purge("a").await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);
    let e = store.entry("a").await.unwrap().expect("purge marker");
    assert_eq!(rov(&e), (8, Operation::Purge, String::new()));
    assert_eq!(
        history(&store, "a").await,
        vec![(8, Operation::Purge, String::new())]
    );
    // Keys: deleted and purged keys are left out.
    let keys = within("keys", async {
        store
            .keys()
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(
        keys.into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from(["b".to_string(), "c".to_string()])
    );

    // History 5: a key keeps its newest five revisions.
    for i in 0..7 {
        assert_eq!(store.put("h", format!("h{i}").into()).await.unwrap(), 9 + i);
    }
    assert_eq!(
        history(&store, "h").await,
        (2..7u64)
            .map(|i| put(9 + i, &format!("h{i}")))
            .collect::<Vec<_>>()
    );
    // Status: a: 1 (purge marker), b: 3, c: 1, h: 5.
    let status = status(&ctx, "BASIC").await;
    assert_eq!(
        (status.bucket(), status.values(), status.history()),
        ("BASIC", 10, 5)
    );
    assert_eq!(counts(&c, "KV_BASIC").await.0, 10);
    // Keys with dots and the allowed punctuation round-trip.
    assert_eq!(store.put("cfg.db-1_x/y=z", "v".into()).await.unwrap(), 16);
    assert_eq!(
        store.get("cfg.db-1_x/y=z").await.unwrap(),
        Some(Bytes::from("v"))
    );
}

/// KV7, PU4: watchers (ordered push consumers) see the initial values
/// (last per subject) and then every change, filtered by key pattern;
/// deletes and purges come as such.
async fn js_kv_watch(s: &Server) {
    let (_c, ctx) = js(s).await;
    let store = kv_bucket(&ctx, "W", 3, Duration::ZERO).await;
    store.put("cfg.a", "a1".into()).await.unwrap(); // 1
    store.put("cfg.b", "b1".into()).await.unwrap(); // 2
    store.put("other.x", "x1".into()).await.unwrap(); // 3
    store.put("cfg.a", "a2".into()).await.unwrap(); // 4

    // watch_with_history(">"): the last value of each key, then updates.
    let mut all = store.watch_with_history(">").await.unwrap();
    let initial = next_entries(&mut all, 3).await;
    assert_eq!(
        initial,
        vec![
            ent("cfg.b", 2, Operation::Put, "b1"),
            ent("other.x", 3, Operation::Put, "x1"),
            ent("cfg.a", 4, Operation::Put, "a2"),
        ]
    );
    // watch_all: updates only.
    let mut updates = store.watch_all().await.unwrap();
    // A key pattern, with its initial values.
    let mut pattern = store.watch_with_history("cfg.*").await.unwrap();
    assert_eq!(
        next_entries(&mut pattern, 2).await,
        vec![
            ent("cfg.b", 2, Operation::Put, "b1"),
            ent("cfg.a", 4, Operation::Put, "a2"),
        ]
    );
    // One key, updates only.
    let mut one = store.watch("cfg.a").await.unwrap();
    assert_no_entry(&mut all, Duration::from_millis(200)).await;
    assert_no_entry(&mut updates, Duration::from_millis(1)).await;
    assert_no_entry(&mut pattern, Duration::from_millis(1)).await;
    assert_no_entry(&mut one, Duration::from_millis(1)).await;

    store.put("cfg.a", "a3".into()).await.unwrap(); // 5
    store.put("other.x", "x2".into()).await.unwrap(); // 6
    store.delete("cfg.b").await.unwrap(); // 7
    store.purge("cfg.a").await.unwrap(); // 8
    store.put("cfg.c", "c1".into()).await.unwrap(); // 9
    let changes = vec![
        ent("cfg.a", 5, Operation::Put, "a3"),
        ent("other.x", 6, Operation::Put, "x2"),
        ent("cfg.b", 7, Operation::Delete, ""),
        ent("cfg.a", 8, Operation::Purge, ""),
        ent("cfg.c", 9, Operation::Put, "c1"),
    ];
    assert_eq!(next_entries(&mut all, 5).await, changes);
    assert_eq!(next_entries(&mut updates, 5).await, changes);
    let cfg_only: Vec<_> = changes
        .iter()
        .filter(|e| e.0.starts_with("cfg."))
        .cloned()
        .collect();
    assert_eq!(next_entries(&mut pattern, 4).await, cfg_only);
    assert_eq!(
        next_entries(&mut one, 2).await,
        vec![
            ent("cfg.a", 5, Operation::Put, "a3"),
            ent("cfg.a", 8, Operation::Purge, ""),
        ]
    );
    assert_no_entry(&mut all, Duration::from_millis(300)).await;
    assert_no_entry(&mut updates, Duration::from_millis(1)).await;
    assert_no_entry(&mut pattern, Duration::from_millis(1)).await;
    assert_no_entry(&mut one, Duration::from_millis(1)).await;

    // A new watcher starts from the markers.
    let mut late = store.watch_with_history("cfg.*").await.unwrap();
    assert_eq!(
        next_entries(&mut late, 3).await,
        vec![
            ent("cfg.b", 7, Operation::Delete, ""),
            ent("cfg.a", 8, Operation::Purge, ""),
            ent("cfg.c", 9, Operation::Put, "c1"),
        ]
    );
    assert_no_entry(&mut late, Duration::from_millis(200)).await;
    // An empty match: nothing, then the first value.
    let mut empty = store.watch_with_history("none.*").await.unwrap();
    assert_no_entry(&mut empty, Duration::from_millis(200)).await;
    store.put("none.y", "y1".into()).await.unwrap(); // 10
    assert_eq!(
        next_entries(&mut empty, 1).await,
        vec![ent("none.y", 10, Operation::Put, "y1")]
    );
}

/// KV1 (max_age = TTL), SC8: values expire after the bucket's TTL; the
/// bucket status.
async fn js_kv_ttl_and_status(s: &Server) {
    let (c, ctx) = js(s).await;
    let store = kv_bucket(&ctx, "TTL", 1, Duration::from_secs(1)).await;
    let v = ok(api(&c, "$JS.API.STREAM.INFO.KV_TTL", "").await);
    assert_eq!(v["config"]["max_age"], 1_000_000_000u64, "{v}");
    assert_eq!(
        v["config"]["duplicate_window"], 1_000_000_000u64,
        "duplicate window capped to the TTL: {v}"
    );
    store.put("k1", "v1".into()).await.unwrap();
    store.put("k2", "v2".into()).await.unwrap();
    assert_eq!(store.put("k1", "v1b".into()).await.unwrap(), 3);
    let st = status(&ctx, "TTL").await;
    assert_eq!(
        (st.bucket(), st.values(), st.history(), st.max_age()),
        ("TTL", 2, 1, Duration::from_secs(1)),
        "history 1 keeps one value per key"
    );
    assert_eq!(store.get("k1").await.unwrap(), Some(Bytes::from("v1b")));

    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(store.get("k1").await.unwrap(), None);
    assert_eq!(store.get("k2").await.unwrap(), None);
    assert!(store.entry("k1").await.unwrap().is_none());
    assert_eq!(status(&ctx, "TTL").await.values(), 0);
    let (msgs, bytes, first, last) = counts(&c, "KV_TTL").await;
    assert_eq!((msgs, bytes, first, last), (0, 0, 4, 3));
    // The key is free again: create works, with the next revision.
    assert_eq!(store.create("k1", "fresh".into()).await.unwrap(), 4);
    assert_eq!(store.get("k1").await.unwrap(), Some(Bytes::from("fresh")));

    // A second bucket with defaults: history 1, no TTL.
    let plain = kv_bucket(&ctx, "PLAIN", 1, Duration::ZERO).await;
    plain.put("p", "1".into()).await.unwrap();
    let st = status(&ctx, "PLAIN").await;
    assert_eq!(
        (st.bucket(), st.values(), st.history(), st.max_age()),
        ("PLAIN", 1, 1, Duration::ZERO)
    );
    // Buckets are streams named KV_<bucket> (S6 subject filter).
    let v = ok(api(
        &c,
        "$JS.API.STREAM.NAMES",
        &json!({"subject":"$KV.*.>"}).to_string(),
    )
    .await);
    let mut names: Vec<Value> = v["streams"].as_array().unwrap().clone();
    names.sort_by_key(|v| v.to_string());
    assert_eq!(names, vec![json!("KV_PLAIN"), json!("KV_TTL")], "{v}");
}

/// OS1-OS4: a 5 MiB object in 128 KiB chunks, read back and checked byte
/// for byte and by its SHA-256 digest; info, list, watch, delete, and a
/// link read through.
async fn js_object_store(s: &Server) {
    const SIZE: usize = 5 * 1024 * 1024;
    const CHUNK: usize = 128 * 1024;
    let (c, ctx) = js(s).await;
    let bucket = ctx
        .create_object_store(object_store::Config {
            bucket: "OBJ".into(),
            ..Default::default()
        })
        .await
        .expect("create object store");
    let v = ok(api(&c, "$JS.API.STREAM.INFO.OBJ_OBJ", "").await);
    assert_eq!(
        v["config"]["subjects"],
        json!(["$O.OBJ.C.>", "$O.OBJ.M.>"]),
        "{v}"
    );
    assert_eq!(
        (
            &v["config"]["allow_rollup_hdrs"],
            &v["config"]["allow_direct"],
            &v["config"]["discard"]
        ),
        (&json!(true), &json!(true), &json!("new")),
        "{v}"
    );
    let mut watch = bucket.watch().await.expect("watch");

    // Put: seeded random bytes, in chunks.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let digest = format!("SHA-256={}", base64url(&sha256(&data)));
    let info = within_for(
        Duration::from_secs(20),
        "put 5 MiB",
        bucket.put(
            ObjectMetadata {
                name: "big.bin".into(),
                description: Some("five MiB".into()),
                chunk_size: Some(CHUNK),
                ..Default::default()
            },
            &mut data.as_slice(),
        ),
    )
    .await
    .expect("put");
    assert_eq!(info.size, SIZE);
    assert_eq!(info.digest.as_deref(), Some(digest.as_str()));
    let chunks = info.chunks;
    assert!(
        chunks >= SIZE / CHUNK,
        "{chunks} chunks of at most {CHUNK} bytes"
    );
    // One message per chunk plus the meta message.
    assert_eq!(counts(&c, "OBJ_OBJ").await.0, chunks as u64 + 1);
    let w = within("watch put", watch.next()).await.unwrap().unwrap();
    assert_eq!(
        (w.name.as_str(), w.size, w.deleted),
        ("big.bin", SIZE, false)
    );

    // Info: the last message on the meta subject.
    let i = bucket.info("big.bin").await.expect("info");
    assert_eq!(
        (
            i.name.as_str(),
            i.size,
            i.chunks,
            i.deleted,
            i.bucket.as_str()
        ),
        ("big.bin", SIZE, chunks, false, "OBJ")
    );
    assert_eq!(i.description.as_deref(), Some("five MiB"));
    assert_eq!(i.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(i.nuid, info.nuid);
    assert!(i.modified.is_some());

    // Get: every byte back (the reader also checks the digest).
    let mut obj = bucket.get("big.bin").await.expect("get");
    assert_eq!(obj.info().digest.as_deref(), Some(digest.as_str()));
    let mut back = Vec::with_capacity(SIZE);
    within_for(
        Duration::from_secs(20),
        "read 5 MiB",
        obj.read_to_end(&mut back),
    )
    .await
    .expect("read");
    assert_eq!(back.len(), SIZE);
    assert!(back == data, "object bytes differ");
    assert_eq!(sha256(&back), sha256(&data));

    // A small object and a link to the big one.
    let small = bucket
        .put("small.txt", &mut &b"hello object"[..])
        .await
        .expect("put small");
    assert_eq!((small.size, small.chunks), (12, 1));
    let w = within("watch put", watch.next()).await.unwrap().unwrap();
    assert_eq!(w.name, "small.txt");
    let link = bucket.add_link("link", &i).await.expect("add link");
    let target = link
        .options
        .as_ref()
        .and_then(|o| o.link.as_ref())
        .expect("link options");
    assert_eq!(
        (target.bucket.as_str(), target.name.as_deref()),
        ("OBJ", Some("big.bin"))
    );
    let w = within("watch link", watch.next()).await.unwrap().unwrap();
    assert_eq!(w.name, "link");
    let mut through = bucket.get("link").await.expect("get through link");
    let mut back = Vec::with_capacity(SIZE);
    within_for(
        Duration::from_secs(20),
        "read through link",
        through.read_to_end(&mut back),
    )
    .await
    .expect("read link");
    assert!(back == data, "bytes read through the link differ");

    // List: every live object.
    let names: BTreeSet<String> = within("list", async {
        bucket
            .list()
            .await
            .unwrap()
            .map_ok(|i| i.name)
            .try_collect()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(
        names,
        BTreeSet::from(["big.bin".into(), "small.txt".into(), "link".into()])
    );

    // Delete: a deleted meta (rollup), the chunks purged.
    let before = counts(&c, "OBJ_OBJ").await.0;
    bucket.delete("small.txt").await.expect("delete");
    let w = within("watch delete", watch.next()).await.unwrap().unwrap();
    assert_eq!((w.name.as_str(), w.deleted), ("small.txt", true));
    assert_eq!(
        counts(&c, "OBJ_OBJ").await.0,
        before - 1,
        "the chunk is purged, the meta replaced"
    );
    let gone = bucket.info("small.txt").await.expect("info of deleted");
    assert!(
        gone.deleted && gone.size == 0 && gone.chunks == 0,
        "{gone:?}"
    );
    let err = bucket.get("small.txt").await.expect_err("deleted");
    assert_eq!(err.kind(), object_store::GetErrorKind::NotFound, "{err}");
    let names: BTreeSet<String> = within("list", async {
        bucket
            .list()
            .await
            .unwrap()
            .map_ok(|i| i.name)
            .try_collect()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(names, BTreeSet::from(["big.bin".into(), "link".into()]));
    // Replacing an object purges its old chunks.
    let before = counts(&c, "OBJ_OBJ").await.0;
    let re = bucket
        .put("big.bin", &mut &b"small now"[..])
        .await
        .expect("replace");
    assert_ne!(re.nuid, info.nuid);
    assert_eq!(
        counts(&c, "OBJ_OBJ").await.0,
        before - chunks as u64 + 1,
        "old chunks purged, one new chunk, meta replaced"
    );
    let mut obj = bucket.get("big.bin").await.unwrap();
    let mut back = Vec::new();
    within("read", obj.read_to_end(&mut back)).await.unwrap();
    assert_eq!(back, b"small now");
}

// ---------------------------------------------------------------------------
// SHA-256 and base64url, as async-nats writes the digest (`SHA-256=<b64url>`).

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// base64url with padding.
fn base64url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE.encode(b)
}

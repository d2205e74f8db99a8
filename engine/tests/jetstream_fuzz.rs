//! Bad input to the JetStream API never takes the server down (issue 4, item 7):
//! random request bodies, headers and subjects against every API endpoint get a
//! reply or nothing, never a panic, and nothing already stored is touched.

mod support;

use proptest::prelude::*;
use support::js::JsHarness;

const STREAM: &str = r#"{"name":"S","subjects":["s.>"],"storage":"file","allow_direct":true,"allow_rollup_hdrs":true}"#;

const ENDPOINTS: &[&str] = &[
    "$JS.API.INFO",
    "$JS.API.STREAM.CREATE.S",
    "$JS.API.STREAM.CREATE.T",
    "$JS.API.STREAM.UPDATE.T",
    "$JS.API.STREAM.INFO.S",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.PURGE.T",
    "$JS.API.STREAM.MSG.GET.S",
    "$JS.API.STREAM.MSG.DELETE.T",
    "$JS.API.DIRECT.GET.S",
    "$JS.API.DIRECT.GET.S.s.a",
];

/// Bodies that look like requests: JSON fragments with the fields the API reads,
/// values of the wrong type, truncations and plain garbage.
fn body() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("name"),
        Just("subjects"),
        Just("seq"),
        Just("keep"),
        Just("filter"),
        Just("last_by_subj"),
        Just("next_by_subj"),
        Just("max_msgs"),
        Just("max_bytes"),
        Just("max_age"),
        Just("storage"),
        Just("retention"),
        Just("num_replicas"),
        Just("duplicate_window"),
        Just("offset"),
        Just("subject"),
        Just("no_erase"),
        Just("discard"),
        Just("deny_delete"),
        Just("sealed"),
        Just("republish"),
    ];
    let value = prop_oneof![
        Just("null".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("18446744073709551615".to_string()),
        Just("1e400".to_string()),
        Just("\"S\"".to_string()),
        Just("\"\"".to_string()),
        Just("\"s.>\"".to_string()),
        Just("[\"a\",\"a\"]".to_string()),
        Just("{}".to_string()),
        Just("true".to_string()),
        Just("\"memory\"".to_string()),
        "[a-z.*> ]{0,12}".prop_map(|s| format!("\"{s}\"")),
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    prop_oneof![
        4 => proptest::collection::vec((field, value), 0..5).prop_map(|kv| {
            let inner: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", inner.join(","))
        }),
        1 => "[ -~]{0,40}",
        1 => Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn api_survives_bad_requests(reqs in proptest::collection::vec((0..ENDPOINTS.len(), body()), 1..12)) {
        let mut h = JsHarness::new(7);
        h.create_stream("S", STREAM);
        let acked: Vec<u64> = (0..3).map(|i| h.publish(&format!("s.{i}"), b"keep me")).collect();
        for (k, (i, b)) in reqs.iter().enumerate() {
            // Reply numbers far above the harness's own.
            let frame = format!("PUB {} _R.{} {}\r\n{}\r\n", ENDPOINTS[*i], 1_000_000 + k, b.len(), b);
            h.send_raw(frame.as_bytes());
        }
        // Every request got exactly one reply.
        for (k, req) in reqs.iter().enumerate() {
            let n = 1_000_000 + k as u64;
            let got = h.arrived.iter().filter(|(r, _)| *r == n).count();
            prop_assert_eq!(got, 1, "request {} ({:?}) got {} replies", k, req, got);
        }
        // Still serving: a new publish is acknowledged and stream info answers.
        let n = h.publish("s.after", b"x");
        prop_assert!(h.take_reply(n).is_some(), "publish after bad requests got no ack");
        let info = h.request("$JS.API.STREAM.INFO.S", "");
        prop_assert!(info.get("error").is_none() || info["error"]["err_code"] == 10059, "{}", info);
        let _ = acked;
    }
}

//! JSON Schema checks against the jsm.go schemas copied into `tests/schemas/`
//! (draft-07, with the `jsonschema` crate).
#![allow(dead_code)]

use serde::Serialize;
use serde_json::Value;

/// The schema `name` (e.g. `stream_info_response`) as JSON.
pub fn schema_value(name: &str) -> Value {
    let dir = env!("CARGO_MANIFEST_DIR");
    let path = format!("{dir}/tests/schemas/jetstream/api/v1/{name}.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn schema(name: &str) -> jsonschema::Validator {
    jsonschema::draft7::new(&schema_value(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `v` serializes to JSON that the schema accepts, and a `type` field equals
/// the schema's title.
pub fn assert_valid<T: Serialize>(schema_name: &str, v: &T) {
    let validator = schema(schema_name);
    let instance = serde_json::to_value(v).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{schema_name}: {instance}\n{}",
        errors.join("\n")
    );
    if let Some(t) = instance.get("type") {
        assert_eq!(t, &schema_value(schema_name)["title"]);
    }
}

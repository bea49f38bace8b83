//! Canonical JSON: the specification's examples, the escapes of its
//! grammar, the bounds, and properties against an independent encoder.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::consts::{MAX_CANONICAL_JSON_DEPTH, MAX_CANONICAL_JSON_LEN};
use crate::matrix::{CanonicalJsonError, MAX_SAFE_INTEGER, canonical_json};

fn canonical_text(input: &str) -> Result<String, CanonicalJsonError> {
    canonical_json(&serde_json::from_str(input).unwrap())
}

#[test]
fn specification_examples() {
    let cases = [
        ("{}", "{}"),
        (r#"{ "one": 1, "two": "Two" }"#, r#"{"one":1,"two":"Two"}"#),
        (r#"{ "b": "2", "a": "1" }"#, r#"{"a":"1","b":"2"}"#),
        (r#"{"b":"2","a":"1"}"#, r#"{"a":"1","b":"2"}"#),
        (
            r#"{
                "auth": {
                    "success": true,
                    "mxid": "@john.doe:example.com",
                    "profile": {
                        "display_name": "John Doe",
                        "three_pids": [
                            { "medium": "email", "address": "john.doe@example.org" },
                            { "medium": "msisdn", "address": "123456789" }
                        ]
                    }
                }
            }"#,
            r#"{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}"#,
        ),
        (r#"{ "a": "日本語" }"#, r#"{"a":"日本語"}"#),
        (r#"{ "本": 2, "日": 1 }"#, r#"{"日":1,"本":2}"#),
        (r#"{ "a": "\u65E5" }"#, r#"{"a":"日"}"#),
        (r#"{ "a": null }"#, r#"{"a":null}"#),
        (r#"{ "a": -0, "b": 1e10 }"#, r#"{"a":0,"b":10000000000}"#),
    ];
    for (input, expected) in cases {
        assert_eq!(canonical_text(input).unwrap(), expected, "input {input}");
    }
}

#[test]
fn escapes_follow_the_grammar() {
    // Short escapes where the grammar has them, lowercase \u00XX for the
    // other controls, everything else (DEL, U+2028, astral) unescaped.
    let value = json!({
        "s": "\"\\\u{8}\t\n\u{c}\r\u{0}\u{1f}\u{b}\u{7f}\u{2028}😀/"
    });
    assert_eq!(
        canonical_json(&value).unwrap(),
        "{\"s\":\"\\\"\\\\\\b\\t\\n\\f\\r\\u0000\\u001f\\u000b\u{7f}\u{2028}😀/\"}"
    );
    // Keys sort by code point, not by UTF-16 unit: U+FFFD before U+1F600.
    let value = json!({ "😀": 1, "\u{fffd}": 2, "a": 3, "B": 4 });
    assert_eq!(
        canonical_json(&value).unwrap(),
        "{\"B\":4,\"a\":3,\"\u{fffd}\":2,\"😀\":1}"
    );
}

#[test]
fn numbers_outside_canonical_json_are_errors() {
    assert_eq!(
        canonical_text("[1.5]"),
        Err(CanonicalJsonError::NotAnInteger)
    );
    assert_eq!(
        canonical_text("[-0.25]"),
        Err(CanonicalJsonError::NotAnInteger)
    );
    assert_eq!(
        canonical_text("[1e-3]"),
        Err(CanonicalJsonError::NotAnInteger)
    );
    let max = MAX_SAFE_INTEGER;
    assert_eq!(
        canonical_text(&format!("[{max}]")).unwrap(),
        format!("[{max}]")
    );
    assert_eq!(
        canonical_text(&format!("[-{max}]")).unwrap(),
        format!("[-{max}]")
    );
    for too_big in [
        format!("[{}]", max + 1),
        format!("[-{}]", max + 1),
        format!("[{}]", u64::MAX),
        format!("[{}]", i64::MIN),
        "[1e300]".to_owned(),
        "[-1e16]".to_owned(),
        "[123456789012345678901234567890]".to_owned(),
    ] {
        assert_eq!(
            canonical_text(&too_big),
            Err(CanonicalJsonError::IntegerOutOfRange),
            "{too_big}"
        );
    }
}

fn nested(depth: usize) -> Value {
    let mut value = json!(0);
    for i in 0..depth {
        value = if i % 2 == 0 {
            json!([value])
        } else {
            json!({ "k": value })
        };
    }
    value
}

#[test]
fn nesting_is_bounded() {
    assert!(canonical_json(&nested(MAX_CANONICAL_JSON_DEPTH)).is_ok());
    assert_eq!(
        canonical_json(&nested(MAX_CANONICAL_JSON_DEPTH + 1)),
        Err(CanonicalJsonError::TooDeep {
            max: MAX_CANONICAL_JSON_DEPTH
        })
    );
    // Far deeper than the parser would allow (built in memory): still a
    // typed error, not a stack overflow.
    assert!(matches!(
        canonical_json(&nested(1_000)),
        Err(CanonicalJsonError::TooDeep { .. })
    ));
}

#[test]
fn size_is_bounded() {
    let too_large = Err(CanonicalJsonError::TooLarge {
        max: MAX_CANONICAL_JSON_LEN,
    });
    // Exactly at the bound: a string of len - 2 bytes plus its quotes.
    let fits = Value::String("x".repeat(MAX_CANONICAL_JSON_LEN - 2));
    assert_eq!(canonical_json(&fits).unwrap().len(), MAX_CANONICAL_JSON_LEN);
    let over = Value::String("x".repeat(MAX_CANONICAL_JSON_LEN - 1));
    assert_eq!(canonical_json(&over), too_large);
    // Escapes count: 11,000 control characters take 66,000 bytes.
    assert_eq!(canonical_json(&json!("\u{1}".repeat(11_000))), too_large);
    // A huge object or array is refused before it is sorted or walked.
    let object: serde_json::Map<String, Value> =
        (0..1_000_000).map(|i| (i.to_string(), json!(0))).collect();
    assert_eq!(canonical_json(&Value::Object(object)), too_large);
    assert_eq!(
        canonical_json(&Value::Array(vec![json!(0); 1_000_000])),
        too_large
    );
}

/// Integer-only JSON of any shape, with any string (controls included).
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// For integer-only values, canonical JSON is serde_json's compact
    /// output with sorted keys (an independent encoder), it parses back to
    /// the same value, and encoding is idempotent.
    #[test]
    fn agrees_with_an_independent_encoder(value in arb_json()) {
        let ours = canonical_json(&value).unwrap();
        prop_assert_eq!(&ours, &serde_json::to_string(&value).unwrap());
        let back: Value = serde_json::from_str(&ours).unwrap();
        prop_assert_eq!(&back, &value);
        prop_assert_eq!(canonical_json(&back).unwrap(), ours);
    }

    /// Whitespace and member order in the input never change the output.
    #[test]
    fn independent_of_layout(value in arb_json()) {
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let reparsed: Value = serde_json::from_str(&pretty).unwrap();
        prop_assert_eq!(canonical_json(&reparsed).unwrap(), canonical_json(&value).unwrap());
    }

    /// Any float with a fractional part is refused, wherever it sits.
    #[test]
    fn fractions_are_refused(f in any::<f64>().prop_filter("fractional", |f| f.is_finite() && f.fract() != 0.0)) {
        let value = json!({ "a": [1, { "b": f }] });
        prop_assert_eq!(canonical_json(&value), Err(CanonicalJsonError::NotAnInteger));
    }

    /// Arbitrary text that parses as JSON never makes the encoder panic.
    #[test]
    fn never_panics_on_parsed_text(text in "[\\[\\]{}:,\"0-9a-z.eE+\\- ]{0,64}") {
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            let _ = canonical_json(&value);
        }
    }
}

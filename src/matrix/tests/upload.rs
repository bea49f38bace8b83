//! `/keys/upload` bodies built from an account: shapes, key ids, and
//! signatures that verify over canonical JSON.

use serde_json::{Value, json};

use super::TestDevice;
use crate::matrix::{
    Device, KeysUploadRequest, KeysUploadResponse, MEGOLM_V1, OLM_V1, OneTimeKey, verify_json,
};

fn object(value: &impl serde::Serialize) -> serde_json::Map<String, Value> {
    match serde_json::to_value(value).unwrap() {
        Value::Object(o) => o,
        _ => unreachable!(),
    }
}

#[test]
fn upload_body_is_signed_and_shaped_as_the_spec_says() {
    let mut alice = TestDevice::new("@alice:example.org", "JLAFKJWSCS");
    alice.account.generate_one_time_keys(3);
    alice.account.rotate_fallback_key(0);
    let body =
        KeysUploadRequest::from_account(&alice.account, &alice.user, &alice.device, true).unwrap();
    let identity = alice.account.identity_keys();

    let text = serde_json::to_value(&body).unwrap();
    let keys = &text["device_keys"];
    assert_eq!(keys["user_id"], "@alice:example.org");
    assert_eq!(keys["device_id"], "JLAFKJWSCS");
    assert_eq!(keys["algorithms"], json!([OLM_V1, MEGOLM_V1]));
    assert_eq!(
        keys["keys"]["ed25519:JLAFKJWSCS"],
        identity.ed25519.to_base64()
    );
    assert_eq!(
        keys["keys"]["curve25519:JLAFKJWSCS"],
        identity.curve25519.to_base64()
    );
    assert!(keys.get("unsigned").is_none());

    // The device keys check out as a downloaded device would.
    let device =
        Device::from_signed_object(&alice.user, &alice.device, keys.as_object().unwrap()).unwrap();
    assert_eq!(device.keys(), identity);

    // Key ids: base64 of the account's 64-bit ids; three one-time keys, one
    // fallback key flagged as such, each signed by the device.
    let names: Vec<&String> = body.one_time_keys.keys().collect();
    assert_eq!(
        names,
        [
            "signed_curve25519:AAAAAAAAAAA",
            "signed_curve25519:AAAAAAAAAAE",
            "signed_curve25519:AAAAAAAAAAI"
        ]
    );
    assert_eq!(body.fallback_keys.len(), 1);
    let (name, fallback) = body.fallback_keys.iter().next().unwrap();
    assert_eq!(name, "signed_curve25519:AAAAAAAAAAM");
    assert!(fallback.fallback);
    assert_eq!(text["fallback_keys"][name]["fallback"], true);
    for key in body
        .one_time_keys
        .values()
        .chain(body.fallback_keys.values())
    {
        verify_json(
            &object(key),
            alice.user.as_str(),
            &alice.key_id(),
            &identity.ed25519,
        )
        .unwrap();
    }
    // One-time keys do not carry the flag at all (the spec's example form).
    assert!(
        text["one_time_keys"]["signed_curve25519:AAAAAAAAAAA"]
            .get("fallback")
            .is_none()
    );
    // Flipping the fallback flag breaks the signature.
    let mut flipped = object(body.one_time_keys.values().next().unwrap());
    flipped.insert("fallback".into(), json!(true));
    assert!(
        verify_json(
            &flipped,
            alice.user.as_str(),
            &alice.key_id(),
            &identity.ed25519
        )
        .is_err()
    );
}

#[test]
fn published_keys_are_not_uploaded_again() {
    let mut bob = TestDevice::new("@bob:example.org", "BOB");
    bob.account.generate_one_time_keys(2);
    let handed_out = bob.account.one_time_keys();
    bob.account.mark_keys_as_published(&handed_out);
    let body =
        KeysUploadRequest::from_account(&bob.account, &bob.user, &bob.device, false).unwrap();
    assert!(body.is_empty());
    assert_eq!(serde_json::to_string(&body).unwrap(), "{}");
}

#[test]
fn upload_response() {
    let r: KeysUploadResponse =
        serde_json::from_str(r#"{"one_time_key_counts": {"signed_curve25519": 20}, "x": 1}"#)
            .unwrap();
    assert_eq!(
        r.one_time_key_counts.check("a").unwrap()["signed_curve25519"],
        20
    );
    assert!(
        serde_json::from_str::<KeysUploadResponse>(r#"{"one_time_key_counts": {"a": -1}}"#)
            .is_err()
    );
    let _: OneTimeKey = serde_json::from_value(json!({
        "key": "zKbLg+NrIjpnagy+pIY6uPL4ZwEG2v+8F9lmgsnlZzs",
        "signatures": {}
    }))
    .unwrap();
}

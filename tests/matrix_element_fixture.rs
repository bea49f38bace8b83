//! roomseal's Matrix layer reading what Element's engine publishes, without
//! Node: `tests/element/fixtures/element-keys-upload.json` is a `/keys/upload`
//! body recorded from `@matrix-org/matrix-sdk-crypto-wasm` (vodozemac signs
//! it), re-recorded with `node tests/element/tools/record-fixture.mjs`.
//! Every signature in it must verify through roomseal's canonical JSON, as
//! downloaded devices and as claimed keys; any change must not.

use roomseal::Account;
use roomseal::matrix::{
    Device, DeviceId, DeviceKeysError, DeviceTracker, OneTimeKeyError, SignatureError, UserId,
    keys_claim_requests, receive_keys_claim_json, verify_json,
};
use serde_json::{Map, Value, json};

const FIXTURE: &str = include_str!("element/fixtures/element-keys-upload.json");

fn upload() -> Value {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    fixture["keys_upload"].clone()
}

fn element() -> (UserId, DeviceId) {
    (
        UserId::parse("@element:memory").unwrap(),
        DeviceId::parse("ELEMENT").unwrap(),
    )
}

fn object(value: &Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// A roomseal tracker that has downloaded Element's device.
fn tracker() -> DeviceTracker {
    let account = Account::new();
    let mut tracker = DeviceTracker::new(
        UserId::parse("@roomseal:memory").unwrap(),
        DeviceId::parse("ROOMSEAL").unwrap(),
        account.identity_keys(),
    );
    let (user, _) = element();
    tracker.track_users([&user]);
    let query = tracker.keys_query().unwrap();
    let mut device = object(&upload()["device_keys"]);
    device.insert(
        "unsigned".into(),
        json!({ "device_display_name": "Element Web" }),
    );
    let response = json!({ "device_keys": { "@element:memory": { "ELEMENT": device } } });
    let outcome = tracker
        .receive_keys_query_json(&query, &response.to_string())
        .unwrap();
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert_eq!(outcome.new_devices.len(), 1);
    tracker
}

#[test]
fn element_device_keys_verify() {
    let (user, device_id) = element();
    let keys = upload()["device_keys"].clone();
    let device = Device::from_signed_object(&user, &device_id, &object(&keys)).unwrap();
    assert_eq!(
        device.keys().ed25519.to_base64(),
        keys["keys"]["ed25519:ELEMENT"].as_str().unwrap()
    );
    assert_eq!(
        device.keys().curve25519.to_base64(),
        keys["keys"]["curve25519:ELEMENT"].as_str().unwrap()
    );
    assert!(device.supports("m.olm.v1.curve25519-aes-sha2"));
    let tracker = tracker();
    let tracked = tracker.device(&user, &device_id).unwrap();
    assert_eq!(tracked.display_name(), Some("Element Web"));

    // Any change to a signed member breaks the signature.
    for (path, value) in [
        ("algorithms", json!(["m.megolm.v1.aes-sha2"])),
        ("extra", json!(1)),
    ] {
        let mut changed = object(&keys);
        changed.insert(path.into(), value);
        assert_eq!(
            Device::from_signed_object(&user, &device_id, &changed),
            Err(DeviceKeysError::Signature(SignatureError::Invalid))
        );
    }
}

#[test]
fn element_one_time_and_fallback_keys_verify_when_claimed() {
    let tracker = tracker();
    let (user, device_id) = element();
    let ed25519 = tracker.device(&user, &device_id).unwrap().keys().ed25519;
    let request = keys_claim_requests(tracker.devices(&user)).remove(0);
    let body = upload();
    let one_time: Vec<(&String, &Value)> =
        body["one_time_keys"].as_object().unwrap().iter().collect();
    let fallback: Vec<(&String, &Value)> =
        body["fallback_keys"].as_object().unwrap().iter().collect();
    assert_eq!(one_time.len(), 5);
    assert_eq!(fallback.len(), 1);
    for (name, key, is_fallback) in one_time
        .iter()
        .map(|(n, k)| (n, k, false))
        .chain(fallback.iter().map(|(n, k)| (n, k, true)))
    {
        verify_json(&object(key), user.as_str(), "ed25519:ELEMENT", &ed25519).unwrap();
        let response =
            json!({ "one_time_keys": { "@element:memory": { "ELEMENT": { *name: key } } } });
        let outcome = receive_keys_claim_json(&tracker, &request, &response.to_string()).unwrap();
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        assert_eq!(outcome.keys.len(), 1);
        let claimed = &outcome.keys[0];
        assert_eq!(claimed.fallback, is_fallback);
        assert_eq!(format!("signed_curve25519:{}", claimed.key_id), **name);
        assert_eq!(claimed.key.to_base64(), key["key"].as_str().unwrap());

        // The same key with its fallback flag flipped is refused.
        let mut flipped = object(key);
        flipped.insert("fallback".into(), json!(!is_fallback));
        let response =
            json!({ "one_time_keys": { "@element:memory": { "ELEMENT": { *name: flipped } } } });
        let outcome = receive_keys_claim_json(&tracker, &request, &response.to_string()).unwrap();
        assert_eq!(
            outcome.rejected[0].error,
            OneTimeKeyError::Signature(SignatureError::Invalid)
        );
    }
}

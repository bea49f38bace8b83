//! Claimed one-time keys: checked against the tracked device's Ed25519 key,
//! one per device, every bad item refused on its own.

use serde_json::{Value, json};

use super::{TestDevice, device, tracker_knowing, user};
use crate::consts::MAX_KEYS_CLAIM_DEVICES;
use crate::matrix::{
    Device, DeviceTracker, JsonError, KeysUploadRequest, OneTimeKeyError, SignatureError,
    keys_claim_requests, receive_keys_claim_json,
};

/// Alice's tracker knowing Bob's two devices.
fn setup() -> (DeviceTracker, TestDevice, TestDevice) {
    let alice = TestDevice::new("@alice:a.org", "PHONE");
    let mut bob1 = TestDevice::new("@bob:b.org", "BOB1");
    let mut bob2 = TestDevice::new("@bob:b.org", "BOB2");
    let tracker = tracker_knowing(&alice, &[&alice, &bob1, &bob2]);
    for d in [&mut bob1, &mut bob2] {
        d.account.generate_one_time_keys(2);
        d.account.rotate_fallback_key(0);
    }
    (tracker, bob1, bob2)
}

/// `{name: key}` for a device's first published one-time key (or its
/// fallback key), as `/keys/upload` carried it.
fn published(d: &TestDevice, fallback: bool) -> (String, Value) {
    let body = KeysUploadRequest::from_account(&d.account, &d.user, &d.device, false).unwrap();
    let keys = if fallback {
        &body.fallback_keys
    } else {
        &body.one_time_keys
    };
    let (name, key) = keys.iter().next().unwrap();
    (name.clone(), serde_json::to_value(key).unwrap())
}

#[test]
fn keys_verify_against_the_known_device() {
    let (tracker, bob1, bob2) = setup();
    let devices: Vec<_> = tracker.devices(&bob1.user).collect();
    let requests = keys_claim_requests(devices);
    assert_eq!(requests.len(), 1);
    assert_eq!(
        serde_json::to_value(&requests[0]).unwrap(),
        json!({ "one_time_keys": { "@bob:b.org": {
            "BOB1": "signed_curve25519", "BOB2": "signed_curve25519" } } })
    );
    let (n1, k1) = published(&bob1, false);
    let (n2, k2) = published(&bob2, true);
    let response = json!({ "one_time_keys": { "@bob:b.org": {
        "BOB1": { n1.clone(): k1 }, "BOB2": { n2: k2 } } }, "failures": {} });
    let outcome = receive_keys_claim_json(&tracker, &requests[0], &response.to_string()).unwrap();
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert!(outcome.missing.is_empty());
    assert_eq!(outcome.keys.len(), 2);
    let first = &outcome.keys[0];
    assert_eq!(first.device.device_id(), &bob1.device);
    assert_eq!(n1, format!("signed_curve25519:{}", first.key_id));
    assert!(!first.fallback);
    assert!(outcome.keys[1].fallback);
    assert_eq!(first.key, bob1.account.one_time_keys()[0].key);
}

#[test]
fn bad_keys_are_refused_one_by_one() {
    let (tracker, bob1, bob2) = setup();
    let requests = keys_claim_requests(tracker.devices(&bob1.user));
    let (name, good) = published(&bob1, false);
    // BOB2's key presented as BOB1's: signed by the wrong device.
    let (_, other_device) = published(&bob2, false);
    let mut forged = good.clone();
    forged["key"] = other_device["key"].clone();
    let mut flagged = good.clone();
    flagged["fallback"] = json!(true);
    let mut unsigned = good.clone();
    unsigned.as_object_mut().unwrap().remove("signatures");
    let sig = |e| OneTimeKeyError::Signature(e);
    let cases = [
        (
            json!({ name.clone(): other_device }),
            sig(SignatureError::Missing),
        ),
        (
            json!({ name.clone(): forged }),
            sig(SignatureError::Invalid),
        ),
        (
            json!({ name.clone(): flagged }),
            sig(SignatureError::Invalid),
        ),
        (
            json!({ name.clone(): unsigned }),
            sig(SignatureError::Missing),
        ),
        (
            json!({ "curve25519:AAAA": good.clone() }),
            OneTimeKeyError::WrongAlgorithm,
        ),
        (
            json!({ "signed_curve25519AAAA": good.clone() }),
            OneTimeKeyError::WrongAlgorithm,
        ),
        (
            json!({ name.clone(): "a plain string key" }),
            OneTimeKeyError::Malformed(JsonError::NOT_AN_OBJECT),
        ),
        (
            json!({ name.clone(): { "key": 5 } }),
            OneTimeKeyError::Malformed(JsonError::NOT_AN_OBJECT),
        ),
        (
            json!([1, 2]),
            OneTimeKeyError::Malformed(JsonError::Shape { line: 1, column: 1 }),
        ),
    ];
    for (keys, expected) in cases {
        let response = json!({ "one_time_keys": { "@bob:b.org": { "BOB1": keys } } });
        let outcome =
            receive_keys_claim_json(&tracker, &requests[0], &response.to_string()).unwrap();
        assert!(outcome.keys.is_empty());
        assert_eq!(outcome.rejected.len(), 1, "{expected:?}");
        let got = match outcome.rejected[0].error {
            OneTimeKeyError::Malformed(JsonError::Shape { .. }) => {
                OneTimeKeyError::Malformed(JsonError::NOT_AN_OBJECT)
            }
            other => other,
        };
        let expected = match expected {
            OneTimeKeyError::Malformed(JsonError::Shape { .. }) => {
                OneTimeKeyError::Malformed(JsonError::NOT_AN_OBJECT)
            }
            other => other,
        };
        assert_eq!(got, expected);
        assert_eq!(outcome.missing.len(), 2);
    }
}

#[test]
fn unrequested_unknown_and_duplicate_keys() {
    let (tracker, bob1, bob2) = setup();
    // Ask for BOB1 only.
    let requests = keys_claim_requests(tracker.device(&bob1.user, &bob1.device));
    let (n1, k1) = published(&bob1, false);
    let (nf, kf) = published(&bob1, true);
    let (n2, k2) = published(&bob2, false);
    let response = json!({ "one_time_keys": {
        "@bob:b.org": { "BOB1": { n1: k1, nf: kf }, "BOB2": { n2: k2 } },
        "@carol:c.org": { "C": {} },
        "bad": { "X": {} },
    } });
    let outcome = receive_keys_claim_json(&tracker, &requests[0], &response.to_string()).unwrap();
    assert_eq!(outcome.keys.len(), 1);
    let mut errors: Vec<_> = outcome.rejected.iter().map(|r| r.error).collect();
    errors.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        errors,
        [
            OneTimeKeyError::Duplicate,
            OneTimeKeyError::InvalidId,
            OneTimeKeyError::NotRequested,
            OneTimeKeyError::NotRequested
        ]
    );

    // A device the tracker does not know (for example removed meanwhile).
    let stranger = TestDevice::new("@bob:b.org", "NEW");
    let mut request = requests[0].clone();
    request
        .one_time_keys
        .get_mut(&bob1.user)
        .unwrap()
        .insert(stranger.device.clone(), "signed_curve25519".into());
    let response = json!({ "one_time_keys": { "@bob:b.org": { "NEW": {} } } });
    let outcome = receive_keys_claim_json(&tracker, &request, &response.to_string()).unwrap();
    assert_eq!(outcome.rejected[0].error, OneTimeKeyError::UnknownDevice);
    assert_eq!(outcome.missing.len(), 2);
}

#[test]
fn hostile_claim_responses() {
    let (tracker, bob1, _) = setup();
    let requests = keys_claim_requests(tracker.devices(&bob1.user));
    for text in [
        "",
        "5",
        r#"{"one_time_keys": []}"#,
        r#"{"one_time_keys": {"@b:b": 1}}"#,
    ] {
        assert!(
            receive_keys_claim_json(&tracker, &requests[0], text).is_err(),
            "{text}"
        );
    }
    let devices: serde_json::Map<String, Value> = (0..=MAX_KEYS_CLAIM_DEVICES)
        .map(|i| (format!("D{i}"), json!({})))
        .collect();
    let text = json!({ "one_time_keys": { "@bob:b.org": devices } }).to_string();
    assert!(matches!(
        receive_keys_claim_json(&tracker, &requests[0], &text),
        Err(JsonError::TooMany { .. })
    ));
    // Requests are split at the bound.
    let keys = tracker.own_device().keys();
    let many: Vec<_> = (0..=MAX_KEYS_CLAIM_DEVICES)
        .map(|i| Device::own(user("@u:x"), device(&format!("D{i}")), keys))
        .collect();
    let split = keys_claim_requests(&many);
    assert_eq!(split.len(), 2);
    assert_eq!(split[0].device_count(), MAX_KEYS_CLAIM_DEVICES);
    assert_eq!(split[1].device_count(), 1);
}

//! The device tracker: applying `/keys/query` responses, refusing every
//! kind of bad device on its own, and the in-flight races.

use serde_json::{Value, json};

use super::{TestDevice, query_response, tracker_knowing, user};
use crate::consts::{MAX_DEVICES_PER_USER, MAX_JSON_ITEM_LEN, MAX_KEYS_QUERY_USERS};
use crate::matrix::{
    DeviceKeysError, DeviceTracker, JsonError, KeysQuery, KeysQueryOutcome, SignatureError,
};

fn tracker_for(own: &TestDevice) -> DeviceTracker {
    DeviceTracker::new(
        own.user.clone(),
        own.device.clone(),
        own.account.identity_keys(),
    )
}

fn apply(tracker: &mut DeviceTracker, query: &KeysQuery, response: &str) -> KeysQueryOutcome {
    tracker.receive_keys_query_json(query, response).unwrap()
}

fn errors(outcome: &KeysQueryOutcome) -> Vec<(Option<String>, DeviceKeysError)> {
    outcome
        .rejected
        .iter()
        .map(|r| (r.device_id.clone(), r.error))
        .collect()
}

#[test]
fn first_query_learns_own_and_peer_devices() {
    let alice = TestDevice::new("@alice:a.org", "PHONE");
    let alice_laptop = TestDevice::new("@alice:a.org", "LAPTOP");
    let bob = TestDevice::new("@bob:b.org", "BOB1");
    let mut tracker = tracker_for(&alice);
    assert_eq!(tracker.outdated_users().collect::<Vec<_>>(), [&alice.user]);
    tracker.track_users([&bob.user]);
    let query = tracker.keys_query().unwrap();
    assert_eq!(query.body.device_keys.len(), 2);
    assert!(query.body.device_keys.values().all(Vec::is_empty));

    let outcome = apply(
        &mut tracker,
        &query,
        &query_response(&[&alice, &alice_laptop, &bob]),
    );
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert_eq!(outcome.new_devices.len(), 2, "own device was known already");
    assert_eq!(outcome.updated_users.len(), 2);
    assert!(tracker.keys_query().is_none());
    let found = tracker.device(&bob.user, &bob.device).unwrap();
    assert_eq!(found.keys(), bob.account.identity_keys());
    assert_eq!(
        tracker.device_by_curve25519(&bob.account.identity_keys().curve25519),
        Some(found)
    );
    assert_eq!(tracker.devices(&alice.user).count(), 2);
}

#[test]
fn each_bad_device_is_refused_on_its_own() {
    let alice = TestDevice::new("@alice:a.org", "PHONE");
    let bob = TestDevice::new("@bob:b.org", "GOOD");
    let bob2 = TestDevice::new("@bob:b.org", "GOOD2");
    let mallory = TestDevice::new("@mallory:m.org", "GOOD");

    // A forged signature: Bob's object with Mallory's curve key swapped in.
    let mut forged = bob.keys_json();
    forged["keys"]["curve25519:GOOD"] =
        json!(mallory.account.identity_keys().curve25519.to_base64());
    // Signed by Mallory but filed under Bob's signing key name.
    let mut resigned = bob.keys_json();
    resigned.remove("signatures");
    mallory.sign(&mut resigned);
    resigned["signatures"] = json!({ "@bob:b.org": { "ed25519:GOOD":
        resigned["signatures"]["@mallory:m.org"]["ed25519:GOOD"].clone() } });
    let mut unsigned = bob.keys_json();
    unsigned.remove("signatures");
    let mut no_ed = bob.keys_json();
    no_ed["keys"]
        .as_object_mut()
        .unwrap()
        .remove("ed25519:GOOD");
    let mut bad_curve = bob.keys_json();
    bad_curve["keys"]["curve25519:GOOD"] = json!("AAAA");
    let mut weak_ed = bob.keys_json();
    weak_ed["keys"]["ed25519:GOOD"] = json!(crate::keys::base64_encode(&[0; 32]));
    let mut wrong_types = bob.keys_json();
    wrong_types["algorithms"] = json!("m.olm.v1.curve25519-aes-sha2");

    let shape = || DeviceKeysError::Malformed(JsonError::Shape { line: 0, column: 0 });
    let cases: Vec<(&str, Value, DeviceKeysError)> = vec![
        // Mallory's device filed under Bob: claims another user's keys.
        (
            "GOOD",
            Value::Object(mallory.keys_json()),
            DeviceKeysError::UserIdMismatch,
        ),
        // Bob's real keys filed under another device id.
        (
            "OTHER",
            Value::Object(bob.keys_json()),
            DeviceKeysError::DeviceIdMismatch,
        ),
        (
            "GOOD",
            Value::Object(forged),
            DeviceKeysError::Signature(SignatureError::Invalid),
        ),
        (
            "GOOD",
            Value::Object(resigned),
            DeviceKeysError::Signature(SignatureError::Invalid),
        ),
        (
            "GOOD",
            Value::Object(unsigned),
            DeviceKeysError::Signature(SignatureError::Missing),
        ),
        (
            "GOOD",
            Value::Object(no_ed),
            DeviceKeysError::MissingKey("ed25519"),
        ),
        (
            "GOOD",
            Value::Object(weak_ed),
            DeviceKeysError::MissingKey("ed25519"),
        ),
        (
            "GOOD",
            Value::Object(bad_curve),
            DeviceKeysError::MissingKey("curve25519"),
        ),
        ("GOOD", Value::Object(wrong_types), shape()),
        ("GOOD", json!(5), shape()),
        ("GOOD", json!({}), shape()),
        ("GOOD", json!({ "user_id": 1 }), shape()),
        (
            "",
            Value::Object(bob.keys_json()),
            DeviceKeysError::InvalidId,
        ),
    ];
    for (listed_as, object, expected) in cases {
        let mut tracker = tracker_for(&alice);
        tracker.track_users([&bob.user]);
        let query = tracker.keys_query().unwrap();
        // Each bad device sits beside a good one, which is still learned.
        let response = json!({ "device_keys": { "@bob:b.org": {
            listed_as: object,
            "GOOD2": Value::Object(bob2.keys_json()),
        } } });
        let outcome = apply(&mut tracker, &query, &response.to_string());
        let got = errors(&outcome);
        assert_eq!(got.len(), 1, "{listed_as}: {got:?}");
        let error = match got[0].1 {
            DeviceKeysError::Malformed(JsonError::Shape { .. }) => shape(),
            other => other,
        };
        assert_eq!(error, expected, "listed as {listed_as}");
        assert_eq!(outcome.new_devices.len(), 1);
        assert_eq!(outcome.new_devices[0].device_id(), &bob2.device);
        assert!(tracker.device(&bob.user, &bob.device).is_none());
    }

    // Users not asked about, and keys that are not user ids, are refused.
    let mut tracker = tracker_for(&alice);
    let query = tracker.keys_query().unwrap();
    let response = json!({ "device_keys": {
        "@carol:c.org": { "X": Value::Object(bob.keys_json()) },
        "not a user": {},
    } });
    let outcome = apply(&mut tracker, &query, &response.to_string());
    assert_eq!(
        errors(&outcome),
        [
            (None, DeviceKeysError::NotRequested),
            (None, DeviceKeysError::NotRequested)
        ]
    );
    assert!(!tracker.is_tracked(&user("@carol:c.org")));
}

#[test]
fn a_device_never_changes_keys() {
    let alice = TestDevice::new("@alice:a.org", "PHONE");
    let bob = TestDevice::new("@bob:b.org", "BOB1");
    let impostor = TestDevice::new("@bob:b.org", "BOB1");
    let mut tracker = tracker_knowing(&alice, &[&alice, &bob]);

    // The server swaps in new, validly self-signed keys for the same id.
    tracker.mark_outdated(&bob.user);
    let q = tracker.keys_query().unwrap();
    let outcome = apply(&mut tracker, &q, &query_response(&[&impostor]));
    assert_eq!(
        errors(&outcome),
        [(Some("BOB1".into()), DeviceKeysError::KeysChanged)]
    );
    assert!(outcome.removed_devices.is_empty());
    assert_eq!(
        tracker.device(&bob.user, &bob.device).unwrap().keys(),
        bob.account.identity_keys()
    );

    // Our own device listed with another key is refused differently.
    let fake_me = TestDevice::new("@alice:a.org", "PHONE");
    tracker.mark_outdated(&alice.user);
    let q = tracker.keys_query().unwrap();
    let outcome = apply(&mut tracker, &q, &query_response(&[&fake_me]));
    assert_eq!(
        errors(&outcome),
        [(Some("PHONE".into()), DeviceKeysError::NotOurKeys)]
    );
    assert_eq!(tracker.own_device().keys(), alice.account.identity_keys());
}

#[test]
fn removed_devices_and_users_without_devices() {
    let alice = TestDevice::new("@alice:a.org", "PHONE");
    let bob1 = TestDevice::new("@bob:b.org", "BOB1");
    let bob2 = TestDevice::new("@bob:b.org", "BOB2");
    let mut tracker = tracker_knowing(&alice, &[&alice, &bob1, &bob2]);

    // Bob logs out BOB2: his list changes, the query no longer has it.
    tracker.receive_device_lists(std::slice::from_ref(&bob1.user), &[]);
    let q = tracker.keys_query().unwrap();
    assert_eq!(q.body.device_keys.len(), 1);
    let outcome = apply(&mut tracker, &q, &query_response(&[&bob1]));
    assert_eq!(outcome.removed_devices.len(), 1);
    assert_eq!(outcome.removed_devices[0].device_id(), &bob2.device);

    // Bob's server answers but lists nothing: he has no devices left.
    tracker.mark_outdated(&bob1.user);
    let q = tracker.keys_query().unwrap();
    let outcome = apply(&mut tracker, &q, r#"{"device_keys": {}}"#);
    assert_eq!(outcome.removed_devices.len(), 1);
    assert_eq!(tracker.devices(&bob1.user).count(), 0);

    // Our own device is never removed, even by an empty answer.
    tracker.mark_outdated(&alice.user);
    let q = tracker.keys_query().unwrap();
    apply(&mut tracker, &q, "{}");
    assert_eq!(tracker.devices(&alice.user).count(), 1);

    // Left users are forgotten; the own user cannot be.
    tracker.receive_device_lists(&[], &[bob1.user.clone(), alice.user.clone()]);
    assert!(!tracker.is_tracked(&bob1.user));
    assert!(tracker.is_tracked(&alice.user));
}

#[test]
fn unreachable_servers_keep_users_outdated() {
    let alice = TestDevice::new("@alice:a.org", "PHONE");
    let bob = TestDevice::new("@bob:b.org", "BOB1");
    let mut tracker = tracker_for(&alice);
    tracker.track_users([&bob.user]);
    let q = tracker.keys_query().unwrap();
    let response = json!({
        "device_keys": { "@alice:a.org": { "PHONE": Value::Object(alice.keys_json()) } },
        "failures": { "b.org": { "errcode": "M_UNREACHABLE" } }
    });
    let outcome = apply(&mut tracker, &q, &response.to_string());
    assert_eq!(outcome.unreachable_servers, ["b.org"]);
    assert_eq!(tracker.outdated_users().collect::<Vec<_>>(), [&bob.user]);
}

#[test]
fn in_flight_races_are_safe() {
    let alice = TestDevice::new("@alice:a.org", "PHONE");
    let bob1 = TestDevice::new("@bob:b.org", "BOB1");
    let bob2 = TestDevice::new("@bob:b.org", "BOB2");
    let mut tracker = tracker_for(&alice);
    tracker.track_users([&bob1.user]);
    let first = tracker.keys_query().unwrap();
    // Bob's devices change while the first query is in flight.
    tracker.mark_outdated(&bob1.user);
    let second = tracker.keys_query().unwrap();

    // The first answer does not clear the newer mark.
    apply(&mut tracker, &first, &query_response(&[&alice, &bob1]));
    assert_eq!(tracker.outdated_users().collect::<Vec<_>>(), [&bob1.user]);
    // The second answer does; then the first, arriving again late, is
    // ignored rather than undoing it.
    apply(
        &mut tracker,
        &second,
        &query_response(&[&alice, &bob1, &bob2]),
    );
    assert!(tracker.keys_query().is_none());
    let late = apply(&mut tracker, &first, &query_response(&[&alice, &bob1]));
    assert!(late.removed_devices.is_empty());
    assert_eq!(tracker.devices(&bob1.user).count(), 2);
}

#[test]
fn hostile_responses() {
    let alice = TestDevice::new("@alice:a.org", "PHONE");
    let mut tracker = tracker_for(&alice);
    let q = tracker.keys_query().unwrap();
    for text in [
        "",
        "[]",
        "nul",
        r#"{"device_keys": []}"#,
        r#"{"device_keys": {"@alice:a.org": 5}}"#,
        r#"{"failures": 3}"#,
        &"[".repeat(10_000),
    ] {
        assert!(
            tracker.receive_keys_query_json(&q, text).is_err(),
            "{text:.40}"
        );
    }
    // Unknown fields anywhere are fine.
    let outcome = apply(
        &mut tracker,
        &q,
        r#"{"device_keys": {}, "master_keys": {"x": 1}, "new": [1.5]}"#,
    );
    assert!(outcome.rejected.is_empty());

    // Too many users: refused whole, nothing allocated per extra user.
    let users: serde_json::Map<String, Value> = (0..=MAX_KEYS_QUERY_USERS)
        .map(|i| (format!("@u{i}:x"), json!({})))
        .collect();
    let text = json!({ "device_keys": users }).to_string();
    assert_eq!(
        tracker.receive_keys_query_json(&q, &text),
        Err(JsonError::TooMany {
            what: "users",
            max: MAX_KEYS_QUERY_USERS
        })
    );

    // Too many devices for one user: that user refused, nothing kept.
    tracker.mark_outdated(&alice.user);
    let q = tracker.keys_query().unwrap();
    let devices: serde_json::Map<String, Value> = (0..=MAX_DEVICES_PER_USER)
        .map(|i| (format!("D{i}"), json!({})))
        .collect();
    let text = json!({ "device_keys": { "@alice:a.org": devices } }).to_string();
    let outcome = apply(&mut tracker, &q, &text);
    assert_eq!(errors(&outcome), [(None, DeviceKeysError::TooManyDevices)]);
    assert_eq!(tracker.devices(&alice.user).count(), 1);

    // One oversized device: that device refused.
    tracker.mark_outdated(&alice.user);
    let q = tracker.keys_query().unwrap();
    let mut big = alice.keys_json();
    big.insert("padding".into(), json!("x".repeat(MAX_JSON_ITEM_LEN)));
    let text = json!({ "device_keys": { "@alice:a.org": { "PHONE": big } } }).to_string();
    let outcome = apply(&mut tracker, &q, &text);
    assert_eq!(
        errors(&outcome),
        [(
            Some("PHONE".into()),
            DeviceKeysError::Malformed(JsonError::TooLarge {
                what: "device keys",
                max: MAX_JSON_ITEM_LEN
            })
        )]
    );
    // Unknown fields inside a device are covered by its signature, and a
    // device with them verifies (the object is checked as received).
    let mut extended = alice.keys_json();
    extended.insert("org.example.extra".into(), json!({ "n": [1, 2] }));
    extended.remove("signatures");
    alice.sign(&mut extended);
    tracker.mark_outdated(&alice.user);
    let q = tracker.keys_query().unwrap();
    let text = json!({ "device_keys": { "@alice:a.org": { "PHONE": extended } } }).to_string();
    assert!(apply(&mut tracker, &q, &text).rejected.is_empty());
}

//! Sync processing: each to-device event on its own, device lists, key
//! counts, and hostile syncs.

use serde_json::json;

use crate::consts::{MAX_JSON_ITEM_LEN, MAX_KEY_ALGORITHMS, MAX_TO_DEVICE_EVENTS};
use crate::matrix::{EventError, JsonError, SyncChanges, ToDeviceContent};

const CURVE: &str = "3C5BFWi2Y8MaVvjM8M22DBmh24PmgR0nPvJOIArzgyI";

#[test]
fn a_full_sync_is_read_and_the_rest_ignored() {
    let sync = json!({
        "next_batch": "s72595_4483_1934",
        "rooms": { "join": { "!r:x": { "timeline": { "events": [{ "big": [1.5, {"deep": []}] }] } } } },
        "presence": { "events": [] },
        "to_device": { "events": [
            { "sender": "@alice:a.org", "type": "m.room.encrypted", "content": {
                "algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": CURVE,
                "ciphertext": { CURVE: { "type": 0, "body": "AwoQ" } } } },
            { "sender": "@alice:a.org", "type": "m.room_key.withheld", "content": {
                "algorithm": "m.megolm.v1.aes-sha2", "room_id": "!r:x", "session_id": "S",
                "sender_key": CURVE, "code": "m.unverified", "reason": "Unverified", "from_device": "X" } },
            { "sender": "@alice:a.org", "type": "m.key.verification.request", "content": { "x": 1 } },
            { "sender": "@alice:a.org", "type": "m.room_key", "content": { "session_key": "leak?" } },
            { "sender": "@alice:a.org", "type": "m.forwarded_room_key", "content": {} },
            { "sender": "not-a-user", "type": "m.dummy", "content": {} },
            { "sender": "@alice:a.org", "type": "m.room.encrypted", "content": {
                "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x", "session_id": "s" } },
            { "sender": "@alice:a.org", "type": "m.room.encrypted", "content": {
                "algorithm": "org.example.new", "ciphertext": "x" } },
            { "sender": "@alice:a.org", "type": "m.room.encrypted", "content": {
                "algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": CURVE,
                "ciphertext": { CURVE: { "type": 2, "body": "AwoQ" } } } },
            "not an event",
        ] },
        "device_lists": { "changed": ["@bob:b.org", "bogus"], "left": ["@carol:c.org"] },
        "device_one_time_keys_count": { "signed_curve25519": 20, "other": 3 },
        "device_unused_fallback_key_types": ["signed_curve25519"],
    });
    let changes = SyncChanges::from_json(&sync.to_string()).unwrap();
    assert_eq!(changes.to_device.len(), 3);
    let ToDeviceContent::Olm(olm) = &changes.to_device[0].content else {
        panic!()
    };
    let me = crate::Curve25519PublicKey::from_base64(CURVE).unwrap();
    assert_eq!(olm.ciphertext_for(&me).unwrap().body, "AwoQ");
    let ToDeviceContent::RoomKeyWithheld(w) = &changes.to_device[1].content else {
        panic!()
    };
    assert_eq!(w.code.as_str(), "m.unverified");
    assert!(matches!(
        changes.to_device[2].content,
        ToDeviceContent::Other(_)
    ));
    let rejected: Vec<_> = changes
        .rejected_events
        .iter()
        .map(|r| (r.index, r.error))
        .collect();
    let shape = |e: EventError| matches!(e, EventError::Malformed(JsonError::Shape { .. }));
    assert_eq!(rejected[0], (3, EventError::Unencrypted));
    assert_eq!(rejected[1], (4, EventError::Unencrypted));
    assert!(rejected[2].0 == 5 && shape(rejected[2].1));
    assert_eq!(rejected[3], (6, EventError::UnsupportedAlgorithm));
    assert_eq!(rejected[4], (7, EventError::UnsupportedAlgorithm));
    assert!(rejected[5].0 == 8 && shape(rejected[5].1));
    assert!(rejected[6].0 == 9 && shape(rejected[6].1));
    assert_eq!(changes.changed_users.len(), 1);
    assert_eq!(changes.left_users.len(), 1);
    assert_eq!(changes.invalid_user_ids, 1);
    assert_eq!(changes.one_time_key_count, 20);
    assert_eq!(
        changes.unused_fallback_key_types.as_deref(),
        Some(&["signed_curve25519".to_owned()][..])
    );
}

#[test]
fn missing_members_have_their_specified_meaning() {
    let changes = SyncChanges::from_json(r#"{"next_batch": "s"}"#).unwrap();
    assert!(changes.to_device.is_empty());
    assert_eq!(changes.one_time_key_count, 0, "absent count means zero");
    assert_eq!(changes.unused_fallback_key_types, None, "not reported");
    let changes = SyncChanges::from_json(r#"{"device_unused_fallback_key_types": []}"#).unwrap();
    assert_eq!(changes.unused_fallback_key_types, Some(vec![]));
    let nulls = r#"{"to_device": null, "device_lists": null, "device_one_time_keys_count": null}"#;
    assert!(SyncChanges::from_json(nulls).is_ok());
}

#[test]
fn hostile_syncs() {
    for text in [
        "",
        "[]",
        r#"{"to_device": {"events": {}}}"#,
        r#"{"device_lists": {"changed": "@a:b"}}"#,
        r#"{"device_one_time_keys_count": {"signed_curve25519": -1}}"#,
        r#"{"device_one_time_keys_count": {"signed_curve25519": 1.5}}"#,
        r#"{"device_one_time_keys_count": {"signed_curve25519": 1e400}}"#,
        r#"{"device_unused_fallback_key_types": [1]}"#,
    ] {
        assert!(SyncChanges::from_json(text).is_err(), "{text}");
    }
    // Deep nesting in the parts that are skipped costs no recursion; in a
    // content that is parsed it is refused with that event only.
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let text = format!(
        r#"{{"rooms": {deep}, "to_device": {{"events": [
            {{"sender": "@a:b", "type": "m.room.encrypted", "content": {{"algorithm": {deep}}}}}]}}}}"#
    );
    let changes = SyncChanges::from_json(&text).unwrap();
    assert!(matches!(
        changes.rejected_events[0].error,
        EventError::Malformed(_)
    ));

    let events: Vec<_> = (0..=MAX_TO_DEVICE_EVENTS).map(|_| json!({})).collect();
    let text = json!({ "to_device": { "events": events } }).to_string();
    assert_eq!(
        SyncChanges::from_json(&text).unwrap_err(),
        JsonError::TooMany {
            what: "to-device events",
            max: MAX_TO_DEVICE_EVENTS
        }
    );
    let types: Vec<_> = (0..=MAX_KEY_ALGORITHMS).map(|i| i.to_string()).collect();
    let text = json!({ "device_unused_fallback_key_types": types }).to_string();
    assert!(matches!(
        SyncChanges::from_json(&text),
        Err(JsonError::TooMany { .. })
    ));

    // One oversized event is refused on its own.
    let big =
        json!({ "sender": "@a:b", "type": "x", "content": { "p": "x".repeat(MAX_JSON_ITEM_LEN) } });
    let small = json!({ "sender": "@a:b", "type": "x", "content": {} });
    let text = json!({ "to_device": { "events": [big, small] } }).to_string();
    let changes = SyncChanges::from_json(&text).unwrap();
    assert_eq!(changes.to_device.len(), 1);
    assert_eq!(
        changes.rejected_events[0].error,
        EventError::Malformed(JsonError::TooLarge {
            what: "to-device event",
            max: MAX_JSON_ITEM_LEN
        })
    );
}

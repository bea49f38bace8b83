//! Every entry point that takes what a server sent, fed arbitrary text and
//! arbitrary JSON in the right places: never a panic, always a value or a
//! typed error.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{TestDevice, tracker_knowing};
use crate::matrix::{
    EncryptedContent, KeysUploadResponse, MegolmPayload, OlmPayload, RoomId, SyncChanges,
    keys_claim_requests, receive_keys_claim_json,
};

/// Any JSON value, floats and huge numbers included.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[@!$a-zA-Z0-9:._ ]{0,24}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("signatures".to_owned()),
                    Just("keys".to_owned()),
                    Just("ed25519:PHONE".to_owned()),
                    Just("@alice:a.org".to_owned()),
                    Just("signed_curve25519:AAAA".to_owned()),
                    "[a-z_:@.]{0,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn all_entry_points(text: &str) {
    let _ = SyncChanges::from_json(text);
    let _ = EncryptedContent::from_json(text);
    let _ = OlmPayload::from_json(text);
    let _ = MegolmPayload::from_json_in_room(text, &RoomId::parse("!r:x").unwrap());
    let _ = serde_json::from_str::<KeysUploadResponse>(text);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text(text in "\\PC{0,200}") {
        all_entry_points(&text);
    }

    #[test]
    fn arbitrary_json(value in arb_json()) {
        all_entry_points(&value.to_string());
    }

    /// Arbitrary values where the sync's members and a to-device event's
    /// fields go.
    #[test]
    fn arbitrary_sync_members(
        events in prop::collection::vec(arb_json(), 0..4),
        content in arb_json(),
        lists in arb_json(),
        counts in arb_json(),
    ) {
        let mut events = events;
        events.push(json!({ "sender": "@a:b", "type": "m.room.encrypted", "content": content }));
        let sync = json!({
            "to_device": { "events": events },
            "device_lists": lists,
            "device_one_time_keys_count": counts,
        });
        let _ = SyncChanges::from_json(&sync.to_string());
    }

    /// Arbitrary device objects and claimed keys in otherwise well-formed
    /// responses: refused item by item, the tracker's real devices kept.
    #[test]
    fn arbitrary_devices_and_keys(device in arb_json(), key in arb_json()) {
        let alice = TestDevice::new("@alice:a.org", "PHONE");
        let bob = TestDevice::new("@bob:b.org", "BOB");
        let mut tracker = tracker_knowing(&alice, &[&alice, &bob]);
        tracker.mark_outdated(&bob.user);
        let query = tracker.keys_query().unwrap();
        let response = json!({ "device_keys": { "@bob:b.org": {
            "BOB": Value::Object(bob.keys_json()), "OTHER": device } } });
        let outcome = tracker.receive_keys_query_json(&query, &response.to_string()).unwrap();
        prop_assert!(outcome.new_devices.len() <= 1);
        prop_assert!(tracker.device(&bob.user, &bob.device).is_some());

        let request = keys_claim_requests(tracker.devices(&bob.user)).remove(0);
        let response = json!({ "one_time_keys": { "@bob:b.org": {
            "BOB": { "signed_curve25519:AAAA": key.clone() }, "OTHER": key } } });
        let outcome = receive_keys_claim_json(&tracker, &request, &response.to_string()).unwrap();
        prop_assert!(outcome.keys.is_empty(), "nothing valid was signed");
    }
}

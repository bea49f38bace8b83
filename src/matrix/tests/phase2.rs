//! The Matrix endpoint with the ciphers: to-device receive (each bad item
//! refused on its own, changing nothing), wedged sessions, rotation by
//! time, sender checks on room events, and the quotas.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use serde_json::{Value, json};

use super::server::{Client, Server};
use crate::PickleKey;
use crate::matrix::{
    ProcessedToDevice, RoomEncryptionContent, RoomEventError, RoomId, ToDeviceError, UserId,
};
use crate::room::{Clock, Limits, RotationReason};

const ROOM: &str = "!r:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";

/// A clock the test moves.
#[derive(Debug, Default)]
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Alice and Bob, each knowing the other's device, in one room.
fn pair() -> (Server, Client, Client) {
    let mut server = Server::default();
    let mut alice = Client::new(ALICE, "ALICE");
    let mut bob = Client::new(BOB, "BOB");
    server.join(ROOM, ALICE);
    server.join(ROOM, BOB);
    alice.pump(&mut server);
    bob.pump(&mut server);
    for c in [&mut alice, &mut bob] {
        c.ep.update_tracked_users(&server.member_ids(ROOM));
        c.pump(&mut server);
    }
    (server, alice, bob)
}

fn room() -> RoomId {
    RoomId::parse(ROOM).unwrap()
}

/// The endpoint's pickle with a fixed nonce: equal text, equal state.
fn snapshot(client: &Client) -> String {
    let key = PickleKey::from_bytes(&mut [7; 32]);
    client
        .ep
        .pickle_with_rng(&key, &mut ChaCha20Rng::seed_from_u64(1))
}

#[test]
fn hostile_to_device_items_are_refused_one_by_one_and_change_nothing() {
    let (mut server, mut alice, mut bob) = pair();
    alice.share(&mut server, ROOM);
    let genuine: Value = serde_json::from_str(&server.sync(BOB, "BOB")).unwrap();
    let good = genuine["to_device"]["events"][0].clone();
    let own_key = bob.ep.identity_keys().curve25519.to_base64();
    let alice_key = alice.ep.identity_keys().curve25519.to_base64();
    let mut forged_sender = good.clone();
    forged_sender["sender"] = json!("@mallory:example.org");
    let mut from_self = good.clone();
    from_self["content"]["sender_key"] = json!(own_key);
    let mut not_for_us = good.clone();
    let body = good["content"]["ciphertext"][&own_key].clone();
    not_for_us["content"]["ciphertext"] = json!({ alice_key.clone(): body });
    let mut flipped = good.clone();
    let text = good["content"]["ciphertext"][&own_key]["body"]
        .as_str()
        .unwrap();
    let mut chars: Vec<char> = text.chars().collect();
    let at = chars.len() - 10;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    flipped["content"]["ciphertext"][&own_key]["body"] =
        json!(chars.into_iter().collect::<String>());
    let hostile = vec![
        json!(42),
        json!({"type": "m.room.encrypted"}),
        json!({"type": "m.room.encrypted", "sender": ALICE, "content": {"algorithm": 7}}),
        json!({"type": "m.room.encrypted", "sender": ALICE, "content": {
            "algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": "not a key", "ciphertext": {}}}),
        json!({"type": "m.room.encrypted", "sender": "not a user", "content": {}}),
        json!({"type": "m.room_key", "sender": ALICE, "content": {"room_id": ROOM}}),
        json!({"type": "m.room.encrypted", "sender": ALICE, "content": {
            "algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": alice_key,
            "ciphertext": {own_key.clone(): {"type": 0, "body": "x".repeat(100_000)}}}}),
        forged_sender,
        from_self,
        not_for_us,
        flipped,
    ];
    let count = hostile.len();
    // The key counts as the server reports them, in every sync below (a
    // sync records them: that is not the events' doing).
    let counts = |events: Value| {
        json!({
            "device_one_time_keys_count": genuine["device_one_time_keys_count"],
            "device_unused_fallback_key_types": genuine["device_unused_fallback_key_types"],
            "to_device": {"events": events},
        })
        .to_string()
    };
    bob.ep.receive_sync_changes(&counts(json!([]))).unwrap();
    for (i, item) in hostile.iter().enumerate() {
        let before = snapshot(&bob);
        let sync = counts(json!([item]));
        let outcome = bob.ep.receive_sync_changes(&sync).unwrap();
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(
            snapshot(&bob),
            before,
            "item {i} ({:?}) changed the state",
            outcome.rejected[0].error
        );
    }
    let before = snapshot(&bob);
    let sync = counts(json!(hostile.clone()));
    let outcome = bob.ep.receive_sync_changes(&sync).unwrap();
    assert!(outcome.to_device.is_empty(), "{:?}", outcome.to_device);
    assert_eq!(outcome.rejected.len(), count);
    let indices: Vec<usize> = outcome.rejected.iter().map(|r| r.index).collect();
    assert_eq!(indices, (0..count).collect::<Vec<_>>());
    assert!(
        outcome
            .rejected
            .iter()
            .any(|r| r.error == ToDeviceError::FromOwnDevice)
    );
    assert!(
        outcome
            .rejected
            .iter()
            .any(|r| r.error == ToDeviceError::NotForThisDevice)
    );
    assert_eq!(snapshot(&bob), before, "bad events changed nothing");

    // The genuine event among the same hostile ones is taken.
    let mut mixed = hostile;
    mixed.insert(3, good.clone());
    let sync = counts(json!(mixed));
    let outcome = bob.ep.receive_sync_changes(&sync).unwrap();
    assert_eq!(outcome.to_device.len(), 1);
    assert_eq!(outcome.to_device[0].0, 3);
    assert!(matches!(
        outcome.to_device[0].1,
        ProcessedToDevice::RoomKey(_)
    ));
    assert_eq!(outcome.rejected.len(), count);
    // Delivered twice: refused the second time, nothing changes.
    let before = snapshot(&bob);
    let sync = counts(json!([good]));
    let outcome = bob.ep.receive_sync_changes(&sync).unwrap();
    assert_eq!(outcome.rejected.len(), 1);
    assert_eq!(snapshot(&bob), before);
}

/// A normal Olm message from Alice to Bob with its MAC broken: it decodes,
/// and no session reads it.
fn broken_message(server: &mut Server, alice: &mut Client, bob: &Client) -> Value {
    alice.ep.rotate_room_key(&room());
    alice.share(server, ROOM);
    let sync: Value = serde_json::from_str(&server.sync(BOB, "BOB")).unwrap();
    let mut event = sync["to_device"]["events"][0].clone();
    let own_key = bob.ep.identity_keys().curve25519.to_base64();
    assert_eq!(event["content"]["ciphertext"][&own_key]["type"], 1);
    let body = event["content"]["ciphertext"][&own_key]["body"]
        .as_str()
        .unwrap();
    let mut chars: Vec<char> = body.chars().collect();
    let at = chars.len() - 3;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    event["content"]["ciphertext"][&own_key]["body"] = json!(chars.into_iter().collect::<String>());
    event
}

#[test]
fn a_wedged_session_is_replaced_with_a_dummy_at_most_once_an_hour() {
    let (mut server, mut alice, mut bob) = pair();
    let clock = Arc::new(TestClock::default());
    clock.0.store(1_000_000, Ordering::SeqCst);
    bob.ep.set_clock(clock.clone());
    alice.share(&mut server, ROOM);
    bob.sync(&mut server);
    bob.share(&mut server, ROOM);
    alice.sync(&mut server);
    let alice_id = UserId::parse(ALICE).unwrap();
    assert!(
        bob.ep.keys_claim_request([&alice_id]).is_none(),
        "a working session"
    );
    let event = broken_message(&mut server, &mut alice, &bob);
    let sync = json!({"to_device": {"events": [event]}}).to_string();
    let outcome = bob.ep.receive_sync_changes(&sync).unwrap();
    assert!(matches!(
        outcome.rejected[..],
        [crate::matrix::RejectedToDevice {
            error: ToDeviceError::Decryption(_),
            ..
        }]
    ));
    // Bob never started a session with Alice himself: claim at once.
    let claim = bob
        .ep
        .keys_claim_request([&alice_id])
        .expect("a new session");
    bob.answer(&mut server, &claim);
    // The m.dummy on the new session goes out with the next requests.
    bob.pump(&mut server);
    let outcome = alice.sync(&mut server);
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert!(
        outcome
            .to_device
            .iter()
            .any(|(_, p)| matches!(p, ProcessedToDevice::Dummy { .. }))
    );
    // Wedged again: rate-limited within the hour, allowed after it.
    let event = broken_message(&mut server, &mut alice, &bob);
    let sync = json!({"to_device": {"events": [event]}}).to_string();
    assert_eq!(
        bob.ep.receive_sync_changes(&sync).unwrap().rejected.len(),
        1
    );
    assert!(bob.ep.keys_claim_request([&alice_id]).is_none());
    clock.0.fetch_add(
        crate::consts::MATRIX_NEW_SESSION_INTERVAL_MS,
        Ordering::SeqCst,
    );
    assert!(bob.ep.keys_claim_request([&alice_id]).is_some());
}

#[test]
fn the_room_key_rotates_by_time_and_by_count_per_the_room_settings() {
    let (mut server, mut alice, mut bob) = pair();
    let clock = Arc::new(TestClock::default());
    clock.0.store(5_000, Ordering::SeqCst);
    alice.ep.set_clock(clock.clone());
    let settings = RoomEncryptionContent {
        rotation_period_ms: Some(60_000),
        rotation_period_msgs: Some(3),
        ..RoomEncryptionContent::megolm()
    };
    alice.ep.set_room_encryption(&room(), settings);
    let first = alice.share(&mut server, ROOM);
    assert!(!first.rotated);
    for i in 0..3 {
        alice.send(&mut server, ROOM, &format!("{i}"));
    }
    let content = serde_json::value::to_raw_value(&json!({})).unwrap();
    assert!(matches!(
        alice
            .ep
            .encrypt_room_event(&room(), "m.room.message", &content),
        Err(RoomEventError::ShareRequired(RotationReason::MessageLimit))
    ));
    let second = alice.share(&mut server, ROOM);
    assert_eq!(second.rotation_reason, Some(RotationReason::MessageLimit));
    clock.0.fetch_add(60_000, Ordering::SeqCst);
    let third = alice.share(&mut server, ROOM);
    assert_eq!(third.rotation_reason, Some(RotationReason::AgeLimit));
    assert_ne!(second.session_id, third.session_id);
    bob.sync(&mut server);
    alice.send(&mut server, ROOM, "after");
    let event = server.timeline[ROOM].last().unwrap().to_string();
    assert!(bob.ep.decrypt_room_event_json(&room(), &event).is_ok());
}

#[test]
fn an_event_whose_sender_does_not_own_the_session_is_refused() {
    let (mut server, mut alice, mut bob) = pair();
    alice.send(&mut server, ROOM, "hi");
    bob.sync(&mut server);
    let mut event = server.timeline[ROOM].last().unwrap().clone();
    event["sender"] = json!(BOB);
    assert_eq!(
        bob.ep
            .decrypt_room_event_json(&room(), &event.to_string())
            .unwrap_err(),
        RoomEventError::SenderMismatch
    );
    event["sender"] = json!(ALICE);
    event["room_id"] = json!("!elsewhere:example.org");
    assert_eq!(
        bob.ep
            .decrypt_room_event_json(&room(), &event.to_string())
            .unwrap_err(),
        RoomEventError::RoomMismatch
    );
    event["room_id"] = json!(ROOM);
    let clear = bob
        .ep
        .decrypt_room_event_json(&room(), &event.to_string())
        .unwrap();
    assert!(clear.authenticated);
    assert!(clear.sender_device_confirmed);
}

#[test]
fn quotas_bound_room_keys_and_replay_records() {
    let (mut server, mut alice, mut bob) = pair();
    bob.ep.set_limits(Limits {
        room_keys: 2,
        room_keys_per_sender: 2,
        replay_records: 5,
        ..Limits::default()
    });
    for i in 0..4 {
        alice.ep.rotate_room_key(&room());
        alice.send(&mut server, ROOM, &format!("{i}"));
    }
    let outcome = bob.sync(&mut server);
    assert!(
        outcome.rejected.is_empty()
            || outcome
                .rejected
                .iter()
                .all(|r| matches!(r.error, ToDeviceError::RoomKey(_)))
    );
    assert!(bob.ep.room_keys().len() <= 2);
    for i in 0..10 {
        alice.send(&mut server, ROOM, &format!("more {i}"));
    }
    bob.sync(&mut server);
    for event in &server.timeline[ROOM] {
        let _ = bob.ep.decrypt_room_event_json(&room(), &event.to_string());
    }
    assert!(bob.ep.replay_records() <= 5);
}

#[test]
fn hostile_room_events_get_typed_errors_and_change_nothing() {
    let (mut server, mut alice, mut bob) = pair();
    let genuine = alice.send(&mut server, ROOM, "hello");
    bob.sync(&mut server);
    let mut cases: Vec<String> = vec![
        String::new(),
        "[]".into(),
        "{".into(),
        json!({"event_id": "$x"}).to_string(),
        "x".repeat(70_000),
    ];
    for (path, value) in [
        ("algorithm", json!("m.olm.v1.curve25519-aes-sha2")),
        ("algorithm", json!(5)),
        ("ciphertext", json!("!!!")),
        ("ciphertext", json!("")),
        ("session_id", json!("AAAA")),
        ("session_id", json!(null)),
    ] {
        let mut event = genuine.clone();
        event["content"][path] = value;
        cases.push(event.to_string());
    }
    let mut event = genuine.clone();
    event["event_id"] = json!("");
    cases.push(event.to_string());
    let mut event = genuine.clone();
    event["sender"] = json!("not a user");
    cases.push(event.to_string());
    let before = snapshot(&bob);
    for case in &cases {
        assert!(
            bob.ep.decrypt_room_event_json(&room(), case).is_err(),
            "{case:.80}"
        );
    }
    assert_eq!(snapshot(&bob), before);
    assert!(
        bob.ep
            .decrypt_room_event_json(&room(), &genuine.to_string())
            .is_ok()
    );
}

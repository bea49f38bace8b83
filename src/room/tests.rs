use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use super::limits::Limits;
use super::*;
use crate::{Curve25519PublicKey, DeviceMessage, PickleKey, SelfSignedDevice};

const ROOM: &str = "!room:example.org";

#[derive(Debug, Default)]
struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A device and what it published.
fn device(user: &str, id: &str) -> (Endpoint, KeysToPublish) {
    let mut endpoint = Endpoint::new(user, id).unwrap();
    let keys = endpoint.keys_to_publish(5);
    endpoint.mark_keys_as_published(&keys);
    (endpoint, keys)
}

fn verified(keys: &KeysToPublish) -> SelfSignedDevice {
    keys.device_keys.check_self_signature().unwrap()
}

/// `a` claims one of `b`'s one-time keys and starts a session.
fn connect(a: &mut Endpoint, b: &mut KeysToPublish) {
    let otk = b.one_time_keys.pop().unwrap();
    a.establish_session(&b.device_keys, &otk).unwrap();
}

/// Delivers every message of a share from user `sender` to the matching
/// endpoint.
fn deliver(sender: &str, outcome: &RoomKeyShareOutcome, to: &mut [&mut Endpoint]) {
    for m in &outcome.messages {
        let target = to
            .iter_mut()
            .find(|e| e.identity_keys().curve25519 == m.recipient_key)
            .unwrap();
        let received = target
            .receive_device_message(sender, &m.sender_key, &m.message)
            .unwrap();
        assert_eq!(received.room_id, outcome.room_id);
        assert_eq!(received.session_id, outcome.session_id);
        assert_eq!(received.sender_user_id, sender);
    }
}

fn state(endpoint: &Endpoint) -> String {
    use rand::SeedableRng;
    endpoint.pickle_with_rng(
        &PickleKey::from_bytes(&mut [9; 32]),
        &mut rand::rngs::ChaCha20Rng::from_seed([1; 32]),
    )
}

#[test]
fn share_chat_leave_rotate_and_late_join() {
    let (mut alice, _alice_keys) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    let (mut carol, mut carol_keys) = device("@carol:x", "C1");
    connect(&mut alice, &mut bob_keys);
    connect(&mut alice, &mut carol_keys);
    let members = [verified(&bob_keys), verified(&carol_keys)];

    let outcome = alice.share_room_key(ROOM, &members).unwrap();
    assert!(!outcome.rotated);
    assert_eq!(outcome.messages.len(), 2);
    assert!(outcome.missing_sessions.is_empty());
    assert!(outcome.messages.iter().all(|m| m.message.is_pre_key()));
    deliver(alice.user_id(), &outcome, &mut [&mut bob, &mut carol]);
    // Until confirmed as sent, the devices are served again.
    assert_eq!(
        alice.share_room_key(ROOM, &members).unwrap().messages.len(),
        2
    );
    assert_eq!(alice.mark_room_key_sent(&outcome), 2);
    // Sharing again sends nothing: everyone has it.
    assert!(
        alice
            .share_room_key(ROOM, &members)
            .unwrap()
            .messages
            .is_empty()
    );

    let event = alice
        .encrypt_event(ROOM, "m.room.message", &json!({"body": "hello"}))
        .unwrap();
    let envelope = EncryptedEvent::from_json(&event.to_json()).unwrap();
    let alice_keys = alice.identity_keys();
    for reader in [&mut bob, &mut carol, &mut alice] {
        let d = reader.decrypt_event(ROOM, "$e1", &envelope).unwrap();
        assert_eq!(d.event_type, "m.room.message");
        assert_eq!(d.content, json!({"body": "hello"}));
        assert!(d.authenticated);
        assert_eq!(d.sender, alice_keys);
        assert_eq!(d.message_index, 0);
    }

    // Carol leaves: the next share rotates and only Bob gets the new key.
    let old_session = outcome.session_id;
    let outcome = alice.share_room_key(ROOM, &members[..1]).unwrap();
    assert!(outcome.rotated);
    assert_ne!(outcome.session_id, old_session);
    assert_eq!(outcome.messages.len(), 1);
    deliver(alice.user_id(), &outcome, &mut [&mut bob]);
    alice.mark_room_key_sent(&outcome);
    let after = alice
        .encrypt_event(ROOM, "m.room.message", &json!({"body": "carol is gone"}))
        .unwrap();
    assert_eq!(
        bob.decrypt_event(ROOM, "$e2", &after).unwrap().content["body"],
        "carol is gone"
    );
    assert_eq!(
        carol.decrypt_event(ROOM, "$e2", &after).unwrap_err(),
        RoomError::UnknownRoomKey
    );

    // Dave joins: he gets the current key at its current index and cannot
    // read what came before.
    let (mut dave, mut dave_keys) = device("@dave:x", "D1");
    connect(&mut alice, &mut dave_keys);
    let outcome = alice
        .share_room_key(ROOM, &[verified(&bob_keys), verified(&dave_keys)])
        .unwrap();
    assert!(!outcome.rotated);
    assert_eq!(outcome.messages.len(), 1);
    deliver(alice.user_id(), &outcome, &mut [&mut dave]);
    let err = dave.decrypt_event(ROOM, "$e2", &after).unwrap_err();
    assert!(
        matches!(
            err,
            RoomError::Group(crate::GroupError::UnknownIndex {
                index: 0,
                first_known: 1
            })
        ),
        "{err:?}"
    );
    let later = alice
        .encrypt_event(ROOM, "m.room.message", &json!({"body": "welcome"}))
        .unwrap();
    assert_eq!(
        dave.decrypt_event(ROOM, "$e3", &later).unwrap().content["body"],
        "welcome"
    );
}

#[test]
fn missing_sessions_are_reported_and_shared_later() {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    let outcome = alice.share_room_key(ROOM, &[verified(&bob_keys)]).unwrap();
    assert!(outcome.messages.is_empty());
    assert_eq!(outcome.missing_sessions, vec![verified(&bob_keys)]);
    connect(&mut alice, &mut bob_keys);
    let outcome = alice.share_room_key(ROOM, &[verified(&bob_keys)]).unwrap();
    assert_eq!(outcome.messages.len(), 1);
    assert!(!outcome.rotated);
    deliver(alice.user_id(), &outcome, &mut [&mut bob]);
}

/// Alice and Bob share a room key; returns both and Bob's verified device.
fn room_pair() -> (Endpoint, Endpoint, SelfSignedDevice) {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    connect(&mut alice, &mut bob_keys);
    let bob_device = verified(&bob_keys);
    let outcome = alice
        .share_room_key(ROOM, std::slice::from_ref(&bob_device))
        .unwrap();
    deliver(alice.user_id(), &outcome, &mut [&mut bob]);
    assert_eq!(alice.mark_room_key_sent(&outcome), 1);
    (alice, bob, bob_device)
}

#[test]
fn replay_across_event_ids_is_rejected() {
    let (mut alice, mut bob, _) = room_pair();
    let event = alice
        .encrypt_event(ROOM, "m.room.message", &json!({"n": 1}))
        .unwrap();
    bob.decrypt_event(ROOM, "$first", &event).unwrap();
    // The same event again is fine (a client may re-render it).
    bob.decrypt_event(ROOM, "$first", &event).unwrap();
    let before = state(&bob);
    assert_eq!(
        bob.decrypt_event(ROOM, "$second", &event).unwrap_err(),
        RoomError::Replay { index: 0 }
    );
    assert_eq!(state(&bob), before);
}

#[test]
fn envelope_moved_to_another_room_fails() {
    let (mut alice, mut bob, bob_device) = room_pair();
    let other = "!other:example.org";
    let outcome = alice.share_room_key(other, &[bob_device]).unwrap();
    deliver(alice.user_id(), &outcome, &mut [&mut bob]);
    let event = alice
        .encrypt_event(ROOM, "m.room.message", &json!({}))
        .unwrap();
    assert_eq!(
        bob.decrypt_event(other, "$x", &event).unwrap_err(),
        RoomError::UnknownRoomKey
    );
    // Even with the other room's session id patched in, it does not verify.
    let mut moved = event.clone();
    moved.session_id = outcome.session_id;
    assert!(matches!(
        bob.decrypt_event(other, "$x", &moved),
        Err(RoomError::Group(_))
    ));
    assert!(bob.decrypt_event(ROOM, "$x", &event).is_ok());
}

#[test]
fn imported_key_is_reported_unauthenticated() {
    let (mut alice, bob, _) = room_pair();
    let event = alice
        .encrypt_event(ROOM, "m.room.message", &json!({"body": "hi"}))
        .unwrap();
    let (sender, export) = bob.export_room_key(ROOM, &event.session_id, 0).unwrap();
    let (mut bob2, _) = device("@bob:x", "B2");
    assert_eq!(
        bob2.import_room_key(ROOM, sender, &export).unwrap(),
        KeyAdded::New
    );
    let d = bob2.decrypt_event(ROOM, "$1", &event).unwrap();
    assert!(!d.authenticated);
    assert_eq!(d.content["body"], "hi");
}

#[test]
fn forged_shares_are_rejected_and_change_nothing() {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    let (carol, _) = device("@carol:x", "C1");
    connect(&mut alice, &mut bob_keys);
    let bob_key = bob.identity_keys().curve25519;
    let alice_key = alice.identity_keys().curve25519;
    let bob_device = verified(&bob_keys);
    alice.share_room_key(ROOM, &[bob_device]).unwrap();
    let genuine = RoomKeyShare {
        room_id: ROOM.to_owned(),
        sender_user_id: "@alice:x".to_owned(),
        sender_device_id: "A1".to_owned(),
        session_key: alice.outbound_key(ROOM),
        sender: alice.identity_keys(),
        recipient: bob.identity_keys(),
    };
    let before = state(&bob);
    let cases = [
        (
            RoomKeyShare {
                recipient: carol.identity_keys(),
                ..genuine.clone()
            },
            RoomError::ShareNotForUs,
        ),
        (
            RoomKeyShare {
                sender: carol.identity_keys(),
                ..genuine.clone()
            },
            RoomError::ShareSenderMismatch,
        ),
    ];
    let mut messages = Vec::new();
    for (share, expected) in cases {
        let message = alice.encrypt_raw(&bob_key, &share.to_bytes());
        assert_eq!(
            bob.receive_device_message("@alice:x", &alice_key, &message)
                .unwrap_err(),
            expected
        );
        assert_eq!(state(&bob), before, "state changed after {expected:?}");
        messages.push(message);
    }
    // Garbage payload, wrong claimed sender, and a payload that is not a share.
    let garbage = alice.encrypt_raw(&bob_key, b"not a share");
    assert!(matches!(
        bob.receive_device_message("@alice:x", &alice_key, &garbage),
        Err(RoomError::Decode(_))
    ));
    assert_eq!(
        bob.receive_device_message("@alice:x", &carol.identity_keys().curve25519, &garbage)
            .unwrap_err(),
        RoomError::SenderMismatch
    );
    assert_eq!(state(&bob), before);
    // The genuine share still works afterwards, over the same session.
    let message = alice.encrypt_raw(&bob_key, &genuine.to_bytes());
    let received = bob
        .receive_device_message("@alice:x", &alice_key, &message)
        .unwrap();
    assert_eq!(received.added, KeyAdded::New);
    assert_eq!(received.sender, alice.identity_keys());
    // Earlier messages (now out of order) are still rejected on their content.
    assert_eq!(
        bob.receive_device_message("@alice:x", &alice_key, &messages[0])
            .unwrap_err(),
        RoomError::ShareNotForUs
    );
}

#[test]
fn rotation_by_message_count_and_age() {
    let (mut alice, mut bob, bob_device) = room_pair();
    let clock = Arc::new(ManualClock::default());
    alice.set_clock(clock.clone());
    alice.set_rotation_policy(RotationPolicy {
        max_messages: 3,
        max_age: std::time::Duration::from_secs(60),
    });
    // The first session was created under the system clock, far ahead of
    // the manual one: to the manual clock the time went back, so it rotates.
    let outcome = alice
        .share_room_key(ROOM, std::slice::from_ref(&bob_device))
        .unwrap();
    assert_eq!(outcome.rotation_reason, Some(RotationReason::ClockWentBack));
    deliver(alice.user_id(), &outcome, &mut [&mut bob]);
    for _ in 0..3 {
        alice.encrypt_event(ROOM, "m", &json!({})).unwrap();
    }
    assert_eq!(
        alice.encrypt_event(ROOM, "m", &json!({})).unwrap_err(),
        RoomError::ShareRequired(RotationReason::MessageLimit)
    );
    let outcome = alice
        .share_room_key(ROOM, std::slice::from_ref(&bob_device))
        .unwrap();
    assert!(outcome.rotated);
    assert_eq!(outcome.rotation_reason, Some(RotationReason::MessageLimit));
    deliver(alice.user_id(), &outcome, &mut [&mut bob]);
    alice.encrypt_event(ROOM, "m", &json!({})).unwrap();
    clock.0.store(60_000, Ordering::SeqCst);
    assert_eq!(
        alice.encrypt_event(ROOM, "m", &json!({})).unwrap_err(),
        RoomError::ShareRequired(RotationReason::AgeLimit)
    );
    let outcome = alice.share_room_key(ROOM, &[bob_device]).unwrap();
    assert_eq!(outcome.rotation_reason, Some(RotationReason::AgeLimit));
}

#[test]
fn pickle_round_trip_mid_conversation() {
    let (mut alice, mut bob, bob_device) = room_pair();
    let first = alice.encrypt_event(ROOM, "m", &json!({"n": 1})).unwrap();
    bob.decrypt_event(ROOM, "$1", &first).unwrap();
    let key = PickleKey::from_bytes(&mut [5; 32]);
    let mut alice = Endpoint::from_pickle(&alice.pickle(&key), &key).unwrap();
    let mut bob = Endpoint::from_pickle(&bob.pickle(&key), &key).unwrap();
    assert_eq!(
        state(&Endpoint::from_pickle(&bob.pickle(&key), &key).unwrap()),
        state(&bob)
    );
    // Replay memory survived.
    assert_eq!(
        bob.decrypt_event(ROOM, "$other", &first).unwrap_err(),
        RoomError::Replay { index: 0 }
    );
    let second = alice.encrypt_event(ROOM, "m", &json!({"n": 2})).unwrap();
    assert_eq!(
        bob.decrypt_event(ROOM, "$2", &second).unwrap().content["n"],
        2
    );
    // Nothing to re-share; a rotation still reaches Bob over the restored session.
    assert!(
        alice
            .share_room_key(ROOM, std::slice::from_ref(&bob_device))
            .unwrap()
            .messages
            .is_empty()
    );
    alice.rotate_room_key(ROOM);
    let outcome = alice.share_room_key(ROOM, &[bob_device]).unwrap();
    deliver(alice.user_id(), &outcome, &mut [&mut bob]);
    let third = alice.encrypt_event(ROOM, "m", &json!({"n": 3})).unwrap();
    assert_eq!(
        bob.decrypt_event(ROOM, "$3", &third).unwrap().content["n"],
        3
    );
    assert_eq!(
        Endpoint::from_pickle(&bob.pickle(&key), &PickleKey::from_bytes(&mut [6; 32])).unwrap_err(),
        crate::PickleError::Decryption
    );
}

#[test]
fn bad_envelopes_are_typed_errors() {
    let (mut alice, mut bob, _) = room_pair();
    let event = alice.encrypt_event(ROOM, "m", &json!({})).unwrap();
    assert_eq!(
        EncryptedEvent::from_json("{}").unwrap_err(),
        RoomError::InvalidEnvelope
    );
    assert_eq!(
        EncryptedEvent::from_json("not json").unwrap_err(),
        RoomError::InvalidEnvelope
    );
    let mut wrong = event.clone();
    wrong.algorithm = "m.megolm.v1.aes-sha2".into();
    assert_eq!(
        bob.decrypt_event(ROOM, "$1", &wrong).unwrap_err(),
        RoomError::UnsupportedAlgorithm
    );
    let mut wrong = event.clone();
    wrong.sender_key = bob.identity_keys().curve25519;
    assert_eq!(
        bob.decrypt_event(ROOM, "$1", &wrong).unwrap_err(),
        RoomError::SenderKeyMismatch
    );
    assert_eq!(
        bob.decrypt_event(ROOM, "", &event).unwrap_err(),
        RoomError::InvalidId("event id")
    );
    assert_eq!(
        alice
            .encrypt_event("!nokey:x", "m", &json!({}))
            .unwrap_err(),
        RoomError::ShareRequired(RotationReason::NotShared)
    );
    assert!(bob.decrypt_event(ROOM, "$1", &event).is_ok());
}

#[test]
fn pre_key_replay_and_unknown_sender() {
    let (mut alice, alice_keys) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    connect(&mut alice, &mut bob_keys);
    let outcome = alice.share_room_key(ROOM, &[verified(&bob_keys)]).unwrap();
    let message: &DeviceMessage = &outcome.messages[0].message;
    let sender = alice.identity_keys().curve25519;
    bob.receive_device_message("@alice:x", &sender, message)
        .unwrap();
    // The same pre-key message again hits the existing session: a replay.
    assert!(matches!(
        bob.receive_device_message("@alice:x", &sender, message),
        Err(RoomError::Session(
            crate::SessionError::MessageKeyGone { .. }
        ))
    ));
    // A pre-key message claimed to come from someone else.
    let stranger = Curve25519PublicKey::from_bytes([1; 32]);
    assert_eq!(
        bob.receive_device_message("@alice:x", &stranger, message)
            .unwrap_err(),
        RoomError::SenderMismatch
    );
    // Once Bob has replied (sharing his own room key), Alice sends normal
    // messages; one attributed to a device Bob has no session with fails.
    let reply = bob
        .share_room_key("!bobs:x", &[verified(&alice_keys)])
        .unwrap();
    deliver(bob.user_id(), &reply, &mut [&mut alice]);
    let normal = alice.encrypt_raw(&bob.identity_keys().curve25519, b"x");
    assert!(!normal.is_pre_key());
    assert_eq!(
        bob.receive_device_message("@alice:x", &stranger, &normal)
            .unwrap_err(),
        RoomError::NoSession
    );
}

#[test]
fn each_recipient_gets_a_share_naming_it() {
    let (alice, _) = device("@alice:x", "A1");
    let (bob, _) = device("@bob:x", "B1");
    let share = RoomKeyShare {
        room_id: ROOM.to_owned(),
        session_key: {
            let mut a = Endpoint::new("@x:x", "X").unwrap();
            a.share_room_key(ROOM, &[]).unwrap();
            a.outbound_key(ROOM)
        },
        sender_user_id: "@alice:x".to_owned(),
        sender_device_id: "A1".to_owned(),
        sender: alice.identity_keys(),
        recipient: alice.identity_keys(),
    };
    let (mut bytes, at) = share.encode_with_recipient_slot();
    bytes[at..at + 64].copy_from_slice(&bob.identity_keys().to_bytes());
    let decoded = RoomKeyShare::from_bytes(&bytes).unwrap();
    assert_eq!(decoded.recipient, bob.identity_keys());
    assert_eq!(decoded.sender, alice.identity_keys());
}

#[test]
fn parallel_and_sequential_sharing_agree() {
    let (mut alice, _) = device("@alice:x", "A1");
    let mut others = Vec::new();
    let count = crate::consts::PARALLEL_SHARE_THRESHOLD + 10;
    for i in 0..count {
        let (ep, mut keys) = device("@u:x", &format!("D{i}"));
        connect(&mut alice, &mut keys);
        others.push((ep, verified(&keys)));
    }
    let devices: Vec<_> = others.iter().map(|(_, d)| d.clone()).collect();
    alice.set_share_threads(2);
    let outcome = alice.share_room_key(ROOM, &devices).unwrap();
    assert_eq!(outcome.messages.len(), count);
    let sender = alice.user_id().to_owned();
    let mut endpoints: Vec<&mut Endpoint> = others.iter_mut().map(|(e, _)| e).collect();
    deliver(&sender, &outcome, &mut endpoints);
    alice.set_share_threads(1);
    alice.rotate_room_key(ROOM);
    let outcome = alice.share_room_key(ROOM, &devices).unwrap();
    deliver(&sender, &outcome, &mut endpoints);
}

#[test]
fn debug_and_errors_show_no_secrets() {
    let (alice, bob, _) = room_pair();
    let key = alice.outbound_key(ROOM);
    let secret = key.to_base64();
    let secret_part = &secret[10..40];
    for text in [
        format!("{alice:?}"),
        format!("{bob:?}"),
        format!("{:?}", bob.inbound_keys()),
        format!("{key:?}"),
    ] {
        assert!(!text.contains(secret_part), "{text}");
    }
}

#[test]
fn a_member_cannot_reshare_another_devices_key_as_its_own() {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut mallory, mut mallory_keys) = device("@mallory:x", "M1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    connect(&mut alice, &mut mallory_keys);
    connect(&mut mallory, &mut bob_keys);
    let outcome = alice
        .share_room_key(ROOM, &[verified(&mallory_keys)])
        .unwrap();
    deliver(alice.user_id(), &outcome, &mut [&mut mallory]);
    // Mallory holds Alice's signed key and claims it as hers when passing it on.
    let stolen = RoomKeyShare {
        room_id: ROOM.to_owned(),
        sender_user_id: "@mallory:x".to_owned(),
        sender_device_id: "M1".to_owned(),
        session_key: alice.outbound_key(ROOM),
        sender: mallory.identity_keys(),
        recipient: bob.identity_keys(),
    };
    let message = mallory.encrypt_raw(&bob.identity_keys().curve25519, &stolen.to_bytes());
    let before = state(&bob);
    assert_eq!(
        bob.receive_device_message("@mallory:x", &mallory.identity_keys().curve25519, &message)
            .unwrap_err(),
        RoomError::ShareSenderMismatch
    );
    assert_eq!(state(&bob), before);
    // Nor can she move it to another room.
    let moved = RoomKeyShare {
        room_id: "!elsewhere:x".to_owned(),
        sender: alice.identity_keys(),
        ..stolen
    };
    let message = mallory.encrypt_raw(&bob.identity_keys().curve25519, &moved.to_bytes());
    assert_eq!(
        bob.receive_device_message("@mallory:x", &mallory.identity_keys().curve25519, &message)
            .unwrap_err(),
        RoomError::ShareSenderMismatch
    );
}

#[test]
fn an_authenticated_share_displaces_a_misattributed_import() {
    let (mut alice, bob, bob_device) = room_pair();
    let (mut carol, _) = device("@carol:x", "C1");
    let event = alice.encrypt_event(ROOM, "m", &json!({"n": 1})).unwrap();
    let (_, export) = bob.export_room_key(ROOM, &event.session_id, 0).unwrap();
    // A bad backup attributes Alice's session to Bob.
    assert_eq!(
        carol
            .import_room_key(ROOM, bob.identity_keys(), &export)
            .unwrap(),
        KeyAdded::New
    );
    assert_eq!(
        carol.decrypt_event(ROOM, "$1", &event).unwrap_err(),
        RoomError::SenderKeyMismatch
    );
    // Alice's genuine share replaces it, sender and all.
    let mut carol_keys = carol.keys_to_publish(2);
    carol.mark_keys_as_published(&carol_keys);
    connect(&mut alice, &mut carol_keys);
    let share = alice
        .share_room_key(ROOM, &[bob_device, verified(&carol_keys)])
        .unwrap();
    assert!(!share.rotated);
    let received = carol
        .receive_device_message(
            "@alice:x",
            &alice.identity_keys().curve25519,
            &share.messages[0].message,
        )
        .unwrap();
    assert_eq!(received.added, KeyAdded::Improved);
    let d = carol.decrypt_event(ROOM, "$1", &event).unwrap();
    assert_eq!(d.sender, alice.identity_keys());
    // Index 0 is known only from the import: readable, not authenticated.
    assert!(!d.authenticated);
    let next = alice.encrypt_event(ROOM, "m", &json!({"n": 2})).unwrap();
    assert!(
        carol
            .decrypt_event(ROOM, "$2", &next)
            .unwrap()
            .authenticated
    );
    // An import can never displace an authenticated key.
    assert_eq!(
        carol
            .import_room_key(ROOM, bob.identity_keys(), &export)
            .unwrap_err(),
        RoomError::ConflictingRoomKey
    );
}

#[test]
fn forgetting_a_rooms_keys_makes_its_events_unreadable() {
    let (mut alice, mut bob, _) = room_pair();
    let event = alice.encrypt_event(ROOM, "m", &json!({})).unwrap();
    assert_eq!(bob.forget_room_keys(ROOM), 1);
    assert_eq!(bob.forget_room_keys(ROOM), 0);
    assert_eq!(
        bob.decrypt_event(ROOM, "$1", &event).unwrap_err(),
        RoomError::UnknownRoomKey
    );
}

#[test]
fn explicit_rotation_is_reported() {
    let (mut alice, _bob, bob_device) = room_pair();
    assert!(alice.rotate_room_key(ROOM));
    assert!(!alice.rotate_room_key(ROOM));
    // The pending rotation survives a pickle round trip.
    let key = PickleKey::from_bytes(&mut [2; 32]);
    let mut alice = Endpoint::from_pickle(&alice.pickle(&key), &key).unwrap();
    assert!(
        alice
            .share_room_key(ROOM, std::slice::from_ref(&bob_device))
            .unwrap()
            .rotated
    );
    assert!(!alice.share_room_key(ROOM, &[bob_device]).unwrap().rotated);
}

#[test]
fn forgotten_indices_stay_refused_even_after_a_merge() {
    let (mut alice, mut bob, _) = room_pair();
    alice.set_rotation_policy(RotationPolicy {
        max_messages: u32::MAX,
        max_age: std::time::Duration::MAX,
    });
    let first = alice.encrypt_event(ROOM, "m", &json!({})).unwrap();
    let (sender, early_export) = bob.export_room_key(ROOM, &first.session_id, 0).unwrap();
    bob.decrypt_event(ROOM, "$0", &first).unwrap();
    for i in 1..=crate::consts::MAX_TRACKED_INDICES {
        let e = alice.encrypt_event(ROOM, "m", &json!({})).unwrap();
        bob.decrypt_event(ROOM, &format!("${i}"), &e).unwrap();
    }
    // Index 0's record was dropped: it is refused, not replayable.
    assert_eq!(
        bob.decrypt_event(ROOM, "$new", &first).unwrap_err(),
        RoomError::Forgotten { index: 0 }
    );
    // Merging an earlier backup brings back index 0 to the session, not to the store.
    assert_eq!(
        bob.import_room_key(ROOM, sender, &early_export).unwrap(),
        KeyAdded::Improved
    );
    assert_eq!(
        bob.decrypt_event(ROOM, "$new", &first).unwrap_err(),
        RoomError::Forgotten { index: 0 }
    );
    let key = PickleKey::from_bytes(&mut [8; 32]);
    let mut restored = Endpoint::from_pickle(&bob.pickle(&key), &key).unwrap();
    assert_eq!(
        restored.decrypt_event(ROOM, "$new", &first).unwrap_err(),
        RoomError::Forgotten { index: 0 }
    );
}

#[test]
fn injected_generators_make_endpoints_deterministic() {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;
    let build = || {
        let account = crate::Account::new_with_rng(&mut ChaCha20Rng::from_seed([3; 32]));
        let mut endpoint = Endpoint::from_account("@d:x", "D", account).unwrap();
        endpoint.set_rng(Box::new(ChaCha20Rng::from_seed([4; 32])));
        let keys = endpoint.keys_to_publish(3);
        (endpoint, keys)
    };
    let (a, a_keys) = build();
    let (b, b_keys) = build();
    assert_eq!(a_keys, b_keys);
    assert_eq!(state(&a), state(&b));
}

#[test]
fn peers_and_shared_keys_from_outside_are_bounded() {
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    bob.set_limits(Limits {
        peers: 3,
        strangers: 2,
        room_keys: 4,
        room_keys_per_sender: 2,
        replay_records: 100,
    });
    let bob_device = verified(&bob_keys);
    let mut senders = Vec::new();
    for n in 0..4 {
        let (mut sender, _) = device("@eve:x", &format!("E{n}"));
        connect(&mut sender, &mut bob_keys);
        let outcome = sender
            .share_room_key(ROOM, std::slice::from_ref(&bob_device))
            .unwrap();
        senders.push((sender, outcome));
    }
    // Strangers beyond their bound evict the stranger unused for longest.
    for (sender, outcome) in &senders[..3] {
        deliver(sender.user_id(), outcome, &mut [&mut bob]);
    }
    assert_eq!(bob.peer_count(), 2);
    let first_key = senders[0].0.identity_keys().curve25519;
    assert!(!bob.has_session(&first_key));
    // A device Bob names himself is never evicted by strangers.
    let (mut carol, mut carol_keys) = device("@carol:x", "C1");
    connect(&mut bob, &mut carol_keys);
    assert_eq!(bob.peer_count(), 3);
    let (_, mut dave_keys) = device("@dave:x", "D1");
    connect(&mut bob, &mut dave_keys);
    // Peers are full (3) but strangers can still be evicted for named ones.
    assert_eq!(bob.peer_count(), 3);
    assert!(bob.has_session(&carol.identity_keys().curve25519));
    // With every slot taken by named devices, a new stranger is refused and
    // nothing changes.
    let (_, mut erin_keys) = device("@erin:x", "R1");
    connect(&mut bob, &mut erin_keys);
    assert_eq!(bob.peer_count(), 3);
    let fourth_key = senders[3].0.identity_keys().curve25519;
    let fourth = senders[3].1.messages[0].clone();
    let before = state(&bob);
    assert_eq!(
        bob.receive_device_message("@eve:x", &fourth_key, &fourth.message)
            .unwrap_err(),
        RoomError::TooManyPeers
    );
    assert_eq!(state(&bob), before);
    // Forgetting a peer makes room (and is idempotent).
    let erin_key = verified(&erin_keys).identity_keys().curve25519;
    assert_eq!(bob.forget_peer(&erin_key), 1);
    assert_eq!(bob.forget_peer(&erin_key), 0);
    bob.receive_device_message("@eve:x", &fourth_key, &fourth.message)
        .unwrap();

    // Room keys: per sender at most 2; the sender's oldest goes first.
    let carol_device = bob
        .share_room_key("!carols:x", &[verified(&carol_keys)])
        .unwrap();
    deliver(bob.user_id(), &carol_device, &mut [&mut carol]);
    let mut sent = Vec::new();
    for room in ["!c1:x", "!c2:x", "!c3:x"] {
        let share = carol
            .share_room_key(room, std::slice::from_ref(&bob_device))
            .unwrap();
        let received = bob
            .receive_device_message(
                "@carol:x",
                &carol.identity_keys().curve25519,
                &share.messages[0].message,
            )
            .unwrap();
        sent.push((room, received));
    }
    assert_eq!(
        sent[2].1.evicted,
        vec![("!c1:x".to_owned(), sent[0].1.session_id)]
    );
    let keys = bob.room_keys();
    let carols: Vec<_> = keys
        .iter()
        .filter(|k| k.sender == carol.identity_keys())
        .collect();
    assert_eq!(carols.len(), 2);
    assert!(
        carols
            .iter()
            .all(|k| k.sender_user_id.as_deref() == Some("@carol:x"))
    );
    assert!(carols.iter().all(|k| k.size_bytes > 250));
    // The store is full: 2 of strangers, 2 of Carol's (and Bob's own key,
    // which does not count). Carol at her quota evicts her own oldest.
    assert_eq!(bob.inbound_keys().len(), 5);
    let share = carol
        .share_room_key("!c4:x", std::slice::from_ref(&bob_device))
        .unwrap();
    let received = bob
        .receive_device_message(
            "@carol:x",
            &carol.identity_keys().curve25519,
            &share.messages[0].message,
        )
        .unwrap();
    assert_eq!(received.evicted.len(), 1);
    assert_eq!(received.evicted[0].0, "!c2:x");
    // Strangers' keys go before Carol's when a stranger sends a new one.
    let stranger = &mut senders[3].0;
    let share = stranger
        .share_room_key("!junk:x", std::slice::from_ref(&bob_device))
        .unwrap();
    let received = bob
        .receive_device_message("@eve:x", &fourth_key, &share.messages[0].message)
        .unwrap();
    assert_eq!(received.evicted.len(), 1);
    assert_ne!(received.evicted[0].0, "!c3:x");
    assert_ne!(received.evicted[0].0, "!c4:x");
    // Carol's keys were never pushed out by junk.
    let share = stranger
        .share_room_key("!junk2:x", std::slice::from_ref(&bob_device))
        .unwrap();
    let received = bob
        .receive_device_message("@eve:x", &fourth_key, &share.messages[0].message)
        .unwrap();
    // Past its own quota a stranger evicts its own oldest key.
    assert_eq!(
        received.evicted,
        vec![(ROOM.to_owned(), senders[3].1.session_id)]
    );
    assert!(bob.room_keys().iter().any(|k| k.room_id == "!c3:x"));
    assert!(bob.room_keys().iter().any(|k| k.room_id == "!c4:x"));
    // Our own room keys are not limited by what peers send.
    let bob_share = bob.share_room_key("!mine:x", &[]).unwrap();
    assert!(
        bob.inbound_keys()
            .contains("!mine:x", &bob_share.session_id)
    );
}

/// The size of a value's pickle contents.
fn contents_len(write: impl FnOnce(&mut crate::codec::Writer)) -> usize {
    let mut w = crate::codec::Writer::with_capacity(1024);
    write(&mut w);
    w.into_vec().len()
}

#[test]
fn memory_budget_holds_at_the_bounds() {
    use crate::consts::{
        MAX_FALLBACK_SESSIONS, MAX_REPLAY_RECORDS, MAX_ROOM_KEYS, MAX_STRANGER_SESSIONS,
        MAX_STRANGERS,
    };
    // PROTOCOL.md 9.1: the largest item of each kind, measured.
    let long = |c: char| std::iter::repeat_n(c, 255).collect::<String>();
    let (mut alice, _) = device(&long('a'), &long('A'));
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    let (mut carol, mut carol_keys) = device("@carol:x", "C1");
    let room = long('!');
    let bob_device = verified(&bob_keys);
    let carol_device = connect_checked(&mut alice, &mut carol_keys);
    let share = alice
        .share_room_key(&room, std::slice::from_ref(&carol_device))
        .unwrap();
    deliver(alice.user_id(), &share, &mut [&mut carol]);
    alice.mark_room_key_sent(&share);
    let first = alice.encrypt_event(&room, "m", &json!({})).unwrap();
    connect(&mut alice, &mut bob_keys);
    let bob_key = bob.identity_keys().curve25519;
    let share = alice
        .share_room_key(&room, &[carol_device, bob_device])
        .unwrap();
    deliver(alice.user_id(), &share, &mut [&mut bob]);
    // A session holding 100 skipped keys (Alice's messages 1..=100 lost).
    for _ in 0..crate::consts::MAX_SKIPPED_MESSAGE_KEYS {
        alice.encrypt_raw(&bob_key, b"lost");
    }
    let again = RoomKeyShare {
        room_id: room.clone(),
        sender_user_id: alice.user_id().to_owned(),
        sender_device_id: alice.device_id().to_owned(),
        session_key: alice.outbound_key(&room),
        sender: alice.identity_keys(),
        recipient: bob.identity_keys(),
    };
    let message = alice.encrypt_raw(&bob_key, &again.to_bytes());
    bob.receive_device_message(alice.user_id(), &alice.identity_keys().curve25519, &message)
        .unwrap();
    let peer = bob.peers.get(&alice.identity_keys().curve25519).unwrap();
    let session = contents_len(|w| peer.sessions()[0].write_contents(w));
    assert!(
        session <= 7_500,
        "session with 100 skipped keys: {session} bytes"
    );
    let peer_ids = 64 + 2 * (1 + 2 + 255) + 2;
    // A stored key with 255-byte room, user and device ids and a prefix.
    let (sender, export) = carol.export_room_key(&room, &first.session_id, 0).unwrap();
    assert_eq!(
        bob.import_room_key(&room, sender, &export).unwrap(),
        KeyAdded::Improved
    );
    let key = bob.room_keys()[0].clone();
    assert_eq!((key.first_index, key.authenticated_from), (0, Some(1)));
    assert!(
        key.size_bytes <= 1_500,
        "largest stored key: {} bytes",
        key.size_bytes
    );
    // A replay record.
    bob.decrypt_event(&room, "$1", &first).unwrap();
    let record = bob.room_keys()[0].size_bytes - key.size_bytes;
    assert_eq!(record, 36);
    // The worst case of PROTOCOL.md 9.1, from these sizes (48 bytes per
    // record in memory): about 43 MB.
    let worst = MAX_STRANGERS * (MAX_STRANGER_SESSIONS * 7_500 + peer_ids)
        + MAX_ROOM_KEYS * 1_500
        + MAX_REPLAY_RECORDS * 48
        + 2 * MAX_FALLBACK_SESSIONS * 32;
    assert!(worst <= 44_000_000, "{worst} bytes");

    // Replay records stay within their total bound, trimming the largest.
    bob.set_limits(Limits {
        replay_records: 5,
        ..Limits::default()
    });
    let mut events = Vec::new();
    for i in 0..8 {
        events.push(alice.encrypt_event(&room, "m", &json!({ "i": i })).unwrap());
    }
    for (i, e) in events.iter().enumerate() {
        bob.decrypt_event(&room, &format!("$e{i}"), e).unwrap();
        assert!(bob.inbound_keys().replay_records() <= 5);
    }
    // The oldest were forgotten, and stay refused.
    assert!(matches!(
        bob.decrypt_event(&room, "$other", &events[0]),
        Err(RoomError::Forgotten { .. })
    ));
}

fn connect_checked(a: &mut Endpoint, b: &mut KeysToPublish) -> SelfSignedDevice {
    let otk = b.one_time_keys.pop().unwrap();
    a.establish_session(&b.device_keys, &otk).unwrap()
}

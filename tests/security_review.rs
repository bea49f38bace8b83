//! Regression tests for the findings of the security review (issue 9), each
//! reproduced through the public API as the review did, and each failing on
//! the code the review examined (ed62034). The item numbers are the
//! review's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use roomseal::consts::FALLBACK_KEY_GRACE_MS;
use roomseal::{
    Account, AccountError, Clock, DeviceKeys, DeviceMessage, EncryptedEvent, Endpoint,
    GroupMessage, KeyAdded, KeysToPublish, OutboundGroupSession, PickleError, PickleKey, RoomError,
    RoomKeyShareOutcome, RotationPolicy, RotationReason, SelfSignedDevice, Session,
    SignedOneTimeKey, pickle_generation,
};
use serde_json::json;

const ROOM: &str = "!room:example.org";

#[derive(Debug, Default)]
struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A device and the keys it published.
fn device(user: &str, id: &str) -> (Endpoint, KeysToPublish) {
    let mut endpoint = Endpoint::new(user, id).unwrap();
    let keys = endpoint.keys_to_publish(10);
    endpoint.mark_keys_as_published(&keys);
    (endpoint, keys)
}

fn checked(keys: &KeysToPublish) -> SelfSignedDevice {
    keys.device_keys.check_self_signature().unwrap()
}

/// `a` claims one of `b`'s one-time keys and starts a session.
fn connect(a: &mut Endpoint, b: &mut KeysToPublish) -> SelfSignedDevice {
    let otk = b.one_time_keys.pop().unwrap();
    a.establish_session(&b.device_keys, &otk).unwrap()
}

/// Delivers a share's messages from `sender` and confirms them as sent.
fn deliver(sender: &mut Endpoint, outcome: &RoomKeyShareOutcome, to: &mut [&mut Endpoint]) {
    for m in &outcome.messages {
        let target = to
            .iter_mut()
            .find(|e| e.identity_keys().curve25519 == m.recipient_key)
            .expect("a recipient");
        target
            .receive_device_message(sender.user_id(), &m.sender_key, &m.message)
            .unwrap();
    }
    sender.mark_room_key_sent(outcome);
}

fn pickle_key() -> PickleKey {
    PickleKey::from_bytes(&mut [7; 32])
}

/// The whole state, as a deterministic pickle (for "nothing changed").
fn state(endpoint: &Endpoint) -> String {
    use rand::SeedableRng;
    endpoint.pickle_with_rng(
        &pickle_key(),
        &mut rand::rngs::ChaCha20Rng::from_seed([1; 32]),
    )
}

fn send(alice: &mut Endpoint, body: &str) -> EncryptedEvent {
    alice
        .encrypt_event(ROOM, "m.room.message", &json!({ "body": body }))
        .unwrap()
}

/// Alice, Bob and Carol in one room, the key shared and confirmed.
struct Room {
    alice: Endpoint,
    bob: Endpoint,
    carol: Endpoint,
    bob_device: SelfSignedDevice,
    carol_device: SelfSignedDevice,
}

fn room() -> Room {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    let (mut carol, mut carol_keys) = device("@carol:x", "C1");
    let bob_device = connect(&mut alice, &mut bob_keys);
    let carol_device = connect(&mut alice, &mut carol_keys);
    let share = alice
        .share_room_key(ROOM, &[bob_device.clone(), carol_device.clone()])
        .unwrap();
    deliver(&mut alice, &share, &mut [&mut bob, &mut carol]);
    Room {
        alice,
        bob,
        carol,
        bob_device,
        carol_device,
    }
}

// ---------------------------------------------------------------------------
// 1. A forgotten device keeps reading
// ---------------------------------------------------------------------------

#[test]
fn item_1_a_forgotten_device_reads_nothing_sent_after() {
    let mut r = room();
    let carol_key = r.carol.identity_keys().curve25519;
    assert_eq!(r.alice.forget_peer(&carol_key), 1);
    // Forgetting dropped the room's key at once: nothing can be encrypted
    // under it, and the next share rotates even though Carol is not listed
    // and would not have triggered a rotation on her own.
    assert_eq!(
        r.alice.encrypt_event(ROOM, "m", &json!({})).unwrap_err(),
        RoomError::ShareRequired(RotationReason::DeviceForgotten)
    );
    let share = r
        .alice
        .share_room_key(ROOM, std::slice::from_ref(&r.bob_device))
        .unwrap();
    assert!(share.rotated);
    assert_eq!(share.rotation_reason, Some(RotationReason::DeviceForgotten));
    deliver(&mut r.alice, &share, &mut [&mut r.bob]);
    let after = send(&mut r.alice, "after Carol was forgotten");
    assert!(r.bob.decrypt_event(ROOM, "$1", &after).is_ok());
    assert_eq!(
        r.carol.decrypt_event(ROOM, "$1", &after).unwrap_err(),
        RoomError::UnknownRoomKey
    );
}

#[test]
fn item_1_a_forgotten_device_listed_again_still_forces_a_rotation() {
    let mut r = room();
    let carol_key = r.carol.identity_keys().curve25519;
    r.alice.forget_peer(&carol_key);
    // The app's member list still names Carol (stale), but Alice has no
    // session with her any more: the key rotates, and Carol is reported
    // missing instead of silently keeping the old key.
    let share = r
        .alice
        .share_room_key(ROOM, &[r.bob_device.clone(), r.carol_device.clone()])
        .unwrap();
    assert!(share.rotated);
    assert_eq!(share.missing_sessions, vec![r.carol_device.clone()]);
    deliver(&mut r.alice, &share, &mut [&mut r.bob]);
    let after = send(&mut r.alice, "x");
    assert_eq!(
        r.carol.decrypt_event(ROOM, "$1", &after).unwrap_err(),
        RoomError::UnknownRoomKey
    );
}

#[test]
fn item_1_every_way_a_device_can_leave_forces_a_rotation() {
    // Not listed.
    let mut r = room();
    let share = r
        .alice
        .share_room_key(ROOM, std::slice::from_ref(&r.bob_device))
        .unwrap();
    assert_eq!(share.rotation_reason, Some(RotationReason::DeviceLeft));
    // A device that was only sent an unconfirmed message may hold the key
    // too: leaving the list rotates as well.
    let (mut alice, _) = device("@alice:x", "A1");
    let (_, mut bob_keys) = device("@bob:x", "B1");
    let (_, mut carol_keys) = device("@carol:x", "C1");
    let bob = connect(&mut alice, &mut bob_keys);
    let carol = connect(&mut alice, &mut carol_keys);
    let first = alice.share_room_key(ROOM, &[bob.clone(), carol]).unwrap();
    assert_eq!(first.messages.len(), 2);
    // (never confirmed)
    let again = alice.share_room_key(ROOM, &[bob]).unwrap();
    assert_eq!(again.rotation_reason, Some(RotationReason::DeviceLeft));
    // Requested, and rolled back.
    let mut r = room();
    r.alice.rotate_room_key(ROOM);
    let share = r
        .alice
        .share_room_key(ROOM, &[r.bob_device.clone()])
        .unwrap();
    assert_eq!(share.rotation_reason, Some(RotationReason::Requested));
    let mut r = room();
    r.alice.recover_from_rollback();
    let share = r
        .alice
        .share_room_key(ROOM, &[r.bob_device.clone()])
        .unwrap();
    assert_eq!(share.rotation_reason, Some(RotationReason::Rollback));
}

#[test]
fn item_1_the_rotation_survives_a_pickle() {
    let mut r = room();
    r.alice.forget_peer(&r.carol.identity_keys().curve25519);
    let text = r.alice.pickle(&pickle_key());
    let mut alice = Endpoint::from_pickle(&text, &pickle_key()).unwrap();
    let share = alice.share_room_key(ROOM, &[r.bob_device]).unwrap();
    assert_eq!(share.rotation_reason, Some(RotationReason::DeviceForgotten));
}

// ---------------------------------------------------------------------------
// 2. Peers keyed by the X25519 key alone
// ---------------------------------------------------------------------------

#[test]
fn item_2_duplicate_targets_are_refused_and_change_nothing() {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    let bob_device = connect(&mut alice, &mut bob_keys);
    let before = state(&alice);
    assert_eq!(
        alice
            .share_room_key(ROOM, &[bob_device.clone(), bob_device.clone()])
            .unwrap_err(),
        RoomError::DuplicateRecipient
    );
    assert_eq!(state(&alice), before);
    // A bundle cannot be renamed to pass for another device: ids are signed.
    let (_, mut other_keys) = device("@bob:x", "B2");
    let mut renamed = other_keys.device_keys.clone();
    renamed.device_id = "B1".into();
    assert!(renamed.check_self_signature().is_err(), "ids are signed");
    let other = connect(&mut alice, &mut other_keys);
    let before = state(&alice);
    assert_eq!(
        alice
            .share_room_key(ROOM, &[bob_device.clone(), other.clone(), other])
            .unwrap_err(),
        RoomError::DuplicateRecipient
    );
    assert_eq!(state(&alice), before);
    // Bob still gets (and can read) the key.
    let share = alice.share_room_key(ROOM, &[bob_device]).unwrap();
    deliver(&mut alice, &share, &mut [&mut bob]);
    let e = send(&mut alice, "for Bob");
    assert!(bob.decrypt_event(ROOM, "$1", &e).is_ok());
}

/// A device whose Ed25519 key is Mallory's and whose X25519 key is Bob's,
/// self-signed by Mallory (the server's forgery), with a one-time key
/// Mallory signs. Built with Mallory's account: only her Ed25519 key signs.
fn server_forgery(bob_curve: roomseal::Curve25519PublicKey) -> (DeviceKeys, SignedOneTimeKey) {
    // Mallory's account signs a bundle naming her own keys; the test then
    // needs a bundle naming Bob's X25519 key, signed by Mallory. The crate
    // signs bundles only for the account's own keys, so the forgery is made
    // the way a server would: with the primitives.
    use ed25519_dalek::{Signer, SigningKey};
    let signing = SigningKey::from_bytes(&[0x4d; 32]);
    let ed = roomseal::Ed25519PublicKey::from_bytes(&signing.verifying_key().to_bytes()).unwrap();
    let keys = roomseal::IdentityKeys {
        ed25519: ed,
        curve25519: bob_curve,
    };
    // Bundle bytes as PROTOCOL.md 5.2 lays them out.
    let mut bytes = b"roomseal/v2/device-keys".to_vec();
    for id in ["@bob:x", "B1"] {
        bytes.extend_from_slice(&(id.len() as u16).to_be_bytes());
        bytes.extend_from_slice(id.as_bytes());
    }
    bytes.extend_from_slice(ed.as_bytes());
    bytes.extend_from_slice(bob_curve.as_bytes());
    bytes.extend_from_slice(&1u16.to_be_bytes());
    bytes.extend_from_slice(&("roomseal.v2".len() as u16).to_be_bytes());
    bytes.extend_from_slice(b"roomseal.v2");
    let bundle = DeviceKeys {
        user_id: "@bob:x".into(),
        device_id: "B1".into(),
        keys,
        protocols: vec!["roomseal.v2".into()],
        signature: roomseal::Ed25519Signature::from_bytes(&signing.sign(&bytes).to_bytes()),
    };
    let otk_secret = x25519_dalek::StaticSecret::from([0x4e; 32]);
    let otk = roomseal::Curve25519PublicKey::from_bytes(
        x25519_dalek::PublicKey::from(&otk_secret).to_bytes(),
    );
    let mut otk_bytes = b"roomseal/v2/one-time-key".to_vec();
    otk_bytes.extend_from_slice(&77u64.to_be_bytes());
    otk_bytes.extend_from_slice(otk.as_bytes());
    let one_time_key = SignedOneTimeKey {
        key_id: roomseal::KeyId(77),
        key: otk,
        fallback: false,
        signature: roomseal::Ed25519Signature::from_bytes(&signing.sign(&otk_bytes).to_bytes()),
    };
    (bundle, one_time_key)
}

#[test]
fn item_2_the_server_cannot_pair_its_key_with_bobs() {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    let bob_device = connect(&mut alice, &mut bob_keys);
    let (forged, forged_otk) = server_forgery(bob.identity_keys().curve25519);
    let forged_device = forged
        .check_self_signature()
        .expect("self-consistent forgery");
    // Refused, with nothing changed.
    let before = state(&alice);
    assert_eq!(
        alice.establish_session(&forged, &forged_otk).unwrap_err(),
        RoomError::IdentityConflict
    );
    assert_eq!(state(&alice), before);
    // Listing the forged device, alone or beside the real one, is refused.
    assert_eq!(
        alice
            .share_room_key(ROOM, std::slice::from_ref(&forged_device))
            .unwrap_err(),
        RoomError::IdentityConflict
    );
    assert_eq!(
        alice
            .share_room_key(ROOM, &[bob_device.clone(), forged_device])
            .unwrap_err(),
        RoomError::DuplicateRecipient
    );
    assert_eq!(state(&alice), before);
    // Bob is served on his own session and reads the room.
    let share = alice.share_room_key(ROOM, &[bob_device]).unwrap();
    assert_eq!(share.messages.len(), 1);
    deliver(&mut alice, &share, &mut [&mut bob]);
    let e = send(&mut alice, "hi Bob");
    assert_eq!(
        bob.decrypt_event(ROOM, "$1", &e).unwrap().content["body"],
        "hi Bob"
    );
}

#[test]
fn item_2_a_forgery_seen_first_does_not_get_bobs_key_either() {
    // The server serves the forgery before Alice ever met Bob: the session
    // is bound to the forged identity, and the real Bob is then refused
    // rather than silently mixed with it. Neither Mallory (who lacks Bob's
    // X25519 private key) nor Bob (whose Ed25519 key differs) is served
    // under the other's identity.
    let (mut alice, _) = device("@alice:x", "A1");
    let (bob, mut bob_keys) = device("@bob:x", "B1");
    let (forged, forged_otk) = server_forgery(bob.identity_keys().curve25519);
    alice.establish_session(&forged, &forged_otk).unwrap();
    let otk = bob_keys.one_time_keys.pop().unwrap();
    assert_eq!(
        alice
            .establish_session(&bob_keys.device_keys, &otk)
            .unwrap_err(),
        RoomError::IdentityConflict
    );
    assert_eq!(
        alice
            .share_room_key(ROOM, &[checked(&bob_keys)])
            .unwrap_err(),
        RoomError::IdentityConflict
    );
}

#[test]
fn item_2_a_device_is_served_only_when_a_message_for_it_was_produced() {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    // No session yet: reported missing, not counted as holding the key.
    let share = alice.share_room_key(ROOM, &[checked(&bob_keys)]).unwrap();
    assert!(share.messages.is_empty());
    assert_eq!(share.missing_sessions.len(), 1);
    let bob_device = connect(&mut alice, &mut bob_keys);
    let share = alice.share_room_key(ROOM, &[bob_device]).unwrap();
    assert!(!share.rotated, "Bob never held the key: nothing to rotate");
    assert_eq!(share.messages.len(), 1);
    deliver(&mut alice, &share, &mut [&mut bob]);
    let e = send(&mut alice, "x");
    assert!(bob.decrypt_event(ROOM, "$1", &e).is_ok());
}

// ---------------------------------------------------------------------------
// 3. The fallback key never rotated
// ---------------------------------------------------------------------------

#[test]
fn item_3_a_used_fallback_key_is_replaced_and_replays_are_refused() {
    let clock = Arc::new(ManualClock(AtomicU64::new(1_000_000)));
    let (mut alice, _) = device("@alice:x", "A1");
    let mut bob = Endpoint::new("@bob:x", "B1").unwrap();
    bob.set_clock(clock.clone());
    // Bob publishes no one-time keys: Alice must use his fallback key.
    let published = bob.keys_to_publish(0);
    bob.mark_keys_as_published(&published);
    let fallback = published.fallback_key.clone().unwrap();
    let bob_device = alice
        .establish_session(&published.device_keys, &fallback)
        .unwrap();
    let share = alice.share_room_key(ROOM, &[bob_device]).unwrap();
    let message = share.messages[0].clone();
    bob.receive_device_message("@alice:x", &message.sender_key, &message.message)
        .unwrap();
    // Used: the next publication carries a new fallback key.
    let next = bob.keys_to_publish(0);
    let new_fallback = next.fallback_key.clone().expect("a new fallback key");
    assert_ne!(new_fallback.key, fallback.key);
    bob.mark_keys_as_published(&next);
    // Bob forgets Alice (or the app forgot the room keys); the server
    // replays the pre-key message: it cannot recreate the session.
    assert_eq!(bob.forget_peer(&alice.identity_keys().curve25519), 1);
    assert_eq!(bob.forget_room_keys(ROOM), 1);
    let before = state(&bob);
    assert_eq!(
        bob.receive_device_message("@alice:x", &message.sender_key, &message.message)
            .unwrap_err(),
        RoomError::Account(AccountError::FallbackKeyReplay)
    );
    assert_eq!(state(&bob), before);
    // After the grace period the old key itself is gone.
    clock.0.fetch_add(FALLBACK_KEY_GRACE_MS, Ordering::SeqCst);
    bob.keys_to_publish(0);
    assert_eq!(
        bob.receive_device_message("@alice:x", &message.sender_key, &message.message)
            .unwrap_err(),
        RoomError::Account(AccountError::UnknownOneTimeKey)
    );
    // Rotation on request.
    let before = bob.keys_to_publish(0).fallback_key;
    assert!(before.is_none(), "already published");
    bob.rotate_fallback_key();
    assert!(bob.keys_to_publish(0).fallback_key.is_some());
}

// ---------------------------------------------------------------------------
// 5. Rolling state back reused AES-GCM keys and nonces
// ---------------------------------------------------------------------------

#[test]
fn item_5_a_rolled_back_group_session_never_reuses_a_key_and_nonce() {
    let alice = Account::new();
    let outbound = OutboundGroupSession::new(ROOM, alice.identity_keys()).unwrap();
    let saved = outbound.pickle(&pickle_key());
    let mut first = OutboundGroupSession::from_pickle(&saved, &pickle_key()).unwrap();
    let mut second = OutboundGroupSession::from_pickle(&saved, &pickle_key()).unwrap();
    let a = first.encrypt(&[0u8; 64]).unwrap().to_bytes();
    let b = second.encrypt(&[0xFFu8; 64]).unwrap().to_bytes();
    // Same index, different salts: the keystreams differ, so XORing the two
    // ciphertexts does not give the XOR of the plaintexts (all 0xFF).
    assert_eq!(a[1..5], b[1..5], "same index");
    assert_ne!(a[5..21], b[5..21], "fresh salts");
    let xor: Vec<u8> = a[21..85]
        .iter()
        .zip(&b[21..85])
        .map(|(x, y)| x ^ y)
        .collect();
    assert_ne!(xor, vec![0xFF; 64]);
    // Both still decrypt for a reader (the replay rule then picks one).
    let mut reader = roomseal::InboundGroupSession::new(&outbound.session_key()).unwrap();
    assert_eq!(
        reader
            .decrypt(ROOM, &GroupMessage::from_bytes(&a).unwrap())
            .unwrap()
            .plaintext,
        [0u8; 64]
    );
    assert_eq!(
        reader
            .decrypt(ROOM, &GroupMessage::from_bytes(&b).unwrap())
            .unwrap()
            .plaintext,
        [0xFFu8; 64]
    );
}

#[test]
fn item_5_a_rolled_back_pairwise_session_never_reuses_a_key_and_nonce() {
    let alice = Account::new();
    let mut bob = Account::new();
    let bob_device = bob.device_keys("@bob:x", "B1").unwrap();
    bob.generate_one_time_keys(1);
    let otk = bob.one_time_keys().remove(0);
    let session = alice
        .create_outbound_session(&bob_device.check_self_signature().unwrap(), &otk)
        .unwrap();
    let owner = alice.identity_keys();
    let saved = session.pickle(&pickle_key());
    let mut first = Session::from_pickle(&saved, &pickle_key(), &owner).unwrap();
    let mut second = Session::from_pickle(&saved, &pickle_key(), &owner).unwrap();
    let a = first.encrypt(&[0u8; 64]).unwrap();
    let b = second.encrypt(&[0xFFu8; 64]).unwrap();
    assert_eq!(a.normal().counter(), b.normal().counter());
    let (a, b) = (a.to_bytes(), b.to_bytes());
    // The last 64 + 16 bytes are ciphertext and tag.
    let xor: Vec<u8> = a[a.len() - 80..a.len() - 16]
        .iter()
        .zip(&b[b.len() - 80..b.len() - 16])
        .map(|(x, y)| x ^ y)
        .collect();
    assert_ne!(xor, vec![0xFF; 64]);
    // And Bob reads the first that arrives; the other is a replay.
    let DeviceMessage::PreKey(pre_key) = DeviceMessage::from_bytes(&a).unwrap() else {
        panic!("pre-key phase")
    };
    let mut created = bob.create_inbound_session(&pre_key).unwrap();
    assert_eq!(created.plaintext, [0u8; 64]);
    assert!(
        created
            .session
            .decrypt(&DeviceMessage::from_bytes(&b).unwrap())
            .is_err()
    );
}

#[test]
fn item_5_pickles_carry_a_generation_and_old_ones_can_be_refused() {
    let mut r = room();
    let old = r.alice.pickle(&pickle_key());
    assert_eq!(r.alice.pickle(&pickle_key()).len(), old.len());
    assert_eq!(
        pickle_generation(&r.alice.pickle(&pickle_key())).unwrap(),
        pickle_generation(&old).unwrap(),
        "an unchanged state keeps its generation"
    );
    send(&mut r.alice, "changes the state");
    let new = r.alice.pickle(&pickle_key());
    let newest = pickle_generation(&new).unwrap();
    assert!(newest > pickle_generation(&old).unwrap());
    assert_eq!(r.alice.pickle_generation(), newest);
    assert!(matches!(
        Endpoint::from_pickle_no_older_than(&old, &pickle_key(), newest),
        Err(PickleError::Stale { .. })
    ));
    let restored = Endpoint::from_pickle_no_older_than(&new, &pickle_key(), newest).unwrap();
    assert_eq!(restored.pickle_generation(), newest);
    // A tampered generation is caught when the pickle is opened.
    let mut bytes = base64ct_decode(&new);
    bytes[8] ^= 1;
    assert_eq!(
        Endpoint::from_pickle(&base64ct_encode(&bytes), &pickle_key()).unwrap_err(),
        PickleError::Decryption
    );
}

fn base64ct_decode(text: &str) -> Vec<u8> {
    use base64ct::{Base64Unpadded, Encoding};
    Base64Unpadded::decode_vec(text).unwrap()
}

fn base64ct_encode(bytes: &[u8]) -> String {
    use base64ct::{Base64Unpadded, Encoding};
    Base64Unpadded::encode_string(bytes)
}

#[test]
fn item_5_recovering_from_a_rollback_makes_the_old_state_safe() {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    let bob_device = connect(&mut alice, &mut bob_keys);
    let share = alice
        .share_room_key(ROOM, std::slice::from_ref(&bob_device))
        .unwrap();
    deliver(&mut alice, &share, &mut [&mut bob]);
    // Bob saves, then consumes more; his state is rolled back to the save.
    let saved = bob.pickle(&pickle_key());
    let mut bob = Endpoint::from_pickle(&saved, &pickle_key()).unwrap();
    bob.recover_from_rollback();
    // Every one-time key held at the save is gone (it may have been used
    // since), and a fresh fallback key is published.
    let republished = bob.keys_to_publish(5);
    assert_eq!(republished.one_time_keys.len(), 5);
    assert!(republished.fallback_key.is_some());
    for key in &bob_keys.one_time_keys {
        assert!(!republished.one_time_keys.iter().any(|k| k.key == key.key));
    }
    // Bob needs a fresh session before he sends to Alice again.
    let alice_keys = alice.keys_to_publish(3);
    alice.mark_keys_as_published(&alice_keys);
    let share = bob
        .share_room_key("!bobs:x", &[checked(&alice_keys)])
        .unwrap();
    assert!(share.messages.is_empty());
    assert_eq!(share.missing_sessions.len(), 1);
    let otk = alice_keys.one_time_keys[0].clone();
    bob.establish_session(&alice_keys.device_keys, &otk)
        .unwrap();
    let share = bob
        .share_room_key("!bobs:x", &[checked(&alice_keys)])
        .unwrap();
    assert_eq!(share.messages.len(), 1);
    deliver(&mut bob, &share, &mut [&mut alice]);
}

// ---------------------------------------------------------------------------
// 8. Attribution
// ---------------------------------------------------------------------------

#[test]
fn item_8_events_name_the_sending_user_and_device_as_bound() {
    let mut r = room();
    let e = send(&mut r.alice, "x");
    let d = r.bob.decrypt_event(ROOM, "$1", &e).unwrap();
    assert_eq!(d.sender_user_id.as_deref(), Some("@alice:x"));
    assert_eq!(d.sender_device_id.as_deref(), Some("A1"));
    // A key known only from an import has no bound user.
    let (sender, export) = r.bob.export_room_key(ROOM, &e.session_id, 0).unwrap();
    let (mut dave, _) = device("@dave:x", "D1");
    dave.import_room_key(ROOM, sender, &export).unwrap();
    let d = dave.decrypt_event(ROOM, "$1", &e).unwrap();
    assert_eq!(d.sender_user_id, None);
    assert!(!d.authenticated);
}

#[test]
fn item_8_a_share_from_another_user_than_the_server_says_is_refused() {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    let bob_device = connect(&mut alice, &mut bob_keys);
    let share = alice.share_room_key(ROOM, &[bob_device]).unwrap();
    let m = &share.messages[0];
    let before = state(&bob);
    // The server delivered it from @mallory:x, yet it claims @alice:x.
    assert_eq!(
        bob.receive_device_message("@mallory:x", &m.sender_key, &m.message)
            .unwrap_err(),
        RoomError::ShareSenderMismatch
    );
    assert_eq!(state(&bob), before);
    let received = bob
        .receive_device_message("@alice:x", &m.sender_key, &m.message)
        .unwrap();
    assert_eq!(received.sender_user_id, "@alice:x");
    assert_eq!(received.sender_device_id, "A1");
    assert_eq!(
        bob.peer(&m.sender_key).unwrap().1.as_deref(),
        Some("@alice:x")
    );
}

#[test]
fn item_8_the_store_takes_the_sender_from_the_signed_key() {
    let alice = Account::new();
    let mallory = Account::new();
    let outbound = OutboundGroupSession::new(ROOM, alice.identity_keys()).unwrap();
    let mut store = roomseal::InboundKeyStore::new();
    let session = roomseal::InboundGroupSession::new(&outbound.session_key()).unwrap();
    store.add_shared(ROOM, session, "@alice:x", "A1").unwrap();
    let listed = store.keys();
    assert_eq!(listed[0].sender, alice.identity_keys());
    // An import may not claim another sender for a signed key.
    let export = outbound.session_key();
    let imported = roomseal::InboundGroupSession::import(
        &store.export(ROOM, &export.session_id(), 0).unwrap().1,
    );
    assert_eq!(
        store
            .add_import(ROOM, mallory.identity_keys(), imported)
            .unwrap_err(),
        RoomError::ConflictingRoomKey
    );
    // A signed key for another room than the one it names is refused.
    let session = roomseal::InboundGroupSession::new(&outbound.session_key()).unwrap();
    assert_eq!(
        roomseal::InboundKeyStore::new()
            .add_shared("!other:x", session, "@alice:x", "A1")
            .unwrap_err(),
        RoomError::ShareRoomMismatch
    );
}

// ---------------------------------------------------------------------------
// 11. Age rotation trusted the wall clock
// ---------------------------------------------------------------------------

#[test]
fn item_11_a_clock_that_goes_back_rotates_instead_of_extending() {
    let clock = Arc::new(ManualClock(AtomicU64::new(10 * 24 * 3600 * 1000)));
    let mut r = room();
    r.alice.set_clock(clock.clone());
    r.alice.set_rotation_policy(RotationPolicy {
        max_messages: 100,
        max_age: std::time::Duration::from_secs(3600),
    });
    r.alice.rotate_room_key(ROOM);
    let share = r
        .alice
        .share_room_key(ROOM, &[r.bob_device.clone(), r.carol_device.clone()])
        .unwrap();
    deliver(&mut r.alice, &share, &mut [&mut r.bob, &mut r.carol]);
    send(&mut r.alice, "ok");
    // The clock jumps back by a day: the session's creation time is now in
    // the future, which would have extended its life by a day.
    clock.0.fetch_sub(24 * 3600 * 1000, Ordering::SeqCst);
    assert_eq!(
        r.alice.encrypt_event(ROOM, "m", &json!({})).unwrap_err(),
        RoomError::ShareRequired(RotationReason::ClockWentBack)
    );
    let share = r
        .alice
        .share_room_key(ROOM, &[r.bob_device.clone(), r.carol_device.clone()])
        .unwrap();
    assert_eq!(share.rotation_reason, Some(RotationReason::ClockWentBack));
}

// ---------------------------------------------------------------------------
// 12. Publishing race
// ---------------------------------------------------------------------------

#[test]
fn item_12_only_the_keys_handed_out_are_marked_published() {
    let mut bob = Endpoint::new("@bob:x", "B1").unwrap();
    let first = bob.keys_to_publish(3);
    // Meanwhile (another thread) more keys are made and handed out.
    let second = bob.keys_to_publish(5);
    assert_eq!(second.one_time_keys.len(), 5);
    bob.mark_keys_as_published(&first);
    let left = bob.keys_to_publish(5);
    // The two made after `first` are still unpublished and still offered.
    assert_eq!(left.one_time_keys.len(), 5);
    for key in &second.one_time_keys[3..] {
        assert!(left.one_time_keys.contains(key));
    }
    for key in &first.one_time_keys {
        assert!(!left.one_time_keys.contains(key));
    }
    assert!(
        left.fallback_key.is_none(),
        "the fallback key went with `first`"
    );
}

// ---------------------------------------------------------------------------
// 14. Shares that could get lost
// ---------------------------------------------------------------------------

#[test]
fn item_14_unconfirmed_shares_are_served_again_from_the_same_index() {
    let (mut alice, _) = device("@alice:x", "A1");
    let (mut bob, mut bob_keys) = device("@bob:x", "B1");
    let (mut carol, mut carol_keys) = device("@carol:x", "C1");
    let bob_device = connect(&mut alice, &mut bob_keys);
    let carol_device = connect(&mut alice, &mut carol_keys);
    let devices = [bob_device.clone(), carol_device.clone()];
    let lost = alice.share_room_key(ROOM, &devices).unwrap();
    // The messages keep the order the devices were given, and carry the
    // sender key the recipient needs.
    assert_eq!(
        lost.messages[0].recipient_key,
        bob.identity_keys().curve25519
    );
    assert_eq!(
        lost.messages[1].recipient_key,
        carol.identity_keys().curve25519
    );
    assert!(
        lost.messages
            .iter()
            .all(|m| m.sender_key == alice.identity_keys().curve25519)
    );
    // The app crashed before sending; events went out meanwhile.
    let early = send(&mut alice, "sent before the shares arrived");
    let retry = alice.share_room_key(ROOM, &devices).unwrap();
    assert!(!retry.rotated);
    assert_eq!(retry.messages.len(), 2);
    deliver(&mut alice, &retry, &mut [&mut bob, &mut carol]);
    // Served from the index first offered: the early event is readable.
    assert!(bob.decrypt_event(ROOM, "$early", &early).is_ok());
    assert!(carol.decrypt_event(ROOM, "$early", &early).is_ok());
    // Confirmed: nothing more to send.
    assert!(
        alice
            .share_room_key(ROOM, &devices)
            .unwrap()
            .messages
            .is_empty()
    );
    // The app can still re-serve one device that reports the key missing.
    let again = alice.reshare_room_key(ROOM, &bob_device).unwrap().unwrap();
    let received = bob
        .receive_device_message("@alice:x", &again.sender_key, &again.message)
        .unwrap();
    assert_eq!(received.added, KeyAdded::Unchanged);
    assert_eq!(received.first_index, 0);
    // A device never offered the key is not re-served through this door.
    let (_, mut dave_keys) = device("@dave:x", "D1");
    let dave = connect(&mut alice, &mut dave_keys);
    assert!(alice.reshare_room_key(ROOM, &dave).unwrap().is_none());
}

#[test]
fn item_14_an_unconfirmed_late_device_gets_the_key_from_when_it_was_offered() {
    let mut r = room();
    send(&mut r.alice, "before Dave");
    let (mut dave, mut dave_keys) = device("@dave:x", "D1");
    let dave_device = connect(&mut r.alice, &mut dave_keys);
    let members = [r.bob_device.clone(), r.carol_device.clone(), dave_device];
    let offered = r.alice.share_room_key(ROOM, &members).unwrap();
    assert_eq!(offered.messages.len(), 1);
    let during = send(&mut r.alice, "after Dave was offered the key");
    let retry = r.alice.share_room_key(ROOM, &members).unwrap();
    deliver(&mut r.alice, &retry, &mut [&mut dave]);
    let received_index = dave.room_keys()[0].first_index;
    assert_eq!(received_index, 1, "from when Dave was first offered it");
    assert!(dave.decrypt_event(ROOM, "$d", &during).is_ok());
}

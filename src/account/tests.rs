use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;

use super::*;
use crate::consts::{CLOCK_SKEW_TOLERANCE_MS, FALLBACK_KEY_GRACE_MS, MAX_FALLBACK_SESSIONS};
use crate::keys::base64_encode;
use crate::pickle::{PickleError, PickleKey};
use crate::session::DeviceMessage;

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn pickle_of(account: &Account) -> String {
    account.pickle_with_rng(&PickleKey::from_bytes(&mut [7; 32]), &mut rng(0))
}

fn hex32(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

#[test]
fn device_keys_verify_and_reject_tampering() {
    let account = Account::new_with_rng(&mut rng(1));
    let keys = account.device_keys("@alice:example.org", "PHONE").unwrap();
    let verified = keys.check_self_signature().unwrap();
    assert_eq!(verified.identity_keys(), account.identity_keys());
    assert_eq!(verified.user_id(), "@alice:example.org");
    let json = serde_json::to_string(&keys).unwrap();
    let back: DeviceKeys = serde_json::from_str(&json).unwrap();
    assert_eq!(back.check_self_signature().unwrap(), verified);

    let mut forged = keys.clone();
    forged.device_id = "LAPTOP".into();
    assert_eq!(
        forged.check_self_signature(),
        Err(AccountError::BadDeviceKeysSignature)
    );
    let mut forged = keys.clone();
    forged.keys.curve25519 = Curve25519PublicKey::from_bytes([9; 32]);
    assert_eq!(
        forged.check_self_signature(),
        Err(AccountError::BadDeviceKeysSignature)
    );
    let mut forged = keys;
    forged.user_id = "x".repeat(256);
    assert!(matches!(
        forged.check_self_signature(),
        Err(AccountError::InvalidDeviceKeys(_))
    ));
    assert!(account.device_keys("", "D").is_err());
    assert!(serde_json::from_str::<DeviceKeys>("{\"user_id\":1}").is_err());
}

#[test]
fn one_time_keys_are_bounded_and_evictions_reported() {
    let mut account = Account::new_with_rng(&mut rng(2));
    let first = account.generate_one_time_keys_with_rng(MAX_ONE_TIME_KEYS, &mut rng(3));
    assert_eq!(first.created.len(), MAX_ONE_TIME_KEYS);
    assert!(first.removed.is_empty());
    let second = account.generate_one_time_keys_with_rng(10, &mut rng(4));
    assert_eq!(second.removed, first.created[..10].to_vec());
    assert_eq!(account.stored_one_time_key_count(), MAX_ONE_TIME_KEYS);
    // Asking for more than the store holds creates only what fits.
    let third = account.generate_one_time_keys_with_rng(500, &mut rng(5));
    assert_eq!(third.created.len(), MAX_ONE_TIME_KEYS);
}

#[test]
fn published_keys_are_no_longer_listed() {
    let mut account = Account::new_with_rng(&mut rng(6));
    account.generate_one_time_keys_with_rng(3, &mut rng(7));
    account.rotate_fallback_key_with_rng(0, &mut rng(8));
    let keys = account.one_time_keys();
    assert_eq!(keys.len(), 3);
    let ed = account.identity_keys().ed25519;
    for k in &keys {
        k.verify(&ed).unwrap();
        assert!(!k.fallback);
    }
    let fallback = account.unpublished_fallback_key().unwrap();
    fallback.verify(&ed).unwrap();
    assert!(fallback.fallback);
    // A one-time key signature does not verify as a fallback key signature.
    let mut relabelled = keys[0].clone();
    relabelled.fallback = true;
    assert_eq!(
        relabelled.verify(&ed),
        Err(AccountError::BadOneTimeKeySignature)
    );
    // Marking exactly what was handed out: a key made in between (on
    // another thread, say) stays unpublished.
    let made_in_between = account.generate_one_time_keys_with_rng(1, &mut rng(9));
    let mut handed_out = keys.clone();
    handed_out.push(fallback);
    account.mark_keys_as_published(&handed_out);
    let left = account.one_time_keys();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, made_in_between.created[0]);
    assert!(account.unpublished_fallback_key().is_none());
    assert!(account.fallback_key().is_some());
    // Keys the account does not hold (or a wrong id) are ignored.
    let mut foreign = left[0].clone();
    foreign.key_id = KeyId(999);
    account.mark_keys_as_published(&[foreign]);
    assert_eq!(account.one_time_keys().len(), 1);
    account.mark_keys_as_published(&left);
    assert!(account.one_time_keys().is_empty());
    let json = serde_json::to_string(&keys[0]).unwrap();
    assert_eq!(
        serde_json::from_str::<SignedOneTimeKey>(&json).unwrap(),
        keys[0]
    );
}

struct Pair {
    alice: Account,
    bob: Account,
    bob_device: SelfSignedDevice,
}

fn pair(seed: u8) -> Pair {
    let mut r = rng(seed);
    let alice = Account::new_with_rng(&mut r);
    let mut bob = Account::new_with_rng(&mut r);
    bob.generate_one_time_keys_with_rng(4, &mut r);
    bob.rotate_fallback_key_with_rng(0, &mut r);
    let bob_device = bob
        .device_keys("@bob:x", "B")
        .unwrap()
        .check_self_signature()
        .unwrap();
    Pair {
        alice,
        bob,
        bob_device,
    }
}

fn pre_key(session: &mut Session, text: &[u8]) -> PreKeyMessage {
    match session.encrypt(text).unwrap() {
        DeviceMessage::PreKey(m) => m,
        DeviceMessage::Normal(_) => panic!("expected a pre-key message"),
    }
}

#[test]
fn forged_one_time_key_signature_is_rejected() {
    let p = pair(10);
    let mut key = p.bob.one_time_keys()[0].clone();
    key.key = Curve25519PublicKey::from_bytes([4; 32]);
    assert_eq!(
        p.alice
            .create_outbound_session(&p.bob_device, &key)
            .unwrap_err(),
        AccountError::BadOneTimeKeySignature
    );
    // Signed by someone else.
    let mallory = Account::new_with_rng(&mut rng(11));
    let mut key = p.bob.one_time_keys()[0].clone();
    key.signature = mallory.sign_raw(&SignedOneTimeKey::signed_bytes(key.key_id, &key.key, false));
    assert_eq!(
        p.alice
            .create_outbound_session(&p.bob_device, &key)
            .unwrap_err(),
        AccountError::BadOneTimeKeySignature
    );
}

#[test]
fn low_order_peer_keys_are_rejected() {
    let mut p = pair(12);
    for hex in crate::keys::tests::LOW_ORDER_X25519 {
        let low = Curve25519PublicKey::from_bytes(hex32(hex));
        // A low-order one-time key, correctly signed by its (malicious) owner.
        let id = KeyId(77);
        let key = SignedOneTimeKey {
            key_id: id,
            key: low,
            fallback: false,
            signature: p
                .bob
                .sign_raw(&SignedOneTimeKey::signed_bytes(id, &low, false)),
        };
        assert_eq!(
            p.alice
                .create_outbound_session(&p.bob_device, &key)
                .unwrap_err(),
            AccountError::Session(SessionError::LowOrderKey)
        );
        // A low-order identity key in the peer's (self-signed) bundle.
        let mut device = p.bob.device_keys("@bob:x", "B").unwrap();
        device.keys.curve25519 = low;
        device.signature = p.bob.sign_raw(
            &DeviceKeys::signed_bytes(
                &device.user_id,
                &device.device_id,
                &device.keys,
                &device.protocols,
            )
            .unwrap(),
        );
        let verified = device.check_self_signature().unwrap();
        let otk = p.bob.one_time_keys()[0].clone();
        assert_eq!(
            p.alice
                .create_outbound_session(&verified, &otk)
                .unwrap_err(),
            AccountError::Session(SessionError::LowOrderKey)
        );
    }
    // Inbound: a pre-key message with a low-order base key consumes nothing.
    let otk = p.bob.one_time_keys()[0].clone();
    let mut session = p
        .alice
        .create_outbound_session(&p.bob_device, &otk)
        .unwrap();
    let mut message = pre_key(&mut session, b"x");
    message.base_key = Curve25519PublicKey::from_bytes([0; 32]);
    let before = pickle_of(&p.bob);
    assert!(p.bob.create_inbound_session(&message).is_err());
    assert_eq!(pickle_of(&p.bob), before);
}

#[test]
fn unknown_one_time_key_consumes_nothing() {
    let mut p = pair(13);
    let otk = p.bob.one_time_keys()[0].clone();
    let mut session = p
        .alice
        .create_outbound_session(&p.bob_device, &otk)
        .unwrap();
    let mut message = pre_key(&mut session, b"x");
    message.one_time_key = Curve25519PublicKey::from_bytes([8; 32]);
    let before = pickle_of(&p.bob);
    assert_eq!(
        p.bob.create_inbound_session(&message).unwrap_err(),
        AccountError::UnknownOneTimeKey
    );
    assert_eq!(pickle_of(&p.bob), before);
}

#[test]
fn one_time_key_is_removed_only_after_success() {
    let mut p = pair(14);
    let otk = p.bob.one_time_keys()[0].clone();
    let mut session = p
        .alice
        .create_outbound_session(&p.bob_device, &otk)
        .unwrap();
    let genuine = pre_key(&mut session, b"genuine");
    let mut forged = genuine.clone();
    forged.message.ciphertext[0] ^= 1;
    let before = pickle_of(&p.bob);
    assert_eq!(
        p.bob.create_inbound_session(&forged).unwrap_err(),
        AccountError::Session(SessionError::Authentication)
    );
    assert_eq!(pickle_of(&p.bob), before);
    assert_eq!(p.bob.stored_one_time_key_count(), 4);
    let created = p.bob.create_inbound_session(&genuine).unwrap();
    assert_eq!(created.plaintext, b"genuine");
    assert_eq!(created.session.peer_identity(), p.alice.identity_keys());
    assert_eq!(p.bob.stored_one_time_key_count(), 3);
    // The same pre-key message cannot create a second session.
    assert_eq!(
        p.bob.create_inbound_session(&genuine).unwrap_err(),
        AccountError::UnknownOneTimeKey
    );
}

#[test]
fn forged_binding_signature_is_rejected() {
    let mut p = pair(15);
    let otk = p.bob.one_time_keys()[0].clone();
    let mut session = p
        .alice
        .create_outbound_session(&p.bob_device, &otk)
        .unwrap();
    let mut message = pre_key(&mut session, b"x");
    // Claim another device's Ed25519 key.
    let mallory = Account::new_with_rng(&mut rng(16));
    message.identity_keys.ed25519 = mallory.identity_keys().ed25519;
    assert_eq!(
        p.bob.create_inbound_session(&message).unwrap_err(),
        AccountError::Session(SessionError::BadBinding)
    );
}

#[test]
fn fallback_key_current_and_previous_both_work() {
    let mut p = pair(17);
    let old_fallback = p.bob.fallback_key().unwrap();
    p.bob.rotate_fallback_key_with_rng(0, &mut rng(18));
    let new_fallback = p.bob.fallback_key().unwrap();
    for key in [&old_fallback, &new_fallback, &old_fallback] {
        let mut s = p.alice.create_outbound_session(&p.bob_device, key).unwrap();
        let m = pre_key(&mut s, b"via fallback");
        assert_eq!(
            p.bob.create_inbound_session(&m).unwrap().plaintext,
            b"via fallback"
        );
    }
    assert!(p.bob.forget_previous_fallback_key());
    let mut s = p
        .alice
        .create_outbound_session(&p.bob_device, &old_fallback)
        .unwrap();
    let m = pre_key(&mut s, b"x");
    assert_eq!(
        p.bob.create_inbound_session(&m).unwrap_err(),
        AccountError::UnknownOneTimeKey
    );
    // Rotating twice drops the oldest and reports it.
    let dropped = p.bob.rotate_fallback_key_with_rng(0, &mut rng(19));
    assert_eq!(dropped, None);
    let dropped = p.bob.rotate_fallback_key_with_rng(0, &mut rng(20));
    assert_eq!(dropped, Some(new_fallback.key));
}

#[test]
fn a_replayed_fallback_pre_key_message_is_refused() {
    // Regression (security review, item 3): a pre-key message built on the
    // fallback key recreated its session every time it was replayed.
    let mut p = pair(30);
    let fallback = p.bob.fallback_key().unwrap();
    let mut s = p
        .alice
        .create_outbound_session(&p.bob_device, &fallback)
        .unwrap();
    let m = pre_key(&mut s, b"first");
    assert!(!p.bob.fallback_key_used());
    p.bob.create_inbound_session(&m).unwrap();
    assert!(p.bob.fallback_key_used());
    let before = pickle_of(&p.bob);
    assert_eq!(
        p.bob.create_inbound_session(&m).unwrap_err(),
        AccountError::FallbackKeyReplay
    );
    assert_eq!(pickle_of(&p.bob), before);
    // The record survives a pickle, and rotation (the key is kept as the
    // previous one, still refusing the replay).
    let key = PickleKey::from_bytes(&mut [1; 32]);
    let mut bob = Account::from_pickle(&p.bob.pickle(&key), &key).unwrap();
    assert_eq!(
        bob.create_inbound_session(&m).unwrap_err(),
        AccountError::FallbackKeyReplay
    );
    bob.rotate_fallback_key_with_rng(1_000, &mut rng(31));
    assert!(!bob.fallback_key_used());
    assert_eq!(
        bob.create_inbound_session(&m).unwrap_err(),
        AccountError::FallbackKeyReplay
    );
    // A new session from the previous key still works during the grace
    // period...
    let mut s2 = p
        .alice
        .create_outbound_session(&p.bob_device, &fallback)
        .unwrap();
    let m2 = pre_key(&mut s2, b"late but genuine");
    assert!(!bob.forget_expired_fallback_key(1_000 + FALLBACK_KEY_GRACE_MS - 1));
    let late = bob.create_inbound_session(&m2).unwrap();
    assert_eq!(late.plaintext, b"late but genuine");
    // ...and after it the previous key is gone.
    assert!(bob.forget_expired_fallback_key(1_000 + FALLBACK_KEY_GRACE_MS));
    let mut s3 = p
        .alice
        .create_outbound_session(&p.bob_device, &fallback)
        .unwrap();
    assert_eq!(
        bob.create_inbound_session(&pre_key(&mut s3, b"too late"))
            .unwrap_err(),
        AccountError::UnknownOneTimeKey
    );
}

#[test]
fn a_clock_gone_back_does_not_extend_the_previous_fallback_key() {
    let mut p = pair(32);
    p.bob.rotate_fallback_key_with_rng(10_000_000, &mut rng(33));
    assert!(
        !p.bob
            .forget_expired_fallback_key(10_000_000 - CLOCK_SKEW_TOLERANCE_MS)
    );
    assert!(
        p.bob
            .forget_expired_fallback_key(10_000_000 - CLOCK_SKEW_TOLERANCE_MS - 1)
    );
}

#[test]
fn a_fallback_key_creates_a_bounded_number_of_sessions() {
    let mut p = pair(34);
    let fallback = p.bob.fallback_key().unwrap();
    for i in 0..MAX_FALLBACK_SESSIONS {
        let mut s = p
            .alice
            .create_outbound_session_with_rng(
                &p.bob_device,
                &fallback,
                &mut ChaCha20Rng::seed_from_u64(1_000_000 + i as u64),
            )
            .unwrap();
        // Distinct base keys make distinct sessions (seeded per i).
        p.bob
            .create_inbound_session(&pre_key(&mut s, b"x"))
            .unwrap();
    }
    let mut s = p
        .alice
        .create_outbound_session(&p.bob_device, &fallback)
        .unwrap();
    let before = pickle_of(&p.bob);
    assert_eq!(
        p.bob
            .create_inbound_session(&pre_key(&mut s, b"one more"))
            .unwrap_err(),
        AccountError::FallbackKeyExhausted
    );
    assert_eq!(pickle_of(&p.bob), before);
    // A new fallback key works again.
    p.bob.rotate_fallback_key_with_rng(0, &mut rng(35));
    let fresh = p.bob.fallback_key().unwrap();
    let mut s = p
        .alice
        .create_outbound_session(&p.bob_device, &fresh)
        .unwrap();
    p.bob
        .create_inbound_session(&pre_key(&mut s, b"fresh"))
        .unwrap();
}

#[test]
fn pickle_round_trip_and_size() {
    let mut account = Account::new_with_rng(&mut rng(21));
    account.generate_one_time_keys_with_rng(50, &mut rng(22));
    account.rotate_fallback_key_with_rng(0, &mut rng(23));
    let key = PickleKey::from_bytes(&mut [1; 32]);
    let text = account.pickle(&key);
    assert!(text.len() < 4096, "{} characters", text.len());
    let restored = Account::from_pickle(&text, &key).unwrap();
    assert_eq!(pickle_of(&restored), pickle_of(&account));
    assert_eq!(restored.one_time_keys(), account.one_time_keys());
    assert_eq!(restored.fallback_key(), account.fallback_key());
    let wrong = PickleKey::from_bytes(&mut [2; 32]);
    assert_eq!(
        Account::from_pickle(&text, &wrong).unwrap_err(),
        PickleError::Decryption
    );
    assert!(Account::from_pickle(&text[..text.len() - 4], &key).is_err());
}

#[test]
fn debug_shows_no_secret_bytes() {
    let mut account = Account::new_with_rng(&mut rng(24));
    account.generate_one_time_keys_with_rng(2, &mut rng(25));
    let debug = format!("{account:?}");
    let mut secrets = vec![
        account.signing.to_bytes().to_vec(),
        account.curve_secret.to_bytes().to_vec(),
    ];
    for k in &account.keys.one_time.keys {
        secrets.push(k.secret.to_bytes().to_vec());
        assert!(!format!("{k:?}").contains(&base64_encode(k.secret.as_bytes())));
    }
    for secret in secrets {
        assert!(!debug.contains(&base64_encode(&secret)));
        assert!(!debug.contains(&format!("{:?}", &secret[..4])));
    }
}

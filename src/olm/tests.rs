use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;

use super::*;
use crate::session::SessionError;
use crate::{PickleKey, SessionId};

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Alice's session and Bob's, after Bob has read Alice's first message.
fn pair(seed: u8) -> (OlmAccount, OlmSession, OlmAccount, OlmSession) {
    let mut r = rng(seed);
    let alice = OlmAccount::new_with_rng(&mut r);
    let mut bob = OlmAccount::new_with_rng(&mut r);
    bob.generate_one_time_keys_with_rng(1, &mut r);
    let (_, otk) = bob.one_time_keys()[0];
    let mut a = alice
        .create_outbound_session_with_rng(bob.identity_keys().curve25519, otk, &mut r)
        .unwrap();
    let OlmMessage::PreKey(first) = a.encrypt_with_rng(b"hi", &mut r).unwrap() else {
        panic!("first message is a pre-key message");
    };
    let created = bob
        .create_inbound_session(alice.identity_keys().curve25519, &first)
        .unwrap();
    assert_eq!(created.plaintext, b"hi");
    assert_eq!(bob.stored_one_time_key_count(), 0);
    (alice, a, bob, created.session)
}

#[test]
fn conversation_reorder_replay_and_pickles() {
    let (alice, mut a, bob, mut b) = pair(1);
    assert_eq!(a.session_id(), b.session_id());
    let reply = b.encrypt(b"hello").unwrap();
    assert!(!reply.is_pre_key());
    assert_eq!(a.decrypt(&reply).unwrap(), b"hello");
    assert!(matches!(
        a.decrypt(&reply),
        Err(SessionError::MessageKeyGone { .. })
    ));
    // Three chains in flight, read in reverse.
    let mut late = Vec::new();
    for turn in 0..3u8 {
        late.push(a.encrypt(&[turn]).unwrap());
        let back = b.encrypt(&[turn]).unwrap();
        assert_eq!(a.decrypt(&back).unwrap(), [turn]);
    }
    for (turn, message) in late.iter().enumerate().rev() {
        assert_eq!(b.decrypt(message).unwrap(), [turn as u8]);
    }
    let key = PickleKey::from_bytes(&mut [9; 32]);
    let text = a.pickle(&key);
    let mut restored =
        OlmSession::from_pickle(&text, &key, &alice.identity_keys().curve25519).unwrap();
    assert!(OlmSession::from_pickle(&text, &key, &bob.identity_keys().curve25519).is_err());
    let next = restored.encrypt(b"after").unwrap();
    assert_eq!(b.decrypt(&next).unwrap(), b"after");
    let account = OlmAccount::from_pickle(&bob.pickle(&key), &key).unwrap();
    assert_eq!(account.identity_keys(), bob.identity_keys());
}

#[test]
fn failed_decryption_changes_nothing() {
    let (_, mut a, _, mut b) = pair(2);
    let message = b.encrypt(b"x").unwrap();
    let mut bytes = message.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let forged = OlmMessage::from_parts(1, &bytes).unwrap();
    let before = a.pickle(&PickleKey::from_bytes(&mut [1; 32]));
    assert_eq!(a.decrypt(&forged), Err(SessionError::Authentication));
    let generation = a.pickle_generation();
    assert_eq!(
        a.pickle(&PickleKey::from_bytes(&mut [1; 32])).len(),
        before.len()
    );
    assert_eq!(a.pickle_generation(), generation);
    assert_eq!(a.decrypt(&message).unwrap(), b"x");
}

#[test]
fn session_id_is_sha256_of_the_three_keys() {
    let (_, a, _, _) = pair(3);
    let keys = a.session_keys();
    let expected = crate::crypto::sha256(&[
        keys.identity_key.as_bytes(),
        keys.base_key.as_bytes(),
        keys.one_time_key.as_bytes(),
    ]);
    assert_eq!(a.session_id(), SessionId::from_bytes(expected));
}

#[test]
fn libolm_session_round_trip_through_our_encoder() {
    // A responder session that has not replied yet has no sender chain
    // (libolm's lazy ratchet); write it in libolm's layout and import it.
    let (alice, mut a, bob, b) = pair(4);
    let mut contents = 1u32.to_be_bytes().to_vec();
    contents.push(1);
    let keys = b.session_keys();
    for k in [keys.identity_key, keys.base_key, keys.one_time_key] {
        contents.extend_from_slice(k.as_bytes());
    }
    contents.extend_from_slice(b.ratchet.root.0.expose());
    contents.extend_from_slice(&0u32.to_be_bytes());
    contents.extend_from_slice(&1u32.to_be_bytes());
    let live = b.ratchet.live().unwrap();
    contents.extend_from_slice(live.ratchet_key.as_bytes());
    contents.extend_from_slice(live.chain.key.expose());
    contents.extend_from_slice(&live.chain.index.to_be_bytes());
    contents.extend_from_slice(&0u32.to_be_bytes());
    let pickle = crate::libolm::seal(&contents, b"secret");
    let mut imported =
        OlmSession::from_libolm_pickle(&pickle, b"secret", &bob.identity_keys().curve25519)
            .unwrap();
    assert_eq!(imported.session_id(), b.session_id());
    assert_eq!(
        imported.peer_identity_key(),
        Some(alice.identity_keys().curve25519)
    );
    let message = a.encrypt(b"more").unwrap();
    assert_eq!(imported.decrypt(&message).unwrap(), b"more");
    let reply = imported.encrypt(b"reply").unwrap();
    assert_eq!(a.decrypt(&reply).unwrap(), b"reply");
    assert_eq!(
        OlmSession::from_libolm_pickle(&pickle, b"wrong", &bob.identity_keys().curve25519)
            .unwrap_err(),
        crate::LibolmPickleError::Decryption
    );
}

#[test]
fn debug_output_shows_no_secret() {
    let (alice, a, _bob, _b) = pair(5);
    let mut group = crate::MegolmOutboundSession::new_with_rng(&mut rng(6));
    let key = group.session_key();
    let inbound = crate::MegolmInboundSession::new(&key).unwrap();
    group.encrypt(b"x").unwrap();
    let export = inbound.export_at(0).unwrap();
    let debug = [
        format!("{alice:?}"),
        format!("{a:?}"),
        format!("{group:?}"),
        format!("{inbound:?}"),
        format!("{key:?}"),
        format!("{export:?}"),
    ]
    .concat();
    let sending = a.ratchet.sending.as_ref().unwrap();
    let mut secrets: Vec<Vec<u8>> = vec![
        a.ratchet.root.0.expose().to_vec(),
        sending.chain.key.expose().to_vec(),
        sending.key.secret.as_bytes().to_vec(),
        alice.curve_secret.as_bytes().to_vec(),
        alice.signing.seed().unwrap().to_vec(),
        group.signing.seed().unwrap().to_vec(),
    ];
    secrets.extend(
        group
            .ratchet
            .to_bytes()
            .expose()
            .chunks(32)
            .map(<[u8]>::to_vec),
    );
    secrets.extend(
        key.ratchet
            .to_bytes()
            .expose()
            .chunks(32)
            .map(<[u8]>::to_vec),
    );
    for secret in secrets {
        let b64 = crate::keys::base64_encode(&secret);
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !debug.contains(&b64[..16]) && !debug.contains(&hex[..16]),
            "{debug}"
        );
        assert!(!debug.contains(&format!("{:?}", &secret[..6])));
    }
}

#[test]
fn the_account_follows_the_native_pre_key_rules() {
    // One implementation (account/pre_keys.rs) serves both accounts: a
    // replayed pre-key message built on the fallback key is refused, the
    // previous fallback key expires, and exactly the keys handed out are
    // marked published.
    let mut r = rng(40);
    let alice = OlmAccount::new_with_rng(&mut r);
    let mut bob = OlmAccount::new_with_rng(&mut r);
    bob.rotate_fallback_key_with_rng(1_000, &mut r);
    let (_, fallback) = bob.fallback_key().unwrap();
    let mut outbound = alice
        .create_outbound_session_with_rng(bob.identity_keys().curve25519, fallback, &mut r)
        .unwrap();
    let OlmMessage::PreKey(pre_key) = outbound.encrypt(b"first").unwrap() else {
        unreachable!()
    };
    assert!(!bob.fallback_key_used());
    bob.create_inbound_session(alice.identity_keys().curve25519, &pre_key)
        .unwrap();
    assert!(bob.fallback_key_used());
    assert_eq!(
        bob.create_inbound_session(alice.identity_keys().curve25519, &pre_key)
            .unwrap_err(),
        crate::AccountError::FallbackKeyReplay
    );
    bob.rotate_fallback_key_with_rng(2_000, &mut r);
    assert_eq!(
        bob.create_inbound_session(alice.identity_keys().curve25519, &pre_key)
            .unwrap_err(),
        crate::AccountError::FallbackKeyReplay
    );
    assert!(bob.forget_expired_fallback_key(2_000 + crate::consts::FALLBACK_KEY_GRACE_MS));
    assert_eq!(
        bob.create_inbound_session(alice.identity_keys().curve25519, &pre_key)
            .unwrap_err(),
        crate::AccountError::UnknownOneTimeKey
    );
    // Exact publication: a key made after the list was handed out stays.
    bob.generate_one_time_keys_with_rng(2, &mut r);
    let handed_out = bob.one_time_keys();
    bob.generate_one_time_keys_with_rng(1, &mut r);
    bob.mark_keys_as_published(&handed_out);
    assert_eq!(bob.one_time_keys().len(), 1);
    // And the records survive the pickle.
    let key = crate::PickleKey::from_bytes(&mut [3; 32]);
    let restored = OlmAccount::from_pickle(&bob.pickle(&key), &key).unwrap();
    assert_eq!(restored.one_time_keys(), bob.one_time_keys());
}

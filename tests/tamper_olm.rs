//! Tamper sweep over every Olm v1, Megolm v1 and libolm format: every
//! single-byte change (two different changes per byte) and every
//! truncation of a valid message, key, export or pickle gives a typed
//! error, and the object it was offered to is unchanged (its next pickle
//! has the same generation, so the same contents).

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::{
    MegolmExportedKey, MegolmInboundSession, MegolmMessage, MegolmOutboundSession,
    MegolmSessionKey, OlmAccount, OlmMessage, OlmSession, PickleKey,
};

/// A named import or restore that says whether it accepted the text.
type Restore<'a> = Box<dyn Fn(&str) -> bool + 'a>;

fn key() -> PickleKey {
    PickleKey::from_bytes(&mut [3; 32])
}

/// Every variant of `bytes` with one byte changed (xor 0x01 and xor 0x80)
/// and every strict prefix.
fn variants(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut v = bytes.to_vec();
            v[i] ^= flip;
            out.push(v);
        }
    }
    for len in 0..bytes.len() {
        out.push(bytes[..len].to_vec());
    }
    out
}

fn olm_pair(rng: &mut ChaCha20Rng) -> (OlmAccount, OlmSession, OlmAccount, OlmSession) {
    let alice = OlmAccount::new_with_rng(rng);
    let mut bob = OlmAccount::new_with_rng(rng);
    bob.generate_one_time_keys_with_rng(2, rng);
    let (_, otk) = bob.one_time_keys()[0];
    let mut a = alice
        .create_outbound_session_with_rng(bob.identity_keys().curve25519, otk, rng)
        .unwrap();
    let OlmMessage::PreKey(m) = a.encrypt_with_rng(b"hi", rng).unwrap() else {
        unreachable!()
    };
    let b = bob
        .create_inbound_session(alice.identity_keys().curve25519, &m)
        .unwrap()
        .session;
    (alice, a, bob, b)
}

#[test]
fn olm_messages() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let (_alice, mut a, _bob, mut b) = olm_pair(&mut rng);
    let normal = b.encrypt_with_rng(b"normal message", &mut rng).unwrap();
    a.pickle(&key());
    let generation = a.pickle_generation();
    let mut cases = 0;
    for kind in [0u8, 1] {
        for v in variants(&normal.to_bytes()) {
            if let Ok(m) = OlmMessage::from_parts(kind, &v) {
                assert!(a.decrypt(&m).is_err());
            }
            cases += 1;
        }
    }
    a.pickle(&key());
    assert_eq!(
        a.pickle_generation(),
        generation,
        "a failed decryption changed the session"
    );
    assert_eq!(a.decrypt(&normal).unwrap(), b"normal message");
    assert!(cases > 100);
}

#[test]
fn olm_pre_key_messages_to_a_session_and_to_an_account() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let (alice, mut a, mut bob, mut b) = olm_pair(&mut rng);
    // A second pre-key message of the established session, and one that
    // starts a new session from Bob's second key.
    let again = a.encrypt_with_rng(b"again", &mut rng).unwrap();
    let (_, otk2) = bob.one_time_keys()[0];
    let mut a2 = alice
        .create_outbound_session_with_rng(bob.identity_keys().curve25519, otk2, &mut rng)
        .unwrap();
    let fresh = a2.encrypt_with_rng(b"fresh", &mut rng).unwrap();
    b.pickle(&key());
    bob.pickle(&key());
    let (session_generation, account_generation) = (b.pickle_generation(), bob.pickle_generation());
    for v in variants(&again.to_bytes()) {
        if let Ok(m) = OlmMessage::from_parts(0, &v) {
            assert!(b.decrypt(&m).is_err());
        }
    }
    for v in variants(&fresh.to_bytes()) {
        if let Ok(OlmMessage::PreKey(m)) = OlmMessage::from_parts(0, &v) {
            assert!(
                bob.create_inbound_session(alice.identity_keys().curve25519, &m)
                    .is_err()
            );
        }
    }
    b.pickle(&key());
    bob.pickle(&key());
    assert_eq!(b.pickle_generation(), session_generation);
    assert_eq!(bob.pickle_generation(), account_generation);
    assert_eq!(bob.stored_one_time_key_count(), 1);
    assert_eq!(b.decrypt(&again).unwrap(), b"again");
    let OlmMessage::PreKey(fresh) = fresh else {
        unreachable!()
    };
    assert!(
        bob.create_inbound_session(alice.identity_keys().curve25519, &fresh)
            .is_ok()
    );
}

#[test]
fn megolm_messages_session_keys_and_exports() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut outbound = MegolmOutboundSession::new_with_rng(&mut rng);
    let session_key = outbound.session_key();
    let mut inbound = MegolmInboundSession::new(&session_key).unwrap();
    let m0 = outbound.encrypt(b"zero").unwrap();
    let m1 = outbound.encrypt(b"one").unwrap();
    inbound.pickle(&key());
    let generation = inbound.pickle_generation();
    for v in variants(&m1.to_bytes()) {
        if let Ok(m) = MegolmMessage::from_bytes(&v) {
            assert!(inbound.decrypt(&m).is_err());
        }
    }
    inbound.pickle(&key());
    assert_eq!(inbound.pickle_generation(), generation);
    // Every change to a signed session key is refused (decode or signature).
    for v in variants(&session_key.to_bytes()) {
        if let Ok(k) = MegolmSessionKey::from_bytes(&v) {
            assert!(MegolmInboundSession::new(&k).is_err());
        }
    }
    // An export is unsigned: a changed export may import, but then it
    // cannot decrypt the real messages.
    let export = inbound.export_at(0).unwrap();
    for v in variants(&export.to_bytes()) {
        if let Ok(k) = MegolmExportedKey::from_bytes(&v) {
            let mut s = MegolmInboundSession::import(&k);
            assert!(s.decrypt(&m0).is_err() && s.decrypt(&m1).is_err());
        }
    }
    assert_eq!(inbound.decrypt(&m1).unwrap().plaintext, b"one");
}

#[test]
fn roomseal_pickles_of_the_new_types() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let (alice, a, _bob, _b) = olm_pair(&mut rng);
    let outbound = MegolmOutboundSession::new_with_rng(&mut rng);
    let inbound = MegolmInboundSession::new(&outbound.session_key()).unwrap();
    let owner = alice.identity_keys().curve25519;
    let pickles: Vec<(String, Restore)> = vec![
        (
            alice.pickle(&key()),
            Box::new(|t| OlmAccount::from_pickle(t, &key()).is_ok()),
        ),
        (
            a.pickle(&key()),
            Box::new(move |t| OlmSession::from_pickle(t, &key(), &owner).is_ok()),
        ),
        (
            outbound.pickle(&key()),
            Box::new(|t| MegolmOutboundSession::from_pickle(t, &key()).is_ok()),
        ),
        (
            inbound.pickle(&key()),
            Box::new(|t| MegolmInboundSession::from_pickle(t, &key()).is_ok()),
        ),
    ];
    for (text, restores) in &pickles {
        assert!(restores(text));
        let bytes = base64ct::Base64Unpadded::decode_vec(text).unwrap();
        for v in variants(&bytes) {
            assert!(!restores(&base64ct::Base64Unpadded::encode_string(&v)));
        }
    }
}

use base64ct::Encoding;

#[test]
fn libolm_pickles() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("vectors/libolm_v1.json")).unwrap();
    let key = v["pickle_key"].as_str().unwrap().as_bytes();
    let owner = roomseal::Curve25519PublicKey::from_base64(
        v["alice_identity"]["curve25519"].as_str().unwrap(),
    )
    .unwrap();
    let imports: Vec<(&str, Restore)> = vec![
        (
            "alice_account",
            Box::new(|t| OlmAccount::from_libolm_pickle(t, key).is_ok()),
        ),
        (
            "alice_session",
            Box::new(move |t| OlmSession::from_libolm_pickle(t, key, &owner).is_ok()),
        ),
        (
            "group_outbound",
            Box::new(|t| MegolmOutboundSession::from_libolm_pickle(t, key).is_ok()),
        ),
        (
            "group_inbound",
            Box::new(|t| MegolmInboundSession::from_libolm_pickle(t, key).is_ok()),
        ),
    ];
    for (name, imports) in &imports {
        let text = v[*name].as_str().unwrap();
        assert!(imports(text), "{name}");
        let bytes = base64ct::Base64Unpadded::decode_vec(text).unwrap();
        for variant in variants(&bytes) {
            assert!(
                !imports(&base64ct::Base64Unpadded::encode_string(&variant)),
                "{name}"
            );
        }
    }
}

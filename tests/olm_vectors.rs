//! Frozen known-answer vectors for every Olm v1 and Megolm v1 format
//! roomseal writes (tests/vectors/olm_v1.json), made from a seeded
//! generator: a regenerate-and-compare test (any change to a byte of the
//! wire fails here), the frozen Megolm message checked from the primitive
//! crates alone (HKDF `MEGOLM_KEYS`, AES-256-CBC, truncated HMAC, Ed25519),
//! and vodozemac reading the frozen group vectors.
//!
//! Regenerate (after a deliberate change): `ROOMSEAL_WRITE_VECTORS=1 cargo
//! test --test olm_vectors`.

use std::path::PathBuf;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::{
    MegolmInboundSession, MegolmMessage, MegolmOutboundSession, MegolmSessionKey, OlmAccount,
    OlmMessage,
};
use serde_json::{Value, json};

const WRITE_ENV: &str = "ROOMSEAL_WRITE_VECTORS";

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/olm_v1.json")
}

fn generate() -> Value {
    let mut rng = ChaCha20Rng::from_seed([0x42; 32]);
    let alice = OlmAccount::new_with_rng(&mut rng);
    let mut bob = OlmAccount::new_with_rng(&mut rng);
    bob.generate_one_time_keys_with_rng(1, &mut rng);
    let (key_id, otk) = bob.one_time_keys()[0];
    let mut a = alice
        .create_outbound_session_with_rng(bob.identity_keys().curve25519, otk, &mut rng)
        .unwrap();
    let pre_key = a.encrypt_with_rng(b"Hello, Bob", &mut rng).unwrap();
    let OlmMessage::PreKey(m) = &pre_key else {
        unreachable!()
    };
    let mut b = bob
        .create_inbound_session(alice.identity_keys().curve25519, m)
        .unwrap()
        .session;
    let reply = b.encrypt_with_rng(b"Hi Alice", &mut rng).unwrap();
    assert_eq!(a.decrypt(&reply).unwrap(), b"Hi Alice");
    let normal = a.encrypt_with_rng(b"Normal now", &mut rng).unwrap();

    let mut group = MegolmOutboundSession::new_with_rng(&mut rng);
    let session_key = group.session_key();
    let m0 = group.encrypt(b"group message 0").unwrap();
    let m1 = group.encrypt(b"group message 1").unwrap();
    let inbound = MegolmInboundSession::new(&session_key).unwrap();
    let export = inbound.export_at(1).unwrap();
    json!({
        "olm": {
            "alice_identity": alice.identity_keys(),
            "bob_identity": bob.identity_keys(),
            "bob_one_time_key": {"id": key_id.0, "key": otk},
            "alice_signature_of_abc": alice.sign(b"abc"),
            "session_id": a.session_id().to_base64(),
            "pre_key_message": pre_key,
            "reply": reply,
            "normal_message": normal,
        },
        "megolm": {
            "session_id": group.session_id().to_base64(),
            "session_key": session_key.to_base64().as_str(),
            "message_0": m0.to_base64(),
            "message_1": m1.to_base64(),
            "export_at_1": export.to_base64().as_str(),
        }
    })
}

#[test]
fn regenerated_vectors_match_the_frozen_file() {
    let fresh = generate();
    if std::env::var_os(WRITE_ENV).is_some_and(|v| v == "1") {
        std::fs::write(path(), serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    let frozen: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    assert_eq!(
        frozen, fresh,
        "the Olm/Megolm vectors changed: the wire, a derivation or the way random bytes are \
         drawn changed. If deliberate, regenerate with {WRITE_ENV}=1 and update PROTOCOL.md."
    );
}

#[test]
fn frozen_megolm_message_from_the_primitives_alone() {
    use aes::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
    use base64ct::{Base64Unpadded, Encoding};
    use hmac::{KeyInit, Mac};

    let frozen: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let key =
        Base64Unpadded::decode_vec(frozen["megolm"]["session_key"].as_str().unwrap()).unwrap();
    assert_eq!(key.len(), 229);
    assert_eq!(key[0], 2);
    assert_eq!(&key[1..5], &[0, 0, 0, 0]);
    let ratchet = &key[5..133];
    let signing =
        ed25519_dalek::VerifyingKey::from_bytes(key[133..165].try_into().unwrap()).unwrap();
    signing
        .verify_strict(
            &key[..165],
            &ed25519_dalek::Signature::from_slice(&key[165..]).unwrap(),
        )
        .unwrap();
    let message =
        Base64Unpadded::decode_vec(frozen["megolm"]["message_0"].as_str().unwrap()).unwrap();
    let (signed, signature) = message.split_at(message.len() - 64);
    signing
        .verify_strict(
            signed,
            &ed25519_dalek::Signature::from_slice(signature).unwrap(),
        )
        .unwrap();
    let (body, mac) = signed.split_at(signed.len() - 8);
    assert_eq!(&body[..3], &[3, 0x08, 0x00]);
    assert_eq!(body[3], 0x12);
    let ciphertext = &body[5..];
    assert_eq!(usize::from(body[4]), ciphertext.len());
    let mut okm = [0u8; 80];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&[0u8]), ratchet)
        .expand(b"MEGOLM_KEYS", &mut okm)
        .unwrap();
    let mut hmac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&okm[32..64]).unwrap();
    hmac.update(body);
    assert_eq!(&hmac.finalize().into_bytes()[..8], mac);
    let mut buf = ciphertext.to_vec();
    let plaintext = cbc::Decryptor::<aes::Aes256>::new(
        okm[..32].try_into().unwrap(),
        okm[64..].try_into().unwrap(),
    )
    .decrypt_padded::<Pkcs7>(&mut buf)
    .unwrap();
    assert_eq!(plaintext, b"group message 0");
}

#[test]
fn frozen_vectors_read_by_roomseal_and_vodozemac() {
    let frozen: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let key_text = frozen["megolm"]["session_key"].as_str().unwrap();
    let ours_key = MegolmSessionKey::from_base64(key_text).unwrap();
    let mut ours = MegolmInboundSession::new(&ours_key).unwrap();
    let mut theirs = vodozemac::megolm::InboundGroupSession::new(
        &vodozemac::megolm::SessionKey::from_base64(key_text).unwrap(),
        vodozemac::megolm::SessionConfig::version_1(),
    );
    for (i, name) in ["message_0", "message_1"].iter().enumerate() {
        let text = frozen["megolm"][*name].as_str().unwrap();
        let expected = format!("group message {i}");
        assert_eq!(
            ours.decrypt(&MegolmMessage::from_base64(text).unwrap())
                .unwrap()
                .plaintext,
            expected.as_bytes()
        );
        let v = vodozemac::megolm::MegolmMessage::from_base64(text).unwrap();
        assert_eq!(theirs.decrypt(&v).unwrap().plaintext, expected.as_bytes());
    }
    for name in ["pre_key_message", "reply", "normal_message"] {
        let m: OlmMessage = serde_json::from_value(frozen["olm"][name].clone()).unwrap();
        let (kind, body) = (m.message_type(), m.to_bytes());
        let v = vodozemac::olm::OlmMessage::from_parts(usize::from(kind), &body).unwrap();
        assert_eq!(v.to_parts().1, body);
    }
}

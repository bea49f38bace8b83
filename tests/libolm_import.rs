//! libolm pickles and messages made by libolm itself (python-olm, which
//! bundles libolm 3.2; see tests/vectors/libolm_gen.py) and by vodozemac's
//! libolm export: roomseal imports every one, keeps the identity (the same
//! keys, byte-identical signatures), reads the messages still in flight,
//! continues each conversation, and encrypts group messages byte for byte
//! as libolm would have.

use roomseal::{
    Curve25519PublicKey, Ed25519Signature, LibolmPickleError, MegolmExportedKey,
    MegolmInboundSession, MegolmMessage, MegolmOutboundSession, MegolmSessionKey, OlmAccount,
    OlmMessage, OlmSession,
};
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("vectors/libolm_v1.json");
    serde_json::from_str(text).unwrap()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))
}

fn message(v: &Value) -> (OlmMessage, String) {
    let kind = v["type"].as_u64().unwrap() as u8;
    (
        OlmMessage::from_base64_parts(kind, v["body"].as_str().unwrap()).unwrap(),
        v["plaintext"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn libolm_accounts_keep_their_identity_and_one_time_keys() {
    let v = vectors();
    let key = s(&v, "pickle_key").as_bytes();
    let alice = OlmAccount::from_libolm_pickle(s(&v, "alice_account"), key).unwrap();
    let ids = alice.identity_keys();
    assert_eq!(
        ids.curve25519.to_base64(),
        s(&v["alice_identity"], "curve25519")
    );
    assert_eq!(ids.ed25519.to_base64(), s(&v["alice_identity"], "ed25519"));
    // Ed25519 is deterministic: the imported expanded key signs exactly as
    // libolm did.
    let signature = alice.sign(s(&v, "signed_message").as_bytes());
    assert_eq!(
        signature,
        Ed25519Signature::from_base64(s(&v, "alice_signature")).unwrap()
    );
    assert!(
        ids.ed25519
            .verify(s(&v, "signed_message").as_bytes(), &signature)
            .is_ok()
    );

    // Bob's account still holds his second one-time key: Alice's pre-key
    // message to it starts a session.
    let mut bob = OlmAccount::from_libolm_pickle(s(&v, "bob_account"), key).unwrap();
    assert_eq!(
        bob.identity_keys().curve25519.to_base64(),
        s(&v["bob_identity"], "curve25519")
    );
    assert_eq!(bob.stored_one_time_key_count(), 1);
    let (pre_key, plaintext) = message(&v["pre_key_to_second_key"]);
    let OlmMessage::PreKey(pre_key) = pre_key else {
        panic!("pre-key message")
    };
    let created = bob
        .create_inbound_session(ids.curve25519, &pre_key)
        .unwrap();
    assert_eq!(created.plaintext, plaintext.as_bytes());
    assert_eq!(bob.stored_one_time_key_count(), 0);
    // A wrong key or an altered pickle is a typed error.
    assert_eq!(
        OlmAccount::from_libolm_pickle(s(&v, "alice_account"), b"wrong").unwrap_err(),
        LibolmPickleError::Decryption
    );
    assert!(matches!(
        OlmAccount::from_libolm_pickle(s(&v, "alice_session"), key),
        Err(LibolmPickleError::Version {
            expected: 4,
            found: 1
        })
    ));
}

#[test]
fn libolm_sessions_read_what_is_in_flight_and_continue() {
    let v = vectors();
    let key = s(&v, "pickle_key").as_bytes();
    let alice_key =
        Curve25519PublicKey::from_base64(s(&v["alice_identity"], "curve25519")).unwrap();
    let bob_key = Curve25519PublicKey::from_base64(s(&v["bob_identity"], "curve25519")).unwrap();
    let mut alice =
        OlmSession::from_libolm_pickle(s(&v, "alice_session"), key, &alice_key).unwrap();
    let mut bob = OlmSession::from_libolm_pickle(s(&v, "bob_session"), key, &bob_key).unwrap();
    assert_eq!(alice.session_id().to_base64(), s(&v, "session_id"));
    assert_eq!(bob.session_id().to_base64(), s(&v, "session_id"));
    assert_eq!(bob.peer_identity_key(), Some(alice_key));
    assert_eq!(alice.peer_identity_key(), None);
    let (to_alice, p) = message(&v["in_flight_to_alice"]);
    assert_eq!(alice.decrypt(&to_alice).unwrap(), p.as_bytes());
    let (to_bob, p) = message(&v["in_flight_to_bob"]);
    assert_eq!(bob.decrypt(&to_bob).unwrap(), p.as_bytes());
    for i in 0..5u8 {
        let m = bob.encrypt(&[i]).unwrap();
        assert_eq!(alice.decrypt(&m).unwrap(), [i]);
        let m = alice.encrypt(&[i, i]).unwrap();
        assert_eq!(bob.decrypt(&m).unwrap(), [i, i]);
    }
}

#[test]
fn libolm_group_sessions_keys_and_messages() {
    let v = vectors();
    let key = s(&v, "pickle_key").as_bytes();
    let messages: Vec<MegolmMessage> = v["group_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| MegolmMessage::from_base64(m.as_str().unwrap()).unwrap())
        .collect();
    let session_key = MegolmSessionKey::from_base64(s(&v, "group_session_key")).unwrap();
    assert_eq!(
        session_key.session_id().to_base64(),
        s(&v, "group_session_id")
    );
    let mut reader = MegolmInboundSession::new(&session_key).unwrap();
    for (i, m) in messages.iter().enumerate() {
        let d = reader.decrypt(m).unwrap();
        assert_eq!(d.plaintext, format!("group {i}").as_bytes());
        assert!(d.authenticated);
    }
    // The inbound pickle (verified key, latest ratchet at 1).
    let mut imported =
        MegolmInboundSession::from_libolm_pickle(s(&v, "group_inbound"), key).unwrap();
    assert_eq!(imported.first_known_index(), 0);
    assert_eq!(imported.authenticated_from(), Some(0));
    assert_eq!(
        imported.decrypt(&messages[2]).unwrap().plaintext,
        b"group 2"
    );
    // The export at 1.
    let export = MegolmExportedKey::from_base64(s(&v, "group_export_at_1")).unwrap();
    let mut exported = MegolmInboundSession::import(&export);
    assert_eq!(exported.first_known_index(), 1);
    assert!(exported.decrypt(&messages[0]).is_err());
    assert!(!exported.decrypt(&messages[1]).unwrap().authenticated);
    // The outbound pickle: the next message is byte for byte libolm's
    // (CBC with a derived IV and deterministic Ed25519).
    let mut outbound =
        MegolmOutboundSession::from_libolm_pickle(s(&v, "group_outbound"), key).unwrap();
    assert_eq!(outbound.session_id().to_base64(), s(&v, "group_session_id"));
    assert_eq!(outbound.message_index(), 3);
    let next = outbound.encrypt(b"group 3").unwrap();
    assert_eq!(next.to_base64(), s(&v, "group_next_message"));
    assert_eq!(reader.decrypt(&next).unwrap().plaintext, b"group 3");
}

#[test]
fn vodozemac_libolm_account_export_imports() {
    let mut account = vodozemac::olm::Account::new();
    account.generate_one_time_keys(5);
    account.generate_fallback_key();
    let pickle = account.to_libolm_pickle(b"a key of any length").unwrap();
    let ours = OlmAccount::from_libolm_pickle(&pickle, b"a key of any length").unwrap();
    assert_eq!(
        ours.identity_keys().curve25519.to_bytes(),
        account.curve25519_key().to_bytes()
    );
    assert_eq!(
        ours.identity_keys().ed25519.to_base64(),
        account.ed25519_key().to_base64()
    );
    assert_eq!(ours.stored_one_time_key_count(), 5);
    assert_eq!(ours.sign(b"m").to_bytes(), account.sign(b"m").to_bytes());
    // A vodozemac peer starts a session to one of those keys; the imported
    // account answers it.
    let mut ours = ours;
    let peer = vodozemac::olm::Account::new();
    let otk = *account.one_time_keys().values().next().unwrap();
    let mut outbound = peer
        .create_outbound_session(
            vodozemac::olm::SessionConfig::version_1(),
            account.curve25519_key(),
            otk,
        )
        .unwrap();
    let (kind, body) = outbound.encrypt(b"hello").unwrap().to_parts();
    let OlmMessage::PreKey(m) = OlmMessage::from_parts(kind as u8, &body).unwrap() else {
        panic!("pre-key")
    };
    let created = ours
        .create_inbound_session(
            Curve25519PublicKey::from_bytes(peer.curve25519_key().to_bytes()),
            &m,
        )
        .unwrap();
    assert_eq!(created.plaintext, b"hello");
}

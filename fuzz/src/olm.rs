//! Fuzz entry points for Matrix's protocols: Olm v1 and Megolm v1 decoders,
//! decryption with fixed sessions, inbound session creation with a fixed
//! account, libolm pickle import and the contents of roomseal's pickles of
//! the Olm and Megolm types.
//!
//! Shared by the cargo-fuzz targets in `fuzz/fuzz_targets/` (each includes
//! this file as a module) and by the stable replay test
//! `tests/fuzz_corpus.rs`, so both run the same code; it uses only
//! roomseal's public API (and the primitive crates, to seal fuzz input the
//! way PROTOCOL.md specifies). Each `pub fn` returns normally on every
//! input and panics only when a guarantee is broken: a decoded value that
//! does not re-encode to its input, a failed operation that changed state,
//! an altered input that was accepted.

#![allow(dead_code)]

use std::sync::OnceLock;

use base64ct::{Base64Unpadded, Encoding};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::{
    Curve25519PublicKey, MegolmExportedKey, MegolmInboundSession, MegolmMessage,
    MegolmOutboundSession, MegolmSessionKey, OlmAccount, OlmMessage, OlmSession, PickleKey,
};

/// Every Olm/Megolm fuzz target, named like its file in `fuzz/fuzz_targets/`.
pub const OLM_TARGETS: [&str; 7] = [
    "decode_olm_message",
    "olm_decrypt",
    "olm_inbound_session",
    "decode_megolm",
    "megolm_decrypt",
    "libolm_unpickle",
    "unpickle_olm_contents",
];

/// The entry function of the target `name`.
pub fn olm_entry(name: &str) -> Option<fn(&[u8])> {
    match name {
        "decode_olm_message" => Some(decode_olm_message),
        "olm_decrypt" => Some(olm_decrypt),
        "olm_inbound_session" => Some(olm_inbound_session),
        "decode_megolm" => Some(decode_megolm),
        "megolm_decrypt" => Some(megolm_decrypt),
        "libolm_unpickle" => Some(libolm_unpickle),
        "unpickle_olm_contents" => Some(unpickle_olm_contents),
        _ => None,
    }
}

const NONCE_SEED: u64 = 7;

fn key() -> PickleKey {
    PickleKey::from_bytes(&mut [0x5a; 32])
}

fn nonce_rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(NONCE_SEED)
}

/// Fixed objects, built once from seeded generators, kept as pickles.
struct Fixture {
    /// Bob's account (one one-time key left) and its pickle.
    bob_account: String,
    alice_identity: Curve25519PublicKey,
    bob_identity: Curve25519PublicKey,
    /// Bob's session with Alice (has received, can read her messages).
    bob_session: String,
    /// Messages Alice sent Bob's session: a pre-key and a normal message.
    to_bob: Vec<OlmMessage>,
    /// A pre-key message starting a new session from Bob's spare key.
    fresh_pre_key: OlmMessage,
    /// An inbound Megolm session and messages of its sender.
    megolm_inbound: String,
    megolm_messages: Vec<MegolmMessage>,
    session_key: MegolmSessionKey,
    export: MegolmExportedKey,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let alice = OlmAccount::new_with_rng(&mut rng);
        let mut bob = OlmAccount::new_with_rng(&mut rng);
        bob.generate_one_time_keys_with_rng(2, &mut rng);
        let keys = bob.one_time_keys();
        let mut a = alice
            .create_outbound_session_with_rng(bob.identity_keys().curve25519, keys[0].1, &mut rng)
            .unwrap();
        let first = a.encrypt_with_rng(b"first", &mut rng).unwrap();
        let OlmMessage::PreKey(pre) = &first else {
            unreachable!()
        };
        let mut b = bob
            .create_inbound_session(alice.identity_keys().curve25519, pre)
            .unwrap()
            .session;
        let pre_key_again = a.encrypt_with_rng(b"second pre-key", &mut rng).unwrap();
        a.decrypt(&b.encrypt_with_rng(b"reply", &mut rng).unwrap())
            .unwrap();
        let normal = a.encrypt_with_rng(b"normal", &mut rng).unwrap();
        let mut a2 = alice
            .create_outbound_session_with_rng(bob.identity_keys().curve25519, keys[1].1, &mut rng)
            .unwrap();
        let fresh_pre_key = a2.encrypt_with_rng(b"fresh", &mut rng).unwrap();
        let mut group = MegolmOutboundSession::new_with_rng(&mut rng);
        let session_key = group.session_key();
        let inbound = MegolmInboundSession::new(&session_key).unwrap();
        let megolm_messages = (0..3u8).map(|i| group.encrypt(&[i; 20]).unwrap()).collect();
        Fixture {
            bob_account: bob.pickle_with_rng(&key(), &mut nonce_rng()),
            alice_identity: alice.identity_keys().curve25519,
            bob_identity: bob.identity_keys().curve25519,
            bob_session: b.pickle_with_rng(&key(), &mut nonce_rng()),
            to_bob: vec![pre_key_again, normal],
            fresh_pre_key,
            megolm_inbound: inbound.pickle_with_rng(&key(), &mut nonce_rng()),
            export: inbound.export_at(1).unwrap(),
            megolm_messages,
            session_key,
        }
    })
}

/// Decodes `data` as an Olm message of either type and, if UTF-8, as its
/// JSON form; whatever decodes must re-encode to the input.
pub fn decode_olm_message(data: &[u8]) {
    for kind in [0u8, 1] {
        if let Ok(m) = OlmMessage::from_parts(kind, data) {
            assert_eq!(m.to_bytes(), data, "non-canonical Olm message accepted");
            assert_eq!(m.message_type(), kind);
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = OlmMessage::from_json(text)
    {
        let again = OlmMessage::from_json(&m.to_json()).unwrap();
        assert_eq!(again, m);
    }
}

/// Decrypts `data[1..]` (type `data[0] & 1`) with Bob's fixed session. A
/// failure must leave the session as it was.
pub fn olm_decrypt(data: &[u8]) {
    let f = fixture();
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let Ok(message) = OlmMessage::from_parts(kind & 1, body) else {
        return;
    };
    let mut session = OlmSession::from_pickle(&f.bob_session, &key(), &f.bob_identity).unwrap();
    if session.decrypt(&message).is_err() {
        assert_eq!(
            session.pickle_with_rng(&key(), &mut nonce_rng()),
            f.bob_session,
            "a failed decryption changed the session"
        );
    }
}

/// Offers `data` as a pre-key message to Bob's fixed account. A failure
/// must leave the account (and its one-time key) as it was.
pub fn olm_inbound_session(data: &[u8]) {
    let f = fixture();
    let Ok(OlmMessage::PreKey(message)) = OlmMessage::from_parts(0, data) else {
        return;
    };
    let mut account = OlmAccount::from_pickle(&f.bob_account, &key()).unwrap();
    let claimed = message.identity_key();
    match account.create_inbound_session(claimed, &message) {
        Ok(_) => assert_eq!(claimed, f.alice_identity, "a session from an unknown peer"),
        Err(_) => assert_eq!(
            account.pickle_with_rng(&key(), &mut nonce_rng()),
            f.bob_account,
            "a failed session creation changed the account"
        ),
    }
}

/// Decodes `data` as a Megolm message, session key and export; whatever
/// decodes must re-encode to the input.
pub fn decode_megolm(data: &[u8]) {
    if let Ok(m) = MegolmMessage::from_bytes(data) {
        assert_eq!(m.to_bytes(), data);
    }
    if let Ok(k) = MegolmSessionKey::from_bytes(data) {
        assert_eq!(k.to_bytes().as_slice(), data);
        let _ = MegolmInboundSession::new(&k);
    }
    if let Ok(k) = MegolmExportedKey::from_bytes(data) {
        assert_eq!(k.to_bytes().as_slice(), data);
        let _ = MegolmInboundSession::import(&k).export_at_first_known_index();
    }
}

/// Decrypts `data` as a Megolm message with the fixed inbound session; a
/// failure must leave it as it was, and only the sender's real messages
/// may decrypt.
pub fn megolm_decrypt(data: &[u8]) {
    let f = fixture();
    let Ok(message) = MegolmMessage::from_bytes(data) else {
        return;
    };
    let mut session = MegolmInboundSession::from_pickle(&f.megolm_inbound, &key()).unwrap();
    match session.decrypt(&message) {
        Ok(_) => assert!(
            f.megolm_messages.contains(&message),
            "a forged message decrypted"
        ),
        Err(_) => assert_eq!(
            session.pickle_with_rng(&key(), &mut nonce_rng()),
            f.megolm_inbound
        ),
    }
}

const LIBOLM_KEY: &[u8] = b"fuzz pickle key";

/// Seals `contents` as a libolm pickle (PROTOCOL.md, "libolm pickles").
pub fn libolm_seal(contents: &[u8]) -> String {
    use aes::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
    use hmac::{KeyInit, Mac};
    let mut okm = [0u8; 80];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&[0u8]), LIBOLM_KEY)
        .expand(b"Pickle", &mut okm)
        .unwrap();
    let mut buf = contents.to_vec();
    buf.resize(contents.len() / 16 * 16 + 16, 0);
    let (aes_key, rest) = okm.split_at(32);
    let (mac_key, iv) = rest.split_at(32);
    let len =
        cbc::Encryptor::<aes::Aes256>::new(aes_key.try_into().unwrap(), iv.try_into().unwrap())
            .encrypt_padded::<Pkcs7>(&mut buf, contents.len())
            .unwrap()
            .len();
    buf.truncate(len);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(mac_key).unwrap();
    mac.update(&buf);
    buf.extend_from_slice(&mac.finalize().into_bytes()[..8]);
    Base64Unpadded::encode_string(&buf)
}

/// `data[0]` picks a libolm pickle type; the rest, after that type's
/// version, is sealed as its contents and imported. Must never panic.
pub fn libolm_unpickle(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let version: u32 = match which % 4 {
        0 => 4,
        1 | 2 => 1,
        _ => 2,
    };
    let mut contents = version.to_be_bytes().to_vec();
    contents.extend_from_slice(rest);
    let text = libolm_seal(&contents);
    let owner = Curve25519PublicKey::from_bytes([9; 32]);
    match which % 4 {
        0 => {
            let _ = OlmAccount::from_libolm_pickle(&text, LIBOLM_KEY);
        }
        1 => {
            if let Ok(mut s) = OlmSession::from_libolm_pickle(&text, LIBOLM_KEY, &owner) {
                let _ = s.encrypt(b"x");
            }
        }
        2 => {
            if let Ok(mut s) = MegolmOutboundSession::from_libolm_pickle(&text, LIBOLM_KEY) {
                let _ = s.encrypt(b"x");
            }
        }
        _ => {
            if let Ok(s) = MegolmInboundSession::from_libolm_pickle(&text, LIBOLM_KEY) {
                let _ = s.export_at_first_known_index();
            }
        }
    }
}

/// Seals `contents` as a roomseal pickle of the type named `name` (PROTOCOL.md
/// section 8.1: subkey by HKDF, AES-256-GCM, associated data naming the
/// type, version, generation and owner).
pub fn roomseal_seal(name: &str, contents: &[u8], owner: &[u8]) -> String {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let master = [0x5au8; 32];
    let mut subkey = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, &master)
        .expand(
            &[b"roomseal/v2/pickle-key/".as_slice(), name.as_bytes()].concat(),
            &mut subkey,
        )
        .unwrap();
    let generation = 1u64.to_be_bytes();
    let aad = [
        b"roomseal/v2/pickle/".as_slice(),
        name.as_bytes(),
        &[2],
        &generation,
        owner,
    ]
    .concat();
    let nonce = [3u8; 12];
    let sealed = aes_gcm::Aes256Gcm::new(&subkey.into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: contents,
                aad: &aad,
            },
        )
        .unwrap();
    let mut out = vec![2u8];
    out.extend_from_slice(&generation);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Base64Unpadded::encode_string(&out)
}

/// `data[0]` picks one of the four Olm/Megolm types; the rest is sealed as
/// that type's pickle contents and restored. Whatever restores must pickle
/// again and restore to the same state.
pub fn unpickle_olm_contents(data: &[u8]) {
    let Some((&which, contents)) = data.split_first() else {
        return;
    };
    let owner = Curve25519PublicKey::from_bytes([9; 32]);
    match which % 4 {
        0 => {
            let text = roomseal_seal("olm-account", contents, &[]);
            if let Ok(a) = OlmAccount::from_pickle(&text, &key()) {
                let again = OlmAccount::from_pickle(&a.pickle(&key()), &key()).unwrap();
                assert_eq!(again.identity_keys(), a.identity_keys());
            }
        }
        1 => {
            let text = roomseal_seal("olm-session", contents, owner.as_bytes());
            if let Ok(mut s) = OlmSession::from_pickle(&text, &key(), &owner) {
                let _ = s.encrypt(b"x");
            }
        }
        2 => {
            let text = roomseal_seal("megolm-outbound-session", contents, &[]);
            if let Ok(mut s) = MegolmOutboundSession::from_pickle(&text, &key()) {
                let _ = s.encrypt(b"x");
            }
        }
        _ => {
            let text = roomseal_seal("megolm-inbound-session", contents, &[]);
            if let Ok(s) = MegolmInboundSession::from_pickle(&text, &key()) {
                let _ = s.export_at_first_known_index();
            }
        }
    }
}

/// Seed inputs for every target: (target, file name, bytes).
pub fn seed_inputs() -> Vec<(&'static str, String, Vec<u8>)> {
    let f = fixture();
    let mut out = Vec::new();
    for (i, m) in f.to_bob.iter().chain([&f.fresh_pre_key]).enumerate() {
        out.push(("decode_olm_message", format!("message-{i}"), m.to_bytes()));
        out.push((
            "decode_olm_message",
            format!("json-{i}"),
            m.to_json().into_bytes(),
        ));
        let mut typed = vec![m.message_type()];
        typed.extend_from_slice(&m.to_bytes());
        out.push(("olm_decrypt", format!("message-{i}"), typed));
    }
    out.push((
        "olm_inbound_session",
        "fresh".into(),
        f.fresh_pre_key.to_bytes(),
    ));
    out.push((
        "olm_inbound_session",
        "known".into(),
        f.to_bob[0].to_bytes(),
    ));
    for (i, m) in f.megolm_messages.iter().enumerate() {
        out.push(("decode_megolm", format!("message-{i}"), m.to_bytes()));
        out.push(("megolm_decrypt", format!("message-{i}"), m.to_bytes()));
    }
    out.push((
        "decode_megolm",
        "session-key".into(),
        f.session_key.to_bytes().to_vec(),
    ));
    out.push((
        "decode_megolm",
        "export".into(),
        f.export.to_bytes().to_vec(),
    ));
    // libolm contents after the version: a minimal valid one per type.
    let mut account = Vec::new();
    account.extend_from_slice(&[0; 32 + 64 + 32 + 32]);
    account.extend_from_slice(&0u32.to_be_bytes());
    account.push(0);
    account.extend_from_slice(&0u32.to_be_bytes());
    out.push((
        "libolm_unpickle",
        "account".into(),
        [&[0u8][..], &account].concat(),
    ));
    let mut session = vec![1u8];
    session.extend_from_slice(&[7; 32 * 4]);
    session.extend_from_slice(&0u32.to_be_bytes());
    session.extend_from_slice(&1u32.to_be_bytes());
    session.extend_from_slice(&[8; 64]);
    session.extend_from_slice(&0u32.to_be_bytes());
    session.extend_from_slice(&0u32.to_be_bytes());
    out.push((
        "libolm_unpickle",
        "session".into(),
        [&[1u8][..], &session].concat(),
    ));
    let mut inbound = Vec::new();
    inbound.extend_from_slice(&[5; 128]);
    inbound.extend_from_slice(&0u32.to_be_bytes());
    inbound.extend_from_slice(&[5; 128]);
    inbound.extend_from_slice(&0u32.to_be_bytes());
    inbound.extend_from_slice(f.export.session_id().as_bytes());
    inbound.push(1);
    out.push((
        "libolm_unpickle",
        "inbound".into(),
        [&[3u8][..], &inbound].concat(),
    ));
    out.push((
        "libolm_unpickle",
        "outbound".into(),
        [&[2u8][..], &[5; 132 + 96]].concat(),
    ));
    // Contents of roomseal pickles of the four types, taken from real ones
    // is not possible from outside (they are sealed), so minimal valid
    // contents by PROTOCOL.md: format byte 1, then the fields.
    let mut account = vec![1u8, 0];
    account.extend_from_slice(&[1; 32]);
    account.extend_from_slice(&[2; 32]);
    account.extend_from_slice(&0u64.to_be_bytes());
    account.extend_from_slice(&0u16.to_be_bytes());
    account.extend_from_slice(&[0, 0]);
    out.push((
        "unpickle_olm_contents",
        "account".into(),
        [&[0u8][..], &account].concat(),
    ));
    let mut outbound = vec![1u8, 0];
    outbound.extend_from_slice(&[1; 32]);
    outbound.extend_from_slice(&0u32.to_be_bytes());
    outbound.extend_from_slice(&[4; 128]);
    out.push((
        "unpickle_olm_contents",
        "outbound".into(),
        [&[2u8][..], &outbound].concat(),
    ));
    let mut inbound = vec![1u8];
    inbound.extend_from_slice(f.export.session_id().as_bytes());
    inbound.push(1);
    inbound.extend_from_slice(&0u32.to_be_bytes());
    inbound.extend_from_slice(&[4; 128]);
    inbound.push(0);
    out.push((
        "unpickle_olm_contents",
        "inbound".into(),
        [&[3u8][..], &inbound].concat(),
    ));
    let mut session = vec![1u8];
    session.extend_from_slice(&[9; 32]);
    session.push(0);
    session.extend_from_slice(&[6; 32 * 4]);
    session.push(1);
    session.extend_from_slice(&[7; 64]);
    session.extend_from_slice(&0u32.to_be_bytes());
    session.extend_from_slice(&0u16.to_be_bytes());
    session.extend_from_slice(&0u16.to_be_bytes());
    out.push((
        "unpickle_olm_contents",
        "session".into(),
        [&[1u8][..], &session].concat(),
    ));
    out
}

//! Fuzz entry points for roomseal: the pairwise layer (this file), the group
//! layer (`group.rs`), the room layer (`room.rs`) and the pickle contents
//! (`contents.rs`).
//!
//! This one file is shared by the cargo-fuzz targets (it is the root of the
//! `roomseal_fuzz` library of `fuzz/Cargo.toml`) and by the stable replay
//! test `tests/fuzz_corpus.rs` (which includes it as a module), so both run
//! exactly the same code. It uses only roomseal's public API.
//!
//! Each `pub fn <target>(data: &[u8])` returns normally on every input. It
//! panics only when one of the library's guarantees is broken: a canonical
//! encoding that does not round-trip, a failed operation that changed state,
//! a forged or altered input that was accepted, and so on.
//!
//! The stateful targets run against fixed objects built once, deterministically,
//! from seeded generators (see [`Fixture`]). Each input restores them from
//! their pickles, which costs one AES-GCM open instead of the dozen X25519 and
//! Ed25519 operations of a rebuild. "State unchanged" is checked by pickling
//! again with a generator seeded like the original pickle's: equal pickle text
//! means equal contents.

use std::sync::OnceLock;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::{
    Account, AccountError, Curve25519PublicKey, DeviceMessage, IdentityKeys, PickleKey, Session,
};

// Explicit paths: this file is also included by `tests/fuzz_corpus.rs`, and
// both must find the submodules next to it.
#[path = "contents.rs"]
mod contents;
#[path = "group.rs"]
mod group;
#[path = "room.rs"]
mod room;

pub use contents::unpickle_contents;
pub use group::{decode_group_message, decode_session_keys, group_decrypt};
pub use room::{decode_event_envelope, decode_room_key_share, endpoint_receive};

/// Every fuzz target, named like its file in `fuzz/fuzz_targets/`.
pub const TARGETS: [&str; 11] = [
    "decode_device_message",
    "session_decrypt",
    "inbound_session",
    "unpickle",
    "decode_group_message",
    "group_decrypt",
    "decode_session_keys",
    "decode_room_key_share",
    "decode_event_envelope",
    "endpoint_receive",
    "unpickle_contents",
];

/// The entry function of the fuzz target `name`.
pub fn entry(name: &str) -> Option<fn(&[u8])> {
    match name {
        "decode_device_message" => Some(decode_device_message),
        "session_decrypt" => Some(session_decrypt),
        "inbound_session" => Some(inbound_session),
        "unpickle" => Some(unpickle),
        "decode_group_message" => Some(decode_group_message),
        "group_decrypt" => Some(group_decrypt),
        "decode_session_keys" => Some(decode_session_keys),
        "decode_room_key_share" => Some(decode_room_key_share),
        "decode_event_envelope" => Some(decode_event_envelope),
        "endpoint_receive" => Some(endpoint_receive),
        "unpickle_contents" => Some(unpickle_contents),
        _ => None,
    }
}

/// Decodes `data` as a binary [`DeviceMessage`] and, if it is UTF-8, as the
/// base64 text form. Asserts that whatever decodes is canonical: re-encoding
/// gives back the input (the text up to its optional padding).
pub fn decode_device_message(data: &[u8]) {
    if let Ok(message) = DeviceMessage::from_bytes(data) {
        assert_eq!(
            message.to_bytes(),
            data,
            "from_bytes accepted a non-canonical encoding of {message:?}"
        );
        check_decoded(&message);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(message) = DeviceMessage::from_base64(text)
    {
        assert_eq!(
            message.to_base64(),
            text.trim_end_matches('='),
            "from_base64 accepted non-canonical text for {message:?}"
        );
        assert_eq!(
            DeviceMessage::from_bytes(&message.to_bytes()).as_ref(),
            Ok(&message),
            "binary form of a base64-decoded message does not round-trip"
        );
        check_decoded(&message);
    }
}

/// Decodes `data` as a [`DeviceMessage`] and decrypts it with the fixed
/// session (Bob's side of an established session with skipped keys stored).
///
/// On success the message must be one of the genuine messages the session
/// has not read yet (the inner ratchet message, byte for byte) with its
/// plaintext, and replaying it must fail without changing the session. On
/// failure the session must be unchanged, the message must not have been a
/// genuine unread one, and the session must still decrypt a genuine unread
/// message (chosen from the input).
pub fn session_decrypt(data: &[u8]) {
    let Ok(message) = DeviceMessage::from_bytes(data) else {
        return;
    };
    let fixture = fixture();
    let mut session = restore_session(&fixture.session_pickle);
    match session.decrypt_with_rng(&message, &mut rng(DECRYPT_SEED)) {
        Ok(plaintext) => {
            let genuine = fixture
                .unread
                .iter()
                .find(|g| g.message.normal() == message.normal())
                .unwrap_or_else(|| panic!("a message that was never sent decrypted: {message:?}"));
            assert_eq!(
                plaintext, genuine.plaintext,
                "a genuine message decrypted to the wrong plaintext"
            );
            let after = session_state(&session);
            let replay = session.decrypt_with_rng(&message, &mut rng(DECRYPT_SEED));
            assert!(replay.is_err(), "a replayed message decrypted again");
            assert_eq!(
                session_state(&session),
                after,
                "a rejected replay changed the session"
            );
        }
        Err(error) => {
            assert!(
                !fixture.unread.iter().any(|g| g.message == message),
                "a genuine unread message was rejected: {error}"
            );
            assert_eq!(
                session_state(&session),
                fixture.session_pickle,
                "a failed decryption ({error}) changed the session"
            );
            let check = &fixture.unread[pick(data, fixture.unread.len())];
            let plaintext = session
                .decrypt_with_rng(&check.message, &mut rng(DECRYPT_SEED))
                .unwrap_or_else(|e| {
                    panic!("after a failed decryption ({error}) a genuine message is rejected: {e}")
                });
            assert_eq!(plaintext, check.plaintext);
        }
    }
}

/// Decodes `data` as a [`DeviceMessage`] and, if it is a pre-key message,
/// creates an inbound session with the fixed account (Bob's, holding four
/// one-time keys and a fallback key).
///
/// On failure the account must be unchanged and keep all its one-time keys.
/// On success the session must match the message (id, peer identity), the
/// plaintext must be one that was really sent, and exactly the named
/// one-time key must be consumed (none for the fallback key, which instead
/// remembers the session), so the same message cannot start a second
/// session: a replay is refused and changes nothing.
pub fn inbound_session(data: &[u8]) {
    let Ok(DeviceMessage::PreKey(pre_key)) = DeviceMessage::from_bytes(data) else {
        return;
    };
    let fixture = fixture();
    let mut account = restore_account(&fixture.account_pickle);
    let before = account.stored_one_time_key_count();
    match account.create_inbound_session_with_rng(&pre_key, &mut rng(INBOUND_SEED)) {
        Ok(created) => {
            assert_eq!(created.session.session_id(), pre_key.session_id());
            assert_eq!(created.session.peer_identity(), pre_key.identity_keys());
            assert!(created.session.has_received_message());
            assert!(
                fixture
                    .sent_plaintexts
                    .iter()
                    .any(|p| created.plaintext == *p),
                "a pre-key message that was never sent started a session: {pre_key:?}"
            );
            let after = account_state(&account);
            let named = pre_key.one_time_key();
            if fixture.one_time_keys.contains(&named) {
                assert_eq!(
                    account.stored_one_time_key_count(),
                    before - 1,
                    "the one-time key was not consumed"
                );
                let again = account.create_inbound_session_with_rng(&pre_key, &mut rng(0));
                assert!(
                    matches!(again, Err(AccountError::UnknownOneTimeKey)),
                    "a consumed one-time key started a second session: {again:?}"
                );
            } else {
                assert_eq!(
                    named, fixture.fallback_key,
                    "a session started from a key the account never had"
                );
                assert_eq!(
                    account.stored_one_time_key_count(),
                    before,
                    "a fallback-key session consumed a one-time key"
                );
                assert!(
                    account.fallback_key_used(),
                    "the fallback key does not remember its session"
                );
                let again = account.create_inbound_session_with_rng(&pre_key, &mut rng(0));
                assert!(
                    matches!(again, Err(AccountError::FallbackKeyReplay)),
                    "a replayed fallback-key message started a second session: {again:?}"
                );
            }
            assert_eq!(
                account_state(&account),
                after,
                "a refused replay changed the account"
            );
        }
        Err(error) => {
            assert_eq!(
                account.stored_one_time_key_count(),
                before,
                "a failed inbound session ({error}) consumed a one-time key"
            );
            assert_eq!(
                account_state(&account),
                fixture.account_pickle,
                "a failed inbound session ({error}) changed the account"
            );
        }
    }
}

/// Two paths, for every pickled type (account, session, outbound and
/// inbound group session, endpoint). Text: `data`, if UTF-8, is restored as
/// a pickle of each type under the fixed key. Mutated: `data` is XORed over
/// the decoded bytes of a genuine pickle of each type, which is then
/// re-encoded and restored.
///
/// Whatever restores must pickle and restore again to the same contents. A
/// mutated pickle may restore only if the mask changed nothing (every byte
/// is covered by the version check or by AES-GCM).
pub fn unpickle(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for kind in contents::Kind::ALL {
            if let Some(restored) = contents::restore(kind, text) {
                restored.check(None);
            }
        }
    }
    for (kind, genuine) in contents::genuine_pickles() {
        let mutated = xor_mask(genuine, data);
        if let Some(restored) = contents::restore(*kind, &base64_encode(&mutated)) {
            assert!(
                mutated == *genuine,
                "an altered {} pickle was accepted",
                kind.name()
            );
            restored.check(None);
        }
    }
}

/// The committed seed inputs, as (target, file name, contents), built from
/// the same fixtures the entry functions use. `tests/fuzz_corpus.rs` writes
/// them to `fuzz/seeds/<target>/<file name>` (ignored test `generate_seeds`).
pub fn seed_inputs() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut seeds: Vec<_> = pairwise_seeds()
        .into_iter()
        .map(|(target, name, bytes)| (target, name.to_owned(), bytes))
        .collect();
    seeds.extend(group::seeds());
    seeds.extend(room::seeds());
    seeds.extend(contents::seeds());
    for (kind, text) in contents::genuine_pickle_texts() {
        if !matches!(kind, contents::Kind::Account | contents::Kind::Session) {
            seeds.push((
                "unpickle",
                format!("{}.txt", kind.name()),
                text.into_bytes(),
            ));
        }
    }
    seeds
}

fn pairwise_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let f = fixture();
    let bytes = |m: &DeviceMessage| m.to_bytes();
    let [a1, a2, a4, a5, a6] = f.unread.as_slice() else {
        unreachable!("the fixture has five unread messages")
    };
    let [a0, a3] = f.read.as_slice() else {
        unreachable!("the fixture has two read messages")
    };
    let [b0, c0] = f.foreign.as_slice() else {
        unreachable!("the fixture has two foreign messages")
    };
    let [p_a0, p_a1, p_x0, p_c0] = f.pre_keys.as_slice() else {
        unreachable!("the fixture has four pre-key messages")
    };

    // Layout (PROTOCOL.md 7): version, kind, then for a pre-key message the
    // one-time key, base key, identity keys and binding (192 bytes), then the
    // ratchet key, previous counter, counter, salt and ciphertext.
    const PRE_KEY_BODY: usize = 2 + 192;
    const HEADER: usize = 32 + 4 + 4 + 16;
    let flip = |mut b: Vec<u8>, at: usize| {
        let at = at.min(b.len() - 1);
        b[at] ^= 0x01;
        b
    };
    let last = |b: &Vec<u8>| b.len() - 1;
    let with_counter = |mut b: Vec<u8>, counter: u32| {
        b[2 + 36..2 + 40].copy_from_slice(&counter.to_be_bytes());
        b
    };
    let with_salt_byte = |mut b: Vec<u8>| {
        b[2 + 40] ^= 0x01;
        b
    };
    let as_normal = |b: &Vec<u8>| [&[VERSION, 1][..], &b[PRE_KEY_BODY..]].concat();
    let padded = |text: String| {
        let pad = (4 - text.len() % 4) % 4;
        format!("{text}{}", "=".repeat(pad)).into_bytes()
    };
    let minimal_normal = [&[VERSION, 1][..], &[0u8; HEADER + 16][..]].concat();
    let short_ciphertext = [&[VERSION, 1][..], &[0u8; HEADER + 15][..]].concat();
    let old_version = [&[VERSION - 1, 1][..], &a4.message.to_bytes()[2..]].concat();

    let a0_bytes = a0.to_bytes();
    let a4_bytes = bytes(&a4.message);
    let c0_bytes = bytes(&p_c0.message);
    vec![
        ("decode_device_message", "pre_key.bin", a0_bytes.clone()),
        ("decode_device_message", "normal.bin", a4_bytes.clone()),
        ("decode_device_message", "new_chain.bin", bytes(&a6.message)),
        (
            "decode_device_message",
            "pre_key.b64",
            a0.to_base64().into_bytes(),
        ),
        (
            "decode_device_message",
            "normal_padded.b64",
            padded(a5.message.to_base64()),
        ),
        (
            "decode_device_message",
            "truncated_pre_key.bin",
            a0_bytes[..150].to_vec(),
        ),
        (
            "decode_device_message",
            "minimal_normal.bin",
            minimal_normal,
        ),
        (
            "decode_device_message",
            "short_ciphertext.bin",
            short_ciphertext,
        ),
        (
            "decode_device_message",
            "unknown_kind.bin",
            vec![VERSION, 7],
        ),
        ("decode_device_message", "old_version.bin", old_version),
        ("session_decrypt", "unread_pre_key.bin", bytes(&a1.message)),
        ("session_decrypt", "unread_skipped.bin", bytes(&a2.message)),
        ("session_decrypt", "unread_next.bin", a4_bytes.clone()),
        ("session_decrypt", "unread_jump.bin", bytes(&a5.message)),
        (
            "session_decrypt",
            "unread_new_chain.bin",
            bytes(&a6.message),
        ),
        ("session_decrypt", "read_pre_key.bin", a0_bytes.clone()),
        ("session_decrypt", "replay.bin", bytes(a3)),
        ("session_decrypt", "own_message.bin", bytes(b0)),
        ("session_decrypt", "other_session.bin", bytes(c0)),
        (
            "session_decrypt",
            "tampered.bin",
            flip(a4_bytes.clone(), last(&a4_bytes)),
        ),
        (
            "session_decrypt",
            "tampered_salt.bin",
            with_salt_byte(a4_bytes.clone()),
        ),
        (
            "session_decrypt",
            "far_ahead.bin",
            with_counter(bytes(&a5.message), 1 << 16),
        ),
        (
            "session_decrypt",
            "pre_key_as_normal.bin",
            as_normal(&bytes(&a1.message)),
        ),
        ("inbound_session", "one_time_key.bin", bytes(&p_a0.message)),
        (
            "inbound_session",
            "one_time_key_second.bin",
            bytes(&p_a1.message),
        ),
        (
            "inbound_session",
            "other_one_time_key.bin",
            bytes(&p_x0.message),
        ),
        ("inbound_session", "fallback_key.bin", c0_bytes.clone()),
        (
            "inbound_session",
            "bad_binding.bin",
            flip(bytes(&p_a0.message), 2 + 128 + 5),
        ),
        (
            "inbound_session",
            "unknown_key.bin",
            flip(bytes(&p_a0.message), 2),
        ),
        (
            "inbound_session",
            "tampered.bin",
            flip(c0_bytes.clone(), last(&c0_bytes)),
        ),
        ("inbound_session", "normal.bin", a4_bytes),
        (
            "unpickle",
            "account.txt",
            f.account_pickle.clone().into_bytes(),
        ),
        (
            "unpickle",
            "session.txt",
            f.session_pickle.clone().into_bytes(),
        ),
        (
            "unpickle",
            "session_padded.txt",
            padded(f.session_pickle.clone()),
        ),
        ("unpickle", "zero_mask.bin", vec![0; 8]),
        ("unpickle", "version_flip.bin", vec![0x03]),
        // The envelope (PROTOCOL.md 8.1): version, generation [8], nonce.
        (
            "unpickle",
            "generation_flip.bin",
            vec![0, 0, 0, 0, 0, 0, 0, 0, 0x01],
        ),
        (
            "unpickle",
            "nonce_flip.bin",
            [&[0u8; 9][..], &[0x80]].concat(),
        ),
        ("unpickle", "short.txt", b"AQID".to_vec()),
    ]
}

/// Unpadded standard base64, like roomseal's text forms (which it does not
/// export).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .chain(std::iter::repeat(&0))
            .take(3)
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        for i in 0..=chunk.len() {
            let index = (word >> (18 - 6 * i)) & 63;
            out.push(char::from(BASE64_ALPHABET[index as usize]));
        }
    }
    out
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Decodes unpadded standard base64 (only ever applied to genuine pickles).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = BASE64_ALPHABET.iter().position(|&a| a == c)?;
        acc = (acc << 6) | u32::try_from(value).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(acc >> bits).ok()?);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Seeds of the fixture's generators. Any change regenerates every genuine
/// message, so the committed seeds must be regenerated with it.
const ALICE_SEED: u64 = 0xA11CE;
const BOB_SEED: u64 = 0xB0B;
const CAROL_SEED: u64 = 0xCA201;
const PROTOCOL_SEED: u64 = 0x5EED;
/// Nonce generator of every pickle that is compared.
const PICKLE_SEED: u64 = 0x91C41E;
/// Ratchet-key generator of every decryption under test.
const DECRYPT_SEED: u64 = 0xDEC;
/// Message-salt generator of the pairwise fixture.
const SALT_SEED: u64 = 0x5A17;
/// Generator of every inbound session under test.
const INBOUND_SEED: u64 = 0x1B0;
const PICKLE_KEY: [u8; 32] = [0x42; 32];
/// The protocol version byte that starts every encoding (PROTOCOL.md 7, 8.1).
const VERSION: u8 = 0x02;
/// The room of the group and room fixtures, and another room.
const ROOM: &str = "!room:example.org";
const OTHER_ROOM: &str = "!other:example.org";

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn pickle_key() -> PickleKey {
    PickleKey::from_bytes(&mut PICKLE_KEY.clone())
}

/// A message that was really sent, and its plaintext.
struct Genuine {
    message: DeviceMessage,
    plaintext: Vec<u8>,
}

/// Objects and messages built once per process, deterministically.
///
/// Alice starts a session with Bob from Bob's first one-time key and sends
/// a0, a1 (pre-key messages). Bob reads a0 and replies b0; Alice reads it and
/// sends a2, a3, a4 on her next chain. Bob reads a3 (storing skipped keys for
/// a1 and a2) and replies b1: that is the fixed session. Alice then sends a5,
/// reads b1, and sends a6 on a third chain. Carol starts a session from Bob's
/// fallback key (c0), and Alice a second one from Bob's second one-time key
/// (x0). The fixed account is Bob's before he read anything.
struct Fixture {
    /// Bob's identity keys: the owner his session pickles are bound to.
    bob: IdentityKeys,
    /// Bob's session after sending b1, pickled with `PICKLE_SEED`.
    session_pickle: String,
    /// What Bob's session has not read yet: a1, a2, a4, a5, a6.
    unread: Vec<Genuine>,
    /// What it has read: a0, a3.
    read: Vec<DeviceMessage>,
    /// Messages of other sessions or directions: b0, c0.
    foreign: Vec<DeviceMessage>,
    /// Bob's account before any inbound session, pickled with `PICKLE_SEED`.
    account_pickle: String,
    one_time_keys: Vec<Curve25519PublicKey>,
    fallback_key: Curve25519PublicKey,
    /// Pre-key messages that can each start a session with that account:
    /// a0, a1 (first one-time key), x0 (second), c0 (fallback key).
    pre_keys: Vec<Genuine>,
    /// Every plaintext Alice and Carol sent.
    sent_plaintexts: Vec<Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn build_fixture() -> Fixture {
    let key = pickle_key();
    let r = &mut rng(PROTOCOL_SEED);
    let alice = Account::new_with_rng(&mut rng(ALICE_SEED));
    let carol = Account::new_with_rng(&mut rng(CAROL_SEED));
    let mut bob = Account::new_with_rng(&mut rng(BOB_SEED));
    bob.generate_one_time_keys_with_rng(4, r);
    bob.rotate_fallback_key_with_rng(0, r);
    let signed = bob.one_time_keys();
    let fallback = bob.fallback_key().expect("a fallback key was generated");
    bob.mark_keys_as_published(&[&signed[..], std::slice::from_ref(&fallback)].concat());
    let bob_device = bob
        .device_keys("@bob:example.org", "BOBDEVICE")
        .and_then(|keys| keys.check_self_signature())
        .expect("Bob's own device keys verify");
    let account_pickle = bob.pickle_with_rng(&key, &mut rng(PICKLE_SEED));

    let mut alice_session = alice
        .create_outbound_session_with_rng(&bob_device, &signed[0], r)
        .expect("outbound session from a one-time key");
    let mut alice_second = alice
        .create_outbound_session_with_rng(&bob_device, &signed[1], r)
        .expect("outbound session from a second one-time key");
    let mut carol_session = carol
        .create_outbound_session_with_rng(&bob_device, &fallback, r)
        .expect("outbound session from the fallback key");

    // Every message salt comes from its own seeded generator, so every
    // genuine message is the same in every process.
    let salts = &mut rng(SALT_SEED);
    let mut sent = Vec::new();
    let mut send = |session: &mut Session, text: &str| {
        sent.push(text.as_bytes().to_vec());
        Genuine {
            message: session
                .encrypt_with_rng(text.as_bytes(), salts)
                .expect("encrypt"),
            plaintext: text.as_bytes().to_vec(),
        }
    };
    let a0 = send(&mut alice_session, "a0: hello Bob");
    let a1 = send(&mut alice_session, "a1: still waiting");
    let x0 = send(&mut alice_second, "x0: a second session");
    let c0 = send(&mut carol_session, "c0: Carol, from the fallback key");

    let DeviceMessage::PreKey(first) = &a0.message else {
        unreachable!("the first message of a session is a pre-key message")
    };
    let mut bob_session = bob
        .create_inbound_session_with_rng(first, r)
        .expect("inbound session from a0")
        .session;
    let b0 = bob_session
        .encrypt_with_rng(b"b0: hi Alice", &mut rng(SALT_SEED + 1))
        .expect("encrypt");
    alice_session
        .decrypt_with_rng(&b0, r)
        .expect("Alice reads b0");
    let a2 = send(&mut alice_session, "a2: skipped");
    let a3 = send(&mut alice_session, "a3: read out of order");
    let a4 = send(&mut alice_session, "a4: the next one");
    bob_session
        .decrypt_with_rng(&a3.message, r)
        .expect("Bob reads a3");
    let b1 = bob_session
        .encrypt_with_rng(b"b1: got a3", &mut rng(SALT_SEED + 2))
        .expect("encrypt");
    let session_pickle = bob_session.pickle_with_rng(&key, &mut rng(PICKLE_SEED));

    let a5 = send(&mut alice_session, "a5: one ahead");
    alice_session
        .decrypt_with_rng(&b1, r)
        .expect("Alice reads b1");
    let a6 = send(&mut alice_session, "a6: a new chain");
    assert!(!a6.message.is_pre_key() && a6.message.normal().previous_counter() == 4);

    let pre_keys = [&a0, &a1, &x0, &c0]
        .iter()
        .map(|g| Genuine {
            message: g.message.clone(),
            plaintext: g.plaintext.clone(),
        })
        .collect();
    Fixture {
        bob: bob.identity_keys(),
        session_pickle,
        read: vec![a0.message.clone(), a3.message],
        unread: vec![a1, a2, a4, a5, a6],
        foreign: vec![b0, c0.message.clone()],
        account_pickle,
        one_time_keys: signed.iter().map(|k| k.key).collect(),
        fallback_key: fallback.key,
        pre_keys,
        sent_plaintexts: sent,
    }
}

fn restore_session(pickle: &str) -> Session {
    Session::from_pickle(pickle, &pickle_key(), &fixture().bob)
        .expect("the fixture's session pickle restores")
}

/// The account a session pickle is bound to when nothing else says: Bob's.
fn session_owner() -> IdentityKeys {
    fixture().bob
}

fn restore_account(pickle: &str) -> Account {
    Account::from_pickle(pickle, &pickle_key()).expect("the fixture's account pickle restores")
}

fn session_state(session: &Session) -> String {
    session.pickle_with_rng(&pickle_key(), &mut rng(PICKLE_SEED))
}

fn account_state(account: &Account) -> String {
    account.pickle_with_rng(&pickle_key(), &mut rng(PICKLE_SEED))
}

fn check_account_round_trip(account: &Account) {
    let pickle = account_state(account);
    let again = Account::from_pickle(&pickle, &pickle_key())
        .unwrap_or_else(|e| panic!("a fresh account pickle does not restore: {e}"));
    assert_eq!(again.identity_keys(), account.identity_keys());
    assert_eq!(
        again.stored_one_time_key_count(),
        account.stored_one_time_key_count()
    );
    assert_eq!(account_state(&again), pickle, "account pickle round trip");
}

fn check_session_round_trip(session: &Session) {
    let pickle = session_state(session);
    let again = Session::from_pickle(&pickle, &pickle_key(), &session.local_identity())
        .unwrap_or_else(|e| panic!("a fresh session pickle does not restore: {e}"));
    assert_eq!(again.local_identity(), session.local_identity());
    assert_eq!(again.pickle_generation(), session.pickle_generation());
    assert_eq!(again.session_id(), session.session_id());
    assert_eq!(again.peer_identity(), session.peer_identity());
    assert_eq!(session_state(&again), pickle, "session pickle round trip");
}

/// Accessors of a decoded message agree with each other and do not panic.
fn check_decoded(message: &DeviceMessage) {
    let normal = message.normal();
    let _ = (
        normal.ratchet_key(),
        normal.counter(),
        normal.previous_counter(),
    );
    match message {
        DeviceMessage::PreKey(pre_key) => {
            assert!(message.is_pre_key());
            assert!(pre_key.message() == normal);
            let _ = pre_key.session_id();
        }
        DeviceMessage::Normal(_) => assert!(!message.is_pre_key()),
    }
    let _ = format!("{message:?}");
    assert_eq!(
        DeviceMessage::from_base64(&message.to_base64()).as_ref(),
        Ok(message),
        "text form does not round-trip"
    );
}

/// `base` with `mask` XORed over its first bytes.
fn xor_mask(base: &[u8], mask: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    for (byte, m) in out.iter_mut().zip(mask) {
        *byte ^= m;
    }
    out
}

/// A deterministic choice in `0..len` that depends on every input byte.
fn pick(data: &[u8], len: usize) -> usize {
    let hash = data.iter().fold(0usize, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    hash % len
}

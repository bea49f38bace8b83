//! Fuzz entry points for the group layer: the group message encoding, the
//! session-key and export encodings, and decryption with a fixed inbound
//! group session.

use std::sync::OnceLock;

use roomseal::{
    Account, ExportedSessionKey, GroupMessage, IdentityKeys, InboundGroupSession,
    OutboundGroupSession, SessionKey, SessionOrdering,
};

use super::contents::forge_outbound;
use super::{OTHER_ROOM, PICKLE_SEED, ROOM, VERSION, pick, pickle_key, rng};

/// Generator of the fixed group session.
const GROUP_SEED: u64 = 0x6209;
/// Generator of the account that creates the group sessions.
const CREATOR_SEED: u64 = 0xC4EA7;
/// Generator of another group session in the same room.
const OTHER_GROUP_SEED: u64 = 0x0743;
/// Message-salt generator of the group fixture.
const GROUP_SALT_SEED: u64 = 0x6A17;
/// The index of the signed key the fixed inbound session is built from.
const FIRST_INDEX: u32 = 1;
/// The fixture sends messages 0 to `LAST_INDEX`; these are kept (crossing
/// the ratchet's byte boundary at 256).
const LAST_INDEX: u32 = 300;
const KEPT: [u32; 7] = [1, 2, 3, 255, 256, 257, 300];

/// Decodes `data` as a binary [`GroupMessage`] and, if it is UTF-8, as the
/// base64 text form. Whatever decodes must be canonical: re-encoding gives
/// back the input (the text up to its optional padding), and both forms
/// round-trip.
pub fn decode_group_message(data: &[u8]) {
    if let Ok(message) = GroupMessage::from_bytes(data) {
        assert_eq!(
            message.to_bytes(),
            data,
            "from_bytes accepted a non-canonical encoding of {message:?}"
        );
        assert_eq!(
            GroupMessage::from_base64(&message.to_base64()).as_ref(),
            Ok(&message),
            "text form does not round-trip"
        );
        let _ = (message.message_index(), format!("{message:?}"));
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(message) = GroupMessage::from_base64(text)
    {
        assert_eq!(
            message.to_base64(),
            text.trim_end_matches('='),
            "from_base64 accepted non-canonical text for {message:?}"
        );
        assert_eq!(
            GroupMessage::from_bytes(&message.to_bytes()).as_ref(),
            Ok(&message),
            "binary form of a base64-decoded message does not round-trip"
        );
    }
}

/// Decodes `data` as a [`GroupMessage`] and decrypts it in the fixture's
/// room with the fixed inbound session (built from the signed key at index
/// 1, restored from its pickle for each input).
///
/// A message that decrypts must be one the fixture sent, with its
/// plaintext; a genuine message must decrypt; either way the pickled state
/// (first known index, trust, ratchet) must not change. Then
/// `decrypt_batch` must give exactly what `decrypt` gives, message by
/// message (it verifies as strictly): alone, before a genuine message, and
/// after it.
pub fn group_decrypt(data: &[u8]) {
    let Ok(message) = GroupMessage::from_bytes(data) else {
        return;
    };
    let f = group_fixture();
    let mut session = restore_inbound(&f.inbound_pickle);
    let genuine = f.genuine.iter().find(|g| g.message == message);
    let single = session.decrypt(ROOM, &message);
    match &single {
        Ok(decrypted) => {
            let genuine = genuine.unwrap_or_else(|| {
                panic!("a group message that was never sent decrypted: {message:?}")
            });
            assert_eq!(
                decrypted.plaintext, genuine.plaintext,
                "a genuine group message decrypted to the wrong plaintext"
            );
            assert_eq!(decrypted.message_index, message.message_index());
            assert!(decrypted.authenticated, "a signed key gave unauthenticated");
        }
        Err(error) => assert!(
            genuine.is_none(),
            "a genuine group message was rejected: {error}"
        ),
    }
    assert_eq!(
        inbound_state(&session),
        f.inbound_pickle,
        "decrypting {message:?} ({single:?}) changed the session"
    );

    let alone = session.decrypt_batch(ROOM, std::slice::from_ref(&message));
    assert_eq!(
        alone.as_slice(),
        std::slice::from_ref(&single),
        "decrypt_batch alone and decrypt disagree on {message:?}"
    );
    let check = &f.genuine[pick(data, f.genuine.len())];
    for fuzzed_first in [true, false] {
        let batch = if fuzzed_first {
            [message.clone(), check.message.clone()]
        } else {
            [check.message.clone(), message.clone()]
        };
        let results = session.decrypt_batch(ROOM, &batch);
        let [a, b] = results.as_slice() else {
            panic!(
                "decrypt_batch gave {} results for 2 messages",
                results.len()
            )
        };
        let (fuzzed, genuine) = if fuzzed_first { (a, b) } else { (b, a) };
        assert_eq!(
            fuzzed, &single,
            "decrypt_batch and decrypt disagree on {message:?}"
        );
        match genuine {
            Ok(decrypted) => {
                assert_eq!(decrypted.plaintext, check.plaintext);
                assert!(decrypted.authenticated);
            }
            Err(error) => panic!(
                "in a batch with {message:?}, a genuine message at index {} was rejected: {error}",
                check.message.message_index()
            ),
        }
        assert_eq!(
            inbound_state(&session),
            f.inbound_pickle,
            "decrypt_batch changed the session"
        );
    }
}

/// Decodes `data` as a signed [`SessionKey`] and as an
/// [`ExportedSessionKey`] (binary, and base64 if UTF-8).
///
/// Whatever decodes must re-encode to the input. An inbound session built
/// from a decoded session key must be refused unless the key is one the
/// fixture's sessions really signed. A session imported from an export must
/// export the same bytes again. Compared with the fixed (signed) inbound
/// session, an export of another session is unconnected; an export of the
/// same session never changes the signed ratchet: merged, it only adds an
/// unsigned prefix, and only if it is the genuine ratchet at an index before
/// the signed one.
pub fn decode_session_keys(data: &[u8]) {
    let f = group_fixture();
    if let Ok(key) = SessionKey::from_bytes(data) {
        assert!(
            *key.to_bytes() == *data,
            "SessionKey::from_bytes accepted a non-canonical encoding"
        );
        let _ = format!("{key:?}");
        let genuine = f.session_keys.iter().any(|k| k == data);
        match InboundGroupSession::new(&key) {
            Ok(session) => {
                assert!(genuine, "a session key that was never signed was accepted");
                assert_eq!(session.session_id(), key.session_id());
                assert!(session.is_authenticated());
                assert_eq!(session.first_known_index(), key.first_index());
            }
            Err(error) => assert!(!genuine, "a genuine session key was rejected: {error}"),
        }
    }
    if let Ok(export) = ExportedSessionKey::from_bytes(data) {
        check_export(f, &export, data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = SessionKey::from_base64(text) {
            assert_eq!(*key.to_base64(), text.trim_end_matches('='));
        }
        if let Ok(export) = ExportedSessionKey::from_base64(text) {
            assert_eq!(*export.to_base64(), text.trim_end_matches('='));
        }
    }
}

fn check_export(f: &GroupFixture, export: &ExportedSessionKey, data: &[u8]) {
    assert!(
        *export.to_bytes() == *data,
        "ExportedSessionKey::from_bytes accepted a non-canonical encoding"
    );
    let _ = format!("{export:?}");
    let index = export.first_index();
    let session = InboundGroupSession::import(export);
    assert!(!session.is_authenticated(), "an import is authenticated");
    assert_eq!(session.first_known_index(), index);
    let again = session
        .export_at(index)
        .expect("an imported session exports at its first index");
    assert!(
        *again.to_bytes() == *data,
        "import then export_at(first index) does not round-trip"
    );
    assert!(*session.export_at_first_known_index().to_bytes() == *data);

    let reference = restore_inbound(&f.inbound_pickle);
    let ordering = session.compare(&reference);
    let merged = session.merge(&reference);
    if session.session_id() != reference.session_id() {
        assert_eq!(ordering, SessionOrdering::Unconnected);
        assert!(merged.is_none(), "sessions of two keys merged");
        return;
    }
    // The same session: the signed copy absorbs the export, keeping its
    // authenticated ratchet; the export is a prefix only if it is genuine
    // and earlier.
    let origin = restore_inbound(&f.origin_pickle);
    let genuine = origin
        .export_at(index)
        .is_some_and(|g| *g.to_bytes() == *data);
    let adds_prefix = genuine && index < FIRST_INDEX;
    let expected = if adds_prefix {
        SessionOrdering::Incomparable
    } else {
        SessionOrdering::Worse
    };
    assert_eq!(ordering, expected, "ordering of an import at index {index}");
    assert_eq!(reference.compare(&session), mirror(expected));
    let merged = merged.expect("an export merges into a signed copy of its session");
    assert_eq!(merged.authenticated_from(), Some(FIRST_INDEX));
    assert_eq!(merged.creator(), reference.creator());
    let expected_first = if adds_prefix { index } else { FIRST_INDEX };
    assert_eq!(merged.first_known_index(), expected_first);
    assert!(
        *merged.export_at(FIRST_INDEX).expect("known").to_bytes()
            == *reference.export_at(FIRST_INDEX).expect("known").to_bytes(),
        "an unsigned export changed the signed ratchet"
    );
    // Messages from the signed index on stay authenticated; earlier ones
    // (only through a genuine prefix) are not.
    let mut merged = merged;
    let check = &f.genuine[pick(data, f.genuine.len())];
    let decrypted = merged
        .decrypt(ROOM, &check.message)
        .unwrap_or_else(|e| panic!("the merged session rejects a genuine message: {e}"));
    assert!(decrypted.authenticated);
    let early = merged.decrypt(ROOM, &f.early);
    if adds_prefix {
        let early = early.unwrap_or_else(|e| panic!("a genuine prefix does not decrypt: {e}"));
        assert!(
            !early.authenticated,
            "an unsigned prefix decrypted as authenticated"
        );
    } else {
        assert!(
            early.is_err(),
            "message 0 decrypted without a genuine prefix"
        );
    }
}

fn mirror(ordering: SessionOrdering) -> SessionOrdering {
    match ordering {
        SessionOrdering::Better => SessionOrdering::Worse,
        SessionOrdering::Worse => SessionOrdering::Better,
        other => other,
    }
}

/// A group message really sent, and its plaintext.
pub(crate) struct GroupGenuine {
    pub(crate) message: GroupMessage,
    pub(crate) plaintext: Vec<u8>,
}

/// The group fixture, built once per process, deterministically.
///
/// One outbound session in [`ROOM`]: its signed key at index 0, message 0,
/// its signed key at index 1 (the fixed inbound session is built from it),
/// then messages 1 to 300 (some kept), with its key at 300 taken before
/// message 300. Also another session's message in the same room, and a
/// message of a copy of the session moved to [`OTHER_ROOM`] (valid
/// signature, wrong room).
pub(crate) struct GroupFixture {
    /// The fixed inbound session, pickled with `PICKLE_SEED`.
    pub(crate) inbound_pickle: String,
    /// The outbound session at index 0, pickled with `PICKLE_SEED`.
    pub(crate) outbound_pickle: String,
    /// An inbound session from the key at index 0, pickled.
    origin_pickle: String,
    /// Messages the fixed session can read.
    genuine: Vec<GroupGenuine>,
    /// Message 0, before the shared key.
    early: GroupMessage,
    /// A message of the same session made for another room.
    other_room: GroupMessage,
    /// A message of another session.
    other_session: GroupMessage,
    /// Every session key the fixture's sessions signed (binary).
    pub(crate) session_keys: Vec<Vec<u8>>,
    /// Genuine exports at index 0, 1 and 300, and another session's.
    exports: Vec<Vec<u8>>,
}

pub(crate) fn group_fixture() -> &'static GroupFixture {
    static FIXTURE: OnceLock<GroupFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_group_fixture)
}

/// The identity keys of the device that creates the group sessions.
fn creator() -> IdentityKeys {
    Account::new_with_rng(&mut rng(CREATOR_SEED)).identity_keys()
}

fn build_group_fixture() -> GroupFixture {
    let key = pickle_key();
    let creator = creator();
    let mut outbound = OutboundGroupSession::new_with_rng(ROOM, creator, &mut rng(GROUP_SEED))
        .expect("valid room id");
    let outbound_pickle = outbound.pickle_with_rng(&key, &mut rng(PICKLE_SEED));
    let salts = &mut rng(GROUP_SALT_SEED);
    let key0 = outbound.session_key();
    let early = outbound
        .encrypt_with_rng(b"g0: before the key", salts)
        .expect("encrypt");
    let key1 = outbound.session_key();
    assert_eq!(key1.first_index(), FIRST_INDEX);
    let inbound = InboundGroupSession::new(&key1).expect("own key verifies");
    let origin = InboundGroupSession::new(&key0).expect("own key verifies");

    let mut genuine = Vec::new();
    let mut key_far = None;
    for index in FIRST_INDEX..=LAST_INDEX {
        if index == LAST_INDEX {
            key_far = Some(outbound.session_key());
        }
        let plaintext = format!("g{index}: a room message").into_bytes();
        let message = outbound
            .encrypt_with_rng(&plaintext, salts)
            .expect("encrypt");
        assert_eq!(message.message_index(), index);
        if KEPT.contains(&index) {
            genuine.push(GroupGenuine { message, plaintext });
        }
    }
    let key_far = key_far.expect("taken in the loop");

    let mut moved = forge_outbound(&outbound_pickle, OTHER_ROOM, 0);
    moved.encrypt_with_rng(b"moved 0", salts).expect("encrypt");
    let other_room = moved
        .encrypt_with_rng(b"moved 1: other room", salts)
        .expect("encrypt");

    let mut other = OutboundGroupSession::new_with_rng(ROOM, creator, &mut rng(OTHER_GROUP_SEED))
        .expect("room id");
    let other_key = other.session_key();
    other.encrypt_with_rng(b"o0", salts).expect("encrypt");
    let other_session = other
        .encrypt_with_rng(b"o1: another session", salts)
        .expect("encrypt");
    let other_export = InboundGroupSession::new(&other_key)
        .expect("own key verifies")
        .export_at(1)
        .expect("index 1 is known");

    let export = |session: &InboundGroupSession, index: u32| {
        session
            .export_at(index)
            .expect("known index")
            .to_bytes()
            .to_vec()
    };
    GroupFixture {
        inbound_pickle: inbound.pickle_with_rng(&key, &mut rng(PICKLE_SEED)),
        outbound_pickle,
        origin_pickle: origin.pickle_with_rng(&key, &mut rng(PICKLE_SEED)),
        exports: vec![
            export(&origin, 0),
            export(&inbound, FIRST_INDEX),
            export(&inbound, LAST_INDEX),
            other_export.to_bytes().to_vec(),
        ],
        session_keys: [&key0, &key1, &key_far, &other_key]
            .iter()
            .map(|k| k.to_bytes().to_vec())
            .collect(),
        genuine,
        early,
        other_room,
        other_session,
    }
}

fn restore_inbound(pickle: &str) -> InboundGroupSession {
    InboundGroupSession::from_pickle(pickle, &pickle_key())
        .expect("the fixture's inbound pickle restores")
}

fn inbound_state(session: &InboundGroupSession) -> String {
    session.pickle_with_rng(&pickle_key(), &mut rng(PICKLE_SEED))
}

/// The group targets' seeds.
pub(crate) fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let f = group_fixture();
    let bytes = |m: &GroupMessage| m.to_bytes();
    let flip = |mut b: Vec<u8>, at: usize| {
        let at = at.min(b.len() - 1);
        b[at] ^= 0x01;
        b
    };
    let with_index = |mut b: Vec<u8>, index: u32| {
        b[1..5].copy_from_slice(&index.to_be_bytes());
        b
    };
    let padded = |text: String| {
        let pad = (4 - text.len() % 4) % 4;
        format!("{text}{}", "=".repeat(pad)).into_bytes()
    };
    let first = bytes(&f.genuine[0].message);
    let last = bytes(&f.genuine[f.genuine.len() - 1].message);
    // Layout (PROTOCOL.md 11.5): version, BE32 index, salt [16], ciphertext
    // (at least the 16-byte tag), signature [64].
    const SALT: std::ops::Range<usize> = 5..21;
    let minimal = [&[VERSION, 0, 0, 0, 0][..], &[0u8; 16 + 16 + 64][..]].concat();
    let short = [&[VERSION, 0, 0, 0, 0][..], &[0u8; 16 + 15 + 64][..]].concat();
    let old_version = [&[VERSION - 1][..], &first[1..]].concat();
    let sig_at = first.len() - 64;
    let [key0, key1, key_far, other_key] = f.session_keys.as_slice() else {
        unreachable!("four session keys")
    };
    let [export0, export1, export_far, other_export] = f.exports.as_slice() else {
        unreachable!("four exports")
    };
    // An export or key: version, BE32 index, ratchet [128], signing key [32].
    let export_index = |mut b: Vec<u8>, index: u32| {
        b[1..5].copy_from_slice(&index.to_be_bytes());
        b
    };

    let mut seeds: Vec<(&'static str, &'static str, Vec<u8>)> = vec![
        ("decode_group_message", "index_1.bin", first.clone()),
        ("decode_group_message", "index_300.bin", last.clone()),
        (
            "decode_group_message",
            "index_1.b64",
            f.genuine[0].message.to_base64().into_bytes(),
        ),
        (
            "decode_group_message",
            "index_2_padded.b64",
            padded(f.genuine[1].message.to_base64()),
        ),
        ("decode_group_message", "minimal.bin", minimal.clone()),
        ("decode_group_message", "short_ciphertext.bin", short),
        (
            "decode_group_message",
            "unknown_version.bin",
            vec![VERSION + 1, 0, 0, 0, 0],
        ),
        ("decode_group_message", "old_version.bin", old_version),
        (
            "decode_group_message",
            "no_salt.bin",
            first[..SALT.start + 8].to_vec(),
        ),
        (
            "decode_group_message",
            "no_signature.bin",
            first[..70].to_vec(),
        ),
        ("group_decrypt", "index_1.bin", first.clone()),
        ("group_decrypt", "index_2.bin", bytes(&f.genuine[1].message)),
        (
            "group_decrypt",
            "index_255.bin",
            bytes(&f.genuine[3].message),
        ),
        (
            "group_decrypt",
            "index_256.bin",
            bytes(&f.genuine[4].message),
        ),
        ("group_decrypt", "index_300.bin", last.clone()),
        ("group_decrypt", "before_first_index.bin", bytes(&f.early)),
        ("group_decrypt", "other_room.bin", bytes(&f.other_room)),
        (
            "group_decrypt",
            "other_session.bin",
            bytes(&f.other_session),
        ),
        (
            "group_decrypt",
            "tampered_salt.bin",
            flip(first.clone(), SALT.start + 3),
        ),
        (
            "group_decrypt",
            "tampered_ciphertext.bin",
            flip(first.clone(), SALT.end + 1),
        ),
        (
            "group_decrypt",
            "tampered_signature.bin",
            flip(first.clone(), sig_at + 3),
        ),
        (
            "group_decrypt",
            "moved_index.bin",
            with_index(first.clone(), 2),
        ),
        (
            "group_decrypt",
            "far_index.bin",
            with_index(first.clone(), u32::MAX),
        ),
        ("group_decrypt", "minimal.bin", minimal),
        ("decode_session_keys", "key_0.bin", key0.clone()),
        ("decode_session_keys", "key_1.bin", key1.clone()),
        ("decode_session_keys", "key_300.bin", key_far.clone()),
        ("decode_session_keys", "other_key.bin", other_key.clone()),
        (
            "decode_session_keys",
            "key_bad_signature.bin",
            flip(key1.clone(), key1.len() - 1),
        ),
        (
            "decode_session_keys",
            "key_moved_index.bin",
            export_index(key1.clone(), 2),
        ),
        ("decode_session_keys", "export_0.bin", export0.clone()),
        ("decode_session_keys", "export_1.bin", export1.clone()),
        ("decode_session_keys", "export_300.bin", export_far.clone()),
        (
            "decode_session_keys",
            "other_export.bin",
            other_export.clone(),
        ),
        (
            "decode_session_keys",
            "export_moved_index.bin",
            export_index(export1.clone(), 7),
        ),
        (
            "decode_session_keys",
            "export_bad_ratchet.bin",
            flip(export1.clone(), 40),
        ),
        (
            "decode_session_keys",
            "export_bad_signing_key.bin",
            flip(export1.clone(), export1.len() - 1),
        ),
        (
            "decode_session_keys",
            "export_truncated.bin",
            export1[..export1.len() - 1].to_vec(),
        ),
    ];
    seeds.push((
        "decode_session_keys",
        "key_1.b64",
        super::base64_encode(key1).into_bytes(),
    ));
    seeds
        .into_iter()
        .map(|(t, n, b)| (t, n.to_owned(), b))
        .collect()
}

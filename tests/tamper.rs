//! Tamper sweep over every wire and pickle format.
//!
//! For each format a genuine encoding is produced through the public API and
//! every variant of it is fed back: every single-bit flip, every strict
//! prefix, and 1, 2 and 64 appended bytes (two fills each). Each variant must
//! be rejected with the error this file predicts for it (an independent
//! reference decoder of the layouts in PROTOCOL.md predicts the decoding
//! error; a small model of the receiving rules of PROTOCOL.md 6.6 predicts
//! the session-layer error), never decode to a value equal to the genuine
//! one, and leave the object that processed it exactly as it was (compared
//! through its pickle, taken with a fixed-seed generator so the nonce is the
//! same). After each sweep the genuine encoding must still be accepted.
//!
//! The formats of protocol version 2 carry more than version 1 did, and the
//! sweeps cover it byte for byte: the 16-byte salt of every pairwise and
//! group message (signed in a group message), the generation in every
//! pickle envelope (authenticated), the sender's user and device ids in a
//! room-key share (the endpoint checks them against the user the server
//! names and the ids bound to the device), and every pickle's contents
//! behind its AEAD.
//!
//! Run with `--nocapture` to see the number of cases per format.

use base64ct::{Base64Unpadded, Encoding};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::consts::{MAX_FORWARD_JUMP, MAX_PLAINTEXT_LEN};
use roomseal::{
    Account, AccountError, Curve25519PublicKey, DeviceMessage, EncryptedEvent, Endpoint,
    ExportedSessionKey, GroupError, GroupMessage, IdentityKeys, InboundGroupSession, KeyAdded,
    KeysToPublish, NormalMessage, OutboundGroupSession, PickleError, PickleKey, PreKeyMessage,
    ROOM_ALGORITHM, RoomError, RoomKeyShare, Session, SessionError, SessionKey,
};
use serde_json::json;

const ROOM: &str = "!room:example.org";
const ROOM_B: &str = "!second:example.org";
const ROOM_C: &str = "!third:example.org";
const ALICE: (&str, &str) = ("@alice:example.org", "ALICELAPTOP");
const BOB: (&str, &str) = ("@bob:example.org", "BOBPHONE");
const EVENT_ID: &str = "$event-one:example.org";

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn pickle_key() -> PickleKey {
    PickleKey::from_bytes(&mut [0x5a; 32])
}

/// Seed of the generator every comparison pickle takes its nonce from.
const SNAPSHOT_SEED: u8 = 0xEE;

// ---------------------------------------------------------------------------
// Variants and the sweep harness
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    /// Zero bytes.
    Zero,
    /// ASCII letters (so appended text stays valid UTF-8).
    Letters,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tamper {
    Flip { byte: usize, bit: u32 },
    Truncate(usize),
    Append { len: usize, fill: Fill },
}

const APPENDED: [usize; 3] = [1, 2, 64];

fn apply(genuine: &[u8], tamper: Tamper) -> Vec<u8> {
    match tamper {
        Tamper::Flip { byte, bit } => {
            let mut out = genuine.to_vec();
            out[byte] ^= 1 << bit;
            out
        }
        Tamper::Truncate(len) => genuine[..len].to_vec(),
        Tamper::Append { len, fill } => {
            let mut out = genuine.to_vec();
            out.extend((0..len).map(|i| match fill {
                Fill::Zero => 0,
                Fill::Letters => b'a' + (i % 26) as u8,
            }));
            out
        }
    }
}

fn tampers(len: usize) -> impl Iterator<Item = Tamper> {
    let flips = (0..len).flat_map(|byte| (0..8).map(move |bit| Tamper::Flip { byte, bit }));
    let truncations = (0..len).map(Tamper::Truncate);
    let appends = APPENDED.iter().flat_map(|&len| {
        [Fill::Zero, Fill::Letters]
            .into_iter()
            .map(move |fill| Tamper::Append { len, fill })
    });
    flips.chain(truncations).chain(appends)
}

/// How far a variant got before it was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Rejected while decoding.
    Decode,
    /// Decoded, rejected by the object that processed it.
    Processing,
    /// Not valid UTF-8, so it cannot be passed to a `&str` API at all.
    NotUtf8,
    /// Accepted as something unrelated (only for unsigned exports: a flipped
    /// session signing key names another session; see that test).
    AcceptedAsOther,
}

#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    decode: usize,
    processing: usize,
    not_utf8: usize,
    accepted_as_other: usize,
}

/// Runs `case` on every variant of `genuine` and prints the count.
fn sweep(name: &str, genuine: &[u8], mut case: impl FnMut(Tamper, &[u8]) -> Stage) -> Tally {
    let mut tally = Tally::default();
    for tamper in tampers(genuine.len()) {
        let variant = apply(genuine, tamper);
        assert_ne!(variant, genuine, "{name}: {tamper:?} is not a change");
        tally.cases += 1;
        match case(tamper, &variant) {
            Stage::Decode => tally.decode += 1,
            Stage::Processing => tally.processing += 1,
            Stage::NotUtf8 => tally.not_utf8 += 1,
            Stage::AcceptedAsOther => tally.accepted_as_other += 1,
        }
    }
    assert_eq!(tally.cases, 9 * genuine.len() + 2 * APPENDED.len());
    eprintln!(
        "tamper cases [{name}]: {} ({} bytes: {} bit flips, {} truncations, {} appends); \
         rejected when decoding {}, when processing {}, not UTF-8 {}, accepted as another session {}",
        tally.cases,
        genuine.len(),
        8 * genuine.len(),
        genuine.len(),
        2 * APPENDED.len(),
        tally.decode,
        tally.processing,
        tally.not_utf8,
        tally.accepted_as_other,
    );
    tally
}

fn assert_unchanged(what: &str, before: &str, after: &str, tamper: Tamper) {
    assert!(before == after, "{what} changed after rejecting {tamper:?}");
}

// ---------------------------------------------------------------------------
// Reference decoder: the layouts of PROTOCOL.md (sections 7, 11.5, 11.6, 12.1)
// as the code implements them, read independently, predicting the exact
// `DecodeError` of each variant.
// ---------------------------------------------------------------------------

mod reference {
    use roomseal::{DecodeError, Ed25519PublicKey};

    pub(crate) const MAX_CIPHERTEXT: usize = super::MAX_PLAINTEXT_LEN + 16;

    pub(crate) struct Cursor<'a>(pub(crate) &'a [u8]);

    impl<'a> Cursor<'a> {
        pub(crate) fn version(&mut self) -> Result<(), DecodeError> {
            match self.0.split_first() {
                None => Err(DecodeError::Empty),
                Some((2, rest)) => {
                    self.0 = rest;
                    Ok(())
                }
                Some((&v, _)) => Err(DecodeError::UnknownVersion(v)),
            }
        }

        pub(crate) fn take(
            &mut self,
            len: usize,
            field: &'static str,
        ) -> Result<&'a [u8], DecodeError> {
            if self.0.len() < len {
                return Err(DecodeError::Truncated(field));
            }
            let (head, tail) = self.0.split_at(len);
            self.0 = tail;
            Ok(head)
        }

        fn ed25519(&mut self, field: &'static str) -> Result<(), DecodeError> {
            let bytes = self.take(32, field)?;
            Ed25519PublicKey::from_slice(bytes)
                .map(|_| ())
                .map_err(|_| DecodeError::InvalidValue(field))
        }

        fn identity_keys(&mut self) -> Result<(), DecodeError> {
            self.ed25519("ed25519 identity key")?;
            self.take(32, "curve25519 identity key")?;
            Ok(())
        }

        /// A BE16-length-prefixed UTF-8 id of 1 to 255 bytes.
        fn id(&mut self, field: &'static str) -> Result<(), DecodeError> {
            let len = self.take(2, field)?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            if len > 255 {
                return Err(DecodeError::TooLong {
                    field,
                    len,
                    max: 255,
                });
            }
            let id = self.take(len, field)?;
            if id.is_empty() || std::str::from_utf8(id).is_err() {
                return Err(DecodeError::InvalidValue(field));
            }
            Ok(())
        }

        fn room_id(&mut self) -> Result<(), DecodeError> {
            self.id("room id")
        }

        fn ciphertext(len: usize) -> Result<(), DecodeError> {
            if len < 16 {
                Err(DecodeError::Truncated("ciphertext"))
            } else if len > MAX_CIPHERTEXT {
                Err(DecodeError::TooLong {
                    field: "ciphertext",
                    len,
                    max: MAX_CIPHERTEXT,
                })
            } else {
                Ok(())
            }
        }

        fn finish(self) -> Result<(), DecodeError> {
            if self.0.is_empty() {
                Ok(())
            } else {
                Err(DecodeError::TrailingBytes(self.0.len()))
            }
        }
    }

    /// 7.1, 7.2: the kind byte on success.
    pub(crate) fn device_message(bytes: &[u8]) -> Result<u8, DecodeError> {
        let mut c = Cursor(bytes);
        c.version()?;
        let kind = c.take(1, "message kind")?[0];
        match kind {
            0 => {
                c.take(32, "one-time key")?;
                c.take(32, "base key")?;
                c.identity_keys()?;
                c.take(64, "binding signature")?;
            }
            1 => {}
            _ => return Err(DecodeError::InvalidValue("message kind")),
        }
        c.take(32, "ratchet key")?;
        c.take(4, "previous counter")?;
        c.take(4, "counter")?;
        c.take(16, "salt")?;
        Cursor::ciphertext(c.0.len())?;
        Ok(kind)
    }

    /// 11.5.
    pub(crate) fn group_message(bytes: &[u8]) -> Result<(), DecodeError> {
        let mut c = Cursor(bytes);
        c.version()?;
        c.take(4, "message index")?;
        c.take(16, "salt")?;
        let body =
            c.0.len()
                .checked_sub(64)
                .ok_or(DecodeError::Truncated("signature"))?;
        Cursor::ciphertext(body)
    }

    fn export_part(c: &mut Cursor<'_>) -> Result<(), DecodeError> {
        c.version()?;
        c.take(4, "message index")?;
        c.take(128, "ratchet")?;
        c.ed25519("session signing key")
    }

    /// 11.6, exported key.
    pub(crate) fn exported_key(bytes: &[u8]) -> Result<(), DecodeError> {
        let mut c = Cursor(bytes);
        export_part(&mut c)?;
        c.finish()
    }

    /// 11.6, signed session key: the export, the creator's identity keys,
    /// the room id, the signature.
    pub(crate) fn session_key(bytes: &[u8]) -> Result<(), DecodeError> {
        let mut c = Cursor(bytes);
        export_part(&mut c)?;
        c.identity_keys()?;
        c.room_id()?;
        c.take(64, "signature")?;
        c.finish()
    }

    /// 12.1.
    pub(crate) fn room_key_share(bytes: &[u8]) -> Result<(), DecodeError> {
        let mut c = Cursor(bytes);
        c.version()?;
        if c.take(1, "payload type")?[0] != 1 {
            return Err(DecodeError::InvalidValue("payload type"));
        }
        c.room_id()?;
        c.id("sender user id")?;
        c.id("sender device id")?;
        c.identity_keys()?;
        c.identity_keys()?;
        session_key(c.0)
    }

    /// 8.1, for a pickle whose bytes were altered (so the tag cannot
    /// verify): version, generation [8] (authenticated), nonce [12], then
    /// at least the tag.
    pub(crate) fn tampered_pickle(bytes: &[u8]) -> super::PickleError {
        use super::PickleError;
        match bytes.split_first() {
            None => PickleError::Truncated,
            Some((&v, _)) if v != 2 => PickleError::UnknownVersion(v),
            Some((_, rest)) if rest.len() < 8 + 12 + 16 => PickleError::Truncated,
            Some(_) => PickleError::Decryption,
        }
    }
}

// ---------------------------------------------------------------------------
// Models of the receiving rules (PROTOCOL.md 6.1, 6.6, 12.5)
// ---------------------------------------------------------------------------

/// The error a session must give for a normal message (or a pre-key
/// message's inner message) that does not authenticate, when its live
/// receiving chain is `live` (peer ratchet key, next index) and it holds no
/// skipped keys: the bounds are checked before the tag.
fn expected_session_error(
    live: Option<(Curve25519PublicKey, u32)>,
    message: &NormalMessage,
) -> SessionError {
    let max = MAX_FORWARD_JUMP;
    match live {
        Some((key, index)) if key == message.ratchet_key() => {
            if message.counter() < index {
                SessionError::MessageKeyGone {
                    counter: message.counter(),
                }
            } else if message.counter() - index > max {
                SessionError::TooFarAhead {
                    jump: u64::from(message.counter() - index),
                    max,
                }
            } else {
                SessionError::Authentication
            }
        }
        _ => {
            // A new chain: only its own counter is bounded (the previous
            // chain's missing keys are given up when they would not fit).
            if message.counter() > max {
                SessionError::TooFarAhead {
                    jump: u64::from(message.counter()),
                    max,
                }
            } else {
                SessionError::Authentication
            }
        }
    }
}

/// The error `Account::create_inbound_session` must give for a tampered
/// pre-key message (`genuine` is the message it was made from).
fn expected_creation_error(
    genuine: &PreKeyMessage,
    genuine_bytes: &[u8],
    variant: &PreKeyMessage,
    variant_bytes: &[u8],
    held_one_time_keys: &[Curve25519PublicKey],
) -> AccountError {
    if !held_one_time_keys.contains(&variant.one_time_key()) {
        AccountError::UnknownOneTimeKey
    } else if variant.session_id() != genuine.session_id()
        || variant_bytes[130..194] != genuine_bytes[130..194]
    {
        AccountError::Session(SessionError::BadBinding)
    } else {
        // The new session's receiving chain is the message's ratchet key at 0.
        AccountError::Session(expected_session_error(
            Some((variant.message().ratchet_key(), 0)),
            variant.message(),
        ))
    }
}

/// The error an established session must give for a tampered message.
fn expected_error_on_session(
    session: &Session,
    live: Option<(Curve25519PublicKey, u32)>,
    message: &DeviceMessage,
) -> SessionError {
    match message {
        DeviceMessage::PreKey(p) if p.session_id() != session.session_id() => {
            SessionError::SessionMismatch
        }
        m => expected_session_error(live, m.normal()),
    }
}

/// Checks the decoding of a tampered pairwise message against the reference
/// decoder; returns the decoded message if it must be processed.
fn decode_device_message(
    bytes: &[u8],
    genuine: &DeviceMessage,
    tamper: Tamper,
) -> Option<DeviceMessage> {
    let decoded = DeviceMessage::from_bytes(bytes);
    match (reference::device_message(bytes), decoded) {
        (Err(expected), Err(found)) => {
            assert_eq!(found, expected, "decoding {tamper:?}");
            None
        }
        (Ok(kind), Ok(message)) => {
            assert_eq!(u8::from(!message.is_pre_key()), kind, "{tamper:?}");
            assert_ne!(
                &message, genuine,
                "{tamper:?} decodes to the genuine message"
            );
            assert_eq!(message.to_bytes(), bytes, "{tamper:?} does not re-encode");
            Some(message)
        }
        (expected, found) => panic!("{tamper:?}: reference {expected:?}, decoder {found:?}"),
    }
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// Alice has started a session with Bob and sent two pre-key messages;
/// Bob holds the one-time key (his account is untouched).
struct Pairwise {
    alice: Account,
    bob: Account,
    bob_one_time_keys: Vec<Curve25519PublicKey>,
    alice_session: Session,
    m0: DeviceMessage,
    m1: DeviceMessage,
}

fn pairwise() -> Pairwise {
    let alice = Account::new_with_rng(&mut rng(1));
    let mut bob = Account::new_with_rng(&mut rng(2));
    let generated = bob.generate_one_time_keys_with_rng(3, &mut rng(3));
    let bob_device = bob
        .device_keys(BOB.0, BOB.1)
        .unwrap()
        .check_self_signature()
        .unwrap();
    let published = bob.one_time_keys();
    let one_time_key = published[0].clone();
    bob.mark_keys_as_published(&published);
    let mut alice_session = alice
        .create_outbound_session_with_rng(&bob_device, &one_time_key, &mut rng(4))
        .unwrap();
    let m0 = alice_session
        .encrypt(b"pre-key tamper sweep: first")
        .unwrap();
    let m1 = alice_session
        .encrypt(b"pre-key tamper sweep: second")
        .unwrap();
    Pairwise {
        alice,
        bob,
        bob_one_time_keys: generated.created,
        alice_session,
        m0,
        m1,
    }
}

fn pre_key(message: &DeviceMessage) -> &PreKeyMessage {
    match message {
        DeviceMessage::PreKey(p) => p,
        DeviceMessage::Normal(_) => panic!("expected a pre-key message"),
    }
}

fn snapshot_session(session: &Session) -> String {
    session.pickle_with_rng(&pickle_key(), &mut rng(SNAPSHOT_SEED))
}

fn snapshot_account(account: &Account) -> String {
    account.pickle_with_rng(&pickle_key(), &mut rng(SNAPSHOT_SEED))
}

fn snapshot_endpoint(endpoint: &Endpoint) -> String {
    endpoint.pickle_with_rng(&pickle_key(), &mut rng(SNAPSHOT_SEED))
}

fn snapshot_inbound(session: &InboundGroupSession) -> String {
    session.pickle_with_rng(&pickle_key(), &mut rng(SNAPSHOT_SEED))
}

// ---------------------------------------------------------------------------
// Pairwise messages
// ---------------------------------------------------------------------------

#[test]
fn pre_key_message_into_account() {
    let Pairwise {
        mut bob,
        bob_one_time_keys,
        m0,
        ..
    } = pairwise();
    let genuine = m0.to_bytes();
    let genuine_pre_key = pre_key(&m0);
    // A variant whose kind byte now says "normal" cannot reach the account;
    // it goes to the session Bob builds from the genuine message (on a
    // copy of his account).
    let mut bob_copy = Account::from_pickle(&snapshot_account(&bob), &pickle_key()).unwrap();
    let mut bob_session = bob_copy
        .create_inbound_session_with_rng(genuine_pre_key, &mut rng(5))
        .unwrap()
        .session;
    let live = Some((m0.normal().ratchet_key(), 1));
    let account_before = snapshot_account(&bob);
    let session_before = snapshot_session(&bob_session);

    sweep(
        "pre-key message -> Account::create_inbound_session",
        &genuine,
        |tamper, bytes| {
            let Some(message) = decode_device_message(bytes, &m0, tamper) else {
                return Stage::Decode;
            };
            match &message {
                DeviceMessage::PreKey(variant) => {
                    let found = bob
                        .create_inbound_session_with_rng(variant, &mut rng(5))
                        .expect_err("a tampered pre-key message created a session");
                    let expected = expected_creation_error(
                        genuine_pre_key,
                        &genuine,
                        variant,
                        bytes,
                        &bob_one_time_keys,
                    );
                    assert_eq!(found, expected, "{tamper:?}");
                    assert_unchanged("account", &account_before, &snapshot_account(&bob), tamper);
                }
                DeviceMessage::Normal(_) => {
                    let found = bob_session
                        .decrypt_with_rng(&message, &mut rng(6))
                        .expect_err("a tampered message decrypted");
                    assert_eq!(
                        found,
                        expected_error_on_session(&bob_session, live, &message),
                        "{tamper:?}"
                    );
                    assert_unchanged(
                        "session",
                        &session_before,
                        &snapshot_session(&bob_session),
                        tamper,
                    );
                }
            }
            Stage::Processing
        },
    );

    let created = bob
        .create_inbound_session_with_rng(genuine_pre_key, &mut rng(5))
        .unwrap();
    assert_eq!(created.plaintext, b"pre-key tamper sweep: first");
}

#[test]
fn pre_key_message_into_established_session() {
    let Pairwise {
        mut bob, m0, m1, ..
    } = pairwise();
    let mut bob_session = bob
        .create_inbound_session_with_rng(pre_key(&m0), &mut rng(5))
        .unwrap()
        .session;
    let live = Some((m1.normal().ratchet_key(), 1));
    let genuine = m1.to_bytes();
    let before = snapshot_session(&bob_session);

    sweep(
        "pre-key message -> established Session::decrypt",
        &genuine,
        |tamper, bytes| {
            let Some(message) = decode_device_message(bytes, &m1, tamper) else {
                return Stage::Decode;
            };
            let found = bob_session
                .decrypt_with_rng(&message, &mut rng(6))
                .expect_err("a tampered message decrypted");
            assert_eq!(
                found,
                expected_error_on_session(&bob_session, live, &message),
                "{tamper:?}"
            );
            assert_unchanged("session", &before, &snapshot_session(&bob_session), tamper);
            Stage::Processing
        },
    );

    assert_eq!(
        bob_session.decrypt_with_rng(&m1, &mut rng(6)).unwrap(),
        b"pre-key tamper sweep: second"
    );
}

#[test]
fn normal_messages_into_session() {
    let Pairwise {
        mut bob,
        mut alice_session,
        m0,
        ..
    } = pairwise();
    let mut bob_session = bob
        .create_inbound_session_with_rng(pre_key(&m0), &mut rng(5))
        .unwrap()
        .session;
    // r1 starts a new chain for Alice (she has none); r2 continues it, long
    // enough that a kind flip decodes as a pre-key message.
    let r1 = bob_session.encrypt(b"normal tamper sweep: reply").unwrap();
    let r2_plaintext = vec![0x42; 300];
    let r2 = bob_session.encrypt(&r2_plaintext).unwrap();
    assert!(!r1.is_pre_key() && !r2.is_pre_key());

    for (name, message, plaintext) in [
        (
            "normal message (new chain) -> Session::decrypt",
            &r1,
            &b"normal tamper sweep: reply"[..],
        ),
        (
            "normal message (live chain) -> Session::decrypt",
            &r2,
            &r2_plaintext[..],
        ),
    ] {
        let live = alice_session
            .has_received_message()
            .then(|| (r1.normal().ratchet_key(), 1));
        let genuine = message.to_bytes();
        let before = snapshot_session(&alice_session);
        sweep(name, &genuine, |tamper, bytes| {
            let Some(variant) = decode_device_message(bytes, message, tamper) else {
                return Stage::Decode;
            };
            let found = alice_session
                .decrypt_with_rng(&variant, &mut rng(7))
                .expect_err("a tampered message decrypted");
            assert_eq!(
                found,
                expected_error_on_session(&alice_session, live, &variant),
                "{tamper:?}"
            );
            assert_unchanged(
                "session",
                &before,
                &snapshot_session(&alice_session),
                tamper,
            );
            Stage::Processing
        });
        assert_eq!(
            alice_session
                .decrypt_with_rng(message, &mut rng(7))
                .unwrap(),
            plaintext
        );
    }
}

// ---------------------------------------------------------------------------
// Group messages, session keys, exports
// ---------------------------------------------------------------------------

/// Alice's group session; a reader built from its key at index 2; the
/// message at index 2.
struct Group {
    outbound: OutboundGroupSession,
    key: SessionKey,
    inbound: InboundGroupSession,
    message: GroupMessage,
}

fn group() -> Group {
    let alice = Account::new_with_rng(&mut rng(1)).identity_keys();
    let mut outbound = OutboundGroupSession::new_with_rng(ROOM, alice, &mut rng(20)).unwrap();
    outbound.encrypt(b"index 0").unwrap();
    outbound.encrypt(b"index 1").unwrap();
    let key = outbound.session_key();
    let inbound = InboundGroupSession::new(&key).unwrap();
    let message = outbound.encrypt(b"group tamper sweep at index 2").unwrap();
    Group {
        outbound,
        key,
        inbound,
        message,
    }
}

/// What an inbound session must say about a tampered group message.
fn expected_group_error(first_known: u32, message: &GroupMessage) -> GroupError {
    if message.message_index() < first_known {
        GroupError::UnknownIndex {
            index: message.message_index(),
            first_known,
        }
    } else {
        // The signature covers every byte before it, and the split between
        // ciphertext and signature moves with the length.
        GroupError::BadSignature
    }
}

fn decode_group_message(
    bytes: &[u8],
    genuine: &GroupMessage,
    tamper: Tamper,
) -> Option<GroupMessage> {
    match (
        reference::group_message(bytes),
        GroupMessage::from_bytes(bytes),
    ) {
        (Err(expected), Err(found)) => {
            assert_eq!(found, expected, "decoding {tamper:?}");
            None
        }
        (Ok(()), Ok(message)) => {
            assert_ne!(
                &message, genuine,
                "{tamper:?} decodes to the genuine message"
            );
            assert_eq!(message.to_bytes(), bytes, "{tamper:?} does not re-encode");
            Some(message)
        }
        (expected, found) => panic!("{tamper:?}: reference {expected:?}, decoder {found:?}"),
    }
}

#[test]
fn group_message_into_inbound_session() {
    let Group {
        mut inbound,
        message,
        ..
    } = group();
    let genuine = message.to_bytes();
    let first_known = inbound.first_known_index();
    assert_eq!(first_known, 2);
    let before = snapshot_inbound(&inbound);

    sweep(
        "group message -> InboundGroupSession::decrypt / decrypt_batch",
        &genuine,
        |tamper, bytes| {
            let Some(variant) = decode_group_message(bytes, &message, tamper) else {
                return Stage::Decode;
            };
            let expected = expected_group_error(first_known, &variant);
            assert_eq!(
                inbound.decrypt(ROOM, &variant).unwrap_err(),
                expected,
                "{tamper:?}"
            );
            // In a batch with the genuine message: only the variant fails.
            let batch = inbound.decrypt_batch(ROOM, &[message.clone(), variant]);
            assert!(batch[0].is_ok(), "{tamper:?}");
            assert_eq!(
                batch[1].clone().unwrap_err(),
                expected,
                "{tamper:?} in a batch"
            );
            assert_unchanged(
                "inbound session",
                &before,
                &snapshot_inbound(&inbound),
                tamper,
            );
            Stage::Processing
        },
    );

    let decrypted = inbound.decrypt(ROOM, &message).unwrap();
    assert_eq!(decrypted.plaintext, b"group tamper sweep at index 2");
    assert!(decrypted.authenticated);
}

#[test]
fn session_key_into_inbound_session() {
    let Group { key, message, .. } = group();
    let genuine = key.to_bytes();

    sweep(
        "session key -> SessionKey::from_bytes + InboundGroupSession::new",
        &genuine,
        |tamper, bytes| {
            match (reference::session_key(bytes), SessionKey::from_bytes(bytes)) {
                (Err(expected), Err(found)) => {
                    assert_eq!(found, expected, "decoding {tamper:?}");
                    Stage::Decode
                }
                (Ok(()), Ok(variant)) => {
                    assert_eq!(
                        &variant.to_bytes()[..],
                        bytes,
                        "{tamper:?} does not re-encode"
                    );
                    // Every byte is covered by the signature (checked strictly).
                    assert_eq!(
                        InboundGroupSession::new(&variant).err(),
                        Some(GroupError::BadSignature),
                        "{tamper:?}"
                    );
                    Stage::Processing
                }
                (expected, found) => panic!(
                    "{tamper:?}: reference {expected:?}, decoder {:?}",
                    found.err()
                ),
            }
        },
    );

    let mut inbound = InboundGroupSession::new(&SessionKey::from_bytes(&genuine).unwrap()).unwrap();
    assert!(inbound.decrypt(ROOM, &message).is_ok());
}

// ---------------------------------------------------------------------------
// Room layer: shares, endpoint, envelopes
// ---------------------------------------------------------------------------

/// Bob's endpoint (from a seeded account) with published keys; Alice's
/// plain account, her outbound pairwise session to Bob and her group
/// session for `ROOM`.
struct RoomFixture {
    alice: Account,
    alice_session: Session,
    alice_group: OutboundGroupSession,
    bob: Endpoint,
    published: KeysToPublish,
}

fn room_fixture() -> RoomFixture {
    let alice = Account::new_with_rng(&mut rng(1));
    let mut bob = Endpoint::from_account(BOB.0, BOB.1, Account::new_with_rng(&mut rng(2))).unwrap();
    let published = bob.keys_to_publish(2);
    bob.mark_keys_as_published(&published);
    let bob_device = published.device_keys.check_self_signature().unwrap();
    let alice_session = alice
        .create_outbound_session_with_rng(&bob_device, &published.one_time_keys[0], &mut rng(4))
        .unwrap();
    let alice_group =
        OutboundGroupSession::new_with_rng(ROOM, alice.identity_keys(), &mut rng(20)).unwrap();
    RoomFixture {
        alice,
        alice_session,
        alice_group,
        bob,
        published,
    }
}

fn share_of(
    group: &OutboundGroupSession,
    sender: IdentityKeys,
    recipient: IdentityKeys,
) -> RoomKeyShare {
    RoomKeyShare {
        room_id: group.room_id().to_owned(),
        sender_user_id: ALICE.0.to_owned(),
        sender_device_id: ALICE.1.to_owned(),
        session_key: group.session_key(),
        sender,
        recipient,
    }
}

/// What `RoomKeyShare::check` must say (recipient, sender, room), if
/// anything.
fn expected_check_error(genuine: &RoomKeyShare, variant: &RoomKeyShare) -> Option<RoomError> {
    if variant.recipient != genuine.recipient {
        Some(RoomError::ShareNotForUs)
    } else if variant.sender != genuine.sender || variant.sender != variant.session_key.creator() {
        Some(RoomError::ShareSenderMismatch)
    } else if variant.room_id != variant.session_key.room_id() {
        Some(RoomError::ShareRoomMismatch)
    } else {
        None
    }
}

/// What receiving a share must say, from a device whose ids the endpoint
/// has bound to the genuine share's and that the server says is the
/// genuine share's user (the endpoint's order: decode, check, the user the
/// server names, the ids bound to the device, then the session key's
/// signature).
fn expected_share_error(genuine: &RoomKeyShare, variant: &RoomKeyShare) -> RoomError {
    if let Some(error) = expected_check_error(genuine, variant) {
        error
    } else if variant.sender_user_id != genuine.sender_user_id {
        RoomError::ShareSenderMismatch
    } else if variant.sender_device_id != genuine.sender_device_id {
        RoomError::IdentityConflict
    } else {
        assert_ne!(
            variant.session_key.to_bytes(),
            genuine.session_key.to_bytes(),
            "a share equal to the genuine one"
        );
        RoomError::Group(GroupError::BadSignature)
    }
}

#[test]
fn room_key_share_checks() {
    // A plain pairwise session Bob -> Alice carries the share.
    let Pairwise {
        alice,
        mut bob,
        mut alice_session,
        ..
    } = pairwise();
    let group =
        OutboundGroupSession::new_with_rng(ROOM, alice.identity_keys(), &mut rng(20)).unwrap();
    let share = share_of(&group, alice.identity_keys(), bob.identity_keys());
    let wire = alice_session.encrypt(&share.to_bytes()).unwrap();
    let created = bob
        .create_inbound_session_with_rng(pre_key(&wire), &mut rng(5))
        .unwrap();
    let bob_session = created.session;
    let genuine = created.plaintext;
    assert_eq!(genuine, *share.to_bytes());
    let us = bob.identity_keys();

    sweep(
        "room-key share -> RoomKeyShare::from_bytes + check + InboundGroupSession::new",
        &genuine,
        |tamper, bytes| match (
            reference::room_key_share(bytes),
            RoomKeyShare::from_bytes(bytes),
        ) {
            (Err(expected), Err(found)) => {
                assert_eq!(found, expected, "decoding {tamper:?}");
                Stage::Decode
            }
            (Ok(()), Ok(variant)) => {
                assert_eq!(
                    &variant.to_bytes()[..],
                    bytes,
                    "{tamper:?} does not re-encode"
                );
                let checked = variant.check(&bob_session, &us);
                let built = InboundGroupSession::new(&variant.session_key);
                let key_changed = variant.session_key.to_bytes() != share.session_key.to_bytes();
                assert_eq!(
                    built.err(),
                    key_changed.then_some(GroupError::BadSignature),
                    "{tamper:?}"
                );
                let expected = expected_share_error(&share, &variant);
                match expected_check_error(&share, &variant) {
                    Some(error) => assert_eq!(checked, Err(error), "{tamper:?}"),
                    // The ids are checked by the endpoint, not by `check`.
                    None => {
                        assert_eq!(checked, Ok(()), "{tamper:?}");
                        assert!(
                            matches!(
                                expected,
                                RoomError::Group(_)
                                    | RoomError::ShareSenderMismatch
                                    | RoomError::IdentityConflict
                            ),
                            "{tamper:?}"
                        );
                    }
                }
                Stage::Processing
            }
            (expected, found) => panic!(
                "{tamper:?}: reference {expected:?}, decoder {:?}",
                found.err()
            ),
        },
    );

    let decoded = RoomKeyShare::from_bytes(&genuine).unwrap();
    decoded.check(&bob_session, &us).unwrap();
    InboundGroupSession::new(&decoded.session_key).unwrap();
}

#[test]
fn tampered_share_plaintext_through_endpoint() {
    // Each variant of the share's plaintext is encrypted properly by Alice
    // and delivered: the pairwise layer decrypts, the share layer must
    // reject, and the endpoint must not change. The messages are pre-key
    // messages of sessions Alice starts from Bob's fallback key (a new one
    // every 16 variants, so no chain runs far ahead): the endpoint stages a
    // new inbound session for each and must discard it.
    let RoomFixture {
        alice,
        mut alice_session,
        alice_group,
        mut bob,
        published,
    } = room_fixture();
    let alice_key = alice.identity_keys().curve25519;
    let bob_device = published.device_keys.check_self_signature().unwrap();
    let fallback = published.fallback_key.clone().unwrap();
    // A first share (of another room) binds Alice's device to her ids.
    let other =
        OutboundGroupSession::new_with_rng(ROOM_B, alice.identity_keys(), &mut rng(22)).unwrap();
    let first = alice_session
        .encrypt(&share_of(&other, alice.identity_keys(), bob.identity_keys()).to_bytes())
        .unwrap();
    bob.receive_device_message(ALICE.0, &alice_key, &first)
        .unwrap();
    assert_eq!(
        bob.peer(&alice_key),
        Some((
            alice.identity_keys(),
            Some(ALICE.0.to_owned()),
            Some(ALICE.1.to_owned())
        ))
    );
    let share = share_of(&alice_group, alice.identity_keys(), bob.identity_keys());
    let genuine = share.to_bytes().to_vec();
    let before = snapshot_endpoint(&bob);
    let mut carrier: Option<Session> = None;
    let mut sent = 0u32;

    sweep(
        "room-key share plaintext -> Endpoint::receive_device_message",
        &genuine,
        |tamper, bytes| {
            if sent.is_multiple_of(16) {
                carrier = Some(
                    alice
                        .create_outbound_session(&bob_device, &fallback)
                        .unwrap(),
                );
            }
            sent += 1;
            let message = carrier.as_mut().unwrap().encrypt(bytes).unwrap();
            let found = bob
                .receive_device_message(ALICE.0, &alice_key, &message)
                .expect_err("a tampered share was accepted");
            let stage = match (
                reference::room_key_share(bytes),
                RoomKeyShare::from_bytes(bytes),
            ) {
                (Err(expected), Err(_)) => {
                    assert_eq!(found, RoomError::Decode(expected), "{tamper:?}");
                    Stage::Decode
                }
                (Ok(()), Ok(variant)) => {
                    assert_eq!(found, expected_share_error(&share, &variant), "{tamper:?}");
                    Stage::Processing
                }
                (expected, decoded) => panic!(
                    "{tamper:?}: reference {expected:?}, decoder {:?}",
                    decoded.err()
                ),
            };
            assert_unchanged("endpoint", &before, &snapshot_endpoint(&bob), tamper);
            stage
        },
    );

    let mut last = alice
        .create_outbound_session(&bob_device, &fallback)
        .unwrap();
    let message = last.encrypt(&genuine).unwrap();
    assert_eq!(
        bob.receive_device_message(ALICE.0, &alice_key, &message)
            .unwrap()
            .added,
        KeyAdded::New
    );
}

#[test]
fn encrypted_share_message_into_endpoint() {
    let RoomFixture {
        alice,
        mut alice_session,
        alice_group,
        mut bob,
        ..
    } = room_fixture();
    let alice_keys = alice.identity_keys();
    let alice_key = alice_keys.curve25519;

    // 1. The pre-key message that carries the first share.
    let wire = alice_session
        .encrypt(&share_of(&alice_group, alice_keys, bob.identity_keys()).to_bytes())
        .unwrap();
    let genuine_pre_key = pre_key(&wire);
    let genuine = wire.to_bytes();
    let before = snapshot_endpoint(&bob);
    sweep(
        "pre-key message carrying a share -> Endpoint::receive_device_message",
        &genuine,
        |tamper, bytes| {
            let Some(message) = decode_device_message(bytes, &wire, tamper) else {
                return Stage::Decode;
            };
            let found = bob
                .receive_device_message(ALICE.0, &alice_key, &message)
                .expect_err("a tampered message was accepted");
            let expected = match &message {
                DeviceMessage::Normal(_) => RoomError::NoSession,
                DeviceMessage::PreKey(p) if p.identity_keys().curve25519 != alice_key => {
                    RoomError::SenderMismatch
                }
                // A flipped one-time key names none of the endpoint's keys.
                DeviceMessage::PreKey(p) => RoomError::Account(expected_creation_error(
                    genuine_pre_key,
                    &genuine,
                    p,
                    bytes,
                    &[genuine_pre_key.one_time_key()],
                )),
            };
            assert_eq!(found, expected, "{tamper:?}");
            assert_unchanged("endpoint", &before, &snapshot_endpoint(&bob), tamper);
            Stage::Processing
        },
    );
    assert_eq!(
        bob.receive_device_message(ALICE.0, &alice_key, &wire)
            .unwrap()
            .added,
        KeyAdded::New
    );

    // 2. Bob answers (a share of his own room), so Alice's next message is a
    //    normal one; it carries the share of another room of hers.
    let alice_device = alice
        .device_keys(ALICE.0, ALICE.1)
        .unwrap()
        .check_self_signature()
        .unwrap();
    let answer = bob
        .share_room_key(ROOM_B, std::slice::from_ref(&alice_device))
        .unwrap();
    assert_eq!(answer.messages.len(), 1);
    alice_session.decrypt(&answer.messages[0].message).unwrap();
    let live = Some((wire.normal().ratchet_key(), 1));
    let third = OutboundGroupSession::new_with_rng(ROOM_C, alice_keys, &mut rng(21)).unwrap();
    let normal = alice_session
        .encrypt(&share_of(&third, alice_keys, bob.identity_keys()).to_bytes())
        .unwrap();
    assert!(!normal.is_pre_key());
    let genuine = normal.to_bytes();
    let before = snapshot_endpoint(&bob);
    sweep(
        "normal message carrying a share -> Endpoint::receive_device_message",
        &genuine,
        |tamper, bytes| {
            let Some(message) = decode_device_message(bytes, &normal, tamper) else {
                return Stage::Decode;
            };
            let found = bob
                .receive_device_message(ALICE.0, &alice_key, &message)
                .expect_err("a tampered message was accepted");
            let expected = match &message {
                DeviceMessage::PreKey(p) if p.identity_keys().curve25519 != alice_key => {
                    RoomError::SenderMismatch
                }
                DeviceMessage::PreKey(_) => {
                    panic!("{tamper:?}: a kind flip names Alice's identity key")
                }
                DeviceMessage::Normal(n) => RoomError::Session(expected_session_error(live, n)),
            };
            assert_eq!(found, expected, "{tamper:?}");
            assert_unchanged("endpoint", &before, &snapshot_endpoint(&bob), tamper);
            Stage::Processing
        },
    );
    let received = bob
        .receive_device_message(ALICE.0, &alice_key, &normal)
        .unwrap();
    assert_eq!(
        (received.room_id.as_str(), received.added),
        (ROOM_C, KeyAdded::New)
    );
}

/// Bob's endpoint holds Alice's room key for `ROOM` (received over a real
/// pairwise session) and has decrypted two of her events, at index 0 and 1.
struct EventFixture {
    alice: Account,
    bob: Endpoint,
    envelopes: [EncryptedEvent; 2],
}

fn event_fixture() -> EventFixture {
    let RoomFixture {
        alice,
        mut alice_session,
        mut alice_group,
        mut bob,
        ..
    } = room_fixture();
    let wire = alice_session
        .encrypt(&share_of(&alice_group, alice.identity_keys(), bob.identity_keys()).to_bytes())
        .unwrap();
    bob.receive_device_message(ALICE.0, &alice.identity_keys().curve25519, &wire)
        .unwrap();
    let mut envelope = |body: &str| {
        let plaintext = serde_json::to_vec(&json!({
            "type": "m.room.message",
            "content": {"body": body, "msgtype": "m.text"},
        }))
        .unwrap();
        EncryptedEvent {
            algorithm: ROOM_ALGORITHM.to_owned(),
            sender_key: alice.identity_keys().curve25519,
            session_id: alice_group.session_id(),
            ciphertext: alice_group.encrypt(&plaintext).unwrap(),
        }
    };
    let envelopes = [envelope("first event"), envelope("tamper sweep event")];
    bob.decrypt_event(ROOM, "$event-zero:example.org", &envelopes[0])
        .unwrap();
    bob.decrypt_event(ROOM, EVENT_ID, &envelopes[1]).unwrap();
    EventFixture {
        alice,
        bob,
        envelopes,
    }
}

/// Which envelope field a byte of its JSON text belongs to (`None`: JSON
/// structure or a field name).
fn json_value_spans(json: &str) -> Vec<(&'static str, std::ops::Range<usize>)> {
    ["algorithm", "sender_key", "session_id", "ciphertext"]
        .into_iter()
        .map(|field| {
            let start = json.find(&format!("\"{field}\":\"")).unwrap() + field.len() + 4;
            let end = start + json[start..].find('"').unwrap();
            (field, start..end)
        })
        .collect()
}

fn changed_fields(a: &EncryptedEvent, b: &EncryptedEvent) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.algorithm != b.algorithm {
        out.push("algorithm");
    }
    if a.sender_key != b.sender_key {
        out.push("sender_key");
    }
    if a.session_id != b.session_id {
        out.push("session_id");
    }
    if a.ciphertext != b.ciphertext {
        out.push("ciphertext");
    }
    out
}

#[test]
fn event_envelope_json_into_endpoint() {
    let EventFixture {
        mut bob, envelopes, ..
    } = event_fixture();
    let envelope = &envelopes[1];
    let json = envelope.to_json();
    let spans = json_value_spans(&json);
    let before = snapshot_endpoint(&bob);

    sweep(
        "event envelope JSON -> EncryptedEvent::from_json + Endpoint::decrypt_event",
        json.as_bytes(),
        |tamper, bytes| {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return Stage::NotUtf8;
            };
            let region = match tamper {
                Tamper::Flip { byte, .. } => spans
                    .iter()
                    .find(|(_, range)| range.contains(&byte))
                    .map(|(field, _)| *field),
                _ => None,
            };
            let variant = match EncryptedEvent::from_json(text) {
                Err(e) => {
                    assert_eq!(e, RoomError::InvalidEnvelope, "{tamper:?}");
                    return Stage::Decode;
                }
                Ok(variant) => variant,
            };
            // Only a change inside a value can still parse, and it changes
            // exactly that field.
            let Some(field) = region else {
                panic!("{tamper:?} outside every value parsed: {text}");
            };
            assert_eq!(changed_fields(envelope, &variant), [field], "{tamper:?}");
            let expected = match field {
                "algorithm" => RoomError::UnsupportedAlgorithm,
                "sender_key" => RoomError::SenderKeyMismatch,
                "session_id" => RoomError::UnknownRoomKey,
                _ => RoomError::Group(expected_group_error(0, &variant.ciphertext)),
            };
            assert_eq!(
                bob.decrypt_event(ROOM, EVENT_ID, &variant).unwrap_err(),
                expected,
                "{tamper:?}"
            );
            assert_unchanged("endpoint", &before, &snapshot_endpoint(&bob), tamper);
            Stage::Processing
        },
    );

    let decrypted = bob.decrypt_event(ROOM, EVENT_ID, envelope).unwrap();
    assert_eq!(decrypted.content["body"], "tamper sweep event");
    assert_eq!(
        bob.decrypt_event(ROOM, "$another:example.org", envelope),
        Err(RoomError::Replay { index: 1 })
    );
}

#[test]
fn json_whitespace_is_the_only_accepted_non_canonical_envelope() {
    // JSON itself allows whitespace around tokens: such an envelope decodes
    // to the same value. This is the one family of "equal" variants.
    let EventFixture { envelopes, .. } = event_fixture();
    let json = envelopes[1].to_json();
    for padded in [
        format!("{json} "),
        format!("\n{json}\t"),
        json.replace(",", " , "),
    ] {
        assert_eq!(EncryptedEvent::from_json(&padded).unwrap(), envelopes[1]);
    }
}

#[test]
fn event_ciphertext_into_endpoint() {
    let EventFixture {
        mut bob, envelopes, ..
    } = event_fixture();
    let envelope = &envelopes[1];
    let genuine = envelope.ciphertext.to_bytes();
    let before = snapshot_endpoint(&bob);

    sweep(
        "event envelope ciphertext -> Endpoint::decrypt_event",
        &genuine,
        |tamper, bytes| {
            let Some(message) = decode_group_message(bytes, &envelope.ciphertext, tamper) else {
                return Stage::Decode;
            };
            let variant = EncryptedEvent {
                ciphertext: message,
                ..envelope.clone()
            };
            assert_eq!(
                bob.decrypt_event(ROOM, EVENT_ID, &variant).unwrap_err(),
                RoomError::Group(expected_group_error(0, &variant.ciphertext)),
                "{tamper:?}"
            );
            assert_unchanged("endpoint", &before, &snapshot_endpoint(&bob), tamper);
            Stage::Processing
        },
    );

    assert!(bob.decrypt_event(ROOM, EVENT_ID, envelope).is_ok());
}

#[test]
fn exported_key_into_import() {
    let EventFixture {
        alice,
        mut bob,
        envelopes,
    } = event_fixture();
    let session_id = envelopes[1].session_id;
    let (sender, export) = bob.export_room_key(ROOM, &session_id, 1).unwrap();
    assert_eq!(sender, alice.identity_keys());
    let genuine = export.to_bytes().to_vec();
    let message = &envelopes[1].ciphertext;
    let mut before = snapshot_endpoint(&bob);

    sweep(
        "exported session key -> import + decrypt, Endpoint::import_room_key",
        &genuine,
        |tamper, bytes| {
            let variant = match (
                reference::exported_key(bytes),
                ExportedSessionKey::from_bytes(bytes),
            ) {
                (Err(expected), Err(found)) => {
                    assert_eq!(found, expected, "decoding {tamper:?}");
                    return Stage::Decode;
                }
                (Ok(()), Ok(variant)) => variant,
                (expected, found) => panic!(
                    "{tamper:?}: reference {expected:?}, decoder {:?}",
                    found.err()
                ),
            };
            assert_eq!(
                &variant.to_bytes()[..],
                bytes,
                "{tamper:?} does not re-encode"
            );
            // Exports are unsigned: importing always works, but the session
            // cannot decrypt the genuine message.
            let mut imported = InboundGroupSession::import(&variant);
            let same_session = imported.session_id() == session_id;
            let expected = if message.message_index() < variant.first_index() {
                GroupError::UnknownIndex {
                    index: message.message_index(),
                    first_known: variant.first_index(),
                }
            } else if !same_session {
                GroupError::BadSignature
            } else {
                GroupError::Authentication
            };
            assert_eq!(
                imported.decrypt(ROOM, message).unwrap_err(),
                expected,
                "{tamper:?}"
            );
            // The store holds the genuine session, signed from index 0: an
            // unsigned copy of it can never change the signed ratchet (it
            // could only add an earlier unsigned prefix, and there is none
            // before 0), so a tampered copy changes nothing and the genuine
            // event still reads as authenticated; a flipped signing key
            // names another session, which is stored (unauthenticated) and
            // reads nothing genuine.
            let result = bob.import_room_key(ROOM, sender, &variant);
            if same_session {
                assert_eq!(result, Ok(KeyAdded::Unchanged), "{tamper:?}");
                assert_unchanged("endpoint", &before, &snapshot_endpoint(&bob), tamper);
                Stage::Processing
            } else {
                assert_eq!(result, Ok(KeyAdded::New), "{tamper:?}");
                let renamed = EncryptedEvent {
                    session_id: imported.session_id(),
                    ..envelopes[1].clone()
                };
                assert_eq!(
                    bob.decrypt_event(ROOM, EVENT_ID, &renamed).unwrap_err(),
                    RoomError::Group(GroupError::BadSignature)
                );
                bob = Endpoint::from_pickle(&before, &pickle_key()).unwrap();
                before = snapshot_endpoint(&bob);
                Stage::AcceptedAsOther
            }
        },
    );

    assert_eq!(
        bob.import_room_key(ROOM, sender, &export),
        Ok(KeyAdded::Unchanged)
    );
    let event = bob.decrypt_event(ROOM, EVENT_ID, &envelopes[1]).unwrap();
    assert!(event.authenticated, "imports never weaken a signed key");
}

// ---------------------------------------------------------------------------
// Pickles
// ---------------------------------------------------------------------------

/// Unpadded standard base64 (a plain table encoder: the sweep encodes
/// thousands of variants and this is much faster in a debug build than the
/// constant-time encoder; it is checked against base64ct below).
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let n = u32::from_be_bytes([0, group[0], group[1], group[2]]);
        for i in 0..=chunk.len() {
            out.push(char::from(TABLE[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// Sweeps the decoded bytes of a pickle, re-encoded, through `restore`.
fn sweep_pickle<T>(
    name: &str,
    pickle: &str,
    restore: impl Fn(&str) -> Result<T, PickleError>,
    repickle: impl Fn(&T) -> String,
) {
    let genuine = Base64Unpadded::decode_vec(pickle).unwrap();
    assert_eq!(base64(&genuine), pickle);
    assert_eq!(
        base64(&genuine[1..]),
        Base64Unpadded::encode_string(&genuine[1..])
    );
    assert_eq!(
        base64(&genuine[2..]),
        Base64Unpadded::encode_string(&genuine[2..])
    );
    sweep(name, &genuine, |tamper, bytes| {
        let text = base64(bytes);
        let found = restore(&text).err().expect("a tampered pickle restored");
        assert_eq!(found, reference::tampered_pickle(bytes), "{tamper:?}");
        Stage::Decode
    });
    let restored = restore(pickle).unwrap();
    assert_eq!(
        repickle(&restored),
        pickle,
        "{name}: genuine pickle round trip"
    );
}

#[test]
fn pickles() {
    let key = pickle_key();

    // Account: one-time keys and a fallback key.
    let Pairwise {
        mut bob,
        alice_session,
        m1,
        ..
    } = pairwise();
    bob.rotate_fallback_key_with_rng(1_000, &mut rng(8));
    let account = snapshot_account(&bob);
    sweep_pickle(
        "Account pickle",
        &account,
        |t| Account::from_pickle(t, &key),
        snapshot_account,
    );

    // Session: Bob's, created from m1 (so m0's key is stored as skipped),
    // and Alice's, still in its pre-key phase.
    let bob_session = bob
        .create_inbound_session_with_rng(pre_key(&m1), &mut rng(5))
        .unwrap()
        .session;
    for (name, session) in [
        ("Session pickle (responder, a skipped key)", &bob_session),
        ("Session pickle (initiator, pre-key phase)", &alice_session),
    ] {
        let text = snapshot_session(session);
        let owner = session.local_identity();
        sweep_pickle(
            name,
            &text,
            |t| Session::from_pickle(t, &key, &owner),
            snapshot_session,
        );
        // Bound to its account: under the peer's identity it does not open.
        assert_eq!(
            Session::from_pickle(&text, &key, &session.peer_identity()).unwrap_err(),
            PickleError::Decryption
        );
    }

    // Group sessions.
    let Group {
        outbound, inbound, ..
    } = group();
    let snapshot_outbound =
        |s: &OutboundGroupSession| s.pickle_with_rng(&pickle_key(), &mut rng(SNAPSHOT_SEED));
    let text = snapshot_outbound(&outbound);
    sweep_pickle(
        "OutboundGroupSession pickle",
        &text,
        |t| OutboundGroupSession::from_pickle(t, &key),
        snapshot_outbound,
    );
    let text = snapshot_inbound(&inbound);
    sweep_pickle(
        "InboundGroupSession pickle",
        &text,
        |t| InboundGroupSession::from_pickle(t, &key),
        snapshot_inbound,
    );

    // Endpoint: one-time and fallback keys, a peer (with its ids) and its
    // session, a stored room key with its sender's ids, an outbound room
    // with a confirmed recipient and the key it was offered, a discarded
    // room with its reason, and the policy. (The sweep's cost grows with
    // the square of the pickle's length, and every byte of the envelope is
    // treated alike, so a fuller endpoint would add time, not coverage.)
    let RoomFixture {
        alice,
        mut alice_session,
        alice_group,
        mut bob,
        ..
    } = room_fixture();
    let wire = alice_session
        .encrypt(&share_of(&alice_group, alice.identity_keys(), bob.identity_keys()).to_bytes())
        .unwrap();
    bob.receive_device_message(ALICE.0, &alice.identity_keys().curve25519, &wire)
        .unwrap();
    let alice_device = alice
        .device_keys(ALICE.0, ALICE.1)
        .unwrap()
        .check_self_signature()
        .unwrap();
    let outcome = bob
        .share_room_key(ROOM_B, std::slice::from_ref(&alice_device))
        .unwrap();
    assert_eq!(bob.mark_room_key_sent(&outcome), 1);
    bob.share_room_key(ROOM_C, &[]).unwrap();
    assert!(bob.rotate_room_key(ROOM_C));
    let text = snapshot_endpoint(&bob);
    sweep_pickle(
        "Endpoint pickle",
        &text,
        |t| Endpoint::from_pickle(t, &key),
        snapshot_endpoint,
    );
}

//! Fuzz entry points for the room layer: room-key shares, encrypted event
//! envelopes with a fixed inbound key store, and an [`Endpoint`] receiving
//! pairwise messages.

use std::sync::OnceLock;

use rand::rngs::ChaCha20Rng;
use roomseal::{
    Account, Curve25519PublicKey, DeviceMessage, EncryptedEvent, Endpoint, GroupSessionId,
    IdentityKeys, InboundGroupSession, InboundKeyStore, KeyAdded, OutboundGroupSession,
    ROOM_ALGORITHM, RoomError, RoomKeyShare,
};

use super::contents::forge_outbound;
use super::{OTHER_ROOM, PICKLE_SEED, ROOM, VERSION, pick, pickle_key, rng};

/// The event id the fuzzed envelope is decrypted under.
const FUZZ_EVENT_ID: &str = "$fuzz:example.org";
/// The event id of the genuine envelope decrypted after it.
const CHECK_EVENT_ID: &str = "$check:example.org";

const ALICE_USER: &str = "@alice:example.org";
const ALICE_DEVICE: &str = "ALICEDEVICE";
const BOB_USER: &str = "@bob:example.org";
const BOB_DEVICE: &str = "BOBDEVICE";
const CAROL_USER: &str = "@carol:example.org";
const CAROL_DEVICE: &str = "CAROLDEVICE";
/// A user the server may claim sent a message that Alice's device sent.
const MALLORY_USER: &str = "@mallory:example.org";

/// Generators of the room fixtures. Any change regenerates every genuine
/// message, so the committed seeds must be regenerated with it.
const ALICE_SEED: u64 = 0xA11CE2;
const BOB_SEED: u64 = 0xB0B2;
const CAROL_SEED: u64 = 0xCA2012;
const ENDPOINT_SEED: u64 = 0xE4D;
const STORE_SEED: u64 = 0x5702E;
/// Message-salt generators of the endpoint and store fixtures.
const ENDPOINT_SALT_SEED: u64 = 0xE5A17;
const STORE_SALT_SEED: u64 = 0x55A17;

/// Decodes `data` as a [`RoomKeyShare`]. Whatever decodes must re-encode to
/// the input, and an inbound session built from its key must be refused
/// unless the key is one the fixtures really signed.
pub fn decode_room_key_share(data: &[u8]) {
    let Ok(share) = RoomKeyShare::from_bytes(data) else {
        return;
    };
    assert!(
        *share.to_bytes() == *data,
        "RoomKeyShare::from_bytes accepted a non-canonical encoding of {share:?}"
    );
    let key = share.session_key.to_bytes();
    let genuine = endpoint_fixture().share_keys.iter().any(|k| **k == *key)
        || super::group::group_fixture()
            .session_keys
            .iter()
            .any(|k| **k == *key);
    match InboundGroupSession::new(&share.session_key) {
        Ok(session) => {
            assert!(genuine, "a share whose key was never signed was accepted");
            assert_eq!(session.session_id(), share.session_id());
        }
        Err(error) => assert!(!genuine, "a genuine share's key was rejected: {error}"),
    }
}

/// Parses UTF-8 `data` as an [`EncryptedEvent`] (JSON). Whatever parses
/// must survive `to_json` and `from_json` unchanged. It is then decrypted
/// in [`ROOM`] with a fixed [`InboundKeyStore`] (rebuilt for each input).
///
/// A decrypted envelope must be one the fixture sent, with its event; a
/// genuine readable envelope must decrypt; a failure must leave the store's
/// sessions unchanged. Afterwards the store must still decrypt a genuine
/// envelope under another event id, unless the fuzzed envelope used the
/// same message index of the same session, which must then be a replay.
pub fn decode_event_envelope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = EncryptedEvent::from_json(text) else {
        return;
    };
    assert_eq!(
        EncryptedEvent::from_json(&event.to_json()).as_ref(),
        Ok(&event),
        "envelope JSON does not round-trip"
    );
    let f = store_fixture();
    let mut store = f.store();
    let before = f.state(&store);
    let readable = f.readable.iter().find(|g| g.event == event);
    let result = store.decrypt(ROOM, FUZZ_EVENT_ID, &event);
    match &result {
        Ok(decrypted) => {
            let genuine = readable
                .unwrap_or_else(|| panic!("an envelope that was never sent decrypted: {event:?}"));
            assert_eq!(decrypted.event_type, genuine.event_type);
            assert_eq!(decrypted.content.to_string(), genuine.content);
            assert_eq!(decrypted.session_id, event.session_id);
            assert_eq!(decrypted.message_index, genuine.index);
            assert_eq!(decrypted.sender, genuine.sender);
            assert_eq!(decrypted.sender_user_id.as_deref(), genuine.sender_user_id);
            assert_eq!(
                decrypted.sender_device_id.as_deref(),
                genuine.sender_device_id
            );
            assert_eq!(decrypted.authenticated, genuine.authenticated);
        }
        Err(error) => {
            assert!(
                readable.is_none(),
                "a genuine envelope was rejected: {error}"
            );
            if let Some((_, expected)) = f.unreadable.iter().find(|(e, _)| *e == event) {
                assert_eq!(error, expected, "a genuine unreadable envelope");
            }
        }
    }
    assert_eq!(
        f.state(&store),
        before,
        "decrypting an envelope ({result:?}) changed the store's sessions"
    );

    let check = &f.readable[pick(data, f.readable.len())];
    let again = store.decrypt(ROOM, CHECK_EVENT_ID, &check.event);
    let same_slot = result
        .as_ref()
        .is_ok_and(|d| d.session_id == check.event.session_id && d.message_index == check.index);
    if same_slot {
        assert_eq!(
            again,
            Err(RoomError::Replay { index: check.index }),
            "a message index reused under another event id"
        );
    } else {
        let decrypted = again
            .unwrap_or_else(|e| panic!("after {result:?}, a genuine envelope is rejected: {e}"));
        assert_eq!(decrypted.content.to_string(), check.content);
    }
}

/// Decodes `data` as a binary [`DeviceMessage`] and gives it to the fixed
/// endpoint (Bob's, restored from its pickle for each input): first as
/// delivered by the server from another user (Mallory) with Alice's key,
/// then as coming from the fixture's peer (Alice, user and key), then from
/// a sender key made of the input's last 32 bytes.
///
/// From Alice: a message that is accepted must be one Alice really sent and
/// Bob has not read, and give the room key it carried, attributed to
/// Alice's user and device (which must then decrypt that room's event); a
/// replay of it must fail without changing the endpoint. A genuine unread
/// message must be accepted, a genuine message with a bad payload rejected
/// with its error, and every failure must leave the endpoint exactly as it
/// was (same pickle with the same nonce generator). Delivered as from
/// another user, even a genuine message must fail
/// ([`RoomError::ShareSenderMismatch`]) and change nothing. From any other
/// sender key: the message must fail and change nothing.
pub fn endpoint_receive(data: &[u8]) {
    let Ok(message) = DeviceMessage::from_bytes(data) else {
        return;
    };
    let f = endpoint_fixture();
    let alice_key = f.alice.curve25519;
    let mut bob = restore_endpoint(&f.pickle);
    let accepted = f.accepted.iter().find(|a| a.message == message);
    let spoofed = bob.receive_device_message(MALLORY_USER, &alice_key, &message);
    match &spoofed {
        Ok(received) => panic!("a message was attributed to another user: {received:?}"),
        Err(error) => {
            if accepted.is_some() {
                assert_eq!(error, &RoomError::ShareSenderMismatch);
            }
        }
    }
    assert_eq!(
        endpoint_state(&bob),
        f.pickle,
        "a message delivered as from another user ({spoofed:?}) changed the endpoint"
    );
    let result = bob.receive_device_message(ALICE_USER, &alice_key, &message);
    match &result {
        Ok(received) => {
            let accepted = accepted.unwrap_or_else(|| {
                panic!(
                    "a device message Alice never sent was accepted: {message:?} gave {received:?}"
                )
            });
            assert_eq!(received.room_id, accepted.room_id);
            assert_eq!(received.session_id, accepted.session_id);
            assert_eq!(received.sender, f.alice);
            assert_eq!(received.sender_user_id, ALICE_USER);
            assert_eq!(received.sender_device_id, ALICE_DEVICE);
            assert_eq!(received.first_index, accepted.first_index);
            assert_eq!(received.added, accepted.added);
            assert!(
                received.evicted.is_empty(),
                "a key was evicted far below the bounds"
            );
            let event = bob
                .decrypt_event(accepted.room_id, CHECK_EVENT_ID, &accepted.event)
                .unwrap_or_else(|e| panic!("the received room key does not decrypt: {e}"));
            assert_eq!(event.event_type, "m.room.message");
            assert_eq!(event.sender, f.alice);
            assert_eq!(event.sender_user_id.as_deref(), Some(ALICE_USER));
            assert_eq!(event.sender_device_id.as_deref(), Some(ALICE_DEVICE));
            assert!(event.authenticated);
            let after = endpoint_state(&bob);
            let replay = bob.receive_device_message(ALICE_USER, &alice_key, &message);
            assert!(replay.is_err(), "a replayed device message was accepted");
            assert_eq!(
                endpoint_state(&bob),
                after,
                "a rejected replay changed the endpoint"
            );
        }
        Err(error) => {
            assert!(
                accepted.is_none(),
                "a genuine unread device message was rejected: {error}"
            );
            if let Some((_, expected)) = f.rejected.iter().find(|(m, _)| *m == message) {
                assert_eq!(error, expected, "a genuine message with a bad payload");
            }
            assert_eq!(
                endpoint_state(&bob),
                f.pickle,
                "a failed receive ({error}) changed the endpoint"
            );
        }
    }

    let sender = sender_from(data);
    if sender == alice_key {
        return;
    }
    if result.is_ok() {
        bob = restore_endpoint(&f.pickle);
    }
    let result = bob.receive_device_message(ALICE_USER, &sender, &message);
    assert!(
        result.is_err(),
        "a message was accepted from a sender key with no session: {result:?}"
    );
    assert_eq!(
        endpoint_state(&bob),
        f.pickle,
        "a message from an unknown sender key changed the endpoint"
    );
}

/// The input's last 32 bytes (zero-padded in front) as an X25519 key.
fn sender_from(data: &[u8]) -> Curve25519PublicKey {
    let tail = &data[data.len().saturating_sub(32)..];
    let mut key = [0u8; 32];
    key[32 - tail.len()..].copy_from_slice(tail);
    Curve25519PublicKey::from_bytes(key)
}

/// An event envelope a group session really encrypted, the group message
/// holding `{"type": "m.room.message", "content": content}`, its salt drawn
/// from `salts`.
fn event(
    session: &mut OutboundGroupSession,
    sender: Curve25519PublicKey,
    content: &str,
    salts: &mut ChaCha20Rng,
) -> EncryptedEvent {
    let plaintext = format!(r#"{{"type":"m.room.message","content":{content}}}"#);
    raw_event(session, sender, plaintext.as_bytes(), salts)
}

fn raw_event(
    session: &mut OutboundGroupSession,
    sender: Curve25519PublicKey,
    plaintext: &[u8],
    salts: &mut ChaCha20Rng,
) -> EncryptedEvent {
    EncryptedEvent {
        algorithm: ROOM_ALGORITHM.to_owned(),
        sender_key: sender,
        session_id: session.session_id(),
        ciphertext: session.encrypt_with_rng(plaintext, salts).expect("encrypt"),
    }
}

/// A room message the store can read, and what it must decrypt to.
struct Readable {
    event: EncryptedEvent,
    event_type: &'static str,
    /// The content as `serde_json::Value` displays it (compact, keys sorted).
    content: String,
    index: u32,
    sender: IdentityKeys,
    /// The ids a signed share bound (none for an imported key).
    sender_user_id: Option<&'static str>,
    sender_device_id: Option<&'static str>,
    authenticated: bool,
}

/// The inbound key store fixture, built once per process,
/// deterministically: Alice's session in [`ROOM`] from its signed key at
/// index 0, shared by her device (authenticated, attributed to her user and
/// device), and Carol's imported from an export at index 1 (not
/// authenticated, no ids). The store itself has no pickle, so it is rebuilt
/// from the two sessions' pickles for each input.
struct StoreFixture {
    alice: IdentityKeys,
    carol: IdentityKeys,
    alice_session: String,
    carol_session: String,
    session_ids: [GroupSessionId; 2],
    readable: Vec<Readable>,
    /// Envelopes really sent that the fresh store rejects, with the error.
    unreadable: Vec<(EncryptedEvent, RoomError)>,
}

impl StoreFixture {
    fn store(&self) -> InboundKeyStore {
        let key = pickle_key();
        let mut store = InboundKeyStore::new();
        let restored = |pickle| {
            InboundGroupSession::from_pickle(pickle, &key)
                .expect("the fixture's inbound pickles restore")
        };
        let added = store
            .add_shared(
                ROOM,
                restored(&self.alice_session),
                ALICE_USER,
                ALICE_DEVICE,
            )
            .expect("Alice's signed key");
        assert_eq!(added, KeyAdded::New);
        let added = store
            .add_import(ROOM, self.carol, restored(&self.carol_session))
            .expect("Carol's imported key");
        assert_eq!(added, KeyAdded::New);
        // The signed key is attributed to the creator it names; the import
        // to the sender it claims.
        let mut senders: Vec<IdentityKeys> = store.keys().iter().map(|k| k.sender).collect();
        senders.sort();
        let mut expected = vec![self.alice, self.carol];
        expected.sort();
        assert_eq!(senders, expected);
        store
    }

    /// What a decryption must not change: each session's first known and
    /// first authenticated index, its export there, and its sender with
    /// the ids bound to it.
    fn state(&self, store: &InboundKeyStore) -> Vec<StoreState> {
        assert_eq!(store.len(), 2, "the store lost or gained a session");
        let keys = store.keys();
        self.session_ids
            .iter()
            .map(|id| {
                let stored = keys
                    .iter()
                    .find(|k| k.room_id == ROOM && k.session_id == *id)
                    .expect("the session is stored");
                let first = stored.first_index;
                assert_eq!(store.first_known_index(ROOM, id), Some(first));
                let (sender, export) = store.export(ROOM, id, first).expect("exportable");
                assert_eq!(sender, stored.sender);
                StoreState {
                    first_index: first,
                    authenticated_from: stored.authenticated_from,
                    sender,
                    sender_user_id: stored.sender_user_id.clone(),
                    sender_device_id: stored.sender_device_id.clone(),
                    export: export.to_bytes().to_vec(),
                }
            })
            .collect()
    }
}

/// One stored key as [`StoreFixture::state`] sees it.
#[derive(Debug, PartialEq, Eq)]
struct StoreState {
    first_index: u32,
    authenticated_from: Option<u32>,
    sender: IdentityKeys,
    sender_user_id: Option<String>,
    sender_device_id: Option<String>,
    export: Vec<u8>,
}

fn store_fixture() -> &'static StoreFixture {
    static FIXTURE: OnceLock<StoreFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_store_fixture)
}

fn build_store_fixture() -> StoreFixture {
    let key = pickle_key();
    let r = &mut rng(STORE_SEED);
    let salts = &mut rng(STORE_SALT_SEED);
    let alice = Account::new_with_rng(&mut rng(ALICE_SEED)).identity_keys();
    let carol = Account::new_with_rng(&mut rng(CAROL_SEED)).identity_keys();
    let mut ga = OutboundGroupSession::new_with_rng(ROOM, alice, r).expect("room id");
    let mut gc = OutboundGroupSession::new_with_rng(ROOM, carol, r).expect("room id");
    let mut unknown = OutboundGroupSession::new_with_rng(ROOM, alice, r).expect("room id");
    let ga_pickle = ga.pickle_with_rng(&key, &mut rng(PICKLE_SEED));
    let alice_session = InboundGroupSession::new(&ga.session_key()).expect("own key");

    let mut readable = Vec::new();
    let mut unreadable = Vec::new();
    // Alice's key came signed (her ids bound); Carol's was imported.
    let mut read = |event, content: &str, index, sender| {
        let shared = sender == alice;
        readable.push(Readable {
            event,
            event_type: "m.room.message",
            content: content.to_owned(),
            index,
            sender,
            sender_user_id: shared.then_some(ALICE_USER),
            sender_device_id: shared.then_some(ALICE_DEVICE),
            authenticated: shared,
        });
    };
    let hello = r#"{"body":"hello","msgtype":"m.text"}"#;
    let a0 = event(&mut ga, alice.curve25519, hello, salts);
    read(a0.clone(), hello, 0, alice);
    let nested = r#"{"body":"é ✓","m.relates_to":{"event_id":"$a0","rel_type":"m.thread"}}"#;
    read(
        event(&mut ga, alice.curve25519, nested, salts),
        nested,
        1,
        alice,
    );
    let not_json = raw_event(&mut ga, alice.curve25519, b"not an event", salts);
    unreadable.push((not_json, RoomError::InvalidEvent));
    read(
        event(&mut ga, alice.curve25519, "null", salts),
        "null",
        3,
        alice,
    );

    // Carol's session is imported from an export at index 1: message 0
    // predates it.
    let c0 = event(&mut gc, carol.curve25519, r#"{"body":"c0"}"#, salts);
    let carol_session = InboundGroupSession::import(
        &InboundGroupSession::new(&gc.session_key())
            .expect("own key")
            .export_at_first_known_index(),
    );
    unreadable.push((
        c0,
        RoomError::Group(roomseal::GroupError::UnknownIndex {
            index: 0,
            first_known: 1,
        }),
    ));
    for (index, content) in [(1, r#"{"body":"c1"}"#), (2, r#"{"body":"c2"}"#)] {
        read(
            event(&mut gc, carol.curve25519, content, salts),
            content,
            index,
            carol,
        );
    }
    unreadable.push((
        event(&mut unknown, alice.curve25519, hello, salts),
        RoomError::UnknownRoomKey,
    ));
    let mut wrong_sender = a0.clone();
    wrong_sender.sender_key = carol.curve25519;
    unreadable.push((wrong_sender, RoomError::SenderKeyMismatch));
    let mut wrong_algorithm = a0.clone();
    wrong_algorithm.algorithm = "m.megolm.v1.aes-sha2".to_owned();
    unreadable.push((wrong_algorithm, RoomError::UnsupportedAlgorithm));
    let mut moved = forge_outbound(&ga_pickle, OTHER_ROOM, 0);
    unreadable.push((
        event(&mut moved, alice.curve25519, hello, salts),
        RoomError::Group(roomseal::GroupError::Authentication),
    ));

    StoreFixture {
        alice,
        carol,
        alice_session: alice_session.pickle_with_rng(&key, &mut rng(PICKLE_SEED)),
        carol_session: carol_session.pickle_with_rng(&key, &mut rng(PICKLE_SEED)),
        session_ids: [ga.session_id(), gc.session_id()],
        readable,
        unreadable,
    }
}

/// A pairwise message from Alice that Bob's endpoint accepts, and what it
/// must report.
struct Accepted {
    message: DeviceMessage,
    room_id: &'static str,
    session_id: GroupSessionId,
    first_index: u32,
    added: KeyAdded,
    /// An event of that group session at the key's first index.
    event: EncryptedEvent,
}

/// The endpoint fixture, built once per process.
///
/// Bob's account is deterministic (seeded, with three published one-time
/// keys and a fallback key) and wrapped in an [`Endpoint`]. Alice is a plain
/// [`Account`] with deterministic sessions to Bob (and seeded message
/// salts), so every message she sends is the same in every process and the
/// committed seeds stay genuine. Bob reads Alice's first message a0 (a
/// room-key share), shares his own room key back (naming Alice's device, so
/// her ids are bound) and confirms it sent; both steps use the operating
/// system's generator inside `Endpoint`, so Bob's pickle differs between
/// processes (only its own sending ratchet key, salts and room session),
/// which does not affect reading Alice's messages.
pub(crate) struct EndpointFixture {
    /// Bob's endpoint, pickled with `PICKLE_SEED`.
    pub(crate) pickle: String,
    alice: IdentityKeys,
    /// Alice's unread messages Bob accepts.
    accepted: Vec<Accepted>,
    /// Alice's unread messages Bob must reject, with the error.
    rejected: Vec<(DeviceMessage, RoomError)>,
    /// a0, already read.
    read: DeviceMessage,
    /// The share payloads Alice encrypted, named.
    shares: Vec<(&'static str, Vec<u8>)>,
    /// Every session key inside those shares (all really signed).
    share_keys: Vec<Vec<u8>>,
}

pub(crate) fn endpoint_fixture() -> &'static EndpointFixture {
    static FIXTURE: OnceLock<EndpointFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_endpoint_fixture)
}

/// A share payload of `g`'s current key from `sender` (with Alice's device
/// ids unless `ids` says otherwise) to `recipient`.
fn share_payload(
    g: &OutboundGroupSession,
    room_id: &str,
    ids: (&str, &str),
    sender: IdentityKeys,
    recipient: IdentityKeys,
) -> Vec<u8> {
    RoomKeyShare {
        room_id: room_id.to_owned(),
        sender_user_id: ids.0.to_owned(),
        sender_device_id: ids.1.to_owned(),
        session_key: g.session_key(),
        sender,
        recipient,
    }
    .to_bytes()
    .to_vec()
}

fn build_endpoint_fixture() -> EndpointFixture {
    let r = &mut rng(ENDPOINT_SEED);
    let salts = &mut rng(ENDPOINT_SALT_SEED);
    let mut bob_account = Account::new_with_rng(&mut rng(BOB_SEED));
    bob_account.generate_one_time_keys_with_rng(3, r);
    bob_account.rotate_fallback_key_with_rng(0, r);
    let one_time_keys = bob_account.one_time_keys();
    let fallback = bob_account.fallback_key().expect("a fallback key");
    bob_account
        .mark_keys_as_published(&[&one_time_keys[..], std::slice::from_ref(&fallback)].concat());
    let mut bob = Endpoint::from_account(BOB_USER, BOB_DEVICE, bob_account).expect("valid ids");
    let bob_device = bob
        .device_keys()
        .check_self_signature()
        .expect("Bob's bundle verifies");
    let bob_ids = bob.identity_keys();

    let alice_account = Account::new_with_rng(&mut rng(ALICE_SEED));
    let alice = alice_account.identity_keys();
    let alice_device = alice_account
        .device_keys(ALICE_USER, ALICE_DEVICE)
        .and_then(|k| k.check_self_signature())
        .expect("Alice's bundle verifies");
    let carol = Account::new_with_rng(&mut rng(CAROL_SEED)).identity_keys();
    let mut outbound = |key| {
        alice_account
            .create_outbound_session_with_rng(&bob_device, key, r)
            .expect("outbound session")
    };
    let mut s1 = outbound(&one_time_keys[0]);
    let mut s2 = outbound(&one_time_keys[1]);
    let mut s3 = outbound(&fallback);

    let mut g1 = OutboundGroupSession::new_with_rng(ROOM, alice, r).expect("room id");
    let g1_pickle = g1.pickle_with_rng(&pickle_key(), &mut rng(PICKLE_SEED));
    let mut g2 = OutboundGroupSession::new_with_rng(ROOM, alice, r).expect("room id");
    let mut g3 = OutboundGroupSession::new_with_rng(OTHER_ROOM, alice, r).expect("room id");
    // A session Carol created, which Alice then shares as if it were hers.
    let carols = OutboundGroupSession::new_with_rng(ROOM, carol, r).expect("room id");
    let alice_ids = (ALICE_USER, ALICE_DEVICE);
    let mut share_keys = Vec::new();
    let mut share = |g: &OutboundGroupSession, sender, recipient| {
        share_keys.push(g.session_key().to_bytes().to_vec());
        share_payload(g, g.room_id(), alice_ids, sender, recipient)
    };
    let send = |session: &mut roomseal::Session, payload: &[u8], salts: &mut ChaCha20Rng| {
        session.encrypt_with_rng(payload, salts).expect("encrypt")
    };

    // a0: g1's key; Bob reads it in the fixture, then shares his own key
    // with Alice's device (naming it) and confirms the message went out.
    let a0 = send(&mut s1, &share(&g1, alice, bob_ids), salts);
    bob.receive_device_message(ALICE_USER, &alice.curve25519, &a0)
        .expect("Bob reads a0");
    let outcome = bob
        .share_room_key(ROOM, &[alice_device])
        .expect("Bob shares his room key");
    assert_eq!(outcome.messages.len(), 1, "Bob's share reaches Alice");
    assert_eq!(bob.mark_room_key_sent(&outcome), 1);
    assert_eq!(
        bob.peer(&alice.curve25519),
        Some((alice, Some(ALICE_USER.into()), Some(ALICE_DEVICE.into()))),
        "Alice's device is bound to her ids"
    );

    let mut accepted = Vec::new();
    let mut shares = Vec::new();
    // a1: g2's key at 0 (a new session on the existing pairwise session).
    let payload = share(&g2, alice, bob_ids);
    shares.push(("share_new.bin", payload.clone()));
    accepted.push(Accepted {
        message: send(&mut s1, &payload, salts),
        room_id: ROOM,
        session_id: g2.session_id(),
        first_index: 0,
        added: KeyAdded::New,
        event: event(&mut g2, alice.curve25519, r#"{"body":"g2 0"}"#, salts),
    });
    // a2: g1's key again at index 1: Bob keeps his better copy.
    let g1_event = event(&mut g1, alice.curve25519, r#"{"body":"g1 0"}"#, salts);
    let payload = share(&g1, alice, bob_ids);
    shares.push(("share_known.bin", payload.clone()));
    accepted.push(Accepted {
        message: send(&mut s1, &payload, salts),
        room_id: ROOM,
        session_id: g1.session_id(),
        first_index: 1,
        added: KeyAdded::Unchanged,
        event: g1_event,
    });
    // x0: g3's key (another room) on a new session from a one-time key.
    let payload = share(&g3, alice, bob_ids);
    shares.push(("share_other_room.bin", payload.clone()));
    accepted.push(Accepted {
        message: send(&mut s2, &payload, salts),
        room_id: OTHER_ROOM,
        session_id: g3.session_id(),
        first_index: 0,
        added: KeyAdded::New,
        event: event(&mut g3, alice.curve25519, r#"{"body":"g3 0"}"#, salts),
    });
    // f0: g2's key at 1 on a new session from the fallback key.
    let payload = share(&g2, alice, bob_ids);
    accepted.push(Accepted {
        message: send(&mut s3, &payload, salts),
        room_id: ROOM,
        session_id: g2.session_id(),
        first_index: 1,
        added: KeyAdded::New,
        event: event(&mut g2, alice.curve25519, r#"{"body":"g2 1"}"#, salts),
    });

    // Genuine pairwise messages whose payload Bob must reject.
    let mut rejected = Vec::new();
    let payload = share(&g2, alice, alice);
    shares.push(("share_not_for_us.bin", payload.clone()));
    rejected.push((send(&mut s1, &payload, salts), RoomError::ShareNotForUs));
    let payload = share(&g2, carol, bob_ids);
    shares.push(("share_wrong_sender.bin", payload.clone()));
    rejected.push((
        send(&mut s1, &payload, salts),
        RoomError::ShareSenderMismatch,
    ));
    let mut payload = share(&g2, alice, bob_ids);
    let last = payload.len() - 1;
    payload[last] ^= 0x01;
    shares.push(("share_bad_signature.bin", payload.clone()));
    rejected.push((
        send(&mut s1, &payload, salts),
        RoomError::Group(roomseal::GroupError::BadSignature),
    ));
    let conflicting = forge_outbound(&g1_pickle, ROOM, 0xff);
    let payload = share(&conflicting, alice, bob_ids);
    shares.push(("share_conflicting.bin", payload.clone()));
    rejected.push((
        send(&mut s1, &payload, salts),
        RoomError::ConflictingRoomKey,
    ));
    let payload = share(&carols, alice, bob_ids);
    shares.push(("share_reshared.bin", payload.clone()));
    rejected.push((
        send(&mut s1, &payload, salts),
        RoomError::ShareSenderMismatch,
    ));
    // g3's key (for the other room) in a share naming this room.
    share_keys.push(g3.session_key().to_bytes().to_vec());
    let payload = share_payload(&g3, ROOM, alice_ids, alice, bob_ids);
    shares.push(("share_room_mismatch.bin", payload.clone()));
    rejected.push((send(&mut s1, &payload, salts), RoomError::ShareRoomMismatch));
    // Alice's device claiming another user than the server delivered from.
    share_keys.push(g2.session_key().to_bytes().to_vec());
    let payload = share_payload(&g2, ROOM, (MALLORY_USER, ALICE_DEVICE), alice, bob_ids);
    shares.push(("share_wrong_user.bin", payload.clone()));
    rejected.push((
        send(&mut s1, &payload, salts),
        RoomError::ShareSenderMismatch,
    ));
    // ...or another device id than the one her bundle bound.
    let payload = share_payload(&g2, ROOM, (ALICE_USER, CAROL_DEVICE), alice, bob_ids);
    shares.push(("share_wrong_device.bin", payload.clone()));
    rejected.push((send(&mut s1, &payload, salts), RoomError::IdentityConflict));
    // Carol's ids on Alice's keys.
    let payload = share_payload(&g2, ROOM, (CAROL_USER, CAROL_DEVICE), alice, bob_ids);
    shares.push(("share_other_ids.bin", payload.clone()));
    rejected.push((
        send(&mut s1, &payload, salts),
        RoomError::ShareSenderMismatch,
    ));
    let garbage = b"not a room key share";
    rejected.push((
        send(&mut s1, garbage, salts),
        RoomError::Decode(RoomKeyShare::from_bytes(garbage).expect_err("not a share")),
    ));

    EndpointFixture {
        pickle: endpoint_state(&bob),
        alice,
        accepted,
        rejected,
        read: a0,
        shares,
        share_keys,
    }
}

fn restore_endpoint(pickle: &str) -> Endpoint {
    Endpoint::from_pickle(pickle, &pickle_key()).expect("the fixture's endpoint pickle restores")
}

fn endpoint_state(endpoint: &Endpoint) -> String {
    endpoint.pickle_with_rng(&pickle_key(), &mut rng(PICKLE_SEED))
}

/// The room targets' seeds.
pub(crate) fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let e = endpoint_fixture();
    let s = store_fixture();
    let mut seeds: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        seeds.push((target, name.to_owned(), bytes));
    };

    const SHARE: &str = "decode_room_key_share";
    for (name, bytes) in &e.shares {
        add(SHARE, name, bytes.clone());
    }
    // Layout (PROTOCOL.md 12.1): version, payload type, then three short
    // (BE16-length-prefixed) ids: room, sender user, sender device.
    let genuine = &e.shares[0].1;
    let with_id = |field: usize, id: &[u8]| {
        let mut at = 2;
        for _ in 0..field {
            at += 2 + usize::from(u16::from_be_bytes([genuine[at], genuine[at + 1]]));
        }
        let old_len = usize::from(u16::from_be_bytes([genuine[at], genuine[at + 1]]));
        let len = u16::try_from(id.len()).expect("short").to_be_bytes();
        [&genuine[..at], &len[..], id, &genuine[at + 2 + old_len..]].concat()
    };
    let (room, user, device) = (0, 1, 2);
    add(SHARE, "empty_room_id.bin", with_id(room, b""));
    add(SHARE, "long_room_id.bin", with_id(room, &[b'!'; 255]));
    add(SHARE, "too_long_room_id.bin", with_id(room, &[b'!'; 256]));
    add(SHARE, "room_id_not_utf8.bin", with_id(room, b"!\xff:x"));
    add(SHARE, "empty_user_id.bin", with_id(user, b""));
    add(SHARE, "long_user_id.bin", with_id(user, &[b'@'; 255]));
    add(SHARE, "user_id_not_utf8.bin", with_id(user, b"@\xff:x"));
    add(SHARE, "empty_device_id.bin", with_id(device, b""));
    add(
        SHARE,
        "too_long_device_id.bin",
        with_id(device, &[b'D'; 256]),
    );
    let mut wrong_type = genuine.clone();
    wrong_type[1] = 2;
    add(SHARE, "wrong_payload_type.bin", wrong_type);
    add(
        SHARE,
        "truncated.bin",
        genuine[..genuine.len() - 1].to_vec(),
    );
    add(SHARE, "trailing.bin", [&genuine[..], &[0]].concat());

    const ENVELOPE: &str = "decode_event_envelope";
    for (i, r) in s.readable.iter().enumerate() {
        add(
            ENVELOPE,
            &format!("readable_{i}.json"),
            r.event.to_json().into_bytes(),
        );
    }
    for (i, (event, _)) in s.unreadable.iter().enumerate() {
        add(
            ENVELOPE,
            &format!("unreadable_{i}.json"),
            event.to_json().into_bytes(),
        );
    }
    let pretty = s.readable[0]
        .event
        .to_json()
        .replace(",\"", ",\n  \"")
        .replacen('{', "{\n  ", 1);
    add(ENVELOPE, "readable_0_pretty.json", pretty.into_bytes());
    let json = s.readable[0].event.to_json();
    add(
        ENVELOPE,
        "extra_field.json",
        json.replacen('{', r#"{"unsigned":{"age":5},"#, 1)
            .into_bytes(),
    );
    add(
        ENVELOPE,
        "missing_field.json",
        br#"{"algorithm":"roomseal.v2.room","sender_key":"","session_id":""}"#.to_vec(),
    );

    const RECEIVE: &str = "endpoint_receive";
    let names = [
        "a1_new_room_key.bin",
        "a2_known_room_key.bin",
        "x0_one_time_key.bin",
        "f0_fallback_key.bin",
    ];
    assert_eq!(names.len(), e.accepted.len());
    for (name, a) in names.iter().zip(&e.accepted) {
        add(RECEIVE, name, a.message.to_bytes());
    }
    let names = [
        "not_for_us.bin",
        "wrong_sender.bin",
        "bad_signature.bin",
        "conflicting_key.bin",
        "reshared_key.bin",
        "room_mismatch.bin",
        "wrong_user.bin",
        "wrong_device.bin",
        "other_ids.bin",
        "not_a_share.bin",
    ];
    assert_eq!(names.len(), e.rejected.len());
    for (name, (m, _)) in names.iter().zip(&e.rejected) {
        add(RECEIVE, name, m.to_bytes());
    }
    add(RECEIVE, "a0_read.bin", e.read.to_bytes());
    let mut tampered = e.accepted[0].message.to_bytes();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    add(RECEIVE, "tampered.bin", tampered);
    let pre_key = e.accepted[0].message.to_bytes();
    // A pre-key message as a normal one: version, kind, then what follows
    // the 192-byte pre-key fields (PROTOCOL.md 7.1, 7.2).
    add(
        RECEIVE,
        "pre_key_as_normal.bin",
        [&[VERSION, 1][..], &pre_key[2 + 192..]].concat(),
    );
    seeds
}

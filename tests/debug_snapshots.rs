//! Snapshots of `Debug` (and `Display` where implemented) for every
//! secret-holding public type and every error enum, built deterministically
//! from seeded generators; and a scan of each type's `Debug` output (plain
//! and pretty) for its secret bytes in every common encoding: the `Debug`
//! list of the bytes (also as runs of decimal numbers in pretty output),
//! lowercase and uppercase hex, and standard and URL-safe base64, of the
//! whole secret and of every 16-byte window.
//!
//! The secret bytes come from the public API (`to_bytes` of session keys and
//! exports) or from the objects' pickles, opened with AES-256-GCM as
//! PROTOCOL.md section 8 describes (the pickle key is ours).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64ct::{Base64, Base64Unpadded, Base64Url, Base64UrlUnpadded, Encoding};
use rand::rngs::ChaCha20Rng;
use rand::{Rng, SeedableRng};
use roomseal::{
    Account, AccountError, DecodeError, DecryptedEvent, DeviceMessage, EncryptedEvent, Endpoint,
    ExportedSessionKey, GroupDecrypted, GroupError, IdentityKeys, InboundCreation,
    InboundGroupSession, InboundKeyStore, KeyError, OutboundGroupSession, PickleError, PickleKey,
    Plaintext, ROOM_ALGORITHM, RoomError, RoomKeyShare, RotationReason, Session, SessionError,
    SessionKey, StoredRoomKey,
};
use serde_json::json;

const ROOM: &str = "!room:example.org";
const EVENT_BODY: &str = "a private message body";

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// The pickle key bytes (0x00 to 0x1f).
fn key_bytes() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

fn pickle_key() -> PickleKey {
    PickleKey::from_bytes(&mut key_bytes())
}

// ---------------------------------------------------------------------------
// Snapshot collection: every mismatch is reported at once, with the actual
// text quoted so it can be pasted.
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Snapshots {
    mismatches: Vec<String>,
}

impl Snapshots {
    fn check(&mut self, what: &str, actual: String, expected: &str) {
        if actual != expected {
            self.mismatches.push(format!(
                "{what}:\n  actual:   {actual:?}\n  expected: {expected:?}"
            ));
        }
    }

    fn finish(self) {
        assert!(
            self.mismatches.is_empty(),
            "{} snapshot(s) differ:\n{}",
            self.mismatches.len(),
            self.mismatches.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------
// Secret scan
// ---------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every rendering of `secret` (and of each 16-byte window of it) that must
/// not occur in `output`.
fn renderings(secret: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pieces = vec![secret];
    pieces.extend(secret.windows(16));
    for piece in pieces {
        let lower = hex(piece);
        out.push(lower.to_uppercase());
        out.push(lower);
        // The Debug list without its brackets, so a window inside a longer
        // list is found too.
        let list = format!("{piece:?}");
        out.push(list[1..list.len() - 1].to_owned());
        // Base64 of the piece; for windows keep only the characters that
        // encode whole 3-byte groups (the last ones depend on what follows).
        for encoded in [
            Base64::encode_string(piece),
            Base64Unpadded::encode_string(piece),
            Base64Url::encode_string(piece),
            Base64UrlUnpadded::encode_string(piece),
        ] {
            if piece.len() == secret.len() {
                out.push(encoded);
            } else {
                out.push(encoded[..piece.len() / 3 * 4].to_owned());
            }
        }
    }
    out
}

/// The decimal numbers of `output`, in order (catches a byte list however it
/// is laid out, e.g. one number per line in pretty output).
fn numbers(output: &str) -> Vec<u64> {
    output
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty() && s.len() <= 3)
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn assert_hides(what: &str, output: &str, secrets: &[(&str, Vec<u8>)]) {
    let found = numbers(output);
    for (name, secret) in secrets {
        assert!(
            secret.len() >= 16,
            "{what}: secret {name} too short to scan"
        );
        for rendering in renderings(secret) {
            assert!(
                !output.contains(&rendering),
                "{what}: Debug output shows {name} ({rendering}):\n{output}"
            );
        }
        for window in secret.windows(16) {
            let window: Vec<u64> = window.iter().map(|&b| u64::from(b)).collect();
            assert!(
                !found.windows(16).any(|w| w == window.as_slice()),
                "{what}: Debug output lists bytes of {name}:\n{output}"
            );
        }
    }
}

/// Scans both the plain and the pretty `Debug` output of `value`.
fn assert_debug_hides<T: std::fmt::Debug>(what: &str, value: &T, secrets: &[(&str, Vec<u8>)]) {
    assert!(!secrets.is_empty(), "{what}: no secrets to look for");
    assert_hides(what, &format!("{value:?}"), secrets);
    assert_hides(what, &format!("{value:#?}"), secrets);
}

// ---------------------------------------------------------------------------
// Opening pickles (PROTOCOL.md 8.1) and reading their secrets (8.2, 8.3,
// 11.8, 12.6, as the code lays them out)
// ---------------------------------------------------------------------------

/// The 64 bytes of identity keys (Ed25519, then X25519), as a session
/// pickle's owner.
fn identity_bytes(keys: IdentityKeys) -> Vec<u8> {
    [&keys.ed25519.to_bytes()[..], keys.curve25519.as_bytes()].concat()
}

/// Opens a pickle made under `key` (8.1): version 2, generation, nonce, then
/// AES-256-GCM under the type's subkey, with the type, version, generation
/// and `owner` (a session's account; empty otherwise) as associated data.
fn open_pickle_with(key: &[u8; 32], pickle: &str, type_name: &str, owner: &[u8]) -> Vec<u8> {
    let bytes = Base64Unpadded::decode_vec(pickle).unwrap();
    assert_eq!(bytes[0], 2, "pickle version");
    let generation = &bytes[1..9];
    let nonce: [u8; 12] = bytes[9..21].try_into().unwrap();
    let mut subkey = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, key)
        .expand(
            &[b"roomseal/v2/pickle-key/", type_name.as_bytes()].concat(),
            &mut subkey,
        )
        .unwrap();
    let aad = [
        b"roomseal/v2/pickle/",
        type_name.as_bytes(),
        &[2],
        generation,
        owner,
    ]
    .concat();
    Aes256Gcm::new(&subkey.into())
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &bytes[21..],
                aad: &aad,
            },
        )
        .expect("pickle opens with the subkey and associated data of PROTOCOL.md 8.1")
}

fn open_pickle(pickle: &str, type_name: &str) -> Vec<u8> {
    open_pickle_with(&key_bytes(), pickle, type_name, &[])
}

/// Named secret byte strings found in some contents.
type Secrets = Vec<(String, Vec<u8>)>;

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }

    fn secret(&mut self, name: &str, into: &mut Secrets, n: usize) {
        into.push((name.to_owned(), self.take(n).to_vec()));
    }

    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    fn u16(&mut self) -> usize {
        usize::from(u16::from_be_bytes(self.take(2).try_into().unwrap()))
    }

    fn u32(&mut self) -> usize {
        u32::from_be_bytes(self.take(4).try_into().unwrap()) as usize
    }

    fn short(&mut self) -> &'a [u8] {
        let len = self.u16();
        self.take(len)
    }
}

/// Account contents (8.2): signing seed, identity key, one-time and
/// fallback private keys. The expanded Ed25519 scalar is added too.
fn account_secrets(c: &mut Cursor<'_>, out: &mut Secrets) {
    let seed: [u8; 32] = c.0[..32].try_into().unwrap();
    c.secret("ed25519 seed", out, 32);
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    out.push((
        "ed25519 scalar bytes".into(),
        signing.to_scalar_bytes().to_vec(),
    ));
    out.push((
        "ed25519 scalar".into(),
        signing.to_scalar().to_bytes().to_vec(),
    ));
    c.secret("x25519 identity key", out, 32);
    c.take(8);
    for i in 0..c.u16() {
        c.take(9);
        c.secret(&format!("one-time key {i}"), out, 32);
    }
    for name in ["fallback key", "previous fallback key"] {
        if c.u8() == 1 {
            c.take(9);
            c.secret(name, out, 32);
            c.take(8);
            let sessions = c.u16();
            c.take(32 * sessions);
        }
    }
}

/// Session contents (8.3): root, ratchet private key, chain keys, skipped
/// message seeds.
fn session_secrets(c: &mut Cursor<'_>, out: &mut Secrets) {
    c.take(1 + 32 + 1 + 64 + 64);
    if c.u8() == 1 {
        c.take(128);
    }
    c.secret("root key", out, 32);
    c.secret("ratchet private key", out, 32);
    c.secret("sending chain key", out, 32);
    c.take(8);
    if c.u8() == 1 {
        c.take(32);
        c.secret("receiving chain key", out, 32);
        c.take(4);
    }
    for i in 0..c.u16() {
        c.take(36);
        c.secret(&format!("skipped message seed {i}"), out, 32);
    }
}

/// A group ratchet (11.2), whole and part by part.
fn ratchet_secrets(name: &str, ratchet: &[u8], out: &mut Secrets) {
    assert_eq!(ratchet.len(), 128);
    out.push((format!("{name} ratchet"), ratchet.to_vec()));
    for (i, part) in ratchet.chunks(32).enumerate() {
        out.push((format!("{name} ratchet part R{i}"), part.to_vec()));
    }
}

/// Outbound contents (11.8): room id, creator identity keys, signing seed,
/// index, ratchet.
fn outbound_secrets(c: &mut Cursor<'_>, out: &mut Secrets) {
    c.short();
    c.take(64);
    c.secret("group signing seed", out, 32);
    c.take(4);
    ratchet_secrets("outbound", c.take(128), out);
}

/// Inbound contents (11.8): key, then the authenticated ratchet (flag,
/// index, ratchet, creator, room) and the unsigned prefix (flag, index,
/// ratchet).
fn inbound_secrets(c: &mut Cursor<'_>, out: &mut Secrets) {
    c.take(32);
    if c.u8() == 1 {
        c.take(4);
        ratchet_secrets("inbound", c.take(128), out);
        c.take(64);
        c.short();
    }
    if c.u8() == 1 {
        c.take(4);
        ratchet_secrets("inbound prefix", c.take(128), out);
    }
}

/// An optional id: flag, then a short id.
fn optional_id(c: &mut Cursor<'_>) {
    if c.u8() == 1 {
        c.short();
    }
}

/// Endpoint contents (12.6): ids, account, sessions per peer, outbound
/// rooms, stored room keys with their replay records, discarded rooms.
fn endpoint_secrets(contents: &[u8]) -> Secrets {
    let mut out = Vec::new();
    let mut c = Cursor(contents);
    c.short();
    c.short();
    account_secrets(&mut c, &mut out);
    // Peers: identity, user and device ids, known and new-session flags,
    // sessions.
    for _ in 0..c.u32() {
        c.take(64);
        optional_id(&mut c);
        optional_id(&mut c);
        c.take(2);
        for _ in 0..c.u16() {
            session_secrets(&mut c, &mut out);
        }
    }
    // Outbound rooms: session, creation time, recipients (identity, ids,
    // first index, sent flag), and the signed keys offered (each holds the
    // ratchet at its index: 11.6).
    for _ in 0..c.u32() {
        outbound_secrets(&mut c, &mut out);
        c.take(8);
        for _ in 0..c.u32() {
            c.take(64);
            c.short();
            c.short();
            c.take(5);
        }
        for i in 0..c.u32() {
            let len = c.u32();
            let key = c.take(len);
            ratchet_secrets(&format!("offered key {i}"), &key[5..133], &mut out);
        }
    }
    // Stored room keys: room, sender, ids, session, floor, replay records.
    for _ in 0..c.u32() {
        c.short();
        c.take(64);
        optional_id(&mut c);
        optional_id(&mut c);
        inbound_secrets(&mut c, &mut out);
        c.take(4);
        let entries = c.u32();
        c.take(36 * entries);
    }
    // Discarded rooms (room, reason), then the rotation policy.
    for _ in 0..c.u32() {
        c.short();
        c.take(1);
    }
    c.take(4 + 8);
    assert!(c.0.is_empty(), "endpoint contents not fully read");
    out
}

fn parse(contents: &[u8], read: fn(&mut Cursor<'_>, &mut Secrets)) -> Secrets {
    let mut out = Vec::new();
    let mut c = Cursor(contents);
    read(&mut c, &mut out);
    assert!(c.0.is_empty(), "contents not fully read");
    out
}

fn as_refs(secrets: &[(String, Vec<u8>)]) -> Vec<(&str, Vec<u8>)> {
    secrets
        .iter()
        .map(|(n, s)| (n.as_str(), s.clone()))
        .collect()
}

// ---------------------------------------------------------------------------
// The objects
// ---------------------------------------------------------------------------

struct World {
    alice: Account,
    alice_session: Session,
    creation_debug: String,
    creation_pretty: String,
    bob_session: Session,
    outbound: OutboundGroupSession,
    session_key: SessionKey,
    inbound: InboundGroupSession,
    exported: ExportedSessionKey,
    share: RoomKeyShare,
    decrypted: GroupDecrypted,
    store: InboundKeyStore,
    event: DecryptedEvent,
    endpoint: Endpoint,
}

fn event_plaintext() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "m.room.message",
        "content": {"body": EVENT_BODY, "msgtype": "m.text"},
    }))
    .unwrap()
}

fn world() -> World {
    let mut alice = Account::new_with_rng(&mut rng(1));
    alice.generate_one_time_keys_with_rng(2, &mut rng(3));
    alice.rotate_fallback_key_with_rng(1_000, &mut rng(4));
    let mut bob = Account::new_with_rng(&mut rng(2));
    bob.generate_one_time_keys_with_rng(2, &mut rng(5));
    let bob_bundle = bob.device_keys("@bob:example.org", "BOBPHONE").unwrap();
    let bob_device = bob_bundle.check_self_signature().unwrap();
    let bob_keys = bob.one_time_keys();

    // Pairwise: Alice starts; Bob replies twice; Alice reads the second
    // reply first, so the first one's key is stored as skipped.
    let mut alice_session = alice
        .create_outbound_session_with_rng(&bob_device, &bob_keys[0], &mut rng(6))
        .unwrap();
    let first = alice_session.encrypt(b"Hello, Bob").unwrap();
    let DeviceMessage::PreKey(pre_key) = &first else {
        panic!("first message is a pre-key message");
    };
    let creation: InboundCreation = bob
        .create_inbound_session_with_rng(pre_key, &mut rng(7))
        .unwrap();
    let creation_debug = format!("{creation:?}");
    let creation_pretty = format!("{creation:#?}");
    let mut bob_session = creation.session;
    bob_session.encrypt(b"Hi Alice (never delivered)").unwrap();
    let reply = bob_session.encrypt(b"Still there?").unwrap();
    alice_session.decrypt_with_rng(&reply, &mut rng(8)).unwrap();

    // Group session, keys, share, a decrypted message and event.
    let mut outbound =
        OutboundGroupSession::new_with_rng(ROOM, alice.identity_keys(), &mut rng(20)).unwrap();
    let session_key = outbound.session_key();
    let mut inbound = InboundGroupSession::new(&session_key).unwrap();
    let exported = inbound.export_at(1).unwrap();
    let share = RoomKeyShare {
        room_id: ROOM.to_owned(),
        sender_user_id: "@alice:example.org".to_owned(),
        sender_device_id: "ALICEPHONE".to_owned(),
        session_key: session_key.clone(),
        sender: alice.identity_keys(),
        recipient: bob.identity_keys(),
    };
    let message = outbound
        .encrypt_with_rng(&event_plaintext(), &mut rng(21))
        .unwrap();
    let decrypted = inbound.decrypt(ROOM, &message).unwrap();
    let mut store = InboundKeyStore::new();
    store
        .add_shared(
            ROOM,
            InboundGroupSession::new(&session_key).unwrap(),
            "@alice:example.org",
            "ALICEPHONE",
        )
        .unwrap();
    let envelope = EncryptedEvent {
        algorithm: ROOM_ALGORITHM.to_owned(),
        sender_key: alice.identity_keys().curve25519,
        session_id: outbound.session_id(),
        ciphertext: message,
    };
    let event = store
        .decrypt(ROOM, "$event:example.org", &envelope)
        .unwrap();

    // An endpoint with a peer session, a shared room and its own room key
    // (those draw from the OS generator, but its Debug shows only counts
    // and room names).
    let mut endpoint = Endpoint::from_account(
        "@carol:example.org",
        "CAROLTABLET",
        Account::new_with_rng(&mut rng(9)),
    )
    .unwrap();
    let published = endpoint.keys_to_publish(2);
    endpoint.mark_keys_as_published(&published);
    endpoint
        .establish_session(&bob_bundle, &bob_keys[1])
        .unwrap();
    let outcome = endpoint
        .share_room_key(ROOM, std::slice::from_ref(&bob_device))
        .unwrap();
    assert_eq!(outcome.messages.len(), 1);
    assert_eq!(endpoint.mark_room_key_sent(&outcome), 1);

    World {
        alice,
        alice_session,
        creation_debug,
        creation_pretty,
        bob_session,
        outbound,
        session_key,
        inbound,
        exported,
        share,
        decrypted,
        store,
        event,
        endpoint,
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn debug_snapshots_of_secret_holding_types() {
    let w = world();
    let mut s = Snapshots::default();
    s.check(
        "Account",
        format!("{:?}", w.alice),
        concat!(
            "Account { identity_keys: IdentityKeys { ",
            "ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg), ",
            "curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU) }, ",
            "one_time_keys: 2, fallback_key: Some(",
            "Curve25519PublicKey(MlQg/ME8w6D4TWc8hfWcbCdkr6SeJWBowEAl+xhV7xc)), ",
            ".. }",
        ),
    );
    s.check(
        "Session (initiator)",
        format!("{:?}", w.alice_session),
        concat!(
            "Session { ",
            "session_id: SessionId(moHNh2U7TCkRqN5pQsai6nKdsjXB6A9aDM0ACUwByV4), ",
            "role: Initiator, peer: IdentityKeys { ",
            "ed25519: Ed25519PublicKey(fRd/HnG0kK0M44D5V4qxK7D8AKmN6PalVcgdSMIDkkk), ",
            "curve25519: Curve25519PublicKey(NjM47BWBVkPmgpgUBV9qgTfjRFrMwFRdmPchHyJOyFc) }, ",
            "pre_key_phase: false, sending_index: 0, ",
            "receiving_index: Some(2), skipped_keys: 1, .. }",
        ),
    );
    s.check(
        "Session (responder)",
        format!("{:?}", w.bob_session),
        concat!(
            "Session { ",
            "session_id: SessionId(moHNh2U7TCkRqN5pQsai6nKdsjXB6A9aDM0ACUwByV4), ",
            "role: Responder, peer: IdentityKeys { ",
            "ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg), ",
            "curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU) }, ",
            "pre_key_phase: false, sending_index: 2, ",
            "receiving_index: Some(1), skipped_keys: 0, .. }",
        ),
    );
    s.check(
        "OutboundGroupSession",
        format!("{:?}", w.outbound),
        concat!(
            "OutboundGroupSession { room_id: \"!room:example.org\", ",
            "session_id: GroupSessionId(7buN2cHKhaa+VPKDt/PQEZsfj9ZOU1Fwdm15k9fNk/k), ",
            "message_index: 1, .. }",
        ),
    );
    s.check(
        "InboundGroupSession",
        format!("{:?}", w.inbound),
        concat!(
            "InboundGroupSession { ",
            "session_id: GroupSessionId(7buN2cHKhaa+VPKDt/PQEZsfj9ZOU1Fwdm15k9fNk/k), ",
            "first_known_index: 0, authenticated_from: Some(0), creator: Some(IdentityKeys { ",
            "ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg), ",
            "curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU) }), .. }",
        ),
    );
    s.check(
        "SessionKey",
        format!("{:?}", w.session_key),
        concat!(
            "SessionKey { ",
            "session_id: Ed25519PublicKey(7buN2cHKhaa+VPKDt/PQEZsfj9ZOU1Fwdm15k9fNk/k), ",
            "index: 0, .. }",
        ),
    );
    s.check(
        "ExportedSessionKey",
        format!("{:?}", w.exported),
        concat!(
            "ExportedSessionKey { ",
            "session_id: Ed25519PublicKey(7buN2cHKhaa+VPKDt/PQEZsfj9ZOU1Fwdm15k9fNk/k), ",
            "index: 1, .. }",
        ),
    );
    s.check(
        "RoomKeyShare",
        format!("{:?}", w.share),
        concat!(
            "RoomKeyShare { room_id: \"!room:example.org\", ",
            "sender_user_id: \"@alice:example.org\", sender_device_id: \"ALICEPHONE\", ",
            "session_key: SessionKey { ",
            "session_id: Ed25519PublicKey(7buN2cHKhaa+VPKDt/PQEZsfj9ZOU1Fwdm15k9fNk/k), ",
            "index: 0, .. }, sender: IdentityKeys { ",
            "ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg), ",
            "curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU) }, ",
            "recipient: IdentityKeys { ",
            "ed25519: Ed25519PublicKey(fRd/HnG0kK0M44D5V4qxK7D8AKmN6PalVcgdSMIDkkk), ",
            "curve25519: Curve25519PublicKey(NjM47BWBVkPmgpgUBV9qgTfjRFrMwFRdmPchHyJOyFc) } }",
        ),
    );
    s.check("PickleKey", format!("{:?}", pickle_key()), "PickleKey(***)");
    s.check(
        "PickleKey (random)",
        format!("{:?}", PickleKey::random_with_rng(&mut rng(10))),
        "PickleKey(***)",
    );
    s.check(
        "Endpoint",
        format!("{:?}", w.endpoint),
        concat!(
            "Endpoint { user_id: \"@carol:example.org\", ",
            "device_id: \"CAROLTABLET\", identity_keys: IdentityKeys { ",
            "ed25519: Ed25519PublicKey(4Ux923cTyccxXzNzk/QmHRcTpfjGxuFMSYbmFkYCUeY), ",
            "curve25519: Curve25519PublicKey(WRc1yqFa6m+6Pd/XcXfin96JPoJXf7ukCEGPVMly+wc) }, ",
            "peers: 1, outbound_rooms: [\"!room:example.org\"], ",
            "inbound_keys: 1, .. }",
        ),
    );
    s.check(
        "InboundKeyStore",
        format!("{:?}", w.store),
        concat!(
            "InboundKeyStore { keys: [StoredKey { room_id: \"!room:example.org\", ",
            "session: InboundGroupSession { ",
            "session_id: GroupSessionId(7buN2cHKhaa+VPKDt/PQEZsfj9ZOU1Fwdm15k9fNk/k), ",
            "first_known_index: 0, authenticated_from: Some(0), creator: Some(IdentityKeys { ",
            "ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg), ",
            "curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU) }), .. }, ",
            "sender: IdentityKeys { ",
            "ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg), ",
            "curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU) }, ",
            "sender_user_id: Some(\"@alice:example.org\"), ",
            "sender_device_id: Some(\"ALICEPHONE\"), ",
            "replay_records: 1, replay_floor: 0 }] }",
        ),
    );
    s.check(
        "InboundKeyStore (pretty)",
        format!("{:#?}", w.store),
        concat!(
            "InboundKeyStore {\n    keys: [\n        StoredKey {\n",
            "            room_id: \"!room:example.org\",\n",
            "            session: InboundGroupSession {\n",
            "                session_id: GroupSessionId(7buN2cHKhaa+VPKDt/PQEZsfj9ZOU1Fwdm15k9fNk/k),\n",
            "                first_known_index: 0,\n",
            "                authenticated_from: Some(\n                    0,\n                ),\n",
            "                creator: Some(\n                    IdentityKeys {\n",
            "                        ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg),\n",
            "                        curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU),\n",
            "                    },\n                ),\n",
            "                ..\n            },\n",
            "            sender: IdentityKeys {\n",
            "                ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg),\n",
            "                curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU),\n",
            "            },\n",
            "            sender_user_id: Some(\n                \"@alice:example.org\",\n            ),\n",
            "            sender_device_id: Some(\n                \"ALICEPHONE\",\n            ),\n",
            "            replay_records: 1,\n            replay_floor: 0,\n",
            "        },\n    ],\n}",
        ),
    );
    s.check(
        "GroupDecrypted",
        format!("{:?}", w.decrypted),
        "GroupDecrypted { plaintext_len: 88, message_index: 0, authenticated: true }",
    );
    s.check(
        "DecryptedEvent",
        format!("{:?}", w.event),
        concat!(
            "DecryptedEvent { event_type: \"m.room.message\", sender: IdentityKeys { ",
            "ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg), ",
            "curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU) }, ",
            "sender_user_id: Some(\"@alice:example.org\"), ",
            "sender_device_id: Some(\"ALICEPHONE\"), ",
            "session_id: GroupSessionId(7buN2cHKhaa+VPKDt/PQEZsfj9ZOU1Fwdm15k9fNk/k), ",
            "message_index: 0, authenticated: true, .. }",
        ),
    );
    s.check(
        "InboundCreation",
        w.creation_debug.clone(),
        concat!(
            "InboundCreation { session: Session { ",
            "session_id: SessionId(moHNh2U7TCkRqN5pQsai6nKdsjXB6A9aDM0ACUwByV4), ",
            "role: Responder, peer: IdentityKeys { ",
            "ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg), ",
            "curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU) }, ",
            "pre_key_phase: false, sending_index: 0, ",
            "receiving_index: Some(1), skipped_keys: 0, .. }, ",
            "plaintext_len: 10 }",
        ),
    );
    s.check(
        "Plaintext",
        format!("{:?}", w.decrypted.plaintext),
        "Plaintext(88 bytes)",
    );
    s.check(
        "Plaintext (pretty)",
        format!("{:#?}", w.decrypted.plaintext),
        "Plaintext(88 bytes)",
    );
    let stored: Vec<StoredRoomKey> = w.store.keys();
    s.check(
        "StoredRoomKey",
        format!("{stored:?}"),
        concat!(
            "[StoredRoomKey { room_id: \"!room:example.org\", ",
            "session_id: GroupSessionId(7buN2cHKhaa+VPKDt/PQEZsfj9ZOU1Fwdm15k9fNk/k), ",
            "sender: IdentityKeys { ",
            "ed25519: Ed25519PublicKey(TUsYBi+FAlmN4EXKe2nwZ/Wfk7FuOvhzOpiK3CNB9cg), ",
            "curve25519: Curve25519PublicKey(CR6HZXV5X1/O1D/3zlrmUtsh40U8ax7F070jsexBBlU) }, ",
            "sender_user_id: Some(\"@alice:example.org\"), ",
            "sender_device_id: Some(\"ALICEPHONE\"), first_index: 0, ",
            "authenticated_from: Some(0), replay_records: 1, size_bytes: 410 }]",
        ),
    );
    s.finish();
}

#[test]
fn no_secret_bytes_in_debug_output() {
    let w = world();
    let key = pickle_key();

    let account = parse(
        &open_pickle(&w.alice.pickle_with_rng(&key, &mut rng(0)), "account"),
        account_secrets,
    );
    assert_eq!(
        account.len(),
        2 + 2 + 2 + 1,
        "seed, scalars, identity, two one-time keys, fallback"
    );
    assert_debug_hides("Account", &w.alice, &as_refs(&account));

    for (what, session, expected) in [
        ("Session (initiator)", &w.alice_session, 3 + 1 + 1),
        ("Session (responder)", &w.bob_session, 3 + 1),
    ] {
        let secrets = parse(
            &open_pickle_with(
                &key_bytes(),
                &session.pickle_with_rng(&key, &mut rng(0)),
                "session",
                &identity_bytes(session.local_identity()),
            ),
            session_secrets,
        );
        assert_eq!(
            secrets.len(),
            expected,
            "{what}: root, ratchet, chains, skipped"
        );
        assert_debug_hides(what, session, &as_refs(&secrets));
    }

    let outbound = parse(
        &open_pickle(
            &w.outbound.pickle_with_rng(&key, &mut rng(0)),
            "outbound-group-session",
        ),
        outbound_secrets,
    );
    // The seed found in the pickle really is the session's signing key.
    let seed: [u8; 32] = outbound[0].1.clone().try_into().unwrap();
    assert_eq!(
        ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes(),
        *w.outbound.session_id().as_bytes()
    );
    assert_debug_hides("OutboundGroupSession", &w.outbound, &as_refs(&outbound));

    let inbound = parse(
        &open_pickle(
            &w.inbound.pickle_with_rng(&key, &mut rng(0)),
            "inbound-group-session",
        ),
        inbound_secrets,
    );
    assert_debug_hides("InboundGroupSession", &w.inbound, &as_refs(&inbound));

    // Session keys and exports: the ratchet (bytes 5..133 of 11.6).
    let mut key_secrets = Vec::new();
    ratchet_secrets(
        "session key",
        &w.session_key.to_bytes()[5..133],
        &mut key_secrets,
    );
    assert_eq!(
        key_secrets[0].1, inbound[0].1,
        "the reader's ratchet is the key's"
    );
    assert_debug_hides("SessionKey", &w.session_key, &as_refs(&key_secrets));
    assert_debug_hides("RoomKeyShare", &w.share, &as_refs(&key_secrets));
    assert_debug_hides("InboundKeyStore", &w.store, &as_refs(&key_secrets));
    let mut export_secrets = Vec::new();
    ratchet_secrets(
        "export",
        &w.exported.to_bytes()[5..133],
        &mut export_secrets,
    );
    assert_debug_hides("ExportedSessionKey", &w.exported, &as_refs(&export_secrets));
    // Pickle keys: given, and drawn (the same bytes as the generator's first
    // 32, checked by opening a pickle with them).
    assert_debug_hides("PickleKey", &key, &[("key", key_bytes().to_vec())]);
    let mut drawn = [0u8; 32];
    rng(10).fill_bytes(&mut drawn);
    let random = PickleKey::random_with_rng(&mut rng(10));
    let probe = Account::new_with_rng(&mut rng(11)).pickle_with_rng(&random, &mut rng(0));
    assert!(!open_pickle_with(&drawn, &probe, "account", &[]).is_empty());
    assert_debug_hides("PickleKey (random)", &random, &[("key", drawn.to_vec())]);

    let endpoint = endpoint_secrets(&open_pickle(
        &w.endpoint.pickle_with_rng(&key, &mut rng(0)),
        "endpoint",
    ));
    // Account (7 with its two one-time keys and fallback key), one session
    // (3 keys plus none received), the room's outbound session (1 + 5), the
    // signed key offered to Bob (5) and our own inbound copy (5).
    assert_eq!(endpoint.len(), 7 + 3 + 6 + 5 + 5);
    assert_debug_hides("Endpoint", &w.endpoint, &as_refs(&endpoint));

    // Plaintexts are not keys, but `GroupDecrypted` shows only their length.
    let plaintext = event_plaintext();
    assert_debug_hides(
        "GroupDecrypted",
        &w.decrypted,
        &[("plaintext", plaintext.clone())],
    );
    assert!(!format!("{:?}", w.decrypted).contains(EVENT_BODY));
    assert_debug_hides(
        "Plaintext",
        &w.decrypted.plaintext,
        &[("plaintext", plaintext.clone())],
    );
    assert!(!format!("{:?}", w.decrypted.plaintext).contains(EVENT_BODY));
    // The stored-key listing (for backup and clean-up) holds no key bytes.
    assert_debug_hides("StoredRoomKey", &w.store.keys(), &as_refs(&key_secrets));
    assert_debug_hides(
        "StoredRoomKey",
        &w.endpoint.room_keys(),
        &as_refs(&endpoint),
    );
    // `DecryptedEvent` shows neither the event content (what was said) nor
    // anything of the key that decrypted it.
    assert!(!format!("{:?}", w.event).contains(EVENT_BODY));
    assert_debug_hides("DecryptedEvent", &w.event, &as_refs(&key_secrets));
}

#[test]
fn inbound_creation_debug_shows_only_the_plaintext_length() {
    // Like `GroupDecrypted`, `InboundCreation` shows how long the first
    // plaintext is, never its bytes (it may be a room-key share).
    let w = world();
    let listed = format!("{:?}", b"Hello, Bob");
    assert!(!w.creation_debug.contains(&listed[1..listed.len() - 1]));
    assert!(w.creation_pretty.contains("plaintext_len: 10"));
}

#[test]
fn inbound_creation_debug_hides_a_shared_session_key() {
    let alice = Account::new_with_rng(&mut rng(1));
    let mut bob = Account::new_with_rng(&mut rng(2));
    bob.generate_one_time_keys_with_rng(1, &mut rng(5));
    let bob_device = bob
        .device_keys("@bob:example.org", "BOBPHONE")
        .unwrap()
        .check_self_signature()
        .unwrap();
    let mut session = alice
        .create_outbound_session_with_rng(&bob_device, &bob.one_time_keys()[0], &mut rng(6))
        .unwrap();
    let group =
        OutboundGroupSession::new_with_rng(ROOM, alice.identity_keys(), &mut rng(20)).unwrap();
    let share = RoomKeyShare {
        room_id: ROOM.to_owned(),
        sender_user_id: "@alice:example.org".to_owned(),
        sender_device_id: "ALICEPHONE".to_owned(),
        session_key: group.session_key(),
        sender: alice.identity_keys(),
        recipient: bob.identity_keys(),
    };
    let DeviceMessage::PreKey(message) = session.encrypt(&share.to_bytes()).unwrap() else {
        panic!("pre-key message expected");
    };
    let creation = bob
        .create_inbound_session_with_rng(&message, &mut rng(7))
        .unwrap();
    let mut secrets = Vec::new();
    ratchet_secrets(
        "shared",
        &share.session_key.to_bytes()[5..133],
        &mut secrets,
    );
    assert_debug_hides("InboundCreation", &creation, &as_refs(&secrets));
}

/// Every rotation reason, in code order.
const ROTATION_REASONS: [RotationReason; 8] = [
    RotationReason::NotShared,
    RotationReason::MessageLimit,
    RotationReason::AgeLimit,
    RotationReason::ClockWentBack,
    RotationReason::DeviceLeft,
    RotationReason::DeviceForgotten,
    RotationReason::Requested,
    RotationReason::Rollback,
];

#[test]
fn error_display_and_debug() {
    let mut s = Snapshots::default();
    let key_errors = [
        KeyError::Base64,
        KeyError::Length {
            expected: 32,
            found: 31,
        },
        KeyError::InvalidPoint,
        KeyError::WeakKey,
        KeyError::BadSignature,
    ];
    let decode_errors = [
        DecodeError::Base64,
        DecodeError::Empty,
        DecodeError::UnknownVersion(2),
        DecodeError::Truncated("ratchet key"),
        DecodeError::TrailingBytes(3),
        DecodeError::InvalidValue("room id"),
        DecodeError::TooLong {
            field: "ciphertext",
            len: 1_048_593,
            max: 1_048_592,
        },
    ];
    let pickle_errors = [
        PickleError::Base64,
        PickleError::Truncated,
        PickleError::UnknownVersion(7),
        PickleError::Decryption,
        PickleError::Contents(DecodeError::TrailingBytes(1)),
        PickleError::Stale {
            found: 3,
            newest: 5,
        },
    ];
    let session_errors = [
        SessionError::Decode(DecodeError::Empty),
        SessionError::SessionMismatch,
        SessionError::Authentication,
        SessionError::MessageKeyGone { counter: 4 },
        SessionError::TooFarAhead {
            jump: 2001,
            max: 2000,
        },
        SessionError::LowOrderKey,
        SessionError::BadBinding,
        SessionError::PlaintextTooLong {
            len: 1_048_577,
            max: 1_048_576,
        },
        SessionError::ChainExhausted,
    ];
    let account_errors = [
        AccountError::BadOneTimeKeySignature,
        AccountError::BadDeviceKeysSignature,
        AccountError::InvalidDeviceKeys("user id"),
        AccountError::UnknownOneTimeKey,
        AccountError::FallbackKeyReplay,
        AccountError::FallbackKeyExhausted,
        AccountError::Session(SessionError::LowOrderKey),
    ];
    let group_errors = [
        GroupError::Decode(DecodeError::Truncated("signature")),
        GroupError::InvalidRoomId,
        GroupError::BadSignature,
        GroupError::UnknownIndex {
            index: 1,
            first_known: 5,
        },
        GroupError::Authentication,
        GroupError::PlaintextTooLong {
            len: 1_048_577,
            max: 1_048_576,
        },
        GroupError::Exhausted,
    ];
    let room_errors = [
        RoomError::InvalidId("event id"),
        RoomError::Decode(DecodeError::InvalidValue("payload type")),
        RoomError::Account(AccountError::UnknownOneTimeKey),
        RoomError::Session(SessionError::Authentication),
        RoomError::Group(GroupError::BadSignature),
        RoomError::NoSession,
        RoomError::SenderMismatch,
        RoomError::OwnDevice,
        RoomError::IdentityConflict,
        RoomError::DuplicateRecipient,
        RoomError::ShareNotForUs,
        RoomError::ShareSenderMismatch,
        RoomError::ShareRoomMismatch,
        RoomError::ConflictingRoomKey,
        RoomError::UnknownRoomKey,
        RoomError::SenderKeyMismatch,
        RoomError::Replay { index: 9 },
        RoomError::Forgotten { index: 3 },
        RoomError::UnsupportedAlgorithm,
        RoomError::InvalidEnvelope,
        RoomError::InvalidEvent,
        RoomError::TooManyPeers,
        RoomError::TooManyRoomKeys,
    ]
    .into_iter()
    .chain(ROTATION_REASONS.map(RoomError::ShareRequired))
    .collect::<Vec<_>>();
    let all: Vec<(String, String, String)> = key_errors
        .iter()
        .map(|e| (format!("{e:?}"), e.to_string(), "KeyError".to_owned()))
        .chain(
            decode_errors
                .iter()
                .map(|e| (format!("{e:?}"), e.to_string(), "DecodeError".to_owned())),
        )
        .chain(
            pickle_errors
                .iter()
                .map(|e| (format!("{e:?}"), e.to_string(), "PickleError".to_owned())),
        )
        .chain(
            session_errors
                .iter()
                .map(|e| (format!("{e:?}"), e.to_string(), "SessionError".to_owned())),
        )
        .chain(
            account_errors
                .iter()
                .map(|e| (format!("{e:?}"), e.to_string(), "AccountError".to_owned())),
        )
        .chain(
            group_errors
                .iter()
                .map(|e| (format!("{e:?}"), e.to_string(), "GroupError".to_owned())),
        )
        .chain(
            room_errors
                .iter()
                .map(|e| (format!("{e:?}"), e.to_string(), "RoomError".to_owned())),
        )
        .chain(
            ROTATION_REASONS
                .iter()
                .map(|r| (format!("{r:?}"), r.to_string(), "RotationReason".to_owned())),
        )
        .collect();
    let expected: &[(&str, &str)] = &[
        ("Base64", "invalid base64"),
        (
            "Length { expected: 32, found: 31 }",
            "expected 32 bytes, found 31",
        ),
        ("InvalidPoint", "not a canonical Ed25519 point"),
        ("WeakKey", "Ed25519 key of small order"),
        ("BadSignature", "signature does not verify"),
        ("Base64", "invalid base64"),
        ("Empty", "empty input"),
        ("UnknownVersion(2)", "unknown format version 2"),
        (
            "Truncated(\"ratchet key\")",
            "input truncated while reading ratchet key",
        ),
        ("TrailingBytes(3)", "3 trailing bytes after the last field"),
        ("InvalidValue(\"room id\")", "invalid value for room id"),
        (
            "TooLong { field: \"ciphertext\", len: 1048593, max: 1048592 }",
            "ciphertext is 1048593 bytes, more than the 1048592 allowed",
        ),
        ("Base64", "pickle is not valid base64"),
        ("Truncated", "pickle is truncated"),
        ("UnknownVersion(7)", "unknown pickle version 7"),
        (
            "Decryption",
            "pickle does not decrypt: wrong key, altered bytes, or another object type or owner",
        ),
        (
            "Contents(TrailingBytes(1))",
            "pickle contents are invalid: 1 trailing bytes after the last field",
        ),
        (
            "Stale { found: 3, newest: 5 }",
            "pickle generation 3 is older than the newest recorded generation 5",
        ),
        ("Decode(Empty)", "message could not be decoded: empty input"),
        (
            "SessionMismatch",
            "pre-key message belongs to another session",
        ),
        ("Authentication", "message failed authentication"),
        (
            "MessageKeyGone { counter: 4 }",
            "message key 4 was already used or is no longer kept",
        ),
        (
            "TooFarAhead { jump: 2001, max: 2000 }",
            "message would skip 2001 message keys, more than the 2000 allowed",
        ),
        ("LowOrderKey", "peer key is a low-order point"),
        ("BadBinding", "session binding signature does not verify"),
        (
            "PlaintextTooLong { len: 1048577, max: 1048576 }",
            "plaintext of 1048577 bytes exceeds the 1048576-byte limit",
        ),
        ("ChainExhausted", "chain has no message indices left"),
        (
            "BadOneTimeKeySignature",
            "one-time key signature does not verify",
        ),
        (
            "BadDeviceKeysSignature",
            "device-key signature does not verify",
        ),
        (
            "InvalidDeviceKeys(\"user id\")",
            "invalid device keys: user id",
        ),
        (
            "UnknownOneTimeKey",
            "pre-key message names an unknown one-time key",
        ),
        (
            "FallbackKeyReplay",
            "pre-key message replays a session already created from the fallback key",
        ),
        (
            "FallbackKeyExhausted",
            "fallback key has created its maximum of sessions; rotate it",
        ),
        ("Session(LowOrderKey)", "peer key is a low-order point"),
        (
            "Decode(Truncated(\"signature\"))",
            "could not be decoded: input truncated while reading signature",
        ),
        ("InvalidRoomId", "room id must be 1 to 255 bytes"),
        ("BadSignature", "signature does not verify"),
        (
            "UnknownIndex { index: 1, first_known: 5 }",
            "message index 1 is before the first known index 5",
        ),
        ("Authentication", "message failed authentication"),
        (
            "PlaintextTooLong { len: 1048577, max: 1048576 }",
            "plaintext of 1048577 bytes exceeds the 1048576-byte limit",
        ),
        ("Exhausted", "group session has no message indices left"),
        (
            "InvalidId(\"event id\")",
            "invalid event id: must be 1 to 255 bytes",
        ),
        (
            "Decode(InvalidValue(\"payload type\"))",
            "could not be decoded: invalid value for payload type",
        ),
        (
            "Account(UnknownOneTimeKey)",
            "pre-key message names an unknown one-time key",
        ),
        ("Session(Authentication)", "message failed authentication"),
        ("Group(BadSignature)", "signature does not verify"),
        ("NoSession", "no session with the sending device"),
        (
            "SenderMismatch",
            "pre-key message does not come from the claimed sender",
        ),
        (
            "OwnDevice",
            "cannot start a session with this device itself",
        ),
        (
            "IdentityConflict",
            "device identity conflicts with the one held for its X25519 key",
        ),
        (
            "DuplicateRecipient",
            "a device is listed twice, or two listed devices share a key or id",
        ),
        (
            "ShareNotForUs",
            "room-key share is addressed to another device",
        ),
        (
            "ShareSenderMismatch",
            "room-key share claims a sender other than the session's peer or the key's creator",
        ),
        (
            "ShareRoomMismatch",
            "room-key share names another room than its session key",
        ),
        (
            "ConflictingRoomKey",
            "conflicting key for an existing room session",
        ),
        ("UnknownRoomKey", "no room key for this session"),
        (
            "SenderKeyMismatch",
            "envelope sender key does not match the session's sender",
        ),
        (
            "Replay { index: 9 }",
            "message index 9 was already used by another event",
        ),
        (
            "Forgotten { index: 3 }",
            "message index 3 is older than the replay records kept",
        ),
        ("UnsupportedAlgorithm", "unsupported algorithm"),
        ("InvalidEnvelope", "invalid encrypted event envelope"),
        ("InvalidEvent", "invalid event payload"),
        (
            "TooManyPeers",
            "too many peer devices; forget some before accepting new ones",
        ),
        (
            "TooManyRoomKeys",
            "too many room keys stored; forget some before accepting new ones",
        ),
        (
            "ShareRequired(NotShared)",
            "the room key must be shared before encrypting: the room key has not been shared yet",
        ),
        (
            "ShareRequired(MessageLimit)",
            "the room key must be shared before encrypting: the room key has sent its maximum number of messages",
        ),
        (
            "ShareRequired(AgeLimit)",
            "the room key must be shared before encrypting: the room key reached its maximum age",
        ),
        (
            "ShareRequired(ClockWentBack)",
            "the room key must be shared before encrypting: the clock went back past the room key's creation time",
        ),
        (
            "ShareRequired(DeviceLeft)",
            "the room key must be shared before encrypting: a device that held the room key left",
        ),
        (
            "ShareRequired(DeviceForgotten)",
            "the room key must be shared before encrypting: a device that held the room key was forgotten",
        ),
        (
            "ShareRequired(Requested)",
            "the room key must be shared before encrypting: a new room key was requested",
        ),
        (
            "ShareRequired(Rollback)",
            "the room key must be shared before encrypting: the state was rolled back",
        ),
        ("NotShared", "the room key has not been shared yet"),
        (
            "MessageLimit",
            "the room key has sent its maximum number of messages",
        ),
        ("AgeLimit", "the room key reached its maximum age"),
        (
            "ClockWentBack",
            "the clock went back past the room key's creation time",
        ),
        ("DeviceLeft", "a device that held the room key left"),
        (
            "DeviceForgotten",
            "a device that held the room key was forgotten",
        ),
        ("Requested", "a new room key was requested"),
        ("Rollback", "the state was rolled back"),
    ];
    for (i, (debug, display, kind)) in all.iter().enumerate() {
        let (want_debug, want_display) = expected.get(i).copied().unwrap_or(("", ""));
        s.check(&format!("{kind} Debug #{i}"), debug.clone(), want_debug);
        s.check(
            &format!("{kind} Display #{i}"),
            display.clone(),
            want_display,
        );
    }
    s.finish();
    assert_eq!(all.len(), expected.len());
}

#[macro_use]
#[path = "support/implements.rs"]
mod implements;

#[test]
fn secret_types_have_no_display() {
    // Display is where a value's text form lives (keys, ids, errors): no
    // secret-holding type has one, so none can be formatted with `{}`.
    let display = [
        ("Account", implements!(Account: std::fmt::Display)),
        ("Session", implements!(Session: std::fmt::Display)),
        (
            "OutboundGroupSession",
            implements!(OutboundGroupSession: std::fmt::Display),
        ),
        (
            "InboundGroupSession",
            implements!(InboundGroupSession: std::fmt::Display),
        ),
        ("SessionKey", implements!(SessionKey: std::fmt::Display)),
        (
            "ExportedSessionKey",
            implements!(ExportedSessionKey: std::fmt::Display),
        ),
        ("RoomKeyShare", implements!(RoomKeyShare: std::fmt::Display)),
        ("PickleKey", implements!(PickleKey: std::fmt::Display)),
        ("Endpoint", implements!(Endpoint: std::fmt::Display)),
        (
            "InboundKeyStore",
            implements!(InboundKeyStore: std::fmt::Display),
        ),
        (
            "InboundCreation",
            implements!(InboundCreation: std::fmt::Display),
        ),
        (
            "GroupDecrypted",
            implements!(GroupDecrypted: std::fmt::Display),
        ),
        (
            "DecryptedEvent",
            implements!(DecryptedEvent: std::fmt::Display),
        ),
        ("Plaintext", implements!(Plaintext: std::fmt::Display)),
    ];
    for (name, has) in display {
        assert!(!has, "{name} implements Display");
    }
    // The probe itself: public-key types and errors do have Display.
    assert!(implements!(roomseal::Curve25519PublicKey: std::fmt::Display));
    assert!(implements!(RoomError: std::fmt::Display));
}

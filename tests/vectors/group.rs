//! Known-answer vectors for group sessions (room keys) and the room layer's
//! byte formats, version 2: `tests/vectors/group_v2.json`.
//!
//! The scenario: Alice's device creates an outbound group session for one
//! room from a seeded generator (naming her identity keys, derived from the
//! pairwise vectors' account seed, as its creator), shares its signed
//! session key at index 0,
//! encrypts three messages (`g0` to `g2`, the first an event plaintext),
//! takes the signed session key at index 3, encrypts 510 messages that are
//! not recorded and then `g3` at index 513, so that a reader holding the key
//! at index 0 must jump (ratchet part R2 ticks twice, R3 once). An inbound
//! session built from the key at index 0 exports the key at index 1 and at
//! index 0x01020304 (every part of the ratchet moves). The file also holds
//! outbound and inbound pickles (one imported, one merged: a signed key
//! with an unsigned prefix before it, one advanced), a room-key share from
//! Alice's device (with her user and device ids) to Bob carrying the key at
//! index 3, and the
//! JSON envelope of `g0`. Endpoint-level values draw from the operating
//! system's generator and are not vectored.
//!
//! The same three kinds of check as the pairwise vectors, and the same
//! switch (`ROOMSEAL_WRITE_VECTORS=1 cargo test --test vectors`) rewrites
//! the file. The reverse direction also runs the share's receipt checks
//! against the frozen pairwise sessions of the same two accounts, and a
//! fourth test parses live endpoint pickles (not vectors: endpoints use the
//! operating system's generator) by the layout of PROTOCOL.md 12.6.

use std::path::PathBuf;
use std::sync::OnceLock;

use roomseal::{
    Account, DecodeError, EncryptedEvent, Endpoint, ExportedSessionKey, GroupError, GroupMessage,
    IdentityKeys, InboundGroupSession, InboundKeyStore, OutboundGroupSession, ROOM_ALGORITHM,
    RoomError, RoomKeyShare, RotationPolicy, SessionKey, pickle_generation,
};
use serde_json::{Value, json};

use super::{
    ALICE_DEVICE, ALICE_USER, b64, identity_json, pickle_key, pickle_key_bytes, rng, spec, unb64,
};

const ROOM: &str = "!room:example.org";

/// The plaintext of `g0`, byte for byte what `Endpoint::encrypt_event`
/// produces for this event (fields `type` then `content`; serde_json sorts
/// the content's keys).
const EVENT_JSON: &str =
    r#"{"type":"m.room.message","content":{"body":"Hello, room","msgtype":"m.text"}}"#;
const EVENT_ID: &str = "$event-g0:example.org";

/// The index of `g3`: 0x00000201.
const JUMP_INDEX: u32 = 513;
/// The index of the far export: every byte differs from index 0.
const FAR_INDEX: u32 = 0x0102_0304;
/// What the unrecorded messages between `g2` and `g3` carry.
const FILLER: &[u8] = b"filler";

/// The seed of every random draw, one generator per operation.
mod seed {
    /// Alice's account, as in the pairwise vectors.
    pub(super) const ALICE_ACCOUNT: u8 = 1;
    /// Bob's account, as in the pairwise vectors.
    pub(super) const BOB_ACCOUNT: u8 = 2;
    /// `OutboundGroupSession::new_with_rng`: 32 bytes of Ed25519 seed, then
    /// 128 bytes of ratchet.
    pub(super) const OUTBOUND_SESSION: u8 = 20;
    /// `SALT[i]` seeds the `encrypt_with_rng` call that makes `g{i}` (its
    /// 16-byte salt).
    pub(super) const SALT: [u8; 4] = [40, 41, 42, 43];
    /// One generator for the salts of every filler message.
    pub(super) const FILLER_SALTS: u8 = 49;
}

fn vector_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/group_v2.json")
}

// ---------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Recorder {
    script: Vec<String>,
    messages: Vec<Value>,
    session_keys: Vec<Value>,
    exports: Vec<Value>,
    pickles: Vec<Value>,
    next_pickle_seed: u8,
}

impl Recorder {
    fn step(&mut self, text: impl Into<String>) {
        self.script.push(text.into());
    }

    /// Encrypts and records `g{index}` (its salt drawn from
    /// `seed::SALT[index]`).
    fn message(&mut self, plaintext: &str, out: &mut OutboundGroupSession) -> GroupMessage {
        let index = self.messages.len();
        let salt_seed = seed::SALT[index];
        let message = out
            .encrypt_with_rng(plaintext.as_bytes(), &mut rng(salt_seed))
            .unwrap();
        let name = format!("g{index}");
        self.step(format!(
            "alice encrypts {name} at index {}: {plaintext:?}",
            message.message_index()
        ));
        self.messages.push(json!({
            "name": name,
            "index": message.message_index(),
            "plaintext": plaintext,
            "salt_rng_seed": salt_seed,
            "salt": b64(&message.to_bytes()[5..21]),
            "length": message.to_bytes().len(),
            "base64": message.to_base64(),
        }));
        message
    }

    fn session_key(&mut self, name: &str, key: &SessionKey) {
        self.step(format!("alice: session_key() -> {name}"));
        self.session_keys.push(json!({
            "name": name,
            "index": key.first_index(),
            "length": key.to_bytes().len(),
            "base64": key.to_base64().as_str(),
        }));
    }

    fn export(&mut self, name: &str, key: &ExportedSessionKey) {
        self.step(format!("export_at({}) -> {name}", key.first_index()));
        self.exports.push(json!({
            "name": name,
            "index": key.first_index(),
            "length": key.to_bytes().len(),
            "base64": key.to_base64().as_str(),
        }));
    }

    /// Pickles with the next nonce seed (100, 101, ...).
    fn pickle(&mut self, name: &str, kind: &str, when: &str, text: impl Fn(u8) -> String) {
        let seed = 100 + self.next_pickle_seed;
        self.next_pickle_seed += 1;
        self.step(format!("pickle {name}"));
        let text = text(seed);
        self.pickles.push(json!({
            "name": name,
            "kind": kind,
            "when": when,
            "nonce_rng_seed": seed,
            "generation": pickle_generation(&text).unwrap(),
            "pickle": text,
        }));
    }
}

fn generate() -> Value {
    let key = pickle_key();
    let mut rec = Recorder::default();
    let alice = Account::new_with_rng(&mut rng(seed::ALICE_ACCOUNT)).identity_keys();
    let bob = Account::new_with_rng(&mut rng(seed::BOB_ACCOUNT)).identity_keys();

    rec.step(format!(
        "alice: OutboundGroupSession::new_with_rng({ROOM:?}, alice's identity keys)"
    ));
    let mut out =
        OutboundGroupSession::new_with_rng(ROOM, alice, &mut rng(seed::OUTBOUND_SESSION)).unwrap();
    rec.pickle(
        "outbound_new",
        "outbound-group-session",
        "right after creation, index 0",
        |s| out.pickle_with_rng(&key, &mut rng(s)),
    );
    let key0 = out.session_key();
    rec.session_key("session_key_0", &key0);

    rec.message(EVENT_JSON, &mut out);
    rec.message("Second message", &mut out);
    rec.message("", &mut out);
    let key3 = out.session_key();
    rec.session_key("session_key_3", &key3);
    rec.step(format!(
        "alice encrypts {:?} at indices 3 to {} (not recorded)",
        String::from_utf8_lossy(FILLER),
        JUMP_INDEX - 1
    ));
    let filler_salts = &mut rng(seed::FILLER_SALTS);
    while out.message_index() < JUMP_INDEX {
        out.encrypt_with_rng(FILLER, filler_salts).unwrap();
    }
    rec.message("After a jump", &mut out);
    rec.pickle(
        "outbound_after_g3",
        "outbound-group-session",
        "after g3, index 514",
        |s| out.pickle_with_rng(&key, &mut rng(s)),
    );

    rec.step("InboundGroupSession::new(session_key_0)");
    let inbound = InboundGroupSession::new(&key0).unwrap();
    rec.pickle(
        "inbound_session_key_0",
        "inbound-group-session",
        "built from session_key_0: authenticated, first known index 0",
        |s| inbound.pickle_with_rng(&key, &mut rng(s)),
    );
    let export_1 = inbound.export_at(1).unwrap();
    rec.export("export_1", &export_1);
    let export_far = inbound.export_at(FAR_INDEX).unwrap();
    rec.export("export_far", &export_far);

    rec.step("InboundGroupSession::import(export_far)");
    let imported = InboundGroupSession::import(&export_far);
    rec.pickle(
        "inbound_imported_far",
        "inbound-group-session",
        "imported from export_far: not authenticated, first known index 0x01020304",
        |s| imported.pickle_with_rng(&key, &mut rng(s)),
    );
    rec.step("import(export_1).merge(new(session_key_3))");
    let merged = InboundGroupSession::import(&export_1)
        .merge(&InboundGroupSession::new(&key3).unwrap())
        .unwrap();
    rec.pickle(
        "inbound_merged",
        "inbound-group-session",
        "export_1 merged with session_key_3: an unsigned prefix from index 1, authenticated \
         from index 3",
        |s| merged.pickle_with_rng(&key, &mut rng(s)),
    );
    rec.step("new(session_key_0).advance_to(2)");
    let mut advanced = InboundGroupSession::new(&key0).unwrap();
    assert!(advanced.advance_to(2));
    rec.pickle(
        "inbound_advanced_to_2",
        "inbound-group-session",
        "built from session_key_0, then advance_to(2)",
        |s| advanced.pickle_with_rng(&key, &mut rng(s)),
    );

    rec.step("RoomKeyShare from alice's device to bob carrying session_key_3");
    let share = RoomKeyShare {
        room_id: ROOM.to_owned(),
        sender_user_id: ALICE_USER.to_owned(),
        sender_device_id: ALICE_DEVICE.to_owned(),
        session_key: key3,
        sender: alice,
        recipient: bob,
    }
    .to_bytes();

    rec.step("EncryptedEvent envelope of g0");
    let g0 = GroupMessage::from_base64(rec.messages[0]["base64"].as_str().unwrap()).unwrap();
    let envelope = EncryptedEvent {
        algorithm: ROOM_ALGORITHM.to_owned(),
        sender_key: alice.curve25519,
        session_id: out.session_id(),
        ciphertext: g0,
    };

    json!({
        "about": "Known-answer vectors of roomseal group sessions (room keys) and room-layer \
                  formats, protocol version 2. Checked byte for byte by tests/vectors.rs (module \
                  group); see PROTOCOL.md, section \"Test vectors\". A changed vector is a \
                  protocol change.",
        "protocol_version": 2,
        "rng": "rand 0.10 ChaCha20Rng::from_seed([seed; 32]), a fresh generator per operation",
        "seeds": {
            "alice_account": seed::ALICE_ACCOUNT,
            "bob_account": seed::BOB_ACCOUNT,
            "outbound_session": seed::OUTBOUND_SESSION,
            "filler_salts": seed::FILLER_SALTS,
        },
        "room_id": ROOM,
        "alice": { "identity_keys": identity_json(alice) },
        "bob": { "identity_keys": identity_json(bob) },
        "session_id": out.session_id().to_base64(),
        "session_keys": rec.session_keys,
        "messages": rec.messages,
        "filler": {
            "plaintext": String::from_utf8_lossy(FILLER),
            "first_index": 3,
            "last_index": JUMP_INDEX - 1,
        },
        "exports": rec.exports,
        "room_key_share": {
            "room_id": ROOM,
            "sender_user_id": ALICE_USER,
            "sender_device_id": ALICE_DEVICE,
            "sender": "alice",
            "recipient": "bob",
            "session_key": "session_key_3",
            "length": share.len(),
            "base64": b64(&share),
        },
        "encrypted_event": {
            "event_id": EVENT_ID,
            "message": "g0",
            "json": envelope.to_json(),
        },
        "pickles": {
            "key": b64(&pickle_key_bytes()),
            "entries": rec.pickles,
        },
        "script": rec.script,
    })
}

fn load_frozen() -> Value {
    static WRITTEN: OnceLock<()> = OnceLock::new();
    super::load_frozen_file(&vector_path(), &WRITTEN, generate)
}

#[test]
fn regenerated_vectors_match_the_frozen_file() {
    super::assert_regenerates("group_v2.json", &load_frozen(), &generate());
}

// ---------------------------------------------------------------------------
// Reverse direction: frozen bytes in, frozen plaintexts out
// ---------------------------------------------------------------------------

struct Frozen(Value);

impl Frozen {
    fn str(&self, pointer: &str) -> &str {
        super::frozen_str(&self.0, pointer)
    }

    fn named<'a>(&'a self, list: &str, name: &str) -> &'a Value {
        self.0[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("frozen file lacks {list} entry {name}"))
    }

    fn message(&self, name: &str) -> GroupMessage {
        GroupMessage::from_base64(self.named("messages", name)["base64"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("frozen {name} no longer decodes: {e}"))
    }

    fn plaintext(&self, name: &str) -> &[u8] {
        self.named("messages", name)["plaintext"]
            .as_str()
            .unwrap()
            .as_bytes()
    }

    fn session_key(&self, name: &str) -> SessionKey {
        SessionKey::from_base64(self.named("session_keys", name)["base64"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("frozen {name} no longer decodes: {e}"))
    }

    fn export(&self, name: &str) -> ExportedSessionKey {
        ExportedSessionKey::from_base64(self.named("exports", name)["base64"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("frozen {name} no longer decodes: {e}"))
    }

    fn pickle(&self, name: &str) -> &str {
        super::frozen_pickle(&self.0, name)
    }

    fn inbound(&self, name: &str) -> InboundGroupSession {
        InboundGroupSession::from_pickle(self.pickle(name), &pickle_key())
            .unwrap_or_else(|e| panic!("frozen pickle {name} no longer restores: {e}"))
    }

    fn outbound(&self, name: &str) -> OutboundGroupSession {
        OutboundGroupSession::from_pickle(self.pickle(name), &pickle_key())
            .unwrap_or_else(|e| panic!("frozen pickle {name} no longer restores: {e}"))
    }

    fn identity(&self, who: &str) -> IdentityKeys {
        serde_json::from_value(self.0[who]["identity_keys"].clone()).unwrap()
    }
}

/// Decrypts frozen message `name` with `session` and checks the plaintext,
/// the index and the trust flag.
fn check_decrypts(
    frozen: &Frozen,
    session: &mut InboundGroupSession,
    name: &str,
    authenticated: bool,
) {
    let message = frozen.message(name);
    let decrypted = session
        .decrypt(ROOM, &message)
        .unwrap_or_else(|e| panic!("frozen {name} does not decrypt: {e}"));
    assert_eq!(decrypted.plaintext, frozen.plaintext(name), "{name}");
    assert_eq!(decrypted.message_index, message.message_index(), "{name}");
    assert_eq!(decrypted.authenticated, authenticated, "{name}");
}

fn unknown_index(index: u32, first_known: u32) -> GroupError {
    GroupError::UnknownIndex { index, first_known }
}

#[test]
fn frozen_messages_decrypt_with_frozen_state() {
    let frozen = Frozen(load_frozen());
    let key = pickle_key();
    assert_eq!(frozen.str("/room_id"), ROOM);
    let session_id = frozen.str("/session_id");
    let names = ["g0", "g1", "g2", "g3"];

    // Every message, key and export decodes and re-encodes to the same text.
    for entry in frozen.0["messages"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let message = frozen.message(name);
        assert_eq!(message.to_base64(), entry["base64"], "{name} re-encodes");
        assert_eq!(message.message_index(), entry["index"], "{name}.index");
        assert_eq!(message.to_bytes().len() as u64, entry["length"], "{name}");
        assert_eq!(
            b64(&message.to_bytes()[5..21]),
            entry["salt"],
            "{name}.salt"
        );
    }
    for entry in frozen.0["session_keys"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let session_key = frozen.session_key(name);
        assert_eq!(*session_key.to_base64(), entry["base64"], "{name}");
        assert_eq!(session_key.first_index(), entry["index"], "{name}.index");
        assert_eq!(session_key.creator(), frozen.identity("alice"), "{name}");
        assert_eq!(session_key.room_id(), ROOM, "{name}");
        assert_eq!(session_key.session_id().to_base64(), session_id, "{name}");
        // A session key is not an export: 130 + n bytes follow the export.
        assert_eq!(
            ExportedSessionKey::from_bytes(&session_key.to_bytes()).unwrap_err(),
            DecodeError::TrailingBytes(130 + ROOM.len()),
            "{name}"
        );
        let inbound = InboundGroupSession::new(&session_key)
            .unwrap_or_else(|e| panic!("frozen {name} no longer verifies: {e}"));
        assert_eq!(inbound.session_id().to_base64(), session_id);
    }
    for entry in frozen.0["exports"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let export = frozen.export(name);
        assert_eq!(*export.to_base64(), entry["base64"], "{name}");
        assert_eq!(export.first_index(), entry["index"], "{name}.index");
    }

    // The signed key at index 0 reads everything, in any order, and again.
    let mut from_0 = InboundGroupSession::new(&frozen.session_key("session_key_0")).unwrap();
    assert!(from_0.is_authenticated());
    for name in ["g3", "g0", "g2", "g1", "g3"] {
        check_decrypts(&frozen, &mut from_0, name, true);
    }
    // ... and in one batch.
    let messages: Vec<GroupMessage> = names.iter().map(|n| frozen.message(n)).collect();
    let mut batch = InboundGroupSession::new(&frozen.session_key("session_key_0")).unwrap();
    for (name, result) in names.iter().zip(batch.decrypt_batch(ROOM, &messages)) {
        let decrypted = result.unwrap_or_else(|e| panic!("batch {name}: {e}"));
        assert_eq!(decrypted.plaintext, frozen.plaintext(name), "batch {name}");
    }
    // Another room id fails.
    assert_eq!(
        from_0
            .decrypt("!other:example.org", &messages[0])
            .unwrap_err(),
        GroupError::Authentication
    );
    // Re-exporting reproduces the frozen exports.
    for name in ["export_1", "export_far"] {
        let index = frozen.export(name).first_index();
        assert_eq!(
            *from_0.export_at(index).unwrap().to_base64(),
            *frozen.export(name).to_base64(),
            "re-exporting {name}"
        );
    }

    // The key at index 3 (a late joiner) cannot read g0 to g2.
    let mut from_3 = InboundGroupSession::new(&frozen.session_key("session_key_3")).unwrap();
    for (name, index) in [("g0", 0), ("g1", 1), ("g2", 2)] {
        assert_eq!(
            from_3.decrypt(ROOM, &frozen.message(name)).unwrap_err(),
            unknown_index(index, 3)
        );
    }
    check_decrypts(&frozen, &mut from_3, "g3", true);

    // Imported keys are not authenticated.
    let mut from_export = InboundGroupSession::import(&frozen.export("export_1"));
    assert_eq!(
        from_export.decrypt(ROOM, &messages[0]).unwrap_err(),
        unknown_index(0, 1)
    );
    for name in ["g1", "g2", "g3"] {
        check_decrypts(&frozen, &mut from_export, name, false);
    }
    let far = InboundGroupSession::import(&frozen.export("export_far"));
    assert_eq!(far.first_known_index(), FAR_INDEX);
    assert!(!far.is_authenticated());

    // Pickles restore at their generation and re-pickle to the same text
    // (and generation) with the same seed.
    for entry in frozen.0["pickles"]["entries"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let seed = u8::try_from(entry["nonce_rng_seed"].as_u64().unwrap()).unwrap();
        let generation = entry["generation"].as_u64().unwrap();
        let text = entry["pickle"].as_str().unwrap();
        assert_eq!(pickle_generation(text), Ok(generation), "{name}.generation");
        let (again, at) = match entry["kind"].as_str().unwrap() {
            "outbound-group-session" => {
                let session = frozen.outbound(name);
                (
                    session.pickle_with_rng(&key, &mut rng(seed)),
                    session.pickle_generation(),
                )
            }
            "inbound-group-session" => {
                let session = frozen.inbound(name);
                (
                    session.pickle_with_rng(&key, &mut rng(seed)),
                    session.pickle_generation(),
                )
            }
            other => panic!("unknown pickle kind {other}"),
        };
        assert_eq!(again, text, "pickle {name} does not round-trip");
        assert_eq!(at, generation, "{name}: generation after re-pickling");
    }
    for (name, first_known, authenticated_from) in [
        ("inbound_session_key_0", 0, Some(0)),
        ("inbound_imported_far", FAR_INDEX, None),
        ("inbound_merged", 1, Some(3)),
        ("inbound_advanced_to_2", 2, Some(2)),
    ] {
        let session = frozen.inbound(name);
        assert_eq!(session.first_known_index(), first_known, "{name}");
        assert_eq!(session.authenticated_from(), authenticated_from, "{name}");
        assert_eq!(
            session.is_authenticated(),
            authenticated_from.is_some(),
            "{name}"
        );
        assert_eq!(session.session_id().to_base64(), session_id, "{name}");
        if authenticated_from.is_some() {
            assert_eq!(session.creator(), Some(frozen.identity("alice")), "{name}");
            assert_eq!(session.room_id(), Some(ROOM), "{name}");
        }
    }
    // The merged key: the unsigned prefix reads g1 and g2 as not
    // authenticated, the signed key reads g3 as authenticated.
    let mut merged = frozen.inbound("inbound_merged");
    check_decrypts(&frozen, &mut merged, "g1", false);
    check_decrypts(&frozen, &mut merged, "g2", false);
    check_decrypts(&frozen, &mut merged, "g3", true);
    let mut advanced = frozen.inbound("inbound_advanced_to_2");
    assert_eq!(
        advanced.decrypt(ROOM, &messages[1]).unwrap_err(),
        unknown_index(1, 2)
    );
    check_decrypts(&frozen, &mut advanced, "g2", true);

    // The fresh outbound pickle gives back the signed key at index 0 and
    // re-encrypts g0 to g2 to the same bytes with the recorded salt seeds
    // (the salt is the only randomness encryption draws; signing draws
    // none); the later one continues at index 514.
    let mut out = frozen.outbound("outbound_new");
    assert_eq!((out.room_id(), out.message_index()), (ROOM, 0));
    assert_eq!(out.creator(), frozen.identity("alice"));
    assert_eq!(out.session_id().to_base64(), session_id);
    assert_eq!(
        *out.session_key().to_base64(),
        *frozen.session_key("session_key_0").to_base64()
    );
    for name in ["g0", "g1", "g2"] {
        let salt_seed = frozen.named("messages", name)["salt_rng_seed"]
            .as_u64()
            .unwrap();
        let again = out
            .encrypt_with_rng(
                frozen.plaintext(name),
                &mut rng(u8::try_from(salt_seed).unwrap()),
            )
            .unwrap();
        assert_eq!(
            again.to_base64(),
            frozen.message(name).to_base64(),
            "{name}"
        );
    }
    assert_eq!(
        *out.session_key().to_base64(),
        *frozen.session_key("session_key_3").to_base64()
    );
    let mut later = frozen.outbound("outbound_after_g3");
    assert_eq!(later.message_index(), JUMP_INDEX + 1);
    let next = later.encrypt(b"next").unwrap();
    let decrypted = from_0.decrypt(ROOM, &next).unwrap();
    assert_eq!(
        (decrypted.plaintext.as_slice(), decrypted.message_index),
        (&b"next"[..], JUMP_INDEX + 1)
    );

    // The room-key share decodes to its parts and re-encodes.
    let alice = frozen.identity("alice");
    let bob = frozen.identity("bob");
    let share_bytes = unb64(frozen.str("/room_key_share/base64"));
    let share = RoomKeyShare::from_bytes(&share_bytes).unwrap();
    assert_eq!(share.room_id, ROOM);
    assert_eq!(
        (
            share.sender_user_id.as_str(),
            share.sender_device_id.as_str()
        ),
        (ALICE_USER, ALICE_DEVICE)
    );
    assert_eq!((share.sender, share.recipient), (alice, bob));
    assert_eq!(
        *share.session_key.to_base64(),
        *frozen.session_key("session_key_3").to_base64()
    );
    assert_eq!(share.session_id().to_base64(), session_id);
    assert_eq!(*share.to_bytes(), share_bytes);

    // Receipt checks (12.1), against the frozen pairwise sessions of the
    // same two accounts: Bob's session has Alice as its peer, Alice's has
    // Bob. The frozen share passes on Bob's side.
    let pairwise = super::Frozen(super::load_frozen());
    let bob_session = pairwise.session("bob_session_final");
    let alice_session = pairwise.session("alice_session_final");
    assert_eq!(bob_session.peer_identity(), alice);
    share.check(&bob_session, &bob).unwrap();
    assert_eq!(
        share.check(&bob_session, &alice).unwrap_err(),
        RoomError::ShareNotForUs
    );
    // Alice's key passed on by Bob as his own: Bob is the pairwise peer but
    // not the creator the key names.
    let reshared = RoomKeyShare {
        sender: bob,
        recipient: alice,
        ..share.clone()
    };
    assert_eq!(alice_session.peer_identity(), bob);
    assert_eq!(
        reshared.check(&alice_session, &alice).unwrap_err(),
        RoomError::ShareSenderMismatch
    );
    // Alice's own share, received over a session whose peer is not Alice.
    assert_eq!(
        RoomKeyShare {
            recipient: alice,
            ..share.clone()
        }
        .check(&alice_session, &alice)
        .unwrap_err(),
        RoomError::ShareSenderMismatch
    );
    // The key moved to another room.
    let moved = RoomKeyShare {
        room_id: "!other:example.org".to_owned(),
        ..share.clone()
    };
    assert_eq!(
        moved.check(&bob_session, &bob).unwrap_err(),
        RoomError::ShareRoomMismatch
    );
    let moved_bytes = moved.to_bytes();
    assert_eq!(
        RoomKeyShare::from_bytes(&moved_bytes)
            .unwrap()
            .check(&bob_session, &bob)
            .unwrap_err(),
        RoomError::ShareRoomMismatch
    );

    // The envelope parses, re-serializes identically, and decrypts through
    // the inbound key store; the same index under another event id is a
    // replay.
    let json_text = frozen.str("/encrypted_event/json");
    let envelope = EncryptedEvent::from_json(json_text).unwrap();
    assert_eq!(envelope.to_json(), json_text);
    assert_eq!(envelope.algorithm, ROOM_ALGORITHM);
    assert_eq!(envelope.sender_key, alice.curve25519);
    assert_eq!(envelope.ciphertext, messages[0]);
    let mut store = InboundKeyStore::new();
    store
        .add_shared(
            ROOM,
            InboundGroupSession::new(&frozen.session_key("session_key_0")).unwrap(),
            ALICE_USER,
            ALICE_DEVICE,
        )
        .unwrap();
    let event_id = frozen.str("/encrypted_event/event_id");
    for _ in 0..2 {
        let event = store.decrypt(ROOM, event_id, &envelope).unwrap();
        assert_eq!(event.event_type, "m.room.message");
        assert_eq!(
            event.content,
            json!({"body": "Hello, room", "msgtype": "m.text"})
        );
        assert_eq!((event.sender, event.message_index), (alice, 0));
        assert_eq!(event.sender_user_id.as_deref(), Some(ALICE_USER));
        assert_eq!(event.sender_device_id.as_deref(), Some(ALICE_DEVICE));
        assert!(event.authenticated);
    }
    assert_eq!(
        store
            .decrypt(ROOM, "$another:example.org", &envelope)
            .unwrap_err(),
        RoomError::Replay { index: 0 }
    );

    // An endpoint encrypting the same event produces a plaintext of the
    // same length as g0 (its keys are random, so only the length compares).
    let mut endpoint = Endpoint::new("@alice:example.org", "ALICELAPTOP").unwrap();
    endpoint.share_room_key(ROOM, &[]).unwrap();
    let content = json!({"body": "Hello, room", "msgtype": "m.text"});
    let live = endpoint
        .encrypt_event(ROOM, "m.room.message", &content)
        .unwrap();
    assert_eq!(
        live.ciphertext.to_bytes().len(),
        messages[0].to_bytes().len()
    );
    assert_eq!(frozen.0["protocol_version"], 2);
}

// ---------------------------------------------------------------------------
// Conformance: the frozen bytes re-derived from PROTOCOL.md alone
// ---------------------------------------------------------------------------

/// A second reading of PROTOCOL.md sections 11 and 12 with the primitive
/// crates only (through the pairwise `spec` module); nothing here calls
/// roomseal.
mod group_spec {
    use super::spec::{self, arr};

    pub(super) const GROUP_RATCHET: [&[u8]; 4] = [
        b"roomseal/v2/group/ratchet/0",
        b"roomseal/v2/group/ratchet/1",
        b"roomseal/v2/group/ratchet/2",
        b"roomseal/v2/group/ratchet/3",
    ];
    pub(super) const GROUP_MESSAGE_KEY: &[u8] = b"roomseal/v2/group/message-key";
    pub(super) const GROUP_MESSAGE_AD: &[u8] = b"roomseal/v2/group/message-ad";
    pub(super) const GROUP_MESSAGE_SIGNATURE: &[u8] = b"roomseal/v2/group/message-signature";
    pub(super) const GROUP_SESSION_KEY: &[u8] = b"roomseal/v2/group/session-key";

    /// The ratchet: four 32-byte parts at an index.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(super) struct Ratchet {
        pub(super) parts: [[u8; 32]; 4],
        pub(super) index: u32,
        /// HMAC-SHA-256 calls made so far (to check the cost bound).
        pub(super) hmacs: u32,
    }

    impl Ratchet {
        pub(super) fn new(bytes: &[u8], index: u32) -> Self {
            Self {
                parts: std::array::from_fn(|p| arr(&bytes[32 * p..32 * (p + 1)])),
                index,
                hmacs: 0,
            }
        }

        pub(super) fn bytes(&self) -> Vec<u8> {
            self.parts.concat()
        }

        /// `R_p = HMAC(R_p, GROUP_RATCHET[p])`.
        fn advance_part(&mut self, p: usize) {
            self.parts[p] = spec::hmac(&self.parts[p], GROUP_RATCHET[p]);
            self.hmacs += 1;
        }

        /// `R_q = HMAC(R_p, GROUP_RATCHET[q])` for every lower part `q > p`.
        fn rederive_below(&mut self, p: usize) {
            let seed = self.parts[p];
            for (part, label) in self.parts.iter_mut().zip(GROUP_RATCHET).skip(p + 1) {
                *part = spec::hmac(&seed, label);
                self.hmacs += 1;
            }
        }

        /// The tick rule, one index at a time: the part of the most
        /// significant byte that changes ticks once, and every lower part is
        /// re-derived from it.
        pub(super) fn step(&mut self) {
            let next = self.index + 1;
            let p = (0..4)
                .find(|&p| (next >> (24 - 8 * p)) != (self.index >> (24 - 8 * p)))
                .unwrap();
            self.advance_part(p);
            self.rederive_below(p);
            self.index = next;
        }

        /// The jump algorithm: for each part from R0 to R3, tick it as many
        /// times as its byte of the index must grow (lower parts are
        /// re-derived after the last tick only), then clear the lower bytes.
        pub(super) fn jump(&mut self, target: u32) {
            assert!(target >= self.index);
            for p in 0..4 {
                let shift = 24 - 8 * p as u32;
                let ticks = (target >> shift) - (self.index >> shift);
                assert!(ticks <= 255);
                if ticks > 0 {
                    for _ in 0..ticks {
                        self.advance_part(p);
                    }
                    self.rederive_below(p);
                    self.index = (target >> shift) << shift;
                }
            }
            self.index = target;
        }

        /// HKDF(salt = the message's salt, R0 || R1 || R2 || R3,
        /// GROUP_MESSAGE_KEY, 44).
        pub(super) fn message_key(&self, salt: &[u8; 16]) -> ([u8; 32], [u8; 12]) {
            let okm: [u8; 44] = spec::hkdf(Some(salt), &self.bytes(), GROUP_MESSAGE_KEY);
            (arr(&okm[..32]), arr(&okm[32..]))
        }
    }

    /// GROUP_MESSAGE_AD || BE16(len) || room id || session id || 0x02 ||
    /// BE32(index).
    pub(super) fn associated_data(room: &str, session_id: &[u8; 32], index: u32) -> Vec<u8> {
        [
            GROUP_MESSAGE_AD,
            &(room.len() as u16).to_be_bytes(),
            room.as_bytes(),
            session_id,
            &[2],
            &index.to_be_bytes(),
        ]
        .concat()
    }

    /// An export: version || BE32(index) || ratchet [128] || Ed25519 key.
    pub(super) struct Export {
        pub(super) ratchet: Ratchet,
        pub(super) signing_key: [u8; 32],
    }

    pub(super) fn export(bytes: &[u8]) -> Export {
        assert_eq!(bytes.len(), 165, "export length");
        assert_eq!(bytes[0], 2, "export version");
        Export {
            ratchet: Ratchet::new(&bytes[5..133], u32::from_be_bytes(arr(&bytes[1..5]))),
            signing_key: arr(&bytes[133..165]),
        }
    }

    /// A session key: an export, the creating device's identity keys
    /// (Ed25519 then X25519), short(room id), then a signature by the key
    /// inside over GROUP_SESSION_KEY || everything before the signature.
    pub(super) struct SessionKey {
        pub(super) export: Export,
        pub(super) creator: [u8; 64],
        pub(super) room: String,
    }

    pub(super) fn session_key(bytes: &[u8]) -> SessionKey {
        let mut c = spec::Cursor(bytes);
        let export = export(&c.take(165));
        let creator = arr(&c.take(64));
        let len = c.u16();
        assert!((1..=255).contains(&len), "session key room id length");
        let room = String::from_utf8(c.take(usize::from(len))).unwrap();
        let signature = c.take(64);
        c.end();
        assert_eq!(bytes.len(), 295 + room.len(), "session key length");
        let unsigned = &bytes[..bytes.len() - 64];
        spec::verify(
            &export.signing_key,
            &[GROUP_SESSION_KEY, unsigned].concat(),
            &signature,
        );
        SessionKey {
            export,
            creator,
            room,
        }
    }

    /// A group message: version || BE32(index) || salt [16] || ciphertext
    /// and tag || signature over GROUP_MESSAGE_SIGNATURE || everything
    /// before it (the salt included).
    pub(super) struct Message {
        pub(super) index: u32,
        pub(super) salt: [u8; 16],
        pub(super) sealed: Vec<u8>,
    }

    pub(super) fn message(bytes: &[u8], signing_key: &[u8; 32]) -> Message {
        assert_eq!(bytes[0], 2, "group message version");
        let body = bytes.len() - 64;
        spec::verify(
            signing_key,
            &[GROUP_MESSAGE_SIGNATURE, &bytes[..body]].concat(),
            &bytes[body..],
        );
        Message {
            index: u32::from_be_bytes(arr(&bytes[1..5])),
            salt: arr(&bytes[5..21]),
            sealed: bytes[21..body].to_vec(),
        }
    }

    /// A short (BE16-length-prefixed) UTF-8 id of 1 to 255 bytes.
    pub(super) fn id(c: &mut spec::Cursor<'_>) -> String {
        let len = c.u16();
        assert!((1..=255).contains(&len), "id length");
        String::from_utf8(c.take(usize::from(len))).unwrap()
    }

    /// Inbound pickle contents: key, then the authenticated ratchet (flag;
    /// BE32 index, ratchet, the creator's identity keys and short(room id)
    /// its signed key named) and the unsigned prefix before it (flag;
    /// BE32 index, ratchet).
    pub(super) struct Inbound {
        pub(super) key: [u8; 32],
        pub(super) authenticated: Option<(Ratchet, [u8; 64], String)>,
        pub(super) prefix: Option<Ratchet>,
    }

    pub(super) fn inbound(contents: &[u8]) -> Inbound {
        let mut c = spec::Cursor(contents);
        let inbound = read_inbound(&mut c);
        c.end();
        inbound
    }

    pub(super) fn read_inbound(c: &mut spec::Cursor<'_>) -> Inbound {
        fn ratchet(c: &mut spec::Cursor<'_>) -> Ratchet {
            let index = c.u32();
            Ratchet::new(&c.take(128), index)
        }
        let key = c.a32();
        let authenticated = c.flag().then(|| (ratchet(c), arr(&c.take(64)), id(c)));
        let prefix = c.flag().then(|| ratchet(c));
        if let (Some((a, ..)), Some(p)) = (&authenticated, &prefix) {
            assert!(
                p.index < a.index,
                "the prefix comes before the signed ratchet"
            );
        }
        Inbound {
            key,
            authenticated,
            prefix,
        }
    }

    /// Outbound pickle contents: short(room id) || creator's identity keys
    /// [64] || Ed25519 seed || BE32(index) || ratchet.
    pub(super) struct Outbound {
        pub(super) room: String,
        pub(super) creator: [u8; 64],
        pub(super) seed: [u8; 32],
        pub(super) ratchet: Ratchet,
    }

    pub(super) fn outbound(contents: &[u8]) -> Outbound {
        let mut c = spec::Cursor(contents);
        let outbound = read_outbound(&mut c);
        c.end();
        assert_eq!(contents.len(), 230 + outbound.room.len());
        outbound
    }

    pub(super) fn read_outbound(c: &mut spec::Cursor<'_>) -> Outbound {
        let len = c.u16();
        assert!((1..=255).contains(&len), "outbound room id length");
        let room = String::from_utf8(c.take(usize::from(len))).unwrap();
        let creator = arr(&c.take(64));
        let seed = c.a32();
        let index = c.u32();
        let ratchet = Ratchet::new(&c.take(128), index);
        Outbound {
            room,
            creator,
            seed,
            ratchet,
        }
    }

    /// A room-key share: version 2, payload type 1, short(room id),
    /// short(sender user id), short(sender device id), sender [64],
    /// recipient [64], session key. Its consistency rules (12.1): the session
    /// key names the share's sender as its creator and the share's room as
    /// its room.
    pub(super) struct Share {
        pub(super) room: String,
        pub(super) user_id: String,
        pub(super) device_id: String,
        pub(super) sender: [u8; 64],
        pub(super) recipient: [u8; 64],
        pub(super) session_key: SessionKey,
    }

    pub(super) fn share(bytes: &[u8]) -> Share {
        let mut c = spec::Cursor(bytes);
        assert_eq!((c.u8(), c.u8()), (2, 1), "share version and payload type");
        let room = id(&mut c);
        let user_id = id(&mut c);
        let device_id = id(&mut c);
        let sender = arr(&c.take(64));
        let recipient = arr(&c.take(64));
        let session_key = session_key(c.0);
        assert_eq!(
            bytes.len(),
            427 + 2 * room.len() + 2 + user_id.len() + 2 + device_id.len(),
            "share length"
        );
        Share {
            room,
            user_id,
            device_id,
            sender,
            recipient,
            session_key,
        }
    }

    /// An optional id: flag, then a short id.
    fn optional_id(c: &mut spec::Cursor<'_>) -> Option<String> {
        c.flag().then(|| id(c))
    }

    /// A stored room key inside an endpoint pickle.
    pub(super) struct StoredKey {
        pub(super) room: String,
        pub(super) sender: [u8; 64],
        pub(super) user_id: Option<String>,
        pub(super) device_id: Option<String>,
        pub(super) session: Inbound,
        pub(super) floor: u32,
        pub(super) replay: Vec<(u32, [u8; 32])>,
    }

    /// A device an outbound room's key was offered to.
    pub(super) struct Recipient {
        pub(super) identity: [u8; 64],
        pub(super) user_id: String,
        pub(super) device_id: String,
        pub(super) first_index: u32,
        pub(super) sent: bool,
    }

    /// An outbound room inside an endpoint pickle.
    pub(super) struct OutboundRoom {
        pub(super) session: Outbound,
        pub(super) created_ms: u64,
        pub(super) recipients: Vec<Recipient>,
        /// The signed session keys offered (as 11.6 encodes them).
        pub(super) offered: Vec<SessionKey>,
    }

    /// A peer device inside an endpoint pickle.
    pub(super) struct Peer {
        pub(super) identity: [u8; 64],
        pub(super) user_id: Option<String>,
        pub(super) device_id: Option<String>,
        pub(super) known: bool,
        pub(super) needs_new_session: bool,
        pub(super) sessions: Vec<spec::SessionContents>,
    }

    /// Endpoint pickle contents (12.6).
    pub(super) struct Endpoint {
        pub(super) user_id: String,
        pub(super) device_id: String,
        pub(super) account: spec::AccountContents,
        pub(super) peers: Vec<Peer>,
        pub(super) outbound: Vec<OutboundRoom>,
        pub(super) keys: Vec<StoredKey>,
        pub(super) discarded: Vec<(String, u8)>,
        pub(super) policy: (u32, u64),
    }

    pub(super) fn endpoint(contents: &[u8]) -> Endpoint {
        let mut c = spec::Cursor(contents);
        let user_id = id(&mut c);
        let device_id = id(&mut c);
        let account = spec::read_account(&mut c);
        let peers = (0..c.u32())
            .map(|_| {
                let identity = arr(&c.take(64));
                let user_id = optional_id(&mut c);
                let device_id = optional_id(&mut c);
                let known = c.flag();
                let needs_new_session = c.flag();
                let count = c.u16();
                assert!((1..=8).contains(&count), "sessions per peer");
                let sessions = (0..count).map(|_| spec::read_session(&mut c)).collect();
                Peer {
                    identity,
                    user_id,
                    device_id,
                    known,
                    needs_new_session,
                    sessions,
                }
            })
            .collect();
        let outbound = (0..c.u32())
            .map(|_| OutboundRoom {
                session: read_outbound(&mut c),
                created_ms: c.u64(),
                recipients: (0..c.u32())
                    .map(|_| Recipient {
                        identity: arr(&c.take(64)),
                        user_id: id(&mut c),
                        device_id: id(&mut c),
                        first_index: c.u32(),
                        sent: c.flag(),
                    })
                    .collect(),
                offered: (0..c.u32())
                    .map(|_| {
                        let len = c.u32() as usize;
                        session_key(&c.take(len))
                    })
                    .collect(),
            })
            .collect();
        let keys = (0..c.u32())
            .map(|_| StoredKey {
                room: id(&mut c),
                sender: arr(&c.take(64)),
                user_id: optional_id(&mut c),
                device_id: optional_id(&mut c),
                session: read_inbound(&mut c),
                floor: c.u32(),
                replay: (0..c.u32()).map(|_| (c.u32(), c.a32())).collect(),
            })
            .collect();
        // Rooms whose outbound session was dropped, with the reason's code.
        let discarded = (0..c.u32()).map(|_| (id(&mut c), c.u8())).collect();
        // The rotation policy: messages, then the age in milliseconds.
        let policy = (c.u32(), c.u64());
        c.end();
        Endpoint {
            user_id,
            device_id,
            account,
            peers,
            outbound,
            keys,
            discarded,
            policy,
        }
    }
}

#[test]
fn frozen_vectors_follow_protocol_md() {
    let frozen = Frozen(load_frozen());
    let pk = pickle_key_bytes();
    let session_id = super::key32(frozen.str("/session_id"));
    let pickle = |name: &str, kind: &str| spec::open_pickle(frozen.pickle(name), &pk, kind);
    let bytes_of = |list: &str, name: &str| {
        let entry = frozen.named(list, name);
        let bytes = unb64(entry["base64"].as_str().unwrap());
        assert_eq!(bytes.len() as u64, entry["length"], "{name}.length");
        bytes
    };

    let identity = |who: &str| -> [u8; 64] {
        spec::arr(
            &[
                super::key32(frozen.str(&format!("/{who}/identity_keys/ed25519"))),
                super::key32(frozen.str(&format!("/{who}/identity_keys/curve25519"))),
            ]
            .concat(),
        )
    };
    let alice = identity("alice");

    // The fresh outbound session: Alice's identity keys as its creator; its
    // Ed25519 seed gives the session id.
    let new = group_spec::outbound(&pickle("outbound_new", "outbound-group-session"));
    assert_eq!((new.room.as_str(), new.creator), (ROOM, alice));
    assert_eq!(spec::ed25519_public(&new.seed), session_id);
    let (seed, start) = (new.seed, new.ratchet);
    assert_eq!(start.index, 0);

    // Signed session keys: export || creator || short(room id) ||
    // signature over the label and all of that; the ratchet at index 3 is
    // three ticks of part R3.
    let key0 = group_spec::session_key(&bytes_of("session_keys", "session_key_0"));
    assert_eq!(
        (key0.export.ratchet.clone(), key0.export.signing_key),
        (start.clone(), session_id)
    );
    assert_eq!((key0.creator, key0.room.as_str()), (alice, ROOM));
    let key3 = group_spec::session_key(&bytes_of("session_keys", "session_key_3"));
    assert_eq!((key3.creator, key3.room.as_str()), (alice, ROOM));
    let mut stepped = start.clone();
    for _ in 0..3 {
        stepped.step();
    }
    assert_eq!(key3.export.ratchet.parts, stepped.parts);
    assert_eq!(key3.export.ratchet.index, 3);
    assert_eq!(stepped.hmacs, 3);
    // The signature covers the creator and the room: the bytes signed for
    // another creator or room do not verify.
    let key0_bytes = bytes_of("session_keys", "session_key_0");
    let (unsigned, signature) = key0_bytes.split_at(key0_bytes.len() - 64);
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&session_id).unwrap();
    let signature = ed25519_dalek::Signature::from_bytes(&spec::arr(signature));
    for (offset, what) in [(165, "creator"), (231, "room id")] {
        let mut altered = [group_spec::GROUP_SESSION_KEY, unsigned].concat();
        altered[group_spec::GROUP_SESSION_KEY.len() + offset] ^= 1;
        assert!(
            verifying.verify_strict(&altered, &signature).is_err(),
            "the session key's signature does not cover its {what}"
        );
    }

    // Stepping one index at a time and jumping agree; the jump to 513 costs
    // two ticks of R2 and one of R3, with R3 re-derived after the R2 ticks.
    let mut one_by_one = start.clone();
    while one_by_one.index < JUMP_INDEX {
        one_by_one.step();
    }
    let mut jumped = start.clone();
    jumped.jump(JUMP_INDEX);
    assert_eq!(
        (jumped.parts, jumped.index),
        (one_by_one.parts, one_by_one.index)
    );
    assert_eq!(jumped.hmacs, 2 + 1 + 1);

    // Messages: signature, message key and associated data.
    for entry in frozen.0["messages"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let message = group_spec::message(&bytes_of("messages", name), &session_id);
        assert_eq!(message.index, entry["index"], "{name}.index");
        let mut ratchet = start.clone();
        ratchet.jump(message.index);
        assert_eq!(b64(&message.salt), entry["salt"], "{name}.salt");
        let (key, nonce) = ratchet.message_key(&message.salt);
        let aad = group_spec::associated_data(ROOM, &session_id, message.index);
        // The same ratchet under another salt: another key and nonce.
        let (other_key, other_nonce) = ratchet.message_key(&[0u8; 16]);
        assert!(spec::try_open(&other_key, &other_nonce, &aad, &message.sealed).is_none());
        assert_eq!(
            spec::open(&key, &nonce, &aad, &message.sealed),
            frozen.plaintext(name),
            "{name} by the spec"
        );
        let elsewhere =
            group_spec::associated_data("!other:example.org", &session_id, message.index);
        assert!(spec::try_open(&key, &nonce, &elsewhere, &message.sealed).is_none());
    }

    // Exports: the ratchet at their index, no signature.
    let export_1 = group_spec::export(&bytes_of("exports", "export_1"));
    assert_eq!(
        (export_1.ratchet.index, export_1.signing_key),
        (1, session_id)
    );
    let mut one = start.clone();
    one.step();
    assert_eq!(export_1.ratchet.parts, one.parts);
    let far = group_spec::export(&bytes_of("exports", "export_far"));
    assert_eq!(far.ratchet.index, FAR_INDEX);
    let mut to_far = start.clone();
    to_far.jump(FAR_INDEX);
    assert_eq!(far.ratchet.parts, to_far.parts);
    assert_eq!(to_far.hmacs, (1 + 3) + (2 + 2) + (3 + 1) + 4);
    // Jumping in two pieces lands on the same state.
    let mut pieces = jumped.clone();
    pieces.jump(FAR_INDEX);
    assert_eq!(pieces.parts, to_far.parts);
    // The cost bound: any jump is at most 4 x 255 ticks plus 6 re-derivations.
    let mut worst = start.clone();
    worst.jump(u32::MAX);
    assert_eq!(worst.hmacs, 4 * 255 + 6);

    // The outbound pickle after g3: same creator and key, ratchet at 514.
    let after = group_spec::outbound(&pickle("outbound_after_g3", "outbound-group-session"));
    assert_eq!(
        (after.room.as_str(), after.creator, after.seed),
        (ROOM, alice, seed)
    );
    let mut expected = start.clone();
    expected.jump(JUMP_INDEX + 1);
    assert_eq!(
        (after.ratchet.parts, after.ratchet.index),
        (expected.parts, expected.index)
    );

    // Inbound pickles: key, the authenticated ratchet with the creator and
    // room its signed key named, and the unsigned prefix before it.
    let mut at_2 = start.clone();
    at_2.jump(2);
    let same =
        |a: &group_spec::Ratchet, b: &group_spec::Ratchet| (a.parts, a.index) == (b.parts, b.index);
    for (name, authenticated, prefix) in [
        ("inbound_session_key_0", Some(&start), None),
        ("inbound_imported_far", None, Some(&to_far)),
        ("inbound_merged", Some(&stepped), Some(&one)),
        ("inbound_advanced_to_2", Some(&at_2), None),
    ] {
        let stored = group_spec::inbound(&pickle(name, "inbound-group-session"));
        assert_eq!(stored.key, session_id, "{name}");
        match (&stored.authenticated, authenticated) {
            (Some((ratchet, creator, room)), Some(expected)) => {
                assert!(same(ratchet, expected), "{name}: authenticated ratchet");
                assert_eq!((creator, room.as_str()), (&alice, ROOM), "{name}");
            }
            (None, None) => {}
            _ => panic!("{name}: authenticated ratchet present or not"),
        }
        match (&stored.prefix, prefix) {
            (Some(ratchet), Some(expected)) => assert!(same(ratchet, expected), "{name}: prefix"),
            (None, None) => {}
            _ => panic!("{name}: prefix present or not"),
        }
    }

    // The room-key share: version, payload type 1, short(room id), the
    // sender's short(user id) and short(device id), sender and recipient
    // identity keys, signed session key; its sender is the session key's
    // creator and its room the session key's room.
    let share = unb64(frozen.str("/room_key_share/base64"));
    let short = |id: &str| [&(id.len() as u16).to_be_bytes()[..], id.as_bytes()].concat();
    let expected_share = [
        &[2u8, 1][..],
        &short(ROOM),
        &short(ALICE_USER),
        &short(ALICE_DEVICE),
        &alice,
        &identity("bob"),
        &bytes_of("session_keys", "session_key_3"),
    ]
    .concat();
    assert_eq!(share, expected_share);
    assert_eq!(
        share.len(),
        2 + 2 + ROOM.len() + 2 + ALICE_USER.len() + 2 + ALICE_DEVICE.len() + 128 + 295 + ROOM.len()
    );
    let parsed = group_spec::share(&share);
    assert_eq!(
        (parsed.user_id.as_str(), parsed.device_id.as_str()),
        (ALICE_USER, ALICE_DEVICE)
    );
    assert_eq!((parsed.sender, parsed.recipient), (alice, identity("bob")));
    assert_eq!(parsed.sender, parsed.session_key.creator);
    assert_eq!(parsed.room, parsed.session_key.room);

    // The envelope: four JSON fields, the algorithm string, the sending
    // device's X25519 key, the session id and the group message in base64;
    // the plaintext inside is {"type", "content"}.
    let envelope: Value = serde_json::from_str(frozen.str("/encrypted_event/json")).unwrap();
    let fields = envelope.as_object().unwrap();
    assert_eq!(fields.len(), 4);
    assert_eq!(envelope["algorithm"], "roomseal.v2.room");
    assert_eq!(
        envelope["sender_key"],
        frozen.str("/alice/identity_keys/curve25519")
    );
    assert_eq!(envelope["session_id"], b64(&session_id));
    assert_eq!(
        envelope["ciphertext"],
        frozen.named("messages", "g0")["base64"]
    );
    let event: Value = serde_json::from_slice(frozen.plaintext("g0")).unwrap();
    assert_eq!(event.as_object().unwrap().len(), 2);
    assert_eq!(event["type"], "m.room.message");
    assert!(event["content"].is_object());
}

/// The endpoint pickle's layout (12.6), read with the `group_spec` module.
/// Endpoints draw from the operating system's generator, so this is a
/// structural check, not a vector: two endpoints from the seeded accounts
/// exchange a room key and events, Bob's replay record overflows
/// `MAX_TRACKED_INDICES` once (giving a floor), and both pickles are parsed
/// field by field.
#[test]
fn endpoint_pickles_follow_protocol_md() {
    let frozen = Frozen(load_frozen());
    let key = pickle_key();
    let alice_account = Account::new_with_rng(&mut rng(seed::ALICE_ACCOUNT));
    let bob_account = Account::new_with_rng(&mut rng(seed::BOB_ACCOUNT));
    let mut alice =
        Endpoint::from_account("@alice:example.org", "ALICELAPTOP", alice_account).unwrap();
    let mut bob = Endpoint::from_account("@bob:example.org", "BOBPHONE", bob_account).unwrap();
    let (alice_keys, bob_keys) = (alice.identity_keys(), bob.identity_keys());
    assert_eq!(
        (alice_keys, bob_keys),
        (frozen.identity("alice"), frozen.identity("bob"))
    );
    let published = bob.keys_to_publish(2);
    bob.mark_keys_as_published(&published);
    let bob_device = alice
        .establish_session(&published.device_keys, &published.one_time_keys[0])
        .unwrap();
    alice.set_rotation_policy(RotationPolicy {
        max_messages: u32::MAX,
        max_age: std::time::Duration::MAX,
    });
    let outcome = alice.share_room_key(ROOM, &[bob_device]).unwrap();
    assert_eq!(alice.mark_room_key_sent(&outcome), 1);
    let received = bob
        .receive_device_message(
            "@alice:example.org",
            &outcome.messages[0].sender_key,
            &outcome.messages[0].message,
        )
        .unwrap();
    assert_eq!(received.sender, alice_keys);
    // A second room, shared with nobody and then discarded (a rotation is
    // pending for it).
    alice.share_room_key("!second:example.org", &[]).unwrap();
    assert!(alice.rotate_room_key("!second:example.org"));
    let tracked = roomseal::consts::MAX_TRACKED_INDICES;
    let content = json!({"body": "hi"});
    for i in 0..=tracked {
        let event = alice.encrypt_event(ROOM, "m.text", &content).unwrap();
        bob.decrypt_event(ROOM, &format!("$e{i}"), &event).unwrap();
    }
    let event_hash = |i: u32| spec::sha256(&[format!("$e{i}").as_bytes()]);
    let parse = |endpoint: &Endpoint| {
        group_spec::endpoint(&spec::open_pickle(
            &endpoint.pickle_with_rng(&key, &mut rng(200)),
            &pickle_key_bytes(),
            "endpoint",
        ))
    };
    let identity = |keys: IdentityKeys| -> [u8; 64] {
        spec::arr(&[*keys.ed25519.as_bytes(), *keys.curve25519.as_bytes()].concat())
    };

    // Alice: one peer (Bob: named, his bundle's ids, one session), one
    // outbound room with Bob as a confirmed recipient from index 0 and the
    // signed key he was offered, her own inbound copies of both rooms' keys
    // (authenticated, from index 0, no ids, no replay record), the
    // discarded room, and her policy.
    let a = parse(&alice);
    assert_eq!(
        (a.user_id.as_str(), a.device_id.as_str()),
        ("@alice:example.org", "ALICELAPTOP")
    );
    assert_eq!(
        spec::ed25519_public(&a.account.signing_seed),
        *alice_keys.ed25519.as_bytes()
    );
    assert_eq!(a.peers.len(), 1);
    let peer = &a.peers[0];
    assert_eq!(peer.identity, identity(bob_keys));
    assert_eq!(
        (peer.user_id.as_deref(), peer.device_id.as_deref()),
        (Some("@bob:example.org"), Some("BOBPHONE"))
    );
    assert!(peer.known && !peer.needs_new_session);
    assert_eq!(peer.sessions.len(), 1);
    assert_eq!(
        (peer.sessions[0].peer_ed25519, peer.sessions[0].peer_curve),
        (
            *bob_keys.ed25519.as_bytes(),
            *bob_keys.curve25519.as_bytes()
        )
    );
    assert_eq!(
        (peer.sessions[0].local_ed25519, peer.sessions[0].local_curve),
        (
            *alice_keys.ed25519.as_bytes(),
            *alice_keys.curve25519.as_bytes()
        )
    );
    assert_eq!(a.outbound.len(), 1);
    let room = &a.outbound[0];
    assert_eq!(
        (room.session.room.as_str(), room.session.creator),
        (ROOM, identity(alice_keys))
    );
    let session_id = spec::ed25519_public(&room.session.seed);
    assert_eq!(session_id, *outcome.session_id.as_bytes());
    assert_eq!(room.session.ratchet.index, tracked as u32 + 1);
    assert!(room.created_ms > 0);
    assert_eq!(room.recipients.len(), 1);
    let recipient = &room.recipients[0];
    assert_eq!(recipient.identity, identity(bob_keys));
    assert_eq!(
        (recipient.user_id.as_str(), recipient.device_id.as_str()),
        ("@bob:example.org", "BOBPHONE")
    );
    assert_eq!((recipient.first_index, recipient.sent), (0, true));
    assert_eq!(room.offered.len(), 1);
    let offered = &room.offered[0];
    assert_eq!(
        (offered.export.ratchet.index, offered.export.signing_key),
        (0, session_id)
    );
    assert_eq!(
        (offered.creator, offered.room.as_str()),
        (identity(alice_keys), ROOM)
    );
    assert_eq!(a.keys.len(), 2);
    let own = a
        .keys
        .iter()
        .find(|k| k.room == ROOM)
        .expect("the room's own key");
    assert_eq!(own.sender, identity(alice_keys));
    assert_eq!(
        (own.user_id.as_deref(), own.device_id.as_deref()),
        (None, None)
    );
    assert_eq!(own.session.key, session_id);
    let (ratchet, creator, own_room) = own.session.authenticated.as_ref().unwrap();
    assert_eq!(
        (ratchet.index, creator, own_room.as_str()),
        (0, &identity(alice_keys), ROOM)
    );
    assert!(own.session.prefix.is_none());
    assert_eq!((own.floor, own.replay.len()), (0, 0));
    // Reason code 6: a rotation was requested (12.6).
    assert_eq!(a.discarded, vec![("!second:example.org".to_owned(), 6)]);
    assert_eq!(a.policy, (u32::MAX, u64::MAX));

    // Bob: one peer (Alice: a stranger he never named, bound to the ids of
    // her share), no outbound room, Alice's key with her ids and a full
    // replay record: index 0 was dropped, the floor is 1 and the session
    // was advanced to it; the default policy.
    let b = parse(&bob);
    assert_eq!(b.peers.len(), 1);
    let peer = &b.peers[0];
    assert_eq!(peer.identity, identity(alice_keys));
    assert_eq!(
        (peer.user_id.as_deref(), peer.device_id.as_deref()),
        (Some("@alice:example.org"), Some("ALICELAPTOP"))
    );
    assert!(!peer.known && !peer.needs_new_session);
    assert!(b.outbound.is_empty());
    assert_eq!(b.keys.len(), 1);
    let stored = &b.keys[0];
    assert_eq!(
        (stored.room.as_str(), stored.sender),
        (ROOM, identity(alice_keys))
    );
    assert_eq!(
        (stored.user_id.as_deref(), stored.device_id.as_deref()),
        (Some("@alice:example.org"), Some("ALICELAPTOP"))
    );
    assert_eq!(stored.session.key, session_id);
    let (ratchet, _, _) = stored.session.authenticated.as_ref().unwrap();
    assert_eq!(ratchet.index, 1);
    assert!(stored.session.prefix.is_none());
    assert_eq!(stored.floor, 1);
    assert_eq!(stored.replay.len(), tracked);
    for (n, (index, hash)) in stored.replay.iter().enumerate() {
        let expected = n as u32 + 1;
        assert_eq!((*index, *hash), (expected, event_hash(expected)));
    }
    assert!(b.discarded.is_empty());
    assert_eq!(b.policy, (100, 7 * 24 * 60 * 60 * 1000));
}

#[test]
fn labels_are_distinct_and_prefix_free() {
    let all: Vec<&[u8]> = [
        spec::TRIPLE_DH,
        spec::ROOT,
        spec::CHAIN_MESSAGE,
        spec::CHAIN_NEXT,
        spec::MESSAGE_KEY,
        spec::SESSION_ID,
        spec::SESSION_AD,
        spec::SESSION_BINDING,
        spec::ONE_TIME_KEY,
        spec::FALLBACK_KEY,
        spec::DEVICE_KEYS,
        spec::APP_MESSAGE,
        spec::PICKLE,
        group_spec::GROUP_MESSAGE_KEY,
        group_spec::GROUP_MESSAGE_AD,
        group_spec::GROUP_MESSAGE_SIGNATURE,
        group_spec::GROUP_SESSION_KEY,
    ]
    .into_iter()
    .chain(group_spec::GROUP_RATCHET)
    .collect();
    for (i, a) in all.iter().enumerate() {
        for (j, b) in all.iter().enumerate() {
            assert!(
                i == j || !b.starts_with(a),
                "{} is a prefix of {}",
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            );
        }
    }
}

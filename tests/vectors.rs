//! Known-answer vectors for the native protocol, version 2.
//!
//! `tests/vectors/pairwise_v2.json` freezes the bytes of a whole pairwise
//! conversation: two accounts, Bob's signed device keys, one-time keys and
//! fallback key, an app-message signature, the session id, every message in
//! both directions (pre-key and normal, one delivered out of order) and the
//! pickles of both accounts and of both sessions at several points (with
//! their generations, and the account each session pickle is bound to).
//! Every random input (message salts included) comes from
//! `ChaCha20Rng::from_seed([seed; 32])`, a fresh generator per operation,
//! with the seed recorded in the file. The module
//! `group` (`tests/vectors/group.rs`) does the same for a group session and
//! the room-layer formats, in `tests/vectors/group_v2.json`.
//!
//! Three tests per file:
//!
//! - `regenerated_vectors_match_the_frozen_file` replays the scenario from
//!   the same seeds and compares the result with the file field by field;
//!   a failure names every field that changed.
//! - `frozen_messages_decrypt_with_frozen_state` goes the other way: it
//!   decodes each frozen message and decrypts it with accounts and sessions
//!   rebuilt from the frozen pickles, checks the frozen plaintexts, and
//!   checks that frozen state re-encrypts and re-pickles to the frozen bytes.
//! - `frozen_vectors_follow_protocol_md` re-derives the vectors with the
//!   primitive crates alone, following PROTOCOL.md (pickle envelope and
//!   contents, signed bytes, session id, binding signature, triple DH, root,
//!   chain and message-key derivations, AD binding and associated data,
//!   message layout), so the specification and the code cannot drift apart.
//!
//! The group module adds `endpoint_pickles_follow_protocol_md`, which
//! parses live endpoint pickles (not vectors: endpoints draw from the
//! operating system's generator) by the layout PROTOCOL.md gives.
//!
//! A changed vector means a change of the wire format, of the pickle format
//! or of a derivation: that is a protocol change and needs a new version. If
//! only the first test fails while the other two pass, the frozen bytes are
//! still read correctly and the likely cause is a change in how random bytes
//! are drawn (for example a dependency upgrade); still treat it as a
//! deliberate decision.
//!
//! To regenerate both files deliberately (and then review the diff and
//! update PROTOCOL.md's worked examples):
//!
//! ```text
//! ROOMSEAL_WRITE_VECTORS=1 cargo test --test vectors
//! ```

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::{
    Account, DeviceKeys, DeviceMessage, Ed25519Signature, IdentityKeys, PickleKey, Session,
    SignedOneTimeKey, pickle_generation,
};
use serde_json::{Value, json};

/// The group-session and room-layer vectors (`group_v2.json`).
#[path = "vectors/group.rs"]
mod group;

/// Set to `1` to rewrite the vector file instead of checking it.
const WRITE_ENV: &str = "ROOMSEAL_WRITE_VECTORS";

const ALICE_USER: &str = "@alice:example.org";
const ALICE_DEVICE: &str = "ALICELAPTOP";
const BOB_USER: &str = "@bob:example.org";
const BOB_DEVICE: &str = "BOBPHONE";

/// What Alice signs with `Account::sign` (an app-message signature).
const APP_MESSAGE: &str = "roomseal test vector: an app-defined statement";

/// The seed of every random draw, one generator per operation.
mod seed {
    pub(super) const ALICE_ACCOUNT: u8 = 1;
    pub(super) const BOB_ACCOUNT: u8 = 2;
    pub(super) const BOB_ONE_TIME_KEYS: u8 = 3;
    pub(super) const BOB_FALLBACK_KEY: u8 = 4;
    pub(super) const ALICE_OUTBOUND_SESSION: u8 = 5;
    pub(super) const BOB_INBOUND_SESSION: u8 = 6;
    /// `DECRYPT[i]` seeds the `decrypt_with_rng` call that receives message
    /// `m{i}` (entry 0 is unused: m0 creates Bob's session).
    pub(super) const DECRYPT: [u8; 8] = [0, 7, 8, 9, 10, 11, 12, 13];
    /// `SALT[i]` seeds the `encrypt_with_rng` call that makes message
    /// `m{i}` (its 16-byte salt).
    pub(super) const SALT: [u8; 8] = [30, 31, 32, 33, 34, 35, 36, 37];
}

/// When Bob's fallback key was made current (milliseconds since the epoch).
const BOB_FALLBACK_AT_MS: u64 = 1_700_000_000_000;

/// Number of one-time keys Bob generates and publishes.
const BOB_ONE_TIME_KEY_COUNT: usize = 3;

/// The pickle key of every pickle in the file: bytes 0x00, 0x01, ..., 0x1f.
fn pickle_key_bytes() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

fn pickle_key() -> PickleKey {
    PickleKey::from_bytes(&mut pickle_key_bytes())
}

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn vector_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/pairwise_v2.json")
}

fn b64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64Unpadded::encode_string(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    use base64ct::Encoding;
    base64ct::Base64Unpadded::decode_vec(text).unwrap()
}

fn identity_json(keys: IdentityKeys) -> Value {
    serde_json::to_value(keys).unwrap()
}

// ---------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------

/// Collects messages, pickles and the script while the scenario runs.
#[derive(Default)]
struct Recorder {
    script: Vec<String>,
    messages: Vec<Value>,
    pickles: Vec<Value>,
    next_pickle_seed: u8,
}

impl Recorder {
    fn step(&mut self, text: impl Into<String>) {
        self.script.push(text.into());
    }

    /// Encrypts and records message `m{index}` (its salt drawn from
    /// `seed::SALT[index]`); returns it for delivery.
    fn message(
        &mut self,
        from: &str,
        to: &str,
        plaintext: &str,
        session: &mut Session,
    ) -> DeviceMessage {
        let index = self.messages.len();
        let salt_seed = seed::SALT[index];
        let message = session
            .encrypt_with_rng(plaintext.as_bytes(), &mut rng(salt_seed))
            .unwrap();
        let name = format!("m{index}");
        self.step(format!("{from} encrypts {name}: {plaintext:?}"));
        let normal = message.normal();
        let mut entry = json!({
            "name": name,
            "from": from,
            "to": to,
            "plaintext": plaintext,
            "kind": if message.is_pre_key() { "pre_key" } else { "normal" },
            "ratchet_key": normal.ratchet_key().to_base64(),
            "previous_counter": normal.previous_counter(),
            "counter": normal.counter(),
            "salt_rng_seed": salt_seed,
            "salt": b64(&wire_salt(&message)),
            "length": message.to_bytes().len(),
            "base64": message.to_base64(),
        });
        if let DeviceMessage::PreKey(pre_key) = &message {
            entry["one_time_key"] = json!(pre_key.one_time_key().to_base64());
            entry["base_key"] = json!(pre_key.base_key().to_base64());
            entry["identity_keys"] = identity_json(pre_key.identity_keys());
            entry["session_id"] = json!(pre_key.session_id().to_base64());
        }
        self.messages.push(entry);
        message
    }

    /// Records how message `index` was received.
    fn received(&mut self, index: usize, by: &str, how: &str, seed: Option<u8>) {
        let entry = &mut self.messages[index];
        entry["received_with"] = json!(how);
        entry["receiver_rng_seed"] = json!(seed);
        let name = format!("m{index}");
        self.step(format!("{by} receives {name} ({how})"));
    }

    /// Pickles with the next nonce seed (100, 101, ...); a session pickle
    /// names its owner (the account it is bound to).
    fn pickle(
        &mut self,
        name: &str,
        kind: &str,
        when: &str,
        pickle: impl Fn(&mut ChaCha20Rng) -> String,
    ) {
        let seed = 100 + self.next_pickle_seed;
        self.next_pickle_seed += 1;
        let text = pickle(&mut rng(seed));
        self.step(format!("pickle {name}"));
        let mut entry = json!({
            "name": name,
            "kind": kind,
            "when": when,
            "nonce_rng_seed": seed,
            "generation": pickle_generation(&text).unwrap(),
            "pickle": text,
        });
        if kind == "session" {
            entry["owner"] = json!(name.split('_').next().unwrap());
        }
        self.pickles.push(entry);
    }
}

/// The 16-byte salt of a pairwise message (7.1: after the ratchet key and
/// the two counters).
fn wire_salt(message: &DeviceMessage) -> [u8; 16] {
    let bytes = message.to_bytes();
    let body = if message.is_pre_key() {
        &bytes[2 + 192..]
    } else {
        &bytes[2..]
    };
    body[40..56].try_into().unwrap()
}

/// Decrypts message `index` with its recorded seed and checks the plaintext.
fn receive(
    rec: &mut Recorder,
    session: &mut Session,
    index: usize,
    message: &DeviceMessage,
    by: &str,
    expected: &str,
) {
    let seed = seed::DECRYPT[index];
    let plaintext = session.decrypt_with_rng(message, &mut rng(seed)).unwrap();
    assert_eq!(plaintext, expected.as_bytes());
    rec.received(index, by, "decrypt_with_rng", Some(seed));
}

/// Runs the scenario and returns the vector document.
fn generate() -> Value {
    let key = pickle_key();
    let mut rec = Recorder::default();

    rec.step("alice: Account::new_with_rng");
    let alice = Account::new_with_rng(&mut rng(seed::ALICE_ACCOUNT));
    rec.step("bob: Account::new_with_rng");
    let mut bob = Account::new_with_rng(&mut rng(seed::BOB_ACCOUNT));
    rec.step(format!(
        "bob: generate_one_time_keys_with_rng({BOB_ONE_TIME_KEY_COUNT})"
    ));
    let generated = bob
        .generate_one_time_keys_with_rng(BOB_ONE_TIME_KEY_COUNT, &mut rng(seed::BOB_ONE_TIME_KEYS));
    assert!(generated.removed.is_empty());
    rec.step(format!(
        "bob: rotate_fallback_key_with_rng({BOB_FALLBACK_AT_MS})"
    ));
    assert_eq!(
        bob.rotate_fallback_key_with_rng(BOB_FALLBACK_AT_MS, &mut rng(seed::BOB_FALLBACK_KEY)),
        None
    );
    let alice_device_keys = alice.device_keys(ALICE_USER, ALICE_DEVICE).unwrap();
    rec.step("alice: sign an app message");
    let app_signature = alice.sign(APP_MESSAGE.as_bytes());
    let bob_device_keys = bob.device_keys(BOB_USER, BOB_DEVICE).unwrap();
    let bob_one_time_keys = bob.one_time_keys();
    let bob_fallback_key = bob.unpublished_fallback_key().unwrap();
    rec.step("bob: mark_keys_as_published(one_time_keys, fallback_key)");
    bob.mark_keys_as_published(
        &[
            &bob_one_time_keys[..],
            std::slice::from_ref(&bob_fallback_key),
        ]
        .concat(),
    );

    rec.pickle("alice_account", "account", "after creation", |r| {
        alice.pickle_with_rng(&key, r)
    });
    rec.pickle(
        "bob_account_published",
        "account",
        "after publishing its keys, before any session",
        |r| bob.pickle_with_rng(&key, r),
    );

    rec.step(
        "alice: verify Bob's device keys, create_outbound_session_with_rng from one_time_keys[0]",
    );
    let bob_verified = bob_device_keys.check_self_signature().unwrap();
    let mut a = alice
        .create_outbound_session_with_rng(
            &bob_verified,
            &bob_one_time_keys[0],
            &mut rng(seed::ALICE_OUTBOUND_SESSION),
        )
        .unwrap();
    rec.pickle(
        "alice_session_new",
        "session",
        "Alice's outbound session before its first message",
        |r| a.pickle_with_rng(&key, r),
    );

    let m0 = rec.message("alice", "bob", "Hello, Bob", &mut a);
    let m1 = rec.message("alice", "bob", "", &mut a);

    let DeviceMessage::PreKey(p0) = &m0 else {
        panic!("m0 must be a pre-key message")
    };
    let created = bob
        .create_inbound_session_with_rng(p0, &mut rng(seed::BOB_INBOUND_SESSION))
        .unwrap();
    assert_eq!(created.plaintext, b"Hello, Bob");
    let mut b = created.session;
    rec.received(
        0,
        "bob",
        "create_inbound_session_with_rng",
        Some(seed::BOB_INBOUND_SESSION),
    );
    assert_eq!(b.session_id(), a.session_id());
    rec.pickle(
        "bob_account_after_inbound",
        "account",
        "after creating the inbound session (one-time key 0 removed)",
        |r| bob.pickle_with_rng(&key, r),
    );
    rec.pickle(
        "bob_session_new",
        "session",
        "Bob's inbound session right after m0, before m1",
        |r| b.pickle_with_rng(&key, r),
    );

    receive(&mut rec, &mut b, 1, &m1, "bob", "");
    let m2 = rec.message("bob", "alice", "Hi Alice", &mut b);
    receive(&mut rec, &mut a, 2, &m2, "alice", "Hi Alice");
    let m3 = rec.message("alice", "bob", "How are you?", &mut a);
    let m4 = rec.message(
        "alice",
        "bob",
        "This one overtakes the previous one.",
        &mut a,
    );
    rec.pickle(
        "alice_session_mid",
        "session",
        "after sending m4, before receiving m5",
        |r| a.pickle_with_rng(&key, r),
    );
    receive(
        &mut rec,
        &mut b,
        4,
        &m4,
        "bob",
        "This one overtakes the previous one.",
    );
    let m5 = rec.message("bob", "alice", "Fine, thanks.", &mut b);
    rec.pickle(
        "bob_session_skipped",
        "session",
        "after sending m5; holds the skipped key of m3",
        |r| b.pickle_with_rng(&key, r),
    );
    receive(&mut rec, &mut a, 5, &m5, "alice", "Fine, thanks.");
    rec.pickle(
        "alice_session_after_m5",
        "session",
        "after receiving m5, before sending m6",
        |r| a.pickle_with_rng(&key, r),
    );
    receive(&mut rec, &mut b, 3, &m3, "bob", "How are you?");
    let m6 = rec.message("alice", "bob", "Good to hear.", &mut a);
    receive(&mut rec, &mut b, 6, &m6, "bob", "Good to hear.");
    let m7 = rec.message("bob", "alice", "Bye.", &mut b);
    receive(&mut rec, &mut a, 7, &m7, "alice", "Bye.");
    rec.pickle(
        "alice_session_final",
        "session",
        "after the whole conversation",
        |r| a.pickle_with_rng(&key, r),
    );
    rec.pickle(
        "bob_session_final",
        "session",
        "after the whole conversation",
        |r| b.pickle_with_rng(&key, r),
    );

    json!({
        "about": "Known-answer vectors of the roomseal native pairwise protocol, version 2. \
                  Checked byte for byte by tests/vectors.rs; see PROTOCOL.md, section \
                  \"Test vectors\". A changed vector is a protocol change.",
        "protocol_version": 2,
        "rng": "rand 0.10 ChaCha20Rng::from_seed([seed; 32]), a fresh generator per operation",
        "seeds": {
            "alice_account": seed::ALICE_ACCOUNT,
            "bob_account": seed::BOB_ACCOUNT,
            "bob_one_time_keys": seed::BOB_ONE_TIME_KEYS,
            "bob_fallback_key": seed::BOB_FALLBACK_KEY,
            "alice_outbound_session": seed::ALICE_OUTBOUND_SESSION,
            "bob_inbound_session": seed::BOB_INBOUND_SESSION,
        },
        "alice": {
            "user_id": ALICE_USER,
            "device_id": ALICE_DEVICE,
            "identity_keys": identity_json(alice.identity_keys()),
            "device_keys": serde_json::to_value(&alice_device_keys).unwrap(),
            "app_signature": {
                "message": APP_MESSAGE,
                "signature": app_signature.to_base64(),
            },
        },
        "bob": {
            "user_id": BOB_USER,
            "device_id": BOB_DEVICE,
            "identity_keys": identity_json(bob.identity_keys()),
            "device_keys": serde_json::to_value(&bob_device_keys).unwrap(),
            "one_time_keys": serde_json::to_value(&bob_one_time_keys).unwrap(),
            "fallback_key": serde_json::to_value(&bob_fallback_key).unwrap(),
            "fallback_key_current_since_ms": BOB_FALLBACK_AT_MS,
        },
        "session": {
            "session_id": a.session_id().to_base64(),
            "started_from_one_time_key": serde_json::to_value(&bob_one_time_keys[0]).unwrap(),
        },
        "script": rec.script,
        "messages": rec.messages,
        "pickles": {
            "key": b64(&pickle_key_bytes()),
            "entries": rec.pickles,
        },
    })
}

/// Every path at which `frozen` and `fresh` differ.
fn diff(path: &str, frozen: &Value, fresh: &Value, out: &mut Vec<String>) {
    match (frozen, fresh) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let sub = format!("{path}.{k}");
                match b.get(k) {
                    Some(vb) => diff(&sub, va, vb, out),
                    None => out.push(format!("`{sub}` is no longer generated")),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("`{path}.{k}` is new (not in the frozen file)"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!(
                    "`{path}` has {} entries, the frozen file {}",
                    b.len(),
                    a.len()
                ));
            }
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if frozen != fresh => out.push(format!(
            "`{path}` changed\n    frozen:      {frozen}\n    regenerated: {fresh}"
        )),
        _ => {}
    }
}

fn load_frozen() -> Value {
    static WRITTEN: OnceLock<()> = OnceLock::new();
    load_frozen_file(&vector_path(), &WRITTEN, generate)
}

/// Reads a frozen vector file as JSON; in write mode it is regenerated from
/// `generate` first, once (the other tests wait for it).
fn load_frozen_file(path: &Path, written: &OnceLock<()>, generate: fn() -> Value) -> Value {
    if write_mode() {
        written.get_or_init(|| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let tmp = path.with_extension("json.tmp");
            let mut text = serde_json::to_string_pretty(&generate()).unwrap();
            text.push('\n');
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
            eprintln!("wrote {}", path.display());
        });
    }
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; generate it with {WRITE_ENV}=1 cargo test --test vectors",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn write_mode() -> bool {
    std::env::var_os(WRITE_ENV).is_some_and(|v| v == "1")
}

/// Fails, naming every field, unless the regenerated vectors equal the
/// frozen file `name`.
fn assert_regenerates(name: &str, frozen: &Value, fresh: &Value) {
    let mut changes = Vec::new();
    diff("$", frozen, fresh, &mut changes);
    assert!(
        changes.is_empty(),
        "the regenerated vectors differ from tests/vectors/{name} in {} field(s):\n  {}\n\n\
         A changed vector means the wire format, the pickle format, a derivation or the way \
         random bytes are drawn changed. If that is deliberate, regenerate with \
         {WRITE_ENV}=1 cargo test --test vectors and update PROTOCOL.md.",
        changes.len(),
        changes.join("\n  ")
    );
}

#[test]
fn regenerated_vectors_match_the_frozen_file() {
    assert_regenerates("pairwise_v2.json", &load_frozen(), &generate());
}

// ---------------------------------------------------------------------------
// Reverse direction: frozen bytes in, frozen plaintexts out
// ---------------------------------------------------------------------------

/// The string at `pointer` in a frozen document (pairwise or group).
fn frozen_str<'a>(file: &'a Value, pointer: &str) -> &'a str {
    file.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("frozen file lacks string {pointer}"))
}

/// The pickle text of entry `name` in a frozen document's pickle list.
fn frozen_pickle<'a>(file: &'a Value, name: &str) -> &'a str {
    file["pickles"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["pickle"].as_str())
        .unwrap_or_else(|| panic!("frozen file lacks pickle {name}"))
}

/// Typed access to the frozen document.
struct Frozen(Value);

impl Frozen {
    fn str(&self, pointer: &str) -> &str {
        frozen_str(&self.0, pointer)
    }

    fn u64(&self, pointer: &str) -> u64 {
        self.0
            .pointer(pointer)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("frozen file lacks number {pointer}"))
    }

    fn messages(&self) -> &Vec<Value> {
        self.0["messages"].as_array().unwrap()
    }

    fn message(&self, name: &str) -> &Value {
        self.messages()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("frozen file lacks message {name}"))
    }

    fn decoded(&self, name: &str) -> DeviceMessage {
        DeviceMessage::from_base64(self.message(name)["base64"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("frozen message {name} no longer decodes: {e}"))
    }

    fn plaintext(&self, name: &str) -> &[u8] {
        self.message(name)["plaintext"].as_str().unwrap().as_bytes()
    }

    fn pickle(&self, name: &str) -> &str {
        frozen_pickle(&self.0, name)
    }

    /// The identity keys of `who` ("alice" or "bob").
    fn identity(&self, who: &str) -> IdentityKeys {
        serde_json::from_value(self.0[who]["identity_keys"].clone()).unwrap()
    }

    /// The pickle entry `name`.
    fn entry(&self, name: &str) -> &Value {
        self.0["pickles"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("frozen file lacks pickle {name}"))
    }

    /// The account a frozen session pickle is bound to.
    fn owner(&self, name: &str) -> IdentityKeys {
        self.identity(self.entry(name)["owner"].as_str().unwrap())
    }

    fn session(&self, name: &str) -> Session {
        Session::from_pickle(self.pickle(name), &pickle_key(), &self.owner(name))
            .unwrap_or_else(|e| panic!("frozen pickle {name} no longer restores: {e}"))
    }

    fn account(&self, name: &str) -> Account {
        Account::from_pickle(self.pickle(name), &pickle_key())
            .unwrap_or_else(|e| panic!("frozen pickle {name} no longer restores: {e}"))
    }
}

/// Decrypts frozen message `name` with `session` (fresh OS randomness: the
/// frozen state alone must suffice) and checks the frozen plaintext.
fn check_decrypts(frozen: &Frozen, session: &mut Session, name: &str, state: &str) {
    let plaintext = session
        .decrypt(&frozen.decoded(name))
        .unwrap_or_else(|e| panic!("frozen {name} does not decrypt with {state}: {e}"));
    assert_eq!(
        plaintext,
        frozen.plaintext(name),
        "plaintext of frozen {name} (decrypted with {state})"
    );
}

#[test]
fn frozen_messages_decrypt_with_frozen_state() {
    let frozen = Frozen(load_frozen());
    let key = pickle_key();
    let session_id = frozen.str("/session/session_id");

    // Every message decodes, re-encodes to the same bytes, and its header
    // matches the recorded fields.
    for entry in frozen.messages() {
        let name = entry["name"].as_str().unwrap();
        let text = entry["base64"].as_str().unwrap();
        let message = frozen.decoded(name);
        assert_eq!(message.to_base64(), text, "{name} re-encodes differently");
        assert_eq!(b64(&wire_salt(&message)), entry["salt"], "{name}.salt");
        assert_eq!(
            message.to_bytes().len() as u64,
            entry["length"].as_u64().unwrap()
        );
        let normal = message.normal();
        assert_eq!(
            normal.ratchet_key().to_base64(),
            entry["ratchet_key"],
            "{name}.ratchet_key"
        );
        assert_eq!(normal.counter(), entry["counter"], "{name}.counter");
        assert_eq!(
            normal.previous_counter(),
            entry["previous_counter"],
            "{name}.previous_counter"
        );
        assert_eq!(
            message.is_pre_key(),
            entry["kind"] == "pre_key",
            "{name}.kind"
        );
        if let DeviceMessage::PreKey(p) = &message {
            assert_eq!(p.session_id().to_base64(), session_id, "{name}.session_id");
            assert_eq!(
                p.one_time_key().to_base64(),
                entry["one_time_key"],
                "{name}.one_time_key"
            );
            assert_eq!(
                p.base_key().to_base64(),
                entry["base_key"],
                "{name}.base_key"
            );
            assert_eq!(identity_json(p.identity_keys()), entry["identity_keys"]);
        }
    }

    // Published keys parse and verify.
    let bob_keys: IdentityKeys =
        serde_json::from_value(frozen.0["bob"]["identity_keys"].clone()).unwrap();
    let alice_keys: IdentityKeys =
        serde_json::from_value(frozen.0["alice"]["identity_keys"].clone()).unwrap();
    for (who, keys) in [("alice", alice_keys), ("bob", bob_keys)] {
        let device: DeviceKeys =
            serde_json::from_value(frozen.0[who]["device_keys"].clone()).unwrap();
        let verified = device
            .check_self_signature()
            .unwrap_or_else(|e| panic!("frozen {who}.device_keys no longer verifies: {e}"));
        assert_eq!(verified.identity_keys(), keys, "{who}.device_keys.keys");
        assert_eq!(
            serde_json::to_value(&device).unwrap(),
            frozen.0[who]["device_keys"]
        );
    }
    let mut signed: Vec<SignedOneTimeKey> =
        serde_json::from_value(frozen.0["bob"]["one_time_keys"].clone()).unwrap();
    signed.push(serde_json::from_value(frozen.0["bob"]["fallback_key"].clone()).unwrap());
    for key_entry in &signed {
        key_entry
            .verify(&bob_keys.ed25519)
            .unwrap_or_else(|e| panic!("frozen key {} no longer verifies: {e}", key_entry.key_id));
    }

    // Pickles restore at their generation and re-pickle to the same bytes
    // (same generation: same state) with the same nonce seed; a session
    // pickle restores only as one of its own account.
    for entry in frozen.0["pickles"]["entries"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let text = entry["pickle"].as_str().unwrap();
        let seed = u8::try_from(entry["nonce_rng_seed"].as_u64().unwrap()).unwrap();
        let generation = entry["generation"].as_u64().unwrap();
        assert_eq!(pickle_generation(text), Ok(generation), "{name}.generation");
        let (again, restored_at) = match entry["kind"].as_str().unwrap() {
            "account" => {
                let account = frozen.account(name);
                (
                    account.pickle_with_rng(&key, &mut rng(seed)),
                    account.pickle_generation(),
                )
            }
            "session" => {
                let session = frozen.session(name);
                let other = if entry["owner"] == "alice" {
                    "bob"
                } else {
                    "alice"
                };
                assert_eq!(
                    Session::from_pickle(text, &key, &frozen.identity(other)).err(),
                    Some(roomseal::PickleError::Decryption),
                    "{name} restores under the other account"
                );
                assert_eq!(session.local_identity(), frozen.owner(name));
                (
                    session.pickle_with_rng(&key, &mut rng(seed)),
                    session.pickle_generation(),
                )
            }
            other => panic!("unknown pickle kind {other}"),
        };
        assert_eq!(
            restored_at, generation,
            "{name}: generation after re-pickling"
        );
        assert_eq!(
            again, text,
            "pickle {name} does not round-trip byte for byte"
        );
    }
    assert_eq!(frozen.account("alice_account").identity_keys(), alice_keys);

    // The app-message signature verifies as one, and only as one.
    let app_message = frozen.str("/alice/app_signature/message").as_bytes();
    let app_signature =
        Ed25519Signature::from_base64(frozen.str("/alice/app_signature/signature")).unwrap();
    alice_keys
        .ed25519
        .verify_app_message(app_message, &app_signature)
        .expect("frozen app-message signature no longer verifies");
    assert!(
        alice_keys
            .ed25519
            .verify(app_message, &app_signature)
            .is_err()
    );
    assert_eq!(
        frozen.account("alice_account").sign(app_message),
        app_signature
    );
    assert_eq!(
        frozen.account("bob_account_published").identity_keys(),
        bob_keys
    );

    // Frozen state re-encrypts to the frozen bytes with the recorded salt
    // seed (the salt is the only randomness encryption draws)...
    let salt_seed =
        |name: &str| u8::try_from(frozen.message(name)["salt_rng_seed"].as_u64().unwrap()).unwrap();
    let mut alice_new = frozen.session("alice_session_new");
    for name in ["m0", "m1"] {
        let again = alice_new
            .encrypt_with_rng(frozen.plaintext(name), &mut rng(salt_seed(name)))
            .unwrap();
        assert_eq!(
            again.to_base64(),
            frozen.message(name)["base64"],
            "re-encrypting {name}"
        );
    }
    let mut bob_new = frozen.session("bob_session_new");
    let again = bob_new
        .encrypt_with_rng(frozen.plaintext("m2"), &mut rng(salt_seed("m2")))
        .unwrap();
    assert_eq!(
        again.to_base64(),
        frozen.message("m2")["base64"],
        "re-encrypting m2"
    );
    // ...and with another salt the same state (the same chain position)
    // seals under another key and nonce: same header up to the salt,
    // another ciphertext, and the peer still reads it.
    let mut rolled_back = frozen.session("bob_session_new");
    let other = rolled_back
        .encrypt_with_rng(frozen.plaintext("m2"), &mut rng(0xF0))
        .unwrap();
    let frozen_m2 = frozen.decoded("m2");
    assert_eq!(other.to_bytes()[..2 + 40], frozen_m2.to_bytes()[..2 + 40]);
    assert_ne!(wire_salt(&other), wire_salt(&frozen_m2));
    assert_ne!(other.to_bytes()[2 + 56..], frozen_m2.to_bytes()[2 + 56..]);
    check_decrypts(
        &frozen,
        &mut frozen.session("alice_session_new"),
        "m2",
        "alice_session_new",
    );
    assert_eq!(
        frozen.session("alice_session_new").decrypt(&other).unwrap(),
        frozen.plaintext("m2")
    );

    // m0 creates Bob's session from the published account.
    let mut bob = frozen.account("bob_account_published");
    let DeviceMessage::PreKey(p0) = frozen.decoded("m0") else {
        panic!("frozen m0 is not a pre-key message")
    };
    let created = bob
        .create_inbound_session(&p0)
        .unwrap_or_else(|e| panic!("frozen m0 does not create a session: {e}"));
    assert_eq!(
        created.plaintext,
        frozen.plaintext("m0"),
        "plaintext of frozen m0"
    );
    assert_eq!(created.session.session_id().to_base64(), session_id);
    assert_eq!(created.session.peer_identity(), alice_keys);
    assert_eq!(bob.stored_one_time_key_count(), signed.len() - 2);
    let mut bob_session = created.session;
    check_decrypts(&frozen, &mut bob_session, "m1", "a session created from m0");

    // Bob's side from the pickle taken after m0: m1, then m4 before m3.
    let mut b = frozen.session("bob_session_new");
    for name in ["m1", "m4", "m3"] {
        check_decrypts(&frozen, &mut b, name, "bob_session_new");
    }
    // Alice's side: m2 with her new session, m5 with her mid-conversation one.
    check_decrypts(
        &frozen,
        &mut frozen.session("alice_session_new"),
        "m2",
        "alice_session_new",
    );
    check_decrypts(
        &frozen,
        &mut frozen.session("alice_session_mid"),
        "m5",
        "alice_session_mid",
    );
    // The pickle holding a skipped key: m3 (skipped) and m6 (new chain).
    let mut b = frozen.session("bob_session_skipped");
    for name in ["m3", "m6"] {
        check_decrypts(&frozen, &mut b, name, "bob_session_skipped");
    }
    check_decrypts(
        &frozen,
        &mut frozen.session("alice_session_after_m5"),
        "m7",
        "alice_session_after_m5",
    );
    // Used keys stay used.
    let mut done = frozen.session("bob_session_final");
    for name in ["m1", "m3", "m4", "m6"] {
        assert!(
            done.decrypt(&frozen.decoded(name)).is_err(),
            "{name} replays"
        );
    }
    assert_eq!(frozen.u64("/protocol_version"), 2);
}

// ---------------------------------------------------------------------------
// Conformance: the frozen bytes re-derived from PROTOCOL.md alone
// ---------------------------------------------------------------------------

mod spec {
    //! A second, minimal reading of PROTOCOL.md using only the primitive
    //! crates; nothing here calls roomseal.

    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};
    use hkdf::Hkdf;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    pub(super) const TRIPLE_DH: &[u8] = b"roomseal/v2/3dh";
    pub(super) const ROOT: &[u8] = b"roomseal/v2/root";
    pub(super) const CHAIN_MESSAGE: &[u8] = b"roomseal/v2/chain/message";
    pub(super) const CHAIN_NEXT: &[u8] = b"roomseal/v2/chain/next";
    pub(super) const MESSAGE_KEY: &[u8] = b"roomseal/v2/message-key";
    pub(super) const SESSION_ID: &[u8] = b"roomseal/v2/session-id";
    pub(super) const SESSION_AD: &[u8] = b"roomseal/v2/session-ad";
    pub(super) const SESSION_BINDING: &[u8] = b"roomseal/v2/session-binding";
    pub(super) const ONE_TIME_KEY: &[u8] = b"roomseal/v2/one-time-key";
    pub(super) const FALLBACK_KEY: &[u8] = b"roomseal/v2/fallback-key";
    pub(super) const DEVICE_KEYS: &[u8] = b"roomseal/v2/device-keys";
    pub(super) const APP_MESSAGE: &[u8] = b"roomseal/v2/app-message";
    pub(super) const PICKLE: &[u8] = b"roomseal/v2/pickle/";
    pub(super) const PICKLE_KEY: &[u8] = b"roomseal/v2/pickle-key/";

    pub(super) fn arr<const N: usize>(bytes: &[u8]) -> [u8; N] {
        bytes.try_into().unwrap()
    }

    pub(super) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    pub(super) fn hmac(key: &[u8; 32], input: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    pub(super) fn hkdf<const N: usize>(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        Hkdf::<Sha256>::new(salt, ikm)
            .expand(info, &mut out)
            .unwrap();
        out
    }

    pub(super) fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
        let secret = x25519_dalek::StaticSecret::from(*secret);
        let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*public));
        assert!(shared.was_contributory());
        shared.to_bytes()
    }

    pub(super) fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
    }

    pub(super) fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
        ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .to_bytes()
    }

    pub(super) fn verify(public: &[u8; 32], message: &[u8], signature: &[u8]) {
        let key = ed25519_dalek::VerifyingKey::from_bytes(public).unwrap();
        let signature = ed25519_dalek::Signature::from_bytes(&arr(signature));
        key.verify_strict(message, &signature)
            .expect("signature over the bytes PROTOCOL.md describes");
    }

    pub(super) fn open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], sealed: &[u8]) -> Vec<u8> {
        Aes256Gcm::new(&(*key).into())
            .decrypt(&Nonce::from(*nonce), Payload { msg: sealed, aad })
            .expect(
                "AES-256-GCM open with the key, nonce and associated data PROTOCOL.md describes",
            )
    }

    /// Chain step: (message seed, next chain key).
    pub(super) fn step(chain: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
        (hmac(chain, CHAIN_MESSAGE), hmac(chain, CHAIN_NEXT))
    }

    /// Message seed and the message's salt (HKDF's salt) -> (AES key,
    /// nonce).
    pub(super) fn message_key(seed: &[u8; 32], salt: &[u8; 16]) -> ([u8; 32], [u8; 12]) {
        let okm: [u8; 44] = hkdf(Some(salt), seed, MESSAGE_KEY);
        (arr(&okm[..32]), arr(&okm[32..]))
    }

    /// A big-endian cursor over pickle contents.
    pub(super) struct Cursor<'a>(pub(super) &'a [u8]);

    impl Cursor<'_> {
        pub(super) fn take(&mut self, n: usize) -> Vec<u8> {
            assert!(self.0.len() >= n, "contents shorter than PROTOCOL.md says");
            let (head, tail) = self.0.split_at(n);
            self.0 = tail;
            head.to_vec()
        }
        pub(super) fn a32(&mut self) -> [u8; 32] {
            arr(&self.take(32))
        }
        pub(super) fn u8(&mut self) -> u8 {
            self.take(1)[0]
        }
        pub(super) fn flag(&mut self) -> bool {
            match self.u8() {
                0 => false,
                1 => true,
                other => panic!("flag byte {other}"),
            }
        }
        pub(super) fn u16(&mut self) -> u16 {
            u16::from_be_bytes(arr(&self.take(2)))
        }
        pub(super) fn u32(&mut self) -> u32 {
            u32::from_be_bytes(arr(&self.take(4)))
        }
        pub(super) fn u64(&mut self) -> u64 {
            u64::from_be_bytes(arr(&self.take(8)))
        }
        pub(super) fn end(&self) {
            assert!(self.0.is_empty(), "{} bytes left over", self.0.len());
        }
    }

    /// Opens a pickle envelope (8.1): version 2, BE64 generation, 12-byte
    /// nonce, ciphertext and tag under the type's subkey
    /// `HKDF(no salt, key, PICKLE_KEY || kind)`, associated data
    /// `PICKLE || kind || 0x02 || generation || owner` (the owner's identity
    /// keys for a session pickle, nothing otherwise).
    pub(super) fn open_owned_pickle(
        text: &str,
        key: &[u8; 32],
        kind: &str,
        owner: &[u8],
    ) -> Vec<u8> {
        let bytes = super::unb64(text);
        assert_eq!(bytes[0], 2, "pickle version byte");
        let subkey: [u8; 32] = hkdf(None, key, &[PICKLE_KEY, kind.as_bytes()].concat());
        assert_ne!(&subkey, key, "the subkey is not the pickle key");
        let aad = [PICKLE, kind.as_bytes(), &[2], &bytes[1..9], owner].concat();
        open(&subkey, &arr(&bytes[9..21]), &aad, &bytes[21..])
    }

    /// [`open_owned_pickle`] for a pickle of no owner.
    pub(super) fn open_pickle(text: &str, key: &[u8; 32], kind: &str) -> Vec<u8> {
        open_owned_pickle(text, key, kind, &[])
    }

    /// One private key entry of an account pickle.
    pub(super) struct PrivateKey {
        pub(super) id: u64,
        pub(super) published: bool,
        pub(super) secret: [u8; 32],
    }

    /// A fallback key entry: the key, when it was retired (`u64::MAX` while
    /// current), and the sessions created from it.
    pub(super) struct FallbackKey {
        pub(super) key: PrivateKey,
        pub(super) retired_at: u64,
        pub(super) sessions: Vec<[u8; 32]>,
    }

    pub(super) struct AccountContents {
        pub(super) signing_seed: [u8; 32],
        pub(super) identity_secret: [u8; 32],
        pub(super) next_key_id: u64,
        pub(super) one_time_keys: Vec<PrivateKey>,
        pub(super) fallback: Option<FallbackKey>,
        pub(super) previous_fallback: Option<FallbackKey>,
    }

    /// Account pickle contents, alone.
    pub(super) fn account(contents: &[u8]) -> AccountContents {
        let mut c = Cursor(contents);
        let account = read_account(&mut c);
        c.end();
        account
    }

    /// Account contents at the cursor (also the start of an endpoint
    /// pickle's contents).
    pub(super) fn read_account(c: &mut Cursor<'_>) -> AccountContents {
        fn key(c: &mut Cursor<'_>) -> PrivateKey {
            PrivateKey {
                id: c.u64(),
                published: c.flag(),
                secret: c.a32(),
            }
        }
        fn fallback_key(c: &mut Cursor<'_>) -> FallbackKey {
            let key = key(c);
            let retired_at = c.u64();
            let count = c.u16();
            let sessions = (0..count).map(|_| c.a32()).collect();
            FallbackKey {
                key,
                retired_at,
                sessions,
            }
        }
        let signing_seed = c.a32();
        let identity_secret = c.a32();
        let next_key_id = c.u64();
        let count = c.u16();
        let one_time_keys = (0..count).map(|_| key(c)).collect();
        let fallback = c.flag().then(|| fallback_key(c));
        let previous_fallback = c.flag().then(|| fallback_key(c));
        AccountContents {
            signing_seed,
            identity_secret,
            next_key_id,
            one_time_keys,
            fallback,
            previous_fallback,
        }
    }

    /// One-time key, base key, binding signature (the initiator's identity
    /// keys are the session's own).
    pub(super) type PreKeyState = ([u8; 32], [u8; 32], Vec<u8>);

    pub(super) struct SessionContents {
        pub(super) version: u8,
        pub(super) session_id: [u8; 32],
        pub(super) role: u8,
        pub(super) local_ed25519: [u8; 32],
        pub(super) local_curve: [u8; 32],
        pub(super) peer_ed25519: [u8; 32],
        pub(super) peer_curve: [u8; 32],
        pub(super) pre_key: Option<PreKeyState>,
        pub(super) root: [u8; 32],
        pub(super) ratchet_secret: [u8; 32],
        pub(super) sending_chain: [u8; 32],
        pub(super) sending_index: u32,
        pub(super) previous_counter: u32,
        pub(super) receiving: Option<([u8; 32], [u8; 32], u32)>,
        pub(super) skipped: Vec<([u8; 32], u32, [u8; 32])>,
    }

    /// Session pickle contents, alone.
    pub(super) fn session(contents: &[u8]) -> SessionContents {
        let mut c = Cursor(contents);
        let session = read_session(&mut c);
        c.end();
        session
    }

    /// Session contents at the cursor (also inside an endpoint pickle).
    pub(super) fn read_session(c: &mut Cursor<'_>) -> SessionContents {
        let version = c.u8();
        let session_id = c.a32();
        let role = c.u8();
        let local_ed25519 = c.a32();
        let local_curve = c.a32();
        let peer_ed25519 = c.a32();
        let peer_curve = c.a32();
        let pre_key = c.flag().then(|| (c.a32(), c.a32(), c.take(64)));
        let root = c.a32();
        let ratchet_secret = c.a32();
        let sending_chain = c.a32();
        let sending_index = c.u32();
        let previous_counter = c.u32();
        let receiving = c.flag().then(|| (c.a32(), c.a32(), c.u32()));
        let count = c.u16();
        let skipped = (0..count).map(|_| (c.a32(), c.u32(), c.a32())).collect();
        SessionContents {
            version,
            session_id,
            role,
            local_ed25519,
            local_curve,
            peer_ed25519,
            peer_curve,
            pre_key,
            root,
            ratchet_secret,
            sending_chain,
            sending_index,
            previous_counter,
            receiving,
            skipped,
        }
    }

    /// The fields of a binary DeviceMessage, at the offsets PROTOCOL.md gives.
    pub(super) struct Wire {
        pub(super) pre_key: Option<PreKeyFields>,
        pub(super) header: [u8; 56],
        pub(super) ratchet_key: [u8; 32],
        pub(super) previous_counter: u32,
        pub(super) counter: u32,
        pub(super) salt: [u8; 16],
        pub(super) sealed: Vec<u8>,
    }

    pub(super) struct PreKeyFields {
        pub(super) one_time_key: [u8; 32],
        pub(super) base_key: [u8; 32],
        pub(super) ed25519: [u8; 32],
        pub(super) curve25519: [u8; 32],
        pub(super) binding: Vec<u8>,
    }

    pub(super) fn wire(bytes: &[u8]) -> Wire {
        assert_eq!(bytes[0], 2, "version byte");
        let (pre_key, body) = match bytes[1] {
            0 => (
                Some(PreKeyFields {
                    one_time_key: arr(&bytes[2..34]),
                    base_key: arr(&bytes[34..66]),
                    ed25519: arr(&bytes[66..98]),
                    curve25519: arr(&bytes[98..130]),
                    binding: bytes[130..194].to_vec(),
                }),
                &bytes[194..],
            ),
            1 => (None, &bytes[2..]),
            kind => panic!("kind byte {kind}"),
        };
        Wire {
            pre_key,
            header: arr(&body[..56]),
            ratchet_key: arr(&body[..32]),
            previous_counter: u32::from_be_bytes(arr(&body[32..36])),
            counter: u32::from_be_bytes(arr(&body[36..40])),
            salt: arr(&body[40..56]),
            sealed: body[56..].to_vec(),
        }
    }

    /// SHA-256(SESSION_AD || version || session id || initiator Ed25519 ||
    /// initiator X25519 || responder Ed25519 || responder X25519).
    pub(super) fn ad_binding(
        version: u8,
        session_id: &[u8; 32],
        initiator: (&[u8; 32], &[u8; 32]),
        responder: (&[u8; 32], &[u8; 32]),
    ) -> [u8; 32] {
        sha256(&[
            SESSION_AD,
            &[version],
            session_id,
            initiator.0,
            initiator.1,
            responder.0,
            responder.1,
        ])
    }

    /// ad binding || kind (0 pre-key, 1 normal) || header, then for a
    /// pre-key message its binding signature.
    pub(super) fn associated_data(
        ad_binding: &[u8; 32],
        header: &[u8; 56],
        binding: Option<&[u8]>,
    ) -> Vec<u8> {
        match binding {
            Some(signature) => [&ad_binding[..], &[0], header, signature].concat(),
            None => [&ad_binding[..], &[1], header].concat(),
        }
    }

    /// AES-256-GCM open that may fail (for the negative checks).
    pub(super) fn try_open(
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Option<Vec<u8>> {
        Aes256Gcm::new(&(*key).into())
            .decrypt(&Nonce::from(*nonce), Payload { msg: sealed, aad })
            .ok()
    }
}

fn key32(text: &str) -> [u8; 32] {
    spec::arr(&unb64(text))
}

#[test]
fn frozen_vectors_follow_protocol_md() {
    let frozen = Frozen(load_frozen());
    let pk = pickle_key_bytes();
    assert_eq!(unb64(frozen.str("/pickles/key")), pk);

    // Account pickles: the contents give back the public identity keys.
    let alice = spec::account(&spec::open_pickle(
        frozen.pickle("alice_account"),
        &pk,
        "account",
    ));
    let bob = spec::account(&spec::open_pickle(
        frozen.pickle("bob_account_published"),
        &pk,
        "account",
    ));
    let alice_ed = key32(frozen.str("/alice/identity_keys/ed25519"));
    let alice_curve = key32(frozen.str("/alice/identity_keys/curve25519"));
    let bob_ed = key32(frozen.str("/bob/identity_keys/ed25519"));
    let bob_curve = key32(frozen.str("/bob/identity_keys/curve25519"));
    assert_eq!(spec::ed25519_public(&alice.signing_seed), alice_ed);
    assert_eq!(spec::x25519_public(&alice.identity_secret), alice_curve);
    assert_eq!(spec::ed25519_public(&bob.signing_seed), bob_ed);
    assert_eq!(spec::x25519_public(&bob.identity_secret), bob_curve);
    assert!(alice.one_time_keys.is_empty() && alice.fallback.is_none());
    assert_eq!(alice.next_key_id, 0);
    assert_eq!(bob.next_key_id, BOB_ONE_TIME_KEY_COUNT as u64 + 1);
    assert!(bob.previous_fallback.is_none());
    // The current fallback key: no retirement time, no session yet.
    let bob_fallback = bob.fallback.as_ref().unwrap();
    assert_eq!(bob_fallback.retired_at, u64::MAX);
    assert!(bob_fallback.sessions.is_empty());

    // Signed one-time and fallback keys: label || key id || key.
    let one_time_keys = frozen.0["bob"]["one_time_keys"].as_array().unwrap();
    assert_eq!(one_time_keys.len(), bob.one_time_keys.len());
    for (entry, private) in one_time_keys.iter().zip(&bob.one_time_keys) {
        let id = entry["key_id"].as_u64().unwrap();
        let public = key32(entry["key"].as_str().unwrap());
        assert_eq!(entry["fallback"], false);
        assert_eq!((private.id, private.published), (id, true));
        assert_eq!(spec::x25519_public(&private.secret), public);
        let signed = [spec::ONE_TIME_KEY, &id.to_be_bytes(), &public].concat();
        spec::verify(
            &bob_ed,
            &signed,
            &unb64(entry["signature"].as_str().unwrap()),
        );
    }
    let fallback = &frozen.0["bob"]["fallback_key"];
    let fallback_private = &bob.fallback.as_ref().unwrap().key;
    let id = fallback["key_id"].as_u64().unwrap();
    let public = key32(fallback["key"].as_str().unwrap());
    assert_eq!(fallback["fallback"], true);
    assert_eq!(
        (fallback_private.id, fallback_private.published),
        (id, true)
    );
    assert_eq!(spec::x25519_public(&fallback_private.secret), public);
    let signed = [spec::FALLBACK_KEY, &id.to_be_bytes(), &public].concat();
    spec::verify(
        &bob_ed,
        &signed,
        &unb64(fallback["signature"].as_str().unwrap()),
    );

    // App-message signature: label || message, by the device key.
    spec::verify(
        &alice_ed,
        &[
            spec::APP_MESSAGE,
            frozen.str("/alice/app_signature/message").as_bytes(),
        ]
        .concat(),
        &unb64(frozen.str("/alice/app_signature/signature")),
    );

    // Device keys: label || u16 len || user id || u16 len || device id ||
    // Ed25519 || X25519 || u16 count || (u16 len || protocol)*.
    for who in ["alice", "bob"] {
        let dk = &frozen.0[who]["device_keys"];
        let mut signed = spec::DEVICE_KEYS.to_vec();
        for id in [&dk["user_id"], &dk["device_id"]] {
            let id = id.as_str().unwrap().as_bytes();
            signed.extend_from_slice(&(id.len() as u16).to_be_bytes());
            signed.extend_from_slice(id);
        }
        signed.extend_from_slice(&key32(dk["keys"]["ed25519"].as_str().unwrap()));
        signed.extend_from_slice(&key32(dk["keys"]["curve25519"].as_str().unwrap()));
        let protocols = dk["protocols"].as_array().unwrap();
        assert_eq!(protocols, &[json!("roomseal.v2")]);
        signed.extend_from_slice(&(protocols.len() as u16).to_be_bytes());
        for p in protocols {
            let p = p.as_str().unwrap().as_bytes();
            signed.extend_from_slice(&(p.len() as u16).to_be_bytes());
            signed.extend_from_slice(p);
        }
        let ed = key32(dk["keys"]["ed25519"].as_str().unwrap());
        spec::verify(&ed, &signed, &unb64(dk["signature"].as_str().unwrap()));
    }

    // m0: pre-key message layout, session id, binding signature.
    let wire = |name: &str| spec::wire(&unb64(frozen.message(name)["base64"].as_str().unwrap()));
    let m0 = wire("m0");
    let pre = m0.pre_key.as_ref().unwrap();
    assert_eq!((pre.ed25519, pre.curve25519), (alice_ed, alice_curve));
    assert_eq!((m0.previous_counter, m0.counter), (0, 0));
    let session_id = spec::sha256(&[
        spec::SESSION_ID,
        &alice_ed,
        &alice_curve,
        &pre.base_key,
        &pre.one_time_key,
    ]);
    assert_eq!(b64(&session_id), frozen.str("/session/session_id"));
    spec::verify(
        &alice_ed,
        &[spec::SESSION_BINDING, &session_id[..], &bob_curve].concat(),
        &pre.binding,
    );

    // Triple DH, as the responder computes it, and the first chain.
    let otk = bob
        .one_time_keys
        .iter()
        .find(|k| spec::x25519_public(&k.secret) == pre.one_time_key)
        .expect("m0 names one of Bob's one-time keys");
    let ikm = [
        spec::x25519(&otk.secret, &alice_curve),
        spec::x25519(&bob.identity_secret, &pre.base_key),
        spec::x25519(&otk.secret, &pre.base_key),
    ]
    .concat();
    let okm: [u8; 64] = spec::hkdf(None, &ikm, &[spec::TRIPLE_DH, &session_id[..]].concat());
    let (root0, chain0): ([u8; 32], [u8; 32]) = (spec::arr(&okm[..32]), spec::arr(&okm[32..]));
    // Associated data: the session's static binding (version, session id,
    // both devices' identity keys, initiator first), the message kind, the
    // header and, for a pre-key message, its binding signature.
    let ad_binding = spec::ad_binding(
        2,
        &session_id,
        (&alice_ed, &alice_curve),
        (&bob_ed, &bob_curve),
    );
    let aad = |w: &spec::Wire| {
        spec::associated_data(
            &ad_binding,
            &w.header,
            w.pre_key.as_ref().map(|p| p.binding.as_slice()),
        )
    };
    assert_eq!(aad(&m0).len(), 32 + 1 + 56 + 64);
    let open = |seed: &[u8; 32], w: &spec::Wire| {
        let (key, nonce) = spec::message_key(seed, &w.salt);
        spec::open(&key, &nonce, &aad(w), &w.sealed)
    };
    for entry in frozen.messages() {
        let w = wire(entry["name"].as_str().unwrap());
        assert_eq!(b64(&w.salt), entry["salt"], "salt at 7.1's offset");
    }
    let (seed0, chain1) = spec::step(&chain0);
    assert_eq!(open(&seed0, &m0), frozen.plaintext("m0"), "m0 by the spec");
    // The inner message of a pre-key message does not open as a normal
    // message, nor with another binding signature.
    let (key0, nonce0) = spec::message_key(&seed0, &m0.salt);
    // The same seed under another salt is another key and nonce.
    let (other_key, other_nonce) = spec::message_key(&seed0, &[0u8; 16]);
    assert!(other_key != key0 && other_nonce != nonce0);
    assert!(spec::try_open(&other_key, &other_nonce, &aad(&m0), &m0.sealed).is_none());
    let as_normal = spec::associated_data(&ad_binding, &m0.header, None);
    assert!(spec::try_open(&key0, &nonce0, &as_normal, &m0.sealed).is_none());
    let mut other_binding = pre.binding.clone();
    other_binding[0] ^= 1;
    let altered = spec::associated_data(&ad_binding, &m0.header, Some(&other_binding));
    assert!(spec::try_open(&key0, &nonce0, &altered, &m0.sealed).is_none());
    let m1 = wire("m1");
    assert_eq!(m1.ratchet_key, m0.ratchet_key);
    assert_eq!((m1.previous_counter, m1.counter), (0, 1));
    let (seed1, _) = spec::step(&chain1);
    assert_eq!(open(&seed1, &m1), frozen.plaintext("m1"), "m1 by the spec");

    // Session pickles are bound to their account: the owner in the
    // associated data is the account's identity keys (Ed25519, X25519).
    let alice_owner = [alice_ed, alice_curve].concat();
    let bob_owner = [bob_ed, bob_curve].concat();
    let session_pickle = |name: &str, owner: &[u8]| {
        spec::session(&spec::open_owned_pickle(
            frozen.pickle(name),
            &pk,
            "session",
            owner,
        ))
    };
    // Alice's new session: the initiator's state right after the 3DH.
    let a_new = session_pickle("alice_session_new", &alice_owner);
    assert_eq!((a_new.version, a_new.session_id), (2, session_id));
    assert_eq!(a_new.role, 0);
    assert_eq!(
        (a_new.local_ed25519, a_new.local_curve),
        (alice_ed, alice_curve)
    );
    assert_eq!((a_new.peer_ed25519, a_new.peer_curve), (bob_ed, bob_curve));
    let (p_otk, p_base, p_binding) = a_new.pre_key.as_ref().unwrap();
    assert_eq!(
        (p_otk, p_base, &a_new.local_ed25519, &a_new.local_curve),
        (&pre.one_time_key, &pre.base_key, &alice_ed, &alice_curve)
    );
    assert_eq!(p_binding, &pre.binding);
    assert_eq!(
        (a_new.root, a_new.sending_chain, a_new.sending_index),
        (root0, chain0, 0)
    );
    assert_eq!(spec::x25519_public(&a_new.ratchet_secret), m0.ratchet_key);
    assert_eq!(a_new.previous_counter, 0);
    assert!(a_new.receiving.is_none() && a_new.skipped.is_empty());

    // Bob's new session: the eager root step and its first sending chain.
    let b_new = session_pickle("bob_session_new", &bob_owner);
    assert_eq!(
        (b_new.version, b_new.session_id, b_new.role),
        (2, session_id, 1)
    );
    assert_eq!(
        (
            b_new.local_ed25519,
            b_new.local_curve,
            b_new.peer_ed25519,
            b_new.peer_curve
        ),
        (bob_ed, bob_curve, alice_ed, alice_curve)
    );
    assert!(b_new.pre_key.is_none());
    let okm: [u8; 64] = spec::hkdf(
        Some(&root0),
        &spec::x25519(&b_new.ratchet_secret, &m0.ratchet_key),
        spec::ROOT,
    );
    assert_eq!(
        b_new.root[..],
        okm[..32],
        "root after Bob's first ratchet step"
    );
    assert_eq!(
        b_new.sending_chain[..],
        okm[32..],
        "Bob's first sending chain"
    );
    assert_eq!((b_new.sending_index, b_new.previous_counter), (0, 0));
    assert_eq!(b_new.receiving, Some((m0.ratchet_key, chain1, 1)));
    assert!(b_new.skipped.is_empty());

    // m2: Bob's reply on that chain; normal message layout.
    let m2 = wire("m2");
    assert!(m2.pre_key.is_none());
    assert_eq!(m2.ratchet_key, spec::x25519_public(&b_new.ratchet_secret));
    assert_eq!((m2.previous_counter, m2.counter), (0, 0));
    let (seed, _) = spec::step(&b_new.sending_chain);
    assert_eq!(aad(&m2).len(), 32 + 1 + 56);
    assert_eq!(open(&seed, &m2), frozen.plaintext("m2"), "m2 by the spec");

    // The skipped key of m3 in Bob's pickle opens m3.
    let skipped = session_pickle("bob_session_skipped", &bob_owner);
    let m3 = wire("m3");
    // The AD binding is not stored: it follows from the two identities.
    assert_eq!(
        spec::ad_binding(
            skipped.version,
            &skipped.session_id,
            (&skipped.peer_ed25519, &skipped.peer_curve),
            (&skipped.local_ed25519, &skipped.local_curve),
        ),
        ad_binding
    );
    assert_eq!(skipped.skipped.len(), 1);
    let (chain_key, counter, seed) = skipped.skipped[0];
    assert_eq!((chain_key, counter), (m3.ratchet_key, 0));
    assert_eq!(open(&seed, &m3), frozen.plaintext("m3"), "m3 by the spec");
    assert_eq!(
        m3.previous_counter, 2,
        "Alice sent two messages on her first chain"
    );
    assert_eq!(
        skipped.previous_counter, 1,
        "Bob sent one message on his first chain"
    );
}

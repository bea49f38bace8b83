//! Criterion benchmarks for the group and room layers, each measured next to
//! its primitive floor in the same run (the companion of `pairwise.rs`).
//!
//! Every group holds the roomseal operation (`op*`), one benchmark per
//! primitive it performs, and one or more `composite_floor*` benchmarks that
//! make exactly those primitive calls in sequence on plain arrays (no boxing,
//! zeroizing, encoding or allocation). `benches/ratios.py` turns the
//! estimates into a table of operation / floor ratios.
//!
//! Groups:
//! - `group_encrypt_1KiB`: `OutboundGroupSession::encrypt` of 1 KiB. Floors:
//!   `composite_floor_sign_aes` (Ed25519 sign over the 1080 signed bytes and
//!   AES-256-GCM seal with its key schedule) and `composite_floor` (plus the
//!   ratchet step and the HKDF of the message key).
//! - `group_decrypt_seq_1KiB`: `InboundGroupSession::decrypt` of the next
//!   index. Floors: `composite_floor_verify_aes` (strict verify + open) and
//!   `composite_floor` (plus ratchet step and HKDF).
//! - `group_decrypt_jump_100k`: decrypt at index 100,000 with a fresh
//!   session at index 0. Floor: strict verify + open + the 298 HMACs of the
//!   jump + HKDF, on the same message (the floor really decrypts it).
//! - `share_100`, `share_1000`: `Endpoint::rotate_room_key` then
//!   `share_room_key` to N devices with established sessions, on 1 and 2
//!   threads (`set_share_threads`); `op_rotate` is the rotation alone (a
//!   share to no device). Floors: N x (chain step + HKDF + seal of the
//!   463-byte share payload) + group session creation (keygen, 128 random
//!   bytes, signature over the session key); `composite_floor_rotate` is the
//!   creation alone (the endpoint keeps its own inbound copy without
//!   re-verifying the signature it just made).
//! - `event_256B`: `encrypt_event` + `to_json` + `from_json` +
//!   `decrypt_event` (fresh event id) of a 256-byte event plaintext. Floors:
//!   `composite_floor_sign_verify_aes` and `composite_floor` (plus both
//!   sides' ratchet steps and HKDFs); `part_*` time pieces of the envelope
//!   handling for the analysis.
//! - `backlog_64x256B`, `backlog_64x1KiB`: 64 messages of one session
//!   decrypted by `decrypt_batch` and by 64 `decrypt` calls, each on a fresh
//!   session; floors: 64 strict verifies vs `ed25519_dalek::verify_batch`,
//!   and the composite floors of both ways.
//!
//! Pickle sizes are printed once per run (and written to
//! `target/criterion/room_pickles.json`).
//!
//! After the criterion groups, each operation and its floor are also timed
//! in alternating short batches ("paired", see `support/paired.rs`), which
//! cancels the drift of a shared machine's load; the ratios go to
//! `target/criterion/room_paired.json`. `ROOM_PAIRED=0` skips this step and
//! `ROOM_PAIRED_SECS` sets its time per pair (default 4).
//!
//! State that grows with iterations is bounded outside the timed region: the
//! sharing endpoint (whose inbound store keeps one own copy per rotation) and
//! the event endpoints (whose replay record grows by one per event) are
//! restored from pickles taken after setup every few thousand iterations.
//!
//! Run: `cargo bench --bench room -- --warm-up-time 1 --measurement-time 3`
//! then `python3 benches/ratios.py`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::Tag;
use aes_gcm::aead::KeyInit;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, SamplingMode};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::rngs::ChaCha20Rng;
use roomseal::{
    Account, DecryptedEvent, EncryptedEvent, Endpoint, GroupDecrypted, GroupMessage,
    GroupSessionId, IdentityKeys, InboundGroupSession, OutboundGroupSession, PickleKey,
    RoomKeyShare, RoomKeyShareOutcome, RotationPolicy, SelfSignedDevice, SessionKey,
};
use sha2::Sha256;

#[path = "support/paired.rs"]
mod paired;

#[path = "support/floor.rs"]
mod floor;
use floor::*;

/// The room every operation runs in (18 bytes).
const ROOM: &str = "!bench:example.org";

// Labels of PROTOCOL.md section 3 that the floors hash, so every primitive
// processes exactly as many bytes as the operation does.
const L_GROUP_RATCHET: [&[u8]; 4] = [
    b"roomseal/v2/group/ratchet/0",
    b"roomseal/v2/group/ratchet/1",
    b"roomseal/v2/group/ratchet/2",
    b"roomseal/v2/group/ratchet/3",
];
const L_GROUP_MESSAGE_KEY: &[u8] = b"roomseal/v2/group/message-key";
const L_GROUP_MESSAGE_AD: &[u8] = b"roomseal/v2/group/message-ad";
const L_GROUP_MESSAGE_SIGNATURE: &[u8] = b"roomseal/v2/group/message-signature";
const L_GROUP_SESSION_KEY: &[u8] = b"roomseal/v2/group/session-key";

/// A message salt for floors that open or seal with a fixed key (senders
/// draw theirs: `salt_draw`).
const SALT: [u8; 16] = [0x5a; 16];

/// The sender's ids, in every share (12.1).
const ALICE_USER: &str = "@alice:example.org";
const ALICE_DEVICE: &str = "ALICE";

/// Group message associated data (11.4): label, room id with its length,
/// session id, version, index.
const GROUP_AD_LEN: usize = 28 + 2 + ROOM.len() + 32 + 1 + 4;
/// Bytes before the ciphertext in the signed bytes of a group message:
/// label, version, index, salt.
const SIGNED_PREFIX: usize = 35 + 1 + 4 + 16;
/// Bytes a group message signature covers for an `n`-byte plaintext.
const fn signed_len(n: usize) -> usize {
    SIGNED_PREFIX + n + 16
}
/// Bytes the session key signature covers (11.6): label, export, creator,
/// room id with its length.
const SESSION_KEY_SIGNED_LEN: usize = 29 + 165 + 64 + 2 + ROOM.len();
/// The room-key share payload (12.1) for `ROOM` from `ALICE_USER`'s
/// `ALICE_DEVICE`.
const SHARE_LEN: usize = 427 + 2 * ROOM.len() + 2 + ALICE_USER.len() + 2 + ALICE_DEVICE.len();
/// Associated data of a normal pairwise message (as in `pairwise.rs`):
/// binding, kind, ratchet key, counters, salt.
const PAIRWISE_AAD_LEN: usize = 32 + 1 + 32 + 4 + 4 + 16;
/// The jump benchmarked by `group_decrypt_jump_100k`.
const JUMP: u32 = 100_000;
/// HMACs of a jump from 0 to `JUMP` = 0x000186A0 (11.2): one advance of R1
/// and its two re-derivations, 0x86 advances of R2 and one re-derivation,
/// 0xA0 advances of R3.
const JUMP_HMACS: usize = 3 + 0x86 + 1 + 0xA0;

/// Iterations between restores of state that grows (see the module docs).
const RESET_EVERY: usize = 2048;

// ---------------------------------------------------------------------------
// Primitives, called the way the crate calls them but on plain arrays.
// ---------------------------------------------------------------------------

fn hmac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The group ratchet of PROTOCOL.md 11.2 on plain arrays.
#[derive(Clone)]
struct FloorRatchet {
    parts: [[u8; 32]; 4],
    index: u32,
}

impl FloorRatchet {
    /// The ratchet a session key or export carries (bytes 1..133: index and
    /// parts).
    fn from_export(bytes: &[u8]) -> Self {
        let mut parts = [[0u8; 32]; 4];
        for (p, part) in parts.iter_mut().enumerate() {
            part.copy_from_slice(&bytes[5 + 32 * p..5 + 32 * (p + 1)]);
        }
        let index = u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes"));
        Self { parts, index }
    }

    /// The jump of 11.2 (a single step is a jump by one). Returns the number
    /// of HMACs computed.
    fn advance_to(&mut self, target: u32) -> usize {
        let mut hmacs = 0;
        for (p, label) in L_GROUP_RATCHET.into_iter().enumerate() {
            let shift = 8 * (3 - p as u32);
            let steps = (target >> shift).wrapping_sub(self.index >> shift);
            if steps > 0 {
                let mut part = self.parts[p];
                for _ in 0..steps {
                    part = hmac(&part, label);
                }
                self.parts[p] = part;
                for (slot, lower) in self.parts.iter_mut().zip(L_GROUP_RATCHET).skip(p + 1) {
                    *slot = hmac(&part, lower);
                }
                self.index = (target >> shift) << shift;
                hmacs += steps as usize + 3 - p;
            }
        }
        self.index = target;
        hmacs
    }

    /// Key and nonce of the message at the current index that carries
    /// `salt` (11.3).
    fn message_key(&self, salt: &[u8; 16]) -> ([u8; 32], [u8; 12]) {
        hkdf44(salt, self.parts.as_flattened(), L_GROUP_MESSAGE_KEY)
    }
}

/// The associated data of a group message (11.4).
fn group_aad(session_id: &[u8; 32], index: u32) -> [u8; GROUP_AD_LEN] {
    let mut aad = [0u8; GROUP_AD_LEN];
    let mut at = 0;
    for part in [
        L_GROUP_MESSAGE_AD,
        &(ROOM.len() as u16).to_be_bytes(),
        ROOM.as_bytes(),
        session_id,
        &[2],
        &index.to_be_bytes(),
    ] {
        aad[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    aad
}

/// A group message split the way a receiver checks it: the signed bytes
/// (label and everything before the signature), the signature, the
/// ciphertext and its tag.
struct Received {
    salt: [u8; 16],
    signed: Vec<u8>,
    signature: Signature,
    ciphertext: Vec<u8>,
    tag: Tag,
    index: u32,
}

impl Received {
    fn new(message: &GroupMessage) -> Self {
        let wire = message.to_bytes();
        let (body, signature) = wire.split_at(wire.len() - 64);
        // Version, index, salt, then the ciphertext and its tag (11.5).
        let (ciphertext, tag) = body[21..].split_at(body.len() - 21 - 16);
        Self {
            salt: body[5..21].try_into().expect("16 bytes"),
            signed: [L_GROUP_MESSAGE_SIGNATURE, body].concat(),
            signature: Signature::from_slice(signature).expect("64 bytes"),
            ciphertext: ciphertext.to_vec(),
            tag: Tag::try_from(tag).expect("16 bytes"),
            index: message.message_index(),
        }
    }
}

/// A session key's ratchet and Ed25519 key, read from its encoding (11.6).
fn session_key_parts(key: &SessionKey) -> (FloorRatchet, [u8; 32]) {
    let bytes = key.to_bytes();
    let id: [u8; 32] = bytes[133..165].try_into().expect("32 bytes");
    (FloorRatchet::from_export(&bytes), id)
}

// ---------------------------------------------------------------------------
// 1. Group encrypt of 1 KiB.
// ---------------------------------------------------------------------------

/// The encryption floor: the message is built in place in its signed-bytes
/// buffer (label, version, index, salt, ciphertext, tag), sealed, then
/// signed.
struct EncryptFloor {
    signing: SigningKey,
    ratchet: FloorRatchet,
    fixed_key: ([u8; 32], [u8; 12]),
    session_id: [u8; 32],
    pt: [u8; 1024],
}

impl EncryptFloor {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let signing = SigningKey::generate(r);
        let mut parts = [[0u8; 32]; 4];
        for part in &mut parts {
            r.fill_bytes(part);
        }
        Self {
            session_id: signing.verifying_key().to_bytes(),
            signing,
            ratchet: FloorRatchet { parts, index: 0 },
            fixed_key: ([0x42; 32], [0x24; 12]),
            pt: [0x61; 1024],
        }
    }

    fn seal_sign(&self, key: &([u8; 32], [u8; 12]), index: u32, salt: &[u8; 16]) -> Signature {
        let mut buf = [0u8; signed_len(1024)];
        buf[..35].copy_from_slice(L_GROUP_MESSAGE_SIGNATURE);
        buf[35] = 2;
        buf[36..40].copy_from_slice(&index.to_be_bytes());
        buf[40..56].copy_from_slice(salt);
        buf[56..56 + 1024].copy_from_slice(black_box(&self.pt));
        let aad = group_aad(&self.session_id, index);
        let tag = aes_seal(&key.0, &key.1, &aad, &mut buf[56..56 + 1024]);
        buf[56 + 1024..].copy_from_slice(&tag);
        self.signing.sign(&buf)
    }

    /// The issue's floor: one signature and one seal.
    fn sign_aes(&self) -> Signature {
        self.seal_sign(&self.fixed_key, self.ratchet.index, &SALT)
    }

    /// Everything the operation computes: a salt from the operating system,
    /// message key from the ratchet, seal, sign, step the ratchet.
    fn full(&mut self) -> Signature {
        let index = self.ratchet.index;
        let salt = salt_draw();
        let signature = self.seal_sign(&self.ratchet.message_key(&salt), index, &salt);
        self.ratchet.advance_to(index + 1);
        signature
    }
}

struct GroupEncrypt {
    outbound: OutboundGroupSession,
    pt: Vec<u8>,
    floor: EncryptFloor,
}

impl GroupEncrypt {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let creator = Account::new_with_rng(r).identity_keys();
        let mut outbound =
            OutboundGroupSession::new_with_rng(ROOM, creator, r).expect("valid room id");
        let pt = vec![0x61u8; 1024];
        let message = outbound.encrypt(&pt).expect("encrypt");
        assert_eq!(Received::new(&message).signed.len(), signed_len(1024));
        Self {
            outbound,
            pt,
            floor: EncryptFloor::new(r),
        }
    }

    fn op(&mut self) -> GroupMessage {
        self.outbound.encrypt(black_box(&self.pt)).expect("encrypt")
    }
}

fn group_encrypt(c: &mut Criterion, fx: &mut GroupEncrypt) {
    let mut g = c.benchmark_group("group_encrypt_1KiB");
    g.bench_function("op", |b| b.iter(|| fx.op()));
    let f = &mut fx.floor;
    let signed = [0x33u8; signed_len(1024)];
    g.bench_function("ed25519_sign_1080B", |b| {
        b.iter(|| f.signing.sign(black_box(&signed)))
    });
    let aad = group_aad(&f.session_id, 7);
    g.bench_function("aes256gcm_seal_1KiB", |b| {
        b.iter(|| {
            let mut buf = f.pt;
            aes_seal(&f.fixed_key.0, &f.fixed_key.1, &aad, black_box(&mut buf))
        })
    });
    ratchet_primitives(&mut g);
    g.bench_function("composite_floor_sign_aes", |b| b.iter(|| f.sign_aes()));
    g.bench_function("composite_floor", |b| b.iter(|| f.full()));
    g.finish();
}

/// One HMAC of the group ratchet and the HKDF of a group message key.
fn ratchet_primitives(g: &mut BenchmarkGroup<'_, WallTime>) {
    let part = [0x17u8; 32];
    g.bench_function("hmac_ratchet", |b| {
        b.iter(|| hmac(black_box(&part), L_GROUP_RATCHET[3]))
    });
    let parts = [0x18u8; 128];
    g.bench_function("hkdf44_group", |b| {
        b.iter(|| hkdf44(black_box(&SALT), black_box(&parts), L_GROUP_MESSAGE_KEY))
    });
}

// ---------------------------------------------------------------------------
// 2. Sequential group decrypt of 1 KiB; 3. decrypt after a jump.
// ---------------------------------------------------------------------------

/// A real group message and what a receiver needs to check it: the floor
/// verifies and opens it for real.
struct DecryptFloor {
    verifying: VerifyingKey,
    received: Received,
    ratchet: FloorRatchet,
    key: ([u8; 32], [u8; 12]),
    aad: [u8; GROUP_AD_LEN],
}

impl DecryptFloor {
    /// `ratchet` is the receiver's ratchet before the message; the message
    /// key is derived from it once here, checked, and kept.
    fn new(message: &GroupMessage, ratchet: FloorRatchet, session_id: &[u8; 32]) -> Self {
        let received = Received::new(message);
        let mut at = ratchet.clone();
        at.advance_to(received.index);
        let floor = Self {
            verifying: VerifyingKey::from_bytes(session_id).expect("valid key"),
            key: at.message_key(&received.salt),
            aad: group_aad(session_id, received.index),
            received,
            ratchet,
        };
        floor.verify_aes();
        floor
    }

    fn verify(&self) {
        self.verifying
            .verify_strict(&self.received.signed, &self.received.signature)
            .expect("valid signature");
    }

    /// Copies the ciphertext out (as any decryption must) and opens it.
    fn open(&self, key: &([u8; 32], [u8; 12])) -> [u8; 1024] {
        let mut buf = [0u8; 1024];
        buf.copy_from_slice(&self.received.ciphertext);
        aes_open(&key.0, &key.1, &self.aad, &mut buf, &self.received.tag);
        buf
    }

    /// The issue's floor: strict verify and open.
    fn verify_aes(&self) -> [u8; 1024] {
        self.verify();
        self.open(&self.key)
    }

    /// Strict verify, one ratchet step and the HKDF of a message key, open.
    /// The ratchet steps on as in sequential decryption; the derived key is
    /// consumed by `black_box` and the kept key opens the same message.
    fn sequential(&mut self) -> [u8; 1024] {
        self.verify();
        let index = self.ratchet.index;
        self.ratchet.advance_to(index + 1);
        black_box(self.ratchet.message_key(&self.received.salt));
        self.open(&self.key)
    }

    /// Strict verify, the jump from a fresh copy of the ratchet, HKDF, open
    /// with the key just derived.
    fn jump(&self) -> [u8; 1024] {
        self.verify();
        let mut ratchet = self.ratchet.clone();
        ratchet.advance_to(self.received.index);
        self.open(&ratchet.message_key(&self.received.salt))
    }
}

struct SeqDecrypt {
    outbound: OutboundGroupSession,
    inbound: InboundGroupSession,
    pt: Vec<u8>,
    floor: DecryptFloor,
}

impl SeqDecrypt {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let creator = Account::new_with_rng(r).identity_keys();
        let mut outbound =
            OutboundGroupSession::new_with_rng(ROOM, creator, r).expect("valid room id");
        let key = outbound.session_key();
        let inbound = InboundGroupSession::new(&key).expect("signed");
        let pt = vec![0x62u8; 1024];
        let (ratchet, id) = session_key_parts(&key);
        let first = outbound.encrypt(&pt).expect("encrypt");
        Self {
            outbound,
            inbound,
            pt,
            floor: DecryptFloor::new(&first, ratchet, &id),
        }
    }

    fn next_message(&mut self) -> GroupMessage {
        self.outbound.encrypt(&self.pt).expect("encrypt")
    }

    /// Decrypts `n` messages at the next indices; only the decryption is
    /// timed (the outputs are dropped afterwards, as criterion's
    /// `iter_batched` does).
    fn timed_op(&mut self, n: u64) -> Duration {
        let messages: Vec<GroupMessage> = (0..n).map(|_| self.next_message()).collect();
        let mut out = Vec::with_capacity(messages.len());
        let start = Instant::now();
        for m in &messages {
            out.push(self.inbound.decrypt(ROOM, m).expect("decrypt"));
        }
        let elapsed = start.elapsed();
        drop(black_box(out));
        elapsed
    }
}

fn group_decrypt_seq(c: &mut Criterion, fx: &mut SeqDecrypt) {
    let mut g = c.benchmark_group("group_decrypt_seq_1KiB");
    g.bench_function("op", |b| {
        b.iter_custom(|n| fx.timed_op(n));
    });
    decrypt_primitives(&mut g, &fx.floor);
    ratchet_primitives(&mut g);
    let f = &mut fx.floor;
    g.bench_function("composite_floor_verify_aes", |b| b.iter(|| f.verify_aes()));
    g.bench_function("composite_floor", |b| b.iter(|| f.sequential()));
    g.finish();
}

fn decrypt_primitives(g: &mut BenchmarkGroup<'_, WallTime>, f: &DecryptFloor) {
    g.bench_function("ed25519_verify_strict_1080B", |b| b.iter(|| f.verify()));
    g.bench_function("aes256gcm_open_1KiB", |b| b.iter(|| f.open(&f.key)));
}

/// A session key at index 0 and a message at index `JUMP`, made by this
/// bench as PROTOCOL.md 11.5 and 11.6 describe (encrypting 100,000 messages
/// through the crate would take seconds); the crate's inbound session must
/// accept both, which also checks the floor ratchet against the crate's.
struct Jump {
    key: SessionKey,
    message: GroupMessage,
    floor: DecryptFloor,
}

impl Jump {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let signing = SigningKey::generate(r);
        let id = signing.verifying_key().to_bytes();
        let creator = Account::new_with_rng(r).identity_keys();
        let mut key_bytes = vec![2, 0, 0, 0, 0];
        let mut parts = [0u8; 128];
        r.fill_bytes(&mut parts);
        key_bytes.extend_from_slice(&parts);
        key_bytes.extend_from_slice(&id);
        key_bytes.extend_from_slice(creator.ed25519.as_bytes());
        key_bytes.extend_from_slice(creator.curve25519.as_bytes());
        key_bytes.extend_from_slice(&(ROOM.len() as u16).to_be_bytes());
        key_bytes.extend_from_slice(ROOM.as_bytes());
        let signed = [L_GROUP_SESSION_KEY, key_bytes.as_slice()].concat();
        assert_eq!(signed.len(), SESSION_KEY_SIGNED_LEN);
        key_bytes.extend_from_slice(&signing.sign(&signed).to_bytes());
        let key = SessionKey::from_bytes(&key_bytes).expect("session key");

        let start = FloorRatchet::from_export(&key_bytes);
        let mut at = start.clone();
        assert_eq!(at.advance_to(JUMP), JUMP_HMACS);
        let (k, nonce) = at.message_key(&SALT);
        let mut wire = vec![2];
        wire.extend_from_slice(&JUMP.to_be_bytes());
        wire.extend_from_slice(&SALT);
        let mut body = [0x63u8; 1024];
        let tag = aes_seal(&k, &nonce, &group_aad(&id, JUMP), &mut body);
        wire.extend_from_slice(&body);
        wire.extend_from_slice(&tag);
        let signature = signing.sign(&[L_GROUP_MESSAGE_SIGNATURE, wire.as_slice()].concat());
        wire.extend_from_slice(&signature.to_bytes());
        let message = GroupMessage::from_bytes(&wire).expect("group message");

        let fx = Self {
            floor: DecryptFloor::new(&message, start, &id),
            key,
            message,
        };
        // The crate agrees with the floor: same plaintext, same ratchet.
        let mut session = fx.setup();
        assert_eq!(fx.op(&mut session).plaintext, [0x63u8; 1024]);
        let export = session.export_at(JUMP).expect("export").to_bytes();
        assert_eq!(FloorRatchet::from_export(&export).parts, at.parts);
        assert_eq!(fx.floor.jump(), [0x63u8; 1024]);
        fx
    }

    fn setup(&self) -> InboundGroupSession {
        InboundGroupSession::new(&self.key).expect("signed")
    }

    fn op(&self, session: &mut InboundGroupSession) -> GroupDecrypted {
        session.decrypt(ROOM, &self.message).expect("decrypt")
    }

    fn timed_op(&self, n: u64) -> Duration {
        let mut sessions: Vec<InboundGroupSession> = (0..n).map(|_| self.setup()).collect();
        let mut out = Vec::with_capacity(sessions.len());
        let start = Instant::now();
        for s in &mut sessions {
            out.push(self.op(s));
        }
        let elapsed = start.elapsed();
        drop(black_box(out));
        elapsed
    }
}

fn group_decrypt_jump(c: &mut Criterion, fx: &Jump) {
    let mut g = c.benchmark_group("group_decrypt_jump_100k");
    g.bench_function("op", |b| {
        b.iter_batched_ref(|| fx.setup(), |s| fx.op(s), BatchSize::SmallInput)
    });
    decrypt_primitives(&mut g, &fx.floor);
    ratchet_primitives(&mut g);
    g.bench_function("composite_floor", |b| b.iter(|| fx.floor.jump()));
    g.finish();
}

// ---------------------------------------------------------------------------
// 4. Share a room key to N devices.
// ---------------------------------------------------------------------------

/// An endpoint with established (both-ways) pairwise sessions to `n`
/// devices, and the pickle it is restored from when its store has grown.
struct Sharer {
    key: PickleKey,
    pickle: String,
    endpoint: Endpoint,
    devices: Vec<SelfSignedDevice>,
    threads: usize,
    stored_after_setup: usize,
    since_reset: usize,
}

impl Sharer {
    fn new(n: usize, r: &mut ChaCha20Rng) -> Self {
        let mut alice = Endpoint::from_account(ALICE_USER, ALICE_DEVICE, Account::new_with_rng(r))
            .expect("ids");
        alice.set_rng(Box::new(rng(r.next_u64())));
        let alice_device = alice
            .device_keys()
            .check_self_signature()
            .expect("self-signed");
        let alice_key = alice.identity_keys().curve25519;
        let mut peers = std::collections::BTreeMap::new();
        let mut devices = Vec::with_capacity(n);
        for i in 0..n {
            let mut peer = Endpoint::from_account(
                &format!("@peer{i}:example.org"),
                "PEERDEV",
                Account::new_with_rng(r),
            )
            .expect("ids");
            peer.set_rng(Box::new(rng(r.next_u64())));
            let keys = peer.keys_to_publish(1);
            peer.mark_keys_as_published(&keys);
            devices.push(
                alice
                    .establish_session(&keys.device_keys, &keys.one_time_keys[0])
                    .expect("session"),
            );
            peers.insert(peer.identity_keys().curve25519, peer);
        }
        // One share each way, so Alice's sessions have read a reply and send
        // normal messages, as established sessions do.
        let outcome = alice
            .share_room_key("!setup:example.org", &devices)
            .expect("share");
        assert_eq!(outcome.messages.len(), n);
        for m in &outcome.messages {
            let peer = peers.get_mut(&m.recipient_key).expect("a peer");
            assert_eq!(m.sender_key, alice_key);
            peer.receive_device_message(ALICE_USER, &m.sender_key, &m.message)
                .expect("receive");
            let reply = peer
                .share_room_key("!reply:example.org", std::slice::from_ref(&alice_device))
                .expect("share");
            let m = &reply.messages[0];
            assert!(!m.message.is_pre_key());
            alice
                .receive_device_message(peer.user_id(), &m.sender_key, &m.message)
                .expect("receive");
        }
        let key = PickleKey::random_with_rng(r);
        let pickle = alice.pickle_with_rng(&key, r);
        let mut fx = Self {
            key,
            pickle,
            stored_after_setup: alice.inbound_keys().len(),
            endpoint: alice,
            devices,
            threads: 1,
            since_reset: 0,
        };
        fx.restore();
        assert!(!fx.op().rotated);
        let outcome = fx.op();
        assert_eq!(outcome.messages.len(), n);
        assert!(outcome.rotated && outcome.missing_sessions.is_empty());
        assert!(outcome.messages.iter().all(|m| !m.message.is_pre_key()));
        fx
    }

    fn restore(&mut self) {
        self.endpoint = Endpoint::from_pickle(&self.pickle, &self.key).expect("pickle");
        self.endpoint.set_rng(Box::new(rng(0x5eed)));
        self.endpoint.set_share_threads(self.threads);
        self.since_reset = 0;
    }

    fn set_threads(&mut self, threads: usize) {
        self.threads = threads;
        self.endpoint.set_share_threads(threads);
    }

    /// Each rotation adds our own inbound copy to the store: restore the
    /// endpoint (outside the timed region) before it grows far.
    fn maybe_reset(&mut self) {
        if self.since_reset >= RESET_EVERY {
            self.restore();
            debug_assert_eq!(self.endpoint.inbound_keys().len(), self.stored_after_setup);
        }
        self.since_reset += 1;
    }

    fn op(&mut self) -> RoomKeyShareOutcome {
        self.endpoint.rotate_room_key(ROOM);
        self.endpoint
            .share_room_key(ROOM, black_box(&self.devices))
            .expect("share")
    }

    /// The rotation alone: a new session (and our own inbound copy) shared
    /// with nobody.
    fn op_rotate(&mut self) -> RoomKeyShareOutcome {
        self.endpoint.rotate_room_key(ROOM);
        self.endpoint.share_room_key(ROOM, &[]).expect("share")
    }

    fn timed(&mut self, n: u64, rotate_only: bool) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..n {
            self.maybe_reset();
            let start = Instant::now();
            if rotate_only {
                black_box(self.op_rotate());
            } else {
                black_box(self.op());
            }
            total += start.elapsed();
        }
        total
    }
}

/// Checks that a room-key share for `ROOM` is `SHARE_LEN` bytes (12.1).
fn check_share_len(r: &mut ChaCha20Rng) {
    let ids: IdentityKeys = Account::new_with_rng(r).identity_keys();
    let outbound = OutboundGroupSession::new_with_rng(ROOM, ids, r).expect("valid room id");
    let share = RoomKeyShare {
        room_id: ROOM.to_owned(),
        sender_user_id: ALICE_USER.to_owned(),
        sender_device_id: ALICE_DEVICE.to_owned(),
        session_key: outbound.session_key(),
        sender: ids,
        recipient: ids,
    };
    assert_eq!(share.to_bytes().len(), SHARE_LEN);
}

/// N pairwise chains sending the share payload, and the group session
/// creation: the share floor on plain arrays.
struct ShareFloor {
    chains: Vec<[u8; 32]>,
    pt: [u8; SHARE_LEN],
    aad: [u8; PAIRWISE_AAD_LEN],
    signed: [u8; SESSION_KEY_SIGNED_LEN],
    rng: ChaCha20Rng,
}

impl ShareFloor {
    fn new(n: usize, seed: u64) -> Self {
        Self {
            chains: (0..n).map(|i| [i as u8; 32]).collect(),
            pt: [0x64; SHARE_LEN],
            aad: [3; PAIRWISE_AAD_LEN],
            signed: [0x65; SESSION_KEY_SIGNED_LEN],
            rng: rng(seed),
        }
    }

    /// Ed25519 key generation, 128 random ratchet bytes, the session key
    /// signature.
    fn creation(&mut self) -> (VerifyingKey, Signature) {
        let signing = SigningKey::generate(&mut self.rng);
        let mut parts = [0u8; 128];
        self.rng.fill_bytes(&mut parts);
        black_box(&parts);
        (signing.verifying_key(), signing.sign(&self.signed))
    }

    /// The rotation floor: creation, then the strict verify the endpoint
    /// does when it adds its own inbound copy.
    fn rotation(&mut self) -> Signature {
        let (_verifying, signature) = self.creation();
        signature
    }

    fn floor(&mut self) -> Vec<([u8; SHARE_LEN], Tag)> {
        black_box(self.creation());
        let (pt, aad) = (&self.pt, &self.aad);
        self.chains
            .iter_mut()
            .map(|chain| pairwise_send(chain, aad, pt))
            .collect()
    }
}

/// Chain step, message key, seal of one pairwise message.
fn pairwise_send(chain: &mut [u8; 32], aad: &[u8], pt: &[u8; SHARE_LEN]) -> ([u8; SHARE_LEN], Tag) {
    let (seed, next) = hmac_pair(chain);
    *chain = next;
    let (key, nonce) = hkdf44(&salt_draw(), &seed, L_MESSAGE_KEY);
    let mut buf = *black_box(pt);
    let tag = aes_seal(&key, &nonce, aad, &mut buf);
    (buf, tag)
}

fn share(c: &mut Criterion, n: usize, fx: &mut Sharer, floor: &mut ShareFloor) {
    let mut g = c.benchmark_group(format!("share_{n}"));
    if n >= 1000 {
        g.sample_size(10).sampling_mode(SamplingMode::Flat);
    }
    for threads in [1, 2] {
        fx.set_threads(threads);
        let name = if threads == 1 {
            "op_1thread"
        } else {
            "op_2threads"
        };
        g.bench_function(name, |b| b.iter_custom(|iters| fx.timed(iters, false)));
    }
    fx.set_threads(1);
    if n < 1000 {
        g.bench_function("op_rotate", |b| {
            b.iter_custom(|iters| fx.timed(iters, true))
        });
        let chain = [0x66u8; 32];
        g.bench_function("hmac_pair", |b| b.iter(|| hmac_pair(black_box(&chain))));
        g.bench_function("hkdf44_msg", |b| {
            b.iter(|| hkdf44(black_box(&SALT), black_box(&chain), L_MESSAGE_KEY))
        });
        let aad = floor.aad;
        let pt = floor.pt;
        let (key, nonce) = hkdf44(&SALT, &chain, L_MESSAGE_KEY);
        g.bench_function(format!("aes256gcm_seal_{SHARE_LEN}B"), |b| {
            b.iter(|| {
                let mut buf = *black_box(&pt);
                let tag = aes_seal(&key, &nonce, &aad, &mut buf);
                (buf, tag)
            })
        });
        let mut r = rng(41);
        g.bench_function("ed25519_keygen", |b| {
            b.iter(|| SigningKey::generate(&mut r))
        });
        let signing = SigningKey::generate(&mut r);
        let signed = floor.signed;
        let signature = signing.sign(&signed);
        g.bench_function(format!("ed25519_sign_{SESSION_KEY_SIGNED_LEN}B"), |b| {
            b.iter(|| signing.sign(black_box(&signed)))
        });
        let verifying = signing.verifying_key();
        g.bench_function(
            format!("ed25519_verify_strict_{SESSION_KEY_SIGNED_LEN}B"),
            |b| {
                b.iter(|| {
                    verifying
                        .verify_strict(black_box(&signed), &signature)
                        .expect("valid")
                })
            },
        );
        g.bench_function("composite_floor_rotate", |b| b.iter(|| floor.rotation()));
    }
    g.bench_function("composite_floor", |b| b.iter(|| floor.floor()));
    g.finish();
}

// ---------------------------------------------------------------------------
// 5. Event envelope: encrypt, JSON out and in, decrypt.
// ---------------------------------------------------------------------------

/// Alice (sender) and Bob (receiver) sharing `ROOM`, with the pickles they
/// are restored from every `RESET_EVERY` events so Bob's replay record stays
/// small (and Alice restarts at the same index, so no index is reused with
/// another event id after a restore).
struct Events {
    key: PickleKey,
    alice_pickle: String,
    bob_pickle: String,
    alice: Endpoint,
    bob: Endpoint,
    content: serde_json::Value,
    counter: u64,
    event_id: String,
    since_reset: usize,
    /// A fixed envelope and its JSON, for the `part_*` benchmarks.
    sample: EncryptedEvent,
    sample_json: String,
}

/// The plaintext length `encrypt_event` produces for `content` (from the
/// group message's size).
fn event_plaintext_len(event: &EncryptedEvent) -> usize {
    event.ciphertext.to_bytes().len() - 5 - 16 - 64
}

impl Events {
    fn new(pt_len: usize, r: &mut ChaCha20Rng) -> Self {
        let mut alice = Endpoint::from_account(ALICE_USER, ALICE_DEVICE, Account::new_with_rng(r))
            .expect("ids");
        let mut bob = Endpoint::from_account("@bob:example.org", "BOB", Account::new_with_rng(r))
            .expect("ids");
        alice.set_rng(Box::new(rng(r.next_u64())));
        bob.set_rng(Box::new(rng(r.next_u64())));
        let keys = bob.keys_to_publish(1);
        bob.mark_keys_as_published(&keys);
        let bob_device = alice
            .establish_session(&keys.device_keys, &keys.one_time_keys[0])
            .expect("session");
        let outcome = alice.share_room_key(ROOM, &[bob_device]).expect("share");
        bob.receive_device_message(
            ALICE_USER,
            &outcome.messages[0].sender_key,
            &outcome.messages[0].message,
        )
        .expect("receive");
        let key = PickleKey::random_with_rng(r);
        let alice_pickle = alice.pickle_with_rng(&key, r);
        let bob_pickle = bob.pickle_with_rng(&key, r);

        // A message body that makes the event plaintext exactly `pt_len`.
        let content = |body: String| serde_json::json!({"body": body, "msgtype": "m.text"});
        let probe = alice
            .encrypt_event(ROOM, "m.room.message", &content(String::new()))
            .expect("encrypt");
        let base = event_plaintext_len(&probe);
        let content = content("x".repeat(pt_len - base));
        let sample = alice
            .encrypt_event(ROOM, "m.room.message", &content)
            .expect("encrypt");
        assert_eq!(event_plaintext_len(&sample), pt_len);
        let sample_json = sample.to_json();
        let mut fx = Self {
            key,
            alice_pickle,
            bob_pickle,
            alice,
            bob,
            content,
            counter: 0,
            event_id: String::new(),
            since_reset: 0,
            sample,
            sample_json,
        };
        fx.restore();
        let event = fx.op();
        assert_eq!((event.message_index, event.authenticated), (0, true));
        fx
    }

    fn restore(&mut self) {
        self.alice = Endpoint::from_pickle(&self.alice_pickle, &self.key).expect("pickle");
        self.bob = Endpoint::from_pickle(&self.bob_pickle, &self.key).expect("pickle");
        // Sessions never expire by message count here.
        self.alice.set_rotation_policy(RotationPolicy {
            max_messages: u32::MAX,
            ..RotationPolicy::default()
        });
        self.since_reset = 0;
    }

    fn op(&mut self) -> DecryptedEvent {
        self.counter += 1;
        self.event_id.clear();
        write!(self.event_id, "${}:example.org", self.counter).expect("string");
        let envelope = self
            .alice
            .encrypt_event(ROOM, "m.room.message", black_box(&self.content))
            .expect("encrypt");
        let json = envelope.to_json();
        let parsed = EncryptedEvent::from_json(black_box(&json)).expect("envelope");
        self.bob
            .decrypt_event(ROOM, &self.event_id, &parsed)
            .expect("decrypt")
    }

    fn timed(&mut self, n: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..n {
            if self.since_reset >= RESET_EVERY {
                self.restore();
            }
            self.since_reset += 1;
            let start = Instant::now();
            black_box(self.op());
            total += start.elapsed();
        }
        total
    }
}

/// Sender and receiver of a 256-byte event on plain arrays, in lockstep:
/// every open really verifies.
struct EventFloor {
    signing: SigningKey,
    verifying: VerifyingKey,
    send: FloorRatchet,
    receive: FloorRatchet,
    fixed_key: ([u8; 32], [u8; 12]),
    session_id: [u8; 32],
    pt: [u8; 256],
}

impl EventFloor {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let signing = SigningKey::generate(r);
        let mut parts = [[0u8; 32]; 4];
        for part in &mut parts {
            r.fill_bytes(part);
        }
        let ratchet = FloorRatchet { parts, index: 0 };
        Self {
            verifying: signing.verifying_key(),
            session_id: signing.verifying_key().to_bytes(),
            signing,
            send: ratchet.clone(),
            receive: ratchet,
            fixed_key: ([0x42; 32], [0x24; 12]),
            pt: [0x61; 256],
        }
    }

    fn round_trip(
        &self,
        send_key: &([u8; 32], [u8; 12]),
        receive_key: &([u8; 32], [u8; 12]),
        index: u32,
        salt: &[u8; 16],
    ) -> [u8; 256] {
        let mut buf = [0u8; signed_len(256)];
        buf[..35].copy_from_slice(L_GROUP_MESSAGE_SIGNATURE);
        buf[35] = 2;
        buf[36..40].copy_from_slice(&index.to_be_bytes());
        buf[40..56].copy_from_slice(salt);
        buf[56..56 + 256].copy_from_slice(black_box(&self.pt));
        let aad = group_aad(&self.session_id, index);
        let tag = aes_seal(&send_key.0, &send_key.1, &aad, &mut buf[56..56 + 256]);
        buf[56 + 256..].copy_from_slice(&tag);
        let signature = self.signing.sign(&buf);
        let buf = black_box(buf);
        self.verifying
            .verify_strict(&buf, &signature)
            .expect("valid");
        let mut out = [0u8; 256];
        out.copy_from_slice(&buf[56..56 + 256]);
        let tag = Tag::try_from(&buf[56 + 256..]).expect("16 bytes");
        aes_open(&receive_key.0, &receive_key.1, &aad, &mut out, &tag);
        out
    }

    /// The issue's floor: sign, verify, seal, open.
    fn sign_verify_aes(&self) -> [u8; 256] {
        self.round_trip(&self.fixed_key, &self.fixed_key, self.send.index, &SALT)
    }

    /// Plus each side's ratchet step and message-key HKDF.
    fn full(&mut self) -> [u8; 256] {
        let index = self.send.index;
        let salt = salt_draw();
        let out = self.round_trip(
            &self.send.message_key(&salt),
            &self.receive.message_key(&salt),
            index,
            &salt,
        );
        self.send.advance_to(index + 1);
        self.receive.advance_to(index + 1);
        out
    }
}

fn events(c: &mut Criterion, fx: &mut Events, floor: &mut EventFloor) {
    let mut g = c.benchmark_group("event_256B");
    g.bench_function("op", |b| b.iter_custom(|n| fx.timed(n)));
    let signed = [0x33u8; signed_len(256)];
    let signature = floor.signing.sign(&signed);
    g.bench_function(format!("ed25519_sign_{}B", signed_len(256)), |b| {
        b.iter(|| floor.signing.sign(black_box(&signed)))
    });
    g.bench_function(format!("ed25519_verify_strict_{}B", signed_len(256)), |b| {
        b.iter(|| {
            floor
                .verifying
                .verify_strict(black_box(&signed), &signature)
                .expect("valid")
        })
    });
    let (key, nonce) = floor.fixed_key;
    let aad = group_aad(&floor.session_id, 9);
    let pt = floor.pt;
    g.bench_function("aes256gcm_seal_256B", |b| {
        b.iter(|| {
            let mut buf = *black_box(&pt);
            let tag = aes_seal(&key, &nonce, &aad, &mut buf);
            (buf, tag)
        })
    });
    let mut sealed = pt;
    let tag = aes_seal(&key, &nonce, &aad, &mut sealed);
    g.bench_function("aes256gcm_open_256B", |b| {
        b.iter(|| {
            let mut buf = *black_box(&sealed);
            aes_open(&key, &nonce, &aad, &mut buf, &tag);
            buf
        })
    });
    g.bench_function("composite_floor_sign_verify_aes", |b| {
        b.iter(|| floor.sign_verify_aes())
    });
    g.bench_function("composite_floor", |b| b.iter(|| floor.full()));
    // Pieces of the operation, for the analysis (not part of any floor).
    g.bench_function("part_to_json", |b| b.iter(|| fx.sample.to_json()));
    g.bench_function("part_from_json", |b| {
        b.iter(|| EncryptedEvent::from_json(black_box(&fx.sample_json)).expect("envelope"))
    });
    let id = fx.sample.session_id.to_base64();
    g.bench_function("part_session_id_parse", |b| {
        b.iter(|| GroupSessionId::from_base64(black_box(&id)).expect("key"))
    });
    g.finish();
}

// ---------------------------------------------------------------------------
// 6. A backlog of 64 messages: decrypt_batch vs 64 decrypt calls.
// ---------------------------------------------------------------------------

struct Backlog {
    key: SessionKey,
    messages: Vec<GroupMessage>,
    received: Vec<Received>,
    verifying: VerifyingKey,
    keys: Vec<VerifyingKey>,
    ratchet: FloorRatchet,
    aads: Vec<[u8; GROUP_AD_LEN]>,
    pt_len: usize,
}

impl Backlog {
    fn new(pt_len: usize, r: &mut ChaCha20Rng) -> Self {
        let creator = Account::new_with_rng(r).identity_keys();
        let mut outbound =
            OutboundGroupSession::new_with_rng(ROOM, creator, r).expect("valid room id");
        let key = outbound.session_key();
        let pt = vec![0x65u8; pt_len];
        let messages: Vec<GroupMessage> = (0..64)
            .map(|_| outbound.encrypt(&pt).expect("encrypt"))
            .collect();
        let (ratchet, id) = session_key_parts(&key);
        let verifying = VerifyingKey::from_bytes(&id).expect("valid key");
        let fx = Self {
            received: messages.iter().map(Received::new).collect(),
            aads: (0..64).map(|i| group_aad(&id, i)).collect(),
            key,
            messages,
            verifying,
            keys: vec![verifying; 64],
            ratchet,
            pt_len,
        };
        let batch = fx.op_batch(&mut fx.setup());
        assert!(
            batch
                .iter()
                .all(|d| d.as_ref().is_ok_and(|d| d.plaintext == pt))
        );
        assert_eq!(fx.op_sequential(&mut fx.setup()).len(), 64);
        fx.floor_sequential();
        fx.floor_batch();
        fx
    }

    fn setup(&self) -> InboundGroupSession {
        InboundGroupSession::new(&self.key).expect("signed")
    }

    fn op_sequential(&self, session: &mut InboundGroupSession) -> Vec<GroupDecrypted> {
        self.messages
            .iter()
            .map(|m| session.decrypt(ROOM, m).expect("decrypt"))
            .collect()
    }

    fn op_batch(
        &self,
        session: &mut InboundGroupSession,
    ) -> Vec<Result<GroupDecrypted, roomseal::GroupError>> {
        session.decrypt_batch(ROOM, &self.messages)
    }

    fn verify_strict_x64(&self) {
        for m in &self.received {
            self.verifying
                .verify_strict(&m.signed, &m.signature)
                .expect("valid");
        }
    }

    fn verify_batch(&self) {
        let messages: Vec<&[u8]> = self.received.iter().map(|m| m.signed.as_slice()).collect();
        let signatures: Vec<Signature> = self.received.iter().map(|m| m.signature).collect();
        ed25519_dalek::verify_batch(&messages, &signatures, &self.keys).expect("valid");
    }

    /// Ratchet steps, message keys and opens of the 64 messages (they really
    /// decrypt).
    fn open_all(&self) -> usize {
        let mut ratchet = self.ratchet.clone();
        let mut buf = vec![0u8; self.pt_len];
        for (m, aad) in self.received.iter().zip(&self.aads) {
            ratchet.advance_to(m.index);
            let (key, nonce) = ratchet.message_key(&m.salt);
            buf.copy_from_slice(&m.ciphertext);
            aes_open(&key, &nonce, aad, &mut buf, &m.tag);
            black_box(&buf);
        }
        buf.len()
    }

    fn floor_sequential(&self) -> usize {
        let mut ratchet = self.ratchet.clone();
        let mut buf = vec![0u8; self.pt_len];
        for (m, aad) in self.received.iter().zip(&self.aads) {
            self.verifying
                .verify_strict(&m.signed, &m.signature)
                .expect("valid");
            ratchet.advance_to(m.index);
            let (key, nonce) = ratchet.message_key(&m.salt);
            buf.copy_from_slice(&m.ciphertext);
            aes_open(&key, &nonce, aad, &mut buf, &m.tag);
            black_box(&buf);
        }
        buf.len()
    }

    fn floor_batch(&self) -> usize {
        self.verify_batch();
        self.open_all()
    }

    fn timed_op(&self, n: u64, batch: bool) -> Duration {
        let mut sessions: Vec<InboundGroupSession> = (0..n).map(|_| self.setup()).collect();
        let mut out = Vec::with_capacity(sessions.len());
        let start = Instant::now();
        for s in &mut sessions {
            if batch {
                out.push(self.op_batch(s).len());
            } else {
                out.push(self.op_sequential(s).len());
            }
        }
        let elapsed = start.elapsed();
        black_box(out);
        elapsed
    }
}

fn backlog(c: &mut Criterion, name: &str, fx: &Backlog) {
    let mut g = c.benchmark_group(name);
    g.sample_size(20);
    g.bench_function("op_sequential", |b| {
        b.iter_batched_ref(
            || fx.setup(),
            |s| fx.op_sequential(s),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("op_batch", |b| {
        b.iter_batched_ref(|| fx.setup(), |s| fx.op_batch(s), BatchSize::SmallInput)
    });
    g.bench_function("verify_strict_x64", |b| b.iter(|| fx.verify_strict_x64()));
    g.bench_function("verify_batch_64", |b| b.iter(|| fx.verify_batch()));
    g.bench_function("open_all_64", |b| b.iter(|| fx.open_all()));
    g.bench_function("composite_floor_sequential", |b| {
        b.iter(|| fx.floor_sequential())
    });
    g.bench_function("composite_floor_batch", |b| b.iter(|| fx.floor_batch()));
    g.finish();
}

// ---------------------------------------------------------------------------
// 7. Pickle sizes.
// ---------------------------------------------------------------------------

fn pickle_sizes(sharers: &[&Sharer], r: &mut ChaCha20Rng) {
    let key = PickleKey::random_with_rng(r);
    let creator = Account::new_with_rng(r).identity_keys();
    let outbound = OutboundGroupSession::new_with_rng(ROOM, creator, r).expect("valid room id");
    let inbound = InboundGroupSession::new(&outbound.session_key()).expect("signed");
    let mut sizes = serde_json::Map::new();
    let mut line = |name: &str, text: String, what: &str| {
        let binary = base64_len_to_bytes(&text);
        println!(
            "pickle size: {name}: {binary} bytes binary ({} bytes contents), {} bytes base64 text{what}",
            binary - 1 - 12 - 16,
            text.len()
        );
        sizes.insert(
            name.to_owned(),
            serde_json::json!({"binary": binary, "text": text.len(), "contents": binary - 29}),
        );
    };
    line(
        "inbound group session",
        inbound.pickle_with_rng(&key, r),
        " (target under 300)",
    );
    line(
        "outbound group session",
        outbound.pickle_with_rng(&key, r),
        &format!(" (room id of {} bytes)", ROOM.len()),
    );
    for fx in sharers {
        // The state right after setup, as the pickle the bench restores from.
        let e = Endpoint::from_pickle(&fx.pickle, &fx.key).expect("pickle");
        let what = format!(
            " ({} peers with one established session each, {} stored room keys \
             (one per peer and our own), 1 outbound room shared with all)",
            fx.devices.len(),
            e.inbound_keys().len()
        );
        line(
            &format!("endpoint with {} sessions", fx.devices.len()),
            e.pickle_with_rng(&key, r),
            &what,
        );
    }
    let path = paired::output_dir().join("room_pickles.json");
    let written = std::fs::create_dir_all(paired::output_dir())
        .and_then(|()| std::fs::write(&path, serde_json::Value::Object(sizes).to_string()));
    if let Err(e) = written {
        println!("could not write {}: {e}", path.display());
    }
}

// ---------------------------------------------------------------------------
// Paired ratios.
// ---------------------------------------------------------------------------

struct Fixtures {
    encrypt: GroupEncrypt,
    seq: SeqDecrypt,
    jump: Jump,
    share100: Sharer,
    share100_floor: ShareFloor,
    share1000: Sharer,
    share1000_floor: ShareFloor,
    events: Events,
    event_floor: EventFloor,
    backlog256: Backlog,
    backlog1k: Backlog,
}

impl Fixtures {
    fn new() -> Self {
        let r = &mut rng(1);
        Self {
            encrypt: GroupEncrypt::new(r),
            seq: SeqDecrypt::new(r),
            jump: Jump::new(r),
            share100: {
                check_share_len(r);
                Sharer::new(100, r)
            },
            share100_floor: ShareFloor::new(100, 2),
            share1000: Sharer::new(1000, r),
            share1000_floor: ShareFloor::new(1000, 3),
            events: Events::new(256, r),
            event_floor: EventFloor::new(r),
            backlog256: Backlog::new(256, r),
            backlog1k: Backlog::new(1024, r),
        }
    }
}

fn paired_ratios(fx: &mut Fixtures) {
    let Some(plan) = paired::plan("ROOM") else {
        return;
    };
    let mut estimates = Vec::new();
    let mut run = |name: &str, op: paired::Timed<'_>, floor: paired::Timed<'_>| {
        if plan.wanted(name) {
            estimates.push(paired::measure(name, op, floor, plan.budget));
        }
    };
    use paired::timed;

    let GroupEncrypt {
        outbound,
        pt,
        floor,
    } = &mut fx.encrypt;
    run(
        "group_encrypt_1KiB/op vs sign+aes",
        timed(|| outbound.encrypt(black_box(pt)).expect("encrypt")),
        timed(|| floor.sign_aes()),
    );
    run(
        "group_encrypt_1KiB/op vs full",
        timed(|| outbound.encrypt(black_box(pt)).expect("encrypt")),
        timed(|| floor.full()),
    );

    let seq = std::cell::RefCell::new(&mut fx.seq);
    run(
        "group_decrypt_seq_1KiB/op vs verify+aes",
        Box::new(|n| seq.borrow_mut().timed_op(n)),
        timed(|| seq.borrow().floor.verify_aes()),
    );
    run(
        "group_decrypt_seq_1KiB/op vs full",
        Box::new(|n| seq.borrow_mut().timed_op(n)),
        timed(|| seq.borrow_mut().floor.sequential()),
    );

    let jump = &fx.jump;
    run(
        "group_decrypt_jump_100k/op vs floor",
        Box::new(|n| jump.timed_op(n)),
        timed(|| jump.floor.jump()),
    );

    for (n, sharer, floor) in [
        (100, &mut fx.share100, &mut fx.share100_floor),
        (1000, &mut fx.share1000, &mut fx.share1000_floor),
    ] {
        for threads in [1, 2] {
            sharer.set_threads(threads);
            let name = if threads == 1 {
                "op_1thread"
            } else {
                "op_2threads"
            };
            run(
                &format!("share_{n}/{name} vs floor"),
                Box::new(|iters| sharer.timed(iters, false)),
                timed(|| floor.floor()),
            );
        }
        sharer.set_threads(1);
        if n == 100 {
            run(
                "share_100/op_rotate vs floor",
                Box::new(|iters| sharer.timed(iters, true)),
                timed(|| floor.rotation()),
            );
        }
    }

    let (events, event_floor) = (&mut fx.events, &mut fx.event_floor);
    run(
        "event_256B/op vs sign+verify+aes",
        Box::new(|n| events.timed(n)),
        timed(|| event_floor.sign_verify_aes()),
    );
    run(
        "event_256B/op vs full",
        Box::new(|n| events.timed(n)),
        timed(|| event_floor.full()),
    );

    for (name, b) in [
        ("backlog_64x256B", &fx.backlog256),
        ("backlog_64x1KiB", &fx.backlog1k),
    ] {
        run(
            &format!("{name}/op_batch vs op_sequential"),
            Box::new(|n| b.timed_op(n, true)),
            Box::new(|n| b.timed_op(n, false)),
        );
        run(
            &format!("{name}/verify_batch_64 vs verify_strict_x64"),
            timed(|| b.verify_batch()),
            timed(|| b.verify_strict_x64()),
        );
        run(
            &format!("{name}/composite_floor_batch vs composite_floor_sequential"),
            timed(|| b.floor_batch()),
            timed(|| b.floor_sequential()),
        );
    }
    paired::report(&estimates, "room_paired.json");
}

// ---------------------------------------------------------------------------
// Profiling: one operation or floor in a loop, for callgrind.
// ---------------------------------------------------------------------------

#[inline(never)]
fn profile_loop<O>(iterations: usize, mut f: impl FnMut() -> O) {
    for _ in 0..iterations {
        black_box(f());
    }
}

/// `ROOM_PROFILE=<what>[:<iterations>]` builds only what `<what>` needs and
/// runs it in `profile_loop`, then exits. Instruction counts do not depend
/// on the machine's load:
///
/// ```text
/// ROOM_PROFILE=share_100:200 valgrind --tool=callgrind --collect-atstart=no \
///     --toggle-collect='*profile_loop*' target/release/deps/room-<hash>
/// ```
///
/// `<what>` is an operation (`group_encrypt`, `group_decrypt_seq`, `jump`,
/// `share_100`, `share_1000`, `rotate`, `event`, `backlog_sequential`,
/// `backlog_batch`) or its floor (the same name with `_floor`; the issue's
/// narrower floors are `group_encrypt_floor_sign_aes`,
/// `group_decrypt_seq_floor_verify_aes`, `event_floor_sign_verify_aes`).
/// Shares run on one thread (callgrind runs threads one at a time).
fn profile(spec: &str) {
    let (what, n) = spec.split_once(':').map_or((spec, 100), |(w, n)| {
        (w, n.parse().expect("ROOM_PROFILE=<what>:<iterations>"))
    });
    let r = &mut rng(1);
    match what {
        "group_encrypt" => {
            let mut fx = GroupEncrypt::new(r);
            profile_loop(n, || fx.op());
        }
        "group_encrypt_floor" => {
            let mut fx = GroupEncrypt::new(r);
            profile_loop(n, || fx.floor.full());
        }
        "group_encrypt_floor_sign_aes" => {
            let fx = GroupEncrypt::new(r);
            profile_loop(n, || fx.floor.sign_aes());
        }
        "group_decrypt_seq" => {
            let mut fx = SeqDecrypt::new(r);
            let messages: Vec<GroupMessage> = (0..n).map(|_| fx.next_message()).collect();
            let mut next = messages.iter();
            let inbound = &mut fx.inbound;
            profile_loop(n, || {
                inbound
                    .decrypt(ROOM, next.next().expect("a message"))
                    .expect("decrypt")
            });
        }
        "group_decrypt_seq_floor" => {
            let mut fx = SeqDecrypt::new(r);
            profile_loop(n, || fx.floor.sequential());
        }
        "group_decrypt_seq_floor_verify_aes" => {
            let fx = SeqDecrypt::new(r);
            profile_loop(n, || fx.floor.verify_aes());
        }
        "jump" => {
            let fx = Jump::new(r);
            let mut sessions: Vec<InboundGroupSession> = (0..n).map(|_| fx.setup()).collect();
            let mut next = sessions.iter_mut();
            profile_loop(n, || fx.op(next.next().expect("a session")));
        }
        "jump_floor" => {
            let fx = Jump::new(r);
            profile_loop(n, || fx.floor.jump());
        }
        "share_100" | "share_1000" | "rotate" => {
            let mut fx = Sharer::new(if what == "share_1000" { 1000 } else { 100 }, r);
            if what == "rotate" {
                profile_loop(n, || fx.op_rotate());
            } else {
                profile_loop(n, || fx.op());
            }
        }
        "share_100_floor" | "share_1000_floor" | "rotate_floor" => {
            let mut fx = ShareFloor::new(
                if what == "share_1000_floor" {
                    1000
                } else {
                    100
                },
                2,
            );
            if what == "rotate_floor" {
                profile_loop(n, || fx.rotation());
            } else {
                profile_loop(n, || fx.floor());
            }
        }
        "event" => {
            let mut fx = Events::new(256, r);
            profile_loop(n, || fx.op());
        }
        "event_floor" => {
            let mut fx = EventFloor::new(r);
            profile_loop(n, || fx.full());
        }
        "event_floor_sign_verify_aes" => {
            let fx = EventFloor::new(r);
            profile_loop(n, || fx.sign_verify_aes());
        }
        "backlog_sequential" | "backlog_batch" => {
            let fx = Backlog::new(256, r);
            let mut sessions: Vec<InboundGroupSession> = (0..n).map(|_| fx.setup()).collect();
            let mut next = sessions.iter_mut();
            if what == "backlog_batch" {
                profile_loop(n, || fx.op_batch(next.next().expect("a session")));
            } else {
                profile_loop(n, || fx.op_sequential(next.next().expect("a session")));
            }
        }
        "backlog_sequential_floor" => {
            let fx = Backlog::new(256, r);
            profile_loop(n, || fx.floor_sequential());
        }
        "backlog_batch_floor" => {
            let fx = Backlog::new(256, r);
            profile_loop(n, || fx.floor_batch());
        }
        other => panic!("ROOM_PROFILE: unknown operation {other:?}"),
    }
}

fn main() {
    if let Ok(spec) = std::env::var("ROOM_PROFILE") {
        profile(&spec);
        return;
    }
    let mut fx = Fixtures::new();
    pickle_sizes(&[&fx.share100, &fx.share1000], &mut rng(9));
    let mut c = Criterion::default().configure_from_args();
    group_encrypt(&mut c, &mut fx.encrypt);
    group_decrypt_seq(&mut c, &mut fx.seq);
    group_decrypt_jump(&mut c, &fx.jump);
    share(&mut c, 100, &mut fx.share100, &mut fx.share100_floor);
    share(&mut c, 1000, &mut fx.share1000, &mut fx.share1000_floor);
    events(&mut c, &mut fx.events, &mut fx.event_floor);
    backlog(&mut c, "backlog_64x256B", &fx.backlog256);
    backlog(&mut c, "backlog_64x1KiB", &fx.backlog1k);
    c.final_summary();
    paired_ratios(&mut fx);
}

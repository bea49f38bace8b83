//! Criterion benchmarks for the pairwise layer, each measured next to its
//! primitive floor in the same run.
//!
//! Every group holds one or more `op*` benchmarks (the roomseal operation),
//! one benchmark per primitive the operation performs, and a
//! `composite_floor` that performs exactly those primitive calls in sequence
//! on plain arrays (no boxing, zeroizing or encoding). `benches/ratios.py`
//! turns the estimates into a table of operation / floor ratios.
//!
//! After the criterion groups, each operation and its composite floor are
//! also timed in alternating short batches ("paired"), which cancels the
//! drift of a shared machine's load between benchmarks; the ratios go to
//! `target/criterion/pairwise_paired.json`. `PAIRWISE_PAIRED=0` skips this
//! step and `PAIRWISE_PAIRED_SECS` sets its time per operation (default 4).
//!
//! Randomness: the operations are benchmarked through their `_with_rng`
//! twins with a ChaCha20 generator, and the floors draw from the same kind of
//! generator, so the ratio compares like with like. `op_os_rng` variants use
//! the default (operating-system) generator for reference.
//!
//! Run: `cargo bench --bench pairwise -- --warm-up-time 1 --measurement-time 3`
//! then `python3 benches/ratios.py`.

use std::hint::black_box;

use aes_gcm::Tag;
use criterion::{BatchSize, Criterion, criterion_group};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::rngs::ChaCha20Rng;
use roomseal::{
    Account, DeviceMessage, PickleKey, Plaintext, PreKeyMessage, SelfSignedDevice, Session,
};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

// Byte strings of the same lengths as the protocol's labels (PROTOCOL.md), so
// every primitive hashes exactly as many bytes as the operation does.
#[path = "support/floor.rs"]
mod floor;
use floor::*;

const L_TRIPLE_DH: &[u8] = b"roomseal/v2/3dh";
const L_ROOT: &[u8] = b"roomseal/v2/root";
const L_SESSION_ID: &[u8] = b"roomseal/v2/session-id";
const L_SESSION_AD: &[u8] = b"roomseal/v2/session-ad";
const L_SESSION_BINDING: &[u8] = b"roomseal/v2/session-binding";
const L_ONE_TIME_KEY: &[u8] = b"roomseal/v2/one-time-key";

/// Associated data of a normal pairwise message: the session's 32-byte AD
/// binding digest, the kind byte, the header (ratchet key, previous counter,
/// counter).
const AAD_LEN: usize = 32 + 1 + 32 + 4 + 4;
/// Associated data of a pre-key message's inner message: the same plus the
/// 64-byte binding signature.
const AAD_PRE_KEY_LEN: usize = AAD_LEN + 64;
/// Bytes a one-time key signature covers: label, key id, key.
const OTK_SIGNED_LEN: usize = 24 + 8 + 32;
/// Bytes the session binding signature covers: label, session id, key.
const BINDING_LEN: usize = 27 + 32 + 32;

// ---------------------------------------------------------------------------
// Primitives, called the way the crate calls them but on plain arrays.
// ---------------------------------------------------------------------------

fn x25519_keygen(rng: &mut ChaCha20Rng) -> (StaticSecret, PublicKey) {
    let secret = StaticSecret::random_from_rng(rng);
    let public = PublicKey::from(&secret);
    (secret, public)
}

fn x25519_dh(ours: &StaticSecret, theirs: &PublicKey) -> [u8; 32] {
    let shared = ours.diffie_hellman(theirs);
    assert!(shared.was_contributory());
    shared.to_bytes()
}

fn split32(okm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..64]);
    (a, b)
}

fn message_key(seed: &[u8; 32], salt: &[u8; 16]) -> ([u8; 32], [u8; 12]) {
    hkdf44(salt, seed, L_MESSAGE_KEY)
}

/// The salt a received message carries (any 16 bytes: the receiver draws
/// nothing).
const RECEIVED_SALT: [u8; 16] = [0x5a; 16];

/// A sealed message for the open floor: key, nonce, ciphertext, tag.
struct Sealed {
    key: [u8; 32],
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
    tag: Tag,
}

fn sealed(len: usize, aad: &[u8]) -> Sealed {
    let (key, nonce) = message_key(&[7u8; 32], &RECEIVED_SALT);
    let mut ciphertext = vec![0x5a; len];
    let tag = aes_seal(&key, &nonce, aad, &mut ciphertext);
    Sealed {
        key,
        nonce,
        ciphertext,
        tag,
    }
}

/// Copies the ciphertext out (as any decryption must) and opens it.
fn open_copy<const N: usize>(s: &Sealed, aad: &[u8]) -> [u8; N] {
    let mut buf = [0u8; N];
    buf.copy_from_slice(&s.ciphertext);
    aes_open(&s.key, &s.nonce, aad, &mut buf, &s.tag);
    buf
}

/// Copies the plaintext in (as any encryption must) and seals it.
fn seal_copy<const N: usize>(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Tag {
    let mut buf = [0u8; N];
    buf.copy_from_slice(pt);
    let tag = aes_seal(key, nonce, aad, &mut buf);
    black_box(&buf);
    tag
}

// ---------------------------------------------------------------------------
// roomseal fixtures.
// ---------------------------------------------------------------------------

fn verified(account: &Account) -> SelfSignedDevice {
    account
        .device_keys("@bench:example.org", "BENCHDEV")
        .expect("valid ids")
        .check_self_signature()
        .expect("self-signed")
}

/// Alice and Bob with an established session (one message each way, so both
/// send normal messages).
struct Pair {
    alice: Session,
    bob: Session,
}

fn established_pair(rng: &mut ChaCha20Rng) -> Pair {
    let alice_account = Account::new_with_rng(rng);
    let mut bob_account = Account::new_with_rng(rng);
    bob_account.generate_one_time_keys_with_rng(1, rng);
    let otk = bob_account.one_time_keys().remove(0);
    bob_account.mark_keys_as_published(std::slice::from_ref(&otk));
    let mut alice = alice_account
        .create_outbound_session_with_rng(&verified(&bob_account), &otk, rng)
        .expect("outbound");
    let DeviceMessage::PreKey(pre_key) = alice.encrypt(b"hello").expect("encrypt") else {
        panic!("first message is a pre-key message");
    };
    let mut bob = bob_account
        .create_inbound_session_with_rng(&pre_key, rng)
        .expect("inbound")
        .session;
    let reply = bob.encrypt(b"hi").expect("encrypt");
    alice.decrypt_with_rng(&reply, rng).expect("decrypt");
    // Alice now sends normal messages; no message is left undelivered, so
    // neither side holds skipped keys.
    assert!(alice.has_received_message() && bob.has_received_message());
    Pair { alice, bob }
}

// ---------------------------------------------------------------------------
// Fixtures: each operation with its composite floor, shared by the criterion
// groups and the paired (interleaved) ratio estimate.
// ---------------------------------------------------------------------------

fn account_new_floor(r: &mut ChaCha20Rng) -> (SigningKey, (StaticSecret, PublicKey)) {
    (SigningKey::generate(r), x25519_keygen(r))
}

fn otk_generate_floor(r: &mut ChaCha20Rng) {
    for _ in 0..50 {
        black_box(x25519_keygen(r));
    }
}

/// An account with 50 unpublished one-time keys, and 50 other public keys
/// signed over the same 64-byte layout for the floor.
struct OtkSign {
    account: Account,
    signing: SigningKey,
    keys: Vec<[u8; 32]>,
}

impl OtkSign {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let mut account = Account::new_with_rng(r);
        account.generate_one_time_keys_with_rng(50, r);
        assert_eq!(account.one_time_keys().len(), 50);
        let keys = (0..50).map(|_| x25519_keygen(r).1.to_bytes()).collect();
        Self {
            account,
            signing: SigningKey::generate(r),
            keys,
        }
    }

    fn op(&self) -> Vec<roomseal::SignedOneTimeKey> {
        self.account.one_time_keys()
    }

    fn floor(&self) -> Vec<Signature> {
        self.keys
            .iter()
            .zip(0u64..)
            .map(|(key, id)| {
                let mut m = [0u8; OTK_SIGNED_LEN];
                m[..24].copy_from_slice(L_ONE_TIME_KEY);
                m[24..32].copy_from_slice(&id.to_be_bytes());
                m[32..].copy_from_slice(key);
                self.signing.sign(&m)
            })
            .collect()
    }
}

/// Fixed inputs for the handshake floors: our identity, the peer's identity
/// and a signed one-time key.
struct Handshake {
    our_signing: SigningKey,
    our_identity: StaticSecret,
    peer_identity: PublicKey,
    peer_verifying: VerifyingKey,
    otk_secret: StaticSecret,
    otk: PublicKey,
    otk_message: [u8; OTK_SIGNED_LEN],
    otk_signature: Signature,
}

fn handshake(r: &mut ChaCha20Rng) -> Handshake {
    let our_signing = SigningKey::generate(r);
    let (our_identity, _) = x25519_keygen(r);
    let peer_signing = SigningKey::generate(r);
    let (_, peer_identity) = x25519_keygen(r);
    let (otk_secret, otk) = x25519_keygen(r);
    let mut otk_message = [0u8; OTK_SIGNED_LEN];
    otk_message[..24].copy_from_slice(L_ONE_TIME_KEY);
    otk_message[32..].copy_from_slice(otk.as_bytes());
    let otk_signature = peer_signing.sign(&otk_message);
    Handshake {
        our_signing,
        our_identity,
        peer_identity,
        peer_verifying: peer_signing.verifying_key(),
        otk_secret,
        otk,
        otk_message,
        otk_signature,
    }
}

fn binding_message(id: &[u8; 32], responder: &PublicKey) -> [u8; BINDING_LEN] {
    let mut m = [0u8; BINDING_LEN];
    m[..27].copy_from_slice(L_SESSION_BINDING);
    m[27..59].copy_from_slice(id);
    m[59..].copy_from_slice(responder.as_bytes());
    m
}

fn triple_dh_info(id: &[u8; 32]) -> [u8; 15 + 32] {
    let mut info = [0u8; 15 + 32];
    info[..15].copy_from_slice(L_TRIPLE_DH);
    info[15..].copy_from_slice(id);
    info
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The two SHA-256 digests session creation computes besides the floor
/// primitives: the session id and the associated-data binding.
fn bench_session_digests(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let key = [1u8; 32];
    let identity = [2u8; 64];
    g.bench_function("sha256_session_id", |b| {
        b.iter(|| sha256(&[L_SESSION_ID, &identity, &key, black_box(&key)]))
    });
    g.bench_function("sha256_ad_binding", |b| {
        b.iter(|| sha256(&[L_SESSION_AD, &[2], &key, &identity, black_box(&identity)]))
    });
}

struct Outbound {
    alice: Account,
    bob_device: SelfSignedDevice,
    otk: roomseal::SignedOneTimeKey,
    h: Handshake,
    info: [u8; 15 + 32],
    binding: [u8; BINDING_LEN],
}

impl Outbound {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let alice = Account::new_with_rng(r);
        let mut bob = Account::new_with_rng(r);
        bob.generate_one_time_keys_with_rng(1, r);
        let otk = bob.one_time_keys().remove(0);
        let h = handshake(r);
        let id = [9u8; 32];
        Self {
            alice,
            bob_device: verified(&bob),
            otk,
            info: triple_dh_info(&id),
            binding: binding_message(&id, &h.peer_identity),
            h,
        }
    }

    fn op(&self, r: &mut ChaCha20Rng) -> Session {
        self.alice
            .create_outbound_session_with_rng(&self.bob_device, &self.otk, r)
            .expect("outbound")
    }

    /// Strict verify, base keygen, three DH, HKDF, ratchet keygen, sign.
    fn floor(&self, r: &mut ChaCha20Rng) -> ([u8; 64], (StaticSecret, PublicKey), Signature) {
        let h = &self.h;
        h.peer_verifying
            .verify_strict(&h.otk_message, &h.otk_signature)
            .expect("valid");
        let (base_secret, _base) = x25519_keygen(r);
        let mut ikm = [0u8; 96];
        ikm[..32].copy_from_slice(&x25519_dh(&h.our_identity, &h.otk));
        ikm[32..64].copy_from_slice(&x25519_dh(&base_secret, &h.peer_identity));
        ikm[64..].copy_from_slice(&x25519_dh(&base_secret, &h.otk));
        let okm = hkdf::<64>(None, &ikm, &self.info);
        let ratchet = x25519_keygen(r);
        let signature = h.our_signing.sign(&self.binding);
        (okm, ratchet, signature)
    }
}

/// The responder's side: a pickled Bob with one one-time key and Alice's
/// first (pre-key) message of 256 bytes; and floor inputs whose first
/// message really opens under the derived key.
struct Inbound {
    key: PickleKey,
    bob_pickle: String,
    pre_key: PreKeyMessage,
    h: Handshake,
    initiator_identity: PublicKey,
    initiator_verifying: VerifyingKey,
    base: PublicKey,
    their_ratchet: PublicKey,
    info: [u8; 15 + 32],
    binding: [u8; BINDING_LEN],
    binding_signature: Signature,
    aad: [u8; AAD_PRE_KEY_LEN],
    first: Sealed,
}

impl Inbound {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let key = PickleKey::random();
        let alice = Account::new_with_rng(r);
        let mut bob = Account::new_with_rng(r);
        bob.generate_one_time_keys_with_rng(1, r);
        let otk = bob.one_time_keys().remove(0);
        bob.mark_keys_as_published(std::slice::from_ref(&otk));
        let bob_pickle = bob.pickle_with_rng(&key, r);
        let mut alice_session = alice
            .create_outbound_session_with_rng(&verified(&bob), &otk, r)
            .expect("outbound");
        let DeviceMessage::PreKey(pre_key) = alice_session.encrypt(&[0xab; 256]).expect("encrypt")
        else {
            panic!("first message is a pre-key message");
        };

        let h = handshake(r);
        let initiator_signing = SigningKey::generate(r);
        let (initiator_identity_secret, initiator_identity) = x25519_keygen(r);
        let (base_secret, base) = x25519_keygen(r);
        let (_, their_ratchet) = x25519_keygen(r);
        let our_identity_public = PublicKey::from(&h.our_identity);
        let id = [9u8; 32];
        let info = triple_dh_info(&id);
        let binding = binding_message(&id, &our_identity_public);
        let aad = [5u8; AAD_PRE_KEY_LEN];
        let first_chain = {
            let mut ikm = [0u8; 96];
            ikm[..32].copy_from_slice(&x25519_dh(&initiator_identity_secret, &h.otk));
            ikm[32..64].copy_from_slice(&x25519_dh(&base_secret, &our_identity_public));
            ikm[64..].copy_from_slice(&x25519_dh(&base_secret, &h.otk));
            split32(&hkdf::<64>(None, &ikm, &info)).1
        };
        let (seed, _) = hmac_pair(&first_chain);
        let (message_key, nonce) = message_key(&seed, &RECEIVED_SALT);
        let mut ciphertext = vec![0xab; 256];
        let tag = aes_seal(&message_key, &nonce, &aad, &mut ciphertext);
        Self {
            key,
            bob_pickle,
            pre_key,
            initiator_identity,
            initiator_verifying: initiator_signing.verifying_key(),
            base,
            their_ratchet,
            info,
            binding_signature: initiator_signing.sign(&binding),
            binding,
            aad,
            first: Sealed {
                key: message_key,
                nonce,
                ciphertext,
                tag,
            },
            h,
        }
    }

    /// A fresh Bob holding the one-time key the pre-key message names.
    fn setup(&self) -> Account {
        Account::from_pickle(&self.bob_pickle, &self.key).expect("pickle")
    }

    fn op(&self, bob: &mut Account, r: &mut ChaCha20Rng) -> roomseal::InboundCreation {
        bob.create_inbound_session_with_rng(&self.pre_key, r)
            .expect("inbound")
    }

    /// Strict verify, three DH, HKDF, ratchet keygen, DH, HKDF, then the
    /// symmetric receive of the first message.
    fn floor(&self, r: &mut ChaCha20Rng) -> ([u8; 64], [u8; 32], [u8; 256]) {
        let h = &self.h;
        self.initiator_verifying
            .verify_strict(&self.binding, &self.binding_signature)
            .expect("valid");
        let mut ikm = [0u8; 96];
        ikm[..32].copy_from_slice(&x25519_dh(&h.otk_secret, &self.initiator_identity));
        ikm[32..64].copy_from_slice(&x25519_dh(&h.our_identity, &self.base));
        ikm[64..].copy_from_slice(&x25519_dh(&h.otk_secret, &self.base));
        let (root0, chain0) = split32(&hkdf::<64>(None, &ikm, &self.info));
        let (ratchet_secret, _ratchet) = x25519_keygen(r);
        let shared = x25519_dh(&ratchet_secret, &self.their_ratchet);
        let next = hkdf::<64>(Some(&root0), &shared, L_ROOT);
        let (seed, next_chain) = hmac_pair(&chain0);
        let (key, nonce) = message_key(&seed, &RECEIVED_SALT);
        let mut buf = [0u8; 256];
        buf.copy_from_slice(&self.first.ciphertext);
        aes_open(&key, &nonce, &self.aad, &mut buf, &self.first.tag);
        (next, next_chain, buf)
    }
}

/// The symmetric half of a message on the sending side: chain step, message
/// key, seal. Returns the next chain key.
/// Also returns the message's salt (drawn from the operating system).
fn floor_send<const N: usize>(
    chain: &[u8; 32],
    aad: &[u8],
    pt: &[u8],
) -> ([u8; 32], [u8; N], Tag, [u8; 16]) {
    let (seed, next) = hmac_pair(chain);
    let salt = salt_draw();
    let (key, nonce) = message_key(&seed, &salt);
    let mut buf = [0u8; N];
    buf.copy_from_slice(pt);
    let tag = aes_seal(&key, &nonce, aad, &mut buf);
    (next, buf, tag, salt)
}

/// The symmetric half on the receiving side: chain step, message key, open.
fn floor_receive<const N: usize>(
    chain: &[u8; 32],
    aad: &[u8],
    ct: &[u8; N],
    tag: &Tag,
    salt: &[u8; 16],
) -> ([u8; 32], [u8; N]) {
    let (seed, next) = hmac_pair(chain);
    let (key, nonce) = message_key(&seed, salt);
    let mut buf = *ct;
    aes_open(&key, &nonce, aad, &mut buf, tag);
    (next, buf)
}

/// Established sessions sending 256 bytes in one direction, and the same
/// chain arithmetic on plain arrays.
struct Symmetric {
    pair: Pair,
    pt: [u8; 256],
    aad: [u8; AAD_LEN],
    send_chain: [u8; 32],
    receive_chain: [u8; 32],
}

impl Symmetric {
    fn new(r: &mut ChaCha20Rng) -> Self {
        Self {
            pair: established_pair(r),
            pt: [0x61; 256],
            aad: [3; AAD_LEN],
            send_chain: [0x66; 32],
            receive_chain: [0x66; 32],
        }
    }

    fn op(&mut self) -> Plaintext {
        let m = self
            .pair
            .alice
            .encrypt(black_box(&self.pt))
            .expect("encrypt");
        self.pair.bob.decrypt(&m).expect("decrypt")
    }

    fn floor(&mut self) -> [u8; 256] {
        let (next, ct, tag, salt) =
            floor_send::<256>(&self.send_chain, &self.aad, black_box(&self.pt));
        self.send_chain = next;
        let (next, out) = floor_receive::<256>(&self.receive_chain, &self.aad, &ct, &tag, &salt);
        self.receive_chain = next;
        out
    }
}

/// One party of a stripped-down Double Ratchet on plain arrays: the floor of
/// a direction change.
struct FloorParty {
    root: [u8; 32],
    ratchet: StaticSecret,
    ratchet_public: PublicKey,
    sending: [u8; 32],
}

impl FloorParty {
    /// Reads a message that starts a new chain: ratchet the root with the
    /// sender's new key, open, then derive our next sending chain.
    fn receive_new_chain(
        &mut self,
        r: &mut ChaCha20Rng,
        theirs: &PublicKey,
        aad: &[u8],
        ct: &[u8; 256],
        tag: &Tag,
        salt: &[u8; 16],
    ) -> [u8; 256] {
        let (root, receiving) = split32(&hkdf::<64>(
            Some(&self.root),
            &x25519_dh(&self.ratchet, theirs),
            L_ROOT,
        ));
        let (_next_receiving, pt) = floor_receive::<256>(&receiving, aad, ct, tag, salt);
        let (secret, public) = x25519_keygen(r);
        let (root, sending) = split32(&hkdf::<64>(
            Some(&root),
            &x25519_dh(&secret, theirs),
            L_ROOT,
        ));
        self.root = root;
        self.sending = sending;
        self.ratchet = secret;
        self.ratchet_public = public;
        pt
    }
}

/// Established sessions exchanging 256 bytes in alternating directions, and
/// a working miniature ratchet doing the same (every open verifies).
struct PingPong {
    pair: Pair,
    pt: [u8; 256],
    aad: [u8; AAD_LEN],
    alice: FloorParty,
    bob: FloorParty,
}

impl PingPong {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let pair = established_pair(r);
        // The floor pair starts where Alice has just read Bob's key.
        let (bob_secret, bob_public) = x25519_keygen(r);
        let (alice_secret, alice_public) = x25519_keygen(r);
        let shared_root = [0x11u8; 32];
        let (root, alice_sending) = split32(&hkdf::<64>(
            Some(&shared_root),
            &x25519_dh(&alice_secret, &bob_public),
            L_ROOT,
        ));
        Self {
            pair,
            pt: [0x61; 256],
            aad: [3; AAD_LEN],
            alice: FloorParty {
                root,
                ratchet: alice_secret,
                ratchet_public: alice_public,
                sending: alice_sending,
            },
            bob: FloorParty {
                root: shared_root,
                ratchet: bob_secret,
                ratchet_public: bob_public,
                sending: [0; 32],
            },
        }
    }

    fn op(&mut self, r: &mut ChaCha20Rng) -> Plaintext {
        let pair = &mut self.pair;
        let m = pair.alice.encrypt(black_box(&self.pt)).expect("encrypt");
        black_box(pair.bob.decrypt_with_rng(&m, r).expect("decrypt"));
        let m = pair.bob.encrypt(black_box(&self.pt)).expect("encrypt");
        pair.alice.decrypt_with_rng(&m, r).expect("decrypt")
    }

    fn op_os_rng(&mut self) -> Plaintext {
        let pair = &mut self.pair;
        let m = pair.alice.encrypt(black_box(&self.pt)).expect("encrypt");
        black_box(pair.bob.decrypt(&m).expect("decrypt"));
        let m = pair.bob.encrypt(black_box(&self.pt)).expect("encrypt");
        pair.alice.decrypt(&m).expect("decrypt")
    }

    fn floor(&mut self, r: &mut ChaCha20Rng) -> [u8; 256] {
        let (next, ct, tag, salt) =
            floor_send::<256>(&self.alice.sending, &self.aad, black_box(&self.pt));
        self.alice.sending = next;
        let alice_key = self.alice.ratchet_public;
        black_box(
            self.bob
                .receive_new_chain(r, &alice_key, &self.aad, &ct, &tag, &salt),
        );
        let (next, ct, tag, salt) =
            floor_send::<256>(&self.bob.sending, &self.aad, black_box(&self.pt));
        self.bob.sending = next;
        let bob_key = self.bob.ratchet_public;
        self.alice
            .receive_new_chain(r, &bob_key, &self.aad, &ct, &tag, &salt)
    }
}

/// 100 established sessions (Alice's side) and 100 floor chains.
struct Fanout {
    sessions: Vec<Session>,
    chains: Vec<[u8; 32]>,
    pt: [u8; 200],
    aad: [u8; AAD_LEN],
}

impl Fanout {
    fn new(r: &mut ChaCha20Rng) -> Self {
        Self {
            sessions: (0..100).map(|_| established_pair(r).alice).collect(),
            chains: (0..100u8).map(|i| [i; 32]).collect(),
            pt: [0x62; 200],
            aad: [3; AAD_LEN],
        }
    }

    fn op(&mut self) -> Vec<DeviceMessage> {
        let pt = &self.pt;
        self.sessions
            .iter_mut()
            .map(|s| s.encrypt(black_box(pt)).expect("encrypt"))
            .collect()
    }

    fn floor(&mut self) -> Vec<([u8; 200], Tag)> {
        let (pt, aad) = (&self.pt, &self.aad);
        self.chains
            .iter_mut()
            .map(|chain| {
                let (next, ct, tag, _salt) = floor_send::<200>(chain, aad, black_box(pt));
                *chain = next;
                (ct, tag)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Criterion groups.
// ---------------------------------------------------------------------------

fn account_new(c: &mut Criterion) {
    let mut g = c.benchmark_group("account_new");
    let mut r = rng(1);
    g.bench_function("op", |b| b.iter(|| Account::new_with_rng(&mut r)));
    g.bench_function("op_os_rng", |b| b.iter(Account::new));
    g.bench_function("ed25519_keygen", |b| {
        b.iter(|| SigningKey::generate(&mut r))
    });
    g.bench_function("x25519_keygen", |b| b.iter(|| x25519_keygen(&mut r)));
    g.bench_function("composite_floor", |b| b.iter(|| account_new_floor(&mut r)));
    g.finish();
}

fn one_time_keys(c: &mut Criterion) {
    let mut g = c.benchmark_group("otk_generate_50");
    g.sample_size(40);
    let mut r = rng(2);
    let mut setup_rng = rng(3);
    g.bench_function("op", |b| {
        b.iter_batched_ref(
            || Account::new_with_rng(&mut setup_rng),
            |account| account.generate_one_time_keys_with_rng(50, &mut r),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("x25519_keygen", |b| b.iter(|| x25519_keygen(&mut r)));
    g.bench_function("composite_floor", |b| b.iter(|| otk_generate_floor(&mut r)));
    g.finish();

    let mut g = c.benchmark_group("otk_sign_50");
    g.sample_size(40);
    let fx = OtkSign::new(&mut r);
    g.bench_function("op", |b| b.iter(|| fx.op()));
    let msg = [0x42u8; OTK_SIGNED_LEN];
    g.bench_function("ed25519_sign_64B", |b| {
        b.iter(|| fx.signing.sign(black_box(&msg)))
    });
    g.bench_function("composite_floor", |b| b.iter(|| fx.floor()));
    g.finish();
}

fn outbound(c: &mut Criterion) {
    let mut g = c.benchmark_group("outbound_session");
    let mut r = rng(4);
    let fx = Outbound::new(&mut r);
    let h = &fx.h;
    g.bench_function("op", |b| b.iter(|| fx.op(&mut r)));
    let ikm = [0x33u8; 96];
    g.bench_function("ed25519_verify_strict_64B", |b| {
        b.iter(|| {
            h.peer_verifying
                .verify_strict(black_box(&h.otk_message), &h.otk_signature)
                .expect("valid")
        })
    });
    g.bench_function("x25519_keygen", |b| b.iter(|| x25519_keygen(&mut r)));
    g.bench_function("x25519_dh", |b| {
        b.iter(|| x25519_dh(black_box(&h.our_identity), &h.otk))
    });
    g.bench_function("hkdf64_3dh", |b| {
        b.iter(|| hkdf::<64>(None, black_box(&ikm), &fx.info))
    });
    g.bench_function("ed25519_sign_91B", |b| {
        b.iter(|| h.our_signing.sign(black_box(&fx.binding)))
    });
    bench_session_digests(&mut g);
    g.bench_function("composite_floor", |b| b.iter(|| fx.floor(&mut r)));
    g.finish();
}

fn inbound(c: &mut Criterion) {
    let mut g = c.benchmark_group("inbound_session");
    let mut r = rng(5);
    let fx = Inbound::new(&mut r);
    g.bench_function("op", |b| {
        b.iter_batched(
            || fx.setup(),
            |mut bob| {
                let created = fx.op(&mut bob, &mut r);
                (bob, created)
            },
            BatchSize::SmallInput,
        )
    });
    let ikm = [0x33u8; 96];
    let root = [0x44u8; 32];
    let shared = [0x55u8; 32];
    let chain = [0x66u8; 32];
    let s256 = sealed(256, &[3u8; AAD_PRE_KEY_LEN]);
    g.bench_function("ed25519_verify_strict_91B", |b| {
        b.iter(|| {
            fx.initiator_verifying
                .verify_strict(black_box(&fx.binding), &fx.binding_signature)
                .expect("valid")
        })
    });
    g.bench_function("x25519_dh", |b| {
        b.iter(|| x25519_dh(black_box(&fx.h.our_identity), &fx.base))
    });
    g.bench_function("hkdf64_3dh", |b| {
        b.iter(|| hkdf::<64>(None, black_box(&ikm), &fx.info))
    });
    g.bench_function("x25519_keygen", |b| b.iter(|| x25519_keygen(&mut r)));
    g.bench_function("hkdf64_root", |b| {
        b.iter(|| hkdf::<64>(Some(&root), black_box(&shared), L_ROOT))
    });
    g.bench_function("hmac_pair", |b| b.iter(|| hmac_pair(black_box(&chain))));
    g.bench_function("hkdf44_msg", |b| {
        b.iter(|| message_key(black_box(&chain), black_box(&RECEIVED_SALT)))
    });
    g.bench_function("aes256gcm_open_256B", |b| {
        b.iter(|| open_copy::<256>(black_box(&s256), &[3u8; AAD_PRE_KEY_LEN]))
    });
    bench_session_digests(&mut g);
    g.bench_function("composite_floor", |b| b.iter(|| fx.floor(&mut r)));
    g.finish();
}

/// The per-message primitives, benchmarked in every group that uses them.
fn symmetric_primitives(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    pt_len: usize,
    open: bool,
) {
    let chain = [0x66u8; 32];
    let aad = [3u8; AAD_LEN];
    let (key, nonce) = message_key(&chain, &RECEIVED_SALT);
    let pt = vec![0x61u8; pt_len];
    g.bench_function("hmac_pair", |b| b.iter(|| hmac_pair(black_box(&chain))));
    g.bench_function("salt_draw", |b| b.iter(salt_draw));
    g.bench_function("hkdf44_msg", |b| {
        b.iter(|| message_key(black_box(&chain), black_box(&RECEIVED_SALT)))
    });
    match pt_len {
        256 => g.bench_function("aes256gcm_seal_256B", |b| {
            b.iter(|| seal_copy::<256>(&key, &nonce, &aad, black_box(&pt)))
        }),
        200 => g.bench_function("aes256gcm_seal_200B", |b| {
            b.iter(|| seal_copy::<200>(&key, &nonce, &aad, black_box(&pt)))
        }),
        _ => unreachable!("only 200 and 256 bytes are benchmarked"),
    };
    if open {
        let s256 = sealed(256, &aad);
        g.bench_function("aes256gcm_open_256B", |b| {
            b.iter(|| open_copy::<256>(black_box(&s256), &aad))
        });
    }
}

fn symmetric(c: &mut Criterion) {
    let mut g = c.benchmark_group("encrypt_decrypt_256");
    let mut r = rng(6);
    let mut fx = Symmetric::new(&mut r);
    g.bench_function("op", |b| b.iter(|| fx.op()));
    symmetric_primitives(&mut g, 256, true);
    g.bench_function("composite_floor", |b| b.iter(|| fx.floor()));
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("ping_pong_256");
    let mut r = rng(7);
    let mut fx = PingPong::new(&mut r);
    g.bench_function("op", |b| b.iter(|| fx.op(&mut r)));
    g.bench_function("op_os_rng", |b| b.iter(|| fx.op_os_rng()));
    let h = handshake(&mut r);
    let root = [0x44u8; 32];
    let shared = [0x55u8; 32];
    g.bench_function("x25519_dh", |b| {
        b.iter(|| x25519_dh(black_box(&h.our_identity), &h.otk))
    });
    g.bench_function("x25519_keygen", |b| b.iter(|| x25519_keygen(&mut r)));
    g.bench_function("hkdf64_root", |b| {
        b.iter(|| hkdf::<64>(Some(&root), black_box(&shared), L_ROOT))
    });
    symmetric_primitives(&mut g, 256, true);
    g.bench_function("composite_floor", |b| b.iter(|| fx.floor(&mut r)));
    g.finish();
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout_200x100");
    g.sample_size(50);
    let mut r = rng(8);
    let mut fx = Fanout::new(&mut r);
    g.bench_function("op", |b| b.iter(|| fx.op()));
    symmetric_primitives(&mut g, 200, false);
    g.bench_function("composite_floor", |b| b.iter(|| fx.floor()));
    g.finish();
}

fn pickles(c: &mut Criterion) {
    let mut g = c.benchmark_group("pickle");
    let mut r = rng(9);
    let key = PickleKey::random();
    let mut account = Account::new_with_rng(&mut r);
    account.generate_one_time_keys_with_rng(50, &mut r);
    let session = established_pair(&mut r).alice;

    let account_pickle = account.pickle_with_rng(&key, &mut r);
    let session_pickle = session.pickle_with_rng(&key, &mut r);
    let account_bytes = base64_len_to_bytes(&account_pickle);
    let session_bytes = base64_len_to_bytes(&session_pickle);
    // Version byte, generation, nonce and tag around the encrypted contents.
    let account_contents = account_bytes - 1 - 8 - 12 - 16;
    let session_contents = session_bytes - 1 - 8 - 12 - 16;
    let owner = session.local_identity();
    println!(
        "pickle sizes: account with 50 one-time keys: {account_bytes} bytes binary \
         ({account_contents} bytes contents), {} bytes base64 text; established session: \
         {session_bytes} bytes binary ({session_contents} bytes contents), {} bytes base64 text",
        account_pickle.len(),
        session_pickle.len()
    );

    g.bench_function("account_pickle", |b| {
        b.iter(|| account.pickle_with_rng(&key, &mut r))
    });
    g.bench_function("account_unpickle", |b| {
        b.iter(|| Account::from_pickle(black_box(&account_pickle), &key).expect("pickle"))
    });
    g.bench_function("session_pickle", |b| {
        b.iter(|| session.pickle_with_rng(&key, &mut r))
    });
    g.bench_function("session_unpickle", |b| {
        b.iter(|| Session::from_pickle(black_box(&session_pickle), &key, &owner).expect("pickle"))
    });

    let aad = [0u8; 27];
    let (k, nonce) = message_key(&[1u8; 32], &RECEIVED_SALT);
    for (name, len) in [("account", account_contents), ("session", session_contents)] {
        let plain = vec![0x21u8; len];
        g.bench_function(format!("aes256gcm_seal_{name}"), |b| {
            b.iter(|| {
                let mut buf = plain.clone();
                aes_seal(&k, &nonce, &aad, black_box(&mut buf));
                buf
            })
        });
        let s = sealed(len, &[3u8; AAD_LEN]);
        g.bench_function(format!("aes256gcm_open_{name}"), |b| {
            b.iter(|| {
                let mut buf = s.ciphertext.clone();
                aes_open(
                    &s.key,
                    &s.nonce,
                    &[3u8; AAD_LEN],
                    black_box(&mut buf),
                    &s.tag,
                );
                buf
            })
        });
    }
    // Key derivations a restore performs because the pickle stores private
    // keys only.
    let secret = StaticSecret::random_from_rng(&mut r);
    g.bench_function("x25519_public_from_secret", |b| {
        b.iter(|| PublicKey::from(black_box(&secret)))
    });
    let seed = [0x17u8; 32];
    g.bench_function("ed25519_signing_key_from_bytes", |b| {
        b.iter(|| SigningKey::from_bytes(black_box(&seed)))
    });
    let verifying = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    g.bench_function("ed25519_public_validate", |b| {
        b.iter(|| {
            let key = VerifyingKey::from_bytes(black_box(&verifying)).expect("valid");
            assert_eq!(key.to_edwards().compress().as_bytes(), &verifying);
            assert!(!key.is_weak());
            key
        })
    });
    g.finish();
}

#[path = "support/paired.rs"]
mod paired;

fn paired_ratios() {
    let Some(plan) = paired::plan("PAIRWISE") else {
        return;
    };
    let mut estimates = Vec::new();
    let mut run = |name: &str, op: paired::Timed<'_>, floor: paired::Timed<'_>| {
        if plan.wanted(name) {
            estimates.push(paired::measure(name, op, floor, plan.budget));
        }
    };
    use paired::timed;

    let (mut r1, mut r2) = (rng(11), rng(12));
    run(
        "account_new/op",
        timed(|| Account::new_with_rng(&mut r1)),
        timed(|| account_new_floor(&mut r2)),
    );
    let mut setup_rng = rng(13);
    let (mut r1, mut r2) = (rng(14), rng(15));
    run(
        "otk_generate_50/op",
        Box::new(|n| {
            let mut accounts: Vec<Account> = (0..n)
                .map(|_| Account::new_with_rng(&mut setup_rng))
                .collect();
            let start = std::time::Instant::now();
            for account in &mut accounts {
                black_box(account.generate_one_time_keys_with_rng(50, &mut r1));
            }
            start.elapsed()
        }),
        timed(|| otk_generate_floor(&mut r2)),
    );
    let fx = OtkSign::new(&mut rng(16));
    run("otk_sign_50/op", timed(|| fx.op()), timed(|| fx.floor()));
    let fx = Outbound::new(&mut rng(17));
    let (mut r1, mut r2) = (rng(18), rng(19));
    run(
        "outbound_session/op",
        timed(|| fx.op(&mut r1)),
        timed(|| fx.floor(&mut r2)),
    );
    let fx = Inbound::new(&mut rng(20));
    let (mut r1, mut r2) = (rng(21), rng(22));
    run(
        "inbound_session/op",
        Box::new(|n| {
            let mut bobs: Vec<Account> = (0..n).map(|_| fx.setup()).collect();
            let mut created = Vec::with_capacity(bobs.len());
            let start = std::time::Instant::now();
            for bob in &mut bobs {
                created.push(fx.op(bob, &mut r1));
            }
            start.elapsed()
        }),
        timed(|| fx.floor(&mut r2)),
    );
    let fx = std::cell::RefCell::new(Symmetric::new(&mut rng(23)));
    run(
        "encrypt_decrypt_256/op",
        timed(|| fx.borrow_mut().op()),
        timed(|| fx.borrow_mut().floor()),
    );
    let fx = std::cell::RefCell::new(PingPong::new(&mut rng(24)));
    let (mut r1, mut r2) = (rng(25), rng(26));
    run(
        "ping_pong_256/op",
        timed(|| fx.borrow_mut().op(&mut r1)),
        timed(|| fx.borrow_mut().floor(&mut r2)),
    );
    let fx = std::cell::RefCell::new(Fanout::new(&mut rng(27)));
    run(
        "fanout_200x100/op",
        timed(|| fx.borrow_mut().op()),
        timed(|| fx.borrow_mut().floor()),
    );
    paired::report(&estimates, "pairwise_paired.json");
}

criterion_group!(
    benches,
    account_new,
    one_time_keys,
    outbound,
    inbound,
    symmetric,
    ping_pong,
    fanout,
    pickles
);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    paired_ratios();
}

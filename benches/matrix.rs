//! Criterion benchmarks for the Matrix layer, each next to the same
//! cryptographic work through the native endpoint in the same run:
//!
//! - `matrix_share_1000`: `MatrixEndpoint::rotate_room_key` then
//!   `share_room_key` to 1,000 devices of 200 users (5 each) holding Olm
//!   sessions: 1,000 Olm encryptions of `m.room_key` inside the payload JSON,
//!   the `/sendToDevice` bodies, one Megolm session. Beside it
//!   `native_share_1000`: `Endpoint::rotate_room_key` then `share_room_key`
//!   to 1,000 devices (1,000 pairwise encryptions of a room-key share, one
//!   group session).
//! - `matrix_sync_1000`: one `/sync` text carrying 1,000 Olm to-device
//!   events (`m.room_key` for 1,000 rooms, one sender) taken by
//!   `receive_sync_changes`: JSON parsing, 1,000 Olm decryptions (the first
//!   creates the inbound session), payload checks, 1,000 Megolm session keys
//!   verified and stored. Beside it `native_receive_1000`: 1,000 native
//!   room-key shares from one peer taken by `receive_device_message`.
//!
//! Every endpoint is restored from a pickle before every iteration
//! (outside the timed region): each share starts from the state after setup
//! and one untimed share (a rotation keeps our own inbound copy of the key,
//! which would otherwise pile up; a restored session derives its ratchet
//! public key on first use), and each receiver takes the same messages
//! fresh. The sessions on both sides are the sender's first (pre-key)
//! messages, alike in both protocols.
//!
//! - `olm_floor` (in the share group): the Matrix share's cryptographic
//!   work alone on plain `OlmSession`s, to tell the JSON's cost from the
//!   ciphers'.
//!
//! After the criterion groups, each pair is timed in alternating runs and
//! the Matrix / native ratio printed (`MATRIX_PAIRED=0` skips it).
//!
//! `MATRIX_PROFILE=share` skips the measurements and shares 2,000 times on
//! one warm endpoint, for a profiler attached once it says so.
//!
//! Run: `cargo bench --bench matrix -- --warm-up-time 1 --measurement-time 5`.

#[path = "../tests/support/matrix_server.rs"]
mod server;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::matrix::{MatrixEndpoint, RoomId, UserId};
use roomseal::{Account, DeviceMessage, Endpoint, PickleKey, SelfSignedDevice};
use server::{Client, Server};

const DEVICES: usize = 1_000;
const USERS: usize = 200;
const ROOM: &str = "!bench:example.org";
const ALICE: &str = "@alice:example.org";

/// Alice's Matrix endpoint with Olm sessions to 1,000 devices of 200 users.
struct MatrixSharer {
    room: RoomId,
    members: Vec<UserId>,
    key: PickleKey,
    pickle: String,
}

impl MatrixSharer {
    fn new() -> Self {
        let mut server = Server::default();
        let mut alice = Client::new(ALICE, "ALICE");
        server.join(ROOM, ALICE);
        alice.pump(&mut server);
        for u in 0..USERS {
            let user = format!("@user{u}:example.org");
            server.join(ROOM, &user);
            for d in 0..DEVICES / USERS {
                let mut peer = Client::new(&user, &format!("DEV{d}"));
                peer.pump(&mut server);
            }
        }
        let members = server.member_ids(ROOM);
        alice.ep.update_tracked_users(&members);
        alice.pump(&mut server);
        while let Some(claim) = alice.ep.keys_claim_request(&members) {
            alice.answer(&mut server, &claim);
        }
        assert_eq!(alice.ep.olm_peer_count(), DEVICES);
        let room = RoomId::parse(ROOM).expect("room id");
        let key = PickleKey::random();
        let pickle = alice.ep.pickle(&key);
        let fx = Self {
            room,
            members,
            key,
            pickle,
        };
        assert_eq!(fx.op(fx.fresh()).0, DEVICES);
        fx
    }

    /// The endpoint as after setup (each rotation keeps our own inbound
    /// copy of the key, so every timed share starts from the same state),
    /// having shared once: a restored session derives its ratchet public key
    /// on first use, which is not what a share costs in steady state.
    fn fresh(&self) -> MatrixEndpoint {
        let alice = MatrixEndpoint::from_pickle(&self.pickle, &self.key).expect("pickle");
        self.op(alice).1
    }

    fn op(&self, mut alice: MatrixEndpoint) -> (usize, MatrixEndpoint) {
        alice.rotate_room_key(&self.room);
        let outcome = alice
            .share_room_key(&self.room, black_box(&self.members))
            .expect("share");
        (outcome.served.len(), alice)
    }
}

/// Alice's native endpoint with sessions to 1,000 devices.
struct NativeSharer {
    devices: Vec<SelfSignedDevice>,
    key: PickleKey,
    pickle: String,
}

impl NativeSharer {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let mut alice =
            Endpoint::from_account(ALICE, "ALICE", Account::new_with_rng(r)).expect("ids");
        let mut devices = Vec::with_capacity(DEVICES);
        for i in 0..DEVICES {
            let mut peer = Endpoint::from_account(
                &format!("@user{}:example.org", i / (DEVICES / USERS)),
                &format!("DEV{}", i % (DEVICES / USERS)),
                Account::new_with_rng(r),
            )
            .expect("ids");
            let keys = peer.keys_to_publish(1);
            peer.mark_keys_as_published(&keys);
            devices.push(
                alice
                    .establish_session(&keys.device_keys, &keys.one_time_keys[0])
                    .expect("session"),
            );
        }
        let key = PickleKey::random_with_rng(r);
        let pickle = alice.pickle_with_rng(&key, r);
        let fx = Self {
            devices,
            key,
            pickle,
        };
        assert_eq!(fx.op(fx.fresh()).0, DEVICES);
        fx
    }

    /// As [`MatrixSharer::fresh`].
    fn fresh(&self) -> Endpoint {
        let alice = Endpoint::from_pickle(&self.pickle, &self.key).expect("pickle");
        self.op(alice).1
    }

    fn op(&self, mut alice: Endpoint) -> (usize, Endpoint) {
        alice.rotate_room_key(ROOM);
        let outcome = alice
            .share_room_key(ROOM, black_box(&self.devices))
            .expect("share");
        (outcome.messages.len(), alice)
    }
}

/// The cryptographic work of the Matrix share alone, on plain sessions: a
/// new Megolm session and its session key, then 1,000 Olm encryptions of a
/// plaintext the size of an `m.room_key` payload (no JSON, no requests).
struct OlmFloor {
    sessions: Vec<roomseal::OlmSession>,
    plaintext: Vec<u8>,
}

impl OlmFloor {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let alice = roomseal::OlmAccount::new_with_rng(r);
        let sessions = (0..DEVICES)
            .map(|_| {
                let mut peer = roomseal::OlmAccount::new_with_rng(r);
                peer.generate_one_time_keys_with_rng(1, r);
                let otk = peer.one_time_keys().first().expect("a key").1;
                alice
                    .create_outbound_session_with_rng(peer.identity_keys().curve25519, otk, r)
                    .expect("session")
            })
            .collect();
        // The size of the JSON payload carrying an m.room_key (measured
        // from the Matrix share: about 560 bytes).
        Self {
            sessions,
            plaintext: vec![b'x'; 560],
        }
    }

    fn op(&mut self) -> usize {
        let megolm = roomseal::MegolmOutboundSession::new();
        let text = megolm.session_key().to_base64();
        black_box(text);
        for s in &mut self.sessions {
            black_box(s.encrypt(black_box(&self.plaintext)).expect("encrypt"));
        }
        self.sessions.len()
    }
}

/// Bob's Matrix endpoint (pickled) and a sync with 1,000 room keys.
struct MatrixReceiver {
    key: PickleKey,
    bob: String,
    sync: String,
}

impl MatrixReceiver {
    fn new() -> Self {
        let mut server = Server::default();
        let mut alice = Client::new(ALICE, "ALICE");
        let mut bob = Client::new("@bob:example.org", "BOB");
        alice.pump(&mut server);
        bob.pump(&mut server);
        for i in 0..DEVICES {
            let room = format!("!room{i}:example.org");
            server.join(&room, ALICE);
            server.join(&room, "@bob:example.org");
            alice.share(&mut server, &room);
        }
        bob.ep
            .update_tracked_users(&[UserId::parse(ALICE).expect("user id")]);
        bob.pump(&mut server);
        let sync = server.sync("@bob:example.org", "BOB");
        let key = PickleKey::random();
        let fx = Self {
            bob: bob.ep.pickle(&key),
            key,
            sync,
        };
        assert_eq!(fx.op(fx.fresh()).0, DEVICES);
        fx
    }

    fn fresh(&self) -> MatrixEndpoint {
        MatrixEndpoint::from_pickle(&self.bob, &self.key).expect("pickle")
    }

    fn op(&self, mut bob: MatrixEndpoint) -> (usize, MatrixEndpoint) {
        let outcome = bob
            .receive_sync_changes(black_box(&self.sync))
            .expect("sync");
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        (outcome.to_device.len(), bob)
    }
}

/// Bob's native endpoint (pickled) and 1,000 room-key shares from Alice.
struct NativeReceiver {
    key: PickleKey,
    bob: String,
    messages: Vec<DeviceMessage>,
    sender_key: roomseal::Curve25519PublicKey,
}

impl NativeReceiver {
    fn new(r: &mut ChaCha20Rng) -> Self {
        let mut alice =
            Endpoint::from_account(ALICE, "ALICE", Account::new_with_rng(r)).expect("ids");
        let mut bob = Endpoint::from_account("@bob:example.org", "BOB", Account::new_with_rng(r))
            .expect("ids");
        let keys = bob.keys_to_publish(1);
        bob.mark_keys_as_published(&keys);
        let device = alice
            .establish_session(&keys.device_keys, &keys.one_time_keys[0])
            .expect("session");
        let mut messages = Vec::with_capacity(DEVICES);
        for i in 0..DEVICES {
            let outcome = alice
                .share_room_key(
                    &format!("!room{i}:example.org"),
                    std::slice::from_ref(&device),
                )
                .expect("share");
            messages.extend(outcome.messages.into_iter().map(|m| m.message));
        }
        let key = PickleKey::random_with_rng(r);
        let fx = Self {
            bob: bob.pickle_with_rng(&key, r),
            key,
            messages,
            sender_key: alice.identity_keys().curve25519,
        };
        assert_eq!(fx.op(fx.fresh()).0, DEVICES);
        fx
    }

    fn fresh(&self) -> Endpoint {
        Endpoint::from_pickle(&self.bob, &self.key).expect("pickle")
    }

    fn op(&self, mut bob: Endpoint) -> (usize, Endpoint) {
        let mut taken = 0;
        for m in black_box(&self.messages) {
            bob.receive_device_message(ALICE, &self.sender_key, m)
                .expect("receive");
            taken += 1;
        }
        (taken, bob)
    }
}

/// Times `op` on `n` inputs made by `setup`; making the input and dropping
/// the output (an endpoint, whose sessions zeroize) are not timed.
fn timed<T, R>(n: u64, mut setup: impl FnMut() -> T, mut op: impl FnMut(T) -> R) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let input = setup();
        let start = Instant::now();
        let output = black_box(op(input));
        total += start.elapsed();
        drop(output);
    }
    total
}

/// Alternating runs of a Matrix operation and its native twin; returns
/// the median of the per-pair ratios.
fn paired(
    rounds: usize,
    mut matrix: impl FnMut() -> Duration,
    mut native: impl FnMut() -> Duration,
) -> f64 {
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|_| matrix().as_secs_f64() / native().as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn benches(c: &mut Criterion) {
    let mut r = ChaCha20Rng::seed_from_u64(11);
    eprintln!("matrix bench: building fixtures (1,000 devices each side)...");
    let matrix_share = MatrixSharer::new();
    let native_share = NativeSharer::new(&mut r);
    let mut olm_floor = OlmFloor::new(&mut r);
    let matrix_sync = MatrixReceiver::new();
    let native_receive = NativeReceiver::new(&mut r);

    if std::env::var("MATRIX_PROFILE").as_deref() == Ok("share") {
        // For a profiler attached now: shares only, on one warm endpoint.
        let mut alice = matrix_share.fresh();
        eprintln!("matrix bench: profiling the share");
        for _ in 0..2_000 {
            alice = matrix_share.op(alice).1;
        }
        std::process::exit(0);
    }
    let mut g = c.benchmark_group("share_1000_devices");
    g.sample_size(10);
    g.bench_function("matrix", |b| {
        b.iter_custom(|n| timed(n, || matrix_share.fresh(), |a| matrix_share.op(a)))
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| timed(n, || native_share.fresh(), |a| native_share.op(a)))
    });
    g.bench_function("olm_floor", |b| b.iter(|| olm_floor.op()));
    g.finish();

    let mut g = c.benchmark_group("receive_1000_to_device");
    g.sample_size(10);
    g.bench_function("matrix_sync", |b| {
        b.iter_custom(|n| timed(n, || matrix_sync.fresh(), |bob| matrix_sync.op(bob)))
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| timed(n, || native_receive.fresh(), |bob| native_receive.op(bob)))
    });
    g.finish();

    if std::env::var("MATRIX_PAIRED").as_deref() != Ok("0") {
        let share = paired(
            9,
            || timed(1, || matrix_share.fresh(), |a| matrix_share.op(a)),
            || timed(1, || native_share.fresh(), |a| native_share.op(a)),
        );
        let floor = paired(
            9,
            || timed(1, || matrix_share.fresh(), |a| matrix_share.op(a)),
            || timed(1, || (), |()| olm_floor.op()),
        );
        let receive = paired(
            9,
            || timed(1, || matrix_sync.fresh(), |bob| matrix_sync.op(bob)),
            || timed(1, || native_receive.fresh(), |bob| native_receive.op(bob)),
        );
        println!("matrix/native ratio, share a room key to 1,000 devices of 200 users: {share:.2}");
        println!("matrix/olm-floor ratio, the same share (Olm and Megolm work alone): {floor:.2}");
        println!("matrix/native ratio, one sync of 1,000 to-device room keys: {receive:.2}");
    }
}

criterion_group!(matrix, benches);
criterion_main!(matrix);

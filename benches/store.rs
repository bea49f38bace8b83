//! The durable store's cost per operation, against what is held.
//!
//! An endpoint holding N peers (sessions the app started, so named) and N
//! room keys (imported), N = 10 and 10,000, encrypts one event and decrypts
//! one event, and persists the changes:
//! - `sqlite`: a `DurableEndpoint` on a `SqliteStore` (WAL,
//!   `synchronous=FULL`: one fsync per commit);
//! - `memory`: a `DurableEndpoint` on a `MemoryStore` (the sealing and
//!   bookkeeping without I/O);
//! - `pickle`: today's way, the operation then the whole endpoint's pickle
//!   (in memory only);
//! - `pickle_fsync`: the same, with the pickle written over a file and
//!   fsynced (in place: a safe replace by rename would cost more).
//!
//! The pickled endpoint goes back to its first state every 64 operations
//! (untimed), so that the replay records it rewrites do not grow during the
//! run. The primitive floor (X25519, Ed25519 sign and verify, AES-256-GCM
//! of a 256-byte event, HMAC-SHA-256, and one 4 KiB write with fsync) runs
//! in the same process. After the criterion groups, the ratios (10,000 /
//! 10, against the pickle and the floor) and the store sizes per thousand
//! peers and per thousand room keys are printed and written to
//! `target/criterion/store_summary.json`.
//!
//! The Matrix rows (`matrix_encrypt_persist`, `matrix_decrypt_persist`) do
//! the same with a `DurableMatrixEndpoint` (SQLite and memory only): Alice
//! holds Olm sessions with N peer devices (N / 5 users of 5 devices, met
//! through the in-memory server of `tests/support/matrix_server.rs`) and N
//! Megolm keys (her own, one per room she shared in), encrypts one
//! `m.room.message` in a room shared with Bob, and decrypts one of Bob's.
//! Their 10,000 / 10 ratios are printed after the native ones, and the
//! Matrix store's size per thousand peer devices with as many keys.
//!
//! Last, the 10,000 / 10 comparison is measured again paired: one operation
//! on each size in turn, 300 rounds, medians (`paired/...` in the summary).
//! The disk's fsync latency on a shared machine can change by 10x between
//! two criterion groups minutes apart; interleaving exposes both sizes to
//! the same disk, so the paired ratios are the ones to quote.
//!
//! Run: `cargo bench --features sqlite --bench store -- --warm-up-time 1
//! --measurement-time 3`.

use std::collections::BTreeMap;
use std::fs::File;
use std::hint::black_box;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{BenchmarkId, Criterion};
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use roomseal::{
    Account, DurableEndpoint, EncryptedEvent, Endpoint, InboundGroupSession, MemoryStore,
    OutboundGroupSession, PickleKey, RotationPolicy, SqliteStore,
};
use serde_json::json;
use sha2::Sha256;

#[path = "../tests/support/matrix_server.rs"]
mod server;

use roomseal::matrix::{
    DurableMatrixEndpoint, MEGOLM_V1, MatrixEndpoint, RoomEncryptionContent, RoomId, UserId,
};
use serde_json::value::RawValue;
use server::{Client, Server};

const ROOM: &str = "!bench:example.org";
const SIZES: [usize; 2] = [10, 10_000];
const VARIANTS: [&str; 4] = ["sqlite", "memory", "pickle", "pickle_fsync"];

fn key() -> PickleKey {
    PickleKey::from_bytes(&mut [0x42; 32])
}

fn content() -> serde_json::Value {
    json!({ "body": "x".repeat(200), "msgtype": "m.text" })
}

/// Alice with `peers` named peers and `keys` imported room keys, her own
/// room shared with one peer, and a sender whose events she can decrypt.
fn alice(peers: usize, keys: usize) -> (Endpoint, Endpoint) {
    let mut alice = Endpoint::new("@alice:example.org", "ALICE").unwrap();
    alice.set_rotation_policy(RotationPolicy {
        max_messages: u32::MAX,
        max_age: Duration::from_secs(1 << 40),
    });
    let mut first = None;
    for i in 0..peers {
        let mut account = Account::new();
        account.generate_one_time_keys(1);
        let otk = account.one_time_keys().remove(0);
        let bundle = account
            .device_keys(&format!("@peer{i}:example.org"), "PEER")
            .unwrap();
        let device = alice.establish_session(&bundle, &otk).unwrap();
        first.get_or_insert(device);
    }
    for i in 0..keys {
        let creator = Account::new().identity_keys();
        let room = format!("!room{i}:example.org");
        let session = OutboundGroupSession::new(&room, creator).unwrap();
        let export = InboundGroupSession::new(&session.session_key())
            .unwrap()
            .export_at_first_known_index();
        alice.import_room_key(&room, creator, &export).unwrap();
    }
    if let Some(device) = first {
        alice.share_room_key(ROOM, &[device]).unwrap();
    }
    // A sender whose key Alice received over a pairwise session (Alice
    // starts it, so the sender is a named peer even past MAX_PEERS).
    let mut sender = Endpoint::new("@sender:example.org", "SENDER").unwrap();
    let sender_keys = sender.keys_to_publish(1);
    sender.mark_keys_as_published(&sender_keys);
    let sender_device = alice
        .establish_session(&sender_keys.device_keys, &sender_keys.one_time_keys[0])
        .unwrap();
    let hello = alice
        .share_room_key("!hello:example.org", &[sender_device])
        .unwrap();
    let m = &hello.messages[0];
    sender
        .receive_device_message("@alice:example.org", &m.sender_key, &m.message)
        .unwrap();
    let alice_device = alice.device_keys().check_self_signature().unwrap();
    let share = sender
        .share_room_key("!sender:example.org", &[alice_device])
        .unwrap();
    let m = &share.messages[0];
    alice
        .receive_device_message("@sender:example.org", &m.sender_key, &m.message)
        .unwrap();
    sender.set_rotation_policy(RotationPolicy {
        max_messages: u32::MAX,
        max_age: Duration::from_secs(1 << 40),
    });
    (alice, sender)
}

/// Where a variant keeps Alice.
enum Held {
    Durable(DurableEndpoint),
    /// The endpoint, the key, the pickle it started from, and the file the
    /// pickle is written to and fsynced (if any).
    Pickled(Endpoint, PickleKey, String, Option<File>),
}

/// Writes `pickle` over `file` and waits for the disk.
fn save(file: &mut Option<File>, pickle: &str) {
    if let Some(file) = file {
        file.seek(SeekFrom::Start(0)).unwrap();
        file.write_all(pickle.as_bytes()).unwrap();
        file.set_len(pickle.len() as u64).unwrap();
        file.sync_data().unwrap();
    }
}

impl Held {
    /// Untimed, every few operations: the pickled endpoint goes back to its
    /// first state, so its replay records (which the pickle rewrites every
    /// time) do not grow during the run and inflate the baseline.
    fn reset(&mut self) {
        if let Held::Pickled(e, key, first, _) = self {
            *e = Endpoint::from_pickle(first, key).unwrap();
        }
    }

    fn encrypt(&mut self) -> EncryptedEvent {
        match self {
            Held::Durable(d) => d.encrypt_event(ROOM, "m.room.message", &content()).unwrap(),
            Held::Pickled(e, key, _, file) => {
                let event = e.encrypt_event(ROOM, "m.room.message", &content()).unwrap();
                save(file, &e.pickle(key));
                event
            }
        }
    }

    fn decrypt(&mut self, id: &str, event: &EncryptedEvent) {
        match self {
            Held::Durable(d) => {
                black_box(d.decrypt_event("!sender:example.org", id, event).unwrap());
            }
            Held::Pickled(e, key, _, file) => {
                black_box(e.decrypt_event("!sender:example.org", id, event).unwrap());
                save(file, &e.pickle(key));
            }
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("store-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn held(variant: &str, pickle: &str, n: usize) -> Held {
    let endpoint = Endpoint::from_pickle(pickle, &key()).unwrap();
    match variant {
        "sqlite" => {
            let store = SqliteStore::open(scratch(&format!("bench-{n}.db"))).unwrap();
            Held::Durable(DurableEndpoint::from_endpoint(endpoint, store, &key()).unwrap())
        }
        "memory" => Held::Durable(
            DurableEndpoint::from_endpoint(endpoint, MemoryStore::new(), &key()).unwrap(),
        ),
        "pickle" => Held::Pickled(endpoint, key(), pickle.to_owned(), None),
        _ => {
            let file = File::create(scratch(&format!("bench-{n}.pickle"))).unwrap();
            Held::Pickled(endpoint, key(), pickle.to_owned(), Some(file))
        }
    }
}

/// A piece of work timed again and again.
type Work = Box<dyn FnMut()>;

/// The primitive floor: one call of each primitive.
fn floor(c: &mut Criterion, results: &mut BTreeMap<String, f64>) {
    let mut group = c.benchmark_group("floor");
    let secret = x25519_dalek::StaticSecret::from([7u8; 32]);
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([9u8; 32]));
    let signing = SigningKey::from_bytes(&[3u8; 32]);
    let message = [5u8; 300];
    let signature = signing.sign(&message);
    let verifying = signing.verifying_key();
    let mut rows: Vec<(&str, Work)> = vec![
        (
            "x25519",
            Box::new(move || {
                black_box(secret.diffie_hellman(black_box(&public)));
            }),
        ),
        (
            "ed25519_sign",
            Box::new(move || {
                black_box(signing.sign(black_box(&message)));
            }),
        ),
        (
            "ed25519_verify",
            Box::new(move || {
                black_box(verifying.verify_strict(black_box(&message), &signature)).unwrap();
            }),
        ),
        (
            "aes_gcm_256B",
            Box::new(|| {
                let mut buf = [1u8; 256];
                let cipher = Aes256Gcm::new(&[2u8; 32].into());
                black_box(cipher.encrypt_inout_detached(
                    &Nonce::from([0u8; 12]),
                    b"ad",
                    (&mut buf[..]).into(),
                ))
                .unwrap();
            }),
        ),
        (
            "hmac_sha256",
            Box::new(|| {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&[4u8; 32]).unwrap();
                mac.update(black_box(b"roomseal/v2/chain/message"));
                black_box(mac.finalize());
            }),
        ),
    ];
    let mut file = File::create(scratch("floor.bin")).unwrap();
    rows.push((
        "fsync_4KiB",
        Box::new(move || {
            file.seek(SeekFrom::Start(0)).unwrap();
            file.write_all(&[7u8; 4096]).unwrap();
            file.sync_data().unwrap();
        }),
    ));
    for (name, f) in &mut rows {
        group.bench_function(*name, |b| b.iter(&mut *f));
        results.insert(format!("floor/{name}"), time_ns(&mut **f, 2000));
    }
    group.finish();
}

/// Mean nanoseconds of `f` over `n` runs (for the summary).
fn time_ns(f: &mut dyn FnMut(), n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Alice's pickle and the sender of her events, for one size.
type NativeSetup = (usize, String, Endpoint);

fn operations(c: &mut Criterion, results: &mut BTreeMap<String, f64>) -> Vec<NativeSetup> {
    let mut setups = Vec::new();
    for n in SIZES {
        let setup = Instant::now();
        let (alice, mut sender) = alice(n, n);
        let pickle = alice.pickle(&key());
        eprintln!(
            "setup N={n}: {:.1} s, pickle {} bytes",
            setup.elapsed().as_secs_f64(),
            pickle.len() * 3 / 4
        );
        for variant in VARIANTS {
            let mut held = held(variant, &pickle, n);
            let mut record = |op: &str, mean_ns: f64| {
                results.insert(format!("{op}/{variant}/{n}"), mean_ns);
            };
            record(
                "encrypt",
                timed(c, "encrypt_persist", variant, n, |iters| {
                    let mut took = Duration::ZERO;
                    for i in 0..iters {
                        if i % 64 == 0 {
                            held.reset();
                        }
                        let start = Instant::now();
                        black_box(held.encrypt());
                        took += start.elapsed();
                    }
                    took
                }),
            );
            let mut next = 0u64;
            record(
                "decrypt",
                timed(c, "decrypt_persist", variant, n, |iters| {
                    // Fresh events (made untimed), each at a new index.
                    let events: Vec<(String, EncryptedEvent)> = (0..iters)
                        .map(|_| {
                            next += 1;
                            let event = sender
                                .encrypt_event("!sender:example.org", "m.room.message", &content())
                                .unwrap();
                            (format!("$event{next}"), event)
                        })
                        .collect();
                    let mut took = Duration::ZERO;
                    for (i, (id, event)) in events.iter().enumerate() {
                        if i % 64 == 0 {
                            held.reset();
                        }
                        let start = Instant::now();
                        held.decrypt(id, event);
                        took += start.elapsed();
                    }
                    took
                }),
            );
        }
        setups.push((n, pickle, sender));
    }
    setups
}

/// One criterion benchmark `group/variant/n` whose `run(iters)` times
/// `iters` operations; returns the mean nanoseconds over every run.
fn timed(
    c: &mut Criterion,
    group: &str,
    variant: &str,
    n: usize,
    mut run: impl FnMut(u64) -> Duration,
) -> f64 {
    let mut group = c.benchmark_group(format!("{group}/{variant}"));
    group.sample_size(10);
    let mut total = (Duration::ZERO, 0u64);
    group.bench_function(BenchmarkId::from_parameter(n), |b| {
        b.iter_custom(|iters| {
            let took = run(iters);
            total = (total.0 + took, total.1 + iters);
            took
        })
    });
    group.finish();
    total.0.as_nanos() as f64 / total.1.max(1) as f64
}

const M_ROOM: &str = "!mroom:example.org";
const M_SENDER_ROOM: &str = "!msender:example.org";
const M_ALICE: &str = "@alice:example.org";
const M_BOB: &str = "@bob:example.org";

/// Settings that never rotate during a run.
fn no_rotation() -> RoomEncryptionContent {
    RoomEncryptionContent {
        algorithm: MEGOLM_V1.to_owned(),
        rotation_period_ms: Some(1 << 50),
        rotation_period_msgs: Some(u64::from(u32::MAX)),
    }
}

fn room_id(room: &str) -> RoomId {
    RoomId::parse(room).unwrap()
}

/// Matrix Alice with Olm sessions to `n` peer devices and `n` Megolm keys
/// of her own, a room shared with Bob, and Bob's room key; returns her
/// pickle (under `key()`), Bob, and the server.
fn matrix_alice(n: usize) -> (String, Client, Server) {
    let mut server = Server::default();
    let mut alice = Client::new(M_ALICE, "ALICE");
    let mut bob = Client::new(M_BOB, "BOB");
    for room in [M_ROOM, M_SENDER_ROOM] {
        server.join(room, M_ALICE);
        server.join(room, M_BOB);
        alice.ep.set_room_encryption(&room_id(room), no_rotation());
        bob.ep.set_room_encryption(&room_id(room), no_rotation());
    }
    alice.pump(&mut server);
    bob.pump(&mut server);
    // The peers share no room with each other (their uploads tell nobody).
    server.quiet = true;
    for i in 0..n {
        let user = format!("@peer{}:example.org", i / 5);
        Client::new(&user, &format!("DEV{}", i % 5)).pump(&mut server);
    }
    server.quiet = false;
    let peers: Vec<UserId> = (0..n.div_ceil(5))
        .map(|u| UserId::parse(format!("@peer{u}:example.org")).unwrap())
        .collect();
    alice.ep.update_tracked_users(&peers);
    alice.pump(&mut server);
    while let Some(claim) = alice.ep.keys_claim_request(&peers) {
        alice.answer(&mut server, &claim);
    }
    assert!(alice.ep.olm_peer_count() >= n);
    let me = [UserId::parse(M_ALICE).unwrap()];
    for i in 0..n {
        alice
            .ep
            .share_room_key(&room_id(&format!("!own{i}:example.org")), &me)
            .unwrap();
    }
    alice.share(&mut server, M_ROOM);
    bob.share(&mut server, M_SENDER_ROOM);
    alice.sync(&mut server);
    assert!(alice.ep.room_keys().len() > n);
    (alice.ep.pickle(&key()), bob, server)
}

fn matrix_content() -> Box<RawValue> {
    serde_json::value::to_raw_value(&content()).unwrap()
}

/// Matrix Alice's pickle, Bob and the server, for one size.
type MatrixSetup = (usize, String, Client, Server);

/// Matrix Alice from `pickle` on a durable store of `variant`.
fn matrix_durable(variant: &str, pickle: &str, n: usize) -> DurableMatrixEndpoint {
    let endpoint = MatrixEndpoint::from_pickle(pickle, &key()).unwrap();
    match variant {
        "sqlite" => {
            let store = SqliteStore::open(scratch(&format!("matrix-{n}.db"))).unwrap();
            DurableMatrixEndpoint::from_endpoint(endpoint, store, &key()).unwrap()
        }
        _ => DurableMatrixEndpoint::from_endpoint(endpoint, MemoryStore::new(), &key()).unwrap(),
    }
}

/// One of Bob's events in his room, as the server hands it to Alice.
fn bob_event(bob: &mut Client, server: &mut Server) -> String {
    let encrypted = bob
        .ep
        .encrypt_room_event(&room_id(M_SENDER_ROOM), "m.room.message", &matrix_content())
        .unwrap();
    server
        .send_event(M_SENDER_ROOM, M_BOB, encrypted.to_json_value())
        .to_string()
}

fn matrix_operations(c: &mut Criterion, results: &mut BTreeMap<String, f64>) -> Vec<MatrixSetup> {
    let mut setups = Vec::new();
    for n in SIZES {
        let setup = Instant::now();
        let (pickle, mut bob, mut server) = matrix_alice(n);
        eprintln!(
            "matrix setup N={n}: {:.1} s, pickle {} bytes",
            setup.elapsed().as_secs_f64(),
            pickle.len() * 3 / 4
        );
        for variant in ["sqlite", "memory"] {
            let mut alice = matrix_durable(variant, &pickle, n);
            let body = matrix_content();
            let room = room_id(M_ROOM);
            let mean = timed(c, "matrix_encrypt_persist", variant, n, |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(
                        alice
                            .encrypt_room_event(&room, "m.room.message", &body)
                            .unwrap(),
                    );
                }
                start.elapsed()
            });
            results.insert(format!("matrix_encrypt/{variant}/{n}"), mean);
            let sender_room = room_id(M_SENDER_ROOM);
            let mean = timed(c, "matrix_decrypt_persist", variant, n, |iters| {
                // Fresh events (made untimed), each at a new index.
                let events: Vec<String> = (0..iters)
                    .map(|_| bob_event(&mut bob, &mut server))
                    .collect();
                let start = Instant::now();
                for event in &events {
                    black_box(alice.decrypt_room_event_json(&sender_room, event).unwrap());
                }
                start.elapsed()
            });
            results.insert(format!("matrix_decrypt/{variant}/{n}"), mean);
        }
        setups.push((n, pickle, bob, server));
    }
    setups
}

/// Rounds of the paired measurement.
const PAIRED_ROUNDS: usize = 300;

/// Runs `op(k, round)` for size `k` = 0 (N = 10) and 1 (N = 10,000) one
/// after the other, alternating which goes first, `PAIRED_ROUNDS` times, and
/// returns the median time of each in nanoseconds. The disk's fsync latency
/// here changes by more than 10x from one minute to the next; interleaving
/// makes such a change hit both sizes alike, so their ratio stays honest
/// where two criterion groups run minutes apart may not.
fn paired_medians(mut op: impl FnMut(usize, usize) -> Duration) -> [f64; 2] {
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..PAIRED_ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            times[k].push(op(k, round));
        }
    }
    times.map(|mut t| {
        t.sort();
        t[t.len() / 2].as_nanos() as f64
    })
}

/// The 10,000 / 10 comparison again, paired (see [`paired_medians`]), for
/// the durable native and Matrix endpoints on SQLite and in memory.
fn paired(
    native: &mut [NativeSetup],
    matrix: &mut [MatrixSetup],
    results: &mut BTreeMap<String, f64>,
) {
    let mut record = |key: String, [small, large]: [f64; 2]| {
        results.insert(format!("{key}/10"), small);
        results.insert(format!("{key}/10000"), large);
    };
    for variant in ["sqlite", "memory"] {
        let mut helds: Vec<Held> = native
            .iter()
            .map(|(n, p, _)| held(variant, p, *n))
            .collect();
        let medians = paired_medians(|k, _| {
            let start = Instant::now();
            black_box(helds[k].encrypt());
            start.elapsed()
        });
        record(format!("paired/encrypt/{variant}"), medians);
        let medians = paired_medians(|k, round| {
            let event = native[k]
                .2
                .encrypt_event("!sender:example.org", "m.room.message", &content())
                .unwrap();
            let id = format!("$paired{round}");
            let start = Instant::now();
            helds[k].decrypt(&id, &event);
            start.elapsed()
        });
        record(format!("paired/decrypt/{variant}"), medians);
        drop(helds);

        let mut alices: Vec<DurableMatrixEndpoint> = matrix
            .iter()
            .map(|(n, p, ..)| matrix_durable(variant, p, *n))
            .collect();
        let (room, sender_room, body) = (room_id(M_ROOM), room_id(M_SENDER_ROOM), matrix_content());
        let medians = paired_medians(|k, _| {
            let start = Instant::now();
            black_box(
                alices[k]
                    .encrypt_room_event(&room, "m.room.message", &body)
                    .unwrap(),
            );
            start.elapsed()
        });
        record(format!("paired/matrix_encrypt/{variant}"), medians);
        let medians = paired_medians(|k, _| {
            let (_, _, bob, server) = &mut matrix[k];
            let event = bob_event(bob, server);
            let start = Instant::now();
            black_box(
                alices[k]
                    .decrypt_room_event_json(&sender_room, &event)
                    .unwrap(),
            );
            start.elapsed()
        });
        record(format!("paired/matrix_decrypt/{variant}"), medians);
    }
}

/// Store sizes per thousand peers and per thousand room keys.
fn sizes(results: &mut BTreeMap<String, f64>) {
    let measure = |name: &str, peers: usize, keys: usize| {
        let (alice, _) = alice(peers, keys);
        let pickle_len = alice.pickle(&key()).len() * 3 / 4;
        let path = scratch(&format!("size-{name}.db"));
        let store = SqliteStore::open(&path).unwrap();
        drop(DurableEndpoint::from_endpoint(alice, store, &key()).unwrap());
        let store = SqliteStore::open(&path).unwrap();
        let sqlite = store.size_bytes().unwrap() as f64;
        let records = store.record_count().unwrap() as f64;
        (sqlite, records, pickle_len as f64)
    };
    let base = measure("base", 0, 0);
    let peers = measure("peers", 1000, 0);
    let keys = measure("keys", 0, 1000);
    for (what, m) in [("per_1000_peers", peers), ("per_1000_keys", keys)] {
        results.insert(format!("size/sqlite_bytes_{what}"), m.0 - base.0);
        results.insert(format!("size/records_{what}"), m.1 - base.1);
        results.insert(format!("size/pickle_bytes_{what}"), m.2 - base.2);
    }
}

/// The Matrix store's size per thousand Olm peer devices together with
/// as many Megolm keys (the two sizes of the Matrix setups, differenced).
fn matrix_sizes(matrix: &[MatrixSetup], results: &mut BTreeMap<String, f64>) {
    let measured: Vec<(f64, f64, f64)> = matrix
        .iter()
        .map(|(n, pickle, ..)| {
            let path = scratch(&format!("matrix-size-{n}.db"));
            let endpoint = MatrixEndpoint::from_pickle(pickle, &key()).unwrap();
            let store = SqliteStore::open(&path).unwrap();
            drop(DurableMatrixEndpoint::from_endpoint(endpoint, store, &key()).unwrap());
            let store = SqliteStore::open(&path).unwrap();
            (
                *n as f64,
                store.size_bytes().unwrap() as f64,
                store.record_count().unwrap() as f64,
            )
        })
        .collect();
    if let [small, large] = measured[..] {
        let per_thousand = |a: f64, b: f64| (b - a) * 1000.0 / (large.0 - small.0);
        results.insert(
            "size/matrix_sqlite_bytes_per_1000_peers_and_keys".into(),
            per_thousand(small.1, large.1),
        );
        results.insert(
            "size/matrix_records_per_1000_peers_and_keys".into(),
            per_thousand(small.2, large.2),
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut results = BTreeMap::new();
    floor(&mut c, &mut results);
    let mut native = operations(&mut c, &mut results);
    let mut matrix = matrix_operations(&mut c, &mut results);
    paired(&mut native, &mut matrix, &mut results);
    sizes(&mut results);
    matrix_sizes(&matrix, &mut results);
    c.final_summary();
    let get = |k: &str| results.get(k).copied().unwrap_or(f64::NAN);
    println!("\n== store summary (mean ns per operation; ratios)");
    for op in ["encrypt", "decrypt"] {
        for variant in VARIANTS {
            let small = get(&format!("{op}/{variant}/10"));
            let large = get(&format!("{op}/{variant}/10000"));
            println!(
                "{op:8} {variant:12} N=10: {small:>12.0}  N=10000: {large:>12.0}  10000/10: {:.2}",
                large / small
            );
        }
        // The floor of the operation itself (sign or verify, AES-GCM, one
        // HMAC), plus one fsync for the durable variants.
        let crypto = get(if op == "encrypt" {
            "floor/ed25519_sign"
        } else {
            "floor/ed25519_verify"
        }) + get("floor/aes_gcm_256B")
            + get("floor/hmac_sha256");
        for (variant, baseline, floor) in [
            ("sqlite", "pickle_fsync", crypto + get("floor/fsync_4KiB")),
            ("memory", "pickle", crypto),
        ] {
            for n in SIZES {
                let ours = get(&format!("{op}/{variant}/{n}"));
                println!(
                    "{op:8} {variant:7} N={n:<6} vs {baseline}: {:.4}x   vs floor: {:.2}x",
                    ours / get(&format!("{op}/{baseline}/{n}")),
                    ours / floor
                );
            }
        }
    }
    for op in ["matrix_decrypt", "matrix_encrypt"] {
        for variant in ["sqlite", "memory"] {
            let small = get(&format!("{op}/{variant}/10"));
            let large = get(&format!("{op}/{variant}/10000"));
            println!(
                "{op:14} {variant:7} 10000/10: {:.2}  N=10: {small:>12.0}  N=10000: {large:>12.0}",
                large / small
            );
        }
    }
    println!("\n== paired (interleaved, medians): the figures to quote for 10000/10");
    for op in ["encrypt", "decrypt", "matrix_encrypt", "matrix_decrypt"] {
        for variant in ["sqlite", "memory"] {
            let small = get(&format!("paired/{op}/{variant}/10"));
            let large = get(&format!("paired/{op}/{variant}/10000"));
            println!(
                "{op:14} {variant:7} 10000/10: {:.2}  N=10: {small:>12.0}  N=10000: {large:>12.0}",
                large / small
            );
        }
    }
    for (k, v) in &results {
        println!("{k}: {v:.1}");
    }
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../criterion/store_summary.json");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap());
}

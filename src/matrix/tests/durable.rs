//! The durable Matrix endpoint against stores that fail, in a two-device
//! Matrix conversation (key uploads, queries, a claim and an Olm session,
//! a room key share, events both ways): after every operation, a failed
//! commit (I/O error, full disk) leaves the endpoint and the store exactly
//! as they were and the retried operation works; a failure to read back
//! poisons the endpoint until it reloads; the store always reopens to the
//! live state; a stale writer reloads instead of overwriting; the store
//! shows no id or key in the clear; a pickle migrates; and an operation
//! writes the same few records however much is held.

use std::fmt::Debug;

use serde_json::Value;

use super::server::{Client, Server};
use crate::PickleKey;
use crate::codec::Writer;
use crate::matrix::{
    DurableError, DurableMatrixEndpoint, MatrixEndpoint, OutgoingRequest, RoomId, UserId,
};
use crate::store::faulty::FaultyStore;
use crate::store::{MemoryStore, Store, StoreError};

const ROOM: &str = "!durable:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";

fn key() -> PickleKey {
    PickleKey::from_bytes(&mut [9; 32])
}

fn room() -> RoomId {
    RoomId::parse(ROOM).unwrap()
}

/// The endpoint's whole state, as its pickle contents.
fn contents(endpoint: &MatrixEndpoint) -> Vec<u8> {
    let mut w = Writer::default();
    endpoint.write_contents(&mut w);
    w.into_vec()
}

/// A durable client and its faulty store.
type Side = (Client<DurableMatrixEndpoint>, FaultyStore);

/// A durable client on a faulty store.
fn durable(user: &str, device: &str) -> Side {
    let Client { ep, user, device } = Client::new(user, device);
    let store = FaultyStore::new();
    let ep = DurableMatrixEndpoint::from_endpoint(ep, store.clone(), &key()).unwrap();
    (Client { ep, user, device }, store)
}

/// The store error of a result, panicking on an operation error.
fn store_error<T, E: Debug>(result: Result<T, DurableError<E>>) -> Result<T, StoreError> {
    result.map_err(|e| match e {
        DurableError::Store(e) => e,
        DurableError::Operation(e) => panic!("operation failed: {e:?}"),
    })
}

/// Runs `op` under every fault first (each must change nothing, in memory
/// or in the store), then for real; returns the real result.
fn faulted<T>(
    ep: &mut DurableMatrixEndpoint,
    store: &FaultyStore,
    mut op: impl FnMut(&mut DurableMatrixEndpoint) -> Result<T, StoreError>,
) -> T {
    for fault in [StoreError::Io(5), StoreError::Full] {
        let before = contents(ep);
        let stored = store.snapshot();
        store.faults().commit = Some(fault);
        match op(ep) {
            Err(error) => assert_eq!(error, fault),
            // Nothing to commit: the operation changed nothing.
            Ok(value) => {
                assert_eq!(store.faults().commit.take(), Some(fault));
                assert_eq!(contents(ep), before);
                return value;
            }
        }
        assert_eq!(contents(ep), before, "state changed by a failed commit");
        assert_eq!(store.snapshot(), stored, "store changed by a failed commit");
    }
    // A failed commit whose read-back fails too: poisoned until reloaded.
    let before = contents(ep);
    store.faults().commit = Some(StoreError::Io(5));
    store.faults().reads = true;
    assert_eq!(op(ep).err(), Some(StoreError::Io(5)));
    store.faults().reads = false;
    assert_eq!(op(ep).err(), Some(StoreError::Poisoned));
    ep.reload().unwrap();
    assert_eq!(contents(ep), before);
    let value = op(ep).unwrap();
    assert_reopens(ep, store);
    value
}

/// The store reopens to exactly the live state.
fn assert_reopens(ep: &DurableMatrixEndpoint, store: &FaultyStore) {
    let reopened = DurableMatrixEndpoint::open(store.inner.clone(), &key()).unwrap();
    assert_eq!(contents(&reopened), contents(ep));
    assert_eq!(reopened.store_generation(), ep.store_generation());
}

/// Sends every outgoing request of a client, each operation under faults.
fn pump(client: &mut Client<DurableMatrixEndpoint>, store: &FaultyStore, server: &mut Server) {
    for _ in 0..10 {
        let requests = faulted(&mut client.ep, store, |e| {
            store_error(e.outgoing_requests())
        });
        if requests.is_empty() {
            return;
        }
        for request in requests {
            answer(client, store, server, &request);
        }
    }
    panic!("requests keep coming");
}

fn answer(
    client: &mut Client<DurableMatrixEndpoint>,
    store: &FaultyStore,
    server: &mut Server,
    request: &OutgoingRequest,
) {
    let response = server.route(&client.user, &client.device, request);
    faulted(&mut client.ep, store, |e| {
        store_error(e.mark_request_as_sent(request.id, &response))
    });
}

/// A whole conversation, every operation under faults; returns the clients.
fn conversation() -> (Server, Side, Side) {
    let mut server = Server::default();
    let (mut alice, alice_store) = durable(ALICE, "ALICE");
    let (mut bob, bob_store) = durable(BOB, "BOB");
    server.join(ROOM, ALICE);
    server.join(ROOM, BOB);
    pump(&mut alice, &alice_store, &mut server);
    pump(&mut bob, &bob_store, &mut server);
    let members = server.member_ids(ROOM);
    for (c, s) in [(&mut alice, &alice_store), (&mut bob, &bob_store)] {
        faulted(&mut c.ep, s, |e| e.update_tracked_users(&members));
        pump(c, s, &mut server);
    }
    // Alice claims a key of Bob's, starts an Olm session, shares the room key.
    let claim = faulted(&mut alice.ep, &alice_store, |e| {
        e.keys_claim_request(&members)
    })
    .expect("a claim");
    answer(&mut alice, &alice_store, &mut server, &claim);
    let share = faulted(&mut alice.ep, &alice_store, |e| {
        store_error(e.share_room_key(&room(), &members))
    });
    for request in &share.requests {
        answer(&mut alice, &alice_store, &mut server, request);
    }
    // Bob receives it: a one-time key consumed, a session, a Megolm key.
    let sync = server.sync(BOB, "BOB");
    let outcome = faulted(&mut bob.ep, &bob_store, |e| {
        store_error(e.receive_sync_changes(&sync))
    });
    assert_eq!(outcome.to_device.len(), 1);
    pump(&mut bob, &bob_store, &mut server);
    // Events both ways.
    let event = encrypt(&mut alice, &alice_store, &mut server, "hello");
    assert_eq!(decrypt(&mut bob, &bob_store, &event), "hello");
    faulted(&mut bob.ep, &bob_store, |e| {
        e.update_tracked_users(&members)
    });
    bob.share_under_faults(&bob_store, &mut server);
    let sync = server.sync(ALICE, "ALICE");
    faulted(&mut alice.ep, &alice_store, |e| {
        store_error(e.receive_sync_changes(&sync))
    });
    let event = encrypt(&mut bob, &bob_store, &mut server, "hi back");
    assert_eq!(decrypt(&mut alice, &alice_store, &event), "hi back");
    // The same event again decrypts (clients re-render); the key can go.
    assert_eq!(decrypt(&mut alice, &alice_store, &event), "hi back");
    (server, (alice, alice_store), (bob, bob_store))
}

impl Client<DurableMatrixEndpoint> {
    fn share_under_faults(&mut self, store: &FaultyStore, server: &mut Server) {
        let members = server.member_ids(ROOM);
        if let Some(claim) = faulted(&mut self.ep, store, |e| e.keys_claim_request(&members)) {
            answer(self, store, server, &claim);
        }
        let share = faulted(&mut self.ep, store, |e| {
            store_error(e.share_room_key(&room(), &members))
        });
        for request in &share.requests {
            answer(self, store, server, request);
        }
    }
}

fn encrypt(
    client: &mut Client<DurableMatrixEndpoint>,
    store: &FaultyStore,
    server: &mut Server,
    body: &str,
) -> Value {
    let content =
        serde_json::value::to_raw_value(&serde_json::json!({"msgtype": "m.text", "body": body}))
            .unwrap();
    let encrypted = faulted(&mut client.ep, store, |e| {
        store_error(e.encrypt_room_event(&room(), "m.room.message", &content))
    });
    server.send_event(ROOM, &client.user, encrypted.to_json_value())
}

fn decrypt(
    client: &mut Client<DurableMatrixEndpoint>,
    store: &FaultyStore,
    event: &Value,
) -> String {
    let text = event.to_string();
    let decrypted = faulted(&mut client.ep, store, |e| {
        store_error(e.decrypt_room_event_json(&room(), &text))
    });
    let content: Value = serde_json::from_str(decrypted.content.get()).unwrap();
    content["body"].as_str().unwrap().to_owned()
}

#[test]
fn a_failed_commit_changes_nothing_and_the_next_operation_works() {
    let (_, (alice, alice_store), (bob, bob_store)) = conversation();
    assert_eq!(alice.ep.olm_peer_count(), 1);
    assert_eq!(bob.ep.room_keys().len(), 2);
    assert_reopens(&alice.ep, &alice_store);
    assert_reopens(&bob.ep, &bob_store);
}

#[test]
fn the_store_shows_no_id_or_key_in_the_clear() {
    let (_, (alice, alice_store), (bob, _)) = conversation();
    let loaded = alice_store.snapshot();
    let mut secrets: Vec<Vec<u8>> = vec![
        ROOM.as_bytes().to_vec(),
        ALICE.as_bytes().to_vec(),
        BOB.as_bytes().to_vec(),
        b"ALICE".to_vec(),
        alice.ep.identity_keys().curve25519.as_bytes().to_vec(),
        alice.ep.identity_keys().ed25519.as_bytes().to_vec(),
        bob.ep.identity_keys().curve25519.as_bytes().to_vec(),
    ];
    for k in alice.ep.room_keys() {
        secrets.push(k.session_id.as_bytes().to_vec());
    }
    assert!(loaded.records.len() > 8);
    for (slot, value) in &loaded.records {
        for secret in &secrets {
            for haystack in [&slot.id[..], &value[..]] {
                assert!(
                    !haystack.windows(secret.len()).any(|w| w == &secret[..]),
                    "a record shows an id or key in the clear"
                );
            }
        }
    }
    // Every kind is a Matrix one, distinct from the native kinds (1 to 8).
    assert!(loaded.records.iter().all(|(slot, _)| slot.kind >= 0x21));
}

#[test]
fn a_stale_writer_reloads_instead_of_overwriting() {
    let (mut server, (mut alice, alice_store), _) = conversation();
    let mut other = DurableMatrixEndpoint::open(alice_store.inner.clone(), &key()).unwrap();
    let content = serde_json::value::to_raw_value(&serde_json::json!({"body": "x"})).unwrap();
    // The other handle advances the ratchet; this one is now stale.
    other
        .encrypt_room_event(&room(), "m.room.message", &content)
        .unwrap();
    let newest = contents(&other);
    let stale = alice
        .ep
        .encrypt_room_event(&room(), "m.room.message", &content);
    assert!(matches!(
        stale,
        Err(DurableError::Store(StoreError::Stale { .. }))
    ));
    // It reloaded the newest state rather than overwrite it.
    assert_eq!(contents(&alice.ep), newest);
    alice
        .ep
        .encrypt_room_event(&room(), "m.room.message", &content)
        .unwrap();
    // The handle that lost the race is stale in turn.
    assert!(matches!(
        other.encrypt_room_event(&room(), "m.room.message", &content),
        Err(DurableError::Store(StoreError::Stale { .. }))
    ));
    let _ = &mut server;
}

#[test]
fn a_pickle_migrates_into_an_empty_store_only() {
    let (_, (alice, _), _) = conversation();
    let pickle = alice.ep.pickle(&key());
    let store = MemoryStore::new();
    let migrated = DurableMatrixEndpoint::migrate_pickle(&pickle, &key(), store.clone()).unwrap();
    assert_eq!(contents(&migrated), contents(&alice.ep));
    let reopened = DurableMatrixEndpoint::open(store.clone(), &key()).unwrap();
    assert_eq!(contents(&reopened), contents(&alice.ep));
    assert_eq!(
        DurableMatrixEndpoint::migrate_pickle(&pickle, &key(), store).err(),
        Some(DurableError::Store(StoreError::NotEmpty))
    );
    assert_eq!(
        DurableMatrixEndpoint::open(MemoryStore::new(), &key()).err(),
        Some(StoreError::Empty)
    );
}

#[test]
fn a_corrupt_record_is_a_typed_error() {
    let (_, (_, alice_store), _) = conversation();
    let mut loaded = alice_store.snapshot();
    let mut store = MemoryStore::new();
    for (slot, value) in &mut loaded.records {
        if let Some(byte) = value.last_mut() {
            *byte ^= 1;
        }
        store
            .commit(
                store.clone().load().unwrap().generation,
                &[crate::store::Change {
                    key: *slot,
                    value: Some(value.clone()),
                }],
            )
            .unwrap();
    }
    assert!(matches!(
        DurableMatrixEndpoint::open(store, &key()),
        Err(StoreError::Corrupt(_))
    ));
}

/// Alice holding Olm sessions with `peers` devices and `peers` Megolm keys
/// from them, and a room key shared with Bob; returns her durable endpoint
/// and store, and an event of Bob's to decrypt.
fn crowded(peers: usize) -> (DurableMatrixEndpoint, FaultyStore, Value) {
    let (server, (alice, alice_store), (mut bob, _)) = conversation();
    let mut alice = alice.ep;
    // Peers' sessions and keys: fake devices that each share a key.
    let mut server = server;
    for p in 0..peers {
        let user = format!("@p{p}:example.org");
        let mut peer = Client::new(&user, "P");
        let room = format!("!p{p}:example.org");
        server.join(&room, &user);
        server.join(&room, ALICE);
        peer.pump(&mut server);
        peer.ep.update_tracked_users(&server.member_ids(&room));
        peer.pump(&mut server);
        peer.share(&mut server, &room);
    }
    let sync = server.sync(ALICE, "ALICE");
    store_error(alice.receive_sync_changes(&sync)).unwrap();
    let content = serde_json::value::to_raw_value(&serde_json::json!({"body": "new"})).unwrap();
    let encrypted = bob
        .ep
        .encrypt_room_event(&room(), "m.room.message", &content)
        .unwrap();
    let event = server.send_event(ROOM, BOB, encrypted.to_json_value());
    (alice, alice_store, event)
}

#[test]
fn an_operation_writes_the_same_few_records_however_much_is_held() {
    let mut counts = Vec::new();
    for peers in [1, 12] {
        let (mut alice, store, event) = crowded(peers);
        assert!(alice.olm_peer_count() > peers);
        assert!(alice.room_keys().len() > peers);
        store.faults().commits.clear();
        let content = serde_json::value::to_raw_value(&serde_json::json!({"body": "x"})).unwrap();
        alice
            .encrypt_room_event(&room(), "m.room.message", &content)
            .unwrap();
        alice
            .decrypt_room_event_json(&room(), &event.to_string())
            .unwrap();
        counts.push(store.faults().commits.clone());
    }
    // Encrypt: the outbound session. Decrypt: one replay chunk.
    assert_eq!(counts[0], counts[1]);
    assert_eq!(counts[0], vec![1, 1]);
}

#[test]
fn a_user_id_is_kept_per_record_in_the_store() {
    // Tracking one more user writes one user record, not the tracker.
    let (_, (mut alice, alice_store), _) = conversation();
    alice_store.faults().commits.clear();
    let carol = UserId::parse("@carol:example.org").unwrap();
    alice.ep.update_tracked_users([&carol]).unwrap();
    assert_eq!(alice_store.faults().commits, vec![2]);
}

//! The durable endpoint against stores that fail: after every operation of
//! a two-device conversation, a failed commit (I/O error, full disk) leaves
//! both the endpoint and the store exactly as they were and the retried
//! operation works; a failure to read back poisons the endpoint until it
//! reloads; the store always reopens to the live state; a stale writer
//! never overwrites; a pickle migrates; and an operation writes a number of
//! records that does not grow with what the endpoint holds.

use serde_json::json;

use super::*;
use crate::codec::Writer;
use crate::store::faulty::FaultyStore;
use crate::store::{MemoryStore, StoreError};
use crate::{ExportedSessionKey, IdentityKeys, PickleKey, SelfSignedDevice};

const ROOM: &str = "!room:example.org";
const ROOM2: &str = "!other:example.org";

fn key() -> PickleKey {
    PickleKey::from_bytes(&mut [7; 32])
}

/// The endpoint's whole state, as its pickle contents.
fn contents(endpoint: &Endpoint) -> Vec<u8> {
    let mut w = Writer::default();
    endpoint.write_contents(&mut w);
    w.into_vec()
}

/// Two devices on faulty stores, and what they have exchanged so far.
struct World {
    alice: DurableEndpoint,
    bob: DurableEndpoint,
    alice_store: FaultyStore,
    bob_store: FaultyStore,
    alice_keys: Option<KeysToPublish>,
    bob_keys: Option<KeysToPublish>,
    shares: Vec<RoomKeyShareOutcome>,
    events: Vec<EncryptedEvent>,
    export: Option<(IdentityKeys, ExportedSessionKey)>,
}

impl World {
    fn new() -> Self {
        let alice_store = FaultyStore::new();
        let bob_store = FaultyStore::new();
        Self {
            alice: DurableEndpoint::create(alice_store.clone(), &key(), "@alice:x", "A").unwrap(),
            bob: DurableEndpoint::create(bob_store.clone(), &key(), "@bob:x", "B").unwrap(),
            alice_store,
            bob_store,
            alice_keys: None,
            bob_keys: None,
            shares: Vec::new(),
            events: Vec::new(),
            export: None,
        }
    }

    fn device(keys: &Option<KeysToPublish>) -> SelfSignedDevice {
        keys.as_ref()
            .unwrap()
            .device_keys
            .check_self_signature()
            .unwrap()
    }

    /// Delivers the newest share's message to `to`.
    fn deliver(
        to: &mut DurableEndpoint,
        share: &RoomKeyShareOutcome,
        from: &str,
    ) -> Result<(), RoomError> {
        let m = &share.messages[0];
        to.receive_device_message(from, &m.sender_key, &m.message)
            .map(|_| ())
    }
}

type Step = (&'static str, bool, fn(&mut World) -> Result<(), RoomError>);

/// A conversation touching every kind of record; each step is one
/// operation, on Alice (`true`) or Bob, that changes nothing if it fails.
fn steps() -> Vec<Step> {
    vec![
        ("alice keys", true, |w| {
            w.alice_keys = Some(w.alice.keys_to_publish(5)?);
            Ok(())
        }),
        ("alice published", true, |w| {
            w.alice
                .mark_keys_as_published(w.alice_keys.as_ref().unwrap())
        }),
        ("bob keys", false, |w| {
            w.bob_keys = Some(w.bob.keys_to_publish(5)?);
            Ok(())
        }),
        ("bob published", false, |w| {
            w.bob.mark_keys_as_published(w.bob_keys.as_ref().unwrap())
        }),
        ("alice starts a session", true, |w| {
            let keys = w.bob_keys.as_ref().unwrap();
            let otk = keys.one_time_keys.last().unwrap();
            w.alice
                .establish_session(&keys.device_keys, otk)
                .map(|_| ())
        }),
        ("alice shares", true, |w| {
            let bob = World::device(&w.bob_keys);
            w.shares.push(w.alice.share_room_key(ROOM, &[bob])?);
            Ok(())
        }),
        ("alice confirms", true, |w| {
            w.alice
                .mark_room_key_sent(w.shares.last().unwrap())
                .map(|_| ())
        }),
        ("bob receives a pre-key share", false, |w| {
            World::deliver(&mut w.bob, w.shares.last().unwrap(), "@alice:x")
        }),
        ("alice encrypts", true, |w| {
            w.events
                .push(w.alice.encrypt_event(ROOM, "m.text", &json!({"n": 1}))?);
            Ok(())
        }),
        ("bob decrypts", false, |w| {
            w.bob
                .decrypt_event(ROOM, "$1", w.events.last().unwrap())
                .map(|_| ())
        }),
        ("bob shares back", false, |w| {
            let alice = World::device(&w.alice_keys);
            w.shares.push(w.bob.share_room_key(ROOM2, &[alice])?);
            Ok(())
        }),
        ("alice receives a normal share", true, |w| {
            World::deliver(&mut w.alice, w.shares.last().unwrap(), "@bob:x")
        }),
        ("bob encrypts", false, |w| {
            w.events
                .push(w.bob.encrypt_event(ROOM2, "m.text", &json!({"n": 2}))?);
            Ok(())
        }),
        ("alice decrypts", true, |w| {
            w.alice
                .decrypt_event(ROOM2, "$2", w.events.last().unwrap())
                .map(|_| ())
        }),
        ("alice sets a policy", true, |w| {
            w.alice.set_rotation_policy(RotationPolicy {
                max_messages: 3,
                ..RotationPolicy::default()
            })
        }),
        ("alice rotates", true, |w| {
            w.alice.rotate_room_key(ROOM).map(|_| ())
        }),
        ("alice shares again", true, |w| {
            let bob = World::device(&w.bob_keys);
            w.shares.push(w.alice.share_room_key(ROOM, &[bob])?);
            Ok(())
        }),
        ("bob exports", false, |w| {
            let id = w.shares[1].session_id;
            w.export = w.bob.export_room_key(ROOM2, &id, 0);
            w.bob.forget_room_keys(ROOM).map(|_| ())
        }),
        ("alice forgets a key", true, |w| {
            let id = w.shares[1].session_id;
            w.alice.forget_room_key(ROOM2, &id).map(|_| ())
        }),
        ("alice imports it", true, |w| {
            let (sender, export) = w.export.clone().unwrap();
            w.alice.import_room_key(ROOM2, sender, &export).map(|_| ())
        }),
        ("alice decrypts the imported key", true, |w| {
            w.alice
                .decrypt_event(ROOM2, "$2", w.events.last().unwrap())
                .map(|_| ())
        }),
        ("bob rotates the fallback key", false, |w| {
            w.bob.rotate_fallback_key()
        }),
        ("alice forgets bob", true, |w| {
            let bob = World::device(&w.bob_keys).identity_keys().curve25519;
            w.alice.forget_peer(&bob).map(|_| ())
        }),
        ("bob recovers from a rollback", false, |w| {
            w.bob.recover_from_rollback()
        }),
    ]
}

fn side(w: &mut World, alice: bool) -> (&mut DurableEndpoint, &FaultyStore) {
    if alice {
        (&mut w.alice, &w.alice_store)
    } else {
        (&mut w.bob, &w.bob_store)
    }
}

/// The store reopens to exactly the live state.
fn assert_reopens(endpoint: &DurableEndpoint, store: &FaultyStore) {
    let reopened = DurableEndpoint::open(store.clone(), &key()).unwrap();
    assert_eq!(contents(&reopened), contents(endpoint));
    let counts = |e: &Endpoint| (e.peer_count(), e.inbound.len(), e.inbound.replay_records());
    assert_eq!(counts(&reopened), counts(endpoint));
}

#[test]
fn a_failed_commit_changes_nothing_and_the_next_operation_works() {
    let mut w = World::new();
    let faults = [StoreError::Io(10), StoreError::Full, StoreError::Busy];
    for (i, (name, alice, step)) in steps().into_iter().enumerate() {
        let (endpoint, store) = side(&mut w, alice);
        let before = contents(endpoint);
        let stored = store.snapshot();
        let fault = faults[i % faults.len()];
        store.faults().commit = Some(fault);
        let failed = step(&mut w);
        assert_eq!(failed, Err(RoomError::Store(fault)), "{name}");
        let (endpoint, store) = side(&mut w, alice);
        assert_eq!(contents(endpoint), before, "{name}: memory unchanged");
        assert_reopens(endpoint, store);
        assert_eq!(store.snapshot(), stored, "{name}: store unchanged");
        store.faults().commit = None;
        step(&mut w).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (endpoint, store) = side(&mut w, alice);
        assert_ne!(
            contents(endpoint),
            before,
            "{name}: the retry changed the state"
        );
        assert_reopens(endpoint, store);
    }
}

#[test]
fn the_store_shows_no_room_id_or_peer_key() {
    let mut w = World::new();
    for (_, _, step) in steps().into_iter().take(14) {
        step(&mut w).unwrap();
    }
    let bob = w.bob.identity_keys();
    let secrets: [&[u8]; 4] = [
        ROOM.as_bytes(),
        ROOM2.as_bytes(),
        bob.curve25519.as_bytes(),
        &bob.ed25519.to_bytes(),
    ];
    for (key, value) in w.alice_store.snapshot().records {
        for secret in secrets {
            let found = |hay: &[u8]| hay.windows(secret.len()).any(|win| win == secret);
            assert!(!found(&key.id) && !found(&value));
        }
    }
}

#[test]
fn a_failure_to_read_back_poisons_until_reloaded() {
    let mut w = World::new();
    for (name, alice, step) in steps().into_iter().take(10) {
        let (endpoint, store) = side(&mut w, alice);
        let before = contents(endpoint);
        {
            let mut faults = store.faults();
            faults.commit = Some(StoreError::Io(5));
            faults.reads = true;
        }
        assert!(step(&mut w).is_err(), "{name}");
        let (endpoint, store) = side(&mut w, alice);
        assert_eq!(
            endpoint.rotate_room_key("!any:x"),
            Err(RoomError::Store(StoreError::Poisoned))
        );
        assert!(endpoint.reload().is_err());
        store.faults().reads = false;
        endpoint.reload().unwrap();
        assert_eq!(contents(endpoint), before, "{name}");
        step(&mut w).unwrap();
    }
}

#[test]
fn a_stale_writer_reloads_instead_of_overwriting() {
    let store = MemoryStore::new();
    let mut first = DurableEndpoint::create(store.clone(), &key(), "@a:x", "A").unwrap();
    let mut second = DurableEndpoint::open(store.clone(), &key()).unwrap();
    let published = first.keys_to_publish(3).unwrap();
    let newest = contents(&first);
    // The second handle still holds the state before: its write is refused,
    // and it reloads the newest state instead.
    let generation = second.store_generation();
    assert_eq!(
        second.keys_to_publish(5),
        Err(RoomError::Store(StoreError::Stale {
            expected: generation,
            found: generation + 1
        }))
    );
    assert_eq!(contents(&second), newest);
    // Retried, it works on the newest state (the same three keys, and two
    // more), and now the first handle is the stale one.
    let again = second.keys_to_publish(5).unwrap();
    assert_eq!(again.one_time_keys[..3], published.one_time_keys[..]);
    assert!(matches!(
        first.mark_keys_as_published(&published),
        Err(RoomError::Store(StoreError::Stale { .. }))
    ));
    assert_eq!(contents(&first), contents(&second));
}

#[test]
fn a_pickle_migrates_into_an_empty_store_only() {
    let mut w = World::new();
    for (name, alice, step) in steps().into_iter().take(16) {
        let _ = (name, alice);
        step(&mut w).unwrap();
    }
    let pickle = w.alice.pickle(&key());
    let store = MemoryStore::new();
    let migrated = DurableEndpoint::migrate_pickle(&pickle, &key(), store.clone()).unwrap();
    assert_eq!(contents(&migrated), contents(&w.alice));
    let reopened = DurableEndpoint::open(store.clone(), &key()).unwrap();
    assert_eq!(contents(&reopened), contents(&w.alice));
    assert_eq!(
        DurableEndpoint::migrate_pickle(&pickle, &key(), store.clone()).err(),
        Some(RoomError::Store(StoreError::NotEmpty))
    );
    assert_eq!(
        DurableEndpoint::open(store, &PickleKey::from_bytes(&mut [8; 32])).err(),
        Some(RoomError::Store(StoreError::Corrupt(
            "record does not open"
        )))
    );
    assert_eq!(
        DurableEndpoint::open(MemoryStore::new(), &key()).err(),
        Some(RoomError::Store(StoreError::Empty))
    );
}

/// Alice holding `peers` peers and as many room keys from them; returns
/// her, one peer, the peer's share and an event of the peer's room.
fn crowded(peers: usize) -> (DurableEndpoint, FaultyStore, Endpoint, EncryptedEvent) {
    let mut alice = Endpoint::new("@alice:x", "A").unwrap();
    let alice_keys = alice.keys_to_publish(1);
    alice.mark_keys_as_published(&alice_keys);
    let alice_device = alice_keys.device_keys.check_self_signature().unwrap();
    let mut last = None;
    for i in 0..peers {
        let mut peer = Endpoint::new(&format!("@p{i}:x"), "P").unwrap();
        let otk = alice.keys_to_publish(1);
        alice.mark_keys_as_published(&otk);
        peer.establish_session(&alice_keys.device_keys, &otk.one_time_keys[0])
            .unwrap();
        let share = peer
            .share_room_key(&format!("!r{i}:x"), std::slice::from_ref(&alice_device))
            .unwrap();
        let m = &share.messages[0];
        alice
            .receive_device_message(&format!("@p{i}:x"), &m.sender_key, &m.message)
            .unwrap();
        last = Some(peer);
    }
    let mut peer = last.unwrap();
    let event = peer
        .encrypt_event(&format!("!r{}:x", peers - 1), "m.text", &json!({}))
        .unwrap();
    let store = FaultyStore::new();
    let durable = DurableEndpoint::from_endpoint(alice, store.clone(), &key()).unwrap();
    (durable, store, peer, event)
}

#[test]
fn an_operation_writes_the_same_few_records_however_much_is_held() {
    let mut per_size = Vec::new();
    for peers in [2, 40] {
        let (mut alice, store, _peer, event) = crowded(peers);
        store.faults().commits.clear();
        let room = format!("!r{}:x", peers - 1);
        alice.decrypt_event(&room, "$e", &event).unwrap();
        alice.rotate_room_key("!mine:x").unwrap();
        alice.share_room_key("!mine:x", &[]).unwrap();
        alice
            .encrypt_event("!mine:x", "m.text", &json!({}))
            .unwrap();
        per_size.push(store.faults().commits.clone());
        assert!(store.inner.len() >= 2 * peers);
    }
    // Decrypt: one replay record. Share to nobody: a new outbound session,
    // its recipients and our own inbound copy. Encrypt: the outbound
    // session.
    assert_eq!(per_size[0], vec![1, 3, 1]);
    assert_eq!(per_size[0], per_size[1]);
}

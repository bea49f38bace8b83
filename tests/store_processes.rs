//! Two processes on one SQLite store: this test binary runs itself again
//! as a second process (`second_process`) that opens the same file and
//! commits. The first process, still holding the state from before, gets
//! `StoreError::Stale` instead of overwriting the newer state, reloads it,
//! and then works; and the other way round. Also: the file shows no room id
//! or peer key, and two connections in one process behave the same.

#![cfg(feature = "sqlite")]

#[path = "support/child.rs"]
mod child;

use std::path::Path;
use std::process::Command;

use child::fresh_dir;

use roomseal::{DurableEndpoint, PickleKey, RoomError, SqliteStore, StoreError};

const CHILD: &str = "ROOMSEAL_SECOND_PROCESS";

fn key() -> PickleKey {
    PickleKey::from_bytes(&mut [0x33; 32])
}

fn open(path: &Path) -> DurableEndpoint {
    DurableEndpoint::open(SqliteStore::open(path).unwrap(), &key()).unwrap()
}

/// The second process: publishes keys (a commit) and exits.
#[test]
fn second_process() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let mut device = open(Path::new(&path));
    let keys = device.keys_to_publish(7).unwrap();
    device.mark_keys_as_published(&keys).unwrap();
}

fn run_second_process(path: &Path) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "second_process", "--test-threads=1"])
        .env(CHILD, path)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_stale_process_never_overwrites_the_newer_state() {
    let dir = fresh_dir("two-processes");
    let path = dir.join("device.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut first = DurableEndpoint::create(store, &key(), "@alice:x", "PHONE").unwrap();
    first.keys_to_publish(2).unwrap();
    let before = first.store_generation();

    run_second_process(&path);

    // The first process still holds the old state: its write is refused.
    let refused = first.rotate_fallback_key();
    assert!(
        matches!(refused, Err(RoomError::Store(StoreError::Stale { expected, found }))
            if expected == before && found == before + 2),
        "{refused:?}"
    );
    // It reloaded the second process's state: 7 keys, all published.
    assert!(first.keys_to_publish(0).unwrap().one_time_keys.is_empty());
    first.rotate_fallback_key().unwrap();
    // The store holds what both wrote, in order.
    let reopened = open(&path);
    assert_eq!(reopened.store_generation(), first.store_generation());
    assert_eq!(
        reopened.pickle_generation(),
        0,
        "a reopened endpoint starts a new pickle history"
    );

    // And the other way round, with two connections in this process.
    let mut second = open(&path);
    first.rotate_room_key("!nothing:x").unwrap();
    second.keys_to_publish(1).unwrap();
    assert!(matches!(
        first.rotate_fallback_key(),
        Err(RoomError::Store(StoreError::Stale { .. }))
    ));
    first.rotate_fallback_key().unwrap();
    assert!(matches!(
        second.keys_to_publish(1),
        Err(RoomError::Store(StoreError::Stale { .. }))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_database_file_shows_no_room_id_or_peer_key() {
    let dir = fresh_dir("file-contents");
    let alice_path = dir.join("alice.db");
    let mut alice = DurableEndpoint::create(
        SqliteStore::open(&alice_path).unwrap(),
        &key(),
        "@alice:x",
        "A",
    )
    .unwrap();
    let mut bob = DurableEndpoint::create(
        SqliteStore::open(dir.join("bob.db")).unwrap(),
        &key(),
        "@bob:x",
        "B",
    )
    .unwrap();
    let bob_keys = bob.keys_to_publish(1).unwrap();
    bob.mark_keys_as_published(&bob_keys).unwrap();
    let device = alice
        .establish_session(&bob_keys.device_keys, &bob_keys.one_time_keys[0])
        .unwrap();
    let room = "!secret-room-name:example.org";
    alice.share_room_key(room, &[device]).unwrap();
    alice
        .encrypt_event(room, "m.text", &serde_json::json!({"body": "hello"}))
        .unwrap();
    drop(alice);
    let mut bytes = std::fs::read(&alice_path).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("alice.db-wal")) {
        bytes.extend(wal);
    }
    let peer = bob.identity_keys();
    let found = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!found(room.as_bytes()));
    assert!(!found(b"secret-room-name"));
    assert!(!found(b"@bob:x"));
    assert!(!found(peer.curve25519.as_bytes()));
    assert!(!found(&peer.ed25519.to_bytes()));
    let _ = std::fs::remove_dir_all(&dir);
}

//! Two processes on one SQLite store holding a `DurableMatrixEndpoint`:
//! this test binary runs itself again as a second process
//! (`second_process`) that opens the same file and commits. The first
//! process, still holding the state from before, gets `StoreError::Stale`
//! instead of overwriting the newer state, reloads it, and then works; and
//! the other way round, with two connections in one process. The file shows
//! no user id, device id or room id.

#![cfg(feature = "sqlite")]

#[path = "support/child.rs"]
mod child;

use std::path::Path;
use std::process::Command;

use child::fresh_dir;

use roomseal::matrix::{
    DeviceId, DurableMatrixEndpoint, MEGOLM_V1, MatrixEndpoint, RoomEncryptionContent, RoomId,
    SharePolicy, UserId,
};
use roomseal::{Account, PickleKey, SqliteStore, StoreError};

const CHILD: &str = "ROOMSEAL_MATRIX_SECOND_PROCESS";
const ROOM: &str = "!a-secret-room:example.org";

fn key() -> PickleKey {
    PickleKey::from_bytes(&mut [0x44; 32])
}

fn open(path: &Path) -> DurableMatrixEndpoint {
    DurableMatrixEndpoint::open(SqliteStore::open(path).unwrap(), &key()).unwrap()
}

fn settings(messages: u64) -> RoomEncryptionContent {
    RoomEncryptionContent {
        algorithm: MEGOLM_V1.to_owned(),
        rotation_period_ms: None,
        rotation_period_msgs: Some(messages),
    }
}

/// The second process: sets the room's settings (a commit) and exits.
#[test]
fn second_process() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let mut device = open(Path::new(&path));
    device
        .set_room_encryption(&RoomId::parse(ROOM).unwrap(), settings(42))
        .unwrap();
}

#[test]
fn a_stale_matrix_process_never_overwrites_the_newer_state() {
    let dir = fresh_dir("matrix-two-processes");
    let path = dir.join("device.db");
    let endpoint = MatrixEndpoint::new(
        Account::new(),
        UserId::parse("@alice:example.org").unwrap(),
        DeviceId::parse("PHONE").unwrap(),
    );
    let mut first =
        DurableMatrixEndpoint::from_endpoint(endpoint, SqliteStore::open(&path).unwrap(), &key())
            .unwrap();
    let requests = first.outgoing_requests().unwrap();
    assert!(!requests.is_empty());
    let before = first.store_generation();
    let room = RoomId::parse(ROOM).unwrap();

    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "second_process", "--test-threads=1"])
        .env(CHILD, &path)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    // The first process still holds the old state: its write is refused.
    let refused = first.set_share_policy(SharePolicy {
        only_verified: true,
    });
    assert!(
        matches!(refused, Err(StoreError::Stale { expected, found })
            if expected == before && found == before + 1),
        "{refused:?}"
    );
    // It reloaded the second process's state, and its policy was not set.
    assert_eq!(first.room_encryption(&room), settings(42));
    assert!(!first.share_policy().only_verified);
    // The upload it handed out before can still be answered.
    let answer = r#"{"one_time_key_counts": {"signed_curve25519": 50}}"#;
    first.mark_request_as_sent(requests[0].id, answer).unwrap();
    first
        .set_share_policy(SharePolicy {
            only_verified: true,
        })
        .unwrap();
    let reopened = open(&path);
    assert_eq!(reopened.store_generation(), first.store_generation());
    assert!(reopened.share_policy().only_verified);

    // The other way round, with two connections in this process.
    let mut second = open(&path);
    first.set_room_encryption(&room, settings(5)).unwrap();
    assert!(matches!(
        second.set_room_encryption(&room, settings(6)),
        Err(StoreError::Stale { .. })
    ));
    assert_eq!(second.room_encryption(&room), settings(5));
    second.set_room_encryption(&room, settings(6)).unwrap();
    assert!(matches!(
        first.set_share_policy(SharePolicy::default()),
        Err(StoreError::Stale { .. })
    ));
    assert_eq!(first.room_encryption(&room), settings(6));

    // The file shows no user id, device id or room id.
    drop((first, second, reopened));
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("device.db-wal")) {
        bytes.extend(wal);
    }
    let found = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!found(ROOM.as_bytes()));
    assert!(!found(b"a-secret-room"));
    assert!(!found(b"@alice:example.org"));
    assert!(!found(b"PHONE"));
    let _ = std::fs::remove_dir_all(&dir);
}

//! Crash test of the durable store: a child process (this test binary run
//! again, as `crash_child`) plays a seeded random schedule of operations
//! between two devices, each on its own SQLite store, and the parent kills
//! it with SIGKILL at random points, many times, restarting it on the same
//! stores.
//!
//! The child writes everything it *releases* (keys to the server,
//! to-device messages, encrypted events) to a journal, fsynced before the
//! release, and what the receiving side *accepted*. On every start it
//! checks, against the journal, that:
//! - both stores open (the state is consistent);
//! - no to-device message accepted before is accepted again (a consumed
//!   one-time key never comes back, a pairwise ratchet never steps back);
//! - no (ratchet key, counter) nor (group session, index) was released
//!   twice with different plaintexts;
//! - every event the receiver decrypted before still decrypts, to the same
//!   plaintext, and every event whose key it holds decrypts.
//!
//! `ROOMSEAL_CRASH_KILLS` (default 60) and `ROOMSEAL_CRASH_SECS` (default
//! 90) bound the run; the figures are printed.

#![cfg(feature = "sqlite")]

#[path = "support/child.rs"]
mod child;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;

use child::{Journal, crash_child_args, crash_parent};
use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use roomseal::{
    DurableEndpoint, EncryptedEvent, KeysToPublish, PickleKey, RoomError, SqliteStore,
    ToDeviceMessage,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

const NAMES: [&str; 2] = ["alice", "bob"];

/// One journal line.
#[derive(Serialize, Deserialize, Debug, Clone)]
enum Entry {
    /// Keys a device uploaded to the server.
    Keys { owner: usize, keys: KeysToPublish },
    /// A one-time key of `owner` claimed (each is handed out once).
    Claimed {
        owner: usize,
        key_index: usize,
        line: usize,
    },
    /// A to-device message released by `from`, sharing `session`.
    ToDevice {
        from: usize,
        message: ToDeviceMessage,
        session: String,
    },
    /// The receiver of the to-device message at `line` accepted it.
    Accepted { line: usize },
    /// The receiver refused it (it is not tried again).
    Refused { line: usize },
    /// An event released by `from`, with its plaintext content.
    Event {
        from: usize,
        room: String,
        event: EncryptedEvent,
        content: serde_json::Value,
    },
    /// The receiver decrypted the event at `line`.
    Decrypted { line: usize },
}

fn key() -> PickleKey {
    PickleKey::from_bytes(&mut [0x5a; 32])
}

fn open(dir: &Path, who: usize, fresh: bool) -> DurableEndpoint {
    let store = SqliteStore::open(dir.join(format!("{}.db", NAMES[who]))).unwrap();
    if fresh {
        DurableEndpoint::create(store, &key(), &format!("@{}:x", NAMES[who]), "D").unwrap()
    } else {
        DurableEndpoint::open(store, &key()).unwrap()
    }
}

fn room(who: usize) -> String {
    format!("!{}:x", NAMES[who])
}

/// The checks run at every start, against the journal.
fn verify(parties: &mut [DurableEndpoint; 2], journal: &Journal<Entry>) {
    let mut accepted = BTreeSet::new();
    let mut decrypted = BTreeSet::new();
    for entry in &journal.entries {
        match entry {
            Entry::Accepted { line } => assert!(accepted.insert(*line), "accepted twice: {line}"),
            Entry::Decrypted { line } => {
                decrypted.insert(*line);
            }
            _ => {}
        }
    }
    let mut chain_uses: BTreeMap<(String, u32), String> = BTreeMap::new();
    let mut group_uses: BTreeMap<(String, u32), String> = BTreeMap::new();
    for (line, entry) in journal.entries.iter().enumerate() {
        match entry {
            Entry::ToDevice {
                from,
                message,
                session,
            } => {
                let header = message.message.normal();
                let used = (header.ratchet_key().to_base64(), header.counter());
                let previous = chain_uses.insert(used.clone(), session.clone());
                assert!(
                    previous.is_none_or(|p| p == *session),
                    "pairwise message key {used:?} used for two plaintexts"
                );
                if accepted.contains(&line) {
                    let to = &mut parties[1 - from];
                    let again = to.receive_device_message(
                        &format!("@{}:x", NAMES[*from]),
                        &message.sender_key,
                        &message.message,
                    );
                    assert!(again.is_err(), "to-device message {line} accepted twice");
                }
            }
            Entry::Event {
                from,
                room,
                event,
                content,
            } => {
                let used = (
                    event.session_id.to_base64(),
                    event.ciphertext.message_index(),
                );
                let text = content.to_string();
                let previous = group_uses.insert(used.clone(), text.clone());
                assert!(
                    previous.is_none_or(|p| p == text),
                    "group message key {used:?} used for two plaintexts"
                );
                let to = &mut parties[1 - from];
                let held = to
                    .inbound_keys()
                    .first_known_index(room, &event.session_id)
                    .is_some_and(|first| first <= event.ciphertext.message_index());
                assert!(
                    held || !decrypted.contains(&line),
                    "event {line} was decrypted but its key is gone"
                );
                if held {
                    let shown = to
                        .decrypt_event(room, &format!("${line}"), event)
                        .unwrap_or_else(|e| panic!("event {line} no longer decrypts: {e}"));
                    assert_eq!(&shown.content, content);
                }
            }
            _ => {}
        }
    }
}

/// Runs the schedule from where the journal stops, until killed (or for a
/// bounded number of operations).
fn child(dir: &Path, seed: u64) {
    let mut journal: Journal<Entry> = Journal::open(&dir.join("journal"));
    let fresh = !dir.join("created").exists();
    if fresh {
        // A kill while creating the two stores: start over.
        for name in NAMES {
            for suffix in ["db", "db-wal", "db-shm"] {
                let _ = std::fs::remove_file(dir.join(format!("{name}.{suffix}")));
            }
        }
    }
    let mut parties = [open(dir, 0, fresh), open(dir, 1, fresh)];
    if fresh {
        File::create(dir.join("created"))
            .unwrap()
            .sync_all()
            .unwrap();
    }
    verify(&mut parties, &journal);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for op in 0..400 {
        let who = rng.random_range(0..2usize);
        let other = 1 - who;
        match rng.random_range(0..10u8) {
            0 => {
                let keys = parties[who].keys_to_publish(3).unwrap();
                journal.push(Entry::Keys {
                    owner: who,
                    keys: keys.clone(),
                });
                parties[who].mark_keys_as_published(&keys).unwrap();
            }
            1 if !parties[who].has_session(&parties[other].identity_keys().curve25519)
                || rng.random_range(0..8u8) == 0 =>
            {
                claim_and_connect(&mut parties, &mut journal, who);
            }
            2 | 3 => share(&mut parties, &mut journal, who),
            4 | 5 => deliver_to_device(&mut parties, &mut journal, other),
            6 | 7 => {
                let content = json!({ "seed": seed, "op": op });
                match parties[who].encrypt_event(&room(who), "m.text", &content) {
                    Ok(event) => {
                        journal.push(Entry::Event {
                            from: who,
                            room: room(who),
                            event,
                            content,
                        });
                    }
                    Err(RoomError::ShareRequired(_)) => share(&mut parties, &mut journal, who),
                    Err(e) => panic!("encrypt: {e}"),
                }
            }
            8 => deliver_events(&mut parties, &mut journal, other),
            _ => {
                if rng.random_range(0..4u8) == 0 {
                    parties[who].rotate_room_key(&room(who)).unwrap();
                }
            }
        }
    }
}

/// `who` claims an unclaimed one-time key of the other device and starts a
/// session with it.
fn claim_and_connect(parties: &mut [DurableEndpoint; 2], journal: &mut Journal<Entry>, who: usize) {
    let other = 1 - who;
    let claimed: BTreeSet<(usize, usize)> = journal
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Claimed {
                owner,
                key_index,
                line,
            } if *owner == other => Some((*line, *key_index)),
            _ => None,
        })
        .collect();
    let offer = journal
        .entries
        .iter()
        .enumerate()
        .find_map(|(line, e)| match e {
            Entry::Keys { owner, keys } if *owner == other => keys
                .one_time_keys
                .iter()
                .enumerate()
                .find(|(i, _)| !claimed.contains(&(line, *i)))
                .map(|(i, otk)| (line, i, keys.device_keys.clone(), otk.clone())),
            _ => None,
        });
    let Some((line, key_index, device, otk)) = offer else {
        return;
    };
    journal.push(Entry::Claimed {
        owner: other,
        key_index,
        line,
    });
    // The key may be one the owner dropped since: then no session.
    let _ = parties[who].establish_session(&device, &otk);
}

fn share(parties: &mut [DurableEndpoint; 2], journal: &mut Journal<Entry>, who: usize) {
    let other = 1 - who;
    let device = journal.entries.iter().find_map(|e| match e {
        Entry::Keys { owner, keys } if *owner == other => {
            Some(keys.device_keys.check_self_signature().unwrap())
        }
        _ => None,
    });
    let Some(device) = device else { return };
    let outcome = parties[who].share_room_key(&room(who), &[device]).unwrap();
    let session = outcome.session_id.to_base64();
    for message in &outcome.messages {
        journal.push(Entry::ToDevice {
            from: who,
            message: message.clone(),
            session: session.clone(),
        });
    }
    parties[who].mark_room_key_sent(&outcome).unwrap();
}

/// Delivers, in order, the to-device messages for `to` not yet accepted.
fn deliver_to_device(parties: &mut [DurableEndpoint; 2], journal: &mut Journal<Entry>, to: usize) {
    let accepted: BTreeSet<usize> = journal
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Accepted { line } | Entry::Refused { line } => Some(*line),
            _ => None,
        })
        .collect();
    let pending: Vec<(usize, usize, ToDeviceMessage)> = journal
        .entries
        .iter()
        .enumerate()
        .filter_map(|(line, e)| match e {
            Entry::ToDevice { from, message, .. } if *from != to && !accepted.contains(&line) => {
                Some((line, *from, message.clone()))
            }
            _ => None,
        })
        .collect();
    for (line, from, message) in pending {
        let result = parties[to].receive_device_message(
            &format!("@{}:x", NAMES[from]),
            &message.sender_key,
            &message.message,
        );
        // A message the receiver took just before a kill (its journal line
        // lost) is refused now; refusals change nothing.
        journal.push(match result {
            Ok(_) => Entry::Accepted { line },
            Err(_) => Entry::Refused { line },
        });
    }
}

/// Decrypts the events for `to` not yet decrypted whose key it holds.
fn deliver_events(parties: &mut [DurableEndpoint; 2], journal: &mut Journal<Entry>, to: usize) {
    let done: BTreeSet<usize> = journal
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Decrypted { line } => Some(*line),
            _ => None,
        })
        .collect();
    let pending: Vec<(usize, String, EncryptedEvent, serde_json::Value)> = journal
        .entries
        .iter()
        .enumerate()
        .filter_map(|(line, e)| match e {
            Entry::Event {
                from,
                room,
                event,
                content,
            } if *from != to && !done.contains(&line) => {
                Some((line, room.clone(), event.clone(), content.clone()))
            }
            _ => None,
        })
        .collect();
    for (line, room, event, content) in pending {
        if let Ok(shown) = parties[to].decrypt_event(&room, &format!("${line}"), &event) {
            assert_eq!(shown.content, content);
            journal.push(Entry::Decrypted { line });
        }
    }
}

#[test]
fn crash_child() {
    // Only a child run does anything.
    if let Some((dir, seed)) = crash_child_args() {
        child(&dir, seed);
    }
}

#[test]
fn sigkill_at_random_points_loses_nothing_released() {
    let (dir, done) = crash_parent("crash", (60, 90, 20), 20..400, 13);
    let (kills, runs, finished, seconds) = (done.kills, done.runs, done.finished, done.seconds);
    let journal: Journal<Entry> = Journal::open(&dir.join("journal"));
    let count = |pred: fn(&Entry) -> bool| journal.entries.iter().filter(|e| pred(e)).count();
    println!(
        "crash test: {kills} kills, {runs} runs ({finished} finished on their own), \
         {} journal entries: {} events released, {} decrypted, {} to-device released, \
         {} accepted; {:.1} s",
        journal.entries.len(),
        count(|e| matches!(e, Entry::Event { .. })),
        count(|e| matches!(e, Entry::Decrypted { .. })),
        count(|e| matches!(e, Entry::ToDevice { .. })),
        count(|e| matches!(e, Entry::Accepted { .. })),
        seconds
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! Crash test of the durable Matrix endpoint: a child process (this test
//! binary run again, as `crash_child`) plays a seeded random Matrix
//! schedule between two devices, each a `DurableMatrixEndpoint` on its own
//! SQLite store, through the in-memory server of
//! `tests/support/matrix_server.rs` (kept in a file, written after every
//! change), and the parent kills it with SIGKILL at random points, then
//! restarts it on the same files.
//!
//! Room events travel through a journal, fsynced before each release;
//! every sync a device took is journaled once taken. On every start the
//! child checks, against the journal, that:
//! - both stores open (the state is consistent);
//! - no to-device event taken before is taken again (a consumed one-time
//!   key never comes back, an Olm ratchet never steps back);
//! - no Megolm (session, index) was released twice with different
//!   plaintexts;
//! - every event the receiver decrypted before still decrypts to the same
//!   plaintext, and every released event whose key the receiver holds
//!   (from an index at or before the event's) decrypts.
//!
//! `ROOMSEAL_CRASH_KILLS` (default 20) and `ROOMSEAL_CRASH_SECS` (default
//! 45) bound the run; the figures are printed.

#![cfg(feature = "sqlite")]

#[path = "support/child.rs"]
mod child;

#[path = "support/matrix_server.rs"]
mod server;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use child::{Journal, crash_child_args, crash_parent};
use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use roomseal::matrix::{
    DurableMatrixEndpoint, MEGOLM_V1, MatrixEndpoint, RoomEncryptionContent, RoomId, UserId,
};
use roomseal::{Account, MegolmMessage, PickleKey, SqliteStore};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use server::{Client, Server};

const USERS: [&str; 2] = ["@alice:example.org", "@bob:example.org"];
const DEVICES: [&str; 2] = ["ALICE", "BOB"];

/// One journal line.
#[derive(Serialize, Deserialize, Debug, Clone)]
enum Entry {
    /// `to` took a sync carrying these to-device events.
    Synced { to: usize, events: Vec<Value> },
    /// A room event released by `from` in its room, with its Megolm
    /// session, index and plaintext body.
    Event {
        from: usize,
        content: Value,
        session: String,
        index: u32,
        body: String,
    },
    /// The receiver decrypted the event at `line`.
    Decrypted { line: usize },
}

fn key() -> PickleKey {
    PickleKey::from_bytes(&mut [0x6b; 32])
}

fn room(who: usize) -> String {
    format!("!room-of-{}:example.org", DEVICES[who].to_lowercase())
}

fn room_id(who: usize) -> RoomId {
    RoomId::parse(room(who)).unwrap()
}

/// The files of a run.
struct World {
    dir: PathBuf,
    server: Server,
    clients: [Client<DurableMatrixEndpoint>; 2],
    journal: Journal<Entry>,
}

impl World {
    fn open(dir: &Path) -> Self {
        let server_path = dir.join("server.json");
        let fresh = !server_path.exists();
        let server = match std::fs::read(&server_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
            Err(_) => {
                let mut server = Server::default();
                for r in 0..2 {
                    for user in USERS {
                        server.join(&room(r), user);
                    }
                }
                server
            }
        };
        let clients = [0, 1].map(|who| {
            let store = SqliteStore::open(dir.join(format!("{}.db", DEVICES[who]))).unwrap();
            let ep = if fresh {
                let mut ep = MatrixEndpoint::new(
                    Account::new(),
                    UserId::parse(USERS[who]).unwrap(),
                    roomseal::matrix::DeviceId::parse(DEVICES[who]).unwrap(),
                );
                // Rotate often, to exercise new sessions.
                let settings = RoomEncryptionContent {
                    algorithm: MEGOLM_V1.to_owned(),
                    rotation_period_ms: None,
                    rotation_period_msgs: Some(7),
                };
                ep.set_room_encryption(&room_id(who), settings);
                DurableMatrixEndpoint::from_endpoint(ep, store, &key())
            } else {
                DurableMatrixEndpoint::open(store, &key())
            };
            Client {
                ep: ep.expect("the store opens"),
                user: USERS[who].to_owned(),
                device: DEVICES[who].to_owned(),
            }
        });
        let world = Self {
            dir: dir.to_owned(),
            server,
            clients,
            journal: Journal::open(&dir.join("journal")),
        };
        if fresh {
            world.save_server();
        }
        world
    }

    /// Writes the server's state (atomically: a new file, then a rename).
    fn save_server(&self) {
        let tmp = self.dir.join("server.json.tmp");
        let mut file = File::create(&tmp).unwrap();
        file.write_all(&serde_json::to_vec(&self.server).unwrap())
            .unwrap();
        file.sync_data().unwrap();
        std::fs::rename(&tmp, self.dir.join("server.json")).unwrap();
    }

    /// Sends a device's outgoing requests, answering each.
    fn pump(&mut self, who: usize) {
        for _ in 0..5 {
            let requests = self.clients[who].ep.outgoing_requests().unwrap();
            if requests.is_empty() {
                return;
            }
            for request in requests {
                let c = &self.clients[who];
                let response = self.server.route(&c.user, &c.device, &request);
                self.save_server();
                // An answer to a request a restart forgot is refused; the
                // next outgoing requests ask again.
                let _ = self.clients[who]
                    .ep
                    .mark_request_as_sent(request.id, &response);
            }
        }
    }

    fn share(&mut self, who: usize) {
        let members = self.server.member_ids(&room(who));
        self.clients[who].ep.update_tracked_users(&members).unwrap();
        self.pump(who);
        if let Some(claim) = self.clients[who].ep.keys_claim_request(&members).unwrap() {
            let c = &self.clients[who];
            let response = self.server.route(&c.user, &c.device, &claim);
            self.save_server();
            let _ = self.clients[who]
                .ep
                .mark_request_as_sent(claim.id, &response);
        }
        let Ok(outcome) = self.clients[who].ep.share_room_key(&room_id(who), &members) else {
            return;
        };
        for request in &outcome.requests {
            let c = &self.clients[who];
            let response = self.server.route(&c.user, &c.device, request);
            self.save_server();
            let _ = self.clients[who]
                .ep
                .mark_request_as_sent(request.id, &response);
        }
    }

    fn sync(&mut self, who: usize) {
        let c = &self.clients[who];
        let sync = self.server.sync(&c.user, &c.device);
        self.save_server();
        self.clients[who].ep.receive_sync_changes(&sync).unwrap();
        let parsed: Value = serde_json::from_str(&sync).unwrap();
        let events = parsed["to_device"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !events.is_empty() {
            self.journal.push(Entry::Synced { to: who, events });
        }
        self.pump(who);
    }

    fn send(&mut self, who: usize, body: String) {
        let content =
            serde_json::value::to_raw_value(&json!({"msgtype": "m.text", "body": body})).unwrap();
        let Ok(encrypted) =
            self.clients[who]
                .ep
                .encrypt_room_event(&room_id(who), "m.room.message", &content)
        else {
            // The key must be shared (again) first.
            return self.share(who);
        };
        let index = MegolmMessage::from_base64(&encrypted.ciphertext)
            .unwrap()
            .message_index();
        self.journal.push(Entry::Event {
            from: who,
            content: encrypted.to_json_value(),
            session: encrypted.session_id.clone(),
            index,
            body,
        });
    }

    /// The event of journal line `line` as the receiver gets it.
    fn event(&self, line: usize) -> Option<(usize, String, String)> {
        let Some(Entry::Event {
            from,
            content,
            body,
            ..
        }) = self.journal.entries.get(line)
        else {
            return None;
        };
        let event = json!({
            "type": "m.room.encrypted",
            "event_id": format!("$line{line}"),
            "sender": USERS[*from],
            "origin_server_ts": 1_700_000_000_000u64 + line as u64,
            "room_id": room(*from),
            "content": content,
        });
        Some((*from, event.to_string(), body.clone()))
    }

    /// The journal lines of the events a receiver decrypted.
    fn decrypted(&self) -> Vec<usize> {
        let lines = self.journal.entries.iter().filter_map(|e| match e {
            Entry::Decrypted { line } => Some(*line),
            _ => None,
        });
        lines.collect()
    }

    /// The receiver decrypts every event of the other's room it has not yet.
    fn read(&mut self, to: usize) {
        let done = self.decrypted();
        for line in 0..self.journal.entries.len() {
            let Some((from, event, body)) = self.event(line) else {
                continue;
            };
            if from == to || done.contains(&line) {
                continue;
            }
            if let Ok(decrypted) = self.clients[to]
                .ep
                .decrypt_room_event_json(&room_id(from), &event)
            {
                let content: Value = serde_json::from_str(decrypted.content.get()).unwrap();
                assert_eq!(content["body"], body.as_str());
                self.journal.push(Entry::Decrypted { line });
            }
        }
    }

    /// The checks run at every start, against the journal.
    fn verify(&mut self) {
        // No (session, index) released twice with different plaintexts.
        let mut released: BTreeMap<(String, u32), String> = BTreeMap::new();
        for entry in &self.journal.entries {
            if let Entry::Event {
                session,
                index,
                body,
                ..
            } = entry
            {
                let before = released.insert((session.clone(), *index), body.clone());
                assert!(
                    before.is_none_or(|b| &b == body),
                    "Megolm index {index} of {session} used for two plaintexts"
                );
            }
        }
        // To-device events taken before are never taken again.
        let synced: Vec<(usize, Vec<Value>)> = self
            .journal
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Synced { to, events } => Some((*to, events.clone())),
                _ => None,
            })
            .collect();
        for (to, events) in synced {
            let sync = json!({"next_batch": "again", "to_device": {"events": events}});
            let outcome = self.clients[to]
                .ep
                .receive_sync_changes(&sync.to_string())
                .unwrap();
            assert!(
                outcome.to_device.is_empty(),
                "a to-device event was taken twice"
            );
        }
        // Decrypted before: still decrypts. Key held from an earlier index:
        // decrypts.
        let decrypted = self.decrypted();
        for line in 0..self.journal.entries.len() {
            let Some((from, event, body)) = self.event(line) else {
                continue;
            };
            let Some(Entry::Event { session, index, .. }) = self.journal.entries.get(line) else {
                continue;
            };
            let to = 1 - from;
            let held = self.clients[to]
                .ep
                .room_keys()
                .iter()
                .any(|k| k.session_id.to_base64() == *session && k.first_index <= *index);
            if !held && !decrypted.contains(&line) {
                continue;
            }
            let result = self.clients[to]
                .ep
                .decrypt_room_event_json(&room_id(from), &event);
            let decrypted = result.unwrap_or_else(|e| panic!("event {line} lost: {e:?}"));
            let content: Value = serde_json::from_str(decrypted.content.get()).unwrap();
            assert_eq!(content["body"], body.as_str());
        }
    }
}

/// One run: checks, then a random schedule until killed (or done).
fn child(dir: &Path, seed: u64) {
    let mut world = World::open(dir);
    world.verify();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for step in 0..60 {
        let who = rng.random_range(0..2usize);
        match rng.random_range(0..10u32) {
            0 => world.pump(who),
            1 | 2 => world.share(who),
            3 | 4 => world.sync(who),
            5..=7 => world.send(who, format!("run {seed} step {step}")),
            _ => world.read(who),
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
    let (dir, done) = crash_parent("crash-matrix", (20, 45, 10), 30..600, 29);
    let (kills, runs, finished, seconds) = (done.kills, done.runs, done.finished, done.seconds);
    let journal: Journal<Entry> = Journal::open(&dir.join("journal"));
    let count = |pred: fn(&Entry) -> bool| journal.entries.iter().filter(|e| pred(e)).count();
    println!(
        "matrix crash test: {kills} kills, {runs} runs ({finished} finished on their own), \
         {} journal entries: {} events released, {} decrypted, {} syncs with to-device \
         events; {:.1} s",
        journal.entries.len(),
        count(|e| matches!(e, Entry::Event { .. })),
        count(|e| matches!(e, Entry::Decrypted { .. })),
        count(|e| matches!(e, Entry::Synced { .. })),
        seconds
    );
    assert!(
        count(|e| matches!(e, Entry::Decrypted { .. })) > 0,
        "no event was ever decrypted: the schedule tests nothing"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

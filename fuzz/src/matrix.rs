//! Fuzz entry points for the Matrix layer: a whole `/sync` response taken
//! by a `MatrixEndpoint` (to-device Olm events, withheld notices, device
//! lists, key counts), and `/keys/query` and `/keys/claim` responses taken
//! by a device tracker.
//!
//! Shared by the cargo-fuzz targets (each includes this file as a module)
//! and the stable replay test `tests/fuzz_corpus.rs`. The fixture is built
//! once with the in-memory server of `tests/support/matrix_server.rs`;
//! its keys are random, so an input is either raw text (first byte even)
//! or byte patches applied to the fixture's genuine response (first byte
//! odd: pairs of a little-endian u16 position and a byte), which keeps the
//! committed seeds meaningful whatever the keys. Each `pub fn` returns
//! normally on every input and panics only when a guarantee is broken.

#![allow(dead_code)]

use std::sync::OnceLock;

use roomseal::PickleKey;
use roomseal::matrix::{
    DeviceTracker, KeysClaimRequest, MatrixEndpoint, ProcessedToDevice, UserId,
    keys_claim_requests, receive_keys_claim_json,
};

#[path = "../../tests/support/matrix_server.rs"]
mod server;

use server::{Client, Server};

/// Every Matrix fuzz target, named like its file in `fuzz/fuzz_targets/`.
pub const MATRIX_TARGETS: [&str; 2] = ["matrix_sync", "matrix_keys_response"];

/// The entry function of the target `name`.
pub fn matrix_entry(name: &str) -> Option<fn(&[u8])> {
    match name {
        "matrix_sync" => Some(matrix_sync),
        "matrix_keys_response" => Some(matrix_keys_response),
        _ => None,
    }
}

const ROOM: &str = "!fuzz:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";

struct Fixture {
    key: PickleKey,
    /// Bob, knowing Alice's device, before the sync.
    bob: String,
    /// Bob's sync carrying Alice's room key over Olm (a pre-key message).
    sync: String,
    /// A tracker of Bob's that knows Alice's device and has her list
    /// outdated again, its query, and the genuine answer.
    tracker: DeviceTracker,
    query_response: String,
    /// A claim for Alice's device and its genuine answer.
    claim: KeysClaimRequest,
    claim_response: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut server = Server::default();
        let mut alice = Client::new(ALICE, "ALICE");
        let mut bob = Client::new(BOB, "BOB");
        server.join(ROOM, ALICE);
        server.join(ROOM, BOB);
        alice.pump(&mut server);
        bob.pump(&mut server);
        for c in [&mut alice, &mut bob] {
            c.ep.update_tracked_users(&server.member_ids(ROOM));
            c.pump(&mut server);
        }
        alice.share(&mut server, ROOM);
        let sync = server.sync(BOB, "BOB");
        let key = PickleKey::from_bytes(&mut [0x4d; 32]);
        let bob_pickle = bob.ep.pickle(&key);

        let alice_id = UserId::parse(ALICE).expect("user id");
        let mut tracker = bob.ep.tracker().clone();
        tracker.receive_device_lists(std::slice::from_ref(&alice_id), &[]);
        let query = tracker.keys_query().expect("an outdated user");
        let query_request = roomseal::matrix::OutgoingRequest {
            id: roomseal::matrix::RequestId(0),
            kind: roomseal::matrix::RequestKind::KeysQuery(query.body.clone()),
        };
        let query_response = server.route(BOB, "BOB", &query_request);
        let claim = keys_claim_requests(tracker.devices(&alice_id))
            .into_iter()
            .next()
            .expect("a claim");
        let claim_request = roomseal::matrix::OutgoingRequest {
            id: roomseal::matrix::RequestId(1),
            kind: roomseal::matrix::RequestKind::KeysClaim(claim.clone()),
        };
        let claim_response = server.route(BOB, "BOB", &claim_request);
        Fixture {
            key,
            bob: bob_pickle,
            sync,
            tracker,
            query_response,
            claim,
            claim_response,
        }
    })
}

/// The text an input stands for: raw (first byte even) or the genuine
/// `base` with byte patches (first byte odd).
fn input_text(data: &[u8], base: &str) -> String {
    let Some((&mode, rest)) = data.split_first() else {
        return String::new();
    };
    if mode % 2 == 0 {
        return String::from_utf8_lossy(rest).into_owned();
    }
    let mut bytes = base.as_bytes().to_vec();
    for patch in rest.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([patch[0], patch[1]]));
        if let Some(b) = bytes.get_mut(at) {
            *b = patch[2];
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Bob takes a sync. Whatever it holds: no panic, every refused event is
/// reported once, by its position, and a room key is taken at most once
/// (the same sync again takes nothing new).
pub fn matrix_sync(data: &[u8]) {
    let f = fixture();
    let text = input_text(data, &f.sync);
    let mut bob = MatrixEndpoint::from_pickle(&f.bob, &f.key).expect("fixture pickle");
    let Ok(outcome) = bob.receive_sync_changes(&text) else {
        return;
    };
    let mut seen: Vec<usize> = outcome
        .rejected
        .iter()
        .map(|r| r.index)
        .chain(outcome.to_device.iter().map(|(i, _)| *i))
        .collect();
    let total = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), total, "an event reported twice");
    let again = bob
        .receive_sync_changes(&text)
        .expect("the same text parses");
    for (_, processed) in &again.to_device {
        assert!(
            !matches!(
                processed,
                ProcessedToDevice::RoomKey(_) | ProcessedToDevice::ForwardedRoomKey(_)
            ),
            "a to-device room key was taken twice"
        );
    }
    let _ = bob.outgoing_requests();
}

/// A `/keys/query` (second input byte even) or `/keys/claim` response:
/// no panic; a device already known never changes keys; every claimed key
/// belongs to a device the tracker knows.
pub fn matrix_keys_response(data: &[u8]) {
    let f = fixture();
    let (query, data) = match data.split_first() {
        Some((&which, rest)) => (which % 2 == 0, rest),
        None => return,
    };
    let alice = UserId::parse(ALICE).expect("user id");
    if query {
        let text = input_text(data, &f.query_response);
        let mut tracker = f.tracker.clone();
        let Some(q) = tracker.keys_query() else {
            return;
        };
        let before: Vec<_> = tracker.devices(&alice).cloned().collect();
        let _ = tracker.receive_keys_query_json(&q, &text);
        for device in &before {
            if let Some(now) = tracker.device(device.user_id(), device.device_id()) {
                assert_eq!(now.keys(), device.keys(), "a device changed keys");
            }
        }
    } else {
        let text = input_text(data, &f.claim_response);
        if let Ok(outcome) = receive_keys_claim_json(&f.tracker, &f.claim, &text) {
            for claimed in &outcome.keys {
                let known = f
                    .tracker
                    .device(claimed.device.user_id(), claimed.device.device_id());
                assert_eq!(known, Some(&claimed.device), "a key for an unknown device");
            }
        }
    }
}

/// Seed inputs: the genuine responses, and a few raw ones.
pub fn seed_inputs() -> Vec<(&'static str, String, Vec<u8>)> {
    let raw = |text: &str| {
        let mut v = vec![0u8];
        v.extend_from_slice(text.as_bytes());
        v
    };
    vec![
        ("matrix_sync", "genuine".into(), vec![1]),
        ("matrix_sync", "patched".into(), vec![1, 40, 0, b'x']),
        (
            "matrix_sync",
            "withheld".into(),
            raw(
                r#"{"to_device":{"events":[{"type":"m.room_key.withheld","sender":"@alice:example.org","content":{"algorithm":"m.megolm.v1.aes-sha2","code":"m.no_olm","sender_key":"ffffffffffffffffffffffffffffffffffffffffffc"}}]},"device_lists":{"changed":["@alice:example.org"],"left":["x"]}}"#,
            ),
        ),
        ("matrix_keys_response", "query".into(), vec![0, 1]),
        ("matrix_keys_response", "claim".into(), vec![1, 1]),
        ("matrix_keys_response", "query-raw".into(), {
            let mut v = vec![0];
            v.extend(raw(
                r#"{"device_keys":{"@alice:example.org":{"ALICE":{}}},"failures":{}}"#,
            ));
            v
        }),
    ]
}

//! Two users, several roomseal `MatrixEndpoint`s, one encrypted room,
//! through the tiny in-memory server of `tests/support/matrix_server.rs`:
//! Olm sessions both ways, hundreds of events read by every other device
//! with zero failures, rotation by message count and on a device leaving
//! (the departed device reads nothing new), a fallback key in use, a
//! forwarded key reported as not authenticated, a withheld notice
//! understood, a replayed event refused, and a pickle round trip mid-way.

#[path = "support/matrix_server.rs"]
mod server;

use std::collections::BTreeMap;

use roomseal::PickleKey;
use roomseal::matrix::{
    DeviceId, DeviceTrust, MatrixEndpoint, ProcessedToDevice, RoomEventError, RoomId,
    RoomKeySource, UserId, WithheldCode,
};
use server::{Client, Server};

const ROOM: &str = "!room:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";

fn room() -> RoomId {
    RoomId::parse(ROOM).unwrap()
}

/// Syncs every client twice (device lists, then what the first sync
/// caused).
fn settle(server: &mut Server, clients: &mut [&mut Client]) {
    for _ in 0..2 {
        for c in clients.iter_mut() {
            let outcome = c.sync(server);
            assert!(
                outcome.rejected.is_empty(),
                "{}: {:?}",
                c.device,
                outcome.rejected
            );
        }
    }
}

/// Bodies read by event id, with whether the sender was authenticated.
type Read = BTreeMap<String, (String, bool)>;

/// Decrypts every timeline event from `from` on that `reader` has not read
/// yet; returns the bodies by event id and the failures.
fn read(
    server: &Server,
    reader: &mut Client,
    from: usize,
) -> (Read, Vec<(String, RoomEventError)>) {
    let mut ok = BTreeMap::new();
    let mut failed = Vec::new();
    for event in server.timeline.get(ROOM).into_iter().flatten().skip(from) {
        let own = event["sender"] == reader.user.as_str()
            && event["content"]["device_id"] == reader.device.as_str();
        if own {
            continue;
        }
        let id = event["event_id"].as_str().unwrap().to_owned();
        match reader
            .ep
            .decrypt_room_event_json(&room(), &event.to_string())
        {
            Ok(clear) => {
                let body: serde_json::Value = serde_json::from_str(clear.content.get()).unwrap();
                ok.insert(
                    id,
                    (
                        body["body"].as_str().unwrap().to_owned(),
                        clear.authenticated,
                    ),
                );
            }
            Err(e) => failed.push((id, e)),
        }
    }
    (ok, failed)
}

#[test]
fn two_users_three_devices_hundreds_of_events() {
    let mut server = Server::default();
    let mut a1 = Client::new(ALICE, "ALICE1");
    let mut a2 = Client::new(ALICE, "ALICE2");
    let mut b1 = Client::new(BOB, "BOB1");
    server.join(ROOM, ALICE);
    server.join(ROOM, BOB);
    for c in [&mut a1, &mut a2, &mut b1] {
        c.pump(&mut server);
    }
    settle(&mut server, &mut [&mut a1, &mut a2, &mut b1]);

    // 150 rounds, every device sends each round: more than 100 messages per
    // sender, so every outbound session rotates by message count.
    let rounds = 150;
    let mut sent = 0;
    let mut rotations = 0;
    for round in 0..rounds {
        for c in [&mut a1, &mut a2, &mut b1] {
            let share = c.share(&mut server, ROOM);
            rotations += usize::from(share.rotated);
            c.send(&mut server, ROOM, &format!("{} says {round}", c.device));
            sent += 1;
        }
        settle(&mut server, &mut [&mut a1, &mut a2, &mut b1]);
    }
    assert_eq!(rotations, 3, "one rotation by message count per sender");
    let mut read_total = 0;
    for c in [&mut a1, &mut a2, &mut b1] {
        let (ok, failed) = read(&server, c, 0);
        assert!(
            failed.is_empty(),
            "{}: {:?}",
            c.device,
            &failed[..failed.len().min(3)]
        );
        assert_eq!(ok.len(), sent * 2 / 3);
        assert!(ok.values().all(|(_, authenticated)| *authenticated));
        read_total += ok.len();
        // The same event decrypts again (clients re-render).
        let (again, failed) = read(&server, c, 0);
        assert!(failed.is_empty());
        assert_eq!(again.len(), ok.len());
    }
    assert_eq!(read_total, 900);

    // A replay: the same ciphertext under another event id is refused.
    let last = server.timeline[ROOM].last().unwrap().clone();
    let mut replay = last.clone();
    replay["event_id"] = "$replayed".into();
    let reader = if last["sender"] == BOB {
        &mut a1
    } else {
        &mut b1
    };
    assert!(matches!(
        reader
            .ep
            .decrypt_room_event_json(&room(), &replay.to_string()),
        Err(RoomEventError::Replay { .. })
    ));
    // An event moved to another room is refused.
    let other = RoomId::parse("!other:example.org").unwrap();
    assert!(
        reader
            .ep
            .decrypt_room_event_json(&other, &last.to_string())
            .is_err()
    );

    // A pickle round trip mid-way: bob goes on from his restored state.
    let key = PickleKey::random();
    let pickle = b1.ep.pickle(&key);
    b1.ep = MatrixEndpoint::from_pickle(&pickle, &key).unwrap();

    // ALICE2 logs out: everyone hears it, the next shares rotate, and
    // ALICE2 reads nothing new.
    let before = server.timeline[ROOM].len();
    server.remove_device(ALICE, "ALICE2");
    settle(&mut server, &mut [&mut a1, &mut b1]);
    let share = b1.share(&mut server, ROOM);
    assert!(share.rotated, "bob's key rotates after ALICE2 left");
    assert!(
        !share.served.iter().any(|(_, d)| d.as_str() == "ALICE2"),
        "the departed device is not served"
    );
    for round in 0..20 {
        a1.send(&mut server, ROOM, &format!("a1 after {round}"));
        b1.send(&mut server, ROOM, &format!("b1 after {round}"));
        settle(&mut server, &mut [&mut a1, &mut b1]);
    }
    let _ = a2.sync(&mut server);
    let (ok, failed) = read(&server, &mut a2, before);
    assert!(ok.is_empty(), "the departed device read {ok:?}");
    assert_eq!(failed.len(), 40);
    for c in [&mut a1, &mut b1] {
        let (ok, failed) = read(&server, c, before);
        assert!(failed.is_empty(), "{}: {failed:?}", c.device);
        assert_eq!(ok.len(), 20);
    }

    // A new device of alice's, whose one-time keys are all gone from the
    // server: bob's session with it starts from its fallback key.
    let mut a3 = Client::new(ALICE, "ALICE3");
    a3.pump(&mut server);
    settle(&mut server, &mut [&mut a1, &mut b1, &mut a3]);
    server.drop_one_time_keys(ALICE, "ALICE3");
    let fallback_before = server.claimed_fallback;
    let at_join = server.timeline[ROOM].len();
    b1.send(&mut server, ROOM, "hello ALICE3");
    assert_eq!(
        server.claimed_fallback,
        fallback_before + 1,
        "a fallback key in use"
    );
    settle(&mut server, &mut [&mut a1, &mut b1, &mut a3]);
    let (ok, failed) = read(&server, &mut a3, at_join);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(ok.len(), 1);

    // A forwarded key: ALICE1 forwards its key of an old session of bob's to
    // ALICE3, which then reads that old event, not authenticated.
    let old = server.timeline[ROOM]
        .iter()
        .find(|e| e["sender"] == BOB)
        .unwrap()
        .clone();
    let session =
        roomseal::GroupSessionId::from_base64(old["content"]["session_id"].as_str().unwrap())
            .unwrap();
    assert!(
        a3.ep
            .decrypt_room_event_json(&room(), &old.to_string())
            .is_err()
    );
    let alice = UserId::parse(ALICE).unwrap();
    if let Some(claim) = a1.ep.keys_claim_request([&alice]) {
        a1.answer(&mut server, &claim);
    }
    let forward = a1
        .ep
        .forward_room_key(&room(), &session, &DeviceId::parse("ALICE3").unwrap())
        .unwrap();
    a1.answer(&mut server, &forward);
    let outcome = a3.sync(&mut server);
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert!(
        outcome
            .to_device
            .iter()
            .any(|(_, p)| matches!(p, ProcessedToDevice::ForwardedRoomKey(_)))
    );
    let clear = a3
        .ep
        .decrypt_room_event_json(&room(), &old.to_string())
        .unwrap();
    assert!(!clear.authenticated);
    assert_eq!(clear.key_source, RoomKeySource::Forwarded);

    // Withheld: bob blacklists ALICE3; his key rotates, ALICE3 is told
    // `m.blacklisted` and reports it for bob's next event.
    let bob = UserId::parse(BOB).unwrap();
    let _ = bob;
    assert!(b1.ep.set_device_trust(
        &alice,
        &DeviceId::parse("ALICE3").unwrap(),
        DeviceTrust::Blacklisted
    ));
    let mark = server.timeline[ROOM].len();
    let share = b1.share(&mut server, ROOM);
    assert!(share.rotated);
    assert!(
        share
            .withheld
            .iter()
            .any(|(_, d, c)| d.as_str() == "ALICE3" && *c == WithheldCode::Blacklisted)
    );
    b1.send(&mut server, ROOM, "not for ALICE3");
    let outcome = a3.sync(&mut server);
    assert!(
        outcome
            .to_device
            .iter()
            .any(|(_, p)| matches!(p, ProcessedToDevice::Withheld(_)))
    );
    let event = server.timeline[ROOM][mark].to_string();
    assert!(matches!(
        a3.ep.decrypt_room_event_json(&room(), &event),
        Err(RoomEventError::UnknownRoomKey {
            withheld: Some(WithheldCode::Blacklisted)
        })
    ));
    settle(&mut server, &mut [&mut a1, &mut b1]);
    let (ok, failed) = read(&server, &mut a1, mark);
    assert!(failed.is_empty());
    assert_eq!(ok.len(), 1);
}

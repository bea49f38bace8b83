//! Olm v1 against vodozemac, the reference implementation: sessions started
//! on either side, and long seeded schedules of sends, drops, reorders,
//! duplicates and turns in both directions. Every message roomseal writes
//! must be read by vodozemac (and the reverse), with the same plaintext and
//! byte for byte the same encoding after a decode/encode round trip.

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use roomseal::{OlmAccount, OlmMessage, OlmSession, SessionError};
use vodozemac::olm::{
    Account as VAccount, OlmMessage as VMessage, Session as VSession, SessionConfig,
};

fn to_v(message: &OlmMessage) -> VMessage {
    let v = VMessage::from_parts(usize::from(message.message_type()), &message.to_bytes())
        .expect("vodozemac decodes roomseal's message");
    let (kind, bytes) = v.to_parts();
    assert_eq!(kind, usize::from(message.message_type()));
    assert_eq!(
        bytes,
        message.to_bytes(),
        "vodozemac re-encodes the same bytes"
    );
    v
}

fn from_v(message: &VMessage) -> OlmMessage {
    let (kind, bytes) = message.to_parts();
    let ours = OlmMessage::from_parts(kind as u8, &bytes).expect("roomseal decodes vodozemac's");
    assert_eq!(ours.to_bytes(), bytes);
    ours
}

fn vkey(key: roomseal::Curve25519PublicKey) -> vodozemac::Curve25519PublicKey {
    vodozemac::Curve25519PublicKey::from_bytes(key.to_bytes())
}

fn rkey(key: vodozemac::Curve25519PublicKey) -> roomseal::Curve25519PublicKey {
    roomseal::Curve25519PublicKey::from_bytes(key.to_bytes())
}

/// roomseal (initiator) to vodozemac (responder).
fn roomseal_starts(rng: &mut ChaCha20Rng) -> (OlmSession, VSession) {
    let alice = OlmAccount::new_with_rng(rng);
    let mut bob = VAccount::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    let mut a = alice
        .create_outbound_session_with_rng(rkey(bob.curve25519_key()), rkey(otk), rng)
        .unwrap();
    let first = a.encrypt_with_rng(b"first", rng).unwrap();
    let VMessage::PreKey(pre_key) = to_v(&first) else {
        panic!("a pre-key message first");
    };
    let created = bob
        .create_inbound_session(
            SessionConfig::version_1(),
            vkey(alice.identity_keys().curve25519),
            &pre_key,
        )
        .unwrap();
    assert_eq!(created.plaintext, b"first");
    assert_eq!(created.session.session_id(), a.session_id().to_base64());
    (a, created.session)
}

/// vodozemac (initiator) to roomseal (responder).
fn vodozemac_starts(rng: &mut ChaCha20Rng) -> (OlmSession, VSession) {
    let alice = VAccount::new();
    let mut bob = OlmAccount::new_with_rng(rng);
    bob.generate_one_time_keys_with_rng(1, rng);
    let (_, otk) = bob.one_time_keys()[0];
    let mut a = alice
        .create_outbound_session(
            SessionConfig::version_1(),
            vkey(bob.identity_keys().curve25519),
            vkey(otk),
        )
        .unwrap();
    let first = from_v(&a.encrypt(b"first").unwrap());
    let OlmMessage::PreKey(pre_key) = first else {
        panic!("a pre-key message first");
    };
    let created = bob
        .create_inbound_session(rkey(alice.curve25519_key()), &pre_key)
        .unwrap();
    assert_eq!(created.plaintext, b"first");
    assert_eq!(created.session.session_id().to_base64(), a.session_id());
    (created.session, a)
}

/// A message in flight and what it carries.
struct InFlight {
    bytes: (u8, Vec<u8>),
    plaintext: Vec<u8>,
}

/// Runs `steps` random actions between `ours` and `theirs`: send (either
/// way), deliver the oldest or a random message in flight, duplicate a
/// delivery, or drop a message. Late messages beyond the bounds may fail
/// on both sides alike; everything else must decrypt.
fn schedule(mut ours: OlmSession, mut theirs: VSession, rng: &mut ChaCha20Rng, steps: usize) {
    let mut to_theirs: Vec<InFlight> = Vec::new();
    let mut to_ours: Vec<InFlight> = Vec::new();
    let mut delivered = 0usize;
    let mut dropped = 0usize;
    let mut counter = 0u32;
    for _ in 0..steps {
        counter += 1;
        let plaintext = counter.to_be_bytes().repeat(rng.random_range(1..20));
        match rng.random_range(0..100u32) {
            0..=24 => {
                let m = ours.encrypt_with_rng(&plaintext, rng).unwrap();
                to_theirs.push(InFlight {
                    bytes: (m.message_type(), m.to_bytes()),
                    plaintext,
                });
            }
            25..=49 => {
                let m = from_v(&theirs.encrypt(&plaintext).unwrap());
                to_ours.push(InFlight {
                    bytes: (m.message_type(), m.to_bytes()),
                    plaintext,
                });
            }
            50..=89 => {
                let toward_ours = rng.random_bool(0.5);
                let queue = if toward_ours {
                    &mut to_ours
                } else {
                    &mut to_theirs
                };
                if queue.is_empty() {
                    continue;
                }
                // Mostly in order, sometimes any message in flight.
                let i = if rng.random_bool(0.7) {
                    0
                } else {
                    rng.random_range(0..queue.len())
                };
                let duplicate = rng.random_bool(0.05);
                let item = if duplicate {
                    InFlight {
                        bytes: queue[i].bytes.clone(),
                        plaintext: queue[i].plaintext.clone(),
                    }
                } else {
                    queue.remove(i)
                };
                let message = OlmMessage::from_parts(item.bytes.0, &item.bytes.1).unwrap();
                if toward_ours {
                    assert_eq!(ours.decrypt(&message).unwrap(), item.plaintext.as_slice());
                } else {
                    assert_eq!(theirs.decrypt(&to_v(&message)).unwrap(), item.plaintext);
                }
                delivered += 1;
                if duplicate {
                    // The same message again is refused by both, changing nothing.
                    if toward_ours {
                        let replay = OlmMessage::from_parts(item.bytes.0, &item.bytes.1).unwrap();
                        assert!(ours.decrypt(&replay).is_err());
                    } else {
                        assert!(
                            theirs
                                .decrypt(&to_v(
                                    &OlmMessage::from_parts(item.bytes.0, &item.bytes.1).unwrap()
                                ))
                                .is_err()
                        );
                    }
                    let queue = if toward_ours {
                        &mut to_ours
                    } else {
                        &mut to_theirs
                    };
                    queue.remove(i);
                }
            }
            _ => {
                let queue = if rng.random_bool(0.5) {
                    &mut to_ours
                } else {
                    &mut to_theirs
                };
                if !queue.is_empty() {
                    let i = rng.random_range(0..queue.len());
                    queue.remove(i);
                    dropped += 1;
                }
            }
        }
        // Keep the number in flight within what both sides keep keys for.
        while to_ours.len() > 30 {
            to_ours.remove(0);
        }
        while to_theirs.len() > 30 {
            to_theirs.remove(0);
        }
    }
    assert!(
        delivered > steps / 4,
        "{delivered} delivered, {dropped} dropped"
    );
}

#[test]
fn roomseal_initiator_long_schedule() {
    for seed in 0..3u8 {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let (ours, theirs) = roomseal_starts(&mut rng);
        schedule(ours, theirs, &mut rng, 3000);
    }
}

#[test]
fn vodozemac_initiator_long_schedule() {
    for seed in 10..13u8 {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let (ours, theirs) = vodozemac_starts(&mut rng);
        schedule(ours, theirs, &mut rng, 3000);
    }
}

#[test]
fn pre_key_messages_until_a_reply_and_many_before_it() {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let (mut ours, mut theirs) = roomseal_starts(&mut rng);
    // Thousands of messages one way before any reply.
    for i in 0..2500u32 {
        let m = ours.encrypt_with_rng(&i.to_be_bytes(), &mut rng).unwrap();
        assert!(m.is_pre_key());
        assert_eq!(theirs.decrypt(&to_v(&m)).unwrap(), i.to_be_bytes());
    }
    let reply = from_v(&theirs.encrypt(b"reply").unwrap());
    assert_eq!(ours.decrypt(&reply).unwrap(), b"reply");
    assert!(!ours.encrypt(b"x").unwrap().is_pre_key());
}

#[test]
fn gaps_at_and_beyond_the_bound_match_vodozemac() {
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let (mut ours, mut theirs) = vodozemac_starts(&mut rng);
    let reply = ours.encrypt(b"r").unwrap();
    theirs.decrypt(&to_v(&reply)).unwrap();
    // vodozemac skips 2000 keys at most, and so do we.
    let mut last = None;
    for _ in 0..=2000 {
        last = Some(theirs.encrypt(b"m").unwrap());
    }
    assert_eq!(ours.decrypt(&from_v(&last.unwrap())).unwrap(), b"m");
    let mut last = None;
    for _ in 0..=2001 {
        last = Some(theirs.encrypt(b"m").unwrap());
    }
    assert!(matches!(
        ours.decrypt(&from_v(&last.unwrap())),
        Err(SessionError::TooFarAhead { .. })
    ));
}

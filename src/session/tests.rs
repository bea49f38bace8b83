use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;

use super::*;
use crate::Account;

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Alice has an outbound session to Bob; Bob has not seen anything yet.
fn outbound(seed: u8) -> (Account, Account, Session) {
    let mut r = rng(seed);
    let alice = Account::new_with_rng(&mut r);
    let mut bob = Account::new_with_rng(&mut r);
    bob.generate_one_time_keys_with_rng(5, &mut r);
    let bob_device = bob
        .device_keys("@bob:x", "B")
        .unwrap()
        .check_self_signature()
        .unwrap();
    let otk = bob.one_time_keys()[0].clone();
    let session = alice
        .create_outbound_session_with_rng(&bob_device, &otk, &mut r)
        .unwrap();
    (alice, bob, session)
}

/// Alice and Bob with established sessions (one message each way).
fn pair(seed: u8) -> (Session, Session) {
    let (_alice, mut bob, mut a) = outbound(seed);
    let DeviceMessage::PreKey(m) = a.encrypt(b"hello").unwrap() else {
        panic!()
    };
    let created = bob.create_inbound_session(&m).unwrap();
    assert_eq!(created.plaintext, b"hello");
    let mut b = created.session;
    let reply = b.encrypt(b"hi").unwrap();
    assert!(!reply.is_pre_key());
    assert_eq!(a.decrypt(&reply).unwrap(), b"hi");
    (a, b)
}

fn fixed_pickle(session: &Session) -> String {
    session.pickle_with_rng(&PickleKey::from_bytes(&mut [1; 32]), &mut rng(99))
}

#[test]
fn round_trips_both_ways_and_leaves_pre_key_phase() {
    let (mut a, mut b) = pair(1);
    assert_eq!(a.session_id(), b.session_id());
    for i in 0..5u8 {
        let m = a.encrypt(&[i; 10]).unwrap();
        assert!(!m.is_pre_key());
        assert_eq!(b.decrypt(&m).unwrap(), [i; 10]);
        let m = b.encrypt(&[i; 3]).unwrap();
        assert_eq!(a.decrypt(&m).unwrap(), [i; 3]);
    }
}

#[test]
fn initiator_keeps_sending_pre_key_messages_until_reply() {
    let (_alice, mut bob, mut a) = outbound(2);
    let first = a.encrypt(b"1").unwrap();
    let second = a.encrypt(b"2").unwrap();
    assert!(first.is_pre_key() && second.is_pre_key());
    let DeviceMessage::PreKey(p2) = &second else {
        panic!()
    };
    // Bob receives the second one first; the first then decrypts by session.
    let created = bob.create_inbound_session(p2).unwrap();
    let mut b = created.session;
    assert_eq!(created.plaintext, b"2");
    assert_eq!(b.decrypt(&first).unwrap(), b"1");
    assert_eq!(
        b.decrypt(&first),
        Err(SessionError::MessageKeyGone { counter: 0 })
    );
}

#[test]
fn ten_thousand_messages_one_way_then_reply() {
    let (mut a, mut b) = pair(3);
    for i in 0..10_000u32 {
        let m = a.encrypt(&i.to_be_bytes()).unwrap();
        assert_eq!(b.decrypt(&m).unwrap(), i.to_be_bytes());
    }
    let reply = b.encrypt(b"done").unwrap();
    assert_eq!(a.decrypt(&reply).unwrap(), b"done");
    assert_eq!(b.decrypt(&a.encrypt(b"ok").unwrap()).unwrap(), b"ok");
}

#[test]
fn out_of_order_within_bounds_across_ratchets() {
    let (mut a, mut b) = pair(4);
    let early: Vec<_> = (0..3).map(|i| a.encrypt(&[i]).unwrap()).collect();
    // Direction changes while the early messages are in flight.
    let late = a.encrypt(b"late").unwrap();
    assert_eq!(b.decrypt(&late).unwrap(), b"late");
    let reply = b.encrypt(b"r").unwrap();
    assert_eq!(a.decrypt(&reply).unwrap(), b"r");
    let next = a.encrypt(b"next-chain").unwrap();
    assert_eq!(b.decrypt(&next).unwrap(), b"next-chain");
    for (i, m) in early.iter().enumerate().rev() {
        assert_eq!(b.decrypt(m).unwrap(), [i as u8]);
    }
}

#[test]
fn previous_chain_messages_survive_a_ratchet() {
    let (mut a, mut b) = pair(5);
    let m0 = a.encrypt(b"0").unwrap();
    let m1 = a.encrypt(b"1").unwrap();
    assert_eq!(b.decrypt(&m0).unwrap(), b"0");
    let r = b.encrypt(b"r").unwrap();
    assert_eq!(a.decrypt(&r).unwrap(), b"r");
    // a's new chain announces 2 messages on its previous chain; m1 is kept.
    let n = a.encrypt(b"n").unwrap();
    assert_eq!(b.decrypt(&n).unwrap(), b"n");
    assert_eq!(b.decrypt(&m1).unwrap(), b"1");
}

#[test]
fn replay_is_rejected_and_changes_nothing() {
    let (mut a, mut b) = pair(6);
    let m = a.encrypt(b"once").unwrap();
    assert_eq!(b.decrypt(&m).unwrap(), b"once");
    let before = fixed_pickle(&b);
    assert_eq!(
        b.decrypt(&m),
        Err(SessionError::MessageKeyGone { counter: 0 })
    );
    assert_eq!(fixed_pickle(&b), before);
}

#[test]
fn forward_jump_beyond_bound_is_rejected() {
    let (mut a, mut b) = pair(7);
    let mut last = None;
    for _ in 0..=MAX_FORWARD_JUMP + 1 {
        last = Some(a.encrypt(b"x").unwrap());
    }
    let before = fixed_pickle(&b);
    let err = b.decrypt(&last.unwrap()).unwrap_err();
    assert!(
        matches!(err, SessionError::TooFarAhead { jump, .. } if jump == u64::from(MAX_FORWARD_JUMP) + 1),
        "{err:?}"
    );
    assert_eq!(fixed_pickle(&b), before);
    // Exactly at the bound is fine.
    let (mut a, mut b) = pair(8);
    for _ in 0..MAX_FORWARD_JUMP {
        a.encrypt(b"x").unwrap();
    }
    assert_eq!(b.decrypt(&a.encrypt(b"edge").unwrap()).unwrap(), b"edge");
}

#[test]
fn every_single_byte_change_is_rejected_and_harmless() {
    for pre_key in [true, false] {
        let (_alice, mut bob, mut a) = outbound(9);
        let mut b = if pre_key {
            None
        } else {
            let DeviceMessage::PreKey(m) = a.encrypt(b"start").unwrap() else {
                panic!()
            };
            let mut b = bob.create_inbound_session(&m).unwrap().session;
            assert_eq!(a.decrypt(&b.encrypt(b"ack").unwrap()).unwrap(), b"ack");
            Some(b)
        };
        let genuine = a.encrypt(b"the genuine message").unwrap();
        assert_eq!(genuine.is_pre_key(), pre_key);
        let bytes = genuine.to_bytes();
        let account_before = bob.pickle_with_rng(&PickleKey::from_bytes(&mut [2; 32]), &mut rng(1));
        let session_before = b.as_ref().map(fixed_pickle);
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                let result = match DeviceMessage::from_bytes(&bad) {
                    Err(_) => continue,
                    Ok(DeviceMessage::PreKey(p)) if b.is_none() => bob
                        .create_inbound_session(&p)
                        .map(|c| c.plaintext)
                        .map_err(|e| format!("{e:?}")),
                    Ok(m) => match b.as_mut() {
                        Some(s) => s.decrypt(&m).map_err(|e| format!("{e:?}")),
                        None => continue,
                    },
                };
                assert!(result.is_err(), "byte {i} ^ {flip:#x} accepted");
            }
        }
        assert_eq!(
            bob.pickle_with_rng(&PickleKey::from_bytes(&mut [2; 32]), &mut rng(1)),
            account_before
        );
        assert_eq!(b.as_ref().map(fixed_pickle), session_before);
        // The genuine message still decrypts.
        match (&genuine, b.as_mut()) {
            (DeviceMessage::PreKey(p), None) => {
                assert_eq!(
                    bob.create_inbound_session(p).unwrap().plaintext,
                    b"the genuine message"
                )
            }
            (m, Some(s)) => assert_eq!(s.decrypt(m).unwrap(), b"the genuine message"),
            _ => unreachable!(),
        }
    }
}

#[test]
fn pre_key_message_for_another_session_is_rejected() {
    let (mut a, mut b) = pair(10);
    let (_x, _y, mut other) = outbound(11);
    let foreign = other.encrypt(b"x").unwrap();
    assert_eq!(b.decrypt(&foreign), Err(SessionError::SessionMismatch));
    let _ = a.encrypt(b"still fine").map(|m| b.decrypt(&m).unwrap());
}

#[test]
fn messages_cannot_move_between_sessions() {
    let (mut a1, _b1) = pair(12);
    let (_a2, mut b2) = pair(13);
    let m = a1.encrypt(b"for b1").unwrap();
    assert!(b2.decrypt(&m).is_err());
}

#[test]
fn pickle_mid_conversation_continues_exactly() {
    let (mut a, mut b) = pair(14);
    let in_flight = a.encrypt(b"in flight").unwrap();
    let skipped = a.encrypt(b"skipped").unwrap();
    assert_eq!(b.decrypt(&a.encrypt(b"third").unwrap()).unwrap(), b"third");
    let key = PickleKey::from_bytes(&mut [3; 32]);
    let mut a2 = Session::from_pickle(&a.pickle(&key), &key, &a.local_identity()).unwrap();
    let mut b2 = Session::from_pickle(&b.pickle(&key), &key, &b.local_identity()).unwrap();
    // Bound to its account: Alice's session pickle does not load as Bob's.
    assert_eq!(
        Session::from_pickle(&a.pickle(&key), &key, &b.local_identity()).unwrap_err(),
        PickleError::Decryption
    );
    assert_eq!(a2.pickle_generation(), a.pickle_generation());
    assert_eq!(fixed_pickle(&a2), fixed_pickle(&a));
    assert_eq!(fixed_pickle(&b2), fixed_pickle(&b));
    assert_eq!(b2.decrypt(&skipped).unwrap(), b"skipped");
    assert_eq!(b2.decrypt(&in_flight).unwrap(), b"in flight");
    assert_eq!(a2.decrypt(&b2.encrypt(b"back").unwrap()).unwrap(), b"back");
    assert_eq!(
        b2.decrypt(&a2.encrypt(b"forth").unwrap()).unwrap(),
        b"forth"
    );
    let wrong = PickleKey::from_bytes(&mut [4; 32]);
    assert_eq!(
        Session::from_pickle(&a.pickle(&key), &wrong, &a.local_identity()).unwrap_err(),
        PickleError::Decryption
    );
}

#[test]
fn established_session_pickle_is_small() {
    let (mut a, mut b) = pair(15);
    for _ in 0..10 {
        b.decrypt(&a.encrypt(b"x").unwrap()).unwrap();
        a.decrypt(&b.encrypt(b"y").unwrap()).unwrap();
    }
    let key = PickleKey::from_bytes(&mut [5; 32]);
    let text = a.pickle(&key);
    let binary = crate::keys::base64_decode(&text).unwrap().len();
    assert!(binary < 560, "{binary} bytes");
    assert!(text.len() < 750, "{} characters", text.len());
}

#[test]
fn debug_shows_no_secret_bytes() {
    let (a, _b) = pair(16);
    let debug = format!("{a:?}");
    let secrets = [
        a.ratchet.root.0.expose().to_vec(),
        a.ratchet
            .sending
            .as_ref()
            .unwrap()
            .chain
            .key
            .expose()
            .to_vec(),
        a.ratchet
            .sending
            .as_ref()
            .unwrap()
            .key
            .secret
            .as_bytes()
            .to_vec(),
        a.ratchet.live().unwrap().chain.key.expose().to_vec(),
    ];
    for secret in secrets {
        let b64 = crate::keys::base64_encode(&secret);
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!debug.contains(&b64) && !debug.contains(&hex), "{debug}");
        assert!(!debug.contains(&format!("{:?}", &secret[..8])));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_permutation_of_fifty_messages_decrypts(seed in any::<u8>(), order in Just((0..50usize).collect::<Vec<_>>()).prop_shuffle()) {
        let (mut a, mut b) = pair(seed);
        let messages: Vec<_> = (0..50u8).map(|i| a.encrypt(&[i]).unwrap()).collect();
        for &i in &order {
            prop_assert_eq!(b.decrypt(&messages[i]).unwrap(), vec![i as u8]);
        }
        for m in &messages {
            prop_assert!(b.decrypt(m).is_err());
        }
    }
}

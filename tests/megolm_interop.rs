//! Megolm v1 against vodozemac: messages, session keys and exports made by
//! either side and read by the other, at index 0 and at later indices, and
//! every encoding identical after a decode/encode round trip.

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use roomseal::{
    GroupError, MegolmExportedKey, MegolmInboundSession, MegolmMessage, MegolmOutboundSession,
    MegolmSessionKey, SessionOrdering,
};
use vodozemac::megolm::{
    ExportedSessionKey as VExported, GroupSession as VOutbound, InboundGroupSession as VInbound,
    MegolmMessage as VMessage, SessionConfig, SessionKey as VSessionKey,
};

fn to_v(m: &MegolmMessage) -> VMessage {
    let v = VMessage::from_bytes(&m.to_bytes()).expect("vodozemac decodes roomseal's message");
    assert_eq!(v.to_bytes(), m.to_bytes());
    v
}

fn from_v(m: &VMessage) -> MegolmMessage {
    let ours = MegolmMessage::from_bytes(&m.to_bytes()).expect("roomseal decodes vodozemac's");
    assert_eq!(ours.to_bytes(), m.to_bytes());
    ours
}

#[test]
fn roomseal_sender_vodozemac_readers_at_every_start() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut outbound = MegolmOutboundSession::new_with_rng(&mut rng);
    let key0 = outbound.session_key();
    assert_eq!(key0.to_bytes().len(), 229);
    let mut reader0 = VInbound::new(
        &VSessionKey::from_bytes(&key0.to_bytes()).unwrap(),
        SessionConfig::version_1(),
    );
    assert_eq!(reader0.session_id(), outbound.session_id().to_base64());
    let mut messages = Vec::new();
    for i in 0..600u32 {
        let plaintext = i.to_be_bytes().repeat(rng.random_range(1..40));
        messages.push((outbound.encrypt(&plaintext).unwrap(), plaintext));
    }
    // Read in a shuffled order.
    let mut order: Vec<usize> = (0..messages.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    for &i in &order {
        let (m, p) = &messages[i];
        let d = reader0.decrypt(&to_v(m)).unwrap();
        assert_eq!(&d.plaintext, p);
        assert_eq!(d.message_index, i as u32);
    }
    // vodozemac exports at 300; roomseal imports it and reads from 300 on.
    let export = reader0.export_at(300).unwrap();
    assert_eq!(export.to_bytes().len(), 165);
    let mut ours =
        MegolmInboundSession::import(&MegolmExportedKey::from_bytes(&export.to_bytes()).unwrap());
    assert_eq!(ours.first_known_index(), 300);
    assert!(matches!(
        ours.decrypt(&messages[299].0),
        Err(GroupError::UnknownIndex {
            index: 299,
            first_known: 300
        })
    ));
    for (m, p) in &messages[300..] {
        let d = ours.decrypt(m).unwrap();
        assert_eq!(&d.plaintext, p);
        assert!(!d.authenticated);
    }
}

#[test]
fn vodozemac_sender_roomseal_readers_keys_and_exports_both_ways() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let mut outbound = VOutbound::new(SessionConfig::version_1());
    let key = MegolmSessionKey::from_bytes(&outbound.session_key().to_bytes()).unwrap();
    assert_eq!(
        key.to_bytes().as_slice(),
        outbound.session_key().to_bytes().as_slice()
    );
    let mut ours = MegolmInboundSession::new(&key).unwrap();
    assert_eq!(ours.session_id().to_base64(), outbound.session_id());
    let mut messages = Vec::new();
    for i in 0..400u32 {
        let plaintext = vec![i as u8; rng.random_range(0..100)];
        messages.push((from_v(&outbound.encrypt(&plaintext)), plaintext));
    }
    for (i, (m, p)) in messages.iter().enumerate().rev() {
        let d = ours.decrypt(m).unwrap();
        assert_eq!(&d.plaintext, p);
        assert_eq!(d.message_index, i as u32);
        assert!(d.authenticated);
    }
    // A session key shared late (at index 400) by vodozemac.
    let late = MegolmSessionKey::from_bytes(&outbound.session_key().to_bytes()).unwrap();
    assert_eq!(late.first_index(), 400);
    let mut late_reader = MegolmInboundSession::new(&late).unwrap();
    let m400 = from_v(&outbound.encrypt(b"four hundred"));
    assert_eq!(
        late_reader.decrypt(&m400).unwrap().plaintext,
        b"four hundred"
    );
    assert!(late_reader.decrypt(&messages[399].0).is_err());
    // roomseal exports at 123: vodozemac imports and reads.
    let export = ours.export_at(123).unwrap();
    let mut theirs = VInbound::import(
        &VExported::from_bytes(&export.to_bytes()).unwrap(),
        SessionConfig::version_1(),
    );
    assert_eq!(theirs.first_known_index(), 123);
    for (m, p) in &messages[123..] {
        assert_eq!(&theirs.decrypt(&to_v(m)).unwrap().plaintext, p);
    }
    // Merge: the early unsigned export and the late signed key.
    let early = MegolmInboundSession::import(&export);
    let merged = early.merge(&late_reader).unwrap();
    assert_eq!(merged.first_known_index(), 123);
    assert_eq!(merged.authenticated_from(), Some(400));
    assert_eq!(early.compare(&late_reader), SessionOrdering::Incomparable);
    assert_eq!(merged.compare(&early), SessionOrdering::Better);
}

#[test]
fn roomseal_session_key_at_a_later_index_is_read_by_vodozemac() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut outbound = MegolmOutboundSession::new_with_rng(&mut rng);
    for _ in 0..70_000 {
        // Cheap way to a far index: encrypt empty messages.
        outbound.encrypt(b"").unwrap();
    }
    let key = outbound.session_key();
    let mut theirs = VInbound::new(
        &VSessionKey::from_bytes(&key.to_bytes()).unwrap(),
        SessionConfig::version_1(),
    );
    let m = outbound.encrypt(b"late").unwrap();
    assert_eq!(m.message_index(), 70_000);
    assert_eq!(theirs.decrypt(&to_v(&m)).unwrap().plaintext, b"late");
    // And a reader that starts at 0 jumps to 70,000.
    let mut from_zero = MegolmOutboundSession::new_with_rng(&mut rng);
    let mut reader = VInbound::new(
        &VSessionKey::from_bytes(&from_zero.session_key().to_bytes()).unwrap(),
        SessionConfig::version_1(),
    );
    let mut ours = MegolmInboundSession::new(&from_zero.session_key()).unwrap();
    let mut last = None;
    for _ in 0..=66_000 {
        last = Some(from_zero.encrypt(b"z").unwrap());
    }
    let last = last.unwrap();
    assert_eq!(reader.decrypt(&to_v(&last)).unwrap().plaintext, b"z");
    assert_eq!(ours.decrypt(&last).unwrap().plaintext, b"z");
}

#[test]
fn forged_and_altered_messages_change_nothing() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let mut outbound = MegolmOutboundSession::new_with_rng(&mut rng);
    let mut ours = MegolmInboundSession::new(&outbound.session_key()).unwrap();
    let m = outbound.encrypt(b"hello").unwrap();
    let bytes = m.to_bytes();
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x40;
        if let Ok(decoded) = MegolmMessage::from_bytes(&bad) {
            assert!(ours.decrypt(&decoded).is_err(), "byte {i}");
        }
    }
    assert_eq!(ours.decrypt(&m).unwrap().plaintext, b"hello");
}

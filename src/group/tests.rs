use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;

use super::*;
use crate::PickleKey;

const ROOM: &str = "!room:example.org";

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn creator() -> crate::IdentityKeys {
    crate::Account::new_with_rng(&mut rng(0)).identity_keys()
}

fn pair(seed: u8) -> (OutboundGroupSession, InboundGroupSession) {
    let outbound = OutboundGroupSession::new_with_rng(ROOM, creator(), &mut rng(seed)).unwrap();
    let inbound = InboundGroupSession::new(&outbound.session_key()).unwrap();
    (outbound, inbound)
}

fn state(session: &InboundGroupSession) -> String {
    session.pickle_with_rng(&PickleKey::from_bytes(&mut [3; 32]), &mut rng(200))
}

#[test]
fn sequential_round_trip_is_authenticated() {
    let (mut out, mut inb) = pair(1);
    assert_eq!(out.session_id(), inb.session_id());
    for i in 0..20u32 {
        let m = out.encrypt(format!("event {i}").as_bytes()).unwrap();
        assert_eq!(m.message_index(), i);
        let d = inb.decrypt(ROOM, &m).unwrap();
        assert_eq!(d.plaintext, format!("event {i}").as_bytes());
        assert_eq!(d.message_index, i);
        assert!(d.authenticated);
    }
    assert_eq!(out.message_index(), 20);
}

#[test]
fn wrong_room_or_session_fails() {
    let (mut out, mut inb) = pair(2);
    let m = out.encrypt(b"secret").unwrap();
    assert_eq!(
        inb.decrypt("!other:example.org", &m).unwrap_err(),
        GroupError::Authentication
    );
    let (_other_out, mut other_in) = pair(3);
    assert_eq!(
        other_in.decrypt(ROOM, &m).unwrap_err(),
        GroupError::BadSignature
    );
    assert_eq!(inb.decrypt("", &m).unwrap_err(), GroupError::InvalidRoomId);
    assert!(inb.decrypt(ROOM, &m).is_ok());
}

#[test]
fn imported_key_decrypts_but_is_not_authenticated() {
    let (mut out, inb) = pair(4);
    let export = inb.export_at(0).unwrap();
    let text = export.to_base64();
    let mut imported =
        InboundGroupSession::import(&ExportedSessionKey::from_base64(&text).unwrap());
    let d = imported.decrypt(ROOM, &out.encrypt(b"x").unwrap()).unwrap();
    assert_eq!(d.plaintext, b"x");
    assert!(!d.authenticated);
    assert!(!imported.is_authenticated());
}

#[test]
fn late_joiner_cannot_decrypt_before_its_index() {
    let (mut out, _) = pair(5);
    let early: Vec<_> = (0..5).map(|i| out.encrypt(&[i]).unwrap()).collect();
    let mut late = InboundGroupSession::new(&out.session_key()).unwrap();
    assert_eq!(late.first_known_index(), 5);
    for m in &early {
        assert_eq!(
            late.decrypt(ROOM, m).unwrap_err(),
            GroupError::UnknownIndex {
                index: m.message_index(),
                first_known: 5
            }
        );
    }
    assert_eq!(
        late.decrypt(ROOM, &out.encrypt(b"now").unwrap())
            .unwrap()
            .plaintext,
        b"now"
    );
    assert!(late.export_at(4).is_none());
}

#[test]
fn every_single_byte_tamper_is_a_typed_error_and_changes_nothing() {
    let (mut out, mut inb) = pair(6);
    let _ = inb.decrypt(ROOM, &out.encrypt(b"first").unwrap()).unwrap();
    let genuine = out.encrypt(b"the genuine group message").unwrap();
    let bytes = genuine.to_bytes();
    let before = state(&inb);
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            let err = match GroupMessage::from_bytes(&bad) {
                Err(e) => GroupError::Decode(e),
                Ok(m) => inb.decrypt(ROOM, &m).unwrap_err(),
            };
            assert!(
                matches!(
                    err,
                    GroupError::Decode(_)
                        | GroupError::BadSignature
                        | GroupError::UnknownIndex { .. }
                ),
                "byte {i}: {err:?}"
            );
            assert_eq!(state(&inb), before);
        }
    }
    // Truncations and an appended byte: each fails to decode or to verify.
    let mut longer = bytes.clone();
    longer.push(0);
    for candidate in (0..bytes.len())
        .map(|len| bytes[..len].to_vec())
        .chain([longer])
    {
        if let Ok(m) = GroupMessage::from_bytes(&candidate) {
            assert_eq!(inb.decrypt(ROOM, &m).unwrap_err(), GroupError::BadSignature);
        }
        assert_eq!(state(&inb), before);
    }
    assert_eq!(
        inb.decrypt(ROOM, &genuine).unwrap().plaintext,
        b"the genuine group message"
    );
}

#[test]
fn jump_to_two_to_the_24_minus_one_is_cheap() {
    let (mut out, mut inb) = pair(7);
    out.ratchet_mut().advance_to((1 << 24) - 1);
    let m = out.encrypt(b"far").unwrap();
    assert_eq!(m.message_index(), (1 << 24) - 1);
    let before = super::ratchet::tests::hmac_count();
    assert_eq!(inb.decrypt(ROOM, &m).unwrap().plaintext, b"far");
    let used = super::ratchet::tests::hmac_count() - before;
    assert!(used <= 3 * 255 + 3, "{used} HMACs");
    // And the worst case over all four parts stays near 1,020.
    let (mut out, mut inb) = pair(8);
    out.ratchet_mut().advance_to(u32::MAX - 1);
    let m = out.encrypt(b"end").unwrap();
    let before = super::ratchet::tests::hmac_count();
    assert_eq!(inb.decrypt(ROOM, &m).unwrap().plaintext, b"end");
    assert!(super::ratchet::tests::hmac_count() - before <= 4 * 255 + 6);
    assert_eq!(out.encrypt(b"last").unwrap_err(), GroupError::Exhausted);
}

#[test]
fn merge_and_compare_rules() {
    let (mut out, auth_at_0) = pair(9);
    for i in 0..3 {
        out.encrypt(&[i]).unwrap();
    }
    let auth_at_3 = InboundGroupSession::new(&out.session_key()).unwrap();
    let unauth_at_0 = InboundGroupSession::import(&auth_at_0.export_at(0).unwrap());
    let unauth_at_2 = InboundGroupSession::import(&auth_at_0.export_at(2).unwrap());

    assert_eq!(auth_at_0.compare(&auth_at_0), SessionOrdering::Equal);
    assert_eq!(auth_at_0.compare(&auth_at_3), SessionOrdering::Better);
    assert_eq!(auth_at_3.compare(&auth_at_0), SessionOrdering::Worse);
    assert_eq!(auth_at_0.compare(&unauth_at_0), SessionOrdering::Better);
    assert_eq!(
        unauth_at_2.compare(&auth_at_3),
        SessionOrdering::Incomparable
    );

    // Early backup + later authenticated share: the backup serves indices
    // 2 and up as an unauthenticated prefix, the share 3 and up.
    let merged = unauth_at_2.merge(&auth_at_3).unwrap();
    assert_eq!(merged.first_known_index(), 2);
    assert_eq!(merged.authenticated_from(), Some(3));
    assert!(merged.is_authenticated());
    assert_eq!(merged.creator(), Some(out.creator()));
    assert_eq!(merged.compare(&unauth_at_2), SessionOrdering::Better);
    assert_eq!(merged.compare(&auth_at_3), SessionOrdering::Better);
    // A share from index 0 covers everything the merge knew.
    assert_eq!(auth_at_0.compare(&merged), SessionOrdering::Better);

    // Different session, or two unsigned copies that do not match.
    let (_, other) = pair(10);
    assert_eq!(auth_at_0.compare(&other), SessionOrdering::Unconnected);
    assert!(auth_at_0.merge(&other).is_none());
    let mut forged = auth_at_0.export_at(3).unwrap();
    forged.ratchet = super::ratchet::Ratchet::from_parts(&[7u8; 128], 3);
    let forged = InboundGroupSession::import(&forged);
    assert_eq!(forged.compare(&unauth_at_0), SessionOrdering::Unconnected);
    assert!(forged.merge(&unauth_at_2).is_none());
    // Unsigned material that contradicts a signed key is dropped, never
    // merged into it.
    let kept = forged.merge(&auth_at_3).unwrap();
    assert_eq!(kept.first_known_index(), 3);
    assert_eq!(kept.authenticated_from(), Some(3));
    assert_eq!(forged.compare(&auth_at_3), SessionOrdering::Worse);
    // Two signed keys of one session that disagree do not merge.
    let mut bad_signed = out.session_key();
    bad_signed.ratchet = super::ratchet::Ratchet::from_parts(&[9u8; 128], 3);
    let bad_signed = InboundGroupSession::from_own_key(&bad_signed);
    assert!(bad_signed.merge(&auth_at_0).is_none());
}

#[test]
fn a_bogus_import_cannot_poison_authenticated_history() {
    // Regression (security review, item 6): an unsigned import at index 5
    // whose lower ratchet parts are garbage still "connects" to a signed key
    // at 256 (jumping across a part boundary re-derives those parts). It
    // must not become authenticated, break indices >= 256, or keep a
    // genuine earlier export out.
    let (mut out, genuine_at_0) = pair(12);
    let mut messages = Vec::new();
    for i in 0..260u32 {
        messages.push(out.encrypt(&i.to_be_bytes()).unwrap());
    }
    let mut signed = out.session_key();
    signed.ratchet = genuine_at_0.export_at(256).unwrap().ratchet;
    let signed = InboundGroupSession::from_own_key(&signed);
    let mut bogus = genuine_at_0.export_at(5).unwrap();
    let mut parts = bogus.ratchet.to_bytes().expose().to_owned();
    parts[96..].copy_from_slice(&[0xAA; 32]);
    bogus.ratchet = super::ratchet::Ratchet::from_parts(&parts, 5);
    let bogus = InboundGroupSession::import(&bogus);

    let mut merged = signed.merge(&bogus).unwrap();
    assert_eq!(merged.authenticated_from(), Some(256));
    assert_eq!(merged.first_known_index(), 5);
    for m in &messages[256..] {
        let d = merged.decrypt(ROOM, m).unwrap();
        assert!(d.authenticated);
    }
    assert_eq!(
        merged.decrypt(ROOM, &messages[5]).unwrap_err(),
        GroupError::Authentication
    );
    // A genuine export from 0 replaces the bogus prefix.
    let genuine = InboundGroupSession::import(&genuine_at_0.export_at(0).unwrap());
    let mut repaired = merged.merge(&genuine).unwrap();
    assert_eq!(repaired.first_known_index(), 0);
    assert_eq!(repaired.authenticated_from(), Some(256));
    for (i, m) in messages.iter().enumerate() {
        let d = repaired.decrypt(ROOM, m).unwrap();
        assert_eq!(d.plaintext, (i as u32).to_be_bytes());
        assert_eq!(d.authenticated, i >= 256, "index {i}");
    }
    // The same through a batch.
    let mut batch_copy = merged.merge(&genuine).unwrap();
    let results = batch_copy.decrypt_batch(ROOM, &messages);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.as_ref().unwrap().authenticated, i >= 256, "index {i}");
    }
}

#[test]
fn advance_forgets_history() {
    let (mut out, mut inb) = pair(11);
    let old: Vec<_> = (0..4).map(|i| out.encrypt(&[i]).unwrap()).collect();
    assert!(inb.advance_to(2));
    assert!(!inb.advance_to(1));
    assert_eq!(inb.first_known_index(), 2);
    assert!(matches!(
        inb.decrypt(ROOM, &old[1]),
        Err(GroupError::UnknownIndex { .. })
    ));
    assert_eq!(inb.decrypt(ROOM, &old[2]).unwrap().plaintext, [2]);
    assert_eq!(inb.decrypt(ROOM, &old[3]).unwrap().plaintext, [3]);
}

#[test]
fn out_of_order_and_repeated_decryption_work() {
    let (mut out, mut inb) = pair(12);
    let messages: Vec<_> = (0..10).map(|i| out.encrypt(&[i]).unwrap()).collect();
    for i in [9usize, 3, 0, 5, 5, 9, 1] {
        assert_eq!(
            inb.decrypt(ROOM, &messages[i]).unwrap().plaintext,
            [i as u8]
        );
    }
}

#[test]
fn batch_decrypt_matches_sequential() {
    let (mut out, mut inb) = pair(13);
    out.encrypt(b"skip").unwrap();
    let mut late = InboundGroupSession::new(&out.session_key()).unwrap();
    let mut messages: Vec<_> = (0..64).map(|i| out.encrypt(&[i]).unwrap()).collect();
    messages.reverse();
    let results = inb.decrypt_batch(ROOM, &messages);
    for (m, r) in messages.iter().zip(&results) {
        assert_eq!(r.as_ref().unwrap().plaintext, [m.message_index() as u8 - 1]);
    }
    // A tampered message fails alone; the others still decrypt.
    let mut mixed = messages.clone();
    mixed[10].ciphertext[0] ^= 1;
    let results = late.decrypt_batch(ROOM, &mixed);
    assert_eq!(results[10].as_ref().unwrap_err(), &GroupError::BadSignature);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 63);
    assert_eq!(late.decrypt_batch("", &mixed[..2]).len(), 2);
    assert!(late.decrypt_batch(ROOM, &[]).is_empty());
}

#[test]
fn session_key_tampering_is_rejected() {
    let (out, _) = pair(14);
    let key = out.session_key();
    let bytes = key.to_bytes();
    assert_eq!(bytes.len(), 165 + 64 + 2 + ROOM.len() + 64);
    assert_eq!(key.creator(), creator());
    assert_eq!(key.room_id(), ROOM);
    for i in 0..bytes.len() {
        let mut bad = bytes.to_vec();
        bad[i] ^= 1;
        match SessionKey::from_bytes(&bad) {
            Err(_) => {}
            Ok(k) => assert!(InboundGroupSession::new(&k).is_err(), "byte {i}"),
        }
    }
    assert!(SessionKey::from_bytes(&bytes[..228]).is_err());
    assert!(ExportedSessionKey::from_bytes(&bytes).is_err());
    assert_eq!(
        ExportedSessionKey::from_bytes(&bytes[..165])
            .unwrap()
            .first_index(),
        0
    );
}

#[test]
fn pickles_round_trip_and_are_small() {
    let (mut out, mut inb) = pair(15);
    let m0 = out.encrypt(b"a").unwrap();
    let key = PickleKey::from_bytes(&mut [4; 32]);
    let mut out2 = OutboundGroupSession::from_pickle(&out.pickle(&key), &key).unwrap();
    assert_eq!(out2.message_index(), 1);
    assert_eq!(out2.room_id(), ROOM);
    let text = inb.pickle(&key);
    assert!(text.len() < 400, "{} characters", text.len());
    let mut inb2 = InboundGroupSession::from_pickle(&text, &key).unwrap();
    assert_eq!(inb2.decrypt(ROOM, &m0).unwrap().plaintext, b"a");
    let m1 = out2.encrypt(b"b").unwrap();
    assert_eq!(inb.decrypt(ROOM, &m1).unwrap().plaintext, b"b");
    assert_eq!(inb2.decrypt(ROOM, &m1).unwrap().plaintext, b"b");
    assert!(InboundGroupSession::from_pickle(&out.pickle(&key), &key).is_err());
}

#[test]
fn debug_shows_no_secret_bytes() {
    let (out, inb) = pair(16);
    let key = out.session_key();
    let secret_bytes = key.ratchet.to_bytes();
    let secret_b64 = crate::keys::base64_encode(&secret_bytes.expose()[..32]);
    for debug in [
        format!("{out:?}"),
        format!("{inb:?}"),
        format!("{key:?}"),
        format!("{:?}", inb.export_at(0)),
    ] {
        assert!(!debug.contains(&secret_b64), "{debug}");
        assert!(
            !debug.contains(&format!("{:?}", &secret_bytes.expose()[..4])),
            "{debug}"
        );
    }
}

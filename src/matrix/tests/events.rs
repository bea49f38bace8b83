//! Event contents: the specification's examples parse, secrets never print,
//! and the strict parts are strict.

use serde_json::json;

use crate::matrix::{
    EncryptedContent, EventError, ForwardedRoomKeyContent, MegolmPayload, OlmMessageType,
    RoomEncryptionContent, RoomId, RoomKeyContent, RoomKeyWithheldContent, WithheldCode,
};

const CURVE: &str = "3C5BFWi2Y8MaVvjM8M22DBmh24PmgR0nPvJOIArzgyI";
const ED: &str = "lEuiRJBit0IG6nUf5pUzWTUEsRVVe/HJkoKuEww9ULI";

#[test]
fn encrypted_contents() {
    let olm = json!({
        "algorithm": "m.olm.v1.curve25519-aes-sha2",
        "sender_key": CURVE,
        "ciphertext": { CURVE: { "type": 1, "body": "Awo" } },
        "org.example": true
    });
    let EncryptedContent::Olm(parsed) = EncryptedContent::from_json(&olm.to_string()).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        parsed.ciphertext[CURVE].message_type,
        OlmMessageType::Normal
    );
    let megolm = json!({
        "algorithm": "m.megolm.v1.aes-sha2",
        "sender_key": CURVE, "device_id": "RJYKSTBOIE",
        "session_id": "X3lUlvLELLYxeTx4yOVu6UDpasGEVO0Jbu+QFnm0cKQ",
        "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg"
    });
    let content = EncryptedContent::from_json(&megolm.to_string()).unwrap();
    assert_eq!(content.to_json_value(), megolm);
    for (bad, expected) in [
        (
            json!({ "algorithm": "m.olm.v2" }),
            Some(EventError::UnsupportedAlgorithm),
        ),
        (json!({ "algorithm": 1 }), None),
        (json!({ "ciphertext": "x" }), None),
        (
            json!({ "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": 5, "session_id": "s" }),
            None,
        ),
        (
            json!({ "algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": "short",
                 "ciphertext": {} }),
            None,
        ),
    ] {
        let err = EncryptedContent::from_json(&bad.to_string()).unwrap_err();
        match expected {
            Some(e) => assert_eq!(err, e),
            None => assert!(matches!(err, EventError::Malformed(_)), "{bad}"),
        }
    }
    let huge = format!("{{\"algorithm\": \"{}\"}}", "x".repeat(70_000));
    assert!(matches!(
        EncryptedContent::from_json(&huge),
        Err(EventError::Malformed(_))
    ));
}

#[test]
fn room_keys_keep_their_secret() {
    let key: RoomKeyContent = serde_json::from_value(json!({
        "algorithm": "m.megolm.v1.aes-sha2",
        "room_id": "!Cuyf34gef24t:localhost",
        "session_id": "X3lUlvLELLYxeTx4yOVu6UDpasGEVO0Jbu+QFnm0cKQ",
        "session_key": "AgAAAADxKHa9uFxcXzwYoNueL5Xqi69IkD4sni8LlfJL7qNBEY"
    }))
    .unwrap();
    assert!(!key.shared_history);
    assert_eq!(
        key.session_key.expose(),
        "AgAAAADxKHa9uFxcXzwYoNueL5Xqi69IkD4sni8LlfJL7qNBEY"
    );
    let shown = format!("{key:?}");
    assert!(!shown.contains("AgAAAAD"), "{shown}");
    assert!(shown.contains("***"));

    let forwarded: ForwardedRoomKeyContent = serde_json::from_value(json!({
        "algorithm": "m.megolm.v1.aes-sha2",
        "room_id": "!Cuyf34gef24t:localhost",
        "sender_key": CURVE,
        "sender_claimed_ed25519_key": ED,
        "session_id": "X3lUlvLELLYxeTx4yOVu6UDpasGEVO0Jbu+QFnm0cKQ",
        "session_key": "AgAAAADxKHa9uFxcXzwYoNueL5Xqi69IkD4sni8LlfJL7qNBEY",
        "forwarding_curve25519_key_chain": [CURVE],
        "withheld": { "code": "m.unverified", "reason": "Device not verified" }
    }))
    .unwrap();
    assert!(!format!("{forwarded:?}").contains("AgAAAAD"));
    assert_eq!(forwarded.withheld.unwrap().code, WithheldCode::Unverified);
}

#[test]
fn withheld_codes_and_settings() {
    let notice: RoomKeyWithheldContent = serde_json::from_value(json!({
        "algorithm": "m.megolm.v1.aes-sha2", "sender_key": CURVE, "code": "m.no_olm",
        "reason": "Unable to establish a secure channel."
    }))
    .unwrap();
    assert_eq!(notice.code, WithheldCode::NoOlm);
    assert!(notice.room_id.is_none());
    for code in [
        "m.blacklisted",
        "m.unverified",
        "m.unauthorised",
        "m.unavailable",
        "m.no_olm",
        "m.history_not_shared",
        "org.example.custom",
    ] {
        let parsed: WithheldCode = serde_json::from_value(json!(code)).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), json!(code));
    }

    let settings: RoomEncryptionContent = serde_json::from_value(json!({
        "algorithm": "m.megolm.v1.aes-sha2",
        "rotation_period_ms": 604800000u64, "rotation_period_msgs": 100
    }))
    .unwrap();
    assert!(settings.is_megolm());
    assert_eq!(settings.rotation_policy(), crate::RotationPolicy::default());
    let zero = RoomEncryptionContent {
        rotation_period_msgs: Some(0),
        rotation_period_ms: Some(0),
        ..RoomEncryptionContent::megolm()
    };
    assert_eq!(zero.rotation_policy().max_messages, 1);
    let huge = RoomEncryptionContent {
        rotation_period_msgs: Some(u64::MAX),
        ..RoomEncryptionContent::megolm()
    };
    assert_eq!(huge.rotation_policy().max_messages, u32::MAX);
}

#[test]
fn megolm_payload_is_bound_to_its_room() {
    let room = RoomId::parse("!r:x").unwrap();
    let text = r#"{"type": "m.room.message", "content": {"body": "hi"}, "room_id": "!r:x"}"#;
    let payload = MegolmPayload::from_json_in_room(text, &room).unwrap();
    assert_eq!(payload.event_type, "m.room.message");
    let other = RoomId::parse("!s:x").unwrap();
    assert_eq!(
        MegolmPayload::from_json_in_room(text, &other).unwrap_err(),
        EventError::RoomMismatch
    );
    assert!(MegolmPayload::from_json_in_room(r#"{"type": "x", "content": {}}"#, &room).is_err());
}

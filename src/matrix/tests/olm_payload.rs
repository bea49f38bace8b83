//! The checks on a decrypted Olm payload, one failing check at a time.

use serde_json::{Value, json};

use super::TestDevice;
use crate::matrix::{
    Device, DeviceKeysError, OlmContext, OlmPayload, OlmPayloadError, SenderDevice, SignatureError,
};

struct Setup {
    alice: TestDevice,
    bob: TestDevice,
}

impl Setup {
    fn new() -> Self {
        Self {
            alice: TestDevice::new("@alice:a.org", "ALICE"),
            bob: TestDevice::new("@bob:b.org", "BOB"),
        }
    }

    /// What Bob would encrypt to Alice.
    fn payload(&self) -> Value {
        json!({
            "type": "m.room_key",
            "content": { "algorithm": "m.megolm.v1.aes-sha2" },
            "sender": "@bob:b.org",
            "recipient": "@alice:a.org",
            "recipient_keys": { "ed25519": self.alice.account.identity_keys().ed25519 },
            "keys": { "ed25519": self.bob.account.identity_keys().ed25519 },
        })
    }

    fn bob_device(&self) -> Device {
        Device::from_signed_object(&self.bob.user, &self.bob.device, &self.bob.keys_json()).unwrap()
    }

    fn check(
        &self,
        payload: &Value,
        known: Option<&Device>,
    ) -> Result<SenderDevice, OlmPayloadError> {
        let own_ed = self.alice.account.identity_keys().ed25519;
        let sender_key = self.bob.account.identity_keys().curve25519;
        let context = OlmContext {
            event_sender: &self.bob.user,
            sender_key: &sender_key,
            own_user: &self.alice.user,
            own_ed25519: &own_ed,
            known_sender: known,
        };
        OlmPayload::from_json(&payload.to_string())?
            .check(&context)
            .map(|checked| checked.sender_device)
    }
}

#[test]
fn a_good_payload_passes_with_or_without_device_keys() {
    let s = Setup::new();
    let bob = s.bob_device();
    assert_eq!(
        s.check(&s.payload(), Some(&bob)).unwrap(),
        SenderDevice::Confirmed(bob.clone())
    );
    assert_eq!(
        s.check(&s.payload(), None).unwrap(),
        SenderDevice::Unconfirmed {
            claimed_ed25519: bob.keys().ed25519
        }
    );
    let mut with_keys = s.payload();
    with_keys["sender_device_keys"] = Value::Object(s.bob.keys_json());
    assert_eq!(
        s.check(&with_keys, None).unwrap(),
        SenderDevice::Confirmed(bob.clone())
    );
    assert_eq!(
        s.check(&with_keys, Some(&bob)).unwrap(),
        SenderDevice::Confirmed(bob)
    );
}

#[test]
fn every_check_fails_on_its_own() {
    let s = Setup::new();
    let bob = s.bob_device();
    let mallory = TestDevice::new("@mallory:m.org", "EVIL");
    let other_alice = TestDevice::new("@alice:a.org", "ALICE2");
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut p = s.payload();
        f(&mut p);
        p
    };
    let cases: Vec<(Value, Option<&Device>, OlmPayloadError)> = vec![
        (
            edit(&|p| p["sender"] = json!("@mallory:m.org")),
            Some(&bob),
            OlmPayloadError::SenderMismatch,
        ),
        (
            edit(&|p| p["recipient"] = json!("@carol:c.org")),
            Some(&bob),
            OlmPayloadError::RecipientMismatch,
        ),
        (
            edit(&|p| {
                p["recipient_keys"]["ed25519"] = json!(other_alice.account.identity_keys().ed25519)
            }),
            Some(&bob),
            OlmPayloadError::RecipientKeyMismatch,
        ),
        (
            edit(&|p| p["keys"]["ed25519"] = json!(mallory.account.identity_keys().ed25519)),
            Some(&bob),
            OlmPayloadError::SenderKeyMismatch,
        ),
        // sender_device_keys of another user.
        (
            edit(&|p| p["sender_device_keys"] = Value::Object(mallory.keys_json())),
            None,
            OlmPayloadError::SenderDeviceKeys(DeviceKeysError::UserIdMismatch),
        ),
        // A valid device of Bob's, but not the one owning the session key.
        (
            {
                let bob2 = TestDevice::new("@bob:b.org", "BOB2");
                let mut p = s.payload();
                p["keys"]["ed25519"] = json!(bob2.account.identity_keys().ed25519);
                p["sender_device_keys"] = Value::Object(bob2.keys_json());
                p
            },
            None,
            OlmPayloadError::SenderDeviceMismatch,
        ),
        // Bob's real device keys with a forged signature.
        (
            edit(&|p| {
                let mut keys = s.bob.keys_json();
                keys["algorithms"] = json!(["x"]);
                p["sender_device_keys"] = Value::Object(keys);
            }),
            None,
            OlmPayloadError::SenderDeviceKeys(DeviceKeysError::Signature(SignatureError::Invalid)),
        ),
        (
            edit(&|p| p["sender_device_keys"] = json!({ "user_id": "@bob:b.org" })),
            None,
            OlmPayloadError::SenderDeviceKeys(DeviceKeysError::InvalidId),
        ),
    ];
    for (payload, known, expected) in cases {
        assert_eq!(s.check(&payload, known), Err(expected), "{payload}");
    }
    // The tracker's device for the session key belongs to another user.
    let mallory_dev =
        Device::from_signed_object(&mallory.user, &mallory.device, &mallory.keys_json()).unwrap();
    assert_eq!(
        s.check(&s.payload(), Some(&mallory_dev)),
        Err(OlmPayloadError::SenderMismatch)
    );
}

#[test]
fn malformed_payloads() {
    let s = Setup::new();
    for text in ["", "{}", r#"{"type": "m.dummy", "content": {}}"#, "[1]"] {
        assert!(
            matches!(
                OlmPayload::from_json(text),
                Err(OlmPayloadError::Malformed(_))
            ),
            "{text}"
        );
    }
    let mut p = s.payload();
    p["keys"]["ed25519"] = json!("AAAA");
    assert!(matches!(
        s.check(&p, None),
        Err(OlmPayloadError::Malformed(_))
    ));
    p = s.payload();
    p["content"] = json!("x".repeat(70_000));
    assert!(matches!(
        s.check(&p, None),
        Err(OlmPayloadError::Malformed(_))
    ));
}

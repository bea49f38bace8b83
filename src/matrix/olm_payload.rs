//! The plaintext inside an Olm message (`m.olm.v1.curve25519-aes-sha2`) and
//! the checks the specification requires before any of it is used:
//! `sender`, `recipient`, `recipient_keys`, `keys` and, when present,
//! `sender_device_keys`.
//!
//! This is the seam where Olm decryption plugs in: decrypt the ciphertext
//! addressed to this device, then pass the plaintext to
//! [`OlmPayload::from_json`] and [`OlmPayload::check`]; only a
//! [`CheckedOlmPayload`] may be acted on.
//!
//! Guarantees: a checked payload's `sender` is the event's sender, it was
//! addressed to this user and this device's Ed25519 key, and the sender's
//! Ed25519 key is either confirmed (it belongs to the device that owns the
//! Curve25519 key the Olm session runs with, by a checked device-keys
//! object) or reported as unconfirmed, never silently trusted.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use thiserror::Error;

use super::device_keys::{Device, DeviceKeysError};
use super::ids::{DeviceId, UserId};
use super::json::{JsonError, check_item_len, check_len, parse};
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey};

/// Why a decrypted Olm payload must be discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum OlmPayloadError {
    /// Not JSON of the payload's shape, or too large.
    #[error("malformed Olm payload: {0}")]
    Malformed(#[from] JsonError),
    /// `sender` is not the to-device event's sender, or the device that
    /// owns the session key belongs to another user.
    #[error("payload sender is not the event sender")]
    SenderMismatch,
    /// `recipient` is not this user.
    #[error("payload addressed to another user")]
    RecipientMismatch,
    /// `recipient_keys.ed25519` is not this device's key.
    #[error("payload addressed to another device")]
    RecipientKeyMismatch,
    /// `keys.ed25519` is not the Ed25519 key of the device that owns the
    /// session's Curve25519 key.
    #[error("payload claims another sender key")]
    SenderKeyMismatch,
    /// `sender_device_keys` is present but not a valid, self-signed
    /// device-keys object of the sender.
    #[error("invalid sender_device_keys: {0}")]
    SenderDeviceKeys(DeviceKeysError),
    /// `sender_device_keys` describes another device than the one the
    /// session runs with (its Curve25519 key differs).
    #[error("sender_device_keys describe another device")]
    SenderDeviceMismatch,
}

/// `{"ed25519": ...}`, the signing keys named in a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeys {
    /// An Ed25519 key.
    pub ed25519: Ed25519PublicKey,
}

/// The plaintext of an Olm message, parsed but not checked.
#[derive(Debug, Deserialize)]
pub struct OlmPayload {
    /// The inner event's type (`m.room_key`, `m.dummy`, ...).
    #[serde(rename = "type")]
    pub event_type: String,
    /// The inner event's content.
    pub content: Box<RawValue>,
    /// The sending user, as the sender wrote it.
    pub sender: UserId,
    /// The user it is addressed to.
    pub recipient: UserId,
    /// The Ed25519 key of the device it is addressed to.
    pub recipient_keys: SigningKeys,
    /// The sending device's Ed25519 key, as claimed.
    pub keys: SigningKeys,
    /// The sending device's signed device keys (Matrix 1.15), if sent.
    #[serde(default)]
    pub sender_device_keys: Option<Map<String, Value>>,
}

/// What a payload is checked against.
#[derive(Clone, Copy, Debug)]
pub struct OlmContext<'a> {
    /// The `sender` of the to-device event (set by the server).
    pub event_sender: &'a UserId,
    /// The Curve25519 identity key of the Olm session's peer (the one that
    /// decrypted the message, equal to the event's `sender_key`).
    pub sender_key: &'a Curve25519PublicKey,
    /// This device's user.
    pub own_user: &'a UserId,
    /// This device's Ed25519 key.
    pub own_ed25519: &'a Ed25519PublicKey,
    /// The device the tracker knows with `sender_key`, if any
    /// ([`super::DeviceTracker::device_by_curve25519`]).
    pub known_sender: Option<&'a Device>,
}

/// Whether the sending device's Ed25519 key is confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SenderDevice {
    /// A checked device-keys object (from `/keys/query` or
    /// `sender_device_keys`) binds this Ed25519 key to the session's
    /// Curve25519 key and the sender.
    Confirmed(Device),
    /// No device keys were available: the Ed25519 key is only claimed.
    /// Query the sender's keys before trusting anything that depends on it.
    Unconfirmed {
        /// The claimed Ed25519 key (`keys.ed25519`).
        claimed_ed25519: Ed25519PublicKey,
    },
}

/// A payload that passed every check.
#[derive(Debug)]
pub struct CheckedOlmPayload {
    /// The sender (equal to the event's sender).
    pub sender: UserId,
    /// The sending device, confirmed or not.
    pub sender_device: SenderDevice,
    /// The inner event's type.
    pub event_type: String,
    /// The inner event's content.
    pub content: Box<RawValue>,
}

impl OlmPayload {
    /// Parses a decrypted plaintext (at most
    /// [`crate::consts::MAX_JSON_ITEM_LEN`] bytes).
    pub fn from_json(text: &str) -> Result<Self, OlmPayloadError> {
        check_len(text, "Olm payload")?;
        let payload: Self = parse(text)?;
        check_item_len(&payload.content, "event content")?;
        Ok(payload)
    }

    /// Applies the specification's checks, in its order.
    pub fn check(self, context: &OlmContext<'_>) -> Result<CheckedOlmPayload, OlmPayloadError> {
        if &self.sender != context.event_sender {
            return Err(OlmPayloadError::SenderMismatch);
        }
        if &self.recipient != context.own_user {
            return Err(OlmPayloadError::RecipientMismatch);
        }
        if &self.recipient_keys.ed25519 != context.own_ed25519 {
            return Err(OlmPayloadError::RecipientKeyMismatch);
        }
        let from_payload = match &self.sender_device_keys {
            Some(object) => Some(self.sender_device(object, context)?),
            None => None,
        };
        let confirmed = match (context.known_sender, from_payload) {
            (Some(known), _) => {
                if known.user_id() != &self.sender {
                    return Err(OlmPayloadError::SenderMismatch);
                }
                Some(known.clone())
            }
            (None, from_payload) => from_payload,
        };
        let sender_device = match confirmed {
            Some(device) if device.keys().ed25519 != self.keys.ed25519 => {
                return Err(OlmPayloadError::SenderKeyMismatch);
            }
            Some(device) => SenderDevice::Confirmed(device),
            None => SenderDevice::Unconfirmed {
                claimed_ed25519: self.keys.ed25519,
            },
        };
        Ok(CheckedOlmPayload {
            sender: self.sender,
            sender_device,
            event_type: self.event_type,
            content: self.content,
        })
    }

    /// Checks `sender_device_keys`: the sender's, self-signed, for the
    /// session's Curve25519 key and the claimed Ed25519 key.
    fn sender_device(
        &self,
        object: &Map<String, Value>,
        context: &OlmContext<'_>,
    ) -> Result<Device, OlmPayloadError> {
        let device_id = object
            .get("device_id")
            .and_then(Value::as_str)
            .and_then(|d| DeviceId::parse(d).ok())
            .ok_or(OlmPayloadError::SenderDeviceKeys(
                DeviceKeysError::InvalidId,
            ))?;
        let device = Device::from_signed_object(&self.sender, &device_id, object)
            .map_err(OlmPayloadError::SenderDeviceKeys)?;
        if &device.keys().curve25519 != context.sender_key {
            return Err(OlmPayloadError::SenderDeviceMismatch);
        }
        if device.keys().ed25519 != self.keys.ed25519 {
            return Err(OlmPayloadError::SenderKeyMismatch);
        }
        Ok(device)
    }
}

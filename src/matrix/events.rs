//! The contents of the end-to-end encryption events: `m.room.encrypted`
//! (Olm to a device, Megolm in a room), `m.room_key`,
//! `m.forwarded_room_key`, `m.room_key.withheld`, `m.dummy` and the
//! `m.room.encryption` state event, plus the plaintext inside a Megolm
//! message.
//!
//! Guarantees: every content parses strictly where the protocol depends on
//! it (algorithms, key encodings, Olm message types) and tolerates fields it
//! does not know; a session key is held in a [`SessionKeyText`] that is
//! wiped on drop and never printed; no content can be larger than
//! [`MAX_JSON_ITEM_LEN`](crate::consts::MAX_JSON_ITEM_LEN) when parsed from text.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::device_keys::{MEGOLM_V1, OLM_V1};
use super::ids::{DeviceId, RoomId};
use super::json::{JsonError, check_len, from_object, parse};
use crate::RotationPolicy;
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey};

/// `m.room.encrypted`.
pub const ROOM_ENCRYPTED: &str = "m.room.encrypted";
/// `m.room_key`.
pub const ROOM_KEY: &str = "m.room_key";
/// `m.forwarded_room_key`.
pub const FORWARDED_ROOM_KEY: &str = "m.forwarded_room_key";
/// `m.room_key.withheld`.
pub const ROOM_KEY_WITHHELD: &str = "m.room_key.withheld";
/// `m.dummy`.
pub const DUMMY: &str = "m.dummy";
/// `m.room.encryption`.
pub const ROOM_ENCRYPTION: &str = "m.room.encryption";

/// Why an event or its content was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EventError {
    /// Not JSON of the content's shape, or too large.
    #[error("malformed event: {0}")]
    Malformed(#[from] JsonError),
    /// The `algorithm` is not one this layer speaks.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// A key-carrying event arrived in the clear; keys are only accepted
    /// inside an Olm-encrypted to-device message.
    #[error("key event received unencrypted")]
    Unencrypted,
    /// The plaintext of a Megolm message names another room than the one
    /// the event was sent in (the server moved it).
    #[error("event decrypted for another room")]
    RoomMismatch,
}

/// A Megolm session key in its base64 text form, as `m.room_key` and
/// `m.forwarded_room_key` carry it. Wiped when dropped, printed as `***`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionKeyText(String);

impl SessionKeyText {
    /// Wraps a key's text.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The key's text, for the Megolm layer to parse.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionKeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeyText(***)")
    }
}

/// The type of an Olm message: `0` pre-key, `1` normal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OlmMessageType {
    /// A pre-key message (type 0): can start a new session.
    PreKey = 0,
    /// A normal message (type 1): only an existing session can read it.
    Normal = 1,
}

impl Serialize for OlmMessageType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(match self {
            OlmMessageType::PreKey => 0,
            OlmMessageType::Normal => 1,
        })
    }
}

impl<'de> Deserialize<'de> for OlmMessageType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u8::deserialize(deserializer)? {
            0 => Ok(OlmMessageType::PreKey),
            1 => Ok(OlmMessageType::Normal),
            _ => Err(serde::de::Error::custom("Olm message type must be 0 or 1")),
        }
    }
}

/// One recipient's Olm ciphertext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OlmCiphertext {
    /// Pre-key or normal message.
    #[serde(rename = "type")]
    pub message_type: OlmMessageType,
    /// The Olm message, base64.
    pub body: String,
}

/// `m.room.encrypted` content with Olm (to-device).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OlmEncryptedContent {
    /// The sender's Curve25519 identity key.
    pub sender_key: Curve25519PublicKey,
    /// Recipient Curve25519 identity key (base64) to its ciphertext.
    pub ciphertext: BTreeMap<String, OlmCiphertext>,
}

impl OlmEncryptedContent {
    /// The ciphertext addressed to the device whose identity key is
    /// `recipient` (keys that do not parse never match).
    pub fn ciphertext_for(&self, recipient: &Curve25519PublicKey) -> Option<&OlmCiphertext> {
        self.ciphertext
            .iter()
            .find(|(key, _)| Curve25519PublicKey::from_base64(key).ok().as_ref() == Some(recipient))
            .map(|(_, ciphertext)| ciphertext)
    }
}

/// `m.room.encrypted` content with Megolm (a room event).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MegolmEncryptedContent {
    /// The Megolm message, base64.
    pub ciphertext: String,
    /// The Megolm session id.
    pub session_id: String,
    /// Deprecated: sent for older clients, never used to find a session or
    /// a sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_key: Option<String>,
    /// Deprecated: sent for older clients, never used to find a session or
    /// a sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

/// The content of an `m.room.encrypted` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncryptedContent {
    /// Olm, to a device.
    Olm(OlmEncryptedContent),
    /// Megolm, in a room.
    Megolm(MegolmEncryptedContent),
}

/// Just the `algorithm` member, to choose a content type.
#[derive(Deserialize)]
struct AlgorithmOnly<'a> {
    #[serde(borrow)]
    algorithm: std::borrow::Cow<'a, str>,
}

impl EncryptedContent {
    /// Parses a content from JSON text (at most [`MAX_JSON_ITEM_LEN`](crate::consts::MAX_JSON_ITEM_LEN)
    /// bytes).
    pub fn from_json(text: &str) -> Result<Self, EventError> {
        check_len(text, "event")?;
        let object: Map<String, Value> = parse(text)?;
        Self::from_object(&object)
    }

    /// Reads a parsed content.
    pub fn from_object(object: &Map<String, Value>) -> Result<Self, EventError> {
        let AlgorithmOnly { algorithm } = from_object(object)?;
        match algorithm.as_ref() {
            OLM_V1 => Ok(Self::Olm(from_object(object)?)),
            MEGOLM_V1 => Ok(Self::Megolm(from_object(object)?)),
            _ => Err(EventError::UnsupportedAlgorithm),
        }
    }

    /// The JSON content, with its `algorithm`.
    pub fn to_json_value(&self) -> Value {
        let (algorithm, value) = match self {
            Self::Olm(c) => (OLM_V1, serde_json::to_value(c)),
            Self::Megolm(c) => (MEGOLM_V1, serde_json::to_value(c)),
        };
        let mut object = match value {
            Ok(Value::Object(object)) => object,
            _ => Map::new(),
        };
        object.insert("algorithm".to_owned(), Value::String(algorithm.to_owned()));
        Value::Object(object)
    }
}

/// `m.room_key`: a Megolm session shared by its creator (inside Olm).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoomKeyContent {
    /// Always [`MEGOLM_V1`] for a key this layer accepts.
    pub algorithm: String,
    /// The room the session encrypts.
    pub room_id: RoomId,
    /// The session id.
    pub session_id: String,
    /// The session key (secret).
    pub session_key: SessionKeyText,
    /// Whether the creator lets the key be shared with users invited later.
    #[serde(default)]
    pub shared_history: bool,
}

/// The `code` and `reason` of a withheld notice, as copied into a
/// forwarded key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithheldInfo {
    /// Why the key was withheld.
    pub code: WithheldCode,
    /// A human-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `m.forwarded_room_key`: a Megolm session forwarded by another device
/// (inside Olm). Its claims about the original sender are unauthenticated.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardedRoomKeyContent {
    /// The session's algorithm.
    pub algorithm: String,
    /// The room the session encrypts.
    pub room_id: RoomId,
    /// The Curve25519 key of the device that created the session (claimed).
    pub sender_key: Curve25519PublicKey,
    /// The session id.
    pub session_id: String,
    /// The exported session key (secret).
    pub session_key: SessionKeyText,
    /// The Ed25519 key of the device that created the session (claimed).
    pub sender_claimed_ed25519_key: Ed25519PublicKey,
    /// Curve25519 keys of the devices the key passed through, oldest first.
    pub forwarding_curve25519_key_chain: Vec<String>,
    /// Set when part of the session was withheld from the forwarder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<WithheldInfo>,
}

/// Why a room key was not sent (`m.room_key.withheld`'s `code`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WithheldCode {
    /// `m.blacklisted`: the recipient is blacklisted.
    Blacklisted,
    /// `m.unverified`: the sender shares only with verified devices.
    Unverified,
    /// `m.unauthorised`: the recipient may not have the key.
    Unauthorised,
    /// `m.unavailable`: the sender does not have the key.
    Unavailable,
    /// `m.no_olm`: no Olm session could be established.
    NoOlm,
    /// `m.history_not_shared`: the session was not marked shareable.
    HistoryNotShared,
    /// A code this layer does not know.
    Other(String),
}

impl WithheldCode {
    /// The code's text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Blacklisted => "m.blacklisted",
            Self::Unverified => "m.unverified",
            Self::Unauthorised => "m.unauthorised",
            Self::Unavailable => "m.unavailable",
            Self::NoOlm => "m.no_olm",
            Self::HistoryNotShared => "m.history_not_shared",
            Self::Other(code) => code,
        }
    }
}

impl From<String> for WithheldCode {
    fn from(code: String) -> Self {
        match code.as_str() {
            "m.blacklisted" => Self::Blacklisted,
            "m.unverified" => Self::Unverified,
            "m.unauthorised" => Self::Unauthorised,
            "m.unavailable" => Self::Unavailable,
            "m.no_olm" => Self::NoOlm,
            "m.history_not_shared" => Self::HistoryNotShared,
            _ => Self::Other(code),
        }
    }
}

impl Serialize for WithheldCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WithheldCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

/// `m.room_key.withheld` (sent in the clear): a device says it is not
/// sending a room key, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomKeyWithheldContent {
    /// The algorithm of the withheld key.
    pub algorithm: String,
    /// The room (absent for `m.no_olm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<RoomId>,
    /// The session (absent for `m.no_olm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The withholding device's Curve25519 key.
    pub sender_key: Curve25519PublicKey,
    /// Why.
    pub code: WithheldCode,
    /// A human-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The withholding device's id (MSC3735, sent by current clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_device: Option<DeviceId>,
}

/// `m.dummy`: sent over a new Olm session to make it known; empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DummyContent {}

/// `m.room.encryption`: the room's encryption settings (state event).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEncryptionContent {
    /// The room algorithm; only [`MEGOLM_V1`] is defined.
    pub algorithm: String,
    /// Rotate the room key after this long, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period_ms: Option<u64>,
    /// Rotate the room key after this many messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period_msgs: Option<u64>,
}

impl RoomEncryptionContent {
    /// Megolm settings with the recommended rotation (a week, 100
    /// messages).
    pub fn megolm() -> Self {
        Self {
            algorithm: MEGOLM_V1.to_owned(),
            rotation_period_ms: None,
            rotation_period_msgs: None,
        }
    }

    /// Whether the room uses Megolm version 1 (any other algorithm means
    /// this layer cannot send in the room).
    pub fn is_megolm(&self) -> bool {
        self.algorithm == MEGOLM_V1
    }

    /// The rotation policy: the room's periods where set (a zero period
    /// becomes 1, so a key is never used forever), the defaults elsewhere.
    pub fn rotation_policy(&self) -> RotationPolicy {
        let default = RotationPolicy::default();
        RotationPolicy {
            max_messages: self.rotation_period_msgs.map_or(default.max_messages, |n| {
                u32::try_from(n.max(1)).unwrap_or(u32::MAX)
            }),
            max_age: self.rotation_period_ms.map_or(default.max_age, |ms| {
                std::time::Duration::from_millis(ms.max(1))
            }),
        }
    }
}

/// The plaintext of a Megolm message: `{"type", "content", "room_id"}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct MegolmPayload {
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event content.
    pub content: Box<RawValue>,
    /// The room the sender encrypted the event for.
    pub room_id: RoomId,
}

impl MegolmPayload {
    /// Parses a decrypted plaintext and checks it was meant for `room`.
    pub fn from_json_in_room(text: &str, room: &RoomId) -> Result<Self, EventError> {
        check_len(text, "event")?;
        let payload: Self = parse(text)?;
        if &payload.room_id != room {
            return Err(EventError::RoomMismatch);
        }
        Ok(payload)
    }
}

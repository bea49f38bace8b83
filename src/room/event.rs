//! The encrypted event envelope the server stores, and what decrypting one
//! yields.
//!
//! The envelope is JSON: `algorithm`, `sender_key` (the sending device's
//! X25519 identity key), `session_id` and `ciphertext` (a group message in
//! unpadded base64). The group message's plaintext is the JSON object
//! `{"type": ..., "content": ...}`.

use serde::{Deserialize, Serialize};

use super::RoomError;
use crate::consts::MAX_PLAINTEXT_LEN;
use crate::group::{GroupMessage, GroupSessionId};
use crate::keys::{Curve25519PublicKey, IdentityKeys};

/// The algorithm name of roomseal's native room encryption, version 1.
pub const ROOM_ALGORITHM: &str = "roomseal.v2.room";

/// An encrypted room event as the server stores and relays it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedEvent {
    /// Always [`ROOM_ALGORITHM`].
    pub algorithm: String,
    /// The sending device's X25519 identity key.
    pub sender_key: Curve25519PublicKey,
    /// The group session the event was encrypted with.
    pub session_id: GroupSessionId,
    /// The group message (signed, encrypted), base64 in JSON.
    pub ciphertext: GroupMessage,
}

impl EncryptedEvent {
    /// Parses the JSON form, rejecting anything malformed with a typed error.
    pub fn from_json(json: &str) -> Result<Self, RoomError> {
        if json.len() > 2 * MAX_PLAINTEXT_LEN {
            return Err(RoomError::InvalidEnvelope);
        }
        serde_json::from_str(json).map_err(|_| RoomError::InvalidEnvelope)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        // Serializing these fields (strings only) cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A decrypted room event. `Debug` shows the event type and metadata but
/// not the content, so logging one does not log what was said.
#[derive(Clone, PartialEq, Eq)]
pub struct DecryptedEvent {
    /// The event type, for example `m.room.message`.
    pub event_type: String,
    /// The event content.
    pub content: serde_json::Value,
    /// The identity keys of the device whose group session encrypted it
    /// (authenticated when `authenticated` is true).
    pub sender: IdentityKeys,
    /// The sending device's user id, as bound when the room key was shared
    /// (checked against the user the server delivered the share from, and
    /// against the device's bundle when one was seen). `None` when the key
    /// is known only from an import. That the user owns the device is the
    /// server's word until the app verifies the device.
    pub sender_user_id: Option<String>,
    /// The sending device's device id, as bound when the room key was
    /// shared (`None` for an imported key).
    pub sender_device_id: Option<String>,
    /// The group session that encrypted it.
    pub session_id: GroupSessionId,
    /// The ratchet index of the message.
    pub message_index: u32,
    /// Whether the key for this message's index came signed from its
    /// creator over a pairwise session (`true`), or only from an import or
    /// forward (`false`).
    pub authenticated: bool,
}

impl std::fmt::Debug for DecryptedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptedEvent")
            .field("event_type", &self.event_type)
            .field("sender", &self.sender)
            .field("sender_user_id", &self.sender_user_id)
            .field("sender_device_id", &self.sender_device_id)
            .field("session_id", &self.session_id)
            .field("message_index", &self.message_index)
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

/// The plaintext inside a group message.
#[derive(Serialize, Deserialize)]
pub(crate) struct EventPlaintext {
    #[serde(rename = "type")]
    pub(crate) event_type: String,
    pub(crate) content: serde_json::Value,
}

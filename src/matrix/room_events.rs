//! Room events: [`MatrixEndpoint::encrypt_room_event`] makes the
//! `m.room.encrypted` content current clients emit (`algorithm`,
//! `ciphertext`, `session_id`, and the deprecated `sender_key` and
//! `device_id`, which clients still expect); [`MatrixEndpoint::decrypt_room_event`]
//! reads one.
//!
//! Decryption, in order (PROTOCOL.md 18): the event's room must be the room
//! it is decrypted in; the key is found by room and session id only (never
//! by `sender_key` or `device_id`); an index below the replay record's floor,
//! or already used by another event id, is refused before any work; the
//! Megolm message is verified and decrypted; the plaintext must name this
//! room; the event's `sender` must be the user the key came from, and the
//! device the tracker holds for the key's Curve25519 key must belong to that
//! user (with the Ed25519 key the key was shared with); only then is the
//! index recorded with the event id. The result says whether the sender is
//! authenticated (a key shared directly by its creator over Olm, at an index
//! its signed ratchet covers) or not (a forwarded key).
//!
//! Guarantees: any failure changes nothing persistent; the same event
//! decrypts again (clients re-render), the same index under another event
//! id is [`RoomEventError::Replay`] (Element's engine accepts it; roomseal
//! does not).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

use super::device_keys::MEGOLM_V1;
use super::endpoint::MatrixEndpoint;
use super::events::{EncryptedContent, MegolmEncryptedContent, MegolmPayload, WithheldCode};
use super::ids::{DeviceId, RoomId, UserId};
use super::json::{JsonError, check_len, parse};
use super::room_keys::{ReplayRefusal, RoomKeySource, StoreRefusal};
use crate::consts::MAX_ID_LEN;
use crate::group::{GroupError, GroupSessionId};
use crate::keys::Curve25519PublicKey;
use crate::megolm::MegolmMessage;
use crate::room::RotationReason;

/// Why a room event could not be encrypted or decrypted. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoomEventError {
    /// The event is not JSON of an `m.room.encrypted` event's shape, or
    /// its ciphertext or session id does not decode.
    #[error("malformed event: {0}")]
    Malformed(JsonError),
    /// The event's algorithm (or the room's) is not `m.megolm.v1.aes-sha2`.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The event id or event type is empty or longer than 255 bytes.
    #[error("invalid {0}")]
    InvalidId(&'static str),
    /// No key for the room and session is held. `withheld` is the code of an
    /// `m.room_key.withheld` notice received for it, if any.
    #[error("no room key for this event")]
    UnknownRoomKey {
        /// Why the sender said it withheld the key, if it did.
        withheld: Option<WithheldCode>,
    },
    /// The Megolm layer refused the message (signature, MAC, an index
    /// before the key's first one).
    #[error("{0}")]
    Megolm(GroupError),
    /// The event, or its plaintext, names another room.
    #[error("event for another room")]
    RoomMismatch,
    /// The event's sender is not the user (or device) the key came from.
    #[error("event sender does not own the session")]
    SenderMismatch,
    /// The index was already used by another event: a replay.
    #[error("message index {index} already used by another event")]
    Replay {
        /// The index.
        index: u32,
    },
    /// The index is below what the replay record still remembers.
    #[error("message index {index} is no longer accepted")]
    Forgotten {
        /// The index.
        index: u32,
    },
    /// The room key must be shared first ([`MatrixEndpoint::share_room_key`]):
    /// never shared, expired under the room's settings, or dropped.
    #[error("share the room key first: {0}")]
    ShareRequired(RotationReason),
}

/// An `m.room.encrypted` room event as the server delivers it (other
/// members are ignored).
#[derive(Clone, Debug, Deserialize)]
pub struct EncryptedRoomEvent {
    /// The event id the server assigned.
    pub event_id: String,
    /// The sending user (set by the server).
    pub sender: UserId,
    /// The room, when the server includes it.
    #[serde(default)]
    pub room_id: Option<RoomId>,
    /// The content.
    pub content: MegolmEncryptedContentIn,
}

/// The content of a Megolm room event, with its algorithm.
#[derive(Clone, Debug, Deserialize)]
pub struct MegolmEncryptedContentIn {
    /// Must be `m.megolm.v1.aes-sha2`.
    pub algorithm: String,
    /// The rest.
    #[serde(flatten)]
    pub content: MegolmEncryptedContent,
}

impl EncryptedRoomEvent {
    /// Parses the JSON of a whole event (at most
    /// [`crate::consts::MAX_JSON_ITEM_LEN`] bytes).
    pub fn from_json(text: &str) -> Result<Self, RoomEventError> {
        check_len(text, "event").map_err(RoomEventError::Malformed)?;
        parse(text).map_err(RoomEventError::Malformed)
    }
}

/// A decrypted room event.
#[derive(Debug)]
pub struct DecryptedRoomEvent {
    /// The event type inside.
    pub event_type: String,
    /// The content inside.
    pub content: Box<RawValue>,
    /// The sending user (the event's `sender`, checked against the key).
    pub sender: UserId,
    /// The Curve25519 key of the device that created the session (claimed
    /// when `authenticated` is false).
    pub sender_key: Curve25519PublicKey,
    /// The sending device, when known (from the key, or the tracker).
    pub sender_device: Option<DeviceId>,
    /// Whether the tracker holds the sending device (checked to be the
    /// sender's, with the key's Ed25519 key); false means the device keys
    /// have not been queried yet.
    pub sender_device_confirmed: bool,
    /// The Megolm session.
    pub session_id: GroupSessionId,
    /// The message index.
    pub message_index: u32,
    /// How the key came.
    pub key_source: RoomKeySource,
    /// Whether the sender is authenticated: a key its creator shared over
    /// Olm (or our own), at an index its signed ratchet covers. False for a
    /// forwarded key.
    pub authenticated: bool,
}

/// The plaintext of an outgoing Megolm message.
#[derive(Serialize)]
struct OutgoingEvent<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    content: &'a RawValue,
    room_id: &'a RoomId,
}

impl MatrixEndpoint {
    /// Encrypts a room event with the room's current Megolm session. Never
    /// rotates: with no session, or one the room's settings say is expired,
    /// it fails with [`RoomEventError::ShareRequired`] (share first, with the
    /// room's members). Returns the `m.room.encrypted` content.
    pub fn encrypt_room_event(
        &mut self,
        room: &RoomId,
        event_type: &str,
        content: &RawValue,
    ) -> Result<MegolmEncryptedContent, RoomEventError> {
        if event_type.is_empty() || event_type.len() > MAX_ID_LEN {
            return Err(RoomEventError::InvalidId("event type"));
        }
        let settings = self.room_encryption(room);
        if !settings.is_megolm() {
            return Err(RoomEventError::UnsupportedAlgorithm);
        }
        let now = self.now_ms();
        let sender_key = self.identity_keys().curve25519.to_base64();
        let device_id = self.device_id().as_str().to_owned();
        // Encrypting advances the session only: its recipients' record is
        // left alone.
        self.advanced.mark(|| room.clone());
        let outbound = match self.rooms.get_mut_unmarked(room) {
            None => {
                let reason = self
                    .discarded
                    .get(room)
                    .copied()
                    .unwrap_or(RotationReason::NotShared);
                return Err(RoomEventError::ShareRequired(reason));
            }
            Some(outbound) => outbound,
        };
        if let Some(reason) = settings.rotation_policy().expiry(
            outbound.session.message_index(),
            outbound.created_ms,
            now,
        ) {
            return Err(RoomEventError::ShareRequired(reason));
        }
        let plaintext = serde_json::to_vec(&OutgoingEvent {
            event_type,
            content,
            room_id: room,
        })
        .map_err(|e| RoomEventError::Malformed(JsonError::from_serde(&e)))?;
        let message = outbound
            .session
            .encrypt(&plaintext)
            .map_err(RoomEventError::Megolm)?;
        Ok(MegolmEncryptedContent {
            ciphertext: message.to_base64(),
            session_id: outbound.session_id().to_base64(),
            sender_key: Some(sender_key),
            device_id: Some(device_id),
        })
    }

    /// Decrypts the JSON of a whole `m.room.encrypted` event received in
    /// `room` (see the module docs for the checks).
    pub fn decrypt_room_event_json(
        &mut self,
        room: &RoomId,
        event: &str,
    ) -> Result<DecryptedRoomEvent, RoomEventError> {
        let event = EncryptedRoomEvent::from_json(event)?;
        self.decrypt_room_event(room, &event)
    }

    /// Decrypts a parsed `m.room.encrypted` event received in `room`.
    pub fn decrypt_room_event(
        &mut self,
        room: &RoomId,
        event: &EncryptedRoomEvent,
    ) -> Result<DecryptedRoomEvent, RoomEventError> {
        if event.content.algorithm != MEGOLM_V1 {
            return Err(RoomEventError::UnsupportedAlgorithm);
        }
        if event.room_id.as_ref().is_some_and(|r| r != room) {
            return Err(RoomEventError::RoomMismatch);
        }
        if event.event_id.is_empty() || event.event_id.len() > MAX_ID_LEN {
            return Err(RoomEventError::InvalidId("event id"));
        }
        let content = &event.content.content;
        let malformed = RoomEventError::Malformed(JsonError::Shape { line: 0, column: 0 });
        let session_id =
            GroupSessionId::from_base64(&content.session_id).map_err(|_| malformed.clone())?;
        let message = MegolmMessage::from_base64(&content.ciphertext).map_err(|_| malformed)?;
        let staged = self
            .inbound
            .stage_decryption(room, &session_id, &event.event_id, &message)
            .map_err(|refusal| match refusal {
                StoreRefusal::Unknown => RoomEventError::UnknownRoomKey {
                    withheld: self
                        .withheld
                        .for_session(room, &content.session_id)
                        .map(|n| n.code.clone()),
                },
                StoreRefusal::Group(e) => RoomEventError::Megolm(e),
                StoreRefusal::Replay(ReplayRefusal::Replay, index) => {
                    RoomEventError::Replay { index }
                }
                StoreRefusal::Replay(ReplayRefusal::Forgotten, index) => {
                    RoomEventError::Forgotten { index }
                }
            })?;
        let text = std::str::from_utf8(&staged.decrypted.plaintext)
            .map_err(|_| RoomEventError::Malformed(JsonError::Syntax { line: 1, column: 1 }))?;
        let payload = MegolmPayload::from_json_in_room(text, room).map_err(|e| match e {
            super::events::EventError::RoomMismatch => RoomEventError::RoomMismatch,
            super::events::EventError::Malformed(j) => RoomEventError::Malformed(j),
            _ => RoomEventError::Malformed(JsonError::NOT_AN_OBJECT),
        })?;
        let sender = &staged.sender;
        if sender.user_id.as_ref().is_some_and(|u| u != &event.sender) {
            return Err(RoomEventError::SenderMismatch);
        }
        let known = self.tracker.device_by_curve25519(&sender.sender_key);
        if let Some(device) = known {
            let same_key = sender
                .sender_ed25519
                .is_none_or(|k| k == device.keys().ed25519);
            if device.user_id() != &event.sender || !same_key {
                return Err(RoomEventError::SenderMismatch);
            }
        }
        let decrypted = DecryptedRoomEvent {
            event_type: payload.event_type,
            content: payload.content,
            sender: event.sender.clone(),
            sender_key: sender.sender_key,
            sender_device: sender
                .device_id
                .clone()
                .or_else(|| known.map(|d| d.device_id().clone())),
            sender_device_confirmed: known.is_some(),
            session_id,
            message_index: staged.decrypted.message_index,
            key_source: sender.source,
            authenticated: sender.source.is_authenticated() && staged.decrypted.authenticated,
        };
        self.inbound.commit_decryption(room, &session_id, &staged);
        Ok(decrypted)
    }
}

impl MegolmEncryptedContent {
    /// The JSON content, with its `algorithm`.
    pub fn to_json_value(&self) -> serde_json::Value {
        EncryptedContent::Megolm(self.clone()).to_json_value()
    }
}

//! The room-key share: the payload a sender encrypts over each recipient's
//! pairwise session to hand it a room's group session key.
//!
//! Binary form (inside the pairwise plaintext): version, payload type, room
//! id, the sender's user id and device id, the sender's identity keys, the
//! intended recipient's identity keys, and the signed session key (which
//! itself names and signs its creator and room). On receipt the orchestrator
//! checks that the recipient is this device, that the sender keys are those
//! of the pairwise session it arrived on and of the key's creator, that the
//! rooms agree ([`RoomKeyShare::check`]), and that the sender's user id is
//! the one the server delivered the message from.

use std::fmt;

use zeroize::Zeroizing;

use super::RoomError;
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{MAX_ID_LEN, PROTOCOL_VERSION};
use crate::group::{GroupSessionId, SessionKey, check_room_id};
use crate::keys::IdentityKeys;
use crate::session::Session;

/// Payload type byte of a room-key share inside a pairwise message.
const PAYLOAD_ROOM_KEY_SHARE: u8 = 1;

/// A room's session key addressed from one device to another.
#[derive(Clone)]
pub struct RoomKeyShare {
    /// The room the key is for.
    pub room_id: String,
    /// The sending device's user id (as it claims; checked against the
    /// user the server says sent the message).
    pub sender_user_id: String,
    /// The sending device's device id (as it claims).
    pub sender_device_id: String,
    /// The signed session key, at the index the recipient may read from.
    pub session_key: SessionKey,
    /// The sending device's identity keys (as claimed; checked on receipt).
    pub sender: IdentityKeys,
    /// The device the share is meant for.
    pub recipient: IdentityKeys,
}

impl RoomKeyShare {
    /// The group session this share is a key for.
    pub fn session_id(&self) -> GroupSessionId {
        GroupSessionId::from(self.session_key.signing_key)
    }

    /// The binary encoding. Secret: it contains the session key.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(
            2 + 6
                + self.room_id.len()
                + self.sender_user_id.len()
                + self.sender_device_id.len()
                + 128
                + 300
                + self.room_id.len(),
        );
        w.u8(PROTOCOL_VERSION)
            .u8(PAYLOAD_ROOM_KEY_SHARE)
            .short_bytes(self.room_id.as_bytes())
            .short_bytes(self.sender_user_id.as_bytes())
            .short_bytes(self.sender_device_id.as_bytes())
            .bytes(&self.sender.to_bytes())
            .bytes(&self.recipient.to_bytes())
            .bytes(&self.session_key.to_bytes());
        w.into_zeroizing()
    }

    /// The encoding, and the offset of the 64 recipient-key bytes in it, so
    /// one encoding can be patched per recipient.
    pub(crate) fn encode_with_recipient_slot(&self) -> (Zeroizing<Vec<u8>>, usize) {
        let offset = 2
            + 6
            + self.room_id.len()
            + self.sender_user_id.len()
            + self.sender_device_id.len()
            + 64;
        (self.to_bytes(), offset)
    }

    /// Strictly decodes the binary encoding (the session key's signature is
    /// checked when the inbound session is built).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        if r.u8("payload type")? != PAYLOAD_ROOM_KEY_SHARE {
            return Err(DecodeError::InvalidValue("payload type"));
        }
        let room_id = text(&mut r, "room id")?;
        check_room_id(&room_id).map_err(|_| DecodeError::InvalidValue("room id"))?;
        let sender_user_id = text(&mut r, "sender user id")?;
        let sender_device_id = text(&mut r, "sender device id")?;
        let sender = IdentityKeys::read(&mut r)?;
        let recipient = IdentityKeys::read(&mut r)?;
        let session_key = SessionKey::from_bytes(r.rest())?;
        Ok(Self {
            room_id,
            sender_user_id,
            sender_device_id,
            session_key,
            sender,
            recipient,
        })
    }

    /// Checks that this share is addressed to `us`, that its claimed sender
    /// is the peer of the pairwise `session` it arrived over and the creator
    /// the session key names (signed by the session's key, checked when the
    /// inbound session is built), and that the key is for the share's room.
    pub fn check(&self, session: &Session, us: &IdentityKeys) -> Result<(), RoomError> {
        if &self.recipient != us {
            return Err(RoomError::ShareNotForUs);
        }
        if self.sender != session.peer_identity() || self.sender != self.session_key.creator() {
            return Err(RoomError::ShareSenderMismatch);
        }
        if self.room_id != self.session_key.room_id() {
            return Err(RoomError::ShareRoomMismatch);
        }
        Ok(())
    }
}

/// A length-prefixed UTF-8 id of 1 to 255 bytes.
fn text(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
    let bytes = r.short_bytes(MAX_ID_LEN, field)?;
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidValue(field))?;
    if text.is_empty() {
        return Err(DecodeError::InvalidValue(field));
    }
    Ok(text.to_owned())
}

impl fmt::Debug for RoomKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomKeyShare")
            .field("room_id", &self.room_id)
            .field("sender_user_id", &self.sender_user_id)
            .field("sender_device_id", &self.sender_device_id)
            .field("session_key", &self.session_key)
            .field("sender", &self.sender)
            .field("recipient", &self.recipient)
            .finish()
    }
}

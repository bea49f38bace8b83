//! Group sessions: the room key. One device's [`OutboundGroupSession`]
//! encrypts and signs its messages to a room; every reader holds an
//! [`InboundGroupSession`] built from the shared [`SessionKey`] (or imported
//! from an [`ExportedSessionKey`]).
//!
//! What it promises:
//! - a four-part hash ratchet: each message key is used once, the key for
//!   any later index is reachable in at most about 1,020 HMACs, earlier keys
//!   cannot be recomputed;
//! - every message is signed (strict Ed25519) over its whole encoding, and
//!   its AES-256-GCM associated data binds the room id and session id, so a
//!   message moved to another room or session fails;
//! - decryption reports whether the key is authenticated (signed by its
//!   creator) and never changes the session on failure;
//! - replay detection is not done here but by the room layer's key store,
//!   which knows event ids.

mod inbound;
pub(crate) mod lines;
mod message;
mod outbound;
pub(crate) mod ratchet;
pub(crate) mod session_key;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

pub use self::inbound::{GroupDecrypted, InboundGroupSession, SessionOrdering};
pub use self::message::GroupMessage;
pub use self::outbound::OutboundGroupSession;
pub use self::session_key::{ExportedSessionKey, SessionKey};

use crate::codec::{DecodeError, Writer};
use crate::consts::{MAX_ID_LEN, PROTOCOL_VERSION};
use crate::crypto::label;
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey, KeyError};

/// Why a group session operation failed. The session is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum GroupError {
    /// Bytes could not be decoded.
    #[error("could not be decoded: {0}")]
    Decode(#[from] DecodeError),
    /// The room id is empty or longer than 255 bytes.
    #[error("room id must be 1 to 255 bytes")]
    InvalidRoomId,
    /// A message's or session key's signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The message is from before the first index this session knows.
    #[error("message index {index} is before the first known index {first_known}")]
    UnknownIndex {
        /// The message's index.
        index: u32,
        /// The session's first known index.
        first_known: u32,
    },
    /// The message does not decrypt: wrong room, wrong session or altered.
    #[error("message failed authentication")]
    Authentication,
    /// The plaintext exceeds [`crate::consts::MAX_PLAINTEXT_LEN`].
    #[error("plaintext of {len} bytes exceeds the {max}-byte limit")]
    PlaintextTooLong {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The session has used all 2^32 message indices.
    #[error("group session has no message indices left")]
    Exhausted,
}

/// The id of a group session: the bytes of its Ed25519 public key.
///
/// Only a lookup key: parsing one checks its length, not that it is a valid
/// point (the session it names carries the validated key), so a hostile
/// envelope costs no point decompression before the store lookup.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupSessionId([u8; 32]);

impl GroupSessionId {
    /// The session's Ed25519 public key, if the id is a valid one.
    pub fn signing_key(&self) -> Result<Ed25519PublicKey, KeyError> {
        Ed25519PublicKey::from_bytes(&self.0)
    }

    /// The id's bytes.
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The id's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Unpadded base64.
    pub fn to_base64(&self) -> String {
        crate::keys::base64_encode(&self.0)
    }

    /// Parses unpadded (or padded) base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        Curve25519PublicKey::from_base64(text).map(|k| Self(k.to_bytes()))
    }
}

impl From<Ed25519PublicKey> for GroupSessionId {
    fn from(key: Ed25519PublicKey) -> Self {
        Self(key.to_bytes())
    }
}

impl fmt::Display for GroupSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for GroupSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupSessionId({})", self.to_base64())
    }
}

impl FromStr for GroupSessionId {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::from_base64(text)
    }
}

impl Serialize for GroupSessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GroupSessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_base64(&text)
            .map_err(|e| serde::de::Error::custom(format_args!("invalid session id: {e}")))
    }
}

pub(crate) fn check_room_id(room_id: &str) -> Result<(), GroupError> {
    if room_id.is_empty() || room_id.len() > MAX_ID_LEN {
        Err(GroupError::InvalidRoomId)
    } else {
        Ok(())
    }
}

/// label ‖ room id (u16 length-prefixed) ‖ session id ‖ version ‖ index.
pub(crate) fn associated_data(room_id: &str, session_id: &GroupSessionId, index: u32) -> Vec<u8> {
    let mut w = Writer::with_capacity(label::GROUP_MESSAGE_AD.len() + 2 + room_id.len() + 37);
    w.bytes(label::GROUP_MESSAGE_AD)
        .short_bytes(room_id.as_bytes())
        .bytes(session_id.as_bytes())
        .u8(PROTOCOL_VERSION)
        .u32(index);
    w.into_vec()
}

//! The helpers apps call: room-key share payloads, encrypted event
//! envelopes, the rotation policy, the inbound key store with replay
//! detection, and the per-device orchestrator [`Endpoint`] (with its peer
//! store, outbound rooms, sharing and receiving in files of their own).
//!
//! Everything here is sans-I/O: it takes bytes and returns bytes; the app
//! moves them between devices and the server.

mod durable;
#[cfg(test)]
mod durable_tests;
mod endpoint;
mod event;
mod limits;
mod outbound;
mod peers;
mod persist;
mod policy;
mod receive;
pub(crate) mod recipients;
mod share;
mod sharing;
mod store;
#[cfg(test)]
mod tests;
mod touched;
pub(crate) use self::touched::Touched;

use thiserror::Error;

pub use self::durable::DurableEndpoint;
pub use self::endpoint::{
    Endpoint, KeysToPublish, ReceivedRoomKey, RoomKeyShareOutcome, ToDeviceMessage,
};
pub use self::event::{DecryptedEvent, EncryptedEvent, ROOM_ALGORITHM};
pub use self::policy::{Clock, RotationPolicy, RotationReason, SystemClock};
pub use self::share::RoomKeyShare;
pub use self::store::{InboundKeyStore, KeyAdded, StoredRoomKey};

pub(crate) use self::limits::Limits;

use crate::account::AccountError;
use crate::codec::DecodeError;
use crate::group::GroupError;
use crate::pickle::PickleError;
use crate::session::SessionError;
use crate::store::StoreError;

/// Why a room-level operation failed. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RoomError {
    /// A user, device, room or event id, or an event type, is empty or too
    /// long.
    #[error("invalid {0}: must be 1 to 255 bytes")]
    InvalidId(&'static str),
    /// Bytes could not be decoded.
    #[error("could not be decoded: {0}")]
    Decode(#[from] DecodeError),
    /// The account rejected a key or a session start.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// A pairwise session rejected a message.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A group session rejected a key or message.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// No pairwise session with the sending device could read the message.
    #[error("no session with the sending device")]
    NoSession,
    /// A pre-key message's identity key is not the claimed sender's.
    #[error("pre-key message does not come from the claimed sender")]
    SenderMismatch,
    /// A device-key bundle is our own.
    #[error("cannot start a session with this device itself")]
    OwnDevice,
    /// A device's X25519 key is already held under another Ed25519 key, or
    /// under other user or device ids (a server pairing someone's key with
    /// its own, or a device claiming another's ids).
    #[error("device identity conflicts with the one held for its X25519 key")]
    IdentityConflict,
    /// The same device (or two devices sharing an X25519 or Ed25519 key, or
    /// user and device id) is listed twice in one share.
    #[error("a device is listed twice, or two listed devices share a key or id")]
    DuplicateRecipient,
    /// A room-key share names another device as its recipient.
    #[error("room-key share is addressed to another device")]
    ShareNotForUs,
    /// A room-key share's claimed sender is not the peer of the pairwise
    /// session it arrived on, or not the creator its session key names.
    #[error("room-key share claims a sender other than the session's peer or the key's creator")]
    ShareSenderMismatch,
    /// A room-key share names a room other than the one its session key is
    /// for.
    #[error("room-key share names another room than its session key")]
    ShareRoomMismatch,
    /// A key for a session id already stored that is not a copy of that
    /// session, or comes from another sender (an authenticated share may
    /// still displace an unauthenticated import; see [`InboundKeyStore::add_shared`]).
    #[error("conflicting key for an existing room session")]
    ConflictingRoomKey,
    /// No key is stored for the event's room and session.
    #[error("no room key for this session")]
    UnknownRoomKey,
    /// The envelope's sender key is not the device that shared the session.
    #[error("envelope sender key does not match the session's sender")]
    SenderKeyMismatch,
    /// This message index of the session was already used by another event.
    #[error("message index {index} was already used by another event")]
    Replay {
        /// The reused index.
        index: u32,
    },
    /// The message index is below what the replay store still remembers (it
    /// had to forget the oldest records; see
    /// [`crate::consts::MAX_TRACKED_INDICES`]).
    #[error("message index {index} is older than the replay records kept")]
    Forgotten {
        /// The index.
        index: u32,
    },
    /// The envelope names an algorithm other than [`ROOM_ALGORITHM`].
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The envelope is not valid JSON of the expected shape.
    #[error("invalid encrypted event envelope")]
    InvalidEnvelope,
    /// The decrypted plaintext is not a valid event (or an event's content
    /// could not be encoded).
    #[error("invalid event payload")]
    InvalidEvent,
    /// A pre-key message would start a session with a new device, but
    /// [`crate::consts::MAX_PEERS`] peers are held, all named by the app:
    /// forget some with [`Endpoint::forget_peer`].
    #[error("too many peer devices; forget some before accepting new ones")]
    TooManyPeers,
    /// A room-key share would add a new key, but
    /// [`crate::consts::MAX_ROOM_KEYS`] are stored, all from devices the app
    /// named: list them with [`Endpoint::room_keys`] and forget some.
    #[error("too many room keys stored; forget some before accepting new ones")]
    TooManyRoomKeys,
    /// The room has no current outbound session: call
    /// [`Endpoint::share_room_key`] first. The reason says why (never shared,
    /// the policy's message or age limit, the clock went back, a rotation
    /// was requested, a device was forgotten, a rollback).
    #[error("the room key must be shared before encrypting: {0}")]
    ShareRequired(RotationReason),
    /// The durable store could not commit the operation's changes (or
    /// load): nothing was released, and the endpoint is as it was before
    /// the operation (see [`StoreError`]).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A pickle to migrate could not be restored.
    #[error("pickle: {0}")]
    Pickle(#[from] PickleError),
}

//! Mobile bindings: the orchestrator-level API as uniffi objects, records
//! and one error type, for Kotlin, Swift and Python (feature `ffi`).
//!
//! One file per exposed layer, around the errors and helpers here:
//! - `records.rs`: the records and the `SelfSignedDevice` object every
//!   layer passes (identities, uploads, shares, keys, events, policy);
//! - `operations.rs`: the operations both endpoint objects offer, written
//!   once;
//! - `endpoint.rs`: [`Endpoint`], the native endpoint kept in memory and
//!   saved as a pickle by the app;
//! - `matrix.rs`: `MatrixMachine`, the Matrix client layer (Olm, Megolm
//!   and the client-server API's JSON), kept in memory and saved as a pickle
//!   by the app; its records are in `matrix_records.rs`;
//! - `matrix_operations.rs`: the operations both Matrix machine objects
//!   offer, written once;
//! - `durable.rs` (feature `sqlite`): `DurableEndpoint`, the same
//!   operations on an endpoint kept in a SQLite file, committed before each
//!   call returns;
//! - `matrix_durable.rs` (feature `sqlite`): `DurableMatrixMachine`, the
//!   Matrix machine's operations on a device kept in a SQLite file,
//!   committed before each call returns.
//!
//! What it promises:
//! - every object is safe to call from several threads (state behind a
//!   mutex);
//! - every failure is a typed [`RoomsealError`] whose message says what went
//!   wrong without revealing secrets; uniffi turns a panic (an internal bug)
//!   into an `InternalError` exception instead of aborting, and a mutex left
//!   poisoned by one becomes [`RoomsealError::Internal`] on later calls
//!   (both checked by the Python suite through the test-only panic probes of
//!   feature `ffi-test-probes`);
//! - keys, messages, envelopes and pickles cross the boundary in their text
//!   forms (base64 and JSON), exactly as the server stores them;
//! - the copies the bindings make of secrets they are handed (pickle keys,
//!   room-key exports) are wiped once used. What the foreign side holds
//!   (its arguments, and an export returned to it) is the app's to wipe.

use std::sync::{Mutex, MutexGuard};

use zeroize::Zeroizing;

use crate::codec::DecodeError;
use crate::keys::KeyError;
use crate::pickle::{PickleError, PickleKey, Pickled};
use crate::room::RoomError;
use crate::store::StoreError;

#[cfg(feature = "sqlite")]
mod durable;
mod endpoint;
mod matrix;
#[cfg(feature = "sqlite")]
mod matrix_durable;
mod matrix_operations;
mod matrix_records;
mod operations;
mod records;

#[cfg(feature = "sqlite")]
pub use self::durable::DurableEndpoint;
#[cfg(feature = "ffi-test-probes")]
pub use self::endpoint::test_probe_panic;
pub use self::endpoint::{Endpoint, native_event_round_trip_ns};
pub use self::matrix::MatrixMachine;
#[cfg(feature = "sqlite")]
pub use self::matrix_durable::DurableMatrixMachine;
pub use self::matrix_records::{
    MatrixDevice, MatrixDeviceRef, MatrixDeviceTrust, MatrixReceivedKey, MatrixRejectedItem,
    MatrixRequest, MatrixRequestKind, MatrixResponseResult, MatrixRoomEvent, MatrixRoomKey,
    MatrixShareResult, MatrixSyncResult, MatrixToDeviceEvent, MatrixWithheldDevice,
    MatrixWithheldNotice,
};
pub use self::records::{
    DeviceIdentity, KeyStatus, KeyUpload, OutgoingMessage, ReceivedKey, RoomEvent, RoomKeyExport,
    RotationPolicy, SelfSignedDevice, ShareResult, StoredKey,
};

/// Why a call failed. Each variant is its own exception class; the message
/// says what went wrong.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum RoomsealError {
    /// An argument is malformed: bad base64 or JSON, a key of the wrong
    /// length, an id that is empty or too long.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A message, share or event failed authentication: forged, altered,
    /// meant for someone else, or a key that does not verify.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// A message or event was already used (a replay).
    #[error("replayed: {0}")]
    Replay(String),
    /// No room key is held for this event's session.
    #[error("no room key for this event")]
    UnknownRoomKey(String),
    /// No room key is held for this event's session, and its sender said
    /// why (the message is the `m.room_key.withheld` code, for example
    /// `m.unverified`). The notice is unauthenticated: a hint for the user
    /// interface.
    #[error("room key withheld by the sender: {0}")]
    KeyWithheld(String),
    /// No pairwise session can read the message.
    #[error("no session with the sending device")]
    NoSession(String),
    /// The room key must be shared (or rotated) before encrypting; the
    /// message says why (never shared, expired, a device was forgotten...).
    #[error("{0}")]
    ShareRequired(String),
    /// No request with this id is waiting for an answer (already answered,
    /// dropped, or never issued by this object).
    #[error("{0}")]
    UnknownRequest(String),
    /// The durable store could not load or commit (full, busy, an I/O
    /// error, a corrupt record, a wrong key, no device in it or one already
    /// there): the call changed nothing. If the message says the state is
    /// unknown after a failed commit, `reload` (or opening the store again)
    /// makes the object usable.
    #[error("store: {0}")]
    Store(String),
    /// Another handle on the same store (another process, or a second
    /// object on the same file) committed first, so this object's state
    /// was stale: the call changed nothing and was refused. The object has
    /// already reloaded the newest state; make the call again (calling
    /// `reload` first is harmless). Should that reload have failed too, the
    /// next call says so with a `Store` error until `reload` succeeds.
    #[error("stale store: {0}")]
    StaleStore(String),
    /// The pickle cannot be restored: wrong key, corrupted, another type,
    /// or older than the newest generation the app recorded.
    #[error("pickle rejected: {0}")]
    Pickle(String),
    /// The protocol rejected the input for another reason (see the message).
    #[error("rejected: {0}")]
    Rejected(String),
    /// An internal error: the object cannot be used any more; restore it from
    /// its last pickle.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RoomError> for RoomsealError {
    fn from(error: RoomError) -> Self {
        use crate::group::GroupError;
        use crate::session::SessionError;
        let text = error.to_string();
        match error {
            RoomError::InvalidId(_)
            | RoomError::Decode(_)
            | RoomError::InvalidEnvelope
            | RoomError::InvalidEvent
            | RoomError::UnsupportedAlgorithm
            | RoomError::Group(GroupError::Decode(_) | GroupError::InvalidRoomId)
            | RoomError::Session(SessionError::Decode(_)) => Self::InvalidInput(text),
            RoomError::Replay { .. }
            | RoomError::Forgotten { .. }
            | RoomError::Session(SessionError::MessageKeyGone { .. }) => Self::Replay(text),
            RoomError::UnknownRoomKey => Self::UnknownRoomKey(text),
            RoomError::NoSession => Self::NoSession(text),
            RoomError::ShareRequired(_) => Self::ShareRequired(text),
            RoomError::Session(SessionError::Authentication | SessionError::BadBinding)
            | RoomError::Group(GroupError::Authentication | GroupError::BadSignature)
            | RoomError::SenderMismatch
            | RoomError::SenderKeyMismatch
            | RoomError::ShareNotForUs
            | RoomError::ShareSenderMismatch
            | RoomError::ShareRoomMismatch => Self::Authentication(text),
            RoomError::Pickle(error) => error.into(),
            RoomError::Store(error) => error.into(),
            _ => Self::Rejected(text),
        }
    }
}

impl From<StoreError> for RoomsealError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Stale { .. } => Self::StaleStore(error.to_string()),
            _ => Self::Store(error.to_string()),
        }
    }
}

impl From<PickleError> for RoomsealError {
    fn from(error: PickleError) -> Self {
        Self::Pickle(error.to_string())
    }
}

impl From<KeyError> for RoomsealError {
    fn from(error: KeyError) -> Self {
        Self::InvalidInput(error.to_string())
    }
}

impl From<DecodeError> for RoomsealError {
    fn from(error: DecodeError) -> Self {
        Self::InvalidInput(error.to_string())
    }
}

/// Parses JSON text of the shape `T`; `what` names it in the error.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, RoomsealError> {
    serde_json::from_str(text).map_err(|_| {
        RoomsealError::InvalidInput(format!("{what} is not valid JSON of the expected shape"))
    })
}

/// Encodes a value as JSON text.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, RoomsealError> {
    serde_json::to_string(value)
        .map_err(|_| RoomsealError::Internal("could not encode JSON".into()))
}

/// Takes the caller's pickle key bytes, wiping the copy the bindings made
/// (whatever its length) once the key is built.
pub(crate) fn pickle_key(bytes: Vec<u8>) -> Result<PickleKey, RoomsealError> {
    let bytes = Zeroizing::new(bytes);
    let mut array = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        RoomsealError::InvalidInput(format!("pickle key must be 32 bytes, not {}", bytes.len()))
    })?;
    Ok(PickleKey::from_bytes(&mut array))
}

/// Restores a pickled object under the caller's 32-byte key (the copy the
/// bindings made of it wiped once used), refusing a pickle older than
/// `newest_generation` when one is given (a rollback).
pub(crate) fn restore<T: Pickled>(
    pickle: &str,
    pickle_key: Vec<u8>,
    newest_generation: Option<u64>,
) -> Result<T, RoomsealError> {
    let key = self::pickle_key(pickle_key)?;
    let restored = match newest_generation {
        None => T::restore(pickle, &key, &[]),
        Some(newest) => T::restore_no_older_than(pickle, &key, &[], newest),
    };
    Ok(restored?)
}

/// A count for the foreign side (u32), saturating.
pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// An object's state behind a mutex. A panic while the lock is held (an
/// internal bug) leaves the state unusable: every later call is refused
/// with [`RoomsealError::Internal`], whose message says how to recover.
#[derive(Debug)]
pub(crate) struct Guarded<S> {
    state: Mutex<S>,
    recovery: &'static str,
}

impl<S> Guarded<S> {
    /// Guards `state`; `recovery` says how to get a usable object again
    /// ("restore it from a pickle").
    pub(crate) fn new(state: S, recovery: &'static str) -> Self {
        Self {
            state: Mutex::new(state),
            recovery,
        }
    }

    /// Locks the state, or refuses if an earlier panic poisoned it.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, S>, RoomsealError> {
        self.state.lock().map_err(|_| {
            RoomsealError::Internal(format!(
                "state is unusable after an earlier internal error; {}",
                self.recovery
            ))
        })
    }
}

//! [`MatrixMachine`]: the Matrix client layer ([`MatrixEndpoint`]) as one
//! uniffi object, kept in memory and saved as a pickle by the app (like
//! [`Endpoint`](super::Endpoint)), driven like Element's `OlmMachine`: the
//! app sends the machine's outgoing requests to its homeserver and hands
//! back the answers, and feeds it every sync.
//!
//! Its operations are written once, in `matrix_operations.rs`, for it and
//! for the durable machine (`matrix_durable.rs`).
//!
//! What crosses the boundary: JSON text wherever the Matrix API is JSON
//! (request bodies, server answers, syncs, `m.room.encryption` and event
//! contents, whole room events), records (`matrix_records.rs`) for the
//! rest, keys as unpadded base64.
//!
//! Promises, on top of the module-wide ones (`mod.rs`):
//! - a call that fails with an error changed nothing, with one exception
//!   the Matrix layer documents: an answer refused whole by
//!   `mark_request_as_sent` drops that request (what it was for is asked
//!   again by the next `outgoing_requests`);
//! - in a sync, one bad to-device event is reported in
//!   [`MatrixSyncResult::rejected`](super::MatrixSyncResult::rejected)
//!   while the rest is taken; only text that is not a sync at all is
//!   refused whole, before anything changed;
//! - error messages name what was wrong (a JSON position, a check that
//!   failed), never a key, a plaintext or a pickle.

use std::sync::Arc;

use super::matrix_operations::{device_id, user_id};
use super::{Guarded, RoomsealError, restore};
use crate::account::Account;
use crate::group::GroupError;
use crate::matrix::{
    EndpointError, IdError, JsonError, MatrixEndpoint, RoomEventError, ShareError,
};

/// What a poisoned machine's refusals tell the app to do.
const RECOVERY: &str = "restore it from a pickle";

/// One Matrix device's end-to-end encryption (Olm sessions, Megolm room
/// keys, device tracking), in memory. Safe to share between threads. Its
/// operations are in `matrix_operations.rs`.
#[derive(Debug, uniffi::Object)]
pub struct MatrixMachine {
    pub(crate) state: Guarded<MatrixEndpoint>,
}

impl MatrixMachine {
    fn wrap(endpoint: MatrixEndpoint) -> Arc<Self> {
        Arc::new(Self {
            state: Guarded::new(endpoint, RECOVERY),
        })
    }
}

#[uniffi::export]
impl MatrixMachine {
    /// A new device of `user_id` (`@name:server`) with id `device_id` and
    /// a fresh identity from the system's randomness.
    #[uniffi::constructor]
    pub fn new(user_id: String, device_id: String) -> Result<Arc<Self>, RoomsealError> {
        Ok(Self::wrap(new_device(&user_id, &device_id)?))
    }

    /// Restores a machine from its pickle under a 32-byte key.
    #[uniffi::constructor]
    pub fn from_pickle(pickle: String, pickle_key: Vec<u8>) -> Result<Arc<Self>, RoomsealError> {
        Ok(Self::wrap(restore(&pickle, pickle_key, None)?))
    }

    /// Restores a machine from its pickle, refusing one older than
    /// `newest_generation`, the newest generation the app recorded (a
    /// rollback: `Pickle` error).
    #[uniffi::constructor]
    pub fn from_pickle_no_older_than(
        pickle: String,
        pickle_key: Vec<u8>,
        newest_generation: u64,
    ) -> Result<Arc<Self>, RoomsealError> {
        Ok(Self::wrap(restore(
            &pickle,
            pickle_key,
            Some(newest_generation),
        )?))
    }
}

/// A new Matrix device of `user_id` with id `device_id` and a fresh
/// identity from the system's randomness.
pub(super) fn new_device(user_id: &str, device_id: &str) -> Result<MatrixEndpoint, RoomsealError> {
    let user = self::user_id(user_id)?;
    let device = self::device_id(device_id)?;
    Ok(MatrixEndpoint::new(Account::new(), user, device))
}

impl From<IdError> for RoomsealError {
    fn from(error: IdError) -> Self {
        Self::InvalidInput(error.to_string())
    }
}

impl From<JsonError> for RoomsealError {
    fn from(error: JsonError) -> Self {
        Self::InvalidInput(error.to_string())
    }
}

impl From<EndpointError> for RoomsealError {
    fn from(error: EndpointError) -> Self {
        let text = error.to_string();
        match error {
            EndpointError::UnknownRequest => Self::UnknownRequest(text),
            EndpointError::Response(_) => Self::InvalidInput(text),
            EndpointError::Signature(_) => Self::Rejected(text),
        }
    }
}

impl From<ShareError> for RoomsealError {
    fn from(error: ShareError) -> Self {
        let text = error.to_string();
        match error {
            ShareError::UnsupportedAlgorithm => Self::InvalidInput(text),
            ShareError::UnknownRoomKey => Self::UnknownRoomKey(text),
            ShareError::NotOwnDevice => Self::Rejected(text),
        }
    }
}

impl From<RoomEventError> for RoomsealError {
    fn from(error: RoomEventError) -> Self {
        let text = error.to_string();
        match error {
            RoomEventError::Malformed(_)
            | RoomEventError::UnsupportedAlgorithm
            | RoomEventError::InvalidId(_)
            | RoomEventError::Megolm(GroupError::Decode(_) | GroupError::InvalidRoomId) => {
                Self::InvalidInput(text)
            }
            RoomEventError::UnknownRoomKey {
                withheld: Some(code),
            } => Self::KeyWithheld(code.as_str().to_owned()),
            RoomEventError::UnknownRoomKey { withheld: None } => Self::UnknownRoomKey(text),
            RoomEventError::Megolm(GroupError::Authentication | GroupError::BadSignature)
            | RoomEventError::RoomMismatch
            | RoomEventError::SenderMismatch => Self::Authentication(text),
            RoomEventError::Replay { .. } | RoomEventError::Forgotten { .. } => Self::Replay(text),
            RoomEventError::ShareRequired(_) => Self::ShareRequired(text),
            RoomEventError::Megolm(_) => Self::Rejected(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::MatrixRequest;
    use super::*;

    /// The machine's first request, an upload.
    fn upload(machine: &MatrixMachine) -> MatrixRequest {
        let requests = machine.outgoing_requests().unwrap();
        assert_eq!(
            requests[0].kind,
            super::super::MatrixRequestKind::KeysUpload
        );
        requests[0].clone()
    }

    #[test]
    fn refused_answers_are_typed_and_the_request_is_asked_again() {
        let machine = MatrixMachine::new("@a:example.org".into(), "A".into()).unwrap();
        let first = upload(&machine);
        assert!(matches!(
            machine.mark_request_as_sent(first.request_id, "{\"one_time_key_counts\": 7".into()),
            Err(RoomsealError::InvalidInput(_))
        ));
        assert!(matches!(
            machine.mark_request_as_sent(first.request_id, "{}".into()),
            Err(RoomsealError::UnknownRequest(_))
        ));
        let again = upload(&machine);
        let body: serde_json::Value = serde_json::from_str(&again.body_json).unwrap();
        assert!(body["device_keys"].is_object());
        let answer = r#"{"one_time_key_counts": {"signed_curve25519": 50}}"#;
        let result = machine
            .mark_request_as_sent(again.request_id, answer.into())
            .unwrap();
        assert_eq!(result.one_time_key_count, Some(50));
    }

    #[test]
    fn errors_name_the_problem_without_the_input() {
        let machine = MatrixMachine::new("@a:example.org".into(), "A".into()).unwrap();
        let secret = "SECRETSECRETSECRET";
        let cases = [
            machine
                .receive_sync_changes(format!("{{\"to_device\": \"{secret}\"}}"))
                .unwrap_err(),
            machine
                .decrypt_room_event("!r:x".into(), format!("{{\"event_id\": \"{secret}\"}}"))
                .unwrap_err(),
            machine
                .encrypt_room_event(
                    "!r:x".into(),
                    "m.room.message".into(),
                    format!("\"{secret}\""),
                )
                .unwrap_err(),
            machine
                .set_room_encryption("!r:x".into(), format!("{{\"algorithm\": {secret}}}"))
                .unwrap_err(),
        ];
        for error in cases {
            assert!(matches!(error, RoomsealError::InvalidInput(_)), "{error:?}");
            assert!(!error.to_string().contains(secret), "{error}");
        }
        let withheld = RoomEventError::UnknownRoomKey {
            withheld: Some(crate::matrix::WithheldCode::Unverified),
        };
        assert_eq!(
            RoomsealError::from(withheld).to_string(),
            "room key withheld by the sender: m.unverified"
        );
    }
}

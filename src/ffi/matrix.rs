//! [`MatrixMachine`]: the Matrix client layer ([`MatrixEndpoint`]) as one
//! uniffi object, kept in memory and saved as a pickle by the app (like
//! [`Endpoint`](super::Endpoint)), driven like Element's `OlmMachine`: the
//! app sends the machine's outgoing requests to its homeserver and hands
//! back the answers, and feeds it every sync.
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
//!   [`MatrixSyncResult::rejected`] while the rest is taken; only text that
//!   is not a sync at all is refused whole, before anything changed;
//! - error messages name what was wrong (a JSON position, a check that
//!   failed), never a key, a plaintext or a pickle.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::matrix_records::{
    MatrixDevice, MatrixDeviceTrust, MatrixRequest, MatrixResponseResult, MatrixRoomEvent,
    MatrixRoomKey, MatrixShareResult, MatrixSyncResult, MatrixWithheldNotice,
};
use super::records::DeviceIdentity;
use super::{Guarded, RoomsealError, count, json, pickle_key, restore};
use crate::account::Account;
use crate::group::{GroupError, GroupSessionId};
use crate::matrix::{
    DeviceId, EncryptedRoomEvent, EndpointError, IdError, JsonError, MatrixEndpoint, RequestId,
    RoomEncryptionContent, RoomEventError, RoomId, ShareError, SharePolicy, UserId,
};

/// What a poisoned machine's refusals tell the app to do.
const RECOVERY: &str = "restore it from a pickle";

/// One Matrix device's end-to-end encryption (Olm sessions, Megolm room
/// keys, device tracking), in memory. Safe to share between threads.
#[derive(Debug, uniffi::Object)]
pub struct MatrixMachine {
    state: Guarded<MatrixEndpoint>,
}

impl MatrixMachine {
    fn wrap(endpoint: MatrixEndpoint) -> Arc<Self> {
        Arc::new(Self {
            state: Guarded::new(endpoint, RECOVERY),
        })
    }
}

fn user_id(text: &str) -> Result<UserId, RoomsealError> {
    Ok(UserId::parse(text)?)
}

fn user_ids(texts: &[String]) -> Result<Vec<UserId>, RoomsealError> {
    texts.iter().map(|u| user_id(u)).collect()
}

fn room_id(text: &str) -> Result<RoomId, RoomsealError> {
    Ok(RoomId::parse(text)?)
}

fn device_id(text: &str) -> Result<DeviceId, RoomsealError> {
    Ok(DeviceId::parse(text)?)
}

#[uniffi::export]
impl MatrixMachine {
    /// A new device of `user_id` (`@name:server`) with id `device_id` and
    /// a fresh identity from the system's randomness.
    #[uniffi::constructor]
    pub fn new(user_id: String, device_id: String) -> Result<Arc<Self>, RoomsealError> {
        let user = self::user_id(&user_id)?;
        let device = self::device_id(&device_id)?;
        Ok(Self::wrap(MatrixEndpoint::new(
            Account::new(),
            user,
            device,
        )))
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

    /// The encrypted pickle of the whole machine under a 32-byte key (the
    /// next generation). Save it before sending what a call returned.
    /// Requests in flight are not kept: the restored machine asks again.
    pub fn pickle(&self, pickle_key: Vec<u8>) -> Result<String, RoomsealError> {
        let key = self::pickle_key(pickle_key)?;
        Ok(self.state.lock()?.pickle(&key))
    }

    /// The generation of the last pickle written or restored: record it
    /// where it cannot be rolled back, to refuse older pickles later.
    pub fn pickle_generation(&self) -> Result<u64, RoomsealError> {
        Ok(self.state.lock()?.pickle_generation())
    }

    /// The user id.
    pub fn user_id(&self) -> Result<String, RoomsealError> {
        Ok(self.state.lock()?.user_id().to_string())
    }

    /// The device id.
    pub fn device_id(&self) -> Result<String, RoomsealError> {
        Ok(self.state.lock()?.device_id().to_string())
    }

    /// The device's identity keys.
    pub fn identity(&self) -> Result<DeviceIdentity, RoomsealError> {
        Ok(self.state.lock()?.identity_keys().into())
    }

    /// The requests to send now (key upload, key query, queued to-device
    /// sends). Each is returned again on every call until its answer is
    /// given back.
    pub fn outgoing_requests(&self) -> Result<Vec<MatrixRequest>, RoomsealError> {
        let requests = self.state.lock()?.outgoing_requests()?;
        MatrixRequest::from_all(&requests)
    }

    /// Takes the server's answer (its JSON body) to request `request_id`.
    /// Items of the answer that fail their checks are listed in the
    /// result's `rejected`; an answer refused whole (not of its shape)
    /// drops the request, and the next `outgoing_requests` asks again.
    pub fn mark_request_as_sent(
        &self,
        request_id: u64,
        response_json: String,
    ) -> Result<MatrixResponseResult, RoomsealError> {
        let outcome = self
            .state
            .lock()?
            .mark_request_as_sent(RequestId(request_id), &response_json)?;
        Ok(outcome.into())
    }

    /// Takes a sync response (the whole `/sync` JSON, or an object with its
    /// `to_device`, `device_lists`, `device_one_time_keys_count` and
    /// `device_unused_fallback_key_types` members). Send the outgoing
    /// requests afterwards.
    pub fn receive_sync_changes(
        &self,
        sync_json: String,
    ) -> Result<MatrixSyncResult, RoomsealError> {
        let outcome = self.state.lock()?.receive_sync_changes(&sync_json)?;
        MatrixSyncResult::from_outcome(outcome)
    }

    /// Starts tracking `users` (the members of an encrypted room): the next
    /// outgoing requests query their devices. Returns those refused because
    /// the tracker is full.
    pub fn update_tracked_users(&self, users: Vec<String>) -> Result<Vec<String>, RoomsealError> {
        let users = user_ids(&users)?;
        let refused = self.state.lock()?.update_tracked_users(&users);
        Ok(refused.iter().map(ToString::to_string).collect())
    }

    /// The devices of `user` the machine knows (after a key query), with
    /// the app's trust decision for each.
    pub fn devices(&self, user_id: String) -> Result<Vec<MatrixDevice>, RoomsealError> {
        let user = self::user_id(&user_id)?;
        let machine = self.state.lock()?;
        Ok(machine
            .tracker()
            .devices(&user)
            .map(|d| MatrixDevice::new(d, machine.device_trust(d)))
            .collect())
    }

    /// Whether an Olm session with the device is held.
    pub fn has_olm_session(
        &self,
        user_id: String,
        device_id: String,
    ) -> Result<bool, RoomsealError> {
        let user = self::user_id(&user_id)?;
        let device = self::device_id(&device_id)?;
        let machine = self.state.lock()?;
        Ok(machine
            .tracker()
            .device(&user, &device)
            .is_some_and(|d| machine.has_olm_session(d)))
    }

    /// A `/keys/claim` request for the known devices of `users` that need
    /// an Olm session, or none. Not part of `outgoing_requests`: send it
    /// and hand the answer to `mark_request_as_sent`, which starts the
    /// sessions.
    pub fn keys_claim_request(
        &self,
        users: Vec<String>,
    ) -> Result<Option<MatrixRequest>, RoomsealError> {
        let users = user_ids(&users)?;
        let request = self.state.lock()?.keys_claim_request(&users);
        request
            .as_ref()
            .map(MatrixRequest::from_request)
            .transpose()
    }

    /// Sets a room's settings from the content of its `m.room.encryption`
    /// state event (JSON). The next share rotates if the new periods say the
    /// current key is expired; a room with another algorithm refuses to
    /// share and encrypt.
    pub fn set_room_encryption(
        &self,
        room_id: String,
        content_json: String,
    ) -> Result<(), RoomsealError> {
        let room = self::room_id(&room_id)?;
        let settings: RoomEncryptionContent = json(&content_json, "m.room.encryption content")?;
        self.state.lock()?.set_room_encryption(&room, settings);
        Ok(())
    }

    /// Makes sure every device of `users` (the room's members) that may
    /// read the room holds its current key, rotating first when the room's
    /// settings or a departed device say so. Returns the to-device requests
    /// to send (confirm each with `mark_request_as_sent`).
    pub fn share_room_key(
        &self,
        room_id: String,
        users: Vec<String>,
    ) -> Result<MatrixShareResult, RoomsealError> {
        let room = self::room_id(&room_id)?;
        let users = user_ids(&users)?;
        let outcome = self.state.lock()?.share_room_key(&room, &users)?;
        MatrixShareResult::from_outcome(outcome)
    }

    /// Forwards a held room key to another device of our own user (one with
    /// an Olm session), which reports events it reads with it as not
    /// authenticated. Send the request and confirm it.
    pub fn forward_room_key(
        &self,
        room_id: String,
        session_id: String,
        device_id: String,
    ) -> Result<MatrixRequest, RoomsealError> {
        let room = self::room_id(&room_id)?;
        let session = GroupSessionId::from_base64(&session_id)?;
        let device = self::device_id(&device_id)?;
        let request = self
            .state
            .lock()?
            .forward_room_key(&room, &session, &device)?;
        MatrixRequest::from_request(&request)
    }

    /// Encrypts a room event (its type and content JSON, an object) with
    /// the room's current key; returns the `m.room.encrypted` content JSON
    /// to send. Share first: with no key, or an expired one, it fails with
    /// `ShareRequired`.
    pub fn encrypt_room_event(
        &self,
        room_id: String,
        event_type: String,
        content_json: String,
    ) -> Result<String, RoomsealError> {
        let room = self::room_id(&room_id)?;
        let content: Box<RawValue> = json(&content_json, "event content")?;
        if !content.get().trim_start().starts_with('{') {
            return Err(RoomsealError::InvalidInput(
                "event content must be a JSON object".into(),
            ));
        }
        let encrypted = self
            .state
            .lock()?
            .encrypt_room_event(&room, &event_type, &content)?;
        super::to_json(&encrypted.to_json_value())
    }

    /// Decrypts a whole `m.room.encrypted` event (JSON, as the server
    /// delivered it) received in `room_id`.
    pub fn decrypt_room_event(
        &self,
        room_id: String,
        event_json: String,
    ) -> Result<MatrixRoomEvent, RoomsealError> {
        let room = self::room_id(&room_id)?;
        let event = EncryptedRoomEvent::from_json(&event_json)?;
        let decrypted = self.state.lock()?.decrypt_room_event(&room, &event)?;
        MatrixRoomEvent::from_event(decrypted, &room_id, &event.event_id)
    }

    /// Every Megolm key held (no secrets).
    pub fn room_keys(&self) -> Result<Vec<MatrixRoomKey>, RoomsealError> {
        Ok(self
            .state
            .lock()?
            .room_keys()
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Forgets a Megolm key; returns whether it was held. Events of that
    /// session no longer decrypt.
    pub fn forget_room_key(
        &self,
        room_id: String,
        session_id: String,
    ) -> Result<bool, RoomsealError> {
        let room = self::room_id(&room_id)?;
        let session = GroupSessionId::from_base64(&session_id)?;
        Ok(self.state.lock()?.forget_room_key(&room, &session))
    }

    /// Drops the room's outbound key: the next share rotates. Returns
    /// whether there was one.
    pub fn rotate_room_key(&self, room_id: String) -> Result<bool, RoomsealError> {
        let room = self::room_id(&room_id)?;
        Ok(self.state.lock()?.rotate_room_key(&room))
    }

    /// Records the app's trust decision for a known device; returns false
    /// for a device the machine does not know (or when too many decisions
    /// are held). Blacklisting a device that held a room key makes the next
    /// share rotate.
    pub fn set_device_trust(
        &self,
        user_id: String,
        device_id: String,
        trust: MatrixDeviceTrust,
    ) -> Result<bool, RoomsealError> {
        let user = self::user_id(&user_id)?;
        let device = self::device_id(&device_id)?;
        Ok(self
            .state
            .lock()?
            .set_device_trust(&user, &device, trust.into()))
    }

    /// Who room keys go to: with `only_verified`, devices the app has not
    /// marked verified get an `m.unverified` withheld notice instead.
    pub fn set_share_policy(&self, only_verified: bool) -> Result<(), RoomsealError> {
        self.state
            .lock()?
            .set_share_policy(SharePolicy { only_verified });
        Ok(())
    }

    /// The `m.room_key.withheld` notice received for a room's session, if
    /// any (an unauthenticated hint for the user interface).
    pub fn withheld_notice(
        &self,
        room_id: String,
        session_id: String,
    ) -> Result<Option<MatrixWithheldNotice>, RoomsealError> {
        let room = self::room_id(&room_id)?;
        let machine = self.state.lock()?;
        Ok(machine
            .withheld_notice(&room, &session_id)
            .cloned()
            .map(Into::into))
    }

    /// How many devices an Olm session is held with.
    pub fn olm_peer_count(&self) -> Result<u32, RoomsealError> {
        Ok(count(self.state.lock()?.olm_peer_count()))
    }
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

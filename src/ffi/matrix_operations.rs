//! The operations of the Matrix machine objects (`MatrixMachine`, and
//! `DurableMatrixMachine` with feature `sqlite`), written once for every
//! object whose state is a [`MatrixEndpoint`]: each converts its arguments
//! (JSON text, ids), runs the [`MatrixEndpoint`] method under the object's
//! lock (committing what it changed, on a durable machine), and converts
//! the result into records or JSON text.

use serde_json::value::RawValue;

use super::matrix::MatrixMachine;
#[cfg(feature = "sqlite")]
use super::matrix_durable::DurableMatrixMachine;
use super::matrix_records::{
    MatrixDevice, MatrixDeviceTrust, MatrixRequest, MatrixResponseResult, MatrixRoomEvent,
    MatrixRoomKey, MatrixShareResult, MatrixSyncResult, MatrixWithheldNotice,
};
use super::records::DeviceIdentity;
use super::{Guarded, RoomsealError, count, json, pickle_key};
use crate::group::GroupSessionId;
use crate::matrix::{
    DeviceId, DurableError, EncryptedRoomEvent, MatrixEndpoint, RequestId, RoomEncryptionContent,
    RoomId, SharePolicy, UserId,
};

/// Whether an operation issues or answers requests, that is, changes the
/// requests in flight (which are not stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Requests {
    /// It leaves them alone.
    Kept,
    /// It changes them: a durable endpoint whose commit fails puts them
    /// back as they were.
    Changed,
}

/// The state behind a Matrix machine object: a Matrix endpoint in memory,
/// or a durable one.
pub(crate) trait MatrixState: Send {
    /// The endpoint, to read.
    fn machine(&self) -> &MatrixEndpoint;

    /// Runs an operation that may change the endpoint; a durable endpoint
    /// commits what it changed before returning.
    fn run<T, E>(
        &mut self,
        requests: Requests,
        op: impl FnOnce(&mut MatrixEndpoint) -> Result<T, E>,
    ) -> Result<T, DurableError<E>>;
}

impl MatrixState for MatrixEndpoint {
    fn machine(&self) -> &MatrixEndpoint {
        self
    }

    fn run<T, E>(
        &mut self,
        _: Requests,
        op: impl FnOnce(&mut MatrixEndpoint) -> Result<T, E>,
    ) -> Result<T, DurableError<E>> {
        op(self).map_err(DurableError::Operation)
    }
}

impl<E> From<DurableError<E>> for RoomsealError
where
    RoomsealError: From<E>,
{
    fn from(error: DurableError<E>) -> Self {
        match error {
            DurableError::Operation(error) => error.into(),
            DurableError::Store(error) => error.into(),
        }
    }
}

impl<S: MatrixState> Guarded<S> {
    /// Reads the Matrix endpoint under the lock.
    pub(crate) fn read_machine<T>(
        &self,
        op: impl FnOnce(&MatrixEndpoint) -> T,
    ) -> Result<T, RoomsealError> {
        Ok(op(self.lock()?.machine()))
    }

    /// Runs an operation that may fail under the lock (committed, on a
    /// durable machine); `requests` says whether it issues or answers
    /// requests.
    pub(crate) fn try_change<T, E>(
        &self,
        requests: Requests,
        op: impl FnOnce(&mut MatrixEndpoint) -> Result<T, E>,
    ) -> Result<T, RoomsealError>
    where
        RoomsealError: From<E>,
    {
        Ok(self.lock()?.run(requests, op)?)
    }

    /// Runs an operation that cannot fail under the lock (committed, on a
    /// durable machine, where the commit can still fail).
    pub(crate) fn change<T>(
        &self,
        op: impl FnOnce(&mut MatrixEndpoint) -> T,
    ) -> Result<T, RoomsealError> {
        self.try_change(Requests::Kept, |e| Ok::<_, RoomsealError>(op(e)))
    }
}

/// Parses a user id (`@name:server`).
pub(super) fn user_id(text: &str) -> Result<UserId, RoomsealError> {
    Ok(UserId::parse(text)?)
}

/// Parses a list of user ids.
fn user_ids(texts: &[String]) -> Result<Vec<UserId>, RoomsealError> {
    texts.iter().map(|u| user_id(u)).collect()
}

/// Parses a room id (`!opaque:server`).
fn room_id(text: &str) -> Result<RoomId, RoomsealError> {
    Ok(RoomId::parse(text)?)
}

/// Parses a device id.
pub(super) fn device_id(text: &str) -> Result<DeviceId, RoomsealError> {
    Ok(DeviceId::parse(text)?)
}

/// The exported methods of a Matrix machine object whose state is the
/// field `state: Guarded<impl MatrixState>`.
macro_rules! matrix_operations {
    ($object:ident) => {
        #[uniffi::export]
        impl $object {
            /// The encrypted pickle of the whole machine under a 32-byte key
            /// (the next generation; for a durable machine, an export or
            /// backup of its store). Requests in flight are not kept: the
            /// restored machine asks again.
            pub fn pickle(&self, pickle_key: Vec<u8>) -> Result<String, RoomsealError> {
                let key = self::pickle_key(pickle_key)?;
                self.state.read_machine(|m| m.pickle(&key))
            }

            /// The generation of the last pickle written or restored: record
            /// it where it cannot be rolled back, to refuse older pickles
            /// later.
            pub fn pickle_generation(&self) -> Result<u64, RoomsealError> {
                self.state.read_machine(|m| m.pickle_generation())
            }

            /// The user id.
            pub fn user_id(&self) -> Result<String, RoomsealError> {
                self.state.read_machine(|m| m.user_id().to_string())
            }

            /// The device id.
            pub fn device_id(&self) -> Result<String, RoomsealError> {
                self.state.read_machine(|m| m.device_id().to_string())
            }

            /// The device's identity keys.
            pub fn identity(&self) -> Result<DeviceIdentity, RoomsealError> {
                self.state.read_machine(|m| m.identity_keys().into())
            }

            /// The requests to send now (key upload, key query, queued
            /// to-device sends). Each is returned again on every call until
            /// its answer is given back.
            pub fn outgoing_requests(&self) -> Result<Vec<MatrixRequest>, RoomsealError> {
                let requests = self
                    .state
                    .try_change(Requests::Changed, |m| m.outgoing_requests())?;
                MatrixRequest::from_all(&requests)
            }

            /// Takes the server's answer (its JSON body) to request
            /// `request_id`. Items of the answer that fail their checks are
            /// listed in the result's `rejected`; an answer refused whole
            /// (not of its shape) drops the request, and the next
            /// `outgoing_requests` asks again.
            pub fn mark_request_as_sent(
                &self,
                request_id: u64,
                response_json: String,
            ) -> Result<MatrixResponseResult, RoomsealError> {
                let outcome = self.state.try_change(Requests::Changed, |m| {
                    m.mark_request_as_sent(RequestId(request_id), &response_json)
                })?;
                Ok(outcome.into())
            }

            /// Takes a sync response (the whole `/sync` JSON, or an object
            /// with its `to_device`, `device_lists`,
            /// `device_one_time_keys_count` and
            /// `device_unused_fallback_key_types` members). Send the
            /// outgoing requests afterwards.
            pub fn receive_sync_changes(
                &self,
                sync_json: String,
            ) -> Result<MatrixSyncResult, RoomsealError> {
                let outcome = self
                    .state
                    .try_change(Requests::Kept, |m| m.receive_sync_changes(&sync_json))?;
                MatrixSyncResult::from_outcome(outcome)
            }

            /// Starts tracking `users` (the members of an encrypted room):
            /// the next outgoing requests query their devices. Returns those
            /// refused because the tracker is full.
            pub fn update_tracked_users(
                &self,
                users: Vec<String>,
            ) -> Result<Vec<String>, RoomsealError> {
                let users = user_ids(&users)?;
                let refused = self.state.change(|m| m.update_tracked_users(&users))?;
                Ok(refused.iter().map(ToString::to_string).collect())
            }

            /// The devices of `user` the machine knows (after a key query),
            /// with the app's trust decision for each.
            pub fn devices(&self, user_id: String) -> Result<Vec<MatrixDevice>, RoomsealError> {
                let user = self::user_id(&user_id)?;
                self.state.read_machine(|m| {
                    m.tracker()
                        .devices(&user)
                        .map(|d| MatrixDevice::new(d, m.device_trust(d)))
                        .collect()
                })
            }

            /// Whether an Olm session with the device is held.
            pub fn has_olm_session(
                &self,
                user_id: String,
                device_id: String,
            ) -> Result<bool, RoomsealError> {
                let user = self::user_id(&user_id)?;
                let device = self::device_id(&device_id)?;
                self.state.read_machine(|m| {
                    m.tracker()
                        .device(&user, &device)
                        .is_some_and(|d| m.has_olm_session(d))
                })
            }

            /// A `/keys/claim` request for the known devices of `users` that
            /// need an Olm session, or none. Not part of
            /// `outgoing_requests`: send it and hand the answer to
            /// `mark_request_as_sent`, which starts the sessions.
            pub fn keys_claim_request(
                &self,
                users: Vec<String>,
            ) -> Result<Option<MatrixRequest>, RoomsealError> {
                let users = user_ids(&users)?;
                let request = self.state.try_change(Requests::Changed, |m| {
                    Ok::<_, RoomsealError>(m.keys_claim_request(&users))
                })?;
                request
                    .as_ref()
                    .map(MatrixRequest::from_request)
                    .transpose()
            }

            /// Sets a room's settings from the content of its
            /// `m.room.encryption` state event (JSON). The next share
            /// rotates if the new periods say the current key is expired; a
            /// room with another algorithm refuses to share and encrypt.
            pub fn set_room_encryption(
                &self,
                room_id: String,
                content_json: String,
            ) -> Result<(), RoomsealError> {
                let room = self::room_id(&room_id)?;
                let settings: RoomEncryptionContent =
                    json(&content_json, "m.room.encryption content")?;
                self.state
                    .change(|m| m.set_room_encryption(&room, settings))
            }

            /// Makes sure every device of `users` (the room's members) that
            /// may read the room holds its current key, rotating first when
            /// the room's settings or a departed device say so. Returns the
            /// to-device requests to send (confirm each with
            /// `mark_request_as_sent`).
            pub fn share_room_key(
                &self,
                room_id: String,
                users: Vec<String>,
            ) -> Result<MatrixShareResult, RoomsealError> {
                let room = self::room_id(&room_id)?;
                let users = user_ids(&users)?;
                let outcome = self
                    .state
                    .try_change(Requests::Kept, |m| m.share_room_key(&room, &users))?;
                MatrixShareResult::from_outcome(outcome)
            }

            /// Forwards a held room key to another device of our own user
            /// (one with an Olm session), which reports events it reads with
            /// it as not authenticated. Send the request and confirm it.
            pub fn forward_room_key(
                &self,
                room_id: String,
                session_id: String,
                device_id: String,
            ) -> Result<MatrixRequest, RoomsealError> {
                let room = self::room_id(&room_id)?;
                let session = GroupSessionId::from_base64(&session_id)?;
                let device = self::device_id(&device_id)?;
                let request = self.state.try_change(Requests::Kept, |m| {
                    m.forward_room_key(&room, &session, &device)
                })?;
                MatrixRequest::from_request(&request)
            }

            /// Encrypts a room event (its type and content JSON, an object)
            /// with the room's current key; returns the `m.room.encrypted`
            /// content JSON to send. Share first: with no key, or an expired
            /// one, it fails with `ShareRequired`.
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
                let encrypted = self.state.try_change(Requests::Kept, |m| {
                    m.encrypt_room_event(&room, &event_type, &content)
                })?;
                super::to_json(&encrypted.to_json_value())
            }

            /// Decrypts a whole `m.room.encrypted` event (JSON, as the
            /// server delivered it) received in `room_id`.
            pub fn decrypt_room_event(
                &self,
                room_id: String,
                event_json: String,
            ) -> Result<MatrixRoomEvent, RoomsealError> {
                let room = self::room_id(&room_id)?;
                let event = EncryptedRoomEvent::from_json(&event_json)?;
                let decrypted = self
                    .state
                    .try_change(Requests::Kept, |m| m.decrypt_room_event(&room, &event))?;
                MatrixRoomEvent::from_event(decrypted, &room_id, &event.event_id)
            }

            /// Every Megolm key held (no secrets).
            pub fn room_keys(&self) -> Result<Vec<MatrixRoomKey>, RoomsealError> {
                self.state
                    .read_machine(|m| m.room_keys().into_iter().map(Into::into).collect())
            }

            /// Forgets a Megolm key; returns whether it was held. Events of
            /// that session no longer decrypt.
            pub fn forget_room_key(
                &self,
                room_id: String,
                session_id: String,
            ) -> Result<bool, RoomsealError> {
                let room = self::room_id(&room_id)?;
                let session = GroupSessionId::from_base64(&session_id)?;
                self.state.change(|m| m.forget_room_key(&room, &session))
            }

            /// Drops the room's outbound key: the next share rotates.
            /// Returns whether there was one.
            pub fn rotate_room_key(&self, room_id: String) -> Result<bool, RoomsealError> {
                let room = self::room_id(&room_id)?;
                self.state.change(|m| m.rotate_room_key(&room))
            }

            /// Records the app's trust decision for a known device; returns
            /// false for a device the machine does not know (or when too
            /// many decisions are held). Blacklisting a device that held a
            /// room key makes the next share rotate.
            pub fn set_device_trust(
                &self,
                user_id: String,
                device_id: String,
                trust: MatrixDeviceTrust,
            ) -> Result<bool, RoomsealError> {
                let user = self::user_id(&user_id)?;
                let device = self::device_id(&device_id)?;
                self.state
                    .change(|m| m.set_device_trust(&user, &device, trust.into()))
            }

            /// Who room keys go to: with `only_verified`, devices the app
            /// has not marked verified get an `m.unverified` withheld notice
            /// instead.
            pub fn set_share_policy(&self, only_verified: bool) -> Result<(), RoomsealError> {
                self.state
                    .change(|m| m.set_share_policy(SharePolicy { only_verified }))
            }

            /// The `m.room_key.withheld` notice received for a room's
            /// session, if any (an unauthenticated hint for the user
            /// interface).
            pub fn withheld_notice(
                &self,
                room_id: String,
                session_id: String,
            ) -> Result<Option<MatrixWithheldNotice>, RoomsealError> {
                let room = self::room_id(&room_id)?;
                self.state.read_machine(|m| {
                    m.withheld_notice(&room, &session_id)
                        .cloned()
                        .map(Into::into)
                })
            }

            /// How many devices an Olm session is held with.
            pub fn olm_peer_count(&self) -> Result<u32, RoomsealError> {
                self.state.read_machine(|m| count(m.olm_peer_count()))
            }
        }
    };
}

matrix_operations!(MatrixMachine);
#[cfg(feature = "sqlite")]
matrix_operations!(DurableMatrixMachine);

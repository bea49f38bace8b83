//! The operations of the endpoint objects ([`Endpoint`], and the durable
//! one with feature `sqlite`), written once for every object whose state is
//! an endpoint: each converts its arguments, runs the native
//! [`Endpoint`](CoreEndpoint) method under the object's lock (committing
//! what it changed, on a durable endpoint), and converts the result.

use std::sync::Arc;

#[cfg(feature = "sqlite")]
use super::durable::DurableEndpoint;
use super::endpoint::Endpoint;
use super::records::{
    DeviceIdentity, KeyStatus, KeyUpload, OutgoingMessage, ReceivedKey, RoomEvent, RoomKeyExport,
    RotationPolicy, SelfSignedDevice, ShareResult, StoredKey, exported_key,
};
use super::{Guarded, RoomsealError, count, json, pickle_key};
use crate::account::{DeviceKeys, SignedOneTimeKey};
use crate::group::GroupSessionId;
use crate::keys::Curve25519PublicKey;
use crate::room::{EncryptedEvent, Endpoint as CoreEndpoint, RoomError};
use crate::session::DeviceMessage;

/// The state behind an endpoint object: a native endpoint, or a durable
/// one.
pub(crate) trait State: Send {
    /// The endpoint, to read.
    fn endpoint(&self) -> &CoreEndpoint;

    /// Runs an operation that may change the endpoint; a durable endpoint
    /// commits what it changed before returning.
    fn run<T>(
        &mut self,
        op: impl FnOnce(&mut CoreEndpoint) -> Result<T, RoomError>,
    ) -> Result<T, RoomError>;
}

impl State for CoreEndpoint {
    fn endpoint(&self) -> &CoreEndpoint {
        self
    }

    fn run<T>(
        &mut self,
        op: impl FnOnce(&mut CoreEndpoint) -> Result<T, RoomError>,
    ) -> Result<T, RoomError> {
        op(self)
    }
}

impl<S: State> Guarded<S> {
    /// Reads the endpoint under the lock.
    pub(crate) fn read<T>(&self, op: impl FnOnce(&CoreEndpoint) -> T) -> Result<T, RoomsealError> {
        Ok(op(self.lock()?.endpoint()))
    }

    /// Runs an operation that may fail under the lock (committed, on a
    /// durable endpoint).
    pub(crate) fn try_update<T>(
        &self,
        op: impl FnOnce(&mut CoreEndpoint) -> Result<T, RoomError>,
    ) -> Result<T, RoomsealError> {
        Ok(self.lock()?.run(op)?)
    }

    /// Runs an operation that cannot fail under the lock (committed, on a
    /// durable endpoint, where the commit can still fail).
    pub(crate) fn update<T>(
        &self,
        op: impl FnOnce(&mut CoreEndpoint) -> T,
    ) -> Result<T, RoomsealError> {
        self.try_update(|e| Ok(op(e)))
    }
}

/// The exported methods of an endpoint object whose state is the field
/// `state: Guarded<impl State>`.
macro_rules! endpoint_operations {
    ($object:ident) => {
        #[uniffi::export]
        impl $object {
            /// The encrypted pickle of the whole state under a 32-byte key
            /// (for a durable endpoint: an export or backup of its store).
            pub fn pickle(&self, pickle_key: Vec<u8>) -> Result<String, RoomsealError> {
                let key = self::pickle_key(pickle_key)?;
                self.state.read(|e| e.pickle(&key))
            }

            /// The generation of the last pickle written or restored: record
            /// it where it cannot be rolled back, to refuse older pickles
            /// later.
            pub fn pickle_generation(&self) -> Result<u64, RoomsealError> {
                self.state.read(|e| e.pickle_generation())
            }

            /// Makes a state restored from anything but the newest copy safe
            /// to use again: forgets one-time keys, replaces the fallback
            /// key, drops outbound room keys, and requires new pairwise
            /// sessions for sending.
            pub fn recover_from_rollback(&self) -> Result<(), RoomsealError> {
                self.state.update(|e| e.recover_from_rollback())
            }

            /// The user id.
            pub fn user_id(&self) -> Result<String, RoomsealError> {
                self.state.read(|e| e.user_id().to_owned())
            }

            /// The device id.
            pub fn device_id(&self) -> Result<String, RoomsealError> {
                self.state.read(|e| e.device_id().to_owned())
            }

            /// The device's identity keys.
            pub fn identity(&self) -> Result<DeviceIdentity, RoomsealError> {
                self.state.read(|e| e.identity_keys().into())
            }

            /// This device as a checked device (for sharing to one's own
            /// other devices, or for tests).
            pub fn own_device(&self) -> Result<Arc<SelfSignedDevice>, RoomsealError> {
                let inner = self
                    .state
                    .read(|e| e.device_keys())?
                    .check_self_signature()
                    .map_err(|e| RoomsealError::Internal(e.to_string()))?;
                Ok(SelfSignedDevice::wrap(inner))
            }

            /// Tops unpublished one-time keys up to `one_time_keys`, replaces
            /// a used fallback key, and returns what to upload. Pass the
            /// result to `mark_keys_as_published` once uploaded.
            pub fn keys_to_publish(&self, one_time_keys: u32) -> Result<KeyUpload, RoomsealError> {
                let wanted = usize::try_from(one_time_keys).unwrap_or(usize::MAX);
                KeyUpload::from_keys(&self.state.update(|e| e.keys_to_publish(wanted))?)
            }

            /// Marks exactly the keys of `upload` (a result of
            /// `keys_to_publish` the server accepted) as published; keys made
            /// since stay unpublished.
            pub fn mark_keys_as_published(&self, upload: KeyUpload) -> Result<(), RoomsealError> {
                let published = upload.to_keys()?;
                self.state.update(|e| e.mark_keys_as_published(&published))
            }

            /// Replaces the fallback key now (the next `keys_to_publish`
            /// returns the new one); the previous one is kept for a grace
            /// period.
            pub fn rotate_fallback_key(&self) -> Result<(), RoomsealError> {
                self.state.update(|e| e.rotate_fallback_key())
            }

            /// Starts a pairwise session from a device's bundle and a
            /// one-time key claimed from the server (both JSON); both
            /// signatures are verified.
            pub fn establish_session(
                &self,
                device_keys_json: String,
                one_time_key_json: String,
            ) -> Result<Arc<SelfSignedDevice>, RoomsealError> {
                let device: DeviceKeys = json(&device_keys_json, "device keys")?;
                let key: SignedOneTimeKey = json(&one_time_key_json, "one-time key")?;
                let inner = self
                    .state
                    .try_update(|e| e.establish_session(&device, &key))?;
                Ok(SelfSignedDevice::wrap(inner))
            }

            /// Whether a pairwise session with the device exists.
            pub fn has_session(
                &self,
                device: Arc<SelfSignedDevice>,
            ) -> Result<bool, RoomsealError> {
                let key = device.inner.identity_keys().curve25519;
                self.state.read(|e| e.has_session(&key))
            }

            /// Makes sure the room's devices hold its current key (rotating
            /// first if a device left or the policy says so).
            pub fn share_room_key(
                &self,
                room_id: String,
                devices: Vec<Arc<SelfSignedDevice>>,
            ) -> Result<ShareResult, RoomsealError> {
                let devices = SelfSignedDevice::unwrap_all(&devices);
                let outcome = self
                    .state
                    .try_update(|e| e.share_room_key(&room_id, &devices))?;
                Ok(outcome.into())
            }

            /// Confirms the messages of `share` were sent: those devices
            /// count as served. Returns how many were marked.
            pub fn mark_room_key_sent(&self, share: ShareResult) -> Result<u32, RoomsealError> {
                let session_id = GroupSessionId::from_base64(&share.session_id)?;
                let recipients = share
                    .messages
                    .iter()
                    .map(|m| Curve25519PublicKey::from_base64(&m.recipient_key))
                    .collect::<Result<Vec<_>, _>>()?;
                let marked = self.state.update(|e| {
                    recipients
                        .iter()
                        .filter(|r| e.mark_room_key_sent_to(&share.room_id, &session_id, r))
                        .count()
                })?;
                Ok(count(marked))
            }

            /// The share message for one device already offered the room's
            /// current key (for example because it reports the key missing);
            /// none when it was never offered it or has no session.
            pub fn reshare_room_key(
                &self,
                room_id: String,
                device: Arc<SelfSignedDevice>,
            ) -> Result<Option<OutgoingMessage>, RoomsealError> {
                let message = self
                    .state
                    .try_update(|e| e.reshare_room_key(&room_id, &device.inner))?;
                Ok(message.map(Into::into))
            }

            /// Every stored inbound room key (no secrets), for backup or
            /// clean-up.
            pub fn room_keys(&self) -> Result<Vec<StoredKey>, RoomsealError> {
                let keys = self.state.read(|e| e.room_keys())?;
                Ok(keys.into_iter().map(Into::into).collect())
            }

            /// Exports the stored room key of `session_id` (base64) in
            /// `room_id` at message index `index` (at least its first index;
            /// see `room_keys`), with the device that created it; none when
            /// no such key is stored or it does not reach back to `index`.
            /// The export is secret.
            pub fn export_room_key(
                &self,
                room_id: String,
                session_id: String,
                index: u32,
            ) -> Result<Option<RoomKeyExport>, RoomsealError> {
                let session_id = GroupSessionId::from_base64(&session_id)?;
                let exported = self
                    .state
                    .read(|e| e.export_room_key(&room_id, &session_id, index))?;
                Ok(exported.map(|(sender, key)| RoomKeyExport::new(sender, &key)))
            }

            /// Imports a room key exported by `export_room_key` (here or on
            /// another device), attributed to `sender_identity` as the
            /// export says. Events it decrypts are reported as not
            /// authenticated, and it never displaces a key shared by
            /// another device (`Rejected`). Returns whether it was new.
            pub fn import_room_key(
                &self,
                room_id: String,
                sender_identity: DeviceIdentity,
                export_text: String,
            ) -> Result<KeyStatus, RoomsealError> {
                let key = exported_key(export_text)?;
                let sender = sender_identity.keys()?;
                let added = self
                    .state
                    .try_update(|e| e.import_room_key(&room_id, sender, &key))?;
                Ok(added.into())
            }

            /// Forgets one inbound room key; returns whether it was stored.
            pub fn forget_room_key(
                &self,
                room_id: String,
                session_id: String,
            ) -> Result<bool, RoomsealError> {
                let session_id = GroupSessionId::from_base64(&session_id)?;
                self.state
                    .update(|e| e.forget_room_key(&room_id, &session_id))
            }

            /// Forgets every inbound key of the room; returns how many were
            /// dropped.
            pub fn forget_room_keys(&self, room_id: String) -> Result<u32, RoomsealError> {
                Ok(count(self.state.update(|e| e.forget_room_keys(&room_id))?))
            }

            /// Drops every pairwise session with the device whose Curve25519
            /// identity key (base64) is given; returns how many were
            /// dropped. Frees room when new peers are refused (`Rejected`,
            /// too many peers).
            pub fn forget_peer(&self, device_curve25519: String) -> Result<u32, RoomsealError> {
                let key = Curve25519PublicKey::from_base64(&device_curve25519)?;
                Ok(count(self.state.update(|e| e.forget_peer(&key))?))
            }

            /// Discards the room's outbound key; the next share rotates.
            pub fn rotate_room_key(&self, room_id: String) -> Result<bool, RoomsealError> {
                self.state.update(|e| e.rotate_room_key(&room_id))
            }

            /// Takes a pairwise message (base64) that the server delivered
            /// from user `sender_user_id` and the device whose identity key
            /// is `sender_key` (base64), and stores the room key it carries.
            pub fn receive_device_message(
                &self,
                sender_user_id: String,
                sender_key: String,
                message: String,
            ) -> Result<ReceivedKey, RoomsealError> {
                let sender = Curve25519PublicKey::from_base64(&sender_key)?;
                let message = DeviceMessage::from_base64(&message)?;
                let received = self
                    .state
                    .try_update(|e| e.receive_device_message(&sender_user_id, &sender, &message))?;
                Ok(received.into())
            }

            /// Encrypts a room event; returns the envelope JSON the server
            /// stores.
            pub fn encrypt_event(
                &self,
                room_id: String,
                event_type: String,
                content_json: String,
            ) -> Result<String, RoomsealError> {
                let content: serde_json::Value = json(&content_json, "event content")?;
                let envelope = self
                    .state
                    .try_update(|e| e.encrypt_event(&room_id, &event_type, &content))?;
                Ok(envelope.to_json())
            }

            /// Decrypts an envelope (JSON) of `room_id` with server-assigned
            /// id `event_id`.
            pub fn decrypt_event(
                &self,
                room_id: String,
                event_id: String,
                envelope_json: String,
            ) -> Result<RoomEvent, RoomsealError> {
                let envelope = EncryptedEvent::from_json(&envelope_json)?;
                let event = self
                    .state
                    .try_update(|e| e.decrypt_event(&room_id, &event_id, &envelope))?;
                RoomEvent::from_event(event)
            }

            /// Sets the rotation policy: at most `max_messages` per room key
            /// and at most `max_age_seconds` of age (on the system clock).
            /// Kept with the state: a restored endpoint keeps it.
            pub fn set_rotation_policy(
                &self,
                max_messages: u32,
                max_age_seconds: u64,
            ) -> Result<(), RoomsealError> {
                let policy = RotationPolicy {
                    max_messages,
                    max_age_seconds,
                };
                self.state.update(|e| e.set_rotation_policy(policy.into()))
            }

            /// The rotation policy in force.
            pub fn rotation_policy(&self) -> Result<RotationPolicy, RoomsealError> {
                self.state.read(|e| e.rotation_policy().into())
            }
        }
    };
}

endpoint_operations!(Endpoint);
#[cfg(feature = "sqlite")]
endpoint_operations!(DurableEndpoint);

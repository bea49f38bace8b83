//! Mobile bindings: the orchestrator-level API as uniffi objects, records
//! and one error type, for Kotlin, Swift and Python (feature `ffi`).
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
//!   forms (base64 and JSON), exactly as the server stores them.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::account::{DeviceKeys, SelfSignedDevice, SignedOneTimeKey};
use crate::codec::DecodeError;
use crate::group::GroupSessionId;
use crate::keys::{Curve25519PublicKey, IdentityKeys, KeyError};
use crate::pickle::{PickleError, PickleKey};
use crate::room::{
    EncryptedEvent, Endpoint as CoreEndpoint, KeyAdded, RoomError, RotationPolicy, ToDeviceMessage,
};
use crate::session::DeviceMessage;

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
    /// No pairwise session can read the message.
    #[error("no session with the sending device")]
    NoSession(String),
    /// The room key must be shared (or rotated) before encrypting; the
    /// message says why (never shared, expired, a device was forgotten...).
    #[error("{0}")]
    ShareRequired(String),
    /// The pickle cannot be restored: wrong key, corrupted, or another type.
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
            _ => Self::Rejected(text),
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

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, RoomsealError> {
    serde_json::from_str(text).map_err(|_| {
        RoomsealError::InvalidInput(format!("{what} is not valid JSON of the expected shape"))
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, RoomsealError> {
    serde_json::to_string(value)
        .map_err(|_| RoomsealError::Internal("could not encode JSON".into()))
}

/// Takes the caller's pickle key bytes, wiping the copy the bindings made
/// (whatever its length) once the key is built.
fn pickle_key(bytes: Vec<u8>) -> Result<PickleKey, RoomsealError> {
    let bytes = Zeroizing::new(bytes);
    let mut array = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        RoomsealError::InvalidInput(format!("pickle key must be 32 bytes, not {}", bytes.len()))
    })?;
    Ok(PickleKey::from_bytes(&mut array))
}

/// A device's two public identity keys, unpadded base64.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DeviceIdentity {
    /// The Ed25519 signing key.
    pub ed25519: String,
    /// The X25519 identity key.
    pub curve25519: String,
}

impl From<IdentityKeys> for DeviceIdentity {
    fn from(keys: IdentityKeys) -> Self {
        Self {
            ed25519: keys.ed25519.to_base64(),
            curve25519: keys.curve25519.to_base64(),
        }
    }
}

/// A device whose key bundle's self-signature checks out. Only
/// [`Device::from_json`] (`SelfSignedDevice.fromJson` in the bindings) or
/// the endpoint creates one, so a device passed to [`Endpoint::share_room_key`] always has consistent keys.
/// It says nothing about trust: any device can sign a bundle naming any
/// user; verifying that the device belongs to the user is the app's job.
#[derive(Debug, uniffi::Object)]
#[uniffi(name = "SelfSignedDevice")]
pub struct Device {
    inner: SelfSignedDevice,
}

#[uniffi::export(name = "SelfSignedDevice")]
impl Device {
    /// Checks a device-key bundle as published (JSON): its self-signature.
    #[uniffi::constructor]
    pub fn from_json(device_keys_json: String) -> Result<Arc<Self>, RoomsealError> {
        let keys: DeviceKeys = json(&device_keys_json, "device keys")?;
        let inner = keys
            .check_self_signature()
            .map_err(|e| RoomsealError::Authentication(e.to_string()))?;
        Ok(Arc::new(Self { inner }))
    }

    /// The owning user's id.
    pub fn user_id(&self) -> String {
        self.inner.user_id().to_owned()
    }

    /// The device id.
    pub fn device_id(&self) -> String {
        self.inner.device_id().to_owned()
    }

    /// The device's identity keys.
    pub fn identity(&self) -> DeviceIdentity {
        self.inner.identity_keys().into()
    }
}

/// What to upload to the server (all JSON, ready to send).
#[derive(Clone, Debug, uniffi::Record)]
pub struct KeyUpload {
    /// The signed device-key bundle.
    pub device_keys_json: String,
    /// Signed one-time keys not yet published.
    pub one_time_keys_json: Vec<String>,
    /// The signed fallback key, if not yet published.
    pub fallback_key_json: Option<String>,
}

/// A pairwise message to deliver to one device: send `sender_key` and
/// `message` to the device named by `user_id` and `device_id`.
#[derive(Clone, Debug, uniffi::Record)]
pub struct OutgoingMessage {
    /// Recipient user id.
    pub user_id: String,
    /// Recipient device id.
    pub device_id: String,
    /// Recipient's X25519 identity key (base64).
    pub recipient_key: String,
    /// The sender's (our) X25519 identity key (base64).
    pub sender_key: String,
    /// The encrypted message (base64).
    pub message: String,
}

/// The result of sharing a room key. Persist the endpoint, send the
/// messages, then confirm them with [`Endpoint::mark_room_key_sent`].
#[derive(Clone, Debug, uniffi::Record)]
pub struct ShareResult {
    /// The room.
    pub room_id: String,
    /// The room's current group session id (base64).
    pub session_id: String,
    /// Whether the key was rotated first.
    pub rotated: bool,
    /// Why it was rotated (a sentence), if it was.
    pub rotation_reason: Option<String>,
    /// Messages to deliver, in the order the devices were given.
    pub messages: Vec<OutgoingMessage>,
    /// Devices without a pairwise session: establish one and share again.
    pub missing_sessions: Vec<Arc<Device>>,
}

/// What receiving a room key did to the key store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum KeyStatus {
    /// The key was new.
    New,
    /// The key was known; this copy improved it (earlier index, or more of
    /// it authenticated).
    Improved,
    /// The key was already known as well or better.
    Unchanged,
}

impl From<KeyAdded> for KeyStatus {
    fn from(added: KeyAdded) -> Self {
        match added {
            KeyAdded::New => Self::New,
            KeyAdded::Improved => Self::Improved,
            KeyAdded::Unchanged => Self::Unchanged,
        }
    }
}

/// A room key received from another device.
#[derive(Clone, Debug, uniffi::Record)]
pub struct ReceivedKey {
    /// The room.
    pub room_id: String,
    /// The group session id (base64).
    pub session_id: String,
    /// The sending device.
    pub sender: DeviceIdentity,
    /// The sending device's user id (checked against the user the server
    /// delivered the message from).
    pub sender_user_id: String,
    /// The sending device's device id.
    pub sender_device_id: String,
    /// The first message index the key decrypts.
    pub first_index: u32,
    /// Whether the key was new to this device.
    pub status: KeyStatus,
    /// Keys evicted to make room (their session ids, base64).
    pub evicted_session_ids: Vec<String>,
}

/// A stored inbound room key, as listed for backup or clean-up (no secrets).
#[derive(Clone, Debug, uniffi::Record)]
pub struct StoredKey {
    /// The room.
    pub room_id: String,
    /// The group session id (base64).
    pub session_id: String,
    /// The device that created the session.
    pub sender: DeviceIdentity,
    /// Its user id, as bound when the key was shared (none for imports).
    pub sender_user_id: Option<String>,
    /// Its device id, as bound when the key was shared.
    pub sender_device_id: Option<String>,
    /// The first index the key decrypts.
    pub first_index: u32,
    /// The first index decrypted as authenticated, if any.
    pub authenticated_from: Option<u32>,
    /// Replay records kept.
    pub replay_records: u64,
    /// Bytes the key takes in the pickle.
    pub size_bytes: u64,
}

/// A decrypted room event.
#[derive(Clone, Debug, uniffi::Record)]
pub struct RoomEvent {
    /// The event type.
    pub event_type: String,
    /// The event content (JSON).
    pub content_json: String,
    /// The device whose room key encrypted it.
    pub sender: DeviceIdentity,
    /// The sending device's user id as bound when the key was shared (none
    /// for an imported key). The server's word until the app verifies it.
    pub sender_user_id: Option<String>,
    /// The sending device's device id as bound when the key was shared.
    pub sender_device_id: Option<String>,
    /// The group session id (base64).
    pub session_id: String,
    /// The message index.
    pub message_index: u32,
    /// Whether the key for this index came signed from its creator over a
    /// pairwise session.
    pub authenticated: bool,
}

/// One device's end-to-end encryption state. Safe to share between threads.
#[derive(Debug, uniffi::Object)]
pub struct Endpoint {
    inner: Mutex<CoreEndpoint>,
}

impl Endpoint {
    fn lock(&self) -> Result<MutexGuard<'_, CoreEndpoint>, RoomsealError> {
        self.inner.lock().map_err(|_| {
            RoomsealError::Internal(
                "state is unusable after an earlier internal error; restore it from a pickle"
                    .into(),
            )
        })
    }
}

#[uniffi::export]
impl Endpoint {
    /// A new device with a fresh identity.
    #[uniffi::constructor]
    pub fn new(user_id: String, device_id: String) -> Result<Arc<Self>, RoomsealError> {
        Ok(Arc::new(Self {
            inner: Mutex::new(CoreEndpoint::new(&user_id, &device_id)?),
        }))
    }

    /// Restores a device from its pickle under a 32-byte key.
    #[uniffi::constructor]
    pub fn from_pickle(pickle: String, pickle_key: Vec<u8>) -> Result<Arc<Self>, RoomsealError> {
        let endpoint = CoreEndpoint::from_pickle(&pickle, &self::pickle_key(pickle_key)?)?;
        Ok(Arc::new(Self {
            inner: Mutex::new(endpoint),
        }))
    }

    /// Restores a device from its pickle, refusing one older than
    /// `newest_generation`, the newest generation the app recorded (a
    /// rollback: `Pickle` error).
    #[uniffi::constructor]
    pub fn from_pickle_no_older_than(
        pickle: String,
        pickle_key: Vec<u8>,
        newest_generation: u64,
    ) -> Result<Arc<Self>, RoomsealError> {
        let endpoint = CoreEndpoint::from_pickle_no_older_than(
            &pickle,
            &self::pickle_key(pickle_key)?,
            newest_generation,
        )?;
        Ok(Arc::new(Self {
            inner: Mutex::new(endpoint),
        }))
    }

    /// The encrypted pickle of the whole state under a 32-byte key.
    pub fn pickle(&self, pickle_key: Vec<u8>) -> Result<String, RoomsealError> {
        let key = self::pickle_key(pickle_key)?;
        Ok(self.lock()?.pickle(&key))
    }

    /// The generation of the last pickle written or restored: record it
    /// where it cannot be rolled back, to refuse older pickles later.
    pub fn pickle_generation(&self) -> Result<u64, RoomsealError> {
        Ok(self.lock()?.pickle_generation())
    }

    /// Makes a state restored from anything but the newest pickle safe to
    /// use again: forgets one-time keys, replaces the fallback key, drops
    /// outbound room keys, and requires new pairwise sessions for sending.
    pub fn recover_from_rollback(&self) -> Result<(), RoomsealError> {
        self.lock()?.recover_from_rollback();
        Ok(())
    }

    /// The user id.
    pub fn user_id(&self) -> Result<String, RoomsealError> {
        Ok(self.lock()?.user_id().to_owned())
    }

    /// The device id.
    pub fn device_id(&self) -> Result<String, RoomsealError> {
        Ok(self.lock()?.device_id().to_owned())
    }

    /// The device's identity keys.
    pub fn identity(&self) -> Result<DeviceIdentity, RoomsealError> {
        Ok(self.lock()?.identity_keys().into())
    }

    /// This device as a verified [`Device`] (for sharing to one's own other
    /// devices, or for tests).
    pub fn own_device(&self) -> Result<Arc<Device>, RoomsealError> {
        let keys = self.lock()?.device_keys();
        let inner = keys
            .check_self_signature()
            .map_err(|e| RoomsealError::Internal(e.to_string()))?;
        Ok(Arc::new(Device { inner }))
    }

    /// Tops unpublished one-time keys up to `one_time_keys`, replaces a used
    /// fallback key, and returns what to upload. Pass the result to
    /// [`Endpoint::mark_keys_as_published`] once uploaded.
    pub fn keys_to_publish(&self, one_time_keys: u32) -> Result<KeyUpload, RoomsealError> {
        let keys = self
            .lock()?
            .keys_to_publish(usize::try_from(one_time_keys).unwrap_or(usize::MAX));
        Ok(KeyUpload {
            device_keys_json: to_json(&keys.device_keys)?,
            one_time_keys_json: keys
                .one_time_keys
                .iter()
                .map(to_json)
                .collect::<Result<_, _>>()?,
            fallback_key_json: keys.fallback_key.as_ref().map(to_json).transpose()?,
        })
    }

    /// Marks exactly the keys of `upload` (a result of `keys_to_publish`
    /// the server accepted) as published; keys made since stay unpublished.
    pub fn mark_keys_as_published(&self, upload: KeyUpload) -> Result<(), RoomsealError> {
        let published = crate::room::KeysToPublish {
            device_keys: json(&upload.device_keys_json, "device keys")?,
            one_time_keys: upload
                .one_time_keys_json
                .iter()
                .map(|k| json(k, "one-time key"))
                .collect::<Result<_, _>>()?,
            fallback_key: upload
                .fallback_key_json
                .as_deref()
                .map(|k| json(k, "fallback key"))
                .transpose()?,
        };
        self.lock()?.mark_keys_as_published(&published);
        Ok(())
    }

    /// Replaces the fallback key now (the next `keys_to_publish` returns the
    /// new one); the previous one is kept for a grace period.
    pub fn rotate_fallback_key(&self) -> Result<(), RoomsealError> {
        self.lock()?.rotate_fallback_key();
        Ok(())
    }

    /// Starts a pairwise session from a device's bundle and a one-time key
    /// claimed from the server (both JSON); both signatures are verified.
    pub fn establish_session(
        &self,
        device_keys_json: String,
        one_time_key_json: String,
    ) -> Result<Arc<Device>, RoomsealError> {
        let device: DeviceKeys = json(&device_keys_json, "device keys")?;
        let key: SignedOneTimeKey = json(&one_time_key_json, "one-time key")?;
        let inner = self.lock()?.establish_session(&device, &key)?;
        Ok(Arc::new(Device { inner }))
    }

    /// Whether a pairwise session with the device exists.
    pub fn has_session(&self, device: Arc<Device>) -> Result<bool, RoomsealError> {
        Ok(self
            .lock()?
            .has_session(&device.inner.identity_keys().curve25519))
    }

    /// Makes sure the room's devices hold its current key (rotating first if
    /// a device left or the policy says so).
    pub fn share_room_key(
        &self,
        room_id: String,
        devices: Vec<Arc<Device>>,
    ) -> Result<ShareResult, RoomsealError> {
        let devices: Vec<SelfSignedDevice> = devices.iter().map(|d| d.inner.clone()).collect();
        let outcome = self.lock()?.share_room_key(&room_id, &devices)?;
        Ok(ShareResult {
            room_id: outcome.room_id,
            session_id: outcome.session_id.to_base64(),
            rotated: outcome.rotated,
            rotation_reason: outcome.rotation_reason.map(|r| r.to_string()),
            messages: outcome.messages.into_iter().map(outgoing).collect(),
            missing_sessions: outcome
                .missing_sessions
                .into_iter()
                .map(|inner| Arc::new(Device { inner }))
                .collect(),
        })
    }

    /// Confirms the messages of `share` were sent: those devices count as
    /// served. Returns how many were marked.
    pub fn mark_room_key_sent(&self, share: ShareResult) -> Result<u32, RoomsealError> {
        let session_id = GroupSessionId::from_base64(&share.session_id)?;
        let mut endpoint = self.lock()?;
        let mut marked = 0u32;
        for message in &share.messages {
            let recipient = Curve25519PublicKey::from_base64(&message.recipient_key)?;
            if endpoint.mark_room_key_sent_to(&share.room_id, &session_id, &recipient) {
                marked = marked.saturating_add(1);
            }
        }
        Ok(marked)
    }

    /// The share message for one device already offered the room's current
    /// key (for example because it reports the key missing); none when it
    /// was never offered it or has no session.
    pub fn reshare_room_key(
        &self,
        room_id: String,
        device: Arc<Device>,
    ) -> Result<Option<OutgoingMessage>, RoomsealError> {
        Ok(self
            .lock()?
            .reshare_room_key(&room_id, &device.inner)?
            .map(outgoing))
    }

    /// Every stored inbound room key (no secrets), for backup or clean-up.
    pub fn room_keys(&self) -> Result<Vec<StoredKey>, RoomsealError> {
        Ok(self
            .lock()?
            .room_keys()
            .into_iter()
            .map(|k| StoredKey {
                room_id: k.room_id,
                session_id: k.session_id.to_base64(),
                sender: k.sender.into(),
                sender_user_id: k.sender_user_id,
                sender_device_id: k.sender_device_id,
                first_index: k.first_index,
                authenticated_from: k.authenticated_from,
                replay_records: u64::try_from(k.replay_records).unwrap_or(u64::MAX),
                size_bytes: u64::try_from(k.size_bytes).unwrap_or(u64::MAX),
            })
            .collect())
    }

    /// Forgets one inbound room key; returns whether it was stored.
    pub fn forget_room_key(
        &self,
        room_id: String,
        session_id: String,
    ) -> Result<bool, RoomsealError> {
        let session_id = GroupSessionId::from_base64(&session_id)?;
        Ok(self.lock()?.forget_room_key(&room_id, &session_id))
    }

    /// Forgets every inbound key of the room; returns how many were dropped.
    pub fn forget_room_keys(&self, room_id: String) -> Result<u32, RoomsealError> {
        let dropped = self.lock()?.forget_room_keys(&room_id);
        Ok(u32::try_from(dropped).unwrap_or(u32::MAX))
    }

    /// Drops every pairwise session with the device whose Curve25519
    /// identity key (base64) is given; returns how many were dropped. Frees
    /// room when new peers are refused (`Rejected`, too many peers).
    pub fn forget_peer(&self, device_curve25519: String) -> Result<u32, RoomsealError> {
        let key = Curve25519PublicKey::from_base64(&device_curve25519)?;
        let dropped = self.lock()?.forget_peer(&key);
        Ok(u32::try_from(dropped).unwrap_or(u32::MAX))
    }

    /// Discards the room's outbound key; the next share rotates.
    pub fn rotate_room_key(&self, room_id: String) -> Result<bool, RoomsealError> {
        Ok(self.lock()?.rotate_room_key(&room_id))
    }

    /// Takes a pairwise message (base64) that the server delivered from user
    /// `sender_user_id` and the device whose identity key is `sender_key`
    /// (base64), and stores the room key it carries.
    pub fn receive_device_message(
        &self,
        sender_user_id: String,
        sender_key: String,
        message: String,
    ) -> Result<ReceivedKey, RoomsealError> {
        let sender = Curve25519PublicKey::from_base64(&sender_key)?;
        let message = DeviceMessage::from_base64(&message)?;
        let received = self
            .lock()?
            .receive_device_message(&sender_user_id, &sender, &message)?;
        Ok(ReceivedKey {
            room_id: received.room_id,
            session_id: received.session_id.to_base64(),
            sender: received.sender.into(),
            sender_user_id: received.sender_user_id,
            sender_device_id: received.sender_device_id,
            first_index: received.first_index,
            status: received.added.into(),
            evicted_session_ids: received
                .evicted
                .iter()
                .map(|(_, id)| id.to_base64())
                .collect(),
        })
    }

    /// Encrypts a room event; returns the envelope JSON the server stores.
    pub fn encrypt_event(
        &self,
        room_id: String,
        event_type: String,
        content_json: String,
    ) -> Result<String, RoomsealError> {
        let content: serde_json::Value = json(&content_json, "event content")?;
        let envelope = self
            .lock()?
            .encrypt_event(&room_id, &event_type, &content)?;
        Ok(envelope.to_json())
    }

    /// Decrypts an envelope (JSON) of `room_id` with server-assigned id
    /// `event_id`.
    pub fn decrypt_event(
        &self,
        room_id: String,
        event_id: String,
        envelope_json: String,
    ) -> Result<RoomEvent, RoomsealError> {
        let envelope = EncryptedEvent::from_json(&envelope_json)?;
        let event = self.lock()?.decrypt_event(&room_id, &event_id, &envelope)?;
        Ok(RoomEvent {
            event_type: event.event_type,
            content_json: to_json(&event.content)?,
            sender: event.sender.into(),
            sender_user_id: event.sender_user_id,
            sender_device_id: event.sender_device_id,
            session_id: event.session_id.to_base64(),
            message_index: event.message_index,
            authenticated: event.authenticated,
        })
    }

    /// Sets the rotation policy: at most `max_messages` per room key and at
    /// most `max_age_seconds` of age.
    pub fn set_rotation_policy(
        &self,
        max_messages: u32,
        max_age_seconds: u64,
    ) -> Result<(), RoomsealError> {
        self.lock()?.set_rotation_policy(RotationPolicy {
            max_messages,
            max_age: Duration::from_secs(max_age_seconds),
        });
        Ok(())
    }
}

fn outgoing(m: ToDeviceMessage) -> OutgoingMessage {
    OutgoingMessage {
        user_id: m.user_id,
        device_id: m.device_id,
        recipient_key: m.recipient_key.to_base64(),
        sender_key: m.sender_key.to_base64(),
        message: m.message.to_base64(),
    }
}

/// Diagnostics: nanoseconds per encrypt-then-decrypt of a small event,
/// measured natively in Rust over `iterations` rounds (to compare with the
/// same operation called through the bindings).
#[uniffi::export]
pub fn native_event_round_trip_ns(iterations: u32) -> Result<f64, RoomsealError> {
    let mut alice = CoreEndpoint::new("@alice:bench", "A")?;
    let mut bob = CoreEndpoint::new("@bob:bench", "B")?;
    let mut bob_keys = bob.keys_to_publish(1);
    bob.mark_keys_as_published(&bob_keys);
    let otk = bob_keys
        .one_time_keys
        .pop()
        .ok_or_else(|| RoomsealError::Internal("no key".into()))?;
    let bob_device = alice.establish_session(&bob_keys.device_keys, &otk)?;
    let room = "!bench:x";
    alice.set_rotation_policy(RotationPolicy {
        max_messages: u32::MAX,
        max_age: Duration::MAX,
    });
    let outcome = alice.share_room_key(room, &[bob_device])?;
    for m in &outcome.messages {
        bob.receive_device_message(alice.user_id(), &m.sender_key, &m.message)?;
    }
    let content = serde_json::json!({"body": "hello from the benchmark"});
    let start = std::time::Instant::now();
    for i in 0..iterations {
        let envelope = alice.encrypt_event(room, "m.room.message", &content)?;
        // The bindings pass JSON text both ways; do the same here.
        let text = envelope.to_json();
        let parsed = EncryptedEvent::from_json(&text)?;
        let event = bob.decrypt_event(room, &format!("$e{i}"), &parsed)?;
        std::hint::black_box(serde_json::to_string(&event.content).ok());
    }
    let elapsed = start.elapsed().as_nanos() as f64;
    Ok(elapsed / f64::from(iterations.max(1)))
}

/// Test-only probes (feature `ffi-test-probes`, never in an app build): calls
/// that fail the way an internal bug would, so the binding test suite can
/// check that a Rust panic arrives as an exception, not an abort, and that an
/// object whose state lock it poisoned refuses further calls with
/// [`RoomsealError::Internal`].
#[cfg(feature = "ffi-test-probes")]
#[uniffi::export]
impl Endpoint {
    /// Panics while holding this endpoint's state lock.
    #[allow(clippy::panic)]
    pub fn test_probe_panic_while_locked(&self) -> Result<(), RoomsealError> {
        let _guard = self.lock()?;
        panic!("test probe: deliberate panic while the state lock is held");
    }
}

/// Test-only probe (feature `ffi-test-probes`): panics outside any object.
#[cfg(feature = "ffi-test-probes")]
#[uniffi::export]
#[allow(clippy::panic)]
pub fn test_probe_panic() {
    panic!("test probe: deliberate panic");
}

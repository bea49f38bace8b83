//! The records (and the one small object) that every exposed layer passes
//! across the boundary, with their conversions from and to the crate's
//! types: identities, key uploads, shares, received and stored keys,
//! exports, events and the rotation policy.

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use super::{RoomsealError, json, to_json};
use crate::account::{DeviceKeys, SelfSignedDevice as CheckedDevice};
use crate::group::ExportedSessionKey;
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey, IdentityKeys};
use crate::room::{
    DecryptedEvent, KeyAdded, KeysToPublish, ReceivedRoomKey, RoomKeyShareOutcome,
    RotationPolicy as CorePolicy, StoredRoomKey, ToDeviceMessage,
};

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

impl DeviceIdentity {
    /// The identity keys this record names (`InvalidInput` if a key does
    /// not decode).
    pub(crate) fn keys(&self) -> Result<IdentityKeys, RoomsealError> {
        Ok(IdentityKeys {
            ed25519: Ed25519PublicKey::from_base64(&self.ed25519)?,
            curve25519: Curve25519PublicKey::from_base64(&self.curve25519)?,
        })
    }
}

/// A device whose key bundle's self-signature checks out. Only
/// [`SelfSignedDevice::from_json`] (or an endpoint) creates one, so a
/// device passed to `share_room_key` always has consistent keys. It says
/// nothing about trust: any device can sign a bundle naming any user;
/// verifying that the device belongs to the user is the app's job.
#[derive(Debug, uniffi::Object)]
pub struct SelfSignedDevice {
    pub(crate) inner: CheckedDevice,
}

#[uniffi::export]
impl SelfSignedDevice {
    /// Checks a device-key bundle as published (JSON): its self-signature.
    #[uniffi::constructor]
    pub fn from_json(device_keys_json: String) -> Result<Arc<Self>, RoomsealError> {
        let keys: DeviceKeys = json(&device_keys_json, "device keys")?;
        let inner = keys
            .check_self_signature()
            .map_err(|e| RoomsealError::Authentication(e.to_string()))?;
        Ok(Self::wrap(inner))
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

impl SelfSignedDevice {
    pub(crate) fn wrap(inner: CheckedDevice) -> Arc<Self> {
        Arc::new(Self { inner })
    }

    /// The checked devices behind a list of objects.
    pub(crate) fn unwrap_all(devices: &[Arc<Self>]) -> Vec<CheckedDevice> {
        devices.iter().map(|d| d.inner.clone()).collect()
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

impl KeyUpload {
    pub(crate) fn from_keys(keys: &KeysToPublish) -> Result<Self, RoomsealError> {
        Ok(Self {
            device_keys_json: to_json(&keys.device_keys)?,
            one_time_keys_json: keys
                .one_time_keys
                .iter()
                .map(to_json)
                .collect::<Result<_, _>>()?,
            fallback_key_json: keys.fallback_key.as_ref().map(to_json).transpose()?,
        })
    }

    pub(crate) fn to_keys(&self) -> Result<KeysToPublish, RoomsealError> {
        Ok(KeysToPublish {
            device_keys: json(&self.device_keys_json, "device keys")?,
            one_time_keys: self
                .one_time_keys_json
                .iter()
                .map(|k| json(k, "one-time key"))
                .collect::<Result<_, _>>()?,
            fallback_key: self
                .fallback_key_json
                .as_deref()
                .map(|k| json(k, "fallback key"))
                .transpose()?,
        })
    }
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

impl From<ToDeviceMessage> for OutgoingMessage {
    fn from(m: ToDeviceMessage) -> Self {
        Self {
            user_id: m.user_id,
            device_id: m.device_id,
            recipient_key: m.recipient_key.to_base64(),
            sender_key: m.sender_key.to_base64(),
            message: m.message.to_base64(),
        }
    }
}

/// The result of sharing a room key. Persist the endpoint (a durable one
/// already is), send the messages, then confirm them with
/// `mark_room_key_sent`.
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
    pub missing_sessions: Vec<Arc<SelfSignedDevice>>,
}

impl From<RoomKeyShareOutcome> for ShareResult {
    fn from(outcome: RoomKeyShareOutcome) -> Self {
        Self {
            room_id: outcome.room_id,
            session_id: outcome.session_id.to_base64(),
            rotated: outcome.rotated,
            rotation_reason: outcome.rotation_reason.map(|r| r.to_string()),
            messages: outcome.messages.into_iter().map(Into::into).collect(),
            missing_sessions: outcome
                .missing_sessions
                .into_iter()
                .map(SelfSignedDevice::wrap)
                .collect(),
        }
    }
}

/// What receiving (or importing) a room key did to the key store: whether
/// the key was new.
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

impl From<ReceivedRoomKey> for ReceivedKey {
    fn from(received: ReceivedRoomKey) -> Self {
        Self {
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
        }
    }
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

impl From<StoredRoomKey> for StoredKey {
    fn from(k: StoredRoomKey) -> Self {
        Self {
            room_id: k.room_id,
            session_id: k.session_id.to_base64(),
            sender: k.sender.into(),
            sender_user_id: k.sender_user_id,
            sender_device_id: k.sender_device_id,
            first_index: k.first_index,
            authenticated_from: k.authenticated_from,
            replay_records: u64::try_from(k.replay_records).unwrap_or(u64::MAX),
            size_bytes: u64::try_from(k.size_bytes).unwrap_or(u64::MAX),
        }
    }
}

/// A stored room key exported at some index, for a backup or for another
/// of the user's devices. `export` is SECRET: whoever holds it reads the
/// room's events from `first_index` on. Keep it only encrypted, and
/// overwrite it once used where the language allows.
#[derive(Clone, Debug, uniffi::Record)]
pub struct RoomKeyExport {
    /// The exported key (base64 text of 165 bytes).
    pub export: String,
    /// The device that created the session, as the store holds it: pass it
    /// back to `import_room_key`.
    pub sender: DeviceIdentity,
    /// The first message index the export decrypts.
    pub first_index: u32,
}

impl RoomKeyExport {
    pub(crate) fn new(sender: IdentityKeys, key: &ExportedSessionKey) -> Self {
        // Take the text out of its wiping wrapper rather than copy it: the
        // String handed to the foreign side is the only copy left.
        let mut text = key.to_base64();
        Self {
            export: std::mem::take(&mut *text),
            sender: sender.into(),
            first_index: key.first_index(),
        }
    }
}

/// Decodes a room-key export handed over by the app, wiping the bindings'
/// copy of its text.
pub(crate) fn exported_key(text: String) -> Result<ExportedSessionKey, RoomsealError> {
    let text = Zeroizing::new(text);
    Ok(ExportedSessionKey::from_base64(&text)?)
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

impl RoomEvent {
    pub(crate) fn from_event(event: DecryptedEvent) -> Result<Self, RoomsealError> {
        Ok(Self {
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
}

/// When a room key is replaced: after `max_messages` events or
/// `max_age_seconds`, whichever comes first (and whenever a device leaves).
/// Kept in the pickle and in the durable store: a restored endpoint keeps
/// it. The age is measured on the system clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RotationPolicy {
    /// Events per room key (default 100).
    pub max_messages: u32,
    /// A room key's lifetime in seconds (default one week, 604 800).
    pub max_age_seconds: u64,
}

impl From<CorePolicy> for RotationPolicy {
    fn from(policy: CorePolicy) -> Self {
        Self {
            max_messages: policy.max_messages,
            max_age_seconds: policy.max_age.as_secs(),
        }
    }
}

impl From<RotationPolicy> for CorePolicy {
    fn from(policy: RotationPolicy) -> Self {
        Self {
            max_messages: policy.max_messages,
            max_age: Duration::from_secs(policy.max_age_seconds),
        }
    }
}

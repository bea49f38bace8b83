//! The records the Matrix machine (`matrix.rs`) passes across the
//! boundary, with their conversions from the Matrix layer's types: the
//! requests to send, what an answer or a sync changed (each refused item
//! with its own reason), shares, decrypted room events, stored room keys
//! and withheld notices.
//!
//! Promises: JSON the server sends or stores crosses as JSON text, exactly
//! as the Matrix layer writes it; keys cross as unpadded base64; no record
//! holds a secret (room keys are listed by id, never exported here).

use super::records::DeviceIdentity;
use super::{RoomsealError, count, to_json};
use crate::matrix::{
    ClaimOutcome, DecryptedRoomEvent, Device, DeviceTrust, KeysQueryOutcome, MatrixRoomKeyInfo,
    OutgoingRequest, ProcessedToDevice, RequestKind, ResponseOutcome, RoomKeySource, ShareOutcome,
    SyncOutcome, ToDeviceContent, WithheldNotice,
};

/// Which homeserver endpoint a [`MatrixRequest`] goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum MatrixRequestKind {
    /// `POST /_matrix/client/v3/keys/upload`.
    KeysUpload,
    /// `POST /_matrix/client/v3/keys/query`.
    KeysQuery,
    /// `POST /_matrix/client/v3/keys/claim`.
    KeysClaim,
    /// `PUT /_matrix/client/v3/sendToDevice/{event_type}/{txn_id}`.
    ToDevice,
}

/// A request for the app to send to the homeserver. Send `body_json` to
/// the endpoint `kind` names, then hand the server's answer (its JSON body)
/// to `mark_request_as_sent` with `request_id`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixRequest {
    /// Give it back to `mark_request_as_sent`.
    pub request_id: u64,
    /// The endpoint.
    pub kind: MatrixRequestKind,
    /// The JSON body.
    pub body_json: String,
    /// For [`MatrixRequestKind::ToDevice`]: the event type of the path
    /// (percent-encode it in the URL).
    pub event_type: Option<String>,
    /// For [`MatrixRequestKind::ToDevice`]: the transaction id of the path
    /// (percent-encode it in the URL: it is base64 text and may hold `/`
    /// and `+`).
    pub txn_id: Option<String>,
}

impl MatrixRequest {
    pub(crate) fn from_request(request: &OutgoingRequest) -> Result<Self, RoomsealError> {
        let (kind, event_type, txn_id) = match &request.kind {
            RequestKind::KeysUpload(_) => (MatrixRequestKind::KeysUpload, None, None),
            RequestKind::KeysQuery(_) => (MatrixRequestKind::KeysQuery, None, None),
            RequestKind::KeysClaim(_) => (MatrixRequestKind::KeysClaim, None, None),
            RequestKind::ToDevice(send) => (
                MatrixRequestKind::ToDevice,
                Some(send.event_type.clone()),
                Some(send.txn_id.clone()),
            ),
        };
        Ok(Self {
            request_id: request.id.0,
            kind,
            body_json: to_json(&request.kind.body())?,
            event_type,
            txn_id,
        })
    }

    pub(crate) fn from_all(requests: &[OutgoingRequest]) -> Result<Vec<Self>, RoomsealError> {
        requests.iter().map(Self::from_request).collect()
    }
}

/// A device, named by its ids.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixDeviceRef {
    /// The user id.
    pub user_id: String,
    /// The device id.
    pub device_id: String,
}

impl MatrixDeviceRef {
    fn new(user_id: impl ToString, device_id: impl ToString) -> Self {
        Self {
            user_id: user_id.to_string(),
            device_id: device_id.to_string(),
        }
    }
}

/// The app's trust decision for a device (roomseal has no cross-signing:
/// verifying a device is the app's own step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum MatrixDeviceTrust {
    /// No decision.
    Unset,
    /// The app verified the device.
    Verified,
    /// The device gets `m.blacklisted` instead of room keys.
    Blacklisted,
}

impl From<DeviceTrust> for MatrixDeviceTrust {
    fn from(trust: DeviceTrust) -> Self {
        match trust {
            DeviceTrust::Unset => Self::Unset,
            DeviceTrust::Verified => Self::Verified,
            DeviceTrust::Blacklisted => Self::Blacklisted,
        }
    }
}

impl From<MatrixDeviceTrust> for DeviceTrust {
    fn from(trust: MatrixDeviceTrust) -> Self {
        match trust {
            MatrixDeviceTrust::Unset => Self::Unset,
            MatrixDeviceTrust::Verified => Self::Verified,
            MatrixDeviceTrust::Blacklisted => Self::Blacklisted,
        }
    }
}

/// A device the machine tracks, its keys checked (self-signed, and never
/// changing under one device id).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixDevice {
    /// The user id.
    pub user_id: String,
    /// The device id.
    pub device_id: String,
    /// Its identity keys.
    pub identity: DeviceIdentity,
    /// The display name the server reported, if any (unauthenticated).
    pub display_name: Option<String>,
    /// The app's trust decision.
    pub trust: MatrixDeviceTrust,
}

impl MatrixDevice {
    pub(crate) fn new(device: &Device, trust: DeviceTrust) -> Self {
        Self {
            user_id: device.user_id().to_string(),
            device_id: device.device_id().to_string(),
            identity: device.keys().into(),
            display_name: device.display_name().map(str::to_owned),
            trust: trust.into(),
        }
    }
}

/// One item of a server's answer or a sync that was refused, and why.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixRejectedItem {
    /// The user the item was listed under or sent by, when known.
    pub user_id: Option<String>,
    /// The device it was listed under, when known.
    pub device_id: Option<String>,
    /// For a to-device event: its position in the sync's list.
    pub index: Option<u32>,
    /// Why (no secret).
    pub reason: String,
}

/// What an answer to a request changed.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixResponseResult {
    /// After an upload: the unclaimed one-time keys the server holds.
    pub one_time_key_count: Option<u64>,
    /// After a query: devices seen for the first time.
    pub new_devices: Vec<MatrixDeviceRef>,
    /// After a query: devices no longer listed (rooms whose key they held
    /// rotate on the next share).
    pub removed_devices: Vec<MatrixDeviceRef>,
    /// After a claim: devices an Olm session was started with.
    pub sessions_started: Vec<MatrixDeviceRef>,
    /// After a claim: devices that got no usable one-time key.
    pub missing_keys: Vec<MatrixDeviceRef>,
    /// After a to-device send: devices now counted as served.
    pub marked_sent: u32,
    /// Items refused, each with its reason (the rest was applied).
    pub rejected: Vec<MatrixRejectedItem>,
    /// Servers the homeserver could not reach.
    pub unreachable_servers: Vec<String>,
}

impl MatrixResponseResult {
    fn empty() -> Self {
        Self {
            one_time_key_count: None,
            new_devices: Vec::new(),
            removed_devices: Vec::new(),
            sessions_started: Vec::new(),
            missing_keys: Vec::new(),
            marked_sent: 0,
            rejected: Vec::new(),
            unreachable_servers: Vec::new(),
        }
    }

    fn queried(outcome: KeysQueryOutcome) -> Self {
        let refs = |devices: &[Device]| {
            devices
                .iter()
                .map(|d| MatrixDeviceRef::new(d.user_id(), d.device_id()))
                .collect()
        };
        Self {
            new_devices: refs(&outcome.new_devices),
            removed_devices: refs(&outcome.removed_devices),
            rejected: outcome
                .rejected
                .into_iter()
                .map(|r| MatrixRejectedItem {
                    user_id: Some(r.user_id),
                    device_id: r.device_id,
                    index: None,
                    reason: r.error.to_string(),
                })
                .collect(),
            unreachable_servers: outcome.unreachable_servers,
            ..Self::empty()
        }
    }

    fn claimed(outcome: ClaimOutcome) -> Self {
        Self {
            sessions_started: outcome
                .keys
                .iter()
                .map(|k| MatrixDeviceRef::new(k.device.user_id(), k.device.device_id()))
                .collect(),
            missing_keys: outcome
                .missing
                .iter()
                .map(|(u, d)| MatrixDeviceRef::new(u, d))
                .collect(),
            rejected: outcome
                .rejected
                .into_iter()
                .map(|r| MatrixRejectedItem {
                    user_id: Some(r.user_id),
                    device_id: Some(r.device_id),
                    index: None,
                    reason: r.error.to_string(),
                })
                .collect(),
            unreachable_servers: outcome.unreachable_servers,
            ..Self::empty()
        }
    }
}

impl From<ResponseOutcome> for MatrixResponseResult {
    fn from(outcome: ResponseOutcome) -> Self {
        match outcome {
            ResponseOutcome::KeysUploaded { one_time_key_count } => Self {
                one_time_key_count: Some(one_time_key_count),
                ..Self::empty()
            },
            ResponseOutcome::KeysQueried(outcome) => Self::queried(outcome),
            ResponseOutcome::KeysClaimed(outcome) => Self::claimed(outcome),
            ResponseOutcome::ToDeviceSent { marked } => Self {
                marked_sent: count(marked),
                ..Self::empty()
            },
        }
    }
}

/// A room key a sync delivered, now stored.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixReceivedKey {
    /// The room.
    pub room_id: String,
    /// The Megolm session id (base64).
    pub session_id: String,
    /// The Curve25519 key of the device that created the session (claimed
    /// when `authenticated` is false).
    pub sender_key: String,
    /// The user it came from (none for a forwarded key).
    pub sender_user_id: Option<String>,
    /// The sending device, when the machine knew it at receipt.
    pub sender_device_id: Option<String>,
    /// The first message index it decrypts.
    pub first_index: u32,
    /// Whether it came from its creator over Olm (`m.room_key`); false for
    /// `m.forwarded_room_key`.
    pub authenticated: bool,
    /// Whether the key was new, improved an earlier copy, or changed
    /// nothing.
    pub status: super::KeyStatus,
}

/// A to-device event of another type than the machine handles itself,
/// for the app (decrypted from Olm, or sent in the clear).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixToDeviceEvent {
    /// Its position in the sync's list.
    pub index: u32,
    /// The sending user.
    pub sender: String,
    /// The event type.
    pub event_type: String,
    /// The content (JSON).
    pub content_json: String,
    /// Whether it arrived encrypted over Olm (false: in the clear, as the
    /// server delivered it).
    pub encrypted: bool,
    /// For an encrypted event: the sending device's Curve25519 key.
    pub sender_key: Option<String>,
}

/// What a sync's encryption parts changed.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixSyncResult {
    /// Room keys stored (`m.room_key` and `m.forwarded_room_key`).
    pub room_keys: Vec<MatrixReceivedKey>,
    /// `m.room_key.withheld` notices recorded.
    pub withheld: Vec<MatrixWithheldNotice>,
    /// Other to-device events, for the app.
    pub to_device: Vec<MatrixToDeviceEvent>,
    /// To-device events refused, each with its own reason.
    pub rejected: Vec<MatrixRejectedItem>,
    /// Users whose device lists changed (queried by the next outgoing
    /// requests).
    pub changed_users: Vec<String>,
    /// Users no longer sharing an encrypted room (no longer tracked).
    pub left_users: Vec<String>,
    /// Unclaimed one-time keys on the server.
    pub one_time_key_count: u64,
}

impl MatrixSyncResult {
    pub(crate) fn from_outcome(outcome: SyncOutcome) -> Result<Self, RoomsealError> {
        let mut result = Self {
            room_keys: Vec::new(),
            withheld: Vec::new(),
            to_device: Vec::new(),
            rejected: outcome
                .rejected
                .into_iter()
                .map(|r| MatrixRejectedItem {
                    user_id: r.sender.map(|s| s.to_string()),
                    device_id: None,
                    index: Some(count(r.index)),
                    reason: r.error.to_string(),
                })
                .collect(),
            changed_users: outcome
                .changed_users
                .iter()
                .map(|u| u.to_string())
                .collect(),
            left_users: outcome.left_users.iter().map(|u| u.to_string()).collect(),
            one_time_key_count: outcome.one_time_key_count,
        };
        for (index, processed) in outcome.to_device {
            let index = count(index);
            match processed {
                ProcessedToDevice::RoomKey(key) | ProcessedToDevice::ForwardedRoomKey(key) => {
                    result.room_keys.push(MatrixReceivedKey {
                        room_id: key.room_id.to_string(),
                        session_id: key.session_id.to_base64(),
                        sender_key: key.sender.sender_key.to_base64(),
                        sender_user_id: key.sender.user_id.map(|u| u.to_string()),
                        sender_device_id: key.sender.device_id.map(|d| d.to_string()),
                        first_index: key.first_index,
                        authenticated: key.sender.source.is_authenticated(),
                        status: key.added.into(),
                    });
                }
                ProcessedToDevice::Withheld(notice) => result.withheld.push(notice.into()),
                ProcessedToDevice::Dummy { .. } => {}
                ProcessedToDevice::Decrypted(event) => result.to_device.push(MatrixToDeviceEvent {
                    index,
                    sender: event.sender.to_string(),
                    event_type: event.event_type,
                    content_json: event.content.get().to_owned(),
                    encrypted: true,
                    sender_key: Some(event.sender_key.to_base64()),
                }),
                ProcessedToDevice::Plain(event) => result.to_device.push(MatrixToDeviceEvent {
                    index,
                    sender: event.sender.to_string(),
                    event_type: event.event_type.clone(),
                    content_json: match &event.content {
                        ToDeviceContent::Other(raw) => raw.get().to_owned(),
                        ToDeviceContent::Olm(content) => to_json(content)?,
                        ToDeviceContent::RoomKeyWithheld(content) => to_json(content)?,
                    },
                    encrypted: false,
                    sender_key: None,
                }),
            }
        }
        Ok(result)
    }
}

/// An `m.room_key.withheld` notice: why a device did not send a room key.
/// It arrives in the clear, so it is a hint for the user interface only.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixWithheldNotice {
    /// The user the server says sent it.
    pub sender: String,
    /// The Curve25519 key of the device it names as withholding.
    pub sender_key: String,
    /// That device's id, if it said.
    pub from_device: Option<String>,
    /// The code (`m.unverified`, `m.blacklisted`, `m.no_olm`...).
    pub code: String,
    /// A human-readable reason, if given.
    pub reason: Option<String>,
    /// The room (none for `m.no_olm`).
    pub room_id: Option<String>,
    /// The session (none for `m.no_olm`).
    pub session_id: Option<String>,
}

impl From<WithheldNotice> for MatrixWithheldNotice {
    fn from(notice: WithheldNotice) -> Self {
        Self {
            sender: notice.sender.to_string(),
            sender_key: notice.sender_key.to_base64(),
            from_device: notice.from_device.map(|d| d.to_string()),
            code: notice.code.as_str().to_owned(),
            reason: notice.reason,
            room_id: notice.room_id.map(|r| r.to_string()),
            session_id: notice.session_id,
        }
    }
}

/// A device told a room key is withheld, and why.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixWithheldDevice {
    /// The user id.
    pub user_id: String,
    /// The device id.
    pub device_id: String,
    /// The code sent.
    pub code: String,
}

/// The result of sharing a room key: send every request (all to-device),
/// confirming each with `mark_request_as_sent`; then encrypt.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixShareResult {
    /// The room's current Megolm session id (base64).
    pub session_id: String,
    /// Whether a new session replaced an earlier one.
    pub rotated: bool,
    /// Why it was replaced (a sentence), if it was.
    pub rotation_reason: Option<String>,
    /// The to-device requests to send.
    pub requests: Vec<MatrixRequest>,
    /// Devices a room key was produced for.
    pub served: Vec<MatrixDeviceRef>,
    /// Devices told the key is withheld.
    pub withheld: Vec<MatrixWithheldDevice>,
    /// Devices without an Olm session: send `keys_claim_request` for the
    /// room's users, then share again.
    pub missing_sessions: Vec<MatrixDeviceRef>,
}

impl MatrixShareResult {
    pub(crate) fn from_outcome(outcome: ShareOutcome) -> Result<Self, RoomsealError> {
        Ok(Self {
            session_id: outcome.session_id.to_base64(),
            rotated: outcome.rotated,
            rotation_reason: outcome.rotation_reason.map(|r| r.to_string()),
            requests: MatrixRequest::from_all(&outcome.requests)?,
            served: outcome
                .served
                .iter()
                .map(|(u, d)| MatrixDeviceRef::new(u, d))
                .collect(),
            withheld: outcome
                .withheld
                .iter()
                .map(|(u, d, code)| MatrixWithheldDevice {
                    user_id: u.to_string(),
                    device_id: d.to_string(),
                    code: code.as_str().to_owned(),
                })
                .collect(),
            missing_sessions: outcome
                .missing_sessions
                .iter()
                .map(|(u, d)| MatrixDeviceRef::new(u, d))
                .collect(),
        })
    }
}

/// A decrypted room event.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixRoomEvent {
    /// The cleartext event as clients show it: `{"type", "content",
    /// "room_id", "sender", "event_id"}` (JSON).
    pub event_json: String,
    /// The event type inside.
    pub event_type: String,
    /// The content inside (JSON).
    pub content_json: String,
    /// The sending user (the event's `sender`, checked against the key).
    pub sender: String,
    /// The sending device, when known.
    pub sender_device: Option<String>,
    /// The Curve25519 key of the device that created the session (claimed
    /// when `authenticated` is false).
    pub sender_key: String,
    /// Whether the machine holds the sending device's keys (checked to be
    /// the sender's); false until the sender's devices are queried.
    pub sender_device_confirmed: bool,
    /// The Megolm session id (base64).
    pub session_id: String,
    /// The message index.
    pub message_index: u32,
    /// Whether the key came forwarded (or imported) rather than from its
    /// creator.
    pub forwarded: bool,
    /// Whether the sender is authenticated: a key its creator shared over
    /// Olm (or our own), at an index its signed ratchet covers.
    pub authenticated: bool,
}

impl MatrixRoomEvent {
    pub(crate) fn from_event(
        event: DecryptedRoomEvent,
        room_id: &str,
        event_id: &str,
    ) -> Result<Self, RoomsealError> {
        let content: &serde_json::value::RawValue = &event.content;
        let clear = serde_json::json!({
            "type": event.event_type,
            "content": content,
            "room_id": room_id,
            "sender": event.sender.as_str(),
            "event_id": event_id,
        });
        Ok(Self {
            event_json: to_json(&clear)?,
            content_json: event.content.get().to_owned(),
            event_type: event.event_type,
            sender: event.sender.to_string(),
            sender_device: event.sender_device.map(|d| d.to_string()),
            sender_key: event.sender_key.to_base64(),
            sender_device_confirmed: event.sender_device_confirmed,
            session_id: event.session_id.to_base64(),
            message_index: event.message_index,
            forwarded: event.key_source == RoomKeySource::Forwarded,
            authenticated: event.authenticated,
        })
    }
}

/// A stored Megolm key, as listed (no secret).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MatrixRoomKey {
    /// The room.
    pub room_id: String,
    /// The Megolm session id (base64).
    pub session_id: String,
    /// The Curve25519 key of the device that created it.
    pub sender_key: String,
    /// The user it came from (none for a forwarded key).
    pub sender_user_id: Option<String>,
    /// The device it came from, when known.
    pub sender_device_id: Option<String>,
    /// The first index it decrypts.
    pub first_index: u32,
    /// The first index decrypted as authenticated, if any.
    pub authenticated_from: Option<u32>,
    /// Whether it came forwarded rather than from its creator.
    pub forwarded: bool,
    /// Whether it is this device's own outbound session.
    pub own: bool,
    /// Replay records kept.
    pub replay_records: u64,
}

impl From<MatrixRoomKeyInfo> for MatrixRoomKey {
    fn from(info: MatrixRoomKeyInfo) -> Self {
        Self {
            room_id: info.room_id.to_string(),
            session_id: info.session_id.to_base64(),
            sender_key: info.sender.sender_key.to_base64(),
            sender_user_id: info.sender.user_id.map(|u| u.to_string()),
            sender_device_id: info.sender.device_id.map(|d| d.to_string()),
            first_index: info.first_index,
            authenticated_from: info.authenticated_from,
            forwarded: info.sender.source == RoomKeySource::Forwarded,
            own: info.sender.source == RoomKeySource::Own,
            replay_records: u64::try_from(info.replay_records).unwrap_or(u64::MAX),
        }
    }
}

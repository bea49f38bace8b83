//! The end-to-end encryption parts of a `/sync` response: to-device events,
//! `device_lists`, `device_one_time_keys_count` and
//! `device_unused_fallback_key_types`, read within bounds into
//! [`SyncChanges`].
//!
//! Guarantees: the rest of the sync (rooms, presence, ...) is skipped
//! without being kept; each to-device event is parsed on its own, so one bad
//! event is reported and the others are still delivered; key-carrying
//! events (`m.room_key`, `m.forwarded_room_key`) that arrive unencrypted are
//! refused, never passed on as if they had come over Olm.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::device_keys::SIGNED_CURVE25519;
use super::events::{
    EncryptedContent, EventError, FORWARDED_ROOM_KEY, OlmEncryptedContent, ROOM_ENCRYPTED,
    ROOM_KEY, ROOM_KEY_WITHHELD, RoomKeyWithheldContent,
};
use super::ids::UserId;
use super::json::{BoundedList, BoundedMap, JsonError, parse, parse_item};
use crate::consts::{MAX_DEVICE_LIST_CHANGES, MAX_KEY_ALGORITHMS, MAX_TO_DEVICE_EVENTS};

/// The parts of a `/sync` response this layer reads (every other member
/// is ignored).
#[derive(Debug, Default, Deserialize)]
pub struct SyncResponse {
    /// To-device events for this device.
    #[serde(default)]
    pub to_device: Option<ToDeviceSection>,
    /// Users whose devices changed or who no longer share a room.
    #[serde(default)]
    pub device_lists: Option<DeviceListsSection>,
    /// Unclaimed one-time keys on the server, per algorithm.
    #[serde(default)]
    pub device_one_time_keys_count: Option<BoundedMap<u64, MAX_KEY_ALGORITHMS>>,
    /// Algorithms whose fallback key has not been used yet.
    #[serde(default)]
    pub device_unused_fallback_key_types: Option<BoundedList<String, MAX_KEY_ALGORITHMS>>,
}

/// A sync's `to_device`.
#[derive(Debug, Default, Deserialize)]
pub struct ToDeviceSection {
    /// The events, each left unparsed until it is read on its own.
    #[serde(default)]
    pub events: BoundedList<Box<RawValue>, MAX_TO_DEVICE_EVENTS>,
}

/// A sync's `device_lists`.
#[derive(Debug, Default, Deserialize)]
pub struct DeviceListsSection {
    /// Users whose devices or cross-signing keys changed, or who newly
    /// share an encrypted room.
    #[serde(default)]
    pub changed: BoundedList<String, MAX_DEVICE_LIST_CHANGES>,
    /// Users who no longer share any encrypted room.
    #[serde(default)]
    pub left: BoundedList<String, MAX_DEVICE_LIST_CHANGES>,
}

/// A to-device event as the server delivers it.
#[derive(Debug, Deserialize)]
struct RawToDeviceEvent {
    sender: UserId,
    #[serde(rename = "type")]
    event_type: String,
    content: Box<RawValue>,
}

/// A to-device event, its content read as far as this layer understands.
#[derive(Debug)]
pub struct ToDeviceEvent {
    /// Its position in the sync's list.
    pub index: usize,
    /// The sending user (set by the server).
    pub sender: UserId,
    /// The event type.
    pub event_type: String,
    /// The content.
    pub content: ToDeviceContent,
}

/// The content of a to-device event.
#[derive(Debug)]
pub enum ToDeviceContent {
    /// `m.room.encrypted` with Olm: decrypt it, then check the payload
    /// with [`super::OlmPayload`].
    Olm(OlmEncryptedContent),
    /// `m.room_key.withheld`: a device is not sending a room key.
    RoomKeyWithheld(RoomKeyWithheldContent),
    /// Any other type, for the app (verification, secrets, custom types),
    /// unparsed.
    Other(Box<RawValue>),
}

/// A to-device event that was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedEvent {
    /// Its position in the sync's list.
    pub index: usize,
    /// Why.
    pub error: EventError,
}

/// What a sync says about end-to-end encryption.
#[derive(Debug, Default)]
pub struct SyncChanges {
    /// To-device events in order, each read on its own.
    pub to_device: Vec<ToDeviceEvent>,
    /// To-device events that were refused.
    pub rejected_events: Vec<RejectedEvent>,
    /// Users whose device lists changed (mark them outdated).
    pub changed_users: Vec<UserId>,
    /// Users who no longer share an encrypted room (stop tracking them).
    pub left_users: Vec<UserId>,
    /// Entries of `changed` or `left` that are not valid user ids.
    pub invalid_user_ids: usize,
    /// Unclaimed `signed_curve25519` keys on the server (the specification
    /// lets a server omit zero counts, so absent means zero).
    pub one_time_key_count: u64,
    /// Algorithms whose fallback key is still unused; `None` when the
    /// server did not say (it may not support fallback keys).
    pub unused_fallback_key_types: Option<Vec<String>>,
}

impl SyncChanges {
    /// Reads the JSON text of a `/sync` response (or of an object holding
    /// just its end-to-end encryption members). Only text that is not
    /// JSON, not of the shape, or over a bound is refused whole.
    pub fn from_json(text: &str) -> Result<Self, JsonError> {
        let response: SyncResponse = parse(text)?;
        Self::from_response(response)
    }

    /// Reads a parsed response (see [`SyncChanges::from_json`]).
    pub fn from_response(response: SyncResponse) -> Result<Self, JsonError> {
        let mut changes = SyncChanges::default();
        if let Some(lists) = response.device_lists {
            let (changed, invalid_changed) = user_ids(lists.changed.check("changed users")?);
            let (left, invalid_left) = user_ids(lists.left.check("left users")?);
            changes.changed_users = changed;
            changes.left_users = left;
            changes.invalid_user_ids = invalid_changed + invalid_left;
        }
        if let Some(counts) = &response.device_one_time_keys_count {
            let counts = counts.check("one-time key algorithms")?;
            changes.one_time_key_count = counts.get(SIGNED_CURVE25519).copied().unwrap_or(0);
        }
        if let Some(types) = response.device_unused_fallback_key_types {
            changes.unused_fallback_key_types =
                Some(types.into_checked("fallback key algorithms")?);
        }
        if let Some(section) = response.to_device {
            for (index, raw) in section.events.check("to-device events")?.iter().enumerate() {
                match to_device_event(index, raw) {
                    Ok(event) => changes.to_device.push(event),
                    Err(error) => changes.rejected_events.push(RejectedEvent { index, error }),
                }
            }
        }
        Ok(changes)
    }
}

fn user_ids(list: &[String]) -> (Vec<UserId>, usize) {
    let mut valid = Vec::with_capacity(list.len());
    let mut invalid = 0;
    for text in list {
        match UserId::parse(text.as_str()) {
            Ok(user) => valid.push(user),
            Err(_) => invalid += 1,
        }
    }
    (valid, invalid)
}

fn to_device_event(index: usize, raw: &RawValue) -> Result<ToDeviceEvent, EventError> {
    let event: RawToDeviceEvent = parse_item(raw, "to-device event")?;
    let content = match event.event_type.as_str() {
        ROOM_ENCRYPTED => match EncryptedContent::from_json(event.content.get())? {
            EncryptedContent::Olm(olm) => ToDeviceContent::Olm(olm),
            EncryptedContent::Megolm(_) => return Err(EventError::UnsupportedAlgorithm),
        },
        ROOM_KEY_WITHHELD => ToDeviceContent::RoomKeyWithheld(parse(event.content.get())?),
        ROOM_KEY | FORWARDED_ROOM_KEY => return Err(EventError::Unencrypted),
        _ => ToDeviceContent::Other(event.content),
    };
    Ok(ToDeviceEvent {
        index,
        sender: event.sender,
        event_type: event.event_type,
        content,
    })
}

//! The [`MatrixEndpoint`] pickle: the whole Matrix device in one encrypted
//! string (roomseal envelope, type `matrix-endpoint`, with a generation like
//! every roomseal pickle), for export, backup, migration and apps that save
//! rarely. To persist every operation crash-safely at a cost that does not
//! grow with what is held, keep the endpoint in a store instead
//! ([`super::DurableMatrixEndpoint`], whose records reuse the formats and
//! helpers here). Layout: PROTOCOL.md 18.5 and 19.6.
//!
//! Kept: the account, the ids, what the server was last told and holds
//! (device keys published, key counts, unused fallback key types), the device
//! tracker (every checked device and each user's outdated mark), the Olm
//! sessions with their receipt order and wedged marks, the Megolm keys with
//! attribution and replay records, the withheld notices received, each
//! room's outbound session with its recipients and withheld targets, the
//! room settings, dropped rooms and their reasons, the to-device requests
//! not yet confirmed (what confirming each marks, and the queued ones whole),
//! the devices without one-time keys, the trust decisions and the share
//! policy. Not kept: uploads, queries and claims in flight (asked again by
//! the next outgoing requests and claims; unconfirmed keys stay unpublished
//! and are uploaded again), the clock, the generator and the test bounds.

use std::collections::BTreeMap;

use super::endpoint::{MatrixEndpoint, RequestId};
use super::events::RoomEncryptionContent;
use super::ids::{DeviceId, RoomId, UserId};
use super::olm_sessions::OlmSessionStore;
use super::outbound::{OutboundMegolmRoom, PendingMark};
use super::room_keys::{MegolmKeyStore, read_text};
use super::share::{DeviceTrust, SharePolicy};
use super::to_device::SendToDeviceRequest;
use super::tracker::DeviceTracker;
use super::withheld::WithheldNotices;
use crate::account::Account;
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{
    MAX_DEVICE_TRUST_ENTRIES, MAX_JSON_ITEM_LEN, MAX_KEY_ALGORITHMS,
    MAX_PENDING_TO_DEVICE_REQUESTS, MAX_TRACKED_DEVICES,
};
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey};
use crate::pickle::{PickleKind, pickle_methods, pickled};
use crate::room::RotationReason;

/// The format byte of the contents.
const FORMAT: u8 = 1;

pub(super) fn read_id<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    parse: impl Fn(String) -> Result<T, super::IdError>,
) -> Result<T, DecodeError> {
    parse(read_text(r, field)?).map_err(|_| DecodeError::InvalidValue(field))
}

pub(super) fn write_optional_u64(w: &mut Writer, value: Option<u64>) {
    match value {
        Some(v) => w.bool(true).u64(v),
        None => w.bool(false),
    };
}

pub(super) fn read_optional_u64(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Option<u64>, DecodeError> {
    if r.bool(field)? {
        Ok(Some(r.u64(field)?))
    } else {
        Ok(None)
    }
}

impl MatrixEndpoint {
    /// Writes what the server was last told and holds, and the next
    /// request id.
    pub(super) fn write_server_state(&self, w: &mut Writer) {
        w.bool(self.device_keys_published);
        write_optional_u64(w, self.server_key_count);
        match &self.unused_fallback_key_types {
            Some(types) => {
                w.bool(true).count(types.len());
                for t in types {
                    w.short_bytes(t.as_bytes());
                }
            }
            None => {
                w.bool(false);
            }
        }
        w.u64(self.next_request);
    }

    /// Reads what [`MatrixEndpoint::write_server_state`] wrote.
    pub(super) fn read_server_state(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        self.device_keys_published = r.bool("device keys published")?;
        self.server_key_count = read_optional_u64(r, "server key count")?;
        self.unused_fallback_key_types = if r.bool("fallback types flag")? {
            let count = r.count(MAX_KEY_ALGORITHMS, "fallback key types")?;
            let mut types = Vec::with_capacity(count);
            for _ in 0..count {
                types.push(read_text(r, "fallback key type")?);
            }
            Some(types)
        } else {
            None
        };
        self.next_request = r.u64("next request id")?;
        Ok(())
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.u8(FORMAT)
            .short_bytes(self.user_id.as_str().as_bytes())
            .short_bytes(self.device_id.as_str().as_bytes());
        self.account.write_contents(w);
        self.write_server_state(w);
        self.tracker.write_contents(w);
        self.sessions.write_contents(w);
        self.inbound.write_contents(w);
        self.withheld.write_contents(w);
        w.count32(self.rooms.len());
        for (room, outbound) in self.rooms.iter() {
            w.short_bytes(room.as_str().as_bytes());
            outbound.write_contents(w);
        }
        w.count32(self.settings.len());
        for (room, settings) in self.settings.iter() {
            w.short_bytes(room.as_str().as_bytes());
            write_settings(w, settings);
        }
        w.count32(self.discarded.len());
        for (room, reason) in self.discarded.iter() {
            w.short_bytes(room.as_str().as_bytes()).u8(reason.code());
        }
        w.count32(self.pending.len());
        for (id, mark) in self.pending.iter() {
            w.u64(id.0);
            mark.write(w);
        }
        w.count32(self.queued.len());
        for (id, request) in self.queued.iter() {
            w.u64(id.0);
            write_queued(w, request);
        }
        w.count32(self.no_olm.len());
        for (key, sent) in self.no_olm.iter() {
            w.bytes(key.as_bytes()).bool(*sent);
        }
        w.count32(self.trust.len());
        for ((user, device), decision) in self.trust.iter() {
            w.short_bytes(user.as_str().as_bytes())
                .short_bytes(device.as_str().as_bytes());
            write_trust(w, decision);
        }
        w.bool(self.policy.only_verified);
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let format = r.u8("matrix endpoint format")?;
        if format != FORMAT {
            return Err(DecodeError::UnknownVersion(format));
        }
        let user_id = read_id(r, "user id", UserId::parse)?;
        let device_id = read_id(r, "device id", DeviceId::parse)?;
        let account = Account::read_contents(r)?;
        let mut endpoint = MatrixEndpoint::new(account, user_id, device_id);
        let own_key = endpoint.identity_keys().curve25519;
        endpoint.read_server_state(r)?;
        let own = endpoint.tracker.own_device().clone();
        endpoint.tracker = DeviceTracker::read_contents(r, own)?;
        endpoint.sessions = OlmSessionStore::read_contents(r, &own_key)?;
        endpoint.inbound = MegolmKeyStore::read_contents(r)?;
        endpoint.withheld = WithheldNotices::read_contents(r)?;
        for _ in 0..r.u32("outbound rooms")? {
            let room = read_id(r, "room id", RoomId::parse)?;
            let outbound = OutboundMegolmRoom::read_contents(r)?;
            if endpoint.rooms.insert(room, outbound).is_some() {
                return Err(DecodeError::InvalidValue("outbound rooms"));
            }
        }
        for _ in 0..r.u32("room settings")? {
            let room = read_id(r, "room id", RoomId::parse)?;
            let settings = read_settings(r)?;
            if endpoint.settings.insert(room, settings).is_some() {
                return Err(DecodeError::InvalidValue("room settings"));
            }
        }
        for _ in 0..r.u32("discarded rooms")? {
            let room = read_id(r, "room id", RoomId::parse)?;
            let reason = RotationReason::from_code(r.u8("discard reason")?)
                .ok_or(DecodeError::InvalidValue("discard reason"))?;
            if endpoint.rooms.contains_key(&room)
                || endpoint.discarded.insert(room, reason).is_some()
            {
                return Err(DecodeError::InvalidValue("discarded rooms"));
            }
        }
        let bounded = |count: u32, max: usize, field| {
            usize::try_from(count)
                .ok()
                .filter(|c| *c <= max)
                .ok_or(DecodeError::InvalidValue(field))
        };
        let pending = bounded(
            r.u32("pending requests")?,
            MAX_PENDING_TO_DEVICE_REQUESTS,
            "pending requests",
        )?;
        for _ in 0..pending {
            let id = RequestId(r.u64("request id")?);
            let mark = PendingMark::read(r)?;
            if id.0 >= endpoint.next_request || endpoint.pending.insert(id, mark).is_some() {
                return Err(DecodeError::InvalidValue("pending requests"));
            }
        }
        let queued = bounded(
            r.u32("queued requests")?,
            MAX_PENDING_TO_DEVICE_REQUESTS,
            "queued requests",
        )?;
        for _ in 0..queued {
            let id = RequestId(r.u64("request id")?);
            let request = read_queued(r)?;
            if !endpoint.pending.contains_key(&id) || endpoint.queued.insert(id, request).is_some()
            {
                return Err(DecodeError::InvalidValue("queued requests"));
            }
        }
        let no_olm = bounded(
            r.u32("devices without keys")?,
            MAX_TRACKED_DEVICES,
            "devices without keys",
        )?;
        for _ in 0..no_olm {
            let key = Curve25519PublicKey::from_bytes(r.array("device key")?);
            let sent = r.bool("notice sent")?;
            endpoint.no_olm.insert(key, sent);
        }
        let trust = bounded(
            r.u32("trust decisions")?,
            MAX_DEVICE_TRUST_ENTRIES,
            "trust decisions",
        )?;
        let mut decisions = BTreeMap::new();
        for _ in 0..trust {
            let user = read_id(r, "user id", UserId::parse)?;
            let device = read_id(r, "device id", DeviceId::parse)?;
            decisions.insert((user, device), read_trust(r)?);
        }
        endpoint.trust = decisions.into_iter().collect();
        endpoint.policy = SharePolicy {
            only_verified: r.bool("only verified")?,
        };
        Ok(endpoint)
    }
}

/// Writes a room's `m.room.encryption` settings.
pub(super) fn write_settings(w: &mut Writer, settings: &RoomEncryptionContent) {
    w.short_bytes(settings.algorithm.as_bytes());
    write_optional_u64(w, settings.rotation_period_ms);
    write_optional_u64(w, settings.rotation_period_msgs);
}

/// Reads what [`write_settings`] wrote.
pub(super) fn read_settings(r: &mut Reader<'_>) -> Result<RoomEncryptionContent, DecodeError> {
    Ok(RoomEncryptionContent {
        algorithm: read_text(r, "room algorithm")?,
        rotation_period_ms: read_optional_u64(r, "rotation period ms")?,
        rotation_period_msgs: read_optional_u64(r, "rotation period msgs")?,
    })
}

/// Writes a queued to-device request whole.
pub(super) fn write_queued(w: &mut Writer, request: &SendToDeviceRequest) {
    let body = serde_json::to_vec(&request.body()).unwrap_or_default();
    w.short_bytes(request.event_type.as_bytes())
        .short_bytes(request.txn_id.as_bytes())
        .count32(body.len())
        .bytes(&body);
}

/// Reads what [`write_queued`] wrote.
pub(super) fn read_queued(r: &mut Reader<'_>) -> Result<SendToDeviceRequest, DecodeError> {
    let event_type = read_text(r, "event type")?;
    let txn_id = read_text(r, "transaction id")?;
    let len = usize::try_from(r.u32("request body length")?)
        .ok()
        .filter(|len| *len <= MAX_JSON_ITEM_LEN * 4)
        .ok_or(DecodeError::InvalidValue("request body"))?;
    let body = r.bytes(len, "request body")?;
    let parsed: SendToDeviceRequest =
        serde_json::from_slice(body).map_err(|_| DecodeError::InvalidValue("request body"))?;
    Ok(SendToDeviceRequest {
        event_type,
        txn_id,
        messages: parsed.messages,
    })
}

/// Writes a trust decision: the device's Ed25519 key and the decision.
pub(super) fn write_trust(w: &mut Writer, (key, trust): &(Ed25519PublicKey, DeviceTrust)) {
    w.bytes(key.as_bytes()).u8(match trust {
        DeviceTrust::Unset => 0,
        DeviceTrust::Verified => 1,
        DeviceTrust::Blacklisted => 2,
    });
}

/// Reads what [`write_trust`] wrote (an unset decision is never kept).
pub(super) fn read_trust(
    r: &mut Reader<'_>,
) -> Result<(Ed25519PublicKey, DeviceTrust), DecodeError> {
    let key = Ed25519PublicKey::from_bytes(&r.array("device ed25519")?)
        .map_err(|_| DecodeError::InvalidValue("device ed25519"))?;
    let trust = match r.u8("trust")? {
        1 => DeviceTrust::Verified,
        2 => DeviceTrust::Blacklisted,
        _ => return Err(DecodeError::InvalidValue("trust")),
    };
    Ok((key, trust))
}

pickle_methods!(MatrixEndpoint);

pickled!(MatrixEndpoint, PickleKind::MatrixEndpoint);

//! A room's outbound Megolm state in the Matrix layer: its current session,
//! every device that may hold that session's key (recipients) and every
//! device told it is withheld, plus the to-device requests waiting for the
//! app to confirm them as sent.
//!
//! Guarantees (as the native endpoint's outbound rooms, PROTOCOL.md 12.5): a
//! device becomes a recipient as soon as an `m.room_key` for it is produced
//! and counts as served only once the app confirms the request carrying it
//! ([`super::MatrixEndpoint::mark_request_as_sent`], as matrix-sdk-crypto
//! does); it leaves the set only with the session, so a recipient that is no
//! longer among the room's devices forces a rotation; a recipient is always
//! served again from the index it was first offered, never an earlier one.

use std::collections::BTreeMap;

use super::events::WithheldCode;
use super::ids::{DeviceId, RoomId, UserId};
use super::room_keys::read_text;
use crate::codec::{DecodeError, Reader, Writer};
use crate::group::GroupSessionId;
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey};
use crate::megolm::{MegolmOutboundSession, MegolmSessionKey};

/// A device the room's key was produced for, or told is withheld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) user_id: UserId,
    pub(crate) device_id: DeviceId,
    pub(crate) ed25519: Ed25519PublicKey,
    /// For a recipient, the index of the key it was first offered.
    pub(crate) first_index: u32,
    /// Whether the app confirmed the request carrying it.
    pub(crate) sent: bool,
}

/// A room's current outbound session and who has been served.
pub(crate) struct OutboundMegolmRoom {
    pub(crate) session: MegolmOutboundSession,
    pub(crate) created_ms: u64,
    /// By Curve25519 key.
    pub(crate) recipients: BTreeMap<Curve25519PublicKey, Target>,
    /// Devices sent `m.room_key.withheld` for this session, and why.
    pub(crate) withheld: BTreeMap<Curve25519PublicKey, (Target, WithheldCode)>,
    /// The signed key at each index some recipient was first offered.
    pub(crate) keys: BTreeMap<u32, MegolmSessionKey>,
}

impl OutboundMegolmRoom {
    pub(crate) fn new(session: MegolmOutboundSession, created_ms: u64) -> Self {
        Self {
            session,
            created_ms,
            recipients: BTreeMap::new(),
            withheld: BTreeMap::new(),
            keys: BTreeMap::new(),
        }
    }

    pub(crate) fn session_id(&self) -> GroupSessionId {
        self.session.session_id()
    }

    /// The signed key to give a device first offered the key at `index`.
    pub(crate) fn key_at(&mut self, index: u32) -> MegolmSessionKey {
        if let Some(key) = self.keys.get(&index) {
            return key.clone();
        }
        let key = self.session.session_key();
        self.keys.insert(key.first_index(), key.clone());
        key
    }

    /// Forgets offered keys no recipient needs.
    pub(crate) fn prune_keys(&mut self) {
        let needed: std::collections::BTreeSet<u32> =
            self.recipients.values().map(|r| r.first_index).collect();
        self.keys.retain(|index, _| needed.contains(index));
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        self.write_session(w);
        self.write_recipients(w);
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut room = Self::read_session(r)?;
        room.read_recipients(r)?;
        Ok(room)
    }

    /// Writes the session and its creation time (the durable record that
    /// changes with every encryption).
    pub(crate) fn write_session(&self, w: &mut Writer) {
        self.session.write_contents(w);
        w.u64(self.created_ms);
    }

    /// Reads what [`OutboundMegolmRoom::write_session`] wrote: a room
    /// without recipients.
    pub(crate) fn read_session(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let session = MegolmOutboundSession::read_contents(r)?;
        Ok(Self::new(session, r.u64("created at")?))
    }

    /// Writes the recipients, withheld devices and offered keys (the durable
    /// record that changes only when the key is shared or confirmed).
    pub(crate) fn write_recipients(&self, w: &mut Writer) {
        w.count32(self.recipients.len());
        for (key, target) in &self.recipients {
            w.bytes(key.as_bytes());
            write_target(w, target);
        }
        w.count32(self.withheld.len());
        for (key, (target, code)) in &self.withheld {
            w.bytes(key.as_bytes());
            write_target(w, target);
            w.short_bytes(code.as_str().as_bytes());
        }
        w.count32(self.keys.len());
        for key in self.keys.values() {
            w.bytes(&key.to_bytes());
        }
    }

    /// Reads what [`OutboundMegolmRoom::write_recipients`] wrote into this
    /// room, replacing its recipients, withheld devices and offered keys;
    /// checks them against its session. On failure the room is unchanged.
    pub(crate) fn read_recipients(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        let index = self.session.message_index();
        let session_id = self.session_id();
        let (mut recipients, mut withheld, mut keys) =
            (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for _ in 0..r.u32("recipients")? {
            let key = Curve25519PublicKey::from_bytes(r.array("recipient key")?);
            let target = read_target(r)?;
            if target.first_index > index || recipients.insert(key, target).is_some() {
                return Err(DecodeError::InvalidValue("recipients"));
            }
        }
        for _ in 0..r.u32("withheld devices")? {
            let key = Curve25519PublicKey::from_bytes(r.array("withheld key")?);
            let target = read_target(r)?;
            let code = WithheldCode::from(read_text(r, "withheld code")?);
            if withheld.insert(key, (target, code)).is_some() {
                return Err(DecodeError::InvalidValue("withheld devices"));
            }
        }
        for _ in 0..r.u32("offered keys")? {
            let key = MegolmSessionKey::from_bytes(r.bytes(229, "offered key")?)?;
            if key.session_id() != session_id
                || key.first_index() > index
                || keys.insert(key.first_index(), key).is_some()
            {
                return Err(DecodeError::InvalidValue("offered keys"));
            }
        }
        if recipients
            .values()
            .any(|r| !keys.contains_key(&r.first_index))
        {
            return Err(DecodeError::InvalidValue("offered keys"));
        }
        self.recipients = recipients;
        self.withheld = withheld;
        self.keys = keys;
        Ok(())
    }
}

fn write_target(w: &mut Writer, target: &Target) {
    w.short_bytes(target.user_id.as_str().as_bytes())
        .short_bytes(target.device_id.as_str().as_bytes())
        .bytes(target.ed25519.as_bytes())
        .u32(target.first_index)
        .bool(target.sent);
}

fn read_target(r: &mut Reader<'_>) -> Result<Target, DecodeError> {
    Ok(Target {
        user_id: UserId::parse(read_text(r, "user id")?)
            .map_err(|_| DecodeError::InvalidValue("user id"))?,
        device_id: DeviceId::parse(read_text(r, "device id")?)
            .map_err(|_| DecodeError::InvalidValue("device id"))?,
        ed25519: Ed25519PublicKey::from_bytes(&r.array("ed25519 key")?)
            .map_err(|_| DecodeError::InvalidValue("ed25519 key"))?,
        first_index: r.u32("first index")?,
        sent: r.bool("sent flag")?,
    })
}

/// What confirming a to-device request marks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PendingMark {
    /// `m.room_key` to these devices of the room's session.
    RoomKey {
        room: RoomId,
        session: GroupSessionId,
        devices: Vec<Curve25519PublicKey>,
    },
    /// `m.room_key.withheld` to these devices for the room's session.
    Withheld {
        room: RoomId,
        session: GroupSessionId,
        devices: Vec<Curve25519PublicKey>,
    },
    /// `m.room_key.withheld` with `m.no_olm` to these devices.
    NoOlm { devices: Vec<Curve25519PublicKey> },
    /// Nothing to mark (an `m.dummy`, a forwarded key).
    Nothing,
}

impl PendingMark {
    pub(crate) fn write(&self, w: &mut Writer) {
        let (tag, room, devices) = match self {
            PendingMark::RoomKey {
                room,
                session,
                devices,
            } => (1, Some((room, session)), devices.as_slice()),
            PendingMark::Withheld {
                room,
                session,
                devices,
            } => (2, Some((room, session)), devices.as_slice()),
            PendingMark::NoOlm { devices } => (3, None, devices.as_slice()),
            PendingMark::Nothing => (4, None, &[][..]),
        };
        w.u8(tag);
        if let Some((room, session)) = room {
            w.short_bytes(room.as_str().as_bytes())
                .bytes(session.as_bytes());
        }
        w.count32(devices.len());
        for device in devices {
            w.bytes(device.as_bytes());
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8("pending mark")?;
        let room = if matches!(tag, 1 | 2) {
            let room = RoomId::parse(read_text(r, "room id")?)
                .map_err(|_| DecodeError::InvalidValue("room id"))?;
            Some((room, GroupSessionId::from_bytes(r.array("session id")?)))
        } else {
            None
        };
        let count = usize::try_from(r.u32("pending devices")?)
            .map_err(|_| DecodeError::InvalidValue("pending devices"))?;
        if count > crate::consts::MAX_TO_DEVICE_PER_REQUEST {
            return Err(DecodeError::InvalidValue("pending devices"));
        }
        let mut devices = Vec::with_capacity(count);
        for _ in 0..count {
            devices.push(Curve25519PublicKey::from_bytes(r.array("device key")?));
        }
        match (tag, room) {
            (1, Some((room, session))) => Ok(PendingMark::RoomKey {
                room,
                session,
                devices,
            }),
            (2, Some((room, session))) => Ok(PendingMark::Withheld {
                room,
                session,
                devices,
            }),
            (3, None) => Ok(PendingMark::NoOlm { devices }),
            (4, None) if devices.is_empty() => Ok(PendingMark::Nothing),
            _ => Err(DecodeError::InvalidValue("pending mark")),
        }
    }
}

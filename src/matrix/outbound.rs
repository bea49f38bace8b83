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

use super::device_keys::Device;
use super::events::WithheldCode;
use super::ids::{DeviceId, RoomId, UserId};
use super::room_keys::read_text;
use crate::codec::{DecodeError, Reader, Writer};
use crate::group::GroupSessionId;
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey, IdentityKeys};
use crate::megolm::{MegolmOutboundSession, MegolmSessionKey};
use crate::room::recipients::{Offer, OfferedKey, RecipientDevice, Recipients};

/// A device a share serves, or a withheld notice is sent to: its ids
/// (shared, not copied) and keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recipient {
    pub(crate) user_id: UserId,
    pub(crate) device_id: DeviceId,
    pub(crate) keys: IdentityKeys,
}

impl Recipient {
    pub(crate) fn new(device: &Device) -> Self {
        Self {
            user_id: device.user_id().clone(),
            device_id: device.device_id().clone(),
            keys: device.keys(),
        }
    }

    pub(crate) fn ids(&self) -> (UserId, DeviceId) {
        (self.user_id.clone(), self.device_id.clone())
    }
}

impl RecipientDevice for Recipient {
    fn identity(&self) -> IdentityKeys {
        self.keys
    }

    fn write(&self, w: &mut Writer) {
        w.bytes(self.keys.curve25519.as_bytes())
            .short_bytes(self.user_id.as_str().as_bytes())
            .short_bytes(self.device_id.as_str().as_bytes())
            .bytes(self.keys.ed25519.as_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let curve25519 = Curve25519PublicKey::from_bytes(r.array("recipient key")?);
        let user_id = UserId::parse(read_text(r, "user id")?)
            .map_err(|_| DecodeError::InvalidValue("user id"))?;
        let device_id = DeviceId::parse(read_text(r, "device id")?)
            .map_err(|_| DecodeError::InvalidValue("device id"))?;
        let ed25519 = Ed25519PublicKey::from_bytes(&r.array("ed25519 key")?)
            .map_err(|_| DecodeError::InvalidValue("ed25519 key"))?;
        Ok(Self {
            user_id,
            device_id,
            keys: IdentityKeys {
                ed25519,
                curve25519,
            },
        })
    }
}

impl OfferedKey for MegolmSessionKey {
    fn first_index(&self) -> u32 {
        MegolmSessionKey::first_index(self)
    }

    fn session_id(&self) -> GroupSessionId {
        MegolmSessionKey::session_id(self)
    }

    fn write(&self, w: &mut Writer) {
        w.bytes(&self.to_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        MegolmSessionKey::from_bytes(r.bytes(229, "offered key")?)
    }
}

/// A room's current outbound session and who has been served.
pub(crate) struct OutboundMegolmRoom {
    pub(crate) session: MegolmOutboundSession,
    pub(crate) created_ms: u64,
    /// Who may hold the key, and the keys they were offered.
    pub(crate) recipients: Recipients<Recipient, MegolmSessionKey>,
    /// Devices sent `m.room_key.withheld` for this session, and why.
    pub(crate) withheld: BTreeMap<Curve25519PublicKey, (Offer<Recipient>, WithheldCode)>,
}

impl OutboundMegolmRoom {
    pub(crate) fn new(session: MegolmOutboundSession, created_ms: u64) -> Self {
        Self {
            session,
            created_ms,
            recipients: Recipients::default(),
            withheld: BTreeMap::new(),
        }
    }

    pub(crate) fn session_id(&self) -> GroupSessionId {
        self.session.session_id()
    }

    /// The signed key to give a device first offered the key at `index`.
    pub(crate) fn key_at(&mut self, index: u32) -> MegolmSessionKey {
        let session = &self.session;
        self.recipients.key_at(index, || session.session_key())
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
        self.recipients.write_devices(w);
        w.count32(self.withheld.len());
        for (offer, code) in self.withheld.values() {
            offer.write(w);
            w.short_bytes(code.as_str().as_bytes());
        }
        self.recipients.write_keys(w);
    }

    /// Reads what [`OutboundMegolmRoom::write_recipients`] wrote into this
    /// room, replacing its recipients, withheld devices and offered keys;
    /// checks them against its session. On failure the room is unchanged.
    pub(crate) fn read_recipients(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        let index = self.session.message_index();
        let mut recipients = Recipients::read_devices(r, index)?;
        let mut withheld = BTreeMap::new();
        for _ in 0..r.u32("withheld devices")? {
            let offer = Offer::<Recipient>::read(r)?;
            let code = WithheldCode::from(read_text(r, "withheld code")?);
            let key = offer.device.keys.curve25519;
            if withheld.insert(key, (offer, code)).is_some() {
                return Err(DecodeError::InvalidValue("withheld devices"));
            }
        }
        recipients.read_keys(r, self.session_id(), index)?;
        self.recipients = recipients;
        self.withheld = withheld;
        Ok(())
    }
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

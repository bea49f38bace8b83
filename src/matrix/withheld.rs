//! `m.room_key.withheld` notices received: why another device did not send
//! us a room key, kept so a failed decryption can say why
//! ([`super::RoomEventError::UnknownRoomKey`]).
//!
//! Guarantees: notices arrive in the clear, so they are hints only: they
//! never change a key or a session, and a notice for a session whose key we
//! hold changes nothing about decrypting it. Kept per (room, session), and
//! `m.no_olm` per sending device; at most [`MAX_WITHHELD_NOTICES`] in all,
//! the oldest forgotten first; a `reason` longer than 255 bytes is dropped.

use std::collections::BTreeMap;

use super::events::{RoomKeyWithheldContent, WithheldCode};
use super::ids::{DeviceId, RoomId, UserId};
use super::room_keys::read_text;
use super::tracked::TrackedMap;
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{MAX_ID_LEN, MAX_WITHHELD_NOTICES};
use crate::keys::Curve25519PublicKey;

/// A withheld notice as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithheldNotice {
    /// The user the server says sent it.
    pub sender: UserId,
    /// The Curve25519 key of the device it names as withholding.
    pub sender_key: Curve25519PublicKey,
    /// The withholding device's id, if it said (`from_device`).
    pub from_device: Option<DeviceId>,
    /// Why.
    pub code: WithheldCode,
    /// A human-readable reason (at most 255 bytes).
    pub reason: Option<String>,
    /// The room (absent for `m.no_olm`).
    pub room_id: Option<RoomId>,
    /// The session (absent for `m.no_olm`).
    pub session_id: Option<String>,
}

impl WithheldNotice {
    /// The notice `sender` sent with `content`.
    pub(crate) fn new(sender: UserId, content: RoomKeyWithheldContent) -> Self {
        Self {
            sender,
            sender_key: content.sender_key,
            from_device: content.from_device,
            code: content.code,
            reason: content.reason.filter(|r| r.len() <= MAX_ID_LEN),
            room_id: content.room_id,
            session_id: content.session_id.filter(|s| s.len() <= MAX_ID_LEN),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Slot {
    Session(RoomId, String),
    NoOlm(Curve25519PublicKey),
}

/// The notices kept, oldest forgotten first.
#[derive(Debug, Default)]
pub(crate) struct WithheldNotices {
    pub(crate) notices: TrackedMap<Slot, (u64, WithheldNotice)>,
    order: BTreeMap<u64, Slot>,
    next: u64,
}

impl WithheldNotices {
    /// Records a notice (replacing an earlier one for the same slot). A
    /// notice that names neither a session nor `m.no_olm` is ignored.
    pub(crate) fn record(&mut self, notice: WithheldNotice) -> bool {
        let Some(slot) = Slot::of(&notice) else {
            return false;
        };
        let seq = self.next;
        self.next = self.next.saturating_add(1);
        if let Some((old, _)) = self.notices.insert(slot.clone(), (seq, notice)) {
            self.order.remove(&old);
        }
        self.order.insert(seq, slot);
        while self.notices.len() > MAX_WITHHELD_NOTICES {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.notices.remove(&oldest);
        }
        true
    }

    /// The notice for a room's session, if one was received.
    pub(crate) fn for_session(&self, room: &RoomId, session: &str) -> Option<&WithheldNotice> {
        self.notices
            .get(&Slot::Session(room.clone(), session.to_owned()))
            .map(|(_, n)| n)
    }

    /// The `m.no_olm` notice of the device with Curve25519 key `sender_key`.
    pub(crate) fn no_olm(&self, sender_key: &Curve25519PublicKey) -> Option<&WithheldNotice> {
        self.notices.get(&Slot::NoOlm(*sender_key)).map(|(_, n)| n)
    }

    /// How many are kept.
    pub(crate) fn len(&self) -> usize {
        self.notices.len()
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.count32(self.order.len());
        for slot in self.order.values() {
            if let Some((_, n)) = self.notices.get(slot) {
                write_notice(w, n);
            }
        }
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut notices = Self::default();
        for _ in 0..r.u32("withheld notices")? {
            if !notices.record(read_notice(r)?) {
                return Err(DecodeError::InvalidValue("withheld notices"));
            }
        }
        Ok(notices)
    }

    /// Writes the notice held in `slot` with its sequence number (a durable
    /// record); false when none is held.
    pub(crate) fn write_slot(&self, slot: &Slot, w: &mut Writer) -> bool {
        let Some((seq, notice)) = self.notices.get(slot) else {
            return false;
        };
        w.u64(*seq);
        write_notice(w, notice);
        true
    }

    /// Applies the record of `slot` as a store holds it (`None`: absent).
    pub(crate) fn apply_slot(
        &mut self,
        slot: &Slot,
        r: Option<&mut Reader<'_>>,
    ) -> Result<(), DecodeError> {
        let read = match r {
            Some(r) => Some((r.u64("withheld sequence")?, read_notice(r)?)),
            None => None,
        };
        if let Some((old, _)) = self.notices.remove(slot) {
            self.order.remove(&old);
        }
        let Some((seq, notice)) = read else {
            return Ok(());
        };
        if Slot::of(&notice).as_ref() != Some(slot)
            || self.notices.len() >= MAX_WITHHELD_NOTICES
            || self.order.insert(seq, slot.clone()).is_some()
        {
            return Err(DecodeError::InvalidValue("withheld notices"));
        }
        self.next = self.next.max(seq.saturating_add(1));
        self.notices.insert(slot.clone(), (seq, notice));
        Ok(())
    }
}

impl Slot {
    /// The slot a notice is kept in (`None`: it names neither a session nor
    /// `m.no_olm`).
    fn of(notice: &WithheldNotice) -> Option<Self> {
        match (&notice.code, &notice.room_id, &notice.session_id) {
            (WithheldCode::NoOlm, _, _) => Some(Slot::NoOlm(notice.sender_key)),
            (_, Some(room), Some(session)) => Some(Slot::Session(room.clone(), session.clone())),
            _ => None,
        }
    }

    /// The slot's natural id (for the durable store).
    pub(crate) fn write_id(&self, w: &mut Writer) {
        match self {
            Slot::Session(room, session) => {
                w.u8(1)
                    .short_bytes(room.as_str().as_bytes())
                    .short_bytes(session.as_bytes());
            }
            Slot::NoOlm(key) => {
                w.u8(2).bytes(key.as_bytes());
            }
        }
    }

    /// Reads what [`Slot::write_id`] wrote.
    pub(crate) fn read_id(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("withheld slot")? {
            1 => Ok(Slot::Session(
                RoomId::parse(read_text(r, "withheld room")?)
                    .map_err(|_| DecodeError::InvalidValue("withheld room"))?,
                read_text(r, "withheld session")?,
            )),
            2 => Ok(Slot::NoOlm(Curve25519PublicKey::from_bytes(
                r.array("withheld sender key")?,
            ))),
            _ => Err(DecodeError::InvalidValue("withheld slot")),
        }
    }
}

fn write_notice(w: &mut Writer, n: &WithheldNotice) {
    w.short_bytes(n.sender.as_str().as_bytes())
        .bytes(n.sender_key.as_bytes())
        .short_bytes(n.code.as_str().as_bytes());
    for text in [
        n.from_device.as_ref().map(DeviceId::as_str),
        n.reason.as_deref(),
        n.room_id.as_ref().map(RoomId::as_str),
        n.session_id.as_deref(),
    ] {
        match text.filter(|t| !t.is_empty()) {
            Some(text) => w.bool(true).short_bytes(text.as_bytes()),
            None => w.bool(false),
        };
    }
}

fn read_notice(r: &mut Reader<'_>) -> Result<WithheldNotice, DecodeError> {
    fn optional(r: &mut Reader<'_>, field: &'static str) -> Result<Option<String>, DecodeError> {
        if r.bool(field)? {
            read_text(r, field).map(Some)
        } else {
            Ok(None)
        }
    }
    let invalid = |field| move |_| DecodeError::InvalidValue(field);
    let sender =
        UserId::parse(read_text(r, "withheld sender")?).map_err(invalid("withheld sender"))?;
    let sender_key = Curve25519PublicKey::from_bytes(r.array("withheld sender key")?);
    let code = WithheldCode::from(read_text(r, "withheld code")?);
    let from_device = optional(r, "withheld device")?
        .map(DeviceId::parse)
        .transpose()
        .map_err(invalid("withheld device"))?;
    let reason = optional(r, "withheld reason")?;
    let room_id = optional(r, "withheld room")?
        .map(RoomId::parse)
        .transpose()
        .map_err(invalid("withheld room"))?;
    let session_id = optional(r, "withheld session")?;
    Ok(WithheldNotice {
        sender,
        sender_key,
        from_device,
        code,
        reason,
        room_id,
        session_id,
    })
}

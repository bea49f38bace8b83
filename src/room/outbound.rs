//! A room's outbound state: its current group session and every device that
//! may hold that session's key.
//!
//! Guarantees: a device enters the recipient set as soon as a share message
//! for it is produced (it may hold the key from then on, whether or not the
//! app ever sends the message), is marked *sent* only when the app confirms
//! the message went out, and leaves the set only with the session: so any
//! device that may hold the current key and is no longer listed forces a
//! rotation. Each recipient is always re-served the key from the index it
//! was first offered, never an earlier one. The bookkeeping is the one the
//! Matrix layer uses too ([`super::recipients`]).

use super::recipients::{OfferedKey, RecipientDevice, Recipients};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::MAX_ID_LEN;
use crate::group::{GroupSessionId, OutboundGroupSession, SessionKey};
use crate::keys::IdentityKeys;

/// A device that was offered the room's current key: its identity and the
/// ids it was shared under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recipient {
    pub(crate) identity: IdentityKeys,
    pub(crate) user_id: String,
    pub(crate) device_id: String,
}

impl RecipientDevice for Recipient {
    fn identity(&self) -> IdentityKeys {
        self.identity
    }

    fn write(&self, w: &mut Writer) {
        w.bytes(&self.identity.to_bytes())
            .short_bytes(self.user_id.as_bytes())
            .short_bytes(self.device_id.as_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        fn text(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
            let bytes = r.short_bytes(MAX_ID_LEN, field)?;
            match std::str::from_utf8(bytes) {
                Ok(text) if !text.is_empty() => Ok(text.to_owned()),
                _ => Err(DecodeError::InvalidValue(field)),
            }
        }
        Ok(Self {
            identity: IdentityKeys::read(r)?,
            user_id: text(r, "recipient user id")?,
            device_id: text(r, "recipient device id")?,
        })
    }
}

impl OfferedKey for SessionKey {
    fn first_index(&self) -> u32 {
        SessionKey::first_index(self)
    }

    fn session_id(&self) -> GroupSessionId {
        SessionKey::session_id(self)
    }

    fn write(&self, w: &mut Writer) {
        let bytes = self.to_bytes();
        w.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX))
            .bytes(&bytes);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = usize::try_from(r.u32("offered key length")?)
            .map_err(|_| DecodeError::InvalidValue("offered key length"))?;
        SessionKey::from_bytes(r.bytes(len, "offered key")?)
    }
}

/// A room's current outbound session and its recipients.
pub(crate) struct OutboundRoom {
    pub(crate) session: OutboundGroupSession,
    pub(crate) created_ms: u64,
    /// Who may hold the key, and the keys they were offered.
    pub(crate) recipients: Recipients<Recipient, SessionKey>,
}

impl OutboundRoom {
    pub(crate) fn new(session: OutboundGroupSession, created_ms: u64) -> Self {
        Self {
            session,
            created_ms,
            recipients: Recipients::default(),
        }
    }

    /// The signed key to give a device first offered the key at `index`.
    pub(crate) fn key_at(&mut self, index: u32) -> SessionKey {
        let session = &self.session;
        self.recipients.key_at(index, || session.session_key())
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        self.write_session(w);
        self.write_recipients(w);
    }

    /// The session and its creation time (a durable record of its own: it
    /// changes with every event encrypted).
    pub(crate) fn write_session(&self, w: &mut Writer) {
        self.session.write_contents(w);
        w.u64(self.created_ms);
    }

    /// The recipients and offered keys (a durable record of its own: they
    /// change only when the key is shared).
    pub(crate) fn write_recipients(&self, w: &mut Writer) {
        self.recipients.write_devices(w);
        self.recipients.write_keys(w);
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut room = Self::read_session(r)?;
        room.read_recipients(r)?;
        Ok(room)
    }

    /// Reads what [`OutboundRoom::write_session`] wrote (no recipients).
    pub(crate) fn read_session(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let session = OutboundGroupSession::read_contents(r)?;
        Ok(Self::new(session, r.u64("created at")?))
    }

    /// Reads what [`OutboundRoom::write_recipients`] wrote, replacing the
    /// recipients and offered keys.
    pub(crate) fn read_recipients(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        let current = self.session.message_index();
        let mut recipients = Recipients::read_devices(r, current)?;
        recipients.read_keys(r, self.session.session_id(), current)?;
        self.recipients = recipients;
        Ok(())
    }
}

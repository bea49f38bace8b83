//! A room's outbound state: its current group session and every device that
//! may hold that session's key.
//!
//! Guarantees: a device enters the recipient set as soon as a share message
//! for it is produced (it may hold the key from then on, whether or not the
//! app ever sends the message), is marked *sent* only when the app confirms
//! the message went out, and leaves the set only with the session: so any
//! device that may hold the current key and is no longer listed forces a
//! rotation. Each recipient is always re-served the key from the index it
//! was first offered, never an earlier one.

use std::collections::BTreeMap;

use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::MAX_ID_LEN;
use crate::group::{OutboundGroupSession, SessionKey};
use crate::keys::{Curve25519PublicKey, IdentityKeys};

/// A device that was offered the room's current key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recipient {
    pub(crate) identity: IdentityKeys,
    pub(crate) user_id: String,
    pub(crate) device_id: String,
    /// The index of the key it was offered.
    pub(crate) first_index: u32,
    /// Whether the app confirmed a share message for it was sent.
    pub(crate) sent: bool,
}

/// A room's current outbound session and its recipients.
pub(crate) struct OutboundRoom {
    pub(crate) session: OutboundGroupSession,
    pub(crate) created_ms: u64,
    /// By X25519 key; each entry's full identity is compared on use.
    pub(crate) recipients: BTreeMap<Curve25519PublicKey, Recipient>,
    /// The signed key at each index some recipient was first offered (a
    /// handful: one per share call that added devices).
    pub(crate) keys: BTreeMap<u32, SessionKey>,
}

impl OutboundRoom {
    pub(crate) fn new(session: OutboundGroupSession, created_ms: u64) -> Self {
        Self {
            session,
            created_ms,
            recipients: BTreeMap::new(),
            keys: BTreeMap::new(),
        }
    }

    /// Whether a device that may hold the key is missing from `listed`.
    pub(crate) fn lost_a_recipient(
        &self,
        listed: &BTreeMap<Curve25519PublicKey, IdentityKeys>,
    ) -> bool {
        self.recipients
            .iter()
            .any(|(key, r)| listed.get(key) != Some(&r.identity))
    }

    /// The signed key to give a device first offered the key at `index`.
    pub(crate) fn key_at(&mut self, index: u32) -> SessionKey {
        if let Some(key) = self.keys.get(&index) {
            return key.clone();
        }
        // Only the current index can be new: earlier ones were stored when
        // first offered.
        let key = self.session.session_key();
        self.keys.insert(key.first_index(), key.clone());
        key
    }

    /// Marks the share to `recipient` as sent; false if it was not offered
    /// the current key.
    pub(crate) fn mark_sent(&mut self, recipient: &Curve25519PublicKey) -> bool {
        match self.recipients.get_mut(recipient) {
            Some(r) => {
                r.sent = true;
                true
            }
            None => false,
        }
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
        w.count32(self.recipients.len());
        for r in self.recipients.values() {
            w.bytes(&r.identity.to_bytes())
                .short_bytes(r.user_id.as_bytes())
                .short_bytes(r.device_id.as_bytes())
                .u32(r.first_index)
                .bool(r.sent);
        }
        w.count32(self.keys.len());
        for key in self.keys.values() {
            let bytes = key.to_bytes();
            w.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX))
                .bytes(&bytes);
        }
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
        fn text(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
            let bytes = r.short_bytes(MAX_ID_LEN, field)?;
            match std::str::from_utf8(bytes) {
                Ok(text) if !text.is_empty() => Ok(text.to_owned()),
                _ => Err(DecodeError::InvalidValue(field)),
            }
        }
        let room = self;
        room.recipients.clear();
        room.keys.clear();
        for _ in 0..r.u32("recipients")? {
            let identity = IdentityKeys::read(r)?;
            let recipient = Recipient {
                identity,
                user_id: text(r, "recipient user id")?,
                device_id: text(r, "recipient device id")?,
                first_index: r.u32("recipient index")?,
                sent: r.bool("sent flag")?,
            };
            if recipient.first_index > room.session.message_index()
                || room
                    .recipients
                    .insert(identity.curve25519, recipient)
                    .is_some()
            {
                return Err(DecodeError::InvalidValue("recipients"));
            }
        }
        for _ in 0..r.u32("offered keys")? {
            let len = usize::try_from(r.u32("offered key length")?)
                .map_err(|_| DecodeError::InvalidValue("offered key length"))?;
            let key = SessionKey::from_bytes(r.bytes(len, "offered key")?)?;
            if key.session_id() != room.session.session_id()
                || key.first_index() > room.session.message_index()
                || room.keys.insert(key.first_index(), key).is_some()
            {
                return Err(DecodeError::InvalidValue("offered keys"));
            }
        }
        if room
            .recipients
            .values()
            .any(|r| !room.keys.contains_key(&r.first_index))
        {
            return Err(DecodeError::InvalidValue("offered keys"));
        }
        Ok(())
    }
}

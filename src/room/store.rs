//! The inbound room-key store: every group session this device can read,
//! keyed by room and session id, with the sender that shared it and a
//! replay record of which event used each message index.
//!
//! Guarantees: an event at a (session, index) already used by a different
//! event id is a replay error; decrypting the same event again is fine; a
//! key for a session id already stored merges only if it is a copy of the
//! same session from the same sender, except that an authenticated share
//! displaces an unauthenticated import (never the reverse); indices the
//! replay record had to forget stay refused; every failure leaves the store
//! unchanged.

use std::collections::BTreeMap;
use std::fmt;

use super::RoomError;
use super::event::{DecryptedEvent, EncryptedEvent, EventPlaintext, ROOM_ALGORITHM};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{MAX_ID_LEN, MAX_TRACKED_INDICES};
use crate::crypto::sha256;
use crate::group::{
    ExportedSessionKey, GroupSessionId, InboundGroupSession, SessionOrdering, check_room_id,
};
use crate::keys::IdentityKeys;

/// What adding a key to the store did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAdded {
    /// The store did not have this session.
    New,
    /// The store had it; the new copy knew an earlier index or was more
    /// trusted, and the two were merged (or the new authenticated copy
    /// displaced an unauthenticated import).
    Improved,
    /// The store already had an equal or better copy.
    Unchanged,
}

struct StoredKey {
    session: InboundGroupSession,
    sender: IdentityKeys,
    /// Message index → SHA-256 of the event id that used it.
    seen: BTreeMap<u32, [u8; 32]>,
    /// Indices below this were forgotten by the replay record and are
    /// refused, even if a merge brings back an earlier first index.
    floor: u32,
}

/// Every inbound group session this device holds, with replay detection.
#[derive(Default)]
pub struct InboundKeyStore {
    keys: BTreeMap<(String, GroupSessionId), StoredKey>,
}

fn check_event_id(event_id: &str) -> Result<(), RoomError> {
    if event_id.is_empty() || event_id.len() > MAX_ID_LEN {
        Err(RoomError::InvalidId("event id"))
    } else {
        Ok(())
    }
}

impl InboundKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or merges) the key of a group session shared in `room_id` by
    /// the device `sender`.
    pub fn add(
        &mut self,
        room_id: &str,
        sender: IdentityKeys,
        session: InboundGroupSession,
    ) -> Result<KeyAdded, RoomError> {
        check_room_id(room_id)?;
        let key = (room_id.to_owned(), session.session_id());
        let Some(stored) = self.keys.get_mut(&key) else {
            self.keys.insert(
                key,
                StoredKey {
                    session,
                    sender,
                    seen: BTreeMap::new(),
                    floor: 0,
                },
            );
            return Ok(KeyAdded::New);
        };
        // An authenticated share outranks an unauthenticated import: it may
        // replace one that names another sender or does not even match.
        let displaces = session.is_authenticated() && !stored.session.is_authenticated();
        let ordering = stored.session.compare(&session);
        if stored.sender != sender || ordering == SessionOrdering::Unconnected {
            if !displaces {
                return Err(RoomError::ConflictingRoomKey);
            }
            stored.session = stored.session.merge(&session).unwrap_or(session);
            stored.sender = sender;
            return Ok(KeyAdded::Improved);
        }
        match ordering {
            SessionOrdering::Equal | SessionOrdering::Better => Ok(KeyAdded::Unchanged),
            _ => {
                let merged = stored
                    .session
                    .merge(&session)
                    .ok_or(RoomError::ConflictingRoomKey)?;
                stored.session = merged;
                Ok(KeyAdded::Improved)
            }
        }
    }

    /// Decrypts an event envelope of `room_id` whose server-assigned id is
    /// `event_id`.
    pub fn decrypt(
        &mut self,
        room_id: &str,
        event_id: &str,
        envelope: &EncryptedEvent,
    ) -> Result<DecryptedEvent, RoomError> {
        if envelope.algorithm != ROOM_ALGORITHM {
            return Err(RoomError::UnsupportedAlgorithm);
        }
        check_room_id(room_id)?;
        check_event_id(event_id)?;
        let stored = self
            .keys
            .get_mut(&(room_id.to_owned(), envelope.session_id))
            .ok_or(RoomError::UnknownRoomKey)?;
        if stored.sender.curve25519 != envelope.sender_key {
            return Err(RoomError::SenderKeyMismatch);
        }
        let claimed = envelope.ciphertext.message_index();
        if claimed < stored.floor {
            return Err(RoomError::Forgotten { index: claimed });
        }
        let decrypted = stored.session.decrypt(room_id, &envelope.ciphertext)?;
        let index = decrypted.message_index;
        let event_hash = sha256(&[event_id.as_bytes()]);
        if stored
            .seen
            .get(&index)
            .is_some_and(|previous| previous != &event_hash)
        {
            return Err(RoomError::Replay { index });
        }
        let plaintext: EventPlaintext =
            serde_json::from_slice(&decrypted.plaintext).map_err(|_| RoomError::InvalidEvent)?;
        stored.seen.insert(index, event_hash);
        if stored.seen.len() > MAX_TRACKED_INDICES {
            // Forget the lowest record and refuse everything below the
            // lowest one kept, so a forgotten index can never be replayed.
            stored.seen.pop_first();
            if let Some((&lowest, _)) = stored.seen.first_key_value() {
                stored.floor = lowest;
                stored.session.advance_to(lowest);
            }
        }
        Ok(DecryptedEvent {
            event_type: plaintext.event_type,
            content: plaintext.content,
            sender: stored.sender,
            session_id: envelope.session_id,
            message_index: index,
            authenticated: decrypted.authenticated,
        })
    }

    /// Whether the store holds the session.
    pub fn contains(&self, room_id: &str, session_id: &GroupSessionId) -> bool {
        self.keys.contains_key(&(room_id.to_owned(), *session_id))
    }

    /// The stored session's first known index.
    pub fn first_known_index(&self, room_id: &str, session_id: &GroupSessionId) -> Option<u32> {
        self.keys
            .get(&(room_id.to_owned(), *session_id))
            .map(|k| k.session.first_known_index())
    }

    /// Exports a stored session at `index` with its sender, for backup or
    /// forwarding.
    pub fn export(
        &self,
        room_id: &str,
        session_id: &GroupSessionId,
        index: u32,
    ) -> Option<(IdentityKeys, ExportedSessionKey)> {
        let stored = self.keys.get(&(room_id.to_owned(), *session_id))?;
        Some((stored.sender, stored.session.export_at(index)?))
    }

    /// Forgets every key of a room; returns how many were dropped.
    pub fn forget_room(&mut self, room_id: &str) -> usize {
        let before = self.keys.len();
        self.keys.retain(|(room, _), _| room != room_id);
        before - self.keys.len()
    }

    /// How many sessions the store holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.count32(self.keys.len());
        for ((room, _), stored) in &self.keys {
            w.short_bytes(room.as_bytes())
                .bytes(&stored.sender.to_bytes());
            stored.session.write_contents(w);
            w.u32(stored.floor).count32(stored.seen.len());
            for (index, hash) in &stored.seen {
                w.u32(*index).bytes(hash);
            }
        }
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut store = Self::default();
        for _ in 0..r.u32("stored room keys")? {
            let room = std::str::from_utf8(r.short_bytes(MAX_ID_LEN, "room id")?)
                .map_err(|_| DecodeError::InvalidValue("room id"))?
                .to_owned();
            check_room_id(&room).map_err(|_| DecodeError::InvalidValue("room id"))?;
            let sender = IdentityKeys::read(r)?;
            let session = InboundGroupSession::read_contents(r)?;
            let floor = r.u32("replay floor")?;
            let mut seen = BTreeMap::new();
            let count = r.u32("replay entries")?;
            if usize::try_from(count).map_or(true, |c| c > MAX_TRACKED_INDICES) {
                return Err(DecodeError::InvalidValue("replay entries"));
            }
            for _ in 0..count {
                if seen
                    .insert(r.u32("message index")?, r.array("event id hash")?)
                    .is_some()
                {
                    return Err(DecodeError::InvalidValue("replay entries"));
                }
            }
            let key = (room, session.session_id());
            if store
                .keys
                .insert(
                    key,
                    StoredKey {
                        session,
                        sender,
                        seen,
                        floor,
                    },
                )
                .is_some()
            {
                return Err(DecodeError::InvalidValue("stored room keys"));
            }
        }
        Ok(store)
    }
}

impl fmt::Debug for InboundKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Entry<'a>(&'a str, &'a StoredKey);
        impl fmt::Debug for Entry<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("StoredKey")
                    .field("room_id", &self.0)
                    .field("session", &self.1.session)
                    .field("sender", &self.1.sender)
                    .field("replay_records", &self.1.seen.len())
                    .field("replay_floor", &self.1.floor)
                    .finish()
            }
        }
        f.debug_struct("InboundKeyStore")
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|((room, _), k)| Entry(room, k))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

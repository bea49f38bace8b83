//! The inbound room-key store: every group session this device can read,
//! keyed by room and session id, with the sender that shared it and a
//! replay record of which event used each message index.
//!
//! Guarantees: an event at a (session, index) already used by a different
//! event id is a replay error; decrypting the same event again is fine; the
//! sender of a shared key is the creator its signed session key names (the
//! caller's word is taken only for imports, which are never authenticated);
//! a key for a session id already stored merges only if it is a copy of the
//! same session from the same sender, except that a signed share displaces
//! an import attributed to someone else (never the reverse); indices the
//! replay record had to forget stay refused; what outside input can add is
//! bounded in all, per sender and in replay records (see [`crate::consts`]);
//! every failure leaves the store unchanged.

use std::collections::BTreeMap;
use std::fmt;

use super::RoomError;
use super::event::{DecryptedEvent, EncryptedEvent, EventPlaintext, ROOM_ALGORITHM};
use super::limits::Limits;
use super::touched::{Touch, Touched};
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
    /// The store had it; the new copy knew an earlier index or more of it
    /// was authenticated, and the two were merged (or a signed share
    /// displaced an import attributed to another sender).
    Improved,
    /// The store already had an equal or better copy.
    Unchanged,
}

/// A stored room key as [`InboundKeyStore::keys`] lists it (no secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRoomKey {
    /// The room.
    pub room_id: String,
    /// The group session.
    pub session_id: GroupSessionId,
    /// The device that created the session (authenticated when
    /// `authenticated_from` is set; as claimed by an import otherwise).
    pub sender: IdentityKeys,
    /// The sending device's user id, as bound when the key was shared
    /// (`None` for a key known only from an import).
    pub sender_user_id: Option<String>,
    /// The sending device's device id, as bound when the key was shared.
    pub sender_device_id: Option<String>,
    /// The first message index the key can decrypt.
    pub first_index: u32,
    /// The first index decrypted as authenticated, if a signed key was
    /// received.
    pub authenticated_from: Option<u32>,
    /// Replay records kept for the key.
    pub replay_records: usize,
    /// Bytes the key takes in the endpoint's pickle.
    pub size_bytes: usize,
}

struct StoredKey {
    session: InboundGroupSession,
    sender: IdentityKeys,
    sender_user_id: Option<String>,
    sender_device_id: Option<String>,
    /// Message index → SHA-256 of the event id that used it.
    seen: BTreeMap<u32, [u8; 32]>,
    /// Indices below this were forgotten by the replay record and are
    /// refused, even if a merge brings back an earlier first index.
    floor: u32,
    /// When it was last added or used (a counter, for eviction).
    last_used: u64,
}

/// Where a key comes from, and so how far its word is taken.
enum Source<'a> {
    /// A signed session key shared by its creator (over a pairwise session
    /// with that device) with the ids the share bound.
    Shared {
        user_id: &'a str,
        device_id: &'a str,
    },
    /// An export (backup, forward) whose sender is only claimed.
    Import { claimed_sender: IdentityKeys },
    /// Our own key.
    Own,
}

/// Every inbound group session this device holds, with replay detection.
#[derive(Default)]
pub struct InboundKeyStore {
    keys: BTreeMap<(String, GroupSessionId), StoredKey>,
    per_sender: BTreeMap<IdentityKeys, usize>,
    records: usize,
    tick: u64,
    limits: Limits,
    /// The keys and replay records changed (for the durable store).
    pub(super) touched: Touched,
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

    #[cfg(test)]
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Adds (or merges) a session built from a signed session key
    /// ([`InboundGroupSession::new`]) that its creator shared in `room_id`
    /// from the device bound to `sender_user_id` and `sender_device_id`.
    /// The sender is the creator the signed key names; the room must be the
    /// one it names ([`RoomError::ShareRoomMismatch`]), and an unsigned
    /// session is refused ([`RoomError::ShareSenderMismatch`]).
    pub fn add_shared(
        &mut self,
        room_id: &str,
        session: InboundGroupSession,
        sender_user_id: &str,
        sender_device_id: &str,
    ) -> Result<KeyAdded, RoomError> {
        self.add(
            room_id,
            session,
            Source::Shared {
                user_id: sender_user_id,
                device_id: sender_device_id,
            },
        )
    }

    /// Adds (or merges) an imported session (a backup or a forward) of
    /// `room_id`, attributed to `claimed_sender`. It is never authenticated,
    /// and can never displace a key a signed share attributed to another
    /// device ([`RoomError::ConflictingRoomKey`]).
    pub fn add_import(
        &mut self,
        room_id: &str,
        claimed_sender: IdentityKeys,
        session: InboundGroupSession,
    ) -> Result<KeyAdded, RoomError> {
        self.add(room_id, session, Source::Import { claimed_sender })
    }

    /// Our own copy of a session we just created.
    pub(crate) fn add_own(
        &mut self,
        room_id: &str,
        session: InboundGroupSession,
    ) -> Result<KeyAdded, RoomError> {
        self.add(room_id, session, Source::Own)
    }

    /// [`InboundKeyStore::add_shared`] for a key that outside input brings
    /// (a share received from a peer), within the bounds: a new key first
    /// evicts its sender's least recently used key if the sender is at its
    /// quota, then, if the store's keys from others are at their bound, the
    /// least recently used key of a sender `is_named` does not name (never
    /// one of `own`, our own keys). Returns what was added and which keys
    /// were evicted.
    pub(crate) fn add_from_peer(
        &mut self,
        room_id: &str,
        session: InboundGroupSession,
        sender_user_id: &str,
        sender_device_id: &str,
        own: &IdentityKeys,
        is_named: impl Fn(&IdentityKeys) -> bool,
    ) -> Result<(KeyAdded, Vec<(String, GroupSessionId)>), RoomError> {
        let source = Source::Shared {
            user_id: sender_user_id,
            device_id: sender_device_id,
        };
        let (sender, _, _) = Self::attribution(room_id, &session, &source)?;
        let key = (room_id.to_owned(), session.session_id());
        let mut evicted = Vec::new();
        if sender == *own {
            return Err(RoomError::ShareSenderMismatch);
        }
        if !self.keys.contains_key(&key) {
            let ours = self.per_sender.get(own).copied().unwrap_or(0);
            let full = self.keys.len().saturating_sub(ours) >= self.limits.room_keys;
            let at_quota = self.per_sender.get(&sender).copied().unwrap_or(0)
                >= self.limits.room_keys_per_sender;
            let own_victim = at_quota
                .then(|| self.least_recently_used(|k| k.sender == sender))
                .flatten();
            let victim = match own_victim {
                Some(v) => Some(v),
                None if full => Some(
                    self.least_recently_used(|k| k.sender != *own && !is_named(&k.sender))
                        .ok_or(RoomError::TooManyRoomKeys)?,
                ),
                None => None,
            };
            if let Some(victim) = victim {
                self.remove(&victim);
                evicted.push(victim);
            }
        }
        let added = self.add(room_id, session, source)?;
        Ok((added, evicted))
    }

    fn least_recently_used(
        &self,
        eligible: impl Fn(&StoredKey) -> bool,
    ) -> Option<(String, GroupSessionId)> {
        self.keys
            .iter()
            .filter(|(_, k)| eligible(k))
            .min_by_key(|(_, k)| k.last_used)
            .map(|(id, _)| id.clone())
    }

    /// The sender and ids a source attributes a session to, after checking
    /// the session agrees with the source.
    fn attribution<'a>(
        room_id: &str,
        session: &InboundGroupSession,
        source: &Source<'a>,
    ) -> Result<(IdentityKeys, Option<&'a str>, Option<&'a str>), RoomError> {
        check_room_id(room_id)?;
        match source {
            Source::Shared { user_id, device_id } => {
                let creator = session.creator().ok_or(RoomError::ShareSenderMismatch)?;
                if session.room_id() != Some(room_id) {
                    return Err(RoomError::ShareRoomMismatch);
                }
                Ok((creator, Some(user_id), Some(device_id)))
            }
            Source::Import { claimed_sender } => Ok((*claimed_sender, None, None)),
            Source::Own => Ok((
                session.creator().ok_or(RoomError::ShareSenderMismatch)?,
                None,
                None,
            )),
        }
    }

    fn add(
        &mut self,
        room_id: &str,
        session: InboundGroupSession,
        source: Source<'_>,
    ) -> Result<KeyAdded, RoomError> {
        let (sender, user_id, device_id) = Self::attribution(room_id, &session, &source)?;
        if matches!(source, Source::Import { .. }) && session.is_authenticated() {
            // Imports come from exports, which carry no signature.
            return Err(RoomError::ConflictingRoomKey);
        }
        self.tick += 1;
        let tick = self.tick;
        let key = (room_id.to_owned(), session.session_id());
        let Some(stored) = self.keys.get_mut(&key) else {
            self.touched
                .mark(|| Touch::InboundKey(key.0.clone(), key.1));
            *self.per_sender.entry(sender).or_default() += 1;
            self.keys.insert(
                key,
                StoredKey {
                    session,
                    sender,
                    sender_user_id: user_id.map(str::to_owned),
                    sender_device_id: device_id.map(str::to_owned),
                    seen: BTreeMap::new(),
                    floor: 0,
                    last_used: tick,
                },
            );
            return Ok(KeyAdded::New);
        };
        let signed_new = session.is_authenticated();
        let signed_stored = stored.session.is_authenticated();
        // A signed share may displace an import attributed to another device;
        // anything else must come from the same sender.
        let displaces = signed_new && !signed_stored && stored.sender != sender;
        if stored.sender != sender && !displaces {
            return Err(RoomError::ConflictingRoomKey);
        }
        let ordering = stored.session.compare(&session);
        let merged = if displaces {
            // The import's prefix survives only if it matches the signed key.
            stored.session.merge(&session).unwrap_or(session)
        } else {
            match ordering {
                SessionOrdering::Unconnected => return Err(RoomError::ConflictingRoomKey),
                SessionOrdering::Equal | SessionOrdering::Better => {
                    stored.last_used = tick;
                    return Ok(KeyAdded::Unchanged);
                }
                SessionOrdering::Worse | SessionOrdering::Incomparable => stored
                    .session
                    .merge(&session)
                    .ok_or(RoomError::ConflictingRoomKey)?,
            }
        };
        if displaces {
            let old_sender = std::mem::replace(&mut stored.sender, sender);
            stored.sender_user_id = user_id.map(str::to_owned);
            stored.sender_device_id = device_id.map(str::to_owned);
            decrement(&mut self.per_sender, &old_sender);
            *self.per_sender.entry(sender).or_default() += 1;
        } else if stored.sender_user_id.is_none() && user_id.is_some() {
            stored.sender_user_id = user_id.map(str::to_owned);
            stored.sender_device_id = device_id.map(str::to_owned);
        }
        stored.session = merged;
        stored.last_used = tick;
        self.touched
            .mark(|| Touch::InboundKey(key.0.clone(), key.1));
        Ok(KeyAdded::Improved)
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
        let id = (room_id.to_owned(), envelope.session_id);
        let stored = self.keys.get_mut(&id).ok_or(RoomError::UnknownRoomKey)?;
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
        self.tick += 1;
        stored.last_used = self.tick;
        if stored.seen.insert(index, event_hash).is_none() {
            self.records += 1;
            self.touched
                .mark(|| Touch::Replay(id.0.clone(), id.1, index));
        }
        let event = DecryptedEvent {
            event_type: plaintext.event_type,
            content: plaintext.content,
            sender: stored.sender,
            sender_user_id: stored.sender_user_id.clone(),
            sender_device_id: stored.sender_device_id.clone(),
            session_id: envelope.session_id,
            message_index: index,
            authenticated: decrypted.authenticated,
        };
        if stored.seen.len() > MAX_TRACKED_INDICES {
            forget_lowest_record(&mut self.touched, &id, stored);
            self.records = self.records.saturating_sub(1);
        }
        self.trim_records();
        Ok(event)
    }

    /// Keeps the replay records within their total bound: the key holding
    /// the most forgets its lowest record until the total fits.
    fn trim_records(&mut self) {
        while self.records > self.limits.replay_records {
            let Some((id, largest)) = self.keys.iter_mut().max_by_key(|(_, k)| k.seen.len()) else {
                return;
            };
            if largest.seen.is_empty() {
                return;
            }
            forget_lowest_record(&mut self.touched, id, largest);
            self.records = self.records.saturating_sub(1);
        }
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

    /// Every stored key, by room and session id (no secrets): what an app
    /// backs up, or looks through to free room.
    pub fn keys(&self) -> Vec<StoredRoomKey> {
        self.keys
            .iter()
            .map(|((room, session_id), k)| StoredRoomKey {
                room_id: room.clone(),
                session_id: *session_id,
                sender: k.sender,
                sender_user_id: k.sender_user_id.clone(),
                sender_device_id: k.sender_device_id.clone(),
                first_index: k.session.first_known_index(),
                authenticated_from: k.session.authenticated_from(),
                replay_records: k.seen.len(),
                size_bytes: {
                    let mut w = Writer::with_capacity(512 + 36 * k.seen.len());
                    write_key(&mut w, room, k);
                    w.into_vec().len()
                },
            })
            .collect()
    }

    /// Forgets one key; returns whether it was stored.
    pub fn forget_key(&mut self, room_id: &str, session_id: &GroupSessionId) -> bool {
        self.remove(&(room_id.to_owned(), *session_id))
    }

    fn remove(&mut self, key: &(String, GroupSessionId)) -> bool {
        match self.keys.remove(key) {
            Some(stored) => {
                let (room, session_id) = key;
                self.touched
                    .mark(|| Touch::InboundKey(room.clone(), *session_id));
                for index in stored.seen.keys() {
                    self.touched
                        .mark(|| Touch::Replay(room.clone(), *session_id, *index));
                }
                decrement(&mut self.per_sender, &stored.sender);
                self.records = self.records.saturating_sub(stored.seen.len());
                true
            }
            None => false,
        }
    }

    /// Forgets every key of a room; returns how many were dropped.
    pub fn forget_room(&mut self, room_id: &str) -> usize {
        let doomed: Vec<_> = self
            .keys
            .keys()
            .filter(|(room, _)| room == room_id)
            .cloned()
            .collect();
        for key in &doomed {
            self.remove(key);
        }
        doomed.len()
    }

    /// How many sessions the store holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every stored key's room, session id and replay-record indices.
    pub(crate) fn records(
        &self,
    ) -> impl Iterator<Item = (&str, GroupSessionId, impl Iterator<Item = u32> + '_)> + '_ {
        self.keys
            .iter()
            .map(|((room, session), k)| (room.as_str(), *session, k.seen.keys().copied()))
    }

    /// Replay records held in all.
    pub fn replay_records(&self) -> usize {
        self.records
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.count32(self.keys.len());
        for ((room, _), stored) in &self.keys {
            write_key(w, room, stored);
        }
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut store = Self::default();
        for _ in 0..r.u32("stored room keys")? {
            let (key, mut stored) = read_head(r)?;
            let seen = &mut stored.seen;
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
            if store.put(key, stored).is_some() {
                return Err(DecodeError::InvalidValue("stored room keys"));
            }
        }
        Ok(store)
    }

    /// Holds `stored` under `key`, returning the key it replaced; keeps the
    /// counts.
    fn put(&mut self, key: (String, GroupSessionId), mut stored: StoredKey) -> Option<StoredKey> {
        self.tick += 1;
        stored.last_used = self.tick;
        self.records += stored.seen.len();
        *self.per_sender.entry(stored.sender).or_default() += 1;
        let old = self.keys.insert(key, stored)?;
        self.records = self.records.saturating_sub(old.seen.len());
        decrement(&mut self.per_sender, &old.sender);
        Some(old)
    }

    /// Writes the stored key `id` without its replay records (one durable
    /// record), if held.
    pub(crate) fn write_key_record(&self, id: &(String, GroupSessionId), w: &mut Writer) -> bool {
        self.keys.get(id).map(|k| write_head(w, &id.0, k)).is_some()
    }

    /// Writes one replay record (the event id's hash), if held.
    pub(crate) fn write_replay_record(
        &self,
        id: &(String, GroupSessionId),
        index: u32,
        w: &mut Writer,
    ) -> bool {
        let hash = self.keys.get(id).and_then(|k| k.seen.get(&index));
        hash.map(|hash| w.bytes(hash)).is_some()
    }

    /// Reads a stored key without replay records (a durable record) and
    /// holds it, keeping the replay records held for it; returns its id.
    pub(crate) fn read_key_record(
        &mut self,
        r: &mut Reader<'_>,
    ) -> Result<(String, GroupSessionId), DecodeError> {
        let (key, mut stored) = read_head(r)?;
        if let Some(old) = self.keys.get_mut(&key) {
            stored.seen = std::mem::take(&mut old.seen);
            self.records = self.records.saturating_sub(stored.seen.len());
        }
        self.put(key.clone(), stored);
        Ok(key)
    }

    /// Sets (with `Some(reader)`) or removes one replay record of a held
    /// key.
    pub(crate) fn read_replay_record(
        &mut self,
        id: &(String, GroupSessionId),
        index: u32,
        r: Option<&mut Reader<'_>>,
    ) -> Result<(), DecodeError> {
        let stored = self
            .keys
            .get_mut(id)
            .ok_or(DecodeError::InvalidValue("replay record without key"))?;
        let before = stored.seen.len();
        match r {
            Some(r) => {
                stored.seen.insert(index, r.array("event id hash")?);
            }
            None => {
                stored.seen.remove(&index);
            }
        }
        self.records = (self.records + stored.seen.len()).saturating_sub(before);
        Ok(())
    }
}

/// Reads a stored key's fields before its replay records.
fn read_head(r: &mut Reader<'_>) -> Result<((String, GroupSessionId), StoredKey), DecodeError> {
    fn text(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
        let bytes = r.short_bytes(MAX_ID_LEN, field)?;
        match std::str::from_utf8(bytes) {
            Ok(text) if !text.is_empty() => Ok(text.to_owned()),
            _ => Err(DecodeError::InvalidValue(field)),
        }
    }
    fn optional(r: &mut Reader<'_>, field: &'static str) -> Result<Option<String>, DecodeError> {
        if r.bool(field)? {
            text(r, field).map(Some)
        } else {
            Ok(None)
        }
    }
    let room = text(r, "room id")?;
    check_room_id(&room).map_err(|_| DecodeError::InvalidValue("room id"))?;
    let sender = IdentityKeys::read(r)?;
    let sender_user_id = optional(r, "sender user id")?;
    let sender_device_id = optional(r, "sender device id")?;
    let session = InboundGroupSession::read_contents(r)?;
    if session.creator().is_some_and(|c| c != sender)
        || session.room_id().is_some_and(|id| id != room)
    {
        return Err(DecodeError::InvalidValue("stored room key sender"));
    }
    let floor = r.u32("replay floor")?;
    let key = (room, session.session_id());
    let stored = StoredKey {
        session,
        sender,
        sender_user_id,
        sender_device_id,
        seen: BTreeMap::new(),
        floor,
        last_used: 0,
    };
    Ok((key, stored))
}

/// Forgets a key's lowest replay record and refuses everything below the
/// lowest one kept, so a forgotten index can never be replayed.
fn forget_lowest_record(
    touched: &mut Touched,
    (room, session_id): &(String, GroupSessionId),
    stored: &mut StoredKey,
) {
    touched.mark(|| Touch::InboundKey(room.clone(), *session_id));
    if let Some((index, _)) = stored.seen.pop_first() {
        touched.mark(|| Touch::Replay(room.clone(), *session_id, index));
    }
    let next = stored.seen.first_key_value().map(|(&lowest, _)| lowest);
    if let Some(lowest) = next {
        stored.floor = lowest;
        stored.session.advance_to(lowest);
    }
}

fn decrement(counts: &mut BTreeMap<IdentityKeys, usize>, sender: &IdentityKeys) {
    if let Some(count) = counts.get_mut(sender) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(sender);
        }
    }
}

fn write_key(w: &mut Writer, room: &str, stored: &StoredKey) {
    write_head(w, room, stored);
    w.count32(stored.seen.len());
    for (index, hash) in &stored.seen {
        w.u32(*index).bytes(hash);
    }
}

fn write_head(w: &mut Writer, room: &str, stored: &StoredKey) {
    w.short_bytes(room.as_bytes())
        .bytes(&stored.sender.to_bytes());
    for id in [&stored.sender_user_id, &stored.sender_device_id] {
        match id {
            Some(id) => w.bool(true).short_bytes(id.as_bytes()),
            None => w.bool(false),
        };
    }
    stored.session.write_contents(w);
    w.u32(stored.floor);
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
                    .field("sender_user_id", &self.1.sender_user_id)
                    .field("sender_device_id", &self.1.sender_device_id)
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

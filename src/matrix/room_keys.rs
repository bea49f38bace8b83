//! The Megolm room keys a Matrix device can read with, keyed by room and
//! session id (never by the deprecated `sender_key` or `device_id` of an
//! event), each with who it is attributed to, how it came (an `m.room_key`
//! over Olm from its creator, a forward, or our own), and a replay record:
//! which event used each message index.
//!
//! Guarantees, as the native inbound key store's (PROTOCOL.md 12.3):
//! - an index already used by another event id is a replay error; the same
//!   event again is fine (clients re-render);
//! - a key that arrived directly from its creator is never replaced,
//!   extended or re-attributed by a forwarded one; a direct key displaces a
//!   forward attributed to another device (keeping the forward's earlier
//!   indices only where they lead to the direct ratchet);
//! - outside input is bounded: per sending device
//!   ([`crate::consts::MAX_ROOM_KEYS_PER_SENDER`], its least recently used
//!   key goes first), in all ([`crate::consts::MAX_ROOM_KEYS`], a key of a
//!   device the app does not know goes first, else the new key is refused),
//!   and in replay records ([`crate::consts::MAX_REPLAY_RECORDS`],
//!   [`crate::consts::MAX_TRACKED_INDICES`] per key); an index the record
//!   had to forget stays refused;
//! - every failure leaves the store unchanged.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use super::ids::{DeviceId, RoomId, UserId};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{MAX_ID_LEN, MAX_TRACKED_INDICES};
use crate::crypto::sha256;
use crate::group::{GroupDecrypted, GroupError, GroupSessionId, SessionOrdering};
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey};
use crate::megolm::{MegolmExportedKey, MegolmInboundSession, MegolmMessage};
use crate::room::{KeyAdded, Limits, Touched};

mod records;

pub(crate) use self::records::{MegolmTouch, REPLAY_CHUNK};

/// Why a room key was not stored. The store is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RoomKeyError {
    /// The key's algorithm is not `m.megolm.v1.aes-sha2`.
    #[error("room key of an unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The session key (or export) does not decode.
    #[error("room key does not decode")]
    Malformed,
    /// The session key's signature does not verify.
    #[error("room key signature does not verify")]
    BadSignature,
    /// The content's `session_id` is not the id of the key it carries.
    #[error("room key names another session")]
    SessionIdMismatch,
    /// A key for this session is held, attributed to another device (or it
    /// is not a copy of the same session), and this one may not replace it.
    #[error("conflicting room key")]
    Conflicting,
    /// The store is full of keys of devices the app knows.
    #[error("too many room keys")]
    TooManyRoomKeys,
    /// A forwarded key from a device that may not forward to us (only our
    /// own user's devices may).
    #[error("forwarded room key from another user's device")]
    ForwardNotAllowed,
    /// The key names our own device as its creator, but we hold no such
    /// session.
    #[error("room key claims to be ours")]
    ClaimsToBeOurs,
}

/// How a stored room key reached this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomKeySource {
    /// `m.room_key` over an Olm session with the device that created it:
    /// its sender is authenticated.
    Direct,
    /// `m.forwarded_room_key` (or an import): the creator named in it is
    /// only claimed, and events it decrypts are reported as not
    /// authenticated.
    Forwarded,
    /// Our own outbound session.
    Own,
}

impl RoomKeySource {
    fn code(self) -> u8 {
        match self {
            RoomKeySource::Direct => 1,
            RoomKeySource::Forwarded => 2,
            RoomKeySource::Own => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(RoomKeySource::Direct),
            2 => Some(RoomKeySource::Forwarded),
            3 => Some(RoomKeySource::Own),
            _ => None,
        }
    }

    /// Whether the sender of events this key decrypts is authenticated.
    pub fn is_authenticated(self) -> bool {
        !matches!(self, RoomKeySource::Forwarded)
    }
}

/// Who a room key is attributed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomKeySender {
    /// The Curve25519 key of the device that created the session (the Olm
    /// session's peer for a direct key; claimed for a forward).
    pub sender_key: Curve25519PublicKey,
    /// Its Ed25519 key, as the Olm payload or the forward named it.
    pub sender_ed25519: Option<Ed25519PublicKey>,
    /// The user the key came from (the Olm payload's checked `sender`; none
    /// for a forward).
    pub user_id: Option<UserId>,
    /// The device, when the tracker knew it at receipt.
    pub device_id: Option<DeviceId>,
    /// How it came.
    pub source: RoomKeySource,
    /// For a forward, the Curve25519 key of the device that forwarded it.
    pub forwarded_by: Option<Curve25519PublicKey>,
}

/// A stored room key as [`super::MatrixEndpoint::room_keys`] lists it (no
/// secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatrixRoomKeyInfo {
    /// The room.
    pub room_id: RoomId,
    /// The Megolm session.
    pub session_id: GroupSessionId,
    /// Who it is attributed to.
    pub sender: RoomKeySender,
    /// The first index it can decrypt.
    pub first_index: u32,
    /// The first index whose ratchet came signed by the session's key.
    pub authenticated_from: Option<u32>,
    /// Replay records kept.
    pub replay_records: usize,
}

/// The indices of one session already used, and by which event.
#[derive(Default)]
pub(crate) struct ReplayRecord {
    /// Message index to SHA-256 of the event id.
    seen: BTreeMap<u32, [u8; 32]>,
    /// Indices below it were forgotten and are refused.
    floor: u32,
}

impl ReplayRecord {
    /// The chunks (index / [`REPLAY_CHUNK`]) that hold records.
    fn chunks(&self) -> std::collections::BTreeSet<u32> {
        self.seen.keys().map(|i| i / REPLAY_CHUNK).collect()
    }

    /// Refuses an index below the floor or used by another event.
    fn check(&self, index: u32, event: &[u8; 32]) -> Result<(), ReplayRefusal> {
        if index < self.floor {
            return Err(ReplayRefusal::Forgotten);
        }
        match self.seen.get(&index) {
            Some(previous) if previous != event => Err(ReplayRefusal::Replay),
            _ => Ok(()),
        }
    }
}

/// Why an index was refused by a replay record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplayRefusal {
    /// Used by another event.
    Replay,
    /// Below the record's floor.
    Forgotten,
}

struct StoredKey {
    session: MegolmInboundSession,
    sender: RoomKeySender,
    replay: ReplayRecord,
    last_used: u64,
}

/// The outcome of a decryption, before its replay record is written.
pub(crate) struct StagedDecryption {
    pub(crate) decrypted: GroupDecrypted,
    pub(crate) sender: RoomKeySender,
    event_hash: [u8; 32],
}

/// Why a stored key could not decrypt an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreRefusal {
    /// No key for the room and session.
    Unknown,
    /// The Megolm layer refused the message.
    Group(GroupError),
    /// The replay record refused the index.
    Replay(ReplayRefusal, u32),
}

/// Every Megolm key this device holds.
#[derive(Default)]
pub(crate) struct MegolmKeyStore {
    keys: BTreeMap<(RoomId, GroupSessionId), StoredKey>,
    per_sender: BTreeMap<Curve25519PublicKey, usize>,
    records: usize,
    tick: u64,
    pub(crate) limits: Limits,
    /// The keys and replay chunks changed (for the durable store).
    pub(crate) touched: Touched<MegolmTouch>,
}

/// A held key's room and session.
pub(crate) type KeyId = (RoomId, GroupSessionId);

impl MegolmKeyStore {
    fn touch(&mut self) -> u64 {
        self.tick = self.tick.saturating_add(1);
        self.tick
    }

    /// Whether a key for the session is held.
    pub(crate) fn contains(&self, room: &RoomId, session: &GroupSessionId) -> bool {
        self.keys.contains_key(&(room.clone(), *session))
    }

    /// How many keys are held.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Replay records held in all.
    pub(crate) fn replay_records(&self) -> usize {
        self.records
    }

    /// Adds (or merges) a key. `own` is our Curve25519 key (our own keys
    /// never count against, or are evicted by, the bounds); `is_named` says
    /// whether the app knows a sending device (its keys go last when the
    /// store is full). Returns what was added and the keys evicted.
    pub(crate) fn add(
        &mut self,
        room: &RoomId,
        session: MegolmInboundSession,
        sender: RoomKeySender,
        own: &Curve25519PublicKey,
        is_named: impl Fn(&Curve25519PublicKey) -> bool,
    ) -> Result<(KeyAdded, Vec<KeyId>), RoomKeyError> {
        let id = (room.clone(), session.session_id());
        let evicted = match self.keys.get(&id) {
            Some(stored) => {
                let merged = Self::merge(stored, session, &sender)?;
                let tick = self.touch();
                let Some(stored) = self.keys.get_mut(&id) else {
                    return Err(RoomKeyError::Conflicting);
                };
                stored.last_used = tick;
                let Some((session, sender)) = merged else {
                    return Ok((KeyAdded::Unchanged, Vec::new()));
                };
                self.touched.mark(|| MegolmTouch::Key(id.clone()));
                if stored.sender.sender_key != sender.sender_key {
                    decrement(&mut self.per_sender, &stored.sender.sender_key);
                    *self.per_sender.entry(sender.sender_key).or_default() += 1;
                }
                stored.session = session;
                stored.sender = sender;
                return Ok((KeyAdded::Improved, Vec::new()));
            }
            None if sender.source == RoomKeySource::Own => Vec::new(),
            None => self.make_room(&sender.sender_key, own, is_named)?,
        };
        let tick = self.touch();
        *self.per_sender.entry(sender.sender_key).or_default() += 1;
        self.touched.mark(|| MegolmTouch::Key(id.clone()));
        self.keys.insert(
            id,
            StoredKey {
                session,
                sender,
                replay: ReplayRecord::default(),
                last_used: tick,
            },
        );
        Ok((KeyAdded::New, evicted))
    }

    /// What a new copy of a stored key makes of it: `None` when the stored
    /// copy is as good; refuses what may not replace it. A direct key
    /// displaces a forward attributed to anyone (keeping the forward's
    /// earlier indices only where they lead to it); otherwise the senders
    /// must agree and the copies merge, the stored attribution staying.
    fn merge(
        stored: &StoredKey,
        new: MegolmInboundSession,
        sender: &RoomKeySender,
    ) -> Result<Option<(MegolmInboundSession, RoomKeySender)>, RoomKeyError> {
        if sender.source.is_authenticated() && !stored.sender.source.is_authenticated() {
            let session = stored.session.merge(&new).unwrap_or(new);
            return Ok(Some((session, sender.clone())));
        }
        if stored.sender.sender_key != sender.sender_key {
            return Err(RoomKeyError::Conflicting);
        }
        match stored.session.compare(&new) {
            SessionOrdering::Unconnected => Err(RoomKeyError::Conflicting),
            SessionOrdering::Equal | SessionOrdering::Better => Ok(None),
            SessionOrdering::Worse | SessionOrdering::Incomparable => {
                let session = stored
                    .session
                    .merge(&new)
                    .ok_or(RoomKeyError::Conflicting)?;
                let mut attribution = stored.sender.clone();
                if sender.source.is_authenticated() {
                    attribution.user_id = attribution.user_id.or_else(|| sender.user_id.clone());
                    attribution.device_id =
                        attribution.device_id.or_else(|| sender.device_id.clone());
                }
                Ok(Some((session, attribution)))
            }
        }
    }

    /// Frees a slot for a new key of `sender`: its own least recently used
    /// key past its quota, then, when the store is full, the least recently
    /// used key of a device the app does not know.
    fn make_room(
        &mut self,
        sender: &Curve25519PublicKey,
        own: &Curve25519PublicKey,
        is_named: impl Fn(&Curve25519PublicKey) -> bool,
    ) -> Result<Vec<KeyId>, RoomKeyError> {
        let ours = self.per_sender.get(own).copied().unwrap_or(0);
        let full = self.keys.len().saturating_sub(ours) >= self.limits.room_keys;
        let at_quota =
            self.per_sender.get(sender).copied().unwrap_or(0) >= self.limits.room_keys_per_sender;
        let victim = match at_quota
            .then(|| self.least_recently_used(|k| k.sender.sender_key == *sender))
            .flatten()
        {
            Some(victim) => Some(victim),
            None if full => Some(
                self.least_recently_used(|k| {
                    k.sender.source != RoomKeySource::Own && !is_named(&k.sender.sender_key)
                })
                .ok_or(RoomKeyError::TooManyRoomKeys)?,
            ),
            None => None,
        };
        Ok(victim
            .filter(|victim| self.remove(victim))
            .into_iter()
            .collect())
    }

    fn least_recently_used(&self, eligible: impl Fn(&StoredKey) -> bool) -> Option<KeyId> {
        self.keys
            .iter()
            .filter(|(_, k)| eligible(k))
            .min_by_key(|(_, k)| k.last_used)
            .map(|(id, _)| id.clone())
    }

    fn remove(&mut self, id: &KeyId) -> bool {
        match self.keys.remove(id) {
            Some(stored) => {
                self.touched.mark(|| MegolmTouch::Key(id.clone()));
                for chunk in stored.replay.chunks() {
                    self.touched.mark(|| MegolmTouch::Replay(id.clone(), chunk));
                }
                decrement(&mut self.per_sender, &stored.sender.sender_key);
                self.records = self.records.saturating_sub(stored.replay.seen.len());
                true
            }
            None => false,
        }
    }

    /// Forgets one key; returns whether it was held.
    pub(crate) fn forget(&mut self, room: &RoomId, session: &GroupSessionId) -> bool {
        self.remove(&(room.clone(), *session))
    }

    /// Decrypts a message of `room`'s session `session` for the event
    /// `event_id`, and checks the index against the replay record, without
    /// recording it ([`MegolmKeyStore::commit_decryption`] does).
    pub(crate) fn stage_decryption(
        &mut self,
        room: &RoomId,
        session: &GroupSessionId,
        event_id: &str,
        message: &MegolmMessage,
    ) -> Result<StagedDecryption, StoreRefusal> {
        let stored = self
            .keys
            .get_mut(&(room.clone(), *session))
            .ok_or(StoreRefusal::Unknown)?;
        let event_hash = sha256(&[event_id.as_bytes()]);
        let claimed = message.message_index();
        stored
            .replay
            .check(claimed, &event_hash)
            .map_err(|r| StoreRefusal::Replay(r, claimed))?;
        let decrypted = stored
            .session
            .decrypt(message)
            .map_err(StoreRefusal::Group)?;
        Ok(StagedDecryption {
            decrypted,
            sender: stored.sender.clone(),
            event_hash,
        })
    }

    /// Records a staged decryption's index with its event (the replay
    /// record), keeping the records within their bounds.
    pub(crate) fn commit_decryption(
        &mut self,
        room: &RoomId,
        session: &GroupSessionId,
        staged: &StagedDecryption,
    ) {
        let tick = self.touch();
        let id = (room.clone(), *session);
        let Some(stored) = self.keys.get_mut(&id) else {
            return;
        };
        stored.last_used = tick;
        let index = staged.decrypted.message_index;
        if stored
            .replay
            .seen
            .insert(index, staged.event_hash)
            .is_none()
        {
            self.records += 1;
            self.touched
                .mark(|| MegolmTouch::Replay(id.clone(), index / REPLAY_CHUNK));
        }
        if stored.replay.seen.len() > MAX_TRACKED_INDICES {
            forget_lowest(&mut self.touched, &id, stored);
            self.records = self.records.saturating_sub(1);
        }
        while self.records > self.limits.replay_records {
            let Some((id, largest)) = self
                .keys
                .iter_mut()
                .max_by_key(|(_, k)| k.replay.seen.len())
            else {
                return;
            };
            if largest.replay.seen.is_empty() {
                return;
            }
            forget_lowest(&mut self.touched, id, largest);
            self.records = self.records.saturating_sub(1);
        }
    }

    /// Exports a held key at its first known index with its attribution,
    /// to forward it.
    pub(crate) fn export(
        &self,
        room: &RoomId,
        session: &GroupSessionId,
    ) -> Option<(MegolmExportedKey, &RoomKeySender)> {
        let stored = self.keys.get(&(room.clone(), *session))?;
        Some((stored.session.export_at_first_known_index(), &stored.sender))
    }

    /// Every key, without secrets.
    pub(crate) fn list(&self) -> Vec<MatrixRoomKeyInfo> {
        self.keys
            .iter()
            .map(|((room, session_id), k)| MatrixRoomKeyInfo {
                room_id: room.clone(),
                session_id: *session_id,
                sender: k.sender.clone(),
                first_index: k.session.first_known_index(),
                authenticated_from: k.session.authenticated_from(),
                replay_records: k.replay.seen.len(),
            })
            .collect()
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.count32(self.keys.len());
        for ((room, _), k) in &self.keys {
            w.short_bytes(room.as_str().as_bytes());
            write_sender(w, &k.sender);
            k.session.write_contents(w);
            w.u32(k.replay.floor).count32(k.replay.seen.len());
            for (index, hash) in &k.replay.seen {
                w.u32(*index).bytes(hash);
            }
        }
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut store = Self::default();
        for _ in 0..r.u32("room keys")? {
            let room = RoomId::parse(read_text(r, "room id")?)
                .map_err(|_| DecodeError::InvalidValue("room id"))?;
            let sender = read_sender(r)?;
            let session = MegolmInboundSession::read_contents(r)?;
            let mut replay = ReplayRecord {
                floor: r.u32("replay floor")?,
                ..ReplayRecord::default()
            };
            let count = r.u32("replay entries")?;
            if usize::try_from(count).map_or(true, |c| c > MAX_TRACKED_INDICES) {
                return Err(DecodeError::InvalidValue("replay entries"));
            }
            for _ in 0..count {
                let index = r.u32("message index")?;
                if replay
                    .seen
                    .insert(index, r.array("event id hash")?)
                    .is_some()
                {
                    return Err(DecodeError::InvalidValue("replay entries"));
                }
            }
            store.records += replay.seen.len();
            *store.per_sender.entry(sender.sender_key).or_default() += 1;
            let tick = store.touch();
            let id = (room, session.session_id());
            let key = StoredKey {
                session,
                sender,
                replay,
                last_used: tick,
            };
            if store.keys.insert(id, key).is_some() {
                return Err(DecodeError::InvalidValue("room keys"));
            }
        }
        Ok(store)
    }
}

/// Forgets a key's lowest replay record and refuses everything below the
/// lowest one kept (PROTOCOL.md 12.3, step 9).
fn forget_lowest(touched: &mut Touched<MegolmTouch>, id: &KeyId, stored: &mut StoredKey) {
    touched.mark(|| MegolmTouch::Key(id.clone()));
    if let Some((index, _)) = stored.replay.seen.pop_first() {
        touched.mark(|| MegolmTouch::Replay(id.clone(), index / REPLAY_CHUNK));
    }
    if let Some((&lowest, _)) = stored.replay.seen.first_key_value() {
        stored.replay.floor = lowest;
        stored.session.advance_to(lowest);
    }
}

fn decrement(counts: &mut BTreeMap<Curve25519PublicKey, usize>, key: &Curve25519PublicKey) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

/// Reads a 1 to 255 byte UTF-8 text.
pub(crate) fn read_text(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
    let bytes = r.short_bytes(MAX_ID_LEN, field)?;
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.is_empty() => Ok(text.to_owned()),
        _ => Err(DecodeError::InvalidValue(field)),
    }
}

fn write_sender(w: &mut Writer, sender: &RoomKeySender) {
    w.bytes(sender.sender_key.as_bytes())
        .u8(sender.source.code());
    match &sender.sender_ed25519 {
        Some(key) => w.bool(true).bytes(key.as_bytes()),
        None => w.bool(false),
    };
    for id in [
        sender.user_id.as_ref().map(UserId::as_str),
        sender.device_id.as_ref().map(DeviceId::as_str),
    ] {
        match id {
            Some(id) => w.bool(true).short_bytes(id.as_bytes()),
            None => w.bool(false),
        };
    }
    match &sender.forwarded_by {
        Some(key) => w.bool(true).bytes(key.as_bytes()),
        None => w.bool(false),
    };
}

fn read_sender(r: &mut Reader<'_>) -> Result<RoomKeySender, DecodeError> {
    let sender_key = Curve25519PublicKey::from_bytes(r.array("sender key")?);
    let source = RoomKeySource::from_code(r.u8("room key source")?)
        .ok_or(DecodeError::InvalidValue("room key source"))?;
    let sender_ed25519 = if r.bool("sender ed25519 flag")? {
        Some(
            Ed25519PublicKey::from_bytes(&r.array("sender ed25519")?)
                .map_err(|_| DecodeError::InvalidValue("sender ed25519"))?,
        )
    } else {
        None
    };
    let user_id = if r.bool("sender user flag")? {
        Some(
            UserId::parse(read_text(r, "sender user id")?)
                .map_err(|_| DecodeError::InvalidValue("sender user id"))?,
        )
    } else {
        None
    };
    let device_id = if r.bool("sender device flag")? {
        Some(
            DeviceId::parse(read_text(r, "sender device id")?)
                .map_err(|_| DecodeError::InvalidValue("sender device id"))?,
        )
    } else {
        None
    };
    let forwarded_by = if r.bool("forwarder flag")? {
        Some(Curve25519PublicKey::from_bytes(r.array("forwarder key")?))
    } else {
        None
    };
    Ok(RoomKeySender {
        sender_key,
        sender_ed25519,
        user_id,
        device_id,
        source,
        forwarded_by,
    })
}

impl fmt::Debug for MegolmKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MegolmKeyStore")
            .field("keys", &self.keys.len())
            .field("replay_records", &self.records)
            .finish_non_exhaustive()
    }
}

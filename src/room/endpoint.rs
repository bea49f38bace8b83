//! [`Endpoint`]: one device's orchestrator. It owns the account, the
//! pairwise sessions per peer device, the outbound group session per room
//! and the inbound key store, and turns app intents (publish keys, start
//! sessions, share a room key, receive, encrypt and decrypt events, persist)
//! into the bytes the app must move.
//!
//! Guarantees: sans-I/O; every operation that takes outside bytes is
//! transactional (a message whose pairwise layer decrypts but whose payload
//! is rejected changes nothing: the session copy is discarded and the
//! one-time key kept); a room's key rotates before it is shared whenever a
//! device left the set it was shared with, or the rotation policy says so;
//! the peers and room keys that outside input can add are bounded
//! ([`MAX_PEERS`], [`MAX_ROOM_KEYS`]): past them new ones are refused, never
//! evicting what is held.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::RoomError;
use super::event::{DecryptedEvent, EncryptedEvent, EventPlaintext, ROOM_ALGORITHM};
use super::policy::{Clock, RotationPolicy, SystemClock};
use super::share::RoomKeyShare;
use super::store::{InboundKeyStore, KeyAdded};
use crate::account::{Account, DeviceKeys, SignedOneTimeKey, VerifiedDevice};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{MAX_ID_LEN, MAX_PEERS, MAX_ROOM_KEYS, MAX_SESSIONS_PER_PEER};
use crate::crypto::os_rng;
use crate::group::{
    ExportedSessionKey, GroupSessionId, InboundGroupSession, OutboundGroupSession, SessionKey,
    check_room_id,
};
use crate::keys::{Curve25519PublicKey, IdentityKeys};
use crate::pickle::{Generation, PickleKind, Pickled, pickle_methods};
use crate::plaintext::Plaintext;
use crate::session::{DeviceMessage, Session, SessionError};

/// What to upload to the server: the signed device bundle and the signed
/// one-time and fallback keys not yet published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysToPublish {
    /// The device's signed key bundle.
    pub device_keys: DeviceKeys,
    /// Signed one-time keys not yet published.
    pub one_time_keys: Vec<SignedOneTimeKey>,
    /// The signed fallback key, if it has not been published yet.
    pub fallback_key: Option<SignedOneTimeKey>,
}

/// A pairwise message for the app to deliver to one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDeviceMessage {
    /// The recipient's user id.
    pub user_id: String,
    /// The recipient's device id.
    pub device_id: String,
    /// The recipient's X25519 identity key.
    pub recipient_key: Curve25519PublicKey,
    /// The encrypted message (base64 in JSON).
    pub message: DeviceMessage,
}

/// The result of [`Endpoint::share_room_key`].
#[derive(Clone, Debug)]
pub struct RoomKeyShareOutcome {
    /// The room.
    pub room_id: String,
    /// The room's current group session.
    pub session_id: GroupSessionId,
    /// Whether a new session replaced an earlier one (rotation).
    pub rotated: bool,
    /// One message per device that lacked the key and has a session.
    pub messages: Vec<ToDeviceMessage>,
    /// Devices that lack the key but have no pairwise session yet: claim a
    /// one-time key for each, call [`Endpoint::establish_session`], and
    /// share again.
    pub missing_sessions: Vec<VerifiedDevice>,
}

/// A room key received over a pairwise session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedRoomKey {
    /// The room.
    pub room_id: String,
    /// The group session.
    pub session_id: GroupSessionId,
    /// The sending device (authenticated by the pairwise session).
    pub sender: IdentityKeys,
    /// The first message index the key can decrypt.
    pub first_index: u32,
    /// Whether the store learned something.
    pub added: KeyAdded,
}

struct OutboundRoom {
    session: OutboundGroupSession,
    created_ms: u64,
    shared_with: BTreeSet<Curve25519PublicKey>,
}

/// The bounds on state that outside input can add to.
#[derive(Clone, Copy)]
struct Limits {
    peers: usize,
    room_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            peers: MAX_PEERS,
            room_keys: MAX_ROOM_KEYS,
        }
    }
}

/// Where a staged pairwise decryption came from.
enum Staged {
    Existing {
        index: usize,
        session: Session,
    },
    New {
        session: Session,
        consumed: Option<Curve25519PublicKey>,
    },
}

/// One device's end-to-end encryption state and operations.
pub struct Endpoint {
    /// The signed bundle of ids and identity keys (Ed25519 signatures are
    /// deterministic, so it is computed once).
    bundle: DeviceKeys,
    account: Account,
    peers: BTreeMap<Curve25519PublicKey, Vec<Session>>,
    outbound: BTreeMap<String, OutboundRoom>,
    /// Rooms whose outbound session was discarded by `rotate_room_key`, so
    /// the next share reports the rotation.
    discarded: BTreeSet<String>,
    inbound: InboundKeyStore,
    policy: RotationPolicy,
    clock: Arc<dyn Clock>,
    share_threads: usize,
    /// [`MAX_PEERS`] and [`MAX_ROOM_KEYS`]; lowered only by tests.
    limits: Limits,
    /// Every draw (one-time keys, sessions, ratchet keys, room keys); the
    /// operating system's generator unless a test injects another.
    rng: Box<dyn rand::CryptoRng + Send>,
    generation: Generation,
}

fn check_id(id: &str, what: &'static str) -> Result<(), RoomError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        Err(RoomError::InvalidId(what))
    } else {
        Ok(())
    }
}

fn default_threads() -> usize {
    if cfg!(feature = "parallel") {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        1
    }
}

impl Endpoint {
    /// A new device with a fresh account.
    pub fn new(user_id: &str, device_id: &str) -> Result<Self, RoomError> {
        Self::from_account(user_id, device_id, Account::new())
    }

    /// A device around an existing account.
    pub fn from_account(
        user_id: &str,
        device_id: &str,
        account: Account,
    ) -> Result<Self, RoomError> {
        check_id(user_id, "user id")?;
        check_id(device_id, "device id")?;
        Ok(Self {
            bundle: account.device_keys(user_id, device_id)?,
            account,
            peers: BTreeMap::new(),
            outbound: BTreeMap::new(),
            discarded: BTreeSet::new(),
            inbound: InboundKeyStore::new(),
            policy: RotationPolicy::default(),
            clock: Arc::new(SystemClock),
            share_threads: default_threads(),
            limits: Limits::default(),
            rng: Box::new(os_rng()),
            generation: Generation::default(),
        })
    }

    /// The user id.
    pub fn user_id(&self) -> &str {
        &self.bundle.user_id
    }

    /// The device id.
    pub fn device_id(&self) -> &str {
        &self.bundle.device_id
    }

    /// The device's identity keys.
    pub fn identity_keys(&self) -> IdentityKeys {
        self.account.identity_keys()
    }

    /// Sets the rotation policy (not part of the pickle: configuration).
    pub fn set_rotation_policy(&mut self, policy: RotationPolicy) {
        self.policy = policy;
    }

    /// The rotation policy.
    pub fn rotation_policy(&self) -> RotationPolicy {
        self.policy
    }

    /// Replaces the clock (tests use a manual clock).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// Replaces the random generator used for every key the endpoint makes
    /// from now on (for deterministic tests: build the endpoint with
    /// [`Endpoint::from_account`] around an account made with
    /// [`Account::new_with_rng`], then inject a seeded generator here).
    /// Pickle nonces still come from [`Endpoint::pickle_with_rng`].
    pub fn set_rng(&mut self, rng: Box<dyn rand::CryptoRng + Send>) {
        self.rng = rng;
    }

    /// Threads used to encrypt a room-key share to many devices (at least
    /// 1). Defaults to the available cores with the `parallel` feature, 1
    /// without it.
    pub fn set_share_threads(&mut self, threads: usize) {
        self.share_threads = threads.max(1);
    }

    /// The signed device-key bundle.
    pub fn device_keys(&self) -> DeviceKeys {
        self.bundle.clone()
    }

    /// Tops the unpublished one-time keys up to `one_time_keys` (at most
    /// [`Account::max_one_time_keys`]), creates a fallback key if there is
    /// none, and returns everything not yet published. Call
    /// [`Endpoint::mark_keys_as_published`] once the server has them.
    pub fn keys_to_publish(&mut self, one_time_keys: usize) -> KeysToPublish {
        let unpublished = self.account.one_time_keys().len();
        let wanted = one_time_keys.min(Account::max_one_time_keys());
        if wanted > unpublished {
            self.account
                .generate_one_time_keys_with_rng(wanted - unpublished, &mut *self.rng);
        }
        if self.account.fallback_key().is_none() {
            self.account.generate_fallback_key_with_rng(&mut *self.rng);
        }
        KeysToPublish {
            device_keys: self.device_keys(),
            one_time_keys: self.account.one_time_keys(),
            fallback_key: self.account.unpublished_fallback_key(),
        }
    }

    /// Marks every key returned by [`Endpoint::keys_to_publish`] as published.
    pub fn mark_keys_as_published(&mut self) {
        self.account.mark_keys_as_published();
    }

    /// Starts a pairwise session with a device from its key bundle and a
    /// one-time (or fallback) key claimed from the server. Both signatures
    /// are verified. Returns the verified device.
    pub fn establish_session(
        &mut self,
        device: &DeviceKeys,
        one_time_key: &SignedOneTimeKey,
    ) -> Result<VerifiedDevice, RoomError> {
        let verified = device.verify()?;
        if verified.identity_keys().curve25519 == self.identity_keys().curve25519 {
            return Err(RoomError::OwnDevice);
        }
        let session = self.account.create_outbound_session_with_rng(
            &verified,
            one_time_key,
            &mut *self.rng,
        )?;
        self.keep_session(session);
        Ok(verified)
    }

    /// How many peer devices this endpoint holds pairwise sessions with.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Drops every pairwise session with the device whose X25519 identity key
    /// is `device_key`; returns how many were dropped. Its messages can no
    /// longer be read until it (or we) start a new session, and room keys
    /// are no longer shared with it. Frees room when
    /// [`RoomError::TooManyPeers`] refuses new peers.
    pub fn forget_peer(&mut self, device_key: &Curve25519PublicKey) -> usize {
        let dropped = self.peers.remove(device_key).map_or(0, |s| s.len());
        if dropped > 0 {
            // A room key shared with it must not be reported as held by a
            // device we can no longer reach: share it again after a new
            // session.
            for room in self.outbound.values_mut() {
                room.shared_with.remove(device_key);
            }
        }
        dropped
    }

    /// Test hook: sets the bounds on peers and stored room keys; returns the
    /// previous ones.
    #[cfg(test)]
    pub(crate) fn set_limits(&mut self, peers: usize, room_keys: usize) -> (usize, usize) {
        let old = std::mem::replace(&mut self.limits, Limits { peers, room_keys });
        (old.peers, old.room_keys)
    }

    /// Whether a pairwise session with the device exists.
    pub fn has_session(&self, device_key: &Curve25519PublicKey) -> bool {
        self.peers.get(device_key).is_some_and(|s| !s.is_empty())
    }

    fn keep_session(&mut self, session: Session) {
        let sessions = self
            .peers
            .entry(session.peer_identity().curve25519)
            .or_default();
        sessions.push(session);
        if sessions.len() > MAX_SESSIONS_PER_PEER {
            sessions.remove(0);
        }
    }

    /// Makes sure `devices` (the room's devices, ours excluded automatically)
    /// hold the room's current key: rotates first if a device left the set
    /// the key was shared with or the policy says so, then encrypts the key
    /// for every device that lacks it and has a pairwise session.
    pub fn share_room_key(
        &mut self,
        room_id: &str,
        devices: &[VerifiedDevice],
    ) -> Result<RoomKeyShareOutcome, RoomError> {
        check_room_id(room_id)?;
        let us = self.identity_keys();
        let mut targets: BTreeMap<Curve25519PublicKey, &VerifiedDevice> = BTreeMap::new();
        for device in devices {
            let key = device.identity_keys().curve25519;
            if key != us.curve25519 {
                targets.insert(key, device);
            }
        }
        let now = self.clock.now_ms();
        let existing = self.outbound.get(room_id);
        let rotate = existing.is_none_or(|room| {
            self.policy
                .is_expired(room.session.message_index(), room.created_ms, now)
                || room.shared_with.iter().any(|k| !targets.contains_key(k))
        });
        let rotated = rotate && (existing.is_some() || self.discarded.contains(room_id));
        let fresh_key = if rotate {
            let key = self.start_room_session(room_id, now)?;
            self.discarded.remove(room_id);
            Some(key)
        } else {
            None
        };
        let Some(room) = self.outbound.get_mut(room_id) else {
            return Err(RoomError::ShareRequired);
        };
        let share = RoomKeyShare {
            room_id: room_id.to_owned(),
            session_key: fresh_key.unwrap_or_else(|| room.session.session_key()),
            sender: us,
            recipient: us,
        };
        // Encode once; each recipient's copy differs only in its keys.
        let (template, recipient_at) = share.encode_with_recipient_slot();
        let mut missing = Vec::new();
        let mut jobs: Vec<(&VerifiedDevice, &mut Session, Zeroizing<Vec<u8>>)> = Vec::new();
        let lacking: BTreeMap<_, _> = targets
            .into_iter()
            .filter(|(key, _)| !room.shared_with.contains(key))
            .collect();
        for (key, device) in &lacking {
            if self.peers.get(key).is_none_or(Vec::is_empty) {
                missing.push((*device).clone());
            }
        }
        for (key, sessions) in self.peers.iter_mut() {
            if let (Some(device), Some(session)) = (lacking.get(key), sessions.last_mut()) {
                let mut plaintext = Zeroizing::new(template.to_vec());
                if let Some(slot) = plaintext.get_mut(recipient_at..recipient_at + 64) {
                    slot.copy_from_slice(&device.identity_keys().to_bytes());
                }
                jobs.push((device, session, plaintext));
            }
        }
        let results = encrypt_all(&mut jobs, self.share_threads);
        let mut messages = Vec::with_capacity(jobs.len());
        for ((device, _, _), result) in jobs.iter().zip(results) {
            match result {
                Ok(message) => {
                    let recipient_key = device.identity_keys().curve25519;
                    room.shared_with.insert(recipient_key);
                    messages.push(ToDeviceMessage {
                        user_id: device.user_id().to_owned(),
                        device_id: device.device_id().to_owned(),
                        recipient_key,
                        message,
                    });
                }
                Err(_) => missing.push((*device).clone()),
            }
        }
        Ok(RoomKeyShareOutcome {
            room_id: room_id.to_owned(),
            session_id: room.session.session_id(),
            rotated,
            messages,
            missing_sessions: missing,
        })
    }

    /// Replaces the room's outbound session and keeps our own inbound copy.
    /// Returns the new session's signed key, to share.
    fn start_room_session(&mut self, room_id: &str, now: u64) -> Result<SessionKey, RoomError> {
        let session =
            OutboundGroupSession::new_with_rng(room_id, self.identity_keys(), &mut *self.rng)?;
        let key = session.session_key();
        // Our own copy of a key we just made needs no signature check.
        let own_copy = InboundGroupSession::from_own_key(&key);
        self.inbound.add(room_id, self.identity_keys(), own_copy)?;
        self.outbound.insert(
            room_id.to_owned(),
            OutboundRoom {
                session,
                created_ms: now,
                shared_with: BTreeSet::new(),
            },
        );
        Ok(key)
    }

    /// Discards the room's outbound session; the next share starts a new
    /// one. Returns whether there was one.
    pub fn rotate_room_key(&mut self, room_id: &str) -> bool {
        let had = self.outbound.remove(room_id).is_some();
        if had {
            self.discarded.insert(room_id.to_owned());
        }
        had
    }

    /// Takes a pairwise message the server delivered from the device whose
    /// X25519 identity key is `sender_key` (as the transport claims; it is
    /// checked). Creates the inbound session from a pre-key message if
    /// needed, and stores the room key the message carries.
    ///
    /// Transactional: if anything fails (decryption, the share's checks,
    /// the key's signature, a conflicting stored key), nothing changes.
    /// State that outside input adds is bounded: a pre-key message from a
    /// new device is refused with [`RoomError::TooManyPeers`] once
    /// [`MAX_PEERS`] peers are held, and a share of a new session with
    /// [`RoomError::TooManyRoomKeys`] once [`MAX_ROOM_KEYS`] keys are stored.
    pub fn receive_device_message(
        &mut self,
        sender_key: &Curve25519PublicKey,
        message: &DeviceMessage,
    ) -> Result<ReceivedRoomKey, RoomError> {
        if matches!(message, DeviceMessage::PreKey(_))
            && !self.peers.contains_key(sender_key)
            && self.peers.len() >= self.limits.peers
        {
            return Err(RoomError::TooManyPeers);
        }
        let (staged, plaintext) = stage_receive(
            &self.account,
            &self.peers,
            &mut *self.rng,
            sender_key,
            message,
        )?;
        let session = match &staged {
            Staged::Existing { session, .. } | Staged::New { session, .. } => session,
        };
        let share = RoomKeyShare::from_bytes(&plaintext)?;
        share.check(session, &self.identity_keys())?;
        let inbound = InboundGroupSession::new(&share.session_key)?;
        let first_index = inbound.first_known_index();
        let session_id = inbound.session_id();
        if !self.inbound.contains(&share.room_id, &session_id)
            && self.inbound.len() >= self.limits.room_keys
        {
            return Err(RoomError::TooManyRoomKeys);
        }
        let added = self.inbound.add(&share.room_id, share.sender, inbound)?;
        // Everything checked: commit the pairwise state.
        match staged {
            Staged::Existing { index, session } => {
                if let Some(slot) = self
                    .peers
                    .get_mut(sender_key)
                    .and_then(|s| s.get_mut(index))
                {
                    *slot = session;
                }
            }
            Staged::New { session, consumed } => {
                self.account.consume_one_time_key(consumed);
                self.keep_session(session);
            }
        }
        Ok(ReceivedRoomKey {
            room_id: share.room_id,
            session_id,
            sender: share.sender,
            first_index,
            added,
        })
    }

    /// Encrypts a room event with the room's current group session.
    ///
    /// Fails with [`RoomError::ShareRequired`] when there is no current
    /// session (never shared, expired by the policy): share first.
    pub fn encrypt_event(
        &mut self,
        room_id: &str,
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<EncryptedEvent, RoomError> {
        check_room_id(room_id)?;
        check_id(event_type, "event type")?;
        let now = self.clock.now_ms();
        let room = self
            .outbound
            .get_mut(room_id)
            .ok_or(RoomError::ShareRequired)?;
        if self
            .policy
            .is_expired(room.session.message_index(), room.created_ms, now)
        {
            return Err(RoomError::ShareRequired);
        }
        let plaintext = Zeroizing::new(
            serde_json::to_vec(&EventPlaintext {
                event_type: event_type.to_owned(),
                content: content.clone(),
            })
            .map_err(|_| RoomError::InvalidEvent)?,
        );
        let ciphertext = room.session.encrypt(&plaintext)?;
        Ok(EncryptedEvent {
            algorithm: ROOM_ALGORITHM.to_owned(),
            sender_key: self.account.identity_keys().curve25519,
            session_id: room.session.session_id(),
            ciphertext,
        })
    }

    /// Decrypts an event of `room_id` with server-assigned id `event_id`.
    pub fn decrypt_event(
        &mut self,
        room_id: &str,
        event_id: &str,
        envelope: &EncryptedEvent,
    ) -> Result<DecryptedEvent, RoomError> {
        self.inbound.decrypt(room_id, event_id, envelope)
    }

    /// Imports a room key from a backup or a forward. Events it decrypts are
    /// reported as not authenticated.
    pub fn import_room_key(
        &mut self,
        room_id: &str,
        sender: IdentityKeys,
        key: &ExportedSessionKey,
    ) -> Result<KeyAdded, RoomError> {
        self.inbound
            .add(room_id, sender, InboundGroupSession::import(key))
    }

    /// Exports a stored room key at `index`, with the device that shared it.
    pub fn export_room_key(
        &self,
        room_id: &str,
        session_id: &GroupSessionId,
        index: u32,
    ) -> Option<(IdentityKeys, ExportedSessionKey)> {
        self.inbound.export(room_id, session_id, index)
    }

    /// Test hook: encrypts arbitrary bytes over the newest session with a
    /// peer, to forge payloads.
    #[cfg(test)]
    pub(crate) fn encrypt_raw(
        &mut self,
        peer: &Curve25519PublicKey,
        plaintext: &[u8],
    ) -> DeviceMessage {
        self.peers
            .get_mut(peer)
            .and_then(|s| s.last_mut())
            .map(|s| s.encrypt(plaintext))
            .unwrap()
            .unwrap()
    }

    /// Test hook: the current outbound session key of a room.
    #[cfg(test)]
    pub(crate) fn outbound_key(&self, room_id: &str) -> crate::group::SessionKey {
        self.outbound[room_id].session.session_key()
    }

    /// Forgets every inbound room key of `room_id` (for example when the
    /// user leaves the room, or to enforce a history-retention policy);
    /// returns how many were dropped. Events of that room can no longer be
    /// decrypted.
    pub fn forget_room_keys(&mut self, room_id: &str) -> usize {
        self.inbound.forget_room(room_id)
    }

    /// The inbound key store.
    pub fn inbound_keys(&self) -> &InboundKeyStore {
        &self.inbound
    }

    fn write_contents(&self, w: &mut Writer) {
        w.short_bytes(self.bundle.user_id.as_bytes())
            .short_bytes(self.bundle.device_id.as_bytes());
        self.account.write_contents(w);
        w.count32(self.peers.len());
        for (key, sessions) in &self.peers {
            w.bytes(key.as_bytes()).count(sessions.len());
            for session in sessions {
                session.write_contents(w);
            }
        }
        w.count32(self.outbound.len());
        for room in self.outbound.values() {
            room.session.write_contents(w);
            w.u64(room.created_ms).count32(room.shared_with.len());
            for key in &room.shared_with {
                w.bytes(key.as_bytes());
            }
        }
        self.inbound.write_contents(w);
        w.count32(self.discarded.len());
        for room in &self.discarded {
            w.short_bytes(room.as_bytes());
        }
    }

    fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        fn text(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
            let bytes = r.short_bytes(MAX_ID_LEN, field)?;
            let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidValue(field))?;
            check_id(text, field).map_err(|_| DecodeError::InvalidValue(field))?;
            Ok(text.to_owned())
        }
        let user_id = text(r, "user id")?;
        let device_id = text(r, "device id")?;
        let account = Account::read_contents(r)?;
        let mut endpoint = Self::from_account(&user_id, &device_id, account)
            .map_err(|_| DecodeError::InvalidValue("ids"))?;
        for _ in 0..r.u32("peers")? {
            let key = Curve25519PublicKey::from_bytes(r.array("peer key")?);
            let count = r.count(MAX_SESSIONS_PER_PEER, "sessions per peer")?;
            let mut sessions = Vec::with_capacity(count);
            for _ in 0..count {
                let session = Session::read_contents(r)?;
                if session.peer_identity().curve25519 != key {
                    return Err(DecodeError::InvalidValue("session peer"));
                }
                sessions.push(session);
            }
            if sessions.is_empty() || endpoint.peers.insert(key, sessions).is_some() {
                return Err(DecodeError::InvalidValue("peers"));
            }
        }
        for _ in 0..r.u32("outbound rooms")? {
            let session = OutboundGroupSession::read_contents(r)?;
            let created_ms = r.u64("created at")?;
            let mut shared_with = BTreeSet::new();
            for _ in 0..r.u32("shared with")? {
                if !shared_with.insert(Curve25519PublicKey::from_bytes(r.array("device key")?)) {
                    return Err(DecodeError::InvalidValue("shared with"));
                }
            }
            let room = session.room_id().to_owned();
            if endpoint
                .outbound
                .insert(
                    room,
                    OutboundRoom {
                        session,
                        created_ms,
                        shared_with,
                    },
                )
                .is_some()
            {
                return Err(DecodeError::InvalidValue("outbound rooms"));
            }
        }
        endpoint.inbound = InboundKeyStore::read_contents(r)?;
        for _ in 0..r.u32("discarded rooms")? {
            if !endpoint.discarded.insert(text(r, "room id")?) {
                return Err(DecodeError::InvalidValue("discarded rooms"));
            }
        }
        Ok(endpoint)
    }
}

/// Decrypts with a copy of the right session (or a new inbound one),
/// changing nothing.
fn stage_receive(
    account: &Account,
    peers: &BTreeMap<Curve25519PublicKey, Vec<Session>>,
    rng: &mut (dyn rand::CryptoRng + Send),
    sender_key: &Curve25519PublicKey,
    message: &DeviceMessage,
) -> Result<(Staged, Plaintext), RoomError> {
    let sessions = peers.get(sender_key).map_or(&[][..], Vec::as_slice);
    if let DeviceMessage::PreKey(pre_key) = message {
        if pre_key.identity_keys().curve25519 != *sender_key {
            return Err(RoomError::SenderMismatch);
        }
        let id = pre_key.session_id();
        if let Some((index, existing)) = sessions
            .iter()
            .enumerate()
            .find(|(_, s)| s.session_id() == id)
        {
            let mut session = existing.duplicate();
            let plaintext = session.decrypt_with_rng(message, rng)?;
            return Ok((Staged::Existing { index, session }, plaintext));
        }
        let (creation, consumed) = account.stage_inbound_session(pre_key, rng)?;
        return Ok((
            Staged::New {
                session: creation.session,
                consumed,
            },
            creation.plaintext,
        ));
    }
    // Report the newest session's error: that is the one the peer uses.
    let mut last_error = None;
    for (index, existing) in sessions.iter().enumerate().rev() {
        let mut session = existing.duplicate();
        match session.decrypt_with_rng(message, rng) {
            Ok(plaintext) => {
                return Ok((Staged::Existing { index, session }, plaintext));
            }
            Err(e) => {
                last_error.get_or_insert(e);
            }
        }
    }
    Err(last_error.map_or(RoomError::NoSession, RoomError::Session))
}

/// Encrypts each job's plaintext with its session, on up to `threads`
/// threads when there are many jobs.
fn encrypt_all(
    jobs: &mut [(&VerifiedDevice, &mut Session, Zeroizing<Vec<u8>>)],
    threads: usize,
) -> Vec<Result<DeviceMessage, SessionError>> {
    let run = |chunk: &mut [(&VerifiedDevice, &mut Session, Zeroizing<Vec<u8>>)]| -> Vec<_> {
        chunk
            .iter_mut()
            .map(|(_, session, plaintext)| session.encrypt(plaintext))
            .collect()
    };
    if !cfg!(feature = "parallel")
        || threads < 2
        || jobs.len() < crate::consts::PARALLEL_SHARE_THRESHOLD
    {
        return run(jobs);
    }
    let chunk_len = jobs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut chunks = jobs.chunks_mut(chunk_len);
        let first = chunks.next();
        let handles: Vec<_> = chunks
            .map(|chunk| scope.spawn(move || run(chunk)))
            .collect();
        let mut results = first.map(run).unwrap_or_default();
        for handle in handles {
            match handle.join() {
                Ok(part) => results.extend(part),
                // Encrypting cannot panic; if it ever did, surface it.
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
        results
    })
}

pickle_methods!(Endpoint);

impl Pickled for Endpoint {
    const KIND: PickleKind = PickleKind::Endpoint;
    fn generation(&self) -> &Generation {
        &self.generation
    }
    fn write_contents(&self, w: &mut Writer) {
        Self::write_contents(self, w);
    }
    fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::read_contents(r)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("user_id", &self.bundle.user_id)
            .field("device_id", &self.bundle.device_id)
            .field("identity_keys", &self.identity_keys())
            .field("peers", &self.peers.len())
            .field("outbound_rooms", &self.outbound.keys().collect::<Vec<_>>())
            .field("inbound_keys", &self.inbound.len())
            .finish_non_exhaustive()
    }
}

//! [`Endpoint`]: one device's orchestrator. It owns the account, the
//! pairwise sessions per peer device, the outbound group session per room
//! and the inbound key store, and turns app intents (publish keys, start
//! sessions, share a room key, receive, encrypt and decrypt events, persist)
//! into the bytes the app must move.
//!
//! This file holds the state, configuration, keys to publish, events and
//! the pickle; sharing is in `sharing.rs`, receiving in `receive.rs`.
//!
//! Guarantees: sans-I/O; every operation that takes outside bytes is
//! transactional (nothing changes unless it succeeds); a room's key rotates
//! before it is shared whenever a device that may hold it is no longer a
//! recipient, however it left (not listed, forgotten), or the rotation
//! policy says so; peers are keyed by their full identity (both keys); what
//! outside input can add is bounded ([`super::limits`]); randomness comes
//! from the operating system (a test generator can be injected only with
//! the feature `insecure-test-rng`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::RoomError;
use super::event::{DecryptedEvent, EncryptedEvent, EventPlaintext, ROOM_ALGORITHM};
use super::limits::Limits;
use super::outbound::OutboundRoom;
use super::peers::PeerStore;
use super::policy::{Clock, RotationPolicy, RotationReason, SystemClock};
use super::store::{InboundKeyStore, KeyAdded, StoredRoomKey};
use super::touched::{Touch, Touched};
use crate::account::{Account, DeviceKeys, SelfSignedDevice, SignedOneTimeKey};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::MAX_ID_LEN;
use crate::crypto::os_rng;
use crate::group::{
    ExportedSessionKey, GroupSessionId, InboundGroupSession, OutboundGroupSession, check_room_id,
};
use crate::keys::{Curve25519PublicKey, IdentityKeys};
use crate::pickle::{Generation, PickleKind, Pickled, pickle_methods};
use crate::session::DeviceMessage;

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

/// A pairwise message for the app to deliver to one device. Send
/// `sender_key` and `message` (the recipient's
/// [`Endpoint::receive_device_message`] needs both) to the device named by
/// `user_id` and `device_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDeviceMessage {
    /// The recipient's user id.
    pub user_id: String,
    /// The recipient's device id.
    pub device_id: String,
    /// The recipient's X25519 identity key.
    pub recipient_key: Curve25519PublicKey,
    /// The sender's (our) X25519 identity key.
    pub sender_key: Curve25519PublicKey,
    /// The encrypted message (base64 in JSON).
    pub message: DeviceMessage,
}

/// The result of [`Endpoint::share_room_key`].
///
/// Persist the endpoint before sending the messages (the pairwise ratchets
/// advanced), send them, then confirm with
/// [`Endpoint::mark_room_key_sent`]: a device is counted as served only once
/// confirmed, and is served again by the next share until then.
#[derive(Clone, Debug)]
pub struct RoomKeyShareOutcome {
    /// The room.
    pub room_id: String,
    /// The room's current group session.
    pub session_id: GroupSessionId,
    /// Whether a new session replaced an earlier one (rotation).
    pub rotated: bool,
    /// Why the session was replaced, if it was.
    pub rotation_reason: Option<RotationReason>,
    /// One message per device that lacked the key (or whose earlier
    /// message was never confirmed) and has a session, in the order the
    /// devices were given.
    pub messages: Vec<ToDeviceMessage>,
    /// Devices that lack the key but have no pairwise session yet (or need
    /// a new one): claim a one-time key for each, call
    /// [`Endpoint::establish_session`], and share again.
    pub missing_sessions: Vec<SelfSignedDevice>,
}

/// A room key received over a pairwise session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedRoomKey {
    /// The room.
    pub room_id: String,
    /// The group session.
    pub session_id: GroupSessionId,
    /// The sending device (authenticated by the pairwise session and the
    /// key's signature).
    pub sender: IdentityKeys,
    /// The sending device's user id (checked against the user the server
    /// delivered the message from).
    pub sender_user_id: String,
    /// The sending device's device id.
    pub sender_device_id: String,
    /// The first message index the key can decrypt.
    pub first_index: u32,
    /// Whether the store learned something (a new key, or a better copy).
    pub added: KeyAdded,
    /// Keys evicted to make room (room and session): keys of this sender
    /// past its quota, or keys of a sender the app never named when the
    /// store was full. See [`crate::consts::MAX_ROOM_KEYS`].
    pub evicted: Vec<(String, GroupSessionId)>,
}

/// One device's end-to-end encryption state and operations.
pub struct Endpoint {
    /// The signed bundle of ids and identity keys (Ed25519 signatures are
    /// deterministic, so it is computed once).
    pub(super) bundle: DeviceKeys,
    pub(super) account: Account,
    pub(super) peers: PeerStore,
    pub(super) outbound: BTreeMap<String, OutboundRoom>,
    /// Rooms whose outbound session was dropped, and why: the next share
    /// reports the rotation.
    pub(super) discarded: BTreeMap<String, RotationReason>,
    pub(super) inbound: InboundKeyStore,
    pub(super) policy: RotationPolicy,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) share_threads: usize,
    pub(super) limits: Limits,
    /// Every draw (one-time keys, sessions, ratchet keys, room keys, message
    /// salts); the operating system's generator unless a test injects
    /// another.
    pub(super) rng: Box<dyn rand::CryptoRng + Send>,
    generation: Generation,
    /// The endpoint-level records changed (for the durable store; the peer
    /// and key stores keep their own).
    pub(super) touched: Touched,
}

pub(super) fn check_id(id: &str, what: &'static str) -> Result<(), RoomError> {
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
            peers: PeerStore::default(),
            outbound: BTreeMap::new(),
            discarded: BTreeMap::new(),
            inbound: InboundKeyStore::new(),
            policy: RotationPolicy::default(),
            clock: Arc::new(SystemClock),
            share_threads: default_threads(),
            limits: Limits::default(),
            rng: Box::new(os_rng()),
            generation: Generation::default(),
            touched: Touched::default(),
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

    /// Sets the rotation policy (kept in the pickle).
    pub fn set_rotation_policy(&mut self, policy: RotationPolicy) {
        self.policy = policy;
        self.touched.mark(|| Touch::Meta);
    }

    /// The rotation policy.
    pub fn rotation_policy(&self) -> RotationPolicy {
        self.policy
    }

    /// Replaces the clock (tests use a manual clock). Not part of the
    /// pickle: a restored endpoint uses the system clock until set again.
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// Replaces the random generator used for every key and salt the
    /// endpoint makes from now on, for deterministic tests only: a seeded
    /// generator makes every key predictable. Exists only with the feature
    /// `insecure-test-rng`; without it the endpoint always uses the
    /// operating system's generator. Pickle nonces still come from
    /// [`Endpoint::pickle_with_rng`].
    #[cfg(any(test, feature = "insecure-test-rng"))]
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
    /// [`Account::max_one_time_keys`]); replaces the fallback key if there is
    /// none or it has started a session (the previous one is kept for
    /// [`crate::consts::FALLBACK_KEY_GRACE_MS`], then forgotten); and returns
    /// everything not yet published. Once the server has them, pass the
    /// result to [`Endpoint::mark_keys_as_published`].
    pub fn keys_to_publish(&mut self, one_time_keys: usize) -> KeysToPublish {
        let now = self.clock.now_ms();
        self.touched.mark(|| Touch::Account);
        self.account.forget_expired_fallback_key(now);
        let unpublished = self.account.one_time_keys().len();
        let wanted = one_time_keys.min(Account::max_one_time_keys());
        if wanted > unpublished {
            self.account
                .generate_one_time_keys_with_rng(wanted - unpublished, &mut *self.rng);
        }
        if self.account.fallback_key().is_none() || self.account.fallback_key_used() {
            self.account
                .rotate_fallback_key_with_rng(now, &mut *self.rng);
        }
        KeysToPublish {
            device_keys: self.device_keys(),
            one_time_keys: self.account.one_time_keys(),
            fallback_key: self.account.unpublished_fallback_key(),
        }
    }

    /// Marks exactly the keys in `published` (a [`KeysToPublish`] the
    /// server accepted) as published; keys made since stay unpublished.
    pub fn mark_keys_as_published(&mut self, published: &KeysToPublish) {
        let mut keys = published.one_time_keys.clone();
        keys.extend(published.fallback_key.clone());
        self.touched.mark(|| Touch::Account);
        self.account.mark_keys_as_published(&keys);
    }

    /// Replaces the fallback key now (the next [`Endpoint::keys_to_publish`]
    /// returns the new one); the previous one is kept for the grace period.
    pub fn rotate_fallback_key(&mut self) {
        let now = self.clock.now_ms();
        self.touched.mark(|| Touch::Account);
        self.account.forget_expired_fallback_key(now);
        self.account
            .rotate_fallback_key_with_rng(now, &mut *self.rng);
    }

    /// Starts a pairwise session with a device from its key bundle and a
    /// one-time (or fallback) key claimed from the server. Both signatures
    /// are checked, and the device's X25519 key must not be held under
    /// another Ed25519 key or other ids ([`RoomError::IdentityConflict`]).
    /// Returns the device.
    pub fn establish_session(
        &mut self,
        device: &DeviceKeys,
        one_time_key: &SignedOneTimeKey,
    ) -> Result<SelfSignedDevice, RoomError> {
        let checked = device.check_self_signature()?;
        let keys = checked.identity_keys();
        let us = self.identity_keys();
        if keys.curve25519 == us.curve25519 || keys.ed25519 == us.ed25519 {
            return Err(RoomError::OwnDevice);
        }
        self.peers.check_device(&checked)?;
        let session = self.account.create_outbound_session_with_rng(
            &checked,
            one_time_key,
            &mut *self.rng,
        )?;
        self.peers
            .add_session(session, Some(&checked), &self.limits);
        Ok(checked)
    }

    /// How many peer devices this endpoint holds pairwise sessions with.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Drops every pairwise session with the device whose X25519 identity key
    /// is `device_key`; returns how many were dropped. Its messages can no
    /// longer be read until it (or we) start a new session. Every room whose
    /// current key it may hold drops that key: the next share rotates
    /// ([`RotationReason::DeviceForgotten`]), so a forgotten device reads
    /// nothing sent after. Frees room when [`RoomError::TooManyPeers`]
    /// refuses new peers.
    pub fn forget_peer(&mut self, device_key: &Curve25519PublicKey) -> usize {
        let rooms: Vec<String> = self
            .outbound
            .iter()
            .filter(|(_, room)| room.recipients.contains(device_key))
            .map(|(id, _)| id.clone())
            .collect();
        for room in rooms {
            self.discard_room_key(&room, RotationReason::DeviceForgotten);
        }
        self.peers.remove(device_key)
    }

    /// Test hook: sets the bounds; returns the previous ones.
    #[cfg(test)]
    pub(crate) fn set_limits(&mut self, limits: Limits) -> Limits {
        self.inbound.set_limits(limits);
        std::mem::replace(&mut self.limits, limits)
    }

    /// Whether a pairwise session with the device exists.
    pub fn has_session(&self, device_key: &Curve25519PublicKey) -> bool {
        self.peers
            .get(device_key)
            .is_some_and(|p| !p.sessions().is_empty())
    }

    /// The device bound to an X25519 identity key, if a session with it
    /// is held: its identity keys and the user and device ids it is bound
    /// to (from its bundle or its first room-key share).
    pub fn peer(
        &self,
        device_key: &Curve25519PublicKey,
    ) -> Option<(IdentityKeys, Option<String>, Option<String>)> {
        self.peers.get(device_key).map(|p| {
            (
                p.identity(),
                p.user_id().map(str::to_owned),
                p.device_id().map(str::to_owned),
            )
        })
    }

    /// Drops a room's outbound session (our own inbound copy stays, so
    /// events already sent can still be read) and remembers why, so the
    /// next share reports the rotation. Returns whether there was one.
    pub(super) fn discard_room_key(&mut self, room_id: &str, reason: RotationReason) -> bool {
        let had = self.outbound.remove(room_id).is_some();
        if had {
            self.discarded.insert(room_id.to_owned(), reason);
            self.touch_room(room_id);
            self.touched.mark(|| Touch::Discarded(room_id.to_owned()));
        }
        had
    }

    /// Discards the room's outbound session; the next share starts a new
    /// one. Returns whether there was one.
    pub fn rotate_room_key(&mut self, room_id: &str) -> bool {
        self.discard_room_key(room_id, RotationReason::Requested)
    }

    /// Encrypts a room event with the room's current group session.
    ///
    /// Fails with [`RoomError::ShareRequired`], saying why, when there is no
    /// current session (never shared, expired by the policy or the clock,
    /// discarded): share first.
    pub fn encrypt_event(
        &mut self,
        room_id: &str,
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<EncryptedEvent, RoomError> {
        check_room_id(room_id)?;
        check_id(event_type, "event type")?;
        let now = self.clock.now_ms();
        let Some(room) = self.outbound.get_mut(room_id) else {
            let reason = self
                .discarded
                .get(room_id)
                .copied()
                .unwrap_or(RotationReason::NotShared);
            return Err(RoomError::ShareRequired(reason));
        };
        if let Some(reason) = self
            .policy
            .expiry(room.session.message_index(), room.created_ms, now)
        {
            return Err(RoomError::ShareRequired(reason));
        }
        let plaintext = Zeroizing::new(
            serde_json::to_vec(&EventPlaintext {
                event_type: event_type.to_owned(),
                content: content.clone(),
            })
            .map_err(|_| RoomError::InvalidEvent)?,
        );
        let ciphertext = room.session.encrypt_with_rng(&plaintext, &mut *self.rng)?;
        self.touched
            .mark(|| Touch::OutboundSession(room_id.to_owned()));
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

    /// Imports a room key from a backup or a forward, attributed to
    /// `sender` (as the backup claims). Events it decrypts are reported as
    /// not authenticated; it can never displace a key a signed share
    /// attributed to another device.
    pub fn import_room_key(
        &mut self,
        room_id: &str,
        sender: IdentityKeys,
        key: &ExportedSessionKey,
    ) -> Result<KeyAdded, RoomError> {
        self.inbound
            .add_import(room_id, sender, InboundGroupSession::import(key))
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

    /// Every stored inbound room key (room, session, sender, first index,
    /// authenticated range, replay records, size): what to back up, or to
    /// look through before freeing room.
    pub fn room_keys(&self) -> Vec<StoredRoomKey> {
        self.inbound.keys()
    }

    /// Forgets one inbound room key; returns whether it was stored.
    pub fn forget_room_key(&mut self, room_id: &str, session_id: &GroupSessionId) -> bool {
        self.inbound.forget_key(room_id, session_id)
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

    /// Makes a state restored from anything but the newest pickle safe to
    /// use again (see PROTOCOL.md, "Rollback"). A rolled-back state may hold
    /// one-time keys that were consumed since, a fallback key whose replay
    /// record lost entries, sending chains whose message numbers peers have
    /// already seen, and room keys whose indices recipients already used.
    /// So this forgets every one-time key, replaces the fallback key and
    /// forgets the previous one at once, drops every room's outbound
    /// session (the next share rotates: [`RotationReason::Rollback`]), and
    /// requires a new pairwise session with every peer before sending to it
    /// again (existing sessions still decrypt). Then publish keys again
    /// ([`Endpoint::keys_to_publish`]) and re-establish sessions with the
    /// devices the next share lists as missing.
    pub fn recover_from_rollback(&mut self) {
        let now = self.clock.now_ms();
        self.touched.mark(|| Touch::Account);
        self.account.forget_one_time_keys();
        self.account
            .rotate_fallback_key_with_rng(now, &mut *self.rng);
        self.account.forget_previous_fallback_key();
        let rooms: Vec<String> = self.outbound.keys().cloned().collect();
        for room in rooms {
            self.discard_room_key(&room, RotationReason::Rollback);
        }
        self.peers.require_new_sessions();
    }

    /// Replaces the room's outbound session with a new one and keeps our own
    /// inbound copy.
    pub(super) fn start_room_session(&mut self, room_id: &str, now: u64) -> Result<(), RoomError> {
        let session =
            OutboundGroupSession::new_with_rng(room_id, self.identity_keys(), &mut *self.rng)?;
        // Our own copy of a key we just made needs no signature check.
        let own_copy = InboundGroupSession::from_own_key(&session.session_key());
        self.inbound.add_own(room_id, own_copy)?;
        self.outbound
            .insert(room_id.to_owned(), OutboundRoom::new(session, now));
        self.touch_room(room_id);
        Ok(())
    }

    /// Marks a room's outbound session and recipients as changed.
    pub(super) fn touch_room(&mut self, room_id: &str) {
        self.touched
            .mark(|| Touch::OutboundSession(room_id.to_owned()));
        self.touched.mark(|| Touch::Recipients(room_id.to_owned()));
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
            .and_then(|p| p.sending_session())
            .map(|s| s.encrypt(plaintext))
            .unwrap()
            .unwrap()
    }

    /// Test hook: the current outbound session key of a room.
    #[cfg(test)]
    pub(crate) fn outbound_key(&self, room_id: &str) -> crate::group::SessionKey {
        self.outbound[room_id].session.session_key()
    }

    pub(super) fn write_contents(&self, w: &mut Writer) {
        w.short_bytes(self.bundle.user_id.as_bytes())
            .short_bytes(self.bundle.device_id.as_bytes());
        self.account.write_contents(w);
        self.peers.write_contents(w);
        w.count32(self.outbound.len());
        for room in self.outbound.values() {
            room.write_contents(w);
        }
        self.inbound.write_contents(w);
        w.count32(self.discarded.len());
        for (room, reason) in &self.discarded {
            w.short_bytes(room.as_bytes()).u8(reason.code());
        }
        self.policy.write(w);
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
        endpoint.peers = PeerStore::read_contents(r, &endpoint.identity_keys())?;
        for _ in 0..r.u32("outbound rooms")? {
            let room = OutboundRoom::read_contents(r)?;
            let id = room.session.room_id().to_owned();
            if room.session.creator() != endpoint.identity_keys()
                || endpoint.outbound.insert(id, room).is_some()
            {
                return Err(DecodeError::InvalidValue("outbound rooms"));
            }
        }
        endpoint.inbound = InboundKeyStore::read_contents(r)?;
        for _ in 0..r.u32("discarded rooms")? {
            let room = text(r, "room id")?;
            let reason = RotationReason::from_code(r.u8("rotation reason")?)
                .ok_or(DecodeError::InvalidValue("rotation reason"))?;
            if endpoint.outbound.contains_key(&room)
                || endpoint.discarded.insert(room, reason).is_some()
            {
                return Err(DecodeError::InvalidValue("discarded rooms"));
            }
        }
        endpoint.policy = RotationPolicy::read(r)?;
        Ok(endpoint)
    }
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

//! The pairwise sessions an endpoint holds, per peer device.
//!
//! A peer is a device identity: both its X25519 and its Ed25519 key. It is
//! looked up by its X25519 key (what a message names), but once held, that
//! X25519 key is bound to its Ed25519 key and to the user and device ids it
//! was first seen with: a bundle or a pre-key message that pairs the same
//! X25519 key with another Ed25519 key, or ids that differ, is refused with
//! [`RoomError::IdentityConflict`] and changes nothing.
//!
//! Peers are *known* (the app named them: it started a session with them or
//! listed them as room-key recipients) or *strangers* (they started a
//! session with us and the app never named them). Outside input can only add
//! strangers, and they are bounded on their own ([`Limits::strangers`], one
//! or two sessions each): when the bound is reached, the stranger unused for
//! longest is evicted, so a flood of made-up identities churns among
//! strangers and never pushes out a known peer.

use std::collections::BTreeMap;

use super::RoomError;
use super::limits::Limits;
use super::touched::{Touch, Touched};
use crate::account::SelfSignedDevice;
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{MAX_ID_LEN, MAX_SESSIONS_PER_PEER, MAX_STRANGER_SESSIONS};
use crate::keys::{Curve25519PublicKey, IdentityKeys};
use crate::session::Session;

/// One peer device and our sessions with it.
pub(crate) struct Peer {
    identity: IdentityKeys,
    /// The user and device ids the device is bound to (from its bundle, or
    /// from the first room-key share it sent).
    user_id: Option<String>,
    device_id: Option<String>,
    /// The app named this device (see the module docs).
    known: bool,
    /// After a rollback: send only on a session started afresh.
    needs_new_session: bool,
    /// Newest last.
    sessions: Vec<Session>,
    /// When it was last used (a counter, for evicting strangers).
    last_used: u64,
}

impl Peer {
    /// The device's identity keys.
    pub(crate) fn identity(&self) -> IdentityKeys {
        self.identity
    }

    /// The user id the device is bound to, if known.
    pub(crate) fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The device id the device is bound to, if known.
    pub(crate) fn device_id(&self) -> Option<&str> {
        self.device_id.as_deref()
    }

    /// Whether the app named this device.
    pub(crate) fn is_known(&self) -> bool {
        self.known
    }

    /// The sessions, newest last.
    pub(crate) fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    /// The session to send on: the newest, unless a rollback requires a new
    /// one.
    pub(crate) fn sending_session(&mut self) -> Option<&mut Session> {
        if self.needs_new_session {
            None
        } else {
            self.sessions.last_mut()
        }
    }

    /// Checks that ids claimed for this device agree with those it is bound
    /// to (unknown ids agree with anything).
    pub(crate) fn check_ids(&self, user_id: &str, device_id: &str) -> Result<(), RoomError> {
        let same =
            |bound: &Option<String>, claimed: &str| bound.as_deref().is_none_or(|b| b == claimed);
        if same(&self.user_id, user_id) && same(&self.device_id, device_id) {
            Ok(())
        } else {
            Err(RoomError::IdentityConflict)
        }
    }

    fn write_contents(&self, w: &mut Writer) {
        w.bytes(&self.identity.to_bytes());
        for id in [&self.user_id, &self.device_id] {
            match id {
                Some(id) => w.bool(true).short_bytes(id.as_bytes()),
                None => w.bool(false),
            };
        }
        w.bool(self.known)
            .bool(self.needs_new_session)
            .count(self.sessions.len());
        for session in &self.sessions {
            session.write_contents(w);
        }
    }

    fn read_contents(
        r: &mut Reader<'_>,
        own: &IdentityKeys,
        last_used: u64,
    ) -> Result<Self, DecodeError> {
        fn id(r: &mut Reader<'_>, field: &'static str) -> Result<Option<String>, DecodeError> {
            if !r.bool(field)? {
                return Ok(None);
            }
            let bytes = r.short_bytes(MAX_ID_LEN, field)?;
            match std::str::from_utf8(bytes) {
                Ok(text) if !text.is_empty() => Ok(Some(text.to_owned())),
                _ => Err(DecodeError::InvalidValue(field)),
            }
        }
        let identity = IdentityKeys::read(r)?;
        let user_id = id(r, "peer user id")?;
        let device_id = id(r, "peer device id")?;
        let known = r.bool("known flag")?;
        let needs_new_session = r.bool("new session flag")?;
        let count = r.count(MAX_SESSIONS_PER_PEER, "sessions per peer")?;
        if count == 0 || (!known && count > MAX_STRANGER_SESSIONS) {
            return Err(DecodeError::InvalidValue("sessions per peer"));
        }
        let mut sessions = Vec::with_capacity(count);
        for _ in 0..count {
            let session = Session::read_contents(r)?;
            if session.peer_identity() != identity || session.local_identity() != *own {
                return Err(DecodeError::InvalidValue("session peer"));
            }
            sessions.push(session);
        }
        Ok(Peer {
            identity,
            user_id,
            device_id,
            known,
            needs_new_session,
            sessions,
            last_used,
        })
    }

    fn max_sessions(&self) -> usize {
        if self.known {
            MAX_SESSIONS_PER_PEER
        } else {
            MAX_STRANGER_SESSIONS
        }
    }
}

/// Every peer device, by X25519 identity key.
#[derive(Default)]
pub(crate) struct PeerStore {
    peers: BTreeMap<Curve25519PublicKey, Peer>,
    strangers: usize,
    tick: u64,
    /// The peers changed (for the durable store).
    pub(super) touched: Touched,
}

impl PeerStore {
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    /// The X25519 keys of every peer.
    pub(crate) fn keys(&self) -> impl Iterator<Item = Curve25519PublicKey> + '_ {
        self.peers.keys().copied()
    }

    pub(crate) fn get(&self, key: &Curve25519PublicKey) -> Option<&Peer> {
        self.peers.get(key)
    }

    #[cfg(test)]
    pub(crate) fn get_mut(&mut self, key: &Curve25519PublicKey) -> Option<&mut Peer> {
        self.peers.get_mut(key)
    }

    /// The session to send on for each of `identities` held exactly (both
    /// keys) and not waiting for a new session, by X25519 key.
    pub(crate) fn sending_sessions(
        &mut self,
        identities: impl IntoIterator<Item = IdentityKeys>,
    ) -> BTreeMap<Curve25519PublicKey, &mut Session> {
        let wanted: std::collections::BTreeSet<IdentityKeys> = identities.into_iter().collect();
        let touched = &mut self.touched;
        self.peers
            .iter_mut()
            .filter(|(_, p)| wanted.contains(&p.identity))
            .filter_map(|(k, p)| p.sending_session().map(|s| (*k, s)))
            .inspect(|(k, _)| touched.mark(|| Touch::Peer(*k)))
            .collect()
    }

    /// Refuses `identity` if its X25519 key is held under another Ed25519
    /// key.
    pub(crate) fn check_identity(&self, identity: &IdentityKeys) -> Result<(), RoomError> {
        match self.peers.get(&identity.curve25519) {
            Some(peer) if peer.identity != *identity => Err(RoomError::IdentityConflict),
            _ => Ok(()),
        }
    }

    /// Checks that the app may name `device` (its identity and ids agree
    /// with what is held).
    pub(crate) fn check_device(&self, device: &SelfSignedDevice) -> Result<(), RoomError> {
        self.check_identity(&device.identity_keys())?;
        match self.peers.get(&device.identity_keys().curve25519) {
            Some(peer) => peer.check_ids(device.user_id(), device.device_id()),
            None => Ok(()),
        }
    }

    /// Whether a new stranger can be taken without evicting anyone, or by
    /// evicting one; `Err` when every peer slot is taken by known peers.
    pub(crate) fn check_room_for_stranger(&self, limits: &Limits) -> Result<(), RoomError> {
        if self.peers.len() >= limits.peers && self.strangers == 0 {
            Err(RoomError::TooManyPeers)
        } else {
            Ok(())
        }
    }

    /// Marks a device as named by the app, binding its ids (checked first
    /// with [`PeerStore::check_device`]).
    pub(crate) fn name(&mut self, device: &SelfSignedDevice) {
        let key = device.identity_keys().curve25519;
        if let Some(peer) = self.peers.get_mut(&key) {
            let changed = !peer.known || peer.user_id.is_none() || peer.device_id.is_none();
            if !peer.known {
                peer.known = true;
                self.strangers = self.strangers.saturating_sub(1);
            }
            peer.user_id
                .get_or_insert_with(|| device.user_id().to_owned());
            peer.device_id
                .get_or_insert_with(|| device.device_id().to_owned());
            if changed {
                self.touched.mark(|| Touch::Peer(key));
            }
        }
    }

    /// Binds ids claimed in a share (checked first with [`Peer::check_ids`]).
    pub(crate) fn bind_ids(&mut self, key: &Curve25519PublicKey, user_id: &str, device_id: &str) {
        if let Some(peer) = self.peers.get_mut(key) {
            if peer.user_id.is_none() || peer.device_id.is_none() {
                self.touched.mark(|| Touch::Peer(*key));
            }
            peer.user_id.get_or_insert_with(|| user_id.to_owned());
            peer.device_id.get_or_insert_with(|| device_id.to_owned());
        }
    }

    /// Adds a session with its peer (creating the peer: known when `named`
    /// holds the app's device record, a stranger otherwise). The identity
    /// was checked with [`PeerStore::check_identity`]. Evicts the
    /// least-recently-used stranger when the strangers' bound (or the total
    /// bound) would be passed, and the peer's oldest session beyond its
    /// session bound. A rollback's "new session needed" mark is cleared by
    /// a session we start ourselves.
    pub(crate) fn add_session(
        &mut self,
        session: Session,
        named: Option<&SelfSignedDevice>,
        limits: &Limits,
    ) {
        let identity = session.peer_identity();
        let key = identity.curve25519;
        if !self.peers.contains_key(&key) {
            let stranger = named.is_none();
            if stranger && self.strangers >= limits.strangers || self.peers.len() >= limits.peers {
                self.evict_stranger();
            }
            self.strangers += usize::from(stranger);
            self.peers.insert(
                key,
                Peer {
                    identity,
                    user_id: None,
                    device_id: None,
                    known: !stranger,
                    needs_new_session: false,
                    sessions: Vec::new(),
                    last_used: 0,
                },
            );
        }
        if let Some(device) = named {
            self.name(device);
        }
        self.tick += 1;
        let tick = self.tick;
        self.touched.mark(|| Touch::Peer(key));
        if let Some(peer) = self.peers.get_mut(&key) {
            if named.is_some() {
                peer.needs_new_session = false;
            }
            peer.sessions.push(session);
            let excess = peer.sessions.len().saturating_sub(peer.max_sessions());
            peer.sessions.drain(..excess);
            peer.last_used = tick;
        }
    }

    /// Replaces session `index` of a peer with its advanced copy.
    pub(crate) fn commit_session(
        &mut self,
        key: &Curve25519PublicKey,
        index: usize,
        session: Session,
    ) {
        self.tick += 1;
        let tick = self.tick;
        self.touched.mark(|| Touch::Peer(*key));
        if let Some(peer) = self.peers.get_mut(key) {
            peer.last_used = tick;
            if let Some(slot) = peer.sessions.get_mut(index) {
                *slot = session;
            }
        }
    }

    fn evict_stranger(&mut self) {
        let oldest = self
            .peers
            .iter()
            .filter(|(_, p)| !p.known)
            .min_by_key(|(_, p)| p.last_used)
            .map(|(k, _)| *k);
        if let Some(key) = oldest {
            self.remove(&key);
        }
    }

    /// Drops a peer and its sessions; returns how many sessions went.
    pub(crate) fn remove(&mut self, key: &Curve25519PublicKey) -> usize {
        self.touched.mark(|| Touch::Peer(*key));
        match self.peers.remove(key) {
            Some(peer) => {
                if !peer.known {
                    self.strangers = self.strangers.saturating_sub(1);
                }
                peer.sessions.len()
            }
            None => 0,
        }
    }

    /// After a rollback: every peer needs a session we start afresh before
    /// we send to it again (our sending chains may repeat counters the peer
    /// already used).
    pub(crate) fn require_new_sessions(&mut self) {
        for (key, peer) in &mut self.peers {
            peer.needs_new_session = true;
            self.touched.mark(|| Touch::Peer(*key));
        }
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.count32(self.peers.len());
        for peer in self.peers.values() {
            peer.write_contents(w);
        }
    }

    pub(crate) fn read_contents(
        r: &mut Reader<'_>,
        own: &IdentityKeys,
    ) -> Result<Self, DecodeError> {
        let mut store = Self::default();
        for _ in 0..r.u32("peers")? {
            let peer = Peer::read_contents(r, own, 0)?;
            if store.put(peer).is_some() {
                return Err(DecodeError::InvalidValue("peers"));
            }
        }
        Ok(store)
    }

    /// Writes the peer held under `key`, if any (one durable record).
    pub(crate) fn write_peer(&self, key: &Curve25519PublicKey, w: &mut Writer) -> bool {
        self.peers
            .get(key)
            .map(|peer| peer.write_contents(w))
            .is_some()
    }

    /// Reads one peer (a durable record) and holds it, replacing the one
    /// held under its key.
    pub(crate) fn read_peer(
        &mut self,
        r: &mut Reader<'_>,
        own: &IdentityKeys,
    ) -> Result<Curve25519PublicKey, DecodeError> {
        let peer = Peer::read_contents(r, own, self.tick)?;
        let key = peer.identity.curve25519;
        self.put(peer);
        Ok(key)
    }

    /// Holds `peer`, returning the one it replaced; keeps the counts.
    fn put(&mut self, mut peer: Peer) -> Option<Peer> {
        self.tick += 1;
        peer.last_used = self.tick;
        self.strangers += usize::from(!peer.known);
        let old = self.peers.insert(peer.identity.curve25519, peer);
        if old.as_ref().is_some_and(|old| !old.known) {
            self.strangers = self.strangers.saturating_sub(1);
        }
        old
    }
}

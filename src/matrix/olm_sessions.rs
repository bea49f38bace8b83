//! The Olm sessions of a Matrix device, per peer device (by the peer's
//! Curve25519 identity key, which is all an Olm session knows of it).
//!
//! Which session sends: the specification's choice, "the session from which
//! it last received and successfully decrypted a message", a session that has
//! received nothing counting from its creation. Every session is tried on
//! receipt, most recently received first. Time here is a logical counter (a
//! tick per creation and per decrypted message), pickled with the sessions,
//! so the order survives a restore and does not depend on a clock.
//!
//! Bounds, as the native endpoint's peers: a device the app knows (it is in
//! the device tracker, or we started the session) keeps
//! [`MAX_SESSIONS_PER_PEER`] sessions, a stranger [`MAX_STRANGER_SESSIONS`];
//! the least recently received goes first (the specification's LRU, with at
//! least four per device). Strangers are bounded on their own and churn
//! among themselves; known devices are never evicted.
//!
//! Wedged sessions: a message from a device that no session can read marks
//! the device *wedged*; the next key claim asks for a new one-time key for it
//! (at most once per [`MATRIX_NEW_SESSION_INTERVAL_MS`] per device) and an
//! `m.dummy` goes out on the new session.

use super::tracked::TrackedMap;
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{MATRIX_NEW_SESSION_INTERVAL_MS, MAX_SESSIONS_PER_PEER, MAX_STRANGER_SESSIONS};
use crate::keys::Curve25519PublicKey;
use crate::olm::OlmSession;
use crate::room::Limits;
use crate::session::SessionId;

/// One session and when it last received (a tick of the store's counter).
pub(crate) struct OlmEntry {
    pub(crate) session: OlmSession,
    pub(crate) last_received: u64,
}

/// One peer device and our sessions with it.
pub(crate) struct OlmPeer {
    named: bool,
    /// Unordered; [`OlmPeer::sending`] and [`OlmPeer::by_recency`] order them.
    sessions: Vec<OlmEntry>,
    /// When we last started a session with the device (milliseconds since
    /// the Unix epoch), for the wedge rate limit.
    last_created_ms: Option<u64>,
    wedged: bool,
}

impl OlmPeer {
    /// The sessions, most recently received first.
    pub(crate) fn by_recency(&self) -> Vec<&OlmEntry> {
        let mut sessions: Vec<&OlmEntry> = self.sessions.iter().collect();
        sessions.sort_by_key(|e| std::cmp::Reverse(e.last_received));
        sessions
    }

    fn sending_index(&self) -> Option<usize> {
        self.sessions
            .iter()
            .enumerate()
            .max_by_key(|(_, e)| e.last_received)
            .map(|(i, _)| i)
    }

    fn max_sessions(&self) -> usize {
        if self.named {
            MAX_SESSIONS_PER_PEER
        } else {
            MAX_STRANGER_SESSIONS
        }
    }
}

/// Every peer device's Olm sessions, by Curve25519 identity key.
#[derive(Default)]
pub(crate) struct OlmSessionStore {
    pub(crate) peers: TrackedMap<Curve25519PublicKey, OlmPeer>,
    strangers: usize,
    tick: u64,
}

impl OlmSessionStore {
    fn next_tick(&mut self) -> u64 {
        self.tick = self.tick.saturating_add(1);
        self.tick
    }

    /// The logical clock (kept with the endpoint's state record).
    pub(crate) fn tick(&self) -> u64 {
        self.tick
    }

    /// Sets the logical clock (from the endpoint's state record).
    pub(crate) fn set_tick(&mut self, tick: u64) {
        self.tick = tick;
    }

    pub(crate) fn get(&self, key: &Curve25519PublicKey) -> Option<&OlmPeer> {
        self.peers.get(key)
    }

    /// How many devices we hold sessions with.
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether we hold a session with the device.
    pub(crate) fn has_session(&self, key: &Curve25519PublicKey) -> bool {
        self.peers.get(key).is_some_and(|p| !p.sessions.is_empty())
    }

    /// The session to send to the device on (the one that most recently
    /// received).
    pub(crate) fn sending_session(&mut self, key: &Curve25519PublicKey) -> Option<&mut OlmSession> {
        let peer = self.peers.get_mut(key)?;
        let index = peer.sending_index()?;
        peer.sessions.get_mut(index).map(|e| &mut e.session)
    }

    /// Whether a new stranger fits (possibly by evicting one); false when
    /// every slot holds a known device.
    pub(crate) fn has_room_for_stranger(&self, limits: &Limits) -> bool {
        self.peers.len() < limits.peers || self.strangers > 0
    }

    /// Replaces the session with `id` of the device by its advanced copy and
    /// records that it received now.
    pub(crate) fn commit_received(
        &mut self,
        key: &Curve25519PublicKey,
        id: SessionId,
        session: OlmSession,
    ) {
        let tick = self.next_tick();
        if let Some(peer) = self.peers.get_mut(key) {
            peer.wedged = false;
            if let Some(entry) = peer
                .sessions
                .iter_mut()
                .find(|e| e.session.session_id() == id)
            {
                entry.session = session;
                entry.last_received = tick;
            }
        }
    }

    /// Adds a session: an inbound one that just decrypted its first message
    /// (`created_ms` `None`) or one we started (`Some(now)`). A new device is
    /// a stranger unless `named`; the least recently received session past
    /// the device's bound, and the stranger unused for longest past the
    /// strangers' bound, are dropped.
    pub(crate) fn add(
        &mut self,
        key: Curve25519PublicKey,
        session: OlmSession,
        named: bool,
        created_ms: Option<u64>,
        limits: &Limits,
    ) {
        if !self.peers.contains_key(&key) {
            if (!named && self.strangers >= limits.strangers) || self.peers.len() >= limits.peers {
                self.evict_stranger();
            }
            self.strangers += usize::from(!named);
            self.peers.insert(
                key,
                OlmPeer {
                    named,
                    sessions: Vec::new(),
                    last_created_ms: None,
                    wedged: false,
                },
            );
        }
        let tick = self.next_tick();
        if let Some(peer) = self.peers.get_mut(&key) {
            if named && !peer.named {
                peer.named = true;
                self.strangers = self.strangers.saturating_sub(1);
            }
            if created_ms.is_some() {
                peer.last_created_ms = created_ms;
                peer.wedged = false;
            }
            peer.sessions.push(OlmEntry {
                session,
                last_received: tick,
            });
            while peer.sessions.len() > peer.max_sessions() {
                let oldest = peer
                    .sessions
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| e.last_received)
                    .map(|(i, _)| i);
                match oldest {
                    Some(i) => {
                        peer.sessions.remove(i);
                    }
                    None => break,
                }
            }
        }
    }

    fn evict_stranger(&mut self) {
        let oldest = self
            .peers
            .iter()
            .filter(|(_, p)| !p.named)
            .min_by_key(|(_, p)| p.sessions.iter().map(|e| e.last_received).max())
            .map(|(k, _)| *k);
        if let Some(key) = oldest
            && self.peers.remove(&key).is_some()
        {
            self.strangers = self.strangers.saturating_sub(1);
        }
    }

    /// Records that a message from the device could not be read by any
    /// session. Marked only for a device we hold sessions with, or that the
    /// app knows (`known`: it is in the tracker), so strangers cannot grow
    /// the store.
    pub(crate) fn mark_wedged(&mut self, key: &Curve25519PublicKey, known: bool) {
        match self.peers.get_mut(key) {
            Some(peer) => peer.wedged = true,
            None if known => {
                self.peers.insert(
                    *key,
                    OlmPeer {
                        named: true,
                        sessions: Vec::new(),
                        last_created_ms: None,
                        wedged: true,
                    },
                );
            }
            None => {}
        }
    }

    /// Whether the device needs a new session: it has none, or it is wedged
    /// and we did not start one within the rate limit.
    pub(crate) fn needs_session(&self, key: &Curve25519PublicKey, now_ms: u64) -> bool {
        match self.peers.get(key) {
            None => true,
            Some(peer) if peer.sessions.is_empty() => true,
            Some(peer) => {
                peer.wedged
                    && peer.last_created_ms.is_none_or(|at| {
                        now_ms.saturating_sub(at) >= MATRIX_NEW_SESSION_INTERVAL_MS || now_ms < at
                    })
            }
        }
    }

    /// Whether the device is marked wedged.
    pub(crate) fn is_wedged(&self, key: &Curve25519PublicKey) -> bool {
        self.peers.get(key).is_some_and(|p| p.wedged)
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.u64(self.tick).count32(self.peers.len());
        for (key, peer) in self.peers.iter() {
            w.bytes(key.as_bytes());
            peer.write(w);
        }
    }

    /// Reads what [`OlmSessionStore::write_contents`] wrote; each session
    /// must be between `own` and the peer it is listed under.
    pub(crate) fn read_contents(
        r: &mut Reader<'_>,
        own: &Curve25519PublicKey,
    ) -> Result<Self, DecodeError> {
        let mut store = Self {
            tick: r.u64("olm session tick")?,
            ..Self::default()
        };
        for _ in 0..r.u32("olm peers")? {
            let key = Curve25519PublicKey::from_bytes(r.array("olm peer key")?);
            let peer = OlmPeer::read(r, &key, own)?;
            store.strangers += usize::from(!peer.named);
            if store.peers.insert(key, peer).is_some() {
                return Err(DecodeError::InvalidValue("olm peers"));
            }
        }
        Ok(store)
    }

    /// Writes the peer `key`'s record (a durable record); false when no
    /// peer is held under it.
    pub(crate) fn write_peer(&self, key: &Curve25519PublicKey, w: &mut Writer) -> bool {
        self.peers.get(key).map(|peer| peer.write(w)).is_some()
    }

    /// Applies the peer `key`'s record as a store holds it (`None`: absent),
    /// replacing what is held for it.
    pub(crate) fn apply_peer(
        &mut self,
        key: &Curve25519PublicKey,
        r: Option<&mut Reader<'_>>,
        own: &Curve25519PublicKey,
    ) -> Result<(), DecodeError> {
        let peer = r.map(|r| OlmPeer::read(r, key, own)).transpose()?;
        if let Some(old) = self.peers.remove(key) {
            self.strangers = self.strangers.saturating_sub(usize::from(!old.named));
        }
        if let Some(peer) = peer {
            self.strangers += usize::from(!peer.named);
            self.peers.insert(*key, peer);
        }
        Ok(())
    }
}

impl OlmPeer {
    fn write(&self, w: &mut Writer) {
        w.bool(self.named)
            .bool(self.wedged)
            .u64(self.last_created_ms.unwrap_or(u64::MAX))
            .count(self.sessions.len());
        for entry in &self.sessions {
            w.u64(entry.last_received);
            entry.session.write_contents(w);
        }
    }

    /// Reads a peer listed under `key`; each session must be between `own`
    /// and `key`.
    fn read(
        r: &mut Reader<'_>,
        key: &Curve25519PublicKey,
        own: &Curve25519PublicKey,
    ) -> Result<Self, DecodeError> {
        let named = r.bool("named flag")?;
        let wedged = r.bool("wedged flag")?;
        let last_created_ms = Some(r.u64("session created at")?).filter(|&at| at != u64::MAX);
        let count = r.count(MAX_SESSIONS_PER_PEER, "olm sessions per peer")?;
        if (count == 0 && !wedged) || (!named && count > MAX_STRANGER_SESSIONS) {
            return Err(DecodeError::InvalidValue("olm sessions per peer"));
        }
        let mut sessions = Vec::with_capacity(count);
        for _ in 0..count {
            let last_received = r.u64("session received at")?;
            let session = OlmSession::read_contents(r)?;
            if session.peer_identity_key() != Some(*key) || session.local_identity_key() != *own {
                return Err(DecodeError::InvalidValue("olm session peer"));
            }
            sessions.push(OlmEntry {
                session,
                last_received,
            });
        }
        Ok(Self {
            named,
            sessions,
            last_created_ms,
            wedged,
        })
    }
}

//! The account's private one-time keys and fallback keys.
//!
//! One-time keys: at most [`MAX_ONE_TIME_KEYS`], oldest dropped first (and
//! reported). A key is removed only once a session created from it has
//! decrypted its first message. Fallback keys: the current one and the one
//! before it, so a session started from a fallback key that was just
//! replaced still works; the previous one is forgotten after a grace
//! period; each remembers (boundedly) the sessions created from it, so a
//! replayed pre-key message cannot recreate one.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use x25519_dalek::StaticSecret;

use super::signed::KeyId;
use crate::consts::{CLOCK_SKEW_TOLERANCE_MS, FALLBACK_KEY_GRACE_MS, MAX_ONE_TIME_KEYS};
use crate::keys::Curve25519PublicKey;

/// One private X25519 key with its id and whether it has been published.
#[derive(Clone)]
pub(crate) struct PrivateKey {
    pub(crate) id: KeyId,
    /// Boxed so that moving the record (the store is a deque) never leaves
    /// a copy of the key behind.
    pub(crate) secret: Box<StaticSecret>,
    pub(crate) public: Curve25519PublicKey,
    pub(crate) published: bool,
}

impl PrivateKey {
    pub(crate) fn new(id: KeyId, secret: StaticSecret, published: bool) -> Self {
        let public = Curve25519PublicKey::from(&secret);
        Self {
            id,
            secret: Box::new(secret),
            public,
            published,
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("id", &self.id)
            .field("public", &self.public)
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

/// The bounded one-time key store, oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct OneTimeKeys {
    pub(crate) keys: VecDeque<PrivateKey>,
}

impl OneTimeKeys {
    /// Adds a key, returning the public key of any key dropped to make room.
    pub(crate) fn push(&mut self, key: PrivateKey) -> Option<Curve25519PublicKey> {
        self.keys.push_back(key);
        if self.keys.len() > MAX_ONE_TIME_KEYS {
            self.keys.pop_front().map(|k| k.public)
        } else {
            None
        }
    }

    pub(crate) fn find(&self, public: &Curve25519PublicKey) -> Option<&PrivateKey> {
        self.keys.iter().find(|k| &k.public == public)
    }

    pub(crate) fn remove(&mut self, public: &Curve25519PublicKey) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| &k.public != public);
        self.keys.len() != before
    }
}

/// A fallback key and what the account remembers about its use.
#[derive(Clone, Debug)]
pub(crate) struct FallbackKey {
    pub(crate) key: PrivateKey,
    /// Ids of the sessions created from it (bounded by
    /// [`crate::consts::MAX_FALLBACK_SESSIONS`]), so a replayed pre-key message cannot
    /// create the same session twice.
    pub(crate) sessions: BTreeSet<[u8; 32]>,
    /// When it stopped being the current key (milliseconds since the Unix
    /// epoch); `None` while it is current.
    pub(crate) retired_ms: Option<u64>,
}

impl FallbackKey {
    pub(crate) fn new(key: PrivateKey) -> Self {
        Self {
            key,
            sessions: BTreeSet::new(),
            retired_ms: None,
        }
    }

    /// Whether a session was created from it.
    pub(crate) fn used(&self) -> bool {
        !self.sessions.is_empty()
    }
}

/// The current fallback key and the previous one (kept for
/// [`FALLBACK_KEY_GRACE_MS`] after it was replaced, then forgotten).
#[derive(Clone, Debug, Default)]
pub(crate) struct FallbackKeys {
    pub(crate) current: Option<FallbackKey>,
    pub(crate) previous: Option<FallbackKey>,
}

impl FallbackKeys {
    /// Makes `key` current at `now_ms`; returns the public key of the one
    /// that fell off.
    pub(crate) fn rotate(&mut self, key: PrivateKey, now_ms: u64) -> Option<Curve25519PublicKey> {
        let dropped = self.previous.take().map(|k| k.key.public);
        self.previous = self.current.replace(FallbackKey::new(key)).map(|mut old| {
            old.retired_ms = Some(now_ms);
            old
        });
        dropped
    }

    /// Forgets the previous key once its grace period is over at `now_ms`
    /// (or when the clock went back past the tolerance: an unreliable clock
    /// must not extend the window). Returns whether it was forgotten.
    pub(crate) fn expire(&mut self, now_ms: u64) -> bool {
        let expired = self.previous.as_ref().is_some_and(|k| {
            k.retired_ms.is_none_or(|at| {
                now_ms.saturating_sub(at) >= FALLBACK_KEY_GRACE_MS
                    || now_ms.saturating_add(CLOCK_SKEW_TOLERANCE_MS) < at
            })
        });
        if expired {
            self.previous = None;
        }
        expired
    }

    pub(crate) fn find(&self, public: &Curve25519PublicKey) -> Option<&FallbackKey> {
        self.current
            .iter()
            .chain(self.previous.iter())
            .find(|k| &k.key.public == public)
    }

    pub(crate) fn find_mut(&mut self, public: &Curve25519PublicKey) -> Option<&mut FallbackKey> {
        self.current
            .iter_mut()
            .chain(self.previous.iter_mut())
            .find(|k| &k.key.public == public)
    }
}

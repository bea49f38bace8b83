//! The account's private one-time keys and fallback keys.
//!
//! One-time keys: at most [`MAX_ONE_TIME_KEYS`], oldest dropped first (and
//! reported). A key is removed only once a session created from it has
//! decrypted its first message. Fallback keys: the current one and the one
//! before it, so a session started from a fallback key that was just
//! replaced still works.

use std::collections::VecDeque;
use std::fmt;

use x25519_dalek::StaticSecret;

use super::signed::KeyId;
use crate::consts::MAX_ONE_TIME_KEYS;
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

/// The current fallback key and the previous one.
#[derive(Clone, Debug, Default)]
pub(crate) struct FallbackKeys {
    pub(crate) current: Option<PrivateKey>,
    pub(crate) previous: Option<PrivateKey>,
}

impl FallbackKeys {
    /// Makes `key` current; returns the public key of the one that fell off.
    pub(crate) fn rotate(&mut self, key: PrivateKey) -> Option<Curve25519PublicKey> {
        let dropped = self.previous.take().map(|k| k.public);
        self.previous = self.current.replace(key);
        dropped
    }

    pub(crate) fn find(&self, public: &Curve25519PublicKey) -> Option<&PrivateKey> {
        self.current
            .iter()
            .chain(self.previous.iter())
            .find(|k| &k.public == public)
    }
}

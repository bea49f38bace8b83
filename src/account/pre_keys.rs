//! [`PreKeys`]: the private keys an account answers pre-key messages with
//! (its bounded one-time keys and its fallback keys), the key-id counter
//! they share, and every rule about them. One implementation serves the
//! native [`super::Account`] and the Matrix [`crate::OlmAccount`], so both
//! protocols get the same guarantees:
//!
//! - a one-time key is removed only once the session it started is
//!   committed, and the store is bounded (oldest dropped first, reported);
//! - a fallback key remembers the sessions it created, so a replayed
//!   pre-key message cannot create one again, and refuses more than
//!   [`MAX_FALLBACK_SESSIONS`];
//! - a replaced fallback key is kept for a grace period, then forgotten;
//! - exactly the keys handed out are marked published.

use x25519_dalek::StaticSecret;

use super::AccountError;
use super::one_time_keys::{FallbackKey, FallbackKeys, OneTimeKeys, PrivateKey};
use super::signed::KeyId;
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{MAX_FALLBACK_SESSIONS, MAX_ONE_TIME_KEYS};
use crate::crypto::Secret;
use crate::keys::Curve25519PublicKey;

/// How a pre-key message's named key was used, recorded when the session it
/// created is committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyUse {
    /// A one-time key: removed.
    OneTime(Curve25519PublicKey),
    /// A fallback key: kept, remembering the session's id.
    Fallback {
        key: Curve25519PublicKey,
        session: [u8; 32],
    },
}

/// One-time and fallback keys with their shared id counter.
#[derive(Debug, Default)]
pub(crate) struct PreKeys {
    pub(crate) next_key_id: u64,
    pub(crate) one_time: OneTimeKeys,
    pub(crate) fallback: FallbackKeys,
}

impl PreKeys {
    fn next_id(&mut self) -> KeyId {
        let id = KeyId(self.next_key_id);
        self.next_key_id = self.next_key_id.wrapping_add(1);
        id
    }

    /// Generates `count` one-time keys (at most [`MAX_ONE_TIME_KEYS`]);
    /// returns the public keys created and those dropped, oldest first.
    pub(crate) fn generate_one_time<R: rand::CryptoRng + ?Sized>(
        &mut self,
        count: usize,
        rng: &mut R,
    ) -> (Vec<Curve25519PublicKey>, Vec<Curve25519PublicKey>) {
        let mut created = Vec::new();
        let mut removed = Vec::new();
        for _ in 0..count.min(MAX_ONE_TIME_KEYS) {
            let key = PrivateKey::new(self.next_id(), StaticSecret::random_from_rng(rng), false);
            created.push(key.public);
            removed.extend(self.one_time.push(key));
        }
        (created, removed)
    }

    /// The one-time keys not yet published.
    pub(crate) fn unpublished_one_time(&self) -> impl Iterator<Item = &PrivateKey> {
        self.one_time.keys.iter().filter(|k| !k.published)
    }

    /// Makes a new fallback key current at `now_ms`; returns the public key
    /// of an older previous key that was dropped.
    pub(crate) fn rotate_fallback<R: rand::CryptoRng + ?Sized>(
        &mut self,
        now_ms: u64,
        rng: &mut R,
    ) -> Option<Curve25519PublicKey> {
        let key = PrivateKey::new(self.next_id(), StaticSecret::random_from_rng(rng), false);
        self.fallback.rotate(key, now_ms)
    }

    /// The current fallback key, published or not.
    pub(crate) fn current_fallback(&self) -> Option<&PrivateKey> {
        self.fallback.current.as_ref().map(|k| &k.key)
    }

    /// Whether the current fallback key created a session.
    pub(crate) fn fallback_used(&self) -> bool {
        self.fallback
            .current
            .as_ref()
            .is_some_and(FallbackKey::used)
    }

    /// Marks exactly the keys named (id, public key, whether a fallback key)
    /// as published; keys not held are ignored.
    pub(crate) fn mark_published(
        &mut self,
        keys: impl IntoIterator<Item = (KeyId, Curve25519PublicKey, bool)>,
    ) {
        for (id, public, fallback) in keys {
            if fallback {
                if let Some(k) = self.fallback.find_mut(&public).filter(|k| k.key.id == id) {
                    k.key.published = true;
                }
            } else if let Some(k) = self
                .one_time
                .keys
                .iter_mut()
                .find(|k| k.id == id && k.public == public)
            {
                k.published = true;
            }
        }
    }

    /// The private key a pre-key message names, and the use to record once
    /// the session it creates (with id `session_id`) is committed. Refuses
    /// a fallback-key session that was already created (a replay) and a
    /// fallback key at its bound. Changes nothing.
    pub(crate) fn inbound(
        &self,
        named: &Curve25519PublicKey,
        session_id: &[u8; 32],
    ) -> Result<(&StaticSecret, KeyUse), AccountError> {
        if let Some(key) = self.one_time.find(named) {
            return Ok((&key.secret, KeyUse::OneTime(*named)));
        }
        let fallback = self
            .fallback
            .find(named)
            .ok_or(AccountError::UnknownOneTimeKey)?;
        if fallback.sessions.contains(session_id) {
            return Err(AccountError::FallbackKeyReplay);
        }
        if fallback.sessions.len() >= MAX_FALLBACK_SESSIONS {
            return Err(AccountError::FallbackKeyExhausted);
        }
        Ok((
            &fallback.key.secret,
            KeyUse::Fallback {
                key: *named,
                session: *session_id,
            },
        ))
    }

    /// Records a committed inbound session's key use.
    pub(crate) fn commit(&mut self, used: KeyUse) {
        match used {
            KeyUse::OneTime(key) => {
                self.one_time.remove(&key);
            }
            KeyUse::Fallback { key, session } => {
                if let Some(fallback) = self.fallback.find_mut(&key) {
                    fallback.sessions.insert(session);
                }
            }
        }
    }

    /// Contents: next key id, the one-time keys, then the current and the
    /// previous fallback key, each with its retirement time and sessions
    /// (PROTOCOL.md 8.2).
    pub(crate) fn write(&self, w: &mut Writer) {
        fn key(w: &mut Writer, k: &PrivateKey) {
            w.u64(k.id.0).bool(k.published).bytes(k.secret.as_bytes());
        }
        w.u64(self.next_key_id).count(self.one_time.keys.len());
        for k in &self.one_time.keys {
            key(w, k);
        }
        for slot in [&self.fallback.current, &self.fallback.previous] {
            match slot {
                Some(k) => {
                    w.bool(true);
                    key(w, &k.key);
                    w.u64(k.retired_ms.unwrap_or(u64::MAX))
                        .count(k.sessions.len());
                    for session in &k.sessions {
                        w.bytes(session);
                    }
                }
                None => {
                    w.bool(false);
                }
            }
        }
    }

    /// The mirror of [`PreKeys::write`], strict.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        fn key(r: &mut Reader<'_>) -> Result<PrivateKey, DecodeError> {
            let id = KeyId(r.u64("key id")?);
            let published = r.bool("published flag")?;
            let secret = Secret::new(r.array::<32>("private key")?);
            Ok(PrivateKey::new(
                id,
                StaticSecret::from(*secret.expose()),
                published,
            ))
        }
        fn fallback(
            r: &mut Reader<'_>,
            flag: &'static str,
        ) -> Result<Option<FallbackKey>, DecodeError> {
            if !r.bool(flag)? {
                return Ok(None);
            }
            let mut k = FallbackKey::new(key(r)?);
            k.retired_ms = Some(r.u64("fallback retired at")?).filter(|&at| at != u64::MAX);
            for _ in 0..r.count(MAX_FALLBACK_SESSIONS, "fallback sessions")? {
                if !k.sessions.insert(r.array("fallback session id")?) {
                    return Err(DecodeError::InvalidValue("fallback sessions"));
                }
            }
            Ok(Some(k))
        }
        let next_key_id = r.u64("next key id")?;
        let count = r.count(MAX_ONE_TIME_KEYS, "one-time keys")?;
        let mut one_time = OneTimeKeys::default();
        for _ in 0..count {
            one_time.keys.push_back(key(r)?);
        }
        let current = fallback(r, "fallback flag")?;
        let previous = fallback(r, "previous fallback flag")?;
        if current.as_ref().is_some_and(|k| k.retired_ms.is_some())
            || previous.as_ref().is_some_and(|k| k.retired_ms.is_none())
        {
            return Err(DecodeError::InvalidValue("fallback retirement"));
        }
        Ok(Self {
            next_key_id,
            one_time,
            fallback: FallbackKeys { current, previous },
        })
    }
}

//! [`OlmAccount`]: a Matrix device's long-term Olm identity (Ed25519 and
//! Curve25519 keys), its one-time and fallback keys, and the factory for
//! [`OlmSession`]s.
//!
//! Guarantees: private keys leave only inside the encrypted pickle; the
//! one-time key store is bounded ([`OLM_MAX_ONE_TIME_KEYS`], oldest dropped
//! first); a one-time key is removed only once the session it started has
//! decrypted its first message; signatures are plain Ed25519 over the bytes
//! given (Matrix signs canonical JSON), and an account imported from libolm
//! keeps signing with libolm's expanded key.

use std::collections::VecDeque;
use std::fmt;

use x25519_dalek::StaticSecret;

use super::message::OlmPreKeyMessage;
use super::session::OlmSession;
use crate::account::{AccountError, KeyId};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::OLM_MAX_ONE_TIME_KEYS;
use crate::crypto::{Ed25519Secret, Secret, os_rng};
use crate::keys::{Curve25519PublicKey, Ed25519Signature, IdentityKeys};
use crate::pickle::{Generation, PickleKind, pickle_methods, pickled};
use crate::plaintext::Plaintext;
use crate::session::SessionError;

/// One private Curve25519 key of the account.
pub(crate) struct OlmKey {
    pub(crate) id: KeyId,
    pub(crate) secret: Box<StaticSecret>,
    pub(crate) public: Curve25519PublicKey,
    pub(crate) published: bool,
}

impl OlmKey {
    pub(crate) fn new(id: KeyId, secret: StaticSecret, published: bool) -> Self {
        Self {
            id,
            public: Curve25519PublicKey::from(&secret),
            secret: Box::new(secret),
            published,
        }
    }
}

/// A new inbound Olm session and the plaintext of its first message.
pub struct OlmInboundCreation {
    /// The session, ready to reply.
    pub session: OlmSession,
    /// The first message's plaintext (wiped when dropped).
    pub plaintext: Plaintext,
}

impl fmt::Debug for OlmInboundCreation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OlmInboundCreation")
            .field("session", &self.session)
            .field("plaintext_len", &self.plaintext.len())
            .finish()
    }
}

/// A Matrix device's Olm identity and one-time keys.
pub struct OlmAccount {
    pub(crate) signing: Ed25519Secret,
    pub(crate) curve_secret: Box<StaticSecret>,
    pub(crate) curve25519: Curve25519PublicKey,
    pub(crate) next_key_id: u64,
    pub(crate) one_time_keys: VecDeque<OlmKey>,
    pub(crate) fallback: Option<OlmKey>,
    pub(crate) previous_fallback: Option<OlmKey>,
    pub(crate) generation: Generation,
}

impl Default for OlmAccount {
    fn default() -> Self {
        Self::new()
    }
}

impl OlmAccount {
    /// A new identity from the operating system's generator.
    pub fn new() -> Self {
        Self::new_with_rng(&mut os_rng())
    }

    /// A new identity from `rng`.
    pub fn new_with_rng<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let signing = Ed25519Secret::generate(rng);
        Self::from_parts(signing, StaticSecret::random_from_rng(rng))
    }

    pub(crate) fn from_parts(signing: Ed25519Secret, curve_secret: StaticSecret) -> Self {
        Self {
            signing,
            curve25519: Curve25519PublicKey::from(&curve_secret),
            curve_secret: Box::new(curve_secret),
            next_key_id: 0,
            one_time_keys: VecDeque::new(),
            fallback: None,
            previous_fallback: None,
            generation: Generation::default(),
        }
    }

    /// The device's identity keys (`ed25519:<device>` and
    /// `curve25519:<device>` in Matrix device keys).
    pub fn identity_keys(&self) -> IdentityKeys {
        IdentityKeys {
            ed25519: self.signing.public(),
            curve25519: self.curve25519,
        }
    }

    /// Signs `message` with the device's Ed25519 key: plain Ed25519, as
    /// Matrix signs canonical JSON.
    pub fn sign(&self, message: &[u8]) -> Ed25519Signature {
        self.signing.sign(message)
    }

    fn next_id(&mut self) -> KeyId {
        let id = KeyId(self.next_key_id);
        self.next_key_id = self.next_key_id.wrapping_add(1);
        id
    }

    /// Generates `count` one-time keys (at most [`OLM_MAX_ONE_TIME_KEYS`]),
    /// returning the public keys dropped to make room, oldest first.
    pub fn generate_one_time_keys(&mut self, count: usize) -> Vec<Curve25519PublicKey> {
        self.generate_one_time_keys_with_rng(count, &mut os_rng())
    }

    /// [`OlmAccount::generate_one_time_keys`] with a caller-supplied
    /// generator.
    pub fn generate_one_time_keys_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        count: usize,
        rng: &mut R,
    ) -> Vec<Curve25519PublicKey> {
        let mut removed = Vec::new();
        for _ in 0..count.min(OLM_MAX_ONE_TIME_KEYS) {
            let id = self.next_id();
            self.one_time_keys.push_back(OlmKey::new(
                id,
                StaticSecret::random_from_rng(rng),
                false,
            ));
            while self.one_time_keys.len() > OLM_MAX_ONE_TIME_KEYS {
                removed.extend(self.one_time_keys.pop_front().map(|k| k.public));
            }
        }
        removed
    }

    /// The one-time keys not yet published, with their ids (Matrix names
    /// each `signed_curve25519:<id>`).
    pub fn one_time_keys(&self) -> Vec<(KeyId, Curve25519PublicKey)> {
        self.one_time_keys
            .iter()
            .filter(|k| !k.published)
            .map(|k| (k.id, k.public))
            .collect()
    }

    /// How many one-time private keys the account holds.
    pub fn stored_one_time_key_count(&self) -> usize {
        self.one_time_keys.len()
    }

    /// Generates a new fallback key; the current one becomes the previous
    /// one. Returns the previous key that was dropped, if any.
    pub fn generate_fallback_key(&mut self) -> Option<Curve25519PublicKey> {
        self.generate_fallback_key_with_rng(&mut os_rng())
    }

    /// [`OlmAccount::generate_fallback_key`] with a caller-supplied
    /// generator.
    pub fn generate_fallback_key_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Option<Curve25519PublicKey> {
        let id = self.next_id();
        let key = OlmKey::new(id, StaticSecret::random_from_rng(rng), false);
        let dropped = self.previous_fallback.take().map(|k| k.public);
        self.previous_fallback = self.fallback.replace(key);
        dropped
    }

    /// The current fallback key if it has not been published.
    pub fn fallback_key(&self) -> Option<(KeyId, Curve25519PublicKey)> {
        self.fallback
            .as_ref()
            .filter(|k| !k.published)
            .map(|k| (k.id, k.public))
    }

    /// Forgets the previous fallback key. Returns whether there was one.
    pub fn forget_fallback_key(&mut self) -> bool {
        self.previous_fallback.take().is_some()
    }

    /// Marks every one-time key and the fallback key as published.
    pub fn mark_keys_as_published(&mut self) {
        for key in &mut self.one_time_keys {
            key.published = true;
        }
        if let Some(key) = &mut self.fallback {
            key.published = true;
        }
    }

    /// Starts an Olm session with the device whose Curve25519 identity key
    /// is `identity_key`, from one of its one-time (or fallback) keys. The
    /// caller has checked the key's signature (Matrix signs the key's
    /// canonical JSON, which is above this layer).
    pub fn create_outbound_session(
        &self,
        identity_key: Curve25519PublicKey,
        one_time_key: Curve25519PublicKey,
    ) -> Result<OlmSession, SessionError> {
        self.create_outbound_session_with_rng(identity_key, one_time_key, &mut os_rng())
    }

    /// [`OlmAccount::create_outbound_session`] with a caller-supplied
    /// generator.
    pub fn create_outbound_session_with_rng<R: rand::CryptoRng + ?Sized>(
        &self,
        identity_key: Curve25519PublicKey,
        one_time_key: Curve25519PublicKey,
        rng: &mut R,
    ) -> Result<OlmSession, SessionError> {
        OlmSession::new_outbound(
            rng,
            &self.curve_secret,
            self.curve25519,
            identity_key,
            one_time_key,
        )
    }

    /// Creates the responder's session from a pre-key message sent by the
    /// device whose identity key is `identity_key`, and decrypts its first
    /// message. A pre-key message claiming another identity key is refused
    /// ([`SessionError::SessionMismatch`]); the one-time key is removed only
    /// if everything succeeds (fallback keys stay).
    pub fn create_inbound_session(
        &mut self,
        identity_key: Curve25519PublicKey,
        message: &OlmPreKeyMessage,
    ) -> Result<OlmInboundCreation, AccountError> {
        if message.identity_key != identity_key {
            return Err(AccountError::Session(SessionError::SessionMismatch));
        }
        let named = message.one_time_key;
        let (secret, consume) = match self.one_time_keys.iter().find(|k| k.public == named) {
            Some(key) => (&key.secret, true),
            None => match [&self.fallback, &self.previous_fallback]
                .into_iter()
                .flatten()
                .find(|k| k.public == named)
            {
                Some(key) => (&key.secret, false),
                None => return Err(AccountError::UnknownOneTimeKey),
            },
        };
        let (session, plaintext) =
            OlmSession::new_inbound(&self.curve_secret, self.curve25519, secret, message)?;
        if consume {
            self.one_time_keys.retain(|k| k.public != named);
        }
        Ok(OlmInboundCreation { session, plaintext })
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        fn key(w: &mut Writer, k: &OlmKey) {
            w.u64(k.id.0).bool(k.published).bytes(k.secret.as_bytes());
        }
        w.u8(1);
        match (self.signing.seed(), self.signing.expanded()) {
            (Some(seed), _) => {
                w.u8(0).bytes(seed);
            }
            // An imported libolm key: only its expanded form exists.
            (None, Some(expanded)) => {
                w.u8(1).bytes(expanded);
            }
            (None, None) => {
                w.u8(2);
            }
        }
        w.bytes(self.curve_secret.as_bytes())
            .u64(self.next_key_id)
            .count(self.one_time_keys.len());
        for k in &self.one_time_keys {
            key(w, k);
        }
        for slot in [&self.fallback, &self.previous_fallback] {
            match slot {
                Some(k) => {
                    w.bool(true);
                    key(w, k);
                }
                None => {
                    w.bool(false);
                }
            }
        }
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        fn key(r: &mut Reader<'_>) -> Result<OlmKey, DecodeError> {
            let id = KeyId(r.u64("key id")?);
            let published = r.bool("published flag")?;
            let secret = Secret::new(r.array::<32>("private key")?);
            Ok(OlmKey::new(
                id,
                StaticSecret::from(*secret.expose()),
                published,
            ))
        }
        let format = r.u8("olm account format")?;
        if format != 1 {
            return Err(DecodeError::UnknownVersion(format));
        }
        let signing = match r.u8("signing key form")? {
            0 => Ed25519Secret::from_seed(Secret::new(r.array::<32>("signing key")?).expose()),
            1 => Ed25519Secret::from_expanded(
                Secret::new(r.array::<64>("expanded signing key")?).expose(),
            ),
            _ => return Err(DecodeError::InvalidValue("signing key form")),
        };
        let curve = StaticSecret::from(*Secret::new(r.array::<32>("identity key")?).expose());
        let mut account = Self::from_parts(signing, curve);
        account.next_key_id = r.u64("next key id")?;
        let count = r.count(OLM_MAX_ONE_TIME_KEYS, "one-time keys")?;
        for _ in 0..count {
            account.one_time_keys.push_back(key(r)?);
        }
        account.fallback = if r.bool("fallback flag")? {
            Some(key(r)?)
        } else {
            None
        };
        account.previous_fallback = if r.bool("previous fallback flag")? {
            Some(key(r)?)
        } else {
            None
        };
        Ok(account)
    }
}

pickle_methods!(OlmAccount);

pickled!(OlmAccount, PickleKind::OlmAccount);

impl fmt::Debug for OlmAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OlmAccount")
            .field("identity_keys", &self.identity_keys())
            .field("one_time_keys", &self.one_time_keys.len())
            .field("fallback_key", &self.fallback.as_ref().map(|k| k.public))
            .finish_non_exhaustive()
    }
}

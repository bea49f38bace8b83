//! [`OlmAccount`]: a Matrix device's long-term Olm identity (Ed25519 and
//! Curve25519 keys), its one-time and fallback keys, and the factory for
//! [`OlmSession`]s.
//!
//! Guarantees: private keys leave only inside the encrypted pickle; its
//! one-time and fallback keys follow exactly the rules of the native
//! [`crate::Account`] (one implementation, `account/pre_keys.rs`): the
//! one-time key store is bounded ([`OLM_MAX_ONE_TIME_KEYS`], oldest dropped
//! first); a one-time key is removed only once the session it started has
//! decrypted its first message; a fallback key remembers the sessions it
//! created, so a replayed pre-key message cannot create one again, and a
//! replaced fallback key is forgotten after a grace period; exactly the keys
//! handed out are marked published; signatures are plain Ed25519 over the
//! bytes given (Matrix signs canonical JSON), and an account imported from
//! libolm keeps signing with libolm's expanded key.

use std::fmt;

use x25519_dalek::StaticSecret;

use super::message::OlmPreKeyMessage;
use super::session::OlmSession;
use crate::account::{AccountError, KeyId, PreKeys};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::OLM_MAX_ONE_TIME_KEYS;
use crate::crypto::{Ed25519Secret, Secret, os_rng};
use crate::keys::{Curve25519PublicKey, Ed25519Signature, IdentityKeys};
use crate::pickle::{Generation, PickleKind, pickle_methods, pickled};
use crate::plaintext::Plaintext;
use crate::session::SessionError;

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
    pub(crate) keys: PreKeys,
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
            keys: PreKeys::default(),
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
        self.keys
            .generate_one_time(count.min(OLM_MAX_ONE_TIME_KEYS), rng)
            .1
    }

    /// The one-time keys not yet published, with their ids (Matrix names
    /// each `signed_curve25519:<id>`).
    pub fn one_time_keys(&self) -> Vec<(KeyId, Curve25519PublicKey)> {
        self.keys
            .unpublished_one_time()
            .map(|k| (k.id, k.public))
            .collect()
    }

    /// How many one-time private keys the account holds.
    pub fn stored_one_time_key_count(&self) -> usize {
        self.keys.one_time.keys.len()
    }

    /// Replaces the fallback key with a new one at `now_ms` (milliseconds
    /// since the Unix epoch); the current one becomes the previous one, kept
    /// for [`crate::consts::FALLBACK_KEY_GRACE_MS`]. Returns an older previous
    /// key that was dropped, if any.
    pub fn rotate_fallback_key(&mut self, now_ms: u64) -> Option<Curve25519PublicKey> {
        self.rotate_fallback_key_with_rng(now_ms, &mut os_rng())
    }

    /// [`OlmAccount::rotate_fallback_key`] with a caller-supplied generator.
    pub fn rotate_fallback_key_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        now_ms: u64,
        rng: &mut R,
    ) -> Option<Curve25519PublicKey> {
        self.keys.rotate_fallback(now_ms, rng)
    }

    /// The current fallback key if it has not been published.
    pub fn fallback_key(&self) -> Option<(KeyId, Curve25519PublicKey)> {
        self.keys
            .current_fallback()
            .filter(|k| !k.published)
            .map(|k| (k.id, k.public))
    }

    /// Whether the current fallback key has started a session (replace it:
    /// [`OlmAccount::rotate_fallback_key`]).
    pub fn fallback_key_used(&self) -> bool {
        self.keys.fallback_used()
    }

    /// Forgets the previous fallback key if its grace period is over at
    /// `now_ms` (or the clock went back past the tolerance). Returns whether
    /// it was forgotten.
    pub fn forget_expired_fallback_key(&mut self, now_ms: u64) -> bool {
        self.keys.fallback.expire(now_ms)
    }

    /// Forgets the previous fallback key now. Returns whether there was one.
    pub fn forget_fallback_key(&mut self) -> bool {
        self.keys.fallback.previous.take().is_some()
    }

    /// Marks exactly `keys` (one-time or fallback keys this account handed
    /// out, by id and public key) as published; keys generated after those
    /// were handed out stay unpublished, and keys not held are ignored.
    pub fn mark_keys_as_published(&mut self, keys: &[(KeyId, Curve25519PublicKey)]) {
        let fallback = |public: &Curve25519PublicKey| self.keys.fallback.find(public).is_some();
        let marks: Vec<_> = keys
            .iter()
            .map(|(id, public)| (*id, *public, fallback(public)))
            .collect();
        self.keys.mark_published(marks);
    }

    /// Forgets every one-time key (after restoring an older pickle; see
    /// PROTOCOL.md 8.4). Returns how many were dropped.
    pub fn forget_one_time_keys(&mut self) -> usize {
        let dropped = self.keys.one_time.keys.len();
        self.keys.one_time.keys.clear();
        dropped
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
    /// if everything succeeds; a fallback key stays, remembering the session
    /// so that a replay of the message is refused
    /// ([`AccountError::FallbackKeyReplay`]).
    pub fn create_inbound_session(
        &mut self,
        identity_key: Curve25519PublicKey,
        message: &OlmPreKeyMessage,
    ) -> Result<OlmInboundCreation, AccountError> {
        if message.identity_key != identity_key {
            return Err(AccountError::Session(SessionError::SessionMismatch));
        }
        let (secret, used) = self
            .keys
            .inbound(&message.one_time_key, message.session_id().as_bytes())?;
        let (session, plaintext) =
            OlmSession::new_inbound(&self.curve_secret, self.curve25519, secret, message)?;
        self.keys.commit(used);
        Ok(OlmInboundCreation { session, plaintext })
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.u8(2);
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
        w.bytes(self.curve_secret.as_bytes());
        self.keys.write(w);
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let format = r.u8("olm account format")?;
        if format != 2 {
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
        account.keys = PreKeys::read(r)?;
        if account.keys.one_time.keys.len() > OLM_MAX_ONE_TIME_KEYS {
            return Err(DecodeError::InvalidValue("one-time keys"));
        }
        Ok(account)
    }
}

pickle_methods!(OlmAccount);

pickled!(OlmAccount, PickleKind::OlmAccount);

impl fmt::Debug for OlmAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OlmAccount")
            .field("identity_keys", &self.identity_keys())
            .field("one_time_keys", &self.keys.one_time.keys.len())
            .field(
                "fallback_key",
                &self.keys.current_fallback().map(|k| k.public),
            )
            .finish_non_exhaustive()
    }
}

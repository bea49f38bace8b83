//! One device's long-term identity: its Ed25519 signing key and X25519
//! identity key, its one-time keys and fallback keys, and the signed objects
//! it publishes; the factory for pairwise sessions.
//!
//! Guarantees: private keys never leave the account except inside its
//! encrypted pickle; the one-time key store is bounded and drops (and
//! reports) its oldest key first; an outbound session is created only from
//! a verified device and a one-time key whose signature verifies strictly;
//! an inbound session consumes its one-time key only after its first message
//! decrypts.

mod one_time_keys;
mod pre_keys;
mod signed;
#[cfg(test)]
mod tests;

use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use thiserror::Error;
use x25519_dalek::StaticSecret;

pub use self::signed::{DeviceKeys, KeyId, PROTOCOL_V2, SelfSignedDevice, SignedOneTimeKey};

pub(crate) use self::one_time_keys::{FallbackKey, PrivateKey};
pub(crate) use self::pre_keys::{KeyUse, PreKeys};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::MAX_ONE_TIME_KEYS;
use crate::crypto::{Secret, os_rng};
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature, IdentityKeys};
use crate::olm::{OlmInboundCreation, OlmPreKeyMessage, OlmSession};
use crate::pickle::{Generation, PickleKind, Pickled, pickle_methods};
use crate::plaintext::Plaintext;
use crate::session::{LocalIdentity, PreKeyMessage, Session, SessionError};

/// Why an account operation failed. The account is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AccountError {
    /// A one-time or fallback key's signature does not verify.
    #[error("one-time key signature does not verify")]
    BadOneTimeKeySignature,
    /// A device-key bundle's signature does not verify.
    #[error("device-key signature does not verify")]
    BadDeviceKeysSignature,
    /// A device-key bundle is malformed.
    #[error("invalid device keys: {0}")]
    InvalidDeviceKeys(&'static str),
    /// A pre-key message names a one-time key this account does not hold
    /// (never generated, already used, or dropped).
    #[error("pre-key message names an unknown one-time key")]
    UnknownOneTimeKey,
    /// A pre-key message would create, from a fallback key, a session that
    /// fallback key already created: a replay.
    #[error("pre-key message replays a session already created from the fallback key")]
    FallbackKeyReplay,
    /// The fallback key has created [`crate::consts::MAX_FALLBACK_SESSIONS`]
    /// sessions and refuses more until it is replaced.
    #[error("fallback key has created its maximum of sessions; rotate it")]
    FallbackKeyExhausted,
    /// The session layer rejected the handshake or the first message.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Keys created by [`Account::generate_one_time_keys`], and any older keys it
/// had to drop to stay within [`MAX_ONE_TIME_KEYS`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OneTimeKeysGenerated {
    /// Public keys created, oldest first.
    pub created: Vec<Curve25519PublicKey>,
    /// Public keys dropped to make room, oldest first. If any was already
    /// published, the server may still hand it out; sessions started from it
    /// will fail with [`AccountError::UnknownOneTimeKey`].
    pub removed: Vec<Curve25519PublicKey>,
}

/// A new inbound session and the plaintext of the message that created it.
///
/// `Debug` shows the plaintext's length, never its bytes (it may carry a
/// room key).
pub struct InboundCreation {
    /// The session, ready to encrypt replies.
    pub session: Session,
    /// The first message's plaintext (wiped when dropped).
    pub plaintext: Plaintext,
}

impl fmt::Debug for InboundCreation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundCreation")
            .field("session", &self.session)
            .field("plaintext_len", &self.plaintext.len())
            .finish()
    }
}

/// A device's long-term identity and one-time keys.
pub struct Account {
    // Private keys are boxed so that moving the account never leaves copies
    // behind; both types wipe themselves on drop.
    signing: Box<SigningKey>,
    ed25519: Ed25519PublicKey,
    curve_secret: Box<StaticSecret>,
    curve25519: Curve25519PublicKey,
    keys: PreKeys,
    generation: Generation,
}

impl Default for Account {
    fn default() -> Self {
        Self::new()
    }
}

impl Account {
    /// A new device identity from the operating system's generator.
    pub fn new() -> Self {
        Self::new_with_rng(&mut os_rng())
    }

    /// A new device identity from `rng` (deterministic in tests).
    pub fn new_with_rng<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let signing = SigningKey::generate(rng);
        let curve_secret = StaticSecret::random_from_rng(rng);
        Self::from_parts(signing, curve_secret, PreKeys::default())
    }

    fn from_parts(signing: SigningKey, curve_secret: StaticSecret, keys: PreKeys) -> Self {
        Self {
            ed25519: Ed25519PublicKey::from_verifying_key(signing.verifying_key()),
            curve25519: Curve25519PublicKey::from(&curve_secret),
            signing: Box::new(signing),
            curve_secret: Box::new(curve_secret),
            keys,
            generation: Generation::default(),
        }
    }

    /// The device's public identity keys.
    pub fn identity_keys(&self) -> IdentityKeys {
        IdentityKeys {
            ed25519: self.ed25519,
            curve25519: self.curve25519,
        }
    }

    /// Signs an app-defined `message` with the device's Ed25519 key.
    ///
    /// The signature covers a fixed context label followed by `message`
    /// (PROTOCOL.md), so no app signature can ever be mistaken for one of the
    /// protocol's own (key bundles, one-time keys, session bindings). Check
    /// it with [`Ed25519PublicKey::verify_app_message`].
    pub fn sign(&self, message: &[u8]) -> Ed25519Signature {
        self.sign_raw(&[crate::crypto::label::APP_MESSAGE, message].concat())
    }

    /// Signs protocol bytes (which carry their own context label).
    pub(crate) fn sign_raw(&self, bytes: &[u8]) -> Ed25519Signature {
        Ed25519Signature::from_signature(self.signing.sign(bytes))
    }

    /// The signed device-key bundle to publish for `user_id`/`device_id`
    /// (each 1 to 255 bytes), advertising protocol version 1.
    pub fn device_keys(&self, user_id: &str, device_id: &str) -> Result<DeviceKeys, AccountError> {
        let keys = self.identity_keys();
        let protocols = vec![PROTOCOL_V2.to_owned()];
        let bytes = DeviceKeys::signed_bytes(user_id, device_id, &keys, &protocols)?;
        Ok(DeviceKeys {
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            keys,
            protocols,
            signature: self.sign_raw(&bytes),
        })
    }

    /// Generates `count` new one-time keys (at most [`MAX_ONE_TIME_KEYS`] at
    /// once), dropping the oldest stored keys if the store would overflow.
    pub fn generate_one_time_keys(&mut self, count: usize) -> OneTimeKeysGenerated {
        self.generate_one_time_keys_with_rng(count, &mut os_rng())
    }

    /// [`Account::generate_one_time_keys`] with a caller-supplied generator.
    pub fn generate_one_time_keys_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        count: usize,
        rng: &mut R,
    ) -> OneTimeKeysGenerated {
        let (created, removed) = self.keys.generate_one_time(count, rng);
        OneTimeKeysGenerated { created, removed }
    }

    /// The one-time keys not yet marked as published, signed.
    pub fn one_time_keys(&self) -> Vec<SignedOneTimeKey> {
        self.keys
            .unpublished_one_time()
            .map(|k| self.signed_key(k, false))
            .collect()
    }

    /// How many one-time private keys the account holds (published or not).
    pub fn stored_one_time_key_count(&self) -> usize {
        self.keys.one_time.keys.len()
    }

    /// The most one-time keys the account keeps; publish at most this many.
    pub const fn max_one_time_keys() -> usize {
        MAX_ONE_TIME_KEYS
    }

    /// Marks exactly `keys` (one-time and fallback keys this account
    /// handed out, for example from [`Account::one_time_keys`] and
    /// [`Account::unpublished_fallback_key`]) as published. Keys generated
    /// after those were handed out stay unpublished, so a key made on
    /// another thread between fetching and marking is never lost. Keys this
    /// account does not hold are ignored.
    pub fn mark_keys_as_published(&mut self, keys: &[SignedOneTimeKey]) {
        self.keys
            .mark_published(keys.iter().map(|k| (k.key_id, k.key, k.fallback)));
    }

    /// Replaces the fallback key with a new one (at `now_ms`, milliseconds
    /// since the Unix epoch); the current one becomes the previous one and is
    /// kept for [`crate::consts::FALLBACK_KEY_GRACE_MS`]. Returns the public
    /// key of an older previous key that was dropped.
    pub fn rotate_fallback_key(&mut self, now_ms: u64) -> Option<Curve25519PublicKey> {
        self.rotate_fallback_key_with_rng(now_ms, &mut os_rng())
    }

    /// [`Account::rotate_fallback_key`] with a caller-supplied generator.
    pub fn rotate_fallback_key_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        now_ms: u64,
        rng: &mut R,
    ) -> Option<Curve25519PublicKey> {
        self.keys.rotate_fallback(now_ms, rng)
    }

    /// Whether the current fallback key has started a session (and should
    /// be replaced: see [`Account::rotate_fallback_key`]); false without one.
    pub fn fallback_key_used(&self) -> bool {
        self.keys.fallback_used()
    }

    /// Forgets the previous fallback key if its grace period is over at
    /// `now_ms` (or the clock went back past the tolerance). Returns whether
    /// it was forgotten.
    pub fn forget_expired_fallback_key(&mut self, now_ms: u64) -> bool {
        self.keys.fallback.expire(now_ms)
    }

    /// The current fallback key, signed, if it has not been published yet.
    pub fn unpublished_fallback_key(&self) -> Option<SignedOneTimeKey> {
        self.keys
            .current_fallback()
            .filter(|k| !k.published)
            .map(|k| self.signed_key(k, true))
    }

    /// The current fallback key, signed, published or not.
    pub fn fallback_key(&self) -> Option<SignedOneTimeKey> {
        self.keys
            .current_fallback()
            .map(|k| self.signed_key(k, true))
    }

    /// Forgets the previous fallback key now, whatever its grace period.
    /// Returns whether there was one.
    pub fn forget_previous_fallback_key(&mut self) -> bool {
        self.keys.fallback.previous.take().is_some()
    }

    /// Forgets every one-time key (published or not). After restoring an
    /// older pickle, keys consumed since may be back: dropping them all (and
    /// publishing new ones) keeps a replayed pre-key message from creating a
    /// session twice. Returns how many were dropped.
    pub fn forget_one_time_keys(&mut self) -> usize {
        let dropped = self.keys.one_time.keys.len();
        self.keys.one_time.keys.clear();
        dropped
    }

    fn signed_key(&self, key: &PrivateKey, fallback: bool) -> SignedOneTimeKey {
        let bytes = SignedOneTimeKey::signed_bytes(key.id, &key.public, fallback);
        SignedOneTimeKey {
            key_id: key.id,
            key: key.public,
            fallback,
            signature: self.sign_raw(&bytes),
        }
    }

    fn local_identity(&self) -> LocalIdentity<'_> {
        LocalIdentity {
            curve_secret: &self.curve_secret,
            keys: self.identity_keys(),
            signing: &self.signing,
        }
    }

    /// Starts a session with `peer` from one of its signed one-time (or
    /// fallback) keys, verifying the key's signature first.
    pub fn create_outbound_session(
        &self,
        peer: &SelfSignedDevice,
        one_time_key: &SignedOneTimeKey,
    ) -> Result<Session, AccountError> {
        self.create_outbound_session_with_rng(peer, one_time_key, &mut os_rng())
    }

    /// [`Account::create_outbound_session`] with a caller-supplied generator.
    pub fn create_outbound_session_with_rng<R: rand::CryptoRng + ?Sized>(
        &self,
        peer: &SelfSignedDevice,
        one_time_key: &SignedOneTimeKey,
        rng: &mut R,
    ) -> Result<Session, AccountError> {
        let peer_keys = peer.identity_keys();
        one_time_key.verify(&peer_keys.ed25519)?;
        Ok(Session::new_outbound(
            rng,
            &self.local_identity(),
            peer_keys,
            one_time_key.key,
        )?)
    }

    /// Creates the responder's session from a pre-key message and decrypts
    /// its first message. The one-time key it names is removed only if that
    /// succeeds; a fallback key is kept, and remembers the session so that a
    /// replay of the message is refused ([`AccountError::FallbackKeyReplay`]).
    pub fn create_inbound_session(
        &mut self,
        message: &PreKeyMessage,
    ) -> Result<InboundCreation, AccountError> {
        self.create_inbound_session_with_rng(message, &mut os_rng())
    }

    /// [`Account::create_inbound_session`] with a caller-supplied generator.
    pub fn create_inbound_session_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        message: &PreKeyMessage,
        rng: &mut R,
    ) -> Result<InboundCreation, AccountError> {
        let (creation, used) = self.stage_inbound_session(message, rng)?;
        self.commit_key_use(used);
        Ok(creation)
    }

    /// Builds the inbound session without changing the account; returns
    /// what to record once the caller commits ([`Account::commit_key_use`]).
    pub(crate) fn stage_inbound_session<R: rand::CryptoRng + ?Sized>(
        &self,
        message: &PreKeyMessage,
        rng: &mut R,
    ) -> Result<(InboundCreation, KeyUse), AccountError> {
        // Hashed once: the key lookup and the session use the same id.
        let id = message.session_id();
        let (secret, used) = self.inbound_key(&message.one_time_key(), id.as_bytes())?;
        let (session, plaintext) = Session::new_inbound(
            rng,
            &self.curve_secret,
            self.identity_keys(),
            secret,
            message,
            id,
        )?;
        Ok((InboundCreation { session, plaintext }, used))
    }

    /// Starts an Olm (`m.olm.v1.curve25519-aes-sha2`) session with the
    /// device whose Curve25519 identity key is `identity_key`, from one of its
    /// one-time (or fallback) keys whose signature the Matrix layer checked.
    /// The same identity serves both protocols.
    pub(crate) fn create_olm_outbound_session<R: rand::CryptoRng + ?Sized>(
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

    /// Builds the responder's Olm session from a pre-key message and
    /// decrypts its first message, changing nothing: the one-time or
    /// fallback key use is returned for [`Account::commit_key_use`], under
    /// the same rules (fallback replay refused) as the native protocol.
    pub(crate) fn stage_olm_inbound_session(
        &self,
        message: &OlmPreKeyMessage,
    ) -> Result<(OlmInboundCreation, KeyUse), AccountError> {
        let (secret, used) =
            self.inbound_key(&message.one_time_key(), message.session_id().as_bytes())?;
        let (session, plaintext) =
            OlmSession::new_inbound(&self.curve_secret, self.curve25519, secret, message)?;
        Ok((OlmInboundCreation { session, plaintext }, used))
    }

    /// The private key a pre-key message names (a one-time or fallback
    /// key), and the use to record once the session it creates (with id
    /// `session_id`) is committed. Refuses a fallback-key session that was
    /// already created (a replay) and a fallback key at its bound. Changes
    /// nothing; shared by every protocol's inbound session creation.
    pub(crate) fn inbound_key(
        &self,
        named: &Curve25519PublicKey,
        session_id: &[u8; 32],
    ) -> Result<(&StaticSecret, KeyUse), AccountError> {
        self.keys.inbound(named, session_id)
    }

    /// Records a committed inbound session's key use: removes the one-time
    /// key, or remembers the session on the fallback key.
    pub(crate) fn commit_key_use(&mut self, used: KeyUse) {
        self.keys.commit(used);
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.bytes(self.signing.as_bytes())
            .bytes(self.curve_secret.as_bytes());
        self.keys.write(w);
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let signing = SigningKey::from_bytes(Secret::new(r.array::<32>("signing key")?).expose());
        let curve_secret =
            StaticSecret::from(*Secret::new(r.array::<32>("identity key")?).expose());
        let keys = PreKeys::read(r)?;
        Ok(Self::from_parts(signing, curve_secret, keys))
    }
}

pickle_methods!(Account);

impl Pickled for Account {
    const KIND: PickleKind = PickleKind::Account;
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

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("identity_keys", &self.identity_keys())
            .field("one_time_keys", &self.keys.one_time.keys.len())
            .field(
                "fallback_key",
                &self.keys.current_fallback().map(|k| k.public),
            )
            .finish_non_exhaustive()
    }
}

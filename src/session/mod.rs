//! The pairwise session between two devices: a triple Diffie-Hellman
//! handshake followed by a Double Ratchet, with AES-256-GCM per message.
//!
//! What it owns: the root key, our sending chain and ratchet key pair, the
//! live receiving chain, and a bounded store of skipped message keys.
//!
//! What it promises:
//! - every X25519 result is contributory (a low-order peer key is an error);
//! - each message key encrypts or decrypts exactly one message, so a replayed
//!   message is an error;
//! - the associated data binds the protocol version, the session id, the
//!   message header and both identity keys;
//! - decryption is transactional: on any error the session is unchanged
//!   (changes are staged and committed only after the tag verifies);
//! - memory and work per message are bounded by [`crate::consts`].

mod chain;
mod message;
pub(crate) mod ratchet;
mod skipped;
#[cfg(test)]
mod tests;

use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use thiserror::Error;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

pub use self::message::{DeviceMessage, NormalMessage, PreKeyMessage, SessionId};

pub(crate) use self::chain::{ChainKey, RatchetKeyPair, RootKey, split_root_and_chain};
pub(crate) use self::skipped::{SkippedKey, SkippedKeys};

use self::chain::message_key;
use self::message::HEADER_LEN;
use self::ratchet::{DoubleRatchet, Header, ReceivingChain, SendingChain, Spec, dh};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{
    MAX_FORWARD_JUMP, MAX_PLAINTEXT_LEN, MAX_RECEIVING_CHAINS, MAX_SKIPPED_MESSAGE_KEYS,
    PROTOCOL_VERSION,
};
use crate::crypto::{Secret, hkdf, label, os_rng, sha256};
use crate::keys::{Curve25519PublicKey, Ed25519Signature, IdentityKeys};
use crate::pickle::{Generation, PickleError, PickleKey, PickleKind, Pickled, pickled};
use crate::plaintext::Plaintext;

/// Why a pairwise session operation failed. The session is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SessionError {
    /// The message bytes could not be decoded.
    #[error("message could not be decoded: {0}")]
    Decode(#[from] DecodeError),
    /// A pre-key message that starts a different session.
    #[error("pre-key message belongs to another session")]
    SessionMismatch,
    /// The message does not authenticate under this session: forged,
    /// altered, or meant for another session.
    #[error("message failed authentication")]
    Authentication,
    /// The key for this message of the live receiving chain was already used
    /// (a replay) or is no longer kept (it fell out of the bounded store). A
    /// replayed message of an earlier chain whose keys are gone cannot be told
    /// apart from a forgery and fails with [`SessionError::Authentication`].
    #[error("message key {counter} was already used or is no longer kept")]
    MessageKeyGone {
        /// The message's counter.
        counter: u32,
    },
    /// Reading the message would skip more message keys than allowed.
    #[error("message would skip {jump} message keys, more than the {max} allowed")]
    TooFarAhead {
        /// Chain steps the message would force.
        jump: u64,
        /// The bound, [`MAX_FORWARD_JUMP`].
        max: u32,
    },
    /// A peer key is a low-order point (the exchange would not be
    /// contributory).
    #[error("peer key is a low-order point")]
    LowOrderKey,
    /// The initiator's signature binding its Ed25519 key to the session does
    /// not verify.
    #[error("session binding signature does not verify")]
    BadBinding,
    /// The plaintext exceeds [`MAX_PLAINTEXT_LEN`].
    #[error("plaintext of {len} bytes exceeds the {max}-byte limit")]
    PlaintextTooLong {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The sending or receiving chain has used all 2^32 message indices.
    #[error("chain has no message indices left")]
    ChainExhausted,
}

/// Refuses a plaintext over [`MAX_PLAINTEXT_LEN`] (both pairwise
/// protocols).
pub(crate) fn check_plaintext(plaintext: &[u8]) -> Result<(), SessionError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        Err(SessionError::PlaintextTooLong {
            len: plaintext.len(),
            max: MAX_PLAINTEXT_LEN,
        })
    } else {
        Ok(())
    }
}

/// Which side started the session; fixes the order of identity keys in the
/// associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Initiator,
    Responder,
}

/// What the initiator repeats in every message until it has read a reply
/// (besides its identity keys, which the session keeps as `local`).
#[derive(Clone)]
struct PreKeyHeader {
    one_time_key: Curve25519PublicKey,
    base_key: Curve25519PublicKey,
    binding: Ed25519Signature,
}

/// The native protocol's ratchet: its own labels, the bounds in
/// [`crate::consts`], a previous-chain counter in every header (so only the
/// live receiving chain is kept), and the next sending chain made as soon
/// as the peer ratchets.
pub(crate) struct Native;

impl Spec for Native {
    const ROOT_INFO: &'static [u8] = label::ROOT;
    const CHAIN_MESSAGE: &'static [u8] = label::CHAIN_MESSAGE;
    const CHAIN_NEXT: &'static [u8] = label::CHAIN_NEXT;
    const MAX_SKIPPED_KEYS: usize = MAX_SKIPPED_MESSAGE_KEYS;
    const MAX_SKIPPED_PER_CHAIN: usize = MAX_SKIPPED_MESSAGE_KEYS;
    const MAX_SKIPPED_CHAINS: usize = MAX_RECEIVING_CHAINS;
    const RECEIVING_CHAINS: usize = 1;
    const MAX_JUMP: u32 = MAX_FORWARD_JUMP;
    const EAGER_SENDING: bool = true;
}

/// Our side of a triple Diffie-Hellman: identity secret and public keys, and
/// the Ed25519 key that signs the session binding.
pub(crate) struct LocalIdentity<'a> {
    pub(crate) curve_secret: &'a StaticSecret,
    pub(crate) keys: IdentityKeys,
    pub(crate) signing: &'a SigningKey,
}

/// A ratcheted, end-to-end encrypted channel with one peer device.
///
/// Created by [`crate::Account::create_outbound_session`] or
/// [`crate::Account::create_inbound_session`]; persisted only through
/// [`Session::pickle`].
pub struct Session {
    /// The protocol version, pinned when the session was created.
    version: u8,
    id: SessionId,
    role: Role,
    /// SHA-256 over version, session id and both devices' identity keys:
    /// the static part of every message's associated data.
    ad_binding: [u8; 32],
    /// Our own device's identity keys (the account the session belongs to).
    local: IdentityKeys,
    peer: IdentityKeys,
    pre_key: Option<PreKeyHeader>,
    ratchet: DoubleRatchet<Native>,
    generation: Generation,
}

/// Triple DH output → root key and first chain key, bound to the session id.
fn triple_dh_keys(id: &SessionId, dh: [Secret<32>; 3]) -> (RootKey, ChainKey) {
    let mut ikm = Zeroizing::new([0u8; 96]);
    for (slot, part) in ikm.chunks_exact_mut(32).zip(dh.iter()) {
        slot.copy_from_slice(part.expose());
    }
    let mut info = [0u8; label::TRIPLE_DH.len() + 32];
    let (context, session) = info.split_at_mut(label::TRIPLE_DH.len());
    context.copy_from_slice(label::TRIPLE_DH);
    session.copy_from_slice(id.as_bytes());
    split_root_and_chain(&hkdf::<64>(None, ikm.as_slice(), &info))
}

/// What the initiator signs to bind its Ed25519 key to the session and to
/// the responder's identity key.
fn binding_message(id: &SessionId, responder: &Curve25519PublicKey) -> [u8; BINDING_LEN] {
    let mut bytes = [0u8; BINDING_LEN];
    let (context, rest) = bytes.split_at_mut(label::SESSION_BINDING.len());
    let (session, key) = rest.split_at_mut(32);
    context.copy_from_slice(label::SESSION_BINDING);
    session.copy_from_slice(id.as_bytes());
    key.copy_from_slice(responder.as_bytes());
    bytes
}

/// Bytes the binding signature covers: label, session id, X25519 key.
const BINDING_LEN: usize = label::SESSION_BINDING.len() + 32 + 32;

/// The digest every message's associated data starts with: it binds the
/// protocol version, the session id and both devices' identity keys.
fn ad_binding(
    version: u8,
    id: &SessionId,
    initiator: &IdentityKeys,
    responder: &IdentityKeys,
) -> [u8; 32] {
    sha256(&[
        label::SESSION_AD,
        &[version],
        id.as_bytes(),
        &initiator.to_bytes(),
        &responder.to_bytes(),
    ])
}

/// Longest associated data: binding, kind, header, binding signature.
const AD_MAX_LEN: usize = 32 + 1 + HEADER_LEN + Ed25519Signature::LENGTH;

/// A message's associated data, built on the stack (it is computed for every
/// message, so it should not cost an allocation).
struct AssociatedData {
    bytes: [u8; AD_MAX_LEN],
    len: usize,
}

impl AssociatedData {
    fn push(&mut self, part: &[u8]) {
        let end = self.len.saturating_add(part.len()).min(AD_MAX_LEN);
        if let Some(slot) = self.bytes.get_mut(self.len..end) {
            slot.copy_from_slice(part.get(..end - self.len).unwrap_or_default());
        }
        self.len = end;
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// Message kinds as bound into the associated data.
const AD_KIND_PRE_KEY: u8 = 0;
const AD_KIND_NORMAL: u8 = 1;

impl Session {
    /// Starts a session as initiator (triple DH against the peer's identity
    /// and one-time key). The caller has verified the one-time key's
    /// signature.
    pub(crate) fn new_outbound<R: rand::CryptoRng + ?Sized>(
        rng: &mut R,
        ours: &LocalIdentity<'_>,
        peer: IdentityKeys,
        one_time_key: Curve25519PublicKey,
    ) -> Result<Self, SessionError> {
        let (base_secret, ratchet_key) = RatchetKeyPair::base_and_ratchet(rng);
        let base_key = Curve25519PublicKey::from(&base_secret);
        let id = SessionId::compute(&ours.keys, &base_key, &one_time_key);
        let shared = [
            dh(ours.curve_secret, &one_time_key)?,
            dh(&base_secret, &peer.curve25519)?,
            dh(&base_secret, &one_time_key)?,
        ];
        let (root, chain) = triple_dh_keys(&id, shared);
        let binding = Ed25519Signature::from_signature(
            ours.signing.sign(&binding_message(&id, &peer.curve25519)),
        );
        Ok(Self {
            version: PROTOCOL_VERSION,
            id,
            role: Role::Initiator,
            ad_binding: ad_binding(PROTOCOL_VERSION, &id, &ours.keys, &peer),
            local: ours.keys,
            peer,
            pre_key: Some(PreKeyHeader {
                one_time_key,
                base_key,
                binding,
            }),
            ratchet: DoubleRatchet::from_parts(
                root,
                Some(SendingChain {
                    key: ratchet_key,
                    chain,
                }),
                0,
                Default::default(),
                SkippedKeys::default(),
            ),
            generation: Generation::default(),
        })
    }

    /// Builds the responder's session from a pre-key message whose session
    /// id (6.2) is `id`, and decrypts its first message. Touches nothing
    /// outside the returned session.
    pub(crate) fn new_inbound<R: rand::CryptoRng + ?Sized>(
        rng: &mut R,
        our_curve_secret: &StaticSecret,
        ours: IdentityKeys,
        one_time_secret: &StaticSecret,
        message: &PreKeyMessage,
        id: SessionId,
    ) -> Result<(Self, Plaintext), SessionError> {
        let initiator = message.identity_keys;
        initiator
            .ed25519
            .verify(&binding_message(&id, &ours.curve25519), &message.binding)
            .map_err(|_| SessionError::BadBinding)?;
        let shared = [
            dh(one_time_secret, &initiator.curve25519)?,
            dh(our_curve_secret, &message.base_key)?,
            dh(one_time_secret, &message.base_key)?,
        ];
        let (root0, first_chain) = triple_dh_keys(&id, shared);
        let their_ratchet = message.message.ratchet_key;
        let our_ratchet = RatchetKeyPair::generate(rng);
        let (root, sending_chain) =
            root0.ratchet(&dh(&our_ratchet.secret, &their_ratchet)?, Native::ROOT_INFO);
        let mut session = Self {
            version: PROTOCOL_VERSION,
            id,
            role: Role::Responder,
            ad_binding: ad_binding(PROTOCOL_VERSION, &id, &initiator, &ours),
            local: ours,
            peer: initiator,
            pre_key: None,
            ratchet: DoubleRatchet::from_parts(
                root,
                Some(SendingChain {
                    key: our_ratchet,
                    chain: sending_chain,
                }),
                0,
                [ReceivingChain {
                    ratchet_key: their_ratchet,
                    chain: first_chain,
                }]
                .into(),
                SkippedKeys::default(),
            ),
            generation: Generation::default(),
        };
        let plaintext = session.decrypt_normal(&message.message, Some(&message.binding), rng)?;
        Ok((session, plaintext))
    }

    /// A full copy of the state, for staging a change that is committed only
    /// if everything after it succeeds. Deliberately not `Clone`: two live
    /// copies of a session would reuse message keys.
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            version: self.version,
            id: self.id,
            role: self.role,
            ad_binding: self.ad_binding,
            local: self.local,
            peer: self.peer,
            pre_key: self.pre_key.clone(),
            ratchet: self.ratchet.duplicate(),
            generation: self.generation.duplicate(),
        }
    }

    /// The session id, equal on both sides.
    pub fn session_id(&self) -> SessionId {
        self.id
    }

    /// The peer device's identity keys. For an inbound session they were
    /// authenticated by the handshake (X25519) and the binding signature
    /// (Ed25519).
    pub fn peer_identity(&self) -> IdentityKeys {
        self.peer
    }

    /// Our own device's identity keys: the account this session belongs to.
    pub fn local_identity(&self) -> IdentityKeys {
        self.local
    }

    /// Whether this session has decrypted a message from its peer (an
    /// initiator sends pre-key messages until it has).
    pub fn has_received_message(&self) -> bool {
        self.ratchet.live().is_some()
    }

    /// Encrypts `plaintext` for the peer.
    ///
    /// Returns a pre-key message until a reply has been decrypted, a normal
    /// message after. Errors: [`SessionError::PlaintextTooLong`] and, after
    /// 2^32 - 1 messages without a reply, [`SessionError::ChainExhausted`].
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<DeviceMessage, SessionError> {
        self.encrypt_with_rng(plaintext, &mut os_rng())
    }

    /// [`Session::encrypt`] with the message's salt drawn from `rng` (the
    /// salt is what keeps a rolled-back session from reusing a key/nonce
    /// pair: outside deterministic tests, leave it to the OS generator).
    pub fn encrypt_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<DeviceMessage, SessionError> {
        self.encrypt_with_salt(plaintext, crate::crypto::salt(rng))
    }

    /// [`Session::encrypt`] with the message's salt given (drawn by the
    /// caller from the OS generator: the room layer draws salts on one
    /// thread and encrypts on several). A native session's sending chain is
    /// always ready (it is derived eagerly on receipt), so no other
    /// randomness is needed.
    pub(crate) fn encrypt_with_salt(
        &mut self,
        plaintext: &[u8],
        salt: [u8; crate::crypto::SALT_LEN],
    ) -> Result<DeviceMessage, SessionError> {
        check_plaintext(plaintext)?;
        let staged = self.ratchet.stage_send(&mut os_rng())?;
        let mut message = NormalMessage {
            ratchet_key: staged.ratchet_key,
            previous_counter: staged.previous_counter,
            counter: staged.counter,
            salt,
            ciphertext: Vec::with_capacity(plaintext.len() + crate::crypto::TAG_LEN),
        };
        let aad =
            self.associated_data(&message.header(), self.pre_key.as_ref().map(|h| &h.binding));
        message_key(&staged.seed, &message.salt)
            .seal_into(aad.as_slice(), plaintext, &mut message.ciphertext)
            .map_err(|_| SessionError::PlaintextTooLong {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            })?;
        self.ratchet.commit_send(staged);
        Ok(match &self.pre_key {
            Some(header) => DeviceMessage::PreKey(PreKeyMessage {
                one_time_key: header.one_time_key,
                base_key: header.base_key,
                identity_keys: self.local,
                binding: header.binding,
                message,
            }),
            None => DeviceMessage::Normal(message),
        })
    }

    /// Decrypts a message from the peer. On any error the session is left
    /// exactly as it was.
    pub fn decrypt(&mut self, message: &DeviceMessage) -> Result<Plaintext, SessionError> {
        self.decrypt_with_rng(message, &mut os_rng())
    }

    /// [`Session::decrypt`] with the generator for our next ratchet key
    /// supplied by the caller (for deterministic tests).
    pub fn decrypt_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        message: &DeviceMessage,
        rng: &mut R,
    ) -> Result<Plaintext, SessionError> {
        match message {
            DeviceMessage::PreKey(pre_key) => {
                if pre_key.session_id() != self.id {
                    return Err(SessionError::SessionMismatch);
                }
                self.decrypt_normal(&pre_key.message, Some(&pre_key.binding), rng)
            }
            DeviceMessage::Normal(normal) => self.decrypt_normal(normal, None, rng),
        }
    }

    /// Decrypts a normal message, or the inner message of a pre-key message
    /// (whose binding signature is then part of the associated data).
    fn decrypt_normal<R: rand::CryptoRng + ?Sized>(
        &mut self,
        message: &NormalMessage,
        binding: Option<&Ed25519Signature>,
        rng: &mut R,
    ) -> Result<Plaintext, SessionError> {
        let aad = self.associated_data(&message.header(), binding);
        let open = |seed: &[u8; 32]| {
            message_key(seed, &message.salt)
                .open(aad.as_slice(), &message.ciphertext)
                .map_err(|_| SessionError::Authentication)
        };
        let header = Header {
            ratchet_key: message.ratchet_key,
            counter: message.counter,
            previous_counter: Some(message.previous_counter),
        };
        let (staged, plaintext) = self.ratchet.stage(&header, open, rng)?;
        self.ratchet.commit(staged);
        self.pre_key = None;
        Ok(Plaintext::new(plaintext))
    }

    /// ad binding ‖ kind ‖ header, then for a pre-key message its binding
    /// signature: everything in the message that is not ciphertext is
    /// authenticated (the pre-key fields through the session id).
    fn associated_data(
        &self,
        header: &[u8; HEADER_LEN],
        binding: Option<&Ed25519Signature>,
    ) -> AssociatedData {
        let mut aad = AssociatedData {
            bytes: [0; AD_MAX_LEN],
            len: 0,
        };
        aad.push(&self.ad_binding);
        match binding {
            Some(signature) => {
                aad.push(&[AD_KIND_PRE_KEY]);
                aad.push(header);
                aad.push(&signature.to_bytes());
            }
            None => {
                aad.push(&[AD_KIND_NORMAL]);
                aad.push(header);
            }
        }
        aad
    }

    /// The encrypted pickle of this session (fresh random nonce, next
    /// generation), bound to the account it belongs to.
    pub fn pickle(&self, key: &PickleKey) -> String {
        self.pickle_with_rng(key, &mut os_rng())
    }

    /// [`Session::pickle`] with the nonce drawn from `rng`.
    pub fn pickle_with_rng<R: rand::CryptoRng + ?Sized>(
        &self,
        key: &PickleKey,
        rng: &mut R,
    ) -> String {
        self.to_pickle(key, &self.local.to_bytes(), rng)
    }

    /// Restores a session of the account whose identity keys are `owner`
    /// from its pickle. A session pickle of another account (swapped in
    /// storage) fails with [`PickleError::Decryption`]; check
    /// [`Session::peer_identity`] if you store sessions by peer.
    pub fn from_pickle(
        pickle: &str,
        key: &PickleKey,
        owner: &IdentityKeys,
    ) -> Result<Self, PickleError> {
        // The owner is bound by the associated data; the contents must name
        // the same account (only a holder of the pickle key could make them
        // differ, and then the session would not be that account's).
        Self::restore_with(pickle, key, &owner.to_bytes(), |r| {
            Self::read_contents_of(r, Some(owner))
        })
    }

    /// [`Session::from_pickle`], refusing a pickle older than `newest`, the
    /// newest generation the app recorded ([`PickleError::Stale`]).
    pub fn from_pickle_no_older_than(
        pickle: &str,
        key: &PickleKey,
        owner: &IdentityKeys,
        newest: u64,
    ) -> Result<Self, PickleError> {
        let found = crate::pickle::pickle_generation(pickle)?;
        if found < newest {
            return Err(PickleError::Stale { found, newest });
        }
        Self::from_pickle(pickle, key, owner)
    }

    /// The generation of the pickle this session was restored from or last
    /// wrote (0 for a new session).
    pub fn pickle_generation(&self) -> u64 {
        self.generation.get()
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.u8(self.version)
            .bytes(self.id.as_bytes())
            .u8(match self.role {
                Role::Initiator => 0,
                Role::Responder => 1,
            })
            .bytes(&self.local.to_bytes())
            .bytes(&self.peer.to_bytes());
        match &self.pre_key {
            Some(h) => {
                w.bool(true)
                    .bytes(h.one_time_key.as_bytes())
                    .bytes(h.base_key.as_bytes())
                    .bytes(&h.binding.to_bytes());
            }
            None => {
                w.bool(false);
            }
        }
        // A native session always has a sending chain (its ratchet is eager).
        let zero = SendingChain {
            key: RatchetKeyPair::from_secret(StaticSecret::from([0u8; 32])),
            chain: ChainKey {
                key: Secret::new([0u8; 32]),
                index: 0,
            },
        };
        let sending = self.ratchet.sending.as_ref().unwrap_or(&zero);
        w.bytes(self.ratchet.root.0.expose())
            .bytes(sending.key.secret.as_bytes())
            .bytes(sending.chain.key.expose())
            .u32(sending.chain.index)
            .u32(self.ratchet.previous_counter);
        match self.ratchet.live() {
            Some(r) => {
                w.bool(true)
                    .bytes(r.ratchet_key.as_bytes())
                    .bytes(r.chain.key.expose())
                    .u32(r.chain.index);
            }
            None => {
                w.bool(false);
            }
        }
        self.ratchet.skipped.write(w);
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::read_contents_of(r, None)
    }

    /// The contents of a session of `owner` (when known, its local identity
    /// must be `owner`'s, and is compared rather than validated again).
    fn read_contents_of(
        r: &mut Reader<'_>,
        owner: Option<&IdentityKeys>,
    ) -> Result<Self, DecodeError> {
        fn secret(r: &mut Reader<'_>, field: &'static str) -> Result<Secret<32>, DecodeError> {
            Ok(Secret::from_mut(&mut r.array::<32>(field)?))
        }
        let version = r.u8("session version")?;
        if version != PROTOCOL_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let id = SessionId::from_bytes(r.array("session id")?);
        let role = match r.u8("role")? {
            0 => Role::Initiator,
            1 => Role::Responder,
            _ => return Err(DecodeError::InvalidValue("role")),
        };
        let local = match owner {
            Some(owner) => IdentityKeys::read_expecting(r, owner, "session owner")?,
            None => IdentityKeys::read(r)?,
        };
        let peer = IdentityKeys::read(r)?;
        // Recomputed, not stored, so it always matches the identities.
        let ad_binding = match role {
            Role::Initiator => ad_binding(version, &id, &local, &peer),
            Role::Responder => ad_binding(version, &id, &peer, &local),
        };
        let pre_key = if r.bool("pre-key flag")? {
            let one_time_key = Curve25519PublicKey::from_bytes(r.array("one-time key")?);
            let base_key = Curve25519PublicKey::from_bytes(r.array("base key")?);
            let binding = Ed25519Signature::from_bytes(&r.array("binding")?);
            Some(PreKeyHeader {
                one_time_key,
                base_key,
                binding,
            })
        } else {
            None
        };
        let root = RootKey(secret(r, "root key")?);
        let ratchet_secret = StaticSecret::from(*secret(r, "ratchet key")?.expose());
        let sending = SendingChain {
            key: RatchetKeyPair::from_secret(ratchet_secret),
            chain: ChainKey {
                key: secret(r, "sending chain key")?,
                index: r.u32("sending index")?,
            },
        };
        let previous_counter = r.u32("previous counter")?;
        let receiving = if r.bool("receiving flag")? {
            Some(ReceivingChain {
                ratchet_key: Curve25519PublicKey::from_bytes(r.array("receiving ratchet key")?),
                chain: ChainKey {
                    key: secret(r, "receiving chain key")?,
                    index: r.u32("receiving index")?,
                },
            })
        } else {
            None
        };
        let skipped = SkippedKeys::read(r, Native::MAX_SKIPPED_KEYS, Native::MAX_SKIPPED_CHAINS)?;
        Ok(Self {
            version,
            id,
            role,
            ad_binding,
            local,
            peer,
            pre_key,
            ratchet: DoubleRatchet::from_parts(
                root,
                Some(sending),
                previous_counter,
                receiving.into_iter().collect(),
                skipped,
            ),
            generation: Generation::default(),
        })
    }
}

pickled!(Session, PickleKind::Session);

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.id)
            .field("role", &self.role)
            .field("peer", &self.peer)
            .field("pre_key_phase", &self.pre_key.is_some())
            .field(
                "sending_index",
                &self.ratchet.sending.as_ref().map_or(0, |s| s.chain.index),
            )
            .field(
                "receiving_index",
                &self.ratchet.live().map(|r| r.chain.index),
            )
            .field("skipped_keys", &self.ratchet.skipped.len())
            .finish_non_exhaustive()
    }
}

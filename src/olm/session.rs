//! [`OlmSession`]: an `m.olm.v1.curve25519-aes-sha2` pairwise session, on
//! the crate's one Double Ratchet with Olm's labels, bounds and cipher.
//!
//! Guarantees (as for the native session): every X25519 result is
//! contributory; a failed decryption changes nothing; each message key is
//! used once; memory and work per message are bounded by the `OLM_*`
//! constants in [`crate::consts`].

use std::fmt;

use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::message::{OlmMessage, OlmNormalMessage, OlmPreKeyMessage, olm_session_id};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{
    OLM_MAX_MESSAGE_GAP, OLM_MAX_RECEIVING_CHAINS, OLM_MAX_SKIPPED_MESSAGE_KEYS,
    OLM_MAX_SKIPPED_PER_CHAIN,
};
use crate::crypto::{CbcKeys, MAC_LEN, Secret, hkdf, label, os_rng};
use crate::keys::Curve25519PublicKey;
use crate::pickle::{Generation, PickleError, PickleKey, PickleKind, Pickled, pickled};
use crate::plaintext::Plaintext;
use crate::session::ratchet::{DoubleRatchet, Header, ReceivingChain, SendingChain, Spec, dh};
use crate::session::{
    ChainKey, RatchetKeyPair, RootKey, SessionError, SessionId, SkippedKeys, check_plaintext,
    split_root_and_chain,
};

/// Olm v1's ratchet: its labels and bounds, old receiving chains kept (no
/// previous-chain counter), the next sending chain made lazily.
pub(crate) struct OlmV1;

impl Spec for OlmV1 {
    const ROOT_INFO: &'static [u8] = label::OLM_RATCHET;
    const CHAIN_MESSAGE: &'static [u8] = label::OLM_CHAIN_MESSAGE;
    const CHAIN_NEXT: &'static [u8] = label::OLM_CHAIN_NEXT;
    const MAX_SKIPPED_KEYS: usize = OLM_MAX_SKIPPED_MESSAGE_KEYS;
    const MAX_SKIPPED_PER_CHAIN: usize = OLM_MAX_SKIPPED_PER_CHAIN;
    const MAX_SKIPPED_CHAINS: usize = OLM_MAX_RECEIVING_CHAINS;
    const RECEIVING_CHAINS: usize = OLM_MAX_RECEIVING_CHAINS;
    const MAX_JUMP: u32 = OLM_MAX_MESSAGE_GAP;
    const EAGER_SENDING: bool = false;
}

/// The three public keys an Olm session was started from; the session id
/// is their SHA-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OlmSessionKeys {
    /// The initiator's Curve25519 identity key.
    pub identity_key: Curve25519PublicKey,
    /// The initiator's ephemeral base key.
    pub base_key: Curve25519PublicKey,
    /// The responder's one-time (or fallback) key.
    pub one_time_key: Curve25519PublicKey,
}

impl OlmSessionKeys {
    /// The session id these keys give.
    pub fn session_id(&self) -> SessionId {
        olm_session_id(&self.identity_key, &self.base_key, &self.one_time_key)
    }
}

/// A pairwise `m.olm.v1.curve25519-aes-sha2` session with one peer device.
///
/// Created by [`crate::OlmAccount::create_outbound_session`] or
/// [`crate::OlmAccount::create_inbound_session`]; persisted through
/// [`OlmSession::pickle`]; importable from libolm.
pub struct OlmSession {
    keys: OlmSessionKeys,
    id: SessionId,
    /// Our account's Curve25519 identity key.
    local: Curve25519PublicKey,
    /// The peer's identity key; unknown only for an initiator session
    /// imported from libolm (libolm does not store it).
    peer: Option<Curve25519PublicKey>,
    pub(crate) ratchet: DoubleRatchet<OlmV1>,
    generation: Generation,
}

/// The Olm triple DH: root key and first chain key (HKDF info `OLM_ROOT`).
fn olm_root(shared: [Secret<32>; 3]) -> (RootKey, ChainKey) {
    let mut ikm = Zeroizing::new([0u8; 96]);
    for (slot, part) in ikm.chunks_exact_mut(32).zip(shared.iter()) {
        slot.copy_from_slice(part.expose());
    }
    split_root_and_chain(&hkdf::<64>(None, ikm.as_slice(), label::OLM_ROOT))
}

impl OlmSession {
    /// Starts a session as initiator against the peer's identity key and
    /// one of its one-time (or fallback) keys.
    pub(crate) fn new_outbound<R: rand::CryptoRng + ?Sized>(
        rng: &mut R,
        identity_secret: &StaticSecret,
        local: Curve25519PublicKey,
        peer: Curve25519PublicKey,
        one_time_key: Curve25519PublicKey,
    ) -> Result<Self, SessionError> {
        let (base_secret, ratchet_key) = RatchetKeyPair::base_and_ratchet(rng);
        let base_key = Curve25519PublicKey::from(&base_secret);
        let (root, chain) = olm_root([
            dh(identity_secret, &one_time_key)?,
            dh(&base_secret, &peer)?,
            dh(&base_secret, &one_time_key)?,
        ]);
        let keys = OlmSessionKeys {
            identity_key: local,
            base_key,
            one_time_key,
        };
        Ok(Self {
            id: keys.session_id(),
            keys,
            local,
            peer: Some(peer),
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

    /// Builds the responder's session from a pre-key message and decrypts
    /// its first message.
    pub(crate) fn new_inbound(
        identity_secret: &StaticSecret,
        local: Curve25519PublicKey,
        one_time_secret: &StaticSecret,
        message: &OlmPreKeyMessage,
    ) -> Result<(Self, Plaintext), SessionError> {
        let (root, chain) = olm_root([
            dh(one_time_secret, &message.identity_key)?,
            dh(identity_secret, &message.base_key)?,
            dh(one_time_secret, &message.base_key)?,
        ]);
        let keys = OlmSessionKeys {
            identity_key: message.identity_key,
            base_key: message.base_key,
            one_time_key: message.one_time_key,
        };
        let mut session = Self {
            id: keys.session_id(),
            keys,
            local,
            peer: Some(message.identity_key),
            ratchet: DoubleRatchet::from_parts(
                root,
                None,
                0,
                [ReceivingChain {
                    ratchet_key: message.message.ratchet_key,
                    chain,
                }]
                .into(),
                SkippedKeys::default(),
            ),
            generation: Generation::default(),
        };
        // The responder's ratchet makes no key until it encrypts, so no
        // generator is needed here.
        let plaintext = session.decrypt_normal(&message.message, &mut os_rng())?;
        Ok((session, plaintext))
    }

    /// The session id (SHA-256 of the three keys that started it).
    pub fn session_id(&self) -> SessionId {
        self.id
    }

    /// The keys the session was started from.
    pub fn session_keys(&self) -> OlmSessionKeys {
        self.keys
    }

    /// Our account's Curve25519 identity key.
    pub fn local_identity_key(&self) -> Curve25519PublicKey {
        self.local
    }

    /// The peer's Curve25519 identity key (authenticated by the handshake);
    /// `None` only for an initiator session imported from libolm, which
    /// does not record it.
    pub fn peer_identity_key(&self) -> Option<Curve25519PublicKey> {
        self.peer
    }

    /// Whether the session has decrypted a message from its peer (until
    /// then it sends pre-key messages).
    pub fn has_received_message(&self) -> bool {
        self.ratchet.live().is_some()
    }

    /// A full copy, for staging a change committed only on success.
    pub fn duplicate(&self) -> Self {
        Self {
            keys: self.keys,
            id: self.id,
            local: self.local,
            peer: self.peer,
            ratchet: self.ratchet.duplicate(),
            generation: self.generation.duplicate(),
        }
    }

    /// Encrypts `plaintext`: a pre-key message until a reply has been
    /// decrypted, a normal message after.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<OlmMessage, SessionError> {
        self.encrypt_with_rng(plaintext, &mut os_rng())
    }

    /// [`OlmSession::encrypt`] with the generator for a new ratchet key (the
    /// first message after a change of direction) supplied by the caller.
    pub fn encrypt_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<OlmMessage, SessionError> {
        check_plaintext(plaintext)?;
        let staged = self.ratchet.stage_send(rng)?;
        let keys = CbcKeys::derive(staged.seed.as_slice(), label::OLM_KEYS);
        let mut message = OlmNormalMessage {
            ratchet_key: staged.ratchet_key,
            counter: staged.counter,
            ciphertext: Vec::with_capacity(CbcKeys::ciphertext_len(plaintext.len())),
            mac: [0; MAC_LEN],
        };
        keys.encrypt_into(plaintext, &mut message.ciphertext);
        message.mac = keys.mac(&[&message.mac_input()]);
        self.ratchet.commit_send(staged);
        Ok(if self.has_received_message() {
            OlmMessage::Normal(message)
        } else {
            OlmMessage::PreKey(OlmPreKeyMessage {
                one_time_key: self.keys.one_time_key,
                base_key: self.keys.base_key,
                identity_key: self.keys.identity_key,
                message,
            })
        })
    }

    /// Decrypts a message from the peer. On any error the session is
    /// unchanged.
    pub fn decrypt(&mut self, message: &OlmMessage) -> Result<Plaintext, SessionError> {
        self.decrypt_with_rng(message, &mut os_rng())
    }

    /// [`OlmSession::decrypt`] with a caller-supplied generator (Olm makes
    /// no key while decrypting; kept for symmetry with the native session).
    pub fn decrypt_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        message: &OlmMessage,
        rng: &mut R,
    ) -> Result<Plaintext, SessionError> {
        match message {
            OlmMessage::PreKey(pre_key) => {
                if pre_key.session_id() != self.id {
                    return Err(SessionError::SessionMismatch);
                }
                self.decrypt_normal(&pre_key.message, rng)
            }
            OlmMessage::Normal(normal) => self.decrypt_normal(normal, rng),
        }
    }

    fn decrypt_normal<R: rand::CryptoRng + ?Sized>(
        &mut self,
        message: &OlmNormalMessage,
        rng: &mut R,
    ) -> Result<Plaintext, SessionError> {
        let authenticated = message.mac_input();
        let open = |seed: &[u8; 32]| {
            let keys = CbcKeys::derive(seed, label::OLM_KEYS);
            keys.verify(&[&authenticated], &message.mac)
                .and_then(|()| keys.decrypt(&message.ciphertext))
                .map_err(|_| SessionError::Authentication)
        };
        let header = Header {
            ratchet_key: message.ratchet_key,
            counter: message.counter,
            previous_counter: None,
        };
        let (staged, plaintext) = self.ratchet.stage(&header, open, rng)?;
        self.ratchet.commit(staged);
        Ok(Plaintext::new(plaintext))
    }

    /// The encrypted pickle (fresh random nonce, next generation), bound to
    /// our account's identity key.
    pub fn pickle(&self, key: &PickleKey) -> String {
        self.pickle_with_rng(key, &mut os_rng())
    }

    /// [`OlmSession::pickle`] with the nonce drawn from `rng`.
    pub fn pickle_with_rng<R: rand::CryptoRng + ?Sized>(
        &self,
        key: &PickleKey,
        rng: &mut R,
    ) -> String {
        self.to_pickle(key, self.local.as_bytes(), rng)
    }

    /// Restores a session of the account whose identity key is `owner`.
    pub fn from_pickle(
        pickle: &str,
        key: &PickleKey,
        owner: &Curve25519PublicKey,
    ) -> Result<Self, PickleError> {
        Self::restore(pickle, key, owner.as_bytes())
    }

    /// The generation of the pickle this session was restored from or last
    /// wrote (0 for a new session).
    pub fn pickle_generation(&self) -> u64 {
        self.generation.get()
    }

    /// Builds a session from its parts (libolm import).
    pub(crate) fn from_imported(
        keys: OlmSessionKeys,
        local: Curve25519PublicKey,
        ratchet: DoubleRatchet<OlmV1>,
    ) -> Self {
        let peer = (keys.identity_key != local).then_some(keys.identity_key);
        Self {
            id: keys.session_id(),
            keys,
            local,
            peer,
            ratchet,
            generation: Generation::default(),
        }
    }

    /// Contents: format byte, local and peer keys, session keys, then the
    /// ratchet (PROTOCOL.md, "Olm v1", pickles).
    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.u8(1).bytes(self.local.as_bytes());
        match &self.peer {
            Some(peer) => w.bool(true).bytes(peer.as_bytes()),
            None => w.bool(false),
        };
        w.bytes(self.keys.identity_key.as_bytes())
            .bytes(self.keys.base_key.as_bytes())
            .bytes(self.keys.one_time_key.as_bytes())
            .bytes(self.ratchet.root.0.expose());
        match &self.ratchet.sending {
            Some(s) => {
                w.bool(true)
                    .bytes(s.key.secret.as_bytes())
                    .bytes(s.chain.key.expose())
                    .u32(s.chain.index);
            }
            None => {
                w.bool(false);
            }
        }
        w.count(self.ratchet.receiving.len());
        for r in &self.ratchet.receiving {
            w.bytes(r.ratchet_key.as_bytes())
                .bytes(r.chain.key.expose())
                .u32(r.chain.index);
        }
        self.ratchet.skipped.write(w);
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        fn key(
            r: &mut Reader<'_>,
            field: &'static str,
        ) -> Result<Curve25519PublicKey, DecodeError> {
            Ok(Curve25519PublicKey::from_bytes(r.array(field)?))
        }
        fn secret(r: &mut Reader<'_>, field: &'static str) -> Result<Secret<32>, DecodeError> {
            Ok(Secret::from_mut(&mut r.array::<32>(field)?))
        }
        fn chain(r: &mut Reader<'_>) -> Result<ChainKey, DecodeError> {
            Ok(ChainKey {
                key: secret(r, "chain key")?,
                index: r.u32("chain index")?,
            })
        }
        let format = r.u8("olm session format")?;
        if format != 1 {
            return Err(DecodeError::UnknownVersion(format));
        }
        let local = key(r, "local identity key")?;
        let peer = if r.bool("peer flag")? {
            Some(key(r, "peer identity key")?)
        } else {
            None
        };
        let keys = OlmSessionKeys {
            identity_key: key(r, "identity key")?,
            base_key: key(r, "base key")?,
            one_time_key: key(r, "one-time key")?,
        };
        let root = RootKey(secret(r, "root key")?);
        let sending = if r.bool("sending flag")? {
            let secret = StaticSecret::from(*secret(r, "ratchet key")?.expose());
            Some(SendingChain {
                key: RatchetKeyPair::from_secret(secret),
                chain: chain(r)?,
            })
        } else {
            None
        };
        let count = r.count(OLM_MAX_RECEIVING_CHAINS, "receiving chains")?;
        let mut receiving = std::collections::VecDeque::with_capacity(count);
        for _ in 0..count {
            receiving.push_back(ReceivingChain {
                ratchet_key: key(r, "receiving ratchet key")?,
                chain: chain(r)?,
            });
        }
        if sending.is_none() && receiving.is_empty() {
            return Err(DecodeError::InvalidValue("olm session chains"));
        }
        let skipped = SkippedKeys::read(r, OLM_MAX_SKIPPED_MESSAGE_KEYS, OLM_MAX_RECEIVING_CHAINS)?;
        Ok(Self {
            id: keys.session_id(),
            keys,
            local,
            peer,
            ratchet: DoubleRatchet::from_parts(root, sending, 0, receiving, skipped),
            generation: Generation::default(),
        })
    }
}

pickled!(OlmSession, PickleKind::OlmSession);

impl fmt::Debug for OlmSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OlmSession")
            .field("session_id", &self.id)
            .field("peer", &self.peer)
            .field("has_received_message", &self.has_received_message())
            .field(
                "sending_index",
                &self.ratchet.sending.as_ref().map(|s| s.chain.index),
            )
            .field("receiving_chains", &self.ratchet.receiving.len())
            .field("skipped_keys", &self.ratchet.skipped.len())
            .finish_non_exhaustive()
    }
}

//! The symmetric pieces of the Double Ratchet: root key, chain key, ratchet
//! key pair. Stepping never mutates: each step returns the next value, so a
//! decryption can stage its changes and commit them only on success.

use x25519_dalek::StaticSecret;

use crate::crypto::{MessageKey, SALT_LEN, Secret, hkdf, hmac_pair, label};
use crate::keys::Curve25519PublicKey;

/// One-use seed of a message key (expanded by HKDF into AES key and nonce);
/// kept on the stack and wiped when dropped.
pub(crate) type MessageSeed = zeroize::Zeroizing<[u8; 32]>;

/// The root key of the DH ratchet.
#[derive(Clone, Debug)]
pub(crate) struct RootKey(pub(crate) Secret<32>);

impl RootKey {
    /// Mixes a ratchet DH output into the root with HKDF info `info`: the
    /// next root key and the first chain key of the new chain.
    pub(crate) fn ratchet(&self, shared: &Secret<32>, info: &[u8]) -> (RootKey, ChainKey) {
        let okm = hkdf::<64>(Some(self.0.expose()), shared.expose(), info);
        split_root_and_chain(&okm)
    }
}

/// Splits 64 bytes of KDF output into a root key and a chain key at index 0.
pub(crate) fn split_root_and_chain(okm: &Secret<64>) -> (RootKey, ChainKey) {
    let (root, chain) = okm.expose().split_at(32);
    let mut root_bytes = [0u8; 32];
    let mut chain_bytes = [0u8; 32];
    root_bytes.copy_from_slice(root);
    chain_bytes.copy_from_slice(chain);
    (
        RootKey(Secret::from_mut(&mut root_bytes)),
        ChainKey {
            key: Secret::from_mut(&mut chain_bytes),
            index: 0,
        },
    )
}

/// A sending or receiving chain key and the index of the next message key it
/// yields.
#[derive(Clone, Debug)]
pub(crate) struct ChainKey {
    pub(crate) key: Secret<32>,
    pub(crate) index: u32,
}

impl ChainKey {
    /// The seed for message `self.index` (HMAC of the chain key over
    /// `message`) and the chain key after it (HMAC over `next`), or `None`
    /// when the index space of the chain is used up.
    pub(crate) fn step(&self, message: &[u8], next: &[u8]) -> Option<(MessageSeed, ChainKey)> {
        let index = self.index.checked_add(1)?;
        let (seed, mut next) = hmac_pair(self.key.expose(), message, next);
        Some((
            seed,
            ChainKey {
                key: Secret::from_mut(&mut next),
                index,
            },
        ))
    }
}

/// Expands a message seed and the message's salt into the AES-256-GCM key
/// and nonce of one message.
pub(crate) fn message_key(seed: &[u8; 32], salt: &[u8; SALT_LEN]) -> MessageKey {
    MessageKey::derive(seed, salt, label::MESSAGE_KEY)
}

/// Our current ratchet key pair.
#[derive(Clone)]
pub(crate) struct RatchetKeyPair {
    /// Boxed so that moving the session never leaves a copy behind.
    pub(crate) secret: Box<StaticSecret>,
    /// Computed from the secret on first use.
    public: std::sync::OnceLock<Curve25519PublicKey>,
}

impl RatchetKeyPair {
    /// The base key and first ratchet key of an outbound session, from one
    /// draw of 64 bytes (one system call instead of two when `rng` is the
    /// operating system's; a seeded generator yields the same two keys as
    /// two draws would).
    pub(crate) fn base_and_ratchet<R: rand::CryptoRng + ?Sized>(
        rng: &mut R,
    ) -> (StaticSecret, RatchetKeyPair) {
        let mut bytes = zeroize::Zeroizing::new([0u8; 64]);
        rng.fill_bytes(bytes.as_mut_slice());
        let (base, ratchet) = bytes.split_at(32);
        let mut first = zeroize::Zeroizing::new([0u8; 32]);
        let mut second = zeroize::Zeroizing::new([0u8; 32]);
        first.copy_from_slice(base);
        second.copy_from_slice(ratchet);
        (
            StaticSecret::from(*first),
            RatchetKeyPair::from_secret(StaticSecret::from(*second)),
        )
    }

    pub(crate) fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_secret(StaticSecret::random_from_rng(rng))
    }

    pub(crate) fn from_secret(secret: StaticSecret) -> Self {
        Self {
            secret: Box::new(secret),
            public: std::sync::OnceLock::new(),
        }
    }

    /// The public key, computed on first use and kept (a new session's
    /// first ratchet key costs nothing until its first message, and every
    /// later message reuses it).
    pub(crate) fn public(&self) -> Curve25519PublicKey {
        *self
            .public
            .get_or_init(|| Curve25519PublicKey::from(self.secret.as_ref()))
    }
}

impl std::fmt::Debug for RatchetKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RatchetKeyPair")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

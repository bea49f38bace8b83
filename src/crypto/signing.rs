//! An Ed25519 private key held either as its 32-byte seed (every key
//! roomseal makes) or in the 64-byte expanded form libolm stores (the
//! SHA-512 of a seed it then discarded). Both sign identically; only the
//! expanded form can be imported from libolm.

use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::Sha512;

use super::Secret;
use crate::keys::{Ed25519PublicKey, Ed25519Signature};

/// The private half of an Ed25519 key pair. Wiped on drop (both inner
/// types zeroize themselves); never printed.
pub(crate) enum Ed25519Secret {
    /// A seed (RFC 8032 private key).
    Seed(Box<SigningKey>),
    /// A libolm expanded key, the public key derived from it, and the 64
    /// bytes it was read from (to pickle it again).
    Expanded(Box<ExpandedSecretKey>, VerifyingKey, Secret<64>),
}

impl Ed25519Secret {
    /// A fresh key from `rng`.
    pub(crate) fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::Seed(Box::new(SigningKey::generate(rng)))
    }

    /// The key from its seed.
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
        Self::Seed(Box::new(SigningKey::from_bytes(seed)))
    }

    /// The key from libolm's 64-byte expanded form (scalar, then nonce
    /// prefix).
    pub(crate) fn from_expanded(bytes: &[u8; 64]) -> Self {
        let expanded = ExpandedSecretKey::from_bytes(bytes);
        let public = VerifyingKey::from(&expanded);
        Self::Expanded(Box::new(expanded), public, Secret::new(*bytes))
    }

    /// The public key.
    pub(crate) fn public(&self) -> Ed25519PublicKey {
        Ed25519PublicKey::from_verifying_key(match self {
            Self::Seed(key) => key.verifying_key(),
            Self::Expanded(_, public, _) => *public,
        })
    }

    /// Signs `message` (plain Ed25519, no context).
    pub(crate) fn sign(&self, message: &[u8]) -> Ed25519Signature {
        Ed25519Signature::from_signature(match self {
            Self::Seed(key) => key.sign(message),
            Self::Expanded(expanded, public, _) => raw_sign::<Sha512>(expanded, message, public),
        })
    }

    /// The seed, or `None` for an imported expanded key.
    pub(crate) fn seed(&self) -> Option<&[u8; 32]> {
        match self {
            Self::Seed(key) => Some(key.as_bytes()),
            Self::Expanded(..) => None,
        }
    }

    /// The libolm expanded form this key was imported from, if it was.
    pub(crate) fn expanded(&self) -> Option<&[u8; 64]> {
        match self {
            Self::Seed(_) => None,
            Self::Expanded(_, _, bytes) => Some(bytes.expose()),
        }
    }
}

impl std::fmt::Debug for Ed25519Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Secret({})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expanded_form_signs_like_the_seed() {
        use sha2::Digest;
        let seed = Ed25519Secret::from_seed(&[3u8; 32]);
        // libolm's form: SHA-512 of the seed, the first half clamped.
        let mut bytes: [u8; 64] = Sha512::digest([3u8; 32]).into();
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        let expanded = Ed25519Secret::from_expanded(&bytes);
        assert_eq!(seed.public(), expanded.public());
        assert_eq!(seed.sign(b"m"), expanded.sign(b"m"));
        assert!(expanded.public().verify(b"m", &expanded.sign(b"m")).is_ok());
        assert!(expanded.seed().is_none());
    }
}

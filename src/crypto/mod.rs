//! Private cryptographic plumbing shared by every layer: AEAD seal and open,
//! HMAC/HKDF with the protocol's labels, checked X25519, secret wrappers that
//! zeroize, and the operating system's random generator.
//!
//! Guarantees: no primitive here is home-made (they come from the RustCrypto
//! and dalek crates); every X25519 result is checked to be contributory; every
//! secret is wiped on drop and prints as `***`.

mod aead;
mod cbc;
mod kdf;
mod secret;
mod signing;

pub(crate) use aead::{AeadFailure, MessageKey, NONCE_LEN, SALT_LEN, TAG_LEN};
pub(crate) use cbc::{BLOCK_LEN, CbcKeys, MAC_LEN};
pub(crate) use kdf::{hkdf, hmac, hmac_pair, label, sha256};
pub(crate) use secret::Secret;
pub(crate) use signing::Ed25519Secret;

use x25519_dalek::{PublicKey, StaticSecret};

/// The operating system's generator as an infallible `CryptoRng`, used
/// wherever the caller does not pass one.
///
/// It panics only if the OS cannot provide randomness at all (`getrandom`
/// failing on a running system), a state from which no cryptographic library
/// can continue safely.
pub(crate) fn os_rng() -> rand::rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand::rand_core::UnwrapErr(rand::rngs::SysRng)
}

/// A fresh message salt from `rng` (the operating system's generator outside
/// tests).
pub(crate) fn salt<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    salt
}

/// The peer's point gave an all-zero (non-contributory) X25519 result: it is
/// a low-order point, and the exchange would not depend on our secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonContributory;

/// X25519 between our secret and their public key, rejecting low-order points.
pub(crate) fn diffie_hellman(
    ours: &StaticSecret,
    theirs: &[u8; 32],
) -> Result<Secret<32>, NonContributory> {
    let shared = ours.diffie_hellman(&PublicKey::from(*theirs));
    if shared.was_contributory() {
        Ok(Secret::new(shared.to_bytes()))
    } else {
        Err(NonContributory)
    }
}

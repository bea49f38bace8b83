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
pub(crate) use kdf::{hkdf, hmac, hmac_into, hmac_pair, hmac_step, label, sha256};
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

/// Parses an Ed25519 public key from outside bytes with the same rules as
/// [`crate::Ed25519PublicKey::from_bytes`] (a canonical encoding of a point
/// that is not of small order) but without re-compressing the point: the
/// only non-canonical encodings dalek accepts are a `y` coordinate of at
/// least p = 2^255 - 19, checked on the bytes, and `x = 0` with the sign
/// bit set, whose points (`y = 1` and `y = -1`) have small order and are
/// refused by the weak-key check. Saves a field inversion per key where
/// session keys, messages' session ids and identity keys are read.
pub(crate) fn ed25519_public_key(bytes: &[u8; 32]) -> Option<crate::keys::Ed25519PublicKey> {
    let (low, rest) = bytes.split_first()?;
    let (top, middle) = rest.split_last()?;
    let y_at_least_p = *top & 0x7f == 0x7f && middle.iter().all(|&b| b == 0xff) && *low >= 0xed;
    if y_at_least_p {
        return None;
    }
    let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).ok()?;
    if key.is_weak() {
        return None;
    }
    Some(crate::keys::Ed25519PublicKey::from_verifying_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_key_check_agrees_with_the_keys_module() {
        let mut cases: Vec<[u8; 32]> = vec![[0; 32], [0xff; 32], [1; 32]];
        let mut identity = [0u8; 32];
        identity[0] = 1;
        cases.push(identity);
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        cases.push(minus_one);
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        cases.push(p);
        // Every non-canonical y, p to 2^255 - 1 (y = p + 1 is the point
        // with x = 0 that is the identity).
        for low in 0xeeu8..=0xff {
            let mut y = p;
            y[0] = low;
            cases.push(y);
        }
        for seed in 0..64u8 {
            let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
            cases.push(key.to_bytes());
            let mut flipped = key.to_bytes();
            flipped[31] ^= 0x80;
            cases.push(flipped);
            let mut other = key.to_bytes();
            other[0] ^= 1;
            cases.push(other);
        }
        for bytes in cases {
            for sign in [0u8, 0x80] {
                let mut b = bytes;
                b[31] = (b[31] & 0x7f) | sign;
                assert_eq!(
                    ed25519_public_key(&b).map(|k| k.to_bytes()),
                    crate::keys::Ed25519PublicKey::from_bytes(&b)
                        .ok()
                        .map(|k| k.to_bytes()),
                    "{b:02x?}"
                );
            }
        }
    }
}

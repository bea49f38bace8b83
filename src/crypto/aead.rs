//! AES-256-GCM under a key and nonce that are each used exactly once.
//!
//! Callers never hold a key/nonce pair apart: [`MessageKey`] is derived by
//! HKDF from a one-use seed, consumed by `seal` or `open`, and wiped.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::kdf::hkdf_into;

/// AES-GCM tag length in bytes.
pub(crate) const TAG_LEN: usize = 16;
/// AES-GCM nonce length in bytes.
pub(crate) const NONCE_LEN: usize = 12;
/// Bytes of fresh randomness every message carries and mixes into its key
/// derivation (PROTOCOL.md, "Rollback").
pub(crate) const SALT_LEN: usize = crate::consts::MESSAGE_SALT_LEN;

/// An AES-256-GCM key and nonce for exactly one message.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKey {
    key: [u8; 32],
    nonce: [u8; NONCE_LEN],
}

/// Authentication failed: wrong key, wrong associated data, or altered bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AeadFailure;

impl MessageKey {
    /// Expands a one-use key seed and the message's fresh random `salt` into
    /// key and nonce with HKDF-SHA-256 (the salt is HKDF's salt).
    ///
    /// The seed comes from a ratchet; the salt from the operating system at
    /// encryption time. Even if the ratchet state is rolled back (an old
    /// pickle restored) and the same seed is used again, a new salt gives a
    /// new key and nonce, so no key/nonce pair ever seals two plaintexts.
    pub(crate) fn derive(seed: &[u8], salt: &[u8; SALT_LEN], info: &[u8]) -> Self {
        let mut okm = zeroize::Zeroizing::new([0u8; 44]);
        hkdf_into(Some(salt), seed, info, &mut okm);
        Self::from_okm_bytes(&okm)
    }

    fn from_okm_bytes(okm: &[u8; 44]) -> Self {
        let (key, nonce) = okm.split_at(32);
        let mut out = Self {
            key: [0; 32],
            nonce: [0; NONCE_LEN],
        };
        out.key.copy_from_slice(key);
        out.nonce.copy_from_slice(nonce);
        out
    }

    /// Uses an explicit key and nonce (pickles: random nonce per pickle).
    pub(crate) fn from_parts(key: &[u8; 32], nonce: [u8; NONCE_LEN]) -> Self {
        Self { key: *key, nonce }
    }

    /// Encrypts `plaintext`, appending the ciphertext and tag to `out`.
    ///
    /// AES-GCM refuses only plaintexts over 64 GiB; callers bound plaintexts
    /// by `MAX_PLAINTEXT_LEN` (1 MiB) first, and on failure `out` is left as
    /// it was.
    pub(crate) fn seal_into(
        self,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AeadFailure> {
        let cipher = Aes256Gcm::new(&self.key.into());
        let start = out.len();
        out.extend_from_slice(plaintext);
        let body = out.get_mut(start..).unwrap_or_default();
        match cipher.encrypt_inout_detached(&Nonce::from(self.nonce), aad, body.into()) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(_) => {
                out.truncate(start);
                Err(AeadFailure)
            }
        }
    }

    /// Decrypts `ciphertext || tag`, checking the tag in constant time. The
    /// plaintext wipes itself when dropped.
    pub(crate) fn open(self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, AeadFailure> {
        let body_len = sealed.len().checked_sub(TAG_LEN).ok_or(AeadFailure)?;
        let (body, tag) = sealed.split_at(body_len);
        let cipher = Aes256Gcm::new(&self.key.into());
        let mut plaintext = Zeroizing::new(body.to_vec());
        let tag = aes_gcm::Tag::try_from(tag).map_err(|_| AeadFailure)?;
        match cipher.decrypt_inout_detached(
            &Nonce::from(self.nonce),
            aad,
            plaintext.as_mut_slice().into(),
            &tag,
        ) {
            Ok(()) => Ok(plaintext),
            // `plaintext` (unauthenticated bytes) is wiped when dropped.
            Err(_) => Err(AeadFailure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let seed = [9u8; 32];
        let salt = [3u8; SALT_LEN];
        let mut sealed = Vec::new();
        MessageKey::derive(&seed, &salt, b"info")
            .seal_into(b"aad", b"hello", &mut sealed)
            .unwrap();
        assert_eq!(sealed.len(), 5 + TAG_LEN);
        let opened = MessageKey::derive(&seed, &salt, b"info")
            .open(b"aad", &sealed)
            .unwrap();
        assert_eq!(opened.as_slice(), b"hello");
        // Another salt, another key and nonce.
        assert_eq!(
            MessageKey::derive(&seed, &[4u8; SALT_LEN], b"info").open(b"aad", &sealed),
            Err(AeadFailure)
        );
        assert_eq!(
            MessageKey::derive(&seed, &salt, b"info").open(b"aaX", &sealed),
            Err(AeadFailure)
        );
        assert_eq!(
            MessageKey::derive(&seed, &salt, b"infX").open(b"aad", &sealed),
            Err(AeadFailure)
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(
                MessageKey::derive(&seed, &salt, b"info").open(b"aad", &bad),
                Err(AeadFailure)
            );
        }
        assert_eq!(
            MessageKey::derive(&seed, &salt, b"info").open(b"aad", &sealed[..15]),
            Err(AeadFailure)
        );
    }

    #[test]
    fn matches_nist_aes_256_gcm_vector() {
        // NIST GCM test vector (gcmEncryptExtIV256, Count 0 with 128-bit PT):
        // all-zero key, nonce and plaintext block.
        let key = MessageKey::from_parts(&[0u8; 32], [0u8; 12]);
        let mut out = Vec::new();
        key.seal_into(&[], &[0u8; 16], &mut out).unwrap();
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
    }
}

//! libolm's pickle envelope, for importing an account, session or group
//! session from libolm or python-olm (and from vodozemac's libolm export).
//!
//! The envelope: the pickle key (any length) is expanded by HKDF-SHA-256
//! (zero salt, info `Pickle`) into an AES-256 key, an HMAC key and an IV;
//! the pickle is `base64(AES-256-CBC(contents) || HMAC-SHA-256(ciphertext)[..8])`.
//! The contents start with a big-endian u32 version; integers are
//! big-endian, booleans one byte, lists a u32 count then the items
//! (PROTOCOL.md, "libolm pickles").
//!
//! Guarantees: the tag is checked (in constant time) before anything is
//! decrypted; the decrypted contents are wiped after parsing; every count
//! is checked against the bound of the type it fills before anything is
//! allocated; every derived public key is checked against the one stored;
//! any failure is a [`LibolmPickleError`] and nothing is half-imported.

use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader};
use crate::crypto::{CbcKeys, MAC_LEN, label};
use crate::keys::base64_decode;

/// Why a libolm pickle could not be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LibolmPickleError {
    /// The text is not valid base64.
    #[error("libolm pickle is not valid base64")]
    Base64,
    /// The tag does not verify or the contents do not unpad: the key is
    /// wrong or the pickle was altered.
    #[error("libolm pickle does not decrypt: wrong key or altered bytes")]
    Decryption,
    /// The contents have a version this build does not read.
    #[error("libolm pickle version {found}, expected {expected}")]
    Version {
        /// The version roomseal reads for this type.
        expected: u32,
        /// The version found.
        found: u32,
    },
    /// The contents are malformed or exceed a bound.
    #[error("libolm pickle contents are invalid: {0}")]
    Contents(#[from] DecodeError),
    /// A stored public key does not match its private key, or a key is not
    /// a valid point.
    #[error("libolm pickle holds an inconsistent or invalid key: {0}")]
    InvalidKey(&'static str),
    /// The session holds neither a sending nor a receiving chain.
    #[error("libolm session pickle has no chain")]
    NoChain,
}

/// Decrypts a libolm pickle with `key`, checks its version and returns the
/// contents after the version.
pub(crate) fn open(
    pickle: &str,
    key: &[u8],
    version: u32,
) -> Result<Zeroizing<Vec<u8>>, LibolmPickleError> {
    let bytes = base64_decode(pickle).map_err(|_| LibolmPickleError::Base64)?;
    let body_len = bytes
        .len()
        .checked_sub(MAC_LEN)
        .ok_or(LibolmPickleError::Decryption)?;
    let (ciphertext, tag) = bytes.split_at(body_len);
    let keys = CbcKeys::derive(key, label::LIBOLM_PICKLE);
    keys.verify(&[ciphertext], tag)
        .map_err(|_| LibolmPickleError::Decryption)?;
    let mut contents = keys
        .decrypt(ciphertext)
        .map_err(|_| LibolmPickleError::Decryption)?;
    let found = Reader::new(&contents).u32("pickle version")?;
    if found != version {
        return Err(LibolmPickleError::Version {
            expected: version,
            found,
        });
    }
    contents.drain(..4);
    Ok(contents)
}

/// Seals `contents` (version included) as a libolm pickle under `key`: the
/// inverse of [`open`], for round-trip tests and fixtures.
#[cfg(test)]
pub(crate) fn seal(contents: &[u8], key: &[u8]) -> String {
    let keys = CbcKeys::derive(key, label::LIBOLM_PICKLE);
    let mut out = Vec::with_capacity(CbcKeys::ciphertext_len(contents.len()) + MAC_LEN);
    keys.encrypt_into(contents, &mut out);
    let tag = keys.mac(&[&out]);
    out.extend_from_slice(&tag);
    crate::keys::base64_encode(&out)
}

/// A libolm list count (u32), checked against `max` before any allocation.
pub(crate) fn count(
    r: &mut Reader<'_>,
    max: usize,
    field: &'static str,
) -> Result<usize, DecodeError> {
    let len = usize::try_from(r.u32(field)?).unwrap_or(usize::MAX);
    if len > max {
        return Err(DecodeError::TooLong { field, len, max });
    }
    Ok(len)
}

/// Parses contents with `read`, which must consume every byte.
pub(crate) fn parse<T>(
    contents: &[u8],
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, LibolmPickleError>,
) -> Result<T, LibolmPickleError> {
    let mut r = Reader::new(contents);
    let value = read(&mut r)?;
    r.finish()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::base64_encode;

    #[test]
    fn seal_open_and_every_failure() {
        let mut contents = 7u32.to_be_bytes().to_vec();
        contents.extend_from_slice(b"hello");
        let text = seal(&contents, b"key");
        assert_eq!(&*open(&text, b"key", 7).unwrap(), b"hello");
        assert_eq!(open(&text, b"other", 7), Err(LibolmPickleError::Decryption));
        assert_eq!(
            open(&text, b"key", 1),
            Err(LibolmPickleError::Version {
                expected: 1,
                found: 7
            })
        );
        assert_eq!(open("!", b"key", 7), Err(LibolmPickleError::Base64));
        assert_eq!(open("", b"key", 7), Err(LibolmPickleError::Decryption));
        let bytes = base64_decode(&text).unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert_eq!(
                open(&base64_encode(&bad), b"key", 7),
                Err(LibolmPickleError::Decryption)
            );
        }
    }
}

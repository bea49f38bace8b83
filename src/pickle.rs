//! The encrypted, versioned envelope every stateful type persists through.
//!
//! A pickle is `version || nonce || AES-256-GCM(contents)` in unpadded
//! base64, encrypted under a caller-supplied 32-byte [`PickleKey`] with a
//! fresh random nonce. The associated data names the object type, so an
//! account pickle cannot be restored as a session. Each type defines its own
//! compact binary contents beside itself (see PROTOCOL.md).
//!
//! Guarantees: a wrong key, a truncated or altered pickle, a pickle of another
//! type and an unknown version are each a [`PickleError`]; the decrypted
//! contents are wiped after they are parsed; live objects are not
//! serializable except through their pickle.

use std::fmt;

use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::PROTOCOL_VERSION;
use crate::crypto::{AeadFailure, MessageKey, NONCE_LEN, Secret, TAG_LEN, label};
use crate::keys::{base64_decode, base64_encode};

/// The 32-byte key pickles are encrypted with. Supplied by the app (for
/// example from the platform keystore); never printed.
#[derive(Clone)]
pub struct PickleKey(Secret<32>);

impl PickleKey {
    /// Wraps 32 key bytes, wiping the caller's copy.
    pub fn from_bytes(bytes: &mut [u8; 32]) -> Self {
        Self(Secret::from_mut(bytes))
    }

    /// A fresh random key from the operating system's generator.
    pub fn random() -> Self {
        Self::random_with_rng(&mut crate::crypto::os_rng())
    }

    /// A fresh random key from `rng`.
    pub fn random_with_rng<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self(Secret::random(rng))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        self.0.expose()
    }
}

impl fmt::Debug for PickleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PickleKey(***)")
    }
}

/// Why a pickle could not be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PickleError {
    /// The text is not valid base64.
    #[error("pickle is not valid base64")]
    Base64,
    /// Shorter than version, nonce and tag.
    #[error("pickle is truncated")]
    Truncated,
    /// The version byte names a format this build does not read.
    #[error("unknown pickle version {0}")]
    UnknownVersion(u8),
    /// Decryption failed: the key is wrong, the pickle was altered, or it is
    /// a pickle of another object type.
    #[error("pickle does not decrypt: wrong key, altered bytes or another object type")]
    Decryption,
    /// The decrypted contents are malformed.
    #[error("pickle contents are invalid: {0}")]
    Contents(#[from] DecodeError),
}

/// The object types that have pickles. Each name goes into the associated
/// data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PickleKind {
    Account,
    Session,
    OutboundGroupSession,
    InboundGroupSession,
    Endpoint,
}

impl PickleKind {
    fn name(self) -> &'static [u8] {
        match self {
            PickleKind::Account => b"account",
            PickleKind::Session => b"session",
            PickleKind::OutboundGroupSession => b"outbound-group-session",
            PickleKind::InboundGroupSession => b"inbound-group-session",
            PickleKind::Endpoint => b"endpoint",
        }
    }

    fn associated_data(self) -> Vec<u8> {
        [label::PICKLE, self.name(), &[PROTOCOL_VERSION]].concat()
    }
}

/// Encrypts `contents` (wiped afterwards) into the text form of a pickle.
pub(crate) fn seal<R: rand::CryptoRng + ?Sized>(
    kind: PickleKind,
    key: &PickleKey,
    contents: Zeroizing<Vec<u8>>,
    rng: &mut R,
) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(1 + NONCE_LEN + contents.len() + TAG_LEN);
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&nonce);
    // Pickle contents are bounded by the protocol constants (a few KiB), far
    // below AES-GCM's 64 GiB limit, so sealing cannot fail.
    let _ = MessageKey::from_parts(key.expose(), nonce).seal_into(
        &kind.associated_data(),
        &contents,
        &mut out,
    );
    base64_encode(&out)
}

/// The text form of a pickle of type `kind` whose contents `write` produces
/// (the contents are wiped once sealed).
pub(crate) fn to_text<R: rand::CryptoRng + ?Sized>(
    kind: PickleKind,
    key: &PickleKey,
    rng: &mut R,
    write: impl FnOnce(&mut Writer),
) -> String {
    let mut w = Writer::with_capacity(512);
    write(&mut w);
    seal(kind, key, Zeroizing::new(w.into_vec()), rng)
}

/// Restores an object of type `kind` from the text form of its pickle:
/// decrypts, lets `read` parse the contents, and rejects trailing bytes.
pub(crate) fn from_text<T>(
    kind: PickleKind,
    key: &PickleKey,
    text: &str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, PickleError> {
    let contents = open(kind, key, text)?;
    let mut reader = Reader::new(&contents);
    let value = read(&mut reader)?;
    reader.finish()?;
    Ok(value)
}

/// Decrypts the text form of a pickle of type `kind`.
pub(crate) fn open(
    kind: PickleKind,
    key: &PickleKey,
    text: &str,
) -> Result<Zeroizing<Vec<u8>>, PickleError> {
    let bytes = base64_decode(text).map_err(|_| PickleError::Base64)?;
    let (&version, rest) = bytes.split_first().ok_or(PickleError::Truncated)?;
    if version != PROTOCOL_VERSION {
        return Err(PickleError::UnknownVersion(version));
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(PickleError::Truncated);
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| PickleError::Truncated)?;
    MessageKey::from_parts(key.expose(), nonce)
        .open(&kind.associated_data(), sealed)
        .map(Zeroizing::new)
        .map_err(|AeadFailure| PickleError::Decryption)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PickleKey {
        PickleKey::from_bytes(&mut [byte; 32])
    }

    #[test]
    fn round_trip_and_every_failure() {
        let mut rng = crate::crypto::os_rng();
        let text = seal(
            PickleKind::Session,
            &key(1),
            Zeroizing::new(b"state".to_vec()),
            &mut rng,
        );
        assert_eq!(
            &*open(PickleKind::Session, &key(1), &text).unwrap(),
            b"state"
        );
        assert_eq!(
            open(PickleKind::Session, &key(2), &text),
            Err(PickleError::Decryption)
        );
        assert_eq!(
            open(PickleKind::Account, &key(1), &text),
            Err(PickleError::Decryption)
        );
        assert_eq!(
            open(PickleKind::Session, &key(1), "!!"),
            Err(PickleError::Base64)
        );
        assert_eq!(
            open(PickleKind::Session, &key(1), ""),
            Err(PickleError::Truncated)
        );
        let mut bytes = base64_decode(&text).unwrap();
        bytes[0] = 9;
        assert_eq!(
            open(PickleKind::Session, &key(1), &base64_encode(&bytes)),
            Err(PickleError::UnknownVersion(9))
        );
        bytes[0] = PROTOCOL_VERSION;
        for i in 1..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x80;
            assert_eq!(
                open(PickleKind::Session, &key(1), &base64_encode(&bad)),
                Err(PickleError::Decryption)
            );
        }
        for len in 0..bytes.len() {
            assert!(open(PickleKind::Session, &key(1), &base64_encode(&bytes[..len])).is_err());
        }
        // Fresh nonce each time.
        let again = seal(
            PickleKind::Session,
            &key(1),
            Zeroizing::new(b"state".to_vec()),
            &mut rng,
        );
        assert_ne!(text, again);
        assert_eq!(format!("{:?}", key(7)), "PickleKey(***)");
    }
}

//! Public key and signature types: X25519 identity and one-time keys, Ed25519
//! keys and signatures, and a device's pair of identity keys.
//!
//! Guarantees: every value here is public; every constructor that takes
//! outside bytes or text validates it and returns [`KeyError`]; the text form
//! is unpadded base64 (padded is accepted on input), and serde uses the text
//! form. An [`Ed25519PublicKey`] is always a canonical, non-small-order point,
//! and signatures are checked with strict verification only.

mod base64;

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

pub(crate) use self::base64::{
    decode as base64_decode, encode as base64_encode, encode_append as base64_encode_append,
};

/// Why a key or signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The text is not valid base64.
    #[error("invalid base64")]
    Base64,
    /// The decoded value has the wrong length.
    #[error("expected {expected} bytes, found {found}")]
    Length {
        /// Bytes the type needs.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// The bytes are not the canonical encoding of a curve point.
    #[error("not a canonical Ed25519 point")]
    InvalidPoint,
    /// The Ed25519 point has small order: anyone could sign for it.
    #[error("Ed25519 key of small order")]
    WeakKey,
    /// The signature does not verify (strict Ed25519).
    #[error("signature does not verify")]
    BadSignature,
}

impl From<self::base64::InvalidBase64> for KeyError {
    fn from(_: self::base64::InvalidBase64) -> Self {
        KeyError::Base64
    }
}

fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], KeyError> {
    let bytes = self::base64::decode(text)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Length {
        expected: N,
        found: bytes.len(),
    })
}

/// Serde through the text form, for types with `FromStr` and `Display`.
macro_rules! text_serde {
    ($ty:ty, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(|e| {
                    serde::de::Error::custom(format_args!(concat!("invalid ", $what, ": {}"), e))
                })
            }
        }
    };
}

/// An X25519 public key: a device's identity key, a one-time or fallback key,
/// an ephemeral base key or a ratchet key.
///
/// Any 32 bytes are accepted here; a low-order point is rejected when it is
/// used, because every X25519 result is checked to be contributory.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Curve25519PublicKey([u8; 32]);

impl Curve25519PublicKey {
    /// Length in bytes.
    pub const LENGTH: usize = 32;

    /// The key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key from a slice, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| KeyError::Length {
                expected: 32,
                found: bytes.len(),
            })
    }

    /// The key's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key's bytes, copied.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// Unpadded base64.
    pub fn to_base64(&self) -> String {
        base64_encode(&self.0)
    }

    /// Parses unpadded (or padded) base64.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode_array(text).map(Self)
    }
}

impl From<&x25519_dalek::StaticSecret> for Curve25519PublicKey {
    fn from(secret: &x25519_dalek::StaticSecret) -> Self {
        Self(x25519_dalek::PublicKey::from(secret).to_bytes())
    }
}

/// An Ed25519 public key: a device's signing key or a group session's key.
///
/// Always a canonical encoding of a point that is not of small order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519PublicKey(VerifyingKey);

impl Ed25519PublicKey {
    /// Length in bytes.
    pub const LENGTH: usize = 32;

    /// Parses and validates 32 bytes: a canonical point, not of small order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPoint)?;
        if key.to_edwards().compress().as_bytes() != bytes {
            return Err(KeyError::InvalidPoint);
        }
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(Self(key))
    }

    /// Parses a slice, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let array = <[u8; 32]>::try_from(bytes).map_err(|_| KeyError::Length {
            expected: 32,
            found: bytes.len(),
        })?;
        Self::from_bytes(&array)
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The key's bytes, copied.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Unpadded base64.
    pub fn to_base64(&self) -> String {
        base64_encode(self.0.as_bytes())
    }

    /// Parses unpadded (or padded) base64.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        Self::from_bytes(&decode_array(text)?)
    }

    /// Strict Ed25519 verification of `signature` over `message`: rejects
    /// non-canonical scalars, small-order `R` and any mismatch.
    pub fn verify(&self, message: &[u8], signature: &Ed25519Signature) -> Result<(), KeyError> {
        self.0
            .verify_strict(message, &signature.0)
            .map_err(|_| KeyError::BadSignature)
    }

    /// Verifies a signature made with [`crate::Account::sign`]: strict
    /// Ed25519 over the app-message context label followed by `message`.
    pub fn verify_app_message(
        &self,
        message: &[u8],
        signature: &Ed25519Signature,
    ) -> Result<(), KeyError> {
        self.verify(
            &[crate::crypto::label::APP_MESSAGE, message].concat(),
            signature,
        )
    }

    pub(crate) fn from_verifying_key(key: VerifyingKey) -> Self {
        Self(key)
    }
}

impl std::hash::Hash for Ed25519PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for Ed25519PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// By encoding (a lookup order, nothing more).
impl Ord for Ed25519PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// An Ed25519 signature (64 bytes). Checked only by verification.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519Signature(Signature);

impl Ed25519Signature {
    /// Length in bytes.
    pub const LENGTH: usize = 64;

    /// The signature from its 64 bytes.
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        Self(Signature::from_bytes(bytes))
    }

    /// Parses a slice, which must be exactly 64 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        <[u8; 64]>::try_from(bytes)
            .map(|b| Self::from_bytes(&b))
            .map_err(|_| KeyError::Length {
                expected: 64,
                found: bytes.len(),
            })
    }

    /// The signature's bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }

    /// Unpadded base64.
    pub fn to_base64(&self) -> String {
        base64_encode(&self.0.to_bytes())
    }

    /// Parses unpadded (or padded) base64.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode_array(text).map(|b| Self::from_bytes(&b))
    }

    pub(crate) fn from_signature(signature: Signature) -> Self {
        Self(signature)
    }
}

macro_rules! text_form {
    ($ty:ty, $name:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_base64())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($name, "({})"), self.to_base64())
            }
        }

        impl FromStr for $ty {
            type Err = KeyError;
            fn from_str(text: &str) -> Result<Self, KeyError> {
                Self::from_base64(text)
            }
        }

        text_serde!($ty, $name);
    };
}

text_form!(Curve25519PublicKey, "Curve25519PublicKey");
text_form!(Ed25519PublicKey, "Ed25519PublicKey");
text_form!(Ed25519Signature, "Ed25519Signature");

/// A device's two long-term public keys: Ed25519 for signing, X25519 for key
/// agreement. Together they are the device's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityKeys {
    /// The device's Ed25519 signing key.
    pub ed25519: Ed25519PublicKey,
    /// The device's X25519 identity key.
    pub curve25519: Curve25519PublicKey,
}

impl IdentityKeys {
    /// 64 bytes: the Ed25519 key, then the X25519 key.
    pub(crate) fn to_bytes(self) -> [u8; 64] {
        let mut out = [0u8; 64];
        let (ed, curve) = out.split_at_mut(32);
        ed.copy_from_slice(self.ed25519.as_bytes());
        curve.copy_from_slice(self.curve25519.as_bytes());
        out
    }

    /// Reads identity keys that must be `expected`'s (validated when
    /// `expected` was made): compares the bytes instead of validating the
    /// Ed25519 key again. Other keys are refused as `IdentityKeys::read`
    /// refuses them if their Ed25519 key is invalid, else with
    /// `InvalidValue(mismatch)`.
    pub(crate) fn read_expecting(
        reader: &mut crate::codec::Reader<'_>,
        expected: &Self,
        mismatch: &'static str,
    ) -> Result<Self, crate::codec::DecodeError> {
        let ed25519 = reader.array::<32>("ed25519 identity key")?;
        let curve25519 = reader.array::<32>("curve25519 identity key")?;
        if ed25519 != *expected.ed25519.as_bytes() || curve25519 != *expected.curve25519.as_bytes()
        {
            crate::crypto::ed25519_public_key(&ed25519).ok_or(
                crate::codec::DecodeError::InvalidValue("ed25519 identity key"),
            )?;
            return Err(crate::codec::DecodeError::InvalidValue(mismatch));
        }
        Ok(*expected)
    }

    pub(crate) fn read(
        reader: &mut crate::codec::Reader<'_>,
    ) -> Result<Self, crate::codec::DecodeError> {
        // The same rules as `Ed25519PublicKey::from_bytes`, one field
        // inversion cheaper (every session pickle and session key reads one
        // or two of these).
        let ed25519 = crate::crypto::ed25519_public_key(&reader.array("ed25519 identity key")?)
            .ok_or(crate::codec::DecodeError::InvalidValue(
                "ed25519 identity key",
            ))?;
        let curve25519 = Curve25519PublicKey::from_bytes(reader.array("curve25519 identity key")?);
        Ok(Self {
            ed25519,
            curve25519,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;

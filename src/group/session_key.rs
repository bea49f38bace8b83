//! The two ways a group session's key travels: the signed [`SessionKey`]
//! its creator shares (authenticated) and the unsigned
//! [`ExportedSessionKey`] used for backups and forwarding (not
//! authenticated). Both carry the ratchet at one index and the session's
//! Ed25519 key.

use std::fmt;

use zeroize::Zeroizing;

use super::ratchet::Ratchet;
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::PROTOCOL_VERSION;
use crate::crypto::label;
use crate::keys::{Ed25519PublicKey, Ed25519Signature, base64_decode, base64_encode};

/// Length of an exported key: version, index, ratchet, Ed25519 key.
const EXPORT_LEN: usize = 1 + 4 + 128 + 32;
/// Length of a signed session key: an export and a signature.
const SESSION_KEY_LEN: usize = EXPORT_LEN + 64;

fn write_export(w: &mut Writer, ratchet: &Ratchet, signing_key: &Ed25519PublicKey) {
    w.u8(PROTOCOL_VERSION)
        .u32(ratchet.index())
        .bytes(ratchet.to_bytes().expose())
        .bytes(signing_key.as_bytes());
}

fn read_export(r: &mut Reader<'_>) -> Result<(Ratchet, Ed25519PublicKey), DecodeError> {
    r.version(PROTOCOL_VERSION)?;
    let index = r.u32("message index")?;
    let parts = Zeroizing::new(r.array::<128>("ratchet")?);
    let signing_key = Ed25519PublicKey::from_bytes(&r.array("session signing key")?)
        .map_err(|_| DecodeError::InvalidValue("session signing key"))?;
    Ok((Ratchet::from_parts(&parts, index), signing_key))
}

macro_rules! secret_text_form {
    ($ty:ty) => {
        impl $ty {
            /// Unpadded base64 of the binary form. The text is secret.
            pub fn to_base64(&self) -> Zeroizing<String> {
                Zeroizing::new(base64_encode(&self.to_bytes()))
            }

            /// Decodes the text form.
            pub fn from_base64(text: &str) -> Result<Self, DecodeError> {
                let bytes = Zeroizing::new(base64_decode(text).map_err(|_| DecodeError::Base64)?);
                Self::from_bytes(&bytes)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("session_id", &self.signing_key)
                    .field("index", &self.ratchet.index())
                    .finish_non_exhaustive()
            }
        }
    };
}

/// A group session's key as its creator shares it: the ratchet at the
/// current index and the session's Ed25519 key, signed by that key. An
/// inbound session built from it is authenticated.
///
/// Secret: anyone holding it can read the session from its index on.
#[derive(Clone)]
pub struct SessionKey {
    pub(crate) ratchet: Ratchet,
    pub(crate) signing_key: Ed25519PublicKey,
    pub(crate) signature: Ed25519Signature,
}

impl SessionKey {
    /// What the signature covers: a label, then the export encoding.
    pub(crate) fn signed_bytes(
        ratchet: &Ratchet,
        signing_key: &Ed25519PublicKey,
    ) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(label::GROUP_SESSION_KEY.len() + EXPORT_LEN);
        w.bytes(label::GROUP_SESSION_KEY);
        write_export(&mut w, ratchet, signing_key);
        Zeroizing::new(w.into_vec())
    }

    /// The binary encoding (229 bytes).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(SESSION_KEY_LEN);
        write_export(&mut w, &self.ratchet, &self.signing_key);
        w.bytes(&self.signature.to_bytes());
        Zeroizing::new(w.into_vec())
    }

    /// Strictly decodes the binary encoding; the signature is checked by
    /// [`super::InboundGroupSession::new`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let (ratchet, signing_key) = read_export(&mut r)?;
        let signature = Ed25519Signature::from_bytes(&r.array("signature")?);
        r.finish()?;
        Ok(Self {
            ratchet,
            signing_key,
            signature,
        })
    }

    /// The index the key starts at.
    pub fn first_index(&self) -> u32 {
        self.ratchet.index()
    }
}

/// A group session's key at some index without a signature, as exported
/// for backup or forwarded by another device. An inbound session imported
/// from it is not authenticated.
///
/// Secret: anyone holding it can read the session from its index on.
#[derive(Clone)]
pub struct ExportedSessionKey {
    pub(crate) ratchet: Ratchet,
    pub(crate) signing_key: Ed25519PublicKey,
}

impl ExportedSessionKey {
    /// The binary encoding (165 bytes).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(EXPORT_LEN);
        write_export(&mut w, &self.ratchet, &self.signing_key);
        Zeroizing::new(w.into_vec())
    }

    /// Strictly decodes the binary encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let (ratchet, signing_key) = read_export(&mut r)?;
        r.finish()?;
        Ok(Self {
            ratchet,
            signing_key,
        })
    }

    /// The index the key starts at.
    pub fn first_index(&self) -> u32 {
        self.ratchet.index()
    }
}

secret_text_form!(SessionKey);
secret_text_form!(ExportedSessionKey);

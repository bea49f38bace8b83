//! The two Megolm v1 key formats: the signed [`MegolmSessionKey`] a sender
//! shares in `m.room_key` (229 bytes, version 2) and the unsigned
//! [`MegolmExportedKey`] of backups and forwards (165 bytes, version 1).
//! Both: version, big-endian u32 index, the 128 ratchet bytes, the
//! session's Ed25519 key; the session key adds a signature over all that.

use std::fmt;

use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::group::GroupSessionId;
use crate::group::ratchet::{MegolmV1, Ratchet};
use crate::group::session_key::secret_text_form;
use crate::keys::{Ed25519PublicKey, Ed25519Signature, base64_decode, base64_encode};

const SESSION_KEY_VERSION: u8 = 2;
const EXPORT_VERSION: u8 = 1;
/// Bytes of an export, and of a session key before its signature.
const EXPORT_LEN: usize = 1 + 4 + 128 + 32;

fn write_key(w: &mut Writer, version: u8, ratchet: &Ratchet<MegolmV1>, key: &Ed25519PublicKey) {
    w.u8(version)
        .u32(ratchet.index())
        .bytes(ratchet.to_bytes().expose())
        .bytes(key.as_bytes());
}

fn read_key(
    r: &mut Reader<'_>,
    version: u8,
) -> Result<(Ratchet<MegolmV1>, Ed25519PublicKey), DecodeError> {
    r.version(version)?;
    let index = r.u32("message index")?;
    let parts = Zeroizing::new(r.array::<128>("ratchet")?);
    let key = crate::crypto::ed25519_public_key(&r.array("session signing key")?)
        .ok_or(DecodeError::InvalidValue("session signing key"))?;
    Ok((Ratchet::from_parts(&parts, index), key))
}

/// What both Megolm key types have beyond their text form.
macro_rules! megolm_key_common {
    ($ty:ty) => {
        secret_text_form!($ty);

        impl $ty {
            /// The index the key starts at.
            pub fn first_index(&self) -> u32 {
                self.ratchet.index()
            }

            /// The session this key belongs to.
            pub fn session_id(&self) -> GroupSessionId {
                GroupSessionId::from(self.signing_key)
            }
        }
    };
}

/// A Megolm session key as its sender shares it (version 2, signed by the
/// session's Ed25519 key). Secret: it reads the session from its index on.
#[derive(Clone)]
pub struct MegolmSessionKey {
    pub(crate) ratchet: Ratchet<MegolmV1>,
    pub(crate) signing_key: Ed25519PublicKey,
    pub(crate) signature: Ed25519Signature,
}

impl MegolmSessionKey {
    /// The 165 bytes the signature covers.
    pub(crate) fn signed_bytes(
        ratchet: &Ratchet<MegolmV1>,
        key: &Ed25519PublicKey,
    ) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(EXPORT_LEN);
        write_key(&mut w, SESSION_KEY_VERSION, ratchet, key);
        w.into_zeroizing()
    }

    /// The binary encoding (229 bytes).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(EXPORT_LEN + 64);
        write_key(
            &mut w,
            SESSION_KEY_VERSION,
            &self.ratchet,
            &self.signing_key,
        );
        w.bytes(&self.signature.to_bytes());
        w.into_zeroizing()
    }

    /// Strictly decodes the binary encoding; the signature is checked by
    /// [`crate::MegolmInboundSession::new`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let (ratchet, signing_key) = read_key(&mut r, SESSION_KEY_VERSION)?;
        let signature = Ed25519Signature::from_bytes(&r.array("signature")?);
        r.finish()?;
        Ok(Self {
            ratchet,
            signing_key,
            signature,
        })
    }

    /// Strict Ed25519 verification with the session's own key.
    pub(crate) fn verify(&self) -> Result<(), crate::keys::KeyError> {
        self.signing_key.verify(
            &Self::signed_bytes(&self.ratchet, &self.signing_key),
            &self.signature,
        )
    }
}

/// A Megolm session key at some index without a signature (version 1), as
/// exported for key backup or forwarded in `m.forwarded_room_key`. Secret.
#[derive(Clone)]
pub struct MegolmExportedKey {
    pub(crate) ratchet: Ratchet<MegolmV1>,
    pub(crate) signing_key: Ed25519PublicKey,
}

impl MegolmExportedKey {
    /// The binary encoding (165 bytes).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(EXPORT_LEN);
        write_key(&mut w, EXPORT_VERSION, &self.ratchet, &self.signing_key);
        w.into_zeroizing()
    }

    /// Strictly decodes the binary encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let (ratchet, signing_key) = read_key(&mut r, EXPORT_VERSION)?;
        r.finish()?;
        Ok(Self {
            ratchet,
            signing_key,
        })
    }
}

megolm_key_common!(MegolmSessionKey);
megolm_key_common!(MegolmExportedKey);

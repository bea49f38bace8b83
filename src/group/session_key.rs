//! The two ways a group session's key travels: the signed [`SessionKey`]
//! its creator shares (authenticated) and the unsigned
//! [`ExportedSessionKey`] used for backups and forwarding (not
//! authenticated). Both carry the ratchet at one index and the session's
//! Ed25519 key.

use std::fmt;

use zeroize::Zeroizing;

use super::check_room_id;
use super::ratchet::Ratchet;
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{MAX_ID_LEN, PROTOCOL_VERSION};
use crate::crypto::label;
use crate::keys::{Ed25519PublicKey, Ed25519Signature, IdentityKeys, base64_decode, base64_encode};

/// Length of an exported key: version, index, ratchet, Ed25519 key.
const EXPORT_LEN: usize = 1 + 4 + 128 + 32;

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
    let signing_key = crate::crypto::ed25519_public_key(&r.array("session signing key")?)
        .ok_or(DecodeError::InvalidValue("session signing key"))?;
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
/// current index, the session's Ed25519 key, the creating device's identity
/// keys and the room, all signed by the session's key. An inbound session
/// built from it is authenticated, and so is the creator it names: a device
/// that holds the key cannot re-share it as its own.
///
/// Secret: anyone holding it can read the session from its index on.
#[derive(Clone)]
pub struct SessionKey {
    pub(crate) ratchet: Ratchet,
    pub(crate) signing_key: Ed25519PublicKey,
    pub(crate) creator: IdentityKeys,
    pub(crate) room_id: String,
    pub(crate) signature: Ed25519Signature,
}

impl SessionKey {
    /// Everything before the signature, in wire order.
    fn write_unsigned(
        w: &mut Writer,
        ratchet: &Ratchet,
        signing_key: &Ed25519PublicKey,
        creator: &IdentityKeys,
        room_id: &str,
    ) {
        write_export(w, ratchet, signing_key);
        w.bytes(&creator.to_bytes()).short_bytes(room_id.as_bytes());
    }

    /// What the signature covers: a label, then the encoding up to the
    /// signature.
    pub(crate) fn signed_bytes(
        ratchet: &Ratchet,
        signing_key: &Ed25519PublicKey,
        creator: &IdentityKeys,
        room_id: &str,
    ) -> Zeroizing<Vec<u8>> {
        let mut w =
            Writer::with_capacity(label::GROUP_SESSION_KEY.len() + EXPORT_LEN + 66 + room_id.len());
        w.bytes(label::GROUP_SESSION_KEY);
        Self::write_unsigned(&mut w, ratchet, signing_key, creator, room_id);
        Zeroizing::new(w.into_vec())
    }

    /// The binary encoding (295 bytes plus the room id).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(EXPORT_LEN + 66 + self.room_id.len() + 64);
        Self::write_unsigned(
            &mut w,
            &self.ratchet,
            &self.signing_key,
            &self.creator,
            &self.room_id,
        );
        w.bytes(&self.signature.to_bytes());
        Zeroizing::new(w.into_vec())
    }

    /// Strictly decodes the binary encoding; the signature is checked by
    /// [`super::InboundGroupSession::new`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let (ratchet, signing_key) = read_export(&mut r)?;
        let creator = IdentityKeys::read(&mut r)?;
        let room_id = std::str::from_utf8(r.short_bytes(MAX_ID_LEN, "room id")?)
            .map_err(|_| DecodeError::InvalidValue("room id"))?
            .to_owned();
        check_room_id(&room_id).map_err(|_| DecodeError::InvalidValue("room id"))?;
        let signature = Ed25519Signature::from_bytes(&r.array("signature")?);
        r.finish()?;
        Ok(Self {
            ratchet,
            signing_key,
            creator,
            room_id,
            signature,
        })
    }

    /// The index the key starts at.
    pub fn first_index(&self) -> u32 {
        self.ratchet.index()
    }

    /// The device that created the session (authenticated once
    /// [`super::InboundGroupSession::new`] has verified the key).
    pub fn creator(&self) -> IdentityKeys {
        self.creator
    }

    /// The room the session encrypts for.
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// The session this key belongs to.
    pub fn session_id(&self) -> super::GroupSessionId {
        super::GroupSessionId::from(self.signing_key)
    }

    /// Verifies the signature with the session's own key.
    pub(crate) fn verify(&self) -> Result<(), crate::keys::KeyError> {
        let signed = Self::signed_bytes(
            &self.ratchet,
            &self.signing_key,
            &self.creator,
            &self.room_id,
        );
        self.signing_key.verify(&signed, &self.signature)
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

pub(crate) use secret_text_form;

secret_text_form!(SessionKey);
secret_text_form!(ExportedSessionKey);

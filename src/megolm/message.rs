//! The Megolm v1 message, byte for byte as libolm and vodozemac write it:
//! `0x03 || protobuf(index: 0x08 varint, ciphertext: 0x12 bytes) || MAC(8)
//! || Ed25519 signature(64)`. The MAC covers the version and protobuf
//! fields; the signature covers everything before it.
//!
//! Decoding is strict (canonical field order, shortest varints, whole AES
//! blocks, no unknown fields, exact lengths) and checks structure only: the
//! inbound session verifies the signature before it derives any key.

use std::fmt;

use crate::codec::{DecodeError, Reader, Writer, base64_serde};
use crate::consts::MAX_PLAINTEXT_LEN;
use crate::crypto::{BLOCK_LEN, MAC_LEN};
use crate::keys::{Ed25519Signature, base64_decode, base64_encode};

/// The version byte of Megolm v1 messages (truncated MAC).
pub const MEGOLM_MESSAGE_VERSION: u8 = 3;

const INDEX_TAG: u8 = 0x08;
const CIPHERTEXT_TAG: u8 = 0x12;
const MAX_CIPHERTEXT_LEN: usize = MAX_PLAINTEXT_LEN + BLOCK_LEN;

/// An encrypted, authenticated and signed Megolm v1 message at one ratchet
/// index: the `ciphertext` of an `m.megolm.v1.aes-sha2` event.
#[derive(Clone, PartialEq, Eq)]
pub struct MegolmMessage {
    pub(crate) index: u32,
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) mac: [u8; MAC_LEN],
    pub(crate) signature: Ed25519Signature,
}

impl MegolmMessage {
    /// The ratchet index the message was encrypted at.
    pub fn message_index(&self) -> u32 {
        self.index
    }

    /// Version and protobuf fields: what the MAC covers.
    pub(crate) fn write_unauthenticated(w: &mut Writer, index: u32, ciphertext: &[u8]) {
        w.u8(MEGOLM_MESSAGE_VERSION)
            .u8(INDEX_TAG)
            .varint(u64::from(index))
            .u8(CIPHERTEXT_TAG)
            .varint(ciphertext.len() as u64)
            .bytes(ciphertext);
    }

    /// The bytes the MAC covers.
    pub(crate) fn mac_input(index: u32, ciphertext: &[u8]) -> Vec<u8> {
        let mut w = Writer::with_capacity(12 + ciphertext.len());
        Self::write_unauthenticated(&mut w, index, ciphertext);
        w.into_vec()
    }

    /// The bytes the signature covers (everything before it).
    pub(crate) fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = Self::mac_input(self.index, &self.ciphertext);
        bytes.extend_from_slice(&self.mac);
        bytes
    }

    /// The binary encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.signed_bytes();
        bytes.extend_from_slice(&self.signature.to_bytes());
        bytes
    }

    /// Strictly decodes the binary encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let suffix = MAC_LEN + Ed25519Signature::LENGTH;
        let body_len = bytes
            .len()
            .checked_sub(suffix)
            .ok_or(DecodeError::Truncated("signature"))?;
        let (body, tail) = bytes.split_at(body_len);
        let (mac, signature) = tail.split_at(MAC_LEN);
        let mut r = Reader::new(body);
        r.version(MEGOLM_MESSAGE_VERSION)?;
        if r.u8("message index")? != INDEX_TAG {
            return Err(DecodeError::InvalidValue("message index"));
        }
        let index = u32::try_from(r.varint("message index")?)
            .map_err(|_| DecodeError::InvalidValue("message index"))?;
        if r.u8("ciphertext")? != CIPHERTEXT_TAG {
            return Err(DecodeError::InvalidValue("ciphertext"));
        }
        let len = usize::try_from(r.varint("ciphertext")?).unwrap_or(usize::MAX);
        if len > MAX_CIPHERTEXT_LEN {
            return Err(DecodeError::TooLong {
                field: "ciphertext",
                len,
                max: MAX_CIPHERTEXT_LEN,
            });
        }
        let ciphertext = r.bytes(len, "ciphertext")?;
        r.finish()?;
        if ciphertext.is_empty() || ciphertext.len() % BLOCK_LEN != 0 {
            return Err(DecodeError::InvalidValue("ciphertext"));
        }
        let mut tag = [0u8; MAC_LEN];
        tag.copy_from_slice(mac);
        Ok(Self {
            index,
            ciphertext: ciphertext.to_vec(),
            mac: tag,
            signature: Ed25519Signature::from_slice(signature)
                .map_err(|_| DecodeError::Truncated("signature"))?,
        })
    }

    /// Unpadded base64 of the binary encoding (the event's `ciphertext`).
    pub fn to_base64(&self) -> String {
        base64_encode(&self.to_bytes())
    }

    /// Decodes the text form (padded or unpadded base64).
    pub fn from_base64(text: &str) -> Result<Self, DecodeError> {
        Self::from_bytes(&base64_decode(text).map_err(|_| DecodeError::Base64)?)
    }
}

impl fmt::Debug for MegolmMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MegolmMessage")
            .field("index", &self.index)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

base64_serde!(MegolmMessage);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(index in any::<u32>(), blocks in 1usize..6, mac in any::<[u8; 8]>(), sig in any::<[u8; 32]>()) {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&sig);
            let m = MegolmMessage { index, ciphertext: vec![7; blocks * 16], mac, signature: Ed25519Signature::from_bytes(&signature) };
            let bytes = m.to_bytes();
            prop_assert_eq!(&MegolmMessage::from_bytes(&bytes)?, &m);
            prop_assert_eq!(&MegolmMessage::from_base64(&m.to_base64())?, &m);
            for len in 0..bytes.len() {
                prop_assert!(MegolmMessage::from_bytes(&bytes[..len]).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_decode_canonically(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(m) = MegolmMessage::from_bytes(&bytes) {
                prop_assert_eq!(m.to_bytes(), bytes);
            }
        }
    }
}

//! The group message: `version || index || salt || ciphertext || signature`, signed
//! by the group session's Ed25519 key over a labelled copy of everything
//! before the signature. Decoding checks structure only; the inbound session
//! verifies the signature before it derives any key.

use std::fmt;

use crate::codec::{DecodeError, Reader, Writer, base64_serde};
use crate::consts::{MAX_PLAINTEXT_LEN, PROTOCOL_VERSION};
use crate::crypto::{SALT_LEN, TAG_LEN, label};
use crate::keys::{Ed25519Signature, base64_decode, base64_encode};

/// Bytes before the ciphertext: version, index and salt.
const PREFIX_LEN: usize = 1 + 4 + SALT_LEN;

/// An encrypted, signed room event payload at one ratchet index.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupMessage {
    pub(crate) index: u32,
    /// Fresh randomness mixed into this message's key (see
    /// [`crate::consts::MESSAGE_SALT_LEN`]).
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) signature: Ed25519Signature,
}

impl GroupMessage {
    /// The ratchet index the message was encrypted at.
    pub fn message_index(&self) -> u32 {
        self.index
    }

    /// The bytes the signature covers: a label, then the encoding up to the
    /// signature.
    pub(crate) fn signed_bytes(index: u32, salt: &[u8; SALT_LEN], ciphertext: &[u8]) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            label::GROUP_MESSAGE_SIGNATURE.len() + PREFIX_LEN + ciphertext.len(),
        );
        w.bytes(label::GROUP_MESSAGE_SIGNATURE)
            .u8(PROTOCOL_VERSION)
            .u32(index)
            .bytes(salt)
            .bytes(ciphertext);
        w.into_vec()
    }

    /// [`GroupMessage::signed_bytes`] of this message.
    pub(crate) fn own_signed_bytes(&self) -> Vec<u8> {
        Self::signed_bytes(self.index, &self.salt, &self.ciphertext)
    }

    /// The binary encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w =
            Writer::with_capacity(PREFIX_LEN + self.ciphertext.len() + Ed25519Signature::LENGTH);
        w.u8(PROTOCOL_VERSION)
            .u32(self.index)
            .bytes(&self.salt)
            .bytes(&self.ciphertext)
            .bytes(&self.signature.to_bytes());
        w.into_vec()
    }

    /// Strictly decodes the binary encoding (structure only: the signature
    /// is checked when decrypting).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let index = r.u32("message index")?;
        let salt = r.array("salt")?;
        let rest = r.rest();
        let body_len = rest
            .len()
            .checked_sub(Ed25519Signature::LENGTH)
            .ok_or(DecodeError::Truncated("signature"))?;
        let (ciphertext, signature) = rest.split_at(body_len);
        if ciphertext.len() < TAG_LEN {
            return Err(DecodeError::Truncated("ciphertext"));
        }
        let max = MAX_PLAINTEXT_LEN + TAG_LEN;
        if ciphertext.len() > max {
            return Err(DecodeError::TooLong {
                field: "ciphertext",
                len: ciphertext.len(),
                max,
            });
        }
        let signature = Ed25519Signature::from_slice(signature)
            .map_err(|_| DecodeError::Truncated("signature"))?;
        Ok(Self {
            index,
            salt,
            ciphertext: ciphertext.to_vec(),
            signature,
        })
    }

    /// Unpadded base64 of the binary encoding.
    pub fn to_base64(&self) -> String {
        base64_encode(&self.to_bytes())
    }

    /// Decodes the text form.
    pub fn from_base64(text: &str) -> Result<Self, DecodeError> {
        Self::from_bytes(&base64_decode(text).map_err(|_| DecodeError::Base64)?)
    }
}

impl fmt::Debug for GroupMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupMessage")
            .field("index", &self.index)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

base64_serde!(GroupMessage);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(index in any::<u32>(), salt in any::<[u8; SALT_LEN]>(), ciphertext in proptest::collection::vec(any::<u8>(), 16..300), sig in any::<[u8; 32]>()) {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&sig);
            let message = GroupMessage { index, salt, ciphertext, signature: Ed25519Signature::from_bytes(&signature) };
            prop_assert_eq!(&GroupMessage::from_bytes(&message.to_bytes())?, &message);
            prop_assert_eq!(&GroupMessage::from_base64(&message.to_base64())?, &message);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(message) = GroupMessage::from_bytes(&bytes) {
                prop_assert_eq!(message.to_bytes(), bytes);
            }
        }
    }

    #[test]
    fn rejects_short_and_unknown_version() {
        assert_eq!(GroupMessage::from_bytes(&[]), Err(DecodeError::Empty));
        assert_eq!(
            GroupMessage::from_bytes(&[3, 0, 0, 0, 0]),
            Err(DecodeError::UnknownVersion(3))
        );
        assert_eq!(
            GroupMessage::from_bytes(&[2, 0, 0, 0, 0]),
            Err(DecodeError::Truncated("salt"))
        );
        assert_eq!(
            GroupMessage::from_bytes(&[[2u8, 0, 0, 0, 0].as_slice(), &[0; SALT_LEN]].concat()),
            Err(DecodeError::Truncated("signature"))
        );
        let mut short = vec![2, 0, 0, 0, 0];
        short.extend_from_slice(&[0; SALT_LEN]);
        short.extend_from_slice(&[0; 64 + 15]);
        assert_eq!(
            GroupMessage::from_bytes(&short),
            Err(DecodeError::Truncated("ciphertext"))
        );
    }
}

//! Pairwise wire messages: the normal message, the pre-key message that
//! carries what a responder needs to build the session, and
//! [`DeviceMessage`], which holds either. Byte layouts are in PROTOCOL.md.
//!
//! Decoding is strict (version, lengths, key validity, no trailing bytes)
//! and never panics; nothing here is authenticated until a session decrypts
//! it.

use std::fmt;

use crate::codec::{DecodeError, Reader, Writer, base64_serde};
use crate::consts::{MAX_PLAINTEXT_LEN, PROTOCOL_VERSION};
use crate::crypto::{SALT_LEN, TAG_LEN, label, sha256};
use crate::keys::{
    Curve25519PublicKey, Ed25519Signature, IdentityKeys, base64_decode, base64_encode,
};

const KIND_PRE_KEY: u8 = 0;
const KIND_NORMAL: u8 = 1;

/// Bytes of a normal message's header: ratchet key, previous chain length,
/// counter, salt.
pub(crate) const HEADER_LEN: usize = 32 + 4 + 4 + SALT_LEN;

/// The identifier of a pairwise session: SHA-256 over the keys that started
/// it, so both sides (and the responder, before decrypting) compute it alike.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 32]);

impl SessionId {
    /// The id's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id from its bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Unpadded base64.
    pub fn to_base64(&self) -> String {
        base64_encode(&self.0)
    }

    /// Session id of a session started by `initiator` from its ephemeral
    /// `base_key` to the responder's `one_time_key`.
    pub(crate) fn compute(
        initiator: &IdentityKeys,
        base_key: &Curve25519PublicKey,
        one_time_key: &Curve25519PublicKey,
    ) -> Self {
        Self(sha256(&[
            label::SESSION_ID,
            initiator.ed25519.as_bytes(),
            initiator.curve25519.as_bytes(),
            base_key.as_bytes(),
            one_time_key.as_bytes(),
        ]))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.to_base64())
    }
}

/// A message of an established ratchet chain: the sender's ratchet key, the
/// length of its previous sending chain, this message's counter, the fresh
/// random salt mixed into its key, and the AES-256-GCM ciphertext with its
/// tag.
#[derive(Clone, PartialEq, Eq)]
pub struct NormalMessage {
    pub(crate) ratchet_key: Curve25519PublicKey,
    pub(crate) previous_counter: u32,
    pub(crate) counter: u32,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) ciphertext: Vec<u8>,
}

impl NormalMessage {
    /// The sender's current ratchet key.
    pub fn ratchet_key(&self) -> Curve25519PublicKey {
        self.ratchet_key
    }

    /// The index of this message in its chain.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// How many messages the sender sent on its previous chain.
    pub fn previous_counter(&self) -> u32 {
        self.previous_counter
    }

    /// The header bytes the associated data binds.
    pub(crate) fn header(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let (key, rest) = out.split_at_mut(32);
        let (previous, rest) = rest.split_at_mut(4);
        let (counter, salt) = rest.split_at_mut(4);
        key.copy_from_slice(self.ratchet_key.as_bytes());
        previous.copy_from_slice(&self.previous_counter.to_be_bytes());
        counter.copy_from_slice(&self.counter.to_be_bytes());
        salt.copy_from_slice(&self.salt);
        out
    }

    fn write(&self, w: &mut Writer) {
        w.bytes(&self.header()).bytes(&self.ciphertext);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ratchet_key = Curve25519PublicKey::from_bytes(r.array("ratchet key")?);
        let previous_counter = r.u32("previous counter")?;
        let counter = r.u32("counter")?;
        let salt = r.array("salt")?;
        let ciphertext = r.rest();
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
        Ok(Self {
            ratchet_key,
            previous_counter,
            counter,
            salt,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

/// A message sent before the responder has replied: everything needed to
/// build the session (the one-time key it was started from, the initiator's
/// ephemeral base key and identity keys, and the initiator's signature
/// binding its Ed25519 key to this session) plus a normal message.
#[derive(Clone, PartialEq, Eq)]
pub struct PreKeyMessage {
    pub(crate) one_time_key: Curve25519PublicKey,
    pub(crate) base_key: Curve25519PublicKey,
    pub(crate) identity_keys: IdentityKeys,
    pub(crate) binding: Ed25519Signature,
    pub(crate) message: NormalMessage,
}

impl PreKeyMessage {
    /// The responder's one-time (or fallback) key the session was started from.
    pub fn one_time_key(&self) -> Curve25519PublicKey {
        self.one_time_key
    }

    /// The initiator's ephemeral base key.
    pub fn base_key(&self) -> Curve25519PublicKey {
        self.base_key
    }

    /// The initiator's identity keys as claimed (authenticated once the
    /// message decrypts).
    pub fn identity_keys(&self) -> IdentityKeys {
        self.identity_keys
    }

    /// The id of the session this message starts, computable before
    /// decrypting it.
    pub fn session_id(&self) -> SessionId {
        SessionId::compute(&self.identity_keys, &self.base_key, &self.one_time_key)
    }

    /// The normal message inside.
    pub fn message(&self) -> &NormalMessage {
        &self.message
    }

    fn write(&self, w: &mut Writer) {
        w.bytes(self.one_time_key.as_bytes())
            .bytes(self.base_key.as_bytes())
            .bytes(&self.identity_keys.to_bytes())
            .bytes(&self.binding.to_bytes());
        self.message.write(w);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let one_time_key = Curve25519PublicKey::from_bytes(r.array("one-time key")?);
        let base_key = Curve25519PublicKey::from_bytes(r.array("base key")?);
        let identity_keys = IdentityKeys::read(r)?;
        let binding = Ed25519Signature::from_bytes(&r.array("binding signature")?);
        let message = NormalMessage::read(r)?;
        Ok(Self {
            one_time_key,
            base_key,
            identity_keys,
            binding,
            message,
        })
    }
}

/// A pairwise message as it travels between two devices: a pre-key message
/// (until the initiator has decrypted a reply) or a normal message.
///
/// Binary form: version byte, kind byte, body (PROTOCOL.md); text form:
/// unpadded base64 of that; serde uses the text form.
// The pre-key variant is larger, but messages are short-lived values that
// are decoded, decrypted and dropped; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq)]
pub enum DeviceMessage {
    /// A message that can start a session on the receiving side.
    PreKey(PreKeyMessage),
    /// A message of an established session.
    Normal(NormalMessage),
}

impl DeviceMessage {
    /// Whether this is a pre-key message.
    pub fn is_pre_key(&self) -> bool {
        matches!(self, DeviceMessage::PreKey(_))
    }

    /// The ratchet message inside (for a pre-key message, its inner message).
    pub fn normal(&self) -> &NormalMessage {
        match self {
            DeviceMessage::PreKey(m) => &m.message,
            DeviceMessage::Normal(m) => m,
        }
    }

    /// The binary encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = self.normal().ciphertext.len() + HEADER_LEN;
        let mut w = Writer::with_capacity(2 + 192 + body);
        w.u8(PROTOCOL_VERSION);
        match self {
            DeviceMessage::PreKey(m) => {
                w.u8(KIND_PRE_KEY);
                m.write(&mut w);
            }
            DeviceMessage::Normal(m) => {
                w.u8(KIND_NORMAL);
                m.write(&mut w);
            }
        }
        w.into_vec()
    }

    /// Strictly decodes the binary encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let message = match r.u8("message kind")? {
            KIND_PRE_KEY => DeviceMessage::PreKey(PreKeyMessage::read(&mut r)?),
            KIND_NORMAL => DeviceMessage::Normal(NormalMessage::read(&mut r)?),
            _ => return Err(DecodeError::InvalidValue("message kind")),
        };
        r.finish()?;
        Ok(message)
    }

    /// Unpadded base64 of the binary encoding.
    pub fn to_base64(&self) -> String {
        base64_encode(&self.to_bytes())
    }

    /// Decodes the text form (unpadded or padded base64).
    pub fn from_base64(text: &str) -> Result<Self, DecodeError> {
        let bytes = base64_decode(text).map_err(|_| DecodeError::Base64)?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Debug for NormalMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NormalMessage")
            .field("ratchet_key", &self.ratchet_key)
            .field("previous_counter", &self.previous_counter)
            .field("counter", &self.counter)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

impl fmt::Debug for PreKeyMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreKeyMessage")
            .field("session_id", &self.session_id())
            .field("one_time_key", &self.one_time_key)
            .field("base_key", &self.base_key)
            .field("identity_keys", &self.identity_keys)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Debug for DeviceMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceMessage::PreKey(m) => m.fmt(f),
            DeviceMessage::Normal(m) => m.fmt(f),
        }
    }
}

base64_serde!(DeviceMessage);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn identity() -> IdentityKeys {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
        IdentityKeys {
            ed25519: crate::keys::Ed25519PublicKey::from_verifying_key(signing.verifying_key()),
            curve25519: Curve25519PublicKey::from_bytes([2u8; 32]),
        }
    }

    prop_compose! {
        fn normal()(key in any::<[u8; 32]>(), previous in any::<u32>(), counter in any::<u32>(),
                    salt in any::<[u8; SALT_LEN]>(),
                    ciphertext in proptest::collection::vec(any::<u8>(), 16..200)) -> NormalMessage {
            NormalMessage { ratchet_key: Curve25519PublicKey::from_bytes(key), previous_counter: previous, counter, salt, ciphertext }
        }
    }

    prop_compose! {
        fn device_message()(message in normal(), pre in any::<bool>(), otk in any::<[u8; 32]>(),
                            base in any::<[u8; 32]>(), sig in any::<[u8; 32]>()) -> DeviceMessage {
            if pre {
                let mut binding = [0u8; 64];
                binding[..32].copy_from_slice(&sig);
                DeviceMessage::PreKey(PreKeyMessage {
                    one_time_key: Curve25519PublicKey::from_bytes(otk),
                    base_key: Curve25519PublicKey::from_bytes(base),
                    identity_keys: identity(),
                    binding: Ed25519Signature::from_bytes(&binding),
                    message,
                })
            } else {
                DeviceMessage::Normal(message)
            }
        }
    }

    proptest! {
        #[test]
        fn binary_and_text_round_trip(message in device_message()) {
            let bytes = message.to_bytes();
            prop_assert_eq!(&DeviceMessage::from_bytes(&bytes)?, &message);
            prop_assert_eq!(&DeviceMessage::from_base64(&message.to_base64())?, &message);
            let json = serde_json::to_string(&message).unwrap();
            prop_assert_eq!(&serde_json::from_str::<DeviceMessage>(&json).unwrap(), &message);
            // Every strict prefix is rejected, and so is any appended byte
            // inside the fixed part (the ciphertext absorbs the tail).
            for len in 0..bytes.len().min(2 + 192 + HEADER_LEN + TAG_LEN) {
                if len < bytes.len() {
                    let prefix = &bytes[..len];
                    if let Ok(decoded) = DeviceMessage::from_bytes(prefix) {
                        prop_assert!(decoded.normal().ciphertext.len() < message.normal().ciphertext.len());
                    }
                }
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(message) = DeviceMessage::from_bytes(&bytes) {
                prop_assert_eq!(message.to_bytes(), bytes);
            }
        }
    }

    #[test]
    fn rejects_bad_version_kind_and_short_ciphertext() {
        assert_eq!(DeviceMessage::from_bytes(&[]), Err(DecodeError::Empty));
        assert_eq!(
            DeviceMessage::from_bytes(&[1, 1]),
            Err(DecodeError::UnknownVersion(1))
        );
        assert_eq!(
            DeviceMessage::from_bytes(&[2, 7]),
            Err(DecodeError::InvalidValue("message kind"))
        );
        let mut short = vec![2, 1];
        short.extend_from_slice(&[0u8; HEADER_LEN + 15]);
        assert_eq!(
            DeviceMessage::from_bytes(&short),
            Err(DecodeError::Truncated("ciphertext"))
        );
        assert_eq!(DeviceMessage::from_base64("$$"), Err(DecodeError::Base64));
    }
}

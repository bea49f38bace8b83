//! Olm v1 wire messages, byte for byte as libolm and vodozemac write them:
//! a version byte (3), protobuf fields, and for a normal message an 8-byte
//! truncated HMAC; and their Matrix JSON form `{"type": 0|1, "body": ...}`.
//!
//! Decoding is stricter than protobuf requires and exactly as strict as the
//! encoders of libolm and vodozemac are regular: the fields must come in
//! their canonical order, each exactly once, with shortest varints, 32-byte
//! keys, no unknown fields and a ciphertext of whole AES blocks. Every
//! message either implementation writes passes; nothing else does, so one
//! message has one encoding. Nothing here is authenticated until a session
//! decrypts it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::MAX_PLAINTEXT_LEN;
use crate::crypto::{BLOCK_LEN, MAC_LEN, sha256};
use crate::keys::{Curve25519PublicKey, base64_decode, base64_encode};
use crate::session::SessionId;

/// The version byte of Olm v1 messages (truncated MAC).
pub const OLM_MESSAGE_VERSION: u8 = 3;

/// Protobuf keys (field number << 3 | wire type) of the normal message.
const RATCHET_KEY_TAG: u8 = 0x0A;
const COUNTER_TAG: u8 = 0x10;
const CIPHERTEXT_TAG: u8 = 0x22;
/// Protobuf keys of the pre-key message.
const ONE_TIME_KEY_TAG: u8 = 0x0A;
const BASE_KEY_TAG: u8 = 0x12;
const IDENTITY_KEY_TAG: u8 = 0x1A;
const MESSAGE_TAG: u8 = 0x22;

/// Largest ciphertext: the largest plaintext plus a block of padding.
const MAX_CIPHERTEXT_LEN: usize = MAX_PLAINTEXT_LEN + BLOCK_LEN;

fn expect_tag(r: &mut Reader<'_>, tag: u8, field: &'static str) -> Result<(), DecodeError> {
    if r.u8(field)? == tag {
        Ok(())
    } else {
        Err(DecodeError::InvalidValue(field))
    }
}

/// A length-delimited field's bytes, at most `max` long.
fn length_delimited<'a>(
    r: &mut Reader<'a>,
    max: usize,
    field: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let len = r.varint(field)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max {
        return Err(DecodeError::TooLong { field, len, max });
    }
    r.bytes(len, field)
}

fn key_field(
    r: &mut Reader<'_>,
    tag: u8,
    field: &'static str,
) -> Result<Curve25519PublicKey, DecodeError> {
    expect_tag(r, tag, field)?;
    let bytes = length_delimited(r, 32, field)?;
    // X25519 ignores the top bit of a public key, so a key with it set
    // would be a second encoding of the same key (and, for the base key, of
    // the same session under another session id). No implementation
    // writes one; roomseal refuses them.
    if bytes.get(31).is_some_and(|b| b & 0x80 != 0) {
        return Err(DecodeError::InvalidValue(field));
    }
    Curve25519PublicKey::from_slice(bytes).map_err(|_| DecodeError::InvalidValue(field))
}

fn write_key(w: &mut Writer, tag: u8, key: &Curve25519PublicKey) {
    w.u8(tag).varint(32).bytes(key.as_bytes());
}

/// A message of an established Olm chain: the sender's ratchet key, the
/// message's index in its chain, the AES-256-CBC ciphertext and the
/// truncated HMAC over everything before it.
#[derive(Clone, PartialEq, Eq)]
pub struct OlmNormalMessage {
    pub(crate) ratchet_key: Curve25519PublicKey,
    pub(crate) counter: u32,
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) mac: [u8; MAC_LEN],
}

impl OlmNormalMessage {
    /// The sender's ratchet key.
    pub fn ratchet_key(&self) -> Curve25519PublicKey {
        self.ratchet_key
    }

    /// The message's index in its chain.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// Version and protobuf fields: the bytes the MAC covers.
    pub(crate) fn write_unauthenticated(&self, w: &mut Writer) {
        w.u8(OLM_MESSAGE_VERSION);
        write_key(w, RATCHET_KEY_TAG, &self.ratchet_key);
        w.u8(COUNTER_TAG)
            .varint(u64::from(self.counter))
            .u8(CIPHERTEXT_TAG)
            .varint(self.ciphertext.len() as u64)
            .bytes(&self.ciphertext);
    }

    /// The bytes the MAC covers.
    pub(crate) fn mac_input(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(48 + self.ciphertext.len());
        self.write_unauthenticated(&mut w);
        w.into_vec()
    }

    /// The binary encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(48 + self.ciphertext.len() + MAC_LEN);
        self.write_unauthenticated(&mut w);
        w.bytes(&self.mac);
        w.into_vec()
    }

    /// Strictly decodes the binary encoding (structure only: the MAC is
    /// checked when decrypting).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let body_len = bytes
            .len()
            .checked_sub(MAC_LEN)
            .ok_or(DecodeError::Truncated("mac"))?;
        let (body, mac) = bytes.split_at(body_len);
        let mut r = Reader::new(body);
        r.version(OLM_MESSAGE_VERSION)?;
        let ratchet_key = key_field(&mut r, RATCHET_KEY_TAG, "ratchet key")?;
        expect_tag(&mut r, COUNTER_TAG, "chain index")?;
        let counter = u32::try_from(r.varint("chain index")?)
            .map_err(|_| DecodeError::InvalidValue("chain index"))?;
        expect_tag(&mut r, CIPHERTEXT_TAG, "ciphertext")?;
        let ciphertext = length_delimited(&mut r, MAX_CIPHERTEXT_LEN, "ciphertext")?;
        r.finish()?;
        if ciphertext.is_empty() || ciphertext.len() % BLOCK_LEN != 0 {
            return Err(DecodeError::InvalidValue("ciphertext"));
        }
        let mut tag = [0u8; MAC_LEN];
        tag.copy_from_slice(mac);
        Ok(Self {
            ratchet_key,
            counter,
            ciphertext: ciphertext.to_vec(),
            mac: tag,
        })
    }
}

/// A message sent before the responder has replied: the responder's
/// one-time key the session was started from, the initiator's base key and
/// identity key, and a normal message.
#[derive(Clone, PartialEq, Eq)]
pub struct OlmPreKeyMessage {
    pub(crate) one_time_key: Curve25519PublicKey,
    pub(crate) base_key: Curve25519PublicKey,
    pub(crate) identity_key: Curve25519PublicKey,
    pub(crate) message: OlmNormalMessage,
}

impl OlmPreKeyMessage {
    /// The responder's one-time (or fallback) key.
    pub fn one_time_key(&self) -> Curve25519PublicKey {
        self.one_time_key
    }

    /// The initiator's ephemeral base key.
    pub fn base_key(&self) -> Curve25519PublicKey {
        self.base_key
    }

    /// The initiator's Curve25519 identity key, as claimed (authenticated
    /// once the message decrypts).
    pub fn identity_key(&self) -> Curve25519PublicKey {
        self.identity_key
    }

    /// The normal message inside.
    pub fn message(&self) -> &OlmNormalMessage {
        &self.message
    }

    /// The id of the session this message starts.
    pub fn session_id(&self) -> SessionId {
        olm_session_id(&self.identity_key, &self.base_key, &self.one_time_key)
    }

    /// The binary encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let inner = self.message.to_bytes();
        let mut w = Writer::with_capacity(1 + 3 * 34 + 4 + inner.len());
        w.u8(OLM_MESSAGE_VERSION);
        write_key(&mut w, ONE_TIME_KEY_TAG, &self.one_time_key);
        write_key(&mut w, BASE_KEY_TAG, &self.base_key);
        write_key(&mut w, IDENTITY_KEY_TAG, &self.identity_key);
        w.u8(MESSAGE_TAG).varint(inner.len() as u64).bytes(&inner);
        w.into_vec()
    }

    /// Strictly decodes the binary encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(OLM_MESSAGE_VERSION)?;
        let one_time_key = key_field(&mut r, ONE_TIME_KEY_TAG, "one-time key")?;
        let base_key = key_field(&mut r, BASE_KEY_TAG, "base key")?;
        let identity_key = key_field(&mut r, IDENTITY_KEY_TAG, "identity key")?;
        expect_tag(&mut r, MESSAGE_TAG, "message")?;
        let inner = length_delimited(&mut r, MAX_CIPHERTEXT_LEN + 64, "message")?;
        r.finish()?;
        Ok(Self {
            one_time_key,
            base_key,
            identity_key,
            message: OlmNormalMessage::from_bytes(inner)?,
        })
    }
}

/// The Olm session id: SHA-256 over the initiator's identity key, its base
/// key and the responder's one-time key (unpadded base64 in Matrix).
pub(crate) fn olm_session_id(
    identity_key: &Curve25519PublicKey,
    base_key: &Curve25519PublicKey,
    one_time_key: &Curve25519PublicKey,
) -> SessionId {
    SessionId::from_bytes(sha256(&[
        identity_key.as_bytes(),
        base_key.as_bytes(),
        one_time_key.as_bytes(),
    ]))
}

/// An Olm message as Matrix carries it: a pre-key message (type 0) until
/// the initiator has read a reply, a normal message (type 1) after.
///
/// Serde form: `{"type": 0, "body": "<unpadded base64>"}`, as in the
/// `ciphertext` map of an `m.olm.v1.curve25519-aes-sha2` event; padded
/// base64 is accepted on input.
// The pre-key variant is larger, but messages are short-lived values.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq)]
pub enum OlmMessage {
    /// Type 0: a message that can start a session.
    PreKey(OlmPreKeyMessage),
    /// Type 1: a message of an established session.
    Normal(OlmNormalMessage),
}

/// The JSON shape of an [`OlmMessage`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OlmMessageJson<'a> {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(borrow)]
    body: std::borrow::Cow<'a, str>,
}

impl OlmMessage {
    /// The Matrix message type: 0 for pre-key, 1 for normal.
    pub fn message_type(&self) -> u8 {
        match self {
            OlmMessage::PreKey(_) => 0,
            OlmMessage::Normal(_) => 1,
        }
    }

    /// Whether this is a pre-key message.
    pub fn is_pre_key(&self) -> bool {
        matches!(self, OlmMessage::PreKey(_))
    }

    /// The binary encoding of the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            OlmMessage::PreKey(m) => m.to_bytes(),
            OlmMessage::Normal(m) => m.to_bytes(),
        }
    }

    /// The body as Matrix sends it: unpadded base64.
    pub fn body(&self) -> String {
        base64_encode(&self.to_bytes())
    }

    /// Decodes a message from its Matrix type (0 or 1) and binary body.
    pub fn from_parts(message_type: u8, body: &[u8]) -> Result<Self, DecodeError> {
        match message_type {
            0 => OlmPreKeyMessage::from_bytes(body).map(OlmMessage::PreKey),
            1 => OlmNormalMessage::from_bytes(body).map(OlmMessage::Normal),
            _ => Err(DecodeError::InvalidValue("message type")),
        }
    }

    /// Decodes a message from its Matrix type and base64 body (padded or
    /// unpadded).
    pub fn from_base64_parts(message_type: u8, body: &str) -> Result<Self, DecodeError> {
        let bytes = base64_decode(body).map_err(|_| DecodeError::Base64)?;
        Self::from_parts(message_type, &bytes)
    }

    /// The JSON form `{"type": 0|1, "body": "..."}`.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"type\":{},\"body\":\"{}\"}}",
            self.message_type(),
            self.body()
        )
    }

    /// Decodes the JSON form.
    pub fn from_json(json: &str) -> Result<Self, DecodeError> {
        let parsed: OlmMessageJson<'_> =
            serde_json::from_str(json).map_err(|_| DecodeError::InvalidValue("json"))?;
        Self::from_base64_parts(parsed.kind, &parsed.body)
    }
}

impl Serialize for OlmMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        OlmMessageJson {
            kind: self.message_type(),
            body: self.body().into(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OlmMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Owned {
            #[serde(rename = "type")]
            kind: u8,
            body: String,
        }
        let parsed = Owned::deserialize(deserializer)?;
        Self::from_base64_parts(parsed.kind, &parsed.body).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for OlmNormalMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OlmNormalMessage")
            .field("ratchet_key", &self.ratchet_key)
            .field("counter", &self.counter)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

impl fmt::Debug for OlmPreKeyMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OlmPreKeyMessage")
            .field("session_id", &self.session_id())
            .field("one_time_key", &self.one_time_key)
            .field("base_key", &self.base_key)
            .field("identity_key", &self.identity_key)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Debug for OlmMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OlmMessage::PreKey(m) => m.fmt(f),
            OlmMessage::Normal(m) => m.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    prop_compose! {
        fn normal()(key in any::<[u8; 32]>().prop_map(|mut k| { k[31] &= 0x7f; k }), counter in any::<u32>(), blocks in 1usize..8,
                    fill in any::<u8>(), mac in any::<[u8; 8]>()) -> OlmNormalMessage {
            OlmNormalMessage {
                ratchet_key: Curve25519PublicKey::from_bytes(key),
                counter,
                ciphertext: vec![fill; blocks * BLOCK_LEN],
                mac,
            }
        }
    }

    prop_compose! {
        fn message()(inner in normal(), pre in any::<bool>(), mut keys in any::<[[u8; 32]; 3]>()) -> OlmMessage {
            for k in &mut keys { k[31] &= 0x7f; }
            if pre {
                OlmMessage::PreKey(OlmPreKeyMessage {
                    one_time_key: Curve25519PublicKey::from_bytes(keys[0]),
                    base_key: Curve25519PublicKey::from_bytes(keys[1]),
                    identity_key: Curve25519PublicKey::from_bytes(keys[2]),
                    message: inner,
                })
            } else {
                OlmMessage::Normal(inner)
            }
        }
    }

    proptest! {
        #[test]
        fn binary_json_and_serde_round_trip(m in message()) {
            let bytes = m.to_bytes();
            prop_assert_eq!(&OlmMessage::from_parts(m.message_type(), &bytes)?, &m);
            prop_assert_eq!(&OlmMessage::from_json(&m.to_json())?, &m);
            let json = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(&json, &m.to_json());
            prop_assert_eq!(&serde_json::from_str::<OlmMessage>(&json).unwrap(), &m);
            // Every strict prefix is rejected.
            for len in 0..bytes.len() {
                prop_assert!(OlmMessage::from_parts(m.message_type(), &bytes[..len]).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_decode_canonically(kind in 0u8..3, bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(m) = OlmMessage::from_parts(kind, &bytes) {
                prop_assert_eq!(m.to_bytes(), bytes);
            }
        }
    }

    #[test]
    fn rejects_non_canonical_forms() {
        let m = OlmNormalMessage {
            ratchet_key: Curve25519PublicKey::from_bytes([1; 32]),
            counter: 5,
            ciphertext: vec![0; 16],
            mac: [0; 8],
        };
        let good = m.to_bytes();
        assert!(OlmNormalMessage::from_bytes(&good).is_ok());
        let mut wrong_version = good.clone();
        wrong_version[0] = 4;
        assert_eq!(
            OlmNormalMessage::from_bytes(&wrong_version),
            Err(DecodeError::UnknownVersion(4))
        );
        // A padded varint for the counter.
        let mut padded = good[..36].to_vec();
        padded.extend_from_slice(&[0x85, 0x00]);
        padded.extend_from_slice(&good[37..]);
        assert_eq!(
            OlmNormalMessage::from_bytes(&padded),
            Err(DecodeError::InvalidValue("chain index"))
        );
        // A key with the ignored top bit set.
        let mut high = m.clone();
        high.ratchet_key = Curve25519PublicKey::from_bytes([0xff; 32]);
        assert_eq!(
            OlmNormalMessage::from_bytes(&high.to_bytes()),
            Err(DecodeError::InvalidValue("ratchet key"))
        );
        // A ciphertext that is not whole blocks.
        let mut odd = m.clone();
        odd.ciphertext = vec![0; 15];
        assert_eq!(
            OlmNormalMessage::from_bytes(&odd.to_bytes()),
            Err(DecodeError::InvalidValue("ciphertext"))
        );
        assert_eq!(
            OlmMessage::from_json(r#"{"type":2,"body":"AA"}"#),
            Err(DecodeError::InvalidValue("message type"))
        );
        assert_eq!(
            OlmMessage::from_json(r#"{"type":1,"body":"A"}"#),
            Err(DecodeError::Base64)
        );
    }
}

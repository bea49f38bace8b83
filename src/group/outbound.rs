//! The sending side of a room key: one device's outbound group session for
//! one room.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use zeroize::Zeroizing;

use super::message::GroupMessage;
use super::ratchet::Ratchet;
use super::session_key::SessionKey;
use super::{GroupError, GroupSessionId, associated_data, check_room_id};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{MAX_ID_LEN, MAX_PLAINTEXT_LEN};
use crate::crypto::{Secret, TAG_LEN, os_rng};
use crate::keys::{Ed25519PublicKey, Ed25519Signature, IdentityKeys};
use crate::pickle::{Generation, PickleKind, pickle_methods, pickled};

/// A room key as its creator holds it: the ratchet at the next index to
/// send, the Ed25519 key that signs every message, and the room it is for.
pub struct OutboundGroupSession {
    room_id: String,
    /// Boxed so that moving the session never leaves a copy behind.
    signing: Box<SigningKey>,
    signing_public: Ed25519PublicKey,
    ratchet: Ratchet,
    creator: IdentityKeys,
    generation: Generation,
}

impl OutboundGroupSession {
    /// A new session for `room_id` (1 to 255 bytes), created by the device
    /// with identity keys `creator`, from the OS generator.
    pub fn new(room_id: &str, creator: IdentityKeys) -> Result<Self, GroupError> {
        Self::new_with_rng(room_id, creator, &mut os_rng())
    }

    /// [`OutboundGroupSession::new`] with a caller-supplied generator.
    pub fn new_with_rng<R: rand::CryptoRng + ?Sized>(
        room_id: &str,
        creator: IdentityKeys,
        rng: &mut R,
    ) -> Result<Self, GroupError> {
        check_room_id(room_id)?;
        let signing = SigningKey::generate(rng);
        Ok(Self {
            room_id: room_id.to_owned(),
            signing_public: Ed25519PublicKey::from_verifying_key(signing.verifying_key()),
            signing: Box::new(signing),
            ratchet: Ratchet::random(rng),
            creator,
            generation: Generation::default(),
        })
    }

    /// The device that created the session.
    pub fn creator(&self) -> IdentityKeys {
        self.creator
    }

    /// The room this session encrypts for.
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// The session id (the session's Ed25519 public key).
    pub fn session_id(&self) -> GroupSessionId {
        GroupSessionId::from(self.signing_public)
    }

    /// The index the next message will use (the number sent so far).
    pub fn message_index(&self) -> u32 {
        self.ratchet.index()
    }

    /// Encrypts and signs one message, then advances the ratchet so the key
    /// is never used again.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<GroupMessage, GroupError> {
        self.encrypt_with_rng(plaintext, &mut os_rng())
    }

    /// [`OutboundGroupSession::encrypt`] with the message's salt drawn from
    /// `rng` (the salt keeps a rolled-back session from reusing a key/nonce
    /// pair: outside deterministic tests, leave it to the OS generator).
    pub fn encrypt_with_rng<R: rand::CryptoRng + ?Sized>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<GroupMessage, GroupError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(GroupError::PlaintextTooLong {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let index = self.ratchet.index();
        if index == u32::MAX {
            return Err(GroupError::Exhausted);
        }
        let aad = associated_data(&self.room_id, &self.session_id(), index);
        let salt = crate::crypto::salt(rng);
        let mut ciphertext = Vec::with_capacity(plaintext.len() + TAG_LEN);
        self.ratchet
            .message_key(&salt)
            .seal_into(&aad, plaintext, &mut ciphertext)
            .map_err(|_| GroupError::PlaintextTooLong {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            })?;
        let signature = Ed25519Signature::from_signature(
            self.signing
                .sign(&GroupMessage::signed_bytes(index, &salt, &ciphertext)),
        );
        self.ratchet.advance();
        Ok(GroupMessage {
            index,
            salt,
            ciphertext,
            signature,
        })
    }

    #[cfg(test)]
    pub(crate) fn ratchet_mut(&mut self) -> &mut Ratchet {
        &mut self.ratchet
    }

    /// The signed session key at the current index, to share with the
    /// devices that may read from now on.
    pub fn session_key(&self) -> SessionKey {
        let signed = SessionKey::signed_bytes(
            &self.ratchet,
            &self.signing_public,
            &self.creator,
            &self.room_id,
        );
        SessionKey {
            ratchet: self.ratchet.clone(),
            signing_key: self.signing_public,
            creator: self.creator,
            room_id: self.room_id.clone(),
            signature: Ed25519Signature::from_signature(self.signing.sign(&signed)),
        }
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.short_bytes(self.room_id.as_bytes())
            .bytes(&self.creator.to_bytes())
            .bytes(self.signing.as_bytes())
            .u32(self.ratchet.index())
            .bytes(self.ratchet.to_bytes().expose());
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let room_id = std::str::from_utf8(r.short_bytes(MAX_ID_LEN, "room id")?)
            .map_err(|_| DecodeError::InvalidValue("room id"))?
            .to_owned();
        check_room_id(&room_id).map_err(|_| DecodeError::InvalidValue("room id"))?;
        let creator = IdentityKeys::read(r)?;
        let signing = SigningKey::from_bytes(Secret::new(r.array::<32>("signing key")?).expose());
        let index = r.u32("message index")?;
        let parts = Zeroizing::new(r.array::<128>("ratchet")?);
        Ok(Self {
            room_id,
            signing_public: Ed25519PublicKey::from_verifying_key(signing.verifying_key()),
            signing: Box::new(signing),
            ratchet: Ratchet::from_parts(&parts, index),
            creator,
            generation: Generation::default(),
        })
    }
}

pickle_methods!(OutboundGroupSession);

pickled!(OutboundGroupSession, PickleKind::OutboundGroupSession);

impl fmt::Debug for OutboundGroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundGroupSession")
            .field("room_id", &self.room_id)
            .field("session_id", &self.session_id())
            .field("message_index", &self.message_index())
            .finish_non_exhaustive()
    }
}

//! Megolm v1 group sessions: [`MegolmOutboundSession`] (a sender's room
//! key) and [`MegolmInboundSession`] (a reader's copy), on the crate's one
//! four-part group ratchet with Megolm's inputs, and the inbound logic
//! (authenticated ratchet, unauthenticated prefix, merge, compare) shared
//! with the native inbound session.

use std::fmt;

use zeroize::Zeroizing;

use super::message::MegolmMessage;
use super::session_key::{MegolmExportedKey, MegolmSessionKey};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::MAX_PLAINTEXT_LEN;
use crate::crypto::{CbcKeys, Ed25519Secret, Secret, os_rng};
use crate::group::lines::{Lines, inbound_methods};
use crate::group::ratchet::{MegolmV1, Ratchet};
use crate::group::{GroupDecrypted, GroupError, GroupSessionId};
use crate::keys::Ed25519PublicKey;
use crate::pickle::{Generation, PickleKind, pickle_methods, pickled};
use crate::plaintext::Plaintext;

/// A sender's Megolm v1 session (`m.megolm.v1.aes-sha2`).
pub struct MegolmOutboundSession {
    pub(crate) signing: Ed25519Secret,
    pub(crate) ratchet: Ratchet<MegolmV1>,
    pub(crate) generation: Generation,
}

impl Default for MegolmOutboundSession {
    fn default() -> Self {
        Self::new()
    }
}

impl MegolmOutboundSession {
    /// A new session from the operating system's generator.
    pub fn new() -> Self {
        Self::new_with_rng(&mut os_rng())
    }

    /// A new session from `rng`.
    pub fn new_with_rng<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self {
            signing: Ed25519Secret::generate(rng),
            ratchet: Ratchet::random(rng),
            generation: Generation::default(),
        }
    }

    /// The session id: the session's Ed25519 key (unpadded base64 in
    /// Matrix).
    pub fn session_id(&self) -> GroupSessionId {
        GroupSessionId::from(self.signing.public())
    }

    /// The index the next message will use.
    pub fn message_index(&self) -> u32 {
        self.ratchet.index()
    }

    /// Encrypts, authenticates and signs one message, then advances the
    /// ratchet. Errors: [`GroupError::PlaintextTooLong`], and
    /// [`GroupError::Exhausted`] at index 2^32 - 1 (libolm would wrap the
    /// ratchet around; roomseal refuses to reuse an index).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<MegolmMessage, GroupError> {
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
        let keys = self.ratchet.megolm_keys();
        let mut ciphertext = Vec::with_capacity(CbcKeys::ciphertext_len(plaintext.len()));
        keys.encrypt_into(plaintext, &mut ciphertext);
        let mac = keys.mac(&[&MegolmMessage::mac_input(index, &ciphertext)]);
        let mut message = MegolmMessage {
            index,
            ciphertext,
            mac,
            signature: crate::keys::Ed25519Signature::from_bytes(&[0; 64]),
        };
        message.signature = self.signing.sign(&message.signed_bytes());
        self.ratchet.advance();
        Ok(message)
    }

    /// The signed session key at the current index, to share in
    /// `m.room_key`.
    pub fn session_key(&self) -> MegolmSessionKey {
        let public = self.signing.public();
        let signature = self
            .signing
            .sign(&MegolmSessionKey::signed_bytes(&self.ratchet, &public));
        MegolmSessionKey {
            ratchet: self.ratchet.clone(),
            signing_key: public,
            signature,
        }
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.u8(1);
        match (self.signing.seed(), self.signing.expanded()) {
            (Some(seed), _) => {
                w.u8(0).bytes(seed);
            }
            (None, Some(expanded)) => {
                w.u8(1).bytes(expanded);
            }
            (None, None) => {
                w.u8(2);
            }
        }
        w.u32(self.ratchet.index())
            .bytes(self.ratchet.to_bytes().expose());
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let format = r.u8("megolm outbound format")?;
        if format != 1 {
            return Err(DecodeError::UnknownVersion(format));
        }
        let signing = match r.u8("signing key form")? {
            0 => Ed25519Secret::from_seed(Secret::new(r.array::<32>("signing key")?).expose()),
            1 => Ed25519Secret::from_expanded(
                Secret::new(r.array::<64>("expanded signing key")?).expose(),
            ),
            _ => return Err(DecodeError::InvalidValue("signing key form")),
        };
        let index = r.u32("message index")?;
        let parts = Zeroizing::new(r.array::<128>("ratchet")?);
        Ok(Self {
            signing,
            ratchet: Ratchet::from_parts(&parts, index),
            generation: Generation::default(),
        })
    }
}

/// A reader's copy of a Megolm v1 session: decrypts from the first index
/// it knows, and says per message whether the key came signed from the
/// sender ([`MegolmSessionKey`]) or only from an export or forward.
pub struct MegolmInboundSession {
    pub(crate) signing_key: Ed25519PublicKey,
    pub(crate) lines: Lines<MegolmV1>,
    pub(crate) generation: Generation,
}

impl MegolmInboundSession {
    /// Builds an authenticated session from a signed session key, verifying
    /// its signature (strict Ed25519) first.
    pub fn new(key: &MegolmSessionKey) -> Result<Self, GroupError> {
        key.verify().map_err(|_| GroupError::BadSignature)?;
        Ok(Self {
            signing_key: key.signing_key,
            lines: Lines::signed(key.ratchet.clone()),
            generation: Generation::default(),
        })
    }

    /// Imports an exported key (not authenticated).
    pub fn import(key: &MegolmExportedKey) -> Self {
        Self {
            signing_key: key.signing_key,
            lines: Lines::unsigned(key.ratchet.clone()),
            generation: Generation::default(),
        }
    }

    /// Decrypts a message: the signature (strict Ed25519) and then the MAC
    /// are checked before anything is decrypted. On any error the session
    /// is unchanged. Replays are not detected here (the caller keeps the
    /// event id per index, as Matrix clients do).
    pub fn decrypt(&mut self, message: &MegolmMessage) -> Result<GroupDecrypted, GroupError> {
        self.lines
            .check_index(message.index)
            .map_err(|(index, first_known)| GroupError::UnknownIndex { index, first_known })?;
        self.signing_key
            .verify(&message.signed_bytes(), &message.signature)
            .map_err(|_| GroupError::BadSignature)?;
        let (ratchet, authenticated) = self.lines.ratchet_at(message.index);
        let keys = ratchet.megolm_keys();
        keys.verify(
            &[&MegolmMessage::mac_input(
                message.index,
                &message.ciphertext,
            )],
            &message.mac,
        )
        .map_err(|_| GroupError::Authentication)?;
        let plaintext = keys
            .decrypt(&message.ciphertext)
            .map_err(|_| GroupError::Authentication)?;
        self.lines.remember(ratchet, authenticated);
        Ok(GroupDecrypted {
            plaintext: Plaintext::new(plaintext),
            message_index: message.index,
            authenticated,
        })
    }

    /// Merges two copies of one session (the earliest index, the strongest
    /// trust), or `None` if they are not copies of one session.
    pub fn merge(&self, other: &Self) -> Option<Self> {
        if self.signing_key != other.signing_key {
            return None;
        }
        let (lines, _) = self.lines.merge(&other.lines)?;
        Some(Self {
            signing_key: self.signing_key,
            lines,
            generation: Generation::default(),
        })
    }

    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.u8(1).bytes(self.signing_key.as_bytes());
        for line in [&self.lines.authenticated, &self.lines.prefix] {
            match line {
                Some(r) => {
                    w.bool(true).u32(r.index()).bytes(r.to_bytes().expose());
                }
                None => {
                    w.bool(false);
                }
            }
        }
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        fn line(r: &mut Reader<'_>) -> Result<Option<Ratchet<MegolmV1>>, DecodeError> {
            if !r.bool("ratchet flag")? {
                return Ok(None);
            }
            let index = r.u32("ratchet index")?;
            let parts = Zeroizing::new(r.array::<128>("ratchet")?);
            Ok(Some(Ratchet::from_parts(&parts, index)))
        }
        let format = r.u8("megolm inbound format")?;
        if format != 1 {
            return Err(DecodeError::UnknownVersion(format));
        }
        let signing_key = Ed25519PublicKey::from_bytes(&r.array("session signing key")?)
            .map_err(|_| DecodeError::InvalidValue("session signing key"))?;
        let authenticated = line(r)?;
        let prefix = line(r)?;
        let lines = Lines::from_stored(authenticated, prefix)
            .ok_or(DecodeError::InvalidValue("group session ratchets"))?;
        Ok(Self {
            signing_key,
            lines,
            generation: Generation::default(),
        })
    }
}

pickle_methods!(MegolmOutboundSession);
pickle_methods!(MegolmInboundSession);
inbound_methods!(MegolmInboundSession, MegolmExportedKey);

pickled!(MegolmOutboundSession, PickleKind::MegolmOutboundSession);

pickled!(MegolmInboundSession, PickleKind::MegolmInboundSession);

impl fmt::Debug for MegolmOutboundSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MegolmOutboundSession")
            .field("session_id", &self.session_id())
            .field("message_index", &self.message_index())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for MegolmInboundSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MegolmInboundSession")
            .field("session_id", &self.session_id())
            .field("first_known_index", &self.first_known_index())
            .field("authenticated_from", &self.authenticated_from())
            .finish_non_exhaustive()
    }
}

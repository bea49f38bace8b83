//! The receiving side of a room key: decrypts a sender's group messages from
//! the first index it knows, says whether its key is authenticated, and can
//! forget history, export, compare and merge.

use std::fmt;

use zeroize::Zeroizing;

use super::message::GroupMessage;
use super::ratchet::Ratchet;
use super::session_key::{ExportedSessionKey, SessionKey};
use super::{GroupError, GroupSessionId, associated_data, check_room_id};
use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::os_rng;
use crate::keys::Ed25519PublicKey;
use crate::pickle::{self, PickleError, PickleKey, PickleKind};

/// The result of decrypting a group message.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupDecrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The ratchet index of the message.
    pub message_index: u32,
    /// Whether the session's key came signed from its creator (`true`) or
    /// from an export or forward (`false`).
    pub authenticated: bool,
}

impl fmt::Debug for GroupDecrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupDecrypted")
            .field("plaintext_len", &self.plaintext.len())
            .field("message_index", &self.message_index)
            .field("authenticated", &self.authenticated)
            .finish()
    }
}

/// How two copies of an inbound session relate (see
/// [`InboundGroupSession::compare`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionOrdering {
    /// Same first index and same trust.
    Equal,
    /// This copy knows at least as early an index and is at least as
    /// trusted, and is strictly ahead in one of them.
    Better,
    /// The other copy is better.
    Worse,
    /// One knows an earlier index, the other is more trusted: merge them.
    Incomparable,
    /// Not copies of the same session (different key, or ratchets that do
    /// not match at a common index).
    Unconnected,
}

/// A room key as a receiving device holds it.
pub struct InboundGroupSession {
    signing_key: Ed25519PublicKey,
    initial: Ratchet,
    latest: Ratchet,
    authenticated: bool,
}

impl InboundGroupSession {
    /// Builds an authenticated session from a signed session key, verifying
    /// its signature (strict Ed25519) against the key it carries.
    pub fn new(key: &SessionKey) -> Result<Self, GroupError> {
        key.verify().map_err(|_| GroupError::BadSignature)?;
        Ok(Self::from_ratchet(
            key.signing_key,
            key.ratchet.clone(),
            true,
        ))
    }

    /// Our own copy of a key this device just created: authenticated without
    /// re-verifying the signature it just made.
    pub(crate) fn from_own_key(key: &SessionKey) -> Self {
        Self::from_ratchet(key.signing_key, key.ratchet.clone(), true)
    }

    /// Imports an exported key. The session is not authenticated: its
    /// messages are reported with `authenticated: false`.
    pub fn import(key: &ExportedSessionKey) -> Self {
        Self::from_ratchet(key.signing_key, key.ratchet.clone(), false)
    }

    fn from_ratchet(signing_key: Ed25519PublicKey, ratchet: Ratchet, authenticated: bool) -> Self {
        Self {
            signing_key,
            latest: ratchet.clone(),
            initial: ratchet,
            authenticated,
        }
    }

    /// The session id (the sender session's Ed25519 public key).
    pub fn session_id(&self) -> GroupSessionId {
        GroupSessionId::from(self.signing_key)
    }

    /// The earliest index this session can decrypt.
    pub fn first_known_index(&self) -> u32 {
        self.initial.index()
    }

    /// Whether the key came signed from the session's creator.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Decrypts a message of this session sent in `room_id`. The signature
    /// is verified (strict Ed25519) before any key is derived. On any error
    /// the session is unchanged.
    pub fn decrypt(
        &mut self,
        room_id: &str,
        message: &GroupMessage,
    ) -> Result<GroupDecrypted, GroupError> {
        check_room_id(room_id)?;
        self.check_index(message.index)?;
        self.signing_key
            .verify(
                &GroupMessage::signed_bytes(message.index, &message.ciphertext),
                &message.signature,
            )
            .map_err(|_| GroupError::BadSignature)?;
        let mut ratchet = self.ratchet_before(message.index).clone();
        ratchet.advance_to(message.index);
        let plaintext = self.open(room_id, &ratchet, message)?;
        self.remember(ratchet);
        Ok(GroupDecrypted {
            plaintext,
            message_index: message.index,
            authenticated: self.authenticated,
        })
    }

    /// Decrypts many messages of this session at once, verifying their
    /// signatures together with Ed25519 batch verification (falling back to
    /// one-by-one strict verification if the batch fails, so each message
    /// gets its own result). Results are in input order.
    ///
    /// Batch verification accepts everything strict verification accepts,
    /// and may accept some signatures it rejects: an `R` that is the identity
    /// point, or whose encoding is not canonical, passes whenever the rest of
    /// the equation holds; an `R` with another small-order component passes
    /// with probability about one over that order. Only the holder of this
    /// session's signing key can make such signatures (they are not
    /// forgeries), but such a sender could make batch and one-by-one
    /// receivers disagree about one of its own messages (see PROTOCOL.md).
    /// Use [`InboundGroupSession::decrypt`] where that matters.
    pub fn decrypt_batch(
        &mut self,
        room_id: &str,
        messages: &[GroupMessage],
    ) -> Vec<Result<GroupDecrypted, GroupError>> {
        if let Err(e) = check_room_id(room_id) {
            return messages.iter().map(|_| Err(e)).collect();
        }
        let mut results: Vec<Option<Result<GroupDecrypted, GroupError>>> = messages
            .iter()
            .map(|m| self.check_index(m.index).err().map(Err))
            .collect();
        let candidates: Vec<usize> = (0..messages.len())
            .filter(|&i| matches!(results.get(i), Some(None)))
            .collect();
        let signed: Vec<Vec<u8>> = candidates
            .iter()
            .filter_map(|&i| messages.get(i))
            .map(|m| GroupMessage::signed_bytes(m.index, &m.ciphertext))
            .collect();
        let batch_ok = {
            let refs: Vec<&[u8]> = signed.iter().map(Vec::as_slice).collect();
            let signatures: Vec<ed25519_dalek::Signature> = candidates
                .iter()
                .filter_map(|&i| messages.get(i))
                .map(|m| *m.signature.inner())
                .collect();
            let keys = vec![*self.signing_key.verifying_key(); refs.len()];
            !refs.is_empty() && ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_ok()
        };
        let mut verified: Vec<usize> = Vec::with_capacity(candidates.len());
        for (&i, bytes) in candidates.iter().zip(&signed) {
            let Some(message) = messages.get(i) else {
                continue;
            };
            if batch_ok || self.signing_key.verify(bytes, &message.signature).is_ok() {
                verified.push(i);
            } else if let Some(slot) = results.get_mut(i) {
                *slot = Some(Err(GroupError::BadSignature));
            }
        }
        // Derive keys in index order, advancing one running ratchet.
        verified.sort_by_key(|&i| messages.get(i).map_or(0, |m| m.index));
        let mut running: Option<Ratchet> = None;
        let mut newest: Option<Ratchet> = None;
        for i in verified {
            let Some(message) = messages.get(i) else {
                continue;
            };
            let ratchet = running.get_or_insert_with(|| self.ratchet_before(message.index).clone());
            ratchet.advance_to(message.index);
            let outcome = self
                .open(room_id, ratchet, message)
                .map(|plaintext| GroupDecrypted {
                    plaintext,
                    message_index: message.index,
                    authenticated: self.authenticated,
                });
            if outcome.is_ok() {
                newest = Some(ratchet.clone());
            }
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(outcome);
            }
        }
        if let Some(ratchet) = newest {
            self.remember(ratchet);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(GroupError::Authentication)))
            .collect()
    }

    fn check_index(&self, index: u32) -> Result<(), GroupError> {
        let first_known = self.initial.index();
        if index < first_known {
            Err(GroupError::UnknownIndex { index, first_known })
        } else {
            Ok(())
        }
    }

    /// The cached ratchet to advance from for `index`.
    fn ratchet_before(&self, index: u32) -> &Ratchet {
        if index >= self.latest.index() {
            &self.latest
        } else {
            &self.initial
        }
    }

    fn open(
        &self,
        room_id: &str,
        ratchet: &Ratchet,
        message: &GroupMessage,
    ) -> Result<Vec<u8>, GroupError> {
        let aad = associated_data(room_id, &self.session_id(), message.index);
        ratchet
            .message_key()
            .open(&aad, &message.ciphertext)
            .map_err(|_| GroupError::Authentication)
    }

    /// Keeps `ratchet` as the cache for sequential decryption if it is newer.
    fn remember(&mut self, ratchet: Ratchet) {
        if ratchet.index() >= self.latest.index() {
            self.latest = ratchet;
        }
    }

    /// Exports the key at `index` (for backup or forwarding), or `None` if
    /// `index` is before the first known index.
    pub fn export_at(&self, index: u32) -> Option<ExportedSessionKey> {
        self.check_index(index).ok()?;
        let mut ratchet = self.ratchet_before(index).clone();
        ratchet.advance_to(index);
        Some(ExportedSessionKey {
            ratchet,
            signing_key: self.signing_key,
        })
    }

    /// Exports the key at the first known index.
    pub fn export_at_first_known_index(&self) -> ExportedSessionKey {
        ExportedSessionKey {
            ratchet: self.initial.clone(),
            signing_key: self.signing_key,
        }
    }

    /// Forgets every key before `index`, so messages before it can no longer
    /// be decrypted (forward secrecy for stored history). Returns whether
    /// anything was forgotten.
    pub fn advance_to(&mut self, index: u32) -> bool {
        if index <= self.initial.index() {
            return false;
        }
        let mut ratchet = self.ratchet_before(index).clone();
        ratchet.advance_to(index);
        if self.latest.index() < index {
            self.latest = ratchet.clone();
        }
        self.initial = ratchet;
        true
    }

    /// Compares two copies of what may be the same session: whether they are
    /// connected (same key, ratchets equal at the later first index, checked
    /// in constant time), and which is better by first index and trust.
    pub fn compare(&self, other: &Self) -> SessionOrdering {
        if !self.is_connected(other) {
            return SessionOrdering::Unconnected;
        }
        let earlier = self.initial.index().cmp(&other.initial.index());
        let trust = self.authenticated.cmp(&other.authenticated);
        use std::cmp::Ordering::{Equal, Greater, Less};
        match (earlier, trust) {
            (Equal, Equal) => SessionOrdering::Equal,
            (Less | Equal, Greater | Equal) => SessionOrdering::Better,
            (Greater | Equal, Less | Equal) => SessionOrdering::Worse,
            _ => SessionOrdering::Incomparable,
        }
    }

    fn is_connected(&self, other: &Self) -> bool {
        if self.signing_key != other.signing_key {
            return false;
        }
        let (early, late) = if self.initial.index() <= other.initial.index() {
            (&self.initial, &other.initial)
        } else {
            (&other.initial, &self.initial)
        };
        let mut advanced = early.clone();
        advanced.advance_to(late.index());
        bool::from(advanced.ct_eq(late))
    }

    /// Merges two copies of the same session into one that keeps the
    /// earliest index and the stronger trust, or `None` if they are not
    /// connected.
    ///
    /// An earlier unauthenticated ratchet that advances to an authenticated
    /// one is as trustworthy as it: forging it would mean inverting HMAC.
    pub fn merge(&self, other: &Self) -> Option<Self> {
        if !self.is_connected(other) {
            return None;
        }
        let earliest = if self.initial.index() <= other.initial.index() {
            self
        } else {
            other
        };
        let latest = if self.latest.index() >= other.latest.index() {
            &self.latest
        } else {
            &other.latest
        };
        Some(Self {
            signing_key: self.signing_key,
            initial: earliest.initial.clone(),
            latest: latest.clone(),
            authenticated: self.authenticated || other.authenticated,
        })
    }

    /// The encrypted pickle (fresh random nonce).
    pub fn pickle(&self, key: &PickleKey) -> String {
        self.pickle_with_rng(key, &mut os_rng())
    }

    /// [`InboundGroupSession::pickle`] with the nonce drawn from `rng`.
    pub fn pickle_with_rng<R: rand::CryptoRng + ?Sized>(
        &self,
        key: &PickleKey,
        rng: &mut R,
    ) -> String {
        pickle::to_text(PickleKind::InboundGroupSession, key, rng, |w| {
            self.write_contents(w)
        })
    }

    /// Restores a session from its pickle.
    pub fn from_pickle(pickle: &str, key: &PickleKey) -> Result<Self, PickleError> {
        pickle::from_text(
            PickleKind::InboundGroupSession,
            key,
            pickle,
            Self::read_contents,
        )
    }

    /// Contents: the session key, trust flag, first index and ratchet. The
    /// sequential-decryption cache is not kept.
    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.bytes(self.signing_key.as_bytes())
            .bool(self.authenticated)
            .u32(self.initial.index())
            .bytes(self.initial.to_bytes().expose());
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let signing_key = Ed25519PublicKey::from_bytes(&r.array("session signing key")?)
            .map_err(|_| DecodeError::InvalidValue("session signing key"))?;
        let authenticated = r.bool("authenticated flag")?;
        let index = r.u32("first known index")?;
        let parts = Zeroizing::new(r.array::<128>("ratchet")?);
        Ok(Self::from_ratchet(
            signing_key,
            Ratchet::from_parts(&parts, index),
            authenticated,
        ))
    }
}

impl fmt::Debug for InboundGroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundGroupSession")
            .field("session_id", &self.session_id())
            .field("first_known_index", &self.first_known_index())
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

//! The receiving side of a room key: decrypts a sender's group messages from
//! the first index it knows, says for each message whether its key is
//! authenticated (signed by the creator) or only imported, and can forget
//! history, export, compare and merge copies.
//!
//! Guarantees: unsigned material (exports, forwards) never changes the
//! authenticated ratchet; a failed decryption changes nothing; batch
//! decryption accepts exactly what one-by-one decryption accepts.

use std::fmt;

use zeroize::Zeroizing;

use super::lines::{Lines, Source, inbound_methods};
use super::message::GroupMessage;
use super::ratchet::{NativeGroup, Ratchet};
use super::session_key::{ExportedSessionKey, SessionKey};
use super::{GroupError, associated_data, check_room_id};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::MAX_ID_LEN;
use crate::keys::{Ed25519PublicKey, IdentityKeys};
use crate::pickle::{Generation, PickleKind, pickle_methods, pickled};
use crate::plaintext::Plaintext;

/// The result of decrypting a group message.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupDecrypted {
    /// The plaintext (wiped when dropped).
    pub plaintext: Plaintext,
    /// The ratchet index of the message.
    pub message_index: u32,
    /// Whether the key for this index came signed from the session's
    /// creator (`true`), or only from an export or forward (`false`).
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
    /// Both know the same first index and the same authenticated range.
    Equal,
    /// This copy knows at least as early an index and at least as much
    /// authenticated range, and strictly more of one.
    Better,
    /// The other copy is better.
    Worse,
    /// Each knows something the other does not: merge them.
    Incomparable,
    /// Not copies of the same session (different key, authenticated
    /// ratchets that disagree, or unauthenticated ratchets that do not match
    /// at a common index).
    Unconnected,
}

/// Who created a session and for which room, as named and signed in its
/// session key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SignedOrigin {
    pub(crate) creator: IdentityKeys,
    pub(crate) room_id: String,
}

/// A room key as a receiving device holds it.
///
/// It holds up to two ratchets of the same session: the *authenticated*
/// one, from the creator's signed [`SessionKey`], which decrypts from its
/// index on with `authenticated: true`; and an *unauthenticated prefix*
/// from an export or forward, which only serves indices before the
/// authenticated one (or every index, when no signed key was received) with
/// `authenticated: false`. Unsigned material can never change the
/// authenticated ratchet, and a better prefix (an earlier one that matches
/// the authenticated ratchet) replaces the one held.
pub struct InboundGroupSession {
    signing_key: Ed25519PublicKey,
    /// The creator and room the signed key named (present exactly when
    /// `authenticated` is).
    origin: Option<SignedOrigin>,
    /// The authenticated ratchet, the unauthenticated prefix and the cache.
    lines: Lines<NativeGroup>,
    generation: Generation,
}

impl InboundGroupSession {
    /// Builds an authenticated session from a signed session key, verifying
    /// its signature (strict Ed25519) against the key it carries. The
    /// creator and room the key names become the session's (see
    /// [`InboundGroupSession::creator`]).
    pub fn new(key: &SessionKey) -> Result<Self, GroupError> {
        key.verify().map_err(|_| GroupError::BadSignature)?;
        Ok(Self::from_own_key(key))
    }

    /// Our own copy of a key this device just created: authenticated without
    /// re-verifying the signature it just made.
    pub(crate) fn from_own_key(key: &SessionKey) -> Self {
        Self {
            signing_key: key.signing_key,
            origin: Some(SignedOrigin {
                creator: key.creator,
                room_id: key.room_id.clone(),
            }),
            lines: Lines::signed(key.ratchet.clone()),
            generation: Generation::default(),
        }
    }

    /// Imports an exported key. The session is not authenticated: its
    /// messages are reported with `authenticated: false` (until a signed
    /// key of the same session is merged in, and then only from that key's
    /// index on).
    pub fn import(key: &ExportedSessionKey) -> Self {
        Self {
            signing_key: key.signing_key,
            origin: None,
            lines: Lines::unsigned(key.ratchet.clone()),
            generation: Generation::default(),
        }
    }

    /// Whether a signed key of this session was received (from its
    /// [`InboundGroupSession::authenticated_from`] index on, messages are
    /// authenticated).
    pub fn is_authenticated(&self) -> bool {
        self.lines.authenticated.is_some()
    }

    /// The creating device the signed key named (authenticated by the
    /// key's signature), if a signed key was received.
    pub fn creator(&self) -> Option<IdentityKeys> {
        self.origin.as_ref().map(|o| o.creator)
    }

    /// The room the signed key named, if a signed key was received.
    pub fn room_id(&self) -> Option<&str> {
        self.origin.as_ref().map(|o| o.room_id.as_str())
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
        self.verify_signature(message)?;
        let (ratchet, authenticated) = self.lines.ratchet_at(message.index);
        let plaintext = self.open(room_id, &ratchet, message)?;
        self.lines.remember(ratchet, authenticated);
        Ok(GroupDecrypted {
            plaintext,
            message_index: message.index,
            authenticated,
        })
    }

    fn verify_signature(&self, message: &GroupMessage) -> Result<(), GroupError> {
        self.signing_key
            .verify(&message.own_signed_bytes(), &message.signature)
            .map_err(|_| GroupError::BadSignature)
    }

    /// Decrypts many messages of this session at once; results are in input
    /// order, and each is exactly what [`InboundGroupSession::decrypt`]
    /// would return for that message (the same strict Ed25519 verification,
    /// so batch and one-by-one receivers always agree).
    ///
    /// Faster than one by one in two ways: the signatures are verified on
    /// several threads (feature `parallel`, from
    /// [`crate::consts::PARALLEL_VERIFY_THRESHOLD`] messages), and the keys
    /// are derived in index order along one running ratchet.
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
        let checks = self.verify_all(messages, &candidates);
        let mut verified: Vec<usize> = Vec::with_capacity(candidates.len());
        for (&i, ok) in candidates.iter().zip(checks) {
            if ok {
                verified.push(i);
            } else if let Some(slot) = results.get_mut(i) {
                *slot = Some(Err(GroupError::BadSignature));
            }
        }
        // Derive keys in index order, advancing one running ratchet per line
        // (the unauthenticated prefix, then the authenticated ratchet).
        verified.sort_by_key(|&i| messages.get(i).map_or(0, |m| m.index));
        let mut running: Option<(bool, Ratchet)> = None;
        let mut newest: Option<(Ratchet, bool)> = None;
        for i in verified {
            let Some(message) = messages.get(i) else {
                continue;
            };
            let authenticated = self.lines.is_authenticated_index(message.index);
            let ratchet = match running.as_mut() {
                Some((line, ratchet)) if *line == authenticated => {
                    ratchet.advance_to(message.index);
                    ratchet
                }
                _ => {
                    let (start, _) = self.lines.ratchet_at(message.index);
                    &mut running.insert((authenticated, start)).1
                }
            };
            let outcome = self
                .open(room_id, ratchet, message)
                .map(|plaintext| GroupDecrypted {
                    plaintext,
                    message_index: message.index,
                    authenticated,
                });
            if outcome.is_ok() && (authenticated || self.lines.authenticated.is_none()) {
                newest = Some((ratchet.clone(), authenticated));
            }
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(outcome);
            }
        }
        if let Some((ratchet, authenticated)) = newest {
            self.lines.remember(ratchet, authenticated);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(GroupError::Authentication)))
            .collect()
    }

    /// Strict verification of the signatures of `messages[i]` for each `i`
    /// in `which`, on several threads when there are many.
    fn verify_all(&self, messages: &[GroupMessage], which: &[usize]) -> Vec<bool> {
        let check = |chunk: &[usize]| -> Vec<bool> {
            chunk
                .iter()
                .map(|&i| {
                    messages
                        .get(i)
                        .is_some_and(|m| self.verify_signature(m).is_ok())
                })
                .collect()
        };
        let threads = if cfg!(feature = "parallel") {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            1
        };
        if threads < 2 || which.len() < crate::consts::PARALLEL_VERIFY_THRESHOLD {
            return check(which);
        }
        let chunk_len = which.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut chunks = which.chunks(chunk_len);
            let first = chunks.next();
            let handles: Vec<_> = chunks.map(|c| scope.spawn(move || check(c))).collect();
            let mut out = first.map(check).unwrap_or_default();
            for handle in handles {
                match handle.join() {
                    Ok(part) => out.extend(part),
                    // Verification cannot panic; if it ever did, surface it.
                    Err(payload) => std::panic::resume_unwind(payload),
                }
            }
            out
        })
    }

    fn check_index(&self, index: u32) -> Result<(), GroupError> {
        self.lines
            .check_index(index)
            .map_err(|(index, first_known)| GroupError::UnknownIndex { index, first_known })
    }

    fn open(
        &self,
        room_id: &str,
        ratchet: &Ratchet,
        message: &GroupMessage,
    ) -> Result<Plaintext, GroupError> {
        let aad = associated_data(room_id, &self.session_id(), message.index);
        ratchet
            .message_key(&message.salt)
            .open(&aad, &message.ciphertext)
            .map(Plaintext::new)
            .map_err(|_| GroupError::Authentication)
    }

    /// Merges two copies of the same session, or `None` if they are not
    /// copies of one session.
    ///
    /// The authenticated ratchet comes only from signed keys: the earlier of
    /// the two (two signed keys must agree, or the copies do not merge).
    /// Unsigned ratchets only serve as the prefix before it: the earliest
    /// one that advances to the authenticated ratchet (or, with no signed
    /// key on either side, to the other copy) is kept, so a better prefix
    /// replaces a worse one, and a prefix that contradicts the signed key
    /// is dropped instead of poisoning it.
    pub fn merge(&self, other: &Self) -> Option<Self> {
        if self.signing_key != other.signing_key {
            return None;
        }
        let (lines, source) = self.lines.merge(&other.lines)?;
        let origin = match source {
            Source::First => self.origin.clone(),
            Source::Second => other.origin.clone(),
            Source::Neither => None,
        };
        Some(Self {
            signing_key: self.signing_key,
            origin,
            lines,
            generation: Generation::default(),
        })
    }

    /// Contents: the session's key, the authenticated ratchet with the
    /// creator and room its signed key named, and the unauthenticated
    /// prefix. The sequential-decryption cache is not kept.
    pub(crate) fn write_contents(&self, w: &mut Writer) {
        fn ratchet(w: &mut Writer, r: &Ratchet) {
            w.u32(r.index()).bytes(r.to_bytes().expose());
        }
        w.bytes(self.signing_key.as_bytes());
        match (&self.lines.authenticated, &self.origin) {
            (Some(a), Some(origin)) => {
                w.bool(true);
                ratchet(w, a);
                w.bytes(&origin.creator.to_bytes())
                    .short_bytes(origin.room_id.as_bytes());
            }
            _ => {
                w.bool(false);
            }
        }
        match &self.lines.prefix {
            Some(p) => {
                w.bool(true);
                ratchet(w, p);
            }
            None => {
                w.bool(false);
            }
        }
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        fn ratchet(r: &mut Reader<'_>) -> Result<Ratchet, DecodeError> {
            let index = r.u32("ratchet index")?;
            let parts = Zeroizing::new(r.array::<128>("ratchet")?);
            Ok(Ratchet::from_parts(&parts, index))
        }
        let signing_key = Ed25519PublicKey::from_bytes(&r.array("session signing key")?)
            .map_err(|_| DecodeError::InvalidValue("session signing key"))?;
        let (authenticated, origin) = if r.bool("authenticated flag")? {
            let a = ratchet(r)?;
            let creator = IdentityKeys::read(r)?;
            let room_id = std::str::from_utf8(r.short_bytes(MAX_ID_LEN, "room id")?)
                .map_err(|_| DecodeError::InvalidValue("room id"))?
                .to_owned();
            check_room_id(&room_id).map_err(|_| DecodeError::InvalidValue("room id"))?;
            (Some(a), Some(SignedOrigin { creator, room_id }))
        } else {
            (None, None)
        };
        let prefix = if r.bool("prefix flag")? {
            Some(ratchet(r)?)
        } else {
            None
        };
        let lines = Lines::from_stored(authenticated, prefix)
            .ok_or(DecodeError::InvalidValue("group session ratchets"))?;
        Ok(Self {
            signing_key,
            origin,
            lines,
            generation: Generation::default(),
        })
    }
}

pickle_methods!(InboundGroupSession);
inbound_methods!(InboundGroupSession, ExportedSessionKey);

pickled!(InboundGroupSession, PickleKind::InboundGroupSession);

impl fmt::Debug for InboundGroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundGroupSession")
            .field("session_id", &self.session_id())
            .field("first_known_index", &self.first_known_index())
            .field("authenticated_from", &self.authenticated_from())
            .field("creator", &self.creator())
            .finish_non_exhaustive()
    }
}

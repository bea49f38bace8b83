//! The encrypted, versioned envelope every stateful type persists through.
//!
//! A pickle is `version || generation || nonce || AES-256-GCM(contents)` in
//! unpadded base64. It is encrypted under a subkey of the caller's 32-byte
//! [`PickleKey`] derived for the object type (so no two types ever share an
//! encryption key), with a fresh random nonce. The associated data names the
//! object type, the format version, the generation and, for a standalone
//! pairwise session, the account it belongs to, so a pickle cannot be
//! restored as another type or under another account. Each type defines its
//! own compact binary contents beside itself (see PROTOCOL.md).
//!
//! The *generation* grows by one each time an object pickles a state it had
//! not pickled before (the same state always pickles at the same
//! generation; a restored object continues from the generation it was
//! restored at), so an app that records the newest generation it wrote can
//! tell an older pickle from the newest one (see [`pickle_generation`] and
//! PROTOCOL.md, "Rollback").
//!
//! Guarantees: a wrong key, a truncated or altered pickle, a pickle of another
//! type or account and an unknown version are each a [`PickleError`]; the
//! decrypted contents are wiped after they are parsed, and contents being
//! written are never left in freed memory; live objects are not serializable
//! except through their pickle.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::PROTOCOL_VERSION;
use crate::crypto::{AeadFailure, MessageKey, NONCE_LEN, Secret, TAG_LEN, hkdf, label, sha256};
use crate::keys::{base64_decode, base64_encode};

/// The 32-byte key pickles are encrypted with. Supplied by the app (for
/// example from the platform keystore); never printed.
#[derive(Clone)]
pub struct PickleKey(Secret<32>);

impl PickleKey {
    /// Wraps 32 key bytes, wiping the caller's copy.
    pub fn from_bytes(bytes: &mut [u8; 32]) -> Self {
        Self(Secret::from_mut(bytes))
    }

    /// A fresh random key from the operating system's generator.
    pub fn random() -> Self {
        Self::random_with_rng(&mut crate::crypto::os_rng())
    }

    /// A fresh random key from `rng`.
    pub fn random_with_rng<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self(Secret::random(rng))
    }

    /// A subkey for another use than pickles (the durable store), derived
    /// with its own label.
    pub(crate) fn derive(&self, label: &[u8]) -> Secret<32> {
        hkdf::<32>(None, self.0.expose(), label)
    }

    /// The subkey that encrypts pickles of `kind`.
    fn subkey(&self, kind: PickleKind) -> Secret<32> {
        hkdf::<32>(
            None,
            self.0.expose(),
            &[label::PICKLE_KEY, kind.name()].concat(),
        )
    }
}

impl fmt::Debug for PickleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PickleKey(***)")
    }
}

/// Why a pickle could not be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PickleError {
    /// The text is not valid base64.
    #[error("pickle is not valid base64")]
    Base64,
    /// Shorter than version, generation, nonce and tag.
    #[error("pickle is truncated")]
    Truncated,
    /// The version byte names a format this build does not read.
    #[error("unknown pickle version {0}")]
    UnknownVersion(u8),
    /// Decryption failed: the key is wrong, the pickle was altered, or it is
    /// a pickle of another object type (or, for a session, of another
    /// account's session).
    #[error("pickle does not decrypt: wrong key, altered bytes, or another object type or owner")]
    Decryption,
    /// The decrypted contents are malformed.
    #[error("pickle contents are invalid: {0}")]
    Contents(#[from] DecodeError),
    /// The pickle is older than the newest generation the app recorded: a
    /// rollback (see PROTOCOL.md, "Rollback").
    #[error("pickle generation {found} is older than the newest recorded generation {newest}")]
    Stale {
        /// The pickle's generation.
        found: u64,
        /// The newest generation the app said it wrote.
        newest: u64,
    },
}

/// The object types that have pickles. Each name goes into the subkey
/// derivation and the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PickleKind {
    Account,
    Session,
    OutboundGroupSession,
    InboundGroupSession,
    Endpoint,
    OlmAccount,
    OlmSession,
    MegolmOutboundSession,
    MegolmInboundSession,
    MatrixEndpoint,
}

impl PickleKind {
    fn name(self) -> &'static [u8] {
        match self {
            PickleKind::Account => b"account",
            PickleKind::Session => b"session",
            PickleKind::OutboundGroupSession => b"outbound-group-session",
            PickleKind::InboundGroupSession => b"inbound-group-session",
            PickleKind::Endpoint => b"endpoint",
            PickleKind::OlmAccount => b"olm-account",
            PickleKind::OlmSession => b"olm-session",
            PickleKind::MegolmOutboundSession => b"megolm-outbound-session",
            PickleKind::MegolmInboundSession => b"megolm-inbound-session",
            PickleKind::MatrixEndpoint => b"matrix-endpoint",
        }
    }

    fn associated_data(self, generation: u64, owner: &[u8]) -> Vec<u8> {
        [
            label::PICKLE,
            self.name(),
            &[PROTOCOL_VERSION],
            &generation.to_be_bytes(),
            owner,
        ]
        .concat()
    }
}

/// The generation counter every pickled object carries: the generation of
/// the pickle it was restored from or last wrote, and a digest of that
/// pickle's contents.
///
/// A pickle gets a new generation only when the contents changed since the
/// last one: the same state always pickles at the same generation, and every
/// new state at a higher one.
#[derive(Debug, Default)]
pub(crate) struct Generation {
    counter: AtomicU64,
    last_contents: Mutex<Option<[u8; 32]>>,
}

impl Generation {
    /// The current value.
    pub(crate) fn get(&self) -> u64 {
        self.counter.load(Ordering::SeqCst)
    }

    /// A copy (for staged duplicates of an object).
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            counter: AtomicU64::new(self.get()),
            last_contents: Mutex::new(*self.last()),
        }
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<[u8; 32]>> {
        // A poisoned lock only means a pickle panicked mid-way; the digest
        // it guards is still a valid (if stale) value.
        self.last_contents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The generation for a pickle of `contents`: the current one if they
    /// are what was last pickled or restored, otherwise the next one.
    fn for_contents(&self, contents: &[u8]) -> u64 {
        let digest = sha256(&[label::PICKLE, contents]);
        let mut last = self.last();
        if last.as_ref() == Some(&digest) {
            return self.get();
        }
        *last = Some(digest);
        self.counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |g| {
                Some(g.saturating_add(1))
            })
            .map_or(u64::MAX, |g| g.saturating_add(1))
    }

    /// Records a restore: the pickle's generation and contents.
    fn restored(&self, generation: u64, contents: &[u8]) {
        *self.last() = Some(sha256(&[label::PICKLE, contents]));
        self.counter.fetch_max(generation, Ordering::SeqCst);
    }
}

/// A type with a pickle: its kind, its generation counter and its binary
/// contents. [`Pickled::to_pickle`] and [`Pickled::restore`] are the one
/// path every type persists through.
pub(crate) trait Pickled: Sized {
    /// The object type (subkey and associated data).
    const KIND: PickleKind;

    /// The object's generation counter.
    fn generation(&self) -> &Generation;

    /// Writes the contents.
    fn write_contents(&self, w: &mut Writer);

    /// Reads the contents (strictly).
    fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The pickle's text at the next generation, bound to `owner` (empty
    /// except for standalone sessions).
    fn to_pickle<R: rand::CryptoRng + ?Sized>(
        &self,
        key: &PickleKey,
        owner: &[u8],
        rng: &mut R,
    ) -> String {
        to_text(Self::KIND, key, self.generation(), owner, rng, |w| {
            self.write_contents(w)
        })
    }

    /// Restores an object from its pickle, keeping the pickle's generation.
    fn restore(text: &str, key: &PickleKey, owner: &[u8]) -> Result<Self, PickleError> {
        Self::restore_with(text, key, owner, Self::read_contents)
    }

    /// [`Pickled::restore`] with the contents read by `read`.
    fn restore_with(
        text: &str,
        key: &PickleKey,
        owner: &[u8],
        read: impl FnOnce(&mut Reader<'_>) -> Result<Self, DecodeError>,
    ) -> Result<Self, PickleError> {
        let (contents, generation) = open(Self::KIND, key, owner, text)?;
        let mut reader = Reader::new(&contents);
        let value = read(&mut reader)?;
        reader.finish()?;
        value.generation().restored(generation, &contents);
        Ok(value)
    }

    /// [`Pickled::restore`], refusing a pickle older than `newest`, the
    /// newest generation the app recorded; the restored object's next
    /// pickle is newer than `newest`.
    fn restore_no_older_than(
        text: &str,
        key: &PickleKey,
        owner: &[u8],
        newest: u64,
    ) -> Result<Self, PickleError> {
        let found = pickle_generation(text)?;
        if found < newest {
            return Err(PickleError::Stale { found, newest });
        }
        Self::restore(text, key, owner)
    }
}

/// The public pickle methods of a type that implements [`Pickled`] and
/// belongs to no owner (every type but the standalone pairwise session).
macro_rules! pickle_methods {
    ($ty:ty) => {
        impl $ty {
            /// The encrypted pickle (fresh random nonce, next generation).
            pub fn pickle(&self, key: &$crate::PickleKey) -> String {
                self.pickle_with_rng(key, &mut $crate::crypto::os_rng())
            }

            /// The pickle with the nonce drawn from `rng`.
            pub fn pickle_with_rng<R: rand::CryptoRng + ?Sized>(
                &self,
                key: &$crate::PickleKey,
                rng: &mut R,
            ) -> String {
                $crate::pickle::Pickled::to_pickle(self, key, &[], rng)
            }

            /// Restores an object from its pickle.
            pub fn from_pickle(
                pickle: &str,
                key: &$crate::PickleKey,
            ) -> Result<Self, $crate::PickleError> {
                <Self as $crate::pickle::Pickled>::restore(pickle, key, &[])
            }

            /// Restores an object from its pickle, refusing one older than
            /// `newest`, the newest generation the app recorded
            /// ([`$crate::PickleError::Stale`]): a guard against rollback.
            pub fn from_pickle_no_older_than(
                pickle: &str,
                key: &$crate::PickleKey,
                newest: u64,
            ) -> Result<Self, $crate::PickleError> {
                <Self as $crate::pickle::Pickled>::restore_no_older_than(pickle, key, &[], newest)
            }

            /// The generation of the pickle this object was restored from or
            /// last wrote (0 for a new object).
            pub fn pickle_generation(&self) -> u64 {
                $crate::pickle::Pickled::generation(self).get()
            }
        }
    };
}
pub(crate) use pickle_methods;

/// `impl Pickled` for a type whose `write_contents` and `read_contents`
/// are inherent methods, with its generation in the field `generation`.
macro_rules! pickled {
    ($ty:ty, $kind:expr) => {
        impl $crate::pickle::Pickled for $ty {
            const KIND: $crate::pickle::PickleKind = $kind;
            fn generation(&self) -> &$crate::pickle::Generation {
                &self.generation
            }
            fn write_contents(&self, w: &mut $crate::codec::Writer) {
                Self::write_contents(self, w);
            }
            fn read_contents(
                r: &mut $crate::codec::Reader<'_>,
            ) -> Result<Self, $crate::codec::DecodeError> {
                Self::read_contents(r)
            }
        }
    };
}
pub(crate) use pickled;

/// Bytes before the ciphertext: version, generation, nonce.
const HEADER_LEN: usize = 1 + 8 + NONCE_LEN;

/// The generation recorded in a pickle, read without decrypting it.
///
/// Use it to pick the newest of several pickles before loading one. The
/// value is authenticated only when the pickle is restored (the
/// generation is part of the associated data), so a tampered value makes
/// restoring fail.
pub fn pickle_generation(pickle: &str) -> Result<u64, PickleError> {
    generation_of(&base64_decode(pickle).map_err(|_| PickleError::Base64)?)
}

/// The version check and generation of a pickle's decoded bytes.
fn generation_of(bytes: &[u8]) -> Result<u64, PickleError> {
    let (&version, rest) = bytes.split_first().ok_or(PickleError::Truncated)?;
    if version != PROTOCOL_VERSION {
        return Err(PickleError::UnknownVersion(version));
    }
    let generation = rest.get(..8).ok_or(PickleError::Truncated)?;
    let generation = <[u8; 8]>::try_from(generation).map_err(|_| PickleError::Truncated)?;
    Ok(u64::from_be_bytes(generation))
}

/// Encrypts `contents` (wiped afterwards) into the text form of a pickle.
pub(crate) fn seal<R: rand::CryptoRng + ?Sized>(
    kind: PickleKind,
    key: &PickleKey,
    generation: u64,
    owner: &[u8],
    contents: Zeroizing<Vec<u8>>,
    rng: &mut R,
) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(HEADER_LEN + contents.len() + TAG_LEN);
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&nonce);
    // Pickle contents are bounded by the protocol constants (far below
    // AES-GCM's 64 GiB limit), so sealing cannot fail.
    let _ = MessageKey::from_parts(key.subkey(kind).expose(), nonce).seal_into(
        &kind.associated_data(generation, owner),
        &contents,
        &mut out,
    );
    base64_encode(&out)
}

/// The text form of a pickle of type `kind` whose contents `write` produces
/// (the contents are wiped once sealed), at the next generation of
/// `generation`, bound to `owner` (empty except for standalone sessions).
pub(crate) fn to_text<R: rand::CryptoRng + ?Sized>(
    kind: PickleKind,
    key: &PickleKey,
    generation: &Generation,
    owner: &[u8],
    rng: &mut R,
    write: impl FnOnce(&mut Writer),
) -> String {
    let mut w = Writer::with_capacity(4096);
    write(&mut w);
    let contents = w.into_zeroizing();
    let generation = generation.for_contents(&contents);
    seal(kind, key, generation, owner, contents, rng)
}

/// Decrypts the text form of a pickle of type `kind`; returns the contents
/// and the generation.
pub(crate) fn open(
    kind: PickleKind,
    key: &PickleKey,
    owner: &[u8],
    text: &str,
) -> Result<(Zeroizing<Vec<u8>>, u64), PickleError> {
    // Decoded once: the generation is read from the same bytes.
    let bytes = base64_decode(text).map_err(|_| PickleError::Base64)?;
    let generation = generation_of(&bytes)?;
    if bytes.len() < HEADER_LEN + TAG_LEN {
        return Err(PickleError::Truncated);
    }
    let (header, sealed) = bytes.split_at(HEADER_LEN);
    let nonce = header
        .get(1 + 8..)
        .and_then(|n| <[u8; NONCE_LEN]>::try_from(n).ok())
        .ok_or(PickleError::Truncated)?;
    MessageKey::from_parts(key.subkey(kind).expose(), nonce)
        .open(&kind.associated_data(generation, owner), sealed)
        .map(|contents| (contents, generation))
        .map_err(|AeadFailure| PickleError::Decryption)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PickleKey {
        PickleKey::from_bytes(&mut [byte; 32])
    }

    fn seal_state(generation: u64, owner: &[u8]) -> String {
        seal(
            PickleKind::Session,
            &key(1),
            generation,
            owner,
            Zeroizing::new(b"state".to_vec()),
            &mut crate::crypto::os_rng(),
        )
    }

    #[test]
    fn round_trip_and_every_failure() {
        let text = seal_state(7, b"owner");
        let (contents, generation) = open(PickleKind::Session, &key(1), b"owner", &text).unwrap();
        assert_eq!(&*contents, b"state");
        assert_eq!(generation, 7);
        assert_eq!(pickle_generation(&text), Ok(7));
        let open_as = |kind, k: &PickleKey, owner: &[u8], text: &str| {
            open(kind, k, owner, text).map(|(c, g)| (c.to_vec(), g))
        };
        assert_eq!(
            open_as(PickleKind::Session, &key(2), b"owner", &text),
            Err(PickleError::Decryption)
        );
        assert_eq!(
            open_as(PickleKind::Account, &key(1), b"owner", &text),
            Err(PickleError::Decryption)
        );
        assert_eq!(
            open_as(PickleKind::Session, &key(1), b"other", &text),
            Err(PickleError::Decryption)
        );
        assert_eq!(
            open_as(PickleKind::Session, &key(1), b"owner", "!!"),
            Err(PickleError::Base64)
        );
        assert_eq!(
            open_as(PickleKind::Session, &key(1), b"owner", ""),
            Err(PickleError::Truncated)
        );
        let mut bytes = base64_decode(&text).unwrap();
        bytes[0] = 9;
        assert_eq!(
            open_as(
                PickleKind::Session,
                &key(1),
                b"owner",
                &base64_encode(&bytes)
            ),
            Err(PickleError::UnknownVersion(9))
        );
        bytes[0] = PROTOCOL_VERSION;
        // Every other byte (generation included) is authenticated.
        for i in 1..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x80;
            assert_eq!(
                open_as(PickleKind::Session, &key(1), b"owner", &base64_encode(&bad)),
                Err(PickleError::Decryption),
                "byte {i}"
            );
        }
        for len in 0..bytes.len() {
            assert!(
                open_as(
                    PickleKind::Session,
                    &key(1),
                    b"owner",
                    &base64_encode(&bytes[..len])
                )
                .is_err()
            );
        }
        // Fresh nonce each time.
        assert_ne!(text, seal_state(7, b"owner"));
        assert_eq!(format!("{:?}", key(7)), "PickleKey(***)");
    }

    #[test]
    fn each_type_has_its_own_subkey() {
        let k = key(5);
        let kinds = [
            PickleKind::Account,
            PickleKind::Session,
            PickleKind::OutboundGroupSession,
            PickleKind::InboundGroupSession,
            PickleKind::Endpoint,
        ];
        for (i, a) in kinds.iter().enumerate() {
            assert_ne!(k.subkey(*a).expose(), k.0.expose());
            for b in &kinds[i + 1..] {
                assert_ne!(k.subkey(*a).expose(), k.subkey(*b).expose());
            }
        }
    }

    #[test]
    fn a_generation_per_distinct_state() {
        let g = Generation::default();
        assert_eq!(g.for_contents(b"a"), 1);
        assert_eq!(g.for_contents(b"a"), 1);
        assert_eq!(g.for_contents(b"b"), 2);
        assert_eq!(g.for_contents(b"a"), 3);
        g.restored(10, b"c");
        assert_eq!(g.for_contents(b"c"), 10);
        assert_eq!(g.for_contents(b"d"), 11);
        // A restore never lowers the counter.
        g.restored(4, b"e");
        assert_eq!(g.get(), 11);
        assert_eq!(g.for_contents(b"e"), 11);
        let copy = g.duplicate();
        assert_eq!(copy.for_contents(b"e"), 11);
        let top = Generation::default();
        top.restored(u64::MAX, b"x");
        assert_eq!(top.for_contents(b"y"), u64::MAX);
    }
}

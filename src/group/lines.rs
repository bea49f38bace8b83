//! The ratchets an inbound group session holds, shared by the native
//! protocol and Megolm v1: the *authenticated* ratchet (from a signed
//! session key), an *unauthenticated prefix* before it (from an export or a
//! forward), and the newest ratchet reached on the main line (where
//! sequential decryption continues from).
//!
//! Guarantees: unsigned material never changes the authenticated ratchet;
//! a better prefix (earlier and leading to the authenticated ratchet)
//! replaces a worse one; nothing before the first known index can be
//! derived.

use super::SessionOrdering;
use super::ratchet::{GroupSpec, Ratchet};

/// The ratchets of one inbound group session.
#[derive(Debug)]
pub(crate) struct Lines<K: GroupSpec> {
    /// The ratchet at the first authenticated index.
    pub(crate) authenticated: Option<Ratchet<K>>,
    /// The ratchet at the first index known only from unsigned material;
    /// when `authenticated` is present, strictly before it.
    pub(crate) prefix: Option<Ratchet<K>>,
    /// The newest ratchet reached on the main line (the authenticated one,
    /// or the prefix when there is none).
    pub(crate) latest: Ratchet<K>,
}

/// Which copy a merge took the authenticated ratchet from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The first (`self`).
    First,
    /// The second (`other`).
    Second,
    /// Neither had one.
    Neither,
}

impl<K: GroupSpec> Lines<K> {
    /// Lines from a signed key.
    pub(crate) fn signed(ratchet: Ratchet<K>) -> Self {
        Self {
            latest: ratchet.clone(),
            authenticated: Some(ratchet),
            prefix: None,
        }
    }

    /// Lines from an unsigned key.
    pub(crate) fn unsigned(ratchet: Ratchet<K>) -> Self {
        Self {
            latest: ratchet.clone(),
            authenticated: None,
            prefix: Some(ratchet),
        }
    }

    /// Lines from stored ratchets, refusing a combination no session can
    /// reach (neither ratchet, or a prefix not before the authenticated
    /// one). The cache starts at the main line's first ratchet.
    pub(crate) fn from_stored(
        authenticated: Option<Ratchet<K>>,
        prefix: Option<Ratchet<K>>,
    ) -> Option<Self> {
        let latest = match (&authenticated, &prefix) {
            // A prefix must lead to the signed ratchet, as `merge` keeps it.
            (Some(a), Some(p)) if p.index() < a.index() && leads_to(p, a) => a.clone(),
            (Some(a), None) => a.clone(),
            (None, Some(p)) => p.clone(),
            _ => return None,
        };
        Some(Self {
            authenticated,
            prefix,
            latest,
        })
    }

    /// The earliest ratchet held.
    pub(crate) fn earliest(&self) -> &Ratchet<K> {
        match (&self.prefix, &self.authenticated) {
            (Some(prefix), _) => prefix,
            (None, Some(authenticated)) => authenticated,
            // Unreachable by construction (every constructor and merge keeps
            // at least one ratchet); `latest` is a valid fallback.
            (None, None) => &self.latest,
        }
    }

    /// The earliest index that can be decrypted.
    pub(crate) fn first_known_index(&self) -> u32 {
        self.earliest().index()
    }

    /// The first authenticated index, if a signed key was received.
    pub(crate) fn authenticated_from(&self) -> Option<u32> {
        self.authenticated.as_ref().map(Ratchet::index)
    }

    /// `Err((index, first_known))` if `index` is before the first known one.
    pub(crate) fn check_index(&self, index: u32) -> Result<(), (u32, u32)> {
        let first_known = self.first_known_index();
        if index < first_known {
            Err((index, first_known))
        } else {
            Ok(())
        }
    }

    /// Whether `index` is served by the authenticated ratchet.
    pub(crate) fn is_authenticated_index(&self, index: u32) -> bool {
        self.authenticated
            .as_ref()
            .is_some_and(|a| index >= a.index())
    }

    /// The ratchet advanced to `index` (at or after the first known index),
    /// and whether it is on the authenticated line.
    pub(crate) fn ratchet_at(&self, index: u32) -> (Ratchet<K>, bool) {
        let authenticated = self.is_authenticated_index(index);
        let main_line = authenticated || self.authenticated.is_none();
        let start = if main_line && index >= self.latest.index() {
            &self.latest
        } else if authenticated {
            self.authenticated.as_ref().unwrap_or(&self.latest)
        } else {
            self.earliest()
        };
        let mut ratchet = start.clone();
        ratchet.advance_to(index);
        (ratchet, authenticated)
    }

    /// Keeps a ratchet that decrypted (if it is on the main line and newer)
    /// as the cache for sequential decryption.
    pub(crate) fn remember(&mut self, ratchet: Ratchet<K>, authenticated: bool) {
        if (authenticated || self.authenticated.is_none()) && ratchet.index() >= self.latest.index()
        {
            self.latest = ratchet;
        }
    }

    /// Forgets every key before `index`. Returns whether anything was
    /// forgotten.
    pub(crate) fn advance_to(&mut self, index: u32) -> bool {
        if index <= self.first_known_index() {
            return false;
        }
        let (ratchet, authenticated) = self.ratchet_at(index);
        if authenticated {
            // Everything before the authenticated ratchet's index goes.
            self.prefix = None;
            if let Some(a) = self.authenticated.as_mut().filter(|a| a.index() < index) {
                *a = ratchet.clone();
            }
        } else if self.authenticated.is_some() {
            // Only the prefix moves (it stays below the authenticated index).
            self.prefix = Some(ratchet);
            return true;
        } else {
            self.prefix = Some(ratchet.clone());
        }
        if self.latest.index() < index {
            self.latest = ratchet;
        }
        true
    }

    /// Merges the lines of two copies of one session (their keys already
    /// compared equal), or `None` if their ratchets contradict each other.
    /// Says which copy the authenticated ratchet came from.
    pub(crate) fn merge(&self, other: &Self) -> Option<(Self, Source)> {
        let (authenticated, source) = match (&self.authenticated, &other.authenticated) {
            (Some(a), Some(b)) => {
                if !leads_to(a, b) && !leads_to(b, a) {
                    return None;
                }
                if a.index() <= b.index() {
                    (Some(a.clone()), Source::First)
                } else {
                    (Some(b.clone()), Source::Second)
                }
            }
            (Some(a), None) => (Some(a.clone()), Source::First),
            (None, Some(b)) => (Some(b.clone()), Source::Second),
            (None, None) => (None, Source::Neither),
        };
        let candidates = self.prefix.iter().chain(other.prefix.iter());
        let prefix = match &authenticated {
            Some(anchor) => candidates
                .filter(|p| p.index() < anchor.index() && leads_to(p, anchor))
                .min_by_key(|p| p.index())
                .cloned(),
            None => {
                // Two unsigned copies: they must agree where they overlap.
                let (a, b) = (self.prefix.as_ref()?, other.prefix.as_ref()?);
                if !leads_to(a, b) && !leads_to(b, a) {
                    return None;
                }
                Some(if a.index() <= b.index() { a } else { b }.clone())
            }
        };
        let main = authenticated.as_ref().or(prefix.as_ref())?;
        let latest = [&self.latest, &other.latest]
            .into_iter()
            .filter(|l| l.index() >= main.index() && leads_to(main, l))
            .max_by_key(|l| l.index())
            .unwrap_or(main)
            .clone();
        Some((
            Self {
                authenticated,
                prefix,
                latest,
            },
            source,
        ))
    }

    /// How these lines relate to `other`'s (the keys compared equal).
    pub(crate) fn compare(&self, other: &Self) -> SessionOrdering {
        let Some((merged, _)) = self.merge(other) else {
            return SessionOrdering::Unconnected;
        };
        let covers = |a: &Self, b: &Self| {
            a.first_known_index() <= b.first_known_index()
                && match (a.authenticated_from(), b.authenticated_from()) {
                    (_, None) => true,
                    (Some(x), Some(y)) => x <= y,
                    (None, Some(_)) => false,
                }
        };
        match (covers(self, &merged), covers(other, &merged)) {
            (true, true) => SessionOrdering::Equal,
            (true, false) => SessionOrdering::Better,
            (false, true) => SessionOrdering::Worse,
            (false, false) => SessionOrdering::Incomparable,
        }
    }
}

/// Whether `early`, advanced to `late`'s index, equals `late` (compared in
/// constant time). This proves only the parts the advance does not re-derive
/// (see PROTOCOL.md, "Inbound sessions"), which is why unsigned ratchets are
/// never promoted to authenticated ones.
pub(crate) fn leads_to<K: GroupSpec>(early: &Ratchet<K>, late: &Ratchet<K>) -> bool {
    if early.index() > late.index() {
        return false;
    }
    let mut advanced = early.clone();
    advanced.advance_to(late.index());
    bool::from(advanced.ct_eq(late))
}

/// The methods every inbound group session type has in common, written once
/// over its `signing_key` and `lines` fields: first known index,
/// authenticated range, exports (of type `$export`, with `ratchet` and
/// `signing_key` fields), forgetting history and comparing copies.
macro_rules! inbound_methods {
    ($ty:ty, $export:ident) => {
        impl $ty {
            /// The session id (the sender session's Ed25519 public key).
            pub fn session_id(&self) -> $crate::group::GroupSessionId {
                $crate::group::GroupSessionId::from(self.signing_key)
            }

            /// The earliest index this session can decrypt.
            pub fn first_known_index(&self) -> u32 {
                self.lines.first_known_index()
            }

            /// The first index decrypted with `authenticated: true`, if a
            /// signed key was received.
            pub fn authenticated_from(&self) -> Option<u32> {
                self.lines.authenticated_from()
            }

            /// Exports the key at `index` (for backup or forwarding), or
            /// `None` if `index` is before the first known index.
            pub fn export_at(&self, index: u32) -> Option<$export> {
                self.lines.check_index(index).ok()?;
                Some($export {
                    ratchet: self.lines.ratchet_at(index).0,
                    signing_key: self.signing_key,
                })
            }

            /// Exports the key at the first known index.
            pub fn export_at_first_known_index(&self) -> $export {
                $export {
                    ratchet: self.lines.earliest().clone(),
                    signing_key: self.signing_key,
                }
            }

            /// Forgets every key before `index`, so messages before it can
            /// no longer be decrypted (forward secrecy for stored history).
            /// Returns whether anything was forgotten.
            pub fn advance_to(&mut self, index: u32) -> bool {
                self.lines.advance_to(index)
            }

            /// Compares two copies of what may be the same session (see
            /// [`SessionOrdering`](crate::SessionOrdering)).
            pub fn compare(&self, other: &Self) -> $crate::group::SessionOrdering {
                if self.signing_key != other.signing_key {
                    return $crate::group::SessionOrdering::Unconnected;
                }
                self.lines.compare(&other.lines)
            }
        }
    };
}
pub(crate) use inbound_methods;

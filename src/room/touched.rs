//! Which durable records an operation changed: [`Touch`] names one record
//! by its natural id, [`Touched`] collects them (or any other record names,
//! such as the Matrix layer's) while tracking is on (an endpoint attached to
//! a store); off, it records nothing and costs nothing.

use std::collections::BTreeSet;

use crate::group::GroupSessionId;
use crate::keys::Curve25519PublicKey;

/// One durable record of an endpoint, by natural id. The order (variant
/// first) is the order records are applied in: the metadata and account
/// before everything, a room's session before its recipients, a room key
/// before its replay records.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Touch {
    /// User id, device id and rotation policy.
    Meta,
    /// The account.
    Account,
    /// A peer device and its sessions, by X25519 key.
    Peer(Curve25519PublicKey),
    /// A room's outbound group session and its creation time.
    OutboundSession(String),
    /// A room's recipients of the current key and the keys offered.
    Recipients(String),
    /// A room whose outbound session was dropped, with the reason.
    Discarded(String),
    /// A stored inbound room key (without its replay records).
    InboundKey(String, GroupSessionId),
    /// One replay record: which event used a message index.
    Replay(String, GroupSessionId, u32),
}

/// The records changed since the last [`Touched::take`], when tracking.
#[derive(Clone, Debug)]
pub(crate) struct Touched<T = Touch>(Option<BTreeSet<T>>);

impl<T> Default for Touched<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T: Ord> Touched<T> {
    /// Starts (or stops) tracking; either way forgets what was recorded.
    pub(crate) fn track(&mut self, on: bool) {
        self.0 = on.then(BTreeSet::new);
    }

    /// Records that `touch` changed (nothing when not tracking).
    pub(crate) fn mark(&mut self, touch: impl FnOnce() -> T) {
        if let Some(set) = &mut self.0 {
            set.insert(touch());
        }
    }

    /// What was recorded since the last call.
    pub(crate) fn take(&mut self) -> BTreeSet<T> {
        self.0.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

//! Who may hold a room's current outbound key: the one recipient
//! bookkeeping behind the native endpoint's rooms ([`super::Endpoint`]) and
//! the Matrix layer's (`crate::matrix::MatrixEndpoint`), with the rotation
//! rule they share.
//!
//! Guarantees: a device enters the set as soon as a key for it is produced
//! (it may hold the key from then on, whether or not the message is ever
//! sent), counts as served only once the app confirms the message went out,
//! and leaves the set only with the session; so [`Recipients::lost_any`]
//! (any device that may hold the key is no longer listed with the same
//! identity) is what forces a rotation. A device is always served again from
//! the index it was first offered, never an earlier one: the signed key at
//! each such index is kept while some recipient needs it. Reading a pickled
//! set checks every one of these invariants and refuses a set that breaks
//! one.

use std::collections::{BTreeMap, BTreeSet};

use super::policy::{RotationPolicy, RotationReason};
use crate::codec::{DecodeError, Reader, Writer};
use crate::group::GroupSessionId;
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey, IdentityKeys};

/// A device as a recipient set records it (its identity and whatever ids the
/// layer keeps), and how it is pickled.
pub(crate) trait RecipientDevice: Sized {
    /// The device's identity; its X25519 key is its slot in the set.
    fn identity(&self) -> IdentityKeys;
    /// Writes the device (its X25519 key included) into a pickle.
    fn write(&self, w: &mut Writer);
    /// Reads what [`RecipientDevice::write`] wrote.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A session key as offered to recipients from some index, and how it is
/// pickled.
pub(crate) trait OfferedKey: Clone {
    /// The first index the key decrypts.
    fn first_index(&self) -> u32;
    /// The session it belongs to.
    fn session_id(&self) -> GroupSessionId;
    /// Writes the key into a pickle.
    fn write(&self, w: &mut Writer);
    /// Reads what [`OfferedKey::write`] wrote.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// One device offered a key, or told it is withheld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Offer<D> {
    pub(crate) device: D,
    /// The index it was first offered (for a withheld notice, the index
    /// current when it was told).
    pub(crate) first_index: u32,
    /// Whether the app confirmed the message carrying it was sent.
    pub(crate) sent: bool,
}

impl<D: RecipientDevice> Offer<D> {
    /// Writes the device, its first index and its sent flag.
    pub(crate) fn write(&self, w: &mut Writer) {
        self.device.write(w);
        w.u32(self.first_index).bool(self.sent);
    }

    /// Reads what [`Offer::write`] wrote.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            device: D::read(r)?,
            first_index: r.u32("recipient index")?,
            sent: r.bool("sent flag")?,
        })
    }
}

/// The devices that may hold a room's current key (by X25519 key) and the
/// signed key at each index some of them was first offered (a handful: one
/// per share that added devices).
#[derive(Clone, Debug)]
pub(crate) struct Recipients<D, K> {
    devices: BTreeMap<Curve25519PublicKey, Offer<D>>,
    keys: BTreeMap<u32, K>,
}

impl<D: RecipientDevice, K: OfferedKey> Default for Recipients<D, K> {
    fn default() -> Self {
        Self {
            devices: BTreeMap::new(),
            keys: BTreeMap::new(),
        }
    }
}

impl<D: RecipientDevice, K: OfferedKey> Recipients<D, K> {
    /// Whether the device with this X25519 key may hold the key.
    pub(crate) fn contains(&self, key: &Curve25519PublicKey) -> bool {
        self.devices.contains_key(key)
    }

    /// Whether exactly this identity was offered the key.
    pub(crate) fn holds(&self, identity: &IdentityKeys) -> bool {
        self.devices
            .get(&identity.curve25519)
            .is_some_and(|o| o.device.identity() == *identity)
    }

    /// Whether this identity's X25519 key was offered under another
    /// identity.
    pub(crate) fn conflicts(&self, identity: &IdentityKeys) -> bool {
        self.devices
            .get(&identity.curve25519)
            .is_some_and(|o| o.device.identity() != *identity)
    }

    /// The rotation rule: whether a device that may hold the key is missing
    /// from `listed` (the devices to serve now, by X25519 key), or listed
    /// with another Ed25519 key.
    pub(crate) fn lost_any(
        &self,
        listed: &BTreeMap<Curve25519PublicKey, Ed25519PublicKey>,
    ) -> bool {
        self.devices
            .iter()
            .any(|(key, o)| listed.get(key) != Some(&o.device.identity().ed25519))
    }

    /// The index to serve the device with this X25519 key from: the one it
    /// was first offered, or `current` for a new recipient; `None` when it
    /// was confirmed as served and `again` is false.
    pub(crate) fn index_to_serve(
        &self,
        key: &Curve25519PublicKey,
        current: u32,
        again: bool,
    ) -> Option<u32> {
        match self.devices.get(key) {
            Some(o) if o.sent && !again => None,
            Some(o) => Some(o.first_index),
            None => Some(current),
        }
    }

    /// The signed key to give a device first offered the key at `index`;
    /// `current` makes it when no recipient was offered that index yet (only
    /// the current index can be new: earlier ones were kept when offered).
    pub(crate) fn key_at(&mut self, index: u32, current: impl FnOnce() -> K) -> K {
        if let Some(key) = self.keys.get(&index) {
            return key.clone();
        }
        let key = current();
        self.keys.insert(key.first_index(), key.clone());
        key
    }

    /// Records that a key from `first_index` was produced for `device`; a
    /// device already in the set keeps its first index.
    pub(crate) fn offered(&mut self, device: D, first_index: u32) {
        self.devices
            .entry(device.identity().curve25519)
            .or_insert(Offer {
                device,
                first_index,
                sent: false,
            });
    }

    /// Marks the device with this X25519 key as served; false if it was not
    /// offered the key.
    pub(crate) fn mark_sent(&mut self, key: &Curve25519PublicKey) -> bool {
        self.devices.get_mut(key).map(|o| o.sent = true).is_some()
    }

    /// Forgets offered keys no recipient needs.
    pub(crate) fn prune_keys(&mut self) {
        let needed: BTreeSet<u32> = self.devices.values().map(|o| o.first_index).collect();
        self.keys.retain(|index, _| needed.contains(index));
    }

    /// Writes the devices (count, then each [`Offer`]).
    pub(crate) fn write_devices(&self, w: &mut Writer) {
        w.count32(self.devices.len());
        for offer in self.devices.values() {
            offer.write(w);
        }
    }

    /// Writes the offered keys (count, then each key).
    pub(crate) fn write_keys(&self, w: &mut Writer) {
        w.count32(self.keys.len());
        for key in self.keys.values() {
            key.write(w);
        }
    }

    /// Reads what [`Recipients::write_devices`] wrote, for a session now at
    /// message index `current`.
    pub(crate) fn read_devices(r: &mut Reader<'_>, current: u32) -> Result<Self, DecodeError> {
        let mut set = Self::default();
        for _ in 0..r.u32("recipients")? {
            let offer = Offer::<D>::read(r)?;
            let key = offer.device.identity().curve25519;
            if offer.first_index > current || set.devices.insert(key, offer).is_some() {
                return Err(DecodeError::InvalidValue("recipients"));
            }
        }
        Ok(set)
    }

    /// Reads what [`Recipients::write_keys`] wrote into a set read by
    /// [`Recipients::read_devices`], and checks every key is of `session`,
    /// at most at `current`, given once, and that every recipient's first
    /// index has its key.
    pub(crate) fn read_keys(
        &mut self,
        r: &mut Reader<'_>,
        session: GroupSessionId,
        current: u32,
    ) -> Result<(), DecodeError> {
        for _ in 0..r.u32("offered keys")? {
            let key = K::read(r)?;
            if key.session_id() != session
                || key.first_index() > current
                || self.keys.insert(key.first_index(), key).is_some()
            {
                return Err(DecodeError::InvalidValue("offered keys"));
            }
        }
        if self
            .devices
            .values()
            .any(|o| !self.keys.contains_key(&o.first_index))
        {
            return Err(DecodeError::InvalidValue("offered keys"));
        }
        Ok(())
    }
}

/// Why a room's existing outbound session must be replaced before a share
/// to `listed`, if it must: the policy (message count, age, a clock gone
/// back) first, then a device that may hold the key and is no longer listed.
pub(crate) fn rotation_due<D: RecipientDevice, K: OfferedKey>(
    policy: &RotationPolicy,
    sent: u32,
    created_ms: u64,
    now_ms: u64,
    recipients: &Recipients<D, K>,
    listed: &BTreeMap<Curve25519PublicKey, Ed25519PublicKey>,
) -> Option<RotationReason> {
    policy.expiry(sent, created_ms, now_ms).or_else(|| {
        recipients
            .lost_any(listed)
            .then_some(RotationReason::DeviceLeft)
    })
}

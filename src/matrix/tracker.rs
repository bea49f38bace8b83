//! The device tracker: which users' device lists this device follows, which
//! lists are outdated, and each user's checked devices, kept up to date from
//! `/keys/query` responses and the `device_lists` of each sync.
//!
//! Guarantees: every device it holds passed [`Device::from_signed_object`]
//! under the user and device id it is listed by; a device id keeps the keys
//! it was first seen with (a response that changes them is refused for that
//! device and reported, never applied); each bad item of a response is
//! reported with its own error while the rest is applied; a response older
//! than one already applied for a user is ignored for that user, and a user
//! marked outdated while a query was in flight stays outdated (the races the
//! specification warns about); users and devices are bounded
//! ([`MAX_TRACKED_USERS`], [`MAX_DEVICES_PER_USER`], [`MAX_TRACKED_DEVICES`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::device_keys::{Device, DeviceKeysError};
use super::ids::{DeviceId, UserId};
use super::json::{JsonError, parse, parse_item};
use super::query::{KeysQueryRequest, KeysQueryResponse};
use super::tracked::TrackedMap;

mod records;
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::{
    MAX_DEVICES_PER_USER, MAX_KEYS_QUERY_USERS, MAX_TRACKED_DEVICES, MAX_TRACKED_USERS,
};
use crate::keys::{Curve25519PublicKey, IdentityKeys};

/// One item of a response that was not applied, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedDevice {
    /// The user the item was listed under, as sent.
    pub user_id: String,
    /// The device the item was listed under, as sent (none when the whole
    /// user entry was refused).
    pub device_id: Option<String>,
    /// Why.
    pub error: DeviceKeysError,
}

/// What a `/keys/query` response changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeysQueryOutcome {
    /// Devices seen for the first time.
    pub new_devices: Vec<Device>,
    /// Devices no longer listed by their user's server (logged out or
    /// deleted). A room key shared with one of them must be rotated before
    /// the next message.
    pub removed_devices: Vec<Device>,
    /// Items refused, each with its reason.
    pub rejected: Vec<RejectedDevice>,
    /// Users whose device list is now up to date.
    pub updated_users: Vec<UserId>,
    /// Servers the homeserver could not reach; their users stay outdated.
    pub unreachable_servers: Vec<String>,
}

/// A `/keys/query` request built by [`DeviceTracker::keys_query`], with
/// the state it was built from (needed to apply its answer safely).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeysQuery {
    /// The body to send.
    pub body: KeysQueryRequest,
    /// Each queried user's outdated mark when the query was built.
    marks: BTreeMap<UserId, u64>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TrackedUser {
    /// The mark of the latest change not yet covered by an applied query.
    outdated: Option<u64>,
    /// The mark of the query last applied.
    applied: u64,
    devices: BTreeMap<DeviceId, Device>,
}

/// The users this device follows and their devices.
#[derive(Clone, Debug)]
pub struct DeviceTracker {
    own: Device,
    pub(crate) users: TrackedMap<UserId, TrackedUser>,
    /// Every held device by its Curve25519 key (how an Olm message's sender
    /// is found), so that lookup does not scan all devices.
    by_curve: BTreeMap<Curve25519PublicKey, (UserId, DeviceId)>,
    device_count: usize,
    next_mark: u64,
}

impl DeviceTracker {
    /// A tracker for the device `own_device` of `own_user` with `own_keys`.
    /// It follows its own user from the start (outdated, so the first query
    /// fetches the user's other devices), and its own device is known with
    /// its real keys, so no response can replace them.
    pub fn new(own_user: UserId, own_device: DeviceId, own_keys: IdentityKeys) -> Self {
        let own = Device::own(own_user.clone(), own_device.clone(), own_keys);
        let mut tracker = Self {
            own: own.clone(),
            users: TrackedMap::default(),
            by_curve: BTreeMap::from([(
                own_keys.curve25519,
                (own_user.clone(), own_device.clone()),
            )]),
            device_count: 1,
            next_mark: 1,
        };
        let mark = tracker.mark();
        tracker.users.insert(
            own_user,
            TrackedUser {
                outdated: Some(mark),
                applied: 0,
                devices: BTreeMap::from([(own_device, own)]),
            },
        );
        tracker
    }

    fn mark(&mut self) -> u64 {
        let mark = self.next_mark;
        self.next_mark = self.next_mark.saturating_add(1);
        mark
    }

    /// Starts following `users` (members of an encrypted room); new ones
    /// are outdated until queried. Returns the users refused because the
    /// tracker already follows [`MAX_TRACKED_USERS`].
    pub fn track_users<'a>(&mut self, users: impl IntoIterator<Item = &'a UserId>) -> Vec<UserId> {
        let mut refused = Vec::new();
        for user in users {
            if self.users.contains_key(user) {
                continue;
            }
            if self.users.len() >= MAX_TRACKED_USERS {
                refused.push(user.clone());
                continue;
            }
            let mark = self.mark();
            self.users.insert(
                user.clone(),
                TrackedUser {
                    outdated: Some(mark),
                    ..TrackedUser::default()
                },
            );
        }
        refused
    }

    /// Stops following `user` (no encrypted room is shared any more) and
    /// forgets their devices. The own user is always followed.
    pub fn untrack_user(&mut self, user: &UserId) {
        if user == self.own.user_id() {
            return;
        }
        if let Some(tracked) = self.users.remove(user) {
            self.device_count = self.device_count.saturating_sub(tracked.devices.len());
            for device in tracked.devices.values() {
                self.by_curve.remove(&device.keys().curve25519);
            }
        }
    }

    /// Marks a followed user's device list outdated (their devices
    /// changed). Returns whether the user is followed.
    pub fn mark_outdated(&mut self, user: &UserId) -> bool {
        let mark = self.mark();
        match self.users.get_mut(user) {
            Some(tracked) => {
                tracked.outdated = Some(mark);
                true
            }
            None => false,
        }
    }

    /// Applies a sync's `device_lists`: `changed` users that are followed
    /// become outdated, `left` users are no longer followed.
    pub fn receive_device_lists(&mut self, changed: &[UserId], left: &[UserId]) {
        for user in changed {
            self.mark_outdated(user);
        }
        for user in left {
            self.untrack_user(user);
        }
    }

    /// Whether `user` is followed.
    pub fn is_tracked(&self, user: &UserId) -> bool {
        self.users.contains_key(user)
    }

    /// The followed users whose device lists are outdated.
    pub fn outdated_users(&self) -> impl Iterator<Item = &UserId> {
        self.users
            .iter()
            .filter(|(_, t)| t.outdated.is_some())
            .map(|(u, _)| u)
    }

    /// The followed users.
    pub fn tracked_users(&self) -> impl Iterator<Item = &UserId> {
        self.users.keys()
    }

    /// The known devices of `user` (for the own user, the own device too).
    pub fn devices(&self, user: &UserId) -> impl Iterator<Item = &Device> {
        self.users
            .get(user)
            .into_iter()
            .flat_map(|t| t.devices.values())
    }

    /// A known device.
    pub fn device(&self, user: &UserId, device: &DeviceId) -> Option<&Device> {
        self.users.get(user)?.devices.get(device)
    }

    /// The known device whose Curve25519 identity key is `key` (how an Olm
    /// message's sender is found).
    pub fn device_by_curve25519(&self, key: &Curve25519PublicKey) -> Option<&Device> {
        let (user, device) = self.by_curve.get(key)?;
        self.device(user, device)
    }

    /// This device as the tracker knows it.
    pub fn own_device(&self) -> &Device {
        &self.own
    }

    /// A query for the outdated users (at most [`MAX_KEYS_QUERY_USERS`],
    /// those outdated longest first), or `None` when every list is up to
    /// date.
    pub fn keys_query(&self) -> Option<KeysQuery> {
        let mut outdated: Vec<(u64, &UserId)> = self
            .users
            .iter()
            .filter_map(|(u, t)| t.outdated.map(|m| (m, u)))
            .collect();
        if outdated.is_empty() {
            return None;
        }
        outdated.sort_unstable();
        outdated.truncate(MAX_KEYS_QUERY_USERS);
        let marks: BTreeMap<UserId, u64> =
            outdated.into_iter().map(|(m, u)| (u.clone(), m)).collect();
        Some(KeysQuery {
            body: KeysQueryRequest {
                timeout: None,
                device_keys: marks.keys().map(|u| (u.clone(), Vec::new())).collect(),
            },
            marks,
        })
    }

    /// Applies the JSON text of a `/keys/query` response to `query`. Only a
    /// response that is not JSON, is not of the response's shape or exceeds
    /// a bound is refused whole; each bad item is reported in the outcome.
    pub fn receive_keys_query_json(
        &mut self,
        query: &KeysQuery,
        response: &str,
    ) -> Result<KeysQueryOutcome, JsonError> {
        let response: KeysQueryResponse = parse(response)?;
        self.receive_keys_query(query, &response)
    }

    /// Applies a parsed `/keys/query` response to `query` (see
    /// [`DeviceTracker::receive_keys_query_json`]).
    pub fn receive_keys_query(
        &mut self,
        query: &KeysQuery,
        response: &KeysQueryResponse,
    ) -> Result<KeysQueryOutcome, JsonError> {
        let failures = response.failures.check("failed servers")?;
        let listed = response.device_keys.check("users")?;
        let mut outcome = KeysQueryOutcome {
            unreachable_servers: failures.keys().cloned().collect(),
            ..KeysQueryOutcome::default()
        };
        let mut answered = BTreeSet::new();
        for (user_text, devices) in listed {
            let Some((user, &mark)) = UserId::parse(user_text.as_str())
                .ok()
                .and_then(|u| query.marks.get_key_value(&u))
            else {
                outcome.rejected.push(RejectedDevice {
                    user_id: user_text.clone(),
                    device_id: None,
                    error: DeviceKeysError::NotRequested,
                });
                continue;
            };
            answered.insert(user.clone());
            let Ok(devices) = devices.check("devices") else {
                outcome.rejected.push(RejectedDevice {
                    user_id: user_text.clone(),
                    device_id: None,
                    error: DeviceKeysError::TooManyDevices,
                });
                self.settle(user, mark, &mut outcome);
                continue;
            };
            self.apply_user(user, mark, devices, &mut outcome);
        }
        for (user, &mark) in &query.marks {
            if answered.contains(user) {
                continue;
            }
            if failures.contains_key(user.server_name()) {
                // Still outdated; behind the others in the queue.
                let requeue = self.mark();
                if let Some(tracked) = self.users.get_mut(user)
                    && tracked.outdated == Some(mark)
                {
                    tracked.outdated = Some(requeue);
                }
            } else {
                // Reachable and absent: the user has no devices.
                self.apply_user(user, mark, &BTreeMap::new(), &mut outcome);
            }
        }
        Ok(outcome)
    }

    /// Records that the query with `mark` answered for `user`: clears the
    /// outdated flag unless the list changed again since. Returns false if
    /// a newer answer was already applied (this one is stale).
    fn settle(&mut self, user: &UserId, mark: u64, outcome: &mut KeysQueryOutcome) -> bool {
        let Some(tracked) = self.users.get_mut(user) else {
            return false;
        };
        if mark < tracked.applied {
            return false;
        }
        tracked.applied = mark;
        if tracked.outdated.is_some_and(|m| m <= mark) {
            tracked.outdated = None;
            outcome.updated_users.push(user.clone());
        }
        true
    }

    fn apply_user(
        &mut self,
        user: &UserId,
        mark: u64,
        listed: &BTreeMap<String, Box<RawValue>>,
        outcome: &mut KeysQueryOutcome,
    ) {
        if !self.settle(user, mark, outcome) {
            return;
        }
        let own = self.own.clone();
        let mut seen = BTreeSet::new();
        for (device_text, item) in listed {
            let reject = |error| RejectedDevice {
                user_id: user.to_string(),
                device_id: Some(device_text.clone()),
                error,
            };
            let Ok(device_id) = DeviceId::parse(device_text.as_str()) else {
                outcome.rejected.push(reject(DeviceKeysError::InvalidId));
                continue;
            };
            seen.insert(device_id.clone());
            let device = match parse_device(user, &device_id, item) {
                Ok(device) => device,
                Err(error) => {
                    outcome.rejected.push(reject(error));
                    continue;
                }
            };
            let full = self.device_count >= MAX_TRACKED_DEVICES;
            let Some(tracked) = self.users.get_mut(user) else {
                return;
            };
            let user_full = tracked.devices.len() >= MAX_DEVICES_PER_USER;
            match tracked.devices.get_mut(&device_id) {
                Some(known) if known.keys() == device.keys() => *known = device,
                Some(_) if own.user_id() == user && own.device_id() == &device_id => {
                    outcome.rejected.push(reject(DeviceKeysError::NotOurKeys));
                }
                Some(_) => outcome.rejected.push(reject(DeviceKeysError::KeysChanged)),
                None if user_full || full => {
                    outcome
                        .rejected
                        .push(reject(DeviceKeysError::TooManyDevices));
                }
                None if self.by_curve.contains_key(&device.keys().curve25519) => {
                    // Another device already holds this Curve25519 key: a
                    // device claiming someone else's keys.
                    outcome
                        .rejected
                        .push(reject(DeviceKeysError::CurveKeyInUse));
                }
                None => {
                    tracked.devices.insert(device_id.clone(), device.clone());
                    self.by_curve
                        .insert(device.keys().curve25519, (user.clone(), device_id));
                    self.device_count = self.device_count.saturating_add(1);
                    outcome.new_devices.push(device);
                }
            }
        }
        let Some(tracked) = self.users.get_mut(user) else {
            return;
        };
        let is_own = |d: &DeviceId| own.user_id() == user && own.device_id() == d;
        let gone: Vec<DeviceId> = tracked
            .devices
            .keys()
            .filter(|d| !seen.contains(*d) && !is_own(d))
            .cloned()
            .collect();
        for device_id in gone {
            if let Some(device) = tracked.devices.remove(&device_id) {
                self.device_count = self.device_count.saturating_sub(1);
                self.by_curve.remove(&device.keys().curve25519);
                outcome.removed_devices.push(device);
            }
        }
    }
}

impl DeviceTracker {
    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.u64(self.next_mark).count32(self.users.len());
        for user in self.users.keys() {
            w.short_bytes(user.as_str().as_bytes());
            self.write_user_record(user, w);
        }
    }

    /// Reads what [`DeviceTracker::write_contents`] wrote, for the device
    /// `own` (which must be listed with its own keys).
    pub(crate) fn read_contents(r: &mut Reader<'_>, own: Device) -> Result<Self, DecodeError> {
        let mut tracker = Self {
            own,
            users: TrackedMap::default(),
            by_curve: BTreeMap::new(),
            device_count: 0,
            next_mark: r.u64("tracker mark")?,
        };
        let users = r.u32("tracked users")?;
        if usize::try_from(users).map_or(true, |u| u > MAX_TRACKED_USERS) {
            return Err(DecodeError::InvalidValue("tracked users"));
        }
        for _ in 0..users {
            let user = UserId::parse(super::room_keys::read_text(r, "user id")?)
                .map_err(|_| DecodeError::InvalidValue("user id"))?;
            let outdated = Some(r.u64("outdated mark")?).filter(|&m| m != 0);
            let applied = r.u64("applied mark")?;
            let mut devices = BTreeMap::new();
            for _ in 0..r.u32("devices")? {
                let device = Device::read_contents(r)?;
                if device.user_id() != &user
                    || tracker.device_count >= MAX_TRACKED_DEVICES
                    || tracker
                        .by_curve
                        .insert(
                            device.keys().curve25519,
                            (user.clone(), device.device_id().clone()),
                        )
                        .is_some()
                    || devices.insert(device.device_id().clone(), device).is_some()
                {
                    return Err(DecodeError::InvalidValue("tracked devices"));
                }
                tracker.device_count += 1;
            }
            let entry = TrackedUser {
                outdated,
                applied,
                devices,
            };
            if tracker.users.insert(user, entry).is_some() {
                return Err(DecodeError::InvalidValue("tracked users"));
            }
        }
        let own = &tracker.own;
        // The listed copy may carry a display name; the keys must match.
        if tracker
            .device(own.user_id(), own.device_id())
            .map(Device::keys)
            != Some(own.keys())
        {
            return Err(DecodeError::InvalidValue("own device"));
        }
        Ok(tracker)
    }
}

/// One device's item, checked.
fn parse_device(
    user: &UserId,
    device: &DeviceId,
    item: &RawValue,
) -> Result<Device, DeviceKeysError> {
    let object: Map<String, Value> = parse_item(item, "device keys")?;
    Device::from_signed_object(user, device, &object)
}

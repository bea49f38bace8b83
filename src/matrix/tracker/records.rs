//! The device tracker as durable records: one record per followed user
//! (their outdated and applied marks and their checked devices); the
//! tracker's mark counter lives in the endpoint's state record.

use std::collections::BTreeMap;

use super::{DeviceTracker, TrackedUser};
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::MAX_TRACKED_DEVICES;
use crate::matrix::device_keys::Device;
use crate::matrix::ids::UserId;

impl DeviceTracker {
    /// The next mark (kept with the endpoint's state).
    pub(crate) fn next_mark(&self) -> u64 {
        self.next_mark
    }

    /// Sets the next mark (from the endpoint's state record).
    pub(crate) fn set_next_mark(&mut self, mark: u64) {
        self.next_mark = mark;
    }

    /// Writes the record of `user`; false when the user is not followed.
    pub(crate) fn write_user_record(&self, user: &UserId, w: &mut Writer) -> bool {
        let Some(tracked) = self.users.get(user) else {
            return false;
        };
        w.u64(tracked.outdated.unwrap_or(0))
            .u64(tracked.applied)
            .count32(tracked.devices.len());
        for device in tracked.devices.values() {
            device.write_contents(w);
        }
        true
    }

    /// Applies the record of `user` as a store holds it (`None`: absent),
    /// replacing what is held for the user. The own user's record must keep
    /// the own device with its keys.
    pub(crate) fn apply_user_record(
        &mut self,
        user: &UserId,
        r: Option<&mut Reader<'_>>,
    ) -> Result<(), DecodeError> {
        let tracked = r.map(|r| read_user(r, user)).transpose()?;
        if let Some(old) = self.users.remove(user) {
            self.device_count = self.device_count.saturating_sub(old.devices.len());
            for device in old.devices.values() {
                self.by_curve.remove(&device.keys().curve25519);
            }
        }
        let Some(tracked) = tracked else {
            return Ok(());
        };
        for device in tracked.devices.values() {
            let curve = device.keys().curve25519;
            if self.device_count >= MAX_TRACKED_DEVICES || self.by_curve.contains_key(&curve) {
                return Err(DecodeError::InvalidValue("tracked devices"));
            }
            self.by_curve
                .insert(curve, (user.clone(), device.device_id().clone()));
            self.device_count += 1;
        }
        self.users.insert(user.clone(), tracked);
        Ok(())
    }

    /// Whether the own device is held with its own keys (a store's records
    /// must keep it).
    pub(crate) fn holds_own_device(&self) -> bool {
        let own = &self.own;
        self.device(own.user_id(), own.device_id())
            .map(Device::keys)
            == Some(own.keys())
    }
}

fn read_user(r: &mut Reader<'_>, user: &UserId) -> Result<TrackedUser, DecodeError> {
    let outdated = Some(r.u64("outdated mark")?).filter(|&m| m != 0);
    let applied = r.u64("applied mark")?;
    let mut devices = BTreeMap::new();
    for _ in 0..r.u32("devices")? {
        let device = Device::read_contents(r)?;
        if device.user_id() != user
            || devices.len() >= MAX_TRACKED_DEVICES
            || devices.insert(device.device_id().clone(), device).is_some()
        {
            return Err(DecodeError::InvalidValue("tracked devices"));
        }
    }
    Ok(TrackedUser {
        outdated,
        applied,
        devices,
    })
}

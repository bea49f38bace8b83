//! Unit tests of the Matrix layer, one file per concept, with the helpers
//! they share: devices with real signed keys, and JSON built around them.

mod canonical;
mod claim;
mod durable;
mod endpoint;
mod events;
mod hostile;
mod ids;
mod olm_payload;
mod phase2;
#[path = "../../../tests/support/matrix_server.rs"]
mod server;
mod signing;
mod sync;
mod tracker;
mod upload;

use serde_json::{Map, Value, json};

use super::{DeviceId, DeviceTracker, UserId, device_keys, key_name};
use crate::Account;

/// A user id from a literal.
pub(super) fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

/// A device id from a literal.
pub(super) fn device(id: &str) -> DeviceId {
    DeviceId::parse(id).unwrap()
}

/// A device with an account and its published, self-signed keys.
pub(super) struct TestDevice {
    pub(super) account: Account,
    pub(super) user: UserId,
    pub(super) device: DeviceId,
}

impl TestDevice {
    pub(super) fn new(user_id: &str, device_id: &str) -> Self {
        Self {
            account: Account::new(),
            user: user(user_id),
            device: device(device_id),
        }
    }

    /// The device-keys object as the server would return it.
    pub(super) fn keys_json(&self) -> Map<String, Value> {
        match serde_json::to_value(device_keys(&self.account, &self.user, &self.device).unwrap())
            .unwrap()
        {
            Value::Object(object) => object,
            _ => unreachable!(),
        }
    }

    /// The Ed25519 key name, `ed25519:<device>`.
    pub(super) fn key_id(&self) -> String {
        key_name("ed25519", self.device.as_str())
    }

    /// Signs `object` as this device.
    pub(super) fn sign(&self, object: &mut Map<String, Value>) {
        super::sign_json(object, self.user.as_str(), &self.key_id(), |b| {
            self.account.sign_raw(b)
        })
        .unwrap();
    }
}

/// `own`'s tracker after a first query, following the users of `devices`
/// and knowing all of `devices`.
pub(super) fn tracker_knowing(own: &TestDevice, devices: &[&TestDevice]) -> DeviceTracker {
    let mut tracker = DeviceTracker::new(
        own.user.clone(),
        own.device.clone(),
        own.account.identity_keys(),
    );
    tracker.track_users(devices.iter().map(|d| &d.user));
    let query = tracker.keys_query().unwrap();
    let outcome = tracker
        .receive_keys_query_json(&query, &query_response(devices))
        .unwrap();
    assert!(outcome.rejected.is_empty());
    tracker
}

/// A `/keys/query` response listing `devices` under their own ids.
pub(super) fn query_response(devices: &[&TestDevice]) -> String {
    let mut users = Map::new();
    for d in devices {
        users
            .entry(d.user.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap()
            .insert(d.device.to_string(), Value::Object(d.keys_json()));
    }
    json!({ "device_keys": users, "failures": {} }).to_string()
}

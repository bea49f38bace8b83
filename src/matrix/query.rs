//! `/keys/query` and `/keys/claim`: the request bodies the device tracker
//! builds and the responses as a server sends them, parsed only as far as
//! their bounds; each device's item is checked on its own later.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::ids::{DeviceId, UserId};
use super::json::BoundedMap;
use crate::consts::{MAX_DEVICES_PER_USER, MAX_KEYS_CLAIM_DEVICES, MAX_KEYS_QUERY_USERS};

/// Raw per-user items of a response: user id to device id to one item.
type PerDevice = BoundedMap<BoundedMap<Box<RawValue>, MAX_DEVICES_PER_USER>, MAX_KEYS_QUERY_USERS>;

/// The body of `POST /_matrix/client/v3/keys/query`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysQueryRequest {
    /// How long the server may wait for remote servers, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// The users to query; an empty list asks for all their devices (the
    /// tracker always asks for all).
    pub device_keys: BTreeMap<UserId, Vec<DeviceId>>,
}

/// The answer to `/keys/query`. Cross-signing keys (`master_keys`,
/// `self_signing_keys`, `user_signing_keys`) are not read by this layer.
#[derive(Debug, Default, Deserialize)]
pub struct KeysQueryResponse {
    /// Servers that could not be reached, by server name.
    #[serde(default)]
    pub failures: BoundedMap<Box<RawValue>, MAX_KEYS_QUERY_USERS>,
    /// Each user's devices: user id to device id to the device's keys.
    #[serde(default)]
    pub device_keys: PerDevice,
}

/// The body of `POST /_matrix/client/v3/keys/claim`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysClaimRequest {
    /// How long the server may wait for remote servers, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// The keys to claim: user id to device id to key algorithm
    /// (`signed_curve25519`).
    pub one_time_keys: BTreeMap<UserId, BTreeMap<DeviceId, String>>,
}

/// The answer to `/keys/claim`.
#[derive(Debug, Default, Deserialize)]
pub struct KeysClaimResponse {
    /// Servers that could not be reached, by server name.
    #[serde(default)]
    pub failures: BoundedMap<Box<RawValue>, MAX_KEYS_CLAIM_DEVICES>,
    /// The claimed keys: user id to device id to a map from key name
    /// (`signed_curve25519:<key id>`) to the signed key.
    #[serde(default)]
    pub one_time_keys:
        BoundedMap<BoundedMap<Box<RawValue>, MAX_KEYS_CLAIM_DEVICES>, MAX_KEYS_CLAIM_DEVICES>,
}

impl KeysClaimRequest {
    /// How many devices the request claims keys for.
    pub fn device_count(&self) -> usize {
        self.one_time_keys.values().map(BTreeMap::len).sum()
    }
}

//! Claiming one-time keys: the `/keys/claim` bodies for devices that need
//! a new Olm session, and the checked keys from the response.
//!
//! Guarantees: a [`ClaimedKey`] is a `signed_curve25519` key whose
//! signature verifies (strict Ed25519, canonical JSON) with the Ed25519 key
//! the tracker already holds for that device, for a device that was asked
//! for; at most one key per device is returned; every other item is
//! reported with its own error.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use thiserror::Error;

use super::device_keys::{Device, OneTimeKey, SIGNED_CURVE25519, key_name};
use super::ids::{DeviceId, UserId};
use super::json::{JsonError, from_object, parse, parse_item};
use super::query::{KeysClaimRequest, KeysClaimResponse};
use super::signing::{ED25519, SignatureError, verify_json};
use super::tracker::DeviceTracker;
use crate::consts::MAX_KEYS_CLAIM_DEVICES;
use crate::keys::Curve25519PublicKey;

/// Why one claimed key was not accepted. Only that key is affected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum OneTimeKeyError {
    /// The user or device id it is listed under is not valid.
    #[error("invalid user or device id")]
    InvalidId,
    /// The key is for a device the request did not ask about.
    #[error("key for a device that was not asked for")]
    NotRequested,
    /// The device is not (or no longer) known to the tracker, so there is
    /// no Ed25519 key to check the signature with.
    #[error("key for an unknown device")]
    UnknownDevice,
    /// The key's name is not `signed_curve25519:<key id>`.
    #[error("key of another algorithm")]
    WrongAlgorithm,
    /// The key object is malformed or too large.
    #[error("malformed key: {0}")]
    Malformed(#[from] JsonError),
    /// The device's signature is missing or does not verify.
    #[error("key signature: {0}")]
    Signature(#[from] SignatureError),
    /// The device already has a key in this response; one is used.
    #[error("more than one key for the device")]
    Duplicate,
    /// The key verified but no Olm session can be started from it (a
    /// low-order point: the exchange would not be contributory).
    #[error("no Olm session can be started from the key")]
    Unusable,
}

/// A one-time (or fallback) key of a known device, its signature checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedKey {
    /// The device the key belongs to, as the tracker knows it.
    pub device: Device,
    /// The key's id (after `signed_curve25519:`).
    pub key_id: String,
    /// The X25519 public key to start an Olm session with.
    pub key: Curve25519PublicKey,
    /// Whether the server handed out the device's fallback key (its
    /// one-time keys ran out); the flag is covered by the signature.
    pub fallback: bool,
}

/// A claimed key that was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedKey {
    /// The user it was listed under, as sent.
    pub user_id: String,
    /// The device it was listed under, as sent.
    pub device_id: String,
    /// Why.
    pub error: OneTimeKeyError,
}

/// What a `/keys/claim` response yielded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimOutcome {
    /// Checked keys, at most one per device.
    pub keys: Vec<ClaimedKey>,
    /// Devices asked for that got no usable key (out of keys, or every key
    /// refused).
    pub missing: Vec<(UserId, DeviceId)>,
    /// Items refused, each with its reason.
    pub rejected: Vec<RejectedKey>,
    /// Servers the homeserver could not reach.
    pub unreachable_servers: Vec<String>,
}

/// `/keys/claim` bodies asking one `signed_curve25519` key for each of
/// `devices`, at most [`MAX_KEYS_CLAIM_DEVICES`] devices per body.
pub fn keys_claim_requests<'a>(
    devices: impl IntoIterator<Item = &'a Device>,
) -> Vec<KeysClaimRequest> {
    let mut requests: Vec<KeysClaimRequest> = Vec::new();
    let mut current = KeysClaimRequest::default();
    for device in devices {
        if current.device_count() >= MAX_KEYS_CLAIM_DEVICES {
            requests.push(std::mem::take(&mut current));
        }
        current
            .one_time_keys
            .entry(device.user_id().clone())
            .or_default()
            .insert(device.device_id().clone(), SIGNED_CURVE25519.to_owned());
    }
    if current.device_count() > 0 {
        requests.push(current);
    }
    requests
}

/// Checks the JSON text of a `/keys/claim` response to `request` against
/// the devices `tracker` knows. Only a response that is not JSON, not of
/// the response's shape or over a bound is refused whole.
pub fn receive_keys_claim_json(
    tracker: &DeviceTracker,
    request: &KeysClaimRequest,
    response: &str,
) -> Result<ClaimOutcome, JsonError> {
    let response: KeysClaimResponse = parse(response)?;
    receive_keys_claim(tracker, request, &response)
}

/// Checks a parsed `/keys/claim` response (see [`receive_keys_claim_json`]).
pub fn receive_keys_claim(
    tracker: &DeviceTracker,
    request: &KeysClaimRequest,
    response: &KeysClaimResponse,
) -> Result<ClaimOutcome, JsonError> {
    let failures = response.failures.check("failed servers")?;
    let users = response.one_time_keys.check("users")?;
    let mut outcome = ClaimOutcome {
        unreachable_servers: failures.keys().cloned().collect(),
        ..ClaimOutcome::default()
    };
    let mut served = BTreeSet::new();
    let mut devices_seen = 0usize;
    for (user_text, devices) in users {
        let devices = devices.check("devices")?;
        devices_seen = devices_seen.saturating_add(devices.len());
        if devices_seen > MAX_KEYS_CLAIM_DEVICES {
            return Err(JsonError::TooMany {
                what: "devices",
                max: MAX_KEYS_CLAIM_DEVICES,
            });
        }
        for (device_text, keys) in devices {
            let reject = |error| RejectedKey {
                user_id: user_text.clone(),
                device_id: device_text.clone(),
                error,
            };
            let (Ok(user), Ok(device_id)) = (
                UserId::parse(user_text.as_str()),
                DeviceId::parse(device_text.as_str()),
            ) else {
                outcome.rejected.push(reject(OneTimeKeyError::InvalidId));
                continue;
            };
            let asked = request
                .one_time_keys
                .get(&user)
                .is_some_and(|d| d.contains_key(&device_id));
            if !asked {
                outcome.rejected.push(reject(OneTimeKeyError::NotRequested));
                continue;
            }
            let Some(device) = tracker.device(&user, &device_id) else {
                outcome
                    .rejected
                    .push(reject(OneTimeKeyError::UnknownDevice));
                continue;
            };
            let keys: Map<String, Value> = match parse_item(keys, "claimed keys") {
                Ok(keys) => keys,
                Err(e) => {
                    outcome.rejected.push(reject(e.into()));
                    continue;
                }
            };
            for (name, object) in &keys {
                match check_key(device, name, object) {
                    Ok(_) if served.contains(&(user.clone(), device_id.clone())) => {
                        outcome.rejected.push(reject(OneTimeKeyError::Duplicate));
                    }
                    Ok(key) => {
                        served.insert((user.clone(), device_id.clone()));
                        outcome.keys.push(key);
                    }
                    Err(error) => outcome.rejected.push(reject(error)),
                }
            }
        }
    }
    for (user, devices) in &request.one_time_keys {
        for device in devices.keys() {
            if !served.contains(&(user.clone(), device.clone())) {
                outcome.missing.push((user.clone(), device.clone()));
            }
        }
    }
    Ok(outcome)
}

/// One `name: object` entry of a device's claimed keys, checked.
fn check_key(device: &Device, name: &str, object: &Value) -> Result<ClaimedKey, OneTimeKeyError> {
    let key_id = name
        .strip_prefix(SIGNED_CURVE25519)
        .and_then(|rest| rest.strip_prefix(':'))
        .ok_or(OneTimeKeyError::WrongAlgorithm)?;
    let Value::Object(object) = object else {
        return Err(OneTimeKeyError::Malformed(JsonError::NOT_AN_OBJECT));
    };
    let parsed: OneTimeKey = from_object(object)?;
    verify_json(
        object,
        device.user_id().as_str(),
        &key_name(ED25519, device.device_id().as_str()),
        &device.keys().ed25519,
    )?;
    Ok(ClaimedKey {
        device: device.clone(),
        key_id: key_id.to_owned(),
        key: parsed.key,
        fallback: parsed.fallback,
    })
}

//! The key objects a Matrix device publishes and downloads: its device keys
//! (`algorithms`, `keys` named `<algorithm>:<device id>`, `signatures`) and
//! its signed one-time and fallback keys (`signed_curve25519:<key id>`), and
//! the checked [`Device`] a downloaded object becomes.
//!
//! Guarantees: a [`Device`] exists only for an object that has an Ed25519
//! and a Curve25519 key under its own device id, a valid self-signature by
//! that Ed25519 key over the object exactly as received (unknown fields
//! included), and ids of the right form. Cross-signing signatures are kept
//! out of the decision (they are a later layer's).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use super::ids::{DeviceId, UserId};
use super::json::{JsonError, from_object};
use super::signing::{ED25519, SignatureError, verify_json};
use crate::codec::{DecodeError, Reader, Writer};
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey, IdentityKeys};

/// Olm version 1, the pairwise algorithm (`m.olm.v1.curve25519-aes-sha2`).
pub const OLM_V1: &str = "m.olm.v1.curve25519-aes-sha2";
/// Megolm version 1, the room algorithm (`m.megolm.v1.aes-sha2`).
pub const MEGOLM_V1: &str = "m.megolm.v1.aes-sha2";
/// The key algorithm of a device's identity key for Olm.
pub const CURVE25519: &str = "curve25519";
/// The key algorithm of signed one-time and fallback keys.
pub const SIGNED_CURVE25519: &str = "signed_curve25519";

/// Signatures on a JSON object: signer (user id) to key id
/// (`ed25519:<device id>`) to unpadded base64.
pub type Signatures = BTreeMap<String, BTreeMap<String, String>>;

/// Most algorithms a [`Device`] remembers from its object.
const MAX_DEVICE_ALGORITHMS: usize = 8;
/// Longest algorithm name a [`Device`] remembers.
const MAX_ALGORITHM_LEN: usize = 64;
/// Longest display name a [`Device`] remembers; a longer one is dropped.
const MAX_DISPLAY_NAME_LEN: usize = 255;

/// `<algorithm>:<id>`, the name of a key in `keys`, `one_time_keys` and
/// `signatures` maps.
pub fn key_name(algorithm: &str, id: &str) -> String {
    format!("{algorithm}:{id}")
}

/// A device's published keys: the `DeviceKeys` object of `/keys/upload`
/// and of each device in a `/keys/query` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKeys {
    /// The owning user.
    pub user_id: UserId,
    /// The device.
    pub device_id: DeviceId,
    /// The encryption algorithms the device speaks.
    pub algorithms: Vec<String>,
    /// Public keys by name: `ed25519:<device id>` and
    /// `curve25519:<device id>`, unpadded base64.
    pub keys: BTreeMap<String, String>,
    /// Signatures, the device's own under its user id and
    /// `ed25519:<device id>`.
    #[serde(default)]
    pub signatures: Signatures,
    /// Data added by servers, not covered by signatures (for example
    /// `device_display_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsigned: Option<Map<String, Value>>,
}

/// A signed Curve25519 key (`signed_curve25519`): a one-time key, or with
/// `fallback` set, the device's fallback key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimeKey {
    /// The X25519 public key, unpadded base64.
    pub key: Curve25519PublicKey,
    /// Whether this is a fallback key (covered by the signature).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    /// Signatures, the device's own under its user id and
    /// `ed25519:<device id>`.
    #[serde(default)]
    pub signatures: Signatures,
}

/// Why one device's keys (in a `/keys/query` response) were not accepted.
/// Only that device is affected; the rest of the response is processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DeviceKeysError {
    /// The object is not of the `DeviceKeys` shape or too large.
    #[error("malformed device keys: {0}")]
    Malformed(#[from] JsonError),
    /// The user id in the object is not the one it is listed under.
    #[error("device keys name another user")]
    UserIdMismatch,
    /// The device id in the object is not the one it is listed under.
    #[error("device keys name another device")]
    DeviceIdMismatch,
    /// The map key the device is listed under is not a valid id.
    #[error("invalid user or device id")]
    InvalidId,
    /// There is no usable key of this algorithm under the device's id.
    #[error("missing or invalid {0} key")]
    MissingKey(&'static str),
    /// The self-signature is missing or does not verify.
    #[error("self-signature: {0}")]
    Signature(#[from] SignatureError),
    /// The device is already known with other identity keys. The known
    /// keys are kept: a device id never changes keys (a server swapping
    /// them is an attack, a real new device gets a new id).
    #[error("device already known with other keys")]
    KeysChanged,
    /// Another known device (of this or another user) already has this
    /// Curve25519 key: a device claiming someone else's keys, so that
    /// messages from the real owner would be attributed to it.
    #[error("Curve25519 key already held by another device")]
    CurveKeyInUse,
    /// Our own device is listed with keys that are not ours.
    #[error("our own device listed with other keys")]
    NotOurKeys,
    /// The response lists a user we did not ask about.
    #[error("user not in the query")]
    NotRequested,
    /// The user has more devices than [`crate::consts::MAX_DEVICES_PER_USER`]
    /// or the tracker is full ([`crate::consts::MAX_TRACKED_DEVICES`]).
    #[error("too many devices")]
    TooManyDevices,
}

/// A device whose published keys passed every check: the form the device
/// tracker keeps and the rest of the Matrix layer trusts.
///
/// The self-signature proves the object is consistent (its Ed25519 key
/// signed it); whether the key belongs to the user is a separate trust
/// decision (cross-signing or verification).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    user_id: UserId,
    device_id: DeviceId,
    keys: IdentityKeys,
    algorithms: Vec<String>,
    display_name: Option<String>,
}

impl Device {
    /// Checks a downloaded device-keys object and keeps what it says.
    /// `user_id` and `device_id` are where the object was listed; the
    /// object must name the same ones.
    pub fn from_signed_object(
        user_id: &UserId,
        device_id: &DeviceId,
        object: &Map<String, Value>,
    ) -> Result<Self, DeviceKeysError> {
        let parsed: DeviceKeys = from_object(object)?;
        if &parsed.user_id != user_id {
            return Err(DeviceKeysError::UserIdMismatch);
        }
        if &parsed.device_id != device_id {
            return Err(DeviceKeysError::DeviceIdMismatch);
        }
        let id = device_id.as_str();
        let ed25519 = parsed
            .keys
            .get(&key_name(ED25519, id))
            .and_then(|k| Ed25519PublicKey::from_base64(k).ok())
            .ok_or(DeviceKeysError::MissingKey(ED25519))?;
        let curve25519 = parsed
            .keys
            .get(&key_name(CURVE25519, id))
            .and_then(|k| Curve25519PublicKey::from_base64(k).ok())
            .ok_or(DeviceKeysError::MissingKey(CURVE25519))?;
        verify_json(object, user_id.as_str(), &key_name(ED25519, id), &ed25519)?;
        let algorithms = parsed
            .algorithms
            .into_iter()
            .filter(|a| !a.is_empty() && a.len() <= MAX_ALGORITHM_LEN)
            .take(MAX_DEVICE_ALGORITHMS)
            .collect();
        let display_name = parsed
            .unsigned
            .as_ref()
            .and_then(|u| u.get("device_display_name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty() && n.len() <= MAX_DISPLAY_NAME_LEN)
            .map(str::to_owned);
        Ok(Self {
            user_id: parsed.user_id,
            device_id: parsed.device_id,
            keys: IdentityKeys {
                ed25519,
                curve25519,
            },
            algorithms,
            display_name,
        })
    }

    /// A device from keys known first-hand (our own account).
    pub(crate) fn own(user_id: UserId, device_id: DeviceId, keys: IdentityKeys) -> Self {
        Self {
            user_id,
            device_id,
            keys,
            algorithms: vec![OLM_V1.to_owned(), MEGOLM_V1.to_owned()],
            display_name: None,
        }
    }

    /// The owning user.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The device id.
    pub fn device_id(&self) -> &DeviceId {
        &self.device_id
    }

    /// The device's Ed25519 and Curve25519 identity keys.
    pub fn keys(&self) -> IdentityKeys {
        self.keys
    }

    /// The algorithms the device advertised (at most eight, each at most 64
    /// bytes).
    pub fn algorithms(&self) -> &[String] {
        &self.algorithms
    }

    /// Whether the device advertises `algorithm`.
    pub fn supports(&self, algorithm: &str) -> bool {
        self.algorithms.iter().any(|a| a == algorithm)
    }

    /// The display name the server reported (unsigned, at most 255 bytes).
    pub fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }

    /// The device as the Matrix endpoint's pickle stores it: ids, identity
    /// keys, algorithms, display name (the pickle is authenticated, so the
    /// self-signature checked when it arrived is not stored).
    pub(crate) fn write_contents(&self, w: &mut Writer) {
        w.short_bytes(self.user_id.as_str().as_bytes())
            .short_bytes(self.device_id.as_str().as_bytes())
            .bytes(&self.keys.to_bytes())
            .count(self.algorithms.len());
        for algorithm in &self.algorithms {
            w.short_bytes(algorithm.as_bytes());
        }
        match &self.display_name {
            Some(name) => w.bool(true).short_bytes(name.as_bytes()),
            None => w.bool(false),
        };
    }

    pub(crate) fn read_contents(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let text = |r: &mut Reader<'_>, field| super::room_keys::read_text(r, field);
        let user_id =
            UserId::parse(text(r, "user id")?).map_err(|_| DecodeError::InvalidValue("user id"))?;
        let device_id = DeviceId::parse(text(r, "device id")?)
            .map_err(|_| DecodeError::InvalidValue("device id"))?;
        let keys = IdentityKeys::read(r)?;
        let count = r.count(MAX_DEVICE_ALGORITHMS, "algorithms")?;
        let mut algorithms = Vec::with_capacity(count);
        for _ in 0..count {
            algorithms.push(text(r, "algorithm")?);
        }
        let display_name = if r.bool("display name flag")? {
            Some(text(r, "display name")?)
        } else {
            None
        };
        Ok(Self {
            user_id,
            device_id,
            keys,
            algorithms,
            display_name,
        })
    }
}

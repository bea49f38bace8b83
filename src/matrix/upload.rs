//! `/keys/upload`: the body a device publishes (its device keys, new
//! one-time keys, a new fallback key, each signed over canonical JSON by the
//! device's Ed25519 key) and the server's answer.
//!
//! The one-time and fallback keys are the account's own X25519 keys; their
//! Matrix key ids are the unpadded base64 of the account's 64-bit key id,
//! big-endian (for example `signed_curve25519:AAAAAAAAAAE`), so every id is
//! unique for the account's lifetime.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::device_keys::{
    CURVE25519, DeviceKeys, MEGOLM_V1, OLM_V1, OneTimeKey, SIGNED_CURVE25519, key_name,
};
use super::ids::{DeviceId, UserId};
use super::json::BoundedMap;
use super::signing::{ED25519, SignatureError, sign_json};
use crate::account::{Account, KeyId, SignedOneTimeKey};
use crate::consts::MAX_KEY_ALGORITHMS;
use crate::keys::base64_encode;

/// The body of `POST /_matrix/client/v3/keys/upload`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysUploadRequest {
    /// The device's keys, when they have not been published yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_keys: Option<DeviceKeys>,
    /// New one-time keys by name (`signed_curve25519:<key id>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub one_time_keys: BTreeMap<String, OneTimeKey>,
    /// A new fallback key by name, at most one per algorithm.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fallback_keys: BTreeMap<String, OneTimeKey>,
}

/// The answer to `/keys/upload`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysUploadResponse {
    /// Unclaimed one-time keys the server holds for this device, per
    /// algorithm (a missing algorithm counts zero).
    pub one_time_key_counts: BoundedMap<u64, MAX_KEY_ALGORITHMS>,
}

impl KeysUploadRequest {
    /// The body publishing what `account` has not published yet: its
    /// device keys when `with_device_keys`, its unpublished one-time keys
    /// and its unpublished fallback key. Once the server accepted it, call
    /// [`Account::mark_keys_as_published`] (and generate no keys in
    /// between, or they would be marked too).
    pub fn from_account(
        account: &Account,
        user_id: &UserId,
        device_id: &DeviceId,
        with_device_keys: bool,
    ) -> Result<Self, SignatureError> {
        let device_keys = if with_device_keys {
            Some(device_keys(account, user_id, device_id)?)
        } else {
            None
        };
        let signed = |keys: Vec<SignedOneTimeKey>| {
            keys.into_iter()
                .map(|k| {
                    let name = key_name(SIGNED_CURVE25519, &key_id_text(k.key_id));
                    let key = one_time_key(account, user_id, device_id, &k)?;
                    Ok((name, key))
                })
                .collect::<Result<BTreeMap<_, _>, SignatureError>>()
        };
        Ok(Self {
            device_keys,
            one_time_keys: signed(account.one_time_keys())?,
            fallback_keys: signed(account.unpublished_fallback_key().into_iter().collect())?,
        })
    }

    /// Whether there is nothing to upload.
    pub fn is_empty(&self) -> bool {
        self.device_keys.is_none() && self.one_time_keys.is_empty() && self.fallback_keys.is_empty()
    }
}

/// The Matrix key id of an account key: unpadded base64 of its id,
/// big-endian.
pub fn key_id_text(id: KeyId) -> String {
    base64_encode(&id.0.to_be_bytes())
}

/// `account`'s device keys for `user_id`/`device_id`, advertising Olm and
/// Megolm version 1, self-signed.
pub fn device_keys(
    account: &Account,
    user_id: &UserId,
    device_id: &DeviceId,
) -> Result<DeviceKeys, SignatureError> {
    let identity = account.identity_keys();
    let keys = DeviceKeys {
        user_id: user_id.clone(),
        device_id: device_id.clone(),
        algorithms: vec![OLM_V1.to_owned(), MEGOLM_V1.to_owned()],
        keys: BTreeMap::from([
            (
                key_name(CURVE25519, device_id.as_str()),
                identity.curve25519.to_base64(),
            ),
            (
                key_name(ED25519, device_id.as_str()),
                identity.ed25519.to_base64(),
            ),
        ]),
        signatures: BTreeMap::new(),
        unsigned: None,
    };
    self_signed(account, user_id, device_id, &keys)
}

fn one_time_key(
    account: &Account,
    user_id: &UserId,
    device_id: &DeviceId,
    key: &SignedOneTimeKey,
) -> Result<OneTimeKey, SignatureError> {
    let object = OneTimeKey {
        key: key.key,
        fallback: key.fallback,
        signatures: BTreeMap::new(),
    };
    self_signed(account, user_id, device_id, &object)
}

/// `value` signed by the device as `user_id` under `ed25519:<device_id>`,
/// through [`sign_json`].
fn self_signed<T: Serialize + DeserializeOwned>(
    account: &Account,
    user_id: &UserId,
    device_id: &DeviceId,
    value: &T,
) -> Result<T, SignatureError> {
    let Ok(Value::Object(mut object)) = serde_json::to_value(value) else {
        return Err(SignatureError::NotAnObject);
    };
    sign_json(
        &mut object,
        user_id.as_str(),
        &key_name(ED25519, device_id.as_str()),
        |bytes| account.sign_raw(bytes),
    )?;
    serde_json::from_value(Value::Object(object)).map_err(|_| SignatureError::NotAnObject)
}

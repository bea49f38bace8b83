//! The Matrix client layer: the JSON of the client-server API around
//! end-to-end encryption, so a roomseal device can talk to any Matrix
//! client.
//!
//! - [`canonical_json`], the one canonical JSON encoder, which everything
//!   signed goes through ([`sign_json`], [`verify_json`]);
//! - the key objects ([`DeviceKeys`], [`OneTimeKey`]) and the
//!   `/keys/upload` body built from an account ([`KeysUploadRequest`]);
//! - the [`DeviceTracker`], fed by `/keys/query` responses, which checks
//!   every device it is sent and never lets a device id change keys;
//! - one-time key claims checked against the tracked devices
//!   ([`receive_keys_claim`]).

mod canonical;
mod claim;
mod device_keys;
mod ids;
mod json;
mod query;
mod signing;
#[cfg(test)]
mod tests;
mod tracker;
mod upload;

pub use self::canonical::{CanonicalJsonError, MAX_SAFE_INTEGER, canonical_json};
pub use self::claim::{
    ClaimOutcome, ClaimedKey, OneTimeKeyError, RejectedKey, keys_claim_requests,
    receive_keys_claim, receive_keys_claim_json,
};
pub use self::device_keys::{
    CURVE25519, Device, DeviceKeys, DeviceKeysError, MEGOLM_V1, OLM_V1, OneTimeKey,
    SIGNED_CURVE25519, Signatures, key_name,
};
pub use self::ids::{DeviceId, IdError, RoomId, UserId};
pub use self::json::{BoundedList, BoundedMap, JsonError};
pub use self::query::{KeysClaimRequest, KeysClaimResponse, KeysQueryRequest, KeysQueryResponse};
pub use self::signing::{ED25519, SignatureError, sign_json, signed_bytes, verify_json};
pub use self::tracker::{DeviceTracker, KeysQuery, KeysQueryOutcome, RejectedDevice};
pub use self::upload::{KeysUploadRequest, KeysUploadResponse, device_keys, key_id_text};

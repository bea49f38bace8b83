//! Signing and verifying JSON objects (Matrix specification, appendix
//! "Signing JSON"): Ed25519 over the canonical JSON of the object without
//! its `signatures` and `unsigned` members, stored as unpadded base64 under
//! `signatures.<signer>.<algorithm>:<key id>`.
//!
//! Guarantees: both directions encode through the crate's one canonical JSON
//! function ([`canonical_json`](super::canonical_json)); verification is
//! strict Ed25519 ([`Ed25519PublicKey::verify`]); signing adds to existing
//! signatures and keeps `unsigned` untouched. Matrix signatures never collide
//! with the native protocol's: every native signature covers bytes that start
//! with a `roomseal/` context label, every Matrix one a canonical JSON object
//! that starts with `{`.

use serde_json::{Map, Value};
use thiserror::Error;

use super::canonical::{CanonicalJsonError, canonical_json_without};
use crate::keys::{Ed25519PublicKey, Ed25519Signature};

/// The signing algorithm of device keys, one-time keys and fallback keys.
pub const ED25519: &str = "ed25519";

/// The members a signature never covers.
const UNSIGNED_MEMBERS: [&str; 2] = ["signatures", "unsigned"];

/// Why a JSON object could not be signed or its signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The object has no canonical JSON encoding.
    #[error("no canonical JSON: {0}")]
    Canonical(#[from] CanonicalJsonError),
    /// The value to sign is not a JSON object.
    #[error("only JSON objects can be signed")]
    NotAnObject,
    /// `signatures`, or the signer's entry in it, is not a JSON object.
    #[error("signatures member is not an object")]
    SignaturesNotAnObject,
    /// There is no signature by this signer under this key id.
    #[error("no signature by this signer and key")]
    Missing,
    /// The signature is not a string of unpadded base64 for 64 bytes.
    #[error("malformed signature")]
    Malformed,
    /// The signature does not verify (strict Ed25519).
    #[error("signature does not verify")]
    Invalid,
}

/// The bytes a signature on `object` covers: its canonical JSON without
/// `signatures` and `unsigned`.
pub fn signed_bytes(object: &Map<String, Value>) -> Result<String, SignatureError> {
    Ok(canonical_json_without(object, &UNSIGNED_MEMBERS)?)
}

/// Signs `object` as `signer` (a user id or server name) with the key
/// called `key_id` (for example `ed25519:DEVICEID`), adding the signature
/// to `signatures.<signer>.<key_id>`. `sign` makes the raw Ed25519
/// signature over the bytes it is given.
pub fn sign_json(
    object: &mut Map<String, Value>,
    signer: &str,
    key_id: &str,
    sign: impl FnOnce(&[u8]) -> Ed25519Signature,
) -> Result<(), SignatureError> {
    let bytes = signed_bytes(object)?;
    let signature = sign(bytes.as_bytes()).to_base64();
    let signatures = object
        .entry("signatures")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or(SignatureError::SignaturesNotAnObject)?;
    signatures
        .entry(signer)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or(SignatureError::SignaturesNotAnObject)?
        .insert(key_id.to_owned(), Value::String(signature));
    Ok(())
}

/// Checks that `object` carries a valid signature by `signer` under
/// `key_id`, made with `key`.
pub fn verify_json(
    object: &Map<String, Value>,
    signer: &str,
    key_id: &str,
    key: &Ed25519PublicKey,
) -> Result<(), SignatureError> {
    let by_signer = match object.get("signatures") {
        None => return Err(SignatureError::Missing),
        Some(Value::Object(all)) => match all.get(signer) {
            None => return Err(SignatureError::Missing),
            Some(Value::Object(by_signer)) => by_signer,
            Some(_) => return Err(SignatureError::SignaturesNotAnObject),
        },
        Some(_) => return Err(SignatureError::SignaturesNotAnObject),
    };
    let signature = match by_signer.get(key_id) {
        None => return Err(SignatureError::Missing),
        Some(Value::String(text)) => {
            Ed25519Signature::from_base64(text).map_err(|_| SignatureError::Malformed)?
        }
        Some(_) => return Err(SignatureError::Malformed),
    };
    let bytes = signed_bytes(object)?;
    key.verify(bytes.as_bytes(), &signature)
        .map_err(|_| SignatureError::Invalid)
}

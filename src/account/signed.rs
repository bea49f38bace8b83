//! What a device publishes: its signed device-key bundle and its signed
//! one-time and fallback keys, as serde (JSON) objects, with verification.
//!
//! Unverified input has its own type ([`DeviceKeys`], [`SignedOneTimeKey`]);
//! only [`DeviceKeys::check_self_signature`] produces a [`SelfSignedDevice`],
//! which is what session creation requires. All signatures are strict Ed25519 over a
//! canonical binary encoding (PROTOCOL.md), never over JSON text.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::AccountError;
use crate::codec::Writer;
use crate::consts::MAX_ID_LEN;
use crate::crypto::label;
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature, IdentityKeys};

/// The protocol version string a device advertises for protocol version 1.
pub const PROTOCOL_V2: &str = "roomseal.v2";

/// Most protocol versions a bundle may list.
const MAX_PROTOCOLS: usize = 8;
/// Longest protocol version string.
const MAX_PROTOCOL_LEN: usize = 64;

/// The identifier an account gives each one-time and fallback key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub u64);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A one-time or fallback key with its id, signed by the device's Ed25519
/// key. Published to the server; claimed by peers to start sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOneTimeKey {
    /// The key's id within its account.
    pub key_id: KeyId,
    /// The X25519 public key.
    pub key: Curve25519PublicKey,
    /// Whether this is the account's fallback key (reusable until replaced)
    /// rather than a one-time key.
    #[serde(default)]
    pub fallback: bool,
    /// Ed25519 signature by the owning device over the canonical bytes.
    pub signature: Ed25519Signature,
}

impl SignedOneTimeKey {
    /// The bytes the signature covers: a label that says one-time or
    /// fallback, the key id (big-endian u64) and the key.
    pub(crate) fn signed_bytes(
        key_id: KeyId,
        key: &Curve25519PublicKey,
        fallback: bool,
    ) -> Vec<u8> {
        let context = if fallback {
            label::FALLBACK_KEY
        } else {
            label::ONE_TIME_KEY
        };
        let mut w = Writer::with_capacity(context.len() + 40);
        w.bytes(context).u64(key_id.0).bytes(key.as_bytes());
        w.into_vec()
    }

    /// Verifies the signature against the owning device's Ed25519 key.
    pub fn verify(&self, signer: &Ed25519PublicKey) -> Result<(), AccountError> {
        signer
            .verify(
                &Self::signed_bytes(self.key_id, &self.key, self.fallback),
                &self.signature,
            )
            .map_err(|_| AccountError::BadOneTimeKeySignature)
    }
}

/// A device's self-signed key bundle: user and device ids, both identity
/// keys and the protocol versions it speaks. Unchecked as received; call
/// [`DeviceKeys::check_self_signature`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKeys {
    /// The owning user's id.
    pub user_id: String,
    /// The device's id.
    pub device_id: String,
    /// The device's identity keys.
    pub keys: IdentityKeys,
    /// Protocol versions the device speaks, for example `["roomseal.v2"]`.
    pub protocols: Vec<String>,
    /// Ed25519 signature by `keys.ed25519` over the canonical bytes.
    pub signature: Ed25519Signature,
}

impl DeviceKeys {
    /// The canonical bytes the signature covers (PROTOCOL.md).
    pub(crate) fn signed_bytes(
        user_id: &str,
        device_id: &str,
        keys: &IdentityKeys,
        protocols: &[String],
    ) -> Result<Vec<u8>, AccountError> {
        check_id(user_id, "user id")?;
        check_id(device_id, "device id")?;
        if protocols.len() > MAX_PROTOCOLS {
            return Err(AccountError::InvalidDeviceKeys(
                "too many protocol versions",
            ));
        }
        let mut w = Writer::with_capacity(200);
        w.bytes(label::DEVICE_KEYS)
            .short_bytes(user_id.as_bytes())
            .short_bytes(device_id.as_bytes())
            .bytes(&keys.to_bytes())
            .count(protocols.len());
        for protocol in protocols {
            if protocol.len() > MAX_PROTOCOL_LEN {
                return Err(AccountError::InvalidDeviceKeys("protocol version too long"));
            }
            w.short_bytes(protocol.as_bytes());
        }
        Ok(w.into_vec())
    }

    /// Checks the ids and the self-signature, yielding the device identity
    /// that sessions may be started with.
    ///
    /// This proves only that the bundle's keys belong together (it is
    /// signed by its own Ed25519 key). It does not prove that the device
    /// belongs to the user it names: any device can sign a bundle naming any
    /// user id. That binding comes from whoever served the bundle (the
    /// server's key directory) and, for trust, from the app's own
    /// verification (cross-signing, a safety-number check).
    pub fn check_self_signature(&self) -> Result<SelfSignedDevice, AccountError> {
        let bytes =
            Self::signed_bytes(&self.user_id, &self.device_id, &self.keys, &self.protocols)?;
        self.keys
            .ed25519
            .verify(&bytes, &self.signature)
            .map_err(|_| AccountError::BadDeviceKeysSignature)?;
        if !self.protocols.iter().any(|p| p == PROTOCOL_V2) {
            return Err(AccountError::InvalidDeviceKeys(
                "device does not speak roomseal.v2",
            ));
        }
        Ok(SelfSignedDevice {
            user_id: self.user_id.clone(),
            device_id: self.device_id.clone(),
            keys: self.keys,
        })
    }
}

fn check_id(id: &str, what: &'static str) -> Result<(), AccountError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        Err(AccountError::InvalidDeviceKeys(what))
    } else {
        Ok(())
    }
}

/// A device whose key bundle's self-signature checks out: the only input
/// from which an outbound session can be created.
///
/// The name says exactly what was checked: the bundle is signed by its own
/// Ed25519 key, so its keys and ids belong together. Nothing here says the
/// device belongs to the user id it names, or that anyone verified it:
/// that is the app's trust decision (cross-signing, a safety-number check).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SelfSignedDevice {
    user_id: String,
    device_id: String,
    keys: IdentityKeys,
}

impl SelfSignedDevice {
    /// The owning user's id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The device's id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The device's identity keys.
    pub fn identity_keys(&self) -> IdentityKeys {
        self.keys
    }
}

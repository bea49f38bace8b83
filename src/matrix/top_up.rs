//! Keeping the server stocked with this device's keys: from the one-time
//! key count and the unused fallback key types a sync (or an upload
//! response) reports, what to generate before the next `/keys/upload`.
//!
//! The target is [`MATRIX_ONE_TIME_KEY_TARGET`] unclaimed one-time keys on
//! the server, half of what the account stores, so keys that were claimed
//! but whose first message has not arrived still fit in the account. A
//! fallback key is made when the account has none, or when the server
//! reports that the published one was handed out (its algorithm is missing
//! from the unused types) and no replacement is waiting to be uploaded.

use super::device_keys::SIGNED_CURVE25519;
use crate::account::{Account, OneTimeKeysGenerated};
use crate::consts::MATRIX_ONE_TIME_KEY_TARGET;

/// What to generate so the server holds enough keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyTopUp {
    /// One-time keys to generate.
    pub one_time_keys: usize,
    /// Whether to generate a new fallback key (the old one stays usable
    /// for sessions already started from it: the account keeps two).
    pub fallback_key: bool,
}

impl KeyTopUp {
    /// The decision for `account`, given `server_count` unclaimed
    /// `signed_curve25519` keys on the server and the server's
    /// `unused_fallback_key_types` (`None` if it did not report them).
    ///
    /// Decide only while no upload is in flight: keys generated now are
    /// marked published when that upload's answer arrives.
    pub fn decide(
        account: &Account,
        server_count: u64,
        unused_fallback_key_types: Option<&[String]>,
    ) -> Self {
        let waiting = account.one_time_keys().len();
        let held = usize::try_from(server_count)
            .unwrap_or(usize::MAX)
            .saturating_add(waiting);
        let fallback_used = unused_fallback_key_types
            .is_some_and(|types| !types.iter().any(|t| t == SIGNED_CURVE25519));
        let fallback_key = account.fallback_key().is_none()
            || (fallback_used && account.unpublished_fallback_key().is_none());
        Self {
            one_time_keys: MATRIX_ONE_TIME_KEY_TARGET.saturating_sub(held),
            fallback_key,
        }
    }

    /// Whether anything must be generated.
    pub fn is_needed(&self) -> bool {
        self.one_time_keys > 0 || self.fallback_key
    }

    /// Generates the keys in `account`; they are then in the next
    /// [`super::KeysUploadRequest::from_account`].
    pub fn apply(&self, account: &mut Account, now_ms: u64) -> OneTimeKeysGenerated {
        let generated = account.generate_one_time_keys(self.one_time_keys);
        account.forget_expired_fallback_key(now_ms);
        if self.fallback_key {
            account.rotate_fallback_key(now_ms);
        }
        generated
    }
}

//! When a room's outbound group session is replaced and why, and the clock
//! that decides its age (injectable for tests).
//!
//! The clock is not trusted to only move forward: a session whose creation
//! time lies more than [`CLOCK_SKEW_TOLERANCE_MS`] in the future (the clock
//! was ahead when it was made, or has since gone back) is expired, so an
//! unreliable clock can shorten a session's life but never extend it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::consts::CLOCK_SKEW_TOLERANCE_MS;

/// Why a room key must be (or was) replaced before the next event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RotationReason {
    /// The room has no room key yet: share one first.
    #[error("the room key has not been shared yet")]
    NotShared,
    /// The session sent the policy's maximum number of messages.
    #[error("the room key has sent its maximum number of messages")]
    MessageLimit,
    /// The session reached the policy's maximum age.
    #[error("the room key reached its maximum age")]
    AgeLimit,
    /// The clock is more than the tolerance behind the session's creation
    /// time (it went back, or was ahead when the session was made).
    #[error("the clock went back past the room key's creation time")]
    ClockWentBack,
    /// A device that held the key is no longer among the recipients.
    #[error("a device that held the room key left")]
    DeviceLeft,
    /// A device that held the key was forgotten (`Endpoint::forget_peer`).
    #[error("a device that held the room key was forgotten")]
    DeviceForgotten,
    /// The app asked for a new key (`Endpoint::rotate_room_key`).
    #[error("a new room key was requested")]
    Requested,
    /// The state was restored from an older copy
    /// (`Endpoint::recover_from_rollback`).
    #[error("the state was rolled back")]
    Rollback,
}

impl RotationReason {
    /// A stable code for each reason (pickles, bindings).
    pub(crate) fn code(self) -> u8 {
        match self {
            RotationReason::NotShared => 0,
            RotationReason::MessageLimit => 1,
            RotationReason::AgeLimit => 2,
            RotationReason::ClockWentBack => 3,
            RotationReason::DeviceLeft => 4,
            RotationReason::DeviceForgotten => 5,
            RotationReason::Requested => 6,
            RotationReason::Rollback => 7,
        }
    }

    /// The reason of a code, if it is one.
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        [
            RotationReason::NotShared,
            RotationReason::MessageLimit,
            RotationReason::AgeLimit,
            RotationReason::ClockWentBack,
            RotationReason::DeviceLeft,
            RotationReason::DeviceForgotten,
            RotationReason::Requested,
            RotationReason::Rollback,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

/// Rotate a room's group session after this many messages or this age,
/// whichever comes first. It is also replaced whenever a device leaves the
/// set it was shared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Messages per session (default 100, as deployed Matrix clients use).
    pub max_messages: u32,
    /// Session lifetime (default one week).
    pub max_age: Duration,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            max_messages: 100,
            max_age: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

impl RotationPolicy {
    /// Whether a session created at `created_ms` that has sent `sent`
    /// messages must be replaced at `now_ms`.
    pub fn is_expired(&self, sent: u32, created_ms: u64, now_ms: u64) -> bool {
        self.expiry(sent, created_ms, now_ms).is_some()
    }

    /// Why a session created at `created_ms` that has sent `sent` messages
    /// must be replaced at `now_ms`, if it must.
    pub fn expiry(&self, sent: u32, created_ms: u64, now_ms: u64) -> Option<RotationReason> {
        if sent >= self.max_messages {
            return Some(RotationReason::MessageLimit);
        }
        if now_ms.saturating_add(CLOCK_SKEW_TOLERANCE_MS) < created_ms {
            return Some(RotationReason::ClockWentBack);
        }
        let age = Duration::from_millis(now_ms.saturating_sub(created_ms));
        (age >= self.max_age).then_some(RotationReason::AgeLimit)
    }

    /// The policy as it is pickled: messages, then the age in milliseconds.
    pub(crate) fn write(&self, w: &mut crate::codec::Writer) {
        w.u32(self.max_messages)
            .u64(u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX));
    }

    pub(crate) fn read(
        r: &mut crate::codec::Reader<'_>,
    ) -> Result<Self, crate::codec::DecodeError> {
        Ok(Self {
            max_messages: r.u32("policy messages")?,
            max_age: Duration::from_millis(r.u64("policy age")?),
        })
    }
}

/// A source of the current time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in milliseconds since 1970-01-01 UTC.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_expiry() {
        let p = RotationPolicy::default();
        assert_eq!(p.max_messages, 100);
        assert!(!p.is_expired(99, 0, 1000));
        assert!(p.is_expired(100, 0, 1000));
        let week = 7 * 24 * 3600 * 1000;
        assert!(!p.is_expired(0, 5, week + 4));
        assert!(p.is_expired(0, 5, week + 5));
        // A clock that goes back within the tolerance expires nothing...
        let t = 1_000_000_000;
        assert_eq!(p.expiry(0, t, t - CLOCK_SKEW_TOLERANCE_MS), None);
        // ...past it, the session is expired: a clock that was ahead when
        // the session was made (or went back since) cannot extend its life.
        assert_eq!(
            p.expiry(0, t, t - CLOCK_SKEW_TOLERANCE_MS - 1),
            Some(RotationReason::ClockWentBack)
        );
        assert_eq!(p.expiry(100, t, t), Some(RotationReason::MessageLimit));
        assert_eq!(p.expiry(0, t, t + week), Some(RotationReason::AgeLimit));
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
        for code in 0..=8 {
            if let Some(reason) = RotationReason::from_code(code) {
                assert_eq!(reason.code(), code);
            } else {
                assert_eq!(code, 8);
            }
        }
    }
}

//! When a room's outbound group session is replaced, and the clock that
//! decides its age (injectable for tests).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
        let age = Duration::from_millis(now_ms.saturating_sub(created_ms));
        sent >= self.max_messages || age >= self.max_age
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
        // A clock that goes backwards does not expire anything.
        assert!(!p.is_expired(0, 10_000, 0));
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}

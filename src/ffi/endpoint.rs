//! [`Endpoint`]: the native endpoint, kept in memory; the app saves it as
//! a pickle (persist before sending, one writer at a time: PROTOCOL.md
//! 8.4). Its operations are in `operations.rs`. Also the benchmark's native round trip, and the test-only
//! panic probes.

use std::sync::Arc;
use std::time::Duration;

use super::{Guarded, RoomsealError, restore};
use crate::room::{EncryptedEvent, Endpoint as CoreEndpoint, RotationPolicy};

/// What a poisoned endpoint's refusals tell the app to do.
const RECOVERY: &str = "restore it from a pickle";

/// One device's end-to-end encryption state, in memory. Safe to share
/// between threads.
#[derive(Debug, uniffi::Object)]
pub struct Endpoint {
    pub(crate) state: Guarded<CoreEndpoint>,
}

impl Endpoint {
    fn wrap(endpoint: CoreEndpoint) -> Arc<Self> {
        Arc::new(Self {
            state: Guarded::new(endpoint, RECOVERY),
        })
    }
}

#[uniffi::export]
impl Endpoint {
    /// A new device with a fresh identity.
    #[uniffi::constructor]
    pub fn new(user_id: String, device_id: String) -> Result<Arc<Self>, RoomsealError> {
        Ok(Self::wrap(CoreEndpoint::new(&user_id, &device_id)?))
    }

    /// Restores a device from its pickle under a 32-byte key (with its
    /// rotation policy).
    #[uniffi::constructor]
    pub fn from_pickle(pickle: String, pickle_key: Vec<u8>) -> Result<Arc<Self>, RoomsealError> {
        Ok(Self::wrap(restore(&pickle, pickle_key, None)?))
    }

    /// Restores a device from its pickle, refusing one older than
    /// `newest_generation`, the newest generation the app recorded (a
    /// rollback: `Pickle` error).
    #[uniffi::constructor]
    pub fn from_pickle_no_older_than(
        pickle: String,
        pickle_key: Vec<u8>,
        newest_generation: u64,
    ) -> Result<Arc<Self>, RoomsealError> {
        Ok(Self::wrap(restore(
            &pickle,
            pickle_key,
            Some(newest_generation),
        )?))
    }
}

/// Diagnostics: nanoseconds per encrypt-then-decrypt of a small event,
/// measured natively in Rust over `iterations` rounds (to compare with the
/// same operation called through the bindings).
#[uniffi::export]
pub fn native_event_round_trip_ns(iterations: u32) -> Result<f64, RoomsealError> {
    let mut alice = CoreEndpoint::new("@alice:bench", "A")?;
    let mut bob = CoreEndpoint::new("@bob:bench", "B")?;
    let mut bob_keys = bob.keys_to_publish(1);
    bob.mark_keys_as_published(&bob_keys);
    let otk = bob_keys
        .one_time_keys
        .pop()
        .ok_or_else(|| RoomsealError::Internal("no key".into()))?;
    let bob_device = alice.establish_session(&bob_keys.device_keys, &otk)?;
    let room = "!bench:x";
    alice.set_rotation_policy(RotationPolicy {
        max_messages: u32::MAX,
        max_age: Duration::MAX,
    });
    let outcome = alice.share_room_key(room, &[bob_device])?;
    for m in &outcome.messages {
        bob.receive_device_message(alice.user_id(), &m.sender_key, &m.message)?;
    }
    let content = serde_json::json!({"body": "hello from the benchmark"});
    let start = std::time::Instant::now();
    for i in 0..iterations {
        let envelope = alice.encrypt_event(room, "m.room.message", &content)?;
        // The bindings pass JSON text both ways; do the same here.
        let text = envelope.to_json();
        let parsed = EncryptedEvent::from_json(&text)?;
        let event = bob.decrypt_event(room, &format!("$e{i}"), &parsed)?;
        std::hint::black_box(serde_json::to_string(&event.content).ok());
    }
    let elapsed = start.elapsed().as_nanos() as f64;
    Ok(elapsed / f64::from(iterations.max(1)))
}

/// Test-only probes (feature `ffi-test-probes`, never in an app build): calls
/// that fail the way an internal bug would, so the binding test suite can
/// check that a Rust panic arrives as an exception, not an abort, and that an
/// object whose state lock it poisoned refuses further calls with
/// [`RoomsealError::Internal`].
#[cfg(feature = "ffi-test-probes")]
#[uniffi::export]
impl Endpoint {
    /// Panics while holding this endpoint's state lock.
    #[allow(clippy::panic)]
    pub fn test_probe_panic_while_locked(&self) -> Result<(), RoomsealError> {
        let _guard = self.state.lock()?;
        panic!("test probe: deliberate panic while the state lock is held");
    }
}

/// Test-only probe (feature `ffi-test-probes`): panics outside any object.
#[cfg(feature = "ffi-test-probes")]
#[uniffi::export]
#[allow(clippy::panic)]
pub fn test_probe_panic() {
    panic!("test probe: deliberate panic");
}

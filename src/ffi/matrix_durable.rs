//! [`DurableMatrixMachine`]: the Matrix client layer kept in a SQLite store
//! at a path (features `ffi` and `sqlite`), a [`DurableMatrixEndpoint`] as
//! one uniffi object. Every operation commits what it changed before it
//! returns (a room event's ciphertext only once the advanced Megolm ratchet
//! is durable, a decrypted event only once its replay record is, a request
//! only once the keys it publishes are), so a crash never rolls a ratchet
//! back and no pickle needs saving; several processes may open the same
//! file.
//!
//! Its operations are the in-memory
//! [`MatrixMachine`](super::MatrixMachine)'s (`matrix_operations.rs`);
//! `create`, `open`, `migrate_pickle` (from a `MatrixMachine` pickle),
//! `store_generation` and `reload` are written once with the native durable
//! endpoint's (`durable.rs`). Requests that were in flight when the store
//! was last closed are not stored: `outgoing_requests` asks again.
//!
//! Errors, on top of the machine's: a commit that failed is a `Store`
//! error and changed nothing (the machine is back where it was before the
//! call); a commit refused because another handle wrote first is a
//! `StaleStore` error, after which the machine holds the newest state and
//! the call can be made again.

use std::sync::Arc;

use super::durable::RECOVERY;
use super::matrix::new_device;
use super::matrix_operations::{MatrixState, Requests};
use super::{Guarded, RoomsealError};
use crate::matrix::{DurableError, DurableMatrixEndpoint, MatrixEndpoint};
use crate::pickle::PickleKey;
use crate::store::SqliteStore;

impl MatrixState for DurableMatrixEndpoint {
    fn machine(&self) -> &MatrixEndpoint {
        self.endpoint()
    }

    fn run<T, E>(
        &mut self,
        requests: Requests,
        op: impl FnOnce(&mut MatrixEndpoint) -> Result<T, E>,
    ) -> Result<T, DurableError<E>> {
        match requests {
            Requests::Kept => self.transact(op),
            Requests::Changed => self.transact_requests(op),
        }
    }
}

/// One Matrix device's end-to-end encryption (Olm sessions, Megolm room
/// keys, device tracking) in a SQLite file, written before each call
/// returns. Safe to share between threads; drop it (`close` in Kotlin,
/// `del` in Python) to close the file.
///
/// A `Store` or `StaleStore` error means the call changed nothing: on a
/// stale store (`StaleStore`: another process or handle wrote first) the
/// machine has reloaded the newest state and the call can be made again.
#[derive(Debug, uniffi::Object)]
pub struct DurableMatrixMachine {
    pub(crate) state: Guarded<DurableMatrixEndpoint>,
}

impl DurableMatrixMachine {
    pub(super) fn wrap(endpoint: DurableMatrixEndpoint) -> Arc<Self> {
        Arc::new(Self {
            state: Guarded::new(endpoint, RECOVERY),
        })
    }
}

/// Saves a new device of `user_id` (`@name:server`) with id `device_id`
/// and a fresh identity in `store` (`DurableMatrixMachine::create`).
pub(super) fn create(
    store: SqliteStore,
    key: &PickleKey,
    user_id: &str,
    device_id: &str,
) -> Result<DurableMatrixEndpoint, RoomsealError> {
    let device = new_device(user_id, device_id)?;
    Ok(DurableMatrixEndpoint::from_endpoint(device, store, key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store path in a fresh temporary directory.
    fn path() -> String {
        let path = crate::store::tempdir().join("machine.sqlite3");
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn a_stale_handle_is_refused_as_stale_then_goes_on() {
        let path = path();
        let key = vec![7u8; 32];
        let first =
            DurableMatrixMachine::create(path.clone(), key.clone(), "@a:x".into(), "A".into())
                .unwrap();
        let second = DurableMatrixMachine::open(path.clone(), key.clone()).unwrap();
        assert_eq!(first.identity().unwrap(), second.identity().unwrap());
        let before = first.store_generation().unwrap();
        assert!(!first.outgoing_requests().unwrap().is_empty());
        assert!(first.store_generation().unwrap() > before);
        let stale = second.outgoing_requests().unwrap_err();
        assert!(matches!(stale, RoomsealError::StaleStore(_)), "{stale:?}");
        assert_eq!(
            second.store_generation().unwrap(),
            first.store_generation().unwrap()
        );
        second.reload().unwrap();
        assert!(!second.outgoing_requests().unwrap().is_empty());
    }

    #[test]
    fn a_wrong_key_an_occupied_store_and_a_bad_pickle_are_typed() {
        let path = path();
        let key = vec![7u8; 32];
        let secret = "SECRETSECRET";
        drop(
            DurableMatrixMachine::create(path.clone(), key.clone(), "@a:x".into(), "A".into())
                .unwrap(),
        );
        let cases = [
            DurableMatrixMachine::open(path.clone(), vec![8u8; 32]).unwrap_err(),
            DurableMatrixMachine::create(path.clone(), key.clone(), "@a:x".into(), "B".into())
                .unwrap_err(),
        ];
        for error in cases {
            assert!(matches!(error, RoomsealError::Store(_)), "{error:?}");
        }
        let empty = self::path();
        assert!(matches!(
            DurableMatrixMachine::migrate_pickle(secret.into(), key.clone(), empty.clone()),
            Err(RoomsealError::Pickle(e)) if !e.contains(secret)
        ));
        assert!(matches!(
            DurableMatrixMachine::open(empty, key),
            Err(RoomsealError::Store(_))
        ));
    }
}

//! [`DurableEndpoint`]: the endpoint kept in a SQLite store at a path
//! (features `ffi` and `sqlite`). Every operation commits what it changed
//! before it returns, so a crash never rolls a ratchet back, and several
//! processes may open the same file. Its operations are the same as the
//! in-memory endpoint's (`operations.rs`).

use std::sync::Arc;

use super::operations::State;
use super::{Guarded, RoomsealError, pickle_key};
use crate::room::{DurableEndpoint as CoreDurable, Endpoint as CoreEndpoint, RoomError};
use crate::store::SqliteStore;

/// What a poisoned durable endpoint's refusals tell the app to do.
const RECOVERY: &str = "open it again from its store";

impl State for CoreDurable {
    fn endpoint(&self) -> &CoreEndpoint {
        CoreDurable::endpoint(self)
    }

    fn run<T>(
        &mut self,
        op: impl FnOnce(&mut CoreEndpoint) -> Result<T, RoomError>,
    ) -> Result<T, RoomError> {
        self.transact(op)
    }
}

/// One device's end-to-end encryption state in a SQLite file, written
/// before each call returns. Safe to share between threads.
///
/// A `Store` error means the call changed nothing: on a stale store
/// (another process wrote first) the endpoint has reloaded the newest
/// state and the call can be made again.
#[derive(Debug, uniffi::Object)]
pub struct DurableEndpoint {
    pub(crate) state: Guarded<CoreDurable>,
}

impl DurableEndpoint {
    fn wrap(endpoint: CoreDurable) -> Arc<Self> {
        Arc::new(Self {
            state: Guarded::new(endpoint, RECOVERY),
        })
    }
}

/// Opens (creating if needed) the SQLite store at `path`.
fn store(path: &str) -> Result<SqliteStore, RoomsealError> {
    SqliteStore::open(path).map_err(|e| RoomError::from(e).into())
}

#[uniffi::export]
impl DurableEndpoint {
    /// A new device with a fresh identity, saved in the store at `path`
    /// (created if needed; it must hold no endpoint yet). Records are
    /// sealed under subkeys of the 32-byte `pickle_key`.
    #[uniffi::constructor]
    pub fn create(
        path: String,
        pickle_key: Vec<u8>,
        user_id: String,
        device_id: String,
    ) -> Result<Arc<Self>, RoomsealError> {
        let key = self::pickle_key(pickle_key)?;
        let endpoint = CoreDurable::create(store(&path)?, &key, &user_id, &device_id)?;
        Ok(Self::wrap(endpoint))
    }

    /// Opens the endpoint kept in the store at `path` under the same
    /// 32-byte key it was created with.
    #[uniffi::constructor]
    pub fn open(path: String, pickle_key: Vec<u8>) -> Result<Arc<Self>, RoomsealError> {
        let key = self::pickle_key(pickle_key)?;
        Ok(Self::wrap(CoreDurable::open(store(&path)?, &key)?))
    }

    /// Moves an endpoint kept as a pickle into the store at `path` (which
    /// must hold no endpoint), sealed under the same key. Stop writing the
    /// pickle once this succeeds.
    #[uniffi::constructor]
    pub fn migrate_pickle(
        pickle: String,
        pickle_key: Vec<u8>,
        path: String,
    ) -> Result<Arc<Self>, RoomsealError> {
        let key = self::pickle_key(pickle_key)?;
        let endpoint = CoreDurable::migrate_pickle(&pickle, &key, store(&path)?)?;
        Ok(Self::wrap(endpoint))
    }

    /// The store's generation this endpoint last loaded or committed (it
    /// grows by one per committed operation).
    pub fn store_generation(&self) -> Result<u64, RoomsealError> {
        Ok(self.state.lock()?.store_generation())
    }

    /// Reloads every record from the store (to see what another process
    /// wrote, or to make the endpoint usable after a failed commit left it
    /// refusing calls).
    pub fn reload(&self) -> Result<(), RoomsealError> {
        Ok(self.state.lock()?.reload()?)
    }
}

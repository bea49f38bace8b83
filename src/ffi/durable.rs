//! [`DurableEndpoint`]: the endpoint kept in a SQLite store at a path
//! (features `ffi` and `sqlite`). Every operation commits what it changed
//! before it returns, so a crash never rolls a ratchet back, and several
//! processes may open the same file. Its operations are the same as the
//! in-memory endpoint's (`operations.rs`). Also what both durable objects
//! share (this one and `DurableMatrixMachine`): opening a store for a
//! constructor, `create`, `open`, `migrate_pickle` and the store methods.

use std::sync::Arc;

use super::matrix_durable::{self, DurableMatrixMachine};
use super::operations::State;
use super::{Guarded, RoomsealError, pickle_key};
use crate::matrix::DurableMatrixEndpoint;
use crate::pickle::PickleKey;
use crate::room::{DurableEndpoint as CoreDurable, Endpoint as CoreEndpoint, RoomError};
use crate::store::SqliteStore;

/// What a poisoned durable object's refusals tell the app to do.
pub(super) const RECOVERY: &str = "open it again from its store";

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
/// A `Store` or `StaleStore` error means the call changed nothing: on a
/// stale store (`StaleStore`: another process wrote first) the endpoint
/// has reloaded the newest state and the call can be made again.
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

/// Opens (creating if needed) the SQLite store at `path` and takes the
/// 32-byte key (the copy the bindings made of it wiped once used), for a
/// constructor: `open` builds the durable state from them. A malformed key
/// is refused before the file is touched.
pub(super) fn with_store<T, E>(
    path: &str,
    pickle_key: Vec<u8>,
    open: impl FnOnce(SqliteStore, &PickleKey) -> Result<T, E>,
) -> Result<T, RoomsealError>
where
    RoomsealError: From<E>,
{
    let key = self::pickle_key(pickle_key)?;
    let store = SqliteStore::open(path)?;
    Ok(open(store, &key)?)
}

/// The exported methods every durable object has, given its durable state
/// type (`$core`, with `open`, `migrate_pickle`, `store_generation` and
/// `reload`) and the function that saves a new device in a store
/// (`$create`): a new device, opening its store, migrating a pickle of the
/// in-memory object, and the store methods.
macro_rules! durable_methods {
    ($object:ident, $core:ty, $create:path) => {
        #[uniffi::export]
        impl $object {
            /// A new device of `user_id` with id `device_id` and a fresh
            /// identity, saved in the store at `path` (created if needed; it
            /// must hold no device yet). Records are sealed under subkeys of
            /// the 32-byte `pickle_key`.
            #[uniffi::constructor]
            pub fn create(
                path: String,
                pickle_key: Vec<u8>,
                user_id: String,
                device_id: String,
            ) -> Result<Arc<Self>, RoomsealError> {
                with_store(&path, pickle_key, |store, key| {
                    $create(store, key, &user_id, &device_id)
                })
                .map(Self::wrap)
            }

            /// Opens the device kept in the store at `path` under the same
            /// 32-byte key it was created with (another key is a `Store`
            /// error).
            #[uniffi::constructor]
            pub fn open(path: String, pickle_key: Vec<u8>) -> Result<Arc<Self>, RoomsealError> {
                with_store(&path, pickle_key, <$core>::open).map(Self::wrap)
            }

            /// Moves a device kept as a pickle of the in-memory object into
            /// the store at `path` (which must hold no device), sealed under
            /// the same key. Stop writing the pickle once this succeeds.
            #[uniffi::constructor]
            pub fn migrate_pickle(
                pickle: String,
                pickle_key: Vec<u8>,
                path: String,
            ) -> Result<Arc<Self>, RoomsealError> {
                with_store(&path, pickle_key, |store, key| {
                    <$core>::migrate_pickle(&pickle, key, store)
                })
                .map(Self::wrap)
            }

            /// The store's generation this object last loaded or committed
            /// (it grows by one per operation that changed something).
            pub fn store_generation(&self) -> Result<u64, RoomsealError> {
                Ok(self.state.lock()?.store_generation())
            }

            /// Reloads every record from the store (to see what another
            /// process wrote, or to make the object usable after a failed
            /// commit left it refusing calls).
            pub fn reload(&self) -> Result<(), RoomsealError> {
                Ok(self.state.lock()?.reload()?)
            }
        }
    };
}

durable_methods!(DurableEndpoint, CoreDurable, CoreDurable::create);
durable_methods!(
    DurableMatrixMachine,
    DurableMatrixEndpoint,
    matrix_durable::create
);

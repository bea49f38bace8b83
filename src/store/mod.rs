//! Durable, crash-safe state: one sealed record per object, committed in
//! one transaction per operation, behind a small [`Store`] trait with an
//! in-memory backend ([`MemoryStore`]) and a SQLite one (`SqliteStore`,
//! feature `sqlite`).
//!
//! # Pickle or store?
//!
//! - A **pickle** (`Endpoint::pickle`, `MatrixEndpoint::pickle`) is the whole endpoint in one
//!   encrypted string. Its cost grows with everything the endpoint holds
//!   (about 0.6 KB per peer and 0.45 KB per room key), so it suits export,
//!   backup, migration and small apps that save rarely; the app must follow
//!   the single-writer rule (PROTOCOL.md 8.4) by hand: save before releasing
//!   what an operation produced, and never let two processes write.
//! - A **store** ([`crate::DurableEndpoint`], and for the Matrix layer
//!   [`crate::matrix::DurableMatrixEndpoint`]) writes, before each operation
//!   returns, exactly the records that operation changed, in one
//!   transaction: the cost per operation does not grow with what is held, a
//!   crash can never roll a ratchet back or bring a consumed key back, and
//!   two processes on one store cannot overwrite each other (the store's
//!   generation is the cross-process lock: a writer holding stale state
//!   gets [`StoreError::Stale`] and reloads). It replaces the single-writer
//!   rule.
//!
//! # Records
//!
//! A record is a [`RecordKey`] (a kind byte and a 32-byte id) and a sealed
//! value. The id is a keyed hash of the record's natural id, and the value
//! is sealed with AES-256-GCM under a subkey of the app's pickle key, bound
//! to its slot (see PROTOCOL.md, "Durable store"). A backend sees only
//! kinds, opaque ids and ciphertext.
//!
//! # The contract of a backend
//!
//! [`Store::commit`] applies a batch of puts and deletes atomically and
//! durably, only if the store's generation is still the one the caller
//! names, and bumps it by one; otherwise it changes nothing. A failure of
//! any kind leaves the store as it was.

mod error;
#[cfg(test)]
pub(crate) mod faulty;
mod memory;
mod seal;
#[cfg(feature = "sqlite")]
mod sqlite;
mod write_through;

pub use self::error::StoreError;
pub use self::memory::MemoryStore;
pub(crate) use self::seal::StoreKeys;
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteStore;
#[cfg(all(test, feature = "sqlite"))]
pub(crate) use self::sqlite::tempdir;
pub(crate) use self::write_through::{RecordName, Recorded, WriteThrough};

/// The version of the record layout and of the backends' schema. Part of
/// every record's associated data.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The slot of one record: its kind and its 32-byte id (a keyed hash of its
/// natural id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    /// The kind of object (PROTOCOL.md, "Durable store", lists them).
    pub kind: u8,
    /// The record's id.
    pub id: [u8; 32],
}

/// One change of a commit: put `value` in the slot, or delete the slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The slot.
    pub key: RecordKey,
    /// The sealed value to store, or `None` to delete the record.
    pub value: Option<Vec<u8>>,
}

/// Everything a store holds, as read in one consistent snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The store's generation (0 for a new store).
    pub generation: u64,
    /// Every record.
    pub records: Vec<(RecordKey, Vec<u8>)>,
}

/// The values [`Store::read`] returns, one per key asked for (`None` for an
/// absent record).
pub type RecordValues = Vec<Option<Vec<u8>>>;

/// A durable, transactional record store.
///
/// Values are sealed before they reach the store; a backend never sees a
/// secret. Every method must leave the store unchanged when it fails.
pub trait Store: Send {
    /// Every record and the generation, read consistently.
    fn load(&mut self) -> Result<Loaded, StoreError>;

    /// The values of `keys` (`None` for an absent record) and the
    /// generation they were read at, read consistently.
    fn read(&mut self, keys: &[RecordKey]) -> Result<(u64, RecordValues), StoreError>;

    /// Applies `changes` atomically and durably if the store's generation is
    /// `expected`, and returns the new generation (`expected + 1`); returns
    /// [`StoreError::Stale`] and changes nothing otherwise. When it returns
    /// `Ok`, the changes survive a crash of the process or the machine.
    fn commit(&mut self, expected: u64, changes: &[Change]) -> Result<u64, StoreError>;
}

impl<S: Store + ?Sized> Store for Box<S> {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        (**self).load()
    }

    fn read(&mut self, keys: &[RecordKey]) -> Result<(u64, RecordValues), StoreError> {
        (**self).read(keys)
    }

    fn commit(&mut self, expected: u64, changes: &[Change]) -> Result<u64, StoreError> {
        (**self).commit(expected, changes)
    }
}

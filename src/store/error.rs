//! [`StoreError`]: why a durable store could not load or commit.
//!
//! Errors carry no secrets and no text from the backend: a backend failure
//! keeps only its numeric code.

use thiserror::Error;

/// Why a store operation failed. A failed commit changed nothing in the
/// store; the endpoint that tried it is back at its state before the
/// operation (or refuses further operations with [`StoreError::Poisoned`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StoreError {
    /// Another process (or another handle on the same store) committed
    /// since this one last loaded: its state is stale. Nothing was written;
    /// the endpoint reloaded the newest state, so the operation can be
    /// tried again.
    #[error("the store was changed by another writer (generation {found}, expected {expected})")]
    Stale {
        /// The generation this process last saw.
        expected: u64,
        /// The store's generation.
        found: u64,
    },
    /// The disk (or the store's size limit) is full.
    #[error("the store is full")]
    Full,
    /// Another process held the store's write lock for too long.
    #[error("the store is locked by another process")]
    Busy,
    /// The backend failed (an I/O error); the backend's numeric code.
    #[error("store backend failure (code {0})")]
    Io(i32),
    /// A record does not open under this key, was moved to another slot or
    /// kind, or its contents are invalid; or the records disagree with each
    /// other.
    #[error("store record is corrupt or sealed under another key: {0}")]
    Corrupt(&'static str),
    /// The store was written by a newer build (its schema version).
    #[error("store schema version {0} is newer than this build reads")]
    UnsupportedSchema(u32),
    /// `open` found no endpoint in the store.
    #[error("the store holds no endpoint")]
    Empty,
    /// `create` or a migration found an endpoint already in the store.
    #[error("the store already holds an endpoint")]
    NotEmpty,
    /// A failed commit could not be undone in memory (the store could not
    /// be read back): the endpoint refuses every operation until it is
    /// opened again.
    #[error("the endpoint's state is unknown after a failed commit; open it again")]
    Poisoned,
}

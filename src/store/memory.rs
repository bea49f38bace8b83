//! [`MemoryStore`]: the in-memory backend. Clones share one store (like two
//! processes opening one database), so tests can exercise the generation
//! lock; nothing survives the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Change, Loaded, RecordKey, RecordValues, Store, StoreError};

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    records: BTreeMap<RecordKey, Vec<u8>>,
}

/// A store in memory. Clones are handles on the same records.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    /// A new, empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a panic elsewhere; commits are applied
        // whole under the lock, so the records are still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of records held.
    pub fn len(&self) -> usize {
        self.inner().records.len()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.inner().records.is_empty()
    }

    /// The bytes of every key and value held (what a file would take,
    /// without a database's overhead).
    pub fn size_bytes(&self) -> usize {
        self.inner().records.values().map(|v| 33 + v.len()).sum()
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let inner = self.inner();
        Ok(Loaded {
            generation: inner.generation,
            records: inner.records.iter().map(|(k, v)| (*k, v.clone())).collect(),
        })
    }

    fn read(&mut self, keys: &[RecordKey]) -> Result<(u64, RecordValues), StoreError> {
        let inner = self.inner();
        let values = keys.iter().map(|k| inner.records.get(k).cloned()).collect();
        Ok((inner.generation, values))
    }

    fn commit(&mut self, expected: u64, changes: &[Change]) -> Result<u64, StoreError> {
        let mut inner = self.inner();
        if inner.generation != expected {
            return Err(StoreError::Stale {
                expected,
                found: inner.generation,
            });
        }
        for change in changes {
            match &change.value {
                Some(value) => inner.records.insert(change.key, value.clone()),
                None => inner.records.remove(&change.key),
            };
        }
        inner.generation = expected.saturating_add(1);
        Ok(inner.generation)
    }
}

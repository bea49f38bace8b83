//! Test support: [`FaultyStore`], a memory store whose commits and reads
//! fail on demand, for the durable endpoints' fault-injection tests.

use std::sync::{Arc, Mutex};

use super::{Change, Loaded, MemoryStore, RecordKey, RecordValues, Store, StoreError};

#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// The error the next commit fails with.
    pub(crate) commit: Option<StoreError>,
    /// Whether loads and reads fail.
    pub(crate) reads: bool,
    /// How many changes each successful commit carried.
    pub(crate) commits: Vec<usize>,
}

/// A memory store whose commits and reads fail on demand.
#[derive(Clone, Debug)]
pub(crate) struct FaultyStore {
    pub(crate) inner: MemoryStore,
    faults: Arc<Mutex<Faults>>,
}

impl FaultyStore {
    pub(crate) fn new() -> Self {
        Self {
            inner: MemoryStore::new(),
            faults: Arc::default(),
        }
    }

    pub(crate) fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap()
    }

    pub(crate) fn snapshot(&self) -> Loaded {
        self.inner.clone().load().unwrap()
    }
}

impl Store for FaultyStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        if self.faults().reads {
            return Err(StoreError::Io(5));
        }
        self.inner.load()
    }

    fn read(&mut self, keys: &[RecordKey]) -> Result<(u64, RecordValues), StoreError> {
        if self.faults().reads {
            return Err(StoreError::Io(5));
        }
        self.inner.read(keys)
    }

    fn commit(&mut self, expected: u64, changes: &[Change]) -> Result<u64, StoreError> {
        if let Some(error) = self.faults().commit.take() {
            return Err(error);
        }
        let generation = self.inner.commit(expected, changes)?;
        self.faults().commits.push(changes.len());
        Ok(generation)
    }
}

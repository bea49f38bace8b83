//! [`WriteThrough`]: the machinery every durable endpoint shares (the
//! native [`crate::DurableEndpoint`] and the Matrix
//! [`crate::matrix::DurableMatrixEndpoint`]): an endpoint kept in memory
//! over a [`Store`], whose every operation commits the records it changed
//! in one transaction conditioned on the store's generation before its
//! result is handed back.
//!
//! Guarantees: a commit that fails (an I/O error, a full disk) leaves the
//! endpoint as it was before the operation (the touched records are read
//! back from the store, which the failed transaction did not change); a
//! commit refused as [`StoreError::Stale`] reloads the newest state, so a
//! process holding stale state never overwrites newer state; if the store
//! cannot be read back either, every operation is refused
//! ([`StoreError::Poisoned`]) until the endpoint is reloaded.

use zeroize::Zeroizing;

use super::{Change, RecordKey, RecordValues, Store, StoreError, StoreKeys};
use crate::codec::{DecodeError, Writer};
use crate::pickle::PickleKey;

/// The name of one durable record of an endpoint, by natural id (a room
/// id, a peer's key...). The order is the order records apply in.
pub(crate) trait RecordName: Clone + Ord + Sized {
    /// The record's kind and natural id.
    fn natural_id(&self) -> (u8, Vec<u8>);

    /// The record named by `kind` and `natural_id` (as read from a store).
    fn from_natural_id(kind: u8, natural_id: &[u8]) -> Result<Self, DecodeError>;
}

/// An endpoint that can be kept as durable records: it names the records
/// each operation changed, and writes and applies each record.
pub(crate) trait Recorded: Sized {
    /// The name of one record.
    type Touch: RecordName;

    /// Writes the contents of the record `touch` names; false when the
    /// endpoint no longer holds it (the record is to be deleted).
    fn write_record(&self, touch: &Self::Touch, w: &mut Writer) -> bool;

    /// Applies the record `touch` names as a store holds it (`None`:
    /// absent). Records of one commit apply in [`RecordName`] order.
    fn apply_record(
        &mut self,
        touch: &Self::Touch,
        contents: Option<&[u8]>,
    ) -> Result<(), DecodeError>;

    /// Builds the endpoint from every record of a store, opened and sorted
    /// in [`RecordName`] order.
    fn from_opened(opened: Vec<(Self::Touch, Zeroizing<Vec<u8>>)>) -> Result<Self, StoreError>;

    /// Starts or stops recording which records operations change.
    fn track_changes(&mut self, on: bool);

    /// The records changed since the last call.
    fn take_changes(&mut self) -> Vec<Self::Touch>;

    /// Every record of the endpoint (to save it whole).
    fn all_records(&self) -> Vec<Self::Touch>;

    /// Moves what is not stored (clock, random generator, settings of this
    /// process) from `old` into this freshly loaded endpoint.
    fn keep_unstored(&mut self, old: &mut Self);

    /// The store changes that write `touched` as the endpoint holds them,
    /// each sealed with a fresh nonce.
    fn changes(&mut self, keys: &StoreKeys, touched: &[Self::Touch]) -> Vec<Change> {
        let mut rng = crate::crypto::os_rng();
        touched
            .iter()
            .map(|touch| {
                let (kind, natural_id) = touch.natural_id();
                let key = keys.key(kind, &natural_id);
                let value = keys.seal(&key, &natural_id, &mut rng, |w| self.write_record(touch, w));
                Change { key, value }
            })
            .collect()
    }

    /// Applies records read back from a store, in order (`values` holds
    /// each sealed value of `touched`, or `None` for an absent record).
    fn apply_records(
        &mut self,
        keys: &StoreKeys,
        touched: &[(Self::Touch, RecordKey)],
        values: &[Option<Vec<u8>>],
    ) -> Result<(), StoreError> {
        for ((touch, key), value) in touched.iter().zip(values) {
            let contents = match value {
                Some(value) => Some(keys.open(key, value)?.1),
                None => None,
            };
            self.apply_record(touch, contents.as_deref().map(|c| c.as_slice()))
                .map_err(|_| StoreError::Corrupt("record contents"))?;
        }
        Ok(())
    }

    /// Builds the endpoint from every record of a store.
    fn from_records(
        keys: &StoreKeys,
        records: &[(RecordKey, Vec<u8>)],
    ) -> Result<Self, StoreError> {
        let mut opened = Vec::with_capacity(records.len());
        for (key, value) in records {
            let (natural_id, contents) = keys.open(key, value)?;
            let touch = Self::Touch::from_natural_id(key.kind, &natural_id)
                .map_err(|_| StoreError::Corrupt("record id"))?;
            opened.push((touch, contents));
        }
        opened.sort_by(|a, b| a.0.cmp(&b.0));
        Self::from_opened(opened)
    }
}

/// An endpoint kept in a store, write-through (see the module docs).
pub(crate) struct WriteThrough<E> {
    pub(crate) endpoint: E,
    store: Box<dyn Store>,
    keys: StoreKeys,
    generation: u64,
    poisoned: bool,
}

/// Builds the endpoint from every record of `store`; returns it with the
/// generation it was read at.
fn load<E: Recorded>(store: &mut dyn Store, keys: &StoreKeys) -> Result<(E, u64), StoreError> {
    let loaded = store.load()?;
    Ok((E::from_records(keys, &loaded.records)?, loaded.generation))
}

impl<E: Recorded> WriteThrough<E> {
    /// Opens the endpoint `store` holds, reading every record once.
    pub(crate) fn open(mut store: Box<dyn Store>, key: &PickleKey) -> Result<Self, StoreError> {
        let keys = StoreKeys::new(key);
        let (endpoint, generation): (E, u64) = load(&mut *store, &keys)?;
        Ok(Self::tracking(endpoint, store, keys, generation))
    }

    /// The endpoint as the store holds it at `generation`, tracking changes.
    fn tracking(mut endpoint: E, store: Box<dyn Store>, keys: StoreKeys, generation: u64) -> Self {
        endpoint.track_changes(true);
        Self {
            endpoint,
            store,
            keys,
            generation,
            poisoned: false,
        }
    }

    /// Saves `endpoint` whole into `store`, which must hold no endpoint.
    pub(crate) fn save_new(
        mut endpoint: E,
        mut store: Box<dyn Store>,
        key: &PickleKey,
    ) -> Result<Self, StoreError> {
        let keys = StoreKeys::new(key);
        let loaded = store.load()?;
        if !loaded.records.is_empty() {
            return Err(StoreError::NotEmpty);
        }
        let all = endpoint.all_records();
        let changes = endpoint.changes(&keys, &all);
        let generation = store.commit(loaded.generation, &changes)?;
        Ok(Self::tracking(endpoint, store, keys, generation))
    }

    /// The store's generation last loaded or committed.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether a failed commit could not be undone (every operation is
    /// refused until a reload).
    pub(crate) fn poisoned(&self) -> bool {
        self.poisoned
    }

    /// Reloads every record (and clears a poisoned state).
    pub(crate) fn reload(&mut self) -> Result<(), StoreError> {
        let (mut endpoint, generation): (E, u64) = load(&mut *self.store, &self.keys)?;
        endpoint.keep_unstored(&mut self.endpoint);
        endpoint.track_changes(true);
        self.endpoint = endpoint;
        self.generation = generation;
        self.poisoned = false;
        Ok(())
    }

    /// Runs `op` on the endpoint, then commits every record it touched (a
    /// failed operation changes nothing, so it touches nothing, except where
    /// it documents otherwise). A store error replaces the operation's
    /// result.
    pub(crate) fn run<T, Err: From<StoreError>>(
        &mut self,
        op: impl FnOnce(&mut E) -> Result<T, Err>,
    ) -> Result<T, Err> {
        if self.poisoned {
            return Err(StoreError::Poisoned.into());
        }
        let result = op(&mut self.endpoint);
        let touched = self.endpoint.take_changes();
        if touched.is_empty() {
            return result;
        }
        let changes = self.endpoint.changes(&self.keys, &touched);
        match self.store.commit(self.generation, &changes) {
            Ok(generation) => {
                self.generation = generation;
                result
            }
            Err(error) => {
                let restored = match error {
                    StoreError::Stale { .. } => self.reload(),
                    _ => self.read_back(&touched, &changes),
                };
                if restored.is_err() {
                    self.poisoned = true;
                }
                Err(error.into())
            }
        }
    }

    /// Puts the touched records back as the store holds them (the failed
    /// commit did not change it).
    fn read_back(&mut self, touched: &[E::Touch], changes: &[Change]) -> Result<(), StoreError> {
        let keys: Vec<RecordKey> = changes.iter().map(|c| c.key).collect();
        let (generation, values): (u64, RecordValues) = self.store.read(&keys)?;
        if generation != self.generation {
            return self.reload();
        }
        let slots: Vec<(E::Touch, RecordKey)> = touched.iter().cloned().zip(keys).collect();
        self.endpoint.apply_records(&self.keys, &slots, &values)?;
        // Applying records marks them again: they are what the store holds.
        self.endpoint.take_changes();
        Ok(())
    }
}

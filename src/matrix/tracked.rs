//! [`TrackedMap`]: a map that remembers which keys were changed, so the
//! durable store ([`super::DurableMatrixEndpoint`]) writes one record per
//! changed entry instead of scanning the map.
//!
//! Reading goes through `Deref` to the map and never marks anything; every
//! way to change an entry (`get_mut`, `insert`, `remove`, `entry`,
//! `pop_first`) marks its key while tracking is on. Off (an endpoint without
//! a store, or a pickle), it marks nothing and costs nothing.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Deref;

use crate::room::Touched;

/// A `BTreeMap` whose changed keys are recorded while tracking.
#[derive(Clone)]
pub(crate) struct TrackedMap<K, V> {
    map: BTreeMap<K, V>,
    touched: Touched<K>,
}

impl<K, V> Default for TrackedMap<K, V> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            touched: Touched::default(),
        }
    }
}

impl<K, V> Deref for TrackedMap<K, V> {
    type Target = BTreeMap<K, V>;
    fn deref(&self) -> &BTreeMap<K, V> {
        &self.map
    }
}

impl<K: Ord + Clone, V> TrackedMap<K, V> {
    /// Starts (or stops) tracking; either way forgets what was recorded.
    pub(crate) fn track(&mut self, on: bool) {
        self.touched.track(on);
    }

    /// The keys changed since the last call (deleted ones included).
    pub(crate) fn take_touched(&mut self) -> impl Iterator<Item = K> + use<K, V> {
        self.touched.take().into_iter()
    }

    /// The entry of `key`, to change it (marks the key).
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let value = self.map.get_mut(key)?;
        self.touched.mark(|| key.clone());
        Some(value)
    }

    /// The entry of `key`, to change what the caller marks itself (a part
    /// of the value kept in its own record).
    pub(crate) fn get_mut_unmarked(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    /// Inserts an entry (marks the key); returns the one it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.touched.mark(|| key.clone());
        self.map.insert(key, value)
    }

    /// Removes an entry (marks the key if it was held).
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let value = self.map.remove(key)?;
        self.touched.mark(|| key.clone());
        Some(value)
    }

    /// Removes the first entry (marks its key).
    pub(crate) fn pop_first(&mut self) -> Option<(K, V)> {
        let (key, value) = self.map.pop_first()?;
        self.touched.mark(|| key.clone());
        Some((key, value))
    }

    /// The entry API (marks the key).
    pub(crate) fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        self.touched.mark(|| key.clone());
        self.map.entry(key)
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for TrackedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.map.fmt(f)
    }
}

impl<K: Ord + Clone, V> FromIterator<(K, V)> for TrackedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            map: iter.into_iter().collect(),
            touched: Touched::default(),
        }
    }
}

impl<'a, K, V> IntoIterator for &'a TrackedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::collections::btree_map::Iter<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

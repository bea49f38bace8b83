//! Message keys kept for messages that were skipped over by a later one and
//! may still arrive. Bounded twice: at most [`MAX_SKIPPED_MESSAGE_KEYS`] keys
//! and at most [`MAX_RECEIVING_CHAINS`] distinct chains; the oldest go first.

use std::collections::VecDeque;

use crate::consts::{MAX_RECEIVING_CHAINS, MAX_SKIPPED_MESSAGE_KEYS};
use crate::keys::Curve25519PublicKey;

use crate::crypto::Secret;

/// One stored key: the chain it belongs to (the sender's ratchet key), its
/// counter, and the message seed.
#[derive(Clone, Debug)]
pub(crate) struct SkippedKey {
    pub(crate) ratchet_key: Curve25519PublicKey,
    pub(crate) counter: u32,
    pub(crate) seed: Secret<32>,
}

/// The bounded store, oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct SkippedKeys {
    keys: VecDeque<SkippedKey>,
}

impl SkippedKeys {
    /// Position of the key for (`ratchet_key`, `counter`), if stored.
    pub(crate) fn find(&self, ratchet_key: &Curve25519PublicKey, counter: u32) -> Option<usize> {
        self.keys
            .iter()
            .position(|k| k.counter == counter && &k.ratchet_key == ratchet_key)
    }

    pub(crate) fn get(&self, index: usize) -> Option<&SkippedKey> {
        self.keys.get(index)
    }

    /// Removes the key at `index` (it has been used).
    pub(crate) fn remove(&mut self, index: usize) {
        if let Some(mut key) = self.keys.remove(index) {
            zeroize::Zeroize::zeroize(&mut key.counter);
        }
    }

    /// Appends newly skipped keys (oldest first), then enforces both bounds.
    pub(crate) fn extend(&mut self, new: impl IntoIterator<Item = SkippedKey>) {
        let before = self.keys.len();
        self.keys.extend(new);
        if self.keys.len() == before {
            return;
        }
        while self.keys.len() > MAX_SKIPPED_MESSAGE_KEYS {
            self.keys.pop_front();
        }
        while self.chain_count() > MAX_RECEIVING_CHAINS {
            if let Some(oldest) = self.keys.front().map(|k| k.ratchet_key) {
                self.keys.retain(|k| k.ratchet_key != oldest);
            }
        }
    }

    /// Rebuilds a store from a pickle, refusing one that breaks a bound.
    pub(crate) fn from_stored(keys: Vec<SkippedKey>) -> Option<Self> {
        let store = Self { keys: keys.into() };
        (store.keys.len() <= MAX_SKIPPED_MESSAGE_KEYS
            && store.chain_count() <= MAX_RECEIVING_CHAINS)
            .then_some(store)
    }

    fn chain_count(&self) -> usize {
        let mut seen: Vec<&Curve25519PublicKey> = Vec::with_capacity(MAX_RECEIVING_CHAINS + 1);
        for key in &self.keys {
            if !seen.contains(&&key.ratchet_key) {
                seen.push(&key.ratchet_key);
            }
        }
        seen.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &SkippedKey> {
        self.keys.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(chain: u8, counter: u32) -> SkippedKey {
        SkippedKey {
            ratchet_key: Curve25519PublicKey::from_bytes([chain; 32]),
            counter,
            seed: Secret::new([counter as u8; 32]),
        }
    }

    #[test]
    fn keeps_newest_keys_and_chains() {
        let mut store = SkippedKeys::default();
        store.extend((0..150).map(|i| key(1, i)));
        assert_eq!(store.len(), MAX_SKIPPED_MESSAGE_KEYS);
        assert!(
            store
                .find(&Curve25519PublicKey::from_bytes([1; 32]), 49)
                .is_none()
        );
        assert!(
            store
                .find(&Curve25519PublicKey::from_bytes([1; 32]), 50)
                .is_some()
        );
        for chain in 2..=6 {
            store.extend([key(chain, 0)]);
        }
        // Chain 1 (the oldest) is gone entirely; chains 2..=6 remain.
        assert_eq!(store.len(), 5);
        assert!(
            store
                .find(&Curve25519PublicKey::from_bytes([2; 32]), 0)
                .is_some()
        );
        let at = store
            .find(&Curve25519PublicKey::from_bytes([4; 32]), 0)
            .unwrap();
        store.remove(at);
        assert_eq!(store.len(), 4);
    }
}

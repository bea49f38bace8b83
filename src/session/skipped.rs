//! Message keys kept for messages that were skipped over by a later one and
//! may still arrive. Bounded three ways, by the protocol's ratchet spec: the
//! keys in all, the keys per chain and the distinct chains; the oldest go
//! first.

use std::collections::VecDeque;

use crate::codec::{DecodeError, Reader, Writer};
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

    /// Appends newly skipped keys (oldest first), then enforces the bounds:
    /// at most `max_keys` keys, `per_chain` keys of one chain and
    /// `max_chains` chains.
    pub(crate) fn extend(
        &mut self,
        new: impl IntoIterator<Item = SkippedKey>,
        max_keys: usize,
        per_chain: usize,
        max_chains: usize,
    ) {
        let before = self.keys.len();
        self.keys.extend(new);
        if self.keys.len() == before {
            return;
        }
        while self.keys.len() > max_keys {
            self.keys.pop_front();
        }
        if per_chain < max_keys {
            self.bound_per_chain(per_chain);
        }
        while self.chain_count() > max_chains {
            if let Some(oldest) = self.keys.front().map(|k| k.ratchet_key) {
                self.keys.retain(|k| k.ratchet_key != oldest);
            }
        }
    }

    /// Drops the oldest keys of any chain holding more than `per_chain`.
    fn bound_per_chain(&mut self, per_chain: usize) {
        let mut index = self.keys.len();
        let mut counts: Vec<(Curve25519PublicKey, usize)> = Vec::new();
        // Walk newest first, so the keys dropped are each chain's oldest.
        while index > 0 {
            index -= 1;
            let Some(chain) = self.keys.get(index).map(|k| k.ratchet_key) else {
                continue;
            };
            let count = match counts.iter_mut().find(|(c, _)| *c == chain) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    counts.push((chain, 1));
                    1
                }
            };
            if count > per_chain {
                self.keys.remove(index);
            }
        }
    }

    /// Rebuilds a store from a pickle, refusing one that holds more than
    /// `max_keys` keys or `max_chains` chains.
    pub(crate) fn from_stored(
        keys: Vec<SkippedKey>,
        max_keys: usize,
        max_chains: usize,
    ) -> Option<Self> {
        let store = Self { keys: keys.into() };
        (store.keys.len() <= max_keys && store.chain_count() <= max_chains).then_some(store)
    }

    fn chain_count(&self) -> usize {
        let mut seen: Vec<&Curve25519PublicKey> = Vec::with_capacity(8);
        for key in &self.keys {
            if !seen.contains(&&key.ratchet_key) {
                seen.push(&key.ratchet_key);
            }
        }
        seen.len()
    }

    /// Pickle form: u16 count, then (ratchet key, u32 counter, seed) per
    /// key, oldest first.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.count(self.keys.len());
        for key in &self.keys {
            w.bytes(key.ratchet_key.as_bytes())
                .u32(key.counter)
                .bytes(key.seed.expose());
        }
    }

    /// Reads [`SkippedKeys::write`]'s form, refusing more than `max_keys`
    /// keys or `max_chains` chains.
    pub(crate) fn read(
        r: &mut Reader<'_>,
        max_keys: usize,
        max_chains: usize,
    ) -> Result<Self, DecodeError> {
        let count = r.count(max_keys, "skipped keys")?;
        let mut keys = Vec::with_capacity(count);
        for _ in 0..count {
            keys.push(SkippedKey {
                ratchet_key: Curve25519PublicKey::from_bytes(r.array("skipped ratchet key")?),
                counter: r.u32("skipped counter")?,
                seed: Secret::from_mut(&mut r.array::<32>("skipped key")?),
            });
        }
        Self::from_stored(keys, max_keys, max_chains)
            .ok_or(DecodeError::InvalidValue("skipped keys"))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{MAX_RECEIVING_CHAINS, MAX_SKIPPED_MESSAGE_KEYS};

    fn extend(store: &mut SkippedKeys, new: impl IntoIterator<Item = SkippedKey>) {
        store.extend(
            new,
            MAX_SKIPPED_MESSAGE_KEYS,
            MAX_SKIPPED_MESSAGE_KEYS,
            MAX_RECEIVING_CHAINS,
        );
    }

    #[test]
    fn per_chain_bound_drops_each_chains_oldest() {
        let mut store = SkippedKeys::default();
        store.extend((0..10).map(|i| key(1, i)), 200, 4, 5);
        store.extend((0..3).map(|i| key(2, i)), 200, 4, 5);
        store.extend((10..12).map(|i| key(1, i)), 200, 4, 5);
        assert_eq!(store.len(), 7);
        let one = Curve25519PublicKey::from_bytes([1; 32]);
        assert!(store.find(&one, 7).is_none());
        assert!(store.find(&one, 8).is_some());
        assert!(store.find(&one, 11).is_some());
    }

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
        extend(&mut store, (0..150).map(|i| key(1, i)));
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
            extend(&mut store, [key(chain, 0)]);
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

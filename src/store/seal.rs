//! Sealing records at rest: [`StoreKeys`], two subkeys of the app's
//! [`PickleKey`] derived for the store.
//!
//! A record's id is HMAC-SHA-256, under the id subkey, of its kind and its
//! natural id (a room id, a peer's key...), so the database reveals neither.
//! Its value is `nonce || AES-256-GCM(natural id || contents)` under the
//! seal subkey with a fresh random nonce, and associated data naming the
//! schema version, the kind and the record id, so a value cannot be moved to
//! another slot or kind, or replayed into another schema. Opening checks
//! that the natural id inside hashes to the slot's id.

use std::fmt;

use zeroize::Zeroizing;

use super::{RecordKey, SCHEMA_VERSION, StoreError};
use crate::codec::{Reader, Writer};
use crate::crypto::{MessageKey, NONCE_LEN, Secret, TAG_LEN, hmac, label};
use crate::pickle::PickleKey;

/// The longest natural id a record may have (a room id, a session id and an
/// index fit well within it).
const MAX_NATURAL_ID: usize = 1024;

/// The store's two subkeys: one seals record values, one turns natural ids
/// into record ids.
pub(crate) struct StoreKeys {
    seal: Secret<32>,
    id: Secret<32>,
}

impl fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKeys(***)")
    }
}

impl StoreKeys {
    /// Derives both subkeys from the app's pickle key.
    pub(crate) fn new(key: &PickleKey) -> Self {
        Self {
            seal: key.derive(label::STORE_SEAL_KEY),
            id: key.derive(label::STORE_ID_KEY),
        }
    }

    /// The record key of `natural_id` under `kind`.
    pub(crate) fn key(&self, kind: u8, natural_id: &[u8]) -> RecordKey {
        let mut input = Vec::with_capacity(1 + natural_id.len());
        input.push(kind);
        input.extend_from_slice(natural_id);
        RecordKey {
            kind,
            id: *hmac(self.id.expose(), &input),
        }
    }

    fn associated_data(key: &RecordKey) -> Vec<u8> {
        [
            label::STORE_RECORD,
            &SCHEMA_VERSION.to_be_bytes(),
            &[key.kind],
            &key.id,
        ]
        .concat()
    }

    /// Seals `natural_id` and the contents `write` produces into the value
    /// of the record `key` (which must be `self.key(kind, natural_id)`);
    /// `None` when `write` has nothing to write (returns false).
    pub(crate) fn seal<R: rand::CryptoRng + ?Sized>(
        &self,
        key: &RecordKey,
        natural_id: &[u8],
        rng: &mut R,
        write: impl FnOnce(&mut Writer) -> bool,
    ) -> Option<Vec<u8>> {
        let mut w = Writer::with_capacity(256);
        w.short_bytes(natural_id);
        if !write(&mut w) {
            return None;
        }
        let contents = w.into_zeroizing();
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(NONCE_LEN + contents.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        // Record contents are bounded by the protocol constants (far below
        // AES-GCM's 64 GiB limit), so sealing cannot fail.
        let _ = MessageKey::from_parts(self.seal.expose(), nonce).seal_into(
            &Self::associated_data(key),
            &contents,
            &mut out,
        );
        Some(out)
    }

    /// Opens the value of record `key`: its natural id and contents
    /// (wiped when dropped). The natural id must hash to the record's id.
    pub(crate) fn open(
        &self,
        key: &RecordKey,
        value: &[u8],
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), StoreError> {
        let (nonce, sealed) = value
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(StoreError::Corrupt("record truncated"))?;
        let plain = MessageKey::from_parts(self.seal.expose(), *nonce)
            .open(&Self::associated_data(key), sealed)
            .map_err(|_| StoreError::Corrupt("record does not open"))?;
        let mut r = Reader::new(&plain);
        let natural_id = r
            .short_bytes(MAX_NATURAL_ID, "natural id")
            .map_err(|_| StoreError::Corrupt("record natural id"))?
            .to_vec();
        if self.key(key.kind, &natural_id).id != key.id {
            return Err(StoreError::Corrupt("record id"));
        }
        let contents = Zeroizing::new(r.rest().to_vec());
        Ok((natural_id, contents))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_open_only_in_their_slot() {
        let keys = StoreKeys::new(&PickleKey::from_bytes(&mut [3; 32]));
        let mut rng = crate::crypto::os_rng();
        let slot = keys.key(3, b"peer");
        let value = keys
            .seal(&slot, b"peer", &mut rng, |w| {
                w.bytes(b"contents");
                true
            })
            .unwrap();
        let (id, contents) = keys.open(&slot, &value).unwrap();
        assert_eq!(
            (id.as_slice(), contents.as_slice()),
            (&b"peer"[..], &b"contents"[..])
        );
        // Fresh nonce per write.
        let again = keys.seal(&slot, b"peer", &mut rng, |w| {
            w.bytes(b"contents");
            true
        });
        assert_ne!(Some(value.clone()), again);
        assert_eq!(keys.seal(&slot, b"peer", &mut rng, |_| false), None);
        // Another slot, another kind, another key, a flipped byte: refused.
        let other = keys.key(3, b"other");
        assert!(keys.open(&other, &value).is_err());
        assert!(
            keys.open(
                &RecordKey {
                    kind: 4,
                    id: slot.id
                },
                &value
            )
            .is_err()
        );
        let wrong = StoreKeys::new(&PickleKey::from_bytes(&mut [4; 32]));
        assert!(wrong.open(&slot, &value).is_err());
        for i in 0..value.len() {
            let mut bad = value.clone();
            bad[i] ^= 1;
            assert!(keys.open(&slot, &bad).is_err());
        }
        assert!(keys.open(&slot, &value[..10]).is_err());
        // A value sealed for a slot whose id is not its natural id's hash.
        let forged = keys.seal(&other, b"peer", &mut rng, |_| true).unwrap();
        assert_eq!(
            keys.open(&other, &forged),
            Err(StoreError::Corrupt("record id"))
        );
        // Ids depend on the kind, and reveal nothing of the natural id.
        assert_ne!(keys.key(3, b"peer").id, keys.key(4, b"peer").id);
        assert_eq!(format!("{keys:?}"), "StoreKeys(***)");
    }
}

//! The four-part hash ratchet behind a group session.
//!
//! The state at index `i` is four 32-byte parts `R0..R3`. Part `j` belongs
//! to byte `j` of the big-endian index: `R3` changes every message, `R2`
//! every 2^8, `R1` every 2^16, `R0` every 2^24. Ticking part `j` replaces it
//! with `HMAC(R_j, label_j)` and re-derives every lower part `k > j` as
//! `HMAC(R_j, label_k)` from the new `R_j`. Jumping forward any distance
//! therefore costs at most 255 ticks per part (about 1,020 HMACs), and
//! nothing earlier than the current index can be recomputed.

use std::marker::PhantomData;

use subtle::{Choice, ConstantTimeEq};

use crate::crypto::{CbcKeys, MessageKey, SALT_LEN, Secret, hmac_into, hmac_step, label};

/// What one group protocol fixes about the four-part ratchet.
pub(crate) trait GroupSpec {
    /// The HMAC inputs that advance part 0, 1, 2 and 3.
    const INPUTS: [&'static [u8]; 4];
    /// Whether the lower parts are derived from the ticking part's value
    /// before its last tick (Megolm) or after it (native).
    const LOWER_FROM_PREVIOUS: bool;
}

/// The native group ratchet: roomseal's labels, lower parts from the new
/// value.
#[derive(Debug)]
pub(crate) struct NativeGroup;

impl GroupSpec for NativeGroup {
    const INPUTS: [&'static [u8]; 4] = label::GROUP_RATCHET;
    const LOWER_FROM_PREVIOUS: bool = false;
}

/// Megolm v1's ratchet: single-byte inputs 0x00..0x03, lower parts from the
/// ticking part's previous value (as libolm's `megolm_advance_to`).
#[derive(Debug)]
pub(crate) struct MegolmV1;

impl GroupSpec for MegolmV1 {
    const INPUTS: [&'static [u8]; 4] = label::MEGOLM_RATCHET;
    const LOWER_FROM_PREVIOUS: bool = true;
}

/// Ratchet state at one index.
#[derive(Debug)]
pub(crate) struct Ratchet<K: GroupSpec = NativeGroup> {
    /// `R0 || R1 || R2 || R3` in one box (one allocation per copy).
    parts: Secret<128>,
    index: u32,
    spec: PhantomData<K>,
}

impl<K: GroupSpec> Clone for Ratchet<K> {
    fn clone(&self) -> Self {
        Self {
            parts: self.parts.clone(),
            index: self.index,
            spec: PhantomData,
        }
    }
}

impl Ratchet<NativeGroup> {
    /// The AES-256-GCM key and nonce of the message at the current index
    /// that carries `salt`.
    pub(crate) fn message_key(&self, salt: &[u8; SALT_LEN]) -> MessageKey {
        MessageKey::derive(self.parts.expose(), salt, label::GROUP_MESSAGE_KEY)
    }
}

impl Ratchet<MegolmV1> {
    /// The AES-256-CBC key, MAC key and IV of the message at the current
    /// index (HKDF info `MEGOLM_KEYS` over the 128 ratchet bytes).
    pub(crate) fn megolm_keys(&self) -> CbcKeys {
        CbcKeys::derive(self.parts.expose(), label::MEGOLM_KEYS)
    }
}

impl<K: GroupSpec> Ratchet<K> {
    /// A fresh ratchet at index 0 from 128 random bytes.
    pub(crate) fn random<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self {
            parts: Secret::random(rng),
            index: 0,
            spec: PhantomData,
        }
    }

    /// Rebuilds a ratchet from its parts and index.
    pub(crate) fn from_parts(bytes: &[u8; 128], index: u32) -> Self {
        Self {
            parts: Secret::new(*bytes),
            index,
            spec: PhantomData,
        }
    }

    /// The parts concatenated (for keys, session keys, exports and pickles).
    pub(crate) fn to_bytes(&self) -> &Secret<128> {
        &self.parts
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// Ticks part `j` `times` times, then re-derives the lower parts once
    /// (deriving them after each tick would give the same result), from the
    /// part's new value or, for Megolm, from its value before the last tick.
    fn tick(&mut self, j: usize, times: u32) {
        let Some(&own) = K::INPUTS.get(j) else {
            return;
        };
        let parts = self.parts.expose_mut();
        let Some(part) = parts.get(j * 32..(j + 1) * 32) else {
            return;
        };
        // Work on a stack copy and store the result once per part.
        let mut current = zeroize::Zeroizing::new([0u8; 32]);
        current.copy_from_slice(part);
        let before_last = if K::LOWER_FROM_PREVIOUS { 1 } else { 0 };
        // Each step overwrites the value it was keyed with, so no
        // intermediate value is left to wipe (only the last, on drop).
        for _ in 0..times.saturating_sub(before_last) {
            hmac_step(&mut current, own);
            #[cfg(test)]
            tests::count_hmac();
        }
        let base = current.clone();
        if K::LOWER_FROM_PREVIOUS && times > 0 {
            hmac_step(&mut current, own);
        }
        for (k, slot) in parts.chunks_exact_mut(32).enumerate().skip(j) {
            let Ok(slot) = <&mut [u8; 32]>::try_from(slot) else {
                continue;
            };
            if k == j {
                slot.copy_from_slice(current.as_slice());
            } else if let Some(&lower) = K::INPUTS.get(k) {
                // Written straight into the ratchet: the old part is
                // overwritten, no copy of the new one is left behind.
                hmac_into(&base, lower, slot);
                #[cfg(test)]
                tests::count_hmac();
            }
        }
    }

    /// Advances to `target` (which must not be below the current index;
    /// a lower target leaves the ratchet unchanged and returns false).
    pub(crate) fn advance_to(&mut self, target: u32) -> bool {
        if target < self.index {
            return false;
        }
        for j in 0..4 {
            let shift = 8 * (3 - j as u32);
            let have = self.index >> shift;
            let want = target >> shift;
            // Higher bytes already agree, so the difference is at most 255.
            let steps = want.wrapping_sub(have);
            if steps > 0 {
                self.tick(j, steps);
                // Lower bytes restart from zero after a tick of part j.
                self.index = want << shift;
            }
        }
        self.index = target;
        true
    }

    /// Advances by one message; false if the index space is used up.
    pub(crate) fn advance(&mut self) -> bool {
        match self.index.checked_add(1) {
            Some(next) => self.advance_to(next),
            None => false,
        }
    }

    /// Constant-time equality of index and parts.
    pub(crate) fn ct_eq(&self, other: &Self) -> Choice {
        self.index.ct_eq(&other.index) & self.parts.ct_eq(&other.parts)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static HMACS: Cell<u64> = const { Cell::new(0) };
    }

    pub(crate) fn count_hmac() {
        HMACS.with(|c| c.set(c.get() + 1));
    }

    /// HMACs computed by ratchet ticks on this thread so far.
    pub(crate) fn hmac_count() -> u64 {
        HMACS.with(Cell::get)
    }

    #[test]
    fn megolm_jumping_equals_stepping() {
        let start = || {
            let mut bytes = [0u8; 128];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = i as u8;
            }
            Ratchet::<MegolmV1>::from_parts(&bytes, 0)
        };
        for target in [1u32, 255, 256, 257, 65_536, 70_000] {
            let mut stepped = start();
            while stepped.index() < target {
                assert!(stepped.advance());
            }
            let mut jumped = start();
            assert!(jumped.advance_to(target));
            assert!(bool::from(stepped.ct_eq(&jumped)), "target {target}");
        }
    }

    fn base() -> Ratchet {
        let mut bytes = [0u8; 128];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        Ratchet::from_parts(&bytes, 0)
    }

    #[test]
    fn jumping_equals_stepping() {
        for target in [1u32, 255, 256, 257, 511, 1000, 65_535, 65_536, 70_000] {
            let mut stepped = base();
            while stepped.index() < target {
                assert!(stepped.advance());
            }
            let mut jumped = base();
            assert!(jumped.advance_to(target));
            assert!(bool::from(stepped.ct_eq(&jumped)), "target {target}");
        }
    }

    #[test]
    fn jumping_in_pieces_equals_one_jump() {
        let mut a = base();
        a.advance_to(0x0001_02ff);
        a.advance_to(0x0102_0304);
        let mut b = base();
        b.advance_to(0x0102_0304);
        assert!(bool::from(a.ct_eq(&b)));
        let mut c = base();
        c.advance_to(0x00ff_ffff);
        c.advance_to(0x0100_0000);
        let mut d = base();
        d.advance_to(0x0100_0000);
        assert!(bool::from(c.ct_eq(&d)));
    }

    #[test]
    fn cannot_go_back_or_past_the_end() {
        let mut r = base();
        r.advance_to(10);
        assert!(!r.advance_to(9));
        assert_eq!(r.index(), 10);
        r.advance_to(u32::MAX);
        assert!(!r.advance());
        assert_eq!(r.index(), u32::MAX);
    }

    #[test]
    fn message_keys_differ_per_index() {
        let mut r = base();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            let mut out = Vec::new();
            r.message_key(&[0; SALT_LEN])
                .seal_into(b"", b"", &mut out)
                .unwrap();
            assert!(seen.insert(out));
            r.advance();
        }
    }
}

//! The four-part hash ratchet behind a group session.
//!
//! The state at index `i` is four 32-byte parts `R0..R3`. Part `j` belongs
//! to byte `j` of the big-endian index: `R3` changes every message, `R2`
//! every 2^8, `R1` every 2^16, `R0` every 2^24. Ticking part `j` replaces it
//! with `HMAC(R_j, label_j)` and re-derives every lower part `k > j` as
//! `HMAC(R_j, label_k)` from the new `R_j`. Jumping forward any distance
//! therefore costs at most 255 ticks per part (about 1,020 HMACs), and
//! nothing earlier than the current index can be recomputed.

use subtle::{Choice, ConstantTimeEq};

use crate::crypto::{MessageKey, SALT_LEN, Secret, hmac, label};

/// Ratchet state at one index.
#[derive(Clone, Debug)]
pub(crate) struct Ratchet {
    parts: [Secret<32>; 4],
    index: u32,
}

impl Ratchet {
    /// A fresh ratchet at index 0 from 128 random bytes.
    pub(crate) fn random<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self {
            parts: [
                Secret::random(rng),
                Secret::random(rng),
                Secret::random(rng),
                Secret::random(rng),
            ],
            index: 0,
        }
    }

    /// Rebuilds a ratchet from its parts and index.
    pub(crate) fn from_parts(bytes: &[u8; 128], index: u32) -> Self {
        let part = |n: usize| {
            let mut out = [0u8; 32];
            if let Some(src) = bytes.get(n * 32..(n + 1) * 32) {
                out.copy_from_slice(src);
            }
            Secret::from_mut(&mut out)
        };
        Self {
            parts: [part(0), part(1), part(2), part(3)],
            index,
        }
    }

    /// The parts concatenated (for session keys, exports and pickles).
    pub(crate) fn to_bytes(&self) -> Secret<128> {
        let mut out = [0u8; 128];
        for (chunk, part) in out.chunks_exact_mut(32).zip(&self.parts) {
            chunk.copy_from_slice(part.expose());
        }
        Secret::from_mut(&mut out)
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// Ticks part `j` `times` times, then re-derives the lower parts once
    /// (deriving them after each tick would give the same result).
    fn tick(&mut self, j: usize, times: u32) {
        let (Some(part), Some(&own)) = (self.parts.get_mut(j), label::GROUP_RATCHET.get(j)) else {
            return;
        };
        // Work on a stack copy and store the result once per part.
        let mut current = zeroize::Zeroizing::new(*part.expose());
        for _ in 0..times {
            current = hmac(&current, own);
            #[cfg(test)]
            tests::count_hmac();
        }
        *part = Secret::new(*current);
        for (slot, &lower) in self
            .parts
            .iter_mut()
            .zip(label::GROUP_RATCHET.iter())
            .skip(j + 1)
        {
            *slot = Secret::from_mut(&mut hmac(&current, lower));
            #[cfg(test)]
            tests::count_hmac();
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

    /// The AES-256-GCM key and nonce of the message at the current index
    /// that carries `salt`.
    pub(crate) fn message_key(&self, salt: &[u8; SALT_LEN]) -> MessageKey {
        MessageKey::derive(self.to_bytes().expose(), salt, label::GROUP_MESSAGE_KEY)
    }

    /// Constant-time equality of index and parts.
    pub(crate) fn ct_eq(&self, other: &Self) -> Choice {
        self.index.ct_eq(&other.index) & self.to_bytes().ct_eq(&other.to_bytes())
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

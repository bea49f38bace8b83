//! Fixed-size secret bytes that live on the heap, zeroize on drop, compare in
//! constant time and never print.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// `N` secret bytes.
///
/// Boxed so that moving the value does not leave copies of the secret on the
/// stack; zeroized when dropped; `Debug` prints only the length.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Secret<const N: usize>(Box<[u8; N]>);

impl<const N: usize> Secret<N> {
    /// Takes ownership of `bytes`, zeroizing the caller's copy.
    pub(crate) fn from_mut(bytes: &mut [u8; N]) -> Self {
        let secret = Self(Box::new(*bytes));
        bytes.zeroize();
        secret
    }

    /// Builds a secret from bytes the caller no longer needs to wipe (for
    /// example a value computed into a temporary that is dropped at once).
    pub(crate) fn new(bytes: [u8; N]) -> Self {
        let mut bytes = bytes;
        Self::from_mut(&mut bytes)
    }

    /// Fresh random bytes.
    pub(crate) fn random<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Box::new([0u8; N]);
        rng.fill_bytes(bytes.as_mut_slice());
        Self(bytes)
    }

    /// The secret bytes.
    pub(crate) fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// The secret bytes, to change in place (no copy is left behind).
    pub(crate) fn expose_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }
}

impl<const N: usize> ConstantTimeEq for Secret<N> {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret<{N}>(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_bytes_and_equality_is_by_value() {
        let a = Secret::new([0xAB; 32]);
        let b = Secret::new([0xAB; 32]);
        let c = Secret::new([0xAC; 32]);
        assert_eq!(format!("{a:?}"), "Secret<32>(***)");
        assert!(bool::from(a.ct_eq(&b)));
        assert!(!bool::from(a.ct_eq(&c)));
    }

    #[test]
    fn from_mut_wipes_the_source() {
        let mut source = [7u8; 16];
        let secret = Secret::from_mut(&mut source);
        assert_eq!(source, [0u8; 16]);
        assert_eq!(secret.expose(), &[7u8; 16]);
    }
}

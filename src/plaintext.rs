//! [`Plaintext`]: decrypted bytes that wipe themselves.
//!
//! Every decryption in the crate hands its result back in this type, so a
//! plaintext (which may carry a room key or a private message) is zeroized
//! when the caller drops it, and `Debug` prints its length only.

use std::fmt;
use std::ops::Deref;

use zeroize::Zeroizing;

/// Decrypted bytes, zeroized when dropped. Derefs to `[u8]`; compares equal
/// to byte slices, arrays and vectors with the same contents. `Debug` shows
/// the length, never the bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    /// Wraps bytes that are already in a wiping buffer.
    pub(crate) fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The bytes in a buffer that still wipes itself on drop.
    pub fn into_zeroizing(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Plaintext {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

impl PartialEq<[u8]> for Plaintext {
    fn eq(&self, other: &[u8]) -> bool {
        self.0.as_slice() == other
    }
}

impl PartialEq<&[u8]> for Plaintext {
    fn eq(&self, other: &&[u8]) -> bool {
        self.0.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Plaintext {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.0.as_slice() == other.as_slice()
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Plaintext {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0.as_slice() == other.as_slice()
    }
}

impl PartialEq<Vec<u8>> for Plaintext {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.0.as_slice() == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_by_contents_and_hides_them() {
        let p = Plaintext::new(Zeroizing::new(b"secret".to_vec()));
        assert_eq!(p, b"secret");
        assert_eq!(p, *b"secret");
        assert_eq!(p, b"secret".to_vec());
        assert_eq!(p, &b"secret"[..]);
        assert_ne!(p, b"other!");
        assert_eq!(format!("{p:?}"), "Plaintext(6 bytes)");
        assert_eq!(&*p, b"secret");
    }
}

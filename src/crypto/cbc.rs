//! AES-256-CBC with PKCS#7 padding, authenticated by HMAC-SHA-256 truncated
//! to 8 bytes: the cipher of Matrix's Olm v1 and Megolm v1 messages and of
//! libolm's pickles.
//!
//! The key, the MAC key and the IV all come from one HKDF expansion of a
//! one-use key (PROTOCOL.md, "Olm v1"), so callers never hold them apart.
//! Tags are checked in constant time, and a caller checks the tag before it
//! decrypts (encrypt-then-MAC); a failed unpadding is reported exactly like
//! a failed tag.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::kdf::{hkdf_into, hmac_parts};

/// Bytes of the truncated HMAC-SHA-256 tag.
pub(crate) const MAC_LEN: usize = 8;
/// AES block length in bytes.
pub(crate) const BLOCK_LEN: usize = 16;

type Encryptor = cbc::Encryptor<aes::Aes256>;
type Decryptor = cbc::Decryptor<aes::Aes256>;

/// The tag did not verify, or the authenticated ciphertext did not unpad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CbcFailure;

/// An AES-256 key, an HMAC-SHA-256 key and a CBC IV for one message (or one
/// pickle).
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct CbcKeys {
    aes: [u8; 32],
    mac: [u8; 32],
    iv: [u8; BLOCK_LEN],
}

impl CbcKeys {
    /// Expands `ikm` with HKDF-SHA-256 (all-zero salt, `info`) into 80 bytes:
    /// AES key, MAC key, IV in that order.
    pub(crate) fn derive(ikm: &[u8], info: &[u8]) -> Self {
        let mut okm = Zeroizing::new([0u8; 80]);
        hkdf_into(None, ikm, info, &mut okm);
        let mut keys = Self {
            aes: [0; 32],
            mac: [0; 32],
            iv: [0; BLOCK_LEN],
        };
        let (aes, rest) = okm.split_at(32);
        let (mac, iv) = rest.split_at(32);
        keys.aes.copy_from_slice(aes);
        keys.mac.copy_from_slice(mac);
        keys.iv.copy_from_slice(iv);
        keys
    }

    /// Length of the ciphertext of a `plaintext_len`-byte plaintext.
    pub(crate) const fn ciphertext_len(plaintext_len: usize) -> usize {
        (plaintext_len / BLOCK_LEN + 1) * BLOCK_LEN
    }

    /// Pads and encrypts `plaintext`, appending the ciphertext to `out`.
    pub(crate) fn encrypt_into(&self, plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let len = Self::ciphertext_len(plaintext.len());
        out.extend_from_slice(plaintext);
        out.resize(start + len, 0);
        if let Some(buf) = out.get_mut(start..) {
            // The buffer has room for the padding by construction, so this
            // cannot fail; if it ever did, the output would be all zeros
            // and fail every tag check rather than leak anything.
            let _ = Encryptor::new(&self.aes.into(), &self.iv.into())
                .encrypt_padded::<Pkcs7>(buf, plaintext.len());
        }
    }

    /// Decrypts and unpads `ciphertext` (whose tag the caller has checked).
    /// The result wipes itself when dropped.
    pub(crate) fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CbcFailure> {
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = Decryptor::new(&self.aes.into(), &self.iv.into())
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map_err(|_| CbcFailure)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// HMAC-SHA-256 of the concatenation of `parts`, truncated to 8 bytes.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let full = hmac_parts(&self.mac, parts);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(full.get(..MAC_LEN).unwrap_or(&[0; MAC_LEN]));
        out
    }

    /// Checks a truncated tag over `parts` in constant time.
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> Result<(), CbcFailure> {
        if bool::from(self.mac(parts).as_slice().ct_eq(tag)) {
            Ok(())
        } else {
            Err(CbcFailure)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn matches_nist_sp800_38a_cbc_aes256_first_block() {
        // SP 800-38A F.2.5 CBC-AES256.Encrypt, block 1; PKCS#7 then appends
        // one block of padding, whose ciphertext we do not check here.
        let key: Vec<u8> = (0..32)
            .map(|i| {
                u8::from_str_radix(
                    &"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"
                        [i * 2..i * 2 + 2],
                    16,
                )
                .unwrap()
            })
            .collect();
        let mut keys = CbcKeys::derive(b"x", b"y");
        keys.aes.copy_from_slice(&key);
        keys.iv = core::array::from_fn(|i| i as u8);
        let plaintext = [
            0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
            0x17, 0x2a,
        ];
        let mut out = Vec::new();
        keys.encrypt_into(&plaintext, &mut out);
        assert_eq!(out.len(), 32);
        assert_eq!(hex(&out[..16]), "f58c4c04d6e5f1ba779eabfb5f7bfbd6");
        assert_eq!(&*keys.decrypt(&out).unwrap(), &plaintext);
    }

    #[test]
    fn round_trip_tags_and_bad_padding() {
        let keys = CbcKeys::derive(&[7u8; 32], b"OLM_KEYS");
        for len in [0usize, 1, 15, 16, 17, 100] {
            let plaintext = vec![0xA5u8; len];
            let mut out = vec![9u8];
            keys.encrypt_into(&plaintext, &mut out);
            assert_eq!(out.len(), 1 + CbcKeys::ciphertext_len(len));
            assert_eq!(&*keys.decrypt(&out[1..]).unwrap(), plaintext.as_slice());
            let tag = keys.mac(&[&out[..1], &out[1..]]);
            assert_eq!(keys.verify(&[&out], &tag), Ok(()));
            assert_eq!(keys.verify(&[&out[1..]], &tag), Err(CbcFailure));
            assert_eq!(keys.verify(&[&out], &tag[..7]), Err(CbcFailure));
        }
        assert_eq!(keys.decrypt(&[0u8; 15]), Err(CbcFailure));
        assert_eq!(keys.decrypt(&[]), Err(CbcFailure));
    }
}

//! The primitive floor shared by the `pairwise` and `room` benches
//! (included with `#[path]`): the same HKDF, HMAC chain step and AES-256-GCM
//! calls the crate makes, written directly against the primitive crates, and
//! the labels they use (PROTOCOL.md section 3).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use sha2::Sha256;

pub(crate) const L_CHAIN_MESSAGE: &[u8] = b"roomseal/v2/chain/message";
pub(crate) const L_CHAIN_NEXT: &[u8] = b"roomseal/v2/chain/next";
pub(crate) const L_MESSAGE_KEY: &[u8] = b"roomseal/v2/message-key";

/// A seeded generator, so fixtures are the same on every run.
pub(crate) fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// HKDF-SHA-256 with `N` bytes of output.
pub(crate) fn hkdf<const N: usize>(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut okm = [0u8; N];
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, &mut okm)
        .expect("N is small");
    okm
}

/// The 16 fresh bytes every message mixes into its key (PROTOCOL.md 8.4,
/// "Cost of the salt"), drawn from the operating system as the crate does.
pub(crate) fn salt_draw() -> [u8; 16] {
    use rand::Rng;
    let mut salt = [0u8; 16];
    rand::rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut salt);
    salt
}

/// A message key and nonce: 44 bytes of HKDF with the message's salt as
/// HKDF's salt, split 32 + 12.
pub(crate) fn hkdf44(salt: &[u8; 16], ikm: &[u8], info: &[u8]) -> ([u8; 32], [u8; 12]) {
    let okm = hkdf::<44>(Some(salt), ikm, info);
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    key.copy_from_slice(&okm[..32]);
    nonce.copy_from_slice(&okm[32..]);
    (key, nonce)
}

/// One chain step: the message seed and the next chain key from one HMAC
/// key schedule.
pub(crate) fn hmac_pair(key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let base = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    let mut seed = base.clone();
    seed.update(L_CHAIN_MESSAGE);
    let mut next = base;
    next.update(L_CHAIN_NEXT);
    (
        seed.finalize().into_bytes().into(),
        next.finalize().into_bytes().into(),
    )
}

/// AES-256-GCM encryption in place, including the key schedule (every
/// message has a fresh key).
pub(crate) fn aes_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> Tag {
    Aes256Gcm::new(&(*key).into())
        .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
        .expect("short plaintext")
}

/// AES-256-GCM decryption in place, including the key schedule.
pub(crate) fn aes_open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &Tag) {
    Aes256Gcm::new(&(*key).into())
        .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), tag)
        .expect("tag verifies");
}

/// The size in bytes of a pickle's unpadded base64 text.
pub(crate) fn base64_len_to_bytes(text: &str) -> usize {
    use base64ct::Encoding;
    base64ct::Base64Unpadded::decode_vec(text)
        .expect("pickles are unpadded base64")
        .len()
}

//! HMAC-SHA-256 and HKDF-SHA-256 with fixed-size outputs, and every label the
//! protocol feeds them. PROTOCOL.md lists the same labels.

use hkdf::Hkdf;
use hmac::digest::FixedOutput;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use zeroize::Zeroizing;

use super::Secret;

/// Every KDF info string, HMAC input and signature context of protocol
/// version 1. Each is distinct, so no two derivations can collide.
pub(crate) mod label {
    /// HKDF info: root key and first chain key from the triple DH.
    pub(crate) const TRIPLE_DH: &[u8] = b"roomseal/v2/3dh";
    /// HKDF info: next root key and chain key from a ratchet DH.
    pub(crate) const ROOT: &[u8] = b"roomseal/v2/root";
    /// HMAC input: the message-key seed of a chain step.
    pub(crate) const CHAIN_MESSAGE: &[u8] = b"roomseal/v2/chain/message";
    /// HMAC input: the next chain key of a chain step.
    pub(crate) const CHAIN_NEXT: &[u8] = b"roomseal/v2/chain/next";
    /// HKDF info: AES-256-GCM key and nonce of one pairwise message.
    pub(crate) const MESSAGE_KEY: &[u8] = b"roomseal/v2/message-key";
    /// SHA-256 prefix: the session id of a pairwise session.
    pub(crate) const SESSION_ID: &[u8] = b"roomseal/v2/session-id";
    /// SHA-256 prefix: the static part of a pairwise message's associated data.
    pub(crate) const SESSION_AD: &[u8] = b"roomseal/v2/session-ad";
    /// Signature context: the initiator binds its Ed25519 key to a new session.
    pub(crate) const SESSION_BINDING: &[u8] = b"roomseal/v2/session-binding";
    /// Signature context: a signed one-time key.
    pub(crate) const ONE_TIME_KEY: &[u8] = b"roomseal/v2/one-time-key";
    /// Signature context: a signed fallback key.
    pub(crate) const FALLBACK_KEY: &[u8] = b"roomseal/v2/fallback-key";
    /// Signature context: a device-key bundle.
    pub(crate) const DEVICE_KEYS: &[u8] = b"roomseal/v2/device-keys";
    /// Signature context: any message an app signs with the device key, so
    /// an app signature can never be taken for a protocol signature.
    pub(crate) const APP_MESSAGE: &[u8] = b"roomseal/v2/app-message";
    /// Pickle associated data prefix; the object type follows.
    pub(crate) const PICKLE: &[u8] = b"roomseal/v2/pickle/";
    /// HKDF info prefix: the subkey of the app's pickle key for one object
    /// type (the type's name follows).
    pub(crate) const PICKLE_KEY: &[u8] = b"roomseal/v2/pickle-key/";
    /// HKDF info: the subkey of the app's pickle key that seals durable
    /// store records.
    pub(crate) const STORE_SEAL_KEY: &[u8] = b"roomseal/v2/store/seal-key";
    /// HKDF info: the subkey of the app's pickle key that turns a record's
    /// natural id into its record id (HMAC-SHA-256).
    pub(crate) const STORE_ID_KEY: &[u8] = b"roomseal/v2/store/id-key";
    /// Associated-data prefix of a store record (schema version, kind and
    /// record id follow).
    pub(crate) const STORE_RECORD: &[u8] = b"roomseal/v2/store/record";
    /// HMAC inputs: advancing part 0, 1, 2 or 3 of the group ratchet.
    pub(crate) const GROUP_RATCHET: [&[u8]; 4] = [
        b"roomseal/v2/group/ratchet/0",
        b"roomseal/v2/group/ratchet/1",
        b"roomseal/v2/group/ratchet/2",
        b"roomseal/v2/group/ratchet/3",
    ];
    /// Olm v1 (Matrix): HKDF info of the root key and first chain key from
    /// the triple DH.
    pub(crate) const OLM_ROOT: &[u8] = b"OLM_ROOT";
    /// Olm v1: HKDF info of the next root key and chain key of a ratchet
    /// step.
    pub(crate) const OLM_RATCHET: &[u8] = b"OLM_RATCHET";
    /// Olm v1: HKDF info expanding a message key into AES key, MAC key, IV.
    pub(crate) const OLM_KEYS: &[u8] = b"OLM_KEYS";
    /// Olm v1: HMAC input of a chain step giving the message key.
    pub(crate) const OLM_CHAIN_MESSAGE: &[u8] = &[0x01];
    /// Olm v1: HMAC input of a chain step giving the next chain key.
    pub(crate) const OLM_CHAIN_NEXT: &[u8] = &[0x02];
    /// Megolm v1: HMAC inputs advancing part 0, 1, 2 or 3 of the ratchet.
    pub(crate) const MEGOLM_RATCHET: [&[u8]; 4] = [&[0x00], &[0x01], &[0x02], &[0x03]];
    /// Megolm v1: HKDF info expanding the ratchet into AES key, MAC key, IV.
    pub(crate) const MEGOLM_KEYS: &[u8] = b"MEGOLM_KEYS";
    /// libolm pickles: HKDF info expanding the pickle key.
    pub(crate) const LIBOLM_PICKLE: &[u8] = b"Pickle";
    /// HKDF info: AES-256-GCM key and nonce of one group message.
    pub(crate) const GROUP_MESSAGE_KEY: &[u8] = b"roomseal/v2/group/message-key";
    /// Associated data prefix of a group message; room and session follow.
    pub(crate) const GROUP_MESSAGE_AD: &[u8] = b"roomseal/v2/group/message-ad";
    /// Signature context: a group message.
    pub(crate) const GROUP_MESSAGE_SIGNATURE: &[u8] = b"roomseal/v2/group/message-signature";
    /// Signature context: a signed group session key.
    pub(crate) const GROUP_SESSION_KEY: &[u8] = b"roomseal/v2/group/session-key";
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA-256 keyed with a 32-byte key.
///
/// HMAC zero-pads a key shorter than the hash block (RFC 2104, section 2), so
/// keying with the padded 64-byte block is the same function and cannot fail.
fn keyed(key: &[u8; 32]) -> HmacSha256 {
    let mut block = [0u8; 64];
    let (head, _) = block.split_at_mut(32);
    head.copy_from_slice(key);
    let mac = HmacSha256::new(&block.into());
    // Only the first half ever held the key; the second half is still zero.
    let (head, _) = block.split_at_mut(32);
    zeroize::Zeroize::zeroize(head);
    mac
}

/// HMAC-SHA-256 of two inputs under one key, keying once.
///
/// Both outputs stay on the stack (wiped on drop): callers box only what
/// they keep.
pub(crate) fn hmac_pair(
    key: &[u8; 32],
    first: &[u8],
    second: &[u8],
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let base = keyed(key);
    let mut a = base.clone();
    a.update(first);
    let mut b = base;
    b.update(second);
    (
        Zeroizing::new(a.finalize().into_bytes().into()),
        Zeroizing::new(b.finalize().into_bytes().into()),
    )
}

/// HMAC-SHA-256 of `data` under `key`, on the stack (wiped on drop).
pub(crate) fn hmac(key: &[u8; 32], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = keyed(key);
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// HMAC-SHA-256 of `data` under `key`, written over `out`: whatever `out`
/// held is overwritten by the output, so a chain step needs no wipe of the
/// value it replaces.
pub(crate) fn hmac_into(key: &[u8; 32], data: &[u8], out: &mut [u8; 32]) {
    let mut mac = keyed(key);
    mac.update(data);
    mac.finalize_into(out.into());
}

/// One step of an HMAC chain in place: `value` becomes HMAC(`value`,
/// `data`), overwriting the key it was computed under.
pub(crate) fn hmac_step(value: &mut [u8; 32], data: &[u8]) {
    let mut mac = keyed(value);
    mac.update(data);
    mac.finalize_into(value.into());
}

/// HMAC-SHA-256 of the concatenation of `parts` under a 32-byte key.
pub(crate) fn hmac_parts(key: &[u8; 32], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut mac = keyed(key);
    for part in parts {
        mac.update(part);
    }
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// HKDF-SHA-256 with `N` bytes of output.
pub(crate) fn hkdf<const N: usize>(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> Secret<N> {
    let mut okm = Zeroizing::new([0u8; N]);
    hkdf_into(salt, ikm, info, &mut okm);
    Secret::from_mut(&mut okm)
}

/// HKDF-SHA-256 straight into `okm` (no heap copy of the output).
pub(crate) fn hkdf_into<const N: usize>(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
    okm: &mut [u8; N],
) {
    const { assert!(N <= 255 * 32, "HKDF-SHA-256 output limit") };
    // `expand` fails only for outputs over 255 hash blocks, ruled out at
    // compile time just above.
    let _ = Hkdf::<Sha256>::new(salt, ikm).expand(info, okm);
}

/// SHA-256 over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_matches_rfc4231_case_2_shape_with_32_byte_key() {
        // RFC 4231 test case 1 uses a 20-byte key; we check our 32-byte keying
        // against the crate's own variable-length keying, which follows the RFC.
        let key = [0x0bu8; 32];
        let mut reference = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
        reference.update(b"Hi There");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        let (a, b) = hmac_pair(&key, b"Hi There", b"other");
        assert_eq!(&*a, &expected);
        let mut other = keyed(&key);
        other.update(b"other");
        let other: [u8; 32] = other.finalize().into_bytes().into();
        assert_eq!(&*b, &other);
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
        let salt = hex("000102030405060708090a0b0c");
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let okm = hkdf::<42>(Some(&salt), &ikm, &info);
        assert_eq!(
            okm.expose().to_vec(),
            hex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
    }

    #[test]
    fn labels_are_distinct() {
        let all = [
            label::TRIPLE_DH,
            label::ROOT,
            label::CHAIN_MESSAGE,
            label::CHAIN_NEXT,
            label::MESSAGE_KEY,
            label::SESSION_ID,
            label::SESSION_AD,
            label::SESSION_BINDING,
            label::ONE_TIME_KEY,
            label::FALLBACK_KEY,
            label::DEVICE_KEYS,
            label::APP_MESSAGE,
            label::PICKLE,
            label::PICKLE_KEY,
            label::STORE_SEAL_KEY,
            label::STORE_ID_KEY,
            label::STORE_RECORD,
            label::GROUP_RATCHET[0],
            label::GROUP_RATCHET[1],
            label::GROUP_RATCHET[2],
            label::GROUP_RATCHET[3],
            label::GROUP_MESSAGE_KEY,
            label::GROUP_MESSAGE_AD,
            label::GROUP_MESSAGE_SIGNATURE,
            label::GROUP_SESSION_KEY,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
                assert!(!a.starts_with(b) && !b.starts_with(a), "prefix");
            }
        }
    }
}

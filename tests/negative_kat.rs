//! Negative known-answer tests: the points, keys and signatures that weak
//! Curve25519/Ed25519 implementations accept, each rejected at every place
//! it can enter roomseal.
//!
//! The byte values are facts taken from public test suites and papers (no
//! code or prose copied):
//!
//! - X25519 points of small order: the u-coordinates of the 8-torsion
//!   points (0, 1, the two points of order 8, p - 1) and the non-canonical
//!   encodings p and p + 1, as listed by libsodium's `has_small_order`
//!   blacklist and in RFC 7748's discussion of small-order inputs; each also
//!   with bit 255 set (which X25519 ignores), as Wycheproof's
//!   `x25519_test.json` exercises.
//! - Ed25519 points of small order: the eight encodings of the 8-torsion
//!   points, and the non-canonical encodings of them (an x of zero with the
//!   sign bit set, and y >= p), as listed in Chalkias, Garillot and
//!   Nikolaenko, "Taming the many EdDSAs" (2020), and libsodium's
//!   `ge25519_has_small_order` blacklist.
//! - The group order l (RFC 8032, section 5.1).
//!
//! The signatures are made here from those facts with keys whose secrets
//! the test holds (read from the accounts' and sessions' pickles with
//! AES-256-GCM, as PROTOCOL.md section 8 describes): `s + k*l` for the
//! scalar, small-order and non-canonical `R`, and honest `R` plus a torsion
//! point. Each is first shown to satisfy a lax (cofactored, or reducing)
//! verification equation, so the rejection is the strict check's doing.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64ct::{Base64Unpadded, Encoding};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::{
    Account, AccountError, Curve25519PublicKey, DecodeError, DeviceKeys, DeviceMessage,
    Ed25519PublicKey, Ed25519Signature, EncryptedEvent, Endpoint, ExportedSessionKey, GroupError,
    GroupMessage, GroupSessionId, IdentityKeys, InboundGroupSession, KeyError,
    OutboundGroupSession, PickleError, PickleKey, RoomError, RoomKeyShare, SelfSignedDevice,
    Session, SessionError, SessionKey, SignedOneTimeKey,
};
use sha2::{Digest, Sha256, Sha512};

const ROOM: &str = "!room:example.org";
const BOB: (&str, &str) = ("@bob:example.org", "BOBPHONE");
const ALICE: (&str, &str) = ("@alice:example.org", "ALICEPHONE");

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn hex32(text: &str) -> [u8; 32] {
    assert_eq!(text.len(), 64);
    std::array::from_fn(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
}

fn with_high_bit(mut bytes: [u8; 32]) -> [u8; 32] {
    bytes[31] |= 0x80;
    bytes
}

// ---------------------------------------------------------------------------
// Facts
// ---------------------------------------------------------------------------

/// X25519 u-coordinates (little-endian) of points of small order, below
/// 2^255: 0, 1, the two points of order 8, p - 1, p (= 0) and p + 1 (= 1).
const X25519_SMALL_ORDER: [&str; 7] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

/// Every 32-byte encoding of a small-order X25519 point: the seven values
/// above, and each with bit 255 set.
fn x25519_small_order() -> Vec<[u8; 32]> {
    let low: Vec<[u8; 32]> = X25519_SMALL_ORDER.iter().map(|h| hex32(h)).collect();
    low.iter()
        .copied()
        .chain(low.iter().map(|&u| with_high_bit(u)))
        .collect()
}

/// The canonical encodings of the eight Ed25519 torsion points.
const ED25519_TORSION: [&str; 8] = [
    // identity (order 1)
    "0100000000000000000000000000000000000000000000000000000000000000",
    // order 2
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    // order 4 (y = 0), both signs of x
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    // order 8, both signs of x, for each of the two y
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
];

/// Non-canonical encodings of torsion points: x = 0 with the sign bit set
/// (identity, order 2), y = p (the order-4 points) and y = p + 1 (identity).
const ED25519_TORSION_NON_CANONICAL: [&str; 6] = [
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

/// The Ed25519 group order l = 2^252 + 27742317777372353535851937790883648493,
/// little-endian.
const GROUP_ORDER: &str = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";

const IDENTITY: &str = "0100000000000000000000000000000000000000000000000000000000000000";

/// The field prime p = 2^255 - 19, little-endian.
const FIELD_PRIME: &str = "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";

/// Little-endian addition of 32-byte integers (the sum must fit).
fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "sum overflows 256 bits");
    out
}

/// Non-canonical encodings (y + p, either sign) of points that are not of
/// small order: y from 2 to 18 (the only y whose y + p fits in 255 bits),
/// for those y that are on the curve. Computed, and checked canonical-valid.
fn ed25519_non_canonical_large_order() -> Vec<[u8; 32]> {
    let p = hex32(FIELD_PRIME);
    let mut out = Vec::new();
    for y in 2u8..=18 {
        let mut canonical = [0u8; 32];
        canonical[0] = y;
        for sign in [0u8, 0x80] {
            canonical[31] = sign;
            let Ok(key) = VerifyingKey::from_bytes(&canonical) else {
                continue;
            };
            if key.is_weak() {
                continue;
            }
            // The canonical encoding is a valid roomseal key ...
            assert!(Ed25519PublicKey::from_bytes(&canonical).is_ok());
            let mut y_plus_p = add_le(
                &[
                    y, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0,
                ],
                &p,
            );
            y_plus_p[31] |= sign;
            // ... and the other one decodes to the same point.
            assert_eq!(
                VerifyingKey::from_bytes(&y_plus_p)
                    .unwrap()
                    .to_edwards()
                    .compress()
                    .to_bytes(),
                canonical
            );
            out.push(y_plus_p);
        }
    }
    assert!(!out.is_empty());
    out
}

/// Encodings that are not curve points at all (y from 2 to 18 whose
/// x^2 is not a square).
fn ed25519_off_curve() -> Vec<[u8; 32]> {
    let out: Vec<[u8; 32]> = (2u8..=18)
        .map(|y| {
            let mut bytes = [0u8; 32];
            bytes[0] = y;
            bytes
        })
        .filter(|bytes| VerifyingKey::from_bytes(bytes).is_err())
        .collect();
    assert!(!out.is_empty());
    out
}

#[test]
fn facts_are_what_they_claim() {
    // Every X25519 encoding gives the all-zero shared secret, whatever the
    // private key: the points have small order.
    for u in x25519_small_order() {
        for k in [[1u8; 32], [0x5a; 32], [0xff; 32]] {
            assert_eq!(x25519_dalek::x25519(k, u), [0u8; 32], "{u:02x?}");
            let secret = x25519_dalek::StaticSecret::from(k);
            assert!(
                !secret
                    .diffie_hellman(&x25519_dalek::PublicKey::from(u))
                    .was_contributory()
            );
        }
    }
    // The torsion encodings are the eight distinct points of order
    // dividing 8, each canonical; the others decode to one of them.
    let torsion: Vec<[u8; 32]> = ED25519_TORSION.iter().map(|h| hex32(h)).collect();
    for t in &torsion {
        let key = VerifyingKey::from_bytes(t).unwrap();
        assert!(key.is_weak());
        assert_eq!(key.to_edwards().compress().to_bytes(), *t, "canonical");
        assert_eq!(
            key.to_edwards().mul_by_cofactor().compress().to_bytes(),
            hex32(IDENTITY)
        );
    }
    for (i, a) in torsion.iter().enumerate() {
        assert!(!torsion[i + 1..].contains(a), "distinct");
    }
    for t in ED25519_TORSION_NON_CANONICAL {
        let bytes = hex32(t);
        let point = VerifyingKey::from_bytes(&bytes).unwrap().to_edwards();
        assert!(point.is_small_order());
        assert_ne!(point.compress().to_bytes(), bytes, "non-canonical");
        assert!(torsion.contains(&point.compress().to_bytes()));
    }
    // l: the order of the scalar field the signatures below are computed in.
    let key = SigningKey::from_bytes(&[7; 32]);
    let a = key.to_scalar();
    let l = reduce(a, &hex32(GROUP_ORDER));
    assert_eq!(l.to_bytes(), [0u8; 32], "l is 0 modulo l");
    let mut one = [0u8; 32];
    one[0] = 1;
    let l_plus_one = reduce(a, &add_le(&hex32(GROUP_ORDER), &one));
    assert_eq!(l_plus_one.to_bytes(), one, "l + 1 is 1 modulo l");
}

// ---------------------------------------------------------------------------
// Secrets of our own objects (PROTOCOL.md 8)
// ---------------------------------------------------------------------------

fn key_bytes() -> [u8; 32] {
    [0x33; 32]
}

fn pickle_key() -> PickleKey {
    PickleKey::from_bytes(&mut key_bytes())
}

/// The 64 bytes a session pickle is bound to: its account's identity keys.
fn owner(keys: IdentityKeys) -> Vec<u8> {
    [&keys.ed25519.to_bytes()[..], keys.curve25519.as_bytes()].concat()
}

/// The AES-256-GCM key of pickles of `type_name` (8.1: a subkey per type).
fn pickle_cipher(type_name: &str) -> Aes256Gcm {
    let mut subkey = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(None, &key_bytes())
        .expand(
            &[b"roomseal/v2/pickle-key/", type_name.as_bytes()].concat(),
            &mut subkey,
        )
        .unwrap();
    Aes256Gcm::new(&subkey.into())
}

/// 8.1: type, version, generation and owner (empty but for sessions).
fn pickle_aad(type_name: &str, generation: &[u8], owner: &[u8]) -> Vec<u8> {
    [
        b"roomseal/v2/pickle/",
        type_name.as_bytes(),
        &[2],
        generation,
        owner,
    ]
    .concat()
}

/// The contents of a pickle of `type_name` bound to `owner`.
fn open_owned_pickle(pickle: &str, type_name: &str, owner: &[u8]) -> Vec<u8> {
    let bytes = Base64Unpadded::decode_vec(pickle).unwrap();
    let nonce: [u8; 12] = bytes[9..21].try_into().unwrap();
    pickle_cipher(type_name)
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &bytes[21..],
                aad: &pickle_aad(type_name, &bytes[1..9], owner),
            },
        )
        .unwrap()
}

fn open_pickle(pickle: &str, type_name: &str) -> Vec<u8> {
    open_owned_pickle(pickle, type_name, &[])
}

/// A pickle of `contents` bound to `owner`, sealed as PROTOCOL.md 8.1
/// describes (generation 1).
fn seal_owned_pickle(contents: &[u8], type_name: &str, owner: &[u8]) -> String {
    let nonce = [9u8; 12];
    let generation = 1u64.to_be_bytes();
    let sealed = pickle_cipher(type_name)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: contents,
                aad: &pickle_aad(type_name, &generation, owner),
            },
        )
        .unwrap();
    Base64Unpadded::encode_string(&[&[2u8][..], &generation, &nonce, &sealed].concat())
}

fn seal_pickle(contents: &[u8], type_name: &str) -> String {
    seal_owned_pickle(contents, type_name, &[])
}

/// The device's Ed25519 signing key, from the account pickle (8.2: the
/// seed is the first field).
fn device_signing_key(account: &Account) -> SigningKey {
    let contents = open_pickle(
        &account.pickle_with_rng(&pickle_key(), &mut rng(0)),
        "account",
    );
    let key = SigningKey::from_bytes(&contents[..32].try_into().unwrap());
    assert_eq!(
        key.verifying_key().to_bytes(),
        account.identity_keys().ed25519.to_bytes()
    );
    key
}

/// The group session's Ed25519 signing key: the 32 bytes of its pickle
/// (11.8) whose public key is the session id.
fn group_signing_key(session: &OutboundGroupSession) -> SigningKey {
    let contents = open_pickle(
        &session.pickle_with_rng(&pickle_key(), &mut rng(0)),
        "outbound-group-session",
    );
    contents
        .windows(32)
        .map(|w| SigningKey::from_bytes(&w.try_into().unwrap()))
        .find(|k| k.verifying_key().to_bytes() == *session.session_id().as_bytes())
        .expect("the signing seed is in the pickle")
}

// ---------------------------------------------------------------------------
// Signature forging (with the signer's own key: these are the signatures a
// malicious signer, or a lax verifier's attacker, could present)
// ---------------------------------------------------------------------------

/// `bytes` (a little-endian integer of any length) modulo l, in the scalar
/// type of `witness` (curve25519-dalek's `Scalar`, reached through
/// ed25519-dalek without naming it).
fn reduce<S>(witness: S, bytes: &[u8]) -> S
where
    S: Copy + From<u64> + std::ops::Mul<Output = S> + std::ops::Add<Output = S>,
{
    let _ = witness;
    let base = S::from(256);
    bytes
        .iter()
        .rev()
        .fold(S::from(0), |acc, &b| acc * base + S::from(u64::from(b)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// s + k*l for k = 1, 2, 8, 15 (R honest).
    NonCanonicalS,
    /// R a canonical torsion point, s = h*a: satisfies the cofactored
    /// equation (and, for the identity, the cofactorless one).
    SmallOrderR,
    /// R a non-canonical encoding of a torsion point, s = h*a.
    NonCanonicalR,
    /// R = r*B + T for a torsion point T != identity, s = r + h*a.
    MixedR,
}

struct Forged {
    name: String,
    kind: Kind,
    /// The torsion point in `R` (all of `R` for small-order `R`).
    torsion: Option<[u8; 32]>,
    signature: [u8; 64],
}

fn signature(r: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(r);
    out[32..].copy_from_slice(s);
    out
}

/// Every forged variant of a signature by `key` over `message`, each shown
/// to pass a lax check and to fail ed25519-dalek's strict one.
fn forge(key: &SigningKey, message: &[u8]) -> Vec<Forged> {
    let a = key.to_scalar();
    let public = key.verifying_key();
    let big_a = public.to_edwards();
    let base = big_a * a.invert();
    let hram = |r: &[u8; 32]| {
        let digest = Sha512::new()
            .chain_update(r)
            .chain_update(public.as_bytes())
            .chain_update(message)
            .finalize();
        reduce(a, &digest)
    };
    let point = |bytes: &[u8; 32]| VerifyingKey::from_bytes(bytes).unwrap().to_edwards();
    let identity = hex32(IDENTITY);
    // [8]([s]B - [h]A - R) = identity, with s taken modulo l.
    let cofactored = |sig: &[u8; 64]| {
        let r: [u8; 32] = sig[..32].try_into().unwrap();
        let s = reduce(a, &sig[32..]);
        let lhs = base * s - big_a * hram(&r) - point(&r);
        lhs.mul_by_cofactor().compress().to_bytes() == identity
    };

    // An honest signature from this arithmetic (nonce from a fixed seed):
    // the strict check accepts it, so `base`, `hram` and `reduce` are right.
    let r = reduce(a, &Sha512::digest([b"nonce".as_slice(), message].concat()));
    let honest_r = (base * r).compress().to_bytes();
    let honest = signature(&honest_r, &(r + hram(&honest_r) * a).to_bytes());
    public
        .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&honest))
        .expect("the arithmetic makes valid signatures");

    let mut out = Vec::new();
    let l = hex32(GROUP_ORDER);
    let s_honest: [u8; 32] = honest[32..].try_into().unwrap();
    let mut s = s_honest;
    for k in 1..=15 {
        s = add_le(&s, &l);
        if [1, 2, 8, 15].contains(&k) {
            out.push(Forged {
                name: format!("s + {k}l"),
                kind: Kind::NonCanonicalS,
                torsion: None,
                signature: signature(&honest_r, &s),
            });
        }
    }
    for t in ED25519_TORSION {
        let t = hex32(t);
        out.push(Forged {
            name: format!("R = torsion {}", hex(&t)),
            kind: Kind::SmallOrderR,
            torsion: Some(t),
            signature: signature(&t, &(hram(&t) * a).to_bytes()),
        });
        if t != identity {
            let mixed = (base * r + point(&t)).compress().to_bytes();
            out.push(Forged {
                name: format!("R = honest + torsion {}", hex(&t)),
                kind: Kind::MixedR,
                torsion: Some(t),
                signature: signature(&mixed, &(r + hram(&mixed) * a).to_bytes()),
            });
        }
    }
    for t in ED25519_TORSION_NON_CANONICAL {
        let t = hex32(t);
        out.push(Forged {
            name: format!("R = non-canonical torsion {}", hex(&t)),
            kind: Kind::NonCanonicalR,
            torsion: Some(t),
            signature: signature(&t, &(hram(&t) * a).to_bytes()),
        });
    }
    for forged in &out {
        let sig = ed25519_dalek::Signature::from_bytes(&forged.signature);
        assert!(
            cofactored(&forged.signature),
            "{}: passes the cofactored equation",
            forged.name
        );
        assert!(
            public.verify_strict(message, &sig).is_err(),
            "{}: strict verification rejects it",
            forged.name
        );
    }
    // The identity R even passes dalek's non-strict (cofactorless) check.
    let identity_r = out.iter().find(|f| f.signature[..32] == identity).unwrap();
    assert!(
        public
            .verify(
                message,
                &ed25519_dalek::Signature::from_bytes(&identity_r.signature)
            )
            .is_ok()
    );
    assert_eq!(out.len(), 4 + 8 + 7 + 6);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

struct Devices {
    alice: Account,
    bob: Account,
    bob_bundle: DeviceKeys,
    bob_device: SelfSignedDevice,
    bob_one_time_key: SignedOneTimeKey,
}

fn devices() -> Devices {
    let alice = Account::new_with_rng(&mut rng(1));
    let mut bob = Account::new_with_rng(&mut rng(2));
    bob.generate_one_time_keys_with_rng(2, &mut rng(3));
    let bob_bundle = bob.device_keys(BOB.0, BOB.1).unwrap();
    let bob_device = bob_bundle.check_self_signature().unwrap();
    let published = bob.one_time_keys();
    let bob_one_time_key = published[0].clone();
    bob.mark_keys_as_published(&published);
    Devices {
        alice,
        bob,
        bob_bundle,
        bob_device,
        bob_one_time_key,
    }
}

fn snapshot_account(account: &Account) -> String {
    account.pickle_with_rng(&pickle_key(), &mut rng(0xEE))
}

fn snapshot_session(session: &Session) -> String {
    session.pickle_with_rng(&pickle_key(), &mut rng(0xEE))
}

fn x25519_public(seed: u8) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([seed; 32])).to_bytes()
}

/// The bytes of the one-time-key signature (PROTOCOL.md 5.1).
fn one_time_key_signed_bytes(id: u64, key: &[u8; 32], fallback: bool) -> Vec<u8> {
    let label: &[u8] = if fallback {
        b"roomseal/v2/fallback-key"
    } else {
        b"roomseal/v2/one-time-key"
    };
    [label, &id.to_be_bytes(), key].concat()
}

/// The bytes of the device-bundle signature (PROTOCOL.md 5.2).
fn bundle_signed_bytes(
    user: &str,
    device: &str,
    keys: &IdentityKeys,
    protocols: &[&str],
) -> Vec<u8> {
    let short = |s: &str| [&(s.len() as u16).to_be_bytes()[..], s.as_bytes()].concat();
    let mut out = b"roomseal/v2/device-keys".to_vec();
    out.extend(short(user));
    out.extend(short(device));
    out.extend(keys.ed25519.as_bytes());
    out.extend(keys.curve25519.as_bytes());
    out.extend((protocols.len() as u16).to_be_bytes());
    for p in protocols {
        out.extend(short(p));
    }
    out
}

fn signed_one_time_key(
    signer: &SigningKey,
    id: u64,
    key: [u8; 32],
    fallback: bool,
) -> SignedOneTimeKey {
    SignedOneTimeKey {
        key_id: roomseal::KeyId(id),
        key: Curve25519PublicKey::from_bytes(key),
        fallback,
        signature: Ed25519Signature::from_bytes(
            &signer
                .sign(&one_time_key_signed_bytes(id, &key, fallback))
                .to_bytes(),
        ),
    }
}

fn signed_bundle(signer: &SigningKey, keys: IdentityKeys) -> DeviceKeys {
    DeviceKeys {
        user_id: BOB.0.to_owned(),
        device_id: BOB.1.to_owned(),
        keys,
        protocols: vec!["roomseal.v2".to_owned()],
        signature: Ed25519Signature::from_bytes(
            &signer
                .sign(&bundle_signed_bytes(BOB.0, BOB.1, &keys, &["roomseal.v2"]))
                .to_bytes(),
        ),
    }
}

/// A pre-key message built by hand (PROTOCOL.md 6.2, 6.3, 7.2): the binding
/// is signed with `signer` over the session id of these keys, so it
/// verifies; the ciphertext is 16 zero bytes.
fn pre_key_message(
    signer: &SigningKey,
    one_time_key: [u8; 32],
    base_key: [u8; 32],
    identity: [u8; 32],
    responder_identity: [u8; 32],
    ratchet_key: [u8; 32],
) -> DeviceMessage {
    let ed = signer.verifying_key().to_bytes();
    let session_id: [u8; 32] = Sha256::new()
        .chain_update(b"roomseal/v2/session-id")
        .chain_update(ed)
        .chain_update(identity)
        .chain_update(base_key)
        .chain_update(one_time_key)
        .finalize()
        .into();
    let binding = signer.sign(
        &[
            &b"roomseal/v2/session-binding"[..],
            &session_id,
            &responder_identity,
        ]
        .concat(),
    );
    // 7.2: version 2, kind 0, the pre-key fields, then the normal message:
    // ratchet key, counters [8], salt [16], and a (wrong) tag [16].
    let bytes = [
        &[2u8, 0][..],
        &one_time_key,
        &base_key,
        &ed,
        &identity,
        &binding.to_bytes(),
        &ratchet_key,
        &[0; 8],
        &[0; 16],
        &[0; 16],
    ]
    .concat();
    let message = DeviceMessage::from_bytes(&bytes).unwrap();
    let DeviceMessage::PreKey(p) = &message else {
        panic!("pre-key message");
    };
    assert_eq!(p.session_id().as_bytes(), &session_id, "session id of 6.2");
    message
}

fn normal_message(ratchet_key: [u8; 32]) -> DeviceMessage {
    // 7.1: version 2, kind 1, ratchet key, counters, salt, tag.
    DeviceMessage::from_bytes(&[&[2u8, 1][..], &ratchet_key, &[0; 8], &[0; 16], &[0; 16]].concat())
        .unwrap()
}

// ---------------------------------------------------------------------------
// X25519: a small-order point wherever a peer key enters
// ---------------------------------------------------------------------------

#[test]
fn small_order_x25519_one_time_keys_are_rejected() {
    let Devices {
        alice,
        bob,
        bob_bundle,
        bob_device,
        ..
    } = devices();
    let bob_signer = device_signing_key(&bob);
    let mut endpoint = Endpoint::from_account(
        "@alice:example.org",
        "ALICE",
        Account::new_with_rng(&mut rng(1)),
    )
    .unwrap();
    let endpoint_before = endpoint.pickle_with_rng(&pickle_key(), &mut rng(0xEE));
    // Positive control: a genuine key signed the same way starts a session.
    let good = signed_one_time_key(&bob_signer, 77, x25519_public(5), false);
    assert!(alice.create_outbound_session(&bob_device, &good).is_ok());
    let expected = AccountError::Session(SessionError::LowOrderKey);
    for u in x25519_small_order() {
        // Curve25519 keys are not validated on parsing ...
        assert_eq!(Curve25519PublicKey::from_bytes(u).to_bytes(), u);
        for fallback in [false, true] {
            let key = signed_one_time_key(&bob_signer, 77, u, fallback);
            // ... the signature is fine ...
            key.verify(&bob_device.identity_keys().ed25519).unwrap();
            // ... and the exchange refuses the point.
            assert_eq!(
                alice.create_outbound_session(&bob_device, &key).err(),
                Some(expected),
                "{u:02x?}"
            );
            assert_eq!(
                endpoint.establish_session(&bob_bundle, &key).err(),
                Some(RoomError::Account(expected)),
                "{u:02x?}"
            );
        }
    }
    assert!(!endpoint.has_session(&bob_device.identity_keys().curve25519));
    assert_eq!(
        endpoint.pickle_with_rng(&pickle_key(), &mut rng(0xEE)),
        endpoint_before
    );
}

#[test]
fn small_order_x25519_identity_keys_in_bundles_are_rejected() {
    let Devices {
        alice,
        bob,
        bob_one_time_key,
        ..
    } = devices();
    let bob_signer = device_signing_key(&bob);
    let mut endpoint = Endpoint::from_account(
        "@alice:example.org",
        "ALICE",
        Account::new_with_rng(&mut rng(1)),
    )
    .unwrap();
    let expected = AccountError::Session(SessionError::LowOrderKey);
    // Positive control: the same construction with Bob's real key.
    let genuine = signed_bundle(&bob_signer, bob.identity_keys());
    assert_eq!(genuine, bob.device_keys(BOB.0, BOB.1).unwrap());
    for u in x25519_small_order() {
        let keys = IdentityKeys {
            ed25519: bob.identity_keys().ed25519,
            curve25519: Curve25519PublicKey::from_bytes(u),
        };
        // The bundle verifies (it is properly self-signed) ...
        let bundle = signed_bundle(&bob_signer, keys);
        let device = bundle.check_self_signature().unwrap();
        // ... but no session can be started with its identity key.
        assert_eq!(
            alice
                .create_outbound_session(&device, &bob_one_time_key)
                .err(),
            Some(expected),
            "{u:02x?}"
        );
        assert_eq!(
            endpoint.establish_session(&bundle, &bob_one_time_key).err(),
            Some(RoomError::Account(expected)),
            "{u:02x?}"
        );
        assert!(!endpoint.has_session(&Curve25519PublicKey::from_bytes(u)));
    }
}

#[test]
fn small_order_x25519_keys_in_pre_key_messages_are_rejected() {
    let Devices {
        alice,
        mut bob,
        bob_one_time_key,
        ..
    } = devices();
    let alice_signer = device_signing_key(&alice);
    let alice_curve = alice.identity_keys().curve25519.to_bytes();
    let bob_curve = bob.identity_keys().curve25519.to_bytes();
    let otk = bob_one_time_key.key.to_bytes();
    let before = snapshot_account(&bob);
    let mut bob_endpoint = Endpoint::from_account(
        BOB.0,
        BOB.1,
        Account::from_pickle(&before, &pickle_key()).unwrap(),
    )
    .unwrap();
    let endpoint_before = bob_endpoint.pickle_with_rng(&pickle_key(), &mut rng(0xEE));

    // Positive control: valid keys pass the binding and the exchanges and
    // fail only on the (zero) ciphertext.
    let control = pre_key_message(
        &alice_signer,
        otk,
        x25519_public(8),
        alice_curve,
        bob_curve,
        x25519_public(9),
    );
    let DeviceMessage::PreKey(p) = &control else {
        unreachable!()
    };
    assert_eq!(
        bob.create_inbound_session(p).err(),
        Some(AccountError::Session(SessionError::Authentication))
    );

    let expected = AccountError::Session(SessionError::LowOrderKey);
    for u in x25519_small_order() {
        for (place, message) in [
            (
                "base key",
                pre_key_message(
                    &alice_signer,
                    otk,
                    u,
                    alice_curve,
                    bob_curve,
                    x25519_public(9),
                ),
            ),
            (
                "identity key",
                pre_key_message(
                    &alice_signer,
                    otk,
                    x25519_public(8),
                    u,
                    bob_curve,
                    x25519_public(9),
                ),
            ),
            (
                "ratchet key",
                pre_key_message(
                    &alice_signer,
                    otk,
                    x25519_public(8),
                    alice_curve,
                    bob_curve,
                    u,
                ),
            ),
        ] {
            let DeviceMessage::PreKey(p) = &message else {
                unreachable!()
            };
            assert_eq!(
                bob.create_inbound_session(p).err(),
                Some(expected),
                "{place} {u:02x?}"
            );
            let sender = p.identity_keys().curve25519;
            assert_eq!(
                bob_endpoint
                    .receive_device_message(ALICE.0, &sender, &message)
                    .err(),
                Some(RoomError::Account(expected)),
                "{place} {u:02x?}"
            );
        }
    }
    // The one-time key was not consumed; nothing changed.
    assert_eq!(snapshot_account(&bob), before);
    assert_eq!(
        bob_endpoint.pickle_with_rng(&pickle_key(), &mut rng(0xEE)),
        endpoint_before
    );
}

#[test]
fn small_order_x25519_ratchet_keys_on_established_sessions_are_rejected() {
    let Devices {
        alice,
        mut bob,
        bob_device,
        bob_one_time_key,
        ..
    } = devices();
    let alice_key = alice.identity_keys().curve25519;
    let group =
        OutboundGroupSession::new_with_rng(ROOM, alice.identity_keys(), &mut rng(20)).unwrap();
    let share = RoomKeyShare {
        room_id: ROOM.to_owned(),
        sender_user_id: ALICE.0.to_owned(),
        sender_device_id: ALICE.1.to_owned(),
        session_key: group.session_key(),
        sender: alice.identity_keys(),
        recipient: bob.identity_keys(),
    };
    let mut alice_session = alice
        .create_outbound_session_with_rng(&bob_device, &bob_one_time_key, &mut rng(4))
        .unwrap();
    let first = alice_session.encrypt(&share.to_bytes()).unwrap();
    let second = alice_session.encrypt(b"two").unwrap();
    let DeviceMessage::PreKey(first_pre_key) = &first else {
        unreachable!()
    };
    // Bob twice: a plain account and session, and an endpoint (from a copy
    // of his account) that stores the share and keeps its session.
    let mut bob_endpoint = Endpoint::from_account(
        BOB.0,
        BOB.1,
        Account::from_pickle(&snapshot_account(&bob), &pickle_key()).unwrap(),
    )
    .unwrap();
    bob_endpoint
        .receive_device_message(ALICE.0, &alice_key, &first)
        .unwrap();
    let mut bob_session = bob
        .create_inbound_session_with_rng(first_pre_key, &mut rng(5))
        .unwrap()
        .session;
    let reply = bob_session.encrypt(b"reply").unwrap();
    alice_session.decrypt_with_rng(&reply, &mut rng(6)).unwrap();

    let alice_before = snapshot_session(&alice_session);
    let bob_before = snapshot_session(&bob_session);
    let endpoint_before = bob_endpoint.pickle_with_rng(&pickle_key(), &mut rng(0xEE));
    // Positive control: a valid new ratchet key fails only on the tag.
    for session in [&mut alice_session, &mut bob_session] {
        assert_eq!(
            session.decrypt(&normal_message(x25519_public(10))).err(),
            Some(SessionError::Authentication)
        );
    }
    for u in x25519_small_order() {
        // A normal message that announces a new chain with this key, to
        // either side.
        for session in [&mut alice_session, &mut bob_session] {
            assert_eq!(
                session.decrypt(&normal_message(u)).err(),
                Some(SessionError::LowOrderKey),
                "{u:02x?}"
            );
        }
        assert_eq!(
            bob_endpoint
                .receive_device_message(ALICE.0, &alice_key, &normal_message(u))
                .err(),
            Some(RoomError::Session(SessionError::LowOrderKey)),
            "{u:02x?}"
        );
        // Alice's genuine second pre-key message with its ratchet key
        // replaced: same session id, so it reaches the ratchet step.
        let mut bytes = second.to_bytes();
        bytes[194..226].copy_from_slice(&u);
        let tampered = DeviceMessage::from_bytes(&bytes).unwrap();
        assert_eq!(
            bob_session.decrypt(&tampered).err(),
            Some(SessionError::LowOrderKey),
            "{u:02x?}"
        );
        assert_eq!(
            bob_endpoint
                .receive_device_message(ALICE.0, &alice_key, &tampered)
                .err(),
            Some(RoomError::Session(SessionError::LowOrderKey)),
            "{u:02x?}"
        );
    }
    assert_eq!(snapshot_session(&alice_session), alice_before);
    assert_eq!(snapshot_session(&bob_session), bob_before);
    assert_eq!(
        bob_endpoint.pickle_with_rng(&pickle_key(), &mut rng(0xEE)),
        endpoint_before
    );
    assert_eq!(bob_session.decrypt(&second).unwrap(), b"two");
}

// ---------------------------------------------------------------------------
// Ed25519 public keys: small order and non-canonical, wherever they enter
// ---------------------------------------------------------------------------

/// Every rejected encoding with the error `Ed25519PublicKey::from_bytes`
/// must give.
fn bad_ed25519_keys() -> Vec<([u8; 32], KeyError)> {
    let mut out: Vec<([u8; 32], KeyError)> = ED25519_TORSION
        .iter()
        .map(|h| (hex32(h), KeyError::WeakKey))
        .collect();
    out.extend(
        ED25519_TORSION_NON_CANONICAL
            .iter()
            .map(|h| (hex32(h), KeyError::InvalidPoint)),
    );
    out.extend(
        ed25519_non_canonical_large_order()
            .into_iter()
            .map(|b| (b, KeyError::InvalidPoint)),
    );
    out.extend(
        ed25519_off_curve()
            .into_iter()
            .map(|b| (b, KeyError::InvalidPoint)),
    );
    out
}

#[test]
fn ed25519_public_key_parsing_rejects_small_order_and_non_canonical_points() {
    for (bytes, expected) in bad_ed25519_keys() {
        let text = Base64Unpadded::encode_string(&bytes);
        let padded = base64ct::Base64::encode_string(&bytes);
        assert_eq!(
            Ed25519PublicKey::from_bytes(&bytes),
            Err(expected),
            "{}",
            hex(&bytes)
        );
        assert_eq!(Ed25519PublicKey::from_slice(&bytes), Err(expected));
        assert_eq!(Ed25519PublicKey::from_base64(&text), Err(expected));
        assert_eq!(Ed25519PublicKey::from_base64(&padded), Err(expected));
        assert_eq!(text.parse::<Ed25519PublicKey>(), Err(expected));
        // A group session id is only a lookup key: it parses, but it names
        // no valid signing key (and so no session that could exist).
        let id = GroupSessionId::from_base64(&text).unwrap();
        assert_eq!(id.signing_key(), Err(expected));
        assert!(serde_json::from_str::<Ed25519PublicKey>(&format!("\"{text}\"")).is_err());
        assert!(serde_json::from_str::<GroupSessionId>(&format!("\"{text}\"")).is_ok());
    }
}

/// `bytes` with `at..at + 32` replaced.
fn replaced(bytes: &[u8], at: usize, with: &[u8; 32]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + 32].copy_from_slice(with);
    out
}

#[test]
fn ed25519_keys_are_rejected_wherever_they_enter() {
    let Devices {
        alice,
        bob,
        bob_bundle,
        bob_device,
        bob_one_time_key,
        ..
    } = devices();
    let mut alice_session = alice
        .create_outbound_session_with_rng(&bob_device, &bob_one_time_key, &mut rng(4))
        .unwrap();
    let pre_key = alice_session.encrypt(b"hello").unwrap().to_bytes();
    let mut outbound =
        OutboundGroupSession::new_with_rng(ROOM, alice.identity_keys(), &mut rng(20)).unwrap();
    let session_key = outbound.session_key().to_bytes().to_vec();
    let inbound = InboundGroupSession::new(&outbound.session_key()).unwrap();
    let export = inbound.export_at(0).unwrap().to_bytes().to_vec();
    let share = RoomKeyShare {
        room_id: ROOM.to_owned(),
        sender_user_id: ALICE.0.to_owned(),
        sender_device_id: ALICE.1.to_owned(),
        session_key: outbound.session_key(),
        sender: alice.identity_keys(),
        recipient: bob.identity_keys(),
    }
    .to_bytes()
    .to_vec();
    let envelope = serde_json::to_value(EncryptedEvent {
        algorithm: roomseal::ROOM_ALGORITHM.to_owned(),
        sender_key: alice.identity_keys().curve25519,
        session_id: outbound.session_id(),
        ciphertext: outbound.encrypt(b"{}").unwrap(),
    })
    .unwrap();
    let bundle = serde_json::to_value(&bob_bundle).unwrap();
    let alice_owner = owner(alice.identity_keys());
    let session_contents =
        open_owned_pickle(&snapshot_session(&alice_session), "session", &alice_owner);
    let inbound_contents = open_pickle(
        &inbound.pickle_with_rng(&pickle_key(), &mut rng(0)),
        "inbound-group-session",
    );
    let outbound_contents = open_pickle(
        &outbound.pickle_with_rng(&pickle_key(), &mut rng(0)),
        "outbound-group-session",
    );
    let n = ROOM.len();
    // The share's fixed part (12.1): version, type, then the room, sender
    // user and sender device ids (each BE16 length first).
    let ids = 2 + (2 + n) + (2 + ALICE.0.len()) + (2 + ALICE.1.len());

    // Positive controls: every carrier decodes unchanged.
    assert!(DeviceMessage::from_bytes(&pre_key).is_ok());
    assert!(SessionKey::from_bytes(&session_key).is_ok());
    assert!(ExportedSessionKey::from_bytes(&export).is_ok());
    assert!(RoomKeyShare::from_bytes(&share).is_ok());
    assert!(EncryptedEvent::from_json(&envelope.to_string()).is_ok());
    assert!(serde_json::from_value::<DeviceKeys>(bundle.clone()).is_ok());
    let alice_keys = alice.identity_keys();
    assert!(
        Session::from_pickle(
            &seal_owned_pickle(&session_contents, "session", &alice_owner),
            &pickle_key(),
            &alice_keys
        )
        .is_ok()
    );
    assert!(
        InboundGroupSession::from_pickle(
            &seal_pickle(&inbound_contents, "inbound-group-session"),
            &pickle_key()
        )
        .is_ok()
    );
    assert!(
        OutboundGroupSession::from_pickle(
            &seal_pickle(&outbound_contents, "outbound-group-session"),
            &pickle_key()
        )
        .is_ok()
    );

    let identity = DecodeError::InvalidValue("ed25519 identity key");
    let session_signing = DecodeError::InvalidValue("session signing key");
    for (bad, _) in bad_ed25519_keys() {
        let text = Base64Unpadded::encode_string(&bad);
        // Pre-key message: the initiator's Ed25519 key (7.2, bytes 66..98).
        assert_eq!(
            DeviceMessage::from_bytes(&replaced(&pre_key, 66, &bad)).err(),
            Some(identity)
        );
        // Session key (11.6): the session's key, then the creator's.
        assert_eq!(
            SessionKey::from_bytes(&replaced(&session_key, 133, &bad)).err(),
            Some(session_signing)
        );
        assert_eq!(
            SessionKey::from_bytes(&replaced(&session_key, 165, &bad)).err(),
            Some(identity)
        );
        // Export (11.6).
        assert_eq!(
            ExportedSessionKey::from_bytes(&replaced(&export, 133, &bad)).err(),
            Some(session_signing)
        );
        // Share (12.1): sender, recipient, and the session key inside.
        assert_eq!(
            RoomKeyShare::from_bytes(&replaced(&share, ids, &bad)).err(),
            Some(identity)
        );
        assert_eq!(
            RoomKeyShare::from_bytes(&replaced(&share, ids + 64, &bad)).err(),
            Some(identity)
        );
        assert_eq!(
            RoomKeyShare::from_bytes(&replaced(&share, ids + 128 + 133, &bad)).err(),
            Some(session_signing)
        );
        // Envelope (12.2): the session id is a lookup key, not validated as
        // a point; no stored session can have it, so decrypting fails.
        let mut json = envelope.clone();
        json["session_id"] = text.clone().into();
        let parsed = EncryptedEvent::from_json(&json.to_string()).unwrap();
        assert!(parsed.session_id.signing_key().is_err());
        // Device bundle (5.2) and identity keys in JSON.
        let mut json = bundle.clone();
        json["keys"]["ed25519"] = text.clone().into();
        assert!(serde_json::from_value::<DeviceKeys>(json.clone()).is_err());
        assert!(serde_json::from_value::<IdentityKeys>(json["keys"].clone()).is_err());
        // Pickle contents (8.3, 11.8), sealed under our key: the session's
        // own (local) and peer identity keys, the inbound session's key and
        // the creator its signed key named, the outbound session's creator.
        let session_pickle = |at| {
            seal_owned_pickle(
                &replaced(&session_contents, at, &bad),
                "session",
                &alice_owner,
            )
        };
        for at in [34, 98] {
            assert_eq!(
                Session::from_pickle(&session_pickle(at), &pickle_key(), &alice_keys).err(),
                Some(PickleError::Contents(identity))
            );
        }
        let inbound_pickle = |at| {
            seal_pickle(
                &replaced(&inbound_contents, at, &bad),
                "inbound-group-session",
            )
        };
        assert_eq!(
            InboundGroupSession::from_pickle(&inbound_pickle(0), &pickle_key()).err(),
            Some(PickleError::Contents(session_signing))
        );
        // Key, authenticated flag, index, ratchet, then the creator.
        assert_eq!(
            InboundGroupSession::from_pickle(&inbound_pickle(32 + 1 + 4 + 128), &pickle_key())
                .err(),
            Some(PickleError::Contents(identity))
        );
        assert_eq!(
            OutboundGroupSession::from_pickle(
                &seal_pickle(
                    &replaced(&outbound_contents, 2 + n, &bad),
                    "outbound-group-session"
                ),
                &pickle_key()
            )
            .err(),
            Some(PickleError::Contents(identity))
        );
    }
}

// ---------------------------------------------------------------------------
// Signatures: non-canonical s, small-order R, non-canonical R, mixed R
// ---------------------------------------------------------------------------

#[test]
fn forged_signatures_are_rejected_wherever_signatures_are_checked() {
    let Devices {
        alice,
        mut bob,
        bob_bundle,
        bob_device,
        bob_one_time_key,
    } = devices();
    let alice_signer = device_signing_key(&alice);
    let bob_signer = device_signing_key(&bob);
    let bob_ed = bob.identity_keys().ed25519;
    let mut endpoint = Endpoint::from_account(
        "@alice:example.org",
        "ALICE",
        Account::new_with_rng(&mut rng(1)),
    )
    .unwrap();
    let sig = |bytes: [u8; 64]| Ed25519Signature::from_bytes(&bytes);
    let mut checked = 0;

    // One-time keys (5.1): the genuine signature is ours over these bytes.
    for fallback in [false, true] {
        let message = one_time_key_signed_bytes(
            bob_one_time_key.key_id.0,
            &bob_one_time_key.key.to_bytes(),
            fallback,
        );
        let genuine = SignedOneTimeKey {
            fallback,
            signature: sig(bob_signer.sign(&message).to_bytes()),
            ..bob_one_time_key.clone()
        };
        if !fallback {
            assert_eq!(genuine, bob_one_time_key);
        }
        genuine.verify(&bob_ed).unwrap();
        for forged in forge(&bob_signer, &message) {
            let key = SignedOneTimeKey {
                signature: sig(forged.signature),
                ..genuine.clone()
            };
            let expected = AccountError::BadOneTimeKeySignature;
            assert_eq!(key.verify(&bob_ed), Err(expected), "{}", forged.name);
            assert_eq!(
                alice.create_outbound_session(&bob_device, &key).err(),
                Some(expected),
                "{}",
                forged.name
            );
            assert_eq!(
                endpoint.establish_session(&bob_bundle, &key).err(),
                Some(RoomError::Account(expected)),
                "{}",
                forged.name
            );
            checked += 1;
        }
    }

    // Device bundles (5.2).
    let message = bundle_signed_bytes(BOB.0, BOB.1, &bob.identity_keys(), &["roomseal.v2"]);
    assert_eq!(
        bob_bundle.signature,
        sig(bob_signer.sign(&message).to_bytes())
    );
    for forged in forge(&bob_signer, &message) {
        let bundle = DeviceKeys {
            signature: sig(forged.signature),
            ..bob_bundle.clone()
        };
        let expected = AccountError::BadDeviceKeysSignature;
        assert_eq!(
            bundle.check_self_signature().err(),
            Some(expected),
            "{}",
            forged.name
        );
        assert_eq!(
            endpoint.establish_session(&bundle, &bob_one_time_key).err(),
            Some(RoomError::Account(expected)),
            "{}",
            forged.name
        );
        checked += 1;
    }

    // The session binding of a pre-key message (6.3, bytes 130..194).
    let mut session = alice
        .create_outbound_session_with_rng(&bob_device, &bob_one_time_key, &mut rng(4))
        .unwrap();
    let wire = session.encrypt(b"hello").unwrap();
    let DeviceMessage::PreKey(p) = &wire else {
        unreachable!()
    };
    let message = [
        &b"roomseal/v2/session-binding"[..],
        p.session_id().as_bytes(),
        bob.identity_keys().curve25519.as_bytes(),
    ]
    .concat();
    let bytes = wire.to_bytes();
    assert_eq!(bytes[130..194], alice_signer.sign(&message).to_bytes());
    let before = snapshot_account(&bob);
    for forged in forge(&alice_signer, &message) {
        let mut tampered = bytes.clone();
        tampered[130..194].copy_from_slice(&forged.signature);
        let DeviceMessage::PreKey(p) = DeviceMessage::from_bytes(&tampered).unwrap() else {
            unreachable!()
        };
        assert_eq!(
            bob.create_inbound_session(&p).err(),
            Some(AccountError::Session(SessionError::BadBinding)),
            "{}",
            forged.name
        );
        checked += 1;
    }
    assert_eq!(snapshot_account(&bob), before);
    assert!(bob.create_inbound_session(p).is_ok());

    // Group messages (11.5) and session keys (11.6).
    let mut outbound =
        OutboundGroupSession::new_with_rng(ROOM, alice.identity_keys(), &mut rng(20)).unwrap();
    let group_signer = group_signing_key(&outbound);
    let key_bytes = outbound.session_key().to_bytes().to_vec();
    let (unsigned, genuine) = key_bytes.split_at(key_bytes.len() - 64);
    let message = [&b"roomseal/v2/group/session-key"[..], unsigned].concat();
    assert_eq!(genuine, group_signer.sign(&message).to_bytes());
    for forged in forge(&group_signer, &message) {
        let key = SessionKey::from_bytes(&[unsigned, &forged.signature].concat()).unwrap();
        assert_eq!(
            InboundGroupSession::new(&key).err(),
            Some(GroupError::BadSignature),
            "{}",
            forged.name
        );
        checked += 1;
    }
    let mut inbound = InboundGroupSession::new(&outbound.session_key()).unwrap();
    let message_bytes = outbound.encrypt(b"group message").unwrap().to_bytes();
    let (unsigned, genuine) = message_bytes.split_at(message_bytes.len() - 64);
    let message = [&b"roomseal/v2/group/message-signature"[..], unsigned].concat();
    assert_eq!(genuine, group_signer.sign(&message).to_bytes());
    for forged in forge(&group_signer, &message) {
        let tampered = GroupMessage::from_bytes(&[unsigned, &forged.signature].concat()).unwrap();
        assert_eq!(
            inbound.decrypt(ROOM, &tampered).err(),
            Some(GroupError::BadSignature),
            "{}",
            forged.name
        );
        checked += 1;
    }
    let genuine = GroupMessage::from_bytes(&message_bytes).unwrap();
    assert_eq!(
        inbound.decrypt(ROOM, &genuine).unwrap().plaintext,
        b"group message"
    );

    // App-message signatures (5.3).
    let statement = b"an app statement";
    let message = [&b"roomseal/v2/app-message"[..], statement].concat();
    assert_eq!(
        alice.sign(statement),
        sig(alice_signer.sign(&message).to_bytes())
    );
    let alice_ed = alice.identity_keys().ed25519;
    for forged in forge(&alice_signer, &message) {
        assert_eq!(
            alice_ed.verify_app_message(statement, &sig(forged.signature)),
            Err(KeyError::BadSignature),
            "{}",
            forged.name
        );
        assert_eq!(
            alice_ed.verify(&message, &sig(forged.signature)),
            Err(KeyError::BadSignature)
        );
        checked += 1;
    }
    eprintln!("forged signatures rejected: {checked}");
    assert_eq!(checked, 25 * (2 + 1 + 1 + 2 + 1));
}

// ---------------------------------------------------------------------------
// decrypt_batch: exactly what strict one-by-one decryption accepts
// ---------------------------------------------------------------------------

/// The order of a torsion point (1, 2, 4 or 8).
fn torsion_order(t: &[u8; 32]) -> u64 {
    let key = SigningKey::from_bytes(&[1; 32]);
    let a = key.to_scalar();
    let point = VerifyingKey::from_bytes(t).unwrap().to_edwards();
    [1u64, 2, 4, 8]
        .into_iter()
        .find(|&k| (point * reduce(a, &k.to_le_bytes())).compress().to_bytes() == hex32(IDENTITY))
        .unwrap()
}

#[test]
fn decrypt_batch_rejects_every_signature_strict_verification_rejects() {
    // PROTOCOL.md 11.7 and `InboundGroupSession::decrypt_batch`: the batch
    // verifies each signature strictly (no Ed25519 batch equation, which
    // would accept an identity or non-canonical R and, depending on its
    // coefficients, R with a torsion component), so a batch receiver and a
    // one-by-one receiver always agree, even on signatures only the
    // session's creator could make. For every forged kind and torsion
    // order: the batch gives exactly `decrypt`'s result (rejected), alone,
    // next to a genuine message in either order, and in a batch large
    // enough to verify on several threads; the session never changes.
    let alice = Account::new_with_rng(&mut rng(1));
    let mut outbound =
        OutboundGroupSession::new_with_rng(ROOM, alice.identity_keys(), &mut rng(20)).unwrap();
    let signer = group_signing_key(&outbound);
    let mut inbound = InboundGroupSession::new(&outbound.session_key()).unwrap();
    let before = inbound.pickle_with_rng(&pickle_key(), &mut rng(0xEE));
    let salts = &mut rng(21);

    // (order of the torsion component or 0, kind) -> forged signatures tried
    let mut tally: std::collections::BTreeMap<(u64, String), u32> = Default::default();
    let mut all_forged = Vec::new();
    let mut genuine_messages = Vec::new();
    const ATTEMPTS: usize = 48;
    for attempt in 0..ATTEMPTS {
        let plaintext = format!("attempt {attempt}");
        let bytes = outbound
            .encrypt_with_rng(plaintext.as_bytes(), salts)
            .unwrap()
            .to_bytes();
        // The signature covers the label and everything before it: version,
        // index, salt and ciphertext (11.5).
        let (unsigned, _) = bytes.split_at(bytes.len() - 64);
        let message = [&b"roomseal/v2/group/message-signature"[..], unsigned].concat();
        let genuine = GroupMessage::from_bytes(&bytes).unwrap();
        for forged in forge(&signer, &message) {
            let tampered =
                GroupMessage::from_bytes(&[unsigned, &forged.signature].concat()).unwrap();
            // Strict, one by one: always rejected.
            let single = inbound.decrypt(ROOM, &tampered);
            assert_eq!(
                single.clone().err(),
                Some(GroupError::BadSignature),
                "{}",
                forged.name
            );
            // Alone in a batch: the same.
            let batch = inbound.decrypt_batch(ROOM, std::slice::from_ref(&tampered));
            assert_eq!(batch, vec![single.clone()], "{}", forged.name);
            // Next to a genuine message, in either order: the same, and the
            // genuine one decrypts.
            for forged_first in [true, false] {
                let pair = if forged_first {
                    [tampered.clone(), genuine.clone()]
                } else {
                    [genuine.clone(), tampered.clone()]
                };
                let results = inbound.decrypt_batch(ROOM, &pair);
                let (bad, good) = if forged_first {
                    (&results[0], &results[1])
                } else {
                    (&results[1], &results[0])
                };
                assert_eq!(bad, &single, "{}", forged.name);
                let good = good.clone().unwrap();
                assert_eq!(good.plaintext, plaintext.as_bytes());
                assert!(good.authenticated);
            }
            let order = forged.torsion.as_ref().map_or(0, torsion_order);
            *tally
                .entry((order, format!("{:?}", forged.kind)))
                .or_default() += 1;
            all_forged.push(tampered);
        }
        genuine_messages.push((genuine, plaintext));
    }
    // One large batch, forged and genuine interleaved (verified on several
    // threads with the `parallel` feature): each result is `decrypt`'s.
    let mut large = Vec::new();
    for (i, forged) in all_forged.iter().enumerate() {
        large.push(forged.clone());
        if i % 8 == 0 {
            large.push(genuine_messages[(i / 8) % ATTEMPTS].0.clone());
        }
    }
    assert!(large.len() >= roomseal::consts::PARALLEL_VERIFY_THRESHOLD * 4);
    let results = inbound.decrypt_batch(ROOM, &large);
    assert_eq!(results.len(), large.len());
    let mut accepted = 0;
    for (message, result) in large.iter().zip(&results) {
        assert_eq!(result, &inbound.decrypt(ROOM, message), "large batch");
        accepted += usize::from(result.is_ok());
    }
    assert_eq!(
        accepted,
        all_forged.len().div_ceil(8),
        "only the genuine ones"
    );
    for ((order, kind), tried) in &tally {
        eprintln!(
            "decrypt_batch, {kind} with a torsion component of order {order}: \
             {tried} tried, all rejected as by decrypt"
        );
    }
    // Every kind and order is represented: non-canonical s, R of order 1
    // (identity, canonical and not), and the small-order, non-canonical and
    // mixed R kinds with a torsion component of order 2, 4 and 8.
    assert!(tally.keys().any(|(_, kind)| kind == "NonCanonicalS"));
    assert!(tally.keys().any(|&(order, _)| order == 1));
    assert_eq!(
        tally.keys().filter(|&&(order, _)| order > 1).count(),
        3 + 3 + 2
    );
    assert_eq!(
        inbound.pickle_with_rng(&pickle_key(), &mut rng(0xEE)),
        before
    );
}

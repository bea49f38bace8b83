//! Signing JSON: the specification's test vectors, and verification of
//! every way a signature can be missing, malformed or wrong.

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Map, Value, json};

use crate::keys::{Ed25519PublicKey, Ed25519Signature, base64_decode};
use crate::matrix::{CanonicalJsonError, SignatureError, sign_json, verify_json};

/// The specification's signing key (appendix "Cryptographic Test Vectors").
/// The specification writes the seed as `...XA1`, whose last character
/// carries non-zero unused bits; the crate's decoder accepts only the
/// canonical form `...XA0` of the same 32 bytes.
fn spec_key() -> SigningKey {
    assert!(base64_decode("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1").is_err());
    let seed = base64_decode("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0").unwrap();
    SigningKey::from_bytes(&seed.try_into().unwrap())
}

fn public(key: &SigningKey) -> Ed25519PublicKey {
    Ed25519PublicKey::from_bytes(key.verifying_key().as_bytes()).unwrap()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(o) => o,
        _ => unreachable!(),
    }
}

fn sign(key: &SigningKey, object: &mut Map<String, Value>) {
    sign_json(object, "domain", "ed25519:1", |b| {
        Ed25519Signature::from_signature(key.sign(b))
    })
    .unwrap();
}

#[test]
fn specification_vectors() {
    let key = spec_key();
    let mut empty = Map::new();
    sign(&key, &mut empty);
    assert_eq!(
        Value::Object(empty.clone()),
        json!({ "signatures": { "domain": { "ed25519:1":
            "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ" } } })
    );
    let mut data = object(json!({ "one": 1, "two": "Two" }));
    sign(&key, &mut data);
    assert_eq!(
        Value::Object(data.clone()),
        json!({ "one": 1, "two": "Two", "signatures": { "domain": { "ed25519:1":
            "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw" } } })
    );
    for signed in [&empty, &data] {
        verify_json(signed, "domain", "ed25519:1", &public(&key)).unwrap();
    }
}

#[test]
fn unsigned_and_other_signatures_are_not_covered() {
    let key = spec_key();
    let mut data = object(json!({ "one": 1, "unsigned": { "age_ts": 922834800000_u64 } }));
    sign(&key, &mut data);
    // A server adds unsigned data and its own signature: still valid.
    data.insert("unsigned".into(), json!({ "device_display_name": "x" }));
    data["signatures"]
        .as_object_mut()
        .unwrap()
        .insert("other".into(), json!({ "ed25519:2": "AAAA" }));
    verify_json(&data, "domain", "ed25519:1", &public(&key)).unwrap();
}

#[test]
fn every_bad_signature_is_a_typed_error() {
    let key = spec_key();
    let pk = public(&key);
    let mut signed = object(json!({ "one": 1 }));
    sign(&key, &mut signed);

    let mut changed = signed.clone();
    changed.insert("one".into(), json!(2));
    assert_eq!(
        verify_json(&changed, "domain", "ed25519:1", &pk),
        Err(SignatureError::Invalid)
    );

    let mut added = signed.clone();
    added.insert("extra".into(), json!(true));
    assert_eq!(
        verify_json(&added, "domain", "ed25519:1", &pk),
        Err(SignatureError::Invalid)
    );

    let other = public(&SigningKey::from_bytes(&[7; 32]));
    assert_eq!(
        verify_json(&signed, "domain", "ed25519:1", &other),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify_json(&signed, "elsewhere", "ed25519:1", &pk),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verify_json(&signed, "domain", "ed25519:2", &pk),
        Err(SignatureError::Missing)
    );

    let mut unsigned = signed.clone();
    unsigned.remove("signatures");
    assert_eq!(
        verify_json(&unsigned, "domain", "ed25519:1", &pk),
        Err(SignatureError::Missing)
    );

    for (bad, expected) in [
        (json!("text"), SignatureError::SignaturesNotAnObject),
        (
            json!({ "domain": [1] }),
            SignatureError::SignaturesNotAnObject,
        ),
        (
            json!({ "domain": { "ed25519:1": 5 } }),
            SignatureError::Malformed,
        ),
        (
            json!({ "domain": { "ed25519:1": "not base64!" } }),
            SignatureError::Malformed,
        ),
        (
            json!({ "domain": { "ed25519:1": "AAAA" } }),
            SignatureError::Malformed,
        ),
    ] {
        let mut forged = signed.clone();
        forged.insert("signatures".into(), bad);
        assert_eq!(
            verify_json(&forged, "domain", "ed25519:1", &pk),
            Err(expected)
        );
    }

    // A signature with a non-canonical scalar (s + l) is refused: strict
    // verification, no malleability.
    let sig_text = signed["signatures"]["domain"]["ed25519:1"]
        .as_str()
        .unwrap();
    let mut bytes: [u8; 64] = base64_decode(sig_text).unwrap().try_into().unwrap();
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (s, l) in bytes[32..].iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    let mut malleated = signed.clone();
    malleated["signatures"]["domain"]["ed25519:1"] = json!(crate::keys::base64_encode(&bytes));
    assert_eq!(
        verify_json(&malleated, "domain", "ed25519:1", &pk),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn objects_without_canonical_form_cannot_be_signed_or_verified() {
    let key = spec_key();
    let mut float = object(json!({ "f": 0.5 }));
    assert_eq!(
        sign_json(&mut float, "domain", "ed25519:1", |b| {
            Ed25519Signature::from_signature(key.sign(b))
        }),
        Err(SignatureError::Canonical(CanonicalJsonError::NotAnInteger))
    );
    let mut signed = object(json!({ "n": 1 }));
    sign(&key, &mut signed);
    signed.insert("n".into(), json!(1u64 << 60));
    assert_eq!(
        verify_json(&signed, "domain", "ed25519:1", &public(&key)),
        Err(SignatureError::Canonical(
            CanonicalJsonError::IntegerOutOfRange
        ))
    );
    // Signatures of the wrong type cannot be added to.
    let mut bad = object(json!({ "signatures": [] }));
    assert_eq!(
        sign_json(&mut bad, "domain", "ed25519:1", |b| {
            Ed25519Signature::from_signature(key.sign(b))
        }),
        Err(SignatureError::SignaturesNotAnObject)
    );
}

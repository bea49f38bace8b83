use super::*;

fn hex32(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// Small-order Ed25519 encodings (identity, orders 2, 4 and 8), as listed in
/// the "Taming the many EdDSAs" test suite and Wycheproof.
pub(crate) const SMALL_ORDER_ED25519: [&str; 7] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
];

#[test]
fn small_order_ed25519_keys_are_rejected() {
    for hex in SMALL_ORDER_ED25519 {
        let err = Ed25519PublicKey::from_bytes(&hex32(hex)).unwrap_err();
        assert!(
            matches!(err, KeyError::WeakKey | KeyError::InvalidPoint),
            "{hex}: {err:?}"
        );
    }
}

#[test]
fn non_canonical_ed25519_encodings_are_rejected() {
    // y = p (non-canonical zero) and y = p + 1 (non-canonical one).
    for hex in [
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ] {
        assert!(Ed25519PublicKey::from_bytes(&hex32(hex)).is_err(), "{hex}");
    }
}

#[test]
fn ed25519_text_serde_and_verify() {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public = Ed25519PublicKey::from_verifying_key(signing.verifying_key());
    let text = public.to_base64();
    assert_eq!(text.len(), 43);
    assert_eq!(Ed25519PublicKey::from_base64(&text).unwrap(), public);
    assert_eq!(
        Ed25519PublicKey::from_base64(&format!("{text}=")).unwrap(),
        public
    );
    let json = serde_json::to_string(&public).unwrap();
    assert_eq!(json, format!("\"{text}\""));
    assert_eq!(
        serde_json::from_str::<Ed25519PublicKey>(&json).unwrap(),
        public
    );
    assert!(serde_json::from_str::<Ed25519PublicKey>("\"AAAA\"").is_err());

    use ed25519_dalek::Signer;
    let signature = Ed25519Signature::from_signature(signing.sign(b"message"));
    public.verify(b"message", &signature).unwrap();
    assert_eq!(
        public.verify(b"massage", &signature),
        Err(KeyError::BadSignature)
    );
    let sig_text = signature.to_base64();
    assert_eq!(Ed25519Signature::from_base64(&sig_text).unwrap(), signature);

    // s + l (non-canonical scalar) must be rejected by strict verification.
    let mut bytes = signature.to_bytes();
    let l: [u8; 32] = hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(bytes[32 + i]) + u16::from(l[i]) + carry;
        bytes[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(
        public.verify(b"message", &Ed25519Signature::from_bytes(&bytes)),
        Err(KeyError::BadSignature)
    );
}

#[test]
fn small_order_r_is_rejected_by_strict_verification() {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let public = Ed25519PublicKey::from_verifying_key(signing.verifying_key());
    for hex in SMALL_ORDER_ED25519 {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&hex32(hex));
        assert_eq!(
            public.verify(b"m", &Ed25519Signature::from_bytes(&bytes)),
            Err(KeyError::BadSignature)
        );
    }
}

#[test]
fn curve25519_text_and_length_errors() {
    let key = Curve25519PublicKey::from_bytes([3u8; 32]);
    assert_eq!(
        Curve25519PublicKey::from_base64(&key.to_base64()).unwrap(),
        key
    );
    assert_eq!(
        Curve25519PublicKey::from_base64("AAAA"),
        Err(KeyError::Length {
            expected: 32,
            found: 3
        })
    );
    assert_eq!(Curve25519PublicKey::from_base64("*"), Err(KeyError::Base64));
    assert_eq!(
        format!("{key:?}"),
        format!("Curve25519PublicKey({})", key.to_base64())
    );
    let json = serde_json::to_string(&key).unwrap();
    assert_eq!(
        serde_json::from_str::<Curve25519PublicKey>(&json).unwrap(),
        key
    );
}

/// Low-order X25519 points (libsodium's blocklist): every one must make a
/// Diffie-Hellman exchange fail.
pub(crate) const LOW_ORDER_X25519: [&str; 7] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

#[test]
fn low_order_x25519_points_fail_diffie_hellman() {
    let secret = x25519_dalek::StaticSecret::from([5u8; 32]);
    for hex in LOW_ORDER_X25519 {
        assert!(
            crate::crypto::diffie_hellman(&secret, &hex32(hex)).is_err(),
            "{hex}"
        );
    }
    let peer = Curve25519PublicKey::from(&x25519_dalek::StaticSecret::from([6u8; 32]));
    assert!(crate::crypto::diffie_hellman(&secret, peer.as_bytes()).is_ok());
}

//! Unpadded standard base64, the text form of every key, signature, message
//! and pickle. Decoding also accepts padded input and runs in constant time
//! (base64ct), so decoding a secret does not leak it through timing.

use base64ct::{Base64, Base64Unpadded, Encoding};

/// The text is not canonical base64 (padded or unpadded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidBase64;

/// Unpadded base64 of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    Base64Unpadded::encode_string(bytes)
}

/// Appends the unpadded base64 of `bytes` to `out` (for text assembled in
/// one buffer: no `String` per value).
pub(crate) fn encode_append(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + Base64Unpadded::encoded_len(bytes), 0);
    let written = out
        .get_mut(start..)
        .is_some_and(|dst| Base64Unpadded::encode(bytes, dst).is_ok());
    if !written {
        // Unreachable (the length is exact); never leave zero bytes behind.
        out.truncate(start);
    }
}

/// Decodes unpadded or padded base64.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, InvalidBase64> {
    if text.ends_with('=') {
        Base64::decode_vec(text).map_err(|_| InvalidBase64)
    } else {
        Base64Unpadded::decode_vec(text).map_err(|_| InvalidBase64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn padded_and_unpadded_decode_alike() {
        assert_eq!(encode(b"ab"), "YWI");
        assert_eq!(decode("YWI").unwrap(), b"ab");
        assert_eq!(decode("YWI=").unwrap(), b"ab");
        assert_eq!(decode("YWI==").unwrap_err(), InvalidBase64);
        assert_eq!(decode("Y").unwrap_err(), InvalidBase64);
        assert_eq!(decode("YW!").unwrap_err(), InvalidBase64);
        // Non-canonical trailing bits are rejected.
        assert_eq!(decode("YWJ").unwrap_err(), InvalidBase64);
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn never_panics(text in "\\PC{0,64}") {
            let _ = decode(&text);
        }
    }
}

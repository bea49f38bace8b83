//! The strict binary reader and writer behind every wire and pickle format.
//!
//! Every format in PROTOCOL.md is a fixed sequence of big-endian integers,
//! fixed-size arrays and length-prefixed byte strings. The reader never
//! panics and never allocates more than the input holds: every read checks
//! the remaining length first, and [`Reader::finish`] rejects trailing bytes.

use thiserror::Error;

/// Why a binary encoding was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The text form is not valid base64.
    #[error("invalid base64")]
    Base64,
    /// The input is empty.
    #[error("empty input")]
    Empty,
    /// The leading version byte names a format this build does not speak.
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    /// The input ends before a field it must contain.
    #[error("input truncated while reading {0}")]
    Truncated(&'static str),
    /// Bytes remain after the last field.
    #[error("{0} trailing bytes after the last field")]
    TrailingBytes(usize),
    /// A field holds a value outside its allowed range.
    #[error("invalid value for {0}")]
    InvalidValue(&'static str),
    /// A length field exceeds the bound for that field.
    #[error("{field} is {len} bytes, more than the {max} allowed")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its claimed length.
        len: usize,
        /// The bound.
        max: usize,
    },
}

/// Serde through the unpadded base64 text of a type's binary encoding
/// (`to_base64` and `from_base64`, padded or unpadded on input).
macro_rules! base64_serde {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_base64())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::from_base64(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use base64_serde;

/// Reads fields from a byte slice, front to back.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    /// Reads the version byte and checks it is `expected`.
    pub(crate) fn version(&mut self, expected: u8) -> Result<(), DecodeError> {
        match self.rest.split_first() {
            None => Err(DecodeError::Empty),
            Some((&v, rest)) if v == expected => {
                self.rest = rest;
                Ok(())
            }
            Some((&v, _)) => Err(DecodeError::UnknownVersion(v)),
        }
    }

    pub(crate) fn bytes(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < len {
            return Err(DecodeError::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let bytes = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array::<1>(field)?))
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue(field)),
        }
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array::<2>(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array::<4>(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array::<8>(field)?))
    }

    /// A byte string prefixed by its `u16` length, at most `max` bytes.
    pub(crate) fn short_bytes(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16(field)?);
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.bytes(len, field)
    }

    /// A count prefixed as `u16`, checked against `max`.
    pub(crate) fn count(&mut self, max: usize, field: &'static str) -> Result<usize, DecodeError> {
        let len = usize::from(self.u16(field)?);
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        Ok(len)
    }

    /// A protobuf varint (little-endian base-128), refusing any encoding
    /// but the shortest one and values above `u64::MAX`.
    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10u32 {
            let byte = self.u8(field)?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && bits > 1 {
                return Err(DecodeError::InvalidValue(field));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                // A zero final byte after the first is a padded encoding.
                if i > 0 && byte == 0 {
                    return Err(DecodeError::InvalidValue(field));
                }
                return Ok(value);
            }
        }
        Err(DecodeError::InvalidValue(field))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Succeeds only if every byte was read.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.rest.len()))
        }
    }
}

/// Appends fields to a byte vector; the mirror of [`Reader`].
///
/// Pickle contents and session keys are written through it, so it never
/// leaves a copy of what it wrote in freed memory: when the buffer must grow
/// it moves to a new allocation and wipes the old one itself (a plain `Vec`
/// would free it unwiped), and a writer dropped without
/// [`Writer::into_vec`] wipes its buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Makes room for `extra` more bytes, wiping any buffer it leaves.
    fn reserve(&mut self, extra: usize) {
        let needed = self.buf.len().saturating_add(extra);
        if needed <= self.buf.capacity() {
            return;
        }
        let capacity = needed.max(self.buf.capacity().saturating_mul(2)).max(64);
        let mut grown = Vec::with_capacity(capacity);
        grown.extend_from_slice(&self.buf);
        let mut old = std::mem::replace(&mut self.buf, grown);
        zeroize::Zeroize::zeroize(&mut old);
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.reserve(bytes.len());
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes(&[value])
    }

    pub(crate) fn bool(&mut self, value: bool) -> &mut Self {
        self.u8(u8::from(value))
    }

    pub(crate) fn u16(&mut self, value: u16) -> &mut Self {
        self.bytes(&value.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes(&value.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes(&value.to_be_bytes())
    }

    /// A protobuf varint in its shortest form.
    pub(crate) fn varint(&mut self, mut value: u64) -> &mut Self {
        let mut bytes = [0u8; 10];
        let mut len = 0;
        for slot in bytes.iter_mut() {
            let low = (value & 0x7f) as u8;
            value >>= 7;
            len += 1;
            if value == 0 {
                *slot = low;
                break;
            }
            *slot = low | 0x80;
        }
        self.bytes(bytes.get(..len).unwrap_or_default())
    }

    /// A byte string with a `u16` length prefix. Callers bound the length by
    /// a protocol constant far below `u16::MAX`; longer input is cut to fit
    /// rather than wrapping the prefix.
    pub(crate) fn short_bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        self.u16(len);
        self.bytes(bytes.get(..usize::from(len)).unwrap_or_default())
    }

    /// A `u32` count, for collections bounded only by the caller's data.
    pub(crate) fn count32(&mut self, count: usize) -> &mut Self {
        self.u32(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// A `u16` count. Callers bound counts by protocol constants.
    pub(crate) fn count(&mut self, count: usize) -> &mut Self {
        self.u16(u16::try_from(count).unwrap_or(u16::MAX))
    }

    /// The bytes written (public data).
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// The bytes written, in a buffer that wipes itself (secret data).
    pub(crate) fn into_zeroizing(self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(self.into_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reader_rejects_short_trailing_and_wrong_version() {
        assert_eq!(Reader::new(&[]).version(1), Err(DecodeError::Empty));
        assert_eq!(
            Reader::new(&[2]).version(1),
            Err(DecodeError::UnknownVersion(2))
        );
        let mut r = Reader::new(&[0, 1, 2]);
        assert_eq!(r.u32("x"), Err(DecodeError::Truncated("x")));
        assert_eq!(r.u16("y"), Ok(1));
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(
            Reader::new(&[2]).bool("b"),
            Err(DecodeError::InvalidValue("b"))
        );
        assert_eq!(
            Reader::new(&[0, 9, 1]).short_bytes(8, "s"),
            Err(DecodeError::TooLong {
                field: "s",
                len: 9,
                max: 8
            })
        );
    }

    #[test]
    fn growing_keeps_every_byte() {
        let mut w = Writer::with_capacity(1);
        let expected: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        for chunk in expected.chunks(7) {
            w.bytes(chunk);
        }
        assert_eq!(w.into_vec(), expected);
    }

    proptest! {
        #[test]
        fn fields_round_trip(a in any::<u8>(), b in any::<u32>(), c in any::<u64>(),
                             d in proptest::collection::vec(any::<u8>(), 0..300), e in any::<bool>()) {
            let mut w = Writer::default();
            w.u8(a).u32(b).u64(c).short_bytes(&d).bool(e);
            let bytes = w.into_vec();
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(r.u8("a")?, a);
            prop_assert_eq!(r.u32("b")?, b);
            prop_assert_eq!(r.u64("c")?, c);
            prop_assert_eq!(r.short_bytes(300, "d")?, &d[..]);
            prop_assert_eq!(r.bool("e")?, e);
            r.finish()?;
        }

        #[test]
        fn varints_round_trip_and_only_the_shortest_form_decodes(value in any::<u64>(), pad in 1usize..3) {
            let mut w = Writer::default();
            w.varint(value);
            let bytes = w.into_vec();
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(r.varint("v")?, value);
            r.finish()?;
            // The same value with redundant continuation bytes is refused.
            let mut padded = bytes.clone();
            if let Some(last) = padded.last_mut() { *last |= 0x80; }
            padded.extend(std::iter::repeat_n(0x80u8, pad - 1));
            padded.push(0);
            if padded.len() <= 10 {
                prop_assert!(Reader::new(&padded).varint("v").is_err());
            }
        }

        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            let _ = r.version(1);
            let _ = r.short_bytes(16, "s");
            let _ = r.u64("u");
            let _ = r.array::<32>("k");
            let _ = r.finish();
        }
    }
}

//! Canonical JSON (Matrix specification, appendix "Signing JSON"): the one
//! byte encoding that everything signed in the Matrix layer goes through.
//!
//! The encoding is the shortest UTF-8 JSON text with object keys sorted by
//! Unicode code point, no insignificant whitespace, only the escapes the
//! specification's grammar allows (`\"`, `\\`, `\b`, `\t`, `\n`, `\f`, `\r`
//! and lowercase `\u00XX` for the other ASCII control characters), and
//! integers in `[-(2^53)+1, 2^53-1]` only.
//!
//! Guarantees: [`canonical_json`] never panics and never recurses or
//! allocates without bound, whatever value it is given. Numbers with a
//! fractional part, non-finite numbers, integers out of range, nesting
//! deeper than [`MAX_CANONICAL_JSON_DEPTH`] and encodings longer than
//! [`MAX_CANONICAL_JSON_LEN`] are typed errors. A number that has an exact
//! integer value in range but was written with an exponent or as `-0`
//! (`1e10`, `-0`) is written as that integer, as the specification's own
//! examples require.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};
use thiserror::Error;

use crate::consts::{MAX_CANONICAL_JSON_DEPTH, MAX_CANONICAL_JSON_LEN};

/// The largest magnitude canonical JSON allows for an integer: 2^53 - 1.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Why a value has no canonical JSON encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CanonicalJsonError {
    /// A number has a fractional part or is not finite: canonical JSON
    /// allows integers only.
    #[error("canonical JSON allows integers only")]
    NotAnInteger,
    /// An integer lies outside `[-(2^53)+1, 2^53-1]`.
    #[error("integer outside the canonical JSON range")]
    IntegerOutOfRange,
    /// Arrays and objects are nested deeper than the bound.
    #[error("nested deeper than {max} levels")]
    TooDeep {
        /// The bound ([`MAX_CANONICAL_JSON_DEPTH`]).
        max: usize,
    },
    /// The encoding would be longer than the bound.
    #[error("canonical encoding longer than {max} bytes")]
    TooLarge {
        /// The bound in bytes ([`MAX_CANONICAL_JSON_LEN`]).
        max: usize,
    },
}

/// The canonical JSON encoding of `value`.
///
/// This is the single canonical-JSON function of the crate: signing and
/// verification ([`crate::matrix::sign_json`], [`crate::matrix::verify_json`])
/// encode through it too.
pub fn canonical_json(value: &Value) -> Result<String, CanonicalJsonError> {
    let mut out = Encoder::default();
    out.value(value, 1)?;
    Ok(out.text)
}

/// The canonical JSON encoding of `object` without its top-level members
/// named in `skip` (the signed part of an object: without `signatures` and
/// `unsigned`). The same encoder as [`canonical_json`], without copying the
/// object.
pub(crate) fn canonical_json_without(
    object: &Map<String, Value>,
    skip: &[&str],
) -> Result<String, CanonicalJsonError> {
    let mut out = Encoder::default();
    out.object(object, skip, 1)?;
    Ok(out.text)
}

/// The output so far; every write checks the length bound first.
#[derive(Default)]
struct Encoder {
    text: String,
}

impl Encoder {
    fn reserve(&self, more: usize) -> Result<(), CanonicalJsonError> {
        if self.text.len().saturating_add(more) > MAX_CANONICAL_JSON_LEN {
            Err(CanonicalJsonError::TooLarge {
                max: MAX_CANONICAL_JSON_LEN,
            })
        } else {
            Ok(())
        }
    }

    fn raw(&mut self, text: &str) -> Result<(), CanonicalJsonError> {
        self.reserve(text.len())?;
        self.text.push_str(text);
        Ok(())
    }

    fn value(&mut self, value: &Value, depth: usize) -> Result<(), CanonicalJsonError> {
        match value {
            Value::Null => self.raw("null"),
            Value::Bool(true) => self.raw("true"),
            Value::Bool(false) => self.raw("false"),
            Value::Number(n) => {
                let n = integer(n)?;
                self.reserve(20)?;
                // Writing to a String cannot fail.
                let _ = write!(self.text, "{n}");
                Ok(())
            }
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                check_depth(depth)?;
                // Each element takes at least two bytes ("0,"): refuse a
                // huge array before walking it.
                self.reserve(items.len().saturating_mul(2))?;
                self.raw("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.raw(",")?;
                    }
                    self.value(item, depth + 1)?;
                }
                self.raw("]")
            }
            Value::Object(map) => self.object(map, &[], depth),
        }
    }

    fn object(
        &mut self,
        map: &Map<String, Value>,
        skip: &[&str],
        depth: usize,
    ) -> Result<(), CanonicalJsonError> {
        check_depth(depth)?;
        // Each member takes at least six bytes (`"":0,`): refuse a huge
        // object before sorting it.
        self.reserve(map.len().saturating_mul(5))?;
        let mut members: Vec<(&String, &Value)> = map
            .iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .collect();
        // Byte order of UTF-8 is code point order.
        members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        self.raw("{")?;
        for (i, (key, value)) in members.into_iter().enumerate() {
            if i > 0 {
                self.raw(",")?;
            }
            self.string(key)?;
            self.raw(":")?;
            self.value(value, depth + 1)?;
        }
        self.raw("}")
    }

    fn string(&mut self, s: &str) -> Result<(), CanonicalJsonError> {
        self.reserve(s.len().saturating_add(2))?;
        self.text.push('"');
        for c in s.chars() {
            match c {
                '"' => self.raw("\\\"")?,
                '\\' => self.raw("\\\\")?,
                '\u{8}' => self.raw("\\b")?,
                '\t' => self.raw("\\t")?,
                '\n' => self.raw("\\n")?,
                '\u{c}' => self.raw("\\f")?,
                '\r' => self.raw("\\r")?,
                c if u32::from(c) < 0x20 => {
                    self.reserve(6)?;
                    let _ = write!(self.text, "\\u{:04x}", u32::from(c));
                }
                c => {
                    self.reserve(c.len_utf8())?;
                    self.text.push(c);
                }
            }
        }
        self.raw("\"")
    }
}

fn check_depth(depth: usize) -> Result<(), CanonicalJsonError> {
    if depth > MAX_CANONICAL_JSON_DEPTH {
        Err(CanonicalJsonError::TooDeep {
            max: MAX_CANONICAL_JSON_DEPTH,
        })
    } else {
        Ok(())
    }
}

/// The integer a JSON number stands for, if canonical JSON allows it.
fn integer(n: &Number) -> Result<i64, CanonicalJsonError> {
    let value = if let Some(i) = n.as_i64() {
        i
    } else if n.as_u64().is_some() {
        // Above i64::MAX, hence far above the range.
        return Err(CanonicalJsonError::IntegerOutOfRange);
    } else {
        let f = n.as_f64().ok_or(CanonicalJsonError::NotAnInteger)?;
        if !f.is_finite() || f.fract() != 0.0 {
            return Err(CanonicalJsonError::NotAnInteger);
        }
        // In range, an integral f64 converts exactly (and -0 becomes 0).
        if f.abs() > MAX_SAFE_INTEGER as f64 {
            return Err(CanonicalJsonError::IntegerOutOfRange);
        }
        f as i64
    };
    if value.unsigned_abs() > MAX_SAFE_INTEGER.unsigned_abs() {
        Err(CanonicalJsonError::IntegerOutOfRange)
    } else {
        Ok(value)
    }
}

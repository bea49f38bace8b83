//! Reading JSON a homeserver sent, within bounds: the error type for a
//! whole document, lists and maps that stop allocating at their bound, and
//! single items (one device, one event) checked for size on their own.
//!
//! Guarantees: no document is refused for fields it does not know (Matrix
//! lets servers add fields); a list or map longer than its bound is consumed
//! without keeping the excess, and reported; errors carry the position and
//! the kind of problem, never text from the input (which may be secret).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use thiserror::Error;

use crate::consts::MAX_JSON_ITEM_LEN;

/// Why a JSON document (a server response, a sync, an event content) was
/// refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum JsonError {
    /// Not JSON text (or nested deeper than the parser allows).
    #[error("invalid JSON at line {line}, column {column}")]
    Syntax {
        /// Line of the problem (1-based).
        line: usize,
        /// Column of the problem (1-based).
        column: usize,
    },
    /// Valid JSON of the wrong shape: a required field missing, a value of
    /// the wrong type, a key or id that does not parse.
    #[error("unexpected JSON shape at line {line}, column {column}")]
    Shape {
        /// Line of the problem (1-based).
        line: usize,
        /// Column of the problem (1-based).
        column: usize,
    },
    /// A list or map is longer than its bound.
    #[error("more than {max} {what}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The bound.
        max: usize,
    },
    /// One item is larger than [`MAX_JSON_ITEM_LEN`].
    #[error("{what} larger than {max} bytes")]
    TooLarge {
        /// What was measured.
        what: &'static str,
        /// The bound in bytes.
        max: usize,
    },
}

impl JsonError {
    /// A value that must be an object is not (no position: the value was
    /// already parsed).
    pub(crate) const NOT_AN_OBJECT: JsonError = JsonError::Shape { line: 0, column: 0 };

    pub(crate) fn from_serde(error: &serde_json::Error) -> Self {
        let (line, column) = (error.line(), error.column());
        match error.classify() {
            serde_json::error::Category::Data => JsonError::Shape { line, column },
            _ => JsonError::Syntax { line, column },
        }
    }
}

/// Parses a document or item, which must be a JSON object (serde would
/// otherwise also read a struct from an array).
pub(crate) fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, JsonError> {
    if !text.trim_start().starts_with('{') {
        return Err(JsonError::Shape { line: 1, column: 1 });
    }
    serde_json::from_str(text).map_err(|e| JsonError::from_serde(&e))
}

/// Reads an already parsed object as `T` (borrowing, without copying it).
pub(crate) fn from_object<'a, T: Deserialize<'a>>(
    object: &'a serde_json::Map<String, serde_json::Value>,
) -> Result<T, JsonError> {
    T::deserialize(object).map_err(|e| JsonError::from_serde(&e))
}

/// Parses one item of a larger document, after checking its size.
pub(crate) fn parse_item<T: DeserializeOwned>(
    item: &RawValue,
    what: &'static str,
) -> Result<T, JsonError> {
    check_item_len(item, what)?;
    parse(item.get())
}

/// Refuses an item larger than [`MAX_JSON_ITEM_LEN`].
pub(crate) fn check_item_len(item: &RawValue, what: &'static str) -> Result<(), JsonError> {
    check_len(item.get(), what)
}

/// Refuses a text longer than [`MAX_JSON_ITEM_LEN`].
pub(crate) fn check_len(text: &str, what: &'static str) -> Result<(), JsonError> {
    if text.len() > MAX_JSON_ITEM_LEN {
        Err(JsonError::TooLarge {
            what,
            max: MAX_JSON_ITEM_LEN,
        })
    } else {
        Ok(())
    }
}

/// A JSON array of at most `MAX` items. Longer input is read to its end
/// without keeping the excess, and [`BoundedList::check`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundedList<T, const MAX: usize> {
    items: Vec<T>,
    overflowed: bool,
}

impl<T, const MAX: usize> Default for BoundedList<T, MAX> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            overflowed: false,
        }
    }
}

impl<T, const MAX: usize> BoundedList<T, MAX> {
    /// The list, or [`JsonError::TooMany`] if the input was longer than
    /// `MAX` (`what` names the items in the error).
    pub fn check(&self, what: &'static str) -> Result<&[T], JsonError> {
        if self.overflowed {
            Err(JsonError::TooMany { what, max: MAX })
        } else {
            Ok(&self.items)
        }
    }

    /// The list, consumed, or [`JsonError::TooMany`].
    pub fn into_checked(self, what: &'static str) -> Result<Vec<T>, JsonError> {
        if self.overflowed {
            Err(JsonError::TooMany { what, max: MAX })
        } else {
            Ok(self.items)
        }
    }
}

impl<T, const MAX: usize> From<Vec<T>> for BoundedList<T, MAX> {
    /// Keeps at most `MAX` items, noting whether there were more.
    fn from(mut items: Vec<T>) -> Self {
        let overflowed = items.len() > MAX;
        items.truncate(MAX);
        Self { items, overflowed }
    }
}

impl<T: Serialize, const MAX: usize> Serialize for BoundedList<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.items.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedList<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T, const MAX: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for ListVisitor<T, MAX> {
            type Value = BoundedList<T, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of at most {MAX} items")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = BoundedList::default();
                while list.items.len() < MAX {
                    match seq.next_element()? {
                        Some(item) => list.items.push(item),
                        None => return Ok(list),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    list.overflowed = true;
                }
                Ok(list)
            }
        }

        deserializer.deserialize_seq(ListVisitor(PhantomData))
    }
}

/// A JSON object of at most `MAX` members, keyed by string. Longer input is
/// read to its end without keeping the excess, and [`BoundedMap::check`]
/// reports it. A repeated key keeps its last value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundedMap<V, const MAX: usize> {
    entries: BTreeMap<String, V>,
    overflowed: bool,
}

impl<V, const MAX: usize> Default for BoundedMap<V, MAX> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            overflowed: false,
        }
    }
}

impl<V, const MAX: usize> BoundedMap<V, MAX> {
    /// The map, or [`JsonError::TooMany`] if the input had more than `MAX`
    /// members (`what` names them in the error).
    pub fn check(&self, what: &'static str) -> Result<&BTreeMap<String, V>, JsonError> {
        if self.overflowed {
            Err(JsonError::TooMany { what, max: MAX })
        } else {
            Ok(&self.entries)
        }
    }
}

impl<V, const MAX: usize> From<BTreeMap<String, V>> for BoundedMap<V, MAX> {
    /// Keeps at most `MAX` members (the first in key order), noting whether
    /// there were more.
    fn from(mut entries: BTreeMap<String, V>) -> Self {
        let overflowed = entries.len() > MAX;
        while entries.len() > MAX {
            entries.pop_last();
        }
        Self {
            entries,
            overflowed,
        }
    }
}

impl<V: Serialize, const MAX: usize> Serialize for BoundedMap<V, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(serializer)
    }
}

impl<'de, V: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedMap<V, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V, const MAX: usize>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>, const MAX: usize> Visitor<'de> for MapVisitor<V, MAX> {
            type Value = BoundedMap<V, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an object of at most {MAX} members")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut bounded = BoundedMap::default();
                while bounded.entries.len() < MAX {
                    match map.next_entry::<String, V>()? {
                        Some((key, value)) => {
                            bounded.entries.insert(key, value);
                        }
                        None => return Ok(bounded),
                    }
                }
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    bounded.overflowed = true;
                }
                Ok(bounded)
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

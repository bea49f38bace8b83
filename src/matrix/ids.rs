//! Matrix identifiers the client layer keys its state by: user ids, device
//! ids and room ids, each checked once when it enters.
//!
//! Guarantees: a [`UserId`] is `@localpart:server` with a non-empty
//! localpart free of `:` and a non-empty server name; a [`RoomId`] starts
//! with `!`; a [`DeviceId`] is non-empty. All are at most [`MAX_ID_LEN`]
//! bytes and contain no ASCII control characters or whitespace. Anything
//! else is an [`IdError`]. Historical user ids with unusual localpart
//! characters are accepted (the specification asks clients to), so the
//! checks are structural, not the full grammar.
//!
//! An id is immutable and shared: cloning one counts a reference, it does
//! not copy the text (the share path clones each device's ids several times).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use thiserror::Error;

use crate::consts::MAX_ID_LEN;

/// Why an identifier was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IdError {
    /// Empty, or longer than [`MAX_ID_LEN`] bytes.
    #[error("{0} must be 1 to 255 bytes")]
    Length(&'static str),
    /// Contains whitespace or an ASCII control character.
    #[error("{0} contains whitespace or a control character")]
    Character(&'static str),
    /// Not of the identifier's form (`@local:server` for a user,
    /// `!opaque` for a room).
    #[error("{0} is malformed")]
    Form(&'static str),
}

fn check_common(id: &str, what: &'static str) -> Result<(), IdError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(IdError::Length(what));
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(IdError::Character(what));
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Checks `id` and wraps it.
            pub fn parse(id: impl Into<String>) -> Result<Self, IdError> {
                let id = id.into();
                check_common(&id, $what)?;
                let check: fn(&str) -> Result<(), IdError> = $check;
                check(&id)?;
                Ok(Self(Arc::from(id)))
            }

            /// The identifier's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(id: String) -> Result<Self, IdError> {
                Self::parse(id)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                String::from(&*id.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(id: &str) -> Result<Self, IdError> {
                Self::parse(id)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }
    };
}

identifier!(
    /// A Matrix user id, `@localpart:server.name`.
    UserId,
    "user id",
    |id| {
        let rest = id.strip_prefix('@').ok_or(IdError::Form("user id"))?;
        match rest.split_once(':') {
            Some((local, server)) if !local.is_empty() && !server.is_empty() => Ok(()),
            _ => Err(IdError::Form("user id")),
        }
    }
);

identifier!(
    /// A Matrix device id (opaque, chosen by the server or the client).
    DeviceId,
    "device id",
    |_| Ok(())
);

identifier!(
    /// A Matrix room id, `!opaque` (with a `:server` part in older room
    /// versions).
    RoomId,
    "room id",
    |id| {
        if id.len() > 1 && id.starts_with('!') {
            Ok(())
        } else {
            Err(IdError::Form("room id"))
        }
    }
);

impl UserId {
    /// The server name: everything after the first `:`.
    pub fn server_name(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, server)| server)
    }
}

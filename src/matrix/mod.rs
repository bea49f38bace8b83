//! The Matrix client layer: the JSON of the client-server API around
//! end-to-end encryption, so a roomseal device can talk to any Matrix
//! client.
//!
//! This first part is the ground everything signed stands on:
//! [`canonical_json`], the one canonical JSON encoder, and [`sign_json`] and
//! [`verify_json`], which go through it.

mod canonical;
mod signing;
#[cfg(test)]
mod tests;

pub use self::canonical::{CanonicalJsonError, MAX_SAFE_INTEGER, canonical_json};
pub use self::signing::{ED25519, SignatureError, sign_json, signed_bytes, verify_json};

//! Matrix's pairwise protocol, `m.olm.v1.curve25519-aes-sha2` (Olm v1),
//! byte for byte as libolm and vodozemac speak it: [`OlmAccount`],
//! [`OlmSession`] and [`OlmMessage`], plus import of libolm pickles.
//!
//! The session runs on the crate's one Double Ratchet (the native
//! session's) with Olm's KDF labels, bounds and cipher: AES-256-CBC with an
//! HMAC-SHA-256 tag truncated to 8 bytes, keyed by HKDF from each message
//! key. The protocol is fixed by the type: an [`OlmSession`] never reads or
//! writes a native message, nor the reverse.
//!
//! Stricter than the specification where the wire allows (PROTOCOL.md,
//! "Olm v1"): low-order X25519 keys are refused, messages decode only in
//! their canonical encoding, a failed decryption changes nothing, and every
//! store is bounded.
//!
//! ```
//! use roomseal::{OlmAccount, OlmMessage};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let alice = OlmAccount::new();
//! let mut bob = OlmAccount::new();
//! bob.generate_one_time_keys(1);
//! let published = bob.one_time_keys();
//! let (_key_id, one_time_key) = published[0];
//! bob.mark_keys_as_published(&published);
//!
//! let mut outbound =
//!     alice.create_outbound_session(bob.identity_keys().curve25519, one_time_key)?;
//! // The Matrix JSON of the `ciphertext` entry for Bob's device.
//! let json = outbound.encrypt(b"Hello, Bob")?.to_json();
//!
//! let OlmMessage::PreKey(pre_key) = OlmMessage::from_json(&json)? else {
//!     unreachable!("a session starts with a pre-key message");
//! };
//! let created = bob.create_inbound_session(alice.identity_keys().curve25519, &pre_key)?;
//! assert_eq!(created.plaintext, b"Hello, Bob");
//! let mut inbound = created.session;
//! assert_eq!(outbound.decrypt(&inbound.encrypt(b"Hi")?)?, b"Hi");
//! # Ok(())
//! # }
//! ```

mod account;
mod libolm;
mod message;
mod session;

pub use self::account::{OlmAccount, OlmInboundCreation};
pub use self::message::{OLM_MESSAGE_VERSION, OlmMessage, OlmNormalMessage, OlmPreKeyMessage};
pub use self::session::{OlmSession, OlmSessionKeys};

pub(crate) use self::libolm::ed25519_pair;

#[cfg(test)]
mod tests;

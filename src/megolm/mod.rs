//! Matrix's group protocol, `m.megolm.v1.aes-sha2` (Megolm v1), byte for
//! byte as libolm and vodozemac speak it: [`MegolmOutboundSession`],
//! [`MegolmInboundSession`], [`MegolmMessage`], the signed
//! [`MegolmSessionKey`] and the unsigned [`MegolmExportedKey`], plus import
//! of libolm pickles.
//!
//! It runs on the crate's one four-part group ratchet (Megolm's
//! single-byte HMAC inputs) and shares the native inbound session's logic:
//! a signed key gives an authenticated ratchet, an export only an
//! unauthenticated prefix, and unsigned material never changes the
//! authenticated ratchet. Each message key is HKDF (`MEGOLM_KEYS`) of the
//! 128 ratchet bytes into AES-256-CBC key, MAC key and IV; the MAC is
//! HMAC-SHA-256 truncated to 8 bytes; every message is signed (strict
//! Ed25519 on receipt). Errors are [`crate::GroupError`]; results are
//! [`crate::GroupDecrypted`].
//!
//! ```
//! use roomseal::{MegolmInboundSession, MegolmOutboundSession, MegolmSessionKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut outbound = MegolmOutboundSession::new();
//! // Shared in `m.room_key` as unpadded base64.
//! let key = outbound.session_key().to_base64();
//! let ciphertext = outbound.encrypt(b"{\"body\":\"hi\"}")?.to_base64();
//!
//! let mut inbound = MegolmInboundSession::new(&MegolmSessionKey::from_base64(&key)?)?;
//! let decrypted = inbound.decrypt(&roomseal::MegolmMessage::from_base64(&ciphertext)?)?;
//! assert_eq!(decrypted.message_index, 0);
//! assert!(decrypted.authenticated);
//! # Ok(())
//! # }
//! ```

mod libolm;
mod message;
mod session;
mod session_key;

pub use self::message::{MEGOLM_MESSAGE_VERSION, MegolmMessage};
pub use self::session::{MegolmInboundSession, MegolmOutboundSession};
pub use self::session_key::{MegolmExportedKey, MegolmSessionKey};

//! # roomseal
//!
//! End-to-end encrypted group chat for devices that talk through a server
//! they do not trust. Each device keeps a ratcheted pairwise [`Session`] with
//! every device it talks to; over those sessions it hands out a shared room
//! key; room events are encrypted with that key. The server relays and stores
//! only ciphertext.
//!
//! The crate is sans-I/O: it never touches a network or a disk. Your app
//! moves the bytes; roomseal turns plaintext into ciphertext and back.
//!
//! ## Tutorial: from two new accounts to an exchanged message
//!
//! Alice wants to send a message to Bob's device. Each device creates an
//! [`Account`] once and keeps it (through its encrypted pickle).
//!
//! ```
//! use roomseal::{Account, DeviceMessage};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let alice = Account::new();
//! let mut bob = Account::new();
//!
//! // 1. Bob publishes a signed bundle of identity keys and some signed
//! //    one-time keys to the server, then marks them as published.
//! let bob_device = bob.device_keys("@bob:example.org", "BOBPHONE")?;
//! bob.generate_one_time_keys(10);
//! let published = bob.one_time_keys();
//! bob.mark_keys_as_published();
//!
//! // 2. Alice fetches Bob's bundle, verifies it, claims one one-time key and
//! //    starts a session. The key's signature is checked here.
//! let bob_verified = bob_device.verify()?;
//! let mut alice_session = alice.create_outbound_session(&bob_verified, &published[0])?;
//!
//! // 3. Alice encrypts. Until Bob replies her messages are pre-key messages,
//! //    which carry what Bob needs to build the session.
//! let wire: String = alice_session.encrypt(b"Hello, Bob")?.to_base64();
//!
//! // 4. The server delivers the text to Bob. Bob decodes it and, since it is
//! //    a pre-key message, creates his side of the session from it.
//! let DeviceMessage::PreKey(pre_key) = DeviceMessage::from_base64(&wire)? else {
//!     unreachable!("the first message of a session is a pre-key message");
//! };
//! let created = bob.create_inbound_session(&pre_key)?;
//! assert_eq!(created.plaintext, b"Hello, Bob");
//! let mut bob_session = created.session;
//! assert_eq!(bob_session.peer_identity(), alice.identity_keys());
//!
//! // 5. Bob replies; from now on both sides send normal messages.
//! let reply = bob_session.encrypt(b"Hi Alice")?;
//! assert_eq!(alice_session.decrypt(&reply)?, b"Hi Alice");
//! assert!(!alice_session.encrypt(b"How are you?")?.is_pre_key());
//!
//! // 6. A replayed message is rejected, and the session is unchanged.
//! assert!(alice_session.decrypt(&reply).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! ## Persisting state
//!
//! Live objects are not serializable. Each has an encrypted pickle under a
//! 32-byte [`PickleKey`] your app keeps in the platform keystore:
//!
//! ```
//! use roomseal::{Account, PickleKey};
//!
//! # fn main() -> Result<(), roomseal::PickleError> {
//! let account = Account::new();
//! let key = PickleKey::random();
//! let pickle: String = account.pickle(&key);
//! let restored = Account::from_pickle(&pickle, &key)?;
//! assert_eq!(restored.identity_keys(), account.identity_keys());
//! # Ok(())
//! # }
//! ```
//!
//! ## Where to read next
//!
//! - `PROTOCOL.md` in the repository: every byte of every format, every KDF
//!   label and every bound.
//! - [`consts`]: the bounds, each with its reason.
//! - `examples/`: runnable stories.
//!
//! ## Guarantees
//!
//! - No input from outside (messages, keys, pickles, base64, JSON) can make
//!   the crate panic; each gets a typed error.
//! - A failed decryption, a forged message or a bad pickle leaves every
//!   object exactly as it was.
//! - Secrets are zeroized on drop and never appear in `Debug` output or
//!   errors; tags are compared in constant time.
//! - Randomness comes from the operating system; every lower-layer function
//!   that needs it has a `_with_rng` twin, and an [`Endpoint`] takes a
//!   generator through [`Endpoint::set_rng`], for deterministic tests.

#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub, missing_debug_implementations)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

#[cfg(feature = "ffi")]
uniffi::setup_scaffolding!();

mod account;
mod codec;
pub mod consts;
mod crypto;
#[cfg(feature = "ffi")]
pub mod ffi;
mod group;
mod keys;
mod libolm;
mod megolm;
mod olm;
mod pickle;
mod plaintext;
mod room;
mod session;

pub use account::{
    Account, AccountError, DeviceKeys, InboundCreation, KeyId, OneTimeKeysGenerated, PROTOCOL_V2,
    SignedOneTimeKey, VerifiedDevice,
};
pub use codec::DecodeError;
pub use group::{
    ExportedSessionKey, GroupDecrypted, GroupError, GroupMessage, GroupSessionId,
    InboundGroupSession, OutboundGroupSession, SessionKey, SessionOrdering,
};
pub use keys::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature, IdentityKeys, KeyError};
pub use pickle::{PickleError, PickleKey, pickle_generation};
pub use plaintext::Plaintext;
pub use room::{
    Clock, DecryptedEvent, EncryptedEvent, Endpoint, InboundKeyStore, KeyAdded, KeysToPublish,
    ROOM_ALGORITHM, ReceivedRoomKey, RoomError, RoomKeyShare, RoomKeyShareOutcome, RotationPolicy,
    SystemClock, ToDeviceMessage,
};
pub use session::{DeviceMessage, NormalMessage, PreKeyMessage, Session, SessionError, SessionId};

pub use libolm::LibolmPickleError;
pub use megolm::{
    MEGOLM_MESSAGE_VERSION, MegolmExportedKey, MegolmInboundSession, MegolmMessage,
    MegolmOutboundSession, MegolmSessionKey,
};
pub use olm::{
    OLM_MESSAGE_VERSION, OlmAccount, OlmInboundCreation, OlmMessage, OlmNormalMessage,
    OlmPreKeyMessage, OlmSession, OlmSessionKeys,
};

/// The random-generator trait accepted by every `_with_rng` function.
pub use rand::CryptoRng;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

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
//! bob.mark_keys_as_published(&published);
//!
//! // 2. Alice fetches Bob's bundle, checks its self-signature, claims one
//! //    one-time key and starts a session. The key's signature is checked
//! //    here. (Whether the device really is Bob's is a trust decision the
//! //    app makes, for example by comparing keys in person.)
//! let bob_checked = bob_device.check_self_signature()?;
//! let mut alice_session = alice.create_outbound_session(&bob_checked, &published[0])?;
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
//! One writer at a time: load a pickle, change the object, and write the new
//! pickle before handing out anything the change produced (a ciphertext to
//! send, a plaintext to show). Two processes must never both write pickles
//! of one object. Each pickle carries a *generation* that grows whenever the
//! state changes; record the newest one where it cannot be rolled back (the
//! keystore) and restore with `from_pickle_no_older_than`, so an old copy is
//! refused instead of silently rolling the state back:
//!
//! ```
//! use roomseal::{Endpoint, PickleError, PickleKey, pickle_generation};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = PickleKey::random();
//! let mut device = Endpoint::new("@alice:example.org", "PHONE")?;
//! let old = device.pickle(&key);
//! device.keys_to_publish(5); // the state changes
//! let new = device.pickle(&key);
//! let newest = pickle_generation(&new)?;
//! assert!(pickle_generation(&old)? < newest);
//! assert!(matches!(
//!     Endpoint::from_pickle_no_older_than(&old, &key, newest),
//!     Err(PickleError::Stale { .. })
//! ));
//! let device = Endpoint::from_pickle_no_older_than(&new, &key, newest)?;
//! # let _ = device;
//! # Ok(())
//! # }
//! ```
//!
//! If you ever must continue from an older copy (a backup, a crash before
//! saving), call [`Endpoint::recover_from_rollback`] before anything else.
//!
//! ## Durable state: pickle or store?
//!
//! A pickle is the whole endpoint in one string: its cost grows with
//! everything held, and the single-writer rule above is yours to keep. A
//! [`DurableEndpoint`] keeps the endpoint in a [`Store`] (in memory, or
//! SQLite with the feature `sqlite`), one sealed record per object, and
//! commits exactly what each operation changed before returning its result:
//! the cost per operation does not grow with what is held, a crash never
//! rolls a ratchet back or brings a consumed key back, and a second process
//! on the same store gets [`StoreError::Stale`] (and reloads) instead of
//! overwriting newer state. Use the store for an app's live state, pickles
//! for export, backup and migration ([`DurableEndpoint::migrate_pickle`]).
//! The Matrix layer has the same:
//! [`matrix::DurableMatrixEndpoint`] keeps a [`matrix::MatrixEndpoint`] in a
//! store.
//!
//! ```
//! use roomseal::{DurableEndpoint, MemoryStore, PickleKey};
//!
//! # fn main() -> Result<(), roomseal::RoomError> {
//! let key = PickleKey::random();
//! let store = MemoryStore::new();
//! let mut device = DurableEndpoint::create(store.clone(), &key, "@alice:example.org", "PHONE")?;
//! let keys = device.keys_to_publish(5)?; // committed before it returns
//! device.mark_keys_as_published(&keys)?;
//! let reopened = DurableEndpoint::open(store, &key)?;
//! assert_eq!(reopened.identity_keys(), device.identity_keys());
//! # Ok(())
//! # }
//! ```
//!
//! ## Where to read next
//!
//! - `PROTOCOL.md` in the repository: every byte of every format, every KDF
//!   label and every bound.
//! - [`consts`]: the bounds, each with its reason.
//! - [`matrix`]: the Matrix client layer, for talking to any Matrix client
//!   (Element and the rest), and when to choose it over the native
//!   [`Endpoint`].
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
//!   that needs it has a `_with_rng` twin for deterministic tests. An
//!   [`Endpoint`] always uses the operating system's generator, except in
//!   builds with the test-only feature `insecure-test-rng`.
//! - Every message's key mixes in fresh randomness, so even a state
//!   restored from an old pickle never encrypts two plaintexts under one
//!   key and nonce; every pickle carries a generation number so an app can
//!   refuse an old one (PROTOCOL.md, "Rollback").

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

// Lets unit tests share helpers written against the public API (such as
// the in-memory Matrix server of tests/support) by the crate's own name.
#[cfg(test)]
extern crate self as roomseal;

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
pub mod matrix;
mod megolm;
mod olm;
mod pickle;
mod plaintext;
mod room;
mod session;
mod store;

pub use account::{
    Account, AccountError, DeviceKeys, InboundCreation, KeyId, OneTimeKeysGenerated, PROTOCOL_V2,
    SelfSignedDevice, SignedOneTimeKey,
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
    Clock, DecryptedEvent, DurableEndpoint, EncryptedEvent, Endpoint, InboundKeyStore, KeyAdded,
    KeysToPublish, ROOM_ALGORITHM, ReceivedRoomKey, RoomError, RoomKeyShare, RoomKeyShareOutcome,
    RotationPolicy, RotationReason, StoredRoomKey, SystemClock, ToDeviceMessage,
};
pub use session::{DeviceMessage, NormalMessage, PreKeyMessage, Session, SessionError, SessionId};
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{Change, Loaded, MemoryStore, RecordKey, RecordValues, Store, StoreError};

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

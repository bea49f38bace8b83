//! The Matrix client layer: the JSON of the client-server API around
//! end-to-end encryption, so a roomseal device can talk to any Matrix client
//! (Element and every other client built on vodozemac or libolm).
//!
//! # Native endpoint or Matrix layer?
//!
//! - Choose the **native** [`Endpoint`](crate::Endpoint) when your app owns
//!   both ends: every device runs roomseal, and you control the server's
//!   message format. It is stricter (AEAD with full associated data, a fresh
//!   salt in every message key, versioned binary formats), smaller and
//!   faster, but nothing outside roomseal can read it.
//! - Choose the **Matrix** layer (this module) when your devices must talk
//!   to Matrix clients they do not control, through a Matrix homeserver:
//!   `m.olm.v1.curve25519-aes-sha2` to devices, `m.megolm.v1.aes-sha2` in
//!   rooms, and the key-management API every client speaks.
//!
//! The two never mix: a native signature always covers bytes that start with
//! a `roomseal/` label, a Matrix signature the canonical JSON of an object.
//!
//! # What is here
//!
//! - [`canonical_json`], the one canonical JSON encoder, which everything
//!   signed goes through ([`sign_json`], [`verify_json`]);
//! - serde types for the JSON shapes: [`KeysUploadRequest`] and
//!   [`KeysUploadResponse`], [`KeysQueryRequest`] and [`KeysQueryResponse`],
//!   [`KeysClaimRequest`] and [`KeysClaimResponse`], [`SendToDeviceRequest`] (its
//!   contents [`ToDeviceMessage`]),
//!   the sync's E2EE parts ([`SyncResponse`]), the event contents
//!   ([`EncryptedContent`], [`RoomKeyContent`], [`ForwardedRoomKeyContent`],
//!   [`RoomKeyWithheldContent`], [`DummyContent`], [`RoomEncryptionContent`])
//!   and the plaintexts inside Olm and Megolm messages ([`OlmPayload`],
//!   [`MegolmPayload`]);
//! - the [`DeviceTracker`], which checks every device it is sent and never
//!   lets a device id change keys;
//! - one-time key claims checked against the tracked devices
//!   ([`receive_keys_claim`]) and key stocking decisions ([`KeyTopUp`]);
//! - [`MatrixEndpoint`], which drives all of it like Element's `OlmMachine`
//!   (outgoing requests, answers, syncs) and does the Olm and Megolm work:
//!   to-device decryption and checks
//!   ([`MatrixEndpoint::receive_sync_changes`], [`ProcessedToDevice`]),
//!   room key sharing per the room's settings with rotation and withheld
//!   notices ([`MatrixEndpoint::share_room_key`]), forwarding to an own
//!   device ([`MatrixEndpoint::forward_room_key`]), room events
//!   ([`MatrixEndpoint::encrypt_room_event`],
//!   [`MatrixEndpoint::decrypt_room_event`]), and one pickle for all of it;
//! - [`DurableMatrixEndpoint`], the same endpoint kept in a durable
//!   [`Store`](crate::Store) one record per object, each operation's
//!   changes committed before its result is released.
//!
//! Functions that take what a server sent come in a text form for fuzzing
//! and apps: [`DeviceTracker::receive_keys_query_json`],
//! [`receive_keys_claim_json`], [`SyncChanges::from_json`],
//! [`EncryptedContent::from_json`], [`OlmPayload::from_json`],
//! [`MatrixEndpoint::decrypt_room_event_json`].
//!
//! # A device's key life cycle
//!
//! ```
//! use roomseal::Account;
//! use roomseal::matrix::{MatrixEndpoint, RequestKind, ResponseOutcome, UserId, DeviceId};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut alice = MatrixEndpoint::new(
//!     Account::new(),
//!     UserId::parse("@alice:example.org")?,
//!     DeviceId::parse("ALICEPHONE")?,
//! );
//! // The first requests: upload the device keys with one-time keys and a
//! // fallback key, and query the own user's other devices.
//! let requests = alice.outgoing_requests()?;
//! let RequestKind::KeysUpload(upload) = &requests[0].kind else { unreachable!() };
//! assert!(upload.device_keys.is_some());
//! assert_eq!(upload.one_time_keys.len(), 50);
//! // The app POSTs `requests[0].kind.body()` to /keys/upload, then:
//! let outcome = alice.mark_request_as_sent(
//!     requests[0].id,
//!     r#"{"one_time_key_counts": {"signed_curve25519": 50}}"#,
//! )?;
//! assert_eq!(outcome, ResponseOutcome::KeysUploaded { one_time_key_count: 50 });
//! // Every sync goes through the endpoint; when the server reports fewer
//! // keys, the next outgoing requests upload more.
//! let changes = alice.receive_sync_changes(
//!     r#"{"next_batch": "s1", "device_one_time_keys_count": {"signed_curve25519": 10},
//!         "device_unused_fallback_key_types": ["signed_curve25519"]}"#,
//! )?;
//! assert_eq!(changes.one_time_key_count, 10);
//! let again = alice.outgoing_requests()?;
//! assert!(again.iter().any(|r| matches!(&r.kind,
//!     RequestKind::KeysUpload(u) if u.one_time_keys.len() == 40 && u.device_keys.is_none())));
//! # Ok(())
//! # }
//! ```
//!
//! # Sending and reading in a room
//!
//! Per encrypted room, with its members `users`: track them
//! ([`MatrixEndpoint::update_tracked_users`]) and send the outgoing
//! requests; claim keys for devices without an Olm session
//! ([`MatrixEndpoint::keys_claim_request`]); then
//! [`MatrixEndpoint::share_room_key`] returns the `/sendToDevice` requests
//! (confirm each once sent) and [`MatrixEndpoint::encrypt_room_event`] the
//! `m.room.encrypted` content. Received events go to
//! [`MatrixEndpoint::decrypt_room_event_json`], which says whether the sender
//! is authenticated. `tests/matrix_room.rs` runs the whole cycle through an
//! in-memory server; PROTOCOL.md 18 has every rule.
//!
//! # Bounds and strictness
//!
//! Every count and size a server controls is bounded (the Matrix entries
//! of [`consts`](crate::consts)); one bad item (a device, a key, an event)
//! is reported with its own error while the rest is processed. Beyond the
//! specification: signatures verify strictly; a device id never changes
//! keys; numbers with a fraction have no canonical form (so an object
//! holding one cannot be signed or verified); key events that arrive
//! unencrypted are refused.

mod canonical;
mod claim;
mod device_keys;
mod durable;
mod endpoint;
mod events;
mod ids;
mod in_flight;
mod json;
mod olm_payload;
mod olm_send;
mod olm_sessions;
mod outbound;
mod persist;
mod query;
mod receive;
mod records;
mod room_events;
mod room_keys;
mod share;
mod signing;
mod sync;
#[cfg(test)]
mod tests;
mod to_device;
mod top_up;
mod tracked;
mod tracker;
mod upload;
mod withheld;

pub use self::canonical::{CanonicalJsonError, MAX_SAFE_INTEGER, canonical_json};
pub use self::claim::{
    ClaimOutcome, ClaimedKey, OneTimeKeyError, RejectedKey, keys_claim_requests,
    receive_keys_claim, receive_keys_claim_json,
};
pub use self::device_keys::{
    CURVE25519, Device, DeviceKeys, DeviceKeysError, MEGOLM_V1, OLM_V1, OneTimeKey,
    SIGNED_CURVE25519, Signatures, key_name,
};
pub use self::durable::{DurableError, DurableMatrixEndpoint};
pub use self::endpoint::{
    EndpointError, MatrixEndpoint, OutgoingRequest, RequestId, RequestKind, ResponseOutcome,
};
pub use self::events::{
    DUMMY, DummyContent, EncryptedContent, EventError, FORWARDED_ROOM_KEY, ForwardedRoomKeyContent,
    MegolmEncryptedContent, MegolmPayload, OlmCiphertext, OlmEncryptedContent, OlmMessageType,
    ROOM_ENCRYPTED, ROOM_ENCRYPTION, ROOM_KEY, ROOM_KEY_WITHHELD, RoomEncryptionContent,
    RoomKeyContent, RoomKeyWithheldContent, SessionKeyText, WithheldCode, WithheldInfo,
};
pub use self::ids::{DeviceId, IdError, RoomId, UserId};
pub use self::json::{BoundedList, BoundedMap, JsonError};
pub use self::olm_payload::{
    CheckedOlmPayload, OlmContext, OlmPayload, OlmPayloadError, SenderDevice, SigningKeys,
};
pub use self::query::{KeysClaimRequest, KeysClaimResponse, KeysQueryRequest, KeysQueryResponse};
pub use self::receive::{
    DecryptedToDevice, ProcessedToDevice, ReceivedRoomKey, RejectedToDevice, SyncOutcome,
    ToDeviceError,
};
pub use self::room_events::{
    DecryptedRoomEvent, EncryptedRoomEvent, MegolmEncryptedContentIn, RoomEventError,
};
pub use self::room_keys::{MatrixRoomKeyInfo, RoomKeyError, RoomKeySender, RoomKeySource};
pub use self::share::{DeviceTrust, ShareError, ShareOutcome, SharePolicy};
pub use self::signing::{ED25519, SignatureError, sign_json, signed_bytes, verify_json};
pub use self::sync::{
    DeviceListsSection, RejectedEvent, SyncChanges, SyncResponse, ToDeviceContent, ToDeviceEvent,
    ToDeviceSection,
};
pub use self::to_device::{SendToDeviceRequest, ToDeviceMessage};
pub use self::top_up::KeyTopUp;
pub use self::tracker::{DeviceTracker, KeysQuery, KeysQueryOutcome, RejectedDevice};
pub use self::upload::{KeysUploadRequest, KeysUploadResponse, device_keys, key_id_text};
pub use self::withheld::WithheldNotice;

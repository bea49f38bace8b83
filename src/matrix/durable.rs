//! [`DurableMatrixEndpoint`]: a [`MatrixEndpoint`] whose every operation
//! commits what it changed to a [`Store`] before its result is handed back.
//!
//! The endpoint stays in memory (a write-through cache): opening loads every
//! record once; each operation records which records it touched (a peer's
//! Olm sessions, a Megolm key and one chunk of its replay record, a room's
//! outbound session, a followed user's devices, a pending request...), and
//! before returning writes exactly those in one transaction, conditioned on
//! the store's generation. So a room event's ciphertext is released only
//! once the advanced Megolm ratchet is durable; a decrypted event only once
//! its replay record is written; a received room key (or any to-device
//! event) only once the advanced or new Olm session, the consumed one-time
//! key and the stored room key are durable; a request only once the keys
//! it publishes and the request id are. The cost of an operation does not
//! grow with what the endpoint holds. PROTOCOL.md, "Durable store", lists
//! the records.
//!
//! Failure semantics are the native [`crate::DurableEndpoint`]'s (the same
//! machinery runs both): a commit that fails (an I/O error, a full disk)
//! returns [`DurableError::Store`] and leaves the endpoint as it was before
//! the operation (the touched records are read back); a commit refused as
//! [`StoreError::Stale`] reloads the newest state instead, so a process
//! holding stale state never overwrites newer state; if the store cannot be
//! read back either, the endpoint refuses every operation
//! ([`StoreError::Poisoned`]) until [`DurableMatrixEndpoint::reload`]
//! succeeds.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde_json::value::RawValue;
use thiserror::Error;

use super::endpoint::{EndpointError, MatrixEndpoint, OutgoingRequest, RequestId, ResponseOutcome};
use super::events::{MegolmEncryptedContent, RoomEncryptionContent};
use super::ids::{DeviceId, RoomId, UserId};
use super::json::JsonError;
use super::receive::{ProcessedToDevice, SyncOutcome, ToDeviceError};
use super::records::MatrixTouch;
use super::room_events::{DecryptedRoomEvent, EncryptedRoomEvent, RoomEventError};
use super::share::{DeviceTrust, ShareError, ShareOutcome, SharePolicy};
use super::sync::{SyncChanges, ToDeviceEvent};
use crate::group::GroupSessionId;
use crate::pickle::PickleKey;
use crate::room::Clock;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Writer};
use crate::store::{Recorded, Store, StoreError, WriteThrough};

/// Why an operation of a [`DurableMatrixEndpoint`] failed: the operation
/// itself refused (the endpoint is unchanged, as [`MatrixEndpoint`]'s
/// methods promise), or its changes could not be committed (the endpoint
/// is back where it was before the operation, or reloaded after
/// [`StoreError::Stale`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurableError<E> {
    /// The operation failed; nothing was changed.
    #[error(transparent)]
    Operation(E),
    /// The store failed; nothing the operation produced was released.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// A [`MatrixEndpoint`] kept in a durable [`Store`], one record per object.
///
/// Every read-only method of [`MatrixEndpoint`] is available through
/// `Deref`; every operation that changes state is a method here, and
/// commits its changes before returning (see the module docs).
pub struct DurableMatrixEndpoint {
    inner: WriteThrough<MatrixEndpoint>,
}

impl fmt::Debug for DurableMatrixEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableMatrixEndpoint")
            .field("endpoint", &self.inner.endpoint)
            .field("generation", &self.inner.generation())
            .field("poisoned", &self.inner.poisoned())
            .finish()
    }
}

impl Deref for DurableMatrixEndpoint {
    type Target = MatrixEndpoint;
    fn deref(&self) -> &MatrixEndpoint {
        &self.inner.endpoint
    }
}

impl Recorded for MatrixEndpoint {
    type Touch = MatrixTouch;

    fn write_record(&self, touch: &MatrixTouch, w: &mut Writer) -> bool {
        MatrixEndpoint::write_record(self, touch, w)
    }

    fn apply_record(
        &mut self,
        touch: &MatrixTouch,
        contents: Option<&[u8]>,
    ) -> Result<(), DecodeError> {
        MatrixEndpoint::apply_record(self, touch, contents)
    }

    fn from_opened(opened: Vec<(MatrixTouch, Zeroizing<Vec<u8>>)>) -> Result<Self, StoreError> {
        MatrixEndpoint::from_opened(opened)
    }

    fn track_changes(&mut self, on: bool) {
        MatrixEndpoint::track_changes(self, on);
    }

    fn take_changes(&mut self) -> Vec<MatrixTouch> {
        MatrixEndpoint::take_changes(self)
    }

    fn all_records(&self) -> Vec<MatrixTouch> {
        MatrixEndpoint::all_records(self)
    }

    fn keep_unstored(&mut self, old: &mut Self) {
        self.clock = Arc::clone(&old.clock);
        self.limits = old.limits;
        self.inbound.limits = old.inbound.limits;
        std::mem::swap(&mut self.rng, &mut old.rng);
        self.restore_in_flight(old.take_in_flight());
    }
}

/// The methods of [`DurableMatrixEndpoint`] that run the [`MatrixEndpoint`]
/// method of the same name and commit what it changed: `fallible` for a
/// method returning a `Result` (its error becomes
/// [`DurableError::Operation`]), `infallible` for one that cannot fail.
macro_rules! committed {
    (@ret fallible $ret:ty, $err:ty) => { Result<$ret, DurableError<$err>> };
    (@ret infallible $ret:ty, $err:ty) => { Result<$ret, StoreError> };
    (@run fallible $self:ident, $body:expr) => {
        $self.inner.run(|e| $body(e).map_err(DurableError::Operation))
    };
    (@run infallible $self:ident, $body:expr) => {
        $self.inner.run(|e| Ok($body(e)))
    };
    ($($(#[$doc:meta])* fn $name:ident$(<$lt:lifetime>)?(&mut self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty, $err:ty => $how:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name$(<$lt>)?(&mut self $(, $arg: $ty)*) -> committed!(@ret $how $ret, $err) {
                committed!(@run $how self, |e: &mut MatrixEndpoint| e.$name($($arg),*))
            }
        )*
    };
}

impl DurableMatrixEndpoint {
    /// Saves `endpoint` whole into `store`, which must hold no endpoint
    /// ([`StoreError::NotEmpty`]); records are sealed under subkeys of
    /// `key`. A new device starts as `MatrixEndpoint::new(...)`.
    pub fn from_endpoint(
        endpoint: MatrixEndpoint,
        store: impl Store + 'static,
        key: &PickleKey,
    ) -> Result<Self, StoreError> {
        let inner = WriteThrough::save_new(endpoint, Box::new(store), key)?;
        Ok(Self { inner })
    }

    /// Migrates an endpoint kept as a whole pickle
    /// ([`MatrixEndpoint::pickle`]) into `store`, which must hold no
    /// endpoint: restores the pickle and saves every object as its own
    /// record, in one transaction, sealed under subkeys of the same key.
    /// Stop writing the pickle once this succeeds.
    pub fn migrate_pickle(
        pickle: &str,
        key: &PickleKey,
        store: impl Store + 'static,
    ) -> Result<Self, DurableError<crate::PickleError>> {
        let endpoint = MatrixEndpoint::from_pickle(pickle, key).map_err(DurableError::Operation)?;
        Ok(Self::from_endpoint(endpoint, store, key)?)
    }

    /// Opens the endpoint `store` holds ([`StoreError::Empty`] if none),
    /// reading every record once.
    pub fn open(store: impl Store + 'static, key: &PickleKey) -> Result<Self, StoreError> {
        let inner = WriteThrough::open(Box::new(store), key)?;
        Ok(Self { inner })
    }

    /// Reloads every record from the store (after [`StoreError::Stale`] the
    /// endpoint has already done so; after [`StoreError::Poisoned`] this
    /// makes it usable again). The clock and random generator are kept.
    pub fn reload(&mut self) -> Result<(), StoreError> {
        self.inner.reload()
    }

    /// The store's generation this endpoint last loaded or committed.
    pub fn store_generation(&self) -> u64 {
        self.inner.generation()
    }

    /// The endpoint (read-only; change it through this type's methods).
    pub fn endpoint(&self) -> &MatrixEndpoint {
        &self.inner.endpoint
    }

    /// [`MatrixEndpoint::set_clock`] (not stored).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.inner.endpoint.set_clock(clock);
    }

    /// [`MatrixEndpoint::set_rng`] (not stored; tests only).
    #[cfg(any(test, feature = "insecure-test-rng"))]
    pub fn set_rng(&mut self, rng: Box<dyn rand::CryptoRng + Send>) {
        self.inner.endpoint.set_rng(rng);
    }

    /// [`DurableMatrixEndpoint::transact`] for an operation that changes
    /// the requests in flight (issues or answers requests): if its commit
    /// fails, they are put back as they were before it.
    pub(crate) fn transact_requests<T, E>(
        &mut self,
        op: impl FnOnce(&mut MatrixEndpoint) -> Result<T, E>,
    ) -> Result<T, DurableError<E>> {
        let before = self.inner.endpoint.in_flight();
        let result = self.transact(op);
        if let Err(DurableError::Store(_)) = result {
            self.inner.endpoint.restore_in_flight(before);
        }
        result
    }

    /// [`MatrixEndpoint::outgoing_requests`], committed: an upload is
    /// returned only once the keys it publishes are durable.
    pub fn outgoing_requests(
        &mut self,
    ) -> Result<Vec<OutgoingRequest>, DurableError<EndpointError>> {
        self.transact_requests(MatrixEndpoint::outgoing_requests)
    }

    /// [`MatrixEndpoint::mark_request_as_sent`], committed: the keys an
    /// upload published, the devices a query brought and the Olm sessions
    /// started from claimed keys are durable before the outcome returns.
    pub fn mark_request_as_sent(
        &mut self,
        id: RequestId,
        response: &str,
    ) -> Result<ResponseOutcome, DurableError<EndpointError>> {
        self.transact_requests(|e| e.mark_request_as_sent(id, response))
    }

    /// [`MatrixEndpoint::update_tracked_users`], committed.
    pub fn update_tracked_users<'a>(
        &mut self,
        users: impl IntoIterator<Item = &'a UserId>,
    ) -> Result<Vec<UserId>, StoreError> {
        self.inner.run(|e| Ok(e.update_tracked_users(users)))
    }

    /// [`MatrixEndpoint::keys_claim_request`], committed: the request is
    /// returned only once the request counter that named it is durable
    /// (the claim in flight itself is not stored).
    pub fn keys_claim_request<'a>(
        &mut self,
        users: impl IntoIterator<Item = &'a UserId>,
    ) -> Result<Option<OutgoingRequest>, StoreError> {
        let result = self.transact_requests(|e| Ok::<_, StoreError>(e.keys_claim_request(users)));
        result.map_err(|e| match e {
            DurableError::Store(e) | DurableError::Operation(e) => e,
        })
    }

    committed! {
        /// [`MatrixEndpoint::receive_sync_changes`], committed: every
        /// decrypted to-device event is reported only once the Olm sessions
        /// it advanced, the one-time keys it consumed and the room keys it
        /// stored are durable.
        fn receive_sync_changes(&mut self, sync: &str) -> SyncOutcome, JsonError => fallible;

        /// [`MatrixEndpoint::receive_changes`], committed (as
        /// [`DurableMatrixEndpoint::receive_sync_changes`]).
        fn receive_changes(&mut self, changes: SyncChanges) -> SyncOutcome, StoreError => infallible;

        /// [`MatrixEndpoint::receive_to_device`], committed (as
        /// [`DurableMatrixEndpoint::receive_sync_changes`]).
        fn receive_to_device(
            &mut self,
            event: ToDeviceEvent,
        ) -> ProcessedToDevice, ToDeviceError => fallible;

        /// [`MatrixEndpoint::set_room_encryption`], committed.
        fn set_room_encryption(
            &mut self,
            room: &RoomId,
            settings: RoomEncryptionContent,
        ) -> (), StoreError => infallible;

        /// [`MatrixEndpoint::set_share_policy`], committed.
        fn set_share_policy(&mut self, policy: SharePolicy) -> (), StoreError => infallible;

        /// [`MatrixEndpoint::set_device_trust`], committed.
        fn set_device_trust(
            &mut self,
            user: &UserId,
            device: &DeviceId,
            trust: DeviceTrust,
        ) -> bool, StoreError => infallible;

        /// [`MatrixEndpoint::rotate_room_key`], committed.
        fn rotate_room_key(&mut self, room: &RoomId) -> bool, StoreError => infallible;

        /// [`MatrixEndpoint::share_room_key`], committed: the requests are
        /// returned only once the advanced Olm sessions, the new outbound
        /// session and its recipients are durable.
        fn share_room_key(
            &mut self,
            room: &RoomId,
            users: &[UserId],
        ) -> ShareOutcome, ShareError => fallible;

        /// [`MatrixEndpoint::forward_room_key`], committed.
        fn forward_room_key(
            &mut self,
            room: &RoomId,
            session_id: &GroupSessionId,
            to: &DeviceId,
        ) -> OutgoingRequest, ShareError => fallible;

        /// [`MatrixEndpoint::encrypt_room_event`], committed: the content is
        /// returned only once the advanced Megolm ratchet is durable.
        fn encrypt_room_event(
            &mut self,
            room: &RoomId,
            event_type: &str,
            content: &RawValue,
        ) -> MegolmEncryptedContent, RoomEventError => fallible;

        /// [`MatrixEndpoint::decrypt_room_event`], committed: the event is
        /// returned only once its replay record is durable.
        fn decrypt_room_event(
            &mut self,
            room: &RoomId,
            event: &EncryptedRoomEvent,
        ) -> DecryptedRoomEvent, RoomEventError => fallible;

        /// [`MatrixEndpoint::decrypt_room_event_json`], committed (as
        /// [`DurableMatrixEndpoint::decrypt_room_event`]).
        fn decrypt_room_event_json(
            &mut self,
            room: &RoomId,
            event: &str,
        ) -> DecryptedRoomEvent, RoomEventError => fallible;

        /// [`MatrixEndpoint::forget_room_key`], committed.
        fn forget_room_key(
            &mut self,
            room: &RoomId,
            session_id: &GroupSessionId,
        ) -> bool, StoreError => infallible;
    }

    /// Runs several operations on the endpoint as one transaction: `op`'s
    /// result is returned only once everything it changed is committed (if
    /// it fails, what it changed before failing is committed all the same).
    pub fn transact<T, E>(
        &mut self,
        op: impl FnOnce(&mut MatrixEndpoint) -> Result<T, E>,
    ) -> Result<T, DurableError<E>> {
        self.inner.run(|e| op(e).map_err(DurableError::Operation))
    }
}

//! [`DurableEndpoint`]: an [`Endpoint`] whose every operation commits what
//! it changed to a [`Store`] before its result is handed back.
//!
//! The endpoint stays in memory (a write-through cache): opening loads every
//! record once; each operation records which records it touched (the
//! account, one peer's sessions, one room's outbound session, one room key,
//! one replay record...), and before returning writes exactly those in one
//! transaction, conditioned on the store's generation. So an encryption's
//! ciphertext is released only once its advanced ratchet is durable, and a
//! decryption's plaintext only once its consumed one-time key is gone and
//! its replay record is written; the cost of an operation does not grow
//! with what the endpoint holds.
//!
//! Guarantees: a commit that fails (an I/O error, a full disk) returns
//! [`RoomError::Store`] and leaves the endpoint as it was before the
//! operation: the touched records are read back from the store, which the
//! failed transaction did not change. A commit refused as
//! [`StoreError::Stale`] (another process wrote since this one loaded)
//! reloads the newest state instead, so a process holding stale state never
//! overwrites newer state. If the store cannot be read back either, the
//! endpoint refuses every operation ([`StoreError::Poisoned`]) until it is
//! opened again.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::RoomError;
use super::endpoint::{
    Endpoint, KeysToPublish, ReceivedRoomKey, RoomKeyShareOutcome, ToDeviceMessage,
};
use super::event::{DecryptedEvent, EncryptedEvent};
use super::policy::{Clock, RotationPolicy};
use super::store::KeyAdded;
use super::touched::Touch;
use crate::account::{DeviceKeys, SelfSignedDevice, SignedOneTimeKey};
use crate::group::{ExportedSessionKey, GroupSessionId};
use crate::keys::{Curve25519PublicKey, IdentityKeys};
use crate::pickle::PickleKey;
use crate::session::DeviceMessage;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Writer};
use crate::store::{Recorded, Store, StoreError, WriteThrough};

/// An [`Endpoint`] kept in a durable [`Store`], one record per object.
///
/// Every read-only method of [`Endpoint`] is available through `Deref`;
/// every operation that changes state is a method here, and commits its
/// changes before returning. The crate documentation ("Durable state")
/// says when to choose it over pickles; PROTOCOL.md section 14 gives the
/// record layout.
pub struct DurableEndpoint {
    inner: WriteThrough<Endpoint>,
}

impl fmt::Debug for DurableEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableEndpoint")
            .field("endpoint", &self.inner.endpoint)
            .field("generation", &self.inner.generation())
            .field("poisoned", &self.inner.poisoned())
            .finish_non_exhaustive()
    }
}

impl Deref for DurableEndpoint {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.inner.endpoint
    }
}

/// The methods of [`DurableEndpoint`] that run the [`Endpoint`] method of
/// the same name and commit what it changed: `run` for a method returning
/// a `Result`, `run_infallible` for one that cannot fail.
macro_rules! committed {
    ($($(#[$doc:meta])* fn $name:ident(&mut self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty => $how:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self $(, $arg: $ty)*) -> Result<$ret, RoomError> {
                self.$how(|e| e.$name($($arg),*))
            }
        )*
    };
}

impl Recorded for Endpoint {
    type Touch = Touch;

    fn write_record(&self, touch: &Touch, w: &mut Writer) -> bool {
        Endpoint::write_record(self, touch, w)
    }

    fn apply_record(&mut self, touch: &Touch, contents: Option<&[u8]>) -> Result<(), DecodeError> {
        Endpoint::apply_record(self, touch, contents)
    }

    fn from_opened(opened: Vec<(Touch, Zeroizing<Vec<u8>>)>) -> Result<Self, StoreError> {
        Endpoint::from_opened(opened)
    }

    fn track_changes(&mut self, on: bool) {
        Endpoint::track_changes(self, on);
    }

    fn take_changes(&mut self) -> Vec<Touch> {
        Endpoint::take_changes(self)
    }

    fn all_records(&self) -> Vec<Touch> {
        Endpoint::all_records(self)
    }

    fn keep_unstored(&mut self, old: &mut Self) {
        self.clock = Arc::clone(&old.clock);
        self.share_threads = old.share_threads;
        self.limits = old.limits;
        std::mem::swap(&mut self.rng, &mut old.rng);
    }
}

impl DurableEndpoint {
    /// A new device with a fresh account, saved into `store`, which must
    /// hold no endpoint ([`StoreError::NotEmpty`]). Records are sealed
    /// under subkeys of `key`.
    pub fn create(
        store: impl Store + 'static,
        key: &PickleKey,
        user_id: &str,
        device_id: &str,
    ) -> Result<Self, RoomError> {
        Self::save_new(Endpoint::new(user_id, device_id)?, Box::new(store), key)
    }

    /// Opens the endpoint `store` holds ([`StoreError::Empty`] if none),
    /// reading every record once.
    pub fn open(store: impl Store + 'static, key: &PickleKey) -> Result<Self, RoomError> {
        let inner = WriteThrough::open(Box::new(store), key)?;
        Ok(Self { inner })
    }

    /// Migrates an endpoint kept as a whole pickle (today's way) into
    /// `store`, which must hold no endpoint: restores the pickle and saves
    /// every object as its own record, in one transaction. Records are
    /// sealed under subkeys of the same key. Stop writing the pickle once
    /// this succeeds.
    pub fn migrate_pickle(
        pickle: &str,
        key: &PickleKey,
        store: impl Store + 'static,
    ) -> Result<Self, RoomError> {
        let endpoint = Endpoint::from_pickle(pickle, key)?;
        Self::save_new(endpoint, Box::new(store), key)
    }

    /// Saves `endpoint` whole into `store`, which must hold no endpoint.
    pub fn from_endpoint(
        endpoint: Endpoint,
        store: impl Store + 'static,
        key: &PickleKey,
    ) -> Result<Self, RoomError> {
        Self::save_new(endpoint, Box::new(store), key)
    }

    fn save_new(
        endpoint: Endpoint,
        store: Box<dyn Store>,
        key: &PickleKey,
    ) -> Result<Self, RoomError> {
        let inner = WriteThrough::save_new(endpoint, store, key)?;
        Ok(Self { inner })
    }

    /// Reloads every record from the store (after [`StoreError::Stale`] the
    /// endpoint has already done so; after [`StoreError::Poisoned`] this
    /// makes it usable again). The clock, random generator and thread count
    /// set on this endpoint are kept.
    pub fn reload(&mut self) -> Result<(), RoomError> {
        self.inner.reload().map_err(RoomError::from)
    }

    /// The store's generation this endpoint last loaded or committed.
    pub fn store_generation(&self) -> u64 {
        self.inner.generation()
    }

    /// The endpoint (read-only; change it through this type's methods).
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// Runs `op` on the endpoint, then commits every record it touched.
    fn run<T>(
        &mut self,
        op: impl FnOnce(&mut Endpoint) -> Result<T, RoomError>,
    ) -> Result<T, RoomError> {
        self.inner.run(op)
    }

    /// Runs several operations on the endpoint as one transaction: `op`'s
    /// result is returned only once everything it changed is committed (if
    /// it fails, what it changed before failing is committed all the same,
    /// as each operation changes nothing when it fails). For example,
    /// publishing keys and marking them published at once.
    pub fn transact<T>(
        &mut self,
        op: impl FnOnce(&mut Endpoint) -> Result<T, RoomError>,
    ) -> Result<T, RoomError> {
        self.run(op)
    }

    fn run_infallible<T>(&mut self, op: impl FnOnce(&mut Endpoint) -> T) -> Result<T, RoomError> {
        self.run(|e| Ok(op(e)))
    }

    /// [`Endpoint::set_clock`] (not stored).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.inner.endpoint.set_clock(clock);
    }

    /// [`Endpoint::set_rng`] (not stored; tests only).
    #[cfg(any(test, feature = "insecure-test-rng"))]
    pub fn set_rng(&mut self, rng: Box<dyn rand::CryptoRng + Send>) {
        self.inner.endpoint.set_rng(rng);
    }

    /// [`Endpoint::set_share_threads`] (not stored).
    pub fn set_share_threads(&mut self, threads: usize) {
        self.inner.endpoint.set_share_threads(threads);
    }

    committed! {
        /// [`Endpoint::set_rotation_policy`], committed.
        fn set_rotation_policy(&mut self, policy: RotationPolicy) -> () => run_infallible;

        /// [`Endpoint::keys_to_publish`], committed.
        fn keys_to_publish(&mut self, count: usize) -> KeysToPublish => run_infallible;

        /// [`Endpoint::mark_keys_as_published`], committed.
        fn mark_keys_as_published(&mut self, published: &KeysToPublish) -> () => run_infallible;

        /// [`Endpoint::rotate_fallback_key`], committed.
        fn rotate_fallback_key(&mut self) -> () => run_infallible;

        /// [`Endpoint::establish_session`], committed.
        fn establish_session(
            &mut self,
            device: &DeviceKeys,
            one_time_key: &SignedOneTimeKey,
        ) -> SelfSignedDevice => run;

        /// [`Endpoint::forget_peer`], committed.
        fn forget_peer(&mut self, device_key: &Curve25519PublicKey) -> usize => run_infallible;

        /// [`Endpoint::rotate_room_key`], committed.
        fn rotate_room_key(&mut self, room_id: &str) -> bool => run_infallible;

        /// [`Endpoint::encrypt_event`], committed: the ciphertext is returned
        /// only once the advanced group ratchet is durable.
        fn encrypt_event(
            &mut self,
            room_id: &str,
            event_type: &str,
            content: &serde_json::Value,
        ) -> EncryptedEvent => run;

        /// [`Endpoint::decrypt_event`], committed: the event is returned only
        /// once its replay record is durable.
        fn decrypt_event(
            &mut self,
            room_id: &str,
            event_id: &str,
            envelope: &EncryptedEvent,
        ) -> DecryptedEvent => run;

        /// [`Endpoint::import_room_key`], committed.
        fn import_room_key(
            &mut self,
            room_id: &str,
            sender: IdentityKeys,
            key: &ExportedSessionKey,
        ) -> KeyAdded => run;

        /// [`Endpoint::forget_room_key`], committed.
        fn forget_room_key(
            &mut self,
            room_id: &str,
            session_id: &GroupSessionId,
        ) -> bool => run_infallible;

        /// [`Endpoint::forget_room_keys`], committed.
        fn forget_room_keys(&mut self, room_id: &str) -> usize => run_infallible;

        /// [`Endpoint::recover_from_rollback`], committed. A store never rolls
        /// back by itself; this is for a store restored from a backup.
        fn recover_from_rollback(&mut self) -> () => run_infallible;

        /// [`Endpoint::share_room_key`], committed: the messages are returned
        /// only once the advanced pairwise ratchets and the recipients are
        /// durable (send them, then confirm with
        /// [`DurableEndpoint::mark_room_key_sent`]).
        fn share_room_key(
            &mut self,
            room_id: &str,
            devices: &[SelfSignedDevice],
        ) -> RoomKeyShareOutcome => run;

        /// [`Endpoint::reshare_room_key`], committed.
        fn reshare_room_key(
            &mut self,
            room_id: &str,
            device: &SelfSignedDevice,
        ) -> Option<ToDeviceMessage> => run;

        /// [`Endpoint::mark_room_key_sent`], committed.
        fn mark_room_key_sent(&mut self, outcome: &RoomKeyShareOutcome) -> usize => run_infallible;

        /// [`Endpoint::mark_room_key_sent_to`], committed.
        fn mark_room_key_sent_to(
            &mut self,
            room_id: &str,
            session_id: &GroupSessionId,
            recipient: &Curve25519PublicKey,
        ) -> bool => run_infallible;

        /// [`Endpoint::receive_device_message`], committed: the received key is
        /// reported only once the advanced (or new) pairwise session, the
        /// consumed one-time key and the stored room key are durable.
        fn receive_device_message(
            &mut self,
            sender_user_id: &str,
            sender_key: &Curve25519PublicKey,
            message: &DeviceMessage,
        ) -> ReceivedRoomKey => run;
    }
}

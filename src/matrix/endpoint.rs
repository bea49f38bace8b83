//! [`MatrixEndpoint`]: one Matrix device's key management, driven like
//! Element's `OlmMachine`: it hands out the requests to send
//! ([`MatrixEndpoint::outgoing_requests`]), takes the server's answers
//! ([`MatrixEndpoint::mark_request_as_sent`]) and each sync
//! ([`MatrixEndpoint::receive_sync_changes`]).
//!
//! What it does: publishes the device keys, keeps one-time and fallback
//! keys stocked, tracks the device lists of the users it is told about,
//! claims one-time keys and starts Olm sessions from them, decrypts and
//! checks the to-device events of each sync (`receive.rs`), shares room keys
//! per the room's `m.room.encryption` settings (`share.rs`), encrypts and
//! decrypts room events (`room_events.rs`), and pickles all of it
//! (`persist.rs`) or keeps it in a durable store (`durable.rs`).
//!
//! Guarantees: sans-I/O; at most one upload and one query are in flight; a
//! key is marked published only when the server confirmed the upload that
//! carried it, and no key is generated while an upload is in flight; a
//! device is counted as served a room key only when the to-device request
//! carrying it is confirmed; one-time keys are claimed only for devices
//! without a usable Olm session (or with a wedged one, at most once an hour
//! per device), and never twice at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use thiserror::Error;

use super::claim::{
    ClaimOutcome, OneTimeKeyError, RejectedKey, keys_claim_requests, receive_keys_claim_json,
};
use super::device_keys::{Device, OLM_V1, SIGNED_CURVE25519};
use super::events::{DUMMY, DummyContent, RoomEncryptionContent};
use super::ids::{DeviceId, RoomId, UserId};
use super::json::{JsonError, parse};
use super::olm_send::OlmSender;
use super::olm_sessions::OlmSessionStore;
use super::outbound::{OutboundMegolmRoom, PendingMark};
use super::query::{KeysClaimRequest, KeysQueryRequest};
use super::records::Committed;
use super::room_keys::{MatrixRoomKeyInfo, MegolmKeyStore};
use super::share::{DeviceTrust, SharePolicy};
use super::signing::SignatureError;
use super::to_device::SendToDeviceRequest;
use super::top_up::KeyTopUp;
use super::tracked::TrackedMap;
use super::tracker::{DeviceTracker, KeysQuery, KeysQueryOutcome};
use super::upload::{KeysUploadRequest, KeysUploadResponse};
use super::withheld::{WithheldNotice, WithheldNotices};
use crate::account::Account;
use crate::consts::MAX_PENDING_TO_DEVICE_REQUESTS;
use crate::crypto::os_rng;
use crate::keys::{Curve25519PublicKey, IdentityKeys};
use crate::pickle::Generation;
use crate::room::{Clock, Limits, RotationReason, SystemClock, Touched};

/// Why the endpoint could not take an answer or build a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EndpointError {
    /// No request with this id is waiting for an answer.
    #[error("no such request in flight")]
    UnknownRequest,
    /// The server's answer was refused whole; the request is dropped
    /// (what it was for is asked again by the next outgoing requests).
    #[error("response refused: {0}")]
    Response(#[from] JsonError),
    /// Signing the upload failed.
    #[error("signing failed: {0}")]
    Signature(#[from] SignatureError),
}

/// Identifies a request until its answer is given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A request for the app to send to the homeserver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// Give it back to [`MatrixEndpoint::mark_request_as_sent`].
    pub id: RequestId,
    /// What to send.
    pub kind: RequestKind,
}

/// The endpoint and body of an [`OutgoingRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /_matrix/client/v3/keys/upload`.
    KeysUpload(KeysUploadRequest),
    /// `POST /_matrix/client/v3/keys/query`.
    KeysQuery(KeysQueryRequest),
    /// `POST /_matrix/client/v3/keys/claim`.
    KeysClaim(KeysClaimRequest),
    /// `PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}` (the
    /// event type and transaction id are in the request).
    ToDevice(SendToDeviceRequest),
}

impl RequestKind {
    /// The JSON body.
    pub fn body(&self) -> Value {
        let value = match self {
            Self::KeysUpload(body) => serde_json::to_value(body),
            Self::KeysQuery(body) => serde_json::to_value(body),
            Self::KeysClaim(body) => serde_json::to_value(body),
            Self::ToDevice(body) => Ok(body.body()),
        };
        value.unwrap_or(Value::Null)
    }
}

/// What an answer changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// The upload was stored; the server now holds this many unclaimed
    /// one-time keys.
    KeysUploaded {
        /// Unclaimed `signed_curve25519` keys on the server.
        one_time_key_count: u64,
    },
    /// Device lists were updated.
    KeysQueried(KeysQueryOutcome),
    /// One-time keys were claimed and checked, and an Olm session was
    /// started with each device that got one (a key no session could be
    /// started from is moved to `rejected`).
    KeysClaimed(ClaimOutcome),
    /// A to-device request was sent: the devices it carried a room key or
    /// a withheld notice to now count as served.
    ToDeviceSent {
        /// Devices marked as served.
        marked: usize,
    },
}

/// One Matrix device's key management (see the module docs).
pub struct MatrixEndpoint {
    pub(super) account: Account,
    pub(super) user_id: UserId,
    pub(super) device_id: DeviceId,
    pub(super) tracker: DeviceTracker,
    pub(super) device_keys_published: bool,
    /// Unclaimed one-time keys on the server, once known.
    pub(super) server_key_count: Option<u64>,
    pub(super) unused_fallback_key_types: Option<Vec<String>>,
    pub(super) upload: Option<(RequestId, KeysUploadRequest)>,
    /// The keys the upload in flight carries, to mark exactly those as
    /// published when the server confirms it.
    pub(super) uploading: Vec<crate::account::SignedOneTimeKey>,
    pub(super) query: Option<(RequestId, KeysQuery)>,
    pub(super) claims: BTreeMap<RequestId, KeysClaimRequest>,
    pub(super) next_request: u64,
    /// Olm sessions per peer device.
    pub(super) sessions: OlmSessionStore,
    /// Megolm keys we can read with.
    pub(super) inbound: MegolmKeyStore,
    /// `m.room_key.withheld` notices received.
    pub(super) withheld: WithheldNotices,
    /// Each room's outbound Megolm session and recipients.
    pub(super) rooms: TrackedMap<RoomId, OutboundMegolmRoom>,
    /// Each room's `m.room.encryption` settings, as the app gave them.
    pub(super) settings: TrackedMap<RoomId, RoomEncryptionContent>,
    /// Rooms whose outbound session was dropped, and why.
    pub(super) discarded: TrackedMap<RoomId, RotationReason>,
    /// To-device requests handed out and not yet confirmed: what
    /// confirming each marks.
    pub(super) pending: TrackedMap<RequestId, PendingMark>,
    /// To-device requests [`MatrixEndpoint::outgoing_requests`] returns until
    /// they are confirmed (`m.dummy` on a new session, forwarded keys).
    pub(super) queued: TrackedMap<RequestId, SendToDeviceRequest>,
    /// Devices a claim found no key for (so no Olm session can be made), and
    /// whether an `m.no_olm` notice was confirmed sent to them.
    pub(super) no_olm: TrackedMap<Curve25519PublicKey, bool>,
    /// The app's trust decisions per device.
    pub(super) trust: TrackedMap<(UserId, DeviceId), (crate::keys::Ed25519PublicKey, DeviceTrust)>,
    /// Who room keys go to.
    pub(super) policy: SharePolicy,
    pub(super) limits: Limits,
    pub(super) clock: Arc<dyn Clock>,
    /// Every draw (one-time keys excepted: the account draws those).
    pub(super) rng: Box<dyn rand::CryptoRng + Send>,
    pub(super) generation: Generation,
    /// Rooms whose outbound session (not its recipients) changed, for the
    /// durable store.
    pub(super) advanced: Touched<RoomId>,
    /// The small records as last committed, for the durable store.
    pub(super) committed: Committed,
}

impl MatrixEndpoint {
    /// The endpoint of `account` as device `device_id` of `user_id` (the
    /// ids the server gave at login).
    pub fn new(account: Account, user_id: UserId, device_id: DeviceId) -> Self {
        let tracker =
            DeviceTracker::new(user_id.clone(), device_id.clone(), account.identity_keys());
        Self {
            account,
            user_id,
            device_id,
            tracker,
            device_keys_published: false,
            server_key_count: None,
            unused_fallback_key_types: None,
            upload: None,
            uploading: Vec::new(),
            query: None,
            claims: BTreeMap::new(),
            next_request: 0,
            sessions: OlmSessionStore::default(),
            inbound: MegolmKeyStore::default(),
            withheld: WithheldNotices::default(),
            rooms: TrackedMap::default(),
            settings: TrackedMap::default(),
            discarded: TrackedMap::default(),
            pending: TrackedMap::default(),
            queued: TrackedMap::default(),
            no_olm: TrackedMap::default(),
            trust: TrackedMap::default(),
            policy: SharePolicy::default(),
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            rng: Box::new(os_rng()),
            generation: Generation::default(),
            advanced: Touched::default(),
            committed: Committed::default(),
        }
    }

    /// Replaces the clock (rotation by age, the wedged-session rate limit,
    /// fallback key expiry). Not pickled.
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// Replaces the random generator for every session, room key and
    /// ratchet key the endpoint makes from now on, for deterministic tests
    /// and benchmarks only (feature `insecure-test-rng`).
    #[cfg(any(test, feature = "insecure-test-rng"))]
    pub fn set_rng(&mut self, rng: Box<dyn rand::CryptoRng + Send>) {
        self.rng = rng;
    }

    /// Test hook: sets the bounds.
    #[cfg(test)]
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.inbound.limits = limits;
    }

    /// The current time from the endpoint's clock.
    pub(super) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Whether `device` is this device: by ids, or by Curve25519 key (a
    /// server's copy of our keys carries `unsigned` data and may differ
    /// from the tracker's own entry in everything but these).
    pub(super) fn is_own_device(&self, device: &Device) -> bool {
        (device.user_id() == &self.user_id && device.device_id() == &self.device_id)
            || device.keys().curve25519 == self.account.identity_keys().curve25519
    }

    /// Whether we hold an Olm session with the device.
    pub fn has_olm_session(&self, device: &Device) -> bool {
        self.sessions.has_session(&device.keys().curve25519)
    }

    /// How many devices we hold Olm sessions with.
    pub fn olm_peer_count(&self) -> usize {
        self.sessions.len()
    }

    /// Every Megolm key held (no secrets): room, session, attribution,
    /// first index, replay records.
    pub fn room_keys(&self) -> Vec<MatrixRoomKeyInfo> {
        self.inbound.list()
    }

    /// Forgets a Megolm key (and its replay record); returns whether it was
    /// held. Events of that session no longer decrypt.
    pub fn forget_room_key(
        &mut self,
        room: &RoomId,
        session_id: &crate::group::GroupSessionId,
    ) -> bool {
        self.inbound.forget(room, session_id)
    }

    /// Replay records held in all.
    pub fn replay_records(&self) -> usize {
        self.inbound.replay_records()
    }

    /// The `m.room_key.withheld` notice received for a room's session, if
    /// any (an unauthenticated hint for the user interface).
    pub fn withheld_notice(&self, room: &RoomId, session_id: &str) -> Option<&WithheldNotice> {
        self.withheld.for_session(room, session_id)
    }

    /// The `m.no_olm` notice received from the device with Curve25519 key
    /// `sender_key`, if any.
    pub fn no_olm_notice(&self, sender_key: &Curve25519PublicKey) -> Option<&WithheldNotice> {
        self.withheld.no_olm(sender_key)
    }

    /// How many withheld notices are kept.
    pub fn withheld_notice_count(&self) -> usize {
        self.withheld.len()
    }

    /// Registers a to-device request: what confirming it marks, and (when
    /// `queue`) that [`MatrixEndpoint::outgoing_requests`] returns it until
    /// then. At most [`MAX_PENDING_TO_DEVICE_REQUESTS`] are remembered; the
    /// oldest is forgotten (its devices are served again by the next share).
    pub(super) fn register_to_device(
        &mut self,
        request: SendToDeviceRequest,
        mark: PendingMark,
        queue: bool,
    ) -> OutgoingRequest {
        let id = self.next_id();
        self.pending.insert(id, mark);
        if queue {
            self.queued.insert(id, request.clone());
        }
        while self.pending.len() > MAX_PENDING_TO_DEVICE_REQUESTS {
            if let Some((oldest, _)) = self.pending.pop_first() {
                self.queued.remove(&oldest);
            }
        }
        OutgoingRequest {
            id,
            kind: RequestKind::ToDevice(request),
        }
    }

    /// A fresh transaction id for a to-device request (random, so it is
    /// unique per access token across restores).
    pub(super) fn txn_id(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        format!("roomseal-{}", crate::keys::base64_encode(&bytes))
    }

    /// Who room keys go to.
    pub fn share_policy(&self) -> SharePolicy {
        self.policy
    }

    /// This device's user.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// This device's id.
    pub fn device_id(&self) -> &DeviceId {
        &self.device_id
    }

    /// This device's identity keys.
    pub fn identity_keys(&self) -> IdentityKeys {
        self.account.identity_keys()
    }

    /// The account (to pickle it).
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The device tracker.
    pub fn tracker(&self) -> &DeviceTracker {
        &self.tracker
    }

    pub(super) fn next_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.wrapping_add(1);
        id
    }

    /// The requests to send now: a key upload when keys are missing on the
    /// server, a key query when device lists are outdated. A request is
    /// returned again on every call until its answer is given back.
    pub fn outgoing_requests(&mut self) -> Result<Vec<OutgoingRequest>, EndpointError> {
        if self.upload.is_none() {
            self.prepare_upload()?;
        }
        if self.query.is_none()
            && let Some(query) = self.tracker.keys_query()
        {
            let id = self.next_id();
            self.query = Some((id, query));
        }
        let mut requests = Vec::new();
        if let Some((id, body)) = &self.upload {
            requests.push(OutgoingRequest {
                id: *id,
                kind: RequestKind::KeysUpload(body.clone()),
            });
        }
        if let Some((id, query)) = &self.query {
            requests.push(OutgoingRequest {
                id: *id,
                kind: RequestKind::KeysQuery(query.body.clone()),
            });
        }
        for (id, request) in &self.queued {
            requests.push(OutgoingRequest {
                id: *id,
                kind: RequestKind::ToDevice(request.clone()),
            });
        }
        Ok(requests)
    }

    fn prepare_upload(&mut self) -> Result<(), EndpointError> {
        // Before the first answer the server's count is unknown: stock up
        // as if it held none.
        let top_up = KeyTopUp::decide(
            &self.account,
            self.server_key_count.unwrap_or(0),
            self.unused_fallback_key_types.as_deref(),
        );
        let now = self.now_ms();
        top_up.apply(&mut self.account, now);
        let body = KeysUploadRequest::from_account(
            &self.account,
            &self.user_id,
            &self.device_id,
            !self.device_keys_published,
        )?;
        if !body.is_empty() {
            let id = self.next_id();
            self.upload = Some((id, body));
            self.uploading = self.account.one_time_keys();
            self.uploading
                .extend(self.account.unpublished_fallback_key());
        }
        Ok(())
    }

    /// Starts tracking `users` (the members of an encrypted room); returns
    /// those refused because the tracker is full.
    pub fn update_tracked_users<'a>(
        &mut self,
        users: impl IntoIterator<Item = &'a UserId>,
    ) -> Vec<UserId> {
        self.tracker.track_users(users)
    }

    /// A `/keys/claim` request for the known Olm-capable devices of `users`
    /// (this one excepted) that need an Olm session: those we hold none
    /// with, and those whose session is wedged (a message from them could
    /// not be read) when we did not start one with them in the last hour.
    /// Devices a claim is already in flight for are left out; at most
    /// [`crate::consts::MAX_KEYS_CLAIM_DEVICES`] per request. `None` if no
    /// device needs one. Not part of [`MatrixEndpoint::outgoing_requests`]:
    /// send it and give the answer back like any other; the answer starts the
    /// sessions.
    pub fn keys_claim_request<'a>(
        &mut self,
        users: impl IntoIterator<Item = &'a UserId>,
    ) -> Option<OutgoingRequest> {
        let now = self.now_ms();
        let in_flight: BTreeSet<(&UserId, &DeviceId)> = self
            .claims
            .values()
            .flat_map(|c| c.one_time_keys.iter())
            .flat_map(|(u, devices)| devices.keys().map(move |d| (u, d)))
            .collect();
        let unique: BTreeSet<&UserId> = users.into_iter().collect();
        let devices: Vec<_> = unique
            .into_iter()
            .flat_map(|u| self.tracker.devices(u))
            .filter(|d| d.supports(OLM_V1) && !self.is_own_device(d))
            .filter(|d| !in_flight.contains(&(d.user_id(), d.device_id())))
            .filter(|d| self.sessions.needs_session(&d.keys().curve25519, now))
            .collect();
        let body = keys_claim_requests(devices).into_iter().next()?;
        let id = self.next_id();
        self.claims.insert(id, body.clone());
        Some(OutgoingRequest {
            id,
            kind: RequestKind::KeysClaim(body),
        })
    }

    /// Starts an Olm session with every device of a claim answer; sends an
    /// `m.dummy` on the new session of a device whose old one was wedged;
    /// remembers the devices that got no key (`m.no_olm`).
    fn start_sessions(&mut self, outcome: &mut ClaimOutcome) {
        let now = self.now_ms();
        let keys = std::mem::take(&mut outcome.keys);
        for claimed in keys {
            let curve = claimed.device.keys().curve25519;
            let started =
                self.account
                    .create_olm_outbound_session(curve, claimed.key, &mut *self.rng);
            let mut session = match started {
                Ok(session) => session,
                Err(_) => {
                    outcome.rejected.push(RejectedKey {
                        user_id: claimed.device.user_id().to_string(),
                        device_id: claimed.device.device_id().to_string(),
                        error: OneTimeKeyError::Unusable,
                    });
                    continue;
                }
            };
            let wedged = self.sessions.is_wedged(&curve);
            let dummy = if wedged {
                let sender = OlmSender {
                    user_id: &self.user_id,
                    keys: self.account.identity_keys(),
                };
                sender
                    .encrypt(
                        &mut session,
                        (claimed.device.user_id(), &claimed.device.keys()),
                        DUMMY,
                        &DummyContent {},
                        &mut *self.rng,
                    )
                    .ok()
            } else {
                None
            };
            self.sessions
                .add(curve, session, true, Some(now), &self.limits);
            self.no_olm.remove(&curve);
            if let Some(content) = dummy {
                let mut request =
                    SendToDeviceRequest::new(super::events::ROOM_ENCRYPTED, self.txn_id());
                request.add(
                    claimed.device.user_id(),
                    claimed.device.device_id().clone(),
                    content,
                );
                self.register_to_device(request, PendingMark::Nothing, true);
            }
            outcome.keys.push(claimed);
        }
        for (user, device) in &outcome.missing {
            if let Some(d) = self.tracker.device(user, device) {
                let curve = d.keys().curve25519;
                if !self.sessions.has_session(&curve) {
                    self.no_olm.entry(curve).or_insert(false);
                }
            }
        }
    }

    /// Takes the server's answer (JSON text) to request `id`.
    pub fn mark_request_as_sent(
        &mut self,
        id: RequestId,
        response: &str,
    ) -> Result<ResponseOutcome, EndpointError> {
        if let Some((_, body)) = self.upload.take_if(|(i, _)| *i == id) {
            let answer: KeysUploadResponse = parse(response)?;
            let count = answer
                .one_time_key_counts
                .check("one-time key algorithms")?
                .get(SIGNED_CURVE25519)
                .copied()
                .unwrap_or(0);
            let published = std::mem::take(&mut self.uploading);
            self.account.mark_keys_as_published(&published);
            self.device_keys_published |= body.device_keys.is_some();
            if !body.fallback_keys.is_empty() {
                // The server now holds an unused fallback key.
                self.unused_fallback_key_types = Some(vec![SIGNED_CURVE25519.to_owned()]);
            }
            self.server_key_count = Some(count);
            return Ok(ResponseOutcome::KeysUploaded {
                one_time_key_count: count,
            });
        }
        if let Some((_, query)) = self.query.take_if(|(i, _)| *i == id) {
            let outcome = self.tracker.receive_keys_query_json(&query, response)?;
            for device in &outcome.removed_devices {
                self.device_left(&device.keys().curve25519);
            }
            return Ok(ResponseOutcome::KeysQueried(outcome));
        }
        if let Some(request) = self.claims.remove(&id) {
            let mut outcome = receive_keys_claim_json(&self.tracker, &request, response)?;
            self.start_sessions(&mut outcome);
            return Ok(ResponseOutcome::KeysClaimed(outcome));
        }
        if let Some(mark) = self.pending.remove(&id) {
            self.queued.remove(&id);
            let marked = self.mark_sent(&mark);
            return Ok(ResponseOutcome::ToDeviceSent { marked });
        }
        Err(EndpointError::UnknownRequest)
    }
}

impl fmt::Debug for MatrixEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatrixEndpoint")
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .field("account", &self.account)
            .field("tracked_users", &self.tracker.tracked_users().count())
            .field("olm_peers", &self.sessions.len())
            .field("room_keys", &self.inbound.len())
            .field("outbound_rooms", &self.rooms.len())
            .field("pending_to_device", &self.pending.len())
            .finish_non_exhaustive()
    }
}

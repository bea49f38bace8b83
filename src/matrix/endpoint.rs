//! [`MatrixEndpoint`]: one Matrix device's key management, driven like
//! Element's `OlmMachine`: it hands out the requests to send
//! ([`MatrixEndpoint::outgoing_requests`]), takes the server's answers
//! ([`MatrixEndpoint::mark_request_as_sent`]) and each sync
//! ([`MatrixEndpoint::receive_sync_changes`]).
//!
//! What it does now: publishes the device keys, keeps one-time and fallback
//! keys stocked, tracks the device lists of the users it is told about,
//! claims one-time keys and checks everything it receives. What it does not
//! do yet: Olm sessions, room keys and room events (the Olm and Megolm
//! ciphers plug in at the seams named in the [module docs](super)).
//!
//! Guarantees: sans-I/O; at most one upload and one query are in flight; a
//! key is marked published only when the server confirmed the upload that
//! carried it, and no key is generated while an upload is in flight.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use thiserror::Error;

use super::claim::{ClaimOutcome, keys_claim_requests, receive_keys_claim_json};
use super::device_keys::{OLM_V1, SIGNED_CURVE25519};
use super::ids::{DeviceId, UserId};
use super::json::{JsonError, parse};
use super::query::{KeysClaimRequest, KeysQueryRequest};
use super::signing::SignatureError;
use super::sync::SyncChanges;
use super::top_up::KeyTopUp;
use super::tracker::{DeviceTracker, KeysQuery, KeysQueryOutcome};
use super::upload::{KeysUploadRequest, KeysUploadResponse};
use crate::account::Account;
use crate::consts::MAX_KEY_ALGORITHMS;
use crate::keys::IdentityKeys;

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
}

impl RequestKind {
    /// The JSON body.
    pub fn body(&self) -> Value {
        let value = match self {
            Self::KeysUpload(body) => serde_json::to_value(body),
            Self::KeysQuery(body) => serde_json::to_value(body),
            Self::KeysClaim(body) => serde_json::to_value(body),
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
    /// One-time keys were claimed and checked.
    KeysClaimed(ClaimOutcome),
}

/// One Matrix device's key management (see the module docs).
pub struct MatrixEndpoint {
    account: Account,
    user_id: UserId,
    device_id: DeviceId,
    tracker: DeviceTracker,
    device_keys_published: bool,
    /// Unclaimed one-time keys on the server, once known.
    server_key_count: Option<u64>,
    unused_fallback_key_types: Option<Vec<String>>,
    upload: Option<(RequestId, KeysUploadRequest)>,
    /// The keys the upload in flight carries, to mark exactly those as
    /// published when the server confirms it.
    uploading: Vec<crate::account::SignedOneTimeKey>,
    query: Option<(RequestId, KeysQuery)>,
    claims: BTreeMap<RequestId, KeysClaimRequest>,
    next_request: u64,
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
        }
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

    fn next_id(&mut self) -> RequestId {
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
        top_up.apply(
            &mut self.account,
            crate::room::Clock::now_ms(&crate::room::SystemClock),
        );
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

    /// A `/keys/claim` request for every known Olm-capable device of
    /// `users` other than this one (at most
    /// [`crate::consts::MAX_KEYS_CLAIM_DEVICES`] per request), or `None` if
    /// there is none. Not part of [`MatrixEndpoint::outgoing_requests`]:
    /// send it and give the answer back like any other.
    ///
    /// This layer holds no Olm sessions yet, so it claims for every device;
    /// once Olm is in, only devices without a session will be asked for.
    pub fn keys_claim_request<'a>(
        &mut self,
        users: impl IntoIterator<Item = &'a UserId>,
    ) -> Option<OutgoingRequest> {
        let own = self.tracker.own_device();
        let devices: Vec<_> = users
            .into_iter()
            .flat_map(|u| self.tracker.devices(u))
            .filter(|d| d.supports(OLM_V1) && d != &own)
            .collect();
        let body = keys_claim_requests(devices).into_iter().next()?;
        let id = self.next_id();
        self.claims.insert(id, body.clone());
        Some(OutgoingRequest {
            id,
            kind: RequestKind::KeysClaim(body),
        })
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
            return Ok(ResponseOutcome::KeysQueried(outcome));
        }
        if let Some(request) = self.claims.remove(&id) {
            let outcome = receive_keys_claim_json(&self.tracker, &request, response)?;
            return Ok(ResponseOutcome::KeysClaimed(outcome));
        }
        Err(EndpointError::UnknownRequest)
    }

    /// Reads a sync's JSON text: applies `device_lists` to the tracker and
    /// records the key counts (the next outgoing requests top keys up), and
    /// returns everything for the caller, to-device events included.
    ///
    /// Olm-encrypted to-device events are returned as they came: until the
    /// Olm cipher is in, this layer cannot read them.
    pub fn receive_sync_changes(&mut self, sync: &str) -> Result<SyncChanges, JsonError> {
        let changes = SyncChanges::from_json(sync)?;
        self.tracker
            .receive_device_lists(&changes.changed_users, &changes.left_users);
        if self.upload.is_none() {
            self.server_key_count = Some(changes.one_time_key_count);
            if let Some(types) = &changes.unused_fallback_key_types {
                self.unused_fallback_key_types =
                    Some(types.iter().take(MAX_KEY_ALGORITHMS).cloned().collect());
            }
        }
        Ok(changes)
    }
}

impl fmt::Debug for MatrixEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatrixEndpoint")
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .field("account", &self.account)
            .field("tracked_users", &self.tracker.tracked_users().count())
            .finish_non_exhaustive()
    }
}

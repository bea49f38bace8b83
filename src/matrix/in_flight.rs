//! The requests a [`MatrixEndpoint`] has in flight (a key upload with the
//! keys it carries, a key query, key claims): process state that is never
//! stored (an endpoint opened again asks again). A durable endpoint whose
//! commit fails puts them back as they were before the operation, and
//! carries them over when it reloads the store, so their answers can still
//! be given back.

use std::collections::BTreeMap;

use super::endpoint::{MatrixEndpoint, RequestId};
use super::query::KeysClaimRequest;
use super::tracker::KeysQuery;
use super::upload::KeysUploadRequest;
use crate::account::SignedOneTimeKey;

/// A copy of the requests in flight.
#[derive(Default)]
pub(super) struct InFlight {
    upload: Option<(RequestId, KeysUploadRequest)>,
    uploading: Vec<SignedOneTimeKey>,
    query: Option<(RequestId, KeysQuery)>,
    claims: BTreeMap<RequestId, KeysClaimRequest>,
}

impl MatrixEndpoint {
    /// A copy of the requests in flight.
    pub(super) fn in_flight(&self) -> InFlight {
        InFlight {
            upload: self.upload.clone(),
            uploading: self.uploading.clone(),
            query: self.query.clone(),
            claims: self.claims.clone(),
        }
    }

    /// Takes the requests in flight out of the endpoint.
    pub(super) fn take_in_flight(&mut self) -> InFlight {
        InFlight {
            upload: self.upload.take(),
            uploading: std::mem::take(&mut self.uploading),
            query: self.query.take(),
            claims: std::mem::take(&mut self.claims),
        }
    }

    /// Puts requests in flight (back) into the endpoint.
    pub(super) fn restore_in_flight(&mut self, in_flight: InFlight) {
        self.upload = in_flight.upload;
        self.uploading = in_flight.uploading;
        self.query = in_flight.query;
        self.claims = in_flight.claims;
    }
}

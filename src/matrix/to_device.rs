//! `PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}`: one event
//! type, one content per recipient device.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::{DeviceId, UserId};

/// A to-device send: the path's event type and transaction id, and the
/// body's messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendToDeviceRequest {
    /// The event type (path parameter; percent-encode it in the URL).
    #[serde(skip)]
    pub event_type: String,
    /// The transaction id (path parameter), unique per access token, so
    /// the server can drop a retried send.
    #[serde(skip)]
    pub txn_id: String,
    /// User id to device id to content.
    pub messages: BTreeMap<UserId, BTreeMap<DeviceId, Value>>,
}

impl SendToDeviceRequest {
    /// An empty send of `event_type` under `txn_id`.
    pub fn new(event_type: impl Into<String>, txn_id: impl Into<String>) -> Self {
        Self {
            event_type: event_type.into(),
            txn_id: txn_id.into(),
            messages: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) the content for one device.
    pub fn add(&mut self, user: UserId, device: DeviceId, content: Value) {
        self.messages
            .entry(user)
            .or_default()
            .insert(device, content);
    }

    /// The request body, `{"messages": ...}`.
    pub fn body(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

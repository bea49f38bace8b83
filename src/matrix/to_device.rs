//! `PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}`: one event
//! type, one content per recipient device.
//!
//! Each content is kept as the JSON text it was written as
//! ([`ToDeviceMessage`]), not as a `serde_json::Value` tree: a room key
//! shared with a thousand devices is a thousand encrypted contents, each
//! written once and copied into the body as it is.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::ids::{DeviceId, UserId};

/// One device's content in a to-device send: a JSON object, kept as text.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ToDeviceMessage(Box<RawValue>);

impl ToDeviceMessage {
    /// The content of `value`, written as JSON once (fails only for what
    /// JSON cannot hold, for example a map with non-string keys).
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// JSON text written by this crate, checked once.
    pub(crate) fn from_json(text: String) -> Option<Self> {
        RawValue::from_string(text).ok().map(Self)
    }

    /// The JSON text, as it goes into the request body.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The content parsed into a `serde_json::Value` (for inspection; the
    /// request body does not need it).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl PartialEq for ToDeviceMessage {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Eq for ToDeviceMessage {}

/// Only the length: the content of an encrypted event is ciphertext, but
/// other contents (for example a secret sent by the app) need not be.
impl fmt::Debug for ToDeviceMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ToDeviceMessage({} bytes)", self.json().len())
    }
}

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
    pub messages: BTreeMap<UserId, BTreeMap<DeviceId, ToDeviceMessage>>,
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
    pub fn add(&mut self, user: &UserId, device: DeviceId, content: ToDeviceMessage) {
        match self.messages.get_mut(user) {
            Some(devices) => {
                devices.insert(device, content);
            }
            None => {
                self.messages
                    .insert(user.clone(), BTreeMap::from([(device, content)]));
            }
        }
    }

    /// The request body, `{"messages": ...}`, as JSON text (what to send).
    pub fn body_json(&self) -> String {
        // Keys are strings and every content is already JSON: this cannot
        // fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The request body as a `serde_json::Value` (parses every content;
    /// [`SendToDeviceRequest::body_json`] does not).
    pub fn body(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

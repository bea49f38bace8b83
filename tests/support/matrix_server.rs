//! A tiny in-memory Matrix server for roomseal `MatrixEndpoint`s, shared by
//! the in-process room test (`tests/matrix_room.rs`) and the Matrix bench:
//! it routes key uploads, queries and claims, to-device messages and room
//! events, and builds each device's `/sync` (to-device events, device list
//! changes, one-time key counts, unused fallback key types).
//!
//! It trusts nobody and checks nothing a real server would not: it is only
//! plumbing.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};

use roomseal::matrix::{
    DurableMatrixEndpoint, MatrixEndpoint, MegolmEncryptedContent, OutgoingRequest, RequestId,
    RequestKind, RoomId, ShareOutcome, SyncOutcome, UserId,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

type DeviceKey = (String, String);

/// Maps keyed by a device, as lists of pairs (JSON keys are strings).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, V: Serialize>(
        map: &BTreeMap<super::DeviceKey, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        d: D,
    ) -> Result<BTreeMap<super::DeviceKey, V>, D::Error> {
        Ok(Vec::<(super::DeviceKey, V)>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

/// The server (serializable, so a crash test can keep it on disk).
#[derive(Default, Serialize, Deserialize)]
pub struct Server {
    device_keys: BTreeMap<String, BTreeMap<String, Value>>,
    #[serde(with = "pairs")]
    one_time_keys: BTreeMap<DeviceKey, BTreeMap<String, Value>>,
    #[serde(with = "pairs")]
    fallback_keys: BTreeMap<DeviceKey, (String, Value, bool)>,
    #[serde(with = "pairs")]
    inbox: BTreeMap<DeviceKey, Vec<Value>>,
    #[serde(with = "pairs")]
    changed: BTreeMap<DeviceKey, BTreeSet<String>>,
    #[serde(with = "pairs")]
    left: BTreeMap<DeviceKey, BTreeSet<String>>,
    /// Each room's members.
    pub members: BTreeMap<String, BTreeSet<String>>,
    /// Each room's timeline.
    pub timeline: BTreeMap<String, Vec<Value>>,
    next_event: u64,
    /// One-time keys handed out by claims.
    pub claimed_one_time: usize,
    /// Fallback keys handed out by claims.
    pub claimed_fallback: usize,
    /// Set, device key uploads tell nobody (a bench that registers
    /// thousands of devices, which would otherwise tell each other).
    #[serde(default)]
    pub quiet: bool,
}

impl Server {
    /// Every device that has uploaded keys.
    fn devices(&self) -> Vec<DeviceKey> {
        self.device_keys
            .iter()
            .flat_map(|(u, ds)| ds.keys().map(move |d| (u.clone(), d.clone())))
            .collect()
    }

    fn tell_changed(&mut self, user: &str, except: &DeviceKey) {
        if self.quiet {
            return;
        }
        for d in self.devices() {
            if &d != except {
                self.changed.entry(d).or_default().insert(user.to_owned());
            }
        }
    }

    /// Answers one request of `user`'s device `device`.
    pub fn route(&mut self, user: &str, device: &str, request: &OutgoingRequest) -> String {
        let me = (user.to_owned(), device.to_owned());
        let body = request.kind.body();
        match &request.kind {
            RequestKind::KeysUpload(_) => {
                if let Some(keys) = body.get("device_keys").filter(|k| !k.is_null()) {
                    self.device_keys
                        .entry(user.to_owned())
                        .or_default()
                        .insert(device.to_owned(), keys.clone());
                    self.tell_changed(user, &me);
                }
                if let Some(Value::Object(keys)) = body.get("one_time_keys") {
                    let stock = self.one_time_keys.entry(me.clone()).or_default();
                    for (name, key) in keys {
                        stock.insert(name.clone(), key.clone());
                    }
                }
                if let Some(Value::Object(keys)) = body.get("fallback_keys")
                    && let Some((name, key)) = keys.iter().next()
                {
                    self.fallback_keys
                        .insert(me.clone(), (name.clone(), key.clone(), false));
                }
                json!({"one_time_key_counts": {"signed_curve25519": self.count(&me)}}).to_string()
            }
            RequestKind::KeysQuery(_) => {
                let mut out = Map::new();
                if let Some(Value::Object(users)) = body.get("device_keys") {
                    for u in users.keys() {
                        // As a real server does, each device's keys come with
                        // `unsigned` data the device did not sign.
                        let mut devices = self.device_keys.get(u).cloned().unwrap_or_default();
                        for (d, keys) in devices.iter_mut() {
                            keys["unsigned"] =
                                json!({"device_display_name": format!("{d} (memory)")});
                        }
                        out.insert(u.clone(), json!(devices));
                    }
                }
                json!({"device_keys": out, "failures": {}}).to_string()
            }
            RequestKind::KeysClaim(_) => {
                let mut out: Map<String, Value> = Map::new();
                if let Some(Value::Object(users)) = body.get("one_time_keys") {
                    for (u, devices) in users {
                        let Value::Object(devices) = devices else {
                            continue;
                        };
                        for d in devices.keys() {
                            let key = (u.clone(), d.clone());
                            let taken = self.one_time_keys.get_mut(&key).and_then(|stock| {
                                let name = stock.keys().next()?.clone();
                                stock.remove_entry(&name)
                            });
                            let taken = match taken {
                                Some(k) => {
                                    self.claimed_one_time += 1;
                                    Some(k)
                                }
                                None => self.fallback_keys.get_mut(&key).map(|(n, k, used)| {
                                    *used = true;
                                    self.claimed_fallback += 1;
                                    (n.clone(), k.clone())
                                }),
                            };
                            if let Some((name, k)) = taken {
                                out.entry(u.clone())
                                    .or_insert_with(|| json!({}))
                                    .as_object_mut()
                                    .map(|m| m.insert(d.clone(), json!({ name: k })));
                            }
                        }
                    }
                }
                json!({"one_time_keys": out, "failures": {}}).to_string()
            }
            RequestKind::ToDevice(send) => {
                for (u, devices) in &send.messages {
                    for (d, content) in devices {
                        let event = json!({
                            "type": send.event_type,
                            "sender": user,
                            "content": content,
                        });
                        self.inbox
                            .entry((u.to_string(), d.to_string()))
                            .or_default()
                            .push(event);
                    }
                }
                "{}".to_owned()
            }
        }
    }

    fn count(&self, device: &DeviceKey) -> usize {
        self.one_time_keys.get(device).map_or(0, BTreeMap::len)
    }

    /// Removes a device (a logout): its keys go, every other device hears
    /// its user's list changed.
    pub fn remove_device(&mut self, user: &str, device: &str) {
        if let Some(devices) = self.device_keys.get_mut(user) {
            devices.remove(device);
        }
        let me = (user.to_owned(), device.to_owned());
        self.one_time_keys.remove(&me);
        self.fallback_keys.remove(&me);
        self.inbox.remove(&me);
        self.tell_changed(user, &me);
    }

    /// Drops every unclaimed one-time key of a device (claims then hand
    /// out its fallback key).
    pub fn drop_one_time_keys(&mut self, user: &str, device: &str) {
        self.one_time_keys
            .remove(&(user.to_owned(), device.to_owned()));
    }

    /// Joins `user` to `room`.
    pub fn join(&mut self, room: &str, user: &str) {
        self.members
            .entry(room.to_owned())
            .or_default()
            .insert(user.to_owned());
    }

    /// `user` leaves `room`: the other members' devices see it under
    /// `device_lists.left`.
    pub fn leave(&mut self, room: &str, user: &str) {
        if let Some(members) = self.members.get_mut(room) {
            members.remove(user);
        }
        for d in self.devices() {
            if d.0 != user {
                self.left.entry(d).or_default().insert(user.to_owned());
            }
        }
    }

    /// The members of `room`.
    pub fn member_ids(&self, room: &str) -> Vec<UserId> {
        self.members
            .get(room)
            .into_iter()
            .flatten()
            .map(|u| UserId::parse(u).expect("user id"))
            .collect()
    }

    /// Stores a room event; returns the whole event.
    pub fn send_event(&mut self, room: &str, sender: &str, content: Value) -> Value {
        self.next_event += 1;
        let event = json!({
            "type": "m.room.encrypted",
            "event_id": format!("$e{}", self.next_event),
            "sender": sender,
            "origin_server_ts": 1_700_000_000_000u64 + self.next_event,
            "room_id": room,
            "content": content,
        });
        self.timeline
            .entry(room.to_owned())
            .or_default()
            .push(event.clone());
        event
    }

    /// The `/sync` response for a device (its to-device inbox drained).
    pub fn sync(&mut self, user: &str, device: &str) -> String {
        let me = (user.to_owned(), device.to_owned());
        let events = self.inbox.remove(&me).unwrap_or_default();
        let changed: Vec<String> = self
            .changed
            .remove(&me)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let left: Vec<String> = self
            .left
            .remove(&me)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let unused: Vec<&str> = match self.fallback_keys.get(&me) {
            Some((_, _, false)) => vec!["signed_curve25519"],
            _ => vec![],
        };
        json!({
            "next_batch": "s",
            "to_device": {"events": events},
            "device_lists": {"changed": changed, "left": left},
            "device_one_time_keys_count": {"signed_curve25519": self.count(&me)},
            "device_unused_fallback_key_types": unused,
        })
        .to_string()
    }
}

/// What a [`Client`] drives: a `MatrixEndpoint`, or a durable one (whose
/// store failures the tests that drive it through here treat as bugs).
pub trait Driven {
    /// `outgoing_requests`.
    fn outgoing(&mut self) -> Vec<OutgoingRequest>;
    /// `mark_request_as_sent`.
    fn answered(&mut self, id: RequestId, response: &str);
    /// `receive_sync_changes`.
    fn synced(&mut self, sync: &str) -> SyncOutcome;
    /// `update_tracked_users`.
    fn track(&mut self, users: &[UserId]);
    /// `keys_claim_request`.
    fn claim(&mut self, users: &[UserId]) -> Option<OutgoingRequest>;
    /// `share_room_key`.
    fn share_key(&mut self, room: &RoomId, users: &[UserId]) -> ShareOutcome;
    /// `encrypt_room_event`.
    fn encrypt(&mut self, room: &RoomId, content: &RawValue) -> MegolmEncryptedContent;
}

/// `Driven` for an endpoint type, given how its tracking and claiming
/// calls are unwrapped (a durable endpoint returns their store errors).
macro_rules! driven {
    ($endpoint:ty, $unwrap:expr) => {
        impl Driven for $endpoint {
            fn outgoing(&mut self) -> Vec<OutgoingRequest> {
                self.outgoing_requests().expect("outgoing requests")
            }
            fn answered(&mut self, id: RequestId, response: &str) {
                self.mark_request_as_sent(id, response)
                    .expect("answer taken");
            }
            fn synced(&mut self, sync: &str) -> SyncOutcome {
                self.receive_sync_changes(sync).expect("sync taken")
            }
            fn track(&mut self, users: &[UserId]) {
                let _ = $unwrap(self.update_tracked_users(users));
            }
            fn claim(&mut self, users: &[UserId]) -> Option<OutgoingRequest> {
                $unwrap(self.keys_claim_request(users))
            }
            fn share_key(&mut self, room: &RoomId, users: &[UserId]) -> ShareOutcome {
                self.share_room_key(room, users).expect("share")
            }
            fn encrypt(&mut self, room: &RoomId, content: &RawValue) -> MegolmEncryptedContent {
                self.encrypt_room_event(room, "m.room.message", content)
                    .expect("encrypt")
            }
        }
    };
}

driven!(MatrixEndpoint, |value| value);
driven!(DurableMatrixEndpoint, |result: Result<_, _>| result
    .expect("committed"));

/// One roomseal device and its ids.
pub struct Client<E = MatrixEndpoint> {
    /// The endpoint.
    pub ep: E,
    /// Its user.
    pub user: String,
    /// Its device.
    pub device: String,
}

impl Client {
    /// A new device.
    pub fn new(user: &str, device: &str) -> Self {
        Self {
            ep: MatrixEndpoint::new(
                roomseal::Account::new(),
                UserId::parse(user).expect("user id"),
                roomseal::matrix::DeviceId::parse(device).expect("device id"),
            ),
            user: user.to_owned(),
            device: device.to_owned(),
        }
    }
}

impl<E: Driven> Client<E> {
    /// Sends every outgoing request until none is left.
    pub fn pump(&mut self, server: &mut Server) {
        for _ in 0..20 {
            let requests = self.ep.outgoing();
            if requests.is_empty() {
                return;
            }
            for request in requests {
                self.answer(server, &request);
            }
        }
        panic!("{}: requests keep coming", self.device);
    }

    /// Answers one request through the server.
    pub fn answer(&mut self, server: &mut Server, request: &OutgoingRequest) {
        let response = server.route(&self.user, &self.device, request);
        self.ep.answered(request.id, &response);
    }

    /// One sync, then the requests it caused.
    pub fn sync(&mut self, server: &mut Server) -> SyncOutcome {
        let sync = server.sync(&self.user, &self.device);
        let outcome = self.ep.synced(&sync);
        self.pump(server);
        outcome
    }

    /// Makes sure every member device holds the room's current key.
    pub fn share(&mut self, server: &mut Server, room: &str) -> ShareOutcome {
        let members = server.member_ids(room);
        self.ep.track(&members);
        self.pump(server);
        if let Some(claim) = self.ep.claim(&members) {
            self.answer(server, &claim);
        }
        let room_id = RoomId::parse(room).expect("room id");
        let outcome = self.ep.share_key(&room_id, &members);
        for request in &outcome.requests {
            self.answer(server, request);
        }
        self.pump(server);
        outcome
    }

    /// Shares if needed, encrypts and sends a text message; returns the event.
    pub fn send(&mut self, server: &mut Server, room: &str, body: &str) -> Value {
        self.share(server, room);
        let room_id = RoomId::parse(room).expect("room id");
        let content = serde_json::value::to_raw_value(&json!({"msgtype": "m.text", "body": body}))
            .expect("content");
        let encrypted = self.ep.encrypt(&room_id, &content);
        server.send_event(room, &self.user, encrypted.to_json_value())
    }
}

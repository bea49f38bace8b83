//! A roomseal Matrix device for the Element interop harness
//! (`tests/element/`): it reads one JSON request per line on stdin and
//! writes one JSON answer per line on stdout, so the harness can drive it
//! like any other participant. The line protocol is documented in
//! `tests/element/README.md`.
//!
//! It speaks everything the Matrix layer does: key upload and top-up,
//! device tracking, key claims and Olm sessions, to-device decryption,
//! room key sharing (with rotation and withheld notices), forwarding a key
//! to an own device, and room event encryption and decryption.
//!
//! Run by `scripts/element-interop.sh`; by hand:
//! `echo '{"id":1,"op":"init","user_id":"@a:b","device_id":"D"}' | cargo run --example matrix_peer`.

use std::io::{self, BufRead, Write};

use roomseal::Account;
use roomseal::GroupSessionId;
use roomseal::matrix::{
    ClaimOutcome, DeviceId, DeviceTrust, KeysQueryOutcome, MatrixEndpoint, OutgoingRequest,
    ProcessedToDevice, RequestId, RequestKind, ResponseOutcome, RoomEventError, RoomId,
    SyncChanges, SyncOutcome, ToDeviceContent, UserId,
};
use serde_json::{Value, json};

/// An error answer: a machine-readable kind and a message.
struct Failure {
    kind: &'static str,
    message: String,
    withheld_code: Option<String>,
}

fn failure(kind: &'static str, message: impl ToString) -> Failure {
    Failure {
        kind,
        message: message.to_string(),
        withheld_code: None,
    }
}

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut stdout = io::stdout().lock();
    let mut peer: Option<MatrixEndpoint> = None;
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (id, answer, stop) = match serde_json::from_str::<Value>(&line) {
            Ok(request) => {
                let id = request.get("id").cloned().unwrap_or(Value::Null);
                let op = request.get("op").and_then(Value::as_str).unwrap_or("");
                (id, handle(&mut peer, op, &request), op == "shutdown")
            }
            Err(e) => (Value::Null, Err(failure("bad_request", e)), false),
        };
        let line = match answer {
            Ok(ok) => json!({ "id": id, "ok": ok }),
            Err(f) => json!({ "id": id, "error": {
                "kind": f.kind, "message": f.message, "withheld_code": f.withheld_code,
            } }),
        };
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
        if stop {
            break;
        }
    }
    Ok(())
}

fn field<'a>(request: &'a Value, name: &str) -> Result<&'a Value, Failure> {
    request
        .get(name)
        .ok_or_else(|| failure("bad_request", format!("missing {name}")))
}

fn text<'a>(request: &'a Value, name: &str) -> Result<&'a str, Failure> {
    field(request, name)?
        .as_str()
        .ok_or_else(|| failure("bad_request", format!("{name} must be a string")))
}

fn users(request: &Value) -> Result<Vec<UserId>, Failure> {
    serde_json::from_value(field(request, "users")?.clone()).map_err(|e| failure("bad_request", e))
}

fn handle(peer: &mut Option<MatrixEndpoint>, op: &str, request: &Value) -> Result<Value, Failure> {
    if op == "init" {
        let user =
            UserId::parse(text(request, "user_id")?).map_err(|e| failure("bad_request", e))?;
        let device = text(request, "device_id")?
            .parse()
            .map_err(|e| failure("bad_request", e))?;
        let endpoint = MatrixEndpoint::new(Account::new(), user, device);
        let keys = endpoint.identity_keys();
        *peer = Some(endpoint);
        return Ok(json!({
            "capabilities": ["keys", "olm", "megolm"],
            "identity_keys": { "ed25519": keys.ed25519, "curve25519": keys.curve25519 },
        }));
    }
    let Some(endpoint) = peer.as_mut() else {
        return Err(failure("not_initialized", "send init first"));
    };
    match op {
        "outgoing_requests" => {
            let requests = endpoint
                .outgoing_requests()
                .map_err(|e| failure("error", e))?;
            Ok(json!({ "requests": requests.iter().map(request_json).collect::<Vec<_>>() }))
        }
        "mark_request_as_sent" => {
            let id = text(request, "request_id")?
                .parse()
                .map_err(|e| failure("bad_request", e))?;
            let response = field(request, "response")?.to_string();
            let outcome = endpoint
                .mark_request_as_sent(RequestId(id), &response)
                .map_err(|e| failure("error", e))?;
            Ok(outcome_json(&outcome))
        }
        "receive_sync_changes" => {
            let sync = field(request, "sync")?.to_string();
            let changes = SyncChanges::from_json(&sync).map_err(|e| failure("error", e))?;
            let envelopes = envelopes_json(endpoint, &changes);
            let outcome = endpoint.receive_changes(changes);
            Ok(sync_json(envelopes, &outcome))
        }
        "update_tracked_users" => {
            let users = users(request)?;
            let refused = endpoint.update_tracked_users(&users);
            Ok(json!({ "refused": refused }))
        }
        "get_missing_sessions" => {
            let users = users(request)?;
            let claim = endpoint.keys_claim_request(&users);
            Ok(json!({ "request": claim.as_ref().map(request_json) }))
        }
        "devices" => {
            let user =
                UserId::parse(text(request, "user_id")?).map_err(|e| failure("bad_request", e))?;
            let devices: Vec<Value> = endpoint
                .tracker()
                .devices(&user)
                .map(|d| {
                    json!({
                        "device_id": d.device_id(),
                        "ed25519": d.keys().ed25519,
                        "curve25519": d.keys().curve25519,
                        "deleted": false,
                    })
                })
                .collect();
            Ok(json!({ "devices": devices }))
        }
        "shutdown" => Ok(json!({})),
        "share_room_key" => {
            let room = room_id(request)?;
            let users = users(request)?;
            let outcome = endpoint
                .share_room_key(&room, &users)
                .map_err(|e| failure("error", e))?;
            Ok(json!({
                "requests": outcome.requests.iter().map(request_json).collect::<Vec<_>>(),
                "rotated": outcome.rotated,
                "session_id": outcome.session_id.to_base64(),
                "missing_sessions": outcome.missing_sessions,
            }))
        }
        "encrypt_room_event" => {
            let room = room_id(request)?;
            let event_type = text(request, "event_type")?;
            let content = serde_json::value::to_raw_value(field(request, "content")?)
                .map_err(|e| failure("bad_request", e))?;
            let encrypted = endpoint
                .encrypt_room_event(&room, event_type, &content)
                .map_err(|e| failure("error", e))?;
            Ok(json!({ "content": encrypted.to_json_value() }))
        }
        "decrypt_room_event" => {
            let room = room_id(request)?;
            let event = field(request, "event")?.to_string();
            match endpoint.decrypt_room_event_json(&room, &event) {
                Ok(clear) => {
                    let content: Value = serde_json::from_str(clear.content.get())
                        .map_err(|e| failure("error", e))?;
                    Ok(json!({
                        "type": clear.event_type,
                        "content": content,
                        "sender": clear.sender,
                        "authenticated": clear.authenticated,
                        "key_source": format!("{:?}", clear.key_source),
                        "message_index": clear.message_index,
                    }))
                }
                Err(e) => Err(undecryptable(&e)),
            }
        }
        "forward_room_key" => {
            let room = room_id(request)?;
            let session = GroupSessionId::from_base64(text(request, "session_id")?)
                .map_err(|e| failure("bad_request", e))?;
            let to: DeviceId = text(request, "device_id")?
                .parse()
                .map_err(|e| failure("bad_request", e))?;
            let request = endpoint
                .forward_room_key(&room, &session, &to)
                .map_err(|e| failure("error", e))?;
            Ok(json!({ "request": request_json(&request) }))
        }
        "set_device_trust" => {
            let user =
                UserId::parse(text(request, "user_id")?).map_err(|e| failure("bad_request", e))?;
            let device: DeviceId = text(request, "device_id")?
                .parse()
                .map_err(|e| failure("bad_request", e))?;
            let trust = match text(request, "trust")? {
                "verified" => DeviceTrust::Verified,
                "blacklisted" => DeviceTrust::Blacklisted,
                "unset" => DeviceTrust::Unset,
                other => return Err(failure("bad_request", format!("trust {other}"))),
            };
            Ok(json!({ "known": endpoint.set_device_trust(&user, &device, trust) }))
        }
        "rotate_room_key" => {
            let room = room_id(request)?;
            Ok(json!({ "rotated": endpoint.rotate_room_key(&room) }))
        }
        other => Err(failure("unknown_op", other)),
    }
}

fn request_json(request: &OutgoingRequest) -> Value {
    let kind = match &request.kind {
        RequestKind::KeysUpload(_) => "keys_upload",
        RequestKind::KeysQuery(_) => "keys_query",
        RequestKind::KeysClaim(_) => "keys_claim",
        RequestKind::ToDevice(send) => {
            return json!({
                "id": request.id.to_string(), "type": "to_device", "body": request.kind.body(),
                "event_type": send.event_type, "txn_id": send.txn_id,
            });
        }
    };
    json!({ "id": request.id.to_string(), "type": kind, "body": request.kind.body() })
}

fn outcome_json(outcome: &ResponseOutcome) -> Value {
    match outcome {
        ResponseOutcome::KeysUploaded { one_time_key_count } => {
            json!({ "one_time_key_count": one_time_key_count })
        }
        ResponseOutcome::KeysQueried(outcome) => query_json(outcome),
        ResponseOutcome::KeysClaimed(outcome) => claim_json(outcome),
        ResponseOutcome::ToDeviceSent { marked } => json!({ "marked": marked }),
    }
}

fn query_json(outcome: &KeysQueryOutcome) -> Value {
    let ids = |devices: &[roomseal::matrix::Device]| -> Vec<Value> {
        devices
            .iter()
            .map(|d| json!([d.user_id(), d.device_id()]))
            .collect()
    };
    json!({
        "new_devices": ids(&outcome.new_devices),
        "removed_devices": ids(&outcome.removed_devices),
        "rejected": outcome.rejected.iter().map(|r| json!({
            "user_id": r.user_id, "device_id": r.device_id, "error": r.error.to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn claim_json(outcome: &ClaimOutcome) -> Value {
    json!({
        "keys": outcome.keys.iter().map(|k| json!({
            "user_id": k.device.user_id(), "device_id": k.device.device_id(),
            "key_id": k.key_id, "key": k.key, "fallback": k.fallback,
        })).collect::<Vec<_>>(),
        "missing": outcome.missing,
        "rejected": outcome.rejected.iter().map(|r| json!({
            "user_id": r.user_id, "device_id": r.device_id, "error": r.error.to_string(),
        })).collect::<Vec<_>>(),
    })
}

/// Each to-device event's envelope, by its position in the sync: the
/// sender, and for Olm the sender key and the message type addressed to
/// this device.
fn envelopes_json(endpoint: &MatrixEndpoint, changes: &SyncChanges) -> Vec<(usize, Value)> {
    let own_key = endpoint.identity_keys().curve25519;
    changes
        .to_device
        .iter()
        .map(|event| {
            let summary = match &event.content {
                ToDeviceContent::Olm(olm) => json!({
                    "type": event.event_type, "sender": event.sender, "algorithm": "olm",
                    "sender_key": olm.sender_key,
                    "for_this_device": olm.ciphertext_for(&own_key).map(|c| json!({
                        "message_type": c.message_type as u8,
                    })),
                }),
                ToDeviceContent::RoomKeyWithheld(w) => json!({
                    "type": event.event_type, "sender": event.sender, "code": w.code.as_str(),
                }),
                ToDeviceContent::Other(_) => {
                    json!({ "type": event.event_type, "sender": event.sender })
                }
            };
            (event.index, summary)
        })
        .collect()
}

/// What a sync brought: every event's envelope, and for each event the
/// endpoint took, what it was (`decrypted` with the inner `event_type` for
/// Olm); refused events under `rejected` with their error.
fn sync_json(envelopes: Vec<(usize, Value)>, outcome: &SyncOutcome) -> Value {
    let mut events: Vec<(usize, Value)> = envelopes;
    for (index, processed) in &outcome.to_device {
        let Some((_, summary)) = events.iter_mut().find(|(i, _)| i == index) else {
            continue;
        };
        let inner = match processed {
            ProcessedToDevice::RoomKey(_) => Some("m.room_key"),
            ProcessedToDevice::ForwardedRoomKey(_) => Some("m.forwarded_room_key"),
            ProcessedToDevice::Dummy { .. } => Some("m.dummy"),
            ProcessedToDevice::Decrypted(d) => Some(d.event_type.as_str()),
            ProcessedToDevice::Withheld(_) | ProcessedToDevice::Plain(_) => None,
        };
        if let (Some(inner), Some(object)) = (inner, summary.as_object_mut()) {
            object.insert("decrypted".into(), json!(true));
            object.insert("event_type".into(), json!(inner));
        }
    }
    json!({
        "to_device": events.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "rejected": outcome.rejected.iter().map(|r| json!({
            "index": r.index, "error": r.error.to_string(),
        })).collect::<Vec<_>>(),
        "changed": outcome.changed_users,
        "left": outcome.left_users,
        "one_time_key_count": outcome.one_time_key_count,
    })
}

fn room_id(request: &Value) -> Result<RoomId, Failure> {
    RoomId::parse(text(request, "room_id")?).map_err(|e| failure("bad_request", e))
}

/// A decryption failure: kind `undecryptable`, with the withheld code the
/// sender sent for the session, if any.
fn undecryptable(error: &RoomEventError) -> Failure {
    let mut f = failure("undecryptable", error);
    if let RoomEventError::UnknownRoomKey {
        withheld: Some(code),
    } = error
    {
        f.withheld_code = Some(code.as_str().to_owned());
    }
    f
}

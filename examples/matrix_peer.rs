//! A roomseal Matrix device for the Element interop harness
//! (`tests/element/`): it reads one JSON request per line on stdin and
//! writes one JSON answer per line on stdout, so the harness can drive it
//! like any other participant. The line protocol is documented in
//! `tests/element/README.md`.
//!
//! It speaks what the Matrix layer does today: key upload and top-up,
//! device tracking, key claims, sync processing. Operations that need the
//! Olm and Megolm ciphers answer `{"kind": "unsupported"}`.
//!
//! Run by `scripts/element-interop.sh`; by hand:
//! `echo '{"id":1,"op":"init","user_id":"@a:b","device_id":"D"}' | cargo run --example matrix_peer`.

use std::io::{self, BufRead, Write};

use roomseal::Account;
use roomseal::matrix::{
    ClaimOutcome, KeysQueryOutcome, MatrixEndpoint, OutgoingRequest, RequestId, RequestKind,
    ResponseOutcome, SyncChanges, ToDeviceContent, UserId,
};
use serde_json::{Value, json};

/// An error answer: a machine-readable kind and a message.
struct Failure {
    kind: &'static str,
    message: String,
}

fn failure(kind: &'static str, message: impl ToString) -> Failure {
    Failure {
        kind,
        message: message.to_string(),
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
            Err(f) => json!({ "id": id, "error": { "kind": f.kind, "message": f.message } }),
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
            "capabilities": ["keys"],
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
            let changes = endpoint
                .receive_sync_changes(&sync)
                .map_err(|e| failure("error", e))?;
            Ok(sync_json(endpoint, &changes))
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
        "share_room_key" | "encrypt_room_event" | "decrypt_room_event" => Err(failure(
            "unsupported",
            "needs the Olm and Megolm ciphers (phase 2)",
        )),
        other => Err(failure("unknown_op", other)),
    }
}

fn request_json(request: &OutgoingRequest) -> Value {
    let kind = match request.kind {
        RequestKind::KeysUpload(_) => "keys_upload",
        RequestKind::KeysQuery(_) => "keys_query",
        RequestKind::KeysClaim(_) => "keys_claim",
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

/// What a sync brought. Olm events are reported (sender, whether one is
/// addressed to this device and its message type) but not decrypted.
fn sync_json(endpoint: &MatrixEndpoint, changes: &SyncChanges) -> Value {
    let own_key = endpoint.identity_keys().curve25519;
    let events: Vec<Value> = changes
        .to_device
        .iter()
        .map(|event| match &event.content {
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
        })
        .collect();
    json!({
        "to_device": events,
        "rejected": changes.rejected_events.iter().map(|r| json!({
            "index": r.index, "error": r.error.to_string(),
        })).collect::<Vec<_>>(),
        "changed": changes.changed_users,
        "left": changes.left_users,
        "one_time_key_count": changes.one_time_key_count,
    })
}

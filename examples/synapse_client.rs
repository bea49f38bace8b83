//! A roomseal Matrix device talking to a real homeserver over HTTP: one
//! [`MatrixEndpoint`] (Olm and Megolm) behind a small blocking client-server
//! API client (`ureq`). It reads one JSON command per line on stdin and
//! writes exactly one JSON answer per line on stdout, like
//! `examples/matrix_peer.rs`, but it does the HTTP itself: log in, create,
//! join and read rooms, `/sync`, every key request the endpoint asks for,
//! room key sharing and room events. Used by `tests/synapse/mixed_scenario.mjs`
//! (run by `scripts/e2e-synapse.sh`); the commands are listed in
//! `tests/synapse/README.md`.
//!
//! Guarantees: nothing the server sends can make it panic (every answer is
//! read through serde types and the endpoint's own bounded parsers; a bad
//! answer becomes an error line); no secret (password, access token, key,
//! plaintext) is written to stdout or stderr, except the plaintexts the
//! scenario asks it to send or read. When `E2E_SECRETS_DIR` is set, every
//! plaintext it sends or decrypts is appended to
//! `E2E_SECRETS_DIR/roomseal-<user>-<device>.jsonl` for the leak check
//! (`tests/synapse/leak_check.py`).
//!
//! By hand, against a homeserver on 127.0.0.1:8008:
//! `echo '{"id":1,"op":"login","homeserver":"http://127.0.0.1:8008","user":"alice","password":"pw","device_id":"A1"}' | cargo run --example synapse_client`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use roomseal::Account;
use roomseal::GroupError;
use roomseal::matrix::{
    DeviceId, DeviceKeysError, EndpointError, MatrixEndpoint, OutgoingRequest, ProcessedToDevice,
    RequestKind, ResponseOutcome, RoomEncryptionContent, RoomEventError, RoomId, ShareError,
    SyncChanges, ToDeviceError, UserId,
};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use thiserror::Error;

/// The client-server API prefix.
const CLIENT: &str = "/_matrix/client/v3";
/// The longest any one HTTP exchange may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer body read (a `/sync` of a busy test room is far
/// smaller).
const MAX_BODY: u64 = 16 * 1024 * 1024;
/// How many rounds of outgoing requests one pump sends at most.
const MAX_PUMP_ROUNDS: usize = 20;

/// Why a command failed. Every variant is matchable by its `kind` in the
/// answer line.
#[derive(Debug, Error)]
enum ClientError {
    /// The command line is not a command this client knows or lacks a
    /// parameter.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A command that needs a session came before `login`.
    #[error("log in first")]
    NotLoggedIn,
    /// The server answered with a status other than 2xx.
    #[error("HTTP {status} {errcode} on {path}")]
    Http {
        /// The path asked (no query, no token).
        path: String,
        /// The HTTP status.
        status: u16,
        /// The Matrix `errcode`, or empty.
        errcode: String,
    },
    /// The exchange itself failed (connection, timeout, body too large).
    #[error("transport: {0}")]
    Transport(String),
    /// The server's answer is not of the expected shape.
    #[error("unexpected answer from {path}: {message}")]
    Answer {
        /// The path asked.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The endpoint refused an answer or could not build a request.
    #[error("endpoint: {0}")]
    Endpoint(#[from] EndpointError),
    /// The room key could not be shared.
    #[error("share: {0}")]
    Share(#[from] ShareError),
    /// The room event could not be encrypted.
    #[error("encrypt: {0}")]
    Encrypt(RoomEventError),
    /// The endpoint still had requests after many rounds.
    #[error("requests still queued after {MAX_PUMP_ROUNDS} rounds")]
    Pump,
}

impl ClientError {
    fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotLoggedIn => "not_logged_in",
            Self::Http { .. } => "http",
            Self::Transport(_) => "transport",
            Self::Answer { .. } => "answer",
            Self::Endpoint(_) => "endpoint",
            Self::Share(_) => "share",
            Self::Encrypt(_) => "encrypt",
            Self::Pump => "pump",
        }
    }
}

fn bad(message: impl ToString) -> ClientError {
    ClientError::BadRequest(message.to_string())
}

// --- HTTP -------------------------------------------------------------------------------------

/// The HTTP methods the client-server API calls here use.
#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    Put,
}

/// A homeserver's client-server API, with an access token once logged in.
struct Homeserver {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

/// A Matrix error body (`errcode` only; `error` is free text and is not
/// repeated).
#[derive(Deserialize)]
struct MatrixErrorBody {
    #[serde(default)]
    errcode: String,
}

impl Homeserver {
    fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(HTTP_TIMEOUT))
            .build()
            .new_agent();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// Calls `path` (relative to `/_matrix/client/v3`) and returns the
    /// answer's text.
    fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<String, ClientError> {
        let url = format!("{}{CLIENT}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let transport = |e: ureq::Error| ClientError::Transport(e.to_string());
        let body_text = body
            .map(Value::to_string)
            .unwrap_or_else(|| "{}".to_owned());
        let mut response = match method {
            Method::Get => {
                let mut request = self.agent.get(&url);
                for (k, v) in query {
                    request = request.query(*k, *v);
                }
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call().map_err(transport)?
            }
            Method::Post | Method::Put => {
                let mut request = match method {
                    Method::Post => self.agent.post(&url),
                    _ => self.agent.put(&url),
                };
                for (k, v) in query {
                    request = request.query(*k, *v);
                }
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request
                    .header("Content-Type", "application/json")
                    .send(body_text.as_str())
                    .map_err(transport)?
            }
        };
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(transport)?;
        if !(200..300).contains(&status) {
            let errcode = serde_json::from_str::<MatrixErrorBody>(&text)
                .map(|b| b.errcode)
                .unwrap_or_default();
            return Err(ClientError::Http {
                path: path.to_owned(),
                status,
                errcode,
            });
        }
        Ok(text)
    }

    /// Calls `path` and reads the answer as `T`.
    fn call_json<T: for<'de> Deserialize<'de>>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let text = self.call(method, path, &[], body)?;
        serde_json::from_str(&text).map_err(|e| ClientError::Answer {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved
/// characters).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

// --- Server answers (only the members read) --------------------------------------------------

/// `POST /login`'s answer.
#[derive(Deserialize)]
struct LoginAnswer {
    user_id: String,
    device_id: String,
    access_token: String,
}

/// `POST /createRoom`'s answer.
#[derive(Deserialize)]
struct RoomIdAnswer {
    room_id: String,
}

/// `PUT /rooms/{room}/send/...`'s answer.
#[derive(Deserialize)]
struct EventIdAnswer {
    event_id: String,
}

/// `GET /rooms/{room}/joined_members`'s answer (the profiles are skipped).
#[derive(Deserialize)]
struct JoinedMembers {
    joined: BTreeMap<String, IgnoredAny>,
}

/// The room parts of a `/sync` answer (the encryption parts are read by
/// [`SyncChanges`]).
#[derive(Deserialize)]
struct SyncRooms {
    next_batch: String,
    #[serde(default)]
    rooms: Option<Rooms>,
}

/// A sync's `rooms`.
#[derive(Deserialize, Default)]
struct Rooms {
    #[serde(default)]
    join: BTreeMap<String, JoinedRoom>,
    #[serde(default)]
    invite: BTreeMap<String, IgnoredAny>,
}

/// One joined room of a sync.
#[derive(Deserialize, Default)]
struct JoinedRoom {
    #[serde(default)]
    state: Option<EventList>,
    #[serde(default)]
    timeline: Option<EventList>,
}

/// A sync's `state` or `timeline` (each event read on its own).
#[derive(Deserialize, Default)]
struct EventList {
    #[serde(default)]
    events: Vec<Value>,
}

/// The members of a timeline or state event this client looks at.
#[derive(Deserialize)]
struct EventHead {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    state_key: Option<String>,
    #[serde(default)]
    sender: Option<String>,
}

// --- The secrets file of the leak check ------------------------------------------------------

/// Appends `{"label", "text"}` lines to the leak check's file, if the
/// scenario gave a directory.
struct SecretLog {
    path: Option<PathBuf>,
}

impl SecretLog {
    fn text(&self, label: &str, text: &str) {
        let Some(path) = &self.path else { return };
        let line = json!({ "label": label, "text": text });
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            eprintln!("synapse_client: cannot write the secrets file: {e}");
        }
    }
}

// --- The client ------------------------------------------------------------------------------

/// One timeline event of an encrypted room and what reading it gave.
struct TimelineEvent {
    event_id: String,
    sender: String,
    raw: Value,
    read: Option<Result<Value, Value>>,
}

/// A logged-in device.
struct Client {
    hs: Homeserver,
    endpoint: MatrixEndpoint,
    user: UserId,
    since: Option<String>,
    /// Joined rooms: their `m.room.encrypted` timeline events in order.
    rooms: BTreeMap<String, Vec<TimelineEvent>>,
    invites: BTreeSet<String>,
    /// Every `m.room.encrypted` to-device content sent, by recipient.
    to_device_sent: BTreeMap<(String, String), Value>,
    /// Every to-device event refused, with its typed error.
    to_device_refused: Vec<Value>,
    /// Every device of a `/keys/query` answer refused, with its typed
    /// error.
    keys_refused: Vec<Value>,
    secrets: SecretLog,
    txn: u64,
}

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut stdout = io::stdout().lock();
    let mut client: Option<Client> = None;
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (id, answer, stop) = match serde_json::from_str::<Value>(&line) {
            Ok(request) => {
                let id = request.get("id").cloned().unwrap_or(Value::Null);
                let op = request.get("op").and_then(Value::as_str).unwrap_or("");
                (id, handle(&mut client, op, &request), op == "shutdown")
            }
            Err(e) => (Value::Null, Err(bad(e)), false),
        };
        let line = match answer {
            Ok(ok) => json!({ "id": id, "ok": ok }),
            Err(e) => json!({ "id": id, "error": { "kind": e.kind(), "message": e.to_string() } }),
        };
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
        if stop {
            break;
        }
    }
    Ok(())
}

fn text<'a>(request: &'a Value, name: &str) -> Result<&'a str, ClientError> {
    request
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{name} must be a string")))
}

fn handle(client: &mut Option<Client>, op: &str, request: &Value) -> Result<Value, ClientError> {
    if op == "login" {
        let c = Client::login(request)?;
        let keys = c.endpoint.identity_keys();
        let answer = json!({
            "user_id": c.user, "device_id": c.endpoint.device_id(),
            "identity_keys": { "ed25519": keys.ed25519, "curve25519": keys.curve25519 },
        });
        *client = Some(c);
        return Ok(answer);
    }
    if op == "shutdown" {
        return Ok(json!({}));
    }
    let c = client.as_mut().ok_or(ClientError::NotLoggedIn)?;
    match op {
        "create_room" => c.create_room(request),
        "join" => c.join(text(request, "room_id")?),
        "sync" => {
            let timeout = request
                .get("timeout_ms")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            c.sync(timeout)
        }
        "events" => c.events(text(request, "room_id")?),
        "send" => c.send(text(request, "room_id")?, text(request, "body")?),
        "devices" => c.devices(text(request, "user_id")?),
        "to_device_sent" => {
            let key = (
                text(request, "user_id")?.to_owned(),
                text(request, "device_id")?.to_owned(),
            );
            Ok(json!({ "content": c.to_device_sent.get(&key) }))
        }
        "to_device_refused" => Ok(json!({ "refused": c.to_device_refused })),
        "keys_refused" => Ok(json!({ "refused": c.keys_refused })),
        "logout" => {
            c.hs.call(Method::Post, "/logout", &[], Some(&json!({})))?;
            c.hs.token = None;
            Ok(json!({}))
        }
        other => Err(bad(format!("unknown op {other}"))),
    }
}

impl Client {
    /// `POST /login` with a password, then the first key upload.
    fn login(request: &Value) -> Result<Self, ClientError> {
        let mut hs = Homeserver::new(text(request, "homeserver")?);
        let body = json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": text(request, "user")? },
            "password": text(request, "password")?,
            "device_id": text(request, "device_id")?,
            "initial_device_display_name": "roomseal synapse_client",
        });
        let answer: LoginAnswer = hs.call_json(Method::Post, "/login", Some(&body))?;
        let answer_error = |message: String| ClientError::Answer {
            path: "/login".into(),
            message,
        };
        let user = UserId::parse(answer.user_id).map_err(|e| answer_error(e.to_string()))?;
        let device: DeviceId = answer
            .device_id
            .parse()
            .map_err(|e: roomseal::matrix::IdError| answer_error(e.to_string()))?;
        hs.token = Some(answer.access_token);
        let secrets = SecretLog {
            path: std::env::var_os("E2E_SECRETS_DIR").map(|dir| {
                PathBuf::from(dir).join(format!(
                    "roomseal-{}-{}.jsonl",
                    segment(user.as_str()),
                    segment(device.as_str())
                ))
            }),
        };
        let endpoint = MatrixEndpoint::new(Account::new(), user.clone(), device);
        let mut client = Self {
            hs,
            endpoint,
            user,
            since: None,
            rooms: BTreeMap::new(),
            invites: BTreeSet::new(),
            to_device_sent: BTreeMap::new(),
            to_device_refused: Vec::new(),
            keys_refused: Vec::new(),
            secrets,
            txn: 0,
        };
        client.pump()?;
        Ok(client)
    }

    fn next_txn(&mut self) -> String {
        self.txn += 1;
        format!("rs{}-{}", std::process::id(), self.txn)
    }

    /// Sends one request of the endpoint and gives the answer back.
    fn send_request(&mut self, request: &OutgoingRequest) -> Result<ResponseOutcome, ClientError> {
        let body = request.kind.body();
        let answer = match &request.kind {
            RequestKind::KeysUpload(_) => {
                self.hs
                    .call(Method::Post, "/keys/upload", &[], Some(&body))?
            }
            RequestKind::KeysQuery(_) => {
                self.hs
                    .call(Method::Post, "/keys/query", &[], Some(&body))?
            }
            RequestKind::KeysClaim(_) => {
                self.hs
                    .call(Method::Post, "/keys/claim", &[], Some(&body))?
            }
            RequestKind::ToDevice(send) => {
                let path = format!(
                    "/sendToDevice/{}/{}",
                    segment(&send.event_type),
                    segment(&send.txn_id)
                );
                let answer = self.hs.call(Method::Put, &path, &[], Some(&body))?;
                if send.event_type == "m.room.encrypted"
                    && let Some(messages) = body.get("messages").and_then(Value::as_object)
                {
                    for (user, devices) in messages {
                        for (device, content) in devices.as_object().into_iter().flatten() {
                            self.to_device_sent
                                .insert((user.clone(), device.clone()), content.clone());
                        }
                    }
                }
                answer
            }
        };
        let outcome = self.endpoint.mark_request_as_sent(request.id, &answer)?;
        if let ResponseOutcome::KeysQueried(queried) = &outcome {
            for r in &queried.rejected {
                self.keys_refused.push(json!({
                    "user_id": r.user_id, "device_id": r.device_id,
                    "kind": device_keys_kind(&r.error), "error": r.error.to_string(),
                }));
            }
        }
        Ok(outcome)
    }

    /// Sends every outgoing request until none is left.
    fn pump(&mut self) -> Result<(), ClientError> {
        for _ in 0..MAX_PUMP_ROUNDS {
            let requests = self.endpoint.outgoing_requests()?;
            if requests.is_empty() {
                return Ok(());
            }
            for request in &requests {
                self.send_request(request)?;
            }
        }
        Err(ClientError::Pump)
    }

    fn create_room(&mut self, request: &Value) -> Result<Value, ClientError> {
        let invite: Vec<String> = request
            .get("invite")
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .map_err(bad)?
            .unwrap_or_default();
        let encryption = serde_json::to_value(RoomEncryptionContent::megolm()).map_err(bad)?;
        let body = json!({
            "preset": "private_chat",
            "invite": invite,
            "name": request.get("name").and_then(Value::as_str).unwrap_or("roomseal"),
            "initial_state": [
                { "type": "m.room.encryption", "state_key": "", "content": encryption },
                { "type": "m.room.history_visibility", "state_key": "",
                  "content": { "history_visibility": "joined" } },
            ],
        });
        let answer: RoomIdAnswer = self
            .hs
            .call_json(Method::Post, "/createRoom", Some(&body))?;
        let room = parse_room(&answer.room_id)?;
        self.endpoint
            .set_room_encryption(&room, RoomEncryptionContent::megolm());
        self.rooms.entry(answer.room_id.clone()).or_default();
        Ok(json!({ "room_id": answer.room_id }))
    }

    fn join(&mut self, room: &str) -> Result<Value, ClientError> {
        let path = format!("/join/{}", segment(room));
        self.hs.call(Method::Post, &path, &[], Some(&json!({})))?;
        self.rooms.entry(room.to_owned()).or_default();
        self.invites.remove(room);
        Ok(json!({}))
    }

    /// One `/sync`: the encryption parts to the endpoint, the requests it
    /// then has sent, encrypted timeline events kept and every unread one
    /// decrypted.
    fn sync(&mut self, timeout_ms: u64) -> Result<Value, ClientError> {
        let filter = json!({
            "room": { "timeline": { "limit": 1000 } },
            "presence": { "not_types": ["*"] },
        })
        .to_string();
        let timeout = timeout_ms.to_string();
        let mut query = vec![("timeout", timeout.as_str()), ("filter", filter.as_str())];
        if let Some(since) = &self.since {
            query.push(("since", since.as_str()));
        }
        let text = self.hs.call(Method::Get, "/sync", &query, None)?;
        let answer = |message: String| ClientError::Answer {
            path: "/sync".into(),
            message,
        };
        let rooms: SyncRooms = serde_json::from_str(&text).map_err(|e| answer(e.to_string()))?;
        let changes = SyncChanges::from_json(&text).map_err(|e| answer(e.to_string()))?;
        let mut refused: Vec<Value> = changes
            .rejected_events
            .iter()
            .map(|r| json!({ "index": r.index, "kind": "event", "error": r.error.to_string() }))
            .collect();
        let outcome = self.endpoint.receive_changes(changes);
        for r in &outcome.rejected {
            refused.push(json!({
                "index": r.index, "sender": r.sender,
                "kind": to_device_kind(&r.error), "error": r.error.to_string(),
            }));
        }
        self.to_device_refused.extend(refused.iter().cloned());
        let taken: Vec<Value> = outcome
            .to_device
            .iter()
            .map(|(index, p)| json!({ "index": index, "type": processed_type(p) }))
            .collect();
        let sync_rooms = rooms.rooms.unwrap_or_default();
        for room in sync_rooms.invite.keys() {
            if !self.rooms.contains_key(room) {
                self.invites.insert(room.clone());
            }
        }
        let mut new_events = 0;
        for (room_id, room) in sync_rooms.join {
            // A room id the server should never send is skipped, not fatal: the
            // endpoint has already taken this sync's to-device events.
            let Ok(room_parsed) = RoomId::parse(room_id.as_str()) else {
                continue;
            };
            self.invites.remove(&room_id);
            let state = room.state.unwrap_or_default().events;
            let timeline = room.timeline.unwrap_or_default().events;
            for event in state.iter().chain(timeline.iter()) {
                let Ok(head) = serde_json::from_value::<EventHead>(event.clone()) else {
                    continue;
                };
                if head.event_type == "m.room.encryption"
                    && head.state_key.as_deref() == Some("")
                    && let Some(settings) = event
                        .get("content")
                        .and_then(|c| serde_json::from_value(c.clone()).ok())
                {
                    self.endpoint.set_room_encryption(&room_parsed, settings);
                }
            }
            let kept = self.rooms.entry(room_id.clone()).or_default();
            for event in timeline {
                let Ok(head) = serde_json::from_value::<EventHead>(event.clone()) else {
                    continue;
                };
                let (Some(event_id), Some(sender)) = (head.event_id, head.sender) else {
                    continue;
                };
                if head.event_type != "m.room.encrypted"
                    || kept.iter().any(|e| e.event_id == event_id)
                {
                    continue;
                }
                kept.push(TimelineEvent {
                    event_id,
                    sender,
                    raw: event,
                    read: None,
                });
                new_events += 1;
            }
        }
        self.since = Some(rooms.next_batch);
        self.pump()?;
        self.read_pending();
        Ok(json!({
            "invites": self.invites,
            "new_events": new_events,
            "to_device": taken,
            "refused": refused,
            "changed": outcome.changed_users,
            "left": outcome.left_users,
            "one_time_key_count": outcome.one_time_key_count,
        }))
    }

    /// Decrypts every kept event not read yet, or whose key was missing.
    fn read_pending(&mut self) {
        for (room_id, events) in &mut self.rooms {
            let Ok(room) = RoomId::parse(room_id.as_str()) else {
                continue;
            };
            for event in events.iter_mut() {
                let retry = match &event.read {
                    None => true,
                    Some(Err(e)) => {
                        e.get("kind").and_then(Value::as_str) == Some("unknown_room_key")
                    }
                    Some(Ok(_)) => false,
                };
                if !retry {
                    continue;
                }
                let result = match self
                    .endpoint
                    .decrypt_room_event_json(&room, &event.raw.to_string())
                {
                    Ok(clear) => {
                        let content: Value =
                            serde_json::from_str(clear.content.get()).unwrap_or(Value::Null);
                        if let Some(body) = content.get("body").and_then(Value::as_str) {
                            self.secrets.text("plaintext read by roomseal", body);
                        }
                        Ok(json!({
                            "type": clear.event_type,
                            "content": content,
                            "sender": clear.sender,
                            "sender_device": clear.sender_device,
                            "sender_device_confirmed": clear.sender_device_confirmed,
                            "authenticated": clear.authenticated,
                            "session_id": clear.session_id.to_base64(),
                            "message_index": clear.message_index,
                        }))
                    }
                    Err(e) => Err(room_event_error(&e)),
                };
                event.read = Some(result);
            }
        }
    }

    /// What reading each kept event of a room gave, in timeline order.
    fn events(&mut self, room: &str) -> Result<Value, ClientError> {
        let events = self
            .rooms
            .get(room)
            .ok_or_else(|| bad(format!("not in room {room}")))?;
        let list: Vec<Value> = events
            .iter()
            .map(|e| match &e.read {
                Some(Ok(clear)) => {
                    json!({ "event_id": e.event_id, "sender": e.sender, "ok": true, "clear": clear })
                }
                Some(Err(error)) => {
                    json!({ "event_id": e.event_id, "sender": e.sender, "ok": false, "error": error })
                }
                None => json!({ "event_id": e.event_id, "sender": e.sender, "ok": false,
                                "error": { "kind": "unread" } }),
            })
            .collect();
        Ok(json!({ "events": list }))
    }

    /// Shares the room key with every device of the room's joined members
    /// (querying and claiming what is missing first), encrypts `body` as an
    /// `m.room.message` and sends it as `m.room.encrypted`.
    fn send(&mut self, room_id: &str, body: &str) -> Result<Value, ClientError> {
        let room = parse_room(room_id)?;
        let path = format!("/rooms/{}/joined_members", segment(room_id));
        let members: JoinedMembers = self.hs.call_json(Method::Get, &path, None)?;
        let users: Vec<UserId> = members
            .joined
            .into_keys()
            .filter_map(|u| UserId::parse(u).ok())
            .collect();
        self.endpoint.update_tracked_users(&users);
        self.pump()?;
        if let Some(claim) = self.endpoint.keys_claim_request(&users) {
            self.send_request(&claim)?;
        }
        let share = self.endpoint.share_room_key(&room, &users)?;
        for request in &share.requests {
            self.send_request(request)?;
        }
        let content = json!({ "msgtype": "m.text", "body": body });
        let raw = serde_json::value::to_raw_value(&content).map_err(bad)?;
        let encrypted = self
            .endpoint
            .encrypt_room_event(&room, "m.room.message", &raw)
            .map_err(ClientError::Encrypt)?;
        self.secrets.text("plaintext sent by roomseal", body);
        let txn = self.next_txn();
        let path = format!(
            "/rooms/{}/send/m.room.encrypted/{}",
            segment(room_id),
            segment(&txn)
        );
        let answer: EventIdAnswer =
            self.hs
                .call_json(Method::Put, &path, Some(&encrypted.to_json_value()))?;
        Ok(json!({
            "event_id": answer.event_id,
            "session_id": share.session_id.to_base64(),
            "rotated": share.rotated,
            "rotation_reason": share.rotation_reason.map(|r| format!("{r:?}")),
            "served": share.served,
            "withheld": share.withheld.iter().map(|(u, d, c)| json!([u, d, c.as_str()])).collect::<Vec<_>>(),
            "missing_sessions": share.missing_sessions,
        }))
    }

    /// The devices of a user the endpoint knows (from `/keys/query`).
    fn devices(&mut self, user: &str) -> Result<Value, ClientError> {
        let user = UserId::parse(user).map_err(bad)?;
        let devices: Vec<Value> = self
            .endpoint
            .tracker()
            .devices(&user)
            .map(|d| json!({ "device_id": d.device_id(), "ed25519": d.keys().ed25519 }))
            .collect();
        Ok(json!({ "devices": devices }))
    }
}

fn parse_room(room: &str) -> Result<RoomId, ClientError> {
    RoomId::parse(room).map_err(|e| bad(format!("room id: {e}")))
}

fn processed_type(processed: &ProcessedToDevice) -> &str {
    match processed {
        ProcessedToDevice::RoomKey(_) => "m.room_key",
        ProcessedToDevice::ForwardedRoomKey(_) => "m.forwarded_room_key",
        ProcessedToDevice::Withheld(_) => "m.room_key.withheld",
        ProcessedToDevice::Dummy { .. } => "m.dummy",
        ProcessedToDevice::Decrypted(d) => d.event_type.as_str(),
        ProcessedToDevice::Plain(p) => p.event_type.as_str(),
    }
}

/// A stable name for each kind of refused device keys.
fn device_keys_kind(error: &DeviceKeysError) -> &'static str {
    match error {
        DeviceKeysError::Malformed(_) => "malformed",
        DeviceKeysError::UserIdMismatch => "user_id_mismatch",
        DeviceKeysError::DeviceIdMismatch => "device_id_mismatch",
        DeviceKeysError::InvalidId => "invalid_id",
        DeviceKeysError::MissingKey(_) => "missing_key",
        DeviceKeysError::Signature(_) => "signature",
        DeviceKeysError::KeysChanged => "keys_changed",
        DeviceKeysError::CurveKeyInUse => "curve_key_in_use",
        DeviceKeysError::NotOurKeys => "not_our_keys",
        DeviceKeysError::NotRequested => "not_requested",
        DeviceKeysError::TooManyDevices => "too_many_devices",
    }
}

/// A stable name for each kind of refused to-device event.
fn to_device_kind(error: &ToDeviceError) -> &'static str {
    match error {
        ToDeviceError::Event(_) => "event",
        ToDeviceError::NotForThisDevice => "not_for_this_device",
        ToDeviceError::FromOwnDevice => "from_own_device",
        ToDeviceError::Message(_) => "message",
        ToDeviceError::SenderKeyMismatch => "sender_key_mismatch",
        ToDeviceError::NoSession => "no_session",
        ToDeviceError::Decryption(_) => "decryption",
        ToDeviceError::Account(_) => "account",
        ToDeviceError::TooManyPeers => "too_many_peers",
        ToDeviceError::Payload(_) => "payload",
        ToDeviceError::Content(_) => "content",
        ToDeviceError::RoomKey(_) => "room_key",
    }
}

/// A room event the endpoint refused: a stable kind, the error text and the
/// withheld code, if the sender sent one.
fn room_event_error(error: &RoomEventError) -> Value {
    let (kind, withheld) = match error {
        RoomEventError::Malformed(_) => ("malformed", None),
        RoomEventError::UnsupportedAlgorithm => ("unsupported_algorithm", None),
        RoomEventError::InvalidId(_) => ("invalid_id", None),
        RoomEventError::UnknownRoomKey { withheld } => (
            "unknown_room_key",
            withheld.as_ref().map(|c| c.as_str().to_owned()),
        ),
        RoomEventError::Megolm(GroupError::UnknownIndex { .. }) => ("unknown_message_index", None),
        RoomEventError::Megolm(_) => ("megolm", None),
        RoomEventError::RoomMismatch => ("room_mismatch", None),
        RoomEventError::SenderMismatch => ("sender_mismatch", None),
        RoomEventError::Replay { .. } => ("replay", None),
        RoomEventError::Forgotten { .. } => ("forgotten", None),
        RoomEventError::ShareRequired(_) => ("share_required", None),
    };
    json!({ "kind": kind, "message": error.to_string(), "withheld_code": withheld })
}

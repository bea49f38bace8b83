// A Matrix client built on Element's crypto engine (@matrix-org/matrix-sdk-crypto-wasm) that
// talks to a real homeserver over HTTP with fetch. Reusable by any scenario:
//
//   const hs = new Homeserver("http://127.0.0.1:PORT");
//   const alice = await ElementClient.login(hs, { user: "alice", password, deviceId: "A1" });
//   await alice.bootstrapCrossSigning();
//   const room = await alice.createEncryptedRoom({ invite: ["@bob:localhost"] });
//   const { eventId } = await alice.sendEncrypted(room, { msgtype: "m.text", body: "hi" });
//   await bob.sync();  const r = await bob.decrypt(room, bob.event(room, eventId));
//
// The engine does the cryptography; this file only moves its requests to the server and the
// server's answers (/sync: to-device events, device-list changes, one-time-key counts) back.
import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm";

export { sdk };

const CLIENT = "/_matrix/client/v3";
let engineReady = null;

/** Loads the engine's WebAssembly once per process. */
export function initEngine() {
  engineReady ??= sdk.initAsync();
  return engineReady;
}

/** A non-2xx answer, with the Matrix error code when the server gave one. */
export class HttpError extends Error {
  constructor(method, path, status, body) {
    let errcode;
    try {
      errcode = JSON.parse(body).errcode;
    } catch {
      errcode = undefined;
    }
    super(`${method} ${path} -> HTTP ${status} ${errcode ?? ""}: ${body.slice(0, 300)}`);
    this.status = status;
    this.errcode = errcode;
    this.body = body;
  }
}

let txnCounter = 0;
/** A transaction id unique in this process (the server deduplicates on it). */
export function newTxnId() {
  txnCounter += 1;
  return `t${Date.now()}-${txnCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

const enc = encodeURIComponent;

/** The homeserver's HTTP API: JSON in, JSON (and the raw text, for the engine) out. */
export class Homeserver {
  constructor(baseUrl) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
  }

  /** `path` is absolute (/_synapse/...) or relative to /_matrix/client/v3. */
  async call(method, path, { token, body, query } = {}) {
    const full = path.startsWith("/_") ? path : CLIENT + path;
    const url = new URL(this.baseUrl + full);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    if (!res.ok) throw new HttpError(method, full, res.status, text);
    return { json: text ? JSON.parse(text) : {}, text: text || "{}" };
  }

  async login(user, password, deviceId) {
    const { json } = await this.call("POST", "/login", {
      body: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user },
        password,
        device_id: deviceId,
        initial_device_display_name: `e2e ${deviceId}`,
      },
    });
    return json;
  }
}

/** One device: an access token, an OlmMachine, and what /sync has shown it. */
export class ElementClient {
  /**
   * Logs in with a password (the server makes the device), creates the device's engine and
   * publishes its keys. `settings.shareWith` picks who gets room keys: "cross-signed" (devices
   * signed by their owner's identity; the default) or "all". `settings.trust` is the sender
   * trust required to decrypt (sdk.TrustRequirement; default CrossSignedOrLegacy).
   */
  static async login(hs, { user, password, deviceId, settings = {}, log = () => {} }) {
    const session = await hs.login(user, password, deviceId);
    return ElementClient.fromSession(hs, { ...session, password, settings, log });
  }

  static async fromSession(hs, { user_id, device_id, access_token, password, settings = {}, log = () => {} }) {
    await initEngine();
    const machine = await sdk.OlmMachine.initialize(new sdk.UserId(user_id), new sdk.DeviceId(device_id));
    // History policy: a device reads what was sent after it joined. No key requests to other
    // devices, no forwarding to them (Element's own-device key gossip stays off).
    machine.roomKeyRequestsEnabled = false;
    machine.roomKeyForwardingEnabled = false;
    const client = new ElementClient(hs, machine, { user_id, device_id, access_token, password, settings, log });
    await client.processOutgoing();
    return client;
  }

  constructor(hs, machine, { user_id, device_id, access_token, password, settings, log }) {
    this.hs = hs;
    this.machine = machine;
    this.userId = user_id;
    this.deviceId = device_id;
    this.token = access_token;
    this.password = password;
    this.settings = settings;
    this.log = log;
    this.since = undefined;
    this.timelines = new Map(); // room id -> [event], in server order, no duplicates
    this.invites = new Set();
    this.toDeviceSent = []; // every to-device request this device sent: {eventType, txnId, body}
    this.toDeviceReceived = []; // every to-device event /sync gave it: {raw, kind: ProcessedToDeviceEventType}
  }

  get name() {
    return `${this.userId}/${this.deviceId}`;
  }

  api(method, path, opts = {}) {
    return this.hs.call(method, path, { token: this.token, ...opts });
  }

  // --- The engine's outgoing requests ------------------------------------------------------

  /** Sends one engine request to its endpoint and hands the raw answer back to the engine. */
  async sendRequest(req) {
    const body = req.body;
    let res;
    switch (req.type) {
      case sdk.RequestType.KeysUpload:
        res = await this.api("POST", "/keys/upload", { body });
        break;
      case sdk.RequestType.KeysQuery:
        res = await this.api("POST", "/keys/query", { body });
        break;
      case sdk.RequestType.KeysClaim:
        res = await this.api("POST", "/keys/claim", { body });
        break;
      case sdk.RequestType.ToDevice:
        this.toDeviceSent.push({ eventType: req.event_type, txnId: req.txn_id, body: JSON.parse(body) });
        res = await this.api("PUT", `/sendToDevice/${enc(req.event_type)}/${enc(req.txn_id)}`, { body });
        break;
      case sdk.RequestType.SignatureUpload:
        res = await this.api("POST", "/keys/signatures/upload", { body });
        break;
      case sdk.RequestType.RoomMessage:
        res = await this.api("PUT", `/rooms/${enc(req.room_id)}/send/${enc(req.event_type)}/${enc(req.txn_id)}`, { body });
        break;
      default:
        throw new Error(`${this.name}: no endpoint for engine request type ${req.type}`);
    }
    if (req.id !== undefined) await this.machine.markRequestAsSent(req.id, req.type, res.text);
    return res.json;
  }

  /** Answers every request the engine has queued (key uploads, queries, to-device...). */
  async processOutgoing() {
    for (let round = 0; round < 20; round++) {
      const reqs = await this.machine.outgoingRequests();
      if (reqs.length === 0) return;
      for (const req of reqs) await this.sendRequest(req);
    }
    throw new Error(`${this.name}: the engine kept queueing requests for 20 rounds`);
  }

  /** Downloads the current device keys of `users` now (instead of waiting for a sync). */
  async queryKeys(users) {
    await this.machine.updateTrackedUsers(users.map((u) => new sdk.UserId(u)));
    await this.sendRequest(this.machine.queryKeysForUsers(users.map((u) => new sdk.UserId(u))));
    await this.processOutgoing();
  }

  // --- /sync -------------------------------------------------------------------------------

  /** One /sync: feeds to-device events, device-list changes and key counts to the engine. */
  async sync({ timeoutMs = 0 } = {}) {
    const filter = { room: { timeline: { limit: 1000 } }, presence: { not_types: ["*"] } };
    const query = { timeout: String(timeoutMs), filter: JSON.stringify(filter) };
    if (this.since) query.since = this.since;
    const { json } = await this.api("GET", "/sync", { query });
    const toDevice = json.to_device?.events ?? [];
    const ids = (list) => (list ?? []).map((u) => new sdk.UserId(u));
    const processed = await this.machine.receiveSyncChanges(
      JSON.stringify(toDevice),
      new sdk.DeviceLists(ids(json.device_lists?.changed), ids(json.device_lists?.left)),
      new Map(Object.entries(json.device_one_time_keys_count ?? {})),
      new Set(json.device_unused_fallback_key_types ?? []),
    );
    // rawEvent: the event as received (undecryptable, plaintext) or as decrypted.
    for (const p of processed) this.toDeviceReceived.push({ raw: JSON.parse(p.rawEvent), kind: p.type });
    for (const [roomId, room] of Object.entries(json.rooms?.join ?? {})) {
      // A room seen for the first time may come "limited"; a gap in a known room would hide events.
      if (room.timeline?.limited && this.timelines.has(roomId)) {
        throw new Error(`${this.name}: /sync cut the timeline of ${roomId} (limited); raise the filter's limit`);
      }
      const timeline = this.timeline(roomId);
      const seen = new Set(timeline.map((e) => e.event_id));
      for (const ev of room.timeline?.events ?? []) {
        if (!seen.has(ev.event_id)) timeline.push({ ...ev, room_id: roomId });
      }
      this.invites.delete(roomId);
    }
    for (const roomId of Object.keys(json.rooms?.invite ?? {})) this.invites.add(roomId);
    this.since = json.next_batch;
    await this.processOutgoing();
    return { toDevice: processed.length, deviceListsChanged: json.device_lists?.changed ?? [] };
  }

  timeline(roomId) {
    if (!this.timelines.has(roomId)) this.timelines.set(roomId, []);
    return this.timelines.get(roomId);
  }

  event(roomId, eventId) {
    return this.timeline(roomId).find((e) => e.event_id === eventId);
  }

  // --- Cross-signing -------------------------------------------------------------------------

  /** Makes and publishes this user's cross-signing identity (master, self-signing, user-signing
   * keys) and signs this device with it. */
  async bootstrapCrossSigning() {
    const reqs = await this.machine.bootstrapCrossSigning(true);
    if (reqs.uploadKeysRequest) await this.sendRequest(reqs.uploadKeysRequest);
    await this.uploadSigningKeys(reqs.uploadSigningKeysRequest.body);
    await this.sendRequest(reqs.uploadSignaturesRequest);
    await this.processOutgoing();
  }

  /** POST /keys/device_signing/upload, answering user-interactive auth with the password. */
  async uploadSigningKeys(body) {
    const keys = JSON.parse(body);
    try {
      await this.api("POST", "/keys/device_signing/upload", { body: keys });
    } catch (e) {
      if (!(e instanceof HttpError) || e.status !== 401) throw e;
      const session = JSON.parse(e.body).session;
      const auth = {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: this.userId },
        password: this.password,
        session,
      };
      await this.api("POST", "/keys/device_signing/upload", { body: { ...keys, auth } });
    }
  }

  /** Signs another device of this user with the user's self-signing key (the way an existing
   * device approves a new login), and publishes the signature. */
  async approveOwnDevice(deviceId) {
    await this.queryKeys([this.userId]);
    const device = await this.machine.getDevice(new sdk.UserId(this.userId), new sdk.DeviceId(deviceId));
    if (!device) throw new Error(`${this.name}: cannot see own device ${deviceId} to approve it`);
    await this.sendRequest(await device.verify());
  }

  /** Marks this user's cross-signing identity as trusted on this device and signs its master key
   * with the device key (what a new device does once it has verified the identity, e.g. by
   * interactive verification with an existing device). The identity-based sharing strategy
   * refuses to send from a device whose own identity is not trusted. */
  async trustOwnIdentity() {
    await this.queryKeys([this.userId]);
    const identity = await this.machine.getIdentity(new sdk.UserId(this.userId));
    if (!identity) throw new Error(`${this.name}: no cross-signing identity for ${this.userId} on the server`);
    if (!identity.isVerified()) await this.sendRequest(await identity.verify());
  }

  /** The engine's view of a user's devices: {deviceId: {crossSigned, deleted}}. */
  async devicesOf(userId) {
    const devices = await this.machine.getUserDevices(new sdk.UserId(userId));
    const out = {};
    for (const d of devices.devices()) {
      out[d.deviceId.toString()] = { crossSigned: d.isCrossSignedByOwner(), deleted: d.isDeleted() };
    }
    return out;
  }

  // --- Rooms ---------------------------------------------------------------------------------

  /** Creates a private room that is encrypted from its first event (m.megolm.v1.aes-sha2). */
  async createEncryptedRoom({ invite = [], historyVisibility = "joined", name } = {}) {
    const { json } = await this.api("POST", "/createRoom", {
      body: {
        preset: "private_chat",
        invite,
        ...(name ? { name } : {}),
        initial_state: [
          { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
          { type: "m.room.history_visibility", state_key: "", content: { history_visibility: historyVisibility } },
        ],
      },
    });
    return json.room_id;
  }

  async join(roomId) {
    await this.api("POST", `/join/${enc(roomId)}`, { body: {} });
  }

  async joinedMembers(roomId) {
    const { json } = await this.api("GET", `/rooms/${enc(roomId)}/joined_members`);
    return Object.keys(json.joined);
  }

  encryptionSettings() {
    const s = new sdk.EncryptionSettings();
    s.historyVisibility = sdk.HistoryVisibility.Joined;
    s.sharingStrategy =
      (this.settings.shareWith ?? "cross-signed") === "all"
        ? sdk.CollectStrategy.allDevices()
        : sdk.CollectStrategy.identityBasedStrategy();
    return s;
  }

  /** Shares the room key with every eligible device of the room's members (claiming one-time
   * keys for missing sessions first). Returns the to-device requests it sent. */
  async shareRoomKey(roomId) {
    const members = await this.joinedMembers(roomId);
    const ids = () => members.map((u) => new sdk.UserId(u)); // wasm-bindgen consumes arrays
    await this.machine.updateTrackedUsers(ids());
    await this.processOutgoing();
    const claim = await this.machine.getMissingSessions(ids());
    if (claim) await this.sendRequest(claim);
    const shares = await this.machine.shareRoomKey(new sdk.RoomId(roomId), ids(), this.encryptionSettings());
    const sent = [];
    for (const req of shares) {
      await this.sendRequest(req);
      sent.push({ eventType: req.event_type, txnId: req.txn_id, body: JSON.parse(req.body) });
    }
    return sent;
  }

  /** Encrypts `content` as an m.room.message and sends it as m.room.encrypted. */
  async sendEncrypted(roomId, content, { type = "m.room.message" } = {}) {
    const shares = await this.shareRoomKey(roomId);
    const encrypted = await this.machine.encryptRoomEvent(new sdk.RoomId(roomId), type, JSON.stringify(content));
    const { json } = await this.api("PUT", `/rooms/${enc(roomId)}/send/m.room.encrypted/${enc(newTxnId())}`, {
      body: encrypted,
    });
    return { eventId: json.event_id, content: JSON.parse(encrypted), shares };
  }

  decryptionSettings() {
    return new sdk.DecryptionSettings(this.settings.trust ?? sdk.TrustRequirement.CrossSignedOrLegacy);
  }

  /** Decrypts a timeline event. {ok: true, content, sender, senderDevice} or, for an event the
   * engine refuses, {ok: false, code: "MissingRoomKey" | ..., description}. */
  async decrypt(roomId, event) {
    try {
      const d = await this.machine.decryptRoomEvent(JSON.stringify(event), new sdk.RoomId(roomId), this.decryptionSettings());
      const clear = JSON.parse(d.event);
      return { ok: true, type: clear.type, content: clear.content, sender: d.sender.toString(), senderDevice: d.senderDevice?.toString() };
    } catch (e) {
      if (e instanceof sdk.MegolmDecryptionError) {
        return { ok: false, code: sdk.DecryptionErrorCode[e.code] ?? String(e.code), description: e.description };
      }
      throw e;
    }
  }

  /** Every room key this device holds, as the engine exports them (JSON array). */
  async exportRoomKeys() {
    return JSON.parse(await this.machine.exportRoomKeys(() => true));
  }

  async logout() {
    await this.api("POST", "/logout", { body: {} });
  }

  close() {
    this.machine.close();
  }
}

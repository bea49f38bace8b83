// A participant that runs in another process and speaks the harness's line
// protocol (one JSON object per line on stdin and stdout; see ../README.md).
// The roomseal peer (`cargo run --example matrix_peer`) is one.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

export class PeerError extends Error {
  constructor(op, error) {
    super(`${op}: ${error.kind}: ${error.message ?? ""}`);
    this.kind = error.kind;
    this.code = error.code;
    this.withheldCode = error.withheld_code;
  }
}

export class LineClient {
  /** Starts `command args...` and sends `init`. */
  static async spawn(command, args, userId, deviceId) {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
    const client = new LineClient(child, userId, deviceId);
    const init = await client.call("init", { user_id: userId, device_id: deviceId });
    client.capabilities = new Set(init.capabilities);
    client.identityKeys = init.identity_keys;
    return client;
  }

  constructor(child, userId, deviceId) {
    this.child = child;
    this.userId = userId;
    this.deviceId = deviceId;
    this.kind = "line";
    this.nextId = 1;
    /** withheld notices received ({ sender, code }) */
    this.withheld = [];
    this.pending = new Map();
    this.exited = new Promise((resolve) => child.on("exit", resolve));
    createInterface({ input: child.stdout }).on("line", (line) => this.onLine(line));
    child.on("exit", (code) => {
      for (const { reject } of this.pending.values()) reject(new Error(`peer exited with ${code}`));
      this.pending.clear();
    });
  }

  onLine(line) {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      throw new Error(`peer wrote a line that is not JSON: ${line.slice(0, 200)}`);
    }
    const waiter = this.pending.get(message.id);
    if (!waiter) throw new Error(`peer answered unknown id ${message.id}`);
    this.pending.delete(message.id);
    if ("error" in message) waiter.reject(new PeerError(waiter.op, message.error));
    else waiter.resolve(message.ok);
  }

  /** Sends one request line and waits for its answer. */
  call(op, params = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, op });
      this.child.stdin.write(`${JSON.stringify({ id, op, ...params })}\n`);
    });
  }

  identity() {
    return this.identityKeys;
  }

  async outgoingRequests() {
    return (await this.call("outgoing_requests")).requests;
  }

  async markRequestAsSent(id, type, response) {
    return this.call("mark_request_as_sent", { request_id: id, request_type: type, response });
  }

  async receiveSyncChanges(sync) {
    const summary = await this.call("receive_sync_changes", { sync });
    for (const e of summary.to_device ?? []) {
      if (e.type === "m.room_key.withheld") this.withheld.push({ sender: e.sender, code: e.code });
    }
    return summary;
  }

  async updateTrackedUsers(users) {
    return this.call("update_tracked_users", { users });
  }

  async getMissingSessions(users) {
    return (await this.call("get_missing_sessions", { users })).request;
  }

  async shareRoomKey(roomId, users) {
    return (await this.call("share_room_key", { room_id: roomId, users })).requests;
  }

  async encryptRoomEvent(roomId, type, content) {
    return (await this.call("encrypt_room_event", { room_id: roomId, event_type: type, content })).content;
  }

  async decryptRoomEvent(event, roomId) {
    return this.call("decrypt_room_event", { room_id: roomId, event });
  }

  /** Blacklists a device (it then gets withheld notices). */
  async blacklist(user, device) {
    return this.call("set_device_trust", { user_id: user, device_id: device, trust: "blacklisted" });
  }

  async invalidateGroupSession(roomId) {
    return (await this.call("rotate_room_key", { room_id: roomId })).rotated;
  }

  /** Forwards a held room key to an own device; returns the to_device request. */
  async forwardRoomKey(roomId, sessionId, deviceId) {
    return (await this.call("forward_room_key", { room_id: roomId, session_id: sessionId, device_id: deviceId })).request;
  }

  async devices(user) {
    return (await this.call("devices", { user_id: user })).devices;
  }

  async close() {
    await this.call("shutdown").catch(() => {});
    this.child.stdin.end();
    await this.exited;
  }
}

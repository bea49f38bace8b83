// A roomseal device against a real homeserver: drives examples/synapse_client.rs (one process
// per device, built once with `cargo build --example synapse_client`) over its line protocol
// (one JSON command per line on stdin, one answer per line on stdout; see tests/synapse/README.md).
// The Rust process does the HTTP and the cryptography; this file only sends commands.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";

/** Where `cargo build --example synapse_client` puts the binary. */
export function roomsealBinary(root) {
  const target = process.env.CARGO_TARGET_DIR ?? join(root, "target");
  return join(target, "debug", "examples", "synapse_client");
}

/** A command the client refused: `kind` is its typed error kind. */
export class RoomsealError extends Error {
  constructor(op, error) {
    super(`${op}: ${error.kind}: ${error.message}`);
    this.kind = error.kind;
  }
}

export class RoomsealClient {
  static async login(binary, { homeserver, user, password, deviceId }) {
    const client = new RoomsealClient(binary);
    const ok = await client.call("login", { homeserver, user, password, device_id: deviceId });
    client.userId = ok.user_id;
    client.deviceId = ok.device_id;
    client.identityKeys = ok.identity_keys;
    return client;
  }

  constructor(binary) {
    this.child = spawn(binary, [], { stdio: ["pipe", "pipe", "inherit"], env: process.env });
    this.waiting = new Map();
    this.nextId = 1;
    this.exited = new Promise((resolve) => this.child.on("exit", resolve));
    this.child.on("exit", (code) => {
      for (const { reject } of this.waiting.values()) reject(new Error(`synapse_client exited (${code})`));
      this.waiting.clear();
    });
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      let answer;
      try {
        answer = JSON.parse(line);
      } catch {
        console.error(`synapse_client wrote a line that is not JSON: ${line.slice(0, 200)}`);
        return;
      }
      const w = this.waiting.get(answer.id);
      if (!w) return;
      this.waiting.delete(answer.id);
      if (answer.error) w.reject(new RoomsealError(w.op, answer.error));
      else w.resolve(answer.ok);
    });
  }

  get name() {
    return `${this.userId}/${this.deviceId}`;
  }

  call(op, params = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, op });
      this.child.stdin.write(JSON.stringify({ id, op, ...params }) + "\n");
    });
  }

  createEncryptedRoom({ invite = [], name } = {}) {
    return this.call("create_room", { invite, name }).then((ok) => ok.room_id);
  }

  join(roomId) {
    return this.call("join", { room_id: roomId });
  }

  sync({ timeoutMs = 0 } = {}) {
    return this.call("sync", { timeout_ms: timeoutMs });
  }

  /** Every m.room.encrypted event of the room this device got, with what reading it gave. */
  async events(roomId) {
    return (await this.call("events", { room_id: roomId })).events;
  }

  send(roomId, body) {
    return this.call("send", { room_id: roomId, body });
  }

  async devices(userId) {
    return (await this.call("devices", { user_id: userId })).devices.map((d) => d.device_id);
  }

  async toDeviceSent(userId, deviceId) {
    return (await this.call("to_device_sent", { user_id: userId, device_id: deviceId })).content;
  }

  async toDeviceRefused() {
    return (await this.call("to_device_refused")).refused;
  }

  logout() {
    return this.call("logout");
  }

  async close() {
    if (this.child.exitCode !== null) return;
    await this.call("shutdown").catch(() => {});
    this.child.stdin.end();
    await this.exited;
  }
}

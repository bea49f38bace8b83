// A participant backed by Element's crypto engine (matrix-sdk-crypto-wasm's
// OlmMachine), behind the interface every participant of the harness has
// (see ../README.md): requests are plain objects { id, type, body,
// event_type?, txn_id? } with snake_case types, answers are plain objects.

import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm";

let initialized = null;

/** Loads the wasm module once. */
export function initEngine() {
  initialized ??= sdk.initAsync();
  return initialized;
}

const TYPES = new Map([
  [sdk.RequestType.KeysUpload, "keys_upload"],
  [sdk.RequestType.KeysQuery, "keys_query"],
  [sdk.RequestType.KeysClaim, "keys_claim"],
  [sdk.RequestType.ToDevice, "to_device"],
  [sdk.RequestType.SignatureUpload, "signature_upload"],
  [sdk.RequestType.RoomMessage, "room_message"],
  [sdk.RequestType.KeysBackup, "keys_backup"],
]);
const SDK_TYPES = new Map([...TYPES].map(([k, v]) => [v, k]));

function plain(request) {
  const out = { id: request.id, type: TYPES.get(request.type), body: JSON.parse(request.body) };
  if (request.event_type !== undefined) out.event_type = request.event_type;
  if (request.txn_id !== undefined) out.txn_id = request.txn_id;
  return out;
}

// wasm-bindgen takes ownership of arrays of UserId: build fresh ones for
// every call.
const userIds = (users) => users.map((u) => new sdk.UserId(u));

export class ElementClient {
  static async create(userId, deviceId) {
    await initEngine();
    const machine = await sdk.OlmMachine.initialize(new sdk.UserId(userId), new sdk.DeviceId(deviceId));
    return new ElementClient(userId, deviceId, machine);
  }

  constructor(userId, deviceId, machine) {
    this.userId = userId;
    this.deviceId = deviceId;
    this.kind = "element";
    this.capabilities = new Set(["keys", "olm", "megolm"]);
    this.machine = machine;
    this.withheld = [];
    machine.registerRoomKeysWithheldCallback(async (infos) => {
      for (const info of infos) {
        this.withheld.push({ roomId: info.roomId.toString(), sessionId: info.sessionId, code: info.withheldCode });
      }
    });
  }

  identity() {
    const keys = this.machine.identityKeys;
    return { ed25519: keys.ed25519.toBase64(), curve25519: keys.curve25519.toBase64() };
  }

  async outgoingRequests() {
    return (await this.machine.outgoingRequests()).map(plain);
  }

  async markRequestAsSent(id, type, response) {
    await this.machine.markRequestAsSent(id, SDK_TYPES.get(type), JSON.stringify(response));
  }

  /** sync: a /sync response (only the E2EE parts are read here). */
  async receiveSyncChanges(sync) {
    const lists = new sdk.DeviceLists(userIds(sync.device_lists?.changed ?? []), userIds(sync.device_lists?.left ?? []));
    const counts = new Map(Object.entries(sync.device_one_time_keys_count ?? {}));
    const fallback = new Set(sync.device_unused_fallback_key_types ?? []);
    const processed = await this.machine.receiveSyncChanges(
      JSON.stringify(sync.to_device?.events ?? []),
      lists,
      counts,
      fallback,
    );
    const summary = { decrypted: 0, undecryptable: 0, plain: 0, invalid: 0 };
    for (const event of processed) {
      switch (event.type) {
        case sdk.ProcessedToDeviceEventType.Decrypted:
          summary.decrypted++;
          break;
        case sdk.ProcessedToDeviceEventType.UnableToDecrypt:
          summary.undecryptable++;
          break;
        case sdk.ProcessedToDeviceEventType.PlainText:
          summary.plain++;
          break;
        default:
          summary.invalid++;
      }
    }
    return summary;
  }

  async updateTrackedUsers(users) {
    await this.machine.updateTrackedUsers(userIds(users));
  }

  async getMissingSessions(users) {
    const request = await this.machine.getMissingSessions(userIds(users));
    return request ? plain(request) : null;
  }

  async shareRoomKey(roomId, users) {
    const requests = await this.machine.shareRoomKey(new sdk.RoomId(roomId), userIds(users), new sdk.EncryptionSettings());
    return requests.map(plain);
  }

  async encryptRoomEvent(roomId, type, content) {
    return JSON.parse(await this.machine.encryptRoomEvent(new sdk.RoomId(roomId), type, JSON.stringify(content)));
  }

  /** Returns { type, content, sender } or throws { code, withheldCode }. */
  async decryptRoomEvent(event, roomId) {
    try {
      const decrypted = await this.machine.decryptRoomEvent(
        JSON.stringify(event),
        new sdk.RoomId(roomId),
        new sdk.DecryptionSettings(sdk.TrustRequirement.Untrusted),
      );
      const clear = JSON.parse(decrypted.event);
      return { type: clear.type, content: clear.content, sender: decrypted.sender.toString() };
    } catch (e) {
      const err = new Error(`decryption failed: ${e.description ?? e.message ?? e}`);
      err.code = e.code;
      err.withheldCode = e.withheldCode;
      throw err;
    }
  }

  async devices(user) {
    const devices = await this.machine.getUserDevices(new sdk.UserId(user));
    return devices.devices().map((d) => ({
      device_id: d.deviceId.toString(),
      ed25519: d.ed25519Key?.toBase64(),
      curve25519: d.curve25519Key?.toBase64(),
      deleted: d.isDeleted(),
    }));
  }

  /** Blacklists a device of another user (it then gets withheld notices). */
  async blacklist(user, device) {
    const d = await this.machine.getDevice(new sdk.UserId(user), new sdk.DeviceId(device));
    await d.setLocalTrust(sdk.LocalTrust.BlackListed);
  }

  async invalidateGroupSession(roomId) {
    return this.machine.invalidateGroupSession(new sdk.RoomId(roomId));
  }

  async close() {
    this.machine.close();
  }
}

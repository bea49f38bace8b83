// An in-memory Matrix homeserver, just the end-to-end encryption parts:
// /keys/upload, /keys/query, /keys/claim, /sendToDevice, room events and
// /sync (to_device, device_lists, one-time key counts, unused fallback key
// types, room timelines). It keeps the rules a real server keeps where the
// clients depend on them: each one-time key is handed out once, oldest
// upload first, then the fallback key (marked used); device keys of a
// device never change; device list changes reach every user who shares a
// room with the changed user.

const SIGNED_CURVE25519 = "signed_curve25519";

export class ServerError extends Error {
  constructor(status, errcode, message) {
    super(`${status} ${errcode}: ${message}`);
    this.status = status;
    this.errcode = errcode;
  }
}

function deviceKey(user, device) {
  return `${user}\u0000${device}`;
}

export class MemoryServer {
  constructor() {
    /** `${user}\0${device}` -> device record */
    this.devices = new Map();
    /** room id -> { members: Set<user>, timeline: event[] } */
    this.rooms = new Map();
    this.nextEvent = 0;
    this.nextBatch = 0;
    this.stats = { keysUpload: 0, keysQuery: 0, keysClaim: 0, toDevice: 0, roomEvents: 0, syncs: 0 };
  }

  // ---- accounts and rooms -------------------------------------------------

  login(user, device) {
    const key = deviceKey(user, device);
    if (this.devices.has(key)) throw new ServerError(400, "M_IN_USE", `device ${device} exists`);
    this.devices.set(key, {
      user,
      device,
      deviceKeys: null,
      oneTimeKeys: new Map(), // name -> key object, in upload order
      fallback: null, // { name, key, used }
      toDevice: [],
      changed: new Set(),
      left: new Set(),
      cursors: new Map(), // room id -> timeline position
    });
  }

  /** Deletes a device (log out): its keys go, and everyone sharing a room
   * with its user hears that the user's devices changed. */
  logout(user, device) {
    if (!this.devices.delete(deviceKey(user, device))) throw new ServerError(404, "M_NOT_FOUND", "no such device");
    this.notifyChanged(user);
  }

  createRoom(roomId) {
    this.rooms.set(roomId, { members: new Set(), timeline: [] });
  }

  join(roomId, user) {
    const room = this.room(roomId);
    const before = this.sharingWith(user);
    room.members.add(user);
    // Both sides learn about each other's devices if they share a room now.
    for (const other of room.members) {
      if (other === user || before.has(other)) continue;
      this.markChanged(other, user);
      this.markChanged(user, other);
    }
    // Joiners read the timeline from the moment they join.
    for (const d of this.devicesOf(user)) d.cursors.set(roomId, room.timeline.length);
  }

  members(roomId) {
    return [...this.room(roomId).members];
  }

  room(roomId) {
    const room = this.rooms.get(roomId);
    if (!room) throw new ServerError(404, "M_NOT_FOUND", `no room ${roomId}`);
    return room;
  }

  devicesOf(user) {
    return [...this.devices.values()].filter((d) => d.user === user);
  }

  device(user, device) {
    const d = this.devices.get(deviceKey(user, device));
    if (!d) throw new ServerError(401, "M_UNKNOWN_TOKEN", `${user}/${device} is logged out`);
    return d;
  }

  sharingWith(user) {
    const users = new Set();
    for (const room of this.rooms.values()) {
      if (!room.members.has(user)) continue;
      for (const m of room.members) users.add(m);
    }
    return users;
  }

  markChanged(observer, changedUser) {
    for (const d of this.devicesOf(observer)) d.changed.add(changedUser);
  }

  notifyChanged(user) {
    for (const observer of this.sharingWith(user)) this.markChanged(observer, user);
    this.markChanged(user, user);
  }

  // ---- the endpoints --------------------------------------------------------

  keysUpload(user, device, body) {
    this.stats.keysUpload++;
    const d = this.device(user, device);
    if (body.device_keys) {
      const keys = body.device_keys;
      if (keys.user_id !== user || keys.device_id !== device) {
        throw new ServerError(400, "M_INVALID_PARAM", "device keys for another device");
      }
      if (d.deviceKeys && JSON.stringify(d.deviceKeys.keys) !== JSON.stringify(keys.keys)) {
        throw new ServerError(400, "M_INVALID_PARAM", "device keys cannot change");
      }
      const isNew = d.deviceKeys === null;
      d.deviceKeys = keys;
      if (isNew) this.notifyChanged(user);
    }
    for (const [name, key] of Object.entries(body.one_time_keys ?? {})) {
      const existing = d.oneTimeKeys.get(name);
      if (existing && JSON.stringify(existing) !== JSON.stringify(key)) {
        throw new ServerError(400, "M_INVALID_PARAM", `one-time key ${name} already exists`);
      }
      d.oneTimeKeys.set(name, key);
    }
    for (const [name, key] of Object.entries(body.fallback_keys ?? {})) {
      if (name.startsWith(`${SIGNED_CURVE25519}:`)) d.fallback = { name, key, used: false };
    }
    return { one_time_key_counts: this.counts(d) };
  }

  counts(d) {
    return { [SIGNED_CURVE25519]: d.oneTimeKeys.size };
  }

  keysQuery(_user, body) {
    this.stats.keysQuery++;
    const deviceKeys = {};
    for (const [user, wanted] of Object.entries(body.device_keys ?? {})) {
      const devices = {};
      for (const d of this.devicesOf(user)) {
        if (!d.deviceKeys) continue;
        if (wanted.length > 0 && !wanted.includes(d.device)) continue;
        devices[d.device] = { ...d.deviceKeys, unsigned: { device_display_name: `${d.device} (memory server)` } };
      }
      deviceKeys[user] = devices;
    }
    return { device_keys: deviceKeys, failures: {} };
  }

  keysClaim(_user, body) {
    this.stats.keysClaim++;
    const claimed = {};
    for (const [user, devices] of Object.entries(body.one_time_keys ?? {})) {
      for (const [device, algorithm] of Object.entries(devices)) {
        const d = this.devices.get(deviceKey(user, device));
        if (!d || algorithm !== SIGNED_CURVE25519) continue;
        let entry = null;
        for (const [name, key] of d.oneTimeKeys) {
          d.oneTimeKeys.delete(name);
          entry = [name, key];
          break;
        }
        if (!entry && d.fallback) {
          d.fallback.used = true;
          entry = [d.fallback.name, d.fallback.key];
        }
        if (!entry) continue;
        (claimed[user] ??= {})[device] = { [entry[0]]: entry[1] };
      }
    }
    return { one_time_keys: claimed, failures: {} };
  }

  sendToDevice(sender, eventType, body) {
    this.stats.toDevice++;
    for (const [user, devices] of Object.entries(body.messages ?? {})) {
      for (const [device, content] of Object.entries(devices)) {
        const targets = device === "*" ? this.devicesOf(user) : [this.devices.get(deviceKey(user, device))];
        for (const t of targets) {
          // Messages to devices that no longer exist are dropped, as a server does.
          if (t) t.toDevice.push({ type: eventType, sender, content: structuredClone(content) });
        }
      }
    }
    return {};
  }

  sendRoomEvent(sender, roomId, type, content) {
    this.stats.roomEvents++;
    const room = this.room(roomId);
    if (!room.members.has(sender)) throw new ServerError(403, "M_FORBIDDEN", "not in the room");
    const event = {
      type,
      event_id: `$${++this.nextEvent}:memory`,
      sender,
      origin_server_ts: 1_700_000_000_000 + this.nextEvent,
      room_id: roomId,
      content,
    };
    room.timeline.push(event);
    return { event_id: event.event_id };
  }

  sync(user, device) {
    this.stats.syncs++;
    const d = this.device(user, device);
    const join = {};
    for (const [roomId, room] of this.rooms) {
      if (!room.members.has(user)) continue;
      const from = d.cursors.get(roomId) ?? room.timeline.length;
      const events = room.timeline.slice(from);
      d.cursors.set(roomId, room.timeline.length);
      if (events.length > 0) join[roomId] = { timeline: { events } };
    }
    const response = {
      next_batch: `s${++this.nextBatch}`,
      rooms: { join },
      to_device: { events: d.toDevice.splice(0, d.toDevice.length) },
      device_lists: { changed: [...d.changed], left: [...d.left] },
      device_one_time_keys_count: this.counts(d),
      device_unused_fallback_key_types: d.fallback && !d.fallback.used ? [SIGNED_CURVE25519] : [],
    };
    d.changed.clear();
    d.left.clear();
    return response;
  }

  /** Routes one client request (the shape every client adapter produces). */
  route(user, device, request) {
    switch (request.type) {
      case "keys_upload":
        return this.keysUpload(user, device, request.body);
      case "keys_query":
        return this.keysQuery(user, request.body);
      case "keys_claim":
        return this.keysClaim(user, request.body);
      case "to_device":
        return this.sendToDevice(user, request.event_type, request.body);
      case "signature_upload":
        return { failures: {} };
      default:
        throw new Error(`the memory server does not route ${request.type} requests`);
    }
  }
}

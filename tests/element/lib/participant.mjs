// Drives any client (Element's engine or a line-protocol peer) against the
// memory server: answers its requests, delivers syncs, shares room keys
// before sending, and reads room timelines.

const MAX_PUMP_ROUNDS = 20;

export class Participant {
  constructor(server, client) {
    this.server = server;
    this.client = client;
    this.userId = client.userId;
    this.deviceId = client.deviceId;
    /** room events delivered by sync, not yet read */
    this.inbox = [];
    this.read = [];
    this.failures = [];
  }

  get name() {
    return `${this.userId}/${this.deviceId}`;
  }

  /** Answers one request through the server. */
  async answer(request) {
    const response = this.server.route(this.userId, this.deviceId, request);
    await this.client.markRequestAsSent(request.id, request.type, response);
    return response;
  }

  /** Sends every outgoing request until the client has none left. */
  async pump() {
    for (let round = 0; round < MAX_PUMP_ROUNDS; round++) {
      const requests = await this.client.outgoingRequests();
      if (requests.length === 0) return;
      for (const request of requests) await this.answer(request);
    }
    throw new Error(`${this.name}: still has requests after ${MAX_PUMP_ROUNDS} rounds`);
  }

  /** One /sync: to-device events, device lists, key counts, timelines. */
  async sync() {
    const response = this.server.sync(this.userId, this.deviceId);
    const summary = await this.client.receiveSyncChanges(response);
    for (const [roomId, room] of Object.entries(response.rooms.join)) {
      for (const event of room.timeline.events) this.inbox.push({ roomId, event });
    }
    await this.pump();
    return summary;
  }

  /** Makes sure every member device has the current room key. */
  async shareRoomKey(roomId) {
    const members = this.server.members(roomId);
    await this.client.updateTrackedUsers(members);
    await this.pump();
    const claim = await this.client.getMissingSessions(members);
    if (claim) await this.answer(claim);
    for (const request of await this.client.shareRoomKey(roomId, members)) await this.answer(request);
  }

  /** Encrypts and sends a room event; returns its event id. */
  async send(roomId, type, content) {
    await this.shareRoomKey(roomId);
    const encrypted = await this.client.encryptRoomEvent(roomId, type, content);
    return this.server.sendRoomEvent(this.userId, roomId, "m.room.encrypted", encrypted).event_id;
  }

  /** Decrypts what the syncs delivered (own events skipped). */
  async readInbox() {
    const events = this.inbox.splice(0, this.inbox.length);
    for (const { roomId, event } of events) {
      if (event.sender === this.userId && event.content.device_id === this.deviceId) continue;
      try {
        const clear = await this.client.decryptRoomEvent(event, roomId);
        this.read.push({ eventId: event.event_id, sessionId: event.content.session_id, ...clear });
      } catch (e) {
        this.failures.push({ eventId: event.event_id, sessionId: event.content.session_id, code: e.code, withheldCode: e.withheldCode, message: e.message });
      }
    }
  }
}

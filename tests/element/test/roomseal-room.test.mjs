// roomseal devices (examples/matrix_peer.rs, over the line protocol) and
// Element's engine in one encrypted room through the memory server:
// Olm sessions both ways, room keys both ways, every device reads every
// event of the others with zero failures; rotation after a device leaves
// (the departed device reads nothing new); a fallback key in use; a
// forwarded key reported as not authenticated; withheld notices understood
// both ways.

import { test } from "node:test";
import assert from "node:assert/strict";

import { MemoryServer } from "../lib/server.mjs";
import { ElementClient } from "../lib/element-client.mjs";
import { LineClient } from "../lib/line-client.mjs";
import { Participant } from "../lib/participant.mjs";

const ROOM = "!mixed:memory";
const ROUNDS = Number(process.env.ROUNDS ?? 120);
const PEER = process.env.ROOMSEAL_PEER;

async function syncAll(participants) {
  for (let pass = 0; pass < 2; pass++) {
    for (const p of participants) await p.sync();
  }
  for (const p of participants) await p.readInbox();
}

/** Every client started, closed when the test ends however it ends (a
 * peer process left running would keep Node waiting). */
const opened = [];

async function roomseal(server, user, device) {
  server.login(user, device);
  const p = new Participant(server, await LineClient.spawn(PEER, [], user, device));
  opened.push(p);
  return p;
}

async function element(server, user, device) {
  server.login(user, device);
  const p = new Participant(server, await ElementClient.create(user, device));
  opened.push(p);
  return p;
}

test("roomseal and Element devices in one encrypted room", { skip: !PEER && "ROOMSEAL_PEER is not set" }, async () => {
  try {
    await mixedRoom();
  } finally {
    for (const p of opened.splice(0)) await p.client.close().catch(() => {});
  }
});

async function mixedRoom() {
  const server = new MemoryServer();
  server.createRoom(ROOM);
  const alice1 = await roomseal(server, "@alice:memory", "ALICE1");
  const alice2 = await element(server, "@alice:memory", "ALICE2");
  const bob1 = await element(server, "@bob:memory", "BOB1");
  const bob2 = await roomseal(server, "@bob:memory", "BOB2");
  const everyone = [alice1, alice2, bob1, bob2];
  server.join(ROOM, "@alice:memory");
  server.join(ROOM, "@bob:memory");
  for (const p of everyone) await p.pump();
  for (const p of everyone) {
    await p.client.updateTrackedUsers(server.members(ROOM));
    await p.pump();
  }
  await syncAll(everyone);

  // Hundreds of events, every device sending in turn.
  const sent = new Map(everyone.map((p) => [p, []]));
  // Every to-device summary a participant's syncs return, kept; a refused
  // to-device event fails the test at once.
  const toDevice = new Map();
  const origSync = Participant.prototype.sync;
  const instrument = (p) => {
    toDevice.set(p, []);
    p.sync = async function () {
      const summary = await origSync.call(this);
      if (Array.isArray(summary.to_device)) toDevice.get(this).push(...summary.to_device);
      if (Array.isArray(summary.rejected)) assert.deepEqual(summary.rejected, [], `${this.name} refused a to-device event`);
      return summary;
    };
  };
  everyone.forEach(instrument);
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of everyone) {
      const body = `round ${round} from ${p.name}`;
      const eventId = await p.send(ROOM, "m.room.message", { msgtype: "m.text", body });
      sent.get(p).push({ eventId, body });
    }
    if (round % 10 === 9) await syncAll(everyone);
  }
  await syncAll(everyone);
  const total = ROUNDS * everyone.length;
  for (const p of everyone) {
    assert.deepEqual(p.failures, [], `${p.name} decrypted everything`);
    assert.equal(p.read.length, total - ROUNDS, `${p.name} read every other device's events`);
    for (const other of everyone) {
      if (other === p) continue;
      const bodies = new Set(p.read.filter((r) => r.sender === other.userId).map((r) => r.content.body));
      for (const { body } of sent.get(other)) assert.ok(bodies.has(body), `${p.name} read "${body}"`);
    }
    if (p.client.kind === "line") {
      assert.ok(p.read.every((r) => r.authenticated === true), `${p.name}: every sender authenticated`);
    }
  }
  // Olm both ways: roomseal decrypted Element's pre-key messages carrying
  // room keys, and Element read roomseal's events (so it took roomseal's).
  for (const p of [alice1, bob2]) {
    const keys = toDevice.get(p).filter((e) => e.decrypted && e.event_type === "m.room_key");
    assert.ok(keys.some((e) => e.sender_key === bob1.client.identity().curve25519), `${p.name} got BOB1's key over Olm`);
    assert.ok(keys.some((e) => e.sender_key === alice2.client.identity().curve25519), `${p.name} got ALICE2's key over Olm`);
  }
  // roomseal rotated after 100 messages, as the room's default settings say.
  const bobSessions = new Set(bob1.read.filter((r) => sent.get(alice1).some((s) => s.eventId === r.eventId)).map((r) => r.sessionId));
  assert.equal(bobSessions.size, Math.ceil(ROUNDS / 100), "roomseal rotated after 100 messages");

  // ALICE2 (Element) logs out. roomseal's next key must be new, and ALICE2
  // (which still holds the old keys) cannot read what follows.
  const before = bob1.read.filter((r) => r.sender === "@bob:memory" || r.sender === "@alice:memory").length;
  const lastRoomsealSession = alice1.read.filter((r) => sent.get(bob2).some((s) => s.eventId === r.eventId)).at(-1).sessionId;
  server.logout("@alice:memory", "ALICE2");
  const remaining = [alice1, bob1, bob2];
  await syncAll(remaining);
  await bob2.send(ROOM, "m.room.message", { msgtype: "m.text", body: "roomseal after ALICE2 left" });
  await bob1.send(ROOM, "m.room.message", { msgtype: "m.text", body: "Element after ALICE2 left" });
  await syncAll(remaining);
  const fromBob2 = alice1.read.find((r) => r.content.body === "roomseal after ALICE2 left");
  assert.ok(fromBob2, "ALICE1 read roomseal's event after the leave");
  assert.notEqual(fromBob2.sessionId, lastRoomsealSession, "roomseal rotated when a device left");
  for (const leaked of server.room(ROOM).timeline.slice(-2)) {
    await assert.rejects(alice2.client.decryptRoomEvent(leaked, ROOM), /decryption failed/, "the departed device reads nothing new");
  }
  assert.ok(bob1.read.length > before);

  // A fallback key in use: ALICE3 (roomseal) has no one-time keys left on
  // the server when Element starts a session with it.
  const alice3 = await roomseal(server, "@alice:memory", "ALICE3");
  instrument(alice3);
  await alice3.pump();
  await alice3.client.updateTrackedUsers(server.members(ROOM));
  await alice3.pump();
  const all = [alice1, bob1, bob2, alice3];
  await syncAll(all);
  const stored = server.device("@alice:memory", "ALICE3");
  stored.oneTimeKeys.clear();
  await bob1.send(ROOM, "m.room.message", { msgtype: "m.text", body: "to ALICE3 over a fallback key" });
  assert.equal(stored.fallback.used, true, "Element claimed ALICE3's fallback key");
  await syncAll(all);
  assert.ok(alice3.read.some((r) => r.content.body === "to ALICE3 over a fallback key"), "ALICE3 read it");
  assert.equal(stored.fallback.used, false, "ALICE3 published a new fallback key");

  // A forwarded key: ALICE1 forwards the key of BOB1's (Element's) first
  // session to ALICE3, which reads BOB1's first event, not authenticated.
  const first = server.room(ROOM).timeline.find((e) => e.sender === "@bob:memory" && e.content.device_id === "BOB1");
  await assert.rejects(alice3.client.decryptRoomEvent(first, ROOM));
  const claim = await alice1.client.getMissingSessions(["@alice:memory"]);
  if (claim) await alice1.answer(claim);
  const forward = await alice1.client.forwardRoomKey(ROOM, first.content.session_id, "ALICE3");
  await alice1.answer(forward);
  await alice1.pump();
  await alice3.sync();
  assert.ok(toDevice.get(alice3).some((e) => e.decrypted && e.event_type === "m.forwarded_room_key"));
  const old = await alice3.client.decryptRoomEvent(first, ROOM);
  assert.equal(old.content.body, "round 0 from @bob:memory/BOB1");
  assert.equal(old.authenticated, false, "a forwarded key is not authenticated");
  assert.equal(old.key_source, "Forwarded");

  // Withheld, roomseal to Element: BOB2 blacklists BOB1 and sends; BOB1's
  // engine records the notice and says so when it cannot decrypt.
  await bob2.client.blacklist("@bob:memory", "BOB1");
  await bob2.send(ROOM, "m.room.message", { msgtype: "m.text", body: "not for BOB1" });
  await syncAll(all);
  const bob1Failure = bob1.failures.at(-1);
  assert.ok(bob1Failure, "BOB1 could not read the event");
  assert.equal(bob1Failure.withheldCode, "m.blacklisted");
  assert.ok(bob1.client.withheld.some((w) => w.code === "m.blacklisted"), "Element recorded roomseal's notice");
  assert.ok(alice1.read.some((r) => r.content.body === "not for BOB1"));

  // Withheld, Element to roomseal: BOB1 blacklists ALICE1.
  await bob1.client.blacklist("@alice:memory", "ALICE1");
  await bob1.client.invalidateGroupSession(ROOM);
  await bob1.send(ROOM, "m.room.message", { msgtype: "m.text", body: "not for ALICE1" });
  await syncAll(all);
  const alice1Failure = alice1.failures.at(-1);
  assert.ok(alice1Failure, "ALICE1 could not read the event");
  assert.equal(alice1Failure.withheldCode, "m.blacklisted");
  assert.ok(alice1.client.withheld.some((w) => w.code === "m.blacklisted"), "roomseal recorded Element's notice");
  assert.ok(alice3.read.some((r) => r.content.body === "not for ALICE1"));

  // Nothing else failed anywhere.
  for (const p of all) {
    const unexpected = p.failures.filter((f) => f !== bob1Failure && f !== alice1Failure);
    assert.deepEqual(unexpected, [], `${p.name}: no other failure`);
  }
  console.log(`# events: ${server.room(ROOM).timeline.length}, server calls: ${JSON.stringify(server.stats)}`);
}

// Two users, three devices, all Element's engine, in one encrypted room
// through the memory server: keys are uploaded, queried and claimed, room
// keys shared, and every device reads every event the others send. Then a
// device logs out (the room key must rotate, and the departed device must
// not read what follows), and a blacklisted device gets a withheld notice.

import { test } from "node:test";
import assert from "node:assert/strict";

import { MemoryServer } from "../lib/server.mjs";
import { ElementClient } from "../lib/element-client.mjs";
import { Participant } from "../lib/participant.mjs";

const ROOM = "!interop:memory";
const ROUNDS = Number(process.env.ROUNDS ?? 120);

async function syncAll(participants) {
  // Two passes: answers to what one sync triggers (key queries, shares)
  // reach the others on the next.
  for (let pass = 0; pass < 2; pass++) {
    for (const p of participants) await p.sync();
  }
  for (const p of participants) await p.readInbox();
}

test("two Element engines, three devices, one encrypted room", async () => {
  const server = new MemoryServer();
  server.createRoom(ROOM);
  const ids = [
    ["@alice:memory", "ALICE1"],
    ["@alice:memory", "ALICE2"],
    ["@bob:memory", "BOB1"],
  ];
  const participants = [];
  for (const [user, device] of ids) {
    server.login(user, device);
    participants.push(new Participant(server, await ElementClient.create(user, device)));
  }
  const [alice1, alice2, bob] = participants;
  server.join(ROOM, "@alice:memory");
  server.join(ROOM, "@bob:memory");

  // Keys go up; each device tracks the room's members (as a client does
  // on joining an encrypted room) and learns every other device.
  for (const p of participants) await p.pump();
  for (const p of participants) {
    await p.client.updateTrackedUsers(server.members(ROOM));
    await p.pump();
  }
  await syncAll(participants);
  for (const p of participants) {
    for (const [user, device] of ids) {
      const known = await p.client.devices(user);
      assert.ok(known.some((d) => d.device_id === device && !d.deleted), `${p.name} knows ${device}`);
    }
  }

  // Hundreds of events, every device sending in turn.
  const sent = new Map(participants.map((p) => [p, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of participants) {
      const body = `round ${round} from ${p.name}`;
      const eventId = await p.send(ROOM, "m.room.message", { msgtype: "m.text", body });
      sent.get(p).push({ eventId, body });
    }
    if (round % 10 === 9) await syncAll(participants);
  }
  await syncAll(participants);
  const total = ROUNDS * participants.length;
  for (const p of participants) {
    assert.deepEqual(p.failures, [], `${p.name} decrypted everything`);
    assert.equal(p.read.length, total - ROUNDS, `${p.name} read every other device's events`);
    for (const other of participants) {
      if (other === p) continue;
      const bodies = p.read.filter((r) => r.sender === other.userId).map((r) => r.content.body);
      for (const { body } of sent.get(other)) assert.ok(bodies.includes(body), `${p.name} read "${body}"`);
    }
  }
  // Rotation after 100 messages: each device sent 120, so each used two
  // sessions (a new one after its 100th message).
  for (const sender of [alice1, alice2]) {
    const sessions = new Set(bob.read.filter((r) => r.eventId && sent.get(sender).some((s) => s.eventId === r.eventId)).map((r) => r.sessionId));
    assert.equal(sessions.size, Math.ceil(ROUNDS / 100), `${sender.name} rotated after 100 messages`);
  }

  // ALICE2 logs out. Bob's next message must use a new session that ALICE2
  // (which still holds its old keys) cannot read.
  const beforeLeave = alice1.read.filter((r) => r.sender === "@bob:memory").at(-1).sessionId;
  server.logout("@alice:memory", "ALICE2");
  const remaining = [alice1, bob];
  await syncAll(remaining);
  const known = await bob.client.devices("@alice:memory");
  assert.ok(!known.some((d) => d.device_id === "ALICE2" && !d.deleted), "Bob saw ALICE2 go");
  await bob.send(ROOM, "m.room.message", { msgtype: "m.text", body: "after ALICE2 left" });
  await syncAll(remaining);
  const afterLeave = alice1.read.at(-1);
  assert.equal(afterLeave.content.body, "after ALICE2 left");
  assert.notEqual(afterLeave.sessionId, beforeLeave, "the room key rotated when a device left");
  // The departed device, fed the event directly, cannot decrypt it.
  const leaked = server.room(ROOM).timeline.at(-1);
  await assert.rejects(alice2.client.decryptRoomEvent(leaked, ROOM), /decryption failed/);

  // Bob blacklists ALICE1 and starts a new session: ALICE1 is told the key
  // is withheld, and its decryption error says so.
  await bob.client.blacklist("@alice:memory", "ALICE1");
  await bob.client.invalidateGroupSession(ROOM);
  await bob.send(ROOM, "m.room.message", { msgtype: "m.text", body: "not for ALICE1" });
  await syncAll(remaining);
  const failure = alice1.failures.at(-1);
  assert.ok(failure, "ALICE1 could not read the event");
  assert.equal(failure.withheldCode, "m.blacklisted");
  assert.ok(alice1.client.withheld.some((w) => w.code === "m.blacklisted"), "withheld notice received");

  console.log(`# events: ${total + 2}, server calls: ${JSON.stringify(server.stats)}`);
  for (const p of participants) await p.client.close();
});

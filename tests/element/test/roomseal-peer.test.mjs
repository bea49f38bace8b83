// A roomseal device (the Rust peer, driven over the line protocol) beside
// Element's engine in one room, for what the Matrix layer does without the
// ciphers: each side must accept the other's signed device keys and
// one-time keys, Element must build an Olm session to roomseal's keys and
// send it a room key (a pre-key message addressed to roomseal's identity
// key), and roomseal must keep its keys stocked and follow device changes.
//
// Skipped unless ROOMSEAL_PEER names the peer binary
// (scripts/element-interop.sh builds it and sets it).

import { test } from "node:test";
import assert from "node:assert/strict";

import { MemoryServer } from "../lib/server.mjs";
import { ElementClient } from "../lib/element-client.mjs";
import { LineClient } from "../lib/line-client.mjs";
import { Participant } from "../lib/participant.mjs";

const ROOM = "!peer:memory";
const PEER = process.env.ROOMSEAL_PEER;

async function syncAll(participants) {
  for (let pass = 0; pass < 2; pass++) {
    for (const p of participants) await p.sync();
  }
}

test("roomseal keys interoperate with Element's engine", { skip: !PEER && "set ROOMSEAL_PEER" }, async () => {
  const server = new MemoryServer();
  server.createRoom(ROOM);
  server.login("@alice:memory", "ALICE1");
  server.login("@bob:memory", "ROOMSEAL");
  const alice = new Participant(server, await ElementClient.create("@alice:memory", "ALICE1"));
  const peer = await LineClient.spawn(PEER, [], "@bob:memory", "ROOMSEAL");
  const bob = new Participant(server, peer);
  assert.ok(peer.capabilities.has("keys"));
  server.join(ROOM, "@alice:memory");
  server.join(ROOM, "@bob:memory");

  // roomseal publishes its device keys, 50 one-time keys and a fallback key.
  await bob.pump();
  const stored = server.device("@bob:memory", "ROOMSEAL");
  assert.equal(stored.deviceKeys.keys["ed25519:ROOMSEAL"], peer.identity().ed25519);
  assert.equal(stored.oneTimeKeys.size, 50);
  assert.equal(stored.fallback.key.fallback, true);

  const everyone = [alice, bob];
  await alice.pump();
  for (const p of everyone) {
    await p.client.updateTrackedUsers(server.members(ROOM));
    await p.pump();
  }
  await syncAll(everyone);

  // Element accepted roomseal's self-signed device keys...
  const seenByElement = await alice.client.devices("@bob:memory");
  assert.deepEqual(
    seenByElement.map((d) => [d.device_id, d.ed25519, d.curve25519]),
    [["ROOMSEAL", peer.identity().ed25519, peer.identity().curve25519]],
  );
  // ...and roomseal accepted Element's.
  const seenByRoomseal = await peer.devices("@alice:memory");
  assert.deepEqual(
    seenByRoomseal.map((d) => [d.device_id, d.ed25519, d.curve25519]),
    [["ALICE1", alice.client.identity().ed25519, alice.client.identity().curve25519]],
  );

  // roomseal claims one of Element's one-time keys and checks its signature.
  const claim = await peer.getMissingSessions(["@alice:memory"]);
  assert.deepEqual(claim.body, { one_time_keys: { "@alice:memory": { ALICE1: "signed_curve25519" } } });
  const claimed = await peer.markRequestAsSent(claim.id, claim.type, server.route("@bob:memory", "ROOMSEAL", claim));
  assert.deepEqual(claimed.rejected, []);
  assert.equal(claimed.keys.length, 1);
  assert.equal(claimed.keys[0].device_id, "ALICE1");

  // Element sends in the room: it claims one of roomseal's one-time keys,
  // checks its signature, and encrypts the room key to roomseal with Olm.
  await alice.send(ROOM, "m.room.message", { msgtype: "m.text", body: "hello roomseal" });
  assert.equal(stored.oneTimeKeys.size, 49, "Element claimed one of roomseal's keys");
  const sync = await peer.receiveSyncChanges(server.sync("@bob:memory", "ROOMSEAL"));
  assert.deepEqual(sync.rejected, []);
  const olm = sync.to_device.filter((e) => e.type === "m.room.encrypted");
  assert.equal(olm.length, 1, JSON.stringify(sync.to_device));
  assert.equal(olm[0].sender, "@alice:memory");
  assert.equal(olm[0].sender_key, alice.client.identity().curve25519);
  assert.deepEqual(olm[0].for_this_device, { message_type: 0 }, "a pre-key message to roomseal's key");
  assert.equal(olm[0].decrypted, true, "roomseal decrypted it");
  assert.equal(olm[0].event_type, "m.room_key");
  assert.ok(!sync.to_device.some((e) => e.type === "m.room_key.withheld"), "no withheld notice");
  // The count fell to 49: roomseal tops its keys up to 50 again.
  await bob.pump();
  assert.equal(stored.oneTimeKeys.size, 50);

  // Alice adds a device: roomseal hears of it and learns it.
  server.login("@alice:memory", "ALICE2");
  const alice2 = new Participant(server, await ElementClient.create("@alice:memory", "ALICE2"));
  await alice2.pump();
  await bob.sync();
  const now = await peer.devices("@alice:memory");
  assert.deepEqual(now.map((d) => d.device_id).sort(), ["ALICE1", "ALICE2"]);
  // And hears when it goes.
  server.logout("@alice:memory", "ALICE2");
  await bob.sync();
  assert.deepEqual((await peer.devices("@alice:memory")).map((d) => d.device_id), ["ALICE1"]);

  // Control: Element does check signatures. A fresh engine, sent
  // roomseal's keys with one key swapped by the server, drops the device,
  // so the acceptance above means roomseal's signatures verified.
  server.login("@alice:memory", "ALICE3");
  const control = await ElementClient.create("@alice:memory", "ALICE3");
  await control.updateTrackedUsers(["@bob:memory"]);
  const forged = structuredClone(stored.deviceKeys);
  forged.keys["curve25519:ROOMSEAL"] = alice.client.identity().curve25519;
  for (const request of await control.outgoingRequests()) {
    const response = request.type === "keys_query"
      ? { device_keys: { "@bob:memory": { ROOMSEAL: forged } }, failures: {} }
      : server.route("@alice:memory", "ALICE3", request);
    await control.markRequestAsSent(request.id, request.type, response);
  }
  assert.deepEqual(await control.devices("@bob:memory"), [], "Element refused the forged keys");
  await control.close();

  // Encrypting before the room key was shared is refused, not improvised.
  await assert.rejects(peer.encryptRoomEvent(ROOM, "m.room.message", {}), (e) => e.kind === "error" && /share the room key first/.test(e.message));

  await peer.close();
  await alice.client.close();
  await alice2.client.close();
});

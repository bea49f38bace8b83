// roomseal and Element's engine in one encrypted room on a real Synapse (run by
// scripts/e2e-synapse.sh: `scripts/e2e-synapse.sh node tests/synapse/mixed_scenario.mjs`).
//
// alice (ALICE1) and bob (BOB1) are roomseal devices (examples/synapse_client.rs, one process
// each, doing their own HTTP); carol (CAROL1) runs Element's engine (element_client.mjs). They
// share one room encrypted with m.megolm.v1.aes-sha2 (history visibility "joined"): keys go
// through /keys/upload, /keys/query and /keys/claim, room keys as Olm to-device messages, events
// as m.room.encrypted, and every device reads every event sent after it joined, both ways, with
// no failure (roomseal reports each one authenticated). BOB1 logs out: the room key rotates on
// both implementations and BOB1 is no recipient of a new key. BOB2, a new roomseal device of bob,
// logs in: it reads everything sent after it joined and none of the history the server shows it
// (a typed error each). Then the server misbehaves through its admin API: a to-device message
// delivered twice (Element to roomseal and roomseal to roomseal), a device bob never made, a room
// event delivered twice, an event sent under another sender, and a device's keys swapped; the
// roomseal devices refuse each with a typed error and everyone keeps working. Every plaintext
// and every room key goes to the leak check (roomseal's room keys through carol's export: carol
// receives every roomseal session, which the scenario checks).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ElementClient, Homeserver, newTxnId, sdk } from "./element_client.mjs";
import { RoomsealClient, roomsealBinary } from "./roomseal_client.mjs";
import { scenarioEnv, SecretLog } from "./scenario_env.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const env = scenarioEnv();
const hs = new Homeserver(env.homeserver);
const secrets = new SecretLog(env.secretsDir, "mixed-scenario");
const enc = encodeURIComponent;
const ALICE = env.users.alice.user_id;
const BOB = env.users.bob.user_id;
const CAROL = env.users.carol.user_id;

const t0 = Date.now();
function step(text) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${text}`);
}
function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- The roomseal client binary -------------------------------------------------------------------

let binary = process.env.E2E_ROOMSEAL_BIN;
if (!binary) {
  const t = Date.now();
  const built = spawnSync("cargo", ["build", "--quiet", "--example", "synapse_client"], { cwd: root, stdio: "inherit" });
  check(built.status === 0, "cargo build --example synapse_client");
  binary = roomsealBinary(root);
  step(`built examples/synapse_client.rs (${((Date.now() - t) / 1000).toFixed(1)}s)`);
}

// --- Bookkeeping ----------------------------------------------------------------------------------

/** Every encrypted event the honest devices sent, in order. */
const ledger = [];
/** Devices that must read the ledger: from (exclusive) and until (exclusive) ledger positions. */
const readers = new Map();
const stats = { sent: 0, decrypted: 0, refused: {} };
const clients = [];

function refused(code) {
  stats.refused[code] = (stats.refused[code] ?? 0) + 1;
}

const isRoomseal = (c) => c instanceof RoomsealClient;

/** The devices an Element share addressed with a room key (Olm-encrypted to-device). */
function recipients(shares) {
  const out = [];
  for (const s of shares.filter((x) => x.eventType === "m.room.encrypted")) {
    for (const [user, devices] of Object.entries(s.body.messages ?? {})) {
      for (const d of Object.keys(devices)) out.push([user, d]);
    }
  }
  return out;
}

/** Sends one text event from `client`; records it in the ledger and for the leak check. */
async function say(client, roomId, label) {
  const body = `${client.name} ${label}: ${randomBytes(12).toString("hex")}`;
  secrets.text(`plaintext sent by ${client.name}`, body);
  let entry;
  if (isRoomseal(client)) {
    const sent = await client.send(roomId, body);
    entry = { eventId: sent.event_id, sessionId: sent.session_id, rotated: sent.rotated, rotationReason: sent.rotation_reason, served: sent.served };
  } else {
    const sent = await client.sendEncrypted(roomId, { msgtype: "m.text", body });
    entry = { eventId: sent.eventId, sessionId: sent.content.session_id, served: recipients(sent.shares), content: sent.content };
  }
  ledger.push({ ...entry, body, sender: client.name, senderUser: client.userId });
  stats.sent += 1;
  return ledger.at(-1);
}

async function round(roomId, senders, n, label) {
  for (let i = 0; i < n; i++) for (const c of senders) await say(c, roomId, `${label} ${i}`);
}

async function syncAll(list) {
  for (const c of list) await c.sync();
}

/** Syncs `list` until `done()` holds (200 rounds at most, 100 ms apart). */
async function syncUntil(list, done, what) {
  for (let i = 0; i < 200; i++) {
    await syncAll(list);
    if (await done()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting until ${what}`);
}

function joined(client) {
  readers.set(client, { from: ledger.length, until: Infinity });
}

/** What a roomseal device made of each event it got: event id -> {ok, clear | error}. */
async function roomsealReads(client, roomId) {
  return new Map((await client.events(roomId)).map((e) => [e.event_id, e]));
}

/** Decrypts one event on any device, syncing while the key may still be on its way. */
async function readOne(client, roomId, eventId) {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (isRoomseal(client)) {
      const r = (await roomsealReads(client, roomId)).get(eventId);
      if (r && (r.ok || !["unknown_room_key", "unread"].includes(r.error.kind) || attempt >= 20)) {
        return r.ok
          ? { ok: true, body: r.clear.content.body, sender: r.clear.sender, authenticated: r.clear.authenticated }
          : { ok: false, code: r.error.kind, withheld: r.error.withheld_code };
      }
    } else {
      const event = client.event(roomId, eventId);
      if (event) {
        const r = await client.decrypt(roomId, event);
        if (r.ok) return { ok: true, body: r.content.body, sender: r.sender, authenticated: true };
        if (r.code !== "MissingRoomKey" || attempt >= 20) return { ok: false, code: r.code };
      }
    }
    await client.sync({ timeoutMs: 100 });
  }
  throw new Error(`${client.name} never got event ${eventId}`);
}

/** Every ledger event `client` must read, read, with the right body and sender. */
async function checkReads(roomId, client) {
  const { from, until } = readers.get(client);
  const expected = ledger.slice(from, until);
  for (const e of expected) {
    const r = await readOne(client, roomId, e.eventId);
    check(r.ok, `${client.name} could not decrypt ${e.eventId} from ${e.sender}: ${r.code}`);
    check(r.body === e.body, `${client.name} read a different body for ${e.eventId}`);
    check(r.sender === e.senderUser, `${client.name} read ${e.eventId} as from ${r.sender}, not ${e.senderUser}`);
    check(r.authenticated, `${client.name} must see ${e.eventId} (from ${e.sender}) as authenticated`);
    stats.decrypted += 1;
  }
  return expected.length;
}

async function checkAll(roomId, list) {
  let n = 0;
  for (const c of list) n += await checkReads(roomId, c);
  return n;
}

/** The device ids of `user` a client knows (roomseal: its tracker; Element: not deleted). */
async function devicesSeen(client, user) {
  if (isRoomseal(client)) return client.devices(user);
  await client.queryKeys([user]);
  const all = await client.devicesOf(user);
  return Object.entries(all).filter(([, d]) => !d.deleted).map(([id]) => id);
}

async function loginRoomseal(name, deviceId) {
  const c = await RoomsealClient.login(binary, {
    homeserver: env.homeserver, user: name, password: env.users[name].password, deviceId,
  });
  clients.push(c);
  step(`${c.name} (roomseal) logged in and published its device keys`);
  return c;
}

// --- 1. Devices and the room -----------------------------------------------------------------------

step(`homeserver ${env.homeserver}`);
const alice1 = await loginRoomseal("alice", "ALICE1");
const bob1 = await loginRoomseal("bob", "BOB1");
// Element's engine shares with every device (roomseal devices have no cross-signing identity)
// and reads events from devices that are not cross-signed.
const carol = await ElementClient.login(hs, {
  user: "carol", password: env.users.carol.password, deviceId: "CAROL1",
  settings: { shareWith: "all", trust: sdk.TrustRequirement.Untrusted },
});
clients.push(carol);
step(`${carol.name} (Element's engine) logged in and published its device keys`);

const room = await alice1.createEncryptedRoom({ invite: [BOB, CAROL], name: "mixed e2e" });
await syncUntil([bob1, carol], async () => (await bob1.sync()).invites.includes(room) && carol.invites.has(room), "bob and carol are invited");
await bob1.join(room);
await carol.join(room);
await syncUntil([alice1, bob1, carol], async () => (await carol.joinedMembers(room)).length === 3, "bob and carol have joined");
const encryption = carol.timeline(room).find((e) => e.type === "m.room.encryption");
check(encryption?.content?.algorithm === "m.megolm.v1.aes-sha2", "the room's m.room.encryption names m.megolm.v1.aes-sha2");
for (const c of [alice1, bob1, carol]) joined(c);
step(`room ${room}: created by roomseal (m.megolm.v1.aes-sha2, history "joined"); bob (roomseal) and carol (Element) joined`);

// --- 2. Chat, every direction ----------------------------------------------------------------------

await round(room, [alice1, bob1, carol], 3, "round 1");
let n = await checkAll(room, [alice1, bob1, carol]);
step(`round 1: ${ledger.length} events (roomseal->roomseal, roomseal->Element, Element->roomseal); ${n} reads, all decrypted and authenticated`);

// --- 3. A device logs out; the room key rotates ------------------------------------------------------

const sessionsBefore = new Set(ledger.map((e) => e.sessionId));
await bob1.logout();
readers.get(bob1).until = ledger.length;
// The client forgets its token on logout; the server refuses the request without one.
const afterLogoutSync = await bob1.sync().then(() => "ok", (e) => `${e.kind}: ${e.message}`);
check(/^http: .*HTTP 401/.test(afterLogoutSync), `BOB1 must not sync after /logout (got ${afterLogoutSync})`);
await syncUntil([alice1, carol], async () => {
  for (const c of [alice1, carol]) if ((await devicesSeen(c, BOB)).includes("BOB1")) return false;
  return true;
}, "alice1 and carol see BOB1 gone");
const afterLogout = ledger.length;
await round(room, [alice1, carol], 3, "round 2");
const round2 = ledger.slice(afterLogout);
check(round2.every((e) => !sessionsBefore.has(e.sessionId)), "every event after the logout uses a new room key");
check(new Set(round2.map((e) => e.sessionId)).size === 2, "one new room key each for alice and carol");
const aliceRotation = round2.find((e) => e.sender === alice1.name);
check(aliceRotation.rotated === true && aliceRotation.rotationReason === "DeviceLeft", `roomseal reports the rotation as DeviceLeft (got ${aliceRotation.rotationReason})`);
const round2Served = round2.flatMap((e) => e.served).map(([u, d]) => `${u}/${d}`);
check(!round2Served.includes(`${BOB}/BOB1`), "no new room key went to the logged-out BOB1");
check(round2Served.includes(`${CAROL}/CAROL1`) && round2Served.includes(`${ALICE}/ALICE1`), "the new room keys went to ALICE1 and CAROL1");
n = await checkAll(room, [alice1, carol]);
step(`logout: BOB1 logged out (and can no longer sync); roomseal (DeviceLeft) and Element both rotated; the ${round2.length} later events went to ALICE1 and CAROL1 only (${n} reads)`);

// --- 4. A new roomseal device of bob ------------------------------------------------------------------

const bob2 = await loginRoomseal("bob", "BOB2");
await syncUntil([alice1, carol], async () => {
  for (const c of [alice1, carol]) if (!(await devicesSeen(c, BOB)).includes("BOB2")) return false;
  return true;
}, "alice1 and carol see BOB2");
await bob2.sync();
joined(bob2);
const beforeBob2 = ledger.length;
await round(room, [alice1, carol, bob2], 2, "round 3");
n = await checkAll(room, [alice1, carol, bob2]);
const bob2Reads = await roomsealReads(bob2, room);
let history = 0;
for (const e of ledger.slice(0, beforeBob2)) {
  const r = bob2Reads.get(e.eventId);
  if (!r) continue;
  history += 1;
  check(!r.ok && ["unknown_room_key", "unknown_message_index"].includes(r.error.kind), `BOB2 must not read ${e.eventId}, sent before it joined (got ${r.ok ? "plaintext" : r.error.kind})`);
  refused(`history: ${r.error.kind}`);
}
check(history > 0, "the server showed BOB2 some of the room's history (bob was a member)");
step(`new device: BOB2 (roomseal) reads all ${ledger.length - beforeBob2} events since it joined (${n} reads in all); of the ${history} earlier events the server showed it, none (typed errors: unknown_room_key, or unknown_message_index for the current key's earlier messages)`);

// --- 5. The server misbehaves -----------------------------------------------------------------------

const admin = await hs.login(env.adminName, env.admin.password, "ADMIN");
const adminApi = (method, path, body) => hs.call(method, path, { token: admin.access_token, body });
const puppet = async (user) => (await adminApi("POST", `/_synapse/admin/v1/users/${enc(user)}/login`, {})).json.access_token;
const honest = [alice1, carol, bob2];

// 5a. A to-device message delivered twice, Element to roomseal: the latest Olm message carol sent
// ALICE1, re-sent as carol with a new transaction id.
async function replayToDevice(target, content, asUser, label) {
  const before = (await target.toDeviceRefused()).length;
  const token = await puppet(asUser);
  const body = { messages: { [target.userId]: { [target.deviceId]: content } } };
  await hs.call("PUT", `/sendToDevice/m.room.encrypted/${enc(newTxnId())}`, { token, body });
  let fresh = [];
  await syncUntil([target], async () => {
    fresh = (await target.toDeviceRefused()).slice(before);
    return fresh.length > 0;
  }, `${target.name} gets the duplicate`);
  check(fresh.length === 1 && fresh[0].sender === asUser, `${target.name} refused exactly the duplicate (got ${JSON.stringify(fresh.map((f) => f.kind))})`);
  refused(`to-device twice: ${fresh[0].kind}`);
  step(`misbehaviour: ${label}: ${target.name} refuses the copy (${fresh[0].kind}: ${fresh[0].error})`);
}
const carolToAlice = carol.toDeviceSent.filter((m) => m.eventType === "m.room.encrypted" && m.body.messages?.[ALICE]?.ALICE1).at(-1);
check(carolToAlice, "carol sent ALICE1 an encrypted to-device message");
await replayToDevice(alice1, carolToAlice.body.messages[ALICE].ALICE1, CAROL, "a to-device message from Element delivered twice");

// 5b. The same, roomseal to roomseal: the latest Olm message ALICE1 sent BOB2.
const aliceToBob2 = await alice1.toDeviceSent(BOB, "BOB2");
check(aliceToBob2, "ALICE1 sent BOB2 an encrypted to-device message");
await replayToDevice(bob2, aliceToBob2, ALICE, "a to-device message from roomseal delivered twice");

// 5c. A device bob never made, without keys (POST /_synapse/admin/v2/users/<u>/devices).
await adminApi("POST", `/_synapse/admin/v2/users/${enc(BOB)}/devices`, { device_id: "SERVERMADE" });
const listed = (await adminApi("GET", `/_synapse/admin/v2/users/${enc(BOB)}/devices`)).json.devices.map((d) => d.device_id);
check(listed.includes("SERVERMADE"), "the admin API added SERVERMADE to bob's devices");
await syncAll(honest);
const afterServerMade = await say(alice1, room, "after SERVERMADE");
check(!(await alice1.devices(BOB)).includes("SERVERMADE"), "ALICE1 does not count SERVERMADE (no device keys) as bob's device");
check(!afterServerMade.served.some(([, d]) => d === "SERVERMADE"), "no room key went to SERVERMADE");
step("misbehaviour: the server added a keyless device to bob's list: roomseal does not list it and shares no key with it");

// 5d. A room event delivered twice: carol's latest ciphertext re-sent as carol under a new event id.
const original = ledger.filter((e) => e.sender === carol.name).at(-1);
const carolToken = await puppet(CAROL);
const replayId = (await hs.call("PUT", `/rooms/${enc(room)}/send/m.room.encrypted/${enc(newTxnId())}`, { token: carolToken, body: original.content })).json.event_id;
for (const c of [alice1, bob2]) {
  const r = await readOne(c, room, replayId);
  check(!r.ok && r.code === "replay", `${c.name} must refuse the replayed event (got ${r.ok ? "plaintext" : r.code})`);
  refused(`room event twice: ${r.code}`);
}
step("misbehaviour: a room event delivered twice (same ciphertext, new event id): both roomseal devices refuse it (replay)");

// 5e. An event attributed to the wrong sender: a ciphertext carol made (and never sent) is sent
// by the server as bob. (A ciphertext the readers have already seen would be refused earlier,
// as a replay.)
await carol.shareRoomKey(room);
const misBody = `carol's ciphertext sent as bob: ${randomBytes(12).toString("hex")}`;
secrets.text("plaintext of the misattributed event", misBody);
const misContent = JSON.parse(await carol.machine.encryptRoomEvent(new sdk.RoomId(room), "m.room.message", JSON.stringify({ msgtype: "m.text", body: misBody })));
const bobToken = await puppet(BOB);
const misId = (await hs.call("PUT", `/rooms/${enc(room)}/send/m.room.encrypted/${enc(newTxnId())}`, { token: bobToken, body: misContent })).json.event_id;
for (const c of [alice1, bob2]) {
  const r = await readOne(c, room, misId);
  check(!r.ok && r.code === "sender_mismatch", `${c.name} must refuse carol's ciphertext sent as bob (got ${r.ok ? "plaintext" : r.code})`);
  refused(`wrong sender: ${r.code}`);
}
await syncUntil([carol], () => carol.event(room, misId), "carol gets the re-sent event");
const carolMis = await carol.decrypt(room, carol.event(room, misId));
// Element's verdict is reported, not required: carol runs with TrustRequirement.Untrusted (the
// roomseal devices have no cross-signing), and element_scenario.mjs checks Element's refusal
// (MismatchedSender) under its default trust requirement.
const elementVerdict = carolMis.ok ? "accepts it" : `refuses it (${carolMis.code})`;
step(`misbehaviour: a ciphertext of carol's sent by the server as bob: both roomseal devices refuse it (sender_mismatch); carol's Element engine, trusting anyone, ${elementVerdict}`);

// 5f. The server swaps the keys of an existing device: it resets bob's password (admin API), logs
// in as bob on BOB2 and uploads other device keys for BOB2 (Synapse overwrites them and tells
// everyone bob's devices changed).
const bob2Ed25519 = bob2.identityKeys.ed25519;
const stolen = randomBytes(18).toString("base64url");
await adminApi("PUT", `/_synapse/admin/v2/users/${enc(BOB)}`, { password: stolen, logout_devices: false });
const swap = await hs.login("bob", stolen, "BOB2");
const impostor = await sdk.OlmMachine.initialize(new sdk.UserId(BOB), new sdk.DeviceId("BOB2"));
const upload = (await impostor.outgoingRequests()).find((r) => r.type === sdk.RequestType.KeysUpload);
await hs.call("POST", "/keys/upload", { token: swap.access_token, body: { device_keys: JSON.parse(upload.body).device_keys } });
impostor.close();
const servedBob2 = (await hs.call("POST", "/keys/query", { token: swap.access_token, body: { device_keys: { [BOB]: ["BOB2"] } } })).json.device_keys[BOB].BOB2;
check(servedBob2.keys["ed25519:BOB2"] !== bob2Ed25519, "Synapse now serves other keys for BOB2");
const keysRefusedBefore = (await alice1.call("keys_refused")).refused.length;
let swapRefusal;
await syncUntil([alice1], async () => {
  swapRefusal = (await alice1.call("keys_refused")).refused.slice(keysRefusedBefore).find((r) => r.device_id === "BOB2");
  return swapRefusal;
}, "ALICE1 queries bob's changed devices");
check(swapRefusal.kind === "keys_changed", `ALICE1 refuses BOB2's new keys as keys_changed (got ${swapRefusal.kind})`);
refused(`keys swapped: ${swapRefusal.kind}`);
const aliceSeesBob2 = (await alice1.call("devices", { user_id: BOB })).devices.find((d) => d.device_id === "BOB2");
check(aliceSeesBob2?.ed25519 === bob2Ed25519, "ALICE1 keeps BOB2's original keys");
await carol.queryKeys([BOB]);
const carolBob2 = await carol.machine.getDevice(new sdk.UserId(BOB), new sdk.DeviceId("BOB2"));
const carolVerdict = carolBob2?.ed25519Key?.toBase64() === bob2Ed25519 ? "keeps the original keys" : "takes the new keys";
step(`misbehaviour: the server swapped BOB2's device keys (password reset, login on BOB2, /keys/upload): ALICE1 refuses them (keys_changed) and keeps the original ones; Element ${carolVerdict}`);

// --- 6. Everyone keeps working ----------------------------------------------------------------------

await round(room, honest, 2, "round 4");
n = await checkAll(room, honest);
step(`after the misbehaviour: ${honest.length} devices decrypt all ${n} events they must (from their join on)`);

// --- 7. What the leak check must not find ------------------------------------------------------------

const keys = secrets.roomKeys(carol.name, await carol.exportRoomKeys());
const roomsealSessions = new Set(ledger.filter((e) => !e.sender.startsWith(CAROL)).map((e) => e.sessionId));
const exported = new Set((await carol.exportRoomKeys()).map((k) => k.session_id));
check([...roomsealSessions].every((s) => exported.has(s)), "carol's export holds every roomseal session (so the leak check searches for each)");
step(`recorded ${stats.sent} plaintexts and ${keys} room keys (carol's export: ${roomsealSessions.size} roomseal sessions among them) for the leak check`);
console.log(`mixed scenario: ${stats.sent} events sent, ${stats.decrypted} decryptions checked, 0 failures; refused as expected: ${JSON.stringify(stats.refused)}`);
for (const c of clients) await c.close();

// Records what Element's engine publishes, for roomseal's Rust tests that
// run without Node (tests/matrix_element_fixture.rs): the first /keys/upload
// body of a fresh OlmMachine (device keys, one-time keys, fallback key, all
// signed by vodozemac over canonical JSON).
//
//   node tools/record-fixture.mjs > fixtures/element-keys-upload.json

import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm";

await sdk.initAsync();
const machine = await sdk.OlmMachine.initialize(new sdk.UserId("@element:memory"), new sdk.DeviceId("ELEMENT"));
const upload = (await machine.outgoingRequests()).find((r) => r.type === sdk.RequestType.KeysUpload);
const body = JSON.parse(upload.body);
// Five one-time keys are plenty for the tests.
body.one_time_keys = Object.fromEntries(Object.entries(body.one_time_keys).slice(0, 5));
await machine.markRequestAsSent(upload.id, upload.type, JSON.stringify({ one_time_key_counts: { signed_curve25519: 50 } }));
// A sync saying the server holds no unused fallback key makes the engine
// upload one.
await machine.receiveSyncChanges("[]", new sdk.DeviceLists(), new Map([["signed_curve25519", 50]]), new Set());
const second = (await machine.outgoingRequests()).find((r) => r.type === sdk.RequestType.KeysUpload);
body.fallback_keys = JSON.parse(second.body).fallback_keys;
console.log(JSON.stringify({ recorded_with: "@matrix-org/matrix-sdk-crypto-wasm 18.9.0", keys_upload: body }, null, 2));
machine.close();

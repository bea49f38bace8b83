"""The roomseal bindings, driven from Python (standard library only).

Run by scripts/bindings.sh, which builds the library, generates
bindings/python/roomseal.py and puts it on PYTHONPATH.
"""

import json
import os
import tempfile
import threading
import unittest
import urllib.parse

import roomseal as rs

ROOM = "!room:example.org"


class Relay:
    """A stand-in server: stores published keys and pending device messages
    (with the user it authenticated as their sender)."""

    def __init__(self):
        self.bundles = {}
        self.one_time_keys = {}
        self.inbox = {}

    def publish(self, endpoint):
        upload = endpoint.keys_to_publish(5)
        key = endpoint.identity().curve25519
        self.bundles[key] = upload.device_keys_json
        self.one_time_keys.setdefault(key, []).extend(upload.one_time_keys_json)
        endpoint.mark_keys_as_published(upload)
        # Exactly what was uploaded is published: nothing is listed again.
        again = endpoint.keys_to_publish(0)
        assert again.one_time_keys_json == [] and again.fallback_key_json is None
        return rs.SelfSignedDevice.from_json(upload.device_keys_json)

    def claim(self, device):
        key = device.identity().curve25519
        return self.bundles[key], self.one_time_keys[key].pop()

    def send(self, sender, outcome, confirm=True):
        for m in outcome.messages:
            assert m.sender_key == sender.identity().curve25519
            self.inbox.setdefault(m.recipient_key, []).append((sender.user_id(), m.sender_key, m.message))
        if confirm:
            assert sender.mark_room_key_sent(outcome) == len(outcome.messages)

    def deliver(self, endpoint):
        received = []
        for user, sender_key, message in self.inbox.pop(endpoint.identity().curve25519, []):
            received.append(endpoint.receive_device_message(user, sender_key, message))
        return received


def share(relay, sender, devices, confirm=True):
    """Shares `sender`'s room key with `devices`, starting sessions as needed,
    sends the messages and (unless told not to) confirms them as sent."""
    outcome = sender.share_room_key(ROOM, devices)
    if outcome.missing_sessions:
        for device in outcome.missing_sessions:
            sender.establish_session(*relay.claim(device))
        outcome = sender.share_room_key(ROOM, devices)
    relay.send(sender, outcome, confirm)
    return outcome


def make(relay, user, device_id):
    endpoint = rs.Endpoint(user, device_id)
    return endpoint, relay.publish(endpoint)


class TwoAndThreeDevices(unittest.TestCase):
    def setUp(self):
        self.relay = Relay()
        self.alice, self.alice_dev = make(self.relay, "@alice:x", "A")
        self.bob, self.bob_dev = make(self.relay, "@bob:x", "B")

    def test_share_and_events_both_ways(self):
        outcome = share(self.relay, self.alice, [self.bob_dev])
        self.assertFalse(outcome.rotated)
        self.assertIsNone(outcome.rotation_reason)
        self.assertEqual(len(outcome.messages), 1)
        [received] = self.relay.deliver(self.bob)
        self.assertEqual(received.room_id, ROOM)
        self.assertEqual(received.sender, self.alice.identity())
        self.assertEqual((received.sender_user_id, received.sender_device_id), ("@alice:x", "A"))
        self.assertEqual(received.first_index, 0)
        self.assertEqual(received.status, rs.KeyStatus.NEW)
        self.assertEqual(received.evicted_session_ids, [])
        # Confirmed as sent: the next share serves nobody again.
        self.assertEqual(self.alice.share_room_key(ROOM, [self.bob_dev]).messages, [])

        envelope = self.alice.encrypt_event(ROOM, "m.room.message", json.dumps({"body": "hi bob"}))
        self.assertNotIn("hi bob", envelope)
        event = self.bob.decrypt_event(ROOM, "$1", envelope)
        self.assertEqual(event.event_type, "m.room.message")
        self.assertEqual(json.loads(event.content_json), {"body": "hi bob"})
        self.assertTrue(event.authenticated)
        self.assertEqual(event.sender, self.alice.identity())
        self.assertEqual((event.sender_user_id, event.sender_device_id), ("@alice:x", "A"))

        share(self.relay, self.bob, [self.alice_dev])
        self.relay.deliver(self.alice)
        reply = self.bob.encrypt_event(ROOM, "m.room.message", json.dumps({"body": "hi alice"}))
        self.assertEqual(json.loads(self.alice.decrypt_event(ROOM, "$2", reply).content_json)["body"], "hi alice")

    def test_three_devices_and_a_departure(self):
        carol, carol_dev = make(self.relay, "@carol:x", "C")
        first = share(self.relay, self.alice, [self.bob_dev, carol_dev])
        self.assertEqual(len(first.messages), 2)
        self.relay.deliver(self.bob)
        self.relay.deliver(carol)
        envelope = self.alice.encrypt_event(ROOM, "m.room.message", json.dumps({"body": "all three"}))
        for reader in (self.bob, carol):
            self.assertEqual(json.loads(reader.decrypt_event(ROOM, "$1", envelope).content_json)["body"], "all three")

        # Carol leaves: the key rotates and she cannot read what follows.
        second = share(self.relay, self.alice, [self.bob_dev])
        self.assertTrue(second.rotated)
        self.assertEqual(second.rotation_reason, "a device that held the room key left")
        self.assertNotEqual(second.session_id, first.session_id)
        self.relay.deliver(self.bob)
        self.assertEqual(self.relay.deliver(carol), [])
        after = self.alice.encrypt_event(ROOM, "m.room.message", json.dumps({"body": "carol left"}))
        self.assertEqual(json.loads(self.bob.decrypt_event(ROOM, "$2", after).content_json)["body"], "carol left")
        with self.assertRaises(rs.RoomsealError.UnknownRoomKey):
            carol.decrypt_event(ROOM, "$2", after)
        # Carol drops the room's keys: even the old event becomes unreadable.
        self.assertEqual(carol.forget_room_keys(ROOM), 1)
        with self.assertRaises(rs.RoomsealError.UnknownRoomKey):
            carol.decrypt_event(ROOM, "$1", envelope)
        # And drops its pairwise session with Alice.
        alice_key = self.alice.identity().curve25519
        self.assertEqual(carol.forget_peer(alice_key), 1)
        self.assertEqual(carol.forget_peer(alice_key), 0)
        with self.assertRaises(rs.RoomsealError.InvalidInput):
            carol.forget_peer("not a key")

    def test_pickle_and_restore_mid_conversation(self):
        share(self.relay, self.alice, [self.bob_dev])
        self.relay.deliver(self.bob)
        first = self.alice.encrypt_event(ROOM, "m", json.dumps({"n": 1}))
        self.bob.decrypt_event(ROOM, "$1", first)
        key = bytes(range(32))
        alice = rs.Endpoint.from_pickle(self.alice.pickle(key), key)
        bob = rs.Endpoint.from_pickle(self.bob.pickle(key), key)
        self.assertEqual(alice.identity(), self.alice.identity())
        second = alice.encrypt_event(ROOM, "m", json.dumps({"n": 2}))
        self.assertEqual(json.loads(bob.decrypt_event(ROOM, "$2", second).content_json), {"n": 2})
        # The replay record survived the restore.
        with self.assertRaises(rs.RoomsealError.Replay):
            bob.decrypt_event(ROOM, "$other", first)
        with self.assertRaises(rs.RoomsealError.Pickle):
            rs.Endpoint.from_pickle(self.bob.pickle(key), bytes(32))

    def test_hostile_input_raises_typed_exceptions(self):
        share(self.relay, self.alice, [self.bob_dev])
        self.relay.deliver(self.bob)
        envelope = self.alice.encrypt_event(ROOM, "m", json.dumps({"x": 1}))
        alice_key = self.alice.identity().curve25519

        cases = [
            (rs.RoomsealError.InvalidInput, lambda: self.bob.receive_device_message("@alice:x", alice_key, "%%%")),
            (rs.RoomsealError.InvalidInput, lambda: self.bob.receive_device_message("@alice:x", "short", "AQE")),
            (rs.RoomsealError.InvalidInput, lambda: self.bob.receive_device_message("", alice_key, "AQE")),
            (rs.RoomsealError.InvalidInput, lambda: self.bob.decrypt_event(ROOM, "$1", "{not json")),
            (rs.RoomsealError.InvalidInput, lambda: self.bob.decrypt_event(ROOM, "", envelope)),
            (rs.RoomsealError.InvalidInput, lambda: self.alice.encrypt_event(ROOM, "m", "[unclosed")),
            (rs.RoomsealError.InvalidInput, lambda: rs.SelfSignedDevice.from_json("{}")),
            (rs.RoomsealError.InvalidInput, lambda: self.bob.pickle(b"short")),
            (rs.RoomsealError.Pickle, lambda: rs.Endpoint.from_pickle("AAAA", bytes(32))),
            (rs.RoomsealError.UnknownRoomKey, lambda: self.alice.decrypt_event("!other:x", "$1", envelope)),
            (rs.RoomsealError.ShareRequired, lambda: self.alice.encrypt_event("!other:x", "m", "{}")),
            (rs.RoomsealError.InvalidInput, lambda: rs.Endpoint("", "D")),
        ]
        for error, call in cases:
            with self.assertRaises(error) as caught:
                call()
            self.assertIsInstance(caught.exception, rs.RoomsealError)
            self.assertTrue(str(caught.exception))

        # A tampered envelope fails authentication; the genuine one still works.
        parsed = json.loads(envelope)
        ciphertext = parsed["ciphertext"]
        parsed["ciphertext"] = ciphertext[:20] + ("A" if ciphertext[20] != "A" else "B") + ciphertext[21:]
        with self.assertRaises((rs.RoomsealError.Authentication, rs.RoomsealError.InvalidInput)):
            self.bob.decrypt_event(ROOM, "$1", json.dumps(parsed))
        self.bob.decrypt_event(ROOM, "$1", envelope)
        with self.assertRaises(rs.RoomsealError.Replay):
            self.bob.decrypt_event(ROOM, "$2", envelope)
        # A forged device bundle does not verify.
        bundle = json.loads(self.relay.bundles[self.bob.identity().curve25519])
        bundle["device_id"] = "EVIL"
        with self.assertRaises(rs.RoomsealError.Authentication):
            rs.SelfSignedDevice.from_json(json.dumps(bundle))
        # Wrong argument types are rejected by the binding itself.
        with self.assertRaises(TypeError):
            self.bob.pickle("not bytes")

    def test_unconfirmed_shares_are_served_again_and_resharing(self):
        first = share(self.relay, self.alice, [self.bob_dev], confirm=False)
        self.assertEqual(len(first.messages), 1)
        # Never confirmed (say, the app crashed before sending): the next
        # share serves Bob again, with the same key.
        again = self.alice.share_room_key(ROOM, [self.bob_dev])
        self.assertEqual(again.session_id, first.session_id)
        self.assertEqual(len(again.messages), 1)
        self.relay.send(self.alice, again)
        received = self.relay.deliver(self.bob)
        self.assertEqual([r.status for r in received], [rs.KeyStatus.NEW, rs.KeyStatus.UNCHANGED])
        self.assertEqual(self.alice.share_room_key(ROOM, [self.bob_dev]).messages, [])
        # Bob reports the key missing: a reshare for him alone; none for a
        # device never offered the key.
        message = self.alice.reshare_room_key(ROOM, self.bob_dev)
        self.assertIsNotNone(message)
        self.assertEqual(message.recipient_key, self.bob.identity().curve25519)
        carol, carol_dev = make(self.relay, "@carol:x", "C")
        self.assertIsNone(self.alice.reshare_room_key(ROOM, carol_dev))

    def test_spoofed_sender_user_is_refused(self):
        outcome = self.alice.share_room_key(ROOM, [self.bob_dev])
        for device in outcome.missing_sessions:
            self.alice.establish_session(*self.relay.claim(device))
        outcome = self.alice.share_room_key(ROOM, [self.bob_dev])
        [m] = outcome.messages
        # The server says another user sent it: refused, nothing changed.
        with self.assertRaises(rs.RoomsealError.Authentication):
            self.bob.receive_device_message("@mallory:x", m.sender_key, m.message)
        received = self.bob.receive_device_message("@alice:x", m.sender_key, m.message)
        self.assertEqual(received.sender_user_id, "@alice:x")

    def test_room_keys_listing_and_forgetting_one(self):
        share(self.relay, self.alice, [self.bob_dev])
        self.relay.deliver(self.bob)
        [stored] = self.bob.room_keys()
        self.assertEqual(stored.room_id, ROOM)
        self.assertEqual(stored.sender, self.alice.identity())
        self.assertEqual((stored.sender_user_id, stored.sender_device_id), ("@alice:x", "A"))
        self.assertEqual((stored.first_index, stored.authenticated_from), (0, 0))
        self.assertGreater(stored.size_bytes, 0)
        self.assertTrue(self.bob.forget_room_key(ROOM, stored.session_id))
        self.assertFalse(self.bob.forget_room_key(ROOM, stored.session_id))
        self.assertEqual(self.bob.room_keys(), [])

    def test_room_key_export_and_import(self):
        share(self.relay, self.alice, [self.bob_dev])
        self.relay.deliver(self.bob)
        first = self.alice.encrypt_event(ROOM, "m", json.dumps({"n": 0}))
        second = self.alice.encrypt_event(ROOM, "m", json.dumps({"n": 1}))
        [stored] = self.bob.room_keys()
        # Bob backs the key up from index 1; a new device of his imports it.
        export = self.bob.export_room_key(ROOM, stored.session_id, 1)
        self.assertEqual((export.first_index, export.sender), (1, self.alice.identity()))
        self.assertNotIn(export.export, repr(stored))
        self.assertIsNone(self.bob.export_room_key(ROOM, "A" * 43, 0))
        phone = rs.Endpoint("@bob:x", "PHONE")
        status = phone.import_room_key(ROOM, export.sender, export.export)
        self.assertEqual(status, rs.KeyStatus.NEW)
        self.assertEqual(phone.import_room_key(ROOM, export.sender, export.export), rs.KeyStatus.UNCHANGED)
        [imported] = phone.room_keys()
        self.assertEqual((imported.room_id, imported.session_id), (ROOM, stored.session_id))
        self.assertEqual((imported.first_index, imported.authenticated_from), (1, None))
        self.assertIsNone(imported.sender_user_id)
        # It reads from index 1 on, as not authenticated; not before.
        event = phone.decrypt_event(ROOM, "$2", second)
        self.assertEqual((json.loads(event.content_json), event.authenticated), ({"n": 1}, False))
        with self.assertRaises(rs.RoomsealError):
            phone.decrypt_event(ROOM, "$1", first)
        self.assertIsNone(phone.export_room_key(ROOM, stored.session_id, 0))
        with self.assertRaises(rs.RoomsealError.InvalidInput):
            phone.import_room_key(ROOM, export.sender, "not an export")

    def test_rotation_policy_survives_a_pickle_and_says_why_a_share_is_needed(self):
        share(self.relay, self.alice, [self.bob_dev])
        self.relay.deliver(self.bob)
        self.alice.set_rotation_policy(1, 3600)
        key = bytes(range(32))
        alice = rs.Endpoint.from_pickle(self.alice.pickle(key), key)
        self.assertEqual(alice.rotation_policy(), rs.RotationPolicy(max_messages=1, max_age_seconds=3600))
        alice.encrypt_event(ROOM, "m", "{}")
        with self.assertRaises(rs.RoomsealError.ShareRequired) as caught:
            alice.encrypt_event(ROOM, "m", "{}")
        self.assertIn("maximum number of messages", str(caught.exception))
        with self.assertRaises(rs.RoomsealError.ShareRequired) as caught:
            alice.encrypt_event("!never:x", "m", "{}")
        self.assertIn("not been shared", str(caught.exception))

    def test_durable_store(self):
        key = bytes(range(32))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "alice.sqlite3")
            alice = rs.DurableEndpoint.create(path, key, "@alice:x", "A")
            alice_dev = self.relay.publish(alice)
            share(self.relay, alice, [self.bob_dev])
            self.relay.deliver(self.bob)
            before = alice.store_generation()
            envelope = alice.encrypt_event(ROOM, "m", json.dumps({"n": 0}))
            self.assertEqual(alice.store_generation(), before + 1)
            self.assertEqual(self.bob.decrypt_event(ROOM, "$0", envelope).message_index, 0)

            # Opened again (as after a crash): the ratchet went on, nothing
            # was rolled back, no pickle was written.
            # (Python frees an object, and here its SQLite connection, when
            # the last reference goes.)
            del alice
            alice = rs.DurableEndpoint.open(path, key)
            self.assertEqual(alice.identity(), alice_dev.identity())
            again = alice.encrypt_event(ROOM, "m", json.dumps({"n": 1}))
            self.assertEqual(self.bob.decrypt_event(ROOM, "$1", again).message_index, 1)

            # A second handle on the same file (another process) is stale
            # once the first writes: refused, reloaded, then it goes on.
            other = rs.DurableEndpoint.open(path, key)
            alice.encrypt_event(ROOM, "m", "{}")
            with self.assertRaises(rs.RoomsealError.StaleStore) as caught:
                other.encrypt_event(ROOM, "m", "{}")
            self.assertIn("another writer", str(caught.exception))
            late = other.encrypt_event(ROOM, "m", "{}")
            self.assertEqual(self.bob.decrypt_event(ROOM, "$3", late).message_index, 3)

            # A wrong key or an occupied store is refused.
            with self.assertRaises(rs.RoomsealError.Store):
                rs.DurableEndpoint.open(path, bytes(32))
            with self.assertRaises(rs.RoomsealError.Store):
                rs.DurableEndpoint.create(path, key, "@alice:x", "A2")

            # Bob moves from pickles to a store.
            bob_path = os.path.join(tmp, "bob.sqlite3")
            bob = rs.DurableEndpoint.migrate_pickle(self.bob.pickle(key), key, bob_path)
            self.assertEqual(bob.identity(), self.bob.identity())
            self.assertEqual(len(bob.room_keys()), 1)
            with self.assertRaises(rs.RoomsealError.Replay):
                bob.decrypt_event(ROOM, "$other", late)
            del alice, other, bob

    def test_generations_rollback_and_recovery(self):
        share(self.relay, self.alice, [self.bob_dev])
        self.relay.deliver(self.bob)
        key = bytes(range(32))
        old = self.alice.pickle(key)
        old_generation = self.alice.pickle_generation()
        # Same state, same generation; a new state, a higher one.
        self.alice.pickle(key)
        self.assertEqual(self.alice.pickle_generation(), old_generation)
        self.alice.encrypt_event(ROOM, "m", json.dumps({"n": 1}))
        new = self.alice.pickle(key)
        newest = self.alice.pickle_generation()
        self.assertGreater(newest, old_generation)
        restored = rs.Endpoint.from_pickle_no_older_than(new, key, newest)
        self.assertEqual(restored.pickle_generation(), newest)
        with self.assertRaises(rs.RoomsealError.Pickle):
            rs.Endpoint.from_pickle_no_older_than(old, key, newest)
        # Continuing from the old copy anyway: recover first. The room key
        # is dropped (the next share rotates for the rollback) and sending
        # needs a new pairwise session.
        rolled_back = rs.Endpoint.from_pickle(old, key)
        rolled_back.recover_from_rollback()
        with self.assertRaises(rs.RoomsealError.ShareRequired) as caught:
            rolled_back.encrypt_event(ROOM, "m", "{}")
        self.assertIn("rolled back", str(caught.exception))
        outcome = rolled_back.share_room_key(ROOM, [self.bob_dev])
        self.assertTrue(outcome.rotated)
        self.assertEqual(outcome.rotation_reason, "the state was rolled back")
        self.assertEqual(outcome.messages, [])
        self.assertEqual(len(outcome.missing_sessions), 1)
        # New keys to publish: the one-time keys were all forgotten and the
        # fallback key replaced.
        upload = rolled_back.keys_to_publish(3)
        self.assertEqual(len(upload.one_time_keys_json), 3)
        self.assertIsNotNone(upload.fallback_key_json)
        rolled_back.mark_keys_as_published(upload)
        rolled_back.rotate_fallback_key()
        self.assertIsNotNone(rolled_back.keys_to_publish(0).fallback_key_json)

    def test_a_panic_becomes_an_exception_not_an_abort(self):
        # The suite runs against a build with the test-only panic probes
        # (feature ffi-test-probes; scripts/bindings.sh builds it).
        self.assertTrue(hasattr(rs, "test_probe_panic"), "bindings built without ffi-test-probes")
        with self.assertRaises(rs.InternalError) as caught:
            rs.test_probe_panic()
        self.assertIn("deliberate panic", str(caught.exception))

        # A panic inside an object while it holds its state: the call raises,
        # and the object then refuses every call instead of using state left
        # half-changed.
        victim, _ = make(self.relay, "@victim:x", "V")
        with self.assertRaises(rs.InternalError):
            victim.test_probe_panic_while_locked()
        for call in (victim.identity, lambda: victim.pickle(bytes(32)), lambda: victim.keys_to_publish(1)):
            with self.assertRaises(rs.RoomsealError.Internal) as caught:
                call()
            self.assertIn("restore it from a pickle", str(caught.exception))

        # Everything else in the process carries on.
        share(self.relay, self.alice, [self.bob_dev])
        self.relay.deliver(self.bob)
        envelope = self.alice.encrypt_event(ROOM, "m", json.dumps({"after": "panic"}))
        self.assertEqual(json.loads(self.bob.decrypt_event(ROOM, "$1", envelope).content_json), {"after": "panic"})

    def test_thread_safety_smoke(self):
        share(self.relay, self.alice, [self.bob_dev])
        self.relay.deliver(self.bob)
        self.alice.set_rotation_policy(100_000, 3600)
        envelopes = []
        lock = threading.Lock()

        def writer(n):
            for i in range(50):
                e = self.alice.encrypt_event(ROOM, "m", json.dumps({"thread": n, "i": i}))
                with lock:
                    envelopes.append(e)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(envelopes), 400)

        results = []

        def reader(chunk, offset):
            for i, e in enumerate(chunk):
                results.append(self.bob.decrypt_event(ROOM, f"$e{offset + i}", e).message_index)

        chunks = [envelopes[i::4] for i in range(4)]
        readers = [threading.Thread(target=reader, args=(c, 1000 * k)) for k, c in enumerate(chunks)]
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        self.assertEqual(sorted(results), list(range(400)))


MATRIX_ROOM = "!matrix:example.org"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"


class Homeserver:
    """A tiny in-memory Matrix homeserver for MatrixMachine devices: routes
    /keys/upload, /keys/query, /keys/claim and /sendToDevice, and builds each
    device's /sync (to-device events with their sender, device list changes,
    one-time key counts). Plumbing only: it checks nothing."""

    def __init__(self):
        self.device_keys = {}  # user -> {device: keys}
        self.one_time_keys = {}  # (user, device) -> {key name: key}
        self.fallback_keys = {}  # (user, device) -> [name, key, used]
        self.inbox = {}  # (user, device) -> [to-device events]
        self.changed = {}  # (user, device) -> {user}
        self.timeline = []
        self.next_event = 0
        self.claimed_fallback = 0

    def _devices(self):
        return [(u, d) for u, ds in self.device_keys.items() for d in ds]

    def _tell_changed(self, user, except_device):
        for d in self._devices():
            if d != except_device:
                self.changed.setdefault(d, set()).add(user)

    def route(self, user, device, request):
        """The server's answer (JSON text) to one request of a device."""
        me = (user, device)
        body = json.loads(request.body_json)
        kind = request.kind
        if kind == rs.MatrixRequestKind.KEYS_UPLOAD:
            if body.get("device_keys"):
                self.device_keys.setdefault(user, {})[device] = body["device_keys"]
                self._tell_changed(user, me)
            self.one_time_keys.setdefault(me, {}).update(body.get("one_time_keys") or {})
            for name, key in (body.get("fallback_keys") or {}).items():
                self.fallback_keys[me] = [name, key, False]
            return json.dumps({"one_time_key_counts": {"signed_curve25519": len(self.one_time_keys[me])}})
        if kind == rs.MatrixRequestKind.KEYS_QUERY:
            out = {}
            for u in body["device_keys"]:
                devices = json.loads(json.dumps(self.device_keys.get(u, {})))
                for d, keys in devices.items():
                    keys["unsigned"] = {"device_display_name": d + " (python)"}
                out[u] = devices
            return json.dumps({"device_keys": out, "failures": {}})
        if kind == rs.MatrixRequestKind.KEYS_CLAIM:
            out = {}
            for u, devices in body["one_time_keys"].items():
                for d in devices:
                    stock = self.one_time_keys.get((u, d), {})
                    if stock:
                        name = sorted(stock)[0]
                        taken = (name, stock.pop(name))
                    elif (u, d) in self.fallback_keys:
                        entry = self.fallback_keys[(u, d)]
                        entry[2] = True
                        self.claimed_fallback += 1
                        taken = (entry[0], entry[1])
                    else:
                        continue
                    out.setdefault(u, {})[d] = {taken[0]: taken[1]}
            return json.dumps({"one_time_keys": out, "failures": {}})
        if kind == rs.MatrixRequestKind.TO_DEVICE:
            assert request.event_type and request.txn_id
            for u, devices in body["messages"].items():
                for d, content in devices.items():
                    event = {"type": request.event_type, "sender": user, "content": content}
                    self.inbox.setdefault((u, d), []).append(event)
            return "{}"
        raise AssertionError(f"unknown request kind {kind}")

    def sync(self, user, device):
        """The /sync response for a device (its to-device inbox drained)."""
        me = (user, device)
        fallback = self.fallback_keys.get(me)
        return json.dumps({
            "next_batch": "s",
            "to_device": {"events": self.inbox.pop(me, [])},
            "device_lists": {"changed": sorted(self.changed.pop(me, set())), "left": []},
            "device_one_time_keys_count": {"signed_curve25519": len(self.one_time_keys.get(me, {}))},
            "device_unused_fallback_key_types": ["signed_curve25519"] if fallback and not fallback[2] else [],
        })

    def remove_device(self, user, device):
        """A logout: the device's keys go; every other device hears of it."""
        self.device_keys.get(user, {}).pop(device, None)
        self.one_time_keys.pop((user, device), None)
        self.fallback_keys.pop((user, device), None)
        self.inbox.pop((user, device), None)
        self._tell_changed(user, (user, device))

    def send_event(self, room, sender, content_json):
        self.next_event += 1
        event = {
            "type": "m.room.encrypted",
            "event_id": f"$m{self.next_event}",
            "sender": sender,
            "origin_server_ts": 1_700_000_000_000 + self.next_event,
            "room_id": room,
            "content": json.loads(content_json),
        }
        self.timeline.append(event)
        return event


class MatrixDevice:
    """One MatrixMachine and the app loop around it."""

    def __init__(self, server, user, device_id, machine=None):
        self.server = server
        self.user = user
        self.device_id = device_id
        self.machine = machine or rs.MatrixMachine(user, device_id)

    def answer(self, request):
        response = self.server.route(self.user, self.device_id, request)
        return self.machine.mark_request_as_sent(request.request_id, response)

    def pump(self):
        for _ in range(20):
            requests = self.machine.outgoing_requests()
            if not requests:
                return
            for request in requests:
                self.answer(request)
        raise AssertionError(f"{self.device_id}: requests keep coming")

    def sync(self):
        result = self.machine.receive_sync_changes(self.server.sync(self.user, self.device_id))
        self.pump()
        return result

    def share(self, members):
        self.machine.update_tracked_users(members)
        self.pump()
        claim = self.machine.keys_claim_request(members)
        if claim is not None:
            self.assert_kind(claim, rs.MatrixRequestKind.KEYS_CLAIM)
            self.answer(claim)
        result = self.machine.share_room_key(MATRIX_ROOM, members)
        for request in result.requests:
            self.assert_kind(request, rs.MatrixRequestKind.TO_DEVICE)
            self.answer(request)
        self.pump()
        return result

    def send(self, members, body):
        self.share(members)
        content = self.machine.encrypt_room_event(
            MATRIX_ROOM, "m.room.message", json.dumps({"msgtype": "m.text", "body": body}))
        return self.server.send_event(MATRIX_ROOM, self.user, content)

    def read(self, event):
        return self.machine.decrypt_room_event(MATRIX_ROOM, json.dumps(event))

    @staticmethod
    def assert_kind(request, kind):
        if request.kind != kind:
            raise AssertionError(f"expected {kind}, got {request.kind}")


def settle(*devices):
    """Two syncs of every device: device lists, then what they caused."""
    received = []
    for _ in range(2):
        for d in devices:
            result = d.sync()
            if result.rejected:
                raise AssertionError(f"{d.device_id}: {result.rejected}")
            received.extend(result.room_keys)
    return received


class MatrixMachines(unittest.TestCase):
    """MatrixMachine devices of two users through the in-test homeserver."""

    members = [ALICE, BOB]

    def setUp(self):
        self.server = Homeserver()
        self.a1 = MatrixDevice(self.server, ALICE, "ALICE1")
        self.a2 = MatrixDevice(self.server, ALICE, "ALICE2")
        self.b1 = MatrixDevice(self.server, BOB, "BOB1")
        for d in (self.a1, self.a2, self.b1):
            first = d.machine.outgoing_requests()
            self.assertEqual([r.kind for r in first][:1], [rs.MatrixRequestKind.KEYS_UPLOAD])
            upload = json.loads(first[0].body_json)
            self.assertEqual(upload["device_keys"]["device_id"], d.device_id)
            self.assertEqual(len(upload["one_time_keys"]), 50)
            d.pump()
        settle(self.a1, self.a2, self.b1)

    def test_identity_and_first_requests(self):
        m = self.a1.machine
        self.assertEqual((m.user_id(), m.device_id()), (ALICE, "ALICE1"))
        keys = self.server.device_keys[ALICE]["ALICE1"]["keys"]
        self.assertEqual(keys["curve25519:ALICE1"], m.identity().curve25519)
        self.assertEqual(keys["ed25519:ALICE1"], m.identity().ed25519)
        self.assertEqual(m.outgoing_requests(), [])

    def test_sessions_sharing_and_events_both_ways(self):
        event = self.a1.send(self.members, "hello from alice")
        self.assertEqual(set(event["content"]), {"algorithm", "ciphertext", "device_id", "sender_key", "session_id"})
        self.assertEqual(event["content"]["algorithm"], "m.megolm.v1.aes-sha2")
        keys = settle(self.a1, self.a2, self.b1)
        self.assertEqual(len([k for k in keys if k.sender_user_id == ALICE]), 2)
        self.assertTrue(all(k.authenticated and k.status == rs.KeyStatus.NEW for k in keys))
        self.assertTrue(self.a1.machine.has_olm_session(BOB, "BOB1"))
        # Bob tracks nobody yet: he knows alice's device only by its key,
        # and says so; once he tracks the room's members, it is confirmed.
        self.assertEqual(self.b1.machine.devices(ALICE), [])
        unconfirmed = self.b1.read(event)
        self.assertEqual((unconfirmed.sender_device, unconfirmed.sender_device_confirmed), (None, False))
        self.assertTrue(unconfirmed.authenticated)
        self.assertEqual(self.b1.machine.update_tracked_users(self.members), [])
        self.b1.pump()
        for reader in (self.b1, self.a2):
            clear = reader.read(event)
            self.assertEqual(json.loads(clear.content_json)["body"], "hello from alice")
            self.assertEqual(clear.event_type, "m.room.message")
            self.assertEqual(clear.sender, ALICE)
            self.assertEqual(clear.sender_device, "ALICE1")
            self.assertEqual(clear.sender_key, self.a1.machine.identity().curve25519)
            self.assertTrue(clear.authenticated)
            self.assertFalse(clear.forwarded)
            self.assertTrue(clear.sender_device_confirmed)
            full = json.loads(clear.event_json)
            self.assertEqual((full["type"], full["sender"], full["event_id"]), ("m.room.message", ALICE, event["event_id"]))
            # Clients render an event again: the same event decrypts again.
            self.assertEqual(reader.read(event).content_json, clear.content_json)

        reply = self.b1.send(self.members, "hello from bob")
        settle(self.a1, self.a2, self.b1)
        for reader in (self.a1, self.a2):
            clear = reader.read(reply)
            self.assertEqual(json.loads(clear.content_json)["body"], "hello from bob")
            self.assertEqual(clear.sender, BOB)
            self.assertTrue(clear.authenticated)
            # ALICE2 never tracked bob: his device is known only by its key.
            self.assertEqual(clear.sender_device_confirmed, reader is self.a1)
        self.assertTrue(self.b1.machine.has_olm_session(ALICE, "ALICE1"))
        self.assertEqual(self.a1.machine.olm_peer_count(), 2)
        # The key listing names each session (no secret in it).
        listed = {(k.room_id, k.sender_user_id) for k in self.b1.machine.room_keys()}
        self.assertIn((MATRIX_ROOM, ALICE), listed)
        own = [k for k in self.b1.machine.room_keys() if k.own]
        self.assertEqual(len(own), 1)
        # The devices the machine tracks, with their checked keys.
        bob_devices = self.a1.machine.devices(BOB)
        self.assertEqual([d.device_id for d in bob_devices], ["BOB1"])
        self.assertEqual(bob_devices[0].identity, self.b1.machine.identity())
        self.assertEqual(bob_devices[0].trust, rs.MatrixDeviceTrust.UNSET)

    def test_rotation_after_a_device_is_removed(self):
        before = self.a1.send(self.members, "before")
        settle(self.a1, self.a2, self.b1)
        self.assertEqual(json.loads(self.a2.read(before).content_json)["body"], "before")

        self.server.remove_device(ALICE, "ALICE2")
        settle(self.a1, self.b1)
        share = self.a1.share(self.members)
        self.assertTrue(share.rotated)
        self.assertIsNotNone(share.rotation_reason)
        self.assertEqual([d.device_id for d in share.served], ["BOB1"])
        after = self.a1.send(self.members, "after ALICE2 left")
        self.assertNotEqual(after["content"]["session_id"], before["content"]["session_id"])
        settle(self.a1, self.b1)
        self.a2.machine.receive_sync_changes(self.server.sync(ALICE, "ALICE2"))
        self.assertEqual(json.loads(self.b1.read(after).content_json)["body"], "after ALICE2 left")
        with self.assertRaises(rs.RoomsealError.UnknownRoomKey):
            self.a2.read(after)
        # An explicit rotation: the next share makes a new session.
        self.assertTrue(self.a1.machine.rotate_room_key(MATRIX_ROOM))
        self.assertFalse(self.b1.machine.rotate_room_key(MATRIX_ROOM))
        self.assertTrue(self.a1.share(self.members).rotated)

    def test_pickle_restore_then_continue(self):
        first = self.a1.send(self.members, "one")
        settle(self.a1, self.a2, self.b1)
        key = os.urandom(32)
        pickle = self.b1.machine.pickle(key)
        generation = self.b1.machine.pickle_generation()
        self.assertGreater(generation, 0)
        restored = rs.MatrixMachine.from_pickle(pickle, key)
        self.assertEqual(restored.identity(), self.b1.machine.identity())
        self.assertEqual(restored.pickle_generation(), generation)
        self.b1 = MatrixDevice(self.server, BOB, "BOB1", restored)
        self.assertEqual(json.loads(self.b1.read(first).content_json)["body"], "one")
        second = self.a1.send(self.members, "two")
        reply = self.b1.send(self.members, "reply after restore")
        settle(self.a1, self.a2, self.b1)
        self.assertEqual(json.loads(self.b1.read(second).content_json)["body"], "two")
        self.assertEqual(json.loads(self.a1.read(reply).content_json)["body"], "reply after restore")
        # Rollback and wrong keys are refused.
        newer = self.b1.machine.pickle(key)
        self.assertGreater(self.b1.machine.pickle_generation(), generation)
        with self.assertRaises(rs.RoomsealError.Pickle):
            rs.MatrixMachine.from_pickle_no_older_than(pickle, key, self.b1.machine.pickle_generation())
        rs.MatrixMachine.from_pickle_no_older_than(newer, key, self.b1.machine.pickle_generation())
        with self.assertRaises(rs.RoomsealError.Pickle):
            rs.MatrixMachine.from_pickle(newer, bytes(32))
        with self.assertRaises(rs.RoomsealError.Pickle):
            rs.Endpoint.from_pickle(newer, key)
        with self.assertRaises(rs.RoomsealError.InvalidInput):
            self.b1.machine.pickle(b"short")

    def test_withheld_and_trust(self):
        self.a1.machine.set_share_policy(True)
        share = self.a1.share(self.members)
        self.assertEqual({(w.device_id, w.code) for w in share.withheld},
                         {("ALICE2", "m.unverified"), ("BOB1", "m.unverified")})
        event = self.server.send_event(MATRIX_ROOM, ALICE, self.a1.machine.encrypt_room_event(
            MATRIX_ROOM, "m.room.message", json.dumps({"body": "verified only"})))
        result = self.b1.sync()
        self.assertEqual([n.code for n in result.withheld], ["m.unverified"])
        with self.assertRaises(rs.RoomsealError.KeyWithheld) as caught:
            self.b1.read(event)
        self.assertIn("m.unverified", str(caught.exception))
        notice = self.b1.machine.withheld_notice(MATRIX_ROOM, event["content"]["session_id"])
        self.assertEqual((notice.code, notice.sender), ("m.unverified", ALICE))
        # Once the app verifies bob's device, the next share serves it.
        self.assertTrue(self.a1.machine.set_device_trust(BOB, "BOB1", rs.MatrixDeviceTrust.VERIFIED))
        self.assertFalse(self.a1.machine.set_device_trust(BOB, "NOSUCH", rs.MatrixDeviceTrust.VERIFIED))
        self.assertEqual(self.a1.machine.devices(BOB)[0].trust, rs.MatrixDeviceTrust.VERIFIED)
        share = self.a1.share(self.members)
        self.assertEqual([d.device_id for d in share.served], ["BOB1"])
        later = self.server.send_event(MATRIX_ROOM, ALICE, self.a1.machine.encrypt_room_event(
            MATRIX_ROOM, "m.room.message", json.dumps({"body": "now verified"})))
        self.b1.sync()
        self.assertEqual(json.loads(self.b1.read(later).content_json)["body"], "now verified")
        # The key came at the session's current index: the earlier event
        # stays unreadable (Megolm cannot go back).
        with self.assertRaises(rs.RoomsealError.Rejected):
            self.b1.read(event)

    def test_hostile_json_raises_typed_exceptions_and_changes_nothing(self):
        event = self.a1.send(self.members, "genuine")
        settle(self.a1, self.a2, self.b1)
        bob = self.b1.machine
        self.assertEqual(json.loads(self.b1.read(event).content_json)["body"], "genuine")
        self.b1.share(self.members)  # bob tracks the room's members
        keys_before = bob.room_keys()
        peers_before = bob.olm_peer_count()
        truncated = json.dumps(event)[:-7]
        wrong_types = json.loads(json.dumps(event))
        wrong_types["content"]["ciphertext"] = 12345
        other_room = json.loads(json.dumps(event))
        other_room["room_id"] = "!elsewhere:example.org"
        tampered = json.loads(json.dumps(event))
        ct = tampered["content"]["ciphertext"]
        tampered["content"]["ciphertext"] = ct[:30] + ("A" if ct[30] != "A" else "B") + ct[31:]
        replayed = dict(event, event_id="$replayed")
        cases = [
            (rs.RoomsealError.InvalidInput, lambda: bob.receive_sync_changes("{not json")),
            (rs.RoomsealError.InvalidInput, lambda: bob.receive_sync_changes('{"to_device": {"events": 5}}')),
            (rs.RoomsealError.InvalidInput, lambda: bob.receive_sync_changes('{"device_one_time_keys_count": {"signed_curve25519": -1}}')),
            (rs.RoomsealError.InvalidInput, lambda: bob.decrypt_room_event(MATRIX_ROOM, truncated)),
            (rs.RoomsealError.InvalidInput, lambda: bob.decrypt_room_event(MATRIX_ROOM, json.dumps(wrong_types))),
            (rs.RoomsealError.InvalidInput, lambda: bob.decrypt_room_event("not a room", json.dumps(event))),
            (rs.RoomsealError.Authentication, lambda: bob.decrypt_room_event(MATRIX_ROOM, json.dumps(other_room))),
            ((rs.RoomsealError.Authentication, rs.RoomsealError.InvalidInput), lambda: bob.decrypt_room_event(MATRIX_ROOM, json.dumps(tampered))),
            (rs.RoomsealError.Replay, lambda: bob.decrypt_room_event(MATRIX_ROOM, json.dumps(replayed))),
            (rs.RoomsealError.InvalidInput, lambda: bob.encrypt_room_event(MATRIX_ROOM, "m.room.message", "[1, 2]")),
            (rs.RoomsealError.InvalidInput, lambda: bob.encrypt_room_event(MATRIX_ROOM, "m.room.message", '{"body": ')),
            (rs.RoomsealError.InvalidInput, lambda: bob.encrypt_room_event(MATRIX_ROOM, "", "{}")),
            (rs.RoomsealError.ShareRequired, lambda: bob.encrypt_room_event("!unshared:example.org", "m.room.message", "{}")),
            (rs.RoomsealError.InvalidInput, lambda: bob.set_room_encryption(MATRIX_ROOM, '{"algorithm": 5}')),
            (rs.RoomsealError.InvalidInput, lambda: bob.set_room_encryption(MATRIX_ROOM, '{"algorithm": "m.megolm.v1.aes-sha2", "rotation_period_msgs": -3}')),
            (rs.RoomsealError.InvalidInput, lambda: bob.update_tracked_users([BOB, "not a user id"])),
            (rs.RoomsealError.InvalidInput, lambda: bob.share_room_key(MATRIX_ROOM, [""])),
            (rs.RoomsealError.InvalidInput, lambda: bob.forget_room_key(MATRIX_ROOM, "%%%")),
            (rs.RoomsealError.UnknownRequest, lambda: bob.mark_request_as_sent(987654, "{}")),
            (rs.RoomsealError.InvalidInput, lambda: rs.MatrixMachine("alice", "D")),
            (rs.RoomsealError.InvalidInput, lambda: rs.MatrixMachine(ALICE, "")),
            (rs.RoomsealError.Pickle, lambda: rs.MatrixMachine.from_pickle("AAAA", bytes(32))),
        ]
        for error, call in cases:
            with self.assertRaises(error) as caught:
                call()
            self.assertIsInstance(caught.exception, rs.RoomsealError)
            self.assertTrue(str(caught.exception))
        self.assertEqual(bob.room_keys(), keys_before)
        self.assertEqual(bob.olm_peer_count(), peers_before)
        # Wrong argument types are refused by the binding itself.
        with self.assertRaises(TypeError):
            bob.decrypt_room_event(MATRIX_ROOM, event)

        # A to-device event with a forged (altered) ciphertext is one
        # rejected item of the sync, not an exception; the rest is taken.
        second = self.a1.send(self.members, "second")
        inbox = self.server.inbox.get((BOB, "BOB1"), [])
        forged = json.loads(json.dumps(inbox[0])) if inbox else {
            "type": "m.room.encrypted", "sender": ALICE,
            "content": {"algorithm": "m.olm.v1.curve25519-aes-sha2",
                        "sender_key": self.a1.machine.identity().curve25519,
                        "ciphertext": {bob.identity().curve25519: {"type": 1, "body": "AAAA"}}}}
        for c in forged["content"].get("ciphertext", {}).values():
            c["body"] = c["body"][:-4] + ("AAAA" if not c["body"].endswith("AAAA") else "BBBB")
        self.server.inbox.setdefault((BOB, "BOB1"), []).insert(0, forged)
        self.server.inbox[(BOB, "BOB1")].insert(1, {"type": "m.room.encrypted", "sender": ALICE, "content": {"algorithm": 7}})
        result = self.b1.sync()
        self.assertEqual([r.index for r in result.rejected], [0, 1])
        self.assertTrue(all(r.reason for r in result.rejected))
        self.assertEqual(json.loads(self.b1.read(second).content_json)["body"], "second")

        # A key query answer with a forged device (signature broken): that
        # device is refused, the rest is applied.
        self.server.changed.setdefault((BOB, "BOB1"), set()).add(ALICE)
        bob.receive_sync_changes(self.server.sync(BOB, "BOB1"))
        query = [r for r in bob.outgoing_requests() if r.kind == rs.MatrixRequestKind.KEYS_QUERY][0]
        answer = json.loads(self.server.route(BOB, "BOB1", query))
        evil = json.loads(json.dumps(answer["device_keys"][ALICE]["ALICE1"]))
        evil["device_id"] = "EVIL"
        answer["device_keys"][ALICE]["EVIL"] = evil
        forged_key = json.loads(json.dumps(answer["device_keys"][ALICE]["ALICE2"]))
        answer["device_keys"][ALICE]["ALICE2"]["keys"]["curve25519:ALICE2"] = self.a1.machine.identity().curve25519
        outcome = bob.mark_request_as_sent(query.request_id, json.dumps(answer))
        self.assertEqual(sorted(r.device_id for r in outcome.rejected), ["ALICE2", "EVIL"])
        known = {d.device_id: d.identity.curve25519 for d in bob.devices(ALICE)}
        self.assertEqual(known, {"ALICE1": self.a1.machine.identity().curve25519,
                                 "ALICE2": forged_key["keys"]["curve25519:ALICE2"]})

        # An answer refused whole: typed, and the next outgoing requests
        # ask again; the normal answer then works.
        self.server.changed.setdefault((BOB, "BOB1"), set()).add(ALICE)
        bob.receive_sync_changes(self.server.sync(BOB, "BOB1"))
        query = [r for r in bob.outgoing_requests() if r.kind == rs.MatrixRequestKind.KEYS_QUERY][0]
        for bad in ['{"device_keys": ', '{"device_keys": []}', '"x"']:
            with self.assertRaises(rs.RoomsealError.InvalidInput):
                bob.mark_request_as_sent(query.request_id, bad)
            query = [r for r in bob.outgoing_requests() if r.kind == rs.MatrixRequestKind.KEYS_QUERY][0]
        self.b1.answer(query)
        self.assertNotIn(rs.MatrixRequestKind.KEYS_QUERY, [r.kind for r in bob.outgoing_requests()])
        self.b1.pump()
        # And the conversation goes on.
        third = self.b1.send(self.members, "still fine")
        settle(self.a1, self.a2, self.b1)
        self.assertEqual(json.loads(self.a1.read(third).content_json)["body"], "still fine")

    def test_forwarding_to_an_own_device(self):
        event = self.b1.send(self.members, "before ALICE3")
        settle(self.a1, self.a2, self.b1)
        a3 = MatrixDevice(self.server, ALICE, "ALICE3")
        a3.pump()
        settle(self.a1, self.b1, a3)
        with self.assertRaises(rs.RoomsealError.UnknownRoomKey):
            a3.read(event)
        self.a1.share(self.members)  # starts an Olm session with ALICE3
        self.assertTrue(self.a1.machine.has_olm_session(ALICE, "ALICE3"))
        session_id = event["content"]["session_id"]
        request = self.a1.machine.forward_room_key(MATRIX_ROOM, session_id, "ALICE3")
        self.assertEqual(request.kind, rs.MatrixRequestKind.TO_DEVICE)
        self.a1.answer(request)
        result = a3.sync()
        self.assertEqual([(k.session_id, k.authenticated) for k in result.room_keys if k.session_id == session_id],
                         [(session_id, False)])
        clear = a3.read(event)
        self.assertEqual(json.loads(clear.content_json)["body"], "before ALICE3")
        self.assertTrue(clear.forwarded)
        self.assertFalse(clear.authenticated)
        with self.assertRaises(rs.RoomsealError.Rejected):
            self.a1.machine.forward_room_key(MATRIX_ROOM, session_id, "BOB1")
        # Forgetting the key: the event no longer decrypts.
        self.assertTrue(a3.machine.forget_room_key(MATRIX_ROOM, session_id))
        with self.assertRaises(rs.RoomsealError.UnknownRoomKey):
            a3.read(event)

    def test_threads_share_one_machine(self):
        self.a1.share(self.members)
        errors = []

        def encrypt():
            try:
                for _ in range(20):
                    self.a1.machine.encrypt_room_event(MATRIX_ROOM, "m.room.message", '{"body": "t"}')
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=encrypt) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


class DurableMatrixMachines(unittest.TestCase):
    """A DurableMatrixMachine (a Matrix device kept in a SQLite file) and a
    plain MatrixMachine peer, through the in-test homeserver."""

    members = [ALICE, BOB]

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.path = os.path.join(self.tmp.name, "alice.sqlite3")
        self.key = os.urandom(32)
        self.server = Homeserver()
        durable = rs.DurableMatrixMachine.create(self.path, self.key, ALICE, "ALICE1")
        self.a1 = MatrixDevice(self.server, ALICE, "ALICE1", durable)
        self.b1 = MatrixDevice(self.server, BOB, "BOB1")
        for d in (self.a1, self.b1):
            d.pump()
            d.machine.update_tracked_users(self.members)
            d.pump()
        settle(self.a1, self.b1)
        self.addCleanup(self.close)

    def close(self):
        # Python frees an object, and here its SQLite connection, when the
        # last reference goes.
        self.a1.machine = None

    def body(self, device, event):
        return json.loads(device.read(event).content_json)["body"]

    def reopen(self):
        """Closes the durable machine and opens it again from its file (as
        after a crash: nothing was pickled)."""
        identity = self.a1.machine.identity()
        self.a1.machine = None
        self.a1.machine = rs.DurableMatrixMachine.open(self.path, self.key)
        self.assertEqual(self.a1.machine.identity(), identity)
        self.a1.pump()

    def test_exchange_reopen_and_continue(self):
        m = self.a1.machine
        self.assertEqual((m.user_id(), m.device_id()), (ALICE, "ALICE1"))
        keys = self.server.device_keys[ALICE]["ALICE1"]["keys"]
        self.assertEqual(keys["curve25519:ALICE1"], m.identity().curve25519)
        self.assertEqual([d.device_id for d in m.devices(BOB)], ["BOB1"])
        # Every call that changes something commits it before returning.
        self.a1.share(self.members)
        before = m.store_generation()
        content = m.encrypt_room_event(MATRIX_ROOM, "m.room.message", json.dumps({"body": "durable hello"}))
        self.assertEqual(m.store_generation(), before + 1)
        first = self.server.send_event(MATRIX_ROOM, ALICE, content)
        settle(self.a1, self.b1)
        self.assertEqual(self.body(self.b1, first), "durable hello")
        self.assertTrue(m.has_olm_session(BOB, "BOB1"))
        reply = self.b1.send(self.members, "plain reply")
        settle(self.a1, self.b1)
        self.assertEqual(self.body(self.a1, reply), "plain reply")
        del m

        self.reopen()
        m = self.a1.machine
        self.assertTrue(m.has_olm_session(BOB, "BOB1"))
        self.assertEqual(self.body(self.a1, reply), "plain reply")
        second = self.a1.send(self.members, "after reopening")
        self.assertEqual(second["content"]["session_id"], first["content"]["session_id"])
        settle(self.a1, self.b1)
        clear = self.b1.read(second)
        self.assertEqual(json.loads(clear.content_json)["body"], "after reopening")
        self.assertEqual(clear.message_index, 1)
        self.assertTrue(clear.authenticated)
        later = self.b1.send(self.members, "plain, later")
        settle(self.a1, self.b1)
        self.assertEqual(self.body(self.a1, later), "plain, later")
        self.assertEqual(len([k for k in m.room_keys() if k.own]), 1)
        # The replay record survived too: another event id with the same
        # ciphertext is refused.
        replayed = dict(reply, event_id="$replayed")
        with self.assertRaises(rs.RoomsealError.Replay):
            self.a1.read(replayed)
        # Pickling stays available as an export of the store.
        exported = rs.MatrixMachine.from_pickle(m.pickle(self.key), self.key)
        self.assertEqual(exported.identity(), m.identity())

    def test_a_stale_handle_is_refused_then_reloads(self):
        self.a1.share(self.members)
        other = rs.DurableMatrixMachine.open(self.path, self.key)
        self.assertEqual(other.store_generation(), self.a1.machine.store_generation())
        written = self.a1.send(self.members, "from the first handle")
        with self.assertRaises(rs.RoomsealError.StaleStore) as caught:
            other.encrypt_room_event(MATRIX_ROOM, "m.room.message", json.dumps({"body": "stale"}))
        self.assertIn("another writer", str(caught.exception))
        self.assertNotIsInstance(caught.exception, rs.RoomsealError.Store)
        other.reload()
        self.assertEqual(other.store_generation(), self.a1.machine.store_generation())
        late = self.server.send_event(MATRIX_ROOM, ALICE, other.encrypt_room_event(
            MATRIX_ROOM, "m.room.message", json.dumps({"body": "from the reloaded handle"})))
        settle(self.b1)
        self.assertEqual(self.body(self.b1, written), "from the first handle")
        clear = self.b1.read(late)
        self.assertEqual(json.loads(clear.content_json)["body"], "from the reloaded handle")
        self.assertEqual(clear.message_index, self.b1.read(written).message_index + 1)
        # Now the first handle is the stale one; it reloads by itself on the
        # refusal, and the call made again goes through.
        with self.assertRaises(rs.RoomsealError.StaleStore):
            self.a1.machine.rotate_room_key(MATRIX_ROOM)
        self.assertTrue(self.a1.machine.rotate_room_key(MATRIX_ROOM))
        del other

    def test_a_wrong_key_or_an_occupied_store_is_refused(self):
        with self.assertRaises(rs.RoomsealError.Store) as caught:
            rs.DurableMatrixMachine.open(self.path, bytes(32))
        self.assertNotIn(self.key.hex(), str(caught.exception))
        with self.assertRaises(rs.RoomsealError.Store):
            rs.DurableMatrixMachine.create(self.path, self.key, ALICE, "ALICE2")
        with self.assertRaises(rs.RoomsealError.InvalidInput):
            rs.DurableMatrixMachine.open(self.path, b"short")
        with self.assertRaises(rs.RoomsealError.InvalidInput):
            rs.DurableMatrixMachine.create(os.path.join(self.tmp.name, "x.sqlite3"), self.key, "nobody", "D")
        with self.assertRaises(rs.RoomsealError.Store):
            rs.DurableMatrixMachine.open(os.path.join(self.tmp.name, "empty.sqlite3"), self.key)
        # The store is untouched by the refusals.
        self.a1.machine = None
        self.a1.machine = rs.DurableMatrixMachine.open(self.path, self.key)
        self.assertEqual(self.a1.machine.device_id(), "ALICE1")

    def test_migrate_a_matrix_machine_pickle(self):
        first = self.a1.send(self.members, "before bob migrates")
        settle(self.a1, self.b1)
        self.assertEqual(self.body(self.b1, first), "before bob migrates")
        key = os.urandom(32)
        pickle = self.b1.machine.pickle(key)
        bob_path = os.path.join(self.tmp.name, "bob.sqlite3")
        with self.assertRaises(rs.RoomsealError.Pickle):
            rs.DurableMatrixMachine.migrate_pickle(pickle, bytes(32), bob_path)
        migrated = rs.DurableMatrixMachine.migrate_pickle(pickle, key, bob_path)
        self.assertEqual(migrated.identity(), self.b1.machine.identity())
        self.assertEqual(migrated.room_keys(), self.b1.machine.room_keys())
        with self.assertRaises(rs.RoomsealError.Store):
            rs.DurableMatrixMachine.migrate_pickle(pickle, key, bob_path)
        self.b1.machine = migrated
        self.assertEqual(self.body(self.b1, first), "before bob migrates")
        second = self.a1.send(self.members, "to the migrated bob")
        reply = self.b1.send(self.members, "from the migrated bob")
        settle(self.a1, self.b1)
        self.assertEqual(self.body(self.b1, second), "to the migrated bob")
        self.assertEqual(self.body(self.a1, reply), "from the migrated bob")
        # And it reopens from its own file.
        self.b1.machine = None
        del migrated
        self.b1.machine = rs.DurableMatrixMachine.open(bob_path, key)
        self.assertEqual(self.body(self.b1, second), "to the migrated bob")
        self.b1.machine = None


class ReadmeExample(unittest.TestCase):
    @staticmethod
    def readme_code(heading):
        """The first Python block of README.md after `heading`."""
        readme = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
        with open(readme, encoding="utf-8") as f:
            text = f.read()
        section = text[text.index(heading):]
        code = section[section.index("```python\n") + len("```python\n"):]
        return code[: code.index("```")]

    def test_readme_example(self):
        """The Python example of README.md runs as written."""
        code = self.readme_code("### Python")
        with tempfile.TemporaryDirectory() as tmp:
            exec(compile(code, "README.md (Python example)", "exec"), {"app_dir": tmp})

    def test_readme_matrix_example(self):
        """The Matrix example of README.md runs as written, against the
        in-test homeserver: every path and body it sends is the one the
        client-server API names."""
        code = self.readme_code("#### Python: a Matrix client")
        server = Homeserver()
        kinds = {
            "/_matrix/client/v3/keys/upload": rs.MatrixRequestKind.KEYS_UPLOAD,
            "/_matrix/client/v3/keys/query": rs.MatrixRequestKind.KEYS_QUERY,
            "/_matrix/client/v3/keys/claim": rs.MatrixRequestKind.KEYS_CLAIM,
        }
        seen = []

        def http(machine, method, path, body):
            user, device = machine.user_id(), machine.device_id()
            seen.append((method, path.split("/")[4]))
            if path == "/_matrix/client/v3/sync":
                self.assertEqual(method, "GET")
                return server.sync(user, device)
            if path.startswith("/_matrix/client/v3/sendToDevice/"):
                self.assertEqual(method, "PUT")
                _, event_type, txn = path.rsplit("/", 2)
                request = rs.MatrixRequest(
                    request_id=0, kind=rs.MatrixRequestKind.TO_DEVICE, body_json=body,
                    event_type=urllib.parse.unquote(event_type), txn_id=urllib.parse.unquote(txn))
            else:
                self.assertEqual(method, "POST")
                request = rs.MatrixRequest(
                    request_id=0, kind=kinds[path], body_json=body, event_type=None, txn_id=None)
            return server.route(user, device, request)

        exec(compile(code, "README.md (Matrix example)", "exec"), {"http": http})
        self.assertIn(("PUT", "sendToDevice"), seen)
        self.assertIn(("POST", "keys"), seen)


if __name__ == "__main__":
    unittest.main()

"""The roomseal bindings, driven from Python (standard library only).

Run by scripts/bindings.sh, which builds the library, generates
bindings/python/roomseal.py and puts it on PYTHONPATH.
"""

import json
import os
import tempfile
import threading
import unittest

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
            with self.assertRaises(rs.RoomsealError.Store) as caught:
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


class ReadmeExample(unittest.TestCase):
    def test_readme_example(self):
        """The Python example of README.md runs as written."""
        readme = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
        with open(readme, encoding="utf-8") as f:
            text = f.read()
        section = text[text.index("### Python"):]
        code = section[section.index("```python\n") + len("```python\n"):]
        code = code[: code.index("```")]
        with tempfile.TemporaryDirectory() as tmp:
            exec(compile(code, "README.md (Python example)", "exec"), {"app_dir": tmp})


if __name__ == "__main__":
    unittest.main()

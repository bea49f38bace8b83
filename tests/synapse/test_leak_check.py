#!/usr/bin/env python3
"""Unit tests of leak_check.py (standard library only; scripts/e2e-synapse.sh runs them first).

    python3 tests/synapse/test_leak_check.py
"""

import base64
import contextlib
import io
import json
import os
import tempfile
import unittest

import leak_check


class Base64Cores(unittest.TestCase):
    def test_found_inside_any_enclosing_base64(self):
        for n in range(leak_check.MIN_BINARY, 70):
            data = os.urandom(n)
            cores = leak_check.base64_cores(data)
            self.assertTrue(cores)
            for before in range(5):
                for after in range(4):
                    enc = base64.b64encode(os.urandom(before) + data + os.urandom(after))
                    self.assertTrue(any(c in enc for c in cores), (n, before, after))

    def test_short_values_make_no_pattern(self):
        self.assertEqual(leak_check.base64_cores(os.urandom(4)), [])


class Search(unittest.TestCase):
    def run_check(self, stored, secrets):
        with tempfile.TemporaryDirectory() as server, tempfile.TemporaryDirectory() as sec:
            for name, data in stored.items():
                with open(os.path.join(server, name), "wb") as f:
                    f.write(data)
            with open(os.path.join(sec, "s.jsonl"), "w") as f:
                for s in secrets:
                    f.write(json.dumps(s) + "\n")
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = leak_check.main(server, sec)
            return rc, err.getvalue()

    def setUp(self):
        self.key = os.urandom(32)
        self.plant = {"label": "plant", "text": "planted-0123456789abcdef", "expect": "present",
                      "where": ["database", "log"]}
        self.clean = {"homeserver.db": b"db planted-0123456789abcdef", "homeserver.log": b"planted-0123456789abcdef"}

    def secret(self):
        return {"label": "key", "bytes_b64": base64.b64encode(self.key).decode()}

    def test_clean_store_passes(self):
        self.assertEqual(self.run_check(self.clean, [self.plant, self.secret()])[0], 0)

    def test_each_encoding_of_a_key_is_found(self):
        for form in (self.key, self.key.hex().encode(), self.key.hex().upper().encode(),
                     base64.b64encode(b"\x01\x02" + self.key),
                     base64.urlsafe_b64encode(b"\x01" + self.key).rstrip(b"=")):
            stored = dict(self.clean, **{"homeserver.db": self.clean["homeserver.db"] + b'{"k":"' + form + b'"}'})
            rc, err = self.run_check(stored, [self.plant, self.secret()])
            self.assertEqual(rc, 1, form)
            self.assertIn("LEAK: key", err)

    def test_json_escaped_text_is_found(self):
        text = 'a "quoted" plaintext, long enough'
        stored = dict(self.clean, **{"homeserver.log": self.clean["homeserver.log"] + json.dumps(text).encode()})
        rc, err = self.run_check(stored, [self.plant, {"label": "msg", "text": text}])
        self.assertEqual(rc, 1)
        self.assertIn("LEAK: msg", err)

    def test_a_plant_missing_from_one_source_fails(self):
        stored = {"homeserver.db": self.clean["homeserver.db"], "homeserver.log": b"nothing"}
        rc, err = self.run_check(stored, [self.plant, self.secret()])
        self.assertEqual(rc, 1)
        self.assertIn("not found in log", err)

    def test_too_short_a_binary_secret_fails(self):
        short = {"label": "short", "bytes_b64": base64.b64encode(os.urandom(leak_check.MIN_BINARY - 1)).decode()}
        rc, err = self.run_check(self.clean, [self.plant, self.secret(), short])
        self.assertEqual(rc, 1)
        self.assertIn("too short", err)

    def test_no_plant_or_no_secret_fails(self):
        self.assertEqual(self.run_check(self.clean, [self.secret()])[0], 1)
        self.assertEqual(self.run_check(self.clean, [self.plant])[0], 1)


if __name__ == "__main__":
    unittest.main()

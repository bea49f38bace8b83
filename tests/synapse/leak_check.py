#!/usr/bin/env python3
"""Searches what a homeserver kept (its database files and logs) for secrets.

    leak_check.py SERVER_DIR SECRETS_DIR

SECRETS_DIR holds *.jsonl files, one secret a line:

    {"label": "alice msg 3", "text": "..."}            a plaintext (searched as UTF-8 and JSON-escaped)
    {"label": "room key ...", "bytes_b64": "..."}      binary key material, 14 bytes or more (standard base64)
    optional "expect": "absent" (default) or "present" (a planted secret, the self-check)
    optional "where": ["database", "log"]            for "present": every source that must hold it

Every secret, text or binary, is also searched as lower- and upper-case hex and inside base64
(standard and URL-safe, padded or not) at each of the three byte alignments, so a key that
travels wrapped in a longer base64 string (an m.room_key session_key, an export) is still found.

Files under SERVER_DIR: names containing ".db" are the "database" (the file, its -wal,
-journal and -shm), names containing ".log" are the "log"; anything else counts as "other".
The whole of each file is read, free pages and the write-ahead log included.

Exit 0 when no absent secret is found and every planted one is; 1 otherwise. Secret values
are never printed, only labels and where they were found.
"""

import base64
import json
import os
import sys

MIN_PATTERN = 16  # shorter derived patterns would match by chance
MIN_BINARY = 14  # from 14 bytes on, base64 at every alignment leaves a core of MIN_PATTERN characters


def base64_cores(data):
    """Substrings that every base64 encoding of a byte string containing `data` contains,
    one per alignment: the characters that depend only on `data`'s bytes."""
    cores = []
    for lead in range(3):
        enc = base64.b64encode(b"\0" * lead + data)
        start = 4 if lead else 0  # the first group mixes in the bytes before
        end = len(enc) - (4 if (lead + len(data)) % 3 else 0)  # a partial last group, those after
        core = enc[start:end]
        if len(core) >= MIN_PATTERN:
            cores.append(core)
    return cores


def patterns(secret):
    if "text" in secret:
        text = secret["text"]
        raw = text.encode()
        found = [raw, json.dumps(text)[1:-1].encode()]
    else:
        raw = base64.b64decode(secret["bytes_b64"], validate=True)
        found = [raw]
    derived = [raw.hex().encode(), raw.hex().upper().encode()]
    for core in base64_cores(raw):
        derived += [core, core.translate(bytes.maketrans(b"+/", b"-_"))]
    found += [p for p in derived if len(p) >= MIN_PATTERN]
    return list(dict.fromkeys(found))


def source_of(name):
    if ".db" in name:
        return "database"
    if ".log" in name:
        return "log"
    return "other"


def load_secrets(secrets_dir):
    out = []
    for name in sorted(os.listdir(secrets_dir)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(secrets_dir, name)) as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    s = json.loads(line)
                    s.setdefault("expect", "absent")
                    s["origin"] = f"{name}:{n}"
                    out.append(s)
    return out


def main(server_dir, secrets_dir):
    secrets = load_secrets(secrets_dir)
    files = []
    for root, _, names in os.walk(server_dir):
        for name in sorted(names):
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files.append((os.path.relpath(path, server_dir), source_of(name), f.read()))
    size = sum(len(d) for _, _, d in files)
    failures = []
    absent = [s for s in secrets if s["expect"] == "absent"]
    present = [s for s in secrets if s["expect"] == "present"]
    if not present:
        failures.append("no planted secret: nothing proves the search can find anything")
    if not absent:
        failures.append("the scenario recorded no secret to search for")
    if not any(src == "database" for _, src, _ in files):
        failures.append("no database file found under " + server_dir)
    if not any(src == "log" for _, src, _ in files):
        failures.append("no log file found under " + server_dir)
    for s in secrets:
        if "bytes_b64" in s and len(base64.b64decode(s["bytes_b64"])) < MIN_BINARY:
            failures.append(f"{s['label']} ({s['origin']}) is shorter than {MIN_BINARY} bytes: "
                            "too short to search for inside base64")
            continue
        pats = patterns(s)
        hits = {}
        for rel, src, data in files:
            for p in pats:
                at = data.find(p)
                if at >= 0:
                    hits.setdefault(src, []).append(f"{rel}@{at}")
                    break
        if s["expect"] == "absent" and hits:
            where = "; ".join(h for hs in hits.values() for h in hs)
            failures.append(f"LEAK: {s['label']} ({s['origin']}) found in {where}")
        if s["expect"] == "present":
            missing = [w for w in s.get("where", ["database", "log"]) if w not in hits] \
                if s.get("where") else ([] if hits else ["anywhere"])
            if missing:
                failures.append(f"self-check: planted {s['label']} ({s['origin']}) not found in "
                                + ", ".join(missing) + ": the search is broken")
    kinds = {}
    for s in absent:
        kinds["text" if "text" in s else "binary"] = kinds.get("text" if "text" in s else "binary", 0) + 1
    print(f"leak check: searched {len(files)} files ({size / 1e6:.1f} MB: "
          + ", ".join(f"{src} {sum(len(d) for _, s2, d in files if s2 == src) / 1e6:.1f} MB"
                      for src in ("database", "log", "other")
                      if any(s2 == src for _, s2, _ in files))
          + f") for {len(absent)} secrets ({kinds.get('text', 0)} plaintexts, "
          f"{kinds.get('binary', 0)} binary keys) and {len(present)} planted ones")
    for f in failures:
        print("  " + f, file=sys.stderr)
    if failures:
        print("leak check FAILED", file=sys.stderr)
        return 1
    print("leak check passed: every planted secret was found, no other secret was")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))

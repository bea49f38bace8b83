#!/usr/bin/env python3
"""Small helpers for scripts/e2e-synapse.sh (Python standard library only).

    harness.py free-port                      print a free TCP port on 127.0.0.1
    harness.py port-free PORT                 exit 0 when nothing listens on 127.0.0.1:PORT
    harness.py wait-up URL PID SECONDS        wait for URL/_matrix/client/versions (fails if PID dies)
    harness.py register URL SECRET OUT NAME…  register each NAME by shared secret, plus the admin
                                              user "e2e-admin"; random passwords; writes OUT (JSON)
    harness.py plant URL USERS SECRETS_DIR    plant known strings through unencrypted paths and
                                              record them as secrets the leak check must FIND

Every request goes to the loopback URL the script passes in; nothing else is contacted.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ADMIN = "e2e-admin"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def request(url, method="GET", body=None, token=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {url} -> HTTP {e.code}: {e.read()[:500]!r}") from None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by the shell) still answers signal 0.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_up(url, pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            print(f"the server (pid {pid}) exited before answering", file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(url + "/_matrix/client/versions", timeout=2) as r:
                if r.status == 200:
                    return 0
        except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout):
            pass
        time.sleep(0.2)
    print(f"the server did not answer {url} within {seconds} s", file=sys.stderr)
    return 1


def register(url, shared_secret, out, names):
    endpoint = url + "/_synapse/admin/v1/register"
    users = {}
    for name in [*names, ADMIN]:
        admin = name == ADMIN
        password = secrets.token_urlsafe(18)
        nonce = request(endpoint)["nonce"]
        mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
        for part in (nonce.encode(), name.encode(), password.encode()):
            mac.update(part)
            mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        reply = request(endpoint, "POST", {
            "nonce": nonce, "username": name, "password": password,
            "admin": admin, "mac": mac.hexdigest(),
            "inhibit_login": True,  # no device: every device in the test is made by a client
        })
        users[name] = {"user_id": reply["user_id"], "password": password, "admin": admin}
    with open(out, "w") as f:
        json.dump({"users": users, "admin": ADMIN}, f, indent=2)
    return 0


def plant(url, users_file, secrets_dir):
    """Send known strings where the server stores them in the clear, and record them with
    expect=present: if the leak check cannot find these, it proves nothing about the rest."""
    with open(users_file) as f:
        admin = json.load(f)["users"][ADMIN]
    c = url + "/_matrix/client/v3"
    token = request(c + "/login", "POST", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": ADMIN},
        "password": admin["password"], "device_id": "PLANTER",
    })["access_token"]
    text = "planted-room-message-" + secrets.token_hex(16)
    name = "planted-display-name-" + secrets.token_hex(16)
    raw = secrets.token_bytes(48)
    # The key-shaped plant is sent base64-encoded one byte off a 3-byte boundary, so finding
    # it proves the search sees a binary secret inside base64 at any alignment.
    wrapped = base64.b64encode(b"\x07" + raw + b"\x09").decode()
    room = request(c + "/createRoom", "POST", {"preset": "private_chat"}, token)["room_id"]
    txn = secrets.token_hex(8)
    request(f"{c}/rooms/{urllib.parse.quote(room)}/send/m.room.message/{txn}", "PUT",
            {"msgtype": "m.text", "body": text, "planted_key": wrapped}, token)
    request(f"{c}/profile/{urllib.parse.quote(admin['user_id'])}/displayname", "PUT",
            {"displayname": name}, token)
    request(c + "/logout", "POST", {}, token)
    os.makedirs(secrets_dir, exist_ok=True)
    with open(os.path.join(secrets_dir, "harness-plants.jsonl"), "w") as f:
        for label, rec in (("planted unencrypted room message", {"text": text}),
                           ("planted display name", {"text": name}),
                           ("planted binary value (base64, off-alignment)",
                            {"bytes_b64": base64.b64encode(raw).decode()})):
            # Stored rows are in the database file, and every stored value passes through
            # the SQL log (synapse.storage.SQL at DEBUG): the plants must be in both.
            f.write(json.dumps({"label": label, "expect": "present",
                                "where": ["database", "log"], **rec}) + "\n")
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "free-port":
        print(free_port())
        return 0
    if cmd == "port-free":
        return 0 if port_free(int(args[0])) else 1
    if cmd == "wait-up":
        return wait_up(args[0], int(args[1]), float(args[2]))
    if cmd == "register":
        return register(args[0], args[1], args[2], args[3:])
    if cmd == "plant":
        return plant(args[0], args[1], args[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Measures the cost of the bindings: an event encrypted by one endpoint and
decrypted by another, called from Python, against the same operation run
natively in Rust (roomseal.native_event_round_trip_ns), in one process run;
and a trivial call (Endpoint.device_id), whose native cost
benches/ffi_calls.rs measures.

    PROFILE=release scripts/bindings.sh      # build + generate (release)
    PYTHONPATH=bindings/python python3 tests/python/bench_overhead.py

scripts/bench-bindings.sh runs it next to the Rust and Kotlin sides and reads
its `RESULT python <what> <ns>` lines. Not part of the test suite: it times
things.
"""

import json
import time

import roomseal as rs

ROOM = "!bench:x"
N = 5000
TRIVIAL_CALLS = 200_000


def setup():
    alice = rs.Endpoint("@alice:bench", "A")
    bob = rs.Endpoint("@bob:bench", "B")
    upload = bob.keys_to_publish(1)
    bob.mark_keys_as_published(upload)
    device = alice.establish_session(upload.device_keys_json, upload.one_time_keys_json[0])
    alice.set_rotation_policy(2**32 - 1, 10**9)
    outcome = alice.share_room_key(ROOM, [device])
    for m in outcome.messages:
        bob.receive_device_message(alice.user_id(), m.sender_key, m.message)
    alice.mark_room_key_sent(outcome)
    return alice, bob


def python_round_trip_ns(alice, bob, n):
    content = json.dumps({"body": "hello from the benchmark"})
    start = time.perf_counter_ns()
    for i in range(n):
        envelope = alice.encrypt_event(ROOM, "m.room.message", content)
        bob.decrypt_event(ROOM, f"$e{i}", envelope)
    return (time.perf_counter_ns() - start) / n


def python_trivial_call_ns(endpoint, n):
    start = time.perf_counter_ns()
    for _ in range(n):
        endpoint.device_id()
    return (time.perf_counter_ns() - start) / n


def main():
    alice, bob = setup()
    python_round_trip_ns(alice, bob, 200)  # warm up
    rs.native_event_round_trip_ns(200)
    rows = []
    for _ in range(3):
        native = rs.native_event_round_trip_ns(N)
        binding = python_round_trip_ns(alice, bob, N)
        rows.append((native, binding))
    for native, binding in rows:
        print(f"native {native / 1000:8.2f} us   via Python {binding / 1000:8.2f} us   "
              f"overhead {(binding - native) / 1000:6.2f} us ({binding / native:.2f}x)")
    native = min(r[0] for r in rows)
    binding = min(r[1] for r in rows)
    print(f"best of 3: native {native / 1000:.2f} us, Python {binding / 1000:.2f} us per "
          f"encrypt+decrypt, {binding / native:.2f}x")
    trivial = min(python_trivial_call_ns(alice, TRIVIAL_CALLS) for _ in range(3))
    print(f"best of 3: Endpoint.device_id() from Python {trivial:.0f} ns per call")
    print(f"RESULT python trivial_call {trivial:.1f}")
    print(f"RESULT python event_round_trip {binding:.1f}")
    print(f"RESULT python native_event_round_trip {native:.1f}")


if __name__ == "__main__":
    main()

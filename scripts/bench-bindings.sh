#!/usr/bin/env bash
# Measures what a call through the bindings costs, from Python and from
# Kotlin (JNA), against the same work in Rust measured in the same run, and
# prints the sizes of the release libraries. Not run by CI or the tests: it
# times things, on a release build.
#
#   scripts/bench-bindings.sh
#
# Two calls are timed:
#   - trivial_call: Endpoint.device_id() (lock, copy a short string); native
#     side: benches/ffi_calls.rs, calling roomseal::ffi from Rust;
#   - event_round_trip: one event encrypted by one endpoint and decrypted by
#     another, JSON in and out; native side: native_event_round_trip_ns, run
#     inside the same Python or JVM process.
# Each figure is the best of three runs. Steps: PROFILE=release
# scripts/bindings.sh (which also runs the Python suite), cargo bench
# --bench ffi_calls, tests/python/bench_overhead.py, and scripts/kotlin.sh
# with tests/kotlin/BenchOverhead.kt.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROFILE=release

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== Release library and bindings (scripts/bindings.sh)"
./scripts/bindings.sh >"$log" 2>&1 || { cat "$log"; exit 1; }
: >"$log"

echo "== Rust (benches/ffi_calls.rs)"
cargo bench --quiet --locked --features ffi,sqlite --bench ffi_calls | tee -a "$log"
echo "== Python (tests/python/bench_overhead.py)"
PYTHONPATH=bindings/python python3 tests/python/bench_overhead.py | tee -a "$log"
echo "== Kotlin (tests/kotlin/BenchOverhead.kt)"
./scripts/kotlin.sh tests/kotlin/BenchOverhead.kt | tee -a "$log"

result() { awk -v lang="$1" -v what="$2" '$1 == "RESULT" && $2 == lang && $3 == what { print $4 }' "$log"; }
rust_trivial=$(result rust trivial_call)
echo
echo "== Per call, best of 3 (ratio = through the bindings / the same work in Rust)"
printf '%-8s %-18s %8s %12s %12s %14s\n' from call ratio binding_ns rust_ns overhead_ns
for lang in python kotlin; do
  for what in trivial_call event_round_trip; do
    binding=$(result "$lang" "$what")
    if [ "$what" = trivial_call ]; then native=$rust_trivial; else native=$(result "$lang" native_event_round_trip); fi
    awk -v l="$lang" -v w="$what" -v b="$binding" -v n="$native" \
      'BEGIN { printf "%-8s %-18s %7.2fx %12.0f %12.0f %14.0f\n", l, w, b / n, b, n, b - n }'
  done
done

echo
echo "== Release library sizes"
for f in target/release/libroomseal.so target/release/libroomseal.a; do
  stripped=$(mktemp)
  strip --strip-unneeded -o "$stripped" "$f"
  printf '%-32s %6.1f MiB (%6.1f MiB stripped)\n' "$f" \
    "$(awk -v s="$(stat -c %s "$f")" 'BEGIN { print s / 1048576 }')" \
    "$(awk -v s="$(stat -c %s "$stripped")" 'BEGIN { print s / 1048576 }')"
  rm -f "$stripped"
done

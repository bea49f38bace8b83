#!/usr/bin/env bash
# Builds the mobile library (cdylib + staticlib, features `ffi` and `sqlite`:
# the bindings with the durable SQLite store), generates the
# Python, Kotlin and Swift bindings with the in-repository generator, checks
# the Kotlin and Swift sources were produced, and runs the Python test suite.
#
#   scripts/bindings.sh            # debug build, all of the above
#   PROFILE=release scripts/bindings.sh
#
# Outputs: target/<profile>/libroomseal.{so,a}, bindings/python/roomseal.py
# (+ libroomseal.so beside it), bindings/mobile/uniffi/roomseal/roomseal.kt,
# bindings/mobile/roomseal.swift, roomsealFFI.h, roomsealFFI.modulemap; and
# target/python-tests/, the Python bindings of a test build that also exports
# panic probes (feature ffi-test-probes), which the Python suite runs against.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${PROFILE:-debug}"
profile_flag=()
[ "$profile" = "release" ] && profile_flag=(--release)

bindgen() {
  cargo run --quiet --locked --features bindgen --bin uniffi-bindgen -- generate "$1" --no-format "${@:2}"
}
lib="target/$profile/libroomseal.so"
rm -rf bindings target/python-tests

# The Python suite runs against a build that also exports the test-only panic
# probes (feature ffi-test-probes). It is built first, so that the library
# left in target/<profile> is the product build below.
echo "== Building the test library ($profile: features ffi-test-probes, sqlite)"
cargo rustc --locked --lib --features ffi-test-probes,sqlite "${profile_flag[@]}" --crate-type cdylib
bindgen "$lib" --language python --out-dir target/python-tests
cp "$lib" target/python-tests/

echo "== Building the mobile library ($profile: cdylib + staticlib, features ffi, sqlite)"
cargo rustc --locked --lib --features ffi,sqlite "${profile_flag[@]}" --crate-type cdylib,staticlib
test -f "$lib" && test -f "target/$profile/libroomseal.a"

echo "== Generating Python, Kotlin and Swift sources"
bindgen "$lib" --language python --out-dir bindings/python
bindgen "$lib" --language kotlin --language swift --out-dir bindings/mobile
cp "$lib" bindings/python/

for f in bindings/python/roomseal.py \
         bindings/mobile/uniffi/roomseal/roomseal.kt \
         bindings/mobile/roomseal.swift \
         bindings/mobile/roomsealFFI.h \
         bindings/mobile/roomsealFFI.modulemap; do
  if [ ! -s "$f" ]; then echo "missing generated file: $f" >&2; exit 1; fi
  echo "  generated $f ($(wc -c < "$f") bytes)"
done
grep -q "class Endpoint" bindings/mobile/uniffi/roomseal/roomseal.kt
grep -q "class Endpoint" bindings/mobile/roomseal.swift
grep -q "class DurableEndpoint" bindings/mobile/uniffi/roomseal/roomseal.kt
grep -q "class MatrixMachine" bindings/mobile/uniffi/roomseal/roomseal.kt
grep -q "class MatrixMachine" bindings/mobile/roomseal.swift
grep -q "class DurableMatrixMachine" bindings/mobile/uniffi/roomseal/roomseal.kt
grep -q "class DurableMatrixMachine" bindings/mobile/roomseal.swift
if grep -q "test_probe\|testProbe" bindings/python/roomseal.py bindings/mobile/roomseal.swift bindings/mobile/uniffi/roomseal/roomseal.kt; then
  echo "the product bindings export a test probe" >&2; exit 1
fi

echo "== Python test suite (standard library only)"
echo "   (the two 'deliberate panic' messages below are the panic probes, expected)"
RUST_BACKTRACE=0 PYTHONPATH=target/python-tests python3 -m unittest discover -s tests/python -v

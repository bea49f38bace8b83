#!/usr/bin/env bash
# Builds the mobile library (cdylib + staticlib, feature `ffi`), generates the
# Python, Kotlin and Swift bindings with the in-repository generator, checks
# the Kotlin and Swift sources were produced, and runs the Python test suite.
#
#   scripts/bindings.sh            # debug build, all of the above
#   PROFILE=release scripts/bindings.sh
#
# Outputs: target/<profile>/libroomseal.{so,a}, bindings/python/roomseal.py
# (+ libroomseal.so beside it), bindings/mobile/uniffi/roomseal/roomseal.kt,
# bindings/mobile/roomseal.swift, roomsealFFI.h, roomsealFFI.modulemap.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${PROFILE:-debug}"
profile_flag=()
[ "$profile" = "release" ] && profile_flag=(--release)

echo "== Building the mobile library ($profile: cdylib + staticlib, feature ffi)"
cargo rustc --locked --lib --features ffi "${profile_flag[@]}" --crate-type cdylib,staticlib
lib="target/$profile/libroomseal.so"
test -f "$lib" && test -f "target/$profile/libroomseal.a"

bindgen() {
  cargo run --quiet --locked --features bindgen --bin uniffi-bindgen -- generate "$lib" --no-format "$@"
}

echo "== Generating Python, Kotlin and Swift sources"
rm -rf bindings
bindgen --language python --out-dir bindings/python
bindgen --language kotlin --language swift --out-dir bindings/mobile
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

echo "== Python test suite (standard library only)"
PYTHONPATH=bindings/python python3 -m unittest discover -s tests/python -v

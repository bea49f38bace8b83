#!/usr/bin/env bash
# Runs the Element interop harness (tests/element): Element's crypto engine
# (@matrix-org/matrix-sdk-crypto-wasm, pinned by package-lock.json) under
# Node 20 or later, beside a roomseal peer built from examples/matrix_peer.rs.
#
#   scripts/element-interop.sh            all tests
#   ROUNDS=200 scripts/element-interop.sh more events in the room test
#
# The npm packages are installed with `npm ci` from the lockfile into
# tests/element/node_modules (gitignored), once: later runs reuse them and
# need no network (the wasm ships inside the package).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
harness="$root/tests/element"

command -v node >/dev/null || { echo "element-interop: node is not installed" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "element-interop: Node 20 or later is needed (found $(node --version))" >&2
  exit 1
fi

lock_hash="$(sha256sum "$harness/package-lock.json" | cut -d' ' -f1)"
stamp="$harness/node_modules/.roomseal-lock-hash"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  echo "element-interop: npm ci (from package-lock.json)"
  (cd "$harness" && npm ci --no-audit --no-fund --prefer-offline)
  echo "$lock_hash" > "$stamp"
fi

echo "element-interop: building the roomseal peer"
(cd "$root" && cargo build --quiet --example matrix_peer)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
export ROOMSEAL_PEER="$target_dir/debug/examples/matrix_peer"

cd "$harness"
node --test --test-reporter=spec test/

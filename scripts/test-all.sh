#!/usr/bin/env bash
# Every test of the project, in one command (the README's test command).
# Needs: a Rust toolchain (cargo), python3, and Node.js 20 with npm. On first
# use the scripts install, into gitignored directories: the Kotlin compiler
# (npm, .tools/), JNA and, if missing, a Java runtime (apt), Element's crypto
# engine (npm) and Synapse (PyPI). .ci/run installs what a fresh machine lacks
# and then calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust: unit, property, integration, fuzz-corpus replay and doc tests"
cargo test --all-features --locked

echo "== Rust: the build without default features (no parallel sharing)"
cargo test --no-default-features --locked --lib --quiet

echo "== Mobile bindings: build, generate Python/Kotlin/Swift, Python test suite"
./scripts/bindings.sh

echo "== Kotlin bindings: the scenario compiled with kotlinc and run on the JVM (JNA)"
./scripts/kotlin.sh

echo "== Swift bindings (no Swift compiler here): C symbols against libroomseal.a, the C header in a C program"
./scripts/swift-check.sh

echo "== Element interop: roomseal's Matrix endpoint and Element's crypto engine in one room (Node, in-memory server)"
./scripts/element-interop.sh

echo "== End to end against a real Synapse on 127.0.0.1 (Element's crypto engine under Node; leak check)"
./scripts/e2e-synapse.sh

echo "== End to end against a real Synapse: two roomseal clients over HTTP and Element's engine in one room (leak check)"
cargo build --locked --quiet --example synapse_client
./scripts/e2e-synapse.sh node tests/synapse/mixed_scenario.mjs

echo "== All tests passed"

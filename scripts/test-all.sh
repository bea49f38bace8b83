#!/usr/bin/env bash
# Every test of the project, in one command (the README's test command).
# Needs: a Rust toolchain (cargo), python3, and Node.js 20 with npm (the Synapse
# end-to-end test installs Synapse from PyPI and Element's crypto engine from npm
# into gitignored directories). .ci/run installs what a fresh machine lacks and
# then calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust: unit, property, integration, fuzz-corpus replay and doc tests"
cargo test --all-features --locked

echo "== Rust: the build without default features (no parallel sharing)"
cargo test --no-default-features --locked --lib --quiet

echo "== Mobile bindings: build, generate Python/Kotlin/Swift, Python test suite"
./scripts/bindings.sh

echo "== End to end against a real Synapse on 127.0.0.1 (Element's crypto engine under Node; leak check)"
./scripts/e2e-synapse.sh

echo "== All tests passed"

#!/usr/bin/env bash
# Every test of the project, in one command (the README's test command).
# Needs: a Rust toolchain (cargo) and python3. .ci/run installs what a fresh
# machine lacks and then calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust: unit, property, integration, fuzz-corpus replay and doc tests"
cargo test --all-features --locked

echo "== Rust: the build without default features (no parallel sharing)"
cargo test --no-default-features --locked --lib --quiet

echo "== Mobile bindings: build, generate Python/Kotlin/Swift, Python test suite"
./scripts/bindings.sh

echo "== All tests passed"

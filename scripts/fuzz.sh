#!/usr/bin/env bash
# Runs every cargo-fuzz target (or the ones named) for a bounded time on the
# nightly toolchain, installing cargo-fuzz if it is missing.
#
#   scripts/fuzz.sh                 # 20 s per target (the CI smoke run)
#   scripts/fuzz.sh 600             # 10 minutes per target
#   JOBS=2 scripts/fuzz.sh 600      # two targets at a time (one per core)
#   scripts/fuzz.sh 60 group_decrypt endpoint_receive
#
# A crash fails the run and is copied to fuzz/regressions/<target>/, which
# the stable test `cargo test --test fuzz_corpus` replays from then on:
# commit it together with the fix. Without a nightly toolchain the run is
# skipped with a message; the stable corpus replay still runs in the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
[ $# -gt 0 ] && shift
jobs="${JOBS:-1}"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain on this machine: fuzzing skipped."
  echo "fuzz: the seed and regression corpora are still replayed on stable by 'cargo test --test fuzz_corpus'."
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "fuzz: building ${#targets[@]} targets (nightly, ASan)"
cargo +nightly fuzz build

logs=$(mktemp -d)
run_one() {
  local t="$1"
  mkdir -p "fuzz/corpus/$t"
  local dirs=("fuzz/corpus/$t" "fuzz/seeds/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  if cargo +nightly fuzz run "$t" "${dirs[@]}" -- \
      -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 >"$logs/$t.log" 2>&1; then
    echo ok >"$logs/$t.status"
  else
    echo crash >"$logs/$t.status"
    mkdir -p "fuzz/regressions/$t"
    cp fuzz/artifacts/"$t"/* "fuzz/regressions/$t/" 2>/dev/null || true
  fi
}

running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=0
printf '%-26s %14s %10s %8s  %s\n' target executions exec/s seconds result
for t in "${targets[@]}"; do
  log="$logs/$t.log"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  status=$(cat "$logs/$t.status" 2>/dev/null || echo missing)
  printf '%-26s %14s %10s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$seconds" "$status"
  if [ "$status" != ok ]; then
    failed=1
    echo "---- $t (last lines of its log; input saved under fuzz/regressions/$t/)"
    tail -n 40 "$log"
  fi
done
rm -rf "$logs"
exit "$failed"

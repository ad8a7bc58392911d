#!/usr/bin/env bash
# Benchmark (issue 4, artifact shipping): W worker processes on loopback run a suite whose files
# are a 64 MiB data file plus an executable with two build-tree libraries. Side by side:
#   shared-fs  workers see the coordinator's files and run them in place (hashes checked): the
#              baseline, no bytes shipped
#   cold       each worker has an empty cache of its own: every worker fetches every blob
#   warm       the same caches again: nothing to fetch
# Prints each run's wall time (coordinator start to exit), its ratio to the baseline, and the
# shipping throughput of the cold run.
#   bench/artifacts.sh [WORKERS=4] [MIB=64] [TESTS=40]     (BUILD_DIR=build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
workers="${1:-4}"
mib="${2:-64}"
tests="${3:-40}"
testfarm="$(realpath "$build/cli/testfarm")"
exe="$(realpath "$build/tests/fixtures/bin/tf_uses_deps")"
[ -x "$testfarm" ] || { echo "build first: cmake --build $build" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# A history of its own: runs here neither grow the repository's nor are ordered by it.
export TESTFARM_HISTORY="$work/history.sqlite"

head -c "$((mib << 20))" /dev/urandom >"$work/big.bin"
for i in $(seq "$tests"); do
  printf '[[suite]]\nname = "t%03d"\ncommand = "%s"\ndata = ["big.bin"]\n\n' "$i" "$exe"
done >"$work/testfarm.toml"

run() {  # label worker-extra-args...
  local label=$1; shift
  local out="$work/$label.out"
  local start end endpoint=""
  start=$(date +%s.%N)
  "$testfarm" --log-level warn run --listen 'tcp://127.0.0.1:*' --local-slots 0 \
    --min-workers "$workers" --manifest "$work/testfarm.toml" >"$out" 2>&1 &
  local coordinator=$!
  for _ in $(seq 400); do
    endpoint=$(grep -o 'tcp://127.0.0.1:[0-9]*' "$out" | head -1 || true)
    [ -n "$endpoint" ] && break
    sleep 0.02
  done
  pids=()
  for w in $(seq "$workers"); do
    "$testfarm" --log-level warn worker --connect "$endpoint" --slots 2 --once --name "w$w" \
      --cache-dir "$work/cache$w" "$@" &
    pids+=($!)
  done
  wait "$coordinator" || { echo "$label: the run failed:" >&2; cat "$out" >&2; exit 1; }
  end=$(date +%s.%N)
  wait "${pids[@]}" 2>/dev/null || true
  echo "$end - $start" | bc -l
}

shared=$(run shared --shared-fs)
rm -rf "$work"/cache*
cold=$(run cold)
warm=$(run warm)
shipped=$(( workers * (mib << 20) ))
printf '%d tests, each needing a %d MiB data file + executable + 2 libraries; %d workers x 2 slots\n' \
  "$tests" "$mib" "$workers"
printf '  shared-fs (baseline, run in place): %6.2fs\n' "$shared"
printf '  cold caches (every worker fetches):  %6.2fs  %.2fx baseline, %d MiB shipped, %.0f MiB/s\n' \
  "$cold" "$(echo "$cold / $shared" | bc -l)" "$((shipped >> 20))" \
  "$(echo "($shipped / 1048576) / $cold" | bc -l)"
printf '  warm caches (nothing to fetch):      %6.2fs  %.2fx baseline\n' \
  "$warm" "$(echo "$warm / $shared" | bc -l)"

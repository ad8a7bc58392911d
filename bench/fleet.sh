#!/usr/bin/env bash
# Benchmark (issue 4): W worker processes on loopback with S slots each run sleep tests, so two
# cores can stand in for a wide fleet. Prints the makespan against the ideal (total test time /
# total slots) and the efficiency (ideal / makespan), and — in a second run — how long after a
# worker's SIGKILL its tests were running elsewhere.
#   bench/fleet.sh [WORKERS=32] [SLOTS=4] [TESTS=1280] [SLEEP_MS=500]     (BUILD_DIR=build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
workers="${1:-32}"
slots="${2:-4}"
tests="${3:-1280}"
sleep_ms="${4:-500}"
testfarm="$(realpath "$build/cli/testfarm")"
sleeper="$(realpath "$build/tests/fixtures/bin/tf_sleep")"
[ -x "$testfarm" ] || { echo "build first: cmake --build $build" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
# A history of its own: runs here neither grow the repository's nor are ordered by it.
export TESTFARM_HISTORY="$work/history.sqlite"

manifest() {  # count
  for i in $(seq "$1"); do
    printf '[[suite]]\nname = "sleep%04d"\ncommand = "%s"\nargs = ["%s"]\n\n' "$i" "$sleeper" "$sleep_ms"
  done
}
manifest "$tests" >"$work/testfarm.toml"
manifest 16 >"$work/small.toml"

# Starts a coordinator in the background; sets $coordinator and $endpoint.
start_coordinator() {  # output-file manifest extra-args...
  local out=$1 manifest=$2; shift 2
  "$testfarm" --log-level warn run --listen 'tcp://127.0.0.1:*' --local-slots 0 --manifest "$manifest" \
    --timeout 60s "$@" >"$out" 2>&1 &
  coordinator=$!
  endpoint=""
  for _ in $(seq 200); do
    endpoint=$(grep -o 'tcp://127.0.0.1:[0-9]*' "$out" | head -1 || true)
    [ -n "$endpoint" ] && break
    sleep 0.05
  done
}

start_workers() {  # endpoint count
  for i in $(seq "$2"); do
    "$testfarm" --log-level warn worker --connect "$1" --slots "$slots" --once --name "w$i" \
      --cache-dir "$work/cache" &
    pids+=($!)
  done
}

# 1. Efficiency.
start_coordinator "$work/run1.out" "$work/testfarm.toml" --min-workers "$workers" --json "$work/run1.json"
start_workers "$endpoint" "$workers"
wait "$coordinator" || true
# Makespan: first test start to last test end, from the JSON report.
makespan_ms=$(awk -F': ' '/"started_ms"/ {v=$2+0; if (min=="" || v<min) min=v}
                          /"finished_ms"/ {v=$2+0; if (v>max) max=v} END {print max-min}' "$work/run1.json")
summary=$(tail -n 1 "$work/run1.out")
case "$summary" in
  "$tests passed, 0 failed") ;;
  *) echo "not every test passed: $summary" >&2; grep -v '^PASS' "$work/run1.out" >&2; exit 1 ;;
esac
ideal_ms=$(echo "$tests * $sleep_ms / ($workers * $slots)" | bc -l)
printf '%d tests x %d ms on %d workers x %d slots: %s\n' "$tests" "$sleep_ms" "$workers" "$slots" "$summary"
printf '  makespan %.2fs (first test start to last test end), ideal %.2fs, efficiency %.3f (target >= 0.90)\n' \
  "$(echo "$makespan_ms / 1000" | bc -l)" "$(echo "$ideal_ms / 1000" | bc -l)" \
  "$(echo "$ideal_ms / $makespan_ms" | bc -l)"

# 2. Requeue latency: kill one of two workers mid-run; its tests show up again elsewhere.
pids=()
start_coordinator "$work/run2.out" "$work/small.toml" --min-workers 2 --heartbeat 1s --liveness 3
start_workers "$endpoint" 2
for _ in $(seq 400); do grep -q '^PASS' "$work/run2.out" && break; sleep 0.05; done
kill -9 "${pids[0]}"
killed_at=$(date +%s.%N)
# The coordinator logs (warn) the moment it declares the worker lost and requeues its tests; the
# line is timed as it appears (to 10 ms).
requeued_at=""
for _ in $(seq 1000); do
  if grep -q 'requeueing its jobs' "$work/run2.out"; then requeued_at=$(date +%s.%N); break; fi
  sleep 0.01
done
wait "$coordinator" || true
[ -n "$requeued_at" ] || { echo "the lost worker's tests were never requeued" >&2; exit 1; }
echo "  after SIGKILL of one of 2 workers: $(tail -n 1 "$work/run2.out")"
printf '  death to requeue: %.2fs (heartbeat 1s x liveness 3)\n' "$(echo "$requeued_at - $killed_at" | bc -l)"

#!/usr/bin/env bash
# Benchmark (issue 13): the real coordinator against simulated workers (bench/sim_workers: K
# workers x 16 slots in one process, speaking the protocol over TCP loopback, running nothing).
# The tests are the cases of tests/fixtures/bin/tf_gtest_many (TF_GTEST_CASES of them), listed
# and planned as a user's run would be.
#
# For each K in WORKERS and each job length in JOB_MS, prints:
#   jobs/s sustained (from the first assignment to the last result, on the workers' side),
#   p50/p99 time from a slot freeing to its next assignment (0 when a job was sent ahead),
#   the coordinator's CPU per job (user + system over the whole run, listing included),
#   its peak RSS, and memory per stored result: the peak above that of the same set-up (same
#   workers, same mode) running only BASE_TESTS tests (default 100), divided by the tests, so the
#   fleet's fixed cost (a connection and its buffers per worker) is not counted per result.
# MODE=listen (default) measures `run --listen`; MODE=serve a farm with 4 runs submitted at once
# (the farm's CPU and RSS; the clients plan and write reports on their own).
#   bench/scale.sh [TESTS=100000]   (BUILD_DIR=build, WORKERS="10 100 1000", JOB_MS="0 1",
#                                    SLOTS=16, CURVE=0|1, MODE=listen|serve, BASE_TESTS=100)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build="${BUILD_DIR:-build}"
tests="${1:-100000}"
workers_list="${WORKERS:-10 100 1000}"
job_ms_list="${JOB_MS:-0 1}"
slots="${SLOTS:-16}"
curve="${CURVE:-0}"
mode="${MODE:-listen}"
base_tests="${BASE_TESTS:-100}"
testfarm="$(realpath "$build/cli/testfarm")"
sim="$(realpath "$build/bench/sim_workers")"
many="$(realpath "$build/tests/fixtures/bin/tf_gtest_many")"
for f in "$testfarm" "$sim" "$many"; do
  [ -x "$f" ] || { echo "build first: cmake --build $build ($f)" >&2; exit 2; }
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# A history of its own: runs here neither grow the repository's nor are ordered by it.
export TESTFARM_HISTORY="$work/history.sqlite"


keys=() sim_keys=() client_keys=()
if [ "$curve" = 1 ]; then
  "$testfarm" keygen "$work/farm" >/dev/null
  "$testfarm" keygen "$work/worker" >/dev/null
  "$testfarm" keygen "$work/client" >/dev/null
  keys=(--key "$work/farm.key" --worker-keys "$work/worker.pub")
  sim_keys=(--server-key "$work/farm.pub" --key "$work/worker.key")
  client_keys=(--key "$work/client.key" --farm-key "$work/farm.pub")
fi

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$2"; }  # key file

printf '%s, %d tests (1 per case of one gtest binary), %d slots per worker, CURVE %s\n' \
  "$mode" "$tests" "$slots" "$([ "$curve" = 1 ] && echo on || echo off)"
printf '%7s %6s %10s %9s %9s %12s %10s %10s %12s\n' workers job_ms 'jobs/s' 'p50 ms' 'p99 ms' \
  'CPU ms/job' 'peak MiB' 'base MiB' 'B/result'

start_sim() {  # endpoint workers job_ms; sets $simulator
  "$sim" --connect "$1" --workers "$2" --slots "$slots" --job-ms "$3" "${sim_keys[@]}" \
    >"$work/sim.out" 2>"$work/sim.err" &
  simulator=$!
}

run_listen() {  # workers job_ms tests
  local k=$1 d=$2 n=$3
  TF_GTEST_CASES=$n /usr/bin/time -f '%U %S %M' -o "$work/coord.time" \
    "$testfarm" --log-level warn run --listen 'tcp://127.0.0.1:*' --local-slots 0 \
    --min-workers "$k" --wait-workers 120s "${keys[@]}" "$many" >"$work/coord.out" 2>&1 &
  local coordinator=$!
  pids+=($coordinator)
  local endpoint; endpoint=$(endpoint_of "$work/coord.out")
  start_sim "$endpoint" "$k" "$d"
  wait "$coordinator" || { echo "the run failed:" >&2; tail -5 "$work/coord.out" >&2; exit 1; }
  wait "$simulator"
  read -r user sys peak_kb <"$work/coord.time"
}

run_serve() {  # workers job_ms tests
  local k=$1 d=$2 n=$3
  "$testfarm" --log-level warn serve --listen 'tcp://127.0.0.1:*' --store "$work/store" \
    "${keys[@]}" >"$work/farm.out" 2>&1 &
  local farm=$!
  pids+=($farm)
  local endpoint; endpoint=$(endpoint_of "$work/farm.out")
  start_sim "$endpoint" "$k" "$d"
  for _ in $(seq 600); do
    n=$("$testfarm" status --farm "$endpoint" "${client_keys[@]}" --json 2>/dev/null | grep -c '"busy"' || true)
    [ "$n" -ge "$k" ] && break
    sleep 0.1
  done
  local before; before=$(awk '{print $14 + $15}' "/proc/$farm/stat")
  local clients=()
  for i in 1 2 3 4; do
    TF_GTEST_CASES=$((n / 4)) "$testfarm" --log-level warn run --farm "$endpoint" \
      "${client_keys[@]}" --run-label "scale-$i" "$many" >"$work/client$i.out" 2>&1 &
    clients+=($!)
  done
  for c in "${clients[@]}"; do wait "$c" || { echo "a client failed:" >&2; tail -5 "$work/client$c.out" >&2; }; done
  local after; after=$(awk '{print $14 + $15}' "/proc/$farm/stat")
  local ticks; ticks=$(getconf CLK_TCK)
  user=$(echo "($after - $before) / $ticks" | bc -l); sys=0
  peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$farm/status")
  kill -TERM "$simulator"; wait "$simulator" || true
  kill -TERM "$farm"; wait "$farm" || true
}

for k in $workers_list; do
  for d in $job_ms_list; do
    # The fixed cost of this set-up: the same fleet and mode running only a few tests.
    "run_$mode" "$k" "$d" "$base_tests"
    base_kb=$peak_kb
    "run_$mode" "$k" "$d" "$tests"
    finished=$(field finished "$work/sim.out")
    [ "${finished:-0}" -ge "$tests" ] || { echo "only ${finished:-0} of $tests jobs finished" >&2; cat "$work/sim.err" >&2; exit 1; }
    rate=$(field jobs_per_s "$work/sim.out")
    p50=$(field gap_p50_ms "$work/sim.out")
    p99=$(field gap_p99_ms "$work/sim.out")
    cpu_ms=$(echo "($user + $sys) * 1000 / $finished" | bc -l)
    per_result=$(echo "($peak_kb - $base_kb) * 1024 / ($tests - $base_tests)" | bc -l)
    printf '%7d %6d %10.0f %9.3f %9.3f %12.4f %10.1f %10.1f %12.0f\n' "$k" "$d" "$rate" "$p50" \
      "$p99" "$cpu_ms" "$(echo "$peak_kb / 1024" | bc -l)" "$(echo "$base_kb / 1024" | bc -l)" \
      "$per_result"
  done
done

#!/usr/bin/env bash
# Benchmark (b): the CPU time testfarm itself (coordinator + in-process worker, children
# excluded) uses while every slot runs a 10-second sleep. Compared with the same wall time.
#   bench/idle_cpu.sh [SECONDS=10]      (BUILD_DIR=build, SLOTS=default slots)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
seconds="${1:-10}"
hw=$(nproc)
slots="${SLOTS:-$(( hw / 2 < 1 ? 1 : (hw / 2 > 16 ? 16 : hw / 2) ))}"
testfarm="$build/cli/testfarm"
[ -x "$testfarm" ] || { echo "build first: cmake --build $build" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# A history of its own: runs here neither grow the repository's nor are ordered by it.
export TESTFARM_HISTORY="$dir/history.sqlite"
printf '#!/bin/sh\nexec sleep %s\n' "$seconds" >"$dir/sleep_test"
chmod +x "$dir/sleep_test"
args=()
for _ in $(seq "$slots"); do args+=("$dir/sleep_test"); done

t0=$(date +%s.%N)
"$testfarm" run -j "$slots" --timeout 0 "${args[@]}" >"$dir/out" &
pid=$!
# Sample every thread's time on CPU (schedstat, nanoseconds) until the process exits; a thread's
# last sample stands. Children are separate processes and not counted.
declare -A on_cpu
while [ -d "/proc/$pid/task" ]; do
  for task in /proc/"$pid"/task/*; do
    ns=$(cut -d' ' -f1 "$task/schedstat" 2>/dev/null) && on_cpu[$(basename "$task")]=$ns
  done
  sleep 0.2
done
wait "$pid"
t1=$(date +%s.%N)
tail -n 1 "$dir/out"
total_ns=0
for ns in "${on_cpu[@]}"; do total_ns=$((total_ns + ns)); done
wall=$(echo "$t1 - $t0" | bc -l)
cpu=$(echo "$total_ns / 1000000000" | bc -l)
printf '%d slots sleeping %ss: wall %.2fs, testfarm CPU %.4fs (start-up included) = %.3f%% of one core (target < 1%%)\n' \
  "$slots" "$seconds" "$wall" "$cpu" "$(echo "100 * $cpu / $wall" | bc -l)"

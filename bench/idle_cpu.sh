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
printf '#!/bin/sh\nexec sleep %s\n' "$seconds" >"$dir/sleep_test"
chmod +x "$dir/sleep_test"
args=()
for _ in $(seq "$slots"); do args+=("$dir/sleep_test"); done

tck=$(getconf CLK_TCK)
t0=$(date +%s.%N)
"$testfarm" run -j "$slots" --timeout 0 "${args[@]}" >"$dir/out" &
pid=$!
ticks=0
# Sample the process's own utime+stime (fields 14, 15) until it exits; the last sample stands.
while stat=$(cat "/proc/$pid/stat" 2>/dev/null); do
  ticks=$(echo "$stat" | awk '{print $14 + $15}')
  sleep 0.2
done
wait "$pid"
t1=$(date +%s.%N)
tail -n 1 "$dir/out"
wall=$(echo "$t1 - $t0" | bc -l)
cpu=$(echo "$ticks / $tck" | bc -l)
printf '%d slots sleeping %ss: wall %.2fs, testfarm CPU %.3fs = %.3f%% of one core (target < 1%%)\n' \
  "$slots" "$seconds" "$wall" "$cpu" "$(echo "100 * $cpu / $wall" | bc -l)"

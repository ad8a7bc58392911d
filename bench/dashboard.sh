#!/usr/bin/env bash
# Benchmark (dashboard): what the live dashboard costs and how it holds up at scale.
#  (A) scale: the real dashboard server (bench/dashboard_bench) fed as a farm of 128 workers x
#      16 slots running 100,000 tests, with live streams reading and stalled ones not: the event
#      loop's cost per test and per fleet view, API latency while the run goes on, events per
#      stream per second, memory, stalled streams dropped;
#  (B) a real run: N trivial tests (tf_pass) with `--http 127.0.0.1:0` and without, alternating,
#      ROUNDS rounds each after an unmeasured warm-up of each; the median wall times and their
#      ratio (target <= 1.02x).
#   bench/dashboard.sh [ROUNDS=5] [N=1000]   (BUILD_DIR=build, JOBS=2, WORKERS=128, SLOTS=16,
#                                             TESTS=100000, STREAMS=32, STALLED=8, DURATION=10)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
rounds="${1:-${ROUNDS:-5}}"
n="${2:-${N:-1000}}"
jobs="${JOBS:-2}"
testfarm="$(realpath "$build/cli/testfarm")"
passer="$(realpath "$build/tests/fixtures/bin/tf_pass")"
bench="$(realpath "$build/bench/dashboard_bench")"
[ -x "$testfarm" ] && [ -x "$passer" ] && [ -x "$bench" ] ||
  { echo "build first: cmake --build $build" >&2; exit 2; }

echo "== (A) scale"
"$bench" "${WORKERS:-128}" "${SLOTS:-16}" "${TESTS:-100000}" "${STREAMS:-32}" "${STALLED:-8}" \
  "${DURATION:-10}"

echo "== (B) a real run of $n trivial tests, -j $jobs, with and without --http ($rounds rounds)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A history of its own: runs here neither grow the repository's nor are ordered by it.
export TESTFARM_HISTORY="$work/history.sqlite"
for i in $(seq "$n"); do
  printf '[[suite]]\nname = "t%d"\ncommand = "%s"\n\n' "$i" "$passer"
done > "$work/testfarm.toml"
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
one() {  # extra args...
  local t0 t1
  t0=$(now)
  TESTFARM_HISTORY=off "$testfarm" run --manifest "$work/testfarm.toml" -j "$jobs" "$@" \
    > "$work/out" 2>&1
  t1=$(now)
  [ "$(tail -n 1 "$work/out")" = "$n passed, 0 failed" ] ||
    { echo "not every test passed: $(tail -n 1 "$work/out")" >&2; exit 1; }
  echo "$t1 - $t0" | bc -l
}
one > /dev/null
one --http 127.0.0.1:0 > /dev/null
: > "$work/plain"
: > "$work/http"
for _ in $(seq "$rounds"); do
  one >> "$work/plain"
  one --http 127.0.0.1:0 >> "$work/http"
done
plain=$(median < "$work/plain")
http=$(median < "$work/http")
printf "without --http: %.3f s   with --http: %.3f s   ratio %.3fx (median of %d)\n" \
  "$plain" "$http" "$(echo "$http / $plain" | bc -l)" "$rounds"

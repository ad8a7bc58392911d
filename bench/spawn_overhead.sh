#!/usr/bin/env bash
# Benchmark (a): N runs of a trivial test through `testfarm run` versus `xargs -P SLOTS` over the
# same commands, measured side by side (interleaved rounds), with the wall-clock ratio.
#   bench/spawn_overhead.sh [N=1000] [ROUNDS=5]      (BUILD_DIR=build, SLOTS=default slots)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
n="${1:-1000}"
rounds="${2:-5}"
hw=$(nproc)
slots="${SLOTS:-$(( hw / 2 < 1 ? 1 : (hw / 2 > 16 ? 16 : hw / 2) ))}"
exe="$(realpath "$build/tests/fixtures/bin/tf_pass")"
testfarm="$build/cli/testfarm"
[ -x "$exe" ] && [ -x "$testfarm" ] || { echo "build first: cmake --build $build" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
list="$work/list"
# A history of its own: runs here neither grow the repository's nor are ordered by it.
export TESTFARM_HISTORY="$work/history.sqlite"
for _ in $(seq "$n"); do echo "$exe"; done >"$list"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

xargs_times=()
farm_times=()
for r in $(seq "$rounds"); do
  # xargs runs "$exe <n>" once per line: one process per run, as testfarm does (tf_pass ignores args).
  t0=$(now); seq "$n" | xargs -P "$slots" -n 1 "$exe" >/dev/null; t1=$(now)
  xargs_times+=("$(echo "$t1 - $t0" | bc -l)")
  t0=$(now); xargs -a "$list" "$testfarm" run -j "$slots" >/dev/null; t1=$(now)
  farm_times+=("$(echo "$t1 - $t0" | bc -l)")
  printf 'round %d: xargs %.3fs  testfarm %.3fs\n' "$r" "${xargs_times[-1]}" "${farm_times[-1]}"
done
x=$(printf '%s\n' "${xargs_times[@]}" | median)
f=$(printf '%s\n' "${farm_times[@]}" | median)
printf '\n%d runs of tf_pass, %d slots, median of %d interleaved rounds\n' "$n" "$slots" "$rounds"
printf 'xargs -P %d:        %.3fs\n' "$slots" "$x"
printf 'testfarm run -j %d: %.3fs\n' "$slots" "$f"
printf 'ratio testfarm/xargs: %.3f (target <= 1.10)\n' "$(echo "$f / $x" | bc -l)"

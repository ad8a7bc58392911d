#!/usr/bin/env bash
# Benchmark (issue 3): a generated GoogleTest binary with 1000 trivial cases, measured side by
# side (interleaved rounds, medians):
#   testfarm run (one process per case)      vs  xargs -P SLOTS, one process per case
#   testfarm run --isolation batch           vs  ctest -j SLOTS over gtest_discover_tests
#   and the binary run once, all cases in one process (the floor).
#   bench/gtest_suite.sh [ROUNDS=3]     (BUILD_DIR=build, SLOTS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
rounds="${1:-3}"
slots="${SLOTS:-2}"
bin="$(realpath "$build/tests/fixtures/bin/tf_gtest_1000")"
source="$(realpath "$build/tests/fixtures/gtest/tf_gtest_1000.cc")"
testfarm="$build/cli/testfarm"
[ -x "$bin" ] && [ -x "$testfarm" ] || { echo "build first: cmake --build $build" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A history of its own: runs here neither grow the repository's nor are ordered by it.
export TESTFARM_HISTORY="$work/history.sqlite"

# The same 1000 cases registered with CTest through gtest_discover_tests.
mkdir -p "$work/ctest"
cp "$source" "$work/ctest/cases.cc"
cat >"$work/ctest/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.20)
project(bench_ctest CXX)
find_package(GTest REQUIRED)
include(GoogleTest)
enable_testing()
add_executable(cases cases.cc)
target_compile_options(cases PRIVATE -O0 -g0)
target_link_libraries(cases PRIVATE GTest::gtest_main)
gtest_discover_tests(cases)
CMAKE
echo "building the CTest comparison project..." >&2
cmake -S "$work/ctest" -B "$work/ctest/build" -G Ninja >/dev/null
cmake --build "$work/ctest/build" >/dev/null
registered=$(ctest --test-dir "$work/ctest/build" -N | awk '/Total Tests:/ {print $3}')

"$bin" --gtest_list_tests | awk '/^[^ ]/ {suite=$1} /^  / {print suite $1}' >"$work/cases"
cases=$(wc -l <"$work/cases")

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A times
measure() {  # name command...
  local name=$1; shift
  local t0 t1
  t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now)
  times[$name]+="$(echo "$t1 - $t0" | bc -l) "
}

for r in $(seq "$rounds"); do
  measure once "$bin"
  measure xargs xargs -a "$work/cases" -P "$slots" -I CASE "$bin" --gtest_filter=CASE
  measure per_case "$testfarm" run -j "$slots" "$bin"
  measure ctest ctest --test-dir "$work/ctest/build" -j "$slots"
  measure batch "$testfarm" run -j "$slots" --isolation batch "$bin"
  echo "round $r done" >&2
done

m() { printf '%s\n' ${times[$1]} | median; }
once=$(m once); xa=$(m xargs); pc=$(m per_case); ct=$(m ctest); ba=$(m batch)
printf '%d cases (%s registered with CTest), %d slots, median of %d interleaved rounds\n' \
  "$cases" "$registered" "$slots" "$rounds"
printf '  binary once, in one process:      %8.3fs\n' "$once"
printf '  xargs -P %d, one process per case: %8.3fs\n' "$slots" "$xa"
printf '  testfarm run (per case):          %8.3fs   %.3fx xargs (target <= 1.10)\n' "$pc" "$(echo "$pc / $xa" | bc -l)"
printf '  ctest -j %d (gtest_discover_tests): %8.3fs\n' "$slots" "$ct"
printf '  testfarm run --isolation batch:   %8.3fs   %.4fx ctest (target <= 0.05)\n' "$ba" "$(echo "$ba / $ct" | bc -l)"

#!/usr/bin/env bash
# Benchmark (issue 5): the same suite of instrumented processes with and without --coverage,
# side by side (interleaved, median of R rounds). The binary is generated with F functions
# (default 8000, like a mid-sized library) and built with clang++ -fprofile-instr-generate
# -fcoverage-mapping; the suite runs it T times (default 1000), so a coverage run merges T raw
# profiles. Without --coverage the processes still write their profile (default.profraw in the
# working directory): that is what running an instrumented build costs anyway.
# Prints both wall times, the ratio (target <= 1.15) and how long after the last test
# coverage.json was written (target <= 1 s).
#   bench/coverage.sh [TESTS=1000] [FUNCTIONS=8000] [ROUNDS=3] [JOBS=2]     (BUILD_DIR=build)
# GTEST=1 (issue 13): a GoogleTest binary of TESTS cases (default 500) over an instrumented
# shared library of FUNCTIONS functions (default 2000), one process per case, as most C++ projects' tests are:
# each process writes two profiles (the executable's and the library's) into its file.
# Target <= 1.10.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
gtest="${GTEST:-0}"
if [ "$gtest" = 1 ]; then tests="${1:-500}"; else tests="${1:-1000}"; fi
if [ "$gtest" = 1 ]; then functions="${2:-2000}"; else functions="${2:-8000}"; fi
rounds="${3:-3}"
jobs="${4:-2}"
testfarm="$(realpath "$build/cli/testfarm")"
[ -x "$testfarm" ] || { echo "build first: cmake --build $build" >&2; exit 2; }
clangxx=$(command -v clang++ || true)
[ -n "$clangxx" ] || { echo "needs clang++" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A history of its own: runs here neither grow the repository's nor are ordered by it.
export TESTFARM_HISTORY="$work/history.sqlite"

if [ "$gtest" = 1 ]; then
  # The library: F functions with a branch each. The tests: case i calls every 7th function
  # from i, and one through a virtual call.
  {
    for i in $(seq 0 $((functions - 1))); do
      echo "int f$i(int x) { if (x % $((i % 7 + 2)) == 0) return x + $i; return x - 1; }"
    done
    echo 'int (*const table[])(int) = {'
    for i in $(seq 0 $((functions - 1))); do echo "  f$i,"; done
    echo '};'
    echo "int call_from(int start) { int s = 0; for (int i = start; i < $functions; i += 7) s += table[i](start); return s; }"
  } >"$work/lib.cc"
  {
    echo '#include <gtest/gtest.h>'
    echo 'int call_from(int start);'
    echo 'struct Shape { virtual ~Shape() = default; virtual int sides() const = 0; };'
    echo 'struct Square : Shape { int sides() const override { return 4; } };'
    for i in $(seq 0 $((tests - 1))); do
      echo "TEST(Generated, Case$i) { Square sq; const Shape& s = sq; EXPECT_EQ(s.sides(), 4); EXPECT_NE(call_from($((i % functions))), 1234567); }"
    done
  } >"$work/cases.cc"
  echo "building an instrumented $tests-case GoogleTest binary over a $functions-function library..." >&2
  mkdir -p "$work/lib"
  "$clangxx" -O0 -fPIC -shared -fprofile-instr-generate -fcoverage-mapping "$work/lib.cc" \
    -o "$work/lib/libbenchcov.so"
  "$clangxx" -O0 -fprofile-instr-generate -fcoverage-mapping "$work/cases.cc" -o "$work/big" \
    -L"$work/lib" -lbenchcov -Wl,-rpath,'$ORIGIN/lib' -lgtest -lgtest_main -pthread
  suite=("$work/big")
else
  # F functions with a branch each; the process calls those selected by its argument.
  {
    echo '#include <cstdlib>'
    for i in $(seq 0 $((functions - 1))); do
      echo "int f$i(int x) { if (x % $((i % 7 + 2)) == 0) return x + $i; return x - 1; }"
    done
    echo 'int main(int argc, char** argv) {'
    echo '  int n = argc > 1 ? std::atoi(argv[1]) : 0; int s = 0;'
    for i in $(seq 0 $((functions - 1))); do echo "  if ((n + $i) % 3 != 0) s += f$i(n);"; done
    echo '  return s == 42424242 ? 1 : 0; }'
  } >"$work/big.cc"
  echo "building a $functions-function instrumented binary..." >&2
  "$clangxx" -O0 -fprofile-instr-generate -fcoverage-mapping "$work/big.cc" -o "$work/big"

  for i in $(seq "$tests"); do
    printf '[[suite]]\nname = "t%04d"\ncommand = "%s"\nargs = ["%d"]\n\n' "$i" "$work/big" "$i"
  done >"$work/testfarm.toml"
  suite=(--manifest "$work/testfarm.toml")
fi

run() {  # label extra-args...
  local label=$1; shift
  local dir="$work/$label"
  rm -rf "$dir" && mkdir -p "$dir"
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && "$testfarm" run -j "$jobs" "${suite[@]}" "$@" >"$dir/out" 2>&1) ||
    { echo "$label failed:" >&2; tail -20 "$dir/out" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

plain=()
coverage=()
after=()
for r in $(seq "$rounds"); do
  plain+=("$(run plain)")
  coverage+=("$(run coverage --coverage="$work/coverage/coverage.json")")
  after+=("$(grep -o 'written [0-9.]*m\?s after' "$work/coverage/out" | awk '{v=$2; if (v ~ /ms$/) {sub(/ms$/,"",v); v/=1000} else sub(/s$/,"",v); print v}')")
done
p=$(printf '%s\n' "${plain[@]}" | median)
c=$(printf '%s\n' "${coverage[@]}" | median)
a=$(printf '%s\n' "${after[@]}" | median)
line=$(grep 'profiles merged' "$work/coverage/out")
if [ "$gtest" = 1 ]; then one=(--gtest_filter=Generated.Case1); else one=(1); fi
LLVM_PROFILE_FILE="$work/one.profraw" "$work/big" "${one[@]}" >/dev/null || true
raw=$(stat -c %s "$work/one.profraw")
if [ "$gtest" = 1 ]; then
  what="GoogleTest cases (one process each) over a %d-function instrumented library"; target=1.10
else
  what="tests of a %d-function instrumented binary"; target=1.15
fi
printf "%d $what (raw profile %.2f MB each), -j %d, median of %d:\n" \
  "$tests" "$functions" "$(echo "$raw / 1000000" | bc -l)" "$jobs" "$rounds"
printf '  without --coverage %.2fs, with %.2fs: %.3fx (target <= %s)\n' "$p" "$c" "$(echo "$c / $p" | bc -l)" "$target"
printf '  coverage.json written %.2fs after the last test (target <= 1 s); %s\n' "$a" "$line"
printf '  coverage.json %d bytes\n' "$(stat -c %s "$work/coverage/coverage.json")"

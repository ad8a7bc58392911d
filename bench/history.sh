#!/usr/bin/env bash
# Benchmark (run history): what the SQLite history of test attempts buys and what it costs.
#  (A) scheduling from history: a skewed suite of sleep tests (a few long ones of unequal
#      length, ~60 short ones of 20-150 ms) with the long tests listed LAST, the worst order for
#      the given list, run twice on SLOTS slots with the same --history: run 1 starts in the given
#      order and fills the history, run 2 is ordered by it (failed last time first, then longest
#      first). Each run's makespan against the lower bound max(longest test, total / SLOTS) from
#      the manifest's sleep values (target: run 2 <= 1.05x the bound);
#  (B) recording overhead: N trivial tests (tf_pass) with --history and with --no-history,
#      alternating, ROUNDS rounds each after one unmeasured warm-up of each; the median wall
#      times and their ratio (target <= 1.02x). The history file persists across the rounds, as
#      it does in use: every measured --history run reads and adds to a filled history.
# Wall times are taken with `date` around the whole `testfarm run` (start, planning, history,
# run, exit); testfarm's own figure is its "N tests in X" line.
#   bench/history.sh [ROUNDS=5] [N=1000]     (BUILD_DIR=build, SLOTS=4 for (A), JOBS=2 for (B),
#                                             LONG_MS="4000 3500 3000 2500", SHORT=60, KEEP=1)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
rounds="${1:-${ROUNDS:-5}}"
n="${2:-${N:-1000}}"
slots="${SLOTS:-4}"
jobs="${JOBS:-2}"
read -r -a long_ms <<<"${LONG_MS:-4000 3500 3000 2500}"
short="${SHORT:-60}"
testfarm="$(realpath "$build/cli/testfarm")"
sleeper="$(realpath "$build/tests/fixtures/bin/tf_sleep")"
passer="$(realpath "$build/tests/fixtures/bin/tf_pass")"
[ -x "$testfarm" ] && [ -x "$sleeper" ] && [ -x "$passer" ] ||
  { echo "build first: cmake --build $build" >&2; exit 2; }

work=$(mktemp -d)
cleanup() { if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
check() {  # output-file expected-count
  local summary; summary=$(tail -n 1 "$1")
  [ "$summary" = "$2 passed, 0 failed" ] || { echo "not every test passed ($1): $summary" >&2; exit 1; }
}
# testfarm's own wall time in seconds, from its "N tests in X" line (X: 412ms, 5.23s or 1m05s).
reported_s() {
  awk '/^[0-9]+ tests in / { x = $4
         if (x ~ /^[0-9]+ms$/) { sub(/ms/, "", x); print x / 1000 }
         else if (x ~ /^[0-9]+m[0-9]+s$/) { split(x, p, "m"); sub(/s/, "", p[2]); print p[1] * 60 + p[2] }
         else { sub(/s/, "", x); print x + 0 } }' "$1" | tail -1
}
# When the first and the last of the long tests started (ms from the run's start, JSON report).
long_starts() {  # json-file
  awk -F': ' '/"name": "long/ {l=1} /"name": "short/ {l=0}
              l && /"started_ms"/ {v=$2+0; if (min=="" || v<min) min=v; if (v>max) max=v}
              END {printf "%d-%d", min, max}' "$1"
}
# From a JSON report: the makespan (first test start to last test end), the lower bound
# max(longest, sum / slots) over the tests' measured slot times (finish - start: spawn and reaping
# included), and the mean excess of those times over the sleep asked for; all in ms.
measured() {  # json-file slots nominal-sum
  awk -F': ' -v slots="$2" -v nominal="$3" '
    /"started_ms"/ {s=$2+0; if (min=="" || s<min) min=s}
    /"finished_ms"/ {f=$2+0; if (f>max) max=f; d=f-s; sum+=d; if (d>longest) longest=d; n++}
    END {b=sum/slots; if (longest>b) b=longest; printf "%d %d %.1f", max-min, b, (sum-nominal)/n}' "$1"
}

# ---- (A) LPT scheduling from history ----------------------------------------------------------
# Short tests first (20-150 ms, varied deterministically), the long ones last.
total_ms=0
longest_ms=0
{
  for i in $(seq 0 $((short - 1))); do
    ms=$((20 + (i * 53) % 131))
    total_ms=$((total_ms + ms))
    printf '[[suite]]\nname = "short%02d"\ncommand = "%s"\nargs = ["%d"]\n\n' "$i" "$sleeper" "$ms"
  done
  for i in "${!long_ms[@]}"; do
    ms=${long_ms[$i]}
    total_ms=$((total_ms + ms))
    [ "$ms" -gt "$longest_ms" ] && longest_ms=$ms
    printf '[[suite]]\nname = "long%d"\ncommand = "%s"\nargs = ["%d"]\n\n' "$i" "$sleeper" "$ms"
  done
} >"$work/skewed.toml"
a_tests=$((short + ${#long_ms[@]}))
bound_ms=$(( longest_ms > (total_ms + slots - 1) / slots ? longest_ms : (total_ms + slots - 1) / slots ))

a_wall=()
a_reported=()
a_long=()
a_span=()
a_mbound=()
a_excess=()
for r in 1 2; do
  t0=$(now)
  "$testfarm" run --local-slots "$slots" -j "$slots" --history "$work/h.sqlite" \
    --manifest "$work/skewed.toml" -q --json "$work/a$r.json" >"$work/a$r.out" 2>&1
  t1=$(now)
  check "$work/a$r.out" "$a_tests"
  a_wall+=("$(echo "$t1 - $t0" | bc -l)")
  a_reported+=("$(reported_s "$work/a$r.out")")
  a_long+=("$(long_starts "$work/a$r.json")")
  read -r span mbound excess <<<"$(measured "$work/a$r.json" "$slots" "$total_ms")"
  a_span+=("$span"); a_mbound+=("$mbound"); a_excess+=("$excess")
done
bound_s=$(echo "$bound_ms / 1000" | bc -l)
ratio() { echo "$1 / $bound_s" | bc -l; }

printf '(A) %d sleep tests on %d slots: %d short (20-150 ms), %d long (%s ms) listed last\n' \
  "$a_tests" "$slots" "$short" "${#long_ms[@]}" "${long_ms[*]}"
printf '    sum %d ms, longest %d ms: bound max(longest, sum/%d) = %.3fs\n' \
  "$total_ms" "$longest_ms" "$slots" "$bound_s"
printf '    %-22s %9s %9s %8s %11s %11s %s\n' run wall testfarm bound wall/bound tf/bound 'long tests started (ms)'
labels=("1 (given order)" "2 (from history)")
for i in 0 1; do
  printf '    %-22s %8.3fs %8.3fs %7.3fs %10.3fx %10.3fx %s\n' "${labels[$i]}" "${a_wall[$i]}" \
    "${a_reported[$i]}" "$bound_s" "$(ratio "${a_wall[$i]}")" "$(ratio "${a_reported[$i]}")" "${a_long[$i]}"
done
a_ratio=$(ratio "${a_wall[1]}")
a_ok=$(echo "$a_ratio <= 1.05" | bc -l)
printf '    run 2: %.3fx the bound (wall): %s the target <= 1.05x; %.3fx faster than run 1\n' \
  "$a_ratio" "$([ "$a_ok" = 1 ] && echo meets || echo MISSES)" "$(echo "${a_wall[0]} / ${a_wall[1]}" | bc -l)"
printf '    from the JSON reports, against the tests'"'"' measured slot times (each %s ms over its sleep on average):\n' \
  "$(printf '%s/' "${a_excess[@]}" | sed 's,/$,,')"
for i in 0 1; do
  printf '    run %d: first start to last end %.3fs, measured bound %.3fs: %.3fx\n' "$((i + 1))" \
    "$(echo "${a_span[$i]} / 1000" | bc -l)" "$(echo "${a_mbound[$i]} / 1000" | bc -l)" \
    "$(echo "${a_span[$i]} / ${a_mbound[$i]}" | bc -l)"
done

# ---- (B) history recording overhead -----------------------------------------------------------
for i in $(seq 0 $((n - 1))); do
  printf '[[suite]]\nname = "t%d"\ncommand = "%s"\n\n' "$i" "$passer"
done >"$work/pass.toml"

run_b() {  # out-file history-args...
  local out=$1; shift
  local t0 t1
  t0=$(now)
  "$testfarm" run -j "$jobs" "$@" --manifest "$work/pass.toml" -q >"$out" 2>&1
  t1=$(now)
  check "$out" "$n"
  echo "$t1 - $t0" | bc -l
}
# Warm-up (unmeasured): the page cache, and a first history so that every measured run reads one.
run_b "$work/b-warm-on.out" --history "$work/h2.sqlite" >/dev/null
run_b "$work/b-warm-off.out" --no-history >/dev/null
on_times=()
off_times=()
printf '\n(B) %d tf_pass tests, -j %d, %d interleaved rounds\n' "$n" "$jobs" "$rounds"
for r in $(seq "$rounds"); do
  # Alternate which goes first, so neither always follows the other.
  if [ $((r % 2)) = 1 ]; then
    on_times+=("$(run_b "$work/b-on.out" --history "$work/h2.sqlite")")
    off_times+=("$(run_b "$work/b-off.out" --no-history)")
  else
    off_times+=("$(run_b "$work/b-off.out" --no-history)")
    on_times+=("$(run_b "$work/b-on.out" --history "$work/h2.sqlite")")
  fi
  printf '    round %d: --history %.3fs  --no-history %.3fs\n' "$r" "${on_times[-1]}" "${off_times[-1]}"
done
on=$(printf '%s\n' "${on_times[@]}" | median)
off=$(printf '%s\n' "${off_times[@]}" | median)
b_ratio=$(echo "$on / $off" | bc -l)
b_ok=$(echo "$b_ratio <= 1.02" | bc -l)
attempts=$(( (rounds + 1) * n ))
printf '    median: --history %.3fs, --no-history %.3fs: %.3fx, %s the target <= 1.02x\n' \
  "$on" "$off" "$b_ratio" "$([ "$b_ok" = 1 ] && echo meets || echo MISSES)"
printf '    (%.2f ms per test; the history held %d attempts by the last round, %s KiB)\n' \
  "$(echo "($on - $off) * 1000 / $n" | bc -l)" "$attempts" \
  "$(( ($(stat -c %s "$work/h2.sqlite") + 1023) / 1024 ))"

# ---- Summary -----------------------------------------------------------------------------------
yes_no() { [ "$1" = 1 ] && echo yes || echo no; }
printf '\n## Run history (%d CPUs)\n\n' "$(nproc)"
printf '| Measure | Result | Target | Met |\n'
printf '|---|---|---|---|\n'
printf '| Skewed suite (%d tests, long last, %d slots): run 1, given order | %.2fs = %.3fx bound (%.2fs) | - | - |\n' \
  "$a_tests" "$slots" "${a_wall[0]}" "$(ratio "${a_wall[0]}")" "$bound_s"
printf '| Same suite, run 2, ordered by history | %.2fs = %.3fx bound (%.3fx of the bound from measured test times) | <= 1.05x | %s |\n' \
  "${a_wall[1]}" "$a_ratio" "$(echo "${a_span[1]} / ${a_mbound[1]}" | bc -l)" "$(yes_no "$a_ok")"
printf '| %d x tf_pass, -j %d: --history vs --no-history (median of %d) | %.3fs vs %.3fs = %.3fx | <= 1.02x | %s |\n' \
  "$n" "$jobs" "$rounds" "$on" "$off" "$b_ratio" "$(yes_no "$b_ok")"
env_prefix=""
[ -n "${BUILD_DIR:-}" ] && env_prefix+="BUILD_DIR=$BUILD_DIR "
[ -n "${SLOTS:-}" ] && env_prefix+="SLOTS=$SLOTS "
[ -n "${JOBS:-}" ] && env_prefix+="JOBS=$JOBS "
[ -n "${LONG_MS:-}" ] && env_prefix+="LONG_MS=\"$LONG_MS\" "
[ -n "${SHORT:-}" ] && env_prefix+="SHORT=$SHORT "
printf '\nProduced by: `%sbench/history.sh %d %d`\n' "$env_prefix" "$rounds" "$n"

#!/usr/bin/env bash
# Benchmark (issue 10): a standing farm against a single run's coordinator, on the same workers.
#  (a) one run of TESTS sleep tests through `testfarm serve` vs the same run with `run --listen`
#      (target: farm <= 1.10x), both as the makespan (first test start to last test end, from the
#      JSON report) and as the client's whole wall time (planning, upload, run, reports);
#  (b) two runs of TESTS/2 submitted at the same moment: each finishes within 10% of the other,
#      and the pair's makespan is within 10% of one run of TESTS (fair, and no capacity lost).
#   bench/farm.sh [WORKERS=8] [SLOTS=4] [TESTS=1000] [SLEEP_MS=100]     (BUILD_DIR=build)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build="${BUILD_DIR:-build}"
workers="${1:-8}"
slots="${2:-4}"
tests="${3:-1000}"
sleep_ms="${4:-100}"
half=$((tests / 2))
testfarm="$(realpath "$build/cli/testfarm")"
sleeper="$(realpath "$build/tests/fixtures/bin/tf_sleep")"
[ -x "$testfarm" ] || { echo "build first: cmake --build $build" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
# A history of its own: runs here neither grow the repository's nor are ordered by it.
export TESTFARM_HISTORY="$work/history.sqlite"

manifest() {  # prefix count
  for i in $(seq "$2"); do
    printf '[[suite]]\nname = "%s%04d"\ncommand = "%s"\nargs = ["%s"]\n\n' "$1" "$i" "$sleeper" "$sleep_ms"
  done
}
manifest t "$tests" >"$work/all.toml"
manifest a "$half" >"$work/a.toml"
manifest b "$half" >"$work/b.toml"

now() { date +%s.%N; }
# Makespan of a JSON report in ms: first test start to last test end.
makespan() {
  awk -F': ' '/"started_ms"/ {v=$2+0; if (min=="" || v<min) min=v}
              /"finished_ms"/ {v=$2+0; if (v>max) max=v} END {print max-min}' "$1"
}
check() {  # output-file expected-count
  local summary; summary=$(tail -n 1 "$1")
  [ "$summary" = "$2 passed, 0 failed" ] || { echo "not every test passed ($1): $summary" >&2; exit 1; }
}

# (a) run --listen: the coordinator waits for every worker, then runs.
"$testfarm" --log-level warn run --listen 'tcp://127.0.0.1:*' --local-slots 0 --manifest "$work/all.toml" \
  --min-workers "$workers" --json "$work/listen.json" >"$work/listen.out" 2>&1 &
coordinator=$!
endpoint=$(endpoint_of "$work/listen.out")
for i in $(seq "$workers"); do
  "$testfarm" --log-level warn worker --connect "$endpoint" --slots "$slots" --once --name "w$i" \
    --cache-dir "$work/cache" &
  pids+=($!)
done
wait "$coordinator" || true
check "$work/listen.out" "$tests"
listen_ms=$(makespan "$work/listen.json")
listen_wall_ms=$(awk '/"wall_ms"/ {gsub(/[^0-9]/, "", $2); print $2}' "$work/listen.json" | tail -1)
wait "${pids[@]}" 2>/dev/null || true
pids=()

# The farm, with the same workers attached for good.
"$testfarm" --log-level warn serve --listen 'tcp://127.0.0.1:*' --store "$work/store" >"$work/farm.out" 2>&1 &
pids+=($!)
farm=$(endpoint_of "$work/farm.out")
for i in $(seq "$workers"); do
  "$testfarm" --log-level warn worker --connect "$farm" --slots "$slots" --name "w$i" \
    --cache-dir "$work/cache" &
  pids+=($!)
done
for _ in $(seq 400); do
  n=$("$testfarm" status --farm "$farm" --json 2>/dev/null | grep -c '"busy"' || true)
  [ "$n" -ge "$workers" ] && break
  sleep 0.05
done
# A first, small run puts the files in the farm's store and the workers' caches, as the
# --listen run did for its workers.
"$testfarm" run --farm "$farm" --manifest "$work/a.toml" >"$work/warm.out" 2>&1
start=$(now)
"$testfarm" run --farm "$farm" --manifest "$work/all.toml" --json "$work/farm.json" >"$work/farm1.out" 2>&1
farm_wall_ms=$(echo "($(now) - $start) * 1000" | bc -l)
check "$work/farm1.out" "$tests"
farm_ms=$(makespan "$work/farm.json")

printf '%d tests x %d ms on %d workers x %d slots\n' "$tests" "$sleep_ms" "$workers" "$slots"
printf '  (a) makespan: run --listen %.2fs, farm %.2fs: %.3fx (target <= 1.10x)\n' \
  "$(echo "$listen_ms / 1000" | bc -l)" "$(echo "$farm_ms / 1000" | bc -l)" \
  "$(echo "$farm_ms / $listen_ms" | bc -l)"
printf '      wall: run --listen %.2fs (its run, from the first worker joining), farm client %.2fs (planning, submission, run, reports): %.3fx\n' \
  "$(echo "$listen_wall_ms / 1000" | bc -l)" "$(echo "$farm_wall_ms / 1000" | bc -l)" \
  "$(echo "$farm_wall_ms / $listen_wall_ms" | bc -l)"

# (b) Two equal runs at once.
start=$(now)
( "$testfarm" run --farm "$farm" --manifest "$work/a.toml" >"$work/a.out" 2>&1; now >"$work/a.end" ) &
ca=$!
( "$testfarm" run --farm "$farm" --manifest "$work/b.toml" >"$work/b.out" 2>&1; now >"$work/b.end" ) &
cb=$!
wait "$ca" "$cb"
check "$work/a.out" "$half"
check "$work/b.out" "$half"
a_s=$(echo "$(cat "$work/a.end") - $start" | bc -l)
b_s=$(echo "$(cat "$work/b.end") - $start" | bc -l)
pair_s=$(echo "if ($a_s > $b_s) $a_s else $b_s" | bc -l)
first_s=$(echo "if ($a_s < $b_s) $a_s else $b_s" | bc -l)
single_s=$(echo "$farm_wall_ms / 1000" | bc -l)
printf '  (b) two runs of %d at once: they end at %.2fs and %.2fs (%.3f apart, target within 0.10);\n' \
  "$half" "$a_s" "$b_s" "$(echo "($pair_s - $first_s) / $pair_s" | bc -l)"
printf '      the pair takes %.2fs against %.2fs for one run of %d: %.3fx (target <= 1.10x)\n' \
  "$pair_s" "$single_s" "$tests" "$(echo "$pair_s / $single_s" | bc -l)"

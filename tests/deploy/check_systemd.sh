#!/usr/bin/env bash
# `systemd-analyze verify` passes on deploy/systemd's units, and their stop timing fits the
# worker's drain. systemd-analyze checks that ExecStart's binary exists, so the units are
# copied to a temporary directory with /usr/local/bin/testfarm replaced by the built binary.
# Any message from systemd-analyze about a unit (an unknown key, a bad value) fails the check.
# Exit 77 (skipped) where systemd-analyze is not installed.
# Usage: check_systemd.sh TESTFARM_BINARY SOURCE_DIR
set -euo pipefail
binary="$1"
root="$2"

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIPPED: systemd-analyze is not installed (Debian package systemd, in scripts/install-deps)"
  exit 77
fi

dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
units=()
for unit in "$root"/deploy/systemd/*.service; do
  sed "s#/usr/local/bin/testfarm#${binary}#g" "$unit" >"$dir/$(basename "$unit")"
  units+=("$dir/$(basename "$unit")")
done
if [ "${#units[@]}" -eq 0 ]; then
  echo "no units in $root/deploy/systemd"
  exit 1
fi

failed=0
output="$(systemd-analyze verify "${units[@]}" 2>&1)" || failed=1
if [ -n "$output" ]; then
  echo "$output"
  failed=1
fi
echo "systemd-analyze verify: ${#units[@]} units, $([ "$failed" -eq 0 ] && echo clean || echo FAILED)"

seconds() { # 40s, 2min, 90 -> seconds
  local v="$1"
  case "$v" in
    *min) echo $((${v%min} * 60)) ;;
    *s) echo "${v%s}" ;;
    *) echo "$v" ;;
  esac
}
for unit in "$root"/deploy/systemd/testfarm-worker*.service; do
  name="$(basename "$unit")"
  drain="$(grep -o -- '--drain-timeout [0-9]*s' "$unit" | awk '{print $2}')"
  stop="$(sed -n 's/^TimeoutStopSec=//p' "$unit")"
  if [ -z "$drain" ] || [ -z "$stop" ]; then
    echo "$name: needs --drain-timeout Ns and TimeoutStopSec="
    failed=1
  elif [ "$(seconds "$stop")" -le "$(seconds "$drain")" ]; then
    echo "$name: TimeoutStopSec=$stop is not longer than --drain-timeout $drain"
    failed=1
  fi
  if ! grep -qx 'KillMode=mixed' "$unit"; then
    echo "$name: without KillMode=mixed, SIGTERM reaches the running tests, not only the worker"
    failed=1
  fi
done

# How exposed each unit is, for the log (systemd's own scoring; not a pass/fail criterion).
for unit in "${units[@]}"; do
  systemd-analyze security --offline=yes "$unit" 2>/dev/null | grep -F 'Overall exposure' || true
done
exit "$failed"

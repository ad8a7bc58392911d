#!/usr/bin/env bash
# One package list: scripts/install-deps.
#  - Each stage of docker/Dockerfile installs with scripts/install-deps (the build stage the
#    whole list, the runtime stage --runtime), and .ci/run uses it too.
#  - No other package installation (apt-get/apt install, dnf, yum, apk add) is written in the
#    Dockerfile, .ci/, scripts/, deploy/ or docs/ (and the README): only install-deps installs.
#  - The --runtime list covers what the built binary links: each DT_NEEDED library resolves
#    (ldd) to a Debian package (dpkg -S) that is in the list, or is libc6 (in every image).
# Usage: check_package_list.sh TESTFARM_BINARY SOURCE_DIR
set -euo pipefail
binary="$1"
root="$2"
cd "$root"
failed=0
fail() { echo "$*"; failed=1; }

# The Dockerfile's stages, each with its install-deps line.
awk '
  /^FROM /   { stage++; name[stage] = $0 }
  /install-deps/ && /^RUN / { uses[stage] = uses[stage] $0 "\n" }
  END {
    if (stage < 2) { print "docker/Dockerfile: expected a build and a runtime stage"; exit 1 }
    for (s = 1; s <= stage; s++) {
      if (uses[s] == "") { print "docker/Dockerfile: stage " s " (" name[s] ") does not RUN scripts/install-deps"; bad = 1 }
    }
    if (uses[stage] !~ /--runtime/) { print "docker/Dockerfile: the runtime stage does not use install-deps --runtime"; bad = 1 }
    if (uses[1] ~ /--runtime/) { print "docker/Dockerfile: the build stage uses install-deps --runtime"; bad = 1 }
    exit bad
  }' docker/Dockerfile || failed=1
grep -q 'scripts/install-deps' .ci/run || fail ".ci/run: does not run scripts/install-deps"

# No second list anywhere.
installs='(apt-get|apt)( +-[^ ]+)* +install|dnf +install|yum +install|apk +add'
mapfile -t files < <(find docker .ci scripts deploy docs README.md -type f ! -path scripts/install-deps 2>/dev/null | sort)
if grep -En "$installs" "${files[@]}"; then
  fail "^ package installation outside scripts/install-deps (add the packages to its lists)"
fi
grep -Eq "$installs" scripts/install-deps || fail "scripts/install-deps: installs nothing?"
echo "${#files[@]} files searched for package installation"

# The runtime list against what the binary links.
mapfile -t runtime < <(bash scripts/install-deps --runtime --list)
in_runtime() { # (a loop, not `printf | grep -q`: grep quitting early fails the pipe)
  local p
  for p in "${runtime[@]}"; do [ "$p" = "$1" ] && return 0; done
  return 1
}
if ! command -v dpkg >/dev/null || ! command -v readelf >/dev/null; then
  echo "SKIPPED: the runtime list against the binary's libraries (needs dpkg and readelf)"
  exit "$failed"
fi
mapfile -t needed < <(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ "${#needed[@]}" -gt 0 ] || fail "$binary: no NEEDED libraries read"
for soname in "${needed[@]}"; do
  case "$soname" in
    libasan.so* | libubsan.so* | liblsan.so* | libtsan.so*)
      echo "$soname: a sanitizer build's runtime (the image is a release build)"
      continue
      ;;
  esac
  path="$(ldd "$binary" | awk -v so="$soname" '$1 == so { print $3 }')"
  if [ -z "$path" ]; then
    fail "$soname: not resolved by ldd"
    continue
  fi
  package="$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1 || true)"
  [ -n "$package" ] || package="$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1 || true)"
  if [ -z "$package" ]; then
    fail "$soname ($path): no Debian package owns it"
  elif [ "$package" = libc6 ] || in_runtime "$package"; then
    echo "$soname: $package"
  else
    fail "$soname: from $package, which scripts/install-deps --runtime does not install"
  fi
done
exit "$failed"

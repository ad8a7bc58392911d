# Shared by the bench scripts (sourced).

# The first loopback endpoint a testfarm process printed to `file`, waited for (up to 30 s).
endpoint_of() {  # output-file
  for _ in $(seq 600); do
    local e; e=$(grep -o 'tcp://127.0.0.1:[0-9]*' "$1" | head -1 || true)
    [ -n "$e" ] && { echo "$e"; return; }
    sleep 0.05
  done
  echo "no endpoint in $1" >&2; cat "$1" >&2; exit 1
}

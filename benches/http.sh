#!/usr/bin/env bash
# End to end over HTTP: wrk against a bare route and the guarded routes, server pinned to one
# core and wrk to the other. Prints requests/s and the ratio to the bare route.
#
#   bash benches/http.sh            (needs wrk: apt-get install wrk; DURATION=10s to change)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench http_server --no-run 2>/dev/null
server=$(ls -t target/release/deps/http_server-* | grep -v '\.d$' | head -1)
duration=${DURATION:-5s}
base_port=$((20000 + RANDOM % 20000))
printf '%-6s %-10s %12s %8s\n' alg route 'req/s' ratio
index=0
for alg in HS256 RS256 ES256 EdDSA; do
  port=$((base_port + index)); index=$((index + 1))
  tokens=$(mktemp)
  taskset -c 0 "$server" --serve "127.0.0.1:$port" "$alg" >"$tokens" &
  pid=$!
  for _ in $(seq 50); do [ -s "$tokens" ] && break; sleep 0.1; done
  token=$(head -1 "$tokens")
  bare=""
  for route in bare cached uncached; do
    path="/$route"; [ "$route" = bare ] || path="/$route/me"
    rps=$(taskset -c 1 wrk -t1 -c32 -d"$duration" -H "Authorization: Bearer $token" "http://127.0.0.1:$port$path" \
      | awk '/Requests\/sec/ {print $2}')
    [ -n "$bare" ] || bare=$rps
    printf '%-6s %-10s %12s %7.0f%%\n' "$alg" "$route" "$rps" "$(echo "100*$rps/$bare" | bc -l)"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$tokens"
done

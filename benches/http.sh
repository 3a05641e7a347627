#!/usr/bin/env bash
# End to end over HTTP: wrk against a bare route and the guarded routes, server pinned to one
# core and wrk to the other. Prints requests/s, the ratio to the bare route, and the latency's
# median and 99th percentile (wrk --latency, 32 connections kept alive).
#
#   bash benches/http.sh            (needs wrk: apt-get install wrk; DURATION=10s to change)
set -euo pipefail
cd "$(dirname "$0")/.."
# The executable cargo names (not the newest file: a shared CARGO_TARGET_DIR holds other
# checkouts' builds too).
server=$(cargo bench --bench http_server --no-run 2>&1 | sed -n 's/^ *Executable .*(\(.*\))$/\1/p')
[ -x "$server" ] || { echo "http_server was not built" >&2; exit 1; }
duration=${DURATION:-5s}
base_port=$((20000 + RANDOM % 20000))
# wrk's latency percentiles (`50%  123.45us`) in microseconds.
micros() {
  awk -v p="$1" '$1 == p {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
    f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : (u == "m") ? 60000000 : 0.001;
    printf "%.0f", v * f }'
}
printf '%-6s %-10s %12s %8s %10s %10s\n' alg route 'req/s' ratio 'p50 µs' 'p99 µs'
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
    out=$(taskset -c 1 wrk -t1 -c32 -d"$duration" --latency -H "Authorization: Bearer $token" \
      "http://127.0.0.1:$port$path")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    [ -n "$bare" ] || bare=$rps
    printf '%-6s %-10s %12s %7.0f%% %10s %10s\n' "$alg" "$route" "$rps" "$(echo "100*$rps/$bare" | bc -l)" \
      "$(echo "$out" | micros 50%)" "$(echo "$out" | micros 99%)"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$tokens"
done

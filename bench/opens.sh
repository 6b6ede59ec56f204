#!/usr/bin/env bash
# Opens against clicks on the edge (issue 29): one build, durable (every record on disk
# before its answer), wrk against `GET /c/<token>` (the 302) and `GET /o/<token>` (the
# pixel) in turn, each on a fresh edge and log, ROUNDS rounds (this machine is shared and
# noisy: compare within a round), with nginx `return 302` once a round as the machine's
# baseline. Prints requests/s, the edge's CPU per request (all its threads, user + system,
# over the run, divided by the requests wrk completed), and checks that each log holds at
# least the records wrk saw answered. Run after `swift build -c release`.
#
#   DURATION=10s ROUNDS=3 bench/opens.sh [BINARY]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${1:-$root/.build/release/clickd}
duration=${DURATION:-10s}
rounds=${ROUNDS:-3}
connections=${CONNECTIONS:-50}
work=$(mktemp -d "${TMPDIR:-/tmp}/clickd-opens.XXXXXX")
# shellcheck source=bench/http.sh
source "$root/bench/http.sh"
eport=$(free_port)
click=$(sign_url "$binary" "$eport")
open=$(sign_open_url "$binary" "$eport")
hz=$(getconf CLK_TCK)
sleep 0.5
echo "| round | nginx req/s | clicks: req/s, CPU/request | opens: req/s, CPU/request | opens ÷ clicks (req/s) |"
echo "|---:|---:|---:|---:|---:|"
for round in $(seq 1 "$rounds"); do
    n_rps=$(wrk -t1 -c"$connections" -d"$duration" "http://127.0.0.1:$nport/c/x" | awk '/Requests\/sec/ {print $2}')
    declare -A rps cpu
    for route in click open; do
        start_edge "$binary" "$eport" durable
        before=$(cpu_ticks "$epid")
        url=$click
        [[ $route == open ]] && url=$open
        result=$(wrk -t1 -c"$connections" -d"$duration" "$url")
        after=$(cpu_ticks "$epid")
        kill -TERM "$epid"; wait "$epid" || true
        total=$(awk '/requests in/ {print $1}' <<<"$result")
        bad=$(awk '/Non-2xx or 3xx/ {print $5}' <<<"$result")
        records=$("$binary" log stats "$work/log-durable" | awk '/^records:/ {print $2}')
        if (( records < total - ${bad:-0} )); then echo "$route: the log holds $records records, wrk saw $((total - ${bad:-0})) answers" >&2; exit 1; fi
        rps[$route]=$(awk '/Requests\/sec/ {print $2}' <<<"$result")
        cpu[$route]=$(python3 -c "print(f'{($after - $before) * 1e6 / $hz / $total:.1f}')")
    done
    python3 -c "
r, n, cr, cc, orr, oc = '$round', $n_rps, ${rps[click]}, ${cpu[click]}, ${rps[open]}, ${cpu[open]}
print(f'| {r} | {n:,.0f} | {cr:,.0f}, {cc} µs | {orr:,.0f}, {oc} µs | {orr / cr:.2f} |')"
done

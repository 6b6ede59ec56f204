#!/usr/bin/env bash
# Interleaved A/B of edge builds (issue 4): for each round, nginx `return 302` once, then
# every given clickd binary in turn, each under wrk for the same time. Prints each
# binary's requests/s, its ratio to that round's nginx, and the edge's CPU time per
# request (user + system of all its threads over the run, divided by the requests wrk
# completed) — steadier than requests/s on a shared machine. Copy a build aside
# (`cp .build/release/clickd /tmp/clickd-before`) before a change to compare against it.
#
#   bench/edge-ab.sh [--durability durable|none] [--rounds N] BINARY [BINARY ...]
#   DURATION=5s CONNECTIONS=50 EDGE_ARGS="--threads 1" bench/edge-ab.sh /tmp/clickd-before .build/release/clickd
set -euo pipefail
durability=durable
rounds=3
while [[ $# -gt 0 ]]; do
    case $1 in
        --durability) durability=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        -*) echo "edge-ab.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[[ $# -ge 1 ]] || { echo "usage: bench/edge-ab.sh [--durability durable|none] [--rounds N] BINARY [BINARY ...]" >&2; exit 2; }
for b in "$@"; do [[ -x $b ]] || { echo "edge-ab.sh: $b is not an executable" >&2; exit 2; }; done
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-5s}
connections=${CONNECTIONS:-50}
work=$(mktemp -d "${TMPDIR:-/tmp}/clickd-edge-ab.XXXXXX")
# shellcheck source=bench/http.sh
source "$root/bench/http.sh"

eport=$(free_port)
target=$(sign_url "$1" "$eport")
hz=$(getconf CLK_TCK)
sleep 0.5
for round in $(seq 1 "$rounds"); do
    n_rps=$(wrk -t1 -c"$connections" -d"$duration" "http://127.0.0.1:$nport/c/x" | awk '/Requests\/sec/ {print $2}')
    line="round $round: nginx $n_rps"
    for binary in "$@"; do
        # shellcheck disable=SC2086
        start_edge "$binary" "$eport" "$durability" ${EDGE_ARGS:-}
        before=$(cpu_ticks "$epid")
        result=$(wrk -t1 -c"$connections" -d"$duration" "$target")
        after=$(cpu_ticks "$epid")
        kill -TERM "$epid"; wait "$epid" || true
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$result")
        total=$(awk '/requests in/ {print $1}' <<<"$result")
        line+=$(python3 -c "print(f' | {\"$binary\"}: {$rps:.0f} ({$rps / $n_rps:.2f}x, {($after - $before) * 1e6 / $hz / $total:.1f} us CPU/request)')")
    done
    echo "$line"
done

#!/usr/bin/env bash
# Tracker-edge benchmark (issue 4): wrk on loopback against `GET /c/<token>` on the edge
# (durable group commit: every click on disk before its 302), against the edge with
# --durability none, and against nginx answering `return 302` on the same machine in the
# same run (the baseline). Reports requests/s, the ratio to nginx, latency percentiles,
# the edge's peak RSS, and checks that the log holds at least as many clicks as wrk saw
# 302s. Installs wrk and nginx when missing (root or sudo). Run after `swift build -c
# release` (`make bench` does both).
#
#   bench/edge.sh                 30 s per run, 50 connections, 1 wrk thread
#   DURATION=10s bench/edge.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.build/release"
out="$root/bench/out"
mkdir -p "$out"
duration=${DURATION:-30s}
connections=${CONNECTIONS:-50}

work=$(mktemp -d "$root/.build/clickd-edge-bench.XXXXXX")
# shellcheck source=bench/http.sh
source "$root/bench/http.sh"

run_wrk() {  # name url [lua script]
    local result
    result=$(wrk -t1 -c"$connections" -d"$duration" --latency ${3:+-s "$3"} "$2")
    echo "$result" > "$out/edge-wrk-$1.txt"
    python3 - "$result" <<'PY'
import re, sys
t = sys.argv[1]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", t, re.M))
total = int(re.search(r"(\d+) requests in", t).group(1))
non = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{rps:.0f} {lat.get('50','?')} {lat.get('99','?')} {total} {non.group(1) if non else 0}")
PY
}

sleep 0.5
read -r n_rps n_p50 n_p99 n_total n_bad < <(run_wrk nginx "http://127.0.0.1:$nport/c/x")

echo "| target (wrk -t1 -c$connections -d$duration, loopback) | requests/s | vs nginx | p50 | p99 | peak RSS | clicks in log / 302s seen |"
echo "|---|---:|---:|---:|---:|---:|---:|"
echo "| nginx \`return 302\` (baseline) | $n_rps | 1.00 | $n_p50 | $n_p99 | | |"
for durability in durable none; do
    eport=$(free_port)
    start_edge "$bin/clickd" "$eport" "$durability" ${EDGE_THREADS:+--threads "$EDGE_THREADS"}
    target=$(sign_url "$bin/clickd" "$eport")
    read -r rps p50 p99 total bad < <(run_wrk "$durability" "$target")
    rss=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$epid/status")
    kill -TERM "$epid"; wait "$epid" || true
    records=$("$bin/clickd" log stats "$work/log-$durability" | awk '/^records:/ {print $2}')
    ratio=$(python3 -c "print(f'{$rps / $n_rps:.2f}')")
    echo "| clickd edge, --durability $durability | $rps | $ratio | $p50 | $p99 | $rss | $records / $((total - bad)) |"
    [[ $durability == durable ]] && half=$(( rps / 2 )) && durable_p50=$p50
done

# Latency at half the durable rate: each connection pauses 2 ms (wrk's delay()) between a
# response and its next request, and there are as many connections as make the offered
# load half of what the edge sustained above: half x (2 ms + the durable p50).
eport=$(free_port)
start_edge "$bin/clickd" "$eport" durable ${EDGE_THREADS:+--threads "$EDGE_THREADS"}
target=$(sign_url "$bin/clickd" "$eport")
pace_ms=2
paced_connections=$(python3 -c "
import re
v, unit = re.match(r'([\d.]+)(\w+)', '$durable_p50').groups()
p50_ms = float(v) * {'us': 0.001, 'ms': 1.0, 's': 1000.0}[unit]
print(max(1, round($half * ($pace_ms + p50_ms) / 1000)))")
echo "function delay() return $pace_ms end" > "$work/pace.lua"
connections=$paced_connections
read -r rps p50 p99 total bad < <(run_wrk paced "$target" "$work/pace.lua")
kill -TERM "$epid"; wait "$epid" || true
echo
echo "At about half the durable rate ($half requests/s wanted: $paced_connections connections each pausing ${pace_ms} ms): $rps requests/s served, p50 $p50, p99 $p99."


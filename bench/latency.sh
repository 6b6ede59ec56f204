#!/usr/bin/env bash
# Click-to-row latency and idle CPU of the ingest daemon (issue 13). A real edge (durable
# group commit) and a following `clickd ingest --workers WORKERS` (default 2) on one log and
# a private PostgreSQL (fsync on, track_commit_timestamp on):
#   1. idle: the daemon follows an empty log for IDLE seconds (default 20); its CPU time
#      (utime + stime, /proc) over that time, as a share of one core;
#   2. low load: RATE clicks a second (default 20) for SECONDS (default 30), each a GET of a
#      tracked link answered 302 by the edge; the latency of a click is its row's commit
#      time in PostgreSQL (pg_xact_commit_timestamp of the activity row) minus the time the
#      edge took the click (occurred_at, milliseconds) — what an analyst waits for.
# Prints p50, p99 and max, and the idle CPU. BIN=dir runs another build's binaries.
# Run after `swift build -c release`.
#
#   bench/latency.sh
set -euo pipefail
idle=${IDLE:-20}
rate=${RATE:-20}
seconds=${SECONDS_OF_LOAD:-30}
workers=${WORKERS:-2}
here=$(cd "$(dirname "$0")" && pwd)
PG_SETTINGS="${PG_SETTINGS-shared_buffers=1GB} track_commit_timestamp=on"
source "$here/pg.sh"
bin=${BIN:-$bin}
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; cleanup' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$bin/clickd" keys generate --kid k1 > "$work/keys"
"$bin/clickd" migrate --database "$conninfo" --migrations "$root/migrations" >/dev/null 2>&1
"$bin/clickd" edge --log "$work/log" --keys "$work/keys" --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 2>"$work/edge.log" &
pids+=($!)
for _ in $(seq 1 200); do grep -q "edge listening" "$work/edge.log" 2>/dev/null && break; sleep 0.05; done
url=$("$bin/clickd" links sign --keys "$work/keys" --base "http://127.0.0.1:$port" --type email --delivery dlv_1 \
    --customer cust_1 --campaign 17 --url https://shop.example.com/spring 2>/dev/null)

"$bin/clickd" ingest --workers "$workers" --log "$work/log" --database "$conninfo" 2>"$work/ingest.log" &
ipid=$!
pids+=($ipid)
sleep 2
c0=$(cpu_seconds "$ipid"); t0=$(now)
sleep "$idle"
c1=$(cpu_seconds "$ipid"); t1=$(now)

python3 - "$url" "$rate" "$seconds" <<'PY'
import http.client, sys, time, urllib.parse
url, rate, seconds = urllib.parse.urlsplit(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
start = time.monotonic()
for i in range(int(rate * seconds)):
    time.sleep(max(0, start + i / rate - time.monotonic()))
    c = http.client.HTTPConnection(url.hostname, url.port)
    c.request("GET", url.path)
    assert c.getresponse().status == 302
    c.close()
PY
sent=$(python3 -c "print(int($rate * $seconds))")
for _ in $(seq 1 100); do
    n=$(psql "$conninfo" -X -At -c "SELECT count(*) FROM clickd_internal.activity")
    [[ $n -ge $sent ]] && break
    sleep 0.1
done
[[ $n -ge $sent ]] || { echo "latency.sh: $n of $sent clicks reached the database" >&2; exit 1; }

psql "$conninfo" -X -At -F ' ' -c "
    WITH l AS (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - occurred_at) * 1000 AS ms FROM clickd_internal.activity)
    SELECT count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY ms), percentile_disc(0.99) WITHIN GROUP (ORDER BY ms), max(ms) FROM l" \
    > "$work/lat"
python3 - "$c0" "$c1" "$t0" "$t1" "$workers" $(cat "$work/lat") <<'PY'
import sys
c0, c1, t0, t1 = map(float, sys.argv[1:5]); workers = sys.argv[5]
n, p50, p99, mx = int(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9])
print(f"clickd ingest --workers {workers}, following one log")
print(f"idle CPU: {c1 - c0:.3f} s over {t1 - t0:.1f} s = {100 * (c1 - c0) / (t1 - t0):.2f} % of a core")
print(f"click-to-row latency ({n} clicks): p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {mx:.1f} ms")
PY

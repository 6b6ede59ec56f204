#!/usr/bin/env bash
# Disk held by an edge under steady load (issue 27): a durable edge archiving to a local
# directory (--seal-after 10, 8 MiB segments) with --keep-local KEEP (default 1m), followed
# by `clickd ingest` into a private PostgreSQL (which writes the follower file retention
# needs), under RATE clicks/s (default 5000: wrk, CONNECTIONS connections each pausing so
# the total is about RATE) for DURATION seconds (default 600); then the same load on an
# edge without retention (archive off, nothing pruned) — the baseline, in the same run.
# Every 10 s prints both the log directory's bytes; at the end the peaks, the last sizes
# and the rates wrk measured. Run after `swift build -c release`.
#
#   DURATION=600 RATE=5000 KEEP=1m bench/retention-disk.sh
set -euo pipefail
duration=${DURATION:-600}
rate=${RATE:-5000}
keep=${KEEP:-1m}
connections=${CONNECTIONS:-50}
source "$(dirname "$0")/pg.sh"
command -v wrk >/dev/null || { echo "retention-disk.sh needs wrk (bench/archive.sh installs it)" >&2; exit 1; }
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; cleanup' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$bin/clickd" keys generate --kid k1 > "$work/keys"
"$bin/clickd" migrate --database "$conninfo" --migrations "$root/migrations" >/dev/null 2>&1
# Each connection waits CONNECTIONS/RATE seconds between requests (wrk's delay(), in ms).
cat > "$work/pace.lua" <<LUA
function delay() return $(python3 -c "print(max(0, 1000 * $connections / $rate - 1))") end
LUA

run() {  # label log [edge arguments]
    local label=$1 log=$2
    shift 2
    local port
    port=$(free_port)
    "$bin/clickd" edge --log "$log" --keys "$work/keys" --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 "$@" 2>"$work/edge-$label.log" &
    local edge=$!
    pids+=($edge)
    for _ in $(seq 1 200); do grep -q "edge listening" "$work/edge-$label.log" && break; sleep 0.05; done
    "$bin/clickd" ingest --log "$log" --database "$conninfo" 2>"$work/ingest-$label.log" &
    local ingest=$!
    pids+=($ingest)
    local url
    url=$("$bin/clickd" links sign --keys "$work/keys" --base "http://127.0.0.1:$port" --type email --delivery d1 --customer c1 \
        --campaign 17 --url https://shop.example.com/spring 2>/dev/null)
    wrk -t2 -c"$connections" -d"${duration}s" -s "$work/pace.lua" "$url" > "$work/wrk-$label.txt" &
    local load=$!
    local peak=0 bytes=0
    for t in $(seq 10 10 "$duration"); do
        sleep 10
        bytes=$(du -sb "$log" | cut -f1)
        (( bytes > peak )) && peak=$bytes
        echo "$label t=${t}s log_bytes=$bytes"
    done
    wait "$load" || true
    kill -TERM "$edge" "$ingest"; wait "$edge" "$ingest" 2>/dev/null || true
    echo "$label: peak $peak bytes, last $bytes bytes, $(awk '/Requests\/sec/ {print $2}' "$work/wrk-$label.txt") clicks/s measured by wrk"
}
mkdir "$work/archive"
run retention "$work/log-retention" --archive-dir "$work/archive" --seal-after 10 --segment-size 8 --keep-local "$keep"
run none "$work/log-none" --seal-after 10 --segment-size 8

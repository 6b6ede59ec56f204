#!/usr/bin/env bash
# Rebuild benchmark (issue 6): on a log of EVENTS realistic events (as bench/ingest.sh),
# the time of `clickd ingest --once` into a fresh, migrated database against, in the same
# run on the same private PostgreSQL (fsync on), the time of `clickd rebuild` of the same
# log over those live projections (replay into shadow tables, build, swap) — both with
# --workers WORKERS (default 2) — and the peak RSS of both (memory must stay flat with the
# log's size). Run after `swift build -c release`.
#
#   EVENTS=1000000 bench/rebuild.sh        (default 1,000,000)
set -euo pipefail
events=${EVENTS:-1000000}
workers=${WORKERS:-2}
source "$(dirname "$0")/pg.sh"

"$bin/LinkBench" generate-log "$work/log" "$events" >/dev/null 2>&1
"$bin/clickd" migrate --database "$conninfo" --migrations "$root/migrations" >/dev/null 2>&1

t0=$(now)
/usr/bin/time -f "%M" -o "$work/ingest.rss" "$bin/clickd" ingest --once --workers "$workers" --log "$work/log" --database "$conninfo" 2>/dev/null
t1=$(now)
/usr/bin/time -f "%M" -o "$work/rebuild.rss" "$bin/clickd" rebuild --workers "$workers" --log "$work/log" --database "$conninfo" 2>/dev/null
t2=$(now)

python3 - "$events" "$workers" "$t0" "$t1" "$t2" "$(tail -1 "$work/ingest.rss")" "$(tail -1 "$work/rebuild.rss")" <<'PY'
import sys
events, workers = int(sys.argv[1]), int(sys.argv[2]); t0, t1, t2 = map(float, sys.argv[3:6]); ingest_rss, rebuild_rss = int(sys.argv[6]), int(sys.argv[7])
ingest, rebuild = t1 - t0, t2 - t1
print(f"--workers {workers}\n")
print("| measure | seconds | events/s | peak RSS |")
print("|---|---:|---:|---:|")
print(f"| clickd ingest --once from scratch ({events:,} events) | {ingest:.1f} | {events / ingest:,.0f} | {ingest_rss / 1024:.0f} MB |")
print(f"| clickd rebuild of the same log over it | {rebuild:.1f} | {events / rebuild:,.0f} | {rebuild_rss / 1024:.0f} MB |")
print(f"\nrebuild / ingest = {rebuild / ingest:.2f}x the time")
PY

#!/usr/bin/env bash
# Ingest with opens (issue 29): two logs of EVENTS events each, the same customers, sources
# and times (LinkBench generate-log), one of clicks and deliveries only, one where
# OPEN_PERCENT % of the events are opens (of every reason: people's, Apple MPP's by the
# relay bit and by user agent, an image proxy's, a scanner's, prefetches) instead of clicks.
# Each is projected by `clickd ingest --once --workers 2` into a fresh database, alternating,
# ROUNDS rounds (compare within a round), with the daemon's and PostgreSQL's CPU per
# event. Run after `swift build -c release`.
#
#   EVENTS=1000000 OPEN_PERCENT=30 ROUNDS=2 bench/ingest-opens.sh
set -euo pipefail
events=${EVENTS:-1000000}
percent=${OPEN_PERCENT:-30}
rounds=${ROUNDS:-2}
source "$(dirname "$0")/pg.sh"
"$bin/LinkBench" generate-log "$work/clicks" "$events" >/dev/null 2>&1
"$bin/LinkBench" generate-log "$work/opens" "$events" "$percent" >/dev/null 2>&1
pg_cpu() { cpu_seconds "$(head -1 "$work/pg/data/postmaster.pid")" tree; }
echo "ONE MACHINE (2 cores): $events events a log, --workers 2, plain PostgreSQL; the second log has $percent % opens in place of clicks"
echo
echo "| round | log | ingest, seconds | events/s | daemon CPU per event (µs) | PostgreSQL CPU per event (µs) | activity rows / opens |"
echo "|---:|---|---:|---:|---:|---:|---:|"
for round in $(seq "$rounds"); do
    for log in clicks opens; do
        psql "$conninfo" -Xqc "DROP DATABASE IF EXISTS opens" -c "CREATE DATABASE opens" 2>/dev/null
        db=${conninfo/dbname=postgres/dbname=opens}
        "$bin/clickd" migrate --database "$db" --migrations "$root/migrations" >/dev/null 2>&1
        c0=$(pg_cpu); t0=$(now)
        /usr/bin/time -f "%U %S" -o "$work/cpu" "$bin/clickd" ingest --once --workers 2 --log "$work/$log" --database "$db" 2>/dev/null
        t1=$(now); c1=$(pg_cpu)
        counts=$(psql "$db" -XAtc "SELECT count(*) || ' / ' || count(*) FILTER (WHERE kind = 'opened_email') FROM clickd.activity")
        python3 -c "
import sys
r, l, t, c, n, u, s, counts = sys.argv[1:]
t = float(t); n = int(n)
print(f'| {r} | {l} | {t:.1f} | {n / t:,.0f} | {(float(u) + float(s)) / n * 1e6:.1f} | {float(c) / n * 1e6:.1f} | {counts} |')" \
            "$round" "$log" "$(echo "$t1 - $t0" | bc)" "$(echo "$c1 - $c0" | bc)" "$events" $(cat "$work/cpu") "$counts"
    done
done

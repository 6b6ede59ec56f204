#!/usr/bin/env bash
# The ingest's two write shapes on plain PostgreSQL (issue 28; docs/design/citus.md): the
# same generated log ingested by `clickd ingest --once --workers 2` into a fresh database
# per run, alternating CLICKD_INGEST_SHAPE=tables and =function for ROUNDS rounds (this
# machine is shared and noisy: compare within a round), with the server's CPU per event.
# Run after `swift build -c release`.
#
#   EVENTS=1000000 ROUNDS=2 bench/ingest-shapes.sh
set -euo pipefail
events=${EVENTS:-1000000}
rounds=${ROUNDS:-2}
source "$(dirname "$0")/pg.sh"
"$bin/LinkBench" generate-log "$work/log" "$events" >/dev/null 2>&1
pg_cpu() { cpu_seconds "$(head -1 "$work/pg/data/postmaster.pid")" tree; }
echo "ONE MACHINE (2 cores): $events events, --workers 2, plain PostgreSQL"
echo
echo "| round | shape | ingest, seconds | events/s | PostgreSQL CPU per event (µs) |"
echo "|---:|---|---:|---:|---:|"
for round in $(seq "$rounds"); do
    for shape in tables function; do
        psql "$conninfo" -Xqc "DROP DATABASE IF EXISTS shapes" -c "CREATE DATABASE shapes" 2>/dev/null
        db=${conninfo/dbname=postgres/dbname=shapes}
        "$bin/clickd" migrate --database "$db" --migrations "$root/migrations" >/dev/null 2>&1
        c0=$(pg_cpu); t0=$(now)
        CLICKD_INGEST_SHAPE=$shape "$bin/clickd" ingest --once --workers 2 --log "$work/log" --database "$db" 2>/dev/null
        t1=$(now); c1=$(pg_cpu)
        python3 -c "import sys; r, s, t, c, n = sys.argv[1:]; t = float(t); print(f'| {r} | {s} | {t:.1f} | {int(n) / t:,.0f} | {float(c) / int(n) * 1e6:.1f} |')" \
            "$round" "$shape" "$(echo "$t1 - $t0" | bc)" "$(echo "$c1 - $c0" | bc)" "$events"
    done
done

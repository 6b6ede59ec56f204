#!/usr/bin/env bash
# Ingest benchmark (issue 5): a log of EVENTS realistic events (100,000 customers, 500
# sources x 20 links; 1 in 5 a delivery) projected by `clickd ingest --once` into a fresh,
# migrated database on a private PostgreSQL with fsync on — against, in the same run on the
# same cluster: (a) plain COPY of the same activity rows into an unindexed table (the
# ceiling; binary, as clickd's), (b) one INSERT transaction per event, as synchronous
# trackers do (measured on a sample, as a rate), and (c) COPY of the same rows into a table with activity's indexes
# (the floor of the activity projection alone). Also the daemon's peak RSS. Run after `swift build -c release`.
#
#   EVENTS=1000000 bench/ingest.sh        (default 1,000,000)
set -euo pipefail
events=${EVENTS:-1000000}
sample=${SAMPLE:-5000}
source "$(dirname "$0")/pg.sh"
psql_() { psql "$conninfo" -X -q -v ON_ERROR_STOP=1 "$@"; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

"$bin/LinkBench" generate-log "$work/log" "$events" >/dev/null 2>&1
"$bin/clickd" migrate --database "$conninfo" --migrations "$root/migrations" >/dev/null

t0=$(now)
/usr/bin/time -f "%M" -o "$work/rss" "$bin/clickd" ingest --once --log "$work/log" --database "$conninfo" 2>/dev/null
t1=$(now)
ingest_s=$(secs "$t0" "$t1")
rss_kb=$(tail -1 "$work/rss")

# (a) the ceiling: COPY the same activity rows into an unindexed table — in the binary
# format, as clickd sends them (the fastest COPY there is).
psql_ -c "\\copy (SELECT * FROM clickd_internal.activity) TO '$work/activity.copy' (FORMAT binary)"
psql_ -c "CREATE TABLE plain (LIKE clickd_internal.activity)"
t0=$(now)
psql_ -c "\\copy plain FROM '$work/activity.copy' (FORMAT binary)"
t1=$(now)
copy_s=$(secs "$t0" "$t1")

# (c) COPY of the same rows into a table with activity's indexes: the floor of writing the
# activity projection alone, before any counter.
psql_ -c "CREATE TABLE indexed (LIKE clickd_internal.activity INCLUDING INDEXES)"
t0=$(now)
psql_ -c "\\copy indexed FROM '$work/activity.copy' (FORMAT binary)"
t1=$(now)
indexed_s=$(secs "$t0" "$t1")

# (b) one INSERT transaction per event, on a sample.
psql_ -c "CREATE TABLE per_row (LIKE clickd_internal.activity INCLUDING INDEXES)"
psql_ -At -c "SELECT format('INSERT INTO per_row VALUES (%L,%s,%L,%L,%L,%L,%L,%L,%L,%L,%L,%L,%L,%L,%L);',
    log_id, lsn, customer_id, occurred_at, kind, delivery_id, source_kind, source_id, message_type, link_id, url, human, bot_reason, user_agent, ip)
    FROM clickd_internal.activity LIMIT $sample" > "$work/inserts.sql"
t0=$(now)
psql_ -f "$work/inserts.sql"
t1=$(now)
row_s=$(secs "$t0" "$t1")

python3 - "$events" "$ingest_s" "$copy_s" "$row_s" "$sample" "$rss_kb" "$indexed_s" <<'PY'
import sys
events, ingest_s, copy_s, row_s, sample, rss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
indexed = events / float(sys.argv[7])
ingest = events / ingest_s
copy = events / copy_s
row = sample / row_s
print("| measure | events/s | vs clickd ingest |")
print("|---|---:|---:|")
print(f"| clickd ingest --once, all projections ({events:,} events, {ingest_s:.1f} s) | {ingest:,.0f} | 1.00 |")
print(f"| (a) COPY of the same activity rows into an unindexed table | {copy:,.0f} | ingest = {ingest / copy:.2f} of it |")
print(f"| (c) COPY of the same rows into a table with activity's indexes | {indexed:,.0f} | ingest = {ingest / indexed:.2f} of it |")
print(f"| (b) one INSERT transaction per event (sample of {sample:,}) | {row:,.0f} | ingest = {ingest / row:.1f}x it |")
print(f"\nclickd ingest peak RSS: {rss / 1024:.0f} MB")
PY

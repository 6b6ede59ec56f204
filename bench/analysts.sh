#!/usr/bin/env bash
# Analysts' reads (issue 13): on a database that `clickd ingest --once --workers 2` filled
# from a log of EVENTS realistic events (as bench/ingest.sh: 100,000 customers, 500 sources
# of 20 links, sources src_N of kind campaign when N mod 3 = 0), the latency of the
# analysts' queries of docs/analysts.md through the views of schema clickd, warm: each
# query runs 20 times unmeasured, then RUNS times (default 50) with a random campaign,
# link or person each time, one connection, by pgbench (per-transaction log, so the
# latency is the server's answer as a client sees it over the Unix socket). Prints p50,
# p95 and max, against the targets. Run after `swift build -c release`.
#
#   EVENTS=10000000 bench/analysts.sh        (default 1,000,000)
set -euo pipefail
events=${EVENTS:-1000000}
runs=${RUNS:-50}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/pg.sh"
# pgbench beside the server's binaries (pg_ctl on PATH may be a symlink elsewhere).
pgbin=$(dirname "$(readlink -f "$(command -v pg_ctl 2>/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")")

"$bin/LinkBench" generate-log "$work/log" "$events" >/dev/null 2>&1
"$bin/clickd" migrate --database "$conninfo" --migrations "$root/migrations" >/dev/null 2>&1
"$bin/clickd" ingest --once --workers 2 --log "$work/log" --database "$conninfo" 2>/dev/null
# As autovacuum would have by now on a live database.
psql "$conninfo" -X -q -v ON_ERROR_STOP=1 -c "VACUUM ANALYZE"

mkdir -p "$work/q"
cat > "$work/q/top_links.sql" <<'SQL'
\set c random(0, 166)
SELECT link_id, url, total_clicks, human_clicks, unique_clickers, last_click_at
FROM clickd.link_clicks
WHERE source_kind = 'campaign' AND source_id = 'src_' || (3 * :c)
ORDER BY human_clicks DESC, total_clicks DESC
LIMIT 10;
SQL
cat > "$work/q/stats_one.sql" <<'SQL'
\set c random(0, 166)
SELECT source_kind, source_id, delivered, clicked_customers, total_clicks, click_rate
FROM clickd.message_stats
WHERE source_kind = 'campaign' AND source_id = 'src_' || (3 * :c);
SQL
cat > "$work/q/stats_all.sql" <<'SQL'
SELECT source_kind, source_id, delivered, clicked_customers, total_clicks, click_rate
FROM clickd.message_stats
ORDER BY click_rate DESC NULLS LAST;
SQL
cat > "$work/q/segment.sql" <<'SQL'
\set c random(0, 166)
\set l random(0, 19)
SELECT customer_id, human_clicks, first_clicked_at, last_clicked_at
FROM clickd.link_clickers
WHERE source_kind = 'campaign' AND source_id = 'src_' || (3 * :c) AND link_id = 'link-' || :l AND human_clicks > 0
ORDER BY customer_id
LIMIT 100;
SQL
cat > "$work/q/person.sql" <<'SQL'
\set p random(0, 99999)
SELECT occurred_at, kind, source_kind, source_id, message_type, link_id, human, bot_reason
FROM clickd.activity
WHERE customer_id = 'cust_' || :p
ORDER BY occurred_at DESC
LIMIT 50;
SQL

measure() {
    local name=$1
    (cd "$work" && "$pgbin/pgbench" -n -c 1 -t 20 -f "q/$name.sql" "$conninfo" >/dev/null)
    (cd "$work" && rm -f "pgbench_log."* && "$pgbin/pgbench" -n -c 1 -t "$runs" -f "q/$name.sql" --log "$conninfo" >/dev/null \
        && cat pgbench_log.* > "$work/lat.$name")
}
for q in top_links stats_one stats_all segment person; do measure "$q"; done

# One EXPLAIN ANALYZE of each, for where the time goes.
for q in top_links stats_one stats_all segment person; do
    sql=$(grep -v '^\\set' "$work/q/$q.sql" | sed -e 's/:c/3/g; s/:l/7/g; s/:p/4242/g')
    echo "-- $q" >> "$work/plans"
    psql "$conninfo" -X -At -c "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) $sql" >> "$work/plans"
done
[[ -n "${PLANS:-}" ]] && cat "$work/plans"

python3 - "$work" "$events" "$runs" <<'PY'
import sys
work, events, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
queries = [("top_links", "a campaign's Top Clicked Links, with unique clickers", 20),
           ("stats_one", "message_stats of one source", 10),
           ("stats_all", "message_stats of all 500 sources", 200),
           ("segment", "a link's clicker segment, first 100 rows", 10),
           ("person", "a person's newest 50 activity rows", 5)]
print(f"{events:,} events, warm, {runs} runs each\n")
print("| query | p50 ms | p95 ms | max ms | target p95 | |")
print("|---|---:|---:|---:|---:|---|")
for name, what, target in queries:
    lat = sorted(int(line.split()[2]) / 1000 for line in open(f"{work}/lat.{name}"))
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"| {what} | {p(0.5):.2f} | {p(0.95):.2f} | {lat[-1]:.2f} | {target} | {'met' if p(0.95) <= target else 'NOT met'} |")
PY

#!/usr/bin/env bash
# Report pages (issue 15): on a database that `clickd ingest --once --workers 2` filled from
# a log of EVENTS realistic events (as bench/ingest.sh: 100,000 customers, 500 sources of 20
# links) plus a campaign "big" whose link "all" was clicked once by each of 100,000
# customers, `clickd report` (release, a read-only role) answers every page and its CSV
# twin RUNS times (default 50) after WARM unmeasured requests (default 10), each with a random
# campaign, link or person, over one keep-alive connection (bench/report-load.py); then the
# 100,000-member segment's CSV is streamed and counted. Prints p50/p95/max per page, the
# CSV's rows per second and the report's peak RSS (sampled every 50 ms), and the plans of
# the heaviest queries (EXPLAIN ANALYZE) to say where each page's time goes.
# Run after `swift build -c release`.
#
#   EVENTS=10000000 bench/report.sh        (default 1,000,000; OPEN_PERCENT=30 of them opens)
#   BASELINE_COMMIT=bb88190 EVENTS=… bench/report.sh
#
# With BASELINE_COMMIT (built by bench/baseline-build.sh), the report of that commit serves
# the same database too, alternating with this one (this, baseline, this, baseline), and the
# script prints each page's p95 as a ratio to the baseline's (the mean of each side's two
# runs): the machine is shared, so a change is judged against a baseline of the same hour.
set -euo pipefail
events=${EVENTS:-1000000}
runs=${RUNS:-50}
warm=${WARM:-10}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/pg.sh"

echo "generating $events events and a 100,000-member segment" >&2
# Since issue 29, OPEN_PERCENT % of the events are opens (default 30; 0 for clicks only).
"$bin/LinkBench" generate-log "$work/log" "$events" "${OPEN_PERCENT:-30}" >/dev/null 2>&1
"$bin/LinkBench" append-segment "$work/log" 100000 >/dev/null 2>&1
"$bin/clickd" migrate --database "$conninfo" --migrations "$root/migrations" >/dev/null 2>&1
started=$(now)
"$bin/clickd" ingest --once --workers 2 --log "$work/log" --database "$conninfo" 2>/dev/null
echo "ingested in $(python3 -c "print(round($(now) - $started, 1))") s" >&2
psql "$conninfo" -X -q -v ON_ERROR_STOP=1 -c "VACUUM ANALYZE" -c "CREATE ROLE reports LOGIN; GRANT clickd_analyst TO reports"
reader=$(sed -E 's/user=[^ ]+/user=reports/' <<<"$conninfo")
# The generated events span about a day from 2026-09-21 (LinkBench): a 3-day range.
from=2026-09-21
to=2026-09-23

# serve BIN LABEL: the report of BIN on a free port, driven by report-load.py into
# $work/results.LABEL.json, then stopped.
serve() {
    local dir=$1 label=$2 port="" report_pid
    "$dir/clickd" report --database "$reader" --listen 127.0.0.1:0 2>"$work/report.$label.err" &
    report_pid=$!
    for _ in $(seq 1 100); do
        port=$(sed -nE 's/.*report\.listen=127\.0\.0\.1:([0-9]+).*/\1/p' "$work/report.$label.err" | head -1)
        [[ -n "$port" ]] && break
        sleep 0.1
    done
    [[ -n "$port" ]] || { cat "$work/report.$label.err" >&2; exit 1; }
    python3 "$here/report-load.py" "$port" "$report_pid" "$runs" "$warm" "$from" "$to" > "$work/results.$label.json"
    kill -TERM "$report_pid"
    wait "$report_pid" || true
}

baseline_commit=${BASELINE_COMMIT:-}
if [[ -z "$baseline_commit" ]]; then
    serve "$bin" this
    cat "$work/results.this.json"
else
    baseline_bin=$("$here/baseline-build.sh" "$baseline_commit")
    serve "$bin" this1
    serve "$baseline_bin" base1
    serve "$bin" this2
    serve "$baseline_bin" base2
    python3 - "$work" "$baseline_commit" <<'PY'
import json, sys
work, commit = sys.argv[1], sys.argv[2]
r = {k: json.load(open(f"{work}/results.{k}.json")) for k in ("this1", "base1", "this2", "base2")}
print(json.dumps(r["this1"], indent=1))
print(f"\n| page | p95 ms (this, 2 runs) | p95 ms ({commit}, 2 runs) | ratio |")
print("|---|---:|---:|---:|")
for page, v in r["this1"].items():
    if not isinstance(v, dict) or "p95_ms" not in v:
        continue
    a = (v["p95_ms"] + r["this2"][page]["p95_ms"]) / 2
    b = (r["base1"][page]["p95_ms"] + r["base2"][page]["p95_ms"]) / 2
    print(f"| {page} | {v['p95_ms']}, {r['this2'][page]['p95_ms']} | {r['base1'][page]['p95_ms']}, {r['base2'][page]['p95_ms']} | {a / b:.2f} |")
big = lambda k: r[k]["big segment.csv"]["rows_per_s"]
print(f"| big segment.csv rows/s | {big('this1')}, {big('this2')} | {big('base1')}, {big('base2')} | {(big('this1') + big('this2')) / (big('base1') + big('base2')):.2f} |")
rss = lambda k: r[k]["report peak RSS MiB"]
print(f"| peak RSS MiB | {rss('this1')}, {rss('this2')} | {rss('base1')}, {rss('base2')} | {(rss('this1') + rss('this2')) / (rss('base1') + rss('base2')):.2f} |")
PY
fi

echo "--- where the time goes (EXPLAIN ANALYZE, one random-ish example each)" >&2
explain() { echo "## $1" >&2; psql "$reader" -X -q -c "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) $2" | grep -E "Execution Time|Planning Time|Scan|Sort|Aggregate|Join" | head -20 >&2; }
explain "sources (message_stats)" "SELECT * FROM clickd.message_stats ORDER BY delivered DESC LIMIT 101"
explain "overview: Top Clicked Links (link_clicks)" "SELECT * FROM clickd.link_clicks WHERE source_kind = 'campaign' AND source_id = 'src_33' ORDER BY total_clicks DESC, link_id LIMIT 100"
explain "overview: opens by reason (opens_daily_by_reason)" "SELECT reason, sum(opens)::text FROM clickd.opens_daily_by_reason WHERE source_kind = 'campaign' AND source_id = 'src_33' GROUP BY 1"
explain "overview: chart (source_clicks_hourly)" "SELECT * FROM clickd.source_clicks_hourly WHERE source_kind = 'campaign' AND source_id = 'src_33' AND hour >= '$from' AND hour < '$to'::date + 1"
explain "segment members (link_clickers)" "SELECT customer_id FROM clickd.link_clickers WHERE source_kind = 'campaign' AND source_id = 'src_33' AND link_id = 'link-4' AND human_clicks > 0 ORDER BY customer_id LIMIT 101"
explain "big segment, one CSV chunk" "SELECT customer_id FROM clickd.link_clickers WHERE source_kind = 'campaign' AND source_id = 'big' AND link_id = 'all' AND customer_id > 'cust_5' ORDER BY customer_id LIMIT 5000"
explain "person (activity)" "SELECT * FROM clickd.activity WHERE customer_id = 'cust_4711' ORDER BY occurred_at DESC LIMIT 51"
explain "bots (bot_clicks_daily)" "SELECT source_kind, source_id, bot_reason, sum(clicks)::bigint FROM clickd.bot_clicks_daily WHERE day BETWEEN '$from' AND '$to' GROUP BY 1, 2, 3 ORDER BY 1, 2, 4 DESC, 3"

#!/usr/bin/env bash
# Ingest benchmark (issues 5 and 13). A log of EVENTS realistic events (100,000 customers,
# 500 sources x 20 links; 1 in 5 a delivery) is projected by `clickd ingest --once` into a
# fresh, migrated database per run, on one private PostgreSQL with fsync on (bench/pg.sh):
#   - with --workers 1, 2 and 4 (WORKERS_CURVE), the scaling curve of this build;
#   - by the main before sharding (BASELINE_COMMIT, built by bench/baseline-build.sh; one
#     connection; BASELINE_COMMIT="" skips it);
# and against, in the same run on the same cluster, the same activity rows (dumped from the
# 2-worker run, binary, as clickd sends them):
#   (a)  COPY into an unindexed table over one connection (the ceiling of any write);
#   (cN) COPY into a table with activity's indexes over N connections at once, each its
#        own shards (shard mod N), for each N of the curve — the ceiling for this schema;
#   (b)  one INSERT transaction per event, as synchronous trackers do (a sample, as a rate).
# For each run: seconds, events/s, PostgreSQL's CPU (the postmaster and every backend,
# from /proc, before and after), the daemon's CPU and peak RSS, and both CPUs per event —
# on a machine whose cores are all busy, the CPU per event is what bounds the rate. The runs' views are compared
# (counts and sums of every view): a run that differs fails the script.
# Run after `swift build -c release` (`make bench` does).
#
#   EVENTS=1000000 bench/ingest.sh        (default 1,000,000)
set -euo pipefail
events=${EVENTS:-1000000}
sample=${SAMPLE:-5000}
curve=${WORKERS_CURVE:-"1 2 4"}
baseline_commit=${BASELINE_COMMIT-94b6c94}
here=$(cd "$(dirname "$0")" && pwd)
baseline_bin=""
[[ -n "$baseline_commit" ]] && baseline_bin=$("$here/baseline-build.sh" "$baseline_commit")
source "$here/pg.sh"
psql_() { psql "$conninfo" -X -q -v ON_ERROR_STOP=1 "$@"; }
results="$work/results"
: > "$results"

"$bin/LinkBench" generate-log "$work/log" "$events" >/dev/null 2>&1

# CPU seconds of the whole cluster so far.
pg_cpu() { cpu_seconds "$(head -1 "$work/pg/data/postmaster.pid")" tree; }

database() { echo "${conninfo/dbname=postgres/dbname=$1}"; }

# run NAME BINDIR MIGRATIONS [ingest options…]: a fresh database NAME, migrated, ingested.
run() {
    local name=$1 dir=$2 migrations=$3; shift 3
    psql_ -c "CREATE DATABASE $name"
    "$dir/clickd" migrate --database "$(database "$name")" --migrations "$migrations" >/dev/null 2>&1
    local c0 t0 t1 c1
    c0=$(pg_cpu); t0=$(now)
    /usr/bin/time -f "%M %U %S" -o "$work/rss" "$dir/clickd" ingest --once --log "$work/log" --database "$(database "$name")" "$@" 2>/dev/null
    t1=$(now); c1=$(pg_cpu)
    echo "$name $t0 $t1 $c0 $c1 $(tail -1 "$work/rss")" >> "$results"
    # What analysts see, summed: equal in every run.
    psql "$(database "$name")" -X -At -v ON_ERROR_STOP=1 -c "
        SELECT (SELECT count(*) || '/' || count(*) FILTER (WHERE human) FROM clickd.activity) || ' '
            || (SELECT count(*) || '/' || sum(total_clicks) || '/' || sum(human_clicks) || '/' || sum(unique_clickers) FROM clickd.link_clicks) || ' '
            || (SELECT count(*) || '/' || sum(clicks) || '/' || sum(human_clicks) FROM clickd.link_clickers) || ' '
            || (SELECT count(*) || '/' || sum(delivered) || '/' || sum(clicked_customers) || '/' || sum(total_clicks) FROM clickd.message_stats)" \
        > "$work/views.$name"
}

for n in $curve; do
    run "workers$n" "$bin" "$root/migrations" --workers "$n"
    [[ $n == 2 ]] || psql_ -c "DROP DATABASE workers$n"
done
if [[ -n "$baseline_bin" ]]; then
    run baseline "$baseline_bin" "${baseline_bin%/.build/release}/migrations"
    psql_ -c "DROP DATABASE baseline"
fi
for f in "$work"/views.*; do
    if ! cmp -s "$f" "$work/views.workers2"; then
        echo "ingest.sh: the views of ${f##*.} differ from workers2's: $(cat "$f") against $(cat "$work/views.workers2")" >&2
        exit 1
    fi
done

# The same activity rows, binary, in four files by shard mod 4 (so that N connections for
# any N of the curve each take whole files).
w2=$(database workers2)
for k in 0 1 2 3; do
    psql "$w2" -X -q -v ON_ERROR_STOP=1 -c "\\copy (SELECT * FROM clickd_internal.activity WHERE shard % 4 = $k) TO '$work/activity.$k' (FORMAT binary)"
done

# copy NAME CONNECTIONS LIKE-CLAUSE: the four files into one new table over CONNECTIONS.
copy() {
    local name=$1 connections=$2 like=$3
    psql "$w2" -X -q -v ON_ERROR_STOP=1 -c "CREATE TABLE $name (LIKE clickd_internal.activity $like)"
    local c0 t0 t1 c1 pids=()
    c0=$(pg_cpu); t0=$(now)
    for ((j = 0; j < connections; j++)); do
        (for ((k = j; k < 4; k += connections)); do
            psql "$w2" -X -q -v ON_ERROR_STOP=1 -c "\\copy $name FROM '$work/activity.$k' (FORMAT binary)"
        done) &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    t1=$(now); c1=$(pg_cpu)
    echo "$name $t0 $t1 $c0 $c1 0 0 0" >> "$results"
    psql "$w2" -X -q -v ON_ERROR_STOP=1 -c "DROP TABLE $name"
}
copy plain 1 ""
for n in $curve; do copy "indexed$n" "$n" "INCLUDING INDEXES"; done

# (b) one INSERT transaction per event, on a sample.
psql "$w2" -X -q -v ON_ERROR_STOP=1 -c "CREATE TABLE per_row (LIKE clickd_internal.activity INCLUDING INDEXES)"
psql "$w2" -X -At -v ON_ERROR_STOP=1 -c "SELECT format('INSERT INTO per_row SELECT (%L::clickd_internal.activity).*;', a)
    FROM clickd_internal.activity a LIMIT $sample" > "$work/inserts.sql"
t0=$(now)
psql "$w2" -X -q -v ON_ERROR_STOP=1 -f "$work/inserts.sql"
t1=$(now)
echo "per_row $t0 $t1 0 0 0 0 0" >> "$results"

python3 - "$events" "$sample" "$results" "$curve" "$(cat "$work/views.workers2")" <<'PY'
import sys
events, sample = int(sys.argv[1]), int(sys.argv[2])
curve = sys.argv[4].split()
r = {}
for line in open(sys.argv[3]):
    name, t0, t1, c0, c1, rss, user, system = line.split()
    r[name] = dict(s=float(t1) - float(t0), cpu=float(c1) - float(c0), rss=int(rss) / 1024, own=float(user) + float(system))
rate = lambda name, n=events: n / r[name]["s"]
w1 = rate("workers1") if "workers1" in r else None
print(f"{events:,} events; views: {sys.argv[5]}\n")
print("| run | seconds | events/s | vs workers 1 | PostgreSQL CPU s | clickd CPU s | CPU µs/event (PG + clickd) | peak RSS |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
def row(label, name):
    x = r[name]
    rel = f"{rate(name) / w1:.2f}" if w1 else "—"
    per = (x['cpu'] + x['own']) / events * 1e6
    print(f"| {label} | {x['s']:.1f} | {rate(name):,.0f} | {rel} | {x['cpu']:.1f} | {x['own']:.1f} | {per:.1f} | {x['rss']:.0f} MB |")
for n in curve:
    row(f"clickd ingest --once --workers {n}", f"workers{n}")
if "baseline" in r:
    row("the main before sharding, one connection", "baseline")
print("\n| baseline (same activity rows) | seconds | rows/s | PostgreSQL CPU s |")
print("|---|---:|---:|---:|")
print(f"| (a) COPY, unindexed table, 1 connection | {r['plain']['s']:.1f} | {rate('plain'):,.0f} | {r['plain']['cpu']:.1f} |")
for n in curve:
    x = r[f"indexed{n}"]
    print(f"| (c{n}) COPY, activity's indexes, {n} connection(s) | {x['s']:.1f} | {rate(f'indexed{n}'):,.0f} | {x['cpu']:.1f} |")
print(f"| (b) one INSERT transaction per event ({sample:,} events) | {r['per_row']['s']:.1f} | {rate('per_row', sample):,.0f} | — |")
if "workers2" in r:
    w2 = rate("workers2")
    print("\nworkers 2 against:")
    if w1: print(f"  workers 1 of this build      {w2 / w1:.2f}x   (target >= 1.6)")
    if "baseline" in r: print(f"  the main before sharding     {w2 / rate('baseline'):.2f}x   (target >= 1.5 at 10 M)")
    if "indexed2" in r: print(f"  (c2), COPY over 2 connections {w2 / rate('indexed2'):.2f}x   (target >= 0.5)")
    print(f"  (a), COPY unindexed          {w2 / rate('plain'):.2f}x")
    print(f"  (b), INSERT per event        {w2 / rate('per_row', sample):.1f}x   (target >= 20)")
    print(f"  peak RSS                     {r['workers2']['rss']:.0f} MB (target <= 150)")
if "baseline" in r:
    import os
    cores = os.cpu_count()
    b = r["baseline"]
    own = (b['cpu'] + b['own']) / events * 1e6
    budget = cores / (1.5 * rate("baseline")) * 1e6
    print(f"\nthe ceiling of 1.5x the main before sharding on {cores} cores: {budget:.1f} CPU µs per event (PG + clickd) with every")
    print(f"core busy all the time, against {own:.1f} µs per event that the main before sharding spent itself ({budget / own:.2f}x)")
PY

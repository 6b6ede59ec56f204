#!/usr/bin/env bash
# Where ingestion's database time goes, per statement (issue 13): a log of EVENTS events is
# ingested by this build (--workers WORKERS) and by the main before sharding
# (BASELINE_COMMIT, bench/baseline-build.sh) into fresh databases of one private cluster with
# pg_stat_statements; for each run, the statements by total execution time (calls, total
# ms, ms per call, rows), the transactions committed and PostgreSQL's CPU.
# Run after `swift build -c release`.
#
#   EVENTS=300000 WORKERS=2 bench/ingest-profile.sh
set -euo pipefail
events=${EVENTS:-300000}
workers=${WORKERS:-2}
top=${TOP:-12}
baseline_commit=${BASELINE_COMMIT-94b6c94}
here=$(cd "$(dirname "$0")" && pwd)
baseline_bin=""
[[ -n "$baseline_commit" ]] && baseline_bin=$("$here/baseline-build.sh" "$baseline_commit")
export PG_EXTRA_SETTINGS="shared_preload_libraries=pg_stat_statements pg_stat_statements.track=all pg_stat_statements.max=1000"
source "$here/pg.sh"
psql_() { psql "${conninfo/dbname=postgres/dbname=$1}" -X -q -v ON_ERROR_STOP=1 "${@:2}"; }
pg_cpu() { cpu_seconds "$(head -1 "$work/pg/data/postmaster.pid")" tree; }

"$bin/LinkBench" generate-log "$work/log" "$events" >/dev/null 2>&1
psql_ postgres -c "CREATE EXTENSION pg_stat_statements"

# profile NAME BINDIR MIGRATIONS [ingest options…]
profile() {
    local name=$1 dir=$2 migrations=$3; shift 3
    psql_ postgres -c "CREATE DATABASE $name"
    "$dir/clickd" migrate --database "${conninfo/dbname=postgres/dbname=$name}" --migrations "$migrations" >/dev/null 2>&1
    local xacts0 c0 t0 t1 c1
    xacts0=$(psql_ postgres -At -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$name'")
    psql_ postgres -c "SELECT pg_stat_statements_reset()" >/dev/null
    c0=$(pg_cpu); t0=$(now)
    "$dir/clickd" ingest --once --log "$work/log" --database "${conninfo/dbname=postgres/dbname=$name}" "$@" 2>/dev/null
    t1=$(now); c1=$(pg_cpu)
    sleep 0.6  # the statistics collector's flush
    echo "== $name: $(python3 -c "print(f'{$events / ($t1 - $t0):,.0f} events/s, PostgreSQL CPU {$c1 - $c0:.1f} s')"), transactions $(( $(psql_ postgres -At -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$name'") - xacts0 ))"
    psql_ postgres -P pager=off -c "
        SELECT s.calls, round(s.total_exec_time) AS total_ms, round((s.total_exec_time / s.calls)::numeric, 2) AS ms_per_call, s.rows,
               regexp_replace(left(s.query, 90), '\s+', ' ', 'g') AS statement
        FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = '$name' ORDER BY s.total_exec_time DESC LIMIT $top"
}

profile current "$bin" "$root/migrations" --workers "$workers" ${INGEST_OPTIONS:-}
[[ -n "$baseline_bin" ]] && profile baseline "$baseline_bin" "${baseline_bin%/.build/release}/migrations"

#!/usr/bin/env bash
# Erasure benchmark (issue 30): a database that ingested a log of EVENTS realistic events
# (bench/ingest.sh's generator: 100,000 customers), then PEOPLE of those customers erased.
# Each round clones that database twice (CREATE DATABASE … TEMPLATE) and ingests a second
# log of FOLLOW events into each clone with `clickd ingest --once --workers 2`: into the
# first alone ("without"), into the second while `clickd erase --file` of the PEOPLE runs
# beside it ("during"). The ingest's events/s during the erasure against without is the
# issue's figure (target ≥ 0.8×); the erasure's own time is measured twice: during the
# ingest, and alone on the first clone once its ingest is done. Run after `swift build -c release`.
#
#   EVENTS=10000000 FOLLOW=2000000 PEOPLE=1000 ROUNDS=2 bench/erase.sh
set -euo pipefail
events=${EVENTS:-10000000}
follow=${FOLLOW:-2000000}
people=${PEOPLE:-1000}
rounds=${ROUNDS:-2}
source "$(dirname "$0")/pg.sh"
"$bin/LinkBench" generate-log "$work/a" "$events" >/dev/null 2>&1
"$bin/LinkBench" generate-log "$work/b" "$follow" >/dev/null 2>&1
# PEOPLE distinct customers of the 100,000, spread evenly.
python3 -c "
import sys
n = int(sys.argv[1])
print('\n'.join(f'cust_{i * (100000 // n)}' for i in range(n)))" "$people" >"$work/people"
db() { echo "${conninfo/dbname=postgres/dbname=$1}"; }
psql "$conninfo" -Xqc "CREATE DATABASE base"
"$bin/clickd" migrate --database "$(db base)" --migrations "$root/migrations" >/dev/null 2>&1
t0=$(now)
"$bin/clickd" ingest --once --workers 2 --log "$work/a" --database "$(db base)" 2>/dev/null
t1=$(now)
psql "$(db base)" -XqAtc "CHECKPOINT" >/dev/null
echo "ONE MACHINE (2 cores): base: $events events ingested in $(echo "$t1 - $t0" | bc) s; $follow events more ingested per run; $people people erased"
echo
echo "| round | ingest without, s | ingest during the erasure, s | during / without (events/s) | erasure during the ingest, s | erasure alone, s | records subtracted |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
erase() { "$bin/clickd" erase --file "$work/people" --log "$work/a" --log "$work/b" --database "$(db "$1")"; }
for round in $(seq "$rounds"); do
    for clone in without during; do
        psql "$conninfo" -Xqc "DROP DATABASE IF EXISTS $clone" -c "CREATE DATABASE $clone TEMPLATE base"
    done
    psql "$conninfo" -Xqc "CHECKPOINT"
    t0=$(now)
    "$bin/clickd" ingest --once --workers 2 --log "$work/a" --log "$work/b" --database "$(db without)" 2>/dev/null
    t1=$(now)
    alone=$(erase without)
    t2=$(now)
    psql "$conninfo" -Xqc "CHECKPOINT"
    t3=$(now)
    "$bin/clickd" ingest --once --workers 2 --log "$work/a" --log "$work/b" --database "$(db during)" 2>/dev/null &
    ingest=$!
    (erase during >"$work/erase.out"; now >"$work/erase.end") &
    eraser=$!
    wait "$ingest"
    t4=$(now)
    wait "$eraser"
    python3 - "$round" "$t0" "$t1" "$t2" "$t3" "$t4" "$(cat "$work/erase.end")" "$alone" "$(cat "$work/erase.out")" <<'PY'
import re, sys
r = sys.argv[1]
t0, t1, t2, t3, t4, t5 = map(float, sys.argv[2:8])
alone, during = sys.argv[8], sys.argv[9]
records = re.search(r"(\d+) records subtracted", alone).group(1)
assert re.search(r"\(\d+ new\)", during), during
without, with_ = t1 - t0, t4 - t3
print(f"| {r} | {without:.1f} | {with_:.1f} | {without / with_:.2f} | {t5 - t3:.1f} | {t2 - t1:.1f} | {int(records):,} |")
PY
done

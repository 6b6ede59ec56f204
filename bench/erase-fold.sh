#!/usr/bin/env bash
# The fold's cost once the erasure list is not empty (issue 30): `clickd ingest --once
# --workers 2` of EVENTS events (bench/ingest.sh's generator) into a fresh database with an
# empty list ("empty") and into one where PEOPLE customers were erased first ("listed"),
# alternating, ROUNDS each; prints clickd's user CPU seconds (and wall) per run and the
# per-event difference. With a list, ingestion checks every record's customer against it.
#
#   EVENTS=1000000 PEOPLE=1000 ROUNDS=2 bench/erase-fold.sh
set -euo pipefail
events=${EVENTS:-1000000}
people=${PEOPLE:-1000}
rounds=${ROUNDS:-2}
source "$(dirname "$0")/pg.sh"
"$bin/LinkBench" generate-log "$work/a" "$events" >/dev/null 2>&1
python3 -c "
import sys
n = int(sys.argv[1])
print('\n'.join(f'cust_{i * (100000 // n)}' for i in range(n)))" "$people" >"$work/people"
db() { echo "${conninfo/dbname=postgres/dbname=$1}"; }
echo "ONE MACHINE (2 cores): $events events; $people people listed"
echo
echo "| round | list | clickd user CPU, s | wall, s |"
echo "|---:|---|---:|---:|"
declare -A total=([empty]=0 [listed]=0)
for round in $(seq "$rounds"); do
    for list in empty listed; do
        psql "$conninfo" -Xqc "DROP DATABASE IF EXISTS $list" -c "CREATE DATABASE $list"
        "$bin/clickd" migrate --database "$(db $list)" --migrations "$root/migrations" >/dev/null 2>&1
        if [[ $list == listed ]]; then
            "$bin/clickd" erase --file "$work/people" --log "$work/a" --database "$(db $list)" >/dev/null 2>&1
        fi
        psql "$conninfo" -Xqc "CHECKPOINT"
        /usr/bin/time -f "%U %e" -o "$work/time" "$bin/clickd" ingest --once --workers 2 --log "$work/a" --database "$(db $list)" 2>/dev/null
        read -r user wall <"$work/time"
        echo "| $round | $list | $user | $wall |"
        total[$list]=$(echo "${total[$list]} + $user" | bc)
    done
done
echo
echo "per event, listed − empty: $(echo "scale=3; (${total[listed]} - ${total[empty]}) * 1000000 / $rounds / $events" | bc) µs of clickd user CPU"

#!/usr/bin/env bash
# Rebuild from the archive against rebuild from local segments (issue 27): on a log of
# EVENTS realistic events (as bench/rebuild.sh), ingested once, then interleaved ROUNDS
# times on the same private PostgreSQL (fsync on): A = `clickd rebuild --log LOG` (every
# segment local), B = `clickd rebuild --log PRUNED --archive-dir ARCHIVE`, where PRUNED is
# the log with every sealed segment removed (as retention leaves it: only the open tail)
# and ARCHIVE holds them under <log id>/ as `clickd edge --archive-dir` writes them.
# Prints each time and the B/A ratio. Run after `swift build -c release`.
#
#   EVENTS=1000000 ROUNDS=3 bench/rebuild-archive.sh
set -euo pipefail
events=${EVENTS:-1000000}
rounds=${ROUNDS:-3}
workers=${WORKERS:-2}
source "$(dirname "$0")/pg.sh"

"$bin/LinkBench" generate-log "$work/log" "$events" >/dev/null 2>&1
"$bin/clickd" migrate --database "$conninfo" --migrations "$root/migrations" >/dev/null 2>&1
"$bin/clickd" ingest --once --workers "$workers" --log "$work/log" --database "$conninfo" 2>/dev/null
id=$(awk '$1 == "log_id" {print $2}' "$work/log/LOG")
mkdir -p "$work/archive/$id" "$work/pruned"
cp "$work/log/LOG" "$work/archive/$id/"
cp -a "$work/log/LOG" "$work/log/durable" "$work/pruned/"
segments=$(cd "$work/log" && ls ./*.seg | sort)
last=$(tail -1 <<<"$segments")
for s in $segments; do
    if [[ $s == "$last" ]]; then cp -a "$work/log/$s" "$work/pruned/"; else cp -a "$work/log/$s" "$work/archive/$id/"; fi
done
"$bin/clickd" log verify --archive "$work/archive" >/dev/null
echo "$(wc -l <<<"$segments") segments, $(($(wc -l <<<"$segments") - 1)) of them only in the archive for B"

for round in $(seq 1 "$rounds"); do
    t0=$(now)
    "$bin/clickd" rebuild --workers "$workers" --log "$work/log" --database "$conninfo" 2>/dev/null
    t1=$(now)
    "$bin/clickd" rebuild --workers "$workers" --log "$work/pruned" --archive-dir "$work/archive" --database "$conninfo" 2>/dev/null
    t2=$(now)
    python3 -c "a, b = $t1 - $t0, $t2 - $t1; print(f'round $round: local {a:.1f} s | archive + local tail {b:.1f} s | {b / a:.2f}x')"
done

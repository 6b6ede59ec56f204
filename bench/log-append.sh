#!/usr/bin/env bash
# Group-commit append benchmark (issue 2). For 1, 16 and 256 concurrent writers, appends
# 200-byte records through `clickd log bench` (the real group-commit path, fdatasync on),
# then measures the disk's own limit in the same run: the same bytes written by a plain C
# loop with one write + fdatasync per batch of the mean batch size clickd reached —
# appending to a growing file ("append limit", the issue's baseline) and overwriting a
# zero-filled one ("overwrite limit", the pattern of clickd's preallocated segments).
# Then the write path alone with fsync off. Prints Markdown tables; raw JSON goes to
# bench/out/.
#
#   bench/log-append.sh            (after `swift build -c release`; `make bench` does both)
#   BENCH_DIR=/mnt/ssd bench/log-append.sh   to measure another filesystem
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
clickd="$root/.build/release/clickd"
out="$root/bench/out"
mkdir -p "$out"
work=$(mktemp -d "${BENCH_DIR:-$root/.build}/clickd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$out/fsync-baseline" "$root/bench/fsync-baseline.c"

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
frame=216   # 200-byte payload + 16-byte frame header

echo "| writers | clickd appends/s | mean batch | fsyncs | p50 / p99 append (µs) | append limit (records/s) | ratio | disk p99 fdatasync (µs) | p99 ratio | overwrite limit (records/s) | ratio | overwrite p99 fdatasync (µs) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
# writers:events:segment MiB. The last row uses 1 GiB segments, so that the background
# zero-filling of the next segment (which starts when a segment is half full, here within
# the timed window) does not run: the steady state between two preparations.
for spec in 1:2000:64 16:20000:64 256:200000:64 256:200000:1024; do
    IFS=: read -r writers events segment <<<"$spec"
    rm -rf "$work/log"
    j=$("$clickd" log bench "$work/log" --events "$events" --writers "$writers" --payload 200 --segment-size "$segment" --json 2>/dev/null)
    echo "$j" > "$out/log-bench-w$writers-s$segment.json"
    aps=$(field "$j" appends_per_second); mean=$(field "$j" mean_batch); fsyncs=$(field "$j" fsyncs)
    p50=$(field "$j" p50_us); p99=$(field "$j" p99_us)
    batch=$(python3 -c "print(max(1, round($mean)))")
    batches=$(( events / batch ))
    b=$("$out/fsync-baseline" "$work/baseline" $(( batch * frame )) "$batches")
    echo "$b" > "$out/fsync-baseline-w$writers.json"
    limit=$(python3 -c "print(round($(field "$b" batches_per_second) * $batch))")
    dp99=$(field "$b" p99_us)
    ratio=$(python3 -c "print(f'{$aps / $limit:.2f}')")
    pratio=$(python3 -c "print(f'{$p99 / max(1, $dp99):.2f}')")
    o=$("$out/fsync-baseline" "$work/baseline" $(( batch * frame )) "$batches" prealloc)
    echo "$o" > "$out/fsync-baseline-prealloc-w$writers.json"
    olimit=$(python3 -c "print(round($(field "$o" batches_per_second) * $batch))")
    oratio=$(python3 -c "print(f'{$aps / $olimit:.2f}')")
    mean=$(python3 -c "print(f'{$mean:.1f}')")
    label=$writers; [[ $segment == 64 ]] || label="$writers (1 GiB segments)"
    echo "| $label | $aps | $mean | $fsyncs | $p50 / $p99 | $limit | $ratio | $dp99 | $pratio | $olimit | $oratio | $(field "$o" p99_us) |"
done

echo
echo "| fsync off | appends/s | mean batch | p50 / p99 append (µs) |"
echo "|---|---:|---:|---:|"
for writers in 1 16 256; do
    rm -rf "$work/log"
    j=$("$clickd" log bench "$work/log" --events 1000000 --writers "$writers" --payload 200 --no-sync --json 2>/dev/null)
    echo "$j" > "$out/log-bench-nosync-w$writers.json"
    echo "| $writers writers | $(field "$j" appends_per_second) | $(python3 -c "print(f'{$(field "$j" mean_batch):.1f}')") | $(field "$j" p50_us) / $(field "$j" p99_us) |"
done

cc -O2 -I "$root/Sources/CEventLog/include" -o "$out/crc32c-bench" "$root/bench/crc32c-bench.c" "$root/Sources/CEventLog/crc32c.c"
c=$("$out/crc32c-bench")
echo "$c" > "$out/crc32c.json"
echo
echo "| CRC-32C | 216-byte frames | one 64 MiB buffer |"
echo "|---|---:|---:|"
echo "| SSE4.2 (used: $(field "$c" hardware)) | $(field "$c" hw_216B_GBps) GB/s | $(field "$c" hw_64MiB_GBps) GB/s |"
echo "| slicing-by-8 fallback | $(field "$c" portable_216B_GBps) GB/s | $(field "$c" portable_64MiB_GBps) GB/s |"

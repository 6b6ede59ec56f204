#!/usr/bin/env bash
# Segment rewrite benchmark (issue 30): the edge's erasure rewrite of every sealed segment
# of a realistic log (bench/ingest.sh's generator: EVENTS events, 100,000 customers, 64 MiB
# segments) with PEOPLE customers' records redacted, against a plain durable copy of the
# same bytes (`cp` + `sync` of each file, the baseline the issue names). Each round first
# makes a fresh copy of the log's sealed segments (the baseline, timed) and then rewrites
# that copy (timed): both read from the page cache and end with every byte fsynced; the
# rewrite also checks every frame and the seal footer, computes an HMAC per record with a
# customer, and renames. Run after `swift build -c release`.
#
#   EVENTS=2000000 PEOPLE=1000 ROUNDS=3 bench/rewrite.sh
set -euo pipefail
events=${EVENTS:-2000000}
people=${PEOPLE:-1000}
rounds=${ROUNDS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.build/release"
work=$(mktemp -d "$root/.build/clickd-rewrite-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
"$bin/LinkBench" generate-log "$work/log" "$events" >/dev/null 2>&1
python3 -c "
import sys
n = int(sys.argv[1])
print('\n'.join(f'cust_{i * (100000 // n)}' for i in range(n)))" "$people" >"$work/people"
mapfile -t sealed < <(cd "$work/log" && ls -1 ./*.seg | sort | head -n -1)
bytes=$(cd "$work/log" && cat "${sealed[@]}" | wc -c)
echo "ONE MACHINE: $events events, ${#sealed[@]} sealed segments, $bytes bytes; $people people's records redacted"
echo
echo "| round | cp + sync, s | MB/s | rewrite, s | MB/s | rewrite / copy (MB/s) | records replaced |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for round in $(seq "$rounds"); do
    rm -rf "$work/copy"
    mkdir "$work/copy"
    cp "$work/log/LOG" "$work/copy/"
    t0=$(now)
    for seg in "${sealed[@]}"; do cp "$work/log/$seg" "$work/copy/$seg"; sync "$work/copy/$seg"; done
    sync "$work/copy"
    t1=$(now)
    # The copy needs a last (open) segment for the reader to take it as a log: the original's.
    last=$(cd "$work/log" && ls -1 ./*.seg | sort | tail -n 1)
    cp "$work/log/$last" "$work/log/durable" "$work/copy/"
    out=$("$bin/LinkBench" rewrite-log "$work/copy" "$work/people")
    python3 - "$round" "$t0" "$t1" "$bytes" "$out" <<'PY'
import sys
r, t0, t1, total, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
f = dict(kv.split("=") for kv in out.split())
copy, rewrite = t1 - t0, float(f["seconds"])
assert int(f["read_bytes"]) == total, (f, total)
mb = total / 1e6
print(f"| {r} | {copy:.2f} | {mb / copy:.0f} | {rewrite:.2f} | {mb / rewrite:.0f} | {copy / rewrite:.2f}x | {f['replaced']} |")
PY
done

#!/usr/bin/env bash
# Archiving's cost to the edge (issue 27): interleaved rounds of one build, durable, under
# wrk: A = archiving off (the defaults: --seal-after 60, 64 MiB segments, so nothing seals
# in a round), B = --archive-dir on a local directory with --seal-after 1 and 8 MiB
# segments, so segments seal and ship all through the round. Prints each side's
# requests/s and p99 latency and the B/A ratios, and how many segments B archived.
#
#   bench/archive.sh [--rounds N] [BINARY]          (default .build/release/clickd)
#   DURATION=10s CONNECTIONS=50 bench/archive.sh --rounds 5
set -euo pipefail
rounds=3
if [[ ${1:-} == --rounds ]]; then rounds=$2; shift 2; fi
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${1:-$root/.build/release/clickd}
[[ -x $binary ]] || { echo "archive.sh: $binary is not an executable (swift build -c release first)" >&2; exit 2; }
duration=${DURATION:-10s}
connections=${CONNECTIONS:-50}
work=$(mktemp -d "${TMPDIR:-/tmp}/clickd-archive-bench.XXXXXX")
# shellcheck source=bench/http.sh
source "$root/bench/http.sh"
eport=$(free_port)
target=$(sign_url "$binary" "$eport")
# wrk's 99th percentile, in microseconds.
p99_us() { awk '$1 == "99%" { v = $2; if (v ~ /ms$/) { sub(/ms/, "", v); v *= 1000 } else if (v ~ /us$/) { sub(/us/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000000 } print v }'; }
run() {  # label [edge arguments]
    local label=$1
    shift
    start_edge "$binary" "$eport" durable "$@"
    local result
    result=$(wrk -t1 -c"$connections" -d"$duration" --latency "$target")
    local admin
    admin=$(grep -o 'admin.listen=127.0.0.1:[0-9]*' "$work/edge-durable.log" | head -1 | cut -d: -f2)
    archived=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$admin/metrics').read().decode())" | awk '/^clickd_archived_segments_total/ {print $2}')
    kill -TERM "$epid"; wait "$epid" || true
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$result")
    p99=$(p99_us <<<"$result")
}
for round in $(seq 1 "$rounds"); do
    run off
    a_rps=$rps a_p99=$p99
    rm -rf "$work/archive"; mkdir "$work/archive"
    run on --archive-dir "$work/archive" --seal-after 1 --segment-size 8
    b_rps=$rps b_p99=$p99 b_archived=${archived:-0}
    python3 -c "print(f'round $round: off {$a_rps:.0f} req/s p99 {$a_p99:.0f} us | archiving {$b_rps:.0f} req/s p99 {$b_p99:.0f} us, {int(float(\"$b_archived\"))} files archived | throughput {$b_rps / $a_rps:.2f}x, p99 {$b_p99 / $a_p99:.2f}x')"
done

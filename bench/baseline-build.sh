#!/usr/bin/env bash
# Builds clickd as it was at COMMIT (release) for the benchmarks that compare against an
# earlier main, and prints the directory of its binaries. The source is exported with
# `git archive` into .build-baseline-COMMIT/ (ignored by git) and built there once; a later
# call reuses the build. Takes ~10 minutes the first time on this 2-core machine.
#
#   bench/baseline-build.sh 94b6c94      → …/.build-baseline-94b6c94/.build/release
set -euo pipefail
commit=${1:?usage: bench/baseline-build.sh COMMIT}
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.build-baseline-$commit"
if [[ ! -x "$dir/.build/release/clickd" ]]; then
    rm -rf "$dir" && mkdir -p "$dir"
    git -C "$root" archive "$commit" | tar -x -C "$dir"
    swift build -c release --package-path "$dir" --product clickd >&2
fi
echo "$dir/.build/release"

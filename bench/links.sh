#!/usr/bin/env bash
# LinkTracking benchmark (issue 3), one core: rewrite throughput on a realistic 30 KB HTML
# email with 25 links (MB/s scanned and messages/s), and sign / verify rates for a token of
# a 60-character destination — each against a baseline measured in the same run (a bare
# '<'-counting pass over the same bytes; one plain HMAC-SHA256 of the same token bytes).
# Also prints tracked-URL lengths. Run after `swift build -c release` (`make bench` does both).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.build/release"
out="$root/bench/out"
mkdir -p "$out"
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

j=$(taskset -c 0 "$bin/LinkBench")
echo "$j" > "$out/links.json"
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo "| measure (one core) | clickd | baseline (same run) | ratio |"
echo "|---|---:|---:|---:|"
echo "| rewrite, MB/s of HTML ($(field "$j" email_bytes) B, $(field "$j" links) links, $(field "$j" tracked) tracked) | $(field "$j" rewrite_mb_per_second) | $(field "$j" scan_baseline_mb_per_second) ('<' count) | $(ratio "$(field "$j" rewrite_mb_per_second)" "$(field "$j" scan_baseline_mb_per_second)") |"
echo "| rewrite, messages/s | $(field "$j" rewrite_messages_per_second) | | |"
echo "| sign, tokens/s | $(field "$j" sign_per_second) | $(field "$j" hmac_baseline_per_second) (HMAC only) | $(ratio "$(field "$j" sign_per_second)" "$(field "$j" hmac_baseline_per_second)") |"
echo "| verify, tokens/s | $(field "$j" verify_per_second) | $(field "$j" hmac_baseline_per_second) (HMAC only) | $(ratio "$(field "$j" verify_per_second)" "$(field "$j" hmac_baseline_per_second)") |"
echo "| reject a forged token, tokens/s | $(field "$j" reject_forged_per_second) | | |"

keys=$(mktemp)
trap 'rm -f "$keys"' EXIT
"$bin/clickd" keys generate --kid k7f2 > "$keys"
sign() { "$bin/clickd" links sign --keys "$keys" --base https://t.example.com --type sms --delivery dlv_01HXYZ9K2M4N6P8Q \
    --customer cust_48213 --campaign 17 --url "$1" 2>/dev/null; }
u60="https://shop.example.com/collections/spring/blue-shoes?size=42"
u300="https://shop.example.com/collections/spring/$(printf 'p%.0s' $(seq 1 252))"
echo
echo "| destination | tracked URL (base https://t.example.com, ids dlv_01HXYZ9K2M4N6P8Q / cust_48213 / campaign 17) |"
echo "|---|---:|"
echo "| ${#u60} characters | $(sign "$u60" | tr -d '\n' | wc -c) characters |"
echo "| ${#u300} characters | $(sign "$u300" | tr -d '\n' | wc -c) characters |"

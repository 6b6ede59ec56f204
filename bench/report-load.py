#!/usr/bin/env python3
"""Drives a running `clickd report` for bench/report.sh: for each page (and its CSV twin),
WARM requests unmeasured, then RUNS measured, each with a random source, link or person,
over one keep-alive connection; prints a JSON object of p50/p95/max milliseconds per page,
then streams the big segment's CSV and reports its rows per second and the server's peak RSS.

    report-load.py PORT SERVER_PID RUNS WARM FROM TO
"""
import http.client
import json
import random
import sys
import threading
import time

port, pid, runs, warm, day_from, day_to = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
rng = random.Random(7)
campaign = lambda: f"src_{3 * rng.randrange(0, 167)}"
link = lambda: f"link-{rng.randrange(0, 20)}"
person = lambda: f"cust_{rng.randrange(0, 100000)}"
rangeq = f"from={day_from}&to={day_to}"
month = "from=2026-09-01&to=2026-09-30"

pages = {
    "sources": lambda: f"/?{rangeq}",
    "sources.csv": lambda: f"/sources.csv?{rangeq}",
    "overview (3 days, hourly)": lambda: f"/sources/campaign/{campaign()}?{rangeq}",
    "overview (30 days, daily)": lambda: f"/sources/campaign/{campaign()}?{month}",
    "top links.csv": lambda: f"/sources/campaign/{campaign()}.csv?{rangeq}",
    "clicks over time.csv": lambda: f"/sources/campaign/{campaign()}/clicks.csv?{rangeq}",
    "segment": lambda: f"/sources/campaign/{campaign()}/links/{link()}?{rangeq}",
    "segment.csv": lambda: f"/sources/campaign/{campaign()}/links/{link()}.csv?{rangeq}",
    "segment by URL": lambda: f"/segments/clicked-link?url=*item-{rng.randrange(0, 20)}%3Fref=email&source=campaign/{campaign()}&{rangeq}",
    "segment by URL.csv": lambda: f"/segments/clicked-link.csv?url=*item-{rng.randrange(0, 20)}%3Fref=email&source=campaign/{campaign()}&{rangeq}",
    "person": lambda: f"/people/{person()}?{rangeq}",
    "person.csv": lambda: f"/people/{person()}.csv?{rangeq}",
    "bots": lambda: f"/bots?{rangeq}",
    "bots.csv": lambda: f"/bots.csv?{rangeq}",
}

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

peak = [rss_kib()]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kib())
        time.sleep(0.05)
threading.Thread(target=sample, daemon=True).start()

connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
def get(path):
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"{path}: HTTP {response.status}: {body[:300]!r}")
    return body

results = {}
for name, make in pages.items():
    for _ in range(warm):
        get(make())
    times = []
    for _ in range(runs):
        path = make()
        started = time.perf_counter()
        get(path)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    results[name] = {"p50_ms": round(times[len(times) // 2], 2), "p95_ms": round(times[int(len(times) * 0.95) - 1], 2), "max_ms": round(times[-1], 2)}

# The 100,000-member segment's CSV, streamed and counted as it arrives.
started = time.perf_counter()
connection.request("GET", f"/sources/campaign/big/links/all.csv?{rangeq}")
response = connection.getresponse()
rows = -1  # the header
while True:
    chunk = response.read(1 << 16)
    if not chunk:
        break
    rows += chunk.count(b"\r\n")
elapsed = time.perf_counter() - started
stop.set()
results["big segment.csv"] = {"rows": rows, "seconds": round(elapsed, 3), "rows_per_s": int(rows / elapsed)}
results["report peak RSS MiB"] = round(peak[0] / 1024, 1)
print(json.dumps(results, indent=1))

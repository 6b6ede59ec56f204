#!/usr/bin/env bash
# Tier 3 benchmark (issue 28) — ON ONE MACHINE: a single box cannot show scaling; the figures
# are the overhead of Citus's routing and where it goes.
#
# On a log of EVENTS generated events (as bench/ingest.sh), in the same run:
#   * `clickd ingest --once --workers WORKERS` into plain PostgreSQL (bench/pg.sh: fsync on,
#     server-sized settings) and into a 3-node Citus cluster on loopback sockets
#     (scripts/throwaway-citus: a coordinator and two workers, the same settings, fsync on);
#   * the CPU each node's PostgreSQL spent per event (the postmaster and every backend);
#   * per node: clickd shards, rows held, transactions committed during the ingest;
#   * `clickd rebuild` of the same log on both, and how long its swap held the live
#     checkpoints (ingestion waited), from its log line;
#   * the views' totals on both, which must be equal.
# Citus must be installed (docs/scale-out.md); run after `swift build -c release`.
#
#   EVENTS=1000000 WORKERS=2 bench/citus.sh
set -euo pipefail
events=${EVENTS:-1000000}
workers=${WORKERS:-2}
source "$(dirname "$0")/pg.sh"

# The cluster: bench/pg.sh's settings, but a smaller cache per node (three servers share
# this machine's memory) and fsync on, as the plain server has.
cluster_settings="$THROWAWAY_PG_SETTINGS shared_buffers=2GB fsync=on synchronous_commit=on full_page_writes=on"
exec {citus_fd}> >(THROWAWAY_PG_SETTINGS="$cluster_settings" exec "$root/scripts/throwaway-citus" serve 2 >"$work/citus.ready")
for _ in $(seq 600); do grep -q '^ready ' "$work/citus.ready" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready ' "$work/citus.ready" || { echo "bench/citus.sh: the Citus cluster did not start" >&2; exit 1; }
nodes=$(sed 's/^ready //' "$work/citus.ready")
coordinator=$("$root/scripts/throwaway-citus" createdb bench "$nodes")
IFS='|' read -r -a node_conns <<<"$nodes"
# The cluster stops when its standard input closes: close it before bench/pg.sh's cleanup
# waits for the children.
trap 'exec {citus_fd}>&-; cleanup' EXIT

# node_pid CONNINFO: the node's postmaster (its directory is above its socket directory).
node_pid() { local host; host=$(tr ' ' '\n' <<<"$1" | sed -n 's/^host=//p'); head -1 "${host%/socket}/data/postmaster.pid"; }
node_cpu() { cpu_seconds "$(node_pid "$1")" tree; }
node_xacts() { psql "${1/dbname=postgres/dbname=bench}" -XAtc "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"; }
pg_cpu() { cpu_seconds "$(head -1 "$work/pg/data/postmaster.pid")" tree; }
clickd_timed() { /usr/bin/time -f "%U %S" -o "$work/clickd.cpu" "$bin/clickd" "$@"; }
swap_ms() { sed -n 's/.*rebuild.swap_lock_ms=\([0-9.]*\).*/\1/p' "$1" | tail -1; }

"$bin/LinkBench" generate-log "$work/log" "$events" >/dev/null 2>&1
"$bin/clickd" migrate --database "$conninfo" --migrations "$root/migrations" >/dev/null 2>&1
"$bin/clickd" migrate --database "$coordinator" --migrations "$root/migrations" >"$work/citus.migrate" 2>/dev/null

# Plain PostgreSQL.
c0=$(pg_cpu); t0=$(now)
clickd_timed ingest --once --workers "$workers" --log "$work/log" --database "$conninfo" 2>/dev/null
t1=$(now); c1=$(pg_cpu); plain_clickd=$(awk '{print $1 + $2}' "$work/clickd.cpu")
clickd_timed rebuild --workers "$workers" --log "$work/log" --database "$conninfo" 2>"$work/plain.rebuild"
t2=$(now)
plain="$t0 $t1 $t2 $c0 $c1 $plain_clickd $(swap_ms "$work/plain.rebuild")"

# Citus: CPU and committed transactions of every node around the ingest.
before=(); for n in "${node_conns[@]}"; do before+=("$(node_cpu "$n") $(node_xacts "$n")"); done
t0=$(now)
clickd_timed ingest --once --workers "$workers" --log "$work/log" --database "$coordinator" 2>/dev/null
t1=$(now)
after=(); for n in "${node_conns[@]}"; do after+=("$(node_cpu "$n") $(node_xacts "$n")"); done
citus_clickd=$(awk '{print $1 + $2}' "$work/clickd.cpu")
# Rows per node, exact: every distributed clickd table, counted shard by shard.
psql "$coordinator" -XAtF' ' -c "
    SELECT n.nodename || ':' || n.nodeport, sum(r.result::bigint), sum(r.result::bigint) FILTER (WHERE p.logicalrelid = 'clickd_internal.activity'::regclass)
    FROM pg_dist_partition p
    CROSS JOIN LATERAL run_command_on_shards(p.logicalrelid, 'SELECT count(*) FROM %s') r
    JOIN pg_dist_placement pl ON pl.shardid = r.shardid JOIN pg_dist_node n ON n.groupid = pl.groupid
    WHERE p.logicalrelid::text LIKE 'clickd\_internal.%' AND p.partmethod = 'h' GROUP BY 1 ORDER BY 1" >"$work/citus.rows"
clickd_timed rebuild --workers "$workers" --log "$work/log" --database "$coordinator" 2>"$work/citus.rebuild"
t2=$(now)
citus="$t0 $t1 $t2 0 0 $citus_clickd $(swap_ms "$work/citus.rebuild")"

totals="SELECT (SELECT count(*) FROM clickd.activity), (SELECT sum(total_clicks) FROM clickd.link_clicks), (SELECT sum(unique_clickers) FROM clickd.link_clicks), (SELECT sum(clicked_customers) FROM clickd.message_stats)"
plain_totals=$(psql "$conninfo" -XAtc "$totals")
citus_totals=$(psql "$coordinator" -XAtc "$totals")

node_lines=""
for i in "${!node_conns[@]}"; do
    host=$(tr ' ' '\n' <<<"${node_conns[$i]}" | sed -n 's/^host=//p'); port=$(tr ' ' '\n' <<<"${node_conns[$i]}" | sed -n 's/^port=//p')
    node_lines+="$i $host:$port ${before[$i]} ${after[$i]}"$'\n'
done

python3 - "$events" "$workers" "$plain" "$citus" "$plain_totals" "$citus_totals" "$work/citus.rows" "$work/citus.migrate" "$node_lines" <<'PY'
import sys
events, workers = int(sys.argv[1]), int(sys.argv[2])
def run(text):
    t0, t1, t2, c0, c1, clickd, swap = text.split()
    return dict(ingest=float(t1) - float(t0), rebuild=float(t2) - float(t1), pg_cpu=float(c1) - float(c0), clickd=float(clickd), swap=float(swap or "nan"))
plain, citus = run(sys.argv[3]), run(sys.argv[4])
rows = {}
for line in open(sys.argv[7]):
    node, total, activity = line.split()
    rows[node] = (int(total), int(activity or 0))
shards = {}
for line in open(sys.argv[8]):
    if line.startswith("citus: clickd's ") and " by node: " in line:
        for item in line.split(" by node: ")[1].split():
            node, count = item.rsplit("=", 1)
            shards[node] = int(count)
nodes = []
for line in sys.argv[9].strip().splitlines():
    i, node, cpu0, x0, cpu1, x1 = line.split()
    nodes.append((int(i), node, float(cpu1) - float(cpu0), int(x1) - int(x0)))
citus_cpu = sum(n[2] for n in nodes)
us = lambda seconds: seconds / events * 1e6
print(f"ONE MACHINE (2 cores): {events:,} events, --workers {workers}; the cluster is a coordinator and two workers on this box.\n")
print("| measure | plain PostgreSQL | Citus (3 nodes) | Citus / plain |")
print("|---|---:|---:|---:|")
print(f"| ingest --once, seconds | {plain['ingest']:.1f} | {citus['ingest']:.1f} | {citus['ingest'] / plain['ingest']:.2f}x |")
print(f"| ingest, events/s | {events / plain['ingest']:,.0f} | {events / citus['ingest']:,.0f} | {plain['ingest'] / citus['ingest']:.2f}x |")
print(f"| PostgreSQL CPU per event, all nodes (µs) | {us(plain['pg_cpu']):.1f} | {us(citus_cpu):.1f} | {citus_cpu / plain['pg_cpu']:.2f}x |")
print(f"| clickd CPU per event (µs) | {us(plain['clickd']):.1f} | {us(citus['clickd']):.1f} | {citus['clickd'] / plain['clickd']:.2f}x |")
print(f"| rebuild, seconds | {plain['rebuild']:.1f} | {citus['rebuild']:.1f} | {citus['rebuild'] / plain['rebuild']:.2f}x |")
print(f"| rebuild's swap: live checkpoints held (ms) | {plain['swap']:.0f} | {citus['swap']:.0f} | {citus['swap'] / plain['swap']:.2f}x |")
print("\nWhere the Citus ingest went, per node:\n")
print("| node | role | clickd shards | rows held | activity rows | transactions during the ingest | PostgreSQL CPU per event (µs) |")
print("|---|---|---:|---:|---:|---:|---:|")
for i, node, cpu, xacts in nodes:
    total, activity = rows.get(node, (0, 0))
    print(f"| {node} | {'coordinator' if i == 0 else 'worker'} | {shards.get(node, 0)} | {total:,} | {activity:,} | {xacts:,} | {us(cpu):.1f} |")
print(f"\nviews' totals (activity rows, clicks, unique clickers, clicked customers): plain {sys.argv[5]}, Citus {sys.argv[6]}: {'equal' if sys.argv[5] == sys.argv[6] else 'DIFFERENT'}")
if sys.argv[5] != sys.argv[6]:
    sys.exit(1)
PY

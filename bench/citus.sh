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
# The cluster's ingest and rebuild run once per write shape in SHAPES (default "tables
# function": the temporary-table shape and the function shape, docs/design/citus.md), each
# into a database of its own on the same cluster; plain PostgreSQL runs the default shape.
#
#   EVENTS=1000000 WORKERS=2 bench/citus.sh
set -euo pipefail
events=${EVENTS:-1000000}
workers=${WORKERS:-2}
read -r -a shapes <<<"${SHAPES:-tables function}"
source "$(dirname "$0")/pg.sh"

# The cluster: bench/pg.sh's settings, but a smaller cache per node (three servers share
# this machine's memory) and fsync on, as the plain server has.
cluster_settings="$THROWAWAY_PG_SETTINGS shared_buffers=2GB fsync=on synchronous_commit=on full_page_writes=on"
exec {citus_fd}> >(THROWAWAY_PG_SETTINGS="$cluster_settings" exec "$root/scripts/throwaway-citus" serve 2 >"$work/citus.ready")
for _ in $(seq 600); do grep -q '^ready ' "$work/citus.ready" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready ' "$work/citus.ready" || { echo "bench/citus.sh: the Citus cluster did not start" >&2; exit 1; }
nodes=$(sed 's/^ready //' "$work/citus.ready")
IFS='|' read -r -a node_conns <<<"$nodes"
# The cluster stops when its standard input closes: close it before bench/pg.sh's cleanup
# waits for the children.
trap 'exec {citus_fd}>&-; cleanup' EXIT

# node_pid CONNINFO: the node's postmaster (its directory is above its socket directory).
node_pid() { local host; host=$(tr ' ' '\n' <<<"$1" | sed -n 's/^host=//p'); head -1 "${host%/socket}/data/postmaster.pid"; }
node_cpu() { cpu_seconds "$(node_pid "$1")" tree; }
node_xacts() { psql "${1/dbname=postgres/dbname=$2}" -XAtc "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"; }
pg_cpu() { cpu_seconds "$(head -1 "$work/pg/data/postmaster.pid")" tree; }
clickd_timed() { /usr/bin/time -f "%U %S" -o "$work/clickd.cpu" "$bin/clickd" "$@"; }
swap_ms() { sed -n 's/.*rebuild.swap_lock_ms=\([0-9.]*\).*/\1/p' "$1" | tail -1; }

"$bin/LinkBench" generate-log "$work/log" "$events" >/dev/null 2>&1
"$bin/clickd" migrate --database "$conninfo" --migrations "$root/migrations" >/dev/null 2>&1

# Plain PostgreSQL.
c0=$(pg_cpu); t0=$(now)
clickd_timed ingest --once --workers "$workers" --log "$work/log" --database "$conninfo" 2>/dev/null
t1=$(now); c1=$(pg_cpu); plain_clickd=$(awk '{print $1 + $2}' "$work/clickd.cpu")
clickd_timed rebuild --workers "$workers" --log "$work/log" --database "$conninfo" 2>"$work/plain.rebuild"
t2=$(now)
plain="$t0 $t1 $t2 $c0 $c1 $plain_clickd $(swap_ms "$work/plain.rebuild")"

# Citus: CPU and committed transactions of every node around the ingest.
# citus_run SHAPE: the cluster's ingest and rebuild in that shape, into database bench_SHAPE.
citus_run() {
    local shape=$1 db=bench_$1 coordinator n before=() after=() i host port
    coordinator=$("$root/scripts/throwaway-citus" createdb "$db" "$nodes")
    "$bin/clickd" migrate --database "$coordinator" --migrations "$root/migrations" >"$work/citus.migrate" 2>/dev/null
    for n in "${node_conns[@]}"; do before+=("$(node_cpu "$n") $(node_xacts "$n" "$db")"); done
    local t0 t1 t2
    t0=$(now)
    CLICKD_INGEST_SHAPE=$shape clickd_timed ingest --once --workers "$workers" --log "$work/log" --database "$coordinator" 2>/dev/null
    t1=$(now)
    for n in "${node_conns[@]}"; do after+=("$(node_cpu "$n") $(node_xacts "$n" "$db")"); done
    local citus_clickd
    citus_clickd=$(awk '{print $1 + $2}' "$work/clickd.cpu")
    psql "$coordinator" -XAtF' ' -c "
        SELECT n.nodename || ':' || n.nodeport, sum(r.result::bigint), sum(r.result::bigint) FILTER (WHERE p.logicalrelid = 'clickd_internal.activity'::regclass)
        FROM pg_dist_partition p
        CROSS JOIN LATERAL run_command_on_shards(p.logicalrelid, 'SELECT count(*) FROM %s') r
        JOIN pg_dist_placement pl ON pl.shardid = r.shardid JOIN pg_dist_node n ON n.groupid = pl.groupid
        WHERE p.logicalrelid::text LIKE 'clickd\_internal.%' AND p.partmethod = 'h' GROUP BY 1 ORDER BY 1" >"$work/citus.rows.$shape"
    CLICKD_INGEST_SHAPE=$shape clickd_timed rebuild --workers "$workers" --log "$work/log" --database "$coordinator" 2>"$work/citus.rebuild"
    t2=$(now)
    echo "$t0 $t1 $t2 0 0 $citus_clickd $(swap_ms "$work/citus.rebuild")" >"$work/citus.run.$shape"
    psql "$coordinator" -XAtc "$totals" >"$work/citus.totals.$shape"
    : >"$work/citus.nodes.$shape"
    for i in "${!node_conns[@]}"; do
        host=$(tr ' ' '\n' <<<"${node_conns[$i]}" | sed -n 's/^host=//p'); port=$(tr ' ' '\n' <<<"${node_conns[$i]}" | sed -n 's/^port=//p')
        echo "$i $host:$port ${before[$i]} ${after[$i]}" >>"$work/citus.nodes.$shape"
    done
}
totals="SELECT (SELECT count(*) FROM clickd.activity), (SELECT sum(total_clicks) FROM clickd.link_clicks), (SELECT sum(unique_clickers) FROM clickd.link_clicks), (SELECT sum(clicked_customers) FROM clickd.message_stats)"
plain_totals=$(psql "$conninfo" -XAtc "$totals")
for shape in "${shapes[@]}"; do citus_run "$shape"; done

python3 - "$events" "$workers" "$plain" "$plain_totals" "$work" "${shapes[@]}" <<'PY'
import sys
events, workers = int(sys.argv[1]), int(sys.argv[2])
plain_text, plain_totals, work, shapes = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
def run(text):
    t0, t1, t2, c0, c1, clickd, swap = text.split()
    return dict(ingest=float(t1) - float(t0), rebuild=float(t2) - float(t1), pg_cpu=float(c1) - float(c0), clickd=float(clickd), swap=float(swap or "nan"))
plain = run(plain_text)
shards = {}
for line in open(f"{work}/citus.migrate"):
    if line.startswith("citus: clickd's ") and " by node: " in line:
        for item in line.split(" by node: ")[1].split():
            node, count = item.rsplit("=", 1)
            shards[node] = int(count)
citus, nodes, rows, totals = {}, {}, {}, {}
for shape in shapes:
    citus[shape] = run(open(f"{work}/citus.run.{shape}").read())
    totals[shape] = open(f"{work}/citus.totals.{shape}").read().strip()
    rows[shape] = {}
    for line in open(f"{work}/citus.rows.{shape}"):
        node, total, activity = line.split()
        rows[shape][node] = (int(total), int(activity or 0))
    nodes[shape] = []
    for line in open(f"{work}/citus.nodes.{shape}"):
        i, node, cpu0, x0, cpu1, x1 = line.split()
        nodes[shape].append((int(i), node, float(cpu1) - float(cpu0), int(x1) - int(x0)))
    citus[shape]["pg_cpu"] = sum(n[2] for n in nodes[shape])
    citus[shape]["coordinator"] = sum(n[2] for n in nodes[shape] if n[0] == 0)
us = lambda seconds: seconds / events * 1e6
print(f"ONE MACHINE (2 cores): {events:,} events, --workers {workers}; the cluster is a coordinator and two workers on this box.\n")
print("| measure | plain PostgreSQL | " + " | ".join(f"Citus, {s} shape | / plain" for s in shapes) + " |")
print("|---|---:|" + "---:|---:|" * len(shapes))
def line(name, f, fmt):
    cells = [fmt(f(plain))]
    for shape in shapes:
        v, p = f(citus[shape]), f(plain)
        cells += [fmt(v), f"{v / p:.2f}x" if p else "–"]
    print(f"| {name} | " + " | ".join(cells) + " |")
line("ingest --once, seconds", lambda r: r["ingest"], lambda v: f"{v:.1f}")
line("ingest, events/s", lambda r: events / r["ingest"], lambda v: f"{v:,.0f}")
line("PostgreSQL CPU per event, all nodes (µs)", lambda r: us(r["pg_cpu"]), lambda v: f"{v:.1f}")
line("the coordinator's CPU per event (µs)", lambda r: us(r.get("coordinator", r["pg_cpu"])), lambda v: f"{v:.1f}")
line("clickd CPU per event (µs)", lambda r: us(r["clickd"]), lambda v: f"{v:.1f}")
line("rebuild, seconds", lambda r: r["rebuild"], lambda v: f"{v:.1f}")
line("rebuild's swap: live checkpoints held (ms)", lambda r: r["swap"], lambda v: f"{v:.0f}")
print("\n(plain PostgreSQL's \"coordinator\" is its one server.)")
failed = False
for shape in shapes:
    print(f"\nWhere the Citus ingest went in the {shape} shape, per node:\n")
    print("| node | role | clickd shards | rows held | activity rows | transactions during the ingest | PostgreSQL CPU per event (µs) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for i, node, cpu, xacts in nodes[shape]:
        total, activity = rows[shape].get(node, (0, 0))
        print(f"| {node} | {'coordinator' if i == 0 else 'worker'} | {shards.get(node, 0)} | {total:,} | {activity:,} | {xacts:,} | {us(cpu):.1f} |")
    same = totals[shape] == plain_totals
    failed |= not same
    print(f"\nviews' totals (activity rows, clicks, unique clickers, clicked customers): plain {plain_totals}, Citus {totals[shape]}: {'equal' if same else 'DIFFERENT'}")
sys.exit(1 if failed else 0)
PY

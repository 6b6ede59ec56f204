# Sourced by the bench scripts: a work directory under .build and a private PostgreSQL
# (fsync on, server-sized settings below) in it, both removed on exit. Sets root, bin, work, conninfo, PG_PID.
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.build/release"
work=$(mktemp -d "$root/.build/clickd-$(basename "$0" .sh)-bench.XXXXXX")
chmod 755 "$work"
cleanup() { [[ -n "${PG_PID:-}" ]] && kill "$PG_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# PostgreSQL configured as a database server would be, not with its defaults (128 MB of
# shared buffers, 1 GB of WAL between checkpoints — sized for a laptop): a quarter of the
# memory as shared buffers up to 4 GB, 8 GB of WAL, compressed full-page images. The
# baselines run on the same cluster. PG_SETTINGS replaces this ("" for the defaults);
# PG_EXTRA_SETTINGS adds to it (e.g. an extension to preload).
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
sb_mb=$(( mem_mb / 4 < 4096 ? mem_mb / 4 : 4096 ))
export THROWAWAY_PG_SETTINGS=${PG_SETTINGS-"shared_buffers=${sb_mb}MB max_wal_size=8GB checkpoint_timeout=15min wal_compression=on"}${PG_EXTRA_SETTINGS:+ $PG_EXTRA_SETTINGS}
coproc PG { exec "$root/scripts/throwaway-pg" serve-dir "$work/pg"; }
read -r ready <&"${PG[0]}"
conninfo=${ready#ready }
now() { date +%s.%N; }

# cpu_seconds PID [tree]: the CPU time (user + system, /proc) of process PID so far; with
# "tree", also of its live children and of every child it has reaped (cutime/cstime) — for
# the postmaster: the whole cluster, backends that came and went included.
cpu_seconds() {
    python3 - "$1" "${2:-}" <<'PY'
import os, sys
pid, tree = sys.argv[1], sys.argv[2] == "tree"
def fields(p):
    with open(f"/proc/{p}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
f = fields(pid)
ticks = sum(int(x) for x in f[11:15 if tree else 13])
if tree:
    for child in os.listdir("/proc"):
        if child.isdigit() and child != pid:
            try:
                g = fields(child)
            except OSError:
                continue
            if g[1] == pid:
                ticks += sum(int(x) for x in g[11:15])
print(ticks / os.sysconf("SC_CLK_TCK"))
PY
}

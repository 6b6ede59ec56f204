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
# baselines run on the same cluster. PG_SETTINGS replaces this ("" for the defaults).
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
sb_mb=$(( mem_mb / 4 < 4096 ? mem_mb / 4 : 4096 ))
export THROWAWAY_PG_SETTINGS=${PG_SETTINGS-"shared_buffers=${sb_mb}MB max_wal_size=8GB checkpoint_timeout=15min wal_compression=on"}
coproc PG { exec "$root/scripts/throwaway-pg" serve-dir "$work/pg"; }
read -r ready <&"${PG[0]}"
conninfo=${ready#ready }
now() { date +%s.%N; }

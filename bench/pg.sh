# Sourced by the bench scripts: a work directory under .build and a private PostgreSQL
# (fsync on) in it, both removed on exit. Sets root, bin, work, conninfo, PG_PID.
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.build/release"
work=$(mktemp -d "$root/.build/clickd-$(basename "$0" .sh)-bench.XXXXXX")
chmod 755 "$work"
cleanup() { [[ -n "${PG_PID:-}" ]] && kill "$PG_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

coproc PG { exec "$root/scripts/throwaway-pg" serve-dir "$work/pg"; }
read -r ready <&"${PG[0]}"
conninfo=${ready#ready }
now() { date +%s.%N; }

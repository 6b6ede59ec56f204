# Sourced by the HTTP bench scripts (edge.sh, edge-ab.sh): wrk and nginx (installed when
# missing, as root or through sudo), a work directory removed on exit with every process
# listed in `pids`, free_port, and nginx answering `return 302` with the edge's Location on
# two workers (the edge has two event loops) — the baseline. Expects `work` to be set.
# Sets nport.
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
if [[ ${#need[@]} -gt 0 ]]; then
    if [[ $(id -u) -eq 0 ]]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else echo "$(basename "$0") needs: apt-get install -y ${need[*]}" >&2; exit 1; fi
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nport=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$nport; location / { return 302 https://shop.example.com/collections/spring/blue-shoes?size=42; } }
}
CONF
"$nginx_bin" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>/dev/null &
pids+=($!)

# The key ring of the edges under test, made once by the first binary that needs it.
need_keys() { [[ -f $work/keys ]] || "$1" keys generate --kid k7f2 > "$work/keys"; }

# A tracked URL for the edge on 127.0.0.1:PORT, signed with $work/keys, to DESTINATION
# (default an ASCII shop link; e.g. DESTINATION='https://bücher.example/straße?größe=42'
# measures the edge's non-ASCII Location path, docs/edge.md "Location").
sign_url() {  # binary port
    need_keys "$1"
    "$1" links sign --keys "$work/keys" --base "http://127.0.0.1:$2" --type email --delivery dlv_01HXYZ9K2M4N6P8Q \
        --customer cust_48213 --campaign 17 --url "${DESTINATION:-https://shop.example.com/collections/spring/blue-shoes?size=42}" 2>/dev/null
}

# An open pixel's URL for the same message, as `links rewrite` inserts it into an email.
sign_open_url() {  # binary port
    need_keys "$1"
    echo '<p>Hello</p>' | "$1" links rewrite --keys "$work/keys" --base "http://127.0.0.1:$2" --type email \
        --delivery dlv_01HXYZ9K2M4N6P8Q --customer cust_48213 --campaign 17 --json 2>/dev/null \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["open_pixel"])'
}

# CPU ticks (user + system) of every thread of process PID so far; CLK_TCK of them a second.
cpu_ticks() { cat /proc/"$1"/task/*/stat 2>/dev/null | awk '{s += $14 + $15} END {print s + 0}'; }

# Starts `BINARY edge` on 127.0.0.1:PORT with a fresh log and waits until it listens; sets epid.
start_edge() {  # binary port durability [more edge arguments]
    local binary=$1 port=$2 durability=$3
    shift 3
    need_keys "$binary"
    rm -rf "$work/log-$durability"
    "$binary" edge --log "$work/log-$durability" --keys "$work/keys" --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 \
        --durability "$durability" "$@" 2>"$work/edge-$durability.log" &
    epid=$!
    pids+=($epid)
    for _ in $(seq 1 200); do grep -q "edge listening" "$work/edge-$durability.log" 2>/dev/null && return; sleep 0.05; done
    echo "edge did not start: $(cat "$work/edge-$durability.log")" >&2; exit 1
}

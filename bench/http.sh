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

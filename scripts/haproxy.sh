#!/usr/bin/env bash
# Starts and stops an HAProxy that spreads HTTP requests round-robin over several servers, the way
# a Kubernetes Service without affinity (or any balancer) spreads one client's requests.
#   scripts/haproxy.sh start DIR PORT BACKEND_PORT...   listens on 127.0.0.1:PORT
#   scripts/haproxy.sh stop DIR
# Each request picks the next server (http-server-close): one push's POST, PATCH and PUT land
# on different replicas.
set -euo pipefail
. "$(dirname "$0")/pids.sh"
cmd=$1 dir=$2
shift 2
command -v haproxy >/dev/null || { echo "haproxy is not installed (make test installs it: apt-get install haproxy)" >&2; exit 1; }
case "$cmd" in
  start)
    port=$1
    shift
    mkdir -p "$dir"
    {
      printf 'defaults\n  mode http\n  option http-server-close\n  timeout connect 5s\n  timeout client 300s\n  timeout server 300s\n'
      printf 'frontend in\n  bind 127.0.0.1:%s\n  default_backend replicas\n' "$port"
      printf 'backend replicas\n  balance roundrobin\n'
      for backend in "$@"; do printf '  server r%s 127.0.0.1:%s\n' "$backend" "$backend"; done
    } >"$dir/haproxy.cfg"
    haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
    echo $! >"$dir/haproxy.pid"
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && exit 0
      kill -0 "$(cat "$dir/haproxy.pid")" 2>/dev/null || break
      sleep 0.05
    done
    echo "haproxy did not listen on $port; its log:" >&2
    cat "$dir/haproxy.log" >&2
    stop_pid "$dir/haproxy.pid"
    exit 1
    ;;
  stop) stop_pid "$dir/haproxy.pid" ;;
  *) echo "usage: $0 start DIR PORT BACKEND_PORT... | stop DIR" >&2; exit 2 ;;
esac

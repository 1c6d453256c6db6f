#!/usr/bin/env bash
# Starts and stops the Redis servers the tests use, on loopback ports the caller chose as free.
#   scripts/redis.sh start DIR PORT            one redis-server, AOF on, data in DIR
#   scripts/redis.sh cluster DIR PORT PORT PORT three masters joined into a Redis Cluster
#   scripts/redis.sh stop DIR                  stops every server started in DIR, by PID
# Settings mirror the production advice in README.md: AOF persistence, noeviction (the index
# evicts by itself; Redis evicting keys would orphan blobs), and listpack limits that keep the
# index's small bucket hashes compact.
set -euo pipefail
. "$(dirname "$0")/pids.sh"
cmd=$1 dir=$2
shift 2
command -v redis-server >/dev/null || { echo "redis-server is not installed (make test installs it: apt-get install redis-server)" >&2; exit 1; }

start_one() { # port [extra args]
  local port=$1
  shift
  mkdir -p "$dir/$port"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir/$port" --daemonize yes \
    --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log" \
    --appendonly yes --appendfsync everysec --save "" --protected-mode no \
    --maxmemory-policy noeviction --hash-max-listpack-entries 256 --hash-max-listpack-value 256 "$@"
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "redis-server on port $port did not answer; its log:" >&2
  cat "$dir/$port/redis.log" >&2
  return 1
}

case "$cmd" in
  start) start_one "$1" ;;
  cluster)
    for port in "$@"; do
      start_one "$port" --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout 2000
    done
    redis-cli --cluster create $(printf '127.0.0.1:%s ' "$@") --cluster-replicas 0 --cluster-yes >"$dir/cluster-create.log" 2>&1 \
      || { cat "$dir/cluster-create.log" >&2; exit 1; }
    for _ in $(seq 1 200); do
      ok=0
      for port in "$@"; do redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' && ok=$((ok + 1)); done
      [ "$ok" -eq $# ] && exit 0
      sleep 0.05
    done
    echo "the cluster did not reach cluster_state:ok" >&2
    exit 1
    ;;
  stop)
    for pidfile in "$dir"/*/redis.pid; do stop_pid "$pidfile"; done
    ;;
  *) echo "usage: $0 start|cluster|stop DIR [PORT...]" >&2; exit 2 ;;
esac

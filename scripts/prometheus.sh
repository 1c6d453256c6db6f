#!/usr/bin/env bash
# Starts and stops a real Prometheus that scrapes a CacheService every second, on loopback.
#   scripts/prometheus.sh start DIR PORT TARGET   TARGET is host:port of the server's HTTP port
#   scripts/prometheus.sh stop DIR                stops the Prometheus started in DIR, by PID
set -euo pipefail
. "$(dirname "$0")/pids.sh"
cmd=$1 dir=$2
command -v prometheus >/dev/null || { echo "prometheus is not installed (make test installs it: apt-get install prometheus)" >&2; exit 1; }
case "$cmd" in
  start)
    port=$3 target=$4
    mkdir -p "$dir/data"
    cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: cacheservice
    static_configs:
      - targets: ["$target"]
YAML
    prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
      --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
    echo $! >"$dir/prometheus.pid"
    for _ in $(seq 1 300); do
      if curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then exit 0; fi
      kill -0 "$(cat "$dir/prometheus.pid")" 2>/dev/null || break
      sleep 0.1
    done
    echo "prometheus did not become ready; its log:" >&2
    cat "$dir/prometheus.log" >&2
    stop_pid "$dir/prometheus.pid"
    exit 1
    ;;
  stop) stop_pid "$dir/prometheus.pid" ;;
  *) echo "usage: $0 start DIR PORT TARGET | stop DIR" >&2; exit 2 ;;
esac

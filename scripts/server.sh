#!/usr/bin/env bash
# Starts or stops a built CacheService server in the background, the way `make run` serves it.
#   scripts/server.sh start STATE_DIR [extra server args...]  -> prints "GRPC_PORT HTTP_PORT"
#   scripts/server.sh stop STATE_DIR
# The server binds free ports itself (port 0) and logs them; its PID goes to STATE_DIR/server.pid
# so that stop ends exactly that process.
set -euo pipefail
cmd=$1 state=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/pids.sh"
case "$cmd" in
  start)
    mkdir -p "$state"
    dotnet "$root/src/CacheService.Server/bin/Release/net10.0/CacheService.Server.dll" \
      --CacheService:Server:GrpcPort=0 --CacheService:Server:HttpPort=0 \
      --CacheService:Storage:DataDirectory="$state/data" "$@" >"$state/server.log" 2>&1 &
    echo $! >"$state/server.pid"
    for _ in $(seq 1 300); do
      if line=$(grep -o 'grpc=[0-9]* http=[0-9]*' "$state/server.log" 2>/dev/null); then
        grpc=${line#grpc=}; grpc=${grpc%% *}; http=${line##*http=}
        echo "$grpc $http"
        exit 0
      fi
      kill -0 "$(cat "$state/server.pid")" 2>/dev/null || break
      sleep 0.1
    done
    echo "server did not report its ports; its log:" >&2
    cat "$state/server.log" >&2
    stop_pid "$state/server.pid" # whatever it is doing, it was started here: stop it
    exit 1
    ;;
  stop) stop_pid "$state/server.pid" ;;
  *) echo "usage: $0 start|stop STATE_DIR [args]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Starts and stops Debian's docker-registry (CNCF Distribution) on loopback, the reference
# registry the facade benchmark compares against.
#   scripts/docker-registry.sh start DIR PORT    storage and access log in DIR
#   scripts/docker-registry.sh start DIR PORT S3_ENDPOINT BUCKET ACCESS_KEY SECRET_KEY
#                                                blobs in an S3 store instead (the bucket must exist);
#                                                the S3 driver redirects blob GETs to it, its default
#   scripts/docker-registry.sh stop DIR
set -euo pipefail
. "$(dirname "$0")/pids.sh"
cmd=$1 dir=$2
command -v docker-registry >/dev/null || { echo "docker-registry is not installed (apt-get install docker-registry)" >&2; exit 1; }
case "$cmd" in
  start)
    port=$3
    mkdir -p "$dir/data"
    if [ $# -ge 7 ]; then
      storage="  s3:
    regionendpoint: $4
    bucket: $5
    accesskey: $6
    secretkey: $7
    region: us-east-1
    rootdirectory: /distribution
    secure: $([ "${4%%:*}" = https ] && echo true || echo false)
    v4auth: true"
    else
      storage="  filesystem:
    rootdirectory: $dir/data"
    fi
    cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: info
storage:
$storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
    # Debian's build of the S3 driver panics when AWS_CA_BUNDLE is set ("HTTPClient's transport unsupported type").
    env -u AWS_CA_BUNDLE docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    echo $! >"$dir/registry.pid"
    for _ in $(seq 1 100); do
      curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && exit 0
      sleep 0.1
    done
    echo "docker-registry did not answer; its log:" >&2
    cat "$dir/registry.log" >&2
    stop_pid "$dir/registry.pid"
    exit 1
    ;;
  stop) stop_pid "$dir/registry.pid" ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac

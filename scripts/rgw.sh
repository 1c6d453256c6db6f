#!/usr/bin/env bash
# A single-node Ceph cluster with an RGW (S3) frontend, on loopback, for the tests.
#   scripts/rgw.sh start DIR RGW_PORT MON_PORT   mon + mgr + one memstore OSD + radosgw; prints nothing
#   scripts/rgw.sh stop-rgw DIR                  stops only radosgw (to test an object-store outage)
#   scripts/rgw.sh start-rgw DIR                 starts radosgw again on the same port
#   scripts/rgw.sh pause-rgw|resume-rgw DIR      SIGSTOP/SIGCONT radosgw (a store that hangs, not one that refuses)
#   scripts/rgw.sh stop DIR                      stops every daemon started in DIR, by PID
# Access key "cacheservice", secret "cacheservice-secret". The OSD keeps data in memory
# (memstore): fast, and nothing to clean up on disk. Daemons bind MON_PORT and the 60 ports
# above it; RGW_PORT must be free too.
set -euo pipefail
. "$(dirname "$0")/pids.sh"
cmd=$1 dir=$2
shift 2
conf="$dir/ceph.conf"
ceph_() { ceph -c "$conf" --connect-timeout 10 "$@"; }

wait_for() { # description, command...
  local what=$1
  shift
  for _ in $(seq 1 600); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for $what; logs in $dir/log:" >&2
  tail -n 20 "$dir"/log/*.log >&2 || true
  return 1
}

retry() { # command... ; a young monitor refuses some commands for a moment (EPERM, EAGAIN)
  local out
  for _ in $(seq 1 100); do
    if out=$("$@" 2>/dev/null); then echo "$out"; return 0; fi
    sleep 0.2
  done
  "$@"
}

start_rgw() {
  radosgw -c "$conf" -n client.rgw 2>/dev/null
  wait_for "radosgw on port $(cat "$dir/rgw.port")" curl -sf "http://127.0.0.1:$(cat "$dir/rgw.port")/"
}

case "$cmd" in
  start)
    rgw_port=$1 mon_port=$2
    command -v radosgw >/dev/null || { echo "radosgw is not installed (make test installs radosgw ceph-mon ceph-osd ceph-mgr)" >&2; exit 1; }
    mkdir -p "$dir"/{run,log,mon,mgr/ceph-x,osd/ceph-0,rgw}
    echo "$rgw_port" >"$dir/rgw.port"
    fsid=$(cat /proc/sys/kernel/random/uuid)
    cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = [v1:127.0.0.1:$mon_port]
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr2 = false
ms bind port min = $((mon_port + 1))
ms bind port max = $((mon_port + 60))
public addr = 127.0.0.1
osd objectstore = memstore
memstore device bytes = 8589934592
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
# A booting OSD may send its crush update before it has the monitor's fsid and be refused
# ("wrong fsid"); placing it in the crush map ourselves avoids that race.
osd crush update on start = false
osd class update on start = false
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
run dir = $dir/run
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
mon data = $dir/mon/\$cluster-\$id
mgr data = $dir/mgr/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
keyring = $dir/keyring
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
rgw enable usage log = false
CONF
    touch "$dir/keyring"
    monmaptool --create --addv a "[v1:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
    ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null 2>&1
    ceph-mon -c "$conf" -i a 2>/dev/null
    wait_for "ceph-mon on port $mon_port" ceph_ mon stat
    ceph-mgr -c "$conf" -i x 2>/dev/null
    # The OSD's uuid is given to both sides; left to chance, the OSD sometimes boots with one the
    # monitor does not know ("wrong fsid") and never comes up.
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    osd_id=$(retry ceph_ osd create "$osd_uuid")
    ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
    retry ceph_ osd crush add "osd.$osd_id" 1.0 root=default >/dev/null
    ceph-osd -c "$conf" -i "$osd_id" 2>/dev/null
    wait_for "the OSD to come up" bash -c "ceph -c '$conf' osd stat | grep -q '1 up'"
    start_rgw
    retry radosgw-admin -c "$conf" user create --uid=cacheservice --display-name=cacheservice \
      --access-key=cacheservice --secret=cacheservice-secret >/dev/null
    ;;
  stop-rgw) stop_pid "$dir/run/client.rgw.pid" ;;
  pause-rgw) kill -STOP "$(cat "$dir/run/client.rgw.pid")" ;;
  resume-rgw) kill -CONT "$(cat "$dir/run/client.rgw.pid")" ;;
  start-rgw) start_rgw ;;
  stop)
    for pidfile in "$dir"/run/*.pid; do stop_pid "$pidfile"; done
    ;;
  *) echo "usage: $0 start|stop|stop-rgw|start-rgw|pause-rgw|resume-rgw DIR [RGW_PORT MON_PORT]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Installs the Debian packages the tests start as real services, when they are missing.
# Needs root (CI and the dev machines run as root). Nothing is started here: the tests start
# their own instances on free ports through scripts/redis.sh and scripts/rgw.sh.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
for tool in radosgw ceph-mon ceph-osd ceph-mgr; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
command -v curl >/dev/null || missing+=(curl)
# Prometheus (and its promtool) scrape and lint /metrics; Chromium renders the status page.
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
# A real builder and a registry client for the OCI Distribution facade; busybox gives its
# Dockerfiles a shell on top of FROM scratch (no registry is reachable for base images).
command -v buildah >/dev/null || missing+=(buildah)
command -v skopeo >/dev/null || missing+=(skopeo)
# podman logs in to the facade with a token (podman login), as a laptop would.
command -v podman >/dev/null || missing+=(podman)
[ -x /bin/busybox ] || missing+=(busybox-static)
# haproxy spreads one builder's registry requests over two replicas, round-robin.
command -v haproxy >/dev/null || missing+=(haproxy)
# openssl makes the CA and certificates of the TLS tests.
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $(printf "%s\n" "${missing[@]}" | sort -u) >/dev/null
fi
# Debian's packages may start a system-wide redis-server on 6379 or prometheus on 9090; the
# tests never use them.

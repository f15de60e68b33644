#!/usr/bin/env bash
# docker/build.sh [--prometheus] [TAG]: the rvs image (default rvs:latest), on a fresh Debian
# host as root.
#   1. installs docker.io and debootstrap from Debian when missing;
#   2. uses the running Docker engine, or starts dockerd (and leaves it running: the image
#      is for running; `kill $(cat /var/run/docker.pid)` stops it);
#   3. builds rvsd and rvsadm (cargo build --release; ci/setup.sh installs DPDK 22.11),
#      unless RVS_BIN_DIR names a directory that holds them;
#   4. makes the base image rvs-base:<this host's Debian release> when it is missing
#      (debootstrap --variant=minbase, slimmed as Debian's -slim images, docker import;
#      about a minute; cached under its tag), unless RVS_DOCKER_BASE names one;
#   5. builds TAG from docker/Dockerfile with the binaries copied in;
#   6. with --prometheus, also rvs-prometheus:latest (docker/prometheus.Dockerfile: Debian's
#      Prometheus on control/prometheus), the compose lab's profile prometheus.
# Then: `docker run --rm rvs` runs `rvsd demo`; docker/README.md has the lab and a real host.
set -euo pipefail
cd "$(dirname "$0")/.."
t_start=$(date +%s)
prometheus=0
if [ "${1:-}" = --prometheus ]; then
  prometheus=1
  shift
fi
case "${1:-}" in -*) echo "usage: docker/build.sh [--prometheus] [TAG]" >&2; exit 2 ;; esac
tag=${1:-rvs:latest}
# shellcheck source=docker/lib.sh
. docker/lib.sh

rvs_docker_install engine
if [ -z "${RVS_BIN_DIR:-}" ]; then
  # shellcheck source=ci/setup.sh
  . ci/setup.sh
  cargo build --release --locked -q -p rvs-control --bin rvsd --bin rvsadm
  bin_dir=${CARGO_TARGET_DIR:-target}/release
else
  bin_dir=$RVS_BIN_DIR
fi
rvs_dockerd_up
rvs_docker_base
rvs_docker_image "$tag" "$bin_dir"
[ "$prometheus" = 0 ] || rvs_docker_prometheus_image rvs-prometheus:latest
[ "$RVS_DOCKERD_STARTED" = 0 ] ||
  echo "build.sh: dockerd (pid $RVS_DOCKERD_PID) keeps running; stop it with: kill $RVS_DOCKERD_PID"
echo "build.sh: $tag ($(rvs_image_mb "$tag") MB) in $(($(date +%s) - t_start)) s; run the demo: $DOCKER run --rm $tag"

# shellcheck shell=bash
# Sourced by docker/build.sh and ci/docker.sh: the Docker engine, the local Debian base and
# the rvs image. Everything here is a function; nothing runs on sourcing.
#
#   rvs_docker_install engine|compose  docker.io and debootstrap (and docker-compose) from Debian
#   rvs_dockerd_up                use a running dockerd, or start one (RVS_DOCKERD_STARTED=1)
#   rvs_dockerd_down              stop the dockerd rvs_dockerd_up started (only that one)
#   rvs_docker_base               the Debian base image (debootstrap + import, cached by tag)
#   rvs_docker_image TAG BIN_DIR  the rvs image from the binaries in BIN_DIR
#   rvs_docker_prometheus_image TAG   Prometheus on control/prometheus (the lab's profile)
#
# Environment:
#   RVS_DOCKER_BASE    use this base image instead of the local one (e.g. debian:bookworm-slim
#                      where a registry is reachable); it must be the host's Debian release
#   RVS_DEBIAN_MIRROR  where debootstrap fetches (default: the host's Debian mirror)
#   RVS_PMDS           the DPDK drivers the image holds (Dockerfile's default otherwise)

# The local base image's recipe version: bump it when rvs_docker_base changes what it makes,
# so that a cached base of an older recipe is made again.
RVS_BASE_RECIPE=1

rvs_docker_log() { echo "docker: $*" >&2; }
rvs_docker_die() {
  echo "docker: FAIL: $*" >&2
  exit 1
}

# The host's Debian release codename: the binaries are built here, so the image's base must
# be this release (its DPDK, libc and the rest are what rvsd was linked against).
rvs_host_release() {
  local id="" codename=""
  # shellcheck disable=SC1091
  id=$(. /etc/os-release && echo "${ID:-}")
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$id" != debian ] || [ -z "$codename" ]; then
    rvs_docker_die "the image's base is made from the host's Debian release (the binaries are built here), but this host is ${id:-unknown} ${codename:-}: build on Debian, or set RVS_DOCKER_BASE to an image of the release the binaries were built on"
  fi
  echo "$codename"
}

rvs_docker_install() { # engine | compose
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  if [ "$1" = compose ] && ! command -v docker-compose >/dev/null &&
    ! docker compose version >/dev/null 2>&1; then
    need+=(docker-compose)
  fi
  [ ${#need[@]} -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || rvs_docker_die "please install: ${need[*]} (Debian's packages)"
  rvs_docker_log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# The docker client: Debian's (/usr/bin/docker, the daemon's own version) when there, since
# a newer client in PATH may want BuildKit's buildx, which Debian's docker.io does not ship.
rvs_docker_client() {
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi
}

RVS_DOCKERD_STARTED=0
RVS_DOCKERD_PID=""
rvs_dockerd_up() {
  DOCKER=$(rvs_docker_client)
  [ -n "$DOCKER" ] || rvs_docker_die "no docker client (install docker.io)"
  export DOCKER
  if "$DOCKER" info >/dev/null 2>&1; then
    rvs_docker_log "using the running Docker engine ($("$DOCKER" info --format '{{.ServerVersion}}, storage {{.Driver}}'))"
    return 0
  fi
  [ "$(id -u)" = 0 ] || rvs_docker_die "no Docker engine answers, and starting one needs root"
  [ -S /var/run/docker.sock ] && rvs_docker_log "a stale /var/run/docker.sock: no engine answers on it"
  # Our own engine leaves the host's network alone: no iptables rules, no ip_forward, no
  # docker0 bridge (a stock dockerd sets FORWARD to DROP and ip_forward to 1 and leaves
  # both after it stops). Builds then use --network host; containers that need a network
  # get a user-defined one (compose makes its own; published ports go through docker-proxy).
  local log=/var/log/rvs-dockerd.log args=(--iptables=false --ip-forward=false --ip-masq=false
    --bridge=none --pidfile /var/run/docker.pid)
  [ -z "${RVS_DOCKERD_STORAGE:-}" ] || args+=(--storage-driver "$RVS_DOCKERD_STORAGE")
  rvs_docker_log "starting dockerd ${args[*]} (log $log)"
  dockerd "${args[@]}" >"$log" 2>&1 &
  RVS_DOCKERD_PID=$!
  RVS_DOCKERD_STARTED=1
  local i
  for i in $(seq 150); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$RVS_DOCKERD_PID" 2>/dev/null || {
      tail -n 20 "$log" >&2
      rvs_docker_die "dockerd exited at start (log above)"
    }
    sleep 0.2
  done
  "$DOCKER" info >/dev/null 2>&1 || {
    tail -n 20 "$log" >&2
    rvs_docker_die "dockerd did not answer within 30 s"
  }
  rvs_docker_log "dockerd up after $((i / 5)).$((i % 5 * 2)) s: $("$DOCKER" info --format '{{.ServerVersion}}, storage {{.Driver}}')"
}

rvs_dockerd_down() {
  [ "$RVS_DOCKERD_STARTED" = 1 ] && [ -n "$RVS_DOCKERD_PID" ] || return 0
  kill -0 "$RVS_DOCKERD_PID" 2>/dev/null || return 0
  kill -TERM "$RVS_DOCKERD_PID" 2>/dev/null || true
  local i
  for i in $(seq 150); do
    kill -0 "$RVS_DOCKERD_PID" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$RVS_DOCKERD_PID" 2>/dev/null; then
    rvs_docker_log "dockerd ($RVS_DOCKERD_PID) ignored SIGTERM for 30 s, killing it"
    kill -KILL "$RVS_DOCKERD_PID" 2>/dev/null || true
  fi
  wait "$RVS_DOCKERD_PID" 2>/dev/null || true
  RVS_DOCKERD_PID=""
  # dockerd leaves its bind mount of the host's network namespace behind.
  if mountpoint -q /run/docker/netns/default 2>/dev/null; then
    umount /run/docker/netns/default 2>/dev/null || true
  fi
}

# The host's Debian mirror (the first deb.debian.org-like URI of its Debian sources).
rvs_debian_mirror() {
  if [ -n "${RVS_DEBIAN_MIRROR:-}" ]; then
    echo "$RVS_DEBIAN_MIRROR"
    return
  fi
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $2 !~ /security/ && $2 ~ /debian/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

rvs_debian_security_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ && $2 ~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  echo "${m:-http://deb.debian.org/debian-security}"
}

# Name of the base image in use (RVS_DOCKER_BASE or the local one, made when missing).
RVS_BASE_IMAGE=""
rvs_docker_base() {
  if [ -n "${RVS_DOCKER_BASE:-}" ]; then
    RVS_BASE_IMAGE=$RVS_DOCKER_BASE
    "$DOCKER" image inspect "$RVS_BASE_IMAGE" >/dev/null 2>&1 ||
      rvs_docker_die "RVS_DOCKER_BASE=$RVS_BASE_IMAGE: no such image (docker pull it first)"
    return 0
  fi
  local release
  release=$(rvs_host_release)
  RVS_BASE_IMAGE="rvs-base:$release"
  local have
  have=$("$DOCKER" image inspect --format '{{index .Config.Labels "org.rvs.base-recipe"}}' \
    "$RVS_BASE_IMAGE" 2>/dev/null || true)
  if [ "$have" = "$RVS_BASE_RECIPE" ]; then
    rvs_docker_log "base $RVS_BASE_IMAGE (recipe $have) is cached"
    return 0
  fi
  [ "$(id -u)" = 0 ] || rvs_docker_die "making the base image $RVS_BASE_IMAGE needs root (debootstrap)"
  local mirror t0 root
  mirror=$(rvs_debian_mirror)
  t0=$(date +%s)
  root=$(mktemp -d /var/tmp/rvs-base.XXXXXX)
  # A subshell, so that its trap removes the rootfs whatever happens and leaves the
  # caller's traps alone.
  (
    trap 'rm -rf "$root"' EXIT
    rvs_docker_log "making $RVS_BASE_IMAGE: debootstrap --variant=minbase $release from $mirror"
    debootstrap --variant=minbase "$release" "$root/fs" "$mirror" >"$root/debootstrap.log" 2>&1 || {
      tail -n 20 "$root/debootstrap.log" >&2
      rvs_docker_die "debootstrap failed (log above)"
    }
    rvs_slim_rootfs "$root/fs" "$release" "$mirror"
    tar --numeric-owner -C "$root/fs" -c . |
      "$DOCKER" import \
        -c "LABEL org.rvs.base-recipe=$RVS_BASE_RECIPE" \
        -c "LABEL org.rvs.base-from=\"debootstrap --variant=minbase $release\"" \
        -c 'ENV LANG=C.UTF-8' -c 'CMD ["bash"]' \
        -m "debootstrap --variant=minbase $release $mirror" - "$RVS_BASE_IMAGE" >/dev/null
  )
  rvs_docker_log "made $RVS_BASE_IMAGE in $(($(date +%s) - t0)) s ($(rvs_image_mb "$RVS_BASE_IMAGE") MB)"
}

# What Debian's official -slim images do to a minbase tree: no docs, man pages or locales
# (now and for every later package), no apt caches or lists, no services started by
# package scripts, the release's updates and security suites.
rvs_slim_rootfs() { # rootfs release mirror
  local fs=$1 release=$2 mirror=$3
  cat >"$fs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# Made by rvs docker/lib.sh, as in Debian's official -slim images.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  find "$fs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$fs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$fs"/usr/share/man/* "$fs"/usr/share/groff/* "$fs"/usr/share/info/* \
    "$fs"/usr/share/lintian/* "$fs"/usr/share/linda/* "$fs"/usr/share/locale/*
  cat >"$fs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$fs/etc/apt/apt.conf.d/docker-no-languages"
  printf '%s\n' 'APT::AutoRemove::SuggestsImportant "false";' \
    >"$fs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  printf '#!/bin/sh\n# No services start in an image build.\nexit 101\n' >"$fs/usr/sbin/policy-rc.d"
  chmod 0755 "$fs/usr/sbin/policy-rc.d"
  rm -f "$fs/etc/apt/sources.list"
  cat >"$fs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $release $release-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $(rvs_debian_security_mirror)
Suites: $release-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$fs"/var/cache/apt/archives/*.deb "$fs"/var/cache/apt/*.bin "$fs"/var/lib/apt/lists/* \
    "$fs"/var/log/*.log "$fs"/var/log/apt/* "$fs"/var/cache/debconf/*-old
  : >"$fs/etc/machine-id" 2>/dev/null || true
}

rvs_image_mb() { # image -> its size in MB (10^6 bytes, as docker images shows)
  "$DOCKER" image inspect --format '{{.Size}}' "$1" | awk '{printf "%d", $1 / 1000000}'
}

# The rvs image, TAG, from BIN_DIR's rvsd and rvsadm (built on this host). The build context
# is a fresh directory with only what the Dockerfile copies (bin/, docker/), not the tree.
rvs_docker_image() { # tag bin_dir
  local tag=$1 bin=$2 repo ctx t0 args=()
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  for b in rvsd rvsadm; do
    [ -x "$bin/$b" ] || rvs_docker_die "no $bin/$b (cargo build --release --locked -p rvs-control --bin rvsd --bin rvsadm)"
  done
  ctx=$(mktemp -d /var/tmp/rvs-docker-ctx.XXXXXX)
  mkdir -p "$ctx/bin" "$ctx/docker"
  cp "$bin/rvsd" "$bin/rvsadm" "$ctx/bin/"
  # The release profile's line tables (debug = 1, for profilers) are 5/6 of rvsd's size; the
  # image keeps the symbols (a backtrace still names functions).
  if command -v strip >/dev/null; then
    strip --strip-debug "$ctx/bin/rvsd" "$ctx/bin/rvsadm"
  fi
  cp -r "$repo/docker/lab" "$repo/docker/rvs-lab" "$ctx/docker/"
  args=(--build-arg "BASE=$RVS_BASE_IMAGE" --label org.rvs.image=rvs --label "org.rvs.commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)")
  [ -z "${RVS_PMDS:-}" ] || args+=(--build-arg "RVS_PMDS=$RVS_PMDS")
  t0=$(date +%s)
  rvs_docker_log "building $tag from $RVS_BASE_IMAGE and $bin/{rvsd,rvsadm}"
  # --network host: the build's apt-get reaches Debian's mirror without a docker0 bridge.
  if ! DOCKER_BUILDKIT=0 "$DOCKER" build -q --network host "${args[@]}" \
    -f "$repo/docker/Dockerfile" -t "$tag" "$ctx" >"$ctx.log" 2>&1; then
    tail -n 30 "$ctx.log" >&2
    rm -rf "$ctx" "$ctx.log"
    rvs_docker_die "docker build failed (log above)"
  fi
  rm -rf "$ctx" "$ctx.log"
  rvs_docker_prune rvs
  rvs_docker_log "built $tag in $(($(date +%s) - t0)) s ($(rvs_image_mb "$tag") MB)"
}

# Prometheus (Debian's) on control/prometheus/rvs.yml and alerts.yml, for the compose lab.
rvs_docker_prometheus_image() { # tag
  local tag=$1 repo ctx t0
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  ctx=$(mktemp -d /var/tmp/rvs-docker-ctx.XXXXXX)
  mkdir -p "$ctx/control"
  cp -r "$repo/control/prometheus" "$ctx/control/"
  t0=$(date +%s)
  rvs_docker_log "building $tag from $RVS_BASE_IMAGE and control/prometheus"
  if ! DOCKER_BUILDKIT=0 "$DOCKER" build -q --network host --build-arg "BASE=$RVS_BASE_IMAGE" \
    --label org.rvs.image=rvs-prometheus -f "$repo/docker/prometheus.Dockerfile" -t "$tag" \
    "$ctx" >"$ctx.log" 2>&1; then
    tail -n 30 "$ctx.log" >&2
    rm -rf "$ctx" "$ctx.log"
    rvs_docker_die "docker build of $tag failed (log above)"
  fi
  rm -rf "$ctx" "$ctx.log"
  rvs_docker_prune rvs-prometheus
  rvs_docker_log "built $tag in $(($(date +%s) - t0)) s ($(rvs_image_mb "$tag") MB)"
}

# The images an earlier build of the same name left untagged (their layers go with them).
rvs_docker_prune() { # image label
  "$DOCKER" image prune -f --filter "label=org.rvs.image=$1" >/dev/null
}

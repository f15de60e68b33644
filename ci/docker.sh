#!/usr/bin/env bash
# ci/docker.sh: the rvs image and the compose lab, end to end (docker/README.md), as root:
#   1. installs docker.io, debootstrap and docker-compose (Debian's) when missing; uses the
#      running Docker engine or starts dockerd (and stops it at the end);
#   2. makes the Debian base when it is not cached (debootstrap + docker import), builds the
#      rvs image from the release binaries (RVS_BIN_DIR, default target/release: ci/test.sh
#      has built them) and the lab's Prometheus image; checks the image holds no compiler and
#      no apt lists, and that rvsd links;
#   3. `rvsd demo` in the image with no capability at all (--cap-drop ALL, read-only root, no
#      network): demo-check.py proves from its transmitted frames and counters that it
#      forwarded every frame of its capture to the two real servers;
#   4. the host run mode's parts that run here: `rvsd run` on the host's 2 MiB hugepages
#      (a hugetlbfs mounted into the container) with its kernel interface (net_tap: /dev/net/tun
#      and NET_ADMIN) and SYS_NICE (the EAL's NUMA memory policy), frames to the VIP
#      forwarded and frames to the port's address given to the kernel; the same run without
#      the hugetlbfs must fail (it is the hugepages it runs on). RVS_DOCKER_HUGE=0 skips it;
#   5. docker/compose.yaml as it is, profile prometheus: rvsd (rvs-lab, net_pcap replaying
#      traffic forever, no capabilities) healthy, /metrics on the published port counting
#      conns and frames, rvsadm inside listing the service and applying a change, Prometheus
#      (the image's rvs.yml) scraping rvsd through the relabel rule; rvsd stops cleanly on
#      SIGTERM (exit 0) when compose stops it.
# Prints the time of each step. Leaves the images (rvs-base:<release>, rvs:latest,
# rvs-prometheus:latest) for the next run; removes every container, network and file it made.
set -euo pipefail
cd "$(dirname "$0")/.."
t_start=$(date +%s)
BIN=${RVS_BIN_DIR:-target/release}
IMAGE=rvs:latest
PROM_IMAGE=rvs-prometheus:latest
CLIENTS=200
FLOOD=2000
LAB_FLOWS=5000

[ "$(id -u)" = 0 ] || { echo "ci/docker.sh: must run as root (dockerd, debootstrap)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "ci/docker.sh: python3 is required" >&2; exit 1; }
# shellcheck source=docker/lib.sh
. docker/lib.sh

step_t=$(date +%s)
step() { # name: the time of the step before, then this one's title
  local now
  now=$(date +%s)
  [ -z "${step_name:-}" ] || echo "   ($step_name: $((now - step_t)) s)"
  step_name=$1
  step_t=$now
  echo "== docker: $1"
}

# One run at a time on this machine: runs share the engine (which the first one might stop)
# and the image tags.
exec {lock_fd}>/var/lock/rvs-ci-docker.lock
flock -w 1200 "$lock_fd" || { echo "ci/docker.sh: another run holds /var/lock/rvs-ci-docker.lock" >&2; exit 1; }

work=$(mktemp -d /tmp/rvs-ci-docker.XXXXXX)
project="rvs-ci-$$"
demo_name="rvs-ci-demo-$$"
hp_name="rvs-ci-huge-$$"
huge_dir=""
huge_added=0
compose_up=0
compose=()
cleanup() {
  set +e
  if [ "$compose_up" = 1 ]; then
    "${compose[@]}" --profile prometheus down -v -t 5 >/dev/null 2>&1
  fi
  if [ -n "${DOCKER:-}" ]; then
    "$DOCKER" rm -f "$demo_name" "$hp_name" "$hp_name-nohuge" >/dev/null 2>&1
  fi
  if [ -n "$huge_dir" ]; then
    rm -f "$huge_dir"/* 2>/dev/null
    umount "$huge_dir" 2>/dev/null
    rmdir "$huge_dir" 2>/dev/null
  fi
  if [ "$huge_added" -gt 0 ]; then
    # Give back what this run added (others may have changed the count meanwhile).
    local now
    now=$(cat /proc/sys/vm/nr_hugepages)
    echo $((now > huge_added ? now - huge_added : 0)) >/proc/sys/vm/nr_hugepages
  fi
  rvs_dockerd_down
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  echo "ci/docker.sh: FAILED: $*" >&2
  exit 1
}

step "tools and engine"
rvs_docker_install compose
for b in rvsd rvsadm; do
  [ -x "$BIN/$b" ] || fail "no $BIN/$b (cargo build --release --locked -p rvs-control --bin rvsd --bin rvsadm, or set RVS_BIN_DIR)"
done
rvs_dockerd_up
if command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  compose=("$DOCKER" compose)
fi
echo "   engine: $("$DOCKER" info --format '{{.ServerVersion}}, storage driver {{.Driver}}, cgroup v{{.CgroupVersion}}'); compose: $("${compose[@]}" version --short 2>/dev/null || echo '?')"
compose+=(-f docker/compose.yaml -p "$project")

step "base image"
rvs_docker_base

step "images"
rvs_docker_image "$IMAGE" "$BIN"
rvs_docker_prometheus_image "$PROM_IMAGE"
in_image() { "$DOCKER" run --rm --network none --entrypoint sh "$IMAGE" -c "$1"; }
# shellcheck disable=SC2016 # $c is the container shell's
found=$(in_image 'for c in cc gcc clang rustc cargo make; do command -v $c; done; true')
[ -z "$found" ] || fail "the image holds build tools: $found"
lists=$(in_image 'ls /var/lib/apt/lists | grep -v -x -e lock -e partial; true')
[ -z "$lists" ] || fail "the image keeps apt lists: $lists"
in_image '! ldd /usr/local/sbin/rvsd | grep "not found"' >/dev/null || fail "rvsd misses libraries in the image"
echo "   $IMAGE $(rvs_image_mb "$IMAGE") MB (base $(rvs_image_mb "$RVS_BASE_IMAGE") MB), $PROM_IMAGE $(rvs_image_mb "$PROM_IMAGE") MB; no compiler, no apt lists, rvsd links"

step "rvsd demo in the image (--cap-drop ALL, read-only, no network)"
mkdir -p "$work/demo"
# TMPDIR: the demo leaves its transmitted frames and counters where the check reads them.
"$DOCKER" run --rm --name "$demo_name" --network none --cap-drop ALL --read-only \
  --tmpfs /run -e TMPDIR=/out -v "$work/demo:/out" "$IMAGE" \
  demo --clients "$CLIENTS" --flood "$FLOOD" >"$work/demo.out" 2>&1 ||
  { cat "$work/demo.out" >&2; fail "rvsd demo exited non-zero"; }
demo_dir=$(find "$work/demo" -mindepth 1 -maxdepth 1 -type d -name 'rvs-demo-*' | head -n 1)
[ -n "$demo_dir" ] || { cat "$work/demo.out" >&2; fail "the demo left no rvs-demo-* directory"; }
python3 ci/demo-check.py "$work/demo.out" "$demo_dir" "$CLIENTS" "$FLOOD" ||
  { cat "$work/demo.out" >&2; fail "the demo in the image did not forward its traffic"; }

if [ "${RVS_DOCKER_HUGE:-1}" != 0 ]; then
  step "rvsd run on the host's hugepages with its kernel interface"
  free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  if [ "$free" -lt 40 ]; then
    before=$(cat /proc/sys/vm/nr_hugepages)
    # Raising the count first turns surplus pages (in use by others, beyond the count) into
    # counted ones: ask for those too, so that 40 are free after.
    surp=$(awk '/HugePages_Surp/ {print $2}' /proc/meminfo)
    for try in 1 2; do
      echo $((before + surp + 40)) >/proc/sys/vm/nr_hugepages
      free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
      [ "$free" -lt 40 ] || break
      # Fragmented memory: compact it once and ask again.
      [ "$try" = 2 ] || echo 1 >/proc/sys/vm/compact_memory
    done
    huge_added=$(($(cat /proc/sys/vm/nr_hugepages) - before))
    [ "$free" -ge 40 ] || fail "could not reserve 40 2 MiB hugepages (free: $free)"
  fi
  # A hugetlbfs of this run's own (not inside $work, which is mounted too: a bind mount
  # takes the mounts under it along).
  huge_dir=$(mktemp -d /tmp/rvs-ci-hugetlbfs.XXXXXX)
  mount -t hugetlbfs -o pagesize=2M nodev "$huge_dir"
  mkdir -p "$work/huge"
  # 1000 established flows to the VIP, then 100 SYNs to the port's own address (10.0.0.1:22:
  # not a service, so for the kernel).
  "$BIN/rvsd" lab-pcap --kind established --flows 1000 --out "$work/huge/in.pcap"
  "$BIN/rvsd" lab-pcap --kind synflood --flows 100 --vip 10.0.0.1:22 --out "$work/huge/kernel.pcap"
  tail -c +25 "$work/huge/kernel.pcap" >>"$work/huge/in.pcap"
  hp_run() { # name, extra docker args...: rvsd run on the lab file, 64 MB of hugepages
    local name=$1
    shift
    "$DOCKER" run --rm --name "$name" --network none --cap-drop ALL --cap-add NET_ADMIN \
      --cap-add SYS_NICE --device /dev/net/tun --sysctl net.ipv6.conf.all.disable_ipv6=0 \
      -v "$work/huge:/w" "$@" "$IMAGE" \
      run --config /etc/rvs/appliance.toml --rules /etc/rvs/rules.ipvsadm \
      --idle-exit-ms 1000 --max-ms 30000 --metrics-out /w/metrics.prom -- \
      -m 64 --huge-unlink --no-pci -l 0-1 --no-telemetry --file-prefix "$name" \
      --vdev net_pcap0,rx_pcap=/w/in.pcap,tx_pcap=/w/out.pcap
  }
  hp_run "$hp_name" -v "$huge_dir:/dev/hugepages" >"$work/huge.log" 2>&1 ||
    { tail -n 30 "$work/huge.log" >&2; fail "rvsd run on hugepages in the image failed"; }
  m=$work/huge/metrics.prom
  val() { awk -v k="$1" '$1 == k {print $2; exit}' "$m"; }
  created=$(val 'rvs_conns_created_total{worker="0",family="ipv4"}')
  to_kernel=$(val 'rvs_port_tx_packets_total{port="p0-kernel"}')
  [ "${created:-0}" = 1000 ] || fail "on hugepages: $created conns created, want 1000"
  [ "${to_kernel:-0}" = 100 ] || fail "on hugepages: $to_kernel frames to the kernel interface rvs0, want 100"
  grep -q '^rvsd run: .* 1100 frames in' "$work/huge.log" ||
    { tail -n 5 "$work/huge.log" >&2; fail "on hugepages: not 1100 frames in"; }
  left=$(find "$huge_dir" -mindepth 1 | wc -l)
  [ "$left" = 0 ] || fail "on hugepages: $left hugepage files left after rvsd stopped (--huge-unlink)"
  echo "   1100 frames in: 1000 conns on the VIP, 100 frames to rvs0; no hugepage file left"
  # Without the hugetlbfs the EAL must refuse to start: the run above was on hugepages.
  if hp_run "$hp_name-nohuge" >"$work/nohuge.log" 2>&1; then
    fail "rvsd run without the hugetlbfs mount started: the run above may not have used hugepages"
  fi
  grep -q 'Cannot get hugepage information' "$work/nohuge.log" ||
    { tail -n 5 "$work/nohuge.log" >&2; fail "without the hugetlbfs: another error than the EAL's missing hugepages"; }
  echo "   without the hugetlbfs mount: refused (EAL: Cannot get hugepage information)"
fi

step "compose lab (docker/compose.yaml, profile prometheus)"
read -r mport pport < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
export RVS_IMAGE=$IMAGE RVS_PROMETHEUS_IMAGE=$PROM_IMAGE RVS_LAB_FLOWS=$LAB_FLOWS RVS_LAB_FLOOD=0 \
  RVS_LAB_METRICS_PORT=$mport RVS_LAB_PROMETHEUS_PORT=$pport
"${compose[@]}" config -q || fail "docker/compose.yaml does not validate"
compose_up=1
"${compose[@]}" --profile prometheus up -d >"$work/compose-up.log" 2>&1 ||
  { cat "$work/compose-up.log" >&2; "${compose[@]}" logs --no-color >&2 || true; fail "compose up"; }
rvsd_id=$("${compose[@]}" ps -q rvsd)
[ -n "$rvsd_id" ] || fail "compose made no rvsd container"
python3 - "http://127.0.0.1:$mport/metrics" "http://127.0.0.1:$pport" "$LAB_FLOWS" <<'EOF' ||
import json, re, sys, time, urllib.error, urllib.parse, urllib.request

metrics, prom, flows = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.monotonic()

def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()

def wait(what, ready, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = ready()
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            v = None
        if v:
            print(f"   {what}: after {time.monotonic() - t0:.1f} s")
            return v
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)

def sample(text, name):
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None

# Every flow of the capture is a conn once the first pass is through; the frames keep coming.
wait(f"/metrics on the published port: rvs_ipvs_connections_total {flows}",
     lambda: sample(get(metrics), "rvs_ipvs_connections_total") == flows, 60)
a = sample(get(metrics), 'rvs_rx_frames_total{worker="0"}')
time.sleep(1)
b = sample(get(metrics), 'rvs_rx_frames_total{worker="0"}')
if not (a and b and b > a):
    sys.exit(f"rvs_rx_frames_total does not grow: {a} then {b}")
print(f"   frames keep coming: {b - a:.0f} in a second")

def query(q):
    body = json.loads(get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": q})))
    return body["data"]["result"] if body.get("status") == "success" else None

r = wait('Prometheus scraped rvsd: up{job="rvsd"} == 1',
         lambda: [x for x in query('up{job="rvsd"}') or [] if x["value"][1] == "1"], 60)
print(f"   target {r[0]['metric'].get('instance')}")
r = wait(f"node_ipvs_connections_total (rvs.yml's relabel rule) == {flows}",
         lambda: [x for x in query('node_ipvs_connections_total{job="rvsd"}') or []
                  if float(x["value"][1]) == flows], 30)
EOF
  { "${compose[@]}" --profile prometheus logs --no-color --tail 30 >&2 || true; fail "the lab's /metrics or Prometheus"; }
health=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$rvsd_id")
[ "$health" = healthy ] || fail "rvsd's healthcheck (rvsadm -Ln) says $health"
echo "   healthcheck (rvsadm -Ln in the container): $health"

rvsadm() { "${compose[@]}" exec -T rvsd rvsadm "$@"; }
listing=$(rvsadm -Ln) || fail "rvsadm -Ln in the container"
printf '   | %s\n' "${listing//$'\n'/$'\n'   | }"
for want in '^TCP  10\.0\.0\.100:80 wlc persistent 300 mask 255\.255\.255\.0$' \
  '^  -> 10\.0\.0\.11:80 +Route +1 ' '^  -> 10\.0\.0\.12:80 +Route +1 '; do
  echo "$listing" | grep -qE -- "$want" || fail "rvsadm -Ln has no line like: $want"
done
rvsadm -e -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 0 || fail "rvsadm -e in the container"
rvsadm -Ln | grep -qE -- '^  -> 10\.0\.0\.12:80 +Route +0 ' ||
  fail "rvsadm -e -w 0 is not in force"
grep -q '^rvs_ipvs_backend_weight{.*remote_address="10.0.0.12".*} 0$' \
  <(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
    "http://127.0.0.1:$mport/metrics") || fail "/metrics does not show 10.0.0.12's weight 0"
echo "   rvsadm -e ... -w 0 in force: -Ln and /metrics show weight 0"

"${compose[@]}" stop -t 20 rvsd >/dev/null 2>&1 || fail "compose stop rvsd"
code=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$rvsd_id")
last=$("$DOCKER" logs --tail 1 "$rvsd_id" 2>&1)
[ "$code" = 0 ] || { echo "$last" >&2; fail "rvsd exited with $code on SIGTERM"; }
echo "   SIGTERM: rvsd exit 0; $last"
"${compose[@]}" --profile prometheus down -v -t 5 >/dev/null 2>&1 || fail "compose down"
compose_up=0

step "done"
echo "ci/docker.sh: all green ($(($(date +%s) - t_start)) s)"

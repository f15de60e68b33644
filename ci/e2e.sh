#!/usr/bin/env bash
# ci/e2e.sh: the seed's scenario live. Real clients and a real SYN flood (hping3
# --rand-source) against a persistent service of a running rvsd, configured only with rvsadm
# and watched only through its /metrics, in network namespaces (the topology of ci/netns.sh,
# after the kernel's IPVS selftest). docs/synflood.md ("Live") says what it shows.
#
#   nat: clients 10.0.1.128.. (one namespace, one address each) and the attacker 10.0.1.250
#        -- bridge -- rvsd p0 10.0.1.1/24 | rvsd p1 10.0.2.1/24 -- bridge -- servers
#        10.0.2.11 and .12 (default route via rvsd); VIP 10.0.3.100:80 routed via 10.0.1.1.
#   dr:  one bridge: clients 10.0.0.128.., attacker 10.0.0.250, rvsd 10.0.0.1/24 (answers ARP
#        for the VIP 10.0.0.100), servers 10.0.0.11 and .12 holding the VIP on lo.
#   nat-plain, dr-plain: the same without persistence.
#
# rvsd runs in the balancer namespace on net_af_packet ports bound to veths that its kernel
# never sees (no addresses, IPv6 off, an nftables netdev ingress chain with policy drop), with
# a small conn table ([engine] conns_per_worker) and [defense] drop_entry = 3. The service is
# `-A -t VIP:80 -s rr -p 300` (no -p for the plain scenarios) with both servers, NAT (-m) or
# DR (-g). Each scenario:
#   1. the clients (ci/e2e/clients.py) connect again and again, each bound to its own
#      address, and note which server answered (ci/netns/server.py says its name); once each
#      has had an answer (its template is ASSURED),
#   2. hping3 floods SYNs with random source addresses at the VIP for --seconds,
#   3. then the clients stop, and rvsadm -Lnc lists the templates left.
# /metrics is sampled every second throughout (ci/e2e/sample.py) and ci/e2e/check.py judges:
# templates stay far below rate x (60 s + persistence), where they go without the seed's rule
# (both printed), and below rate x 45 s (the seed's steady state is rate x 30 s); the table
# never fills (no table_full drop) although the flood, without the defense, would overrun
# it; ASSURED templates cover the real clients at every sample and rvsadm -Lnc lists each
# client's template on the server that client saw; every client keeps its server for the
# whole run; at least 99 % of the real connections succeed (and 99 % of those made during
# the flood); every conn the defense dropped took its unassured template along
# (dropped_chain_template = drop_entry_conn) and the drops add up; the mbufs in use come back
# to their idle count once the traffic stops; rvsd never panics and stops cleanly. Without
# persistence: no template is ever created. The figures are printed last.
#
# Usage (root): ci/e2e.sh [--seconds N] [--soak MINUTES] [nat] [dr] [nat-plain] [dr-plain]
#   (default: nat dr dr-plain, a 60 s flood each, about 4 minutes in all)
#   --seconds N      flood length per scenario (default 60)
#   --soak MINUTES   flood length in minutes; also checks rvsd's resident memory stays flat
#                    over the flood (after its first minute) and prints it every minute
# Env: RVS_BIN_DIR          where rvsd and rvsadm are (default target/release; a relative path
#                           is taken from the repository root)
#      RVS_E2E_FLOOD_US     hping3's interval in microseconds (-i uN, default 1000: about
#                           900 SYN/s here)
#      RVS_E2E_TABLE        conns_per_worker of the persistent scenarios (default 73728, with
#                           --soak 131072). With the defense the table must hold the flood's
#                           steady state and the scan's swings; without it the flood must
#                           overrun it within the run (check.py checks both; docs/synflood.md)
#      RVS_E2E_TABLE_PLAIN  the same for the plain scenarios, where a flood SYN takes one
#                           entry, not two (default 36864, with --soak 49152)
#      RVS_E2E_CLIENTS      real clients (default 40, at most 100)
#      RVS_E2E_PERSIST      the persistence timeout (default 300)
#      RVS_E2E_DROP_ENTRY   [defense] drop_entry (default 3). 0 turns the defense off: the
#                           flood then overruns the table and the test must fail
#      RVS_E2E_EXPECT_WRONG=1  expect every client to change servers during the run (a
#                           deliberately wrong expectation: the test must then fail)
#      RVS_E2E_KEEP=1       keep the run's files (the samples, the clients' log, rvsd's log)
#      RVS_FIGURES          a file to append each scenario's figures to (ci/test.sh prints them last)
# Needs ip, nft, ethtool, hping3 and python3 (the first four are installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD/ci/e2e
servers_py=$PWD/ci/netns/server.py

BIN=${RVS_BIN_DIR:-target/release}
RVSD=$BIN/rvsd
RVSADM=$BIN/rvsadm
FLOOD_US=${RVS_E2E_FLOOD_US:-1000}
TABLE=${RVS_E2E_TABLE:-}
TABLE_PLAIN=${RVS_E2E_TABLE_PLAIN:-}
NCLIENTS=${RVS_E2E_CLIENTS:-40}
PERSIST=${RVS_E2E_PERSIST:-300}
DROP_ENTRY=${RVS_E2E_DROP_ENTRY:-3}
EXPECT_WRONG=${RVS_E2E_EXPECT_WRONG:-0}
SECONDS_FLOOD=60
SOAK=0
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

die() { echo "e2e: FAIL: $*" >&2; exit 1; }
say() { echo "e2e: $*"; }
indent() { sed 's/^/    /'; }

tests=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) SECONDS_FLOOD=${2:?--seconds needs a value}; shift 2 ;;
    --soak) SOAK=1; SECONDS_FLOOD=$((${2:?--soak needs minutes} * 60)); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    nat|dr|nat-plain|dr-plain) tests+=("$1"); shift ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ ${#tests[@]} -gt 0 ] || tests=(nat dr dr-plain)
if [ "$SOAK" = 0 ]; then
  TABLE=${TABLE:-73728} TABLE_PLAIN=${TABLE_PLAIN:-36864}
else
  TABLE=${TABLE:-131072} TABLE_PLAIN=${TABLE_PLAIN:-49152}
fi
case $SECONDS_FLOOD in ''|*[!0-9]*) die "--seconds/--soak: not a number: $SECONDS_FLOOD" ;; esac
[ "$SECONDS_FLOOD" -ge 10 ] || die "the flood must last at least 10 s"
case $NCLIENTS in ''|*[!0-9]*) die "RVS_E2E_CLIENTS: not a number: $NCLIENTS" ;; esac
if [ "$NCLIENTS" -lt 1 ] || [ "$NCLIENTS" -gt 100 ]; then die "RVS_E2E_CLIENTS must be 1..100"; fi

[ "$(id -u)" = 0 ] || die "must run as root (namespaces, veths, nftables, raw sockets)"
if [ ! -x "$RVSD" ] || [ ! -x "$RVSADM" ]; then
  die "no $RVSD / $RVSADM (build them: cargo build --release -p rvs-control; or set RVS_BIN_DIR)"
fi
[ -n "$PY" ] || die "python3 is required"
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v ethtool >/dev/null || need+=(ethtool)
command -v hping3 >/dev/null || need+=(hping3)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
case "$BIN" in /*) ;; *) RVSD=$PWD/$RVSD RVSADM=$PWD/$RVSADM ;; esac

# Unique names: the pid and a random part, so leftovers of a killed run never collide.
TAG=rvse2e-$$-$(printf %04x $((RANDOM)))
TMP=""      # the run's files, made once the trap is set
NSS=()      # namespaces made
PIDS=()     # background processes started (servers, clients, sampler, hping3)
RVSD_PID=""
PREFIX=""   # the running rvsd's EAL --file-prefix
CUR=""      # the scenario running, for messages
SUMMARY=()  # each scenario's figures, printed again at the very end
now_ms() { echo $(($(date +%s%N) / 1000000)); }
now_s() { date +%s.%N | cut -c1-14; }
secs() { local d=$(($(now_ms) - $1)); echo "$((d / 1000)).$((d % 1000 / 100))"; }
t_start=$(now_ms)

for old in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -o '^rvse2e-[0-9]*-[0-9a-f]*' |
  sort -u); do
  pid=${old#rvse2e-}; pid=${pid%%-*}
  kill -0 "$pid" 2>/dev/null && continue
  left=$(ip netns list | awk -v t="$old-" 'index($1, t) == 1 {print $1}' | tr '\n' ' ')
  echo "e2e: note: leftovers of a killed run: namespaces $left; /var/run/dpdk/$old-*;" \
    "/tmp/$old.*" >&2
done

# Stops rvsd (SIGTERM: it writes --metrics-out), waiting up to 10 s before SIGKILL; sets
# RVSD_RC to its exit status. Then removes its EAL runtime dir.
RVSD_RC=""
stop_rvsd() {
  if [ -n "$RVSD_PID" ]; then
    kill -TERM "$RVSD_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$RVSD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RVSD_PID" 2>/dev/null || true
    RVSD_RC=0
    wait "$RVSD_PID" 2>/dev/null || RVSD_RC=$?
    RVSD_PID=""
  fi
  [ -z "$PREFIX" ] || rm -rf "/var/run/dpdk/$PREFIX"
  PREFIX=""
}

stop_pids() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

del_namespaces() {
  local n
  for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  NSS=()
}

# The non-zero drop counters of the scenario's rvsd: from --metrics-out once it stopped,
# else from the last scrape.
drops() {
  local d=$TMP/$CUR
  if [ -s "$d/metrics.prom" ]; then
    grep -E '^rvs_(path_)?drops_total' "$d/metrics.prom" | grep -v ' 0$' | indent || true
  elif [ -s "$d/samples.jsonl" ]; then
    tail -n 1 "$d/samples.jsonl" | "$PY" -c '
import json, sys
m = json.loads(sys.stdin.read()).get("m", {})
for k, v in sorted(m.items()):
    if k.startswith(("rvs_drops_total", "rvs_path_drops_total")) and v:
        print(f"    {k} {v:.0f}")' || true
  fi
}

cleanup() {
  local rc=$?
  set +e
  stop_pids
  stop_rvsd
  if [ "$rc" != 0 ] && [ -n "$CUR" ]; then
    echo "e2e: --- $CUR: rvsd's log (last lines)" >&2
    tail -n 25 "$TMP/$CUR/rvsd.log" >&2 2>/dev/null
    echo "e2e: --- $CUR: rvsd's non-zero drop counters" >&2
    drops >&2
  fi
  del_namespaces
  if [ "${RVS_E2E_KEEP:-0}" = 1 ] && [ -n "$TMP" ]; then
    echo "e2e: the run's files (samples, clients, logs) are kept in $TMP" >&2
  elif [ -n "$TMP" ]; then
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "e2e: interrupted" >&2; exit 130' INT
trap 'echo "e2e: terminated" >&2; exit 143' TERM
TMP=$(mktemp -d "/tmp/$TAG.XXXX")

# mkns SHORT: a namespace $TAG-$CUR-SHORT, loopback up, IPv6 off.
mkns() {
  local n=$TAG-$CUR-$1
  ip netns add "$n"
  NSS+=("$n")
  ip -n "$n" link set lo up
  ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
    net.ipv6.conf.default.disable_ipv6=1
}
ns() { echo "$TAG-$CUR-$1"; }
nsx() { local n; n=$(ns "$1"); shift; ip netns exec "$n" "$@"; }

# port_on_bridge BR NS IF: a veth from bridge BR (namespace sw) to IF in NS, both ends up.
port_on_bridge() {
  ip link add "to-$2" netns "$(ns sw)" type veth peer name "$3" netns "$(ns "$2")"
  ip -n "$(ns sw)" link set "to-$2" master "$1" up
  ip -n "$(ns "$2")" link set "$3" up
}

# A kernel endpoint's interface: tx checksum offload off (ci/netns.sh says why).
endpoint_if() { nsx "$1" ethtool -K "$2" tx off >/dev/null; }

# rvsd_port IF MAC: rvsd's veth in the balancer namespace: its MAC, no kernel address, the
# kernel's ingress dropped.
rvsd_port() {
  ip -n "$(ns lb)" link set "$1" address "$2"
  nsx lb nft -f - <<EOF
table netdev rvsd_$1 {
  chain in {
    type filter hook ingress device "$1" priority 0; policy drop;
  }
}
EOF
}

METRICS=127.0.0.1:9750
# start_rvsd IF...: rvsd in the balancer namespace on net_af_packet0.. bound to IF..., with
# $TMP/$CUR/appliance.toml and /metrics on $METRICS there; waits until rvsadm gets an answer.
start_rvsd() {
  local d=$TMP/$CUR i=0 ifc vdevs=()
  for ifc in "$@"; do
    # A larger ring than the default 512 frames: rvsd shares 2 CPUs with everything else here.
    vdevs+=(--vdev "net_af_packet$i,iface=$ifc,framecnt=4096")
    i=$((i + 1))
  done
  PREFIX=$TAG-$CUR
  ip netns exec "$(ns lb)" "$RVSD" run --config "$d/appliance.toml" --no-exception \
    --socket "$d/rvsd.sock" --metrics-listen "$METRICS" --metrics-out "$d/metrics.prom" -- \
    --no-huge -m 1024 --no-pci -l 0-1 --file-prefix "$PREFIX" "${vdevs[@]}" \
    --log-level lib.eal:error >"$d/rvsd.log" 2>&1 &
  RVSD_PID=$!
  for _ in $(seq 100); do
    kill -0 "$RVSD_PID" 2>/dev/null || die "$CUR: rvsd exited at start"
    adm -Ln >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$CUR: rvsd's control socket did not answer within 10 s"
}

adm() { timeout 20 "$RVSADM" --socket "$TMP/$CUR/rvsd.sock" "$@"; }
rule() {
  echo "  rvsadm $*"
  adm "$@" || die "$CUR: rvsadm $* failed"
}

# server NS NAME: server.py in NS answering NAME on 0.0.0.0:80.
server() {
  local log=$TMP/$CUR/server-$2.log
  ip netns exec "$(ns "$1")" "$PY" "$servers_py" "$2" 80 >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do grep -q ready "$log" 2>/dev/null && return 0; sleep 0.1; done
  die "$CUR: server $2 did not start: $(cat "$log")"
}

# appliance PORTS_TOML CAPACITY: the appliance file: the ports, the table, the defense, the
# metrics listener.
appliance() {
  cat >"$TMP/$CUR/appliance.toml" <<EOF
$1

[engine]
workers = 1
conns_per_worker = $2

[defense]
drop_entry = $DROP_ENTRY

[metrics]
listen = "$METRICS"
EOF
}

# times KEY: records the epoch time of an event of the scenario in times.txt.
times() { echo "$1 $(now_s)" >>"$TMP/$CUR/times.txt"; }

# The scenario once the topology is built: FWD (-g/-m), VIP, the servers' addresses, the
# clients' first address, the table's capacity, the persistence (0: none).
run_scenario() {
  local fwd=$1 vip=$2 rip1=$3 rip2=$4 first=$5 cap=$6 persist=$7 d=$TMP/$CUR
  local svc=(-A -t "$vip:80" -s rr)
  [ "$persist" = 0 ] || svc+=(-p "$persist")
  start_rvsd "${RVSD_IFS[@]}"
  rule "${svc[@]}"
  rule -a -t "$vip:80" -r "$rip1:80" "$fwd"
  rule -a -t "$vip:80" -r "$rip2:80" "$fwd"
  adm -Ln | indent
  server s1 s1
  server s2 s2
  # The sampler, from rvsd's start of traffic to its stop; the first seconds are idle.
  ip netns exec "$(ns lb)" "$PY" "$here/sample.py" "http://$METRICS/metrics" "$RVSD_PID" \
    "$d/samples.jsonl" "$d/sampler.stop" 2>"$d/sampler.err" &
  PIDS+=($!)
  sleep 3
  times clients_start
  ip netns exec "$(ns c)" "$PY" "$here/clients.py" "$vip" 80 --first "$first" \
    --count "$NCLIENTS" --interval 0.5 --timeout 10 --stop-file "$d/clients.stop" \
    --warm-file "$d/clients.warm" --out "$d/clients.json" 2>"$d/clients.err" &
  local clients_pid=$!
  PIDS+=("$clients_pid")
  for _ in $(seq 300); do [ -f "$d/clients.warm" ] && break; sleep 0.1; done
  [ -f "$d/clients.warm" ] ||
    die "$CUR: not every one of the $NCLIENTS clients got an answer within 30 s (before the flood)"
  echo "  $NCLIENTS clients connecting, each has had an answer"
  sleep 2
  times flood_start
  echo "  flood: hping3 -S -p 80 --rand-source -i u$FLOOD_US $vip, $SECONDS_FLOOD s"
  ip netns exec "$(ns atk)" hping3 -S -p 80 --rand-source -i "u$FLOOD_US" -q "$vip" \
    >"$d/hping.log" 2>&1 &
  local hping_pid=$!
  PIDS+=("$hping_pid")
  local t=0 step=1
  [ "$SOAK" = 0 ] || step=60
  while [ "$t" -lt "$SECONDS_FLOOD" ]; do
    sleep "$step"
    t=$((t + step))
    kill -0 "$hping_pid" 2>/dev/null || die "$CUR: hping3 stopped: $(cat "$d/hping.log")"
    kill -0 "$RVSD_PID" 2>/dev/null || die "$CUR: rvsd died during the flood"
    [ "$SOAK" = 0 ] || "$PY" "$here/check.py" --dir "$d" --progress
  done
  kill -INT "$hping_pid" 2>/dev/null || true
  wait "$hping_pid" 2>/dev/null || true
  times flood_end
  # The clients go on a little after the flood, then stop; the templates as rvsadm lists them.
  sleep 3
  touch "$d/clients.stop"
  wait "$clients_pid" || die "$CUR: the clients failed: $(tail -n 5 "$d/clients.err")"
  times clients_end
  adm -Lnc >"$d/conns.txt" || die "$CUR: rvsadm -Lnc failed"
  # Quiet: the mbufs go back to the pool; then the sampler's last scrape, and rvsd stops.
  sleep 4
  touch "$d/sampler.stop"
  stop_pids
  stop_rvsd
  times rvsd_stopped
  echo "rvsd_rc $RVSD_RC" >>"$d/times.txt"
  local args=(--dir "$d" --scenario "$CUR" --capacity "$cap" --persist "$persist"
    --clients "$NCLIENTS" --first "$first" --servers "s1=$rip1,s2=$rip2" --vip "$vip"
    --drop-entry "$DROP_ENTRY")
  [ "$SOAK" = 0 ] || args+=(--soak)
  [ "$EXPECT_WRONG" != 1 ] || args+=(--expect-wrong)
  local out rc=0
  out=$("$PY" "$here/check.py" "${args[@]}") || rc=$?
  echo "$out" | indent
  SUMMARY+=("$CUR: $(echo "$out" | grep '^figures:' | sed 's/^figures: //')")
  [ "$rc" = 0 ] || die "$CUR: $(echo "$out" | grep -c '^FAIL') check(s) failed (above)"
}

test_nat() {
  local persist=$1
  t0=$(now_ms)
  mkdir -p "$TMP/$CUR"
  say "$CUR: NAT, clients and attacker -- rvsd p0 | rvsd p1 -- servers, VIP 10.0.3.100:80"
  local n
  for n in sw c atk lb s1 s2; do mkns $n; done
  ip -n "$(ns sw)" link add brc type bridge
  ip -n "$(ns sw)" link add brs type bridge
  ip -n "$(ns sw)" link set brc up
  ip -n "$(ns sw)" link set brs up
  port_on_bridge brc c eth0
  port_on_bridge brc atk eth0
  port_on_bridge brc lb p0
  ip link add to-lb1 netns "$(ns sw)" type veth peer name p1 netns "$(ns lb)"
  ip -n "$(ns sw)" link set to-lb1 master brs up
  ip -n "$(ns lb)" link set p1 up
  rvsd_port p0 02:00:00:00:01:01
  rvsd_port p1 02:00:00:00:02:01
  local i
  for i in $(seq 0 $((NCLIENTS - 1))); do
    ip -n "$(ns c)" addr add "10.0.1.$((128 + i))/24" dev eth0
  done
  ip -n "$(ns c)" route add 10.0.3.100/32 via 10.0.1.1
  endpoint_if c eth0
  ip -n "$(ns atk)" addr add 10.0.1.250/24 dev eth0
  ip -n "$(ns atk)" route add 10.0.3.100/32 via 10.0.1.1
  endpoint_if atk eth0
  i=0
  for n in s1 s2; do
    i=$((i + 1))
    port_on_bridge brs $n eth0
    ip -n "$(ns $n)" addr add "10.0.2.1$i/24" dev eth0
    ip -n "$(ns $n)" route add default via 10.0.2.1
    endpoint_if $n eth0
  done
  local cap=$TABLE
  [ "$persist" != 0 ] || cap=$TABLE_PLAIN
  appliance '[[port]]
name = "clients"
mac = "02:00:00:00:01:01"
addrs = ["10.0.1.1/24"]
device = "net_af_packet0"

[[port]]
name = "servers"
mac = "02:00:00:00:02:01"
addrs = ["10.0.2.1/24"]
device = "net_af_packet1"' "$cap"
  RVSD_IFS=(p0 p1)
  run_scenario -m 10.0.3.100 10.0.2.11 10.0.2.12 10.0.1.128 "$cap" "$persist"
}

test_dr() {
  local persist=$1
  t0=$(now_ms)
  mkdir -p "$TMP/$CUR"
  say "$CUR: direct routing, one bridge, VIP 10.0.0.100:80 answered by rvsd"
  local n i=0
  for n in sw c atk lb s1 s2; do mkns $n; done
  ip -n "$(ns sw)" link add br0 type bridge
  ip -n "$(ns sw)" link set br0 up
  for n in c atk lb s1 s2; do port_on_bridge br0 $n eth0; done
  rvsd_port eth0 02:00:00:00:00:01
  for i in $(seq 0 $((NCLIENTS - 1))); do
    ip -n "$(ns c)" addr add "10.0.0.$((128 + i))/24" dev eth0
  done
  endpoint_if c eth0
  ip -n "$(ns atk)" addr add 10.0.0.250/24 dev eth0
  endpoint_if atk eth0
  i=0
  for n in s1 s2; do
    i=$((i + 1))
    ip -n "$(ns $n)" addr add "10.0.0.1$i/24" dev eth0
    ip -n "$(ns $n)" addr add 10.0.0.100/32 dev lo
    nsx $n sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    endpoint_if $n eth0
  done
  local cap=$TABLE
  [ "$persist" != 0 ] || cap=$TABLE_PLAIN
  appliance '[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24"]
device = "net_af_packet0"' "$cap"
  RVSD_IFS=(eth0)
  run_scenario -g 10.0.0.100 10.0.0.11 10.0.0.12 10.0.0.128 "$cap" "$persist"
}

end_test() {
  del_namespaces
  say "$CUR: PASS ($(secs "$t0") s)"
  CUR=""
}

say "rvsd $RVSD; flood -i u$FLOOD_US for $SECONDS_FLOOD s; table $TABLE (plain $TABLE_PLAIN);" \
  "$NCLIENTS clients;" \
  "drop_entry $DROP_ENTRY${RVS_E2E_EXPECT_WRONG:+; EXPECT_WRONG=$EXPECT_WRONG}"
for t in "${tests[@]}"; do
  CUR=$t
  case $t in
    nat) test_nat "$PERSIST" ;;
    dr) test_dr "$PERSIST" ;;
    nat-plain) test_nat 0 ;;
    dr-plain) test_dr 0 ;;
  esac
  end_test
done
say "all passed: ${tests[*]} ($(secs "$t_start") s)"
for s in "${SUMMARY[@]}"; do
  say "$s"
  # For ci/test.sh's closing summary.
  [ -z "${RVS_FIGURES:-}" ] || echo "e2e $s" >>"$RVS_FIGURES"
done

#!/usr/bin/env bash
# ci/netns.sh: real kernel TCP through a running rvsd, the service configured only with
# rvsadm against it, in the topology of the kernel's IPVS selftest
# (tools/testing/selftests/netfilter/ipvs.sh: a client, a balancer and servers, each in its
# own network namespace; test_dr and test_nat), with two real servers.
#
# rvsd runs in the balancer namespace on net_af_packet ports bound to veths there; that
# namespace's own kernel is kept off those veths (no addresses, IPv6 off on them, an nftables
# netdev ingress chain with policy drop on each), as a NIC bound to DPDK would be. rvsd
# resolves the servers' MACs itself (ARP): the appliance files have no static neighbors.
#
#   dr:  one L2 segment (bridge br0 in namespace sw) joins client 10.0.0.2, rvsd's p0
#        (10.0.0.1/24, answers ARP for the VIP 10.0.0.100) and servers 10.0.0.11 and
#        10.0.0.12, which hold the VIP on lo (arp_ignore=1, arp_announce=2) and answer the
#        client directly.
#   nat: client 10.0.1.2 (and .3) -- veth -- rvsd p0 10.0.1.1/24; rvsd p1 10.0.2.1/24 --
#        br0 -- servers 10.0.2.11 and 10.0.2.12 (default route via 10.0.2.1); the client
#        routes the VIP 10.0.3.100 via 10.0.1.1. Then UDP (ci/netns/udp.py) to VIP:53: a
#        TTL 1 datagram's time exceeded must reach the client's socket (IP_RECVERR) from the
#        VIP, as IPVS sends it.
#   exception: client 10.0.0.2, fd00::2 -- veth -- rvsd p0 (10.0.0.1/24, fd00::1/64) with its
#        exception path: rvs0, the net_tap rvsd makes in the balancer namespace with p0's MAC
#        and addresses. A server listens on 10.0.0.1:22 and [fd00::1]:22 there, so a
#        connection goes client -> veth -> rvsd -> rvs0 -> kernel and back; the kernel
#        resolves the client itself (its ARP request / NS leaves by p0, the answer comes back
#        through rvsd, which learns it and passes it on to rvs0).
#
#   health: the nat topology with the exception path on (rvs0, rvs1), rvsd started with
#        --keepalived ci/netns/keepalived-nat.conf (a real keepalived file: keepalived
#        --config-test must accept it): its checkers run in the balancer namespace's kernel and
#        reach the servers through rvs1 (10.0.2.1) and rvsd's p1. VIP 10.0.3.100: port 80
#        TCP_CHECK, 8080 HTTP_GET (status_code 200, inhibit_on_failure; httpd.py answers 500
#        on demand), 90 quorum 2 with a sorry server, 92 MISC_CHECK with misc_dynamic. A
#        stopped listener is out of -Ln within delay_loop x (retry + 1) plus one delay_loop
#        (3 s; the seconds are printed), new connections all go to the live server, and it is
#        back within 2 s of listening again; a 500 puts its server at weight 0; quorum loss
#        brings in the sorry server; the program's exit status sets the weight (5: 3, 1: down,
#        2: 0). rvsd's log must have the `rvsd health: real server ... down: ...` / `... up`
#        lines, and /metrics (promtool-clean) the rvs_health_* series for them. Established
#        conns: a conn held to a server whose MISC_CHECK then exits 1 goes on at weight 0
#        (93, inhibit_on_failure), and stalls when the server is removed (94: IPVS drops its
#        packets, dest_unavailable), resuming when it is back. SIGHUP with one virtual server
#        fewer removes it and keeps the others' state; a bad file on SIGHUP changes nothing.
#   health-dr: the dr topology with the exception path on, rvsd started with --keepalived
#        ci/netns/keepalived-dr.conf: the checks reach the servers' own addresses from rvs0
#        (10.0.0.1) through rvsd's p0; the TCP_CHECK steps of health (out within 3 s, back
#        within 2 s, /metrics).
#
#   exception-flood: one segment (bridge) joins rvsd's p0 (10.0.0.1/24, its kernel interface
#        rvs0, [exception] budget_pps = 400, peers = ["10.0.0.2"]), a router 10.0.0.2, a
#        client 10.0.0.3, an attacker 10.0.0.4 and a DR server 10.0.0.11 (VIP 10.0.0.100).
#        BIRD (bird2) runs on rvs0 and in the router: BGP with BFD (the appliance announces
#        the VIP, learns a default route). The attacker floods 10.0.0.1 from random sources
#        with hping3 (SYN to 22, UDP to BFD's 3784, ICMP echo: about ten times the budget)
#        for 12 s. Meanwhile BGP must stay Established without a flap (sampled every 0.5 s,
#        and its "since" unchanged), at least 95 % of 40 management connects (8 at once) to
#        a listener on 10.0.0.1:22 must complete, and the VIP must serve 20 of 20. The
#        figures (flood rate, budget, passed and dropped by class, BGP, management) come
#        last.
#   unresolved: the nat topology with a second VIP 10.0.3.102 whose NAT dests 10.0.2.21 and
#        .22 never answer ARP; a SYN flood at it from random sources for 10 s. rvsd must
#        hold at most 3 frames per dead next hop (rvs_neigh_held from /metrics during the
#        flood), solicit each about once a second, count the rest (neigh_queue_full,
#        neigh_failed), give its held mbufs back, and serve 30 of 30 connections to the VIP
#        10.0.3.100 meanwhile.
#
# Each test: 50 real TCP connections (client.py) must all complete and be served by both
# servers (rr); a server drained with -w 0 gets no new connection; after -d of the other,
# everything goes to the one left; -Ln / -Ln --stats list the dests with their counts; the
# NAT test then checks persistence (-p 60: each client address keeps one server). The
# exception test: 50 connections to each of the appliance's addresses (IPv4, IPv6) must all
# complete, each with data both ways; rvs0's kernel must hold the client's own MAC for both,
# and rvsd must have counted the frames to and from rvs0. Any failure stops the script with
# a message, rvsd's log and its non-zero drop counters.
#
# Usage (root): ci/netns.sh [dr] [nat] [exception] [health] [health-dr] [exception-flood]
#               [unresolved]   (all seven by default)
# Env: RVS_BIN_DIR   where rvsd and rvsadm are (default target/release; a relative path is
#                     taken from the repository root)
#      RVS_NETNS_CONNS  connections of the first round (default 50)
#      RVS_FIGURES   a file: exception-flood appends its figures there (ci/test.sh prints them last)
#      RVS_NETNS_KEEP_OFFLOADS=1  leave the veths' tx checksum offload on (shows why it is
#                     turned off: the test must then fail)
#      RVS_NETNS_WORKERS  rvsd's [engine] workers (default 1; more use the fixed RSS key and
#                     share the CPUs: --lcores)
#      RVS_NETNS_EXPECT_WRONG=1  expect the drained server to take the new connections
#                     (a deliberately wrong expectation: the test must then fail; in
#                     health: the stopped server to take them)
#      RVS_NETNS_KEEPALIVED  the health test's keepalived file (default
#                     ci/netns/keepalived-nat.conf; a copy with a wrong connect_port, say,
#                     must make the test fail)
#      RVS_NETNS_BUDGET  exception-flood's budget_pps (default 400; 100000000 lets the whole
#                     flood through: the test then fails, as no SYN was over the budget)
#      RVS_NETNS_PEERS  exception-flood's peers, comma-separated (default 10.0.0.2; empty:
#                     none, and the UDP flood takes BFD, then BGP, down: the test fails)
#      RVS_NETNS_FLOOD_US  exception-flood's SYN interval in microseconds (default 400)
#      RVS_NETNS_FLOOD_SECONDS  exception-flood's flood (default 12)
# Needs ip, nft, ethtool and python3 (nftables and ethtool are installed if missing),
# keepalived for health and health-dr, bird2 and hping3 for exception-flood and unresolved
# (ci/setup.sh installs them); promtool, when installed, lints the health tests' scrapes.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD/ci/netns

BIN=${RVS_BIN_DIR:-target/release}
RVSD=$BIN/rvsd
RVSADM=$BIN/rvsadm
CONNS=${RVS_NETNS_CONNS:-50}
WORKERS=${RVS_NETNS_WORKERS:-1}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

die() { echo "netns: FAIL: $*" >&2; exit 1; }
say() { echo "netns: $*"; }
indent() { sed 's/^/    /'; }

[ "$(id -u)" = 0 ] || die "must run as root (namespaces, veths, nftables)"
if [ ! -x "$RVSD" ] || [ ! -x "$RVSADM" ]; then
  die "no $RVSD / $RVSADM (build them: cargo build --release -p rvs-control; or set RVS_BIN_DIR)"
fi
[ -n "$PY" ] || die "python3 is required"
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v ethtool >/dev/null || need+=(ethtool)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
case "$BIN" in /*) ;; *) RVSD=$PWD/$RVSD RVSADM=$PWD/$RVSADM ;; esac

# Unique names: the pid and a random part, so leftovers of a killed run never collide.
TAG=rvsnetns-$$-$(printf %04x $((RANDOM)))
TMP=""      # the run's files (configs, logs, sockets), made once the trap is set
NSS=()      # namespaces made
PIDS=()     # background processes started (servers)
RVSD_PID=""
PREFIX=""   # the running rvsd's EAL --file-prefix
KERNEL_IF=0 # 1: the next rvsd gets its exception path (rvs<i>), else --no-exception
KEEPALIVED="" # the next rvsd's --keepalived FILE, if any
METRICS=off # the next rvsd's --metrics-listen (in its namespace: its own loopback)
CUR=""      # the test running, for messages
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { local d=$(($(now_ms) - $1)); echo "$((d / 1000)).$((d % 1000 / 100))"; }
t_start=$(now_ms)

# Leftovers of a killed run (its pid is gone) do not collide with this run; say so.
for old in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -o '^rvsnetns-[0-9]*-[0-9a-f]*' |
  sort -u); do
  pid=${old#rvsnetns-}; pid=${pid%%-*}
  kill -0 "$pid" 2>/dev/null && continue
  left=$(ip netns list | awk -v t="$old-" 'index($1, t) == 1 {print $1}' | tr '\n' ' ')
  pids=$(for n in $left; do ip netns pids "$n" 2>/dev/null || true; done | tr '\n' ' ')
  echo "netns: note: leftovers of a killed run: namespaces $left; processes ${pids:-none};" \
    "/var/run/dpdk/$old-*; /tmp/$old.*" >&2
done

# Stops rvsd (SIGTERM: it writes --metrics-out), waiting up to 5 s before SIGKILL.
# Then removes its EAL runtime dir.
stop_rvsd() {
  if [ -n "$RVSD_PID" ]; then
    kill -TERM "$RVSD_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$RVSD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RVSD_PID" 2>/dev/null || true
    wait "$RVSD_PID" 2>/dev/null || true
    RVSD_PID=""
  fi
  [ -z "$PREFIX" ] || rm -rf "/var/run/dpdk/$PREFIX"
  PREFIX=""
}

stop_servers() {
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

# The non-zero drop counters of the last rvsd run (from --metrics-out).
drops() {
  local m=$TMP/$CUR/metrics.prom
  [ -f "$m" ] || return 0
  grep -E '^rvs_(path_)?drops_total' "$m" | grep -v ' 0$' | indent || true
}

cleanup() {
  local rc=$?
  set +e
  stop_servers
  stop_rvsd
  if [ "$rc" != 0 ] && [ -n "$CUR" ]; then
    echo "netns: --- $CUR: rvsd's log (last lines)" >&2
    tail -n 15 "$TMP/$CUR/rvsd.log" >&2 2>/dev/null
    echo "netns: --- $CUR: rvsd's non-zero drop counters" >&2
    drops >&2
  fi
  del_namespaces
  [ -z "$TMP" ] || rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "netns: interrupted" >&2; exit 130' INT
trap 'echo "netns: terminated" >&2; exit 143' TERM
TMP=$(mktemp -d "/tmp/$TAG.XXXX")

# mkns SHORT: a namespace $TAG-$CUR-SHORT, loopback up, IPv6 off; prints nothing.
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

# veth NS_A IF_A NS_B IF_B: a veth pair, both ends up.
veth() {
  ip link add "$2" netns "$(ns "$1")" type veth peer name "$4" netns "$(ns "$3")"
  ip -n "$(ns "$1")" link set "$2" up
  ip -n "$(ns "$3")" link set "$4" up
}

# A kernel endpoint's interface: the veth's tx checksum offload off. A kernel sending on a
# veth leaves the TCP checksum to the "hardware" (CHECKSUM_PARTIAL); a kernel receiving on
# the peer trusts it, but AF_PACKET hands rvsd the frame with the checksum not filled in, and
# rvsd forwards it as it is, so the server (or client) drops it as corrupt. Turning tx
# checksumming off also turns TSO off (no super-frames above the MTU reach rvsd).
endpoint_if() {
  [ "${RVS_NETNS_KEEP_OFFLOADS:-0}" = 1 ] && return 0
  nsx "$1" ethtool -K "$2" tx off >/dev/null
}

# rvsd_port IF MAC: one of rvsd's veths in the balancer namespace: rvsd's MAC, no kernel
# address (IPv6 is off in the namespace), and the kernel's ingress dropped.
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

# start_rvsd IF...: rvsd in the balancer namespace on net_af_packet0.. bound to IF...,
# with $TMP/$CUR/appliance.toml (and its exception path when KERNEL_IF=1); waits until
# rvsadm gets an answer.
start_rvsd() {
  local d=$TMP/$CUR i=0 ifc vdevs=() exc=(--no-exception)
  [ "$KERNEL_IF" != 1 ] || exc=()
  [ -z "$KEEPALIVED" ] || exc+=(--keepalived "$KEEPALIVED")
  for ifc in "$@"; do vdevs+=(--vdev "net_af_packet$i,iface=$ifc"); i=$((i + 1)); done
  PREFIX=$TAG-$CUR
  # The main lcore (control thread) on CPU 0, worker lcores 1..N spread over the CPUs.
  local lcores=(-l 0-1) cpus w map
  if [ "$WORKERS" != 1 ]; then
    cpus=$(nproc)
    map="0@0"
    for w in $(seq "$WORKERS"); do map+=",$w@$((w % cpus))"; done
    lcores=(--lcores "$map")
  fi
  printf '\n[engine]\nworkers = %s\n' "$WORKERS" >>"$d/appliance.toml"
  [ "$WORKERS" = 1 ] || echo 'rss_key = "fixed"' >>"$d/appliance.toml"
  ip netns exec "$(ns lb)" "$RVSD" run --config "$d/appliance.toml" ${exc[@]+"${exc[@]}"} \
    --socket "$d/rvsd.sock" --metrics-listen "$METRICS" --metrics-out "$d/metrics.prom" -- \
    --no-huge -m 1024 --no-pci "${lcores[@]}" --file-prefix "$PREFIX" "${vdevs[@]}" \
    --log-level lib.eal:error >"$d/rvsd.log" 2>&1 &
  RVSD_PID=$!
  for _ in $(seq 100); do
    kill -0 "$RVSD_PID" 2>/dev/null || die "$CUR: rvsd exited at start"
    adm -Ln >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$CUR: rvsd's control socket did not answer within 10 s"
}

adm() { timeout 10 "$RVSADM" --socket "$TMP/$CUR/rvsd.sock" "$@"; }
# A rule change: echoed, and the script fails when rvsadm refuses it.
rule() {
  echo "  rvsadm $*"
  adm "$@" || die "$CUR: rvsadm $* failed"
}

# server NS NAME [PORT [ADDR]]: server.py in namespace NS answering NAME on ADDR:PORT
# (0.0.0.0:80 by default).
server() {
  local log=$TMP/$CUR/server-$2.log
  # ip netns exec itself in the background (not a shell function): $! is then the server.
  ip netns exec "$(ns "$1")" "$PY" "$here/server.py" "$2" "${3:-80}" ${4:+"$4"} >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do grep -q ready "$log" 2>/dev/null && return 0; sleep 0.1; done
  die "$CUR: server $2 did not start: $(cat "$log")"
}

# udp ARGS: ci/netns/udp.py ARGS in the client namespace, its output (and errors) printed.
udp() { timeout 10 ip netns exec "$(ns c)" "$PY" "$here/udp.py" "$@" 2>&1; }

# clients LABEL N [client.py options]: N connections from the client namespace to the VIP;
# all must complete. Sets OUT to client.py's count line.
clients() { connect "$1" "$VIP" 80 "${@:2}"; }

# connect LABEL ADDR PORT N [client.py options]: N connections from the client namespace to
# ADDR:PORT; all must complete. Sets OUT to client.py's count line.
connect() {
  local label=$1 addr=$2 port=$3 n=$4 err=$TMP/$CUR/client.err
  shift 4
  if ! OUT=$(timeout 60 ip netns exec "$(ns c)" "$PY" "$here/client.py" "$addr" "$port" "$n" \
    "$@" 2>"$err"); then
    echo "  $label: $OUT" >&2
    indent <"$err" >&2
    die "$CUR: $label: connections to $addr port $port failed"
  fi
  echo "  $label: $OUT"
}
count() { echo "$OUT" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2; f = 1} END {if (!f) print 0}'; }

# expect_only NAME N: all N connections of the last round went to NAME.
expect_only() {
  [ "$(count "$1")" = "$2" ] || die "$CUR: expected all $2 connections on $1, got: $OUT"
}
# expect_both A B N: rr over two servers: each took at least a quarter of N.
expect_both() {
  local a b
  a=$(count "$1") b=$(count "$2")
  if [ $((a + b)) != "$3" ] || [ $((a * 4)) -lt "$3" ] || [ $((b * 4)) -lt "$3" ]; then
    die "$CUR: expected $3 connections shared by $1 and $2, got: $OUT"
  fi
}

# check_stats OUTPKTS RIP...: -Ln --stats lists exactly RIP... (as ADDR:80) under the
# service, each with Conns > 0 and InPkts > 0, and OutPkts > 0 when OUTPKTS is "out" (NAT).
check_stats() {
  local want_out=$1 st rip line got
  shift
  st=$(adm -Ln --stats) || die "$CUR: rvsadm -Ln --stats failed"
  indent <<<"$st"
  got=$(echo "$st" | awk '$1 == "->" && $2 ~ /:80$/ {print $2}' | sort | tr '\n' ' ')
  [ "$got" = "$(printf '%s:80 ' "$@" | tr ' ' '\n' | grep . | sort | tr '\n' ' ')" ] ||
    die "$CUR: -Ln --stats lists dests '$got', expected '$*'"
  for rip in "$@"; do
    line=$(echo "$st" | awk -v d="$rip:80" '$1 == "->" && $2 == d')
    echo "$line" | awk -v o="$want_out" '{exit !($3 > 0 && $4 > 0 && (o != "out" || $5 > 0))}' ||
      die "$CUR: -Ln --stats: $rip has zero counts: $line"
  done
}

# check_list RIP...: -Ln lists exactly these dests.
check_list() {
  local l got
  l=$(adm -Ln) || die "$CUR: rvsadm -Ln failed"
  indent <<<"$l"
  got=$(echo "$l" | awk '$1 == "->" && $2 ~ /:80$/ {print $2}' | sort | tr '\n' ' ')
  [ "$got" = "$(printf '%s:80 ' "$@" | tr ' ' '\n' | grep . | sort | tr '\n' ' ')" ] ||
    die "$CUR: -Ln lists dests '$got', expected '$*'"
}

# check_neigh NS ADDR MAC: the kernel in NS resolved ADDR (by ARP, answered by rvsd) to MAC.
check_neigh() {
  local got
  got=$(ip -n "$(ns "$1")" neigh show "$2" | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}')
  [ "$got" = "$3" ] || die "$CUR: $1 has $2 at '${got:-no entry}', expected rvsd's $3"
  echo "  $1's ARP entry: $2 is-at $got (rvsd)"
}

# The drained server's expected share (0), or a deliberately wrong one.
drained_server() { if [ "${RVS_NETNS_EXPECT_WRONG:-0}" = 1 ]; then echo "$1"; else echo "$2"; fi; }

# The steps both tests share, once the topology, rvsd and the servers are up.
# balance FWD S1 S2 OUTPKTS [client.py options]
balance() {
  local fwd=$1 s1=$2 s2=$3 out=$4
  shift 4
  rule -A -t "$VIP:80" -s rr
  rule -a -t "$VIP:80" -r "$s1:80" "$fwd"
  rule -a -t "$VIP:80" -r "$s2:80" "$fwd"
  clients "rr, 2 servers" "$CONNS" "$@"
  expect_both s1 s2 "$CONNS"
  check_stats "$out" "$s1" "$s2"
  rule -e -t "$VIP:80" -r "$s1:80" "$fwd" -w 0
  clients "s1 drained (-w 0)" 20
  expect_only "$(drained_server s1 s2)" 20
  rule -d -t "$VIP:80" -r "$s2:80"
  rule -e -t "$VIP:80" -r "$s1:80" "$fwd" -w 1
  clients "s2 deleted, s1 back to -w 1" 20
  expect_only s1 20
  check_list "$s1"
}

# The last run's totals: rvsd's stop line and its drop counters.
summary() {
  stop_rvsd
  local line
  line=$(grep 'rvsd run: .* frames in' "$TMP/$CUR/rvsd.log" | sed 's/^rvsd run: //') || true
  say "$CUR: rvsd: ${line:-no summary line}"
  local d
  d=$(drops)
  [ -z "$d" ] || { say "$CUR: rvsd's non-zero drop counters:"; echo "$d"; }
}

end_test() {
  summary
  stop_servers
  del_namespaces
  say "$CUR: PASS ($(secs "$t0") s)"
  CUR=""
}

# The DR topology: one bridge br0 in sw joins client c (10.0.0.2), the balancer's veth eth0
# (rvsd's port p0, 10.0.0.1/24, MAC 02:00:00:00:00:01) and servers s1 10.0.0.11 and s2
# 10.0.0.12, which hold $VIP on lo (arp_ignore=1, arp_announce=2: they answer ARP for their
# own addresses only). Writes the run's appliance.toml.
dr_topology() {
  local n i=0
  for n in sw c lb s1 s2; do mkns $n; done
  ip -n "$(ns sw)" link add br0 type bridge
  ip -n "$(ns sw)" link set br0 up
  for n in c lb s1 s2; do
    veth sw "to-$n" "$n" eth0
    ip -n "$(ns sw)" link set "to-$n" master br0
  done
  rvsd_port eth0 02:00:00:00:00:01
  ip -n "$(ns c)" addr add 10.0.0.2/24 dev eth0
  endpoint_if c eth0
  for n in s1 s2; do
    i=$((i + 1))
    ip -n "$(ns $n)" addr add "10.0.0.1$i/24" dev eth0
    ip -n "$(ns $n)" addr add "$VIP/32" dev lo
    nsx $n sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    endpoint_if $n eth0
  done
  cat >"$TMP/$CUR/appliance.toml" <<EOF
[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24"]
device = "net_af_packet0"
EOF
}

test_dr() {
  CUR=dr t0=$(now_ms) VIP=10.0.0.100
  mkdir -p "$TMP/$CUR"
  say "dr: direct routing, one L2 segment (bridge), VIP $VIP answered by rvsd"
  dr_topology
  start_rvsd eth0
  server s1 s1
  server s2 s2
  balance -g 10.0.0.11 10.0.0.12 in --up 20000
  check_neigh c "$VIP" 02:00:00:00:00:01
  rule -C
  if timeout 10 ip netns exec "$(ns c)" "$PY" "$here/client.py" "$VIP" 80 1 --timeout 1 \
    >/dev/null 2>&1; then
    die "dr: a connection completed with no service configured"
  fi
  echo "  no service (-C): a connection fails, as it should"
  end_test
}

# The NAT topology: client c (10.0.1.2 and .3) -- rvsd p0 | rvsd p1 -- bridge br0 in sw --
# servers s1 10.0.2.11 and s2 10.0.2.12 (default route via 10.0.2.1); the client routes $VIP
# via 10.0.1.1.
nat_topology() {
  local n i=0
  for n in sw c lb s1 s2; do mkns $n; done
  veth c eth0 lb p0
  ip -n "$(ns sw)" link add br0 type bridge
  ip -n "$(ns sw)" link set br0 up
  veth sw to-lb lb p1
  ip -n "$(ns sw)" link set to-lb master br0
  rvsd_port p0 02:00:00:00:01:01
  rvsd_port p1 02:00:00:00:02:01
  ip -n "$(ns c)" addr add 10.0.1.2/24 dev eth0
  ip -n "$(ns c)" addr add 10.0.1.3/24 dev eth0
  ip -n "$(ns c)" route add "$VIP/32" via 10.0.1.1
  endpoint_if c eth0
  for n in s1 s2; do
    i=$((i + 1))
    veth sw "to-$n" $n eth0
    ip -n "$(ns sw)" link set "to-$n" master br0
    ip -n "$(ns $n)" addr add "10.0.2.1$i/24" dev eth0
    ip -n "$(ns $n)" route add default via 10.0.2.1
    endpoint_if $n eth0
  done
}

test_nat() {
  CUR=nat t0=$(now_ms) VIP=10.0.3.100
  mkdir -p "$TMP/$CUR"
  say "nat: masquerading, client -- rvsd p0 | rvsd p1 -- bridge -- servers, VIP $VIP"
  local n i=0
  nat_topology
  cat >"$TMP/$CUR/appliance.toml" <<EOF
[[port]]
name = "client"
mac = "02:00:00:00:01:01"
addrs = ["10.0.1.1/24"]
device = "net_af_packet0"

[[port]]
name = "servers"
mac = "02:00:00:00:02:01"
addrs = ["10.0.2.1/24"]
device = "net_af_packet1"
EOF
  start_rvsd p0 p1
  server s1 s1
  server s2 s2
  balance -m 10.0.2.11 10.0.2.12 out --up 20000 --down 100000
  check_neigh c 10.0.1.1 02:00:00:00:01:01
  # Persistence: both servers back, a persistent service; each client address keeps one.
  rule -a -t "$VIP:80" -r 10.0.2.12:80 -m
  rule -E -t "$VIP:80" -s rr -p 60
  adm -Ln | grep -q "^TCP  $VIP:80 rr persistent 60" ||
    die "nat: -Ln does not show the service as persistent 60: $(adm -Ln)"
  local a b
  clients "-p 60, from 10.0.1.2" 20 --src 10.0.1.2
  a=$(echo "$OUT" | grep -o 's[12]=20' | cut -d= -f1) ||
    die "nat: -p 60: 10.0.1.2's connections did not all go to one server: $OUT"
  clients "-p 60, from 10.0.1.3" 20 --src 10.0.1.3
  b=$(echo "$OUT" | grep -o 's[12]=20' | cut -d= -f1) ||
    die "nat: -p 60: 10.0.1.3's connections did not all go to one server: $OUT"
  echo "  persistence: 10.0.1.2 -> $a, 10.0.1.3 -> $b"
  # UDP: a traceroute's probe (TTL 1) gets its time exceeded from the VIP, as from IPVS. (No
  # fragments here: DPDK's af_packet PMD joins its sockets with PACKET_FANOUT_FLAG_DEFRAG,
  # so the kernel reassembles datagrams before rvsd sees them; pipeline tests cover them.)
  rule -A -u "$VIP:53" -s rr
  rule -a -u "$VIP:53" -r 10.0.2.11:53 -m
  rule -a -u "$VIP:53" -r 10.0.2.12:53 -m
  OUT=$(udp ttl1 "$VIP" 53) || die "nat: TTL 1 to $VIP:53: $OUT"
  [ "$OUT" = "from=$VIP type=11 code=0" ] ||
    die "nat: TTL 1 to $VIP:53: '$OUT', expected a time exceeded from the VIP"
  echo "  TTL 1 to $VIP:53: the client's kernel got $OUT"
  end_test
}

# metric NAME [FILTER]: the sum of a series in the last rvsd run's --metrics-out, over the
# lines whose labels contain FILTER (all when empty).
metric() {
  awk -v n="$1" -v f="${2:-}" '$1 == n || index($1, n "{") == 1 { if (index($1, f)) s += $NF }
    END { printf "%d\n", s }' "$TMP/$CUR/metrics.prom"
}

# kernel_neigh ADDR MAC: the kernel of the balancer namespace resolved ADDR on rvs0 to MAC
# (the client's own), which it can only have learned from an answer rvsd passed it.
kernel_neigh() {
  local got all
  all=$(ip -n "$(ns lb)" neigh show dev rvs0 | tr '\n' ';')
  got=$(ip -n "$(ns lb)" neigh show "$1" dev rvs0 |
    awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}')
  [ "$got" = "$2" ] ||
    die "$CUR: rvs0's kernel has $1 at '${got:-no entry}', expected the client's $2 ($all)"
  echo "  rvs0's neighbor entry: $(ip -n "$(ns lb)" neigh show "$1" dev rvs0)"
}

test_exception() {
  CUR=exception t0=$(now_ms)
  mkdir -p "$TMP/$CUR"
  say "exception: real TCP to the appliance's own addresses, behind rvsd's kernel interface rvs0"
  mkns c
  mkns lb
  veth c eth0 lb p0
  rvsd_port p0 02:00:00:00:00:01
  # IPv6 on for the client, and for the interfaces made from now on in the balancer
  # namespace (rvs0, by rvsd); rvsd's veth p0, made before, keeps it off.
  nsx c sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
  nsx lb sysctl -qw net.ipv6.conf.default.disable_ipv6=0
  ip -n "$(ns c)" addr add 10.0.0.2/24 dev eth0
  ip -n "$(ns c)" addr add fd00::2/64 dev eth0 nodad
  endpoint_if c eth0
  local cmac a up=0 n=$CONNS k rx tx
  cmac=$(ip -n "$(ns c)" -o link show eth0 |
    awk '{for (i = 1; i < NF; i++) if ($i == "link/ether") print $(i + 1)}')
  cat >"$TMP/$CUR/appliance.toml" <<EOF
[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24", "fd00::1/64"]
device = "net_af_packet0"
EOF
  KERNEL_IF=1
  start_rvsd p0
  KERNEL_IF=0
  # rvs0 up with both addresses, IPv6's duplicate address detection done.
  for _ in $(seq 100); do
    a=$(ip -n "$(ns lb)" -o addr show dev rvs0 2>/dev/null || true)
    if grep -q ' 10\.0\.0\.1/24 ' <<<"$a" && grep -q ' fd00::1/64 ' <<<"$a" &&
      ! grep -q tentative <<<"$a"; then
      up=1
      break
    fi
    sleep 0.1
  done
  [ "$up" = 1 ] ||
    die "exception: rvs0 did not come up with 10.0.0.1/24 and fd00::1/64 within 10 s: $a"
  [ -z "$(ip -n "$(ns lb)" -6 addr show dev p0)" ] || die "exception: the kernel has IPv6 on p0"
  server lb k4 22 10.0.0.1
  server lb k6 22 fd00::1
  connect "IPv4, 10.0.0.1:22 behind rvs0" 10.0.0.1 22 "$n" --up 3000 --down 30000
  expect_only k4 "$n"
  connect "IPv6, [fd00::1]:22 behind rvs0" fd00::1 22 "$n" --up 3000 --down 30000
  expect_only k6 "$n"
  kernel_neigh 10.0.0.2 "$cmac"
  kernel_neigh fd00::2 "$cmac"
  stop_rvsd
  # Every connection's frames went through rvsd both ways: at least a SYN, the request, an
  # ACK of the answer and a FIN each, to the kernel and from it.
  k=$(metric rvs_kernel_frames_total)
  rx=$(metric rvs_port_rx_packets_total 'port="p0-kernel"')
  tx=$(metric rvs_port_tx_packets_total 'port="p0-kernel"')
  echo "  rvsd: $k frames to the kernel; rvs0: $tx frames written to it, $rx read from it"
  if [ "$k" -lt $((8 * n)) ] || [ "$tx" -lt $((8 * n)) ] || [ "$rx" -lt $((8 * n)) ]; then
    die "exception: too few frames through rvs0 for $((2 * n)) connections"
  fi
  end_test
}

# dests PORT: the dests -Ln lists under the service $VIP:PORT, each as ADDR:PORT/WEIGHT,
# sorted, space-separated.
dests() {
  local l
  l=$(adm -Ln) || die "$CUR: rvsadm -Ln failed"
  awk -v s="$VIP:$1" '$1 ~ /^(TCP|UDP|SCTP|FWM)$/ {in_s = ($2 == s)}
    in_s && $1 == "->" {print $2 "/" $4}' <<<"$l" | sort | tr '\n' ' ' | sed 's/ $//'
}

# wait_dests PORT WANT LABEL LIMIT_MS T0_MS: polls -Ln (every 0.1 s, up to 20 s) until the
# service $VIP:PORT lists exactly WANT (see dests); prints the seconds since T0_MS and fails
# when they exceed LIMIT_MS. Sets WAITED to the milliseconds.
wait_dests() {
  local port=$1 want=$2 label=$3 limit=$4 t=$5 got=""
  for _ in $(seq 200); do
    got=$(dests "$port")
    [ "$got" = "$want" ] && break
    sleep 0.1
  done
  WAITED=$(($(now_ms) - t))
  [ "$got" = "$want" ] ||
    die "$CUR: $label: $VIP:$port lists '$got' after $(secs "$t") s, expected '$want'"
  echo "  $label: $VIP:$port lists '$got' after $(secs "$t") s (bound $((limit / 1000)).$((limit % 1000 / 100)) s)"
  [ "$WAITED" -le "$limit" ] ||
    die "$CUR: $label took $(secs "$t") s, over the bound of $((limit / 1000)).$((limit % 1000 / 100)) s"
}

# http_clients LABEL PORT N: N HTTP GETs from the client namespace to $VIP:PORT, each
# answered 200 with the server's name (httpd.py); sets OUT as client.py does ("ok=K fail=F
# NAME=count ...") and fails unless all succeed.
http_clients() {
  local label=$1 port=$2 n=$3
  if ! OUT=$(timeout 60 ip netns exec "$(ns c)" "$PY" - "$VIP" "$port" "$n" <<'PYEOF'
import collections, sys, urllib.request
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c, fail = collections.Counter(), 0
for i in range(n):
    try:
        with urllib.request.urlopen(f"http://{addr}:{port}/", timeout=3) as r:
            c[r.read().decode().strip()] += 1
    except Exception as e:
        fail += 1
        print(f"GET {i}: {e!r}", file=sys.stderr)
print(f"ok={sum(c.values())} fail={fail} " + " ".join(f"{k}={v}" for k, v in sorted(c.items())))
sys.exit(1 if fail else 0)
PYEOF
  ); then
    die "$CUR: $label: HTTP GETs to $VIP:$port failed: $OUT"
  fi
  echo "  $label: $OUT"
}

# health_line WHAT PATTERN: rvsd's log has a health line matching PATTERN (grep -E); shows it.
health_line() {
  local l
  l=$(grep -E "$2" "$TMP/$CUR/rvsd.log" | tail -n 1) ||
    die "$CUR: rvsd's log has no line for $1 (/$2/)"
  echo "  log ($1): $l"
}

# kill_server PID: stops one server (its listener goes away: connections are refused).
kill_server() { kill "$1"; wait "$1" 2>/dev/null || true; }

# health_file SRC: keepalived --config-test must accept SRC, and the run's copy
# ($TMP/$CUR/keepalived.conf: /run/rvs-netns-health replaced by the run's directory, where
# the MISC_CHECK scripts are written). Sets CONF to the copy.
health_file() {
  local src=$1 d=$TMP/$CUR
  command -v keepalived >/dev/null || die "$CUR: keepalived is required (ci/setup.sh)"
  keepalived --config-test -f "$src" >"$d/config-test.log" 2>&1 ||
    die "$CUR: keepalived --config-test refuses $src: $(cat "$d/config-test.log")"
  CONF=$d/keepalived.conf
  sed "s#/run/rvs-netns-health#$d#g" "$src" >"$CONF"
  # shellcheck disable=SC2016 # the scripts' own $(...)
  printf '#!/bin/sh\nexit "$(cat %s/misc-status)"\n' "$d" >"$d/misc.sh"
  # shellcheck disable=SC2016
  printf '#!/bin/sh\nexit "$(cat %s/held-$1)"\n' "$d" >"$d/held.sh"
  echo 0 >"$d/misc-status"
  keepalived --config-test -f "$CONF" >"$d/config-test.log" 2>&1 ||
    die "$CUR: keepalived --config-test refuses the copy: $(cat "$d/config-test.log")"
  echo "  keepalived --config-test: $src accepted (and the run's copy)"
}

# scrape: rvsd's /metrics now (METRICS, in the balancer namespace) into $TMP/$CUR/scrape.prom;
# with promtool installed (ci/prometheus.sh installs it), the text must pass its lint.
scrape() {
  local f=$TMP/$CUR/scrape.prom
  nsx lb "$PY" -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
    "http://$METRICS/metrics" >"$f" || die "$CUR: no answer from http://$METRICS/metrics"
  if command -v promtool >/dev/null && ! promtool check metrics <"$f" >"$TMP/$CUR/promtool.log" 2>&1
  then
    die "$CUR: promtool check metrics: $(head -n 5 "$TMP/$CUR/promtool.log")"
  fi
}

# expect_series NAME WANT FILTER...: in the last scrape, the series NAME whose labels contain
# every FILTER has the value WANT (exactly one such series).
expect_series() {
  local name=$1 want=$2 got
  shift 2
  got=$(awk -v n="$name" -v f="$(printf '%s\n' "$@")" '
    BEGIN { k = split(f, fs, "\n") }
    index($1, n "{") == 1 { for (i = 1; i <= k; i++) if (fs[i] != "" && !index($1, fs[i])) next; print $NF }
  ' "$TMP/$CUR/scrape.prom")
  if [ "$(echo "$got" | grep -c .)" != 1 ] || [ "$got" != "$want" ]; then
    die "$CUR: $name{$*} is '$(echo "$got" | tr '\n' ' ')', expected $want"
  fi
}

# health_tcp RIP1 RIP2 PID1: the TCP_CHECK (delay_loop 1, retry 1, delay_before_retry 1) of
# $VIP:80: s1's server (PID1, RIP1) stopped: out of -Ln within delay_loop x (retry + 1) plus
# one delay_loop (3 s), new connections all to s2; started again: back within 2 s. With
# METRICS set, the health series say so. Sets OUT_S and BACK_S (seconds).
health_tcp() {
  local r1=$1 r2=$2 pid1=$3 t rs
  rs="remote_address=\"$r1\",remote_port=\"80\""
  say "$CUR: TCP_CHECK (delay_loop 1, retry 1, delay_before_retry 1): s1's listener stopped"
  clients "both up" 20
  expect_both s1 s2 20
  kill_server "$pid1"
  t=$(now_ms)
  wait_dests 80 "$r2:80/1" "s1 out" 3000 "$t"
  OUT_S=$(secs "$t")
  health_line "s1 down" "rvsd health: real server ${r1//./\\.} \(.*\) down: TCP_CHECK ${r1//./\\.}:80: "
  if [ "$METRICS" != off ]; then
    scrape
    expect_series rvs_health_up 0 "$rs" 'check="TCP_CHECK"'
    expect_series rvs_health_real_server_up 0 "$rs"
    expect_series rvs_health_transitions_total 1 "$rs" 'direction="down"'
    echo "  /metrics: rvs_health_up, rvs_health_real_server_up 0 and one transition down for $r1:80"
  fi
  clients "s1 out" 20
  expect_only "$(drained_server s1 s2)" 20
  server s1 s1
  t=$(now_ms)
  # The next check (within a delay_loop) brings it back; plus one delay_loop: 2 s.
  wait_dests 80 "$r1:80/1 $r2:80/1" "s1 back" 2000 "$t"
  BACK_S=$(secs "$t")
  health_line "s1 up" "rvsd health: real server ${r1//./\\.} \(.*\) up"
  if [ "$METRICS" != off ]; then
    scrape
    expect_series rvs_health_up 1 "$rs" 'check="TCP_CHECK"'
    expect_series rvs_health_transitions_total 1 "$rs" 'direction="up"'
  fi
  clients "s1 back" 20
  expect_both s1 s2 20
}

# hold LABEL PORT NAME: a long-lived connection from the client to $VIP:PORT held by server
# NAME (hold.py, in the background); its answers go to $TMP/$CUR/hold-PORT.log.
hold() {
  local log=$TMP/$CUR/hold-$2.log
  ip netns exec "$(ns c)" "$PY" "$here/hold.py" "$VIP" "$2" "$3" >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do grep -q '^held\|^closed' "$log" 2>/dev/null && break; sleep 0.1; done
  grep -q '^held' "$log" || die "$CUR: $1: no connection held by $3: $(cat "$log")"
  echo "  $1: a connection to $VIP:$2 held by $3"
}
# answers PORT: answers the held connection to PORT has had.
answers() { grep -c '^echo' "$TMP/$CUR/hold-$1.log" || true; }
# answers_in PORT SECONDS: the answers it gets over the next SECONDS.
answers_in() {
  local a
  a=$(answers "$1")
  sleep "$2"
  echo $(($(answers "$1") - a))
}

# The health test: rvsd started with --keepalived (ci/netns/keepalived-nat.conf, a real
# keepalived file) in the NAT topology, its exception path on: the checkers run in the
# balancer namespace's kernel and reach the servers through rvs1 (10.0.2.1) and rvsd's p1.
test_health() {
  CUR=health t0=$(now_ms) VIP=10.0.3.100
  local d=$TMP/health n pid1 pidq1 t port got
  mkdir -p "$d"
  say "health: keepalived checkers in rvsd (NAT topology, checks through rvs1), VIP $VIP"
  health_file "${RVS_NETNS_KEEPALIVED:-$here/keepalived-nat.conf}"
  echo 0 >"$d/held-93"
  echo 0 >"$d/held-94"
  nat_topology
  # The servers before rvsd, so the checkers find them up from the first check.
  server s1 s1
  pid1=${PIDS[-1]}
  server s2 s2
  server s1 q1 90
  pidq1=${PIDS[-1]}
  server s2 q2 90
  server s2 sorry 91
  server s1 m1 92
  server s2 m2 92
  server s1 e1 93
  server s2 e2 93
  server s1 r1 94
  server s2 r2 94
  for n in s1 s2; do
    ip netns exec "$(ns $n)" "$PY" "$here/httpd.py" "h$n" 8080 "$d/http-$n.fail" \
      >"$d/server-h$n.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do grep -q ready "$d/server-h$n.log" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$d/server-h$n.log" || die "health: httpd.py h$n did not start"
  done
  cat >"$d/appliance.toml" <<EOT
[[port]]
name = "client"
mac = "02:00:00:00:01:01"
addrs = ["10.0.1.1/24"]
device = "net_af_packet0"

[[port]]
name = "servers"
mac = "02:00:00:00:02:01"
addrs = ["10.0.2.1/24"]
device = "net_af_packet1"
EOT
  # rvsd with the file, its exception path (rvs0, rvs1) for the checks, and /metrics.
  KERNEL_IF=1 KEEPALIVED=$CONF METRICS=127.0.0.1:9750
  start_rvsd p0 p1
  KERNEL_IF=0 KEEPALIVED=""
  grep -q 'rvsd run: health checks' "$d/rvsd.log" ||
    die "health: rvsd did not start its checkers: $(grep 'rvsd' "$d/rvsd.log" | head -n 5)"
  # The steady state: every real server up (the checkers' first rounds).
  t=$(now_ms)
  for port in 80 8080 90 92 93 94; do
    wait_dests "$port" "10.0.2.11:$port/1 10.0.2.12:$port/1" "start" 10000 "$t"
  done
  # Every checker's first rounds (a failure and its retry: 3 s) find every server up.
  sleep 3
  for port in 80 8080 90 92 93 94; do
    t=$(now_ms)
    wait_dests "$port" "10.0.2.11:$port/1 10.0.2.12:$port/1" "after 3 s" 500 "$t"
  done
  ! grep -q 'rvsd health: real server .* down' "$d/rvsd.log" ||
    die "health: a real server went down before any was stopped: $(grep 'rvsd health' "$d/rvsd.log")"

  health_tcp 10.0.2.11 10.0.2.12 "$pid1"

  say "health: HTTP_GET (status_code 200, inhibit_on_failure): hs1 answers 500"
  http_clients "both 200" 8080 10
  expect_both hs1 hs2 10
  touch "$d/http-s1.fail"
  t=$(now_ms)
  wait_dests 8080 "10.0.2.11:8080/0 10.0.2.12:8080/1" "hs1 at weight 0" 3000 "$t"
  health_line "hs1 down" "rvsd health: real server 10\.0\.2\.11 \(.*\) down: HTTP_GET http://10\.0\.2\.11:8080/health: status 500"
  http_clients "hs1 answers 500" 8080 10
  expect_only hs2 10
  rm -f "$d/http-s1.fail"
  t=$(now_ms)
  wait_dests 8080 "10.0.2.11:8080/1 10.0.2.12:8080/1" "hs1 back" 2000 "$t"
  http_clients "hs1 back" 8080 10
  expect_both hs1 hs2 10

  say "health: quorum 2: q1 stopped, the sorry server comes in"
  connect "quorum" "$VIP" 90 20
  expect_both q1 q2 20
  kill_server "$pidq1"
  t=$(now_ms)
  wait_dests 90 "10.0.2.12:91/1" "quorum lost" 3000 "$t"
  health_line "quorum lost" "rvsd health: virtual server at .* lost its quorum: the sorry server is in"
  scrape
  expect_series rvs_health_quorum 0 'local_port="90"'
  connect "quorum lost" "$VIP" 90 20
  expect_only sorry 20
  server s1 q1 90
  t=$(now_ms)
  wait_dests 90 "10.0.2.11:90/1 10.0.2.12:90/1" "quorum back" 2000 "$t"
  health_line "quorum back" "rvsd health: virtual server at .* has its quorum again"
  connect "quorum back" "$VIP" 90 20
  expect_both q1 q2 20

  say "health: MISC_CHECK with misc_dynamic: m1's weight from the program's exit status"
  echo 5 >"$d/misc-status"
  t=$(now_ms)
  wait_dests 92 "10.0.2.11:92/3 10.0.2.12:92/1" "exit 5: weight 3" 2000 "$t"
  health_line "m1 weight" "rvsd health: real server 10\.0\.2\.11 \(.*\) weight 3"
  connect "wrr 3:1" "$VIP" 92 40
  if [ "$(count m1)" != 30 ] || [ "$(count m2)" != 10 ]; then
    die "health: wrr 3:1 over 40 connections should give m1=30 m2=10: $OUT"
  fi
  echo 1 >"$d/misc-status"
  t=$(now_ms)
  wait_dests 92 "10.0.2.12:92/1" "exit 1: down" 2000 "$t"
  health_line "m1 down" "rvsd health: real server 10\.0\.2\.11 \(.*\) down: MISC_CHECK /bin/sh: exit status 1"
  connect "m1 down" "$VIP" 92 10
  expect_only m2 10
  echo 2 >"$d/misc-status"
  t=$(now_ms)
  wait_dests 92 "10.0.2.11:92/0 10.0.2.12:92/1" "exit 2: up at weight 0" 2000 "$t"

  # Established conns of a real server whose check fails while it still serves (its
  # MISC_CHECK exits 1): IPVS's rules, per docs/health.md.
  say "health: an established conn, its server at weight 0 (inhibit_on_failure)"
  hold "held conn" 93 e1
  got=$(answers_in 93 1)
  [ "$got" -ge 3 ] || die "health: the held conn to e1 answered $got times in 1 s"
  echo 1 >"$d/held-93"
  t=$(now_ms)
  wait_dests 93 "10.0.2.11:93/0 10.0.2.12:93/1" "e1 at weight 0" 2000 "$t"
  got=$(answers_in 93 1.5)
  [ "$got" -ge 4 ] ||
    die "health: the held conn to e1 (weight 0) answered $got times in 1.5 s: $(tail -n 3 "$d/hold-93.log")"
  echo "  the held conn goes on at weight 0: $got answers in 1.5 s"
  connect "new conns, e1 at weight 0" "$VIP" 93 10
  expect_only e2 10

  say "health: an established conn, its server removed (expire_nodest_conn off)"
  hold "held conn" 94 r1
  echo 1 >"$d/held-94"
  t=$(now_ms)
  wait_dests 94 "10.0.2.12:94/1" "r1 removed" 2000 "$t"
  # Answers already on their way may still arrive; then none.
  sleep 0.3
  got=$(answers_in 94 1.5)
  [ "$got" = 0 ] ||
    die "health: the held conn to the removed r1 answered $got times in 1.5 s (IPVS drops its packets)"
  scrape
  got=$(awk '/^rvs_drops_total\{.*reason="dest_unavailable"/ {s += $NF} END {print s + 0}' "$d/scrape.prom")
  [ "$got" -gt 0 ] || die "health: no dest_unavailable drops while the held conn stalls"
  echo "  the held conn stalls: no answer in 1.5 s, $got of its packets dropped (dest_unavailable)"
  connect "new conns, r1 removed" "$VIP" 94 10
  expect_only r2 10
  echo 0 >"$d/held-94"
  t=$(now_ms)
  wait_dests 94 "10.0.2.11:94/1 10.0.2.12:94/1" "r1 back" 2000 "$t"
  t=$(now_ms)
  got=$(answers 94)
  for _ in $(seq 150); do [ "$(answers 94)" -gt "$got" ] && break; sleep 0.1; done
  [ "$(answers 94)" -gt "$got" ] ||
    die "health: the held conn to r1 did not resume within 15 s of r1's return: $(tail -n 3 "$d/hold-94.log")"
  echo "  the held conn resumes $(secs "$t") s after r1's return (TCP retransmission; the same conn)"
  if grep -q '^closed' "$d/hold-94.log"; then
    die "health: the held conn closed: $(grep '^closed' "$d/hold-94.log")"
  fi

  say "health: SIGHUP re-reads the keepalived file"
  # Without the MISC_CHECK virtual server (92): it goes, the others stay as they are.
  sed '/^virtual_server 10.0.3.100 92 {/,/^}/d' "$CONF" >"$d/next.conf"
  cp "$d/next.conf" "$CONF"
  kill -HUP "$RVSD_PID"
  t=$(now_ms)
  for _ in $(seq 50); do adm -Ln | grep -q "^TCP  $VIP:92 " || break; sleep 0.1; done
  ! adm -Ln | grep -q "^TCP  $VIP:92 " || die "health: $VIP:92 still listed 5 s after SIGHUP"
  health_line "reload" "rvsd health: reload: 5 virtual servers"
  for port in 80 8080 90 94; do
    wait_dests "$port" "10.0.2.11:$port/1 10.0.2.12:$port/1" "after SIGHUP" 500 "$(now_ms)"
  done
  wait_dests 93 "10.0.2.11:93/0 10.0.2.12:93/1" "after SIGHUP (e1 kept down)" 500 "$(now_ms)"
  # A bad file: refused with its line; nothing changes.
  sed 's/^    delay_loop 1$/    delay_loop 1\n    warmup 2/' "$d/next.conf" >"$CONF"
  kill -HUP "$RVSD_PID"
  sleep 0.5
  health_line "bad file" "rvsd: SIGHUP: .*keepalived\.conf:[0-9]+: warmup: .* the running rules and checkers stay"
  wait_dests 93 "10.0.2.11:93/0 10.0.2.12:93/1" "after a bad file" 500 "$(now_ms)"
  say "health: TCP_CHECK: out in $OUT_S s (bound 3.0 s), back in $BACK_S s (bound 2.0 s)"
  METRICS=off
  end_test
}

# The health test with direct routing: the DR topology, rvsd started with
# ci/netns/keepalived-dr.conf; its checkers run in the balancer namespace's kernel and reach
# the servers' own addresses through rvs0 (10.0.0.1) and rvsd's p0; the servers hold the VIP
# on lo. A TCP_CHECK takes a stopped server out and brings it back.
test_health_dr() {
  CUR=health-dr t0=$(now_ms) VIP=10.0.0.100
  local pid1 t
  mkdir -p "$TMP/$CUR"
  say "health-dr: keepalived checkers in rvsd (DR topology, checks through rvs0), VIP $VIP"
  health_file "$here/keepalived-dr.conf"
  dr_topology
  server s1 s1
  pid1=${PIDS[-1]}
  server s2 s2
  KERNEL_IF=1 KEEPALIVED=$CONF METRICS=127.0.0.1:9750
  start_rvsd eth0
  KERNEL_IF=0 KEEPALIVED=""
  t=$(now_ms)
  wait_dests 80 "10.0.0.11:80/1 10.0.0.12:80/1" "start" 10000 "$t"
  sleep 3
  wait_dests 80 "10.0.0.11:80/1 10.0.0.12:80/1" "after 3 s" 500 "$(now_ms)"
  ! grep -q 'rvsd health: real server .* down' "$TMP/$CUR/rvsd.log" ||
    die "health-dr: a real server went down before any was stopped: $(grep 'rvsd health' "$TMP/$CUR/rvsd.log")"
  health_tcp 10.0.0.11 10.0.0.12 "$pid1"
  check_neigh c "$VIP" 02:00:00:00:00:01
  say "health-dr: TCP_CHECK: out in $OUT_S s (bound 3.0 s), back in $BACK_S s (bound 2.0 s)"
  METRICS=off
  end_test
}

# scrape_sum NAME...: each series' sum over its lines in the running rvsd's /metrics (at
# $METRICS, in the balancer namespace), on one line.
scrape_sum() {
  ip netns exec "$(ns lb)" "$PY" -c 'import sys, urllib.request
t = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
print(*(int(sum(float(l.split()[-1]) for l in t.splitlines()
                if l.startswith(n + " ") or l.startswith(n + "{"))) for n in sys.argv[2:]))' \
    "$METRICS" "$@"
}

# flood NAME HPING3-ARGS...: hping3 in namespace $FLOOD_NS until flood_stop (its log has
# the count).
FLOOD_PIDS=()
FLOOD_NS=a
flood() {
  local name=$1
  shift
  ip netns exec "$(ns "$FLOOD_NS")" hping3 -q "$@" >"$TMP/$CUR/flood-$name.log" 2>&1 &
  FLOOD_PIDS+=($!)
  PIDS+=($!)
}
# flood_stop: SIGINT to every flood (hping3 then prints its count), and waits for them.
flood_stop() {
  local p
  for p in "${FLOOD_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${FLOOD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  FLOOD_PIDS=()
}
# flood_sent NAME: packets the flood sent (hping3's statistic line).
flood_sent() {
  awk '/packets transmitted/ {print $1; f = 1} END {if (!f) print 0}' "$TMP/$CUR/flood-$1.log"
}

# bird_run NS NAME: BIRD in the foreground in namespace NS with $TMP/$CUR/bird-NAME.conf
# (bird -p must accept it), its control socket beside it.
bird_run() {
  local d=$TMP/$CUR
  bird -p -c "$d/bird-$2.conf" || die "$CUR: bird -p refuses bird-$2.conf"
  ip netns exec "$(ns "$1")" bird -f -c "$d/bird-$2.conf" -s "$d/bird-$2.ctl" \
    >"$d/bird-$2.log" 2>&1 &
  PIDS+=($!)
}
birdc_in() { timeout 5 ip netns exec "$(ns "$1")" birdc -s "$TMP/$CUR/bird-$2.ctl" "${@:3}"; }
# bgp_state: the appliance's session to the router as "STATE SINCE INFO" (BIRD's columns);
# empty while birdc cannot answer (BIRD's socket not there yet, a timeout): with pipefail a
# failing birdc would otherwise end the script silently in `st=$(bgp_state)` (seen once in
# CI, right after BIRD's start).
bgp_state() {
  { birdc_in lb appliance show protocols upstream 2>/dev/null || true; } |
    awk '$1 == "upstream" {$1 = $2 = $3 = ""; sub(/^ +/, ""); print}'
}

# mgmt LABEL K N: K clients at once from namespace c, N connections each to the management
# listener 10.0.0.1:22, each with a 5 s timeout (the first SYN and Linux's retransmissions
# after 1 s and 3 s); sets MOK and MFAIL.
mgmt() {
  local label=$1 k=$2 n=$3 i p pids=() o t
  t=$(now_ms)
  for i in $(seq "$k"); do
    timeout 120 ip netns exec "$(ns c)" "$PY" "$here/client.py" 10.0.0.1 22 "$n" \
      --timeout 5 --max-fail "$n" >"$TMP/$CUR/mgmt-$i.out" 2>"$TMP/$CUR/mgmt-$i.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  MOK=0 MFAIL=0
  for i in $(seq "$k"); do
    o=$(cat "$TMP/$CUR/mgmt-$i.out")
    MOK=$((MOK + $(OUT=$o count ok))) MFAIL=$((MFAIL + $(OUT=$o count fail)))
  done
  echo "  $label: $MOK of $((k * n)) connects to 10.0.0.1:22 completed, $MFAIL failed ($k at once, $(secs "$t") s)"
  [ "$MFAIL" = 0 ] || sed -n 1,3p "$TMP/$CUR"/mgmt-*.err | indent
}

# The exception path's budget under a flood: rvsd on p0 (10.0.0.1, its kernel interface
# rvs0, [exception] budget_pps and peers), on one segment (bridge br0 in sw) with a router r
# (10.0.0.2, BIRD: a BGP session with BFD to BIRD on rvs0, which announces the VIP and
# learns a default route), a client c (10.0.0.3: management connects to a listener on
# 10.0.0.1:22, and clients of the VIP), an attacker a (10.0.0.4, hping3) and a DR server s1
# (10.0.0.11, VIP 10.0.0.100 on lo). The attacker floods 10.0.0.1 from random sources:
# SYNs to port 22, UDP to BFD's port 3784 and ICMP echo, at several times the budget. While
# it does, the BGP session must stay Established without a flap (BFD would take it down
# within 2 s of its packets missing), at least 95 % of the management connects must
# complete, and the VIP must serve every connection.
test_exception_flood() {
  CUR=exception-flood t0=$(now_ms) VIP=10.0.0.100
  local d=$TMP/$CUR n budget=${RVS_NETNS_BUDGET:-400} secs=${RVS_NETNS_FLOOD_SECONDS:-12}
  local peers=${RVS_NETNS_PEERS-10.0.0.2} syn_us=${RVS_NETNS_FLOOD_US:-400} a up=0
  mkdir -p "$d"
  if ! command -v bird >/dev/null || ! command -v hping3 >/dev/null; then
    die "$CUR: bird (bird2) and hping3 are required (ci/setup.sh installs them)"
  fi
  say "$CUR: a flood at the appliance's address; BGP+BFD, management and a VIP meanwhile (budget $budget/s, peers '$peers')"
  for n in sw c lb r a s1; do mkns $n; done
  ip -n "$(ns sw)" link add br0 type bridge
  ip -n "$(ns sw)" link set br0 up
  for n in c lb r a s1; do
    veth sw "to-$n" "$n" eth0
    ip -n "$(ns sw)" link set "to-$n" master br0
  done
  rvsd_port eth0 02:00:00:00:00:01
  ip -n "$(ns r)" addr add 10.0.0.2/24 dev eth0
  ip -n "$(ns c)" addr add 10.0.0.3/24 dev eth0
  ip -n "$(ns a)" addr add 10.0.0.4/24 dev eth0
  ip -n "$(ns s1)" addr add 10.0.0.11/24 dev eth0
  ip -n "$(ns s1)" addr add "$VIP/32" dev lo
  nsx s1 sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  for n in c r s1; do endpoint_if $n eth0; done
  local peer_list=""
  [ -z "$peers" ] || peer_list="\"${peers//,/\", \"}\""
  printf '%s\n' '[[port]]' 'name = "p0"' 'mac = "02:00:00:00:00:01"' 'addrs = ["10.0.0.1/24"]' \
    'device = "net_af_packet0"' '' '[exception]' "budget_pps = $budget" \
    "peers = [$peer_list]" >"$d/appliance.toml"
  KERNEL_IF=1
  start_rvsd eth0
  KERNEL_IF=0
  for _ in $(seq 100); do
    a=$(ip -n "$(ns lb)" -o -4 addr show dev rvs0 2>/dev/null || true)
    if grep -q ' 10\.0\.0\.1/24 ' <<<"$a"; then up=1; break; fi
    sleep 0.1
  done
  [ "$up" = 1 ] || die "$CUR: rvs0 did not come up with 10.0.0.1/24 within 10 s"
  # BIRD on both ends: BGP (keepalive 3 s, hold 9 s) with BFD (200 ms x 10: a session down
  # within 2 s of its packets missing takes BGP down with it).
  local bfd='protocol bfd { interface "IF" { interval 200 ms; multiplier 10; }; }'
  printf '%s\n' 'log stderr all;' 'router id 10.0.0.1;' 'timeformat protocol iso long;' \
    'protocol device { }' "${bfd/IF/rvs0}" \
    'protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }' \
    "protocol static vips { ipv4; route $VIP/32 blackhole; }" \
    'protocol bgp upstream {' '  local 10.0.0.1 as 65001;' '  neighbor 10.0.0.2 as 65000;' \
    '  hold time 9;' '  keepalive time 3;' '  bfd on;' \
    '  ipv4 { import all; export where proto = "vips"; next hop self; };' '}' \
    >"$d/bird-appliance.conf"
  printf '%s\n' 'log stderr all;' 'router id 10.0.0.2;' 'timeformat protocol iso long;' \
    'protocol device { }' "${bfd/IF/eth0}" \
    'protocol static defaults { ipv4; route 0.0.0.0/0 blackhole; }' \
    'protocol bgp appliance {' '  local 10.0.0.2 as 65000;' '  neighbor 10.0.0.1 as 65001;' \
    '  hold time 9;' '  keepalive time 3;' '  bfd on;' \
    '  ipv4 { import all; export where proto = "defaults"; };' '}' >"$d/bird-router.conf"
  bird_run r router
  bird_run lb appliance
  local st="" t
  t=$(now_ms)
  for _ in $(seq 300); do
    st=$(bgp_state)
    [[ "$st" == *Established* ]] && break
    sleep 0.1
  done
  [[ "$st" == *Established* ]] ||
    die "$CUR: BGP not Established within 30 s: '$st' ($(tail -n 3 "$d/bird-appliance.log" | tr '\n' ' '))"
  echo "  BGP Established in $(secs "$t") s: $st"
  # What the session carries: the router learned the VIP, the appliance's kernel a default.
  for _ in $(seq 100); do
    birdc_in r router show route "$VIP/32" 2>/dev/null | grep -q "$VIP/32" &&
      ip -n "$(ns lb)" route show default | grep -q 'via 10.0.0.2 dev rvs0 proto bird' && break
    sleep 0.1
  done
  birdc_in r router show route "$VIP/32" | grep -q "$VIP/32" ||
    die "$CUR: the router did not learn $VIP/32"
  ip -n "$(ns lb)" route show default | grep -q 'via 10.0.0.2 dev rvs0 proto bird' ||
    die "$CUR: the appliance's kernel did not get the default route from BGP"
  echo "  the router learned $VIP/32; the appliance's kernel: $(ip -n "$(ns lb)" route show default)"
  for _ in $(seq 50); do
    birdc_in lb appliance show bfd sessions 2>/dev/null | grep -q ' Up ' && break
    sleep 0.1
  done
  birdc_in lb appliance show bfd sessions | grep -q ' Up ' ||
    die "$CUR: the BFD session is not up: $(birdc_in lb appliance show bfd sessions)"
  local since
  since=$(bgp_state)
  server lb mgmt 22 10.0.0.1
  server s1 s1
  rule -A -t "$VIP:80" -s rr
  rule -a -t "$VIP:80" -r 10.0.0.11:80 -g
  clients "VIP, before the flood" 10
  mgmt "management, before the flood" 4 5
  [ "$MFAIL" = 0 ] || die "$CUR: management connects failed without a flood"

  say "$CUR: flooding 10.0.0.1 from random sources for $secs s: SYN to 22, UDP to 3784, ICMP echo"
  (while :; do
    echo "$(now_ms) $(bgp_state)"
    sleep 0.5
  done) >"$d/bgp-states" 2>/dev/null &
  local mon=$!
  PIDS+=("$mon")
  local rx0 rx1
  rx0=$(nsx sw cat /sys/class/net/to-lb/statistics/tx_packets)
  t=$(now_ms)
  flood syn -S -p 22 --rand-source -i "u$syn_us" 10.0.0.1
  flood udp --udp -p 3784 --rand-source -i u1000 10.0.0.1
  flood icmp --icmp --rand-source -i u1000 10.0.0.1
  sleep 2
  mgmt "management, flooded" 8 5
  local mok=$MOK mfail=$MFAIL
  clients "VIP, flooded" 20
  local left=$((secs * 1000 - ($(now_ms) - t)))
  [ "$left" -le 0 ] || sleep "$((left / 1000)).$((left % 1000 / 100))"
  flood_stop
  local fl_ms=$(($(now_ms) - t))
  rx1=$(nsx sw cat /sys/class/net/to-lb/statistics/tx_packets)
  sleep 1
  kill "$mon" 2>/dev/null || true
  local after bad syn udp icmp
  after=$(bgp_state)
  bad=$(awk '$0 !~ /Established/' "$d/bgp-states" | head -n 3)
  syn=$(flood_sent syn) udp=$(flood_sent udp) icmp=$(flood_sent icmp)
  stop_rvsd
  local cls passed="" dropped="" k echo_replies
  k=$(metric rvs_kernel_frames_total)
  for cls in neigh peer syn syn_retry tcp other; do
    passed+=" $cls=$(metric rvs_exception_passed_total "class=\"$cls\"")"
  done
  for cls in syn syn_retry tcp other; do
    dropped+=" $cls=$(metric rvs_path_drops_total "reason=\"exception_$cls\"")"
  done
  echo_replies=$(metric rvs_echo_replies_total)
  say "$CUR: figures"
  echo "  flood: $syn SYN + $udp UDP + $icmp echo in $((fl_ms / 1000)).$((fl_ms % 1000 / 100)) s" \
    "= $(((syn + udp + icmp) * 1000 / fl_ms))/s ($(((rx1 - rx0) * 1000 / fl_ms)) frames/s into rvsd's port);" \
    "SYN + UDP alone $(((syn + udp) * 1000 / fl_ms / budget)) x the budget of $budget/s (echo is answered by rvsd: $echo_replies replies)"
  echo "  to the kernel: $k frames; passed by class:$passed; over the budget, dropped:$dropped"
  echo "  BGP: before '$since', after '$after'; $(wc -l <"$d/bgp-states") samples during, $(echo -n "$bad" | grep -c . || true) not Established"
  echo "  management: $mok of $((mok + mfail)) connects completed ($((mok * 100 / (mok + mfail))) %)"
  [ -z "$bad" ] || die "$CUR: BGP left Established during the flood: $bad"
  [ "$after" = "$since" ] || die "$CUR: the BGP session flapped: '$since' before, '$after' after"
  [ $((mok * 100)) -ge $(((mok + mfail) * 95)) ] ||
    die "$CUR: only $mok of $((mok + mfail)) management connects completed (want 95 %)"
  [ "$(metric rvs_path_drops_total 'reason="exception_syn"')" -gt 0 ] ||
    die "$CUR: no SYN was over the budget: the flood did not exceed it"
  [ -z "$peers" ] || [ "$(metric rvs_exception_passed_total 'class="peer"')" -gt 0 ] ||
    die "$CUR: nothing passed as the peer's"
  # For ci/test.sh's closing summary.
  [ -z "${RVS_FIGURES:-}" ] || echo "netns $CUR: flood $(((syn + udp + icmp) * 1000 / fl_ms))/s at the" \
    "appliance's address ($(((syn + udp) * 1000 / fl_ms / budget)) x the budget of $budget/s);" \
    "BGP Established throughout ($(wc -l <"$d/bgp-states") samples); management $mok of" \
    "$((mok + mfail)) connects ($((mok * 100 / (mok + mfail))) %)" >>"$RVS_FIGURES"
  end_test
}

# Floods toward next hops that never answer: the NAT topology with a second VIP whose dests
# (10.0.2.21, 10.0.2.22) nobody answers ARP for. A SYN flood at it from random sources for
# 10 s: rvsd holds at most 3 frames per dead next hop (rvs_neigh_held, scraped during the
# flood), solicits each about once a second (3 tries, then it fails and the next frame
# starts over, as Linux does), counts the rest (neigh_queue_full, neigh_failed), its mbufs
# in use come back to their idle count, and the VIP with live dests serves every connection
# meanwhile.
test_unresolved() {
  CUR=unresolved t0=$(now_ms) VIP=10.0.3.100
  local d=$TMP/$CUR vip2=10.0.3.102 secs=10
  mkdir -p "$d"
  command -v hping3 >/dev/null || die "$CUR: hping3 is required (ci/setup.sh installs it)"
  say "$CUR: a flood at $vip2, whose NAT dests never answer ARP; $VIP meanwhile"
  nat_topology
  ip -n "$(ns c)" route add "$vip2/32" via 10.0.1.1
  printf '%s\n' '[[port]]' 'name = "client"' 'mac = "02:00:00:00:01:01"' \
    'addrs = ["10.0.1.1/24"]' 'device = "net_af_packet0"' '' '[[port]]' 'name = "servers"' \
    'mac = "02:00:00:00:02:01"' 'addrs = ["10.0.2.1/24"]' 'device = "net_af_packet1"' \
    >"$d/appliance.toml"
  METRICS=127.0.0.1:9750
  start_rvsd p0 p1
  server s1 s1
  server s2 s2
  rule -A -t "$VIP:80" -s rr
  rule -a -t "$VIP:80" -r 10.0.2.11:80 -m
  rule -a -t "$VIP:80" -r 10.0.2.12:80 -m
  rule -A -t "$vip2:80" -s rr
  rule -a -t "$vip2:80" -r 10.0.2.21:80 -m
  rule -a -t "$vip2:80" -r 10.0.2.22:80 -m
  clients "$VIP, before the flood" 20
  sleep 1
  local idle sol0 t max_held=0 max_use=0 h u
  idle=$(scrape_sum rvs_mempool_mbufs_in_use)
  sol0=$(scrape_sum rvs_solicits_total)
  t=$(now_ms)
  # From the client's namespace, random sources.
  FLOOD_NS=c
  flood syn -S -p 80 --rand-source -i u500 "$vip2"
  FLOOD_NS=a
  (for _ in $(seq $((secs * 2))); do
    scrape_sum rvs_neigh_held rvs_mempool_mbufs_in_use
    sleep 0.5
  done) >"$d/gauges" 2>/dev/null &
  local mon=$!
  PIDS+=("$mon")
  sleep 1
  clients "$VIP, flooded" 30
  wait "$mon" 2>/dev/null || true
  flood_stop
  local fl_ms=$(($(now_ms) - t)) sent sol
  sent=$(flood_sent syn)
  sol=$(($(scrape_sum rvs_solicits_total) - sol0))
  while read -r h u; do
    [ "${h:-0}" -le "$max_held" ] || max_held=$h
    [ "${u:-0}" -le "$max_use" ] || max_use=$u
  done <"$d/gauges"
  # The dead entries fail within 3 s of the last frame; their held frames go back.
  sleep 4
  local after held_after
  after=$(scrape_sum rvs_mempool_mbufs_in_use)
  held_after=$(scrape_sum rvs_neigh_held)
  METRICS=off
  stop_rvsd
  local qf failed
  qf=$(metric rvs_path_drops_total 'reason="neigh_queue_full"')
  failed=$(metric rvs_path_drops_total 'reason="neigh_failed"')
  say "$CUR: figures"
  echo "  flood: $sent SYNs to $vip2 in $((fl_ms / 1000)).$((fl_ms % 1000 / 100)) s ($((sent * 1000 / fl_ms))/s)"
  echo "  held: at most $max_held frames during the flood ($(wc -l <"$d/gauges") samples), $held_after after"
  echo "  solicitations during the flood: $sol (2 dead next hops, $((fl_ms / 1000)) s)"
  echo "  dropped: $qf over a hold queue (neigh_queue_full), $failed with a failed entry (neigh_failed)"
  echo "  mbufs in use: $idle idle, at most $max_use during, $after after"
  [ "$(wc -l <"$d/gauges")" -ge "$secs" ] || die "$CUR: too few scrapes of /metrics during the flood"
  [ "$max_held" -le 6 ] || die "$CUR: $max_held frames held for 2 dead next hops (want at most 3 each)"
  [ "$held_after" = 0 ] || die "$CUR: $held_after frames still held 4 s after the flood"
  # About one a second per dead next hop (3 in each 3 s cycle), plus the live ones' few.
  [ "$sol" -le $((2 * (fl_ms / 1000 + 2) + 6)) ] ||
    die "$CUR: $sol solicitations in $((fl_ms / 1000)) s for 2 dead next hops"
  [ "$sol" -ge $((2 * (fl_ms / 1000 - 2))) ] || die "$CUR: only $sol solicitations: were the dests solicited?"
  if [ "$qf" = 0 ] || [ "$failed" = 0 ]; then
    die "$CUR: the held frames' drops were not counted"
  fi
  [ "$after" -le $((idle + 64)) ] || die "$CUR: $after mbufs in use after the flood, $idle before"
  end_test
}

tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(dr nat exception health health-dr exception-flood unresolved)
for t in "${tests[@]}"; do
  case $t in
    dr) test_dr ;;
    nat) test_nat ;;
    exception) test_exception ;;
    health) test_health ;;
    health-dr) test_health_dr ;;
    exception-flood) test_exception_flood ;;
    unresolved) test_unresolved ;;
    *) die "unknown test $t (dr, nat, exception, health, health-dr, exception-flood, unresolved)" ;;
  esac
done
say "all passed: ${tests[*]} ($(secs "$t_start") s)"

#!/usr/bin/env bash
# A benchmark, not a test: in ONE run, on the same virtual devices and the same cores,
# `rvsd run`, `dpdk-testpmd` (io and csum forwarding) and DPDK's l3fwd example in
# exact-match mode (l3fwd-em, built by ci/bench/l3fwd.sh) read a net_pcap port replaying a
# capture forever (infinite_rx=1) and send to net_null (no-rx=1). Two mixes of 54-byte TCP
# frames: 1M established flows to a DR service, and a SYN flood from random sources.
# l3fwd-em gets one rule per flow of the established mix (ci/bench/l3fwd-rules.py reads
# them from the capture), so it does one 1M-entry hash lookup per frame: DPDK's own
# reference for stateless exact-match forwarding. The flood's random sources miss those
# rules, and l3fwd sends a miss back out of its input port (net_pcap, which drops on tx):
# on that mix its figure is those misses, none leaves by net_null.
# Prints Mpps of each (the best 2 s stats period of each, as testpmd reports them), the
# ratios rvs/testpmd-io, rvs/testpmd-csum and rvs/l3fwd-em, and whether the aims are met:
# on the established mix rvs >= 1.25 x l3fwd-em and >= 0.9 x testpmd csum, and rvs's SYN
# flood figure >= 0.8 x its established one.
# Usage: ci/bench.sh [flows (1000000)] [seconds per run (12)]
# RVS_BENCH_HUGE=1 runs everything on 2 MiB hugepages instead of --no-huge (as root: it
# reserves them and mounts hugetlbfs on /dev/hugepages if needed, and gives them back after).
# RVS_BENCH_ROUNDS=N runs the four peers N times in turn on each mix and keeps each one's
# best period over the rounds: on a shared machine whose load comes and goes, every peer
# gets N chances at a quiet stretch.
# RVS_BIN_DIR=DIR runs DIR/rvsd instead of building this tree's (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/setup.sh
. ci/setup.sh
FLOWS=${1:-1000000}
SECS=${2:-12}
ROUNDS=${RVS_BENCH_ROUNDS:-1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench: RVS_BENCH_ROUNDS=$ROUNDS: want a count >= 1" >&2; exit 1; }
if [ -n "${RVS_BIN_DIR:-}" ]; then
  RVSD=$RVS_BIN_DIR/rvsd
  [ -x "$RVSD" ] || { echo "bench: RVS_BIN_DIR=$RVS_BIN_DIR has no executable rvsd" >&2; exit 1; }
else
  cargo build --release --locked -q -p rvs-control --bin rvsd
  RVSD=${CARGO_TARGET_DIR:-target}/release/rvsd
fi
L3FWD=$(ci/bench/l3fwd.sh)
W=$(mktemp -d)
cleanup() {
  # A peer still running (the script stopped while it ran) ends first.
  if [ -f "$W/l3fwd.pid" ]; then kill -TERM "$(cat "$W/l3fwd.pid")" 2>/dev/null || true; sleep 1; fi
  rm -rf "$W"; rm -rf /var/run/dpdk/rvs-bench-*
  # Page files a killed peer left (with --huge-unlink a clean exit leaves none): each holds a
  # hugepage until it is removed.
  rm -f /dev/hugepages/rvs-bench-*
}
trap cleanup EXIT
MBUFS=$((FLOWS + FLOWS / 5 + 16384))
MEM=$(( (MBUFS * 3 / 1024) + 2048 ))   # MB: ~2.5 KiB per mbuf + the conn tables

MEMOPT="--no-huge -m $MEM"
if [ "${RVS_BENCH_HUGE:-0}" = 1 ]; then
  HP_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
  echo $(( MEM / 2 + 64 )) > /proc/sys/vm/nr_hugepages
  mkdir -p /dev/hugepages
  mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
  trap 'cleanup; echo "$HP_BEFORE" > /proc/sys/vm/nr_hugepages' EXIT
  # --huge-unlink: the page files go when the peer exits (else they keep their pages).
  MEMOPT="-m $MEM --huge-dir /dev/hugepages --huge-unlink"
  echo "hugepages: $(awk '/HugePages_Total/ {print $2}' /proc/meminfo) x 2 MiB"
fi

eal() { # $1 = mix file, $2 = prefix
  echo "-l 0-1 $MEMOPT --no-pci --no-telemetry --file-prefix rvs-bench-$2 --log-level lib.eal:error \
--vdev net_pcap0,rx_pcap=$1,infinite_rx=1 --vdev net_null0,no-rx=1"
}

# testpmd needs explicit descriptor counts here: net_pcap reports none, and with testpmd's
# default of 0 it forwards nothing.
testpmd() { # $1 = mix, $2 = io|csum -> Mpps forwarded (net_null Tx-pps, best period)
  local log="$W/testpmd-$2.log"
  # shellcheck disable=SC2046
  (sleep "$SECS"; echo) | timeout $((SECS + 30)) dpdk-testpmd $(eal "$1" "tp-$2") -- \
    --total-num-mbufs="$MBUFS" --forward-mode="$2" --stats-period 2 --rxd=1024 --txd=1024 >"$log" 2>&1 || true
  # The best stats period: the capture loads first (infinite_rx), then forwarding is steady.
  awk '/Tx-pps:/ {v=$2; if (v > m) m = v} END {printf "%.3f", m/1e6}' "$log"
}

rvs() { # $1 = mix -> Mpps out (best 2 s stats period, as testpmd's; the average since the
         # first frame, which includes the first pass creating the conns, goes to $W/rvs-avg)
  local log="$W/rvs.log"
  # shellcheck disable=SC2046
  "$RVSD" run --config ci/bench/appliance.toml --rules ci/bench/rules.ipvsadm \
    --max-ms $((SECS * 1000)) --stats-period 2 --mbufs "$MBUFS" --no-exception -- $(eal "$1" rvs) >"$log" 2>&1 || { cat "$log" >&2; return 1; }
  sed -n 's/.*(\([0-9.]*\) Mpps out.*/\1/p' "$log" >"$W/rvs-avg"
  # A run shorter than one period has none: its average stands in.
  awk -v avg="$(cat "$W/rvs-avg")" '/ s: rx / {v=$9; if (v > m) m = v} END {printf "%.3f", (m > 0 ? m : avg)}' "$log"
}

# l3fwd's ports: net_pcap0 is port 0 (in), net_null0 port 1 (out), in the order of eal()'s
# --vdev arguments.
L3FWD_OUT=1
l3fwd_em() { # $1 = mix -> "HITS ALL": Mpps out of net_null (rule hits) and out of both
             # ports (misses go back out of net_pcap), each its best 2 s period
  local log="$W/l3fwd.log" pid i
  : >"$log"   # empty before it starts: the wait below reads it (an earlier round's too)
  # shellcheck disable=SC2046
  "$L3FWD" $(eal "$1" l3fwd) -- -p 0x3 --config="(0,0,1)" -E --parse-ptype \
    --rule_ipv4="$W/rules-v4" --rule_ipv6="$W/rules-v6" --mbufs "$MBUFS" >"$log" 2>&1 &
  pid=$!
  echo "$pid" >"$W/l3fwd.pid"
  # Its setup (every rule into its hash, the capture into mbufs) takes seconds on a busy
  # machine: it forwards for SECS seconds from its first rates line (up to 5 min to get there).
  for ((i = 0; i < 600; i++)); do
    grep -qs '^rates:' "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if grep -qs '^rates:' "$log"; then sleep "$SECS"; fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$W/l3fwd.pid"
  if ! grep -qs '^rates:' "$log"; then
    echo "bench: l3fwd-em printed no rates; the end of its log:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
  # Lines "rates: port P Rx-pps: R Tx-pps: T ...", every enabled port once a period, port 0 first.
  awk -v out="$L3FWD_OUT" '
    function period() { if (all > ma) ma = all; if (hit > mh) mh = hit; all = 0; hit = 0 }
    /^rates: port / { if ($3 == 0 && seen) period(); seen = 1; all += $7; if ($3 == out) hit = $7 }
    END { period(); printf "%.3f %.3f", mh / 1e6, ma / 1e6 }' "$log"
}

best() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a + 0 > b + 0 ? a : b) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
aim() { # $1 = what, $2 = ratio, $3 = the least it should be
  awk -v w="$1" -v r="$2" -v m="$3" 'BEGIN { printf "  %-40s %5s  %s\n", w, r,
    (r == "n/a" ? "n/a" : (r + 0 >= m ? "met" : "NOT met")) }'
}

for kind in established synflood; do
  "$RVSD" lab-pcap --kind "$kind" --flows "$FLOWS" --out "$W/$kind.pcap"
done
# One l3fwd rule per flow of the established mix, read from the capture itself; l3fwd wants
# an IPv6 rules file too (one rule no frame matches).
python3 ci/bench/l3fwd-rules.py "$W/established.pcap" "$L3FWD_OUT" >"$W/rules-v4"
echo "R2001:db8::1 2001:db8::2 9 9 17 $L3FWD_OUT" >"$W/rules-v6"
echo "load before: $(uptime)"

declare -A RVS CSUM L3
for kind in established synflood; do
  mix="$W/$kind.pcap"
  io=0 csum=0 l3hit=0 l3all=0 r=0 avgs=""
  for ((round = 1; round <= ROUNDS; round++)); do
    v=$(testpmd "$mix" io); io=$(best "$io" "$v")
    v=$(testpmd "$mix" csum); csum=$(best "$csum" "$v")
    v=$(l3fwd_em "$mix"); read -r h a <<<"$v"
    l3hit=$(best "$l3hit" "$h"); l3all=$(best "$l3all" "$a")
    v=$(rvs "$mix"); r=$(best "$r" "$v")
    avgs="$avgs${avgs:+ / }$(cat "$W/rvs-avg")"
  done
  # On the established mix every frame hits a rule (net_null's count); on the flood none
  # does, and l3fwd's figure is its misses, sent back out of the input port.
  if [ "$kind" = established ]; then l3=$l3hit; l3what="rule hits, out of net_null"; else l3=$l3all; l3what="misses, back out of net_pcap; $l3hit Mpps hit a rule"; fi
  RVS[$kind]=$r; CSUM[$kind]=$csum; L3[$kind]=$l3
  printf '%-12s rvs %7s Mpps | testpmd io %7s Mpps | testpmd csum %7s Mpps | l3fwd-em %7s Mpps\n' \
    "$kind" "$r" "$io" "$csum" "$l3"
  printf '  rvs/io %s | rvs/csum %s | rvs/l3fwd-em %s\n' \
    "$(ratio "$r" "$io")" "$(ratio "$r" "$csum")" "$(ratio "$r" "$l3")"
  echo "  (each the best 2 s period; rvs's average since its first frame: $avgs Mpps; l3fwd-em: $l3what)"
  if [ "$kind" = established ] && awk -v h="$l3hit" -v a="$l3all" 'BEGIN { exit !(h < 0.99 * a) }'; then
    echo "  l3fwd-em: only $l3hit of $l3all Mpps hit a rule: the rules do not match the capture" >&2
  fi
  # Per frame: what each costs, and what csum, l3fwd-em and rvs add to io's receive-and-send.
  awk -v r="$r" -v i="$io" -v c="$csum" -v l="$l3" 'BEGIN { if (r > 0 && i > 0 && c > 0 && l > 0)
    printf "  per frame: io %.1f ns, csum %.1f ns (+%.1f), l3fwd-em %.1f ns (+%.1f), rvs %.1f ns (+%.1f); 0.8 x io leaves rvs %.1f ns of its own\n",
      1e3 / i, 1e3 / c, 1e3 / c - 1e3 / i, 1e3 / l, 1e3 / l - 1e3 / i, 1e3 / r, 1e3 / r - 1e3 / i, 1e3 / (0.8 * i) - 1e3 / i }'
  if awk -v b="$io" 'BEGIN { exit !(b == 0) }'; then
    echo "  testpmd forwarded nothing; its log: $W/testpmd-io.log" >&2
  fi
done
echo "aims (ratios of figures from this run, $ROUNDS round(s)):"
aim "established: rvs / l3fwd-em >= 1.25" "$(ratio "${RVS[established]}" "${L3[established]}")" 1.25
aim "established: rvs / testpmd csum >= 0.9" "$(ratio "${RVS[established]}" "${CSUM[established]}")" 0.9
aim "rvs: SYN flood / established >= 0.8" "$(ratio "${RVS[synflood]}" "${RVS[established]}")" 0.8
echo "load after: $(uptime)"

#!/usr/bin/env bash
# A benchmark, not a test: in ONE run, on the same virtual devices and the same cores,
# `rvsd run` and `dpdk-testpmd` (io and csum forwarding) read a net_pcap port replaying a
# capture forever (infinite_rx=1) and send to net_null (no-rx=1). Two mixes of 54-byte TCP
# frames: 1M established flows to a DR service, and a SYN flood from random sources.
# Prints Mpps of each (the best 2 s stats period of each, as testpmd reports them) and the
# ratios rvs/testpmd-io and rvs/testpmd-csum.
# Usage: ci/bench.sh [flows (1000000)] [seconds per run (12)]
# RVS_BENCH_HUGE=1 runs everything on 2 MiB hugepages instead of --no-huge (as root: it
# reserves them and mounts hugetlbfs on /dev/hugepages if needed, and gives them back after).
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/setup.sh
FLOWS=${1:-1000000}
SECS=${2:-12}
cargo build --release --locked -q -p rvs-control --bin rvsd
W=$(mktemp -d)
trap 'rm -rf "$W"; rm -rf /var/run/dpdk/rvs-bench-*' EXIT
MBUFS=$((FLOWS + FLOWS / 5 + 16384))
MEM=$(( (MBUFS * 3 / 1024) + 2048 ))   # MB: ~2.5 KiB per mbuf + the conn tables

MEMOPT="--no-huge -m $MEM"
if [ "${RVS_BENCH_HUGE:-0}" = 1 ]; then
  HP_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
  echo $(( MEM / 2 + 64 )) > /proc/sys/vm/nr_hugepages
  mkdir -p /dev/hugepages
  mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
  trap 'rm -rf "$W"; rm -rf /var/run/dpdk/rvs-bench-*; echo "$HP_BEFORE" > /proc/sys/vm/nr_hugepages' EXIT
  MEMOPT="-m $MEM --huge-dir /dev/hugepages"
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
  ./target/release/rvsd run --config ci/bench/appliance.toml --rules ci/bench/rules.ipvsadm \
    --max-ms $((SECS * 1000)) --stats-period 2 --mbufs "$MBUFS" --no-exception -- $(eal "$1" rvs) >"$log" 2>&1 || { cat "$log" >&2; return 1; }
  sed -n 's/.*(\([0-9.]*\) Mpps out.*/\1/p' "$log" >"$W/rvs-avg"
  # A run shorter than one period has none: its average stands in.
  awk -v avg="$(cat "$W/rvs-avg")" '/ s: rx / {v=$9; if (v > m) m = v} END {printf "%.3f", (m > 0 ? m : avg)}' "$log"
}

for kind in established synflood; do
  mix="$W/$kind.pcap"
  ./target/release/rvsd lab-pcap --kind "$kind" --flows "$FLOWS" --out "$mix"
  io=$(testpmd "$mix" io)
  csum=$(testpmd "$mix" csum)
  r=$(rvs "$mix")
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
  printf '%-12s rvs %7s Mpps | testpmd io %7s Mpps | testpmd csum %7s Mpps | rvs/io %s | rvs/csum %s\n' \
    "$kind" "$r" "$io" "$csum" "$(ratio "$r" "$io")" "$(ratio "$r" "$csum")"
  echo "  (each the best 2 s period; rvs's average since its first frame: $(cat "$W/rvs-avg") Mpps)"
  # Per frame: what each costs, and what rvs and csum add to io's receive-and-send.
  awk -v r="$r" -v i="$io" -v c="$csum" 'BEGIN { if (r > 0 && i > 0 && c > 0)
    printf "  per frame: io %.1f ns, csum %.1f ns (+%.1f), rvs %.1f ns (+%.1f); 0.8 x io leaves rvs %.1f ns of its own\n",
      1e3 / i, 1e3 / c, 1e3 / c - 1e3 / i, 1e3 / r, 1e3 / r - 1e3 / i, 1e3 / (0.8 * i) - 1e3 / i }'
  if awk -v b="$io" 'BEGIN { exit !(b == 0) }'; then
    echo "  testpmd forwarded nothing; its log: $W/testpmd-io.log" >&2
  fi
done

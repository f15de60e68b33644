#!/usr/bin/env bash
# Load generator: sends a generated traffic mix at an rvs appliance (or any DUT) as fast as
# a core can, with dpdk-testpmd replaying the capture forever out of the port you name.
#
#   pktgen-scripts/replay.sh [--kind established|synflood] [--flows N] [--vip IP:PORT]
#       [--dst-mac MAC] [--src-mac MAC] [--seconds S] -- <EAL args naming ONE output port>
#
# The mix comes from `rvsd lab-pcap` (ACKs of N distinct flows, or SYNs from N random
# sources); --dst-mac is the appliance port's MAC, --vip the service under test (with
# sloppy_tcp the appliance picks the ACK flows up mid-stream). The EAL arguments name the
# output port: `-a 0000:3b:00.0` (a NIC bound to vfio-pci) or a vdev such as
# `--vdev net_af_packet0,iface=veth0`, plus cores (`-l 0-1`) and memory. The capture is read
# by a net_pcap port, testpmd forwards it (io mode) to your port, and at the end prints the
# port statistics; frames your port receives are dropped. Needs root and DPDK's testpmd
# (ci/setup.sh installs both the tools and rvsd's build dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."

kind=established flows=1000000 vip=10.0.0.100:80 dst_mac=02:00:00:00:00:01
src_mac=02:00:00:00:00:c1 seconds=10
while [ $# -gt 0 ]; do
  case "$1" in
    --kind) kind=$2; shift 2 ;;
    --flows) flows=$2; shift 2 ;;
    --vip) vip=$2; shift 2 ;;
    --dst-mac) dst_mac=$2; shift 2 ;;
    --src-mac) src_mac=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "replay.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "replay.sh: give the EAL arguments of the output port after --" >&2
  exit 2
fi
case "$seconds" in ''|*[!0-9]*) echo "replay.sh: --seconds $seconds: want whole seconds" >&2; exit 2 ;; esac

cargo build --release --locked -q -p rvs-control --bin rvsd
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
./target/release/rvsd lab-pcap --kind "$kind" --flows "$flows" --vip "$vip" \
  --dst-mac "$dst_mac" --src-mac "$src_mac" --out "$dir/mix.pcap"
# One mbuf per frame of the capture (net_pcap keeps it in memory) plus room to forward.
mbufs=$((flows + 65536))
echo "replay.sh: $flows $kind frames to $vip via $dst_mac for ${seconds}s"
log="$dir/testpmd.log"
# testpmd with --stats-period runs until a signal; SIGINT makes it print its totals and stop.
# The capture loads before forwarding starts, so the run gets 30 s more than asked for that.
rc=0
timeout --signal=INT $((seconds + 30)) dpdk-testpmd "$@" \
  --vdev "net_pcap_rvsmix,rx_pcap=$dir/mix.pcap,infinite_rx=1" -- --forward-mode=io \
  --total-num-mbufs="$mbufs" --rxd=1024 --txd=1024 --stats-period 1 </dev/null >"$log" 2>&1 &
pid=$!
# Stop `seconds` after forwarding starts (the first stats period), not after the load.
for _ in $(seq 1 300); do
  grep -q 'Tx-pps' "$log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
sleep "$seconds"
kill -INT "$pid" 2>/dev/null || true
wait "$pid" || rc=$?
if ! grep -q 'Accumulated forward statistics' "$log"; then
  cat "$log" >&2
  echo "replay.sh: testpmd stopped without its totals (exit $rc)" >&2
  exit 1
fi
# The totals testpmd prints at the end, and the best one-second transmit rate of any port.
awk '/Forward statistics for port/ {p = 1} p {print} p && /^ *[+]+ *$/ {exit}' "$log"
awk '/Tx-pps:/ {if ($2 > best) best = $2} END {printf "replay.sh: best second %.3f Mpps sent\n", best / 1e6}' "$log"

#!/usr/bin/env bash
# The test command (README.md): installs what it needs, builds, runs every test.
# Safe to run on a fresh machine as root, and again on a set-up one.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=ci/setup.sh
. ci/setup.sh
# The live flood runs (ci/e2e.sh, ci/netns.sh exception-flood) leave their figures here; they
# are printed last.
RVS_FIGURES=$(mktemp --suffix=.rvs-figures)
export RVS_FIGURES

echo "== fmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== test"
cargo test --workspace --locked
echo "== rvsadm builds without DPDK (the control crate's dpdk feature off)"
cargo build --locked -q -p rvs-control --no-default-features --bin rvsadm
echo "== benches compile"
cargo bench --workspace --locked --no-run
echo "== simulate synflood (smoke: the seed's numbers, short run)"
cargo run --release --locked -q -p rvs-control --bin rvsd -- simulate synflood --json \
  --seconds 180 --rate 2000 --capacity 262144 --persistence 300 --legit 50 --drop-entry 3 >/dev/null
echo "== demo (the DPDK EAL on net_pcap, no hugepages: ci/demo-check.py reads what it sent)"
demo_tmp=$(mktemp -d)
TMPDIR=$demo_tmp ./target/release/rvsd demo --clients 200 --flood 2000 >"$demo_tmp/out" 2>&1 ||
  { cat "$demo_tmp/out" >&2; exit 1; }
python3 ci/demo-check.py "$demo_tmp/out" "$(echo "$demo_tmp"/rvs-demo-*)" 200 2000
rm -rf "$demo_tmp"
echo "== control bench (one -e on every worker; a 10k-service --replace; a 100k-dest scrape)"
RVS_BENCH_CHANGES=300 RVS_BENCH_STEADY_ROUNDS=1 cargo bench --locked -q -p rvs-control --bench control
echo "== health bench (smoke: 1000 checkers against 1000 loopback listeners at delay_loop 1, one row each)"
RVS_BENCH_SECONDS=1 RVS_BENCH_LOOPS=1 cargo bench --locked -q -p rvs-control --bench health
echo "== netns (real kernel TCP through rvsd on net_af_packet: DR and NAT set up by rvsadm, a listener behind the exception path; keepalived health checks from the exception path, NAT and DR; BGP+BFD (BIRD) and management connects through a flood at the exception path's budget; a flood toward NAT dests that never answer)"
cargo build --release --locked -q -p rvs-control
bash ci/netns.sh
# The health checks once (their path is the exception path's, which the line above and this
# one already cover with one and two workers).
RVS_NETNS_WORKERS=2 bash ci/netns.sh dr nat exception
echo "== e2e (the seed's scenario live: hping3 --rand-source SYN flood against persistent NAT and DR services of rvsd, real clients, /metrics sampled every second)"
bash ci/e2e.sh
echo "== ci/prometheus.sh (real Prometheus scraping rvsd: relabel rule, series, alerts)"
bash ci/prometheus.sh
echo "== ci/docker.sh (the rvs image: rvsd demo in it with no capabilities, rvsd on the host's hugepages with rvs0, the compose lab: /metrics, rvsadm, Prometheus)"
bash ci/docker.sh
echo "== pktgen-scripts/*.lua (luac -p, a stand-in pktgen) and their appliance file and rules (rvsd replay)"
bash ci/lua-check.sh
none=$(mktemp --suffix=.pcap)
./target/release/rvsd lab-pcap --kind established --flows 0 --out "$none"
./target/release/rvsd replay --config pktgen-scripts/appliance.toml \
  --rules pktgen-scripts/rules.ipvsadm --pcap-in "$none" --pcap-out /dev/null
rm -f "$none"
echo "== pktgen-scripts/replay.sh (smoke: testpmd sends a generated mix into net_null)"
out=$(pktgen-scripts/replay.sh --flows 10000 --seconds 1 -- -l 0-1 --no-huge -m 1024 --no-pci \
  --no-telemetry --file-prefix rvs-replay-smoke --vdev net_null0,no-rx=1)
rm -rf /var/run/dpdk/rvs-replay-smoke
# testpmd's totals: frames were sent (out of the null port), a real count, not zero.
echo "$out" | awk '/Accumulated forward statistics/ {p = 1} p && /TX-packets:/ {n = $2; exit} END {exit !(n > 0)}' ||
  { echo "$out" >&2; echo "replay.sh sent nothing" >&2; exit 1; }
echo "== figures (the live flood runs above)"
cat "$RVS_FIGURES"
rm -f "$RVS_FIGURES"
echo "ci/test.sh: all green"

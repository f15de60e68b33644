#!/usr/bin/env bash
# The test command (README.md): installs what it needs, builds, runs every test.
# Safe to run on a fresh machine as root, and again on a set-up one.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=ci/setup.sh
. ci/setup.sh

echo "== fmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== test"
cargo test --workspace --locked
echo "== benches compile"
cargo bench --workspace --locked --no-run
echo "== simulate synflood (smoke: the seed's numbers, short run)"
cargo run --release --locked -q -p rvs-control --bin rvsd -- simulate synflood --json \
  --seconds 180 --rate 2000 --capacity 262144 --persistence 300 --legit 50 --drop-entry 3 >/dev/null
echo "== demo (smoke: the DPDK EAL on net_pcap, no hugepages)"
./target/release/rvsd demo --clients 200 --flood 2000 >/dev/null
echo "ci/test.sh: all green"

#!/usr/bin/env bash
# The appliance's main job on its embedded default, on a fresh machine: installs what it
# needs (DPDK 22.11 from Debian, ...), builds rvsd and runs `rvsd demo`: the real DPDK EAL
# with no NIC and no hugepages (--no-huge, a net_pcap virtual device), the lab config, a
# persistent DR service, generated client traffic and a SYN burst. Flags pass through
# (`ci/run-default.sh --clients 5000 --flood 100000`). For the engine alone in virtual time:
# `rvsd simulate synflood`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/setup.sh
. ci/setup.sh
cargo build --release --locked -q -p rvs-control --bin rvsd
exec ./target/release/rvsd demo "$@"

#!/usr/bin/env bash
# The appliance's main job on its embedded default, on a fresh machine: installs what it
# needs, builds rvsd, runs it. Today the engine runs in virtual time (the SYN-flood scenario
# of the seed patch); the DPDK appliance on virtual devices replaces this when it lands.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/setup.sh
. ci/setup.sh
cargo build --release --locked -q -p rvs-control --bin rvsd
exec ./target/release/rvsd simulate synflood "$@"

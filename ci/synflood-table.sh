#!/usr/bin/env bash
# Regenerates the table of `rvsd simulate synflood` runs in docs/synflood.md (stdout).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p rvs-control --bin rvsd
runs=(
  "--drop-entry 3"
  "--drop-entry 3 --seed 2"
  "--drop-entry 3 --seed 3"
  "--drop-entry 3 --netmask 24"
  "--drop-entry 3 --persistence 3600"
  "--drop-entry 3 --persistence 0"
  "--drop-entry 3 --rate 5000 --capacity 1048576"
  "--drop-entry 1"
  "--drop-entry 1 --capacity 65536"
  "--drop-entry 0"
  "--drop-entry 0 --capacity 65536"
)
echo "| flags | syn_recv_survival | templates end / max | assured end | conns end / max | legit kept dest | legit conns ok / failed | drop_entry conn / tpl / chain tpl | table_full |"
echo "|---|---|---|---|---|---|---|---|---|"
for r in "${runs[@]}"; do
  # shellcheck disable=SC2086
  ./target/release/rvsd simulate synflood --json $r | python3 -c "
import json, sys
j = json.load(sys.stdin); d = j['drops']
print('| \`%s\` | %.4f | %d / %d | %d | %d / %d | %d / %d | %d / %d | %d / %d / %d | %d |' % (
    sys.argv[1], j['syn_recv_survival'], j['templates_end'], j['templates_max'],
    j['assured_templates_end'], j['conns_end'], j['conns_max'], j['legit_clients_kept_dest'],
    j['legit_clients'], j['legit_conns_ok'], j['legit_conns_failed'], d['drop_entry_conn'],
    d['drop_entry_template'], d['dropped_chain_template'], d['table_full']))
" "$r"
done

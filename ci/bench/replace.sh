#!/usr/bin/env bash
# A benchmark, not a test: a large rule change end to end, with the binaries an operator
# runs. `rvsd run` on net_null (one worker on its own core, the control thread on the
# first), then `rvsadm --replace < SET` round after round, each SET 10k TCP services with 10
# NAT dests each (110k lines) that rvsd has not seen, ROUND_GAP seconds apart; after each
# round, with SCRAPE=1, one `curl` of /metrics (100k dests). Prints each round's time as
# rvsadm's caller sees it (process start included) and rvsd's resident size.
# Usage: ci/bench/replace.sh [heap_reserve_mib (0)] [rounds (5)]
# Needs a release build (cargo build --release -p rvs-control), python3 and, for SCRAPE,
# curl; as root (the EAL).
set -euo pipefail
cd "$(dirname "$0")/../.."
RESERVE=${1:-0}
ROUNDS=${2:-5}
GAP=${ROUND_GAP:-4}
BIN=${RVS_BIN_DIR:-target/release}
DIR=$(mktemp -d /tmp/rvs-replace.XXXXXX)
PORT=19750
cleanup() {
    [[ -n ${PID:-} ]] && kill -INT "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
python3 - "$DIR" <<'EOF'
import sys
for net in (11, 12, 13, 14):
    with open(f"{sys.argv[1]}/set{net}", "w") as f:
        for s in range(10000):
            vip = f"{net}.{100 + s // 65536}.{(s // 256) % 256}.{s % 256}"
            f.write(f"-A -t {vip}:80 -s wlc\n")
            for d in range(10):
                f.write(f"-a -t {vip}:80 -r 172.{16 + d}.{(s // 256) % 256}.{s % 256}:8080 -m -w 1\n")
EOF
cat > "$DIR/rvsd.toml" <<EOF
[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24"]

[engine]
workers = 1
conns_per_worker = 65536

[control]
heap_reserve_mib = $RESERVE
EOF
"$BIN/rvsd" run --config "$DIR/rvsd.toml" --socket "$DIR/rvsd.sock" \
    --metrics-listen "127.0.0.1:$PORT" --no-exception --max-ms 3600000 -- \
    --no-huge -m 512 --no-pci --lcores 0@0,1@1 --file-prefix "rvs-replace-$$" \
    --log-level lib.eal:error --vdev net_null0 >"$DIR/rvsd.log" 2>&1 &
PID=$!
for _ in $(seq 150); do
    "$BIN/rvsadm" --socket "$DIR/rvsd.sock" -Ln >/dev/null 2>&1 && break
    sleep 0.2
done
grep "control heap" "$DIR/rvsd.log" || true
resident() { echo $(( $(awk '{print $2}' "/proc/$PID/statm") * $(getconf PAGESIZE) >> 20 )); }
for i in $(seq 0 $((ROUNDS - 1))); do
    t0=$(date +%s%N)
    "$BIN/rvsadm" --socket "$DIR/rvsd.sock" --replace <"$DIR/set$((11 + i % 4))"
    t1=$(date +%s%N)
    echo "round $i: --replace of 10k new services, 100k dests: $(( (t1 - t0) / 1000000 )) ms; rvsd resident $(resident) MiB"
    if [[ ${SCRAPE:-0} == 1 ]]; then
        t0=$(date +%s%N)
        curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics"
        t1=$(date +%s%N)
        echo "  /metrics: $(( (t1 - t0) / 1000000 )) ms; rvsd resident $(resident) MiB"
    fi
    sleep "$GAP"
done

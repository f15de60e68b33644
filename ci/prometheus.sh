#!/usr/bin/env bash
# The Prometheus side of rvsd, end to end (docs/metrics.md):
#   1. promtool checks control/prometheus/: the alert rules, their unit tests, rvs.yml;
#   2. a real rvsd (DPDK on net_pcap, no NIC, no hugepages) forwards a generated mix
#      (established flows, and a SYN flood that fills its conn table) to two dests;
#   3. a real Prometheus scrapes it every second with rvs.yml's relabel rule and alerts.yml;
#   4. its HTTP API must show the node_ipvs_* series an IPVS dashboard reads, with
#      node_exporter's labels and live values, the rvs_* series the alerts read, and the
#      alerts that this traffic must (and must not) set off.
# Uses the binaries in target/release (RVS_BIN_DIR=DIR for another build dir). Installs
# Debian's prometheus (with promtool) when missing, as root. Cleans up what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
t_start=$(date +%s)

BIN=${RVS_BIN_DIR:-target/release}
PROM_DIR=control/prometheus
JOB=rvsd

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "prometheus.sh: please install: prometheus (Debian's package, with promtool)" >&2
    exit 1
  fi
fi
command -v python3 >/dev/null || { echo "prometheus.sh: python3 is required" >&2; exit 1; }
[ -x "$BIN/rvsd" ] || {
  echo "prometheus.sh: no $BIN/rvsd (cargo build --release -p rvs-control --bin rvsd, or set RVS_BIN_DIR)" >&2
  exit 1
}

echo "== promtool check rules / test rules / check config"
promtool check rules "$PROM_DIR/alerts.yml"
promtool test rules "$PROM_DIR/alerts_test.yml"
promtool check config "$PROM_DIR/rvs.yml"

# --- Everything this script starts, and its cleanup.
work=$(mktemp -d /tmp/rvs-prom.XXXXXX)
prefix="rvs-prom-$$"
rvsd_pid=""
prom_pid=""
stop_pid() { # pid name: SIGTERM, up to 10 s, then SIGKILL
  local pid=$1 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "prometheus.sh: $2 ($pid) ignored SIGTERM, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$prom_pid" prometheus
  stop_pid "$rvsd_pid" rvsd
  rm -rf "$work" "/var/run/dpdk/$prefix" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/$prefix"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  echo "prometheus.sh: FAILED: $*" >&2
  for f in rvsd.log prometheus.log; do
    if [ -s "$work/$f" ]; then
      echo "--- last lines of $f" >&2
      tail -n 20 "$work/$f" >&2
    fi
  done
  exit 1
}

# Two free local ports: rvsd's /metrics and Prometheus's web API.
read -r mport pport < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
[ -n "${pport:-}" ] || fail "no free local ports"

echo "== rvsd run with traffic (metrics on 127.0.0.1:$mport, file prefix $prefix)"
# 20000 established flows (ACKs; sloppy_tcp makes them conns) then a 100000-source SYN flood
# into a 65536-entry table: the table fills, drop_entry (mode 1) turns on and keeps
# dropping SYN_RECV conns, so new conns keep coming while the established ones stay active.
"$BIN/rvsd" lab-pcap --kind established --flows 20000 --out "$work/est.pcap"
"$BIN/rvsd" lab-pcap --kind synflood --flows 100000 --out "$work/flood.pcap"
python3 - "$work/est.pcap" "$work/flood.pcap" "$work/mix.pcap" <<'EOF'
# Two classic pcaps (24-byte header) of the same link type: the frames of one, then the other.
import sys
a, b, out = sys.argv[1:4]
x, y = open(a, "rb").read(), open(b, "rb").read()
assert x[:24] == y[:24], "pcap headers differ"
open(out, "wb").write(x + y[24:])
EOF
cat >"$work/rvsd.toml" <<EOF
# control/src/appconfig/lab.rs DEFAULT_LAB_TOML, and:
[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24", "fd00::1/64"]

[[neighbor]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"
port = "p0"

[[neighbor]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"
port = "p0"

[engine]
workers = 1
conns_per_worker = 65536

[defense]
drop_entry = 1

[ipvs]
sloppy_tcp = true

[control]
socket = "$work/rvsd.sock"

[metrics]
listen = "127.0.0.1:$mport"
EOF
cat >"$work/rules.txt" <<'EOF'
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11 -g
-a -t 10.0.0.100:80 -r 10.0.0.12 -g
EOF
# --max-ms: rvsd stops by itself should this script die without its trap.
"$BIN/rvsd" run --config "$work/rvsd.toml" --rules "$work/rules.txt" --no-exception \
  --max-ms 90000 --mbufs 131071 --metrics-out "$work/final.prom" -- \
  --no-huge -m 2048 --no-pci -l 0-1 --no-telemetry --file-prefix "$prefix" \
  --vdev "net_pcap0,rx_pcap=$work/mix.pcap,infinite_rx=1" --vdev net_null0 \
  --log-level lib.eal:error >"$work/rvsd.log" 2>&1 &
rvsd_pid=$!

echo "== prometheus (web 127.0.0.1:$pport) on rvs.yml: target 127.0.0.1:$mport, intervals 1s"
# rvs.yml as it is, its target and intervals rewritten; alerts.yml beside it (rule_files).
sed -e "s/127\.0\.0\.1:9750/127.0.0.1:$mport/" \
  -e 's/^\(  *\)scrape_interval: .*/\1scrape_interval: 1s/' \
  -e 's/^\(  *\)evaluation_interval: .*/\1evaluation_interval: 1s/' \
  "$PROM_DIR/rvs.yml" >"$work/prometheus.yml"
cp "$PROM_DIR/alerts.yml" "$work/alerts.yml"
grep -q "127.0.0.1:$mport" "$work/prometheus.yml" &&
  [ "$(grep -c '_interval: 1s$' "$work/prometheus.yml")" = 2 ] ||
  fail "rvs.yml no longer has the target 127.0.0.1:9750 and both intervals that this script rewrites"
promtool check config "$work/prometheus.yml" >/dev/null
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$pport" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!

# Everything else goes through the HTTP APIs: python3 polls (no blind sleeps) and checks.
python3 - "http://127.0.0.1:$pport" "http://127.0.0.1:$mport/metrics" "$JOB" \
  "$PROM_DIR/alerts.yml" docs/metrics.md "$rvsd_pid" "$prom_pid" <<'EOF' || fail "see the checks above"
import json, os, re, sys, time, urllib.error, urllib.parse, urllib.request

prom, rvsd_metrics, job, alerts_path, doc_path = sys.argv[1:6]
pids = {"rvsd": int(sys.argv[6]), "prometheus": int(sys.argv[7])}
t0 = time.monotonic()
failed = []

def alive():
    for name, pid in pids.items():
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"{name} (pid {pid}) exited")

def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()

def api(path, **params):
    url = f"{prom}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    body = json.loads(get(url))
    if body.get("status") != "success":
        sys.exit(f"{url}: {body}")
    return body["data"]

def query(q):
    return api("query", query=q)["result"]

def wait(what, ready, timeout):
    """Poll ready() (true or a value) every 0.25 s until timeout s; fail when it never is."""
    deadline = time.monotonic() + timeout
    while True:
        alive()
        try:
            v = ready()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            v = None
        if v:
            print(f"     {what}: after {time.monotonic() - t0:.1f} s")
            return v
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)

def check(ok, what, found):
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {found}")
    if not ok:
        failed.append(what)

def labels(m):
    return {k: v for k, v in m.items() if k != "__name__"}

sel = f'job="{job}"'
wait("rvsd serves /metrics", lambda: "rvs_ipvs_connections_total" in get(rvsd_metrics), 30)
wait("prometheus ready", lambda: get(prom + "/-/ready"), 15)
wait("first scrape", lambda: query(f"up{{{sel}}}"), 30)
# Enough samples for the rate and the increase below (a scrape a second).
wait("6 scraped samples",
     lambda: any(float(r["value"][1]) >= 6 for r in
                 query(f"count_over_time(node_ipvs_connections_total{{{sel}}}[1m])")), 30)

r = query(f"up{{{sel}}}")
check(len(r) == 1 and r[0]["value"][1] == "1", f"up{{{sel}}} == 1",
      [(x["metric"].get("instance"), x["value"][1]) for x in r])

# The relabel rule: exactly the eight node_exporter names, none left under rvs_ipvs_.
eight = ["connections_total", "incoming_packets_total", "outgoing_packets_total",
         "incoming_bytes_total", "outgoing_bytes_total", "backend_connections_active",
         "backend_connections_inactive", "backend_weight"]
names = sorted(x["metric"]["__name__"] for x in
               query(f'count by (__name__) ({{{sel},__name__=~"node_ipvs_.*"}})'))
check(names == sorted("node_ipvs_" + n for n in eight),
      "node_ipvs_* are exactly the eight renamed series", names)
left = [x["metric"]["__name__"] for x in
        query(f'count by (__name__) ({{{sel},__name__=~"rvs_ipvs_({"|".join(eight)})"}})')]
check(not left, "none of the eight left under rvs_ipvs_", left or "none")
kept = query(f"rvs_ipvs_backend_connections_total{{{sel}}}")
check(len(kept) == 2, "rvs_ipvs_backend_connections_total keeps its name", f"{len(kept)} series")

# node_ipvs_backend_connections_active: node_exporter's labels (Prometheus drops the empty
# local_mark, as for node_exporter's), one series per dest, live conns on each.
r = query(f"node_ipvs_backend_connections_active{{{sel}}}")
for x in r:
    print(f"     {x['metric']} {x['value'][1]}")
want_keys = {"job", "instance", "local_address", "local_port", "remote_address",
             "remote_port", "proto"}
check(len(r) == 2 and all(set(labels(x["metric"])) == want_keys for x in r),
      "node_ipvs_backend_connections_active has node_exporter's label set",
      [sorted(labels(x["metric"])) for x in r])
check(all(x["metric"].get("local_address") == "10.0.0.100" and
          x["metric"].get("local_port") == "80" and x["metric"].get("proto") == "TCP" and
          x["metric"].get("remote_port") == "80" for x in r) and
      sorted(x["metric"].get("remote_address") for x in r) == ["10.0.0.11", "10.0.0.12"],
      "its label values: 10.0.0.100:80 TCP -> 10.0.0.11:80 and 10.0.0.12:80",
      [(x["metric"].get("remote_address"), x["metric"].get("remote_port")) for x in r])
check(len(r) == 2 and all(float(x["value"][1]) > 0 for x in r),
      "node_ipvs_backend_connections_active > 0 on both dests",
      [x["value"][1] for x in r])

# node_ipvs_connections_total: > 0 and increasing, from the raw samples of the last 10 s.
r = query(f"node_ipvs_connections_total{{{sel}}}[10s]")
vals = [float(v) for _, v in r[0]["values"]] if len(r) == 1 else []
check(len(vals) >= 3 and vals[0] > 0 and vals[-1] > vals[0] and
      all(a <= b for a, b in zip(vals, vals[1:])),
      "node_ipvs_connections_total > 0 and increasing", [int(v) for v in vals])

r = query(f"rate(node_ipvs_incoming_packets_total{{{sel}}}[5s])")
check(len(r) == 1 and float(r[0]["value"][1]) > 0,
      "rate(node_ipvs_incoming_packets_total[5s]) > 0",
      [f"{float(x['value'][1]):.0f}/s" for x in r])

r = query(f'rvs_ipvs_service_backends_available{{{sel},local_address="10.0.0.100",'
          f'local_port="80",proto="TCP"}}')
check(len(r) == 1 and r[0]["value"][1] == "2", "rvs_ipvs_service_backends_available == 2",
      [x["value"][1] for x in r])

r = query(f"rvs_drops_total{{{sel}}}")
reasons = sorted({x["metric"].get("reason") for x in r})
check(len(r) > 0 and "table_full" in reasons, "rvs_drops_total exists, by reason", reasons)
r = query(f'sum(rate(rvs_drops_total{{{sel},reason="table_full"}}[5s]))')
print(f"     table_full drops: {float(r[0]['value'][1]):.0f}/s" if r else "     no table_full rate")

# Every series alerts.yml reads exists in this scrape (a misspelt name never fires).
text = open(alerts_path).read()
exprs, cur = [], None
for line in text.splitlines():
    m = re.match(r"^(\s*)expr:\s*(.*)$", line)
    if m:
        cur = len(m.group(1))
        exprs.append(m.group(2))
    elif cur is not None and (not line.strip() or len(line) - len(line.lstrip()) > cur):
        exprs[-1] += " " + line.strip()
    else:
        cur = None
used = sorted({n for e in exprs for n in re.findall(r"\b(rvs_[a-z0-9_]+|up)\b", e)})
present = {x["metric"]["__name__"] for x in
           query(f'count by (__name__) ({{{sel},__name__=~"{"|".join(used)}"}})')}
check(set(used) <= present, f"the {len(used)} series alerts.yml reads are scraped",
      sorted(set(used) - present) or "all")

# docs/metrics.md documents every family rvsd serves, and every drop reason, state and class.
scrape = get(rvsd_metrics)
doc = open(doc_path).read()
fams = re.findall(r"^# TYPE (\S+) ", scrape, re.M)
values = set(re.findall(r'(?:reason|state|class)="([^"]+)"', scrape))
undoc = sorted(n for n in set(fams) | values if f"`{n}`" not in doc)
check(fams and not undoc,
      f"docs/metrics.md names all {len(fams)} families and {len(values)} reasons, states and classes",
      undoc or "all")

# The rules as Prometheus runs them: every one evaluates without error.
def rules_evaluated():
    rs = [r for g in api("rules")["groups"] for r in g["rules"]]
    return rs if rs and all(r.get("health") != "unknown" for r in rs) else None
rs = wait("every rule evaluated", rules_evaluated, 15)
bad = [(r["name"], r.get("lastError")) for r in rs if r.get("health") != "ok"]
check(not bad, f"{len(rs)} alerting rules loaded, health ok", bad or "all ok")

# This traffic sets off the table-full and drop_entry alerts (pending: their `for` is
# minutes) and neither the no-live-dest nor the generation alert (workers at 0 and rules
# at 1 after a start is no lag).
want = {("RvsTableFullDrops", ""), ("RvsDefenseActive", "drop_entry")}
def active():
    got = {(a["labels"]["alertname"], a["labels"].get("defense", ""))
           for a in api("alerts")["alerts"] if a["state"] in ("pending", "firing")}
    return got if want <= got else None
try:
    got = wait("table-full and drop_entry alerts pending", active, 10)
except SystemExit as e:
    got = {(a["labels"]["alertname"], a["labels"].get("defense", ""))
           for a in api("alerts")["alerts"]}
    print(f"     {e}")
check(want <= got, "RvsTableFullDrops and RvsDefenseActive{defense=\"drop_entry\"} pending",
      sorted(got))
quiet = {"RvsServiceNoLiveDest", "RvsWorkerConfigGenerationLag", "RvsDown"}
check(not {a for a, _ in got} & quiet, "no RvsServiceNoLiveDest, RvsWorkerConfigGenerationLag, RvsDown",
      sorted({a for a, _ in got} & quiet) or "none")

if failed:
    print(f"{len(failed)} check(s) failed: {failed}")
    sys.exit(1)
EOF

echo "== rvsd stops on SIGTERM and writes --metrics-out"
stop_pid "$prom_pid" prometheus
prom_pid=""
kill -TERM "$rvsd_pid"
for _ in $(seq 150); do
  kill -0 "$rvsd_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$rvsd_pid" 2>/dev/null && fail "rvsd still runs 15 s after SIGTERM"
rc=0
wait "$rvsd_pid" || rc=$?
rvsd_pid=""
[ "$rc" = 0 ] || fail "rvsd exited with $rc"
grep -q '^rvs_ipvs_connections_total [1-9]' "$work/final.prom" ||
  fail "--metrics-out $work/final.prom has no rvs_ipvs_connections_total"
echo "ok   --metrics-out: $(grep -c '^# TYPE' "$work/final.prom") families, $(grep -c '^rvs_' "$work/final.prom") samples"
tail -n 1 "$work/rvsd.log"

echo "ci/prometheus.sh: all green ($(($(date +%s) - t_start)) s)"

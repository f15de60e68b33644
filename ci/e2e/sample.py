#!/usr/bin/env python3
"""ci/e2e.sh's sampler: scrapes rvsd's /metrics once a second and appends one JSON line per
scrape to OUT: the time (the epoch), rvsd's resident memory (VmRSS of PID, KiB), and every
series of the scrape summed over its labels but the ones kept (`reason`, `state`, `pool`):
"rvs_templates", "rvs_drops_total{reason=table_full}", ... The engine's IPv6 series
(`family="ipv6"`) are left out: the traffic is IPv4, and the IPv6 table's free entries would
hide the IPv4 one's. A scrape that fails is a line with "error". Stops when STOP exists
(after one last scrape).

Usage: sample.py URL PID OUT STOP
"""
import json
import os
import re
import sys
import time
import urllib.request

url, pid, out, stop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
KEEP = ("reason", "state", "pool")
line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
label_re = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def rss_kib():
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return None


def scrape():
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    m = {}
    for ln in text.splitlines():
        if not ln or ln[0] == "#":
            continue
        g = line_re.match(ln)
        if not g:
            continue
        name, labels, v = g.group(1), g.group(3) or "", g.group(4)
        pairs = label_re.findall(labels)
        if ("family", "ipv6") in pairs:
            continue
        kept = [f"{k}={val}" for k, val in pairs if k in KEEP]
        key = name + ("{" + ",".join(kept) + "}" if kept else "")
        try:
            m[key] = m.get(key, 0) + float(v)
        except ValueError:
            pass
    return m


with open(out, "a") as f:
    while True:
        last = os.path.exists(stop)
        t = time.time()
        rec = {"t": round(t, 3), "rss_kib": rss_kib()}
        try:
            rec["m"] = scrape()
        except Exception as e:  # noqa: BLE001 - any failure is reported as such
            rec["error"] = repr(e)
        f.write(json.dumps(rec) + "\n")
        f.flush()
        if last:
            break
        time.sleep(max(0.0, 1.0 - (time.time() - t)))

#!/usr/bin/env python3
"""ci/e2e.sh's judge: reads one scenario's files (DIR/samples.jsonl from sample.py,
DIR/clients.json from clients.py, DIR/times.txt, DIR/hping.log, DIR/conns.txt from
rvsadm -Lnc, DIR/rvsd.log), checks what the seed promises, and prints one line per check
("ok   ..." or "FAIL ..."), then the figures, the last line starting with "figures:".
Exits 1 when a check failed.

Usage: check.py --dir DIR --scenario NAME --capacity C --persist P --clients N
                --first ADDR --servers s1=ADDR,s2=ADDR --vip VIP --drop-entry D
                [--soak] [--expect-wrong]
       check.py --dir DIR --progress     (one line: the last sample, for soak runs)
"""
import argparse
import ipaddress
import json
import math
import os
import re
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
ap.add_argument("--progress", action="store_true")
ap.add_argument("--scenario")
ap.add_argument("--capacity", type=int)
ap.add_argument("--persist", type=int)
ap.add_argument("--clients", type=int)
ap.add_argument("--first")
ap.add_argument("--servers")
ap.add_argument("--vip")
ap.add_argument("--drop-entry", type=int)
ap.add_argument("--soak", action="store_true")
ap.add_argument("--expect-wrong", action="store_true")
a = ap.parse_args()

# The seed's arithmetic: with drop_entry active the scan drops each flood template (through
# its conn, or itself once orphaned) with probability 1/32 a second, so t seconds into a
# flood of rate R about R x 32 s x (1 - (31/32)^t) of them live, R x 32 s at the steady
# state (docs/synflood.md: 28-31 k at 1000 SYN/s in virtual time, 37.7 k at most over ten
# minutes). The check allows half again as many. Without the seed's rule the ~15 % whose
# conn reaches its SYN_RECV timeout linger for the persistence timeout; without any defense
# every template stays.
SHAPE_S = 32
SHAPE_SLACK = 1.5
# SYN_RECV's timeout: a flood conn lives this long unless dropped.
SYN_RECV_S = 60


def load_samples():
    out = []
    with open(os.path.join(a.dir, "samples.jsonl")) as f:
        for ln in f:
            ln = ln.strip()
            if ln:
                out.append(json.loads(ln))
    return out


def g(s, key):
    return s.get("m", {}).get(key, 0)


def mbufs(s):
    return sum(v for k, v in s.get("m", {}).items() if k.startswith("rvs_mempool_mbufs_in_use"))


samples = load_samples()
if a.progress:
    s = samples[-1]
    print(f"    t+{s['t'] - samples[0]['t']:.0f} s: templates {g(s, 'rvs_templates'):.0f} "
          f"(assured {g(s, 'rvs_assured_templates'):.0f}), conns {g(s, 'rvs_conns'):.0f}, "
          f"free {g(s, 'rvs_free_entries'):.0f}, mbufs in use {mbufs(s):.0f}, "
          f"rss {(s.get('rss_kib') or 0) / 1024:.1f} MiB", flush=True)
    sys.exit(0)

fails = []


def check(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail else ""))
    if not ok:
        fails.append(what)


times = {}
with open(os.path.join(a.dir, "times.txt")) as f:
    for ln in f:
        k, v = ln.split()
        times[k] = float(v)
t_cs, t_fs, t_fe, t_ce = (times["clients_start"], times["flood_start"], times["flood_end"],
                          times["clients_end"])
flood_s = t_fe - t_fs
persistent = a.persist > 0
C = a.capacity
N = a.clients

# ----- rvsd itself: alive and answering all along, no panic, a clean stop.
errors = [s for s in samples if "error" in s]
check(not errors, "every scrape of /metrics answered",
      f"{len(errors)} of {len(samples)} failed, first: {errors[0]['error']}" if errors else
      f"{len(samples)} scrapes")
good = [s for s in samples if "m" in s]
log = open(os.path.join(a.dir, "rvsd.log"), errors="replace").read()
panics = [ln for ln in log.splitlines() if "panicked" in ln or "RUST_BACKTRACE" in ln]
check(not panics, "no panic in rvsd's log", panics[0] if panics else "")
check(times.get("rvsd_rc") == 0, "rvsd stopped cleanly on SIGTERM (exit 0)",
      f"exit {times.get('rvsd_rc'):.0f}")

# ----- the flood: its rate, as sent and as it reached the table.
hping = open(os.path.join(a.dir, "hping.log"), errors="replace").read()
m = re.search(r"(\d+) packets transmitted", hping)
sent = int(m.group(1)) if m else 0
rate_sent = sent / flood_s if flood_s > 0 else 0
check(sent > 0, "hping3 reported what it sent", f"{sent} SYNs in {flood_s:.1f} s" if m else hping[-300:])

# The samples just before the flood's start and just after its end: the new conns between
# them, less the clients', over the flood's length.
before = [s for s in good if s["t"] <= t_fs]
after = [s for s in good if s["t"] >= t_fe + 0.5]
s0 = before[-1] if before else good[0]
s1 = after[0] if after else good[-1]
last = good[-1]

clients = json.load(open(os.path.join(a.dir, "clients.json")))
conns = [(src, c) for src, cs in clients.items() for c in cs]
win = flood_s
client_conns_win = sum(1 for _, c in conns if s0["t"] <= c[0] <= s1["t"])
new_at_rvsd = (g(s1, "rvs_conns_created_total") - g(s0, "rvs_conns_created_total")
               + g(s1, "rvs_drops_total{reason=table_full}")
               - g(s0, "rvs_drops_total{reason=table_full}")
               + g(s1, "rvs_drops_total{reason=drop_packet}")
               - g(s0, "rvs_drops_total{reason=drop_packet}")
               - client_conns_win)
R = new_at_rvsd / win if win > 0 else 0
bound = R * (SYN_RECV_S + a.persist)


def shape_at(t):
    """The templates the seed's arithmetic allows t seconds into the flood (with slack)."""
    return SHAPE_SLACK * R * SHAPE_S * (1 - (31 / 32) ** max(t, 0))


shape = SHAPE_SLACK * R * SHAPE_S

# Without the defense nothing leaves the table before its timeout: each flood SYN holds a
# conn for 60 s (SYN_RECV) and, with persistence, a template for the persistence timeout,
# beside what the real clients hold (their templates, and their closed conns in TIME_WAIT or
# FIN_WAIT, which the scan never drops: every conn not in SYN_RECV is theirs). When would
# the table have been full?
def legit(s):
    return (g(s, "rvs_conns") - g(s, "rvs_conns_by_state{state=tcp:SYN_RECV}")
            + g(s, "rvs_assured_templates"))


def entries_without_defense(s):
    t = s["t"] - t_fs
    e = legit(s) + R * min(t, SYN_RECV_S)
    if persistent:
        e += R * min(t, a.persist)
    return e


full = [s for s in good if t_fs <= s["t"] <= t_fe and entries_without_defense(s) >= C]
t_full = full[0]["t"] - t_fs if full else math.inf
check(t_full <= flood_s, "the flood overruns the table without the defense within the run",
      f"{R:.0f} new conns/s at rvsd: the {C}-entry table would be full after "
      f"{t_full:.0f} s of this {flood_s:.0f} s flood" if t_full < math.inf else
      f"{R:.0f} new conns/s at rvsd would not fill the {C}-entry table in this "
      f"{flood_s:.0f} s flood: raise the rate (RVS_E2E_FLOOD_US) or lower the table "
      "(RVS_E2E_TABLE, RVS_E2E_TABLE_PLAIN)")

# ----- the table under the flood.
tpl_max = max(g(s, "rvs_templates") for s in good)
tpl_created = g(last, "rvs_templates_created_total")
conns_max = max(g(s, "rvs_conns") for s in good)
free_min = min(g(s, "rvs_free_entries") for s in good)
table_full = g(last, "rvs_drops_total{reason=table_full}")
if persistent:
    over = [(s["t"] - t_fs, g(s, "rvs_templates"), shape_at(min(s["t"], t_fe) - t_fs) + N + 100)
            for s in good]
    over = [o for o in over if o[1] > o[2]]
    check(not over,
          f"templates stay bounded at every sample: at most {SHAPE_SLACK} x rate x {SHAPE_S} s x "
          f"(1 - (31/32)^t), t seconds into the flood, plus the clients' (the scan takes 1/32 "
          f"a second), far below rate x (60 s + persistence timeout)",
          f"max {tpl_max:.0f}; limit {shape:.0f} at the steady state; rate x "
          f"{SYN_RECV_S + a.persist} s = {bound:.0f}"
          + (f"; over at t={over[0][0]:.0f} s: {over[0][1]:.0f} > {over[0][2]:.0f}" if over
             else ""))
else:
    made = [s for s in good if g(s, "rvs_templates") or g(s, "rvs_templates_created_total")]
    check(not made, "no persistence, no template ever created",
          f"templates_created_total {tpl_created:.0f}, max live {tpl_max:.0f}")
check(table_full == 0, "the table never filled (no table_full drop)",
      f"{table_full:.0f} new conns refused; free entries min {free_min:.0f} of {C}")

# ----- the real clients.
warm = [s for s in good if t_fs <= s["t"] <= t_ce]
if persistent:
    assured = [g(s, "rvs_assured_templates") for s in warm]
    amin = min(assured) if assured else 0
    amax = max(assured) if assured else 0
    check(amin >= N, "ASSURED templates cover the real clients at every sample of the flood",
          f"min {amin:.0f}, max {amax:.0f}, {N} clients")

total = len(conns)
ok = sum(1 for _, c in conns if c[2])
fl = [c for _, c in conns if t_fs <= c[0] <= t_fe]
fl_ok = sum(1 for c in fl if c[2])
rate_ok = ok / total if total else 0
rate_fl = fl_ok / len(fl) if fl else 0
failed = sorted((c[0], src, c[3]) for src, c in conns if not c[2])
detail = f"{ok}/{total} = {100 * rate_ok:.2f} %"
if failed:
    detail += "; first failures: " + "; ".join(
        f"{src} at t{t - t_fs:+.1f} s {err}" for t, src, err in failed[:3])
check(total > 0 and rate_ok >= 0.99, "at least 99 % of the real connections succeed", detail)
check(fl and rate_fl >= 0.99, "at least 99 % of those made during the flood succeed",
      f"{fl_ok}/{len(fl)} = {100 * rate_fl:.2f} %")

servers = dict(kv.split("=") for kv in a.servers.split(","))
seen = {src: {c[2] for c in cs if c[2]} for src, cs in clients.items()}
kept = sum(1 for src in seen if len(seen[src]) == 1)
both = sum(1 for src in seen if len(seen[src]) > 1)
if persistent:
    if a.expect_wrong:
        check(both == N, "every client changed servers during the run (RVS_E2E_EXPECT_WRONG)",
              f"{both} of {N} did")
    else:
        moved = [f"{src}: {sorted(seen[src])}" for src in sorted(seen) if len(seen[src]) != 1]
        check(kept == N, "every real client keeps its server for the whole run",
              f"{kept} of {N}" + (f"; moved: {', '.join(moved[:3])}" if moved else ""))
    per = {name: sum(1 for src in seen if seen[src] == {name}) for name in servers}
    check(all(per.values()), "the clients are spread over both servers",
          ", ".join(f"{k}: {v}" for k, v in per.items()))
else:
    check(both == N, "without persistence each client is spread over both servers (rr)",
          f"{both} of {N}")

# rvsadm -Lnc: each client's template, on the server it saw.
rows = []
for ln in open(os.path.join(a.dir, "conns.txt")):
    w = ln.split()
    if len(w) == 6 and w[0] == "TCP":
        rows.append(w)
# A template has client port 0 and a template state (NONE; the kernel also shows ASSURED); a
# flood conn can have port 0 too (hping3's source port wraps), but it is in SYN_RECV.
tpl_rows = [w for w in rows if w[3].endswith(":0") and w[2] in ("NONE", "ASSURED")]
by_client = {}
for w in tpl_rows:
    by_client.setdefault(w[3].rsplit(":", 1)[0], []).append(w)
first = ipaddress.ip_address(a.first)
addrs = [str(first + i) for i in range(N)]
if persistent:
    bad = []
    for src in addrs:
        ts = by_client.get(src, [])
        want = {servers[n] + ":80" for n in seen.get(src, set())}
        if len(ts) != 1 or ts[0][5] not in want or ts[0][4] != f"{a.vip}:80":
            bad.append(f"{src}: {[t[5] for t in ts]} (saw {sorted(want)})")
    check(not bad, "rvsadm -Lnc lists each client's template, on the server the client saw",
          f"{N - len(bad)} of {N}" + (f"; {'; '.join(bad[:3])}" if bad else ""))
else:
    check(not tpl_rows, "rvsadm -Lnc lists no template", f"{len(tpl_rows)} listed")

# ----- the drops, by reason (conns and templates removed; packets refused).
def drop(r):
    return g(last, f"rvs_drops_total{{reason={r}}}")


dec, det, dct, dcc = (drop("drop_entry_conn"), drop("drop_entry_template"),
                      drop("dropped_chain_template"), drop("dropped_chain_conn"))
if a.drop_entry == 3:
    check(dec > 0, "the drop_entry scan dropped flood conns (drop_entry_conn)", f"{dec:.0f}")
if persistent:
    check(dec - max(5, dec / 500) <= dct <= dec,
          "each conn the defense dropped took its unassured template along "
          "(dropped_chain_template = drop_entry_conn)", f"{dct:.0f} of {dec:.0f}")
else:
    check(det == 0 and dct == 0, "no template drop without persistence",
          f"drop_entry_template {det:.0f}, dropped_chain_template {dct:.0f}")
exp_dropped = g(last, "rvs_expired_dropped_total")
check(exp_dropped == dec + det + dct + dcc,
      "the drops add up: expired_dropped_total = drop_entry_conn + drop_entry_template + "
      "dropped_chain_template + dropped_chain_conn",
      f"{exp_dropped:.0f} = {dec:.0f} + {det:.0f} + {dct:.0f} + {dcc:.0f}")
for r in ("no_dest", "drop_packet", "dest_unavailable"):
    check(drop(r) == 0, f"no {r} drop", f"{drop(r):.0f}")

# ----- mbufs and memory.
idle = [mbufs(s) for s in good if s["t"] < t_cs]
quiet = [mbufs(s) for s in good if s["t"] > t_ce + 2]
idle_n = int(max(idle)) if idle else None
peak = max(mbufs(s) for s in good)
quiet_n = int(min(quiet)) if quiet else None
check(idle_n is not None and quiet_n is not None and quiet_n <= idle_n,
      "the mbufs in use come back to their idle count once the traffic stops",
      f"idle {idle_n}, peak {peak:.0f}, after {quiet_n}")
rss = [(s["t"], s.get("rss_kib") or 0) for s in good]
rss_fs = next((r for t, r in rss if t >= t_fs), 0)
rss_fe = [r for t, r in rss if t <= t_fe][-1]
rss_max = max(r for _, r in rss)
rss_note = (f"rss at the flood's start {rss_fs / 1024:.1f} MiB, end {rss_fe / 1024:.1f} MiB, "
            f"max {rss_max / 1024:.1f} MiB")
if a.soak:
    # Flat after the flood's first minute (the table's pages are touched by then).
    ref = next((r for t, r in rss if t >= t_fs + 60), rss_fs)
    grow = rss_fe - ref
    check(grow <= max(2048, ref // 100),
          "rvsd's resident memory stays flat over the flood (after its first minute)",
          f"{ref / 1024:.1f} -> {rss_fe / 1024:.1f} MiB ({grow:+d} KiB); " + rss_note)

# ----- the figures, last.
modes = sorted({int(g(s, "rvs_defense_drop_entry")) for s in warm})
nonzero = sorted((k[len("rvs_drops_total{reason="):-1], v) for k, v in last["m"].items()
                 if k.startswith("rvs_drops_total{") and v)
path = sorted((k[len("rvs_path_drops_total{reason="):-1], v) for k, v in last["m"].items()
              if k.startswith("rvs_path_drops_total{") and v and "reason=engine" not in k)
surv = g(last, "rvs_expired_by_state_total{state=tcp:SYN_RECV}")
print(f"  flood: {sent} SYNs in {flood_s:.1f} s = {rate_sent:.0f}/s sent (hping3), "
      f"{R:.0f} new conns/s at rvsd")
if persistent:
    print(f"  templates: max {tpl_max:.0f}, created {tpl_created:.0f}; rate x (60 s + "
          f"{a.persist} s) = {bound:.0f} ({bound / max(tpl_max, 1):.1f}x the max); the seed's "
          f"steady state rate x {SHAPE_S} s = {R * SHAPE_S:.0f}")
else:
    print(f"  templates: none (created {tpl_created:.0f}, max {tpl_max:.0f})")
print(f"  table: {C} entries, conns max {conns_max:.0f}, free min {free_min:.0f}; "
      f"without the defense full after {t_full:.0f} s; drop_entry mode {modes}")
print(f"  clients: {N}, kept their server {kept}, saw both {both}; connections {ok}/{total} "
      f"ok ({100 * rate_ok:.2f} %), during the flood {fl_ok}/{len(fl)} "
      f"({100 * rate_fl:.2f} %)")
print(f"  drops by reason: " + (", ".join(f"{k} {v:.0f}" for k, v in nonzero) or "none")
      + f"; path drops: " + (", ".join(f"{k} {v:.0f}" for k, v in path) or "none")
      + f"; SYN_RECV conns expired by their own timeout {surv:.0f}")
print(f"  mbufs in use: idle {idle_n}, peak {peak:.0f}, after {quiet_n}; {rss_note}")
print(f"figures: flood {rate_sent:.0f}/s sent, {R:.0f}/s at rvsd; templates max {tpl_max:.0f}"
      + (f" (bound {bound:.0f})" if persistent else "")
      + (f"; assured min {amin:.0f}/{N}" if persistent else "")
      + (f"; clients kept {kept}/{N}" if persistent else f"; clients on both servers {both}/{N}")
      + f"; success {100 * rate_ok:.2f} % ({ok}/{total}), "
      f"in flood {100 * rate_fl:.2f} %; drops "
      + (", ".join(f"{k} {v:.0f}" for k, v in nonzero) or "none")
      + ("" if not fails else f"; {len(fails)} FAILED"))
sys.exit(1 if fails else 0)

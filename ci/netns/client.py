#!/usr/bin/env python3
"""ci/netns.sh's client: N sequential TCP connections to ADDR:PORT (IPv4 or IPv6). Each sends
a line and UP bytes, and reads the server's name and DOWN bytes back (server.py's protocol),
checking the length. Prints one line: "ok=K fail=F NAME=count ..." (names sorted); the first
failures go to stderr. Exits 0 when every connection got its whole answer.

Usage: client.py ADDR PORT N [--up BYTES] [--down BYTES] [--src ADDR] [--timeout S]
       [--max-fail K]   (stops after K failures, 3 by default)
"""
import argparse
import collections
import socket
import sys

ap = argparse.ArgumentParser()
ap.add_argument("addr")
ap.add_argument("port", type=int)
ap.add_argument("n", type=int)
ap.add_argument("--up", type=int, default=0)
ap.add_argument("--down", type=int, default=0)
ap.add_argument("--src")
ap.add_argument("--timeout", type=float, default=3.0)
ap.add_argument("--max-fail", type=int, default=3, help="stop after this many failures")
a = ap.parse_args()

counts = collections.Counter()
fails = []
stopped = None
for i in range(a.n):
    s = socket.socket(socket.AF_INET6 if ":" in a.addr else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    try:
        if a.src:
            s.bind((a.src, 0))
        s.connect((a.addr, a.port))
        s.sendall(b"hello %d %d %d\n" % (i, a.up, a.down) + b"y" * a.up)
        data = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        name, _, rest = bytes(data).partition(b"\n")
        if not name:
            raise OSError("no answer")
        if len(rest) != a.down:
            raise OSError(f"{name.decode()} answered {len(rest)} of {a.down} bytes")
        counts[name.decode(errors="replace")] += 1
    except OSError as e:
        fails.append(f"connection {i}: {e!r}")
    finally:
        s.close()
    if len(fails) >= a.max_fail and i + 1 < a.n:
        stopped = f"stopped after {len(fails)} failures, {a.n - i - 1} connections not tried"
        break
print(f"ok={sum(counts.values())} fail={len(fails)} " +
      " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
for f in fails[:5] + ([stopped] if stopped else []):
    print(f, file=sys.stderr)
sys.exit(1 if fails else 0)

#!/usr/bin/env python3
"""ci/netns.sh's client: N sequential TCP connections to ADDR:PORT, each sends a line and
reads the server's name back. Prints one line: "ok=K fail=F NAME=count ..." (names
sorted), then one line per failure on stderr. Exit 0 when every connection answered.

Usage: client.py ADDR PORT N [SOURCE_ADDR]
"""
import collections
import socket
import sys

addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
src = sys.argv[4] if len(sys.argv) > 4 else None
counts = collections.Counter()
fails = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        if src:
            s.bind((src, 0))
        s.connect((addr, port))
        s.sendall(b"hello %d\n" % i)
        data = b""
        while True:
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
        name = data.decode(errors="replace").strip()
        if not name:
            raise OSError("empty answer")
        counts[name] += 1
    except OSError as e:
        fails.append(f"connection {i}: {e!r}")
    finally:
        s.close()
print(f"ok={sum(counts.values())} fail={len(fails)} " +
      " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
for f in fails[:10]:
    print(f, file=sys.stderr)
sys.exit(1 if fails else 0)

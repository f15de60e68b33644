#!/usr/bin/env python3
"""ci/e2e.sh's real clients: one thread per source address, each connecting to ADDR:PORT
again and again (bound to its own source address) until told to stop, and recording which
real server answered (ci/netns/server.py's protocol: send "hello I 0 0", read the server's
name). A connection succeeds when the name came back within --timeout seconds (the kernel
retransmits a lost SYN or segment meanwhile); anything else is a failure.

Usage: clients.py ADDR PORT --first 10.0.1.128 --count 40 --interval 0.5 --timeout 10
                  --stop-file F --warm-file W --out OUT.json
  --warm-file: written once every client has had one success (the templates are assured)
  --stop-file: the clients stop starting connections once it exists
Output (OUT.json): for each source address, its connections as [start, seconds, server or
"" on failure, error]; the start times are time.time() (the epoch), as ci/e2e.sh's times.
"""
import argparse
import ipaddress
import json
import os
import random
import socket
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("addr")
ap.add_argument("port", type=int)
ap.add_argument("--first", required=True, help="the first source address")
ap.add_argument("--count", type=int, required=True, help="source addresses from --first on")
ap.add_argument("--interval", type=float, default=0.5, help="seconds between connections")
ap.add_argument("--timeout", type=float, default=10.0)
ap.add_argument("--stop-file", required=True)
ap.add_argument("--warm-file", required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()

first = ipaddress.ip_address(a.first)
srcs = [str(first + i) for i in range(a.count)]
log = {s: [] for s in srcs}
warm = set()
lock = threading.Lock()


def one(src, i):
    """One connection from src; returns (server name, error)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    deadline = time.monotonic() + a.timeout
    try:
        s.bind((src, 0))
        s.connect((a.addr, a.port))
        s.sendall(b"hello %d 0 0\n" % i)
        data = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OSError("answer not complete within the timeout")
            s.settimeout(left)
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        name = bytes(data).partition(b"\n")[0].decode(errors="replace")
        if not name:
            raise OSError("no answer")
        return name, ""
    except OSError as e:
        return "", repr(e)
    finally:
        s.close()


def client(src):
    # Spread the clients' starts over one interval.
    time.sleep(random.random() * a.interval)
    i = 0
    while not os.path.exists(a.stop_file):
        t0 = time.time()
        m0 = time.monotonic()
        name, err = one(src, i)
        dt = time.monotonic() - m0
        with lock:
            log[src].append([round(t0, 3), round(dt, 3), name, err])
            if name and src not in warm:
                warm.add(src)
                if len(warm) == len(srcs):
                    with open(a.warm_file, "w") as f:
                        f.write("warm\n")
        i += 1
        time.sleep(max(0.0, a.interval - dt) * random.uniform(0.8, 1.2))


threads = [threading.Thread(target=client, args=(s,)) for s in srcs]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(a.out + ".tmp", "w") as f:
    json.dump(log, f)
os.rename(a.out + ".tmp", a.out)

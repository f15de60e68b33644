#!/usr/bin/env python3
"""ci/netns.sh health's long-lived connection: holds one TCP connection to ADDR:PORT that
server NAME answers (server.py's echo mode), sending a numbered line every EVERY seconds and
printing each answer as it arrives, so the test sees whether an established connection goes
on, stalls or resumes while the balancer changes its real server.

Usage: hold.py ADDR PORT NAME [--every S] [--tries N]
Connects until a connection lands on NAME (up to N tries, 10 by default; the scheduler picks
the server), then prints "held NAME", one "echo I" line per answer (flushed), and "closed:
WHY" when the connection ends. Exits 1 when no connection reaches NAME.
"""
import argparse
import socket
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("addr")
ap.add_argument("port", type=int)
ap.add_argument("name")
ap.add_argument("--every", type=float, default=0.2)
ap.add_argument("--tries", type=int, default=10)
a = ap.parse_args()


def say(line):
    print(line, flush=True)


held = None
for _ in range(a.tries):
    s = socket.create_connection((a.addr, a.port), timeout=3)
    s.sendall(b"echo\n0\n")
    f = s.makefile("rb")
    first = f.readline().split()
    if first and first[0].decode() == a.name:
        held = (s, f)
        break
    s.close()
if held is None:
    say(f"closed: no connection reached {a.name} in {a.tries} tries")
    sys.exit(1)
s, f = held
s.settimeout(None)
say(f"held {a.name}")


def send():
    i = 1
    try:
        while True:
            s.sendall(b"%d\n" % i)
            i += 1
            time.sleep(a.every)
    except OSError as e:
        say(f"closed: send: {e!r}")


threading.Thread(target=send, daemon=True).start()
try:
    for line in f:
        words = line.split()
        say(f"echo {words[1].decode() if len(words) > 1 else '?'}")
    say("closed: by the server")
except OSError as e:
    say(f"closed: {e!r}")

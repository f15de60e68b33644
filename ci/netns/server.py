#!/usr/bin/env python3
"""ci/netns.sh's real server: answers every TCP connection with its own name.

Usage: server.py NAME [PORT [ADDR]]. Listens on ADDR:PORT (default 0.0.0.0:80; ADDR may be
IPv6); with direct routing the connections arrive for the VIP on lo and the answer leaves
from it. Protocol: the client sends one line "hello I UP DOWN", then UP bytes; the server
reads them all and answers "NAME\n" followed by DOWN bytes, then closes. A client whose first
line is "echo" holds the connection instead: each line it sends is answered "NAME LINE" until
it closes (hold.py). Prints "ready" once listening.
"""
import socket
import sys
import threading

name = sys.argv[1]
port = int(sys.argv[2]) if len(sys.argv) > 2 else 80
addr = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"
srv = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((addr, port))
srv.listen(128)
print("ready", flush=True)


def echo(conn, f):
    # A held connection may stall for seconds (a removed dest's packets are dropped): no
    # timeout; it ends when the client closes.
    conn.settimeout(None)
    for line in f:
        conn.sendall(name.encode() + b" " + line)


def serve(conn):
    try:
        conn.settimeout(5)
        f = conn.makefile("rb")
        words = f.readline().split()
        if words == [b"echo"]:
            echo(conn, f)
            return
        up, down = (int(words[2]), int(words[3])) if len(words) >= 4 else (0, 0)
        got = len(f.read(up)) if up else 0
        if got != up:
            return
        conn.sendall(f"{name}\n".encode() + b"x" * down)
    except (OSError, ValueError):
        pass
    finally:
        conn.close()


while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()

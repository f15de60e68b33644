#!/usr/bin/env python3
"""ci/netns.sh's real server: answers every TCP connection with its own name and closes.

Usage: server.py NAME [PORT]. Listens on 0.0.0.0:PORT (80); in DR the connections arrive
for the VIP on lo and the answer leaves from it. Prints "ready" once listening.
"""
import socket
import sys
import threading

name = sys.argv[1]
port = int(sys.argv[2]) if len(sys.argv) > 2 else 80
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(128)
print("ready", flush=True)


def serve(conn):
    try:
        conn.settimeout(5)
        # The client sends one line first; answer after it so data flows both ways.
        conn.recv(256)
        conn.sendall(f"{name}\n".encode())
    except OSError:
        pass
    finally:
        conn.close()


while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()

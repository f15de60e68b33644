#!/usr/bin/env python3
"""ci/netns.sh health's HTTP server: answers every GET with 200 and its NAME, or with 500
while the file FAIL exists (so a test switches it to failing and back without restarting it).

Usage: httpd.py NAME PORT FAIL. Prints "ready" once listening on 0.0.0.0:PORT.
"""
import http.server
import os
import sys

name, port, fail = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if os.path.exists(fail) else 200
        body = f"{name}\n".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


srv = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
srv.daemon_threads = True
print("ready", flush=True)
srv.serve_forever()

#!/usr/bin/env python3
"""ci/netns.sh's UDP probes, on the kernel's own sockets (IPv4).

  udp.py ttl1 ADDR PORT
      Sends one datagram to ADDR:PORT with TTL 1 and waits for the ICMP error the kernel
      accepts for the socket (IP_RECVERR: its checksum held, and its quote matched the
      socket). Prints "from=OFFENDER type=T code=C"; exits 1 without one.
"""
import select
import socket
import struct
import sys

IP_RECVERR = 11
SO_EE_ORIGIN_ICMP = 2


def ttl1(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
    s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    s.connect((addr, port))
    s.send(b"ttl 1")
    if not select.select([s], [], [], 3)[0]:
        sys.exit("no ICMP error within 3 s")
    _, anc, _, _ = s.recvmsg(512, 512, socket.MSG_ERRQUEUE)
    for level, kind, data in anc:
        if level == socket.IPPROTO_IP and kind == IP_RECVERR:
            # struct sock_extended_err, then the offender's sockaddr_in.
            _errno, origin, typ, code = struct.unpack_from("=IBBB", data)
            if origin != SO_EE_ORIGIN_ICMP:
                sys.exit(f"error of origin {origin}, not ICMP")
            offender = socket.inet_ntoa(data[16 + 4:16 + 8])
            print(f"from={offender} type={typ} code={code}")
            return
    sys.exit("no IP_RECVERR message")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "ttl1":
        ttl1(args[0], int(args[1]))
    else:
        sys.exit(__doc__)


main()

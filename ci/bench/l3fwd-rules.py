#!/usr/bin/env python3
"""l3fwd exact-match rules for a capture: one rule per distinct IPv4 TCP/UDP 5-tuple.

Usage: l3fwd-rules.py CAPTURE.pcap OUT_PORT > rules_v4

Reads a classic pcap (Ethernet, either byte order, micro- or nanosecond) and writes DPDK
l3fwd's EM route lines, `R<dst addr> <src addr> <dst port> <src port> <proto> <out port>`
(examples/l3fwd/em_route_parse.c), in the order the flows first appear. Made from the
capture itself, so the rules and the frames cannot drift apart. l3fwd's key reads the ports
20 bytes after the IPv4 header's start, so frames with IP options or fragments get no rule
(they would miss it anyway). Prints the counts on stderr.
"""
import struct
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, out_port = sys.argv[1], sys.argv[2]
    if not out_port.isdigit() or int(out_port) > 255:
        print(f"OUT_PORT {out_port!r}: want a DPDK port id, 0-255", file=sys.stderr)
        return 2
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        print(f"{path}: not a pcap (too short)", file=sys.stderr)
        return 1
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        print(f"{path}: not a classic pcap (magic {magic.hex()})", file=sys.stderr)
        return 1
    (linktype,) = struct.unpack_from(endian + "I", data, 20)
    if linktype != 1:
        print(f"{path}: link type {linktype}, want 1 (Ethernet)", file=sys.stderr)
        return 1
    rec = struct.Struct(endian + "IIII")
    seen = set()
    out = []
    frames = skipped = 0
    off = 24
    while off < len(data):
        if off + 16 > len(data):
            print(f"{path}: truncated record header at byte {off}", file=sys.stderr)
            return 1
        _, _, caplen, _ = rec.unpack_from(data, off)
        if off + 16 + caplen > len(data):
            print(f"{path}: truncated frame at byte {off + 16}", file=sys.stderr)
            return 1
        fr = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        frames += 1
        # Ethernet II, IPv4 without options, not a fragment, TCP or UDP, ports captured.
        if (len(fr) < 38 or fr[12:14] != b"\x08\x00" or fr[14] != 0x45
                or (fr[20] & 0x3f) != 0 or fr[21] != 0 or fr[23] not in (6, 17)):
            skipped += 1
            continue
        key = fr[23:24] + fr[26:38]  # proto, src, dst, src port, dst port
        if key in seen:
            continue
        seen.add(key)
        s, d = fr[26:30], fr[30:34]
        sport, dport = struct.unpack_from(">HH", fr, 34)
        out.append(f"R{d[0]}.{d[1]}.{d[2]}.{d[3]} {s[0]}.{s[1]}.{s[2]}.{s[3]} "
                   f"{dport} {sport} {fr[23]} {out_port}\n")
    sys.stdout.write("".join(out))
    print(f"l3fwd-rules: {frames} frames, {len(out)} rules, {skipped} frames not IPv4 TCP/UDP",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

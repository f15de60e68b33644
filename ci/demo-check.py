#!/usr/bin/env python3
"""ci/demo-check.py OUTPUT DEMO_DIR CLIENTS FLOOD: did `rvsd demo --clients CLIENTS --flood
FLOOD` forward its traffic? Reads what the demo printed (OUTPUT) and left (DEMO_DIR, its
rvs-demo-<pid> directory: tx.pcap, the frames it sent, and metrics.prom, its counters).

The demo's capture is CLIENTS x (SYN, ACK, FIN) plus FLOOD SYNs from random sources, all to
the DR service 10.0.0.100:80 (persistent, two real servers). Checked:
  - the printed "N frames in, M out": N is the capture's frame count, M >= N;
  - tx.pcap: exactly N frames are TCP to 10.0.0.100:80 (DR keeps the addresses), each from
    the appliance's MAC to one real server's MAC, and both servers get frames; any other
    frame is ARP (the VIP announce);
  - metrics.prom: CLIENTS + FLOOD IPv4 conns created, nothing dropped at tx.
Exit 1 with what differs; prints one line of what it found otherwise.
"""
import re
import struct
import sys
from pathlib import Path

LB = bytes.fromhex("020000000001")
RS = {bytes.fromhex("020000000011"): "10.0.0.11", bytes.fromhex("020000000012"): "10.0.0.12"}
VIP = bytes([10, 0, 0, 100])


def frames(path):
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        sys.exit(f"demo-check: {path}: not a classic pcap (magic {magic.hex()})")
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(end + "I", data[off + 8 : off + 12])[0]
        yield data[off + 16 : off + 16 + incl]
        off += 16 + incl
    if off != len(data):
        sys.exit(f"demo-check: {path}: truncated record at byte {off}")


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    out, demo_dir, clients, flood = Path(sys.argv[1]), Path(sys.argv[2]), *map(int, sys.argv[3:])
    want_in = clients * 3 + flood
    bad = []

    text = out.read_text()
    m = re.search(r"^(\d+) frames in, (\d+) out in [0-9.]+ s, (\d+) dropped at tx", text, re.M)
    if not m:
        sys.exit(f"demo-check: no 'N frames in, M out' line in {out}:\n{text}")
    n_in, n_out, n_drop = map(int, m.groups())
    if n_in != want_in:
        bad.append(f"{n_in} frames in, want {want_in} (the capture)")
    if n_out < n_in:
        bad.append(f"{n_out} frames out < {n_in} in")

    per_rs = {ip: 0 for ip in RS.values()}
    tcp_to_vip = other = 0
    for f in frames(demo_dir / "tx.pcap"):
        eth_type = f[12:14]
        if eth_type == b"\x08\x06":
            other += 1
            continue
        if eth_type != b"\x08\x00" or len(f) < 54 or f[23] != 6:
            bad.append(f"a frame out that is neither ARP nor IPv4 TCP: {f[:54].hex()}")
            continue
        ihl = (f[14] & 0x0F) * 4
        dport = struct.unpack(">H", f[14 + ihl + 2 : 14 + ihl + 4])[0]
        if f[30:34] != VIP or dport != 80:
            bad.append(f"a TCP frame out not to 10.0.0.100:80 (DR keeps them): {f[:54].hex()}")
            continue
        tcp_to_vip += 1
        if f[6:12] != LB or f[0:6] not in RS:
            bad.append(f"a frame to the VIP not from the appliance to a real server: {f[:12].hex()}")
            continue
        per_rs[RS[f[0:6]]] += 1
    if tcp_to_vip != want_in:
        bad.append(f"{tcp_to_vip} TCP frames to the real servers in tx.pcap, want {want_in}")
    if not all(per_rs.values()):
        bad.append(f"a real server got nothing: {per_rs}")
    if tcp_to_vip + other != n_out:
        bad.append(f"tx.pcap holds {tcp_to_vip + other} frames, the demo says {n_out} out")

    metrics = (demo_dir / "metrics.prom").read_text()
    m = re.search(r'^rvs_conns_created_total\{worker="0",family="ipv4"\} (\d+)$', metrics, re.M)
    created = int(m.group(1)) if m else None
    if created != clients + flood:
        bad.append(f"rvs_conns_created_total (ipv4) {created}, want {clients + flood}")
    if n_drop:
        bad.append(f"{n_drop} dropped at tx")

    if bad:
        print("demo-check: FAILED:\n  " + "\n  ".join(bad), file=sys.stderr)
        sys.exit(1)
    print(
        f"demo-check: {n_in} frames in, {n_out} out; {tcp_to_vip} to the real servers "
        f"({', '.join(f'{ip} {n}' for ip, n in per_rs.items())}), {other} ARP; "
        f"{created} conns created"
    )


if __name__ == "__main__":
    main()

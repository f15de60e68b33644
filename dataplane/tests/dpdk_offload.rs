//! Tx checksum offload on a real PMD, with the Linux kernel as the judge: `net_tap` offers
//! IPv4 and UDP tx checksum offloads, and the kernel drops a datagram whose IPv4 header or
//! UDP checksum is wrong before any socket sees it. Frames sent with the offload request
//! `Mbuf::offload_tx_csum` makes (IPv4 header checksum 0, UDP checksum = pseudo-header sum)
//! must reach a UDP socket on the tap's kernel side; the same frames without the request
//! must not (the control: it shows the kernel checks). Needs root and /dev/net/tun.
#![cfg(feature = "dpdk")]

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{eal_args, RemoveDir};
use rvs_dataplane::dpdk::{Eal, Mbuf, Mempool, Port, PortOpts, DEFAULT_DATA_ROOM};
use rvs_dataplane::pipeline::buf::{Buf, TxCsum};
use rvs_dataplane::wire::{checksum, IpProtocol};

const IFACE: &str = "rvsofl0";
const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 2);
const PORT: u16 = 47_001;

fn ip(args: &[&str]) {
    let s = Command::new("ip").args(args).status().expect("run ip");
    assert!(s.success(), "ip {}", args.join(" "));
}

/// Ethernet + IPv4 + UDP to the kernel side, checksum fields as the offload contract wants
/// (IPv4 header checksum 0, UDP checksum the pseudo-header sum, folded, not complemented),
/// except those `sw_ip` / `sw_udp` say to compute here.
fn datagram(pool: &Mempool, dst_mac: [u8; 6], payload: &[u8], sw_ip: bool, sw_udp: bool) -> Mbuf {
    let udp_len = 8 + payload.len();
    let mut m = pool.alloc().expect("mbuf");
    let f = m.append(14 + 20 + udp_len).expect("room");
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0x98, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let h = &mut f[14..34];
    h.copy_from_slice(&[
        0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    h[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    h[12..16].copy_from_slice(&PEER.octets());
    h[16..20].copy_from_slice(&KERNEL.octets());
    let u = &mut f[34..];
    u[0..2].copy_from_slice(&40_000u16.to_be_bytes());
    u[2..4].copy_from_slice(&PORT.to_be_bytes());
    u[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let ph = checksum::pseudo_header_v4(PEER, KERNEL, IpProtocol::UDP, udp_len as u16);
    u[6..8].copy_from_slice(&ph.to_be_bytes());
    u[8..].copy_from_slice(payload);
    if sw_udp {
        u[6..8].fill(0);
        let c = checksum::udp_encode(checksum::finish(checksum::combine(&[ph, checksum::sum(u)])));
        u[6..8].copy_from_slice(&c.to_be_bytes());
    }
    if sw_ip {
        let c = checksum::finish(checksum::sum(&f[14..34]));
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }
    m
}

#[test]
fn offloaded_checksums_satisfy_the_kernel() {
    assert!(
        std::path::Path::new("/dev/net/tun").exists(),
        "/dev/net/tun is needed (net_tap)"
    );
    let prefix = format!("rvs-offload-{}", std::process::id());
    let args = eal_args(&prefix, "0", 512, &[&format!("net_tap0,iface={IFACE}")]);
    let mut eal = Eal::init(&args).expect("rte_eal_init");
    let _rt = RemoveDir(eal.runtime_dir());
    let pool = Mempool::new("rvs-offload", 1023, 32, DEFAULT_DATA_ROOM, -1).expect("pool");
    let id = Port::by_name("net_tap0").expect("net_tap0");
    let opts = PortOpts {
        rss: false,
        promiscuous: false,
        nb_desc: 256,
        ..PortOpts::default()
    };
    let mut port = Port::configure(id, 1, 1, &pool, opts).expect("configure net_tap");
    let o = port.offloads();
    assert!(
        o.tx_ipv4_cksum && o.tx_udp_cksum,
        "net_tap offers IPv4 and UDP tx checksum offloads: {o:?}"
    );
    port.start().expect("start");

    ip(&["addr", "replace", &format!("{KERNEL}/24"), "dev", IFACE]);
    ip(&["link", "set", IFACE, "up"]);
    let mac_text = std::fs::read_to_string(format!("/sys/class/net/{IFACE}/address")).unwrap();
    let mac: Vec<u8> = mac_text
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let mac: [u8; 6] = mac.try_into().unwrap();
    // The kernel must not ARP for the peer before delivering: it needs no reply path.
    let sock = UdpSocket::bind((KERNEL, PORT)).expect("bind on the tap's address");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    // Each checksum is either offloaded or computed here; `broken` leaves the UDP one as the
    // bare pseudo-header sum without asking the NIC for it.
    let send = |payload: &[u8], ip_off: bool, udp_off: bool, broken: bool| {
        let mut m = datagram(&pool, mac, payload, !ip_off, !udp_off && !broken);
        if ip_off || udp_off {
            let req = TxCsum {
                l2_len: 14,
                l3_len: 20,
                v6: false,
                ip: ip_off,
                udp: udp_off,
            };
            assert!(m.offload_tx_csum(req));
            let (flags, l2, l3) = m.tx_offload();
            assert_ne!(flags, 0);
            assert_eq!((l2, l3), (14, 20));
        }
        let mut v = vec![m];
        assert_eq!(port.tx_burst(0, &mut v), 1, "net_tap took the frame");
    };
    let recv_all = |deadline: Duration| -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let end = Instant::now() + deadline;
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                got.push(buf[..n].to_vec());
            }
        }
        got
    };

    // The controls: a header checksum left 0, or a UDP checksum left as the bare
    // pseudo-header sum, and nothing asked of the NIC: the kernel drops every one.
    for i in 0..3u8 {
        send(&[b'n', i], false, false, true); // both wrong
        send(&[b'u', i], true, false, true); // header offloaded, UDP wrong
    }
    assert!(
        recv_all(Duration::from_millis(500)).is_empty(),
        "the kernel verifies both checksums of what the tap delivers"
    );
    // Offloaded, alone or together with a checksum computed here: all arrive intact.
    let cases = [(true, true), (true, false), (false, true)];
    for (i, &(ip_off, udp_off)) in cases.iter().enumerate() {
        send(&[b'y', i as u8, 0xab, 0xcd, 0xef], ip_off, udp_off, false);
    }
    let got = recv_all(Duration::from_millis(800));
    let want: Vec<Vec<u8>> = (0..cases.len() as u8)
        .map(|i| vec![b'y', i, 0xab, 0xcd, 0xef])
        .collect();
    assert_eq!(got, want, "offloaded datagrams reached the socket");
    drop(port);
    drop(pool);
    eal.cleanup().expect("EAL cleanup");
}

//! The packet path on real frames: built with etherparse, run through a worker, and every
//! output frame parsed and its checksums verified by etherparse (an independent parser).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{IpNumber, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use rvs_dataplane::addr::{Family, V4, V6};
use rvs_dataplane::config::{
    Config, DestConfig, Fwd, FwmarkRule, Persistence, ServiceConfig, ServiceKey, Sysctl, TunConfig,
    TunCsum, TunKind,
};
use rvs_dataplane::l3::Route;
use rvs_dataplane::pipeline::buf::{Buf, TxCsum, VecBuf};
use rvs_dataplane::pipeline::frag_hold::{FRAG_HOLD_MAX, FRAG_HOLD_MS, FRAG_HOLD_PER_DATAGRAM};
use rvs_dataplane::pipeline::worker::{Out, PathDrop, PortInfo, Presence, TxOffloads, Worker};
use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::shard::ShardParams;

const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc1];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const RS1_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
const RS1: [u8; 4] = [10, 0, 0, 11];
const VIP: [u8; 4] = [10, 0, 0, 100];
const CLIENT: [u8; 4] = [192, 168, 7, 7];

fn v4(a: [u8; 4]) -> V4 {
    V4(u32::from(Ipv4Addr::from(a)))
}

fn v6(s: &str) -> V6 {
    V6::from_ip(s.parse().unwrap()).unwrap()
}

fn presence() -> Arc<Presence> {
    presence_with(TxOffloads::default())
}

fn presence_with(tx_offload: TxOffloads) -> Arc<Presence> {
    let port = PortInfo {
        name: "p0".into(),
        mac: LB_MAC,
        addrs4: vec![(v4([10, 0, 0, 1]), 24)],
        addrs6: vec![(v6("fd00::1"), 64)],
        mtu: 1500,
        tx_offload,
    };
    let default = (
        V4(0),
        0,
        Route {
            port: 0,
            via: Some(v4([10, 0, 0, 254])),
        },
    );
    let default6 = (
        V6::default(),
        0,
        Route {
            port: 0,
            via: Some(v6("fd00::fe")),
        },
    );
    Arc::new(
        Presence::new(
            vec![port],
            &[default],
            &[default6],
            vec![(v4(RS1), RS1_MAC, 0), (v4([10, 0, 0, 254]), GW_MAC, 0)],
            vec![(v6("fd00::11"), RS1_MAC, 0), (v6("fd00::fe"), GW_MAC, 0)],
        )
        .unwrap(),
    )
}

fn service(fwd: Fwd, tun: TunConfig, persist: bool) -> Config<V4> {
    let mut s = ServiceConfig::new(
        ServiceKey::Addr {
            proto: Proto::Tcp,
            vaddr: v4(VIP),
            vport: 80,
        },
        SchedKind::Rr,
    );
    s.dests = vec![DestConfig {
        addr: v4(RS1),
        port: 8080,
        weight: 1,
        fwd,
        tun,
        ..Default::default()
    }];
    if persist {
        s.persistence = Some(Persistence {
            timeout_ms: 300_000,
            prefix: 24,
        });
    }
    s.rebuild_tables();
    let mut u = ServiceConfig::new(
        ServiceKey::Addr {
            proto: Proto::Udp,
            vaddr: v4(VIP),
            vport: 53,
        },
        SchedKind::Rr,
    );
    u.dests = vec![DestConfig {
        addr: v4(RS1),
        port: 53,
        weight: 1,
        fwd,
        tun,
        ..Default::default()
    }];
    u.rebuild_tables();
    Config::new(vec![s, u], Sysctl::default()).unwrap()
}

fn service6(fwd: Fwd) -> Config<V6> {
    service6_tun(fwd, TunConfig::default())
}

fn service6_tun(fwd: Fwd, tun: TunConfig) -> Config<V6> {
    let mut s = ServiceConfig::new(
        ServiceKey::Addr {
            proto: Proto::Tcp,
            vaddr: v6("fd00::100"),
            vport: 80,
        },
        SchedKind::Rr,
    );
    s.dests = vec![DestConfig {
        addr: v6("fd00::11"),
        port: 80,
        weight: 1,
        fwd,
        tun,
        ..Default::default()
    }];
    s.rebuild_tables();
    Config::new(vec![s], Sysctl::default()).unwrap()
}

fn worker(cfg4: Config<V4>, cfg6: Config<V6>, id: u32, workers: u32) -> Worker<VecBuf> {
    Worker::new(
        id,
        workers,
        ShardParams {
            capacity: 1024,
            ..Default::default()
        },
        (Arc::new(cfg4), Arc::new(cfg6)),
        presence(),
        Box::new(|| Some(VecBuf::empty())),
        0,
    )
}

fn tcp_frame(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    syn: bool,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4(src, dst, ttl)
        .tcp(sport, dport, 1000, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

const CLIENT6: &str = "2001:db8::7";
const VIP6: &str = "fd00::100";

/// A SYN from the IPv6 client to the IPv6 VIP's port 80, carrying `payload`.
fn syn6(payload: &[u8]) -> Vec<u8> {
    let (c6, vip6): (Ipv6Addr, Ipv6Addr) = (CLIENT6.parse().unwrap(), VIP6.parse().unwrap());
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv6(c6.octets(), vip6.octets(), 64)
        .tcp(40000, 80, 1, 100)
        .syn()
        .write(&mut v, payload)
        .unwrap();
    v
}

/// Run frames through a worker; return what it sent.
fn run(w: &mut Worker<VecBuf>, frames: &[Vec<u8>], now: u64) -> Vec<Out<VecBuf>> {
    let mut outs = Vec::new();
    for f in frames {
        w.rx(0, VecBuf::from_frame(f), now, &mut |o| outs.push(o));
    }
    outs
}

fn tx(outs: Vec<Out<VecBuf>>) -> Vec<Vec<u8>> {
    outs.into_iter()
        .filter_map(|o| match o {
            Out::Tx { buf, .. } => Some(buf.data().to_vec()),
            _ => None,
        })
        .collect()
}

/// Parse with etherparse and verify IPv4 header and TCP/UDP checksums.
fn check(frame: &[u8]) -> SlicedPacket<'_> {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses the output");
    if let Some(NetSlice::Ipv4(ip)) = &p.net {
        let h = ip.header().to_header();
        assert_eq!(
            h.header_checksum,
            h.calc_header_checksum(),
            "IPv4 header checksum"
        );
        match &p.transport {
            Some(TransportSlice::Tcp(t)) => {
                let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
                assert_eq!(t.checksum(), want, "TCP checksum");
            }
            Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
                let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
                assert_eq!(u.checksum(), want, "UDP checksum");
            }
            _ => {}
        }
    }
    p
}

fn eth_dst(f: &[u8]) -> [u8; 6] {
    f[0..6].try_into().unwrap()
}

#[test]
fn dr_rewrites_only_the_mac_and_the_ttl() {
    let mut w = worker(
        service(Fwd::Droute, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let input = tcp_frame(CLIENT, 40000, VIP, 80, true, 64, b"");
    let out = tx(run(&mut w, std::slice::from_ref(&input), 1));
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(eth_dst(f), RS1_MAC);
    assert_eq!(&f[6..12], &LB_MAC);
    let p = check(f);
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        panic!()
    };
    assert_eq!(ip.header().destination(), VIP, "DR leaves the VIP in place");
    assert_eq!(ip.header().ttl(), 63);
    // Everything above L3 is untouched.
    assert_eq!(&f[34..], &input[34..]);
}

#[test]
fn nat_rewrites_both_directions_with_valid_checksums() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let out = tx(run(
        &mut w,
        &[tcp_frame(CLIENT, 40000, VIP, 80, true, 64, b"hello")],
        1,
    ));
    let p = check(&out[0]);
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport) else {
        panic!()
    };
    assert_eq!(
        (ip.header().destination(), t.destination_port()),
        (RS1, 8080)
    );
    assert_eq!(eth_dst(&out[0]), RS1_MAC);
    // The dest's reply goes back as the VIP, toward the client through the gateway.
    let mut reply = Vec::new();
    PacketBuilder::ethernet2(RS1_MAC, LB_MAC)
        .ipv4(RS1, CLIENT, 64)
        .tcp(8080, 40000, 5000, 64240)
        .syn()
        .ack(1001)
        .write(&mut reply, b"")
        .unwrap();
    let back = tx(run(&mut w, &[reply], 2));
    let p = check(&back[0]);
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport) else {
        panic!()
    };
    assert_eq!((ip.header().source(), t.source_port()), (VIP, 80));
    assert_eq!(eth_dst(&back[0]), GW_MAC);
}

#[test]
fn nat_udp_checksum_stays_valid() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let mut q = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4(CLIENT, VIP, 64)
        .udp(5353, 53)
        .write(&mut q, b"query")
        .unwrap();
    let out = tx(run(&mut w, &[q], 1));
    let p = check(&out[0]);
    let Some(TransportSlice::Udp(u)) = p.transport else {
        panic!()
    };
    assert_eq!(u.destination_port(), 53);
}

#[test]
fn ipip_tunnel_wraps_the_untouched_packet() {
    let mut w = worker(
        service(Fwd::Tunnel, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let input = tcp_frame(CLIENT, 40000, VIP, 80, true, 64, b"x");
    let out = tx(run(&mut w, std::slice::from_ref(&input), 1));
    let f = &out[0];
    let p = check(f);
    let Some(NetSlice::Ipv4(outer)) = &p.net else {
        panic!()
    };
    assert_eq!(outer.header().protocol(), IpNumber::IPV4);
    assert_eq!(outer.header().source(), [10, 0, 0, 1]);
    assert_eq!(outer.header().destination(), RS1);
    // Inner packet: the client's, with the TTL decremented.
    let inner = &f[34..];
    let ih = etherparse::Ipv4HeaderSlice::from_slice(inner).unwrap();
    assert_eq!((ih.source(), ih.destination(), ih.ttl()), (CLIENT, VIP, 63));
    assert_eq!(&inner[20..], &input[34..]);
}

/// A buffer with a NIC behind it: it takes every checksum offload request and records it.
struct NicBuf(VecBuf, Option<TxCsum>);

impl Buf for NicBuf {
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        self.0.prepend(n)
    }
    fn adj(&mut self, n: usize) {
        self.0.adj(n)
    }
    fn trim(&mut self, len: usize) {
        self.0.trim(len)
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        self.0.append(n)
    }
    fn offload_tx_csum(&mut self, req: TxCsum) -> bool {
        self.1 = Some(req);
        true
    }
}

/// One's complement sum of big-endian 16-bit words, written here independently of the
/// crate's checksum module.
fn ones_sum(data: &[u8], init: u32) -> u16 {
    let mut s = init;
    for c in data.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// What the NIC does with the request: the IPv4 header checksum, and the UDP checksum over
/// the datagram whose checksum field holds the pseudo-header sum.
fn nic_completes(f: &mut [u8], req: TxCsum) {
    let (l3, l4) = (
        usize::from(req.l2_len),
        usize::from(req.l2_len + req.l3_len),
    );
    if req.ip {
        assert_eq!(
            &f[l3 + 10..l3 + 12],
            &[0, 0],
            "header checksum left 0 for the NIC"
        );
        let c = !ones_sum(&f[l3..l4], 0);
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    if req.udp {
        let c = match !ones_sum(&f[l4..], 0) {
            0 => 0xffff,
            c => c,
        };
        f[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
    }
}

#[test]
fn tunnel_checksums_go_to_the_nic_when_the_port_offers_them() {
    // (IPv6, tunnel, its checksum option, which checksums the NIC may take: header, UDP).
    let kinds = [
        (false, TunKind::Ipip, TunCsum::NoCsum, (true, false)),
        (false, TunKind::Gue, TunCsum::NoCsum, (true, false)),
        (false, TunKind::Gue, TunCsum::Csum, (true, true)),
        (false, TunKind::Gre, TunCsum::Csum, (true, false)),
        // IPv6 has no header checksum, and GUE over IPv6 always carries a UDP one.
        (true, TunKind::Gue, TunCsum::NoCsum, (false, true)),
        (true, TunKind::Ipip, TunCsum::NoCsum, (false, false)),
    ];
    for (six, kind, csum, (ip, udp)) in kinds {
        let tun = TunConfig {
            kind,
            port: 6080,
            csum,
        };
        let (cfg4, cfg6) = if six {
            (Config::default(), service6_tun(Fwd::Tunnel, tun))
        } else {
            (service(Fwd::Tunnel, tun, false), Config::default())
        };
        let input = if six {
            syn6(b"offload me")
        } else {
            tcp_frame(CLIENT, 40000, VIP, 80, true, 64, b"offload me")
        };
        let mut soft = worker(cfg4.clone(), cfg6.clone(), 0, 1);
        let want = tx(run(&mut soft, std::slice::from_ref(&input), 1));
        check(&want[0]);
        for offer in [
            TxOffloads {
                ipv4: true,
                udp: true,
            },
            TxOffloads {
                ipv4: true,
                udp: false,
            },
            TxOffloads {
                ipv4: false,
                udp: true,
            },
        ] {
            let mut nic: Worker<NicBuf> = Worker::new(
                0,
                1,
                ShardParams {
                    capacity: 1024,
                    ..Default::default()
                },
                (Arc::new(cfg4.clone()), Arc::new(cfg6.clone())),
                presence_with(offer),
                Box::new(|| Some(NicBuf(VecBuf::empty(), None))),
                0,
            );
            let mut outs = Vec::new();
            nic.rx(0, NicBuf(VecBuf::from_frame(&input), None), 1, &mut |o| {
                outs.push(o)
            });
            let Some(Out::Tx { buf, .. }) = outs.pop() else {
                panic!("{kind:?}: nothing sent")
            };
            let asked = (ip && offer.ipv4, udp && offer.udp);
            let mut f = buf.0.data().to_vec();
            match buf.1 {
                Some(req) => {
                    assert_eq!((req.ip, req.udp), asked, "{kind:?} {offer:?}");
                    let l3_len = if six { 40 } else { 20 };
                    assert_eq!((req.l2_len, req.l3_len, req.v6), (14, l3_len, six));
                    nic_completes(&mut f, req);
                }
                None => assert_eq!(asked, (false, false), "{kind:?} {offer:?}: not asked"),
            }
            assert_eq!(
                f, want[0],
                "{kind:?} {offer:?}: the NIC's result is the software one"
            );
        }
    }
}

#[test]
fn gue_and_gre_tunnels_carry_the_inner_packet() {
    for (kind, proto) in [(TunKind::Gue, IpNumber::UDP), (TunKind::Gre, IpNumber::GRE)] {
        let tun = TunConfig {
            kind,
            port: 6080,
            ..Default::default()
        };
        let mut w = worker(service(Fwd::Tunnel, tun, false), Config::default(), 0, 1);
        let input = tcp_frame(CLIENT, 40000, VIP, 80, true, 64, b"x");
        let out = tx(run(&mut w, std::slice::from_ref(&input), 1));
        let p = check(&out[0]);
        let Some(NetSlice::Ipv4(outer)) = &p.net else {
            panic!()
        };
        assert_eq!(outer.header().protocol(), proto);
        let hdr = if kind == TunKind::Gue { 12 } else { 4 };
        assert_eq!(&out[0][34 + hdr + 20..], &input[34..], "{kind:?}");
        if kind == TunKind::Gue {
            assert_eq!(u16::from_be_bytes([out[0][36], out[0][37]]), 6080);
        }
    }
}

#[test]
fn tunnel_with_df_over_the_mtu_sends_frag_needed_to_the_client() {
    let mut w = worker(
        service(Fwd::Tunnel, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let mut big = Vec::new();
    let b = PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4(CLIENT, VIP, 64)
        .tcp(40000, 80, 1, 100)
        .syn();
    b.write(&mut big, &[0u8; 1460]).unwrap();
    // etherparse sets DF by default.
    let outs = run(&mut w, &[big], 1);
    assert!(outs.iter().any(|o| matches!(o, Out::Drop(_))));
    let sent = tx(outs);
    assert_eq!(sent.len(), 1);
    let p = check(&sent[0]);
    let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
        panic!("not ICMP")
    };
    assert_eq!(
        u16::from_be_bytes([icmp.bytes5to8()[2], icmp.bytes5to8()[3]]),
        1480,
        "MTU minus the outer header"
    );
    // IPVS checks the MTU while the packet still holds its local route to the VIP.
    assert_eq!(icmp4_error_of(&sent[0]), (VIP, CLIENT, 3, 4));
    assert_eq!(w.counters().drops_of(PathDrop::FragNeeded), 1);
}

/// An ICMPv4 error the appliance sent: (source, destination, type, code), with its IPv4
/// header and ICMP checksums checked.
fn icmp4_error_of(f: &[u8]) -> ([u8; 4], [u8; 4], u8, u8) {
    let p = check(f);
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) = (&p.net, &p.transport)
    else {
        panic!("not ICMP")
    };
    let want = icmp.icmp_type().calc_checksum(icmp.payload());
    assert_eq!(icmp.checksum(), want, "ICMP checksum");
    (
        ip.header().source(),
        ip.header().destination(),
        icmp.type_u8(),
        icmp.code_u8(),
    )
}

/// An ICMPv6 error the appliance sent: (source, destination, type), its checksum checked.
fn icmp6_error_of(f: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Icmpv6(icmp))) = (&p.net, &p.transport)
    else {
        panic!("not ICMPv6")
    };
    let (src, dst) = (ip.header().source(), ip.header().destination());
    let want = icmp
        .icmp_type()
        .calc_checksum(src, dst, icmp.payload())
        .unwrap();
    assert_eq!(icmp.checksum(), want, "ICMPv6 checksum");
    (Ipv6Addr::from(src), Ipv6Addr::from(dst), icmp.type_u8())
}

/// IPVS decrements the TTL while a packet to a VIP still holds its local route, so the time
/// exceeded comes from the VIP (a traceroute to the VIP ends at the VIP), for every method.
#[test]
fn ttl_of_one_to_a_vip_gets_time_exceeded_from_the_vip() {
    for fwd in [Fwd::Droute, Fwd::Masq, Fwd::Tunnel] {
        let mut w = worker(
            service(fwd, TunConfig::default(), false),
            Config::default(),
            0,
            1,
        );
        let input = tcp_frame(CLIENT, 40000, VIP, 80, true, 1, b"");
        let sent = tx(run(&mut w, std::slice::from_ref(&input), 1));
        assert_eq!(sent.len(), 1, "{fwd:?}");
        assert_eq!(icmp4_error_of(&sent[0]), (VIP, CLIENT, 11, 0), "{fwd:?}");
        assert_eq!(eth_dst(&sent[0]), CLIENT_MAC, "back to the previous hop");
        assert_eq!(&sent[0][14 + 28..], &input[14..], "the packet as it came");
        assert_eq!(w.counters().drops_of(PathDrop::TtlExceeded), 1);
        assert_eq!(w.counters().icmp_errors_sent.get(), 1);
    }
}

/// The kernel limits the time exceeded it sends (`icmp_msgs_per_sec`, `icmp_msgs_burst`:
/// 1000 and 50 by default) and never path MTU discovery: a flood of TTL 1 toward a VIP gets
/// the burst, then the rate; a flood of packets too big for the tunnel gets an error each.
#[test]
fn time_exceeded_is_rate_limited_and_frag_needed_is_not() {
    let mut w = worker(
        service(Fwd::Tunnel, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let ttl1: Vec<Vec<u8>> = (0..200u16)
        .map(|i| tcp_frame(CLIENT, 40000 + i, VIP, 80, true, 1, b""))
        .collect();
    let sent = tx(run(&mut w, &ttl1, 1));
    assert_eq!(sent.len(), 50, "the burst");
    assert_eq!(w.counters().icmp_errors_ratelimited.get(), 150);
    assert_eq!(w.counters().drops_of(PathDrop::TtlExceeded), 200);
    // 10 ms later, 10 more (1000 a second).
    assert_eq!(tx(run(&mut w, &ttl1, 11)).len(), 10);
    let big: Vec<Vec<u8>> = (0..100u16)
        .map(|i| {
            let mut f = Vec::new();
            PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
                .ipv4(CLIENT, VIP, 64)
                .tcp(50000 + i, 80, 1, 100)
                .syn()
                .write(&mut f, &[0u8; 1460])
                .unwrap();
            f
        })
        .collect();
    assert_eq!(tx(run(&mut w, &big, 11)).len(), 100, "one frag needed each");
    assert_eq!(w.counters().icmp_errors_ratelimited.get(), 340);
}

/// A NAT reply is routed through (the kernel's `ip_forward` checks the TTL before IPVS sees
/// it): the time exceeded comes from the appliance's own address toward the dest, about the
/// reply as the dest sent it.
#[test]
fn ttl_of_one_on_a_nat_reply_gets_time_exceeded_from_the_port_address() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    assert_eq!(
        tx(run(
            &mut w,
            &[tcp_frame(CLIENT, 40000, VIP, 80, true, 64, b"")],
            1
        ))
        .len(),
        1
    );
    let mut reply = Vec::new();
    PacketBuilder::ethernet2(RS1_MAC, LB_MAC)
        .ipv4(RS1, CLIENT, 1)
        .tcp(8080, 40000, 5000, 64240)
        .syn()
        .ack(1001)
        .write(&mut reply, b"")
        .unwrap();
    let sent = tx(run(&mut w, std::slice::from_ref(&reply), 2));
    assert_eq!(sent.len(), 1);
    assert_eq!(icmp4_error_of(&sent[0]), ([10, 0, 0, 1], RS1, 11, 0));
    assert_eq!(eth_dst(&sent[0]), RS1_MAC);
    assert_eq!(
        &sent[0][14 + 28..],
        &reply[14..],
        "not rewritten to the VIP"
    );
}

#[test]
fn hop_limit_of_one_to_an_ipv6_vip_gets_time_exceeded_from_the_vip() {
    for fwd in [Fwd::Droute, Fwd::Masq] {
        let mut w = worker(Config::default(), service6(fwd), 0, 1);
        let (c6, vip6): (Ipv6Addr, Ipv6Addr) = (CLIENT6.parse().unwrap(), VIP6.parse().unwrap());
        let mut syn = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
            .ipv6(c6.octets(), vip6.octets(), 1)
            .tcp(40000, 80, 1, 100)
            .syn()
            .write(&mut syn, b"")
            .unwrap();
        let sent = tx(run(&mut w, std::slice::from_ref(&syn), 1));
        assert_eq!(sent.len(), 1, "{fwd:?}");
        assert_eq!(icmp6_error_of(&sent[0]), (vip6, c6, 3), "{fwd:?}");
        assert_eq!(&sent[0][14 + 48..], &syn[14..]);
        assert_eq!(w.counters().drops_of(PathDrop::TtlExceeded), 1);
    }
}

#[test]
fn arp_and_echo_are_answered_for_the_vip() {
    let mut w = worker(
        service(Fwd::Droute, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let mut req = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, [0xff; 6])
        .arp(
            etherparse::ArpPacket::new(
                etherparse::ArpHardwareId::ETHERNET,
                etherparse::EtherType::IPV4,
                etherparse::ArpOperation::REQUEST,
                &CLIENT_MAC,
                &[10, 0, 0, 9],
                &[0; 6],
                &VIP,
            )
            .unwrap(),
        )
        .write(&mut req)
        .unwrap();
    let mut ping = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut ping, b"ping")
        .unwrap();
    let out = tx(run(&mut w, &[req, ping], 1));
    assert_eq!(out.len(), 2);
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let Some(NetSlice::Arp(a)) = p.net else {
        panic!()
    };
    assert_eq!(a.operation(), etherparse::ArpOperation::REPLY);
    assert_eq!(
        (a.sender_hw_addr(), a.sender_protocol_addr()),
        (&LB_MAC[..], &VIP[..])
    );
    let p = check(&out[1]);
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
        panic!()
    };
    assert_eq!(icmp.type_u8(), 0);
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!()
    };
    assert_eq!(
        (ip.header().source(), ip.header().destination()),
        (VIP, CLIENT)
    );
    assert_eq!(
        icmp.checksum(),
        icmp.header().icmp_type.calc_checksum(icmp.payload())
    );
}

/// The DR service with its dest at 10.0.0.12, which has no static neighbor.
fn dr_to_unresolved_12() -> Config<V4> {
    let cfg = service(Fwd::Droute, TunConfig::default(), false);
    let mut s = ServiceConfig::clone(&cfg.services[0]);
    s.dests[0].addr = v4([10, 0, 0, 12]);
    s.rebuild_tables();
    Config::new(vec![s], Sysctl::default()).unwrap()
}

#[test]
fn unknown_next_hop_is_resolved_then_the_held_packet_sent() {
    let cfg = dr_to_unresolved_12();
    let mut w = worker(cfg, Config::default(), 0, 1);
    let out = tx(run(
        &mut w,
        &[tcp_frame(CLIENT, 40000, VIP, 80, true, 64, b"")],
        1,
    ));
    assert_eq!(out.len(), 1, "only the ARP request");
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let Some(NetSlice::Arp(a)) = p.net else {
        panic!("an ARP request")
    };
    assert_eq!(a.target_protocol_addr(), &[10, 0, 0, 12]);
    let reply = arp_reply_of_12();
    let out = run(&mut w, std::slice::from_ref(&reply), 2);
    assert_eq!(kernel(&out), [reply], "the reply also reaches the kernel");
    let out = tx(out);
    assert_eq!(out.len(), 1, "the held SYN");
    assert_eq!(eth_dst(&out[0]), [2, 0, 0, 0, 0, 0x12]);
    check(&out[0]);
    assert_eq!(w.counters().kernel.get(), 1);
}

/// A dest's frames go out by the worker's memo of its next hop; a neighbor that changes its
/// MAC (a failover's gratuitous ARP) or fails takes the very next frame with it.
#[test]
fn a_next_hop_changing_its_mac_or_failing_takes_the_next_frame_with_it() {
    let cfg = dr_to_unresolved_12();
    let mut w = worker(cfg, Config::default(), 0, 1);
    let c = w.counters();
    // The configuration's static neighbors.
    let base = c.neigh_entries.get();
    let neigh = || {
        (
            c.neigh_entries.get() - base,
            c.neigh_updated.get(),
            c.neigh_failed.get(),
        )
    };
    let frame = |n: u16| tcp_frame(CLIENT, 40000 + n, VIP, 80, true, 64, b"");
    assert_eq!(tx(run(&mut w, &[frame(0)], 1)).len(), 1, "the ARP request");
    assert_eq!(tx(run(&mut w, &[arp_reply_from_12([0x12; 6])], 2)).len(), 1);
    let macs = |w: &mut Worker<VecBuf>, now: u64| -> Vec<[u8; 6]> {
        let frames: Vec<_> = (1..4).map(frame).collect();
        tx(run(w, &frames, now))
            .iter()
            .map(|f| eth_dst(f))
            .collect()
    };
    assert_eq!(macs(&mut w, 3), [[0x12; 6]; 3]);
    assert_eq!(neigh(), (1, 0, 0), "entries, MAC changes, failures");
    // The dest moves to another MAC: told unasked, the entry turns stale with it.
    let moved = run(&mut w, &[arp_reply_from_12([0x13; 6])], 4);
    assert!(tx(moved).is_empty());
    assert_eq!(neigh(), (1, 1, 0));
    assert_eq!(macs(&mut w, 5), [[0x13; 6]; 3]);
    // Its first use probed it; unanswered, it fails, and the next frame asks again.
    let mut solicits = 0;
    for now in (1005..5005).step_by(1000) {
        let mut outs = Vec::new();
        w.tick(now, &mut |o| outs.push(o));
        solicits += tx(outs).len();
    }
    assert_eq!(solicits, 3, "the probes");
    assert_eq!(neigh(), (0, 1, 1), "failed and freed");
    let out = tx(run(&mut w, &[frame(9)], 6000));
    assert_eq!(out.len(), 1);
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    assert!(
        matches!(p.net, Some(NetSlice::Arp(_))),
        "an ARP request, the frame held"
    );
    assert_eq!(neigh(), (1, 1, 1), "resolving again");
}

/// The frames a worker handed to the kernel interface (of port 0: these tests have one).
fn kernel(outs: &[Out<VecBuf>]) -> Vec<Vec<u8>> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Kernel { port: 0, buf } => Some(buf.data().to_vec()),
            Out::Kernel { port, .. } => panic!("to the kernel of port {port}"),
            _ => None,
        })
        .collect()
}

/// With two workers, the one that asked for a next hop's MAC is not always the one the
/// answer reaches (ARP is not spread by RSS): the receiver hands the others a copy, and the
/// asker learns from it and sends what it held. A copy is only learned from, never answered.
/// The kernel interface gets the reply once, from the receiver (the kernel asks for its own
/// peers, and a reply to us may answer it).
#[test]
fn an_arp_reply_reaching_another_worker_resolves_the_asker() {
    let cfg = dr_to_unresolved_12();
    let mut ws = [
        worker(cfg.clone(), Config::default(), 0, 2),
        worker(cfg, Config::default(), 1, 2),
    ];
    // The worker that owns the flow holds the SYN and asks; the other hands it over.
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, true, 64, b"");
    let owner = (0..2)
        .find(|&i| !tx(w_rx(&mut ws[i], syn.clone())).is_empty())
        .expect("one worker owns the flow");
    let [w0, w1] = &mut ws;
    let (asker, answered) = if owner == 0 { (w0, w1) } else { (w1, w0) };
    let reply = arp_reply_of_12();
    // The reply reaches the other worker, which has nothing held: it hands a copy over, and
    // the frame itself to the kernel.
    let out = run(answered, std::slice::from_ref(&reply), 2);
    assert_eq!(
        kernel(&out),
        std::slice::from_ref(&reply),
        "to the kernel once"
    );
    let copies = handed(out);
    assert_eq!(copies.len(), 1);
    assert_eq!((copies[0].0, &copies[0].2), (owner as u32, &reply));
    assert_eq!(answered.counters().neigh_shared.get(), 1);
    assert_eq!(answered.counters().kernel.get(), 1);
    let mut out = Vec::new();
    asker.rx_handoff(copies[0].1, VecBuf::from_frame(&copies[0].2), 3, &mut |o| {
        out.push(o)
    });
    assert!(kernel(&out).is_empty(), "a copy never reaches the kernel");
    let sent = tx(out);
    assert_eq!(sent.len(), 1, "the held SYN, and no answer to the copy");
    assert_eq!(eth_dst(&sent[0]), [2, 0, 0, 0, 0, 0x12]);
    assert_eq!(
        asker.counters().neigh_shared.get(),
        0,
        "a copy is not shared again"
    );
    assert_eq!(asker.counters().kernel.get(), 0);
}

/// The copies a worker handed to the others, `(worker, port, frame)`; it sent nothing.
fn handed(outs: Vec<Out<VecBuf>>) -> Vec<(u32, u16, Vec<u8>)> {
    outs.into_iter()
        .filter_map(|o| match o {
            Out::Handoff { worker, port, buf } => Some((worker, port, buf.data().to_vec())),
            Out::Tx { .. } => panic!("nothing to send on the answered worker"),
            _ => None,
        })
        .collect()
}

/// A neighbor advertisement from `src` (02:00:00:00:00:12) to `dst` at `eth_dst` for target
/// `src`, solicited; with its target link-layer address option when `lla`.
fn advert(src: &str, dst: &str, eth_dst: [u8; 6], lla: bool) -> Vec<u8> {
    let (s, d): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut body = s.octets().to_vec();
    if lla {
        body.extend([2, 1, 2, 0, 0, 0, 0, 0x12]);
    }
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x12], eth_dst)
        .ipv6(s.octets(), d.octets(), 255)
        .icmpv6_raw(136, 0, [0x60, 0, 0, 0])
        .write(&mut v, &body)
        .unwrap();
    v
}

/// IPv6 as ARP above: an advertisement to the appliance resolves the worker that solicited
/// (through a copy) and reaches the kernel once, from the receiver. The kernel also gets the
/// advertisements it alone asks for: to its interface's link-local address (its probes), and
/// without a link-layer address (the answer to a unicast solicitation), which are not shared.
#[test]
fn a_neighbor_advert_to_the_appliance_resolves_the_asker_and_reaches_the_kernel() {
    let mut cfg = service6(Fwd::Droute);
    let mut s = ServiceConfig::clone(&cfg.services[0]);
    s.dests[0].addr = v6("fd00::12");
    s.rebuild_tables();
    cfg = Config::new(vec![s], Sysctl::default()).unwrap();
    let mut ws = [
        worker(Config::default(), cfg.clone(), 0, 2),
        worker(Config::default(), cfg, 1, 2),
    ];
    let owner = (0..2)
        .find(|&i| !tx(w_rx(&mut ws[i], syn6(b""))).is_empty())
        .expect("one worker owns the flow");
    let [w0, w1] = &mut ws;
    let (asker, answered) = if owner == 0 { (w0, w1) } else { (w1, w0) };
    let na = advert("fd00::12", "fd00::1", LB_MAC, true);
    let out = run(answered, std::slice::from_ref(&na), 2);
    assert_eq!(
        kernel(&out),
        std::slice::from_ref(&na),
        "to the kernel once"
    );
    let copies = handed(out);
    assert_eq!(copies.len(), 1);
    assert_eq!((copies[0].0, &copies[0].2), (owner as u32, &na));
    let mut out = Vec::new();
    asker.rx_handoff(copies[0].1, VecBuf::from_frame(&copies[0].2), 3, &mut |o| {
        out.push(o)
    });
    assert!(kernel(&out).is_empty(), "a copy never reaches the kernel");
    let sent = tx(out);
    assert_eq!(sent.len(), 1, "the held SYN, and no answer to the copy");
    assert_eq!(eth_dst(&sent[0]), [2, 0, 0, 0, 0, 0x12]);
    assert_eq!(asker.counters().neigh_shared.get(), 0);
    assert_eq!(asker.counters().kernel.get(), 0);

    // The kernel's own: no link-layer address, or to its link-local address. Not shared.
    for na in [
        advert("fd00::12", "fd00::1", LB_MAC, false),
        advert("fd00::12", "fe80::1", LB_MAC, true),
    ] {
        let out = run(answered, std::slice::from_ref(&na), 4);
        assert_eq!(kernel(&out), [na]);
        assert!(handed(out).is_empty(), "nothing to share");
    }
    // Not the appliance's: a link-local address at a multicast MAC, a foreign address.
    for na in [
        advert("fd00::12", "fe80::1", [0x33, 0x33, 0, 0, 0, 1], true),
        advert("fd00::12", "fd00::9", LB_MAC, true),
    ] {
        let out = run(answered, &[na], 5);
        assert!(kernel(&out).is_empty());
        assert!(handed(out).is_empty());
    }
    assert_eq!(answered.counters().neigh_shared.get(), 1);
    assert_eq!(answered.counters().kernel.get(), 3);
}

/// 10.0.0.12 (02:00:00:00:00:12) answers the appliance's ARP request.
fn arp_reply_of_12() -> Vec<u8> {
    arp_reply_from_12([2, 0, 0, 0, 0, 0x12])
}

/// An ARP reply to the appliance: 10.0.0.12 is at `mac`.
fn arp_reply_from_12(mac: [u8; 6]) -> Vec<u8> {
    let mut reply = Vec::new();
    PacketBuilder::ethernet2(mac, LB_MAC)
        .arp(
            etherparse::ArpPacket::new(
                etherparse::ArpHardwareId::ETHERNET,
                etherparse::EtherType::IPV4,
                etherparse::ArpOperation::REPLY,
                &mac,
                &[10, 0, 0, 12],
                &LB_MAC,
                &[10, 0, 0, 1],
            )
            .unwrap(),
        )
        .write(&mut reply)
        .unwrap();
    reply
}

fn w_rx(w: &mut Worker<VecBuf>, frame: Vec<u8>) -> Vec<Out<VecBuf>> {
    let mut outs = Vec::new();
    w.rx(0, VecBuf::from_frame(&frame), 1, &mut |o| outs.push(o));
    outs
}

#[test]
fn ipv6_dr_and_neighbor_solicitation() {
    let mut w = worker(Config::default(), service6(Fwd::Droute), 0, 1);
    let vip6: Ipv6Addr = VIP6.parse().unwrap();
    let out = tx(run(&mut w, &[syn6(b"")], 1));
    assert_eq!(eth_dst(&out[0]), RS1_MAC);
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let Some(NetSlice::Ipv6(ip)) = p.net else {
        panic!()
    };
    assert_eq!(ip.header().hop_limit(), 63);
    // A neighbor solicitation for the VIP is answered with an advertisement.
    let (sn, sn_mac) = rvs_dataplane::pipeline::local::solicited_node(vip6);
    let mut b = VecBuf::empty();
    let ends = rvs_dataplane::pipeline::local::Ends {
        eth_src: CLIENT_MAC,
        eth_dst: sn_mac,
        src: "fd00::9".parse().unwrap(),
        dst: sn,
    };
    let ns = rvs_dataplane::wire::icmpv6::NdiscRepr::NeighborSolicit {
        target: vip6,
        lladdr: Some(rvs_dataplane::wire::MacAddr(CLIENT_MAC)),
    };
    assert!(rvs_dataplane::pipeline::local::ndisc(&mut b, &ends, &ns));
    let out = tx(run(&mut w, &[b.data().to_vec()], 2));
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
        panic!()
    };
    assert_eq!(icmp.type_u8(), 136);
    let Some(NetSlice::Ipv6(ip)) = p.net else {
        panic!()
    };
    let want = icmp
        .icmp_type()
        .calc_checksum(
            ip.header().source(),
            ip.header().destination(),
            icmp.payload(),
        )
        .unwrap();
    assert_eq!(icmp.checksum(), want);
}

#[test]
fn frames_of_another_workers_clients_are_handed_over_and_served_there() {
    // Two workers; persistent /24: the client group has one owner.
    let mk = |id| {
        worker(
            service(Fwd::Masq, TunConfig::default(), true),
            Config::default(),
            id,
            2,
        )
    };
    let mut ws = [mk(0), mk(1)];
    let mut handed = 0;
    let mut sent = 0;
    for host in 1..=40u8 {
        let f = tcp_frame([192, 168, host, 7], 40000, VIP, 80, true, 64, b"");
        for first in 0..2usize {
            let mut outs = Vec::new();
            ws[first].rx(0, VecBuf::from_frame(&f), 1, &mut |o| outs.push(o));
            for o in outs {
                match o {
                    Out::Handoff { worker, port, buf } => {
                        handed += 1;
                        let mut again = Vec::new();
                        ws[worker as usize].rx_handoff(port, buf, 1, &mut |o| again.push(o));
                        sent += tx(again).len();
                    }
                    Out::Tx { .. } => sent += 1,
                    other => panic!("{other:?}"),
                }
            }
        }
    }
    assert_eq!(sent, 80, "every SYN forwarded, by its owner");
    assert_eq!(
        handed, 40,
        "exactly one of the two entry workers is the owner"
    );
    // Each client group has exactly one template, in its owner's shard.
    let t0 = ws[0].f4.shard.counters().templates.get();
    let t1 = ws[1].f4.shard.counters().templates.get();
    assert_eq!(t0 + t1, 40);
    assert!(t0 > 5 && t1 > 5, "spread: {t0} / {t1}");
}

#[test]
fn garbage_frames_are_counted_and_dropped_never_panicking() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let good = tcp_frame(CLIENT, 40000, VIP, 80, true, 64, b"abc");
    let mut rng = rvs_dataplane::rng::Rng::new(5);
    for i in 0..2000 {
        let mut f = good.clone();
        if i % 2 == 0 {
            f.truncate(rng.below(f.len() as u64) as usize);
        } else {
            let at = 12 + rng.below((f.len() - 12) as u64) as usize;
            f[at] = rng.next_u32() as u8;
        }
        run(&mut w, &[f], 1 + i);
    }
    let c = w.counters();
    assert!(c.drops_of(PathDrop::Truncated) > 0);
    assert_eq!(c.rx.get(), 2000);
}

#[test]
fn vlan_tagged_frames_are_forwarded_and_answered_on_their_vlan() {
    let mut w = worker(
        service(Fwd::Droute, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let mut syn = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .single_vlan(etherparse::VlanId::try_new(42).unwrap())
        .ipv4(CLIENT, VIP, 64)
        .tcp(40000, 80, 1, 100)
        .syn()
        .write(&mut syn, b"")
        .unwrap();
    let mut req = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, [0xff; 6])
        .single_vlan(etherparse::VlanId::try_new(42).unwrap())
        .arp(
            etherparse::ArpPacket::new(
                etherparse::ArpHardwareId::ETHERNET,
                etherparse::EtherType::IPV4,
                etherparse::ArpOperation::REQUEST,
                &CLIENT_MAC,
                &[10, 0, 0, 9],
                &[0; 6],
                &VIP,
            )
            .unwrap(),
        )
        .write(&mut req)
        .unwrap();
    let out = tx(run(&mut w, &[syn, req], 1));
    assert_eq!(out.len(), 2);
    for f in &out {
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let vid = match p.link_exts.first() {
            Some(etherparse::LinkExtSlice::Vlan(v)) => v.vlan_identifier().value(),
            _ => panic!("untagged: {:?}", p.link_exts),
        };
        assert_eq!(vid, 42);
    }
    check(&out[0]);
    let p = SlicedPacket::from_ethernet(&out[1]).unwrap();
    assert!(
        matches!(p.net, Some(NetSlice::Arp(a)) if a.operation() == etherparse::ArpOperation::REPLY)
    );
}

/// An ICMPv4 error frame quoting `quoted` (an IP packet), from `src` to `dst`.
fn icmp_error_frame(src: [u8; 4], dst: [u8; 4], t: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    let icmp = etherparse::Icmpv4Type::Unknown {
        type_u8: t,
        code_u8: code,
        bytes5to8: [0; 4],
    };
    PacketBuilder::ethernet2(RS1_MAC, LB_MAC)
        .ipv4(src, dst, 64)
        .icmpv4(icmp)
        .write(&mut f, quoted)
        .unwrap();
    f
}

#[test]
fn icmp_errors_of_a_nat_conn_are_translated_both_ways() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let fwd = tx(run(
        &mut w,
        &[tcp_frame(CLIENT, 40000, VIP, 80, true, 64, b"")],
        1,
    ));
    // The dest refuses: port unreachable quoting the packet it got (client -> RS1:8080).
    let err = icmp_error_frame(RS1, CLIENT, 3, 3, &fwd[0][14..14 + 28]);
    let back = tx(run(&mut w, &[err], 2));
    assert_eq!(back.len(), 1);
    let p = check(&back[0]);
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) = (&p.net, &p.transport)
    else {
        panic!()
    };
    assert_eq!(
        (ip.header().source(), ip.header().destination()),
        (VIP, CLIENT),
        "from the VIP"
    );
    assert_eq!(
        icmp.checksum(),
        icmp.header().icmp_type.calc_checksum(icmp.payload())
    );
    let q = etherparse::Ipv4HeaderSlice::from_slice(icmp.payload()).unwrap();
    assert_eq!(
        q.destination(),
        VIP,
        "the quote names the VIP, as the client sent it"
    );
    assert_eq!(q.to_header().calc_header_checksum(), q.header_checksum());
    assert_eq!(
        u16::from_be_bytes([icmp.payload()[22], icmp.payload()[23]]),
        80
    );
    // A router on the client side: the reply (VIP -> client) needs fragmentation.
    let mut reply_quote = Vec::new();
    PacketBuilder::ipv4(VIP, CLIENT, 63)
        .tcp(80, 40000, 1, 100)
        .write(&mut reply_quote, b"")
        .unwrap();
    let err = icmp_error_frame([172, 16, 0, 1], VIP, 3, 4, &reply_quote[..28]);
    let to_rs = tx(run(&mut w, &[err], 3));
    let p = check(&to_rs[0]);
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) = (&p.net, &p.transport)
    else {
        panic!()
    };
    assert_eq!(ip.header().destination(), RS1);
    let q = etherparse::Ipv4HeaderSlice::from_slice(icmp.payload()).unwrap();
    assert_eq!(
        q.source(),
        RS1,
        "the quote names the dest, as it sent the reply"
    );
    assert_eq!(
        u16::from_be_bytes([icmp.payload()[20], icmp.payload()[21]]),
        8080
    );
    assert_eq!(
        icmp.checksum(),
        icmp.header().icmp_type.calc_checksum(icmp.payload())
    );
    // No conn: counted and dropped.
    let stray = icmp_error_frame(
        RS1,
        [1, 2, 3, 4],
        3,
        3,
        &fwd[0][14..14 + 28]
            .iter()
            .map(|b| b ^ 1)
            .collect::<Vec<_>>(),
    );
    assert!(tx(run(&mut w, &[stray], 4)).is_empty());
    assert_eq!(w.counters().drops_of(PathDrop::IcmpUnknownFlow), 1);
}

/// Split an Ethernet+IPv4 frame into the fragments of datagram `ident`, cut at the IP
/// payload offsets `cuts` (multiples of 8, ascending).
fn fragments_at(frame: &[u8], ident: u16, cuts: &[usize]) -> Vec<Vec<u8>> {
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&frame[14..]).unwrap();
    let payload = &frame[14 + 20..14 + usize::from(ip.total_len())];
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(payload.len());
    bounds
        .windows(2)
        .map(|b| {
            let mut h = ip.to_header();
            h.identification = ident;
            h.dont_fragment = false;
            h.more_fragments = b[1] < payload.len();
            h.fragment_offset = etherparse::IpFragOffset::try_new((b[0] / 8) as u16).unwrap();
            h.set_payload_len(b[1] - b[0]).unwrap();
            h.header_checksum = h.calc_header_checksum();
            let mut f = frame[..14].to_vec();
            h.write(&mut f).unwrap();
            f.extend_from_slice(&payload[b[0]..b[1]]);
            f
        })
        .collect()
}

/// A UDP query from the client to the VIP's port 53 with `len` bytes of payload.
fn udp_query(len: usize) -> Vec<u8> {
    let mut q = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4(CLIENT, VIP, 64)
        .udp(5353, 53)
        .write(&mut q, &(0..len).map(|i| i as u8).collect::<Vec<_>>())
        .unwrap();
    q
}

/// The fragment offset of an IPv4 frame, in bytes.
fn frag_offset(f: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([f[20], f[21]]) & 0x1fff) * 8
}

fn drops(w: &Worker<VecBuf>) -> u64 {
    let c = w.counters();
    PathDrop::ALL.iter().map(|&r| c.drops_of(r)).sum()
}

/// Two workers and a firewall-mark service whose rule covers a prefix of VIPs (not one
/// address) and one port: a datagram's later fragments carry no port, yet they must reach the
/// worker its first fragment went to (the conn's owner), or the dest never gets them.
#[test]
fn fragments_to_a_fwmark_prefix_meet_their_first_with_two_workers() {
    let mut s = ServiceConfig::new(ServiceKey::Fwmark(7), SchedKind::Rr);
    s.dests = vec![DestConfig {
        addr: v4(RS1),
        port: 53,
        weight: 1,
        fwd: Fwd::Masq,
        ..Default::default()
    }];
    s.rebuild_tables();
    let rule = FwmarkRule {
        mark: 7,
        proto: Some(Proto::Udp),
        addr: v4([10, 9, 0, 0]),
        prefix: 24,
        port_lo: 53,
        port_hi: 53,
    };
    let cfg = || {
        Config::new(vec![s.clone()], Sysctl::default())
            .unwrap()
            .with_fwmark_rules(vec![rule])
            .unwrap()
    };
    let mut ws = [
        worker(cfg(), Config::default(), 0, 2),
        worker(cfg(), Config::default(), 1, 2),
    ];
    let mut to_dest = 0;
    for host in 1..=16u8 {
        let mut q = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
            .ipv4([192, 168, host, 9], [10, 9, 0, 7], 64)
            .udp(5353, 53)
            .write(&mut q, &[7u8; 100])
            .unwrap();
        for f in fragments_at(&q, u16::from(host), &[56]) {
            // Both fragments arrive at worker 0 (a NIC hashing the source address).
            let mut outs = Vec::new();
            ws[0].rx(0, VecBuf::from_frame(&f), 1, &mut |o| outs.push(o));
            for o in outs {
                match o {
                    Out::Handoff { worker, port, buf } => {
                        let mut again = Vec::new();
                        ws[worker as usize].rx_handoff(port, buf, 1, &mut |o| again.push(o));
                        to_dest += tx(again).len();
                    }
                    Out::Tx { .. } => to_dest += 1,
                    Out::Drop(_) => {}
                    other => panic!("{other:?}"),
                }
            }
        }
    }
    assert_eq!(
        to_dest, 32,
        "both fragments of every datagram reach the dest"
    );
    let held: u64 = ws.iter().map(|w| w.counters().frags_held.get()).sum();
    assert_eq!(
        held, 0,
        "no later fragment waited for a first that went elsewhere"
    );
}

#[test]
fn later_fragments_follow_the_first() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let f = fragments_at(&udp_query(100), 4242, &[56]);
    let out = tx(run(&mut w, &f, 2));
    assert_eq!(out.len(), 2);
    for f in &out {
        let h = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
        assert_eq!(h.destination(), RS1, "both fragments go to the dest");
        assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
        assert_eq!(eth_dst(f), RS1_MAC);
    }
    // The first still carries the port rewrite.
    assert_eq!(u16::from_be_bytes([out[0][36], out[0][37]]), 53);
    assert_eq!(w.counters().frags_held.get(), 0);
}

/// IPVS sees a datagram reassembled whatever order its fragments came in: fragments ahead of
/// their first wait for it, then follow it in the order they came, and the dest can
/// reassemble a datagram whose checksum holds.
#[test]
fn fragments_before_their_first_are_held_then_follow_it() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let f = fragments_at(&udp_query(200), 4242, &[64, 136]);
    let mut outs = run(&mut w, &[f[2].clone()], 1);
    outs.extend(run(&mut w, &[f[1].clone()], 2));
    assert!(outs.is_empty(), "held: nothing out, nothing dropped");
    assert_eq!(w.counters().frags_held.get(), 2);
    let out = tx(run(&mut w, &[f[0].clone()], 3));
    let offsets: Vec<usize> = out.iter().map(|f| frag_offset(f)).collect();
    assert_eq!(
        offsets,
        [0, 136, 64],
        "the first, then the held ones as they came"
    );
    let mut datagram = vec![0u8; 208];
    for f in &out {
        let h = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
        assert_eq!((h.source(), h.destination()), (CLIENT, RS1));
        assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
        assert_eq!(h.ttl(), 63);
        assert_eq!(eth_dst(f), RS1_MAC);
        let at = frag_offset(f);
        datagram[at..at + f.len() - 34].copy_from_slice(&f[34..]);
    }
    // Reassembled as the dest would: UDP to RS1:53 with a valid checksum.
    let mut h = etherparse::Ipv4HeaderSlice::from_slice(&out[0][14..])
        .unwrap()
        .to_header();
    h.more_fragments = false;
    h.set_payload_len(datagram.len()).unwrap();
    let (u, payload) = etherparse::UdpHeader::from_slice(&datagram).unwrap();
    assert_eq!(u.destination_port, 53);
    assert_eq!(u.checksum, u.calc_checksum_ipv4(&h, payload).unwrap());
    assert_eq!(drops(&w), 0);
}

#[test]
fn a_datagram_holds_a_bounded_number_of_early_fragments() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let per = usize::from(FRAG_HOLD_PER_DATAGRAM);
    // The first and per + 2 later fragments of 8 bytes.
    let cuts: Vec<usize> = (1..=per + 2).map(|i| i * 8).collect();
    let f = fragments_at(&udp_query(8 * (per + 2)), 7, &cuts);
    let outs = run(&mut w, &f[1..], 1);
    assert_eq!(outs.len(), 2, "only the refused ones come out");
    assert!(outs.iter().all(|o| matches!(o, Out::Drop(_))));
    assert_eq!(w.counters().drops_of(PathDrop::FragHoldFull), 2);
    assert_eq!(w.counters().frags_held.get(), per as u64);
    let out = tx(run(&mut w, &f[..1], 2));
    assert_eq!(out.len(), 1 + per);
    let offsets: Vec<usize> = out.iter().map(|f| frag_offset(f)).collect();
    assert_eq!(offsets, (0..=per).map(|i| i * 8).collect::<Vec<_>>());
}

#[test]
fn held_fragments_whose_first_never_comes_are_freed_and_counted() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let f = fragments_at(&udp_query(200), 99, &[64, 136]);
    assert!(run(&mut w, &f[1..], 10).is_empty());
    let mut outs = Vec::new();
    w.tick(10 + FRAG_HOLD_MS - 1, &mut |o| outs.push(o));
    assert!(outs.is_empty(), "still waiting");
    w.tick(10 + FRAG_HOLD_MS, &mut |o| outs.push(o));
    assert_eq!(outs.len(), 2);
    assert!(outs.iter().all(|o| matches!(o, Out::Drop(_))));
    assert_eq!(w.counters().drops_of(PathDrop::FragHoldTimeout), 2);
    // The first, late: only itself to send.
    let out = tx(run(&mut w, &f[..1], 10 + FRAG_HOLD_MS + 1));
    assert_eq!(out.len(), 1);
    assert_eq!(drops(&w), 2);
}

/// Held fragments are mbufs of the ports' pool: however many datagrams a flood starts, in
/// either family, a worker holds at most its cap, every frame still comes out exactly once,
/// and the hold works again once the flood's fragments time out.
#[test]
fn a_fragment_flood_holds_no_more_than_the_workers_cap() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        service6(Fwd::Droute),
        0,
        1,
    );
    let flood = 3 * FRAG_HOLD_MAX;
    let frames: Vec<Vec<u8>> = (0..flood)
        .map(|i| {
            if i % 2 == 0 {
                fragments_at(&udp_query(16), i as u16, &[8]).remove(1)
            } else {
                frag6(i as u32, 8, false, &[0u8; 16])
            }
        })
        .collect();
    let outs = run(&mut w, &frames, 1);
    assert_eq!(outs.len(), flood - FRAG_HOLD_MAX);
    assert!(outs.iter().all(|o| matches!(o, Out::Drop(_))));
    assert_eq!(w.counters().frags_held.get(), FRAG_HOLD_MAX as u64);
    assert_eq!(
        w.counters().drops_of(PathDrop::FragHoldFull),
        (flood - FRAG_HOLD_MAX) as u64
    );
    let mut outs = Vec::new();
    w.tick(1 + FRAG_HOLD_MS, &mut |o| outs.push(o));
    assert_eq!(outs.len(), FRAG_HOLD_MAX);
    assert_eq!(
        w.counters().drops_of(PathDrop::FragHoldTimeout),
        FRAG_HOLD_MAX as u64
    );
    // Room again: a reordered datagram goes through whole.
    let f = fragments_at(&udp_query(100), 60000, &[56]);
    assert!(run(&mut w, &f[1..], 2 + FRAG_HOLD_MS).is_empty());
    assert_eq!(tx(run(&mut w, &f[..1], 3 + FRAG_HOLD_MS)).len(), 2);
}

/// The other fragments of a datagram go where its first went: to the kernel when it is no
/// service's, dropped (and counted as such) when the engine dropped the first.
#[test]
fn fragments_follow_a_first_that_went_to_the_kernel_or_was_dropped() {
    let mut w = worker(
        service(Fwd::Droute, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    // UDP to a port of the VIP that no service has: the kernel's.
    let mut q = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4(CLIENT, VIP, 64)
        .udp(5353, 5353)
        .write(&mut q, &[1u8; 100])
        .unwrap();
    let f = fragments_at(&q, 1, &[40, 80]);
    let mut outs = run(&mut w, &f[2..], 1);
    outs.extend(run(&mut w, &f[..2], 2));
    let to_kernel = kernel(&outs);
    assert_eq!(to_kernel, [f[0].clone(), f[2].clone(), f[1].clone()]);
    // A TCP segment that starts no conn: the engine drops the first.
    let seg = tcp_frame(CLIENT, 40001, VIP, 80, false, 64, &[2u8; 100]);
    let f = fragments_at(&seg, 2, &[40, 80]);
    let mut outs = run(&mut w, &f[2..], 3);
    outs.extend(run(&mut w, &f[..2], 4));
    assert_eq!(outs.len(), 3);
    assert!(outs.iter().all(|o| matches!(o, Out::Drop(_))));
    assert_eq!(w.counters().drops_of(PathDrop::Engine), 1);
    assert_eq!(w.counters().drops_of(PathDrop::FragFirstDropped), 2);
}

/// One ICMP error per datagram, about its first fragment (the kernel never answers a later
/// IPv4 fragment, and IPVS sees the datagram whole).
#[test]
fn a_later_fragment_out_of_ttl_is_dropped_without_an_error() {
    let mut w = worker(
        service(Fwd::Masq, TunConfig::default(), false),
        Config::default(),
        0,
        1,
    );
    let mut f = fragments_at(&udp_query(100), 5, &[56]);
    // The later fragment with TTL 1 (header checksum fixed).
    f[1][22] = 1;
    f[1][24..26].fill(0);
    let c = !ones_sum(&f[1][14..34], 0);
    f[1][24..26].copy_from_slice(&c.to_be_bytes());
    let out = tx(run(&mut w, &f, 1));
    assert_eq!(out.len(), 1, "the first only");
    assert_eq!(frag_offset(&out[0]), 0);
    assert_eq!(w.counters().drops_of(PathDrop::TtlExceeded), 1);
    assert_eq!(w.counters().icmp_errors_sent.get(), 0);
}

#[test]
fn ipv6_tunnel_and_packet_too_big() {
    let mut w = worker(Config::default(), service6(Fwd::Tunnel), 0, 1);
    let frame = syn6;
    let small = frame(b"x");
    let out = tx(run(&mut w, std::slice::from_ref(&small), 1));
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let Some(NetSlice::Ipv6(outer)) = &p.net else {
        panic!()
    };
    assert_eq!(outer.header().next_header(), IpNumber::IPV6);
    assert_eq!(
        outer.header().source(),
        "fd00::1".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(
        outer.header().destination(),
        "fd00::11".parse::<Ipv6Addr>().unwrap().octets()
    );
    let inner = etherparse::Ipv6HeaderSlice::from_slice(&out[0][54..]).unwrap();
    assert_eq!(inner.hop_limit(), 63);
    assert_eq!(&out[0][54 + 40..], &small[54..], "inner payload untouched");
    // 40 + 20 + 1450 = 1510 bytes inner: with the 40-byte outer header it exceeds 1500.
    let out = tx(run(&mut w, &[frame(&[0u8; 1450])], 2));
    assert_eq!(out.len(), 1);
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Icmpv6(icmp))) = (&p.net, &p.transport)
    else {
        panic!("ICMPv6")
    };
    assert_eq!(icmp.type_u8(), 2, "packet too big");
    assert_eq!(u32::from_be_bytes(icmp.bytes5to8()), 1460);
    assert_eq!(
        ip.header().destination(),
        CLIENT6.parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(
        ip.header().source(),
        VIP6.parse::<Ipv6Addr>().unwrap().octets(),
        "from the VIP"
    );
    let want = icmp
        .icmp_type()
        .calc_checksum(
            ip.header().source(),
            ip.header().destination(),
            icmp.payload(),
        )
        .unwrap();
    assert_eq!(icmp.checksum(), want);
    assert_eq!(w.counters().drops_of(PathDrop::FragNeeded), 1);
}

/// A fragment of IPv6 datagram `ident` from the IPv6 client to the IPv6 VIP, carrying
/// `data` of a TCP segment at byte `offset`.
fn frag6(ident: u32, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let c6: Ipv6Addr = CLIENT6.parse().unwrap();
    let vip6: Ipv6Addr = VIP6.parse().unwrap();
    let mut f = Vec::new();
    f.extend_from_slice(&LB_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[44, 64]);
    f.extend_from_slice(&c6.octets());
    f.extend_from_slice(&vip6.octets());
    let off = ((offset / 8) as u16) << 3 | u16::from(more);
    f.extend_from_slice(&[6, 0]);
    f.extend_from_slice(&off.to_be_bytes());
    f.extend_from_slice(&ident.to_be_bytes());
    f.extend_from_slice(data);
    f
}

#[test]
fn ipv6_fragments_before_their_first_are_held_then_follow_it() {
    let mut w = worker(Config::default(), service6(Fwd::Droute), 0, 1);
    let c6: Ipv6Addr = CLIENT6.parse().unwrap();
    let vip6: Ipv6Addr = VIP6.parse().unwrap();
    let mut whole = Vec::new();
    PacketBuilder::ipv6(c6.octets(), vip6.octets(), 64)
        .tcp(40000, 80, 1, 100)
        .syn()
        .write(&mut whole, &[5u8; 100])
        .unwrap();
    let tcp = &whole[40..];
    let (first, second) = (
        frag6(0x1234_5678, 0, true, &tcp[..64]),
        frag6(0x1234_5678, 64, false, &tcp[64..]),
    );
    assert!(
        run(&mut w, std::slice::from_ref(&second), 1).is_empty(),
        "before its first: held"
    );
    let out = tx(run(&mut w, std::slice::from_ref(&first), 2));
    assert_eq!(out.len(), 2);
    assert_eq!(&out[0][62..], &first[62..], "the first first");
    assert_eq!(&out[1][62..], &second[62..]);
    for f in &out {
        assert_eq!(eth_dst(f), RS1_MAC);
        assert_eq!(f[14 + 7], 63, "hop limit");
    }
    // A later one after the first follows it at once.
    let third = frag6(0x1234_5678, 64, false, &tcp[64..]);
    assert_eq!(tx(run(&mut w, &[third], 3)).len(), 1);
    assert_eq!(w.counters().frags_held.get(), 1);
    assert_eq!(drops(&w), 0);
}

// ---------------------------------------------------------------------------------------
// The staged burst path (with its fast path) against the one-frame general path.

mod burst_vs_single {
    use super::*;
    use proptest::prelude::*;

    /// One frame of a random conversation with the appliance.
    #[derive(Debug, Clone)]
    struct Ev {
        client: u8,
        sport: u16,
        /// 0 SYN, 1 ACK, 2 FIN, 3 RST to VIP:80; 4 UDP to VIP:53; 5 a reply from the dest;
        /// 6 TCP to the appliance's own address; 7 TCP to an address that is neither; 8 and 9
        /// the first and the later fragment of a UDP datagram to VIP:53 (identified by sport).
        kind: u8,
        ttl: u8,
        wrong_mac: bool,
        /// A byte to flip (index into the frame, xor value), for malformed frames.
        flip: Option<(usize, u8)>,
    }

    fn ev() -> impl Strategy<Value = Ev> {
        (
            0u8..4,
            prop_oneof![Just(1000u16), Just(1001), 1024u16..1030],
            0u8..10,
            prop_oneof![4 => Just(64u8), 1 => Just(1u8)],
            prop::bool::weighted(0.05),
            prop::option::weighted(0.1, (0usize..80, 1u8..=255)),
        )
            .prop_map(|(client, sport, kind, ttl, wrong_mac, flip)| Ev {
                client,
                sport,
                kind,
                ttl,
                wrong_mac,
                flip,
            })
    }

    fn frame(e: &Ev) -> Vec<u8> {
        let client = [192, 168, 7, 1 + e.client];
        let dst_mac = if e.wrong_mac {
            [2, 0, 0, 0, 0, 0x77]
        } else {
            LB_MAC
        };
        let b = PacketBuilder::ethernet2(CLIENT_MAC, dst_mac);
        let mut v = Vec::new();
        match e.kind {
            4 => b
                .ipv4(client, VIP, e.ttl)
                .udp(e.sport, 53)
                .write(&mut v, b"q")
                .unwrap(),
            8 | 9 => {
                let mut q = Vec::new();
                b.ipv4(client, VIP, e.ttl)
                    .udp(e.sport, 53)
                    .write(&mut q, &[7u8; 40])
                    .unwrap();
                v = fragments_at(&q, e.sport, &[24]).swap_remove(usize::from(e.kind - 8));
            }
            5 => b
                .ipv4(RS1, client, e.ttl)
                .tcp(8080, e.sport, 7, 64240)
                .ack(1)
                .write(&mut v, b"")
                .unwrap(),
            k => {
                let dst = match k {
                    6 => [10, 0, 0, 1],
                    7 => [10, 0, 0, 99],
                    _ => VIP,
                };
                let t = b.ipv4(client, dst, e.ttl).tcp(e.sport, 80, 1000, 64240);
                let t = match k {
                    0 => t.syn(),
                    2 => t.fin().ack(1),
                    3 => t.rst(),
                    _ => t.ack(1),
                };
                t.write(&mut v, b"").unwrap()
            }
        }
        if let Some((at, x)) = e.flip {
            let i = at % v.len();
            v[i] ^= x;
        }
        v
    }

    fn outs_of(outs: Vec<Out<VecBuf>>) -> Vec<(u8, u16, Vec<u8>)> {
        outs.into_iter()
            .map(|o| match o {
                Out::Tx { port, buf } => (0, port, buf.data().to_vec()),
                Out::Kernel { port, buf } => (1, port, buf.data().to_vec()),
                Out::Handoff { port, buf, .. } => (2, port, buf.data().to_vec()),
                Out::Drop(buf) => (3, 0, buf.data().to_vec()),
            })
            .collect()
    }

    fn counters(w: &Worker<VecBuf>) -> Vec<u64> {
        let c = w.counters();
        let mut v = vec![
            c.rx.get(),
            c.tx.get(),
            c.kernel.get(),
            c.handoff_out.get(),
            c.frags_held.get(),
            c.icmp_errors_sent.get(),
        ];
        v.extend(PathDrop::ALL.iter().map(|&r| c.drops_of(r)));
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the frames, `rx_burst` (staged lookups, the fast path for plain IPv4
        /// TCP/UDP) sends, drops and counts exactly what `rx` does one frame at a time.
        #[test]
        fn burst_path_matches_single_frame_path(
            evs in prop::collection::vec(ev(), 1..80),
            cuts in prop::collection::vec(1usize..40, 1..8),
            mode in 0u8..3,
        ) {
            let (fwd, tun) = match mode {
                0 => (Fwd::Droute, TunConfig::default()),
                1 => (Fwd::Masq, TunConfig::default()),
                _ => (Fwd::Tunnel, TunConfig { kind: TunKind::Ipip, ..Default::default() }),
            };
            let mut single = worker(service(fwd, tun, mode == 1), Config::default(), 0, 1);
            let mut burst = worker(service(fwd, tun, mode == 1), Config::default(), 0, 1);
            let frames: Vec<Vec<u8>> = evs.iter().map(frame).collect();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let (mut at, mut now) = (0, 1_000u64);
            for &cut in cuts.iter().cycle() {
                if at >= frames.len() {
                    break;
                }
                let end = (at + cut).min(frames.len());
                for f in &frames[at..end] {
                    single.rx(0, VecBuf::from_frame(f), now, &mut |o| a.push(o));
                }
                let mut bufs: Vec<Option<VecBuf>> =
                    frames[at..end].iter().map(|f| Some(VecBuf::from_frame(f))).collect();
                burst.rx_burst(0, &mut bufs, now, &mut |o| b.push(o));
                prop_assert!(bufs.iter().all(Option::is_none));
                single.tick(now, &mut |o| a.push(o));
                burst.tick(now, &mut |o| b.push(o));
                at = end;
                now += 250;
            }
            // Past every hold: each frame came out exactly once (an ICMP error adds a frame).
            single.tick(now + FRAG_HOLD_MS, &mut |o| a.push(o));
            burst.tick(now + FRAG_HOLD_MS, &mut |o| b.push(o));
            let errors = single.counters().icmp_errors_sent.get();
            prop_assert_eq!(a.len() as u64, frames.len() as u64 + errors);
            prop_assert_eq!(outs_of(a), outs_of(b));
            prop_assert_eq!(counters(&single), counters(&burst));
        }
    }
}

//! `rvsd replay` end to end: an appliance config, ipvsadm rules and a capture in; a capture
//! and Prometheus text out. Output frames are parsed and their checksums verified by
//! etherparse (an independent parser) and compared with the golden capture in
//! `tests/golden/` (regenerate with `RVS_BLESS=1` after a deliberate change, and review the
//! diff with tshark). The same input with 1, 2 and 4 workers gives the same frames.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use rvs_control::replay::{read_capture, replay, CaptureWriter, ReplayArgs};

const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc1];

const CONFIG: &str = r#"
[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24", "172.16.0.1/24", "fd00::1/64"]

[[neighbor]]
ip = "172.16.0.2"
mac = "02:00:00:00:00:22"
port = "p0"

[[neighbor]]
ip = "172.16.0.3"
mac = "02:00:00:00:00:23"
port = "p0"

[[neighbor]]
ip = "10.0.0.254"
mac = "02:00:00:00:00:fe"
port = "p0"

[[neighbor]]
ip = "fd00::2"
mac = "02:00:00:00:00:62"
port = "p0"

[[route]]
prefix = "0.0.0.0/0"
via = "10.0.0.254"
port = "p0"

[defense]
drop_entry = 3
"#;

const RULES: &str = "\
-A -t 10.0.0.100:80 -s rr -p 300 -M 255.255.255.0
-a -t 10.0.0.100:80 -r 172.16.0.2:80 -g -w 1
-a -t 10.0.0.100:80 -r 172.16.0.3:80 -g -w 1
-A -t 10.0.0.101:80 -s rr
-a -t 10.0.0.101:80 -r 172.16.0.2:8080 -m -w 1
-A -u 10.0.0.102:53 -s rr
-a -u 10.0.0.102:53 -r 172.16.0.3:53 -i -w 1
-A -t [fd00::100]:80 -s rr
-a -t [fd00::100]:80 -r [fd00::2]:80 -g -w 1
-A -u 10.0.0.103:53 -s rr
-a -u 10.0.0.103:53 -r 172.16.0.2:53 -i --tun-type gue --tun-port 6080 -w 1
-A -u 10.0.0.104:53 -s rr
-a -u 10.0.0.104:53 -r 172.16.0.3:53 -i --tun-type gre -w 1
-A -u 10.0.0.105:53 -s rr
-a -u 10.0.0.105:53 -r 172.16.0.2:5353 -m -w 1
";

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rvs-replay-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn syn(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 64240)
        .syn()
        .write(&mut v, b"")
        .unwrap();
    v
}

/// The input capture: a story of each kind of traffic, 10 ms apart.
#[allow(clippy::vec_init_then_push)]
fn input() -> Vec<Vec<u8>> {
    let mut f = Vec::new();
    // Persistence: two clients of one /24 and one of another; rr alternates between groups.
    f.push(syn([192, 168, 1, 10], 1000, [10, 0, 0, 100], 80));
    f.push(syn([192, 168, 1, 20], 1001, [10, 0, 0, 100], 80));
    f.push(syn([192, 168, 2, 10], 1002, [10, 0, 0, 100], 80));
    f.push(syn([192, 168, 1, 10], 1003, [10, 0, 0, 100], 80));
    // NAT, then the dest's reply.
    f.push(syn([192, 168, 3, 3], 2000, [10, 0, 0, 101], 80));
    let mut reply = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x22], LB_MAC)
        .ipv4([172, 16, 0, 2], [192, 168, 3, 3], 64)
        .tcp(8080, 2000, 7, 64240)
        .syn()
        .ack(2)
        .write(&mut reply, b"")
        .unwrap();
    f.push(reply);
    // UDP through an IPIP tunnel.
    let mut q = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4([192, 168, 4, 4], [10, 0, 0, 102], 64)
        .udp(5353, 53)
        .write(&mut q, b"query")
        .unwrap();
    f.push(q);
    // IPv6 DR.
    let mut s6 = Vec::new();
    let c6: std::net::Ipv6Addr = "2001:db8::7".parse().unwrap();
    let v6: std::net::Ipv6Addr = "fd00::100".parse().unwrap();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv6(c6.octets(), v6.octets(), 64)
        .tcp(3000, 80, 1, 100)
        .syn()
        .write(&mut s6, b"")
        .unwrap();
    f.push(s6);
    // Echo to a VIP and to the port address; a non-SYN to a VIP (dropped, counted).
    let mut ping = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4([10, 0, 0, 9], [10, 0, 0, 100], 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut ping, b"hi")
        .unwrap();
    f.push(ping);
    let mut ack = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4([192, 168, 9, 9], [10, 0, 0, 100], 64)
        .tcp(4000, 80, 1, 100)
        .ack(1)
        .write(&mut ack, b"")
        .unwrap();
    f.push(ack);
    // TCP to the appliance itself: the kernel's (exception path).
    f.push(syn([10, 0, 0, 9], 5555, [10, 0, 0, 1], 22));
    f.extend(more_input());
    f
}

/// GUE and GRE tunnels, VLAN, fragments, an ICMP error, ARP and IPv6 ND.
fn more_input() -> Vec<Vec<u8>> {
    let udp = |dst: [u8; 4], payload: &[u8]| {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
            .ipv4([192, 168, 5, 5], dst, 64)
            .udp(5353, 53)
            .write(&mut v, payload)
            .unwrap();
        v
    };
    let mut f = vec![udp([10, 0, 0, 103], b"gue"), udp([10, 0, 0, 104], b"gre")];
    // A VLAN-tagged SYN to the DR service.
    let mut tagged = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .single_vlan(etherparse::VlanId::try_new(7).unwrap())
        .ipv4([192, 168, 6, 6], [10, 0, 0, 100], 64)
        .tcp(6000, 80, 1, 100)
        .syn()
        .write(&mut tagged, b"")
        .unwrap();
    f.push(tagged);
    // A UDP datagram in two fragments through NAT.
    let whole = udp([10, 0, 0, 105], &[9u8; 100]);
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&whole[14..]).unwrap();
    let payload = whole[34..].to_vec();
    for (data, off, more) in [(&payload[..56], 0usize, true), (&payload[56..], 56, false)] {
        let mut h = ip.to_header();
        h.identification = 777;
        h.dont_fragment = false;
        h.more_fragments = more;
        h.fragment_offset = etherparse::IpFragOffset::try_new((off / 8) as u16).unwrap();
        h.set_payload_len(data.len()).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut fr = whole[..14].to_vec();
        h.write(&mut fr).unwrap();
        fr.extend_from_slice(data);
        f.push(fr);
    }
    // The NAT dest's port is closed: its ICMP error goes back to the client as the VIP's.
    let mut quote = Vec::new();
    PacketBuilder::ipv4([192, 168, 3, 3], [172, 16, 0, 2], 63)
        .tcp(2000, 8080, 1, 64240)
        .syn()
        .write(&mut quote, b"")
        .unwrap();
    let mut err = Vec::new();
    let unreach = etherparse::Icmpv4Type::Unknown {
        type_u8: 3,
        code_u8: 3,
        bytes5to8: [0; 4],
    };
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x22], LB_MAC)
        .ipv4([172, 16, 0, 2], [192, 168, 3, 3], 64)
        .icmpv4(unreach)
        .write(&mut err, &quote[..28])
        .unwrap();
    f.push(err);
    // ARP for a VIP, and an IPv6 neighbor solicitation for the v6 VIP.
    let mut arp = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, [0xff; 6])
        .arp(
            etherparse::ArpPacket::new(
                etherparse::ArpHardwareId::ETHERNET,
                etherparse::EtherType::IPV4,
                etherparse::ArpOperation::REQUEST,
                &CLIENT_MAC,
                &[10, 0, 0, 9],
                &[0; 6],
                &[10, 0, 0, 101],
            )
            .unwrap(),
        )
        .write(&mut arp)
        .unwrap();
    f.push(arp);
    let vip6: std::net::Ipv6Addr = "fd00::100".parse().unwrap();
    let (sn, sn_mac) = rvs_dataplane::pipeline::local::solicited_node(vip6);
    let mut b = rvs_dataplane::pipeline::buf::VecBuf::empty();
    rvs_dataplane::pipeline::local::ndp(
        &mut b,
        false,
        sn_mac,
        CLIENT_MAC,
        "fd00::9".parse().unwrap(),
        sn,
        vip6,
        0,
    );
    f.push(rvs_dataplane::pipeline::buf::Buf::data(&b).to_vec());
    f
}

fn write_input(path: &Path) {
    let mut w = CaptureWriter::create(path, &["p0".to_string()]).unwrap();
    for (i, f) in input().iter().enumerate() {
        w.write(
            Duration::from_millis(1_000_000 + 10 * i as u64),
            0,
            false,
            f,
        )
        .unwrap();
    }
    w.finish().unwrap();
}

/// Replay with `workers`; returns the output frames (port, bytes), the metrics text, and the
/// output capture's path.
fn run_at(workers: u32) -> (Vec<(u16, Vec<u8>)>, String, PathBuf) {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let tag = format!(
        "w{workers}-{}",
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let (cfg, rules, pin, pout, metrics) = (
        tmp(&format!("a-{tag}.toml")),
        tmp(&format!("r-{tag}.ipvsadm")),
        tmp(&format!("in-{tag}.pcapng")),
        tmp(&format!("out-{tag}.pcapng")),
        tmp(&format!("m-{tag}.prom")),
    );
    std::fs::write(&cfg, CONFIG).unwrap();
    std::fs::write(&rules, RULES).unwrap();
    write_input(&pin);
    let args = ReplayArgs {
        config: cfg,
        rules,
        pcap_in: pin,
        pcap_out: pout.clone(),
        metrics_out: Some(metrics.clone()),
        workers: Some(workers),
    };
    replay(&args).unwrap();
    let frames = read_capture(&pout)
        .unwrap()
        .into_iter()
        .map(|f| (f.port, f.data))
        .collect();
    (frames, std::fs::read_to_string(metrics).unwrap(), pout)
}

fn run(workers: u32) -> (Vec<(u16, Vec<u8>)>, String) {
    let (f, m, _) = run_at(workers);
    (f, m)
}

/// Parse with etherparse and verify every checksum it can.
fn verify(frame: &[u8]) {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses every output frame");
    match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            match &p.transport {
                Some(TransportSlice::Tcp(t)) => assert_eq!(
                    t.checksum(),
                    t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap()
                ),
                Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
                    assert_eq!(
                        u.checksum(),
                        u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap()
                    )
                }
                Some(TransportSlice::Icmpv4(i)) => assert_eq!(
                    i.checksum(),
                    i.header().icmp_type.calc_checksum(i.payload())
                ),
                _ => {}
            }
        }
        Some(NetSlice::Ipv6(ip)) => {
            if let Some(TransportSlice::Tcp(t)) = &p.transport {
                let h = ip.header().to_header();
                assert_eq!(
                    t.checksum(),
                    t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap()
                );
            }
        }
        _ => {}
    }
}

fn dst_mac(f: &[u8]) -> [u8; 6] {
    f[0..6].try_into().unwrap()
}

#[test]
fn replay_forwards_answers_and_counts_as_ipvs_would() {
    let (frames, metrics) = run(1);
    for (_, f) in &frames {
        verify(f);
    }
    let tx: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|(p, _)| *p == 0)
        .map(|(_, f)| f)
        .collect();
    let kernel: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|(p, _)| *p == 1)
        .map(|(_, f)| f)
        .collect();
    // 6 gratuitous ARPs and 1 unsolicited NA (the VIPs) + 4 persistent SYNs + NAT in and out
    // + tunnel + v6 + echo; then GUE, GRE, VLAN, 2 fragments, the ICMP error, ARP and NA.
    assert_eq!(tx.len(), 7 + 4 + 2 + 1 + 1 + 1 + 8, "{} frames", tx.len());
    assert_eq!(
        kernel.len(),
        1,
        "the SSH SYN to the appliance goes to the kernel"
    );
    let syns = &tx[7..11];
    assert_eq!(dst_mac(syns[0]), dst_mac(syns[1]), "same /24, same dest");
    assert_eq!(dst_mac(syns[0]), dst_mac(syns[3]), "persistence holds");
    assert_ne!(
        dst_mac(syns[0]),
        dst_mac(syns[2]),
        "rr moved on for the other group"
    );
    // NAT: to 172.16.0.2:8080, and the reply back as the VIP toward the gateway.
    let p = SlicedPacket::from_ethernet(tx[11]).unwrap();
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport) else {
        panic!()
    };
    assert_eq!(
        (ip.header().destination(), t.destination_port()),
        ([172, 16, 0, 2], 8080)
    );
    let p = SlicedPacket::from_ethernet(tx[12]).unwrap();
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport) else {
        panic!()
    };
    assert_eq!(
        (ip.header().source(), t.source_port()),
        ([10, 0, 0, 101], 80)
    );
    assert_eq!(dst_mac(tx[12]), [2, 0, 0, 0, 0, 0xfe]);
    // IPIP.
    let p = SlicedPacket::from_ethernet(tx[13]).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!()
    };
    assert_eq!(
        (ip.header().protocol(), ip.header().destination()),
        (etherparse::IpNumber::IPV4, [172, 16, 0, 3])
    );
    // GUE to the configured port, GRE.
    let p = SlicedPacket::from_ethernet(tx[16]).unwrap();
    let Some(TransportSlice::Udp(u)) = &p.transport else {
        panic!("GUE is UDP")
    };
    assert_eq!(u.destination_port(), 6080);
    let p = SlicedPacket::from_ethernet(tx[17]).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!()
    };
    assert_eq!(ip.header().protocol(), etherparse::IpNumber::GRE);
    // VLAN kept; both fragments to the NAT dest; the ICMP error from the VIP.
    let p = SlicedPacket::from_ethernet(tx[18]).unwrap();
    assert!(!p.link_exts.is_empty(), "the VLAN tag is kept");
    for f in &tx[19..21] {
        let h = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
        assert_eq!(h.destination(), [172, 16, 0, 2]);
    }
    let p = SlicedPacket::from_ethernet(tx[21]).unwrap();
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(_))) = (&p.net, &p.transport) else {
        panic!()
    };
    assert_eq!(ip.header().source(), [10, 0, 0, 101]);
    assert!(matches!(
        SlicedPacket::from_ethernet(tx[22]).unwrap().net,
        Some(NetSlice::Arp(_))
    ));
    let p = SlicedPacket::from_ethernet(tx[23]).unwrap();
    let Some(TransportSlice::Icmpv6(na)) = &p.transport else {
        panic!()
    };
    assert_eq!(na.type_u8(), 136);
    // Metrics: engine and path counters, by worker and family.
    for line in [
        "rvs_conns_created_total{worker=\"0\",family=\"ipv4\"} 10",
        "rvs_templates{worker=\"0\",family=\"ipv4\"} 3",
        "rvs_drops_total{worker=\"0\",family=\"ipv4\",reason=\"no_conn_not_start\"} 1",
        "rvs_echo_replies_total{worker=\"0\"} 1",
        "rvs_conns_created_total{worker=\"0\",family=\"ipv6\"} 1",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in:\n{metrics}");
    }
}

#[test]
fn output_matches_the_golden_capture() {
    let (frames, _, got) = run_at(1);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/replay-basic.pcapng");
    if std::env::var_os("RVS_BLESS").is_some() {
        std::fs::copy(&got, &golden).unwrap();
    }
    let want: Vec<(u16, Vec<u8>)> = read_capture(&golden)
        .unwrap()
        .into_iter()
        .map(|f| (f.port, f.data))
        .collect();
    assert_eq!(frames.len(), want.len());
    for (i, (g, w)) in frames.iter().zip(&want).enumerate() {
        assert_eq!(
            g, w,
            "frame {i} differs from tests/golden/replay-basic.pcapng"
        );
    }
}

/// Scheduler state is per worker (as IPVS's would be per CPU if it had one), so which of the
/// two DR dests a client group gets may differ with the worker count; everything else may not.
#[test]
fn one_two_and_four_workers_forward_the_same_frames() {
    let dests = [[2, 0, 0, 0, 0, 0x22], [2, 0, 0, 0, 0, 0x23]];
    let normal = |v: Vec<(u16, Vec<u8>)>| {
        let mut v: Vec<(u16, Vec<u8>)> = v
            .into_iter()
            .map(|(p, mut f)| {
                let l3 = if f.get(12..14) == Some(&[0x81, 0][..]) {
                    18
                } else {
                    14
                };
                let v4 = f.get(l3 - 2..l3) == Some(&[8, 0][..]);
                // DR frames to the persistent service: the dest MAC is the scheduler's pick.
                if v4
                    && dests.contains(&dst_mac(&f))
                    && f.get(l3 + 16..l3 + 20) == Some(&[10, 0, 0, 100][..])
                {
                    f[0..6].fill(0);
                }
                // Tunnel headers carry a per-worker IP id (and GUE a source port made from it).
                if v4
                    && matches!(f.get(l3 + 9), Some(4 | 17 | 47))
                    && f.get(l3 + 12..l3 + 16) == Some(&[10, 0, 0, 1][..])
                {
                    f[l3 + 4..l3 + 6].fill(0);
                    f[l3 + 10..l3 + 12].fill(0);
                    if f[l3 + 9] == 17 {
                        f[l3 + 20..l3 + 22].fill(0);
                    }
                }
                (p, f)
            })
            .collect();
        v.sort();
        v
    };
    let groups = |v: &[(u16, Vec<u8>)]| {
        // Client /24 -> dest MAC of its DR SYNs: one dest per group.
        let mut m = std::collections::HashMap::new();
        for (_, f) in v
            .iter()
            .filter(|(_, f)| f.get(30..34) == Some(&[10, 0, 0, 100][..]) && f.len() > 34)
        {
            let group = [f[26], f[27], f[28]];
            assert_eq!(
                *m.entry(group).or_insert(dst_mac(f)),
                dst_mac(f),
                "persistence across workers"
            );
        }
        m.len()
    };
    let (one, _) = run(1);
    assert_eq!(groups(&one), 2);
    let one = normal(one);
    for n in [2, 4] {
        let (frames, metrics) = run(n);
        assert_eq!(groups(&frames), 2);
        assert_eq!(normal(frames), one, "{n} workers");
        let handed: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("rvs_handoff_in_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert!(handed > 0, "{n} workers: frames were handed over");
    }
}

#[test]
fn a_bad_config_is_refused_with_line_and_key() {
    let cfg = tmp("bad.toml");
    std::fs::write(
        &cfg,
        "[[port]]\nname = \"p0\"\nmac = \"02:00:00:00:0:1\"\naddrs = []\n",
    )
    .unwrap();
    let rules = tmp("r2.ipvsadm");
    std::fs::write(&rules, RULES).unwrap();
    let pin = tmp("in-bad.pcapng");
    write_input(&pin);
    let e = replay(&ReplayArgs {
        config: cfg,
        rules,
        pcap_in: pin,
        pcap_out: tmp("o2.pcapng"),
        metrics_out: None,
        workers: None,
    })
    .err()
    .unwrap();
    assert!(e.contains("line 3") && e.contains("mac"), "{e}");
}

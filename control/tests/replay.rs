//! `rvsd replay` end to end: an appliance config, ipvsadm rules and a capture in; a capture
//! and Prometheus text out. Output frames are parsed and their checksums verified by
//! etherparse (an independent parser) and compared with the golden capture in
//! `tests/golden/` (regenerate with `RVS_BLESS=1` after a deliberate change, and review the
//! diff with tshark). The same input with 1, 2 and 4 workers gives the same frames.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use rvs_control::replay::{read_capture, replay, CaptureWriter, ReplayArgs};

mod common;
use common::*;

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

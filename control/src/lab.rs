//! `rvsd demo`: the appliance's main job on its embedded default, on a machine with no NIC
//! and no hugepages. The lab config (`appconfig::DEFAULT_LAB_TOML`), a persistent DR service
//! on 10.0.0.100:80 over the lab's two real servers, and a generated capture of client
//! traffic (each client: SYN, ACK, FIN) plus a burst of SYNs from random sources, fed through
//! DPDK's `net_pcap` virtual device into `rvsd run` (real EAL, `--no-huge`), and the frames it
//! transmits written to a pcap.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use rvs_dataplane::rng::Rng;
use rvs_dataplane::wire::{checksum, IpProtocol};

use crate::run::{run, RunArgs, RunSummary};

/// The lab's rules: one persistent DR service over the two lab real servers.
pub const LAB_RULES: &str = "\
-A -t 10.0.0.100:80 -s wlc -p 300 -M 255.255.255.0
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1
-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1
";

const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

/// Where a generated traffic mix goes: the service and the MACs of its frames. The default
/// is the lab's (10.0.0.100:80, to 02:00:00:00:00:01 from 02:00:00:00:00:c1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MixTarget {
    pub vip: Ipv4Addr,
    pub vport: u16,
    /// The appliance port's MAC (the frames' destination).
    pub dst_mac: [u8; 6],
    /// The sender's (a router in front of the appliance).
    pub src_mac: [u8; 6],
}

impl Default for MixTarget {
    fn default() -> Self {
        MixTarget {
            vip: VIP,
            vport: 80,
            dst_mac: LB_MAC,
            src_mac: CLIENT_MAC,
        }
    }
}

/// An Ethernet + IPv4 + TCP frame (no payload) with correct checksums, lab MACs.
pub fn tcp_frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
    tcp_frame_macs(LB_MAC, CLIENT_MAC, src, sport, dst, dport, flags)
}

/// [`tcp_frame`] between the MACs given.
fn tcp_frame_macs(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = IpProtocol::TCP.0;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum::finish(checksum::sum(ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut f[34..54];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&1u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let ph = checksum::pseudo_header_v4(src, dst, IpProtocol::TCP, 20);
    let c = checksum::finish(checksum::combine(&[ph, checksum::sum(t)]));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    f
}

/// The lab traffic: `clients` clients (one /24 group per 4 clients) each opening and closing
/// a conn, interleaved with `flood` SYNs from random sources.
pub fn lab_capture(clients: u32, flood: u32, seed: u64) -> Vec<Vec<u8>> {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    let mut rng = Rng::new(seed);
    let mut frames = Vec::new();
    for c in 0..clients {
        let src = Ipv4Addr::new(
            192,
            168,
            (c / 4 % 256) as u8,
            (c % 4 + 1) as u8 + (c / 1024 * 4) as u8,
        );
        let sport = 20_000 + (c % 40_000) as u16;
        for flags in [SYN, ACK, FIN | ACK] {
            frames.push(tcp_frame(src, sport, VIP, 80, flags));
        }
    }
    let mut out = Vec::with_capacity(frames.len() + flood as usize);
    let per = (flood as usize).div_ceil(frames.len().max(1)).max(1);
    let mut left = flood;
    for f in frames {
        out.push(f);
        for _ in 0..per {
            if left == 0 {
                break;
            }
            left -= 1;
            let src = Ipv4Addr::from(0xcb00_0000 | (rng.next_u32() >> 8));
            out.push(tcp_frame(
                src,
                1024 + rng.below(60_000) as u16,
                VIP,
                80,
                SYN,
            ));
        }
    }
    // Whatever is left (all of it when there are no clients).
    for _ in 0..left {
        let src = Ipv4Addr::from(0xcb00_0000 | (rng.next_u32() >> 8));
        out.push(tcp_frame(
            src,
            1024 + rng.below(60_000) as u16,
            VIP,
            80,
            SYN,
        ));
    }
    out
}

/// ACKs of `flows` distinct flows (client address and port vary) to the lab VIP: with
/// `sloppy_tcp` the first pass creates the conns and every later pass is established traffic.
pub fn established_mix(flows: u32) -> Vec<Vec<u8>> {
    established_mix_to(&MixTarget::default(), flows)
}

/// [`established_mix`] to `t`. Clients are 11.0.0.0/8 addresses.
pub fn established_mix_to(t: &MixTarget, flows: u32) -> Vec<Vec<u8>> {
    (0..flows)
        .map(|i| {
            let a = Ipv4Addr::from(0x0b00_0000 | (i.wrapping_mul(0x9E37_79B1) >> 8));
            let sport = 1024 + (i % 60_000) as u16;
            tcp_frame_macs(t.dst_mac, t.src_mac, a, sport, t.vip, t.vport, 0x10)
        })
        .collect()
}

/// `flows` SYNs from random sources in 203.0.0.0/8 to `t` (a SYN flood), from `seed`.
pub fn synflood_to(t: &MixTarget, flows: u32, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..flows)
        .map(|_| {
            let src = Ipv4Addr::from(0xcb00_0000 | (rng.next_u32() >> 8));
            let sport = 1024 + rng.below(60_000) as u16;
            tcp_frame_macs(t.dst_mac, t.src_mac, src, sport, t.vip, t.vport, 0x02)
        })
        .collect()
}

/// Write a classic pcap (what DPDK's net_pcap reads).
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> Result<(), String> {
    let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(f, header).map_err(|e| e.to_string())?;
    for (i, fr) in frames.iter().enumerate() {
        let p = PcapPacket::new(Duration::from_micros(i as u64), fr.len() as u32, fr);
        w.write_packet(&p).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Where `rvsd demo` leaves its files.
pub struct DemoFiles {
    pub dir: PathBuf,
    pub tx_pcap: PathBuf,
    pub metrics: PathBuf,
}

/// Run the lab on DPDK virtual devices; returns the run summary and where the outputs are.
pub fn demo(
    clients: u32,
    flood: u32,
    extra_eal: &[String],
) -> Result<(RunSummary, DemoFiles), String> {
    let dir = std::env::temp_dir().join(format!("rvs-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (cfg, rules, rx, tx, metrics) = (
        dir.join("lab.toml"),
        dir.join("lab.ipvsadm"),
        dir.join("rx.pcap"),
        dir.join("tx.pcap"),
        dir.join("metrics.prom"),
    );
    std::fs::write(&cfg, crate::appconfig::DEFAULT_LAB_TOML).map_err(|e| e.to_string())?;
    std::fs::write(&rules, LAB_RULES).map_err(|e| e.to_string())?;
    write_pcap(&rx, &lab_capture(clients, flood, 7))?;
    let prefix = format!("rvs-demo-{}", std::process::id());
    let mut eal: Vec<String> = [
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "-l",
        "0-1",
        "--file-prefix",
        &prefix,
        "--no-telemetry",
        "--log-level",
        "lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    eal.push("--vdev".into());
    eal.push(format!(
        "net_pcap0,rx_pcap={},tx_pcap={}",
        rx.display(),
        tx.display()
    ));
    eal.extend(extra_eal.iter().cloned());
    let args = RunArgs {
        config: cfg,
        rules: Some(rules),
        eal,
        metrics_out: Some(metrics.clone()),
        idle_exit_ms: Some(300),
        max_ms: Some(60_000),
        mbufs: None,
        exception: false,
        stats_period_ms: None,
        // The demo's own socket and no endpoint: it runs beside a real rvsd too.
        socket: Some(std::env::temp_dir().join(format!("{prefix}.sock"))),
        metrics_listen: Some("off".into()),
        keepalived: None,
    };
    let res = run(&args);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    Ok((
        res?,
        DemoFiles {
            dir,
            tx_pcap: tx,
            metrics,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_frames_parse_with_valid_checksums() {
        let frames = lab_capture(8, 16, 1);
        assert_eq!(frames.len(), 8 * 3 + 16);
        assert_eq!(lab_capture(0, 5, 1).len(), 5, "a flood without clients");
        for f in &frames {
            let pf = rvs_dataplane::wire::parse_frame(f).unwrap();
            let ip = rvs_dataplane::wire::ipv4::Packet::new_checked(&f[14..]).unwrap();
            assert!(ip.verify_checksum());
            let t = rvs_dataplane::wire::tcp::Packet::new_checked(ip.payload()).unwrap();
            assert!(t.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
            assert_eq!(pf.ports().map(|p| p.1), Some(80));
        }
    }

    #[test]
    fn mixes_go_where_they_are_told_with_valid_checksums() {
        // The default flood is the bench's (lab_capture without clients).
        assert_eq!(
            synflood_to(&MixTarget::default(), 50, 11),
            lab_capture(0, 50, 11)
        );
        let t = MixTarget {
            vip: Ipv4Addr::new(192, 0, 2, 10),
            vport: 443,
            dst_mac: [0x0a, 1, 2, 3, 4, 5],
            src_mac: [0x0a, 9, 8, 7, 6, 5],
        };
        let est = established_mix_to(&t, 100);
        let syn = synflood_to(&t, 100, 3);
        let flows: std::collections::HashSet<_> = est.iter().map(|f| f[26..38].to_vec()).collect();
        assert_eq!(flows.len(), 100, "distinct flows");
        for (f, flags) in est
            .iter()
            .map(|f| (f, 0x10))
            .chain(syn.iter().map(|f| (f, 0x02)))
        {
            let p = etherparse::SlicedPacket::from_ethernet(f).unwrap();
            let Some(etherparse::LinkSlice::Ethernet2(e)) = p.link else {
                panic!("Ethernet")
            };
            assert_eq!((e.destination(), e.source()), (t.dst_mac, t.src_mac));
            let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
                panic!("IPv4")
            };
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            assert_eq!(ip.header().destination(), t.vip.octets());
            let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport else {
                panic!("TCP")
            };
            assert_eq!(tcp.destination_port(), 443);
            assert_eq!(
                tcp.to_header().calc_checksum_ipv4(&h, &[]).unwrap(),
                tcp.checksum()
            );
            assert_eq!(f[47], flags, "ACK or SYN");
        }
    }
}

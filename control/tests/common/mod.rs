//! The story both the replay and the DPDK run tests feed the appliance: an appliance config,
//! ipvsadm rules and the input frames.
#![allow(dead_code)]

use std::path::PathBuf;

use etherparse::PacketBuilder;

pub const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc1];

pub const CONFIG: &str = r#"
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

pub const RULES: &str = "\
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

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rvs-replay-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

pub fn syn(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
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
pub fn input() -> Vec<Vec<u8>> {
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
pub fn more_input() -> Vec<Vec<u8>> {
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
    rvs_dataplane::pipeline::local::ndisc(&mut b, &ends, &ns);
    f.push(rvs_dataplane::pipeline::buf::Buf::data(&b).to_vec());
    f
}

/// The frames of a pcap file (what a `net_pcap` port wrote).
pub fn pcap_frames(path: &std::path::Path) -> Vec<Vec<u8>> {
    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        v.push(p.unwrap().data.into_owned());
    }
    v
}

/// The value of one sample in Prometheus text, by its name and labels as written
/// (`rvs_handoff_in_total{worker="1"}`).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// EAL arguments of a test run on a `net_pcap` port reading `rx` and writing `tx`: no
/// hugepages, no PCI, `mem_mb` of memory, its own file prefix, quiet EAL logs, and `lcores`
/// (e.g. `["-l", "0-1"]`).
pub fn pcap_eal(
    prefix: &str,
    mem_mb: u32,
    lcores: &[&str],
    rx: &std::path::Path,
    tx: &std::path::Path,
) -> Vec<String> {
    let mut v: Vec<String> = vec!["--no-huge".into(), "-m".into(), mem_mb.to_string()];
    v.push("--no-pci".into());
    v.extend(lcores.iter().map(|s| s.to_string()));
    v.extend([
        "--file-prefix".to_string(),
        prefix.to_string(),
        "--vdev".into(),
        format!(
            "net_pcap0,rx_pcap={},tx_pcap={}",
            rx.display(),
            tx.display()
        ),
        "--log-level".into(),
        "lib.eal:error".into(),
    ]);
    v
}

/// How [`run_pcap`] runs `rvsd run`.
pub struct PcapRun<'a> {
    /// Keeps the temp files and the EAL prefix apart.
    pub name: &'a str,
    pub mem_mb: u32,
    pub lcores: &'a [&'a str],
    /// With the `net_tap` exception path.
    pub exception: bool,
    pub idle_exit_ms: u64,
}

/// `frames` through `rvsd run` (config and rules from the files `cfg` and `rules`) on a
/// `net_pcap` port reading them and writing what it sends; the EAL runtime dir is removed
/// after. The run's summary, its tx file and its metrics file.
pub fn run_pcap(
    frames: &[Vec<u8>],
    cfg: &std::path::Path,
    rules: &std::path::Path,
    r: PcapRun<'_>,
) -> (rvs_control::run::RunSummary, PathBuf, PathBuf) {
    use rvs_control::run::{run, RunArgs};
    let name = r.name;
    let (pin, pout, metrics) = (
        tmp(&format!("{name}-in.pcap")),
        tmp(&format!("{name}-out.pcap")),
        tmp(&format!("{name}.prom")),
    );
    rvs_control::lab::write_pcap(&pin, frames).unwrap();
    let prefix = format!("rvs-{name}-{}", std::process::id());
    let eal = pcap_eal(&prefix, r.mem_mb, r.lcores, &pin, &pout);
    let summary = run(&RunArgs {
        config: cfg.to_path_buf(),
        rules: Some(rules.to_path_buf()),
        eal,
        metrics_out: Some(metrics.clone()),
        idle_exit_ms: Some(r.idle_exit_ms),
        max_ms: Some(20_000),
        mbufs: None,
        exception: r.exception,
        stats_period_ms: None,
        socket: Some(tmp(&format!("{name}.sock"))),
        metrics_listen: Some("off".into()),
        keepalived: None,
    })
    .expect("rvsd run");
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    (summary, pout, metrics)
}

/// What `rvsd replay` with `workers` says the appliance sends on port 0 for `frames` (10 ms
/// apart), using the files `cfg` and `rules`; `name` keeps the temp files apart.
pub fn replay_port0(
    frames: &[Vec<u8>],
    cfg: &std::path::Path,
    rules: &std::path::Path,
    workers: u32,
    name: &str,
) -> Vec<Vec<u8>> {
    use rvs_control::replay::{read_capture, replay, CaptureWriter, ReplayArgs};
    let pin = tmp(&format!("{name}-in.pcapng"));
    let mut w = CaptureWriter::create(&pin, &["p0".to_string()]).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let ts = std::time::Duration::from_millis(1_000_000 + 10 * i as u64);
        w.write(ts, 0, false, f).unwrap();
    }
    w.finish().unwrap();
    let out = tmp(&format!("{name}-replay-out.pcapng"));
    replay(&ReplayArgs {
        config: cfg.to_path_buf(),
        rules: rules.to_path_buf(),
        pcap_in: pin,
        pcap_out: out.clone(),
        metrics_out: None,
        workers: Some(workers),
    })
    .unwrap();
    read_capture(&out)
        .unwrap()
        .into_iter()
        .filter(|f| f.port == 0)
        .map(|f| f.data)
        .collect()
}

//! The whole file: a minimal file, every key and every default, serde's refusals (unknown
//! key, wrong type) located, ranges, loading from a path, and no panic on any text.

use proptest::prelude::*;
use rvs_dataplane::addr::Family;
use rvs_dataplane::config::Sysctl;
use rvs_dataplane::proto::Proto;

use super::testutil::{edit, ip, refuse, MINIMAL};
use super::*;

#[test]
fn minimal_file_parses() {
    let c = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.ports.len(), 1);
    let p = &c.ports[0];
    assert_eq!(p.name, "p0");
    assert_eq!(p.mac, [2, 0, 0, 0, 0, 1]);
    assert_eq!(
        p.addrs,
        vec![
            (ip("10.0.0.1"), 24),
            (ip("172.16.0.1"), 24),
            (ip("fd00::1"), 64)
        ]
    );
    assert_eq!((p.device.clone(), p.mtu, p.vlan), (None, 1500, None));
    assert_eq!(
        c.neighbors,
        vec![NeighborConfig {
            ip: ip("172.16.0.2"),
            mac: [2, 0, 0, 0, 0, 0x22],
            port: "p0".into()
        }]
    );
    assert_eq!(
        c.routes,
        vec![RouteConfig {
            prefix: (ip("0.0.0.0"), 0),
            via: Some(ip("10.0.0.254")),
            port: "p0".into()
        }]
    );
    assert_eq!(c.defense.drop_entry, 3);
    assert_eq!(c.sysctl().drop_entry, 3);
}

#[test]
fn defaults() {
    let c = parse("[[port]]\nname = \"p0\"\nmac = \"02:00:00:00:00:01\"\n").unwrap();
    assert!(c.ports[0].addrs.is_empty());
    assert_eq!(
        c.defense,
        DefenseConfig {
            drop_entry: 0,
            drop_packet: 0,
            secure_tcp: 0,
            am_droprate: 10,
            low_watermark: 0
        }
    );
    assert_eq!(
        c.ipvs,
        IpvsConfig {
            conn_reuse_mode: 1,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
            sloppy_sctp: false,
            timeout_tcp: 900,
            timeout_tcpfin: 120,
            timeout_udp: 300,
        }
    );
    assert_eq!(
        c.engine,
        EngineConfig {
            workers: 1,
            conns_per_worker: 1 << 20,
            conns_v6_per_worker: 1 << 17,
            max_dests: 4096,
            eal_args: vec![],
            rss_key: RssKey::Random,
        }
    );
    assert_eq!(c.tunnel, TunnelConfig::default());
    assert_eq!(c.tunnel_mtu(&c.ports[0]), 1500);
    assert_eq!(c.control.socket, "/run/rvsd.sock");
    assert_eq!(c.control.group, None);
    assert_eq!(c.metrics.listen, Some(DEFAULT_METRICS_LISTEN));
    assert_eq!(c.metrics, MetricsConfig::default());
    assert!(c.fwmarks.is_empty() && c.routes.is_empty() && c.neighbors.is_empty());
    assert_eq!(c.sysctl(), Sysctl::default());
    // conns_v6_per_worker follows conns_per_worker when absent.
    let c = parse(
        "[[port]]\nname = \"p0\"\nmac = \"02:00:00:00:00:01\"\n[engine]\nconns_per_worker = 800\n",
    )
    .unwrap();
    assert_eq!(c.engine.conns_v6_per_worker, 100);
}

#[test]
fn every_key_is_read() {
    let text = r#"
[[port]]
name = "wan"
mac = "02:aa:bb:cc:dd:01"
addrs = ["192.0.2.10/24", "2001:db8::10/64"]
device = "0000:3b:00.0"
mtu = 9000
vlan = 100

[[port]]
name = "lan"
mac = "02:aa:bb:cc:dd:02"
addrs = ["10.1.0.1/16"]
device = "net_af_packet0"

[[neighbor]]
ip = "10.1.0.20"
mac = "02:00:00:00:01:20"
port = "lan"

[[neighbor]]
ip = "fe80::1"
mac = "02:00:00:00:01:21"
port = "wan"

[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.1"
port = "wan"

[[route]]
prefix = "::/0"
via = "fe80::1"
port = "wan"

[[route]]
prefix = "10.2.0.0/16"
port = "lan"

[defense]
drop_entry = 1
drop_packet = 2
secure_tcp = 3
am_droprate = 20
low_watermark = 1000

[ipvs]
conn_reuse_mode = 0
expire_nodest_conn = true
expire_quiescent_template = true
sloppy_tcp = true
sloppy_sctp = true
timeout_tcp = 3600
timeout_tcpfin = 30
timeout_udp = 60

[engine]
workers = 4
conns_per_worker = 262144
conns_v6_per_worker = 65536
max_dests = 512
eal_args = ["--no-huge", "-m", "512"]
rss_key = "fixed"

[[fwmark]]
mark = 1
proto = "tcp"
prefix = "192.0.2.0/28"
ports = "8000-8099"

[[fwmark]]
mark = 2
prefix = "2001:db8::100"
ports = 443

[[fwmark]]
mark = 3
proto = "UDP"
prefix = "192.0.2.20"

[tunnel]
mtu = 1480
source_v4 = "10.1.0.1"
source_v6 = "2001:db8::10"

[control]
socket = "/tmp/rvsd.sock"
group = "rvsadm"

[metrics]
listen = "[::1]:9100"
"#;
    let c = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.ports[0].device.as_deref(), Some("0000:3b:00.0"));
    assert_eq!((c.ports[0].mtu, c.ports[0].vlan), (9000, Some(100)));
    assert_eq!(c.ports[1].mtu, 1500);
    assert_eq!(
        c.routes[1],
        RouteConfig {
            prefix: (ip("::"), 0),
            via: Some(ip("fe80::1")),
            port: "wan".into()
        }
    );
    assert_eq!(c.routes[2].via, None);
    assert_eq!(
        c.defense,
        DefenseConfig {
            drop_entry: 1,
            drop_packet: 2,
            secure_tcp: 3,
            am_droprate: 20,
            low_watermark: 1000
        }
    );
    let s = c.sysctl();
    assert_eq!(s.timeouts.tcp_tcpfin_udp(), (3600, 30, 60));
    assert!(s.expire_nodest_conn && s.expire_quiescent_template && s.sloppy_tcp && s.sloppy_sctp);
    assert_eq!(
        (
            s.conn_reuse_mode,
            s.drop_packet,
            s.secure_tcp,
            s.am_droprate,
            s.low_watermark
        ),
        (0, 2, 3, 20, 1000)
    );
    assert_eq!(
        c.engine,
        EngineConfig {
            workers: 4,
            conns_per_worker: 262_144,
            conns_v6_per_worker: 65_536,
            max_dests: 512,
            eal_args: vec!["--no-huge".into(), "-m".into(), "512".into()],
            rss_key: RssKey::Fixed,
        }
    );
    let r4 = c.fwmark_rules_v4();
    assert_eq!(r4.len(), 2);
    assert_eq!(
        (
            r4[0].mark,
            r4[0].proto,
            r4[0].prefix,
            r4[0].port_lo,
            r4[0].port_hi
        ),
        (1, Some(Proto::Tcp), 28, 8000, 8099)
    );
    assert_eq!(r4[0].addr.to_ip(), ip("192.0.2.0"));
    assert_eq!(
        (
            r4[1].mark,
            r4[1].proto,
            r4[1].prefix,
            r4[1].port_lo,
            r4[1].port_hi
        ),
        (3, Some(Proto::Udp), 32, 0, 65535)
    );
    let r6 = c.fwmark_rules_v6();
    assert_eq!(r6.len(), 1);
    assert_eq!(
        (
            r6[0].mark,
            r6[0].proto,
            r6[0].prefix,
            r6[0].port_lo,
            r6[0].port_hi
        ),
        (2, None, 128, 443, 443)
    );
    assert_eq!(
        c.tunnel,
        TunnelConfig {
            mtu: Some(1480),
            source_v4: Some("10.1.0.1".parse().unwrap()),
            source_v6: Some("2001:db8::10".parse().unwrap())
        }
    );
    assert_eq!(c.tunnel_mtu(&c.ports[0]), 1480);
    assert_eq!(c.control.socket, "/tmp/rvsd.sock");
    assert_eq!(c.control.group.as_deref(), Some("rvsadm"));
    assert_eq!(c.metrics.listen, Some("[::1]:9100".parse().unwrap()));
    assert_eq!(c.port("lan").map(|p| p.addrs.len()), Some(1));
}

#[test]
fn unknown_key_is_refused_with_line_and_key() {
    let e = refuse(&edit(
        "mac = \"02:00:00:00:00:01\"",
        "mac = \"02:00:00:00:00:01\"\nspeed = 10",
    ));
    assert_eq!((e.line, e.column, e.key.as_str()), (4, 1, "port[0].speed"));
    assert!(e.message.contains("unknown field `speed`"), "{e}");
    let e = refuse(&edit(
        "drop_entry = 3",
        "drop_entry = 3\ndrop_everything = 1",
    ));
    assert_eq!((e.line, e.key.as_str()), (19, "defense.drop_everything"));
    let e = refuse(&format!("{MINIMAL}\n[dpdk]\ncores = 2\n"));
    assert_eq!((e.line, e.key.as_str()), (20, "dpdk"));
    assert!(e.message.contains("unknown field `dpdk`"), "{e}");
}

#[test]
fn wrong_type_is_refused_with_line_and_key() {
    let e = refuse(&edit("drop_entry = 3", "drop_entry = \"3\""));
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (18, 14, "defense.drop_entry")
    );
    assert!(e.message.contains("invalid type"), "{e}");
    let e = refuse(&edit("addrs = [", "mtu = \"big\"\naddrs = ["));
    assert!(e.message.contains("expected an integer"), "{e}");
    assert_eq!((e.line, e.key.as_str()), (4, "port[0].mtu"));
    let e =
        refuse("[[port]]\nname = \"p0\"\nmac = \"02:00:00:00:00:01\"\n[ipvs]\nsloppy_tcp = 1\n");
    assert_eq!((e.line, e.key.as_str()), (5, "ipvs.sloppy_tcp"));
}

#[test]
fn values_out_of_range_are_refused() {
    let cases = [
        ("drop_entry = 3", "drop_entry = 4", "defense.drop_entry"),
        ("drop_entry = 3", "am_droprate = 0", "defense.am_droprate"),
        (
            "drop_entry = 3",
            "low_watermark = 131072",
            "defense.low_watermark",
        ),
        (
            "drop_entry = 3",
            "drop_entry = 3\n[ipvs]\ntimeout_tcp = 0",
            "ipvs.timeout_tcp",
        ),
        (
            "drop_entry = 3",
            "drop_entry = 3\n[ipvs]\nconn_reuse_mode = 9",
            "ipvs.conn_reuse_mode",
        ),
        (
            "drop_entry = 3",
            "drop_entry = 3\n[engine]\nworkers = 0",
            "engine.workers",
        ),
        (
            "drop_entry = 3",
            "drop_entry = 3\n[engine]\nconns_per_worker = -1",
            "engine.conns_per_worker",
        ),
        (
            "drop_entry = 3",
            "drop_entry = 3\n[tunnel]\nmtu = 100",
            "tunnel.mtu",
        ),
        (
            "drop_entry = 3",
            "drop_entry = 3\n[tunnel]\nsource_v4 = \"10.0.0.9\"",
            "tunnel.source_v4",
        ),
        (
            "drop_entry = 3",
            "drop_entry = 3\n[tunnel]\nsource_v6 = \"10.0.0.1\"",
            "tunnel.source_v6",
        ),
        ("addrs = [", "vlan = 4095\naddrs = [", "port[0].vlan"),
        ("addrs = [", "mtu = 1000\naddrs = [", "port[0].mtu"),
        ("addrs = [", "device = \"\"\naddrs = [", "port[0].device"),
    ];
    for (from, to, key) in cases {
        let e = refuse(&edit(from, to));
        assert_eq!(e.key, key, "{e}");
        assert!(e.line > 0, "{e}");
    }
    let e = refuse(&edit("drop_entry = 3", "drop_entry = 4"));
    assert_eq!(e.message, "4 is out of range (want 0..3)");
    let e = refuse(&edit("addrs = [", "mtu = 1000\naddrs = ["));
    assert!(e.message.contains("below IPv6's minimum MTU 1280"), "{e}");
}

#[test]
fn no_port_and_syntax_errors_are_refused() {
    let e = refuse("");
    assert!(e.message.contains("at least one port"), "{e}");
    let e = refuse("[[port]\nname = 1");
    assert!(e.line >= 1, "{e}");
    let e = refuse("[[port]]\nname = \"p0\"\n");
    assert!(e.message.contains("missing field `mac`"), "{e}");
    assert_eq!(e.key, "port[0]");
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("rvs-appconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("appliance.toml");
    std::fs::write(&path, edit("02:00:00:00:00:01", "02:00:00:00:0:1")).unwrap();
    let e = load(&path).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "{} line 3, column 7, key port[0].mac: ",
            path.display()
        )),
        "{e}"
    );
    std::fs::write(&path, MINIMAL).unwrap();
    assert!(load(&path).is_ok());
    let e = load(&dir.join("missing.toml")).unwrap_err();
    assert!(e.message.starts_with("cannot read"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #[test]
    fn no_panic_on_any_text(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn no_panic_on_edited_minimal_file(pos in 0usize..700, junk in "[\\[\\]=\"a-z0-9./:#\\n -]{0,12}") {
        let mut t = MINIMAL.to_string();
        let mut p = pos.min(t.len());
        while !t.is_char_boundary(p) { p -= 1; }
        t.insert_str(p, &junk);
        if let Err(e) = parse(&t) {
            let _ = e.to_string();
        }
    }
}

//! rvsadm's listings against ipvsadm 1.31's: the fixtures in `tests/adm/` are what ipvsadm's
//! own format strings, print helpers, comparators and glibc's `qsort` print for the state
//! built below (the same services, dests, counters, conns and names). And the real `rvsadm`
//! binary end to end against a stand-in rvsd on a Unix socket.

use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;

use rvs_control::adm::conns;
use rvs_control::adm::listing::{self, Format};
use rvs_control::adm::names::Names;
use rvs_control::protocol::{
    self, ConnRow, DestRow, Forward, Listing, Rates, Reply, Request, ServiceRow, Stats,
    TunCsumInfo, TunnelInfo, VirtualKey, MAX_REQUEST,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn stats(v: [u64; 5]) -> Stats {
    Stats {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
    }
}

fn rates(v: [u64; 5]) -> Rates {
    Rates {
        cps: v[0],
        inpps: v[1],
        outpps: v[2],
        inbps: v[3],
        outbps: v[4],
    }
}

fn dest(addr: &str, port: u16, forward: Forward, weight: i32) -> DestRow {
    DestRow {
        addr: ip(addr),
        port,
        forward,
        weight,
        u_threshold: 0,
        l_threshold: 0,
        active: 0,
        inactive: 0,
        persist: 0,
        tunnel: None,
        stats: Stats::default(),
        rates: Rates::default(),
    }
}

fn service(key: VirtualKey, sched: &str) -> ServiceRow {
    let v6 = match key {
        VirtualKey::Addr { addr, .. } => addr.is_ipv6(),
        VirtualKey::Fwmark { v6, .. } => v6,
    };
    ServiceRow {
        key,
        sched: sched.into(),
        sched_flags: 0,
        persistent: None,
        netmask_prefix: if v6 { 128 } else { 32 },
        ops: false,
        stats: Stats::default(),
        rates: Rates::default(),
        dests: vec![],
    }
}

fn addr(proto: u8, a: &str, port: u16) -> VirtualKey {
    VirtualKey::Addr {
        proto,
        addr: ip(a),
        port,
    }
}

/// The state of the fixtures, services in the order they were added, dests newest first.
fn state() -> Listing {
    let mut s1 = service(addr(6, "192.168.1.10", 80), "wlc");
    s1.stats = stats([1, 2, 3, 4, 5]);
    s1.rates = rates([1, 2, 3, 4, 5]);
    let mut d = dest("10.0.1.2", 80, Forward::Route, 1);
    (d.active, d.inactive) = (3, 10);
    d.stats = stats([10, 20, 30, 40, 50]);
    d.rates = rates([1, 2, 3, 4, 5]);
    s1.dests.push(d);
    let mut d = dest("10.0.1.1", 80, Forward::Route, 2);
    (d.active, d.inactive) = (5, 20);
    d.stats = stats([11, 21, 31, 41, 51]);
    d.rates = rates([6, 7, 8, 9, 10]);
    s1.dests.push(d);

    let mut s2 = service(addr(6, "10.0.0.1", 443), "rr");
    s2.persistent = Some(300);
    s2.netmask_prefix = 24;
    s2.stats = stats([
        123,
        123_456_789,
        98_765_432_109,
        123_456_789_012_345,
        5_000_000_000,
    ]);
    s2.rates = rates([
        250,
        100_000_001,
        99_999_999,
        1_234_567_890,
        99_999_999_999_999,
    ]);
    let mut d = dest("172.16.0.5", 8443, Forward::Masq, 0);
    (d.u_threshold, d.l_threshold, d.inactive, d.persist) = (1000, 500, 2, 7);
    d.stats = stats([
        100_000_000,
        999_999_999,
        1_000_000_000,
        99_999_999_999,
        100_000_000_000,
    ]);
    d.rates = rates([
        123_456_789,
        100_000_000,
        7,
        99_999_999_999_999,
        100_000_000_000_000,
    ]);
    s2.dests.push(d);
    let mut d = dest("172.16.0.4", 8443, Forward::Masq, 100);
    (d.active, d.inactive, d.persist) = (12, 34, 9);
    d.stats = stats([99_999_999, u64::MAX, 0, 1, 12_345_678_901_234_567]);
    s2.dests.push(d);

    let mut s3 = service(addr(17, "10.0.0.1", 53), "sh");
    s3.sched_flags = 0b011;
    s3.ops = true;
    s3.dests.push(dest("10.0.2.1", 53, Forward::Route, 1));

    let mut s4 = service(VirtualKey::Fwmark { mark: 7, v6: false }, "wlc");
    s4.persistent = Some(600);
    let mut d = dest("10.0.3.2", 0, Forward::Tunnel, 1);
    d.tunnel = Some(TunnelInfo::Gue {
        port: 6080,
        csum: TunCsumInfo::Csum,
    });
    s4.dests.push(d);
    let mut d = dest("10.0.3.1", 0, Forward::Tunnel, 1);
    d.tunnel = Some(TunnelInfo::Ipip);
    s4.dests.push(d);

    let mut s5 = service(VirtualKey::Fwmark { mark: 7, v6: true }, "mh");
    s5.sched_flags = 0b001;
    s5.persistent = Some(300);
    s5.netmask_prefix = 64;
    let mut d = dest("fd00::3:1", 0, Forward::Tunnel, 3);
    d.tunnel = Some(TunnelInfo::Gre {
        csum: TunCsumInfo::NoCsum,
    });
    s5.dests.push(d);

    let mut s6 = service(addr(6, "fd00::1", 80), "lc");
    let mut d = dest("fd00::2:2", 8080, Forward::Masq, 5);
    (d.u_threshold, d.l_threshold, d.active) = (10, 5, 1);
    s6.dests.push(d);
    let mut d = dest("fd00::2:1", 8080, Forward::Masq, 5);
    d.inactive = 4;
    s6.dests.push(d);

    let s7 = service(addr(132, "10.0.0.2", 3868), "wrr");

    let mut s8 = service(addr(6, "10.0.0.1", 80), "wlc");
    s8.sched_flags = 0b100;
    s8.dests.push(dest("10.0.1.1", 80, Forward::Route, 1));

    let s9 = service(
        VirtualKey::Fwmark {
            mark: u32::MAX,
            v6: false,
        },
        "rr",
    );

    Listing {
        conn_table_size: 4096,
        services: vec![s1, s2, s3, s4, s5, s6, s7, s8, s9],
    }
}

fn conn(
    proto: u8,
    c: (&str, u16),
    v: (&str, u16),
    d: (&str, u16),
    state: &str,
    expires_ms: u64,
) -> ConnRow {
    ConnRow {
        proto,
        caddr: ip(c.0),
        cport: c.1,
        vaddr: ip(v.0),
        vport: v.1,
        daddr: ip(d.0),
        dport: d.1,
        state: state.into(),
        expires_ms,
    }
}

fn conn_table() -> Vec<ConnRow> {
    vec![
        conn(
            6,
            ("192.0.2.7", 40000),
            ("10.0.0.1", 80),
            ("10.0.1.1", 80),
            "ESTABLISHED",
            899_500,
        ),
        conn(
            17,
            ("192.0.2.8", 5353),
            ("10.0.0.1", 53),
            ("10.0.2.1", 53),
            "UDP",
            299_000,
        ),
        // A firewall-mark template: protocol "IP", the mark as the virtual address.
        conn(
            0,
            ("192.0.2.0", 0),
            ("0.0.0.7", 0),
            ("10.0.3.1", 0),
            "NONE",
            3_599_999,
        ),
        conn(
            6,
            ("2001:db8::7", 40001),
            ("fd00::1", 80),
            ("fd00::2:1", 8080),
            "SYN_RECV",
            59_000,
        ),
        conn(
            6,
            ("192.0.2.9", 1),
            ("10.0.0.1", 443),
            ("172.16.0.4", 8443),
            "FIN_WAIT",
            86_400_000,
        ),
        conn(
            132,
            ("192.0.2.10", 5000),
            ("10.0.0.2", 3868),
            ("10.0.2.9", 3868),
            "ESTABLISHED",
            5_400,
        ),
    ]
}

/// The names the fixtures were printed with.
struct FixtureNames;

impl Names for FixtureNames {
    fn host_v4(&self, name: &str) -> Option<std::net::Ipv4Addr> {
        name.parse().ok()
    }
    fn service_port(&self, _: &str, _: u8) -> Option<u16> {
        None
    }
    fn host_name(&self, a: IpAddr) -> Option<String> {
        let n = match a.to_string().as_str() {
            "192.168.1.10" => "a-very-long-host-name.example.com",
            "10.0.1.1" => "web1.example.com",
            "10.0.1.2" => "a-really-long-backend-name.example.org",
            "fd00::1" => "v6.example",
            "10.0.0.1" => "vip.example",
            _ => return None,
        };
        Some(n.into())
    }
    fn service_name(&self, port: u16, proto: u8) -> Option<String> {
        let n = match (port, proto) {
            (80, 6) => "http",
            (443, 6) => "https",
            (53, 17) => "domain",
            _ => return None,
        };
        Some(n.into())
    }
}

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/adm")
        .join(format!("{name}.txt"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn numeric() -> Format {
    Format {
        numeric: true,
        ..Format::default()
    }
}

/// Line by line, so that a failure shows the line that differs.
fn same(name: &str, got: &str) {
    let want = fixture(name);
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "{name}.txt line {}", i + 1);
    }
    assert_eq!(got, want, "{name}.txt");
}

#[test]
fn ln_is_ipvsadms() {
    same(
        "ln",
        &listing::list_all(&state(), &numeric(), &FixtureNames),
    );
}

#[test]
fn l_names_hosts_and_ports_and_cuts_them_at_ipvsadms_widths() {
    same(
        "l",
        &listing::list_all(&state(), &Format::default(), &FixtureNames),
    );
    let f = Format {
        stats: true,
        ..Format::default()
    };
    same("l_stats", &listing::list_all(&state(), &f, &FixtureNames));
}

#[test]
fn ln_stats_scales_large_numbers() {
    let f = Format {
        stats: true,
        ..numeric()
    };
    same("ln_stats", &listing::list_all(&state(), &f, &FixtureNames));
}

#[test]
fn ln_exact_stats_prints_every_digit() {
    let f = Format {
        stats: true,
        exact: true,
        ..numeric()
    };
    same(
        "ln_exact_stats",
        &listing::list_all(&state(), &f, &FixtureNames),
    );
}

#[test]
fn ln_rate_leaves_dest_packet_rates_unscaled() {
    let f = Format {
        rate: true,
        ..numeric()
    };
    same("ln_rate", &listing::list_all(&state(), &f, &FixtureNames));
    let f = Format {
        rate: true,
        exact: true,
        ..numeric()
    };
    same(
        "ln_exact_rate",
        &listing::list_all(&state(), &f, &FixtureNames),
    );
}

#[test]
fn ln_thresholds_persistent_conn_and_tun_info() {
    let f = Format {
        thresholds: true,
        ..numeric()
    };
    same(
        "ln_thresholds",
        &listing::list_all(&state(), &f, &FixtureNames),
    );
    let f = Format {
        persistent_conn: true,
        ..numeric()
    };
    same(
        "ln_persistent_conn",
        &listing::list_all(&state(), &f, &FixtureNames),
    );
    let f = Format {
        tun_info: true,
        ..numeric()
    };
    same(
        "ln_tun_info",
        &listing::list_all(&state(), &f, &FixtureNames),
    );
}

#[test]
fn ln_nosort_keeps_rvsds_order() {
    let f = Format {
        nosort: true,
        ..numeric()
    };
    same("ln_nosort", &listing::list_all(&state(), &f, &FixtureNames));
}

#[test]
fn sort_order_wraps_as_libipvs() {
    // FWM 4294967295 first (its mark minus 0 is -1 as an int), 192.168.1.10 before
    // 10.0.0.1 (the difference wraps), fwmark services after the others, IPv4 before IPv6.
    let out = listing::list_all(&state(), &numeric(), &FixtureNames);
    let services: Vec<&str> = out
        .lines()
        .skip(3)
        .filter(|l| !l.starts_with("  ->"))
        .collect();
    assert_eq!(
        services,
        vec![
            "FWM  4294967295 rr",
            "TCP  192.168.1.10:80 wlc",
            "TCP  10.0.0.1:80 wlc (flag-3)",
            "TCP  10.0.0.1:443 rr persistent 300 mask 255.255.255.0",
            "UDP  10.0.0.1:53 sh (sh-fallback,sh-port) ops",
            "SCTP 10.0.0.2:3868 wrr",
            "TCP  [fd00::1]:80 lc",
            "FWM  7 wlc persistent 600",
            "FWM  7 IPv6 mh (mh-fallback) persistent 300 mask 64",
        ]
    );
}

#[test]
fn one_service_has_no_header() {
    let l = state();
    let one = Listing {
        conn_table_size: l.conn_table_size,
        services: vec![l.services[1].clone()],
    };
    same(
        "ln_service",
        &listing::list_service(&one, &numeric(), &FixtureNames),
    );
}

fn conn_listing(fmt: &Format) -> String {
    let mut s = String::new();
    conns::title(&mut s, fmt);
    for c in conn_table() {
        conns::row(&mut s, &c, fmt, &FixtureNames);
    }
    s
}

#[test]
fn lnc_is_ipvsadms() {
    same("lnc", &conn_listing(&numeric()));
    same("lc", &conn_listing(&Format::default()));
    let f = Format {
        persistent_conn: true,
        ..numeric()
    };
    same("lnc_persistent_conn", &conn_listing(&f));
}

#[test]
fn timeout_line() {
    assert_eq!(
        listing::timeouts(900, 120, 300),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
}

// ---------------------------------------------------------------------------------------
// The binary against a stand-in rvsd.

/// A socket path of its own under the temp dir.
fn sock_path(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("rvsadm-{tag}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Serve `replies.len()` connections: each reads one request and answers with the next
/// reply. Returns the requests seen.
fn serve(listener: UnixListener, replies: Vec<Reply>) -> thread::JoinHandle<Vec<Request>> {
    thread::spawn(move || {
        let mut seen = Vec::new();
        for reply in replies {
            let (mut s, _) = listener.accept().unwrap();
            let body = protocol::read_message(&mut s, MAX_REQUEST)
                .unwrap()
                .unwrap();
            seen.push(protocol::decode_request(&body).unwrap());
            protocol::write_message(&mut s, &reply).unwrap();
        }
        seen
    })
}

fn rvsadm(args: &[&str], env_socket: Option<&PathBuf>, stdin: &str) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rvsadm"));
    cmd.args(args)
        .env_remove("RVSADM_SOCKET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = env_socket {
        cmd.env("RVSADM_SOCKET", p);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn rvsadm_adds_a_dest_and_lists_through_the_socket() {
    let path = sock_path("e2e");
    let listener = UnixListener::bind(&path).unwrap();
    let server = serve(
        listener,
        vec![
            Reply::Ok { generation: 2 },
            Reply::Listing(state()),
            Reply::Error(protocol::ErrorReply {
                kind: protocol::ErrorKind::Refused,
                message: "line 1: -t 10.0.0.1:80 -r 10.0.1.1:80: Destination already exists".into(),
            }),
        ],
    );
    let p = path.to_str().unwrap();
    let (code, out, err) = rvsadm(
        &[
            "--socket",
            p,
            "-a",
            "-t",
            "10.0.0.1:80",
            "-r",
            "10.0.1.1",
            "-m",
            "-w",
            "3",
        ],
        None,
        "",
    );
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let (code, out, err) = rvsadm(&["-Ln"], Some(&path), "");
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, fixture("ln"));
    let (code, _, err) = rvsadm(
        &[
            &format!("--socket={p}"),
            "-a",
            "-t",
            "10.0.0.1:80",
            "-r",
            "10.0.1.1",
        ],
        None,
        "",
    );
    assert_eq!((code, err.as_str()), (255, "Destination already exists\n"));
    let seen = server.join().unwrap();
    assert_eq!(
        seen,
        vec![
            Request::Apply {
                lines: vec!["-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 3".into()]
            },
            Request::List { service: None },
            Request::Apply {
                lines: vec!["-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1".into()]
            },
        ]
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn rvsadm_names_a_socket_it_cannot_reach() {
    let path = sock_path("absent");
    let (code, out, err) = rvsadm(&["-Ln"], Some(&path), "");
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.starts_with(&format!(
            "rvsadm: cannot reach rvsd at {}: ",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn rvsadm_usage_errors_need_no_rvsd() {
    let path = sock_path("unused");
    let (code, _, err) = rvsadm(&["-A", "-t", "10.0.0.1:80", "-p", "x"], Some(&path), "");
    assert_eq!(
        (code, err.as_str()),
        (2, "invalid timeout value `x' specified\n")
    );
    let (code, out, _) = rvsadm(&["-h"], Some(&path), "");
    assert_eq!(code, 0);
    assert!(out.contains("--add-service     -A"));
    let (code, _, err) = rvsadm(&["--nonsense"], Some(&path), "");
    assert_eq!(code, 255);
    assert!(err.starts_with("Try `"), "{err}");
}

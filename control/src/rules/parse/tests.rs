//! The parser: ipvsadm's defaults, short and long options, and errors that name the option.

use rvs_dataplane::config::{Fwd, TunConfig, TunCsum, TunKind};
use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::{SchedFlags, SchedKind};

use super::super::testutil::{cmd, err, ip, tcp};
use super::*;
use crate::rules::RuleSet;

#[test]
fn blank_and_comment_lines_are_none() {
    assert_eq!(parse_line(""), Ok(None));
    assert_eq!(parse_line("   \t "), Ok(None));
    assert_eq!(parse_line("# -A -t 10.0.0.1:80"), Ok(None));
    assert_eq!(parse_line("ipvsadm"), Ok(None));
}

#[test]
fn add_service_defaults_are_ipvsadms() {
    let c = cmd("-A -t 10.0.0.1:80");
    assert_eq!(
        c,
        Command::AddService(ServiceSpec::new(tcp("10.0.0.1", 80)))
    );
    let Command::AddService(s) = c else { panic!() };
    assert_eq!(s.sched, SchedKind::Wlc);
    assert_eq!(s.persistence, None);
    assert!(!s.ops && s.flags.is_empty());
}

#[test]
fn short_and_long_service_options_agree() {
    let pairs = [
        (
            "-A -t 10.0.0.1:80 -s rr",
            "--add-service --tcp-service 10.0.0.1:80 --scheduler rr",
        ),
        (
            "-A -u 10.0.0.1:53 -s rr -o",
            "--add-service --udp-service 10.0.0.1:53 --scheduler=rr --ops",
        ),
        (
            "-E -t 10.0.0.1:80 -s sh -b sh-port",
            "--edit-service --tcp-service 10.0.0.1:80 --scheduler sh --sched-flags sh-port",
        ),
        (
            "-D -t 10.0.0.1:80",
            "--delete-service --tcp-service=10.0.0.1:80",
        ),
        (
            "-A -f 7 -p 60 -M 255.255.0.0",
            "--add-service --fwmark-service 7 --persistent 60 --netmask 255.255.0.0",
        ),
        (
            "-A -f 7 -6 -p",
            "--add-service --fwmark-service 7 --ipv6 --persistent",
        ),
        ("-C", "--clear"),
        ("-Z", "--zero"),
        ("-Z -t 10.0.0.1:80", "--zero --tcp-service 10.0.0.1:80"),
        (
            "-A --sctp-service 10.0.0.1:9 -s rr",
            "--add-service --sctp-service=10.0.0.1:9 -srr",
        ),
    ];
    for (short, long) in pairs {
        assert_eq!(cmd(short), cmd(long), "{short} vs {long}");
    }
}

#[test]
fn short_and_long_server_options_agree() {
    let pairs = [
        ("-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -m -w 5 -x 100 -y 50",
         "--add-server --tcp-service 10.0.0.1:80 --real-server 10.0.0.11:8080 --masquerading --weight 5 --u-threshold 100 --l-threshold 50"),
        ("-e -t 10.0.0.1:80 -r 10.0.0.11 -g -w 0", "--edit-server --tcp-service 10.0.0.1:80 --real-server 10.0.0.11 --gatewaying --weight=0"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.11 -i", "--add-server --tcp-service 10.0.0.1:80 --real-server 10.0.0.11 --ipip"),
        ("-d -t 10.0.0.1:80 -r 10.0.0.11:80", "--delete-server --tcp-service 10.0.0.1:80 --real-server 10.0.0.11:80"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue --tun-port 6080 --tun-csum",
         "-a -t 10.0.0.1:80 -r 10.0.0.11 --ipip --tun-type=gue --tun-port=6080 --tun-csum"),
    ];
    for (short, long) in pairs {
        assert_eq!(cmd(short), cmd(long), "{short} vs {long}");
    }
    let Command::AddServer(_, d) = cmd(pairs[0].0) else {
        panic!()
    };
    assert_eq!(
        (d.fwd, d.weight, d.u_threshold, d.l_threshold, d.port),
        (Fwd::Masq, 5, 100, 50, 8080)
    );
}

#[test]
fn server_defaults_are_direct_routing_weight_one_service_port() {
    let Command::AddServer(id, d) = cmd("-a -t 10.0.0.1:80 -r 10.0.0.11") else {
        panic!()
    };
    assert_eq!(id, tcp("10.0.0.1", 80));
    assert_eq!(
        (d.addr, d.port, d.fwd, d.weight),
        (ip("10.0.0.11"), 80, Fwd::Droute, 1)
    );
    assert_eq!(
        (d.u_threshold, d.l_threshold, d.tun),
        (0, 0, TunConfig::default())
    );
    // NAT keeps a given port; DR and TUN take the service's, as ipvsadm.
    let Command::AddServer(_, d) = cmd("-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -m") else {
        panic!()
    };
    assert_eq!(d.port, 8080);
    let Command::AddServer(_, d) = cmd("-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -g") else {
        panic!()
    };
    assert_eq!(d.port, 80);
    let Command::AddServer(_, d) = cmd("-a -f 5 -r 10.0.0.11:8080") else {
        panic!()
    };
    assert_eq!(d.port, 8080);
    let Command::AddServer(_, d) = cmd("-a -f 5 -r 10.0.0.11") else {
        panic!()
    };
    assert_eq!(d.port, 0);
}

#[test]
fn persistent_with_and_without_value() {
    let p = |line: &str| match cmd(line) {
        Command::AddService(s) | Command::EditService(s) => s.persistence,
        c => panic!("{c:?}"),
    };
    assert_eq!(
        p("-A -t 10.0.0.1:80 -p"),
        Some(Persist {
            timeout_s: 300,
            prefix: 32
        })
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 -p 600"),
        Some(Persist {
            timeout_s: 600,
            prefix: 32
        })
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 -p600"),
        Some(Persist {
            timeout_s: 600,
            prefix: 32
        })
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 --persistent=600"),
        Some(Persist {
            timeout_s: 600,
            prefix: 32
        })
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 -p -s rr"),
        Some(Persist {
            timeout_s: 300,
            prefix: 32
        })
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 -p -M 24"),
        Some(Persist {
            timeout_s: 300,
            prefix: 24
        })
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 --persistent -s rr"),
        Some(Persist {
            timeout_s: 300,
            prefix: 32
        })
    );
    assert_eq!(p("-E -t 10.0.0.1:80 -s rr"), None);
    assert!(err("-A -t 10.0.0.1:80 -p 0").contains("-p 0: persistence timeout must be 1..2678400"));
    assert!(err("-A -t 10.0.0.1:80 -p abc").contains("-p abc"));
}

#[test]
fn netmask_dotted_or_prefix_length() {
    let prefix = |line: &str| match cmd(line) {
        Command::AddService(s) => s.persistence.map(|p| p.prefix),
        c => panic!("{c:?}"),
    };
    assert_eq!(prefix("-A -t 10.0.0.1:80 -p -M 255.255.255.0"), Some(24));
    assert_eq!(prefix("-A -t 10.0.0.1:80 -p -M 24"), Some(24));
    assert_eq!(
        prefix("-A -t 10.0.0.1:80 -p --netmask 255.255.0.0"),
        Some(16)
    );
    assert_eq!(prefix("-A -t 10.0.0.1:80 -p -M 0.0.0.0"), Some(0));
    assert_eq!(prefix("-A -t [fd00::1]:80 -p -M 64"), Some(64));
    assert_eq!(prefix("-A -t [fd00::1]:80 -p"), Some(128));
    assert_eq!(prefix("-A -f 3 -6 -p -M 48"), Some(48));
    assert_eq!(prefix("-A -f 3 -M 48 -6 -p"), Some(48));
    // Accepted without -p, as ipvsadm, and kept nowhere.
    assert_eq!(prefix("-A -t 10.0.0.1:80 -M 24"), None);
    assert!(err("-A -t 10.0.0.1:80 -p -M 255.0.255.0")
        .contains("-M 255.0.255.0: not a contiguous netmask"));
    assert!(err("-A -t 10.0.0.1:80 -p -M 33").contains("-M 33"));
    assert!(err("-A -t [fd00::1]:80 -p -M 255.255.255.0").contains("IPv6 netmask"));
    assert!(err("-A -t [fd00::1]:80 -p -M 0").contains("-M 0"));
    assert!(err("-A -t [fd00::1]:80 -p -M 129").contains("-M 129"));
}

#[test]
fn ipv6_services_and_servers() {
    let c = cmd("-A -t [fd00::1]:80 -s rr");
    let id = ServiceId::Addr {
        proto: Proto::Tcp,
        addr: ip("fd00::1"),
        port: 80,
    };
    assert_eq!(
        c,
        Command::AddService(ServiceSpec {
            sched: SchedKind::Rr,
            ..ServiceSpec::new(id)
        })
    );
    let Command::AddServer(_, d) = cmd("-a -t [fd00::1]:80 -r [fd00::2]:8080 -m") else {
        panic!()
    };
    assert_eq!((d.addr, d.port), (ip("fd00::2"), 8080));
    let Command::AddServer(_, d) = cmd("-a -t [fd00::1]:80 -r fd00::2") else {
        panic!()
    };
    assert_eq!((d.addr, d.port), (ip("fd00::2"), 80));
    let Command::AddServer(_, d) = cmd("-a -t [fd00::1]:80 -r [fd00::2]") else {
        panic!()
    };
    assert_eq!(d.port, 80);
    assert_eq!(
        cmd("-A -f 9 -6"),
        Command::AddService(ServiceSpec::new(ServiceId::Fwmark { mark: 9, v6: true }))
    );
    assert_eq!(cmd("--add-service -6 -f 9"), cmd("-A -f 9 -6"));
    assert!(err("-a -t [fd00::1]:80 -r 10.0.0.2")
        .contains("-r 10.0.0.2: an IPv4 real server for an IPv6 service"));
    assert!(err("-a -f 9 -r fd00::2").contains("an IPv6 real server for an IPv4 service"));
    assert!(err("-A -t [fd00::1]:80 -6").contains("-6: only with -f"));
    // A bare IPv6 address has no port (fd00::1:80 is an address): ipvsadm reads it so too.
    assert!(err("-A -t fd00::1:80").contains("port 0 (all ports) is only for persistent services (add -p); an IPv6 address with a port needs brackets"));
}

#[test]
fn scheduler_flags_and_aliases() {
    let flags = |line: &str| match cmd(line) {
        Command::AddService(s) => (s.sched, s.flags),
        c => panic!("{c:?}"),
    };
    let (k, f) = flags("-A -t 10.0.0.1:80 -s sh -b sh-fallback,sh-port");
    assert_eq!(k, SchedKind::Sh);
    assert_eq!(
        f,
        SchedFlagBits {
            flag1: true,
            flag2: true,
            flag3: false
        }
    );
    assert_eq!(
        f.for_engine(k),
        SchedFlags {
            sh_fallback: true,
            sh_port: true,
            ..SchedFlags::default()
        }
    );
    let (k, f) = flags("-A -t 10.0.0.1:80 -b mh-port -s mh");
    assert_eq!(
        f.for_engine(k),
        SchedFlags {
            mh_port: true,
            ..SchedFlags::default()
        }
    );
    let (k, f) = flags("-A -t 10.0.0.1:80 -s mh -b flag-1");
    assert_eq!(
        f.for_engine(k),
        SchedFlags {
            mh_fallback: true,
            ..SchedFlags::default()
        }
    );
    let (k, f) = flags("-A -t 10.0.0.1:80 -s rr -b flag-1,flag-2,flag-3");
    assert_eq!(
        f,
        SchedFlagBits {
            flag1: true,
            flag2: true,
            flag3: true
        }
    );
    assert_eq!(f.for_engine(k), SchedFlags::default());
    assert!(err("-A -t 10.0.0.1:80 -b sh-port")
        .contains("-b sh-port: scheduler flag sh-port is for -s sh, not -s wlc"));
    assert!(err("-A -t 10.0.0.1:80 -s sh -b sh-bogus").contains("unknown scheduler flag"));
    assert!(err("-A -t 10.0.0.1:80 -s fastest").contains("-s fastest: unknown scheduler"));
}

#[test]
fn tunnel_options_follow_ipvsadms_table() {
    let tun = |line: &str| match cmd(line) {
        Command::AddServer(_, d) => d.tun,
        c => panic!("{c:?}"),
    };
    assert_eq!(
        tun("-a -t 10.0.0.1:80 -r 10.0.0.11 -i"),
        TunConfig::default()
    );
    assert_eq!(
        tun("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type ipip"),
        TunConfig::default()
    );
    assert_eq!(
        tun("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue --tun-port 6080 --tun-remcsum"),
        TunConfig {
            kind: TunKind::Gue,
            port: 6080,
            csum: TunCsum::RemCsum
        }
    );
    assert_eq!(
        tun("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gre --tun-csum"),
        TunConfig {
            kind: TunKind::Gre,
            port: 0,
            csum: TunCsum::Csum
        }
    );
    assert_eq!(
        tun("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gre --tun-nocsum"),
        TunConfig {
            kind: TunKind::Gre,
            port: 0,
            csum: TunCsum::NoCsum
        }
    );
    assert!(
        err("-a -t 10.0.0.1:80 -r 10.0.0.11 --tun-type gue --tun-port 1")
            .contains("--tun-type gue: tunnel options need -i")
    );
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue").contains("needs --tun-port"));
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-port 9")
        .contains("--tun-port 9: not valid with --tun-type ipip"));
    assert!(
        err("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gre --tun-remcsum")
            .contains("--tun-remcsum: not valid with --tun-type gre")
    );
    assert!(err(
        "-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue --tun-port 9 --tun-csum --tun-nocsum"
    )
    .contains("--tun-nocsum: conflicts with --tun-csum"));
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type vxlan")
        .contains("--tun-type vxlan: unknown tunnel type"));
    assert!(
        err("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue --tun-port 0")
            .contains("--tun-port 0: tunnel port must be 1..65535")
    );
}

#[test]
fn errors_name_the_line_and_the_field() {
    let e = RuleSet::from_text("-A -t 10.0.0.1:80\n\n-a -t 10.0.0.1:80 -r 10.0.0.11 -w 70000\n")
        .unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(e.to_string(), "line 3: -w 70000: weight must be 0..65535");
    let e = parse_rules("# x\n-A -t 10.0.0.1:80 -x 5\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2: -x 5: not an option of -A (add-service)"
    );
    let e = RuleSet::from_text("-a -t 10.0.0.1:80 -r 10.0.0.11").unwrap_err();
    assert_eq!(e.to_string(), "line 1: -t 10.0.0.1:80: Service not defined");
    assert!(err("-A -t 10.0.0.1")
        .contains("-t 10.0.0.1: port 0 (all ports) is only for persistent services"));
    assert!(
        err("-A -t 10.0.0.1:80 -o").contains("-o: one-packet scheduling is only for UDP services")
    );
    assert!(err("-A -f 4 -o").contains("-o: one-packet scheduling on a fwmark service"));
    assert!(err("-A -f 0").contains("-f 0: a fwmark must be 1..4294967295"));
    assert!(err("-A -t 10.0.0.1:99999").contains("-t 10.0.0.1:99999: port must be 0..65535"));
    assert!(err("-A -t web.example:80")
        .contains("-t web.example:80: \"web.example\" is not a numeric IP address"));
    assert!(err("-A -t 224.0.0.1:80").contains("is not a unicast address"));
    assert!(err("-a -t 10.0.0.1:80 -r 0.0.0.0")
        .contains("-r 0.0.0.0: 0.0.0.0 is not a unicast address"));
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1").contains("-w -1: weight must be 0..65535"));
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -x 10 -y 20")
        .contains("-y 20: lower threshold is higher than the upper threshold (10)"));
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -y 1").contains("-y 1: lower threshold"));
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -x 2147483648")
        .contains("-x 2147483648: upper threshold must be 0..2147483647"));
    assert!(err("-a -t 10.0.0.1:80").contains("-a (add-server) needs -r"));
    assert!(err("-a -r 10.0.0.2").contains("needs a service"));
    assert!(err("-A -t 10.0.0.1:80 -u 10.0.0.1:80")
        .contains("-u 10.0.0.1:80: conflicts with -t 10.0.0.1:80"));
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -m -g").contains("-g: conflicts with -m"));
    assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 1 -w 2").contains("-w 2: given twice"));
    assert!(err("-A -a -t 10.0.0.1:80").contains("-a: a second command after -A"));
    assert!(err("-t 10.0.0.1:80").contains("no command"));
    assert!(err("-L -n").contains("-L: not a rule command"));
    assert!(err("-S").contains("not a rule command"));
    assert!(err("-A -t 10.0.0.1:80 --bogus").contains("--bogus: unknown option"));
    assert!(err("-A -t 10.0.0.1:80 -q").contains("-q: unknown option"));
    assert!(err("-A -t 10.0.0.1:80 extra").contains("extra: unexpected argument"));
    assert!(err("-A -t").contains("-t: needs a value"));
    assert!(err("-A -t 10.0.0.1:80 --pe sip")
        .contains("--pe sip: persistence engines are not supported"));
    assert!(err("-C -t 10.0.0.1:80").contains("not an option of -C"));
    assert!(err("-D -t 10.0.0.1:80 -s rr").contains("-s rr: not an option of -D"));
    assert!(err("-d -t 10.0.0.1:80 -r 10.0.0.2 -w 3").contains("-w 3: not an option of -d"));
    assert!(err("--ops=1 -A").contains("--ops=1: --ops takes no value"));
}

#[test]
fn leading_ipvsadm_word_and_trailing_comment_are_dropped() {
    assert_eq!(
        cmd("ipvsadm -A -t 10.0.0.1:80 # web"),
        cmd("-A -t 10.0.0.1:80")
    );
}

#[test]
fn clustered_short_options() {
    assert_eq!(
        cmd("-a -t 10.0.0.1:80 -r 10.0.0.2 -mw5"),
        cmd("-a -t 10.0.0.1:80 -r 10.0.0.2 -m -w 5")
    );
}

/// What the general path makes of an IPv4 `addr[:port]` text, for the fast path to agree with.
fn v4_by_std(s: &str) -> Option<(std::net::Ipv4Addr, Option<u16>)> {
    let (a, p) = match s.rsplit_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let a = a.parse().ok()?;
    let p = match p {
        None => None,
        Some(p) => Some(parse_num(p, 0, 65535, "port").ok()? as u16),
    };
    Some((a, p))
}

#[test]
fn the_ipv4_fast_path_takes_only_what_the_general_path_takes_alike() {
    let cases = [
        "10.0.0.1",
        "10.0.0.1:80",
        "255.255.255.255:65535",
        "0.0.0.0:0",
        "1.2.3.4:080",
        "1.2.3.4:65536",
        "1.2.3.4:",
        "1.2.3.4:8a",
        "01.2.3.4",
        "1.2.3.256",
        "1.2.3",
        "1.2.3.4.5",
        "1..3.4",
        "1.2.3.4:123456",
        ".1.2.3",
        "1.2.3.4 ",
        "fd00::1",
        "1000.2.3.4",
        "1.2.3.4::80",
    ];
    for s in cases {
        if let Some(fast) = v4_addr_port(s) {
            assert_eq!(Some(fast), v4_by_std(s), "{s}");
        }
        // Whatever the fast path leaves, the general path answers, as it always did.
        let general = v4_by_std(s).map(|(a, p)| (std::net::IpAddr::V4(a), p));
        if let Some(g) = general {
            assert_eq!(parse_addr_port(s).ok(), Some(g), "{s}");
        }
    }
    assert!(v4_addr_port("10.0.0.1:80").is_some());
}

proptest::proptest! {
    #[test]
    fn the_ipv4_fast_path_agrees_with_std(s in "[0-9]{1,4}(\\.[0-9]{1,4}){2,4}(:[0-9]{0,6})?") {
        if let Some(fast) = v4_addr_port(&s) {
            proptest::prop_assert_eq!(Some(fast), v4_by_std(&s));
        }
    }
}

//! `ipvsadm -L`: the service table as ipvsadm 1.31 prints it, from a [`Listing`].
//!
//! Byte for byte ipvsadm's `list_all`, `print_title`, `print_service_entry` and
//! `print_largenum`: the header with the conn table size, a title for the chosen columns, a
//! line per service (`TCP  10.0.0.1:80 wlc persistent 300 mask 255.255.255.0`) and a `  -> `
//! line per dest, IPv4 names cut at ipvsadm's widths, numbers scaled to K/M/G/T unless
//! `--exact`, services and dests sorted as ipvsadm sorts them ([`super::sort`]) unless
//! `--nosort`. Without `-n`, addresses and ports are named through [`Names`].

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use super::names::{ntop, Names};
use super::sort;
use crate::protocol::{DestRow, Forward, Listing, ServiceRow, TunCsumInfo, TunnelInfo, VirtualKey};

/// The IPVS version rvs reports (the kernel's `IP_VS_VERSION_CODE`, 1.2.1).
pub const IPVS_VERSION: &str = "1.2.1";

/// ipvsadm's printing flags (`FMT_*`) that a listing honours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Format {
    /// `-n`: no names.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--nosort`.
    pub nosort: bool,
    /// `--exact`.
    pub exact: bool,
    /// `--tun-info`.
    pub tun_info: bool,
}

/// C's `%-Ns`: `s` then spaces up to `w` bytes.
pub(crate) fn left(out: &mut String, s: &str, w: usize) {
    out.push_str(s);
    for _ in s.len()..w {
        out.push(' ');
    }
}

/// C's `%Ns`: spaces up to `w` bytes, then `s`.
pub(crate) fn right(out: &mut String, s: &str, w: usize) {
    for _ in s.len()..w {
        out.push(' ');
    }
    out.push_str(s);
}

/// Cut `s` to at most `n` bytes (on a character boundary), as ipvsadm's `name[n] = '\0'`.
pub(crate) fn cut(s: &mut String, n: usize) {
    if s.len() > n {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// The protocol's name in a service line (`protocol_name`).
fn protocol_name(proto: u8) -> &'static str {
    match proto {
        6 => "TCP",
        17 => "UDP",
        132 => "SCTP",
        _ => "?",
    }
}

/// ipvsadm's `addrport_to_anyname`: `10.0.0.1:80`, `[fd00::1]:80`, or with names
/// `www.example.com:http`; at most 59 bytes (its buffer is 60).
pub fn addrport(addr: IpAddr, port: u16, proto: u8, numeric: bool, names: &dyn Names) -> String {
    let (host, service) = if numeric {
        (ntop(addr), port.to_string())
    } else {
        (
            names.host_name(addr).unwrap_or_else(|| ntop(addr)),
            names
                .service_name(port, proto)
                .unwrap_or_else(|| port.to_string()),
        )
    };
    let mut s = if addr.is_ipv4() {
        format!("{host}:{service}")
    } else {
        format!("[{host}]:{service}")
    };
    cut(&mut s, 59);
    s
}

/// ipvsadm's `print_largenum`: nine columns; past 99,999,999 scaled to K, M, G or T with
/// eight digits, unless `exact`.
pub fn largenum(out: &mut String, i: u64, exact: bool) {
    if exact {
        let digits = i.to_string();
        let w = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        right(out, &digits, w);
        return;
    }
    let (v, unit) = if i < 100_000_000 {
        (i, "")
    } else if i < 1_000_000_000 {
        (i / 1_000, "K")
    } else if i < 100_000_000_000 {
        (i / 1_000_000, "M")
    } else if i < 100_000_000_000_000 {
        (i / 1_000_000_000, "G")
    } else {
        (i / 1_000_000_000_000, "T")
    };
    if unit.is_empty() {
        right(out, &v.to_string(), 9);
    } else {
        right(out, &v.to_string(), 8);
        out.push_str(unit);
    }
}

/// The first line of `-L` without a service.
pub fn header(out: &mut String, conn_table_size: u64) {
    let _ = writeln!(
        out,
        "IP Virtual Server version {IPVS_VERSION} (size={conn_table_size})"
    );
}

/// ipvsadm's `print_title`: the column headings for the chosen columns.
pub fn title(out: &mut String, fmt: &Format) {
    let first = "Prot LocalAddress:Port";
    let cols = |out: &mut String, names: [&str; 5]| {
        left(out, first, 33);
        for n in names {
            out.push(' ');
            right(out, n, 8);
        }
        out.push_str("\n  -> RemoteAddress:Port\n");
    };
    if fmt.stats {
        cols(out, ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]);
    } else if fmt.rate {
        cols(out, ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"]);
    } else if fmt.thresholds {
        left(out, first, 33);
        for (n, w) in [
            ("Uthreshold", 10),
            ("Lthreshold", 10),
            ("ActiveConn", 10),
            ("InActConn", 10),
        ] {
            out.push(' ');
            left(out, n, w);
        }
        out.push_str("\n  -> RemoteAddress:Port\n");
    } else if fmt.persistent_conn {
        left(out, first, 33);
        for (n, w) in [
            ("Weight", 9),
            ("PersistConn", 11),
            ("ActiveConn", 10),
            ("InActConn", 10),
        ] {
            out.push(' ');
            left(out, n, w);
        }
        out.push_str("\n  -> RemoteAddress:Port\n");
    } else if fmt.tun_info {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str(
            "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        );
    } else {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
}

/// The scheduler flags as ipvsadm names them for this scheduler (`print_sched_flags`).
fn sched_flags(sched: &str, bits: u32) -> String {
    let names: [&str; 3] = match sched {
        "sh" => ["sh-fallback", "sh-port", ""],
        "mh" => ["mh-fallback", "mh-port", ""],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    names
        .iter()
        .enumerate()
        .filter(|(i, n)| !n.is_empty() && bits & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

/// A prefix length as a dotted IPv4 mask.
fn v4_mask(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
}

/// The protocol a service's dests are named with (a fwmark service is TCP to ipvsadm).
fn service_proto(key: &VirtualKey) -> u8 {
    match *key {
        VirtualKey::Addr { proto, .. } => proto,
        VirtualKey::Fwmark { .. } => 6,
    }
}

/// ipvsadm's `svc_name`: `TCP  10.0.0.1:80` (IPv4 cut at 33 bytes), `FWM  7`, `FWM  7 IPv6`.
fn service_name(key: &VirtualKey, fmt: &Format, names: &dyn Names) -> String {
    match *key {
        VirtualKey::Fwmark { mark, v6 } => {
            if v6 {
                format!("FWM  {mark} IPv6")
            } else {
                format!("FWM  {mark}")
            }
        }
        VirtualKey::Addr { proto, addr, port } => {
            let mut s = String::new();
            left(&mut s, protocol_name(proto), 4);
            s.push(' ');
            s.push_str(&addrport(addr, port, proto, fmt.numeric, names));
            if addr.is_ipv4() {
                cut(&mut s, 33);
            }
            s
        }
    }
}

/// The forwarding method's name (`fwd_name`).
fn fwd_name(f: Forward) -> &'static str {
    match f {
        Forward::Masq => "Masq",
        Forward::Tunnel => "Tunnel",
        Forward::Route => "Route",
    }
}

/// `--tun-info`'s column (`fwd_tun_info`): `ipip`, `gue:6080:-c`, `gre:+c`; `n/a` for a dest
/// that is not tunnelled.
fn tun_info(d: &DestRow) -> String {
    if d.forward != Forward::Tunnel {
        return "n/a".into();
    }
    let flag = |c: TunCsumInfo| match c {
        TunCsumInfo::NoCsum => "-c",
        TunCsumInfo::Csum => "+c",
        TunCsumInfo::RemCsum => "r+c",
    };
    match d.tunnel.unwrap_or(TunnelInfo::Ipip) {
        TunnelInfo::Ipip => "ipip".into(),
        TunnelInfo::Gue { port, csum } => format!("gue:{port}:{}", flag(csum)),
        TunnelInfo::Gre { csum } => format!("gre:{}", flag(csum)),
    }
}

/// One service and its dests (`print_service_entry` without `FMT_RULE`).
pub fn service(out: &mut String, svc: &ServiceRow, fmt: &Format, names: &dyn Names) {
    let name = service_name(&svc.key, fmt, names);
    if fmt.stats || fmt.rate {
        left(out, &name, 33);
        let s = &svc.stats;
        let r = &svc.rates;
        let vals = if fmt.stats {
            [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
        } else {
            [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]
        };
        for v in vals {
            largenum(out, v, fmt.exact);
        }
    } else {
        let _ = write!(out, "{name} {}", svc.sched);
        if svc.sched_flags & 0b111 != 0 {
            let _ = write!(out, " ({})", sched_flags(&svc.sched, svc.sched_flags));
        }
        if let Some(timeout) = svc.persistent {
            let _ = write!(out, " persistent {timeout}");
            let v6 = match svc.key {
                VirtualKey::Addr { addr, .. } => addr.is_ipv6(),
                VirtualKey::Fwmark { v6, .. } => v6,
            };
            if v6 {
                if svc.netmask_prefix != 128 {
                    let _ = write!(out, " mask {}", svc.netmask_prefix);
                }
            } else if svc.netmask_prefix != 32 {
                let _ = write!(out, " mask {}", v4_mask(svc.netmask_prefix));
            }
        }
        if svc.ops {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    let proto = service_proto(&svc.key);
    let mut dests = svc.dests.clone();
    if !fmt.nosort {
        sort::sort_dests(&mut dests);
    }
    for d in &dests {
        dest(out, d, proto, fmt, names);
    }
}

/// One `  -> ` line.
fn dest(out: &mut String, d: &DestRow, proto: u8, fmt: &Format, names: &dyn Names) {
    let mut dname = addrport(d.addr, d.port, proto, fmt.numeric, names);
    if d.addr.is_ipv4() {
        cut(&mut dname, 28);
    }
    out.push_str("  -> ");
    left(out, &dname, 28);
    if fmt.stats {
        let s = &d.stats;
        for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
            largenum(out, v, fmt.exact);
        }
        out.push('\n');
    } else if fmt.rate {
        let r = &d.rates;
        // ipvsadm prints the dest's CPS and packet rates unscaled.
        for v in [r.cps, r.inpps, r.outpps] {
            out.push(' ');
            right(out, &v.to_string(), 8);
        }
        largenum(out, r.inbps, fmt.exact);
        largenum(out, r.outbps, fmt.exact);
        out.push('\n');
    } else if fmt.thresholds {
        columns(
            out,
            &[
                (d.u_threshold.to_string(), 10),
                (d.l_threshold.to_string(), 10),
                (d.active.to_string(), 10),
                (d.inactive.to_string(), 10),
            ],
        );
    } else if fmt.persistent_conn {
        // `%-9u`: the weight as unsigned.
        columns(
            out,
            &[
                ((d.weight as u32).to_string(), 9),
                (d.persist.to_string(), 11),
                (d.active.to_string(), 10),
                (d.inactive.to_string(), 10),
            ],
        );
    } else if fmt.tun_info {
        columns(
            out,
            &[
                (fwd_name(d.forward).to_string(), 7),
                (tun_info(d), 13),
                (d.weight.to_string(), 6),
                (d.active.to_string(), 10),
                (d.inactive.to_string(), 10),
            ],
        );
    } else {
        columns(
            out,
            &[
                (fwd_name(d.forward).to_string(), 7),
                (d.weight.to_string(), 6),
                (d.active.to_string(), 10),
                (d.inactive.to_string(), 10),
            ],
        );
    }
}

/// ` %-Ns` for each column, then the newline.
fn columns(out: &mut String, cols: &[(String, usize)]) {
    for (s, w) in cols {
        out.push(' ');
        left(out, s, *w);
    }
    out.push('\n');
}

/// `-L` (`list_all`): header, title, every service in ipvsadm's order.
pub fn list_all(listing: &Listing, fmt: &Format, names: &dyn Names) -> String {
    let mut out = String::new();
    header(&mut out, listing.conn_table_size);
    let mut services = listing.services.clone();
    if !fmt.nosort {
        sort::sort_services(&mut services);
    }
    title(&mut out, fmt);
    for s in &services {
        service(&mut out, s, fmt, names);
    }
    out
}

/// `-L -t VIP:PORT` (`list_service`): title and the one service, no header.
pub fn list_service(listing: &Listing, fmt: &Format, names: &dyn Names) -> String {
    let mut out = String::new();
    title(&mut out, fmt);
    for s in &listing.services {
        service(&mut out, s, fmt, names);
    }
    out
}

/// `-L --timeout` (`list_timeout`).
pub fn timeouts(tcp: u32, tcpfin: u32, udp: u32) -> String {
    format!("Timeout (tcp tcpfin udp): {tcp} {tcpfin} {udp}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(i: u64, exact: bool) -> String {
        let mut s = String::new();
        largenum(&mut s, i, exact);
        s
    }

    #[test]
    fn largenum_scales_as_ipvsadm() {
        assert_eq!(num(0, false), "        0");
        assert_eq!(num(99_999_999, false), " 99999999");
        assert_eq!(num(100_000_000, false), "  100000K");
        assert_eq!(num(999_999_999, false), "  999999K");
        assert_eq!(num(1_000_000_000, false), "    1000M");
        assert_eq!(num(99_999_999_999, false), "   99999M");
        assert_eq!(num(100_000_000_000, false), "     100G");
        assert_eq!(num(99_999_999_999_999, false), "   99999G");
        assert_eq!(num(100_000_000_000_000, false), "     100T");
        assert_eq!(num(u64::MAX, false), "18446744T");
        assert_eq!(num(12345678, true), " 12345678");
        assert_eq!(num(123456789, true), " 123456789");
        assert_eq!(num(u64::MAX, true), " 18446744073709551615");
    }

    #[test]
    fn names_are_cut_at_ipvsadm_widths() {
        let n = super::super::names::NumericNames;
        let a: IpAddr = "fd00:1:2:3:4:5:6:7".parse().unwrap();
        assert_eq!(addrport(a, 80, 6, true, &n), "[fd00:1:2:3:4:5:6:7]:80");
        let key = VirtualKey::Addr {
            proto: 132,
            addr: "255.255.255.255".parse().unwrap(),
            port: 65535,
        };
        let fmt = Format {
            numeric: true,
            ..Format::default()
        };
        // "SCTP 255.255.255.255:65535" is 26 bytes: nothing to cut.
        assert_eq!(service_name(&key, &fmt, &n), "SCTP 255.255.255.255:65535");
        let mut s = "x".repeat(40);
        cut(&mut s, 33);
        assert_eq!(s.len(), 33);
    }

    #[test]
    fn sched_flags_are_named_per_scheduler() {
        assert_eq!(sched_flags("sh", 0b011), "sh-fallback,sh-port");
        assert_eq!(sched_flags("sh", 0b100), "");
        assert_eq!(sched_flags("mh", 0b010), "mh-port");
        assert_eq!(sched_flags("wlc", 0b101), "flag-1,flag-3");
        assert_eq!(v4_mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(v4_mask(0), Ipv4Addr::new(0, 0, 0, 0));
    }
}

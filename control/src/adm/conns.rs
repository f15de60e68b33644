//! `ipvsadm -L -c`: the conn table as ipvsadm 1.31 prints `/proc/net/ip_vs_conn`
//! (`list_conn`, `print_conn`), from [`ConnRow`]s.
//!
//! Each row: protocol, the time to expiry as `mm:ss` (whole seconds, minutes unbounded), the
//! state, and client, virtual and destination `addr:port` (named without `-n`). ipvsadm's
//! `--persistent-conn` adds `pe name` and `pe_data` headings; rvs has no persistence engines,
//! so, as ipvsadm does for a conn without them, its rows have the plain columns.

use std::fmt::Write as _;

use super::listing::{addrport, left, Format};
use super::names::Names;
use crate::protocol::ConnRow;

/// The lines before the first conn.
pub fn title(out: &mut String, fmt: &Format) {
    out.push_str("IPVS connection entries\n");
    out.push_str("pro expire ");
    let mut heads = vec![("state", 11), ("source", 18), ("virtual", 18)];
    if fmt.persistent_conn {
        heads.extend([("destination", 18), ("pe name", 16)]);
        for (h, w) in heads {
            left(out, h, w);
            out.push(' ');
        }
        out.push_str("pe_data\n");
    } else {
        for (h, w) in heads {
            left(out, h, w);
            out.push(' ');
        }
        out.push_str("destination\n");
    }
}

/// The protocol's name as the kernel writes it in `/proc/net/ip_vs_conn`.
fn proto_name(proto: u8) -> String {
    match proto {
        0 => "IP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        132 => "SCTP".into(),
        p => format!("IP_{p}"),
    }
}

/// `expires` seconds as ipvsadm's `%02d:%02d` of minutes and seconds.
pub fn expire(expires_ms: u64) -> String {
    let s = expires_ms / 1000;
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// One conn (`print_conn`).
pub fn row(out: &mut String, c: &ConnRow, fmt: &Format, names: &dyn Names) {
    let pname = proto_name(c.proto);
    // ipvsadm names ports only for TCP, UDP and SCTP.
    let proto = match c.proto {
        6 | 17 | 132 => c.proto,
        _ => 0,
    };
    let cname = addrport(c.caddr, c.cport, proto, fmt.numeric, names);
    let vname = addrport(c.vaddr, c.vport, proto, fmt.numeric, names);
    let dname = addrport(c.daddr, c.dport, proto, fmt.numeric, names);
    left(out, &pname, 3);
    out.push(' ');
    left(out, &expire(c.expires_ms), 6);
    out.push(' ');
    left(out, &c.state, 11);
    out.push(' ');
    left(out, &cname, 18);
    out.push(' ');
    left(out, &vname, 18);
    let _ = writeln!(out, " {dname}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_is_minutes_and_seconds() {
        assert_eq!(expire(0), "00:00");
        assert_eq!(expire(999), "00:00");
        assert_eq!(expire(59_999), "00:59");
        assert_eq!(expire(60_000), "01:00");
        assert_eq!(expire(900_000), "15:00");
        // Persistence templates run past an hour: minutes keep counting.
        assert_eq!(expire(86_400_000), "1440:00");
    }

    #[test]
    fn titles_as_ipvsadm() {
        let mut s = String::new();
        title(&mut s, &Format::default());
        assert_eq!(
            s,
            "IPVS connection entries\n\
             pro expire state       source             virtual            destination\n"
        );
        let mut s = String::new();
        title(
            &mut s,
            &Format {
                persistent_conn: true,
                ..Format::default()
            },
        );
        assert_eq!(
            s,
            "IPVS connection entries\n\
             pro expire state       source             virtual            destination        \
             pe name          pe_data\n"
        );
    }
}

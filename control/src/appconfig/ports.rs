//! `[[port]]`, `[[neighbor]]`, `[[route]]`: the NIC ports and their addresses, static
//! neighbors, static routes; read and checked against each other (a neighbor or gateway on a
//! connected prefix of its port, no address on two ports, no overlapping connected prefixes).

use std::net::IpAddr;
use std::ops::Range;

use super::raw::{RawNeighbor, RawPort, RawRoute, S};
use super::values::{
    contains, fmt_mac, fmt_prefix, is_link_local_v6, mask, overlap, Ctx, Mac, Prefix, R,
};
use super::{AppConfig, ConfigFileError};

/// `[[port]] mtu` when not given.
pub const DEFAULT_MTU: u16 = 1500;

/// `[[port]]`: one NIC port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    pub name: String,
    pub mac: Mac,
    /// The port's own addresses with their connected prefix lengths.
    pub addrs: Vec<Prefix>,
    /// DPDK device (`net_af_packet0`, `0000:3b:00.0`); `None`: the EAL's probe order.
    pub device: Option<String>,
    pub mtu: u16,
    /// 802.1Q VLAN id the port sends and accepts; `None`: untagged.
    pub vlan: Option<u16>,
}

impl PortConfig {
    /// The port's connected prefixes (its addresses masked to their prefix lengths).
    pub fn connected(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.addrs.iter().map(|&(a, l)| (mask(a, l), l))
    }

    /// `ip` is on one of the port's connected prefixes.
    pub fn on_link(&self, ip: IpAddr) -> bool {
        self.connected().any(|p| contains(p, ip))
    }
}

/// `[[neighbor]]`: a static neighbor (no ARP or ND needed for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborConfig {
    pub ip: IpAddr,
    pub mac: Mac,
    pub port: String,
}

/// `[[route]]`: a static route, IPv4 or IPv6.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    pub prefix: Prefix,
    /// Gateway; `None`: the prefix is on-link on `port`.
    pub via: Option<IpAddr>,
    pub port: String,
}

impl AppConfig {
    /// The port named `name`.
    pub fn port(&self, name: &str) -> Option<&PortConfig> {
        self.ports.iter().find(|p| p.name == name)
    }
}

/// A port's own address must be a unicast host on its prefix.
fn check_port_addr(p: Prefix) -> Result<(), String> {
    let (a, l) = p;
    let bad = match a {
        IpAddr::V4(v) => {
            v.is_unspecified() || v.is_multicast() || v.is_broadcast() || v.is_loopback()
        }
        IpAddr::V6(v) => v.is_unspecified() || v.is_multicast() || v.is_loopback(),
    };
    if bad {
        return Err(format!("{a} is not a unicast address"));
    }
    if let IpAddr::V4(v) = a {
        if l <= 30 {
            let host = u32::from(v) & !u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0);
            let all = !u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0);
            if host == 0 {
                return Err(format!("{a}/{l} is the network address of its prefix"));
            }
            if host == all {
                return Err(format!("{a}/{l} is the broadcast address of its prefix"));
            }
        }
    }
    Ok(())
}

/// `[[port]]`: at least one; names, MACs and devices unique; addresses unicast and on no
/// other port, connected prefixes not overlapping another port's.
pub(super) fn read_ports(c: &Ctx, raw: &[S<RawPort>]) -> R<Vec<PortConfig>> {
    if raw.is_empty() {
        return Err(ConfigFileError {
            file: None,
            line: 0,
            column: 0,
            key: "port".into(),
            message: "no [[port]]: the appliance needs at least one port".into(),
        });
    }
    let mut ports: Vec<PortConfig> = Vec::new();
    // Every address with its port index, key and span, for the overlap checks.
    let mut seen_addrs: Vec<(Prefix, usize, Range<usize>)> = Vec::new();
    for (i, sp) in raw.iter().enumerate() {
        let p = sp.get_ref();
        let k = |f: &str| format!("port[{i}].{f}");
        let name = p.name.get_ref().trim().to_string();
        let name_ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
        if !name_ok {
            return Err(c.err(
                p.name.span(),
                &k("name"),
                format!(
                    "{:?} is not a port name (want 1..32 letters, digits, '_', '-' or '.')",
                    p.name.get_ref()
                ),
            ));
        }
        if let Some(j) = ports.iter().position(|q| q.name == name) {
            return Err(c.err(
                p.name.span(),
                &k("name"),
                format!("duplicate port name {name:?} (port[{j}] has it)"),
            ));
        }
        let mac = c.mac(&p.mac, &k("mac"))?;
        if let Some(j) = ports.iter().position(|q| q.mac == mac) {
            return Err(c.err(
                p.mac.span(),
                &k("mac"),
                format!("port[{j}] has the same MAC {}", fmt_mac(&mac)),
            ));
        }
        let mut addrs = Vec::new();
        for (n, a) in p.addrs.iter().enumerate() {
            let key = format!("port[{i}].addrs[{n}]");
            let pre = c.prefix(a, &key, true, false)?;
            check_port_addr(pre).map_err(|e| c.err(a.span(), &key, e))?;
            for (q, j, _) in &seen_addrs {
                let other = if *j == i {
                    "this port".to_string()
                } else {
                    format!("port {}", ports.get(*j).map_or("?", |x| x.name.as_str()))
                };
                if q.0 == pre.0 {
                    return Err(c.err(
                        a.span(),
                        &key,
                        format!("address {} is already on {other}", pre.0),
                    ));
                }
                let (mine, theirs) = ((mask(pre.0, pre.1), pre.1), (mask(q.0, q.1), q.1));
                if *j != i && overlap(mine, theirs) {
                    return Err(c.err(
                        a.span(),
                        &key,
                        format!(
                            "{} overlaps {} of {other}: ports' connected prefixes must not overlap",
                            fmt_prefix(mine),
                            fmt_prefix(theirs)
                        ),
                    ));
                }
            }
            seen_addrs.push((pre, i, a.span()));
            addrs.push(pre);
        }
        let device = match &p.device {
            None => None,
            Some(d) => {
                let v = d.get_ref().trim().to_string();
                if v.is_empty() {
                    return Err(c.err(d.span(), &k("device"), "empty device name"));
                }
                if let Some(j) = ports.iter().position(|q| q.device.as_deref() == Some(&v)) {
                    return Err(c.err(
                        d.span(),
                        &k("device"),
                        format!("device {v:?} is also port[{j}]'s"),
                    ));
                }
                Some(v)
            }
        };
        let has_v6 = addrs.iter().any(|a| a.0.is_ipv6());
        let mtu = c.int(&p.mtu, &k("mtu"), 576, 9216, i64::from(DEFAULT_MTU))? as u16;
        if has_v6 && mtu < 1280 {
            let span = p.mtu.as_ref().map_or(sp.span(), |m| m.span());
            return Err(c.err(
                span,
                &k("mtu"),
                format!("{mtu} is below IPv6's minimum MTU 1280 (the port has IPv6 addresses)"),
            ));
        }
        let vlan = match &p.vlan {
            None => None,
            Some(_) => Some(c.int(&p.vlan, &k("vlan"), 1, 4094, 0)? as u16),
        };
        ports.push(PortConfig {
            name,
            mac,
            addrs,
            device,
            mtu,
            vlan,
        });
    }
    Ok(ports)
}

/// The index of the port that `s` names.
fn port_of(c: &Ctx, ports: &[PortConfig], s: &S<String>, key: &str) -> R<usize> {
    let v = s.get_ref().trim();
    ports.iter().position(|p| p.name == v).ok_or_else(|| {
        let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
        c.err(
            s.span(),
            key,
            format!("no port named {v:?} (ports: {})", names.join(", ")),
        )
    })
}

/// A port's connected prefixes, for messages.
fn connected_list(p: &PortConfig) -> String {
    let v: Vec<String> = p.connected().map(fmt_prefix).collect();
    if v.is_empty() {
        "it has no addresses".into()
    } else {
        v.join(", ")
    }
}

/// `[[neighbor]]`: each on a connected prefix of its port (or IPv6 link-local), not the
/// appliance's own address, once per port.
pub(super) fn read_neighbors(
    c: &Ctx,
    raw: &[S<RawNeighbor>],
    ports: &[PortConfig],
    all_addrs: &[IpAddr],
) -> R<Vec<NeighborConfig>> {
    let mut neighbors: Vec<NeighborConfig> = Vec::new();
    for (i, sn) in raw.iter().enumerate() {
        let n = sn.get_ref();
        let k = |f: &str| format!("neighbor[{i}].{f}");
        let ip = c.ip(&n.ip, &k("ip"))?;
        let mac = c.mac(&n.mac, &k("mac"))?;
        let pi = port_of(c, ports, &n.port, &k("port"))?;
        let port = &ports[pi];
        if all_addrs.contains(&ip) {
            return Err(c.err(
                n.ip.span(),
                &k("ip"),
                format!("{ip} is the appliance's own address"),
            ));
        }
        if !port.on_link(ip) && !is_link_local_v6(ip) {
            return Err(c.err(
                n.ip.span(),
                &k("ip"),
                format!(
                    "{ip} is not on a connected prefix of port {} ({})",
                    port.name,
                    connected_list(port)
                ),
            ));
        }
        if let Some(j) = neighbors
            .iter()
            .position(|x| x.ip == ip && x.port == port.name)
        {
            return Err(c.err(
                n.ip.span(),
                &k("ip"),
                format!("{ip} is already neighbor[{j}]"),
            ));
        }
        neighbors.push(NeighborConfig {
            ip,
            mac,
            port: port.name.clone(),
        });
    }
    Ok(neighbors)
}

/// `[[route]]`: each prefix once, without host bits; a gateway of the prefix's family on a
/// connected prefix of the port (or IPv6 link-local), not the appliance's own address.
pub(super) fn read_routes(
    c: &Ctx,
    raw: &[S<RawRoute>],
    ports: &[PortConfig],
    all_addrs: &[IpAddr],
) -> R<Vec<RouteConfig>> {
    let mut routes: Vec<RouteConfig> = Vec::new();
    for (i, sr) in raw.iter().enumerate() {
        let r = sr.get_ref();
        let k = |f: &str| format!("route[{i}].{f}");
        let prefix = c.prefix(&r.prefix, &k("prefix"), false, false)?;
        let pi = port_of(c, ports, &r.port, &k("port"))?;
        let port = &ports[pi];
        let via = match &r.via {
            None => None,
            Some(v) => {
                let ip = c.ip(v, &k("via"))?;
                if ip.is_ipv4() != prefix.0.is_ipv4() {
                    return Err(c.err(
                        v.span(),
                        &k("via"),
                        format!(
                            "gateway {ip} is not of the family of {}",
                            fmt_prefix(prefix)
                        ),
                    ));
                }
                if all_addrs.contains(&ip) {
                    return Err(c.err(
                        v.span(),
                        &k("via"),
                        format!("gateway {ip} is the appliance's own address"),
                    ));
                }
                if !port.on_link(ip) && !is_link_local_v6(ip) {
                    return Err(c.err(
                        v.span(),
                        &k("via"),
                        format!(
                            "gateway {ip} is not on a connected prefix of port {} ({})",
                            port.name,
                            connected_list(port)
                        ),
                    ));
                }
                Some(ip)
            }
        };
        if let Some(j) = routes.iter().position(|x| x.prefix == prefix) {
            return Err(c.err(
                r.prefix.span(),
                &k("prefix"),
                format!("{} is already route[{j}]", fmt_prefix(prefix)),
            ));
        }
        routes.push(RouteConfig {
            prefix,
            via,
            port: port.name.clone(),
        });
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::testutil::{edit, refuse, MINIMAL};

    #[test]
    fn bad_mac_is_refused() {
        let e = refuse(&edit("02:00:00:00:00:01", "02:00:00:00:0:1"));
        assert_eq!(
            e.in_file("appliance.toml").to_string(),
            "appliance.toml line 3, column 7, key port[0].mac: \"02:00:00:00:0:1\" is not a MAC address (want six hex pairs, 02:00:00:00:00:01)"
        );
        assert!(refuse(&edit("02:00:00:00:00:01", "01:00:5e:00:00:01"))
            .message
            .contains("multicast MAC"));
        assert!(refuse(&edit("02:00:00:00:00:01", "00:00:00:00:00:00"))
            .message
            .contains("zero MAC"));
        assert!(refuse(&edit("02:00:00:00:00:01", "02:00:00:00:00:01:02"))
            .message
            .contains("not a MAC"));
        let e = refuse(&edit("02:00:00:00:00:22", "02:00:00:00:00:2g"));
        assert_eq!((e.line, e.key.as_str()), (9, "neighbor[0].mac"));
    }

    #[test]
    fn bad_addresses_and_prefixes_are_refused() {
        let e = refuse(&edit("\"172.16.0.1/24\"", "\"172.16.0.1\""));
        assert_eq!(e.key, "port[0].addrs[1]");
        assert!(e.message.contains("has no prefix length"), "{e}");
        let e = refuse(&edit("\"fd00::1/64\"", "\"fd00::1/129\""));
        assert_eq!(e.key, "port[0].addrs[2]");
        assert!(
            e.message.contains("prefix length 129 is longer than 128"),
            "{e}"
        );
        assert!(refuse(&edit("\"172.16.0.1/24\"", "\"172.16.0.300/24\""))
            .message
            .contains("is not a prefix"));
        assert!(refuse(&edit("\"172.16.0.1/24\"", "\"172.16.0.0/24\""))
            .message
            .contains("network address"));
        assert!(refuse(&edit("\"172.16.0.1/24\"", "\"172.16.0.255/24\""))
            .message
            .contains("broadcast address"));
        assert!(refuse(&edit("\"172.16.0.1/24\"", "\"224.0.0.1/24\""))
            .message
            .contains("not a unicast"));
        let e = refuse(&edit("ip = \"172.16.0.2\"", "ip = \"172.16.0\""));
        assert_eq!((e.line, e.key.as_str()), (8, "neighbor[0].ip"));
        assert!(e.message.contains("is not an IP address"), "{e}");
        let e = refuse(&edit("via = \"10.0.0.254\"", "via = \"10.0.0.254/24\""));
        assert_eq!(e.key, "route[0].via");
    }

    #[test]
    fn prefix_with_host_bits_is_refused_saying_so() {
        let e = refuse(&edit(
            "prefix = \"0.0.0.0/0\"",
            "prefix = \"192.168.1.7/24\"",
        ));
        assert_eq!((e.line, e.key.as_str()), (13, "route[0].prefix"));
        assert!(
            e.message
                .contains("has host bits set (did you mean 192.168.1.0/24?)"),
            "{e}"
        );
        let e = refuse(&format!(
            "{MINIMAL}[[fwmark]]\nmark = 1\nprefix = \"fd00::1/64\"\n"
        ));
        assert_eq!(e.key, "fwmark[0].prefix");
        assert!(e.message.contains("did you mean fd00::/64?"), "{e}");
    }

    #[test]
    fn duplicate_port_name_is_refused() {
        let e = refuse(&format!(
            "{MINIMAL}\n[[port]]\nname = \"p0\"\nmac = \"02:00:00:00:00:02\"\n"
        ));
        assert_eq!((e.line, e.key.as_str()), (21, "port[1].name"));
        assert!(
            e.message
                .contains("duplicate port name \"p0\" (port[0] has it)"),
            "{e}"
        );
        let e = refuse(&format!(
            "{MINIMAL}\n[[port]]\nname = \"p1\"\nmac = \"02:00:00:00:00:01\"\n"
        ));
        assert!(e.message.contains("same MAC"), "{e}");
        let e = refuse(&format!(
            "{MINIMAL}\n[[port]]\nname = \"p 1\"\nmac = \"02:00:00:00:00:02\"\n"
        ));
        assert!(e.message.contains("not a port name"), "{e}");
    }

    #[test]
    fn unknown_port_is_refused() {
        let e = refuse(&edit("port = \"p0\"", "port = \"p9\""));
        assert_eq!((e.line, e.key.as_str()), (10, "neighbor[0].port"));
        assert!(
            e.message.contains("no port named \"p9\" (ports: p0)"),
            "{e}"
        );
        let text = MINIMAL.replace("port = \"p0\"\n\n[defense]", "port = \"eth0\"\n\n[defense]");
        let e = refuse(&text);
        assert_eq!(e.key, "route[0].port");
    }

    #[test]
    fn gateway_off_the_ports_prefixes_is_refused() {
        let e = refuse(&edit("via = \"10.0.0.254\"", "via = \"10.9.0.254\""));
        assert_eq!((e.line, e.key.as_str()), (14, "route[0].via"));
        assert!(e.message.contains("gateway 10.9.0.254 is not on a connected prefix of port p0 (10.0.0.0/24, 172.16.0.0/24, fd00::/64)"), "{e}");
        assert!(refuse(&edit("via = \"10.0.0.254\"", "via = \"fd00::9\""))
            .message
            .contains("not of the family"));
        assert!(refuse(&edit("via = \"10.0.0.254\"", "via = \"10.0.0.1\""))
            .message
            .contains("own address"));
        // A link-local IPv6 gateway is always on link.
        let ok =
            format!("{MINIMAL}\n[[route]]\nprefix = \"::/0\"\nvia = \"fe80::1\"\nport = \"p0\"\n");
        assert!(parse(&ok).is_ok());
        let e = refuse(&edit("ip = \"172.16.0.2\"", "ip = \"172.17.0.2\""));
        assert!(
            e.message
                .contains("172.17.0.2 is not on a connected prefix of port p0"),
            "{e}"
        );
        let dup = format!("{MINIMAL}\n[[route]]\nprefix = \"0.0.0.0/0\"\nport = \"p0\"\n");
        assert!(refuse(&dup).message.contains("is already route[0]"));
    }

    #[test]
    fn addresses_overlapping_between_ports_are_refused() {
        let e = refuse(&format!("{MINIMAL}\n[[port]]\nname = \"p1\"\nmac = \"02:00:00:00:00:02\"\naddrs = [\"10.0.5.1/16\"]\n"));
        assert_eq!((e.line, e.key.as_str()), (23, "port[1].addrs[0]"));
        assert!(
            e.message
                .contains("10.0.0.0/16 overlaps 10.0.0.0/24 of port p0"),
            "{e}"
        );
        let e = refuse(&format!("{MINIMAL}\n[[port]]\nname = \"p1\"\nmac = \"02:00:00:00:00:02\"\naddrs = [\"fd00::1/64\"]\n"));
        assert!(
            e.message.contains("address fd00::1 is already on port p0"),
            "{e}"
        );
        let e = refuse(&edit("\"fd00::1/64\"", "\"fd00::1/64\", \"10.0.0.1/24\""));
        assert!(e.message.contains("already on this port"), "{e}");
        // Two subnets on one port are fine.
        assert!(parse(&edit("\"fd00::1/64\"", "\"fd00::1/64\", \"10.0.0.2/16\"")).is_ok());
    }
}

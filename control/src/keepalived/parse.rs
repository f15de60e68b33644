//! keepalived.conf's items into the LVS model. What rvs does not support is refused with the
//! file, line and keyword; VRRP blocks and `global_defs` are ignored with one note each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use rvs_dataplane::config::{Fwd, TunConfig, TunCsum, TunKind};
use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::SchedKind;

use super::lexer::Item;
use super::model::{
    CheckKind, Checker, KaConfig, Method, RealServer, SorryServer, Timing, Url, VirtualServer,
    VsKey,
};
use super::KaError;

/// keepalived's VRRP side: not rvs's job (keepalived itself can keep doing it beside rvs).
const VRRP: &[&str] = &[
    "vrrp_instance",
    "vrrp_sync_group",
    "vrrp_script",
    "vrrp_track_process",
    "vrrp_track_file",
    "track_file",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "garp_group",
    "vrrp_group",
];

/// A virtual_server_group's members past which rvs refuses (a typo in a range should not
/// make a million services).
const MAX_GROUP_MEMBERS: usize = 65536;

/// The LVS model of a file's items.
pub fn config(items: &[Item]) -> Result<KaConfig, KaError> {
    let mut cfg = KaConfig::default();
    let mut groups: HashMap<String, Vec<VsKey>> = HashMap::new();
    let mut vrrp_noted = false;
    // Groups may be defined after the virtual servers that use them.
    for it in items {
        if it.keyword == "virtual_server_group" {
            let [name] = it.args.as_slice() else {
                return Err(err(it, "takes one name"));
            };
            if groups.contains_key(name) {
                return Err(err(it, format!("{name}: defined twice")));
            }
            groups.insert(name.clone(), group(it)?);
        }
    }
    for it in items {
        match it.keyword.as_str() {
            "virtual_server_group" => {}
            "virtual_server" => cfg.virtual_servers.push(virtual_server(it, &groups)?),
            "global_defs" => cfg.notes.push(format!(
                "{}: global_defs ignored (rvs's own settings are in its appliance file)",
                it.at
            )),
            k if VRRP.contains(&k) => {
                if !vrrp_noted {
                    cfg.notes.push(format!(
                        "{}: VRRP blocks ignored (keepalived's VRRP can run beside rvs)",
                        it.at
                    ));
                    vrrp_noted = true;
                }
            }
            k if k.starts_with('$') || k.starts_with('@') => {
                return Err(err(
                    it,
                    "parameter substitution and conditional configuration are not supported by rvs",
                ))
            }
            _ => {
                return Err(err(
                    it,
                    "not supported by rvs (or not a keepalived keyword)",
                ))
            }
        }
    }
    Ok(cfg)
}

fn err(it: &Item, why: impl std::fmt::Display) -> KaError {
    KaError::at(&it.at, &it.keyword, why.to_string())
}

fn no_block(it: &Item) -> Result<(), KaError> {
    if it.block.is_some() {
        return Err(err(it, "takes no block"));
    }
    Ok(())
}

fn block(it: &Item) -> Result<&[Item], KaError> {
    it.block
        .as_deref()
        .ok_or_else(|| err(it, "needs a { } block"))
}

fn one_arg(it: &Item) -> Result<&str, KaError> {
    no_block(it)?;
    match it.args.as_slice() {
        [a] => Ok(a),
        _ => Err(err(it, "takes one value")),
    }
}

fn no_arg(it: &Item) -> Result<(), KaError> {
    no_block(it)?;
    if !it.args.is_empty() {
        return Err(err(it, "takes no value"));
    }
    Ok(())
}

fn uint(it: &Item, lo: u64, hi: u64) -> Result<u64, KaError> {
    let v = one_arg(it)?;
    match v.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(err(it, format!("{v}: want an integer {lo}..{hi}"))),
    }
}

/// `<TIMER>`: seconds, fractions allowed (microsecond resolution).
fn timer(it: &Item) -> Result<Duration, KaError> {
    let v = one_arg(it)?;
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => {
            Ok(Duration::from_micros((s * 1e6).round() as u64))
        }
        _ => Err(err(
            it,
            format!("{v}: want seconds (0..86400, fractions allowed)"),
        )),
    }
}

/// `<BOOL>`, where the keyword alone means true.
fn boolean(it: &Item) -> Result<bool, KaError> {
    no_block(it)?;
    match it.args.as_slice() {
        [] => Ok(true),
        [v] => match v.as_str() {
            "on" | "true" | "yes" => Ok(true),
            "off" | "false" | "no" => Ok(false),
            _ => Err(err(it, format!("{v}: want on|off|true|false|yes|no"))),
        },
        _ => Err(err(it, "takes at most one value")),
    }
}

fn ip(it: &Item, s: &str) -> Result<IpAddr, KaError> {
    s.parse()
        .map_err(|_| err(it, format!("{s}: not a numeric IP address")))
}

fn port(it: &Item, s: &str) -> Result<u16, KaError> {
    s.parse()
        .map_err(|_| err(it, format!("{s}: not a port (0..65535)")))
}

/// `<IPADDR> [<PORT>]`.
fn addr_port(it: &Item) -> Result<(IpAddr, Option<u16>), KaError> {
    match it.args.as_slice() {
        [a] => Ok((ip(it, a)?, None)),
        [a, p] => Ok((ip(it, a)?, Some(port(it, p)?))),
        _ => Err(err(it, "takes an address and an optional port")),
    }
}

/// `NAT|DR|TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]]`.
fn method(it: &Item) -> Result<Method, KaError> {
    no_block(it)?;
    let a: Vec<&str> = it.args.iter().map(String::as_str).collect();
    let (fwd, rest) = match a.split_first() {
        Some((&"NAT", r)) => (Fwd::Masq, r),
        Some((&"DR", r)) => (Fwd::Droute, r),
        Some((&"TUN", r)) => (Fwd::Tunnel, r),
        _ => return Err(err(it, "want NAT, DR or TUN")),
    };
    let mut tun = TunConfig::default();
    let mut rest = rest;
    if fwd == Fwd::Tunnel {
        if let Some((&"type", r)) = rest.split_first() {
            rest = match r {
                ["ipip", r @ ..] => r,
                ["gre", r @ ..] => {
                    tun.kind = TunKind::Gre;
                    r
                }
                ["gue", "port", p, r @ ..] => {
                    tun.kind = TunKind::Gue;
                    tun.port = port(it, p)?;
                    r
                }
                _ => return Err(err(it, "type wants ipip, gue port NUM or gre")),
            };
        }
        rest = match rest {
            ["nocsum", r @ ..] => r,
            ["csum", r @ ..] => {
                tun.csum = TunCsum::Csum;
                r
            }
            ["remcsum", r @ ..] => {
                tun.csum = TunCsum::RemCsum;
                r
            }
            r => r,
        };
    }
    if let Some(x) = rest.first() {
        return Err(err(it, format!("{x}: unexpected")));
    }
    Ok(Method { fwd, tun })
}

/// A script with its arguments (`notify_up "/bin/x up"`); running it as another user is
/// not supported.
fn script(it: &Item) -> Result<String, KaError> {
    no_block(it)?;
    match it.args.as_slice() {
        [s] => Ok(s.clone()),
        [] => Err(err(it, "needs a script")),
        _ => Err(err(
            it,
            "running a script as another user is not supported by rvs (quote a script with arguments)",
        )),
    }
}

/// The timing keywords any level takes; true if `it` was one.
fn timing(t: &mut Timing, it: &Item, alpha_bool: bool) -> Result<bool, KaError> {
    match it.keyword.as_str() {
        "delay_loop" => t.delay_loop = timer(it)?,
        "connect_timeout" => t.connect_timeout = timer(it)?,
        "retry" => t.retry = Some(uint(it, 0, 1_000_000)? as u32),
        "delay_before_retry" => t.delay_before_retry = Some(timer(it)?),
        "alpha" if alpha_bool => t.alpha = boolean(it)?,
        "alpha" => {
            no_arg(it)?;
            t.alpha = true;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A group's members: addresses (with ranges) and ports, and fwmarks.
fn group(it: &Item) -> Result<Vec<VsKey>, KaError> {
    let mut keys = Vec::new();
    for m in block(it)? {
        no_block(m)?;
        if m.keyword == "fwmark" {
            let v6 = match m.args.as_slice() {
                [_] => false,
                [_, f] if f == "inet" => false,
                [_, f] if f == "inet6" => true,
                _ => return Err(err(m, "wants fwmark MARK [inet|inet6]")),
            };
            let mark = match m.args[0].parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => return Err(err(m, format!("{}: want a mark 1..4294967295", m.args[0]))),
            };
            keys.push(VsKey::Fwmark { mark, v6 });
            continue;
        }
        let port = match m.args.as_slice() {
            [] => 0,
            [p] => port(m, p)?,
            _ => return Err(err(m, "want an address or range and an optional port")),
        };
        for addr in range(m, &m.keyword)? {
            keys.push(VsKey::Addr { addr, port });
        }
        if keys.len() > MAX_GROUP_MEMBERS {
            return Err(err(m, format!("more than {MAX_GROUP_MEMBERS} members")));
        }
    }
    Ok(keys)
}

/// `10.0.0.1`, `10.0.0.1-10` (last octet), `10.0.0.250-10.0.1.10`, `10.0.0.8/29` (and the
/// IPv6 forms).
fn range(it: &Item, s: &str) -> Result<Vec<IpAddr>, KaError> {
    let bad = || err(it, format!("{s}: not an address, range or prefix"));
    let (lo, hi, v6) = if let Some((a, len)) = s.split_once('/') {
        let a: IpAddr = a.parse().map_err(|_| bad())?;
        let bits = if a.is_ipv6() { 128 } else { 32 };
        let len: u32 = len.parse().ok().filter(|&l| l <= bits).ok_or_else(bad)?;
        let base = to_u128(a);
        let host = if len == bits {
            0
        } else {
            (1u128 << (bits - len)) - 1
        };
        (base & !host, base | host, a.is_ipv6())
    } else if let Some((a, b)) = s.split_once('-') {
        let a: IpAddr = a.parse().map_err(|_| bad())?;
        let v6 = a.is_ipv6();
        let end = match b.parse::<IpAddr>() {
            Ok(e) if e.is_ipv6() == v6 => to_u128(e),
            Ok(_) => return Err(bad()),
            // The last group only: `10.0.0.1-10`, `fd00::1-ff`.
            Err(_) => {
                let last = if v6 {
                    u128::from_str_radix(b, 16)
                } else {
                    b.parse::<u128>()
                }
                .map_err(|_| bad())?;
                let mask = if v6 { 0xffff } else { 0xff };
                if last > mask {
                    return Err(bad());
                }
                (to_u128(a) & !mask) | last
            }
        };
        (to_u128(a), end, v6)
    } else {
        return Ok(vec![ip(it, s)?]);
    };
    if hi < lo || hi - lo >= MAX_GROUP_MEMBERS as u128 {
        return Err(err(
            it,
            format!("{s}: an empty range, or more than {MAX_GROUP_MEMBERS} addresses"),
        ));
    }
    Ok((lo..=hi).map(|n| from_u128(n, v6)).collect())
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(n: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(n.into())
    } else {
        IpAddr::V4((n as u32).into())
    }
}

fn virtual_server(
    it: &Item,
    groups: &HashMap<String, Vec<VsKey>>,
) -> Result<VirtualServer, KaError> {
    let mut keys = match it
        .args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["fwmark", m] => match m.parse::<u32>() {
            Ok(mark) if mark > 0 => vec![VsKey::Fwmark { mark, v6: false }],
            _ => return Err(err(it, format!("fwmark {m}: want a mark 1..4294967295"))),
        },
        ["group", name] => groups
            .get(*name)
            .cloned()
            .ok_or_else(|| err(it, format!("group {name}: no such virtual_server_group")))?,
        _ => {
            let (addr, p) = addr_port(it)?;
            vec![VsKey::Addr {
                addr,
                port: p.unwrap_or(0),
            }]
        }
    };
    let mut vs = VirtualServer {
        keys: Vec::new(),
        // keepalived 2.2's default ("no protocol set - defaulting to UDP").
        proto: Proto::Udp,
        sched: SchedKind::Wlc,
        sched_flags: Vec::new(),
        ops: false,
        persistence_timeout: None,
        persistence_granularity: None,
        quorum: 1,
        hysteresis: 0,
        omega: false,
        sorry: None,
        real_servers: Vec::new(),
        at: it.at.clone(),
    };
    let mut method_vs = Method::default();
    let mut timing_vs = Timing::default();
    let mut inhibit = false;
    let mut virtualhost: Option<String> = None;
    let mut family_v6: Option<bool> = None;
    let mut sorry: Option<(IpAddr, Option<u16>, &Item)> = None;
    let mut sorry_method: Option<Method> = None;
    let mut sorry_inhibit = false;
    // First the virtual server's own settings (real servers inherit them wherever written).
    for k in block(it)? {
        match k.keyword.as_str() {
            "real_server" => {}
            "lvs_sched" | "lb_algo" => {
                let v = one_arg(k)?;
                vs.sched =
                    SchedKind::parse(v).ok_or_else(|| err(k, format!("{v}: unknown scheduler")))?;
            }
            "lvs_method" | "lb_kind" => method_vs = method(k)?,
            "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
            | "mh-fallback" => {
                no_arg(k)?;
                vs.sched_flags.push(k.keyword.clone());
            }
            "ops" => {
                no_arg(k)?;
                vs.ops = true;
            }
            "persistence_timeout" => {
                no_block(k)?;
                vs.persistence_timeout = Some(match k.args.as_slice() {
                    [] => 360,
                    _ => uint(k, 1, u64::from(u32::MAX))? as u32,
                });
            }
            "persistence_granularity" => vs.persistence_granularity = Some(one_arg(k)?.to_string()),
            "protocol" => {
                vs.proto = match one_arg(k)? {
                    "TCP" => Proto::Tcp,
                    "UDP" => Proto::Udp,
                    "SCTP" => Proto::Sctp,
                    v => return Err(err(k, format!("{v}: want TCP, UDP or SCTP"))),
                }
            }
            "quorum" => vs.quorum = uint(k, 0, u64::from(u32::MAX))? as u32,
            "hysteresis" => vs.hysteresis = uint(k, 0, u64::from(u32::MAX))? as u32,
            "omega" => {
                no_arg(k)?;
                vs.omega = true;
            }
            "inhibit_on_failure" => {
                no_arg(k)?;
                inhibit = true;
            }
            "virtualhost" => virtualhost = Some(one_arg(k)?.to_string()),
            "ip_family" => {
                family_v6 = Some(match one_arg(k)? {
                    "inet" => false,
                    "inet6" => true,
                    v => return Err(err(k, format!("{v}: want inet or inet6"))),
                })
            }
            "sorry_server" => {
                no_block(k)?;
                let (a, p) = addr_port(k)?;
                sorry = Some((a, p, k));
            }
            "sorry_server_lvs_method" => sorry_method = Some(method(k)?),
            "sorry_server_inhibit" => {
                no_arg(k)?;
                sorry_inhibit = true;
            }
            _ => {
                if !timing(&mut timing_vs, k, false)? {
                    return Err(err(k, "not supported by rvs in a virtual_server"));
                }
            }
        }
    }
    for k in block(it)?.iter().filter(|k| k.keyword == "real_server") {
        let rs = real_server(k, method_vs, timing_vs, inhibit, virtualhost.as_deref())?;
        vs.real_servers.push(rs);
    }
    // A fwmark service's family: ip_family, else its real servers'.
    let v6 = family_v6.unwrap_or_else(|| {
        !vs.real_servers.is_empty() && vs.real_servers.iter().all(|r| r.addr.is_ipv6())
    });
    for key in &mut keys {
        if let VsKey::Fwmark { v6: f, .. } = key {
            *f |= v6;
        }
    }
    vs.keys = keys;
    if let Some((addr, p, k)) = sorry {
        let port = p.unwrap_or_else(|| vs_port(&vs));
        if sorry_method.is_none() && method_vs.fwd != Fwd::Masq && port != vs_port(&vs) {
            return Err(err(
                k,
                "a DR or TUN sorry server's port is the virtual server's",
            ));
        }
        vs.sorry = Some(SorryServer {
            addr,
            port,
            method: sorry_method.unwrap_or(method_vs),
            inhibit: sorry_inhibit,
        });
    }
    Ok(vs)
}

/// The first member's port (a group's members may differ; real servers without a port take
/// each member's).
fn vs_port(vs: &VirtualServer) -> u16 {
    match vs.keys.first() {
        Some(VsKey::Addr { port, .. }) => *port,
        _ => 0,
    }
}

fn real_server(
    it: &Item,
    method_vs: Method,
    timing_vs: Timing,
    inhibit_vs: bool,
    virtualhost_vs: Option<&str>,
) -> Result<RealServer, KaError> {
    let (addr, p) = addr_port(it)?;
    let mut rs = RealServer {
        addr,
        // 0: the virtual server's (each group member's).
        port: p.unwrap_or(0),
        weight: 1,
        method: method_vs,
        uthreshold: 0,
        lthreshold: 0,
        notify_up: None,
        notify_down: None,
        inhibit_on_failure: inhibit_vs,
        timing: timing_vs,
        checkers: Vec::new(),
        at: it.at.clone(),
    };
    let mut virtualhost = virtualhost_vs.map(str::to_string);
    let items = block(it)?;
    for k in items {
        match k.keyword.as_str() {
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" => {}
            "weight" => rs.weight = uint(k, 0, 65535)? as i32,
            "lvs_method" | "lb_kind" => rs.method = method(k)?,
            "uthreshold" => rs.uthreshold = uint(k, 0, u64::from(i32::MAX as u32))? as u32,
            "lthreshold" => rs.lthreshold = uint(k, 0, u64::from(i32::MAX as u32))? as u32,
            "notify_up" => rs.notify_up = Some(script(k)?),
            "notify_down" => rs.notify_down = Some(script(k)?),
            "inhibit_on_failure" => rs.inhibit_on_failure = boolean(k)?,
            "virtualhost" => virtualhost = Some(one_arg(k)?.to_string()),
            _ => {
                if !timing(&mut rs.timing, k, true)? {
                    return Err(err(k, "not supported by rvs in a real_server"));
                }
            }
        }
    }
    for k in items {
        let kind = match k.keyword.as_str() {
            "TCP_CHECK" => CheckKind::Tcp,
            "HTTP_GET" | "SSL_GET" => CheckKind::Http {
                urls: Vec::new(),
                tls: k.keyword == "SSL_GET",
                sni: false,
            },
            "MISC_CHECK" => CheckKind::Misc {
                path: String::new(),
                timeout: None,
                dynamic: false,
            },
            _ => continue,
        };
        rs.checkers
            .push(checker(k, kind, rs.timing, virtualhost.as_deref())?);
    }
    Ok(rs)
}

fn checker(
    it: &Item,
    mut kind: CheckKind,
    timing_rs: Timing,
    virtualhost: Option<&str>,
) -> Result<Checker, KaError> {
    if !it.args.is_empty() {
        return Err(err(it, "takes no value"));
    }
    let mut c = Checker {
        kind: CheckKind::Tcp,
        connect_ip: None,
        connect_port: None,
        bindto: None,
        timing: timing_rs,
        at: it.at.clone(),
    };
    let misc = matches!(kind, CheckKind::Misc { .. });
    for k in block(it)? {
        match (k.keyword.as_str(), &mut kind) {
            ("connect_ip", _) if !misc => c.connect_ip = Some(ip(k, one_arg(k)?)?),
            ("connect_port", _) if !misc => c.connect_port = Some(port(k, one_arg(k)?)?),
            ("bindto", _) if !misc => c.bindto = Some(ip(k, one_arg(k)?)?),
            ("url", CheckKind::Http { urls, .. }) => urls.push(url(k, virtualhost)?),
            ("enable_sni", CheckKind::Http { tls: true, sni, .. }) => *sni = boolean(k)?,
            ("misc_path", CheckKind::Misc { path, .. }) => *path = script(k)?,
            ("misc_timeout", CheckKind::Misc { timeout, .. }) => {
                *timeout = Some(Duration::from_secs(uint(k, 1, 86_400)?));
            }
            ("misc_dynamic", CheckKind::Misc { dynamic, .. }) => {
                no_arg(k)?;
                *dynamic = true;
            }
            _ => {
                if !timing(&mut c.timing, k, true)? {
                    return Err(err(k, format!("not supported by rvs in a {}", it.keyword)));
                }
            }
        }
    }
    match &kind {
        CheckKind::Http { urls, .. } if urls.is_empty() => {
            return Err(err(it, "needs at least one url { path ... }"));
        }
        CheckKind::Misc { path, .. } if path.is_empty() => {
            return Err(err(it, "needs misc_path"));
        }
        _ => {}
    }
    c.kind = kind;
    Ok(c)
}

fn url(it: &Item, virtualhost: Option<&str>) -> Result<Url, KaError> {
    let mut u = Url {
        path: String::new(),
        digest: None,
        status: Vec::new(),
        virtualhost: virtualhost.map(str::to_string),
    };
    for k in block(it)? {
        match k.keyword.as_str() {
            "path" => u.path = one_arg(k)?.to_string(),
            "digest" => {
                let d = one_arg(k)?.to_ascii_lowercase();
                if d.len() != 32 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err(k, format!("{d}: want an MD5 digest (32 hex digits)")));
                }
                u.digest = Some(d);
            }
            "status_code" => {
                no_block(k)?;
                if k.args.is_empty() {
                    return Err(err(k, "needs codes or ranges (200 or 200-299)"));
                }
                for a in &k.args {
                    let bad = || err(k, format!("{a}: want a status code or range (100..599)"));
                    let (lo, hi) = match a.split_once('-') {
                        Some((l, h)) => (l.parse::<u16>(), h.parse::<u16>()),
                        None => (a.parse::<u16>(), a.parse::<u16>()),
                    };
                    let (lo, hi) = (lo.map_err(|_| bad())?, hi.map_err(|_| bad())?);
                    if !(100..=599).contains(&lo) || !(lo..=599).contains(&hi) {
                        return Err(bad());
                    }
                    u.status.push((lo, hi));
                }
            }
            "virtualhost" => u.virtualhost = Some(one_arg(k)?.to_string()),
            _ => return Err(err(k, "not supported by rvs in a url")),
        }
    }
    if u.path.is_empty() {
        return Err(err(it, "needs a path"));
    }
    if u.status.is_empty() && u.digest.is_none() {
        u.status.push((200, 299));
    }
    Ok(u)
}

//! The checks a virtual service and a real server must pass: ipvsadm's (which the parser runs
//! on each line) and the kernel's (which the rule set runs on each command and
//! [`RuleSet::to_configs`](super::RuleSet::to_configs) on the whole set).

use std::net::IpAddr;

use rvs_dataplane::config::{Fwd, TunConfig, TunCsum, TunKind};
use rvs_dataplane::proto::Proto;

use super::model::{
    AddrPort, Dest, ServiceId, ServiceSpec, MAX_PERSISTENCE_S, MAX_THRESHOLD, MAX_WEIGHT,
};

/// Refuse what cannot be a VIP or a real server.
pub(super) fn check_unicast(a: IpAddr) -> Result<(), String> {
    let bad = match a {
        IpAddr::V4(v) => v.is_unspecified() || v.is_multicast() || v.is_broadcast(),
        IpAddr::V6(v) => v.is_unspecified() || v.is_multicast(),
    };
    if bad {
        Err(format!("{a} is not a unicast address"))
    } else {
        Ok(())
    }
}

pub(super) fn family_name(v6: bool) -> &'static str {
    if v6 {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// ipvsadm: with direct routing or tunnelling the real server's port is the service's
/// (nothing rewrites it); firewall-mark services keep the given port.
pub(super) fn normalize_dest_port(id: &ServiceId, d: &mut Dest) {
    if let ServiceId::Addr { port, .. } = *id {
        if d.fwd != Fwd::Masq {
            d.port = port;
        }
    }
}

pub(super) fn check_ops(id: &ServiceId) -> Result<(), String> {
    match id {
        ServiceId::Addr {
            proto: Proto::Udp, ..
        } => Ok(()),
        ServiceId::Addr { .. } => Err("one-packet scheduling is only for UDP services".into()),
        ServiceId::Fwmark { .. } => Err(
            "one-packet scheduling on a fwmark service is not supported by rvs (UDP services only)"
                .into(),
        ),
    }
}

pub(super) fn validate_spec(spec: &ServiceSpec) -> Result<(), String> {
    let id = &spec.id;
    match *id {
        ServiceId::Fwmark { mark: 0, .. } => return Err(format!("{id}: fwmark 0 is no mark")),
        ServiceId::Addr { addr, port, .. } => {
            check_unicast(addr).map_err(|e| format!("{id}: {e}"))?;
            if port == 0 && spec.persistence.is_none() {
                return Err(format!(
                    "{id}: port 0 (all ports) is only for persistent services (add -p)"
                ));
            }
        }
        ServiceId::Fwmark { .. } => {}
    }
    if let Some(p) = spec.persistence {
        if !(1..=MAX_PERSISTENCE_S).contains(&p.timeout_s) {
            return Err(format!(
                "{id}: -p {}: persistence timeout must be 1..{MAX_PERSISTENCE_S} seconds",
                p.timeout_s
            ));
        }
        let ok = if id.is_v6() {
            (1..=128).contains(&p.prefix)
        } else {
            p.prefix <= 32
        };
        if !ok {
            return Err(format!(
                "{id}: -M /{}: not a netmask of an {} service",
                p.prefix,
                family_name(id.is_v6())
            ));
        }
    }
    if spec.ops {
        check_ops(id).map_err(|e| format!("{id}: -o: {e}"))?;
    }
    Ok(())
}

pub(super) fn validate_dest(id: &ServiceId, d: &Dest) -> Result<(), String> {
    let name = || format!("{id} -r {}", AddrPort(d.addr, d.port));
    check_unicast(d.addr).map_err(|e| format!("{}: {e}", name()))?;
    if d.addr.is_ipv6() != id.is_v6() {
        return Err(format!(
            "{}: an {} real server for an {} service (rvs keeps one family per service)",
            name(),
            family_name(d.addr.is_ipv6()),
            family_name(id.is_v6())
        ));
    }
    if !(0..=MAX_WEIGHT).contains(&d.weight) {
        return Err(format!(
            "{}: -w {}: weight must be 0..{MAX_WEIGHT}",
            name(),
            d.weight
        ));
    }
    if d.u_threshold > MAX_THRESHOLD || d.l_threshold > MAX_THRESHOLD {
        return Err(format!("{}: thresholds must be 0..{MAX_THRESHOLD}", name()));
    }
    if d.l_threshold > d.u_threshold {
        return Err(format!(
            "{}: -y {}: lower threshold is higher than the upper threshold ({})",
            name(),
            d.l_threshold,
            d.u_threshold
        ));
    }
    let t = d.tun;
    let tun_ok = match (d.fwd, t.kind) {
        (Fwd::Tunnel, TunKind::Ipip) => t.port == 0 && t.csum == TunCsum::NoCsum,
        (Fwd::Tunnel, TunKind::Gue) => t.port != 0,
        (Fwd::Tunnel, TunKind::Gre) => t.port == 0 && t.csum != TunCsum::RemCsum,
        _ => t == TunConfig::default(),
    };
    if !tun_ok {
        return Err(format!(
            "{}: tunnel options {t:?} do not fit forwarding {} (gue needs a port; \
             ipip takes no options; gre takes no port or remcsum; only -i takes any)",
            name(),
            d.fwd.name()
        ));
    }
    Ok(())
}

//! `[tunnel]`: the settings of `-i` (tunnelling) real servers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ports::PortConfig;
use super::raw::{RawTunnel, S};
use super::values::{Ctx, R};
use super::AppConfig;

/// `[tunnel]`: settings of `-i` (tunnelling) dests.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TunnelConfig {
    /// Path MTU for the encapsulation check; `None`: the egress port's MTU.
    pub mtu: Option<u16>,
    /// Outer source address of IPv4 tunnels; `None`: the egress port's first IPv4 address.
    pub source_v4: Option<Ipv4Addr>,
    /// Outer source address of IPv6 tunnels; `None`: the egress port's first IPv6 address.
    pub source_v6: Option<Ipv6Addr>,
}

impl AppConfig {
    /// The MTU the tunnel encapsulation check uses for packets leaving `port`.
    pub fn tunnel_mtu(&self, port: &PortConfig) -> u16 {
        self.tunnel.mtu.unwrap_or(port.mtu)
    }
}

/// `[tunnel]`; a source must be one of `all_addrs` (the ports' addresses).
pub(super) fn read_tunnel(c: &Ctx, tr: &RawTunnel, all_addrs: &[IpAddr]) -> R<TunnelConfig> {
    let mtu = match &tr.mtu {
        None => None,
        Some(_) => Some(c.int(&tr.mtu, "tunnel.mtu", 576, 9216, 0)? as u16),
    };
    let source = |s: &Option<S<String>>, key: &str, v6: bool| -> R<Option<IpAddr>> {
        let Some(s) = s else { return Ok(None) };
        let ip = c.ip(s, key)?;
        if ip.is_ipv6() != v6 {
            return Err(c.err(
                s.span(),
                key,
                format!(
                    "{ip} is not an {} address",
                    if v6 { "IPv6" } else { "IPv4" }
                ),
            ));
        }
        if !all_addrs.contains(&ip) {
            return Err(c.err(
                s.span(),
                key,
                format!("{ip} is not one of the ports' addresses"),
            ));
        }
        Ok(Some(ip))
    };
    Ok(TunnelConfig {
        mtu,
        source_v4: match source(&tr.source_v4, "tunnel.source_v4", false)? {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        },
        source_v6: match source(&tr.source_v6, "tunnel.source_v6", true)? {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        },
    })
}

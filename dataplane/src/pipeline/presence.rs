//! The appliance's L2/L3 presence as the packet path sees it: its ports (MAC, addresses, MTU,
//! transmit offloads), routes and static neighbors. Immutable and shared by every worker.

use std::sync::Arc;

use super::exception::ExceptionConfig;
use super::icmp_limit::IcmpLimitConfig;
use super::rss;
use crate::addr::{Family, V4, V6};
use crate::l3::{Route, RouteTable};

/// A port as the packet path knows it.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub name: String,
    pub mac: [u8; 6],
    pub addrs4: Vec<(V4, u8)>,
    pub addrs6: Vec<(V6, u8)>,
    pub mtu: u16,
    /// Checksums the port's NIC fills at transmit.
    pub tx_offload: TxOffloads,
}

/// Checksums a port's NIC fills at transmit (those `rvsd run` found its PMD offers; none
/// for `rvsd replay` and tests). Used where the path would otherwise sum whole headers or
/// payloads: a tunnel's outer IPv4 header and its GUE UDP checksum. Incremental updates
/// (TTL, NAT) stay in software: they cost less than the offload's pseudo-header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOffloads {
    pub ipv4: bool,
    pub udp: bool,
}

/// The appliance's L2/L3 presence: ports, routes, static neighbors. Immutable, shared.
pub struct Presence {
    pub ports: Vec<PortInfo>,
    pub routes4: RouteTable<V4>,
    pub routes6: RouteTable<V6>,
    pub static4: Vec<(V4, [u8; 6], u16)>,
    pub static6: Vec<(V6, [u8; 6], u16)>,
    /// The RSS key the ports hash with, which steering shares ([`rss::KEY`] unless set).
    pub rss_key: Arc<rss::Key>,
    /// The exception path's budget and peers (the defaults unless set).
    pub exception: ExceptionConfig,
    /// The rate of the ICMP errors the path sends itself (the defaults unless set).
    pub icmp: IcmpLimitConfig,
}

impl Presence {
    /// Connected routes of every port's addresses plus `routes`.
    pub fn new(
        ports: Vec<PortInfo>,
        routes4: &[(V4, u8, Route<V4>)],
        routes6: &[(V6, u8, Route<V6>)],
        static4: Vec<(V4, [u8; 6], u16)>,
        static6: Vec<(V6, [u8; 6], u16)>,
    ) -> Result<Self, String> {
        let mut r4: Vec<(V4, u8, Route<V4>)> = routes4.to_vec();
        let mut r6: Vec<(V6, u8, Route<V6>)> = routes6.to_vec();
        for (i, p) in ports.iter().enumerate() {
            for &(a, len) in &p.addrs4 {
                let net = a.mask(len);
                if !r4.iter().any(|r| r.0 == net && r.1 == len) {
                    r4.push((
                        net,
                        len,
                        Route {
                            port: i as u16,
                            via: None,
                        },
                    ));
                }
            }
            for &(a, len) in &p.addrs6 {
                let net = a.mask(len);
                if !r6.iter().any(|r| r.0 == net && r.1 == len) {
                    r6.push((
                        net,
                        len,
                        Route {
                            port: i as u16,
                            via: None,
                        },
                    ));
                }
            }
        }
        Ok(Presence {
            routes4: RouteTable::build(&r4).map_err(|e| e.to_string())?,
            routes6: RouteTable::build(&r6).map_err(|e| e.to_string())?,
            ports,
            static4,
            static6,
            rss_key: Arc::new(rss::Key::fixed()),
            exception: ExceptionConfig::default(),
            icmp: IcmpLimitConfig::default(),
        })
    }

    /// The same presence with the ports' RSS key `key` (what `rvsd run` programs).
    pub fn with_rss_key(mut self, key: rss::Key) -> Self {
        self.rss_key = Arc::new(key);
        self
    }

    /// The same presence with the exception path's budget and peers `cfg`.
    pub fn with_exception(mut self, cfg: ExceptionConfig) -> Self {
        self.exception = cfg;
        self
    }

    /// The same presence with the ICMP error rate `cfg`.
    pub fn with_icmp(mut self, cfg: IcmpLimitConfig) -> Self {
        self.icmp = cfg;
        self
    }
}

/// The port's address that a frame the appliance sends to `to` comes from: the one on `to`'s
/// prefix, else the port's first of the family (the kernel's choice by route, for a peer on
/// the port's segment or behind its gateway).
pub(super) fn port_source<A: super::fam::Af>(p: &PortInfo, to: A) -> Option<A> {
    let addrs = A::port_addrs(p);
    addrs
        .iter()
        .find(|&&(a, l)| a.mask(l) == to.mask(l))
        .or(addrs.first())
        .map(|&(a, _)| a)
}

//! IPv6 neighbor discovery input: solicitations and advertisements feed the neighbor table;
//! solicitations for a port address or a VIP are answered in place (on the request's VLAN);
//! advertisements to the appliance go to the kernel and, as copies, to the other workers.

use std::net::{IpAddr, Ipv6Addr};

use super::buf::Buf;
use super::exception::Seen;
use super::local::{self, retag, vlan_tags, Ends};
use super::path_counters::PathDrop;
use super::worker::{Cx, Out, Worker};
use crate::addr::{Family, V6};
use crate::wire::icmpv6::{nd_flags, NdiscRepr};
use crate::wire::{MacAddr, ParsedFrame};

/// The all-nodes multicast group and its Ethernet address.
pub(super) const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub(super) const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

impl<B: Buf> Worker<B> {
    /// A neighbor solicitation or advertisement, its ICMPv6 message at `l4`; `to_us`: it is
    /// addressed to a port address.
    pub(super) fn ndp<O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        mut buf: B,
        pf: &ParsedFrame,
        l4: usize,
        to_us: bool,
    ) {
        let (pres, port) = (cx.pres, cx.port);
        let f = buf.data();
        let Some(m) = f.get(l4..) else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        if m.len() < 24 {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        }
        let Ok(target) = <[u8; 16]>::try_from(&m[8..24]) else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        let target = Ipv6Addr::from(target);
        let Some(IpAddr::V6(src)) = pf.ip.map(|i| i.src) else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        // Link-layer address option: source (1) in NS, target (2) in NA.
        let mut lla = None;
        let mut opts = &m[24..];
        while opts.len() >= 8 {
            let len = usize::from(opts[1]) * 8;
            if len == 0 || len > opts.len() {
                break;
            }
            if (opts[0] == 1 || opts[0] == 2) && len >= 8 {
                lla = <[u8; 6]>::try_from(&opts[2..8]).ok();
            }
            opts = &opts[len..];
        }
        let advert = m[0] == 136;
        let learn_ip = if advert { target } else { src };
        if let Some(mac) = lla {
            if !learn_ip.is_unspecified() {
                let mut ready = Vec::new();
                self.f6
                    .neigh
                    .learn(v6(learn_ip), mac, port, cx.now, &mut |p, mac| {
                        ready.push((p, mac))
                    });
                // Releasing held frames moves the table on (the entry turns Reachable).
                self.note_neigh_if_moved();
                for ((p, b), mac) in ready {
                    self.send_resolved(cx, p, b, mac);
                }
            }
        }
        let me = &pres.ports[port as usize];
        if advert {
            if cx.handed {
                // Another worker's copy (see `share_neigh`): learned above.
                return (cx.out)(Out::Drop(buf));
            }
            // An advertisement to us answers a solicitation of some worker or of the kernel:
            // the other workers learn it from a copy, and the kernel gets the frame itself.
            // The kernel also solicits from its interface's link-local address (its probes of
            // a stale entry), and the answer to a unicast solicitation may carry no
            // link-layer address: the kernel gets those too.
            if to_us && lla.is_some() {
                self.share_neigh(cx, &buf);
            }
            let to_kernel_ll = pf.dst_mac.octets() == me.mac
                && pf
                    .ip
                    .is_some_and(|i| matches!(i.dst, IpAddr::V6(d) if d.is_unicast_link_local()));
            if to_us || to_kernel_ll {
                return self.punt(cx, buf, Seen::Neigh);
            }
            return (cx.out)(Out::Drop(buf));
        }
        let t = v6(target);
        let ours = me.addrs6.iter().any(|&(a, _)| a == t) || self.f6.vips.contains(&t);
        if !ours {
            return self.drop(PathDrop::ArpNotOurs, buf, cx.out);
        }
        let mac = me.mac;
        let (dst, eth_dst, flags) = if src.is_unspecified() {
            // DAD probe: answer to all-nodes, not solicited.
            (ALL_NODES, ALL_NODES_MAC, nd_flags::OVERRIDE)
        } else {
            (
                src,
                pf.src_mac.octets(),
                nd_flags::SOLICITED | nd_flags::OVERRIDE,
            )
        };
        let tags = vlan_tags(buf.data(), pf);
        let ends = Ends {
            eth_src: mac,
            eth_dst,
            src: target,
            dst,
        };
        let na = NdiscRepr::NeighborAdvert {
            flags,
            target,
            lladdr: Some(MacAddr(mac)),
        };
        if local::ndisc(&mut buf, &ends, &na) && retag(&mut buf, &tags) {
            self.counters.nd_adverts.inc();
            self.counters.tx.inc();
            (cx.out)(Out::Tx { port, buf });
        } else {
            self.drop(PathDrop::NoBuffer, buf, cx.out);
        }
    }
}

pub(super) fn v6(a: Ipv6Addr) -> V6 {
    V6::from_ip(IpAddr::V6(a)).unwrap_or_default()
}

pub(super) fn ip6(a: V6) -> Ipv6Addr {
    match a.to_ip() {
        IpAddr::V6(x) => x,
        IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
    }
}

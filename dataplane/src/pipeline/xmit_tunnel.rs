//! Tunnelling (IPVS's `ip_vs_tunnel_xmit`): the packet is encapsulated toward the dest in
//! IPIP (v4) or IPv6-in-IPv6, GUE (outer UDP to the configured port and a 4-byte GUE header)
//! or GRE, from the egress port's address, DF copied; a DF packet that would not fit the
//! egress MTU gets the client fragmentation needed / packet too big (from the VIP, as IPVS
//! checks the MTU before the packet leaves its local route).

use std::net::IpAddr;

use super::buf::{Buf, TxCsum};
use super::fam::Af;
use super::icmp::IcmpKind;
use super::path_counters::PathDrop;
use super::presence::TxOffloads;
use super::worker::{Cx, Out, Worker};
use crate::config::{TunConfig, TunCsum, TunKind};
use crate::shard::Xmit;
use crate::wire::gre::{Packet as GrePacket, Repr as GreRepr};
use crate::wire::gue::{Packet as GuePacket, Repr as GueRepr};
use crate::wire::udp::{self, Repr as UdpRepr};
use crate::wire::{self};
use crate::wire::{
    checksum, EtherType, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, ParsedFrame,
    UdpPacket,
};

impl<B: Buf> Worker<B> {
    /// Encapsulate toward the dest and send (`check_mtu`: refuse a DF packet over the egress
    /// MTU with an ICMP error to the client; off for ICMP errors, never answered by another).
    pub(super) fn tunnel_xmit<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        mut buf: B,
        pf: &ParsedFrame,
        x: &Xmit<A>,
        check_mtu: bool,
    ) {
        let Some((p, nh)) = A::fam(self).egress(A::routes(cx.pres), x) else {
            return self.drop(PathDrop::NoRoute, buf, cx.out);
        };
        let (Some(ip), Some(pi)) = (pf.ip, cx.pres.ports.get(p as usize)) else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        let Some(&(outer_src, _)) = A::port_addrs(pi).first() else {
            return self.drop(PathDrop::NoSourceAddr, buf, cx.out);
        };
        self.ident = self.ident.wrapping_add(1);
        let e = Encap {
            src: outer_src,
            dst: x.daddr,
            tun: x.tun,
            mtu: if check_mtu { pi.mtu } else { u16::MAX },
            ident: self.ident,
            offload: pi.tx_offload,
        };
        match encap::<A, B>(&mut buf, pf.l3_offset, ip.ip_len, &e) {
            Ok(()) => self.send::<A, O>(cx, p, nh, buf),
            // Only packets to a service are encapsulated.
            Err(EncapError::TooBig(mtu)) => {
                self.icmp_error::<A, O>(cx, buf, pf, IcmpKind::TooBig(mtu), true)
            }
            Err(EncapError::NoHeadroom) => self.drop(PathDrop::NoHeadroom, buf, cx.out),
        }
    }
}

/// A tunnel's outer header as one packet gets it.
struct Encap<A> {
    /// The egress port's address.
    src: A,
    /// The dest.
    dst: A,
    tun: TunConfig,
    /// The egress MTU (`u16::MAX`: not checked).
    mtu: u16,
    /// The outer IPv4 identification.
    ident: u16,
    offload: TxOffloads,
}

#[derive(Debug, PartialEq, Eq)]
enum EncapError {
    /// The inner packet has DF (always, for IPv6) and the result would exceed the MTU: the
    /// client is told this MTU.
    TooBig(u16),
    NoHeadroom,
}

/// Encapsulate the IP packet at `l3` (length `ip_len`) for a tunnel to `dst`: IPIP (v4) or
/// IPv6-in-IPv6, GUE (outer UDP to the configured port + a 4-byte GUE header) or GRE, as
/// IPVS's `ip_vs_tunnel_xmit`. The L2 header is moved in front of the new outer header.
fn encap<A: Af, B: Buf>(
    buf: &mut B,
    l3: usize,
    ip_len: usize,
    e: &Encap<A>,
) -> Result<(), EncapError> {
    let &Encap {
        src,
        dst,
        tun,
        mtu,
        ident,
        offload,
    } = e;
    let outer_ip = if A::V6 {
        wire::ipv6::HEADER_LEN
    } else {
        wire::ipv4::HEADER_LEN
    };
    let gre_csum = tun.kind == TunKind::Gre && tun.csum == TunCsum::Csum;
    let extra = match tun.kind {
        TunKind::Ipip => 0,
        TunKind::Gue => udp::HEADER_LEN + wire::gue::HEADER_LEN,
        TunKind::Gre => GreRepr {
            protocol: EtherType::IPV4,
            checksum: gre_csum,
        }
        .header_len(),
    };
    let hdr = outer_ip + extra;
    let inner = buf
        .data()
        .get(l3..l3 + ip_len)
        .ok_or(EncapError::NoHeadroom)?;
    let (inner_df, tos, ttl) = inner_fields::<A>(inner);
    if ip_len + hdr > usize::from(mtu) && inner_df {
        return Err(EncapError::TooBig(mtu.saturating_sub(hdr as u16)));
    }
    let inner_proto = if A::V6 {
        IpProtocol::IPV6
    } else {
        IpProtocol::IPV4
    };
    let need_udp_csum = tun.kind == TunKind::Gue && (A::V6 || tun.csum == TunCsum::Csum);
    // The NIC fills what the port offers (asked only now that nothing can fail but a
    // missing headroom, which drops the frame).
    let want = TxCsum {
        l2_len: l3 as u16,
        l3_len: outer_ip as u16,
        v6: A::V6,
        ip: !A::V6 && offload.ipv4,
        udp: need_udp_csum && offload.udp,
    };
    let offloaded = (want.ip || want.udp) && buf.offload_tx_csum(want);
    buf.prepend(hdr).ok_or(EncapError::NoHeadroom)?;
    let f = buf.data_mut();
    // Move the L2 header to the new front.
    f.copy_within(hdr..hdr + l3, 0);
    let total = ip_len + hdr;
    let outer_proto = match tun.kind {
        TunKind::Ipip => inner_proto,
        TunKind::Gue => IpProtocol::UDP,
        TunKind::Gre => IpProtocol::GRE,
    };
    // The outer packet: its IP header, then the tunnel's headers and the inner packet.
    let o = &mut f[l3..l3 + total];
    let (s, d) = match (src.to_ip(), dst.to_ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let repr = Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                protocol: outer_proto,
                payload_len: total - outer_ip,
                ttl,
                tos,
                ident,
                dont_frag: inner_df,
            };
            let mut p = Ipv4Packet::new_unchecked(&mut o[..outer_ip]);
            if offloaded && want.ip {
                repr.emit_offloaded(&mut p);
            } else {
                repr.emit(&mut p);
            }
            (IpAddr::V4(s), IpAddr::V4(d))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: outer_proto,
                payload_len: total - outer_ip,
                hop_limit: ttl,
                traffic_class: tos,
            }
            .emit(&mut Ipv6Packet::new_unchecked(&mut o[..outer_ip]));
            (IpAddr::V6(s), IpAddr::V6(d))
        }
        _ => return Err(EncapError::NoHeadroom),
    };
    let seg = &mut o[outer_ip..];
    match tun.kind {
        TunKind::Ipip => {}
        TunKind::Gue => {
            // UDP: a source port from the flow for ECMP spread, the configured port, no
            // checksum (IPVS sends GUE without one unless --tun-csum; v6 requires one).
            UdpRepr {
                src_port: 0xc000 | (ident & 0x3fff),
                dst_port: tun.port,
                payload_len: seg.len() - udp::HEADER_LEN,
            }
            .emit(&mut UdpPacket::new_unchecked(&mut seg[..]));
            GueRepr {
                protocol: inner_proto,
            }
            .emit(&mut GuePacket::new_unchecked(&mut seg[udp::HEADER_LEN..]));
            if need_udp_csum {
                let mut u = UdpPacket::new_unchecked(&mut seg[..]);
                match (s, d) {
                    // The NIC adds the datagram to the pseudo-header sum and complements.
                    (IpAddr::V4(s), IpAddr::V4(d)) if offloaded && want.udp => {
                        u.set_checksum(checksum::pseudo_header_v4(s, d, IpProtocol::UDP, u.len()))
                    }
                    (IpAddr::V6(s), IpAddr::V6(d)) if offloaded && want.udp => u.set_checksum(
                        checksum::pseudo_header_v6(s, d, IpProtocol::UDP, u32::from(u.len())),
                    ),
                    (IpAddr::V4(s), IpAddr::V4(d)) => u.fill_checksum_v4(s, d),
                    (IpAddr::V6(s), IpAddr::V6(d)) => u.fill_checksum_v6(s, d),
                    _ => {}
                }
            }
        }
        TunKind::Gre => {
            let mut g = GrePacket::new_unchecked(&mut seg[..]);
            GreRepr {
                protocol: if A::V6 {
                    EtherType::IPV6
                } else {
                    EtherType::IPV4
                },
                checksum: gre_csum,
            }
            .emit(&mut g);
            g.fill_checksum();
        }
    }
    // The L2 header still says IPv4/IPv6 as before (same outer family).
    Ok(())
}

/// DF (always for IPv6, which routers never fragment), TOS / traffic class and TTL / hop
/// limit of the inner packet, which the outer header copies.
fn inner_fields<A: Af>(inner: &[u8]) -> (bool, u8, u8) {
    if A::V6 {
        match Ipv6Packet::new_checked(inner) {
            Ok(p) => (true, p.traffic_class(), p.hop_limit()),
            Err(_) => (true, 0, 64),
        }
    } else {
        match Ipv4Packet::new_checked(inner) {
            Ok(p) => (p.dont_frag(), p.dscp() << 2 | p.ecn(), p.ttl()),
            Err(_) => (false, 0, 64),
        }
    }
}

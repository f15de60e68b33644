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
use crate::wire::{self, IpProtocol, ParsedFrame};

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
    let outer_ip = if A::V6 { 40 } else { 20 };
    let gre_csum = tun.kind == TunKind::Gre && tun.csum == TunCsum::Csum;
    let extra = match tun.kind {
        TunKind::Ipip => 0,
        TunKind::Gue => 8 + 4,
        TunKind::Gre => 4 + if gre_csum { 4 } else { 0 },
    };
    let hdr = outer_ip + extra;
    let inner = buf
        .data()
        .get(l3..l3 + ip_len)
        .ok_or(EncapError::NoHeadroom)?;
    let inner_df = if A::V6 {
        true
    } else {
        inner.get(6).is_some_and(|b| b & 0x40 != 0)
    };
    let (tos, ttl) = if A::V6 {
        let tc =
            (inner.first().copied().unwrap_or(0) << 4) | (inner.get(1).copied().unwrap_or(0) >> 4);
        (tc, inner.get(7).copied().unwrap_or(64))
    } else {
        (
            inner.get(1).copied().unwrap_or(0),
            inner.get(8).copied().unwrap_or(64),
        )
    };
    if ip_len + hdr > usize::from(mtu) && inner_df {
        return Err(EncapError::TooBig(mtu.saturating_sub(hdr as u16)));
    }
    let inner_proto: u8 = if A::V6 { 41 } else { 4 };
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
    let o = &mut f[l3..l3 + hdr];
    let outer_proto = match tun.kind {
        TunKind::Ipip => inner_proto,
        TunKind::Gue => 17,
        TunKind::Gre => 47,
    };
    match (src.to_ip(), dst.to_ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            o[0] = 0x45;
            o[1] = tos;
            o[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            o[4..6].copy_from_slice(&ident.to_be_bytes());
            o[6..8].copy_from_slice(&(if inner_df { 0x4000u16 } else { 0 }).to_be_bytes());
            o[8] = ttl;
            o[9] = outer_proto;
            o[10..12].fill(0);
            o[12..16].copy_from_slice(&s.octets());
            o[16..20].copy_from_slice(&d.octets());
            if !(offloaded && want.ip) {
                let c = wire::checksum::finish(wire::checksum::sum(&o[..20]));
                o[10..12].copy_from_slice(&c.to_be_bytes());
            }
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            o[0] = 0x60 | (tos >> 4);
            o[1] = tos << 4;
            o[2..4].fill(0);
            o[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
            o[6] = outer_proto;
            o[7] = ttl;
            o[8..24].copy_from_slice(&s.octets());
            o[24..40].copy_from_slice(&d.octets());
        }
        _ => return Err(EncapError::NoHeadroom),
    }
    let t = &mut o[outer_ip..];
    match tun.kind {
        TunKind::Ipip => {}
        TunKind::Gue => {
            // UDP: a source port from the flow for ECMP spread, the configured port, no checksum
            // (IPVS sends GUE without one unless --tun-csum; v6 requires one: computed below).
            let sport = 0xc000 | (ident & 0x3fff);
            t[0..2].copy_from_slice(&sport.to_be_bytes());
            t[2..4].copy_from_slice(&tun.port.to_be_bytes());
            t[4..6].copy_from_slice(&((total - outer_ip) as u16).to_be_bytes());
            t[6..8].fill(0);
            // GUE header, version 0: no flags, no options, proto = the inner IP version.
            t[8..12].copy_from_slice(&[0, inner_proto, 0, 0]);
        }
        TunKind::Gre => {
            let proto: u16 = if A::V6 { 0x86dd } else { 0x0800 };
            t[0..2].copy_from_slice(&(if gre_csum { 0x8000u16 } else { 0 }).to_be_bytes());
            t[2..4].copy_from_slice(&proto.to_be_bytes());
            if gre_csum {
                t[4..8].fill(0);
            }
        }
    }
    if need_udp_csum || gre_csum {
        let seg = &mut f[l3 + outer_ip..l3 + total];
        if gre_csum {
            let c = wire::checksum::finish(wire::checksum::sum(seg));
            seg[4..6].copy_from_slice(&c.to_be_bytes());
        } else {
            let ph = match (src.to_ip(), dst.to_ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    wire::checksum::pseudo_header_v4(s, d, IpProtocol::UDP, seg.len() as u16)
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    wire::checksum::pseudo_header_v6(s, d, IpProtocol::UDP, seg.len() as u32)
                }
                _ => 0,
            };
            let c = if offloaded && want.udp {
                // The NIC adds the datagram to the pseudo-header sum and complements.
                ph
            } else {
                wire::checksum::udp_encode(wire::checksum::finish(wire::checksum::combine(&[
                    ph,
                    wire::checksum::sum(seg),
                ])))
            };
            seg[6..8].copy_from_slice(&c.to_be_bytes());
        }
    }
    // The L2 header still says IPv4/IPv6 as before (same outer family).
    Ok(())
}

//! ICMP: errors about a conn's packet translated and sent on (IPVS's `ip_vs_in_icmp` /
//! `ip_vs_out_icmp`), errors about no conn, and the errors the path sends itself (time
//! exceeded, fragmentation needed / packet too big).

use std::net::IpAddr;

use super::buf::Buf;
use super::exception::Seen;
use super::fam::Af;
pub(super) use super::local::IcmpKind;
use super::local::{self, retag, vlan_tags, Ends};
use super::path_counters::PathDrop;
use super::presence::port_source;
use super::rewrite;
use super::worker::{Cx, Out, Worker};
use crate::addr::Family;
use crate::config::Fwd;
use crate::conn::{ConnKey, Side};
use crate::proto::Proto;
use crate::wire::{self, L4Summary, ParsedFrame};

impl<B: Buf> Worker<B> {
    /// An ICMP error about a packet of a conn (IPVS's `ip_vs_in_icmp` / `ip_vs_out_icmp`):
    /// about a packet sent toward the client, it goes to the dest (NAT: outer destination and
    /// quoted source become the dest's); about a packet sent to a NAT dest, it goes to the
    /// client (outer source and quoted destination become the VIP's). Checksums of the quoted
    /// IP header and of the ICMP message are recomputed. Errors about no conn are the
    /// kernel's when `local` (addressed to a port address: about the kernel's own
    /// connections, which IPVS leaves to the local stack too), else counted and dropped.
    pub(super) fn icmp_related<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        mut buf: B,
        pf: &ParsedFrame,
        s: wire::IcmpSummary,
        local: bool,
    ) {
        let Some(ip) = pf.ip else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        let Some(q) = s.quoted else {
            return self.icmp_unknown(cx, buf, pf, local);
        };
        let (Some(qs), Some(qd), Some((qsp, qdp))) =
            (A::from_ip(q.src), A::from_ip(q.dst), q.ports)
        else {
            return self.icmp_unknown(cx, buf, pf, local);
        };
        let proto = q.protocol.0;
        let id = self.id;
        let fam = A::fam(self);
        let toward_client = ConnKey {
            proto,
            caddr: qd,
            cport: qdp,
            addr: qs,
            port: qsp,
            template: false,
        };
        let toward_dest = ConnKey {
            proto,
            caddr: qs,
            cport: qsp,
            addr: qd,
            port: qdp,
            template: false,
        };
        let x = match fam.shard.icmp_lookup(&toward_client, Side::In) {
            Some(x) => x,
            None => match fam.shard.icmp_lookup(&toward_dest, Side::Out) {
                Some(x) if x.fwd == Fwd::Masq => x,
                _ => {
                    // Not ours here; with several workers the conn may live in another shard.
                    if !cx.handed && fam.steer.workers() > 1 {
                        let to_client = Proto::from_u8(proto).is_some_and(|p| {
                            fam.shard.config().find_service(0, p, qs, qsp).is_some()
                        });
                        let owner = fam.steer.owner(if to_client { qd } else { qs });
                        if owner != id {
                            self.counters.handoff_out.inc();
                            return (cx.out)(Out::Handoff {
                                worker: owner,
                                port: cx.port,
                                buf,
                            });
                        }
                    }
                    return self.icmp_unknown(cx, buf, pf, local);
                }
            },
        };
        let (l3, l4, end) = (pf.l3_offset, ip.l4_offset, pf.l3_offset + ip.ip_len);
        let (src_f, dst_f) = rewrite::addr_fields(A::V6);
        let f = buf.data_mut();
        let ok = if x.reply {
            // About a packet sent to the NAT dest: back to the client as from the VIP.
            let (v, n) = addr_bytes(x.vaddr);
            rewrite::set_bytes(f, l3 + src_f, &v[..n])
                && rewrite::set_bytes(f, q.offset + dst_f, &v[..n])
                && rewrite::set_bytes(f, q.l4_offset + 2, &x.vport.to_be_bytes())
        } else if x.fwd == Fwd::Masq {
            let (d, n) = addr_bytes(x.daddr);
            rewrite::set_bytes(f, l3 + dst_f, &d[..n])
                && rewrite::set_bytes(f, q.offset + src_f, &d[..n])
                && rewrite::set_bytes(f, q.l4_offset, &x.dport.to_be_bytes())
        } else {
            true
        };
        if !A::V6 && (x.reply || x.fwd == Fwd::Masq) {
            // The quoted header may be cut short; its checksum is fixed when it is whole.
            let _ = rewrite::ipv4_fill_csum(f, q.offset);
        }
        let ok = ok
            && if A::V6 {
                rewrite::icmp6_fill_csum(f, l3, l4, end)
            } else {
                rewrite::ipv4_fill_csum(f, l3) && rewrite::icmp4_fill_csum(f, l4, end)
            };
        if !ok {
            return self.drop(PathDrop::Rewrite, buf, cx.out);
        }
        if !rewrite::dec_ttl(buf.data_mut(), l3, A::V6) {
            return self.drop(PathDrop::TtlExceeded, buf, cx.out);
        }
        // No MTU check: an ICMP error is never answered with another.
        self.deliver::<A, O>(cx, buf, pf, &x, false)
    }

    /// An ICMP error about no conn: to the kernel when addressed to a port address, else
    /// dropped (`icmp_unknown_flow`).
    #[cold]
    fn icmp_unknown<O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        buf: B,
        pf: &ParsedFrame,
        local: bool,
    ) {
        if local {
            return self.punt(cx, buf, Seen::Frame(pf));
        }
        self.drop(PathDrop::IcmpUnknownFlow, buf, cx.out)
    }

    /// Send an ICMP error about `buf` back to its source, then drop `buf`. `to_service`: the
    /// packet was sent to a service (not a NAT reply), and the error comes from its
    /// destination, the VIP: IPVS's `decrement_ttl` and MTU check run while the packet still
    /// holds its local input route, and the kernel's ICMP then takes the packet's destination
    /// as source (so a traceroute to the VIP ends at the VIP). Anything else was routed
    /// through (`ip_forward`), and the error comes from the port's address toward the sender.
    pub(super) fn icmp_error<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        buf: B,
        pf: &ParsedFrame,
        kind: IcmpKind,
        to_service: bool,
    ) {
        let port = cx.port;
        let reason = match kind {
            IcmpKind::TtlExceeded => PathDrop::TtlExceeded,
            IcmpKind::TooBig(_) => PathDrop::FragNeeded,
        };
        let (Some(ip), Some(p)) = (pf.ip, cx.pres.ports.get(port as usize)) else {
            return self.drop(reason, buf, cx.out);
        };
        // One error per datagram, about its first fragment: the kernel's `icmp_send` never
        // answers a later IPv4 fragment, and IPVS sees an IPv6 datagram reassembled (its own
        // packet-too-big goes on the first fragment only).
        if ip.l4 == L4Summary::NonFirstFragment {
            return self.drop(reason, buf, cx.out);
        }
        // Path MTU discovery is never limited (the kernel's `icmpv4_mask_allow` and IPv6
        // ratemask); time exceeded is.
        if kind == IcmpKind::TtlExceeded && !self.icmp_limit.allow(cx.now) {
            self.counters.icmp_errors_ratelimited.inc();
            return self.drop(reason, buf, cx.out);
        }
        let (Some(sender), Some(dst)) = (A::from_ip(ip.src), A::from_ip(ip.dst)) else {
            return self.drop(reason, buf, cx.out);
        };
        let me = if to_service {
            dst
        } else {
            match port_source(p, sender) {
                Some(a) => a,
                None => return self.drop(reason, buf, cx.out),
            }
        };
        let Some(mut b) = (self.alloc)() else {
            return self.drop(reason, buf, cx.out);
        };
        let orig = buf.data().get(pf.l3_offset..).unwrap_or(&[]);
        let tags = vlan_tags(buf.data(), pf);
        let (eth_src, eth_dst) = (p.mac, pf.src_mac.octets());
        let ok = match (me.to_ip(), ip.src) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let ends = Ends {
                    eth_src,
                    eth_dst,
                    src,
                    dst,
                };
                local::icmp4_error(&mut b, &ends, kind, orig)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let ends = Ends {
                    eth_src,
                    eth_dst,
                    src,
                    dst,
                };
                local::icmp6_error(&mut b, &ends, kind, orig)
            }
            _ => false,
        } && retag(&mut b, &tags);
        if ok {
            self.counters.icmp_errors_sent.inc();
            self.counters.tx.inc();
            (cx.out)(Out::Tx { port, buf: b });
        } else {
            (cx.out)(Out::Drop(b));
        }
        self.drop(reason, buf, cx.out)
    }
}

/// An address as its network-order bytes and their count (4 or 16).
fn addr_bytes<A: Family>(a: A) -> ([u8; 16], usize) {
    match a.to_ip() {
        IpAddr::V4(x) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&x.octets());
            (b, 4)
        }
        IpAddr::V6(x) => (x.octets(), 16),
    }
}

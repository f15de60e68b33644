//! Ingress: a frame parsed once (`wire::parse_frame`), checked to be for the appliance, and
//! dispatched: ARP, IPv6 neighbor discovery, echo, ICMP errors, load-balanced traffic and its
//! fragments; anything else is the kernel's.

use super::buf::Buf;
use super::exception::Seen;
use super::fam::Af;
use super::local;
use super::path_counters::PathDrop;
use super::worker::{Cx, Out, Worker};
use crate::addr::{V4, V6};
use crate::wire::{self, EtherType, L4Summary, ParsedFrame};

impl<B: Buf> Worker<B> {
    /// A frame of the general path (the fast path's frames skip the parse).
    pub(super) fn input<O: FnMut(Out<B>)>(&mut self, cx: &mut Cx<'_, O>, buf: B) {
        let pf = match wire::parse_frame(buf.data()) {
            Ok(pf) => pf,
            Err(wire::Error::Truncated) => return self.drop(PathDrop::Truncated, buf, cx.out),
            Err(wire::Error::Malformed(_)) => return self.drop(PathDrop::Malformed, buf, cx.out),
        };
        let Some(me) = cx.pres.ports.get(cx.port as usize) else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        let dst = pf.dst_mac.octets();
        if dst != me.mac && !pf.dst_mac.is_multicast() {
            return self.drop(PathDrop::NotForUs, buf, cx.out);
        }
        match pf.ethertype {
            EtherType::ARP => self.arp(cx, buf, &pf),
            EtherType::IPV4 => self.ip::<V4, O>(cx, buf, &pf),
            EtherType::IPV6 => self.ip::<V6, O>(cx, buf, &pf),
            _ => self.punt(cx, buf, Seen::Frame(&pf)),
        }
    }

    /// An IP packet: echo to the appliance answered in place, ND, ICMP errors about conns,
    /// TCP/UDP/SCTP and later fragments not addressed to a port address balanced; the rest
    /// (the appliance's own traffic) punted to the kernel.
    fn ip<A: Af, O: FnMut(Out<B>)>(&mut self, cx: &mut Cx<'_, O>, mut buf: B, pf: &ParsedFrame) {
        let Some(ip) = pf.ip else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        let (Some(src), Some(dst)) = (A::from_ip(ip.src), A::from_ip(ip.dst)) else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        // Strip Ethernet padding: the frame ends where the IP packet does.
        buf.trim(pf.l3_offset + ip.ip_len);
        let local = A::fam(self).is_local(dst);
        let vip = A::fam(self).vips.contains(&dst);
        match ip.l4 {
            L4Summary::Icmp(s) => {
                let echo = if A::V6 {
                    s.msg_type == 128
                } else {
                    s.msg_type == 8
                };
                if echo && (local || vip) {
                    if local::echo_reply_in_place(buf.data_mut(), pf.l3_offset, ip.l4_offset, A::V6)
                    {
                        self.counters.echo_replies.inc();
                        self.counters.tx.inc();
                        (cx.out)(Out::Tx { port: cx.port, buf });
                    } else {
                        self.drop(PathDrop::Malformed, buf, cx.out);
                    }
                    return;
                }
                if A::V6 && (s.msg_type == 135 || s.msg_type == 136) {
                    return self.ndp(cx, buf, pf, ip.l4_offset, local);
                }
                if s.is_error {
                    return self.icmp_related::<A, O>(cx, buf, pf, s, local);
                }
                self.punt(cx, buf, Seen::Frame(pf));
            }
            L4Summary::Tcp { .. } | L4Summary::Udp { .. } | L4Summary::Sctp { .. } if !local => {
                self.lb::<A, O>(cx, buf, pf, src, dst)
            }
            L4Summary::NonFirstFragment if !local => self.fragment::<A, O>(cx, buf, pf, (src, dst)),
            _ => self.punt(cx, buf, Seen::Frame(pf)),
        }
    }
}

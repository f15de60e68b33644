//! Forwarding a conn's packet as its method says (IPVS's `ip_vs_xmit.c`): the TTL / hop
//! limit decremented for every method (time exceeded at 1), then DR ([`super::xmit_dr`]),
//! NAT both ways ([`super::xmit_nat`]) or a tunnel ([`super::xmit_tunnel`]). The fast path's
//! frames take [`Worker::forward_fast`]: DR and NAT in place at known offsets.

use super::buf::Buf;
use super::fam::Af;
use super::icmp::IcmpKind;
use super::neigh::eth_macs;
use super::next_hop::Egress;
use super::path_counters::PathDrop;
use super::rewrite::{self, End};
use super::worker::{Cx, Out, Worker};
use crate::addr::V4;
use crate::config::Fwd;
use crate::shard::Xmit;
use crate::wire::{self, ParsedFrame};

impl<B: Buf> Worker<B> {
    /// Rewrite as the conn's forwarding method says and send toward the next hop.
    pub(super) fn forward<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        mut buf: B,
        pf: &ParsedFrame,
        x: &Xmit<A>,
    ) {
        if pf.ip.is_none() {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        }
        if !rewrite::dec_ttl(buf.data_mut(), pf.l3_offset, A::V6) {
            let kind = IcmpKind::TtlExceeded;
            return self.icmp_error::<A, O>(cx, buf, pf, kind, !x.reply);
        }
        match (x.reply, x.fwd) {
            (true, _) | (false, Fwd::Masq) => self.nat_xmit::<A, O>(cx, buf, pf, x),
            (false, Fwd::Tunnel) => self.tunnel_xmit::<A, O>(cx, buf, pf, x, true),
            (false, Fwd::Droute) => self.dr_xmit::<A, O>(cx, buf, x),
        }
    }

    /// Send a frame already rewritten (an ICMP error about a conn): tunnelled for a tunnel
    /// dest (`check_mtu`: a DF packet that would not fit gets the client fragmentation needed
    /// / packet too big instead), as it is otherwise.
    pub(super) fn deliver<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        buf: B,
        pf: &ParsedFrame,
        x: &Xmit<A>,
        check_mtu: bool,
    ) {
        if x.reply || x.fwd != Fwd::Tunnel {
            return self.xmit_routed::<A, O>(cx, buf, x);
        }
        self.tunnel_xmit::<A, O>(cx, buf, pf, x, check_mtu)
    }

    /// Route a frame as its conn says (replies toward the client, DR to the dest's own MAC,
    /// NAT to the dest's next hop) and send it: to a dest as its next-hop memo says when it
    /// holds ([`super::next_hop`]).
    #[inline(always)]
    pub(super) fn xmit_routed<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        buf: B,
        x: &Xmit<A>,
    ) {
        if x.reply {
            return match A::fam(self).egress(A::routes(cx.pres), x) {
                Some((p, nh)) => self.send::<A, O>(cx, p, nh, buf),
                None => self.drop(PathDrop::NoRoute, buf, cx.out),
            };
        }
        let fam = A::fam(self);
        let direct = x.fwd == Fwd::Droute;
        match fam
            .hops
            .get(x.daddr, direct, fam.neigh.generation(), cx.now)
        {
            Some(h) => {
                if h.stamp {
                    fam.neigh.touch(h.egress.neigh, cx.now);
                }
                self.send_with_macs(cx, h.egress.port, buf, &h.egress.macs)
            }
            None => self.xmit_to_dest::<A, O>(cx, buf, x),
        }
    }

    /// [`Worker::xmit_routed`] to a dest without a next-hop memo: route, resolve, and
    /// memoize what the neighbor table answered.
    #[inline(never)]
    fn xmit_to_dest<A: Af, O: FnMut(Out<B>)>(&mut self, cx: &mut Cx<'_, O>, buf: B, x: &Xmit<A>) {
        let Some((port, nh)) = A::fam(self).egress(A::routes(cx.pres), x) else {
            return self.drop(PathDrop::NoRoute, buf, cx.out);
        };
        let fam = A::fam(self);
        let Some((mac, neigh)) = fam.neigh.ready_slot(nh, port, cx.now) else {
            return self.send_unresolved(cx, port, nh, buf);
        };
        let macs = eth_macs(cx.pres, port, mac);
        // The generation after the answer: a stale entry's first use moved it on.
        let e = Egress { port, macs, neigh };
        let direct = x.fwd == Fwd::Droute;
        fam.hops
            .put(x.daddr, direct, fam.neigh.generation(), e, cx.now);
        self.send_with_macs(cx, port, buf, &macs)
    }

    /// [`Worker::forward`] for a fast-path frame (header offsets known): DR and NAT both
    /// ways in place; tunnels and TTL expiry go through the general code with the frame
    /// parsed, as they build new headers or an ICMP error.
    #[inline(always)]
    pub(super) fn forward_fast<O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        mut buf: B,
        proto: u8,
        x: &Xmit<V4>,
    ) {
        use wire::fast::Fast4;
        let tunnel = !x.reply && x.fwd == Fwd::Tunnel;
        if tunnel || !rewrite::dec_ttl(buf.data_mut(), Fast4::L3, false) {
            let Ok(pf) = wire::parse_frame(buf.data()) else {
                return self.drop(PathDrop::Malformed, buf, cx.out);
            };
            return self.forward::<V4, O>(cx, buf, &pf, x);
        }
        let nat = match (x.reply, x.fwd) {
            (true, _) => Some((End::Src, x.vaddr, x.vport)),
            (false, Fwd::Masq) => Some((End::Dst, x.daddr, x.dport)),
            _ => None,
        };
        if let Some((end, addr, port)) = nat {
            let (l3, l4) = (Fast4::L3, Some(Fast4::L4));
            if !rewrite::nat4(buf.data_mut(), l3, l4, proto, end, addr.0, port) {
                return self.drop(PathDrop::Rewrite, buf, cx.out);
            }
        }
        self.xmit_routed::<V4, O>(cx, buf, x)
    }
}

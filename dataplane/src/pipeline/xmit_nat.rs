//! NAT (IPVS's `ip_vs_nat_xmit`, and the reply side's `handle_response`): a packet to the
//! service gets the dest's address and port as destination; a reply from the dest gets the
//! VIP's as source. Checksums are updated incrementally (`rewrite`); a later fragment, with
//! no transport header, gets the addresses only.

use std::net::IpAddr;

use super::buf::Buf;
use super::fam::Af;
use super::path_counters::PathDrop;
use super::rewrite::{self, End};
use super::worker::{Cx, Out, Worker};
use crate::shard::Xmit;
use crate::wire::{L4Summary, ParsedFrame};

impl<B: Buf> Worker<B> {
    pub(super) fn nat_xmit<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        mut buf: B,
        pf: &ParsedFrame,
        x: &Xmit<A>,
    ) {
        let Some(ip) = pf.ip else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        // A non-first fragment has no transport header: addresses only.
        let l4 = (ip.l4 != L4Summary::NonFirstFragment).then_some(ip.l4_offset);
        let (end, addr, port) = if x.reply {
            // NAT reply: the source becomes the VIP.
            (End::Src, x.vaddr, x.vport)
        } else {
            (End::Dst, x.daddr, x.dport)
        };
        if !nat::<A>(
            buf.data_mut(),
            pf.l3_offset,
            l4,
            ip.protocol.0,
            end,
            addr,
            port,
        ) {
            return self.drop(PathDrop::Rewrite, buf, cx.out);
        }
        self.xmit_routed::<A, O>(cx, buf, x)
    }
}

/// NAT one end of a v4 or v6 packet (`l4 = None`: a non-first fragment, addresses only).
fn nat<A: Af>(
    f: &mut [u8],
    l3: usize,
    l4: Option<usize>,
    proto: u8,
    end: End,
    addr: A,
    port: u16,
) -> bool {
    match addr.to_ip() {
        IpAddr::V4(a) => rewrite::nat4(f, l3, l4, proto, end, u32::from(a), port),
        IpAddr::V6(a) => rewrite::nat6(f, l3, l4, proto, end, a.octets(), port),
    }
}

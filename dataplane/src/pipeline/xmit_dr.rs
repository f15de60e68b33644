//! Direct routing (IPVS's `ip_vs_dr_xmit`): the packet is left as it is (the dest holds the
//! VIP on a loopback) and sent to the dest's own MAC on its route's port (the dest is its own
//! next hop: IPVS's `IP_VS_RT_MODE_KNOWN_NH`, chosen in `Fam::egress`).

use super::buf::Buf;
use super::fam::Af;
use super::worker::{Cx, Out, Worker};
use crate::shard::Xmit;

impl<B: Buf> Worker<B> {
    #[inline]
    pub(super) fn dr_xmit<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        buf: B,
        x: &Xmit<A>,
    ) {
        self.xmit_routed::<A, O>(cx, buf, x)
    }
}

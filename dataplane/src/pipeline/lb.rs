//! Load balancing (IPVS's `ip_vs_in` / `ip_vs_out` from the path's side): steering to the
//! flow's owner worker, the engine's verdict, and the forwarding it asks for. The fast path
//! ([`Worker::lb_fast`]) does the same for the common frame without a [`ParsedFrame`].

use super::buf::Buf;
use super::exception::Seen;
use super::fam::{Af, Fam};
use super::frag::FragKey;
use super::path_counters::PathDrop;
use super::worker::{Cx, Out, Worker};
use crate::addr::{Family, V4};
use crate::conn::NO_HINT;
use crate::proto::{sctp, Proto};
use crate::shard::{Packet, Verdict};
use crate::wire::{self, L4Summary, ParsedFrame};

impl<B: Buf> Worker<B> {
    /// Load-balancer traffic: steer, engine, forward.
    pub(super) fn lb<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        buf: B,
        pf: &ParsedFrame,
        src: A,
        dst: A,
    ) {
        let Some(ip) = pf.ip else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        let Some((sport, dport)) = ip.l4.ports() else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        let proto = ip.protocol.0;
        let mut pkt = Packet {
            proto,
            saddr: src,
            sport,
            daddr: dst,
            dport,
            len: u32::try_from(ip.ip_len).unwrap_or(u32::MAX),
            ..Packet::default()
        };
        match ip.l4 {
            L4Summary::Tcp { flags, .. } => pkt.tcp_flags = flags.0,
            L4Summary::Sctp { first_chunk, .. } => {
                let chunks = buf.data().get(ip.l4_offset + 12..).unwrap_or(&[]);
                pkt.sctp_event = sctp::event(chunks);
                pkt.sctp_init = first_chunk.is_some_and(|c| c.0 == sctp::CID_INIT);
                pkt.sctp_sloppy_start = sctp::may_start_conn(chunks, true);
            }
            _ => {}
        }
        let buf = if cx.handed {
            buf
        } else {
            // A first fragment is steered as its later fragments will be: by what they carry.
            let owner = if ip.fragment.is_some() {
                frag_owner_of(A::fam(self), proto, src, dst)
            } else {
                owner_of(A::fam(self), proto, src, dst, dport)
            };
            let Some(buf) = self.keep_or_hand_off(cx, owner, buf) else {
                return;
            };
            buf
        };
        let hint = core::mem::replace(&mut cx.hint, NO_HINT);
        let v = A::fam(self).shard.process_with_hint(&pkt, cx.now, hint);
        if let Some(fr) = ip.fragment {
            let key = FragKey {
                src,
                dst,
                proto,
                ident: fr.ident,
            };
            return self.first_fragment::<A, O>(cx, buf, pf, key, v);
        }
        match v {
            Verdict::Xmit(x) => self.forward::<A, O>(cx, buf, pf, &x),
            Verdict::Drop(_) => self.drop(PathDrop::Engine, buf, cx.out),
            Verdict::NotOurs => self.punt(cx, buf, Seen::Frame(pf)),
        }
    }

    /// Steering: the frame back when its flow is this worker's, else it leaves as a hand-off
    /// to the owner (counted) and `None`.
    #[inline]
    pub(super) fn keep_or_hand_off<O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        owner: u32,
        buf: B,
    ) -> Option<B> {
        if owner == self.id {
            return Some(buf);
        }
        self.counters.handoff_out.inc();
        (cx.out)(Out::Handoff {
            worker: owner,
            port: cx.port,
            buf,
        });
        None
    }

    /// [`Worker::lb`] for a frame the fast classifier summarised (untagged IPv4 TCP/UDP to
    /// our MAC, no options, not a fragment): the same steps and verdicts, without building a
    /// [`ParsedFrame`]. A local destination takes the general path (to the kernel).
    #[inline(always)]
    pub(super) fn lb_fast<O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        mut buf: B,
        f: &wire::fast::Fast4,
        (hint_in, hint_out): (u32, u32),
    ) {
        let (src, dst) = (V4(f.saddr), V4(f.daddr));
        if self.f4.is_local(dst) {
            return self.input(cx, buf);
        }
        buf.trim(wire::fast::Fast4::L3 + usize::from(f.ip_len));
        let pkt = Packet {
            proto: f.proto,
            saddr: src,
            sport: f.sport,
            daddr: dst,
            dport: f.dport,
            len: u32::from(f.ip_len),
            tcp_flags: f.tcp_flags,
            ..Packet::default()
        };
        let owner = owner_of(&self.f4, f.proto, src, dst, f.dport);
        let Some(buf) = self.keep_or_hand_off(cx, owner, buf) else {
            return;
        };
        match self
            .f4
            .shard
            .process_hinted(&pkt, cx.now, hint_in, hint_out)
        {
            Verdict::Xmit(x) => self.forward_fast(cx, buf, f.proto, &x),
            Verdict::Drop(_) => self.drop(PathDrop::Engine, buf, cx.out),
            Verdict::NotOurs => self.punt_unparsed(cx, buf),
        }
    }
}

/// The worker whose shard owns a flow: steering by the client, which is the source of a
/// packet to a service and the destination of anything else (a reply).
#[inline]
fn owner_of<A: Family, B>(fam: &Fam<A, B>, proto: u8, src: A, dst: A, dport: u16) -> u32 {
    if fam.steer.workers() == 1 {
        return 0;
    }
    let to_service = Proto::from_u8(proto)
        .is_some_and(|p| fam.shard.config().find_service(0, p, dst, dport).is_some());
    fam.steer.owner(if to_service { src } else { dst })
}

/// [`owner_of`] for a fragment, first or later, from what every fragment of a datagram
/// carries (no port): to a service when the destination is a VIP or in a firewall-mark rule's
/// prefix for the protocol. So a datagram's fragments all reach the worker its first went to.
/// (A fragmented NAT reply to a client inside such a prefix would go to the wrong worker; a
/// whole reply is steered by its port too.)
#[inline]
pub(super) fn frag_owner_of<A: Family, B>(fam: &Fam<A, B>, proto: u8, src: A, dst: A) -> u32 {
    if fam.steer.workers() == 1 {
        return 0;
    }
    let to_service = fam.vips.contains(&dst)
        || Proto::from_u8(proto).is_some_and(|p| fam.shard.config().fwmark_covers(p, dst));
    fam.steer.owner(if to_service { src } else { dst })
}

//! Fragments (IPVS sees datagrams reassembled, in any arrival order): the first is balanced
//! and what it got remembered ([`super::frag`]); later ones follow it; one that comes before
//! its first is held ([`super::frag_hold`]) and sent right after the first.

use super::buf::Buf;
use super::exception::Seen;
use super::fam::Af;
use super::frag::{Follow, FragKey};
use super::lb::frag_owner_of;
use super::path_counters::PathDrop;
use super::worker::{Cx, Out, Worker};
use crate::conn::NO_HINT;
use crate::proto::Proto;
use crate::shard::Verdict;
use crate::wire::{self, ParsedFrame};

impl<B: Buf> Worker<B> {
    /// A fragment other than the first: forwarded as its datagram's first fragment was.
    pub(super) fn fragment<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        buf: B,
        pf: &ParsedFrame,
        (src, dst): (A, A),
    ) {
        let (Some(ip), id) = (pf.ip, self.id) else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        let Some(fr) = ip.fragment else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        let fam = A::fam(self);
        if !cx.handed {
            let owner = frag_owner_of(fam, ip.protocol.0, src, dst);
            if owner != id {
                self.counters.handoff_out.inc();
                return (cx.out)(Out::Handoff {
                    worker: owner,
                    port: cx.port,
                    buf,
                });
            }
        }
        let key = FragKey {
            src,
            dst,
            proto: ip.protocol.0,
            ident: fr.ident,
        };
        match fam.frags.get(&key, cx.now) {
            Some(f) => self.follow::<A, O>(cx, buf, pf, f),
            // Only a first fragment of these goes to the engine: others have none to wait for.
            None if Proto::from_u8(key.proto).is_some() => self.hold_early::<A, O>(cx, buf, key),
            None => self.drop(PathDrop::FragUnknown, buf, cx.out),
        }
    }

    /// A datagram's first fragment: what the engine gave it is remembered for the datagram's
    /// other fragments, and those held before it follow it now, in arrival order (IPVS sees
    /// the datagram reassembled, whatever order its fragments came in).
    #[inline(never)]
    pub(super) fn first_fragment<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        buf: B,
        pf: &ParsedFrame,
        key: FragKey<A>,
        v: Verdict<A>,
    ) {
        let f = match v {
            Verdict::Xmit(x) => Follow::Xmit(x),
            Verdict::Drop(_) => Follow::Drop,
            Verdict::NotOurs => Follow::Kernel,
        };
        A::fam(self).frags.insert(key, f, cx.now);
        match f {
            Follow::Xmit(x) => self.forward::<A, O>(cx, buf, pf, &x),
            Follow::Drop => self.drop(PathDrop::Engine, buf, cx.out),
            Follow::Kernel => self.punt(cx, buf, Seen::Frame(pf)),
        }
        while let Some((p, b)) = A::fam(self).early.pop(&key) {
            match wire::parse_frame(b.data()) {
                Ok(pf) => {
                    // A held fragment leaves as received on its own port.
                    let mut held = Cx {
                        pres: cx.pres,
                        now: cx.now,
                        port: p,
                        handed: cx.handed,
                        out: &mut *cx.out,
                        hint: NO_HINT,
                    };
                    self.follow::<A, O>(&mut held, b, &pf, f)
                }
                // It parsed when it was held.
                Err(_) => self.drop(PathDrop::Malformed, b, cx.out),
            }
        }
    }

    /// A later fragment goes where its datagram's first went.
    fn follow<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        buf: B,
        pf: &ParsedFrame,
        f: Follow<A>,
    ) {
        match f {
            Follow::Xmit(x) => self.forward::<A, O>(cx, buf, pf, &x),
            Follow::Drop => self.drop(PathDrop::FragFirstDropped, buf, cx.out),
            Follow::Kernel => self.punt(cx, buf, Seen::Frame(pf)),
        }
    }

    /// A fragment before its first (of a protocol the engine balances): held until the first
    /// comes, within the worker's bounds ([`super::frag_hold::FragHold`]); refused, it is
    /// dropped and counted.
    #[cold]
    fn hold_early<A: Af, O: FnMut(Out<B>)>(&mut self, cx: &mut Cx<'_, O>, buf: B, key: FragKey<A>) {
        if !self.may_hold_fragment() {
            return self.drop(PathDrop::FragHoldFull, buf, cx.out);
        }
        match A::fam(self).early.hold(key, (cx.port, buf), cx.now) {
            Ok(()) => self.counters.frags_held.inc(),
            Err(((_, b), _)) => self.drop(PathDrop::FragHoldFull, b, cx.out),
        }
    }
}

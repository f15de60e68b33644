//! One worker's packet path: parse, steer, engine, forward, and the appliance's own presence
//! (ARP, IPv6 ND, echo, neighbor resolution). Sans-IO: frames come in with `now`, and every
//! frame leaves through the `out` callback as an [`Out`] (to a port, to the kernel, to another
//! worker, or dropped for the caller to free). Every drop is counted under a [`PathDrop`].
//!
//! The path is one `impl Worker` spread over a file per stage (as smoltcp's interface is one
//! `impl InterfaceInner` over a file per layer): `burst` (staging an rx burst), `ingress`
//! (parse and dispatch), `arp` and `ndisc` (the appliance's neighbor answers), `lb` (steering
//! and the engine), `fragment`, `icmp`, `xmit` with `xmit_dr`, `xmit_nat` and `xmit_tunnel`
//! (IPVS's forwarding methods), and `neigh` (next-hop resolution and output). What every step
//! of one call shares travels as one `Cx`.

use std::sync::Arc;

use super::buf::Buf;
use super::exception::{Meter, Seen};
use super::fam::Fam;
use super::frag_hold::FRAG_HOLD_MAX;
use super::icmp_limit::IcmpLimit;
use crate::addr::{V4, V6};
use crate::config::Config;
use crate::conn::{BURST, NO_HINT};
use crate::shard::ShardParams;
use crate::wire;

pub use super::fam::Af;
pub use super::path_counters::{PathCounters, PathDrop};
pub use super::presence::{PortInfo, Presence, TxOffloads};

/// Where a frame goes.
#[derive(Debug)]
pub enum Out<B> {
    /// Transmit on a port.
    Tx { port: u16, buf: B },
    /// The exception path: the port's kernel interface (SSH, BGP, health checks...).
    Kernel { port: u16, buf: B },
    /// The flow belongs to another worker: pass it through the handoff ring.
    Handoff { worker: u32, port: u16, buf: B },
    /// Dropped (already counted): free the buffer.
    Drop(B),
}

/// What the steps of one call share, carried once instead of threaded through every step:
/// the presence, the call's `now` (a burst has one), the port the frames came in on, whether
/// another worker handed them over, and where frames go.
pub(super) struct Cx<'a, O> {
    pub pres: &'a Presence,
    pub now: u64,
    /// The rx port (egress ports are named where they are chosen).
    pub port: u16,
    /// Handed over by another worker: steering already chose this one.
    pub handed: bool,
    pub out: &'a mut O,
    /// The conn slot the burst's staged lookup named for a frame on the general path
    /// ([`NO_HINT`] for none), taken by its engine call as the hint of both lookups (inbound
    /// and as a reply): the engine checks a hint against each key before it trusts it, so a
    /// hint only saves a probe.
    pub hint: u32,
}

pub struct Worker<B> {
    pub id: u32,
    pub f4: Fam<V4, B>,
    pub f6: Fam<V6, B>,
    /// Taken out for the duration of a call (a move, not a refcount change), so the path can
    /// read it while it mutates the rest of the worker.
    pres: Option<Arc<Presence>>,
    pub(super) counters: Arc<PathCounters>,
    pub(super) alloc: Box<dyn FnMut() -> Option<B> + Send>,
    /// The last outer IPv4 identification a tunnel used.
    pub(super) ident: u16,
    /// Workers of the appliance (neighbor answers are shared with the others).
    pub(super) workers: u32,
    /// This worker's meter of the frames it hands to the kernel.
    meter: Meter,
    /// This worker's part of the rate of the ICMP errors it sends itself.
    pub(super) icmp_limit: IcmpLimit,
    /// The neighbor tables' generations when their counters were last published.
    pub(super) neigh_noted: (u64, u64),
}

impl<B: Buf> Worker<B> {
    /// Worker `id` of `workers`, with its shards sized by `params` (the seed is mixed with
    /// the id), the services of both families `cfgs`, and `alloc` to get buffers for frames
    /// it builds itself.
    pub fn new(
        id: u32,
        workers: u32,
        params: ShardParams,
        (cfg4, cfg6): (Arc<Config<V4>>, Arc<Config<V6>>),
        pres: Arc<Presence>,
        alloc: Box<dyn FnMut() -> Option<B> + Send>,
        now: u64,
    ) -> Self {
        let p = ShardParams {
            seed: params.seed ^ u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            worker: id,
            ..params
        };
        let mut w = Worker {
            id,
            f4: Fam::new(cfg4, &p, workers, now, Arc::clone(&pres.rss_key)),
            f6: Fam::new(cfg6, &p, workers, now, Arc::clone(&pres.rss_key)),
            pres: Some(Arc::clone(&pres)),
            counters: Arc::new(PathCounters::default()),
            alloc,
            ident: 0,
            workers,
            meter: Meter::new(
                &pres.exception,
                pres.ports.len(),
                workers,
                p.seed ^ 0x6578_6370,
                now,
            ),
            icmp_limit: IcmpLimit::new(pres.icmp, workers, now),
            neigh_noted: (0, 0),
        };
        w.f4.set_locals(&pres);
        w.f6.set_locals(&pres);
        for &(ip, mac, port) in &pres.static4 {
            let _ = w.f4.neigh.add_static(ip, mac, port);
        }
        for &(ip, mac, port) in &pres.static6 {
            let _ = w.f6.neigh.add_static(ip, mac, port);
        }
        w.note_neigh();
        w
    }

    pub fn counters(&self) -> Arc<PathCounters> {
        Arc::clone(&self.counters)
    }

    /// Fragments held now, waiting for their datagram's first.
    pub fn held_fragments(&self) -> usize {
        self.f4.early.len() + self.f6.early.len()
    }

    /// Whether the worker may hold one more early fragment (the bound is over both families).
    pub(super) fn may_hold_fragment(&self) -> bool {
        self.held_fragments() < FRAG_HOLD_MAX
    }

    /// Swap in new service configs (steering and VIPs follow). Returns the snapshots they
    /// replaced, for the caller to free where it likes (not between two bursts).
    pub fn set_configs(
        &mut self,
        cfg4: Arc<Config<V4>>,
        cfg6: Arc<Config<V6>>,
        now: u64,
    ) -> (Arc<Config<V4>>, Arc<Config<V6>>) {
        let workers = self.workers;
        (
            self.f4.set_config(cfg4, workers, now),
            self.f6.set_config(cfg6, workers, now),
        )
    }

    /// Run `f` with the presence borrowed beside `&mut self` (moved out of its slot and back:
    /// no reference-count traffic per packet). `None` only if called re-entrantly.
    #[inline]
    pub(super) fn enter<R>(&mut self, f: impl FnOnce(&mut Self, &Presence) -> R) -> Option<R> {
        let pres = self.pres.take()?;
        let r = f(self, &pres);
        self.pres = Some(pres);
        Some(r)
    }

    /// The presence, shared (for the slow paths that build frames outside a call).
    pub(super) fn presence(&self) -> Option<Arc<Presence>> {
        self.pres.clone()
    }

    #[inline]
    pub(super) fn drop(&self, r: PathDrop, buf: B, out: &mut impl FnMut(Out<B>)) {
        self.counters.drops[r as usize].inc();
        out(Out::Drop(buf));
    }

    /// Punt a frame to the kernel interface of the rx port (the exception path) if its
    /// class's budget lets it pass now, else drop it; counted either way (`exception`,
    /// `drops`). Out of line: forwarding never comes here.
    #[cold]
    #[inline(never)]
    pub(super) fn punt<O: FnMut(Out<B>)>(&mut self, cx: &mut Cx<'_, O>, buf: B, seen: Seen<'_>) {
        let port = cx.port;
        let (class, pass) = self.meter.admit(port, seen, cx.now);
        if !pass {
            return self.drop(PathDrop::over_budget(class), buf, cx.out);
        }
        self.counters.exception[class as usize].inc();
        self.counters.kernel.inc();
        (cx.out)(Out::Kernel { port, buf });
    }

    /// [`Worker::punt`] for a frame the fast path summarised without parsing it.
    #[cold]
    pub(super) fn punt_unparsed<O: FnMut(Out<B>)>(&mut self, cx: &mut Cx<'_, O>, buf: B) {
        match wire::parse_frame(buf.data()) {
            Ok(pf) => self.punt(cx, buf, Seen::Frame(&pf)),
            Err(_) => self.drop(PathDrop::Malformed, buf, cx.out),
        }
    }

    /// Once per burst: engine timers and defense, held fragments whose first never came,
    /// neighbor retransmits and failures.
    pub fn tick(&mut self, now: u64, out: &mut impl FnMut(Out<B>)) {
        self.f4.shard.tick(now);
        self.f6.shard.tick(now);
        let timeout = &self.counters.drops[PathDrop::FragHoldTimeout as usize];
        let mut expired = |(_, b): (u16, B)| {
            timeout.inc();
            out(Out::Drop(b));
        };
        self.f4.early.expire(now, &mut expired);
        self.f6.early.expire(now, &mut expired);
        let mut ask4 = Vec::new();
        let mut dead = Vec::new();
        self.f4
            .neigh
            .tick(now, &mut |ip, port| ask4.push((ip, port)), &mut |(_, b)| {
                dead.push(b)
            });
        let mut ask6 = Vec::new();
        self.f6
            .neigh
            .tick(now, &mut |ip, port| ask6.push((ip, port)), &mut |(_, b)| {
                dead.push(b)
            });
        self.note_neigh_if_moved();
        for b in dead {
            self.drop(PathDrop::NeighFailed, b, out);
        }
        if ask4.is_empty() && ask6.is_empty() {
            return;
        }
        self.enter(|w, pres| {
            for (ip, port) in ask4 {
                w.solicit::<V4>(pres, ip, port, out);
            }
            for (ip, port) in ask6 {
                w.solicit::<V6>(pres, ip, port, out);
            }
        });
    }

    /// A frame received on `port`.
    pub fn rx(&mut self, port: u16, buf: B, now: u64, out: &mut impl FnMut(Out<B>)) {
        self.counters.rx.inc();
        self.enter(|w, pres| {
            let mut cx = Cx {
                pres,
                now,
                port,
                handed: false,
                out,
                hint: NO_HINT,
            };
            w.input(&mut cx, buf)
        });
    }

    /// A burst of frames received on `port`, staged [`BURST`] at a time (`burst.rs`): each
    /// frame's conn lookup is prefetched a few frames ahead of its processing, so the misses
    /// of several frames overlap; each frame then goes the way [`Self::rx`] would take it.
    /// Every frame is taken: `bufs` are left empty, ready for the next burst.
    pub fn rx_burst(
        &mut self,
        port: u16,
        bufs: &mut [Option<B>],
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        for chunk in bufs.chunks_mut(BURST) {
            self.enter(|w, pres| {
                let mut cx = Cx {
                    pres,
                    now,
                    port,
                    handed: false,
                    out: &mut *out,
                    hint: NO_HINT,
                };
                w.burst(&mut cx, chunk)
            });
        }
    }

    /// A frame another worker handed over (it belongs to this worker's shard).
    pub fn rx_handoff(&mut self, port: u16, buf: B, now: u64, out: &mut impl FnMut(Out<B>)) {
        self.counters.handoff_in.inc();
        self.enter(|w, pres| {
            let mut cx = Cx {
                pres,
                now,
                port,
                handed: true,
                out,
                hint: NO_HINT,
            };
            w.input(&mut cx, buf)
        });
    }
}

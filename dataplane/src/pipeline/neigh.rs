//! Neighbor resolution and output (the kernel's `neigh_output` for the path): the next hop's
//! MAC from the neighbor table (a miss holds the frame and solicits), ARP requests and
//! neighbor solicitations, the VIPs' announcements, and neighbor answers shared with the
//! other workers.

use std::net::{IpAddr, Ipv4Addr};

use super::buf::Buf;
use super::fam::Af;
use super::local::{self, Ends};
use super::ndisc::{ip6, ALL_NODES, ALL_NODES_MAC};
use super::path_counters::PathDrop;
use super::presence::{port_source, Presence};
use super::worker::{Cx, Out, Worker};
use crate::addr::Family;
use crate::l3::Resolve;
use crate::wire::icmpv6::{nd_flags, NdiscRepr};
use crate::wire::{ArpRepr, MacAddr};

impl<B: Buf> Worker<B> {
    /// A neighbor answer to the appliance arrives at one worker (ARP is not hashed to
    /// queues), but the worker that asked may be another: each other worker gets a copy
    /// through the hand-off rings and learns from it. Only answers addressed to the
    /// appliance are shared, so a flood of foreign ARP is not multiplied.
    #[cold]
    pub(super) fn share_neigh<O: FnMut(Out<B>)>(&mut self, cx: &mut Cx<'_, O>, buf: &B) {
        for w in (0..self.workers).filter(|&w| w != self.id) {
            let Some(mut copy) = (self.alloc)() else {
                continue;
            };
            let Some(d) = copy.append(buf.len()) else {
                continue;
            };
            d.copy_from_slice(buf.data());
            self.counters.neigh_shared.inc();
            self.counters.handoff_out.inc();
            (cx.out)(Out::Handoff {
                worker: w,
                port: cx.port,
                buf: copy,
            });
        }
    }

    /// The neighbor tables' gauges and counters, published (set where they change: holding,
    /// releasing, learning, failing; never on the forwarding path).
    #[cold]
    pub(super) fn note_neigh(&mut self) {
        let (n4, n6) = (&self.f4.neigh, &self.f6.neigh);
        let c = &self.counters;
        c.neigh_held.set((n4.held() + n6.held()) as u64);
        c.neigh_entries.set((n4.len() + n6.len()) as u64);
        c.neigh_failed.set(n4.stats.failed + n6.stats.failed);
        c.neigh_updated
            .set(n4.stats.unsolicited_updated + n6.stats.unsolicited_updated);
        self.neigh_noted = (n4.generation(), n6.generation());
    }

    /// [`Worker::note_neigh`] if either table moved on (its generation) since the last: an
    /// entry made, changed, aged or freed.
    #[inline]
    pub(super) fn note_neigh_if_moved(&mut self) {
        if (self.f4.neigh.generation(), self.f6.neigh.generation()) != self.neigh_noted {
            self.note_neigh();
        }
    }

    /// Gratuitous ARP (and unsolicited NA) for every VIP on the ports whose connected prefix
    /// holds it, so switches and routers learn the appliance at start and on config change.
    pub fn announce(&mut self, out: &mut impl FnMut(Out<B>)) {
        let Some(pres) = self.presence() else {
            return;
        };
        // In address order, so the announcement is the same on every run.
        let vips4 = self.f4.vips.sorted.clone();
        let vips6 = self.f6.vips.sorted.clone();
        for (i, p) in pres.ports.iter().enumerate() {
            for &vip in &vips4 {
                if p.addrs4.iter().any(|&(a, l)| a.mask(l) == vip.mask(l)) {
                    let Some(mut b) = (self.alloc)() else {
                        continue;
                    };
                    let ip = Ipv4Addr::from(vip.0);
                    let garp = ArpRepr::request(MacAddr(p.mac), ip, ip);
                    if local::arp(&mut b, [0xff; 6], &garp) {
                        self.counters.tx.inc();
                        self.counters.announces.inc();
                        out(Out::Tx {
                            port: i as u16,
                            buf: b,
                        });
                    }
                }
            }
            for &vip in &vips6 {
                if p.addrs6.iter().any(|&(a, l)| a.mask(l) == vip.mask(l)) {
                    let Some(mut b) = (self.alloc)() else {
                        continue;
                    };
                    let t = ip6(vip);
                    let ends = Ends {
                        eth_src: p.mac,
                        eth_dst: ALL_NODES_MAC,
                        src: t,
                        dst: ALL_NODES,
                    };
                    let na = NdiscRepr::NeighborAdvert {
                        flags: nd_flags::OVERRIDE,
                        target: t,
                        lladdr: Some(MacAddr(p.mac)),
                    };
                    if local::ndisc(&mut b, &ends, &na) {
                        self.counters.tx.inc();
                        self.counters.announces.inc();
                        out(Out::Tx {
                            port: i as u16,
                            buf: b,
                        });
                    }
                }
            }
        }
    }

    /// Resolve the next hop's MAC and transmit on egress `port` (or hold until resolved).
    #[inline(always)]
    pub(super) fn send<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        port: u16,
        nh: A,
        buf: B,
    ) {
        if let Some(mac) = A::fam(self).neigh.ready(nh, port, cx.now) {
            return self.send_resolved(cx, port, buf, mac);
        }
        self.send_unresolved(cx, port, nh, buf)
    }

    /// [`Worker::send`] when the neighbor is not ready: hold, solicit or drop.
    #[inline(never)]
    pub(super) fn send_unresolved<A: Af, O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        port: u16,
        nh: A,
        buf: B,
    ) {
        match A::fam(self).neigh.resolve(nh, port, (port, buf), cx.now) {
            Resolve::Ready(mac, (p, b)) => self.send_resolved(cx, p, b, mac),
            Resolve::Held { solicit } => {
                self.note_neigh();
                if solicit {
                    self.solicit::<A>(cx.pres, nh, port, cx.out);
                }
            }
            Resolve::Dropped((_, b), why) => {
                let r = match why {
                    crate::l3::NeighDrop::QueueFull => PathDrop::NeighQueueFull,
                    crate::l3::NeighDrop::TableFull => PathDrop::NeighTableFull,
                    crate::l3::NeighDrop::HeldFull => PathDrop::NeighHeldFull,
                };
                self.drop(r, b, cx.out)
            }
        }
    }

    /// Transmit on egress `port` to `mac`, from the port's MAC. Always inlined: the
    /// forwarding path ends here (a call measured +9 instructions per frame).
    #[inline(always)]
    pub(super) fn send_resolved<O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        port: u16,
        buf: B,
        mac: [u8; 6],
    ) {
        let macs = eth_macs(cx.pres, port, mac);
        self.send_with_macs(cx, port, buf, &macs)
    }

    /// [`Worker::send_resolved`] with the Ethernet addresses written as they are
    /// (destination, source: a next-hop memo's).
    #[inline(always)]
    pub(super) fn send_with_macs<O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        port: u16,
        mut buf: B,
        macs: &[u8; 12],
    ) {
        match buf.data_mut().first_chunk_mut::<12>() {
            Some(h) => *h = *macs,
            None => return self.drop(PathDrop::Malformed, buf, cx.out),
        }
        self.counters.tx.inc();
        (cx.out)(Out::Tx { port, buf });
    }

    /// An ARP request or neighbor solicitation for `ip` on `port`.
    pub(super) fn solicit<A: Af>(
        &mut self,
        pres: &Presence,
        ip: A,
        port: u16,
        out: &mut impl FnMut(Out<B>),
    ) {
        let Some(p) = pres.ports.get(port as usize) else {
            return;
        };
        let Some(src) = port_source(p, ip) else {
            return;
        };
        let Some(mut b) = (self.alloc)() else {
            self.counters.drops[PathDrop::NoBuffer as usize].inc();
            return;
        };
        let ok = match (ip.to_ip(), src.to_ip()) {
            (IpAddr::V4(t), IpAddr::V4(s)) => {
                local::arp(&mut b, [0xff; 6], &ArpRepr::request(MacAddr(p.mac), s, t))
            }
            (IpAddr::V6(t), IpAddr::V6(s)) => {
                let (dst, eth_dst) = local::solicited_node(t);
                let ends = Ends {
                    eth_src: p.mac,
                    eth_dst,
                    src: s,
                    dst,
                };
                let ns = NdiscRepr::NeighborSolicit {
                    target: t,
                    lladdr: Some(MacAddr(p.mac)),
                };
                local::ndisc(&mut b, &ends, &ns)
            }
            _ => false,
        };
        if ok {
            self.counters.solicits.inc();
            self.counters.tx.inc();
            out(Out::Tx { port, buf: b });
        } else {
            out(Out::Drop(b));
        }
    }
}

/// A frame's Ethernet addresses as it leaves `port` for `dst`: `dst`, then the port's MAC
/// (zero for a port that does not exist).
#[inline(always)]
pub(super) fn eth_macs(pres: &Presence, port: u16, dst: [u8; 6]) -> [u8; 12] {
    let src = pres.ports.get(usize::from(port)).map_or([0; 6], |p| p.mac);
    let mut macs = [0; 12];
    macs[..6].copy_from_slice(&dst);
    macs[6..].copy_from_slice(&src);
    macs
}

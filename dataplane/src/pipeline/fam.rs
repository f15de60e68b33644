//! A worker's per-family parts ([`Fam`]: shard, steering, neighbors, VIPs, fragments, route
//! memo) and the glue ([`Af`]) that lets one generic path serve IPv4 and IPv6.

use std::sync::Arc;

use super::addr_set::AddrSet;
use super::frag::{FragTable, FRAG_TIMEOUT_MS};
use super::frag_hold::{FragHold, FRAG_HOLD_MAX, FRAG_HOLD_MS, FRAG_HOLD_PER_DATAGRAM};
use super::next_hop::NextHops;
use super::presence::{PortInfo, Presence};
use super::rss;
use super::steer::Steering;
use super::worker::Worker;
use crate::addr::{Family, V4, V6};
use crate::config::{same_keys, Config, Fwd, ServiceKey};
use crate::l3::{NeighParams, NeighTable, Route, RouteTable};
use crate::shard::{Shard, ShardParams, Xmit};

/// Per-family parts of a worker, so one generic path serves v4 and v6.
pub struct Fam<A: Family, B> {
    pub shard: Shard<A>,
    pub(super) steer: Steering,
    pub(super) neigh: NeighTable<A, (u16, B)>,
    /// Addresses the appliance answers ARP/ND and echo for as a VIP.
    pub(super) vips: AddrSet<A>,
    pub(super) frags: FragTable<A>,
    /// Fragments that came before their first, with their rx port.
    pub(super) early: FragHold<A, (u16, B)>,
    /// Direct-mapped memo of route lookups (address -> its route), valid for as long as the
    /// worker's presence, which never changes after [`Worker::new`].
    routes: Box<[RouteMemo<A>]>,
    /// Egress port and neighbor MAC of the dests packets went to lately.
    pub(super) hops: NextHops<A>,
    /// The ports' addresses of this family (the presence's, which never change), probed by
    /// every frame: is it for the appliance itself.
    locals: AddrSet<A>,
}

/// Slots of a family's route memo (a power of two).
const ROUTE_MEMO: usize = 256;

/// A route memo slot: an address and its lookup's answer.
type RouteMemo<A> = Option<(A, Option<Route<A>>)>;

impl<A: Family, B> Fam<A, B> {
    /// The route of `dst`, from the memo or the table.
    #[inline(always)]
    pub(super) fn route(&mut self, table: &RouteTable<A>, dst: A) -> Option<Route<A>> {
        let f = dst.fold();
        let i = (f ^ f >> 29) as usize & (ROUTE_MEMO - 1);
        match self.routes[i] {
            Some((a, r)) if a == dst => r,
            _ => {
                let r = table.lookup(dst);
                self.routes[i] = Some((dst, r));
                r
            }
        }
    }

    /// Egress port and next hop of a conn's packet (IPVS's route lookups): a reply toward
    /// the client's next hop; DR to the dest itself on its route's port (KNOWN_NH); NAT and
    /// TUN to the dest's next hop.
    #[inline(always)]
    pub(super) fn egress(&mut self, table: &RouteTable<A>, x: &Xmit<A>) -> Option<(u16, A)> {
        let to = if x.reply { x.caddr } else { x.daddr };
        let r = self.route(table, to)?;
        let nh = match (x.reply, x.fwd) {
            (false, Fwd::Droute) => to,
            _ => r.via.unwrap_or(to),
        };
        Some((r.port, nh))
    }
}

impl<A: Af, B> Fam<A, B> {
    /// Take the ports' addresses from the presence the worker runs with for good.
    pub(super) fn set_locals(&mut self, pres: &Presence) {
        self.locals = AddrSet::new(
            pres.ports
                .iter()
                .flat_map(|p| A::port_addrs(p).iter().map(|&(a, _)| a))
                .collect(),
        );
    }

    /// Whether `a` is one of the ports' addresses.
    #[inline(always)]
    pub(super) fn is_local(&self, a: A) -> bool {
        self.locals.contains(&a)
    }
}

impl<A: Family, B> Fam<A, B> {
    pub(super) fn new(
        cfg: Arc<Config<A>>,
        params: &ShardParams,
        workers: u32,
        now: u64,
        key: Arc<rss::Key>,
    ) -> Self {
        let steer = Steering::new(&cfg, workers, key);
        let vips = vips_of(&cfg);
        Fam {
            shard: Shard::new(params.clone(), cfg, now),
            steer,
            neigh: NeighTable::new(NeighParams {
                seed: params.seed ^ 0x6e65_6967,
                ..NeighParams::default()
            }),
            vips,
            frags: FragTable::new(1024, FRAG_TIMEOUT_MS),
            // Each family may use the worker's whole hold (`Worker::may_hold_fragment` caps the sum).
            early: FragHold::new(FRAG_HOLD_MAX, FRAG_HOLD_PER_DATAGRAM, FRAG_HOLD_MS),
            routes: vec![None; ROUTE_MEMO].into_boxed_slice(),
            hops: NextHops::new(),
            locals: AddrSet::new(Vec::new()),
        }
    }
}

impl<A: Family, B> Fam<A, B> {
    /// New services: steering and VIPs follow; the snapshot replaced is returned.
    pub(super) fn set_config(
        &mut self,
        cfg: Arc<Config<A>>,
        workers: u32,
        now: u64,
    ) -> Arc<Config<A>> {
        self.steer = Steering::new(&cfg, workers, self.steer.key());
        // The VIPs change only when services or rules come or go: a change that keeps every
        // service's key in its place (`-e`, `-a`, `-d`) keeps the set, which for 10k
        // services took most of such a swap to sort and hash again.
        let old = self.shard.config();
        if old.fwmark_rules != cfg.fwmark_rules || !same_keys(&old.services, &cfg.services) {
            self.vips = vips_of(&cfg);
        }
        self.shard.set_config(cfg, now)
    }
}

fn vips_of<A: Family>(cfg: &Config<A>) -> AddrSet<A> {
    let mut v: Vec<A> = cfg
        .services
        .iter()
        .filter_map(|s| match s.key {
            ServiceKey::Addr { vaddr, .. } => Some(vaddr),
            ServiceKey::Fwmark(_) => None,
        })
        .collect();
    v.extend(
        cfg.fwmark_rules
            .iter()
            .filter(|r| u32::from(r.prefix) == A::BITS)
            .map(|r| r.addr),
    );
    AddrSet::new(v)
}

/// Family-specific glue.
pub trait Af: Family {
    const V6: bool;
    fn fam<B>(w: &mut Worker<B>) -> &mut Fam<Self, B>;
    fn fam_ref<B>(w: &Worker<B>) -> &Fam<Self, B>;
    fn routes(p: &Presence) -> &RouteTable<Self>;
    fn port_addrs(p: &PortInfo) -> &[(Self, u8)];
}

impl Af for V4 {
    const V6: bool = false;
    fn fam<B>(w: &mut Worker<B>) -> &mut Fam<V4, B> {
        &mut w.f4
    }
    fn fam_ref<B>(w: &Worker<B>) -> &Fam<V4, B> {
        &w.f4
    }
    fn routes(p: &Presence) -> &RouteTable<V4> {
        &p.routes4
    }
    fn port_addrs(p: &PortInfo) -> &[(V4, u8)] {
        &p.addrs4
    }
}

impl Af for V6 {
    const V6: bool = true;
    fn fam<B>(w: &mut Worker<B>) -> &mut Fam<V6, B> {
        &mut w.f6
    }
    fn fam_ref<B>(w: &Worker<B>) -> &Fam<V6, B> {
        &w.f6
    }
    fn routes(p: &Presence) -> &RouteTable<V6> {
        &p.routes6
    }
    fn port_addrs(p: &PortInfo) -> &[(V6, u8)] {
        &p.addrs6
    }
}

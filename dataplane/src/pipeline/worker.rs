//! One worker's packet path: parse, steer, engine, forward, and the appliance's own presence
//! (ARP, IPv6 ND, echo, neighbor resolution). Sans-IO: frames come in with `now`, and every
//! frame leaves through the `out` callback as an [`Out`] (to a port, to the kernel, to another
//! worker, or dropped for the caller to free). Every drop is counted under a [`PathDrop`].

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::buf::{Buf, TxCsum};
use super::exception::{Class, ExceptionConfig, Meter, Seen};
use super::frag::{Follow, FragKey, FragTable, FRAG_TIMEOUT_MS};
use super::frag_hold::{FragHold, FRAG_HOLD_MAX, FRAG_HOLD_MS, FRAG_HOLD_PER_DATAGRAM};
use super::local;
use super::rewrite::{self, End};
use super::rss;
use super::steer::Steering;
use crate::addr::{Family, V4, V6};
use crate::config::{Config, FastHasher, Fwd, ServiceKey, TunCsum, TunKind};

/// A set probed per packet: the fast hasher, not SipHash.
type FastSet<T> = HashSet<T, BuildHasherDefault<FastHasher>>;
use crate::conn::{ConnKey, Side, BURST, NO_HINT};
use crate::counters::Cell;
use crate::l3::{NeighParams, NeighTable, Resolve, Route, RouteTable};
use crate::proto::{sctp, Proto};
use crate::shard::{Packet, Shard, ShardParams, Verdict, Xmit};
use crate::wire::{self, EtherType, IpProtocol, L4Summary, ParsedFrame};

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

macro_rules! path_drops {
    ($($v:ident => $s:literal,)*) => {
        /// Why the packet path dropped a frame (the engine counts its own reasons).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum PathDrop { $($v,)* }
        impl PathDrop {
            pub const ALL: &'static [PathDrop] = &[$(PathDrop::$v,)*];
            pub const COUNT: usize = [$($s,)*].len();
            pub fn name(self) -> &'static str { match self { $(PathDrop::$v => $s,)* } }
        }
    };
}

path_drops! {
    Truncated => "truncated",
    Malformed => "malformed",
    NotForUs => "l2_not_for_us",
    ArpNotOurs => "arp_not_ours",
    Engine => "engine",
    TtlExceeded => "ttl_exceeded",
    NoRoute => "no_route",
    NeighQueueFull => "neigh_queue_full",
    NeighTableFull => "neigh_table_full",
    NeighFailed => "neigh_failed",
    NoHeadroom => "no_headroom",
    FragNeeded => "frag_needed",
    FragUnknown => "frag_unknown",
    FragHoldFull => "frag_hold_full",
    FragHoldTimeout => "frag_hold_timeout",
    FragFirstDropped => "frag_first_dropped",
    IcmpUnknownFlow => "icmp_unknown_flow",
    Rewrite => "rewrite_failed",
    NoBuffer => "no_buffer",
    NoSourceAddr => "no_source_addr",
    NeighHeldFull => "neigh_held_full",
    ExceptionSyn => "exception_syn",
    ExceptionSynRetry => "exception_syn_retry",
    ExceptionTcp => "exception_tcp",
    ExceptionOther => "exception_other",
}

impl PathDrop {
    /// The drop of a frame for the kernel that its class's budget refused.
    fn over_budget(c: Class) -> PathDrop {
        match c {
            Class::Syn => PathDrop::ExceptionSyn,
            Class::SynRetry => PathDrop::ExceptionSynRetry,
            Class::Tcp => PathDrop::ExceptionTcp,
            // Neighbor answers and peers are never refused.
            Class::Other | Class::Neigh | Class::Peer => PathDrop::ExceptionOther,
        }
    }
}

/// Packet-path counters of one worker (single writer, lock-free readers).
#[derive(Default, Debug)]
pub struct PathCounters {
    pub rx: Cell,
    pub tx: Cell,
    pub kernel: Cell,
    pub handoff_out: Cell,
    pub handoff_in: Cell,
    pub arp_replies: Cell,
    pub nd_adverts: Cell,
    pub echo_replies: Cell,
    pub solicits: Cell,
    pub icmp_errors_sent: Cell,
    /// Gratuitous ARPs and unsolicited neighbor advertisements for the VIPs.
    pub announces: Cell,
    /// Copies of neighbor answers (ARP replies and neighbor advertisements to the appliance)
    /// handed to the other workers, so the one that asked learns them too.
    pub neigh_shared: Cell,
    /// Fragments held until their datagram's first fragment arrived (or the hold timed out).
    pub frags_held: Cell,
    /// Frames waiting for a next hop's ARP/ND answer now (a gauge, both families).
    pub neigh_held: Cell,
    /// Frames passed to the kernel, by [`Class`] (they add up to `kernel`).
    pub exception: [Cell; Class::COUNT],
    pub drops: [Cell; PathDrop::COUNT],
}

impl PathCounters {
    pub fn drops_of(&self, r: PathDrop) -> u64 {
        self.drops[r as usize].get()
    }

    pub fn passed_of(&self, c: Class) -> u64 {
        self.exception[c as usize].get()
    }
}

/// A port as the packet path knows it.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub name: String,
    pub mac: [u8; 6],
    pub addrs4: Vec<(V4, u8)>,
    pub addrs6: Vec<(V6, u8)>,
    pub mtu: u16,
    /// Checksums the port's NIC fills at transmit.
    pub tx_offload: TxOffloads,
}

/// Checksums a port's NIC fills at transmit (those `rvsd run` found its PMD offers; none
/// for `rvsd replay` and tests). Used where the path would otherwise sum whole headers or
/// payloads: a tunnel's outer IPv4 header and its GUE UDP checksum. Incremental updates
/// (TTL, NAT) stay in software: they cost less than the offload's pseudo-header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOffloads {
    pub ipv4: bool,
    pub udp: bool,
}

/// The appliance's L2/L3 presence: ports, routes, static neighbors. Immutable, shared.
pub struct Presence {
    pub ports: Vec<PortInfo>,
    pub routes4: RouteTable<V4>,
    pub routes6: RouteTable<V6>,
    pub static4: Vec<(V4, [u8; 6], u16)>,
    pub static6: Vec<(V6, [u8; 6], u16)>,
    /// The RSS key the ports hash with, which steering shares ([`rss::KEY`] unless set).
    pub rss_key: Arc<rss::Key>,
    /// The exception path's budget and peers (the defaults unless set).
    pub exception: ExceptionConfig,
}

impl Presence {
    /// Connected routes of every port's addresses plus `routes`.
    pub fn new(
        ports: Vec<PortInfo>,
        routes4: &[(V4, u8, Route<V4>)],
        routes6: &[(V6, u8, Route<V6>)],
        static4: Vec<(V4, [u8; 6], u16)>,
        static6: Vec<(V6, [u8; 6], u16)>,
    ) -> Result<Self, String> {
        let mut r4: Vec<(V4, u8, Route<V4>)> = routes4.to_vec();
        let mut r6: Vec<(V6, u8, Route<V6>)> = routes6.to_vec();
        for (i, p) in ports.iter().enumerate() {
            for &(a, len) in &p.addrs4 {
                let net = a.mask(len);
                if !r4.iter().any(|r| r.0 == net && r.1 == len) {
                    r4.push((
                        net,
                        len,
                        Route {
                            port: i as u16,
                            via: None,
                        },
                    ));
                }
            }
            for &(a, len) in &p.addrs6 {
                let net = a.mask(len);
                if !r6.iter().any(|r| r.0 == net && r.1 == len) {
                    r6.push((
                        net,
                        len,
                        Route {
                            port: i as u16,
                            via: None,
                        },
                    ));
                }
            }
        }
        Ok(Presence {
            routes4: RouteTable::build(&r4).map_err(|e| e.to_string())?,
            routes6: RouteTable::build(&r6).map_err(|e| e.to_string())?,
            ports,
            static4,
            static6,
            rss_key: Arc::new(rss::Key::fixed()),
            exception: ExceptionConfig::default(),
        })
    }

    /// The same presence with the ports' RSS key `key` (what `rvsd run` programs).
    pub fn with_rss_key(mut self, key: rss::Key) -> Self {
        self.rss_key = Arc::new(key);
        self
    }

    /// The same presence with the exception path's budget and peers `cfg`.
    pub fn with_exception(mut self, cfg: ExceptionConfig) -> Self {
        self.exception = cfg;
        self
    }
}

/// Per-family parts of a worker, so one generic path serves v4 and v6.
pub struct Fam<A: Family, B> {
    pub shard: Shard<A>,
    steer: Steering,
    neigh: NeighTable<A, (u16, B)>,
    /// Addresses the appliance answers ARP/ND and echo for as a VIP.
    vips: VipSet<A>,
    frags: FragTable<A>,
    /// Fragments that came before their first, with their rx port.
    early: FragHold<A, (u16, B)>,
    /// Direct-mapped memo of route lookups (address -> its route), valid for as long as the
    /// worker's presence, which never changes after [`Worker::new`].
    routes: Box<[RouteMemo<A>]>,
}

/// Slots of a family's route memo (a power of two).
const ROUTE_MEMO: usize = 256;

/// A route memo slot: an address and its lookup's answer.
type RouteMemo<A> = Option<(A, Option<Route<A>>)>;

impl<A: Family, B> Fam<A, B> {
    /// The route of `dst`, from the memo or the table.
    #[inline(always)]
    fn route(&mut self, table: &RouteTable<A>, dst: A) -> Option<Route<A>> {
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
    fn egress(&mut self, table: &RouteTable<A>, x: &Xmit<A>) -> Option<(u16, A)> {
        let to = if x.reply { x.caddr } else { x.daddr };
        let r = self.route(table, to)?;
        let nh = match (x.reply, x.fwd) {
            (false, Fwd::Droute) => to,
            _ => r.via.unwrap_or(to),
        };
        Some((r.port, nh))
    }
}

impl<A: Family, B> Fam<A, B> {
    fn new(
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
            // Each family may use the worker's whole hold (`Worker::hold_early` caps the sum).
            early: FragHold::new(FRAG_HOLD_MAX, FRAG_HOLD_PER_DATAGRAM, FRAG_HOLD_MS),
            routes: vec![None; ROUTE_MEMO].into_boxed_slice(),
        }
    }
}

fn vips_of<A: Family>(cfg: &Config<A>) -> VipSet<A> {
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
    VipSet::new(v)
}

/// The addresses a worker answers for as VIPs (probed for every frame): a few are scanned in
/// place, which beats hashing; beyond [`VipSet::FEW`] a hash set answers.
struct VipSet<A> {
    /// Sorted, without repeats (also the announcement order).
    sorted: Vec<A>,
    many: Option<FastSet<A>>,
}

impl<A: Family> VipSet<A> {
    const FEW: usize = 16;

    fn new(mut v: Vec<A>) -> Self {
        v.sort_unstable();
        v.dedup();
        let many = (v.len() > Self::FEW).then(|| v.iter().copied().collect());
        VipSet { sorted: v, many }
    }

    #[inline]
    fn contains(&self, a: &A) -> bool {
        match &self.many {
            None => self.sorted.iter().any(|x| x == a),
            Some(set) => set.contains(a),
        }
    }
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

pub struct Worker<B> {
    pub id: u32,
    pub f4: Fam<V4, B>,
    pub f6: Fam<V6, B>,
    /// Taken out for the duration of a call (a move, not a refcount change), so the path can
    /// read it while it mutates the rest of the worker.
    pres: Option<Arc<Presence>>,
    counters: Arc<PathCounters>,
    alloc: Box<dyn FnMut() -> Option<B> + Send>,
    ident: u16,
    /// Workers of the appliance (neighbor answers are shared with the others).
    workers: u32,
    /// This worker's meter of the frames it hands to the kernel.
    meter: Meter,
}

impl<B: Buf> Worker<B> {
    /// Worker `id` of `workers`, with its shards sized by `params` (the seed is mixed with
    /// the id) and `alloc` to get buffers for frames it builds itself.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u32,
        workers: u32,
        params: ShardParams,
        cfg4: Arc<Config<V4>>,
        cfg6: Arc<Config<V6>>,
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
        };
        for &(ip, mac, port) in &pres.static4 {
            let _ = w.f4.neigh.add_static(ip, mac, port);
        }
        for &(ip, mac, port) in &pres.static6 {
            let _ = w.f6.neigh.add_static(ip, mac, port);
        }
        w
    }

    pub fn counters(&self) -> Arc<PathCounters> {
        Arc::clone(&self.counters)
    }

    /// Fragments held now, waiting for their datagram's first.
    pub fn held_fragments(&self) -> usize {
        self.f4.early.len() + self.f6.early.len()
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
        let key = self.f4.steer.key();
        self.f4.steer = Steering::new(&cfg4, workers, Arc::clone(&key));
        self.f4.vips = vips_of(&cfg4);
        let old4 = self.f4.shard.set_config(cfg4, now);
        self.f6.steer = Steering::new(&cfg6, workers, key);
        self.f6.vips = vips_of(&cfg6);
        let old6 = self.f6.shard.set_config(cfg6, now);
        (old4, old6)
    }

    /// Run `f` with the presence borrowed beside `&mut self` (moved out of its slot and back:
    /// no reference-count traffic per packet). `None` only if called re-entrantly.
    #[inline]
    fn enter<R>(&mut self, f: impl FnOnce(&mut Self, &Presence) -> R) -> Option<R> {
        let pres = self.pres.take()?;
        let r = f(self, &pres);
        self.pres = Some(pres);
        Some(r)
    }

    #[inline]
    fn drop(&self, r: PathDrop, buf: B, out: &mut impl FnMut(Out<B>)) {
        self.counters.drops[r as usize].inc();
        out(Out::Drop(buf));
    }

    /// A neighbor answer to the appliance arrives at one worker (ARP is not hashed to
    /// queues), but the worker that asked may be another: each other worker gets a copy
    /// through the hand-off rings and learns from it. Only answers addressed to the
    /// appliance are shared, so a flood of foreign ARP is not multiplied.
    #[cold]
    fn share_neigh(&mut self, port: u16, buf: &B, out: &mut impl FnMut(Out<B>)) {
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
            out(Out::Handoff {
                worker: w,
                port,
                buf: copy,
            });
        }
    }

    /// Punt a frame to the kernel interface of `port` (the exception path) if its class's
    /// budget lets it pass now, else drop it; counted either way (`exception`, `drops`).
    /// Out of line: forwarding never comes here.
    #[cold]
    #[inline(never)]
    fn punt(&mut self, port: u16, buf: B, seen: Seen<'_>, now: u64, out: &mut impl FnMut(Out<B>)) {
        let (class, pass) = self.meter.admit(port, seen, now);
        if !pass {
            return self.drop(PathDrop::over_budget(class), buf, out);
        }
        self.counters.exception[class as usize].inc();
        self.counters.kernel.inc();
        out(Out::Kernel { port, buf });
    }

    /// [`Worker::punt`] for a frame the fast path summarised without parsing it.
    #[cold]
    fn punt_unparsed(&mut self, port: u16, buf: B, now: u64, out: &mut impl FnMut(Out<B>)) {
        match wire::parse_frame(buf.data()) {
            Ok(pf) => self.punt(port, buf, Seen::Frame(&pf), now, out),
            Err(_) => self.drop(PathDrop::Malformed, buf, out),
        }
    }

    /// The gauge of frames waiting for a neighbor (set where the count changes: holding,
    /// releasing, failing; never on the forwarding path).
    #[cold]
    fn note_held(&self) {
        let n = self.f4.neigh.held() + self.f6.neigh.held();
        self.counters.neigh_held.set(n as u64);
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
        if !dead.is_empty() {
            self.note_held();
        }
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

    /// Gratuitous ARP (and unsolicited NA) for every VIP on the ports whose connected prefix
    /// holds it, so switches and routers learn the appliance at start and on config change.
    pub fn announce(&mut self, out: &mut impl FnMut(Out<B>)) {
        let Some(pres) = self.pres.clone() else {
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
                    if local::arp(&mut b, 1, [0xff; 6], p.mac, ip, [0; 6], ip) {
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
                    let all_nodes: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                    let t = ip6(vip);
                    if local::ndp(
                        &mut b,
                        true,
                        [0x33, 0x33, 0, 0, 0, 1],
                        p.mac,
                        t,
                        all_nodes,
                        t,
                        0x20,
                    ) {
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

    /// A frame received on `port`.
    pub fn rx(&mut self, port: u16, buf: B, now: u64, out: &mut impl FnMut(Out<B>)) {
        self.counters.rx.inc();
        self.enter(|w, pres| w.input(pres, port, buf, now, false, out));
    }

    /// A burst of frames received on `port` (at most [`BURST`]; more are processed without
    /// the warm-up): the conn lookups of the whole burst are prefetched first, so the burst
    /// pays its memory latency once, then each frame goes through [`Self::rx`].
    pub fn rx_burst(
        &mut self,
        port: u16,
        bufs: &mut [Option<B>],
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        for chunk in bufs.chunks_mut(BURST) {
            self.enter(|w, pres| w.burst(pres, port, chunk, now, out));
        }
    }

    /// A burst in three stages, [`STAGE`] frames apart, so that a frame's two dependent
    /// memory reads (its conn's index bucket, then the entry it names) are in flight while
    /// the frames before it are processed: (1) classify and prefetch the bucket, (2) prefetch
    /// the entry, (3) process. Frames leave in arrival order.
    fn burst(
        &mut self,
        pres: &Presence,
        port: u16,
        bufs: &mut [Option<B>],
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        let n = bufs.len().min(BURST);
        // The headers the classifier reads first (a NIC's DMA may have left them in memory).
        for b in bufs.iter().flatten() {
            crate::mem::prefetch_read(b.data());
        }
        // Stage 1's decisions by field: an array of enums would pack and unpack the fast
        // summary at every stage.
        let mut kind = [Plan::Empty; BURST];
        let mut hash = [0u64; BURST];
        let mut fast = [wire::fast::Fast4::default(); BURST];
        let mut hint = [NO_HINT; BURST];
        let mac = pres.ports.get(usize::from(port)).map(|p| p.mac);
        for i in 0..n + 2 * STAGE {
            if let Some(b) = bufs.get(i).and_then(Option::as_ref) {
                let (k, h) = self.plan(b.data(), mac, &mut fast[i]);
                (kind[i], hash[i]) = (k, h);
                match k.family() {
                    Some(false) => self.f4.shard.table().prefetch_bucket(h),
                    Some(true) => self.f6.shard.table().prefetch_bucket(h),
                    None => {}
                }
            }
            if let Some(j) = i.checked_sub(STAGE).filter(|&j| j < n) {
                hint[j] = match kind[j].family() {
                    Some(false) => self.f4.shard.table().prefetch_entry(hash[j]),
                    Some(true) => self.f6.shard.table().prefetch_entry(hash[j]),
                    None => NO_HINT,
                };
            }
            let Some(k) = i.checked_sub(2 * STAGE).filter(|&k| k < n) else {
                continue;
            };
            let Some(b) = bufs[k].take() else {
                continue;
            };
            self.counters.rx.inc();
            // The staged lookup keyed a frame to a VIP as inbound, others as replies.
            match kind[k] {
                Plan::FastIn => self.lb_fast(pres, port, b, &fast[k], (hint[k], NO_HINT), now, out),
                Plan::FastReply => {
                    self.lb_fast(pres, port, b, &fast[k], (NO_HINT, hint[k]), now, out)
                }
                _ => self.input(pres, port, b, now, false, out),
            }
        }
    }

    /// Stage 1 for one frame: the fast path's summary of it (into `fast`), or the general
    /// path; with the index hash of its conn when its flow can be read
    /// ([`Worker::staged_key`]).
    #[inline]
    fn plan(&self, f: &[u8], mac: Option<[u8; 6]>, fast: &mut wire::fast::Fast4) -> (Plan, u64) {
        if let Some(ff) = wire::fast::classify4(f).filter(|_| mac.is_some_and(|m| f[..6] == m)) {
            *fast = ff;
            let (hash, to_vip) = self.staged_key(ConnKey {
                proto: ff.proto,
                caddr: V4(ff.saddr),
                cport: ff.sport,
                addr: V4(ff.daddr),
                port: ff.dport,
                template: false,
            });
            return (
                if to_vip {
                    Plan::FastIn
                } else {
                    Plan::FastReply
                },
                hash,
            );
        }
        match flow_hint(f) {
            Some(Hint::V4(k)) => (Plan::General4, self.staged_key(k).0),
            Some(Hint::V6(k)) => (Plan::General6, self.staged_key(k).0),
            None => (Plan::General, 0),
        }
    }

    /// The index hash a frame's conn is looked up by, and whether it goes to a VIP: a frame to
    /// a VIP is keyed by its client as sent, anything else as a reply (client = destination).
    #[inline(always)]
    fn staged_key<A: Af>(&self, k: ConnKey<A>) -> (u64, bool) {
        let fam = A::fam_ref(self);
        let to_vip = fam.vips.contains(&k.addr);
        let k = if to_vip { k } else { reply_key(k) };
        (fam.shard.table().hash_of(&k), to_vip)
    }

    /// A frame another worker handed over (it belongs to this worker's shard).
    pub fn rx_handoff(&mut self, port: u16, buf: B, now: u64, out: &mut impl FnMut(Out<B>)) {
        self.counters.handoff_in.inc();
        self.enter(|w, pres| w.input(pres, port, buf, now, true, out));
    }

    #[allow(clippy::too_many_arguments)]
    fn input(
        &mut self,
        pres: &Presence,
        port: u16,
        buf: B,
        now: u64,
        handed: bool,
        out: &mut impl FnMut(Out<B>),
    ) {
        let pf = match wire::parse_frame(buf.data()) {
            Ok(pf) => pf,
            Err(wire::Error::Truncated) => return self.drop(PathDrop::Truncated, buf, out),
            Err(wire::Error::Malformed(_)) => return self.drop(PathDrop::Malformed, buf, out),
        };
        let Some(me) = pres.ports.get(port as usize) else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        let dst = pf.dst_mac.octets();
        if dst != me.mac && !pf.dst_mac.is_multicast() {
            return self.drop(PathDrop::NotForUs, buf, out);
        }
        match pf.ethertype {
            EtherType::ARP => self.arp(pres, port, buf, &pf, now, handed, out),
            EtherType::IPV4 => self.ip::<V4>(pres, port, buf, &pf, now, handed, out),
            EtherType::IPV6 => self.ip::<V6>(pres, port, buf, &pf, now, handed, out),
            _ => self.punt(port, buf, Seen::Frame(&pf), now, out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    fn arp(
        &mut self,
        pres: &Presence,
        port: u16,
        mut buf: B,
        pf: &ParsedFrame,
        now: u64,
        handed: bool,
        out: &mut impl FnMut(Out<B>),
    ) {
        let Ok(a) = wire::arp::Packet::new_checked(&buf.data()[pf.l3_offset..]) else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        let (op, sha, spa, tpa) = (a.operation(), a.sha().octets(), a.spa(), a.tpa());
        let me = &pres.ports[port as usize];
        let tpa_v = V4(u32::from(tpa));
        let ours = me.addrs4.iter().any(|&(x, _)| x == tpa_v) || self.f4.vips.contains(&tpa_v);
        let spa_v = V4(u32::from(spa));
        let mut ready = Vec::new();
        self.f4
            .neigh
            .learn(spa_v, sha, port, now, &mut |p, mac| ready.push((p, mac)));
        if !ready.is_empty() {
            self.note_held();
        }
        for ((p, b), mac) in ready {
            self.send_resolved(pres, p, b, mac, out);
        }
        if handed {
            // Another worker's copy of a reply to us (see `share_neigh`): learned above.
            return out(Out::Drop(buf));
        }
        if !ours {
            return self.drop(PathDrop::ArpNotOurs, buf, out);
        }
        if op == wire::arp::Operation::REPLY {
            // A reply to us answers a request of some worker or of the kernel (its interface
            // asks for its own peers, and never sees the requests rvs answers for it): the
            // other workers learn it from a copy, and the kernel gets the frame itself.
            self.share_neigh(port, &buf, out);
            return self.punt(port, buf, Seen::Neigh, now, out);
        }
        if op == wire::arp::Operation::REQUEST {
            let mac = me.mac;
            let tags = vlan_tags(buf.data(), pf);
            if local::arp(&mut buf, 2, sha, mac, tpa, sha, spa) && retag(&mut buf, &tags) {
                self.counters.arp_replies.inc();
                self.counters.tx.inc();
                out(Out::Tx { port, buf });
                return;
            }
            return self.drop(PathDrop::NoBuffer, buf, out);
        }
        // Neither a request nor a reply: learned above; nothing to send.
        out(Out::Drop(buf));
    }

    #[allow(clippy::too_many_arguments)]
    fn ip<A: Af>(
        &mut self,
        pres: &Presence,
        port: u16,
        mut buf: B,
        pf: &ParsedFrame,
        now: u64,
        handed: bool,
        out: &mut impl FnMut(Out<B>),
    ) {
        let Some(ip) = pf.ip else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        let (Some(src), Some(dst)) = (A::from_ip(ip.src), A::from_ip(ip.dst)) else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        // Strip Ethernet padding: the frame ends where the IP packet does.
        buf.trim(pf.l3_offset + ip.ip_len);
        let local = pres
            .ports
            .iter()
            .any(|p| A::port_addrs(p).iter().any(|&(a, _)| a == dst));
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
                        out(Out::Tx { port, buf });
                    } else {
                        self.drop(PathDrop::Malformed, buf, out);
                    }
                    return;
                }
                if A::V6 && (s.msg_type == 135 || s.msg_type == 136) {
                    return self.ndp(pres, port, buf, pf, (ip.l4_offset, handed, local), now, out);
                }
                if s.is_error {
                    let at = (now, handed, local);
                    return self.icmp_related::<A>(pres, port, buf, pf, s, at, out);
                }
                self.punt(port, buf, Seen::Frame(pf), now, out);
            }
            L4Summary::Tcp { .. } | L4Summary::Udp { .. } | L4Summary::Sctp { .. } if !local => {
                self.lb::<A>(pres, port, buf, pf, src, dst, now, handed, out)
            }
            L4Summary::NonFirstFragment if !local => {
                self.fragment::<A>(pres, port, buf, pf, src, dst, vip, now, handed, out)
            }
            _ => self.punt(port, buf, Seen::Frame(pf), now, out),
        }
    }

    /// `(l4 offset, handed by another worker, addressed to a port address)`.
    #[allow(clippy::too_many_arguments)]
    fn ndp(
        &mut self,
        pres: &Presence,
        port: u16,
        mut buf: B,
        pf: &ParsedFrame,
        (l4, handed, to_us): (usize, bool, bool),
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        let f = buf.data();
        let Some(m) = f.get(l4..) else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        if m.len() < 24 {
            return self.drop(PathDrop::Malformed, buf, out);
        }
        let Ok(target) = <[u8; 16]>::try_from(&m[8..24]) else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        let target = Ipv6Addr::from(target);
        let Some(IpAddr::V6(src)) = pf.ip.map(|i| i.src) else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        // Link-layer address option: source (1) in NS, target (2) in NA.
        let mut lla = None;
        let mut opts = &m[24..];
        while opts.len() >= 8 {
            let len = usize::from(opts[1]) * 8;
            if len == 0 || len > opts.len() {
                break;
            }
            if (opts[0] == 1 || opts[0] == 2) && len >= 8 {
                lla = <[u8; 6]>::try_from(&opts[2..8]).ok();
            }
            opts = &opts[len..];
        }
        let advert = m[0] == 136;
        let learn_ip = if advert { target } else { src };
        if let Some(mac) = lla {
            if !learn_ip.is_unspecified() {
                let mut ready = Vec::new();
                self.f6
                    .neigh
                    .learn(v6(learn_ip), mac, port, now, &mut |p, mac| {
                        ready.push((p, mac))
                    });
                if !ready.is_empty() {
                    self.note_held();
                }
                for ((p, b), mac) in ready {
                    self.send_resolved(pres, p, b, mac, out);
                }
            }
        }
        let me = &pres.ports[port as usize];
        if advert {
            if handed {
                // Another worker's copy (see `share_neigh`): learned above.
                return out(Out::Drop(buf));
            }
            // An advertisement to us answers a solicitation of some worker or of the kernel:
            // the other workers learn it from a copy, and the kernel gets the frame itself.
            // The kernel also solicits from its interface's link-local address (its probes of
            // a stale entry), and the answer to a unicast solicitation may carry no
            // link-layer address: the kernel gets those too.
            if to_us && lla.is_some() {
                self.share_neigh(port, &buf, out);
            }
            let to_kernel_ll = pf.dst_mac.octets() == me.mac
                && pf
                    .ip
                    .is_some_and(|i| matches!(i.dst, IpAddr::V6(d) if d.is_unicast_link_local()));
            if to_us || to_kernel_ll {
                return self.punt(port, buf, Seen::Neigh, now, out);
            }
            return out(Out::Drop(buf));
        }
        let t = v6(target);
        let ours = me.addrs6.iter().any(|&(a, _)| a == t) || self.f6.vips.contains(&t);
        if !ours {
            return self.drop(PathDrop::ArpNotOurs, buf, out);
        }
        let mac = me.mac;
        let (dst, eth_dst, flags) = if src.is_unspecified() {
            // DAD probe: answer to all-nodes, not solicited.
            (
                Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
                [0x33, 0x33, 0, 0, 0, 1],
                0x20,
            )
        } else {
            (src, pf.src_mac.octets(), 0x60)
        };
        let tags = vlan_tags(buf.data(), pf);
        if local::ndp(&mut buf, true, eth_dst, mac, target, dst, target, flags)
            && retag(&mut buf, &tags)
        {
            self.counters.nd_adverts.inc();
            self.counters.tx.inc();
            out(Out::Tx { port, buf });
        } else {
            self.drop(PathDrop::NoBuffer, buf, out);
        }
    }

    /// Load-balancer traffic: steer, engine, forward.
    #[allow(clippy::too_many_arguments)]
    fn lb<A: Af>(
        &mut self,
        pres: &Presence,
        port: u16,
        buf: B,
        pf: &ParsedFrame,
        src: A,
        dst: A,
        now: u64,
        handed: bool,
        out: &mut impl FnMut(Out<B>),
    ) {
        let Some(ip) = pf.ip else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        let Some((sport, dport)) = ip.l4.ports() else {
            return self.drop(PathDrop::Malformed, buf, out);
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
        let buf = if handed {
            buf
        } else {
            let Some(buf) = self.keep_or_hand_off::<A>(proto, src, dst, dport, port, buf, out)
            else {
                return;
            };
            buf
        };
        let v = A::fam(self).shard.process(&pkt, now);
        if let Some(fr) = ip.fragment {
            let key = FragKey {
                src,
                dst,
                proto,
                ident: fr.ident,
            };
            return self.first_fragment::<A>(pres, port, buf, pf, key, v, now, out);
        }
        match v {
            Verdict::Xmit(x) => self.forward::<A>(pres, port, buf, pf, &x, now, out),
            Verdict::Drop(_) => self.drop(PathDrop::Engine, buf, out),
            Verdict::NotOurs => self.punt(port, buf, Seen::Frame(pf), now, out),
        }
    }

    /// A datagram's first fragment: what the engine gave it is remembered for the datagram's
    /// other fragments, and those held before it follow it now, in arrival order (IPVS sees
    /// the datagram reassembled, whatever order its fragments came in).
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn first_fragment<A: Af>(
        &mut self,
        pres: &Presence,
        port: u16,
        buf: B,
        pf: &ParsedFrame,
        key: FragKey<A>,
        v: Verdict<A>,
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        let f = match v {
            Verdict::Xmit(x) => Follow::Xmit(x),
            Verdict::Drop(_) => Follow::Drop,
            Verdict::NotOurs => Follow::Kernel,
        };
        A::fam(self).frags.insert(key, f, now);
        match f {
            Follow::Xmit(x) => self.forward::<A>(pres, port, buf, pf, &x, now, out),
            Follow::Drop => self.drop(PathDrop::Engine, buf, out),
            Follow::Kernel => self.punt(port, buf, Seen::Frame(pf), now, out),
        }
        while let Some((p, b)) = A::fam(self).early.pop(&key) {
            match wire::parse_frame(b.data()) {
                Ok(pf) => self.follow::<A>(pres, p, b, &pf, f, now, out),
                // It parsed when it was held.
                Err(_) => self.drop(PathDrop::Malformed, b, out),
            }
        }
    }

    /// A later fragment goes where its datagram's first went.
    #[allow(clippy::too_many_arguments)]
    fn follow<A: Af>(
        &mut self,
        pres: &Presence,
        port: u16,
        buf: B,
        pf: &ParsedFrame,
        f: Follow<A>,
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        match f {
            Follow::Xmit(x) => self.forward::<A>(pres, port, buf, pf, &x, now, out),
            Follow::Drop => self.drop(PathDrop::FragFirstDropped, buf, out),
            Follow::Kernel => self.punt(port, buf, Seen::Frame(pf), now, out),
        }
    }

    /// A fragment before its first (of a protocol the engine balances): held until the first
    /// comes, within the worker's bounds ([`FragHold`]); refused, it is dropped and counted.
    #[cold]
    fn hold_early<A: Af>(
        &mut self,
        port: u16,
        buf: B,
        key: FragKey<A>,
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        if self.f4.early.len() + self.f6.early.len() >= FRAG_HOLD_MAX {
            return self.drop(PathDrop::FragHoldFull, buf, out);
        }
        match A::fam(self).early.hold(key, (port, buf), now) {
            Ok(()) => self.counters.frags_held.inc(),
            Err(((_, b), _)) => self.drop(PathDrop::FragHoldFull, b, out),
        }
    }

    /// Steering: the frame back when its flow is this worker's, else it leaves as a hand-off
    /// to the owner (counted) and `None`.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn keep_or_hand_off<A: Af>(
        &mut self,
        proto: u8,
        src: A,
        dst: A,
        dport: u16,
        port: u16,
        buf: B,
        out: &mut impl FnMut(Out<B>),
    ) -> Option<B> {
        let owner = owner_of(A::fam(self), proto, src, dst, dport);
        if owner == self.id {
            return Some(buf);
        }
        self.counters.handoff_out.inc();
        out(Out::Handoff {
            worker: owner,
            port,
            buf,
        });
        None
    }

    /// [`Worker::lb`] for a frame the fast classifier summarised (untagged IPv4 TCP/UDP to
    /// our MAC, no options, not a fragment): the same steps and verdicts, without building a
    /// [`ParsedFrame`]. A local destination takes the general path (to the kernel).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn lb_fast(
        &mut self,
        pres: &Presence,
        port: u16,
        mut buf: B,
        f: &wire::fast::Fast4,
        (hint_in, hint_out): (u32, u32),
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        let (src, dst) = (V4(f.saddr), V4(f.daddr));
        if pres
            .ports
            .iter()
            .any(|p| p.addrs4.iter().any(|&(a, _)| a == dst))
        {
            return self.input(pres, port, buf, now, false, out);
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
        let Some(buf) = self.keep_or_hand_off::<V4>(f.proto, src, dst, f.dport, port, buf, out)
        else {
            return;
        };
        match self.f4.shard.process_hinted(&pkt, now, hint_in, hint_out) {
            Verdict::Xmit(x) => self.forward_fast(pres, port, buf, f.proto, &x, now, out),
            Verdict::Drop(_) => self.drop(PathDrop::Engine, buf, out),
            Verdict::NotOurs => self.punt_unparsed(port, buf, now, out),
        }
    }

    /// [`Worker::forward`] for a fast-path frame (header offsets known): DR and NAT both
    /// ways in place; tunnels and TTL expiry go through the general code with the frame
    /// parsed, as they build new headers or an ICMP error.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn forward_fast(
        &mut self,
        pres: &Presence,
        in_port: u16,
        mut buf: B,
        proto: u8,
        x: &Xmit<V4>,
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        use wire::fast::Fast4;
        let tunnel = !x.reply && x.fwd == Fwd::Tunnel;
        if tunnel || !rewrite::dec_ttl(buf.data_mut(), Fast4::L3, false) {
            let Ok(pf) = wire::parse_frame(buf.data()) else {
                return self.drop(PathDrop::Malformed, buf, out);
            };
            return self.forward::<V4>(pres, in_port, buf, &pf, x, now, out);
        }
        let nat = match (x.reply, x.fwd) {
            (true, _) => Some((End::Src, x.vaddr, x.vport)),
            (false, Fwd::Masq) => Some((End::Dst, x.daddr, x.dport)),
            _ => None,
        };
        if let Some((end, addr, port)) = nat {
            let (l3, l4) = (Fast4::L3, Some(Fast4::L4));
            if !rewrite::nat4(buf.data_mut(), l3, l4, proto, end, addr.0, port) {
                return self.drop(PathDrop::Rewrite, buf, out);
            }
        }
        match self.f4.egress(&pres.routes4, x) {
            Some((p, nh)) => self.send::<V4>(pres, p, nh, buf, now, out),
            None => self.drop(PathDrop::NoRoute, buf, out),
        }
    }

    /// An ICMP error about a packet of a conn (IPVS's `ip_vs_in_icmp` / `ip_vs_out_icmp`):
    /// about a packet sent toward the client, it goes to the dest (NAT: outer destination and
    /// quoted source become the dest's); about a packet sent to a NAT dest, it goes to the
    /// client (outer source and quoted destination become the VIP's). Checksums of the quoted
    /// IP header and of the ICMP message are recomputed. Errors about no conn are the
    /// kernel's when `local` (addressed to a port address: about the kernel's own
    /// connections, which IPVS leaves to the local stack too), else counted and dropped.
    /// `(now, handed by another worker, local)`.
    #[allow(clippy::too_many_arguments)]
    fn icmp_related<A: Af>(
        &mut self,
        pres: &Presence,
        port: u16,
        mut buf: B,
        pf: &ParsedFrame,
        s: wire::IcmpSummary,
        (now, handed, local): (u64, bool, bool),
        out: &mut impl FnMut(Out<B>),
    ) {
        let Some(ip) = pf.ip else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        let Some(q) = s.quoted else {
            return self.icmp_unknown(port, buf, pf, now, local, out);
        };
        let (Some(qs), Some(qd), Some((qsp, qdp))) =
            (A::from_ip(q.src), A::from_ip(q.dst), q.ports)
        else {
            return self.icmp_unknown(port, buf, pf, now, local, out);
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
                    if !handed && fam.steer.workers() > 1 {
                        let to_client = Proto::from_u8(proto).is_some_and(|p| {
                            fam.shard.config().find_service(0, p, qs, qsp).is_some()
                        });
                        let owner = fam.steer.owner(if to_client { qd } else { qs });
                        if owner != id {
                            self.counters.handoff_out.inc();
                            return out(Out::Handoff {
                                worker: owner,
                                port,
                                buf,
                            });
                        }
                    }
                    return self.icmp_unknown(port, buf, pf, now, local, out);
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
            return self.drop(PathDrop::Rewrite, buf, out);
        }
        if !rewrite::dec_ttl(buf.data_mut(), l3, A::V6) {
            return self.drop(PathDrop::TtlExceeded, buf, out);
        }
        // No MTU check: an ICMP error is never answered with another.
        self.deliver::<A>(pres, port, buf, pf, &x, now, false, out)
    }

    /// An ICMP error about no conn: to the kernel when addressed to a port address, else
    /// dropped (`icmp_unknown_flow`).
    #[cold]
    fn icmp_unknown(
        &mut self,
        port: u16,
        buf: B,
        pf: &ParsedFrame,
        now: u64,
        local: bool,
        out: &mut impl FnMut(Out<B>),
    ) {
        if local {
            return self.punt(port, buf, Seen::Frame(pf), now, out);
        }
        self.drop(PathDrop::IcmpUnknownFlow, buf, out)
    }

    /// A fragment other than the first: forwarded as its datagram's first fragment was.
    #[allow(clippy::too_many_arguments)]
    fn fragment<A: Af>(
        &mut self,
        pres: &Presence,
        port: u16,
        buf: B,
        pf: &ParsedFrame,
        src: A,
        dst: A,
        to_vip: bool,
        now: u64,
        handed: bool,
        out: &mut impl FnMut(Out<B>),
    ) {
        let (Some(ip), id) = (pf.ip, self.id) else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        let Some(fr) = ip.fragment else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        let fam = A::fam(self);
        if !handed && fam.steer.workers() > 1 {
            let owner = fam.steer.owner(if to_vip { src } else { dst });
            if owner != id {
                self.counters.handoff_out.inc();
                return out(Out::Handoff {
                    worker: owner,
                    port,
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
        match fam.frags.get(&key, now) {
            Some(f) => self.follow::<A>(pres, port, buf, pf, f, now, out),
            // Only a first fragment of these goes to the engine: others have none to wait for.
            None if Proto::from_u8(key.proto).is_some() => {
                self.hold_early::<A>(port, buf, key, now, out)
            }
            None => self.drop(PathDrop::FragUnknown, buf, out),
        }
    }

    /// Rewrite as the conn's forwarding method says and send toward the next hop.
    #[allow(clippy::too_many_arguments)]
    fn forward<A: Af>(
        &mut self,
        pres: &Presence,
        in_port: u16,
        mut buf: B,
        pf: &ParsedFrame,
        x: &Xmit<A>,
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        let Some(ip) = pf.ip else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        let l3 = pf.l3_offset;
        // A non-first fragment has no transport header: addresses only.
        let l4 = (ip.l4 != L4Summary::NonFirstFragment).then_some(ip.l4_offset);
        let proto = ip.protocol.0;
        if !rewrite::dec_ttl(buf.data_mut(), l3, A::V6) {
            let kind = IcmpKind::TtlExceeded;
            return self.icmp_error::<A>(pres, in_port, buf, pf, kind, !x.reply, out);
        }
        let (end, addr, port) = match (x.reply, x.fwd) {
            // NAT reply: the source becomes the VIP.
            (true, _) => (End::Src, x.vaddr, x.vport),
            (false, Fwd::Masq) => (End::Dst, x.daddr, x.dport),
            _ => return self.deliver::<A>(pres, in_port, buf, pf, x, now, true, out),
        };
        if !nat::<A>(buf.data_mut(), l3, l4, proto, end, addr, port) {
            return self.drop(PathDrop::Rewrite, buf, out);
        }
        self.deliver::<A>(pres, in_port, buf, pf, x, now, true, out)
    }

    /// Route a rewritten frame as its conn says and send it: replies toward the client; DR to
    /// the dest's own MAC on its route's port (IPVS's KNOWN_NH); NAT to the dest's next hop;
    /// TUN encapsulated from the egress port's address (with `check_mtu`, a DF packet that
    /// would not fit gets the client fragmentation needed / packet too big instead).
    #[allow(clippy::too_many_arguments)]
    fn deliver<A: Af>(
        &mut self,
        pres: &Presence,
        in_port: u16,
        mut buf: B,
        pf: &ParsedFrame,
        x: &Xmit<A>,
        now: u64,
        check_mtu: bool,
        out: &mut impl FnMut(Out<B>),
    ) {
        let Some((p, nh)) = A::fam(self).egress(A::routes(pres), x) else {
            return self.drop(PathDrop::NoRoute, buf, out);
        };
        if x.reply || x.fwd != Fwd::Tunnel {
            return self.send::<A>(pres, p, nh, buf, now, out);
        }
        let (Some(ip), Some(pi)) = (pf.ip, pres.ports.get(p as usize)) else {
            return self.drop(PathDrop::Malformed, buf, out);
        };
        let Some(&(outer_src, _)) = A::port_addrs(pi).first() else {
            return self.drop(PathDrop::NoSourceAddr, buf, out);
        };
        let mtu = if check_mtu { pi.mtu } else { u16::MAX };
        self.ident = self.ident.wrapping_add(1);
        match encap::<A, B>(
            &mut buf,
            pf.l3_offset,
            ip.ip_len,
            outer_src,
            x.daddr,
            x.tun,
            mtu,
            self.ident,
            pi.tx_offload,
        ) {
            Ok(()) => self.send::<A>(pres, p, nh, buf, now, out),
            // Only packets to a service are encapsulated.
            Err(EncapError::TooBig(mtu)) => {
                self.icmp_error::<A>(pres, in_port, buf, pf, IcmpKind::TooBig(mtu), true, out)
            }
            Err(EncapError::NoHeadroom) => self.drop(PathDrop::NoHeadroom, buf, out),
        }
    }

    /// Resolve the next hop's MAC and transmit (or hold until resolved).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn send<A: Af>(
        &mut self,
        pres: &Presence,
        port: u16,
        nh: A,
        buf: B,
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        if let Some(mac) = A::fam(self).neigh.ready(nh, port, now) {
            return self.send_resolved(pres, port, buf, mac, out);
        }
        self.send_unresolved(pres, port, nh, buf, now, out)
    }

    /// [`Worker::send`] when the neighbor is not ready: hold, solicit or drop.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn send_unresolved<A: Af>(
        &mut self,
        pres: &Presence,
        port: u16,
        nh: A,
        buf: B,
        now: u64,
        out: &mut impl FnMut(Out<B>),
    ) {
        match A::fam(self).neigh.resolve(nh, port, (port, buf), now) {
            Resolve::Ready(mac, (p, b)) => self.send_resolved(pres, p, b, mac, out),
            Resolve::Held { solicit } => {
                self.note_held();
                if solicit {
                    self.solicit::<A>(pres, nh, port, out);
                }
            }
            Resolve::Dropped((_, b), why) => {
                let r = match why {
                    crate::l3::NeighDrop::QueueFull => PathDrop::NeighQueueFull,
                    crate::l3::NeighDrop::TableFull => PathDrop::NeighTableFull,
                    crate::l3::NeighDrop::HeldFull => PathDrop::NeighHeldFull,
                };
                self.drop(r, b, out)
            }
        }
    }

    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn send_resolved(
        &mut self,
        pres: &Presence,
        port: u16,
        mut buf: B,
        mac: [u8; 6],
        out: &mut impl FnMut(Out<B>),
    ) {
        let src = pres.ports.get(port as usize).map_or([0; 6], |p| p.mac);
        if !rewrite::set_macs(buf.data_mut(), mac, src) {
            return self.drop(PathDrop::Malformed, buf, out);
        }
        self.counters.tx.inc();
        out(Out::Tx { port, buf });
    }

    /// An ARP request or neighbor solicitation for `ip` on `port`.
    fn solicit<A: Af>(&mut self, pres: &Presence, ip: A, port: u16, out: &mut impl FnMut(Out<B>)) {
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
            (IpAddr::V4(t), IpAddr::V4(s)) => local::arp(&mut b, 1, [0xff; 6], p.mac, s, [0; 6], t),
            (IpAddr::V6(t), IpAddr::V6(s)) => {
                let (dst, mac) = local::solicited_node(t);
                local::ndp(&mut b, false, mac, p.mac, s, dst, t, 0)
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

    /// Send an ICMP error about `buf` back to its source, then drop `buf`. `to_service`: the
    /// packet was sent to a service (not a NAT reply), and the error comes from its
    /// destination, the VIP: IPVS's `decrement_ttl` and MTU check run while the packet still
    /// holds its local input route, and the kernel's ICMP then takes the packet's destination
    /// as source (so a traceroute to the VIP ends at the VIP). Anything else was routed
    /// through (`ip_forward`), and the error comes from the port's address toward the sender.
    #[allow(clippy::too_many_arguments)]
    fn icmp_error<A: Af>(
        &mut self,
        pres: &Presence,
        port: u16,
        buf: B,
        pf: &ParsedFrame,
        kind: IcmpKind,
        to_service: bool,
        out: &mut impl FnMut(Out<B>),
    ) {
        let reason = match kind {
            IcmpKind::TtlExceeded => PathDrop::TtlExceeded,
            IcmpKind::TooBig(_) => PathDrop::FragNeeded,
        };
        let (Some(ip), Some(p)) = (pf.ip, pres.ports.get(port as usize)) else {
            return self.drop(reason, buf, out);
        };
        // One error per datagram, about its first fragment: the kernel's `icmp_send` never
        // answers a later IPv4 fragment, and IPVS sees an IPv6 datagram reassembled (its own
        // packet-too-big goes on the first fragment only).
        if ip.l4 == L4Summary::NonFirstFragment {
            return self.drop(reason, buf, out);
        }
        let (Some(sender), Some(dst)) = (A::from_ip(ip.src), A::from_ip(ip.dst)) else {
            return self.drop(reason, buf, out);
        };
        let me = if to_service {
            dst
        } else {
            match port_source(p, sender) {
                Some(a) => a,
                None => return self.drop(reason, buf, out),
            }
        };
        let Some(mut b) = (self.alloc)() else {
            return self.drop(reason, buf, out);
        };
        let orig = buf.data().get(pf.l3_offset..).unwrap_or(&[]);
        let tags = vlan_tags(buf.data(), pf);
        let ok = match (me.to_ip(), ip.src) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let (t, c, rest) = match kind {
                    IcmpKind::TtlExceeded => (11, 0, 0),
                    IcmpKind::TooBig(mtu) => (3, 4, u32::from(mtu)),
                };
                local::icmp4_error(&mut b, pf.src_mac.octets(), p.mac, s, d, t, c, rest, orig)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let (t, rest) = match kind {
                    IcmpKind::TtlExceeded => (3, 0),
                    IcmpKind::TooBig(mtu) => (2, u32::from(mtu)),
                };
                local::icmp6_error(&mut b, pf.src_mac.octets(), p.mac, s, d, t, 0, rest, orig)
            }
            _ => false,
        } && retag(&mut b, &tags);
        if ok {
            self.counters.icmp_errors_sent.inc();
            self.counters.tx.inc();
            out(Out::Tx { port, buf: b });
        } else {
            out(Out::Drop(b));
        }
        self.drop(reason, buf, out)
    }
}

#[derive(Clone, Copy, Debug)]
enum IcmpKind {
    TtlExceeded,
    /// Fragmentation needed / packet too big, with the MTU to report.
    TooBig(u16),
}

/// How many frames apart the stages of [`Worker::burst`] run: enough for a bucket to arrive
/// from memory while that many frames are processed, few enough that a short burst still
/// overlaps its misses.
const STAGE: usize = 16;

/// Stage 1's decision for a frame of a burst.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plan {
    Empty,
    /// The fast path, keyed inbound (to a VIP).
    FastIn,
    /// The fast path, keyed as a reply (the client is the destination).
    FastReply,
    /// The general path, with the index hash of an IPv4 / IPv6 flow.
    General4,
    General6,
    /// The general path, no flow read.
    General,
}

impl Plan {
    /// Whether the frame's conn lookup is IPv6, if it has one.
    #[inline]
    fn family(self) -> Option<bool> {
        match self {
            Plan::FastIn | Plan::FastReply | Plan::General4 => Some(false),
            Plan::General6 => Some(true),
            Plan::Empty | Plan::General => None,
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

/// The lookup key of a reply: its client is the destination (the index hashes the client).
#[inline]
fn reply_key<A: Family>(k: ConnKey<A>) -> ConnKey<A> {
    ConnKey {
        proto: k.proto,
        caddr: k.addr,
        cport: k.port,
        addr: k.caddr,
        port: k.cport,
        template: false,
    }
}

enum Hint {
    V4(ConnKey<V4>),
    V6(ConnKey<V6>),
}

/// The inbound lookup key of an untagged, unfragmented TCP/UDP/SCTP frame, read at fixed
/// offsets for the prefetch pass only (anything else simply is not prefetched).
#[inline]
fn flow_hint(f: &[u8]) -> Option<Hint> {
    let be16 = |at: usize| Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]));
    let ports = |l4: usize, proto: u8| -> Option<(u16, u16)> {
        matches!(proto, 6 | 17 | 132).then_some(())?;
        Some((be16(l4)?, be16(l4 + 2)?))
    };
    match be16(12)? {
        0x0800 => {
            let ihl = usize::from(*f.get(14)? & 0x0f) * 4;
            if be16(20)? & 0x3fff != 0 {
                return None;
            }
            let proto = *f.get(23)?;
            let (sp, dp) = ports(14 + ihl, proto)?;
            let a = |at: usize| Some(V4(u32::from_be_bytes(f.get(at..at + 4)?.try_into().ok()?)));
            Some(Hint::V4(ConnKey {
                proto,
                caddr: a(26)?,
                cport: sp,
                addr: a(30)?,
                port: dp,
                template: false,
            }))
        }
        0x86dd => {
            let proto = *f.get(20)?;
            let (sp, dp) = ports(54, proto)?;
            let a = |at: usize| {
                Some(v6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(f.get(at..at + 16)?).ok()?,
                )))
            };
            Some(Hint::V6(ConnKey {
                proto,
                caddr: a(22)?,
                cport: sp,
                addr: a(38)?,
                port: dp,
                template: false,
            }))
        }
        _ => None,
    }
}

/// The port's address that a frame the appliance sends to `to` comes from: the one on `to`'s
/// prefix, else the port's first of the family (the kernel's choice by route, for a peer on
/// the port's segment or behind its gateway).
fn port_source<A: Af>(p: &PortInfo, to: A) -> Option<A> {
    let addrs = A::port_addrs(p);
    addrs
        .iter()
        .find(|&&(a, l)| a.mask(l) == to.mask(l))
        .or(addrs.first())
        .map(|&(a, _)| a)
}

/// The VLAN tag bytes of a received frame (at most two tags), to answer on the same VLAN.
fn vlan_tags(frame: &[u8], pf: &ParsedFrame) -> ([u8; 8], usize) {
    let n = usize::from(pf.vlan.count) * 4;
    let mut t = [0u8; 8];
    if let Some(src) = frame.get(12..12 + n) {
        t[..n].copy_from_slice(src);
        (t, n)
    } else {
        (t, 0)
    }
}

/// Insert VLAN tags after the MAC addresses of a frame built untagged.
fn retag<B: Buf>(buf: &mut B, tags: &([u8; 8], usize)) -> bool {
    let n = tags.1;
    if n == 0 {
        return true;
    }
    if buf.prepend(n).is_none() {
        return false;
    }
    let f = buf.data_mut();
    f.copy_within(n..n + 12, 0);
    f[12..12 + n].copy_from_slice(&tags.0[..n]);
    true
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

fn v6(a: Ipv6Addr) -> V6 {
    V6::from_ip(IpAddr::V6(a)).unwrap_or_default()
}

fn ip6(a: V6) -> Ipv6Addr {
    match a.to_ip() {
        IpAddr::V6(x) => x,
        IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
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

#[derive(Debug, PartialEq, Eq)]
enum EncapError {
    /// The inner packet has DF (always, for IPv6) and the result would exceed the MTU: the
    /// client is told this MTU.
    TooBig(u16),
    NoHeadroom,
}

/// Encapsulate the IP packet at `l3` (length `ip_len`) for a tunnel to `dst`: IPIP (v4) or
/// IPv6-in-IPv6, GUE (outer UDP to the configured port + a 4-byte GUE header) or GRE, as
/// IPVS's `ip_vs_tunnel_xmit`. The L2 header is moved in front of the new outer header.
#[allow(clippy::too_many_arguments)]
fn encap<A: Af, B: Buf>(
    buf: &mut B,
    l3: usize,
    ip_len: usize,
    src: A,
    dst: A,
    tun: crate::config::TunConfig,
    mtu: u16,
    ident: u16,
    offload: TxOffloads,
) -> Result<(), EncapError> {
    let outer_ip = if A::V6 { 40 } else { 20 };
    let gre_csum = tun.kind == TunKind::Gre && tun.csum == TunCsum::Csum;
    let extra = match tun.kind {
        TunKind::Ipip => 0,
        TunKind::Gue => 8 + 4,
        TunKind::Gre => 4 + if gre_csum { 4 } else { 0 },
    };
    let hdr = outer_ip + extra;
    let inner = buf
        .data()
        .get(l3..l3 + ip_len)
        .ok_or(EncapError::NoHeadroom)?;
    let inner_df = if A::V6 {
        true
    } else {
        inner.get(6).is_some_and(|b| b & 0x40 != 0)
    };
    let (tos, ttl) = if A::V6 {
        let tc =
            (inner.first().copied().unwrap_or(0) << 4) | (inner.get(1).copied().unwrap_or(0) >> 4);
        (tc, inner.get(7).copied().unwrap_or(64))
    } else {
        (
            inner.get(1).copied().unwrap_or(0),
            inner.get(8).copied().unwrap_or(64),
        )
    };
    if ip_len + hdr > usize::from(mtu) && inner_df {
        return Err(EncapError::TooBig(mtu.saturating_sub(hdr as u16)));
    }
    let inner_proto: u8 = if A::V6 { 41 } else { 4 };
    let need_udp_csum = tun.kind == TunKind::Gue && (A::V6 || tun.csum == TunCsum::Csum);
    // The NIC fills what the port offers (asked only now that nothing can fail but a
    // missing headroom, which drops the frame).
    let want = TxCsum {
        l2_len: l3 as u16,
        l3_len: outer_ip as u16,
        v6: A::V6,
        ip: !A::V6 && offload.ipv4,
        udp: need_udp_csum && offload.udp,
    };
    let offloaded = (want.ip || want.udp) && buf.offload_tx_csum(want);
    buf.prepend(hdr).ok_or(EncapError::NoHeadroom)?;
    let f = buf.data_mut();
    // Move the L2 header to the new front.
    f.copy_within(hdr..hdr + l3, 0);
    let total = ip_len + hdr;
    let o = &mut f[l3..l3 + hdr];
    let outer_proto = match tun.kind {
        TunKind::Ipip => inner_proto,
        TunKind::Gue => 17,
        TunKind::Gre => 47,
    };
    match (src.to_ip(), dst.to_ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            o[0] = 0x45;
            o[1] = tos;
            o[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            o[4..6].copy_from_slice(&ident.to_be_bytes());
            o[6..8].copy_from_slice(&(if inner_df { 0x4000u16 } else { 0 }).to_be_bytes());
            o[8] = ttl;
            o[9] = outer_proto;
            o[10..12].fill(0);
            o[12..16].copy_from_slice(&s.octets());
            o[16..20].copy_from_slice(&d.octets());
            if !(offloaded && want.ip) {
                let c = wire::checksum::finish(wire::checksum::sum(&o[..20]));
                o[10..12].copy_from_slice(&c.to_be_bytes());
            }
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            o[0] = 0x60 | (tos >> 4);
            o[1] = tos << 4;
            o[2..4].fill(0);
            o[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
            o[6] = outer_proto;
            o[7] = ttl;
            o[8..24].copy_from_slice(&s.octets());
            o[24..40].copy_from_slice(&d.octets());
        }
        _ => return Err(EncapError::NoHeadroom),
    }
    let t = &mut o[outer_ip..];
    match tun.kind {
        TunKind::Ipip => {}
        TunKind::Gue => {
            // UDP: a source port from the flow for ECMP spread, the configured port, no checksum
            // (IPVS sends GUE without one unless --tun-csum; v6 requires one: computed below).
            let sport = 0xc000 | (ident & 0x3fff);
            t[0..2].copy_from_slice(&sport.to_be_bytes());
            t[2..4].copy_from_slice(&tun.port.to_be_bytes());
            t[4..6].copy_from_slice(&((total - outer_ip) as u16).to_be_bytes());
            t[6..8].fill(0);
            // GUE header, version 0: no flags, no options, proto = the inner IP version.
            t[8..12].copy_from_slice(&[0, inner_proto, 0, 0]);
        }
        TunKind::Gre => {
            let proto: u16 = if A::V6 { 0x86dd } else { 0x0800 };
            t[0..2].copy_from_slice(&(if gre_csum { 0x8000u16 } else { 0 }).to_be_bytes());
            t[2..4].copy_from_slice(&proto.to_be_bytes());
            if gre_csum {
                t[4..8].fill(0);
            }
        }
    }
    if need_udp_csum || gre_csum {
        let seg = &mut f[l3 + outer_ip..l3 + total];
        if gre_csum {
            let c = wire::checksum::finish(wire::checksum::sum(seg));
            seg[4..6].copy_from_slice(&c.to_be_bytes());
        } else {
            let ph = match (src.to_ip(), dst.to_ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    wire::checksum::pseudo_header_v4(s, d, IpProtocol::UDP, seg.len() as u16)
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    wire::checksum::pseudo_header_v6(s, d, IpProtocol::UDP, seg.len() as u32)
                }
                _ => 0,
            };
            let c = if offloaded && want.udp {
                // The NIC adds the datagram to the pseudo-header sum and complements.
                ph
            } else {
                wire::checksum::udp_encode(wire::checksum::finish(wire::checksum::combine(&[
                    ph,
                    wire::checksum::sum(seg),
                ])))
            };
            seg[6..8].copy_from_slice(&c.to_be_bytes());
        }
    }
    // The L2 header still says IPv4/IPv6 as before (same outer family).
    Ok(())
}

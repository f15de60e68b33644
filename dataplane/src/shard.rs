//! One worker's engine: IPVS's conn semantics over a [`ConnTable`], its [`Timers`], the
//! dest counters and the defense, for one address family. Sans-IO: [`Shard::process`] takes
//! a packet's facts and `now` (ms) and returns a [`Verdict`]; [`Shard::tick`] runs timers and
//! the once-a-second defense. Nothing here reads a clock, allocates per packet or panics on
//! input.
//!
//! Where each IPVS function lives: `ip_vs_in`/`ip_vs_out` -> [`Shard::process`];
//! `ip_vs_schedule`/`ip_vs_sched_persist` -> `schedule`; `ip_vs_conn_new`/`ip_vs_bind_dest` ->
//! `conn_new`; `set_tcp_state` & co. -> `conn_packet`; `ip_vs_conn_expire` -> `on_due` /
//! `expire_conn`; `update_defense_level` + `ip_vs_random_dropentry` -> `defense_tick`;
//! `ip_vs_conn_flush` -> [`Shard::flush`].

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use crate::addr::Family;
use crate::config::{Config, FastHasher, Fwd, ServiceConfig, ServiceKey, TunConfig};
use crate::conn::{
    flags, Conn, ConnInfo, ConnKey, ConnParam, ConnRef, ConnTable, Side, BURST, MAX_DEST_SLOTS,
    NIL, NO_DEST, NO_HINT,
};
use crate::counters::{Counters, DropReason, SCTP_BASE, TCP_BASE, UDP_BASE};
use crate::defense::Defense;
use crate::dest_stats::{DestCells, DestStats};
use crate::proto::{sctp, tcp, Dir, Proto};
use crate::rng::Rng;
use crate::sched::{self, DestLoad, SchedInput, SchedState};
use crate::timer::Timers;

/// IPVS's FTP control port: persistent FTP templates use vport 0 so data conns follow.
const FTPPORT: u16 = 21;
/// `expire_later` in ip_vs_conn_expire: a conn that still controls others is retried then.
const EXPIRE_LATER_MS: u32 = 60_000;
/// Timeout of a conn between its creation and its first state transition (ip_vs_conn_new).
const INITIAL_TIMEOUT_MS: u32 = 3_000;

/// What the packet path knows of a packet, parsed once (wire views belong to the packet
/// issue; the engine needs only these facts).
#[derive(Clone, Copy, Debug, Default)]
pub struct Packet<A> {
    pub proto: u8,
    pub saddr: A,
    pub sport: u16,
    pub daddr: A,
    pub dport: u16,
    /// The IP datagram's length in bytes (the dest's byte counters; IPVS's `skb->len`).
    pub len: u32,
    /// TCP header flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10).
    pub tcp_flags: u8,
    /// SCTP: the chunks' event (`None`: no whole first chunk) and whether the first chunk is
    /// INIT / may start a conn under sloppy_sctp.
    pub sctp_event: Option<sctp::SctpEvent>,
    pub sctp_init: bool,
    pub sctp_sloppy_start: bool,
    /// Firewall mark from the packet path's match rules (0 = none).
    pub fwmark: u32,
}

impl<A: Family> Packet<A> {
    /// The conn this packet would start: its own protocol, addresses and ports.
    #[inline]
    fn param(&self) -> ConnParam<A> {
        ConnParam {
            proto: self.proto,
            caddr: self.saddr,
            cport: self.sport,
            vaddr: self.daddr,
            vport: self.dport,
        }
    }

    pub fn tcp(saddr: A, sport: u16, daddr: A, dport: u16, tcp_flags: u8) -> Self {
        Packet {
            proto: Proto::Tcp as u8,
            saddr,
            sport,
            daddr,
            dport,
            tcp_flags,
            ..Default::default()
        }
    }
    pub fn udp(saddr: A, sport: u16, daddr: A, dport: u16) -> Self {
        Packet {
            proto: Proto::Udp as u8,
            saddr,
            sport,
            daddr,
            dport,
            ..Default::default()
        }
    }
}

/// Where a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<A> {
    /// Send it on: inbound to the dest, or (outbound NAT reply) back to the client.
    Xmit(Xmit<A>),
    /// Dropped, and counted under the reason.
    Drop(DropReason),
    /// Neither a conn nor a service: not load-balancer traffic (the exception path).
    NotOurs,
}

/// What the forwarding step needs of the conn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Xmit<A> {
    pub conn: ConnRef,
    /// A reply from the dest (NAT: rewrite the source back to vaddr:vport).
    pub reply: bool,
    pub fwd: Fwd,
    pub caddr: A,
    pub cport: u16,
    pub vaddr: A,
    pub vport: u16,
    pub daddr: A,
    pub dport: u16,
    /// The dest's tunnel settings (read for `Fwd::Tunnel` only).
    pub tun: TunConfig,
}

/// Shard sizing and seeding.
#[derive(Clone, Debug)]
pub struct ShardParams {
    /// Conn entries (templates included): the shard's "memory".
    pub capacity: u32,
    /// Dest slots (dests of all services plus removed dests still referenced by conns).
    pub max_dests: u32,
    pub seed: u64,
    /// The drop_entry scan visits 1/2^scan_shift of the index buckets a second: 5 (1/32) as
    /// IPVS; 0 visits every bucket (used by the reference-model tests to be deterministic).
    pub scan_shift: u8,
    /// The worker running the shard: which cells of each dest's [`DestStats`] it writes.
    pub worker: u32,
}

impl Default for ShardParams {
    fn default() -> Self {
        ShardParams {
            capacity: 1 << 20,
            max_dests: 4096,
            seed: 1,
            scan_shift: 5,
            worker: 0,
        }
    }
}

/// Identity of a dest across config snapshots.
type DestKey<A> = (ServiceKey<A>, A, u16);

/// A dest as the shard tracks it. While the dest is in the config its load lives in the
/// service's load array (what the scheduler reads); once removed it is detached and keeps
/// its own counts until the last conn bound to it is gone (IPVS's dest trash).
#[derive(Clone, Debug)]
struct DestSlot<A> {
    key: DestKey<A>,
    fwd: Fwd,
    tun: TunConfig,
    /// Service index in the config, or NIL when removed from the config.
    svc: u32,
    pos: u32,
    detached: DestLoad,
    persist: u32,
    u_threshold: u32,
    l_threshold: u32,
    /// Conns and templates bound to it.
    refs: u32,
    in_use: bool,
    /// Its counters across workers (the snapshot's, or the shard's own without one), and
    /// this worker's cells in it.
    stats: Arc<DestStats>,
    cell: usize,
    /// The upper threshold (share) the overload flag was last judged by.
    judged_upper: u32,
}

/// Per-shard state of one service.
struct SvcState {
    sched: SchedState,
    loads: Vec<DestLoad>,
    slots: Vec<u32>,
}

/// A dest's counters as a reader sees them (for listings and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestCounts {
    pub active: u32,
    pub inactive: u32,
    pub persist: u32,
}

pub struct Shard<A: Family> {
    conns: ConnTable<A>,
    timers: Timers,
    cfg: Arc<Config<A>>,
    svcs: Vec<SvcState>,
    dests: Vec<DestSlot<A>>,
    dest_free: Vec<u32>,
    dest_map: HashMap<DestKey<A>, u32, BuildHasherDefault<FastHasher>>,
    defense: Defense,
    counters: Arc<Counters>,
    rng: Rng,
    seed: u64,
    scan_shift: u8,
    worker: u32,
    /// Next defense update (once a second of `now`).
    next_defense: u64,
}

impl<A: Family> Shard<A> {
    pub fn new(params: ShardParams, cfg: Arc<Config<A>>, now: u64) -> Self {
        let mut s = Shard {
            conns: ConnTable::new(params.capacity, params.seed, now),
            timers: Timers::new(ConnTable::<A>::slots_for(params.capacity), now),
            cfg: Arc::new(Config::default()),
            svcs: Vec::new(),
            dests: Vec::with_capacity(params.max_dests as usize),
            dest_free: Vec::with_capacity(params.max_dests as usize),
            dest_map: HashMap::with_capacity_and_hasher(
                params.max_dests as usize,
                Default::default(),
            ),
            defense: Defense::default(),
            counters: Arc::new(Counters::default()),
            rng: Rng::new(params.seed ^ 0x5eed),
            seed: params.seed,
            scan_shift: params.scan_shift.min(20),
            worker: params.worker,
            next_defense: now + 1000,
        };
        s.set_config(cfg, now);
        s.counters
            .free_entries
            .set(u64::from(s.conns.free_entries()));
        s
    }

    /// The counters, for readers on other threads.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }
    pub fn config(&self) -> &Arc<Config<A>> {
        &self.cfg
    }
    pub fn table(&self) -> &ConnTable<A> {
        &self.conns
    }
    /// Bytes of the conn table and its timers.
    pub fn conn_memory(&self) -> usize {
        self.conns.bytes() + self.timers.bytes()
    }
    /// Bytes of the conn table and its timers of a shard of `capacity` conns, without making
    /// one (the engine bench's "bytes per conn of capacity").
    pub fn conn_memory_for(capacity: u32) -> usize {
        ConnTable::<A>::bytes_for(capacity) + Timers::bytes_for(ConnTable::<A>::slots_for(capacity))
    }
    pub fn defense(&self) -> &Defense {
        &self.defense
    }
    /// The conn behind a handle, if still live.
    pub fn conn(&self, r: ConnRef) -> Option<ConnInfo<A>> {
        self.conns.resolve(r).map(|s| self.info(s))
    }

    /// The live conn in `slot`, if any (a `control` link's target, for checks).
    pub fn conn_at(&self, slot: u32) -> Option<ConnInfo<A>> {
        self.conns.is_live(slot).then(|| self.info(slot))
    }

    /// A live entry decoded, with its dest's address and port.
    fn info(&self, slot: u32) -> ConnInfo<A> {
        let c = self.conns.get(slot);
        let (daddr, dport) = self.dest_side(c);
        ConnInfo {
            proto: c.proto(),
            caddr: c.caddr(),
            cport: c.cport(),
            vaddr: c.vaddr(),
            vport: c.vport(),
            daddr,
            dport,
            state: c.state(),
            flags: c.flags(),
            timeout: c.timeout(),
            expires: self.conns.expires(slot),
            in_pkts: c.in_pkts(),
            control: c.control(),
            n_control: c.n_control(),
            dest: c.dest(),
        }
    }

    /// A conn's dest address and port (from its dest slot; see [`flags::OWN_DPORT`]).
    #[inline(always)]
    fn dest_side(&self, c: &Conn<A>) -> (A, u16) {
        match self.dests.get(c.dest() as usize) {
            Some(d) => (d.key.1, c.dport_with(d.key.2)),
            None => (A::default(), c.dport_with(0)),
        }
    }

    fn low_watermark(&self) -> u32 {
        match self.cfg.sysctl.low_watermark {
            0 => (self.conns.capacity() / 16).max(1),
            w => w,
        }
    }

    // ----- config -----

    /// Swap in a new config snapshot. Dests keep their counters by identity (service key,
    /// address, port); dests no longer present are detached and stay while conns use them.
    /// With expire_nodest_conn, conns of removed dests are expired at once (newer kernels).
    /// A service the new snapshot shares with the old one (the same `Arc`: the control
    /// thread rebuilds only what changed) keeps its scheduler state and its dests' loads as
    /// they are, so a change costs what it changes (and a round-robin position survives an
    /// edit of another service, as in IPVS).
    /// Returns the snapshot it replaced, for the caller to free (a worker hands it back to
    /// the control thread rather than free it between bursts).
    pub fn set_config(&mut self, cfg: Arc<Config<A>>, now: u64) -> Arc<Config<A>> {
        // Which old service each new one is, when shared: at the same place (a change that
        // moves no service: one pointer compare each), else by pointer through an index
        // made once.
        let mut old_at: Option<
            HashMap<*const ServiceConfig<A>, usize, BuildHasherDefault<FastHasher>>,
        > = None;
        let kept: Vec<Option<usize>> = cfg
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if let Some(o) = self.cfg.services.get(i) {
                    if Arc::ptr_eq(o, s) {
                        return Some(i);
                    }
                    // The same service in its place, changed (a `-e`): no other old service
                    // can be this one (keys are unique), so no index is needed to say so.
                    if o.key == s.key {
                        return None;
                    }
                }
                old_at
                    .get_or_insert_with(|| {
                        self.cfg
                            .services
                            .iter()
                            .enumerate()
                            .map(|(j, s)| (Arc::as_ptr(s), j))
                            .collect()
                    })
                    .get(&Arc::as_ptr(s))
                    .copied()
            })
            .collect();
        // Dests whose counter block is new to them (their counts go there).
        let mut moved = Vec::new();
        // A change that moves no service (`-e`, `-a`, `-d`, or every service replaced in
        // place): the services that changed are rebuilt where they are; the others are not
        // touched (no 10k-service vector rebuilt for one `-e`).
        let in_place = cfg.services.len() == self.svcs.len()
            && kept
                .iter()
                .enumerate()
                .all(|(i, k)| k.is_none_or(|j| j == i));
        let detached = if in_place {
            let mut detached = Vec::new();
            for (si, _) in kept.iter().enumerate().filter(|(_, k)| k.is_none()) {
                detach(&mut self.dests, &self.svcs[si], &mut detached);
            }
            for (si, _) in kept.iter().enumerate().filter(|(_, k)| k.is_none()) {
                self.svcs[si] = self.build_svc(si, &cfg.services[si], &mut moved);
            }
            detached
        } else {
            let mut old_svcs: Vec<Option<SvcState>> = std::mem::take(&mut self.svcs)
                .into_iter()
                .map(Some)
                .collect();
            let mut is_kept = vec![false; old_svcs.len()];
            for &j in kept.iter().flatten() {
                is_kept[j] = true;
            }
            // Detach the dests of the services that are not kept, copying their live loads
            // out.
            let mut detached = Vec::new();
            for (j, st) in old_svcs.iter().enumerate() {
                if let Some(st) = st.as_ref().filter(|_| !is_kept[j]) {
                    detach(&mut self.dests, st, &mut detached);
                }
            }
            let mut svcs = Vec::with_capacity(cfg.services.len());
            for (si, svc) in cfg.services.iter().enumerate() {
                if let Some(j) = kept[si] {
                    if let Some(st) = old_svcs[j].take() {
                        if j != si {
                            for &slot in &st.slots {
                                self.dests[slot as usize].svc = si as u32;
                            }
                        }
                        svcs.push(st);
                        continue;
                    }
                }
                svcs.push(self.build_svc(si, svc, &mut moved));
            }
            self.svcs = svcs;
            detached
        };
        let nodest_on = cfg.sysctl.expire_nodest_conn && !self.cfg.sysctl.expire_nodest_conn;
        let old = std::mem::replace(&mut self.cfg, cfg);
        // Dests that left the config (detached now and not attached again): free the
        // unreferenced, expire conns if asked. (A dest detached before with conns is freed
        // when its last conn goes; when expire_nodest_conn is newly on, its conns go now.)
        let mut removed_with_conns = false;
        let left: Vec<u32> = if nodest_on {
            (0..self.dests.len() as u32).collect()
        } else {
            detached
        };
        for &i in &left {
            let d = &self.dests[i as usize];
            if d.in_use && d.svc == NIL {
                if d.refs == 0 {
                    self.free_dest(i);
                } else {
                    removed_with_conns = true;
                }
            }
        }
        if removed_with_conns && self.cfg.sysctl.expire_nodest_conn {
            let dests = &self.dests;
            let gone: Vec<bool> = dests.iter().map(|d| d.in_use && d.svc == NIL).collect();
            self.flush_where(now, |c| gone.get(c.dest() as usize) == Some(&true));
        }
        // Thresholds may have changed where services were rebuilt: those dests' overload
        // flags from their shares (a kept service's dests keep theirs: same thresholds, same
        // blocks); a dest that got a new block has its counts published there.
        for (si, _) in kept.iter().enumerate().filter(|(_, k)| k.is_none()) {
            for k in 0..self.svcs[si].slots.len() {
                let slot = self.svcs[si].slots[k];
                self.refresh_overload_of(slot as usize);
            }
        }
        for slot in moved {
            self.publish_load(slot);
        }
        old
    }

    /// The scheduler state and dest slots of service `si` of a new config, its dests placed
    /// (found by identity, or given a slot) and set from the config; `moved`: the slots
    /// whose counter block changed.
    fn build_svc(&mut self, si: usize, svc: &ServiceConfig<A>, moved: &mut Vec<u32>) -> SvcState {
        let mut loads = Vec::with_capacity(svc.dests.len());
        let mut slots = Vec::with_capacity(svc.dests.len());
        for (pos, dc) in svc.dests.iter().enumerate() {
            let key = (svc.key, dc.addr, dc.port);
            // One lookup for a dest new to the shard (a 100k-dest set is all new ones).
            let slot = match self.dest_map.entry(key) {
                Entry::Occupied(e) => *e.get(),
                // Nothing to publish for a new slot: it has no conns, and its block's
                // cells for this worker are zero (a new block, or one whose slot here
                // published zero counts when its last conn went). Not writing them
                // spares a cache miss per dest of a large change.
                Entry::Vacant(e) => {
                    let s = place_dest(
                        &mut self.dests,
                        &mut self.dest_free,
                        new_dest(key, &dc.stats.0, self.worker),
                    );
                    e.insert(s);
                    s
                }
            };
            let d = &mut self.dests[slot as usize];
            d.svc = si as u32;
            d.pos = pos as u32;
            d.fwd = dc.fwd;
            d.tun = dc.tun;
            d.u_threshold = dc.u_threshold;
            d.l_threshold = dc.l_threshold;
            match &dc.stats.0 {
                Some(st) if !Arc::ptr_eq(st, &d.stats) => {
                    d.stats = Arc::clone(st);
                    d.cell = st.cell_of(self.worker);
                    moved.push(slot);
                }
                Some(_) => {}
                // The shard's own block: the thresholds are this shard's alone.
                None => d.stats.split_evenly(dc.u_threshold, dc.l_threshold),
            }
            let mut load = d.detached;
            load.weight = dc.weight;
            loads.push(load);
            slots.push(slot);
        }
        let seed = self.seed ^ (si as u64).wrapping_mul(0x9E37_79B9);
        SvcState {
            sched: SchedState::new(svc.sched, svc.dests.len(), seed),
            loads,
            slots,
        }
    }

    /// This worker's cells of a dest's counters.
    #[inline(always)]
    fn cells(&self, dest: u32) -> &DestCells {
        let d = &self.dests[dest as usize];
        d.stats.cells_at(d.cell)
    }

    /// Mirror a dest's conn counts into its cells, where the control thread reads them.
    fn publish_load(&self, dest: u32) {
        let l = self.load(dest);
        let c = self.cells(dest);
        c.active.set(u64::from(l.active));
        c.inactive.set(u64::from(l.inactive));
        c.persist.set(u64::from(self.dests[dest as usize].persist));
    }

    /// The upper threshold this worker applies to a dest: its share of `-x` (None: no
    /// upper threshold), and the lower: its share of `-y` (0: none, then 3/4 of the upper).
    #[inline]
    fn thresholds(&self, dest: u32) -> (Option<u32>, u32) {
        let d = &self.dests[dest as usize];
        if d.u_threshold == 0 && d.l_threshold == 0 {
            return (None, 0);
        }
        let (u, l) = d.stats.share(self.worker);
        (
            (d.u_threshold != 0).then_some(u),
            if d.l_threshold != 0 { l } else { 0 },
        )
    }

    /// ip_vs_unbind_dest's rule for leaving overload, from this worker's shares: below the
    /// lower threshold, or below 3/4 of the upper without one (no upper: never overloaded).
    fn may_leave_overload(&self, dest: u32, total: u32) -> bool {
        let d = &self.dests[dest as usize];
        let (u, l) = self.thresholds(dest);
        if d.l_threshold != 0 {
            total < l
        } else {
            u.is_none_or(|u| u64::from(total) * 4 < u64::from(u) * 3)
        }
    }

    /// Re-evaluate every attached dest's overload flag from the current shares (after a
    /// config swap or a rebalance of the shares by the control thread).
    pub fn refresh_overload(&mut self) {
        for i in 0..self.dests.len() {
            self.refresh_overload_of(i);
        }
    }

    /// [`Self::refresh_overload`] for one dest slot.
    fn refresh_overload_of(&mut self, i: usize) {
        let d = &self.dests[i];
        if !d.in_use || d.svc == NIL {
            return;
        }
        let l = self.load(i as u32);
        let total = l.active + l.inactive;
        let upper = self.thresholds(i as u32).0;
        // As __ip_vs_update_dest: a raised (or cleared) upper threshold clears the
        // overload; a worker's grown share is such a raise.
        let raised = upper.is_none_or(|u| u > self.dests[i].judged_upper);
        let over = match upper {
            None => false,
            Some(u) if total >= u => true,
            Some(_) => l.overloaded && !raised && !self.may_leave_overload(i as u32, total),
        };
        self.dests[i].judged_upper = upper.unwrap_or(0);
        self.load_mut(i as u32).overloaded = over;
    }

    fn free_dest(&mut self, i: u32) {
        let d = &mut self.dests[i as usize];
        d.in_use = false;
        let key = d.key;
        self.dest_map.remove(&key);
        self.dest_free.push(i);
    }

    #[inline]
    fn load_mut(&mut self, dest: u32) -> &mut DestLoad {
        let d = &self.dests[dest as usize];
        if d.svc != NIL {
            let (svc, pos) = (d.svc as usize, d.pos as usize);
            &mut self.svcs[svc].loads[pos]
        } else {
            &mut self.dests[dest as usize].detached
        }
    }

    #[inline]
    fn load(&self, dest: u32) -> DestLoad {
        let d = &self.dests[dest as usize];
        if d.svc != NIL {
            self.svcs[d.svc as usize].loads[d.pos as usize]
        } else {
            d.detached
        }
    }

    /// IPVS_DEST_F_AVAILABLE: still part of its service.
    #[inline]
    fn dest_available(&self, dest: u32) -> bool {
        self.dests.get(dest as usize).is_some_and(|d| d.svc != NIL)
    }

    /// Counters of the dest `addr:port` of the service `key` (None if unknown).
    pub fn dest_counts(&self, key: ServiceKey<A>, addr: A, port: u16) -> Option<DestCounts> {
        let &slot = self.dest_map.get(&(key, addr, port))?;
        let l = self.load(slot);
        Some(DestCounts {
            active: l.active,
            inactive: l.inactive,
            persist: self.dests[slot as usize].persist,
        })
    }

    /// Address and port of a conn's dest slot.
    pub fn dest_addr(&self, dest: u32) -> Option<(A, u16)> {
        let d = self.dests.get(dest as usize).filter(|d| d.in_use)?;
        Some((d.key.1, d.key.2))
    }

    // ----- packets -----

    /// Handle a burst (at most [`BURST`] packets, the rest ignored): warm the cache for all
    /// their inbound lookups first, then process each in order. Lookups are repeated after
    /// the warm-up because an earlier packet of the burst may create or expire a conn.
    pub fn process_burst(&mut self, pkts: &[Packet<A>], now: u64, out: &mut [Verdict<A>]) {
        let n = pkts.len().min(out.len()).min(BURST);
        let mut keys = [ConnKey::<A> {
            proto: 0,
            caddr: A::default(),
            cport: 0,
            addr: A::default(),
            port: 0,
            template: false,
        }; BURST];
        for (k, p) in keys.iter_mut().zip(&pkts[..n]) {
            *k = in_key(p);
        }
        self.conns.prefetch_burst(&keys[..n]);
        for (o, p) in out.iter_mut().zip(&pkts[..n]) {
            *o = self.process(p, now);
        }
    }

    /// Handle one packet at `now` (ms): IPVS's ip_vs_in / ip_vs_out for this shard.
    pub fn process(&mut self, pkt: &Packet<A>, now: u64) -> Verdict<A> {
        self.process_hinted(pkt, now, NO_HINT, NO_HINT)
    }

    /// [`Shard::process`] with the slot a staged lookup named, tried for the inbound and for
    /// the outbound lookup (checked against each key before it is trusted), but without
    /// [`Shard::process_hinted`]'s inline shortcut: the general path's call. (The shortcut
    /// inlined there too made the compiler call `conn_packet` out of line from the fast path:
    /// 8-39 instructions a frame more.)
    #[inline]
    pub fn process_with_hint(&mut self, pkt: &Packet<A>, now: u64, hint: u32) -> Verdict<A> {
        self.process_general(pkt, now, hint, hint)
    }

    /// [`Shard::process`] with the slots an earlier staged lookup named for the inbound and
    /// the outbound key ([`ConnTable::prefetch_entry`]; [`NO_HINT`] for none): the same
    /// verdict, without the probes when a hint holds.
    #[inline(always)]
    pub fn process_hinted(
        &mut self,
        pkt: &Packet<A>,
        now: u64,
        hint_in: u32,
        hint_out: u32,
    ) -> Verdict<A> {
        // The common packet first, inline in the caller's loop: a plain ACK of an established
        // TCP conn that the hint names. The same steps as below (lookup, check_existing with
        // no SYN, conn_packet's shortcut); anything else, or a failed hint, goes the whole way.
        let w = self.conns.window();
        if let Some(c) = self.conns.try_get_mut(hint_in) {
            if pkt.proto == 6
                && tcp::is_plain_ack(pkt.tcp_flags)
                && c.flags() & (flags::HASHED | flags::ONE_PACKET | flags::INACTIVE)
                    == flags::HASHED
                && c.state() == tcp::TcpState::Established as u8
                && c.matches_in(&in_key(pkt))
            {
                // The dest's cells with its availability check: one lookup of the dest.
                if let Some(d) = self.dests.get(c.dest() as usize).filter(|d| d.svc != NIL) {
                    count(d.stats.cells_at(d.cell), false, pkt.len);
                    let timeout = established_timeout(&self.cfg);
                    if c.refresh(timeout, now, w, true) {
                        self.timers.arm(hint_in, now + u64::from(timeout));
                    }
                    self.counters.packets_in.inc();
                    return Verdict::Xmit(xmit_with(hint_in, c, d, false));
                }
            }
        }
        // A frame the caller keyed as a reply (to no VIP) whose outbound hint names its conn:
        // that conn, without the inbound probe and the service lookup. IPVS looks replies up
        // first too (`ip_vs_reply4` runs before `ip_vs_remote_request4`). (Written out rather
        // than through `out_hinted`: that form cost every frame 12-28 instructions more in
        // the burst loop this inlines into, DR included.)
        if hint_in == NO_HINT && hint_out != NO_HINT {
            let k = out_key(pkt);
            if let Some(c) = self.conns.try_get(hint_out) {
                if c.has(flags::HASHED) && self.is_out(c, &k) {
                    self.counters.packets_out.inc();
                    return self.conn_packet(hint_out, Dir::Output, pkt, now);
                }
            }
        }
        self.process_general(pkt, now, hint_in, hint_out)
    }

    /// [`Shard::process_hinted`] past its inline shortcut.
    #[inline(never)]
    fn process_general(
        &mut self,
        pkt: &Packet<A>,
        now: u64,
        hint_in: u32,
        hint_out: u32,
    ) -> Verdict<A> {
        let key_in = in_key(pkt);
        let mut resched = false;
        if let Some(slot) = self.conns.lookup_hinted(&key_in, hint_in) {
            match self.check_existing(slot, pkt, now) {
                Ok(()) => {
                    self.counters.packets_in.inc();
                    return self.conn_packet(slot, Dir::Input, pkt, now);
                }
                Err(Some(r)) => return self.drop(r),
                Err(None) => resched = true,
            }
        }
        let proto = Proto::from_u8(pkt.proto);
        let svc = proto.and_then(|p| self.cfg.find_service(pkt.fwmark, p, pkt.daddr, pkt.dport));
        // A packet to a VIP is never a reply (replies go to clients), so the outbound lookup
        // is only needed when no service matches: a SYN costs one index probe, not two.
        let (Some(proto), Some(si)) = (proto, svc) else {
            if !resched {
                if let Some(slot) = self.lookup_out(&out_key(pkt), hint_out) {
                    self.counters.packets_out.inc();
                    return self.conn_packet(slot, Dir::Output, pkt, now);
                }
            }
            return Verdict::NotOurs;
        };
        let sysctl = &self.cfg.sysctl;
        let may_start = match proto {
            Proto::Tcp => tcp::may_start_conn(pkt.tcp_flags, sysctl.sloppy_tcp),
            Proto::Udp => true,
            Proto::Sctp => pkt.sctp_init || (sysctl.sloppy_sctp && pkt.sctp_sloppy_start),
        };
        if !may_start {
            return self.drop(DropReason::NoConnNotStart);
        }
        if self.defense.todrop() {
            return self.drop(DropReason::DropPacket);
        }
        let slot = match self.schedule(si, proto, pkt, now) {
            Ok(s) => s,
            Err(r) => return self.drop(r),
        };
        self.counters.packets_in.inc();
        let v = self.conn_packet(slot, Dir::Input, pkt, now);
        let c = self.conns.get(slot);
        if c.has(flags::ONE_PACKET) {
            // OPS: the conn lives only for its packet (ip_vs_conn_put with timeout 0); the
            // template counts the packets instead (what makes OPS templates try-droppable).
            let ct = c.control();
            if ct != NIL {
                self.conns.get_mut(ct).count_in_pkt();
            }
            self.expire_conn(slot, now);
        }
        v
    }

    #[inline]
    fn drop(&mut self, r: DropReason) -> Verdict<A> {
        self.counters.count_drop(r);
        Verdict::Drop(r)
    }

    /// ip_vs_in's checks on a found conn: conn_reuse_mode and dest availability.
    /// `Ok`: use the conn. `Err(None)`: it was expired (or unhashed); schedule anew.
    /// `Err(Some(r))`: drop the packet.
    fn check_existing(
        &mut self,
        slot: u32,
        pkt: &Packet<A>,
        now: u64,
    ) -> Result<(), Option<DropReason>> {
        let sysctl = &self.cfg.sysctl;
        let c = self.conns.get(slot);
        let is_new = match pkt.proto {
            6 => pkt.tcp_flags & tcp::SYN != 0,
            132 => pkt.sctp_init,
            _ => false,
        };
        if is_new {
            // expire_nodest_conn with a quiescent dest reschedules in any state and any reuse
            // mode (5.16+); otherwise conn_reuse_mode decides. No conntrack here, so IPVS's
            // "old conntrack" cases never apply.
            let quiescent = sysctl.expire_nodest_conn
                && self.dest_available(c.dest())
                && self.load(c.dest()).weight == 0;
            if quiescent
                || (sysctl.conn_reuse_mode != 0 && is_new_conn_expected(c, sysctl.conn_reuse_mode))
            {
                self.retire(slot, now);
                return Err(None);
            }
        }
        let c = self.conns.get(slot);
        if c.dest() != NO_DEST && !self.dest_available(c.dest()) {
            if self.cfg.sysctl.expire_nodest_conn {
                self.retire(slot, now);
                return Err(None);
            }
            return Err(Some(DropReason::DestUnavailable));
        }
        Ok(())
    }

    /// Make room for a new conn with the same tuple: expire now if nothing depends on it,
    /// else take it out of the index so that it lives on only for its controlled conns.
    fn retire(&mut self, slot: u32, now: u64) {
        if self.conns.get(slot).n_control() == 0 {
            self.expire_conn(slot, now);
        } else {
            self.conns.unhash(slot);
        }
    }

    /// A packet of a known conn: in_pkts, state transition, dest counters, ASSURED, timer.
    fn conn_packet(&mut self, slot: u32, dir: Dir, pkt: &Packet<A>, now: u64) -> Verdict<A> {
        let secure = self.defense.secure_tcp_active();
        let c = self.conns.get_mut(slot);
        if dir == Dir::Input && !c.has(flags::ONE_PACKET) {
            c.count_in_pkt();
        } else {
            c.clear_flags(flags::NOOUTPUT);
        }
        let dest = c.dest();
        self.count_dest(dest, dir == Dir::Output, pkt.len);
        if tcp::is_plain_ack(pkt.tcp_flags) && self.plain_ack(slot, now) {
            return Verdict::Xmit(self.xmit_of(slot, dir == Dir::Output));
        }
        let timeouts = &self.cfg.sysctl.timeouts;
        let c = self.conns.get_mut(slot);
        let eff = dir.for_conn(c.has(flags::NOOUTPUT));
        let old = c.state();
        let (new, assure) = match c.proto() {
            6 => {
                let cur = tcp::TcpState::from_u8(old).unwrap_or(tcp::TcpState::None);
                let n = tcp::next_state(secure, eff, pkt.tcp_flags, cur);
                (n as u8, n != cur && n == tcp::TcpState::Established)
            }
            132 => match pkt.sctp_event {
                Some(ev) => {
                    let cur = sctp::SctpState::from_u8(old).unwrap_or(sctp::SctpState::None);
                    let n = sctp::next_state(eff, ev, cur);
                    (n as u8, n != cur && n == sctp::SctpState::Established)
                }
                None => (old, false),
            },
            // UDP: a reply from the dest assures the template (udp_state_transition).
            _ => (old, dir == Dir::Output),
        };
        let proto = Proto::from_u8(c.proto()).unwrap_or(Proto::Udp);
        let timeout = timeouts.of(proto, new);
        c.set_timeout(timeout);
        let control = c.control();
        let dest = c.dest();
        let was_inactive = c.has(flags::INACTIVE);
        if new != old {
            c.set_state(new);
            self.counters.conns_by_state[gauge_index(c.proto(), old)].dec();
            self.counters.conns_by_state[gauge_index(c.proto(), new)].inc();
        }
        let active = match proto {
            Proto::Tcp => tcp::TcpState::from_u8(new).is_some_and(tcp::is_active),
            Proto::Sctp => sctp::SctpState::from_u8(new).is_some_and(sctp::is_active),
            Proto::Udp => false,
        };
        if dest != NO_DEST && active == was_inactive {
            let c = self.conns.get_mut(slot);
            c.toggle_flags(flags::INACTIVE);
            let l = self.load_mut(dest);
            if active {
                l.active += 1;
                l.inactive = l.inactive.saturating_sub(1);
            } else {
                l.active = l.active.saturating_sub(1);
                l.inactive += 1;
            }
            self.publish_load(dest);
        }
        if assure && control != NIL {
            self.assure_template(control);
        }
        self.set_deadline(slot, now + u64::from(timeout));
        Verdict::Xmit(self.xmit_of(slot, dir == Dir::Output))
    }

    /// The common packet, a plain ACK of an established TCP conn, moves only its timer: no
    /// transition, no gauge or dest counter changes (`tcp::is_plain_ack`; the caller checked
    /// the flags). False, with nothing changed, when the conn is not such a conn.
    #[inline(always)]
    fn plain_ack(&mut self, slot: u32, now: u64) -> bool {
        let c = self.conns.get(slot);
        if c.proto() != 6 || c.state() != tcp::TcpState::Established as u8 || c.has(flags::INACTIVE)
        {
            return false;
        }
        self.ack_established(slot, now);
        true
    }

    /// [`Shard::plain_ack`]'s step once its checks held: the established timeout, re-armed.
    #[inline(always)]
    fn ack_established(&mut self, slot: u32, now: u64) {
        let timeout = established_timeout(&self.cfg);
        if self.conns.refresh(slot, timeout, now, false) {
            self.timers.arm(slot, now + u64::from(timeout));
        }
    }

    /// A packet of a conn of `dest` (NIL: none): its dest's packet and byte counters
    /// (`ip_vs_in_stats` / `ip_vs_out_stats`).
    #[inline(always)]
    fn count_dest(&self, dest: u32, reply: bool, len: u32) {
        if let Some(d) = self.dests.get(dest as usize) {
            count(d.stats.cells_at(d.cell), reply, len);
        }
    }

    #[inline(always)]
    fn xmit_of(&self, slot: u32, reply: bool) -> Xmit<A> {
        let c = self.conns.get(slot);
        match self.dests.get(c.dest() as usize) {
            Some(d) => xmit_with(slot, c, d, reply),
            None => Xmit {
                conn: self.conns.conn_ref(slot),
                reply,
                fwd: Fwd::from_bits(c.flags()),
                caddr: c.caddr(),
                cport: c.cport(),
                vaddr: c.vaddr(),
                vport: c.vport(),
                daddr: A::default(),
                dport: c.dport_with(0),
                tun: TunConfig::default(),
            },
        }
    }

    /// The conn an ICMP error's quoted packet belongs to, without touching its state (IPVS's
    /// `ip_vs_in_icmp` / `ip_vs_out_icmp` lookups). `Side::In`: the quote is a packet sent to
    /// the client (key: client = quoted destination); `Side::Out`: a packet sent to the dest
    /// (key: client = quoted source, dest = quoted destination).
    pub fn icmp_lookup(&self, key: &ConnKey<A>, side: Side) -> Option<Xmit<A>> {
        let slot = match side {
            Side::In => self.conns.lookup(key)?,
            Side::Out => self.lookup_out(key, NO_HINT)?,
        };
        Some(self.xmit_of(slot, side == Side::Out))
    }

    /// The conn of an outbound key (dest -> client: `addr`/`port` are the dest side, matched
    /// through each candidate's dest slot), trying `hint` first.
    #[inline]
    fn lookup_out(&self, k: &ConnKey<A>, hint: u32) -> Option<u32> {
        self.out_hinted(k, hint).or_else(|| {
            self.conns
                .find(self.conns.hash_of(k), |c| self.is_out(c, k))
        })
    }

    /// `hint`, if it names the hashed conn of the outbound key `k` (keys are unique among
    /// hashed conns, so that is the answer).
    #[inline(always)]
    fn out_hinted(&self, k: &ConnKey<A>, hint: u32) -> Option<u32> {
        let c = self.conns.try_get(hint)?;
        (c.has(flags::HASHED) && self.is_out(c, k)).then_some(hint)
    }

    /// Whether `c` is the conn of the outbound key `k`: its client side, and its dest side
    /// through its dest slot.
    #[inline(always)]
    fn is_out(&self, c: &Conn<A>, k: &ConnKey<A>) -> bool {
        c.matches_client(k) && self.dest_side(c) == (k.addr, k.port)
    }

    /// ip_vs_control_assure_ct: the controller, if a template, becomes ASSURED for life.
    fn assure_template(&mut self, ct: u32) {
        let t = self.conns.get_mut(ct);
        if t.is_template() && !t.is_assured() {
            t.set_flags(flags::ASSURED);
            self.counters.assured_templates.inc();
        }
    }

    /// Move a conn's deadline. Later: only stored (the timers look at the conn again when the
    /// bound of its leaf comes, and see it then). Earlier: the bounds above it are lowered now,
    /// so a shorter timeout is honoured on time.
    #[inline(always)]
    fn set_deadline(&mut self, slot: u32, deadline: u64) {
        if self.conns.set_expires(slot, deadline) {
            self.timers.arm(slot, deadline);
        }
    }

    // ----- scheduling and new conns -----

    fn schedule(
        &mut self,
        si: usize,
        proto: Proto,
        pkt: &Packet<A>,
        now: u64,
    ) -> Result<u32, DropReason> {
        let svc = &self.cfg.services[si];
        let (svc_port, persistent, ops) = match svc.key {
            ServiceKey::Addr { vport, .. } => (Some(vport), svc.persistence, svc.ops),
            ServiceKey::Fwmark(_) => (None, svc.persistence, svc.ops),
        };
        let ops_flag = if ops && proto == Proto::Udp {
            flags::ONE_PACKET
        } else {
            0
        };
        let Some(persist) = persistent else {
            if svc_port.is_some_and(|p| p != pkt.dport) {
                return Err(DropReason::PortZeroNotPersistent);
            }
            let pos = self.pick_dest(si, pkt, now).ok_or(DropReason::NoDest)?;
            let dslot = self.svcs[si].slots[pos];
            // A dest of port 0 takes the packet's port.
            let own_dport = self.dests[dslot as usize].key.2 == 0;
            return self.conn_new(pkt.param(), own_dport, dslot, ops_flag, now);
        };

        // ip_vs_sched_persist: the template key.
        let snet = pkt.saddr.mask(persist.prefix);
        let (tproto, tvaddr, tvport) = match svc.key {
            ServiceKey::Addr { vport, .. } if vport == pkt.dport && vport != FTPPORT => {
                (pkt.proto, pkt.daddr, vport)
            }
            ServiceKey::Addr { .. } => (pkt.proto, pkt.daddr, 0),
            // Firewall-mark template: <IPPROTO_IP, caddr, 0, mark, 0>.
            ServiceKey::Fwmark(mark) => (0, A::from_mark(mark), 0),
        };
        let tkey = ConnKey {
            proto: tproto,
            caddr: snet,
            cport: 0,
            addr: tvaddr,
            port: tvport,
            template: true,
        };
        let mut ct = self.conns.lookup(&tkey);
        if let Some(t) = ct {
            if !self.template_valid(t) {
                // Invalidate: out of the index; it lives on until its timer and its
                // controlled conns are done (IPVS rehashes it under vport 0xffff).
                self.conns.unhash(t);
                ct = None;
            }
        }
        let ct = match ct {
            Some(t) => t,
            None => {
                let pos = self.pick_dest(si, pkt, now).ok_or(DropReason::NoDest)?;
                let dslot = self.svcs[si].slots[pos];
                // A template of a port-zero or FTP service has dport 0, else its dest's.
                let tp = ConnParam {
                    proto: tproto,
                    caddr: snet,
                    cport: 0,
                    vaddr: tvaddr,
                    vport: tvport,
                };
                let t = self.conn_new(tp, tvport == 0, dslot, flags::TEMPLATE, now)?;
                self.conns.get_mut(t).set_timeout(persist.timeout_ms);
                t
            }
        };
        let dslot = self.conns.get(ct).dest();
        // The dest's port for the service's own port, else the packet's.
        let own_dport = svc_port != Some(pkt.dport) || self.dests[dslot as usize].key.2 == 0;
        let cp = self.conn_new(pkt.param(), own_dport, dslot, ops_flag, now);
        // ip_vs_conn_put(ct): the template is re-armed even when the conn did not fit.
        let deadline = now + u64::from(self.conns.get(ct).timeout());
        self.set_deadline(ct, deadline);
        let cp = cp?;
        // ip_vs_control_add: link.
        self.conns.get_mut(cp).set_control(ct);
        self.conns.get_mut(ct).add_n_control(true);
        Ok(cp)
    }

    /// ip_vs_check_template: the template's dest still serves.
    fn template_valid(&self, t: u32) -> bool {
        let dest = self.conns.get(t).dest();
        self.dest_available(dest)
            && !(self.cfg.sysctl.expire_quiescent_template && self.load(dest).weight == 0)
    }

    fn pick_dest(&mut self, si: usize, pkt: &Packet<A>, now: u64) -> Option<usize> {
        let svc = &self.cfg.services[si];
        let st = &mut self.svcs[si];
        let input = SchedInput {
            v6: A::BITS == 128,
            caddr: pkt.saddr.octets(),
            cport: pkt.sport,
            daddr: pkt.daddr.octets(),
            dport: pkt.dport,
        };
        sched::schedule(
            svc.sched,
            svc.sched_flags,
            &svc.tables,
            &mut st.sched,
            &st.loads,
            &input,
            now,
        )
    }

    /// ip_vs_conn_new + ip_vs_bind_dest.
    fn conn_new(
        &mut self,
        p: ConnParam<A>,
        own_dport: bool,
        dest: u32,
        extra: u16,
        now: u64,
    ) -> Result<u32, DropReason> {
        let proto = p.proto;
        if dest >= MAX_DEST_SLOTS {
            // A conn names its dest in 24 bits: a dest slot past them takes no conns.
            return Err(DropReason::NoDest);
        }
        let d = &self.dests[dest as usize];
        let fwd = d.fwd;
        let mut f = fwd as u16 | flags::INACTIVE | extra;
        if fwd != Fwd::Masq {
            f |= flags::NOOUTPUT;
        }
        if proto != Proto::Udp as u8 {
            f &= !flags::ONE_PACKET;
        }
        if own_dport {
            f |= flags::OWN_DPORT;
        }
        let init = Conn::new(p, dest, f, INITIAL_TIMEOUT_MS);
        let deadline = now + u64::from(INITIAL_TIMEOUT_MS);
        let Some(slot) = self.conns.alloc(init, deadline) else {
            return Err(DropReason::TableFull);
        };
        if f & flags::ONE_PACKET == 0 {
            // OPS conns are never hashed: no later packet may find them.
            self.conns.hash(slot);
        }
        self.timers.arm(slot, deadline);
        // Bind the dest.
        let is_template = f & flags::TEMPLATE != 0;
        let ds = &mut self.dests[dest as usize];
        ds.refs += 1;
        if is_template {
            ds.persist += 1;
            self.counters.templates.inc();
            self.counters.templates_created.inc();
        } else {
            self.counters.conns.inc();
            self.counters.conns_created.inc();
            self.counters.conns_by_state[gauge_index(proto, 0)].inc();
        }
        let (u, _) = self.thresholds(dest);
        let l = self.load_mut(dest);
        if !is_template {
            l.inactive += 1;
        }
        if u.is_some_and(|u| l.active + l.inactive >= u) {
            l.overloaded = true;
        }
        if !is_template {
            self.cells(dest).conns.inc();
        }
        self.publish_load(dest);
        self.counters
            .free_entries
            .set(u64::from(self.conns.free_entries()));
        Ok(slot)
    }

    // ----- expiry -----

    /// Run timers up to `now` and the defense once for every second boundary passed.
    pub fn tick(&mut self, now: u64) {
        loop {
            let target = now.min(self.next_defense);
            self.run_timers(target);
            if target < self.next_defense {
                break;
            }
            let at = self.next_defense;
            self.next_defense += 1000;
            self.defense_tick(at);
        }
    }

    fn run_timers(&mut self, now: u64) {
        // Time never runs backwards for the timers: a late or reordered `now` (a pcap with
        // unordered timestamps) only delays nothing and re-fires nothing.
        let now = now.max(self.timers.now());
        self.conns.advance_clock(now);
        while let Some(leaf) = self.timers.next_due(now) {
            // Run the leaf's due conns, then report the earliest deadline it keeps (an arm
            // while running, of this leaf or another, lowers the bounds itself).
            let mut least = u64::MAX;
            for slot in self.timers.leaf_slots(leaf) {
                if !self.conns.is_live(slot) {
                    continue;
                }
                if self.conns.expires(slot) <= now {
                    self.on_due(slot, now);
                    if !self.conns.is_live(slot) {
                        continue;
                    }
                }
                least = least.min(self.conns.expires(slot));
            }
            self.timers.leaf_done(leaf, least);
        }
        self.counters
            .free_entries
            .set(u64::from(self.conns.free_entries()));
    }

    /// A conn's deadline came (ip_vs_conn_expire).
    fn on_due(&mut self, slot: u32, now: u64) {
        if self.conns.get(slot).n_control() > 0 {
            // expire_later: still controls conns. IPVS also resets the timeout to 60 s.
            self.conns.get_mut(slot).set_timeout(EXPIRE_LATER_MS);
            self.conns
                .set_expires(slot, now + u64::from(EXPIRE_LATER_MS));
            return;
        }
        self.expire_conn(slot, now);
    }

    /// Arm a conn's timer to fire now (ip_vs_conn_expire_now).
    fn expire_now(&mut self, slot: u32, now: u64) {
        self.conns.set_expires(slot, now);
        self.timers.arm(slot, now);
    }

    /// Drop a conn as the defense does (ip_vs_conn_del after the seed patch): timeout 0 marks
    /// it dropped, and it expires now.
    fn drop_conn(&mut self, slot: u32, now: u64, reason: DropReason) {
        self.conns.get_mut(slot).set_timeout(0);
        self.counters.count_drop(reason);
        self.expire_now(slot, now);
    }

    /// Unlink and free a conn that controls nothing: the dropped-chain rule, dest counters.
    fn expire_conn(&mut self, slot: u32, now: u64) {
        self.unlink_conn(slot, now, false);
    }

    /// The body of expiry; `flushed` conns are not "dropped", so no chain rule and their own
    /// counter.
    fn unlink_conn(&mut self, slot: u32, now: u64, flushed: bool) {
        debug_assert_eq!(self.conns.get(slot).n_control(), 0);
        self.conns.unhash(slot);
        let c = *self.conns.get(slot);
        let control = c.control();
        if control != NIL {
            let ct = self.conns.get_mut(control);
            ct.add_n_control(false);
            // The seed patch: a dropped conn takes its controller along when nothing else uses
            // it, unless that controller is an assured template.
            if !flushed
                && c.is_dropped()
                && ct.n_control() == 0
                && !(ct.is_template() && ct.is_assured())
                && !ct.is_dropped()
            {
                let reason = if ct.is_template() {
                    DropReason::ChainTemplate
                } else {
                    DropReason::ChainConn
                };
                self.drop_conn(control, now, reason);
            }
        }
        // ip_vs_unbind_dest.
        let dest = c.dest();
        if dest != NO_DEST {
            let is_template = c.is_template();
            let ds = &mut self.dests[dest as usize];
            ds.refs -= 1;
            if is_template {
                ds.persist -= 1;
            }
            let l = self.load_mut(dest);
            if !is_template {
                if c.has(flags::INACTIVE) {
                    l.inactive = l.inactive.saturating_sub(1);
                } else {
                    l.active = l.active.saturating_sub(1);
                }
            }
            let total = l.active + l.inactive;
            if self.may_leave_overload(dest, total) {
                self.load_mut(dest).overloaded = false;
            }
            self.publish_load(dest);
            let ds = &self.dests[dest as usize];
            if ds.refs == 0 && ds.svc == NIL {
                self.free_dest(dest);
            }
        }
        if c.is_template() {
            self.counters.templates.dec();
            if c.is_assured() {
                self.counters.assured_templates.dec();
            }
        } else {
            self.counters.conns.dec();
            self.counters.conns_by_state[gauge_index(c.proto(), c.state())].dec();
        }
        if flushed {
            self.counters.flushed.inc();
        } else if c.is_dropped() {
            self.counters.expired_dropped.inc();
        } else {
            self.counters.expired.inc();
            if !c.is_template() {
                self.counters.expired_in_state[gauge_index(c.proto(), c.state())].inc();
            }
        }
        self.conns.release(slot);
        self.counters
            .free_entries
            .set(u64::from(self.conns.free_entries()));
    }

    /// `ipvsadm -C` and service/dest removal: expire the matching conns now, controlled conns
    /// before their controllers (in passes, so no timer order is relied on). Returns how many.
    pub fn flush_where(&mut self, now: u64, mut pred: impl FnMut(&Conn<A>) -> bool) -> u64 {
        let mut n = 0;
        loop {
            let mut progress = false;
            let mut blocked = false;
            for slot in 0..self.conns.capacity() {
                if !self.conns.is_live(slot) {
                    continue;
                }
                let c = self.conns.get(slot);
                if !pred(c) {
                    continue;
                }
                if c.n_control() > 0 {
                    blocked = true;
                    continue;
                }
                self.unlink_conn(slot, now, true);
                n += 1;
                progress = true;
            }
            if !blocked || !progress {
                break;
            }
        }
        self.counters
            .free_entries
            .set(u64::from(self.conns.free_entries()));
        n
    }

    /// `ipvsadm -C`: every conn and template.
    pub fn flush(&mut self, now: u64) -> u64 {
        self.flush_where(now, |_| true)
    }

    // ----- defense -----

    /// Once a second: recompute the defense levels and run the drop_entry scan.
    fn defense_tick(&mut self, now: u64) {
        let free = self.conns.free_entries();
        let low = self.low_watermark();
        self.defense.update(&self.cfg.sysctl, free, low);
        let c = &self.counters;
        c.defense_drop_entry.set(u64::from(self.defense.drop_entry));
        c.defense_drop_packet_rate
            .set(u64::from(self.defense.drop_rate));
        c.defense_secure_tcp.set(u64::from(self.defense.secure_tcp));
        c.defense_nomem.set(u64::from(self.defense.nomem));
        c.free_entries.set(u64::from(free));
        if self.defense.drop_entry_active() {
            self.random_dropentry(now);
        }
        // Dropped conns expire now, before the next packet.
        self.run_timers(now);
    }

    /// ip_vs_random_dropentry: visit a contiguous run of 1/32 of the index buckets from a
    /// random start (as the newest kernels do: each conn has exactly a 1/32 chance a second).
    fn random_dropentry(&mut self, now: u64) {
        let buckets = self.conns.buckets();
        let run = (buckets >> self.scan_shift).max(1);
        let start = self.rng.below(buckets as u64) as usize;
        self.counters.scans.inc();
        let mut visited = 0u64;
        for k in 0..run {
            // The bucket count is not a power of two (see `ConnTable`): wrap by subtraction.
            let b = start + k;
            let b = if b >= buckets { b - buckets } else { b };
            let Some(slot) = self.conns.bucket_slot(b) else {
                continue;
            };
            visited += 1;
            let c = self.conns.get(slot);
            if c.n_control() > 0 || c.is_dropped() {
                continue;
            }
            let (timeout, expires, in_pkts) = (c.timeout(), self.conns.expires(slot), c.in_pkts());
            let mut todrop = || self.defense.todrop_entry(timeout, expires, in_pkts, now);
            let reason = if c.is_template() {
                let ops = self.dests.get(c.dest() as usize).is_some_and(|d| {
                    d.svc != NIL && self.cfg.services.get(d.svc as usize).is_some_and(|s| s.ops)
                });
                if ops {
                    if !todrop() {
                        continue;
                    }
                } else if c.is_assured() {
                    continue;
                }
                DropReason::DropEntryTemplate
            } else {
                let drop = match c.proto() {
                    6 => match tcp::TcpState::from_u8(c.state()) {
                        Some(tcp::TcpState::SynRecv | tcp::TcpState::SynAck) => true,
                        Some(tcp::TcpState::Established) => todrop(),
                        _ => false,
                    },
                    132 => match sctp::SctpState::from_u8(c.state()) {
                        Some(sctp::SctpState::Init1 | sctp::SctpState::Init) => true,
                        Some(sctp::SctpState::Established) => todrop(),
                        _ => false,
                    },
                    _ => todrop(),
                };
                if !drop {
                    continue;
                }
                DropReason::DropEntryConn
            };
            self.drop_conn(slot, now, reason);
        }
        self.counters.scan_visited.add(visited);
    }

    /// Every live conn (control paths: listings, checks).
    pub fn conns(&self) -> impl Iterator<Item = ConnInfo<A>> + '_ {
        self.conns.live_slots().map(move |s| self.info(s))
    }

    /// The live conns in slots `from..from + n` (a page of a listing: the caller bounds the
    /// work done between two bursts by `n`), and the slot after the range (None: the end).
    pub fn conns_in(
        &self,
        from: u32,
        n: u32,
    ) -> (impl Iterator<Item = (u32, ConnInfo<A>)> + '_, Option<u32>) {
        let cap = self.conns.capacity();
        let end = from.saturating_add(n).min(cap);
        let next = (end < cap).then_some(end);
        let it = (from.min(end)..end)
            .filter(move |&s| self.conns.is_live(s))
            .map(move |s| (s, self.info(s)));
        (it, next)
    }
}

/// is_new_conn_expected: a closing conn hit by a new SYN is rescheduled (not if controlled).
fn is_new_conn_expected<A: Family>(c: &Conn<A>, conn_reuse_mode: u8) -> bool {
    if c.control() != NIL {
        return false;
    }
    match c.proto() {
        6 => {
            let s = c.state();
            s == tcp::TcpState::TimeWait as u8
                || s == tcp::TcpState::Close as u8
                || (conn_reuse_mode & 2 != 0
                    && s == tcp::TcpState::FinWait as u8
                    && c.has(flags::NOOUTPUT))
        }
        132 => c.state() == sctp::SctpState::Closed as u8,
        _ => false,
    }
}

/// The inbound lookup key of a packet (client -> VIP).
#[inline]
fn in_key<A: Family>(pkt: &Packet<A>) -> ConnKey<A> {
    ConnKey {
        proto: pkt.proto,
        caddr: pkt.saddr,
        cport: pkt.sport,
        addr: pkt.daddr,
        port: pkt.dport,
        template: false,
    }
}

/// The outbound key of a packet: a reply from a dest (its source) to a client (its
/// destination).
#[inline]
fn out_key<A: Family>(pkt: &Packet<A>) -> ConnKey<A> {
    ConnKey {
        proto: pkt.proto,
        caddr: pkt.daddr,
        cport: pkt.dport,
        addr: pkt.saddr,
        port: pkt.sport,
        template: false,
    }
}

/// Index into `Counters::conns_by_state`.
#[inline]
fn gauge_index(proto: u8, state: u8) -> usize {
    match proto {
        6 => TCP_BASE + (state as usize).min(tcp::N_STATES - 1),
        132 => SCTP_BASE + (state as usize).min(sctp::N_STATES - 1),
        _ => UDP_BASE,
    }
}

/// The ESTABLISHED timeout of TCP (the plain ACK's re-arm).
#[inline(always)]
fn established_timeout<A>(cfg: &Config<A>) -> u32 {
    cfg.sysctl
        .timeouts
        .of(Proto::Tcp, tcp::TcpState::Established as u8)
}

/// What the forwarding step needs of the conn in `slot`, `c`, of the dest `d`.
#[inline(always)]
fn xmit_with<A: Family>(slot: u32, c: &Conn<A>, d: &DestSlot<A>, reply: bool) -> Xmit<A> {
    let fwd = Fwd::from_bits(c.flags());
    Xmit {
        conn: ConnRef {
            slot,
            generation: c.generation(),
        },
        reply,
        fwd,
        caddr: c.caddr(),
        cport: c.cport(),
        vaddr: c.vaddr(),
        vport: c.vport(),
        daddr: d.key.1,
        dport: c.dport_with(d.key.2),
        // Copied whatever the method (one move; a match costs more): only a tunnel reads it.
        tun: d.tun,
    }
}

/// Count a packet in a dest's cells.
#[inline(always)]
fn count(c: &DestCells, reply: bool, len: u32) {
    if reply {
        c.outpkts.inc();
        c.outbytes.add(u64::from(len));
    } else {
        c.inpkts.inc();
        c.inbytes.add(u64::from(len));
    }
}

/// Detach the dests of a service that leaves the config: each keeps its live load (IPVS's
/// trash keeps a dest's counts) and names no service; their slots go to `out`.
fn detach<A: Family>(dests: &mut [DestSlot<A>], st: &SvcState, out: &mut Vec<u32>) {
    for (&slot, &load) in st.slots.iter().zip(&st.loads) {
        let d = &mut dests[slot as usize];
        d.detached = load;
        d.svc = NIL;
        d.pos = NIL;
        out.push(slot);
    }
}

/// A dest slot as it starts in a shard: detached, no conns, its counts in `stats`'s cell for
/// `worker` (or a block of its own when the config carries none).
fn new_dest<A: Family>(
    key: DestKey<A>,
    stats: &Option<Arc<DestStats>>,
    worker: u32,
) -> DestSlot<A> {
    DestSlot {
        key,
        fwd: Fwd::Droute,
        tun: TunConfig::default(),
        svc: NIL,
        pos: NIL,
        detached: DestLoad::default(),
        persist: 0,
        u_threshold: 0,
        l_threshold: 0,
        refs: 0,
        in_use: true,
        cell: stats.as_ref().map_or(0, |s| s.cell_of(worker)),
        judged_upper: 0,
        stats: stats
            .clone()
            .unwrap_or_else(|| Arc::new(DestStats::new(1, 0, 0))),
    }
}

/// Put `slot` in a free place of `dests` (or a new one); returns its index.
fn place_dest<A: Family>(
    dests: &mut Vec<DestSlot<A>>,
    free: &mut Vec<u32>,
    slot: DestSlot<A>,
) -> u32 {
    match free.pop() {
        Some(i) => {
            dests[i as usize] = slot;
            i
        }
        None => {
            dests.push(slot);
            (dests.len() - 1) as u32
        }
    }
}

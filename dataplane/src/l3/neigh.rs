//! The neighbor table: IP -> MAC resolution (ARP for IPv4, Neighbor Discovery for IPv6), the
//! job Linux's `neigh` layer did for IPVS. Sans-IO: every call takes `now` (ms) and returns or
//! hands back what the caller must do (send a packet, send a solicitation, free a packet); the
//! table never builds or sends a frame itself.
//!
//! # States (Linux's NUD names)
//!
//! - **Incomplete**: made by the first packet to an unknown address. The caller solicits at
//!   once (broadcast ARP request / solicited-node NS), then every `retrans_ms`; packets wait
//!   in the entry's hold queue. After `max_probes` unanswered solicitations the entry fails:
//!   its held packets are dropped (counted) and it is freed. Linux keeps a FAILED entry
//!   around; the next packet restarts resolution either way, so we free the slot at once.
//! - **Reachable**: an answer to our solicitation confirmed it. Turns Stale `reachable_ms`
//!   after the last confirmation (Linux draws `reachable_time` in [0.5, 1.5] x base; we keep
//!   it exact so that tests are deterministic: the owner may jitter its parameter).
//! - **Stale**: the MAC is still used as is; the first packet sent through a Stale entry moves
//!   it to Probe.
//! - **Probe**: packets keep flowing with the cached MAC while we re-solicit, the first time
//!   one `retrans_ms` after the use, then every `retrans_ms`, `max_probes` times, then the
//!   entry fails and is freed. This folds Linux's DELAY state (5 s `delay_first_probe_time`
//!   waiting for an upper-layer confirmation, which a forwarding balancer never gets) into the
//!   first interval. Linux sends these probes unicast to the cached MAC (`ucast_solicit`):
//!   the solicit callback does not say which kind to send, but [`NeighTable::get`] returns a
//!   MAC exactly for entries past Incomplete, so the caller unicasts when it has one and
//!   broadcasts / multicasts otherwise.
//! - **Static**: added by the operator; never aged, probed, evicted or changed by the wire.
//!
//! # Learning
//!
//! [`NeighTable::learn`] takes every (IP, MAC) the wire shows us: ARP replies and requests,
//! NA and NS. Only answers to solicitations confirm reachability, and we know we asked when
//! the entry is Incomplete or Probe: those become Reachable (Incomplete ones release their
//! held packets, in order). Everything else is unsolicited and handled as Linux does with
//! `arp_accept = 0`: an unknown IP creates nothing (no entry is made from a request either,
//! where Linux's `neigh_event_ns` would make a Stale one: the first packet we send there
//! resolves it in one round trip), an existing entry takes a new MAC but turns Stale so that
//! its next use verifies it (a failover's gratuitous ARP), a same-MAC sighting changes
//! nothing, and Static entries ignore the wire. Linux's ARP `locktime` (ignore a new MAC for
//! 1 s after an update, against dueling proxy ARPs) is left out. The table is keyed by IP
//! alone (an address lives on one segment); information seen on another port than the
//! entry's is ignored, and a packet routed to an entry through another port restarts its
//! resolution on the new port (Static entries win).
//!
//! # Hold queue
//!
//! At most `hold` packets wait per entry (Linux's `unres_qlen`, default 3); the next ones are
//! handed back as [`Resolve::Dropped`] with [`NeighDrop::QueueFull`] and counted. (Linux
//! discards the oldest packet instead; refusing the newest keeps the queue FIFO and hands the
//! caller back the very buffer it passed.) The packets sit in one pool preallocated at
//! [`NeighTable::new`] with a fixed segment of `hold` slots per entry used as a ring, so
//! holding never allocates and the pool can never run dry before the entry's own limit.
//!
//! At most `held_max` packets wait in the whole table ([`NeighDrop::HeldFull`] past it, and
//! no new entry is made then). Linux has no such limit (its skbs come from the system's
//! memory); here the held packets are the caller's buffers, from a pool sized for the
//! traffic in flight, and `capacity x hold` unresolved neighbors (a flood of NAT replies to
//! made-up on-link clients makes them) would otherwise pin several times what that pool
//! spares.
//!
//! # Garbage collection
//!
//! When a new entry finds no free slot, the Stale entry that turned Stale first is evicted if
//! it has been Stale (so unused: a use moves it to Probe) for `gc_stale_ms`; otherwise the
//! packet is refused with [`NeighDrop::TableFull`]. Incomplete, Probe, Reachable and Static
//! entries are never evicted (Linux's forced GC also spares entries that are resolving).
//!
//! # Cost
//!
//! Entries sit in a slab indexed by a seeded open-addressing hash (linear probing,
//! backward-shift deletion, load <= 1/2), so `resolve`, `learn`, `get` are O(1) expected.
//! Every live entry is also on one intrusive list by state, and the lists that carry a timer
//! (probing, reachable, stale) are ordered by deadline because every entry enters them at
//! their tail with `now` as its stamp: `tick` only looks at entries that are due plus one,
//! however large the table. This needs `now` to be non-decreasing; a clock going backwards
//! only delays timers. Nothing allocates after [`NeighTable::new`], and no sequence of calls
//! panics (property-tested).

use crate::addr::Family;

/// Table parameters. Linux names: `gc_thresh3` (capacity), `unres_qlen` (hold),
/// `retrans_time_ms`, `mcast_solicit` / `ucast_solicit` (max_probes),
/// `base_reachable_time_ms`, `gc_stale_time`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighParams {
    /// Entries, fixed at creation (at least 1).
    pub capacity: u32,
    /// Packets held per unresolved entry (at least 1).
    pub hold: u8,
    /// Packets held in the whole table (at least 1).
    pub held_max: u32,
    /// Interval between solicitations (ms, at least 1).
    pub retrans_ms: u64,
    /// Solicitations before an entry fails (at least 1).
    pub max_probes: u8,
    /// Reachable -> Stale this long after the last confirmation (ms).
    pub reachable_ms: u64,
    /// A Stale entry may be evicted after this long unused (ms).
    pub gc_stale_ms: u64,
    /// Index hash seed (draw it at random: the addresses can come from the network).
    pub seed: u64,
}

impl Default for NeighParams {
    fn default() -> Self {
        NeighParams {
            capacity: 1024,
            hold: 3,
            held_max: 512,
            retrans_ms: 1000,
            max_probes: 3,
            reachable_ms: 30_000,
            gc_stale_ms: 60_000,
            seed: 0,
        }
    }
}

/// Neighbor state, as Linux's NUD states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NeighState {
    Incomplete,
    Reachable,
    Stale,
    Probe,
    Static,
}

/// What to do with a packet for a next hop.
#[must_use = "a packet handed back must be sent or freed"]
#[derive(Debug, PartialEq, Eq)]
pub enum Resolve<P> {
    /// Send now to this MAC.
    Ready([u8; 6], P),
    /// Queued until the address resolves. `solicit`: send an ARP request / NS for it now.
    Held { solicit: bool },
    /// Not queued: free it.
    Dropped(P, NeighDrop),
}

/// Why [`NeighTable::resolve`] refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NeighDrop {
    /// The entry already holds `hold` packets (Linux's `unres_discards`).
    QueueFull,
    /// No free entry and no Stale one old enough to evict.
    TableFull,
    /// The table already holds `held_max` packets.
    HeldFull,
}

/// Why an operator request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeighError {
    /// No free entry and no Stale one old enough to evict.
    Full,
    /// The address is being resolved with packets waiting: remove it first, which hands the
    /// packets back.
    Resolving,
}

impl core::fmt::Display for NeighError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NeighError::Full => "neighbor table full",
            NeighError::Resolving => "neighbor being resolved with packets held: remove it first",
        })
    }
}

impl std::error::Error for NeighError {}

/// Counters, written by the owner only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighStats {
    /// Packets answered [`Resolve::Ready`] (or `Some` by `ready`; those a caller sends by
    /// its memo of an answer are not asked about, and not counted).
    pub resolved: u64,
    /// Packets queued to wait for resolution.
    pub held: u64,
    /// Held packets handed out by `learn`.
    pub released: u64,
    /// Packets refused because their entry's queue was full.
    pub held_dropped_queue_full: u64,
    /// Packets refused because no entry could be made.
    pub table_full: u64,
    /// Packets refused because the table held `held_max`.
    pub held_dropped_limit: u64,
    /// Solicitations asked of the caller (first ones and retransmits, Probe's included).
    pub solicits: u64,
    /// Answers to our solicitations (Incomplete or Probe -> Reachable).
    pub learned: u64,
    /// Unsolicited sightings that changed an entry's MAC (it turned Stale).
    pub unsolicited_updated: u64,
    /// Sightings ignored: unknown IP, other port, Static entry, or nothing new.
    pub unsolicited_ignored: u64,
    /// Entries failed after `max_probes` unanswered solicitations.
    pub failed: u64,
    /// Held packets dropped with a failed entry.
    pub failed_dropped: u64,
    /// Reachable -> Stale transitions.
    pub aged: u64,
    /// Stale entries evicted to make room.
    pub gc: u64,
}

/// One entry as listed by [`NeighTable::entries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighInfo<A> {
    pub ip: A,
    /// All zero while Incomplete.
    pub mac: [u8; 6],
    pub port: u16,
    pub state: NeighState,
    /// Solicitations sent in the current Incomplete or Probe round.
    pub probes: u8,
    /// Packets waiting.
    pub held: u8,
    /// Last confirmation (ms; 0 if never).
    pub confirmed: u64,
    /// Last packet sent through it or queued on it (ms).
    pub used: u64,
}

#[derive(Clone, Copy)]
struct Entry<A> {
    ip: A,
    /// The list key: last solicitation (Incomplete, Probe: the next is due `retrans_ms`
    /// later; for Probe, the use that started it), last confirmation (Reachable), or when it
    /// turned Stale.
    stamp: u64,
    confirmed: u64,
    used: u64,
    mac: [u8; 6],
    port: u16,
    /// `None` while free.
    state: Option<NeighState>,
    probes: u8,
    /// Hold ring: first packet's position in the entry's pool segment, and count.
    q_head: u8,
    q_len: u8,
}

#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
}

/// The lists; each has a sentinel link at `capacity + list`.
const FREE: usize = 0;
/// Incomplete and Probe, by last solicitation.
const PROBING: usize = 1;
/// By last confirmation.
const REACHABLE: usize = 2;
/// By the time they turned Stale.
const STALE: usize = 3;
const STATIC: usize = 4;
const LISTS: usize = 5;

#[inline]
fn mix(mut h: u64) -> u64 {
    // Murmur3's 64-bit finalizer: every input bit reaches every output bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The neighbors of one family, with held packets of the caller's type `P` (an mbuf handle in
/// the shell, anything in tests).
pub struct NeighTable<A: Family, P> {
    params: NeighParams,
    entries: Box<[Entry<A>]>,
    /// `capacity` entry links, then one sentinel per list.
    links: Box<[Link]>,
    /// Each slot: high 32 bits = hash tag (also gives the home bucket), low 32 = entry + 1;
    /// 0 = empty.
    index: Box<[u64]>,
    /// `hold` slots per entry.
    pool: Box<[Option<P>]>,
    /// Packets held now (over every entry).
    held: u32,
    live: u32,
    /// Latest `now` seen, for operator calls that take none.
    clock: u64,
    /// Direct-mapped memo of recently resolved addresses -> entry, checked against the
    /// entry before use (a freed or reused entry fails the check), so `resolve` skips the
    /// index probe for the few next hops a worker sends to.
    hints: [u32; HINTS],
    /// Moves on whenever an entry may have changed its state, MAC or port (every list move
    /// and every free), so a caller's memo of an answer ([`NeighTable::ready_slot`]) holds
    /// exactly while it is unchanged. Never 0.
    generation: u64,
    pub stats: NeighStats,
}

/// Slots of the resolve memo (a power of two).
const HINTS: usize = 64;

impl<A: Family, P> NeighTable<A, P> {
    /// Allocate everything the table will ever use. Zero parameters that would stall it
    /// (capacity, hold, retrans_ms, max_probes) are raised to 1.
    #[cold]
    pub fn new(params: NeighParams) -> Self {
        let params = NeighParams {
            capacity: params.capacity.clamp(1, u32::MAX / 4),
            hold: params.hold.max(1),
            held_max: params.held_max.max(1),
            retrans_ms: params.retrans_ms.max(1),
            max_probes: params.max_probes.max(1),
            ..params
        };
        let cap = params.capacity as usize;
        let blank = Entry {
            ip: A::default(),
            stamp: 0,
            confirmed: 0,
            used: 0,
            mac: [0; 6],
            port: 0,
            state: None,
            probes: 0,
            q_head: 0,
            q_len: 0,
        };
        let mut t = NeighTable {
            params,
            entries: vec![blank; cap].into_boxed_slice(),
            links: vec![Link { prev: 0, next: 0 }; cap + LISTS].into_boxed_slice(),
            index: vec![0u64; (cap * 2).next_power_of_two()].into_boxed_slice(),
            pool: (0..cap * usize::from(params.hold)).map(|_| None).collect(),
            held: 0,
            live: 0,
            clock: 0,
            hints: [u32::MAX; HINTS],
            generation: 1,
            stats: NeighStats::default(),
        };
        for l in 0..LISTS {
            let s = (cap + l) as u32;
            t.links[cap + l] = Link { prev: s, next: s };
        }
        for slot in 0..cap as u32 {
            t.link_tail(FREE, slot);
        }
        t
    }

    pub fn params(&self) -> &NeighParams {
        &self.params
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live as usize
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Packets waiting for their neighbor's answer now.
    pub fn held(&self) -> usize {
        self.held as usize
    }

    /// Decide what to do with `pkt`, bound for next hop `ip` out of `port`.
    #[inline]
    pub fn resolve(&mut self, ip: A, port: u16, pkt: P, now: u64) -> Resolve<P> {
        if let Some(mac) = self.ready(ip, port, now) {
            return Resolve::Ready(mac, pkt);
        }
        let Some(slot) = self.find(ip) else {
            return self.miss(ip, port, pkt, now);
        };
        let e = &mut self.entries[slot as usize];
        e.used = now;
        match e.state {
            Some(NeighState::Incomplete) => self.hold(slot, port, pkt, now),
            None => self.miss(ip, port, pkt, now),
            // Routed out of another port: the address moved, resolve it there. (Every other
            // case is `ready`'s.)
            Some(_) if self.held >= self.params.held_max => self.refuse_held(pkt),
            Some(_) => {
                self.generation += 1;
                let e = &mut self.entries[slot as usize];
                e.state = Some(NeighState::Incomplete);
                e.mac = [0; 6];
                self.hold(slot, port, pkt, now)
            }
        }
    }

    /// The MAC to send to `ip` out of `port` now, when [`NeighTable::resolve`] would give
    /// `Ready` (with the same effects: use stamp, a stale entry starting its probe, the
    /// count); `None`, with nothing changed, when it would hold or solicit. The forwarding
    /// path's call: the frame stays with the caller instead of travelling through `Resolve`.
    #[inline(always)]
    pub fn ready(&mut self, ip: A, port: u16, now: u64) -> Option<[u8; 6]> {
        self.ready_slot(ip, port, now).map(|(mac, _)| mac)
    }

    /// [`NeighTable::ready`] with the entry's slot: the same answer holds, as long as
    /// [`NeighTable::generation`] is unchanged, for every later packet to `ip` out of `port`,
    /// each taken with [`NeighTable::touch`] instead.
    #[inline(always)]
    pub fn ready_slot(&mut self, ip: A, port: u16, now: u64) -> Option<([u8; 6], u32)> {
        self.clock = self.clock.max(now);
        let h = (ip.fold() ^ ip.fold() >> 29) as usize & (HINTS - 1);
        let hinted = self.hints[h];
        // The common case, with one look at one entry: the hinted entry is the next hop's,
        // static or reachable on this port. Anything else takes the whole way below.
        if let Some(e) = self.entries.get_mut(hinted as usize) {
            let usable = match e.state {
                Some(NeighState::Static) => true,
                Some(NeighState::Reachable | NeighState::Probe) => e.port == port,
                _ => false,
            };
            if usable && e.ip == ip {
                e.used = now;
                self.stats.resolved += 1;
                return Some((e.mac, hinted));
            }
        }
        self.ready_slow(ip, port, now, h)
    }

    /// Changes with any entry's state, MAC or port (see the field).
    #[inline(always)]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A packet sent at `now` through `slot` by a memo of [`NeighTable::ready_slot`]'s
    /// answer (the caller checked [`NeighTable::generation`]): the entry's use stamp. Once a
    /// millisecond is enough (the stamp's unit).
    #[inline]
    pub fn touch(&mut self, slot: u32, now: u64) {
        if let Some(e) = self.entries.get_mut(slot as usize) {
            e.used = now;
        }
    }

    /// [`NeighTable::ready`] past its common case: the hint missed, or the entry needs a
    /// state change (stale: probe it) or is not usable.
    #[inline(never)]
    fn ready_slow(&mut self, ip: A, port: u16, now: u64, h: usize) -> Option<([u8; 6], u32)> {
        let hinted = self.hints[h];
        let slot = match self.entries.get(hinted as usize) {
            Some(e) if e.ip == ip && e.state.is_some() => hinted,
            _ => {
                let slot = self.find(ip)?;
                self.hints[h] = slot;
                slot
            }
        };
        let e = &mut self.entries[slot as usize];
        match e.state {
            Some(NeighState::Static) => {}
            Some(NeighState::Reachable | NeighState::Probe) if e.port == port => {}
            Some(NeighState::Stale) if e.port == port => {
                e.state = Some(NeighState::Probe);
                e.probes = 0;
                e.stamp = now;
                self.relink(PROBING, slot);
            }
            _ => return None,
        }
        let e = &mut self.entries[slot as usize];
        e.used = now;
        self.stats.resolved += 1;
        Some((e.mac, slot))
    }

    /// Take in an (IP, MAC) seen on `port` (ARP reply or request, NA or NS; see the module
    /// doc for what is believed). Packets held for `ip` go to `out`, in arrival order.
    pub fn learn(
        &mut self,
        ip: A,
        mac: [u8; 6],
        port: u16,
        now: u64,
        out: &mut impl FnMut(P, [u8; 6]),
    ) {
        self.clock = self.clock.max(now);
        let Some(slot) = self.find(ip) else {
            self.stats.unsolicited_ignored += 1;
            return;
        };
        let e = &mut self.entries[slot as usize];
        match e.state {
            Some(NeighState::Incomplete | NeighState::Probe) if e.port == port => {
                e.state = Some(NeighState::Reachable);
                e.mac = mac;
                e.probes = 0;
                e.confirmed = now;
                e.stamp = now;
                self.relink(REACHABLE, slot);
                self.stats.learned += 1;
                while let Some(p) = self.pop(slot) {
                    self.stats.released += 1;
                    out(p, mac);
                }
            }
            Some(NeighState::Reachable | NeighState::Stale) if e.port == port && e.mac != mac => {
                e.state = Some(NeighState::Stale);
                e.mac = mac;
                e.stamp = now;
                self.relink(STALE, slot);
                self.stats.unsolicited_updated += 1;
            }
            _ => self.stats.unsolicited_ignored += 1,
        }
    }

    /// Run the timers due at `now`: solicitations to (re)send go to `solicit` (address,
    /// port), packets of entries that failed go to `dropped`; Reachable entries age to Stale.
    pub fn tick(
        &mut self,
        now: u64,
        solicit: &mut impl FnMut(A, u16),
        dropped: &mut impl FnMut(P),
    ) {
        self.clock = self.clock.max(now);
        let retrans = self.params.retrans_ms;
        while let Some(slot) = self.head(PROBING) {
            let e = &mut self.entries[slot as usize];
            if now.saturating_sub(e.stamp) < retrans {
                break;
            }
            if e.probes >= self.params.max_probes {
                self.stats.failed += 1;
                while let Some(p) = self.pop(slot) {
                    self.stats.failed_dropped += 1;
                    dropped(p);
                }
                self.free(slot);
                continue;
            }
            e.probes += 1;
            e.stamp = now;
            let (ip, port) = (e.ip, e.port);
            self.relink(PROBING, slot);
            self.stats.solicits += 1;
            solicit(ip, port);
        }
        while let Some(slot) = self.head(REACHABLE) {
            let e = &mut self.entries[slot as usize];
            if now.saturating_sub(e.stamp) < self.params.reachable_ms {
                break;
            }
            e.state = Some(NeighState::Stale);
            e.stamp = now;
            self.relink(STALE, slot);
            self.stats.aged += 1;
        }
    }

    /// Add or replace a permanent entry (`ip neigh replace ... nud permanent`). A dynamic
    /// entry for `ip` becomes static; one still resolving with packets held is refused.
    #[cold]
    pub fn add_static(&mut self, ip: A, mac: [u8; 6], port: u16) -> Result<(), NeighError> {
        let slot = match self.find(ip) {
            Some(slot) => {
                if self.entries[slot as usize].state == Some(NeighState::Incomplete) {
                    return Err(NeighError::Resolving);
                }
                slot
            }
            None => {
                let slot = self.alloc(self.clock).ok_or(NeighError::Full)?;
                self.insert(ip, slot, self.clock);
                slot
            }
        };
        let e = &mut self.entries[slot as usize];
        e.state = Some(NeighState::Static);
        e.mac = mac;
        e.port = port;
        e.probes = 0;
        self.relink(STATIC, slot);
        Ok(())
    }

    /// Delete the entry for `ip`, static or not; its held packets go to `dropped`.
    #[cold]
    pub fn remove(&mut self, ip: A, dropped: &mut impl FnMut(P)) -> bool {
        let Some(slot) = self.find(ip) else {
            return false;
        };
        while let Some(p) = self.pop(slot) {
            dropped(p);
        }
        self.free(slot);
        true
    }

    /// MAC and port for `ip` if known (any state but Incomplete).
    pub fn get(&self, ip: A) -> Option<([u8; 6], u16)> {
        let e = &self.entries[self.find(ip)? as usize];
        match e.state? {
            NeighState::Incomplete => None,
            _ => Some((e.mac, e.port)),
        }
    }

    /// Every live entry, in slot order.
    pub fn entries(&self) -> impl Iterator<Item = NeighInfo<A>> + '_ {
        self.entries.iter().filter_map(|e| {
            Some(NeighInfo {
                ip: e.ip,
                mac: e.mac,
                port: e.port,
                state: e.state?,
                probes: e.probes,
                held: e.q_len,
                confirmed: e.confirmed,
                used: e.used,
            })
        })
    }

    /// A new Incomplete entry for `ip`, holding `pkt`.
    fn miss(&mut self, ip: A, port: u16, pkt: P, now: u64) -> Resolve<P> {
        if self.held >= self.params.held_max {
            return self.refuse_held(pkt);
        }
        let Some(slot) = self.alloc(now) else {
            self.stats.table_full += 1;
            return Resolve::Dropped(pkt, NeighDrop::TableFull);
        };
        self.insert(ip, slot, now);
        let e = &mut self.entries[slot as usize];
        e.state = Some(NeighState::Incomplete);
        e.port = port;
        e.used = now;
        self.relink(PROBING, slot);
        self.hold(slot, port, pkt, now)
    }

    /// Queue `pkt` on Incomplete entry `slot`, soliciting on `port` if none was sent there yet
    /// or the last one is `retrans_ms` old (and probes remain: else `tick` fails it).
    fn hold(&mut self, slot: u32, port: u16, pkt: P, now: u64) -> Resolve<P> {
        let hold = self.params.hold;
        let e = &mut self.entries[slot as usize];
        if e.q_len >= hold {
            self.stats.held_dropped_queue_full += 1;
            return Resolve::Dropped(pkt, NeighDrop::QueueFull);
        }
        if self.held >= self.params.held_max {
            return self.refuse_held(pkt);
        }
        let e = &mut self.entries[slot as usize];
        if e.port != port {
            e.port = port;
            e.probes = 0;
        }
        let solicit = e.probes < self.params.max_probes
            && (e.probes == 0 || now.saturating_sub(e.stamp) >= self.params.retrans_ms);
        if solicit {
            e.probes += 1;
            e.stamp = now;
            self.stats.solicits += 1;
        }
        let at = (usize::from(e.q_head) + usize::from(e.q_len)) % usize::from(hold);
        e.q_len += 1;
        self.pool[slot as usize * usize::from(hold) + at] = Some(pkt);
        self.held += 1;
        self.stats.held += 1;
        if solicit {
            self.relink(PROBING, slot);
        }
        Resolve::Held { solicit }
    }

    /// Oldest packet held on `slot`.
    fn pop(&mut self, slot: u32) -> Option<P> {
        let hold = self.params.hold;
        let e = &mut self.entries[slot as usize];
        if e.q_len == 0 {
            return None;
        }
        let at = slot as usize * usize::from(hold) + usize::from(e.q_head);
        e.q_head = ((u16::from(e.q_head) + 1) % u16::from(hold)) as u8;
        e.q_len -= 1;
        self.held -= 1;
        self.pool[at].take()
    }

    /// `pkt` back: the table holds `held_max` packets.
    #[cold]
    fn refuse_held(&mut self, pkt: P) -> Resolve<P> {
        self.stats.held_dropped_limit += 1;
        Resolve::Dropped(pkt, NeighDrop::HeldFull)
    }

    /// A free entry slot, evicting the oldest Stale entry if it is old enough.
    fn alloc(&mut self, now: u64) -> Option<u32> {
        if let Some(slot) = self.head(FREE) {
            return Some(slot);
        }
        let slot = self.head(STALE)?;
        if now.saturating_sub(self.entries[slot as usize].stamp) < self.params.gc_stale_ms {
            return None;
        }
        self.free(slot);
        self.stats.gc += 1;
        Some(slot)
    }

    /// Index free slot `slot` (still on the free list) as `ip`'s, reset.
    fn insert(&mut self, ip: A, slot: u32, now: u64) {
        let h = self.hash(ip);
        let mask = self.index.len() - 1;
        let mut i = (h >> 32) as usize & mask;
        while self.index[i] != 0 {
            i = (i + 1) & mask;
        }
        self.index[i] = (h & !0xffff_ffff) | u64::from(slot + 1);
        self.entries[slot as usize] = Entry {
            ip,
            stamp: now,
            confirmed: 0,
            used: now,
            mac: [0; 6],
            port: 0,
            state: None,
            probes: 0,
            q_head: 0,
            q_len: 0,
        };
        self.live += 1;
    }

    /// Unindex `slot` and put it back on the free list (its queue must be empty).
    fn free(&mut self, slot: u32) {
        self.generation += 1;
        if let Some(i) = self.index_pos(self.entries[slot as usize].ip) {
            self.unindex(i);
        }
        self.entries[slot as usize].state = None;
        self.live -= 1;
        self.relink(FREE, slot);
    }

    #[inline]
    fn hash(&self, ip: A) -> u64 {
        mix(ip.fold() ^ self.params.seed)
    }

    #[inline]
    fn find(&self, ip: A) -> Option<u32> {
        self.index_pos(ip)
            .map(|i| (self.index[i] as u32).wrapping_sub(1))
    }

    /// Position of `ip` in the index.
    #[inline]
    fn index_pos(&self, ip: A) -> Option<usize> {
        let h = self.hash(ip);
        let tag = h >> 32;
        let mask = self.index.len() - 1;
        let mut i = tag as usize & mask;
        loop {
            let v = self.index[i];
            if v == 0 {
                return None;
            }
            if v >> 32 == tag {
                let slot = (v as u32).wrapping_sub(1) as usize;
                if self.entries.get(slot).is_some_and(|e| e.ip == ip) {
                    return Some(i);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Empty index position `i`, shifting back the entries of the run after it (no
    /// tombstones).
    fn unindex(&mut self, i: usize) {
        let mask = self.index.len() - 1;
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let v = self.index[j];
            if v == 0 {
                break;
            }
            let home = (v >> 32) as usize & mask;
            // `v` may fill the hole if the hole lies between its home and `j`.
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.index[hole] = v;
                hole = j;
            }
        }
        self.index[hole] = 0;
    }

    fn sentinel(&self, list: usize) -> u32 {
        (self.entries.len() + list) as u32
    }

    fn head(&self, list: usize) -> Option<u32> {
        let s = self.sentinel(list);
        let first = self.links[s as usize].next;
        (first != s).then_some(first)
    }

    fn link_tail(&mut self, list: usize, slot: u32) {
        let s = self.sentinel(list);
        let last = self.links[s as usize].prev;
        self.links[slot as usize] = Link {
            prev: last,
            next: s,
        };
        self.links[last as usize].next = slot;
        self.links[s as usize].prev = slot;
    }

    /// Move `slot` to the tail of `list`.
    fn relink(&mut self, list: usize, slot: u32) {
        // Every state change moves its entry between lists (or to the tail of its own).
        self.generation += 1;
        let Link { prev, next } = self.links[slot as usize];
        self.links[prev as usize].next = next;
        self.links[next as usize].prev = prev;
        self.link_tail(list, slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{V4, V6};
    use proptest::prelude::*;

    /// The list an entry in `state` belongs on.
    fn list_of(state: Option<NeighState>) -> usize {
        match state {
            None => FREE,
            Some(NeighState::Incomplete | NeighState::Probe) => PROBING,
            Some(NeighState::Reachable) => REACHABLE,
            Some(NeighState::Stale) => STALE,
            Some(NeighState::Static) => STATIC,
        }
    }

    impl<A: Family, P> NeighTable<A, P> {
        /// Every structural invariant; panics on the first broken one.
        fn check(&self) {
            let cap = self.entries.len();
            let hold = usize::from(self.params.hold);
            assert_eq!(self.pool.len(), cap * hold);
            // Each slot on exactly the list of its state, lists well linked.
            let mut seen = vec![false; cap];
            for list in 0..LISTS {
                let s = self.sentinel(list);
                let mut prev = s;
                let mut at = self.links[s as usize].next;
                while at != s {
                    assert!(!seen[at as usize], "slot on two lists");
                    seen[at as usize] = true;
                    assert_eq!(self.links[at as usize].prev, prev);
                    assert_eq!(list_of(self.entries[at as usize].state), list);
                    prev = at;
                    at = self.links[at as usize].next;
                }
                assert_eq!(self.links[s as usize].prev, prev);
            }
            assert!(seen.iter().all(|&b| b));
            // Live entries indexed, the index holding nothing else.
            let live = self.entries.iter().filter(|e| e.state.is_some()).count();
            assert_eq!(live, self.live as usize);
            assert_eq!(self.index.iter().filter(|&&v| v != 0).count(), live);
            let mut held = 0;
            for (slot, e) in self.entries.iter().enumerate() {
                let seg = &self.pool[slot * hold..(slot + 1) * hold];
                let q: Vec<bool> = (0..hold)
                    .map(|k| (k + hold - usize::from(e.q_head)) % hold < usize::from(e.q_len))
                    .collect();
                for (k, p) in seg.iter().enumerate() {
                    assert_eq!(p.is_some(), q[k], "pool slot outside its ring");
                }
                held += usize::from(e.q_len);
                match e.state {
                    None => assert_eq!(e.q_len, 0),
                    Some(st) => {
                        assert_eq!(self.find(e.ip), Some(slot as u32));
                        if st == NeighState::Incomplete {
                            assert!(e.q_len >= 1, "resolving without a packet");
                        } else {
                            assert_eq!(e.q_len, 0, "packets held on a resolved entry");
                        }
                    }
                }
            }
            let used = self.pool.iter().filter(|p| p.is_some()).count();
            assert_eq!(used, held);
            assert_eq!(self.held as usize, held);
            assert!(
                held <= self.params.held_max as usize,
                "over the table's limit"
            );
            assert_eq!(
                held + self.pool.iter().filter(|p| p.is_none()).count(),
                cap * hold
            );
        }

        fn held_packets(&self) -> usize {
            self.pool.iter().filter(|p| p.is_some()).count()
        }
    }

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    fn ip(last: u8) -> V4 {
        V4(u32::from_be_bytes([10, 0, 0, last]))
    }

    fn table(capacity: u32) -> NeighTable<V4, u32> {
        NeighTable::new(NeighParams {
            capacity,
            seed: 0x5eed,
            ..NeighParams::default()
        })
    }

    /// Run `tick`, returning the solicitations asked for and the packets dropped.
    fn tick<A: Family>(t: &mut NeighTable<A, u32>, now: u64) -> (Vec<(A, u16)>, Vec<u32>) {
        let (mut sol, mut drop) = (Vec::new(), Vec::new());
        t.tick(now, &mut |a, p| sol.push((a, p)), &mut |p| drop.push(p));
        t.check();
        (sol, drop)
    }

    fn learn<A: Family>(
        t: &mut NeighTable<A, u32>,
        a: A,
        mac: [u8; 6],
        port: u16,
        now: u64,
    ) -> Vec<(u32, [u8; 6])> {
        let mut out = Vec::new();
        t.learn(a, mac, port, now, &mut |p, m| out.push((p, m)));
        t.check();
        out
    }

    fn state<A: Family, P>(t: &NeighTable<A, P>, a: A) -> Option<NeighState> {
        t.entries().find(|e| e.ip == a).map(|e| e.state)
    }

    #[test]
    fn first_packet_is_held_and_asks_for_a_solicitation() {
        let mut t = table(8);
        assert_eq!(t.resolve(ip(1), 0, 100, 0), Resolve::Held { solicit: true });
        assert_eq!(state(&t, ip(1)), Some(NeighState::Incomplete));
        assert_eq!(t.get(ip(1)), None);
        assert_eq!((t.stats.held, t.stats.solicits), (1, 1));
        t.check();
    }

    #[test]
    fn second_packet_is_held_without_a_new_solicitation() {
        let mut t = table(8);
        assert_eq!(t.resolve(ip(1), 0, 100, 0), Resolve::Held { solicit: true });
        assert_eq!(
            t.resolve(ip(1), 0, 101, 400),
            Resolve::Held { solicit: false }
        );
        assert_eq!((t.stats.held, t.stats.solicits), (2, 1));
    }

    #[test]
    fn answer_releases_held_packets_in_order_then_sends_directly() {
        let mut t = table(8);
        let _ = t.resolve(ip(1), 0, 100, 0);
        let _ = t.resolve(ip(1), 0, 101, 10);
        assert_eq!(
            learn(&mut t, ip(1), MAC_A, 0, 20),
            vec![(100, MAC_A), (101, MAC_A)]
        );
        assert_eq!(state(&t, ip(1)), Some(NeighState::Reachable));
        assert_eq!(t.get(ip(1)), Some((MAC_A, 0)));
        assert_eq!(t.resolve(ip(1), 0, 102, 30), Resolve::Ready(MAC_A, 102));
        assert_eq!(
            (t.stats.learned, t.stats.released, t.stats.resolved),
            (1, 2, 1)
        );
    }

    #[test]
    fn solicitation_retransmits_every_second_then_fails_dropping_held_packets() {
        let mut t = table(8);
        let _ = t.resolve(ip(1), 3, 100, 0);
        let _ = t.resolve(ip(1), 3, 101, 500);
        assert_eq!(tick(&mut t, 999), (vec![], vec![]));
        assert_eq!(tick(&mut t, 1000), (vec![(ip(1), 3)], vec![]));
        assert_eq!(tick(&mut t, 1500), (vec![], vec![]));
        assert_eq!(tick(&mut t, 2000), (vec![(ip(1), 3)], vec![]));
        // Three solicitations sent: one more interval without answer fails the entry.
        assert_eq!(tick(&mut t, 3000), (vec![], vec![100, 101]));
        assert_eq!(state(&t, ip(1)), None);
        assert_eq!(
            (t.stats.solicits, t.stats.failed, t.stats.failed_dropped),
            (3, 1, 2)
        );
        // The next packet starts over.
        assert_eq!(
            t.resolve(ip(1), 3, 102, 3100),
            Resolve::Held { solicit: true }
        );
    }

    #[test]
    fn a_packet_after_the_interval_retransmits_without_waiting_for_tick() {
        let mut t = table(8);
        let _ = t.resolve(ip(1), 0, 100, 0);
        assert_eq!(
            t.resolve(ip(1), 0, 101, 1200),
            Resolve::Held { solicit: true }
        );
        // tick does not solicit again until one interval after that one.
        assert_eq!(tick(&mut t, 2000), (vec![], vec![]));
        assert_eq!(tick(&mut t, 2200), (vec![(ip(1), 0)], vec![]));
        assert_eq!(t.stats.solicits, 3);
    }

    #[test]
    fn full_hold_queue_drops_the_extra_packet_with_a_reason() {
        let mut t = table(8);
        for p in 100..103 {
            assert!(matches!(t.resolve(ip(1), 0, p, 0), Resolve::Held { .. }));
        }
        assert_eq!(
            t.resolve(ip(1), 0, 103, 1),
            Resolve::Dropped(103, NeighDrop::QueueFull)
        );
        assert_eq!(t.stats.held_dropped_queue_full, 1);
        let out = learn(&mut t, ip(1), MAC_A, 0, 2);
        assert_eq!(
            out.iter().map(|&(p, _)| p).collect::<Vec<_>>(),
            vec![100, 101, 102]
        );
    }

    #[test]
    fn the_whole_table_holds_at_most_held_max_packets() {
        let mut t: NeighTable<V4, u32> = NeighTable::new(NeighParams {
            capacity: 64,
            held_max: 5,
            ..NeighParams::default()
        });
        // Five next hops take a packet each; the sixth gets no entry, and a second packet
        // for a held one is refused by the table's limit before its own queue's.
        for i in 1..=5 {
            assert_eq!(
                t.resolve(ip(i), 0, u32::from(i), 0),
                Resolve::Held { solicit: true }
            );
        }
        assert_eq!(
            t.resolve(ip(6), 0, 6, 0),
            Resolve::Dropped(6, NeighDrop::HeldFull)
        );
        assert_eq!(
            t.resolve(ip(1), 0, 7, 0),
            Resolve::Dropped(7, NeighDrop::HeldFull)
        );
        assert_eq!((t.len(), t.held(), t.stats.held_dropped_limit), (5, 5, 2));
        t.check();
        // An answer releases its packet, and room is made again.
        assert_eq!(learn(&mut t, ip(3), MAC_A, 0, 1), vec![(3, MAC_A)]);
        assert_eq!(t.held(), 4);
        assert_eq!(t.resolve(ip(6), 0, 8, 2), Resolve::Held { solicit: true });
        // Failed entries give theirs back too (3 probes, 1 s apart).
        let mut dropped = Vec::new();
        for now in [1000, 2000, 3000] {
            dropped.extend(tick(&mut t, now).1);
        }
        assert_eq!((t.held(), t.len()), (1, 2), "dropped {dropped:?}");
    }

    #[test]
    fn full_table_refuses_new_addresses() {
        let mut t = table(2);
        let _ = t.resolve(ip(1), 0, 100, 0);
        let _ = t.resolve(ip(2), 0, 101, 0);
        assert_eq!(
            t.resolve(ip(3), 0, 102, 0),
            Resolve::Dropped(102, NeighDrop::TableFull)
        );
        assert_eq!(t.stats.table_full, 1);
        assert_eq!(t.add_static(ip(4), MAC_A, 0), Err(NeighError::Full));
        t.check();
    }

    #[test]
    fn reachable_ages_to_stale_and_a_use_reprobes_it() {
        let mut t = table(8);
        let _ = t.resolve(ip(1), 0, 100, 0);
        learn(&mut t, ip(1), MAC_A, 0, 0);
        tick(&mut t, 29_999);
        assert_eq!(state(&t, ip(1)), Some(NeighState::Reachable));
        tick(&mut t, 30_000);
        assert_eq!(state(&t, ip(1)), Some(NeighState::Stale));
        assert_eq!(t.stats.aged, 1);
        // A Stale entry still sends, and the use starts a probe one interval later.
        assert_eq!(t.resolve(ip(1), 0, 101, 40_000), Resolve::Ready(MAC_A, 101));
        assert_eq!(state(&t, ip(1)), Some(NeighState::Probe));
        assert_eq!(tick(&mut t, 40_500), (vec![], vec![]));
        assert_eq!(tick(&mut t, 41_000), (vec![(ip(1), 0)], vec![]));
        // get() has the MAC: the caller may unicast the probe.
        assert_eq!(t.get(ip(1)), Some((MAC_A, 0)));
        assert_eq!(t.resolve(ip(1), 0, 102, 41_100), Resolve::Ready(MAC_A, 102));
        learn(&mut t, ip(1), MAC_A, 0, 41_200);
        assert_eq!(state(&t, ip(1)), Some(NeighState::Reachable));
        assert_eq!(t.stats.learned, 2);
    }

    #[test]
    fn unanswered_probe_fails_the_entry() {
        let mut t = table(8);
        let _ = t.resolve(ip(1), 0, 100, 0);
        learn(&mut t, ip(1), MAC_A, 0, 0);
        tick(&mut t, 30_000);
        let _ = t.resolve(ip(1), 0, 101, 30_000);
        let mut sent = 0;
        for now in (31_000..=34_000).step_by(1000) {
            sent += tick(&mut t, now).0.len();
        }
        assert_eq!(sent, 3);
        assert_eq!(state(&t, ip(1)), None);
        assert_eq!((t.stats.failed, t.stats.failed_dropped), (1, 0));
    }

    #[test]
    fn static_entries_never_age_and_ignore_the_wire() {
        let mut t = table(8);
        t.add_static(ip(1), MAC_A, 2).unwrap();
        for now in (0..=600_000).step_by(10_000) {
            assert_eq!(tick(&mut t, now), (vec![], vec![]));
        }
        learn(&mut t, ip(1), MAC_B, 2, 600_000);
        assert_eq!(state(&t, ip(1)), Some(NeighState::Static));
        assert_eq!(
            t.resolve(ip(1), 2, 100, 600_001),
            Resolve::Ready(MAC_A, 100)
        );
        assert_eq!(t.get(ip(1)), Some((MAC_A, 2)));
    }

    #[test]
    fn stale_entries_are_collected_only_when_room_is_needed_and_old_enough() {
        let mut t = table(2);
        for (i, p) in [(1, 100), (2, 101)] {
            let _ = t.resolve(ip(i), 0, p, 0);
            learn(&mut t, ip(i), MAC_A, 0, 0);
        }
        tick(&mut t, 30_000);
        assert_eq!(state(&t, ip(1)), Some(NeighState::Stale));
        // Stale for 30 s only: kept, the new address is refused.
        assert_eq!(
            t.resolve(ip(3), 0, 102, 60_000),
            Resolve::Dropped(102, NeighDrop::TableFull)
        );
        // Nothing is collected while there is room to spare.
        tick(&mut t, 200_000);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.resolve(ip(3), 0, 103, 200_000),
            Resolve::Held { solicit: true }
        );
        assert_eq!(t.stats.gc, 1);
        assert_eq!(state(&t, ip(1)), None);
        assert_eq!(state(&t, ip(2)), Some(NeighState::Stale));
        t.check();
    }

    #[test]
    fn unsolicited_answers_create_nothing_but_move_existing_entries() {
        let mut t = table(8);
        learn(&mut t, ip(1), MAC_A, 0, 0);
        assert_eq!(t.len(), 0);
        let _ = t.resolve(ip(2), 0, 100, 0);
        learn(&mut t, ip(2), MAC_A, 0, 0);
        // Same MAC seen again: nothing new, no confirmation.
        learn(&mut t, ip(2), MAC_A, 0, 10);
        assert_eq!(t.entries().next().map(|e| e.confirmed), Some(0));
        // Another port's sighting is not ours.
        learn(&mut t, ip(2), MAC_B, 1, 20);
        assert_eq!(t.get(ip(2)), Some((MAC_A, 0)));
        // A new MAC (failover) is taken, but stale until verified.
        learn(&mut t, ip(2), MAC_B, 0, 30);
        assert_eq!(t.get(ip(2)), Some((MAC_B, 0)));
        assert_eq!(state(&t, ip(2)), Some(NeighState::Stale));
        assert_eq!(
            (t.stats.unsolicited_ignored, t.stats.unsolicited_updated),
            (3, 1)
        );
    }

    #[test]
    fn a_route_to_another_port_restarts_resolution_there() {
        let mut t = table(8);
        let _ = t.resolve(ip(1), 0, 100, 0);
        learn(&mut t, ip(1), MAC_A, 0, 0);
        assert_eq!(
            t.resolve(ip(1), 1, 101, 10),
            Resolve::Held { solicit: true }
        );
        assert_eq!(state(&t, ip(1)), Some(NeighState::Incomplete));
        assert_eq!(learn(&mut t, ip(1), MAC_B, 1, 20), vec![(101, MAC_B)]);
        assert_eq!(t.get(ip(1)), Some((MAC_B, 1)));
    }

    #[test]
    fn static_entry_is_refused_while_resolving_until_removed() {
        let mut t = table(8);
        let _ = t.resolve(ip(1), 0, 100, 0);
        assert_eq!(t.add_static(ip(1), MAC_A, 0), Err(NeighError::Resolving));
        let mut dropped = Vec::new();
        assert!(t.remove(ip(1), &mut |p| dropped.push(p)));
        assert_eq!(dropped, vec![100]);
        t.add_static(ip(1), MAC_A, 0).unwrap();
        assert_eq!(t.resolve(ip(1), 0, 101, 1), Resolve::Ready(MAC_A, 101));
        assert!(t.remove(ip(1), &mut |_| {}));
        assert!(!t.remove(ip(1), &mut |_| {}));
        assert!(t.is_empty());
        t.check();
    }

    #[test]
    fn ipv6_neighbors_resolve_the_same_way() {
        let mut t: NeighTable<V6, u32> = NeighTable::new(NeighParams::default());
        let a = V6::from_ip("fe80::1".parse().unwrap()).unwrap();
        assert_eq!(t.resolve(a, 0, 7, 0), Resolve::Held { solicit: true });
        assert_eq!(learn(&mut t, a, MAC_A, 0, 5), vec![(7, MAC_A)]);
        assert_eq!(t.resolve(a, 0, 8, 6), Resolve::Ready(MAC_A, 8));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Resolve(u8, u16),
        Ready(u8, u16),
        Learn(u8, u8, u16),
        Tick,
        Static(u8, u8, u16),
        Remove(u8),
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..12, 0u16..2).prop_map(|(i, p)| Op::Resolve(i, p)),
            2 => (0u8..12, 0u16..2).prop_map(|(i, p)| Op::Ready(i, p)),
            2 => (0u8..12, 0u8..3, 0u16..2).prop_map(|(i, m, p)| Op::Learn(i, m, p)),
            2 => Just(Op::Tick),
            1 => (0u8..12, 0u8..3, 0u16..2).prop_map(|(i, m, p)| Op::Static(i, m, p)),
            1 => (0u8..12).prop_map(Op::Remove),
            3 => (0u64..40_000).prop_map(Op::Wait),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any sequence of calls keeps the table consistent and every packet accounted for:
        /// each one handed in comes back exactly once (sent, released, dropped) or is still
        /// held, and held packets of one address come out in arrival order. And a memo of
        /// `ready_slot`'s answer is right while the generation it was taken at lasts.
        #[test]
        fn no_sequence_panics_or_loses_packets(
            capacity in 1u32..8,
            hold in 0u8..4,
            held_max in 0u32..12,
            retrans in 0u64..3000,
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let mut t: NeighTable<V4, u32> = NeighTable::new(NeighParams {
                capacity,
                hold,
                held_max,
                retrans_ms: retrans,
                reachable_ms: 20_000,
                gc_stale_ms: 30_000,
                ..NeighParams::default()
            });
            let mut now = 0u64;
            let mut next_pkt = 0u32;
            let mut outstanding = std::collections::BTreeSet::new();
            let mut done = std::collections::BTreeSet::new();
            // (address, port) -> (MAC, slot, generation) of `ready_slot`'s last answer.
            let mut memo = std::collections::BTreeMap::new();
            let mut finish = |p: u32, outstanding: &mut std::collections::BTreeSet<u32>| {
                assert!(outstanding.remove(&p), "packet {p} came back twice or never went in");
                assert!(done.insert(p));
            };
            for op in ops {
                match op {
                    Op::Resolve(i, port) => {
                        let pkt = next_pkt;
                        next_pkt += 1;
                        outstanding.insert(pkt);
                        match t.resolve(ip(i), port, pkt, now) {
                            Resolve::Ready(_, p) | Resolve::Dropped(p, _) => finish(p, &mut outstanding),
                            Resolve::Held { .. } => {}
                        }
                    }
                    Op::Learn(i, m, port) => {
                        let mut last = None;
                        t.learn(ip(i), [2, 0, 0, 0, 0, m], port, now, &mut |p, _| {
                            assert!(last < Some(p), "released out of order");
                            last = Some(p);
                            finish(p, &mut outstanding);
                        });
                    }
                    Op::Tick => t.tick(now, &mut |_, _| {}, &mut |p| finish(p, &mut outstanding)),
                    Op::Static(i, m, port) => {
                        let _ = t.add_static(ip(i), [2, 0, 0, 0, 0, m], port);
                    }
                    Op::Remove(i) => {
                        t.remove(ip(i), &mut |p| finish(p, &mut outstanding));
                    }
                    Op::Ready(i, port) => {
                        if let Some((mac, slot)) = t.ready_slot(ip(i), port, now) {
                            memo.insert((i, port), (mac, slot, t.generation()));
                        }
                    }
                    Op::Wait(dt) => now += dt,
                }
                t.check();
                for (&(i, port), &(mac, slot, generation)) in &memo {
                    if generation == t.generation() {
                        prop_assert_eq!(t.ready_slot(ip(i), port, now), Some((mac, slot)));
                        prop_assert_eq!(t.generation(), generation);
                    }
                }
                prop_assert_eq!(t.held_packets(), outstanding.len());
                prop_assert!(t.len() <= capacity as usize);
            }
        }
    }
}

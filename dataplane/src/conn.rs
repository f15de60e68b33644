//! The connection table of one shard: a preallocated slab of fixed-size conn entries (the
//! appliance's "memory") and an open-addressing index on the flow tuple.
//!
//! Entries are addressed by slot; a [`ConnRef`] adds the slot's generation so that stale
//! references are detected. The index hashes the client side of a flow only
//! (proto, caddr, cport), as IPVS does, so that both the inbound lookup (client -> VIP) and the
//! outbound one (dest -> client, NAT replies) find the same entry; templates also hash their
//! VIP side because their client port is always 0. Linear probing with backward-shift deletion:
//! no tombstones, so the table never degrades. Nothing here allocates after [`ConnTable::new`].

use crate::addr::Family;
use crate::mem::prefetch_read;

/// Most keys [`ConnTable::lookup_burst`] takes at once (an rx burst).
pub const BURST: usize = 32;

/// "No slot": an empty `control`, `dest` or free-list link.
pub const NIL: u32 = u32::MAX;

/// Conn flags (IPVS's `IP_VS_CONN_F_*` that matter here, in our own bit layout).
pub mod flags {
    /// Forwarding method, two bits: see [`crate::config::Fwd`].
    pub const FWD_MASK: u16 = 0x0003;
    /// A persistence template ("this client group goes to this dest").
    pub const TEMPLATE: u16 = 0x0004;
    /// One-packet scheduling (UDP OPS): the conn lives only for its packet.
    pub const ONE_PACKET: u16 = 0x0008;
    /// The LB sees only the inbound direction (DR, TUN).
    pub const NOOUTPUT: u16 = 0x0010;
    /// Counted in the dest's inactive conns (else active; templates: persist).
    pub const INACTIVE: u16 = 0x0020;
    /// Template state bit ASSURED: it once controlled an established TCP conn (or saw a UDP
    /// reply, or an established SCTP association). Kept for the template's life.
    pub const ASSURED: u16 = 0x0040;
    /// Present in the index (a conn can be unhashed yet alive: an invalidated template or a
    /// rescheduled controller still waiting for its controlled conns).
    pub const HASHED: u16 = 0x0080;
    /// Client port unknown (IPVS NO_CPORT); kept for the FTP-style chains.
    pub const NO_CPORT: u16 = 0x0100;
    /// Waiting in the timer wheel's due list to be expired now.
    pub const EXPIRING: u16 = 0x0200;
}

/// One connection or template. Field order keeps an IPv4 entry at exactly one cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub struct Conn<A: Family> {
    /// Deadline (ms). Packets only move it (lazy timer); the wheel re-files on firing.
    pub expires: u64,
    pub caddr: A,
    pub vaddr: A,
    pub daddr: A,
    /// Current timeout (ms). 0 means "dropped by the defense" (the seed patch's marker).
    pub timeout: u32,
    /// Inbound packets seen (IPVS `in_pkts`), for todrop_entry and conn reuse.
    pub in_pkts: u32,
    /// Slot of the controlling conn (template or control conn), or NIL.
    pub control: u32,
    /// Number of conns this one controls.
    pub n_control: u32,
    /// Dest slot in the shard's dest table, or NIL.
    pub dest: u32,
    /// Bumped every time the slot is freed; with the slot it makes a [`ConnRef`].
    pub generation: u32,
    /// Free-list link while free.
    pub next_free: u32,
    pub cport: u16,
    pub vport: u16,
    pub dport: u16,
    pub flags: u16,
    /// IP protocol number (6, 17, 132; 0 for firewall-mark templates as IPVS's IPPROTO_IP).
    pub proto: u8,
    /// Protocol state (`TcpState`, `SctpState` as u8; 0 for UDP and templates).
    pub state: u8,
}

const _: () = assert!(core::mem::size_of::<Conn<crate::addr::V4>>() == 64);
const _: () = assert!(core::mem::size_of::<Conn<crate::addr::V6>>() == 128);

impl<A: Family> Conn<A> {
    /// Whether this entry is the conn `k` names, seen from `side`.
    #[inline]
    pub fn matches(&self, k: &ConnKey<A>, side: Side) -> bool {
        let other = match side {
            Side::In => (self.vaddr, self.vport),
            Side::Out => (self.daddr, self.dport),
        };
        self.caddr == k.caddr
            && self.cport == k.cport
            && self.proto == k.proto
            && other == (k.addr, k.port)
            && self.is_template() == k.template
    }

    #[inline]
    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }
    #[inline]
    pub fn is_assured(&self) -> bool {
        self.flags & flags::ASSURED != 0
    }
    #[inline]
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
    /// Dropped by the defense: expires with the dropped-chain rule.
    #[inline]
    pub fn is_dropped(&self) -> bool {
        self.timeout == 0
    }
}

/// A conn handle that survives slot reuse checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnRef {
    pub slot: u32,
    pub generation: u32,
}

/// The lookup key of a flow: both directions hash on the client side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnKey<A> {
    pub proto: u8,
    pub caddr: A,
    pub cport: u16,
    /// VIP side for inbound lookups and templates; dest side for outbound lookups.
    pub addr: A,
    pub port: u16,
    pub template: bool,
}

/// Which address/port of an entry `ConnKey::addr/port` is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Client -> VIP (and template lookups).
    In,
    /// Dest -> client (NAT replies).
    Out,
}

#[inline]
fn mix(mut h: u64) -> u64 {
    // Murmur3's 64-bit finalizer: every input bit reaches every output bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Index hash of a flow: proto, caddr, cport; templates add their VIP side (their cport is 0,
/// so without it every template of one client group would share a probe run).
#[inline]
pub fn flow_hash<A: Family>(
    seed: u64,
    proto: u8,
    caddr: A,
    cport: u16,
    tpl: Option<(A, u16)>,
) -> u64 {
    let mut h = seed ^ caddr.fold().wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= (u64::from(proto) << 16 | u64::from(cport)).wrapping_mul(0xA24B_AED4_963E_E407);
    if let Some((vaddr, vport)) = tpl {
        h = mix(h) ^ vaddr.fold() ^ (u64::from(vport) << 40) ^ 0x5bd1_e995;
    }
    mix(h)
}

/// No hint for [`ConnTable::lookup_hinted`].
pub const NO_HINT: u32 = u32::MAX;

/// Most conn entries one table holds: the index packs slot, displacement and a fingerprint of
/// at least 4 bits into 32 bits.
pub const MAX_CAPACITY: u32 = (1 << 24) - 1;

/// Bits of an index entry that hold the distance from its home bucket; the top value means
/// "this far or further" (the home is then recomputed from the entry).
const DISP_BITS: u32 = 4;
const DISP_MAX: u32 = (1 << DISP_BITS) - 1;

/// Preallocated slab + index. Capacity is fixed at creation.
///
/// The index is an array of u32, four times the capacity: 16 bytes per conn at any capacity,
/// and at load <= 1/4 probe runs stay short for misses too (new conns, replies). An index
/// entry is, from the top: a fingerprint of the flow hash, then
/// (from bit `slot_bits`) the distance from its home bucket, saturating at [`DISP_MAX`], then
/// the slot + 1; 0 = empty. The home bucket of hash `h` is `(h as u32 * buckets) >> 32`
/// (no power-of-two rounding, so the index is exactly as big as it needs to be).
pub struct ConnTable<A: Family> {
    slab: Box<[Conn<A>]>,
    index: Box<[u32]>,
    /// `index.len()`.
    buckets: u32,
    slot_bits: u32,
    slot_mask: u32,
    /// The fingerprint bits of an entry (the top bits of the u32).
    fp_mask: u32,
    free_head: u32,
    free: u32,
    seed: u64,
}

impl<A: Family> ConnTable<A> {
    /// A table of `capacity` entries (1..=[`MAX_CAPACITY`], clamped) with an index at load
    /// <= 1/4.
    pub fn new(capacity: u32, seed: u64) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        Self::with_layout(capacity, capacity.saturating_mul(4).max(64), 32, seed)
    }

    /// The table with an explicit bucket count (> `capacity`) and at most `fp_bits` of
    /// fingerprint: tests use few buckets and short fingerprints to force long probe runs,
    /// saturated displacements and fingerprint collisions.
    fn with_layout(capacity: u32, buckets: u32, fp_bits: u32, seed: u64) -> Self {
        debug_assert!(capacity <= MAX_CAPACITY && buckets > capacity);
        let mut slab = crate::mem::huge_slice(capacity as usize, Conn::<A>::default());
        for (i, c) in slab.iter_mut().enumerate() {
            c.next_free = if i + 1 < capacity as usize {
                i as u32 + 1
            } else {
                NIL
            };
            c.control = NIL;
            c.dest = NIL;
        }
        // slot + 1 runs 1..=capacity.
        let slot_bits = 32 - capacity.leading_zeros();
        let fp_bits = (32 - slot_bits - DISP_BITS).min(fp_bits);
        ConnTable {
            slab,
            index: crate::mem::huge_slice(buckets as usize, 0u32),
            buckets,
            slot_bits,
            slot_mask: (1 << slot_bits) - 1,
            fp_mask: if fp_bits == 0 {
                0
            } else {
                !0 << (32 - fp_bits)
            },
            free_head: 0,
            free: capacity,
            seed: mix(seed | 1),
        }
    }

    #[inline]
    pub fn capacity(&self) -> u32 {
        self.slab.len() as u32
    }
    #[inline]
    pub fn free_entries(&self) -> u32 {
        self.free
    }
    #[inline]
    pub fn len(&self) -> u32 {
        self.capacity() - self.free
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Index buckets (the unit the drop_entry scan visits 1/32 of).
    #[inline]
    pub fn buckets(&self) -> usize {
        self.index.len()
    }
    /// Bytes of the index (the part a lookup wants cache-resident).
    pub fn index_bytes(&self) -> usize {
        self.index.len() * core::mem::size_of::<u32>()
    }
    /// Bytes of table memory per conn entry of capacity (slab + index).
    pub fn bytes_per_entry(&self) -> usize {
        core::mem::size_of::<Conn<A>>() + self.index_bytes() / self.slab.len()
    }

    /// The entry in `slot`, if the slab has one (free or not): for hints, which may be stale.
    #[inline]
    pub fn try_get(&self, slot: u32) -> Option<&Conn<A>> {
        self.slab.get(slot as usize)
    }
    #[inline]
    pub fn get(&self, slot: u32) -> &Conn<A> {
        &self.slab[slot as usize]
    }
    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> &mut Conn<A> {
        &mut self.slab[slot as usize]
    }
    /// Two distinct entries at once (a conn and its controller).
    pub fn pair_mut(&mut self, a: u32, b: u32) -> (&mut Conn<A>, &mut Conn<A>) {
        debug_assert_ne!(a, b);
        let (a, b) = (a as usize, b as usize);
        if a < b {
            let (x, y) = self.slab.split_at_mut(b);
            (&mut x[a], &mut y[0])
        } else {
            let (x, y) = self.slab.split_at_mut(a);
            (&mut y[0], &mut x[b])
        }
    }
    #[inline]
    pub fn conn_ref(&self, slot: u32) -> ConnRef {
        ConnRef {
            slot,
            generation: self.slab[slot as usize].generation,
        }
    }
    /// The slot of `r` if it still names the same live conn.
    #[inline]
    pub fn resolve(&self, r: ConnRef) -> Option<u32> {
        let c = self.slab.get(r.slot as usize)?;
        (c.generation == r.generation && c.next_free == NIL - 1).then_some(r.slot)
    }
    #[inline]
    pub fn is_live(&self, slot: u32) -> bool {
        self.slab
            .get(slot as usize)
            .is_some_and(|c| c.next_free == NIL - 1)
    }

    /// Take a free entry, reset to `init` (which must not be hashed yet). `None`: table full.
    #[inline]
    pub fn alloc(&mut self, init: Conn<A>) -> Option<u32> {
        let slot = self.free_head;
        if slot == NIL {
            return None;
        }
        let e = &mut self.slab[slot as usize];
        self.free_head = e.next_free;
        let generation = e.generation;
        *e = init;
        e.generation = generation;
        // Live entries carry NIL-1 in next_free: a cheap liveness test for scans and refs.
        e.next_free = NIL - 1;
        e.flags &= !flags::HASHED;
        self.free -= 1;
        Some(slot)
    }

    /// Return an entry (already unhashed) to the free list.
    #[inline]
    pub fn release(&mut self, slot: u32) {
        let e = &mut self.slab[slot as usize];
        debug_assert!(e.flags & flags::HASHED == 0);
        e.generation = e.generation.wrapping_add(1);
        e.next_free = self.free_head;
        e.flags = 0;
        e.n_control = 0;
        e.control = NIL;
        e.dest = NIL;
        self.free_head = slot;
        self.free += 1;
    }

    #[inline]
    fn hash_of_entry(&self, c: &Conn<A>) -> u64 {
        let tpl = c.is_template().then_some((c.vaddr, c.vport));
        flow_hash(self.seed, c.proto, c.caddr, c.cport, tpl)
    }

    #[inline]
    fn key_hash(&self, k: &ConnKey<A>) -> u64 {
        let tpl = k.template.then_some((k.addr, k.port));
        flow_hash(self.seed, k.proto, k.caddr, k.cport, tpl)
    }

    /// Home bucket of hash `h` (multiply-shift onto `0..buckets`).
    #[inline]
    fn home(&self, h: u64) -> usize {
        (((h & 0xffff_ffff) * u64::from(self.buckets)) >> 32) as usize
    }
    /// The fingerprint bits of hash `h`, in place in an entry.
    #[inline]
    fn fp(&self, h: u64) -> u32 {
        (h >> 32) as u32 & self.fp_mask
    }
    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.buckets as usize {
            0
        } else {
            i + 1
        }
    }
    /// Cyclic distance from bucket `a` forward to bucket `b`.
    #[inline]
    fn dist(&self, a: usize, b: usize) -> u32 {
        if b >= a {
            (b - a) as u32
        } else {
            (b + self.buckets as usize - a) as u32
        }
    }
    /// The slot an index entry (non-zero) names.
    #[inline]
    fn slot_of(&self, e: u32) -> u32 {
        (e & self.slot_mask).wrapping_sub(1)
    }
    #[inline]
    fn entry(&self, fp: u32, disp: u32, slot: u32) -> u32 {
        fp | disp.min(DISP_MAX) << self.slot_bits | (slot + 1)
    }
    /// The home bucket of the entry `e` stored at bucket `i`.
    #[inline]
    fn home_of_entry(&self, e: u32, i: usize) -> usize {
        let disp = (e >> self.slot_bits) & DISP_MAX;
        if disp < DISP_MAX {
            (i + self.buckets as usize - disp as usize) % self.buckets as usize
        } else {
            self.home(self.hash_of_entry(&self.slab[self.slot_of(e) as usize]))
        }
    }

    /// Put a live entry into the index.
    pub fn hash(&mut self, slot: u32) {
        let h = self.hash_of_entry(&self.slab[slot as usize]);
        let mut i = self.home(h);
        let mut disp = 0;
        // Buckets > capacity by construction, so an empty bucket always exists.
        while self.index[i] != 0 {
            i = self.next(i);
            disp += 1;
        }
        self.index[i] = self.entry(self.fp(h), disp, slot);
        self.slab[slot as usize].flags |= flags::HASHED;
    }

    /// Take a live entry out of the index (no-op if not hashed).
    pub fn unhash(&mut self, slot: u32) {
        let c = &self.slab[slot as usize];
        if c.flags & flags::HASHED == 0 {
            return;
        }
        let mut i = self.home(self.hash_of_entry(c));
        loop {
            let e = self.index[i];
            if e == 0 {
                debug_assert!(false, "hashed conn missing from index");
                return;
            }
            if e & self.slot_mask == slot + 1 {
                break;
            }
            i = self.next(i);
        }
        // Backward-shift deletion: pull later members of the run into the hole when their
        // home bucket allows it, so the index never needs tombstones.
        let mut hole = i;
        let mut j = i;
        loop {
            j = self.next(j);
            let e = self.index[j];
            if e == 0 {
                break;
            }
            let home = self.home_of_entry(e, j);
            // Move e into the hole iff its home is not cyclically in (hole, j].
            if self.dist(home, j) >= self.dist(hole, j) {
                let disp = self.dist(home, hole);
                self.index[hole] = self.entry(e & self.fp_mask, disp, self.slot_of(e));
                hole = j;
            }
        }
        self.index[hole] = 0;
        self.slab[slot as usize].flags &= !flags::HASHED;
    }

    /// Find a hashed entry matching `k` on side `side`.
    #[inline]
    pub fn lookup(&self, k: &ConnKey<A>, side: Side) -> Option<u32> {
        self.lookup_hashed(k, self.key_hash(k), side)
    }

    #[inline]
    fn lookup_hashed(&self, k: &ConnKey<A>, h: u64, side: Side) -> Option<u32> {
        let fp = self.fp(h);
        let mut i = self.home(h);
        loop {
            let e = self.index[i];
            if e == 0 {
                return None;
            }
            if e & self.fp_mask == fp {
                let slot = self.slot_of(e);
                if self.slab[slot as usize].matches(k, side) {
                    return Some(slot);
                }
            }
            i = self.next(i);
        }
    }

    /// Look up a burst of keys, overlapping their cache misses ([`Self::prefetch_burst`]),
    /// then compare. `out[i]` answers `keys[i]` (at most [`BURST`] keys).
    #[inline]
    pub fn lookup_burst(&self, keys: &[ConnKey<A>], side: Side, out: &mut [Option<u32>]) {
        let n = keys.len().min(out.len()).min(BURST);
        self.prefetch_burst(&keys[..n]);
        for (o, k) in out.iter_mut().zip(&keys[..n]) {
            *o = self.lookup(k, side);
        }
    }

    /// Warm the cache for a burst of lookups: prefetch every key's index bucket, then the
    /// entries those buckets name. The lookups that follow then hit the cache, so a burst pays
    /// its memory latency once instead of once per packet (at most [`BURST`] keys).
    #[inline]
    pub fn prefetch_burst(&self, keys: &[ConnKey<A>]) {
        let n = keys.len().min(BURST);
        let mut hashes = [0u64; BURST];
        for (h, k) in hashes.iter_mut().zip(&keys[..n]) {
            *h = self.key_hash(k);
            self.prefetch_bucket(*h);
        }
        for &h in &hashes[..n] {
            self.prefetch_entry(h);
        }
    }

    /// The index hash of a key: the handle of a staged lookup, for a caller that spreads a
    /// burst's memory latency over its own work (see the worker's `rx_burst`).
    #[inline]
    pub fn hash_of(&self, k: &ConnKey<A>) -> u64 {
        self.key_hash(k)
    }

    /// Stage 1 of a staged lookup: bring the key's home bucket toward the cache.
    #[inline]
    pub fn prefetch_bucket(&self, h: u64) {
        if let Some(e) = self.index.get(self.home(h)) {
            prefetch_read(e);
        }
    }

    /// Stage 2, a few packets later when the bucket has arrived: bring toward the cache the
    /// entry the probe run names with the key's tag (the likely match; a collision in the
    /// home bucket is skipped as the lookup will skip it), and return its slot as the hint
    /// for [`ConnTable::lookup_hinted`] ([`NO_HINT`] if none).
    #[inline]
    pub fn prefetch_entry(&self, h: u64) -> u32 {
        let fp = self.fp(h);
        let mut i = self.home(h);
        // A probe run rarely leaves the bucket's cache line at load <= 1/4.
        for _ in 0..8 {
            let Some(&e) = self.index.get(i) else {
                return NO_HINT;
            };
            if e == 0 {
                return NO_HINT;
            }
            if e & self.fp_mask == fp {
                let slot = self.slot_of(e);
                if let Some(c) = self.slab.get(slot as usize) {
                    prefetch_read(c);
                }
                return slot;
            }
            i = self.next(i);
        }
        NO_HINT
    }

    /// [`ConnTable::lookup`] that first tries `hint` (a slot from an earlier
    /// [`ConnTable::prefetch_entry`], perhaps stale): keys are unique among hashed entries,
    /// so a hashed entry with the key is the answer; otherwise the ordinary probe.
    #[inline]
    pub fn lookup_hinted(&self, k: &ConnKey<A>, side: Side, hint: u32) -> Option<u32> {
        match self.try_get(hint) {
            Some(c) if c.flags & flags::HASHED != 0 && c.matches(k, side) => Some(hint),
            _ => self.lookup(k, side),
        }
    }

    /// The slot stored in index bucket `b`, if any (for the drop_entry scan).
    #[inline]
    pub fn bucket_slot(&self, b: usize) -> Option<u32> {
        let e = *self.index.get(b)?;
        (e != 0).then(|| self.slot_of(e))
    }

    /// Every live slot, in slab order (control paths: flush, dumps, checks).
    pub fn live_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.slab
            .iter()
            .enumerate()
            .filter(|(_, c)| c.next_free == NIL - 1)
            .map(|(i, _)| i as u32)
    }
}

#[cfg(test)]
impl<A: Family> ConnTable<A> {
    /// The index invariants: every entry names a live hashed slot once, carries that slot's
    /// fingerprint and (saturated) distance from its home, and no empty bucket lies between
    /// an entry and its home (so every probe reaches it).
    fn check_index(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (i, &e) in self.index.iter().enumerate() {
            if e == 0 {
                continue;
            }
            let slot = self.slot_of(e);
            let c = self
                .slab
                .get(slot as usize)
                .ok_or(format!("bucket {i}: bad slot"))?;
            if !seen.insert(slot) || c.flags & flags::HASHED == 0 {
                return Err(format!("bucket {i}: slot {slot} twice or not hashed"));
            }
            let h = self.hash_of_entry(c);
            let d = self.dist(self.home(h), i);
            if e & self.fp_mask != self.fp(h) || (e >> self.slot_bits) & DISP_MAX != d.min(DISP_MAX)
            {
                return Err(format!("bucket {i}: fingerprint or displacement {d} wrong"));
            }
            let mut j = self.home(h);
            while j != i {
                if self.index[j] == 0 {
                    return Err(format!("bucket {i}: empty bucket {j} before it"));
                }
                j = self.next(j);
            }
        }
        let hashed = self
            .live_slots()
            .filter(|&s| self.slab[s as usize].flags & flags::HASHED != 0);
        if hashed.count() != seen.len() {
            return Err("a hashed slot is missing from the index".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::V4;
    use proptest::prelude::*;

    fn conn(caddr: u32, cport: u16, vport: u16) -> Conn<V4> {
        Conn {
            caddr: V4(caddr),
            cport,
            vaddr: V4(0x0a00_0001),
            vport,
            daddr: V4(7),
            dport: 80,
            proto: 6,
            ..Default::default()
        }
    }

    fn key_in(c: &Conn<V4>) -> ConnKey<V4> {
        ConnKey {
            proto: c.proto,
            caddr: c.caddr,
            cport: c.cport,
            addr: c.vaddr,
            port: c.vport,
            template: c.is_template(),
        }
    }

    #[test]
    fn full_table_refuses_alloc_and_recovers_after_release() {
        let mut t = ConnTable::<V4>::new(2, 1);
        let a = t.alloc(conn(1, 1, 80)).unwrap();
        let _b = t.alloc(conn(2, 1, 80)).unwrap();
        assert!(t.alloc(conn(3, 1, 80)).is_none());
        let r = t.conn_ref(a);
        t.release(a);
        assert_eq!(t.resolve(r), None, "a released slot's old ref is stale");
        assert!(t.alloc(conn(3, 1, 80)).is_some());
    }

    #[test]
    fn inbound_and_outbound_lookups_find_the_same_entry() {
        let mut t = ConnTable::<V4>::new(16, 1);
        let s = t.alloc(conn(0xc0a8_0001, 4242, 80)).unwrap();
        t.hash(s);
        let c = *t.get(s);
        assert_eq!(t.lookup(&key_in(&c), Side::In), Some(s));
        let out = ConnKey {
            proto: 6,
            caddr: c.caddr,
            cport: c.cport,
            addr: c.daddr,
            port: c.dport,
            template: false,
        };
        assert_eq!(t.lookup(&out, Side::Out), Some(s));
        assert_eq!(t.lookup(&out, Side::In), None);
    }

    proptest! {
        /// The index agrees with a model set under random inserts and deletes, including long
        /// probe runs (few distinct client addresses, many ports).
        #[test]
        fn index_matches_model(
            ops in proptest::collection::vec((any::<bool>(), 0u32..6, 0u16..64), 1..400),
            crowded in any::<bool>(),
        ) {
            // Crowded: the index almost full and 2-bit fingerprints, so probe runs are long,
            // displacements saturate and fingerprints collide all the time.
            let mut t = if crowded {
                ConnTable::<V4>::with_layout(128, 131, 2, 9)
            } else {
                ConnTable::<V4>::new(128, 9)
            };
            let mut model: std::collections::HashMap<(u32, u16), u32> = Default::default();
            for (insert, a, p) in ops {
                let c = conn(a, p, 80);
                match (insert, model.get(&(a, p)).copied()) {
                    (true, None) => {
                        if let Some(s) = t.alloc(c) { t.hash(s); model.insert((a, p), s); }
                    }
                    (false, Some(s)) => { t.unhash(s); t.release(s); model.remove(&(a, p)); }
                    _ => {}
                }
                for (&(a, p), &s) in &model {
                    prop_assert_eq!(t.lookup(&key_in(&conn(a, p, 80)), Side::In), Some(s));
                }
                prop_assert_eq!(t.len() as usize, model.len());
                prop_assert_eq!(t.check_index(), Ok(()));
            }
            for a in 0..6u32 { for p in 0..64u16 {
                let k = key_in(&conn(a, p, 80));
                let want = t.lookup(&k, Side::In);
                if !model.contains_key(&(a, p)) {
                    prop_assert_eq!(want, None);
                }
                // A staged lookup's hint, or any stale slot, gives the plain lookup's answer.
                let staged = t.prefetch_entry(t.hash_of(&k));
                for hint in [staged, NO_HINT, 0, 1, 63, 127, 200] {
                    prop_assert_eq!(t.lookup_hinted(&k, Side::In, hint), want);
                }
            }}
        }
    }
}

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

/// Most keys [`ConnTable::lookup_burst`] takes at once, and the frames `Worker::rx_burst`
/// stages together (rvsd's rx burst).
pub const BURST: usize = 64;

/// "No slot": an empty `control` or free-list link, a missing hint.
pub const NIL: u32 = u32::MAX;

/// "No dest" in an entry's 24-bit dest field (free entries; a live conn always has a dest).
pub const NO_DEST: u32 = (1 << 24) - 1;

/// Most dest slots a shard can name from a conn entry (its dest field has 24 bits).
pub const MAX_DEST_SLOTS: u32 = NO_DEST;

/// Longest timeout (protocol or persistence) a conn can be armed with, ms: ipvsadm's largest
/// `-p` (31 days). A deadline is kept in 32 bits relative to the table's clock (see
/// [`ConnTable::expires`]), which leaves room for this and for packets whose `now` runs up
/// to 18 days ahead of the last tick.
pub const MAX_TIMEOUT_MS: u32 = 31 * 86_400_000;

/// How far before the table's clock a stored deadline may lie (a packet with a stale `now`,
/// a timer not run yet): 2^26 ms, 18.6 h. Older deadlines are stored as this bound (they are
/// due either way).
const PAST_MS: u64 = 1 << 26;

/// Conn flags (IPVS's `IP_VS_CONN_F_*` that matter here, in our own bit layout). They take the
/// low 9 bits of the entry's flag word; `in_pkts` has the rest.
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
    /// The conn's dest port is its own vport, not its dest's: a conn to a dest of port 0, a
    /// persistent service's conn to another port, a template of a port-zero or FTP service
    /// (vport 0, so dport 0). The dest address and, without this flag, the dest port come
    /// from the dest slot.
    pub const OWN_DPORT: u16 = 0x0100;
    /// Every flag bit.
    pub const ALL: u16 = 0x01ff;
}

/// `in_pkts` in the flag word, above the flags (7 bits, saturating).
const PKTS_SHIFT: u32 = 9;
const PKTS_MAX: u16 = 0x7f;
/// The link word: dest slot (24 bits) | control link (27 bits) | generation (13 bits).
const DEST_MASK: u64 = NO_DEST as u64;
const CTL_SHIFT: u32 = 24;
const CTL_BITS: u32 = 27;
const CTL_MASK: u32 = (1 << CTL_BITS) - 1;
/// "No control link" in the 27-bit control field.
const CTL_NIL: u32 = CTL_MASK;
const GEN_SHIFT: u32 = CTL_SHIFT + CTL_BITS;
/// Width of a slot's generation: a [`ConnRef`] sees slot reuse until the slot has been reused
/// 8192 times.
pub const GENERATION_BITS: u32 = 64 - GEN_SHIFT;
const GEN_MASK: u32 = (1 << GENERATION_BITS) - 1;

/// One connection or template: 32 bytes for IPv4, 64 for IPv6 (asserted below), so that an
/// entry never straddles a cache line. Only what a conn cannot find elsewhere is here: the
/// dest's address and port come from the dest slot ([`flags::OWN_DPORT`] says when the port
/// is the conn's own), the deadline is 32 bits relative to the table's clock, and one field
/// is the control link of a conn or the controlled count of a template (IPVS's `control` and
/// `n_control`: only templates control conns here). Free entries chain the free list through
/// that field. Fields are private; the accessors below keep the packing in one place, and
/// [`ConnInfo`] is the decoded form for the control paths and tests.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
pub struct Conn<A: Family> {
    caddr: A,
    vaddr: A,
    cport: u16,
    vport: u16,
    /// Deadline (ms), low 32 bits: see [`ConnTable::expires`]. Packets only move it (lazy
    /// timer); the wheel re-files on firing.
    expires: u32,
    /// Dest slot (24 bits, [`NO_DEST`] when free) | control link (a conn's controlling
    /// template slot) or controlled count (a template's `n_control`) or free-list link (27
    /// bits) | generation (13 bits).
    link: u64,
    /// Current timeout (ms). 0 means "dropped by the defense" (the seed patch's marker).
    timeout: u32,
    /// [`flags`] (9 bits) | `in_pkts` (7 bits).
    flags: u16,
    /// IP protocol number (6, 17, 132; 0 for firewall-mark templates as IPVS's IPPROTO_IP).
    proto: u8,
    /// Protocol state (`TcpState`, `SctpState` as u8; 0 for UDP and templates).
    state: u8,
}

const _: () = assert!(core::mem::size_of::<Conn<crate::addr::V4>>() == 32);
const _: () = assert!(core::mem::size_of::<Conn<crate::addr::V6>>() == 64);

impl<A: Family> Conn<A> {
    /// A new conn or template (not hashed, generation 0, `in_pkts` 0, no control link).
    pub fn new(p: ConnParam<A>, dest: u32, flags: u16, timeout: u32) -> Self {
        let ConnParam {
            proto,
            caddr,
            cport,
            vaddr,
            vport,
        } = p;
        debug_assert!(dest < NO_DEST);
        // A template's control field counts its conns, a conn's links its template.
        let ctl = if flags & flags::TEMPLATE != 0 {
            0
        } else {
            CTL_NIL
        };
        Conn {
            caddr,
            vaddr,
            cport,
            vport,
            expires: 0,
            link: u64::from(dest) & DEST_MASK | u64::from(ctl) << CTL_SHIFT,
            timeout,
            flags: flags & flags::ALL,
            proto,
            state: 0,
        }
    }

    /// A free entry.
    fn free() -> Self {
        Conn {
            caddr: A::default(),
            vaddr: A::default(),
            cport: 0,
            vport: 0,
            expires: 0,
            link: u64::from(NO_DEST) | u64::from(CTL_NIL) << CTL_SHIFT,
            timeout: 0,
            flags: 0,
            proto: 0,
            state: 0,
        }
    }

    #[inline(always)]
    pub fn caddr(&self) -> A {
        self.caddr
    }
    #[inline(always)]
    pub fn vaddr(&self) -> A {
        self.vaddr
    }
    #[inline(always)]
    pub fn cport(&self) -> u16 {
        self.cport
    }
    #[inline(always)]
    pub fn vport(&self) -> u16 {
        self.vport
    }
    #[inline(always)]
    pub fn proto(&self) -> u8 {
        self.proto
    }
    #[inline(always)]
    pub fn state(&self) -> u8 {
        self.state
    }
    #[inline(always)]
    pub fn set_state(&mut self, s: u8) {
        self.state = s;
    }
    /// The [`flags`].
    #[inline(always)]
    pub fn flags(&self) -> u16 {
        self.flags & flags::ALL
    }
    #[inline(always)]
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
    #[inline(always)]
    pub fn set_flags(&mut self, f: u16) {
        self.flags |= f & flags::ALL;
    }
    #[inline(always)]
    pub fn clear_flags(&mut self, f: u16) {
        self.flags &= !(f & flags::ALL);
    }
    #[inline(always)]
    pub fn toggle_flags(&mut self, f: u16) {
        self.flags ^= f & flags::ALL;
    }
    #[inline(always)]
    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }
    #[inline(always)]
    pub fn is_assured(&self) -> bool {
        self.flags & flags::ASSURED != 0
    }
    /// Current timeout (ms); 0: dropped by the defense.
    #[inline(always)]
    pub fn timeout(&self) -> u32 {
        self.timeout
    }
    #[inline(always)]
    pub fn set_timeout(&mut self, t: u32) {
        self.timeout = t;
    }
    /// Dropped by the defense: expires with the dropped-chain rule.
    #[inline(always)]
    pub fn is_dropped(&self) -> bool {
        self.timeout == 0
    }
    /// The dest slot ([`NO_DEST`] for a free entry).
    #[inline(always)]
    pub fn dest(&self) -> u32 {
        (self.link & DEST_MASK) as u32
    }
    /// Inbound packets seen (IPVS `in_pkts`), saturating at 127: only todrop_entry reads it,
    /// and it tells 1..8 from more.
    #[inline(always)]
    pub fn in_pkts(&self) -> u32 {
        u32::from(self.flags >> PKTS_SHIFT)
    }
    #[inline(always)]
    pub fn count_in_pkt(&mut self) {
        if self.flags < PKTS_MAX << PKTS_SHIFT {
            self.flags += 1 << PKTS_SHIFT;
        }
    }
    #[inline(always)]
    fn ctl(&self) -> u32 {
        (self.link >> CTL_SHIFT) as u32 & CTL_MASK
    }
    #[inline(always)]
    fn set_ctl(&mut self, v: u32) {
        debug_assert!(v <= CTL_MASK);
        self.link = self.link & !(u64::from(CTL_MASK) << CTL_SHIFT) | u64::from(v) << CTL_SHIFT;
    }
    /// The controlling conn's slot (a template), or [`NIL`]; always [`NIL`] for a template.
    #[inline]
    pub fn control(&self) -> u32 {
        match self.ctl() {
            _ if self.is_template() => NIL,
            CTL_NIL => NIL,
            s => s,
        }
    }
    /// Link a conn (not a template) to its controlling template's slot.
    #[inline]
    pub fn set_control(&mut self, slot: u32) {
        debug_assert!(!self.is_template() && slot < CTL_NIL);
        self.set_ctl(slot);
    }
    /// How many conns this one controls: a template's `n_control`, 0 for a conn.
    #[inline]
    pub fn n_control(&self) -> u32 {
        if self.is_template() {
            self.ctl()
        } else {
            0
        }
    }
    /// A template's `n_control` up or down by one.
    #[inline]
    pub fn add_n_control(&mut self, up: bool) {
        debug_assert!(self.is_template());
        let n = self.ctl();
        self.set_ctl(if up { n + 1 } else { n - 1 });
    }
    /// The slot's generation (bumped each time the slot is freed).
    #[inline(always)]
    pub fn generation(&self) -> u32 {
        (self.link >> GEN_SHIFT) as u32
    }
    #[inline]
    fn set_generation(&mut self, g: u32) {
        let m = u64::from(GEN_MASK) << GEN_SHIFT;
        self.link = self.link & !m | u64::from(g & GEN_MASK) << GEN_SHIFT;
    }
    #[inline]
    fn ctl_link(&self) -> u32 {
        match self.ctl() {
            CTL_NIL => NIL,
            s => s,
        }
    }
    #[inline]
    fn set_ctl_link(&mut self, s: u32) {
        self.set_ctl(s & CTL_MASK);
    }
    #[inline(always)]
    fn is_live(&self) -> bool {
        self.link & DEST_MASK != DEST_MASK
    }

    /// Whether this hashed-or-not entry has the client side of `k` (proto, caddr, cport) and
    /// its template bit.
    #[inline(always)]
    pub fn matches_client(&self, k: &ConnKey<A>) -> bool {
        self.caddr == k.caddr
            && self.cport == k.cport
            && self.proto == k.proto
            && self.is_template() == k.template
    }
    /// Whether this entry is the conn `k` names inbound (client -> VIP, and templates).
    #[inline(always)]
    pub fn matches_in(&self, k: &ConnKey<A>) -> bool {
        self.matches_client(k) && self.vaddr == k.addr && self.vport == k.port
    }
    /// A packet's visit: the timeout, the deadline `now + timeout` and, for an inbound
    /// packet, `in_pkts`. Whether the deadline moved earlier (the owner then files it again).
    #[inline(always)]
    pub fn refresh(&mut self, timeout: u32, now: u64, w: Window, inbound: bool) -> bool {
        let deadline = now + u64::from(timeout);
        let earlier = deadline < widen(self.expires, w.0);
        // A later deadline is in the window (it is after a stored one); only an earlier one
        // may need the clamp of a stale `now`.
        self.expires = if earlier {
            narrow(deadline, w.0)
        } else {
            deadline as u32
        };
        self.timeout = timeout;
        if inbound {
            self.count_in_pkt();
        }
        earlier
    }
    /// The conn's dest port given its dest's port.
    #[inline(always)]
    pub fn dport_with(&self, dest_port: u16) -> u16 {
        if self.has(flags::OWN_DPORT) {
            self.vport
        } else {
            dest_port
        }
    }
}

/// The window stored deadlines are read in (see [`ConnTable::expires`]), taken from the table
/// by [`ConnTable::window`] for a caller that holds an entry.
#[derive(Clone, Copy, Debug)]
pub struct Window(u64);

/// A conn decoded, with its dest's address and port and its absolute deadline: what listings,
/// checks and tests read ([`crate::shard::Shard::conns`]). The field names are the entry's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo<A> {
    pub proto: u8,
    pub caddr: A,
    pub cport: u16,
    pub vaddr: A,
    pub vport: u16,
    pub daddr: A,
    pub dport: u16,
    pub state: u8,
    pub flags: u16,
    pub timeout: u32,
    /// Deadline, ms.
    pub expires: u64,
    pub in_pkts: u32,
    /// Slot of the controlling template, or [`NIL`].
    pub control: u32,
    pub n_control: u32,
    pub dest: u32,
}

impl<A> ConnInfo<A> {
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
    #[inline]
    pub fn is_dropped(&self) -> bool {
        self.timeout == 0
    }
}

/// The full deadline of a stored one: the one in `[base, base + 2^32)`, where `base` is the
/// table's clock less [`PAST_MS`].
#[inline(always)]
fn widen(lo: u32, base: u64) -> u64 {
    base + u64::from(lo.wrapping_sub(base as u32))
}

/// The stored form of a deadline (see [`widen`]); one older than the window is stored as its
/// start (due either way).
#[inline(always)]
fn narrow(deadline: u64, base: u64) -> u32 {
    debug_assert!(
        deadline < base + (1 << 32),
        "deadline beyond the 32-bit window"
    );
    deadline.max(base) as u32
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

/// What a new conn or template is for (IPVS's `ip_vs_conn_param`): protocol, client
/// address and port, virtual address and port (a template's client address is the masked
/// network, its ports 0 or the service's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnParam<A> {
    pub proto: u8,
    pub caddr: A,
    pub cport: u16,
    pub vaddr: A,
    pub vport: u16,
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

/// Most conn entries one table holds (a node of two workers holds 100M+ conns): the index
/// packs slot + 1 (27 bits at most), displacement and a fingerprint of at least 2 bits into
/// 32 bits.
pub const MAX_CAPACITY: u32 = 1 << 26;

/// Index buckets per entry of capacity, in halves: 3.5 buckets an entry, so the index is at
/// load <= 2/7, 14 bytes a conn. At that load a hit probes 1.2 buckets and a miss 1.5 on
/// average (linear probing), nearly always within the home bucket's cache line of 16; the 4
/// buckets an entry this had before saved 0.03 of a probe on a hit and 0.1 on a miss, for 2
/// more bytes a conn.
const HALF_BUCKETS_PER_ENTRY: u64 = 7;

/// Bits of an index entry that hold the distance from its home bucket; the top value means
/// "this far or further" (the home is then recomputed from the entry). Runs of 7 or more are
/// rare at load 2/7; the bits left go to the fingerprint.
const DISP_BITS: u32 = 3;
const DISP_MAX: u32 = (1 << DISP_BITS) - 1;

/// How an index entry of a table of `capacity` entries is cut: the bits of slot + 1 (which runs
/// 1..=capacity; 0 is an empty bucket), and the mask of the fingerprint (the top bits, at most
/// `fp_bits`, whatever the slot and the displacement leave).
fn index_layout(capacity: u32, fp_bits: u32) -> (u32, u32) {
    let slot_bits = 32 - capacity.leading_zeros();
    let fp_bits = (32 - slot_bits - DISP_BITS).min(fp_bits);
    let fp_mask = if fp_bits == 0 {
        0
    } else {
        !0 << (32 - fp_bits)
    };
    (slot_bits, fp_mask)
}

/// Preallocated slab + index. Capacity is fixed at creation.
///
/// The index is an array of u32, 3.5 times the capacity ([`HALF_BUCKETS_PER_ENTRY`]): 14 bytes
/// per conn at any capacity, and at load <= 2/7 probe runs stay short for misses too (new
/// conns, replies). An index
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
    /// The owner's clock (ms, never backwards): stored deadlines are 32 bits relative to it.
    clock: u64,
    /// `clock - PAST_MS` (saturating): the start of the stored deadlines' window.
    base: u64,
}

impl<A: Family> ConnTable<A> {
    /// A table of `capacity` entries (1..=[`MAX_CAPACITY`], clamped) with an index at load
    /// <= 2/7, its clock at `now`.
    pub fn new(capacity: u32, seed: u64, now: u64) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        Self::with_layout(capacity, Self::buckets_for(capacity), 32, seed, now)
    }

    /// The table with an explicit bucket count (> `capacity`) and at most `fp_bits` of
    /// fingerprint: tests use few buckets and short fingerprints to force long probe runs,
    /// saturated displacements and fingerprint collisions.
    fn with_layout(capacity: u32, buckets: u32, fp_bits: u32, seed: u64, now: u64) -> Self {
        debug_assert!(capacity <= MAX_CAPACITY && buckets > capacity);
        let mut slab = crate::mem::huge_slice(capacity as usize, Conn::<A>::free());
        for (i, c) in slab.iter_mut().enumerate() {
            c.set_ctl_link(if i + 1 < capacity as usize {
                i as u32 + 1
            } else {
                NIL
            });
        }
        let (slot_bits, fp_mask) = index_layout(capacity, fp_bits);
        ConnTable {
            slab,
            index: crate::mem::huge_slice(buckets as usize, 0u32),
            buckets,
            slot_bits,
            slot_mask: (1 << slot_bits) - 1,
            fp_mask,
            free_head: 0,
            free: capacity,
            seed: mix(seed | 1),
            clock: now,
            base: now.saturating_sub(PAST_MS),
        }
    }

    #[inline]
    pub fn capacity(&self) -> u32 {
        self.slab.len() as u32
    }
    /// Slots of the table: entries are named by slot, `0..slots()` (the timers cover them).
    #[inline]
    pub fn slots(&self) -> u32 {
        self.slab.len() as u32
    }
    /// The slots of a table made for `capacity` entries.
    pub fn slots_for(capacity: u32) -> u32 {
        capacity.clamp(1, MAX_CAPACITY)
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
    /// Bytes of the table (slab and index).
    pub fn bytes(&self) -> usize {
        core::mem::size_of_val(&*self.slab) + core::mem::size_of_val(&*self.index)
    }
    /// Bytes [`ConnTable::new`] takes for `capacity` entries.
    pub fn bytes_for(capacity: u32) -> usize {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        capacity as usize * core::mem::size_of::<Conn<A>>()
            + Self::buckets_for(capacity) as usize * core::mem::size_of::<u32>()
    }
    /// Index buckets of a table of `capacity` entries (already clamped).
    fn buckets_for(capacity: u32) -> u32 {
        (u64::from(capacity) * HALF_BUCKETS_PER_ENTRY / 2).max(64) as u32
    }

    /// Move the clock the stored deadlines are relative to (never backwards).
    #[inline]
    pub fn advance_clock(&mut self, now: u64) {
        if now > self.clock {
            self.clock = now;
            self.base = now.saturating_sub(PAST_MS);
        }
    }
    /// The table's clock.
    #[inline]
    pub fn clock(&self) -> u64 {
        self.clock
    }
    /// An entry's deadline (ms). Stored in 32 bits, it is the one in
    /// `[clock - 18.6 h, clock + 49.7 days - 18.6 h)`: a live conn's deadline is at most
    /// [`MAX_TIMEOUT_MS`] after the `now` that set it, and is run by the owner's timers within a
    /// second of coming due.
    #[inline(always)]
    pub fn expires(&self, slot: u32) -> u64 {
        widen(self.slab[slot as usize].expires, self.base)
    }
    /// Set an entry's deadline (ms); whether it moved earlier.
    #[inline(always)]
    pub fn set_expires(&mut self, slot: u32, deadline: u64) -> bool {
        let base = self.base;
        let e = &mut self.slab[slot as usize];
        let earlier = deadline < widen(e.expires, base);
        e.expires = narrow(deadline, base);
        earlier
    }
    /// A packet's visit to the entry in `slot` ([`Conn::refresh`]); whether the deadline
    /// moved earlier.
    #[inline(always)]
    pub fn refresh(&mut self, slot: u32, timeout: u32, now: u64, inbound: bool) -> bool {
        let w = self.window();
        self.slab[slot as usize].refresh(timeout, now, w, inbound)
    }
    /// Where stored deadlines stand now, for [`Conn::refresh`] on an entry the caller holds.
    #[inline(always)]
    pub fn window(&self) -> Window {
        Window(self.base)
    }

    /// The entry in `slot`, if the slab has one (free or not): for hints, which may be stale.
    #[inline]
    pub fn try_get(&self, slot: u32) -> Option<&Conn<A>> {
        self.slab.get(slot as usize)
    }
    /// [`ConnTable::try_get`], to change the entry (the owner's fast path).
    #[inline]
    pub fn try_get_mut(&mut self, slot: u32) -> Option<&mut Conn<A>> {
        self.slab.get_mut(slot as usize)
    }
    #[inline]
    pub fn get(&self, slot: u32) -> &Conn<A> {
        &self.slab[slot as usize]
    }
    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> &mut Conn<A> {
        &mut self.slab[slot as usize]
    }
    #[inline]
    pub fn conn_ref(&self, slot: u32) -> ConnRef {
        ConnRef {
            slot,
            generation: self.slab[slot as usize].generation(),
        }
    }
    /// The slot of `r` if it still names the same live conn.
    #[inline]
    pub fn resolve(&self, r: ConnRef) -> Option<u32> {
        let c = self.slab.get(r.slot as usize)?;
        (c.generation() == r.generation && c.is_live()).then_some(r.slot)
    }
    #[inline]
    pub fn is_live(&self, slot: u32) -> bool {
        self.slab.get(slot as usize).is_some_and(Conn::is_live)
    }

    /// Take a free entry, set to `init` (made by [`Conn::new`]) with the deadline `expires`.
    /// `None`: table full.
    #[inline]
    pub fn alloc(&mut self, init: Conn<A>, expires: u64) -> Option<u32> {
        debug_assert!(init.is_live() && !init.has(flags::HASHED));
        let slot = self.free_head;
        if slot == NIL {
            return None;
        }
        let base = self.base;
        let e = &mut self.slab[slot as usize];
        self.free_head = e.ctl_link();
        let generation = e.generation();
        *e = init;
        e.set_generation(generation);
        e.expires = narrow(expires, base);
        self.free -= 1;
        Some(slot)
    }

    /// Return an entry (already unhashed) to the free list.
    #[inline]
    pub fn release(&mut self, slot: u32) {
        let head = self.free_head;
        let e = &mut self.slab[slot as usize];
        debug_assert!(!e.has(flags::HASHED));
        let generation = e.generation().wrapping_add(1);
        *e = Conn::free();
        e.set_generation(generation);
        e.set_ctl_link(head);
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
        self.slab[slot as usize].set_flags(flags::HASHED);
    }

    /// Take a live entry out of the index (no-op if not hashed).
    pub fn unhash(&mut self, slot: u32) {
        let c = &self.slab[slot as usize];
        if !c.has(flags::HASHED) {
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
        self.slab[slot as usize].clear_flags(flags::HASHED);
    }

    /// Find the hashed entry of the inbound key `k` (client -> VIP, and templates).
    #[inline(always)]
    pub fn lookup(&self, k: &ConnKey<A>) -> Option<u32> {
        self.find(self.key_hash(k), |c| c.matches_in(k))
    }

    /// The first hashed entry in the probe run of `h` for which `is` holds (the caller's
    /// complete match: inbound, or outbound through the dest slot).
    #[inline]
    pub fn find(&self, h: u64, mut is: impl FnMut(&Conn<A>) -> bool) -> Option<u32> {
        let fp = self.fp(h);
        let mut i = self.home(h);
        loop {
            let e = self.index[i];
            if e == 0 {
                return None;
            }
            if e & self.fp_mask == fp {
                let slot = self.slot_of(e);
                if is(&self.slab[slot as usize]) {
                    return Some(slot);
                }
            }
            i = self.next(i);
        }
    }

    /// Look up a burst of inbound keys, overlapping their cache misses
    /// ([`Self::prefetch_burst`]), then compare. `out[i]` answers `keys[i]` (at most [`BURST`]
    /// keys).
    #[inline]
    pub fn lookup_burst(&self, keys: &[ConnKey<A>], out: &mut [Option<u32>]) {
        let n = keys.len().min(out.len()).min(BURST);
        self.prefetch_burst(&keys[..n]);
        for (o, k) in out.iter_mut().zip(&keys[..n]) {
            *o = self.lookup(k);
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
        // A probe run rarely leaves the bucket's cache line at load <= 2/7.
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
    pub fn lookup_hinted(&self, k: &ConnKey<A>, hint: u32) -> Option<u32> {
        match self.try_get(hint) {
            Some(c) if c.has(flags::HASHED) && c.matches_in(k) => Some(hint),
            _ => self.lookup(k),
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
            .filter(|(_, c)| c.is_live())
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
            if !seen.insert(slot) || !c.has(flags::HASHED) {
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
            .filter(|&s| self.slab[s as usize].has(flags::HASHED));
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
        let p = ConnParam {
            proto: 6,
            caddr: V4(caddr),
            cport,
            vaddr: V4(0x0a00_0001),
            vport,
        };
        Conn::new(p, 7, 0, 60_000)
    }

    fn key_in(c: &Conn<V4>) -> ConnKey<V4> {
        ConnKey {
            proto: c.proto(),
            caddr: c.caddr(),
            cport: c.cport(),
            addr: c.vaddr(),
            port: c.vport(),
            template: c.is_template(),
        }
    }

    #[test]
    fn full_table_refuses_alloc_and_recovers_after_release() {
        let mut t = ConnTable::<V4>::new(2, 1, 0);
        let a = t.alloc(conn(1, 1, 80), 10).unwrap();
        let _b = t.alloc(conn(2, 1, 80), 10).unwrap();
        assert!(t.alloc(conn(3, 1, 80), 10).is_none());
        let r = t.conn_ref(a);
        t.release(a);
        assert_eq!(t.resolve(r), None, "a released slot's old ref is stale");
        assert!(t.alloc(conn(3, 1, 80), 10).is_some());
    }

    fn param(proto: u8, cport: u16, vport: u16) -> ConnParam<V4> {
        ConnParam {
            proto,
            caddr: V4(1),
            cport,
            vaddr: V4(3),
            vport,
        }
    }

    #[test]
    fn a_conn_keeps_its_fields_in_32_bytes() {
        let mut c = Conn::<V4>::new(param(17, 2, 4), NO_DEST - 1, flags::NOOUTPUT, 9);
        c.set_generation((1 << GENERATION_BITS) - 1);
        c.set_control(CTL_NIL - 1);
        for _ in 0..300 {
            c.count_in_pkt();
        }
        c.set_flags(flags::ASSURED);
        c.clear_flags(flags::ASSURED);
        c.set_state(11);
        c.toggle_flags(flags::INACTIVE);
        assert_eq!(
            (c.proto(), c.caddr(), c.cport(), c.vaddr(), c.vport()),
            (17, V4(1), 2, V4(3), 4)
        );
        assert_eq!(
            (c.dest(), c.in_pkts(), c.control(), c.n_control()),
            (NO_DEST - 1, 127, CTL_NIL - 1, 0)
        );
        assert_eq!(
            (c.state(), c.flags(), c.timeout()),
            (11, flags::NOOUTPUT | flags::INACTIVE, 9)
        );
        assert_eq!(c.generation(), (1 << GENERATION_BITS) - 1);
        let mut t = Conn::<V4>::new(param(0, 0, 0), 5, flags::TEMPLATE | flags::OWN_DPORT, 9);
        t.add_n_control(true);
        t.add_n_control(true);
        assert_eq!((t.n_control(), t.control(), t.dport_with(80)), (2, NIL, 0));
        let u = Conn::<V4>::new(param(6, 0, 80), 5, flags::TEMPLATE, 9);
        assert_eq!((u.n_control(), u.dport_with(8080)), (0, 8080));
        assert_eq!(c.dport_with(80), 80);
        c.set_flags(flags::OWN_DPORT);
        assert_eq!(c.dport_with(80), 4);
    }

    #[test]
    fn deadlines_are_exact_across_the_32_bit_window() {
        let mut t = ConnTable::<V4>::new(4, 1, 0);
        for clock in [
            0u64,
            1 << 26,
            (1 << 32) - 5,
            3 << 33,
            u64::from(u32::MAX) * 7,
        ] {
            t.advance_clock(clock);
            let s = t.alloc(conn(1, 1, 80), clock).unwrap();
            for d in [
                clock,
                clock + 1,
                clock + u64::from(MAX_TIMEOUT_MS) + (1 << 30),
            ] {
                t.set_expires(s, d);
                assert_eq!(t.expires(s), d);
            }
            // A deadline from a stale `now` an hour back, and one older than the window.
            if clock > 1 << 27 {
                t.set_expires(s, clock - 3_600_000);
                assert_eq!(t.expires(s), clock - 3_600_000);
                t.set_expires(s, clock - (1 << 27));
                assert_eq!(t.expires(s), clock - PAST_MS);
            }
            t.release(s);
        }
    }

    #[test]
    fn inbound_lookups_find_hashed_entries_only() {
        let mut t = ConnTable::<V4>::new(16, 1, 0);
        let s = t.alloc(conn(0xc0a8_0001, 4242, 80), 10).unwrap();
        let k = key_in(t.get(s));
        assert_eq!(t.lookup(&k), None);
        t.hash(s);
        assert_eq!(t.lookup(&k), Some(s));
        let h = t.hash_of(&k);
        assert_eq!(
            t.find(h, |c| c.matches_client(&k) && c.dest() == 7),
            Some(s)
        );
        assert_eq!(t.find(h, |c| c.matches_client(&k) && c.dest() == 8), None);
        t.unhash(s);
        assert_eq!(t.lookup(&k), None);
    }

    #[test]
    fn the_largest_table_packs_its_last_slot_with_a_fingerprint() {
        let (slot_bits, fp_mask) = index_layout(MAX_CAPACITY, 32);
        assert!(fp_mask.count_ones() >= 2, "{fp_mask:#x}");
        let slot_mask = (1u32 << slot_bits) - 1;
        let disp_mask = DISP_MAX << slot_bits;
        assert_eq!(fp_mask & disp_mask, 0);
        assert_eq!(fp_mask | disp_mask | slot_mask, u32::MAX);
        // The last slot, the longest displacement and a full fingerprint come back apart.
        let e = fp_mask | disp_mask | MAX_CAPACITY;
        assert_eq!((e & slot_mask).wrapping_sub(1), MAX_CAPACITY - 1);
        assert_eq!((e >> slot_bits) & DISP_MAX, DISP_MAX);
        assert_eq!(e & fp_mask, fp_mask);
        // And the table is as large as its index can name (the timers too).
        assert_eq!(ConnTable::<V4>::slots_for(u32::MAX), MAX_CAPACITY);
        assert!(u64::from(MAX_CAPACITY) * HALF_BUCKETS_PER_ENTRY / 2 < 1 << 32);
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
                ConnTable::<V4>::with_layout(128, 131, 2, 9, 0)
            } else {
                ConnTable::<V4>::new(128, 9, 0)
            };
            let mut model: std::collections::HashMap<(u32, u16), u32> = Default::default();
            for (insert, a, p) in ops {
                let c = conn(a, p, 80);
                match (insert, model.get(&(a, p)).copied()) {
                    (true, None) => {
                        if let Some(s) = t.alloc(c, 10) { t.hash(s); model.insert((a, p), s); }
                    }
                    (false, Some(s)) => { t.unhash(s); t.release(s); model.remove(&(a, p)); }
                    _ => {}
                }
                for (&(a, p), &s) in &model {
                    prop_assert_eq!(t.lookup(&key_in(&conn(a, p, 80))), Some(s));
                }
                prop_assert_eq!(t.len() as usize, model.len());
                prop_assert_eq!(t.check_index(), Ok(()));
            }
            for a in 0..6u32 { for p in 0..64u16 {
                let k = key_in(&conn(a, p, 80));
                let want = t.lookup(&k);
                if !model.contains_key(&(a, p)) {
                    prop_assert_eq!(want, None);
                }
                // A staged lookup's hint, or any stale slot, gives the plain lookup's answer.
                let staged = t.prefetch_entry(t.hash_of(&k));
                for hint in [staged, NO_HINT, 0, 1, 63, 127, 200] {
                    prop_assert_eq!(t.lookup_hinted(&k, hint), want);
                }
            }}
        }
    }
}

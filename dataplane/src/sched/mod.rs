//! IPVS schedulers (`ipvsadm -s`): which dest a new connection goes to.
//!
//! | name | rule (kernel file `net/netfilter/ipvs/ip_vs_<name>.c`) |
//! |---|---|
//! | rr | the next available dest after the last one picked, in list order |
//! | wrr | round robin in passes of decreasing current weight, stepped by the gcd of the weights |
//! | lc | least overhead, `active * 256 + inactive` (weight only gates availability) |
//! | wlc | least `overhead / weight` (the default) |
//! | sed | least `(active + 1) / weight` |
//! | nq | the first idle (no active conn) dest, else as sed |
//! | sh | a 256-bucket table tiled by weight, indexed by a hash of the client address (sh-port: and port); sh-fallback rehashes past unavailable dests |
//! | dh | a 256-bucket table, one bucket per dest in turn, indexed by a hash of the packet's destination address |
//! | mh | Maglev: a 65521-slot table filled by each dest's offset/skip permutation, weights as turns; indexed by a hash of the client address (mh-port: and port); mh-fallback rehashes |
//! | lblc | per destination address, the remembered dest until it is overloaded (`active > weight` while another dest is under half its weight), then wlc's pick |
//! | lblcr | as lblc with a set of dests per destination address: the least loaded member, growing by wlc's pick, shrinking after 24 h unchanged |
//! | fo | the available dest with the highest weight |
//! | ovf | the highest weight among available dests with `active <= weight` |
//! | twos | two random dests drawn by weight; the one with less overhead per weight |
//!
//! A dest is *available* when its weight is above 0 (weight 0 is quiescent: no new
//! connections) and it is not overloaded. "Overloaded" is IPVS's `IP_VS_DEST_F_OVERLOAD`:
//! over its upper connection threshold, with the hysteresis of the lower one; the caller
//! computes it and passes it in [`DestLoad::overloaded`]. Ties go to the dest met first in
//! list order. Where a scheduler's own rule differs (sh/dh/mh without fallback return none
//! when the hashed dest is unavailable; lblc reuses a remembered dest whatever its threshold
//! flag; ovf skips dests with more active conns than weight), the scheduler's docs say so.
//!
//! # Model
//! The control thread builds [`SchedTables`] (immutable: sh/dh buckets, the mh lookup table,
//! wrr's gcd and top weight) from the service's [`DestIdent`] list; every shard reads them.
//! Each shard owns a [`SchedState`] (rr/wrr cursor, lblc/lblcr table, twos's random
//! generator), allocated up front so that [`schedule`] never allocates. When dests are
//! added, removed or reweighted, the control thread builds new tables and each shard a new
//! state: cursors restart at the list head and lblc/lblcr tables start empty.
//!
//! Dest order is the list order IPVS iterates, which is newest first (the kernel adds a dest
//! at the head of `svc->destinations`); a control plane that wants the kernel's exact
//! sequences and tables passes the dests in that order, the same order in [`DestIdent`]s
//! and [`DestLoad`]s.
//!
//! # Per-shard approximation
//! IPVS keeps one `activeconns` / `inactconns` per dest for the whole machine, and one
//! scheduler state per service. Here each shard counts only its own connections, and runs
//! its own cursor, lblc table and random generator. With flows spread evenly across shards
//! (RSS) every shard sees about `1/N` of the load and balances it the kernel's way, so the
//! sum follows the kernel's policy, but:
//! - lc/wlc/sed/nq/twos compare per-shard counts, so two shards may pick the same dest at
//!   once where the kernel would have seen the first pick;
//! - rules that compare counts with weights in absolute terms (ovf's `active <= weight`,
//!   lblc's `active > weight`) see one shard's counts: machine-wide a dest may take up to
//!   about `N * weight` active conns before ovf overflows it;
//! - rr/wrr interleave per shard, so the global sequence is not the kernel's, though each
//!   shard's share per dest is;
//! - lblc/lblcr remember per shard: one destination address may map to different dests on
//!   different shards.
//!
//! Hashing schedulers (sh, dh, mh) hold no per-shard state and agree across shards.
//!
//! # Hashes
//! sh, dh and the lblc table use the kernel's `hash_32`; mh uses the kernel's `hsiphash`
//! (SipHash-1-3) with the kernel's fixed keys. See the `hash` module.
//!
//! # Panics
//! Nothing here panics on any input: dest indices are checked with `get`, counts and weights
//! are widened before multiplying, and tables built for another kind or dest count make
//! `schedule` return `None` or an in-range index, never index out of bounds.

mod hash;
mod hashing;
mod lblc;
mod least;
mod mh;
mod rr;

#[cfg(test)]
mod tests;

use core::fmt;

use crate::rng::Rng;

pub use hashing::{SH_TAB_BITS, SH_TAB_SIZE};
pub use lblc::{LBLCR_EXPIRATION_MS, LBLCR_SET_CAP, LBLC_EXPIRATION_MS, LOC_PROBE, LOC_TAB_SIZE};
pub use mh::{MH_TAB_BITS, MH_TAB_SIZE};

/// A table entry holding no dest (sh/dh/mh tables are `u16` dest indices).
pub const NO_DEST: u16 = u16::MAX;

/// A scheduling method, named as `ipvsadm -s` names it.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash, Default)]
pub enum SchedKind {
    Rr,
    Wrr,
    Lc,
    #[default]
    Wlc,
    Sed,
    Nq,
    Sh,
    Dh,
    Mh,
    Lblc,
    Lblcr,
    Fo,
    Ovf,
    Twos,
}

impl SchedKind {
    /// Every scheduler, in declaration order.
    pub const ALL: [SchedKind; 14] = [
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Wlc,
        SchedKind::Sed,
        SchedKind::Nq,
        SchedKind::Sh,
        SchedKind::Dh,
        SchedKind::Mh,
        SchedKind::Lblc,
        SchedKind::Lblcr,
        SchedKind::Fo,
        SchedKind::Ovf,
        SchedKind::Twos,
    ];

    /// The ipvsadm name: "rr", "wrr", "lc", ...
    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Sed => "sed",
            SchedKind::Nq => "nq",
            SchedKind::Sh => "sh",
            SchedKind::Dh => "dh",
            SchedKind::Mh => "mh",
            SchedKind::Lblc => "lblc",
            SchedKind::Lblcr => "lblcr",
            SchedKind::Fo => "fo",
            SchedKind::Ovf => "ovf",
            SchedKind::Twos => "twos",
        }
    }

    /// The scheduler of an ipvsadm name (exact, lower case), or `None`.
    pub fn parse(s: &str) -> Option<Self> {
        SchedKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for SchedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Scheduler flags (`ipvsadm -b`).
///
/// IPVS stores them as the generic service bits `IP_VS_SVC_F_SCHED1` (sh-fallback,
/// mh-fallback) and `IP_VS_SVC_F_SCHED2` (sh-port, mh-port). Here each name is its own
/// field and each scheduler reads only its own: sh reads `sh_*`, mh reads `mh_*`; a control
/// plane accepting ipvsadm's `flag-1` / `flag-2` maps them to the service's scheduler.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Hash)]
pub struct SchedFlags {
    /// sh: when the hashed dest is unavailable, rehash to find another.
    pub sh_fallback: bool,
    /// sh: hash the client port too.
    pub sh_port: bool,
    /// mh: when the hashed dest is unavailable, rehash to find another.
    pub mh_fallback: bool,
    /// mh: hash the client port too.
    pub mh_port: bool,
}

impl SchedFlags {
    const NAMES: [&'static str; 4] = ["sh-fallback", "sh-port", "mh-fallback", "mh-port"];

    fn field(&mut self, i: usize) -> Option<&mut bool> {
        match i {
            0 => Some(&mut self.sh_fallback),
            1 => Some(&mut self.sh_port),
            2 => Some(&mut self.mh_fallback),
            3 => Some(&mut self.mh_port),
            _ => None,
        }
    }

    /// Parse a comma-separated list such as `"sh-fallback,sh-port"` (empty: no flags).
    /// The error names the flag that is not known.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut flags = SchedFlags::default();
        if s.trim().is_empty() {
            return Ok(flags);
        }
        for part in s.split(',') {
            let name = part.trim();
            let slot = SchedFlags::NAMES
                .iter()
                .position(|&n| n == name)
                .and_then(|i| flags.field(i));
            match slot {
                Some(b) => *b = true,
                None => {
                    return Err(format!(
                        "unknown scheduler flag {name:?} (known: {})",
                        SchedFlags::NAMES.join(", ")
                    ))
                }
            }
        }
        Ok(flags)
    }

    /// The set flags as a comma-separated list, in the order sh-fallback, sh-port,
    /// mh-fallback, mh-port; empty when none is set. `parse` reads it back.
    pub fn to_string_list(&self) -> String {
        let set = [
            self.sh_fallback,
            self.sh_port,
            self.mh_fallback,
            self.mh_port,
        ];
        SchedFlags::NAMES
            .iter()
            .zip(set)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One dest as a scheduler sees it in one shard.
#[derive(Copy, Clone, Debug, Default)]
pub struct DestLoad {
    /// Current weight; 0 (or less) is quiescent.
    pub weight: i32,
    /// This shard's active conns to the dest (`activeconns`).
    pub active: u32,
    /// This shard's inactive conns to the dest (`inactconns`).
    pub inactive: u32,
    /// Over the upper threshold (IPVS's `IP_VS_DEST_F_OVERLOAD`), as computed by the caller.
    pub overloaded: bool,
}

impl DestLoad {
    /// May take a new connection: weight > 0 and not overloaded.
    #[inline]
    pub fn available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }

    /// `ip_vs_dest_conn_overhead`: `active * 256 + inactive` (an active conn is taken to
    /// cost 256 inactive ones).
    #[inline]
    pub fn overhead(&self) -> u64 {
        (u64::from(self.active) << 8) + u64::from(self.inactive)
    }
}

/// What the scheduler may hash on. Addresses are 16 network-order bytes; an IPv4 address
/// sits in the first 4 with `v6 == false` (the other 12 are then ignored). Ports are host
/// order values; set `cport` to 0 for protocols without ports (the kernel's sh-port /
/// mh-port use 0 there).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchedInput {
    pub v6: bool,
    /// Client (source) address: sh and mh hash it.
    pub caddr: [u8; 16],
    /// Client port: sh-port / mh-port hash it.
    pub cport: u16,
    /// Destination address of the packet (the VIP, or for firewall-mark services the
    /// address the client asked for): dh, lblc and lblcr key on it.
    pub daddr: [u8; 16],
    /// Destination port (no scheduler uses it today; kept for completeness).
    pub dport: u16,
}

/// A dest's identity and configured weight, for building tables.
///
/// `addr` holds 16 network-order bytes; an IPv4 address sits in the first 4 and the other 12
/// must be zero (the mh permutation hashes the address XOR-folded over its four words).
/// `port` is the dest's port, host order. `weight` is the current weight for sh (the kernel
/// rebuilds sh's buckets from current weights) and IPVS's `last_weight` for mh (the last
/// non-zero weight, so quiescing a dest leaves the mh table alone); for wrr it gives the
/// gcd and top weight.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DestIdent {
    pub addr: [u8; 16],
    pub port: u16,
    pub weight: i32,
}

/// Immutable per-service scheduler tables, built by the control thread off the hot path and
/// shared read-only by every shard: the sh/dh buckets, the mh lookup table (65521 `u16`
/// entries), wrr's step and top weight; nothing else.
#[derive(Clone, Debug)]
pub struct SchedTables {
    kind: SchedKind,
    n_dests: usize,
    /// sh/dh buckets (all `NO_DEST` for other kinds or an empty service).
    buckets: [u16; SH_TAB_SIZE],
    /// mh lookup table: `MH_TAB_SIZE` entries, or empty (other kinds, or no positive weight).
    mh: Box<[u16]>,
    wrr: rr::WrrParams,
}

impl SchedTables {
    /// Build the tables `kind` needs for this dest list (in the order `schedule` will see
    /// the dests). `flags` do not change the tables (they steer the lookup); they are taken
    /// so that a caller can pass a service's whole scheduler configuration.
    pub fn build(kind: SchedKind, flags: SchedFlags, dests: &[DestIdent]) -> SchedTables {
        let _ = flags;
        let buckets = match kind {
            SchedKind::Sh => hashing::sh_buckets(dests),
            SchedKind::Dh => hashing::dh_buckets(dests),
            _ => [NO_DEST; SH_TAB_SIZE],
        };
        let mh = match kind {
            SchedKind::Mh => mh::build(dests),
            _ => Box::new([]),
        };
        SchedTables {
            kind,
            n_dests: dests.len(),
            buckets,
            mh,
            wrr: rr::WrrParams::from_dests(dests),
        }
    }

    /// The scheduler these tables were built for.
    pub fn kind(&self) -> SchedKind {
        self.kind
    }

    /// The number of dests they were built from.
    pub fn n_dests(&self) -> usize {
        self.n_dests
    }

    /// The sh/dh buckets (dest indices, `NO_DEST` when empty), for inspection.
    pub fn buckets(&self) -> &[u16; SH_TAB_SIZE] {
        &self.buckets
    }

    /// The mh lookup table (empty unless built for mh with a positive weight).
    pub fn mh_lookup(&self) -> &[u16] {
        &self.mh
    }
}

/// Per-shard mutable scheduler state, preallocated at creation.
#[derive(Clone, Debug)]
pub struct SchedState {
    kind: SchedKind,
    n_dests: usize,
    /// rr/wrr: the dest picked last (`None`: the list head).
    cursor: Option<usize>,
    /// wrr: the current weight (0 until the first pick sets it to `mw`).
    cw: i32,
    /// twos.
    rng: Rng,
    /// lblc/lblcr: `LOC_TAB_SIZE` slots; empty for the others.
    loc: lblc::LocTable,
}

impl SchedState {
    /// A fresh state for `kind` over `n_dests` dests; `seed` seeds twos's random generator.
    /// lblc and lblcr allocate their table here (`LOC_TAB_SIZE` entries, about 230 KiB).
    pub fn new(kind: SchedKind, n_dests: usize, seed: u64) -> SchedState {
        SchedState {
            kind,
            n_dests,
            cursor: None,
            cw: 0,
            rng: Rng::new(seed),
            loc: lblc::LocTable::new(matches!(kind, SchedKind::Lblc | SchedKind::Lblcr)),
        }
    }

    /// The scheduler this state was made for.
    pub fn kind(&self) -> SchedKind {
        self.kind
    }

    /// The dest count it was made for.
    pub fn n_dests(&self) -> usize {
        self.n_dests
    }
}

/// Pick a dest index into `dests`, or `None`: no dest available (IPVS's "no destination
/// available"; the caller drops or bypasses the connection).
///
/// `dests` has the order of the `DestIdent` list `tables` were built from. `now_ms` is the
/// shard's clock, used only by lblc/lblcr expiry. Never allocates, never panics.
pub fn schedule(
    kind: SchedKind,
    flags: SchedFlags,
    tables: &SchedTables,
    state: &mut SchedState,
    dests: &[DestLoad],
    input: &SchedInput,
    now_ms: u64,
) -> Option<usize> {
    let pick = match kind {
        SchedKind::Rr => rr::rr(state, dests),
        SchedKind::Wrr => rr::wrr(tables, state, dests),
        SchedKind::Lc => least::lc(dests),
        SchedKind::Wlc => least::wlc(dests),
        SchedKind::Sed => least::sed(dests),
        SchedKind::Nq => least::nq(dests),
        SchedKind::Sh => hashing::sh(flags, tables, dests, input),
        SchedKind::Dh => hashing::dh(tables, dests, input),
        SchedKind::Mh => mh::mh(flags, tables, dests, input),
        SchedKind::Lblc => lblc::lblc(&mut state.loc, dests, input, now_ms),
        SchedKind::Lblcr => lblc::lblcr(&mut state.loc, dests, input, now_ms),
        SchedKind::Fo => least::fo(dests),
        SchedKind::Ovf => least::ovf(dests),
        SchedKind::Twos => least::twos(&mut state.rng, dests),
    };
    pick.filter(|&i| i < dests.len())
}

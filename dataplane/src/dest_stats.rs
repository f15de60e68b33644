//! A dest's counters across workers (IPVS's per-dest `ip_vs_stats` and its conn counts), and
//! each worker's share of the dest's connection thresholds.
//!
//! The control thread makes one [`DestStats`] per dest identity (service, address, port) and
//! hands it to every worker in the config snapshot ([`DestStatsRef`] in `DestConfig`). Worker
//! `w` writes only its own cache line of cells ([`DestCells`]: single writer, plain load +
//! store, as `counters::Cell`), so any thread sums them without locks. A dest that stays
//! across snapshots keeps its block, so its counters run on.
//!
//! **Thresholds.** `-x`/`-y` limit a dest as a whole, but each worker sees only its own
//! conns. The control thread therefore gives every worker a share ([`ThresholdShare`]) of the
//! upper and lower thresholds and rebalances the shares from the summed counts; a worker
//! compares its own conns with its share. The shares are the only cells the control thread
//! writes; they sit on their own cache lines, apart from the workers' counters.

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use crate::counters::Cell;

/// One worker's counters of one dest, on a cache line of their own.
#[repr(align(64))]
#[derive(Default, Debug)]
pub struct DestCells {
    /// Conns scheduled to the dest (not templates).
    pub conns: Cell,
    pub inpkts: Cell,
    pub outpkts: Cell,
    pub inbytes: Cell,
    pub outbytes: Cell,
    /// The worker's live active and inactive conns to the dest (`activeconns`, `inactconns`).
    pub active: Cell,
    pub inactive: Cell,
    /// The worker's live templates bound to the dest (`persistconns`).
    pub persist: Cell,
}

/// One worker's share of a dest's thresholds (written by the control thread).
#[repr(align(64))]
#[derive(Default, Debug)]
pub struct ThresholdShare {
    pub upper: AtomicU32,
    pub lower: AtomicU32,
}

/// A dest's counters summed over workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestTotals {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub active: u64,
    pub inactive: u64,
    pub persist: u64,
}

/// One worker's part of a dest's block: its cells, then its share on a line of its own.
#[derive(Default, Debug)]
struct WorkerPart {
    cells: DestCells,
    share: ThresholdShare,
}

/// A dest's counters and threshold shares, one part per worker (one allocation: a 100k-dest
/// rule set makes 100k blocks).
#[derive(Debug)]
pub struct DestStats {
    parts: Box<[WorkerPart]>,
}

impl DestStats {
    /// Blocks for `workers` workers (at least one), with the thresholds split evenly.
    pub fn new(workers: u32, upper: u32, lower: u32) -> Self {
        let n = workers.max(1) as usize;
        let s = DestStats {
            parts: (0..n).map(|_| WorkerPart::default()).collect(),
        };
        s.split_evenly(upper, lower);
        s
    }

    pub fn workers(&self) -> u32 {
        self.parts.len() as u32
    }

    /// Worker `w`'s cells (a block made for fewer workers has worker 0's for the rest: a
    /// shard's own block in tests and single-threaded replay).
    #[inline(always)]
    pub fn cells(&self, w: u32) -> &DestCells {
        &self.parts[self.cell_of(w)].cells
    }

    /// Where worker `w`'s cells are ([`Self::cells_at`]: one bounds check per packet).
    pub fn cell_of(&self, w: u32) -> usize {
        let w = w as usize;
        if w < self.parts.len() {
            w
        } else {
            0
        }
    }

    #[inline(always)]
    pub fn cells_at(&self, i: usize) -> &DestCells {
        &self.parts[i].cells
    }

    /// Worker `w`'s threshold share: (upper, lower).
    #[inline]
    pub fn share(&self, w: u32) -> (u32, u32) {
        let s = &self.parts[self.cell_of(w)].share;
        (s.upper.load(Relaxed), s.lower.load(Relaxed))
    }

    /// Set worker `w`'s share (the control thread).
    pub fn set_share(&self, w: u32, upper: u32, lower: u32) {
        if let Some(p) = self.parts.get(w as usize) {
            p.share.upper.store(upper, Relaxed);
            p.share.lower.store(lower, Relaxed);
        }
    }

    /// Every worker gets `upper / n` (the first `upper % n` one more), and the lower
    /// threshold in the same proportion: the shares sum to the thresholds.
    pub fn split_evenly(&self, upper: u32, lower: u32) {
        let n = self.parts.len() as u32;
        for w in 0..n {
            let u = upper / n + u32::from(w < upper % n);
            let l = lower / n + u32::from(w < lower % n);
            self.set_share(w, u, l);
        }
    }

    /// Worker `w`'s live conns to the dest (active + inactive).
    pub fn worker_conns(&self, w: u32) -> u64 {
        let c = self.cells(w);
        c.active.get() + c.inactive.get()
    }

    /// Summed over the workers.
    pub fn totals(&self) -> DestTotals {
        let mut t = DestTotals::default();
        for c in self.parts.iter().map(|p| &p.cells) {
            t.conns += c.conns.get();
            t.inpkts += c.inpkts.get();
            t.outpkts += c.outpkts.get();
            t.inbytes += c.inbytes.get();
            t.outbytes += c.outbytes.get();
            t.active += c.active.get();
            t.inactive += c.inactive.get();
            t.persist += c.persist.get();
        }
        t
    }
}

/// The stats block a `DestConfig` carries: `None` in snapshots made without a control thread
/// (tests, replay), where each shard makes its own. Equality ignores it: two configs with the
/// same rules are the same config.
#[derive(Clone, Default)]
pub struct DestStatsRef(pub Option<Arc<DestStats>>);

impl PartialEq for DestStatsRef {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl core::fmt::Debug for DestStatsRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(if self.0.is_some() {
            "DestStatsRef(shared)"
        } else {
            "DestStatsRef(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_split_sums_to_the_thresholds() {
        let s = DestStats::new(3, 100, 10);
        let shares: Vec<(u32, u32)> = (0..3).map(|w| s.share(w)).collect();
        assert_eq!(shares, vec![(34, 4), (33, 3), (33, 3)]);
        let s = DestStats::new(4, 2, 0);
        let up: u32 = (0..4).map(|w| s.share(w).0).sum();
        assert_eq!(up, 2);
        assert_eq!(s.share(3), (0, 0), "a worker may get no share at all");
    }

    #[test]
    fn totals_sum_every_worker_and_cells_are_a_line_each() {
        assert_eq!(core::mem::size_of::<DestCells>(), 64);
        let s = DestStats::new(2, 0, 0);
        s.cells(0).inpkts.add(3);
        s.cells(1).inpkts.add(4);
        s.cells(1).active.set(2);
        s.cells(0).inactive.set(1);
        let t = s.totals();
        assert_eq!((t.inpkts, t.active, t.inactive), (7, 2, 1));
        assert_eq!(s.worker_conns(0), 1);
        assert_eq!(s.cells(5).inpkts.get(), 3, "past the block: worker 0's");
    }
}

//! The dests' counter blocks across snapshots (the control thread's registry): one
//! [`DestStats`] per dest identity, handed to the workers in every snapshot the dest is in;
//! `-Z` baselines; the 2 s estimators; the threshold shares' rebalancing.
//!
//! A block outlives its dest's rule while any worker still holds it (conns of a removed dest
//! keep counting, as IPVS's dest trash). The registry keeps its own reference to every block,
//! so a block is only ever freed here, on the control thread ([`StatsRegistry::gc`]: when the
//! registry's is the only reference left), and what a removed dest counted is folded into its
//! service's totals then.
//!
//! `-Z` does not write the workers' cells (they have one writer each): it records the current
//! totals as a baseline that listings subtract. Prometheus series are the raw counters, which
//! never go backwards.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasherDefault;
use std::net::IpAddr;
use std::sync::Arc;

use rvs_dataplane::config::FastHasher;
use rvs_dataplane::dest_stats::{DestStats, DestTotals};

use crate::estimator::Estimator;
use crate::protocol::{Rates, Stats};
use crate::rules::{RuleSet, Service, ServiceId};

/// A dest's identity across snapshots: its service, address and port.
pub type DestId = (ServiceId, IpAddr, u16);

/// The operator's keys: no need for SipHash's DoS resistance, and a 100k-dest set is
/// looked up on every change.
type Map<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
type Set<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

struct DestEntry {
    stats: Arc<DestStats>,
    /// Totals at the last `-Z`.
    zero: DestTotals,
    est: Estimator,
    /// The `-x`/`-y` the shares were last split for.
    thresholds: (u32, u32),
    /// The [`StatsRegistry::retire`] count when a snapshot last asked for the block: a
    /// retirement queued before then (or at it) is stale, the dest came back.
    asked_at: u64,
}

impl DestEntry {
    /// A new dest's entry: a block with the thresholds split evenly, counting from zero.
    fn new(workers: u32, upper: u32, lower: u32) -> Self {
        DestEntry {
            stats: Arc::new(DestStats::new(workers, upper, lower)),
            zero: DestTotals::default(),
            est: Estimator::new(Stats::default()),
            thresholds: (0, 0),
            asked_at: 0,
        }
    }
}

struct ServiceEntry {
    /// What its removed dests counted (after their baselines, and raw).
    retired: Stats,
    retired_raw: Stats,
    est: Estimator,
}

impl Default for ServiceEntry {
    /// A new service starts from zero, as its dests' new blocks do.
    fn default() -> Self {
        ServiceEntry {
            retired: Stats::default(),
            retired_raw: Stats::default(),
            est: Estimator::new(Stats::default()),
        }
    }
}

/// Every dest's block, baseline and estimator.
pub struct StatsRegistry {
    workers: u32,
    /// Where each dest's entry is in `entries`. The map holds only the key and a place: a
    /// `--replace` of 100k new dests grows it from 100k to 200k entries (the old set's go
    /// later, a bounded number a tick) and its rehash then moves 50 bytes an entry, not the
    /// 200 of a whole entry.
    dests: Map<DestId, u32>,
    /// The entries, in places that never move (`None`: free, listed in `free`).
    entries: Vec<Option<DestEntry>>,
    free: Vec<u32>,
    services: Map<ServiceId, ServiceEntry>,
    /// What freed blocks counted, raw (the appliance's totals never go backwards).
    retired: DestTotals,
    /// Dests that left the rules (or were made for a refused change), oldest first: `gc`
    /// looks only at these, a bounded number a call, so a 100k-dest registry is never
    /// walked whole every 100 ms.
    retiring: VecDeque<(DestId, u64)>,
    /// How many times dests were retired (once a change).
    retires: u64,
    /// Dests with `-x` or `-y`: the only ones `rebalance` has work for.
    thresholded: Set<DestId>,
}

/// Which estimator slice a service's rates move in (by its id, which a change never moves).
fn slice_of(id: &ServiceId, n: usize) -> usize {
    use std::hash::BuildHasher;
    (BuildHasherDefault::<FastHasher>::default().hash_one(id) >> 32) as usize % n
}

fn stats_of(t: &DestTotals, zero: &DestTotals) -> Stats {
    Stats {
        conns: t.conns.wrapping_sub(zero.conns),
        inpkts: t.inpkts.wrapping_sub(zero.inpkts),
        outpkts: t.outpkts.wrapping_sub(zero.outpkts),
        inbytes: t.inbytes.wrapping_sub(zero.inbytes),
        outbytes: t.outbytes.wrapping_sub(zero.outbytes),
    }
}

fn add(a: &mut Stats, b: &Stats) {
    a.conns = a.conns.wrapping_add(b.conns);
    a.inpkts = a.inpkts.wrapping_add(b.inpkts);
    a.outpkts = a.outpkts.wrapping_add(b.outpkts);
    a.inbytes = a.inbytes.wrapping_add(b.inbytes);
    a.outbytes = a.outbytes.wrapping_add(b.outbytes);
}

impl StatsRegistry {
    pub fn new(workers: u32) -> Self {
        StatsRegistry {
            workers: workers.max(1),
            dests: Map::default(),
            entries: Vec::new(),
            free: Vec::new(),
            services: Map::default(),
            retired: DestTotals::default(),
            retiring: VecDeque::new(),
            retires: 0,
            thresholded: Set::default(),
        }
    }

    /// The block of a dest of a snapshot being built, and whether it was made now (made on
    /// first sight, thresholds split evenly; a dest whose thresholds changed gets them split
    /// evenly again until the next rebalance).
    pub fn block(&mut self, id: DestId, upper: u32, lower: u32) -> (Arc<DestStats>, bool) {
        let workers = self.workers;
        let mut made = false;
        let (entries, free) = (&mut self.entries, &mut self.free);
        let at = *self.dests.entry(id).or_insert_with(|| {
            made = true;
            let e = Some(DestEntry::new(workers, upper, lower));
            match free.pop() {
                Some(at) => {
                    entries[at as usize] = e;
                    at
                }
                None => {
                    entries.push(e);
                    (entries.len() - 1) as u32
                }
            }
        });
        let e =
            self.entries[at as usize].get_or_insert_with(|| DestEntry::new(workers, upper, lower));
        // In the rules (again): retirements queued so far are stale.
        e.asked_at = self.retires;
        if e.thresholds != (upper, lower) {
            if !made {
                e.stats.split_evenly(upper, lower);
            }
            e.thresholds = (upper, lower);
            if (upper, lower) == (0, 0) {
                self.thresholded.remove(&id);
            } else {
                self.thresholded.insert(id);
            }
        }
        (Arc::clone(&e.stats), made)
    }

    /// The entry of a dest, if it has one.
    fn entry(&self, id: &DestId) -> Option<&DestEntry> {
        let &at = self.dests.get(id)?;
        self.entries.get(at as usize)?.as_ref()
    }

    /// Room for `n` more dests' blocks.
    pub fn reserve(&mut self, n: usize) {
        self.dests.reserve(n);
        self.entries.reserve(n.saturating_sub(self.free.len()));
    }

    /// Whether the registry holds a block for the dest.
    pub fn has_block(&self, id: &DestId) -> bool {
        self.dests.contains_key(id)
    }

    /// These dests left the rules in force (or their blocks were made for a change that was
    /// refused): `gc` frees each block once nothing else holds it.
    /// (No lookup here: a replaced 100k-dest set retires 100k dests in the change's reply
    /// path; `gc` looks them up later, a bounded number at a time.)
    pub fn retire(&mut self, ids: impl IntoIterator<Item = DestId>) {
        self.retires += 1;
        let at = self.retires;
        self.retiring.extend(ids.into_iter().map(|id| (id, at)));
    }

    /// `rules` are in force: services that left lose their entries.
    pub fn sync(&mut self, rules: &RuleSet) {
        for s in &rules.services {
            self.services.entry(s.spec.id).or_default();
        }
        if self.services.len() != rules.services.len() {
            let ids: std::collections::HashSet<ServiceId, BuildHasherDefault<FastHasher>> =
                rules.services.iter().map(|s| s.spec.id).collect();
            self.services.retain(|id, _| ids.contains(id));
        }
    }

    /// Free the blocks of retired dests that nothing else holds any more (no snapshot, and no
    /// worker's dest slot, so no conn counts there), folding their counts into their service
    /// (if it is still there). Returns how many went.
    pub fn gc(&mut self) -> usize {
        self.gc_some(usize::MAX)
    }

    /// As [`gc`](Self::gc), looking at no more than `max` retired dests (the oldest first;
    /// one still held goes to the back of the queue).
    pub fn gc_some(&mut self, max: usize) -> usize {
        let mut freed = 0;
        for _ in 0..max.min(self.retiring.len()) {
            let Some((id, at)) = self.retiring.pop_front() else {
                break;
            };
            let Some(e) = self.entry(&id) else {
                continue;
            };
            if e.asked_at >= at {
                continue; // back in the rules since
            }
            if Arc::strong_count(&e.stats) > 1 {
                self.retiring.push_back((id, at));
                continue;
            }
            self.thresholded.remove(&id);
            let gone = self.dests.remove(&id).and_then(|at| {
                let e = self.entries.get_mut(at as usize)?.take()?;
                self.free.push(at);
                Some(e)
            });
            if let Some(e) = gone {
                let t = e.stats.totals();
                if let Some(s) = self.services.get_mut(&id.0) {
                    add(&mut s.retired, &stats_of(&t, &e.zero));
                    add(&mut s.retired_raw, &stats_of(&t, &DestTotals::default()));
                }
                let r = &mut self.retired;
                r.conns += t.conns;
                r.inpkts += t.inpkts;
                r.outpkts += t.outpkts;
                r.inbytes += t.inbytes;
                r.outbytes += t.outbytes;
                freed += 1;
            }
        }
        freed
    }

    /// A dest's counters since its last `-Z`, its live counts, and its rates.
    pub fn dest(&self, id: &DestId) -> (Stats, DestTotals, Rates) {
        match self.entry(id) {
            Some(e) => {
                let t = e.stats.totals();
                (stats_of(&t, &e.zero), t, e.est.rates())
            }
            None => Default::default(),
        }
    }

    /// A service's counters since its last `-Z` (its dests', and what its removed dests
    /// counted), and its rates; `raw` without the `-Z` baselines (the metrics).
    pub fn service(&self, svc: &Service, raw: bool) -> (Stats, Rates) {
        let id = svc.spec.id;
        let (mut sum, rates) = match self.services.get(&id) {
            Some(s) => (if raw { s.retired_raw } else { s.retired }, s.est.rates()),
            None => (Stats::default(), Rates::default()),
        };
        for d in &svc.dests {
            if let Some(e) = self.entry(&(id, d.addr, d.port)) {
                let zero = if raw { DestTotals::default() } else { e.zero };
                add(&mut sum, &stats_of(&e.stats.totals(), &zero));
            }
        }
        (sum, rates)
    }

    /// The appliance's totals since start, raw (no `-Z`): every block's and the freed ones'
    /// (IPVS's `ip_vs_stats` totals).
    pub fn totals(&self) -> Stats {
        let mut sum = Stats {
            conns: self.retired.conns,
            inpkts: self.retired.inpkts,
            outpkts: self.retired.outpkts,
            inbytes: self.retired.inbytes,
            outbytes: self.retired.outbytes,
        };
        for e in self.entries.iter().flatten() {
            add(
                &mut sum,
                &stats_of(&e.stats.totals(), &DestTotals::default()),
            );
        }
        sum
    }

    /// `-Z`: counters and rates of one service's dests (or all) start again from zero.
    pub fn zero(&mut self, service: Option<ServiceId>) {
        for (id, &at) in &self.dests {
            let Some(e) = self.entries.get_mut(at as usize).and_then(Option::as_mut) else {
                continue;
            };
            if service.is_none_or(|s| s == id.0) {
                e.zero = e.stats.totals();
                e.est = Estimator::new(Stats::default());
            }
        }
        for (id, s) in self.services.iter_mut() {
            if service.is_none_or(|x| x == *id) {
                s.retired = Stats::default();
                s.est = Estimator::new(Stats::default());
            }
        }
    }

    /// One estimator period ended: every dest's and service's rates move.
    pub fn estimate(&mut self, rules: &RuleSet) {
        self.estimate_slice(rules, 0, 1);
    }

    /// Slice `k` of `n` of [`estimate`](Self::estimate): the dests at places `k`, `k + n`,
    /// ... and the services whose id hashes to `k`. Run for `k` = 0..n over a period, each
    /// estimator still moves once a period (on a place or id that does not change), and no
    /// call reads all 100k dests' cells at once (37 ms here), as the kernel's estimator
    /// kthreads spread theirs.
    pub fn estimate_slice(&mut self, rules: &RuleSet, k: usize, n: usize) {
        let n = n.max(1);
        for e in self.entries.iter_mut().skip(k).step_by(n).flatten() {
            let s = stats_of(&e.stats.totals(), &e.zero);
            e.est.update(s);
        }
        for svc in &rules.services {
            if n > 1 && slice_of(&svc.spec.id, n) != k {
                continue;
            }
            let (s, _) = self.service(svc, false);
            if let Some(e) = self.services.get_mut(&svc.spec.id) {
                e.est.update(s);
            }
        }
    }

    /// Rebalance the threshold shares of every dest with `-x`/`-y` from the summed counts:
    /// each worker keeps what it has and gets an even part of what is left under the upper
    /// threshold, so the shares sum to it. True when a share changed (the workers must then
    /// re-evaluate their overload flags). (A removed dest's shares no longer matter: nothing
    /// schedules to it.)
    pub fn rebalance(&self) -> bool {
        let n = self.workers;
        let mut changed = false;
        for e in self.thresholded.iter().filter_map(|id| self.entry(id)) {
            let (upper, lower) = e.thresholds;
            let counts: Vec<u64> = (0..n).map(|w| e.stats.worker_conns(w)).collect();
            for (w, u) in shares(upper, &counts).into_iter().enumerate() {
                let l = if upper == 0 {
                    lower / n + u32::from((w as u32) < lower % n)
                } else {
                    (u64::from(lower) * u64::from(u) / u64::from(upper)) as u32
                };
                if e.stats.share(w as u32) != (u, l) {
                    e.stats.set_share(w as u32, u, l);
                    changed = true;
                }
            }
        }
        changed
    }
}

/// Upper-threshold shares from each worker's conns: what it holds (up to the threshold) plus
/// an even part of the headroom left; they sum to `upper` whenever the counts do not exceed it.
pub fn shares(upper: u32, counts: &[u64]) -> Vec<u32> {
    let n = counts.len().max(1) as u64;
    let upper64 = u64::from(upper);
    let total: u64 = counts.iter().sum();
    let headroom = upper64.saturating_sub(total);
    let mut left = upper64;
    counts
        .iter()
        .enumerate()
        .map(|(w, &c)| {
            let part = headroom / n + u64::from((w as u64) < headroom % n);
            let s = (c.min(upper64) + part).min(left);
            left -= s;
            s as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry with blocks for every dest of `rules`, each dest's first cell counting
    /// `k` conns and `100 k` packets, k its place.
    fn counting(rules: &RuleSet) -> StatsRegistry {
        let mut r = StatsRegistry::new(2);
        r.sync(rules);
        let mut k = 1;
        for s in &rules.services {
            for d in &s.dests {
                let (b, _) = r.block((s.spec.id, d.addr, d.port), 0, 0);
                b.cells_at(0).conns.add(k);
                b.cells_at(0).inpkts.add(100 * k);
                k += 1;
            }
        }
        r
    }

    #[test]
    fn estimator_slices_over_a_period_move_every_rate_as_one_pass_does() {
        let mut text = String::new();
        for s in 0..40 {
            text.push_str(&format!("-A -t 10.0.{s}.1:80\n"));
            for d in 0..3 {
                text.push_str(&format!("-a -t 10.0.{s}.1:80 -r 10.1.{s}.{}\n", d + 1));
            }
        }
        let rules = RuleSet::from_text(&text).unwrap();
        let (mut whole, mut sliced) = (counting(&rules), counting(&rules));
        whole.estimate(&rules);
        for k in 0..7 {
            sliced.estimate_slice(&rules, k, 7);
        }
        for s in &rules.services {
            assert_eq!(
                whole.service(s, false).1,
                sliced.service(s, false).1,
                "{}",
                s.spec.id
            );
            assert_ne!(whole.service(s, false).1, Rates::default());
            for d in &s.dests {
                let id = (s.spec.id, d.addr, d.port);
                assert_eq!(whole.dest(&id).2, sliced.dest(&id).2);
            }
        }
        // One slice moves only its share.
        let mut one = counting(&rules);
        one.estimate_slice(&rules, 3, 7);
        let moved = rules
            .services
            .iter()
            .filter(|s| one.service(s, false).1 != Rates::default())
            .count();
        assert!(moved > 0 && moved < rules.services.len(), "{moved} of 40");
    }

    #[test]
    fn shares_keep_what_each_worker_holds_and_split_the_rest() {
        assert_eq!(shares(100, &[0, 0, 0]), vec![34, 33, 33]);
        assert_eq!(shares(100, &[34, 0, 0]), vec![56, 22, 22]);
        assert_eq!(
            shares(100, &[60, 40]),
            vec![60, 40],
            "full: nothing to give"
        );
        // Over the threshold (counts fell behind a lowered -x): nobody gets more than is left.
        let s = shares(10, &[8, 8]);
        assert_eq!(s.iter().sum::<u32>(), 10);
        assert!(s.iter().zip([8u64, 8]).all(|(&s, c)| u64::from(s) <= c));
        for counts in [[5u64, 1, 0, 9], [0, 0, 0, 0], [3, 3, 3, 3]] {
            assert_eq!(shares(17, &counts).iter().sum::<u32>(), 17, "{counts:?}");
        }
    }
}

//! The timers of one shard's conns, in milliseconds of virtual time, without a link per conn:
//! a tree of lower bounds over the conn table's slots.
//!
//! The slots are cut into leaves of [`LEAF`] consecutive slots; each leaf holds a bound: no
//! live conn in it has a deadline before the bound. Above the leaves, each node of a level
//! holds the least bound of its [`FANOUT`] children (one cache line of them), up to a single
//! root. A conn's deadline lives in its entry; the tree only ever lowers a bound when a
//! deadline moves earlier ([`Timers::arm`]): a packet that moves a deadline later stores it
//! and touches nothing here (lazy, as the wheel this replaces). When the clock reaches a
//! bound, the owner gets the leaf ([`Timers::next_due`]), runs its slots whose deadline came
//! (expiring them, or filing them again after a later deadline), and reports the leaf's
//! least deadline left ([`Timers::leaf_done`]). Expiry is exact to the millisecond: a conn
//! whose deadline is `d` is run by the first [`Timers::next_due`] walk whose `now >= d`.
//!
//! Bounds are the low 32 bits of a time, read relative to the tree's clock: every bound lies
//! in `[clock, clock + 2^31)` (a deadline further out is bounded by `clock + 2^31 - 1` and
//! looked at again then; an empty leaf has that bound too), and the owner moves the clock by
//! at most a second a walk (a shard runs its timers at every second boundary). Memory: 4
//! bytes per leaf of 4 slots plus a fifteenth for the levels above, about 1.07 bytes a slot;
//! nothing allocates after [`Timers::new`].
//!
//! A walk is depth first over the due part of the tree. The owner may arm any slot between
//! two leaves (expiring one conn can drop its controller at once): an arm behind the walk
//! lowers the nodes above it, the root is due again when the walk ends, and a new walk
//! starts, so nothing due is left behind whatever the order.

/// Slots per leaf.
pub const LEAF: u32 = 4;
/// Children per node above the leaves (a cache line of u32 bounds).
pub const FANOUT: usize = 16;
/// Levels of the largest tree (2^27 slots: 2^25 leaves, 16^6 > 2^23 nodes above).
const MAX_LEVELS: usize = 8;
/// How far ahead a bound may lie.
const SPAN: u64 = (1 << 31) - 1;
/// The longest clock step of one walk.
pub const STEP: u64 = 1 << 30;

pub struct Timers {
    /// `levels[0]` the leaves' bounds, `levels[k]` the least of `FANOUT` of level `k - 1`;
    /// the last level has one node, the root.
    levels: Box<[Box<[u32]>]>,
    slots: u32,
    /// Every bound <= `now` has been run (the clock bounds are read against).
    now: u64,
    /// The walk under way (none when `walk_to` is `None`): the time it runs to (at most
    /// [`STEP`] past `now`), and per level above the leaves the node it is in and the next
    /// child to look at.
    walk_to: Option<u64>,
    depth: usize,
    node: [u32; MAX_LEVELS],
    next: [u32; MAX_LEVELS],
}

impl Timers {
    /// Timers for `slots` slots (none armed), the clock at `now`.
    pub fn new(slots: u32, now: u64) -> Self {
        let far = (now + SPAN) as u32;
        let mut levels = Vec::with_capacity(MAX_LEVELS);
        let mut n = slots.max(1).div_ceil(LEAF) as usize;
        levels.push(crate::mem::huge_slice(n, far));
        // At least one level above the leaves, so that the walk always starts at a node.
        loop {
            n = n.div_ceil(FANOUT);
            levels.push(vec![far; n].into_boxed_slice());
            if n == 1 {
                break;
            }
        }
        debug_assert!(levels.len() <= MAX_LEVELS);
        Timers {
            levels: levels.into_boxed_slice(),
            slots,
            now,
            walk_to: None,
            depth: 0,
            node: [0; MAX_LEVELS],
            next: [0; MAX_LEVELS],
        }
    }

    /// Bytes of the tree.
    pub fn bytes(&self) -> usize {
        self.levels
            .iter()
            .map(|l| core::mem::size_of_val(&**l))
            .sum()
    }
    /// Bytes [`Timers::new`] takes for `slots` slots.
    pub fn bytes_for(slots: u32) -> usize {
        let mut n = slots.max(1).div_ceil(LEAF) as usize;
        let mut total = n;
        loop {
            n = n.div_ceil(FANOUT);
            total += n;
            if n == 1 {
                break;
            }
        }
        total * core::mem::size_of::<u32>()
    }

    /// The clock: every deadline up to it has been run.
    #[inline]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The slots of leaf `leaf`.
    #[inline]
    pub fn leaf_slots(&self, leaf: u32) -> core::ops::Range<u32> {
        leaf * LEAF..((leaf + 1) * LEAF).min(self.slots)
    }

    /// A bound read as its distance from the clock (bounds lie in `[now, now + 2^31)`).
    #[inline(always)]
    fn ahead(&self, b: u32) -> u32 {
        b.wrapping_sub(self.now as u32)
    }

    /// The bound that stands for `deadline`: at least the clock, at most `SPAN` ahead.
    #[inline(always)]
    fn bound(&self, deadline: u64) -> u32 {
        deadline.clamp(self.now, self.now + SPAN) as u32
    }

    /// Slot `slot`'s conn has the deadline `deadline` (a new conn, or one that moved
    /// earlier): lower the bounds above it where they are later. O(levels), and usually one
    /// store: a node already as early stops the climb.
    #[inline]
    pub fn arm(&mut self, slot: u32, deadline: u64) {
        debug_assert!(slot < self.slots);
        let b = self.bound(deadline);
        let d = self.ahead(b);
        let mut i = (slot / LEAF) as usize;
        for k in 0..self.levels.len() {
            let cur = self.levels[k][i];
            if self.ahead(cur) <= d {
                return;
            }
            self.levels[k][i] = b;
            i /= FANOUT;
        }
    }

    /// The next leaf whose bound is <= `now`, walking the due part of the tree (and starting
    /// a walk when none is under way); `None` once nothing is due, and the clock is then
    /// `now` (never backwards). The leaf's bound is lifted for the owner, who runs its due
    /// slots and then calls [`Timers::leaf_done`]; arms in between lower it again. A clock
    /// step longer than [`STEP`] is walked in steps, so that bounds stay in their window.
    pub fn next_due(&mut self, now: u64) -> Option<u32> {
        let now = now.max(self.now);
        let top = self.levels.len() - 1;
        loop {
            let Some(to) = self.walk_to else {
                let to = now.min(self.now + STEP);
                if self.ahead(self.levels[top][0]) <= (to - self.now) as u32 {
                    self.start_walk(to);
                    continue;
                }
                self.now = to;
                if to == now {
                    return None;
                }
                continue;
            };
            let limit = (to - self.now) as u32;
            let k = self.depth;
            let node = self.node[k] as usize;
            let below = &self.levels[k - 1];
            let end = ((node + 1) * FANOUT).min(below.len());
            let mut c = self.next[k] as usize;
            while c < end && self.ahead(below[c]) > limit {
                c += 1;
            }
            if c < end {
                self.next[k] = c as u32 + 1;
                if k == 1 {
                    // Lift the leaf's bound: the owner reports what is left.
                    self.levels[0][c] = (self.now + SPAN) as u32;
                    return Some(c as u32);
                }
                self.depth = k - 1;
                self.node[k - 1] = c as u32;
                self.next[k - 1] = (c * FANOUT) as u32;
                continue;
            }
            // Every due child of this node is done: its bound is theirs again.
            self.settle(k, node);
            if k < top {
                self.depth = k + 1;
                continue;
            }
            // The walk is over, unless an arm behind it made the root due again.
            if self.ahead(self.levels[top][0]) <= limit {
                self.start_walk(to);
            } else {
                self.walk_to = None;
                self.now = to;
            }
        }
    }

    fn start_walk(&mut self, to: u64) {
        let top = self.levels.len() - 1;
        self.walk_to = Some(to);
        self.depth = top;
        self.node[top] = 0;
        self.next[top] = 0;
    }

    /// The owner ran leaf `leaf` (from [`Timers::next_due`]): `least` is the earliest
    /// deadline of its live slots now (`u64::MAX` if none).
    #[inline]
    pub fn leaf_done(&mut self, leaf: u32, least: u64) {
        let b = self.bound(least);
        let cur = self.levels[0][leaf as usize];
        if self.ahead(b) < self.ahead(cur) {
            self.levels[0][leaf as usize] = b;
        }
    }

    /// Node `node` of level `k` takes the least bound of its children.
    fn settle(&mut self, k: usize, node: usize) {
        let below = &self.levels[k - 1];
        let end = ((node + 1) * FANOUT).min(below.len());
        let mut least = below[node * FANOUT];
        for &b in &below[node * FANOUT + 1..end] {
            if self.ahead(b) < self.ahead(least) {
                least = b;
            }
        }
        self.levels[k][node] = least;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An owner of `deadlines` (None: a free slot) run to `now`: every due slot is freed,
    /// or, when `refile` gives it a later deadline, filed again. The slots it ran, in order.
    fn run(
        t: &mut Timers,
        deadlines: &mut [Option<u64>],
        now: u64,
        mut refile: impl FnMut(u32) -> Option<u64>,
    ) -> Vec<u32> {
        let mut ran = Vec::new();
        while let Some(leaf) = t.next_due(now) {
            for s in t.leaf_slots(leaf) {
                if let Some(d) = deadlines[s as usize].filter(|&d| d <= now) {
                    assert!(d <= now);
                    ran.push(s);
                    deadlines[s as usize] = refile(s).filter(|&e| e > now);
                }
            }
            let least = t
                .leaf_slots(leaf)
                .filter_map(|s| deadlines[s as usize])
                .min()
                .unwrap_or(u64::MAX);
            t.leaf_done(leaf, least);
        }
        ran.sort();
        ran
    }

    #[test]
    fn a_conn_runs_exactly_at_its_deadline() {
        let mut t = Timers::new(8, 1000);
        let mut d = vec![None; 8];
        d[5] = Some(61_000);
        t.arm(5, 61_000);
        let mut now = 1000;
        while now < 60_999 {
            now += 1000.min(60_999 - now);
            assert!(run(&mut t, &mut d, now, |_| None).is_empty());
        }
        assert_eq!(run(&mut t, &mut d, 61_000, |_| None), vec![5]);
        assert_eq!(t.now(), 61_000);
    }

    #[test]
    fn a_deadline_beyond_the_span_waits_at_the_spans_end() {
        let mut t = Timers::new(4, 0);
        let far = 31 * 86_400_000u64;
        let mut d = vec![None, Some(far), None, None];
        t.arm(1, far);
        let mut now = 0;
        while now < far - 1 {
            now = (now + 1000).min(far - 1);
            assert!(run(&mut t, &mut d, now, |_| None).is_empty());
        }
        assert_eq!(run(&mut t, &mut d, far, |_| None), vec![1]);
    }

    #[test]
    fn a_clock_jump_of_months_is_walked_in_steps() {
        let mut t = Timers::new(16, 7);
        let day = 86_400_000u64;
        let mut d = vec![None; 16];
        for (s, e) in [(0, 30 * day), (9, 40 * day + 1), (15, 100 * day)] {
            d[s] = Some(e);
            t.arm(s as u32, e);
        }
        assert_eq!(run(&mut t, &mut d, 40 * day, |_| None), vec![0]);
        assert_eq!(t.now(), 40 * day);
        assert_eq!(run(&mut t, &mut d, 400 * day, |_| None), vec![9, 15]);
        assert_eq!(t.now(), 400 * day);
    }

    #[test]
    fn memory_is_about_a_byte_a_slot() {
        let t = Timers::new(1 << 20, 0);
        assert_eq!(t.bytes(), Timers::bytes_for(1 << 20));
        assert!(t.bytes() < (1 << 20) * 11 / 10, "{}", t.bytes());
        assert_eq!(Timers::bytes_for(1), 8);
    }

    #[test]
    fn a_stale_deadline_is_due_now_and_an_arm_during_a_walk_is_run_in_it() {
        let mut t = Timers::new(64, 10_000);
        let mut d = vec![None; 64];
        // Slot 60 is due; running it drops slot 3 (behind the walk) and slot 63 (ahead).
        d[60] = Some(10_500);
        t.arm(60, 10_500);
        d[3] = Some(900_000);
        t.arm(3, 900_000);
        d[63] = Some(900_000);
        t.arm(63, 900_000);
        let mut ran = Vec::new();
        while let Some(leaf) = t.next_due(11_000) {
            for s in t.leaf_slots(leaf) {
                if d[s as usize].is_some_and(|e| e <= 11_000) {
                    ran.push(s);
                    d[s as usize] = None;
                    if s == 60 {
                        for o in [3, 63] {
                            // A stale deadline, earlier than the clock.
                            d[o] = Some(5_000);
                            t.arm(o as u32, 5_000);
                        }
                    }
                }
            }
            let least = t.leaf_slots(leaf).filter_map(|s| d[s as usize]).min();
            t.leaf_done(leaf, least.unwrap_or(u64::MAX));
        }
        ran.sort();
        assert_eq!(ran, vec![3, 60, 63]);
    }

    proptest! {
        /// Every armed slot runs at the first walk whose `now` reaches its deadline, never
        /// earlier, whatever the mix of arms (earlier), lazy moves (later, not armed), frees,
        /// re-files and clock steps up to a second, across the 32-bit wrap of the bounds.
        #[test]
        fn runs_exactly_when_due(
            start in prop_oneof![0u64..(1 << 40), Just((1u64 << 32) - 3_000)],
            slots in 1u32..200,
            ops in proptest::collection::vec((0u32..200, 0u64..3_000_000, 0u8..5), 1..300),
        ) {
            let mut t = Timers::new(slots, start);
            let mut d: Vec<Option<u64>> = vec![None; slots as usize];
            let mut now = start;
            for (s, delta, op) in ops {
                let s = s % slots;
                match op {
                    // A new conn or an earlier deadline (may be stale: before the clock).
                    0 | 1 => {
                        let e = (now + delta / (1 + u64::from(op) * 1000)).saturating_sub(500);
                        if d[s as usize].is_none_or(|old| e < old) {
                            t.arm(s, e);
                        }
                        d[s as usize] = Some(d[s as usize].map_or(e, |old| old.min(e)));
                    }
                    // A packet moves a deadline later: stored only.
                    2 => {
                        if let Some(old) = d[s as usize] {
                            d[s as usize] = Some(old + delta);
                        }
                    }
                    // Freed.
                    3 => d[s as usize] = None,
                    _ => {
                        let to = now + delta % 1001;
                        let want: Vec<u32> = (0..slots)
                            .filter(|&i| d[i as usize].is_some_and(|e| e <= to))
                            .collect();
                        // Half the due slots are filed again 1 s on.
                        let ran = run(&mut t, &mut d, to, |i| (i % 2 == 0).then_some(to + 1000));
                        prop_assert_eq!(ran, want);
                        now = to;
                        prop_assert_eq!(t.now(), now);
                    }
                }
            }
        }
    }
}

//! Hierarchical timer wheel of one shard, in milliseconds of virtual time.
//!
//! Six levels of 64 slots (level L slot width 64^L ms, 2^36 ms in all), intrusive circular
//! doubly-linked lists in preallocated arrays indexed by conn slot, so insert, remove and
//! re-file are O(1) and nothing allocates after [`TimerWheel::new`]. Expiry is exact to the
//! millisecond: an entry is filed at the lowest level whose slot it shares the higher bits
//! with, cascades down as time reaches its slot, and fires at its tick.
//!
//! The wheel is lazy by design: it knows only the deadline an entry was *filed* with. The
//! owner keeps the real deadline in the conn (a packet only stores it) and, when an entry
//! fires early, files it again. Fired entries are handed out one at a time by
//! [`TimerWheel::pop_expired`] in no promised order; the owner may insert or remove any entry
//! between pops (expiring one conn can expire its controller at once).

/// Slots per level (bits).
const BITS: u32 = 6;
const SLOTS: usize = 1 << BITS;
const LEVELS: usize = 6;
const NIL: u32 = u32::MAX;

/// One entry's links and filed deadline, together so that filing touches one cache line.
#[derive(Clone, Copy)]
struct Link {
    next: u32,
    prev: u32,
    /// Deadline the entry was filed with.
    when: u64,
}

pub struct TimerWheel {
    /// `capacity` entries followed by one sentinel per slot and one for the due list.
    links: Box<[Link]>,
    /// Per level: bit s set if slot s may be non-empty (cleared lazily).
    occupied: [u64; LEVELS],
    capacity: u32,
    /// Last tick processed: every entry filed for <= now has been moved to the due list.
    now: u64,
    len: u32,
}

impl TimerWheel {
    pub fn new(capacity: u32, now: u64) -> Self {
        let total = capacity as usize + LEVELS * SLOTS + 1;
        let mut links = crate::mem::huge_slice(
            total,
            Link {
                next: NIL,
                prev: NIL,
                when: 0,
            },
        );
        for (s, l) in links.iter_mut().enumerate().skip(capacity as usize) {
            l.next = s as u32;
            l.prev = s as u32;
        }
        TimerWheel {
            links,
            occupied: [0; LEVELS],
            capacity,
            now,
            len: 0,
        }
    }

    #[inline]
    fn head(&self, level: usize, slot: usize) -> u32 {
        self.capacity + (level * SLOTS + slot) as u32
    }
    #[inline]
    fn due_head(&self) -> u32 {
        self.capacity + (LEVELS * SLOTS) as u32
    }

    /// Bytes of the wheel.
    pub fn bytes(&self) -> usize {
        core::mem::size_of_val(&*self.links)
    }
    /// Bytes [`TimerWheel::new`] takes for `capacity` entries.
    pub fn bytes_for(capacity: u32) -> usize {
        (capacity as usize + LEVELS * SLOTS + 1) * core::mem::size_of::<Link>()
    }

    /// Entries filed (in a slot or due).
    pub fn len(&self) -> u32 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The wheel's current tick.
    pub fn now(&self) -> u64 {
        self.now
    }
    /// Is `id` filed?
    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        self.links[id as usize].next != NIL
    }
    /// The deadline `id` was filed with.
    #[inline]
    pub fn filed(&self, id: u32) -> u64 {
        self.links[id as usize].when
    }

    #[inline]
    fn link_tail(&mut self, head: u32, id: u32) {
        let last = self.links[head as usize].prev;
        self.links[last as usize].next = id;
        self.links[id as usize].prev = last;
        self.links[id as usize].next = head;
        self.links[head as usize].prev = id;
    }

    #[inline]
    fn unlink(&mut self, id: u32) {
        let (n, p) = (self.links[id as usize].next, self.links[id as usize].prev);
        self.links[p as usize].next = n;
        self.links[n as usize].prev = p;
        self.links[id as usize].next = NIL;
        self.links[id as usize].prev = NIL;
    }

    /// File `id` (not filed yet) to fire at `deadline`. A deadline not after the wheel's
    /// current tick goes straight to the due list.
    #[inline]
    pub fn insert(&mut self, id: u32, deadline: u64) {
        debug_assert!(!self.contains(id));
        self.links[id as usize].when = deadline;
        self.len += 1;
        self.place(id, deadline);
    }

    #[inline]
    fn place(&mut self, id: u32, deadline: u64) {
        if deadline <= self.now {
            let h = self.due_head();
            self.link_tail(h, id);
            return;
        }
        // Lowest level whose slot shares all higher bits with `now`.
        let diff = deadline ^ self.now;
        let level = ((63 - diff.leading_zeros()) / BITS) as usize;
        let level = level.min(LEVELS - 1);
        let slot = ((deadline >> (BITS as usize * level)) as usize) & (SLOTS - 1);
        let h = self.head(level, slot);
        self.link_tail(h, id);
        self.occupied[level] |= 1 << slot;
    }

    /// Take `id` out of the wheel (no-op if not filed).
    #[inline]
    pub fn remove(&mut self, id: u32) {
        if self.contains(id) {
            self.unlink(id);
            self.len -= 1;
        }
    }

    /// Re-file `id` for `deadline` (O(1)); inserts it if it was not filed.
    #[inline]
    pub fn reschedule(&mut self, id: u32, deadline: u64) {
        self.remove(id);
        self.insert(id, deadline);
    }

    /// The next entry whose filed deadline is <= `now`, advancing the wheel up to `now` as
    /// needed; `None` once nothing more is due. The entry leaves the wheel.
    pub fn pop_expired(&mut self, now: u64) -> Option<u32> {
        loop {
            let due = self.due_head();
            let first = self.links[due as usize].next;
            if first != due {
                self.unlink(first);
                self.len -= 1;
                return Some(first);
            }
            if self.now >= now || !self.step(now) {
                return None;
            }
        }
    }

    /// Move the wheel to the next tick <= `limit` where a slot comes due (cascading higher
    /// levels and splicing a level-0 slot into the due list). False if none before `limit`
    /// (then `now = limit`).
    fn step(&mut self, limit: u64) -> bool {
        loop {
            let Some(t) = self.next_event() else {
                self.now = limit;
                return false;
            };
            if t > limit {
                self.now = limit;
                return false;
            }
            self.now = t;
            // Cascade from the highest level down: each level-L slot that starts at `t`.
            for level in (1..LEVELS).rev() {
                let shift = BITS as usize * level;
                if t & ((1u64 << shift) - 1) != 0 {
                    continue;
                }
                let slot = ((t >> shift) as usize) & (SLOTS - 1);
                if self.occupied[level] & (1 << slot) != 0 {
                    self.occupied[level] &= !(1 << slot);
                    self.cascade(level, slot);
                }
            }
            let slot = (t as usize) & (SLOTS - 1);
            if self.occupied[0] & (1 << slot) != 0 {
                self.occupied[0] &= !(1 << slot);
                let h = self.head(0, slot);
                if self.links[h as usize].next != h {
                    self.splice_to_due(h);
                    return true;
                }
            }
            // Everything due at `t` may have cascaded into the due list directly.
            let due = self.due_head();
            if self.links[due as usize].next != due {
                return true;
            }
        }
    }

    fn cascade(&mut self, level: usize, slot: usize) {
        let h = self.head(level, slot);
        loop {
            let id = self.links[h as usize].next;
            if id == h {
                break;
            }
            self.unlink(id);
            let w = self.links[id as usize].when;
            self.place(id, w);
        }
    }

    fn splice_to_due(&mut self, h: u32) {
        let due = self.due_head();
        let (first, last) = (self.links[h as usize].next, self.links[h as usize].prev);
        let tail = self.links[due as usize].prev;
        self.links[tail as usize].next = first;
        self.links[first as usize].prev = tail;
        self.links[last as usize].next = due;
        self.links[due as usize].prev = last;
        self.links[h as usize].next = h;
        self.links[h as usize].prev = h;
    }

    /// The earliest tick after `now` at which some occupied slot comes due. A lower level's
    /// event always lies inside the current slot of every higher level, so the first level
    /// with an occupied slot decides.
    fn next_event(&mut self) -> Option<u64> {
        for level in 0..LEVELS {
            let shift = BITS as usize * level;
            let cur = ((self.now >> shift) as usize) & (SLOTS - 1);
            let rotation = shift + BITS as usize;
            let base = if rotation >= 64 {
                0
            } else {
                (self.now >> rotation) << rotation
            };
            loop {
                let occ = self.occupied[level];
                if occ == 0 {
                    break;
                }
                let later = if cur == SLOTS - 1 {
                    0
                } else {
                    occ & (!0u64 << (cur + 1))
                };
                // Only the top level can hold entries of a later rotation (deadlines beyond
                // its span): those come due at their slot in the next rotation.
                let (s, t) = if later != 0 {
                    let s = later.trailing_zeros() as usize;
                    (s, base | ((s as u64) << shift))
                } else if level == LEVELS - 1 {
                    let s = occ.trailing_zeros() as usize;
                    (s, base + (1u64 << rotation) + ((s as u64) << shift))
                } else {
                    break;
                };
                let h = self.head(level, s);
                if self.links[h as usize].next == h {
                    self.occupied[level] &= !(1 << s);
                    continue;
                }
                return Some(t);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(w: &mut TimerWheel, now: u64) -> Vec<u32> {
        let mut v = Vec::new();
        while let Some(id) = w.pop_expired(now) {
            v.push(id);
        }
        v.sort();
        v
    }

    #[test]
    fn entry_fires_exactly_at_its_deadline() {
        let mut w = TimerWheel::new(4, 1000);
        w.insert(0, 60_000 + 1000);
        assert!(drain(&mut w, 60_999).is_empty());
        assert_eq!(drain(&mut w, 61_000), vec![0]);
        assert!(w.is_empty());
    }

    #[test]
    fn past_deadline_is_due_at_once_and_remove_cancels() {
        let mut w = TimerWheel::new(4, 500);
        w.insert(1, 10);
        w.insert(2, 900);
        w.remove(2);
        assert_eq!(drain(&mut w, 500), vec![1]);
        assert!(drain(&mut w, 10_000).is_empty());
    }

    #[test]
    fn far_deadlines_cascade_down_and_fire_on_time() {
        let mut w = TimerWheel::new(3, 0);
        w.insert(0, 3_600_000 * 30); // 30 h
        w.insert(1, 262_144 + 5);
        w.insert(2, (1 << 36) + 7); // beyond the top level's span
        assert!(drain(&mut w, 262_144 + 4).is_empty());
        assert_eq!(drain(&mut w, 262_144 + 5), vec![1]);
        assert!(drain(&mut w, 3_600_000 * 30 - 1).is_empty());
        assert_eq!(drain(&mut w, 3_600_000 * 30), vec![0]);
        assert!(drain(&mut w, 1 << 36).is_empty());
        assert_eq!(drain(&mut w, (1 << 36) + 7), vec![2]);
    }

    #[test]
    fn a_million_timers_each_fire_at_their_own_millisecond() {
        const N: u32 = 1_000_000;
        let mut w = TimerWheel::new(N, 5_000);
        let mut rng = crate::rng::Rng::new(11);
        let mut deadline = vec![0u64; N as usize];
        for id in 0..N {
            // From 1 ms to ~1 h ahead, spread over every level.
            let span = 1u64 << rng.below(22);
            let d = 5_000 + 1 + rng.below(span);
            deadline[id as usize] = d;
            w.insert(id, d);
        }
        let mut fired = 0u32;
        let mut now = 5_000;
        while fired < N {
            now += 1 + rng.below(50_000);
            while let Some(id) = w.pop_expired(now) {
                let d = deadline[id as usize];
                assert!(d <= now, "fired early");
                assert!(d + 50_001 > now, "fired late");
                fired += 1;
            }
        }
        assert!(w.is_empty());
    }

    proptest! {
        /// Every entry fires at the first advance whose `now` reaches its deadline, never
        /// earlier, whatever the mix of inserts, removes and advance steps.
        #[test]
        fn fires_exactly_when_due(
            start in 0u64..(1 << 40),
            ops in proptest::collection::vec((0u32..32, 0u64..5_000_000, 0u8..4), 1..300),
        ) {
            let mut w = TimerWheel::new(32, start);
            let mut model: Vec<Option<u64>> = vec![None; 32];
            let mut now = start;
            for (id, delta, op) in ops {
                match op {
                    0 | 1 => {
                        let d = now + delta / (1 + u64::from(op) * 1000);
                        w.reschedule(id, d);
                        model[id as usize] = Some(d);
                    }
                    2 => { w.remove(id); model[id as usize] = None; }
                    _ => {
                        now += delta / 3;
                        let fired = drain(&mut w, now);
                        let mut want: Vec<u32> = (0..32u32).filter(|&i| model[i as usize].is_some_and(|d| d <= now)).collect();
                        want.sort();
                        prop_assert_eq!(&fired, &want);
                        for i in fired { model[i as usize] = None; }
                    }
                }
            }
            let fired = drain(&mut w, u64::MAX / 2);
            let want: Vec<u32> = (0..32u32).filter(|&i| model[i as usize].is_some()).collect();
            prop_assert_eq!(fired, want);
        }
    }
}

//! Early fragments wait for their first. A fragment that arrives before its datagram's first
//! has no forwarding to follow yet (only the first carries the ports the engine needs); IPVS
//! never meets one, because the kernel reassembles before IPVS sees the datagram, in any
//! arrival order. So such a fragment is held here, under its datagram's [`FragKey`], until the
//! first arrives (the caller then pops the held ones, in arrival order, and sends them after
//! it) or until `hold_ms` after the datagram's first held fragment (the caller frees them).
//!
//! Bounded, because held fragments are mbufs taken from the ports' pool: at most `max` in all
//! and `per_datagram` per datagram; the next are refused and handed back. A fragment flood
//! therefore costs at most `max` mbufs for `hold_ms`. Fixed capacity, no allocation after
//! [`FragHold::new`]: the fragments sit in one pool of `max` slots, each datagram's as a list.
//! `now` must not go backwards (a clock that does only delays expiry).

use super::frag::FragKey;
use crate::addr::Family;

/// Fragments a worker holds at most, both families together (mbufs out of the pool for up
/// to [`FRAG_HOLD_MS`]; `rvsd run` sizes its pool with 2048 in flight per worker).
pub const FRAG_HOLD_MAX: usize = 256;
/// Fragments of one datagram held at most: a first fragment delayed behind a few of its
/// datagram's others is reordering; a datagram sent last fragment first is not helped.
pub const FRAG_HOLD_PER_DATAGRAM: u8 = 8;
/// How long fragments wait for their first (ms). The kernel's `ipfrag_time` is 30 s, but that
/// waits on memory it accounts for; a reordered first fragment is microseconds late, and a
/// lost one never comes, so held mbufs go back to the pool soon.
pub const FRAG_HOLD_MS: u64 = 1000;

/// Datagram slots probed from a key's home slot.
const WINDOW: usize = 8;
/// End of a list.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Datagram<A> {
    key: FragKey<A>,
    /// Its fragments are freed at this time.
    deadline: u64,
    /// Its held fragments, oldest first, through `next`.
    head: u32,
    tail: u32,
    len: u8,
}

/// Why [`FragHold::hold`] refused a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldRefused {
    /// Its datagram already has `per_datagram` fragments held.
    Datagram,
    /// `max` fragments are held, or no datagram slot is free near the key's home.
    Full,
}

/// Early fragments of one family, with the caller's packet type `P`.
pub struct FragHold<A: Family, P> {
    /// Open addressing without deletion marks: a lookup looks at the whole window.
    datagrams: Box<[Option<Datagram<A>>]>,
    mask: usize,
    slots: Box<[Option<P>]>,
    /// A held fragment's successor in its datagram, or a free slot's in the free list.
    next: Box<[u32]>,
    free: u32,
    held: usize,
    per_datagram: u8,
    hold_ms: u64,
    /// No datagram is due before this (`u64::MAX` with none held): `expire` returns at once.
    next_due: u64,
}

impl<A: Family, P> FragHold<A, P> {
    /// Room for `max` fragments (at least 1), `per_datagram` (at least 1) of one datagram,
    /// each freed `hold_ms` after its datagram's first held fragment.
    #[cold]
    pub fn new(max: usize, per_datagram: u8, hold_ms: u64) -> Self {
        let max = max.clamp(1, NIL as usize - 1);
        // Load at most 1/2 with one fragment per datagram.
        let n = (2 * max).max(WINDOW).next_power_of_two();
        FragHold {
            datagrams: vec![None; n].into_boxed_slice(),
            mask: n - 1,
            slots: (0..max).map(|_| None).collect(),
            next: (1..=max as u32)
                .map(|i| if i as usize == max { NIL } else { i })
                .collect(),
            free: 0,
            held: 0,
            per_datagram: per_datagram.max(1),
            hold_ms,
            next_due: u64::MAX,
        }
    }

    /// Fragments held.
    #[inline]
    pub fn len(&self) -> usize {
        self.held
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    #[inline]
    fn home(&self, k: &FragKey<A>) -> usize {
        let h = (k.src.fold()
            ^ k.dst.fold().rotate_left(21)
            ^ (u64::from(k.ident) << 8)
            ^ u64::from(k.proto))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & self.mask
    }

    fn find(&self, k: &FragKey<A>) -> Option<usize> {
        let home = self.home(k);
        (0..WINDOW)
            .map(|i| (home + i) & self.mask)
            .find(|&at| self.datagrams[at].is_some_and(|d| d.key == *k))
    }

    /// Hold `p`, an early fragment of datagram `key`; refused, it comes back.
    pub fn hold(&mut self, key: FragKey<A>, p: P, now: u64) -> Result<(), (P, HoldRefused)> {
        let found = self.find(&key);
        if let Some(at) = found {
            if self.datagrams[at].is_some_and(|d| d.len >= self.per_datagram) {
                return Err((p, HoldRefused::Datagram));
            }
        }
        if self.free == NIL {
            return Err((p, HoldRefused::Full));
        }
        let at = match found {
            Some(at) => at,
            None => {
                let home = self.home(&key);
                let Some(at) = (0..WINDOW)
                    .map(|i| (home + i) & self.mask)
                    .find(|&at| self.datagrams[at].is_none())
                else {
                    return Err((p, HoldRefused::Full));
                };
                let deadline = now.saturating_add(self.hold_ms);
                self.datagrams[at] = Some(Datagram {
                    key,
                    deadline,
                    head: NIL,
                    tail: NIL,
                    len: 0,
                });
                self.next_due = self.next_due.min(deadline);
                at
            }
        };
        let s = self.free;
        self.free = self.next[s as usize];
        self.next[s as usize] = NIL;
        self.slots[s as usize] = Some(p);
        self.held += 1;
        if let Some(d) = &mut self.datagrams[at] {
            if d.tail == NIL {
                d.head = s;
            } else {
                self.next[d.tail as usize] = s;
            }
            d.tail = s;
            d.len += 1;
        }
        Ok(())
    }

    /// The oldest fragment held for datagram `key` (its first has arrived); `None` when none
    /// is left, and the datagram is forgotten.
    pub fn pop(&mut self, key: &FragKey<A>) -> Option<P> {
        if self.held == 0 {
            return None;
        }
        let at = self.find(key)?;
        self.pop_at(at)
    }

    fn pop_at(&mut self, at: usize) -> Option<P> {
        let d = self.datagrams[at].as_mut()?;
        let s = d.head;
        if s == NIL {
            self.datagrams[at] = None;
            return None;
        }
        d.head = self.next[s as usize];
        d.len -= 1;
        if d.head == NIL {
            self.datagrams[at] = None;
        }
        self.next[s as usize] = self.free;
        self.free = s;
        self.held -= 1;
        self.slots[s as usize].take()
    }

    /// Free the fragments of every datagram due at `now`, into `dropped`.
    #[inline]
    pub fn expire(&mut self, now: u64, dropped: &mut impl FnMut(P)) {
        if now >= self.next_due {
            self.expire_due(now, dropped);
        }
    }

    #[cold]
    fn expire_due(&mut self, now: u64, dropped: &mut impl FnMut(P)) {
        let mut next_due = u64::MAX;
        for at in 0..self.datagrams.len() {
            match self.datagrams[at] {
                Some(d) if d.deadline <= now => {
                    while let Some(p) = self.pop_at(at) {
                        dropped(p);
                    }
                }
                Some(d) => next_due = next_due.min(d.deadline),
                None => {}
            }
        }
        self.next_due = next_due;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::V4;
    use proptest::prelude::*;

    fn key(ident: u32) -> FragKey<V4> {
        FragKey {
            src: V4(1),
            dst: V4(2),
            proto: 17,
            ident,
        }
    }

    #[test]
    fn held_fragments_come_back_in_arrival_order_then_the_datagram_is_gone() {
        let mut h = FragHold::new(16, 8, 1000);
        for p in [3, 1, 2] {
            h.hold(key(7), p, 10).unwrap();
        }
        h.hold(key(8), 9, 10).unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(h.pop(&key(7)), Some(3));
        assert_eq!(h.pop(&key(7)), Some(1));
        assert_eq!(h.pop(&key(7)), Some(2));
        assert_eq!(h.pop(&key(7)), None);
        assert_eq!(h.len(), 1);
        // A new fragment of the same datagram starts a new wait.
        h.hold(key(7), 4, 20).unwrap();
        assert_eq!(h.pop(&key(7)), Some(4));
    }

    #[test]
    fn a_datagram_holds_at_most_per_datagram_and_the_hold_at_most_max() {
        let mut h = FragHold::new(10, 4, 1000);
        for p in 0..4 {
            h.hold(key(1), p, 0).unwrap();
        }
        assert_eq!(h.hold(key(1), 4, 0), Err((4, HoldRefused::Datagram)));
        for i in 0..6 {
            h.hold(key(100 + i), i, 0).unwrap();
        }
        assert_eq!(h.len(), 10);
        assert_eq!(h.hold(key(200), 0, 0), Err((0, HoldRefused::Full)));
    }

    #[test]
    fn fragments_are_freed_at_their_datagrams_deadline() {
        let mut h = FragHold::new(16, 8, 1000);
        h.hold(key(1), 1, 100).unwrap();
        h.hold(key(2), 2, 600).unwrap();
        // A later fragment does not extend its datagram's wait.
        h.hold(key(1), 3, 900).unwrap();
        let mut freed = Vec::new();
        h.expire(1099, &mut |p| freed.push(p));
        assert!(freed.is_empty());
        h.expire(1100, &mut |p| freed.push(p));
        assert_eq!(freed, [1, 3]);
        assert_eq!(h.pop(&key(1)), None);
        h.expire(1599, &mut |p| freed.push(p));
        assert_eq!(freed.len(), 2);
        h.expire(1600, &mut |p| freed.push(p));
        assert_eq!(freed, [1, 3, 2]);
        assert!(h.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Hold(u32),
        Pop(u32),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u32..12).prop_map(Op::Hold),
            2 => (0u32..12).prop_map(Op::Pop),
            1 => (0u64..400).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Against a plain model: every fragment held comes out exactly once (popped in
        /// arrival order or freed at its datagram's deadline), never more than `max` nor
        /// `per_datagram` of a datagram are held, and a refusal hands the fragment back.
        #[test]
        fn the_hold_matches_a_model(ops in prop::collection::vec(op(), 1..300)) {
            const MAX: usize = 10;
            const PER: usize = 3;
            const MS: u64 = 500;
            let mut h = FragHold::<V4, u32>::new(MAX, PER as u8, MS);
            // ident -> (deadline, fragments)
            let mut model: Vec<(u32, u64, Vec<u32>)> = Vec::new();
            let (mut now, mut seq) = (0u64, 0u32);
            for op in ops {
                match op {
                    Op::Hold(i) => {
                        seq += 1;
                        let held: usize = model.iter().map(|d| d.2.len()).sum();
                        let r = h.hold(key(i), seq, now);
                        match model.iter_mut().find(|d| d.0 == i) {
                            Some(d) if d.2.len() >= PER => {
                                prop_assert_eq!(r, Err((seq, HoldRefused::Datagram)));
                            }
                            _ if held >= MAX => {
                                prop_assert_eq!(r, Err((seq, HoldRefused::Full)));
                            }
                            Some(d) => {
                                prop_assert_eq!(r, Ok(()));
                                d.2.push(seq);
                            }
                            None => match r {
                                Ok(()) => model.push((i, now + MS, vec![seq])),
                                // Only when the key's whole window is taken.
                                Err((p, HoldRefused::Full)) => prop_assert_eq!(p, seq),
                                Err(e) => prop_assert!(false, "{:?}", e),
                            },
                        }
                    }
                    Op::Pop(i) => {
                        let mut got = Vec::new();
                        while let Some(p) = h.pop(&key(i)) {
                            got.push(p);
                        }
                        let want = model
                            .iter()
                            .position(|d| d.0 == i)
                            .map(|at| model.remove(at).2)
                            .unwrap_or_default();
                        prop_assert_eq!(got, want);
                    }
                    Op::Advance(ms) => {
                        now += ms;
                        let mut freed = Vec::new();
                        h.expire(now, &mut |p| freed.push(p));
                        freed.sort_unstable();
                        let mut want: Vec<u32> = model
                            .iter()
                            .filter(|d| d.1 <= now)
                            .flat_map(|d| d.2.clone())
                            .collect();
                        want.sort_unstable();
                        model.retain(|d| d.1 > now);
                        prop_assert_eq!(freed, want);
                    }
                }
                let held: usize = model.iter().map(|d| d.2.len()).sum();
                prop_assert_eq!(h.len(), held);
                prop_assert!(h.len() <= MAX);
            }
        }
    }
}

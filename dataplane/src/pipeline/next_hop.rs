//! The next-hop memo: for a dest's address, the egress port and the Ethernet addresses that
//! the last packet there went out with (IPVS keeps a dest's route in `dest->dest_dst`, Linux a
//! neighbor's Ethernet header in its `hh_cache`). A packet to a dest whose memo holds is sent
//! without a route lookup or a neighbor table probe.
//!
//! An entry holds while the neighbor table's generation is the one it was taken at: any
//! neighbor's state, MAC or port changing moves the generation on
//! ([`crate::l3::NeighTable::generation`]). The routes never change after `Worker::new`.
//! Replies are not memoized: they go to clients, too many for a few slots.

use crate::addr::Family;

/// Slots (a power of two): a worker forwards to a few dests, each with one slot.
const SLOTS: usize = 64;

/// Direct-mapped memo of (dest address, direct or routed) -> egress.
pub(super) struct NextHops<A> {
    slots: [Hop<A>; SLOTS],
}

/// One cache line a slot: a slot read by every packet to its dest never straddles two.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Hop<A> {
    to: A,
    /// DR (to the dest itself) rather than to the dest's route's gateway.
    direct: bool,
    /// The neighbor table's generation it was taken at; 0 (never a generation) when empty.
    generation: u64,
    port: u16,
    /// Destination and source MAC, as the frame's first 12 bytes.
    macs: [u8; 12],
    /// The neighbor table's slot of the next hop.
    neigh: u32,
    /// When the neighbor's use was last stamped (ms): once a millisecond (the stamp's unit),
    /// not a store per packet into the neighbor table.
    stamped: u64,
}

/// An egress: send out of `port` with Ethernet addresses `macs` (destination, source); the
/// next hop is neighbor slot `neigh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Egress {
    pub port: u16,
    pub macs: [u8; 12],
    pub neigh: u32,
}

/// A memo hit: the egress, and whether the neighbor's use is to be stamped (the first
/// packet of a millisecond).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Hit {
    pub egress: Egress,
    pub stamp: bool,
}

impl<A: Family> NextHops<A> {
    pub(super) fn new() -> Self {
        NextHops {
            slots: [Hop::default(); SLOTS],
        }
    }

    #[inline(always)]
    fn at(to: A) -> usize {
        let f = to.fold();
        (f ^ f >> 29) as usize & (SLOTS - 1)
    }

    /// The egress memoized for `to` at neighbor generation `generation`, for a packet at
    /// `now`.
    #[inline(always)]
    pub(super) fn get(&mut self, to: A, direct: bool, generation: u64, now: u64) -> Option<Hit> {
        let h = &mut self.slots[Self::at(to)];
        if h.to != to || h.direct != direct || h.generation != generation {
            return None;
        }
        let stamp = h.stamped != now;
        if stamp {
            h.stamped = now;
        }
        let egress = Egress {
            port: h.port,
            macs: h.macs,
            neigh: h.neigh,
        };
        Some(Hit { egress, stamp })
    }

    /// Memoize an egress just resolved (and its neighbor's use stamped) at `now`, at
    /// neighbor generation `generation`.
    #[inline]
    pub(super) fn put(&mut self, to: A, direct: bool, generation: u64, e: Egress, now: u64) {
        self.slots[Self::at(to)] = Hop {
            to,
            direct,
            generation,
            port: e.port,
            macs: e.macs,
            neigh: e.neigh,
            stamped: now,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::V4;

    const E: Egress = Egress {
        port: 1,
        macs: [2, 0, 0, 0, 0, 7, 2, 0, 0, 0, 0, 1],
        neigh: 3,
    };

    fn hit(stamp: bool) -> Option<Hit> {
        Some(Hit { egress: E, stamp })
    }

    #[test]
    fn a_memo_holds_for_its_address_kind_and_generation_only() {
        let mut m = NextHops::<V4>::new();
        let empty = m.get(V4(0), false, 1, 0);
        assert_eq!(empty, None, "an empty slot matches no generation");
        m.put(V4(10), true, 5, E, 100);
        assert_eq!(m.get(V4(10), true, 5, 100), hit(false));
        assert_eq!(m.get(V4(10), true, 6, 100), None, "the neighbors changed");
        assert_eq!(m.get(V4(10), false, 5, 100), None, "routed, not direct");
        assert_eq!(m.get(V4(11), true, 5, 100), None);
        // Another address in the same slot replaces it.
        let other = (1..)
            .map(V4)
            .find(|&a| a != V4(10) && NextHops::<V4>::at(a) == NextHops::<V4>::at(V4(10)))
            .unwrap();
        m.put(other, true, 5, E, 100);
        assert_eq!(m.get(V4(10), true, 5, 100), None);
        assert_eq!(m.get(other, true, 5, 100), hit(false));
    }

    #[test]
    fn the_neighbor_use_is_stamped_once_a_millisecond() {
        let mut m = NextHops::<V4>::new();
        m.put(V4(10), false, 1, E, 100);
        assert_eq!(m.get(V4(10), false, 1, 100), hit(false), "stamped when put");
        assert_eq!(m.get(V4(10), false, 1, 101), hit(true));
        assert_eq!(m.get(V4(10), false, 1, 101), hit(false));
        assert_eq!(m.get(V4(10), false, 1, 102), hit(true));
    }
}

//! A small set of addresses probed for every frame (the VIPs, the ports' own addresses): a
//! 64-bit filter answers most misses with one test, a few members are scanned in place,
//! many are hashed.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use crate::addr::Family;
use crate::config::FastHasher;

/// A set probed per packet: the fast hasher, not SipHash.
type FastSet<T> = HashSet<T, BuildHasherDefault<FastHasher>>;

pub(super) struct AddrSet<A> {
    /// Sorted, without repeats (the VIPs' announcement order).
    pub(super) sorted: Vec<A>,
    /// Bit [`AddrSet::bit`] of each member: an address whose bit is clear is not in the set.
    filter: u64,
    many: Option<FastSet<A>>,
}

impl<A: Family> AddrSet<A> {
    /// Up to this many members are scanned, which beats hashing them.
    const FEW: usize = 16;

    pub(super) fn new(mut v: Vec<A>) -> Self {
        v.sort_unstable();
        v.dedup();
        let filter = v.iter().fold(0, |f, &a| f | Self::bit(a));
        let many = (v.len() > Self::FEW).then(|| v.iter().copied().collect());
        AddrSet {
            sorted: v,
            filter,
            many,
        }
    }

    /// Addresses that differ in their last bits (a VIP range, a subnet's hosts) take
    /// different bits.
    #[inline(always)]
    fn bit(a: A) -> u64 {
        let f = a.fold();
        1 << ((f ^ f >> 29) & 63)
    }

    #[inline(always)]
    pub(super) fn contains(&self, a: &A) -> bool {
        if self.filter & Self::bit(*a) == 0 {
            return false;
        }
        match &self.many {
            None => self.sorted.iter().any(|x| x == a),
            Some(set) => set.contains(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{V4, V6};
    use proptest::prelude::*;

    proptest! {
        /// The filter never hides a member, whatever the set's size (scanned or hashed).
        #[test]
        fn contains_exactly_the_members(
            members in proptest::collection::vec(any::<u32>(), 0..40),
            probes in proptest::collection::vec(any::<u32>(), 0..40),
        ) {
            let set = AddrSet::new(members.iter().map(|&a| V4(a)).collect());
            for a in members.iter().chain(&probes) {
                prop_assert_eq!(set.contains(&V4(*a)), members.contains(a));
            }
        }
    }

    #[test]
    fn ipv6_members_are_found_and_others_not() {
        let a = V6::from_ip("2001:db8::100".parse().unwrap()).unwrap();
        let b = V6::from_ip("2001:db8::101".parse().unwrap()).unwrap();
        let set = AddrSet::new(vec![a]);
        assert!(set.contains(&a));
        assert!(!set.contains(&b));
    }
}

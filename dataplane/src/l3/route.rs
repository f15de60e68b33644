//! Longest-prefix-match routing, one table per family: which port a packet leaves by and
//! which address must be resolved to a MAC for it (the gateway, or the destination itself on a
//! connected subnet).
//!
//! The table is built once off the hot path ([`RouteTable::build`]) from the operator's routes
//! plus one connected route per port address, then never changes: a route change builds a new
//! table and swaps it in whole. Workers share it read-only (it is `Send + Sync` and has no
//! interior mutability).
//!
//! # Structure and cost
//!
//! All prefixes live in one flat open-addressing table keyed by (masked prefix, length), load
//! at most 1/4, linear probing; beside it, the prefix lengths present, longest first. A lookup
//! walks those lengths: mask the destination, hash, probe; the first hit is the longest match.
//! The cost is one mask + one multiply-xorshift hash + about 1.4 slot reads (all in one
//! contiguous array, no pointer chasing) per *distinct length present*, not per route: a
//! typical appliance has 2 to 4 (host /32s or /128s, the connected /24s or /64s, the default
//! /0), the worst case is 33 (IPv4) or 129 (IPv6). A compressed trie (Poptrie, DIR-24-8) would
//! bound the work by the address width instead, at the price of far more code and memory; an
//! L4 balancer's tables are tens of routes with few lengths, where this is both simpler and
//! faster. Up to [`FEW`] routes, a lookup instead scans them longest first (a mask and a
//! compare each, no hashing): the common appliance with a connected subnet or two and a
//! default route. Nothing allocates after [`RouteTable::build`].

use crate::addr::Family;

/// Where a prefix is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route<A> {
    /// Egress port.
    pub port: u16,
    /// Gateway; `None` for a connected route (the destination itself is the next hop).
    pub via: Option<A>,
}

/// Why a route list was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The prefix length exceeds the address width (e.g. `/33` for IPv4).
    PrefixTooLong { prefix: std::net::IpAddr, len: u8 },
    /// Bits beyond the prefix length are set (`10.0.0.1/8`): almost always a typo.
    HostBitsSet { prefix: std::net::IpAddr, len: u8 },
    /// The same prefix (address and length) appears twice.
    Duplicate { prefix: std::net::IpAddr, len: u8 },
}

impl core::fmt::Display for RouteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            RouteError::PrefixTooLong { prefix, len } => {
                write!(f, "route {prefix}/{len}: prefix longer than the address")
            }
            RouteError::HostBitsSet { prefix, len } => {
                write!(f, "route {prefix}/{len}: host bits set")
            }
            RouteError::Duplicate { prefix, len } => {
                write!(f, "route {prefix}/{len}: duplicate prefix")
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// A route as given: prefix, length, where it leads.
type Entry<A> = (A, u8, Route<A>);

/// Route counts up to which a lookup scans the routes instead of hashing.
pub const FEW: usize = 8;

/// Marks an empty slot (no valid prefix length is this long).
const EMPTY: u8 = u8::MAX;

#[derive(Clone, Copy)]
struct Slot<A> {
    prefix: A,
    /// Prefix length, or [`EMPTY`].
    len: u8,
    route: Route<A>,
}

/// An immutable longest-prefix-match table of one family.
pub struct RouteTable<A: Family> {
    /// Open addressing on (prefix, len); a power of two, at least 4 slots per route.
    slots: Box<[Slot<A>]>,
    /// Prefix lengths present, longest first, each once.
    lens: Box<[u8]>,
    /// The routes in the order given, for listings.
    routes: Box<[(A, u8, Route<A>)]>,
    /// Up to [`FEW`] routes: all of them, longest prefix first (a stable order).
    few: Option<Box<[Entry<A>]>>,
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

#[inline]
fn slot_hash<A: Family>(prefix: A, len: u8) -> u64 {
    mix(prefix.fold() ^ (u64::from(len) << 56).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

impl<A: Family> RouteTable<A> {
    /// Build from `(prefix, length, route)` entries, connected routes included (as entries
    /// with `via: None`). Fails on a prefix longer than the address, host bits beyond the
    /// length, or a prefix given twice.
    #[cold]
    pub fn build(entries: &[(A, u8, Route<A>)]) -> Result<Self, RouteError> {
        let cap = (entries.len() * 4).next_power_of_two().max(4);
        let empty = Slot {
            prefix: A::default(),
            len: EMPTY,
            route: Route { port: 0, via: None },
        };
        let mut slots = vec![empty; cap].into_boxed_slice();
        let mask = cap - 1;
        let mut present = [false; 129];
        for &(prefix, len, route) in entries {
            if u32::from(len) > A::BITS {
                return Err(RouteError::PrefixTooLong {
                    prefix: prefix.to_ip(),
                    len,
                });
            }
            if prefix.mask(len) != prefix {
                return Err(RouteError::HostBitsSet {
                    prefix: prefix.to_ip(),
                    len,
                });
            }
            let mut i = slot_hash(prefix, len) as usize & mask;
            loop {
                let s = &mut slots[i];
                if s.len == EMPTY {
                    *s = Slot { prefix, len, route };
                    break;
                }
                if s.len == len && s.prefix == prefix {
                    return Err(RouteError::Duplicate {
                        prefix: prefix.to_ip(),
                        len,
                    });
                }
                i = (i + 1) & mask;
            }
            present[usize::from(len)] = true;
        }
        let lens: Box<[u8]> = (0..=128u8)
            .rev()
            .filter(|&l| present[usize::from(l)])
            .collect();
        let few = (entries.len() <= FEW).then(|| {
            let mut v = entries.to_vec();
            v.sort_by_key(|&(_, len, _)| core::cmp::Reverse(len));
            v.into_boxed_slice()
        });
        Ok(RouteTable {
            slots,
            lens,
            routes: entries.into(),
            few,
        })
    }

    /// The route of the longest prefix containing `dst`.
    #[inline]
    pub fn lookup(&self, dst: A) -> Option<Route<A>> {
        if let Some(few) = &self.few {
            return few
                .iter()
                .find(|&&(prefix, len, _)| dst.mask(len) == prefix)
                .map(|&(_, _, r)| r);
        }
        let mask = self.slots.len() - 1;
        for &len in self.lens.iter() {
            let key = dst.mask(len);
            let mut i = slot_hash(key, len) as usize & mask;
            loop {
                let s = &self.slots[i];
                if s.len == EMPTY {
                    break;
                }
                if s.len == len && s.prefix == key {
                    return Some(s.route);
                }
                i = (i + 1) & mask;
            }
        }
        None
    }

    /// Egress port and the address to resolve for `dst`: the gateway, or `dst` itself when
    /// connected.
    #[inline]
    pub fn next_hop(&self, dst: A) -> Option<(u16, A)> {
        self.lookup(dst).map(|r| (r.port, r.via.unwrap_or(dst)))
    }

    /// The routes as given to [`RouteTable::build`].
    pub fn routes(&self) -> impl Iterator<Item = (A, u8, Route<A>)> + '_ {
        self.routes.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{V4, V6};
    use proptest::prelude::*;

    fn v4(s: &str) -> V4 {
        V4::from_ip(s.parse().unwrap()).unwrap()
    }

    fn v6(s: &str) -> V6 {
        V6::from_ip(s.parse().unwrap()).unwrap()
    }

    fn v6_bits(v: u128) -> V6 {
        V6([
            (v >> 96) as u32,
            (v >> 64) as u32,
            (v >> 32) as u32,
            v as u32,
        ])
    }

    fn conn(port: u16) -> Route<V4> {
        Route { port, via: None }
    }

    #[test]
    fn longest_prefix_wins_and_next_hop_is_gateway_or_destination() {
        let gw = v4("192.168.1.1");
        let t = RouteTable::build(&[
            (
                v4("0.0.0.0"),
                0,
                Route {
                    port: 0,
                    via: Some(gw),
                },
            ),
            (v4("192.168.1.0"), 24, conn(0)),
            (v4("10.1.0.0"), 16, conn(1)),
            (
                v4("10.1.2.0"),
                24,
                Route {
                    port: 2,
                    via: Some(v4("10.1.0.254")),
                },
            ),
            (v4("10.1.2.7"), 32, conn(3)),
        ])
        .unwrap();
        assert_eq!(t.next_hop(v4("8.8.8.8")), Some((0, gw)));
        assert_eq!(t.next_hop(v4("192.168.1.9")), Some((0, v4("192.168.1.9"))));
        assert_eq!(t.next_hop(v4("10.1.9.9")), Some((1, v4("10.1.9.9"))));
        assert_eq!(t.next_hop(v4("10.1.2.8")), Some((2, v4("10.1.0.254"))));
        assert_eq!(t.next_hop(v4("10.1.2.7")), Some((3, v4("10.1.2.7"))));
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn no_default_route_means_no_route() {
        let t = RouteTable::build(&[(v4("10.0.0.0"), 8, conn(0))]).unwrap();
        assert_eq!(t.lookup(v4("11.0.0.1")), None);
        let empty = RouteTable::<V4>::build(&[]).unwrap();
        assert_eq!(empty.lookup(v4("10.0.0.1")), None);
        assert!(empty.is_empty());
    }

    #[test]
    fn v6_longest_prefix_wins() {
        let gw = v6("fe80::1");
        let t = RouteTable::build(&[
            (
                V6::default(),
                0,
                Route {
                    port: 1,
                    via: Some(gw),
                },
            ),
            (
                v6("2001:db8::"),
                32,
                Route {
                    port: 2,
                    via: Some(v6("2001:db8::1")),
                },
            ),
            (v6("2001:db8:0:5::"), 64, Route { port: 3, via: None }),
        ])
        .unwrap();
        assert_eq!(t.next_hop(v6("2606:4700::1")), Some((1, gw)));
        assert_eq!(
            t.next_hop(v6("2001:db8:7::1")),
            Some((2, v6("2001:db8::1")))
        );
        let host = v6("2001:db8:0:5::42");
        assert_eq!(t.next_hop(host), Some((3, host)));
    }

    #[test]
    fn bad_route_lists_are_refused() {
        assert_eq!(
            RouteTable::build(&[(v4("10.0.0.0"), 33, conn(0))]).err(),
            Some(RouteError::PrefixTooLong {
                prefix: v4("10.0.0.0").to_ip(),
                len: 33
            })
        );
        assert_eq!(
            RouteTable::build(&[(v4("10.0.0.1"), 8, conn(0))]).err(),
            Some(RouteError::HostBitsSet {
                prefix: v4("10.0.0.1").to_ip(),
                len: 8
            })
        );
        let dup = RouteTable::build(&[(v4("10.0.0.0"), 8, conn(0)), (v4("10.0.0.0"), 8, conn(1))]);
        assert_eq!(
            dup.err(),
            Some(RouteError::Duplicate {
                prefix: v4("10.0.0.0").to_ip(),
                len: 8
            })
        );
        // Same address, other length: two distinct prefixes.
        assert!(
            RouteTable::build(&[(v4("10.0.0.0"), 8, conn(0)), (v4("10.0.0.0"), 16, conn(1))])
                .is_ok()
        );
        assert!(
            RouteTable::<V6>::build(&[(V6::default(), 129, Route { port: 0, via: None })]).is_err()
        );
        let msg = RouteError::HostBitsSet {
            prefix: v4("10.0.0.1").to_ip(),
            len: 8,
        }
        .to_string();
        assert_eq!(msg, "route 10.0.0.1/8: host bits set");
    }

    #[test]
    fn table_is_shareable_between_workers() {
        fn shareable<T: Send + Sync>() {}
        shareable::<RouteTable<V4>>();
        shareable::<RouteTable<V6>>();
    }

    /// Reference: scan every route, keep the longest containing `dst`.
    fn naive<A: Family>(routes: &[(A, u8, Route<A>)], dst: A) -> Option<Route<A>> {
        routes
            .iter()
            .filter(|&&(p, l, _)| dst.mask(l) == p)
            .max_by_key(|&&(_, l, _)| l)
            .map(|&(_, _, r)| r)
    }

    /// Routes from raw draws: addresses near a few bases so that prefixes nest and overlap,
    /// duplicates dropped; destinations near the routes or anywhere.
    fn check<A: Family>(raw: Vec<(A, u8, Route<A>)>, dsts: Vec<A>) -> Result<(), TestCaseError> {
        let mut routes: Vec<(A, u8, Route<A>)> = Vec::new();
        for (a, l, r) in raw {
            let p = a.mask(l);
            if !routes.iter().any(|&(q, m, _)| (q, m) == (p, l)) {
                routes.push((p, l, r));
            }
        }
        let t = RouteTable::build(&routes).unwrap();
        for d in dsts {
            prop_assert_eq!(t.lookup(d), naive(&routes, d));
            prop_assert_eq!(
                t.next_hop(d),
                naive(&routes, d).map(|r| (r.port, r.via.unwrap_or(d)))
            );
        }
        Ok(())
    }

    fn route_of<A: Family>(port: u16, via: Option<A>) -> Route<A> {
        Route { port, via }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn v4_lookup_matches_linear_scan(
            bases in proptest::collection::vec(any::<u32>(), 1..4),
            raw in proptest::collection::vec((any::<usize>(), any::<u32>(), 0u32..32, 0u8..=32, any::<u16>(), any::<bool>()), 0..48),
            dsts in proptest::collection::vec((any::<usize>(), any::<u32>(), 0u32..=32), 1..64),
        ) {
            let near = |i: usize, noise: u32, shift: u32| V4(bases[i % bases.len()] ^ noise.checked_shr(shift).unwrap_or(0));
            let raw = raw
                .into_iter()
                .map(|(i, n, s, l, port, gw)| (near(i, n, s), l, route_of(port, gw.then_some(V4(n)))))
                .collect();
            let dsts = dsts.into_iter().map(|(i, n, s)| near(i, n, s)).collect();
            check(raw, dsts)?;
        }

        #[test]
        fn v6_lookup_matches_linear_scan(
            bases in proptest::collection::vec(any::<u128>(), 1..4),
            raw in proptest::collection::vec((any::<usize>(), any::<u128>(), 0u32..128, 0u8..=128, any::<u16>(), any::<bool>()), 0..48),
            dsts in proptest::collection::vec((any::<usize>(), any::<u128>(), 0u32..=128), 1..64),
        ) {
            let near = |i: usize, noise: u128, shift: u32| v6_bits(bases[i % bases.len()] ^ noise.checked_shr(shift).unwrap_or(0));
            let raw = raw
                .into_iter()
                .map(|(i, n, s, l, port, gw)| (near(i, n, s), l, route_of(port, gw.then(|| v6_bits(n)))))
                .collect();
            let dsts = dsts.into_iter().map(|(i, n, s)| near(i, n, s)).collect();
            check(raw, dsts)?;
        }
    }
}

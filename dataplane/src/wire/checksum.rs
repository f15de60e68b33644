//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are one's-complement sums of big-endian 16-bit words, folded to 16 bits; a checksum
//! field holds the complement of the sum over everything it covers. [`sum`] and the
//! pseudo-header helpers return sums, [`add`] and [`combine`] join them, and `!sum` is the
//! value to store. A packet verifies when the sum over it, checksum field included, is
//! `0xffff`.
//!
//! The `update*` helpers rewrite a checksum after a field changed without touching the rest of
//! the packet (RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`). Their result equals a full
//! recomputation for any covered data that is not all zero, which holds for every TCP, UDP,
//! ICMPv6 and IPv4 header checksum (the protocol number or the version is never zero). In
//! particular a stored `0x0000` (whose sum is `0xffff`) and a stored `0xffff` (UDP's encoding of
//! a computed zero) both update to what a recomputation gives.
//!
//! UDP has two extra rules, kept by the `udp_*` helpers: a computed checksum of zero is sent as
//! `0xffff` ([`udp_encode`]), and over IPv4 a received zero means "no checksum" and must stay
//! zero through any rewrite.
//!
//! Nothing here panics.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::IpProtocol;

/// Fold a wide one's-complement accumulator to 16 bits (end-around carry).
#[inline]
fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// One's-complement sum of `data` read as big-endian 16-bit words; an odd last byte is padded
/// with a zero byte. Only the last slice of a message may have odd length when sums of
/// several slices are combined.
pub fn sum(data: &[u8]) -> u16 {
    // 32-bit words summed into 64 bits: the 16-bit halves fold to the same one's-complement sum
    // and the accumulator cannot overflow below 2^32 words.
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    fold(acc)
}

/// One's-complement addition of two sums.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// One's-complement sum of several sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// Sum of the IPv4 pseudo-header (RFC 793 / RFC 768): addresses, protocol and the L4 length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: u16) -> u16 {
    let s = u32::from(src);
    let d = u32::from(dst);
    fold(u64::from(s) + u64::from(d) + u64::from(protocol.0) + u64::from(length))
}

/// Sum of the IPv6 pseudo-header (RFC 8200 section 8.1): addresses, the upper-layer length
/// and the upper-layer protocol (the last next-header value, not the first).
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, protocol: IpProtocol, length: u32) -> u16 {
    fold(
        u64::from(sum(&src.octets()))
            + u64::from(sum(&dst.octets()))
            + u64::from(protocol.0)
            + u64::from(length),
    )
}

/// The checksum to store for a message whose sum is `sum`.
#[inline]
pub fn finish(sum: u16) -> u16 {
    !sum
}

/// UDP's transmit rule: a computed checksum of zero is sent as `0xffff`, because zero on the
/// wire means "no checksum" (RFC 768).
#[inline]
pub fn udp_encode(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

/// RFC 1624 eqn. 3 over a sum of removed words and a sum of added words.
#[inline]
fn update(old_csum: u16, removed: u64, added: u64) -> u16 {
    let s = fold(u64::from(!old_csum) + removed + added);
    // A folded sum is zero only when every term was zero, i.e. the old data summed to zero
    // in the `0x0000` form (old checksum `0xffff`) and the change was `0xffff -> 0x0000`.
    // Data that is not all zero never sums to that form, so use the other zero.
    let s = if s == 0 { 0xffff } else { s };
    !s
}

/// Words of checksummed data that changed, summed so that one update covers them all (RFC
/// 1624 eqn. 3 adds the changes; applying them together or one by one gives the same
/// checksum). NAT changes an address and a port under one transport checksum.
#[derive(Clone, Copy, Debug, Default)]
pub struct Change {
    removed: u64,
    added: u64,
}

impl Change {
    /// A 16-bit word changed.
    #[inline]
    pub fn word(self, old: u16, new: u16) -> Change {
        Change {
            removed: self.removed + u64::from(!old),
            added: self.added + u64::from(new),
        }
    }
    /// A 32-bit field changed (big-endian readings, as `u32::from(Ipv4Addr)`).
    #[inline]
    pub fn word32(self, old: u32, new: u32) -> Change {
        self.word((old >> 16) as u16, (new >> 16) as u16)
            .word(old as u16, new as u16)
    }
    /// An IPv6 address changed.
    #[inline]
    pub fn addr6(self, old: &[u8; 16], new: &[u8; 16]) -> Change {
        Change {
            removed: self.removed + u64::from(!sum(old)),
            added: self.added + u64::from(sum(new)),
        }
    }
    /// The checksum `old_csum` becomes.
    #[inline]
    pub fn apply(self, old_csum: u16) -> u16 {
        update(old_csum, self.removed, self.added)
    }
    /// [`Change::apply`] for a UDP checksum: a zero (no checksum) stays zero, a computed
    /// zero is sent as `0xffff`.
    #[inline]
    pub fn apply_udp(self, old_csum: u16) -> u16 {
        if old_csum == 0 {
            return 0;
        }
        udp_encode(self.apply(old_csum))
    }
}

/// New checksum after one 16-bit word of the covered data changed from `old_word` to
/// `new_word` (a port, an ICMP echo id, the TTL/protocol word).
#[inline]
pub fn update16(old_csum: u16, old_word: u16, new_word: u16) -> u16 {
    Change::default().word(old_word, new_word).apply(old_csum)
}

/// New IPv4 header checksum after the TTL fell by one: [`update16`] of the TTL / protocol
/// word less `0x0100`, which comes to adding `0x0100` in one's complement (Linux's
/// `ip_decrease_ttl`), without the general fold.
#[inline]
pub fn ttl_decremented(old_csum: u16) -> u16 {
    let c = u32::from(old_csum) + 0x0100;
    (c + u32::from(c >= 0xffff)) as u16
}

/// New checksum after a 32-bit field (an IPv4 address, a sequence number) changed; the
/// values are the field's big-endian reading (`u32::from(Ipv4Addr)`).
#[inline]
pub fn update32(old_csum: u16, old: u32, new: u32) -> u16 {
    Change::default().word32(old, new).apply(old_csum)
}

/// New checksum after an IPv6 address in the covered data (or the pseudo-header) changed.
#[inline]
pub fn update_addr_v6(old_csum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    Change::default().addr6(old, new).apply(old_csum)
}

/// [`update16`] for a UDP checksum: a zero stays zero (no checksum), a result of zero is sent
/// as `0xffff`. (A zero UDP checksum is illegal over IPv6; it is left alone all the same.)
#[inline]
pub fn udp_update16(old_csum: u16, old_word: u16, new_word: u16) -> u16 {
    Change::default()
        .word(old_word, new_word)
        .apply_udp(old_csum)
}

/// [`update32`] with the UDP rules of [`udp_update16`].
#[inline]
pub fn udp_update32(old_csum: u16, old: u32, new: u32) -> u16 {
    Change::default().word32(old, new).apply_udp(old_csum)
}

/// [`update_addr_v6`] with the UDP rules of [`udp_update16`].
#[inline]
pub fn udp_update_addr_v6(old_csum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    Change::default().addr6(old, new).apply_udp(old_csum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn sum_matches_rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(finish(sum(&data)), 0x220d);
    }

    #[test]
    fn sum_pads_odd_last_byte_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), sum(&[0x12, 0x34, 0x56, 0x00]));
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn sum_split_at_even_boundary_combines_to_whole() {
        let data: Vec<u8> = (0u8..=250).collect();
        for cut in (0..data.len()).step_by(2) {
            let (a, b) = data.split_at(cut);
            assert_eq!(add(sum(a), sum(b)), sum(&data));
        }
    }

    #[test]
    fn update16_of_unchanged_word_keeps_checksum() {
        for csum in [0x0000, 0x1234, 0xfffe] {
            assert_eq!(update16(csum, 0xbeef, 0xbeef), csum);
        }
    }

    #[test]
    fn ttl_decremented_is_update16_of_the_ttl_word() {
        for csum in 0..=u16::MAX {
            for word in [0x0206, 0x4011, 0xff01, 0x0100] {
                assert_eq!(
                    ttl_decremented(csum),
                    update16(csum, word, word - 0x0100),
                    "{csum:#06x}"
                );
            }
        }
    }

    /// RFC 1624 section 4's example: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives 0x0000
    /// (eqn. 2 wrongly gives 0xffff).
    #[test]
    fn update16_gives_zero_where_rfc1624_eqn3_does() {
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    /// A sender may store 0xffff for a sum of 0xffff (both zeros verify); a change that
    /// leaves the sum at 0xffff must still give what a recomputation gives: 0x0000.
    #[test]
    fn update16_from_ffff_checksum_gives_recomputed_zero() {
        assert_eq!(update16(0xffff, 0xffff, 0x0000), 0x0000);
        assert_eq!(udp_update16(0xffff, 0xffff, 0x0000), 0xffff);
    }

    #[test]
    fn udp_zero_checksum_stays_zero_through_rewrites() {
        assert_eq!(udp_update16(0, 1234, 80), 0);
        assert_eq!(udp_update32(0, 0x0a000001, 0xc0a80001), 0);
        assert_eq!(udp_update_addr_v6(0, &[1; 16], &[2; 16]), 0);
    }

    #[test]
    fn udp_encode_sends_computed_zero_as_ffff() {
        assert_eq!(udp_encode(0), 0xffff);
        assert_eq!(udp_encode(0x1234), 0x1234);
    }
}

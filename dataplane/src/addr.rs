//! Address families. A shard is generic over its family so that an IPv4 conn entry stays one
//! cache line while IPv6 entries carry their 16-byte addresses (IPVS services are one family).

use core::fmt::Debug;
use core::hash::Hash;

/// An address family's address type: plain bits, cheap to copy and compare.
pub trait Family: Copy + Eq + Ord + Hash + Debug + Default + Send + Sync + 'static {
    /// Address width in bits (32 or 128).
    const BITS: u32;
    /// Family name for counters and messages.
    const NAME: &'static str;
    /// The address masked to its first `prefix` bits (the persistence netmask).
    fn mask(self, prefix: u8) -> Self;
    /// Mix the address into a 64-bit hash state.
    fn fold(self) -> u64;
    /// Network-order bytes, for hashing schedulers (sh, dh, mh) and for printing.
    fn octets(self) -> [u8; 16];
    /// Build from `std::net` forms; `None` for the other family.
    fn from_ip(ip: std::net::IpAddr) -> Option<Self>;
    fn to_ip(self) -> std::net::IpAddr;
    /// A firewall mark in the address's first 32 bits, as IPVS keys fwmark templates.
    fn from_mark(mark: u32) -> Self;
}

/// IPv4 address in host order.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct V4(pub u32);

/// IPv6 address in host order.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(C, align(4))]
pub struct V6(pub [u32; 4]);

impl Family for V4 {
    const BITS: u32 = 32;
    const NAME: &'static str = "ipv4";
    #[inline]
    fn mask(self, prefix: u8) -> Self {
        let p = u32::from(prefix.min(32));
        if p == 0 {
            V4(0)
        } else {
            V4(self.0 & (u32::MAX << (32 - p)))
        }
    }
    #[inline]
    fn fold(self) -> u64 {
        u64::from(self.0)
    }
    fn octets(self) -> [u8; 16] {
        let mut o = [0u8; 16];
        o[..4].copy_from_slice(&self.0.to_be_bytes());
        o
    }
    fn from_ip(ip: std::net::IpAddr) -> Option<Self> {
        match ip {
            std::net::IpAddr::V4(a) => Some(V4(u32::from(a))),
            std::net::IpAddr::V6(_) => None,
        }
    }
    fn to_ip(self) -> std::net::IpAddr {
        std::net::IpAddr::V4(std::net::Ipv4Addr::from(self.0))
    }
    fn from_mark(mark: u32) -> Self {
        V4(mark)
    }
}

impl V6 {
    fn as_u128(self) -> u128 {
        let w = self.0;
        (u128::from(w[0]) << 96)
            | (u128::from(w[1]) << 64)
            | (u128::from(w[2]) << 32)
            | u128::from(w[3])
    }
    fn from_u128(v: u128) -> Self {
        V6([
            (v >> 96) as u32,
            (v >> 64) as u32,
            (v >> 32) as u32,
            v as u32,
        ])
    }
}

impl Family for V6 {
    const BITS: u32 = 128;
    const NAME: &'static str = "ipv6";
    #[inline]
    fn mask(self, prefix: u8) -> Self {
        let p = u32::from(prefix.min(128));
        if p == 0 {
            V6::default()
        } else {
            V6::from_u128(self.as_u128() & (u128::MAX << (128 - p)))
        }
    }
    #[inline]
    fn fold(self) -> u64 {
        let w = self.0;
        (u64::from(w[0]) << 32 | u64::from(w[1])).rotate_left(17)
            ^ (u64::from(w[2]) << 32 | u64::from(w[3]))
    }
    fn octets(self) -> [u8; 16] {
        self.as_u128().to_be_bytes()
    }
    fn from_ip(ip: std::net::IpAddr) -> Option<Self> {
        match ip {
            std::net::IpAddr::V6(a) => Some(V6::from_u128(u128::from(a))),
            std::net::IpAddr::V4(_) => None,
        }
    }
    fn to_ip(self) -> std::net::IpAddr {
        std::net::IpAddr::V6(std::net::Ipv6Addr::from(self.as_u128()))
    }
    fn from_mark(mark: u32) -> Self {
        V6([mark, 0, 0, 0])
    }
}

/// Prefix length of a dotted IPv4 netmask (`255.255.255.0` -> 24); `None` if not contiguous.
pub fn v4_mask_prefix(mask: std::net::Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_mask_groups_clients() {
        let a = V4(u32::from(std::net::Ipv4Addr::new(192, 168, 7, 33)));
        assert_eq!(a.mask(24).to_ip().to_string(), "192.168.7.0");
        assert_eq!(a.mask(32), a);
        assert_eq!(a.mask(0), V4(0));
    }

    #[test]
    fn v6_mask_groups_clients() {
        let a = V6::from_ip("2001:db8:1:2:3:4:5:6".parse().unwrap()).unwrap();
        assert_eq!(a.mask(64).to_ip().to_string(), "2001:db8:1:2::");
        assert_eq!(a.mask(128), a);
        assert_eq!(a.mask(0), V6::default());
    }

    #[test]
    fn dotted_mask_prefix() {
        assert_eq!(v4_mask_prefix("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(v4_mask_prefix("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(v4_mask_prefix("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(v4_mask_prefix("255.0.255.0".parse().unwrap()), None);
    }
}

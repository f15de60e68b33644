//! The order ipvsadm lists services and dests in: libipvs's `ipvs_cmp_services` and
//! `ipvs_cmp_dests` under glibc's `qsort`.
//!
//! The comparators subtract addresses as unsigned 32-bit words and read the difference as an
//! `int`, so two addresses more than 2^31 apart compare the "wrong" way round (192.168.0.1
//! lists before 10.0.0.1), and the relation is not transitive. glibc's `qsort` is a top-down
//! merge sort (first half `n / 2`, ties to the left), so its result for such a relation is
//! still fixed; [`merge_sort_by`] is that sort, so rvsadm lists in ipvsadm's order exactly.

use std::net::IpAddr;

use crate::protocol::{DestRow, ServiceRow, VirtualKey};

/// `AF_INET` and `AF_INET6` as Linux numbers them (the comparators subtract them).
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
/// The protocol ipvsadm gives a firewall-mark service (`-f` sets IPPROTO_TCP).
const FWMARK_PROTO: u8 = 6;

/// The address as `union nf_inet_addr`'s four host-order words (IPv4 in the first).
fn words(a: IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(v4) => [u32::from(v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [w(0), w(4), w(8), w(12)]
        }
    }
}

/// `r = a - b` on unsigned words, read as `int` (two's complement wrap), as the C code does.
fn wrap_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// The address comparison of both comparators: four words for `af1 == AF_INET6`, else one.
fn cmp_addr(af1: i32, a1: [u32; 4], a2: [u32; 4]) -> i32 {
    let n = if af1 == AF_INET6 { 4 } else { 1 };
    let mut r = 0;
    for i in 0..n {
        r = wrap_diff(a1[i], a2[i]);
        if r != 0 {
            break;
        }
    }
    r
}

/// A service's sort key: fwmark, family, protocol, address words, port.
struct SvcKey {
    fwmark: u32,
    af: i32,
    proto: i32,
    addr: [u32; 4],
    port: i32,
}

fn svc_key(s: &ServiceRow) -> SvcKey {
    match s.key {
        VirtualKey::Addr { proto, addr, port } => SvcKey {
            fwmark: 0,
            af: if addr.is_ipv6() { AF_INET6 } else { AF_INET },
            proto: i32::from(proto),
            addr: words(addr),
            port: i32::from(port),
        },
        VirtualKey::Fwmark { mark, v6 } => SvcKey {
            fwmark: mark,
            af: if v6 { AF_INET6 } else { AF_INET },
            proto: i32::from(FWMARK_PROTO),
            addr: [0; 4],
            port: 0,
        },
    }
}

/// libipvs's `ipvs_cmp_services`.
pub fn cmp_services(s1: &ServiceRow, s2: &ServiceRow) -> i32 {
    let (k1, k2) = (svc_key(s1), svc_key(s2));
    let r = wrap_diff(k1.fwmark, k2.fwmark);
    if r != 0 {
        return r;
    }
    let r = k1.af - k2.af;
    if r != 0 {
        return r;
    }
    let r = k1.proto - k2.proto;
    if r != 0 {
        return r;
    }
    let r = cmp_addr(k1.af, k1.addr, k2.addr);
    if r != 0 {
        return r;
    }
    k1.port - k2.port
}

/// libipvs's `ipvs_cmp_dests` (the first dest's family decides how many words count).
pub fn cmp_dests(d1: &DestRow, d2: &DestRow) -> i32 {
    let af1 = if d1.addr.is_ipv6() { AF_INET6 } else { AF_INET };
    let r = cmp_addr(af1, words(d1.addr), words(d2.addr));
    if r != 0 {
        return r;
    }
    i32::from(d1.port) - i32::from(d2.port)
}

/// glibc's `qsort` (`msort_with_tmp`): halves of `n / 2` and `n - n / 2`, each sorted, then
/// merged taking the left element while `cmp(left, right) <= 0`.
pub fn merge_sort_by<T>(v: &mut Vec<T>, cmp: impl Fn(&T, &T) -> i32) {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    let mut tmp = Vec::with_capacity(v.len());
    msort(&mut idx, &mut tmp, &|a: usize, b: usize| cmp(&v[a], &v[b]));
    let mut slots: Vec<Option<T>> = std::mem::take(v).into_iter().map(Some).collect();
    v.extend(
        idx.into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take)),
    );
}

fn msort(b: &mut [usize], tmp: &mut Vec<usize>, cmp: &dyn Fn(usize, usize) -> i32) {
    let n = b.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    {
        let (b1, b2) = b.split_at_mut(n1);
        msort(b1, tmp, cmp);
        msort(b2, tmp, cmp);
    }
    tmp.clear();
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(b[i], b[j]) <= 0 {
            tmp.push(b[i]);
            i += 1;
        } else {
            tmp.push(b[j]);
            j += 1;
        }
    }
    // What is left of the first half goes next; what is left of the second is in place.
    tmp.extend_from_slice(&b[i..n1]);
    b[..tmp.len()].copy_from_slice(tmp);
}

/// Services in ipvsadm's listing order.
pub fn sort_services(services: &mut Vec<ServiceRow>) {
    merge_sort_by(services, cmp_services);
}

/// Dests in ipvsadm's listing order.
pub fn sort_dests(dests: &mut Vec<DestRow>) {
    merge_sort_by(dests, cmp_dests);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sort_is_stable_and_sorts() {
        let mut v = vec![(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e'), (0, 'f')];
        merge_sort_by(&mut v, |a, b| a.0 - b.0);
        assert_eq!(
            v,
            vec![(0, 'f'), (1, 'b'), (1, 'e'), (2, 'd'), (3, 'a'), (3, 'c')]
        );
        let mut empty: Vec<i32> = vec![];
        merge_sort_by(&mut empty, |a, b| a - b);
        assert!(empty.is_empty());
    }

    #[test]
    fn wrapped_differences_order_as_libipvs() {
        // 10.0.0.1 - 192.168.1.1 wraps to a positive int: 192.168.1.1 sorts first.
        let a = words("10.0.0.1".parse().unwrap());
        let b = words("192.168.1.1".parse().unwrap());
        assert!(cmp_addr(AF_INET, a, b) > 0);
        assert!(cmp_addr(AF_INET, b, a) < 0);
        // Close addresses compare as numbers.
        let c = words("10.0.0.2".parse().unwrap());
        assert!(cmp_addr(AF_INET, a, c) < 0);
    }

    #[test]
    fn a_cycle_sorts_as_glibc_merges_it() {
        // x < y, y < z and z < x under the wrapped comparison: 0, 0x60000000, 0xc0000000.
        let cmp = |a: &u32, b: &u32| wrap_diff(*a, *b);
        // msort([z, x, y]): halves [z] and [x, y]; [x, y] stays; merge z vs x: z < x
        // (0xc0000000 - 0 is negative), so z first, then x, y.
        let mut v = vec![0xc000_0000u32, 0, 0x6000_0000];
        merge_sort_by(&mut v, cmp);
        assert_eq!(v, vec![0xc000_0000, 0, 0x6000_0000]);
        // msort([y, z, x]): [y] and [z, x] -> [z, x] merges to z, x (z < x); y vs z: y < z,
        // so y first; then z, x.
        let mut v = vec![0x6000_0000u32, 0xc000_0000, 0];
        merge_sort_by(&mut v, cmp);
        assert_eq!(v, vec![0x6000_0000, 0xc000_0000, 0]);
    }
}

//! In-place header rewrites for forwarding: TTL/hop limit, NAT of an address and port with
//! incremental checksums (RFC 1624), and the Ethernet addresses. Offsets come from the parse
//! (`l3` = IP header, `l4` = transport header); a rewrite never reads outside the frame: a
//! field that does not fit is left alone and the call reports failure.

use crate::wire::checksum::{self, Change};
use crate::wire::sctp;

const IP4_TTL: usize = 8;
const IP4_CSUM: usize = 10;
const IP4_SRC: usize = 12;
const IP4_DST: usize = 16;
const IP6_HLIM: usize = 7;
const IP6_SRC: usize = 8;
const IP6_DST: usize = 24;

/// Which end of the packet a NAT rewrite changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Destination address and port (client -> VIP becomes client -> dest).
    Dst,
    /// Source address and port (dest -> client becomes VIP -> client).
    Src,
}

#[inline]
fn get16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]))
}

#[inline]
fn put16(f: &mut [u8], at: usize, v: u16) -> Option<()> {
    f.get_mut(at..at + 2)?.copy_from_slice(&v.to_be_bytes());
    Some(())
}

#[inline]
fn get32(f: &[u8], at: usize) -> Option<u32> {
    let b = f.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decrement the IPv4 TTL (updating the header checksum) or the IPv6 hop limit, as IPVS's
/// `decrement_ttl` does for every forwarding method. False (nothing changed) when it would
/// reach zero: the caller drops the packet (and may send ICMP time exceeded).
#[inline]
pub fn dec_ttl(frame: &mut [u8], l3: usize, v6: bool) -> bool {
    if v6 {
        match frame.get_mut(l3 + IP6_HLIM) {
            Some(h) if *h > 1 => {
                *h -= 1;
                true
            }
            _ => false,
        }
    } else {
        // TTL, protocol and checksum: one bounds check.
        let Some(h) = frame
            .get_mut(l3 + IP4_TTL..l3 + IP4_CSUM + 2)
            .and_then(|h| <&mut [u8; 4]>::try_from(h).ok())
        else {
            return false;
        };
        if h[0] <= 1 {
            return false;
        }
        h[0] -= 1;
        let csum = checksum::ttl_decremented(u16::from_be_bytes([h[2], h[3]]));
        h[2..].copy_from_slice(&csum.to_be_bytes());
        true
    }
}

/// Offset of the transport checksum field, by protocol (None: no such field we update).
#[inline]
fn l4_csum_at(proto: u8) -> Option<usize> {
    match proto {
        6 => Some(16),
        17 => Some(6),
        _ => None,
    }
}

/// NAT an IPv4 packet: one end's address (and, with `l4` given, its port) becomes
/// `addr:port`; IP, TCP and UDP checksums are updated incrementally (a zero UDP checksum
/// stays zero), SCTP's CRC32c is recomputed. `l4 = None` for non-first fragments, which carry
/// no transport header (their first fragment's checksum covers the pseudo-header).
pub fn nat4(
    frame: &mut [u8],
    l3: usize,
    l4: Option<usize>,
    proto: u8,
    end: End,
    addr: u32,
    port: u16,
) -> bool {
    let at = l3 + if end == End::Dst { IP4_DST } else { IP4_SRC };
    let (Some(old), Some(ipcsum)) = (get32(frame, at), get16(frame, l3 + IP4_CSUM)) else {
        return false;
    };
    let change = Change::default().word32(old, addr);
    if !nat_l4(frame, l4, proto, end, port, change) {
        return false;
    }
    frame[at..at + 4].copy_from_slice(&addr.to_be_bytes());
    let _ = put16(frame, l3 + IP4_CSUM, checksum::update32(ipcsum, old, addr));
    true
}

/// NAT an IPv6 packet (no IP header checksum; the pseudo-header is in the L4 checksum).
pub fn nat6(
    frame: &mut [u8],
    l3: usize,
    l4: Option<usize>,
    proto: u8,
    end: End,
    addr: [u8; 16],
    port: u16,
) -> bool {
    let at = l3 + if end == End::Dst { IP6_DST } else { IP6_SRC };
    let Some(old) = frame
        .get(at..at + 16)
        .and_then(|s| <[u8; 16]>::try_from(s).ok())
    else {
        return false;
    };
    let change = Change::default().addr6(&old, &addr);
    if !nat_l4(frame, l4, proto, end, port, change) {
        return false;
    }
    frame[at..at + 16].copy_from_slice(&addr);
    true
}

/// Port rewrite and transport checksum (`l4` None: nothing to do): `addr` is the address
/// change the checksum also takes (UDP's zero rules apply for UDP).
fn nat_l4(
    frame: &mut [u8],
    l4: Option<usize>,
    proto: u8,
    end: End,
    port: u16,
    addr: Change,
) -> bool {
    // A non-first fragment: no transport header, its first fragment's checksum covers it.
    let Some(l4) = l4 else {
        return true;
    };
    let port_at = l4 + if end == End::Dst { 2 } else { 0 };
    let Some(old_port) = get16(frame, port_at) else {
        return false;
    };
    if proto == 132 {
        // CRC32c covers the SCTP packet only (no pseudo-header): recompute after the port.
        let Some(pkt) = frame.get_mut(l4..) else {
            return false;
        };
        let Ok(mut p) = sctp::Packet::new_checked(pkt) else {
            return false;
        };
        if end == End::Dst {
            p.set_dst_port(port);
        } else {
            p.set_src_port(port);
        }
        p.fill_checksum();
        return true;
    }
    let Some(csum_at) = l4_csum_at(proto) else {
        // Other protocols (ICMP is handled apart): address only.
        return true;
    };
    let Some(csum) = get16(frame, l4 + csum_at) else {
        return false;
    };
    // The address and the port under one checksum update.
    let change = addr.word(old_port, port);
    let c = if proto == 17 {
        change.apply_udp(csum)
    } else {
        change.apply(csum)
    };
    let _ = put16(frame, port_at, port);
    let _ = put16(frame, l4 + csum_at, c);
    true
}

/// Write `bytes` at `at` (an address or a port), if the frame holds it.
#[inline]
pub fn set_bytes(frame: &mut [u8], at: usize, bytes: &[u8]) -> bool {
    match frame.get_mut(at..at + bytes.len()) {
        Some(d) => {
            d.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

/// Recompute the IPv4 header checksum of the header at `l3` (a quoted header too).
pub fn ipv4_fill_csum(frame: &mut [u8], l3: usize) -> bool {
    let Some(&vihl) = frame.get(l3) else {
        return false;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    let Some(h) = frame.get_mut(l3..l3 + ihl) else {
        return false;
    };
    if ihl < 20 {
        return false;
    }
    h[10..12].fill(0);
    let c = checksum::finish(checksum::sum(h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    true
}

/// Recompute an ICMPv4 checksum over `frame[l4..end]`.
pub fn icmp4_fill_csum(frame: &mut [u8], l4: usize, end: usize) -> bool {
    let Some(m) = frame.get_mut(l4..end) else {
        return false;
    };
    if m.len() < 4 {
        return false;
    }
    m[2..4].fill(0);
    let c = checksum::finish(checksum::sum(m));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    true
}

/// Recompute an ICMPv6 checksum over `frame[l4..end]` with the pseudo-header of the IPv6
/// header at `l3`.
pub fn icmp6_fill_csum(frame: &mut [u8], l3: usize, l4: usize, end: usize) -> bool {
    let (Some(src), Some(dst)) = (
        frame
            .get(l3 + IP6_SRC..l3 + IP6_SRC + 16)
            .and_then(|s| <[u8; 16]>::try_from(s).ok()),
        frame
            .get(l3 + IP6_DST..l3 + IP6_DST + 16)
            .and_then(|s| <[u8; 16]>::try_from(s).ok()),
    ) else {
        return false;
    };
    let Some(m) = frame.get_mut(l4..end) else {
        return false;
    };
    if m.len() < 4 {
        return false;
    }
    m[2..4].fill(0);
    let ph = checksum::pseudo_header_v6(
        src.into(),
        dst.into(),
        crate::wire::IpProtocol::ICMPV6,
        m.len() as u32,
    );
    let c = checksum::finish(checksum::combine(&[ph, checksum::sum(m)]));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    true
}

/// Offsets of the source and destination address fields in an IP header.
#[inline]
pub fn addr_fields(v6: bool) -> (usize, usize) {
    if v6 {
        (IP6_SRC, IP6_DST)
    } else {
        (IP4_SRC, IP4_DST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ipv4, tcp, udp, IpProtocol};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// An IPv4 TCP or UDP packet (no Ethernet) with correct checksums.
    fn packet(
        proto: u8,
        src: u32,
        dst: u32,
        sport: u16,
        dport: u16,
        payload: &[u8],
        zero_udp_csum: bool,
    ) -> Vec<u8> {
        let l4len = if proto == 6 { 20 } else { 8 } + payload.len();
        let mut f = vec![0u8; 20 + l4len];
        f[0] = 0x45;
        f[2..4].copy_from_slice(&((20 + l4len) as u16).to_be_bytes());
        f[8] = 64;
        f[9] = proto;
        f[12..16].copy_from_slice(&src.to_be_bytes());
        f[16..20].copy_from_slice(&dst.to_be_bytes());
        ipv4::Packet::new_unchecked(&mut f[..]).fill_checksum();
        let l4 = &mut f[20..];
        l4[0..2].copy_from_slice(&sport.to_be_bytes());
        l4[2..4].copy_from_slice(&dport.to_be_bytes());
        if proto == 6 {
            l4[12] = 5 << 4;
            l4[13] = 0x12;
            l4[20..].copy_from_slice(payload);
            tcp::Packet::new_unchecked(&mut l4[..])
                .fill_checksum_v4(Ipv4Addr::from(src), Ipv4Addr::from(dst));
        } else {
            l4[4..6].copy_from_slice(&(l4len as u16).to_be_bytes());
            l4[8..].copy_from_slice(payload);
            if !zero_udp_csum {
                udp::Packet::new_unchecked(&mut l4[..])
                    .fill_checksum_v4(Ipv4Addr::from(src), Ipv4Addr::from(dst));
            }
        }
        f
    }

    fn l4_ok(f: &[u8], proto: u8) -> bool {
        let ip = ipv4::Packet::new_checked(f).unwrap();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        match IpProtocol(proto) {
            IpProtocol::TCP => tcp::Packet::new_checked(ip.payload())
                .unwrap()
                .verify_checksum_v4(s, d),
            _ => udp::Packet::new_checked(ip.payload())
                .unwrap()
                .verify_checksum_v4(s, d),
        }
    }

    proptest! {
        /// NAT either end of a TCP or UDP packet: the result has exactly the new address and
        /// port and checksums that a full recomputation accepts.
        #[test]
        fn nat4_keeps_every_checksum_valid(
            tcp_not_udp in any::<bool>(), src in any::<u32>(), dst in any::<u32>(),
            sport in any::<u16>(), dport in any::<u16>(), naddr in any::<u32>(), nport in any::<u16>(),
            dst_end in any::<bool>(), payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let proto = if tcp_not_udp { 6 } else { 17 };
            let mut f = packet(proto, src, dst, sport, dport, &payload, false);
            let end = if dst_end { End::Dst } else { End::Src };
            prop_assert!(nat4(&mut f, 0, Some(20), proto, end, naddr, nport));
            let ip = ipv4::Packet::new_checked(&f[..]).unwrap();
            prop_assert!(ip.verify_checksum());
            let (a, p) = if dst_end { (ip.dst_addr(), get16(&f, 22).unwrap()) } else { (ip.src_addr(), get16(&f, 20).unwrap()) };
            prop_assert_eq!((u32::from(a), p), (naddr, nport));
            prop_assert!(l4_ok(&f, proto));
        }

        #[test]
        fn dec_ttl_keeps_the_header_checksum_valid(ttl in 2u8..=255) {
            let mut f = packet(6, 1, 2, 3, 4, &[], false);
            f[8] = ttl;
            ipv4::Packet::new_unchecked(&mut f[..]).fill_checksum();
            prop_assert!(dec_ttl(&mut f, 0, false));
            prop_assert_eq!(f[8], ttl - 1);
            prop_assert!(ipv4::Packet::new_checked(&f[..]).unwrap().verify_checksum());
        }
    }

    #[test]
    fn zero_udp_checksum_stays_zero_through_nat() {
        let mut f = packet(17, 1, 2, 3, 4, b"hello", true);
        assert!(nat4(&mut f, 0, Some(20), 17, End::Dst, 0x0a00_0001, 8080));
        assert_eq!(get16(&f, 26), Some(0));
    }

    #[test]
    fn ttl_of_one_is_not_forwarded() {
        let mut f = packet(6, 1, 2, 3, 4, &[], false);
        f[8] = 1;
        assert!(!dec_ttl(&mut f, 0, false));
        assert_eq!(f[8], 1);
    }

    #[test]
    fn truncated_frames_are_refused_untouched() {
        let f0 = packet(6, 1, 2, 3, 4, &[], false);
        for cut in 0..f0.len() {
            let mut f = f0[..cut].to_vec();
            let before = f.clone();
            if !nat4(&mut f, 0, Some(20), 6, End::Dst, 9, 9) {
                assert_eq!(f, before, "cut at {cut}");
            }
        }
    }
}

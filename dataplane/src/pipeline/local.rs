//! The appliance's own frames: ARP replies and requests, IPv6 neighbor advertisements and
//! solicitations, echo replies, and ICMP errors (time exceeded, fragmentation needed / packet
//! too big). Builders write into a buffer the caller provides; nothing here panics: a buffer
//! too small for the frame makes the builder return `false`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::buf::Buf;
use crate::wire::{checksum, IpProtocol, ParsedFrame};

pub const ETH_ARP: u16 = 0x0806;
pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86dd;

/// Largest ICMPv4 error (RFC 1812: as much of the original as fits in 576 bytes).
const ICMP4_MAX: usize = 576;
/// Largest ICMPv6 error (RFC 4443: the minimum IPv6 MTU).
const ICMP6_MAX: usize = 1280;

fn eth(f: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

fn ipv4_header(h: &mut [u8], total: u16, proto: u8, ttl: u8, src: Ipv4Addr, dst: Ipv4Addr) {
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..8].fill(0);
    h[8] = ttl;
    h[9] = proto;
    h[10..12].fill(0);
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum::finish(checksum::sum(&h[..20]));
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

fn ipv6_header(h: &mut [u8], payload: u16, next: u8, hlim: u8, src: Ipv6Addr, dst: Ipv6Addr) {
    h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    h[4..6].copy_from_slice(&payload.to_be_bytes());
    h[6] = next;
    h[7] = hlim;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
}

/// Fill `b` with a frame of `len` bytes (from empty), returning it for writing.
fn frame<B: Buf>(b: &mut B, len: usize) -> Option<&mut [u8]> {
    b.trim(0);
    b.append(len)
}

/// An ARP request or reply. `tha` is zero in requests.
#[allow(clippy::too_many_arguments)]
pub fn arp<B: Buf>(
    b: &mut B,
    op: u16,
    eth_dst: [u8; 6],
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> bool {
    let Some(f) = frame(b, 42) else { return false };
    eth(f, eth_dst, sha, ETH_ARP);
    let a = &mut f[14..];
    a[0..2].copy_from_slice(&1u16.to_be_bytes());
    a[2..4].copy_from_slice(&ETH_IPV4.to_be_bytes());
    a[4] = 6;
    a[5] = 4;
    a[6..8].copy_from_slice(&op.to_be_bytes());
    a[8..14].copy_from_slice(&sha);
    a[14..18].copy_from_slice(&spa.octets());
    a[18..24].copy_from_slice(&tha);
    a[24..28].copy_from_slice(&tpa.octets());
    true
}

/// Solicited-node multicast address and its Ethernet address for `target`.
pub fn solicited_node(target: Ipv6Addr) -> (Ipv6Addr, [u8; 6]) {
    let t = target.octets();
    let mut a = [0u8; 16];
    a[0] = 0xff;
    a[1] = 0x02;
    a[11] = 0x01;
    a[12] = 0xff;
    a[13..16].copy_from_slice(&t[13..16]);
    (Ipv6Addr::from(a), [0x33, 0x33, 0xff, t[13], t[14], t[15]])
}

/// An ICMPv6 neighbor solicitation (135) or advertisement (136) with a link-layer address
/// option (source for NS, target for NA). `flags` is the NA's R/S/O byte.
#[allow(clippy::too_many_arguments)]
pub fn ndp<B: Buf>(
    b: &mut B,
    advert: bool,
    eth_dst: [u8; 6],
    mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
) -> bool {
    let icmp_len = 32;
    let Some(f) = frame(b, 14 + 40 + icmp_len) else {
        return false;
    };
    eth(f, eth_dst, mac, ETH_IPV6);
    ipv6_header(
        &mut f[14..54],
        icmp_len as u16,
        IpProtocol::ICMPV6.0,
        255,
        src,
        dst,
    );
    let m = &mut f[54..];
    m.fill(0);
    m[0] = if advert { 136 } else { 135 };
    if advert {
        m[4] = flags;
    }
    m[8..24].copy_from_slice(&target.octets());
    m[24] = if advert { 2 } else { 1 };
    m[25] = 1;
    m[26..32].copy_from_slice(&mac);
    let s = checksum::combine(&[
        checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6, icmp_len as u32),
        checksum::sum(m),
    ]);
    m[2..4].copy_from_slice(&checksum::finish(s).to_be_bytes());
    true
}

/// Turn an ICMP/ICMPv6 echo request (at `l3`, IP header length `ihl` for v4) into its reply
/// in place: swap addresses and MACs, set the type, fix checksums. `l4` = ICMP offset.
pub fn echo_reply_in_place(f: &mut [u8], l3: usize, l4: usize, v6: bool) -> bool {
    if f.len() < l4 + 8 || f.len() < 14 {
        return false;
    }
    let (d, s) = f.split_at_mut(6);
    d.swap_with_slice(&mut s[..6]);
    if v6 {
        if f.len() < l3 + 40 {
            return false;
        }
        let (a, b) = f[l3 + 8..l3 + 40].split_at_mut(16);
        a.swap_with_slice(b);
        f[l3 + 7] = 64;
        let old = u16::from_be_bytes([f[l4], f[l4 + 1]]);
        f[l4] = 129;
        let new = u16::from_be_bytes([f[l4], f[l4 + 1]]);
        let c = u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]);
        // Swapping source and destination leaves the pseudo-header sum unchanged.
        f[l4 + 2..l4 + 4].copy_from_slice(&checksum::update16(c, old, new).to_be_bytes());
    } else {
        if f.len() < l3 + 20 {
            return false;
        }
        let (a, b) = f[l3 + 12..l3 + 20].split_at_mut(4);
        a.swap_with_slice(b);
        let ttl_word = u16::from_be_bytes([f[l3 + 8], f[l3 + 9]]);
        let new_ttl = (64u16 << 8) | (ttl_word & 0xff);
        f[l3 + 8..l3 + 10].copy_from_slice(&new_ttl.to_be_bytes());
        let ipc = u16::from_be_bytes([f[l3 + 10], f[l3 + 11]]);
        f[l3 + 10..l3 + 12]
            .copy_from_slice(&checksum::update16(ipc, ttl_word, new_ttl).to_be_bytes());
        let old = u16::from_be_bytes([f[l4], f[l4 + 1]]);
        f[l4] = 0;
        let new = u16::from_be_bytes([f[l4], f[l4 + 1]]);
        let c = u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]);
        f[l4 + 2..l4 + 4].copy_from_slice(&checksum::update16(c, old, new).to_be_bytes());
    }
    true
}

/// An ICMPv4 error about the IPv4 packet `orig` (from its IP header on), from `src` to the
/// packet's source: type/code and the 32-bit "rest of header" (next-hop MTU for frag needed).
#[allow(clippy::too_many_arguments)]
pub fn icmp4_error<B: Buf>(
    b: &mut B,
    eth_dst: [u8; 6],
    eth_src: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    icmp_type: u8,
    code: u8,
    rest: u32,
    orig: &[u8],
) -> bool {
    let quote = orig.len().min(ICMP4_MAX - 28);
    let Some(f) = frame(b, 14 + 28 + quote) else {
        return false;
    };
    eth(f, eth_dst, eth_src, ETH_IPV4);
    ipv4_header(
        &mut f[14..34],
        (28 + quote) as u16,
        IpProtocol::ICMP.0,
        64,
        src,
        dst,
    );
    let m = &mut f[34..];
    m[0] = icmp_type;
    m[1] = code;
    m[2..4].fill(0);
    m[4..8].copy_from_slice(&rest.to_be_bytes());
    m[8..8 + quote].copy_from_slice(&orig[..quote]);
    let c = checksum::finish(checksum::sum(m));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    true
}

/// An ICMPv6 error (time exceeded 3, packet too big 2 with `rest` = MTU) about `orig`.
#[allow(clippy::too_many_arguments)]
pub fn icmp6_error<B: Buf>(
    b: &mut B,
    eth_dst: [u8; 6],
    eth_src: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    icmp_type: u8,
    code: u8,
    rest: u32,
    orig: &[u8],
) -> bool {
    let quote = orig.len().min(ICMP6_MAX - 48);
    let len = 8 + quote;
    let Some(f) = frame(b, 14 + 40 + len) else {
        return false;
    };
    eth(f, eth_dst, eth_src, ETH_IPV6);
    ipv6_header(
        &mut f[14..54],
        len as u16,
        IpProtocol::ICMPV6.0,
        64,
        src,
        dst,
    );
    let m = &mut f[54..];
    m[0] = icmp_type;
    m[1] = code;
    m[2..4].fill(0);
    m[4..8].copy_from_slice(&rest.to_be_bytes());
    m[8..8 + quote].copy_from_slice(&orig[..quote]);
    let s = checksum::combine(&[
        checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6, len as u32),
        checksum::sum(m),
    ]);
    m[2..4].copy_from_slice(&checksum::finish(s).to_be_bytes());
    true
}

/// The VLAN tag bytes of a received frame (at most two tags), to answer on the same VLAN.
pub(super) fn vlan_tags(frame: &[u8], pf: &ParsedFrame) -> ([u8; 8], usize) {
    let n = usize::from(pf.vlan.count) * 4;
    let mut t = [0u8; 8];
    if let Some(src) = frame.get(12..12 + n) {
        t[..n].copy_from_slice(src);
        (t, n)
    } else {
        (t, 0)
    }
}

/// Insert VLAN tags after the MAC addresses of a frame built untagged.
pub(super) fn retag<B: Buf>(buf: &mut B, tags: &([u8; 8], usize)) -> bool {
    let n = tags.1;
    if n == 0 {
        return true;
    }
    if buf.prepend(n).is_none() {
        return false;
    }
    let f = buf.data_mut();
    f.copy_within(n..n + 12, 0);
    f[12..12 + n].copy_from_slice(&tags.0[..n]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::buf::VecBuf;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    #[test]
    fn arp_reply_parses_with_etherparse() {
        let mut b = VecBuf::empty();
        let (a, m) = ("10.0.0.1".parse().unwrap(), [2, 0, 0, 0, 0, 1]);
        assert!(arp(
            &mut b,
            2,
            [2, 0, 0, 0, 0, 9],
            m,
            a,
            [2, 0, 0, 0, 0, 9],
            "10.0.0.9".parse().unwrap()
        ));
        let p = SlicedPacket::from_ethernet(b.data()).unwrap();
        match p.net {
            Some(NetSlice::Arp(arp)) => {
                assert_eq!(arp.operation(), etherparse::ArpOperation::REPLY);
                assert_eq!(arp.sender_protocol_addr(), &[10, 0, 0, 1]);
            }
            other => panic!("not ARP: {other:?}"),
        }
    }

    #[test]
    fn neighbor_advert_checksum_verifies() {
        let mut b = VecBuf::empty();
        let src: Ipv6Addr = "fd00::1".parse().unwrap();
        let dst: Ipv6Addr = "fd00::9".parse().unwrap();
        assert!(ndp(
            &mut b,
            true,
            [2, 0, 0, 0, 0, 9],
            [2, 0, 0, 0, 0, 1],
            src,
            dst,
            src,
            0x60
        ));
        let p = SlicedPacket::from_ethernet(b.data()).unwrap();
        let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
            panic!("not ICMPv6")
        };
        let ip = match p.net {
            Some(NetSlice::Ipv6(ip)) => ip,
            _ => panic!(),
        };
        let want = icmp
            .icmp_type()
            .calc_checksum(
                ip.header().source(),
                ip.header().destination(),
                icmp.payload(),
            )
            .unwrap();
        assert_eq!(icmp.checksum(), want);
    }

    #[test]
    fn builders_refuse_a_buffer_too_small() {
        #[derive(Default)]
        struct Tiny(Vec<u8>);
        impl Buf for Tiny {
            fn data(&self) -> &[u8] {
                &self.0
            }
            fn data_mut(&mut self) -> &mut [u8] {
                &mut self.0
            }
            fn prepend(&mut self, _: usize) -> Option<&mut [u8]> {
                None
            }
            fn adj(&mut self, _: usize) {}
            fn trim(&mut self, len: usize) {
                self.0.truncate(len)
            }
            fn append(&mut self, _: usize) -> Option<&mut [u8]> {
                None
            }
        }
        let mut t = Tiny::default();
        assert!(!arp(
            &mut t,
            1,
            [0; 6],
            [0; 6],
            Ipv4Addr::UNSPECIFIED,
            [0; 6],
            Ipv4Addr::UNSPECIFIED
        ));
    }
}

//! The appliance's own frames: ARP replies and requests, IPv6 neighbor advertisements and
//! solicitations, echo replies, and ICMP errors (time exceeded, fragmentation needed / packet
//! too big). Builders write into a buffer the caller provides; nothing here panics: a buffer
//! too small for the frame makes the builder return `false`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::buf::Buf;
use crate::wire::icmpv4::{self, time_exceeded};
use crate::wire::icmpv6::{self, NdiscRepr};
use crate::wire::{
    checksum, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet,
    Ipv4Repr, Ipv6Packet, Ipv6Repr, MacAddr, ParsedFrame,
};

/// Largest ICMPv4 error (RFC 1812: as much of the original as fits in 576 bytes).
const ICMP4_MAX: usize = 576;
/// Largest ICMPv6 error (RFC 4443: the minimum IPv6 MTU).
const ICMP6_MAX: usize = 1280;

const ETH: usize = crate::wire::ethernet::HEADER_LEN;
const IP4: usize = crate::wire::ipv4::HEADER_LEN;
const IP6: usize = crate::wire::ipv6::HEADER_LEN;

/// Who a frame the appliance builds goes from and to, at L2 and L3.
#[derive(Clone, Copy, Debug)]
pub struct Ends<A> {
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    pub src: A,
    pub dst: A,
}

/// An ICMP error the path sends about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpKind {
    TtlExceeded,
    /// Fragmentation needed / packet too big, with the MTU to report.
    TooBig(u16),
}

fn eth(f: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: EtherType) {
    EthernetRepr {
        src_addr: MacAddr(src),
        dst_addr: MacAddr(dst),
        ethertype,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..ETH]));
}

/// Fill `b` with a frame of `len` bytes (from empty), returning it for writing.
fn frame<B: Buf>(b: &mut B, len: usize) -> Option<&mut [u8]> {
    b.trim(0);
    b.append(len)
}

/// An ARP request or reply from `repr`'s sender, to `eth_dst`.
pub fn arp<B: Buf>(b: &mut B, eth_dst: [u8; 6], repr: &ArpRepr) -> bool {
    let Some(f) = frame(b, ETH + repr.buffer_len()) else {
        return false;
    };
    eth(f, eth_dst, repr.source_hardware_addr.0, EtherType::ARP);
    repr.emit(&mut ArpPacket::new_unchecked(&mut f[ETH..]));
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

/// An ICMPv6 packet of `len` bytes between `ends` (hop limit `hlim`), for `write` to fill.
fn icmp6_frame<B: Buf>(
    b: &mut B,
    ends: &Ends<Ipv6Addr>,
    len: usize,
    hlim: u8,
    write: impl FnOnce(&mut icmpv6::Packet<&mut [u8]>),
) -> bool {
    let Some(f) = frame(b, ETH + IP6 + len) else {
        return false;
    };
    eth(f, ends.eth_dst, ends.eth_src, EtherType::IPV6);
    Ipv6Repr {
        src_addr: ends.src,
        dst_addr: ends.dst,
        next_header: IpProtocol::ICMPV6,
        payload_len: len,
        hop_limit: hlim,
        traffic_class: 0,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut f[ETH..ETH + IP6]));
    write(&mut icmpv6::Packet::new_unchecked(&mut f[ETH + IP6..]));
    true
}

/// A neighbor solicitation or advertisement (hop limit 255, as RFC 4861 requires).
pub fn ndisc<B: Buf>(b: &mut B, ends: &Ends<Ipv6Addr>, repr: &NdiscRepr) -> bool {
    icmp6_frame(b, ends, repr.buffer_len(), 255, |p| {
        repr.emit(ends.src, ends.dst, p)
    })
}

/// Turn an ICMP/ICMPv6 echo request (IP header at `l3`, ICMP message at `l4`) into its reply
/// in place: MACs and addresses swapped, TTL / hop limit 64, the type set, checksums updated
/// incrementally (an echo flood costs what a forwarded frame does). False if a header does
/// not fit.
pub fn echo_reply_in_place(f: &mut [u8], l3: usize, l4: usize, v6: bool) -> bool {
    let Ok(mut eth) = EthernetFrame::new_checked(&mut f[..]) else {
        return false;
    };
    let (src, dst) = (eth.src_addr(), eth.dst_addr());
    eth.set_src_addr(dst);
    eth.set_dst_addr(src);
    let (Some(ip), Some(msg)) = (f.get(l3..), f.get(l4..)) else {
        return false;
    };
    if msg.len() < icmpv4::HEADER_LEN || ip.len() < if v6 { IP6 } else { IP4 } {
        return false;
    }
    if v6 {
        let mut ip = Ipv6Packet::new_unchecked(&mut f[l3..]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_hop_limit(64);
        // Swapping source and destination leaves the pseudo-header sum unchanged.
        let mut m = icmpv6::Packet::new_unchecked(&mut f[l4..]);
        let old = u16::from_be_bytes([m.msg_type().0, m.msg_code()]);
        m.set_msg_type(icmpv6::Message::ECHO_REPLY);
        let new = u16::from_be_bytes([m.msg_type().0, m.msg_code()]);
        m.set_checksum(checksum::update16(m.checksum(), old, new));
    } else {
        let mut ip = Ipv4Packet::new_unchecked(&mut f[l3..]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        let old = u16::from_be_bytes([ip.ttl(), ip.protocol().0]);
        ip.set_ttl(64);
        let new = u16::from_be_bytes([ip.ttl(), ip.protocol().0]);
        ip.set_checksum(checksum::update16(ip.checksum(), old, new));
        let mut m = icmpv4::Packet::new_unchecked(&mut f[l4..]);
        let old = u16::from_be_bytes([m.msg_type().0, m.msg_code()]);
        m.set_msg_type(icmpv4::Message::ECHO_REPLY);
        let new = u16::from_be_bytes([m.msg_type().0, m.msg_code()]);
        m.set_checksum(checksum::update16(m.checksum(), old, new));
    }
    true
}

/// An ICMPv4 error about the IPv4 packet `orig` (from its IP header on), between `ends`
/// (the destination is the packet's source), quoting as much of it as RFC 1812 allows.
pub fn icmp4_error<B: Buf>(b: &mut B, ends: &Ends<Ipv4Addr>, kind: IcmpKind, orig: &[u8]) -> bool {
    let quote = &orig[..orig.len().min(ICMP4_MAX - IP4 - icmpv4::HEADER_LEN)];
    let repr = match kind {
        IcmpKind::TtlExceeded => icmpv4::Repr::TimeExceeded {
            code: time_exceeded::TTL,
            quote,
        },
        IcmpKind::TooBig(mtu) => icmpv4::Repr::FragNeeded { mtu, quote },
    };
    let len = repr.buffer_len();
    let Some(f) = frame(b, ETH + IP4 + len) else {
        return false;
    };
    eth(f, ends.eth_dst, ends.eth_src, EtherType::IPV4);
    Ipv4Repr {
        src_addr: ends.src,
        dst_addr: ends.dst,
        protocol: IpProtocol::ICMP,
        payload_len: len,
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: false,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut f[ETH..ETH + IP4]));
    repr.emit(&mut icmpv4::Packet::new_unchecked(&mut f[ETH + IP4..]));
    true
}

/// An ICMPv6 error (time exceeded, packet too big) about `orig`, between `ends`, quoting as
/// much of it as fits the minimum IPv6 MTU (RFC 4443).
pub fn icmp6_error<B: Buf>(b: &mut B, ends: &Ends<Ipv6Addr>, kind: IcmpKind, orig: &[u8]) -> bool {
    let quote = &orig[..orig.len().min(ICMP6_MAX - IP6 - icmpv6::HEADER_LEN)];
    let repr = match kind {
        IcmpKind::TtlExceeded => icmpv6::Repr::TimeExceeded { code: 0, quote },
        IcmpKind::TooBig(mtu) => icmpv6::Repr::PacketTooBig {
            mtu: u32::from(mtu),
            quote,
        },
    };
    icmp6_frame(b, ends, repr.buffer_len(), 64, |p| {
        repr.emit(ends.src, ends.dst, p)
    })
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
        let reply = ArpRepr {
            operation: crate::wire::ArpOperation::REPLY,
            source_hardware_addr: MacAddr(m),
            source_protocol_addr: a,
            target_hardware_addr: MacAddr([2, 0, 0, 0, 0, 9]),
            target_protocol_addr: "10.0.0.9".parse().unwrap(),
        };
        assert!(arp(&mut b, [2, 0, 0, 0, 0, 9], &reply));
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
        let ends = Ends {
            eth_src: [2, 0, 0, 0, 0, 1],
            eth_dst: [2, 0, 0, 0, 0, 9],
            src,
            dst,
        };
        let na = NdiscRepr::NeighborAdvert {
            flags: icmpv6::nd_flags::SOLICITED | icmpv6::nd_flags::OVERRIDE,
            target: src,
            lladdr: Some(MacAddr([2, 0, 0, 0, 0, 1])),
        };
        assert!(ndisc(&mut b, &ends, &na));
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
        let req = ArpRepr::request(MacAddr::ZERO, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
        assert!(!arp(&mut t, [0; 6], &req));
    }

    #[test]
    fn echo_replies_in_place_verify_both_families() {
        use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder};
        let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let mut v4 = Vec::new();
        PacketBuilder::ethernet2(a, b)
            .ipv4([10, 0, 0, 9], [10, 0, 0, 100], 5)
            .icmpv4_echo_request(7, 1)
            .write(&mut v4, b"ping")
            .unwrap();
        assert!(echo_reply_in_place(&mut v4, 14, 34, false));
        let p = SlicedPacket::from_ethernet(&v4).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        assert_eq!(ip.header().source(), [10, 0, 0, 100]);
        assert_eq!(ip.header().ttl(), 64);
        assert_eq!(
            ip.header().header_checksum(),
            ip.header().to_header().calc_header_checksum()
        );
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
            panic!()
        };
        assert!(matches!(icmp.icmp_type(), Icmpv4Type::EchoReply(_)));
        assert_eq!(
            icmp.checksum(),
            icmp.icmp_type().calc_checksum(icmp.payload())
        );
        assert_eq!(v4[..6], a);

        let (s6, d6): ([u8; 16], [u8; 16]) = (
            "fd00::9".parse::<Ipv6Addr>().unwrap().octets(),
            "fd00::100".parse::<Ipv6Addr>().unwrap().octets(),
        );
        let mut v6 = Vec::new();
        PacketBuilder::ethernet2(a, b)
            .ipv6(s6, d6, 5)
            .icmpv6_echo_request(7, 1)
            .write(&mut v6, b"ping")
            .unwrap();
        assert!(echo_reply_in_place(&mut v6, 14, 54, true));
        let p = SlicedPacket::from_ethernet(&v6).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else {
            panic!()
        };
        assert_eq!((ip.header().source(), ip.header().hop_limit()), (d6, 64));
        let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
            panic!()
        };
        assert!(matches!(icmp.icmp_type(), Icmpv6Type::EchoReply(_)));
        let want = icmp
            .icmp_type()
            .calc_checksum(d6, s6, icmp.payload())
            .unwrap();
        assert_eq!(icmp.checksum(), want);
        // A message cut short is refused.
        let mut short = v6[..60].to_vec();
        assert!(!echo_reply_in_place(&mut short, 14, 54, true));
    }
}

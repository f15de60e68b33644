//! Packet views: zero-copy readers and writers of the headers rvs handles, one file per
//! header, after smoltcp's `wire`.
//!
//! Each header has a `Packet<T: AsRef<[u8]>>` view (a `Frame` for Ethernet, `Chunk` and
//! `InitChunk` for SCTP chunks) over any buffer: `&[u8]`, `&mut [u8]`, an mbuf's data. Offsets
//! live as `const` ranges in a private `mod field`. `new_unchecked` wraps a buffer as it is;
//! `new_checked` wraps it after `check_len`, which looks once at every length the header
//! depends on. On a checked view **no accessor panics**: fixed fields are known to be present
//! and variable parts (options, payloads) are cut to the buffer, whatever the setters wrote
//! since. Getters are named after the field (`src_addr()`), setters add `set_` and need
//! `T: AsMut<[u8]>`; checksummed headers have `verify_checksum*` and `fill_checksum*`. The
//! `Repr` types are owned, validated forms with `parse` / `emit`: every header rvs builds is
//! written by one (ARP and neighbor discovery, ICMP errors, a tunnel's outer IPv4/IPv6, UDP,
//! GUE and GRE headers), on the slow paths and tunnels, never for the DR/NAT per-packet
//! rewrites (those are `pipeline::rewrite`'s incremental updates).
//!
//! [`parse_frame`] walks one received frame (Ethernet, up to two VLAN tags, IPv4 or IPv6
//! through its extension headers, then TCP, UDP, SCTP, ICMP or ICMPv6) into a
//! [`ParsedFrame`]: the offsets and the facts the load balancer dispatches on. It never
//! panics and never allocates.
//!
//! [`checksum`] holds the Internet checksum and its RFC 1624 incremental update, with UDP's
//! zero rules; [`sctp`] holds CRC32c.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod fast;
pub mod gre;
pub mod gue;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod sctp;
pub mod tcp;
pub mod udp;
pub mod vlan;

use core::fmt;
use std::net::IpAddr;

pub use self::arp::{Operation as ArpOperation, Packet as ArpPacket, Repr as ArpRepr};
pub use self::ethernet::{Frame as EthernetFrame, MacAddr, Repr as EthernetRepr};
pub use self::icmpv4::{Message as Icmpv4Message, Packet as Icmpv4Packet};
pub use self::icmpv6::{Message as Icmpv6Message, Packet as Icmpv6Packet};
pub use self::ipv4::{Packet as Ipv4Packet, Repr as Ipv4Repr};
pub use self::ipv6::{
    walk_ext_headers, ExtChain, FragmentHeader as Ipv6FragmentHeader, Packet as Ipv6Packet,
    Repr as Ipv6Repr,
};
pub use self::sctp::{
    Chunk as SctpChunk, ChunkType as SctpChunkType, InitChunk as SctpInitChunk,
    Packet as SctpPacket,
};
pub use self::tcp::{Flags as TcpFlags, Packet as TcpPacket};
pub use self::udp::Packet as UdpPacket;
pub use self::vlan::{Packet as VlanPacket, Tags as VlanTags};

#[cfg(test)]
mod proptests;

type Field = core::ops::Range<usize>;
type Rest = core::ops::RangeFrom<usize>;

/// Why a buffer is not a packet of the kind asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer ends before a header (or the length its header claims) does.
    Truncated,
    /// A field holds a value that makes the packet unusable; the reason names it.
    Malformed(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated packet"),
            Error::Malformed(why) => write!(f, "malformed packet: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// An EtherType (IEEE 802 protocol identifier, or a VLAN TPID).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: EtherType = EtherType(0x0800);
    pub const ARP: EtherType = EtherType(0x0806);
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// IEEE 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: EtherType = EtherType(0x88a8);
    /// Pre-standard QinQ outer tag still sent by some switches.
    pub const QINQ_LEGACY: EtherType = EtherType(0x9100);
}

/// An IP protocol number (IPv4 protocol, IPv6 next header).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    pub const HOP_BY_HOP: IpProtocol = IpProtocol(0);
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// IPv4 in IPv4 (IPIP).
    pub const IPV4: IpProtocol = IpProtocol(4);
    pub const TCP: IpProtocol = IpProtocol(6);
    pub const UDP: IpProtocol = IpProtocol(17);
    /// IPv6 in IP.
    pub const IPV6: IpProtocol = IpProtocol(41);
    pub const IPV6_ROUTING: IpProtocol = IpProtocol(43);
    pub const IPV6_FRAGMENT: IpProtocol = IpProtocol(44);
    pub const GRE: IpProtocol = IpProtocol(47);
    pub const ESP: IpProtocol = IpProtocol(50);
    pub const AH: IpProtocol = IpProtocol(51);
    pub const ICMPV6: IpProtocol = IpProtocol(58);
    pub const IPV6_NO_NEXT: IpProtocol = IpProtocol(59);
    pub const IPV6_DST_OPTS: IpProtocol = IpProtocol(60);
    pub const SCTP: IpProtocol = IpProtocol(132);
}

#[inline]
fn get16(data: &[u8], f: Field) -> u16 {
    let b = &data[f];
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn get32(data: &[u8], f: Field) -> u32 {
    let b = &data[f];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[inline]
fn put16(data: &mut [u8], f: Field, v: u16) {
    data[f].copy_from_slice(&v.to_be_bytes())
}

#[inline]
fn put32(data: &mut [u8], f: Field, v: u32) {
    data[f].copy_from_slice(&v.to_be_bytes())
}

/// `data[start..end]` cut to what the buffer holds: empty rather than a panic.
#[inline]
fn clamp(data: &[u8], start: usize, end: usize) -> &[u8] {
    let end = end.min(data.len());
    data.get(start..end).unwrap_or(&[])
}

#[inline]
fn clamp_mut(data: &mut [u8], start: usize, end: usize) -> &mut [u8] {
    let end = end.min(data.len());
    data.get_mut(start..end).unwrap_or(&mut [])
}

/// Fragmentation facts of an IPv4 header or an IPv6 fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// The datagram's identification (16 bits for IPv4, 32 for IPv6).
    pub ident: u32,
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
}

impl Fragment {
    /// Offset zero: this fragment carries the headers that follow (the L4 header).
    #[inline]
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// IP version of a parsed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    V4,
    V6,
}

/// What [`parse_frame`] found in one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedFrame {
    pub dst_mac: MacAddr,
    pub src_mac: MacAddr,
    /// The EtherType after the VLAN tags.
    pub ethertype: EtherType,
    /// The VLAN tags, outer first (`vlan.count` is 0, 1 or 2).
    pub vlan: VlanTags,
    /// Offset of the network header (after Ethernet and the tags).
    pub l3_offset: usize,
    /// The IP facts; `None` for a frame that is neither IPv4 nor IPv6 (ARP, LLDP, ...).
    pub ip: Option<IpSummary>,
}

impl ParsedFrame {
    /// The upper-layer protocol of an IP frame.
    #[inline]
    pub fn protocol(&self) -> Option<IpProtocol> {
        self.ip.map(|ip| ip.protocol)
    }

    /// Source and destination ports of a TCP, UDP or SCTP packet that has its L4 header.
    #[inline]
    pub fn ports(&self) -> Option<(u16, u16)> {
        self.ip.and_then(|ip| ip.l4.ports())
    }

    /// The TCP flags byte of a TCP packet that has its header.
    #[inline]
    pub fn tcp_flags(&self) -> Option<TcpFlags> {
        match self.ip?.l4 {
            L4Summary::Tcp { flags, .. } => Some(flags),
            _ => None,
        }
    }
}

/// The IP-layer facts of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSummary {
    pub version: IpVersion,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol: IPv4's protocol field, or IPv6's last next header after the
    /// extension headers (for a non-first IPv6 fragment, the fragment header's).
    pub protocol: IpProtocol,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Length of the IP packet from its length fields (the frame may carry padding after it).
    pub ip_len: usize,
    /// Frame offset of the upper-layer header (of the fragment's data, for a non-first
    /// fragment).
    pub l4_offset: usize,
    /// Bytes from `l4_offset` to the end of the IP packet.
    pub l4_len: usize,
    /// Fragment facts, when the packet is a fragment.
    pub fragment: Option<Fragment>,
    pub l4: L4Summary,
}

/// The transport-layer facts of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Summary {
    Tcp {
        src_port: u16,
        dst_port: u16,
        flags: TcpFlags,
        seq: u32,
        ack: u32,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    Sctp {
        src_port: u16,
        dst_port: u16,
        verification_tag: u32,
        /// Type of the first chunk; `None` when the first chunk header is cut short or
        /// malformed.
        first_chunk: Option<SctpChunkType>,
    },
    /// ICMP over IPv4 or ICMPv6 over IPv6.
    Icmp(IcmpSummary),
    /// A fragment other than the first: its bytes are data, not an L4 header.
    NonFirstFragment,
    /// A protocol this summary does not read (ESP, GRE, ICMPv4 inside IPv6, ...).
    Other,
}

impl L4Summary {
    /// Source and destination ports for TCP, UDP and SCTP.
    #[inline]
    pub fn ports(&self) -> Option<(u16, u16)> {
        match *self {
            L4Summary::Tcp {
                src_port, dst_port, ..
            }
            | L4Summary::Udp { src_port, dst_port }
            | L4Summary::Sctp {
                src_port, dst_port, ..
            } => Some((src_port, dst_port)),
            _ => None,
        }
    }
}

/// The facts of an ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpSummary {
    pub msg_type: u8,
    pub code: u8,
    /// An error message (it quotes the packet that caused it).
    pub is_error: bool,
    /// The identifier of an echo request or reply.
    pub echo_ident: Option<u16>,
    /// The quoted packet of an error, when its IP header could be read.
    pub quoted: Option<Quoted>,
}

/// The packet an ICMP error quotes: the header of a packet this host (or a real server
/// behind it) sent, so its source is the far end's destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// Frame offset of the quoted IP header.
    pub offset: usize,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol of the quoted packet (after IPv6 extension headers).
    pub protocol: IpProtocol,
    /// Frame offset of the quoted upper-layer header.
    pub l4_offset: usize,
    /// Quoted TCP, UDP or SCTP ports, when the quote holds them.
    pub ports: Option<(u16, u16)>,
}

/// Walk a received Ethernet frame and summarise it (see [`ParsedFrame`]).
///
/// `Err` when a header the walk needs is cut short or malformed: the Ethernet header, a VLAN
/// tag (or a third tag), the IPv4/IPv6 header or its lengths, an IPv6 extension header, or the
/// L4 header of a TCP, UDP, SCTP or ICMP packet that should have one. A frame that is not IP
/// is `Ok` with `ip: None`. Checksums are not verified. Never panics.
pub fn parse_frame(bytes: &[u8]) -> Result<ParsedFrame, Error> {
    let eth = EthernetFrame::new_checked(bytes)?;
    let vlan = vlan::parse_tags(eth.ethertype(), eth.payload())?;
    let l3_offset = ethernet::HEADER_LEN + vlan.len;
    let l3 = bytes.get(l3_offset..).unwrap_or(&[]);
    let ip = match vlan.ethertype {
        EtherType::IPV4 => Some(parse_ipv4(l3, l3_offset)?),
        EtherType::IPV6 => Some(parse_ipv6(l3, l3_offset)?),
        _ => None,
    };
    Ok(ParsedFrame {
        dst_mac: eth.dst_addr(),
        src_mac: eth.src_addr(),
        ethertype: vlan.ethertype,
        vlan,
        l3_offset,
        ip,
    })
}

fn parse_ipv4(l3: &[u8], l3_offset: usize) -> Result<IpSummary, Error> {
    let ip = Ipv4Packet::new_checked(l3)?;
    if ip.version() != 4 {
        return Err(Error::Malformed("IP version is not 4"));
    }
    let fragment = ip.fragment();
    let l4_offset = l3_offset + ip.header_len();
    let payload = ip.payload();
    let l4 = parse_l4(IpVersion::V4, ip.protocol(), payload, l4_offset, fragment)?;
    Ok(IpSummary {
        version: IpVersion::V4,
        src: IpAddr::V4(ip.src_addr()),
        dst: IpAddr::V4(ip.dst_addr()),
        protocol: ip.protocol(),
        ttl: ip.ttl(),
        ip_len: usize::from(ip.total_len()),
        l4_offset,
        l4_len: payload.len(),
        fragment,
        l4,
    })
}

fn parse_ipv6(l3: &[u8], l3_offset: usize) -> Result<IpSummary, Error> {
    let ip = Ipv6Packet::new_checked(l3)?;
    if ip.version() != 6 {
        return Err(Error::Malformed("IP version is not 6"));
    }
    let chain = ip.ext_headers()?;
    let l4_bytes = ip.payload().get(chain.offset..).unwrap_or(&[]);
    let l4_offset = l3_offset + ipv6::HEADER_LEN + chain.offset;
    let l4 = parse_l4(
        IpVersion::V6,
        chain.protocol,
        l4_bytes,
        l4_offset,
        chain.fragment,
    )?;
    Ok(IpSummary {
        version: IpVersion::V6,
        src: IpAddr::V6(ip.src_addr()),
        dst: IpAddr::V6(ip.dst_addr()),
        protocol: chain.protocol,
        ttl: ip.hop_limit(),
        ip_len: ipv6::HEADER_LEN + usize::from(ip.payload_len()),
        l4_offset,
        l4_len: l4_bytes.len(),
        fragment: chain.fragment,
        l4,
    })
}

/// Summarise the L4 header in `l4` (the rest of the IP packet, or of the first fragment).
fn parse_l4(
    version: IpVersion,
    protocol: IpProtocol,
    l4: &[u8],
    l4_offset: usize,
    fragment: Option<Fragment>,
) -> Result<L4Summary, Error> {
    if fragment.is_some_and(|f| !f.is_first()) {
        return Ok(L4Summary::NonFirstFragment);
    }
    let summary = match (protocol, version) {
        (IpProtocol::TCP, _) => {
            let tcp = TcpPacket::new_checked(l4)?;
            L4Summary::Tcp {
                src_port: tcp.src_port(),
                dst_port: tcp.dst_port(),
                flags: tcp.flags(),
                seq: tcp.seq_number(),
                ack: tcp.ack_number(),
            }
        }
        (IpProtocol::UDP, _) => {
            let udp = if fragment.is_none() {
                UdpPacket::new_checked(l4)?
            } else if l4.len() >= udp::HEADER_LEN {
                // A first fragment: the length field counts fragments not in this buffer.
                UdpPacket::new_unchecked(l4)
            } else {
                return Err(Error::Truncated);
            };
            L4Summary::Udp {
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
            }
        }
        (IpProtocol::SCTP, _) => {
            let sctp = SctpPacket::new_checked(l4)?;
            L4Summary::Sctp {
                src_port: sctp.src_port(),
                dst_port: sctp.dst_port(),
                verification_tag: sctp.verification_tag(),
                first_chunk: sctp.first_chunk_type(),
            }
        }
        (IpProtocol::ICMP, IpVersion::V4) => {
            let icmp = Icmpv4Packet::new_checked(l4)?;
            let ty = icmp.msg_type();
            let echo = matches!(ty, Icmpv4Message::ECHO_REQUEST | Icmpv4Message::ECHO_REPLY);
            L4Summary::Icmp(IcmpSummary {
                msg_type: ty.0,
                code: icmp.msg_code(),
                is_error: ty.is_error(),
                echo_ident: echo.then(|| icmp.echo_ident()),
                quoted: if ty.is_error() {
                    quoted_ipv4(icmp.data(), l4_offset + icmpv4::HEADER_LEN)
                } else {
                    None
                },
            })
        }
        (IpProtocol::ICMPV6, IpVersion::V6) => {
            let icmp = Icmpv6Packet::new_checked(l4)?;
            let ty = icmp.msg_type();
            let echo = matches!(ty, Icmpv6Message::ECHO_REQUEST | Icmpv6Message::ECHO_REPLY);
            L4Summary::Icmp(IcmpSummary {
                msg_type: ty.0,
                code: icmp.msg_code(),
                is_error: ty.is_error(),
                echo_ident: echo.then(|| icmp.echo_ident()),
                quoted: if ty.is_error() {
                    quoted_ipv6(icmp.data(), l4_offset + icmpv6::HEADER_LEN)
                } else {
                    None
                },
            })
        }
        _ => L4Summary::Other,
    };
    Ok(summary)
}

/// Ports at the start of a quoted TCP, UDP or SCTP header, if the quote holds them.
fn quoted_ports(protocol: IpProtocol, l4: &[u8], first: bool) -> Option<(u16, u16)> {
    if !first
        || !matches!(
            protocol,
            IpProtocol::TCP | IpProtocol::UDP | IpProtocol::SCTP
        )
    {
        return None;
    }
    match l4 {
        [a, b, c, d, ..] => Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]))),
        _ => None,
    }
}

fn quoted_ipv4(data: &[u8], offset: usize) -> Option<Quoted> {
    let inner = Ipv4Packet::new_quoted(data).ok()?;
    if inner.version() != 4 {
        return None;
    }
    let protocol = inner.protocol();
    Some(Quoted {
        offset,
        src: IpAddr::V4(inner.src_addr()),
        dst: IpAddr::V4(inner.dst_addr()),
        protocol,
        l4_offset: offset + inner.header_len(),
        ports: quoted_ports(protocol, inner.payload(), inner.frag_offset() == 0),
    })
}

fn quoted_ipv6(data: &[u8], offset: usize) -> Option<Quoted> {
    let inner = Ipv6Packet::new_quoted(data).ok()?;
    if inner.version() != 6 {
        return None;
    }
    let chain = inner.ext_headers().ok()?;
    let l4 = inner.payload().get(chain.offset..).unwrap_or(&[]);
    let first = chain.fragment.is_none_or(|f| f.is_first());
    Some(Quoted {
        offset,
        src: IpAddr::V6(inner.src_addr()),
        dst: IpAddr::V6(inner.dst_addr()),
        protocol: chain.protocol,
        l4_offset: offset + ipv6::HEADER_LEN + chain.offset,
        ports: quoted_ports(chain.protocol, l4, first),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    pub(super) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A real TCP SYN frame: a web client 145.254.160.237:3372 opening 65.208.228.223:80
    /// (MSS 1460, NOP, NOP, SACK permitted).
    pub(super) fn tcp_syn() -> Vec<u8> {
        hex("feff20000100 000001000000 0800
             450000300f414000800691eb91fea0ed41d0e4df
             0d2c005038affe130000000070022238c30c0000020405b401010402")
    }

    /// A DNS query: 192.168.1.100:53812 -> 8.8.8.8:53, A example.com, recursion desired.
    pub(super) fn udp_dns_query() -> Vec<u8> {
        hex("001a2b3c4d5e 3c22fb123456 0800
             450000394c2a400040111c6ec0a8016408080808
             d2340035002571851a2b01000001000000000000
             076578616d706c6503636f6d0000010001")
    }

    /// A Windows-style ping: 10.0.0.5 -> 10.0.0.1, echo request id 1 seq 9, 32 bytes.
    pub(super) fn icmp_echo() -> Vec<u8> {
        hex("001a2b3c4d5e 3c22fb123456 0800
             4500003c0c3d000080011a7f0a0000050a000001
             08004d5200010009
             6162636465666768696a6b6c6d6e6f707172737475767761626364656667 6869")
    }

    /// A real ARP request, broadcast: who has 24.166.173.159? tell 24.166.172.1; padded to
    /// the 60-byte minimum.
    pub(super) fn arp_request() -> Vec<u8> {
        hex("ffffffffffff 00070daff454 0806
             0001080006040001 00070daff454 18a6ac01 000000000000 18a6ad9f
             000000000000000000000000000000000000")
    }

    /// The TCP SYN above, tagged for 802.1Q VLAN 32.
    pub(super) fn vlan_tcp_syn() -> Vec<u8> {
        hex("feff20000100 000001000000 8100 0020 0800
             450000300f414000800691eb91fea0ed41d0e4df
             0d2c005038affe130000000070022238c30c0000020405b401010402")
    }

    /// An IPv6 TCP SYN 2001:db8::1:40000 -> 2001:db8::2:80 behind a hop-by-hop header
    /// (router alert) and an atomic fragment header (id 0xdeadbeef), QinQ-tagged: S-tag VLAN
    /// 100 priority 3, C-tag VLAN 200.
    pub(super) fn qinq_ipv6_hbh_frag_tcp() -> Vec<u8> {
        hex("3333000000fb 02000000000a 88a8 6064 8100 00c8 86dd
             6000000000240040 20010db8000000000000000000000001 20010db8000000000000000000000002
             2c00050200000100 06000000deadbeef
             9c40005000000001000000005002ffffb7dc0000")
    }

    /// Router 10.1.1.1 tells 192.0.2.10 "fragmentation needed, next-hop MTU 1400" about a
    /// 1500-byte TCP packet 192.0.2.10:443 -> 198.51.100.7:51000.
    pub(super) fn icmp_frag_needed() -> Vec<u8> {
        hex("3c22fb123456 001a2b3c4d5e 0800
             4500003811110000fe01dea70a010101c000020a
             0304c5e300000578
             450005dcbeef4000400689e7c000020ac6336407 01bbc73812345678")
    }

    fn ip(frame: &ParsedFrame) -> IpSummary {
        frame.ip.expect("an IP frame")
    }

    #[test]
    fn tcp_syn_frame_gives_addresses_ports_flags_and_offsets() {
        let bytes = tcp_syn();
        let f = parse_frame(&bytes).unwrap();
        assert_eq!(f.dst_mac, MacAddr([0xfe, 0xff, 0x20, 0x00, 0x01, 0x00]));
        assert_eq!(f.ethertype, EtherType::IPV4);
        assert_eq!((f.vlan.count, f.l3_offset), (0, 14));
        let ip = ip(&f);
        assert_eq!(ip.version, IpVersion::V4);
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(145, 254, 160, 237)));
        assert_eq!(ip.dst, IpAddr::V4(Ipv4Addr::new(65, 208, 228, 223)));
        assert_eq!((ip.protocol, ip.ttl, ip.ip_len), (IpProtocol::TCP, 128, 48));
        assert_eq!((ip.l4_offset, ip.l4_len), (34, 28));
        assert_eq!(ip.fragment, None);
        assert_eq!(
            ip.l4,
            L4Summary::Tcp {
                src_port: 3372,
                dst_port: 80,
                flags: TcpFlags::SYN,
                seq: 0x38affe13,
                ack: 0
            }
        );
        assert_eq!(f.ports(), Some((3372, 80)));
        assert_eq!(f.tcp_flags(), Some(TcpFlags::SYN));
        let v4 = Ipv4Packet::new_checked(&bytes[f.l3_offset..]).unwrap();
        assert!(v4.verify_checksum());
        let tcp = TcpPacket::new_checked(&bytes[ip.l4_offset..]).unwrap();
        assert!(tcp.verify_checksum_v4(v4.src_addr(), v4.dst_addr()));
    }

    #[test]
    fn udp_dns_query_frame_gives_ports_and_verifies() {
        let bytes = udp_dns_query();
        let f = parse_frame(&bytes).unwrap();
        let ip = ip(&f);
        assert_eq!(ip.protocol, IpProtocol::UDP);
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100)));
        assert_eq!(ip.dst, IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(
            ip.l4,
            L4Summary::Udp {
                src_port: 53812,
                dst_port: 53
            }
        );
        assert_eq!((ip.l4_offset, ip.l4_len), (34, 37));
        assert!(Ipv4Packet::new_checked(&bytes[14..])
            .unwrap()
            .verify_checksum());
        let udp = UdpPacket::new_checked(&bytes[34..]).unwrap();
        assert!(udp.verify_checksum_v4(Ipv4Addr::new(192, 168, 1, 100), Ipv4Addr::new(8, 8, 8, 8)));
    }

    #[test]
    fn icmp_echo_frame_gives_type_ident_and_no_quote() {
        let bytes = icmp_echo();
        let f = parse_frame(&bytes).unwrap();
        let ip = ip(&f);
        assert_eq!(ip.protocol, IpProtocol::ICMP);
        assert_eq!(
            ip.l4,
            L4Summary::Icmp(IcmpSummary {
                msg_type: 8,
                code: 0,
                is_error: false,
                echo_ident: Some(1),
                quoted: None
            })
        );
        assert_eq!(f.ports(), None);
        assert!(Ipv4Packet::new_checked(&bytes[14..])
            .unwrap()
            .verify_checksum());
        assert!(Icmpv4Packet::new_checked(&bytes[34..])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn arp_request_frame_is_not_ip_and_parses_as_arp() {
        let bytes = arp_request();
        let f = parse_frame(&bytes).unwrap();
        assert_eq!(f.ethertype, EtherType::ARP);
        assert!(f.dst_mac.is_broadcast());
        assert_eq!(f.ip, None);
        let arp = ArpRepr::parse(&ArpPacket::new_checked(&bytes[f.l3_offset..]).unwrap()).unwrap();
        assert_eq!(arp.operation, ArpOperation::REQUEST);
        assert_eq!(arp.target_protocol_addr, Ipv4Addr::new(24, 166, 173, 159));
    }

    #[test]
    fn vlan_tagged_frame_gives_vid_and_moves_l3_offset() {
        let bytes = vlan_tcp_syn();
        let f = parse_frame(&bytes).unwrap();
        assert_eq!(f.vlan.count, 1);
        assert_eq!(f.vlan.vid(0), Some(32));
        assert_eq!(f.ethertype, EtherType::IPV4);
        assert_eq!(f.l3_offset, 18);
        assert_eq!(ip(&f).l4_offset, 38);
        assert_eq!(f.ports(), Some((3372, 80)));
        // Same IP facts as the untagged frame.
        assert_eq!(ip(&f).l4, ip(&parse_frame(&tcp_syn()).unwrap()).l4);
    }

    #[test]
    fn qinq_ipv6_frame_walks_hop_by_hop_and_fragment_to_tcp() {
        let bytes = qinq_ipv6_hbh_frag_tcp();
        let f = parse_frame(&bytes).unwrap();
        assert_eq!(f.vlan.count, 2);
        assert_eq!((f.vlan.vid(0), f.vlan.pcp(0)), (Some(100), Some(3)));
        assert_eq!(f.vlan.vid(1), Some(200));
        assert_eq!((f.ethertype, f.l3_offset), (EtherType::IPV6, 22));
        let ip = ip(&f);
        assert_eq!(ip.version, IpVersion::V6);
        let (src, dst): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        assert_eq!((ip.src, ip.dst), (IpAddr::V6(src), IpAddr::V6(dst)));
        assert_eq!((ip.protocol, ip.ttl, ip.ip_len), (IpProtocol::TCP, 64, 76));
        assert_eq!((ip.l4_offset, ip.l4_len), (22 + 40 + 16, 20));
        assert_eq!(
            ip.fragment,
            Some(Fragment {
                ident: 0xdeadbeef,
                offset: 0,
                more: false
            })
        );
        assert_eq!(f.ports(), Some((40000, 80)));
        assert_eq!(f.tcp_flags(), Some(TcpFlags::SYN));
        let tcp = TcpPacket::new_checked(&bytes[ip.l4_offset..]).unwrap();
        assert!(tcp.verify_checksum_v6(src, dst));
    }

    #[test]
    fn icmp_frag_needed_frame_quotes_inner_tcp_ports() {
        let bytes = icmp_frag_needed();
        let f = parse_frame(&bytes).unwrap();
        let ip = ip(&f);
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1)));
        let L4Summary::Icmp(icmp) = ip.l4 else {
            panic!("not ICMP: {:?}", ip.l4)
        };
        assert_eq!((icmp.msg_type, icmp.code, icmp.is_error), (3, 4, true));
        assert_eq!(icmp.echo_ident, None);
        let q = icmp.quoted.unwrap();
        assert_eq!(q.offset, 34 + 8);
        assert_eq!(q.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(q.dst, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));
        assert_eq!((q.protocol, q.l4_offset), (IpProtocol::TCP, 62));
        assert_eq!(q.ports, Some((443, 51000)));
        let icmp = Icmpv4Packet::new_checked(&bytes[ip.l4_offset..]).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.next_hop_mtu(), 1400);
    }

    #[test]
    fn non_first_ipv4_fragment_has_no_l4_summary() {
        let mut bytes = udp_dns_query();
        let mut v4 = Ipv4Packet::new_checked(&mut bytes[14..]).unwrap();
        v4.set_dont_frag(false);
        v4.set_frag_offset(1480);
        let f = parse_frame(&bytes).unwrap();
        let ip = ip(&f);
        assert_eq!(ip.l4, L4Summary::NonFirstFragment);
        assert_eq!(f.ports(), None);
        let frag = ip.fragment.unwrap();
        assert_eq!(
            (frag.ident, frag.offset, frag.more, frag.is_first()),
            (0x4c2a, 1480, false, false)
        );
        assert_eq!(ip.l4_offset, 34);
    }

    #[test]
    fn non_first_ipv6_fragment_has_no_l4_summary() {
        let mut bytes = qinq_ipv6_hbh_frag_tcp();
        Ipv6FragmentHeader::new_checked(&mut bytes[70..78])
            .unwrap()
            .set_frag_offset(8);
        let ip = ip(&parse_frame(&bytes).unwrap());
        assert_eq!(ip.l4, L4Summary::NonFirstFragment);
        assert_eq!(ip.fragment.map(|f| f.offset), Some(8));
    }

    #[test]
    fn first_udp_fragment_reads_ports_though_length_counts_later_fragments() {
        let mut bytes = udp_dns_query();
        UdpPacket::new_unchecked(&mut bytes[34..]).set_len(1000);
        assert_eq!(parse_frame(&bytes).err(), Some(Error::Truncated));
        Ipv4Packet::new_checked(&mut bytes[14..])
            .unwrap()
            .set_more_frags(true);
        let f = parse_frame(&bytes).unwrap();
        assert_eq!(f.ports(), Some((53812, 53)));
        assert!(ip(&f).fragment.unwrap().is_first());
    }

    #[test]
    fn sctp_init_frame_gives_ports_tag_and_first_chunk() {
        let mut bytes = hex("001a2b3c4d5e 3c22fb123456 0800
             4500003400000000 4084 0000 0a000001 0a000002
             8e3c8e3c 00000000 00000000
             01000014 1c2d3e4f 00010000 000a0010 5a5b5c5d");
        Ipv4Packet::new_checked(&mut bytes[14..])
            .unwrap()
            .fill_checksum();
        SctpPacket::new_checked(&mut bytes[34..])
            .unwrap()
            .fill_checksum();
        let f = parse_frame(&bytes).unwrap();
        assert_eq!(
            ip(&f).l4,
            L4Summary::Sctp {
                src_port: 36412,
                dst_port: 36412,
                verification_tag: 0,
                first_chunk: Some(SctpChunkType::INIT)
            }
        );
        assert_eq!(f.ports(), Some((36412, 36412)));
    }

    #[test]
    fn icmpv6_packet_too_big_quotes_inner_udp_ports() {
        let (src, dst): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::fe".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        );
        let mut bytes = hex("02000000000a 3333000000fb 86dd");
        bytes.extend_from_slice(&[0x60, 0, 0, 0, 0, 56, 58, 255]);
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0x05, 0x00]);
        bytes.extend_from_slice(&[0x60, 0, 0, 0, 0x05, 0xb0, 17, 64]);
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
        bytes.extend_from_slice(&[0x14, 0xe9, 0x00, 0x35, 0x05, 0xb0, 0xab, 0xcd]);
        Icmpv6Packet::new_checked(&mut bytes[54..])
            .unwrap()
            .fill_checksum(src, dst);
        let f = parse_frame(&bytes).unwrap();
        let ip = ip(&f);
        assert_eq!(ip.protocol, IpProtocol::ICMPV6);
        let L4Summary::Icmp(icmp) = ip.l4 else {
            panic!("not ICMPv6: {:?}", ip.l4)
        };
        assert_eq!((icmp.msg_type, icmp.is_error), (2, true));
        let q = icmp.quoted.unwrap();
        assert_eq!((q.offset, q.l4_offset), (62, 102));
        assert_eq!(q.src, IpAddr::V6(dst));
        assert_eq!((q.protocol, q.ports), (IpProtocol::UDP, Some((5353, 53))));
        let icmp = Icmpv6Packet::new_checked(&bytes[54..]).unwrap();
        assert!(icmp.verify_checksum(src, dst));
        assert_eq!(icmp.mtu(), 1280);
    }

    #[test]
    fn ethernet_padding_after_ip_packet_is_ignored() {
        let mut bytes = tcp_syn();
        bytes.extend_from_slice(&[0; 12]);
        let f = parse_frame(&bytes).unwrap();
        assert_eq!((ip(&f).ip_len, ip(&f).l4_len), (48, 28));
    }

    #[test]
    fn ip_frames_cut_anywhere_are_truncated() {
        for bytes in [
            tcp_syn(),
            udp_dns_query(),
            icmp_echo(),
            vlan_tcp_syn(),
            qinq_ipv6_hbh_frag_tcp(),
            icmp_frag_needed(),
        ] {
            for n in 0..bytes.len() {
                assert_eq!(
                    parse_frame(&bytes[..n]).err(),
                    Some(Error::Truncated),
                    "cut at {n}"
                );
            }
        }
    }

    #[test]
    fn wrong_ip_version_is_malformed() {
        let mut bytes = tcp_syn();
        bytes[14] = 0x65;
        assert!(matches!(parse_frame(&bytes), Err(Error::Malformed(_))));
        let mut bytes = qinq_ipv6_hbh_frag_tcp();
        bytes[22] = 0x40;
        assert!(matches!(parse_frame(&bytes), Err(Error::Malformed(_))));
    }

    #[test]
    fn third_vlan_tag_is_malformed() {
        let mut bytes = hex("3333000000fb 02000000000a 88a8 0064 8100 00c8 8100 0001 0800");
        bytes.extend_from_slice(&tcp_syn()[14..]);
        assert!(matches!(parse_frame(&bytes), Err(Error::Malformed(_))));
    }

    #[test]
    fn error_display_names_the_reason() {
        assert_eq!(Error::Truncated.to_string(), "truncated packet");
        assert_eq!(
            Error::Malformed("IPv4 IHL below 5").to_string(),
            "malformed packet: IPv4 IHL below 5"
        );
    }
}

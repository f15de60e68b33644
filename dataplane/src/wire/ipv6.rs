//! IPv6 headers (RFC 8200) and the walk over their extension headers.
//!
//! [`Packet::new_checked`] makes sure that the 40-byte fixed header and the payload length it
//! announces are in the buffer (a longer buffer is fine: the payload ends where the payload
//! length says). [`Packet::new_quoted`] only needs the fixed header, for a header quoted in an
//! ICMPv6 error. After either check no accessor panics.
//!
//! [`walk_ext_headers`] steps over hop-by-hop, routing, destination-options, fragment and
//! authentication headers to the upper-layer protocol. It reads at most
//! [`MAX_EXT_HEADERS`] headers and never reads past the slice it is given, so it ends on any
//! input, and it never panics. It stops at a non-first fragment, whose payload is no upper-layer
//! header. The version is not checked here; callers compare [`Packet::version`] with 6.

use std::net::Ipv6Addr;

use super::{clamp, clamp_mut, get16, get32, put16, put32, Error, Field, Fragment, IpProtocol};

mod field {
    use super::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Most extension headers [`walk_ext_headers`] steps over before calling the chain malformed.
pub const MAX_EXT_HEADERS: usize = 8;

/// A zero-copy view of an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap `buffer` after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Wrap an IPv6 header quoted in an ICMPv6 error: the fixed header must be present, the
    /// payload may be cut short.
    #[inline]
    pub fn new_quoted(buffer: T) -> Result<Packet<T>, Error> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    /// `Err(Truncated)` unless the fixed header and the whole payload are in the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < HEADER_LEN + usize::from(self.payload_len()) {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (get32(self.buffer.as_ref(), field::VER_TC_FLOW) >> 20) as u8
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        get32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Length of everything after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The first next-header value (an extension header or the upper-layer protocol).
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::NXT_HDR])
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// Everything after the fixed header, up to the payload length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        clamp(
            self.buffer.as_ref(),
            HEADER_LEN,
            HEADER_LEN + usize::from(self.payload_len()),
        )
    }

    /// Walk the extension headers of this packet's payload (see [`walk_ext_headers`]).
    #[inline]
    pub fn ext_headers(&self) -> Result<ExtChain, Error> {
        walk_ext_headers(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_ver_tc_flow(&mut self, mask: u32, value: u32) {
        let raw = get32(self.buffer.as_ref(), field::VER_TC_FLOW);
        put32(
            self.buffer.as_mut(),
            field::VER_TC_FLOW,
            (raw & !mask) | (value & mask),
        )
    }

    #[inline]
    pub fn set_version(&mut self, value: u8) {
        self.set_ver_tc_flow(0xf000_0000, u32::from(value) << 28)
    }

    #[inline]
    pub fn set_traffic_class(&mut self, value: u8) {
        self.set_ver_tc_flow(0x0ff0_0000, u32::from(value) << 20)
    }

    #[inline]
    pub fn set_flow_label(&mut self, value: u32) {
        self.set_ver_tc_flow(0x000f_ffff, value)
    }

    #[inline]
    pub fn set_payload_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, value)
    }

    #[inline]
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = value.0
    }

    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value
    }

    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets())
    }

    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets())
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        clamp_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }
}

#[inline]
fn addr(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(b);
    Ipv6Addr::from(o)
}

mod frag_field {
    use super::Field;
    pub const NXT_HDR: usize = 0;
    pub const OFF_M: Field = 2..4;
    pub const IDENT: Field = 4..8;
}

/// Length of a fragment header.
pub const FRAGMENT_HEADER_LEN: usize = frag_field::IDENT.end;

/// A zero-copy view of an IPv6 fragment extension header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> FragmentHeader<T> {
        FragmentHeader { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<FragmentHeader<T>, Error> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// `Err(Truncated)` when the 8 header bytes are not all there.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < FRAGMENT_HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[frag_field::NXT_HDR])
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        get16(self.buffer.as_ref(), frag_field::OFF_M) & 0xfff8
    }

    /// The M flag: more fragments follow.
    #[inline]
    pub fn more_frags(&self) -> bool {
        get16(self.buffer.as_ref(), frag_field::OFF_M) & 1 != 0
    }

    #[inline]
    pub fn ident(&self) -> u32 {
        get32(self.buffer.as_ref(), frag_field::IDENT)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FragmentHeader<T> {
    #[inline]
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[frag_field::NXT_HDR] = value.0
    }

    /// Set the fragment offset in bytes (a multiple of 8; the low bits are dropped).
    #[inline]
    pub fn set_frag_offset(&mut self, value: u16) {
        let raw = get16(self.buffer.as_ref(), frag_field::OFF_M);
        put16(
            self.buffer.as_mut(),
            frag_field::OFF_M,
            (raw & 0x0007) | (value & 0xfff8),
        )
    }

    #[inline]
    pub fn set_more_frags(&mut self, value: bool) {
        let raw = get16(self.buffer.as_ref(), frag_field::OFF_M);
        put16(
            self.buffer.as_mut(),
            frag_field::OFF_M,
            (raw & !1) | u16::from(value),
        )
    }

    #[inline]
    pub fn set_ident(&mut self, value: u32) {
        put32(self.buffer.as_mut(), frag_field::IDENT, value)
    }
}

/// Where the extension headers end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtChain {
    /// The first next-header value that is not a walked extension header: the upper-layer
    /// protocol (or ESP, or no-next-header). For a non-first fragment, the fragment
    /// header's next header, whose bytes are not in this fragment.
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the walked slice (the IPv6
    /// payload); for a non-first fragment, of the fragment's data.
    pub offset: usize,
    /// The fragment header's facts, if there was one.
    pub fragment: Option<Fragment>,
    /// How many extension headers were stepped over.
    pub count: u8,
}

/// Whether `p` is an extension header [`walk_ext_headers`] steps over.
#[inline]
pub fn is_ext_header(p: IpProtocol) -> bool {
    matches!(
        p,
        IpProtocol::HOP_BY_HOP
            | IpProtocol::IPV6_ROUTING
            | IpProtocol::IPV6_DST_OPTS
            | IpProtocol::IPV6_FRAGMENT
            | IpProtocol::AH
    )
}

/// Step over the extension headers at the start of `payload`, the first being of type
/// `next_header` (the fixed header's next-header field).
///
/// `Truncated` when a header runs past `payload`; `Malformed` after [`MAX_EXT_HEADERS`]
/// headers or on a second fragment header.
pub fn walk_ext_headers(next_header: IpProtocol, payload: &[u8]) -> Result<ExtChain, Error> {
    let mut chain = ExtChain {
        protocol: next_header,
        offset: 0,
        fragment: None,
        count: 0,
    };
    while is_ext_header(chain.protocol) {
        if usize::from(chain.count) >= MAX_EXT_HEADERS {
            return Err(Error::Malformed("too many IPv6 extension headers"));
        }
        let rest = payload.get(chain.offset..).unwrap_or(&[]);
        let len = if chain.protocol == IpProtocol::IPV6_FRAGMENT {
            if chain.fragment.is_some() {
                return Err(Error::Malformed("two IPv6 fragment headers"));
            }
            let frag = FragmentHeader::new_checked(rest)?;
            let fragment = Fragment {
                ident: frag.ident(),
                offset: frag.frag_offset(),
                more: frag.more_frags(),
            };
            chain.fragment = Some(fragment);
            if !fragment.is_first() {
                chain.protocol = frag.next_header();
                chain.offset += FRAGMENT_HEADER_LEN;
                chain.count += 1;
                return Ok(chain);
            }
            FRAGMENT_HEADER_LEN
        } else {
            let Some(&hdr_len) = rest.get(1) else {
                return Err(Error::Truncated);
            };
            if chain.protocol == IpProtocol::AH {
                // RFC 4302: length in 4-byte units, minus 2.
                (usize::from(hdr_len) + 2) * 4
            } else {
                // RFC 8200: length in 8-byte units, not counting the first 8.
                (usize::from(hdr_len) + 1) * 8
            }
        };
        if rest.len() < len {
            return Err(Error::Truncated);
        }
        chain.protocol = IpProtocol(rest[0]);
        chain.offset += len;
        chain.count += 1;
    }
    Ok(chain)
}

/// The owned form of an IPv6 fixed header without extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    pub next_header: IpProtocol,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
}

impl Repr {
    /// Read a checked version-6 fixed header.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error::Malformed("IP version is not 6"));
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
        })
    }

    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the fixed header (flow label 0); the buffer must hold at least [`HEADER_LEN`]
    /// bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_ver_tc_flow(0xffff_ffff, 6 << 28 | u32::from(self.traffic_class) << 20);
        packet.set_payload_len(self.payload_len as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv6 TCP SYN (2001:db8::1 port 40000 -> 2001:db8::2 port 80) behind a hop-by-hop
    /// header (router alert, PadN) and a fragment header for an atomic fragment (offset 0,
    /// M clear: RFC 6946), so the TCP checksum covers the segment here.
    static V6_HBH_FRAG_TCP: [u8; 40 + 8 + 8 + 20] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00,
        0x40, // payload 36, next hop-by-hop, hlim 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
        0x2c, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00, // hop-by-hop: next fragment, RA, PadN
        0x06, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, // fragment: next TCP, off 0, id
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, // TCP ports, seq 1
        0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xff, 0xff, // ack 0, doff 5, SYN, win 65535
        0xb7, 0xdc, 0x00, 0x00, // checksum, urgent
    ];

    #[test]
    fn fixed_header_fields_read() {
        let p = Packet::new_checked(&V6_HBH_FRAG_TCP[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!((p.traffic_class(), p.flow_label()), (0, 0));
        assert_eq!(p.payload_len(), 36);
        assert_eq!(p.next_header(), IpProtocol::HOP_BY_HOP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload().len(), 36);
    }

    #[test]
    fn walk_steps_over_hop_by_hop_and_first_fragment_to_tcp() {
        let p = Packet::new_checked(&V6_HBH_FRAG_TCP[..]).unwrap();
        let chain = p.ext_headers().unwrap();
        assert_eq!(chain.protocol, IpProtocol::TCP);
        assert_eq!(chain.offset, 16);
        assert_eq!(chain.count, 2);
        let frag = chain.fragment.unwrap();
        assert_eq!(
            frag,
            Fragment {
                ident: 0xdeadbeef,
                offset: 0,
                more: false
            }
        );
        assert!(frag.is_first());
    }

    #[test]
    fn walk_stops_at_non_first_fragment() {
        let mut bytes = V6_HBH_FRAG_TCP;
        let mut frag = FragmentHeader::new_checked(&mut bytes[48..56]).unwrap();
        frag.set_frag_offset(1232);
        frag.set_more_frags(false);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let chain = p.ext_headers().unwrap();
        assert_eq!(chain.protocol, IpProtocol::TCP);
        assert_eq!(chain.offset, 16);
        let f = chain.fragment.unwrap();
        assert_eq!((f.offset, f.more, f.is_first()), (1232, false, false));
    }

    #[test]
    fn walk_sizes_ah_in_4_byte_units() {
        // AH with payload length 4: (4 + 2) * 4 = 24 bytes, then UDP.
        let mut payload = vec![17, 4, 0, 0];
        payload.resize(24, 0);
        payload.extend_from_slice(&[0; 8]);
        let chain = walk_ext_headers(IpProtocol::AH, &payload).unwrap();
        assert_eq!((chain.protocol, chain.offset), (IpProtocol::UDP, 24));
    }

    #[test]
    fn walk_of_chain_cut_short_is_truncated() {
        let p = Packet::new_checked(&V6_HBH_FRAG_TCP[..]).unwrap();
        for n in 0..16 {
            assert_eq!(
                walk_ext_headers(p.next_header(), &p.payload()[..n]),
                Err(Error::Truncated),
                "cut at {n}"
            );
        }
    }

    #[test]
    fn walk_of_endless_chain_is_malformed_not_a_hang() {
        // Destination-options headers that each name another one.
        let payload = [60u8, 0, 0, 0, 0, 0, 0, 0].repeat(64);
        assert!(matches!(
            walk_ext_headers(IpProtocol::IPV6_DST_OPTS, &payload),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn walk_without_ext_headers_is_empty() {
        let chain = walk_ext_headers(IpProtocol::UDP, &[]).unwrap();
        assert_eq!(
            (chain.protocol, chain.offset, chain.count, chain.fragment),
            (IpProtocol::UDP, 0, 0, None)
        );
    }

    #[test]
    fn short_buffer_is_truncated() {
        assert_eq!(
            Packet::new_checked(&V6_HBH_FRAG_TCP[..75]).err(),
            Some(Error::Truncated)
        );
        assert!(Packet::new_quoted(&V6_HBH_FRAG_TCP[..40]).is_ok());
        assert_eq!(
            Packet::new_quoted(&V6_HBH_FRAG_TCP[..39]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn repr_emit_then_parse_round_trips() {
        let repr = Repr {
            src_addr: "fe80::1".parse().unwrap(),
            dst_addr: "ff02::1".parse().unwrap(),
            next_header: IpProtocol::ICMPV6,
            payload_len: 0,
            hop_limit: 255,
            traffic_class: 0xb8,
        };
        let mut buf = [0xffu8; HEADER_LEN];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn repr_emits_the_real_fixed_header_byte_for_byte() {
        let p = Packet::new_checked(&V6_HBH_FRAG_TCP[..]).unwrap();
        let repr = Repr::parse(&p).unwrap();
        let mut buf = [0xa5u8; HEADER_LEN];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..], V6_HBH_FRAG_TCP[..HEADER_LEN]);
    }
}

//! IPv4 headers (RFC 791), options and fragments included.
//!
//! [`Packet::new_checked`] makes sure that the buffer holds the fixed header, that the IHL is at
//! least 5 and its header (options included) is present, and that the total length covers
//! the header and fits in the buffer. The buffer may be longer (Ethernet padding): the payload
//! ends where the total length says. [`Packet::new_quoted`] is the looser check for a header
//! quoted in an ICMP error, where only the start of the original payload follows.
//!
//! After either check no accessor panics, whatever the setters later write: the options and
//! the payload are cut to the buffer. The version is not checked here; callers that care
//! compare [`Packet::version`] with 4.

use std::net::Ipv4Addr;

use super::checksum;
use super::{clamp, clamp_mut, get16, put16, Error, Field, Fragment, IpProtocol};

mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of the header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Longest header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 packet.
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

    /// Wrap an IPv4 header quoted in an ICMP error: the whole header must be present, but the
    /// payload its total length announces may be cut short.
    #[inline]
    pub fn new_quoted(buffer: T) -> Result<Packet<T>, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_header_len()?;
        Ok(p)
    }

    fn check_header_len(&self) -> Result<usize, Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::Malformed("IPv4 IHL below 5"));
        }
        if len < header_len {
            return Err(Error::Truncated);
        }
        if usize::from(self.total_len()) < header_len {
            return Err(Error::Malformed("IPv4 total length below header length"));
        }
        Ok(len)
    }

    /// Check the header and total length against the buffer (see the module docs).
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.check_header_len()?;
        if len < usize::from(self.total_len()) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes, options included (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification (the fragment id).
    #[inline]
    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (get16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// A fragment: more fragments follow, or this one does not start at offset 0.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// The first fragment of a fragmented datagram (offset 0, more to come): the only one
    /// that carries the L4 header.
    #[inline]
    pub fn is_first_fragment(&self) -> bool {
        self.more_frags() && self.frag_offset() == 0
    }

    /// The fragment facts when this is a fragment.
    #[inline]
    pub fn fragment(&self) -> Option<Fragment> {
        if self.is_fragment() {
            Some(Fragment {
                ident: u32::from(self.ident()),
                offset: self.frag_offset(),
                more: self.more_frags(),
            })
        } else {
            None
        }
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        addr(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// The options, between the fixed header and the payload.
    #[inline]
    pub fn options(&self) -> &[u8] {
        clamp(self.buffer.as_ref(), HEADER_LEN, self.header_len())
    }

    /// The payload: from the end of the header to the end the total length gives.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        clamp(
            self.buffer.as_ref(),
            self.header_len(),
            usize::from(self.total_len()),
        )
    }

    /// Whether the header checksum is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let header = clamp(self.buffer.as_ref(), 0, self.header_len());
        checksum::sum(header) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (value << 4);
    }

    /// Set the header length in bytes (rounded down to a multiple of 4).
    #[inline]
    pub fn set_header_len(&mut self, value: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((value / 4) as u8 & 0x0f);
    }

    #[inline]
    pub fn set_dscp(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (value << 2);
    }

    #[inline]
    pub fn set_ecn(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (value & 0x03);
    }

    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, value)
    }

    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::IDENT, value)
    }

    fn set_flg_off(&mut self, keep: u16, set: u16) {
        let raw = get16(self.buffer.as_ref(), field::FLG_OFF);
        put16(self.buffer.as_mut(), field::FLG_OFF, (raw & keep) | set)
    }

    #[inline]
    pub fn set_dont_frag(&mut self, value: bool) {
        self.set_flg_off(!FLAG_DF, if value { FLAG_DF } else { 0 })
    }

    #[inline]
    pub fn set_more_frags(&mut self, value: bool) {
        self.set_flg_off(!FLAG_MF, if value { FLAG_MF } else { 0 })
    }

    /// Set the fragment offset in bytes (a multiple of 8; the low bits are dropped).
    #[inline]
    pub fn set_frag_offset(&mut self, value: u16) {
        self.set_flg_off(!OFFSET_MASK, value >> 3)
    }

    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value
    }

    #[inline]
    pub fn set_protocol(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.0
    }

    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value)
    }

    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets())
    }

    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets())
    }

    /// Compute and store the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let sum = checksum::sum(clamp(self.buffer.as_ref(), 0, header_len));
        self.set_checksum(checksum::finish(sum))
    }

    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        clamp_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        clamp_mut(self.buffer.as_mut(), start, end)
    }
}

#[inline]
fn addr(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// The owned form of an option-less, unfragmented IPv4 header, for building packets (ICMP
/// errors, tunnels' outer headers, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: IpProtocol,
    pub payload_len: usize,
    pub ttl: u8,
    /// DSCP and ECN, as the one byte of the header.
    pub tos: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Repr {
    /// Read a checked, unfragmented version-4 packet with a valid header checksum.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Malformed("IP version is not 4"));
        }
        if !packet.verify_checksum() {
            return Err(Error::Malformed("IPv4 header checksum"));
        }
        if packet.is_fragment() {
            return Err(Error::Malformed("IPv4 fragment"));
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.payload().len(),
            ttl: packet.ttl(),
            tos: packet.dscp() << 2 | packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write a 20-byte header with its checksum; the buffer must hold at least
    /// [`HEADER_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        self.emit_offloaded(packet);
        packet.fill_checksum();
    }

    /// [`Repr::emit`] with the checksum left zero, for a NIC that fills it at transmit.
    pub fn emit_offloaded<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp(self.tos >> 2);
        packet.set_ecn(self.tos);
        packet.set_total_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_ident(self.ident);
        packet.set_flg_off(0, if self.dont_frag { FLAG_DF } else { 0 });
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_checksum(0);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real UDP/IPv4 header (192.168.0.1 -> 192.168.0.199, checksum 0xb861), the worked
    /// example often used for the header checksum, followed by its 95 payload bytes.
    fn udp_packet() -> Vec<u8> {
        let mut p = vec![
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        p.resize(0x73, 0xab);
        p
    }

    #[test]
    fn header_fields_read_from_real_packet() {
        let bytes = udp_packet();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.dscp(), p.ecn()), (0, 0));
        assert_eq!(p.total_len(), 115);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment() && !p.is_first_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::UDP);
        assert_eq!(p.checksum(), 0xb861);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 95);
    }

    #[test]
    fn fill_checksum_reproduces_real_checksum() {
        let mut bytes = udp_packet();
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_checksum(0x1234);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert_eq!(p.checksum(), 0xb861);
    }

    #[test]
    fn payload_stops_at_total_length_not_at_ethernet_padding() {
        let mut bytes = udp_packet();
        bytes.extend_from_slice(&[0; 6]);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.payload().len(), 95);
    }

    #[test]
    fn options_sit_between_header_and_payload() {
        // IHL 6 with a router-alert option (94 04 00 00), total length 28.
        let mut bytes = vec![
            0x46, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 10, 0, 0, 1,
            224, 0, 0, 22, 0x94, 0x04, 0x00, 0x00, 1, 2, 3, 4,
        ];
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn fragment_flags_and_offset_decode() {
        let mut bytes = udp_packet();
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_dont_frag(false);
        p.set_more_frags(true);
        assert!(p.is_fragment() && p.is_first_fragment());
        p.set_frag_offset(1480);
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment() && !p.is_first_fragment() && p.more_frags());
        p.set_more_frags(false);
        assert!(p.is_fragment() && !p.is_first_fragment());
        assert_eq!(&bytes[6..8], &[0x00, 0xb9]);
    }

    #[test]
    fn bad_lengths_are_refused() {
        let bytes = udp_packet();
        // Buffer shorter than the total length.
        assert_eq!(
            Packet::new_checked(&bytes[..100]).err(),
            Some(Error::Truncated)
        );
        // ...but fine for a quoted header.
        assert!(Packet::new_quoted(&bytes[..28]).is_ok());
        // IHL below 5.
        let mut b = bytes.clone();
        b[0] = 0x44;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Malformed(_))
        ));
        // Total length below the header length.
        let mut b = bytes.clone();
        b[2..4].copy_from_slice(&[0, 19]);
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Malformed(_))
        ));
        // IHL larger than the buffer.
        let mut b = bytes[..24].to_vec();
        b[0] = 0x4f;
        assert_eq!(Packet::new_quoted(&b[..]).err(), Some(Error::Truncated));
    }

    #[test]
    fn repr_emit_then_parse_round_trips() {
        let repr = Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::TCP,
            payload_len: 4,
            ttl: 64,
            tos: 0xb9,
            ident: 0x1234,
            dont_frag: false,
        };
        let mut buf = [0u8; 24];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn repr_emits_the_real_header_byte_for_byte() {
        // The header of `udp_packet`: DF, id 0, TTL 64, UDP, checksum 0xb861.
        let repr = Repr {
            src_addr: Ipv4Addr::new(192, 168, 0, 1),
            dst_addr: Ipv4Addr::new(192, 168, 0, 199),
            protocol: IpProtocol::UDP,
            payload_len: 0x73 - 20,
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_frag: true,
        };
        let mut buf = [0xa5u8; HEADER_LEN];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..], udp_packet()[..HEADER_LEN]);
        // Offloaded: the same header with the checksum left for the NIC.
        repr.emit_offloaded(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf[10..12], [0, 0]);
        assert_eq!(buf[..10], udp_packet()[..10]);
        assert_eq!(buf[12..], udp_packet()[12..HEADER_LEN]);
    }
}

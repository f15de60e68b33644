//! UDP datagram headers (RFC 768): ports, length, checksum, payload.
//!
//! [`Packet::new_checked`] makes sure the 8-byte header is there, that the length field is at
//! least 8 and that the datagram it announces fits in the buffer (a longer buffer is fine: the
//! payload ends where the length says). After that no accessor panics.
//!
//! Checksums follow UDP's rules: a computed zero is stored as `0xffff`; a stored zero means
//! "no checksum", which IPv4 allows ([`Packet::verify_checksum_v4`] accepts it) and IPv6 does
//! not ([`Packet::verify_checksum_v6`] refuses it). Rewrites keep a zero with
//! [`checksum::udp_update16`] and friends.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{clamp, clamp_mut, get16, put16, Error, Field, IpProtocol};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A zero-copy view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check the header and the length field against the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let udp_len = usize::from(self.len());
        if udp_len < HEADER_LEN {
            return Err(Error::Malformed("UDP length below 8"));
        }
        if len < udp_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field: header plus payload.
    #[inline]
    pub fn len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the length field announces no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        clamp(self.buffer.as_ref(), HEADER_LEN, usize::from(self.len()))
    }

    /// The datagram (header and payload) as the length field bounds it.
    #[inline]
    fn datagram(&self) -> &[u8] {
        clamp(self.buffer.as_ref(), 0, usize::from(self.len()))
    }

    fn sum_with(&self, pseudo: u16) -> u16 {
        checksum::add(pseudo, checksum::sum(self.datagram()))
    }

    /// Whether the checksum is right for a datagram from `src` to `dst` over IPv4; a zero
    /// checksum (none sent) passes.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::UDP, self.len());
        self.sum_with(pseudo) == 0xffff
    }

    /// Whether the checksum is right for a datagram from `src` to `dst` over IPv6; a zero
    /// checksum fails (RFC 8200 section 8.1).
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::UDP, u32::from(self.len()));
        self.sum_with(pseudo) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, value)
    }

    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, value)
    }

    #[inline]
    pub fn set_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, value)
    }

    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value)
    }

    fn fill_with(&mut self, pseudo: u16) {
        self.set_checksum(0);
        let sum = self.sum_with(pseudo);
        self.set_checksum(checksum::udp_encode(checksum::finish(sum)))
    }

    /// Compute and store the checksum for a datagram from `src` to `dst` over IPv4.
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let len = self.len();
        self.fill_with(checksum::pseudo_header_v4(src, dst, IpProtocol::UDP, len))
    }

    /// Compute and store the checksum for a datagram from `src` to `dst` over IPv6.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let len = u32::from(self.len());
        self.fill_with(checksum::pseudo_header_v6(src, dst, IpProtocol::UDP, len))
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        clamp_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }
}

/// The owned form of a UDP header, for building datagrams (a GUE tunnel's outer header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: usize,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: packet.payload().len(),
        })
    }

    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write the header with a zero checksum ("none" over IPv4; the caller fills it with
    /// `fill_checksum_*` once the payload is in place, or leaves the pseudo-header sum for a
    /// NIC that completes it). The buffer must hold at least [`HEADER_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DNS_SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
    const DNS_DST: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);

    /// The UDP part of a DNS query (192.168.1.100:53812 -> 8.8.8.8:53, A example.com).
    static DNS_QUERY: [u8; 37] = [
        0xd2, 0x34, 0x00, 0x35, 0x00, 0x25, 0x71, 0x85, // ports, length 37, checksum
        0x1a, 0x2b, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // DNS header
        0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, // name
        0x00, 0x01, 0x00, 0x01, // type A, class IN
    ];

    #[test]
    fn dns_query_fields_read() {
        let p = Packet::new_checked(&DNS_QUERY[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (53812, 53));
        assert_eq!(p.len(), 37);
        assert!(!p.is_empty());
        assert_eq!(p.payload().len(), 29);
        assert_eq!(&p.payload()[..2], &[0x1a, 0x2b]);
        assert!(p.verify_checksum_v4(DNS_SRC, DNS_DST));
    }

    #[test]
    fn fill_checksum_v4_reproduces_stored_checksum() {
        let mut bytes = DNS_QUERY;
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        let stored = p.checksum();
        p.set_checksum(0x5555);
        assert!(!p.verify_checksum_v4(DNS_SRC, DNS_DST));
        p.fill_checksum_v4(DNS_SRC, DNS_DST);
        assert_eq!(p.checksum(), stored);
    }

    #[test]
    fn zero_checksum_passes_over_ipv4_and_fails_over_ipv6() {
        let mut bytes = DNS_QUERY;
        Packet::new_unchecked(&mut bytes[..]).set_checksum(0);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert!(p.verify_checksum_v4(DNS_SRC, DNS_DST));
        let v6 = Ipv6Addr::LOCALHOST;
        assert!(!p.verify_checksum_v6(v6, v6));
    }

    #[test]
    fn computed_zero_is_stored_as_ffff() {
        // Pick a payload word (at an even offset) so that the checksum computes to zero.
        let mut bytes = DNS_QUERY.to_vec();
        bytes.extend_from_slice(&[0, 0, 0]);
        bytes[5] = 40;
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.fill_checksum_v4(DNS_SRC, DNS_DST);
        // The filler word must add the checksum back to the sum to make it 0xffff.
        let c = p.checksum();
        p.payload_mut()[30..32].copy_from_slice(&c.to_be_bytes());
        p.fill_checksum_v4(DNS_SRC, DNS_DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum_v4(DNS_SRC, DNS_DST));
    }

    #[test]
    fn payload_ends_at_length_field() {
        let mut bytes = DNS_QUERY.to_vec();
        bytes.extend_from_slice(&[0xee; 9]);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.payload().len(), 29);
        assert!(p.verify_checksum_v4(DNS_SRC, DNS_DST));
    }

    #[test]
    fn bad_lengths_are_refused() {
        assert_eq!(
            Packet::new_checked(&DNS_QUERY[..36]).err(),
            Some(Error::Truncated)
        );
        let mut bytes = DNS_QUERY;
        bytes[5] = 7;
        assert!(matches!(
            Packet::new_checked(&bytes[..]),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn repr_emits_a_real_header_byte_for_byte() {
        // A DNS query 192.168.1.10:53001 -> 8.8.8.8:53 with no checksum, 28 bytes of query.
        let want = [0xcf, 0x09, 0x00, 0x35, 0x00, 0x24, 0x00, 0x00];
        let repr = Repr {
            src_port: 53001,
            dst_port: 53,
            payload_len: 28,
        };
        let mut buf = [0xa5u8; HEADER_LEN + 28];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..HEADER_LEN], want);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
    }
}

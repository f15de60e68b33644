//! ICMPv6 (RFC 4443): type, code, checksum over the IPv6 pseudo-header; echo id, sequence
//! and data; errors (destination unreachable, packet too big with its MTU, time exceeded,
//! parameter problem) and the IPv6 packet they quote.
//!
//! [`Packet::new_checked`] makes sure the 8-byte header is there; after that no accessor
//! panics. The view covers the whole ICMPv6 message (from the upper-layer offset to the end
//! of the IPv6 payload).

use std::net::Ipv6Addr;

use super::ipv6;
use super::{checksum, get16, get32, put16, put32, Error, Field, IpProtocol, Rest};

mod field {
    use super::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const MTU: Field = 4..8;
    pub const POINTER: Field = 4..8;
    pub const DATA: Rest = 8..;
}

/// Length of the header (type, code, checksum and the 4 type-specific bytes).
pub const HEADER_LEN: usize = field::DATA.start;

/// An ICMPv6 message type.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Message(pub u8);

impl Message {
    pub const DST_UNREACHABLE: Message = Message(1);
    pub const PKT_TOO_BIG: Message = Message(2);
    pub const TIME_EXCEEDED: Message = Message(3);
    pub const PARAM_PROBLEM: Message = Message(4);
    pub const ECHO_REQUEST: Message = Message(128);
    pub const ECHO_REPLY: Message = Message(129);
    pub const ROUTER_SOLICIT: Message = Message(133);
    pub const ROUTER_ADVERT: Message = Message(134);
    pub const NEIGHBOR_SOLICIT: Message = Message(135);
    pub const NEIGHBOR_ADVERT: Message = Message(136);
    pub const REDIRECT: Message = Message(137);

    /// Error messages are types 0 to 127 (RFC 4443 section 2.1); they quote the offending
    /// packet.
    #[inline]
    pub fn is_error(self) -> bool {
        self.0 < 128
    }
}

/// Codes of [`Message::DST_UNREACHABLE`].
pub mod unreachable {
    pub const NO_ROUTE: u8 = 0;
    pub const ADMIN_PROHIBITED: u8 = 1;
    pub const BEYOND_SCOPE: u8 = 2;
    pub const ADDRESS: u8 = 3;
    pub const PORT: u8 = 4;
}

/// A zero-copy view of an ICMPv6 message.
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

    /// `Err(Truncated)` when the 8-byte header is not all there.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
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
    pub fn msg_type(&self) -> Message {
        Message(self.buffer.as_ref()[field::TYPE])
    }

    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn echo_ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        get16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// MTU of the next hop in a packet-too-big error.
    #[inline]
    pub fn mtu(&self) -> u32 {
        get32(self.buffer.as_ref(), field::MTU)
    }

    /// Byte offset of the problem in a parameter-problem error.
    #[inline]
    pub fn pointer(&self) -> u32 {
        get32(self.buffer.as_ref(), field::POINTER)
    }

    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type().is_error()
    }

    /// What follows the header: echo data, or the quoted packet of an error.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA).unwrap_or(&[])
    }

    /// The IPv6 packet an error quotes, as much of it as fits in the message. `Err` when the
    /// quote is shorter than a fixed header or the message is not an error.
    pub fn quoted_ipv6(&self) -> Result<ipv6::Packet<&[u8]>, Error> {
        if !self.is_error() {
            return Err(Error::Malformed("ICMPv6 message is not an error"));
        }
        let inner = ipv6::Packet::new_quoted(self.data())?;
        if inner.version() != 6 {
            return Err(Error::Malformed("quoted IP version is not 6"));
        }
        Ok(inner)
    }

    fn sum_with(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let data = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6, data.len() as u32);
        checksum::add(pseudo, checksum::sum(data))
    }

    /// Whether the checksum is right for a message from `src` to `dst`.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.sum_with(src, dst) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = value.0
    }

    #[inline]
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value
    }

    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value)
    }

    #[inline]
    pub fn set_echo_ident(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::ECHO_IDENT, value)
    }

    #[inline]
    pub fn set_echo_seq_no(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::ECHO_SEQNO, value)
    }

    #[inline]
    pub fn set_mtu(&mut self, value: u32) {
        put32(self.buffer.as_mut(), field::MTU, value)
    }

    #[inline]
    pub fn set_pointer(&mut self, value: u32) {
        put32(self.buffer.as_mut(), field::POINTER, value)
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(field::DATA).unwrap_or(&mut [])
    }

    /// Compute and store the checksum for a message from `src` to `dst`.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let sum = self.sum_with(src, dst);
        self.set_checksum(checksum::finish(sum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// An echo request 2001:db8::1 -> 2001:db8::2, id 0x1234, seq 1, data "ping".
    static ECHO: [u8; 12] = [
        0x80, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01, b'p', b'i', b'n', b'g',
    ];

    /// "Packet too big, MTU 1280" from 2001:db8::fe quoting a UDP/IPv6 packet
    /// 2001:db8::1:5353 -> 2001:db8::2:53 (fixed header + first 8 bytes).
    fn too_big() -> Vec<u8> {
        let mut m = vec![0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00];
        m.extend_from_slice(&[0x60, 0, 0, 0, 0x05, 0xb0, 17, 64]);
        m.extend_from_slice(&a("2001:db8::1").octets());
        m.extend_from_slice(&a("2001:db8::2").octets());
        m.extend_from_slice(&[0x14, 0xe9, 0x00, 0x35, 0x05, 0xb0, 0xab, 0xcd]);
        m
    }

    #[test]
    fn echo_fields_read_and_checksum_round_trips() {
        let mut b = ECHO;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(a("2001:db8::1"), a("2001:db8::2"));
        assert!(p.verify_checksum(a("2001:db8::1"), a("2001:db8::2")));
        assert!(!p.verify_checksum(a("2001:db8::1"), a("2001:db8::3")));
        assert_eq!(p.msg_type(), Message::ECHO_REQUEST);
        assert!(!p.is_error());
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
        assert_eq!(p.data(), b"ping");
        assert!(p.quoted_ipv6().is_err());
    }

    #[test]
    fn packet_too_big_gives_mtu_and_quoted_packet() {
        let b = too_big();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_error());
        assert_eq!(p.msg_type(), Message::PKT_TOO_BIG);
        assert_eq!(p.mtu(), 1280);
        let inner = p.quoted_ipv6().unwrap();
        assert_eq!(inner.next_header(), IpProtocol::UDP);
        assert_eq!(inner.src_addr(), a("2001:db8::1"));
        assert_eq!(inner.payload_len(), 1456);
        assert_eq!(
            inner.payload(),
            &[0x14, 0xe9, 0x00, 0x35, 0x05, 0xb0, 0xab, 0xcd]
        );
    }

    #[test]
    fn quote_shorter_than_fixed_header_is_truncated() {
        let b = too_big();
        let p = Packet::new_checked(&b[..47]).unwrap();
        assert_eq!(p.quoted_ipv6().err(), Some(Error::Truncated));
    }

    #[test]
    fn setters_write_their_fields() {
        let mut b = [0u8; 8];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(Message::PARAM_PROBLEM);
        p.set_msg_code(1);
        p.set_pointer(6);
        assert_eq!(
            (p.msg_type(), p.msg_code(), p.pointer()),
            (Message::PARAM_PROBLEM, 1, 6)
        );
        p.set_mtu(1500);
        assert_eq!(p.mtu(), 1500);
        p.set_echo_ident(7);
        p.set_echo_seq_no(8);
        assert_eq!(b, [4, 1, 0, 0, 0, 7, 0, 8]);
    }
}

//! ICMP for IPv4 (RFC 792, RFC 1191): type, code, checksum; echo id, sequence and data;
//! errors (destination unreachable with the next-hop MTU of "fragmentation needed", time
//! exceeded, parameter problem, ...) and the IPv4 header plus first 8 payload bytes they
//! quote.
//!
//! [`Packet::new_checked`] makes sure the 8-byte header is there; after that no accessor
//! panics. The view covers the whole ICMP message (the IP payload): the checksum covers it
//! all and has no pseudo-header.

use super::ipv4;
use super::{checksum, get16, put16, Error, Field, Rest};

mod field {
    use super::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const POINTER: usize = 4;
    pub const NEXT_HOP_MTU: Field = 6..8;
    pub const DATA: Rest = 8..;
}

/// Length of the header (type, code, checksum and the 4 type-specific bytes).
pub const HEADER_LEN: usize = field::DATA.start;

/// An ICMPv4 message type.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Message(pub u8);

impl Message {
    pub const ECHO_REPLY: Message = Message(0);
    pub const DST_UNREACHABLE: Message = Message(3);
    pub const SOURCE_QUENCH: Message = Message(4);
    pub const REDIRECT: Message = Message(5);
    pub const ECHO_REQUEST: Message = Message(8);
    pub const TIME_EXCEEDED: Message = Message(11);
    pub const PARAM_PROBLEM: Message = Message(12);
    pub const TIMESTAMP: Message = Message(13);
    pub const TIMESTAMP_REPLY: Message = Message(14);

    /// An error message, which quotes the offending packet's header.
    #[inline]
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Message::DST_UNREACHABLE
                | Message::SOURCE_QUENCH
                | Message::REDIRECT
                | Message::TIME_EXCEEDED
                | Message::PARAM_PROBLEM
        )
    }
}

/// Codes of [`Message::DST_UNREACHABLE`].
pub mod unreachable {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set: the next-hop MTU is in the header (RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    pub const SOURCE_ROUTE_FAILED: u8 = 5;
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Codes of [`Message::TIME_EXCEEDED`].
pub mod time_exceeded {
    pub const TTL: u8 = 0;
    pub const REASSEMBLY: u8 = 1;
}

/// A zero-copy view of an ICMPv4 message.
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

    /// Identifier of an echo request or reply.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Sequence number of an echo request or reply.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        get16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// Next-hop MTU of a "fragmentation needed" error (zero from pre-RFC 1191 routers).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        get16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// Byte offset of the problem in a parameter-problem error.
    #[inline]
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type().is_error()
    }

    /// Whether this is "destination unreachable, fragmentation needed".
    #[inline]
    pub fn is_frag_needed(&self) -> bool {
        self.msg_type() == Message::DST_UNREACHABLE && self.msg_code() == unreachable::FRAG_NEEDED
    }

    /// What follows the header: echo data, or the quoted packet of an error.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA).unwrap_or(&[])
    }

    /// The IPv4 header an error quotes, with what it kept of its payload (the first 8 bytes
    /// at least: the ports). `Err` when the quote is too short for a header or the message
    /// is not an error.
    pub fn quoted_ipv4(&self) -> Result<ipv4::Packet<&[u8]>, Error> {
        if !self.is_error() {
            return Err(Error::Malformed("ICMP message is not an error"));
        }
        let inner = ipv4::Packet::new_quoted(self.data())?;
        if inner.version() != 4 {
            return Err(Error::Malformed("quoted IP version is not 4"));
        }
        Ok(inner)
    }

    /// Whether the checksum over the message is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
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

    /// Set the next-hop MTU (and clear the unused word before it).
    #[inline]
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::ECHO_IDENT, 0);
        put16(self.buffer.as_mut(), field::NEXT_HOP_MTU, value)
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(field::DATA).unwrap_or(&mut [])
    }

    /// Compute and store the checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::sum(self.buffer.as_ref());
        self.set_checksum(checksum::finish(sum))
    }
}

/// The owned form of the ICMP errors rvs sends, quoting (the start of) the packet they are
/// about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Time exceeded (code [`time_exceeded::TTL`] in transit).
    TimeExceeded { code: u8, quote: &'a [u8] },
    /// Destination unreachable, fragmentation needed, with the next-hop MTU (RFC 1191).
    FragNeeded { mtu: u16, quote: &'a [u8] },
}

impl Repr<'_> {
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        match self {
            Repr::TimeExceeded { quote, .. } | Repr::FragNeeded { quote, .. } => {
                HEADER_LEN + quote.len()
            }
        }
    }

    /// Write the message with its checksum; the buffer must be exactly
    /// [`Repr::buffer_len`] bytes (the checksum covers all of it).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let (msg, code, mtu, quote) = match *self {
            Repr::TimeExceeded { code, quote } => (Message::TIME_EXCEEDED, code, 0, quote),
            Repr::FragNeeded { mtu, quote } => (
                Message::DST_UNREACHABLE,
                unreachable::FRAG_NEEDED,
                mtu,
                quote,
            ),
        };
        packet.set_msg_type(msg);
        packet.set_msg_code(code);
        // Unused but for the next-hop MTU of fragmentation needed.
        packet.set_next_hop_mtu(mtu);
        let n = quote.len().min(packet.data_mut().len());
        packet.data_mut()[..n].copy_from_slice(&quote[..n]);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{tcp, IpProtocol};
    use std::net::Ipv4Addr;

    /// A Windows-style echo request (id 1, seq 9) with its 32-byte alphabet payload.
    static ECHO_REQUEST: [u8; 40] = [
        0x08, 0x00, 0x4d, 0x52, 0x00, 0x01, 0x00, 0x09, b'a', b'b', b'c', b'd', b'e', b'f', b'g',
        b'h', b'i', b'j', b'k', b'l', b'm', b'n', b'o', b'p', b'q', b'r', b's', b't', b'u', b'v',
        b'w', b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'i',
    ];

    /// "Fragmentation needed, next-hop MTU 1400" from router 10.1.1.1, quoting a 1500-byte
    /// TCP/IPv4 packet 192.0.2.10:443 -> 198.51.100.7:51000 (header + first 8 bytes).
    static FRAG_NEEDED: [u8; 36] = [
        0x03, 0x04, 0xc5, 0xe3, 0x00, 0x00, 0x05, 0x78, // type 3 code 4, MTU 1400
        0x45, 0x00, 0x05, 0xdc, 0xbe, 0xef, 0x40, 0x00, 0x40, 0x06, 0x89, 0xe7, // IPv4
        0xc0, 0x00, 0x02, 0x0a, 0xc6, 0x33, 0x64, 0x07, // 192.0.2.10 -> 198.51.100.7
        0x01, 0xbb, 0xc7, 0x38, 0x12, 0x34, 0x56, 0x78, // ports 443 -> 51000, seq
    ];

    #[test]
    fn echo_request_fields_read() {
        let p = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(p.msg_type(), Message::ECHO_REQUEST);
        assert_eq!(p.msg_code(), 0);
        assert!(!p.is_error());
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (1, 9));
        assert_eq!(p.data(), b"abcdefghijklmnopqrstuvwabcdefghi");
        assert!(p.verify_checksum());
        assert!(p.quoted_ipv4().is_err());
    }

    #[test]
    fn fill_checksum_reproduces_stored_checksum() {
        let mut b = ECHO_REQUEST;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        let stored = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), stored);
        p.set_echo_seq_no(10);
        assert!(!p.verify_checksum());
    }

    #[test]
    fn frag_needed_gives_mtu_and_quoted_tcp_header() {
        let p = Packet::new_checked(&FRAG_NEEDED[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(p.is_error() && p.is_frag_needed());
        assert_eq!(p.next_hop_mtu(), 1400);
        let inner = p.quoted_ipv4().unwrap();
        assert!(inner.verify_checksum());
        assert_eq!(inner.total_len(), 1500);
        assert_eq!(inner.protocol(), IpProtocol::TCP);
        assert_eq!(inner.src_addr(), Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(inner.dst_addr(), Ipv4Addr::new(198, 51, 100, 7));
        let l4 = inner.payload();
        assert_eq!(l4.len(), 8);
        let tcp = tcp::Packet::new_unchecked(l4);
        assert_eq!((tcp.src_port(), tcp.dst_port()), (443, 51000));
        assert_eq!(tcp.seq_number(), 0x12345678);
    }

    #[test]
    fn set_next_hop_mtu_writes_rfc1191_layout() {
        let mut b = [0xffu8; 8];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(Message::DST_UNREACHABLE);
        p.set_msg_code(unreachable::FRAG_NEEDED);
        p.set_next_hop_mtu(1280);
        assert_eq!(&b[4..8], &[0, 0, 0x05, 0x00]);
    }

    #[test]
    fn quote_shorter_than_ip_header_is_truncated() {
        let p = Packet::new_checked(&FRAG_NEEDED[..27]).unwrap();
        assert_eq!(p.quoted_ipv4().err(), Some(Error::Truncated));
        assert_eq!(
            Packet::new_checked(&FRAG_NEEDED[..7]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn error_repr_emits_the_real_frag_needed() {
        let repr = Repr::FragNeeded {
            mtu: 1400,
            quote: &FRAG_NEEDED[8..],
        };
        let mut b = [0xa5u8; 36];
        repr.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, FRAG_NEEDED);
        let te = Repr::TimeExceeded {
            code: time_exceeded::TTL,
            quote: &FRAG_NEEDED[8..],
        };
        te.emit(&mut Packet::new_unchecked(&mut b[..]));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (Message::TIME_EXCEEDED, 0));
        assert_eq!(b[4..8], [0; 4]);
        assert!(p.verify_checksum());
        assert_eq!(p.data(), &FRAG_NEEDED[8..]);
    }
}

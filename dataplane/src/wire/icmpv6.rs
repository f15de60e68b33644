//! ICMPv6 (RFC 4443): type, code, checksum over the IPv6 pseudo-header; echo id, sequence
//! and data; errors (destination unreachable, packet too big with its MTU, time exceeded,
//! parameter problem) and the IPv6 packet they quote.
//!
//! [`Packet::new_checked`] makes sure the 8-byte header is there; after that no accessor
//! panics. The view covers the whole ICMPv6 message (from the upper-layer offset to the end
//! of the IPv6 payload).

use std::net::Ipv6Addr;

use super::ethernet::MacAddr;
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
    // Neighbor discovery (RFC 4861): the NA's flags, the target, the options.
    pub const ND_FLAGS: usize = 4;
    pub const ND_RESERVED: Field = 4..8;
    pub const ND_TARGET: Field = 8..24;
    pub const ND_OPTIONS: Rest = 24..;
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

/// The owned form of the ICMPv6 errors rvs sends, quoting (the start of) the packet they are
/// about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Time exceeded (code 0: hop limit exceeded in transit).
    TimeExceeded { code: u8, quote: &'a [u8] },
    /// Packet too big, with the MTU of the next hop.
    PacketTooBig { mtu: u32, quote: &'a [u8] },
}

impl Repr<'_> {
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        match self {
            Repr::TimeExceeded { quote, .. } | Repr::PacketTooBig { quote, .. } => {
                HEADER_LEN + quote.len()
            }
        }
    }

    /// Write the message from `src` to `dst` with its checksum; the buffer must be exactly
    /// [`Repr::buffer_len`] bytes (the checksum covers all of it).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        packet: &mut Packet<T>,
    ) {
        let (msg, code, rest, quote) = match *self {
            Repr::TimeExceeded { code, quote } => (Message::TIME_EXCEEDED, code, 0, quote),
            Repr::PacketTooBig { mtu, quote } => (Message::PKT_TOO_BIG, 0, mtu, quote),
        };
        packet.set_msg_type(msg);
        packet.set_msg_code(code);
        packet.set_mtu(rest);
        let n = quote.len().min(packet.data_mut().len());
        packet.data_mut()[..n].copy_from_slice(&quote[..n]);
        packet.fill_checksum(src, dst);
    }
}

/// Flags of a neighbor advertisement (RFC 4861 section 4.4).
pub mod nd_flags {
    pub const ROUTER: u8 = 0x80;
    pub const SOLICITED: u8 = 0x40;
    pub const OVERRIDE: u8 = 0x20;
}

/// Option types of neighbor discovery that carry a link-layer address.
const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;

/// The owned form of the neighbor discovery messages rvs sends and learns from (RFC 4861):
/// a solicitation with the source link-layer address option, an advertisement with the
/// target link-layer address option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscRepr {
    NeighborSolicit {
        target: Ipv6Addr,
        lladdr: Option<MacAddr>,
    },
    NeighborAdvert {
        /// [`nd_flags`].
        flags: u8,
        target: Ipv6Addr,
        lladdr: Option<MacAddr>,
    },
}

impl NdiscRepr {
    /// Read a solicitation or advertisement: the target and the first link-layer address
    /// option of the message's kind (source for NS, target for NA); other options skipped.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<NdiscRepr, Error> {
        let b = packet.buffer.as_ref();
        let target: [u8; 16] = b
            .get(field::ND_TARGET)
            .and_then(|t| t.try_into().ok())
            .ok_or(Error::Truncated)?;
        let target = Ipv6Addr::from(target);
        let advert = match packet.msg_type() {
            Message::NEIGHBOR_SOLICIT => false,
            Message::NEIGHBOR_ADVERT => true,
            _ => {
                return Err(Error::Malformed(
                    "not a neighbor solicitation or advertisement",
                ))
            }
        };
        let want = if advert {
            OPT_TARGET_LLADDR
        } else {
            OPT_SOURCE_LLADDR
        };
        let mut lladdr = None;
        let mut opts = b.get(field::ND_OPTIONS).unwrap_or(&[]);
        while opts.len() >= 8 {
            let len = usize::from(opts[1]) * 8;
            if len == 0 || len > opts.len() {
                return Err(Error::Malformed("neighbor discovery option length"));
            }
            if opts[0] == want && lladdr.is_none() {
                lladdr = <[u8; 6]>::try_from(&opts[2..8]).ok().map(MacAddr);
            }
            opts = &opts[len..];
        }
        Ok(if advert {
            NdiscRepr::NeighborAdvert {
                flags: b[field::ND_FLAGS],
                target,
                lladdr,
            }
        } else {
            NdiscRepr::NeighborSolicit { target, lladdr }
        })
    }

    #[inline]
    pub const fn buffer_len(&self) -> usize {
        match self {
            NdiscRepr::NeighborSolicit { lladdr, .. }
            | NdiscRepr::NeighborAdvert { lladdr, .. } => {
                field::ND_OPTIONS.start + if lladdr.is_some() { 8 } else { 0 }
            }
        }
    }

    /// Write the message from `src` to `dst` with its checksum; the buffer must be exactly
    /// [`NdiscRepr::buffer_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        packet: &mut Packet<T>,
    ) {
        let (msg, flags, target, lladdr, opt) = match *self {
            NdiscRepr::NeighborSolicit { target, lladdr } => (
                Message::NEIGHBOR_SOLICIT,
                0,
                target,
                lladdr,
                OPT_SOURCE_LLADDR,
            ),
            NdiscRepr::NeighborAdvert {
                flags,
                target,
                lladdr,
            } => (
                Message::NEIGHBOR_ADVERT,
                flags,
                target,
                lladdr,
                OPT_TARGET_LLADDR,
            ),
        };
        packet.set_msg_type(msg);
        packet.set_msg_code(0);
        let b = packet.buffer.as_mut();
        put32(b, field::ND_RESERVED, 0);
        b[field::ND_FLAGS] = flags;
        b[field::ND_TARGET].copy_from_slice(&target.octets());
        if let Some(mac) = lladdr {
            let o = &mut b[field::ND_OPTIONS][..8];
            o[0] = opt;
            o[1] = 1;
            o[2..8].copy_from_slice(&mac.0);
        }
        packet.fill_checksum(src, dst);
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

    #[test]
    fn error_repr_emits_real_bytes() {
        // Time exceeded from 2001:db8::ff about `too_big`'s quoted UDP packet.
        let quote = &too_big()[8..];
        let repr = Repr::TimeExceeded { code: 0, quote };
        let mut b = vec![0xa5u8; repr.buffer_len()];
        repr.emit(
            a("2001:db8::ff"),
            a("2001:db8::1"),
            &mut Packet::new_unchecked(&mut b[..]),
        );
        assert_eq!(b[..8], [0x03, 0x00, 0x07, 0x1a, 0, 0, 0, 0]);
        assert_eq!(&b[8..], quote);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(a("2001:db8::ff"), a("2001:db8::1")));
        // Packet too big carries the MTU where time exceeded has zeros.
        let repr = Repr::PacketTooBig { mtu: 1280, quote };
        repr.emit(
            a("2001:db8::2"),
            a("2001:db8::1"),
            &mut Packet::new_unchecked(&mut b[..]),
        );
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.msg_type(), p.mtu()), (Message::PKT_TOO_BIG, 1280));
        assert_eq!(p.quoted_ipv6().unwrap().src_addr(), a("2001:db8::1"));
    }

    /// A neighbor advertisement fe80::1 -> fe80::2 (solicited, override) for fe80::1 at
    /// 00:11:22:33:44:55.
    static NA: [u8; 32] = [
        0x88, 0x00, 0xb3, 0x83, 0x60, 0x00, 0x00, 0x00, // NA, checksum, S|O
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // target fe80::1
        0x02, 0x01, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // target link-layer address
    ];

    #[test]
    fn ndisc_repr_emits_and_parses_real_bytes() {
        let na = NdiscRepr::NeighborAdvert {
            flags: nd_flags::SOLICITED | nd_flags::OVERRIDE,
            target: a("fe80::1"),
            lladdr: Some(MacAddr([0x00, 0x11, 0x22, 0x33, 0x44, 0x55])),
        };
        let mut b = [0xa5u8; 32];
        na.emit(
            a("fe80::1"),
            a("fe80::2"),
            &mut Packet::new_unchecked(&mut b[..]),
        );
        assert_eq!(b, NA);
        assert_eq!(
            NdiscRepr::parse(&Packet::new_checked(&NA[..]).unwrap()),
            Ok(na)
        );
        // The solicitation for fe80::2 to its solicited-node group.
        let ns = NdiscRepr::NeighborSolicit {
            target: a("fe80::2"),
            lladdr: Some(MacAddr([0x00, 0x11, 0x22, 0x33, 0x44, 0x55])),
        };
        ns.emit(
            a("fe80::1"),
            a("ff02::1:ff00:2"),
            &mut Packet::new_unchecked(&mut b[..]),
        );
        assert_eq!(b[..4], [0x87, 0x00, 0x15, 0xff]);
        assert_eq!(b[4..8], [0; 4]);
        assert_eq!(b[24..26], [0x01, 0x01]);
        assert_eq!(
            NdiscRepr::parse(&Packet::new_checked(&b[..]).unwrap()),
            Ok(ns)
        );
        // An option of length zero is malformed.
        let mut bad = NA;
        bad[25] = 0;
        assert!(NdiscRepr::parse(&Packet::new_checked(&bad[..]).unwrap()).is_err());
    }
}

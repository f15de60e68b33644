//! ARP for IPv4 over Ethernet (RFC 826), the only kind a load balancer answers.
//!
//! [`Packet`] reads the fixed 28-byte Ethernet/IPv4 layout; [`Packet::new_checked`] makes sure
//! those bytes are present, after which no accessor panics. Whether the packet really is
//! Ethernet/IPv4 ARP (hardware type 1, protocol type 0x0800, lengths 6 and 4) is checked by
//! [`Repr::parse`], the form used to answer requests and to send them.

use std::net::Ipv4Addr;

use super::ethernet::MacAddr;
use super::{get16, put16, Error, EtherType, Field};

mod field {
    use super::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;

/// ARP hardware type for Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// An ARP operation code.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Operation(pub u16);

impl Operation {
    pub const REQUEST: Operation = Operation(1);
    pub const REPLY: Operation = Operation(2);
}

/// A zero-copy view of an Ethernet/IPv4 ARP packet.
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

    /// `Err(Truncated)` when fewer than 28 bytes are present.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < PACKET_LEN {
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
    pub fn hardware_type(&self) -> u16 {
        get16(self.buffer.as_ref(), field::HTYPE)
    }

    #[inline]
    pub fn protocol_type(&self) -> EtherType {
        EtherType(get16(self.buffer.as_ref(), field::PTYPE))
    }

    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    #[inline]
    pub fn operation(&self) -> Operation {
        Operation(get16(self.buffer.as_ref(), field::OPER))
    }

    /// Sender hardware address.
    #[inline]
    pub fn sha(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::SHA];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Sender protocol address.
    #[inline]
    pub fn spa(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SPA];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Target hardware address (zero in a request).
    #[inline]
    pub fn tha(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::THA];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Target protocol address.
    #[inline]
    pub fn tpa(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::TPA];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_hardware_type(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::HTYPE, value)
    }

    #[inline]
    pub fn set_protocol_type(&mut self, value: EtherType) {
        put16(self.buffer.as_mut(), field::PTYPE, value.0)
    }

    #[inline]
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value
    }

    #[inline]
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value
    }

    #[inline]
    pub fn set_operation(&mut self, value: Operation) {
        put16(self.buffer.as_mut(), field::OPER, value.0)
    }

    #[inline]
    pub fn set_sha(&mut self, value: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&value.0)
    }

    #[inline]
    pub fn set_spa(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&value.octets())
    }

    #[inline]
    pub fn set_tha(&mut self, value: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&value.0)
    }

    #[inline]
    pub fn set_tpa(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&value.octets())
    }
}

/// The owned form of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub operation: Operation,
    pub source_hardware_addr: MacAddr,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: MacAddr,
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// Validate `packet` as Ethernet/IPv4 ARP.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != EtherType::IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Malformed("ARP is not Ethernet/IPv4"));
        }
        Ok(Repr {
            operation: packet.operation(),
            source_hardware_addr: packet.sha(),
            source_protocol_addr: packet.spa(),
            target_hardware_addr: packet.tha(),
            target_protocol_addr: packet.tpa(),
        })
    }

    /// A request asking who has `target`, from `source_mac` / `source_ip`.
    pub fn request(source_mac: MacAddr, source_ip: Ipv4Addr, target: Ipv4Addr) -> Repr {
        Repr {
            operation: Operation::REQUEST,
            source_hardware_addr: source_mac,
            source_protocol_addr: source_ip,
            target_hardware_addr: MacAddr::ZERO,
            target_protocol_addr: target,
        }
    }

    /// The reply to this request saying that its target address is at `our_mac`; `None`
    /// when `self` is not a request.
    pub fn reply(&self, our_mac: MacAddr) -> Option<Repr> {
        if self.operation != Operation::REQUEST {
            return None;
        }
        Some(Repr {
            operation: Operation::REPLY,
            source_hardware_addr: our_mac,
            source_protocol_addr: self.target_protocol_addr,
            target_hardware_addr: self.source_hardware_addr,
            target_protocol_addr: self.source_protocol_addr,
        })
    }

    #[inline]
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Write the packet into `packet`, whose buffer must hold [`PACKET_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(EtherType::IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_sha(self.source_hardware_addr);
        packet.set_spa(self.source_protocol_addr);
        packet.set_tha(self.target_hardware_addr);
        packet.set_tpa(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ARP request (after its Ethernet header): who has 24.166.173.159? tell
    /// 24.166.172.1 at 00:07:0d:af:f4:54.
    static REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
        0x00, 0x07, 0x0d, 0xaf, 0xf4, 0x54, 0x18, 0xa6, 0xac, 0x01, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0xa6, 0xad, 0x9f, // target
    ];

    #[test]
    fn request_fields_read_from_real_packet() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), HTYPE_ETHERNET);
        assert_eq!(p.protocol_type(), EtherType::IPV4);
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.operation(), Operation::REQUEST);
        assert_eq!(p.sha(), MacAddr([0x00, 0x07, 0x0d, 0xaf, 0xf4, 0x54]));
        assert_eq!(p.spa(), Ipv4Addr::new(24, 166, 172, 1));
        assert_eq!(p.tha(), MacAddr::ZERO);
        assert_eq!(p.tpa(), Ipv4Addr::new(24, 166, 173, 159));
    }

    #[test]
    fn request_built_by_repr_matches_real_bytes() {
        let repr = Repr::request(
            MacAddr([0x00, 0x07, 0x0d, 0xaf, 0xf4, 0x54]),
            Ipv4Addr::new(24, 166, 172, 1),
            Ipv4Addr::new(24, 166, 173, 159),
        );
        let mut buf = [0xeeu8; PACKET_LEN];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn reply_swaps_sender_and_target_and_names_our_mac() {
        let req = Repr::parse(&Packet::new_checked(&REQUEST[..]).unwrap()).unwrap();
        let ours = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
        let rep = req.reply(ours).unwrap();
        assert_eq!(rep.operation, Operation::REPLY);
        assert_eq!(rep.source_hardware_addr, ours);
        assert_eq!(rep.source_protocol_addr, Ipv4Addr::new(24, 166, 173, 159));
        assert_eq!(rep.target_hardware_addr, req.source_hardware_addr);
        assert_eq!(rep.target_protocol_addr, Ipv4Addr::new(24, 166, 172, 1));
        assert_eq!(rep.reply(ours), None);
    }

    #[test]
    fn non_ethernet_ipv4_arp_is_malformed() {
        let mut buf = REQUEST;
        buf[5] = 16; // IPv6-sized protocol addresses
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(matches!(Repr::parse(&p), Err(Error::Malformed(_))));
    }

    #[test]
    fn short_arp_is_truncated() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).err(),
            Some(Error::Truncated)
        );
    }
}

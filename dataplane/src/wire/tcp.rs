//! TCP segment headers (RFC 9293): ports, sequence numbers, data offset with options, flags,
//! window, checksum over the IPv4 or IPv6 pseudo-header, payload.
//!
//! The view covers exactly one segment: the IP payload (for IPv6, from the upper-layer
//! offset). [`Packet::new_checked`] makes sure the 20-byte fixed header is there, that the data
//! offset is at least 5 and that the options it announces are in the buffer; after that no
//! accessor panics, whatever the setters later write (options and payload are cut to the
//! buffer).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{clamp, clamp_mut, get16, get32, put16, put32, Error, Field, IpProtocol};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// Length of the header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// The flags byte (byte 13): CWR ECE URG ACK PSH RST SYN FIN.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIN: Flags = Flags(0x01);
    pub const SYN: Flags = Flags(0x02);
    pub const RST: Flags = Flags(0x04);
    pub const PSH: Flags = Flags(0x08);
    pub const ACK: Flags = Flags(0x10);
    pub const URG: Flags = Flags(0x20);
    pub const ECE: Flags = Flags(0x40);
    pub const CWR: Flags = Flags(0x80);

    /// Whether every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    #[inline]
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl core::fmt::Debug for Flags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// A zero-copy view of a TCP segment.
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

    /// Check the fixed header and the data offset against the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::Malformed("TCP data offset below 5"));
        }
        if len < header_len {
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

    #[inline]
    pub fn seq_number(&self) -> u32 {
        get32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    #[inline]
    pub fn ack_number(&self) -> u32 {
        get32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Header length in bytes, options included (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    #[inline]
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    #[inline]
    pub fn fin(&self) -> bool {
        self.flags().contains(Flags::FIN)
    }

    #[inline]
    pub fn syn(&self) -> bool {
        self.flags().contains(Flags::SYN)
    }

    #[inline]
    pub fn rst(&self) -> bool {
        self.flags().contains(Flags::RST)
    }

    #[inline]
    pub fn psh(&self) -> bool {
        self.flags().contains(Flags::PSH)
    }

    #[inline]
    pub fn ack(&self) -> bool {
        self.flags().contains(Flags::ACK)
    }

    #[inline]
    pub fn urg(&self) -> bool {
        self.flags().contains(Flags::URG)
    }

    #[inline]
    pub fn ece(&self) -> bool {
        self.flags().contains(Flags::ECE)
    }

    #[inline]
    pub fn cwr(&self) -> bool {
        self.flags().contains(Flags::CWR)
    }

    #[inline]
    pub fn window_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn urgent_at(&self) -> u16 {
        get16(self.buffer.as_ref(), field::URGENT)
    }

    /// The options, between the fixed header and the data offset.
    #[inline]
    pub fn options(&self) -> &[u8] {
        clamp(self.buffer.as_ref(), HEADER_LEN, self.header_len())
    }

    /// The data after the header, to the end of the buffer.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        clamp(self.buffer.as_ref(), self.header_len(), usize::MAX)
    }

    /// Sum of the whole segment (checksum field included) and `pseudo`.
    #[inline]
    fn sum_with(&self, pseudo: u16) -> u16 {
        checksum::add(pseudo, checksum::sum(self.buffer.as_ref()))
    }

    /// Whether the checksum is right for a segment from `src` to `dst` over IPv4.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let len = self.buffer.as_ref().len() as u16;
        self.sum_with(checksum::pseudo_header_v4(src, dst, IpProtocol::TCP, len)) == 0xffff
    }

    /// Whether the checksum is right for a segment from `src` to `dst` over IPv6.
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let len = self.buffer.as_ref().len() as u32;
        self.sum_with(checksum::pseudo_header_v6(src, dst, IpProtocol::TCP, len)) == 0xffff
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
    pub fn set_seq_number(&mut self, value: u32) {
        put32(self.buffer.as_mut(), field::SEQ_NUM, value)
    }

    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        put32(self.buffer.as_mut(), field::ACK_NUM, value)
    }

    /// Set the header length in bytes (rounded down to a multiple of 4); keeps the low
    /// nibble of byte 12 (reserved bits, ECN nonce).
    #[inline]
    pub fn set_header_len(&mut self, value: usize) {
        let b = &mut self.buffer.as_mut()[field::DATA_OFF];
        *b = (*b & 0x0f) | (((value / 4) as u8) << 4);
    }

    #[inline]
    pub fn set_flags(&mut self, value: Flags) {
        self.buffer.as_mut()[field::FLAGS] = value.0
    }

    #[inline]
    pub fn set_window_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::WIN_SIZE, value)
    }

    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value)
    }

    #[inline]
    pub fn set_urgent_at(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::URGENT, value)
    }

    fn fill_with(&mut self, pseudo: u16) {
        self.set_checksum(0);
        let sum = self.sum_with(pseudo);
        self.set_checksum(checksum::finish(sum))
    }

    /// Compute and store the checksum for a segment from `src` to `dst` over IPv4.
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let len = self.buffer.as_ref().len() as u16;
        self.fill_with(checksum::pseudo_header_v4(src, dst, IpProtocol::TCP, len))
    }

    /// Compute and store the checksum for a segment from `src` to `dst` over IPv6.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let len = self.buffer.as_ref().len() as u32;
        self.fill_with(checksum::pseudo_header_v6(src, dst, IpProtocol::TCP, len))
    }

    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        clamp_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        clamp_mut(self.buffer.as_mut(), start, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN_SRC: Ipv4Addr = Ipv4Addr::new(145, 254, 160, 237);
    const SYN_DST: Ipv4Addr = Ipv4Addr::new(65, 208, 228, 223);

    /// The TCP part of a real SYN (a web client opening port 80): MSS 1460, two NOPs,
    /// SACK permitted.
    static SYN: [u8; 28] = [
        0x0d, 0x2c, 0x00, 0x50, 0x38, 0xaf, 0xfe, 0x13, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0x22,
        0x38, 0xc3, 0x0c, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02,
    ];

    #[test]
    fn syn_fields_read_from_real_segment() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (3372, 80));
        assert_eq!(p.seq_number(), 0x38affe13);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.flags(), Flags::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst());
        assert!(!p.psh() && !p.urg() && !p.ece() && !p.cwr());
        assert_eq!(p.window_len(), 8760);
        assert_eq!(p.checksum(), 0xc30c);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(
            p.options(),
            &[0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02]
        );
        assert!(p.payload().is_empty());
    }

    #[test]
    fn real_syn_checksum_verifies_over_ipv4_pseudo_header() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert!(p.verify_checksum_v4(SYN_SRC, SYN_DST));
        assert!(!p.verify_checksum_v4(SYN_SRC, Ipv4Addr::new(65, 208, 228, 224)));
    }

    #[test]
    fn fill_checksum_v4_reproduces_real_checksum() {
        let mut bytes = SYN;
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_checksum(0);
        p.fill_checksum_v4(SYN_SRC, SYN_DST);
        assert_eq!(p.checksum(), 0xc30c);
    }

    #[test]
    fn fill_checksum_v6_then_verify() {
        let (src, dst) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let mut bytes = SYN.to_vec();
        bytes.extend_from_slice(b"hello");
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.fill_checksum_v6(src, dst);
        assert!(p.verify_checksum_v6(src, dst));
        assert!(!p.verify_checksum_v6(src, "2001:db8::3".parse().unwrap()));
        assert_eq!(p.payload(), b"hello");
    }

    #[test]
    fn setters_write_their_fields() {
        let mut bytes = [0u8; 24];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_seq_number(3);
        p.set_ack_number(4);
        p.set_header_len(24);
        p.set_flags(Flags::SYN | Flags::ACK);
        p.set_window_len(5);
        p.set_urgent_at(6);
        p.options_mut().copy_from_slice(&[1, 1, 1, 0]);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (1, 2));
        assert_eq!((p.seq_number(), p.ack_number()), (3, 4));
        assert_eq!(p.header_len(), 24);
        assert!(p.flags().contains(Flags::SYN) && p.ack());
        assert_eq!(format!("{:?}", p.flags()), "SYN|ACK");
        assert_eq!((p.window_len(), p.urgent_at()), (5, 6));
        assert_eq!(p.options(), &[1, 1, 1, 0]);
    }

    #[test]
    fn bad_data_offsets_are_refused() {
        let mut bytes = SYN;
        assert_eq!(
            Packet::new_checked(&bytes[..27]).err(),
            Some(Error::Truncated)
        );
        bytes[12] = 0x40;
        assert!(matches!(
            Packet::new_checked(&bytes[..]),
            Err(Error::Malformed(_))
        ));
        bytes[12] = 0xf0;
        assert_eq!(
            Packet::new_checked(&bytes[..]).err(),
            Some(Error::Truncated)
        );
    }
}

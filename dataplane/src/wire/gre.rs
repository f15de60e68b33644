//! GRE headers (RFC 2784, the form IPVS's `ip_vs_tunnel_xmit` sends for `--tun-type gre`):
//! flags and version, the payload's EtherType, and with the C bit a checksum (over the GRE
//! header and payload) and a reserved word. No key or sequence number (RFC 2890).
//!
//! [`Packet::new_checked`] makes sure the header (4 bytes, 8 with the checksum) is there;
//! after that no accessor panics.

use super::checksum;
use super::{get16, put16, Error, EtherType, Field, Rest};

mod field {
    use super::{Field, Rest};
    pub const FLAGS_VER: Field = 0..2;
    pub const PROTOCOL: Field = 2..4;
    pub const CHECKSUM: Field = 4..6;
    pub const RESERVED1: Field = 6..8;
    pub const PAYLOAD_NO_CSUM: Rest = 4..;
    pub const PAYLOAD_CSUM: Rest = 8..;
}

/// The checksum-present bit of the flags.
const FLAG_C: u16 = 0x8000;

/// Length of the header without the optional checksum word.
pub const HEADER_LEN: usize = field::PAYLOAD_NO_CSUM.start;

/// A zero-copy view of a GRE packet (header and payload).
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

    /// The fixed header, and the checksum word when the C bit says it is there.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn has_checksum(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLAGS_VER) & FLAG_C != 0
    }

    #[inline]
    pub fn version(&self) -> u8 {
        (get16(self.buffer.as_ref(), field::FLAGS_VER) & 0x7) as u8
    }

    #[inline]
    pub fn protocol(&self) -> EtherType {
        EtherType(get16(self.buffer.as_ref(), field::PROTOCOL))
    }

    /// The checksum (0 without the C bit).
    #[inline]
    pub fn checksum(&self) -> u16 {
        if self.has_checksum() {
            get16(self.buffer.as_ref(), field::CHECKSUM)
        } else {
            0
        }
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        if self.has_checksum() {
            field::PAYLOAD_CSUM.start
        } else {
            HEADER_LEN
        }
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }

    /// Whether the checksum (if any) sums the packet to zero.
    pub fn verify_checksum(&self) -> bool {
        !self.has_checksum() || checksum::finish(checksum::sum(self.buffer.as_ref())) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the C bit (and version 0, no other flags).
    #[inline]
    pub fn set_flags_checksum(&mut self, present: bool) {
        put16(
            self.buffer.as_mut(),
            field::FLAGS_VER,
            if present { FLAG_C } else { 0 },
        )
    }

    #[inline]
    pub fn set_protocol(&mut self, value: EtherType) {
        put16(self.buffer.as_mut(), field::PROTOCOL, value.0)
    }

    /// Set the checksum and clear the reserved word (needs the C bit).
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value);
        put16(self.buffer.as_mut(), field::RESERVED1, 0);
    }

    /// Compute and store the checksum over the header and payload (the view's whole buffer);
    /// nothing without the C bit.
    pub fn fill_checksum(&mut self) {
        if !self.has_checksum() {
            return;
        }
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum(self.buffer.as_ref()));
        self.set_checksum(c)
    }
}

/// The owned form of a GRE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The payload's EtherType (IPv4 or IPv6 for a tunnel).
    pub protocol: EtherType,
    /// With the checksum word (`--tun-flags csum`).
    pub checksum: bool,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        if packet.version() != 0 {
            return Err(Error::Malformed("GRE version is not 0"));
        }
        Ok(Repr {
            protocol: packet.protocol(),
            checksum: packet.has_checksum(),
        })
    }

    #[inline]
    pub const fn header_len(&self) -> usize {
        if self.checksum {
            field::PAYLOAD_CSUM.start
        } else {
            HEADER_LEN
        }
    }

    /// Write the header (the checksum zero: [`Packet::fill_checksum`] once the payload is in
    /// place); the buffer must hold [`Repr::header_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_flags_checksum(self.checksum);
        packet.set_protocol(self.protocol);
        if self.checksum {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GRE with checksum carrying an IPv4 header (45 00 00 14 ...): C bit, version 0,
    /// EtherType IPv4, checksum 0x9ee6 over these 28 bytes, reserved 0.
    static GRE_CSUM_IPV4: [u8; 28] = [
        0x80, 0x00, 0x08, 0x00, 0x9e, 0xe6, 0x00, 0x00, // GRE: C, IPv4, checksum, reserved
        0x45, 0x00, 0x00, 0x14, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, // inner IPv4
        0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
    ];

    #[test]
    fn fields_read_from_real_bytes() {
        let p = Packet::new_checked(&GRE_CSUM_IPV4[..]).unwrap();
        assert!(p.has_checksum());
        assert_eq!(p.version(), 0);
        assert_eq!(p.protocol(), EtherType::IPV4);
        assert_eq!(p.header_len(), 8);
        assert_eq!(p.payload(), &GRE_CSUM_IPV4[8..]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn repr_emits_the_real_bytes() {
        let repr = Repr {
            protocol: EtherType::IPV4,
            checksum: true,
        };
        let mut buf = GRE_CSUM_IPV4;
        buf[..8].fill(0xa5);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p);
        p.fill_checksum();
        assert_eq!(buf, GRE_CSUM_IPV4);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn without_checksum_the_header_is_four_bytes() {
        let repr = Repr {
            protocol: EtherType::IPV6,
            checksum: false,
        };
        let mut buf = [0xa5u8; 4];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, [0x00, 0x00, 0x86, 0xdd]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!((p.header_len(), p.checksum()), (4, 0));
        assert!(Packet::new_checked(&[0x80u8, 0, 8, 0][..]).is_err());
    }
}

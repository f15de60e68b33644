//! GUE headers (Generic UDP Encapsulation, draft-ietf-intarea-gue, variant 0), the form
//! IPVS's `ip_vs_tunnel_xmit` sends for `--tun-type gue`: version and control bit, header
//! length in words (0: no options), the protocol of the payload, and 16 bits of flags.
//!
//! [`Packet::new_checked`] makes sure the 4-byte header and its options are there; after that
//! no accessor panics.

use super::{get16, put16, Error, Field, IpProtocol};

mod field {
    use super::Field;
    pub const VER_C_HLEN: usize = 0;
    pub const PROTO_CTYPE: usize = 1;
    pub const FLAGS: Field = 2..4;
}

/// Length of the header without options.
pub const HEADER_LEN: usize = field::FLAGS.end;

/// A zero-copy view of a GUE packet (header, options and payload).
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
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_C_HLEN] >> 6
    }

    /// A control message (C bit), not a data packet.
    #[inline]
    pub fn is_control(&self) -> bool {
        self.buffer.as_ref()[field::VER_C_HLEN] & 0x20 != 0
    }

    /// The header's length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + usize::from(self.buffer.as_ref()[field::VER_C_HLEN] & 0x1f) * 4
    }

    /// The payload's IP protocol (of a data packet).
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTO_CTYPE])
    }

    #[inline]
    pub fn flags(&self) -> u16 {
        get16(self.buffer.as_ref(), field::FLAGS)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Version 0, a data packet, `words` words of options.
    #[inline]
    pub fn set_data_header(&mut self, words: u8) {
        self.buffer.as_mut()[field::VER_C_HLEN] = words & 0x1f
    }

    #[inline]
    pub fn set_protocol(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTO_CTYPE] = value.0
    }

    #[inline]
    pub fn set_flags(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::FLAGS, value)
    }
}

/// The owned form of a GUE data header without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The payload's IP protocol ([`IpProtocol::IPV4`] or [`IpProtocol::IPV6`] for a tunnel).
    pub protocol: IpProtocol,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        if packet.version() != 0 || packet.is_control() {
            return Err(Error::Malformed("GUE is not a version 0 data packet"));
        }
        Ok(Repr {
            protocol: packet.protocol(),
        })
    }

    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header; the buffer must hold at least [`HEADER_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_data_header(0);
        packet.set_protocol(self.protocol);
        packet.set_flags(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GUE data header for IPv4 (what Linux's `fou` sends with `encap gue`), then the first
    /// bytes of the inner header.
    static GUE_IPV4: [u8; 8] = [0x00, 0x04, 0x00, 0x00, 0x45, 0x00, 0x00, 0x54];

    #[test]
    fn fields_read_from_real_bytes() {
        let p = Packet::new_checked(&GUE_IPV4[..]).unwrap();
        assert_eq!((p.version(), p.is_control()), (0, false));
        assert_eq!(p.header_len(), 4);
        assert_eq!(p.protocol(), IpProtocol::IPV4);
        assert_eq!(p.flags(), 0);
        assert_eq!(p.payload(), &GUE_IPV4[4..]);
    }

    #[test]
    fn repr_emits_the_real_bytes() {
        let repr = Repr {
            protocol: IpProtocol::IPV4,
        };
        let mut buf = GUE_IPV4;
        buf[..4].fill(0xa5);
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, GUE_IPV4);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn options_past_the_buffer_are_truncated() {
        assert_eq!(
            Packet::new_checked(&[0x01u8, 4, 0, 0][..]).err(),
            Some(Error::Truncated)
        );
    }
}

//! Ethernet II frames: destination, source, EtherType, payload.
//!
//! [`Frame::new_checked`] makes sure the 14-byte header is present; after that no accessor
//! panics. A view made with [`Frame::new_unchecked`] over fewer bytes panics on field access.

use core::fmt;

use super::{get16, put16, Error, EtherType, Field, Rest};

/// A 48-bit IEEE 802 MAC address.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    #[inline]
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// All ones: every station.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// The I/G bit is set: a group address (broadcast included).
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    #[inline]
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

mod field {
    use super::{Field, Rest};
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: Rest = 14..;
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A zero-copy view of an Ethernet II frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wrap `buffer` without any check.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wrap `buffer`, making sure it holds the whole header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Frame<T>, Error> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// `Err(Truncated)` when the buffer is shorter than the header.
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
    pub const fn header_len() -> usize {
        HEADER_LEN
    }

    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(mac(&self.buffer.as_ref()[field::DESTINATION]))
    }

    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(mac(&self.buffer.as_ref()[field::SOURCE]))
    }

    /// The EtherType (a VLAN TPID when the frame is tagged).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(get16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Everything after the header (trailing padding included: Ethernet does not say).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(field::PAYLOAD).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    #[inline]
    pub fn set_dst_addr(&mut self, value: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&value.0)
    }

    #[inline]
    pub fn set_src_addr(&mut self, value: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&value.0)
    }

    #[inline]
    pub fn set_ethertype(&mut self, value: EtherType) {
        put16(self.buffer.as_mut(), field::ETHERTYPE, value.0)
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::PAYLOAD)
            .unwrap_or(&mut [])
    }
}

#[inline]
fn mac(b: &[u8]) -> [u8; 6] {
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// The owned form of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: MacAddr,
    pub dst_addr: MacAddr,
    pub ethertype: EtherType,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr, Error> {
        frame.check_len()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header into `frame`, whose buffer must hold at least [`HEADER_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_src_addr(self.src_addr);
        frame.set_dst_addr(self.dst_addr);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Ethernet header of a real frame: a host (00:1c:42:...) sending IPv4 to its router.
    static FRAME: [u8; 18] = [
        0x00, 0x1c, 0x42, 0x00, 0x00, 0x18, // dst
        0x00, 0x1c, 0x42, 0x6b, 0xc9, 0x4f, // src
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x3c, // start of the IP header
    ];

    #[test]
    fn frame_fields_read_from_real_header() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr([0x00, 0x1c, 0x42, 0x00, 0x00, 0x18]));
        assert_eq!(f.src_addr(), MacAddr([0x00, 0x1c, 0x42, 0x6b, 0xc9, 0x4f]));
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.payload(), &[0x45, 0x00, 0x00, 0x3c]);
        assert_eq!(f.dst_addr().to_string(), "00:1c:42:00:00:18");
    }

    #[test]
    fn frame_shorter_than_header_is_truncated() {
        for n in 0..HEADER_LEN {
            assert_eq!(Frame::new_checked(&FRAME[..n]), Err(Error::Truncated));
        }
        assert!(Frame::new_checked(&FRAME[..HEADER_LEN])
            .unwrap()
            .payload()
            .is_empty());
    }

    #[test]
    fn repr_emit_then_parse_round_trips() {
        let repr = Repr {
            src_addr: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_addr: MacAddr::BROADCAST,
            ethertype: EtherType::ARP,
        };
        let mut buf = [0u8; HEADER_LEN];
        let mut f = Frame::new_unchecked(&mut buf[..]);
        repr.emit(&mut f);
        assert_eq!(
            Repr::parse(&Frame::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
        assert!(repr.dst_addr.is_broadcast() && repr.dst_addr.is_multicast());
        assert!(repr.src_addr.is_unicast());
    }
}

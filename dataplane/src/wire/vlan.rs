//! IEEE 802.1Q and 802.1ad VLAN tags.
//!
//! On the wire a tag follows a TPID EtherType (`0x8100` for 802.1Q, `0x88a8` or the legacy
//! `0x9100` for an 802.1ad service tag) and is four bytes: the TCI (PCP, DEI, VID) and the
//! EtherType of what follows, which may be another TPID. [`Packet`] is a view of one tag and
//! what follows it; [`parse_tags`] walks one or two tags (QinQ) and refuses a third.
//!
//! [`Packet::new_checked`] makes sure the four tag bytes are present; after that no accessor
//! panics. [`parse_tags`] never panics.

use super::{get16, put16, Error, EtherType, Field, Rest};

mod field {
    use super::{Field, Rest};
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: Rest = 4..;
}

/// Length of one tag (after its TPID).
pub const TAG_LEN: usize = field::PAYLOAD.start;

/// Most tags [`parse_tags`] accepts.
pub const MAX_TAGS: usize = 2;

/// Whether `ethertype` announces a VLAN tag (802.1Q, 802.1ad, or legacy QinQ).
#[inline]
pub fn is_tpid(ethertype: EtherType) -> bool {
    matches!(
        ethertype,
        EtherType::VLAN | EtherType::QINQ | EtherType::QINQ_LEGACY
    )
}

/// A zero-copy view of one VLAN tag and the bytes after it.
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

    /// `Err(Truncated)` when the four tag bytes are not all there.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < TAG_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    #[inline]
    pub fn tci(&self) -> u16 {
        get16(self.buffer.as_ref(), field::TCI)
    }

    /// Priority code point (802.1p class of service).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator (formerly CFI).
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier.
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// EtherType of what follows the tag.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(get16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(field::PAYLOAD).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_tci(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::TCI, value)
    }

    #[inline]
    pub fn set_pcp(&mut self, value: u8) {
        let tci = (self.tci() & 0x1fff) | (u16::from(value & 0x7) << 13);
        self.set_tci(tci)
    }

    #[inline]
    pub fn set_dei(&mut self, value: bool) {
        let tci = (self.tci() & !0x1000) | if value { 0x1000 } else { 0 };
        self.set_tci(tci)
    }

    #[inline]
    pub fn set_vid(&mut self, value: u16) {
        let tci = (self.tci() & 0xf000) | (value & 0x0fff);
        self.set_tci(tci)
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

/// The VLAN tags in front of a frame's network header, outer first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tags {
    /// How many tags were present (0, 1 or 2).
    pub count: u8,
    /// TCI of each present tag, outer first; unused entries are zero.
    pub tci: [u16; MAX_TAGS],
    /// The EtherType after the last tag.
    pub ethertype: EtherType,
    /// Bytes the tags take (4 per tag).
    pub len: usize,
}

impl Tags {
    /// VID of tag `i` (0 = outer), if present.
    #[inline]
    pub fn vid(&self, i: usize) -> Option<u16> {
        if i < usize::from(self.count) {
            self.tci.get(i).map(|t| t & 0x0fff)
        } else {
            None
        }
    }

    /// PCP of tag `i` (0 = outer), if present.
    #[inline]
    pub fn pcp(&self, i: usize) -> Option<u8> {
        if i < usize::from(self.count) {
            self.tci.get(i).map(|t| (t >> 13) as u8)
        } else {
            None
        }
    }
}

/// Walk the VLAN tags announced by `ethertype` (the Ethernet header's) over `data` (the bytes
/// after the Ethernet header). An untagged frame gives zero tags and `ethertype` unchanged.
/// More than [`MAX_TAGS`] tags is `Malformed`; a tag cut short is `Truncated`.
pub fn parse_tags(ethertype: EtherType, data: &[u8]) -> Result<Tags, Error> {
    let mut tags = Tags {
        ethertype,
        ..Tags::default()
    };
    while is_tpid(tags.ethertype) {
        let i = usize::from(tags.count);
        if i >= MAX_TAGS {
            return Err(Error::Malformed("more than two VLAN tags"));
        }
        let tag = Packet::new_checked(data.get(tags.len..).unwrap_or(&[]))?;
        tags.tci[i] = tag.tci();
        tags.ethertype = tag.ethertype();
        tags.count += 1;
        tags.len += TAG_LEN;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tag of a real 802.1Q frame (VLAN 32, priority 0) carrying IPv4, and a QinQ stack
    /// (S-tag VLAN 100 priority 3, C-tag VLAN 200 with DEI) carrying IPv6.
    static TAG: [u8; 6] = [0x00, 0x20, 0x08, 0x00, 0x45, 0x00];
    static QINQ: [u8; 10] = [0x60, 0x64, 0x81, 0x00, 0x10, 0xc8, 0x86, 0xdd, 0x60, 0x00];

    #[test]
    fn tag_fields_read_from_real_8021q_tag() {
        let t = Packet::new_checked(&TAG[..]).unwrap();
        assert_eq!(t.tci(), 0x0020);
        assert_eq!(t.vid(), 32);
        assert_eq!(t.pcp(), 0);
        assert!(!t.dei());
        assert_eq!(t.ethertype(), EtherType::IPV4);
        assert_eq!(t.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn two_tags_give_outer_then_inner_vid() {
        let tags = parse_tags(EtherType::QINQ, &QINQ).unwrap();
        assert_eq!(tags.count, 2);
        assert_eq!(tags.vid(0), Some(100));
        assert_eq!(tags.pcp(0), Some(3));
        assert_eq!(tags.vid(1), Some(200));
        assert_eq!(tags.vid(2), None);
        assert_eq!(tags.ethertype, EtherType::IPV6);
        assert_eq!(tags.len, 8);
        assert!(Packet::new_checked(&QINQ[4..]).unwrap().dei());
    }

    #[test]
    fn untagged_frame_gives_no_tags() {
        let tags = parse_tags(EtherType::IPV4, &[]).unwrap();
        assert_eq!(
            (tags.count, tags.len, tags.ethertype),
            (0, 0, EtherType::IPV4)
        );
        assert_eq!(tags.vid(0), None);
    }

    #[test]
    fn third_tag_is_malformed() {
        let data = [0, 1, 0x81, 0x00, 0, 2, 0x81, 0x00, 0, 3, 0x08, 0x00];
        assert!(matches!(
            parse_tags(EtherType::QINQ, &data),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn tag_cut_short_is_truncated() {
        for n in 0..8 {
            assert_eq!(
                parse_tags(EtherType::QINQ, &QINQ[..n]),
                Err(Error::Truncated)
            );
        }
    }

    #[test]
    fn setters_change_only_their_bits() {
        let mut buf = [0u8; 4];
        let mut t = Packet::new_unchecked(&mut buf[..]);
        t.set_vid(0xabc);
        t.set_pcp(5);
        t.set_dei(true);
        t.set_ethertype(EtherType::ARP);
        assert_eq!((t.vid(), t.pcp(), t.dei()), (0xabc, 5, true));
        t.set_vid(7);
        assert_eq!((t.vid(), t.pcp(), t.dei()), (7, 5, true));
        assert_eq!(buf, [0xb0, 0x07, 0x08, 0x06]);
    }
}

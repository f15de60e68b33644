//! SCTP packets (RFC 9260): the common header, the CRC32c checksum, and the chunks.
//!
//! [`Packet::new_checked`] makes sure the 12-byte common header is there; after that no
//! accessor panics. [`Packet::chunks`] walks the chunks and stops, after one `Err`, on a chunk
//! that is cut short or claims a length below 4, so it never reads past the buffer and always
//! ends. [`InitChunk`] reads the fixed fields of an INIT or INIT ACK chunk.
//!
//! The checksum is CRC32c (Castagnoli, RFC 9260 appendix A) over the whole packet with the
//! checksum field taken as zero, stored least significant byte first, as Linux does.

use super::{get16, get32, put16, put32, Error, Field, Rest};

/// The CRC32c (Castagnoli) polynomial, bit-reversed.
const CRC32C_POLY: u32 = 0x82f6_3b78;

/// Eight tables for slicing-by-8: `TABLE[0]` is the classic byte table, `TABLE[k][b]` is the
/// CRC of byte `b` followed by `k` zero bytes.
static CRC32C_TABLE: [[u32; 256]; 8] = crc32c_tables();

const fn crc32c_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ CRC32C_POLY
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}

/// A running CRC32c.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc32c(u32);

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    #[inline]
    pub const fn new() -> Crc32c {
        Crc32c(!0)
    }

    /// Feed `data`.
    pub fn update(&mut self, data: &[u8]) {
        let t = &CRC32C_TABLE;
        let mut crc = self.0;
        let mut blocks = data.chunks_exact(8);
        for b in &mut blocks {
            let lo = crc ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            crc = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][usize::from(b[4])]
                ^ t[2][usize::from(b[5])]
                ^ t[1][usize::from(b[6])]
                ^ t[0][usize::from(b[7])];
        }
        for &b in blocks.remainder() {
            crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xff) as usize];
        }
        self.0 = crc;
    }

    /// The CRC of everything fed.
    #[inline]
    pub const fn finish(self) -> u32 {
        !self.0
    }
}

/// CRC32c of `data`.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = Crc32c::new();
    c.update(data);
    c.finish()
}

mod field {
    use super::{Field, Rest};
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const VERIFICATION_TAG: Field = 4..8;
    pub const CHECKSUM: Field = 8..12;
    pub const CHUNKS: Rest = 12..;
}

/// Length of the common header.
pub const HEADER_LEN: usize = field::CHUNKS.start;

/// A chunk type.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ChunkType(pub u8);

impl ChunkType {
    pub const DATA: ChunkType = ChunkType(0);
    pub const INIT: ChunkType = ChunkType(1);
    pub const INIT_ACK: ChunkType = ChunkType(2);
    pub const SACK: ChunkType = ChunkType(3);
    pub const HEARTBEAT: ChunkType = ChunkType(4);
    pub const HEARTBEAT_ACK: ChunkType = ChunkType(5);
    pub const ABORT: ChunkType = ChunkType(6);
    pub const SHUTDOWN: ChunkType = ChunkType(7);
    pub const SHUTDOWN_ACK: ChunkType = ChunkType(8);
    pub const ERROR: ChunkType = ChunkType(9);
    pub const COOKIE_ECHO: ChunkType = ChunkType(10);
    pub const COOKIE_ACK: ChunkType = ChunkType(11);
    pub const SHUTDOWN_COMPLETE: ChunkType = ChunkType(14);
}

/// A zero-copy view of an SCTP packet.
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

    /// `Err(Truncated)` when the common header is not all there.
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
    pub fn src_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::DST_PORT)
    }

    #[inline]
    pub fn verification_tag(&self) -> u32 {
        get32(self.buffer.as_ref(), field::VERIFICATION_TAG)
    }

    /// The stored checksum, as the CRC value (the field is little-endian).
    #[inline]
    pub fn checksum(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// CRC32c of the packet with the checksum field taken as zero.
    pub fn compute_checksum(&self) -> u32 {
        let data = self.buffer.as_ref();
        let mut crc = Crc32c::new();
        crc.update(data.get(..field::CHECKSUM.start).unwrap_or(&[]));
        crc.update(&[0; 4]);
        crc.update(data.get(field::CHUNKS).unwrap_or(&[]));
        crc.finish()
    }

    #[inline]
    pub fn verify_checksum(&self) -> bool {
        self.compute_checksum() == self.checksum()
    }

    /// The bytes after the common header.
    #[inline]
    pub fn chunk_bytes(&self) -> &[u8] {
        self.buffer.as_ref().get(field::CHUNKS).unwrap_or(&[])
    }

    /// The chunks, in order.
    #[inline]
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks {
            rest: self.chunk_bytes(),
        }
    }

    /// The type of the first chunk, if a whole first chunk header is present.
    #[inline]
    pub fn first_chunk_type(&self) -> Option<ChunkType> {
        match self.chunks().next() {
            Some(Ok(c)) => Some(c.chunk_type()),
            _ => None,
        }
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
    pub fn set_verification_tag(&mut self, value: u32) {
        put32(self.buffer.as_mut(), field::VERIFICATION_TAG, value)
    }

    /// Store `value` as the checksum (little-endian).
    #[inline]
    pub fn set_checksum(&mut self, value: u32) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_le_bytes())
    }

    /// Compute and store the checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c)
    }

    #[inline]
    pub fn chunk_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::CHUNKS)
            .unwrap_or(&mut [])
    }
}

mod chunk_field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const FLAGS: usize = 1;
    pub const LENGTH: Field = 2..4;
}

/// Length of a chunk header.
pub const CHUNK_HEADER_LEN: usize = chunk_field::LENGTH.end;

/// A zero-copy view of one chunk, starting at its type byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Chunk<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Chunk<T> {
        Chunk { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Chunk<T>, Error> {
        let c = Self::new_unchecked(buffer);
        c.check_len()?;
        Ok(c)
    }

    /// The chunk header must be there, its length at least 4 and within the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < CHUNK_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let chunk_len = usize::from(self.len());
        if chunk_len < CHUNK_HEADER_LEN {
            return Err(Error::Malformed("SCTP chunk length below 4"));
        }
        if len < chunk_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn chunk_type(&self) -> ChunkType {
        ChunkType(self.buffer.as_ref()[chunk_field::TYPE])
    }

    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[chunk_field::FLAGS]
    }

    /// The length field: header and value, padding excluded.
    #[inline]
    pub fn len(&self) -> u16 {
        get16(self.buffer.as_ref(), chunk_field::LENGTH)
    }

    /// Whether the chunk has no value bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= CHUNK_HEADER_LEN
    }

    /// The value: after the header, up to the length field.
    #[inline]
    pub fn value(&self) -> &[u8] {
        super::clamp(
            self.buffer.as_ref(),
            CHUNK_HEADER_LEN,
            usize::from(self.len()),
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Chunk<T> {
    #[inline]
    pub fn set_chunk_type(&mut self, value: ChunkType) {
        self.buffer.as_mut()[chunk_field::TYPE] = value.0
    }

    #[inline]
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[chunk_field::FLAGS] = value
    }

    #[inline]
    pub fn set_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), chunk_field::LENGTH, value)
    }
}

/// Iterator over the chunks of a packet. Yields each whole chunk (its buffer is the chunk
/// without padding); on a chunk cut short or shorter than its header it yields one `Err`
/// and then ends.
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<Chunk<&'a [u8]>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = core::mem::take(&mut self.rest);
        let chunk = match Chunk::new_checked(rest) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let len = usize::from(chunk.len());
        let padded = (len + 3) & !3;
        // The last chunk's padding may be missing; the rest is then empty.
        self.rest = rest.get(padded..).unwrap_or(&[]);
        Some(Ok(Chunk::new_unchecked(rest.get(..len).unwrap_or(rest))))
    }
}

mod init_field {
    use super::Field;
    pub const INITIATE_TAG: Field = 4..8;
    pub const A_RWND: Field = 8..12;
    pub const OUTBOUND_STREAMS: Field = 12..14;
    pub const INBOUND_STREAMS: Field = 14..16;
    pub const INITIAL_TSN: Field = 16..20;
}

/// Length of an INIT chunk without parameters.
pub const INIT_CHUNK_LEN: usize = init_field::INITIAL_TSN.end;

/// A zero-copy view of an INIT or INIT ACK chunk, starting at its type byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitChunk<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> InitChunk<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> InitChunk<T> {
        InitChunk { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<InitChunk<T>, Error> {
        let c = Self::new_unchecked(buffer);
        c.check_len()?;
        Ok(c)
    }

    /// The fixed INIT fields must be there and the chunk length must cover them.
    pub fn check_len(&self) -> Result<(), Error> {
        let chunk = Chunk::new_checked(self.buffer.as_ref())?;
        if usize::from(chunk.len()) < INIT_CHUNK_LEN {
            return Err(Error::Malformed("SCTP INIT chunk shorter than 20"));
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn chunk_type(&self) -> ChunkType {
        ChunkType(self.buffer.as_ref()[chunk_field::TYPE])
    }

    /// The tag the sender wants to see as verification tag in packets sent to it.
    #[inline]
    pub fn initiate_tag(&self) -> u32 {
        get32(self.buffer.as_ref(), init_field::INITIATE_TAG)
    }

    /// Advertised receiver window credit.
    #[inline]
    pub fn a_rwnd(&self) -> u32 {
        get32(self.buffer.as_ref(), init_field::A_RWND)
    }

    #[inline]
    pub fn outbound_streams(&self) -> u16 {
        get16(self.buffer.as_ref(), init_field::OUTBOUND_STREAMS)
    }

    #[inline]
    pub fn inbound_streams(&self) -> u16 {
        get16(self.buffer.as_ref(), init_field::INBOUND_STREAMS)
    }

    #[inline]
    pub fn initial_tsn(&self) -> u32 {
        get32(self.buffer.as_ref(), init_field::INITIAL_TSN)
    }

    /// The optional and variable-length parameters, up to the chunk length.
    #[inline]
    pub fn params(&self) -> &[u8] {
        let len = Chunk::new_unchecked(self.buffer.as_ref()).len();
        super::clamp(self.buffer.as_ref(), INIT_CHUNK_LEN, usize::from(len))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> InitChunk<T> {
    #[inline]
    pub fn set_initiate_tag(&mut self, value: u32) {
        put32(self.buffer.as_mut(), init_field::INITIATE_TAG, value)
    }

    #[inline]
    pub fn set_a_rwnd(&mut self, value: u32) {
        put32(self.buffer.as_mut(), init_field::A_RWND, value)
    }

    #[inline]
    pub fn set_outbound_streams(&mut self, value: u16) {
        put16(self.buffer.as_mut(), init_field::OUTBOUND_STREAMS, value)
    }

    #[inline]
    pub fn set_inbound_streams(&mut self, value: u16) {
        put16(self.buffer.as_mut(), init_field::INBOUND_STREAMS, value)
    }

    #[inline]
    pub fn set_initial_tsn(&mut self, value: u32) {
        put32(self.buffer.as_mut(), init_field::INITIAL_TSN, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SCTP INIT (port 36412 -> 36412, verification tag 0 as INIT requires) with an
    /// IPv4-address parameter and a supported-address-types parameter whose value (2 bytes)
    /// needs 2 bytes of padding.
    static INIT: [u8; 12 + 20 + 8 + 8] = [
        0x8e, 0x3c, 0x8e, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // header
        0x01, 0x00, 0x00, 0x24, // INIT, flags 0, length 36
        0x1c, 0x2d, 0x3e, 0x4f, 0x00, 0x01, 0x00, 0x00, // initiate tag, a_rwnd 65536
        0x00, 0x0a, 0xff, 0xff, 0x5a, 0x5b, 0x5c, 0x5d, // 10 out, 65535 in, initial TSN
        0x00, 0x05, 0x00, 0x08, 0x0a, 0x00, 0x00, 0x01, // IPv4 address 10.0.0.1
        0x00, 0x0c, 0x00, 0x06, 0x00, 0x05, 0x00, 0x00, // supported types: IPv4, pad
    ];

    fn init_packet() -> Vec<u8> {
        let mut b = INIT.to_vec();
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        b
    }

    #[test]
    fn crc32c_matches_published_check_values() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // RFC 3720 B.4: 32 bytes of zeros, of ones, ascending and descending.
        assert_eq!(crc32c(&[0; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xff; 32]), 0x62a8_ab43);
        let up: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&up), 0x46dd_794e);
        let down: Vec<u8> = (0..32).rev().collect();
        assert_eq!(crc32c(&down), 0x113f_db5c);
    }

    #[test]
    fn crc32c_fed_in_pieces_equals_crc32c_of_whole() {
        let data: Vec<u8> = (0..200u16).map(|i| (i * 7 + 3) as u8).collect();
        for cut in 0..data.len() {
            let mut c = Crc32c::new();
            c.update(&data[..cut]);
            c.update(&data[cut..]);
            assert_eq!(c.finish(), crc32c(&data));
        }
    }

    /// The IPv4 packet of Scapy's SCTP regression test "Chunk Init - build" (127.0.0.1 to
    /// itself, an INIT with one IPv4-address parameter), checksum bytes 40 2c 0b 5f: an
    /// independent implementation that pins CRC32c stored least significant byte first.
    #[test]
    fn reference_packet_checksum_verifies_with_little_endian_field() {
        let mut ip = vec![
            0x45, 0x00, 0x00, 0x3c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x84, 0x7c, 0x3b, 0x7f, 0x00,
            0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, // IPv4, protocol 132
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x2c, 0x0b, 0x5f, // SCTP
            0x01, 0x00, 0x00, 0x1c, // INIT, length 28
        ];
        ip.extend_from_slice(&[0; 16]);
        ip.extend_from_slice(&[0x00, 0x05, 0x00, 0x08, 0x7f, 0x00, 0x00, 0x01]);
        let v4 = crate::wire::ipv4::Packet::new_checked(&ip[..]).unwrap();
        assert!(v4.verify_checksum());
        let p = Packet::new_checked(v4.payload()).unwrap();
        assert_eq!(p.checksum(), 0x5f0b_2c40);
        assert!(p.verify_checksum());
        assert_eq!(p.first_chunk_type(), Some(ChunkType::INIT));
    }

    #[test]
    fn init_fields_and_chunks_read() {
        let bytes = init_packet();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.src_port(), p.dst_port()), (36412, 36412));
        assert_eq!(p.verification_tag(), 0);
        assert_eq!(p.first_chunk_type(), Some(ChunkType::INIT));
        let chunks: Vec<_> = p.chunks().collect();
        assert_eq!(chunks.len(), 1);
        let chunk = chunks[0].clone().unwrap();
        assert_eq!(
            (chunk.chunk_type(), chunk.flags(), chunk.len()),
            (ChunkType::INIT, 0, 36)
        );
        assert_eq!(chunk.value().len(), 32);
        let init = InitChunk::new_checked(chunk.into_inner()).unwrap();
        assert_eq!(init.chunk_type(), ChunkType::INIT);
        assert_eq!(init.initiate_tag(), 0x1c2d3e4f);
        assert_eq!(init.a_rwnd(), 65536);
        assert_eq!(
            (init.outbound_streams(), init.inbound_streams()),
            (10, 65535)
        );
        assert_eq!(init.initial_tsn(), 0x5a5b5c5d);
        assert_eq!(init.params().len(), 16);
    }

    #[test]
    fn chunks_are_padded_to_four_bytes() {
        // A COOKIE ACK, a 5-byte DATA-ish chunk (3 bytes of padding), a SHUTDOWN COMPLETE
        // without trailing padding.
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&[11, 0, 0, 4]);
        b.extend_from_slice(&[0, 3, 0, 5, 0xaa, 0, 0, 0]);
        b.extend_from_slice(&[14, 1, 0, 5, 0xbb]);
        let p = Packet::new_checked(&b[..]).unwrap();
        let got: Vec<_> = p
            .chunks()
            .map(|c| {
                let c = c.unwrap();
                (c.chunk_type(), c.flags(), c.value().to_vec())
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (ChunkType::COOKIE_ACK, 0, vec![]),
                (ChunkType::DATA, 3, vec![0xaa]),
                (ChunkType::SHUTDOWN_COMPLETE, 1, vec![0xbb]),
            ]
        );
    }

    #[test]
    fn chunk_walk_stops_with_one_error_on_truncation() {
        let bytes = init_packet();
        for n in 13..bytes.len() {
            let p = Packet::new_checked(&bytes[..n]).unwrap();
            let items: Vec<_> = p.chunks().collect();
            assert_eq!(items.len(), 1, "cut at {n}");
            assert_eq!(items[0].clone().err(), Some(Error::Truncated));
        }
        assert_eq!(
            Packet::new_checked(&bytes[..12]).unwrap().chunks().count(),
            0
        );
    }

    #[test]
    fn chunk_length_below_header_is_malformed_not_a_loop() {
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 4]);
        let p = Packet::new_checked(&b[..]).unwrap();
        let items: Vec<_> = p.chunks().collect();
        assert_eq!(items.len(), 1);
        assert!(matches!(items[0], Err(Error::Malformed(_))));
        assert_eq!(p.first_chunk_type(), None);
    }

    #[test]
    fn init_chunk_shorter_than_fixed_fields_is_refused() {
        assert!(matches!(
            InitChunk::new_checked(&[1u8, 0, 0, 8, 0, 0, 0, 0][..]),
            Err(Error::Malformed(_))
        ));
        assert_eq!(
            InitChunk::new_checked(&INIT[12..30]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn fill_checksum_then_corruption_fails_verify() {
        let mut bytes = init_packet();
        bytes[20] ^= 1;
        assert!(!Packet::new_checked(&bytes[..]).unwrap().verify_checksum());
    }

    #[test]
    fn setters_write_their_fields() {
        let mut bytes = INIT;
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_verification_tag(3);
        p.set_checksum(0x0403_0201);
        let mut init = InitChunk::new_checked(&mut p.chunk_bytes_mut()[..]).unwrap();
        init.set_initiate_tag(4);
        init.set_a_rwnd(5);
        init.set_outbound_streams(6);
        init.set_inbound_streams(7);
        init.set_initial_tsn(8);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.verification_tag()),
            (1, 2, 3)
        );
        assert_eq!(&bytes[8..12], &[1, 2, 3, 4]);
        let init = InitChunk::new_checked(&bytes[12..]).unwrap();
        assert_eq!(
            (
                init.initiate_tag(),
                init.a_rwnd(),
                init.outbound_streams(),
                init.inbound_streams(),
                init.initial_tsn()
            ),
            (4, 5, 6, 7, 8)
        );
    }
}

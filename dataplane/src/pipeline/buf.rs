//! The packet buffer the pipeline works on. DPDK mbufs implement [`Buf`] in the DPDK shell;
//! [`VecBuf`] implements it for tests and `rvsd replay`, so the pipeline is the same code.

/// One frame's bytes with headroom in front (for tunnel encapsulation) and room behind.
pub trait Buf {
    /// The frame.
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Grow the frame by `n` bytes at the front; the new bytes are returned zeroed-or-stale
    /// (the caller writes them). `None`: not enough headroom.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Drop `n` bytes at the front (decapsulation); `n` beyond the length empties the frame.
    fn adj(&mut self, n: usize);
    /// Cut the frame to `len` bytes (no-op if already shorter).
    fn trim(&mut self, len: usize);
    /// Grow the frame by `n` bytes at the end. `None`: no room.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Have the NIC fill the checksums `req` names when the frame is sent (DPDK's tx offload
    /// flags). `false`, the default for a buffer with no NIC behind it: nothing is asked and
    /// the caller computes them. The caller asks only for a port that offers the offload.
    #[inline]
    fn offload_tx_csum(&mut self, _req: TxCsum) -> bool {
        false
    }
    #[inline]
    fn len(&self) -> usize {
        self.data().len()
    }
    #[inline]
    fn is_empty(&self) -> bool {
        self.data().is_empty()
    }
}

/// Checksums of a frame's outer headers a NIC fills at transmit. The caller leaves the IPv4
/// header checksum 0 and puts the UDP pseudo-header sum (folded, not complemented) in the
/// UDP checksum, as DPDK's offload contract wants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxCsum {
    /// Bytes before the IP header.
    pub l2_len: u16,
    /// IP header bytes (the UDP header follows).
    pub l3_len: u16,
    /// The IP header is IPv6 (else IPv4).
    pub v6: bool,
    /// Fill the IPv4 header checksum.
    pub ip: bool,
    /// Fill the UDP checksum.
    pub udp: bool,
}

/// Headroom of a [`VecBuf`], as DPDK's `RTE_PKTMBUF_HEADROOM` (128).
pub const HEADROOM: usize = 128;
/// Largest frame a [`VecBuf`] holds after its headroom (a 9000-byte jumbo frame plus tags).
pub const ROOM: usize = 9216;

/// A heap buffer with DPDK-like headroom. One pointer wide, as an mbuf is: frames move
/// through the path by value, and a wide buffer would be copied at every step.
#[derive(Clone, Debug)]
pub struct VecBuf(Box<Inner>);

#[derive(Clone, Debug)]
struct Inner {
    start: usize,
    end: usize,
    mem: Vec<u8>,
}

impl VecBuf {
    /// A buffer holding `frame` (truncated to [`ROOM`]) after [`HEADROOM`] bytes.
    pub fn from_frame(frame: &[u8]) -> Self {
        let len = frame.len().min(ROOM);
        let mut mem = vec![0u8; HEADROOM + ROOM];
        mem[HEADROOM..HEADROOM + len].copy_from_slice(&frame[..len]);
        VecBuf(Box::new(Inner {
            mem,
            start: HEADROOM,
            end: HEADROOM + len,
        }))
    }

    /// Empty again with the full headroom (a recycled buffer, as an mbuf freed and taken).
    pub fn reset(&mut self) {
        self.0.start = HEADROOM;
        self.0.end = HEADROOM;
    }

    /// An empty buffer (for frames the appliance builds: ARP replies, ICMP errors).
    pub fn empty() -> Self {
        VecBuf(Box::new(Inner {
            mem: vec![0u8; HEADROOM + ROOM],
            start: HEADROOM,
            end: HEADROOM,
        }))
    }
}

impl Buf for VecBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        let b = &*self.0;
        &b.mem[b.start..b.end]
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let b = &mut *self.0;
        &mut b.mem[b.start..b.end]
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let b = &mut *self.0;
        let s = b.start.checked_sub(n)?;
        b.start = s;
        Some(&mut b.mem[s..s + n])
    }
    fn adj(&mut self, n: usize) {
        let b = &mut *self.0;
        b.start = (b.start + n).min(b.end);
    }
    fn trim(&mut self, len: usize) {
        let b = &mut *self.0;
        b.end = b.end.min(b.start + len);
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let b = &mut *self.0;
        let e = b.end.checked_add(n).filter(|&e| e <= b.mem.len())?;
        let old = b.end;
        b.end = e;
        Some(&mut b.mem[old..e])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_adj_trim_append_keep_the_frame_consistent() {
        let mut b = VecBuf::from_frame(&[1, 2, 3, 4]);
        b.prepend(2).unwrap().copy_from_slice(&[9, 8]);
        assert_eq!(b.data(), &[9, 8, 1, 2, 3, 4]);
        b.adj(3);
        assert_eq!(b.data(), &[2, 3, 4]);
        b.trim(2);
        assert_eq!(b.data(), &[2, 3]);
        b.append(1).unwrap()[0] = 7;
        assert_eq!(b.data(), &[2, 3, 7]);
        assert!(b.prepend(HEADROOM + 10).is_none(), "headroom is bounded");
        b.adj(100);
        assert!(b.is_empty());
    }
}

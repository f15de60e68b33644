//! An owned packet mbuf, the engine's [`Buf`] on DPDK.

use std::ptr::NonNull;

use dpdk_sys as sys;

use crate::pipeline::buf::{Buf, TxCsum};

/// One owned `rte_mbuf`; dropping it frees it back to its pool.
///
/// As a [`Buf`], the frame is the first segment (`mtod .. data_len`); the ports are not
/// configured for scattered rx, so the mbufs they hand out are single-segment, as are the
/// ones taken from a [`super::Mempool`]. `repr(transparent)`: a `Vec<Mbuf>` is an array of
/// `rte_mbuf *` that the burst calls read and write in place.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is the only owner of its rte_mbuf, and freeing it (into a MP/MC-safe
// mempool) is valid from any thread.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Take ownership of a raw mbuf.
    ///
    /// # Safety
    /// `m` is a valid mbuf from a pool that outlives it (see [`super::Mempool`]), that nothing
    /// else owns or frees.
    #[inline]
    pub unsafe fn from_raw(m: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf(m)
    }

    /// Give up ownership (for a raw burst call); the caller frees it or hands it to DPDK.
    #[inline]
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let m = self.0;
        std::mem::forget(self);
        m
    }

    #[inline]
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.0.as_ptr()
    }

    /// Total frame length over all segments.
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: self owns a valid mbuf.
        unsafe { (*self.0.as_ptr()).pkt_len }
    }

    /// Free bytes in front of the frame.
    #[inline]
    pub fn headroom(&self) -> usize {
        // SAFETY: self owns a valid mbuf.
        usize::from(unsafe { sys::rvs_pktmbuf_headroom(self.0.as_ptr()) })
    }

    /// Free bytes after the frame (in the last segment).
    #[inline]
    pub fn tailroom(&self) -> usize {
        // SAFETY: self owns a valid mbuf.
        usize::from(unsafe { sys::rvs_pktmbuf_tailroom(self.0.as_ptr()) })
    }

    /// The port the mbuf was received on (as the PMD set it).
    #[inline]
    pub fn port(&self) -> u16 {
        // SAFETY: self owns a valid mbuf.
        unsafe { (*self.0.as_ptr()).port }
    }

    /// Overwrite the mbuf's port field. The PMDs read it on rx only (tx takes the queue's
    /// port), so the shell may use it as a tag while the mbuf travels a hand-off ring.
    #[inline]
    pub fn set_port(&mut self, port: u16) {
        // SAFETY: self owns a valid mbuf, exclusively (&mut self).
        unsafe { (*self.0.as_ptr()).port = port }
    }

    #[inline]
    fn data_ptr_len(&self) -> (*mut u8, usize) {
        let m = self.0.as_ptr();
        // SAFETY: self owns a valid mbuf: buf_addr + data_off is its first data byte (what
        // rte_pktmbuf_mtod computes) and data_len bytes follow inside the buffer.
        unsafe {
            (
                (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off)),
                usize::from((*m).data_len),
            )
        }
    }

    #[inline]
    fn data_len(&self) -> usize {
        self.data_ptr_len().1
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: self is the only owner; the mbuf goes back to its pool (alive: see
        // Mempool's drop) and is never touched again.
        unsafe { sys::rvs_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl Buf for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        let (p, len) = self.data_ptr_len();
        // SAFETY: p..p+len is the first segment's frame, owned through &self.
        unsafe { std::slice::from_raw_parts(p, len) }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let (p, len) = self.data_ptr_len();
        // SAFETY: as data, and &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(p, len) }
    }

    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        if n > self.headroom() {
            return None;
        }
        // SAFETY: self owns the mbuf; n <= headroom, so the shim moves data_off back by n
        // and returns the new start (NULL only when the room is short, checked again).
        let p = unsafe { sys::rvs_pktmbuf_prepend(self.0.as_ptr(), n16) };
        let p = NonNull::new(p.cast::<u8>())?;
        // SAFETY: the n bytes at p are now the front of the frame, inside the buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), n) })
    }

    fn adj(&mut self, n: usize) {
        let n = n.min(self.data_len());
        if n == 0 {
            return;
        }
        // SAFETY: self owns the mbuf; n <= data_len (a u16), so the shim cannot fail.
        unsafe { sys::rvs_pktmbuf_adj(self.0.as_ptr(), n as u16) };
    }

    fn trim(&mut self, len: usize) {
        let cur = self.data_len();
        if len >= cur {
            return;
        }
        // SAFETY: self owns the mbuf; cur - len <= data_len of the (single) segment.
        unsafe { sys::rvs_pktmbuf_trim(self.0.as_ptr(), (cur - len) as u16) };
    }

    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        if n > self.tailroom() {
            return None;
        }
        // SAFETY: self owns the mbuf; n <= tailroom, so the shim grows data_len by n and
        // returns the old end (NULL only when the room is short).
        let p = unsafe { sys::rvs_pktmbuf_append(self.0.as_ptr(), n16) };
        let p = NonNull::new(p.cast::<u8>())?;
        // SAFETY: the n bytes at p are now the end of the frame, inside the buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), n) })
    }

    fn offload_tx_csum(&mut self, req: TxCsum) -> bool {
        let mut flags = if req.v6 {
            sys::RTE_MBUF_F_TX_IPV6
        } else {
            sys::RTE_MBUF_F_TX_IPV4
        };
        if req.ip && !req.v6 {
            flags |= sys::RTE_MBUF_F_TX_IP_CKSUM;
        }
        if req.udp {
            flags |= sys::RTE_MBUF_F_TX_UDP_CKSUM;
        }
        // SAFETY: self owns the mbuf; the shim only sets its offload metadata.
        unsafe { sys::rvs_mbuf_tx_offload(self.0.as_ptr(), flags, req.l2_len, req.l3_len) };
        true
    }
}

impl Mbuf {
    /// The offload flags and (l2_len, l3_len) the mbuf carries (for tests and debugging).
    pub fn tx_offload(&self) -> (u64, u16, u16) {
        // SAFETY: reads of the owned mbuf's metadata.
        let (flags, lens) = unsafe {
            (
                sys::rvs_mbuf_ol_flags(self.0.as_ptr()),
                sys::rvs_mbuf_l2_l3_len(self.0.as_ptr()),
            )
        };
        (flags, (lens >> 16) as u16, lens as u16)
    }
}

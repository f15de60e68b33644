//! Packet mbuf pools (`rte_pktmbuf_pool_create`).

use std::ffi::{c_uint, CString};
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::{ensure_running, live_dec, live_inc};
use super::{DpdkError, Mbuf};

/// DPDK's default mbuf data room: 2048 bytes of frame after the 128-byte headroom.
pub const DEFAULT_DATA_ROOM: u16 = sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

/// A pool of packet mbufs. Cloning shares the same pool (a [`super::Port`] keeps a clone for
/// its rx queues); the pool is freed when the last clone goes.
///
/// **Every [`Mbuf`] taken from the pool must be gone (dropped, or sent by a PMD and freed
/// by it) before the pool is dropped.** If some are still out then, the pool is leaked
/// rather than freed, and the EAL is not cleaned up, so the stray mbufs never point into
/// freed memory.
///
/// `Send + Sync`: a DPDK mempool is multi-producer/multi-consumer safe (its default ring
/// handler), with a per-lcore object cache indexed by the calling thread's lcore id, so any
/// number of lcores may allocate from and free into one pool concurrently.
#[derive(Clone, Debug)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    ptr: NonNull<sys::rte_mempool>,
    name: String,
}

// SAFETY: rte_mempool's get/put are MP/MC safe (see the type's docs); the pointer itself is
// only freed in Drop, once no clone is left.
unsafe impl Send for PoolInner {}
// SAFETY: as above; every &self method calls thread-safe mempool functions.
unsafe impl Sync for PoolInner {}

impl Mempool {
    /// `rte_pktmbuf_pool_create(name, n, cache, 0, data_room, socket)`. `n` mbufs (a power
    /// of two minus one is optimal), a per-lcore cache of `cache` (at most
    /// `RTE_MEMPOOL_CACHE_MAX_SIZE`, 512), `data_room` bytes per mbuf including the headroom
    /// ([`DEFAULT_DATA_ROOM`]), on NUMA `socket` (-1: any). Names are unique per process.
    #[cold]
    pub fn new(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool, DpdkError> {
        const CALL: &str = "rte_pktmbuf_pool_create";
        ensure_running()?;
        let cname = CString::new(name).map_err(|e| DpdkError::invalid(CALL, e.to_string()))?;
        if data_room < sys::RTE_PKTMBUF_HEADROOM as u16 {
            return Err(DpdkError::invalid(
                CALL,
                "data room smaller than the headroom",
            ));
        }
        // SAFETY: the EAL is running; cname is NUL-terminated and copied by DPDK.
        let ptr = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                c_uint::from(n),
                c_uint::from(cache),
                0,
                data_room,
                socket,
            )
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| DpdkError::errno(CALL))?;
        live_inc();
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                ptr,
                name: name.to_owned(),
            }),
        })
    }

    /// One mbuf (reset: empty, full headroom); `None` when the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid while self is; the shim returns a fresh mbuf or NULL.
        let m = unsafe { sys::rvs_pktmbuf_alloc(self.inner.ptr.as_ptr()) };
        // SAFETY: a non-null result is a newly allocated mbuf that nobody else owns.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Mbufs free in the pool (including the per-lcore caches).
    pub fn avail(&self) -> u32 {
        // SAFETY: the pool is valid; the count is a racy but safe read.
        unsafe { sys::rte_mempool_avail_count(self.inner.ptr.as_ptr()) }
    }

    /// Mbufs taken from the pool and not yet back.
    pub fn in_use(&self) -> u32 {
        // SAFETY: as avail.
        unsafe { sys::rte_mempool_in_use_count(self.inner.ptr.as_ptr()) }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.ptr.as_ptr()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: the pool is valid until freed below.
        let in_use = unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) };
        if in_use != 0 {
            // Leaked (and counted live, so the EAL stays up): mbufs still point into it.
            eprintln!(
                "rvs: mempool {} leaked: {in_use} mbuf(s) still out",
                self.name
            );
            return;
        }
        // SAFETY: no mbuf is out and no clone (hence no port queue) refers to the pool.
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) };
        live_dec();
    }
}

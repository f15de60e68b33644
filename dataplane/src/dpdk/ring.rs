//! Single-producer, single-consumer hand-off rings over `rte_ring` (`RING_F_SP_ENQ |
//! RING_F_SC_DEQ`), carrying owned pointers: `Box<T>` or [`Mbuf`].
//!
//! The SP/SC flags make enqueue and dequeue unsynchronised between producers (and between
//! consumers), so the ring is split into one [`Producer`] and one [`Consumer`], each `Send`
//! and used through `&mut self`: one thread at a time per side, by construction.

use std::ffi::{c_uint, c_void, CString};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::{ensure_running, live_dec, live_inc};
use super::{DpdkError, Mbuf};

/// An owned value that travels through a ring as one non-null pointer.
pub trait RingItem: Send + Sized {
    fn into_ptr(self) -> NonNull<c_void>;
    /// # Safety
    /// `p` came from [`RingItem::into_ptr`] of the same type, and is taken back once.
    unsafe fn from_ptr(p: NonNull<c_void>) -> Self;
}

impl<T: Send> RingItem for Box<T> {
    fn into_ptr(self) -> NonNull<c_void> {
        // Box::into_raw is never null (dangling but non-null for zero-sized T).
        NonNull::from(Box::leak(self)).cast()
    }
    unsafe fn from_ptr(p: NonNull<c_void>) -> Self {
        // SAFETY: the caller passes back a pointer from Box::leak of a Box<T>, once.
        unsafe { Box::from_raw(p.cast::<T>().as_ptr()) }
    }
}

impl RingItem for Mbuf {
    fn into_ptr(self) -> NonNull<c_void> {
        self.into_raw().cast()
    }
    unsafe fn from_ptr(p: NonNull<c_void>) -> Self {
        // SAFETY: the caller passes back a pointer from Mbuf::into_raw, once.
        unsafe { Mbuf::from_raw(p.cast()) }
    }
}

struct RingInner<T: RingItem> {
    ptr: NonNull<sys::rte_ring>,
    /// Items it can hold (slots - 1): no dequeue returns more.
    usable: u32,
    _items: PhantomData<T>,
}

// SAFETY: the ring moves T (Send) between threads; the SP and SC sides are each used by one
// thread at a time (Producer/Consumer take &mut self), and rte_ring synchronises the two.
unsafe impl<T: RingItem> Send for RingInner<T> {}
// SAFETY: as above; shared references only reach the ring through the two halves.
unsafe impl<T: RingItem> Sync for RingInner<T> {}

impl<T: RingItem> Drop for RingInner<T> {
    fn drop(&mut self) {
        // Both halves are gone: drain what is left (dropping it), then free the ring.
        let mut slot: *mut c_void = ptr::null_mut();
        // SAFETY: no producer or consumer is left, so this thread is the only user; every
        // pointer in the ring came from T::into_ptr and is taken back once.
        unsafe {
            while sys::rvs_ring_dequeue_burst(self.ptr.as_ptr(), &mut slot, 1, ptr::null_mut()) == 1
            {
                if let Some(p) = NonNull::new(slot) {
                    drop(T::from_ptr(p));
                }
            }
            sys::rte_ring_free(self.ptr.as_ptr());
        }
        live_dec();
    }
}

/// The enqueue side of a [`ring()`].
pub struct Producer<T: RingItem> {
    inner: Arc<RingInner<T>>,
}

/// The dequeue side of a [`ring()`].
pub struct Consumer<T: RingItem> {
    inner: Arc<RingInner<T>>,
}

/// A ring of `capacity` slots (a power of two; it holds `capacity - 1` items) named `name`
/// (unique per process) on NUMA `socket` (-1: any).
#[cold]
pub fn ring<T: RingItem>(
    name: &str,
    capacity: u32,
    socket: i32,
) -> Result<(Producer<T>, Consumer<T>), DpdkError> {
    const CALL: &str = "rte_ring_create";
    ensure_running()?;
    if !capacity.is_power_of_two() || capacity < 2 {
        return Err(DpdkError::invalid(
            CALL,
            "capacity must be a power of two >= 2",
        ));
    }
    let cname = CString::new(name).map_err(|e| DpdkError::invalid(CALL, e.to_string()))?;
    // SAFETY: the EAL is running; cname is NUL-terminated and copied by DPDK.
    let r = unsafe {
        sys::rte_ring_create(
            cname.as_ptr(),
            c_uint::from(capacity),
            socket,
            sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ,
        )
    };
    let ptr = NonNull::new(r).ok_or_else(|| DpdkError::errno(CALL))?;
    live_inc();
    let inner = Arc::new(RingInner {
        ptr,
        usable: capacity - 1,
        _items: PhantomData,
    });
    Ok((
        Producer {
            inner: inner.clone(),
        },
        Consumer { inner },
    ))
}

impl<T: RingItem> Producer<T> {
    /// Enqueue one item; a full ring gives it back.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), T> {
        let p = item.into_ptr();
        let obj: *mut c_void = p.as_ptr();
        // SAFETY: single producer (&mut self); obj is one valid pointer to enqueue.
        let n = unsafe {
            sys::rvs_ring_enqueue_burst(self.inner.ptr.as_ptr(), &obj, 1, ptr::null_mut())
        };
        if n == 1 {
            Ok(())
        } else {
            // SAFETY: not enqueued, so p is still ours, from T::into_ptr just above.
            Err(unsafe { T::from_ptr(p) })
        }
    }
}

impl<T: RingItem> Consumer<T> {
    /// Dequeue one item, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let mut slot: *mut c_void = ptr::null_mut();
        // SAFETY: single consumer (&mut self); slot is one valid place to write.
        let n = unsafe {
            sys::rvs_ring_dequeue_burst(self.inner.ptr.as_ptr(), &mut slot, 1, ptr::null_mut())
        };
        // SAFETY: a dequeued pointer came from T::into_ptr and is taken back once.
        (n == 1)
            .then(|| NonNull::new(slot).map(|p| unsafe { T::from_ptr(p) }))
            .flatten()
    }
}

impl Producer<Mbuf> {
    /// Enqueue as many mbufs from the front of `bufs` as fit, in one ring operation; the
    /// enqueued ones are removed, the rest stay in `bufs` (in order) for the caller to retry
    /// or drop. Returns how many were enqueued.
    #[inline]
    pub fn push_burst(&mut self, bufs: &mut Vec<Mbuf>) -> usize {
        let len = bufs.len();
        if len == 0 {
            return 0;
        }
        let n = c_uint::try_from(len).unwrap_or(c_uint::MAX);
        // SAFETY: single producer (&mut self). Mbuf is repr(transparent) over a non-null
        // rte_mbuf pointer, so the first n entries of bufs are n valid object pointers; the
        // ring takes ownership of the first `sent` (forgotten here: set_len first, so nothing
        // is dropped twice even on unwind), the rest move to the front.
        unsafe {
            let base = bufs.as_mut_ptr();
            let sent = sys::rvs_ring_enqueue_burst(
                self.inner.ptr.as_ptr(),
                base.cast::<*mut c_void>(),
                n,
                ptr::null_mut(),
            ) as usize;
            bufs.set_len(0);
            ptr::copy(base.add(sent), base, len - sent);
            bufs.set_len(len - sent);
            sent
        }
    }
}

impl Consumer<Mbuf> {
    /// Dequeue up to `max` mbufs in one ring operation, appended to `out` (which grows only
    /// when it lacks the capacity). Returns how many.
    #[inline]
    pub fn pop_burst(&mut self, out: &mut Vec<Mbuf>, max: u32) -> usize {
        // No dequeue returns more than the ring holds: reserve (and ask for) no more.
        let max = max.min(self.inner.usable);
        out.reserve(max as usize);
        let len = out.len();
        // SAFETY: single consumer (&mut self); out has room for max more pointers, and Mbuf
        // is repr(transparent) over a non-null rte_mbuf pointer. The ring writes n <= max
        // pointers there, each enqueued by Producer::push/push_burst from an owned Mbuf
        // (non-null), whose ownership comes back to us exactly once.
        unsafe {
            let slots = out.as_mut_ptr().add(len).cast::<*mut c_void>();
            let n =
                sys::rvs_ring_dequeue_burst(self.inner.ptr.as_ptr(), slots, max, ptr::null_mut())
                    as usize;
            out.set_len(len + n);
            n
        }
    }
}

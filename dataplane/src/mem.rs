//! Large preallocated tables (conn slab, index, timer links), asking the kernel for
//! transparent huge pages. Lookups touch random cache lines of tables of hundreds of MiB: with
//! 4 KiB pages nearly every one also misses the TLB. On DPDK hosts the same tables can later
//! come from the EAL's hugepage memory; this is the fallback that also serves tests and
//! `rvsd simulate`.
// `madvise` on the tables' own memory: the engine's one allowed `unsafe`.
#![allow(unsafe_code)]

const HUGE: usize = 2 << 20;

/// A boxed slice of `n` copies of `value`, with the 2 MiB-aligned part of its memory advised
/// as huge-page backed before it is first touched.
pub fn huge_slice<T: Clone>(n: usize, value: T) -> Box<[T]> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise_huge(v.as_ptr() as usize, n * core::mem::size_of::<T>());
    v.resize(n, value);
    v.into_boxed_slice()
}

#[cfg(target_os = "linux")]
fn advise_huge(addr: usize, len: usize) {
    let start = addr.next_multiple_of(HUGE);
    let end = (addr + len) / HUGE * HUGE;
    if end > start {
        // SAFETY: [start, end) lies inside an allocation this module owns and has not handed
        // out yet; MADV_HUGEPAGE only changes how the kernel backs it, never its contents.
        // Failure (THP disabled) is harmless: the memory stays on small pages.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_addr: usize, _len: usize) {}

/// Ask the CPU to bring the cache line holding `p` into L1 ahead of use: a hint that never
/// faults and never changes memory, whatever the address.
#[inline(always)]
pub fn prefetch_read<T: ?Sized>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it cannot fault or write, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(
            p as *const T as *const i8,
            core::arch::x86_64::_MM_HINT_T0,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    #[test]
    fn huge_slice_is_filled() {
        let s = super::huge_slice(3 << 20, 7u8);
        assert_eq!(s.len(), 3 << 20);
        assert!(s.iter().all(|&b| b == 7));
    }
}

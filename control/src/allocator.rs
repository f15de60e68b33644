//! rvsd's allocator policy: mimalloc (the binaries' `#[global_allocator]`), told to keep the
//! memory it frees instead of returning it to the kernel a second later.
//!
//! Why: the workers' memory (conn tables, mbufs) is sized at start and never freed; what
//! comes and goes is the control thread's, in bursts: a `--replace` of a 10k-service,
//! 100k-dest set builds the new snapshots, counter blocks and indexes while the old ones are
//! still held, then frees the old ones. With mimalloc's default purge, each such change
//! faults in and zeroes fresh (huge) pages again: 31k page faults and 1.2 s of system time
//! over eight rounds of `control/examples/replace_rounds.rs fresh`, against 333 and 0.13 s
//! with purging off (docs/benchmarks.md). rvsd's resident size then stays at the high-water
//! mark of its largest change, which the sizing of an appliance has to allow for anyway.
//!
//! [`reserve_heap`] goes one step further for appliances with large rule sets
//! (`[control] heap_reserve_mib`): it faults that much heap in at start, so that no change
//! waits for the kernel (or a VM's host) to back fresh pages, as a JVM's `AlwaysPreTouch`.
// mimalloc's C options: the allowed `unsafe` of this file (workspace lint).
#![allow(unsafe_code)]

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the `libmimalloc-sys` we build has
/// no constant for it); its default there is 1000 (ms, `src/options.c`), which [`keep_freed_memory`] checks
/// before it writes, so a renumbered option is left alone rather than set wrong.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const PURGE_DELAY_DEFAULT_MS: std::ffi::c_long = 1000;

/// Keep freed memory in the process. Call first thing in `main`, before any thread starts.
/// Returns whether the option was set (`MIMALLOC_PURGE_DELAY` in the environment still wins,
/// for an experiment; and nothing is set if the option is not where mimalloc 3 has it).
pub fn keep_freed_memory() -> bool {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return false;
    }
    // SAFETY: reads and sets a plain integer option of the linked mimalloc; no pointer is
    // involved, and mimalloc reads its options atomically.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) != PURGE_DELAY_DEFAULT_MS {
            return false;
        }
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
    true
}

/// What [`reserve_heap`] touches at a time: mimalloc hands blocks this size out of its arena
/// (not as separate OS mappings, which it would unmap on free).
const RESERVE_CHUNK: usize = 1 << 20;

/// Fault `mib` MiB of heap in and give it back to the allocator, which keeps it (call after
/// [`keep_freed_memory`]): later allocations of any size, on any thread, are carved from
/// pages that are already backed. Returns the resident size it reached, MiB, from
/// `/proc/self/statm` (0 where there is none).
pub fn reserve_heap(mib: u32) -> u64 {
    let chunks = (mib as usize) * ((1 << 20) / RESERVE_CHUNK);
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(chunks);
    for _ in 0..chunks {
        // Non-zero, so that every page is written (a zeroed allocation may skip pages the
        // kernel zeroes anyway, and leave them unbacked).
        held.push(std::hint::black_box(vec![1u8; RESERVE_CHUNK]));
    }
    let resident = resident_mib();
    drop(held);
    resident
}

/// The process's resident size, MiB (`/proc/self/statm`; 0 where there is none).
pub fn resident_mib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf reads a constant of the system; no pointer is involved.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (pages * u64::try_from(page).unwrap_or(4096)) >> 20
}

#[cfg(test)]
mod tests {
    #[test]
    fn purging_is_turned_off() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert!(
                super::keep_freed_memory(),
                "mimalloc's purge_delay not found"
            );
            // SAFETY: as above.
            assert_eq!(
                unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) },
                -1
            );
        }
    }

    #[test]
    fn a_reserve_is_resident_when_it_returns() {
        let before = super::resident_mib();
        let reached = super::reserve_heap(64);
        assert!(
            reached >= before + 60,
            "resident {before} MiB before, {reached} MiB with a 64 MiB reserve"
        );
    }
}

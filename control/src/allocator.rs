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
}

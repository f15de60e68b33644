//! Per-thread lcore facts and the TSC.

use dpdk_sys as sys;

use super::eal::raw_lcore_id;

/// The calling thread's lcore id; `None` on a thread the EAL did not create or register.
#[inline]
pub fn lcore_id() -> Option<u32> {
    let id = raw_lcore_id();
    (id < sys::RTE_MAX_LCORE).then_some(id)
}

/// The CPU's timestamp counter (`rte_rdtsc`); ticks per second are [`super::Eal::tsc_hz`].
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: reads the TSC (rdtsc instruction); no memory is touched.
    unsafe { sys::rvs_rdtsc() }
}

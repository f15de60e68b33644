//! Raw bindings to DPDK (>= 22.11, the system's `libdpdk`), generated at build time with
//! bindgen from the same flags as the C shim (`src/shim.c`) that wraps DPDK's static inline
//! functions as `rvs_*` symbols (`rvs_rx_burst`, `rvs_tx_burst`, `rvs_pktmbuf_alloc`, ...).
//!
//! Everything here is `unsafe` FFI with DPDK's own contracts; the safe wrapper lives in the
//! dataplane's DPDK shell. Linking is dynamic by default (Debian's EAL loads its PMD plugins
//! itself); the `static` feature links DPDK and its drivers from the static archives.
#![allow(
    unsafe_code,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// `RTE_BIT64(63)`: clang's macro evaluation drops it (it does not fit an `i64`); the shim
/// checks this value against the header at compile time.
pub const RTE_ETH_RSS_L3_SRC_ONLY: u64 = 1 << 63;

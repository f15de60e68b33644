//! rvs fast path. The engine modules are sans-IO: they take packets (as parsed facts) and
//! `now` in milliseconds and return verdicts; they never read a clock and never touch DPDK.

pub mod addr;
pub mod config;
pub mod conn;
pub mod counters;
pub mod defense;
pub mod dest_stats;
// The DPDK shell: with `dpdk-sys` and `mem`, the only `unsafe` (denied elsewhere by the
// workspace lint).
#[cfg(feature = "dpdk")]
#[allow(unsafe_code)]
pub mod dpdk;
pub mod l3;
pub mod mem;
pub mod pipeline;
pub mod proto;
pub mod rng;
pub mod sched;
pub mod shard;
pub mod sim;
pub mod timer;
pub mod wire;

//! The DPDK shell: a safe wrapper over `dpdk-sys` (our bindings to the system DPDK 22.11).
//!
//! This module and `dpdk-sys` are the only places with `unsafe`; every block says why it is
//! sound. What the wrapper guarantees, and how:
//!
//! - **One EAL per process.** [`Eal::init`] succeeds once; a second call (even after the
//!   first EAL was cleaned up, which DPDK cannot undo) is [`DpdkError::AlreadyInitialized`].
//!   Every other constructor ([`Mempool::new`], [`Port::configure`], [`ring()`]) fails with
//!   [`DpdkError::NotInitialized`] unless the EAL is up.
//! - **Teardown order.** Mempools, ports and rings count themselves as live; the EAL is only
//!   cleaned up (`rte_eal_cleanup`) when none is left, so no DPDK object outlives the memory
//!   it lives in. A [`Port`] holds a clone of its rx [`Mempool`], so the pool outlives the
//!   port's queues. An [`Mbuf`] does not borrow its pool (it is sent between lcores): a
//!   pool whose mbufs are not all back when it is dropped is leaked rather than freed (and
//!   then the EAL stays up too), so a stray mbuf never points into freed memory.
//! - **Mbuf ownership.** An [`Mbuf`] owns one `rte_mbuf` and frees it on drop. `rx_burst`
//!   hands mbufs to the caller; `tx_burst` takes the ones the PMD accepted out of the
//!   caller's vector and leaves the rest there.
//! - **Queues.** A DPDK queue is single-threaded. A [`Port`] is `Send` but not `Sync`, and
//!   a port id can be configured by only one [`Port`] at a time, so two threads never poll
//!   the same queue. [`Port::into_queues`] splits a started port into per-worker
//!   [`PortQueue`]s (each owns its rx and tx queue index, `Send`, not `Sync`) and a
//!   [`PortStatsReader`] for the control thread; the port is stopped and closed when the
//!   last of them is dropped, never under a poller.
//! - **Rings.** [`ring()`] is SP/SC; `Producer<Mbuf>::push_burst` and
//!   `Consumer<Mbuf>::pop_burst` move a whole burst in one ring operation.
//! - **Lcores.** [`Eal::launch`] runs a `Send + 'static` closure on a worker lcore; the EAL
//!   waits for every worker before it is cleaned up.

mod eal;
mod error;
mod lcore;
mod mbuf;
mod mempool;
mod port;
mod ring;
mod signal;

pub use eal::Eal;
pub use error::DpdkError;
pub use lcore::{lcore_id, rdtsc};
pub use mbuf::Mbuf;
pub use mempool::{Mempool, DEFAULT_DATA_ROOM};
pub use port::{softrss, Offloads, Port, PortOpts, PortQueue, PortStats, PortStatsReader};
pub use ring::{ring, Consumer, Producer, RingItem};
pub use signal::{install_stop_handler, stop_requested};

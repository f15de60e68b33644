//! L3 presence: what rvs does so that it can be a host on its networks at all.
//!
//! Under IPVS the kernel did this work: it answered ARP and Neighbor Discovery for the VIPs
//! and the appliance's addresses, routed each forwarded packet (FIB lookup, next hop) and
//! resolved that next hop's MAC (the `neigh` layer, with its hold queue and probes). rvs owns
//! its NICs through DPDK, so no kernel sees these packets: rvs routes and resolves itself.
//!
//! - [`route`]: longest-prefix-match tables (IPv4, IPv6), built off the hot path and shared
//!   read-only by the workers: destination -> (port, address to resolve).
//! - [`neigh`]: the neighbor table (ARP / ND): address -> MAC, with Linux's states, probes,
//!   aging and per-entry hold queues.
//!
//! Both are sans-IO like the engine: they take `now` in milliseconds and return what to do
//! (send to this MAC, solicit that address, free this packet); building and sending ARP or
//! ND frames is the caller's job.

pub mod neigh;
pub mod route;

pub use neigh::{
    NeighDrop, NeighError, NeighInfo, NeighParams, NeighState, NeighStats, NeighTable, Resolve,
};
pub use route::{Route, RouteError, RouteTable};

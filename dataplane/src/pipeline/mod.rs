//! The packet path around the engine: buffers, steering across workers, and (with the wire
//! views) parse, forward and the appliance's own L2/L3 presence. Sans-IO like the engine:
//! the DPDK shell and `rvsd replay` drive the same code.

pub mod buf;
pub mod exception;
pub mod frag;
pub mod frag_hold;
pub mod icmp_limit;
pub mod local;
pub mod rewrite;
pub mod rss;
pub mod steer;
pub mod token_bucket;
pub mod worker;

// The stages of the worker's path, each adding to one `impl Worker` (see `worker`).
mod addr_set;
mod arp;
mod burst;
mod fam;
mod fragment;
mod icmp;
mod ingress;
mod lb;
mod ndisc;
mod neigh;
mod next_hop;
mod path_counters;
mod presence;
mod xmit;
mod xmit_dr;
mod xmit_nat;
mod xmit_tunnel;

//! rvs control plane: the configuration front end shared by `rvsd` and `rvsadm`.
//!
//! - [`rules`]: ipvsadm command lines (`-A`, `-a`, `--set`, ...), the rule set they build,
//!   its `ipvsadm-save` form, and the engine snapshots it gives.
//! - [`appconfig`]: the appliance's TOML file (ports, neighbors, routes, sysctls, engine
//!   sizing, firewall-mark match rules).
//! - [`keepalived`]: the operator's keepalived.conf (its LVS part) as rules; [`health`]: its
//!   checkers' semantics.
//! - [`replay`]: `rvsd replay`, the packet path over a capture in virtual time.
//! - [`metrics`], [`ipvs_metrics`]: the Prometheus text of every counter; [`metrics_http`]
//!   serves it at `/metrics`.
//! - [`run`]: `rvsd run`, the appliance on DPDK.
//! - The live control plane: [`protocol`] (requests and replies), [`socket`] (the control
//!   socket), [`controller`] (the rule set's owner, sans-IO), [`snapshot`] (its snapshot
//!   builder, which rebuilds only what changed), [`control_thread`] (its loop),
//!   [`link`] (a worker's command ring), [`stats`] and [`estimator`] (counters across workers
//!   and snapshots, rates), [`adm`] (`rvsadm`).

pub mod adm;
pub mod allocator;
pub mod appconfig;
pub mod control_thread;
pub mod controller;
pub mod estimator;
pub mod health;
pub mod ipvs_metrics;
pub mod keepalived;
#[cfg(feature = "dpdk")]
pub mod lab;
pub mod link;
pub mod metrics;
pub mod metrics_http;
pub mod protocol;
pub mod replay;
pub mod rules;
#[cfg(feature = "dpdk")]
pub mod run;
pub mod snapshot;
pub mod socket;
pub mod stats;

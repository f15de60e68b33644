//! rvs control plane: the configuration front end shared by `rvsd` and `rvsadm`.
//!
//! - [`rules`]: ipvsadm command lines (`-A`, `-a`, `--set`, ...), the rule set they build,
//!   its `ipvsadm-save` form, and the engine snapshots it gives.
//! - [`appconfig`]: the appliance's TOML file (ports, neighbors, routes, sysctls, engine
//!   sizing, firewall-mark match rules).
//! - [`replay`]: `rvsd replay`, the packet path over a capture in virtual time.
//! - [`metrics`]: the Prometheus text of every counter.
//! - [`run`]: `rvsd run`, the appliance on DPDK.

pub mod appconfig;
pub mod lab;
pub mod metrics;
pub mod replay;
pub mod rules;
pub mod run;

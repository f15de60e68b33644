//! The appliance's TOML file (`rvsd replay --config`, `rvsd run --config`): ports and their
//! addresses, static neighbors, routes, IPVS's sysctls, engine sizing, firewall-mark match
//! rules, tunnel settings, the control socket, the metrics listener, the health checks'
//! keepalived file, the exception path's budget and peers and the rate of ICMP errors.
//! Virtual services are not here: they come from ipvsadm rules ([`crate::rules`]). Every key
//! is documented in `docs/config.md`.
//!
//! [`parse`] refuses anything it does not understand (an unknown key, a wrong type, a bad
//! MAC, address or prefix, a prefix with host bits set, a duplicate port name, a neighbor or
//! route naming an unknown port, a gateway off its port's connected prefixes, addresses
//! overlapping between ports, a value out of range), naming the line, column and key:
//! `appliance.toml line 7, column 7, key port[0].mac: "02:00:00:00:0:1" is not a MAC
//! address (want six hex pairs)`.
//!
//! The types are plain std types (`IpAddr`, `[u8; 6]` MACs, `(IpAddr, u8)` prefixes) so that
//! the packet path can build its own tables from them.
//!
//! # Where each part lives
//! - `errors`: [`ConfigFileError`], and the line, column and key of serde's errors.
//! - `raw`: the file as serde reads it, values with their spans.
//! - `values`: reading one value (integer in range, MAC, address, prefix) with its error.
//! - One file per table, its type, defaults, reader and checks: `ports` (`[[port]]`,
//!   `[[neighbor]]`, `[[route]]`), `sysctl` (`[defense]`, `[ipvs]`), `engine`, `fwmark`,
//!   `tunnel`, `control`, `metrics`, `health`, `exception`, `icmp`.
//! - `lab`: the embedded lab configuration.

use std::net::IpAddr;
use std::path::Path;

mod control;
mod engine;
mod errors;
mod exception;
mod fwmark;
mod health;
mod icmp;
mod lab;
mod metrics;
mod ports;
mod raw;
mod sysctl;
mod tunnel;
mod values;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use control::{ControlConfig, DEFAULT_SOCKET};
pub use engine::{EngineConfig, RssKey, DEFAULT_CONNS_PER_WORKER, DEFAULT_MAX_DESTS};
pub use errors::ConfigFileError;
pub use exception::{MAX_BUDGET_PPS, MAX_PEERS};
pub use fwmark::FwmarkConfig;
pub use health::HealthConfig;
pub use lab::{default_lab, DEFAULT_LAB_TOML};
pub use metrics::{MetricsConfig, DEFAULT_METRICS_LISTEN};
pub use ports::{NeighborConfig, PortConfig, RouteConfig, DEFAULT_MTU};
pub use rvs_dataplane::pipeline::exception::ExceptionConfig;
pub use rvs_dataplane::pipeline::icmp_limit::IcmpLimitConfig;
pub use sysctl::{DefenseConfig, IpvsConfig};
pub use tunnel::TunnelConfig;
pub use values::{parse_mac, Mac, Prefix};

use errors::serde_error;
use raw::RawFile;
use values::Ctx;

/// The whole appliance configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppConfig {
    pub ports: Vec<PortConfig>,
    pub neighbors: Vec<NeighborConfig>,
    pub routes: Vec<RouteConfig>,
    pub defense: DefenseConfig,
    pub ipvs: IpvsConfig,
    pub engine: EngineConfig,
    pub fwmarks: Vec<FwmarkConfig>,
    pub tunnel: TunnelConfig,
    pub control: ControlConfig,
    pub metrics: MetricsConfig,
    pub health: HealthConfig,
    pub exception: ExceptionConfig,
    pub icmp: IcmpLimitConfig,
}

/// Parse and check an appliance TOML text. Errors carry no file name
/// ([`ConfigFileError::in_file`] adds one; [`load`] does).
pub fn parse(text: &str) -> Result<AppConfig, ConfigFileError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| serde_error(text, &e))?;
    let c = Ctx { text };
    let ports = ports::read_ports(&c, &raw.port)?;
    let all_addrs: Vec<IpAddr> = ports
        .iter()
        .flat_map(|p| p.addrs.iter().map(|a| a.0))
        .collect();
    let neighbors = ports::read_neighbors(&c, &raw.neighbor, &ports, &all_addrs)?;
    let routes = ports::read_routes(&c, &raw.route, &ports, &all_addrs)?;
    // Engine before defense: low_watermark is checked against the capacities.
    let engine = engine::read_engine(&c, &raw.engine)?;
    let defense = sysctl::read_defense(&c, &raw.defense, &engine)?;
    let ipvs = sysctl::read_ipvs(&c, &raw.ipvs)?;
    let fwmarks = fwmark::read_fwmarks(&c, &raw.fwmark)?;
    let tunnel = tunnel::read_tunnel(&c, &raw.tunnel, &all_addrs)?;
    let control = control::read_control(&c, &raw.control)?;
    let metrics = metrics::read_metrics(&c, &raw.metrics)?;
    let health = health::read_health(&c, &raw.health)?;
    let exception = exception::read_exception(&c, &raw.exception, &all_addrs)?;
    let icmp = icmp::read_icmp(&c, &raw.icmp)?;
    Ok(AppConfig {
        ports,
        neighbors,
        routes,
        defense,
        ipvs,
        engine,
        fwmarks,
        tunnel,
        control,
        metrics,
        health,
        exception,
        icmp,
    })
}

/// Read and parse the file at `path`; errors name the file.
pub fn load(path: &Path) -> Result<AppConfig, ConfigFileError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigFileError {
        file: Some(name.clone()),
        line: 0,
        column: 0,
        key: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&text).map_err(|e| e.in_file(name))
}

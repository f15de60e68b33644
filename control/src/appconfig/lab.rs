//! The embedded lab configuration the appliance runs when given no file.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::control::ControlConfig;
use super::engine::EngineConfig;
use super::metrics::MetricsConfig;
use super::ports::{NeighborConfig, PortConfig, DEFAULT_MTU};
use super::sysctl::{DefenseConfig, IpvsConfig};
use super::tunnel::TunnelConfig;
use super::AppConfig;

/// The embedded lab configuration, as TOML (`docs/config.md` shows the same text).
pub const DEFAULT_LAB_TOML: &str = r#"# rvs lab appliance: one port, two real servers on its IPv4 subnet.
[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24", "fd00::1/64"]

[[neighbor]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"
port = "p0"

[[neighbor]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"
port = "p0"
"#;

/// The lab configuration the appliance runs when given no file: port `p0` (MAC
/// 02:00:00:00:00:01, 10.0.0.1/24 and fd00::1/64, the EAL's first device), static neighbors
/// 10.0.0.11 (02:00:00:00:00:11) and 10.0.0.12 (02:00:00:00:00:12) for two real servers,
/// everything else at its default. Equal to `parse(DEFAULT_LAB_TOML)`.
pub fn default_lab() -> AppConfig {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let neighbor = |last: u8, mac_last: u8| NeighborConfig {
        ip: v4(10, 0, 0, last),
        mac: [0x02, 0, 0, 0, 0, mac_last],
        port: "p0".into(),
    };
    AppConfig {
        ports: vec![PortConfig {
            name: "p0".into(),
            mac: [0x02, 0, 0, 0, 0, 0x01],
            addrs: vec![
                (v4(10, 0, 0, 1), 24),
                (IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)), 64),
            ],
            device: None,
            mtu: DEFAULT_MTU,
            vlan: None,
        }],
        neighbors: vec![neighbor(11, 0x11), neighbor(12, 0x12)],
        routes: Vec::new(),
        defense: DefenseConfig::default(),
        ipvs: IpvsConfig::default(),
        engine: EngineConfig::default(),
        fwmarks: Vec::new(),
        tunnel: TunnelConfig::default(),
        health: Default::default(),
        control: ControlConfig::default(),
        metrics: MetricsConfig::default(),
        exception: Default::default(),
        icmp: Default::default(),
    }
}
#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    #[test]
    fn default_lab_is_its_documented_toml() {
        assert_eq!(
            parse(DEFAULT_LAB_TOML).unwrap_or_else(|e| panic!("{e}")),
            default_lab()
        );
        let doc = include_str!("../../../docs/config.md");
        assert!(
            doc.contains(DEFAULT_LAB_TOML),
            "docs/config.md must show DEFAULT_LAB_TOML"
        );
        let lab = default_lab();
        assert_eq!(lab.neighbors[1].mac, [2, 0, 0, 0, 0, 0x12]);
    }
}

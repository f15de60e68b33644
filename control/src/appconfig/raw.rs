//! The file as serde reads it: every table and key, values kept with their spans
//! (`toml::Spanned`) so that a refusal can name its line and column. Unknown keys are refused
//! here (`deny_unknown_fields`); everything else is checked by the readers of each table.

use serde::Deserialize;
use toml::Spanned;

pub(super) type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) port: Vec<S<RawPort>>,
    #[serde(default)]
    pub(super) neighbor: Vec<S<RawNeighbor>>,
    #[serde(default)]
    pub(super) route: Vec<S<RawRoute>>,
    #[serde(default)]
    pub(super) defense: RawDefense,
    #[serde(default)]
    pub(super) ipvs: RawIpvs,
    #[serde(default)]
    pub(super) engine: RawEngine,
    #[serde(default)]
    pub(super) fwmark: Vec<S<RawFwmark>>,
    #[serde(default)]
    pub(super) tunnel: RawTunnel,
    #[serde(default)]
    pub(super) control: RawControl,
    #[serde(default)]
    pub(super) metrics: RawMetrics,
    #[serde(default)]
    pub(super) health: RawHealth,
    #[serde(default)]
    pub(super) exception: RawException,
    #[serde(default)]
    pub(super) icmp: RawIcmp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPort {
    pub(super) name: S<String>,
    pub(super) mac: S<String>,
    #[serde(default)]
    pub(super) addrs: Vec<S<String>>,
    pub(super) device: Option<S<String>>,
    pub(super) mtu: Option<S<i64>>,
    pub(super) vlan: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNeighbor {
    pub(super) ip: S<String>,
    pub(super) mac: S<String>,
    pub(super) port: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) prefix: S<String>,
    pub(super) via: Option<S<String>>,
    pub(super) port: S<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefense {
    pub(super) drop_entry: Option<S<i64>>,
    pub(super) drop_packet: Option<S<i64>>,
    pub(super) secure_tcp: Option<S<i64>>,
    pub(super) am_droprate: Option<S<i64>>,
    pub(super) low_watermark: Option<S<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIpvs {
    pub(super) conn_reuse_mode: Option<S<i64>>,
    pub(super) expire_nodest_conn: Option<bool>,
    pub(super) expire_quiescent_template: Option<bool>,
    pub(super) sloppy_tcp: Option<bool>,
    pub(super) sloppy_sctp: Option<bool>,
    pub(super) timeout_tcp: Option<S<i64>>,
    pub(super) timeout_tcpfin: Option<S<i64>>,
    pub(super) timeout_udp: Option<S<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    pub(super) workers: Option<S<i64>>,
    pub(super) conns_per_worker: Option<S<i64>>,
    pub(super) conns_v6_per_worker: Option<S<i64>>,
    pub(super) max_dests: Option<S<i64>>,
    #[serde(default)]
    pub(super) eal_args: Vec<String>,
    pub(super) rss_key: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFwmark {
    pub(super) mark: S<i64>,
    pub(super) proto: Option<S<String>>,
    pub(super) prefix: S<String>,
    pub(super) ports: Option<S<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTunnel {
    pub(super) mtu: Option<S<i64>>,
    pub(super) source_v4: Option<S<String>>,
    pub(super) source_v6: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    pub(super) socket: Option<S<String>>,
    pub(super) group: Option<S<String>>,
    pub(super) heap_reserve_mib: Option<S<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub(super) keepalived: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawException {
    pub(super) budget_pps: Option<S<i64>>,
    #[serde(default)]
    pub(super) peers: Vec<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIcmp {
    pub(super) msgs_per_sec: Option<S<i64>>,
    pub(super) msgs_burst: Option<S<i64>>,
}

//! `[defense]` and `[ipvs]`: IPVS's sysctls (`/proc/sys/net/ipv4/vs/...`) and its three
//! settable timeouts, and the engine's `Sysctl` they give.

use rvs_dataplane::config::Sysctl;
use rvs_dataplane::proto::{Timeouts, MAX_TIMEOUT_S};

use super::engine::EngineConfig;
use super::raw::{RawDefense, RawIpvs, S};
use super::values::{Ctx, R};
use super::AppConfig;

/// `[defense]`: IPVS's defense sysctls (`/proc/sys/net/ipv4/vs/...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefenseConfig {
    pub drop_entry: u8,
    pub drop_packet: u8,
    pub secure_tcp: u8,
    pub am_droprate: u32,
    /// Free conn entries per shard below which a shard is out of memory; 0 = capacity/16.
    pub low_watermark: u32,
}

impl Default for DefenseConfig {
    fn default() -> Self {
        let s = Sysctl::default();
        DefenseConfig {
            drop_entry: s.drop_entry,
            drop_packet: s.drop_packet,
            secure_tcp: s.secure_tcp,
            am_droprate: s.am_droprate,
            low_watermark: s.low_watermark,
        }
    }
}

/// `[ipvs]`: IPVS's other sysctls that the engine follows, and its three settable timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvsConfig {
    pub conn_reuse_mode: u8,
    pub expire_nodest_conn: bool,
    pub expire_quiescent_template: bool,
    pub sloppy_tcp: bool,
    pub sloppy_sctp: bool,
    /// Seconds (TCP ESTABLISHED), as `ipvsadm --set`'s first value.
    pub timeout_tcp: u32,
    /// Seconds (TCP FIN_WAIT).
    pub timeout_tcpfin: u32,
    /// Seconds (UDP).
    pub timeout_udp: u32,
}

impl Default for IpvsConfig {
    fn default() -> Self {
        let s = Sysctl::default();
        let (tcp, fin, udp) = Timeouts::default().tcp_tcpfin_udp();
        IpvsConfig {
            conn_reuse_mode: s.conn_reuse_mode,
            expire_nodest_conn: s.expire_nodest_conn,
            expire_quiescent_template: s.expire_quiescent_template,
            sloppy_tcp: s.sloppy_tcp,
            sloppy_sctp: s.sloppy_sctp,
            timeout_tcp: tcp,
            timeout_tcpfin: fin,
            timeout_udp: udp,
        }
    }
}

impl AppConfig {
    /// The engine's sysctls from `[defense]` and `[ipvs]`.
    pub fn sysctl(&self) -> Sysctl {
        let mut timeouts = Timeouts::default();
        timeouts.set_tcp_tcpfin_udp(
            self.ipvs.timeout_tcp,
            self.ipvs.timeout_tcpfin,
            self.ipvs.timeout_udp,
        );
        Sysctl {
            drop_entry: self.defense.drop_entry,
            drop_packet: self.defense.drop_packet,
            secure_tcp: self.defense.secure_tcp,
            am_droprate: self.defense.am_droprate,
            low_watermark: self.defense.low_watermark,
            conn_reuse_mode: self.ipvs.conn_reuse_mode,
            expire_nodest_conn: self.ipvs.expire_nodest_conn,
            expire_quiescent_template: self.ipvs.expire_quiescent_template,
            sloppy_tcp: self.ipvs.sloppy_tcp,
            sloppy_sctp: self.ipvs.sloppy_sctp,
            timeouts,
        }
    }
}

/// `[defense]`; `low_watermark` must be below both capacities of `engine`.
pub(super) fn read_defense(c: &Ctx, d: &RawDefense, engine: &EngineConfig) -> R<DefenseConfig> {
    let (conns, conns_v6) = (engine.conns_per_worker, engine.conns_v6_per_worker);
    let dd = DefenseConfig::default();
    let low_watermark = c.int(
        &d.low_watermark,
        "defense.low_watermark",
        0,
        i64::from(u32::MAX),
        i64::from(dd.low_watermark),
    )? as u32;
    if let Some(s) = &d.low_watermark {
        let cap = conns.min(conns_v6);
        if low_watermark >= cap {
            return Err(c.err(
                s.span(),
                "defense.low_watermark",
                format!(
                    "{low_watermark} free entries is not below a shard's capacity \
                     ({conns} IPv4, {conns_v6} IPv6 entries): the shard would always be out \
                     of memory"
                ),
            ));
        }
    }
    Ok(DefenseConfig {
        drop_entry: c.int(
            &d.drop_entry,
            "defense.drop_entry",
            0,
            3,
            i64::from(dd.drop_entry),
        )? as u8,
        drop_packet: c.int(
            &d.drop_packet,
            "defense.drop_packet",
            0,
            3,
            i64::from(dd.drop_packet),
        )? as u8,
        secure_tcp: c.int(
            &d.secure_tcp,
            "defense.secure_tcp",
            0,
            3,
            i64::from(dd.secure_tcp),
        )? as u8,
        am_droprate: c.int(
            &d.am_droprate,
            "defense.am_droprate",
            1,
            i64::from(u32::MAX),
            i64::from(dd.am_droprate),
        )? as u32,
        low_watermark,
    })
}

/// `[ipvs]`.
pub(super) fn read_ipvs(c: &Ctx, v: &RawIpvs) -> R<IpvsConfig> {
    let di = IpvsConfig::default();
    let t = |s: &Option<S<i64>>, key: &str, def: u32| -> R<u32> {
        Ok(c.int(s, key, 1, i64::from(MAX_TIMEOUT_S), i64::from(def))? as u32)
    };
    Ok(IpvsConfig {
        conn_reuse_mode: c.int(
            &v.conn_reuse_mode,
            "ipvs.conn_reuse_mode",
            0,
            3,
            i64::from(di.conn_reuse_mode),
        )? as u8,
        expire_nodest_conn: v.expire_nodest_conn.unwrap_or(di.expire_nodest_conn),
        expire_quiescent_template: v
            .expire_quiescent_template
            .unwrap_or(di.expire_quiescent_template),
        sloppy_tcp: v.sloppy_tcp.unwrap_or(di.sloppy_tcp),
        sloppy_sctp: v.sloppy_sctp.unwrap_or(di.sloppy_sctp),
        timeout_tcp: t(&v.timeout_tcp, "ipvs.timeout_tcp", di.timeout_tcp)?,
        timeout_tcpfin: t(&v.timeout_tcpfin, "ipvs.timeout_tcpfin", di.timeout_tcpfin)?,
        timeout_udp: t(&v.timeout_udp, "ipvs.timeout_udp", di.timeout_udp)?,
    })
}

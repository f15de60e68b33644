//! The per-service and per-dest Prometheus series, with node_exporter's ipvs collector's
//! label names and meanings (`local_address`, `local_port`, `remote_address`, `remote_port`,
//! `proto`, `local_mark`), so that one relabel rule (`docs/metrics.md`) turns rvs's
//! `rvs_ipvs_*` into the `node_ipvs_*` an existing IPVS dashboard reads.
//!
//! Label values as node_exporter derives them from `/proc/net/ip_vs`: `proto` is `TCP`,
//! `UDP`, `SCTP`, or `FWM` for a firewall-mark service (then `local_address` is empty,
//! `local_port` is 0 and `local_mark` the mark as 8 upper-case hex digits, as the kernel
//! prints it); addresses without brackets.
//!
//! Counters are raw (a `-Z` resets what `rvsadm -L --stats` shows, never a series); the
//! counts are summed over workers from their cells, without locks.

use std::fmt::Write as _;

use crate::controller::Controller;
use crate::protocol::Stats;
use crate::rules::ServiceId;

/// One counter of a [`Stats`].
type Field = fn(&Stats) -> u64;

/// The label set of a service (the first four of node_exporter's six).
pub(crate) struct SvcLabels {
    local_address: String,
    local_port: u16,
    proto: &'static str,
    local_mark: String,
}

pub(crate) fn svc_labels(id: &ServiceId) -> SvcLabels {
    match *id {
        ServiceId::Addr { proto, addr, port } => SvcLabels {
            local_address: addr.to_string(),
            local_port: port,
            proto: match proto as u8 {
                6 => "TCP",
                17 => "UDP",
                _ => "SCTP",
            },
            local_mark: String::new(),
        },
        ServiceId::Fwmark { mark, .. } => SvcLabels {
            local_address: String::new(),
            local_port: 0,
            proto: "FWM",
            local_mark: format!("{mark:08X}"),
        },
    }
}

impl SvcLabels {
    pub(crate) fn service(&self) -> String {
        format!(
            "local_address=\"{}\",local_port=\"{}\",proto=\"{}\",local_mark=\"{}\"",
            self.local_address, self.local_port, self.proto, self.local_mark
        )
    }

    pub(crate) fn backend(&self, addr: &std::net::IpAddr, port: u16) -> String {
        format!(
            "local_address=\"{}\",local_port=\"{}\",remote_address=\"{addr}\",remote_port=\"{port}\",proto=\"{}\",local_mark=\"{}\"",
            self.local_address, self.local_port, self.proto, self.local_mark
        )
    }
}

/// A family's lines: HELP and TYPE once, then its samples.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    rows: Vec<(String, u64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind,
            rows: Vec::new(),
        }
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, v) in &self.rows {
            if labels.is_empty() {
                let _ = writeln!(out, "{} {v}", self.name);
            } else {
                let _ = writeln!(out, "{}{{{labels}}} {v}", self.name);
            }
        }
    }
}

/// The series of every service and dest in force, and the appliance's totals.
pub fn render(ctl: &Controller) -> String {
    let reg = ctl.stats();
    let totals = reg.totals();
    let mut fams: Vec<Family> = Vec::new();
    let stat_fields: [(&str, Field); 5] = [
        ("connections", |s| s.conns),
        ("incoming_packets", |s| s.inpkts),
        ("outgoing_packets", |s| s.outpkts),
        ("incoming_bytes", |s| s.inbytes),
        ("outgoing_bytes", |s| s.outbytes),
    ];
    // The appliance's totals: node_exporter's five counters.
    const TOTAL_NAMES: [(&str, &str); 5] = [
        (
            "rvs_ipvs_connections_total",
            "The total number of connections made.",
        ),
        (
            "rvs_ipvs_incoming_packets_total",
            "The total number of incoming packets.",
        ),
        (
            "rvs_ipvs_outgoing_packets_total",
            "The total number of outgoing packets.",
        ),
        (
            "rvs_ipvs_incoming_bytes_total",
            "The total amount of incoming data.",
        ),
        (
            "rvs_ipvs_outgoing_bytes_total",
            "The total amount of outgoing data.",
        ),
    ];
    for ((name, help), (_, get)) in TOTAL_NAMES.iter().zip(stat_fields.iter()) {
        let mut f = Family::new(name, "counter", help);
        f.rows.push((String::new(), get(&totals)));
        fams.push(f);
    }
    let mut active = Family::new(
        "rvs_ipvs_backend_connections_active",
        "gauge",
        "The current active connections by local and remote address.",
    );
    let mut inactive = Family::new(
        "rvs_ipvs_backend_connections_inactive",
        "gauge",
        "The current inactive connections by local and remote address.",
    );
    let mut weight = Family::new(
        "rvs_ipvs_backend_weight",
        "gauge",
        "The current backend weight by local and remote address.",
    );
    let mut persist = Family::new(
        "rvs_ipvs_backend_persistent_connections",
        "gauge",
        "Persistence templates bound to the backend (ipvsadm's PersistConn).",
    );
    const BACKEND_NAMES: [(&str, &str); 5] = [
        (
            "rvs_ipvs_backend_connections_total",
            "Connections scheduled to the backend.",
        ),
        (
            "rvs_ipvs_backend_incoming_packets_total",
            "Packets from clients to the backend.",
        ),
        (
            "rvs_ipvs_backend_outgoing_packets_total",
            "Packets from the backend to clients (NAT).",
        ),
        (
            "rvs_ipvs_backend_incoming_bytes_total",
            "Bytes from clients to the backend.",
        ),
        (
            "rvs_ipvs_backend_outgoing_bytes_total",
            "Bytes from the backend to clients (NAT).",
        ),
    ];
    let mut backend: Vec<Family> = BACKEND_NAMES
        .iter()
        .map(|(n, h)| Family::new(n, "counter", h))
        .collect();
    const SERVICE_NAMES: [(&str, &str); 5] = [
        (
            "rvs_ipvs_service_connections_total",
            "Connections scheduled by the service.",
        ),
        (
            "rvs_ipvs_service_incoming_packets_total",
            "Packets from clients to the service's backends.",
        ),
        (
            "rvs_ipvs_service_outgoing_packets_total",
            "Packets from the service's backends to clients (NAT).",
        ),
        (
            "rvs_ipvs_service_incoming_bytes_total",
            "Bytes from clients to the service's backends.",
        ),
        (
            "rvs_ipvs_service_outgoing_bytes_total",
            "Bytes from the service's backends to clients (NAT).",
        ),
    ];
    let mut service: Vec<Family> = SERVICE_NAMES
        .iter()
        .map(|(n, h)| Family::new(n, "counter", h))
        .collect();
    const RATE_NAMES: [(&str, &str); 5] = [
        (
            "rvs_ipvs_service_rate_connections",
            "Connections per second (IPVS's 2 s estimator).",
        ),
        (
            "rvs_ipvs_service_rate_incoming_packets",
            "Incoming packets per second (IPVS's 2 s estimator).",
        ),
        (
            "rvs_ipvs_service_rate_outgoing_packets",
            "Outgoing packets per second (IPVS's 2 s estimator).",
        ),
        (
            "rvs_ipvs_service_rate_incoming_bytes",
            "Incoming bytes per second (IPVS's 2 s estimator).",
        ),
        (
            "rvs_ipvs_service_rate_outgoing_bytes",
            "Outgoing bytes per second (IPVS's 2 s estimator).",
        ),
    ];
    let mut rate: Vec<Family> = RATE_NAMES
        .iter()
        .map(|(n, h)| Family::new(n, "gauge", h))
        .collect();
    let mut available = Family::new(
        "rvs_ipvs_service_backends_available",
        "gauge",
        "Backends of the service with a weight above 0 (0: the service drops new connections).",
    );
    let mut backends = Family::new(
        "rvs_ipvs_service_backends",
        "gauge",
        "Backends of the service.",
    );
    for s in &ctl.rules().services {
        let id = s.spec.id;
        let l = svc_labels(&id);
        let sl = l.service();
        for d in &s.dests {
            let (_, t, _) = reg.dest(&(id, d.addr, d.port));
            let bl = l.backend(&d.addr, d.port);
            active.rows.push((bl.clone(), t.active));
            inactive.rows.push((bl.clone(), t.inactive));
            weight.rows.push((bl.clone(), d.weight.max(0) as u64));
            persist.rows.push((bl.clone(), t.persist));
            let st = Stats {
                conns: t.conns,
                inpkts: t.inpkts,
                outpkts: t.outpkts,
                inbytes: t.inbytes,
                outbytes: t.outbytes,
            };
            for (f, (_, get)) in backend.iter_mut().zip(stat_fields.iter()) {
                f.rows.push((bl.clone(), get(&st)));
            }
        }
        let (raw, r) = reg.service(s, true);
        for (f, (_, get)) in service.iter_mut().zip(stat_fields.iter()) {
            f.rows.push((sl.clone(), get(&raw)));
        }
        let rates = [r.cps, r.inpps, r.outpps, r.inbps, r.outbps];
        for (f, v) in rate.iter_mut().zip(rates) {
            f.rows.push((sl.clone(), v));
        }
        available.rows.push((
            sl.clone(),
            s.dests.iter().filter(|d| d.weight > 0).count() as u64,
        ));
        backends.rows.push((sl, s.dests.len() as u64));
    }
    fams.extend([active, inactive, weight, persist]);
    fams.extend(backend);
    fams.extend(service);
    fams.extend(rate);
    fams.push(available);
    fams.push(backends);
    let mut gen = Family::new(
        "rvs_config_generation",
        "gauge",
        "The generation of the rules in force (bumped by every change).",
    );
    gen.rows.push((String::new(), ctl.generation()));
    fams.push(gen);
    let mut out = String::new();
    for f in &fams {
        f.write(&mut out);
    }
    out
}

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

/// A series of a [`Table`]: name, type, help.
type Series = (&'static str, &'static str, &'static str);

/// The per-dest series, in the columns of the dests' table.
const DEST_SERIES: [Series; 9] = [
    (
        "rvs_ipvs_backend_connections_active",
        "gauge",
        "The current active connections by local and remote address.",
    ),
    (
        "rvs_ipvs_backend_connections_inactive",
        "gauge",
        "The current inactive connections by local and remote address.",
    ),
    (
        "rvs_ipvs_backend_weight",
        "gauge",
        "The current backend weight by local and remote address.",
    ),
    (
        "rvs_ipvs_backend_persistent_connections",
        "gauge",
        "Persistence templates bound to the backend (ipvsadm's PersistConn).",
    ),
    (
        "rvs_ipvs_backend_connections_total",
        "counter",
        "Connections scheduled to the backend.",
    ),
    (
        "rvs_ipvs_backend_incoming_packets_total",
        "counter",
        "Packets from clients to the backend.",
    ),
    (
        "rvs_ipvs_backend_outgoing_packets_total",
        "counter",
        "Packets from the backend to clients (NAT).",
    ),
    (
        "rvs_ipvs_backend_incoming_bytes_total",
        "counter",
        "Bytes from clients to the backend.",
    ),
    (
        "rvs_ipvs_backend_outgoing_bytes_total",
        "counter",
        "Bytes from the backend to clients (NAT).",
    ),
];

/// The per-service series, in the columns of the services' table.
const SERVICE_SERIES: [Series; 12] = [
    (
        "rvs_ipvs_service_connections_total",
        "counter",
        "Connections scheduled by the service.",
    ),
    (
        "rvs_ipvs_service_incoming_packets_total",
        "counter",
        "Packets from clients to the service's backends.",
    ),
    (
        "rvs_ipvs_service_outgoing_packets_total",
        "counter",
        "Packets from the service's backends to clients (NAT).",
    ),
    (
        "rvs_ipvs_service_incoming_bytes_total",
        "counter",
        "Bytes from clients to the service's backends.",
    ),
    (
        "rvs_ipvs_service_outgoing_bytes_total",
        "counter",
        "Bytes from the service's backends to clients (NAT).",
    ),
    (
        "rvs_ipvs_service_rate_connections",
        "gauge",
        "Connections per second (IPVS's 2 s estimator).",
    ),
    (
        "rvs_ipvs_service_rate_incoming_packets",
        "gauge",
        "Incoming packets per second (IPVS's 2 s estimator).",
    ),
    (
        "rvs_ipvs_service_rate_outgoing_packets",
        "gauge",
        "Outgoing packets per second (IPVS's 2 s estimator).",
    ),
    (
        "rvs_ipvs_service_rate_incoming_bytes",
        "gauge",
        "Incoming bytes per second (IPVS's 2 s estimator).",
    ),
    (
        "rvs_ipvs_service_rate_outgoing_bytes",
        "gauge",
        "Outgoing bytes per second (IPVS's 2 s estimator).",
    ),
    (
        "rvs_ipvs_service_backends_available",
        "gauge",
        "Backends of the service with a weight above 0 (0: the service drops new connections).",
    ),
    (
        "rvs_ipvs_service_backends",
        "gauge",
        "Backends of the service.",
    ),
];

/// Rows that share their labels across `N` series: a label set a row, a value a series.
struct Table<const N: usize> {
    labels: Vec<String>,
    vals: Vec<[u64; N]>,
}

impl<const N: usize> Default for Table<N> {
    fn default() -> Self {
        Table {
            labels: Vec::new(),
            vals: Vec::new(),
        }
    }
}

/// Longest decimal u64.
const U64_DIGITS: usize = 20;

impl<const N: usize> Table<N> {
    /// At most how long [`write`](Self::write) makes the text.
    fn text_len(&self, series: &[Series; N]) -> usize {
        let labels: usize = self.labels.iter().map(String::len).sum();
        series
            .iter()
            .map(|(name, kind, help)| {
                // "# HELP n h\n# TYPE n k\n", then "n{l} v\n" a row.
                2 * name.len()
                    + kind.len()
                    + help.len()
                    + 18
                    + labels
                    + self.labels.len() * (name.len() + 4 + U64_DIGITS)
            })
            .sum()
    }

    fn write(&self, out: &mut String, series: &[Series; N]) {
        let mut num = itoa::Buffer::new();
        for (col, (name, kind, help)) in series.iter().enumerate() {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, vals) in self.labels.iter().zip(&self.vals) {
                out.push_str(name);
                out.push('{');
                out.push_str(labels);
                out.push_str("} ");
                out.push_str(num.format(vals[col]));
                out.push('\n');
            }
        }
    }
}

/// The series of every service and dest in force, and the appliance's totals.
pub fn render(ctl: &Controller) -> String {
    let mut out = String::new();
    render_into(ctl, &mut out);
    out
}

/// [`render`], appended to `out` (room made once: a 100k-dest text is 150 MB).
pub fn render_into(ctl: &Controller, out: &mut String) {
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
    // The per-dest and per-service series: one label set a dest or service, built once, and
    // a column a series (100k dests: nine series each; cloning the labels into every row
    // took 1.4 KiB a dest and most of a scrape's time).
    let mut dests = Table::<9>::default();
    let mut services = Table::<12>::default();
    for s in &ctl.rules().services {
        let id = s.spec.id;
        let l = svc_labels(&id);
        for d in &s.dests {
            let (_, t, _) = reg.dest(&(id, d.addr, d.port));
            dests.labels.push(l.backend(&d.addr, d.port));
            dests.vals.push([
                t.active,
                t.inactive,
                d.weight.max(0) as u64,
                t.persist,
                t.conns,
                t.inpkts,
                t.outpkts,
                t.inbytes,
                t.outbytes,
            ]);
        }
        let (raw, r) = reg.service(s, true);
        services.labels.push(l.service());
        services.vals.push([
            raw.conns,
            raw.inpkts,
            raw.outpkts,
            raw.inbytes,
            raw.outbytes,
            r.cps,
            r.inpps,
            r.outpps,
            r.inbps,
            r.outbps,
            s.dests.iter().filter(|d| d.weight > 0).count() as u64,
            s.dests.len() as u64,
        ]);
    }
    let mut gen = Family::new(
        "rvs_config_generation",
        "gauge",
        "The generation of the rules in force (bumped by every change).",
    );
    gen.rows.push((String::new(), ctl.generation()));
    out.reserve(dests.text_len(&DEST_SERIES) + services.text_len(&SERVICE_SERIES) + 4096);
    for f in &fams {
        f.write(out);
    }
    dests.write(out, &DEST_SERIES);
    services.write(out, &SERVICE_SERIES);
    gen.write(out);
}

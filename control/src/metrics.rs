//! Prometheus exposition of every counter: the engine's per shard (labels `worker`,
//! `family`) and the packet path's per worker. Counters are read from the workers' lock-free
//! cells at render time (a scrape), never pushed.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use rvs_dataplane::counters::{Counters, MetricKind, Sample};
use rvs_dataplane::pipeline::buf::Buf;
use rvs_dataplane::pipeline::worker::{PathCounters, PathDrop, Worker};

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

/// Families by name, in name order, so the text is stable.
#[derive(Default)]
struct Families(BTreeMap<&'static str, MetricFamily>);

impl Families {
    fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: MetricKind,
        labels: Vec<LabelPair>,
        value: u64,
    ) {
        let mf = self.0.entry(name).or_insert_with(|| {
            let mut mf = MetricFamily::default();
            mf.set_name(name.to_string());
            mf.set_help(help.to_string());
            mf.set_field_type(match kind {
                MetricKind::Counter => MetricType::COUNTER,
                MetricKind::Gauge => MetricType::GAUGE,
            });
            mf
        });
        let mut m = Metric::default();
        m.set_label(labels);
        match kind {
            MetricKind::Counter => {
                let mut c = Counter::default();
                c.set_value(value as f64);
                m.set_counter(c);
            }
            MetricKind::Gauge => {
                let mut g = Gauge::default();
                g.set_value(value as f64);
                m.set_gauge(g);
            }
        }
        mf.mut_metric().push(m);
    }

    fn samples(&mut self, base: &[LabelPair], samples: Vec<Sample>) {
        for s in samples {
            let mut labels = base.to_vec();
            if let Some((k, v)) = &s.label {
                labels.push(label(k, v));
            }
            self.add(s.name, s.help, s.kind, labels, s.value);
        }
    }

    fn path(&mut self, base: &[LabelPair], c: &PathCounters) {
        use MetricKind::Counter as C;
        let rows: [(&'static str, &'static str, u64); 10] = [
            (
                "rvs_rx_frames_total",
                "Frames received from ports.",
                c.rx.get(),
            ),
            ("rvs_tx_frames_total", "Frames sent to ports.", c.tx.get()),
            (
                "rvs_kernel_frames_total",
                "Frames passed to the kernel (exception path).",
                c.kernel.get(),
            ),
            (
                "rvs_handoff_out_total",
                "Frames handed to the worker that owns their flow.",
                c.handoff_out.get(),
            ),
            (
                "rvs_handoff_in_total",
                "Frames received from other workers.",
                c.handoff_in.get(),
            ),
            (
                "rvs_arp_replies_total",
                "ARP replies sent.",
                c.arp_replies.get(),
            ),
            (
                "rvs_nd_adverts_total",
                "IPv6 neighbor advertisements sent.",
                c.nd_adverts.get(),
            ),
            (
                "rvs_echo_replies_total",
                "ICMP/ICMPv6 echo replies sent.",
                c.echo_replies.get(),
            ),
            (
                "rvs_solicits_total",
                "ARP requests and neighbor solicitations sent.",
                c.solicits.get(),
            ),
            (
                "rvs_icmp_errors_sent_total",
                "ICMP errors sent (time exceeded, fragmentation needed).",
                c.icmp_errors_sent.get(),
            ),
        ];
        for (n, h, v) in rows {
            self.add(n, h, C, base.to_vec(), v);
        }
        for r in PathDrop::ALL {
            let mut l = base.to_vec();
            l.push(label("reason", r.name()));
            self.add(
                "rvs_path_drops_total",
                "Frames the packet path dropped, by reason.",
                C,
                l,
                c.drops_of(*r),
            );
        }
    }
}

/// One worker's counter blocks, readable from any thread (a scrape holds these, not the
/// workers).
#[derive(Clone)]
pub struct WorkerCounters {
    pub id: u32,
    pub path: Arc<PathCounters>,
    pub v4: Arc<Counters>,
    pub v6: Arc<Counters>,
}

impl WorkerCounters {
    pub fn of<B: Buf>(w: &Worker<B>) -> Self {
        WorkerCounters {
            id: w.id,
            path: w.counters(),
            v4: w.f4.shard.counters(),
            v6: w.f6.shard.counters(),
        }
    }
}

/// The Prometheus text of every worker's counters.
pub fn render<B: Buf>(workers: &[Worker<B>]) -> String {
    render_counters(&workers.iter().map(WorkerCounters::of).collect::<Vec<_>>())
}

/// The Prometheus text of the given counter blocks.
pub fn render_counters(workers: &[WorkerCounters]) -> String {
    let mut f = Families::default();
    for w in workers {
        let id = w.id.to_string();
        f.path(&[label("worker", &id)], &w.path);
        for (fam, c) in [("ipv4", &w.v4), ("ipv6", &w.v6)] {
            f.samples(&[label("worker", &id), label("family", fam)], c.samples());
        }
    }
    let families: Vec<MetricFamily> = f.0.into_values().collect();
    let mut out = Vec::new();
    if TextEncoder::new().encode(&families, &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

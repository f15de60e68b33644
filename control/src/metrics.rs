//! Prometheus exposition of every counter: the engine's per shard (labels `worker`,
//! `family`) and the packet path's per worker; for `rvsd run`, also what each worker loop
//! counts itself (tx queue full, hand-off rings full; label `worker`) and every DPDK port's
//! counters and xstats (label `port`). Counters are read from the workers' lock-free cells
//! and the ports at render time (a scrape), never pushed.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use rvs_dataplane::counters::{Counters, MetricKind, Sample};
use rvs_dataplane::pipeline::buf::Buf;
use rvs_dataplane::pipeline::exception::Class;
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
        let rows: [(&'static str, &'static str, u64); 16] = [
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
                "rvs_neigh_failed_total",
                "Neighbor entries (next hops, dests) failed: every ARP request / neighbor solicitation unanswered.",
                c.neigh_failed.get(),
            ),
            (
                "rvs_neigh_updated_total",
                "Neighbors whose MAC an unsolicited ARP or neighbor advertisement changed (a failover's gratuitous ARP).",
                c.neigh_updated.get(),
            ),
            (
                "rvs_neigh_shared_total",
                "Copies of neighbor answers to the appliance handed to the other workers (the worker that asked learns them).",
                c.neigh_shared.get(),
            ),
            (
                "rvs_announces_total",
                "Gratuitous ARPs and unsolicited neighbor advertisements sent for the VIPs (at start and after each rule change).",
                c.announces.get(),
            ),
            (
                "rvs_icmp_errors_sent_total",
                "ICMP errors sent (time exceeded, fragmentation needed).",
                c.icmp_errors_sent.get(),
            ),
            (
                "rvs_icmp_errors_ratelimited_total",
                "Time exceeded not sent: over [icmp] msgs_per_sec (the kernel's RateLimitGlobal).",
                c.icmp_errors_ratelimited.get(),
            ),
            (
                "rvs_frags_held_total",
                "Fragments held until their datagram's first fragment came (or the hold timed out).",
                c.frags_held.get(),
            ),
        ];
        for (n, h, v) in rows {
            self.add(n, h, C, base.to_vec(), v);
        }
        self.add(
            "rvs_neigh_held",
            "Frames waiting for a next hop's ARP/ND answer now (both families).",
            MetricKind::Gauge,
            base.to_vec(),
            c.neigh_held.get(),
        );
        self.add(
            "rvs_neigh_entries",
            "Neighbor entries now, static ones included (both families).",
            MetricKind::Gauge,
            base.to_vec(),
            c.neigh_entries.get(),
        );
        for k in Class::ALL {
            let mut l = base.to_vec();
            l.push(label("class", k.name()));
            self.add(
                "rvs_exception_passed_total",
                "Frames passed to the kernel interface (exception path), by class; over the budget they are dropped (rvs_path_drops_total{reason=~\"exception_.*\"}).",
                C,
                l,
                c.passed_of(*k),
            );
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

/// What a DPDK worker loop counted itself (the packet path counts the rest), as the control
/// thread read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoopSample {
    pub worker: u32,
    /// Frames the worker's tx queues refused (full): dropped.
    pub tx_queue_full: u64,
    /// Frames handed to another worker to send on its tx queue (the device has fewer tx
    /// queues than workers).
    pub tx_forwarded: u64,
    /// Frames for another worker (flow owner) dropped because the ring to it was full.
    pub handoff_ring_full: u64,
    /// Frames for another worker's tx queue dropped because the ring to it was full.
    pub tx_ring_full: u64,
}

/// One DPDK port's counters (`rte_eth_stats` and the PMD's xstats), read by the control
/// thread while the workers poll its queues.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSample {
    /// The port's name in the config (`p0`), or `p0-kernel` for its exception interface.
    pub name: String,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_missed: u64,
    pub rx_nombuf: u64,
    /// Source-only RSS with rvs's key and RETA in force on the port.
    pub rss_steering: bool,
    pub xstats: Vec<(String, u64)>,
}

impl Families {
    fn worker_loop(&mut self, l: &LoopSample) {
        use MetricKind::Counter as C;
        let base = [label("worker", &l.worker.to_string())];
        let rows: [(&'static str, &'static str, u64); 4] = [
            (
                "rvs_tx_queue_full_total",
                "Frames dropped because the tx queue was full.",
                l.tx_queue_full,
            ),
            (
                "rvs_tx_forwarded_total",
                "Frames passed to another worker's tx queue (the device has fewer tx queues than workers).",
                l.tx_forwarded,
            ),
            (
                "rvs_handoff_ring_full_total",
                "Frames dropped because the ring to the worker owning their flow was full.",
                l.handoff_ring_full,
            ),
            (
                "rvs_tx_ring_full_total",
                "Frames dropped because the ring to the worker sending them was full.",
                l.tx_ring_full,
            ),
        ];
        for (n, h, v) in rows {
            self.add(n, h, C, base.to_vec(), v);
        }
    }

    fn port(&mut self, p: &PortSample) {
        use MetricKind::{Counter as C, Gauge as G};
        let base = [label("port", &p.name)];
        let rows: [(&'static str, &'static str, MetricKind, u64); 11] = [
            (
                "rvs_port_rss_steering",
                "1 when the port hashes source addresses with rvs's RSS key and RETA, so requests arrive at the worker that owns them.",
                G,
                u64::from(p.rss_steering),
            ),
            (
                "rvs_port_rx_queues",
                "Rx queues configured.",
                G,
                u64::from(p.rx_queues),
            ),
            (
                "rvs_port_tx_queues",
                "Tx queues configured.",
                G,
                u64::from(p.tx_queues),
            ),
            (
                "rvs_port_rx_packets_total",
                "Frames the port received.",
                C,
                p.rx_packets,
            ),
            (
                "rvs_port_tx_packets_total",
                "Frames the port sent.",
                C,
                p.tx_packets,
            ),
            (
                "rvs_port_rx_bytes_total",
                "Bytes the port received.",
                C,
                p.rx_bytes,
            ),
            (
                "rvs_port_tx_bytes_total",
                "Bytes the port sent.",
                C,
                p.tx_bytes,
            ),
            (
                "rvs_port_rx_errors_total",
                "Erroneous frames received.",
                C,
                p.rx_errors,
            ),
            (
                "rvs_port_tx_errors_total",
                "Failed transmissions.",
                C,
                p.tx_errors,
            ),
            (
                "rvs_port_rx_missed_total",
                "Frames the device dropped for lack of rx descriptors (rx queue full).",
                C,
                p.rx_missed,
            ),
            (
                "rvs_port_rx_nombuf_total",
                "Rx mbuf allocation failures.",
                C,
                p.rx_nombuf,
            ),
        ];
        for (n, h, k, v) in rows {
            self.add(n, h, k, base.to_vec(), v);
        }
        for (name, v) in &p.xstats {
            let mut l = base.to_vec();
            l.push(label("name", name));
            self.add(
                "rvs_port_xstats_total",
                "The port driver's extended counters (rte_eth_xstats), by name.",
                C,
                l,
                *v,
            );
        }
    }
}

/// The Prometheus text of the given counter blocks.
pub fn render_counters(workers: &[WorkerCounters]) -> String {
    render_run(workers, &[], &[])
}

/// The Prometheus text of a DPDK run: the workers' counter blocks, what their loops counted,
/// and the ports' counters.
pub fn render_run(
    workers: &[WorkerCounters],
    loops: &[LoopSample],
    ports: &[PortSample],
) -> String {
    let mut f = Families::default();
    for w in workers {
        let id = w.id.to_string();
        f.path(&[label("worker", &id)], &w.path);
        for (fam, c) in [("ipv4", &w.v4), ("ipv6", &w.v6)] {
            f.samples(&[label("worker", &id), label("family", fam)], c.samples());
        }
    }
    for l in loops {
        f.worker_loop(l);
    }
    for p in ports {
        f.port(p);
    }
    let families: Vec<MetricFamily> = f.0.into_values().collect();
    let mut out = Vec::new();
    if TextEncoder::new().encode(&families, &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// One mbuf pool as the control thread read it: mbufs taken out of it (in the ports' and
/// taps' rx rings, in flight, held by the packet path) and its size. Mbufs in the per-lcore
/// caches count as free, as DPDK's `rte_mempool_in_use_count` counts them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolSample {
    /// The pool's name (`rvs_pool_s0`: one per NUMA socket in use).
    pub name: String,
    pub in_use: u64,
    pub size: u64,
}

/// The mbuf pools (label `pool`).
pub fn render_pools(pools: &[PoolSample]) -> String {
    let mut f = Families::default();
    for p in pools {
        f.add(
            "rvs_mempool_mbufs_in_use",
            "Mbufs taken out of the pool (rx rings, in flight, held): back to its idle count when traffic stops.",
            MetricKind::Gauge,
            vec![label("pool", &p.name)],
            p.in_use,
        );
        f.add(
            "rvs_mempool_mbufs",
            "Mbufs the pool holds in all (its size).",
            MetricKind::Gauge,
            vec![label("pool", &p.name)],
            p.size,
        );
    }
    let families: Vec<MetricFamily> = f.0.into_values().collect();
    let mut out = Vec::new();
    if TextEncoder::new().encode(&families, &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The config generation each worker runs (label `worker`).
pub fn render_generations(gens: &[u64]) -> String {
    let mut f = Families::default();
    for (w, &g) in gens.iter().enumerate() {
        f.add(
            "rvs_worker_config_generation",
            "The generation of the rules the worker runs (equal on every worker once a change is in force).",
            MetricKind::Gauge,
            vec![label("worker", &w.to_string())],
            g,
        );
    }
    let families: Vec<MetricFamily> = f.0.into_values().collect();
    let mut out = Vec::new();
    if TextEncoder::new().encode(&families, &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

//! `rvsd run`: the appliance on real DPDK. The main lcore is the control thread; each of the
//! `[engine] workers` worker lcores runs one run-to-completion loop over its own queues:
//! rx bursts from every port (`Worker::rx_burst`), the frames other workers handed over
//! (`Worker::rx_handoff`), tx bursts, and once per loop the timers/defense tick with a TSC
//! clock (one read per loop, none per packet).
//!
//! **Queues.** Every port is configured with `min(workers, device max)` rx and tx queues
//! (RSS over the rx queues when the PMD has it) and split into per-worker queue handles
//! (`Port::into_queues`): worker `w` polls rx queue `w` and sends on tx queue `w`, when the
//! device has them. A device with fewer queues than workers (`net_pcap` has one per
//! `rx_pcap=` / `tx_pcap=`) degrades instead of failing:
//! - a worker without an rx queue on a port receives that port's frames only by hand-off;
//! - a worker without a tx queue on a port hands the frames it sends there to worker
//!   `w mod txq`, which has one, through the same rings as the hand-offs.
//!
//! The exception path (a `net_tap` per port, `rvs<i>`) has one queue pair: worker 0 polls
//! what the kernel sends (which leaves by the port) and the others' frames for the kernel
//! reach its tx queue through worker 0, by the rule above.
//!
//! **Rings.** One SP/SC `rte_ring` per ordered (src, dst) worker pair carries mbufs, tagged
//! in the mbuf's `port` field: the rx port of a frame for its flow's owner (`Out::Handoff`,
//! then `rx_handoff` there), or [`TAG_TX`] | the tx slot of a frame to send on the
//! receiver's tx queue. A worker collects them per destination during the loop and enqueues
//! once per destination per loop; a full ring drops (frees) the rest, counted
//! (`rvs_handoff_ring_full_total`, `rvs_tx_ring_full_total`).
//!
//! The hot loop takes no lock, allocates nothing (its vectors are sized at start) and does no
//! atomic read-modify-write: its counters are plain atomic stores once per loop, which the
//! control thread reads; the ports' counters (`rte_eth_stats`, xstats) are read by the
//! control thread through a `PortStatsReader`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use rvs_dataplane::dpdk::{
    self, ring, Consumer, Eal, Mbuf, Mempool, Port, PortOpts, PortQueue, PortStatsReader, Producer,
};
use rvs_dataplane::pipeline::frag_hold::FRAG_HOLD_MAX;
use rvs_dataplane::pipeline::rss;
use rvs_dataplane::pipeline::worker::{Out, TxOffloads, Worker};

use crate::control_thread::{install_hup_handler, ControlThread, Render};
use crate::controller::{Base, Controller};
use crate::link::WorkerLink;
use crate::metrics::{self, LoopSample, PoolSample, PortSample, WorkerCounters};
use crate::metrics_http::MetricsServer;
use crate::replay;
use crate::rules::RuleSet;
use crate::socket::{resolve_group, ControlSocket};

/// Frames a worker asks a port for at once: 64 measured 2-4 % faster than 32 in `ci/bench.sh`'s
/// established mix (a longer staged pipeline per burst, `Worker::rx_burst`); 128 slower.
const BURST: u16 = 64;
/// Slots of each hand-off ring (it holds one less).
const RING_SLOTS: u32 = 1024;
/// At most this many frames taken from each incoming ring per loop.
const RING_DRAIN: u32 = 4 * BURST as u32;
/// Descriptors per rx/tx queue of a port, and of a kernel interface.
const PORT_DESC: u16 = 1024;
const TAP_DESC: u16 = 512;
/// A ring item's tag with this bit: "send on tx slot (the low bits)"; without: "received on
/// port (the tag), hand to `rx_handoff`". Tx slots are the ports, then their kernel
/// interfaces (`n_ports + port`).
pub const TAG_TX: u16 = 0x8000;

pub struct RunArgs {
    pub config: PathBuf,
    pub rules: Option<PathBuf>,
    /// EAL arguments (after `--` on the command line).
    pub eal: Vec<String>,
    pub metrics_out: Option<PathBuf>,
    /// Stop after this long without a received frame (tests and benchmarks on capture files).
    pub idle_exit_ms: Option<u64>,
    /// Stop after this long in any case.
    pub max_ms: Option<u64>,
    /// Mbufs in the pool (default: enough for every queue's descriptors and the rings). A
    /// `net_pcap` port with `infinite_rx=1` keeps the whole capture in mbufs: size the pool
    /// for it.
    pub mbufs: Option<u32>,
    /// The exception path: a kernel interface (`net_tap`, named `rvs<i>`, the port's MAC and
    /// addresses) per port, carrying what the engine hands to the kernel and back out.
    pub exception: bool,
    /// Print the rates of the last period every this many ms (as testpmd's
    /// `--stats-period`), from the control thread.
    pub stats_period_ms: Option<u64>,
    /// The control socket (default: the config's `[control] socket`).
    pub socket: Option<PathBuf>,
    /// Where to serve /metrics: `ADDR:PORT` or `off` (default: the config's
    /// `[metrics] listen`).
    pub metrics_listen: Option<String>,
    /// A keepalived.conf whose virtual servers join the rules and whose checkers run.
    pub keepalived: Option<PathBuf>,
}

impl RunArgs {
    /// A run of `config` with no rules, EAL arguments or limits, and the config's control
    /// socket and metrics endpoint.
    pub fn new(config: PathBuf) -> RunArgs {
        RunArgs {
            config,
            rules: None,
            eal: Vec::new(),
            metrics_out: None,
            idle_exit_ms: None,
            max_ms: None,
            mbufs: None,
            exception: true,
            stats_period_ms: None,
            socket: None,
            metrics_listen: None,
            keepalived: None,
        }
    }
}

/// What the run did, summed over workers.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub workers: u32,
    /// Frames received from the ports (hand-offs between workers not counted again).
    pub rx: u64,
    pub tx: u64,
    /// Frames a tx queue refused (full): dropped.
    pub tx_dropped: u64,
    /// Frames for the kernel: sent to its interface, or dropped without the exception path.
    pub kernel: u64,
    /// Frames handed to the worker owning their flow.
    pub handoffs: u64,
    /// Frames dropped because a ring between workers was full (hand-offs and forwarded tx).
    pub ring_full: u64,
    pub seconds: f64,
    /// From the first received frame to the stop (the rate's denominator: a net_pcap port
    /// with infinite_rx spends its first seconds loading the capture).
    pub active_seconds: f64,
}

/// Per-worker loop counters the driver itself keeps (the path counts the rest). One writer
/// (the worker, plain stores once per loop), read by the control thread.
#[derive(Default)]
struct LoopCounters {
    rx: AtomicU64,
    tx: AtomicU64,
    tx_dropped: AtomicU64,
    kernel: AtomicU64,
    tx_forwarded: AtomicU64,
    handoff_ring_full: AtomicU64,
    tx_ring_full: AtomicU64,
    first_rx_ms: AtomicU64,
    last_rx_ms: AtomicU64,
    last_ms: AtomicU64,
}

/// One loop counter summed over the workers.
fn sum_loops(loops: &[Arc<LoopCounters>], f: fn(&LoopCounters) -> &AtomicU64) -> u64 {
    loops.iter().map(|l| f(l).load(Relaxed)).sum()
}

/// `--stats-period`: the totals at the last report, to print the rates since.
struct Period {
    every: Option<u64>,
    at: u64,
    last: [u64; 4],
}

impl Period {
    fn new(every: Option<u64>, now: u64) -> Period {
        Period {
            every: every.filter(|&e| e > 0),
            at: now,
            last: [0; 4],
        }
    }

    /// The report line when a period has ended at `now` (ms), else `None`.
    fn tick(&mut self, now: u64, start: u64, loops: &[Arc<LoopCounters>]) -> Option<String> {
        let every = self.every?;
        let dt = now.saturating_sub(self.at);
        if dt < every {
            return None;
        }
        let cur = [
            sum_loops(loops, |l| &l.rx),
            sum_loops(loops, |l| &l.tx),
            sum_loops(loops, |l| &l.tx_dropped),
            sum_loops(loops, |l| &l.kernel),
        ];
        let rate = |i: usize| (cur[i] - self.last[i].min(cur[i])) as f64 / dt as f64 / 1e3;
        let line = format!(
            "rvsd run: {:.1} s: rx {:.3} Mpps, tx {:.3} Mpps, tx dropped {:.3} Mpps, to the kernel {:.3} Mpps",
            now.saturating_sub(start) as f64 / 1e3,
            rate(0),
            rate(1),
            rate(2),
            rate(3)
        );
        self.at = now;
        self.last = cur;
        Some(line)
    }
}

impl LoopCounters {
    fn sample(&self, worker: u32) -> LoopSample {
        LoopSample {
            worker,
            tx_queue_full: self.tx_dropped.load(Relaxed),
            tx_forwarded: self.tx_forwarded.load(Relaxed),
            handoff_ring_full: self.handoff_ring_full.load(Relaxed),
            tx_ring_full: self.tx_ring_full.load(Relaxed),
        }
    }
}

/// What one worker lcore drives: its queue handle of every port and kernel interface, where
/// the tx slots it has no queue for go, and its rings.
struct WorkerIo {
    ports: Vec<PortQueue>,
    taps: Vec<PortQueue>,
    /// Per tx slot (ports, then taps): `None` = this worker's own tx queue; `Some(w)` =
    /// worker `w` sends for it.
    proxy: Vec<Option<u32>>,
    /// To each worker (`None` for itself).
    to: Vec<Option<Producer<Mbuf>>>,
    /// From each other worker.
    from: Vec<Consumer<Mbuf>>,
}

fn ms(tsc: u64, hz: u64) -> u64 {
    (u128::from(tsc) * 1000 / u128::from(hz.max(1))) as u64
}

/// Read a keepalived.conf and add its virtual servers, as they are at start (real servers
/// up unless in `alpha`), to `rules`; its notes are logged.
fn with_keepalived(
    path: &std::path::Path,
    rules: &mut RuleSet,
) -> Result<crate::keepalived::KaConfig, String> {
    let ka = crate::keepalived::load(path).map_err(|e| e.to_string())?;
    for n in &ka.notes {
        eprintln!("rvsd run: {n}");
    }
    let initial = ka.rules(&ka.initial()).map_err(|e| e.to_string())?;
    crate::health::add_to(rules, &initial).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(ka)
}

/// The queues a port gets for `n` workers on a device offering `max` of a direction.
fn queues_for(n: u32, max: u16) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX).min(max).max(1)
}

pub fn run(args: &RunArgs) -> Result<RunSummary, String> {
    let cfg = crate::appconfig::load(&args.config).map_err(|e| e.to_string())?;
    if cfg.control.heap_reserve_mib > 0 {
        let t = std::time::Instant::now();
        let resident = crate::allocator::reserve_heap(cfg.control.heap_reserve_mib);
        eprintln!(
            "rvsd run: control heap: {} MiB faulted in, {:.0} ms (resident {resident} MiB)",
            cfg.control.heap_reserve_mib,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let rules = match &args.rules {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            RuleSet::from_text(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => RuleSet::new(),
    };
    let mut rules = rules;
    let keepalived = match args.keepalived.as_ref().or(cfg.health.keepalived.as_ref()) {
        Some(p) => Some(with_keepalived(p, &mut rules)?),
        None => None,
    };
    let n = cfg.engine.workers.max(1);
    // The control side first: a refused rule set or a socket another rvsd serves stops us
    // before the EAL takes the devices.
    let base = Base {
        sysctl: cfg.sysctl(),
        fwmark_v4: cfg.fwmark_rules_v4(),
        fwmark_v6: cfg.fwmark_rules_v6(),
    };
    let table_size = u64::from(cfg.engine.conns_per_worker) * u64::from(n);
    let (ctl, first) =
        Controller::new(rules, base, n, table_size).map_err(|e| match &args.rules {
            Some(p) => format!("{}: {e}", p.display()),
            None => e.to_string(),
        })?;
    let socket_path = args
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(&cfg.control.socket));
    let group = cfg
        .control
        .group
        .as_deref()
        .map(resolve_group)
        .transpose()?;
    let socket = ControlSocket::bind(&socket_path, group)?;
    let listen = match args.metrics_listen.as_deref() {
        None => cfg.metrics.listen,
        Some("off") => None,
        Some(a) => Some(a.parse::<std::net::SocketAddr>().map_err(|_| {
            format!("--metrics-listen {a:?}: want ADDR:PORT (127.0.0.1:9750, [::1]:9750) or off")
        })?),
    };
    let mut argv = vec!["rvsd".to_string()];
    argv.extend(cfg.engine.eal_args.iter().cloned());
    argv.extend(args.eal.iter().cloned());
    if args.exception {
        for (i, p) in cfg.ports.iter().enumerate() {
            let m = p.mac;
            argv.push("--vdev".into());
            argv.push(format!(
                "net_tap{i},iface=rvs{i},mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ));
        }
    }
    let mut eal = Eal::init(&argv).map_err(|e| e.to_string())?;
    let lcores = eal.lcores();
    if lcores.len() < n as usize {
        return Err(format!(
            "[engine] workers = {n} needs {n} worker lcore(s) besides the main lcore (the control thread); the EAL offers {} (give it e.g. -l 0-{n})",
            lcores.len()
        ));
    }
    let lcores = &lcores[..n as usize];
    // Ports in config order, by device name or else EAL probe order.
    let mut port_ids = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let id = match &p.device {
            Some(dev) => Port::by_name(dev)
                .ok_or_else(|| format!("port {}: no DPDK device {dev}", p.name))?,
            None => u16::try_from(i)
                .ok()
                .filter(|&id| id < Port::count())
                .ok_or_else(|| {
                    format!(
                        "port {}: no DPDK port {i} (the EAL found {})",
                        p.name,
                        Port::count()
                    )
                })?,
        };
        port_ids.push(id);
    }
    let mut tap_ids = Vec::new();
    if args.exception {
        for (i, p) in cfg.ports.iter().enumerate() {
            tap_ids.push(
                Port::by_name(&format!("net_tap{i}"))
                    .ok_or_else(|| format!("port {}: no net_tap{i}", p.name))?,
            );
        }
    }
    // Queues per port: one per worker, as far as the device goes.
    let mut port_queues = Vec::new();
    for (p, &id) in cfg.ports.iter().zip(&port_ids) {
        let (max_rx, max_tx) = Port::max_queues(id).map_err(|e| format!("port {}: {e}", p.name))?;
        port_queues.push((queues_for(n, max_rx), queues_for(n, max_tx)));
    }
    let mbufs = args.mbufs.unwrap_or_else(|| {
        let descs: u32 = port_queues
            .iter()
            .map(|&(r, t)| (u32::from(r) + u32::from(t)) * u32::from(PORT_DESC))
            .sum::<u32>()
            + tap_ids.len() as u32 * 2 * u32::from(TAP_DESC);
        let rings = n * (n - 1) * RING_SLOTS;
        // Per-lcore mempool caches (up to 1.5 x 256 each), frames in flight (among them
        // what a worker's neighbor tables hold: at most 2 x 512) and the fragments a worker may
        // hold for their first.
        let caches = (n + 1) * 384;
        let held = FRAG_HOLD_MAX as u32;
        (descs + rings + caches + n * (2048 + held) + 4096).max(8191)
    });
    // One pool per NUMA socket in use (ports' and workers' sockets; a device with no socket
    // counts as the first worker's), each sized as above: a port's rx queues fill from its
    // own socket's pool and a worker builds frames from its own, so no mbuf crosses the
    // interconnect on the way in. One socket here is one pool.
    let home = lcores.first().map_or(0, |&l| eal.socket_of(l));
    let socket_of_port = |id: u16| u32::try_from(Port::socket(id)).unwrap_or(home);
    let mut sockets: Vec<u32> = port_ids
        .iter()
        .chain(&tap_ids)
        .map(|&id| socket_of_port(id))
        .chain(lcores.iter().map(|&l| eal.socket_of(l)))
        .collect();
    sockets.sort_unstable();
    sockets.dedup();
    let mut pools: Vec<(u32, Mempool)> = Vec::new();
    for &sock in &sockets {
        let pool = Mempool::new(
            &format!("rvs_pool_s{sock}"),
            mbufs,
            256,
            2048 + 128,
            sock as i32,
        )
        .map_err(|e| format!("mempool on socket {sock}: {e}"))?;
        pools.push((sock, pool));
    }
    let pool_of = |sock: u32| -> &Mempool {
        pools
            .iter()
            .find(|(s, _)| *s == sock)
            .map_or(&pools[0].1, |(_, p)| p)
    };
    // The RSS key of every port and of steering: drawn now unless the config fixes it.
    let rss_key = cfg
        .engine
        .rss_key
        .key(|| rss::Key::random(random_key_bytes));
    // Configure and start every port, then split it into one queue handle per worker.
    let mut readers: Vec<(String, PortStatsReader)> = Vec::new();
    let mut port_q: Vec<Vec<PortQueue>> = Vec::new();
    for ((p, &id), &(rxq, txq)) in cfg.ports.iter().zip(&port_ids).zip(&port_queues) {
        let opts = PortOpts {
            rss: true,
            rss_key: *rss_key.bytes(),
            promiscuous: true,
            nb_desc: PORT_DESC,
        };
        let mut port = Port::configure(id, rxq, txq, pool_of(socket_of_port(id)), opts)
            .map_err(|e| format!("port {}: {e}", p.name))?;
        port.start().map_err(|e| format!("port {}: {e}", p.name))?;
        if n > 1 {
            eprintln!(
                "rvsd run: port {}: {}",
                p.name,
                rss_note(port.offloads(), rxq, n)
            );
        }
        let (reader, qs) = port.into_queues(n as u16);
        readers.push((p.name.clone(), reader));
        port_q.push(qs);
    }
    // The kernel side of every port: its tap (one queue pair), up, with the port's addresses.
    let mut tap_q: Vec<Vec<PortQueue>> = Vec::new();
    for ((i, p), &id) in cfg.ports.iter().enumerate().zip(&tap_ids) {
        let opts = PortOpts {
            rss: false,
            rss_key: *rss_key.bytes(),
            promiscuous: false,
            nb_desc: TAP_DESC,
        };
        let mut t = Port::configure(id, 1, 1, pool_of(socket_of_port(id)), opts)
            .map_err(|e| e.to_string())?;
        t.start().map_err(|e| e.to_string())?;
        let (reader, qs) = t.into_queues(n as u16);
        readers.push((format!("{}-kernel", p.name), reader));
        tap_q.push(qs);
        let iface = format!("rvs{i}");
        let mut cmds = vec![vec![
            "link".to_string(),
            "set".into(),
            iface.clone(),
            "up".into(),
        ]];
        for (a, len) in &p.addrs {
            cmds.push(vec![
                "addr".into(),
                "replace".into(),
                format!("{a}/{len}"),
                "dev".into(),
                iface.clone(),
            ]);
        }
        for c in cmds {
            match std::process::Command::new("ip").args(&c).status() {
                Ok(s) if s.success() => {}
                other => eprintln!("rvsd run: warning: ip {}: {other:?}", c.join(" ")),
            }
        }
    }
    // The tx queues of every slot (ports, then taps), for the proxy rule.
    let slot_txq: Vec<u16> = readers.iter().map(|(_, r)| r.tx_queues()).collect();
    // One SP/SC ring per ordered pair: to[src][dst], from[dst] gets every src's consumer.
    let mut to: Vec<Vec<Option<Producer<Mbuf>>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    let mut from: Vec<Vec<Consumer<Mbuf>>> = (0..n).map(|_| Vec::new()).collect();
    for src in 0..n {
        for dst in 0..n {
            if src == dst {
                continue;
            }
            let socket = eal.socket_of(lcores[dst as usize]) as i32;
            let (p, c) = ring::<Mbuf>(&format!("rvs_ho_{src}_{dst}"), RING_SLOTS, socket)
                .map_err(|e| e.to_string())?;
            to[src as usize][dst as usize] = Some(p);
            from[dst as usize].push(c);
        }
    }
    let mut ios: Vec<WorkerIo> = Vec::new();
    for (w, (to, from)) in to.into_iter().zip(from).enumerate() {
        let take = |qs: &mut Vec<Vec<PortQueue>>| -> Vec<PortQueue> {
            // Handles were made in worker order; each worker takes the first that is left.
            qs.iter_mut().map(|q| q.remove(0)).collect()
        };
        let ports = take(&mut port_q);
        let taps = take(&mut tap_q);
        let proxy = slot_txq
            .iter()
            .map(|&txq| (w as u32 >= u32::from(txq)).then(|| w as u32 % u32::from(txq)))
            .collect();
        ios.push(WorkerIo {
            ports,
            taps,
            proxy,
            to,
            from,
        });
    }
    let hz = eal.tsc_hz();
    let t0 = ms(dpdk::rdtsc(), hz);
    // What each data port's NIC checksums at transmit (the readers list ports first).
    let tx: Vec<TxOffloads> = readers
        .iter()
        .take(cfg.ports.len())
        .map(|(_, r)| {
            let o = r.offloads();
            TxOffloads {
                ipv4: o.tx_ipv4_cksum,
                udp: o.tx_udp_cksum,
            }
        })
        .collect();
    let nic = replay::NicSetup { tx, rss_key };
    let generation = first.generation;
    let workers = replay::workers_with::<Mbuf>(&cfg, (first.v4, first.v6), n, t0, &nic, |w| {
        let sock = lcores.get(w as usize).map_or(home, |&l| eal.socket_of(l));
        let pool = pool_of(sock).clone();
        Box::new(move || pool.alloc())
    })?;
    let counters: Vec<WorkerCounters> = workers.iter().map(WorkerCounters::of).collect();
    let loops: Vec<Arc<LoopCounters>> = (0..n).map(|_| Arc::default()).collect();
    let links: Vec<Arc<WorkerLink>> = (0..n)
        .map(|_| Arc::new(WorkerLink::new(generation)))
        .collect();
    for l in &loops {
        l.last_rx_ms.store(t0, Relaxed);
    }
    let stop = dpdk::install_stop_handler();
    for (((w, io), (&lcore, me)), link) in workers
        .into_iter()
        .zip(ios)
        .zip(lcores.iter().zip(&loops))
        .zip(&links)
    {
        let me = Arc::clone(me);
        let link = Arc::clone(link);
        eprintln!("rvsd run: worker {} on lcore {lcore}", w.id);
        // The worker owns its queue handles and ring ends; they go when its loop ends (the
        // ports close when the last handle or reader goes).
        let launched = eal.launch(
            lcore,
            Box::new(move || worker_loop(w, io, &me, &link, stop, hz)),
        );
        if let Err(e) = launched {
            stop.store(true, Relaxed);
            eal.wait_all();
            return Err(e.to_string());
        }
    }
    // The control thread (the main lcore): the control socket, /metrics, SIGHUP, the stop
    // conditions and the periodic rates. Threads it starts run on the housekeeping cores.
    let housekeeping = housekeeping_cores(lcores);
    eprintln!(
        "rvsd run: control thread on the main lcore {}; control socket {}",
        eal.main_lcore(),
        socket_path.display()
    );
    let (scrape_tx, scrape_rx) = std::sync::mpsc::channel();
    let metrics_server = match listen {
        Some(addr) => {
            let m = MetricsServer::start(addr, scrape_tx, housekeeping.clone());
            match m {
                Ok(m) => {
                    eprintln!(
                        "rvsd run: metrics at http://{}/metrics (thread on core {})",
                        m.addr,
                        housekeeping
                            .first()
                            .map_or("any".to_string(), |c| c.id.to_string())
                    );
                    Some(m)
                }
                Err(e) => {
                    stop.store(true, Relaxed);
                    eal.wait_all();
                    return Err(e);
                }
            }
        }
        None => None,
    };
    // The checkers' series (empty without --keepalived), rendered with the rest.
    let health_series = crate::health::HealthSeries::new();
    let render: Render = {
        let health_series = health_series.clone();
        let counters = counters.clone();
        let loops = loops.clone();
        let links = links.clone();
        let readers = std::mem::take(&mut readers);
        let pools: Vec<Mempool> = pools.iter().map(|(_, p)| p.clone()).collect();
        Box::new(move |ctl: &Controller| {
            let samples: Vec<LoopSample> = loops
                .iter()
                .enumerate()
                .map(|(i, l)| l.sample(i as u32))
                .collect();
            let ports: Vec<PortSample> = readers
                .iter()
                .map(|(name, r)| port_sample(name, r))
                .collect();
            let mut text = metrics::render_run(&counters, &samples, &ports);
            crate::ipvs_metrics::render_into(ctl, &mut text);
            text.push_str(&metrics::render_generations(
                &links.iter().map(|l| l.generation()).collect::<Vec<_>>(),
            ));
            let pools: Vec<PoolSample> = pools
                .iter()
                .map(|p| {
                    let in_use = u64::from(p.in_use());
                    PoolSample {
                        name: p.name().to_string(),
                        in_use,
                        size: in_use + u64::from(p.avail()),
                    }
                })
                .collect();
            text.push_str(&metrics::render_pools(&pools));
            text.push_str(&health_series.render());
            text
        })
    };
    // The checkers: their changes come through the control socket, as rvsadm's do (served
    // once the control thread polls, below).
    let keepalived_path = args.keepalived.clone().or(cfg.health.keepalived.clone());
    let checkers = match keepalived {
        Some(ka) => {
            let initial = ka.rules(&ka.initial()).map_err(|e| e.to_string())?;
            let mut client = crate::adm::client::UnixClient::new(&socket_path);
            let apply: crate::health::Apply = Box::new(move |req| {
                use crate::adm::client::Transport;
                match client.call(&req) {
                    Ok(crate::protocol::Reply::Ok { .. }) => Ok(()),
                    Ok(crate::protocol::Reply::Error(e)) => Err(e.message),
                    Ok(other) => Err(format!("unexpected reply {other:?}")),
                    Err(e) => Err(e.to_string()),
                }
            });
            let core = housekeeping.first().copied();
            let c = crate::health::Checkers::start(ka, initial, apply, core, health_series);
            match c {
                Ok(c) => {
                    eprintln!(
                        "rvsd run: health checks (thread on core {})",
                        core.map_or("any".to_string(), |c| c.id.to_string())
                    );
                    Some(c)
                }
                Err(e) => {
                    stop.store(true, Relaxed);
                    eal.wait_all();
                    return Err(e);
                }
            }
        }
        None => None,
    };
    let mut ct = ControlThread::new(ctl, links.clone(), render, t0)
        .with_socket(socket)
        .with_scrapes(scrape_rx);
    ct = ct.with_reload(args.rules.clone(), install_hup_handler());
    if let (Some(c), Some(path)) = (&checkers, keepalived_path) {
        ct = ct.with_keepalived(path, c.reloader());
    }
    let start = t0;
    let mut period = Period::new(args.stats_period_ms, t0);
    loop {
        ct.poll(ms(dpdk::rdtsc(), hz), std::time::Duration::from_millis(10));
        let now = ms(dpdk::rdtsc(), hz);
        if let Some(line) = period.tick(now, start, &loops) {
            println!("{line}");
        }
        let last_rx = loops
            .iter()
            .map(|l| l.last_rx_ms.load(Relaxed))
            .max()
            .unwrap_or(t0);
        let idle = args
            .idle_exit_ms
            .is_some_and(|i| now.saturating_sub(last_rx) >= i);
        let over = args.max_ms.is_some_and(|m| now.saturating_sub(start) >= m);
        if stop.load(Relaxed) || idle || over {
            stop.store(true, Relaxed);
            break;
        }
    }
    for (lcore, rc) in eal.wait_all() {
        if rc != 0 {
            eprintln!("rvsd run: warning: worker lcore {lcore} ended with {rc}");
        }
    }
    let seconds = (ms(dpdk::rdtsc(), hz) - start) as f64 / 1000.0;
    drop(metrics_server);
    if let Some(c) = checkers {
        c.stop();
    }
    // What the workers gave back on their way out (old snapshots) is freed here.
    ct.housekeeping(ms(dpdk::rdtsc(), hz));
    if let Some(path) = &args.metrics_out {
        std::fs::write(path, ct.render_now()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let sum_of = |f: fn(&LoopCounters) -> &AtomicU64| sum_loops(&loops, f);
    let first = loops
        .iter()
        .map(|l| l.first_rx_ms.load(Relaxed))
        .filter(|&f| f > 0)
        .min()
        .unwrap_or(0);
    let last = loops
        .iter()
        .map(|l| l.last_ms.load(Relaxed))
        .max()
        .unwrap_or(0);
    let sum = RunSummary {
        workers: n,
        seconds,
        active_seconds: if first > 0 {
            last.saturating_sub(first) as f64 / 1000.0
        } else {
            0.0
        },
        rx: sum_of(|l| &l.rx),
        tx: sum_of(|l| &l.tx),
        tx_dropped: sum_of(|l| &l.tx_dropped),
        kernel: sum_of(|l| &l.kernel),
        handoffs: counters.iter().map(|c| c.path.handoff_out.get()).sum(),
        ring_full: sum_of(|l| &l.handoff_ring_full) + sum_of(|l| &l.tx_ring_full),
    };
    // The workers dropped their queue handles, rings and buffers; the readers are the last
    // holders of the ports (dropping them stops and closes the ports, which flushes e.g.
    // net_pcap's tx file); then the pool, then the EAL. A PMD that still holds mbufs
    // (net_pcap's infinite_rx keeps its capture in them) leaves the pool and the EAL up:
    // the run itself went fine, so that is a warning, not a failure.
    // The control thread's render holds the port readers.
    drop(ct);
    drop(readers);
    drop(pools);
    if let Err(e) = eal.cleanup() {
        eprintln!("rvsd run: warning: {e}");
    }
    Ok(sum)
}

/// The cores no worker runs on (the control side's threads go there); empty when the
/// workers take every core (then they are not pinned, and the log says so).
fn housekeeping_cores(worker_lcores: &[u32]) -> Vec<core_affinity::CoreId> {
    let all = core_affinity::get_core_ids().unwrap_or_default();
    let free: Vec<core_affinity::CoreId> = all
        .into_iter()
        .filter(|c| !worker_lcores.contains(&(c.id as u32)))
        .collect();
    if free.is_empty() {
        eprintln!("rvsd run: warning: every core runs a worker; control threads are not pinned");
    }
    free
}

/// 40 unpredictable bytes for an RSS key: SipHash under the process's OS-seeded random keys
/// (std's `RandomState`), no file or syscall of our own.
fn random_key_bytes() -> [u8; rss::KEY_LEN] {
    use std::hash::BuildHasher;
    let s = std::collections::hash_map::RandomState::new();
    let mut b = [0u8; rss::KEY_LEN];
    for (i, c) in b.chunks_mut(8).enumerate() {
        c.copy_from_slice(&s.hash_one(i).to_le_bytes()[..c.len()]);
    }
    b
}

/// How a port's RSS meets steering, for the operator at start (with several workers).
fn rss_note(o: rvs_dataplane::dpdk::Offloads, rxq: u16, workers: u32) -> String {
    if o.rss_hf == 0 {
        format!("{rxq} rx queue(s), no RSS: worker 0 receives and hands off the others' frames")
    } else if o.rss_steering && u32::from(rxq) == workers {
        format!(
            "RSS on the source address with rvs's key and RETA over {rxq} queues: requests \
             arrive at their owner (unless persistence groups clients by a netmask)"
        )
    } else {
        format!(
            "RSS over {rxq} queues without source-only hashing (or with fewer queues than \
             workers): frames reaching a worker that does not own them take one hand-off"
        )
    }
}

/// A port's counters for the metrics (zeros when the PMD refuses to give them).
fn port_sample(name: &str, r: &PortStatsReader) -> PortSample {
    let s = r.stats().unwrap_or_default();
    PortSample {
        name: name.to_string(),
        rx_queues: r.rx_queues(),
        tx_queues: r.tx_queues(),
        rx_packets: s.ipackets,
        tx_packets: s.opackets,
        rx_bytes: s.ibytes,
        tx_bytes: s.obytes,
        rx_errors: s.ierrors,
        tx_errors: s.oerrors,
        rx_missed: s.imissed,
        rx_nombuf: s.rx_nombuf,
        rss_steering: r.offloads().rss_steering,
        xstats: r.xstats().unwrap_or_default(),
    }
}

/// Where one loop's frames wait before their burst: per tx slot, and per other worker.
struct Outbox {
    /// Ports `0..n_ports`, then their kernel interfaces.
    tx: Vec<Vec<Mbuf>>,
    /// To each worker's ring, tagged (see [`TAG_TX`]).
    fwd: Vec<Vec<Mbuf>>,
    n_ports: usize,
    taps: bool,
    kernel: u64,
}

impl Outbox {
    /// A frame out: the common case (to a port) inline in the worker's burst loop, the
    /// rest out of line.
    #[inline(always)]
    fn emit(&mut self, o: Out<Mbuf>) {
        match o {
            Out::Tx { port, buf } => self.push_tx(port, buf),
            o => self.emit_other(o),
        }
    }

    #[inline(always)]
    fn push_tx(&mut self, port: u16, buf: Mbuf) {
        if let Some(t) = self.tx.get_mut(usize::from(port)) {
            t.push(buf);
        }
    }

    #[inline(never)]
    fn emit_other(&mut self, o: Out<Mbuf>) {
        match o {
            Out::Tx { port, buf } => self.push_tx(port, buf),
            // To the port's kernel interface; without one, counted and freed.
            Out::Kernel { port, buf } => {
                self.kernel += 1;
                if self.taps && usize::from(port) < self.n_ports {
                    if let Some(t) = self.tx.get_mut(self.n_ports + usize::from(port)) {
                        t.push(buf);
                    }
                }
            }
            Out::Handoff {
                worker,
                port,
                mut buf,
            } => {
                if let Some(f) = self.fwd.get_mut(worker as usize) {
                    buf.set_port(port);
                    f.push(buf);
                }
            }
            // Frames are freed as they drop (the path counted why).
            Out::Drop(_) => {}
        }
    }
}

/// One worker's run-to-completion loop.
fn worker_loop(
    mut w: Worker<Mbuf>,
    mut io: WorkerIo,
    me: &LoopCounters,
    link: &WorkerLink,
    stop: &AtomicBool,
    hz: u64,
) -> i32 {
    let burst = usize::from(BURST);
    let n_ports = io.ports.len();
    let n_slots = n_ports + io.taps.len();
    let mut rx: Vec<Mbuf> = Vec::with_capacity(RING_DRAIN as usize);
    let mut slots: Vec<Option<Mbuf>> = (0..BURST).map(|_| None).collect();
    let mut ob = Outbox {
        // Room for a loop's rx bursts and what the other workers may pass in one drain.
        tx: (0..n_slots)
            .map(|_| Vec::with_capacity(4 * burst + RING_DRAIN as usize * io.from.len()))
            .collect(),
        fwd: io
            .to
            .iter()
            .map(|_| Vec::with_capacity(RING_SLOTS as usize))
            .collect(),
        n_ports,
        taps: !io.taps.is_empty(),
        kernel: 0,
    };
    // Worker 0 speaks for the box (gratuitous ARP / unsolicited NA for the VIPs).
    if w.id == 0 {
        w.announce(&mut |o| ob.emit(o));
    }
    let (mut rxc, mut txc, mut txd, mut fwdc, mut ho_full, mut tx_full) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut seen = 0u64;
    while !stop.load(Relaxed) {
        let now = ms(dpdk::rdtsc(), hz);
        // Between bursts: whatever the control thread posted (one load when nothing came).
        if link.serve(&mut seen, &mut w, now) && w.id == 0 {
            // New VIPs are announced as at start.
            w.announce(&mut |o| ob.emit(o));
        }
        w.tick(now, &mut |o| ob.emit(o));
        let mut got_any = false;
        for (pi, q) in io.ports.iter_mut().enumerate() {
            // Into the slots the worker takes every frame from (it leaves them empty).
            let got = q.rx_burst_slots(&mut slots);
            if got == 0 {
                continue;
            }
            if rxc == 0 {
                me.first_rx_ms.store(now.max(1), Relaxed);
            }
            rxc += got as u64;
            got_any = true;
            w.rx_burst(pi as u16, &mut slots[..got], now, &mut |o| ob.emit(o));
        }
        // What the kernel sends out of a port's interface goes out of the port as it is.
        for (pi, tap) in io.taps.iter_mut().enumerate() {
            rx.clear();
            if tap.rx_burst(&mut rx, BURST) > 0 {
                ob.tx[pi].append(&mut rx);
            }
        }
        // What the other workers passed: frames of this worker's flows, frames to send.
        for c in io.from.iter_mut() {
            rx.clear();
            if c.pop_burst(&mut rx, RING_DRAIN) == 0 {
                continue;
            }
            for m in rx.drain(..) {
                let tag = m.port();
                if tag & TAG_TX != 0 {
                    // A slot out of range cannot happen (the sender shares our layout); it
                    // would be freed here.
                    if let Some(t) = ob.tx.get_mut(usize::from(tag & !TAG_TX)) {
                        t.push(m);
                    }
                } else {
                    w.rx_handoff(tag, m, now, &mut |o| ob.emit(o));
                }
            }
        }
        // Tx: on this worker's own queue, or to the worker that sends for the slot.
        for (si, t) in ob.tx.iter_mut().enumerate() {
            if t.is_empty() {
                continue;
            }
            match io.proxy[si] {
                None => {
                    let q = if si < n_ports {
                        &mut io.ports[si]
                    } else {
                        &mut io.taps[si - n_ports]
                    };
                    txc += q.tx_burst(t) as u64;
                    // A full tx queue: drop (and count) rather than stall the loop.
                    txd += t.len() as u64;
                    t.clear();
                }
                Some(p) => {
                    for m in t.iter_mut() {
                        m.set_port(TAG_TX | si as u16);
                    }
                    fwdc += t.len() as u64;
                    ob.fwd[p as usize].append(t);
                }
            }
        }
        // One enqueue per destination; what a full ring refuses is dropped and counted.
        for (f, p) in ob.fwd.iter_mut().zip(io.to.iter_mut()) {
            if f.is_empty() {
                continue;
            }
            if let Some(p) = p {
                p.push_burst(f);
            }
            for m in f.drain(..) {
                if m.port() & TAG_TX != 0 {
                    tx_full += 1;
                    fwdc = fwdc.saturating_sub(1);
                } else {
                    ho_full += 1;
                }
            }
        }
        me.rx.store(rxc, Relaxed);
        me.tx.store(txc, Relaxed);
        me.tx_dropped.store(txd, Relaxed);
        me.kernel.store(ob.kernel, Relaxed);
        me.tx_forwarded.store(fwdc, Relaxed);
        me.handoff_ring_full.store(ho_full, Relaxed);
        me.tx_ring_full.store(tx_full, Relaxed);
        if got_any {
            me.last_rx_ms.store(now, Relaxed);
        }
        me.last_ms.store(now, Relaxed);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_period_reports_the_rates_of_each_period() {
        let loops: Vec<Arc<LoopCounters>> = (0..2).map(|_| Arc::default()).collect();
        let mut p = Period::new(Some(2000), 1000);
        assert_eq!(p.tick(2999, 1000, &loops), None, "before the period ends");
        // 2 s: 6M frames in over two workers, 5M out, 1M dropped at tx.
        loops[0].rx.store(4_000_000, Relaxed);
        loops[1].rx.store(2_000_000, Relaxed);
        loops[0].tx.store(5_000_000, Relaxed);
        loops[1].tx_dropped.store(1_000_000, Relaxed);
        assert_eq!(
            p.tick(3000, 1000, &loops).as_deref(),
            Some("rvsd run: 2.0 s: rx 3.000 Mpps, tx 2.500 Mpps, tx dropped 0.500 Mpps, to the kernel 0.000 Mpps")
        );
        // The next period (4 s) counts only what came after the last report: 6M more in.
        loops[0].rx.store(10_000_000, Relaxed);
        loops[1].kernel.store(40_000, Relaxed);
        assert_eq!(
            p.tick(7000, 1000, &loops).as_deref(),
            Some("rvsd run: 6.0 s: rx 1.500 Mpps, tx 0.000 Mpps, tx dropped 0.000 Mpps, to the kernel 0.010 Mpps")
        );
        assert_eq!(Period::new(None, 0).tick(10_000, 0, &loops), None, "off");
    }
}

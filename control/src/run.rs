//! `rvsd run`: the appliance on real DPDK. The main lcore is the control thread; the worker
//! lcore runs one run-to-completion loop: rx bursts from every port, the packet path
//! (`Worker::rx_burst`), tx bursts, and once per loop the timers/defense tick with a TSC clock
//! (one read per loop, none per packet).
//!
//! This slice drives ONE worker lcore: a DPDK queue has one poller, and the wrapper's `Port`
//! is not yet split into per-worker queue handles (next slice), so `[engine] workers` above 1
//! is refused here rather than silently ignored. `rvsd replay --workers N` exercises the
//! multi-worker steering and hand-off on the same packet path.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use rvs_dataplane::dpdk::{self, Eal, Mbuf, Mempool, Port, PortOpts};
use rvs_dataplane::pipeline::worker::{Out, Worker};

use crate::metrics::{self, WorkerCounters};
use crate::replay;
use crate::rules::RuleSet;

const BURST: u16 = 32;

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
    /// Mbufs in the pool (default: enough for every port's descriptors). A `net_pcap` port
    /// with `infinite_rx=1` keeps the whole capture in mbufs: size the pool for it.
    pub mbufs: Option<u32>,
    /// The exception path: a kernel interface (`net_tap`, named `rvs<i>`, the port's MAC and
    /// addresses) per port, carrying what the engine hands to the kernel and back out.
    pub exception: bool,
}

/// What the run did, summed over workers.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub rx: u64,
    pub tx: u64,
    pub tx_dropped: u64,
    /// Frames for the kernel: sent to its interface, or dropped without the exception path.
    pub kernel: u64,
    pub seconds: f64,
    /// From the first received frame to the stop (the rate's denominator: a net_pcap port
    /// with infinite_rx spends its first seconds loading the capture).
    pub active_seconds: f64,
}

/// Per-worker loop counters the driver itself keeps (the path counts the rest).
#[derive(Default)]
struct LoopCounters {
    rx: AtomicU64,
    tx: AtomicU64,
    tx_dropped: AtomicU64,
    kernel: AtomicU64,
    first_rx_ms: AtomicU64,
    last_ms: AtomicU64,
}

fn ms(tsc: u64, hz: u64) -> u64 {
    (u128::from(tsc) * 1000 / u128::from(hz.max(1))) as u64
}

pub fn run(args: &RunArgs) -> Result<RunSummary, String> {
    let cfg = crate::appconfig::load(&args.config).map_err(|e| e.to_string())?;
    let rules = match &args.rules {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            RuleSet::from_text(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => RuleSet::new(),
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
    if cfg.engine.workers > 1 {
        return Err(format!(
            "[engine] workers = {}: rvsd run drives one worker lcore in this version (per-queue port handles come next); rvsd replay --workers runs several",
            cfg.engine.workers
        ));
    }
    let mut eal = Eal::init(&argv).map_err(|e| e.to_string())?;
    let lcores = eal.lcores();
    let Some(&lcore) = lcores.first() else {
        return Err("no worker lcore: give the EAL at least two (e.g. -l 0-1); the main lcore runs the control thread".into());
    };
    let n = 1u32;
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
    let nb_desc: u16 = 1024;
    let mbufs = args
        .mbufs
        .unwrap_or((port_ids.len() as u32 * u32::from(nb_desc) * 2 + 4096).max(8191));
    let pool = Mempool::new("rvs_pool", mbufs, 256, 2048 + 128, -1).map_err(|e| e.to_string())?;
    let mut ports = Vec::new();
    for &id in &port_ids {
        let opts = PortOpts {
            rss: false,
            promiscuous: true,
            nb_desc,
        };
        let mut p = Port::configure(id, 1, 1, &pool, opts).map_err(|e| e.to_string())?;
        p.start().map_err(|e| e.to_string())?;
        ports.push(p);
    }
    // The kernel side of every port: its tap, up, with the port's addresses.
    let mut taps = Vec::new();
    if args.exception {
        for (i, p) in cfg.ports.iter().enumerate() {
            let id = Port::by_name(&format!("net_tap{i}"))
                .ok_or_else(|| format!("port {}: no net_tap{i}", p.name))?;
            let opts = PortOpts {
                rss: false,
                promiscuous: false,
                nb_desc: 512,
            };
            let mut t = Port::configure(id, 1, 1, &pool, opts).map_err(|e| e.to_string())?;
            t.start().map_err(|e| e.to_string())?;
            taps.push(t);
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
    }
    let hz = eal.tsc_hz();
    let t0 = ms(dpdk::rdtsc(), hz);
    let mut workers = replay::workers::<Mbuf>(&cfg, &rules, n, t0, |_| {
        let pool = pool.clone();
        Box::new(move || pool.alloc())
    })?;
    let counters: Vec<WorkerCounters> = workers.iter().map(WorkerCounters::of).collect();
    let loops = Arc::new(LoopCounters::default());
    let stop = dpdk::install_stop_handler();
    let last_rx = Arc::new(AtomicU64::new(t0));
    let Some(w) = workers.pop() else {
        return Err("no worker".into());
    };
    {
        let (loops, last_rx) = (Arc::clone(&loops), Arc::clone(&last_rx));
        // The worker owns the ports (one poller per queue); they stop and close when it ends.
        eal.launch(
            lcore,
            Box::new(move || worker_loop(w, ports, taps, &loops, stop, &last_rx, hz)),
        )
        .map_err(|e| e.to_string())?;
    }
    // The control thread: watch for the stop conditions.
    let start = t0;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(10));
        let now = ms(dpdk::rdtsc(), hz);
        let idle = args
            .idle_exit_ms
            .is_some_and(|i| now.saturating_sub(last_rx.load(Relaxed)) >= i);
        let over = args.max_ms.is_some_and(|m| now.saturating_sub(start) >= m);
        if stop.load(Relaxed) || idle || over {
            stop.store(true, Relaxed);
            break;
        }
    }
    eal.wait_all();
    let seconds = (ms(dpdk::rdtsc(), hz) - start) as f64 / 1000.0;
    if let Some(path) = &args.metrics_out {
        std::fs::write(path, metrics::render_counters(&counters))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let (first, last) = (loops.first_rx_ms.load(Relaxed), loops.last_ms.load(Relaxed));
    let sum = RunSummary {
        seconds,
        active_seconds: if first > 0 {
            last.saturating_sub(first) as f64 / 1000.0
        } else {
            0.0
        },
        rx: loops.rx.load(Relaxed),
        tx: loops.tx.load(Relaxed),
        tx_dropped: loops.tx_dropped.load(Relaxed),
        kernel: loops.kernel.load(Relaxed),
    };
    // The worker dropped the ports and its buffers; now the pool, then the EAL. A PMD that
    // still holds mbufs (net_pcap's infinite_rx keeps its capture in them) leaves the pool
    // and the EAL up: the run itself went fine, so that is a warning, not a failure.
    drop(pool);
    if let Err(e) = eal.cleanup() {
        eprintln!("rvsd run: warning: {e}");
    }
    Ok(sum)
}

/// One worker's run-to-completion loop.
#[allow(clippy::too_many_arguments)]
fn worker_loop(
    mut w: Worker<Mbuf>,
    ports: Vec<Port>,
    taps: Vec<Port>,
    me: &LoopCounters,
    stop: &AtomicBool,
    last_rx: &AtomicU64,
    hz: u64,
) -> i32 {
    let mut rx: Vec<Mbuf> = Vec::with_capacity(usize::from(BURST));
    let mut slots: Vec<Option<Mbuf>> = (0..BURST).map(|_| None).collect();
    let mut tx: Vec<Vec<Mbuf>> = ports
        .iter()
        .map(|_| Vec::with_capacity(4 * usize::from(BURST)))
        .collect();
    let kernel = std::cell::Cell::new(0u64);
    let n_ports = ports.len();
    let has_taps = !taps.is_empty();
    // tx[0..n] are the ports, tx[n..2n] their kernel interfaces.
    tx.extend(
        taps.iter()
            .map(|_| Vec::with_capacity(4 * usize::from(BURST))),
    );
    let emit = |o: Out<Mbuf>, tx: &mut Vec<Vec<Mbuf>>| match o {
        Out::Tx { port, buf } => {
            if let Some(t) = tx.get_mut(usize::from(port)) {
                t.push(buf);
            }
        }
        // To the port's kernel interface; without one, counted and freed.
        Out::Kernel { port, buf } => {
            kernel.set(kernel.get() + 1);
            if has_taps {
                if let Some(t) = tx.get_mut(n_ports + usize::from(port)) {
                    t.push(buf);
                }
            }
        }
        // One worker: nothing is handed over; frames are freed as they drop.
        Out::Handoff { .. } | Out::Drop(_) => {}
    };
    w.announce(&mut |o| emit(o, &mut tx));
    let (mut rxc, mut txc, mut txd) = (0u64, 0u64, 0u64);
    while !stop.load(Relaxed) {
        let now = ms(dpdk::rdtsc(), hz);
        w.tick(now, &mut |o| emit(o, &mut tx));
        for (pi, port) in ports.iter().enumerate() {
            rx.clear();
            let got = port.rx_burst(0, &mut rx, BURST);
            if got == 0 {
                continue;
            }
            if rxc == 0 {
                me.first_rx_ms.store(now.max(1), Relaxed);
            }
            rxc += got as u64;
            last_rx.store(now, Relaxed);
            for (slot, m) in slots.iter_mut().zip(rx.drain(..)) {
                *slot = Some(m);
            }
            w.rx_burst(pi as u16, &mut slots[..got], now, &mut |o| emit(o, &mut tx));
        }
        // What the kernel sends out of a port's interface goes out of the port as it is.
        for (pi, tap) in taps.iter().enumerate() {
            rx.clear();
            if tap.rx_burst(0, &mut rx, BURST) > 0 {
                tx[pi].append(&mut rx);
            }
        }
        for (pi, port) in ports.iter().chain(taps.iter()).enumerate() {
            let t = &mut tx[pi];
            if t.is_empty() {
                continue;
            }
            txc += port.tx_burst(0, t) as u64;
            // A full tx queue: drop (and count) rather than stall the loop.
            txd += t.len() as u64;
            t.clear();
        }
        me.rx.store(rxc, Relaxed);
        me.tx.store(txc, Relaxed);
        me.tx_dropped.store(txd, Relaxed);
        me.kernel.store(kernel.get(), Relaxed);
        me.last_ms.store(now, Relaxed);
    }
    0
}

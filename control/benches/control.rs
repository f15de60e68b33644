//! The control plane's costs (a bench, not a test; `cargo bench -p rvs-control --bench
//! control`): two workers (`RVS_BENCH_WORKERS`) on threads of their own serve their links as
//! `rvsd run`'s do between bursts; the control thread serves its Unix socket.
//!
//! - one `-e` (a weight change) over the socket, from connect to reply, applied on every
//!   worker: p50 / p99 / max over `RVS_BENCH_CHANGES` changes (default 2000);
//! - a 10k-service, 100k-dest rule set applied with `--replace` (build + publish + every
//!   worker's swap), then one `-e` with that set in force;
//! - a /metrics render with 100k dests.
//!
//! The heap is reserved first as rvsd's `[control] heap_reserve_mib` does
//! (`RVS_BENCH_HEAP_RESERVE_MIB`, default 1024: this process holds more than rvsd, a second
//! controller and worker beside the socket's; 0 for none).

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_control::appconfig::default_lab;
use rvs_control::control_thread::ControlThread;
use rvs_control::controller::{Base, Controller};
use rvs_control::link::WorkerLink;
use rvs_control::protocol::{self, Reply, Request, MAX_REPLY};
use rvs_control::replay::{workers_with, NicSetup};
use rvs_control::rules::RuleSet;
use rvs_control::socket::ControlSocket;
use rvs_dataplane::pipeline::buf::VecBuf;

// As rvsd: the allocator matters for a 100k-dest change (glibc's aligned allocations are
// slow).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Workers (`RVS_BENCH_WORKERS`, default 2). rvsd runs one worker per lcore after the main
/// one; on a 2-core machine that is one, and two here share the second core, so their swaps of
/// a large change run one after the other.
fn workers() -> u32 {
    std::env::var("RVS_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2)
}

fn request(path: &std::path::Path, req: &Request) -> Reply {
    let mut s = UnixStream::connect(path).expect("connect");
    protocol::write_message(&mut s, req).expect("send");
    let body = protocol::read_message(&mut s, MAX_REPLY)
        .expect("read")
        .expect("a reply");
    protocol::decode_reply(&body).expect("decode")
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

/// `services` services on VIPs `net.100.x.y:80`, each with `dests_per` NAT dests.
fn big_rules(net: u8, services: u32, dests_per: u32) -> String {
    let mut t = String::new();
    for s in 0..services {
        let vip = format!("{net}.{}.{}.{}", 100 + s / 65536, (s / 256) % 256, s % 256);
        t.push_str(&format!("-A -t {vip}:80 -s wlc\n"));
        for d in 0..dests_per {
            t.push_str(&format!(
                "-a -t {vip}:80 -r 172.{}.{}.{}:8080 -m\n",
                16 + d,
                (s / 256) % 256,
                s % 256
            ));
        }
    }
    t
}

fn main() {
    // As rvsd: freed memory stays in the process (control/src/allocator.rs).
    rvs_control::allocator::keep_freed_memory();
    // As an rvsd sized for this rule set (`[control] heap_reserve_mib`, docs/deploy.md):
    // about 6 KiB a dest. 0: none (the first large changes then pay for fresh pages).
    let reserve: u32 = std::env::var("RVS_BENCH_HEAP_RESERVE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    if reserve > 0 {
        let t = Instant::now();
        let resident = rvs_control::allocator::reserve_heap(reserve);
        println!(
            "heap reserve: {reserve} MiB faulted in, {:.0} ms (resident {resident} MiB)",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let changes: usize = std::env::var("RVS_BENCH_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let workers = workers();
    let mut cfg = default_lab();
    cfg.engine.workers = workers;
    cfg.engine.conns_per_worker = 65536;
    let base = Base {
        sysctl: cfg.sysctl(),
        fwmark_v4: Vec::new(),
        fwmark_v6: Vec::new(),
    };
    let rules = RuleSet::from_text(
        "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11\n-a -t 10.0.0.100:80 -r 10.0.0.12\n",
    )
    .unwrap();
    let (ctl, first) = Controller::new(rules, base, workers, 65536).unwrap();
    let ws = workers_with(
        &cfg,
        (first.v4, first.v6),
        workers,
        0,
        &NicSetup::default(),
        |_| Box::new(|| Some(VecBuf::empty())),
    )
    .unwrap();
    let links: Vec<Arc<WorkerLink>> = (0..workers).map(|_| Arc::new(WorkerLink::new(1))).collect();
    let stop = Arc::new(AtomicBool::new(false));
    // As rvsd lays its threads out: the control thread on a housekeeping core (the first),
    // the workers on the others (on a 2-core machine both on the second). Unpinned, two
    // spinning workers took 70 % of the cycles and the control thread waited its turn.
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let worker_cores: Vec<_> = cores.iter().skip(1).copied().collect();
    let control_core = cores.first().copied().filter(|_| !worker_cores.is_empty());
    let mut threads = Vec::new();
    for (i, (mut w, link)) in ws.into_iter().zip(links.clone()).enumerate() {
        let stop = Arc::clone(&stop);
        let b = std::thread::Builder::new().name("bench-worker".into());
        let pin = worker_cores.get(i % worker_cores.len().max(1)).copied();
        threads.push(
            b.spawn(move || {
                if let Some(c) = pin {
                    core_affinity::set_for_current(c);
                }
                let mut seen = 0;
                let t0 = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let now = t0.elapsed().as_millis() as u64;
                    let _ = link.serve(&mut seen, &mut w, now);
                    // Two workers and the control thread share this machine's cores: a worker
                    // that spun without yielding would starve the control thread.
                    std::thread::yield_now();
                }
            })
            .expect("a worker thread"),
        );
    }
    let path = std::env::temp_dir().join(format!("rvs-bench-{}.sock", std::process::id()));
    let sock = ControlSocket::bind(&path, None).unwrap();
    let ctl_stop = Arc::clone(&stop);
    let render_times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let rt = Arc::clone(&render_times);
    let control = std::thread::spawn(move || {
        if let Some(c) = control_core {
            core_affinity::set_for_current(c);
        }
        let mut ct = ControlThread::new(
            ctl,
            links,
            Box::new(move |c| {
                let t = Instant::now();
                let s = rvs_control::ipvs_metrics::render(c);
                rt.lock().unwrap().push((t.elapsed(), s.len()));
                s
            }),
            0,
        )
        .with_socket(sock);
        let t0 = Instant::now();
        while !ctl_stop.load(Ordering::Relaxed) {
            ct.poll(t0.elapsed().as_millis() as u64, Duration::from_millis(1));
        }
        let t = Instant::now();
        let text = ct.render_now();
        (t.elapsed(), text.len())
    });

    // One -e at a time, as rvsadm sends it (connect, request, reply).
    let mut lat = Vec::with_capacity(changes);
    for i in 0..changes {
        let line = format!("-e -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w {}", 1 + i % 100);
        let t = Instant::now();
        let r = request(&path, &Request::Apply { lines: vec![line] });
        lat.push(t.elapsed());
        assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    }
    let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    println!(
        "one -e on {workers} workers, {changes} changes: p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e6
    );

    // 10k services, 100k dests, in one --replace.
    let text = big_rules(10, 10_000, 10);
    // Where the time goes, without workers: parsing, then the controller's snapshot.
    let t = Instant::now();
    let parsed = RuleSet::from_text(&text).unwrap();
    let parse = t.elapsed();
    let t = Instant::now();
    let _ = parsed.to_configs(cfg.sysctl()).unwrap();
    let configs = t.elapsed();
    // The controller alone (parse, snapshots, counter blocks), then one worker's swap.
    let base2 = Base {
        sysctl: cfg.sysctl(),
        fwmark_v4: Vec::new(),
        fwmark_v6: Vec::new(),
    };
    let (mut solo, _) = Controller::new(RuleSet::new(), base2, workers, 65536).unwrap();
    let t = Instant::now();
    let rvs_control::controller::Step::Publish(snap) =
        solo.handle(Request::Replace { text: text.clone() })
    else {
        panic!("a snapshot")
    };
    let controller = t.elapsed();
    let (c4, c6) = rvs_control::replay::snapshots(&cfg, &RuleSet::new()).unwrap();
    let mut w = workers_with(&cfg, (c4, c6), 1, 0, &NicSetup::default(), |_| {
        Box::new(|| Some(VecBuf::empty()))
    })
    .unwrap()
    .remove(0);
    let t = Instant::now();
    let old = w.set_configs(snap.v4, snap.v6, 0);
    let swap = t.elapsed();
    drop(old);
    println!(
        "  (of which: parse {:.1} ms, engine snapshots {:.1} ms; the controller in all {:.1} ms, a worker's swap {:.1} ms)",
        parse.as_secs_f64() * 1e3,
        configs.as_secs_f64() * 1e3,
        controller.as_secs_f64() * 1e3,
        swap.as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let r = request(&path, &Request::Replace { text: text.clone() });
    let took = t.elapsed();
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    println!(
        "--replace of 10000 services, 100000 dests ({} KiB of rules): {:.1} ms",
        text.len() / 1024,
        took.as_secs_f64() * 1e3
    );
    // Replace again with the same set and with another (every dest's weight changed):
    // a reload that changes nothing much, and one that changes every dest.
    let other = text.replace(" -m\n", " -m -w 2\n");
    // And a set of 10k new services (every service and dest new) into the running rvsd, whose
    // heap the first one warmed (the first is mostly the kernel zeroing fresh pages here).
    let fresh = big_rules(11, 10_000, 10);
    for (name, t) in [
        ("the same set", &text),
        ("every weight changed", &other),
        ("10k new services and 100k new dests", &fresh),
    ] {
        let start = Instant::now();
        let r = request(&path, &Request::Replace { text: t.clone() });
        assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
        println!(
            "--replace again, {name}: {:.1} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    // The same, once the heap is rvsd's steady one: each round replaces the whole set by 10k
    // new services after the blocks of the set before were freed (bounded gc: 2048 a tick,
    // so 100k in about 5 s). The first rounds above also pay for fresh memory: in a VM the
    // kernel's zeroing of each new 2 MiB page dominates them (docs/benchmarks.md).
    let steady: usize = std::env::var("RVS_BENCH_STEADY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut took = Vec::new();
    let mut net = 11;
    for i in 0..steady {
        net = 12 + (i % 2) as u8;
        std::thread::sleep(Duration::from_secs(6));
        let t = big_rules(net, 10_000, 10);
        let start = Instant::now();
        let r = request(&path, &Request::Replace { text: t });
        assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
        took.push(start.elapsed());
    }
    if !took.is_empty() {
        let all: Vec<String> = took
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64() * 1e3))
            .collect();
        println!(
            "--replace, 10k new services and 100k new dests, steady heap: {} ms (median {:.1} ms)",
            all.join(", "),
            pct(&mut took, 0.5).as_secs_f64() * 1e3
        );
    }
    let edits: usize = std::env::var("RVS_BENCH_EDITS_100K")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut lat = Vec::new();
    for i in 0..edits {
        let line = format!(
            "-e -t {net}.100.0.1:80 -r 172.16.0.1:8080 -m -w {}",
            1 + i % 100
        );
        let t = Instant::now();
        let r = request(&path, &Request::Apply { lines: vec![line] });
        lat.push(t.elapsed());
        assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    }
    println!(
        "one -e with 100000 dests in force: p50 {:.1} ms, p99 {:.1} ms",
        pct(&mut lat, 0.5).as_secs_f64() * 1e3,
        pct(&mut lat, 0.99).as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let r = request(&path, &Request::List { service: None });
    let Reply::Listing(l) = r else { panic!() };
    println!(
        "-L of {} services: {:.1} ms",
        l.services.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    stop.store(true, Ordering::Relaxed);
    let (render, bytes) = control.join().unwrap();
    println!(
        "/metrics render with 100000 dests: {:.1} ms ({} KiB)",
        render.as_secs_f64() * 1e3,
        bytes / 1024
    );
    for t in threads {
        let _ = t.join();
    }
    println!(
        "resident at the end: {} MiB",
        rvs_control::allocator::resident_mib()
    );
    let _ = render_times;
}

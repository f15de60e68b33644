//! How many checks one core's checker thread sustains (a bench, not a test; `cargo bench -p
//! rvs-control --bench health`): `RVS_BENCH_CHECKERS` (default 1000) real servers, each a
//! listener on its own loopback address (127.1.0.1:8080, ...) served by one thread pinned to
//! another core, and as many checkers (one per real server, TCP_CHECK, then HTTP_GET) on
//! rvsd's checker thread pinned to one core. For each `delay_loop` of `RVS_BENCH_LOOPS`
//! (seconds, default `1,0.2,0.1,0.05`), over `RVS_BENCH_SECONDS` (default 5) after the
//! first round: checks asked per second (checkers / delay_loop), checks done per second (from
//! the health series' counts), failures, the CPU time of the checker thread per second of
//! wall time and the time it was runnable but waited for a CPU (other processes had it;
//! `/proc/self/task/*/schedstat`), checks per CPU-second of the checker thread (what one core
//! given to it alone would sustain: the figure to read on a shared machine, where done/s
//! stop growing once the thread gets no more of its core), and the listeners' CPU.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use rvs_control::health::{Checkers, HealthSeries};
use rvs_control::keepalived;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PORT: u16 = 8080;
const BODY: &str = "ok\n";

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `i`th real server's address: 127.1.0.1, 127.1.0.2, ... (250 per /16).
fn addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1 + (i / 250) as u8, 0, 1 + (i % 250) as u8)
}

/// The listeners' thread: accepts on every address; an HTTP request (anything sent) is
/// answered 200 with a small body, a bare connect is closed.
fn listeners(n: usize, core: Option<core_affinity::CoreId>) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-listeners".into())
        .spawn(move || {
            if let Some(c) = core {
                core_affinity::set_for_current(c);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                for i in 0..n {
                    let l = tokio::net::TcpListener::bind(SocketAddr::from((addr(i), PORT)))
                        .await
                        .expect("bind a loopback listener");
                    tokio::task::spawn_local(async move {
                        loop {
                            let Ok((mut s, _)) = l.accept().await else {
                                continue;
                            };
                            tokio::task::spawn_local(async move {
                                let mut buf = [0u8; 1024];
                                let mut got = Vec::new();
                                while let Ok(k) = s.read(&mut buf).await {
                                    if k == 0 {
                                        return;
                                    }
                                    got.extend_from_slice(&buf[..k]);
                                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                                        break;
                                    }
                                }
                                let answer = format!(
                                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{BODY}",
                                    BODY.len()
                                );
                                let _ = s.write_all(answer.as_bytes()).await;
                            });
                        }
                    });
                }
                let _ = ready_tx.send(());
                std::future::pending::<()>().await;
            });
        })
        .expect("listeners' thread");
    ready_rx.recv().expect("listeners ready");
}

fn conf(n: usize, delay_loop: f64, http: bool) -> String {
    let check = if http {
        "        HTTP_GET {\n            url {\n                path /health\n                status_code 200\n            }\n            connect_timeout 2\n            retry 1\n            delay_before_retry 1\n        }\n"
    } else {
        "        TCP_CHECK {\n            connect_timeout 2\n            retry 1\n            delay_before_retry 1\n        }\n"
    };
    let mut t = String::new();
    // 100 real servers per virtual server.
    for v in 0..n.div_ceil(100) {
        t.push_str(&format!(
            "virtual_server 10.0.{}.{} 80 {{\n    delay_loop {delay_loop}\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n",
            v / 250,
            1 + v % 250
        ));
        for i in v * 100..((v + 1) * 100).min(n) {
            t.push_str(&format!(
                "    real_server {} {PORT} {{\n{check}    }}\n",
                addr(i)
            ));
        }
        t.push_str("}\n");
    }
    t
}

/// Each of this process's threads, by name: seconds on a CPU and seconds runnable but
/// waiting for one (`/proc/self/task/*/schedstat`, nanoseconds).
fn thread_times() -> HashMap<String, (f64, f64)> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let (Ok(comm), Ok(sched)) = (
            std::fs::read_to_string(t.path().join("comm")),
            std::fs::read_to_string(t.path().join("schedstat")),
        ) else {
            continue;
        };
        let f: Vec<f64> = sched
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let (Some(run), Some(wait)) = (f.first(), f.get(1)) else {
            continue;
        };
        let e = out.entry(comm.trim().to_string()).or_insert((0.0, 0.0));
        e.0 += run / 1e9;
        e.1 += wait / 1e9;
    }
    out
}

struct Row {
    check: &'static str,
    delay_loop: f64,
    asked: f64,
    done: f64,
    failures: u64,
    checker_cpu: f64,
    /// Runnable but waiting for a CPU (another process had it).
    checker_wait: f64,
    listener_cpu: f64,
    changes: usize,
}

fn step(
    dir: &Path,
    n: usize,
    delay_loop: f64,
    http: bool,
    seconds: f64,
    core: Option<core_affinity::CoreId>,
) -> Row {
    let path = dir.join(format!("bench-{delay_loop}-{http}.conf"));
    std::fs::write(&path, conf(n, delay_loop, http)).expect("write the keepalived file");
    let cfg = keepalived::load(&path).expect("the bench's keepalived file");
    let initial = cfg.rules(&cfg.initial()).expect("its rules");
    let changes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = std::sync::Arc::clone(&changes);
    let series = HealthSeries::new();
    let checkers = Checkers::start(
        cfg,
        initial,
        Box::new(move |_| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }),
        core,
        series.clone(),
    )
    .expect("the checker thread");
    // The first round is spread over the first delay_loop (at most 1 s).
    std::thread::sleep(Duration::from_secs_f64(delay_loop.min(1.0) + 0.5));
    let (c0, f0) = series.totals();
    let cpu0 = thread_times();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (c1, f1) = series.totals();
    let cpu1 = thread_times();
    let wall = t0.elapsed().as_secs_f64();
    checkers.stop();
    let per_s = |name: &str| {
        let (a, b) = (
            cpu0.get(name).copied().unwrap_or_default(),
            cpu1.get(name).copied().unwrap_or_default(),
        );
        ((b.0 - a.0) / wall, (b.1 - a.1) / wall)
    };
    Row {
        check: if http { "HTTP_GET" } else { "TCP_CHECK" },
        delay_loop,
        asked: n as f64 / delay_loop,
        done: (c1 - c0) as f64 / wall,
        failures: f1 - f0,
        checker_cpu: per_s("rvs-health").0,
        checker_wait: per_s("rvs-health").1,
        listener_cpu: per_s("bench-listeners").0,
        changes: changes.load(std::sync::atomic::Ordering::Relaxed),
    }
}

fn main() {
    let n: usize = env("RVS_BENCH_CHECKERS", 1000);
    let seconds: f64 = env("RVS_BENCH_SECONDS", 5.0);
    let loops: Vec<f64> = std::env::var("RVS_BENCH_LOOPS")
        .unwrap_or_else(|_| "1,0.2,0.1,0.05".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    // The checker thread on the last core, the listeners on the first (on a one-core
    // machine both share it).
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (checker_core, listener_core) = match cores.as_slice() {
        [] => (None, None),
        [one] => (Some(*one), Some(*one)),
        [first, .., last] => (Some(*last), Some(*first)),
    };
    let dir = std::env::temp_dir().join(format!("rvs-health-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    listeners(n, listener_core);
    println!(
        "health bench: {n} checkers against {n} loopback listeners; checker thread on core {}, listeners on core {}; {seconds} s per row",
        checker_core.map_or("any".into(), |c| c.id.to_string()),
        listener_core.map_or("any".into(), |c| c.id.to_string()),
    );
    println!(
        "{:<10} {:>10} {:>9} {:>9} {:>9} {:>12} {:>13} {:>13} {:>14} {:>8}",
        "check",
        "delay_loop",
        "asked/s",
        "done/s",
        "failures",
        "checker CPU",
        "checker wait",
        "checks/CPU-s",
        "listeners CPU",
        "changes"
    );
    for http in [false, true] {
        for &d in &loops {
            let r = step(&dir, n, d, http, seconds, checker_core);
            println!(
                "{:<10} {:>9}s {:>9.0} {:>9.0} {:>9} {:>11.0}% {:>12.0}% {:>13.0} {:>13.0}% {:>8}",
                r.check,
                r.delay_loop,
                r.asked,
                r.done,
                r.failures,
                r.checker_cpu * 100.0,
                r.checker_wait * 100.0,
                r.done / r.checker_cpu.max(1e-9),
                r.listener_cpu * 100.0,
                r.changes
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

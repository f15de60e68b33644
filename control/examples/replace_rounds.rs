//! Where a large rule change goes, without the socket and on one thread: the controller's
//! answer (parse, snapshots, counter blocks), one worker's swap, and the registry's gc, round
//! after round (so that a profiler sees the steady state, not only the first touch of fresh
//! memory). Run with `cargo run --release -p rvs-control --example replace_rounds -- MODE`,
//! `ROUNDS=N` (default 6); under `perf record -g` for a profile.
//!
//! Modes: `fresh` (a 10k-service, 100k-dest set of new identities each round), `same` (two
//! sets that differ in every weight, alternately), `edit` (one `-e` at a time with 100k dests
//! in force).

use std::time::Instant;

use rvs_control::appconfig::default_lab;
use rvs_control::controller::{Base, Controller, Step};
use rvs_control::protocol::Request;
use rvs_control::replay::{workers_with, NicSetup};
use rvs_control::rules::RuleSet;
use rvs_dataplane::pipeline::buf::VecBuf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `services` services on VIPs `net.100.x.y:80`, each with `dests` NAT dests of weight `w`.
fn rules(net: u8, services: u32, dests: u32, w: u32) -> String {
    let mut t = String::new();
    for s in 0..services {
        let vip = format!("{net}.{}.{}.{}", 100 + s / 65536, (s / 256) % 256, s % 256);
        t.push_str(&format!("-A -t {vip}:80 -s wlc\n"));
        for d in 0..dests {
            let (b, c) = ((s / 256) % 256, s % 256);
            t.push_str(&format!(
                "-a -t {vip}:80 -r 172.{}.{b}.{c}:8080 -m -w {w}\n",
                16 + d
            ));
        }
    }
    t
}

fn main() {
    rvs_control::allocator::keep_freed_memory();
    let mode = std::env::args().nth(1).unwrap_or_else(|| "fresh".into());
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let mut cfg = default_lab();
    cfg.engine.workers = 2;
    cfg.engine.conns_per_worker = 65536;
    let base = Base {
        sysctl: cfg.sysctl(),
        fwmark_v4: Vec::new(),
        fwmark_v6: Vec::new(),
    };
    let (mut ctl, _) = Controller::new(RuleSet::new(), base, 2, 65536).expect("a controller");
    let (c4, c6) = rvs_control::replay::snapshots(&cfg, &RuleSet::new()).expect("snapshots");
    let mut w = workers_with(&cfg, (c4, c6), 1, 0, &NicSetup::default(), |_| {
        Box::new(|| Some(VecBuf::empty()))
    })
    .expect("a worker")
    .remove(0);
    let sets: Vec<String> = match mode.as_str() {
        "fresh" => (11..14).map(|net| rules(net, 10_000, 10, 1)).collect(),
        "same" | "edit" => vec![rules(10, 10_000, 10, 1), rules(10, 10_000, 10, 2)],
        _ => panic!("modes: fresh, same, edit"),
    };
    let mut step = |ctl: &mut Controller, req: Request, what: &str| {
        let rss0 = rvs_control::allocator::resident_mib();
        let t = Instant::now();
        let Step::Publish(s) = ctl.handle(req) else {
            panic!("{what}: no snapshot")
        };
        let answer = t.elapsed();
        let rss1 = rvs_control::allocator::resident_mib();
        let t = Instant::now();
        let old = w.set_configs(s.v4, s.v6, 0);
        let swap = t.elapsed();
        let rss2 = rvs_control::allocator::resident_mib();
        // The snapshot the worker replaced (rvsd frees it after the reply).
        let t = Instant::now();
        drop(old);
        let free = t.elapsed();
        let t = Instant::now();
        let freed = ctl.stats_mut().gc();
        println!(
            "{what}: controller {:.1} ms, a worker's swap {:.1} ms, freeing the old snapshot \
             {:.1} ms, gc of {freed} blocks {:.1} ms (resident {rss0} -> {rss1} -> {rss2} -> {} MiB)",
            answer.as_secs_f64() * 1e3,
            swap.as_secs_f64() * 1e3,
            free.as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() * 1e3,
            rvs_control::allocator::resident_mib()
        );
    };
    if mode == "edit" {
        step(
            &mut ctl,
            Request::Replace {
                text: sets[0].clone(),
            },
            "load",
        );
        for i in 0..rounds * 10 {
            let line = format!(
                "-e -t 10.100.0.1:80 -r 172.16.0.1:8080 -m -w {}",
                2 + i % 100
            );
            step(&mut ctl, Request::Apply { lines: vec![line] }, "-e");
        }
        return;
    }
    for i in 0..rounds {
        let text = sets[i % sets.len()].clone();
        step(&mut ctl, Request::Replace { text }, &format!("{mode} {i}"));
    }
}

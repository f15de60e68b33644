//! Engine benchmarks (criterion): conn lookup hit with 1M and 10M conns (one at a time, one
//! after the other's answer, and by bursts of 32 with prefetch) against one DRAM round
//! trip, conn create through the whole new-conn path, expiry, and the drop_entry scan. Prints
//! the table's bytes per conn. Targets (issue 2): lookup hit <= 40 ns at 10M conns, create
//! <= 100 ns.
//!
//! `cargo bench -p rvs-dataplane --bench engine`; `RVS_BENCH_BIG=0` skips the 10M table.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvs_dataplane::addr::{Family, V4, V6};
use rvs_dataplane::config::{Config, DestConfig, Fwd, ServiceConfig, ServiceKey, Sysctl};
use rvs_dataplane::conn::{Conn, ConnKey, ConnParam, ConnTable, BURST};
use rvs_dataplane::proto::{tcp, Proto};
use rvs_dataplane::rng::Rng;
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::shard::{Packet, Shard, ShardParams, Verdict};

const VIP: V4 = V4(0xC0A8_6401);

fn client(i: u32) -> (V4, u16) {
    // Spread clients over addresses and ports like real traffic.
    (
        V4(0x0A00_0000 ^ i.wrapping_mul(0x9E37_79B1) >> 4),
        1024 + (i % 60_000) as u16,
    )
}

fn filled_table(n: u32) -> (ConnTable<V4>, Vec<ConnKey<V4>>) {
    let mut t = ConnTable::<V4>::new(n, 7, 0);
    let mut keys = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (caddr, cport) = client(i);
        let p = ConnParam {
            proto: 6,
            caddr,
            cport,
            vaddr: VIP,
            vport: 80,
        };
        let c = Conn::new(p, 0, 0, 900_000);
        let Some(s) = t.alloc(c, 900_000) else { break };
        t.hash(s);
        keys.push(ConnKey {
            proto: 6,
            caddr,
            cport,
            addr: VIP,
            port: 80,
            template: false,
        });
    }
    (t, keys)
}

/// The memory a shard's conns take per conn of capacity, everything included (entries, index,
/// timers), for each family: one line each.
fn print_bytes_per_conn() {
    fn line<A: Family>(name: &str) {
        // The figure hardly depends on the capacity; 2^26 is a worker's largest.
        let per = |cap: u32| Shard::<A>::conn_memory_for(cap) as f64 / f64::from(cap);
        eprintln!(
            "{name} conn: {:.1} B of capacity, everything included ({:.1} at 1M, {:.1} at 2^26)",
            per(10_000_000),
            per(1 << 20),
            per(1 << 26)
        );
    }
    line::<V4>("IPv4");
    line::<V6>("IPv6");
}

fn bench_lookup(c: &mut Criterion) {
    print_bytes_per_conn();
    let mut sizes = vec![1_000_000u32];
    if std::env::var("RVS_BENCH_BIG").map_or(true, |v| v != "0") {
        sizes.push(10_000_000);
    }
    for n in sizes {
        let (t, keys) = filled_table(n);
        eprintln!(
            "conn table: {} conns, {} B/conn entry, {:.1} B/conn of capacity in the table",
            n,
            core::mem::size_of::<Conn<V4>>(),
            t.bytes() as f64 / f64::from(n)
        );
        // Keys in a fixed random order, read sequentially: every lookup is a cold miss in the
        // table, as in real traffic, while the key itself is at hand (it comes in the packet).
        let mut rng = Rng::new(3);
        let probe: Vec<ConnKey<V4>> = (0..(1 << 20))
            .map(|_| keys[rng.below(keys.len() as u64) as usize])
            .collect();
        drop(keys);
        let mut g = c.benchmark_group(format!("lookup_hit_{}M", n / 1_000_000));
        g.throughput(Throughput::Elements(1));
        g.bench_function("single", |b| {
            let mut i = 0usize;
            b.iter(|| {
                let k = &probe[i & (probe.len() - 1)];
                i += 1;
                black_box(t.lookup(k))
            })
        });
        // One lookup after the other, each key chosen by what the one before found in its
        // entry (a dest slot is below 2^31, so the shift adds 0, which neither the compiler,
        // behind `black_box`, nor the CPU can know):
        // the latency of a lookup and the read of its entry, as a packet needs them, to set
        // against `dram_round_trip` below. (Chained on the returned slot alone, the entry's
        // read would overlap the next lookup: the compare that checks it is predicted.)
        g.bench_function("dependent", |b| {
            let mut i = 0usize;
            b.iter(|| {
                let k = &probe[i & (probe.len() - 1)];
                let dest = black_box(black_box(t.lookup(k)).map_or(0, |s| t.get(s).dest()));
                i = i.wrapping_add(1 + (dest >> 31) as usize);
            })
        });
        g.throughput(Throughput::Elements(BURST as u64));
        g.bench_function("burst_prefetch", |b| {
            let mut i = 0usize;
            let mut out = [None; BURST];
            b.iter(|| {
                let at = i & (probe.len() - 1);
                i += BURST;
                t.lookup_burst(&probe[at..at + BURST], &mut out);
                black_box(&out);
            })
        });
        g.finish();
    }
    dram_round_trip(c);
}

/// One DRAM round trip, as the lookups above see it: a chase through a random cycle of
/// 2^26 u32 (256 MiB, past any cache, on huge pages as the conn table), one dependent load a
/// step.
fn dram_round_trip(c: &mut Criterion) {
    const N: usize = 1 << 26;
    // Sattolo's shuffle: one cycle through every slot.
    let mut next = rvs_dataplane::mem::huge_slice(N, 0u32);
    for (i, v) in next.iter_mut().enumerate() {
        *v = i as u32;
    }
    let mut rng = Rng::new(11);
    for i in (1..N).rev() {
        let j = rng.below(i as u64) as usize;
        next.swap(i, j);
    }
    let mut g = c.benchmark_group("memory");
    g.throughput(Throughput::Elements(1));
    g.bench_function("dram_round_trip", |b| {
        let mut at = 0u32;
        b.iter(|| {
            at = next[at as usize];
            black_box(at)
        })
    });
    g.finish();
}

fn shard(capacity: u32, sysctl: Sysctl) -> Shard<V4> {
    let mut svc = ServiceConfig::new(
        ServiceKey::Addr {
            proto: Proto::Tcp,
            vaddr: VIP,
            vport: 80,
        },
        SchedKind::Wlc,
    );
    svc.dests = (0..8)
        .map(|i| DestConfig {
            addr: V4(0x0A0A_0001 + i),
            port: 80,
            weight: 1,
            fwd: Fwd::Droute,
            u_threshold: 0,
            l_threshold: 0,
            ..Default::default()
        })
        .collect();
    svc.rebuild_tables();
    let cfg = Arc::new(Config::new(vec![svc], sysctl).expect("valid bench config"));
    Shard::new(
        ShardParams {
            capacity,
            max_dests: 64,
            seed: 5,
            ..Default::default()
        },
        cfg,
        0,
    )
}

/// New conns through the whole path (lookup miss, service, wlc over 8 dests, alloc, hash,
/// state, timer), `batch` at a time, then flushed outside the timing.
fn bench_create_expire(c: &mut Criterion) {
    const N: u32 = 1 << 20;
    const BATCH: u64 = 1 << 16;
    let mut g = c.benchmark_group("conn");
    g.throughput(Throughput::Elements(1));
    let mut s = shard(N, Sysctl::default());
    let mut next = 0u32;
    g.bench_function("create_syn", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let batch = left.min(BATCH) as u32;
                let start = Instant::now();
                for _ in 0..batch {
                    let (caddr, cport) = client(next);
                    next = next.wrapping_add(1);
                    black_box(s.process(&Packet::tcp(caddr, cport, VIP, 80, tcp::SYN), 1));
                }
                total += start.elapsed();
                s.flush(1);
                left -= u64::from(batch);
            }
            total
        })
    });
    g.bench_function("create_syn_burst", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            let mut pkts = [Packet::tcp(VIP, 0, VIP, 80, tcp::SYN); BURST];
            let mut out = [Verdict::NotOurs; BURST];
            while left > 0 {
                let batch = left.min(BATCH) as u32 / BURST as u32 * BURST as u32;
                let batch = batch.max(BURST as u32);
                let start = Instant::now();
                for _ in 0..batch / BURST as u32 {
                    for p in pkts.iter_mut() {
                        let (caddr, cport) = client(next);
                        next = next.wrapping_add(1);
                        *p = Packet::tcp(caddr, cport, VIP, 80, tcp::SYN);
                    }
                    s.process_burst(&pkts, 1, &mut out);
                    black_box(&out);
                }
                total += start.elapsed();
                s.flush(1);
                left = left.saturating_sub(u64::from(batch));
            }
            total
        })
    });
    let mut now = 10_000_000u64;
    g.bench_function("expire", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let batch = left.min(BATCH) as u32;
                for _ in 0..batch {
                    let (caddr, cport) = client(next);
                    next = next.wrapping_add(1);
                    s.process(&Packet::tcp(caddr, cport, VIP, 80, tcp::SYN), now);
                }
                // All SYN_RECV: they come due 60 s later, together.
                let due = now + 60_000;
                s.tick(due - 1);
                let start = Instant::now();
                s.tick(due);
                total += start.elapsed();
                now = due + 1;
                left -= u64::from(batch);
            }
            total
        })
    });
    g.finish();
}

/// One second's drop_entry scan (1/32 of the index buckets) over 1M established conns that
/// it keeps (re-armed recently), so the same table is scanned every iteration.
fn bench_scan(c: &mut Criterion) {
    const N: u32 = 1 << 20;
    let mut sysctl = Sysctl {
        drop_entry: 3,
        ..Sysctl::default()
    };
    // Established conns that neither time out during the run nor qualify for try-drop
    // (more than 8 inbound packets), so every iteration scans the same table.
    sysctl.timeouts.set_tcp_tcpfin_udp(2_000_000, 0, 0);
    let mut s = shard(N + 1024, sysctl);
    for i in 0..N {
        let (caddr, cport) = client(i);
        s.process(&Packet::tcp(caddr, cport, VIP, 80, tcp::SYN), 1);
        for _ in 0..9 {
            s.process(&Packet::tcp(caddr, cport, VIP, 80, tcp::ACK), 1);
        }
    }
    let buckets = s.table().buckets() as u64;
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Elements(buckets / 32));
    let mut now = 1_000u64;
    g.bench_function("drop_entry_1M_conns_per_bucket", |b| {
        b.iter(|| {
            now += 1000;
            s.tick(now);
        })
    });
    g.finish();
    eprintln!(
        "scan: {} buckets per second's scan over {} conns",
        buckets / 32,
        s.table().len()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_secs(1));
    targets = bench_lookup, bench_create_expire, bench_scan
}
criterion_main!(benches);

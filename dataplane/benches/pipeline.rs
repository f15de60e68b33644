//! Packet-path benchmarks (criterion): frames per second on one core through parse, steer,
//! lookup, state, rewrite and neighbor resolution. Established DR with 1M flows, NAT in and
//! out, new conns (SYN), and a SYN flood with drop_entry active. Frames are pre-built and
//! copied into the worker's buffer per packet (a NIC's DMA would put them there). The clock
//! advances 1 ms per 8192 frames, as at 8.2 Mpps; the timers and defense tick every burst.
//!
//! `cargo bench -p rvs-dataplane --bench pipeline` (`RVS_BENCH_FLOWS=65536` for a smaller,
//! cache-resident table). Targets (issue 3): >= 20 Mpps established DR on one core, >= 5 Mpps
//! new conns. Figures and history: docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use etherparse::PacketBuilder;
use rvs_dataplane::addr::{V4, V6};
use rvs_dataplane::config::{Config, DestConfig, Fwd, ServiceConfig, ServiceKey, Sysctl};
use rvs_dataplane::conn::BURST;
use rvs_dataplane::l3::Route;
use rvs_dataplane::pipeline::buf::{Buf, VecBuf};
use rvs_dataplane::pipeline::worker::{Out, PortInfo, Presence, Worker};
use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::shard::ShardParams;

const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const VIP: [u8; 4] = [10, 0, 0, 100];

fn v4(a: [u8; 4]) -> V4 {
    V4(u32::from_be_bytes(a))
}

fn worker(fwd: Fwd, capacity: u32, sysctl: Sysctl) -> Worker<VecBuf> {
    let mut s = ServiceConfig::new(
        ServiceKey::Addr {
            proto: Proto::Tcp,
            vaddr: v4(VIP),
            vport: 80,
        },
        SchedKind::Wlc,
    );
    s.dests = (0..8u8)
        .map(|i| DestConfig {
            addr: v4([10, 0, 0, 10 + i]),
            port: 80,
            weight: 1,
            fwd,
            ..Default::default()
        })
        .collect();
    s.rebuild_tables();
    let cfg = Config::new(vec![s], sysctl).expect("valid");
    let port = PortInfo {
        name: "p0".into(),
        mac: LB_MAC,
        addrs4: vec![(v4([10, 0, 0, 1]), 24)],
        addrs6: vec![],
        mtu: 1500,
        tx_offload: Default::default(),
    };
    let statics = (0..8u8)
        .map(|i| (v4([10, 0, 0, 10 + i]), [2, 0, 0, 0, 1, i], 0))
        .chain([(v4([10, 0, 0, 254]), [2, 0, 0, 0, 0, 0xfe], 0)]);
    let pres = Presence::new(
        vec![port],
        &[(
            V4(0),
            0,
            Route {
                port: 0,
                via: Some(v4([10, 0, 0, 254])),
            },
        )],
        &[],
        statics.collect(),
        vec![],
    )
    .expect("valid");
    Worker::new(
        0,
        1,
        ShardParams {
            capacity,
            ..ShardParams::default()
        },
        (Arc::new(cfg), Arc::new(Config::<V6>::default())),
        Arc::new(pres),
        Box::new(|| Some(VecBuf::empty())),
        0,
    )
}

/// A frame padded to 64 bytes of storage; `pump` copies all 64 and trims to `len`.
struct Frame64 {
    bytes: [u8; 64],
    len: usize,
}

fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, syn: bool) -> Frame64 {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xc1], LB_MAC)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut v = Vec::new();
    b.write(&mut v, b"").expect("frame");
    frame64(&v)
}

fn frame64(v: &[u8]) -> Frame64 {
    let mut bytes = [0u8; 64];
    bytes[..v.len()].copy_from_slice(v);
    Frame64 {
        bytes,
        len: v.len(),
    }
}

/// [`tcp`] with an 802.1Q tag (VLAN 42) after the MACs.
fn tcp_vlan(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Frame64 {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xc1], LB_MAC)
        .single_vlan(etherparse::VlanId::try_new(42).expect("vlan id"))
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 64240)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, b"").expect("frame");
    frame64(&v)
}

fn client(i: u32) -> ([u8; 4], u16) {
    let a = 0x0b00_0000 | (i.wrapping_mul(0x9E37_79B1) >> 8);
    (a.to_be_bytes(), 1024 + (i % 60_000) as u16)
}

thread_local! {
    /// Buffers reused across runs (as an mbuf pool): allocated once, not per measurement.
    static POOL: std::cell::RefCell<Vec<VecBuf>> = std::cell::RefCell::new((0..BURST).map(|_| VecBuf::empty()).collect());
}

/// Run `frames` through the worker in bursts of [`BURST`] (rvsd's rx burst), reusing pooled
/// buffers.
fn pump(w: &mut Worker<VecBuf>, frames: &[Frame64], iters: u64, now: &mut u64) -> Duration {
    POOL.with(|p| pump_with(&mut p.borrow_mut(), w, frames, iters, now))
}

fn pump_with(
    spare: &mut Vec<VecBuf>,
    w: &mut Worker<VecBuf>,
    frames: &[Frame64],
    iters: u64,
    now: &mut u64,
) -> Duration {
    let mut burst: Vec<Option<VecBuf>> = (0..BURST).map(|_| None).collect();
    let start = Instant::now();
    let mut i = 0usize;
    let mut done = 0u64;
    while done < iters {
        // Virtual time as a worker forwarding 8.2 Mpps sees it: 1 ms per 8192 frames. The
        // tick runs every burst, as in the DPDK loop.
        if (done / BURST as u64).is_multiple_of(8192 / BURST as u64) {
            *now += 1;
        }
        w.tick(*now, &mut |_| {});
        for slot in burst.iter_mut() {
            let f = &frames[i % frames.len()];
            // The frames stream from a large array: fetch ahead, as a NIC would have written
            // them by now.
            rvs_dataplane::mem::prefetch_read(&frames[(i + 16) % frames.len()]);
            i += 1;
            let Some(mut b) = spare.pop() else { break };
            b.reset();
            // Frames are at most 64 bytes here: a fixed-size copy (two vector moves, like a
            // NIC writing the frame), then cut to the frame's length.
            if let Some(d) = b.append(64).and_then(|d| <&mut [u8; 64]>::try_from(d).ok()) {
                *d = f.bytes;
            }
            b.trim(f.len);
            *slot = Some(b);
        }
        w.rx_burst(0, &mut burst, *now, &mut |o| match o {
            Out::Tx { buf, .. }
            | Out::Drop(buf)
            | Out::Kernel { buf, .. }
            | Out::Handoff { buf, .. } => spare.push(buf),
        });
        done += BURST as u64;
    }
    black_box(spare.len());
    start.elapsed()
}

fn established(c: &mut Criterion) {
    // RVS_BENCH_FLOWS sets another table size (e.g. 65536: cache-resident, the path's own
    // cost without the memory latency of 1M conns); the names still say 1M.
    let flows: u32 = std::env::var("RVS_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 20);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));
    for fwd in [Fwd::Droute, Fwd::Masq] {
        let (mut w, acks, mut now) = established_setup(fwd, flows);
        let name = if fwd == Fwd::Droute {
            "dr_established_1M_flows"
        } else {
            "nat_in_established_1M_flows"
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| pump(&mut w, &acks, iters, &mut now))
        });
        if fwd == Fwd::Masq {
            // Replies from the dests, back to the clients.
            let replies = replies(&w, flows);
            g.bench_function("nat_out_established_1M_flows", |b| {
                b.iter_custom(|iters| pump(&mut w, &replies, iters, &mut now))
            });
        }
    }
    g.finish();
}

/// A worker with `flows` conns opened by their SYNs, and an ACK of every flow in a random
/// order (`shuffled`).
fn established_setup(fwd: Fwd, flows: u32) -> (Worker<VecBuf>, Vec<Frame64>, u64) {
    let mut w = worker(fwd, flows + 4096, Sysctl::default());
    let mut now = 1u64;
    let syns: Vec<Frame64> = (0..flows)
        .map(|i| {
            let (a, p) = client(i);
            tcp(a, p, VIP, 80, true)
        })
        .collect();
    pump(&mut w, &syns, u64::from(flows), &mut now);
    drop(syns);
    let acks: Vec<Frame64> = shuffled(flows)
        .iter()
        .map(|&i| {
            let (a, p) = client(i);
            tcp(a, p, VIP, 80, false)
        })
        .collect();
    (w, acks, now)
}

/// Replies from the dests to every flow of a NAT worker, in the `shuffled` order.
fn replies(w: &Worker<VecBuf>, flows: u32) -> Vec<Frame64> {
    shuffled(flows)
        .iter()
        .map(|&i| {
            let (a, p) = client(i);
            // wlc spread the flows over 8 dests; a reply from the wrong one would miss, so
            // ask the shard which dest each flow got.
            let d = dest_of(w, a, p);
            tcp(d, 80, a, p, false)
        })
        .collect()
}

/// The flows `0..flows` in a fixed random order.
fn shuffled(flows: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..flows).collect();
    let mut rng = rvs_dataplane::rng::Rng::new(9);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    order
}

fn dest_of(w: &Worker<VecBuf>, caddr: [u8; 4], cport: u16) -> [u8; 4] {
    let key = rvs_dataplane::conn::ConnKey {
        proto: 6,
        caddr: v4(caddr),
        cport,
        addr: v4(VIP),
        port: 80,
        template: false,
    };
    w.f4.shard
        .icmp_lookup(&key, rvs_dataplane::conn::Side::In)
        .map_or([0; 4], |x| x.daddr.0.to_be_bytes())
}

fn new_conns(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));
    const N: u32 = 1 << 20;
    let syns: Vec<Frame64> = (0..N)
        .map(|i| {
            let (a, p) = client(i);
            tcp(a, p, VIP, 80, true)
        })
        .collect();
    // New conns: a fresh table per batch so every SYN creates one.
    g.bench_function("syn_new_conns", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(u64::from(N / 2));
                let mut w = worker(Fwd::Droute, N, Sysctl::default());
                let mut now = 1;
                total += pump(&mut w, &syns, n, &mut now);
                left -= n;
            }
            total
        })
    });
    // A SYN flood against a full-ish table with drop_entry always on: the steady state.
    let sysctl = Sysctl {
        drop_entry: 3,
        ..Sysctl::default()
    };
    let mut w = worker(Fwd::Droute, 1 << 18, sysctl);
    let mut now = 1;
    g.bench_function("syn_flood_drop_entry", |b| {
        b.iter_custom(|iters| pump(&mut w, &syns, iters, &mut now))
    });
    g.finish();
}

/// `RVS_BENCH_COUNT=<frames>`: no criterion; set up the established bench of
/// `RVS_BENCH_PATH` (`dr`, the default, `nat_in` or `nat_out`; `dr_vlan`: the DR conns' ACKs
/// with a VLAN tag, which take the general path), or the SYN flood's steady
/// state (`syn_flood`: 1M sources into a 256K-entry table with drop_entry 3, warmed with 2^23
/// SYNs, the virtual second's defense scan and the expiries of what it drops included from
/// 8.2M frames on), and pump that many frames through `counted`, for an instruction count
/// per frame that does not depend on the machine's load:
/// `valgrind --tool=callgrind --toggle-collect='*counted*' target/release/deps/pipeline-*`.
fn count_mode() -> bool {
    let Some(frames) = std::env::var("RVS_BENCH_COUNT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return false;
    };
    let flows: u32 = std::env::var("RVS_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 16);
    let path = std::env::var("RVS_BENCH_PATH").unwrap_or_else(|_| "dr".into());
    if path == "syn_flood" {
        let syns: Vec<Frame64> = (0..1u32 << 20)
            .map(|i| {
                let (a, p) = client(i);
                tcp(a, p, VIP, 80, true)
            })
            .collect();
        let sysctl = Sysctl {
            drop_entry: 3,
            ..Sysctl::default()
        };
        let mut w = worker(Fwd::Droute, 1 << 18, sysctl);
        let mut now = 1;
        pump(&mut w, &syns, 1 << 23, &mut now);
        counted(&mut w, &syns, frames, &mut now);
        eprintln!("counted {frames} syn_flood frames");
        return true;
    }
    let fwd = if path == "dr" || path == "dr_vlan" {
        Fwd::Droute
    } else {
        Fwd::Masq
    };
    let (mut w, acks, mut now) = established_setup(fwd, flows);
    let frames_of = match path.as_str() {
        "dr" | "nat_in" => acks,
        // The same conns, their ACKs tagged: the general path.
        "dr_vlan" => shuffled(flows)
            .iter()
            .map(|&i| {
                let (a, p) = client(i);
                tcp_vlan(a, p, VIP, 80)
            })
            .collect(),
        "nat_out" => replies(&w, flows),
        other => {
            eprintln!("RVS_BENCH_PATH={other:?}: want dr, nat_in, nat_out or dr_vlan");
            return true;
        }
    };
    // One pass first so the counted frames see warm tables, then the counted ones.
    pump(&mut w, &frames_of, u64::from(flows), &mut now);
    counted(&mut w, &frames_of, frames, &mut now);
    eprintln!("counted {frames} {path} frames over {flows} flows");
    true
}

#[inline(never)]
fn counted(w: &mut Worker<VecBuf>, frames: &[Frame64], iters: u64, now: &mut u64) {
    black_box(pump(w, frames, iters, now));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_secs(1));
    targets = established, new_conns
}
fn main() {
    if count_mode() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

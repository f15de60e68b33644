//! Any frame, alone or in a burst, through a whole worker (classify, parse, steer, engine,
//! rewrite, local answers): no panic, and every frame comes out once.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rvs_dataplane::addr::{V4, V6};
use rvs_dataplane::config::{
    Config, DestConfig, Fwd, Persistence, ServiceConfig, ServiceKey, Sysctl,
};
use rvs_dataplane::l3::Route;
use rvs_dataplane::pipeline::buf::VecBuf;
use rvs_dataplane::pipeline::worker::{PortInfo, Presence, Worker};
use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::shard::ShardParams;
use std::sync::Mutex;

fn worker() -> Worker<VecBuf> {
    let vip = V4(0x0a00_0064);
    let svc = |proto, fwd| {
        let mut s = ServiceConfig::new(
            ServiceKey::Addr {
                proto,
                vaddr: vip,
                vport: 80,
            },
            SchedKind::Wlc,
        );
        s.persistence = Some(Persistence {
            timeout_ms: 300_000,
            prefix: 24,
        });
        s.dests = vec![DestConfig {
            addr: V4(0x0a00_000b),
            port: 80,
            weight: 1,
            fwd,
            ..Default::default()
        }];
        s.rebuild_tables();
        s
    };
    let cfg = Config::new(
        vec![
            svc(Proto::Tcp, Fwd::Masq),
            svc(Proto::Udp, Fwd::Tunnel),
            svc(Proto::Sctp, Fwd::Droute),
        ],
        Sysctl::default(),
    )
    .expect("valid");
    let port = PortInfo {
        name: "p0".into(),
        mac: [2, 0, 0, 0, 0, 1],
        addrs4: vec![(V4(0x0a00_0001), 24)],
        addrs6: vec![],
        mtu: 1500,
        tx_offload: Default::default(),
    };
    let pres = Presence::new(
        vec![port],
        &[(
            V4(0),
            0,
            Route {
                port: 0,
                via: Some(V4(0x0a00_00fe)),
            },
        )],
        &[],
        vec![],
        vec![],
    )
    .expect("valid");
    Worker::new(
        0,
        2,
        ShardParams {
            capacity: 4096,
            ..ShardParams::default()
        },
        (Arc::new(cfg), Arc::new(Config::<V6>::default())),
        Arc::new(pres),
        Box::new(|| Some(VecBuf::empty())),
        0,
    )
}

static W: OnceLock<Mutex<(Worker<VecBuf>, u64)>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let m = W.get_or_init(|| Mutex::new((worker(), 0)));
    let Ok(mut g) = m.lock() else { return };
    let (w, now) = &mut *g;
    *now += 7;
    // A burst: the first byte is how many frames (1..=4); each frame is a length byte and
    // that many bytes (the last takes the rest), so the staged burst path and its fast
    // classifier see mixed frames, as the single-frame path does.
    let (n, mut rest) = match data.split_first() {
        Some((&b, r)) => (usize::from(b % 4) + 1, r),
        None => (1, data),
    };
    let mut burst: Vec<Option<VecBuf>> = Vec::new();
    for i in 0..n {
        let take = if i + 1 == n {
            rest.len()
        } else {
            match rest.split_first() {
                Some((&l, r)) => {
                    rest = r;
                    usize::from(l).min(rest.len())
                }
                None => 0,
            }
        };
        let (f, r) = rest.split_at(take);
        rest = r;
        burst.push(Some(VecBuf::from_frame(f)));
    }
    let held = w.held_fragments();
    let mut outs = 0;
    if n == 1 {
        if let Some(b) = burst.pop().flatten() {
            w.rx(0, b, *now, &mut |_| outs += 1);
        }
    } else {
        w.rx_burst(0, &mut burst, *now, &mut |_| outs += 1);
    }
    w.tick(*now, &mut |_| {});
    // Every frame leaves exactly once, or is held (for a neighbor, or a fragment for its
    // first); a first fragment brings the fragments held before it, and a solicitation or an
    // ICMP error may go with any.
    assert!(burst.iter().all(Option::is_none), "a frame was not taken");
    assert!(
        outs <= 2 * (n + held),
        "{outs} outputs for {n} frames and {held} held"
    );
    assert!(w.held_fragments() <= 256, "the hold is bounded");
});

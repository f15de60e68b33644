//! The safe DPDK wrapper on the real EAL (no hugepages, no PCI): `net_null` and `net_ring`
//! ports, a mempool, mbufs as the engine's `Buf`, a worker lcore, a hand-off ring, the stop
//! flag. EAL initialises once per process, so this file holds a single test.
#![cfg(feature = "dpdk")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

mod common;

use common::{eal_args, RemoveDir};
use rvs_dataplane::dpdk::{
    install_stop_handler, lcore_id, rdtsc, ring, stop_requested, DpdkError, Eal, Mbuf, Mempool,
    Port, PortOpts, DEFAULT_DATA_ROOM,
};
use rvs_dataplane::pipeline::buf::{Buf, VecBuf};

const NB_MBUFS: u32 = 4095;

/// The test's EAL arguments, then `--` and one of ours (which the EAL must not see).
fn eal_args_ours(prefix: &str) -> Vec<String> {
    let mut a = eal_args(prefix, "0-1", 512, &["net_null0", "net_ring0"]);
    a.extend(["--".to_string(), "--ours".to_string()]);
    a
}

/// The same edits on an mbuf and on a VecBuf give the same frame.
fn buf_round_trip(m: &mut Mbuf) {
    let mut v = VecBuf::empty();
    let frame: Vec<u8> = (0..60u8).collect();
    m.append(60).expect("room").copy_from_slice(&frame);
    v.append(60).expect("room").copy_from_slice(&frame);
    assert_eq!(m.data(), v.data());
    m.prepend(4).expect("headroom").copy_from_slice(&[0xaa; 4]);
    v.prepend(4).expect("headroom").copy_from_slice(&[0xaa; 4]);
    assert_eq!(m.data(), v.data());
    assert_eq!(m.pkt_len(), 64);
    m.adj(14);
    v.adj(14);
    m.trim(40);
    v.trim(40);
    m.data_mut()[0] = 0x55;
    v.data_mut()[0] = 0x55;
    assert_eq!(m.data(), v.data());
    assert_eq!(m.len(), 40);
    assert_eq!(m.pkt_len(), 40);
    m.trim(100);
    assert_eq!(m.len(), 40, "trim to a longer length is a no-op");
    assert!(m.prepend(m.headroom() + 1).is_none(), "headroom is bounded");
    assert!(m.append(m.tailroom() + 1).is_none(), "tailroom is bounded");
    assert!(m.append(70_000).is_none(), "beyond u16");
    m.adj(1000);
    assert!(m.is_empty(), "adj beyond the length empties the frame");
}

#[test]
fn wrapper_on_net_null_and_net_ring_with_a_worker_lcore() {
    assert_eq!(Port::count(), 0, "no EAL yet");
    assert_eq!(
        Mempool::new("early", 63, 0, DEFAULT_DATA_ROOM, -1).err(),
        Some(DpdkError::NotInitialized)
    );

    let prefix = format!("rvs-wrap-{}", std::process::id());
    let args = eal_args_ours(&prefix);
    let mut eal = Eal::init(&args).expect("rte_eal_init");
    let _dir = RemoveDir(eal.runtime_dir());
    assert!(eal.runtime_dir().ends_with(&prefix));
    assert_eq!(eal.consumed(), args.len() - 2, "EAL stops at `--`");
    assert_eq!(
        Eal::init(&args).err(),
        Some(DpdkError::AlreadyInitialized),
        "one EAL per process"
    );

    // Lcores and the clock.
    assert_eq!(eal.main_lcore(), 0);
    assert_eq!(eal.lcores(), vec![1]);
    assert_eq!(lcore_id(), Some(0), "the test thread is the main lcore");
    assert_eq!(eal.socket_of(1), 0);
    assert!(eal.tsc_hz() > 0);
    let t0 = rdtsc();
    assert!(rdtsc() > t0);

    // A closure on the worker lcore reports where it ran.
    let seen = Arc::new(AtomicU32::new(u32::MAX));
    let s = seen.clone();
    eal.launch(
        1,
        Box::new(move || {
            s.store(lcore_id().unwrap_or(u32::MAX - 1), Ordering::Release);
            7
        }),
    )
    .expect("launch on lcore 1");
    assert_eq!(eal.wait(1), 7);
    assert_eq!(seen.load(Ordering::Acquire), 1);
    let err = eal.launch(0, Box::new(|| 0)).unwrap_err();
    assert!(err.to_string().contains("not a worker"), "{err}");
    eal.launch(1, Box::new(|| panic!("worker panics")))
        .expect("launch");
    assert_eq!(eal.wait_all(), vec![(1, -1)], "a panic is reported as -1");

    // Ports.
    assert_eq!(Port::count(), 2);
    let null = Port::by_name("net_null0").expect("net_null0");
    let ringp = Port::by_name("net_ring0").expect("net_ring0");
    assert_eq!((null, ringp), (0, 1));
    assert_eq!(Port::by_name("nope"), None);
    assert_eq!(Port::name(ringp).as_deref(), Some("net_ring0"));
    assert!(Port::mac(null).is_some());

    let pool = Mempool::new("rvs-wrap", NB_MBUFS, 256, DEFAULT_DATA_ROOM, 0).expect("pool");
    assert_eq!((pool.avail(), pool.in_use()), (NB_MBUFS, 0));
    let dup = Mempool::new("rvs-wrap", 63, 0, DEFAULT_DATA_ROOM, 0).unwrap_err();
    assert!(
        dup.to_string()
            .starts_with("rte_pktmbuf_pool_create failed: "),
        "{dup}"
    );

    // Mbufs as the engine's Buf.
    let mut m = pool.alloc().expect("an mbuf");
    assert_eq!(m.headroom(), 128);
    assert!(m.is_empty());
    buf_round_trip(&mut m);
    assert_eq!(pool.in_use(), 1);
    drop(m);
    assert_eq!(pool.in_use(), 0);

    // RSS and promiscuous mode asked for (the defaults).
    let opts = PortOpts {
        nb_desc: 512,
        ..PortOpts::default()
    };
    let mut pnull = Port::configure(null, 1, 1, &pool, opts).expect("configure net_null");
    let mut pring = Port::configure(ringp, 1, 1, &pool, opts).expect("configure net_ring");
    let again = Port::configure(null, 1, 1, &pool, opts).unwrap_err();
    assert!(again.to_string().contains("already in use"), "{again}");
    println!(
        "offloads: net_null {:?}, net_ring {:?}",
        pnull.offloads(),
        pring.offloads()
    );
    // net_null offers RSS (the IP/TCP/UDP fields we ask for, masked by what it hashes);
    // net_ring has none, so it runs without; neither offers checksum offloads.
    assert_ne!(pnull.offloads().rss_hf, 0);
    assert_eq!(pring.offloads().rss_hf, 0);
    assert!(!pnull.offloads().tx_ipv4_cksum && !pring.offloads().rx_tcp_cksum);
    pnull.start().expect("start net_null");
    pring.start().expect("start net_ring");
    // net_null hashes (no source-only mode, so no RSS steering) and keeps the RETA rvs
    // programs: read it back. It reports a hash key size of 0, so it keeps its own key.
    let (key, hf) = pnull.rss_conf().expect("net_null RSS conf");
    assert_eq!((key.len(), hf), (0, pnull.offloads().rss_hf));
    let reta = pnull.reta().expect("net_null RETA");
    assert_eq!(Some(reta), rvs_dataplane::pipeline::rss::reta(128, 1));
    assert!(!pnull.offloads().rss_steering && !pring.offloads().rss_steering);
    assert!(pring.reta().is_err(), "net_ring has no RETA");
    assert!(pnull.link_up() && pring.link_up());

    // rx from net_null, into a vector with room: no growth.
    let mut rx: Vec<Mbuf> = Vec::with_capacity(64);
    let cap = rx.capacity();
    let n = pnull.rx_burst(0, &mut rx, 32);
    assert!(n > 0 && n <= 32, "net_null gave {n} frames");
    assert_eq!((rx.len(), rx.capacity()), (n, cap));
    assert_eq!(pnull.rx_burst(5, &mut rx, 32), 0, "no such queue");
    assert_eq!(pool.in_use() as usize, n);

    // Stamp each frame, send them into the ring port, and read them back from it
    // (net_ring's rx and tx queues share one ring).
    for (i, m) in rx.iter_mut().enumerate() {
        assert!(!m.is_empty());
        m.data_mut()[0] = i as u8;
        m.data_mut()[1] = 0xee;
    }
    let lens: Vec<usize> = rx.iter().map(|m| m.len()).collect();
    let sent = pring.tx_burst(0, &mut rx);
    assert_eq!(sent, n);
    assert!(rx.is_empty(), "every frame taken");
    let mut back = Vec::with_capacity(64);
    assert_eq!(pring.rx_burst(0, &mut back, 64), n);
    for (i, m) in back.iter().enumerate() {
        assert_eq!(&m.data()[..2], &[i as u8, 0xee]);
        assert_eq!(m.len(), lens[i]);
    }

    // tx leaves the unsent in the vector: net_ring's ring fills up.
    let mut many: Vec<Mbuf> = (0..2000).map(|_| pool.alloc().expect("mbuf")).collect();
    let first = many[0].as_ptr();
    let mut total = 0;
    loop {
        let k = pring.tx_burst(0, &mut many);
        total += k;
        if k == 0 {
            break;
        }
    }
    assert!(total > 0 && !many.is_empty(), "ring full after {total}");
    assert_ne!(
        many[0].as_ptr(),
        first,
        "the sent ones are gone from the front"
    );
    drop(many);
    let mut drained = Vec::new();
    while pring.rx_burst(0, &mut drained, 32) > 0 {}
    assert_eq!(drained.len(), total);
    drop(drained);

    // Counters.
    let s = pnull.stats().expect("stats");
    assert_eq!(s.ipackets, n as u64);
    let s = pring.stats().expect("stats");
    assert_eq!(s.opackets, (n + total) as u64);
    assert_eq!(s.ipackets, (n + total) as u64);
    let xs = pring.xstats().expect("xstats");
    let get = |name: &str| xs.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    assert_eq!(get("tx_good_packets"), Some((n + total) as u64));
    assert_eq!(get("rx_good_packets"), Some((n + total) as u64));

    // A hand-off ring carrying boxes and mbufs.
    let (mut tx, mut rxr) = ring::<Box<u64>>("rvs-wrap-ring", 8, -1).expect("ring");
    for i in 0..7 {
        tx.push(Box::new(i)).expect("room");
    }
    assert_eq!(
        *tx.push(Box::new(99)).unwrap_err(),
        99,
        "7 of 8 slots usable"
    );
    assert_eq!(rxr.pop().as_deref(), Some(&0));
    let (mut mtx, mrx) = ring::<Mbuf>("rvs-wrap-mring", 4, -1).expect("ring");
    mtx.push(pool.alloc().expect("mbuf")).expect("room");
    assert_eq!(
        pool.in_use() as usize,
        n + 1,
        "`back` and the one in the ring"
    );
    drop((mtx, mrx)); // the mbuf left in the ring is freed with it
    drop((tx, rxr));

    // Every mbuf is back.
    drop(back);
    assert_eq!((pool.avail(), pool.in_use()), (NB_MBUFS, 0));

    // The stop flag.
    let stop = install_stop_handler();
    assert!(!stop.load(Ordering::Relaxed));
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    for _ in 0..100 {
        if stop_requested() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        stop_requested() && stop.load(Ordering::Relaxed),
        "SIGTERM sets the flag"
    );

    // Teardown: cleanup refuses while objects live, then succeeds.
    pnull.stop().expect("stop");
    assert_eq!(eal.cleanup().unwrap_err(), DpdkError::Busy { live: 3 });
    drop(pnull);
    drop(pring);
    assert!(Port::configure(null, 1, 1, &pool, opts).is_err(), "closed");
    drop(pool);
    eal.cleanup().expect("rte_eal_cleanup");
    assert_eq!(Port::count(), 0, "no EAL any more");
}

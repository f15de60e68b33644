//! Per-queue port handles (`Port::into_queues`) and the mbuf burst ring operations on the
//! real EAL (no hugepages, no PCI): `net_ring` and `net_null` ports with two queue pairs, a
//! `net_pcap` port with fewer queues than handles, the teardown order of the split port, and
//! `push_burst` / `pop_burst` on a small ring. EAL initialises once per process, so this file
//! holds a single test.
#![cfg(feature = "dpdk")]

use std::sync::mpsc;

mod common;

use common::{eal_args, read_pcap, write_pcap, RemoveDir};
use rvs_dataplane::dpdk::{
    ring, Consumer, Eal, Mbuf, Mempool, Port, PortOpts, PortQueue, PortStatsReader, Producer,
    DEFAULT_DATA_ROOM,
};
use rvs_dataplane::pipeline::buf::Buf;

const NB_MBUFS: u32 = 4095;

/// Compile-time: the handles that move to workers are `Send`.
fn assert_send<T: Send>() {}

/// A 64-byte Ethernet-looking frame tagged with (queue, seq).
fn tagged_frame(pool: &Mempool, queue: u8, seq: u8) -> Mbuf {
    let mut m = pool.alloc().expect("mbuf");
    let d = m.append(64).expect("room");
    d.fill(0);
    d[..6].copy_from_slice(&[0x02, 0, 0, 0, queue, seq]);
    d[6..12].copy_from_slice(&[0x02, 0, 0, 1, queue, seq]);
    d[12..14].copy_from_slice(&[0x08, 0x00]);
    d[14] = queue;
    d[15] = seq;
    m
}

/// The (queue, seq) tag of a frame made by `tagged_frame`.
fn tag(m: &Mbuf) -> (u8, u8) {
    (m.data()[14], m.data()[15])
}

/// An mbuf carrying `seq` in its data (4 bytes, LE) and, truncated, in its port field.
fn seq_mbuf(pool: &Mempool, seq: u32) -> Mbuf {
    let mut m = pool.alloc().expect("mbuf");
    m.append(4)
        .expect("room")
        .copy_from_slice(&seq.to_le_bytes());
    m.set_port(seq as u16);
    m
}

fn seq_of(m: &Mbuf) -> u32 {
    let s = u32::from_le_bytes(m.data()[..4].try_into().unwrap());
    assert_eq!(m.port(), s as u16, "port field and data agree");
    s
}

fn seqs(v: &[Mbuf]) -> Vec<u32> {
    v.iter().map(seq_of).collect()
}

/// `rx_burst` on a handle until `want` frames arrived (net_ring delivers at once; the loop
/// only bounds a bug), then one more poll that must find nothing.
fn rx_exact(q: &mut PortQueue, want: usize) -> Vec<Mbuf> {
    let mut out = Vec::new();
    for _ in 0..16 {
        q.rx_burst(&mut out, 32);
        if out.len() >= want {
            break;
        }
    }
    assert_eq!(out.len(), want, "frames on rx queue {:?}", q.rx_queue());
    assert_eq!(q.rx_burst(&mut out, 32), 0, "nothing more on the queue");
    out
}

fn xstat(reader: &PortStatsReader, name: &str) -> Option<u64> {
    reader
        .xstats()
        .expect("xstats")
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

const OPTS: PortOpts = PortOpts {
    rss: false,
    rss_key: rvs_dataplane::pipeline::rss::KEY,
    promiscuous: false,
    nb_desc: 256,
};

#[test]
fn per_queue_handles_teardown_and_burst_rings() {
    assert_send::<PortQueue>();
    assert_send::<PortStatsReader>();
    assert_send::<Producer<Mbuf>>();
    assert_send::<Consumer<Mbuf>>();

    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("rvs-queues-{pid}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _tmp = RemoveDir(dir.clone());
    let (in_a, in_b, outp) = (dir.join("a.pcap"), dir.join("b.pcap"), dir.join("out.pcap"));
    let frames_a: Vec<Vec<u8>> = (0..3u8)
        .map(|i| {
            let mut f = vec![0xa0 | i; 60 + usize::from(i)];
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f
        })
        .collect();
    let frames_b: Vec<Vec<u8>> = (0..2u8)
        .map(|i| {
            let mut f = vec![0xb0 | i; 70 + usize::from(i)];
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f
        })
        .collect();
    write_pcap(&in_a, &frames_a);
    write_pcap(&in_b, &frames_b);

    let prefix = format!("rvs-queues-{pid}");
    // Two rx_pcap and one tx_pcap: 2 rx queues, 1 tx queue.
    let pcap = format!(
        "net_pcap0,rx_pcap={},rx_pcap={},tx_pcap={}",
        in_a.display(),
        in_b.display(),
        outp.display()
    );
    let args = eal_args(&prefix, "0-1", 1024, &["net_ring0", "net_null0", &pcap]);
    let mut eal = Eal::init(&args).expect("rte_eal_init");
    let _rt = RemoveDir(eal.runtime_dir());
    assert_eq!(eal.lcores(), vec![1], "one worker lcore");
    assert_eq!(Port::count(), 3);

    let pool = Mempool::new("rvs-queues", NB_MBUFS, 64, DEFAULT_DATA_ROOM, -1).expect("pool");
    assert_eq!(pool.in_use(), 0);

    // ---- net_ring0, 2 rx / 2 tx: tx queue q loops back to rx queue q of the same port. ----
    let ring_id = Port::by_name("net_ring0").expect("net_ring0");
    let (max_rx, max_tx) = Port::max_queues(ring_id).expect("max_queues");
    assert!(
        max_rx >= 2 && max_tx >= 2,
        "net_ring offers {max_rx}/{max_tx}"
    );
    let mut p = Port::configure(ring_id, 2, 2, &pool, OPTS).expect("configure net_ring0");
    p.start().expect("start net_ring0");
    let (ring_reader, queues) = p.into_queues(2);
    assert_eq!(ring_reader.id(), ring_id);
    assert_eq!((ring_reader.rx_queues(), ring_reader.tx_queues()), (2, 2));
    assert!(ring_reader.link_up());
    let mut queues = queues.into_iter();
    let (mut rq0, mut rq1) = (queues.next().unwrap(), queues.next().unwrap());
    assert!(queues.next().is_none());
    for (q, h) in [(0, &rq0), (1, &rq1)] {
        assert_eq!(h.port_id(), ring_id);
        assert_eq!((h.rx_queue(), h.tx_queue()), (Some(q), Some(q)));
    }

    // Queue 0 sends 5 frames from this thread.
    let mut out: Vec<Mbuf> = (0..5).map(|s| tagged_frame(&pool, 0, s)).collect();
    assert_eq!(rq0.tx_burst(&mut out), 5);
    assert!(out.is_empty());
    assert_eq!(pool.in_use(), 5, "the 5 frames wait in queue 0's ring");

    // Queue 1 moves to another thread: queue 0's frames are not on its rx queue; it sends 3
    // and receives exactly those 3, in order.
    let rq1_back = std::thread::scope(|s| {
        s.spawn(|| {
            let mut h = rq1;
            let mut none = Vec::new();
            assert_eq!(
                h.rx_burst(&mut none, 32),
                0,
                "queue 0's frames are not on q1"
            );
            let mut out: Vec<Mbuf> = (0..3).map(|s| tagged_frame(&pool, 1, s)).collect();
            assert_eq!(h.tx_burst(&mut out), 3);
            let got = rx_exact(&mut h, 3);
            assert_eq!(
                got.iter().map(tag).collect::<Vec<_>>(),
                vec![(1, 0), (1, 1), (1, 2)]
            );
            h
        })
        .join()
        .expect("queue 1 thread")
    });
    rq1 = rq1_back;
    assert_eq!(pool.in_use(), 5, "the thread's 3 were freed there");
    let got = rx_exact(&mut rq0, 5);
    assert_eq!(
        got.iter().map(tag).collect::<Vec<_>>(),
        (0..5).map(|s| (0, s)).collect::<Vec<_>>(),
        "queue 0 receives what queue 0 sent, in order"
    );
    drop(got);
    assert_eq!(pool.in_use(), 0);

    let s = ring_reader.stats().expect("stats");
    assert_eq!((s.opackets, s.ipackets), (8, 8));
    // (net_ring counts packets only: its byte counters stay 0; net_pcap's are checked below.)
    assert_eq!((s.imissed, s.ierrors, s.oerrors, s.rx_nombuf), (0, 0, 0, 0));
    assert_eq!(xstat(&ring_reader, "rx_q0_packets"), Some(5));
    assert_eq!(xstat(&ring_reader, "rx_q1_packets"), Some(3));
    assert_eq!(xstat(&ring_reader, "tx_q0_packets"), Some(5));
    assert_eq!(xstat(&ring_reader, "tx_q1_packets"), Some(3));

    // ---- net_null0, 2 rx / 2 tx, queue 1 polled on the worker lcore. ----
    let null_id = Port::by_name("net_null0").expect("net_null0");
    let mut p = Port::configure(null_id, 2, 2, &pool, OPTS).expect("configure net_null0");
    p.start().expect("start net_null0");
    let (null_reader, queues) = p.into_queues(2);
    assert_eq!((null_reader.rx_queues(), null_reader.tx_queues()), (2, 2));
    let mut queues = queues.into_iter();
    let (mut nq0, nq1) = (queues.next().unwrap(), queues.next().unwrap());
    assert_eq!((nq1.rx_queue(), nq1.tx_queue()), (Some(1), Some(1)));

    let (back_tx, back_rx) = mpsc::channel::<PortQueue>();
    eal.launch(
        1,
        Box::new(move || {
            let mut h = nq1;
            let mut bufs = Vec::with_capacity(32);
            // net_null fills every slot asked for from the queue's pool.
            let n = h.rx_burst(&mut bufs, 32);
            let sent = h.tx_burst(&mut bufs);
            let ok = rvs_dataplane::dpdk::lcore_id() == Some(1) && bufs.is_empty();
            back_tx.send(h).expect("send the handle back");
            if ok && n == 32 && sent == 32 {
                0
            } else {
                1
            }
        }),
    )
    .expect("launch on lcore 1");
    assert_eq!(eal.wait(1), 0, "queue 1 received and sent 32 on lcore 1");
    let nq1 = back_rx.recv().expect("queue 1 handle back");
    let mut bufs = Vec::with_capacity(16);
    assert_eq!(nq0.rx_burst(&mut bufs, 16), 16);
    assert_eq!(nq0.tx_burst(&mut bufs), 16);
    assert_eq!(pool.in_use(), 0, "net_null frees what it sends");
    let s = null_reader.stats().expect("stats");
    assert_eq!((s.ipackets, s.opackets), (48, 48));
    assert_eq!(xstat(&null_reader, "rx_q0_packets"), Some(16));
    assert_eq!(xstat(&null_reader, "rx_q1_packets"), Some(32));
    assert_eq!(xstat(&null_reader, "tx_q1_packets"), Some(32));

    // ---- net_pcap0: 2 rx / 1 tx queues, split into 3 handles. ----
    let pcap_id = Port::by_name("net_pcap0").expect("net_pcap0");
    assert_eq!(
        Port::max_queues(pcap_id).expect("max_queues"),
        (2, 1),
        "one rx queue per rx_pcap, one tx queue per tx_pcap"
    );
    let err = Port::configure(pcap_id, 2, 2, &pool, OPTS).unwrap_err();
    assert!(err.to_string().contains("device max 2 / 1"), "{err}");
    let mut p = Port::configure(pcap_id, 2, 1, &pool, OPTS).expect("configure net_pcap0");
    p.start().expect("start net_pcap0");
    let (pcap_reader, pq) = p.into_queues(3);
    assert_eq!((pcap_reader.rx_queues(), pcap_reader.tx_queues()), (2, 1));
    assert_eq!(
        pq.iter()
            .map(|h| (h.rx_queue(), h.tx_queue()))
            .collect::<Vec<_>>(),
        vec![(Some(0), Some(0)), (Some(1), None), (None, None)],
        "handle q has rx queue q iff q < rxq and tx queue q iff q < txq"
    );
    let mut pq = pq.into_iter();
    let (mut pq0, mut pq1, mut pq2) = (pq.next().unwrap(), pq.next().unwrap(), pq.next().unwrap());
    // Each rx queue reads its own file.
    let got_a = rx_exact(&mut pq0, frames_a.len());
    let got_b = rx_exact(&mut pq1, frames_b.len());
    assert_eq!(
        got_a.iter().map(|m| m.data().to_vec()).collect::<Vec<_>>(),
        frames_a
    );
    assert_eq!(
        got_b.iter().map(|m| m.data().to_vec()).collect::<Vec<_>>(),
        frames_b
    );
    // No rx queue: nothing received, the vector untouched.
    let mut none = Vec::new();
    assert_eq!(pq2.rx_burst(&mut none, 32), 0);
    assert!(none.is_empty());
    // No tx queue: nothing sent, every frame stays in the vector, in order.
    let mut all: Vec<Mbuf> = got_a.into_iter().chain(got_b).collect();
    let expected: Vec<Vec<u8>> = frames_a.iter().chain(&frames_b).cloned().collect();
    for h in [&mut pq1, &mut pq2] {
        assert_eq!(h.tx_burst(&mut all), 0);
        assert_eq!(
            all.iter().map(|m| m.data().to_vec()).collect::<Vec<_>>(),
            expected
        );
    }
    // The handle with tx queue 0 sends them all.
    let mut sent = 0;
    for _ in 0..16 {
        sent += pq0.tx_burst(&mut all);
        if all.is_empty() {
            break;
        }
    }
    assert_eq!(sent, expected.len());
    let s = pcap_reader.stats().expect("stats");
    assert_eq!((s.ipackets, s.opackets), (5, 5));
    let bytes: u64 = expected.iter().map(|f| f.len() as u64).sum();
    assert_eq!((s.ibytes, s.obytes), (bytes, bytes));
    assert_eq!(pool.in_use(), 0, "net_pcap frees what it writes");

    // ---- Teardown order. ----
    let in_use = |id: u16| {
        Port::configure(id, 1, 1, &pool, OPTS)
            .unwrap_err()
            .to_string()
            .contains("already in use")
    };

    // net_ring0: the reader goes first; the queue handles keep the port open and working.
    drop(ring_reader);
    assert_eq!(Port::by_name("net_ring0"), Some(ring_id));
    assert!(in_use(ring_id), "still held by its queues");
    for (q, h) in [(0u8, &mut rq0), (1, &mut rq1)] {
        let mut out = vec![tagged_frame(&pool, q, 9)];
        assert_eq!(
            h.tx_burst(&mut out),
            1,
            "tx on queue {q} after the reader is gone"
        );
        let got = rx_exact(h, 1);
        assert_eq!(tag(&got[0]), (q, 9));
    }
    drop(rq0);
    assert!(in_use(ring_id), "queue 1 still holds it");
    assert_eq!(Port::count(), 3);
    drop(rq1);
    // The last handle stopped and closed the port: DPDK releases a closed vdev port, so the
    // name is gone and the id cannot be configured again (nor is it "in use").
    assert_eq!(Port::by_name("net_ring0"), None, "closed and released");
    assert_eq!(Port::count(), 2);
    let err = Port::configure(ring_id, 1, 1, &pool, OPTS).unwrap_err();
    assert!(!err.to_string().contains("already in use"), "{err}");

    // net_null0: the queues go first; the reader keeps the port open and readable.
    drop(nq0);
    drop(nq1);
    assert!(in_use(null_id), "still held by its reader");
    assert!(null_reader.link_up());
    let s = null_reader
        .stats()
        .expect("stats with no queue handle left");
    assert_eq!((s.ipackets, s.opackets), (48, 48));
    drop(null_reader);
    assert_eq!(Port::by_name("net_null0"), None, "closed and released");
    assert_eq!(Port::count(), 1);

    // net_pcap0: handles and reader dropped in any order; the last one closes the port,
    // which closes the tx dumper: the file holds the frames sent on tx queue 0.
    drop(pq1);
    drop(pcap_reader);
    drop(pq0);
    assert!(
        in_use(pcap_id),
        "the handle without queues holds the port too"
    );
    drop(pq2);
    assert_eq!(Port::by_name("net_pcap0"), None, "closed and released");
    assert_eq!(Port::count(), 0);
    assert_eq!(
        read_pcap(&outp),
        expected,
        "tx pcap holds what queue 0 sent"
    );
    assert_eq!(pool.in_use(), 0);

    // ---- Burst ring ops: an 8-slot ring holds 7 (rte_ring keeps one slot empty). ----
    let start = pool.in_use();
    let (mut prod, mut cons) = ring::<Mbuf>("rvs-queues-ring", 8, -1).expect("ring");
    let mut empty = Vec::new();
    assert_eq!(prod.push_burst(&mut empty), 0, "nothing to push");
    assert_eq!(cons.pop_burst(&mut empty, 8), 0, "nothing to pop");
    assert!(empty.is_empty());

    let mut bufs: Vec<Mbuf> = (0..10).map(|s| seq_mbuf(&pool, s)).collect();
    assert_eq!(prod.push_burst(&mut bufs), 7, "7 of 8 slots usable");
    assert_eq!(seqs(&bufs), vec![7, 8, 9], "the excess stays, in order");
    assert_eq!(prod.push_burst(&mut bufs), 0, "full ring");
    assert_eq!(seqs(&bufs), vec![7, 8, 9]);
    assert_eq!(pool.in_use(), start + 10);

    // pop_burst appends to what the vector holds, at most `max`, FIFO.
    let mut got = vec![seq_mbuf(&pool, 1000)];
    assert_eq!(cons.pop_burst(&mut got, 0), 0, "max 0");
    assert_eq!(cons.pop_burst(&mut got, 3), 3);
    assert_eq!(seqs(&got), vec![1000, 0, 1, 2]);
    // Room for 3 again: the leftovers go in, the newer ones stay.
    bufs.extend((10..13).map(|s| seq_mbuf(&pool, s)));
    assert_eq!(prod.push_burst(&mut bufs), 3);
    assert_eq!(seqs(&bufs), vec![10, 11, 12]);
    assert_eq!(cons.pop_burst(&mut got, 100), 7, "everything in the ring");
    assert_eq!(seqs(&got), vec![1000, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(cons.pop_burst(&mut got, 100), 0, "empty ring");
    assert_eq!(pool.in_use(), start + 14);
    drop(got);
    assert_eq!(pool.in_use(), start + 3);

    // The ring's leftovers are freed with it.
    assert_eq!(prod.push_burst(&mut bufs), 3);
    assert!(bufs.is_empty());
    assert_eq!(pool.in_use(), start + 3, "in the ring");
    drop(prod);
    assert_eq!(pool.in_use(), start + 3, "the consumer keeps the ring");
    drop(cons);
    assert_eq!(pool.in_use(), start, "nothing leaked");

    // Across threads: FIFO over many bursts through a small ring.
    const N: u32 = 20_000;
    let (mut prod, mut cons) = ring::<Mbuf>("rvs-queues-ring2", 64, -1).expect("ring");
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut next = 0u32;
            let mut bufs = Vec::with_capacity(32);
            while next < N || !bufs.is_empty() {
                while bufs.len() < 32 && next < N {
                    bufs.push(seq_mbuf(&pool, next));
                    next += 1;
                }
                if prod.push_burst(&mut bufs) == 0 {
                    std::thread::yield_now();
                }
            }
        });
        s.spawn(|| {
            let mut want = 0u32;
            let mut got = Vec::with_capacity(16);
            while want < N {
                if cons.pop_burst(&mut got, 16) == 0 {
                    std::thread::yield_now();
                }
                assert!(got.len() <= 16);
                for m in got.drain(..) {
                    assert_eq!(seq_of(&m), want, "FIFO across threads");
                    want += 1;
                }
            }
        });
    });
    assert_eq!(cons.pop_burst(&mut Vec::new(), 16), 0, "all consumed");
    drop((prod, cons));
    assert_eq!(pool.in_use(), start, "nothing leaked");

    drop(pool);
    eal.cleanup().expect("rte_eal_cleanup: nothing left alive");
}

//! The safe DPDK wrapper on `net_pcap`: frames read from a pcap file come out of rx_burst
//! byte for byte, and tx_burst writes them to the tx pcap. One EAL per process: one test.
#![cfg(feature = "dpdk")]

mod common;

use common::{eal_args, read_pcap, write_pcap, RemoveDir};
use rvs_dataplane::dpdk::{Eal, Mbuf, Mempool, Port, PortOpts, DEFAULT_DATA_ROOM};
use rvs_dataplane::pipeline::buf::Buf;

/// An Ethernet/IPv4/UDP-looking frame of `len` bytes, distinct per `seed`.
fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, seed]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 1, seed]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8);
    }
    f
}

#[test]
fn net_pcap_frames_round_trip_through_rx_and_tx_burst() {
    let dir = std::env::temp_dir().join(format!("rvs-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _tmp = RemoveDir(dir.clone());
    let (inp, outp) = (dir.join("in.pcap"), dir.join("out.pcap"));
    let frames = vec![frame(60, 1), frame(74, 2), frame(342, 3), frame(1514, 4)];
    write_pcap(&inp, &frames);

    let prefix = format!("rvs-pcap-{}", std::process::id());
    let vdev = format!(
        "net_pcap0,rx_pcap={},tx_pcap={}",
        inp.display(),
        outp.display()
    );
    let args = eal_args(&prefix, "0", 512, &[&vdev]);
    let mut eal = Eal::init(&args).expect("rte_eal_init");
    let _rt = RemoveDir(eal.runtime_dir());
    assert_eq!(eal.consumed(), args.len() - 1);
    assert!(eal.lcores().is_empty(), "main lcore only");

    let id = Port::by_name("net_pcap0").expect("net_pcap0");
    let pool = Mempool::new("rvs-pcap", 1023, 32, DEFAULT_DATA_ROOM, -1).expect("pool");
    let opts = PortOpts {
        rss: false,
        promiscuous: false,
        nb_desc: 256,
        ..PortOpts::default()
    };
    let mut port = Port::configure(id, 1, 1, &pool, opts).expect("configure net_pcap");
    port.start().expect("start");

    let mut rx: Vec<Mbuf> = Vec::with_capacity(32);
    for _ in 0..100 {
        port.rx_burst(0, &mut rx, 32);
        if rx.len() >= frames.len() {
            break;
        }
    }
    assert_eq!(rx.len(), frames.len(), "every frame of the file, no more");
    assert_eq!(port.rx_burst(0, &mut rx, 32), 0, "end of file");
    for (m, f) in rx.iter().zip(&frames) {
        assert_eq!(m.data(), f.as_slice(), "rx bytes equal the file's");
        assert_eq!(m.pkt_len() as usize, f.len());
    }

    let mut sent = 0;
    for _ in 0..100 {
        sent += port.tx_burst(0, &mut rx);
        if rx.is_empty() {
            break;
        }
    }
    assert_eq!(sent, frames.len());
    let s = port.stats().expect("stats");
    assert_eq!((s.ipackets, s.opackets), (4, 4));
    assert_eq!(s.obytes, frames.iter().map(|f| f.len() as u64).sum::<u64>());

    // Stop and close: net_pcap closes (flushes) its tx dumper.
    port.stop().expect("stop");
    drop(port);
    assert_eq!(pool.in_use(), 0, "the PMD freed what it wrote");
    drop(pool);
    eal.cleanup().expect("rte_eal_cleanup");

    assert_eq!(read_pcap(&outp), frames, "tx pcap holds the same frames");
}

//! The safe DPDK wrapper on `net_pcap`: frames read from a pcap file come out of rx_burst
//! byte for byte, and tx_burst writes them to the tx pcap. One EAL per process: one test.
#![cfg(feature = "dpdk")]

use std::path::{Path, PathBuf};

use rvs_dataplane::dpdk::{Eal, Mbuf, Mempool, Port, PortOpts, DEFAULT_DATA_ROOM};
use rvs_dataplane::pipeline::buf::Buf;

/// Removes a directory on drop (the EAL runtime dir, the temp dir), even when the test fails.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A classic pcap (microsecond timestamps, Ethernet link type) holding `frames`.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&1_700_000_000u32.to_le_bytes()); // ts_sec
        out.extend_from_slice(&(i as u32 * 1000).to_le_bytes()); // ts_usec
        out.extend_from_slice(&(f.len() as u32).to_le_bytes()); // incl_len
        out.extend_from_slice(&(f.len() as u32).to_le_bytes()); // orig_len
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// The frames of a classic pcap (either byte order, micro- or nanosecond magic).
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).expect("read pcap");
    assert!(b.len() >= 24, "pcap global header");
    let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => panic!("not a pcap: magic {m:#x}"),
    };
    let u32_at = |o: usize| {
        let a: [u8; 4] = b[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    assert_eq!(u32_at(20), 1, "Ethernet link type");
    let mut frames = Vec::new();
    let mut o = 24;
    while o + 16 <= b.len() {
        let incl = u32_at(o + 8) as usize;
        assert_eq!(incl, u32_at(o + 12) as usize, "not truncated");
        frames.push(b[o + 16..o + 16 + incl].to_vec());
        o += 16 + incl;
    }
    assert_eq!(o, b.len(), "no trailing bytes");
    frames
}

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
    let args: Vec<String> = [
        "rvs-test",
        "-l",
        "0",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-telemetry",
        "--vdev",
        &vdev,
        "--file-prefix",
        &prefix,
        "--log-level",
        "lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
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

//! Helpers shared by the DPDK tests: temp and runtime dirs that clean up, classic pcap
//! files written and read back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Removes a directory on drop (the EAL runtime dir, the temp dir), even when the test fails.
pub struct RemoveDir(pub PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A classic pcap (microsecond timestamps, Ethernet link type) holding `frames`.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
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
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
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

/// EAL arguments for a test process: `lcores`, `mem_mb` of memory without hugepages, no PCI,
/// the given vdevs, a file prefix of its own, quiet EAL logs.
pub fn eal_args(prefix: &str, lcores: &str, mem_mb: u32, vdevs: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "rvs-test",
        "-l",
        lcores,
        "--no-huge",
        "-m",
        &mem_mb.to_string(),
    ]
    .iter()
    .chain(&["--no-pci", "--no-telemetry"])
    .map(|s| s.to_string())
    .collect();
    for v in vdevs {
        a.extend(["--vdev".to_string(), v.to_string()]);
    }
    a.extend(
        ["--file-prefix", prefix, "--log-level", "lib.eal:error"]
            .iter()
            .map(|s| s.to_string()),
    );
    a
}

//! `rvsd run` on the real EAL (`--no-huge --no-pci`, one worker lcore): the replay story fed
//! through a `net_pcap` port gives the same frames out as `rvsd replay` does. One EAL per
//! process, so this file holds one test.

mod common;

use std::path::Path;

use common::*;
use pcap_file::pcap::PcapReader;

fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        v.push(p.unwrap().data.into_owned());
    }
    v
}

#[test]
fn dpdk_run_on_net_pcap_forwards_as_replay_does() {
    let frames = input();
    let (cfg, rules) = (tmp("run.toml"), tmp("run.ipvsadm"));
    std::fs::write(&cfg, CONFIG).unwrap();
    std::fs::write(&rules, RULES).unwrap();
    // What replay says the appliance sends on port 0.
    let want = replay_port0(&frames, &cfg, &rules, 1, "run");

    // The same frames through DPDK: net_pcap rx file in, tx file out.
    let (summary, pout, metrics) = run_pcap(
        &frames,
        &cfg,
        &rules,
        PcapRun {
            name: "run",
            mem_mb: 512,
            lcores: &["-l", "0-1"],
            exception: false,
            idle_exit_ms: 500,
        },
    );
    assert_eq!(
        summary.rx,
        frames.len() as u64,
        "every frame of the capture was received"
    );
    assert_eq!(
        summary.kernel, 1,
        "the SSH SYN to the appliance (the exception path is off in this test)"
    );
    let got = read_pcap(&pout);
    assert_eq!(got.len(), want.len(), "{summary:?}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "frame {i}: rvsd run and rvsd replay disagree");
    }
    let m = std::fs::read_to_string(metrics).unwrap();
    assert!(m.contains("rvs_tx_frames_total{worker=\"0\"}"), "{m}");
}

//! `rvsd run` with two worker lcores on the real EAL (`--no-huge --no-pci`, three lcores
//! on two CPUs): the
//! replay story through a `net_pcap` port gives the same frames out as `rvsd replay
//! --workers 2` does, as a multiset (the workers' outputs interleave in any order).
//!
//! `net_pcap` with one `rx_pcap` and one `tx_pcap` has one queue of each direction, so this
//! also runs the fallback for devices with fewer queues than workers: worker 0 receives
//! everything and hands worker 1 its flows through a ring; worker 1 has no tx queue and
//! passes what it sends back to worker 0's. One EAL per process, so this file holds one test.

mod common;

use common::*;

#[test]
fn two_workers_on_net_pcap_forward_what_replay_forwards() {
    let frames = input();
    let (cfg, rules) = (tmp("workers.toml"), tmp("workers.ipvsadm"));
    // The fixed RSS key: the one replay steers with (a drawn key would give other owners).
    let config =
        format!("{CONFIG}\n[engine]\nworkers = 2\nconns_per_worker = 65536\nrss_key = \"fixed\"\n");
    std::fs::write(&cfg, config).unwrap();
    std::fs::write(&rules, RULES).unwrap();
    // What replay with two workers says the appliance sends on port 0.
    let mut want = replay_port0(&frames, &cfg, &rules, 2, "workers");

    // The same frames through DPDK, two worker lcores.
    let (summary, pout, metrics) = run_pcap(
        &frames,
        &cfg,
        &rules,
        PcapRun {
            name: "workers",
            mem_mb: 1024,
            // Three lcores (main + two workers) on whatever two CPUs the machine has.
            lcores: &["--lcores", "0@0,1@0,2@1"],
            exception: false,
            idle_exit_ms: 500,
        },
    );
    assert_eq!(summary.workers, 2);
    assert_eq!(
        summary.rx,
        frames.len() as u64,
        "every frame of the capture was received"
    );
    assert_eq!(summary.kernel, 1, "the SSH SYN to the appliance");
    assert_eq!(summary.ring_full, 0, "{summary:?}");
    assert!(summary.handoffs > 0, "flows of worker 1 were handed over");

    let mut got = pcap_frames(&pout);
    assert_eq!(got.len(), want.len(), "{summary:?}");
    got.sort();
    want.sort();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "sorted frame {i}: rvsd run and rvsd replay disagree");
    }

    let m = std::fs::read_to_string(metrics).unwrap();
    let v = |series: &str| metric(&m, series).unwrap_or_else(|| panic!("{series}:\n{m}"));
    // One rx and one tx queue on the device: worker 0 receives everything.
    assert_eq!(v("rvs_port_rx_queues{port=\"p0\"}"), 1.0);
    assert_eq!(v("rvs_port_tx_queues{port=\"p0\"}"), 1.0);
    assert_eq!(v("rvs_rx_frames_total{worker=\"1\"}"), 0.0);
    assert_eq!(
        v("rvs_handoff_in_total{worker=\"1\"}"),
        v("rvs_handoff_out_total{worker=\"0\"}"),
        "every hand-off arrived"
    );
    assert!(v("rvs_handoff_in_total{worker=\"1\"}") > 0.0);
    assert_eq!(v("rvs_handoff_ring_full_total{worker=\"0\"}"), 0.0);
    // Worker 1 has no tx queue: all it sends went out through worker 0's.
    assert!(v("rvs_tx_forwarded_total{worker=\"1\"}") > 0.0);
    assert_eq!(
        v("rvs_tx_forwarded_total{worker=\"1\"}"),
        v("rvs_tx_frames_total{worker=\"1\"}")
    );
    // The port's own counters agree with the run.
    assert_eq!(
        v("rvs_port_rx_packets_total{port=\"p0\"}"),
        frames.len() as f64
    );
    assert_eq!(
        v("rvs_port_tx_packets_total{port=\"p0\"}"),
        want.len() as f64
    );
    assert!(v("rvs_port_rx_bytes_total{port=\"p0\"}") > 0.0);
    assert_eq!(v("rvs_port_rx_missed_total{port=\"p0\"}"), 0.0);
    assert_eq!(
        v("rvs_port_xstats_total{port=\"p0\",name=\"rx_good_packets\"}"),
        frames.len() as f64
    );
}

//! The exception path on the real EAL: a SYN to the appliance's own address (SSH) is handed
//! to the port's kernel interface (`net_tap`, `rvs0`, which `rvsd run` brings up with the
//! port's MAC and addresses); the kernel answers it, and what the kernel sends out of `rvs0`
//! (first its ARP request for the client, to send the RST) goes out of the port. Whole TCP
//! connections to a listener behind `rvs0` (the client's ARP reply and NA reaching the
//! kernel through rvsd) are `ci/netns.sh exception`'s.

mod common;

use std::path::Path;

use common::*;
use pcap_file::pcap::PcapReader;

#[test]
fn frames_for_the_kernel_reach_it_and_its_answers_leave_by_the_port() {
    if !Path::new("/dev/net/tun").exists() {
        panic!("/dev/net/tun is needed for the exception path (net_tap)");
    }
    let (cfg, rules) = (tmp("exc.toml"), tmp("exc.ipvsadm"));
    std::fs::write(&cfg, CONFIG).unwrap();
    std::fs::write(&rules, RULES).unwrap();
    // Several SYNs to 10.0.0.1:22, so one arrives once the kernel side is up.
    let ssh: Vec<Vec<u8>> = (0..50u16)
        .map(|i| syn([10, 0, 0, 9], 40000 + i, [10, 0, 0, 1], 22))
        .collect();
    let (s, pout, _) = run_pcap(
        &ssh,
        &cfg,
        &rules,
        PcapRun {
            name: "exc",
            mem_mb: 512,
            lcores: &["-l", "0-1"],
            exception: true,
            idle_exit_ms: 1500,
        },
    );
    assert_eq!(
        s.kernel, 50,
        "every SYN to the appliance went to the kernel side"
    );
    let mut r = PcapReader::new(std::fs::File::open(&pout).unwrap()).unwrap();
    let mut kernel_arp = 0;
    while let Some(p) = r.next_packet() {
        let f = p.unwrap().data.into_owned();
        // ARP request (op 1) from 10.0.0.1 for 10.0.0.9: the kernel wants to answer the SYN.
        if f.get(12..14) == Some(&[8, 6][..])
            && f.get(20..22) == Some(&[0, 1][..])
            && f.get(28..32) == Some(&[10, 0, 0, 1][..])
            && f.get(38..42) == Some(&[10, 0, 0, 9][..])
        {
            kernel_arp += 1;
        }
    }
    assert!(
        kernel_arp > 0,
        "the kernel's ARP request for the client left by the port"
    );
}

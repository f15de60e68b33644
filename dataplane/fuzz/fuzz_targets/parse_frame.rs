//! Any bytes: the frame parser and every view over the parts it found never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_dataplane::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(pf) = wire::parse_frame(data) {
        let _ = (pf.protocol(), pf.ports(), pf.tcp_flags());
        if let Some(ip) = pf.ip {
            let l4 = data.get(ip.l4_offset..).unwrap_or(&[]);
            let _ = rvs_dataplane::proto::sctp::event(l4.get(12..).unwrap_or(&[]));
            if let wire::L4Summary::Icmp(s) = ip.l4 {
                let _ = s.quoted;
            }
        }
    }
});

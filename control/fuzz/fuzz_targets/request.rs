//! The control socket's request decoder, and the controller behind it: any bytes a client
//! sends give a request or an error, never a panic; any request the decoder accepts gives the
//! controller a reply or a snapshot, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_control::controller::{Base, Controller};
use rvs_control::protocol::{decode_request, read_message, MAX_REQUEST};
use rvs_control::rules::RuleSet;
use rvs_dataplane::config::Sysctl;

fuzz_target!(|data: &[u8]| {
    // As framed on the socket (length prefix first) and as a bare body.
    let mut framed = data;
    if let Ok(Some(body)) = read_message(&mut framed, MAX_REQUEST) {
        let _ = decode_request(&body);
    }
    if let Ok(req) = decode_request(data) {
        let base = Base {
            sysctl: Sysctl::default(),
            fwmark_v4: Vec::new(),
            fwmark_v6: Vec::new(),
        };
        let seed = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1\n";
        let Ok((mut ctl, _)) = Controller::new(RuleSet::from_text(seed).unwrap(), base, 2, 64)
        else {
            return;
        };
        let _ = ctl.handle(req);
    }
});

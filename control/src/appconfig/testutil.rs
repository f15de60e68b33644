//! Helpers of the appconfig tests: a minimal file and ways to edit and refuse it.

use std::net::IpAddr;

use super::{parse, ConfigFileError};

pub(super) const MINIMAL: &str = r#"[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24", "172.16.0.1/24", "fd00::1/64"]
# device = "net_af_packet0" or "0000:3b:00.0" (optional; DPDK device; default: EAL probe order)

[[neighbor]]            # static neighbor
ip = "172.16.0.2"
mac = "02:00:00:00:00:22"
port = "p0"

[[route]]
prefix = "0.0.0.0/0"
via = "10.0.0.254"      # optional: a connected route when absent
port = "p0"

[defense]
drop_entry = 3          # as IPVS's sysctls
"#;

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn refuse(text: &str) -> ConfigFileError {
    match parse(text) {
        Err(e) => e,
        Ok(c) => panic!("accepted: {c:?}\n{text}"),
    }
}

/// The minimal file with `from` replaced by `to`.
pub(super) fn edit(from: &str, to: &str) -> String {
    assert!(MINIMAL.contains(from), "{from}");
    MINIMAL.replacen(from, to, 1)
}

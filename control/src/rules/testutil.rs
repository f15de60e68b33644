//! Helpers of the rules tests.

use std::net::IpAddr;

use rvs_dataplane::proto::Proto;

use super::{parse_line, Command, RuleSet, ServiceId};

pub(super) fn cmd(line: &str) -> Command {
    match parse_line(line) {
        Ok(Some(c)) => c,
        other => panic!("{line}: {other:?}"),
    }
}

pub(super) fn err(line: &str) -> String {
    match parse_line(line) {
        Err(e) => e.to_string(),
        other => panic!("{line}: expected an error, got {other:?}"),
    }
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn tcp(a: &str, port: u16) -> ServiceId {
    ServiceId::Addr {
        proto: Proto::Tcp,
        addr: ip(a),
        port,
    }
}

pub(super) fn set(text: &str) -> RuleSet {
    RuleSet::from_text(text).unwrap_or_else(|e| panic!("{e}"))
}

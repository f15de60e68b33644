//! `[exception]`: the exception path's budget (frames per second per port to the kernel
//! interface) and the BGP/BFD peers whose sessions are never metered
//! (`rvs_dataplane::pipeline::exception`, docs/ARCHITECTURE.md).

use std::net::IpAddr;

use rvs_dataplane::pipeline::exception::{ExceptionConfig, DEFAULT_BUDGET_PPS};

use super::raw::RawException;
use super::values::{Ctx, R};

/// The most peers `[exception] peers` takes.
pub const MAX_PEERS: usize = 256;

/// The highest `[exception] budget_pps`.
pub const MAX_BUDGET_PPS: i64 = 100_000_000;

/// `[exception]`: `budget_pps` in 1..=100 000 000; `peers` unicast addresses, none of them
/// the appliance's own (`all_addrs`), each once, at most [`MAX_PEERS`].
pub(super) fn read_exception(
    c: &Ctx,
    raw: &RawException,
    all_addrs: &[IpAddr],
) -> R<ExceptionConfig> {
    let budget_pps = c.int(
        &raw.budget_pps,
        "exception.budget_pps",
        1,
        MAX_BUDGET_PPS,
        i64::from(DEFAULT_BUDGET_PPS),
    )? as u32;
    let mut peers: Vec<IpAddr> = Vec::new();
    for (i, s) in raw.peers.iter().enumerate() {
        let key = format!("exception.peers[{i}]");
        if i >= MAX_PEERS {
            return Err(c.err(s.span(), &key, format!("more than {MAX_PEERS} peers")));
        }
        let ip = c.ip(s, &key)?;
        let unicast = match ip {
            IpAddr::V4(v) => {
                !(v.is_unspecified() || v.is_multicast() || v.is_broadcast() || v.is_loopback())
            }
            IpAddr::V6(v) => !(v.is_unspecified() || v.is_multicast() || v.is_loopback()),
        };
        if !unicast {
            return Err(c.err(s.span(), &key, format!("{ip} is not a unicast address")));
        }
        if all_addrs.contains(&ip) {
            return Err(c.err(
                s.span(),
                &key,
                format!("{ip} is the appliance's own address (a peer is the far end)"),
            ));
        }
        if let Some(j) = peers.iter().position(|&p| p == ip) {
            return Err(c.err(
                s.span(),
                &key,
                format!("{ip} is already exception.peers[{j}]"),
            ));
        }
        peers.push(ip);
    }
    Ok(ExceptionConfig { budget_pps, peers })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::testutil::{ip, refuse, MINIMAL};
    use super::*;

    fn exception(body: &str) -> ExceptionConfig {
        parse(&format!("{MINIMAL}[exception]\n{body}\n"))
            .unwrap_or_else(|e| panic!("{e}"))
            .exception
    }

    #[test]
    fn defaults_are_ten_thousand_frames_a_second_and_no_peers() {
        let c = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.exception, ExceptionConfig::default());
        assert_eq!(c.exception.budget_pps, 10_000);
        assert_eq!(exception(""), ExceptionConfig::default());
    }

    #[test]
    fn budget_and_peers_of_both_families_are_read() {
        let c = exception("budget_pps = 400\npeers = [\"10.0.0.2\", \"fd00::2\", \"fe80::1\"]");
        assert_eq!(c.budget_pps, 400);
        assert_eq!(c.peers, [ip("10.0.0.2"), ip("fd00::2"), ip("fe80::1")]);
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let e = refuse(&format!("{MINIMAL}[exception]\nbudget_pps = 0\n"));
        assert_eq!(
            e.to_string(),
            "line 20, column 14, key exception.budget_pps: 0 is out of range (want 1..100000000)"
        );
        let e = refuse(&format!("{MINIMAL}[exception]\nbudget_pps = \"lots\"\n"));
        assert_eq!(e.key, "exception.budget_pps", "{e}");
        for (peers, key, why) in [
            (
                "[\"10.0.0.2\", \"peer1\"]",
                "exception.peers[1]",
                "is not an IP address",
            ),
            (
                "[\"10.0.0.2/32\"]",
                "exception.peers[0]",
                "is not an IP address",
            ),
            (
                "[\"224.0.0.5\"]",
                "exception.peers[0]",
                "is not a unicast address",
            ),
            (
                "[\"0.0.0.0\"]",
                "exception.peers[0]",
                "is not a unicast address",
            ),
            (
                "[\"ff02::5\"]",
                "exception.peers[0]",
                "is not a unicast address",
            ),
            (
                "[\"10.0.0.1\"]",
                "exception.peers[0]",
                "the appliance's own address",
            ),
            (
                "[\"fd00::1\"]",
                "exception.peers[0]",
                "the appliance's own address",
            ),
            (
                "[\"10.0.0.2\", \"fd00::2\", \"10.0.0.2\"]",
                "exception.peers[2]",
                "is already exception.peers[0]",
            ),
        ] {
            let e = refuse(&format!("{MINIMAL}[exception]\npeers = {peers}\n"));
            assert_eq!((e.line, e.key.as_str()), (20, key), "{e}");
            assert!(e.message.contains(why), "{peers}: {e}");
        }
        let many: Vec<String> = (0..=MAX_PEERS)
            .map(|i| format!("\"10.1.{}.{}\"", i / 250, 1 + i % 250))
            .collect();
        let e = refuse(&format!(
            "{MINIMAL}[exception]\npeers = [{}]\n",
            many.join(", ")
        ));
        assert_eq!(e.key, format!("exception.peers[{MAX_PEERS}]"), "{e}");
        let e = refuse(&format!("{MINIMAL}[exception]\npeer = [\"10.0.0.2\"]\n"));
        assert!(e.to_string().contains("peer"), "{e}");
    }
}

//! `[icmp]`: the rate of the ICMP errors the path sends itself, as the kernel's
//! `net.ipv4.icmp_msgs_per_sec` and `icmp_msgs_burst` (`rvs_dataplane::pipeline::icmp_limit`).

use rvs_dataplane::pipeline::icmp_limit::{
    IcmpLimitConfig, DEFAULT_MSGS_BURST, DEFAULT_MSGS_PER_SEC,
};

use super::raw::RawIcmp;
use super::values::{Ctx, R};

/// The highest `[icmp] msgs_per_sec` and `msgs_burst`.
pub const MAX_MSGS: i64 = 100_000_000;

/// `[icmp]`: `msgs_per_sec` in 0..=[`MAX_MSGS`] (0: no time exceeded at all), `msgs_burst`
/// in 1..=[`MAX_MSGS`].
pub(super) fn read_icmp(c: &Ctx, raw: &RawIcmp) -> R<IcmpLimitConfig> {
    let msgs_per_sec = c.int(
        &raw.msgs_per_sec,
        "icmp.msgs_per_sec",
        0,
        MAX_MSGS,
        i64::from(DEFAULT_MSGS_PER_SEC),
    )? as u32;
    let msgs_burst = c.int(
        &raw.msgs_burst,
        "icmp.msgs_burst",
        1,
        MAX_MSGS,
        i64::from(DEFAULT_MSGS_BURST),
    )? as u32;
    Ok(IcmpLimitConfig {
        msgs_per_sec,
        msgs_burst,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::testutil::{refuse, MINIMAL};
    use super::*;

    #[test]
    fn icmp_defaults_are_the_kernels_and_keys_are_checked() {
        assert_eq!(
            parse(MINIMAL).unwrap().icmp,
            IcmpLimitConfig {
                msgs_per_sec: 1000,
                msgs_burst: 50
            }
        );
        let c = parse(&format!(
            "{MINIMAL}[icmp]\nmsgs_per_sec = 0\nmsgs_burst = 10\n"
        ))
        .unwrap();
        assert_eq!((c.icmp.msgs_per_sec, c.icmp.msgs_burst), (0, 10));
        let e = refuse(&format!("{MINIMAL}[icmp]\nmsgs_burst = 0\n"));
        assert_eq!(e.key, "icmp.msgs_burst");
        let e = refuse(&format!("{MINIMAL}[icmp]\nmsgs_per_sec = -1\n"));
        assert_eq!(e.key, "icmp.msgs_per_sec");
        let e = refuse(&format!("{MINIMAL}[icmp]\nrate = 5\n"));
        assert!(e.to_string().contains("rate"), "{e}");
    }
}

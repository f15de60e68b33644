//! The rate of the ICMP errors the path sends itself, as the kernel limits its own
//! (`icmp_global_allow`, `net.ipv4.icmp_msgs_per_sec` and `icmp_msgs_burst`): a token
//! bucket, so that a flood of packets with TTL 1 toward a VIP cannot make the appliance
//! answer each one. Time exceeded is limited; fragmentation needed / packet too big never is
//! (the kernel never limits path MTU discovery: `icmpv4_mask_allow`, IPv6's ratemask).
//!
//! The kernel's bucket is one for the host; here each worker has its part
//! (`msgs_per_sec / workers`, `msgs_burst / workers`, at least one message), so no worker
//! writes another's state. Tokens are counted in millionths of a message, refilled from the
//! `now` of each call. The kernel's per-destination limit (`icmp_ratelimit`, one a second
//! per host after a burst of 6) is not kept: it needs a table of peers, and the global limit
//! is what bounds the appliance's work.

use super::token_bucket::{TokenBucket, FRAME};

/// `[icmp] msgs_per_sec` when not given (the kernel's default: `sysctl` says 1000 on this
/// machine's 6.18).
pub const DEFAULT_MSGS_PER_SEC: u32 = 1000;
/// `[icmp] msgs_burst` when not given (the kernel's: 50).
pub const DEFAULT_MSGS_BURST: u32 = 50;

/// `[icmp]`: how many limited ICMP errors the appliance sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpLimitConfig {
    /// Messages a second, all workers together; 0: none at all.
    pub msgs_per_sec: u32,
    /// Messages at once after a quiet spell, all workers together.
    pub msgs_burst: u32,
}

impl Default for IcmpLimitConfig {
    fn default() -> Self {
        IcmpLimitConfig {
            msgs_per_sec: DEFAULT_MSGS_PER_SEC,
            msgs_burst: DEFAULT_MSGS_BURST,
        }
    }
}

/// One worker's part of the limit.
#[derive(Debug)]
pub struct IcmpLimit(TokenBucket);

impl IcmpLimit {
    /// Worker's part of `cfg` among `workers`, full at `now`.
    pub fn new(cfg: IcmpLimitConfig, workers: u32, now: u64) -> Self {
        let workers = u64::from(workers.max(1));
        if cfg.msgs_per_sec == 0 {
            return IcmpLimit(TokenBucket::new(0, 0, now));
        }
        // messages/s x 10^6 / 1000 ms = millionths a ms.
        let rate = (u64::from(cfg.msgs_per_sec) * 1000 / workers).max(1);
        let cap = (u64::from(cfg.msgs_burst) * FRAME / workers).max(FRAME);
        IcmpLimit(TokenBucket::new(rate, cap, now))
    }

    /// Whether one more limited error may go at `now` (taking its token if so).
    #[inline]
    pub fn allow(&mut self, now: u64) -> bool {
        self.0.take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(l: &mut IcmpLimit, from: u64, to: u64, per_ms: u32) -> u32 {
        let mut n = 0;
        for t in from..to {
            for _ in 0..per_ms {
                n += u32::from(l.allow(t));
            }
        }
        n
    }

    #[test]
    fn a_flood_gets_the_burst_then_the_rate() {
        let mut l = IcmpLimit::new(IcmpLimitConfig::default(), 1, 0);
        // 10 packets a ms for 2 s: the burst of 50, then 1000 a second.
        let n = sent(&mut l, 0, 2000, 10);
        assert!((2040..=2051).contains(&n), "{n}");
        // Quiet for a second: the burst again, not more.
        assert_eq!(sent(&mut l, 3000, 3001, 200), 50);
    }

    #[test]
    fn workers_share_the_rate_and_the_burst() {
        let cfg = IcmpLimitConfig {
            msgs_per_sec: 1000,
            msgs_burst: 50,
        };
        let mut ls: Vec<IcmpLimit> = (0..4).map(|_| IcmpLimit::new(cfg, 4, 0)).collect();
        let total: u32 = ls.iter_mut().map(|l| sent(l, 0, 1000, 5)).sum();
        // 4 x (12.5 at once + 250 over the second), give or take a message each.
        assert!((1040..=1054).contains(&total), "{total}");
        // A part smaller than one message still sends one.
        let mut l = IcmpLimit::new(cfg, 256, 0);
        assert!(l.allow(0));
        assert!(!l.allow(0));
    }

    #[test]
    fn zero_a_second_sends_nothing() {
        let cfg = IcmpLimitConfig {
            msgs_per_sec: 0,
            msgs_burst: 50,
        };
        let mut l = IcmpLimit::new(cfg, 1, 0);
        assert_eq!(sent(&mut l, 0, 5000, 3), 0);
    }

    #[test]
    fn a_clock_that_steps_back_adds_nothing() {
        let mut l = IcmpLimit::new(IcmpLimitConfig::default(), 1, 10_000);
        assert_eq!(sent(&mut l, 10_000, 10_001, 100), 50);
        assert!(!l.allow(5_000));
        assert!(l.allow(10_001));
    }
}

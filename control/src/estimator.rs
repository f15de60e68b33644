//! IPVS's rate estimator (`ip_vs_est.c`): every 2 s the counters' deltas feed an EWMA with a
//! weight of 1/4, kept in fixed point (rates x 2^10 for conns and packets, x 2^5 for bytes),
//! and read back rounded. `--rate` and the `rate` series come from here, on the control
//! thread, from the summed counters: nothing on the workers.

use crate::protocol::{Rates, Stats};

/// The estimator's period, ms.
pub const PERIOD_MS: u64 = 2000;

/// One estimator: the last counters seen and the running averages (fixed point).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimator {
    last: Stats,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
    primed: bool,
}

impl Estimator {
    /// A new estimator that takes `now` as its starting point.
    pub fn new(now: Stats) -> Self {
        Estimator {
            last: now,
            primed: true,
            ..Estimator::default()
        }
    }

    /// One 2 s period ended with the counters at `cur` (`estimation_timer`).
    pub fn update(&mut self, cur: Stats) {
        if !self.primed {
            *self = Estimator::new(cur);
            return;
        }
        // Deltas over 2 s, so << 9 is per second x 2^10 and << 4 per second x 2^5.
        let d = |c: u64, l: u64| c.wrapping_sub(l) as i64;
        let ewma = |avg: &mut i64, rate: i64| *avg += (rate - *avg) >> 2;
        ewma(&mut self.cps, d(cur.conns, self.last.conns) << 9);
        ewma(&mut self.inpps, d(cur.inpkts, self.last.inpkts) << 9);
        ewma(&mut self.outpps, d(cur.outpkts, self.last.outpkts) << 9);
        ewma(&mut self.inbps, d(cur.inbytes, self.last.inbytes) << 4);
        ewma(&mut self.outbps, d(cur.outbytes, self.last.outbytes) << 4);
        self.last = cur;
    }

    /// The rates as IPVS reads them (`ip_vs_read_estimator`: rounded from fixed point).
    pub fn rates(&self) -> Rates {
        let r10 = |v: i64| ((v.max(0) + 0x1FF) >> 10) as u64;
        let r5 = |v: i64| ((v.max(0) + 0xF) >> 5) as u64;
        Rates {
            cps: r10(self.cps),
            inpps: r10(self.inpps),
            outpps: r10(self.outpps),
            inbps: r5(self.inbps),
            outbps: r5(self.outbps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(conns: u64, inpkts: u64, inbytes: u64) -> Stats {
        Stats {
            conns,
            inpkts,
            inbytes,
            ..Stats::default()
        }
    }

    #[test]
    fn a_steady_rate_converges_to_itself() {
        // 100 conns/s, 1000 pkts/s, 64000 bytes/s, for 160 s.
        let mut e = Estimator::new(Stats::default());
        for i in 1..=80u64 {
            e.update(at(200 * i, 2000 * i, 128_000 * i));
        }
        let r = e.rates();
        assert_eq!((r.cps, r.inpps, r.inbps), (100, 1000, 64_000));
    }

    #[test]
    fn the_first_period_moves_a_quarter_of_the_way() {
        let mut e = Estimator::new(Stats::default());
        e.update(at(800, 0, 0)); // 400/s: the average goes to 100/s
        assert_eq!(e.rates().cps, 100);
        e.update(at(800, 0, 0)); // 0/s: 75
        assert_eq!(e.rates().cps, 75);
    }

    #[test]
    fn an_unprimed_estimator_starts_at_the_first_sample() {
        let mut e = Estimator::default();
        e.update(at(1_000_000, 0, 0));
        assert_eq!(e.rates(), Rates::default(), "no jump from zero");
    }
}

//! IPVS's defense strategies (`update_defense_level`, `ip_vs_todrop`, `todrop_entry`) for one
//! shard. IPVS compares available memory with `amemthresh`; a shard compares its free conn
//! entries with a low watermark in entries. The modes move as IPVS's sysctls do (1 <-> 2 on
//! memory pressure); the configured value is re-adopted whenever the config changes it.

use crate::config::Sysctl;

/// Re-armed within the last minute: not a try-drop candidate (todrop_entry).
const TODROP_GRACE_MS: u64 = 60_000;

#[derive(Clone, Debug, Default)]
pub struct Defense {
    /// Current drop_entry mode (0..3) after the last update.
    pub drop_entry: u8,
    /// Current drop_packet mode (0..3).
    pub drop_packet: u8,
    /// Current secure_tcp mode (0..3).
    pub secure_tcp: u8,
    /// drop_packet: drop one of every `drop_rate` new-conn packets (0 = off).
    pub drop_rate: u32,
    drop_counter: i64,
    /// Free entries were below the low watermark at the last update.
    pub nomem: bool,
    drop_entry_on: bool,
    secure_on: bool,
    /// The sysctl values last adopted, to notice a config change.
    seen: Option<(u8, u8, u8)>,
    /// todrop_entry's per-in_pkts countdowns.
    todrop_counter: [i32; 9],
}

impl Defense {
    /// update_defense_level, once a second.
    pub fn update(&mut self, sysctl: &Sysctl, free: u32, low_watermark: u32) {
        let configured = (sysctl.drop_entry, sysctl.drop_packet, sysctl.secure_tcp);
        if self.seen != Some(configured) {
            self.seen = Some(configured);
            (self.drop_entry, self.drop_packet, self.secure_tcp) = configured;
        }
        let nomem = free < low_watermark;
        self.nomem = nomem;

        self.drop_entry_on = match self.drop_entry {
            0 => false,
            1 | 2 => {
                self.drop_entry = if nomem { 2 } else { 1 };
                nomem
            }
            _ => true,
        };

        match self.drop_packet {
            0 => self.drop_rate = 0,
            1 | 2 => {
                if nomem {
                    // amemthresh / (amemthresh - availmem), at least 1.
                    let rate = (low_watermark / (low_watermark - free).max(1)).max(1);
                    self.drop_rate = rate;
                    self.drop_counter = i64::from(rate);
                    self.drop_packet = 2;
                } else {
                    self.drop_rate = 0;
                    self.drop_packet = 1;
                }
            }
            _ => self.drop_rate = sysctl.am_droprate,
        }

        self.secure_on = match self.secure_tcp {
            0 => false,
            1 | 2 => {
                self.secure_tcp = if nomem { 2 } else { 1 };
                nomem
            }
            _ => true,
        };
    }

    /// The drop_entry scan runs this second.
    #[inline]
    pub fn drop_entry_active(&self) -> bool {
        self.drop_entry_on
    }

    /// New conns use the secure_tcp state table.
    #[inline]
    pub fn secure_tcp_active(&self) -> bool {
        self.secure_on
    }

    /// ip_vs_todrop: drop this new-conn packet?
    #[inline]
    pub fn todrop(&mut self) -> bool {
        if self.drop_rate == 0 {
            return false;
        }
        self.drop_counter -= 1;
        if self.drop_counter > 0 {
            return false;
        }
        self.drop_counter = i64::from(self.drop_rate);
        true
    }

    /// todrop_entry: the scan's try-drop for established conns, UDP and OPS templates, given
    /// the conn's timeout, deadline and `in_pkts`.
    pub fn todrop_entry(&mut self, timeout: u32, expires: u64, in_pkts: u32, now: u64) -> bool {
        // Re-armed less than 60 s ago (remaining > timeout - 60 s): leave it be.
        if u64::from(timeout) + now < expires + TODROP_GRACE_MS {
            return false;
        }
        // Candidates have 1..=8 inbound packets; one in every i of those with i is dropped.
        let i = in_pkts;
        if !(1..=8).contains(&i) {
            return false;
        }
        let i = i as usize;
        self.todrop_counter[i] -= 1;
        if self.todrop_counter[i] > 0 {
            return false;
        }
        self.todrop_counter[i] = i as i32;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysctl(drop_entry: u8, drop_packet: u8, secure_tcp: u8) -> Sysctl {
        Sysctl {
            drop_entry,
            drop_packet,
            secure_tcp,
            ..Sysctl::default()
        }
    }

    #[test]
    fn drop_entry_mode_1_switches_to_2_under_pressure_and_back() {
        let mut d = Defense::default();
        let s = sysctl(1, 0, 0);
        d.update(&s, 1000, 100);
        assert!(!d.drop_entry_active());
        assert_eq!(d.drop_entry, 1);
        d.update(&s, 50, 100);
        assert!(d.drop_entry_active());
        assert_eq!(d.drop_entry, 2);
        d.update(&s, 500, 100);
        assert!(!d.drop_entry_active());
        assert_eq!(d.drop_entry, 1);
    }

    #[test]
    fn drop_entry_mode_3_always_and_0_never() {
        let mut d = Defense::default();
        d.update(&sysctl(3, 0, 0), 1000, 100);
        assert!(d.drop_entry_active());
        let mut d = Defense::default();
        d.update(&sysctl(0, 0, 0), 0, 100);
        assert!(!d.drop_entry_active());
    }

    #[test]
    fn drop_packet_rate_follows_amemthresh_formula() {
        let mut d = Defense::default();
        let s = sysctl(0, 1, 0);
        d.update(&s, 75, 100);
        // 100 / (100 - 75) = 4: one of every 4 new-conn packets.
        assert_eq!(d.drop_rate, 4);
        let drops = (0..40).filter(|_| d.todrop()).count();
        assert_eq!(drops, 10);
        d.update(&s, 200, 100);
        assert_eq!(d.drop_rate, 0);
        assert!(!d.todrop());
    }

    #[test]
    fn drop_packet_mode_3_uses_am_droprate() {
        let mut d = Defense::default();
        d.update(&sysctl(0, 3, 0), 1000, 100);
        assert_eq!(d.drop_rate, 10);
        assert_eq!((0..100).filter(|_| d.todrop()).count(), 10);
    }

    #[test]
    fn secure_tcp_on_only_under_pressure_in_mode_1() {
        let mut d = Defense::default();
        let s = sysctl(0, 0, 1);
        d.update(&s, 1000, 100);
        assert!(!d.secure_tcp_active());
        d.update(&s, 10, 100);
        assert!(d.secure_tcp_active());
        assert_eq!(d.secure_tcp, 2);
    }

    #[test]
    fn todrop_entry_spares_recently_rearmed_and_rates_by_in_pkts() {
        let mut d = Defense::default();
        let now = 1_000_000;
        let (timeout, mut expires, mut in_pkts) = (900_000, now + 900_000, 2);
        assert!(
            !d.todrop_entry(timeout, expires, in_pkts, now),
            "re-armed just now"
        );
        expires = now + 800_000;
        // in_pkts = 2: the first candidate and then every second one.
        let hits: Vec<bool> = (0..6)
            .map(|_| d.todrop_entry(timeout, expires, in_pkts, now))
            .collect();
        assert_eq!(hits, [true, false, true, false, true, false]);
        in_pkts = 9;
        assert!(!d.todrop_entry(timeout, expires, in_pkts, now));
        in_pkts = 0;
        assert!(!d.todrop_entry(timeout, expires, in_pkts, now));
    }
}

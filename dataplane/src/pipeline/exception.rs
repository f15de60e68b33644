//! The exception path's budget: every frame the packet path hands to a port's kernel
//! interface is classified and, unless its class is protected, metered by a token bucket of
//! that class, so that a flood at the appliance's own addresses cannot crowd out the frames
//! the kernel needs (its neighbor answers, its routing sessions, its management connections).
//!
//! # Classes
//!
//! - **neigh**: ARP replies and neighbor advertisements to the appliance (the caller knows
//!   them): never metered.
//! - **peer**: from a configured peer (`[exception] peers`): TCP to or from port 179 (BGP),
//!   UDP to 3784, 3785 or 4784 (BFD control, echo, multihop), ICMP and ICMPv6, and later
//!   fragments: never metered.
//! - **syn**: TCP with SYN and without ACK or RST: new connections, 1/8 of the budget.
//! - **syn_retry**: a SYN this meter refused before, sent again (same addresses, ports and
//!   sequence number: a TCP retransmission), 1/8 of the budget.
//! - **tcp**: every other TCP segment (the handshake's ACK, data, FIN, RST, SYN-ACKs of the
//!   kernel's own connections), 1/2 of the budget.
//! - **other**: everything else (UDP, ICMP, other protocols, non-IP frames), 1/4.
//!
//! # Why these classes
//!
//! A flood with random source addresses cannot be told from a new connection by its SYN, so
//! with one bucket a SYN flood at k times the budget lets about 1/k of the management SYNs
//! through. Splitting helps twice. The segments after the SYN are in `tcp`, which a SYN
//! flood cannot consume: a connection whose SYN got in completes. And a real client
//! retransmits a SYN that got no answer (Linux after 1 s, then 2 s, 4 s, ...) with the same
//! sequence number, which a random-source flood never does: a refused SYN's fingerprint is
//! remembered, and its retransmission is judged in `syn_retry`, a share only retransmissions
//! reach (greylisting, as mail servers do it). So a connect that loses its first SYN to the flood gets in with its first
//! retransmission, whatever the flood's rate, as long as the fingerprint is still there: the
//! table is direct-mapped ([`GREYLIST`] slots of 2 bytes per worker, 2 MiB), so a
//! fingerprint survives one second with probability `exp(-refused SYNs per second /
//! GREYLIST)` (0.99 at 8000 refused SYNs/s on a worker, 0.95 at 50 000). A fingerprint has
//! 15 bits: a flood SYN meets one that matches by chance once in 32768 at worst, so the flood
//! reaches `syn_retry` only at that rate. A flood that sends every SYN twice reaches it
//! fully, and then retransmissions get about 1/k of it: no worse than one bucket.
//!
//! # Metering
//!
//! Each worker meters its own frames with its own buckets (per port, per class), each
//! refilled at the class's share of `budget_pps` divided by the workers, from the `now` of
//! the frame's burst: no shared state, no atomic. A bucket holds at most a tenth of a
//! second's share (at least 64 frames), so a class passes that much at once after a quiet
//! spell. Tokens are counted in millionths of a frame, so any share of any budget over any
//! number of workers refills to within a millionth of a frame per millisecond.
//!
//! Only the exception branch calls the meter; forwarding never does.

use std::net::IpAddr;

use super::token_bucket::{TokenBucket, FRAME};
use crate::wire::{IpSummary, L4Summary, ParsedFrame, TcpFlags};

/// `[exception] budget_pps` when not given: frames per second per port.
pub const DEFAULT_BUDGET_PPS: u32 = 10_000;
/// BGP's port.
pub const BGP_PORT: u16 = 179;
/// BFD's ports: single-hop control (RFC 5881), echo, multihop control (RFC 5883).
pub const BFD_PORTS: [u16; 3] = [3784, 3785, 4784];
/// Slots of a worker's table of refused SYNs (a power of two; 2 bytes each).
pub const GREYLIST: usize = 1 << 20;

/// The most a bucket holds: this many milliseconds of its share ...
const BURST_MS: u64 = 100;
/// ... and at least this many frames (a few clients' handshakes and first segments at once,
/// which a small budget's tenth of a second would cut short).
const BURST_MIN: u64 = 64;

/// The appliance's `[exception]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExceptionConfig {
    /// Frames per second per port to the kernel, over every metered class and worker.
    pub budget_pps: u32,
    /// BGP/BFD peers: their sessions are never metered.
    pub peers: Vec<IpAddr>,
}

impl Default for ExceptionConfig {
    fn default() -> Self {
        ExceptionConfig {
            budget_pps: DEFAULT_BUDGET_PPS,
            peers: Vec::new(),
        }
    }
}

macro_rules! classes {
    ($($v:ident => $s:literal,)*) => {
        /// What a frame for the kernel is, as the meter sees it (module doc).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Class { $($v,)* }
        impl Class {
            pub const ALL: &'static [Class] = &[$(Class::$v,)*];
            pub const COUNT: usize = [$($s,)*].len();
            pub fn name(self) -> &'static str { match self { $(Class::$v => $s,)* } }
        }
    };
}

classes! {
    Neigh => "neigh",
    Peer => "peer",
    Syn => "syn",
    SynRetry => "syn_retry",
    Tcp => "tcp",
    Other => "other",
}

impl Class {
    /// The class's share of the budget in eighths and its bucket's index; `None`: never
    /// metered.
    fn share(self) -> Option<(u64, usize)> {
        match self {
            Class::Neigh | Class::Peer => None,
            Class::Syn => Some((1, 0)),
            Class::SynRetry => Some((1, 1)),
            Class::Tcp => Some((4, 2)),
            Class::Other => Some((2, 3)),
        }
    }
}

/// Metered classes (buckets per port).
const METERED: usize = 4;

/// What the caller knows of a frame for the kernel.
#[derive(Clone, Copy, Debug)]
pub enum Seen<'a> {
    /// An ARP reply or neighbor advertisement to the appliance.
    Neigh,
    /// Anything else, as parsed.
    Frame(&'a ParsedFrame),
}

/// A class's bucket: a tenth of a second of its rate, at least [`BURST_MIN`] frames.
fn bucket(rate: u64, now: u64) -> TokenBucket {
    let cap = rate.saturating_mul(BURST_MS).max(BURST_MIN * FRAME);
    TokenBucket::new(rate, cap, now)
}

/// One worker's meter of its frames for the kernel interfaces (per port).
pub struct Meter {
    /// Sorted, for a binary search.
    peers4: Vec<u32>,
    peers6: Vec<u128>,
    /// `METERED` buckets per port.
    buckets: Box<[TokenBucket]>,
    /// Fingerprints of refused SYNs (0: empty), direct-mapped.
    greylist: Box<[u16]>,
    seed: u64,
}

impl Meter {
    /// The meter of one of `workers` workers for `ports` ports, full at `now`. `seed` keys
    /// the SYN fingerprints (draw it: the addresses come from the network).
    #[cold]
    pub fn new(cfg: &ExceptionConfig, ports: usize, workers: u32, seed: u64, now: u64) -> Self {
        let mut peers4: Vec<u32> = Vec::new();
        let mut peers6: Vec<u128> = Vec::new();
        for p in &cfg.peers {
            match p {
                IpAddr::V4(a) => peers4.push(u32::from(*a)),
                IpAddr::V6(a) => peers6.push(u128::from(*a)),
            }
        }
        peers4.sort_unstable();
        peers4.dedup();
        peers6.sort_unstable();
        peers6.dedup();
        let workers = u64::from(workers.max(1));
        let mut buckets = Vec::with_capacity(ports * METERED);
        for _ in 0..ports {
            for c in [Class::Syn, Class::SynRetry, Class::Tcp, Class::Other] {
                let eighths = c.share().map_or(0, |(e, _)| e);
                // frames/s x 1000 = millionths per ms; budget x eighths / 8 x 1000 / workers.
                let rate = (u64::from(cfg.budget_pps) * eighths * 125 / workers).max(1);
                buckets.push(bucket(rate, now));
            }
        }
        Meter {
            peers4,
            peers6,
            buckets: buckets.into_boxed_slice(),
            greylist: vec![0u16; GREYLIST].into_boxed_slice(),
            seed,
        }
    }

    /// Whether `src` is a configured peer.
    #[inline]
    fn is_peer(&self, src: IpAddr) -> bool {
        match src {
            IpAddr::V4(a) => self.peers4.binary_search(&u32::from(a)).is_ok(),
            IpAddr::V6(a) => self.peers6.binary_search(&u128::from(a)).is_ok(),
        }
    }

    /// The class of a parsed frame for the kernel (neighbor answers are the caller's:
    /// [`Seen::Neigh`]); a SYN is `Syn` here, `SynRetry` is decided by [`Meter::admit`].
    pub fn classify(&self, pf: &ParsedFrame) -> Class {
        let Some(ip) = pf.ip else {
            return Class::Other;
        };
        let peer = self.is_peer(ip.src);
        match ip.l4 {
            L4Summary::Tcp {
                src_port,
                dst_port,
                flags,
                ..
            } => {
                if peer && (src_port == BGP_PORT || dst_port == BGP_PORT) {
                    Class::Peer
                } else if flags.contains(TcpFlags::SYN)
                    && !flags.contains(TcpFlags::ACK)
                    && !flags.contains(TcpFlags::RST)
                {
                    Class::Syn
                } else {
                    Class::Tcp
                }
            }
            L4Summary::Udp { dst_port, .. } if peer && BFD_PORTS.contains(&dst_port) => Class::Peer,
            L4Summary::Icmp(_) | L4Summary::NonFirstFragment if peer => Class::Peer,
            _ => Class::Other,
        }
    }

    /// Judge a frame for the kernel interface of `port` at `now`: its class, and whether it
    /// passes. A SYN the `syn` share refuses is remembered; when it comes again it is judged
    /// as `SynRetry`, against that share instead.
    pub fn admit(&mut self, port: u16, seen: Seen<'_>, now: u64) -> (Class, bool) {
        let (mut class, pf) = match seen {
            Seen::Neigh => return (Class::Neigh, true),
            Seen::Frame(pf) => (self.classify(pf), pf),
        };
        let mut remember = None;
        if class == Class::Syn {
            if let Some(ip) = &pf.ip {
                let (slot, tag) = self.syn_slot(ip);
                if self.greylist[slot] == tag {
                    class = Class::SynRetry;
                } else {
                    remember = Some((slot, tag));
                }
            }
        }
        let Some((_, i)) = class.share() else {
            return (class, true);
        };
        let pass = self
            .buckets
            .get_mut(usize::from(port) * METERED + i)
            .is_some_and(|b| b.take(now));
        if let (false, Some((slot, tag))) = (pass, remember) {
            self.greylist[slot] = tag;
        }
        (class, pass)
    }

    /// A SYN's slot in the greylist and its fingerprint there (never 0): the addresses, the
    /// ports and the sequence number, which a retransmission repeats.
    fn syn_slot(&self, ip: &IpSummary) -> (usize, u16) {
        let (sport, dport, seq) = match ip.l4 {
            L4Summary::Tcp {
                src_port,
                dst_port,
                seq,
                ..
            } => (src_port, dst_port, seq),
            _ => (0, 0, 0),
        };
        let mut h = mix(self.seed ^ fold(ip.src));
        h = mix(h ^ fold(ip.dst));
        h = mix(h ^ (u64::from(sport) << 48 | u64::from(dport) << 32 | u64::from(seq)));
        (h as usize & (GREYLIST - 1), (h >> 48) as u16 | 1)
    }
}

/// An address folded to 64 bits (for hashing).
fn fold(a: IpAddr) -> u64 {
    match a {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64).rotate_left(29)
        }
    }
}

/// Murmur3's 64-bit finalizer.
#[inline]
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_frame;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn eth(ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&MAC);
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    /// An IPv4 packet (header checksum left 0: the parser does not check it).
    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
        let len = (20 + l4.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(l4);
        eth(0x0800, &p)
    }

    fn tcp(src: [u8; 4], sport: u16, dport: u16, flags: u8, seq: u32) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        ipv4(src, [10, 0, 0, 1], 6, &t)
    }

    fn udp(src: [u8; 4], dport: u16) -> Vec<u8> {
        let mut u = vec![0u8; 8];
        u[0..2].copy_from_slice(&50000u16.to_be_bytes());
        u[2..4].copy_from_slice(&dport.to_be_bytes());
        u[4..6].copy_from_slice(&8u16.to_be_bytes());
        ipv4(src, [10, 0, 0, 1], 17, &u)
    }

    /// A TCP segment over IPv6 from `src` to fd00::1.
    fn tcp6(src: &str, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        p.extend_from_slice(&src.parse::<std::net::Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&"fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        p.extend_from_slice(&t);
        eth(0x86dd, &p)
    }

    fn echo(src: [u8; 4]) -> Vec<u8> {
        ipv4(src, [10, 0, 0, 1], 1, &[8, 0, 0, 0, 0, 1, 0, 1])
    }

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PEER: [u8; 4] = [10, 0, 0, 2];

    fn meter(budget: u32, workers: u32) -> Meter {
        let cfg = ExceptionConfig {
            budget_pps: budget,
            peers: vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
        };
        Meter::new(&cfg, 2, workers, 7, 0)
    }

    fn judge(m: &mut Meter, frame: &[u8], now: u64) -> (Class, bool) {
        let pf = parse_frame(frame).unwrap();
        m.admit(0, Seen::Frame(&pf), now)
    }

    #[test]
    fn frames_are_classified_by_protocol_flags_and_peer() {
        let m = meter(1000, 1);
        let class = |f: Vec<u8>| m.classify(&parse_frame(&f).unwrap());
        let stranger = [192, 0, 2, 9];
        assert_eq!(
            class(tcp(PEER, 40000, 179, ACK, 1)),
            Class::Peer,
            "BGP to us"
        );
        assert_eq!(
            class(tcp(PEER, 179, 40000, SYN, 1)),
            Class::Peer,
            "BGP from its port"
        );
        assert_eq!(
            class(tcp(PEER, 40000, 22, SYN, 1)),
            Class::Syn,
            "a peer's SSH is not"
        );
        assert_eq!(class(tcp(stranger, 40000, 179, SYN, 1)), Class::Syn);
        assert_eq!(class(tcp(stranger, 40000, 22, SYN | ACK, 1)), Class::Tcp);
        assert_eq!(class(tcp(stranger, 40000, 22, SYN | 0x04, 1)), Class::Tcp);
        assert_eq!(class(tcp(stranger, 40000, 22, ACK, 1)), Class::Tcp);
        for p in BFD_PORTS {
            assert_eq!(class(udp(PEER, p)), Class::Peer, "BFD {p}");
            assert_eq!(class(udp(stranger, p)), Class::Other);
        }
        assert_eq!(class(udp(PEER, 53)), Class::Other);
        assert_eq!(class(echo(PEER)), Class::Peer);
        assert_eq!(class(echo(stranger)), Class::Other);
        assert_eq!(class(eth(0x88cc, &[0; 46])), Class::Other, "LLDP");
        assert_eq!(
            class(tcp6("fd00::2", 179, 40000, ACK)),
            Class::Peer,
            "an IPv6 peer"
        );
        assert_eq!(class(tcp6("fd00::3", 179, 40000, ACK)), Class::Tcp);
        assert_eq!(class(tcp6("fd00::3", 40000, 22, SYN)), Class::Syn);
    }

    #[test]
    fn neighbor_answers_and_peers_are_never_metered() {
        let mut m = meter(10, 1);
        for now in 0..10 {
            for _ in 0..1000 {
                assert_eq!(m.admit(0, Seen::Neigh, now), (Class::Neigh, true));
                assert_eq!(
                    judge(&mut m, &tcp(PEER, 40000, 179, ACK, 1), now),
                    (Class::Peer, true)
                );
            }
        }
    }

    /// What each class passes of a 8000 pps budget over `workers` in a 10 s flood of every
    /// class at once on one worker.
    fn passed_in_10s(workers: u32) -> [u64; 4] {
        let mut m = meter(8000, workers);
        let mut passed = [0u64; 4];
        let frames = [tcp([192, 0, 2, 1], 1, 22, ACK, 1), udp([192, 0, 2, 1], 53)];
        let mut seq = 0u32;
        // 10 frames of each class a millisecond, over any share.
        for now in 1..=10_000u64 {
            for _ in 0..10 {
                seq = seq.wrapping_add(0x9e37_79b9);
                let syn = tcp([198, 51, 100, seq as u8], seq as u16, 22, SYN, seq);
                for (i, f) in [&syn, &frames[0], &frames[1]].into_iter().enumerate() {
                    let (c, ok) = judge(&mut m, f, now);
                    let want = [Class::Syn, Class::Tcp, Class::Other][i];
                    // A flood SYN may match a refused one's fingerprint by chance (15 bits).
                    assert!(c == want || (c == Class::SynRetry && i == 0), "{c:?}");
                    if c == want {
                        passed[[0, 2, 3][i]] += u64::from(ok);
                    }
                }
            }
        }
        passed
    }

    #[test]
    fn each_class_passes_its_share_of_the_budget_and_no_more() {
        // A share of S frames/s: the full bucket at the start (S/10 frames, at least 64),
        // then 9999 ms of refill (the first millisecond finds the bucket full).
        let want = |s: u64| (s / 10).max(64) + 9999 * s / 1000;
        let [syn, _, tcp, other] = passed_in_10s(1);
        assert_eq!((syn, tcp, other), (want(1000), want(4000), want(2000)));
        // With 4 workers, each gets a quarter.
        let [syn, _, tcp, other] = passed_in_10s(4);
        assert_eq!((syn, tcp, other), (want(250), want(1000), want(500)));
    }

    /// A SYN from a random source, port and sequence number.
    fn random_syn(rng: &mut crate::rng::Rng) -> Vec<u8> {
        let r = rng.next_u64();
        tcp(
            (r as u32).to_be_bytes(),
            (r >> 32) as u16,
            22,
            SYN,
            (r >> 32) as u32,
        )
    }

    #[test]
    fn a_retransmitted_syn_gets_in_despite_a_random_source_flood() {
        // 1000 pps: syn and syn_retry 125/s each. Flood: 5000 random SYNs a second (40
        // times the share), one every 0.2 ms.
        let mut m = meter(1000, 1);
        let mut rng = crate::rng::Rng::new(3);
        let client = |seq: u32| tcp([192, 0, 2, 50], 40000 + (seq % 1000) as u16, 22, SYN, seq);
        let (mut first, mut retried, mut tries, mut evicted) = (0, 0, 0, 0);
        let mut false_retry = 0u32;
        for conn in 0..40u32 {
            let start = 1000 + u64::from(conn) * 3000;
            // The client's SYN at `start`, then retransmissions 1 s and 3 s later.
            let mut got = None;
            for now in start..start + 3001 {
                for _ in 0..5 {
                    let (c, _) = judge(&mut m, &random_syn(&mut rng), now);
                    false_retry += u32::from(c == Class::SynRetry);
                }
                let t = now - start;
                if got.is_none() && (t == 0 || t == 1000 || t == 3000) {
                    tries += 1;
                    let (c, ok) = judge(&mut m, &client(conn * 7919), now);
                    // A retransmission is recognized unless the flood overwrote its slot
                    // (each second, about 1 in 200 here).
                    assert!(c == Class::SynRetry || (c == Class::Syn && (t == 0 || !ok)));
                    evicted += u32::from(t > 0 && c == Class::Syn);
                    if ok {
                        got = Some(t);
                    }
                }
            }
            match got {
                Some(0) => first += 1,
                Some(_) => retried += 1,
                None => {}
            }
        }
        // 5000 SYNs/s against 125/s: about 1 in 40 first SYNs gets in; every
        // retransmission does (the retry share sees only the client).
        assert!(first <= 5, "first SYNs through: {first}");
        assert_eq!(
            first + retried,
            40,
            "connects through in 3 tries ({tries} SYNs sent)"
        );
        assert!(evicted <= 4, "retransmissions not recognized: {evicted}");
        // 600 000 flood SYNs, each matching a fingerprint by chance at most 1 in 32768.
        assert!(
            false_retry <= 18,
            "flood SYNs taken for retransmissions: {false_retry}"
        );
    }

    #[test]
    fn without_the_retry_share_the_same_flood_starves_the_client() {
        // What one bucket would do: the client's SYNs, retransmissions included, all judged
        // in `syn`. Its pass rate is the share over the flood, the failure the split fixes.
        let mut m = meter(1000, 1);
        let mut rng = crate::rng::Rng::new(4);
        let mut through = 0;
        for conn in 0..40u32 {
            let start = 1000 + u64::from(conn) * 3000;
            let mut ok_any = false;
            for now in start..start + 3001 {
                for _ in 0..5 {
                    judge(&mut m, &random_syn(&mut rng), now);
                }
                let t = now - start;
                if !ok_any && (t == 0 || t == 1000 || t == 3000) {
                    // A new sequence number each try: never recognized.
                    let seq = conn * 7919 + t as u32;
                    let (_, ok) = judge(&mut m, &tcp([192, 0, 2, 50], 40000, 22, SYN, seq), now);
                    ok_any |= ok;
                }
            }
            through += u32::from(ok_any);
        }
        // 3 tries at about 1/40 each: a few of the 40.
        assert!(through <= 10, "connects through: {through}");
    }

    #[test]
    fn buckets_are_per_port_and_a_clock_going_back_refills_nothing() {
        let mut m = meter(800, 1);
        let f = udp([192, 0, 2, 1], 53);
        let pf = parse_frame(&f).unwrap();
        // other: 200/s, a bucket of 64 frames (a tenth of a second would be 20).
        let n0 = (0..100)
            .filter(|_| m.admit(0, Seen::Frame(&pf), 5).1)
            .count();
        assert_eq!(n0, 64);
        let n1 = (0..100)
            .filter(|_| m.admit(1, Seen::Frame(&pf), 5).1)
            .count();
        assert_eq!(n1, 64, "port 1 has its own");
        assert!(
            !m.admit(0, Seen::Frame(&pf), 3).1,
            "back in time: no tokens"
        );
        assert!(m.admit(0, Seen::Frame(&pf), 10).1, "5 ms later: one frame");
        assert!(!m.admit(9, Seen::Frame(&pf), 10).1, "no such port: refused");
    }
}

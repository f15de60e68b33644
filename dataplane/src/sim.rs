//! `rvsd simulate synflood`: one shard in virtual time under a SYN flood from random
//! sources, with legitimate persistent clients beside it. The seed's story, measured: flood
//! conns in SYN_RECV are dropped by the 1/32-per-second scan (about (31/32)^60 = 0.149 reach
//! their timeout), their templates go with them (the dropped-chain rule) or are collected by
//! the scan when orphaned, and the legitimate clients' ASSURED templates keep them on their
//! dest throughout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::addr::V4;
use crate::config::{
    Config, ConfigError, DestConfig, Fwd, Persistence, ServiceConfig, ServiceKey, Sysctl,
};
use crate::counters::{DropReason, TCP_BASE};
use crate::proto::tcp::{self, TcpState};
use crate::proto::Proto;
use crate::rng::Rng;
use crate::sched::SchedKind;
use crate::shard::{Packet, Shard, ShardParams, Verdict};

/// Parameters of one run (the CLI flags).
#[derive(Clone, Debug)]
pub struct SynfloodParams {
    /// Virtual seconds of flood.
    pub seconds: u64,
    /// Flood SYNs per second, each from a random source address and port.
    pub rate: u64,
    /// Conn entries of the shard.
    pub capacity: u32,
    /// Persistence timeout in seconds (0 = not persistent).
    pub persistence: u32,
    /// Persistence netmask as a prefix length.
    pub netmask: u8,
    /// Legitimate persistent clients.
    pub legit: u32,
    /// drop_entry mode 0..3.
    pub drop_entry: u8,
    /// Low watermark in free entries (0 = capacity / 16).
    pub low_watermark: u32,
    pub dests: u32,
    pub sched: SchedKind,
    pub seed: u64,
}

impl Default for SynfloodParams {
    fn default() -> Self {
        SynfloodParams {
            seconds: 600,
            rate: 1000,
            capacity: 1 << 18,
            persistence: 300,
            netmask: 32,
            legit: 100,
            drop_entry: 3,
            low_watermark: 0,
            dests: 4,
            sched: SchedKind::Wlc,
            seed: 1,
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct SynfloodReport {
    pub flood_syns: u64,
    /// Flood conns that reached their SYN_RECV timeout without being dropped by the scan,
    /// as a fraction of the flood conns that ended either way.
    pub syn_recv_survival: f64,
    /// The seed's arithmetic for the same timeout: (31/32)^(SYN_RECV timeout in s).
    pub syn_recv_survival_expected: f64,
    pub templates_end: u64,
    pub templates_max: u64,
    pub assured_templates_end: u64,
    pub conns_end: u64,
    pub conns_max: u64,
    pub capacity: u32,
    pub legit_clients: u32,
    pub legit_clients_kept_dest: u32,
    pub legit_conns_ok: u64,
    pub legit_conns_failed: u64,
    pub drops: Vec<(&'static str, u64)>,
}

/// Legit client script steps, a few ms apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// Client `c` starts a connection (SYN) with this source port.
    Open(u32, u16),
    /// Next packet of client `c`'s connection: step number.
    Step(u32, u16, u8),
}

const VIP: u32 = 0xC0A8_6401; // 192.168.100.1
const VPORT: u16 = 80;
/// The flood starts after every legit client has made its first connection.
const FLOOD_START_MS: u64 = 60_000;

fn legit_addr(c: u32) -> V4 {
    // 172.16.0.0/12, one client per /24 so that any netmask up to /24 keeps them apart.
    V4(0xAC10_0000 | ((c & 0xFFF) << 8) | 10)
}

fn is_legit_range(a: u32) -> bool {
    a & 0xFFF0_0000 == 0xAC10_0000
}

pub fn synflood(p: &SynfloodParams) -> Result<SynfloodReport, ConfigError> {
    let vip = V4(VIP);
    let mut svc = ServiceConfig::new(
        ServiceKey::Addr {
            proto: Proto::Tcp,
            vaddr: vip,
            vport: VPORT,
        },
        p.sched,
    );
    if p.persistence > 0 {
        svc.persistence = Some(Persistence {
            timeout_ms: p.persistence * 1000,
            prefix: p.netmask,
        });
    }
    svc.dests = (0..p.dests.max(1))
        .map(|i| DestConfig {
            addr: V4(0x0A0A_0000 + i + 1),
            port: VPORT,
            weight: 1,
            fwd: Fwd::Droute,
            u_threshold: 0,
            l_threshold: 0,
            ..Default::default()
        })
        .collect();
    svc.rebuild_tables();
    let sysctl = Sysctl {
        drop_entry: p.drop_entry,
        low_watermark: p.low_watermark,
        ..Sysctl::default()
    };
    let syn_recv_s = sysctl.timeouts.tcp[TcpState::SynRecv as usize] / 1000;
    let cfg = Arc::new(Config::new(vec![svc], sysctl)?);
    let mut shard = Shard::<V4>::new(
        ShardParams {
            capacity: p.capacity,
            max_dests: 64,
            seed: p.seed,
            ..Default::default()
        },
        cfg,
        0,
    );
    let counters = shard.counters();
    let mut rng = Rng::new(p.seed.wrapping_mul(0x2545_F491_4F6C_DD1D));

    let end = FLOOD_START_MS + p.seconds * 1000;
    let mut legit = Legit {
        events: BinaryHeap::new(),
        first_dest: vec![None; p.legit as usize],
        kept: vec![true; p.legit as usize],
    };
    for c in 0..p.legit {
        let t = rng.below(FLOOD_START_MS - 10_000);
        legit
            .events
            .push(Reverse((t, Ev::Open(c, 1024 + rng.below(60_000) as u16))));
    }
    let mut rep = SynfloodReport {
        capacity: p.capacity,
        legit_clients: p.legit,
        ..Default::default()
    };

    // Flood SYNs at even intervals, in µs so that any rate up to 1M/s keeps its spacing.
    let flood_gap = 1_000_000u64.checked_div(p.rate).unwrap_or(u64::MAX);
    let mut next_flood_us: u64 = if p.rate > 0 {
        FLOOD_START_MS * 1000
    } else {
        u64::MAX
    };
    loop {
        let next_ev = legit.events.peek().map(|Reverse((t, _))| *t);
        let flood_t = next_flood_us / 1000;
        let t = match next_ev {
            Some(te) if te <= flood_t => te,
            _ => flood_t,
        };
        if t >= end {
            break;
        }
        shard.tick(t);
        rep.templates_max = rep.templates_max.max(counters.templates.get());
        rep.conns_max = rep.conns_max.max(counters.conns.get());
        if next_ev == Some(t) {
            let Some(Reverse((_, ev))) = legit.events.pop() else {
                break;
            };
            legit.step(&mut shard, &mut rep, &mut rng, ev, t);
        } else {
            let mut src = rng.next_u32();
            while is_legit_range(src) {
                src = rng.next_u32();
            }
            let sport = 1024 + rng.below(64_000) as u16;
            shard.process(&Packet::tcp(V4(src), sport, vip, VPORT, tcp::SYN), t);
            rep.flood_syns += 1;
            next_flood_us = next_flood_us.saturating_add(flood_gap.max(1));
        }
    }
    shard.tick(end);
    rep.templates_end = counters.templates.get();
    rep.assured_templates_end = counters.assured_templates.get();
    rep.conns_end = counters.conns.get();
    // Let every flood conn end (by the scan or by its timeout) before counting survivors, so
    // that the last minute's conns, dropped early but not yet timed out, bias nothing.
    shard.tick(end + u64::from(syn_recv_s) * 1000 + 1000);
    let survived = counters.expired_in_state[TCP_BASE + TcpState::SynRecv as usize].get();
    let dropped = counters.drops_of(DropReason::DropEntryConn);
    rep.syn_recv_survival = if survived + dropped > 0 {
        survived as f64 / (survived + dropped) as f64
    } else {
        0.0
    };
    rep.syn_recv_survival_expected = (31.0f64 / 32.0).powi(syn_recv_s as i32);
    rep.legit_clients_kept_dest = legit
        .kept
        .iter()
        .zip(&legit.first_dest)
        .filter(|(k, f)| **k && f.is_some())
        .count() as u32;
    rep.drops = DropReason::ALL
        .iter()
        .map(|r| (r.name(), counters.drops_of(*r)))
        .collect();
    Ok(rep)
}

/// The legit clients: their next steps, and the dest each one's first conn went to (and
/// whether every later one went there too).
struct Legit {
    events: BinaryHeap<Reverse<(u64, Ev)>>,
    first_dest: Vec<Option<V4>>,
    kept: Vec<bool>,
}

impl Legit {
    /// One step of a legit client's short connection: SYN, ACK, three data packets, then a
    /// FIN exchange (even clients) or a RST (odd clients); a new one 60 s after the last open.
    fn step(
        &mut self,
        shard: &mut Shard<V4>,
        rep: &mut SynfloodReport,
        rng: &mut Rng,
        ev: Ev,
        t: u64,
    ) {
        let Legit {
            events,
            first_dest,
            kept,
        } = self;
        let vip = V4(VIP);
        let (c, sport, step) = match ev {
            Ev::Open(c, sport) => {
                events.push(Reverse((
                    t + 60_000,
                    Ev::Open(c, 1024 + rng.below(60_000) as u16),
                )));
                (c, sport, 0u8)
            }
            Ev::Step(c, sport, s) => (c, sport, s),
        };
        let fin_close = c % 2 == 0;
        let flags = match step {
            0 => tcp::SYN,
            1..=4 => tcp::ACK,
            5 if fin_close => tcp::FIN | tcp::ACK,
            5 => tcp::RST,
            _ => tcp::ACK,
        };
        let v = shard.process(&Packet::tcp(legit_addr(c), sport, vip, VPORT, flags), t);
        match v {
            Verdict::Xmit(x) => {
                if step == 0 {
                    rep.legit_conns_ok += 1;
                    let d = &mut first_dest[c as usize];
                    match d {
                        None => *d = Some(x.daddr),
                        Some(f) if *f != x.daddr => kept[c as usize] = false,
                        _ => {}
                    }
                }
                let last = if fin_close { 6 } else { 5 };
                if step < last {
                    events.push(Reverse((t + 2, Ev::Step(c, sport, step + 1))));
                }
            }
            _ => {
                if step == 0 {
                    rep.legit_conns_failed += 1;
                }
            }
        }
    }
}

impl SynfloodReport {
    /// The report as one JSON object (hand-written: the engine crate has no dependencies).
    pub fn to_json(&self, p: &SynfloodParams) -> String {
        let drops: Vec<String> = self
            .drops
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!(
            concat!(
                "{{\"seconds\":{},\"rate\":{},\"capacity\":{},\"persistence\":{},\"netmask\":{},",
                "\"drop_entry\":{},\"low_watermark\":{},\"dests\":{},\"sched\":\"{}\",\"seed\":{},",
                "\"flood_syns\":{},\"syn_recv_survival\":{:.4},\"syn_recv_survival_expected\":{:.4},",
                "\"templates_end\":{},\"templates_max\":{},\"assured_templates_end\":{},",
                "\"conns_end\":{},\"conns_max\":{},\"legit_clients\":{},\"legit_clients_kept_dest\":{},",
                "\"legit_conns_ok\":{},\"legit_conns_failed\":{},\"drops\":{{{}}}}}"
            ),
            p.seconds,
            p.rate,
            self.capacity,
            p.persistence,
            p.netmask,
            p.drop_entry,
            p.low_watermark,
            p.dests,
            p.sched.name(),
            p.seed,
            self.flood_syns,
            self.syn_recv_survival,
            self.syn_recv_survival_expected,
            self.templates_end,
            self.templates_max,
            self.assured_templates_end,
            self.conns_end,
            self.conns_max,
            self.legit_clients,
            self.legit_clients_kept_dest,
            self.legit_conns_ok,
            self.legit_conns_failed,
            drops.join(",")
        )
    }
}

//! Reference-model property test of the shard's conn semantics.
//!
//! `Model` below is a deliberately plain reading of `ipvs-semantics.md` sections 1-7 (a `Vec`
//! of conns, linear searches, nothing clever) and of the kernel functions the spec points at
//! (`ip_vs_in`, `ip_vs_sched_persist`, `set_tcp_state`, `ip_vs_conn_expire`,
//! `update_defense_level`, `ip_vs_random_dropentry`, `todrop_entry`). A proptest drives the
//! engine and the model with the same random events and compares, after every packet and
//! every timer stop: the verdict, every live conn and template (key, dest, state, flags,
//! timeout, deadline, `in_pkts`, `n_control`, controller), the per-dest counters and the
//! shard counters.
//!
//! Where the spec leaves a choice the model takes the engine's and checks that it was
//! allowed: the scheduler's dest (any dest with weight > 0, unless a valid template names
//! one), which try-drop candidates of a class the scan picks (only the count is fixed, by the
//! per-class countdown), and the order of timers that fire in the same batch (a template due
//! together with all of its controlled conns is either re-armed 60 s or freed).
//!
//! The model does not call engine internals: the engine is driven by `Shard::process_hinted`
//! (with no hint, the worker's staged hints, or wrong ones: `Harness::process`),
//! `Shard::tick` and `Shard::flush` and observed through `Shard::conns`, `Shard::table`
//! (to resolve a `control` slot), `Shard::dest_counts` and `Shard::counters`.

use std::cell::RefCell;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{TestCaseError, TestRunner};

use rvs_dataplane::addr::V4;
use rvs_dataplane::config::{
    Config, DestConfig, Fwd, Persistence, ServiceConfig, ServiceKey, Sysctl,
};
use rvs_dataplane::conn::{flags, ConnInfo, ConnKey, NIL, NO_HINT};
use rvs_dataplane::counters::{DropReason, N_STATE_GAUGES, TCP_BASE, UDP_BASE};
use rvs_dataplane::proto::tcp::{self, TcpState};
use rvs_dataplane::proto::{Dir, Proto};
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::shard::{DestCounts, Packet, Shard, ShardParams, Verdict};

const S: u64 = 1000;
const VIP: u32 = 0xC0A8_6401; // 192.168.100.1
const TCP_PORT: u16 = 80;
const UDP_PORT: u16 = 53;
const TCP: u8 = 6;
const UDP: u8 = 17;
/// Six clients: three share 10.9.1.0/24, two 10.9.2.0/24, one alone.
const CLIENTS: [u32; 6] = [
    0x0A09_0101,
    0x0A09_0102,
    0x0A09_0103,
    0x0A09_0201,
    0x0A09_0202,
    0x0A09_0301,
];
const DEST_ADDRS: [u32; 3] = [0x0A00_0001, 0x0A00_0002, 0x0A00_0003];

// ----- the spec's numbers (section 3, 4, 6, 7), written out here rather than imported -----

/// Default TCP timeouts (spec section 3), ms.
fn tcp_timeout_ms(s: TcpState) -> u64 {
    let secs = match s {
        TcpState::None => 2,
        TcpState::Established => 900,
        TcpState::SynSent => 120,
        TcpState::SynRecv => 60,
        TcpState::FinWait => 120,
        TcpState::TimeWait => 120,
        TcpState::Close => 10,
        TcpState::CloseWait => 60,
        TcpState::LastAck => 30,
        TcpState::Listen => 120,
        TcpState::SynAck => 120,
    };
    secs * S
}
/// UDP NORMAL (spec section 4).
const UDP_TIMEOUT_MS: u64 = 300 * S;
/// `expire_later` of ip_vs_conn_expire: a conn still controlling others waits 60 s more,
/// and its timeout becomes 60 s.
const EXPIRE_LATER_MS: u64 = 60 * S;
/// todrop_entry: re-armed less than 60 s ago -> not a candidate.
const TODROP_GRACE_MS: u64 = 60 * S;
/// `am_droprate` default.
const AM_DROPRATE: u32 = 10;
/// ip_vs_conn_new's `cp->timeout = 3*HZ`: what a conn entry has before its first put.
const NEW_ENTRY_TIMEOUT_MS: u64 = 3 * S;

/// tcp_state_active (spec section 3).
fn tcp_active(s: TcpState) -> bool {
    matches!(
        s,
        TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
    )
}

fn tcp_state(s: u8) -> TcpState {
    TcpState::from_u8(s).expect("a TCP state code")
}

// ----- setup -----

#[derive(Clone, Debug)]
struct DestSetup {
    weight: i32,
    fwd: Fwd,
    port: u16,
}

#[derive(Clone, Debug)]
struct SvcSetup {
    proto: u8,
    vport: u16,
    dests: Vec<DestSetup>,
    /// (timeout s, netmask prefix)
    persist: Option<(u32, u8)>,
}

#[derive(Clone, Debug)]
struct Setup {
    /// `svcs[0]` is TCP VIP:80; `svcs[1]`, if present, UDP VIP:53.
    svcs: Vec<SvcSetup>,
    capacity: u32,
    low_watermark: u32,
    drop_entry: u8,
    drop_packet: u8,
    secure_tcp: u8,
    conn_reuse_mode: u8,
    /// Tick at every conn deadline and second boundary (else at second boundaries only).
    fine_ticks: bool,
    seed: u64,
}

fn svc_key(s: &SvcSetup) -> ServiceKey<V4> {
    ServiceKey::Addr {
        proto: if s.proto == TCP {
            Proto::Tcp
        } else {
            Proto::Udp
        },
        vaddr: V4(VIP),
        vport: s.vport,
    }
}

fn build_shard(setup: &Setup) -> Shard<V4> {
    let svcs = setup
        .svcs
        .iter()
        .map(|s| {
            let mut c = ServiceConfig::new(svc_key(s), SchedKind::Wlc);
            c.persistence = s.persist.map(|(secs, prefix)| Persistence {
                timeout_ms: secs * 1000,
                prefix,
            });
            c.dests = s
                .dests
                .iter()
                .enumerate()
                .map(|(i, d)| DestConfig {
                    addr: V4(DEST_ADDRS[i]),
                    port: d.port,
                    weight: d.weight,
                    fwd: d.fwd,
                    u_threshold: 0,
                    l_threshold: 0,
                    ..Default::default()
                })
                .collect();
            c.rebuild_tables();
            c
        })
        .collect();
    let sysctl = Sysctl {
        drop_entry: setup.drop_entry,
        drop_packet: setup.drop_packet,
        secure_tcp: setup.secure_tcp,
        am_droprate: AM_DROPRATE,
        low_watermark: setup.low_watermark,
        conn_reuse_mode: setup.conn_reuse_mode,
        ..Sysctl::default()
    };
    let cfg = Arc::new(Config::new(svcs, sysctl).expect("valid config"));
    Shard::new(
        ShardParams {
            capacity: setup.capacity,
            max_dests: 16,
            seed: setup.seed,
            scan_shift: 0,
            worker: 0,
        },
        cfg,
        0,
    )
}

// ----- what both sides are compared on -----

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    tpl: bool,
    proto: u8,
    caddr: u32,
    cport: u16,
    vaddr: u32,
    vport: u16,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} {}:{}->{}:{}",
            if self.tpl { "TPL " } else { "" },
            match self.proto {
                TCP => "TCP",
                UDP => "UDP",
                _ => "?",
            },
            Ipv4Addr::from(self.caddr),
            self.cport,
            Ipv4Addr::from(self.vaddr),
            self.vport
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    key: Key,
    daddr: Ipv4Addr,
    dport: u16,
    fwd: Fwd,
    nooutput: bool,
    inactive: bool,
    assured: bool,
    state: &'static str,
    timeout: u64,
    expires: u64,
    in_pkts: u32,
    n_control: u32,
    controller: Option<Key>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Snap {
    conns: Vec<Rec>,
    /// (service, dest index, counts)
    dests: Vec<(usize, usize, DestCounts)>,
    counters: Vec<(String, u64)>,
}

fn state_name(proto: u8, tpl: bool, state: u8) -> &'static str {
    if tpl {
        "TPL"
    } else if proto == TCP {
        TcpState::from_u8(state).map_or("BAD", |s| s.name())
    } else if state == 0 {
        "UDP"
    } else {
        "BAD"
    }
}

fn gauge(proto: u8, state: u8) -> usize {
    if proto == TCP {
        TCP_BASE + state as usize
    } else {
        UDP_BASE
    }
}

fn engine_key(c: &ConnInfo<V4>) -> Key {
    Key {
        tpl: c.is_template(),
        proto: c.proto,
        caddr: c.caddr.0,
        cport: c.cport,
        vaddr: c.vaddr.0,
        vport: c.vport,
    }
}

fn engine_snap(shard: &Shard<V4>, setup: &Setup) -> Snap {
    let mut conns: Vec<Rec> = shard
        .conns()
        .map(|c| Rec {
            key: engine_key(&c),
            daddr: Ipv4Addr::from(c.daddr.0),
            dport: c.dport,
            fwd: Fwd::from_bits(c.flags),
            nooutput: c.has(flags::NOOUTPUT),
            inactive: c.has(flags::INACTIVE),
            assured: c.is_assured(),
            state: state_name(c.proto, c.is_template(), c.state),
            timeout: u64::from(c.timeout),
            expires: c.expires,
            in_pkts: c.in_pkts,
            n_control: c.n_control,
            controller: (c.control != NIL).then(|| {
                if let Some(ct) = shard.conn_at(c.control) {
                    engine_key(&ct)
                } else {
                    // A dangling control link: shown as an impossible key.
                    Key {
                        tpl: false,
                        proto: 0,
                        caddr: 0,
                        cport: 0,
                        vaddr: 0,
                        vport: 0,
                    }
                }
            }),
        })
        .collect();
    conns.sort_by(|a, b| a.key.cmp(&b.key));
    let mut dests = Vec::new();
    for (si, s) in setup.svcs.iter().enumerate() {
        for (di, d) in s.dests.iter().enumerate() {
            let dc = shard
                .dest_counts(svc_key(s), V4(DEST_ADDRS[di]), d.port)
                .unwrap_or(DestCounts {
                    active: u32::MAX,
                    inactive: u32::MAX,
                    persist: u32::MAX,
                });
            dests.push((si, di, dc));
        }
    }
    let k = shard.counters();
    let mut counters: Vec<(String, u64)> = vec![
        ("conns".into(), k.conns.get()),
        ("templates".into(), k.templates.get()),
        ("assured_templates".into(), k.assured_templates.get()),
        ("conns_created".into(), k.conns_created.get()),
        ("templates_created".into(), k.templates_created.get()),
        ("expired".into(), k.expired.get()),
        ("expired_dropped".into(), k.expired_dropped.get()),
        ("flushed".into(), k.flushed.get()),
        ("packets_in".into(), k.packets_in.get()),
        ("packets_out".into(), k.packets_out.get()),
        ("scans".into(), k.scans.get()),
        ("scan_visited".into(), k.scan_visited.get()),
        ("defense_drop_entry".into(), k.defense_drop_entry.get()),
        (
            "defense_drop_packet_rate".into(),
            k.defense_drop_packet_rate.get(),
        ),
        ("defense_secure_tcp".into(), k.defense_secure_tcp.get()),
        ("defense_nomem".into(), k.defense_nomem.get()),
    ];
    for &r in DropReason::ALL {
        counters.push((format!("drops.{}", r.name()), k.drops_of(r)));
    }
    for i in 0..N_STATE_GAUGES {
        counters.push((format!("conns_by_state[{i}]"), k.conns_by_state[i].get()));
        counters.push((
            format!("expired_in_state[{i}]"),
            k.expired_in_state[i].get(),
        ));
    }
    Snap {
        conns,
        dests,
        counters,
    }
}

fn diff(model: &Snap, engine: &Snap) -> String {
    let mut out = String::new();
    for m in &model.conns {
        match engine.conns.iter().find(|e| e.key == m.key) {
            None => out += &format!("  only in model:  {m:?}\n"),
            Some(e) if e != m => out += &format!("  model:  {m:?}\n  engine: {e:?}\n"),
            Some(_) => {}
        }
    }
    for e in &engine.conns {
        if !model.conns.iter().any(|m| m.key == e.key) {
            out += &format!("  only in engine: {e:?}\n");
        }
    }
    for (m, e) in model.dests.iter().zip(&engine.dests) {
        if m != e {
            out += &format!("  dest counts: model {m:?} engine {e:?}\n");
        }
    }
    for (m, e) in model.counters.iter().zip(&engine.counters) {
        if m != e {
            out += &format!("  counter {}: model {} engine {}\n", m.0, m.1, e.1);
        }
    }
    out
}

// ----- the model -----

#[derive(Clone, Debug)]
struct MConn {
    id: u64,
    key: Key,
    svc: usize,
    dest: usize,
    daddr: u32,
    dport: u16,
    fwd: Fwd,
    nooutput: bool,
    assured: bool,
    /// TcpState code; 0 for UDP and templates.
    state: u8,
    /// 0 = dropped by the defense (the seed patch's marker).
    timeout: u64,
    expires: u64,
    in_pkts: u32,
    n_control: u32,
    control: Option<u64>,
}

#[derive(Clone, Debug)]
struct MCounters {
    conns_created: u64,
    templates_created: u64,
    expired: u64,
    expired_dropped: u64,
    flushed: u64,
    packets_in: u64,
    packets_out: u64,
    scans: u64,
    scan_visited: u64,
    /// drop_entry mode, drop_packet rate, secure_tcp mode, nomem after the last update.
    gauges: [u64; 4],
    drops: [u64; DropReason::COUNT],
    expired_in_state: [u64; N_STATE_GAUGES],
}

/// What the random cases reached (summed over a run and printed; see `coverage_report`).
#[derive(Clone, Debug, Default)]
struct Cov {
    cases: u64,
    events: u64,
    stops: u64,
    max_live: u64,
    xmit_new: u64,
    xmit_existing: u64,
    xmit_reply: u64,
    not_ours: u64,
    drops: [u64; DropReason::COUNT],
    conn_reuse: u64,
    expire_later: u64,
    try_drops: u64,
    ambiguous_rearmed: u64,
    ambiguous_freed: u64,
    tablefull_with_template: u64,
    secure_transitions: u64,
    input_only_transitions: u64,
    assured: u64,
    expired: u64,
    expired_dropped: u64,
    flushed: u64,
}

impl Cov {
    fn add(&mut self, o: &Cov) {
        self.cases += o.cases;
        self.events += o.events;
        self.stops += o.stops;
        self.max_live = self.max_live.max(o.max_live);
        self.xmit_new += o.xmit_new;
        self.xmit_existing += o.xmit_existing;
        self.xmit_reply += o.xmit_reply;
        self.not_ours += o.not_ours;
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
        self.conn_reuse += o.conn_reuse;
        self.expire_later += o.expire_later;
        self.try_drops += o.try_drops;
        self.ambiguous_rearmed += o.ambiguous_rearmed;
        self.ambiguous_freed += o.ambiguous_freed;
        self.tablefull_with_template += o.tablefull_with_template;
        self.secure_transitions += o.secure_transitions;
        self.input_only_transitions += o.input_only_transitions;
        self.assured += o.assured;
        self.expired += o.expired;
        self.expired_dropped += o.expired_dropped;
        self.flushed += o.flushed;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MVerdict {
    Xmit {
        reply: bool,
        fwd: Fwd,
        caddr: u32,
        cport: u16,
        vaddr: u32,
        vport: u16,
        daddr: u32,
        dport: u16,
    },
    Drop(DropReason),
    NotOurs,
}

#[derive(Clone, Copy, Debug)]
struct MPkt {
    proto: u8,
    saddr: u32,
    sport: u16,
    daddr: u32,
    dport: u16,
    flags: u8,
}

#[derive(Clone, Debug)]
struct Model {
    setup: Setup,
    conns: Vec<MConn>,
    next_id: u64,
    next_boundary: u64,
    // defense (update_defense_level): current modes, and whether each is on
    drop_entry: u8,
    drop_entry_on: bool,
    drop_packet: u8,
    drop_rate: u32,
    drop_counter: i64,
    secure_tcp: u8,
    secure_on: bool,
    todrop_counter: [i32; 9],
    c: MCounters,
    cov: Cov,
}

fn mask(addr: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - u32::from(prefix.min(32))))
    }
}

impl Model {
    fn new(setup: &Setup) -> Model {
        Model {
            setup: setup.clone(),
            conns: Vec::new(),
            next_id: 1,
            next_boundary: S,
            drop_entry: setup.drop_entry,
            drop_entry_on: false,
            drop_packet: setup.drop_packet,
            drop_rate: 0,
            drop_counter: 0,
            secure_tcp: setup.secure_tcp,
            secure_on: false,
            todrop_counter: [0; 9],
            c: MCounters {
                conns_created: 0,
                templates_created: 0,
                expired: 0,
                expired_dropped: 0,
                flushed: 0,
                packets_in: 0,
                packets_out: 0,
                scans: 0,
                scan_visited: 0,
                gauges: [0; 4],
                drops: [0; DropReason::COUNT],
                expired_in_state: [0; N_STATE_GAUGES],
            },
            cov: Cov::default(),
        }
    }

    fn pos(&self, id: u64) -> usize {
        self.conns
            .iter()
            .position(|c| c.id == id)
            .expect("live model conn")
    }
    fn get(&self, id: u64) -> &MConn {
        &self.conns[self.pos(id)]
    }
    fn get_mut(&mut self, id: u64) -> &mut MConn {
        let i = self.pos(id);
        &mut self.conns[i]
    }
    fn add(&mut self, mut c: MConn) -> u64 {
        c.id = self.next_id;
        self.next_id += 1;
        self.conns.push(c);
        self.next_id - 1
    }
    fn remove(&mut self, id: u64) -> MConn {
        let i = self.pos(id);
        self.conns.remove(i)
    }
    fn table_full(&self) -> bool {
        self.conns.len() as u32 >= self.setup.capacity
    }
    fn drop(&mut self, r: DropReason) -> MVerdict {
        self.c.drops[r as usize] += 1;
        MVerdict::Drop(r)
    }

    /// ip_vs_todrop (drop_packet).
    fn todrop(&mut self) -> bool {
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

    /// Freed by its own timeout (or by conn reuse): detach from the controller, no chain.
    fn expire_timeout(&mut self, id: u64) {
        let c = self.remove(id);
        assert_eq!(c.n_control, 0, "model: freeing a controller");
        self.c.expired += 1;
        if !c.key.tpl {
            self.c.expired_in_state[gauge(c.key.proto, c.state)] += 1;
        }
        if let Some(ct) = c.control {
            self.get_mut(ct).n_control -= 1;
        }
    }

    /// Freed after being dropped (timeout 0): the seed patch's rule on the controller.
    fn expire_dropped(&mut self, id: u64) {
        let c = self.remove(id);
        assert_eq!(c.n_control, 0, "model: dropping a controller");
        assert_eq!(c.timeout, 0);
        self.c.expired_dropped += 1;
        if let Some(ct) = c.control {
            let t = self.get_mut(ct);
            t.n_control -= 1;
            if t.n_control == 0 && !(t.key.tpl && t.assured) && t.timeout != 0 {
                let r = if t.key.tpl {
                    DropReason::ChainTemplate
                } else {
                    DropReason::ChainConn
                };
                t.timeout = 0;
                self.c.drops[r as usize] += 1;
                self.expire_dropped(ct);
            }
        }
    }

    /// A packet of a known conn: in_pkts, NOOUTPUT, state, timer, ASSURED.
    fn conn_packet(&mut self, id: u64, dir: Dir, tcp_flags: u8, now: u64) -> MVerdict {
        let secure = self.secure_on;
        let c = self.get_mut(id);
        if dir == Dir::Input {
            // The engine keeps in_pkts in 7 bits, saturating: only todrop_entry reads it, and
            // it tells 1..8 from more.
            c.in_pkts = (c.in_pkts + 1).min(127);
        } else {
            c.nooutput = false;
        }
        let table_dir = match dir {
            Dir::Output => Dir::Output,
            _ if c.nooutput => Dir::InputOnly,
            _ => Dir::Input,
        };
        let mut cov = (0, 0);
        let assure = if c.key.proto == TCP {
            let cur = tcp_state(c.state);
            cov = (u64::from(secure), u64::from(table_dir == Dir::InputOnly));
            let new = tcp::next_state(secure, table_dir, tcp_flags, cur);
            c.state = new as u8;
            c.timeout = tcp_timeout_ms(new);
            new != cur && new == TcpState::Established
        } else {
            c.timeout = UDP_TIMEOUT_MS;
            dir == Dir::Output
        };
        c.expires = now + c.timeout;
        let v = MVerdict::Xmit {
            reply: dir == Dir::Output,
            fwd: c.fwd,
            caddr: c.key.caddr,
            cport: c.key.cport,
            vaddr: c.key.vaddr,
            vport: c.key.vport,
            daddr: c.daddr,
            dport: c.dport,
        };
        if let Some(ct) = c.control {
            if assure {
                let t = self.get_mut(ct);
                if t.key.tpl && !t.assured {
                    t.assured = true;
                    self.cov.assured += 1;
                }
            }
        }
        self.cov.secure_transitions += cov.0;
        self.cov.input_only_transitions += cov.1;
        v
    }

    /// The dest the engine's scheduler chose for a new conn (or template) of service `si`:
    /// from its verdict, else from the template it created. Must have weight > 0.
    fn engine_pick(
        &self,
        si: usize,
        p: &MPkt,
        ev: &Verdict<V4>,
        tkey: Option<&Key>,
        eng: &Snap,
    ) -> Result<usize, String> {
        let svc = &self.setup.svcs[si];
        let (daddr, dport) = match (ev, tkey) {
            (Verdict::Xmit(x), _) if !x.reply && x.caddr.0 == p.saddr && x.cport == p.sport => {
                (x.daddr.0, x.dport)
            }
            (_, Some(k)) => match eng.conns.iter().find(|r| r.key == *k) {
                Some(r) => (u32::from(r.daddr), r.dport),
                None => {
                    return Err(format!(
                        "the model schedules here but the engine gave {ev:?} and made no \
                         template {k:?}"
                    ))
                }
            },
            _ => {
                return Err(format!(
                    "the model schedules a new conn here but the engine gave {ev:?}"
                ))
            }
        };
        let di = svc
            .dests
            .iter()
            .enumerate()
            .position(|(i, d)| DEST_ADDRS[i] == daddr && d.port == dport)
            .ok_or_else(|| {
                format!(
                    "engine scheduled to {}:{dport}, not a dest",
                    Ipv4Addr::from(daddr)
                )
            })?;
        if svc.dests[di].weight <= 0 {
            return Err(format!(
                "engine scheduled to dest {} of weight {}",
                di, svc.dests[di].weight
            ));
        }
        Ok(di)
    }

    fn new_entry(&mut self, key: Key, si: usize, di: usize, control: Option<u64>, now: u64) -> u64 {
        let d = &self.setup.svcs[si].dests[di];
        let tpl = key.tpl;
        let c = MConn {
            id: 0,
            key,
            svc: si,
            dest: di,
            daddr: DEST_ADDRS[di],
            dport: d.port,
            fwd: d.fwd,
            nooutput: d.fwd != Fwd::Masq,
            assured: false,
            state: 0,
            timeout: NEW_ENTRY_TIMEOUT_MS,
            expires: now + NEW_ENTRY_TIMEOUT_MS,
            in_pkts: 0,
            n_control: 0,
            control,
        };
        if tpl {
            self.c.templates_created += 1;
        } else {
            self.c.conns_created += 1;
        }
        self.add(c)
    }

    /// ip_vs_in / ip_vs_out for one packet. `ev` and `eng` (the engine's verdict and state
    /// after the same packet) are read only where the spec leaves the choice to the engine.
    fn packet(
        &mut self,
        p: &MPkt,
        now: u64,
        ev: &Verdict<V4>,
        eng: &Snap,
    ) -> Result<MVerdict, String> {
        let mut resched = false;
        let inbound = self.conns.iter().find(|c| {
            !c.key.tpl
                && c.key.proto == p.proto
                && c.key.caddr == p.saddr
                && c.key.cport == p.sport
                && c.key.vaddr == p.daddr
                && c.key.vport == p.dport
        });
        if let Some(c) = inbound {
            let id = c.id;
            // conn_reuse_mode: is_new_conn (SYN) && is_new_conn_expected.
            let m = self.setup.conn_reuse_mode;
            let reuse = p.proto == TCP
                && p.flags & tcp::SYN != 0
                && m != 0
                && c.control.is_none()
                && c.n_control == 0
                && {
                    let s = tcp_state(c.state);
                    s == TcpState::TimeWait
                        || s == TcpState::Close
                        || (m & 2 != 0 && s == TcpState::FinWait && c.nooutput)
                };
            if reuse {
                self.cov.conn_reuse += 1;
                self.expire_timeout(id);
                resched = true;
            } else {
                self.c.packets_in += 1;
                return Ok(self.conn_packet(id, Dir::Input, p.flags, now));
            }
        }
        if !resched {
            let outbound = self.conns.iter().find(|c| {
                !c.key.tpl
                    && c.key.proto == p.proto
                    && c.daddr == p.saddr
                    && c.dport == p.sport
                    && c.key.caddr == p.daddr
                    && c.key.cport == p.dport
            });
            if let Some(c) = outbound {
                let id = c.id;
                self.c.packets_out += 1;
                return Ok(self.conn_packet(id, Dir::Output, p.flags, now));
            }
        }
        let Some(si) = self
            .setup
            .svcs
            .iter()
            .position(|s| s.proto == p.proto && p.daddr == VIP && s.vport == p.dport)
        else {
            return Ok(MVerdict::NotOurs);
        };
        let may_start = p.proto != TCP || (p.flags & tcp::SYN != 0 && p.flags & tcp::RST == 0);
        if !may_start {
            return Ok(self.drop(DropReason::NoConnNotStart));
        }
        if self.todrop() {
            return Ok(self.drop(DropReason::DropPacket));
        }
        let ckey = Key {
            tpl: false,
            proto: p.proto,
            caddr: p.saddr,
            cport: p.sport,
            vaddr: p.daddr,
            vport: p.dport,
        };
        let (di, control) = match self.setup.svcs[si].persist {
            None => {
                if self.table_full() {
                    return Ok(self.drop(DropReason::TableFull));
                }
                (self.engine_pick(si, p, ev, None, eng)?, None)
            }
            Some((secs, prefix)) => {
                let tkey = Key {
                    tpl: true,
                    proto: p.proto,
                    caddr: mask(p.saddr, prefix),
                    cport: 0,
                    vaddr: p.daddr,
                    vport: self.setup.svcs[si].vport,
                };
                // Dests never change here and expire_quiescent_template is 0: a found
                // template is always valid.
                let found = self.conns.iter().find(|c| c.key == tkey).map(|c| c.id);
                let tid = match found {
                    Some(t) => t,
                    None => {
                        if self.table_full() {
                            return Ok(self.drop(DropReason::TableFull));
                        }
                        let di = self.engine_pick(si, p, ev, Some(&tkey), eng)?;
                        let t = self.new_entry(tkey.clone(), si, di, None, now);
                        self.get_mut(t).timeout = u64::from(secs) * S;
                        t
                    }
                };
                if self.table_full() {
                    self.cov.tablefull_with_template += 1;
                    self.table_full_template(tid, now);
                    return Ok(self.drop(DropReason::TableFull));
                }
                (self.get(tid).dest, Some(tid))
            }
        };
        let id = self.new_entry(ckey, si, di, control, now);
        if let Some(t) = control {
            // ip_vs_control_add + ip_vs_conn_put(ct).
            let t = self.get_mut(t);
            t.n_control += 1;
            t.expires = now + t.timeout;
        }
        self.c.packets_in += 1;
        Ok(self.conn_packet(id, Dir::Input, p.flags, now))
    }

    /// ip_vs_sched_persist's `ip_vs_conn_put(ct)`: the template (new or found) is re-armed to
    /// now + its timeout even when the new conn did not fit.
    fn table_full_template(&mut self, tid: u64, now: u64) {
        let t = self.get_mut(tid);
        t.expires = now + t.timeout;
    }

    /// Where the driver stops the clock next: the target, the next second boundary (defense)
    /// and, with fine ticks, the next conn deadline.
    fn next_stop(&self, now: u64, target: u64, fine: bool) -> u64 {
        let mut s = target.min(self.next_boundary);
        if fine {
            for c in &self.conns {
                if c.expires > now {
                    s = s.min(c.expires);
                }
            }
        }
        s
    }

    /// Templates due at `t` all of whose controlled conns are due too: the timer order
    /// decides whether such a template is re-armed (it fires first) or freed.
    fn ambiguous_templates(&self, t: u64) -> Vec<u64> {
        self.conns
            .iter()
            .filter(|c| {
                c.key.tpl
                    && c.expires <= t
                    && c.n_control > 0
                    && self
                        .conns
                        .iter()
                        .filter(|d| d.control == Some(c.id) && d.expires <= t)
                        .count() as u32
                        == c.n_control
            })
            .map(|c| c.id)
            .collect()
    }

    /// ip_vs_conn_expire for every conn due at `t` (fired at `t`). Ambiguous template `k`
    /// is re-armed if bit k of `rearm` is set, else freed after its conns.
    fn fire_timers(&mut self, t: u64, ambiguous: &[u64], rearm: u32) {
        let due: Vec<u64> = self
            .conns
            .iter()
            .filter(|c| c.expires <= t)
            .map(|c| c.id)
            .collect();
        let mut template_fates = Vec::new();
        let mut plain = Vec::new();
        for id in due {
            let c = self.get(id);
            assert_ne!(c.timeout, 0, "model: a dropped conn outlived its scan");
            if c.key.tpl {
                let keep = match ambiguous.iter().position(|&a| a == id) {
                    Some(k) => rearm >> k & 1 == 1,
                    None => c.n_control > 0,
                };
                template_fates.push((id, keep));
            } else {
                assert_eq!(c.n_control, 0, "model: only templates control here");
                plain.push(id);
            }
        }
        for id in plain {
            self.expire_timeout(id);
        }
        for (id, keep) in template_fates {
            if keep {
                self.cov.expire_later += 1;
                let c = self.get_mut(id);
                c.timeout = EXPIRE_LATER_MS;
                c.expires = t + EXPIRE_LATER_MS;
            } else {
                self.expire_timeout(id);
            }
        }
    }

    /// update_defense_level + ip_vs_random_dropentry over the whole table (scan_shift 0).
    fn defense(&mut self, t: u64, eng: &Snap) -> Result<(), String> {
        let live = self.conns.len() as u32;
        let free = self.setup.capacity - live;
        let low = self.setup.low_watermark;
        let nomem = free < low;
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
                    let rate = (low / (low - free)).max(1);
                    self.drop_rate = rate;
                    self.drop_counter = i64::from(rate);
                    self.drop_packet = 2;
                } else {
                    self.drop_rate = 0;
                    self.drop_packet = 1;
                }
            }
            _ => self.drop_rate = AM_DROPRATE,
        }
        self.secure_on = match self.secure_tcp {
            0 => false,
            1 | 2 => {
                self.secure_tcp = if nomem { 2 } else { 1 };
                nomem
            }
            _ => true,
        };
        self.c.gauges = [
            u64::from(self.drop_entry),
            u64::from(self.drop_rate),
            u64::from(self.secure_tcp),
            u64::from(nomem),
        ];
        if self.drop_entry_on {
            self.c.scans += 1;
            self.c.scan_visited += u64::from(live);
            self.scan(t, eng)?;
        }
        Ok(())
    }

    fn scan(&mut self, t: u64, eng: &Snap) -> Result<(), String> {
        let mut drops: Vec<(u64, DropReason)> = Vec::new();
        let mut classes: [Vec<u64>; 9] = Default::default();
        for c in &self.conns {
            if c.n_control > 0 || c.timeout == 0 {
                continue;
            }
            if c.key.tpl {
                if !c.assured {
                    drops.push((c.id, DropReason::DropEntryTemplate));
                }
                continue;
            }
            let try_drop = if c.key.proto == TCP {
                match tcp_state(c.state) {
                    TcpState::SynRecv | TcpState::SynAck => {
                        drops.push((c.id, DropReason::DropEntryConn));
                        continue;
                    }
                    TcpState::Established => true,
                    _ => false,
                }
            } else {
                true
            };
            if try_drop
                && c.timeout + t >= c.expires + TODROP_GRACE_MS
                && (1..=8).contains(&c.in_pkts)
            {
                classes[c.in_pkts as usize].push(c.id);
            }
        }
        for (i, class) in classes.iter().enumerate().skip(1) {
            let mut expect = 0;
            for _ in class {
                self.todrop_counter[i] -= 1;
                if self.todrop_counter[i] <= 0 {
                    self.todrop_counter[i] = i as i32;
                    expect += 1;
                }
            }
            let gone: Vec<u64> = class
                .iter()
                .copied()
                .filter(|&id| !eng.conns.iter().any(|r| r.key == self.get(id).key))
                .collect();
            if gone.len() != expect {
                return Err(format!(
                    "try-drop at t={t}: {} candidates with in_pkts={i}, the countdown drops \
                     {expect}, the engine dropped {}",
                    class.len(),
                    gone.len()
                ));
            }
            self.cov.try_drops += gone.len() as u64;
            drops.extend(gone.into_iter().map(|id| (id, DropReason::DropEntryConn)));
        }
        for &(id, r) in &drops {
            self.c.drops[r as usize] += 1;
            self.get_mut(id).timeout = 0;
        }
        for (id, _) in drops {
            self.expire_dropped(id);
        }
        Ok(())
    }

    /// Advance to `t`: fire what is due, then the defense on a second boundary. Returns the
    /// first possible world (over the timer orders) that matches the engine, or world 0.
    fn step(&self, t: u64, eng: &Snap) -> Result<Model, String> {
        let ambiguous = self.ambiguous_templates(t);
        assert!(ambiguous.len() <= 12, "more templates than clients");
        let mut first: Option<(Model, Result<(), String>)> = None;
        for rearm in 0..(1u32 << ambiguous.len()) {
            let mut w = self.clone();
            w.fire_timers(t, &ambiguous, rearm);
            let r = if t == w.next_boundary {
                w.next_boundary += S;
                w.defense(t, eng)
            } else {
                Ok(())
            };
            if r.is_ok() && w.snap() == *eng {
                let n = ambiguous.len() as u64;
                let re = u64::from(rearm.count_ones());
                w.cov.ambiguous_rearmed += re;
                w.cov.ambiguous_freed += n - re;
                return Ok(w);
            }
            if first.is_none() {
                first = Some((w, r));
            }
        }
        let (w, r) = first.expect("at least one world");
        r.map(|()| w)
    }

    fn flush(&mut self) {
        self.c.flushed += self.conns.len() as u64;
        self.conns.clear();
    }

    fn snap(&self) -> Snap {
        for c in &self.conns {
            let n = self
                .conns
                .iter()
                .filter(|d| d.control == Some(c.id))
                .count() as u32;
            assert_eq!(n, c.n_control, "model: n_control of {:?}", c.key);
        }
        let inactive =
            |c: &MConn| c.key.tpl || c.key.proto != TCP || !tcp_active(tcp_state(c.state));
        let mut conns: Vec<Rec> = self
            .conns
            .iter()
            .map(|c| Rec {
                key: c.key.clone(),
                daddr: Ipv4Addr::from(c.daddr),
                dport: c.dport,
                fwd: c.fwd,
                nooutput: c.nooutput,
                inactive: inactive(c),
                assured: c.assured,
                state: state_name(c.key.proto, c.key.tpl, c.state),
                timeout: c.timeout,
                expires: c.expires,
                in_pkts: c.in_pkts,
                n_control: c.n_control,
                controller: c.control.map(|id| self.get(id).key.clone()),
            })
            .collect();
        conns.sort_by(|a, b| a.key.cmp(&b.key));
        let mut dests = Vec::new();
        for (si, s) in self.setup.svcs.iter().enumerate() {
            for di in 0..s.dests.len() {
                let on = |c: &&MConn| c.svc == si && c.dest == di;
                let count = |f: &dyn Fn(&MConn) -> bool| {
                    self.conns.iter().filter(on).filter(|c| f(c)).count() as u32
                };
                dests.push((
                    si,
                    di,
                    DestCounts {
                        active: count(&|c| !inactive(c)),
                        inactive: count(&|c| !c.key.tpl && inactive(c)),
                        persist: count(&|c| c.key.tpl),
                    },
                ));
            }
        }
        let plain = self.conns.iter().filter(|c| !c.key.tpl).count() as u64;
        let tpls = self.conns.len() as u64 - plain;
        let assured = self.conns.iter().filter(|c| c.key.tpl && c.assured).count() as u64;
        let k = &self.c;
        let mut counters: Vec<(String, u64)> = vec![
            ("conns".into(), plain),
            ("templates".into(), tpls),
            ("assured_templates".into(), assured),
            ("conns_created".into(), k.conns_created),
            ("templates_created".into(), k.templates_created),
            ("expired".into(), k.expired),
            ("expired_dropped".into(), k.expired_dropped),
            ("flushed".into(), k.flushed),
            ("packets_in".into(), k.packets_in),
            ("packets_out".into(), k.packets_out),
            ("scans".into(), k.scans),
            ("scan_visited".into(), k.scan_visited),
            ("defense_drop_entry".into(), k.gauges[0]),
            ("defense_drop_packet_rate".into(), k.gauges[1]),
            ("defense_secure_tcp".into(), k.gauges[2]),
            ("defense_nomem".into(), k.gauges[3]),
        ];
        for &r in DropReason::ALL {
            counters.push((format!("drops.{}", r.name()), k.drops[r as usize]));
        }
        let mut by_state = [0u64; N_STATE_GAUGES];
        for c in self.conns.iter().filter(|c| !c.key.tpl) {
            by_state[gauge(c.key.proto, c.state)] += 1;
        }
        for (i, n) in by_state.iter().enumerate() {
            counters.push((format!("conns_by_state[{i}]"), *n));
            counters.push((format!("expired_in_state[{i}]"), k.expired_in_state[i]));
        }
        Snap {
            conns,
            dests,
            counters,
        }
    }
}

// ----- the driver -----

#[derive(Clone, Debug)]
enum Ev {
    /// A TCP SYN from client `.0`, port 1000 + `.1`, to VIP:80.
    Syn(usize, u16),
    /// A UDP datagram from client `.0`, port 1000 + `.1`, to VIP:53.
    Udp(usize, u16),
    /// A packet of a flow seen before (live or not): client -> VIP, or for NAT dest -> client.
    Pkt {
        flow: Index,
        out: bool,
        flags: u8,
    },
    Advance(u64),
    Flush,
}

/// A flow the engine has forwarded (its latest dest).
#[derive(Clone, Debug)]
struct Flow {
    proto: u8,
    caddr: u32,
    cport: u16,
    vport: u16,
    daddr: u32,
    dport: u16,
    fwd: Fwd,
}

struct Harness {
    setup: Setup,
    shard: Shard<V4>,
    model: Model,
    now: u64,
    flows: Vec<Flow>,
    /// Packets sent, which picks the hint kind (`Harness::process`).
    sends: u64,
}

impl Harness {
    fn new(setup: &Setup) -> Harness {
        Harness {
            setup: setup.clone(),
            shard: build_shard(setup),
            model: Model::new(setup),
            now: 0,
            flows: Vec::new(),
            sends: 0,
        }
    }

    fn check(&self, eng: &Snap, what: &str) -> Result<(), String> {
        let m = self.model.snap();
        if m == *eng {
            Ok(())
        } else {
            Err(format!(
                "after {what} at t={}: model and engine differ:\n{}",
                self.now,
                diff(&m, eng)
            ))
        }
    }

    /// The packet through `Shard::process_hinted`, with the hints taken in turn: none (as
    /// `Shard::process`), the ones the worker's staged lookup gives (inbound to the VIP,
    /// outbound otherwise), or another live conn's slot (a stale or wrong hint). The verdict
    /// and state must not depend on the hint.
    fn process(&mut self, pkt: &Packet<V4>) -> Verdict<V4> {
        self.sends += 1;
        let t = self.shard.table();
        let hint = match self.sends % 3 {
            0 => NO_HINT,
            1 => {
                let to_vip = pkt.daddr == V4(VIP);
                let key = ConnKey {
                    proto: pkt.proto,
                    caddr: if to_vip { pkt.saddr } else { pkt.daddr },
                    cport: if to_vip { pkt.sport } else { pkt.dport },
                    addr: if to_vip { pkt.daddr } else { pkt.saddr },
                    port: if to_vip { pkt.dport } else { pkt.sport },
                    template: false,
                };
                let h = t.prefetch_entry(t.hash_of(&key));
                return if to_vip {
                    self.shard.process_hinted(pkt, self.now, h, NO_HINT)
                } else {
                    self.shard.process_hinted(pkt, self.now, NO_HINT, h)
                };
            }
            _ => {
                let live: Vec<u32> = t.live_slots().collect();
                live.get(self.sends as usize % live.len().max(1))
                    .copied()
                    .unwrap_or(NO_HINT)
            }
        };
        self.shard.process_hinted(pkt, self.now, hint, hint)
    }

    fn send(&mut self, p: MPkt) -> Result<(), String> {
        let pkt = if p.proto == TCP {
            Packet::tcp(V4(p.saddr), p.sport, V4(p.daddr), p.dport, p.flags)
        } else {
            Packet::udp(V4(p.saddr), p.sport, V4(p.daddr), p.dport)
        };
        let created_before = self.model.c.conns_created;
        let v = self.process(&pkt);
        let eng = engine_snap(&self.shard, &self.setup);
        let what = format!("{p:?}");
        let mv = self
            .model
            .packet(&p, self.now, &v, &eng)
            .map_err(|e| format!("{what} at t={}: {e}", self.now))?;
        let ev = match v {
            Verdict::Xmit(x) => {
                let c = self
                    .shard
                    .conn(x.conn)
                    .ok_or_else(|| format!("{what}: Xmit names a conn that is not live: {x:?}"))?;
                if (c.caddr, c.cport, c.vaddr, c.vport) != (x.caddr, x.cport, x.vaddr, x.vport) {
                    return Err(format!("{what}: Xmit names another conn: {x:?} vs {c:?}"));
                }
                if !x.reply {
                    let f = Flow {
                        proto: p.proto,
                        caddr: x.caddr.0,
                        cport: x.cport,
                        vport: x.vport,
                        daddr: x.daddr.0,
                        dport: x.dport,
                        fwd: x.fwd,
                    };
                    match self.flows.iter_mut().find(|g| {
                        (g.proto, g.caddr, g.cport, g.vport) == (f.proto, f.caddr, f.cport, f.vport)
                    }) {
                        Some(g) => *g = f,
                        None => self.flows.push(f),
                    }
                }
                MVerdict::Xmit {
                    reply: x.reply,
                    fwd: x.fwd,
                    caddr: x.caddr.0,
                    cport: x.cport,
                    vaddr: x.vaddr.0,
                    vport: x.vport,
                    daddr: x.daddr.0,
                    dport: x.dport,
                }
            }
            Verdict::Drop(r) => MVerdict::Drop(r),
            Verdict::NotOurs => MVerdict::NotOurs,
        };
        let cov = &mut self.model.cov;
        match v {
            Verdict::Xmit(x) if x.reply => cov.xmit_reply += 1,
            Verdict::Xmit(_) if self.model.c.conns_created > created_before => cov.xmit_new += 1,
            Verdict::Xmit(_) => cov.xmit_existing += 1,
            Verdict::Drop(r) => cov.drops[r as usize] += 1,
            Verdict::NotOurs => cov.not_ours += 1,
        }
        cov.max_live = cov.max_live.max(self.model.conns.len() as u64);
        if ev != mv {
            return Err(format!(
                "{what} at t={}: verdict: model {mv:?}, engine {ev:?}",
                self.now
            ));
        }
        self.check(&eng, &what)
    }

    fn advance(&mut self, dt: u64) -> Result<(), String> {
        let target = self.now + dt;
        while self.now < target {
            let stop = self
                .model
                .next_stop(self.now, target, self.setup.fine_ticks);
            self.shard.tick(stop);
            let eng = engine_snap(&self.shard, &self.setup);
            self.model = self
                .model
                .step(stop, &eng)
                .map_err(|e| format!("tick at t={stop}: {e}"))?;
            self.now = stop;
            self.model.cov.stops += 1;
            self.check(&eng, "tick")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        let n = self.shard.flush(self.now);
        let want = self.model.conns.len() as u64;
        self.model.flush();
        if n != want {
            return Err(format!("flush removed {n}, model had {want}"));
        }
        let eng = engine_snap(&self.shard, &self.setup);
        self.check(&eng, "flush")
    }

    fn event(&mut self, e: &Ev) -> Result<(), String> {
        match *e {
            Ev::Syn(c, p) => self.send(MPkt {
                proto: TCP,
                saddr: CLIENTS[c],
                sport: 1000 + p,
                daddr: VIP,
                dport: TCP_PORT,
                flags: tcp::SYN,
            }),
            Ev::Udp(c, p) => self.send(MPkt {
                proto: UDP,
                saddr: CLIENTS[c],
                sport: 1000 + p,
                daddr: VIP,
                dport: UDP_PORT,
                flags: 0,
            }),
            Ev::Pkt { flow, out, flags } => {
                if self.flows.is_empty() {
                    return Ok(());
                }
                let f = self.flows[flow.index(self.flows.len())].clone();
                let p = if out && f.fwd == Fwd::Masq {
                    MPkt {
                        proto: f.proto,
                        saddr: f.daddr,
                        sport: f.dport,
                        daddr: f.caddr,
                        dport: f.cport,
                        flags,
                    }
                } else {
                    MPkt {
                        proto: f.proto,
                        saddr: f.caddr,
                        sport: f.cport,
                        daddr: VIP,
                        dport: f.vport,
                        flags,
                    }
                };
                self.send(p)
            }
            Ev::Advance(dt) => self.advance(dt),
            Ev::Flush => self.flush(),
        }
    }
}

fn run(setup: &Setup, events: &[Ev]) -> Result<Cov, String> {
    let mut h = Harness::new(setup);
    let eng = engine_snap(&h.shard, setup);
    h.check(&eng, "setup")?;
    for (i, e) in events.iter().enumerate() {
        h.event(e).map_err(|m| format!("event #{i} {e:?}: {m}"))?;
    }
    let mut cov = h.model.cov.clone();
    cov.cases = 1;
    cov.events = events.len() as u64;
    cov.expired = h.model.c.expired;
    cov.expired_dropped = h.model.c.expired_dropped;
    cov.flushed = h.model.c.flushed;
    for (a, b) in cov.drops.iter_mut().zip(h.model.c.drops) {
        // Scan and chain drops are not verdicts: take them from the model's counters.
        *a = (*a).max(b);
    }
    Ok(cov)
}

// ----- strategies -----

fn dest_strategy(base_port: u16) -> impl Strategy<Value = DestSetup> {
    (0i32..=3, any::<bool>(), any::<bool>()).prop_map(move |(weight, nat, alt_port)| DestSetup {
        weight,
        fwd: if nat { Fwd::Masq } else { Fwd::Droute },
        // DR keeps the service port; NAT may map it.
        port: if nat && alt_port {
            base_port + 8000
        } else {
            base_port
        },
    })
}

fn svc_strategy(proto: u8) -> impl Strategy<Value = SvcSetup> {
    let vport = if proto == TCP { TCP_PORT } else { UDP_PORT };
    let persist = prop_oneof![
        1 => Just(None),
        2 => (
            prop_oneof![Just(30u32), Just(60), Just(120), Just(300), 30u32..=300],
            prop_oneof![Just(32u8), Just(24)],
        )
            .prop_map(Some),
    ];
    (
        proptest::collection::vec(dest_strategy(vport), 2..=3),
        persist,
    )
        .prop_map(move |(mut dests, persist)| {
            if dests.iter().all(|d| d.weight == 0) {
                dests[0].weight = 1;
            }
            SvcSetup {
                proto,
                vport,
                dests,
                persist,
            }
        })
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    let mode = || prop_oneof![3 => Just(0u8), 1 => Just(1u8), 2 => Just(3u8)];
    (
        svc_strategy(TCP),
        proptest::option::of(svc_strategy(UDP)),
        prop_oneof![3 => 6u32..=16, 1 => 17u32..=64],
        any::<u32>(),
        prop_oneof![1 => Just(0u8), 1 => Just(1u8), 2 => Just(3u8)],
        mode(),
        mode(),
        prop_oneof![1 => Just(0u8), 4 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(tcp, udp, capacity, lw, drop_entry, drop_packet, secure_tcp, reuse, fine, seed)| {
                let mut svcs = vec![tcp];
                svcs.extend(udp);
                Setup {
                    svcs,
                    capacity,
                    low_watermark: 1 + lw % (capacity / 4),
                    drop_entry,
                    drop_packet,
                    secure_tcp,
                    conn_reuse_mode: reuse,
                    fine_ticks: fine,
                    seed,
                }
            },
        )
}

const PKT_FLAGS: [u8; 6] = [
    tcp::SYN,
    tcp::ACK,
    tcp::FIN | tcp::ACK,
    tcp::RST,
    tcp::SYN | tcp::ACK,
    tcp::SYN | tcp::RST,
];

fn event_strategy() -> impl Strategy<Value = Ev> {
    let dt = prop_oneof![
        5 => 1u64..=3_000,
        3 => 1u64..=120_000,
        2 => 1u64..=400_000,
    ];
    prop_oneof![
        6 => (0..CLIENTS.len(), 0u16..4).prop_map(|(c, p)| Ev::Syn(c, p)),
        2 => (0..CLIENTS.len(), 0u16..4).prop_map(|(c, p)| Ev::Udp(c, p)),
        8 => (
            any::<Index>(),
            any::<bool>(),
            proptest::sample::select(PKT_FLAGS.to_vec()),
        )
            .prop_map(|(flow, out, flags)| Ev::Pkt { flow, out, flags }),
        6 => dt.prop_map(Ev::Advance),
        1 => Just(Ev::Flush),
    ]
}

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        // Cases from PROPTEST_CASES (default 256); never write regression files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn property() {
    let mut runner = TestRunner::new(proptest_config());
    let total = RefCell::new(Cov::default());
    let strategy = (
        setup_strategy(),
        proptest::collection::vec(event_strategy(), 1..120),
    );
    let result = runner.run(&strategy, |(setup, events)| {
        let cov = run(&setup, &events).map_err(TestCaseError::fail)?;
        total.borrow_mut().add(&cov);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let cov = total.into_inner();
    eprintln!("{}", coverage_report(&cov));
}

fn coverage_report(c: &Cov) -> String {
    let mut s = format!(
        "model coverage: {} cases, {} events, {} clock stops, max {} live entries\n  \
         verdicts: {} new conns, {} on known conns, {} NAT replies, {} not ours\n  \
         conn reuse {}, template re-armed 60 s {}, try-drops {}, same-batch template \
         re-armed {} / freed {}, TableFull after template {}, ASSURED {}, secure_tcp \
         transitions {}, INPUT_ONLY transitions {}\n  \
         expired {}, expired after drop {}, flushed {}\n  drops:",
        c.cases,
        c.events,
        c.stops,
        c.max_live,
        c.xmit_new,
        c.xmit_existing,
        c.xmit_reply,
        c.not_ours,
        c.conn_reuse,
        c.expire_later,
        c.try_drops,
        c.ambiguous_rearmed,
        c.ambiguous_freed,
        c.tablefull_with_template,
        c.assured,
        c.secure_transitions,
        c.input_only_transitions,
        c.expired,
        c.expired_dropped,
        c.flushed,
    );
    for &r in DropReason::ALL {
        if c.drops[r as usize] > 0 {
            s += &format!(" {} {}", r.name(), c.drops[r as usize]);
        }
    }
    s
}

/// The engine follows the model on random event sequences. Run with `--nocapture` to see
/// what the random cases reached.
#[test]
fn engine_matches_reference_model() {
    property();
}

// ----- the seed's story, step by step -----

const C1: u32 = 0x0A09_0101;
const C2: u32 = 0x0A09_0201;
const C3: u32 = 0x0A09_0301;

fn story_shard(persist_s: u32, drop_entry: u8, capacity: u32) -> Shard<V4> {
    let setup = Setup {
        svcs: vec![SvcSetup {
            proto: TCP,
            vport: TCP_PORT,
            dests: vec![
                DestSetup {
                    weight: 1,
                    fwd: Fwd::Droute,
                    port: TCP_PORT,
                },
                DestSetup {
                    weight: 1,
                    fwd: Fwd::Droute,
                    port: TCP_PORT,
                },
            ],
            persist: (persist_s > 0).then_some((persist_s, 32)),
        }],
        capacity,
        low_watermark: 1,
        drop_entry,
        drop_packet: 0,
        secure_tcp: 0,
        conn_reuse_mode: 1,
        fine_ticks: true,
        seed: 7,
    };
    build_shard(&setup)
}

fn tcp_pkt(c: u32, cport: u16, flags: u8) -> Packet<V4> {
    Packet::tcp(V4(c), cport, V4(VIP), TCP_PORT, flags)
}

fn find(s: &Shard<V4>, tpl: bool, caddr: u32, cport: u16) -> Option<ConnInfo<V4>> {
    s.conns()
        .find(|c| c.is_template() == tpl && c.caddr.0 == caddr && c.cport == cport)
}

fn template(s: &Shard<V4>, caddr: u32) -> Option<ConnInfo<V4>> {
    find(s, true, caddr, 0)
}

fn xmit_dest(v: Verdict<V4>) -> u32 {
    match v {
        Verdict::Xmit(x) => x.daddr.0,
        other => panic!("expected Xmit, got {other:?}"),
    }
}

#[test]
fn dropped_syn_recv_conn_takes_its_unassured_template() {
    let mut s = story_shard(300, 3, 64);
    let k = s.counters();
    xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::SYN), 500));
    let c = find(&s, false, C1, 1000).unwrap();
    assert_eq!(c.state, TcpState::SynRecv as u8);
    assert_eq!(template(&s, C1).unwrap().n_control, 1);
    // The first scan drops the half-open conn; as it was dropped (timeout 0) and its
    // template now controls nothing and is not assured, the template goes with it.
    s.tick(1000);
    assert!(find(&s, false, C1, 1000).is_none());
    assert!(template(&s, C1).is_none());
    assert_eq!(k.drops_of(DropReason::DropEntryConn), 1);
    assert_eq!(k.drops_of(DropReason::ChainTemplate), 1);
    assert_eq!(k.drops_of(DropReason::DropEntryTemplate), 0);
    assert_eq!(k.templates.get(), 0);
    assert_eq!(k.conns.get(), 0);
    assert_eq!(k.expired_dropped.get(), 2);
    assert_eq!(k.expired.get(), 0);
}

#[test]
fn assured_template_survives_the_scan_and_its_conns_drop() {
    let mut s = story_shard(300, 3, 64);
    let k = s.counters();
    let d = xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::SYN), 0));
    xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::ACK), 0));
    let t = template(&s, C1).unwrap();
    assert!(t.is_assured(), "an ESTABLISHED conn assures its template");
    assert_eq!(k.assured_templates.get(), 1);
    // A second, half-open conn of the same client.
    assert_eq!(xmit_dest(s.process(&tcp_pkt(C1, 1001, tcp::SYN), 0)), d);
    assert_eq!(template(&s, C1).unwrap().n_control, 2);

    s.tick(1000);
    assert!(find(&s, false, C1, 1001).is_none(), "SYN_RECV is dropped");
    let es = find(&s, false, C1, 1000).expect("ESTABLISHED re-armed < 60 s ago stays");
    assert_eq!(es.in_pkts, 2);
    let t = template(&s, C1).expect("assured template survives");
    assert_eq!(t.n_control, 1);
    assert_eq!(k.drops_of(DropReason::ChainTemplate), 0);

    // 60 s after its last packet the ESTABLISHED conn is a try-drop candidate (in_pkts 2:
    // the first candidate of its class is dropped); the assured template stays.
    s.tick(59_000);
    assert!(find(&s, false, C1, 1000).is_some());
    s.tick(60_000);
    assert!(find(&s, false, C1, 1000).is_none(), "try-dropped");
    assert_eq!(k.drops_of(DropReason::DropEntryConn), 2);
    let t = template(&s, C1).expect("assured template is never dropped by the scan");
    assert_eq!((t.n_control, t.is_assured()), (0, true));
    assert_eq!(k.drops_of(DropReason::ChainTemplate), 0);

    // The client comes back: same dest.
    assert_eq!(
        xmit_dest(s.process(&tcp_pkt(C1, 1002, tcp::SYN), 70_000)),
        d
    );
    s.tick(71_000);
    assert!(find(&s, false, C1, 1002).is_none());
    assert!(template(&s, C1).is_some(), "still assured, still kept");
    // ... until its own timeout: 300 s after the last conn it controlled was made.
    s.tick(370_000 - 1);
    assert!(template(&s, C1).is_some());
    s.tick(370_000);
    assert!(template(&s, C1).is_none());
    assert_eq!(k.expired.get(), 1);
}

#[test]
fn timed_out_conn_leaves_template_for_the_scan() {
    for drop_entry in [3, 0] {
        let mut s = story_shard(300, drop_entry, 64);
        let k = s.counters();
        xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::SYN), 500));
        // FIN on a DR conn in SYN_RECV: TIME_WAIT (120 s), which the scan leaves alone.
        xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::FIN | tcp::ACK), 500));
        let c = find(&s, false, C1, 1000).unwrap();
        assert_eq!(c.state, TcpState::TimeWait as u8);
        s.tick(120_499);
        assert!(find(&s, false, C1, 1000).is_some());
        // Expired by its own timeout (not dropped): the template stays, orphaned.
        s.tick(120_500);
        assert!(find(&s, false, C1, 1000).is_none());
        let t = template(&s, C1).expect("a timed-out conn leaves its template");
        assert_eq!((t.n_control, t.is_assured()), (0, false));
        assert_eq!(k.drops_of(DropReason::ChainTemplate), 0);
        s.tick(121_000);
        if drop_entry == 3 {
            // The next scan collects the unassured orphan.
            assert!(template(&s, C1).is_none());
            assert_eq!(k.drops_of(DropReason::DropEntryTemplate), 1);
        } else {
            // Without the scan it waits for its own timeout: 300 s after the SYN.
            assert!(template(&s, C1).is_some());
            s.tick(300_499);
            assert!(template(&s, C1).is_some());
            s.tick(300_500);
            assert!(template(&s, C1).is_none());
            assert_eq!(k.expired.get(), 2);
        }
    }
}

#[test]
fn template_with_live_conns_is_rearmed_60s() {
    let mut s = story_shard(30, 0, 64);
    let d = xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::SYN), 0));
    xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::ACK), 0));
    let t = template(&s, C1).unwrap();
    assert_eq!((t.timeout, t.expires), (30_000, 30_000));
    // At its deadline it still controls the ESTABLISHED conn: retried in 60 s, and its
    // timeout is now 60 s.
    s.tick(30_000);
    let t = template(&s, C1).unwrap();
    assert_eq!((t.timeout, t.expires, t.n_control), (60_000, 90_000, 1));
    s.tick(90_000);
    let t = template(&s, C1).unwrap();
    assert_eq!((t.timeout, t.expires), (60_000, 150_000));
    // A new conn of the client re-arms it with its (now 60 s) timeout.
    assert_eq!(
        xmit_dest(s.process(&tcp_pkt(C1, 1001, tcp::SYN), 100_000)),
        d
    );
    let t = template(&s, C1).unwrap();
    assert_eq!((t.timeout, t.expires, t.n_control), (60_000, 160_000, 2));
    // Both conns end (RST -> CLOSE, 10 s): the template lives to its deadline, then goes.
    xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::RST), 100_000));
    xmit_dest(s.process(&tcp_pkt(C1, 1001, tcp::ACK), 100_000));
    xmit_dest(s.process(&tcp_pkt(C1, 1001, tcp::RST), 100_000));
    s.tick(150_000);
    assert_eq!(template(&s, C1).unwrap().n_control, 0);
    s.tick(160_000);
    assert!(template(&s, C1).is_none());
    assert_eq!(s.counters().templates.get(), 0);
}

#[test]
fn flush_expires_controlled_before_controllers() {
    let mut s = story_shard(300, 0, 64);
    let k = s.counters();
    for c in [C1, C2, C3] {
        for p in [1000, 1001] {
            xmit_dest(s.process(&tcp_pkt(c, p, tcp::SYN), 0));
        }
        xmit_dest(s.process(&tcp_pkt(c, 1000, tcp::ACK), 0));
    }
    assert_eq!((k.templates.get(), k.conns.get()), (3, 6));
    assert_eq!(s.flush(1), 9);
    assert_eq!(s.conns().count(), 0);
    assert_eq!(
        (k.templates.get(), k.assured_templates.get(), k.conns.get()),
        (0, 0, 0)
    );
    assert_eq!(k.flushed.get(), 9);
    // Flushed is not dropped: no chain rule, nothing counted as dropped or expired.
    assert_eq!(k.drops_of(DropReason::ChainTemplate), 0);
    assert_eq!(k.expired_dropped.get() + k.expired.get(), 0);
    for a in DEST_ADDRS.iter().take(2) {
        let dc = s
            .dest_counts(
                ServiceKey::Addr {
                    proto: Proto::Tcp,
                    vaddr: V4(VIP),
                    vport: TCP_PORT,
                },
                V4(*a),
                TCP_PORT,
            )
            .unwrap();
        assert_eq!(dc, DestCounts::default());
    }
    // The table is whole again: new conns and templates are made as before.
    xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::SYN), 2));
    assert_eq!((k.templates.get(), k.conns.get()), (1, 1));
}

#[test]
fn table_full_new_template_is_armed_for_the_persistence_timeout_strict() {
    let mut s = story_shard(300, 0, 3);
    xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::SYN), 0));
    // One entry left: C2's template fits, its conn does not.
    assert_eq!(
        s.process(&tcp_pkt(C2, 1000, tcp::SYN), 10_000),
        Verdict::Drop(DropReason::TableFull)
    );
    let t = template(&s, C2).expect("the template was made");
    assert_eq!((t.n_control, t.timeout), (0, 300_000));
    assert_eq!(t.expires, 10_000 + 300_000, "kernel: ip_vs_conn_put(ct)");
}

#[test]
fn table_full_found_template_is_rearmed_strict() {
    let mut s = story_shard(300, 0, 2);
    xmit_dest(s.process(&tcp_pkt(C1, 1000, tcp::SYN), 0));
    assert_eq!(template(&s, C1).unwrap().expires, 300_000);
    assert_eq!(
        s.process(&tcp_pkt(C1, 1001, tcp::SYN), 20_000),
        Verdict::Drop(DropReason::TableFull)
    );
    let t = template(&s, C1).unwrap();
    assert_eq!(t.expires, 20_000 + 300_000, "kernel: ip_vs_conn_put(ct)");
}

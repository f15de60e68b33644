//! Per-shard counters, written by the owning worker only and read by any thread without
//! locks. Each cell is an atomic updated with a plain load + store (one writer, so no
//! read-modify-write instruction and no lock prefix on the hot path); readers see a value
//! at most one update old.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::proto::{sctp, tcp};

/// A counter or gauge cell with a single writer.
#[derive(Default, Debug)]
pub struct Cell(AtomicU64);

impl Cell {
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    #[inline]
    pub fn dec(&self) {
        self.0.store(self.0.load(Relaxed).wrapping_sub(1), Relaxed);
    }
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
}

macro_rules! reasons {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            pub const COUNT: usize = [$($s,)*].len();
            /// Stable snake_case name for metrics and JSON.
            pub fn name(self) -> &'static str { match self { $($name::$v => $s,)* } }
        }
    };
}

reasons! {
    /// Why a packet was dropped or a conn removed before its time. Every drop has one.
    DropReason {
        /// A packet for a VIP with no conn that may not start one (TCP without SYN, ...).
        NoConnNotStart => "no_conn_not_start",
        /// The service has no available dest (all quiescent, overloaded or none).
        NoDest => "no_dest",
        /// No free conn entry (the shard's capacity is exhausted).
        TableFull => "table_full",
        /// The drop_packet defense refused a new conn.
        DropPacket => "drop_packet",
        /// A packet of a conn whose dest was removed (expire_nodest_conn = 0).
        DestUnavailable => "dest_unavailable",
        /// A port-zero service without persistence (IPVS refuses to schedule it).
        PortZeroNotPersistent => "port_zero_not_persistent",
        /// The drop_entry scan dropped a conn.
        DropEntryConn => "drop_entry_conn",
        /// The drop_entry scan dropped an unassured (or OPS) template.
        DropEntryTemplate => "drop_entry_template",
        /// A dropped conn took its controlling template with it (the seed patch's rule).
        ChainTemplate => "dropped_chain_template",
        /// A dropped conn took its controlling (non-template) conn with it.
        ChainConn => "dropped_chain_conn",
    }
}

/// Gauge index of a conn by protocol and state (templates counted apart).
pub const TCP_BASE: usize = 0;
pub const UDP_BASE: usize = TCP_BASE + tcp::N_STATES;
pub const SCTP_BASE: usize = UDP_BASE + 1;
pub const N_STATE_GAUGES: usize = SCTP_BASE + sctp::N_STATES;

/// Every counter of one shard.
#[derive(Default, Debug)]
pub struct Counters {
    /// Live conns (not templates) per protocol state: TCP states, UDP, SCTP states.
    pub conns_by_state: [Cell; N_STATE_GAUGES],
    pub conns: Cell,
    pub templates: Cell,
    pub assured_templates: Cell,
    pub conns_created: Cell,
    pub templates_created: Cell,
    /// Conns and templates freed by their own timeout.
    pub expired: Cell,
    /// Conns (not templates) freed by their own timeout, by the state they were in: conns
    /// timing out in SYN_RECV are the flood that got past the drop_entry scan.
    pub expired_in_state: [Cell; N_STATE_GAUGES],
    /// Conns and templates freed after being dropped (by the scan or the dropped chain).
    pub expired_dropped: Cell,
    pub flushed: Cell,
    pub packets_in: Cell,
    pub packets_out: Cell,
    pub drops: [Cell; DropReason::COUNT],
    /// Defense state after the last per-second update.
    pub defense_drop_entry: Cell,
    pub defense_drop_packet_rate: Cell,
    pub defense_secure_tcp: Cell,
    pub defense_nomem: Cell,
    pub free_entries: Cell,
    pub scans: Cell,
    pub scan_visited: Cell,
}

impl Counters {
    #[inline]
    pub fn count_drop(&self, r: DropReason) {
        self.drops[r as usize].inc();
    }
    pub fn drops_of(&self, r: DropReason) -> u64 {
        self.drops[r as usize].get()
    }
}

/// Kind of a metric sample, as Prometheus types them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// One exported value: family name, help, kind, extra label (name, value) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub label: Option<(&'static str, String)>,
    pub value: u64,
}

impl Counters {
    /// Every counter as samples (the caller adds worker and family labels and encodes).
    pub fn samples(&self) -> Vec<Sample> {
        use MetricKind::{Counter as C, Gauge as G};
        let s = |name, help, kind, value| Sample {
            name,
            help,
            kind,
            label: None,
            value,
        };
        let mut v = vec![
            s(
                "rvs_conns",
                "Live conns (not templates).",
                G,
                self.conns.get(),
            ),
            s(
                "rvs_templates",
                "Live persistence templates.",
                G,
                self.templates.get(),
            ),
            s(
                "rvs_assured_templates",
                "Live ASSURED templates.",
                G,
                self.assured_templates.get(),
            ),
            s(
                "rvs_conns_created_total",
                "Conns created.",
                C,
                self.conns_created.get(),
            ),
            s(
                "rvs_templates_created_total",
                "Templates created.",
                C,
                self.templates_created.get(),
            ),
            s(
                "rvs_expired_total",
                "Conns and templates freed by their own timeout.",
                C,
                self.expired.get(),
            ),
            s(
                "rvs_expired_dropped_total",
                "Conns and templates freed after a defense drop.",
                C,
                self.expired_dropped.get(),
            ),
            s(
                "rvs_flushed_total",
                "Conns and templates flushed.",
                C,
                self.flushed.get(),
            ),
            s(
                "rvs_packets_in_total",
                "Packets of conns, client to dest.",
                C,
                self.packets_in.get(),
            ),
            s(
                "rvs_packets_out_total",
                "Packets of conns, dest to client (NAT replies).",
                C,
                self.packets_out.get(),
            ),
            s(
                "rvs_defense_drop_entry",
                "Current drop_entry mode (0..3).",
                G,
                self.defense_drop_entry.get(),
            ),
            s(
                "rvs_defense_drop_packet_rate",
                "drop_packet: one of every N new conns dropped (0 = off).",
                G,
                self.defense_drop_packet_rate.get(),
            ),
            s(
                "rvs_defense_secure_tcp",
                "Current secure_tcp mode (0..3).",
                G,
                self.defense_secure_tcp.get(),
            ),
            s(
                "rvs_defense_nomem",
                "1 while free conn entries are below the low watermark.",
                G,
                self.defense_nomem.get(),
            ),
            s(
                "rvs_free_entries",
                "Free conn entries.",
                G,
                self.free_entries.get(),
            ),
            s(
                "rvs_drop_entry_scans_total",
                "drop_entry scans run.",
                C,
                self.scans.get(),
            ),
            s(
                "rvs_drop_entry_scan_visited_total",
                "Conns visited by drop_entry scans.",
                C,
                self.scan_visited.get(),
            ),
        ];
        for r in DropReason::ALL {
            v.push(Sample {
                name: "rvs_drops_total",
                help: "Packets dropped and conns removed before their time, by reason.",
                kind: C,
                label: Some(("reason", r.name().to_string())),
                value: self.drops_of(*r),
            });
        }
        let states = |base: usize, n: usize, proto: &'static str, name: fn(u8) -> &'static str| {
            (0..n).map(move |i| (base + i, proto, name(i as u8)))
        };
        let all = states(TCP_BASE, tcp::N_STATES, "tcp", |s| {
            tcp::TcpState::from_u8(s).map_or("?", |s| s.name())
        })
        .chain(states(UDP_BASE, 1, "udp", |_| "UDP"))
        .chain(states(SCTP_BASE, sctp::N_STATES, "sctp", |s| {
            sctp::SctpState::from_u8(s).map_or("?", |s| s.name())
        }));
        for (i, proto, state) in all {
            v.push(Sample {
                name: "rvs_conns_by_state",
                help: "Live conns by protocol and state.",
                kind: G,
                label: Some(("state", format!("{proto}:{state}"))),
                value: self.conns_by_state[i].get(),
            });
            v.push(Sample {
                name: "rvs_expired_by_state_total",
                help: "Conns freed by their own timeout, by the state they were in.",
                kind: C,
                label: Some(("state", format!("{proto}:{state}"))),
                value: self.expired_in_state[i].get(),
            });
        }
        v
    }
}

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

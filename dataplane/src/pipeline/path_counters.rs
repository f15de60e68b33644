//! The packet path's counters: why a frame was dropped ([`PathDrop`]) and what the path did
//! ([`PathCounters`]), one writer (the worker), lock-free readers.

use super::exception::Class;
use crate::counters::Cell;

macro_rules! path_drops {
    ($($v:ident => $s:literal,)*) => {
        /// Why the packet path dropped a frame (the engine counts its own reasons).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum PathDrop { $($v,)* }
        impl PathDrop {
            pub const ALL: &'static [PathDrop] = &[$(PathDrop::$v,)*];
            pub const COUNT: usize = [$($s,)*].len();
            pub fn name(self) -> &'static str { match self { $(PathDrop::$v => $s,)* } }
        }
    };
}

path_drops! {
    Truncated => "truncated",
    Malformed => "malformed",
    NotForUs => "l2_not_for_us",
    ArpNotOurs => "arp_not_ours",
    Engine => "engine",
    TtlExceeded => "ttl_exceeded",
    NoRoute => "no_route",
    NeighQueueFull => "neigh_queue_full",
    NeighTableFull => "neigh_table_full",
    NeighFailed => "neigh_failed",
    NoHeadroom => "no_headroom",
    FragNeeded => "frag_needed",
    FragUnknown => "frag_unknown",
    FragHoldFull => "frag_hold_full",
    FragHoldTimeout => "frag_hold_timeout",
    FragFirstDropped => "frag_first_dropped",
    IcmpUnknownFlow => "icmp_unknown_flow",
    Rewrite => "rewrite_failed",
    NoBuffer => "no_buffer",
    NoSourceAddr => "no_source_addr",
    NeighHeldFull => "neigh_held_full",
    ExceptionSyn => "exception_syn",
    ExceptionSynRetry => "exception_syn_retry",
    ExceptionTcp => "exception_tcp",
    ExceptionOther => "exception_other",
}

impl PathDrop {
    /// The drop of a frame for the kernel that its class's budget refused.
    pub(super) fn over_budget(c: Class) -> PathDrop {
        match c {
            Class::Syn => PathDrop::ExceptionSyn,
            Class::SynRetry => PathDrop::ExceptionSynRetry,
            Class::Tcp => PathDrop::ExceptionTcp,
            // Neighbor answers and peers are never refused.
            Class::Other | Class::Neigh | Class::Peer => PathDrop::ExceptionOther,
        }
    }
}

/// Packet-path counters of one worker (single writer, lock-free readers).
#[derive(Default, Debug)]
pub struct PathCounters {
    pub rx: Cell,
    pub tx: Cell,
    pub kernel: Cell,
    pub handoff_out: Cell,
    pub handoff_in: Cell,
    pub arp_replies: Cell,
    pub nd_adverts: Cell,
    pub echo_replies: Cell,
    pub solicits: Cell,
    pub icmp_errors_sent: Cell,
    /// Time exceeded not sent: over `[icmp] msgs_per_sec` (the kernel's
    /// `ICMP_MIB_RATELIMITGLOBAL`).
    pub icmp_errors_ratelimited: Cell,
    /// Gratuitous ARPs and unsolicited neighbor advertisements for the VIPs.
    pub announces: Cell,
    /// Copies of neighbor answers (ARP replies and neighbor advertisements to the appliance)
    /// handed to the other workers, so the one that asked learns them too.
    pub neigh_shared: Cell,
    /// Fragments held until their datagram's first fragment arrived (or the hold timed out).
    pub frags_held: Cell,
    /// Frames waiting for a next hop's ARP/ND answer now (a gauge, both families).
    pub neigh_held: Cell,
    /// Neighbor entries now, static ones included (a gauge, both families).
    pub neigh_entries: Cell,
    /// Neighbor entries failed: `max_probes` solicitations unanswered (the table's
    /// `NeighStats::failed`, both families).
    pub neigh_failed: Cell,
    /// Neighbors whose MAC an unsolicited ARP / NA changed (a failover's gratuitous ARP;
    /// `NeighStats::unsolicited_updated`, both families).
    pub neigh_updated: Cell,
    /// Frames passed to the kernel, by [`Class`] (they add up to `kernel`).
    pub exception: [Cell; Class::COUNT],
    pub drops: [Cell; PathDrop::COUNT],
}

impl PathCounters {
    pub fn drops_of(&self, r: PathDrop) -> u64 {
        self.drops[r as usize].get()
    }

    pub fn passed_of(&self, c: Class) -> u64 {
        self.exception[c as usize].get()
    }
}

//! IPVS's SCTP association state machine (`ip_vs_proto_sctp.c`): the event a packet's chunks
//! give, the `sctp_states` transition table, default timeouts and the new-conn rule. Chunk
//! bytes are read only through checked slices: truncated or hostile input never panics.

use super::Dir;

/// Number of SCTP states (IP_VS_SCTP_S_LAST).
pub const N_STATES: usize = 14;

/// Number of events (IP_VS_SCTP_EVENT_LAST).
pub const N_EVENTS: usize = 10;

/// An SCTP conn state, with the kernel's `enum ip_vs_sctp_states` values. The states are as
/// seen by the real server; INIT1, INIT, COOKIE_SENT, COOKIE_REPLIED and COOKIE exist only to
/// give handshake steps their own timeouts (a first INIT gets a short one).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum SctpState {
    None = 0,
    Init1,
    Init,
    CookieSent,
    CookieReplied,
    CookieWait,
    Cookie,
    CookieEchoed,
    Established,
    ShutdownSent,
    ShutdownReceived,
    ShutdownAckSent,
    Rejected,
    Closed,
}

impl SctpState {
    /// Every state, in code order.
    pub const ALL: [SctpState; N_STATES] = [
        SctpState::None,
        SctpState::Init1,
        SctpState::Init,
        SctpState::CookieSent,
        SctpState::CookieReplied,
        SctpState::CookieWait,
        SctpState::Cookie,
        SctpState::CookieEchoed,
        SctpState::Established,
        SctpState::ShutdownSent,
        SctpState::ShutdownReceived,
        SctpState::ShutdownAckSent,
        SctpState::Rejected,
        SctpState::Closed,
    ];

    /// The state with raw code `v`, if it is one.
    #[inline]
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(usize::from(v)).copied()
    }

    /// IPVS's name for the state (`sctp_state_name_table`, as `ipvsadm -Lc` shows it).
    pub fn name(self) -> &'static str {
        match self {
            SctpState::None => "NONE",
            SctpState::Init1 => "INIT1",
            SctpState::Init => "INIT",
            SctpState::CookieSent => "C-SENT",
            SctpState::CookieReplied => "C-REPLIED",
            SctpState::CookieWait => "C-WAIT",
            SctpState::Cookie => "COOKIE",
            SctpState::CookieEchoed => "C-ECHOED",
            SctpState::Established => "ESTABLISHED",
            SctpState::ShutdownSent => "S-SENT",
            SctpState::ShutdownReceived => "S-RECEIVED",
            SctpState::ShutdownAckSent => "S-ACK-SENT",
            SctpState::Rejected => "REJECTED",
            SctpState::Closed => "CLOSED",
        }
    }
}

/// The kernel's IP_VS_SCTP_*_EVENT set: what a packet means to the state table.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum SctpEvent {
    /// DATA, SACK, HEARTBEAT(-ACK), ECNE, CWR, and any chunk type IPVS does not know.
    Data = 0,
    Init,
    InitAck,
    CookieEcho,
    CookieAck,
    Shutdown,
    ShutdownAck,
    ShutdownComplete,
    Error,
    Abort,
}

/// SCTP chunk type codes (RFC 9260 section 3.2) that IPVS maps.
pub const CID_DATA: u8 = 0;
pub const CID_INIT: u8 = 1;
pub const CID_INIT_ACK: u8 = 2;
pub const CID_SACK: u8 = 3;
pub const CID_HEARTBEAT: u8 = 4;
pub const CID_HEARTBEAT_ACK: u8 = 5;
pub const CID_ABORT: u8 = 6;
pub const CID_SHUTDOWN: u8 = 7;
pub const CID_SHUTDOWN_ACK: u8 = 8;
pub const CID_ERROR: u8 = 9;
pub const CID_COOKIE_ECHO: u8 = 10;
pub const CID_COOKIE_ACK: u8 = 11;
pub const CID_ECN_ECNE: u8 = 12;
pub const CID_ECN_CWR: u8 = 13;
pub const CID_SHUTDOWN_COMPLETE: u8 = 14;

/// `sctp_events`: event of each chunk type 0..=14; larger types count as DATA.
const EVENT_OF_CHUNK: [SctpEvent; 15] = [
    SctpEvent::Data,             // DATA
    SctpEvent::Init,             // INIT
    SctpEvent::InitAck,          // INIT_ACK
    SctpEvent::Data,             // SACK
    SctpEvent::Data,             // HEARTBEAT
    SctpEvent::Data,             // HEARTBEAT_ACK
    SctpEvent::Abort,            // ABORT
    SctpEvent::Shutdown,         // SHUTDOWN
    SctpEvent::ShutdownAck,      // SHUTDOWN_ACK
    SctpEvent::Error,            // ERROR
    SctpEvent::CookieEcho,       // COOKIE_ECHO
    SctpEvent::CookieAck,        // COOKIE_ACK
    SctpEvent::Data,             // ECN_ECNE
    SctpEvent::Data,             // ECN_CWR
    SctpEvent::ShutdownComplete, // SHUTDOWN_COMPLETE
];

/// Default timeouts in ms (`sctp_timeouts`). Handshake and shutdown states get
/// IP_VS_SCTP_MAX_RTO = 61 s; the spec's "10-20 s" is from older kernels, we follow the current.
pub const DEFAULT_TIMEOUTS_MS: [u32; N_STATES] = [
    2_000,   // NONE
    4_000,   // INIT1: a first INIT that may be dropped
    61_000,  // INIT
    61_000,  // COOKIE_SENT
    61_000,  // COOKIE_REPLIED
    61_000,  // COOKIE_WAIT
    61_000,  // COOKIE
    61_000,  // COOKIE_ECHOED
    900_000, // ESTABLISHED
    61_000,  // SHUTDOWN_SENT
    61_000,  // SHUTDOWN_RECEIVED
    61_000,  // SHUTDOWN_ACK_SENT
    4_000,   // REJECTED: INIT answered with ABORT
    61_000,  // CLOSED
];

/// The event of a packet, decided from its chunks as set_sctp_state does. `chunks` is the
/// SCTP packet after the 12-byte common header.
///
/// The first chunk's type decides, except that a COOKIE_ECHO or COOKIE_ACK whose length field
/// is at least 4 yields ABORT when a whole chunk header follows at that length rounded up to 4
/// and its type is ABORT (control chunks may precede a bundled ABORT; the kernel looks past
/// only these two). `None` when the first 4-byte chunk header is cut short: the kernel then
/// skips the transition, and the caller drops and counts the packet. A length field that
/// overruns the packet is no error to the kernel, so it is none here either.
#[inline]
pub fn event(chunks: &[u8]) -> Option<SctpEvent> {
    let [mut ty, _flags, len_hi, len_lo, ..] = *chunks else {
        return None;
    };
    if ty == CID_COOKIE_ECHO || ty == CID_COOKIE_ACK {
        let clen = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if clen >= 4 {
            let next = (clen + 3) & !3;
            if let Some([CID_ABORT, _, _, _, ..]) = chunks.get(next..) {
                ty = CID_ABORT;
            }
        }
    }
    Some(
        EVENT_OF_CHUNK
            .get(usize::from(ty))
            .copied()
            .unwrap_or(SctpEvent::Data),
    )
}

// Short names as in the kernel source, so the table reads like `sctp_states`.
// (No transition leads back to NONE, so it has no short name.)
const I1: SctpState = SctpState::Init1;
const IN: SctpState = SctpState::Init;
const CS: SctpState = SctpState::CookieSent;
const CR: SctpState = SctpState::CookieReplied;
const CW: SctpState = SctpState::CookieWait;
const CO: SctpState = SctpState::Cookie;
const CE: SctpState = SctpState::CookieEchoed;
const ES: SctpState = SctpState::Established;
const SS: SctpState = SctpState::ShutdownSent;
const SR: SctpState = SctpState::ShutdownReceived;
const SA: SctpState = SctpState::ShutdownAckSent;
const RJ: SctpState = SctpState::Rejected;
const CL: SctpState = SctpState::Closed;

/// `sctp_states`, indexed [dir][event][current state]; `Dir` and `SctpEvent` discriminants
/// are the kernel's IP_VS_DIR_* and event numbers.
#[rustfmt::skip]
const SCTP_STATES: [[[SctpState; N_STATES]; N_EVENTS]; 3] = [
    // INPUT        NO  I1  IN  CS  CR  CW  CO  CE  ES  SS  SR  SA  RJ  CL
    [/* data    */ [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* init    */ [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
     /* init_a  */ [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* c_echo  */ [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* c_ack   */ [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
     /* shut    */ [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
     /* shut_a  */ [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
     /* shut_c  */ [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
     /* error   */ [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
     /* abort   */ [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL]],
    // OUTPUT
    [/* data    */ [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* init    */ [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
     /* init_a  */ [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* c_echo  */ [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
     /* c_ack   */ [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
     /* shut    */ [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
     /* shut_a  */ [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
     /* shut_c  */ [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* error   */ [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* abort   */ [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL]],
    // INPUT_ONLY
    [/* data    */ [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* init    */ [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
     /* init_a  */ [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* c_echo  */ [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* c_ack   */ [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
     /* shut    */ [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
     /* shut_a  */ [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
     /* shut_c  */ [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
     /* error   */ [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* abort   */ [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL]],
];

/// Kernel's sctp_states table lookup. `dir` is the table direction: set_sctp_state uses
/// INPUT_ONLY for every non-OUTPUT packet of a NOOUTPUT conn and clears NOOUTPUT on an OUTPUT
/// packet, so pass `dir.for_conn(nooutput)` (and clear the flag on `Dir::Output`).
#[inline]
pub fn next_state(dir: Dir, ev: SctpEvent, cur: SctpState) -> SctpState {
    // Bounded by the enums: Dir < 3, SctpEvent < 10, SctpState < 14.
    SCTP_STATES[dir as usize][ev as usize][cur as usize]
}

/// Counted active on the dest only in ESTABLISHED.
#[inline]
pub fn is_active(s: SctpState) -> bool {
    s == SctpState::Established
}

/// May this packet create a new conn (an INIT chunk first, as sctp_conn_schedule; with `sloppy`
/// as sloppy_sctp allows)?
///
/// As the current kernel: needs a whole first chunk header; a first ABORT never creates a conn,
/// not even with sloppy_sctp (answering an ABORT with a new association is pointless).
#[inline]
pub fn may_start_conn(chunks: &[u8], sloppy: bool) -> bool {
    let [ty, _, _, _, ..] = *chunks else {
        return false;
    };
    ty != CID_ABORT && (sloppy || ty == CID_INIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One chunk of type `ty` with `body` bytes of value, padded to 4 bytes.
    fn chunk(ty: u8, body: usize) -> Vec<u8> {
        let len = u16::try_from(4 + body).unwrap();
        let mut c = vec![ty, 0];
        c.extend_from_slice(&len.to_be_bytes());
        c.resize(4 + body, 0xab);
        while c.len() % 4 != 0 {
            c.push(0);
        }
        c
    }

    fn bundle(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    /// Feed (direction, packet) steps through `event` and `next_state`, checking each state.
    fn walk(start: SctpState, steps: &[(Dir, Vec<u8>, SctpState)]) {
        let mut s = start;
        for (i, (dir, pkt, want)) in steps.iter().enumerate() {
            let ev = event(pkt).unwrap();
            let next = next_state(*dir, ev, s);
            assert_eq!(
                next,
                *want,
                "step {i}: {dir:?} {ev:?} from {} gave {}",
                s.name(),
                next.name()
            );
            s = next;
        }
    }

    #[test]
    fn nat_association_walks_handshake_data_and_shutdown_states() {
        use SctpState as S;
        walk(
            S::None,
            &[
                (Dir::Input, chunk(CID_INIT, 16), S::Init1),
                (Dir::Output, chunk(CID_INIT_ACK, 40), S::CookieSent),
                (Dir::Input, chunk(CID_COOKIE_ECHO, 32), S::CookieReplied),
                (Dir::Output, chunk(CID_COOKIE_ACK, 0), S::Established),
                (Dir::Input, chunk(CID_DATA, 100), S::Established),
                (Dir::Output, chunk(CID_SACK, 12), S::Established),
                (Dir::Input, chunk(CID_SHUTDOWN, 4), S::ShutdownReceived),
                (Dir::Output, chunk(CID_SHUTDOWN_ACK, 0), S::ShutdownAckSent),
                (Dir::Input, chunk(CID_SHUTDOWN_COMPLETE, 0), S::Closed),
            ],
        );
    }

    #[test]
    fn dr_association_seen_input_only_establishes_on_cookie_echo() {
        use SctpState as S;
        walk(
            S::None,
            &[
                (Dir::InputOnly, chunk(CID_INIT, 16), S::Init1),
                (Dir::InputOnly, chunk(CID_COOKIE_ECHO, 32), S::Established),
                (Dir::InputOnly, chunk(CID_DATA, 100), S::Established),
                (Dir::InputOnly, chunk(CID_SHUTDOWN, 4), S::ShutdownReceived),
                (Dir::InputOnly, chunk(CID_SHUTDOWN_COMPLETE, 0), S::Closed),
            ],
        );
    }

    #[test]
    fn cookie_echo_bundled_with_data_still_counts_as_cookie_echo() {
        // DATA may ride behind COOKIE_ECHO; only a following ABORT changes the event.
        let pkt = bundle(&[chunk(CID_COOKIE_ECHO, 32), chunk(CID_DATA, 20)]);
        assert_eq!(event(&pkt), Some(SctpEvent::CookieEcho));
    }

    #[test]
    fn repeated_init_moves_init1_to_init() {
        // INIT1 has the short timeout; a retransmitted INIT means the first one got through.
        let s = next_state(Dir::Input, SctpEvent::Init, SctpState::None);
        assert_eq!(s, SctpState::Init1);
        assert_eq!(next_state(Dir::Input, SctpEvent::Init, s), SctpState::Init);
    }

    #[test]
    fn server_initiated_association_walks_cookie_wait_states() {
        use SctpState as S;
        walk(
            S::None,
            &[
                (Dir::Output, chunk(CID_INIT, 16), S::CookieWait),
                (Dir::Input, chunk(CID_INIT_ACK, 40), S::Cookie),
                (Dir::Output, chunk(CID_COOKIE_ECHO, 32), S::CookieEchoed),
                (Dir::Input, chunk(CID_COOKIE_ACK, 0), S::Established),
            ],
        );
    }

    #[test]
    fn abort_closes_established_association_both_ways() {
        for dir in [Dir::Input, Dir::Output, Dir::InputOnly] {
            let ev = event(&chunk(CID_ABORT, 0)).unwrap();
            assert_eq!(ev, SctpEvent::Abort);
            assert_eq!(
                next_state(dir, ev, SctpState::Established),
                SctpState::Closed
            );
        }
    }

    #[test]
    fn init_answered_by_abort_is_rejected() {
        let s = next_state(Dir::Input, SctpEvent::Init, SctpState::None);
        assert_eq!(
            next_state(Dir::Output, SctpEvent::Abort, s),
            SctpState::Rejected
        );
        // A fresh INIT after the rejection starts over in INIT.
        assert_eq!(
            next_state(Dir::Input, SctpEvent::Init, SctpState::Rejected),
            SctpState::Init
        );
    }

    #[test]
    fn abort_bundled_after_cookie_echo_or_cookie_ack_is_the_event() {
        for first in [CID_COOKIE_ECHO, CID_COOKIE_ACK] {
            let pkt = bundle(&[chunk(first, 5), chunk(CID_ABORT, 0)]);
            assert_eq!(event(&pkt), Some(SctpEvent::Abort), "after {first}");
        }
    }

    #[test]
    fn abort_after_other_first_chunks_is_ignored() {
        // The kernel only looks past COOKIE_ECHO / COOKIE_ACK.
        let pkt = bundle(&[chunk(CID_SHUTDOWN, 4), chunk(CID_ABORT, 0)]);
        assert_eq!(event(&pkt), Some(SctpEvent::Shutdown));
        let pkt = bundle(&[chunk(CID_SACK, 12), chunk(CID_ABORT, 0)]);
        assert_eq!(event(&pkt), Some(SctpEvent::Data));
    }

    #[test]
    fn cookie_chunk_with_length_below_header_does_not_look_further() {
        // Length 0 (malformed): no look-ahead, even though an ABORT type byte sits at offset 4.
        let pkt = [CID_COOKIE_ECHO, 0, 0, 0, CID_ABORT, 0, 0, 4];
        assert_eq!(event(&pkt), Some(SctpEvent::CookieEcho));
    }

    #[test]
    fn cookie_chunk_length_overrunning_the_packet_keeps_first_event() {
        // Claims 400 bytes, has 8: the ABORT look-ahead finds nothing and the kernel keeps the
        // first chunk's event.
        let pkt = [CID_COOKIE_ACK, 0, 0x01, 0x90, 0, 0, 0, 0];
        assert_eq!(event(&pkt), Some(SctpEvent::CookieAck));
        // A look-ahead header cut short (3 of 4 bytes) does not count either.
        let mut pkt = chunk(CID_COOKIE_ECHO, 4);
        pkt.extend_from_slice(&[CID_ABORT, 0, 0]);
        assert_eq!(event(&pkt), Some(SctpEvent::CookieEcho));
    }

    #[test]
    fn truncated_first_chunk_header_gives_no_event() {
        assert_eq!(event(&[]), None);
        assert_eq!(event(&[CID_INIT]), None);
        assert_eq!(event(&[CID_COOKIE_ECHO, 0, 0]), None);
        assert!(!may_start_conn(&[], true));
        assert!(!may_start_conn(&[CID_INIT, 0, 0], false));
    }

    #[test]
    fn chunk_types_map_to_kernel_events() {
        let want = [
            (CID_DATA, SctpEvent::Data),
            (CID_INIT, SctpEvent::Init),
            (CID_INIT_ACK, SctpEvent::InitAck),
            (CID_SACK, SctpEvent::Data),
            (CID_HEARTBEAT, SctpEvent::Data),
            (CID_HEARTBEAT_ACK, SctpEvent::Data),
            (CID_ABORT, SctpEvent::Abort),
            (CID_SHUTDOWN, SctpEvent::Shutdown),
            (CID_SHUTDOWN_ACK, SctpEvent::ShutdownAck),
            (CID_ERROR, SctpEvent::Error),
            (CID_COOKIE_ECHO, SctpEvent::CookieEcho),
            (CID_COOKIE_ACK, SctpEvent::CookieAck),
            (CID_ECN_ECNE, SctpEvent::Data),
            (CID_ECN_CWR, SctpEvent::Data),
            (CID_SHUTDOWN_COMPLETE, SctpEvent::ShutdownComplete),
        ];
        for (ty, ev) in want {
            assert_eq!(event(&chunk(ty, 0)), Some(ev), "chunk type {ty}");
        }
    }

    #[test]
    fn unknown_chunk_types_count_as_data() {
        // AUTH 15, I-DATA 64, RE-CONFIG 130, PAD 132, FORWARD-TSN 192, ASCONF 193, 255.
        for ty in [15u8, 64, 130, 132, 192, 193, 255] {
            assert_eq!(event(&chunk(ty, 8)), Some(SctpEvent::Data), "type {ty}");
        }
    }

    #[test]
    fn error_chunk_closes_only_while_cookie_echoed_on_input() {
        assert_eq!(
            next_state(Dir::Input, SctpEvent::Error, SctpState::CookieEchoed),
            SctpState::Closed
        );
        assert_eq!(
            next_state(Dir::Input, SctpEvent::Error, SctpState::Established),
            SctpState::Established
        );
    }

    #[test]
    fn only_established_is_active() {
        for s in SctpState::ALL {
            assert_eq!(is_active(s), s == SctpState::Established, "{}", s.name());
        }
    }

    #[test]
    fn only_init_first_may_start_a_conn_unless_sloppy() {
        assert!(may_start_conn(&chunk(CID_INIT, 16), false));
        assert!(!may_start_conn(&chunk(CID_DATA, 16), false));
        assert!(!may_start_conn(&chunk(CID_COOKIE_ECHO, 16), false));
        assert!(may_start_conn(&chunk(CID_DATA, 16), true));
        assert!(may_start_conn(&chunk(CID_COOKIE_ECHO, 16), true));
    }

    #[test]
    fn abort_never_starts_a_conn_even_when_sloppy() {
        assert!(!may_start_conn(&chunk(CID_ABORT, 0), false));
        assert!(!may_start_conn(&chunk(CID_ABORT, 0), true));
    }

    #[test]
    fn state_codes_and_names_match_kernel_enum() {
        let names = [
            "NONE",
            "INIT1",
            "INIT",
            "C-SENT",
            "C-REPLIED",
            "C-WAIT",
            "COOKIE",
            "C-ECHOED",
            "ESTABLISHED",
            "S-SENT",
            "S-RECEIVED",
            "S-ACK-SENT",
            "REJECTED",
            "CLOSED",
        ];
        for (i, name) in names.iter().enumerate() {
            let s = SctpState::from_u8(i as u8).unwrap();
            assert_eq!(s as usize, i);
            assert_eq!(s.name(), *name);
        }
        assert_eq!(SctpState::from_u8(N_STATES as u8), None);
        assert_eq!(SctpState::Closed as u8, 13);
        assert_eq!(SctpEvent::Abort as usize, N_EVENTS - 1);
    }

    #[test]
    fn event_never_panics_on_random_bytes() {
        // xorshift64: deterministic, no crates.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut buf = [0u8; 64];
        for _ in 0..50_000 {
            let len = (next() % 65) as usize;
            for b in buf.iter_mut() {
                *b = next() as u8;
            }
            // Half the time aim at the look-ahead path: a cookie chunk with a small length.
            if next() % 2 == 0 {
                buf[0] = if next() % 2 == 0 {
                    CID_COOKIE_ECHO
                } else {
                    CID_COOKIE_ACK
                };
                buf[2] = 0;
                buf[3] = (next() % 72) as u8;
            }
            let pkt = &buf[..len];
            let ev = event(pkt);
            assert_eq!(ev.is_some(), len >= 4);
            let may = may_start_conn(pkt, next() % 2 == 0);
            assert!(!may || len >= 4);
            if let Some(ev) = ev {
                let cur = SctpState::from_u8((next() % N_STATES as u64) as u8).unwrap();
                let _ = next_state(Dir::Input, ev, cur);
            }
        }
    }
}

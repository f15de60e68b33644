//! IPVS's TCP conn state machine (`ip_vs_proto_tcp.c`): the normal and secure_tcp transition
//! tables, default timeouts, active-state accounting and the may-this-packet-start-a-conn rule.
//! All lookups are bounded by the enums: nothing here panics or allocates.

use super::Dir;

/// Number of TCP states (IP_VS_TCP_S_LAST).
pub const N_STATES: usize = 11;

/// A TCP conn state, with the kernel's IP_VS_TCP_S_* values (synced and shown as such).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    Established,
    SynSent,
    SynRecv,
    FinWait,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    SynAck,
}

impl TcpState {
    /// Every state, in code order.
    pub const ALL: [TcpState; N_STATES] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The state with raw code `v`, if it is one.
    #[inline]
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(usize::from(v)).copied()
    }

    /// IPVS's name for the state (`tcp_state_name_table`).
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }
}

/// TCP header flag bits (byte 13 of the header).
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// Default timeouts in ms (`tcp_timeouts`).
pub const DEFAULT_TIMEOUTS_MS: [u32; N_STATES] = [
    2_000,   // NONE
    900_000, // ESTABLISHED
    120_000, // SYN_SENT
    60_000,  // SYN_RECV
    120_000, // FIN_WAIT
    120_000, // TIME_WAIT
    10_000,  // CLOSE
    60_000,  // CLOSE_WAIT
    30_000,  // LAST_ACK
    120_000, // LISTEN
    120_000, // SYNACK
];

// Short names as in the kernel source, so the tables below read like `tcp_states`.
// (No transition leads back to NONE, so it has no short name.)
const ES: TcpState = TcpState::Established;
const SS: TcpState = TcpState::SynSent;
const SR: TcpState = TcpState::SynRecv;
const FW: TcpState = TcpState::FinWait;
const TW: TcpState = TcpState::TimeWait;
const CL: TcpState = TcpState::Close;
const CW: TcpState = TcpState::CloseWait;
const LA: TcpState = TcpState::LastAck;
const LI: TcpState = TcpState::Listen;
const SA: TcpState = TcpState::SynAck;

/// One direction's rows: [event][current state], events in the kernel's row order.
type Rows = [[TcpState; N_STATES]; N_EVENTS];

/// Row index of each event, as tcp_state_idx numbers them (syn 0, fin 1, ack 2, rst 3).
const EV_SYN: usize = 0;
const EV_FIN: usize = 1;
const EV_ACK: usize = 2;
const EV_RST: usize = 3;
const N_EVENTS: usize = 4;

/// Both tables, indexed [secure][dir][event][state]; `Dir` discriminants are the row blocks
/// (Input 0, Output 1, InputOnly 2), matching TCP_DIR_INPUT/OUTPUT/INPUT_ONLY.
const TABLES: [[Rows; 3]; 2] = [TCP_STATES, TCP_STATES_DOS];

/// `tcp_states` (current kernel: an ACK in NONE on input goes to ESTABLISHED).
#[rustfmt::skip]
const TCP_STATES: [Rows; 3] = [
    // INPUT      NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [/* syn */  [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
     /* fin */  [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
     /* ack */  [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
     /* rst */  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR]],
    // OUTPUT
    [/* syn */  [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
     /* fin */  [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
     /* ack */  [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
     /* rst */  [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL]],
    // INPUT_ONLY
    [/* syn */  [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
     /* fin */  [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
     /* ack */  [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
     /* rst */  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL]],
];

/// `tcp_states_dos`, used while secure_tcp is on: half-open conns stay in SYN_RECV/SYNACK
/// until the dest answers, so a SYN flood cannot push them into ESTABLISHED.
#[rustfmt::skip]
const TCP_STATES_DOS: [Rows; 3] = [
    // INPUT      NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [/* syn */  [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
     /* fin */  [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
     /* ack */  [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
     /* rst */  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL]],
    // OUTPUT
    [/* syn */  [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
     /* fin */  [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
     /* ack */  [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
     /* rst */  [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL]],
    // INPUT_ONLY
    [/* syn */  [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
     /* fin */  [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
     /* ack */  [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
     /* rst */  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL]],
];

/// An ACK without SYN, FIN or RST: the packet of an established conn. Every row of every
/// table keeps an established conn established on it (tested), so the engine takes it
/// without a transition.
#[inline]
pub fn is_plain_ack(flags: u8) -> bool {
    flags & (SYN | FIN | RST | ACK) == ACK
}

/// The table row of a packet's flags, by the kernel's priority rst > syn > fin > ack.
#[inline]
fn event(flags: u8) -> Option<usize> {
    if flags & RST != 0 {
        Some(EV_RST)
    } else if flags & SYN != 0 {
        Some(EV_SYN)
    } else if flags & FIN != 0 {
        Some(EV_FIN)
    } else if flags & ACK != 0 {
        Some(EV_ACK)
    } else {
        None
    }
}

/// The state after a packet with TCP header flags `flags` travelling in `dir`, from the normal
/// table (`secure == false`) or the secure_tcp table. Event priority rst > syn > fin > ack;
/// none of those -> Close (as set_tcp_state).
///
/// `dir` is the table direction: for a NOOUTPUT conn pass `Dir::for_conn`'s answer.
#[inline]
pub fn next_state(secure: bool, dir: Dir, flags: u8, cur: TcpState) -> TcpState {
    match event(flags) {
        // All indices are bounded: bool < 2, Dir < 3, event < 4, TcpState < 11.
        Some(ev) => TABLES[usize::from(secure)][dir as usize][ev][cur as usize],
        // set_tcp_state starts from CLOSE and keeps it when no flag gives an event.
        None => TcpState::Close,
    }
}

/// IPVS's tcp_state_active: counted as active on the dest.
#[inline]
pub fn is_active(s: TcpState) -> bool {
    matches!(
        s,
        TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
    )
}

/// May a packet with these flags, missing the conn table, create a conn (tcp_conn_schedule)?
/// SYN without RST; with sloppy_tcp any packet without RST (to pick up flows mid-stream).
/// SYN+ACK is allowed on purpose (active FTP data conns).
#[inline]
pub fn may_start_conn(flags: u8, sloppy: bool) -> bool {
    flags & RST == 0 && (sloppy || flags & SYN != 0)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_plain_ack_keeps_an_established_conn_established() {
        for secure in [false, true] {
            for dir in [Dir::Input, Dir::Output, Dir::InputOnly] {
                for flags in 0..=u8::MAX {
                    if is_plain_ack(flags) {
                        let n = next_state(secure, dir, flags, TcpState::Established);
                        assert_eq!(n, TcpState::Established, "{secure} {dir:?} {flags:#x}");
                    }
                }
            }
        }
    }

    use super::*;

    const DIRS: [(&str, Dir); 3] = [
        ("INPUT", Dir::Input),
        ("OUTPUT", Dir::Output),
        ("INPUT_ONLY", Dir::InputOnly),
    ];
    const EVENTS: [(&str, u8); 4] = [("syn", SYN), ("fin", FIN), ("ack", ACK), ("rst", RST)];

    // The spec's tables (ipvs-semantics.md section 3), copied cell by cell; the columns are the
    // current state sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA.
    const SPEC_NORMAL: &str = "
        INPUT      syn | sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSR
        INPUT      fin | sCL sCW sSS sTW sTW sTW sCL sCW sLA sLI sTW
        INPUT      ack | sES sES sSS sES sFW sTW sCL sCW sCL sLI sES
        INPUT      rst | sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sSR
        OUTPUT     syn | sSS sES sSS sSR sSS sSS sSS sSS sSS sLI sSR
        OUTPUT     fin | sTW sFW sSS sTW sFW sTW sCL sTW sLA sLI sTW
        OUTPUT     ack | sES sES sSS sES sFW sTW sCL sCW sLA sES sES
        OUTPUT     rst | sCL sCL sSS sCL sCL sTW sCL sCL sCL sCL sCL
        INPUT_ONLY syn | sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSR
        INPUT_ONLY fin | sCL sFW sSS sTW sFW sTW sCL sCW sLA sLI sTW
        INPUT_ONLY ack | sES sES sSS sES sFW sTW sCL sCW sCL sLI sES
        INPUT_ONLY rst | sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL
    ";
    const SPEC_SECURE: &str = "
        INPUT      syn | sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSA
        INPUT      fin | sCL sCW sSS sTW sTW sTW sCL sCW sLA sLI sSA
        INPUT      ack | sES sES sSS sSR sFW sTW sCL sCW sCL sLI sSA
        INPUT      rst | sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL
        OUTPUT     syn | sSS sES sSS sSA sSS sSS sSS sSS sSS sLI sSA
        OUTPUT     fin | sTW sFW sSS sTW sFW sTW sCL sTW sLA sLI sTW
        OUTPUT     ack | sES sES sSS sES sFW sTW sCL sCW sLA sES sES
        OUTPUT     rst | sCL sCL sSS sCL sCL sTW sCL sCL sCL sCL sCL
        INPUT_ONLY syn | sSA sES sES sSR sSA sSA sSA sSA sSA sSA sSA
        INPUT_ONLY fin | sCL sFW sSS sTW sFW sTW sCL sCW sLA sLI sTW
        INPUT_ONLY ack | sES sES sSS sES sFW sTW sCL sCW sCL sLI sES
        INPUT_ONLY rst | sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL
    ";

    fn abbrev(s: &str) -> TcpState {
        match s {
            "sNO" => TcpState::None,
            "sES" => TcpState::Established,
            "sSS" => TcpState::SynSent,
            "sSR" => TcpState::SynRecv,
            "sFW" => TcpState::FinWait,
            "sTW" => TcpState::TimeWait,
            "sCL" => TcpState::Close,
            "sCW" => TcpState::CloseWait,
            "sLA" => TcpState::LastAck,
            "sLI" => TcpState::Listen,
            "sSA" => TcpState::SynAck,
            other => panic!("bad state abbreviation {other}"),
        }
    }

    /// Check `next_state` against every cell of a spec table; returns the cells checked.
    fn check_against_spec(secure: bool, table: &str) -> usize {
        let mut cells = 0;
        let mut rows = 0;
        for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (head, cols) = line.split_once('|').unwrap();
            let mut head = head.split_whitespace();
            let (dname, ename) = (head.next().unwrap(), head.next().unwrap());
            let dir = DIRS.iter().find(|d| d.0 == dname).unwrap().1;
            let flags = EVENTS.iter().find(|e| e.0 == ename).unwrap().1;
            let want: Vec<TcpState> = cols.split_whitespace().map(abbrev).collect();
            assert_eq!(want.len(), N_STATES, "row {line}");
            for (cur, want) in TcpState::ALL.iter().zip(want) {
                let got = next_state(secure, dir, flags, *cur);
                assert_eq!(
                    got,
                    want,
                    "secure={secure} {dname} {ename} from {}: got {}, spec {}",
                    cur.name(),
                    got.name(),
                    want.name()
                );
                cells += 1;
            }
            rows += 1;
        }
        assert_eq!(rows, 12);
        cells
    }

    #[test]
    fn normal_table_matches_spec_in_every_cell() {
        assert_eq!(check_against_spec(false, SPEC_NORMAL), 3 * 4 * 11);
    }

    #[test]
    fn secure_table_matches_spec_in_every_cell() {
        assert_eq!(check_against_spec(true, SPEC_SECURE), 3 * 4 * 11);
    }

    #[test]
    fn packet_without_syn_fin_ack_rst_closes_the_conn() {
        for secure in [false, true] {
            for (_, dir) in DIRS {
                for cur in TcpState::ALL {
                    // PSH, URG, ECE, CWR alone give no event.
                    for flags in [0u8, 0x08, 0x20, 0x40, 0x80, 0xe8] {
                        assert_eq!(next_state(secure, dir, flags, cur), TcpState::Close);
                    }
                }
            }
        }
    }

    #[test]
    fn rst_wins_over_syn() {
        for (_, dir) in DIRS {
            for cur in TcpState::ALL {
                assert_eq!(
                    next_state(false, dir, SYN | RST, cur),
                    next_state(false, dir, RST, cur)
                );
            }
        }
        // A SYN alone would make it SYN_RECV; with RST it closes.
        assert_eq!(
            next_state(false, Dir::Input, SYN | RST, TcpState::None),
            TcpState::Close
        );
    }

    #[test]
    fn syn_wins_over_fin() {
        for (_, dir) in DIRS {
            for cur in TcpState::ALL {
                assert_eq!(
                    next_state(true, dir, SYN | FIN, cur),
                    next_state(true, dir, SYN, cur)
                );
            }
        }
        assert_eq!(
            next_state(false, Dir::Input, SYN | FIN, TcpState::None),
            TcpState::SynRecv
        );
    }

    #[test]
    fn fin_wins_over_ack() {
        for (_, dir) in DIRS {
            for cur in TcpState::ALL {
                assert_eq!(
                    next_state(false, dir, FIN | ACK, cur),
                    next_state(false, dir, FIN, cur)
                );
            }
        }
        assert_eq!(
            next_state(false, Dir::Input, FIN | ACK, TcpState::Established),
            TcpState::CloseWait
        );
    }

    #[test]
    fn ack_without_other_events_uses_ack_row() {
        // PSH+ACK is an ACK event: ESTABLISHED stays.
        assert_eq!(
            next_state(false, Dir::Input, ACK | 0x08, TcpState::Established),
            TcpState::Established
        );
    }

    #[test]
    fn secure_tcp_input_only_syn_lands_in_synack() {
        assert_eq!(
            next_state(true, Dir::InputOnly, SYN, TcpState::None),
            TcpState::SynAck
        );
        assert_eq!(
            next_state(false, Dir::InputOnly, SYN, TcpState::None),
            TcpState::SynRecv
        );
    }

    #[test]
    fn secure_tcp_client_ack_keeps_half_open_conn_in_syn_recv() {
        let s = next_state(true, Dir::Input, SYN, TcpState::None);
        assert_eq!(s, TcpState::SynRecv);
        assert_eq!(next_state(true, Dir::Input, ACK, s), TcpState::SynRecv);
        // Without secure_tcp the client's ACK alone establishes it.
        assert_eq!(next_state(false, Dir::Input, ACK, s), TcpState::Established);
        // The dest's SYN+ACK (OUTPUT SYN) moves it to SYNACK, then the client ACK establishes.
        let s = next_state(true, Dir::Output, SYN | ACK, s);
        assert_eq!(s, TcpState::SynAck);
        assert_eq!(next_state(true, Dir::Output, ACK, s), TcpState::Established);
    }

    #[test]
    fn ack_in_none_establishes_on_input_sides() {
        // Current kernels; pins the sloppy_tcp / synced-conn pickup.
        for secure in [false, true] {
            for dir in [Dir::Input, Dir::InputOnly, Dir::Output] {
                assert_eq!(
                    next_state(secure, dir, ACK, TcpState::None),
                    TcpState::Established
                );
            }
        }
    }

    #[test]
    fn nat_three_way_handshake_and_close_walks_expected_states() {
        let steps = [
            (Dir::Input, SYN, TcpState::SynRecv),
            (Dir::Output, SYN | ACK, TcpState::SynRecv),
            (Dir::Input, ACK, TcpState::Established),
            (Dir::Input, FIN | ACK, TcpState::CloseWait),
            (Dir::Output, ACK, TcpState::CloseWait),
            (Dir::Output, FIN | ACK, TcpState::TimeWait),
            (Dir::Input, ACK, TcpState::TimeWait),
        ];
        let mut s = TcpState::None;
        for (dir, flags, want) in steps {
            s = next_state(false, dir, flags, s);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn active_states_are_established_and_handshake_states() {
        let active = [
            TcpState::Established,
            TcpState::SynSent,
            TcpState::SynRecv,
            TcpState::SynAck,
        ];
        for s in TcpState::ALL {
            assert_eq!(is_active(s), active.contains(&s), "{}", s.name());
        }
    }

    #[test]
    fn syn_without_rst_may_start_a_conn() {
        assert!(may_start_conn(SYN, false));
        assert!(may_start_conn(SYN | ACK, false)); // active FTP data
        assert!(!may_start_conn(SYN | RST, false));
        assert!(!may_start_conn(ACK, false));
        assert!(!may_start_conn(FIN | ACK, false));
        assert!(!may_start_conn(0, false));
    }

    #[test]
    fn sloppy_tcp_lets_any_packet_without_rst_start_a_conn() {
        assert!(may_start_conn(ACK, true));
        assert!(may_start_conn(FIN, true));
        assert!(may_start_conn(0, true));
        assert!(may_start_conn(SYN, true));
        assert!(!may_start_conn(RST, true));
        assert!(!may_start_conn(RST | ACK, true));
        assert!(!may_start_conn(SYN | RST, true));
    }

    #[test]
    fn state_codes_and_names_round_trip() {
        let names = [
            "NONE",
            "ESTABLISHED",
            "SYN_SENT",
            "SYN_RECV",
            "FIN_WAIT",
            "TIME_WAIT",
            "CLOSE",
            "CLOSE_WAIT",
            "LAST_ACK",
            "LISTEN",
            "SYNACK",
        ];
        for (i, name) in names.iter().enumerate() {
            let s = TcpState::from_u8(i as u8).unwrap();
            assert_eq!(s as usize, i);
            assert_eq!(s.name(), *name);
        }
        assert_eq!(TcpState::from_u8(N_STATES as u8), None);
        assert_eq!(TcpState::from_u8(255), None);
    }
}

//! IPVS protocol handling: the TCP, UDP and SCTP state machines (`tcp`, `udp`, `sctp`) and the
//! per-state timeout table that `ipvsadm --set` edits. Pure table lookups on the per-packet
//! path: nothing in this module or its children allocates or panics.

pub mod sctp;
pub mod tcp;
pub mod udp;

/// An IPVS-balanced transport protocol, with its IP protocol number as discriminant.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum Proto {
    Tcp = 6,
    Udp = 17,
    Sctp = 132,
}

impl Proto {
    /// The protocol of IP protocol number `p`, if IPVS balances it.
    #[inline]
    pub fn from_u8(p: u8) -> Option<Proto> {
        match p {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            132 => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// The name IPVS prints for the protocol (`ip_vs_protocol.name`).
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
        }
    }
}

/// Direction for the state tables: IPVS's TCP_DIR_INPUT / OUTPUT / INPUT_ONLY.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Dir {
    /// Client -> VIP, on a conn whose replies the LB also sees (NAT).
    Input,
    /// Dest -> client, seen only with NAT.
    Output,
    /// Client -> VIP on a NOOUTPUT conn (DR, TUN): the LB never sees the replies.
    InputOnly,
}

impl Dir {
    /// The table direction for a packet travelling in `self` (`Input` or `Output`) on a conn
    /// whose NOOUTPUT flag is `nooutput`, as set_tcp_state and set_sctp_state pick it: a
    /// NOOUTPUT conn uses the INPUT_ONLY rows, except that an OUTPUT packet uses the OUTPUT
    /// rows and (the caller's part) clears NOOUTPUT, since the LB evidently sees replies.
    #[inline]
    pub fn for_conn(self, nooutput: bool) -> Dir {
        match (self, nooutput) {
            (Dir::Output, _) => Dir::Output,
            (_, true) => Dir::InputOnly,
            (d, false) => d,
        }
    }
}

/// Largest value `ipvsadm --set` accepts, in seconds. ip_vs_set_timeout refuses anything above
/// INT_MAX / HZ with EINVAL; this is that bound at HZ = 1000, which also keeps the value in
/// milliseconds within a u32. The control layer checks it; `set_tcp_tcpfin_udp` saturates.
pub const MAX_TIMEOUT_S: u32 = i32::MAX as u32 / 1000;

/// The timeout IPVS gives a state outside its table: every kernel timeout table has a trailing
/// `[S_LAST] = 2*HZ` entry, so we answer that rather than fail.
pub const FALLBACK_TIMEOUT_MS: u32 = 2_000;

/// Per-state timeouts in milliseconds (IPVS defaults via Default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: [u32; tcp::N_STATES],
    pub udp: u32,
    pub sctp: [u32; sctp::N_STATES],
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: tcp::DEFAULT_TIMEOUTS_MS,
            udp: udp::DEFAULT_TIMEOUT_MS,
            sctp: sctp::DEFAULT_TIMEOUTS_MS,
        }
    }
}

impl Timeouts {
    /// `ipvsadm --set tcp tcpfin udp` (seconds; 0 leaves that value unchanged), as ip_vs_set_timeout:
    /// tcp -> ESTABLISHED, tcpfin -> FIN_WAIT, udp -> UDP NORMAL.
    ///
    /// Values above [`MAX_TIMEOUT_S`] saturate here; the kernel rejects them, so the control
    /// layer should too before calling this.
    pub fn set_tcp_tcpfin_udp(&mut self, tcp_s: u32, tcpfin_s: u32, udp_s: u32) {
        let ms = |s: u32| s.saturating_mul(1000);
        if tcp_s != 0 {
            self.tcp[tcp::TcpState::Established as usize] = ms(tcp_s);
        }
        if tcpfin_s != 0 {
            self.tcp[tcp::TcpState::FinWait as usize] = ms(tcpfin_s);
        }
        if udp_s != 0 {
            self.udp = ms(udp_s);
        }
    }

    /// The three values in seconds as `ipvsadm -L --timeout` shows them.
    /// (Whole seconds, truncated, as __ip_vs_get_timeouts divides by HZ.)
    pub fn tcp_tcpfin_udp(&self) -> (u32, u32, u32) {
        (
            self.tcp[tcp::TcpState::Established as usize] / 1000,
            self.tcp[tcp::TcpState::FinWait as usize] / 1000,
            self.udp / 1000,
        )
    }

    /// Timeout of state `state` (a raw u8 state code) for protocol `proto`, ms.
    /// A code outside the protocol's states gets [`FALLBACK_TIMEOUT_MS`].
    #[inline]
    pub fn of(&self, proto: Proto, state: u8) -> u32 {
        let i = usize::from(state);
        match proto {
            Proto::Tcp => self.tcp.get(i).copied().unwrap_or(FALLBACK_TIMEOUT_MS),
            Proto::Udp if state == udp::STATE_NORMAL => self.udp,
            Proto::Udp => FALLBACK_TIMEOUT_MS,
            Proto::Sctp => self.sctp.get(i).copied().unwrap_or(FALLBACK_TIMEOUT_MS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sctp::SctpState;
    use super::tcp::TcpState;
    use super::*;

    #[test]
    fn proto_numbers_round_trip_and_others_are_refused() {
        for p in [Proto::Tcp, Proto::Udp, Proto::Sctp] {
            assert_eq!(Proto::from_u8(p as u8), Some(p));
        }
        assert_eq!(Proto::from_u8(1), None); // ICMP is not a balanced protocol
        assert_eq!(Proto::from_u8(0), None);
        assert_eq!(Proto::from_u8(255), None);
        assert_eq!(Proto::Tcp.name(), "TCP");
        assert_eq!(Proto::Udp.name(), "UDP");
        assert_eq!(Proto::Sctp.name(), "SCTP");
    }

    #[test]
    fn default_tcp_timeouts_match_spec_seconds() {
        // Spec section 3: NONE 2, ES 900, SS 120, SR 60, FW 120, TW 120, CL 10, CW 60, LA 30,
        // LI 120, SA 120.
        let spec_s = [
            (TcpState::None, 2),
            (TcpState::Established, 900),
            (TcpState::SynSent, 120),
            (TcpState::SynRecv, 60),
            (TcpState::FinWait, 120),
            (TcpState::TimeWait, 120),
            (TcpState::Close, 10),
            (TcpState::CloseWait, 60),
            (TcpState::LastAck, 30),
            (TcpState::Listen, 120),
            (TcpState::SynAck, 120),
        ];
        let t = Timeouts::default();
        for (s, secs) in spec_s {
            assert_eq!(t.of(Proto::Tcp, s as u8), secs * 1000, "{}", s.name());
        }
    }

    #[test]
    fn default_udp_timeout_is_300_seconds() {
        let t = Timeouts::default();
        assert_eq!(t.of(Proto::Udp, udp::STATE_NORMAL), 300_000);
    }

    #[test]
    fn default_sctp_timeouts_follow_kernel_sctp_timeouts() {
        // Kernel: ES 15 min, INIT1 and REJECTED 4 s, NONE 2 s, every other state
        // IP_VS_SCTP_MAX_RTO = 61 s (the spec's "10-20 s" is from older kernels).
        let t = Timeouts::default();
        for v in 0..sctp::N_STATES as u8 {
            let s = SctpState::from_u8(v).unwrap();
            let want = match s {
                SctpState::None => 2_000,
                SctpState::Init1 | SctpState::Rejected => 4_000,
                SctpState::Established => 900_000,
                _ => 61_000,
            };
            assert_eq!(t.of(Proto::Sctp, v), want, "{}", s.name());
        }
    }

    #[test]
    fn set_timeouts_writes_established_finwait_and_udp() {
        let mut t = Timeouts::default();
        t.set_tcp_tcpfin_udp(3600, 30, 60);
        assert_eq!(t.tcp_tcpfin_udp(), (3600, 30, 60));
        assert_eq!(t.of(Proto::Tcp, TcpState::Established as u8), 3_600_000);
        assert_eq!(t.of(Proto::Tcp, TcpState::FinWait as u8), 30_000);
        assert_eq!(t.of(Proto::Udp, udp::STATE_NORMAL), 60_000);
        // Nothing else moves: TIME_WAIT is not "tcpfin".
        assert_eq!(t.of(Proto::Tcp, TcpState::TimeWait as u8), 120_000);
        assert_eq!(t.sctp, sctp::DEFAULT_TIMEOUTS_MS);
    }

    #[test]
    fn set_timeouts_zero_leaves_value_unchanged() {
        let mut t = Timeouts::default();
        t.set_tcp_tcpfin_udp(0, 0, 0);
        assert_eq!(t, Timeouts::default());
        t.set_tcp_tcpfin_udp(0, 45, 0);
        assert_eq!(t.tcp_tcpfin_udp(), (900, 45, 300));
        t.set_tcp_tcpfin_udp(100, 0, 0);
        assert_eq!(t.tcp_tcpfin_udp(), (100, 45, 300));
        t.set_tcp_tcpfin_udp(0, 0, 7);
        assert_eq!(t.tcp_tcpfin_udp(), (100, 45, 7));
    }

    #[test]
    fn default_timeouts_show_as_900_120_300() {
        assert_eq!(Timeouts::default().tcp_tcpfin_udp(), (900, 120, 300));
    }

    #[test]
    fn set_timeouts_saturates_instead_of_overflowing() {
        let mut t = Timeouts::default();
        t.set_tcp_tcpfin_udp(u32::MAX, MAX_TIMEOUT_S, 1);
        assert_eq!(t.tcp[TcpState::Established as usize], u32::MAX);
        assert_eq!(t.tcp[TcpState::FinWait as usize], MAX_TIMEOUT_S * 1000);
    }

    #[test]
    fn timeout_of_unknown_state_is_the_kernel_fallback() {
        let t = Timeouts::default();
        assert_eq!(t.of(Proto::Tcp, tcp::N_STATES as u8), FALLBACK_TIMEOUT_MS);
        assert_eq!(t.of(Proto::Tcp, 255), FALLBACK_TIMEOUT_MS);
        assert_eq!(t.of(Proto::Udp, 1), FALLBACK_TIMEOUT_MS);
        assert_eq!(t.of(Proto::Sctp, sctp::N_STATES as u8), FALLBACK_TIMEOUT_MS);
    }

    #[test]
    fn nooutput_conn_uses_input_only_rows_except_for_output_packets() {
        assert_eq!(Dir::Input.for_conn(false), Dir::Input);
        assert_eq!(Dir::Output.for_conn(false), Dir::Output);
        assert_eq!(Dir::Input.for_conn(true), Dir::InputOnly);
        assert_eq!(Dir::Output.for_conn(true), Dir::Output);
        assert_eq!(Dir::InputOnly.for_conn(false), Dir::InputOnly);
        assert_eq!(Dir::InputOnly.for_conn(true), Dir::InputOnly);
    }
}

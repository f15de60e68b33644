//! IPVS's UDP "state machine" (`ip_vs_proto_udp.c`): one state, NORMAL, whose timeout every
//! packet re-arms. Nothing here panics.
//!
//! UDP conns are never active: they stay counted as inactive on their dest for life. A packet
//! in the OUTPUT direction (a dest's reply, seen only with NAT) marks the controlling template
//! ASSURED (udp_state_transition calls ip_vs_control_assure_ct); the caller does that.

/// Default timeout of the NORMAL state, ms (`udp_timeouts`: 5 minutes).
pub const DEFAULT_TIMEOUT_MS: u32 = 300_000;

/// The only UDP state (IP_VS_UDP_S_NORMAL).
pub const STATE_NORMAL: u8 = 0;

/// IPVS's name for a UDP state (`udp_state_name`): "UDP" for NORMAL. Like the kernel, a code
/// outside the table gives "ERR!".
pub fn name(state: u8) -> &'static str {
    if state == STATE_NORMAL {
        "UDP"
    } else {
        "ERR!"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_state_is_named_udp_and_others_err() {
        assert_eq!(name(STATE_NORMAL), "UDP");
        assert_eq!(name(1), "ERR!");
        assert_eq!(name(255), "ERR!");
    }
}

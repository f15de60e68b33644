//! The fast path's classifier: the facts the load balancer needs from the common frame (an
//! untagged IPv4 TCP or UDP packet, no options, not a fragment) read at fixed offsets, with
//! no [`ParsedFrame`](super::ParsedFrame) built.
//!
//! The contract, property-tested against [`parse_frame`](super::parse_frame): whenever
//! [`classify4`] returns a summary, `parse_frame` accepts the frame and agrees on every field.
//! Anything else (VLAN tags, options, fragments, IPv6, ICMP, SCTP, a short or odd header)
//! returns `None` and takes the general path, which counts it under its reason. No panics:
//! every read is inside the one length check at the top.

/// Offsets in an untagged frame with a 20-byte IPv4 header.
const L3: usize = 14;
const L4: usize = L3 + 20;
/// Ethernet + IPv4 + the shorter transport header (UDP).
const MIN_LEN: usize = L4 + 8;

/// What the fast path knows of a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fast4 {
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
    pub ttl: u8,
    /// The IP packet's length (the frame may carry Ethernet padding after it).
    pub ip_len: u16,
}

impl Fast4 {
    /// Frame offset of the IPv4 header.
    pub const L3: usize = L3;
    /// Frame offset of the transport header.
    pub const L4: usize = L4;
}

#[inline]
fn be16(f: &[u8; MIN_LEN], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

#[inline]
fn be32(f: &[u8; MIN_LEN], at: usize) -> u32 {
    u32::from_be_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]])
}

/// Classify a frame for the fast path (see the module doc); `None`: take the general path.
#[inline]
pub fn classify4(frame: &[u8]) -> Option<Fast4> {
    let h: &[u8; MIN_LEN] = frame.get(..MIN_LEN)?.try_into().ok()?;
    // IPv4, version 4 with a 20-byte header, neither MF nor a fragment offset.
    if be16(h, 12) != 0x0800 || h[L3] != 0x45 || be16(h, L3 + 6) & 0x3fff != 0 {
        return None;
    }
    let ip_len = be16(h, L3 + 2);
    let l4_len = usize::from(ip_len).checked_sub(20)?;
    if L3 + usize::from(ip_len) > frame.len() {
        return None;
    }
    let proto = h[L3 + 9];
    let tcp_flags = match proto {
        6 => {
            // The whole TCP header, options included, inside the IP packet.
            let doff = usize::from(*frame.get(L4 + 12)? >> 4) * 4;
            if doff < 20 || l4_len < doff {
                return None;
            }
            *frame.get(L4 + 13)?
        }
        17 => {
            let udp_len = usize::from(be16(h, L4 + 4));
            if udp_len < 8 || l4_len < udp_len {
                return None;
            }
            0
        }
        _ => return None,
    };
    Some(Fast4 {
        saddr: be32(h, L3 + 12),
        daddr: be32(h, L3 + 16),
        sport: be16(h, L4),
        dport: be16(h, L4 + 2),
        proto,
        tcp_flags,
        ttl: h[L3 + 8],
        ip_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_frame() -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4([11, 0, 0, 1], [10, 0, 0, 100], 64)
            .tcp(1234, 80, 1, 64240)
            .ack(1)
            .write(&mut v, b"")
            .unwrap();
        v
    }

    #[test]
    fn classifies_an_established_tcp_frame() {
        let f = classify4(&tcp_frame()).unwrap();
        assert_eq!(
            (f.saddr, f.daddr, f.sport, f.dport, f.proto, f.ttl, f.ip_len),
            (0x0b00_0001, 0x0a00_0064, 1234, 80, 6, 64, 40)
        );
        assert_eq!(f.tcp_flags, 0x10);
    }

    #[test]
    fn leaves_fragments_options_and_short_frames_to_the_general_path() {
        let mut mf = tcp_frame();
        mf[L3 + 6] |= 0x20;
        assert_eq!(classify4(&mf), None);
        let mut opts = tcp_frame();
        opts[L3] = 0x46;
        assert_eq!(classify4(&opts), None);
        let f = tcp_frame();
        assert_eq!(classify4(&f[..f.len() - 1]), None);
        let mut doff = tcp_frame();
        doff[L4 + 12] = 0x40;
        assert_eq!(classify4(&doff), None);
    }
}

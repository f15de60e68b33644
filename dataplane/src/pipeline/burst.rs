//! Staging an rx burst: each frame is classified (the fast path's summary, or the general
//! path) and its conn's index bucket prefetched, then the entry that bucket names, then it is
//! processed, so a frame's two dependent memory reads overlap the frames before it.

use std::net::Ipv6Addr;

use super::buf::Buf;
use super::fam::Af;
use super::ndisc::v6;
use super::worker::{Cx, Out, Worker};
use crate::addr::{Family, V4, V6};
use crate::conn::{ConnKey, BURST, NO_HINT};
use crate::wire;

impl<B: Buf> Worker<B> {
    /// A burst in three stages, [`STAGE`] frames apart, so that a frame's two dependent
    /// memory reads (its conn's index bucket, then the entry it names) are in flight while
    /// the frames before it are processed: (1) classify and prefetch the bucket, (2) prefetch
    /// the entry, (3) process. Frames leave in arrival order.
    pub(super) fn burst<O: FnMut(Out<B>)>(&mut self, cx: &mut Cx<'_, O>, bufs: &mut [Option<B>]) {
        let n = bufs.len().min(BURST);
        // The headers the classifier reads first (a NIC's DMA may have left them in memory).
        for b in bufs.iter().flatten() {
            crate::mem::prefetch_read(b.data());
        }
        // Stage 1's decisions by field: an array of enums would pack and unpack the fast
        // summary at every stage.
        let mut kind = [Plan::Empty; BURST];
        let mut hash = [0u64; BURST];
        let mut fast = [wire::fast::Fast4::default(); BURST];
        let mut hint = [NO_HINT; BURST];
        let mac = cx.pres.ports.get(usize::from(cx.port)).map(|p| p.mac);
        for i in 0..n + 2 * STAGE {
            if let Some(b) = bufs.get(i).and_then(Option::as_ref) {
                let (k, h) = self.plan(b.data(), mac, &mut fast[i]);
                (kind[i], hash[i]) = (k, h);
                match k.family() {
                    Some(false) => self.f4.shard.table().prefetch_bucket(h),
                    Some(true) => self.f6.shard.table().prefetch_bucket(h),
                    None => {}
                }
            }
            if let Some(j) = i.checked_sub(STAGE).filter(|&j| j < n) {
                hint[j] = match kind[j].family() {
                    Some(false) => self.f4.shard.table().prefetch_entry(hash[j]),
                    Some(true) => self.f6.shard.table().prefetch_entry(hash[j]),
                    None => NO_HINT,
                };
            }
            let Some(k) = i.checked_sub(2 * STAGE).filter(|&k| k < n) else {
                continue;
            };
            let Some(b) = bufs[k].take() else {
                continue;
            };
            self.counters.rx.inc();
            // The staged lookup keyed a frame to a VIP as inbound, others as replies.
            match kind[k] {
                Plan::FastIn => self.lb_fast(cx, b, &fast[k], (hint[k], NO_HINT)),
                Plan::FastReply => self.lb_fast(cx, b, &fast[k], (NO_HINT, hint[k])),
                // The general path takes the hint to its engine call ([`Cx::hint`]).
                _ => {
                    cx.hint = hint[k];
                    self.input(cx, b);
                    cx.hint = NO_HINT;
                }
            }
        }
    }

    /// Stage 1 for one frame: the fast path's summary of it (into `fast`), or the general
    /// path; with the index hash of its conn when its flow can be read
    /// ([`Worker::staged_key`]).
    #[inline]
    fn plan(&self, f: &[u8], mac: Option<[u8; 6]>, fast: &mut wire::fast::Fast4) -> (Plan, u64) {
        if let Some(ff) = wire::fast::classify4(f).filter(|_| mac.is_some_and(|m| f[..6] == m)) {
            *fast = ff;
            let (hash, to_vip) = self.staged_key(ConnKey {
                proto: ff.proto,
                caddr: V4(ff.saddr),
                cport: ff.sport,
                addr: V4(ff.daddr),
                port: ff.dport,
                template: false,
            });
            return (
                if to_vip {
                    Plan::FastIn
                } else {
                    Plan::FastReply
                },
                hash,
            );
        }
        match flow_hint(f) {
            Some(Hint::V4(k)) => (Plan::General4, self.staged_key(k).0),
            Some(Hint::V6(k)) => (Plan::General6, self.staged_key(k).0),
            None => (Plan::General, 0),
        }
    }

    /// The index hash a frame's conn is looked up by, and whether it goes to a VIP: a frame to
    /// a VIP is keyed by its client as sent, anything else as a reply (client = destination).
    #[inline(always)]
    fn staged_key<A: Af>(&self, k: ConnKey<A>) -> (u64, bool) {
        let fam = A::fam_ref(self);
        let to_vip = fam.vips.contains(&k.addr);
        let k = if to_vip { k } else { reply_key(k) };
        (fam.shard.table().hash_of(&k), to_vip)
    }
}

/// How many frames apart the stages of [`Worker::burst`] run: enough for a bucket to arrive
/// from memory while that many frames are processed, few enough that a short burst still
/// overlaps its misses.
const STAGE: usize = 16;

/// Stage 1's decision for a frame of a burst.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plan {
    Empty,
    /// The fast path, keyed inbound (to a VIP).
    FastIn,
    /// The fast path, keyed as a reply (the client is the destination).
    FastReply,
    /// The general path, with the index hash of an IPv4 / IPv6 flow.
    General4,
    General6,
    /// The general path, no flow read.
    General,
}

impl Plan {
    /// Whether the frame's conn lookup is IPv6, if it has one.
    #[inline]
    fn family(self) -> Option<bool> {
        match self {
            Plan::FastIn | Plan::FastReply | Plan::General4 => Some(false),
            Plan::General6 => Some(true),
            Plan::Empty | Plan::General => None,
        }
    }
}

/// The lookup key of a reply: its client is the destination (the index hashes the client).
#[inline]
fn reply_key<A: Family>(k: ConnKey<A>) -> ConnKey<A> {
    ConnKey {
        proto: k.proto,
        caddr: k.addr,
        cport: k.port,
        addr: k.caddr,
        port: k.cport,
        template: false,
    }
}

enum Hint {
    V4(ConnKey<V4>),
    V6(ConnKey<V6>),
}

/// The inbound lookup key of an unfragmented TCP/UDP/SCTP frame (untagged or with one or two
/// VLAN tags), read at fixed offsets for the prefetch pass only (anything else simply is not
/// prefetched).
#[inline]
fn flow_hint(f: &[u8]) -> Option<Hint> {
    let be16 = |at: usize| Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]));
    // Each header read as one fixed-size array: one bounds check, not one per field.
    let ports = |l4: usize, proto: u8| -> Option<(u16, u16)> {
        matches!(proto, 6 | 17 | 132).then_some(())?;
        let p: &[u8; 4] = f.get(l4..l4 + 4)?.try_into().ok()?;
        Some((
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        ))
    };
    // Up to two VLAN tags (802.1Q, 802.1ad), as `parse_frame` takes them.
    let (mut ethertype, mut l3) = (be16(12)?, 14);
    for _ in 0..2 {
        if !matches!(ethertype, 0x8100 | 0x88a8) {
            break;
        }
        ethertype = be16(l3 + 2)?;
        l3 += 4;
    }
    match ethertype {
        0x0800 => {
            let h: &[u8; 20] = f.get(l3..l3 + 20)?.try_into().ok()?;
            if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
                return None;
            }
            let (sp, dp) = ports(l3 + usize::from(h[0] & 0x0f) * 4, h[9])?;
            Some(Hint::V4(ConnKey {
                proto: h[9],
                caddr: V4(u32::from_be_bytes([h[12], h[13], h[14], h[15]])),
                cport: sp,
                addr: V4(u32::from_be_bytes([h[16], h[17], h[18], h[19]])),
                port: dp,
                template: false,
            }))
        }
        0x86dd => {
            let h: &[u8; 40] = f.get(l3..l3 + 40)?.try_into().ok()?;
            let (sp, dp) = ports(l3 + 40, h[6])?;
            let a = |at: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&h[at..at + 16]);
                v6(Ipv6Addr::from(o))
            };
            Some(Hint::V6(ConnKey {
                proto: h[6],
                caddr: a(8),
                cport: sp,
                addr: a(24),
                port: dp,
                template: false,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, VlanId};

    fn key4(k: Option<Hint>) -> Option<(u8, u32, u16, u32, u16)> {
        match k? {
            Hint::V4(k) => Some((k.proto, k.caddr.0, k.cport, k.addr.0, k.port)),
            Hint::V6(_) => None,
        }
    }

    #[test]
    fn flow_hint_reads_untagged_and_tagged_frames() {
        let (src, dst) = ([192, 168, 7, 1], [10, 0, 0, 100]);
        let want = Some((
            6,
            u32::from_be_bytes(src),
            40000,
            u32::from_be_bytes(dst),
            80,
        ));
        let vid = |v| VlanId::try_new(v).unwrap();
        let eth = || PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1]);
        let mut plain = Vec::new();
        eth()
            .ipv4(src, dst, 64)
            .tcp(40000, 80, 1, 100)
            .write(&mut plain, b"")
            .unwrap();
        let mut one = Vec::new();
        eth()
            .single_vlan(vid(42))
            .ipv4(src, dst, 64)
            .tcp(40000, 80, 1, 100)
            .write(&mut one, b"")
            .unwrap();
        let mut two = Vec::new();
        eth()
            .double_vlan(vid(7), vid(42))
            .ipv4(src, dst, 64)
            .tcp(40000, 80, 1, 100)
            .write(&mut two, b"")
            .unwrap();
        for f in [&plain, &one, &two] {
            assert_eq!(key4(flow_hint(f)), want, "{f:02x?}");
        }
        let (s6, d6) = (
            [0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7],
            [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        );
        let mut six = Vec::new();
        eth()
            .single_vlan(vid(42))
            .ipv6(s6, d6, 64)
            .udp(5353, 53)
            .write(&mut six, b"q")
            .unwrap();
        let Some(Hint::V6(k)) = flow_hint(&six) else {
            panic!("an IPv6 key");
        };
        assert_eq!((k.proto, k.cport, k.port), (17, 5353, 53));
        assert_eq!(
            (k.caddr, k.addr),
            (v6(Ipv6Addr::from(s6)), v6(Ipv6Addr::from(d6)))
        );
        // A fragment, and a tag cut short, are not read.
        let mut frag = one.clone();
        frag[18 + 6] |= 0x20;
        assert!(flow_hint(&frag).is_none());
        assert!(flow_hint(&one[..20]).is_none());
    }
}

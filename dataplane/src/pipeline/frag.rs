//! Later fragments follow their first. Only the first fragment of a datagram carries the
//! transport ports the engine needs; what became of it (forwarded, to the kernel, dropped) is
//! remembered here under (source, destination, protocol, identification) for `timeout`, so
//! that the datagram's other fragments get the same treatment, as the whole datagram would
//! in IPVS, which sees it reassembled. A fragment that arrives before its first has nothing to
//! follow yet: the caller holds it ([`super::frag_hold`]). Fixed capacity, no allocation after
//! `new`; a full probe window reuses its oldest entry.

use crate::addr::Family;
use crate::shard::Xmit;

/// Linux's `ipfrag_time` default.
pub const FRAG_TIMEOUT_MS: u64 = 30_000;
const WINDOW: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FragKey<A> {
    pub src: A,
    pub dst: A,
    pub proto: u8,
    pub ident: u32,
}

/// What the datagram's first fragment got, which its other fragments follow.
#[derive(Clone, Copy, Debug)]
pub enum Follow<A: Family> {
    /// Forwarded as this conn's packet.
    Xmit(Xmit<A>),
    /// Not a service's: the kernel's (the exception path).
    Kernel,
    /// The engine dropped it.
    Drop,
}

#[derive(Clone, Copy)]
struct Entry<A: Family> {
    key: FragKey<A>,
    expires: u64,
    f: Follow<A>,
}

pub struct FragTable<A: Family> {
    slots: Box<[Option<Entry<A>>]>,
    mask: usize,
    timeout: u64,
}

impl<A: Family> FragTable<A> {
    pub fn new(capacity: usize, timeout: u64) -> Self {
        let n = capacity.max(WINDOW).next_power_of_two();
        FragTable {
            slots: vec![None; n].into_boxed_slice(),
            mask: n - 1,
            timeout,
        }
    }

    #[inline]
    fn home(&self, k: &FragKey<A>) -> usize {
        let h = (k.src.fold()
            ^ k.dst.fold().rotate_left(21)
            ^ (u64::from(k.ident) << 8)
            ^ u64::from(k.proto))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & self.mask
    }

    /// Remember what the first fragment got.
    pub fn insert(&mut self, key: FragKey<A>, f: Follow<A>, now: u64) {
        let home = self.home(&key);
        let mut victim = home;
        let mut oldest = u64::MAX;
        for i in 0..WINDOW {
            let at = (home + i) & self.mask;
            match self.slots[at] {
                Some(e) if e.key == key => {
                    victim = at;
                    break;
                }
                Some(e) if e.expires > now => {
                    if e.expires < oldest {
                        oldest = e.expires;
                        victim = at;
                    }
                }
                _ => {
                    victim = at;
                    oldest = 0;
                }
            }
            if oldest == 0 {
                break;
            }
        }
        self.slots[victim] = Some(Entry {
            key,
            expires: now + self.timeout,
            f,
        });
    }

    /// What the datagram `key`'s first fragment got, if it was seen recently.
    pub fn get(&self, key: &FragKey<A>, now: u64) -> Option<Follow<A>> {
        let home = self.home(key);
        (0..WINDOW).find_map(|i| match self.slots[(home + i) & self.mask] {
            Some(e) if e.key == *key && e.expires > now => Some(e.f),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::V4;
    use crate::config::{Fwd, TunConfig};
    use crate::conn::ConnRef;

    fn x(d: u32) -> Follow<V4> {
        Follow::Xmit(Xmit {
            conn: ConnRef {
                slot: 0,
                generation: 0,
            },
            reply: false,
            fwd: Fwd::Masq,
            caddr: V4(1),
            cport: 1,
            vaddr: V4(2),
            vport: 2,
            daddr: V4(d),
            dport: 3,
            tun: TunConfig::default(),
        })
    }

    fn daddr(f: Option<Follow<V4>>) -> Option<V4> {
        match f? {
            Follow::Xmit(x) => Some(x.daddr),
            _ => None,
        }
    }

    fn key(ident: u32) -> FragKey<V4> {
        FragKey {
            src: V4(1),
            dst: V4(2),
            proto: 17,
            ident,
        }
    }

    #[test]
    fn later_fragments_find_the_first_until_the_timeout() {
        let mut t = FragTable::new(64, 30_000);
        t.insert(key(7), x(9), 1000);
        assert_eq!(daddr(t.get(&key(7), 30_999)), Some(V4(9)));
        t.insert(key(8), Follow::Kernel, 1000);
        assert!(matches!(t.get(&key(8), 1000), Some(Follow::Kernel)));
        assert!(t.get(&key(7), 31_000).is_none());
        assert!(t.get(&key(9), 1000).is_none());
    }

    #[test]
    fn a_full_table_keeps_working_by_reusing_the_oldest() {
        let mut t = FragTable::new(8, 30_000);
        for i in 0..1000u32 {
            t.insert(key(i), x(i), u64::from(i));
            assert_eq!(daddr(t.get(&key(i), u64::from(i))), Some(V4(i)));
        }
    }
}

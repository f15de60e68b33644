//! Which worker owns a flow. A conn, its persistence template and its NAT replies must meet
//! in one shard, so the owner is a hash of the flow's *client side*, which both directions
//! carry: the source of a packet to a VIP, the destination of a reply from a dest.
//!
//! The key is the client address, masked by the shortest persistence netmask of the family's
//! persistent services when there are any (so one client group's conns and template share a
//! shard whatever the service: a reply does not say which service it belongs to, so one mask
//! per family is what both directions can agree on). The client port is left out on purpose:
//! non-first fragments and some ICMP errors carry no port, and they must find the same owner.

use crate::addr::Family;
use crate::config::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steering {
    workers: u32,
    /// Key = client address masked to this prefix (the full address without persistence).
    prefix: Option<u8>,
}

impl Steering {
    /// Steering for `workers` workers over a family's config.
    pub fn new<A: Family>(cfg: &Config<A>, workers: u32) -> Self {
        let prefix = cfg
            .services
            .iter()
            .filter_map(|s| s.persistence.map(|p| p.prefix))
            .min();
        Steering {
            workers: workers.max(1),
            prefix,
        }
    }

    pub fn workers(&self) -> u32 {
        self.workers
    }

    /// The worker that owns flows of client `caddr`.
    #[inline]
    pub fn owner<A: Family>(&self, caddr: A) -> u32 {
        if self.workers == 1 {
            return 0;
        }
        let key = match self.prefix {
            Some(p) => caddr.mask(p).fold(),
            None => caddr.fold(),
        };
        // Multiply-shift onto 0..workers: every input bit matters, no division.
        let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 29);
        let h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        ((u128::from(h) * u128::from(self.workers)) >> 64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::V4;
    use crate::config::{Persistence, ServiceConfig, ServiceKey, Sysctl};
    use crate::proto::Proto;
    use crate::sched::SchedKind;

    fn cfg(persist: Option<u8>) -> Config<V4> {
        let mut s = ServiceConfig::new(
            ServiceKey::Addr {
                proto: Proto::Tcp,
                vaddr: V4(1),
                vport: 80,
            },
            SchedKind::Rr,
        );
        s.persistence = persist.map(|prefix| Persistence {
            timeout_ms: 1000,
            prefix,
        });
        Config::new(vec![s], Sysctl::default()).unwrap()
    }

    #[test]
    fn persistent_client_group_has_one_owner_whatever_the_port() {
        let st = Steering::new(&cfg(Some(24)), 4);
        let owner = st.owner(V4(0x0a00_0105));
        for host in 0..256u32 {
            assert_eq!(st.owner(V4(0x0a00_0100 | host)), owner);
        }
    }

    #[test]
    fn non_persistent_clients_spread_over_every_worker() {
        let st = Steering::new(&cfg(None), 4);
        let mut seen = [0u32; 4];
        for host in 0..4000u32 {
            seen[st.owner(V4(0x0a00_0000 + host)) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }
}

//! Which worker owns a flow. A conn, its persistence template and its NAT replies must meet
//! in one shard, so the owner is a hash of the flow's *client side*, which both directions
//! carry: the source of a packet to a VIP, the destination of a reply from a dest.
//!
//! The key is the client address, masked by the shortest persistence netmask of the family's
//! persistent services when there are any (so one client group's conns and template share a
//! shard whatever the service: a reply does not say which service it belongs to, so one mask
//! per family is what both directions can agree on). The client port is left out on purpose:
//! non-first fragments and some ICMP errors carry no port, and they must find the same owner.
//!
//! The owner is the worker the NIC's RSS would pick for that key ([`super::rss`]: the
//! Toeplitz hash with rvs's key, through the RETA pattern rvs programs). Where the ports hash
//! the source address only and there is no netmask grouping, requests therefore arrive at
//! their owner and need no hand-off.

use std::sync::Arc;

use super::rss;
use crate::addr::Family;
use crate::config::Config;

#[derive(Clone, Debug)]
pub struct Steering {
    workers: u32,
    /// `rss::span(workers)`.
    span: u32,
    /// Key = client address masked to this prefix (the full address without persistence).
    prefix: Option<u8>,
    /// The appliance's RSS key (the one its ports hash with).
    key: Arc<rss::Key>,
}

impl Steering {
    /// Steering for `workers` workers over a family's config, hashing with `key`.
    pub fn new<A: Family>(cfg: &Config<A>, workers: u32, key: Arc<rss::Key>) -> Self {
        let prefix = cfg
            .services
            .iter()
            .filter_map(|s| s.persistence.map(|p| p.prefix))
            .min();
        Steering {
            workers: workers.max(1),
            span: rss::span(workers),
            prefix,
            key,
        }
    }

    pub fn workers(&self) -> u32 {
        self.workers
    }

    /// The RSS key it hashes with.
    pub fn key(&self) -> Arc<rss::Key> {
        Arc::clone(&self.key)
    }

    /// The worker that owns flows of client `caddr`.
    #[inline]
    pub fn owner<A: Family>(&self, caddr: A) -> u32 {
        if self.workers == 1 {
            return 0;
        }
        let key = match self.prefix {
            Some(p) => caddr.mask(p),
            None => caddr,
        };
        rss::owner(self.key.hash_addr(key), self.span, self.workers)
    }

    /// Whether a NIC with source-only RSS and rvs's RETA delivers requests at their owner:
    /// not when clients are grouped by a netmask (the NIC hashes the whole address).
    pub fn rss_aligned<A: Family>(&self) -> bool {
        self.prefix.is_none_or(|p| u32::from(p) >= A::BITS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::V4;
    use crate::config::{Persistence, ServiceConfig, ServiceKey, Sysctl};
    use crate::proto::Proto;
    use crate::sched::SchedKind;

    fn fixed() -> Arc<rss::Key> {
        Arc::new(rss::Key::fixed())
    }

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
        let st = Steering::new(&cfg(Some(24)), 4, fixed());
        let owner = st.owner(V4(0x0a00_0105));
        for host in 0..256u32 {
            assert_eq!(st.owner(V4(0x0a00_0100 | host)), owner);
        }
    }

    #[test]
    fn requests_own_the_queue_a_source_hashing_nic_picks() {
        for workers in [2u32, 3, 4, 8] {
            // A drawn key, as `rvsd run` uses: the NIC model hashes with the same one.
            let key = Arc::new(rss::Key::random(|| {
                core::array::from_fn(|i| (i as u8).wrapping_mul(97) ^ workers as u8)
            }));
            let st = Steering::new(&cfg(None), workers, key.clone());
            assert!(st.rss_aligned::<V4>());
            let reta = rss::reta(512, workers as u16).unwrap();
            for i in 0..2000u32 {
                let a = V4(i.wrapping_mul(0x9E37_79B1));
                let nic = reta[key.hash_addr(a) as usize & 511];
                assert_eq!(st.owner(a), u32::from(nic));
            }
        }
        assert!(!Steering::new(&cfg(Some(24)), 2, fixed()).rss_aligned::<V4>());
        assert!(Steering::new(&cfg(Some(32)), 2, fixed()).rss_aligned::<V4>());
    }

    #[test]
    fn non_persistent_clients_spread_over_every_worker() {
        let st = Steering::new(&cfg(None), 4, fixed());
        let mut seen = [0u32; 4];
        for host in 0..4000u32 {
            seen[st.owner(V4(0x0a00_0000 + host)) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }
}

//! The snapshot builder: the rules in force as the engine's `Config` pair, with every dest's
//! counter block attached, rebuilding only the services that changed.
//!
//! A service whose rule is the same as in the snapshot before is not converted, checked or
//! given its blocks again: the new snapshot shares its `ServiceConfig` with the old one (one
//! `Arc`). So a `-e` on a 100k-dest set builds one service, and a `--replace` with the same
//! set builds none; the cost of a change follows what it changes, plus one pointer compare
//! per service (services that stay in place are found by their place) and the engine's
//! services index.
//!
//! The builder keeps, per service, the rule it was built from and the engine's service; when
//! a snapshot is adopted it names the dests that left, which the registry retires and frees
//! once no worker holds them ([`StatsRegistry::gc`]).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::net::IpAddr;
use std::sync::Arc;

use rvs_dataplane::addr::{Family, V4, V6};
use rvs_dataplane::config::{Config, ConfigError, FastHasher, ServiceConfig};
use rvs_dataplane::dest_stats::DestStatsRef;

use crate::controller::Base;
use crate::rules::{engine_service, RuleError, RuleSet, Service, ServiceId};
use crate::stats::{DestId, StatsRegistry};

type Map<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
type Set<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

/// One service as built: the rule, and the engine's service made from it.
#[derive(Clone)]
struct Built {
    rule: Arc<Service>,
    config: Engine,
}

#[derive(Clone)]
enum Engine {
    V4(Arc<ServiceConfig<V4>>),
    V6(Arc<ServiceConfig<V6>>),
}

/// A built pair of snapshots, not yet in force ([`SnapshotBuilder::adopt`] makes its services
/// the ones the next change compares with).
pub struct Draft {
    pub v4: Config<V4>,
    pub v6: Config<V6>,
    /// Services converted for this draft (the others are shared with the snapshot before).
    pub rebuilt: usize,
    /// Services new to the builder (not in the snapshot before).
    pub new_services: usize,
    /// Every service as built, in the rules' order.
    order: Vec<Built>,
}

/// The services in force, as built, in the rules' order: a change that leaves a service
/// where it was and untouched (rule sets share such services) finds it by its place and a
/// pointer compare, so a `-e` on a 10k-service set hashes nothing; the id index is made
/// only for changes that move services (`-D`, `--replace`), once.
#[derive(Default)]
pub struct SnapshotBuilder {
    order: Vec<Built>,
    /// The snapshots in force: a change that keeps every service's key in its place copies
    /// their services index ([`Config::from_checked_like`]).
    in_force: Option<InForce>,
}

/// A pair of snapshots in force.
type InForce = (Arc<Config<V4>>, Arc<Config<V6>>);

/// `order`'s services by id.
fn index_of(order: &[Built]) -> Map<ServiceId, usize> {
    let mut m = Map::with_capacity_and_hasher(order.len(), Default::default());
    for (i, b) in order.iter().enumerate() {
        m.insert(b.rule.spec.id, i);
    }
    m
}

impl SnapshotBuilder {
    pub fn new() -> Self {
        SnapshotBuilder::default()
    }

    /// Build `rules` into snapshots. Nothing here changes on an error (the blocks the
    /// registry made for the refused change are retired at once).
    pub fn build(
        &self,
        rules: &RuleSet,
        base: &Base,
        stats: &mut StatsRegistry,
    ) -> Result<Draft, RuleError> {
        let mut made = Vec::new();
        let draft = self.build_with(rules, base, stats, &mut made);
        if draft.is_err() {
            stats.retire(made);
        }
        draft
    }

    /// The service built before for the service at `i` of the new rules, if any: by its
    /// place, else by its id.
    fn before<'a>(
        &'a self,
        i: usize,
        s: &Arc<Service>,
        index: &mut Option<Map<ServiceId, usize>>,
    ) -> Option<&'a Built> {
        if let Some(b) = self.order.get(i) {
            if Arc::ptr_eq(&b.rule, s) || b.rule.spec.id == s.spec.id {
                return Some(b);
            }
        }
        let index = index.get_or_insert_with(|| index_of(&self.order));
        index.get(&s.spec.id).and_then(|&j| self.order.get(j))
    }

    fn build_with(
        &self,
        rules: &RuleSet,
        base: &Base,
        stats: &mut StatsRegistry,
        made: &mut Vec<DestId>,
    ) -> Result<Draft, RuleError> {
        let sysctl = rules.sysctl_over(base.sysctl.clone())?;
        let mut index = None;
        // Room for the blocks of the services new to the builder, made at once rather than
        // by doubling (a 100k-dest set new to rvsd moved its registry three times).
        let (mut new_services, mut new_dests) = (0, 0);
        for (i, s) in rules.services.iter().enumerate() {
            if self.before(i, s, &mut index).is_none() {
                new_services += 1;
                new_dests += s.dests.len();
            }
        }
        stats.reserve(new_dests);
        let mut order = Vec::with_capacity(rules.services.len());
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let mut rebuilt = 0;
        for (i, s) in rules.services.iter().enumerate() {
            let id = s.spec.id;
            let b = match self.before(i, s, &mut index) {
                // The same rule (by pointer for the services a change did not touch).
                Some(b) if b.rule == *s => b.clone(),
                _ => {
                    rebuilt += 1;
                    let config = if id.is_v6() {
                        let c = engine_service::<V6>(s)?;
                        Engine::V6(Arc::new(with_blocks(c, id, stats, made)))
                    } else {
                        let c = engine_service::<V4>(s)?;
                        Engine::V4(Arc::new(with_blocks(c, id, stats, made)))
                    };
                    Built {
                        rule: Arc::clone(s),
                        config,
                    }
                }
            };
            match &b.config {
                Engine::V4(c) => v4.push(Arc::clone(c)),
                Engine::V6(c) => v6.push(Arc::clone(c)),
            }
            order.push(b);
        }
        let err = |e: ConfigError| RuleError {
            line: 0,
            message: e.0,
            syntax: false,
        };
        let (v4, v6) = match &self.in_force {
            Some((p4, p6)) => (
                Config::from_checked_like(v4, sysctl.clone(), p4),
                Config::from_checked_like(v6, sysctl, p6),
            ),
            None => (
                Config::from_checked(v4, sysctl.clone()),
                Config::from_checked(v6, sysctl),
            ),
        };
        let v4 = v4
            .and_then(|c| c.with_fwmark_rules(base.fwmark_v4.clone()))
            .map_err(err)?;
        let v6 = v6
            .and_then(|c| c.with_fwmark_rules(base.fwmark_v6.clone()))
            .map_err(err)?;
        Ok(Draft {
            v4,
            v6,
            rebuilt,
            new_services,
            order,
        })
    }

    /// These snapshots (made from the draft last adopted) are the ones in force.
    pub fn in_force(&mut self, v4: Arc<Config<V4>>, v6: Arc<Config<V6>>) {
        self.in_force = Some((v4, v6));
    }

    /// The draft's snapshots are in force: its services are what the next change is
    /// compared with. Returns the dests that left the rules (for the registry to retire).
    pub fn adopt(&mut self, draft: &mut Draft) -> Vec<DestId> {
        let next = std::mem::take(&mut draft.order);
        let mut index = None;
        let mut left = Vec::new();
        for (i, old) in self.order.iter().enumerate() {
            let new = match next.get(i) {
                Some(n) if n.rule.spec.id == old.rule.spec.id => Some(n),
                _ => index
                    .get_or_insert_with(|| index_of(&next))
                    .get(&old.rule.spec.id)
                    .and_then(|&j| next.get(j)),
            };
            let id = old.rule.spec.id;
            match new {
                Some(new) if Arc::ptr_eq(&new.rule, &old.rule) => {}
                Some(new) => {
                    let stay: Set<(IpAddr, u16)> =
                        new.rule.dests.iter().map(|d| (d.addr, d.port)).collect();
                    left.extend(
                        old.rule
                            .dests
                            .iter()
                            .filter(|d| !stay.contains(&(d.addr, d.port)))
                            .map(|d| (id, d.addr, d.port)),
                    );
                }
                None => left.extend(old.rule.dests.iter().map(|d| (id, d.addr, d.port))),
            }
        }
        self.order = next;
        left
    }
}

/// Attach each dest's counter block (by its identity: the same block as in any snapshot
/// before), noting the blocks made now.
fn with_blocks<A: Family>(
    mut c: ServiceConfig<A>,
    id: ServiceId,
    stats: &mut StatsRegistry,
    made: &mut Vec<DestId>,
) -> ServiceConfig<A> {
    for d in &mut c.dests {
        let did = (id, d.addr.to_ip(), d.port);
        let (b, new) = stats.block(did, d.u_threshold, d.l_threshold);
        if new {
            made.push(did);
        }
        d.stats = DestStatsRef(Some(b));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSet;

    fn base() -> Base {
        Base {
            sysctl: Default::default(),
            fwmark_v4: Vec::new(),
            fwmark_v6: Vec::new(),
        }
    }

    const RULES: &str = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.11 -g\n\
                         -A -t 10.0.0.2:80 -s wlc\n-a -t 10.0.0.2:80 -r 10.0.0.12 -g\n\
                         -A -u [fd00::1]:53\n-a -u [fd00::1]:53 -r [fd00::11] -g\n";

    fn build(b: &mut SnapshotBuilder, text: &str, stats: &mut StatsRegistry) -> Draft {
        let rules = RuleSet::from_text(text).unwrap();
        let mut d = b.build(&rules, &base(), stats).unwrap();
        let left = b.adopt(&mut d);
        stats.retire(left);
        d
    }

    #[test]
    fn only_changed_services_are_rebuilt_and_the_rest_are_shared() {
        let mut stats = StatsRegistry::new(2);
        let mut b = SnapshotBuilder::new();
        let first = build(&mut b, RULES, &mut stats);
        assert_eq!(
            (
                first.rebuilt,
                first.v4.services.len(),
                first.v6.services.len()
            ),
            (3, 2, 1)
        );
        let same = build(&mut b, RULES, &mut stats);
        assert_eq!(same.rebuilt, 0);
        assert!(Arc::ptr_eq(&first.v4.services[1], &same.v4.services[1]));
        let edited = RULES.to_string() + "-e -t 10.0.0.2:80 -r 10.0.0.12 -g -w 5\n";
        let e = build(&mut b, &edited, &mut stats);
        assert_eq!(e.rebuilt, 1);
        assert!(Arc::ptr_eq(&first.v4.services[0], &e.v4.services[0]));
        assert!(Arc::ptr_eq(&first.v6.services[0], &e.v6.services[0]));
        assert_eq!(e.v4.services[1].dests[0].weight, 5);
        // The rebuilt service's dest keeps its counter block.
        let (old, new) = (
            &first.v4.services[1].dests[0].stats.0,
            &e.v4.services[1].dests[0].stats.0,
        );
        assert!(Arc::ptr_eq(old.as_ref().unwrap(), new.as_ref().unwrap()));
        // The index is the new snapshot's own.
        assert_eq!(e.v4.services.len(), 2);
    }

    #[test]
    fn services_that_move_are_found_by_their_id() {
        let mut stats = StatsRegistry::new(2);
        let mut b = SnapshotBuilder::new();
        let first = build(&mut b, RULES, &mut stats);
        // -D of the first service moves the others up a place: nothing to rebuild.
        let rules = RuleSet::from_text(RULES).unwrap();
        let id = rules.services[0].spec.id;
        let fewer = rules
            .apply(&crate::rules::Command::DeleteService(id))
            .unwrap();
        let mut d = b.build(&fewer, &base(), &mut stats).unwrap();
        assert_eq!((d.rebuilt, d.new_services), (0, 0));
        assert!(Arc::ptr_eq(&first.v4.services[1], &d.v4.services[0]));
        let left = b.adopt(&mut d);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, id);
        stats.retire(left);
        // The same services in another order (a --replace): found by id, none rebuilt.
        let reordered = "-A -u [fd00::1]:53\n-a -u [fd00::1]:53 -r [fd00::11] -g\n\
                         -A -t 10.0.0.2:80 -s wlc\n-a -t 10.0.0.2:80 -r 10.0.0.12 -g\n\
                         -A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.11 -g\n";
        let again = build(&mut b, reordered, &mut stats);
        assert_eq!(again.rebuilt, 1, "only the service -D took is new again");
        assert_eq!(again.new_services, 1);
    }

    #[test]
    fn a_refused_build_keeps_what_the_next_change_compares_with() {
        let mut stats = StatsRegistry::new(1);
        let mut b = SnapshotBuilder::new();
        let first = build(&mut b, RULES, &mut stats);
        let mut bad = base();
        // A fwmark rule naming no fwmark service refuses the whole build.
        bad.fwmark_v4.push(rvs_dataplane::config::FwmarkRule {
            mark: 9,
            proto: None,
            addr: V4(0),
            prefix: 0,
            port_lo: 0,
            port_hi: 65535,
        });
        let rules = RuleSet::from_text(RULES).unwrap();
        assert!(b.build(&rules, &bad, &mut stats).is_err());
        let again = build(&mut b, RULES, &mut stats);
        assert_eq!(again.rebuilt, 0);
        assert!(Arc::ptr_eq(&first.v4.services[0], &again.v4.services[0]));
    }

    #[test]
    fn blocks_of_dests_that_left_are_freed_once_no_snapshot_holds_them() {
        let mut stats = StatsRegistry::new(2);
        let mut b = SnapshotBuilder::new();
        let first = build(&mut b, RULES, &mut stats);
        let id = |vip: &str, a: &str| {
            let svc = crate::controller::parse_service(&format!("-t {vip}:80")).unwrap();
            (svc, a.parse::<IpAddr>().unwrap(), 80)
        };
        assert!(stats.has_block(&id("10.0.0.2", "10.0.0.12")));
        // -d the dest: the old snapshot (a worker's, say) still holds its block.
        let after = build(
            &mut b,
            &RULES.replace("-a -t 10.0.0.2:80 -r 10.0.0.12 -g\n", ""),
            &mut stats,
        );
        assert_eq!(after.rebuilt, 1);
        assert_eq!(stats.gc(), 0);
        assert!(stats.has_block(&id("10.0.0.2", "10.0.0.12")));
        drop(first);
        assert_eq!(stats.gc(), 1);
        assert!(!stats.has_block(&id("10.0.0.2", "10.0.0.12")));
        // A refused change makes no lasting block.
        let refused =
            RuleSet::from_text(&(RULES.to_string() + "-a -t 10.0.0.2:80 -r 10.0.0.13 -g\n"))
                .unwrap();
        let mut bad = base();
        bad.fwmark_v6.push(rvs_dataplane::config::FwmarkRule {
            mark: 9,
            proto: None,
            addr: V6([0; 4]),
            prefix: 0,
            port_lo: 0,
            port_hi: 65535,
        });
        assert!(b.build(&refused, &bad, &mut stats).is_err());
        assert!(stats.has_block(&id("10.0.0.2", "10.0.0.13")));
        // (RULES has 10.0.0.12 again, whose block went above: made anew for the refused
        // change, and freed with 10.0.0.13's.)
        assert_eq!(stats.gc(), 2);
        assert!(!stats.has_block(&id("10.0.0.2", "10.0.0.13")));
        // The dests in force keep theirs.
        assert!(stats.has_block(&id("10.0.0.1", "10.0.0.11")));
        assert_eq!(stats.gc(), 0);
        drop(after);
    }
}

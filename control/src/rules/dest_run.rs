//! [`DestRun`]: `-a` lines in a row for one service, as [`RuleSet::from_text`] reads a rules
//! file. Added one at a time, each scanned the service's dests for a duplicate and went in
//! front of them (the kernel's newest-first order): quadratic, 2.2 s for 40k dests in one
//! service. A run appends them oldest first, finds duplicates through a set once the service
//! is large, and puts the run in front of the service's dests at once when it ends.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;
use std::sync::Arc;

use rvs_dataplane::config::FastHasher;

use super::model::{Dest, ServiceId};
use super::ruleset::RuleSet;

/// Dests a run compares one by one before it keeps a set of them.
const SCAN_MAX: usize = 32;

/// The `-a` lines read in a row for the service at `at` in the rule set.
pub(super) struct DestRun {
    id: ServiceId,
    at: usize,
    /// Oldest first.
    added: Vec<Dest>,
    /// The service's dests and `added`, once there are more than [`SCAN_MAX`].
    seen: Option<HashSet<(IpAddr, u16), BuildHasherDefault<FastHasher>>>,
}

impl DestRun {
    pub(super) fn new(id: ServiceId, at: usize) -> Self {
        DestRun {
            id,
            at,
            added: Vec::new(),
            seen: None,
        }
    }

    /// Whether a line for `id` continues this run.
    pub(super) fn is_for(&self, id: &ServiceId) -> bool {
        self.id == *id
    }

    /// Add `d` (checked, its port normalized) unless the service has it: then `d` back.
    pub(super) fn add(&mut self, rules: &RuleSet, d: Dest) -> Result<(), Dest> {
        let key = (d.addr, d.port);
        let held = rules
            .services
            .get(self.at)
            .map_or(&[][..], |s| &s.dests[..]);
        if self.seen.is_none() && held.len() + self.added.len() >= SCAN_MAX {
            self.seen = Some(
                held.iter()
                    .chain(&self.added)
                    .map(|x| (x.addr, x.port))
                    .collect(),
            );
        }
        let dup = match &mut self.seen {
            Some(seen) => !seen.insert(key),
            None => held
                .iter()
                .chain(&self.added)
                .any(|x| (x.addr, x.port) == key),
        };
        if dup {
            return Err(d);
        }
        self.added.push(d);
        Ok(())
    }

    /// The run ends: its dests go in front of the service's, newest first.
    pub(super) fn finish(self, rules: &mut RuleSet) {
        if self.added.is_empty() {
            return;
        }
        if let Some(svc) = rules.services.get_mut(self.at).map(Arc::make_mut) {
            let mut dests = self.added;
            dests.reverse();
            dests.append(&mut svc.dests);
            svc.dests = dests;
        }
    }
}

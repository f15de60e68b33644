//! keepalived's health-check semantics, sans-IO: each checker's up/down state from the
//! outcomes of its checks, each real server's (up while every checker is), each virtual
//! server's quorum (with hysteresis), and when each checker runs next. The driver runs the
//! checks and reports their outcomes; what changed comes back as [`Event`]s, and
//! [`Health::states`] is what the rules are made from.
//!
//! As keepalived's checkers (`check_tcp.c` and the others): a checker starts up, or down with
//! `alpha`; a failure of a checker that is up is retried `retry` times, `delay_before_retry`
//! apart, and the next failure takes it down; one success brings it back; a checker that is
//! down is tried every `delay_loop`. A MISC_CHECK with `misc_dynamic` sets the weight from its
//! exit status (2..255: weight = status - 2).

use std::time::Duration;

use crate::keepalived::{CheckKind, Checker, KaConfig, Live, VsState};

/// Which checker: virtual server, real server, checker (in the order written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckerId {
    pub vs: usize,
    pub rs: usize,
    pub check: usize,
}

/// A check's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A MISC_CHECK with `misc_dynamic` that exited 2..=255: success, weight = status - 2.
    Weight(i32),
    Failure(String),
}

/// What a report changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A real server went down (its `notify_down` runs): the failure that took it down.
    Down { vs: usize, rs: usize, why: String },
    /// A real server came back (its `notify_up` runs).
    Up { vs: usize, rs: usize },
    /// A `misc_dynamic` check changed a real server's weight.
    Weight { vs: usize, rs: usize, weight: i32 },
    /// The virtual server's live weight fell below its quorum (less the hysteresis).
    QuorumLost { vs: usize },
    /// It reached its quorum (plus the hysteresis) again.
    QuorumGained { vs: usize },
}

#[derive(Clone, Debug)]
struct CheckerState {
    up: bool,
    /// It has reported at least once (keepalived's `has_run`: only then does a reload carry
    /// its state).
    has_run: bool,
    /// Failures since the last success while up (keepalived's `retry_it`).
    failures: u32,
    /// The weight a `misc_dynamic` check set (None: the configured one).
    weight: Option<i32>,
}

/// The health of everything a keepalived configuration checks.
#[derive(Clone, Debug)]
pub struct Health {
    /// [vs][rs][checker]
    checkers: Vec<Vec<Vec<CheckerState>>>,
    quorum: Vec<bool>,
}

impl Health {
    /// The state at start (real servers up unless a checker starts in `alpha`; quorum from
    /// those).
    pub fn new(cfg: &KaConfig) -> Self {
        let checkers: Vec<Vec<Vec<CheckerState>>> = cfg
            .virtual_servers
            .iter()
            .map(|vs| {
                vs.real_servers
                    .iter()
                    .map(|rs| {
                        rs.checkers
                            .iter()
                            .map(|c| CheckerState {
                                up: !c.timing.alpha,
                                has_run: false,
                                failures: 0,
                                weight: None,
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let quorum = cfg.initial().iter().map(|s| s.quorum).collect();
        Health { checkers, quorum }
    }

    /// Every virtual server's state, for the rules.
    pub fn states(&self, cfg: &KaConfig) -> Vec<VsState> {
        (0..cfg.virtual_servers.len())
            .map(|v| self.vs_state(cfg, v))
            .collect()
    }

    fn vs_state(&self, cfg: &KaConfig, v: usize) -> VsState {
        VsState {
            real: (0..cfg.virtual_servers[v].real_servers.len())
                .map(|r| self.live(cfg, v, r))
                .collect(),
            quorum: self.quorum[v],
        }
    }

    /// The checker finds its real server up.
    pub fn checker_up(&self, id: CheckerId) -> bool {
        self.checkers[id.vs][id.rs][id.check].up
    }

    /// Every checker of the real server finds it up.
    pub fn real_up(&self, vs: usize, rs: usize) -> bool {
        self.checkers[vs][rs].iter().all(|c| c.up)
    }

    /// The virtual server has its quorum (its real servers are in, not the sorry server).
    pub fn quorum(&self, vs: usize) -> bool {
        self.quorum[vs]
    }

    fn live(&self, cfg: &KaConfig, v: usize, r: usize) -> Live {
        let rs = &cfg.virtual_servers[v].real_servers[r];
        let cs = &self.checkers[v][r];
        // keepalived adds each dynamic checker's change to the configured weight.
        let weight = cs
            .iter()
            .filter_map(|c| c.weight)
            .fold(rs.weight, |w, d| w + (d - rs.weight));
        Live {
            up: cs.iter().all(|c| c.up),
            weight: weight.clamp(0, 65535),
        }
    }

    /// A check of `id` ended with `outcome`: what changed, and how long until its next check.
    pub fn report(
        &mut self,
        cfg: &KaConfig,
        id: CheckerId,
        outcome: Outcome,
    ) -> (Vec<Event>, Duration) {
        let vs = &cfg.virtual_servers[id.vs];
        let rs = &vs.real_servers[id.rs];
        let spec = &rs.checkers[id.check];
        let before = self.live(cfg, id.vs, id.rs);
        let c = &mut self.checkers[id.vs][id.rs][id.check];
        let mut why = None;
        let next = match outcome {
            Outcome::Success | Outcome::Weight(_) => {
                if let Outcome::Weight(w) = outcome {
                    if matches!(spec.kind, CheckKind::Misc { dynamic: true, .. }) {
                        c.weight = Some(w);
                    }
                }
                c.up = true;
                c.has_run = true;
                c.failures = 0;
                spec.timing.delay_loop
            }
            Outcome::Failure(_) if c.up && c.failures < spec.retry() => {
                c.has_run = true;
                c.failures += 1;
                spec.delay_before_retry()
            }
            Outcome::Failure(reason) => {
                if c.up {
                    why = Some(reason);
                }
                c.up = false;
                c.has_run = true;
                c.failures = 0;
                spec.timing.delay_loop
            }
        };
        let after = self.live(cfg, id.vs, id.rs);
        let mut events = Vec::new();
        match (before.up, after.up) {
            (true, false) => events.push(Event::Down {
                vs: id.vs,
                rs: id.rs,
                why: why.unwrap_or_default(),
            }),
            (false, true) => events.push(Event::Up {
                vs: id.vs,
                rs: id.rs,
            }),
            _ => {}
        }
        if after.weight != before.weight {
            events.push(Event::Weight {
                vs: id.vs,
                rs: id.rs,
                weight: after.weight,
            });
        }
        // Quorum follows the live weights: judged again only when this one changed (most
        // reports change nothing, and the judgement reads every real server of the service).
        if after != before {
            events.extend(self.judge_quorum(cfg, id.vs));
        }
        (events, next)
    }

    /// The state for `new`, a configuration read again (SIGHUP), from this state of `old`,
    /// as keepalived's reload (`clear_diff_services`, `migrate_checkers`): a virtual server
    /// that stays (same addresses or marks, same protocol) keeps its quorum; a real server
    /// that stays in it (same address and port) keeps the state of each checker that stays
    /// (same kind, target and options) and has run: up or down, failures so far (at most
    /// one short of the new `retry`), a `misc_dynamic` weight. When one of its checkers is
    /// down (or it was down and none has run), its new checkers need one failure to take it
    /// down and start down in `alpha`. Everything new starts as at start. Quorum is judged
    /// again with the new thresholds; what it changes comes back as events.
    pub fn reload(&self, old: &KaConfig, new: &KaConfig) -> (Health, Vec<Event>) {
        let mut h = Health::new(new);
        for (nv, nvs) in new.virtual_servers.iter().enumerate() {
            let Some(ov) = old
                .virtual_servers
                .iter()
                .position(|o| o.keys == nvs.keys && o.proto == nvs.proto)
            else {
                continue;
            };
            h.quorum[nv] = self.quorum[ov];
            let ovs = &old.virtual_servers[ov];
            for (nr, nrs) in nvs.real_servers.iter().enumerate() {
                let Some(or) = ovs
                    .real_servers
                    .iter()
                    .position(|o| (o.addr, o.port) == (nrs.addr, nrs.port))
                else {
                    continue;
                };
                let was_up = self.real_up(ov, or);
                let olds = &self.checkers[ov][or];
                for (nc, spec) in nrs.checkers.iter().enumerate() {
                    let found = ovs.real_servers[or]
                        .checkers
                        .iter()
                        .position(|o| same_check(o, spec));
                    let Some(o) = found.map(|oc| &olds[oc]).filter(|o| o.has_run) else {
                        continue;
                    };
                    let c = &mut h.checkers[nv][nr][nc];
                    c.up = o.up;
                    c.has_run = true;
                    c.weight = o.weight;
                    let retry = spec.retry();
                    if o.failures > 0 && retry > 0 {
                        c.failures = o.failures.min(retry - 1);
                    }
                }
                let cs = &mut h.checkers[nv][nr];
                let failed = cs.iter().any(|c| c.has_run && !c.up);
                let any_ran = cs.iter().any(|c| c.has_run);
                if failed || (!was_up && !any_ran) {
                    // (A new `alpha` checker already starts down.)
                    for (c, spec) in cs.iter_mut().zip(&nrs.checkers) {
                        if !c.has_run {
                            c.failures = spec.retry();
                        }
                    }
                }
            }
        }
        let events = (0..new.virtual_servers.len())
            .filter_map(|v| h.judge_quorum(new, v))
            .collect();
        (h, events)
    }

    /// Quorum, with the hysteresis as a flap dampener either way.
    fn judge_quorum(&mut self, cfg: &KaConfig, v: usize) -> Option<Event> {
        let vs = &cfg.virtual_servers[v];
        let live = vs.live_weight(&self.vs_state(cfg, v).real);
        let (q, h) = (u64::from(vs.quorum), u64::from(vs.hysteresis));
        let had = self.quorum[v];
        if had && live < q.saturating_sub(h) {
            self.quorum[v] = false;
            Some(Event::QuorumLost { vs: v })
        } else if !had && live >= q + h {
            self.quorum[v] = true;
            Some(Event::QuorumGained { vs: v })
        } else {
            None
        }
    }
}

/// keepalived's checker `compare`: the same kind of check (with its URLs or program) of the
/// same target from the same source.
pub(super) fn same_check(a: &Checker, b: &Checker) -> bool {
    a.kind == b.kind
        && a.connect_ip == b.connect_ip
        && a.connect_port == b.connect_port
        && a.bindto == b.bindto
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> KaConfig {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("rvs-health-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = dir.join(format!("{n}.conf"));
        std::fs::write(&p, text).unwrap();
        crate::keepalived::load(&p).unwrap()
    }

    const TWO: &str = "virtual_server 10.0.0.1 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    delay_loop 2
    quorum 2
    hysteresis 0
    sorry_server 10.0.0.99 80
    real_server 10.0.0.11 80 {
        TCP_CHECK {
            retry 2
            delay_before_retry 1
        }
    }
    real_server 10.0.0.12 80 {
        inhibit_on_failure
        MISC_CHECK {
            misc_path /usr/local/bin/check
            misc_dynamic
        }
    }
}
";

    fn id(rs: usize) -> CheckerId {
        CheckerId {
            vs: 0,
            rs,
            check: 0,
        }
    }

    #[test]
    fn a_server_goes_down_after_its_retries_and_comes_back_on_one_success() {
        let c = cfg(TWO);
        let mut h = Health::new(&c);
        let fail = || Outcome::Failure("connection refused".into());
        // Up; two failures are retried a second apart; the third takes it down.
        assert_eq!(
            h.report(&c, id(0), fail()),
            (vec![], Duration::from_secs(1))
        );
        assert_eq!(
            h.report(&c, id(0), fail()),
            (vec![], Duration::from_secs(1))
        );
        let (ev, next) = h.report(&c, id(0), fail());
        assert_eq!(next, Duration::from_secs(2), "down: tried every delay_loop");
        assert_eq!(
            ev,
            vec![
                Event::Down {
                    vs: 0,
                    rs: 0,
                    why: "connection refused".into()
                },
                Event::QuorumLost { vs: 0 },
            ]
        );
        assert!(!h.states(&c)[0].real[0].up);
        // Still down: no more events.
        assert_eq!(
            h.report(&c, id(0), fail()),
            (vec![], Duration::from_secs(2))
        );
        let (ev, _) = h.report(&c, id(0), Outcome::Success);
        assert_eq!(
            ev,
            vec![Event::Up { vs: 0, rs: 0 }, Event::QuorumGained { vs: 0 }]
        );
        // A success between failures starts the count again.
        h.report(&c, id(0), fail());
        h.report(&c, id(0), fail());
        h.report(&c, id(0), Outcome::Success);
        assert_eq!(h.report(&c, id(0), fail()).0, vec![]);
    }

    #[test]
    fn misc_dynamic_sets_the_weight_and_misc_check_has_no_retries() {
        let c = cfg(TWO);
        let mut h = Health::new(&c);
        let (ev, _) = h.report(&c, id(1), Outcome::Weight(8));
        assert_eq!(
            ev,
            vec![Event::Weight {
                vs: 0,
                rs: 1,
                weight: 8
            }]
        );
        assert_eq!(
            h.states(&c)[0].real[1],
            Live {
                up: true,
                weight: 8
            }
        );
        // MISC_CHECK's retry default is 0: the first failure takes it down.
        let (ev, _) = h.report(&c, id(1), Outcome::Failure("exit status 1".into()));
        assert!(matches!(ev[0], Event::Down { rs: 1, .. }), "{ev:?}");
        // The rules: 10.0.0.12 inhibited (weight 0); quorum 2 still met by 10.0.0.11 (1)?
        // No: live weight 1 < 2, so the sorry server is in.
        assert_eq!(ev[1], Event::QuorumLost { vs: 0 });
        let saved = c.rules(&h.states(&c)).unwrap().save();
        assert!(saved.contains("-r 10.0.0.99:80 -m -w 1"), "{saved}");
        assert!(saved.contains("-r 10.0.0.12:80 -m -w 0"), "{saved}");
    }

    #[test]
    fn alpha_starts_down_and_hysteresis_dampens_quorum_flaps() {
        let c = cfg(&TWO
            .replace("    hysteresis 0\n", "    hysteresis 1\n    alpha\n")
            .replace("quorum 2", "quorum 3"));
        let mut h = Health::new(&c);
        assert!(h.states(&c)[0].real.iter().all(|l| !l.up));
        assert!(!h.states(&c)[0].quorum);
        // Live weight 1 (10.0.0.11): below quorum 3 + hysteresis 1.
        assert_eq!(
            h.report(&c, id(0), Outcome::Success).0,
            vec![Event::Up { vs: 0, rs: 0 }]
        );
        // Live 1 + 3 = 4 >= 3 + 1: gained.
        let (ev, _) = h.report(&c, id(1), Outcome::Weight(3));
        assert!(ev.contains(&Event::QuorumGained { vs: 0 }), "{ev:?}");
        // Down to 1 + 1 = 2: not below 3 - 1, kept.
        let (ev, _) = h.report(&c, id(1), Outcome::Weight(1));
        assert!(!ev.contains(&Event::QuorumLost { vs: 0 }), "{ev:?}");
        let (ev, _) = h.report(&c, id(1), Outcome::Weight(0));
        assert!(ev.contains(&Event::QuorumLost { vs: 0 }), "{ev:?}");
    }

    #[test]
    fn a_reload_keeps_the_state_of_what_stays_as_keepalived_does() {
        let old = cfg(TWO);
        let mut h = Health::new(&old);
        let fail = || Outcome::Failure("connection refused".into());
        for _ in 0..3 {
            h.report(&old, id(0), fail());
        }
        h.report(&old, id(1), Outcome::Weight(8));
        // 10.0.0.11 down; quorum lost and gained again (live weight 8).
        assert!(!h.real_up(0, 0) && h.quorum(0));
        // The new file: 10.0.0.11 gains a second check and retry 1; 10.0.0.12 as it was; a
        // new real server; quorum 10; and a second virtual server.
        let text = TWO
            .replace("quorum 2", "quorum 10")
            .replace(
                "            retry 2\n",
                "            retry 1\n        }\n        TCP_CHECK {\n            connect_port 81\n",
            )
            .replace(
                "    real_server 10.0.0.12 80 {",
                "    real_server 10.0.0.13 80 {\n        TCP_CHECK {\n        }\n    }\n    real_server 10.0.0.12 80 {",
            );
        let new = cfg(&format!(
            "{text}{}",
            TWO.replace("10.0.0.1 80", "10.0.0.2 80")
        ));
        let (mut n, ev) = h.reload(&old, &new);
        // 10.0.0.11 stays down (no new failures needed); its new check needs one failure.
        assert!(!n.real_up(0, 0));
        let second = CheckerId {
            vs: 0,
            rs: 0,
            check: 1,
        };
        assert!(n.checker_up(second));
        assert_eq!(n.report(&new, second, fail()).1, Duration::from_secs(2));
        assert!(!n.checker_up(second), "one failure took it down");
        // 10.0.0.12 keeps its dynamic weight; the new 10.0.0.13 starts up.
        let st = n.states(&new);
        assert_eq!(
            st[0].real,
            vec![
                Live {
                    up: false,
                    weight: 1
                },
                Live {
                    up: true,
                    weight: 1
                },
                Live {
                    up: true,
                    weight: 8
                },
            ]
        );
        // Quorum: kept (had), judged again: live 9 < 10, lost.
        assert!(!n.quorum(0));
        assert_eq!(ev, vec![Event::QuorumLost { vs: 0 }]);
        // The new virtual server starts as at start.
        assert!(n.real_up(1, 0) && n.quorum(1));
        // A reload of the same file changes nothing.
        let (again, ev) = n.reload(&new, &new);
        assert_eq!(again.states(&new), n.states(&new));
        assert!(ev.is_empty());
    }
}

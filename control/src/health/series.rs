//! The health series for `/metrics`: each checker's verdict, its check durations and
//! failures, each real server's state and transitions, each virtual server's quorum. The
//! checker thread writes them after each check; a scrape (the control thread) reads them.
//! One mutex, held by the writer for one row's update and by the reader for a copy of the
//! numbers (a few bytes per checker), never while formatting; the workers are not involved.
//!
//! Labels are those of the `rvs_ipvs_backend_*` series (node_exporter's: `local_address`,
//! `local_port`, `proto`, `local_mark`, `remote_address`, `remote_port`), one series per
//! service a virtual server stands for (each member of a group), so the two join; checker
//! series add `check` (`TCP_CHECK`, `HTTP_GET`, `MISC_CHECK`) and `checker` (its index in
//! the real server, in the order written: two checks of one kind stay apart).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{CheckerId, Event, Health};
use crate::ipvs_metrics::svc_labels;
use crate::keepalived::{CheckKind, KaConfig, VsKey};
use crate::rules::ServiceId;

/// Upper bounds (seconds) of the duration histogram's buckets: a loopback connect takes
/// tens of microseconds, a LAN one under a millisecond, a check that times out its
/// `connect_timeout` (5 s by default).
const BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// The health series, shared by the checker thread and the scrape (cheap to clone).
#[derive(Clone, Default)]
pub struct HealthSeries(Arc<Mutex<Table>>);

/// The labels of a configuration's rows: fixed until the configuration is replaced.
#[derive(Default)]
struct Layout {
    /// Per virtual server: its services' labels.
    services: Vec<Vec<String>>,
    /// Per real server (flat): its backend labels, one per service.
    backends: Vec<Vec<String>>,
    /// Per checker (flat): its kind.
    kinds: Vec<&'static str>,
    /// Flat index of each virtual server's first real server, and each real server's first
    /// checker.
    first_rs: Vec<usize>,
    first_check: Vec<usize>,
}

#[derive(Clone, Copy, Default)]
struct CheckNums {
    up: bool,
    /// Checks ended, and how long they took: the histogram (`buckets[i]` counts the checks
    /// at most `BUCKETS[i]`, not cumulative; made cumulative when written).
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
    failures: u64,
}

#[derive(Clone, Copy, Default)]
struct RsNums {
    up: bool,
    ups: u64,
    downs: u64,
}

#[derive(Clone, Default)]
struct Nums {
    quorum: Vec<bool>,
    real: Vec<RsNums>,
    checks: Vec<CheckNums>,
}

#[derive(Default)]
struct Table {
    layout: Arc<Layout>,
    nums: Nums,
}

impl HealthSeries {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere while holding it leaves numbers, not a broken invariant.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rows of `cfg` in the state `health` (at start, and on a reload: the counts of a
    /// checker with the same labels (and kind) or real server with the same labels go on).
    pub(super) fn configure(&self, cfg: &KaConfig, health: &Health) {
        let layout = Layout::of(cfg);
        let mut t = self.lock();
        let mut old_checks: HashMap<(&str, usize, &str), CheckNums> = HashMap::new();
        let mut old_real: HashMap<&str, RsNums> = HashMap::new();
        for (r, b) in t.layout.backends.iter().enumerate() {
            let Some(key) = b.first() else { continue };
            old_real.insert(key, t.nums.real[r]);
            let end = t
                .layout
                .first_check
                .get(r + 1)
                .copied()
                .unwrap_or(t.nums.checks.len());
            for (i, c) in (t.layout.first_check[r]..end).enumerate() {
                old_checks.insert((key, i, t.layout.kinds[c]), t.nums.checks[c]);
            }
        }
        let mut nums = Nums {
            quorum: (0..cfg.virtual_servers.len())
                .map(|v| health.quorum(v))
                .collect(),
            real: Vec::with_capacity(layout.backends.len()),
            checks: Vec::with_capacity(layout.kinds.len()),
        };
        for (v, vs) in cfg.virtual_servers.iter().enumerate() {
            for (r, rs) in vs.real_servers.iter().enumerate() {
                let key = layout.backends[layout.first_rs[v] + r]
                    .first()
                    .map(String::as_str)
                    .unwrap_or("");
                let mut real = old_real.get(key).copied().unwrap_or_default();
                real.up = health.real_up(v, r);
                nums.real.push(real);
                let first = layout.first_check[layout.first_rs[v] + r];
                for c in 0..rs.checkers.len() {
                    let kind = layout.kinds[first + c];
                    let mut n = old_checks.get(&(key, c, kind)).copied().unwrap_or_default();
                    n.up = health.checker_up(CheckerId {
                        vs: v,
                        rs: r,
                        check: c,
                    });
                    nums.checks.push(n);
                }
            }
        }
        drop(old_checks);
        drop(old_real);
        t.layout = Arc::new(layout);
        t.nums = nums;
    }

    /// A check of `id` ended after `took` (`failed`: its outcome was a failure); `health` is
    /// the state after it, `events` what it changed.
    pub(super) fn check(
        &self,
        id: CheckerId,
        took: Duration,
        failed: bool,
        health: &Health,
        events: &[Event],
    ) {
        let mut guard = self.lock();
        let t = &mut *guard;
        let Some(&first_rs) = t.layout.first_rs.get(id.vs) else {
            return;
        };
        let r = first_rs + id.rs;
        let c = t.layout.first_check[r] + id.check;
        let secs = took.as_secs_f64();
        let n = &mut t.nums.checks[c];
        n.up = health.checker_up(id);
        n.count += 1;
        n.sum += secs;
        if let Some(b) = BUCKETS.iter().position(|&le| secs <= le) {
            n.buckets[b] += 1;
        }
        n.failures += u64::from(failed);
        t.nums.real[r].up = health.real_up(id.vs, id.rs);
        for e in events {
            match *e {
                Event::Up { vs, rs } => t.nums.real[t.layout.first_rs[vs] + rs].ups += 1,
                Event::Down { vs, rs, .. } => t.nums.real[t.layout.first_rs[vs] + rs].downs += 1,
                Event::QuorumLost { vs } => t.nums.quorum[vs] = false,
                Event::QuorumGained { vs } => t.nums.quorum[vs] = true,
                Event::Weight { .. } => {}
            }
        }
    }

    /// Every check ended so far, and the failures among them (the bench reads them).
    pub fn totals(&self) -> (u64, u64) {
        let t = self.lock();
        t.nums
            .checks
            .iter()
            .fold((0, 0), |(n, f), c| (n + c.count, f + c.failures))
    }

    /// The Prometheus text of the series (nothing before the checkers start).
    pub fn render(&self) -> String {
        let (layout, nums) = {
            let t = self.lock();
            (Arc::clone(&t.layout), t.nums.clone())
        };
        if layout.kinds.is_empty() && layout.backends.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        // (flat real server, its backend labels, its checkers' flat range)
        let reals = || {
            layout.backends.iter().enumerate().map(|(r, b)| {
                let end = layout
                    .first_check
                    .get(r + 1)
                    .copied()
                    .unwrap_or(layout.kinds.len());
                (r, b, layout.first_check[r]..end)
            })
        };
        let check_labels = |b: &str, c: usize, first: usize| {
            format!(
                "{b},check=\"{}\",checker=\"{}\"",
                layout.kinds[c],
                c - first
            )
        };
        header(
            &mut out,
            "rvs_health_up",
            "gauge",
            "1 while the checker finds its real server up, 0 while down (keepalived's verdict, after retries).",
        );
        for (_, bs, range) in reals() {
            for b in bs {
                for c in range.clone() {
                    let l = check_labels(b, c, range.start);
                    let _ = writeln!(out, "rvs_health_up{{{l}}} {}", u8::from(nums.checks[c].up));
                }
            }
        }
        header(
            &mut out,
            "rvs_health_check_duration_seconds",
            "histogram",
            "How long the checker's checks took (connect, answer, or the program's run; a timeout counts its whole wait).",
        );
        for (_, bs, range) in reals() {
            for b in bs {
                for c in range.clone() {
                    let l = check_labels(b, c, range.start);
                    let n = &nums.checks[c];
                    let mut acc = 0;
                    for (le, k) in BUCKETS.iter().zip(n.buckets) {
                        acc += k;
                        let _ = writeln!(
                            out,
                            "rvs_health_check_duration_seconds_bucket{{{l},le=\"{le}\"}} {acc}"
                        );
                    }
                    let _ = writeln!(
                        out,
                        "rvs_health_check_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}\n\
                         rvs_health_check_duration_seconds_sum{{{l}}} {}\n\
                         rvs_health_check_duration_seconds_count{{{l}}} {}",
                        n.count, n.sum, n.count
                    );
                }
            }
        }
        header(
            &mut out,
            "rvs_health_check_failures_total",
            "counter",
            "Checks that failed (each retry counts).",
        );
        for (_, bs, range) in reals() {
            for b in bs {
                for c in range.clone() {
                    let l = check_labels(b, c, range.start);
                    let _ = writeln!(
                        out,
                        "rvs_health_check_failures_total{{{l}}} {}",
                        nums.checks[c].failures
                    );
                }
            }
        }
        header(
            &mut out,
            "rvs_health_real_server_up",
            "gauge",
            "1 while every checker of the real server finds it up: it is in the rules at its weight (unless the sorry server is in); 0: removed, or at weight 0 with inhibit_on_failure.",
        );
        for (r, bs, _) in reals() {
            for b in bs {
                let _ = writeln!(
                    out,
                    "rvs_health_real_server_up{{{b}}} {}",
                    u8::from(nums.real[r].up)
                );
            }
        }
        header(
            &mut out,
            "rvs_health_transitions_total",
            "counter",
            "Times the real server went down or came back up, by direction.",
        );
        for (r, bs, _) in reals() {
            for b in bs {
                let n = &nums.real[r];
                let _ = writeln!(
                    out,
                    "rvs_health_transitions_total{{{b},direction=\"down\"}} {}\n\
                     rvs_health_transitions_total{{{b},direction=\"up\"}} {}",
                    n.downs, n.ups
                );
            }
        }
        header(
            &mut out,
            "rvs_health_quorum",
            "gauge",
            "1 while the virtual server's live weight meets its quorum; 0: below it (the sorry server, if any, is in).",
        );
        for (v, ss) in layout.services.iter().enumerate() {
            for s in ss {
                let _ = writeln!(out, "rvs_health_quorum{{{s}}} {}", u8::from(nums.quorum[v]));
            }
        }
        out
    }
}

impl Layout {
    fn of(cfg: &KaConfig) -> Layout {
        let mut l = Layout::default();
        for vs in &cfg.virtual_servers {
            let ids: Vec<ServiceId> = vs
                .keys
                .iter()
                .map(|k| match *k {
                    VsKey::Addr { addr, port } => ServiceId::Addr {
                        proto: vs.proto,
                        addr,
                        port,
                    },
                    VsKey::Fwmark { mark, v6 } => ServiceId::Fwmark { mark, v6 },
                })
                .collect();
            l.services
                .push(ids.iter().map(|id| svc_labels(id).service()).collect());
            l.first_rs.push(l.backends.len());
            for rs in &vs.real_servers {
                l.first_check.push(l.kinds.len());
                l.backends.push(
                    ids.iter()
                        .map(|id| svc_labels(id).backend(&rs.addr, dest_port(id, rs.port)))
                        .collect(),
                );
                l.kinds.extend(rs.checkers.iter().map(|c| match c.kind {
                    CheckKind::Tcp => "TCP_CHECK",
                    CheckKind::Http { tls: false, .. } => "HTTP_GET",
                    CheckKind::Http { tls: true, .. } => "SSL_GET",
                    CheckKind::Misc { .. } => "MISC_CHECK",
                }));
            }
        }
        l
    }
}

/// A real server's port as a dest of the service: its own, or (0) the service's.
fn dest_port(id: &ServiceId, port: u16) -> u16 {
    match (port, id) {
        (0, ServiceId::Addr { port, .. }) => *port,
        (p, _) => p,
    }
}

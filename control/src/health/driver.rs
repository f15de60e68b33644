//! The checker thread: one task per checker on a single-threaded tokio runtime (thousands of
//! real servers at `delay_loop 1` on one core), off the workers and off the control thread.
//! Each outcome goes through [`Health`]; a transition is logged, runs the real server's
//! `notify_up`/`notify_down`, and its rule changes are handed to `apply` (in rvsd: ipvsadm
//! lines to the control socket, as rvsadm sends them, so they are served in turn with the
//! operator's).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{diff, CheckerId, Event, Health};
use crate::keepalived::{KaConfig, VsKey};
use crate::rules::RuleSet;

/// Where rule changes go; an error is logged and the change is sent again with the next one.
pub type Apply = Box<dyn FnMut(Vec<String>) -> Result<(), String> + Send>;

/// The running checker thread.
pub struct Checkers {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkers {
    /// Start checking every real server of `cfg`, whose rules in force are `applied` (the
    /// initial state's), on a thread pinned to `core` if given.
    pub fn start(
        cfg: KaConfig,
        applied: RuleSet,
        apply: Apply,
        core: Option<core_affinity::CoreId>,
    ) -> Result<Checkers, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("rvs-health".into())
            .spawn(move || {
                if let Some(c) = core {
                    core_affinity::set_for_current(c);
                }
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("rvsd health: no runtime: {e}");
                        return;
                    }
                };
                rt.block_on(run(cfg, applied, apply, s));
            })
            .map_err(|e| format!("the checker thread: {e}"))?;
        Ok(Checkers {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkers {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Shared {
    cfg: KaConfig,
    health: Health,
    applied: RuleSet,
    apply: Apply,
}

async fn run(cfg: KaConfig, applied: RuleSet, apply: Apply, stop: Arc<AtomicBool>) {
    let health = Health::new(&cfg);
    let mut ids = Vec::new();
    for (v, vs) in cfg.virtual_servers.iter().enumerate() {
        for (r, rs) in vs.real_servers.iter().enumerate() {
            for c in 0..rs.checkers.len() {
                ids.push(CheckerId {
                    vs: v,
                    rs: r,
                    check: c,
                });
            }
        }
    }
    let shared = Rc::new(RefCell::new(Shared {
        cfg,
        health,
        applied,
        apply,
    }));
    let local = tokio::task::LocalSet::new();
    let n = ids.len().max(1) as u32;
    for (i, id) in ids.into_iter().enumerate() {
        let shared = Rc::clone(&shared);
        let stop = Arc::clone(&stop);
        local.spawn_local(async move {
            // Spread the first checks over the first delay_loop (keepalived's warmup), so a
            // thousand checkers do not connect in one burst.
            let first = {
                let s = shared.borrow();
                let c = &s.cfg.virtual_servers[id.vs].real_servers[id.rs].checkers[id.check];
                c.timing.delay_loop.min(Duration::from_secs(1)) * (i as u32) / n
            };
            tokio::time::sleep(first).await;
            while !stop.load(Ordering::Relaxed) {
                let (checker, rs, port) = {
                    let s = shared.borrow();
                    let vs = &s.cfg.virtual_servers[id.vs];
                    let rs = &vs.real_servers[id.rs];
                    let port = match (rs.port, vs.keys.first()) {
                        (0, Some(VsKey::Addr { port, .. })) => *port,
                        (p, _) => p,
                    };
                    (rs.checkers[id.check].clone(), rs.clone(), port)
                };
                let outcome = super::checks::run(&checker, &rs, port).await;
                let next = shared.borrow_mut().report(id, outcome);
                tokio::time::sleep(next).await;
            }
        });
    }
    local
        .run_until(async {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
}

impl Shared {
    /// An outcome: log and notify its events, apply the rules they change, and say when the
    /// checker runs next.
    fn report(&mut self, id: CheckerId, outcome: super::Outcome) -> Duration {
        let (events, next) = self.health.report(&self.cfg, id, outcome);
        if events.is_empty() {
            return next;
        }
        for e in &events {
            self.log(e);
        }
        match self.cfg.rules(&self.health.states(&self.cfg)) {
            Ok(want) => {
                let lines = diff::lines(&self.applied, &want);
                if !lines.is_empty() {
                    match (self.apply)(lines.clone()) {
                        Ok(()) => self.applied = want,
                        Err(e) => eprintln!(
                            "rvsd health: the change ({}) was refused: {e}; sent again with the next",
                            lines.join("; ")
                        ),
                    }
                }
            }
            Err(e) => eprintln!("rvsd health: {e}"),
        }
        next
    }

    fn log(&self, e: &Event) {
        let name = |vs: usize, rs: usize| {
            let v = &self.cfg.virtual_servers[vs];
            let r = &v.real_servers[rs];
            (format!("{} ({})", r.addr, v.at), r)
        };
        match e {
            Event::Down { vs, rs, why } => {
                let (n, r) = name(*vs, *rs);
                eprintln!("rvsd health: real server {n} down: {why}");
                notify(r.notify_down.as_deref());
            }
            Event::Up { vs, rs } => {
                let (n, r) = name(*vs, *rs);
                eprintln!("rvsd health: real server {n} up");
                notify(r.notify_up.as_deref());
            }
            Event::Weight { vs, rs, weight } => {
                eprintln!(
                    "rvsd health: real server {} weight {weight}",
                    name(*vs, *rs).0
                )
            }
            Event::QuorumLost { vs } => eprintln!(
                "rvsd health: virtual server at {} lost its quorum{}",
                self.cfg.virtual_servers[*vs].at,
                if self.cfg.virtual_servers[*vs].sorry.is_some() {
                    ": the sorry server is in"
                } else {
                    ""
                }
            ),
            Event::QuorumGained { vs } => eprintln!(
                "rvsd health: virtual server at {} has its quorum again",
                self.cfg.virtual_servers[*vs].at
            ),
        }
    }
}

/// Run a notify script (its words: program and arguments), not waiting for it.
fn notify(script: Option<&str>) {
    let Some(s) = script else { return };
    let mut words = s.split_whitespace();
    let Some(prog) = words.next() else { return };
    match tokio::process::Command::new(prog)
        .args(words)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        // Reaped by tokio in the background.
        Ok(child) => drop(child),
        Err(e) => eprintln!("rvsd health: notify script {prog}: {e}"),
    }
}

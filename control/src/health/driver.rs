//! The checker thread: one task per checker on a single-threaded tokio runtime (thousands of
//! real servers at `delay_loop 1` on one core), off the workers and off the control thread.
//! Each outcome goes through [`Health`]; a transition is logged, runs the real server's
//! `notify_up`/`notify_down`, and its rule changes are handed to `apply` (in rvsd: ipvsadm
//! lines to the control socket, as rvsadm sends them, so they are served in turn with the
//! operator's). Each check's verdict and duration go to the [`HealthSeries`].
//!
//! A configuration read again (SIGHUP) comes as a [`Reload`]: the state of what stays is
//! kept ([`Health::reload`]), the rules change by what differs, and the checkers start
//! again on the new configuration; a change the controller refuses leaves everything as it
//! was.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{diff, CheckerId, Event, Health, HealthSeries};
use crate::keepalived::{KaConfig, VsKey};
use crate::protocol::Request;
use crate::rules::RuleSet;

/// Where rule changes go (`Request::Apply` with ipvsadm lines; `Request::Replace` on a
/// reload with `--rules`); an error is logged and a transition's change is sent again with
/// the next one.
pub type Apply = Box<dyn FnMut(Request) -> Result<(), String> + Send>;

/// A keepalived configuration read again, for the checker thread.
pub struct Reload {
    pub cfg: KaConfig,
    /// The text of `--rules`, read again too: the rules in force become it plus the
    /// keepalived services (a `--replace`). None: only the keepalived services change.
    pub rules: Option<String>,
    /// Told how it went (a summary, or why nothing changed), if anyone listens.
    pub done: Option<Sender<Result<String, String>>>,
}

/// Hands reloads to the checker thread (the control thread holds one).
#[derive(Clone)]
pub struct Reloader(Sender<Reload>);

impl Reloader {
    /// Hand `r` over; the checker thread applies it at its next turn (within 50 ms).
    pub fn reload(&self, r: Reload) -> Result<(), String> {
        self.0
            .send(r)
            .map_err(|_| "the checker thread has stopped".to_string())
    }
}

/// The running checker thread.
pub struct Checkers {
    stop: Arc<AtomicBool>,
    reloads: Reloader,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkers {
    /// Start checking every real server of `cfg`, whose rules in force are `applied` (the
    /// initial state's), on a thread pinned to `core` if given, writing `series`.
    pub fn start(
        cfg: KaConfig,
        applied: RuleSet,
        apply: Apply,
        core: Option<core_affinity::CoreId>,
        series: HealthSeries,
    ) -> Result<Checkers, String> {
        let checks = cfg
            .virtual_servers
            .iter()
            .flat_map(|v| &v.real_servers)
            .map(|r| r.checkers.len())
            .sum();
        if let Some(line) = super::fds::raise_for(checks) {
            eprintln!("rvsd health: {line}");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let (tx, rx) = channel();
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
                let shared = Shared::new(cfg, applied, apply, series);
                rt.block_on(run(shared, s, rx));
            })
            .map_err(|e| format!("the checker thread: {e}"))?;
        Ok(Checkers {
            stop,
            reloads: Reloader(tx),
            thread: Some(thread),
        })
    }

    /// Where reloads go.
    pub fn reloader(&self) -> Reloader {
        self.reloads.clone()
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
    /// Shared with the tasks, which hold it across a check (a reload replaces it).
    cfg: Rc<KaConfig>,
    health: Health,
    applied: RuleSet,
    apply: Apply,
    series: HealthSeries,
}

async fn run(shared: Shared, stop: Arc<AtomicBool>, reloads: Receiver<Reload>) {
    let shared = Rc::new(RefCell::new(shared));
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let mut tasks = spawn_all(&shared, &stop);
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                while let Ok(r) = reloads.try_recv() {
                    let outcome = shared.borrow_mut().reload(r.cfg, r.rules);
                    match &outcome {
                        Ok(summary) => {
                            // The old checks are dropped where they wait (a program they
                            // run is killed); the new configuration's start.
                            for t in tasks.drain(..) {
                                t.abort();
                            }
                            tasks = spawn_all(&shared, &stop);
                            eprintln!("rvsd health: reload: {summary}");
                        }
                        Err(e) => eprintln!(
                            "rvsd health: reload refused: {e}; the running rules and checkers stay"
                        ),
                    }
                    if let Some(done) = r.done {
                        let _ = done.send(outcome);
                    }
                }
            }
            for t in tasks {
                t.abort();
            }
        })
        .await;
}

/// One task per checker of the configuration in force.
fn spawn_all(
    shared: &Rc<RefCell<Shared>>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cfg = Rc::clone(&shared.borrow().cfg);
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
    let n = ids.len().max(1) as u32;
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| {
            tokio::task::spawn_local(checker(
                Rc::clone(shared),
                Rc::clone(&cfg),
                id,
                (i as u32, n),
                Arc::clone(stop),
            ))
        })
        .collect()
}

/// Check `id` of `cfg` until stopped (or aborted by a reload); it is the `nth.0` of `nth.1`.
async fn checker(
    shared: Rc<RefCell<Shared>>,
    cfg: Rc<KaConfig>,
    id: CheckerId,
    nth: (u32, u32),
    stop: Arc<AtomicBool>,
) {
    let vs = &cfg.virtual_servers[id.vs];
    let rs = &vs.real_servers[id.rs];
    let c = &rs.checkers[id.check];
    let port = match (rs.port, vs.keys.first()) {
        (0, Some(VsKey::Addr { port, .. })) => *port,
        (p, _) => p,
    };
    // Spread the first checks over the first delay_loop (keepalived's warmup), so a thousand
    // checkers do not connect in one burst.
    tokio::time::sleep(c.timing.delay_loop.min(Duration::from_secs(1)) * nth.0 / nth.1).await;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let outcome = super::checks::run(c, rs, port).await;
        let next = shared.borrow_mut().report(id, outcome, t.elapsed());
        tokio::time::sleep(next).await;
    }
}

impl Shared {
    fn new(cfg: KaConfig, applied: RuleSet, apply: Apply, series: HealthSeries) -> Shared {
        let health = Health::new(&cfg);
        series.configure(&cfg, &health);
        Shared {
            cfg: Rc::new(cfg),
            health,
            applied,
            apply,
            series,
        }
    }

    /// An outcome: log and notify its events, apply the rules they change, and say when the
    /// checker runs next.
    fn report(&mut self, id: CheckerId, outcome: super::Outcome, took: Duration) -> Duration {
        let failed = matches!(outcome, super::Outcome::Failure(_));
        let (events, next) = self.health.report(&self.cfg, id, outcome);
        self.series.check(id, took, failed, &self.health, &events);
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
                    match (self.apply)(Request::Apply {
                        lines: lines.clone(),
                    }) {
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

    /// Take `new` in place of the configuration in force, keeping the state of what stays;
    /// with `rules` (the text of `--rules`), the rules in force become those plus the
    /// keepalived services. Nothing changes when the rules are refused.
    fn reload(&mut self, new: KaConfig, rules: Option<String>) -> Result<String, String> {
        let (health, events) = self.health.reload(&self.cfg, &new);
        let want = new.rules(&health.states(&new)).map_err(|e| e.to_string())?;
        let req = match rules {
            Some(text) => {
                let mut all = RuleSet::from_text(&text).map_err(|e| format!("--rules: {e}"))?;
                diff::add_to(&mut all, &want)?;
                Some(Request::Replace { text: all.save() })
            }
            None => {
                let lines = diff::lines(&self.applied, &want);
                (!lines.is_empty()).then_some(Request::Apply { lines })
            }
        };
        let changes = match &req {
            Some(Request::Apply { lines }) => format!("{} rule changes", lines.len()),
            Some(_) => "the rules replaced".to_string(),
            None => "no rule changes".to_string(),
        };
        if let Some(r) = req {
            (self.apply)(r)?;
        }
        let kept = self.kept_checkers(&new);
        self.cfg = Rc::new(new);
        self.health = health;
        self.applied = want;
        self.series.configure(&self.cfg, &self.health);
        for e in &events {
            self.log(e);
        }
        let total: usize = self
            .cfg
            .virtual_servers
            .iter()
            .flat_map(|v| &v.real_servers)
            .map(|r| r.checkers.len())
            .sum();
        if let Some(line) = super::fds::raise_for(total) {
            eprintln!("rvsd health: {line}");
        }
        Ok(format!(
            "{} virtual servers, {total} checkers ({kept} of them kept their state); {changes}",
            self.cfg.virtual_servers.len()
        ))
    }

    /// Checkers of `new` that are also in the configuration in force (for the log).
    fn kept_checkers(&self, new: &KaConfig) -> usize {
        new.virtual_servers
            .iter()
            .filter_map(|nv| {
                let ov = self
                    .cfg
                    .virtual_servers
                    .iter()
                    .find(|o| o.keys == nv.keys && o.proto == nv.proto)?;
                Some(
                    nv.real_servers
                        .iter()
                        .filter_map(|nr| {
                            let or = ov
                                .real_servers
                                .iter()
                                .find(|o| (o.addr, o.port) == (nr.addr, nr.port))?;
                            Some(
                                nr.checkers
                                    .iter()
                                    .filter(|c| {
                                        or.checkers.iter().any(|o| super::state::same_check(o, c))
                                    })
                                    .count(),
                            )
                        })
                        .sum::<usize>(),
                )
            })
            .sum()
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

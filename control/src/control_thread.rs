//! The control thread's loop: serves the control socket one client at a time, publishes
//! snapshots to the workers and waits for every acknowledgement, gathers conn pages, answers
//! metrics scrapes, and keeps house (the 2 s estimator, threshold rebalancing, freeing the
//! dest blocks and snapshots nobody holds). It drives a [`Controller`] (which decides) over
//! [`WorkerLink`]s (which carry); it is the same with DPDK workers and with test workers on
//! plain threads.
// libc calls (poll, signals): the allowed `unsafe` of this file.
#![allow(unsafe_code)]

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::controller::{conn_row, pack_cursor, unpack_cursor, Controller, Snapshot, Step};
use crate::estimator::PERIOD_MS;
use crate::health::Reloader;
use crate::link::{ConnCursor, FromWorker, ToWorker, WorkerLink};
use crate::protocol::{
    self, ConnPage, ErrorKind, ErrorReply, Reply, Request, CONN_PAGE, MAX_REQUEST,
};
use crate::socket::{self, ControlSocket};

/// How long the workers have to take a snapshot before the client hears `Timeout`.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send its next request.
const CLIENT_IDLE: Duration = Duration::from_secs(2);
/// Threshold shares are rebalanced this often (ms).
const REBALANCE_MS: u64 = 100;
/// Retired dests looked at per housekeeping tick (about a millisecond's work).
const GC_PER_TICK: usize = 2048;
/// Slices of the estimator's period (40 ms each).
const ESTIMATE_SLICES: usize = 50;

/// A metrics scrape handed to the control thread by the HTTP thread: it renders the text
/// (it owns the rule set and the counter blocks) and answers on `reply`.
pub struct Scrape {
    pub reply: std::sync::mpsc::SyncSender<String>,
}

/// Renders the metrics text from what the control thread owns.
pub type Render = Box<dyn FnMut(&Controller) -> String>;

pub struct ControlThread {
    pub ctl: Controller,
    links: Vec<Arc<WorkerLink>>,
    socket: Option<ControlSocket>,
    scrapes: Option<Receiver<Scrape>>,
    render: Render,
    /// `--rules` (re-read on SIGHUP) and the flag a SIGHUP sets.
    rules_path: Option<PathBuf>,
    hup: Option<&'static AtomicBool>,
    /// `--keepalived` (re-read on SIGHUP too) and the checker thread that takes it.
    keepalived: Option<(PathBuf, Reloader)>,
    next_estimate: u64,
    /// The estimator slice due next.
    estimate_slice: usize,
    next_rebalance: u64,
}

impl ControlThread {
    pub fn new(ctl: Controller, links: Vec<Arc<WorkerLink>>, render: Render, now: u64) -> Self {
        ControlThread {
            ctl,
            links,
            socket: None,
            scrapes: None,
            render,
            rules_path: None,
            hup: None,
            keepalived: None,
            // Slice k first runs (k + 1) shares of the period after start, so every estimator
            // has moved once 2 s after it (as they all did at once before slices).
            next_estimate: now + PERIOD_MS / ESTIMATE_SLICES as u64,
            estimate_slice: 0,
            next_rebalance: now,
        }
    }

    pub fn with_socket(mut self, s: ControlSocket) -> Self {
        self.socket = Some(s);
        self
    }

    pub fn with_scrapes(mut self, r: Receiver<Scrape>) -> Self {
        self.scrapes = Some(r);
        self
    }

    /// Re-read `path` on SIGHUP; without a rules file a SIGHUP is logged and changes nothing
    /// (rather than end rvsd, the signal's default).
    pub fn with_reload(mut self, path: Option<PathBuf>, hup: &'static AtomicBool) -> Self {
        self.rules_path = path;
        self.hup = Some(hup);
        self
    }

    /// Re-read the keepalived file `path` on SIGHUP too; its configuration goes to the
    /// checker thread (`to`), which changes the rules through the control socket.
    pub fn with_keepalived(mut self, path: PathBuf, to: Reloader) -> Self {
        self.keepalived = Some((path, to));
        self
    }

    /// One round: wait up to `wait` for a client (the socket's fd), serve it, answer
    /// scrapes, keep house at `now` (ms).
    pub fn poll(&mut self, now: u64, wait: Duration) {
        if let Some(s) = &self.socket {
            let mut fds = libc::pollfd {
                fd: s.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = wait.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the duration of the call.
            unsafe { libc::poll(&mut fds, 1, ms) };
        } else {
            std::thread::sleep(wait);
        }
        self.serve_clients();
        self.answer_scrapes();
        self.reload_on_hup();
        self.housekeeping(now);
    }

    fn serve_clients(&mut self) {
        loop {
            let conn = match self.socket.as_ref().map(|s| s.accept()) {
                Some(Ok(Some(c))) => c,
                Some(Err(e)) => {
                    eprintln!("rvsd: control socket: accept: {e}");
                    return;
                }
                _ => return,
            };
            if let Err(e) = self.serve(conn) {
                // The client went away or sent garbage; it has had its error reply if any.
                let _ = e;
            }
        }
    }

    /// Serve one client: requests until it closes (or idles past [`CLIENT_IDLE`]).
    fn serve(&mut self, mut conn: UnixStream) -> io::Result<()> {
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(CLIENT_IDLE))?;
        conn.set_write_timeout(Some(CLIENT_IDLE))?;
        let access = self.socket.as_ref().map(|s| s.access());
        if let Some(a) = access {
            let p = socket::peer(&conn)?;
            if !socket::allowed(&p, &a) {
                eprintln!(
                    "rvsd: control socket: refused pid {} uid {} (not root, rvsd's uid or the [control] group)",
                    p.pid, p.uid
                );
                return send(
                    &mut conn,
                    &error(
                        ErrorKind::Denied,
                        "permission denied (not root, rvsd's user or the [control] group)",
                    ),
                );
            }
        }
        loop {
            let body = match protocol::read_message(&mut conn, MAX_REQUEST) {
                Ok(Some(b)) => b,
                Ok(None) => return Ok(()),
                Err(protocol::ProtoError::Io(e)) => return Err(e),
                Err(e) => {
                    return send(&mut conn, &error(ErrorKind::BadRequest, &e.to_string()));
                }
            };
            let reply = match protocol::decode_request(&body) {
                Ok(req) => self.handle(req),
                Err(e) => {
                    return send(&mut conn, &error(ErrorKind::BadRequest, &e.to_string()));
                }
            };
            send(&mut conn, &reply)?;
        }
    }

    /// Answer one request (the socket's, SIGHUP's, or a test's).
    pub fn handle(&mut self, req: Request) -> Reply {
        match self.ctl.handle(req) {
            Step::Reply(r) => r,
            Step::Publish(s) => self.publish(s),
            Step::Conns { cursor } => self.conn_page(cursor),
        }
    }

    /// Post a snapshot to every worker and wait until all run it.
    pub fn publish(&mut self, s: Snapshot) -> Reply {
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        for l in &self.links {
            let cmd = ToWorker::Config {
                generation: s.generation,
                v4: Arc::clone(&s.v4),
                v6: Arc::clone(&s.v6),
            };
            if !post_until(l, cmd, deadline) {
                return error(ErrorKind::Timeout, "a worker's command ring stays full");
            }
        }
        drop(s);
        let mut spins = 0u32;
        while !self
            .links
            .iter()
            .all(|l| l.generation() >= self.ctl.generation())
        {
            for l in &self.links {
                drain(l);
            }
            if Instant::now() > deadline {
                return error(
                    ErrorKind::Timeout,
                    "the workers did not take the change within 5 s (it is queued; they take it when they run again)",
                );
            }
            spins += 1;
            if spins < 1000 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        for l in &self.links {
            drain(l);
        }
        Reply::Ok {
            generation: self.ctl.generation(),
        }
    }

    /// Up to [`CONN_PAGE`] conns from `cursor`, in worker order, each worker's IPv4 table
    /// then its IPv6 one; each command scans a bounded number of slots.
    fn conn_page(&mut self, cursor: u64) -> Reply {
        let (mut w, mut v6, mut slot) = unpack_cursor(cursor);
        let mut conns = Vec::new();
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        while (w as usize) < self.links.len() && conns.len() < CONN_PAGE as usize {
            let l = &self.links[w as usize];
            let room = CONN_PAGE as usize - conns.len();
            let cmd = ToWorker::Conns {
                cursor: ConnCursor { v6, slot },
                rows: Vec::with_capacity(room),
            };
            if !post_until(l, cmd, deadline) {
                return error(ErrorKind::Timeout, "a worker's command ring stays full");
            }
            let (rows, next) = loop {
                match l.take() {
                    Some(FromWorker::Conns { rows, next }) => break (rows, next),
                    Some(_) => {}
                    None => {
                        if Instant::now() > deadline {
                            return error(
                                ErrorKind::Timeout,
                                "a worker did not answer the conn listing",
                            );
                        }
                        std::hint::spin_loop();
                    }
                }
            };
            conns.extend(rows.iter().map(conn_row));
            match next {
                Some(c) => {
                    v6 = c.v6;
                    slot = c.slot;
                }
                None => {
                    w += 1;
                    v6 = false;
                    slot = 0;
                }
            }
        }
        let next = ((w as usize) < self.links.len()).then(|| pack_cursor(w, v6, slot));
        Reply::Conns(ConnPage { conns, next })
    }

    fn answer_scrapes(&mut self) {
        let Some(rx) = &self.scrapes else {
            return;
        };
        loop {
            match rx.try_recv() {
                Ok(s) => {
                    let text = (self.render)(&self.ctl);
                    let _ = s.reply.send(text);
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return,
            }
        }
    }

    fn reload_on_hup(&mut self) {
        let Some(hup) = self.hup else {
            return;
        };
        if !hup.swap(false, Ordering::Relaxed) {
            return;
        }
        if self.keepalived.is_some() {
            self.reload_keepalived();
            return;
        }
        let Some(path) = &self.rules_path else {
            eprintln!("rvsd: SIGHUP: rvsd runs without --rules: nothing to re-read");
            return;
        };
        let path = path.clone();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!(
                    "rvsd: SIGHUP: {}: {e}; the running rules stay",
                    path.display()
                );
                return;
            }
        };
        match self.handle(Request::Replace { text }) {
            Reply::Ok { generation } => eprintln!(
                "rvsd: SIGHUP: {} in force (generation {generation})",
                path.display()
            ),
            Reply::Error(e) => eprintln!(
                "rvsd: SIGHUP: {}: {}; the running rules stay",
                path.display(),
                e.message
            ),
            _ => {}
        }
    }

    /// SIGHUP with a keepalived file: both files read and checked here; the checker thread
    /// keeps the state of what stays and sends the change (a `--replace` of `--rules` plus
    /// the keepalived services, or only the keepalived services' lines) through the socket,
    /// which this thread serves next. A refusal anywhere leaves everything running as it is.
    fn reload_keepalived(&mut self) {
        let Some((ka_path, to)) = &self.keepalived else {
            return;
        };
        // --rules read and checked (the line of a refused rule named) before anything moves.
        let read = |p: &PathBuf| {
            let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            crate::rules::RuleSet::from_text(&t).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok::<String, String>(t)
        };
        let rules = match self.rules_path.as_ref().map(read).transpose() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("rvsd: SIGHUP: {e}; the running rules and checkers stay");
                return;
            }
        };
        let cfg = match crate::keepalived::load(ka_path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("rvsd: SIGHUP: {e}; the running rules and checkers stay");
                return;
            }
        };
        for n in &cfg.notes {
            eprintln!("rvsd: SIGHUP: {n}");
        }
        let r = crate::health::Reload {
            cfg,
            rules,
            done: None,
        };
        match to.reload(r) {
            Ok(()) => eprintln!(
                "rvsd: SIGHUP: {} read; the checker thread takes it",
                ka_path.display()
            ),
            Err(e) => eprintln!("rvsd: SIGHUP: {}: {e}", ka_path.display()),
        }
    }

    /// The metrics text now (for `--metrics-out` at the end of a run).
    pub fn render_now(&mut self) -> String {
        (self.render)(&self.ctl)
    }

    /// The estimator every 2 s, threshold shares, freeing what nobody holds.
    pub fn housekeeping(&mut self, now: u64) {
        for l in &self.links {
            drain(l);
        }
        // The 2 s estimator in ESTIMATE_SLICES slices, each its share of the period later
        // (all that are due when a call comes late).
        while now >= self.next_estimate {
            self.ctl
                .estimate_slice(self.estimate_slice, ESTIMATE_SLICES);
            self.estimate_slice = (self.estimate_slice + 1) % ESTIMATE_SLICES;
            self.next_estimate += PERIOD_MS / ESTIMATE_SLICES as u64;
        }
        if now >= self.next_rebalance {
            self.next_rebalance = now + REBALANCE_MS;
            if self.ctl.stats().rebalance() {
                for l in &self.links {
                    let _ = l.post(ToWorker::Shares);
                }
            }
            // Bounded, so freeing a replaced 100k-dest set never holds up a request for long.
            self.ctl.stats_mut().gc_some(GC_PER_TICK);
        }
    }
}

/// Post `cmd`, retrying while the ring is full (draining the replies that fill it) until
/// `deadline`; false when it never went.
fn post_until(l: &WorkerLink, mut cmd: ToWorker, deadline: Instant) -> bool {
    loop {
        match l.post(cmd) {
            Ok(()) => return true,
            Err(back) => {
                cmd = back;
                drain(l);
                if Instant::now() > deadline {
                    return false;
                }
                std::thread::yield_now();
            }
        }
    }
}

/// Replies nobody waits for (old snapshots, share acks): freed here, on the control thread.
fn drain(l: &WorkerLink) {
    while let Some(r) = l.take() {
        drop(r);
    }
}

fn error(kind: ErrorKind, message: &str) -> Reply {
    Reply::Error(ErrorReply {
        kind,
        message: message.to_string(),
    })
}

fn send(conn: &mut UnixStream, r: &Reply) -> io::Result<()> {
    match protocol::write_message(conn, r) {
        Ok(()) => conn.flush(),
        Err(protocol::ProtoError::Io(e)) => Err(e),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

/// Set by SIGHUP: re-read `--rules`.
static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hup(_: libc::c_int) {
    HUP.store(true, Ordering::Relaxed);
}

/// Install the SIGHUP handler; the flag it sets.
pub fn install_hup_handler() -> &'static AtomicBool {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGHUP, on_hup as *const () as libc::sighandler_t);
    }
    &HUP
}

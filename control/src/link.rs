//! The link between the control thread and one worker: a command ring in, a reply ring out,
//! and a `posted` counter the worker loads once per loop to see whether anything came.
//!
//! Config snapshots, threshold rebalances and conn-listing pages travel here. The worker
//! serves them between bursts ([`WorkerLink::serve`]), never inside one; the hot loop pays one
//! relaxed load per loop when nothing is posted. A worker never frees a snapshot: the one a
//! new snapshot replaces goes back to the control thread in the reply ([`FromWorker::Applied`]),
//! and the row buffers of a listing page are the control thread's, lent and returned.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use rvs_dataplane::addr::{Family, V4, V6};
use rvs_dataplane::config::Config;
use rvs_dataplane::conn::ConnInfo;
use rvs_dataplane::pipeline::buf::Buf;
use rvs_dataplane::pipeline::worker::Worker;
use rvs_dataplane::shard::Shard;

use crate::replay::Configs;

/// Commands in flight per worker at most (the control thread waits for each batch).
const RING: usize = 64;
/// Conn slots a worker scans for one page command: bounds the work between two bursts.
pub const SCAN_SLOTS: u32 = 16_384;

/// A command for a worker.
pub enum ToWorker {
    /// Swap in these snapshots between bursts.
    Config {
        generation: u64,
        v4: Arc<Config<V4>>,
        v6: Arc<Config<V6>>,
    },
    /// The control thread rebalanced threshold shares: re-evaluate overload flags.
    Shares,
    /// Conns from `cursor` into `rows` (at most its capacity; at most [`SCAN_SLOTS`] slots).
    Conns {
        cursor: ConnCursor,
        rows: Vec<ConnEntry>,
    },
}

/// A worker's answer.
pub enum FromWorker {
    /// The snapshot of `generation` runs; the replaced ones, for the control thread to free.
    Applied {
        generation: u64,
        old: Configs,
    },
    SharesApplied,
    /// A page: the rows, and where the next begins in this worker (None: its table is done).
    Conns {
        rows: Vec<ConnEntry>,
        next: Option<ConnCursor>,
    },
}

/// Where a conn listing stands within one worker: the family, then the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnCursor {
    pub v6: bool,
    pub slot: u32,
}

/// A conn as a worker reports it (no strings: no allocation in the worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnEntry {
    pub proto: u8,
    pub state: u8,
    pub template: bool,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// Until it expires, ms (0 when due).
    pub expires_ms: u64,
}

impl ConnEntry {
    fn of<A: Family>(c: &ConnInfo<A>, now: u64) -> ConnEntry {
        ConnEntry {
            proto: c.proto,
            state: c.state,
            template: c.is_template(),
            caddr: c.caddr.to_ip(),
            cport: c.cport,
            vaddr: c.vaddr.to_ip(),
            vport: c.vport,
            daddr: c.daddr.to_ip(),
            dport: c.dport,
            expires_ms: c.expires.saturating_sub(now),
        }
    }
}

/// One worker's link.
pub struct WorkerLink {
    /// Bumped by the control thread (its only writer) after each post.
    posted: AtomicU64,
    /// The generation the worker runs (for metrics and waiting).
    generation: AtomicU64,
    to: ArrayQueue<ToWorker>,
    from: ArrayQueue<FromWorker>,
}

impl Default for WorkerLink {
    fn default() -> Self {
        WorkerLink::new(0)
    }
}

impl WorkerLink {
    /// The link of a worker that starts on the snapshot of `generation`.
    pub fn new(generation: u64) -> Self {
        WorkerLink {
            posted: AtomicU64::new(0),
            generation: AtomicU64::new(generation),
            to: ArrayQueue::new(RING),
            from: ArrayQueue::new(RING),
        }
    }

    /// Control side: queue a command. `Err` gives it back when the ring is full.
    pub fn post(&self, cmd: ToWorker) -> Result<(), ToWorker> {
        self.to.push(cmd)?;
        // One writer: a load and a store, no read-modify-write.
        let p = self.posted.load(Ordering::Relaxed);
        self.posted.store(p + 1, Ordering::Release);
        Ok(())
    }

    /// Control side: the next reply, if one came.
    pub fn take(&self) -> Option<FromWorker> {
        self.from.pop()
    }

    /// The generation the worker last acknowledged.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Worker side, once per loop: serve what was posted since `seen`. True when a new
    /// snapshot was taken (worker 0 then announces the VIPs).
    #[inline]
    pub fn serve<B: Buf>(&self, seen: &mut u64, w: &mut Worker<B>, now: u64) -> bool {
        let p = self.posted.load(Ordering::Acquire);
        if p != *seen {
            *seen = p;
            return self.serve_all(w, now);
        }
        false
    }

    #[cold]
    #[inline(never)]
    fn serve_all<B: Buf>(&self, w: &mut Worker<B>, now: u64) -> bool {
        let mut swapped = false;
        while let Some(cmd) = self.to.pop() {
            let reply = match cmd {
                ToWorker::Config { generation, v4, v6 } => {
                    swapped = true;
                    let old = w.set_configs(v4, v6, now);
                    self.generation.store(generation, Ordering::Release);
                    FromWorker::Applied { generation, old }
                }
                ToWorker::Shares => {
                    w.f4.shard.refresh_overload();
                    w.f6.shard.refresh_overload();
                    FromWorker::SharesApplied
                }
                ToWorker::Conns { cursor, mut rows } => {
                    let next = if cursor.v6 {
                        page(&w.f6.shard, cursor.slot, &mut rows, now)
                            .map(|slot| ConnCursor { v6: true, slot })
                    } else {
                        page(&w.f4.shard, cursor.slot, &mut rows, now)
                            .map(|slot| ConnCursor { v6: false, slot })
                            .or(Some(ConnCursor { v6: true, slot: 0 }))
                    };
                    FromWorker::Conns { rows, next }
                }
            };
            // The control thread keeps at most RING commands in flight, so there is room; if
            // there were not, the reply (and any snapshot in it) would be dropped here.
            let _ = self.from.push(reply);
        }
        swapped
    }
}

/// Fill `rows` (up to its capacity) from slot `from` on; the slot to go on from, if any.
fn page<A: Family>(s: &Shard<A>, from: u32, rows: &mut Vec<ConnEntry>, now: u64) -> Option<u32> {
    let (it, next) = s.conns_in(from, SCAN_SLOTS);
    for (slot, c) in it {
        if rows.len() == rows.capacity() {
            return Some(slot);
        }
        rows.push(ConnEntry::of(&c, now));
    }
    next
}

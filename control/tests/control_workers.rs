//! The control thread against several workers on threads of their own (no DPDK): a change
//! returns only when every worker runs it, the next packet after it follows it, and a
//! dest's connection thresholds hold for the dest as a whole across workers.

use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use rvs_control::appconfig::default_lab;
use rvs_control::control_thread::ControlThread;
use rvs_control::controller::{Base, Controller};
use rvs_control::link::WorkerLink;
use rvs_control::protocol::{Reply, Request};
use rvs_control::replay::{workers_with, NicSetup};
use rvs_control::rules::RuleSet;
use rvs_dataplane::addr::V4;
use rvs_dataplane::pipeline::buf::VecBuf;
use rvs_dataplane::pipeline::worker::Worker;
use rvs_dataplane::shard::{Packet, Verdict};

const NOW: u64 = 10_000;
const SYN: u8 = 0x02;

enum Job {
    /// SYNs from `count` clients starting at `first` to `vip:80`; answers the daddrs of
    /// the conns made (0 for a drop).
    Syns {
        first: u32,
        count: u32,
        vip: u32,
    },
    Stop,
}

struct Runner {
    jobs: Sender<Job>,
    done: Receiver<Vec<u32>>,
    thread: Option<JoinHandle<()>>,
}

impl Runner {
    fn spawn(mut w: Worker<VecBuf>, link: Arc<WorkerLink>) -> Runner {
        let (jobs, rx) = channel();
        let (tx, done) = channel();
        let thread = std::thread::spawn(move || {
            let mut seen = 0;
            loop {
                let _ = link.serve(&mut seen, &mut w, NOW);
                match rx.try_recv() {
                    Ok(Job::Syns { first, count, vip }) => {
                        let got = (0..count)
                            .map(|i| {
                                let p = Packet::tcp(V4(first + i), 40_000, V4(vip), 80, SYN);
                                match w.f4.shard.process(&p, NOW) {
                                    Verdict::Xmit(x) => x.daddr.0,
                                    _ => 0,
                                }
                            })
                            .collect();
                        let _ = tx.send(got);
                    }
                    Ok(Job::Stop) | Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => std::thread::yield_now(),
                }
            }
        });
        Runner {
            jobs,
            done,
            thread: Some(thread),
        }
    }

    fn syns(&self, first: u32, count: u32, vip: u32) -> Vec<u32> {
        self.jobs.send(Job::Syns { first, count, vip }).unwrap();
        self.done.recv().unwrap()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.jobs.send(Job::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ip(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

/// A control thread and `n` workers running `rules`.
fn setup(n: u32, rules: &str) -> (ControlThread, Vec<Arc<WorkerLink>>, Vec<Runner>) {
    let mut cfg = default_lab();
    cfg.engine.workers = n;
    cfg.engine.conns_per_worker = 4096;
    let base = Base {
        sysctl: cfg.sysctl(),
        fwmark_v4: Vec::new(),
        fwmark_v6: Vec::new(),
    };
    let rules = RuleSet::from_text(rules).unwrap();
    let (ctl, first) = Controller::new(rules, base, n, 4096 * u64::from(n)).unwrap();
    let ws = workers_with(
        &cfg,
        (first.v4, first.v6),
        n,
        0,
        &NicSetup::default(),
        |_| Box::new(|| Some(VecBuf::empty())),
    )
    .unwrap();
    let links: Vec<Arc<WorkerLink>> = (0..n).map(|_| Arc::new(WorkerLink::new(1))).collect();
    let runners = ws
        .into_iter()
        .zip(&links)
        .map(|(w, l)| Runner::spawn(w, Arc::clone(l)))
        .collect();
    let ct = ControlThread::new(ctl, links.clone(), Box::new(|_| String::new()), 0);
    (ct, links, runners)
}

fn apply(ct: &mut ControlThread, lines: &[String]) -> Reply {
    ct.handle(Request::Apply {
        lines: lines.to_vec(),
    })
}

#[test]
fn every_change_is_in_force_on_every_worker_when_it_returns() {
    let (mut ct, links, runners) = setup(3, "");
    for i in 0..200u32 {
        let vip = format!("10.0.1.{}", i % 250 + 1);
        let port = 1000 + i;
        let r = apply(
            &mut ct,
            &[
                format!("-A -t {vip}:80 -s rr"),
                format!("-a -t {vip}:80 -r 10.0.0.11:{port}"),
            ],
        );
        let Reply::Ok { generation } = r else {
            panic!("change {i}: {r:?}")
        };
        assert!(
            links.iter().all(|l| l.generation() == generation),
            "acked by all"
        );
        // The next packet on any worker follows the change.
        let w = &runners[i as usize % 3];
        assert_eq!(
            w.syns(0x0b00_0000 + i * 4, 1, ip(&vip)),
            vec![ip("10.0.0.11")]
        );
        let r = apply(&mut ct, &[format!("-D -t {vip}:80")]);
        assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
        assert_eq!(
            w.syns(0x0c00_0000 + i * 4, 1, ip(&vip)),
            vec![0],
            "deleted: not ours any more"
        );
    }
}

#[test]
fn a_drained_dest_takes_no_new_conns_and_a_refused_change_touches_no_worker() {
    let (mut ct, links, runners) = setup(
        2,
        "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11\n-a -t 10.0.0.100:80 -r 10.0.0.12\n",
    );
    let vip = ip("10.0.0.100");
    let before: Vec<u32> = runners[0].syns(0x0b00_0000, 10, vip);
    assert!(before.contains(&ip("10.0.0.11")) && before.contains(&ip("10.0.0.12")));
    let r = apply(&mut ct, &["-e -t 10.0.0.100:80 -r 10.0.0.11 -w 0".into()]);
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    for w in &runners {
        assert!(w
            .syns(0x0d00_0000, 20, vip)
            .iter()
            .all(|&d| d == ip("10.0.0.12")));
    }
    // Its established conns stay: the listing still counts them.
    let Reply::Listing(l) = ct.handle(Request::List { service: None }) else {
        panic!()
    };
    let drained = l.services[0].dests.iter().find(|d| d.weight == 0).unwrap();
    assert_eq!(
        drained.active + drained.inactive,
        5,
        "its 5 conns from before are still there"
    );
    let gen = links[0].generation();
    let r = apply(
        &mut ct,
        &[
            "-e -t 10.0.0.100:80 -r 10.0.0.11 -w 1".into(),
            "-a -t 10.0.0.100:80 -r 10.0.0.12".into(),
        ],
    );
    let Reply::Error(e) = r else { panic!("{r:?}") };
    assert_eq!(
        e.message,
        "line 2: -t 10.0.0.100:80 -r 10.0.0.12:80: Destination already exists"
    );
    assert!(
        links.iter().all(|l| l.generation() == gen),
        "no worker saw it"
    );
    assert!(runners[1]
        .syns(0x0e00_0000, 10, vip)
        .iter()
        .all(|&d| d == ip("10.0.0.12")));
}

#[test]
fn an_upper_threshold_holds_for_the_dest_as_a_whole() {
    let (mut ct, _links, runners) = setup(
        3,
        "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11 -x 100\n",
    );
    let vip = ip("10.0.0.100");
    let mut total = 0usize;
    let mut now = 0;
    let mut client = 0x0b00_0000;
    for round in 0..6 {
        for w in &runners {
            let got = w.syns(client, 40, vip);
            client += 40;
            total += got.iter().filter(|&&d| d != 0).count();
            assert!(total <= 100, "round {round}: {total} conns over -x 100");
        }
        // The control thread rebalances the shares from the summed counts.
        now += 1000;
        ct.housekeeping(now);
    }
    assert_eq!(
        total, 100,
        "the headroom went to the workers that still had clients"
    );
    let Reply::Listing(l) = ct.handle(Request::List { service: None }) else {
        panic!()
    };
    let d = &l.services[0].dests[0];
    assert_eq!(u64::from(d.active + d.inactive), 100);
    // Per shard, -x 100 would have let each of the 3 workers take 100.
    // Raising the threshold lets new conns in again, on every worker.
    let r = apply(&mut ct, &["-e -t 10.0.0.100:80 -r 10.0.0.11 -x 130".into()]);
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    now += 1000;
    ct.housekeeping(now);
    let more: usize = runners
        .iter()
        .map(|w| {
            let n = w.syns(client, 20, vip).iter().filter(|&&d| d != 0).count();
            client += 20;
            n
        })
        .sum();
    assert_eq!(more, 30);
}

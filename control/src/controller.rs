//! The controller: owns the rule set and answers requests, sans-IO. It takes a
//! [`Request`] and returns a [`Step`]: a reply, or a snapshot to publish to every worker (the
//! driver posts it and answers once every worker runs it), or a conn page to gather. It never
//! touches a socket, a ring or a clock, so it is tested directly.
//!
//! **Changes.** A change is validated whole against a copy of the rules (the one parser and
//! rule checks of [`crate::rules`]), turned into a snapshot (one `Config` per family, with
//! every dest's counter block from the [`StatsRegistry`]; [`crate::snapshot`] rebuilds only
//! the services that changed) and numbered; only then does it become the rules in force. A
//! refused change leaves everything as it was.

use std::sync::Arc;

use rvs_dataplane::addr::{V4, V6};
use rvs_dataplane::config::{Config, FwmarkRule, Sysctl, TunCsum, TunKind};
use rvs_dataplane::proto::{sctp, tcp, udp, Proto};

use crate::link::ConnEntry;
use crate::protocol::{
    ConnRow, DestRow, ErrorKind, ErrorReply, Forward, Listing, Reply, Request, ServiceRow,
    TunCsumInfo, TunnelInfo, VirtualKey,
};
use crate::rules::{parse_line, Command, RuleError, RuleSet, ServiceId};
use crate::snapshot::SnapshotBuilder;
use crate::stats::StatsRegistry;

/// What the rules do not say: the appliance file's sysctls and firewall-mark match rules.
#[derive(Clone)]
pub struct Base {
    pub sysctl: Sysctl,
    pub fwmark_v4: Vec<FwmarkRule<V4>>,
    pub fwmark_v6: Vec<FwmarkRule<V6>>,
}

/// One numbered pair of snapshots for the workers.
#[derive(Clone)]
pub struct Snapshot {
    pub generation: u64,
    pub v4: Arc<Config<V4>>,
    pub v6: Arc<Config<V6>>,
}

/// What the driver does next for a request.
pub enum Step {
    Reply(Reply),
    /// Post this snapshot to every worker; once all run it, reply `Ok { generation }`.
    Publish(Snapshot),
    /// Gather the conn page starting at `cursor` (see [`crate::link`]).
    Conns {
        cursor: u64,
    },
}

pub struct Controller {
    rules: RuleSet,
    base: Base,
    stats: StatsRegistry,
    builder: SnapshotBuilder,
    generation: u64,
    conn_table_size: u64,
}

fn refused(e: impl std::fmt::Display) -> Step {
    Step::Reply(Reply::Error(ErrorReply {
        kind: ErrorKind::Refused,
        message: e.to_string(),
    }))
}

/// A service named as on a command line (`-t 10.0.0.1:80`, `-f 7 -6`), read by the one rules
/// parser.
pub fn parse_service(s: &str) -> Result<ServiceId, RuleError> {
    match parse_line(&format!("-Z {s}"))? {
        Some(Command::Zero(Some(id))) => Ok(id),
        _ => Err(RuleError {
            line: 0,
            message: format!("{s}: not a service"),
            syntax: true,
        }),
    }
}

impl Controller {
    /// A controller over `rules` for `workers` workers, and the first snapshot (generation 1).
    pub fn new(
        rules: RuleSet,
        base: Base,
        workers: u32,
        conn_table_size: u64,
    ) -> Result<(Controller, Snapshot), RuleError> {
        let mut c = Controller {
            rules: RuleSet::new(),
            base,
            stats: StatsRegistry::new(workers),
            builder: SnapshotBuilder::new(),
            generation: 0,
            conn_table_size,
        };
        let snap = c.commit(rules)?;
        Ok((c, snap))
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn stats(&self) -> &StatsRegistry {
        &self.stats
    }

    pub fn stats_mut(&mut self) -> &mut StatsRegistry {
        &mut self.stats
    }

    /// Slice `k` of `n` of the 2 s estimator: the rates of some dests and services move
    /// (`StatsRegistry::estimate_slice`).
    pub fn estimate_slice(&mut self, k: usize, n: usize) {
        self.stats.estimate_slice(&self.rules, k, n);
    }

    /// Build the snapshot of `rules`; on success they are the rules in force.
    fn commit(&mut self, rules: RuleSet) -> Result<Snapshot, RuleError> {
        let mut draft = self.builder.build(&rules, &self.base, &mut self.stats)?;
        let left = self.builder.adopt(&mut draft);
        self.stats.retire(left);
        // No service new and as many as before: the same services (a `-e` on a 10k-service
        // set does not walk them all again).
        let same_services =
            draft.new_services == 0 && rules.services.len() == self.rules.services.len();
        self.rules = rules;
        if !same_services {
            self.stats.sync(&self.rules);
        }
        self.generation += 1;
        let (v4, v6) = (Arc::new(draft.v4), Arc::new(draft.v6));
        self.builder.in_force(Arc::clone(&v4), Arc::clone(&v6));
        Ok(Snapshot {
            generation: self.generation,
            v4,
            v6,
        })
    }

    /// Answer a request.
    pub fn handle(&mut self, req: Request) -> Step {
        match req {
            Request::Apply { lines } => self.apply(&lines),
            // rvsadm leaves the syntax of a 110k-line text to us (checking it there too
            // took a quarter of a 10k-service --replace); it still exits 2 for it.
            Request::Replace { text } => match RuleSet::from_text(&text) {
                Ok(rules) => self.change(rules),
                Err(e) if e.syntax => Step::Reply(Reply::Error(ErrorReply {
                    kind: ErrorKind::Invalid,
                    message: e.to_string(),
                })),
                Err(e) => refused(e),
            },
            Request::Zero { service } => match self.known_service(service.as_deref()) {
                Ok(id) => {
                    self.stats.zero(id);
                    Step::Reply(Reply::Ok {
                        generation: self.generation,
                    })
                }
                Err(e) => refused(e),
            },
            Request::List { service } => match self.known_service(service.as_deref()) {
                Ok(id) => Step::Reply(Reply::Listing(self.listing(id))),
                Err(e) => refused(e),
            },
            Request::Conns { cursor } => Step::Conns { cursor },
            Request::Save => Step::Reply(Reply::Save {
                text: self.rules.save(),
            }),
            Request::Timeouts => {
                let (tcp, tcpfin, udp) = self.timeouts();
                Step::Reply(Reply::Timeouts { tcp, tcpfin, udp })
            }
        }
    }

    /// The service a request names (`-t 10.0.0.1:80`), if it names one that exists.
    fn known_service(&self, s: Option<&str>) -> Result<Option<ServiceId>, String> {
        let Some(s) = s else {
            return Ok(None);
        };
        let id = parse_service(s).map_err(|e| e.to_string())?;
        if self.rules.service(&id).is_none() {
            return Err(format!("{id}: No such service"));
        }
        Ok(Some(id))
    }

    /// Lines applied in order to a copy; all or none. With several lines, errors name the
    /// line (1-based).
    fn apply(&mut self, lines: &[String]) -> Step {
        let mut next = self.rules.clone();
        let mut zero = Vec::new();
        let multi = lines.len() > 1;
        for (i, line) in lines.iter().enumerate() {
            let at = |e: RuleError| RuleError {
                line: if multi { i + 1 } else { e.line },
                ..e
            };
            let cmd = match parse_line(line) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => return refused(at(e)),
            };
            if let Err(e) = next.apply_in_place(&cmd) {
                return refused(at(e));
            }
            if let Command::Zero(id) = cmd {
                zero.push(id);
            }
        }
        let step = self.change(next);
        if !matches!(step, Step::Reply(Reply::Error(_))) {
            for id in zero {
                self.stats.zero(id);
            }
        }
        step
    }

    /// Make `rules` the rules in force, if they differ and build.
    fn change(&mut self, rules: RuleSet) -> Step {
        if rules == self.rules {
            return Step::Reply(Reply::Ok {
                generation: self.generation,
            });
        }
        match self.commit(rules) {
            Ok(s) => Step::Publish(s),
            Err(e) => refused(e),
        }
    }

    /// The `--set` timeouts in force (tcp, tcpfin, udp), seconds.
    pub fn timeouts(&self) -> (u32, u32, u32) {
        let mut t = self.base.sysctl.timeouts.clone();
        let s = self.rules.timeouts;
        t.set_tcp_tcpfin_udp(s.tcp, s.tcpfin, s.udp);
        (
            t.of(Proto::Tcp, tcp::TcpState::Established as u8) / 1000,
            t.of(Proto::Tcp, tcp::TcpState::FinWait as u8) / 1000,
            t.of(Proto::Udp, udp::STATE_NORMAL) / 1000,
        )
    }

    /// What `-L` shows: every service (or one), its dests in the kernel's order, counts,
    /// counters since `-Z` and rates.
    pub fn listing(&self, only: Option<ServiceId>) -> Listing {
        let mut services = Vec::new();
        for s in &self.rules.services {
            let id = s.spec.id;
            if only.is_some_and(|o| o != id) {
                continue;
            }
            let (stats, rates) = self.stats.service(s, false);
            let key = match id {
                ServiceId::Addr { proto, addr, port } => VirtualKey::Addr {
                    proto: proto as u8,
                    addr,
                    port,
                },
                ServiceId::Fwmark { mark, v6 } => VirtualKey::Fwmark { mark, v6 },
            };
            let dests = s
                .dests
                .iter()
                .map(|d| {
                    let (st, t, r) = self.stats.dest(&(id, d.addr, d.port));
                    DestRow {
                        addr: d.addr,
                        port: d.port,
                        forward: match d.fwd {
                            rvs_dataplane::config::Fwd::Droute => Forward::Route,
                            rvs_dataplane::config::Fwd::Masq => Forward::Masq,
                            rvs_dataplane::config::Fwd::Tunnel => Forward::Tunnel,
                        },
                        weight: d.weight,
                        u_threshold: d.u_threshold,
                        l_threshold: d.l_threshold,
                        active: clamp(t.active),
                        inactive: clamp(t.inactive),
                        persist: clamp(t.persist),
                        tunnel: (d.fwd == rvs_dataplane::config::Fwd::Tunnel).then(|| {
                            let csum = match d.tun.csum {
                                TunCsum::NoCsum => TunCsumInfo::NoCsum,
                                TunCsum::Csum => TunCsumInfo::Csum,
                                TunCsum::RemCsum => TunCsumInfo::RemCsum,
                            };
                            match d.tun.kind {
                                TunKind::Ipip => TunnelInfo::Ipip,
                                TunKind::Gue => TunnelInfo::Gue {
                                    port: d.tun.port,
                                    csum,
                                },
                                TunKind::Gre => TunnelInfo::Gre { csum },
                            }
                        }),
                        stats: st,
                        rates: r,
                    }
                })
                .collect();
            let (persistent, netmask_prefix) = match s.spec.persistence {
                Some(p) => (Some(p.timeout_s), p.prefix),
                None => (None, if id.is_v6() { 128 } else { 32 }),
            };
            let f = s.spec.flags;
            services.push(ServiceRow {
                key,
                sched: s.spec.sched.name().to_string(),
                sched_flags: u32::from(f.flag1) | u32::from(f.flag2) << 1 | u32::from(f.flag3) << 2,
                persistent,
                netmask_prefix,
                ops: s.spec.ops,
                stats,
                rates,
                dests,
            });
        }
        Listing {
            conn_table_size: self.conn_table_size,
            services,
        }
    }
}

fn clamp(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A worker's conn entry as the listing shows it.
pub fn conn_row(e: &ConnEntry) -> ConnRow {
    let state = match (e.template, e.proto) {
        (_, 6) => tcp::TcpState::from_u8(e.state).map_or("ERR!", |s| s.name()),
        (_, 132) => sctp::SctpState::from_u8(e.state).map_or("ERR!", |s| s.name()),
        (_, 17) => udp::name(e.state),
        // A firewall-mark template (protocol IP), as the kernel names it.
        _ => "NONE",
    };
    ConnRow {
        proto: e.proto,
        caddr: e.caddr,
        cport: e.cport,
        vaddr: e.vaddr,
        vport: e.vport,
        daddr: e.daddr,
        dport: e.dport,
        state: state.to_string(),
        expires_ms: e.expires_ms,
    }
}

/// The cursor of a listing across workers: worker, family, slot in one u64.
pub fn pack_cursor(worker: u32, v6: bool, slot: u32) -> u64 {
    u64::from(worker) << 33 | u64::from(v6) << 32 | u64::from(slot)
}

pub fn unpack_cursor(c: u64) -> (u32, bool, u32) {
    ((c >> 33) as u32, (c >> 32) & 1 == 1, c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_dataplane::addr::Family;

    fn ctl() -> Controller {
        let base = Base {
            sysctl: Sysctl::default(),
            fwmark_v4: Vec::new(),
            fwmark_v6: Vec::new(),
        };
        Controller::new(RuleSet::new(), base, 2, 1024).unwrap().0
    }

    fn apply(c: &mut Controller, lines: &[&str]) -> Step {
        c.handle(Request::Apply {
            lines: lines.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn refusal(s: Step) -> String {
        match s {
            Step::Reply(Reply::Error(e)) => {
                assert_eq!(e.kind, ErrorKind::Refused);
                e.message
            }
            _ => panic!("expected a refusal"),
        }
    }

    #[test]
    fn a_change_is_a_numbered_snapshot_with_every_dest_counted_apart() {
        let mut c = ctl();
        assert_eq!(c.generation(), 1, "the first snapshot");
        let s = apply(
            &mut c,
            &[
                "-A -t 10.0.0.1:80 -s rr",
                "-a -t 10.0.0.1:80 -r 10.0.1.1",
                "-a -t 10.0.0.1:80 -r 10.0.1.2",
            ],
        );
        let Step::Publish(snap) = s else {
            panic!("a change publishes")
        };
        assert_eq!(snap.generation, 2);
        let dests = &snap.v4.services[0].dests;
        let blocks: Vec<_> = dests.iter().map(|d| d.stats.0.clone().unwrap()).collect();
        assert!(!Arc::ptr_eq(&blocks[0], &blocks[1]));
        assert_eq!(blocks[0].workers(), 2);
        // An edit keeps the dests' blocks (their counters run on).
        let Step::Publish(snap2) = apply(&mut c, &["-e -t 10.0.0.1:80 -r 10.0.1.1 -w 0"]) else {
            panic!()
        };
        let again = snap2.v4.services[0]
            .dests
            .iter()
            .find(|d| d.weight == 0)
            .unwrap();
        let before = dests.iter().find(|d| d.addr == again.addr).unwrap();
        assert!(Arc::ptr_eq(
            again.stats.0.as_ref().unwrap(),
            before.stats.0.as_ref().unwrap()
        ));
        // Nothing changed: no snapshot.
        assert!(matches!(
            apply(&mut c, &["-e -t 10.0.0.1:80 -r 10.0.1.1 -w 0"]),
            Step::Reply(Reply::Ok { generation: 3 })
        ));
    }

    #[test]
    fn a_refused_line_changes_nothing_and_is_named() {
        let mut c = ctl();
        let _ = apply(&mut c, &["-A -t 10.0.0.1:80"]);
        let before = c.rules().clone();
        let gen = c.generation();
        let msg = refusal(apply(
            &mut c,
            &[
                "-a -t 10.0.0.1:80 -r 10.0.1.1",
                "-a -t 10.0.0.2:80 -r 10.0.1.1",
            ],
        ));
        assert_eq!(msg, "line 2: -t 10.0.0.2:80: Service not defined");
        assert_eq!(c.rules(), &before, "all or none");
        assert_eq!(c.generation(), gen);
        let msg = refusal(apply(&mut c, &["-A -t 10.0.0.1:80"]));
        assert_eq!(msg, "-t 10.0.0.1:80: Service already exists");
        let msg = refusal(apply(&mut c, &["-a -t 10.0.0.1:80 -r 10.0.1.1 -w 70000"]));
        assert!(msg.contains("-w 70000"), "{msg}");
        // A --replace whose line does not parse (-y above -x): `Invalid`, rvsadm's exit 2.
        let Step::Reply(Reply::Error(e)) = c.handle(Request::Replace {
            text: "-A -t 10.0.0.9:80\n-a -t 10.0.0.9:80 -r 10.0.1.1 -x 1 -y 5\n".into(),
        }) else {
            panic!("expected a refusal")
        };
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.starts_with("line 2:"), "{}", e.message);
        assert_eq!(c.rules(), &before);
    }

    #[test]
    fn snapshots_find_their_services_whether_the_index_is_copied_or_built() {
        let mut c = ctl();
        let vip = |s: &str| V4::from_ip(s.parse().unwrap()).unwrap();
        let find = |snap: &Snapshot, a: &str| snap.v4.find_service(0, Proto::Tcp, vip(a), 80);
        let Step::Publish(a) = apply(&mut c, &["-A -t 10.0.0.1:80", "-A -t 10.0.0.2:80"]) else {
            panic!()
        };
        assert_eq!(
            (find(&a, "10.0.0.1"), find(&a, "10.0.0.2")),
            (Some(0), Some(1))
        );
        // An edit keeps every key in its place: the index is copied.
        let Step::Publish(b) = apply(&mut c, &["-E -t 10.0.0.2:80 -s rr"]) else {
            panic!()
        };
        assert_eq!(
            (find(&b, "10.0.0.1"), find(&b, "10.0.0.2")),
            (Some(0), Some(1))
        );
        // A deletion moves the second service to the first place: built again.
        let Step::Publish(d) = apply(&mut c, &["-D -t 10.0.0.1:80"]) else {
            panic!()
        };
        assert_eq!(
            (find(&d, "10.0.0.1"), find(&d, "10.0.0.2")),
            (None, Some(0))
        );
        // As many services as before, one of them new: built again.
        let Step::Publish(e) = c.handle(Request::Replace {
            text: "-A -t 10.0.0.3:80\n".into(),
        }) else {
            panic!()
        };
        assert_eq!(
            (find(&e, "10.0.0.2"), find(&e, "10.0.0.3")),
            (None, Some(0))
        );
    }

    #[test]
    fn replace_swaps_the_whole_set_and_keeps_the_blocks_of_dests_that_stay() {
        let mut c = ctl();
        let Step::Publish(a) = apply(
            &mut c,
            &[
                "-A -t 10.0.0.1:80",
                "-a -t 10.0.0.1:80 -r 10.0.1.1",
                "-A -u 10.0.0.1:53",
            ],
        ) else {
            panic!()
        };
        let Step::Publish(b) = c.handle(Request::Replace {
            text: "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1\n-a -t 10.0.0.1:80 -r 10.0.1.3\n"
                .into(),
        }) else {
            panic!()
        };
        assert_eq!(c.rules().services.len(), 1, "the UDP service went");
        let kept = |s: &Snapshot| {
            s.v4.services[0]
                .dests
                .iter()
                .find(|d| {
                    d.port == 80
                        && d.addr.to_ip() == "10.0.1.1".parse::<std::net::IpAddr>().unwrap()
                })
                .and_then(|d| d.stats.0.clone())
                .unwrap()
        };
        assert!(Arc::ptr_eq(&kept(&a), &kept(&b)));
        assert_eq!(c.rules().save(), "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1\n-a -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 1\n");
    }

    #[test]
    fn listings_show_counts_and_zero_resets_what_they_show() {
        let mut c = ctl();
        let Step::Publish(s) = apply(
            &mut c,
            &[
                "-A -t 10.0.0.1:80 -p 60",
                "-a -t 10.0.0.1:80 -r 10.0.1.1 -m -x 10",
            ],
        ) else {
            panic!()
        };
        let b = s.v4.services[0].dests[0].stats.0.clone().unwrap();
        b.cells(0).inpkts.add(5);
        b.cells(1).inpkts.add(7);
        b.cells(1).active.set(3);
        let Step::Reply(Reply::Listing(l)) = c.handle(Request::List { service: None }) else {
            panic!()
        };
        assert_eq!(l.conn_table_size, 1024);
        let svc = &l.services[0];
        assert_eq!(
            (svc.persistent, svc.netmask_prefix, svc.sched.as_str()),
            (Some(60), 32, "wlc")
        );
        let d = &svc.dests[0];
        assert_eq!(
            (d.forward, d.u_threshold, d.active, d.stats.inpkts),
            (Forward::Masq, 10, 3, 12)
        );
        assert_eq!(svc.stats.inpkts, 12);
        assert!(matches!(
            c.handle(Request::Zero {
                service: Some("-t 10.0.0.1:80".into())
            }),
            Step::Reply(Reply::Ok { .. })
        ));
        let Step::Reply(Reply::Listing(l)) = c.handle(Request::List {
            service: Some("-t 10.0.0.1:80".into()),
        }) else {
            panic!()
        };
        let d = &l.services[0].dests[0];
        assert_eq!(
            (d.stats.inpkts, d.active),
            (0, 3),
            "-Z zeroes counters, not counts"
        );
        assert_eq!(c.stats().totals().inpkts, 12, "the series never go back");
        assert_eq!(
            refusal(c.handle(Request::List {
                service: Some("-u 10.0.0.1:80".into())
            })),
            "-u 10.0.0.1:80: No such service"
        );
        assert_eq!(
            refusal(c.handle(Request::Zero {
                service: Some("-t 10.0.0.9:80".into())
            })),
            "-t 10.0.0.9:80: No such service"
        );
    }

    #[test]
    fn timeouts_and_save_answer_from_the_rules_in_force() {
        let mut c = ctl();
        assert!(matches!(
            c.handle(Request::Timeouts),
            Step::Reply(Reply::Timeouts {
                tcp: 900,
                tcpfin: 120,
                udp: 300
            })
        ));
        let _ = apply(&mut c, &["--set 100 0 20"]);
        assert!(matches!(
            c.handle(Request::Timeouts),
            Step::Reply(Reply::Timeouts {
                tcp: 100,
                tcpfin: 120,
                udp: 20
            })
        ));
        let Step::Reply(Reply::Save { text }) = c.handle(Request::Save) else {
            panic!()
        };
        assert_eq!(text, "--set 100 0 20\n");
    }

    #[test]
    fn cursors_pack_worker_family_and_slot() {
        for (w, v6, s) in [(0, false, 0), (3, true, 77), (255, true, u32::MAX)] {
            assert_eq!(unpack_cursor(pack_cursor(w, v6, s)), (w, v6, s));
        }
    }
}

//! [`RuleSet`]: the services and `--set` timeouts that a sequence of commands built, each
//! command run with the kernel's checks, and the set's `ipvsadm-save -n` form.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use rvs_dataplane::config::FastHasher;
use rvs_dataplane::proto::MAX_TIMEOUT_S;

use super::dest_run::DestRun;
use super::model::{AddrPort, Command, Dest, Service, ServiceId, SetTimeouts};
use super::validate::{normalize_dest_port, validate_dest, validate_spec};
use super::{parse_line, RuleError};

/// The services and `--set` timeouts that a sequence of commands built.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RuleSet {
    /// In the order they were added. Shared between the sets a change makes from one
    /// another (a change copies only the services it touches), so that cloning a 10k-service
    /// set for a `-e`, comparing it with the set in force and building its snapshot cost
    /// pointers, not services.
    pub services: Vec<Arc<Service>>,
    pub timeouts: SetTimeouts,
    /// Where each service is in `services` (a 10k-service set is not searched line by line).
    by_id: ServiceIndex,
}

/// Service id -> position. Kept by [`RuleSet::apply_in_place`]; a set whose `services` was
/// changed from outside is searched instead (the index is trusted only while it agrees).
#[derive(Clone, Debug, Default)]
struct ServiceIndex(
    HashMap<ServiceId, usize, BuildHasherDefault<FastHasher>>,
    /// The service the last `-a`/`-e` line named: a rules file lists a service's dests
    /// after it, so the next one most likely names it too (checked, never trusted).
    usize,
);

/// ipvsadm's words for a `-a` of a dest (port normalized) the service has.
fn exists(id: &ServiceId, d: &Dest) -> String {
    format!(
        "{id} -r {}: Destination already exists",
        AddrPort(d.addr, d.port)
    )
}

/// Two rule sets are equal by their rules; the index is how they are searched.
impl PartialEq for ServiceIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for ServiceIndex {}

impl RuleSet {
    /// An empty rule set.
    pub fn new() -> Self {
        RuleSet::default()
    }

    /// Parse a rules text and apply every command in order. The error names the line.
    /// (`-a` lines in a row for one service are added as one run, `dest_run.rs`: the same
    /// checks, errors and order as one at a time, in linear time.)
    pub fn from_text(text: &str) -> Result<RuleSet, RuleError> {
        let mut rs = RuleSet::new();
        let mut run: Option<DestRun> = None;
        for (i, line) in text.lines().enumerate() {
            let Some(cmd) = parse_line(line).map_err(|e| e.at(i + 1).syntax())? else {
                continue;
            };
            if let Command::AddServer(id, d) = &cmd {
                if let Some(r) = run.take_if(|r| !r.is_for(id)) {
                    r.finish(&mut rs);
                }
                let (at, d) = rs
                    .checked_dest(id, d)
                    .map_err(|e| RuleError::new(e).at(i + 1))?;
                let r = run.get_or_insert_with(|| DestRun::new(*id, at));
                if let Err(d) = r.add(&rs, d) {
                    return Err(RuleError::new(exists(id, &d)).at(i + 1));
                }
                continue;
            }
            if let Some(r) = run.take() {
                r.finish(&mut rs);
            }
            rs.apply_in_place(&cmd).map_err(|e| e.at(i + 1))?;
        }
        if let Some(r) = run.take() {
            r.finish(&mut rs);
        }
        Ok(rs)
    }

    /// A `-a`/`-e` line's service (its place) and dest, port normalized, with the kernel's
    /// checks of both.
    fn checked_dest(&mut self, id: &ServiceId, d: &Dest) -> Result<(usize, Dest), String> {
        if self.by_id.0.len() != self.services.len() {
            self.reindex();
        }
        let i = self
            .index_for_dest(id)
            .ok_or_else(|| format!("{id}: Service not defined"))?;
        let mut d = d.clone();
        normalize_dest_port(id, &mut d);
        validate_dest(id, &d)?;
        d.last_weight = d.weight;
        Ok((i, d))
    }

    /// The service named `id`.
    pub fn service(&self, id: &ServiceId) -> Option<&Service> {
        self.index(id)
            .and_then(|i| self.services.get(i))
            .map(|s| &**s)
    }

    fn index(&self, id: &ServiceId) -> Option<usize> {
        let m = &self.by_id.0;
        if m.len() == self.services.len() {
            match m.get(id) {
                Some(&i) if self.services.get(i).is_some_and(|s| s.spec.id == *id) => {
                    return Some(i)
                }
                None => return None,
                Some(_) => {}
            }
        }
        self.services.iter().position(|s| s.spec.id == *id)
    }

    /// [`Self::index`] for a dest's line: the service of the dest line before first.
    fn index_for_dest(&mut self, id: &ServiceId) -> Option<usize> {
        let last = self.by_id.1;
        if self.services.get(last).is_some_and(|s| s.spec.id == *id) {
            return Some(last);
        }
        let i = self.index(id)?;
        self.by_id.1 = i;
        Some(i)
    }

    fn reindex(&mut self) {
        self.by_id.0 = self
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.spec.id, i))
            .collect();
    }

    /// Run `cmd` with the kernel's checks and return the new set; `self` is not changed, so
    /// a refused command changes nothing.
    pub fn apply(&self, cmd: &Command) -> Result<RuleSet, RuleError> {
        let mut next = self.clone();
        next.apply_in_place(cmd)?;
        Ok(next)
    }

    /// As [`apply`](Self::apply), changing `self`; on error `self` is unchanged (every check
    /// runs before the first change).
    pub fn apply_in_place(&mut self, cmd: &Command) -> Result<(), RuleError> {
        self.apply_inner(cmd).map_err(RuleError::new)
    }

    fn apply_inner(&mut self, cmd: &Command) -> Result<(), String> {
        if self.by_id.0.len() != self.services.len() {
            self.reindex();
        }
        let no_service = |id: &ServiceId| format!("{id}: No such service");
        match cmd {
            Command::AddService(spec) => {
                validate_spec(spec)?;
                if self.index(&spec.id).is_some() {
                    return Err(format!("{}: Service already exists", spec.id));
                }
                self.by_id.0.insert(spec.id, self.services.len());
                self.services.push(Arc::new(Service {
                    spec: spec.clone(),
                    dests: Vec::new(),
                }));
            }
            Command::EditService(spec) => {
                validate_spec(spec)?;
                let i = self.index(&spec.id).ok_or_else(|| no_service(&spec.id))?;
                if let Some(s) = self.services.get_mut(i).map(Arc::make_mut) {
                    s.spec = spec.clone();
                }
            }
            Command::DeleteService(id) => {
                let i = self.index(id).ok_or_else(|| no_service(id))?;
                self.services.remove(i);
                self.reindex();
            }
            Command::Clear => {
                self.services.clear();
                self.by_id.0.clear();
            }
            Command::Zero(id) => {
                if let Some(id) = id {
                    self.index(id).ok_or_else(|| no_service(id))?;
                }
            }
            Command::SetTimeouts(t) => {
                for v in [t.tcp, t.tcpfin, t.udp] {
                    if v > MAX_TIMEOUT_S {
                        return Err(format!(
                            "--set {v}: timeouts must be 0..{MAX_TIMEOUT_S} seconds"
                        ));
                    }
                }
                let keep = |new: u32, old: u32| if new != 0 { new } else { old };
                self.timeouts = SetTimeouts {
                    tcp: keep(t.tcp, self.timeouts.tcp),
                    tcpfin: keep(t.tcpfin, self.timeouts.tcpfin),
                    udp: keep(t.udp, self.timeouts.udp),
                };
            }
            Command::AddServer(id, d) | Command::EditServer(id, d) => {
                let add = matches!(cmd, Command::AddServer(..));
                let (i, mut d) = self.checked_dest(id, d)?;
                let Some(svc) = self.services.get_mut(i).map(Arc::make_mut) else {
                    return Err(no_service(id));
                };
                let pos = svc
                    .dests
                    .iter()
                    .position(|x| (x.addr, x.port) == (d.addr, d.port));
                let dname = || format!("{id} -r {}", AddrPort(d.addr, d.port));
                match (add, pos) {
                    (true, Some(_)) => return Err(exists(id, &d)),
                    (false, None) => return Err(format!("{}: No such destination", dname())),
                    (true, None) => svc.dests.insert(0, d),
                    (false, Some(p)) => {
                        if let Some(old) = svc.dests.get_mut(p) {
                            d.last_weight = if d.weight != 0 {
                                d.weight
                            } else {
                                old.last_weight
                            };
                            *old = d;
                        }
                    }
                }
            }
            Command::DeleteServer(id, addr, port) => {
                let i = self
                    .index(id)
                    .ok_or_else(|| format!("{id}: Service not defined"))?;
                let Some(svc) = self.services.get_mut(i).map(Arc::make_mut) else {
                    return Err(no_service(id));
                };
                let p = svc
                    .dests
                    .iter()
                    .position(|x| (x.addr, x.port) == (*addr, *port))
                    .ok_or_else(|| {
                        format!("{id} -r {}: No such destination", AddrPort(*addr, *port))
                    })?;
                svc.dests.remove(p);
            }
        }
        Ok(())
    }

    /// The rule set in `ipvsadm-save -n` form: a `--set` line when timeouts were set, then
    /// each service's `-A` line followed by its `-a` lines, oldest dest first (so restoring
    /// rebuilds the kernel's newest-first order). [`RuleSet::from_text`] reads it back to an
    /// equal set.
    pub fn save(&self) -> String {
        let mut out = String::new();
        if !self.timeouts.is_unset() {
            let _ = writeln!(out, "{}", Command::SetTimeouts(self.timeouts));
        }
        for s in &self.services {
            let _ = writeln!(out, "{}", Command::AddService(s.spec.clone()));
            for d in s.dests.iter().rev() {
                let _ = writeln!(out, "{}", Command::AddServer(s.spec.id, d.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use rvs_dataplane::config::{Sysctl, TunConfig, TunCsum, TunKind};
    use rvs_dataplane::sched::SchedKind;

    use super::super::testutil::{cmd, err, ip, set, tcp};
    use super::*;
    use crate::rules::{Dest, Persist, ServiceSpec};

    #[test]
    fn set_timeouts() {
        assert_eq!(
            cmd("--set 900 120 300"),
            Command::SetTimeouts(SetTimeouts {
                tcp: 900,
                tcpfin: 120,
                udp: 300
            })
        );
        assert_eq!(
            cmd("--set 0 0 7"),
            Command::SetTimeouts(SetTimeouts {
                tcp: 0,
                tcpfin: 0,
                udp: 7
            })
        );
        assert!(err("--set 1 2").contains("needs three timeouts"));
        assert!(err("--set 1 2 3 4").contains("needs three timeouts"));
        assert!(err("--set 1 2 99999999")
            .contains("--set 99999999: udp timeout must be 0..2147483 seconds"));
        let rs = set("--set 0 30 0\n--set 100 0 0\n");
        assert_eq!(
            rs.timeouts,
            SetTimeouts {
                tcp: 100,
                tcpfin: 30,
                udp: 0
            }
        );
        let (c4, _) = rs.to_configs(Sysctl::default()).unwrap();
        assert_eq!(c4.sysctl.timeouts.tcp_tcpfin_udp(), (100, 30, 300));
    }

    #[test]
    fn add_edit_delete_services() {
        let rs = set("-A -t 10.0.0.1:80 -s rr -p 60\n-A -u 10.0.0.1:53\n");
        assert_eq!(rs.services.len(), 2);
        let e = rs.apply(&cmd("-A -t 10.0.0.1:80")).unwrap_err();
        assert_eq!(e.message, "-t 10.0.0.1:80: Service already exists");
        // -E replaces every setting, defaults included: persistence goes.
        let rs2 = rs.apply(&cmd("-E -t 10.0.0.1:80 -s sh")).unwrap();
        let s = rs2.service(&tcp("10.0.0.1", 80)).unwrap();
        assert_eq!((s.spec.sched, s.spec.persistence), (SchedKind::Sh, None));
        assert_eq!(
            rs.apply(&cmd("-E -t 10.0.0.9:80")).unwrap_err().message,
            "-t 10.0.0.9:80: No such service"
        );
        let rs3 = rs.apply(&cmd("-D -t 10.0.0.1:80")).unwrap();
        assert_eq!(rs3.services.len(), 1);
        assert_eq!(
            rs3.apply(&cmd("-D -t 10.0.0.1:80")).unwrap_err().message,
            "-t 10.0.0.1:80: No such service"
        );
        assert_eq!(rs.apply(&Command::Clear).unwrap().services.len(), 0);
        // TCP and UDP on the same VIP:port are different services; so are v4/v6 fwmarks.
        let rs4 = set("-A -t 10.0.0.1:80\n-A -u 10.0.0.1:80\n-A -f 1\n-A -f 1 -6\n");
        assert_eq!(rs4.services.len(), 4);
        // Port 0 is fine for a persistent service; editing it to non-persistent is not.
        let rs5 = set("-A -t 10.0.0.1:0 -p");
        assert!(rs5
            .apply(&ServiceSpec::new(tcp("10.0.0.1", 0)).into_edit())
            .is_err());
        // -Z checks the service exists and changes nothing.
        assert_eq!(rs.apply(&cmd("-Z -t 10.0.0.1:80")).unwrap(), rs);
        assert_eq!(rs.apply(&cmd("-Z")).unwrap(), rs);
        assert!(rs.apply(&cmd("-Z -t 10.0.0.7:80")).is_err());
    }

    impl ServiceSpec {
        fn into_edit(self) -> Command {
            Command::EditService(self)
        }
    }

    #[test]
    fn add_edit_delete_servers() {
        let rs = set("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.11 -w 3\n");
        let e = rs
            .apply(&cmd("-a -t 10.0.0.1:80 -r 10.0.0.11 -w 9"))
            .unwrap_err();
        assert_eq!(
            e.message,
            "-t 10.0.0.1:80 -r 10.0.0.11:80: Destination already exists"
        );
        // -e replaces every setting: without -w the weight is 1 again (ipvsadm).
        let rs2 = rs
            .apply(&cmd("-e -t 10.0.0.1:80 -r 10.0.0.11 -x 10"))
            .unwrap();
        let d = &rs2.service(&tcp("10.0.0.1", 80)).unwrap().dests[0];
        assert_eq!((d.weight, d.u_threshold), (1, 10));
        let e = rs
            .apply(&cmd("-e -t 10.0.0.1:80 -r 10.0.0.12"))
            .unwrap_err();
        assert_eq!(
            e.message,
            "-t 10.0.0.1:80 -r 10.0.0.12:80: No such destination"
        );
        let e = rs
            .apply(&cmd("-e -t 10.0.0.2:80 -r 10.0.0.12"))
            .unwrap_err();
        assert_eq!(e.message, "-t 10.0.0.2:80: Service not defined");
        let rs3 = rs.apply(&cmd("-d -t 10.0.0.1:80 -r 10.0.0.11")).unwrap();
        assert!(rs3.service(&tcp("10.0.0.1", 80)).unwrap().dests.is_empty());
        assert!(rs3
            .apply(&cmd("-d -t 10.0.0.1:80 -r 10.0.0.11"))
            .unwrap_err()
            .message
            .contains("No such destination"));
        assert!(rs
            .apply(&cmd("-d -t 10.0.0.1:81 -r 10.0.0.11"))
            .unwrap_err()
            .message
            .contains("Service not defined"));
        // A NAT dest is keyed by its own port: two ports of one address are two dests.
        let rs4 = set("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -m\n-a -t 10.0.0.1:80 -r 10.0.0.11:8081 -m\n");
        assert_eq!(rs4.services[0].dests.len(), 2);
        assert!(rs4.apply(&cmd("-d -t 10.0.0.1:80 -r 10.0.0.11")).is_err());
        // Deleting a service deletes its dests.
        let rs5 = rs
            .apply(&cmd("-D -t 10.0.0.1:80"))
            .unwrap()
            .apply(&cmd("-A -t 10.0.0.1:80"))
            .unwrap();
        assert!(rs5.services[0].dests.is_empty());
    }

    #[test]
    fn new_dests_go_to_the_list_head_as_in_the_kernel() {
        let rs = set("-A -t 10.0.0.1:80 -s rr\n\
             -a -t 10.0.0.1:80 -r 10.0.0.11\n\
             -a -t 10.0.0.1:80 -r 10.0.0.12\n\
             -a -t 10.0.0.1:80 -r 10.0.0.13\n\
             -e -t 10.0.0.1:80 -r 10.0.0.12 -w 4\n");
        let order: Vec<String> = rs.services[0]
            .dests
            .iter()
            .map(|d| d.addr.to_string())
            .collect();
        assert_eq!(order, ["10.0.0.13", "10.0.0.12", "10.0.0.11"]);
        // save writes oldest first, so a restore rebuilds the same order.
        let text = rs.save();
        assert_eq!(
            text,
            "-A -t 10.0.0.1:80 -s rr\n\
             -a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 1\n\
             -a -t 10.0.0.1:80 -r 10.0.0.12:80 -g -w 4\n\
             -a -t 10.0.0.1:80 -r 10.0.0.13:80 -g -w 1\n"
        );
        assert_eq!(RuleSet::from_text(&text).unwrap(), rs);
    }

    #[test]
    fn apply_leaves_the_old_set_unchanged_on_error() {
        let rs = set("--set 10 20 30\n-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.11\n");
        let before = rs.clone();
        let bad = [
            cmd("-A -t 10.0.0.1:80"),
            cmd("-a -t 10.0.0.1:80 -r 10.0.0.11"),
            cmd("-e -t 10.0.0.1:80 -r 10.0.0.99"),
            cmd("-D -t 10.0.0.2:80"),
            Command::SetTimeouts(SetTimeouts {
                tcp: 1,
                tcpfin: 1,
                udp: u32::MAX,
            }),
            Command::AddServer(
                tcp("10.0.0.1", 80),
                Dest {
                    weight: 70_000,
                    ..Dest::new(ip("10.0.0.12"), 80)
                },
            ),
            Command::AddServer(
                tcp("10.0.0.1", 80),
                Dest {
                    weight: -1,
                    ..Dest::new(ip("10.0.0.12"), 80)
                },
            ),
            Command::AddServer(
                tcp("10.0.0.1", 80),
                Dest {
                    l_threshold: 5,
                    ..Dest::new(ip("10.0.0.12"), 80)
                },
            ),
            Command::AddServer(
                tcp("10.0.0.1", 80),
                Dest {
                    tun: TunConfig {
                        kind: TunKind::Gue,
                        port: 1,
                        csum: TunCsum::NoCsum,
                    },
                    ..Dest::new(ip("10.0.0.12"), 80)
                },
            ),
            Command::AddService(ServiceSpec::new(ServiceId::Fwmark { mark: 0, v6: false })),
            Command::AddService(ServiceSpec {
                persistence: Some(Persist {
                    timeout_s: 0,
                    prefix: 32,
                }),
                ..ServiceSpec::new(tcp("10.0.0.5", 80))
            }),
            Command::AddService(ServiceSpec {
                persistence: Some(Persist {
                    timeout_s: 5,
                    prefix: 33,
                }),
                ..ServiceSpec::new(tcp("10.0.0.5", 80))
            }),
            Command::AddService(ServiceSpec {
                ops: true,
                ..ServiceSpec::new(tcp("10.0.0.5", 80))
            }),
        ];
        for c in &bad {
            assert!(rs.apply(c).is_err(), "{c:?}");
            assert_eq!(rs, before);
            let mut m = rs.clone();
            assert!(m.apply_in_place(c).is_err());
            assert_eq!(m, before, "{c:?}");
        }
    }

    #[test]
    fn save_writes_ipvsadm_save_lines() {
        let rs = set("--set 3600 0 0\n\
             -A -t 10.0.0.1:80 -s sh -b sh-fallback -p 60 -M 255.255.255.0\n\
             -a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gre --tun-csum -x 9 -y 3\n\
             -A -u [fd00::1]:53 -o -p -M 64\n\
             -a -u [fd00::1]:53 -r [fd00::2]:5353 -m -w 0\n\
             -A -f 7 -6 -s rr\n\
             -A --sctp-service 10.0.0.1:0 -p 1\n");
        assert_eq!(
            rs.save(),
            "--set 3600 0 0\n\
             -A -t 10.0.0.1:80 -s sh -p 60 -M 255.255.255.0 -b sh-fallback\n\
             -a -t 10.0.0.1:80 -r 10.0.0.11:80 -i -w 1 --tun-type gre --tun-csum -x 9 -y 3\n\
             -A -u [fd00::1]:53 -s wlc -p 300 -M 64 -o\n\
             -a -u [fd00::1]:53 -r [fd00::2]:5353 -m -w 0\n\
             -A -f 7 -6 -s rr\n\
             -A --sctp-service 10.0.0.1:0 -s wlc -p 1\n"
        );
        assert_eq!(RuleSet::from_text(&rs.save()).unwrap(), rs);
    }
}

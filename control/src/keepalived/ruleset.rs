//! The rule set a keepalived configuration gives for a state of its real servers: each
//! virtual server (each member of its group) as a service, each real server that is up as a
//! dest, one that is down at weight 0 (`inhibit_on_failure`) or absent, and the sorry server
//! in their place while the virtual server has no quorum. The lines are ipvsadm's, through
//! the one rules parser and its checks; an error names the keepalived line it came from.

use std::net::IpAddr;

use rvs_dataplane::config::{Fwd, TunCsum, TunKind};
use rvs_dataplane::proto::Proto;

use super::lexer::Origin;
use super::model::{KaConfig, Method, VirtualServer, VsKey};
use super::KaError;
use crate::rules::{parse_line, RuleSet};

/// A real server as its checkers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    pub up: bool,
    /// Its weight while up: the configured one, or what a `misc_dynamic` check set.
    pub weight: i32,
}

/// A virtual server's real servers (in the order written) and whether it has quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VsState {
    pub real: Vec<Live>,
    pub quorum: bool,
}

impl VirtualServer {
    /// The weight of the real servers that are up (keepalived's quorum measure).
    pub fn live_weight(&self, real: &[Live]) -> u64 {
        real.iter()
            .filter(|l| l.up)
            .map(|l| l.weight.max(0) as u64)
            .sum()
    }

    /// The state at start: a real server is up unless one of its checkers starts in
    /// `alpha` (then it waits for a success); quorum from those.
    pub fn initial(&self) -> VsState {
        let real: Vec<Live> = self
            .real_servers
            .iter()
            .map(|r| Live {
                up: !r.checkers.iter().any(|c| c.timing.alpha),
                weight: r.weight,
            })
            .collect();
        let quorum = self.live_weight(&real) >= u64::from(self.quorum);
        VsState { real, quorum }
    }
}

impl KaConfig {
    /// Every virtual server's state at start.
    pub fn initial(&self) -> Vec<VsState> {
        self.virtual_servers.iter().map(|v| v.initial()).collect()
    }

    /// The rule set for `state` (one entry per virtual server).
    pub fn rules(&self, state: &[VsState]) -> Result<RuleSet, KaError> {
        let mut rs = RuleSet::new();
        for (vs, st) in self.virtual_servers.iter().zip(state) {
            for (line, at) in lines(vs, st) {
                let apply = parse_line(&line).and_then(|cmd| match cmd {
                    Some(c) => rs.apply_in_place(&c),
                    None => Ok(()),
                });
                if let Err(e) = apply {
                    return Err(KaError::at(
                        &at,
                        if line.starts_with("-A") {
                            "virtual_server"
                        } else {
                            "real_server"
                        },
                        format!("{} (as the rule `{line}`)", e.message),
                    ));
                }
            }
        }
        Ok(rs)
    }

    /// Every state a check can bring must make a valid rule set: each real server up (so one
    /// that starts down is checked now, not when it first comes up), and each virtual
    /// server's quorum lost (its sorry server in).
    pub(super) fn check(&self) -> Result<(), KaError> {
        for vs in &self.virtual_servers {
            if vs.persistence_granularity.is_some() && vs.persistence_timeout.is_none() {
                return Err(KaError::at(
                    &vs.at,
                    "persistence_granularity",
                    "needs persistence_timeout (granularity is of persistence)",
                ));
            }
        }
        let all_up: Vec<VsState> = self
            .virtual_servers
            .iter()
            .map(|v| VsState {
                real: v
                    .real_servers
                    .iter()
                    .map(|r| Live {
                        up: true,
                        weight: r.weight,
                    })
                    .collect(),
                quorum: true,
            })
            .collect();
        self.rules(&all_up)?;
        let lost: Vec<VsState> = all_up
            .into_iter()
            .map(|s| VsState { quorum: false, ..s })
            .collect();
        self.rules(&lost)?;
        self.rules(&self.initial())?;
        Ok(())
    }
}

/// The ipvsadm lines of one virtual server in `st`, each with the keepalived line it is from.
fn lines(vs: &VirtualServer, st: &VsState) -> Vec<(String, Origin)> {
    let mut out = Vec::new();
    for key in &vs.keys {
        let svc = service(vs.proto, key);
        let mut a = format!("-A {svc} -s {}", vs.sched.name());
        if !vs.sched_flags.is_empty() {
            a.push_str(&format!(" -b {}", vs.sched_flags.join(",")));
        }
        if let Some(t) = vs.persistence_timeout {
            a.push_str(&format!(" -p {t}"));
            if let Some(m) = &vs.persistence_granularity {
                a.push_str(&format!(" -M {m}"));
            }
        }
        if vs.ops {
            a.push_str(" -o");
        }
        out.push((a, vs.at.clone()));
        let sorry_in = !st.quorum && vs.sorry.is_some();
        for (r, live) in vs.real_servers.iter().zip(&st.real) {
            let weight = match (live.up && !sorry_in, r.inhibit_on_failure) {
                (true, _) => live.weight,
                (false, true) => 0,
                (false, false) => continue,
            };
            let mut d = format!(
                "-a {svc} -r {} {} -w {weight}",
                dest(r.addr, r.port),
                method(r.method)
            );
            if r.uthreshold > 0 {
                d.push_str(&format!(" -x {}", r.uthreshold));
            }
            if r.lthreshold > 0 {
                d.push_str(&format!(" -y {}", r.lthreshold));
            }
            out.push((d, r.at.clone()));
        }
        if let Some(s) = &vs.sorry {
            let weight = match (sorry_in, s.inhibit) {
                (true, _) => Some(1),
                (false, true) => Some(0),
                (false, false) => None,
            };
            if let Some(w) = weight {
                let d = format!(
                    "-a {svc} -r {} {} -w {w}",
                    dest(s.addr, s.port),
                    method(s.method)
                );
                out.push((d, vs.at.clone()));
            }
        }
    }
    out
}

fn service(proto: Proto, key: &VsKey) -> String {
    match *key {
        VsKey::Fwmark { mark, v6 } => format!("-f {mark}{}", if v6 { " -6" } else { "" }),
        VsKey::Addr { addr, port } => {
            let flag = match proto {
                Proto::Tcp => "-t",
                Proto::Udp => "-u",
                _ => "--sctp-service",
            };
            match addr {
                IpAddr::V4(a) => format!("{flag} {a}:{port}"),
                IpAddr::V6(a) => format!("{flag} [{a}]:{port}"),
            }
        }
    }
}

/// A dest's address, and its port unless 0 (then the service's).
fn dest(addr: IpAddr, port: u16) -> String {
    match (addr, port) {
        (IpAddr::V4(a), 0) => a.to_string(),
        (IpAddr::V4(a), p) => format!("{a}:{p}"),
        (IpAddr::V6(a), 0) => format!("[{a}]"),
        (IpAddr::V6(a), p) => format!("[{a}]:{p}"),
    }
}

fn method(m: Method) -> String {
    match m.fwd {
        Fwd::Masq => "-m".into(),
        Fwd::Droute => "-g".into(),
        Fwd::Tunnel => {
            let mut s = String::from("-i");
            match m.tun.kind {
                TunKind::Ipip => {}
                TunKind::Gue => s.push_str(&format!(" --tun-type gue --tun-port {}", m.tun.port)),
                TunKind::Gre => s.push_str(" --tun-type gre"),
            }
            match m.tun.csum {
                TunCsum::NoCsum => {}
                TunCsum::Csum => s.push_str(" --tun-csum"),
                TunCsum::RemCsum => s.push_str(" --tun-remcsum"),
            }
            s
        }
    }
}

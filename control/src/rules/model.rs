//! What an ipvsadm command names and sets: the service id, a service's and a real server's
//! settings, the `--set` timeouts, and the commands themselves. `Display` gives each its
//! ipvsadm line form, which `ipvsadm-save -n` writes and [`parse_line`](super::parse_line)
//! reads back.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};

use rvs_dataplane::config::{Fwd, TunConfig, TunCsum, TunKind};
use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::{SchedFlags, SchedKind};

/// `-p` without a value: ipvsadm's `IPVS_SVC_PERSISTENT_TIMEOUT`, seconds.
pub const DEFAULT_PERSISTENCE_S: u32 = 300;
/// Largest `-p` ipvsadm takes (31 days), seconds.
pub const MAX_PERSISTENCE_S: u32 = 86_400 * 31;
/// Largest `-w`.
pub const MAX_WEIGHT: i32 = 65_535;
/// Largest `-x` / `-y` (INT_MAX, as ipvsadm).
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

/// Which virtual service a command names (`-t`, `-u`, `--sctp-service`, `-f [-6]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceId {
    /// `-t|-u|--sctp-service ADDR:PORT` (port 0: all ports, persistent services only).
    Addr {
        proto: Proto,
        addr: IpAddr,
        port: u16,
    },
    /// `-f MARK`, with `-6` an IPv6 firewall-mark service.
    Fwmark { mark: u32, v6: bool },
}

impl ServiceId {
    /// The service's address family is IPv6.
    pub fn is_v6(&self) -> bool {
        match *self {
            ServiceId::Addr { addr, .. } => addr.is_ipv6(),
            ServiceId::Fwmark { v6, .. } => v6,
        }
    }

    /// The service's port (0 for firewall-mark services).
    pub fn port(&self) -> u16 {
        match *self {
            ServiceId::Addr { port, .. } => port,
            ServiceId::Fwmark { .. } => 0,
        }
    }
}

/// ipvsadm's form: `-t 10.0.0.1:80`, `-u [fd00::1]:53`, `--sctp-service ...`, `-f 7 -6`.
impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceId::Addr { proto, addr, port } => {
                let opt = match proto {
                    Proto::Tcp => "-t",
                    Proto::Udp => "-u",
                    Proto::Sctp => "--sctp-service",
                };
                write!(f, "{opt} {}", AddrPort(addr, port))
            }
            ServiceId::Fwmark { mark, v6 } => {
                write!(f, "-f {mark}")?;
                if v6 {
                    f.write_str(" -6")?;
                }
                Ok(())
            }
        }
    }
}

/// `10.0.0.1:80` or `[fd00::1]:80`.
pub(super) struct AddrPort(pub(super) IpAddr, pub(super) u16);

impl fmt::Display for AddrPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// The scheduler flag bits of `-b` as IPVS stores them (`IP_VS_SVC_F_SCHED1..3`): sh-fallback
/// and mh-fallback are bit 1, sh-port and mh-port bit 2; `flag-1`..`flag-3` name the bits
/// whatever the scheduler. Each scheduler reads its own meaning ([`Self::for_engine`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SchedFlagBits {
    pub flag1: bool,
    pub flag2: bool,
    pub flag3: bool,
}

impl SchedFlagBits {
    pub fn is_empty(&self) -> bool {
        !(self.flag1 || self.flag2 || self.flag3)
    }

    /// The engine's flags for scheduler `sched`: sh and mh read bits 1 and 2 as fallback and
    /// port; other schedulers have no flags.
    pub fn for_engine(&self, sched: SchedKind) -> SchedFlags {
        let mut f = SchedFlags::default();
        match sched {
            SchedKind::Sh => {
                f.sh_fallback = self.flag1;
                f.sh_port = self.flag2;
            }
            SchedKind::Mh => {
                f.mh_fallback = self.flag1;
                f.mh_port = self.flag2;
            }
            _ => {}
        }
        f
    }

    /// Parse ipvsadm's `-b` list for scheduler `sched`. sh-*/mh-* names need their scheduler.
    pub fn parse(s: &str, sched: SchedKind) -> Result<Self, String> {
        let mut b = SchedFlagBits::default();
        for name in s.split(',').filter(|n| !n.is_empty()) {
            let (bit, needs) = match name {
                "flag-1" => (1, None),
                "flag-2" => (2, None),
                "flag-3" => (3, None),
                "sh-fallback" => (1, Some(SchedKind::Sh)),
                "sh-port" => (2, Some(SchedKind::Sh)),
                "mh-fallback" => (1, Some(SchedKind::Mh)),
                "mh-port" => (2, Some(SchedKind::Mh)),
                _ => {
                    return Err(format!(
                        "unknown scheduler flag {name:?} (known: sh-fallback, sh-port, \
                         mh-fallback, mh-port, flag-1, flag-2, flag-3)"
                    ))
                }
            };
            if let Some(k) = needs {
                if k != sched {
                    return Err(format!(
                        "scheduler flag {name} is for -s {k}, not -s {sched}"
                    ));
                }
            }
            match bit {
                1 => b.flag1 = true,
                2 => b.flag2 = true,
                _ => b.flag3 = true,
            }
        }
        Ok(b)
    }

    /// The list as ipvsadm prints it for `sched` (`sh-fallback,sh-port`, `flag-1,flag-3`).
    pub fn to_list(&self, sched: SchedKind) -> String {
        let (n1, n2) = match sched {
            SchedKind::Sh => ("sh-fallback", "sh-port"),
            SchedKind::Mh => ("mh-fallback", "mh-port"),
            _ => ("flag-1", "flag-2"),
        };
        [(self.flag1, n1), (self.flag2, n2), (self.flag3, "flag-3")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `-p TIMEOUT -M NETMASK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persist {
    /// Seconds, 1..=[`MAX_PERSISTENCE_S`].
    pub timeout_s: u32,
    /// Client netmask as a prefix length (/32, /128 when `-M` is not given).
    pub prefix: u8,
}

/// A virtual service's settings: what `-A` and `-E` give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub id: ServiceId,
    pub sched: SchedKind,
    pub flags: SchedFlagBits,
    pub persistence: Option<Persist>,
    /// `-o`, one-packet scheduling.
    pub ops: bool,
}

impl ServiceSpec {
    /// ipvsadm's defaults: wlc, no flags, not persistent, no OPS.
    pub fn new(id: ServiceId) -> Self {
        ServiceSpec {
            id,
            sched: SchedKind::Wlc,
            flags: SchedFlagBits::default(),
            persistence: None,
            ops: false,
        }
    }

    /// `-s wlc -p 300 -M 255.255.255.0 -o -b sh-port`, as ipvsadm-save orders them.
    fn write_opts(&self, out: &mut String) {
        let _ = write!(out, " -s {}", self.sched);
        if let Some(p) = self.persistence {
            let _ = write!(out, " -p {}", p.timeout_s);
            if self.id.is_v6() {
                if p.prefix != 128 {
                    let _ = write!(out, " -M {}", p.prefix);
                }
            } else if p.prefix != 32 {
                let mask = if p.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(p.prefix.min(32)))
                };
                let _ = write!(out, " -M {}", Ipv4Addr::from(mask));
            }
        }
        if self.ops {
            out.push_str(" -o");
        }
        if !self.flags.is_empty() {
            let _ = write!(out, " -b {}", self.flags.to_list(self.sched));
        }
    }
}

/// A real server: what `-a` and `-e` give.
///
/// Equality compares the rule (what [`RuleSet::save`](super::RuleSet::save) writes), not the
/// last non-zero weight that the rule set remembers for the mh scheduler.
#[derive(Clone, Debug)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: Fwd,
    /// 0..=65535; 0 is quiescent.
    pub weight: i32,
    /// `-x`, 0 = none.
    pub u_threshold: u32,
    /// `-y`, 0 = none.
    pub l_threshold: u32,
    /// `--tun-*` (only with `-i`).
    pub tun: TunConfig,
    /// IPVS's `last_weight`: the weight at add, then the latest non-zero weight.
    pub(super) last_weight: i32,
}

impl PartialEq for Dest {
    fn eq(&self, o: &Self) -> bool {
        (
            self.addr,
            self.port,
            self.fwd,
            self.weight,
            self.u_threshold,
            self.l_threshold,
            self.tun,
        ) == (
            o.addr,
            o.port,
            o.fwd,
            o.weight,
            o.u_threshold,
            o.l_threshold,
            o.tun,
        )
    }
}
impl Eq for Dest {}

impl Dest {
    /// ipvsadm's defaults: direct routing, weight 1, no thresholds.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        Dest {
            addr,
            port,
            fwd: Fwd::Droute,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun: TunConfig::default(),
            last_weight: 1,
        }
    }

    /// `-g -w 1 -x 100 -y 50 --tun-type ...`: ipvsadm-save's order, then thresholds.
    fn write_opts(&self, out: &mut String) {
        let fwd = match self.fwd {
            Fwd::Droute => "-g",
            Fwd::Masq => "-m",
            Fwd::Tunnel => "-i",
        };
        let _ = write!(out, " {fwd} -w {}", self.weight);
        if self.fwd == Fwd::Tunnel {
            let csum = match self.tun.csum {
                TunCsum::NoCsum => "--tun-nocsum",
                TunCsum::Csum => "--tun-csum",
                TunCsum::RemCsum => "--tun-remcsum",
            };
            match self.tun.kind {
                TunKind::Ipip => out.push_str(" --tun-type ipip"),
                TunKind::Gue => {
                    let _ = write!(out, " --tun-type gue --tun-port {} {csum}", self.tun.port);
                }
                TunKind::Gre => {
                    let _ = write!(out, " --tun-type gre {csum}");
                }
            }
        }
        if self.u_threshold != 0 {
            let _ = write!(out, " -x {}", self.u_threshold);
        }
        if self.l_threshold != 0 {
            let _ = write!(out, " -y {}", self.l_threshold);
        }
    }
}

/// A virtual service and its real servers, newest first (the kernel's list order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub spec: ServiceSpec,
    pub dests: Vec<Dest>,
}

/// `--set tcp tcpfin udp`, seconds; 0 = not set (the appliance config's value holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SetTimeouts {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

impl SetTimeouts {
    pub fn is_unset(&self) -> bool {
        *self == SetTimeouts::default()
    }
}

/// One ipvsadm command that changes (or checks) the rule set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `-A`, `--add-service`.
    AddService(ServiceSpec),
    /// `-E`, `--edit-service`: every setting replaced, defaults included.
    EditService(ServiceSpec),
    /// `-D`, `--delete-service`.
    DeleteService(ServiceId),
    /// `-C`, `--clear`: every service goes (timeouts stay).
    Clear,
    /// `-a`, `--add-server`.
    AddServer(ServiceId, Dest),
    /// `-e`, `--edit-server`: every setting replaced, defaults included.
    EditServer(ServiceId, Dest),
    /// `-d`, `--delete-server`: the dest `addr:port`.
    DeleteServer(ServiceId, IpAddr, u16),
    /// `--set tcp tcpfin udp` (0 leaves a value as it is).
    SetTimeouts(SetTimeouts),
    /// `-Z`, `--zero` \[service\]: counters only; on rules it checks that the service exists.
    Zero(Option<ServiceId>),
}

/// The command as an ipvsadm line (`-A -t 10.0.0.1:80 -s wlc`); [`parse_line`](super::parse_line)
/// reads it back.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        match self {
            Command::AddService(spec) | Command::EditService(spec) => {
                let c = if matches!(self, Command::AddService(_)) {
                    "-A"
                } else {
                    "-E"
                };
                let _ = write!(s, "{c} {}", spec.id);
                spec.write_opts(&mut s);
            }
            Command::DeleteService(id) => {
                let _ = write!(s, "-D {id}");
            }
            Command::Clear => s.push_str("-C"),
            Command::AddServer(id, d) | Command::EditServer(id, d) => {
                let c = if matches!(self, Command::AddServer(..)) {
                    "-a"
                } else {
                    "-e"
                };
                let _ = write!(s, "{c} {id} -r {}", AddrPort(d.addr, d.port));
                d.write_opts(&mut s);
            }
            Command::DeleteServer(id, addr, port) => {
                let _ = write!(s, "-d {id} -r {}", AddrPort(*addr, *port));
            }
            Command::SetTimeouts(t) => {
                let _ = write!(s, "--set {} {} {}", t.tcp, t.tcpfin, t.udp);
            }
            Command::Zero(None) => s.push_str("-Z"),
            Command::Zero(Some(id)) => {
                let _ = write!(s, "-Z {id}");
            }
        }
        f.write_str(&s)
    }
}

//! ipvsadm rules: the one parser of ipvsadm command lines (`rvsd replay --rules`,
//! `rvsd run --rules`, and `rvsadm` against a running `rvsd`), the rule set they build, and
//! its `ipvsadm-save -n` form.
//!
//! A line is one ipvsadm command without the program name (as `ipvsadm-save` writes and
//! `ipvsadm -R` reads); a leading `ipvsadm` word is dropped, and `#` starts a comment.
//! [`parse_line`] turns a line into a [`Command`] with ipvsadm's defaults filled in (scheduler
//! wlc, weight 1, direct routing, persistence 300 s when `-p` has no value, the service's
//! port for `-r` without one) and ipvsadm's own checks done. [`RuleSet::apply`] then runs the
//! command against a rule set with the kernel's checks ("Service already exists", "No such
//! destination", ...), returning a new set and leaving the old one as it was.
//!
//! # Where rvs follows ipvsadm, and where it differs
//! - `-E` and `-e` replace every service or dest setting with the command's, defaults
//!   included, as ipvsadm does: `-E -t VIP:80 -s rr` drops a `-p`, `-e ... -r RIP` without
//!   `-w` sets weight 1.
//! - Dests are kept in the kernel's list order, newest first (the kernel adds a dest at the
//!   head of `svc->destinations`); that is the order the schedulers walk. [`RuleSet::save`]
//!   writes them oldest first, so that restoring the file rebuilds the same order (ipvsadm
//!   sorts them by address instead, which can change rr's sequence on restore). Services keep
//!   the order they were added in (ipvsadm sorts them on listing).
//! - [`RuleSet::save`] also writes what ipvsadm-save leaves out, so that a save restores the
//!   same set: `-x`/`-y` when non-zero, and a `--set` line when timeouts were set.
//! - `-M` on an IPv4 service takes a dotted mask or a prefix length (`-M 24`); ipvsadm reads
//!   `24` as the address 0.0.0.24. A dotted mask must be contiguous. IPv6 takes 1..128.
//!   `-M` without `-p` is accepted, as by ipvsadm, and kept nowhere: it has no effect.
//! - `-6` may come anywhere on the line (ipvsadm wants it after `-f`); it is only for `-f`.
//! - Not supported (refused with a message): host and service names (addresses and ports
//!   are numeric), `--pe`, a real server of the other address family (tunnelling across
//!   families), `-o` on a firewall-mark service, and the non-rule commands (`-L`, `-S`, `-R`,
//!   the sync daemon).
//! - Also refused, where the kernel takes them without complaint: a VIP or real server that
//!   is not a unicast address, and a lower threshold above the upper one also when the upper
//!   is 0 (the kernel's rule; the engine's is looser).

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_dataplane::addr::{v4_mask_prefix, Family, V4, V6};
use rvs_dataplane::config::{
    Config, DestConfig, Fwd, Persistence, ServiceConfig, ServiceKey, Sysctl, TunConfig, TunCsum,
    TunKind,
};
use rvs_dataplane::proto::{Proto, MAX_TIMEOUT_S};
use rvs_dataplane::sched::{SchedFlags, SchedKind};

/// `-p` without a value: ipvsadm's `IPVS_SVC_PERSISTENT_TIMEOUT`, seconds.
pub const DEFAULT_PERSISTENCE_S: u32 = 300;
/// Largest `-p` ipvsadm takes (31 days), seconds.
pub const MAX_PERSISTENCE_S: u32 = 86_400 * 31;
/// Largest `-w`.
pub const MAX_WEIGHT: i32 = 65_535;
/// Largest `-x` / `-y` (INT_MAX, as ipvsadm).
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

/// A rule that was refused: the line (1-based; 0 when the command did not come from a text)
/// and what is wrong, naming the option or field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub line: usize,
    pub message: String,
}

impl RuleError {
    fn new(message: impl Into<String>) -> Self {
        RuleError {
            line: 0,
            message: message.into(),
        }
    }
    fn at(mut self, line: usize) -> Self {
        self.line = line;
        self
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for RuleError {}

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
struct AddrPort(IpAddr, u16);

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
/// Equality compares the rule (what [`RuleSet::save`] writes), not the last non-zero weight
/// that the rule set remembers for the mh scheduler.
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
    last_weight: i32,
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
    /// `-Z`, `--zero` [service]: counters only; on rules it checks that the service exists.
    Zero(Option<ServiceId>),
}

/// The command as an ipvsadm line (`-A -t 10.0.0.1:80 -s wlc`); [`parse_line`] reads it back.
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

// ---------------------------------------------------------------------------------------
// Parsing

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    // Rule commands.
    AddService,
    EditService,
    DeleteService,
    Clear,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Zero,
    // ipvsadm commands and options that are not rules.
    NotRule,
    // Options.
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Sched,
    Persistent,
    Netmask,
    Real,
    Masq,
    Ipip,
    Gate,
    Weight,
    UThreshold,
    LThreshold,
    Ipv6,
    Ops,
    SchedFlags,
    Pe,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
}

impl Opt {
    fn is_command(self) -> bool {
        matches!(
            self,
            Opt::AddService
                | Opt::EditService
                | Opt::DeleteService
                | Opt::Clear
                | Opt::AddServer
                | Opt::EditServer
                | Opt::DeleteServer
                | Opt::Set
                | Opt::Zero
        )
    }

    /// Options that exclude each other share a class (one service, one forwarding method).
    fn class(self) -> Opt {
        match self {
            Opt::Udp | Opt::Sctp | Opt::Fwmark => Opt::Tcp,
            Opt::Ipip | Opt::Gate => Opt::Masq,
            o => o,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    No,
    Required,
    Optional,
}

struct Spec {
    short: Option<char>,
    long: &'static str,
    arg: Arg,
    opt: Opt,
}

const fn spec(short: Option<char>, long: &'static str, arg: Arg, opt: Opt) -> Spec {
    Spec {
        short,
        long,
        arg,
        opt,
    }
}

/// ipvsadm's option table (its popt table), rule options and the others it knows.
const SPECS: &[Spec] = &[
    spec(Some('A'), "add-service", Arg::No, Opt::AddService),
    spec(Some('E'), "edit-service", Arg::No, Opt::EditService),
    spec(Some('D'), "delete-service", Arg::No, Opt::DeleteService),
    spec(Some('C'), "clear", Arg::No, Opt::Clear),
    spec(Some('a'), "add-server", Arg::No, Opt::AddServer),
    spec(Some('e'), "edit-server", Arg::No, Opt::EditServer),
    spec(Some('d'), "delete-server", Arg::No, Opt::DeleteServer),
    spec(None, "set", Arg::No, Opt::Set),
    spec(Some('Z'), "zero", Arg::No, Opt::Zero),
    spec(Some('t'), "tcp-service", Arg::Required, Opt::Tcp),
    spec(Some('u'), "udp-service", Arg::Required, Opt::Udp),
    spec(None, "sctp-service", Arg::Required, Opt::Sctp),
    spec(Some('f'), "fwmark-service", Arg::Required, Opt::Fwmark),
    spec(Some('s'), "scheduler", Arg::Required, Opt::Sched),
    spec(Some('p'), "persistent", Arg::Optional, Opt::Persistent),
    spec(Some('M'), "netmask", Arg::Required, Opt::Netmask),
    spec(Some('r'), "real-server", Arg::Required, Opt::Real),
    spec(Some('m'), "masquerading", Arg::No, Opt::Masq),
    spec(Some('i'), "ipip", Arg::No, Opt::Ipip),
    spec(Some('g'), "gatewaying", Arg::No, Opt::Gate),
    spec(Some('w'), "weight", Arg::Required, Opt::Weight),
    spec(Some('x'), "u-threshold", Arg::Required, Opt::UThreshold),
    spec(Some('y'), "l-threshold", Arg::Required, Opt::LThreshold),
    spec(Some('6'), "ipv6", Arg::No, Opt::Ipv6),
    spec(Some('o'), "ops", Arg::No, Opt::Ops),
    spec(Some('b'), "sched-flags", Arg::Required, Opt::SchedFlags),
    spec(None, "pe", Arg::Required, Opt::Pe),
    spec(None, "tun-type", Arg::Required, Opt::TunType),
    spec(None, "tun-port", Arg::Required, Opt::TunPort),
    spec(None, "tun-nocsum", Arg::No, Opt::TunNoCsum),
    spec(None, "tun-csum", Arg::No, Opt::TunCsum),
    spec(None, "tun-remcsum", Arg::No, Opt::TunRemCsum),
    // Known to ipvsadm, not rules: refused with a message that says so.
    spec(Some('L'), "list", Arg::No, Opt::NotRule),
    spec(Some('l'), "list", Arg::No, Opt::NotRule),
    spec(Some('S'), "save", Arg::No, Opt::NotRule),
    spec(Some('R'), "restore", Arg::No, Opt::NotRule),
    spec(Some('h'), "help", Arg::No, Opt::NotRule),
    spec(Some('v'), "version", Arg::No, Opt::NotRule),
    spec(Some('n'), "numeric", Arg::No, Opt::NotRule),
    spec(Some('c'), "connection", Arg::No, Opt::NotRule),
    spec(Some('X'), "exact", Arg::No, Opt::NotRule),
    spec(None, "start-daemon", Arg::Required, Opt::NotRule),
    spec(None, "stop-daemon", Arg::Required, Opt::NotRule),
    spec(None, "timeout", Arg::No, Opt::NotRule),
    spec(None, "daemon", Arg::No, Opt::NotRule),
    spec(None, "stats", Arg::No, Opt::NotRule),
    spec(None, "rate", Arg::No, Opt::NotRule),
    spec(None, "thresholds", Arg::No, Opt::NotRule),
    spec(None, "persistent-conn", Arg::No, Opt::NotRule),
    spec(None, "nosort", Arg::No, Opt::NotRule),
    spec(None, "sort", Arg::No, Opt::NotRule),
    spec(None, "tun-info", Arg::No, Opt::NotRule),
    spec(None, "mcast-interface", Arg::Required, Opt::NotRule),
    spec(None, "syncid", Arg::Required, Opt::NotRule),
    spec(None, "mcast-group", Arg::Required, Opt::NotRule),
    spec(None, "mcast-port", Arg::Required, Opt::NotRule),
    spec(None, "mcast-ttl", Arg::Required, Opt::NotRule),
    spec(None, "sync-maxlen", Arg::Required, Opt::NotRule),
];

/// One option as written on the line.
struct Given<'a> {
    opt: Opt,
    /// `-w` or `--weight`, as written.
    name: String,
    value: Option<&'a str>,
}

impl Given<'_> {
    /// `-w 70000` / `--weight 70000` / `-o`: how errors name the field.
    fn field(&self) -> String {
        match self.value {
            Some(v) => format!("{} {v}", self.name),
            None => self.name.clone(),
        }
    }
    fn err(&self, why: impl fmt::Display) -> String {
        format!("{}: {why}", self.field())
    }
    fn value(&self) -> &str {
        self.value.unwrap_or("")
    }
}

/// The words of a line: up to a `#` word, without a leading `ipvsadm`.
fn words(line: &str) -> Vec<&str> {
    let mut w: Vec<&str> = line
        .split_whitespace()
        .take_while(|t| !t.starts_with('#'))
        .collect();
    if w.first() == Some(&"ipvsadm") {
        w.remove(0);
    }
    w
}

/// getopt over the words: long options with `=` or a following word, clustered short
/// options, `-p`'s optional value (the next word unless it starts with `-`).
fn scan<'a>(words: &[&'a str]) -> Result<(Vec<Given<'a>>, Vec<&'a str>), String> {
    let mut given = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while let Some(&w) = words.get(i) {
        i += 1;
        if let Some(long) = w.strip_prefix("--") {
            if long.is_empty() {
                positional.extend(words.iter().skip(i).copied());
                break;
            }
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let sp = SPECS
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| format!("{w}: unknown option"))?;
            let value = match sp.arg {
                Arg::No => {
                    if inline.is_some() {
                        return Err(format!("{w}: --{name} takes no value"));
                    }
                    None
                }
                Arg::Required => match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = words
                            .get(i)
                            .ok_or_else(|| format!("--{name}: needs a value"))?;
                        i += 1;
                        Some(*v)
                    }
                },
                Arg::Optional => match inline {
                    Some(v) => Some(v),
                    None => match words.get(i) {
                        Some(v) if !v.starts_with('-') => {
                            i += 1;
                            Some(*v)
                        }
                        _ => None,
                    },
                },
            };
            given.push(Given {
                opt: sp.opt,
                name: format!("--{name}"),
                value,
            });
        } else if w.len() > 1 && w.starts_with('-') {
            let body = &w[1..];
            for (j, c) in body.char_indices() {
                let sp = SPECS
                    .iter()
                    .find(|s| s.short == Some(c))
                    .ok_or_else(|| format!("-{c}: unknown option"))?;
                let rest = &body[j + c.len_utf8()..];
                let name = format!("-{c}");
                match sp.arg {
                    Arg::No => given.push(Given {
                        opt: sp.opt,
                        name,
                        value: None,
                    }),
                    Arg::Required => {
                        let value = if rest.is_empty() {
                            let v = words.get(i).ok_or_else(|| format!("-{c}: needs a value"))?;
                            i += 1;
                            *v
                        } else {
                            rest
                        };
                        given.push(Given {
                            opt: sp.opt,
                            name,
                            value: Some(value),
                        });
                        break;
                    }
                    Arg::Optional => {
                        let value = if !rest.is_empty() {
                            Some(rest)
                        } else {
                            match words.get(i) {
                                Some(v) if !v.starts_with('-') => {
                                    i += 1;
                                    Some(*v)
                                }
                                _ => None,
                            }
                        };
                        given.push(Given {
                            opt: sp.opt,
                            name,
                            value,
                        });
                        break;
                    }
                }
            }
        } else {
            positional.push(w);
        }
    }
    Ok((given, positional))
}

fn parse_num(s: &str, lo: u64, hi: u64, what: &str) -> Result<u64, String> {
    let bad = || format!("{what} must be {lo}..{hi}");
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = s.parse().map_err(|_| bad())?;
    if (lo..=hi).contains(&n) {
        Ok(n)
    } else {
        Err(bad())
    }
}

/// `10.0.0.1:80`, `10.0.0.1` (no port), `[fd00::1]:80`, `[fd00::1]`, `fd00::1`.
fn parse_addr_port(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad = || "not an address[:port] (want 10.0.0.1:80 or [fd00::1]:80)".to_string();
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let (a, tail) = rest.split_once(']').ok_or_else(bad)?;
        let a: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv6 address"))?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or_else(bad)?),
        };
        (IpAddr::V6(a), port)
    } else if let Ok(a) = s.parse::<Ipv6Addr>() {
        (IpAddr::V6(a), None)
    } else {
        let (a, port) = match s.rsplit_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let a: Ipv4Addr = a.parse().map_err(|_| {
            if a.contains(':') {
                "an IPv6 address with a port needs brackets: [fd00::1]:80".to_string()
            } else {
                format!("{a:?} is not a numeric IP address")
            }
        })?;
        (IpAddr::V4(a), port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(parse_num(p, 0, 65535, "port")? as u16),
    };
    Ok((addr, port))
}

/// Refuse what cannot be a VIP or a real server.
fn check_unicast(a: IpAddr) -> Result<(), String> {
    let bad = match a {
        IpAddr::V4(v) => v.is_unspecified() || v.is_multicast() || v.is_broadcast(),
        IpAddr::V6(v) => v.is_unspecified() || v.is_multicast(),
    };
    if bad {
        Err(format!("{a} is not a unicast address"))
    } else {
        Ok(())
    }
}

fn parse_netmask(s: &str, v6: bool) -> Result<u8, String> {
    if v6 {
        return parse_num(s, 1, 128, "an IPv6 netmask (prefix length)").map(|n| n as u8);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return parse_num(s, 0, 32, "a prefix length").map(|n| n as u8);
    }
    let m: Ipv4Addr = s
        .parse()
        .map_err(|_| "not a netmask (want 255.255.255.0 or 24)".to_string())?;
    v4_mask_prefix(m).ok_or_else(|| "not a contiguous netmask".to_string())
}

fn family_name(v6: bool) -> &'static str {
    if v6 {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// What a command takes besides the service (`s` `-s`, `p` `-p`, ...), by option class.
fn allowed(cmd: Opt, o: Opt) -> bool {
    use Opt::*;
    let svc_opts = matches!(o, Sched | Persistent | Netmask | Ops | SchedFlags | Pe);
    let dest_opts = matches!(
        o,
        Real | Masq
            | Ipip
            | Gate
            | Weight
            | UThreshold
            | LThreshold
            | TunType
            | TunPort
            | TunNoCsum
            | TunCsum
            | TunRemCsum
    );
    let service = matches!(o, Tcp | Udp | Sctp | Fwmark | Ipv6);
    match cmd {
        AddService | EditService => service || svc_opts,
        DeleteService | Zero => service,
        AddServer | EditServer => service || dest_opts,
        DeleteServer => service || o == Real,
        _ => false,
    }
}

fn cmd_name(cmd: Opt) -> &'static str {
    match cmd {
        Opt::AddService => "-A (add-service)",
        Opt::EditService => "-E (edit-service)",
        Opt::DeleteService => "-D (delete-service)",
        Opt::Clear => "-C (clear)",
        Opt::AddServer => "-a (add-server)",
        Opt::EditServer => "-e (edit-server)",
        Opt::DeleteServer => "-d (delete-server)",
        Opt::Set => "--set",
        _ => "-Z (zero)",
    }
}

/// Parse one ipvsadm line. Blank and comment lines give `None`. Errors name the option.
pub fn parse_line(line: &str) -> Result<Option<Command>, RuleError> {
    let w = words(line);
    if w.is_empty() {
        return Ok(None);
    }
    parse_words(&w).map(Some).map_err(RuleError::new)
}

/// Parse a rules text (one command a line), stopping at the first error.
pub fn parse_rules(text: &str) -> Result<Vec<Command>, RuleError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = parse_line(line).map_err(|e| e.at(i + 1))? {
            out.push(c);
        }
    }
    Ok(out)
}

fn parse_words(w: &[&str]) -> Result<Command, String> {
    let (given, positional) = scan(w)?;
    if let Some(g) = given.iter().find(|g| g.opt == Opt::NotRule) {
        return Err(format!(
            "{}: not a rule command (rules use -A -E -D -C -a -e -d --set -Z)",
            g.name
        ));
    }
    // One command, each option once.
    let mut cmd: Option<&Given> = None;
    for (k, g) in given.iter().enumerate() {
        if g.opt.is_command() {
            if let Some(c) = cmd {
                return Err(format!("{}: a second command after {}", g.name, c.name));
            }
            cmd = Some(g);
        } else if let Some(p) = given[..k]
            .iter()
            .find(|p| !p.opt.is_command() && p.opt.class() == g.opt.class())
        {
            return Err(if p.opt == g.opt {
                format!("{}: given twice", g.field())
            } else {
                format!("{}: conflicts with {}", g.field(), p.field())
            });
        }
    }
    let Some(cmd) = cmd else {
        return Err(format!(
            "no command (want one of -A -E -D -C -a -e -d --set -Z) in: {}",
            w.join(" ")
        ));
    };
    let c = cmd.opt;
    if let Some(g) = given
        .iter()
        .find(|g| !g.opt.is_command() && !allowed(c, g.opt))
    {
        return Err(format!("{}: not an option of {}", g.field(), cmd_name(c)));
    }
    let get = |o: Opt| given.iter().find(|g| g.opt == o);
    if c == Opt::Set {
        let [tcp, fin, udp] = positional.as_slice() else {
            return Err(
                "--set: needs three timeouts: tcp tcpfin udp (seconds, 0 = unchanged)".into(),
            );
        };
        let t = |s: &str, what: &str| -> Result<u32, String> {
            parse_num(s, 0, u64::from(MAX_TIMEOUT_S), what)
                .map(|n| n as u32)
                .map_err(|e| format!("--set {s}: {e} seconds"))
        };
        return Ok(Command::SetTimeouts(SetTimeouts {
            tcp: t(tcp, "tcp timeout")?,
            tcpfin: t(fin, "tcpfin timeout")?,
            udp: t(udp, "udp timeout")?,
        }));
    }
    if let Some(p) = positional.first() {
        return Err(format!("{p}: unexpected argument"));
    }
    if c == Opt::Clear {
        return Ok(Command::Clear);
    }

    // The service.
    let svc = given
        .iter()
        .find(|g| matches!(g.opt, Opt::Tcp | Opt::Udp | Opt::Sctp | Opt::Fwmark));
    let v6flag = get(Opt::Ipv6);
    let id = match svc {
        None => {
            if c == Opt::Zero {
                if let Some(g) = v6flag {
                    return Err(format!("{}: only with -f (an IPv6 fwmark service)", g.name));
                }
                return Ok(Command::Zero(None));
            }
            return Err(format!(
                "{} needs a service: -t, -u, --sctp-service ADDR:PORT or -f MARK",
                cmd_name(c)
            ));
        }
        Some(g) if g.opt == Opt::Fwmark => {
            let mark = parse_num(g.value(), 1, u64::from(u32::MAX), "a fwmark")
                .map_err(|e| g.err(e))? as u32;
            ServiceId::Fwmark {
                mark,
                v6: v6flag.is_some(),
            }
        }
        Some(g) => {
            if let Some(v) = v6flag {
                return Err(format!(
                    "{}: only with -f (an IPv6 fwmark service); {} gives the family",
                    v.name, g.name
                ));
            }
            let proto = match g.opt {
                Opt::Tcp => Proto::Tcp,
                Opt::Udp => Proto::Udp,
                _ => Proto::Sctp,
            };
            let (addr, port) = parse_addr_port(g.value()).map_err(|e| g.err(e))?;
            check_unicast(addr).map_err(|e| g.err(e))?;
            ServiceId::Addr {
                proto,
                addr,
                port: port.unwrap_or(0),
            }
        }
    };
    let svc_g = svc.map(|g| g.field()).unwrap_or_default();

    match c {
        Opt::DeleteService => Ok(Command::DeleteService(id)),
        Opt::Zero => Ok(Command::Zero(Some(id))),
        Opt::AddService | Opt::EditService => {
            let mut spec = ServiceSpec::new(id);
            if let Some(g) = get(Opt::Pe) {
                return Err(g.err("persistence engines are not supported by rvs"));
            }
            if let Some(g) = get(Opt::Sched) {
                spec.sched = SchedKind::parse(g.value()).ok_or_else(|| {
                    let known: Vec<&str> = SchedKind::ALL.iter().map(|k| k.name()).collect();
                    g.err(format!("unknown scheduler (known: {})", known.join(", ")))
                })?;
            }
            if let Some(g) = get(Opt::SchedFlags) {
                spec.flags = SchedFlagBits::parse(g.value(), spec.sched).map_err(|e| g.err(e))?;
            }
            let prefix = match get(Opt::Netmask) {
                Some(g) => parse_netmask(g.value(), id.is_v6()).map_err(|e| {
                    g.err(format!("{e} (the service is {})", family_name(id.is_v6())))
                })?,
                None if id.is_v6() => 128,
                None => 32,
            };
            if let Some(g) = get(Opt::Persistent) {
                let timeout_s = match g.value {
                    None => DEFAULT_PERSISTENCE_S,
                    Some(v) => parse_num(v, 1, u64::from(MAX_PERSISTENCE_S), "persistence timeout")
                        .map_err(|e| g.err(format!("{e} seconds")))?
                        as u32,
                };
                spec.persistence = Some(Persist { timeout_s, prefix });
            }
            if let Some(g) = get(Opt::Ops) {
                spec.ops = true;
                check_ops(&id).map_err(|e| format!("{}: {e}", g.name))?;
            }
            if matches!(id, ServiceId::Addr { port: 0, .. }) && spec.persistence.is_none() {
                let hint = match svc {
                    Some(g) if id.is_v6() && !g.value().starts_with('[') => {
                        "; an IPv6 address with a port needs brackets: [fd00::1]:80"
                    }
                    _ => "",
                };
                return Err(format!(
                    "{svc_g}: port 0 (all ports) is only for persistent services (add -p){hint}"
                ));
            }
            Ok(if c == Opt::AddService {
                Command::AddService(spec)
            } else {
                Command::EditService(spec)
            })
        }
        _ => {
            // -a, -e, -d
            let Some(r) = get(Opt::Real) else {
                return Err(format!("{} needs -r ADDR[:PORT]", cmd_name(c)));
            };
            let (addr, port) = parse_addr_port(r.value()).map_err(|e| r.err(e))?;
            check_unicast(addr).map_err(|e| r.err(e))?;
            if addr.is_ipv6() != id.is_v6() {
                return Err(r.err(format!(
                    "an {} real server for an {} service (rvs keeps one family per service)",
                    family_name(addr.is_ipv6()),
                    family_name(id.is_v6())
                )));
            }
            let port = port.unwrap_or(id.port());
            if c == Opt::DeleteServer {
                return Ok(Command::DeleteServer(id, addr, port));
            }
            let mut d = Dest::new(addr, port);
            let fwd = given
                .iter()
                .find(|g| matches!(g.opt, Opt::Masq | Opt::Ipip | Opt::Gate));
            d.fwd = match fwd.map(|g| g.opt) {
                Some(Opt::Masq) => Fwd::Masq,
                Some(Opt::Ipip) => Fwd::Tunnel,
                _ => Fwd::Droute,
            };
            if let Some(g) = get(Opt::Weight) {
                d.weight = parse_num(g.value(), 0, MAX_WEIGHT as u64, "weight")
                    .map_err(|e| g.err(e))? as i32;
            }
            if let Some(g) = get(Opt::UThreshold) {
                d.u_threshold = parse_num(g.value(), 0, u64::from(MAX_THRESHOLD), "upper threshold")
                    .map_err(|e| g.err(e))? as u32;
            }
            if let Some(g) = get(Opt::LThreshold) {
                d.l_threshold = parse_num(g.value(), 0, u64::from(MAX_THRESHOLD), "lower threshold")
                    .map_err(|e| g.err(e))? as u32;
                if d.l_threshold > d.u_threshold {
                    return Err(g.err(format!(
                        "lower threshold is higher than the upper threshold ({})",
                        d.u_threshold
                    )));
                }
            }
            parse_tunnel(&given, &mut d)?;
            normalize_dest_port(&id, &mut d);
            Ok(if c == Opt::AddServer {
                Command::AddServer(id, d)
            } else {
                Command::EditServer(id, d)
            })
        }
    }
}

/// `--tun-type`, `--tun-port`, `--tun-*csum`, with ipvsadm's table of what each type takes.
fn parse_tunnel(given: &[Given], d: &mut Dest) -> Result<(), String> {
    let tun: Vec<&Given> = given
        .iter()
        .filter(|g| {
            matches!(
                g.opt,
                Opt::TunType | Opt::TunPort | Opt::TunNoCsum | Opt::TunCsum | Opt::TunRemCsum
            )
        })
        .collect();
    let Some(first) = tun.first() else {
        return Ok(());
    };
    if d.fwd != Fwd::Tunnel {
        return Err(first.err("tunnel options need -i (--ipip)"));
    }
    let mut t = TunConfig::default();
    let mut kind_name = "ipip";
    if let Some(g) = tun.iter().find(|g| g.opt == Opt::TunType) {
        (t.kind, kind_name) = match g.value() {
            "ipip" => (TunKind::Ipip, "ipip"),
            "gue" => (TunKind::Gue, "gue"),
            "gre" => (TunKind::Gre, "gre"),
            _ => return Err(g.err("unknown tunnel type (want ipip, gue or gre)")),
        };
    }
    let mut csum: Option<&Given> = None;
    for g in &tun {
        let ok = match (g.opt, t.kind) {
            (Opt::TunType, _) => true,
            (Opt::TunPort, k) => k == TunKind::Gue,
            (Opt::TunRemCsum, k) => k == TunKind::Gue,
            (_, k) => k != TunKind::Ipip,
        };
        if !ok {
            return Err(g.err(format!("not valid with --tun-type {kind_name}")));
        }
        match g.opt {
            Opt::TunPort => {
                t.port =
                    parse_num(g.value(), 1, 65535, "tunnel port").map_err(|e| g.err(e))? as u16;
            }
            Opt::TunNoCsum | Opt::TunCsum | Opt::TunRemCsum => {
                if let Some(p) = csum {
                    return Err(format!("{}: conflicts with {}", g.name, p.name));
                }
                csum = Some(g);
                t.csum = match g.opt {
                    Opt::TunNoCsum => TunCsum::NoCsum,
                    Opt::TunCsum => TunCsum::Csum,
                    _ => TunCsum::RemCsum,
                };
            }
            _ => {}
        }
    }
    if t.kind == TunKind::Gue && t.port == 0 {
        return Err("--tun-type gue: needs --tun-port PORT".into());
    }
    d.tun = t;
    Ok(())
}

/// ipvsadm: with direct routing or tunnelling the real server's port is the service's
/// (nothing rewrites it); firewall-mark services keep the given port.
fn normalize_dest_port(id: &ServiceId, d: &mut Dest) {
    if let ServiceId::Addr { port, .. } = *id {
        if d.fwd != Fwd::Masq {
            d.port = port;
        }
    }
}

fn check_ops(id: &ServiceId) -> Result<(), String> {
    match id {
        ServiceId::Addr {
            proto: Proto::Udp, ..
        } => Ok(()),
        ServiceId::Addr { .. } => Err("one-packet scheduling is only for UDP services".into()),
        ServiceId::Fwmark { .. } => Err(
            "one-packet scheduling on a fwmark service is not supported by rvs (UDP services only)"
                .into(),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// The rule set

/// The services and `--set` timeouts that a sequence of commands built.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RuleSet {
    /// In the order they were added.
    pub services: Vec<Service>,
    pub timeouts: SetTimeouts,
}

fn validate_spec(spec: &ServiceSpec) -> Result<(), String> {
    let id = &spec.id;
    match *id {
        ServiceId::Fwmark { mark: 0, .. } => return Err(format!("{id}: fwmark 0 is no mark")),
        ServiceId::Addr { addr, port, .. } => {
            check_unicast(addr).map_err(|e| format!("{id}: {e}"))?;
            if port == 0 && spec.persistence.is_none() {
                return Err(format!(
                    "{id}: port 0 (all ports) is only for persistent services (add -p)"
                ));
            }
        }
        ServiceId::Fwmark { .. } => {}
    }
    if let Some(p) = spec.persistence {
        if !(1..=MAX_PERSISTENCE_S).contains(&p.timeout_s) {
            return Err(format!(
                "{id}: -p {}: persistence timeout must be 1..{MAX_PERSISTENCE_S} seconds",
                p.timeout_s
            ));
        }
        let ok = if id.is_v6() {
            (1..=128).contains(&p.prefix)
        } else {
            p.prefix <= 32
        };
        if !ok {
            return Err(format!(
                "{id}: -M /{}: not a netmask of an {} service",
                p.prefix,
                family_name(id.is_v6())
            ));
        }
    }
    if spec.ops {
        check_ops(id).map_err(|e| format!("{id}: -o: {e}"))?;
    }
    Ok(())
}

fn validate_dest(id: &ServiceId, d: &Dest) -> Result<(), String> {
    let name = || format!("{id} -r {}", AddrPort(d.addr, d.port));
    check_unicast(d.addr).map_err(|e| format!("{}: {e}", name()))?;
    if d.addr.is_ipv6() != id.is_v6() {
        return Err(format!(
            "{}: an {} real server for an {} service (rvs keeps one family per service)",
            name(),
            family_name(d.addr.is_ipv6()),
            family_name(id.is_v6())
        ));
    }
    if !(0..=MAX_WEIGHT).contains(&d.weight) {
        return Err(format!(
            "{}: -w {}: weight must be 0..{MAX_WEIGHT}",
            name(),
            d.weight
        ));
    }
    if d.u_threshold > MAX_THRESHOLD || d.l_threshold > MAX_THRESHOLD {
        return Err(format!("{}: thresholds must be 0..{MAX_THRESHOLD}", name()));
    }
    if d.l_threshold > d.u_threshold {
        return Err(format!(
            "{}: -y {}: lower threshold is higher than the upper threshold ({})",
            name(),
            d.l_threshold,
            d.u_threshold
        ));
    }
    let t = d.tun;
    let tun_ok = match (d.fwd, t.kind) {
        (Fwd::Tunnel, TunKind::Ipip) => t.port == 0 && t.csum == TunCsum::NoCsum,
        (Fwd::Tunnel, TunKind::Gue) => t.port != 0,
        (Fwd::Tunnel, TunKind::Gre) => t.port == 0 && t.csum != TunCsum::RemCsum,
        _ => t == TunConfig::default(),
    };
    if !tun_ok {
        return Err(format!(
            "{}: tunnel options {t:?} do not fit forwarding {} (gue needs a port; \
             ipip takes no options; gre takes no port or remcsum; only -i takes any)",
            name(),
            d.fwd.name()
        ));
    }
    Ok(())
}

impl RuleSet {
    /// An empty rule set.
    pub fn new() -> Self {
        RuleSet::default()
    }

    /// Parse a rules text and apply every command in order. The error names the line.
    pub fn from_text(text: &str) -> Result<RuleSet, RuleError> {
        let mut rs = RuleSet::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(cmd) = parse_line(line).map_err(|e| e.at(i + 1))? {
                rs.apply_in_place(&cmd).map_err(|e| e.at(i + 1))?;
            }
        }
        Ok(rs)
    }

    /// The service named `id`.
    pub fn service(&self, id: &ServiceId) -> Option<&Service> {
        self.services.iter().find(|s| s.spec.id == *id)
    }

    fn index(&self, id: &ServiceId) -> Option<usize> {
        self.services.iter().position(|s| s.spec.id == *id)
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
        let no_service = |id: &ServiceId| format!("{id}: No such service");
        match cmd {
            Command::AddService(spec) => {
                validate_spec(spec)?;
                if self.index(&spec.id).is_some() {
                    return Err(format!("{}: Service already exists", spec.id));
                }
                self.services.push(Service {
                    spec: spec.clone(),
                    dests: Vec::new(),
                });
            }
            Command::EditService(spec) => {
                validate_spec(spec)?;
                let i = self.index(&spec.id).ok_or_else(|| no_service(&spec.id))?;
                if let Some(s) = self.services.get_mut(i) {
                    s.spec = spec.clone();
                }
            }
            Command::DeleteService(id) => {
                let i = self.index(id).ok_or_else(|| no_service(id))?;
                self.services.remove(i);
            }
            Command::Clear => self.services.clear(),
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
                let i = self
                    .index(id)
                    .ok_or_else(|| format!("{id}: Service not defined"))?;
                let mut d = d.clone();
                normalize_dest_port(id, &mut d);
                validate_dest(id, &d)?;
                let Some(svc) = self.services.get_mut(i) else {
                    return Err(no_service(id));
                };
                let pos = svc
                    .dests
                    .iter()
                    .position(|x| (x.addr, x.port) == (d.addr, d.port));
                let dname = format!("{id} -r {}", AddrPort(d.addr, d.port));
                match (add, pos) {
                    (true, Some(_)) => return Err(format!("{dname}: Destination already exists")),
                    (false, None) => return Err(format!("{dname}: No such destination")),
                    (true, None) => {
                        d.last_weight = d.weight;
                        svc.dests.insert(0, d);
                    }
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
                let Some(svc) = self.services.get_mut(i) else {
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

    /// The engine's snapshots: IPv4 services (and IPv4 fwmark services) in the first, IPv6
    /// in the second, each with `sysctl` and the `--set` timeouts over its timeouts, and
    /// scheduler tables built. Firewall-mark match rules are the caller's to add
    /// (`Config::with_fwmark_rules`).
    pub fn to_configs(&self, sysctl: Sysctl) -> Result<(Config<V4>, Config<V6>), RuleError> {
        let mut sysctl = sysctl;
        let t = self.timeouts;
        if t.tcp > MAX_TIMEOUT_S || t.tcpfin > MAX_TIMEOUT_S || t.udp > MAX_TIMEOUT_S {
            return Err(RuleError::new(format!(
                "--set: timeouts must be 0..{MAX_TIMEOUT_S} seconds"
            )));
        }
        sysctl.timeouts.set_tcp_tcpfin_udp(t.tcp, t.tcpfin, t.udp);
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for s in &self.services {
            validate_spec(&s.spec).map_err(RuleError::new)?;
            for d in &s.dests {
                validate_dest(&s.spec.id, d).map_err(RuleError::new)?;
            }
            if s.spec.id.is_v6() {
                v6.push(engine_service::<V6>(s)?);
            } else {
                v4.push(engine_service::<V4>(s)?);
            }
        }
        let err = |e: rvs_dataplane::config::ConfigError| RuleError::new(e.0);
        Ok((
            Config::new(v4, sysctl.clone()).map_err(err)?,
            Config::new(v6, sysctl).map_err(err)?,
        ))
    }
}

fn engine_addr<A: Family>(a: IpAddr, what: &str) -> Result<A, RuleError> {
    A::from_ip(a).ok_or_else(|| RuleError::new(format!("{what} {a}: not an {} address", A::NAME)))
}

fn engine_service<A: Family>(s: &Service) -> Result<ServiceConfig<A>, RuleError> {
    let spec = &s.spec;
    let key = match spec.id {
        ServiceId::Addr { proto, addr, port } => ServiceKey::Addr {
            proto,
            vaddr: engine_addr::<A>(addr, "service")?,
            vport: port,
        },
        ServiceId::Fwmark { mark, .. } => ServiceKey::Fwmark(mark),
    };
    let mut sc = ServiceConfig::new(key, spec.sched);
    sc.sched_flags = spec.flags.for_engine(spec.sched);
    sc.persistence = spec.persistence.map(|p| Persistence {
        timeout_ms: p.timeout_s.saturating_mul(1000),
        prefix: p.prefix,
    });
    sc.ops = spec.ops;
    let mut dests = Vec::with_capacity(s.dests.len());
    for d in &s.dests {
        dests.push(DestConfig {
            addr: engine_addr::<A>(d.addr, "real server")?,
            port: d.port,
            weight: d.weight,
            fwd: d.fwd,
            u_threshold: d.u_threshold,
            l_threshold: d.l_threshold,
            tun: d.tun,
        });
    }
    // mh builds its table from each dest's last non-zero weight, which the engine remembers
    // across rebuilds of one ServiceConfig: build once with the remembered weights so that a
    // quiesced dest keeps its slots, then with the real ones.
    let quiesced = s.dests.iter().any(|d| d.weight == 0 && d.last_weight > 0);
    if spec.sched == SchedKind::Mh && quiesced {
        sc.dests = dests
            .iter()
            .zip(&s.dests)
            .map(|(e, d)| DestConfig {
                weight: if d.weight == 0 {
                    d.last_weight
                } else {
                    d.weight
                },
                ..e.clone()
            })
            .collect();
        sc.rebuild_tables();
    }
    sc.dests = dests;
    sc.rebuild_tables();
    Ok(sc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmd(line: &str) -> Command {
        match parse_line(line) {
            Ok(Some(c)) => c,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse_line(line) {
            Err(e) => e.to_string(),
            other => panic!("{line}: expected an error, got {other:?}"),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp(a: &str, port: u16) -> ServiceId {
        ServiceId::Addr {
            proto: Proto::Tcp,
            addr: ip(a),
            port,
        }
    }

    fn set(text: &str) -> RuleSet {
        RuleSet::from_text(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn blank_and_comment_lines_are_none() {
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("   \t "), Ok(None));
        assert_eq!(parse_line("# -A -t 10.0.0.1:80"), Ok(None));
        assert_eq!(parse_line("ipvsadm"), Ok(None));
    }

    #[test]
    fn add_service_defaults_are_ipvsadms() {
        let c = cmd("-A -t 10.0.0.1:80");
        assert_eq!(
            c,
            Command::AddService(ServiceSpec::new(tcp("10.0.0.1", 80)))
        );
        let Command::AddService(s) = c else { panic!() };
        assert_eq!(s.sched, SchedKind::Wlc);
        assert_eq!(s.persistence, None);
        assert!(!s.ops && s.flags.is_empty());
    }

    #[test]
    fn short_and_long_service_options_agree() {
        let pairs = [
            (
                "-A -t 10.0.0.1:80 -s rr",
                "--add-service --tcp-service 10.0.0.1:80 --scheduler rr",
            ),
            (
                "-A -u 10.0.0.1:53 -s rr -o",
                "--add-service --udp-service 10.0.0.1:53 --scheduler=rr --ops",
            ),
            (
                "-E -t 10.0.0.1:80 -s sh -b sh-port",
                "--edit-service --tcp-service 10.0.0.1:80 --scheduler sh --sched-flags sh-port",
            ),
            (
                "-D -t 10.0.0.1:80",
                "--delete-service --tcp-service=10.0.0.1:80",
            ),
            (
                "-A -f 7 -p 60 -M 255.255.0.0",
                "--add-service --fwmark-service 7 --persistent 60 --netmask 255.255.0.0",
            ),
            (
                "-A -f 7 -6 -p",
                "--add-service --fwmark-service 7 --ipv6 --persistent",
            ),
            ("-C", "--clear"),
            ("-Z", "--zero"),
            ("-Z -t 10.0.0.1:80", "--zero --tcp-service 10.0.0.1:80"),
            (
                "-A --sctp-service 10.0.0.1:9 -s rr",
                "--add-service --sctp-service=10.0.0.1:9 -srr",
            ),
        ];
        for (short, long) in pairs {
            assert_eq!(cmd(short), cmd(long), "{short} vs {long}");
        }
    }

    #[test]
    fn short_and_long_server_options_agree() {
        let pairs = [
            ("-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -m -w 5 -x 100 -y 50",
             "--add-server --tcp-service 10.0.0.1:80 --real-server 10.0.0.11:8080 --masquerading --weight 5 --u-threshold 100 --l-threshold 50"),
            ("-e -t 10.0.0.1:80 -r 10.0.0.11 -g -w 0", "--edit-server --tcp-service 10.0.0.1:80 --real-server 10.0.0.11 --gatewaying --weight=0"),
            ("-a -t 10.0.0.1:80 -r 10.0.0.11 -i", "--add-server --tcp-service 10.0.0.1:80 --real-server 10.0.0.11 --ipip"),
            ("-d -t 10.0.0.1:80 -r 10.0.0.11:80", "--delete-server --tcp-service 10.0.0.1:80 --real-server 10.0.0.11:80"),
            ("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue --tun-port 6080 --tun-csum",
             "-a -t 10.0.0.1:80 -r 10.0.0.11 --ipip --tun-type=gue --tun-port=6080 --tun-csum"),
        ];
        for (short, long) in pairs {
            assert_eq!(cmd(short), cmd(long), "{short} vs {long}");
        }
        let Command::AddServer(_, d) = cmd(pairs[0].0) else {
            panic!()
        };
        assert_eq!(
            (d.fwd, d.weight, d.u_threshold, d.l_threshold, d.port),
            (Fwd::Masq, 5, 100, 50, 8080)
        );
    }

    #[test]
    fn server_defaults_are_direct_routing_weight_one_service_port() {
        let Command::AddServer(id, d) = cmd("-a -t 10.0.0.1:80 -r 10.0.0.11") else {
            panic!()
        };
        assert_eq!(id, tcp("10.0.0.1", 80));
        assert_eq!(
            (d.addr, d.port, d.fwd, d.weight),
            (ip("10.0.0.11"), 80, Fwd::Droute, 1)
        );
        assert_eq!(
            (d.u_threshold, d.l_threshold, d.tun),
            (0, 0, TunConfig::default())
        );
        // NAT keeps a given port; DR and TUN take the service's, as ipvsadm.
        let Command::AddServer(_, d) = cmd("-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -m") else {
            panic!()
        };
        assert_eq!(d.port, 8080);
        let Command::AddServer(_, d) = cmd("-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -g") else {
            panic!()
        };
        assert_eq!(d.port, 80);
        let Command::AddServer(_, d) = cmd("-a -f 5 -r 10.0.0.11:8080") else {
            panic!()
        };
        assert_eq!(d.port, 8080);
        let Command::AddServer(_, d) = cmd("-a -f 5 -r 10.0.0.11") else {
            panic!()
        };
        assert_eq!(d.port, 0);
    }

    #[test]
    fn persistent_with_and_without_value() {
        let p = |line: &str| match cmd(line) {
            Command::AddService(s) | Command::EditService(s) => s.persistence,
            c => panic!("{c:?}"),
        };
        assert_eq!(
            p("-A -t 10.0.0.1:80 -p"),
            Some(Persist {
                timeout_s: 300,
                prefix: 32
            })
        );
        assert_eq!(
            p("-A -t 10.0.0.1:80 -p 600"),
            Some(Persist {
                timeout_s: 600,
                prefix: 32
            })
        );
        assert_eq!(
            p("-A -t 10.0.0.1:80 -p600"),
            Some(Persist {
                timeout_s: 600,
                prefix: 32
            })
        );
        assert_eq!(
            p("-A -t 10.0.0.1:80 --persistent=600"),
            Some(Persist {
                timeout_s: 600,
                prefix: 32
            })
        );
        assert_eq!(
            p("-A -t 10.0.0.1:80 -p -s rr"),
            Some(Persist {
                timeout_s: 300,
                prefix: 32
            })
        );
        assert_eq!(
            p("-A -t 10.0.0.1:80 -p -M 24"),
            Some(Persist {
                timeout_s: 300,
                prefix: 24
            })
        );
        assert_eq!(
            p("-A -t 10.0.0.1:80 --persistent -s rr"),
            Some(Persist {
                timeout_s: 300,
                prefix: 32
            })
        );
        assert_eq!(p("-E -t 10.0.0.1:80 -s rr"), None);
        assert!(
            err("-A -t 10.0.0.1:80 -p 0").contains("-p 0: persistence timeout must be 1..2678400")
        );
        assert!(err("-A -t 10.0.0.1:80 -p abc").contains("-p abc"));
    }

    #[test]
    fn netmask_dotted_or_prefix_length() {
        let prefix = |line: &str| match cmd(line) {
            Command::AddService(s) => s.persistence.map(|p| p.prefix),
            c => panic!("{c:?}"),
        };
        assert_eq!(prefix("-A -t 10.0.0.1:80 -p -M 255.255.255.0"), Some(24));
        assert_eq!(prefix("-A -t 10.0.0.1:80 -p -M 24"), Some(24));
        assert_eq!(
            prefix("-A -t 10.0.0.1:80 -p --netmask 255.255.0.0"),
            Some(16)
        );
        assert_eq!(prefix("-A -t 10.0.0.1:80 -p -M 0.0.0.0"), Some(0));
        assert_eq!(prefix("-A -t [fd00::1]:80 -p -M 64"), Some(64));
        assert_eq!(prefix("-A -t [fd00::1]:80 -p"), Some(128));
        assert_eq!(prefix("-A -f 3 -6 -p -M 48"), Some(48));
        assert_eq!(prefix("-A -f 3 -M 48 -6 -p"), Some(48));
        // Accepted without -p, as ipvsadm, and kept nowhere.
        assert_eq!(prefix("-A -t 10.0.0.1:80 -M 24"), None);
        assert!(err("-A -t 10.0.0.1:80 -p -M 255.0.255.0")
            .contains("-M 255.0.255.0: not a contiguous netmask"));
        assert!(err("-A -t 10.0.0.1:80 -p -M 33").contains("-M 33"));
        assert!(err("-A -t [fd00::1]:80 -p -M 255.255.255.0").contains("IPv6 netmask"));
        assert!(err("-A -t [fd00::1]:80 -p -M 0").contains("-M 0"));
        assert!(err("-A -t [fd00::1]:80 -p -M 129").contains("-M 129"));
    }

    #[test]
    fn ipv6_services_and_servers() {
        let c = cmd("-A -t [fd00::1]:80 -s rr");
        let id = ServiceId::Addr {
            proto: Proto::Tcp,
            addr: ip("fd00::1"),
            port: 80,
        };
        assert_eq!(
            c,
            Command::AddService(ServiceSpec {
                sched: SchedKind::Rr,
                ..ServiceSpec::new(id)
            })
        );
        let Command::AddServer(_, d) = cmd("-a -t [fd00::1]:80 -r [fd00::2]:8080 -m") else {
            panic!()
        };
        assert_eq!((d.addr, d.port), (ip("fd00::2"), 8080));
        let Command::AddServer(_, d) = cmd("-a -t [fd00::1]:80 -r fd00::2") else {
            panic!()
        };
        assert_eq!((d.addr, d.port), (ip("fd00::2"), 80));
        let Command::AddServer(_, d) = cmd("-a -t [fd00::1]:80 -r [fd00::2]") else {
            panic!()
        };
        assert_eq!(d.port, 80);
        assert_eq!(
            cmd("-A -f 9 -6"),
            Command::AddService(ServiceSpec::new(ServiceId::Fwmark { mark: 9, v6: true }))
        );
        assert_eq!(cmd("--add-service -6 -f 9"), cmd("-A -f 9 -6"));
        assert!(err("-a -t [fd00::1]:80 -r 10.0.0.2")
            .contains("-r 10.0.0.2: an IPv4 real server for an IPv6 service"));
        assert!(err("-a -f 9 -r fd00::2").contains("an IPv6 real server for an IPv4 service"));
        assert!(err("-A -t [fd00::1]:80 -6").contains("-6: only with -f"));
        // A bare IPv6 address has no port (fd00::1:80 is an address): ipvsadm reads it so too.
        assert!(err("-A -t fd00::1:80").contains("port 0 (all ports) is only for persistent services (add -p); an IPv6 address with a port needs brackets"));
    }

    #[test]
    fn scheduler_flags_and_aliases() {
        let flags = |line: &str| match cmd(line) {
            Command::AddService(s) => (s.sched, s.flags),
            c => panic!("{c:?}"),
        };
        let (k, f) = flags("-A -t 10.0.0.1:80 -s sh -b sh-fallback,sh-port");
        assert_eq!(k, SchedKind::Sh);
        assert_eq!(
            f,
            SchedFlagBits {
                flag1: true,
                flag2: true,
                flag3: false
            }
        );
        assert_eq!(
            f.for_engine(k),
            SchedFlags {
                sh_fallback: true,
                sh_port: true,
                ..SchedFlags::default()
            }
        );
        let (k, f) = flags("-A -t 10.0.0.1:80 -b mh-port -s mh");
        assert_eq!(
            f.for_engine(k),
            SchedFlags {
                mh_port: true,
                ..SchedFlags::default()
            }
        );
        let (k, f) = flags("-A -t 10.0.0.1:80 -s mh -b flag-1");
        assert_eq!(
            f.for_engine(k),
            SchedFlags {
                mh_fallback: true,
                ..SchedFlags::default()
            }
        );
        let (k, f) = flags("-A -t 10.0.0.1:80 -s rr -b flag-1,flag-2,flag-3");
        assert_eq!(
            f,
            SchedFlagBits {
                flag1: true,
                flag2: true,
                flag3: true
            }
        );
        assert_eq!(f.for_engine(k), SchedFlags::default());
        assert!(err("-A -t 10.0.0.1:80 -b sh-port")
            .contains("-b sh-port: scheduler flag sh-port is for -s sh, not -s wlc"));
        assert!(err("-A -t 10.0.0.1:80 -s sh -b sh-bogus").contains("unknown scheduler flag"));
        assert!(err("-A -t 10.0.0.1:80 -s fastest").contains("-s fastest: unknown scheduler"));
    }

    #[test]
    fn tunnel_options_follow_ipvsadms_table() {
        let tun = |line: &str| match cmd(line) {
            Command::AddServer(_, d) => d.tun,
            c => panic!("{c:?}"),
        };
        assert_eq!(
            tun("-a -t 10.0.0.1:80 -r 10.0.0.11 -i"),
            TunConfig::default()
        );
        assert_eq!(
            tun("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type ipip"),
            TunConfig::default()
        );
        assert_eq!(
            tun("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue --tun-port 6080 --tun-remcsum"),
            TunConfig {
                kind: TunKind::Gue,
                port: 6080,
                csum: TunCsum::RemCsum
            }
        );
        assert_eq!(
            tun("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gre --tun-csum"),
            TunConfig {
                kind: TunKind::Gre,
                port: 0,
                csum: TunCsum::Csum
            }
        );
        assert_eq!(
            tun("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gre --tun-nocsum"),
            TunConfig {
                kind: TunKind::Gre,
                port: 0,
                csum: TunCsum::NoCsum
            }
        );
        assert!(
            err("-a -t 10.0.0.1:80 -r 10.0.0.11 --tun-type gue --tun-port 1")
                .contains("--tun-type gue: tunnel options need -i")
        );
        assert!(
            err("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue").contains("needs --tun-port")
        );
        assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-port 9")
            .contains("--tun-port 9: not valid with --tun-type ipip"));
        assert!(
            err("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gre --tun-remcsum")
                .contains("--tun-remcsum: not valid with --tun-type gre")
        );
        assert!(err(
            "-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue --tun-port 9 --tun-csum --tun-nocsum"
        )
        .contains("--tun-nocsum: conflicts with --tun-csum"));
        assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type vxlan")
            .contains("--tun-type vxlan: unknown tunnel type"));
        assert!(
            err("-a -t 10.0.0.1:80 -r 10.0.0.11 -i --tun-type gue --tun-port 0")
                .contains("--tun-port 0: tunnel port must be 1..65535")
        );
    }

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
    fn errors_name_the_line_and_the_field() {
        let e =
            RuleSet::from_text("-A -t 10.0.0.1:80\n\n-a -t 10.0.0.1:80 -r 10.0.0.11 -w 70000\n")
                .unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.to_string(), "line 3: -w 70000: weight must be 0..65535");
        let e = parse_rules("# x\n-A -t 10.0.0.1:80 -x 5\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: -x 5: not an option of -A (add-service)"
        );
        let e = RuleSet::from_text("-a -t 10.0.0.1:80 -r 10.0.0.11").unwrap_err();
        assert_eq!(e.to_string(), "line 1: -t 10.0.0.1:80: Service not defined");
        assert!(err("-A -t 10.0.0.1")
            .contains("-t 10.0.0.1: port 0 (all ports) is only for persistent services"));
        assert!(err("-A -t 10.0.0.1:80 -o")
            .contains("-o: one-packet scheduling is only for UDP services"));
        assert!(err("-A -f 4 -o").contains("-o: one-packet scheduling on a fwmark service"));
        assert!(err("-A -f 0").contains("-f 0: a fwmark must be 1..4294967295"));
        assert!(err("-A -t 10.0.0.1:99999").contains("-t 10.0.0.1:99999: port must be 0..65535"));
        assert!(err("-A -t web.example:80")
            .contains("-t web.example:80: \"web.example\" is not a numeric IP address"));
        assert!(err("-A -t 224.0.0.1:80").contains("is not a unicast address"));
        assert!(err("-a -t 10.0.0.1:80 -r 0.0.0.0")
            .contains("-r 0.0.0.0: 0.0.0.0 is not a unicast address"));
        assert!(
            err("-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1").contains("-w -1: weight must be 0..65535")
        );
        assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -x 10 -y 20")
            .contains("-y 20: lower threshold is higher than the upper threshold (10)"));
        assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -y 1").contains("-y 1: lower threshold"));
        assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -x 2147483648")
            .contains("-x 2147483648: upper threshold must be 0..2147483647"));
        assert!(err("-a -t 10.0.0.1:80").contains("-a (add-server) needs -r"));
        assert!(err("-a -r 10.0.0.2").contains("needs a service"));
        assert!(err("-A -t 10.0.0.1:80 -u 10.0.0.1:80")
            .contains("-u 10.0.0.1:80: conflicts with -t 10.0.0.1:80"));
        assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -m -g").contains("-g: conflicts with -m"));
        assert!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 1 -w 2").contains("-w 2: given twice"));
        assert!(err("-A -a -t 10.0.0.1:80").contains("-a: a second command after -A"));
        assert!(err("-t 10.0.0.1:80").contains("no command"));
        assert!(err("-L -n").contains("-L: not a rule command"));
        assert!(err("-S").contains("not a rule command"));
        assert!(err("-A -t 10.0.0.1:80 --bogus").contains("--bogus: unknown option"));
        assert!(err("-A -t 10.0.0.1:80 -q").contains("-q: unknown option"));
        assert!(err("-A -t 10.0.0.1:80 extra").contains("extra: unexpected argument"));
        assert!(err("-A -t").contains("-t: needs a value"));
        assert!(err("-A -t 10.0.0.1:80 --pe sip")
            .contains("--pe sip: persistence engines are not supported"));
        assert!(err("-C -t 10.0.0.1:80").contains("not an option of -C"));
        assert!(err("-D -t 10.0.0.1:80 -s rr").contains("-s rr: not an option of -D"));
        assert!(err("-d -t 10.0.0.1:80 -r 10.0.0.2 -w 3").contains("-w 3: not an option of -d"));
        assert!(err("--ops=1 -A").contains("--ops=1: --ops takes no value"));
    }

    #[test]
    fn leading_ipvsadm_word_and_trailing_comment_are_dropped() {
        assert_eq!(
            cmd("ipvsadm -A -t 10.0.0.1:80 # web"),
            cmd("-A -t 10.0.0.1:80")
        );
    }

    #[test]
    fn clustered_short_options() {
        assert_eq!(
            cmd("-a -t 10.0.0.1:80 -r 10.0.0.2 -mw5"),
            cmd("-a -t 10.0.0.1:80 -r 10.0.0.2 -m -w 5")
        );
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
    fn to_configs_builds_engine_snapshots_per_family() {
        let rs = set(
            "-A -t 10.0.0.1:80 -s mh -b mh-port -p 120 -M 255.255.255.0\n\
             -a -t 10.0.0.1:80 -r 10.0.0.11 -w 2\n\
             -a -t 10.0.0.1:80 -r 10.0.0.12 -i --tun-type gue --tun-port 6080\n\
             -A -u [fd00::1]:53 -s rr -o\n\
             -a -u [fd00::1]:53 -r [fd00::11]:5353 -m -x 100 -y 10\n\
             -A -f 5\n\
             -A -f 5 -6\n",
        );
        let (c4, c6) = rs.to_configs(Sysctl::default()).unwrap();
        assert_eq!(c4.services.len(), 2);
        assert_eq!(c6.services.len(), 2);
        let s = &c4.services[0];
        assert_eq!(s.sched, SchedKind::Mh);
        assert!(s.sched_flags.mh_port && !s.sched_flags.mh_fallback);
        assert_eq!(
            s.persistence,
            Some(Persistence {
                timeout_ms: 120_000,
                prefix: 24
            })
        );
        assert_eq!(s.dests.len(), 2);
        assert_eq!(s.dests[0].addr.to_ip(), ip("10.0.0.12"));
        assert_eq!(
            s.dests[0].tun,
            TunConfig {
                kind: TunKind::Gue,
                port: 6080,
                csum: TunCsum::NoCsum
            }
        );
        assert_eq!(s.dests[1].weight, 2);
        let vip = V4::from_ip(ip("10.0.0.1")).unwrap();
        assert_eq!(c4.find_service(0, Proto::Tcp, vip, 80), Some(0));
        assert!(matches!(c4.services[1].key, ServiceKey::Fwmark(5)));
        let u = &c6.services[0];
        assert!(u.ops);
        assert_eq!(
            (
                u.dests[0].port,
                u.dests[0].fwd,
                u.dests[0].u_threshold,
                u.dests[0].l_threshold
            ),
            (5353, Fwd::Masq, 100, 10)
        );
    }

    #[test]
    fn quiesced_mh_dest_keeps_its_table_slots() {
        let base = "-A -t 10.0.0.1:80 -s mh\n-a -t 10.0.0.1:80 -r 10.0.0.11\n-a -t 10.0.0.1:80 -r 10.0.0.12\n-a -t 10.0.0.1:80 -r 10.0.0.13\n";
        let full = set(base).to_configs(Sysctl::default()).unwrap().0;
        let quiet = set(&format!("{base}-e -t 10.0.0.1:80 -r 10.0.0.12 -w 0\n"))
            .to_configs(Sysctl::default())
            .unwrap()
            .0;
        // The Maglev table is built from the last non-zero weights: unchanged by quiescing.
        assert_eq!(
            format!("{:?}", full.services[0].tables),
            format!("{:?}", quiet.services[0].tables)
        );
        assert_eq!(quiet.services[0].dests[1].weight, 0);
        // A dest added at weight 0 never had a weight: it has no slots (as in IPVS).
        let never = set(&base.replace("-r 10.0.0.12", "-r 10.0.0.12 -w 0"))
            .to_configs(Sysctl::default())
            .unwrap()
            .0;
        assert_ne!(
            format!("{:?}", full.services[0].tables),
            format!("{:?}", never.services[0].tables)
        );
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

    // ---- properties ----

    fn arb_v4() -> impl Strategy<Value = IpAddr> {
        (1u8..4).prop_map(|x| IpAddr::V4(Ipv4Addr::new(10, 0, 0, x)))
    }
    fn arb_v6() -> impl Strategy<Value = IpAddr> {
        (1u16..4).prop_map(|x| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, x)))
    }

    fn arb_id() -> impl Strategy<Value = ServiceId> {
        let proto = prop_oneof![Just(Proto::Tcp), Just(Proto::Udp), Just(Proto::Sctp)];
        prop_oneof![
            (
                proto.clone(),
                arb_v4(),
                prop_oneof![Just(0u16), Just(80u16), Just(443u16)]
            )
                .prop_map(|(proto, addr, port)| ServiceId::Addr { proto, addr, port }),
            (proto, arb_v6(), prop_oneof![Just(0u16), Just(53u16)])
                .prop_map(|(proto, addr, port)| ServiceId::Addr { proto, addr, port }),
            (1u32..4, any::<bool>()).prop_map(|(mark, v6)| ServiceId::Fwmark { mark, v6 }),
        ]
    }

    fn arb_spec(id: ServiceId) -> impl Strategy<Value = ServiceSpec> {
        let v6 = id.is_v6();
        (
            proptest::sample::select(SchedKind::ALL.to_vec()),
            any::<(bool, bool, bool)>(),
            proptest::option::of((1u32..=MAX_PERSISTENCE_S, any::<u8>())),
            any::<bool>(),
        )
            .prop_map(move |(sched, (f1, f2, f3), p, ops)| ServiceSpec {
                id,
                sched,
                flags: SchedFlagBits {
                    flag1: f1,
                    flag2: f2,
                    flag3: f3,
                },
                persistence: p.map(|(timeout_s, m)| Persist {
                    timeout_s,
                    prefix: if v6 { m % 128 + 1 } else { m % 33 },
                }),
                ops,
            })
    }

    fn arb_dest(v6: bool) -> impl Strategy<Value = Dest> {
        let addr = if v6 {
            arb_v6().boxed()
        } else {
            arb_v4().boxed()
        };
        let tun = prop_oneof![
            Just(TunConfig::default()),
            (1u16.., 0u8..3).prop_map(|(port, c)| TunConfig {
                kind: TunKind::Gue,
                port,
                csum: [TunCsum::NoCsum, TunCsum::Csum, TunCsum::RemCsum][c as usize],
            }),
            any::<bool>().prop_map(|c| TunConfig {
                kind: TunKind::Gre,
                port: 0,
                csum: if c { TunCsum::Csum } else { TunCsum::NoCsum },
            }),
        ];
        (
            addr,
            any::<u16>(),
            0u8..3,
            0..=MAX_WEIGHT,
            0u32..5,
            0u32..5,
            tun,
        )
            .prop_map(|(addr, port, f, weight, u, l, tun)| {
                let fwd = [Fwd::Masq, Fwd::Droute, Fwd::Tunnel][f as usize];
                let (u, l) = if l > u { (l, u) } else { (u, l) };
                Dest {
                    fwd,
                    weight,
                    u_threshold: u,
                    l_threshold: l,
                    tun: if fwd == Fwd::Tunnel {
                        tun
                    } else {
                        TunConfig::default()
                    },
                    ..Dest::new(addr, port)
                }
            })
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        arb_id().prop_flat_map(|id| {
            let v6 = id.is_v6();
            prop_oneof![
                3 => arb_spec(id).prop_map(Command::AddService),
                1 => arb_spec(id).prop_map(Command::EditService),
                1 => Just(Command::DeleteService(id)),
                6 => arb_dest(v6).prop_map(move |d| Command::AddServer(id, d)),
                2 => arb_dest(v6).prop_map(move |d| Command::EditServer(id, d)),
                1 => arb_dest(v6).prop_map(move |d| Command::DeleteServer(id, d.addr, d.port)),
                1 => (0u32..5000, 0u32..5000, 0u32..5000)
                    .prop_map(|(tcp, tcpfin, udp)| Command::SetTimeouts(SetTimeouts { tcp, tcpfin, udp })),
                1 => Just(Command::Zero(Some(id))),
            ]
        })
    }

    /// A random rule set: a few services, then random commands on them (and some on others),
    /// applied in order, the refused ones skipped.
    fn arb_ruleset() -> impl Strategy<Value = RuleSet> {
        use proptest::sample::Index;
        let op = (
            any::<Index>(),
            any::<Index>(),
            0u8..13,
            arb_dest(false),
            arb_dest(true),
            arb_id().prop_flat_map(arb_spec),
            (0u32..5000, 0u32..5000, 0u32..5000),
        );
        (
            proptest::collection::vec(arb_id().prop_flat_map(arb_spec), 1..8),
            proptest::collection::vec(op, 0..60),
        )
            .prop_map(|(specs, ops)| {
                let mut rs = RuleSet::new();
                for s in specs {
                    let _ = rs.apply_in_place(&Command::AddService(s));
                }
                for (si, di, op, d4, d6, spec, (tcp, tcpfin, udp)) in ops {
                    let c = match rs.services.get(si.index(rs.services.len().max(1))) {
                        None => Command::AddService(spec),
                        Some(svc) => {
                            let id = svc.spec.id;
                            let d = if id.is_v6() { d6 } else { d4 };
                            let old = svc.dests.get(di.index(svc.dests.len().max(1))).cloned();
                            match (op, old) {
                                (0..=5, _) => Command::AddServer(id, d),
                                (6 | 7, Some(o)) => Command::EditServer(
                                    id,
                                    Dest {
                                        addr: o.addr,
                                        port: o.port,
                                        ..d
                                    },
                                ),
                                (8, Some(o)) => Command::DeleteServer(id, o.addr, o.port),
                                (9, _) => Command::EditService(ServiceSpec { id, ..spec }),
                                (10, _) => Command::SetTimeouts(SetTimeouts { tcp, tcpfin, udp }),
                                (11, _) => Command::DeleteService(id),
                                _ => Command::AddService(spec),
                            }
                        }
                    };
                    let _ = rs.apply_in_place(&c);
                }
                rs
            })
    }

    #[test]
    fn random_rule_sets_are_not_trivial() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut services, mut dests, mut tunnels) = (0, 0, 0);
        for _ in 0..100 {
            let rs = arb_ruleset().new_tree(&mut runner).unwrap().current();
            services += rs.services.len();
            for s in &rs.services {
                dests += s.dests.len();
                tunnels += s.dests.iter().filter(|d| d.fwd == Fwd::Tunnel).count();
            }
        }
        assert!(
            services > 250 && dests > 400 && tunnels > 100,
            "{services} {dests} {tunnels}"
        );
    }

    proptest! {
        #[test]
        fn save_round_trips(rs in arb_ruleset()) {
            let text = rs.save();
            let back = RuleSet::from_text(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(&back, &rs, "{}", text);
            prop_assert_eq!(back.save(), text);
            prop_assert!(rs.to_configs(Sysctl::default()).is_ok());
        }

        #[test]
        fn valid_commands_print_and_parse_back(c in arb_command()) {
            let mut want = c.clone();
            if let Command::AddServer(id, d) | Command::EditServer(id, d) = &mut want {
                normalize_dest_port(id, d);
            }
            // Only commands that pass the rule set's checks are ipvsadm-valid.
            let valid = match &want {
                Command::AddService(s) | Command::EditService(s) => validate_spec(s).is_ok(),
                Command::AddServer(id, d) | Command::EditServer(id, d) => validate_dest(id, d).is_ok(),
                _ => true,
            };
            if valid {
                let line = c.to_string();
                prop_assert_eq!(parse_line(&line), Ok(Some(want)), "{}", line);
            }
        }

        #[test]
        fn no_panic_on_any_line(line in "\\PC{0,80}") {
            let _ = parse_line(&line);
        }

        #[test]
        fn no_panic_on_option_soup(words in proptest::collection::vec(prop_oneof![
            Just("-A"), Just("-a"), Just("-e"), Just("-E"), Just("-d"), Just("-D"), Just("--set"),
            Just("-t"), Just("-u"), Just("-f"), Just("-6"), Just("-p"), Just("-M"), Just("-r"),
            Just("-w"), Just("-x"), Just("-y"), Just("-i"), Just("-m"), Just("--tun-type"),
            Just("gue"), Just("--tun-port"), Just("10.0.0.1:80"), Just("[fd00::1]:80"), Just("7"),
            Just("0"), Just("-b"), Just("sh-port"), Just("-s"), Just("sh"), Just("--"), Just("-"),
            Just("-pw"), Just("--weight="), Just("[::"), Just("4294967296"),
        ], 0..12)) {
            let line = words.join(" ");
            if let Ok(Some(c)) = parse_line(&line) {
                let _ = RuleSet::new().apply(&c);
                let _ = c.to_string();
            }
        }
    }
}

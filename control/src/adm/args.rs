//! ipvsadm's command line, read as ipvsadm 1.31 reads it (`parse_options`,
//! `process_options`): popt's option syntax, the first option as the command, ipvsadm's table
//! of which options each command takes (`commands_v_options`), its checks and its messages
//! (`illegal weight specified`, exit 2), name look-ups for hosts and services.
//!
//! A rule command (`-A -E -D -C -a -e -d --set`) passes ipvsadm's checks, is written as a
//! numeric rules line (names resolved, ipvsadm's dest port filled in) and read by the one rules
//! parser, [`rules::parse_line`]; the [`Command`](rules::Command)'s text is what travels to
//! rvsd. What ipvsadm would have left to the kernel and rvs can tell now (an unknown
//! scheduler, a lower threshold over the upper, a real server that is not unicast) is
//! reported in the kernel's words with ipvsadm's exit code 255; what rvs refuses and ipvsadm
//! would take (`--pe`, a real server of the other family) gets the rules parser's message and
//! exit 2.

use std::net::{IpAddr, Ipv6Addr};

use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::SchedKind;

use super::errors::Failure;
use super::listing::Format;
use super::names::Names;
use crate::protocol::Request;
use crate::rules::{self, ServiceId};

/// ipvsadm's `MAX_TIMEOUT`: 31 days.
const MAX_TIMEOUT: i64 = 86_400 * 31;
/// `-p` without a value (`IPVS_SVC_PERSISTENT_TIMEOUT`).
const DEFAULT_PERSISTENT: i64 = 300;
/// ipvsadm's default scheduler.
const DEF_SCHED: &str = "wlc";

/// What rvsadm was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `-h`.
    Help,
    /// `-v`.
    Version,
    /// A rule command, as its canonical rules line (`-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1`).
    Apply(String),
    /// `-Z [service]`.
    Zero(Option<ServiceId>),
    /// `-R`: rule lines from stdin.
    Restore,
    /// `-S [-n]`.
    Save,
    /// `-L`, or `-L` with a service.
    List {
        service: Option<ServiceId>,
        format: Format,
    },
    /// `-L -c`.
    Conns(Format),
    /// `-L --timeout`.
    Timeouts,
    /// `-L --daemon`: rvs runs no sync daemon, so nothing to list.
    Daemons,
    /// `--start-daemon` / `--stop-daemon`: not in rvs.
    SyncDaemon,
}

impl Action {
    /// The request that does this action; None for those that read stdin first (`-R`) or need
    /// no rvsd (`-h`, `-v`, `--daemon`, the sync daemon).
    pub fn request(&self) -> Option<Request> {
        match self {
            Action::Apply(line) => Some(Request::Apply {
                lines: vec![line.clone()],
            }),
            Action::Zero(s) => Some(Request::Zero {
                service: s.map(|s| s.to_string()),
            }),
            Action::Save => Some(Request::Save),
            Action::List { service, .. } => Some(Request::List {
                service: service.map(|s| s.to_string()),
            }),
            Action::Conns(_) => Some(Request::Conns { cursor: 0 }),
            Action::Timeouts => Some(Request::Timeouts),
            Action::Help
            | Action::Version
            | Action::Restore
            | Action::Daemons
            | Action::SyncDaemon => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// ipvsadm's commands and options

/// ipvsadm's commands, in `CMD_*` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

impl Cmd {
    /// ipvsadm's `cmdnames`.
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Timeout => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
        }
    }

    /// The command's row of ipvsadm's `commands_v_options`, one byte per [`Opt`]:
    /// `+` needed, `x` refused, `1` at most one of the `1`s, ` ` optional.
    fn row(self) -> &'static [u8; N_OPT] {
        match self {
            Cmd::Add | Cmd::Edit => b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
            Cmd::Del => b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Flush | Cmd::Timeout | Cmd::Restore => b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::List => b" 11xxxxxxxxx11       xxxxxxx xxxxx",
            Cmd::AddDest | Cmd::EditDest => b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
            Cmd::DelDest => b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::StartDaemon => b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
            Cmd::StopDaemon => b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
            Cmd::Save => b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Zero => b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        }
    }
}

/// ipvsadm's option classes (`OPTC_*`), in order: a command's table row has a byte for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Mcast,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    SyncId,
    Exact,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
}

const N_OPT: usize = 34;

/// ipvsadm's `optnames`, by [`Opt`].
const OPT_NAMES: [&str; N_OPT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// What each word of ipvsadm's popt table stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Add,
    Edit,
    Del,
    Clear,
    List,
    Zero,
    AddDest,
    EditDest,
    DelDest,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    Real,
    Masq,
    Ipip,
    Gate,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    No,
    Required,
    /// `-p [timeout]`: the next word, unless it starts with `-`.
    Optional,
}

struct OptSpec {
    long: &'static str,
    short: Option<char>,
    arg: Arg,
    tag: Tag,
}

const fn o(long: &'static str, short: Option<char>, arg: Arg, tag: Tag) -> OptSpec {
    OptSpec {
        long,
        short,
        arg,
        tag,
    }
}

/// ipvsadm 1.31's popt table.
const OPTIONS: &[OptSpec] = &[
    o("add-service", Some('A'), Arg::No, Tag::Add),
    o("edit-service", Some('E'), Arg::No, Tag::Edit),
    o("delete-service", Some('D'), Arg::No, Tag::Del),
    o("clear", Some('C'), Arg::No, Tag::Clear),
    o("list", Some('L'), Arg::No, Tag::List),
    o("list", Some('l'), Arg::No, Tag::List),
    o("zero", Some('Z'), Arg::No, Tag::Zero),
    o("add-server", Some('a'), Arg::No, Tag::AddDest),
    o("edit-server", Some('e'), Arg::No, Tag::EditDest),
    o("delete-server", Some('d'), Arg::No, Tag::DelDest),
    o("set", None, Arg::No, Tag::Set),
    o("help", Some('h'), Arg::No, Tag::Help),
    o("version", Some('v'), Arg::No, Tag::Version),
    o("restore", Some('R'), Arg::No, Tag::Restore),
    o("save", Some('S'), Arg::No, Tag::Save),
    o("start-daemon", None, Arg::Required, Tag::StartDaemon),
    o("stop-daemon", None, Arg::Required, Tag::StopDaemon),
    o("tcp-service", Some('t'), Arg::Required, Tag::Tcp),
    o("udp-service", Some('u'), Arg::Required, Tag::Udp),
    o("sctp-service", None, Arg::Required, Tag::Sctp),
    o("fwmark-service", Some('f'), Arg::Required, Tag::Fwmark),
    o("scheduler", Some('s'), Arg::Required, Tag::Scheduler),
    o("persistent", Some('p'), Arg::Optional, Tag::Persistent),
    o("netmask", Some('M'), Arg::Required, Tag::Netmask),
    o("real-server", Some('r'), Arg::Required, Tag::Real),
    o("masquerading", Some('m'), Arg::No, Tag::Masq),
    o("ipip", Some('i'), Arg::No, Tag::Ipip),
    o("gatewaying", Some('g'), Arg::No, Tag::Gate),
    o("weight", Some('w'), Arg::Required, Tag::Weight),
    o("u-threshold", Some('x'), Arg::Required, Tag::UThreshold),
    o("l-threshold", Some('y'), Arg::Required, Tag::LThreshold),
    o("numeric", Some('n'), Arg::No, Tag::Numeric),
    o("connection", Some('c'), Arg::No, Tag::Connection),
    o("mcast-interface", None, Arg::Required, Tag::McastInterface),
    o("syncid", None, Arg::Required, Tag::SyncId),
    o("timeout", None, Arg::No, Tag::Timeout),
    o("daemon", None, Arg::No, Tag::Daemon),
    o("stats", None, Arg::No, Tag::Stats),
    o("rate", None, Arg::No, Tag::Rate),
    o("thresholds", None, Arg::No, Tag::Thresholds),
    o("persistent-conn", None, Arg::No, Tag::PersistentConn),
    o("nosort", None, Arg::No, Tag::NoSort),
    o("sort", None, Arg::No, Tag::Sort),
    o("exact", Some('X'), Arg::No, Tag::Exact),
    o("ipv6", Some('6'), Arg::No, Tag::Ipv6),
    o("ops", Some('o'), Arg::No, Tag::Ops),
    o("pe", None, Arg::Required, Tag::Pe),
    o("sched-flags", Some('b'), Arg::Required, Tag::SchedFlags),
    o("mcast-group", None, Arg::Required, Tag::McastGroup),
    o("mcast-port", None, Arg::Required, Tag::McastPort),
    o("mcast-ttl", None, Arg::Required, Tag::McastTtl),
    o("sync-maxlen", None, Arg::Required, Tag::SyncMaxlen),
    o("tun-info", None, Arg::No, Tag::TunInfo),
    o("tun-type", None, Arg::Required, Tag::TunType),
    o("tun-port", None, Arg::Required, Tag::TunPort),
    o("tun-nocsum", None, Arg::No, Tag::TunNoCsum),
    o("tun-csum", None, Arg::No, Tag::TunCsum),
    o("tun-remcsum", None, Arg::No, Tag::TunRemCsum),
];

// ---------------------------------------------------------------------------------------
// popt's scanning

/// One option as popt returns it; `word` is the last word it used (what popt's
/// `poptBadOption` names).
enum Item {
    Opt {
        tag: Tag,
        value: Option<String>,
        word: String,
    },
    Bad {
        word: String,
        why: &'static str,
    },
}

/// popt over the words: long options (`--name`, `--name=value`), clustered short options
/// (`-Lnc`, `-t10.0.0.1:80`), `--` ending the options, other words kept as arguments.
struct Scanner<'a> {
    words: &'a [String],
    next: usize,
    /// Inside a short-option cluster: its word and the byte offset of the next option.
    cluster: Option<(usize, usize)>,
    only_args: bool,
    args: Vec<String>,
}

impl<'a> Scanner<'a> {
    fn new(words: &'a [String]) -> Self {
        Scanner {
            words,
            next: 0,
            cluster: None,
            only_args: false,
            args: Vec::new(),
        }
    }

    /// The next word as a value; None at the end.
    fn take_word(&mut self) -> Option<String> {
        let w = self.words.get(self.next)?.clone();
        self.next += 1;
        Some(w)
    }

    /// `-p`'s value: the next word unless there is none or it starts with `-`.
    fn take_optional(&mut self) -> Option<String> {
        match self.words.get(self.next) {
            Some(w) if !w.starts_with('-') => self.take_word(),
            _ => None,
        }
    }

    fn next_item(&mut self) -> Option<Item> {
        if let Some((wi, off)) = self.cluster {
            return Some(self.short(wi, off));
        }
        loop {
            let w = self.words.get(self.next)?.clone();
            self.next += 1;
            if self.only_args {
                self.args.push(w);
            } else if w == "--" {
                self.only_args = true;
            } else if let Some(long) = w.strip_prefix("--") {
                return Some(self.long(&w, long));
            } else if w.len() > 1 && w.starts_with('-') {
                return Some(self.short(self.next - 1, 1));
            } else {
                self.args.push(w);
            }
        }
    }

    fn long(&mut self, word: &str, long: &str) -> Item {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let Some(spec) = OPTIONS.iter().find(|s| s.long == name) else {
            return Item::Bad {
                word: word.into(),
                why: "unknown option",
            };
        };
        let value = match (spec.arg, inline) {
            (Arg::No, Some(_)) => {
                return Item::Bad {
                    word: word.into(),
                    why: "option does not take an argument",
                }
            }
            (Arg::No, None) => None,
            (_, Some(v)) => Some(v),
            (Arg::Required, None) => match self.take_word() {
                Some(v) => Some(v),
                None => {
                    return Item::Bad {
                        word: word.into(),
                        why: "missing argument",
                    }
                }
            },
            (Arg::Optional, None) => self.take_optional(),
        };
        let last = self.words.get(self.next - 1).cloned().unwrap_or_default();
        Item::Opt {
            tag: spec.tag,
            value,
            word: last,
        }
    }

    fn short(&mut self, wi: usize, off: usize) -> Item {
        let word = self.words.get(wi).cloned().unwrap_or_default();
        let Some(c) = word.get(off..).and_then(|r| r.chars().next()) else {
            self.cluster = None;
            return Item::Bad {
                word,
                why: "unknown option",
            };
        };
        let rest_at = off + c.len_utf8();
        let rest = word.get(rest_at..).unwrap_or("").to_string();
        self.cluster = None;
        let Some(spec) = OPTIONS.iter().find(|s| s.short == Some(c)) else {
            return Item::Bad {
                word,
                why: "unknown option",
            };
        };
        let value = match spec.arg {
            Arg::No => {
                if !rest.is_empty() {
                    self.cluster = Some((wi, rest_at));
                }
                None
            }
            Arg::Required if !rest.is_empty() => Some(rest),
            Arg::Required => match self.take_word() {
                Some(v) => Some(v),
                None => {
                    return Item::Bad {
                        word,
                        why: "missing argument",
                    }
                }
            },
            Arg::Optional if !rest.is_empty() => Some(rest),
            Arg::Optional => self.take_optional(),
        };
        let last = if self.cluster.is_some() {
            word
        } else {
            self.words.get(self.next - 1).cloned().unwrap_or_default()
        };
        Item::Opt {
            tag: spec.tag,
            value,
            word: last,
        }
    }
}

// ---------------------------------------------------------------------------------------
// ipvsadm's value parsers

/// C's `strtol(s, &end, 10)` that must use the whole word: leading white space, a sign,
/// digits. None when a character is left over, there are no digits, or it overflows.
fn strtol(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// ipvsadm's `string_to_number`.
fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    strtol(s).filter(|n| (min..=max).contains(n))
}

/// C's `atoi`: leading white space, a sign, the digits there are (0 for none).
fn atoi(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: String = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .take(18)
        .collect();
    let v: i64 = digits.parse().unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

/// ipvsadm's `parse_timeout`.
fn parse_timeout(v: Option<&str>, min: i64, max: i64) -> Result<i64, Failure> {
    match v {
        None => Ok(DEFAULT_PERSISTENT),
        Some(s) => string_to_number(s, min, max)
            .ok_or_else(|| Failure::usage(format!("invalid timeout value `{s}' specified"))),
    }
}

/// ipvsadm's `parse_fwmark`: 1..=UINT_MAX.
fn parse_fwmark(s: &str) -> Result<u32, Failure> {
    strtol(s)
        .filter(|&l| l > 0)
        .and_then(|l| u32::try_from(l).ok())
        .ok_or_else(|| Failure::usage(format!("invalid fwmark value `{s}' specified")))
}

/// ipvsadm's `parse_service`: `host[:port]`, `[v6]:port`, or a bare IPv6 address. Host and
/// port names are looked up (the port's for `proto`). None where ipvsadm finds no address.
fn parse_service(buf: &str, proto: u8, names: &dyn Names) -> Option<(IpAddr, Option<u16>)> {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    fn v4<'s>(s: &'s str, names: &dyn Names) -> Option<(IpAddr, Option<&'s str>)> {
        let (host, port) = match s.rfind(':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        Some((IpAddr::V4(names.host_v4(host)?), port))
    }
    let (addr, port) = if let Some(rest) = buf.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        match inner.parse::<Ipv6Addr>() {
            Ok(a) => (IpAddr::V6(a), Some(port)),
            // ipvsadm reads a bracketed non-IPv6 host as host[:port] and drops "]:port".
            Err(_) => v4(inner, names)?,
        }
    } else if let Ok(a) = buf.parse::<Ipv6Addr>() {
        (IpAddr::V6(a), None)
    } else {
        v4(buf, names)?
    };
    let port = match port {
        None => None,
        Some(p) => Some(match string_to_number(p, 0, 65535) {
            Some(n) => n as u16,
            None => names.service_port(p, proto)?,
        }),
    };
    Some((addr, port))
}

/// The scheduler flags of `-b` for scheduler `sched` (ipvsadm's `parse_sched_flags`); the
/// list is checked, rvs's parser reads it.
fn check_sched_flags(sched: &str, arg: &str) -> Result<(), Failure> {
    let flags: Vec<&str> = arg.split(',').filter(|f| !f.is_empty()).collect();
    if flags.is_empty() {
        return Err(Failure::usage(format!("invalid scheduler flag `{arg}'")));
    }
    for f in flags {
        let needs = match f {
            "flag-1" | "flag-2" | "flag-3" => None,
            "sh-fallback" | "sh-port" => Some("sh"),
            "mh-fallback" | "mh-port" => Some("mh"),
            _ => return Err(Failure::usage(format!("invalid scheduler flag `{f}'"))),
        };
        if needs.is_some_and(|s| s != sched) {
            return Err(Failure::usage(format!("incompatible scheduler flag `{f}'")));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The command line

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Af {
    #[default]
    Unspec,
    V4,
    V6,
}

fn af_of(a: IpAddr) -> Af {
    if a.is_ipv6() {
        Af::V6
    } else {
        Af::V4
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Fwd {
    #[default]
    Route,
    Masq,
    Tunnel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum TunType {
    #[default]
    Ipip,
    Gue,
    Gre,
}

impl TunType {
    fn name(self) -> &'static str {
        match self {
            TunType::Ipip => "ipip",
            TunType::Gue => "gue",
            TunType::Gre => "gre",
        }
    }

    /// ipvsadm's `tunnel_types_v_options` row for tun-port, -nocsum, -csum, -remcsum.
    fn row(self) -> &'static [u8; 4] {
        match self {
            TunType::Ipip => b"xxxx",
            TunType::Gue => b"+111",
            TunType::Gre => b"x11x",
        }
    }
}

/// What ipvsadm's `struct ipvs_command_entry` holds, as far as rvs needs it.
#[derive(Default)]
struct Entry {
    cmd: Option<Cmd>,
    options: u64,
    format: Format,
    // The service.
    af: Af,
    proto: u8,
    addr: Option<IpAddr>,
    port: u16,
    fwmark: u32,
    sched: Option<String>,
    persistent: Option<i64>,
    netmask: Option<String>,
    ops: bool,
    pe: Option<String>,
    sched_flags: Option<String>,
    // The dest.
    dest_af: Af,
    dest_addr: Option<IpAddr>,
    dest_port: u16,
    fwd: Fwd,
    weight: Option<i64>,
    u_threshold: Option<i64>,
    l_threshold: Option<i64>,
    tun_type: TunType,
    tun_port: Option<i64>,
    // --set.
    timeouts: [i64; 3],
}

impl Entry {
    fn has(&self, o: Opt) -> bool {
        self.options & (1 << o as u32) != 0
    }

    /// ipvsadm's `set_option`: each option once.
    fn set_option(&mut self, o: Opt) -> Result<(), Failure> {
        if self.has(o) {
            return Err(Failure::usage(format!(
                "multiple '{}' options specified",
                OPT_NAMES[o as usize]
            )));
        }
        self.options |= 1 << o as u32;
        Ok(())
    }

    /// The service named, as rvs's rules name it.
    fn service_id(&self) -> Option<ServiceId> {
        if self.fwmark != 0 {
            return Some(ServiceId::Fwmark {
                mark: self.fwmark,
                v6: self.af == Af::V6,
            });
        }
        Some(ServiceId::Addr {
            proto: Proto::from_u8(self.proto)?,
            addr: self.addr?,
            port: self.port,
        })
    }
}

/// ipvsadm's `generic_opt_check`: the command's row of the table against the options given.
fn generic_opt_check(cmd: Cmd, options: u64) -> Result<(), Failure> {
    let row = cmd.row();
    let mut first_one: Option<usize> = None;
    for (j, &rule) in row.iter().enumerate() {
        if options & (1 << j) == 0 {
            if rule == b'+' {
                return Err(Failure::usage(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    OPT_NAMES[j],
                    cmd.name()
                )));
            }
            continue;
        }
        if rule == b'x' {
            return Err(Failure::usage(format!(
                "Illegal '{}' option with the '{}' command",
                OPT_NAMES[j],
                cmd.name()
            )));
        }
        if rule == b'1' {
            match first_one {
                None => first_one = Some(j),
                Some(last) => {
                    return Err(Failure::usage(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        OPT_NAMES[j],
                        OPT_NAMES[last],
                        cmd.name()
                    )))
                }
            }
        }
    }
    Ok(())
}

/// ipvsadm's `tunnel_opt_check`.
fn tunnel_opt_check(t: TunType, e: &Entry) -> Result<(), Failure> {
    let opts = [Opt::TunPort, Opt::TunNoCsum, Opt::TunCsum, Opt::TunRemCsum];
    let mut first_one: Option<Opt> = None;
    for (&o, &rule) in opts.iter().zip(t.row()) {
        let name = OPT_NAMES[o as usize];
        if !e.has(o) {
            if rule == b'+' {
                return Err(Failure::usage(format!(
                    "You need to supply the '{name}' option for the '{}' tunnel type",
                    t.name()
                )));
            }
            continue;
        }
        if rule == b'x' {
            return Err(Failure::usage(format!(
                "Illegal '{name}' option with the '{}' tunnel type",
                t.name()
            )));
        }
        if rule == b'1' {
            match first_one {
                None => first_one = Some(o),
                Some(last) => {
                    return Err(Failure::usage(format!(
                    "The option '{name}' conflicts with the '{}' option in the '{}' tunnel type",
                    OPT_NAMES[last as usize],
                    t.name()
                )))
                }
            }
        }
    }
    Ok(())
}

/// Read `rvsadm ARGS` (without the program name) as ipvsadm reads its command line.
/// `program` is how errors and help name the program.
pub fn parse(program: &str, args: &[String], names: &dyn Names) -> Result<Action, Failure> {
    if args.is_empty() {
        return Ok(Action::List {
            service: None,
            format: Format::default(),
        });
    }
    parse_words(program, args, names)
}

/// Read one line of `-R` input (its words, `ipvsadm` words and comments taken out): a rule
/// command, as its canonical rules line.
pub fn parse_restore_line(
    program: &str,
    words: &[String],
    names: &dyn Names,
) -> Result<String, Failure> {
    match parse_words(program, words, names)? {
        Action::Apply(line) => Ok(line),
        Action::Zero(None) => Ok("-Z".into()),
        Action::Zero(Some(id)) => Ok(format!("-Z {id}")),
        _ => Err(Failure::usage(format!(
            "{}: not a rule command; -R reads -A -E -D -C -a -e -d --set -Z lines",
            words.first().map(String::as_str).unwrap_or("")
        ))),
    }
}

fn parse_words(program: &str, words: &[String], names: &dyn Names) -> Result<Action, Failure> {
    let mut sc = Scanner::new(words);
    let mut e = Entry::default();

    // The first option is the command.
    let Some(Item::Opt { tag, value, .. }) = sc.next_item() else {
        return Err(Failure::tryhelp(program));
    };
    e.cmd = Some(match tag {
        Tag::Add => Cmd::Add,
        Tag::Edit => Cmd::Edit,
        Tag::Del => Cmd::Del,
        Tag::AddDest => Cmd::AddDest,
        Tag::EditDest => Cmd::EditDest,
        Tag::DelDest => Cmd::DelDest,
        Tag::Clear => Cmd::Flush,
        Tag::List => Cmd::List,
        Tag::Zero => Cmd::Zero,
        Tag::Set => Cmd::Timeout,
        Tag::Restore => Cmd::Restore,
        Tag::Save => Cmd::Save,
        Tag::StartDaemon | Tag::StopDaemon => {
            let v = value.unwrap_or_default();
            if v != "master" && v != "backup" {
                return Err(Failure::usage(if tag == Tag::StartDaemon {
                    "illegal start-daemon parameter specified"
                } else {
                    "illegal start_daemon specified"
                }));
            }
            if tag == Tag::StartDaemon {
                Cmd::StartDaemon
            } else {
                Cmd::StopDaemon
            }
        }
        Tag::Help => return Ok(Action::Help),
        Tag::Version => return Ok(Action::Version),
        _ => return Err(Failure::tryhelp(program)),
    });

    // The options, in order; the first error ends the line.
    while let Some(item) = sc.next_item() {
        let (tag, value, word) = match item {
            Item::Opt { tag, value, word } => (tag, value, word),
            Item::Bad { word, why } => return Err(Failure::popt(&word, why)),
        };
        option(&mut e, tag, value, &word, names)?;
    }

    let cmd = e.cmd.unwrap_or(Cmd::List);
    let mut args = sc.args.into_iter();
    if cmd == Cmd::Timeout {
        let (Some(a), Some(b), Some(c)) = (args.next(), args.next(), args.next()) else {
            return Err(Failure::usage("--set option requires 3 timeout values"));
        };
        e.timeouts = [
            parse_timeout(Some(&a), 0, MAX_TIMEOUT)?,
            parse_timeout(Some(&b), 0, MAX_TIMEOUT)?,
            parse_timeout(Some(&c), 0, MAX_TIMEOUT)?,
        ];
    }
    if let Some(a) = args.next() {
        return Err(Failure::usage(format!("unexpected argument {a}")));
    }
    if let Some(flags) = &e.sched_flags {
        check_sched_flags(e.sched.as_deref().unwrap_or(DEF_SCHED), flags)?;
    }

    generic_opt_check(cmd, e.options)?;

    if matches!(cmd, Cmd::Add | Cmd::Edit) {
        if e.fwmark == 0 && e.port == 0 && e.persistent.is_none() {
            return Err(Failure::usage(
                "Zero port specified for non-persistent service",
            ));
        }
        if e.ops && e.fwmark == 0 && e.proto != Proto::Udp as u8 {
            return Err(Failure::usage(
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
    }
    if matches!(cmd, Cmd::AddDest | Cmd::EditDest) {
        // Direct routing and tunnelling keep the service's port (not for fwmark services).
        if e.fwmark == 0 && e.fwd != Fwd::Masq {
            e.dest_port = e.port;
        }
        if e.dest_af != e.af && e.fwd != Fwd::Tunnel {
            return Err(Failure::usage(
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let tun_opts = [
            Opt::TunType,
            Opt::TunPort,
            Opt::TunNoCsum,
            Opt::TunCsum,
            Opt::TunRemCsum,
        ];
        if tun_opts.iter().any(|&o| e.has(o)) && e.fwd != Fwd::Tunnel {
            return Err(Failure::usage(
                "Tunnel options conflict with forward method",
            ));
        }
        tunnel_opt_check(e.tun_type, &e)?;
    }

    match cmd {
        Cmd::List => {
            let f = &e.format;
            let conn_like = e.has(Opt::Connection) || e.has(Opt::Timeout) || e.has(Opt::Daemon);
            if (conn_like && (f.stats || f.rate || f.thresholds))
                || ((e.has(Opt::Timeout) || e.has(Opt::Daemon)) && f.persistent_conn)
            {
                return Err(Failure::usage("options conflicts in the list command"));
            }
            Ok(if e.has(Opt::Connection) {
                Action::Conns(e.format)
            } else if e.has(Opt::Service) {
                Action::List {
                    service: e.service_id(),
                    format: e.format,
                }
            } else if e.has(Opt::Timeout) {
                Action::Timeouts
            } else if e.has(Opt::Daemon) {
                Action::Daemons
            } else {
                Action::List {
                    service: None,
                    format: e.format,
                }
            })
        }
        Cmd::Restore => Ok(Action::Restore),
        Cmd::Save => Ok(Action::Save),
        Cmd::Zero => Ok(Action::Zero(if e.has(Opt::Service) {
            e.service_id()
        } else {
            None
        })),
        Cmd::StartDaemon | Cmd::StopDaemon => Ok(Action::SyncDaemon),
        _ => rule_line(cmd, &e).map(Action::Apply),
    }
}

/// One option after the command (the body of ipvsadm's option loop).
fn option(
    e: &mut Entry,
    tag: Tag,
    value: Option<String>,
    word: &str,
    names: &dyn Names,
) -> Result<(), Failure> {
    let v = value.clone().unwrap_or_default();
    match tag {
        Tag::Tcp | Tag::Udp | Tag::Sctp => {
            e.set_option(Opt::Service)?;
            e.proto = match tag {
                Tag::Tcp => 6,
                Tag::Udp => 17,
                _ => 132,
            };
            let (addr, port) = parse_service(&v, e.proto, names)
                .ok_or_else(|| Failure::usage("illegal virtual server address[:port] specified"))?;
            e.af = af_of(addr);
            e.addr = Some(addr);
            if let Some(p) = port {
                e.port = p;
            }
        }
        Tag::Fwmark => {
            e.set_option(Opt::Service)?;
            e.af = Af::V4;
            e.proto = 6;
            e.fwmark = parse_fwmark(&v)?;
        }
        Tag::Scheduler => {
            e.set_option(Opt::Scheduler)?;
            e.sched = Some(v);
        }
        Tag::Persistent => {
            e.set_option(Opt::Persistent)?;
            e.persistent = Some(parse_timeout(value.as_deref(), 1, MAX_TIMEOUT)?);
        }
        Tag::Netmask => {
            e.set_option(Opt::Netmask)?;
            e.netmask = Some(if e.af != Af::V6 {
                v4_netmask(&v, names).ok_or_else(|| {
                    Failure::usage("illegal virtual server persistent mask specified")
                })?
            } else {
                let n = atoi(&v);
                if !(1..=128).contains(&n) {
                    return Err(Failure::usage("illegal ipv6 netmask specified"));
                }
                n.to_string()
            });
        }
        Tag::Real => {
            e.set_option(Opt::Server)?;
            let (addr, port) = parse_service(&v, e.proto, names)
                .ok_or_else(|| Failure::usage("illegal real server address[:port] specified"))?;
            e.dest_af = af_of(addr);
            e.dest_addr = Some(addr);
            // Without a port, the service's port as known so far.
            e.dest_port = port.unwrap_or(e.port);
        }
        Tag::Masq | Tag::Ipip | Tag::Gate => {
            e.set_option(Opt::Forward)?;
            e.fwd = match tag {
                Tag::Masq => Fwd::Masq,
                Tag::Ipip => Fwd::Tunnel,
                _ => Fwd::Route,
            };
        }
        Tag::Weight => {
            e.set_option(Opt::Weight)?;
            e.weight = Some(
                string_to_number(&v, 0, 65535)
                    .ok_or_else(|| Failure::usage("illegal weight specified"))?,
            );
        }
        Tag::UThreshold => {
            e.set_option(Opt::UThreshold)?;
            e.u_threshold = Some(
                string_to_number(&v, 0, i64::from(i32::MAX))
                    .ok_or_else(|| Failure::usage("illegal u_threshold specified"))?,
            );
        }
        Tag::LThreshold => {
            e.set_option(Opt::LThreshold)?;
            e.l_threshold = Some(
                string_to_number(&v, 0, i64::from(i32::MAX))
                    .ok_or_else(|| Failure::usage("illegal l_threshold specified"))?,
            );
        }
        Tag::Connection => e.set_option(Opt::Connection)?,
        Tag::Numeric => {
            e.set_option(Opt::Numeric)?;
            e.format.numeric = true;
        }
        Tag::McastInterface => e.set_option(Opt::Mcast)?,
        Tag::SyncId => {
            e.set_option(Opt::SyncId)?;
            string_to_number(&v, 0, 255)
                .ok_or_else(|| Failure::usage("illegal syncid specified"))?;
        }
        Tag::Timeout => e.set_option(Opt::Timeout)?,
        Tag::Daemon => e.set_option(Opt::Daemon)?,
        Tag::Stats => {
            e.set_option(Opt::Stats)?;
            e.format.stats = true;
        }
        Tag::Rate => {
            e.set_option(Opt::Rate)?;
            e.format.rate = true;
        }
        Tag::Thresholds => {
            e.set_option(Opt::Thresholds)?;
            e.format.thresholds = true;
        }
        Tag::PersistentConn => {
            e.set_option(Opt::PersistentConn)?;
            e.format.persistent_conn = true;
        }
        Tag::NoSort => {
            e.set_option(Opt::NoSort)?;
            e.format.nosort = true;
        }
        // Sorting is the default; --sort is accepted and does nothing.
        Tag::Sort => {}
        Tag::Exact => {
            e.set_option(Opt::Exact)?;
            e.format.exact = true;
        }
        Tag::Ipv6 => {
            if e.fwmark == 0 {
                return Err(Failure::usage("-6 used before -f\n"));
            }
            e.af = Af::V6;
        }
        Tag::Ops => {
            e.set_option(Opt::Ops)?;
            e.ops = true;
        }
        Tag::Pe => {
            e.set_option(Opt::Pe)?;
            e.pe = Some(v);
        }
        Tag::SchedFlags => {
            e.set_option(Opt::SchedFlags)?;
            e.sched_flags = Some(v);
        }
        Tag::McastGroup => {
            e.set_option(Opt::McastGroup)?;
            let ok = if v.contains(':') {
                v.parse::<Ipv6Addr>().is_ok_and(|a| a.is_multicast())
            } else {
                v.parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|a| a.is_multicast())
            };
            if !ok {
                let fam = if v.contains(':') { "IPv6" } else { "IPv4" };
                return Err(Failure::usage(format!("invalid {fam} mcast-group `{v}'")));
            }
        }
        Tag::McastPort => {
            e.set_option(Opt::McastPort)?;
            string_to_number(&v, 1, 65535)
                .ok_or_else(|| Failure::usage("illegal mcast-port specified"))?;
        }
        Tag::McastTtl => {
            e.set_option(Opt::McastTtl)?;
            string_to_number(&v, 1, 255)
                .ok_or_else(|| Failure::usage("illegal mcast-ttl specified"))?;
        }
        Tag::SyncMaxlen => {
            e.set_option(Opt::SyncMaxlen)?;
            string_to_number(&v, 1, 65535 - 20 - 8)
                .ok_or_else(|| Failure::usage("illegal sync-maxlen specified"))?;
        }
        Tag::TunInfo => {
            e.set_option(Opt::TunInfo)?;
            e.format.tun_info = true;
        }
        Tag::TunType => {
            e.set_option(Opt::TunType)?;
            e.tun_type = match v.as_str() {
                "ipip" => TunType::Ipip,
                "gue" => TunType::Gue,
                "gre" => TunType::Gre,
                _ => return Err(Failure::usage("illegal tunnel type specified")),
            };
        }
        Tag::TunPort => {
            e.set_option(Opt::TunPort)?;
            e.tun_port = Some(
                string_to_number(&v, 1, 65535)
                    .ok_or_else(|| Failure::usage("illegal tunnel port specified"))?,
            );
        }
        Tag::TunNoCsum => e.set_option(Opt::TunNoCsum)?,
        Tag::TunCsum => e.set_option(Opt::TunCsum)?,
        Tag::TunRemCsum => e.set_option(Opt::TunRemCsum)?,
        // A command after the command.
        Tag::Add
        | Tag::Edit
        | Tag::Del
        | Tag::Clear
        | Tag::List
        | Tag::Zero
        | Tag::AddDest
        | Tag::EditDest
        | Tag::DelDest
        | Tag::Set
        | Tag::Help
        | Tag::Version
        | Tag::Restore
        | Tag::Save
        | Tag::StartDaemon
        | Tag::StopDaemon => {
            return Err(Failure::usage(format!("invalid option `{word}'")));
        }
    }
    Ok(())
}

/// ipvsadm's `parse_netmask` for an IPv4 service (a dotted mask, the inet_aton forms, or a
/// host name), as the rules line gives it: dotted, or the digits as written (rvs reads a
/// number as a prefix length, see `rules`).
fn v4_netmask(v: &str, names: &dyn Names) -> Option<String> {
    if v.parse::<std::net::Ipv4Addr>().is_ok()
        || (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(v.to_string());
    }
    names.host_v4(v).map(|a| a.to_string())
}

/// `10.0.0.1:80` or `[fd00::1]:80`.
fn addr_port(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// A rule command as a numeric rules line, checked by the rules parser; its canonical text.
fn rule_line(cmd: Cmd, e: &Entry) -> Result<String, Failure> {
    let mut w: Vec<String> = vec![match cmd {
        Cmd::Add => "-A",
        Cmd::Edit => "-E",
        Cmd::Del => "-D",
        Cmd::Flush => "-C",
        Cmd::AddDest => "-a",
        Cmd::EditDest => "-e",
        Cmd::DelDest => "-d",
        _ => "--set",
    }
    .into()];
    if cmd == Cmd::Timeout {
        w.extend(e.timeouts.iter().map(i64::to_string));
    }
    if e.has(Opt::Service) {
        let id = e
            .service_id()
            .ok_or_else(|| Failure::usage("illegal virtual server address[:port] specified"))?;
        w.push(id.to_string());
    }
    if matches!(cmd, Cmd::Add | Cmd::Edit) {
        let sched = e.sched.as_deref().unwrap_or(DEF_SCHED);
        if SchedKind::parse(sched).is_none() {
            // The kernel's ENOENT.
            return Err(Failure::refused(
                "Scheduler or persistence engine not found",
            ));
        }
        w.push(format!("-s {sched}"));
        if let Some(p) = e.persistent {
            w.push(format!("-p {p}"));
        }
        if let Some(m) = &e.netmask {
            w.push(format!("-M {m}"));
        }
        if e.ops {
            w.push("-o".into());
        }
        if let Some(pe) = &e.pe {
            w.push(format!("--pe {pe}"));
        }
        if let Some(b) = &e.sched_flags {
            w.push(format!("-b {b}"));
        }
    }
    if matches!(cmd, Cmd::AddDest | Cmd::EditDest | Cmd::DelDest) {
        if let Some(a) = e.dest_addr {
            w.push(format!("-r {}", addr_port(a, e.dest_port)));
        }
    }
    if matches!(cmd, Cmd::AddDest | Cmd::EditDest) {
        if e.l_threshold.unwrap_or(0) > e.u_threshold.unwrap_or(0) {
            // The kernel's ERANGE.
            return Err(Failure::refused("Numerical result out of range"));
        }
        let unicast = match e.dest_addr {
            Some(IpAddr::V4(a)) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
            Some(IpAddr::V6(a)) => !(a.is_unspecified() || a.is_multicast()),
            None => true,
        };
        if cmd == Cmd::AddDest && !unicast {
            // The kernel's EINVAL.
            return Err(Failure::refused(
                "Invalid operation.  Possibly wrong module version, address not unicast, ...",
            ));
        }
        w.push(
            match e.fwd {
                Fwd::Route => "-g",
                Fwd::Masq => "-m",
                Fwd::Tunnel => "-i",
            }
            .into(),
        );
        if let Some(x) = e.weight {
            w.push(format!("-w {x}"));
        }
        if let Some(x) = e.u_threshold {
            w.push(format!("-x {x}"));
        }
        if let Some(x) = e.l_threshold {
            w.push(format!("-y {x}"));
        }
        if e.has(Opt::TunType) {
            w.push(format!("--tun-type {}", e.tun_type.name()));
        }
        if let Some(p) = e.tun_port {
            w.push(format!("--tun-port {p}"));
        }
        for (o, flag) in [
            (Opt::TunNoCsum, "--tun-nocsum"),
            (Opt::TunCsum, "--tun-csum"),
            (Opt::TunRemCsum, "--tun-remcsum"),
        ] {
            if e.has(o) {
                w.push(flag.into());
            }
        }
    }
    let line = w.join(" ");
    match rules::parse_line(&line) {
        Ok(Some(c)) => Ok(c.to_string()),
        Ok(None) => Err(Failure::usage(format!("{line}: not a rule"))),
        Err(err) => Err(Failure::usage(err.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::names::NumericNames;
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn ok(s: &str) -> Action {
        parse("ipvsadm", &argv(s), &NumericNames).unwrap_or_else(|f| panic!("{s}: {f:?}"))
    }

    fn err(s: &str) -> (u8, String) {
        match parse("ipvsadm", &argv(s), &NumericNames) {
            Ok(a) => panic!("{s}: parsed as {a:?}"),
            Err(f) => (f.code, f.message),
        }
    }

    fn line(s: &str) -> String {
        match ok(s) {
            Action::Apply(l) => l,
            a => panic!("{s}: {a:?}"),
        }
    }

    #[test]
    fn the_tables_are_ipvsadms_shape() {
        assert_eq!(OPT_NAMES.len(), N_OPT);
        assert_eq!(Opt::TunRemCsum as usize, N_OPT - 1);
        // Every optional option of -L is one ipvsadm lists for it.
        let row = Cmd::List.row();
        assert_eq!(row[Opt::Connection as usize], b'1');
        assert_eq!(row[Opt::Service as usize], b'1');
        assert_eq!(row[Opt::TunInfo as usize], b' ');
        assert_eq!(row[Opt::Ops as usize], b'x');
    }

    #[test]
    fn rule_commands_become_canonical_lines() {
        assert_eq!(line("-A -t 10.0.0.1:80 -s rr"), "-A -t 10.0.0.1:80 -s rr");
        assert_eq!(line("-A -t 10.0.0.1:80"), "-A -t 10.0.0.1:80 -s wlc");
        assert_eq!(
            line("--add-service --tcp-service=10.0.0.1:80 -p -M 255.255.255.0"),
            "-A -t 10.0.0.1:80 -s wlc -p 300 -M 255.255.255.0"
        );
        assert_eq!(
            line("-E -u [fd00::1]:53 -s sh -b sh-port,sh-fallback -p 60 -o"),
            "-E -u [fd00::1]:53 -s sh -p 60 -o -b sh-fallback,sh-port"
        );
        assert_eq!(
            line("-D --sctp-service 10.0.0.1:9"),
            "-D --sctp-service 10.0.0.1:9"
        );
        assert_eq!(line("-C"), "-C");
        assert_eq!(
            line("-a -t 10.0.0.1:80 -r 10.0.1.1 -m -w 3"),
            "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 3"
        );
        // Direct routing keeps the service's port whatever -r says.
        assert_eq!(
            line("-a -t 10.0.0.1:80 -r 10.0.1.1:8080"),
            "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1"
        );
        assert_eq!(
            line("-e -f 7 -6 -r [fd00::9]:8080 -i --tun-type gue --tun-port 6080 --tun-csum"),
            "-e -f 7 -6 -r [fd00::9]:8080 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum"
        );
        assert_eq!(
            line("-d -t 10.0.0.1:80 -r 10.0.1.1"),
            "-d -t 10.0.0.1:80 -r 10.0.1.1:80"
        );
        assert_eq!(line("--set 900 120 300"), "--set 900 120 300");
        assert_eq!(
            line("-a -t 10.0.0.1:80 -r 10.0.1.1 -x 100 -y 50"),
            "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1 -x 100 -y 50"
        );
        // Clustered short options, attached values.
        assert_eq!(line("-At10.0.0.1:443 -srr"), "-A -t 10.0.0.1:443 -s rr");
    }

    #[test]
    fn every_command_maps_to_its_request() {
        let t80 = ServiceId::Addr {
            proto: Proto::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let cases: Vec<(&str, Option<Request>)> = vec![
            (
                "-A -t 10.0.0.1:80 -s rr",
                Some(Request::Apply {
                    lines: vec!["-A -t 10.0.0.1:80 -s rr".into()],
                }),
            ),
            ("-Z", Some(Request::Zero { service: None })),
            (
                "-Z -t 10.0.0.1:80",
                Some(Request::Zero {
                    service: Some("-t 10.0.0.1:80".into()),
                }),
            ),
            ("-S", Some(Request::Save)),
            ("-S -n", Some(Request::Save)),
            ("-Ln", Some(Request::List { service: None })),
            (
                "-L -n -t 10.0.0.1:80",
                Some(Request::List {
                    service: Some("-t 10.0.0.1:80".into()),
                }),
            ),
            (
                "-l -f 7 -6",
                Some(Request::List {
                    service: Some("-f 7 -6".into()),
                }),
            ),
            ("-lnc", Some(Request::Conns { cursor: 0 })),
            ("-L --timeout", Some(Request::Timeouts)),
            ("-R", None),
            ("-h", None),
            ("--version", None),
            ("-L --daemon", None),
            ("--start-daemon master", None),
        ];
        for (a, want) in cases {
            assert_eq!(ok(a).request(), want, "{a}");
        }
        assert_eq!(ok("-Z -t 10.0.0.1:80"), Action::Zero(Some(t80)));
        assert_eq!(ok("-R"), Action::Restore);
        assert_eq!(ok("--start-daemon backup"), Action::SyncDaemon);
        assert_eq!(ok("-L --daemon"), Action::Daemons);
        assert_eq!(ok("-h"), Action::Help);
        assert_eq!(ok("-v"), Action::Version);
    }

    #[test]
    fn no_arguments_is_list() {
        assert_eq!(
            parse("ipvsadm", &[], &NumericNames).unwrap(),
            Action::List {
                service: None,
                format: Format::default()
            }
        );
    }

    #[test]
    fn list_options_set_the_format() {
        let Action::List { format, .. } = ok("-L -n --stats --exact --nosort") else {
            panic!()
        };
        assert!(format.numeric && format.stats && format.exact && format.nosort);
        assert!(!format.rate);
        let Action::List { format, .. } = ok("-Ln --rate --sort") else {
            panic!()
        };
        assert!(format.rate && !format.nosort);
        let Action::List { format, .. } = ok("-L --thresholds --persistent-conn --tun-info") else {
            panic!()
        };
        assert!(format.thresholds && format.persistent_conn && format.tun_info);
        let Action::Conns(format) = ok("-L -c --persistent-conn") else {
            panic!()
        };
        assert!(format.persistent_conn && !format.numeric);
    }

    #[test]
    fn bad_lines_get_ipvsadms_messages_and_codes() {
        let tryhelp = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n";
        let cases: &[(&str, u8, &str)] = &[
            ("-n -L", 255, tryhelp),
            ("foo", 255, tryhelp),
            ("--bogus", 255, tryhelp),
            ("-L --bogus", 255, "--bogus: unknown option\n"),
            ("-Lq", 255, "-Lq: unknown option\n"),
            ("-A -t", 255, "-t: missing argument\n"),
            ("-L --stats=1", 255, "--stats=1: option does not take an argument\n"),
            ("-L -L", 2, "invalid option `-L'\n"),
            ("-L --start-daemon master", 2, "invalid option `master'\n"),
            (
                "-A -t 10.0.0.1:80 -t 10.0.0.2:80",
                2,
                "multiple 'service-address' options specified\n",
            ),
            ("-A -t 80", 2, "illegal virtual server address[:port] specified\n"),
            ("-A -t 10.0.0.1:http", 2, "illegal virtual server address[:port] specified\n"),
            ("-A -t 10.0.0.1:70000", 2, "illegal virtual server address[:port] specified\n"),
            ("-A -f 0", 2, "invalid fwmark value `0' specified\n"),
            ("-A -f 4294967296", 2, "invalid fwmark value `4294967296' specified\n"),
            ("-A -t 10.0.0.1:80 -p 0", 2, "invalid timeout value `0' specified\n"),
            ("-A -t 10.0.0.1:80 -p 2678401", 2, "invalid timeout value `2678401' specified\n"),
            (
                "-A -t 10.0.0.1:80 -p -M bogus!",
                2,
                "illegal virtual server persistent mask specified\n",
            ),
            ("-A -u [fd00::1]:53 -p -M 129", 2, "illegal ipv6 netmask specified\n"),
            ("-a -t 10.0.0.1:80 -r 10.0.1.1 -w 65536", 2, "illegal weight specified\n"),
            ("-a -t 10.0.0.1:80 -r 10.0.1.1 -w -1", 2, "illegal weight specified\n"),
            ("-a -t 10.0.0.1:80 -r 10.0.1.1 -x x", 2, "illegal u_threshold specified\n"),
            ("-a -t 10.0.0.1:80 -r 10.0.1.1 -y -2", 2, "illegal l_threshold specified\n"),
            ("-a -t 10.0.0.1:80 -r 10.0.1.:80:", 2, "illegal real server address[:port] specified\n"),
            ("-a -t 10.0.0.1:80", 2, "You need to supply the 'real-server' option for the 'add-server' command\n"),
            ("-A -s rr", 2, "You need to supply the 'service-address' option for the 'add-service' command\n"),
            ("-D -t 10.0.0.1:80 -s rr", 2, "Illegal 'scheduler' option with the 'delete-service' command\n"),
            ("-C -n", 2, "Illegal 'numeric' option with the 'flush' command\n"),
            ("-R -n", 2, "Illegal 'numeric' option with the 'restore' command\n"),
            (
                "-L -c -t 10.0.0.1:80",
                2,
                "The option 'service-address' conflicts with the 'connection' option in the 'list' command\n",
            ),
            ("-L -c --stats", 2, "options conflicts in the list command\n"),
            ("-L --timeout --persistent-conn", 2, "options conflicts in the list command\n"),
            ("-A -t 10.0.0.1", 2, "Zero port specified for non-persistent service\n"),
            ("-A -t 10.0.0.1:80 -o", 2, "One-Packet Scheduling is only for UDP virtual services\n"),
            ("-A -t 10.0.0.1:80 -b flag-4", 2, "invalid scheduler flag `flag-4'\n"),
            ("-A -t 10.0.0.1:80 -b sh-port", 2, "incompatible scheduler flag `sh-port'\n"),
            ("-A -t 10.0.0.1:80 -6", 2, "-6 used before -f\n\n"),
            ("-a -t 10.0.0.1:80 -r [fd00::1]:80 -m", 2, "Different address family is allowed only for tunneling servers\n"),
            ("-a -t 10.0.0.1:80 -r 10.0.1.1 --tun-type gre", 2, "Tunnel options conflict with forward method\n"),
            ("-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type gue", 2, "You need to supply the 'tun-port' option for the 'gue' tunnel type\n"),
            ("-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-port 6080", 2, "Illegal 'tun-port' option with the 'ipip' tunnel type\n"),
            (
                "-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type gue --tun-port 1 --tun-nocsum --tun-csum",
                2,
                "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type\n",
            ),
            ("-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type vxlan", 2, "illegal tunnel type specified\n"),
            ("--set 1 2", 2, "--set option requires 3 timeout values\n"),
            ("--set 1 2 x", 2, "invalid timeout value `x' specified\n"),
            ("--set 1 2 3 4", 2, "unexpected argument 4\n"),
            ("-C extra", 2, "unexpected argument extra\n"),
            ("--start-daemon primary", 2, "illegal start-daemon parameter specified\n"),
            ("--stop-daemon primary", 2, "illegal start_daemon specified\n"),
            ("--start-daemon master --syncid 256", 2, "illegal syncid specified\n"),
            ("--start-daemon master --mcast-group 10.0.0.1", 2, "invalid IPv4 mcast-group `10.0.0.1'\n"),
            // What ipvsadm leaves to the kernel: its words, exit 255.
            ("-A -t 10.0.0.1:80 -s fastest", 255, "Scheduler or persistence engine not found\n"),
            ("-a -t 10.0.0.1:80 -r 10.0.1.1 -x 10 -y 20", 255, "Numerical result out of range\n"),
            ("-a -t 10.0.0.1:80 -r 10.0.1.1 -y 1", 255, "Numerical result out of range\n"),
            (
                "-a -t 10.0.0.1:80 -r 224.0.0.1",
                255,
                "Invalid operation.  Possibly wrong module version, address not unicast, ...\n",
            ),
        ];
        for &(a, code, msg) in cases {
            assert_eq!(err(a), (code, msg.to_string()), "{a}");
        }
    }

    #[test]
    fn what_rvs_refuses_gets_the_rules_message() {
        let (code, msg) = err("-A -t 10.0.0.1:80 -p --pe sip");
        assert_eq!(code, 2);
        assert!(msg.contains("--pe sip"), "{msg}");
        let (code, msg) = err("-a -t 10.0.0.1:80 -r [fd00::1]:80 -i");
        assert_eq!(code, 2);
        assert!(msg.contains("family"), "{msg}");
    }

    #[test]
    fn parse_service_follows_ipvsadm() {
        let n = NumericNames;
        let p = |s: &str| parse_service(s, 6, &n);
        let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
        assert_eq!(p("10.0.0.1:80"), Some((v4("10.0.0.1"), Some(80))));
        assert_eq!(p("10.0.0.1"), Some((v4("10.0.0.1"), None)));
        assert_eq!(p("[fd00::1]:443"), Some((v4("fd00::1"), Some(443))));
        // A bare IPv6 address has no port, even when it ends in ":80".
        assert_eq!(p("fd00::1:80"), Some((v4("fd00::1:80"), None)));
        assert_eq!(p("[fd00::1]"), None);
        assert_eq!(p("[fd00::1]:"), None);
        assert_eq!(p("80"), None);
        assert_eq!(p(""), None);
        // strtol's leading space and sign.
        assert_eq!(p("10.0.0.1:+80"), Some((v4("10.0.0.1"), Some(80))));
        assert_eq!(strtol(" -12"), Some(-12));
        assert_eq!(strtol("12x"), None);
        assert_eq!(atoi("64abc"), 64);
        assert_eq!(atoi("x"), 0);
    }

    #[test]
    fn dest_port_is_the_service_port_known_so_far() {
        // ipvsadm copies the service's port when -r has none, as far as -t was read.
        assert_eq!(
            line("-a -r 10.0.1.1 -t 10.0.0.1:80 -m"),
            "-a -t 10.0.0.1:80 -r 10.0.1.1:0 -m -w 1"
        );
    }

    #[test]
    fn restore_lines_must_be_rules() {
        let w = argv("-a -t 10.0.0.1:80 -r 10.0.1.1");
        assert_eq!(
            parse_restore_line("ipvsadm", &w, &NumericNames).unwrap(),
            "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1"
        );
        assert_eq!(
            parse_restore_line("ipvsadm", &argv("-Z -t 10.0.0.1:80"), &NumericNames).unwrap(),
            "-Z -t 10.0.0.1:80"
        );
        let f = parse_restore_line("ipvsadm", &argv("-L -n"), &NumericNames).unwrap_err();
        assert_eq!(f.code, 2);
        let f = parse_restore_line("ipvsadm", &argv("-R"), &NumericNames).unwrap_err();
        assert_eq!(f.code, 2);
    }
}

//! The ipvsadm line parser: ipvsadm's option table, a getopt over the words of a line, and
//! the command each line gives, with ipvsadm's defaults filled in and its own checks done.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_dataplane::addr::v4_mask_prefix;
use rvs_dataplane::config::{Fwd, TunConfig, TunCsum, TunKind};
use rvs_dataplane::proto::{Proto, MAX_TIMEOUT_S};
use rvs_dataplane::sched::SchedKind;

use super::model::{
    Command, Dest, Persist, SchedFlagBits, ServiceId, ServiceSpec, SetTimeouts,
    DEFAULT_PERSISTENCE_S, MAX_PERSISTENCE_S, MAX_THRESHOLD, MAX_WEIGHT,
};
use super::validate::{check_ops, check_unicast, family_name, normalize_dest_port};
use super::RuleError;

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
    /// How many options there are (the last one's index + 1).
    const COUNT: usize = Opt::TunRemCsum as usize + 1;

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

/// The spec of a short option: a table by ASCII code, built once from [`SPECS`] (a rules
/// file has 100k lines of about six options each; a scan of the table for each cost more
/// than the rest of the line).
fn short_spec(c: char) -> Option<&'static Spec> {
    const NONE: u8 = u8::MAX;
    const BY_CHAR: [u8; 128] = {
        let mut t = [NONE; 128];
        let mut i = 0;
        while i < SPECS.len() {
            if let Some(c) = SPECS[i].short {
                // The first spec of a letter wins, as in the scan it replaces.
                if t[c as usize] == NONE {
                    t[c as usize] = i as u8;
                }
            }
            i += 1;
        }
        t
    };
    let i = *BY_CHAR.get(c as usize)?;
    SPECS.get(usize::from(i))
}

/// One option as written on the line.
struct Given<'a> {
    opt: Opt,
    /// `-w` or `--weight`, as written (a slice of the word, but for bundled flags).
    name: Cow<'a, str>,
    value: Option<&'a str>,
}

impl Given<'_> {
    /// `-w 70000` / `--weight 70000` / `-o`: how errors name the field.
    fn field(&self) -> String {
        match self.value {
            Some(v) => format!("{} {v}", self.name),
            None => self.name.to_string(),
        }
    }
    fn err(&self, why: impl fmt::Display) -> String {
        format!("{}: {why}", self.field())
    }
    fn value(&self) -> &str {
        self.value.unwrap_or("")
    }
}

/// The words of a line: up to a `#` word, without a leading `ipvsadm`. Words are split at
/// ASCII whitespace, as the shell that ipvsadm's arguments come from does (any other
/// character stays in its word, and an option with it is refused).
fn words(line: &str) -> Vec<&str> {
    // Sized once: a rule has about ten words, and a rules file 100k lines.
    let mut w = Vec::with_capacity(WORDS_HINT);
    w.extend(
        line.split_ascii_whitespace()
            .take_while(|t| !t.starts_with('#')),
    );
    if w.first() == Some(&"ipvsadm") {
        w.remove(0);
    }
    w
}

/// The words (and options) of a typical rule line, to size their vectors once.
const WORDS_HINT: usize = 16;

/// getopt over the words: long options with `=` or a following word, clustered short
/// options, `-p`'s optional value (the next word unless it starts with `-`).
fn scan<'a>(words: &[&'a str]) -> Result<(Vec<Given<'a>>, Vec<&'a str>), String> {
    let mut given = Vec::with_capacity(WORDS_HINT);
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
                name: Cow::Borrowed(&w[..2 + name.len()]),
                value,
            });
        } else if w.len() > 1 && w.starts_with('-') {
            let body = &w[1..];
            for (j, c) in body.char_indices() {
                let sp = short_spec(c).ok_or_else(|| format!("-{c}: unknown option"))?;
                let rest = &body[j + c.len_utf8()..];
                // `-w` as written; the later flags of a bundle (`-gw`) are named apart.
                let name = if j == 0 {
                    Cow::Borrowed(&w[..1 + c.len_utf8()])
                } else {
                    Cow::Owned(format!("-{c}"))
                };
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
    if let Some((a, port)) = v4_addr_port(s) {
        return Ok((IpAddr::V4(a), port));
    }
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
    } else if let Some(a) = s
        .bytes()
        .filter(|&b| b == b':')
        .nth(1)
        .and_then(|_| s.parse::<Ipv6Addr>().ok())
    {
        // (Two colons or more: only then can it be a bare IPv6 address; an IPv4 address
        // with its port has one, and most rules are those.)
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

/// The common case of [`parse_addr_port`] in a few instructions: `a.b.c.d` or `a.b.c.d:port`,
/// octets without leading zeros and a port of at most five digits. Anything else (and every
/// error) takes the general path, which accepts the same texts.
fn v4_addr_port(s: &str) -> Option<(Ipv4Addr, Option<u16>)> {
    let b = s.as_bytes();
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, o) in octets.iter_mut().enumerate() {
        let start = i;
        let mut v: u32 = 0;
        while let Some(&d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            v = v * 10 + u32::from(d - b'0');
            i += 1;
            if i - start > 3 {
                return None;
            }
        }
        let len = i - start;
        if len == 0 || v > 255 || (len > 1 && b[start] == b'0') {
            return None;
        }
        *o = v as u8;
        if k < 3 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    let addr = Ipv4Addr::from(octets);
    match b.get(i) {
        None => Some((addr, None)),
        Some(b':') => {
            let p = &b[i + 1..];
            if p.is_empty() || p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let v = p.iter().fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
            u16::try_from(v).ok().map(|port| (addr, Some(port)))
        }
        Some(_) => None,
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
    if let Some(c) = saved_form::line(line) {
        return Ok(Some(c));
    }
    general_line(line)
}

/// [`parse_line`] through the getopt, whatever the line's form.
fn general_line(line: &str) -> Result<Option<Command>, RuleError> {
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
        if let Some(c) = parse_line(line).map_err(|e| e.at(i + 1).syntax())? {
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
    // Each option is given once at most (checked above): index them by option.
    let mut by_opt: [Option<&Given>; Opt::COUNT] = [None; Opt::COUNT];
    for g in &given {
        by_opt[g.opt as usize] = Some(g);
    }
    let get = |o: Opt| by_opt[o as usize];
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
                let svc_g = svc.map(|g| g.field()).unwrap_or_default();
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

mod saved_form;
#[cfg(test)]
mod tests;

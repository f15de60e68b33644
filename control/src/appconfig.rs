//! The appliance's TOML file (`rvsd replay --config`, `rvsd run --config`): ports and their
//! addresses, static neighbors, routes, IPVS's sysctls, engine sizing, firewall-mark match
//! rules, tunnel settings. Virtual services are not here: they come from ipvsadm rules
//! ([`crate::rules`]). Every key is documented in `docs/config.md`.
//!
//! [`parse`] refuses anything it does not understand (an unknown key, a wrong type, a bad
//! MAC, address or prefix, a prefix with host bits set, a duplicate port name, a neighbor or
//! route naming an unknown port, a gateway off its port's connected prefixes, addresses
//! overlapping between ports, a value out of range), naming the line, column and key:
//! `appliance.toml line 7, column 7, key port[0].mac: "02:00:00:00:0:1" is not a MAC
//! address (want six hex pairs)`.
//!
//! The types are plain std types (`IpAddr`, `[u8; 6]` MACs, `(IpAddr, u8)` prefixes) so that
//! the packet path can build its own tables from them.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use rvs_dataplane::addr::{Family, V4, V6};
use rvs_dataplane::config::{FwmarkRule, Sysctl};
use rvs_dataplane::pipeline::rss;
use rvs_dataplane::proto::{Proto, Timeouts, MAX_TIMEOUT_S};

/// An Ethernet address.
pub type Mac = [u8; 6];
/// An address and a prefix length: `10.0.0.1/24` (a port address) or `10.0.0.0/24`.
pub type Prefix = (IpAddr, u8);

/// The whole appliance configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppConfig {
    pub ports: Vec<PortConfig>,
    pub neighbors: Vec<NeighborConfig>,
    pub routes: Vec<RouteConfig>,
    pub defense: DefenseConfig,
    pub ipvs: IpvsConfig,
    pub engine: EngineConfig,
    pub fwmarks: Vec<FwmarkConfig>,
    pub tunnel: TunnelConfig,
    pub control: ControlConfig,
}

/// `[[port]]`: one NIC port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    pub name: String,
    pub mac: Mac,
    /// The port's own addresses with their connected prefix lengths.
    pub addrs: Vec<Prefix>,
    /// DPDK device (`net_af_packet0`, `0000:3b:00.0`); `None`: the EAL's probe order.
    pub device: Option<String>,
    pub mtu: u16,
    /// 802.1Q VLAN id the port sends and accepts; `None`: untagged.
    pub vlan: Option<u16>,
}

impl PortConfig {
    /// The port's connected prefixes (its addresses masked to their prefix lengths).
    pub fn connected(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.addrs.iter().map(|&(a, l)| (mask(a, l), l))
    }

    /// `ip` is on one of the port's connected prefixes.
    pub fn on_link(&self, ip: IpAddr) -> bool {
        self.connected().any(|p| contains(p, ip))
    }
}

/// `[[neighbor]]`: a static neighbor (no ARP or ND needed for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborConfig {
    pub ip: IpAddr,
    pub mac: Mac,
    pub port: String,
}

/// `[[route]]`: a static route, IPv4 or IPv6.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    pub prefix: Prefix,
    /// Gateway; `None`: the prefix is on-link on `port`.
    pub via: Option<IpAddr>,
    pub port: String,
}

/// `[defense]`: IPVS's defense sysctls (`/proc/sys/net/ipv4/vs/...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefenseConfig {
    pub drop_entry: u8,
    pub drop_packet: u8,
    pub secure_tcp: u8,
    pub am_droprate: u32,
    /// Free conn entries per shard below which a shard is out of memory; 0 = capacity/16.
    pub low_watermark: u32,
}

impl Default for DefenseConfig {
    fn default() -> Self {
        let s = Sysctl::default();
        DefenseConfig {
            drop_entry: s.drop_entry,
            drop_packet: s.drop_packet,
            secure_tcp: s.secure_tcp,
            am_droprate: s.am_droprate,
            low_watermark: s.low_watermark,
        }
    }
}

/// `[ipvs]`: IPVS's other sysctls that the engine follows, and its three settable timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvsConfig {
    pub conn_reuse_mode: u8,
    pub expire_nodest_conn: bool,
    pub expire_quiescent_template: bool,
    pub sloppy_tcp: bool,
    pub sloppy_sctp: bool,
    /// Seconds (TCP ESTABLISHED), as `ipvsadm --set`'s first value.
    pub timeout_tcp: u32,
    /// Seconds (TCP FIN_WAIT).
    pub timeout_tcpfin: u32,
    /// Seconds (UDP).
    pub timeout_udp: u32,
}

impl Default for IpvsConfig {
    fn default() -> Self {
        let s = Sysctl::default();
        let (tcp, fin, udp) = Timeouts::default().tcp_tcpfin_udp();
        IpvsConfig {
            conn_reuse_mode: s.conn_reuse_mode,
            expire_nodest_conn: s.expire_nodest_conn,
            expire_quiescent_template: s.expire_quiescent_template,
            sloppy_tcp: s.sloppy_tcp,
            sloppy_sctp: s.sloppy_sctp,
            timeout_tcp: tcp,
            timeout_tcpfin: fin,
            timeout_udp: udp,
        }
    }
}

/// `[engine]`: worker count and table sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Worker threads (shards), one RX/TX queue pair each per port.
    pub workers: u32,
    /// IPv4 conn entries per worker, templates included.
    pub conns_per_worker: u32,
    /// IPv6 conn entries per worker.
    pub conns_v6_per_worker: u32,
    /// Dest slots per worker (dests of every service, plus removed ones still in use).
    pub max_dests: u32,
    /// Extra DPDK EAL arguments, passed as they are.
    pub eal_args: Vec<String>,
    /// The RSS key of the ports and of steering.
    pub rss_key: RssKey,
}

/// `[engine] rss_key`: which RSS key `rvsd run` gives its ports (and steering).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RssKey {
    /// A key drawn at every start (the default): a flood cannot pick sources that all land
    /// on one worker.
    #[default]
    Random,
    /// `rvs_dataplane::pipeline::rss::KEY`, the same at every start (reproducible runs).
    Fixed,
    /// These 40 bytes.
    Bytes([u8; 40]),
}

impl RssKey {
    /// The key this setting names, `random()` giving the one `Random` stands for. Given bytes
    /// were checked when the config was read; the fixed key should that ever change.
    pub fn key(self, random: impl FnOnce() -> rss::Key) -> rss::Key {
        match self {
            RssKey::Random => random(),
            RssKey::Fixed => rss::Key::fixed(),
            RssKey::Bytes(b) => rss::Key::new(b).unwrap_or_else(rss::Key::fixed),
        }
    }
}

pub const DEFAULT_CONNS_PER_WORKER: u32 = 1 << 20;
pub const DEFAULT_MAX_DESTS: u32 = 4096;
pub const DEFAULT_MTU: u16 = 1500;
pub const DEFAULT_SOCKET: &str = "/run/rvsd.sock";

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 1,
            conns_per_worker: DEFAULT_CONNS_PER_WORKER,
            conns_v6_per_worker: DEFAULT_CONNS_PER_WORKER / 8,
            max_dests: DEFAULT_MAX_DESTS,
            eal_args: Vec::new(),
            rss_key: RssKey::Random,
        }
    }
}

/// `"random"`, `"fixed"`, or 40 bytes in hex (80 digits, `:` between bytes allowed) that
/// spread addresses over every RETA entry (`rss::Key::new`).
fn parse_rss_key(s: &str) -> Result<RssKey, String> {
    match s {
        "random" => return Ok(RssKey::Random),
        "fixed" => return Ok(RssKey::Fixed),
        _ => {}
    }
    let hex: String = s.chars().filter(|&ch| ch != ':').collect();
    let bad =
        || format!("{s:?}: want \"random\", \"fixed\" or 40 bytes in hex (80 digits, ':' allowed)");
    if hex.len() != 80 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut bytes = [0u8; 40];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    if rvs_dataplane::pipeline::rss::Key::new(bytes).is_none() {
        return Err(format!(
            "{s:?}: this key leaves some RETA entries unreachable from one byte of an address \
             (some workers would get no clients of a subnet); use \"random\""
        ));
    }
    Ok(RssKey::Bytes(bytes))
}

/// `[[fwmark]]`: packets of `proto` (any when `None`) to `prefix` on a port in
/// `port_lo..=port_hi` get firewall mark `mark` (for `-f MARK` services).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FwmarkConfig {
    pub mark: u32,
    pub proto: Option<Proto>,
    pub prefix: Prefix,
    pub port_lo: u16,
    pub port_hi: u16,
}

/// `[tunnel]`: settings of `-i` (tunnelling) dests.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TunnelConfig {
    /// Path MTU for the encapsulation check; `None`: the egress port's MTU.
    pub mtu: Option<u16>,
    /// Outer source address of IPv4 tunnels; `None`: the egress port's first IPv4 address.
    pub source_v4: Option<Ipv4Addr>,
    /// Outer source address of IPv6 tunnels; `None`: the egress port's first IPv6 address.
    pub source_v6: Option<Ipv6Addr>,
}

/// `[control]`: how `rvsadm` reaches a running `rvsd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlConfig {
    /// Unix socket path.
    pub socket: String,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: DEFAULT_SOCKET.to_string(),
        }
    }
}

/// A refused configuration: where (file, 1-based line and column; 0 when not known), which
/// key (`port[0].mac`), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFileError {
    pub file: Option<String>,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl ConfigFileError {
    /// The same error, naming `file`.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.line > 0 {
            parts.push(format!("line {}", self.line));
        }
        if self.column > 0 {
            parts.push(format!("column {}", self.column));
        }
        if !self.key.is_empty() {
            parts.push(format!("key {}", self.key));
        }
        if let Some(file) = &self.file {
            f.write_str(file)?;
            if !parts.is_empty() {
                f.write_str(" ")?;
            }
        }
        f.write_str(&parts.join(", "))?;
        if self.file.is_some() || !parts.is_empty() {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigFileError {}

// ---------------------------------------------------------------------------------------
// The file as serde reads it

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    port: Vec<S<RawPort>>,
    #[serde(default)]
    neighbor: Vec<S<RawNeighbor>>,
    #[serde(default)]
    route: Vec<S<RawRoute>>,
    #[serde(default)]
    defense: RawDefense,
    #[serde(default)]
    ipvs: RawIpvs,
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    fwmark: Vec<S<RawFwmark>>,
    #[serde(default)]
    tunnel: RawTunnel,
    #[serde(default)]
    control: RawControl,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: S<String>,
    mac: S<String>,
    #[serde(default)]
    addrs: Vec<S<String>>,
    device: Option<S<String>>,
    mtu: Option<S<i64>>,
    vlan: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbor {
    ip: S<String>,
    mac: S<String>,
    port: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: S<String>,
    via: Option<S<String>>,
    port: S<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefense {
    drop_entry: Option<S<i64>>,
    drop_packet: Option<S<i64>>,
    secure_tcp: Option<S<i64>>,
    am_droprate: Option<S<i64>>,
    low_watermark: Option<S<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIpvs {
    conn_reuse_mode: Option<S<i64>>,
    expire_nodest_conn: Option<bool>,
    expire_quiescent_template: Option<bool>,
    sloppy_tcp: Option<bool>,
    sloppy_sctp: Option<bool>,
    timeout_tcp: Option<S<i64>>,
    timeout_tcpfin: Option<S<i64>>,
    timeout_udp: Option<S<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    workers: Option<S<i64>>,
    conns_per_worker: Option<S<i64>>,
    conns_v6_per_worker: Option<S<i64>>,
    max_dests: Option<S<i64>>,
    #[serde(default)]
    eal_args: Vec<String>,
    rss_key: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFwmark {
    mark: S<i64>,
    proto: Option<S<String>>,
    prefix: S<String>,
    ports: Option<S<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTunnel {
    mtu: Option<S<i64>>,
    source_v4: Option<S<String>>,
    source_v6: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawControl {
    socket: Option<S<String>>,
}

// ---------------------------------------------------------------------------------------
// Locating errors

/// 1-based line and column (in characters) of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut off = offset.min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The key path (`port[1].mac`) of the line holding byte `offset`, read from the table
/// headers above it and the key before the `=` on it (or on the nearest line above that has
/// one, for values spread over lines). For serde's errors, which carry a span but no path.
fn key_path_at(text: &str, offset: usize) -> String {
    let (line_no, _) = line_col(text, offset);
    let lines: Vec<&str> = text.lines().collect();
    let mut section = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut key = String::new();
    for (i, line) in lines.iter().enumerate().take(line_no) {
        let t = line.trim();
        if let Some(h) = t.strip_prefix("[[") {
            let name = h.split("]]").next().unwrap_or("").trim().to_string();
            let n = counts.entry(name.clone()).or_insert(0);
            section = format!("{name}[{n}]");
            *n += 1;
            key.clear();
        } else if let Some(h) = t.strip_prefix('[') {
            section = h.split(']').next().unwrap_or("").trim().to_string();
            key.clear();
        } else if !t.starts_with('#') {
            if let Some((k, _)) = t.split_once('=') {
                let k = k.trim();
                let bare = k
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
                if !k.is_empty() && bare {
                    key = k.to_string();
                }
            } else if i + 1 == line_no && t.is_empty() {
                key.clear();
            }
        }
    }
    match (section.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => section,
        (false, false) => format!("{section}.{key}"),
    }
}

fn serde_error(text: &str, e: &toml::de::Error) -> ConfigFileError {
    // serde's words for our types, in the operator's.
    let msg = e
        .message()
        .trim()
        .replace("expected i64", "expected an integer")
        .replace(" as i128", "")
        .replace("expected a sequence", "expected an array");
    match e.span() {
        Some(span) => {
            let (line, column) = line_col(text, span.start);
            ConfigFileError {
                file: None,
                line,
                column,
                key: key_path_at(text, span.start),
                message: msg,
            }
        }
        None => ConfigFileError {
            file: None,
            line: 0,
            column: 0,
            key: String::new(),
            message: msg,
        },
    }
}

/// Builds errors that point into the text.
struct Ctx<'a> {
    text: &'a str,
}

type R<T> = Result<T, ConfigFileError>;

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigFileError {
        let (line, column) = line_col(self.text, span.start);
        ConfigFileError {
            file: None,
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// An integer in `lo..=hi`, or `default` when absent.
    fn int(&self, v: &Option<S<i64>>, key: &str, lo: i64, hi: i64, default: i64) -> R<i64> {
        match v {
            None => Ok(default),
            Some(s) => {
                let n = *s.get_ref();
                if (lo..=hi).contains(&n) {
                    Ok(n)
                } else {
                    Err(self.err(
                        s.span(),
                        key,
                        format!("{n} is out of range (want {lo}..{hi})"),
                    ))
                }
            }
        }
    }

    fn mac(&self, s: &S<String>, key: &str) -> R<Mac> {
        let v = s.get_ref();
        let m = parse_mac(v).ok_or_else(|| {
            self.err(
                s.span(),
                key,
                format!("{v:?} is not a MAC address (want six hex pairs, 02:00:00:00:00:01)"),
            )
        })?;
        if m[0] & 1 != 0 {
            return Err(self.err(
                s.span(),
                key,
                format!("{v:?} is a multicast MAC (want a unicast one)"),
            ));
        }
        if m == [0; 6] {
            return Err(self.err(s.span(), key, format!("{v:?} is the zero MAC")));
        }
        Ok(m)
    }

    fn ip(&self, s: &S<String>, key: &str) -> R<IpAddr> {
        let v = s.get_ref();
        v.trim().parse().map_err(|_| {
            self.err(
                s.span(),
                key,
                format!("{v:?} is not an IP address (want 10.0.0.1 or fd00::1)"),
            )
        })
    }

    /// `addr/len`; `host_bits`: whether bits past the prefix may be set (a port's address)
    /// or not (a route or match prefix); `bare`: whether a plain address means a host prefix.
    fn prefix(&self, s: &S<String>, key: &str, host_bits: bool, bare: bool) -> R<Prefix> {
        let v = s.get_ref();
        let want = if host_bits {
            "want address/length, 10.0.0.1/24 or fd00::1/64"
        } else {
            "want prefix/length, 10.0.0.0/24 or fd00::/64"
        };
        let bad = || self.err(s.span(), key, format!("{v:?} is not a prefix ({want})"));
        let (a, l) = match v.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None if bare => (v.trim(), None),
            None => {
                return Err(self.err(
                    s.span(),
                    key,
                    format!("{v:?} has no prefix length ({want})"),
                ))
            }
        };
        let a: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if a.is_ipv4() { 32 } else { 128 };
        let l = match l {
            None => max,
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
                l.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(|| {
                    self.err(
                        s.span(),
                        key,
                        format!("{v:?}: prefix length {l} is longer than {max}"),
                    )
                })?
            }
            Some(_) => return Err(bad()),
        };
        if !host_bits && mask(a, l) != a {
            return Err(self.err(
                s.span(),
                key,
                format!("{v:?} has host bits set (did you mean {}/{l}?)", mask(a, l)),
            ));
        }
        Ok((a, l))
    }
}

/// A MAC address written `02:00:00:00:00:01`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

fn fmt_mac(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `a` masked to its first `len` bits.
fn mask(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(
            u32::from(v)
                & u32::MAX
                    .checked_shl(32 - u32::from(len.min(32)))
                    .unwrap_or(0),
        )),
        IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(
            u128::from(v)
                & u128::MAX
                    .checked_shl(128 - u32::from(len.min(128)))
                    .unwrap_or(0),
        )),
    }
}

fn contains(p: Prefix, ip: IpAddr) -> bool {
    p.0.is_ipv4() == ip.is_ipv4() && mask(ip, p.1) == mask(p.0, p.1)
}

fn overlap(a: Prefix, b: Prefix) -> bool {
    a.0.is_ipv4() == b.0.is_ipv4() && {
        let l = a.1.min(b.1);
        mask(a.0, l) == mask(b.0, l)
    }
}

fn is_link_local_v6(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
}

/// A port's own address must be a unicast host on its prefix.
fn check_port_addr(p: Prefix) -> Result<(), String> {
    let (a, l) = p;
    let bad = match a {
        IpAddr::V4(v) => {
            v.is_unspecified() || v.is_multicast() || v.is_broadcast() || v.is_loopback()
        }
        IpAddr::V6(v) => v.is_unspecified() || v.is_multicast() || v.is_loopback(),
    };
    if bad {
        return Err(format!("{a} is not a unicast address"));
    }
    if let IpAddr::V4(v) = a {
        if l <= 30 {
            let host = u32::from(v) & !u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0);
            let all = !u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0);
            if host == 0 {
                return Err(format!("{a}/{l} is the network address of its prefix"));
            }
            if host == all {
                return Err(format!("{a}/{l} is the broadcast address of its prefix"));
            }
        }
    }
    Ok(())
}

fn fmt_prefix(p: Prefix) -> String {
    format!("{}/{}", p.0, p.1)
}

// ---------------------------------------------------------------------------------------
// Parsing and checking

/// Parse and check an appliance TOML text. Errors carry no file name
/// ([`ConfigFileError::in_file`] adds one; [`load`] does).
pub fn parse(text: &str) -> Result<AppConfig, ConfigFileError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| serde_error(text, &e))?;
    let c = Ctx { text };

    // Ports.
    if raw.port.is_empty() {
        return Err(ConfigFileError {
            file: None,
            line: 0,
            column: 0,
            key: "port".into(),
            message: "no [[port]]: the appliance needs at least one port".into(),
        });
    }
    let mut ports: Vec<PortConfig> = Vec::new();
    // Every address with its port index, key and span, for the overlap checks.
    let mut seen_addrs: Vec<(Prefix, usize, Range<usize>)> = Vec::new();
    for (i, sp) in raw.port.iter().enumerate() {
        let p = sp.get_ref();
        let k = |f: &str| format!("port[{i}].{f}");
        let name = p.name.get_ref().trim().to_string();
        let name_ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
        if !name_ok {
            return Err(c.err(
                p.name.span(),
                &k("name"),
                format!(
                    "{:?} is not a port name (want 1..32 letters, digits, '_', '-' or '.')",
                    p.name.get_ref()
                ),
            ));
        }
        if let Some(j) = ports.iter().position(|q| q.name == name) {
            return Err(c.err(
                p.name.span(),
                &k("name"),
                format!("duplicate port name {name:?} (port[{j}] has it)"),
            ));
        }
        let mac = c.mac(&p.mac, &k("mac"))?;
        if let Some(j) = ports.iter().position(|q| q.mac == mac) {
            return Err(c.err(
                p.mac.span(),
                &k("mac"),
                format!("port[{j}] has the same MAC {}", fmt_mac(&mac)),
            ));
        }
        let mut addrs = Vec::new();
        for (n, a) in p.addrs.iter().enumerate() {
            let key = format!("port[{i}].addrs[{n}]");
            let pre = c.prefix(a, &key, true, false)?;
            check_port_addr(pre).map_err(|e| c.err(a.span(), &key, e))?;
            for (q, j, _) in &seen_addrs {
                let other = if *j == i {
                    "this port".to_string()
                } else {
                    format!("port {}", ports.get(*j).map_or("?", |x| x.name.as_str()))
                };
                if q.0 == pre.0 {
                    return Err(c.err(
                        a.span(),
                        &key,
                        format!("address {} is already on {other}", pre.0),
                    ));
                }
                let (mine, theirs) = ((mask(pre.0, pre.1), pre.1), (mask(q.0, q.1), q.1));
                if *j != i && overlap(mine, theirs) {
                    return Err(c.err(
                        a.span(),
                        &key,
                        format!(
                            "{} overlaps {} of {other}: ports' connected prefixes must not overlap",
                            fmt_prefix(mine),
                            fmt_prefix(theirs)
                        ),
                    ));
                }
            }
            seen_addrs.push((pre, i, a.span()));
            addrs.push(pre);
        }
        let device = match &p.device {
            None => None,
            Some(d) => {
                let v = d.get_ref().trim().to_string();
                if v.is_empty() {
                    return Err(c.err(d.span(), &k("device"), "empty device name"));
                }
                if let Some(j) = ports.iter().position(|q| q.device.as_deref() == Some(&v)) {
                    return Err(c.err(
                        d.span(),
                        &k("device"),
                        format!("device {v:?} is also port[{j}]'s"),
                    ));
                }
                Some(v)
            }
        };
        let has_v6 = addrs.iter().any(|a| a.0.is_ipv6());
        let mtu = c.int(&p.mtu, &k("mtu"), 576, 9216, i64::from(DEFAULT_MTU))? as u16;
        if has_v6 && mtu < 1280 {
            let span = p.mtu.as_ref().map_or(sp.span(), |m| m.span());
            return Err(c.err(
                span,
                &k("mtu"),
                format!("{mtu} is below IPv6's minimum MTU 1280 (the port has IPv6 addresses)"),
            ));
        }
        let vlan = match &p.vlan {
            None => None,
            Some(_) => Some(c.int(&p.vlan, &k("vlan"), 1, 4094, 0)? as u16),
        };
        ports.push(PortConfig {
            name,
            mac,
            addrs,
            device,
            mtu,
            vlan,
        });
    }
    let all_addrs: Vec<IpAddr> = seen_addrs.iter().map(|(p, _, _)| p.0).collect();
    let port_of = |s: &S<String>, key: &str| -> R<usize> {
        let v = s.get_ref().trim();
        ports.iter().position(|p| p.name == v).ok_or_else(|| {
            let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
            c.err(
                s.span(),
                key,
                format!("no port named {v:?} (ports: {})", names.join(", ")),
            )
        })
    };
    let connected_list = |p: &PortConfig| -> String {
        let v: Vec<String> = p.connected().map(fmt_prefix).collect();
        if v.is_empty() {
            "it has no addresses".into()
        } else {
            v.join(", ")
        }
    };

    // Neighbors.
    let mut neighbors: Vec<NeighborConfig> = Vec::new();
    for (i, sn) in raw.neighbor.iter().enumerate() {
        let n = sn.get_ref();
        let k = |f: &str| format!("neighbor[{i}].{f}");
        let ip = c.ip(&n.ip, &k("ip"))?;
        let mac = c.mac(&n.mac, &k("mac"))?;
        let pi = port_of(&n.port, &k("port"))?;
        let port = &ports[pi];
        if all_addrs.contains(&ip) {
            return Err(c.err(
                n.ip.span(),
                &k("ip"),
                format!("{ip} is the appliance's own address"),
            ));
        }
        if !port.on_link(ip) && !is_link_local_v6(ip) {
            return Err(c.err(
                n.ip.span(),
                &k("ip"),
                format!(
                    "{ip} is not on a connected prefix of port {} ({})",
                    port.name,
                    connected_list(port)
                ),
            ));
        }
        if let Some(j) = neighbors
            .iter()
            .position(|x| x.ip == ip && x.port == port.name)
        {
            return Err(c.err(
                n.ip.span(),
                &k("ip"),
                format!("{ip} is already neighbor[{j}]"),
            ));
        }
        neighbors.push(NeighborConfig {
            ip,
            mac,
            port: port.name.clone(),
        });
    }

    // Routes.
    let mut routes: Vec<RouteConfig> = Vec::new();
    for (i, sr) in raw.route.iter().enumerate() {
        let r = sr.get_ref();
        let k = |f: &str| format!("route[{i}].{f}");
        let prefix = c.prefix(&r.prefix, &k("prefix"), false, false)?;
        let pi = port_of(&r.port, &k("port"))?;
        let port = &ports[pi];
        let via = match &r.via {
            None => None,
            Some(v) => {
                let ip = c.ip(v, &k("via"))?;
                if ip.is_ipv4() != prefix.0.is_ipv4() {
                    return Err(c.err(
                        v.span(),
                        &k("via"),
                        format!(
                            "gateway {ip} is not of the family of {}",
                            fmt_prefix(prefix)
                        ),
                    ));
                }
                if all_addrs.contains(&ip) {
                    return Err(c.err(
                        v.span(),
                        &k("via"),
                        format!("gateway {ip} is the appliance's own address"),
                    ));
                }
                if !port.on_link(ip) && !is_link_local_v6(ip) {
                    return Err(c.err(
                        v.span(),
                        &k("via"),
                        format!(
                            "gateway {ip} is not on a connected prefix of port {} ({})",
                            port.name,
                            connected_list(port)
                        ),
                    ));
                }
                Some(ip)
            }
        };
        if let Some(j) = routes.iter().position(|x| x.prefix == prefix) {
            return Err(c.err(
                r.prefix.span(),
                &k("prefix"),
                format!("{} is already route[{j}]", fmt_prefix(prefix)),
            ));
        }
        routes.push(RouteConfig {
            prefix,
            via,
            port: port.name.clone(),
        });
    }

    // Engine (before defense: low_watermark is checked against the capacities).
    let e = &raw.engine;
    let workers = c.int(&e.workers, "engine.workers", 1, 256, 1)? as u32;
    let conns = c.int(
        &e.conns_per_worker,
        "engine.conns_per_worker",
        1,
        i64::from(rvs_dataplane::conn::MAX_CAPACITY),
        i64::from(DEFAULT_CONNS_PER_WORKER),
    )? as u32;
    let conns_v6 = c.int(
        &e.conns_v6_per_worker,
        "engine.conns_v6_per_worker",
        1,
        i64::from(rvs_dataplane::conn::MAX_CAPACITY),
        i64::from((conns / 8).max(1)),
    )? as u32;
    let max_dests = c.int(
        &e.max_dests,
        "engine.max_dests",
        1,
        1 << 20,
        i64::from(DEFAULT_MAX_DESTS),
    )? as u32;
    let engine = EngineConfig {
        workers,
        conns_per_worker: conns,
        conns_v6_per_worker: conns_v6,
        max_dests,
        eal_args: e.eal_args.clone(),
        rss_key: match &e.rss_key {
            None => RssKey::Random,
            Some(s) => {
                parse_rss_key(s.get_ref()).map_err(|why| c.err(s.span(), "engine.rss_key", why))?
            }
        },
    };

    // Defense.
    let d = &raw.defense;
    let dd = DefenseConfig::default();
    let low_watermark = c.int(
        &d.low_watermark,
        "defense.low_watermark",
        0,
        i64::from(u32::MAX),
        i64::from(dd.low_watermark),
    )? as u32;
    if let Some(s) = &d.low_watermark {
        let cap = conns.min(conns_v6);
        if low_watermark >= cap {
            return Err(c.err(
                s.span(),
                "defense.low_watermark",
                format!(
                    "{low_watermark} free entries is not below a shard's capacity \
                     ({conns} IPv4, {conns_v6} IPv6 entries): the shard would always be out \
                     of memory"
                ),
            ));
        }
    }
    let defense = DefenseConfig {
        drop_entry: c.int(
            &d.drop_entry,
            "defense.drop_entry",
            0,
            3,
            i64::from(dd.drop_entry),
        )? as u8,
        drop_packet: c.int(
            &d.drop_packet,
            "defense.drop_packet",
            0,
            3,
            i64::from(dd.drop_packet),
        )? as u8,
        secure_tcp: c.int(
            &d.secure_tcp,
            "defense.secure_tcp",
            0,
            3,
            i64::from(dd.secure_tcp),
        )? as u8,
        am_droprate: c.int(
            &d.am_droprate,
            "defense.am_droprate",
            1,
            i64::from(u32::MAX),
            i64::from(dd.am_droprate),
        )? as u32,
        low_watermark,
    };

    // IPVS.
    let v = &raw.ipvs;
    let di = IpvsConfig::default();
    let t = |s: &Option<S<i64>>, key: &str, def: u32| -> R<u32> {
        Ok(c.int(s, key, 1, i64::from(MAX_TIMEOUT_S), i64::from(def))? as u32)
    };
    let ipvs = IpvsConfig {
        conn_reuse_mode: c.int(
            &v.conn_reuse_mode,
            "ipvs.conn_reuse_mode",
            0,
            3,
            i64::from(di.conn_reuse_mode),
        )? as u8,
        expire_nodest_conn: v.expire_nodest_conn.unwrap_or(di.expire_nodest_conn),
        expire_quiescent_template: v
            .expire_quiescent_template
            .unwrap_or(di.expire_quiescent_template),
        sloppy_tcp: v.sloppy_tcp.unwrap_or(di.sloppy_tcp),
        sloppy_sctp: v.sloppy_sctp.unwrap_or(di.sloppy_sctp),
        timeout_tcp: t(&v.timeout_tcp, "ipvs.timeout_tcp", di.timeout_tcp)?,
        timeout_tcpfin: t(&v.timeout_tcpfin, "ipvs.timeout_tcpfin", di.timeout_tcpfin)?,
        timeout_udp: t(&v.timeout_udp, "ipvs.timeout_udp", di.timeout_udp)?,
    };

    // Firewall-mark match rules.
    let mut fwmarks = Vec::new();
    for (i, sf) in raw.fwmark.iter().enumerate() {
        let f = sf.get_ref();
        let k = |x: &str| format!("fwmark[{i}].{x}");
        let mark = c.int(&Some(f.mark.clone()), &k("mark"), 1, i64::from(u32::MAX), 0)? as u32;
        let proto = match &f.proto {
            None => None,
            Some(p) => Some(match p.get_ref().trim().to_ascii_lowercase().as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                "sctp" => Proto::Sctp,
                _ => {
                    return Err(c.err(
                        p.span(),
                        &k("proto"),
                        format!(
                            "{:?} is not a protocol (want tcp, udp or sctp)",
                            p.get_ref()
                        ),
                    ))
                }
            }),
        };
        let prefix = c.prefix(&f.prefix, &k("prefix"), false, true)?;
        let (port_lo, port_hi) = match &f.ports {
            None => (0, u16::MAX),
            Some(sv) => parse_ports(sv.get_ref()).map_err(|e| c.err(sv.span(), &k("ports"), e))?,
        };
        fwmarks.push(FwmarkConfig {
            mark,
            proto,
            prefix,
            port_lo,
            port_hi,
        });
    }

    // Tunnel.
    let tr = &raw.tunnel;
    let mtu = match &tr.mtu {
        None => None,
        Some(_) => Some(c.int(&tr.mtu, "tunnel.mtu", 576, 9216, 0)? as u16),
    };
    let source = |s: &Option<S<String>>, key: &str, v6: bool| -> R<Option<IpAddr>> {
        let Some(s) = s else { return Ok(None) };
        let ip = c.ip(s, key)?;
        if ip.is_ipv6() != v6 {
            return Err(c.err(
                s.span(),
                key,
                format!(
                    "{ip} is not an {} address",
                    if v6 { "IPv6" } else { "IPv4" }
                ),
            ));
        }
        if !all_addrs.contains(&ip) {
            return Err(c.err(
                s.span(),
                key,
                format!("{ip} is not one of the ports' addresses"),
            ));
        }
        Ok(Some(ip))
    };
    let tunnel = TunnelConfig {
        mtu,
        source_v4: match source(&tr.source_v4, "tunnel.source_v4", false)? {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        },
        source_v6: match source(&tr.source_v6, "tunnel.source_v6", true)? {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        },
    };

    // Control.
    let control = match &raw.control.socket {
        None => ControlConfig::default(),
        Some(s) => {
            let v = s.get_ref().trim();
            if v.is_empty() {
                return Err(c.err(s.span(), "control.socket", "empty socket path"));
            }
            ControlConfig {
                socket: v.to_string(),
            }
        }
    };

    Ok(AppConfig {
        ports,
        neighbors,
        routes,
        defense,
        ipvs,
        engine,
        fwmarks,
        tunnel,
        control,
    })
}

/// `80`, `"80"`, `"8000-8099"`.
fn parse_ports(v: &toml::Value) -> Result<(u16, u16), String> {
    let want = "want a port (443) or a range (\"8000-8099\")";
    let one = |s: &str| -> Result<u16, String> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is not a port ({want})"));
        }
        s.parse::<u16>()
            .map_err(|_| format!("{s} is not a port (want 0..65535)"))
    };
    match v {
        toml::Value::Integer(n) => u16::try_from(*n)
            .map(|p| (p, p))
            .map_err(|_| format!("{n} is not a port (want 0..65535)")),
        toml::Value::String(s) => {
            let (lo, hi) = match s.split_once('-') {
                Some((a, b)) => (one(a)?, one(b)?),
                None => {
                    let p = one(s)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(format!("{s:?}: the range runs backwards"));
            }
            Ok((lo, hi))
        }
        other => Err(format!("{other} is not a port ({want})")),
    }
}

/// Read and parse the file at `path`; errors name the file.
pub fn load(path: &Path) -> Result<AppConfig, ConfigFileError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigFileError {
        file: Some(name.clone()),
        line: 0,
        column: 0,
        key: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&text).map_err(|e| e.in_file(name))
}

/// The embedded lab configuration, as TOML (`docs/config.md` shows the same text).
pub const DEFAULT_LAB_TOML: &str = r#"# rvs lab appliance: one port, two real servers on its IPv4 subnet.
[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24", "fd00::1/64"]

[[neighbor]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"
port = "p0"

[[neighbor]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"
port = "p0"
"#;

/// The lab configuration the appliance runs when given no file: port `p0` (MAC
/// 02:00:00:00:00:01, 10.0.0.1/24 and fd00::1/64, the EAL's first device), static neighbors
/// 10.0.0.11 (02:00:00:00:00:11) and 10.0.0.12 (02:00:00:00:00:12) for two real servers,
/// everything else at its default. Equal to `parse(DEFAULT_LAB_TOML)`.
pub fn default_lab() -> AppConfig {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let neighbor = |last: u8, mac_last: u8| NeighborConfig {
        ip: v4(10, 0, 0, last),
        mac: [0x02, 0, 0, 0, 0, mac_last],
        port: "p0".into(),
    };
    AppConfig {
        ports: vec![PortConfig {
            name: "p0".into(),
            mac: [0x02, 0, 0, 0, 0, 0x01],
            addrs: vec![
                (v4(10, 0, 0, 1), 24),
                (IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)), 64),
            ],
            device: None,
            mtu: DEFAULT_MTU,
            vlan: None,
        }],
        neighbors: vec![neighbor(11, 0x11), neighbor(12, 0x12)],
        routes: Vec::new(),
        defense: DefenseConfig::default(),
        ipvs: IpvsConfig::default(),
        engine: EngineConfig::default(),
        fwmarks: Vec::new(),
        tunnel: TunnelConfig::default(),
        control: ControlConfig::default(),
    }
}

impl AppConfig {
    /// The engine's sysctls from `[defense]` and `[ipvs]`.
    pub fn sysctl(&self) -> Sysctl {
        let mut timeouts = Timeouts::default();
        timeouts.set_tcp_tcpfin_udp(
            self.ipvs.timeout_tcp,
            self.ipvs.timeout_tcpfin,
            self.ipvs.timeout_udp,
        );
        Sysctl {
            drop_entry: self.defense.drop_entry,
            drop_packet: self.defense.drop_packet,
            secure_tcp: self.defense.secure_tcp,
            am_droprate: self.defense.am_droprate,
            low_watermark: self.defense.low_watermark,
            conn_reuse_mode: self.ipvs.conn_reuse_mode,
            expire_nodest_conn: self.ipvs.expire_nodest_conn,
            expire_quiescent_template: self.ipvs.expire_quiescent_template,
            sloppy_tcp: self.ipvs.sloppy_tcp,
            sloppy_sctp: self.ipvs.sloppy_sctp,
            timeouts,
        }
    }

    fn fwmark_rules<A: Family>(&self) -> Vec<FwmarkRule<A>> {
        self.fwmarks
            .iter()
            .filter_map(|f| {
                Some(FwmarkRule {
                    mark: f.mark,
                    proto: f.proto,
                    addr: A::from_ip(f.prefix.0)?,
                    prefix: f.prefix.1,
                    port_lo: f.port_lo,
                    port_hi: f.port_hi,
                })
            })
            .collect()
    }

    /// The IPv4 `[[fwmark]]` rules, in file order (first match wins).
    pub fn fwmark_rules_v4(&self) -> Vec<FwmarkRule<V4>> {
        self.fwmark_rules()
    }

    /// The IPv6 `[[fwmark]]` rules, in file order.
    pub fn fwmark_rules_v6(&self) -> Vec<FwmarkRule<V6>> {
        self.fwmark_rules()
    }

    /// The port named `name`.
    pub fn port(&self, name: &str) -> Option<&PortConfig> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// The MTU the tunnel encapsulation check uses for packets leaving `port`.
    pub fn tunnel_mtu(&self, port: &PortConfig) -> u16 {
        self.tunnel.mtu.unwrap_or(port.mtu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MINIMAL: &str = r#"[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24", "172.16.0.1/24", "fd00::1/64"]
# device = "net_af_packet0" or "0000:3b:00.0" (optional; DPDK device; default: EAL probe order)

[[neighbor]]            # static neighbor
ip = "172.16.0.2"
mac = "02:00:00:00:00:22"
port = "p0"

[[route]]
prefix = "0.0.0.0/0"
via = "10.0.0.254"      # optional: a connected route when absent
port = "p0"

[defense]
drop_entry = 3          # as IPVS's sysctls
"#;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn refuse(text: &str) -> ConfigFileError {
        match parse(text) {
            Err(e) => e,
            Ok(c) => panic!("accepted: {c:?}\n{text}"),
        }
    }

    /// The minimal file with `from` replaced by `to`.
    fn edit(from: &str, to: &str) -> String {
        assert!(MINIMAL.contains(from), "{from}");
        MINIMAL.replacen(from, to, 1)
    }

    #[test]
    fn minimal_file_parses() {
        let c = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.ports.len(), 1);
        let p = &c.ports[0];
        assert_eq!(p.name, "p0");
        assert_eq!(p.mac, [2, 0, 0, 0, 0, 1]);
        assert_eq!(
            p.addrs,
            vec![
                (ip("10.0.0.1"), 24),
                (ip("172.16.0.1"), 24),
                (ip("fd00::1"), 64)
            ]
        );
        assert_eq!((p.device.clone(), p.mtu, p.vlan), (None, 1500, None));
        assert_eq!(
            c.neighbors,
            vec![NeighborConfig {
                ip: ip("172.16.0.2"),
                mac: [2, 0, 0, 0, 0, 0x22],
                port: "p0".into()
            }]
        );
        assert_eq!(
            c.routes,
            vec![RouteConfig {
                prefix: (ip("0.0.0.0"), 0),
                via: Some(ip("10.0.0.254")),
                port: "p0".into()
            }]
        );
        assert_eq!(c.defense.drop_entry, 3);
        assert_eq!(c.sysctl().drop_entry, 3);
    }

    #[test]
    fn defaults() {
        let c = parse("[[port]]\nname = \"p0\"\nmac = \"02:00:00:00:00:01\"\n").unwrap();
        assert!(c.ports[0].addrs.is_empty());
        assert_eq!(
            c.defense,
            DefenseConfig {
                drop_entry: 0,
                drop_packet: 0,
                secure_tcp: 0,
                am_droprate: 10,
                low_watermark: 0
            }
        );
        assert_eq!(
            c.ipvs,
            IpvsConfig {
                conn_reuse_mode: 1,
                expire_nodest_conn: false,
                expire_quiescent_template: false,
                sloppy_tcp: false,
                sloppy_sctp: false,
                timeout_tcp: 900,
                timeout_tcpfin: 120,
                timeout_udp: 300,
            }
        );
        assert_eq!(
            c.engine,
            EngineConfig {
                workers: 1,
                conns_per_worker: 1 << 20,
                conns_v6_per_worker: 1 << 17,
                max_dests: 4096,
                eal_args: vec![],
                rss_key: RssKey::Random,
            }
        );
        assert_eq!(c.tunnel, TunnelConfig::default());
        assert_eq!(c.tunnel_mtu(&c.ports[0]), 1500);
        assert_eq!(c.control.socket, "/run/rvsd.sock");
        assert!(c.fwmarks.is_empty() && c.routes.is_empty() && c.neighbors.is_empty());
        assert_eq!(c.sysctl(), Sysctl::default());
        // conns_v6_per_worker follows conns_per_worker when absent.
        let c = parse("[[port]]\nname = \"p0\"\nmac = \"02:00:00:00:00:01\"\n[engine]\nconns_per_worker = 800\n").unwrap();
        assert_eq!(c.engine.conns_v6_per_worker, 100);
    }

    #[test]
    fn every_key_is_read() {
        let text = r#"
[[port]]
name = "wan"
mac = "02:aa:bb:cc:dd:01"
addrs = ["192.0.2.10/24", "2001:db8::10/64"]
device = "0000:3b:00.0"
mtu = 9000
vlan = 100

[[port]]
name = "lan"
mac = "02:aa:bb:cc:dd:02"
addrs = ["10.1.0.1/16"]
device = "net_af_packet0"

[[neighbor]]
ip = "10.1.0.20"
mac = "02:00:00:00:01:20"
port = "lan"

[[neighbor]]
ip = "fe80::1"
mac = "02:00:00:00:01:21"
port = "wan"

[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.1"
port = "wan"

[[route]]
prefix = "::/0"
via = "fe80::1"
port = "wan"

[[route]]
prefix = "10.2.0.0/16"
port = "lan"

[defense]
drop_entry = 1
drop_packet = 2
secure_tcp = 3
am_droprate = 20
low_watermark = 1000

[ipvs]
conn_reuse_mode = 0
expire_nodest_conn = true
expire_quiescent_template = true
sloppy_tcp = true
sloppy_sctp = true
timeout_tcp = 3600
timeout_tcpfin = 30
timeout_udp = 60

[engine]
workers = 4
conns_per_worker = 262144
conns_v6_per_worker = 65536
max_dests = 512
eal_args = ["--no-huge", "-m", "512"]
rss_key = "fixed"

[[fwmark]]
mark = 1
proto = "tcp"
prefix = "192.0.2.0/28"
ports = "8000-8099"

[[fwmark]]
mark = 2
prefix = "2001:db8::100"
ports = 443

[[fwmark]]
mark = 3
proto = "UDP"
prefix = "192.0.2.20"

[tunnel]
mtu = 1480
source_v4 = "10.1.0.1"
source_v6 = "2001:db8::10"

[control]
socket = "/tmp/rvsd.sock"
"#;
        let c = parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.ports[0].device.as_deref(), Some("0000:3b:00.0"));
        assert_eq!((c.ports[0].mtu, c.ports[0].vlan), (9000, Some(100)));
        assert_eq!(c.ports[1].mtu, 1500);
        assert_eq!(
            c.routes[1],
            RouteConfig {
                prefix: (ip("::"), 0),
                via: Some(ip("fe80::1")),
                port: "wan".into()
            }
        );
        assert_eq!(c.routes[2].via, None);
        assert_eq!(
            c.defense,
            DefenseConfig {
                drop_entry: 1,
                drop_packet: 2,
                secure_tcp: 3,
                am_droprate: 20,
                low_watermark: 1000
            }
        );
        let s = c.sysctl();
        assert_eq!(s.timeouts.tcp_tcpfin_udp(), (3600, 30, 60));
        assert!(
            s.expire_nodest_conn && s.expire_quiescent_template && s.sloppy_tcp && s.sloppy_sctp
        );
        assert_eq!(
            (
                s.conn_reuse_mode,
                s.drop_packet,
                s.secure_tcp,
                s.am_droprate,
                s.low_watermark
            ),
            (0, 2, 3, 20, 1000)
        );
        assert_eq!(
            c.engine,
            EngineConfig {
                workers: 4,
                conns_per_worker: 262_144,
                conns_v6_per_worker: 65_536,
                max_dests: 512,
                eal_args: vec!["--no-huge".into(), "-m".into(), "512".into()],
                rss_key: RssKey::Fixed,
            }
        );
        let r4 = c.fwmark_rules_v4();
        assert_eq!(r4.len(), 2);
        assert_eq!(
            (
                r4[0].mark,
                r4[0].proto,
                r4[0].prefix,
                r4[0].port_lo,
                r4[0].port_hi
            ),
            (1, Some(Proto::Tcp), 28, 8000, 8099)
        );
        assert_eq!(r4[0].addr.to_ip(), ip("192.0.2.0"));
        assert_eq!(
            (
                r4[1].mark,
                r4[1].proto,
                r4[1].prefix,
                r4[1].port_lo,
                r4[1].port_hi
            ),
            (3, Some(Proto::Udp), 32, 0, 65535)
        );
        let r6 = c.fwmark_rules_v6();
        assert_eq!(r6.len(), 1);
        assert_eq!(
            (
                r6[0].mark,
                r6[0].proto,
                r6[0].prefix,
                r6[0].port_lo,
                r6[0].port_hi
            ),
            (2, None, 128, 443, 443)
        );
        assert_eq!(
            c.tunnel,
            TunnelConfig {
                mtu: Some(1480),
                source_v4: Some("10.1.0.1".parse().unwrap()),
                source_v6: Some("2001:db8::10".parse().unwrap())
            }
        );
        assert_eq!(c.tunnel_mtu(&c.ports[0]), 1480);
        assert_eq!(c.control.socket, "/tmp/rvsd.sock");
        assert_eq!(c.port("lan").map(|p| p.addrs.len()), Some(1));
    }

    #[test]
    fn fwmark_rules_feed_the_engine_config() {
        use crate::rules::RuleSet;
        let c = parse(&format!(
            "{MINIMAL}\n[[fwmark]]\nmark = 7\nprefix = \"10.0.0.0/24\"\nports = \"80-81\"\n"
        ))
        .unwrap();
        let rs = RuleSet::from_text("-A -f 7\n-a -f 7 -r 10.0.0.11\n").unwrap();
        let (c4, _) = rs.to_configs(c.sysctl()).unwrap();
        let c4 = c4.with_fwmark_rules(c.fwmark_rules_v4()).unwrap();
        let vip = V4::from_ip(ip("10.0.0.9")).unwrap();
        assert_eq!(c4.find_service(0, Proto::Tcp, vip, 81), Some(0));
        assert_eq!(c4.find_service(0, Proto::Tcp, vip, 82), None);
        assert_eq!(c4.sysctl.drop_entry, 3);
    }

    #[test]
    fn default_lab_is_its_documented_toml() {
        assert_eq!(
            parse(DEFAULT_LAB_TOML).unwrap_or_else(|e| panic!("{e}")),
            default_lab()
        );
        let doc = include_str!("../../docs/config.md");
        assert!(
            doc.contains(DEFAULT_LAB_TOML),
            "docs/config.md must show DEFAULT_LAB_TOML"
        );
        let lab = default_lab();
        assert_eq!(lab.neighbors[1].mac, [2, 0, 0, 0, 0, 0x12]);
    }

    #[test]
    fn unknown_key_is_refused_with_line_and_key() {
        let e = refuse(&edit(
            "mac = \"02:00:00:00:00:01\"",
            "mac = \"02:00:00:00:00:01\"\nspeed = 10",
        ));
        assert_eq!((e.line, e.column, e.key.as_str()), (4, 1, "port[0].speed"));
        assert!(e.message.contains("unknown field `speed`"), "{e}");
        let e = refuse(&edit(
            "drop_entry = 3",
            "drop_entry = 3\ndrop_everything = 1",
        ));
        assert_eq!((e.line, e.key.as_str()), (19, "defense.drop_everything"));
        let e = refuse(&format!("{MINIMAL}\n[dpdk]\ncores = 2\n"));
        assert_eq!((e.line, e.key.as_str()), (20, "dpdk"));
        assert!(e.message.contains("unknown field `dpdk`"), "{e}");
    }

    #[test]
    fn wrong_type_is_refused_with_line_and_key() {
        let e = refuse(&edit("drop_entry = 3", "drop_entry = \"3\""));
        assert_eq!(
            (e.line, e.column, e.key.as_str()),
            (18, 14, "defense.drop_entry")
        );
        assert!(e.message.contains("invalid type"), "{e}");
        let e = refuse(&edit("addrs = [", "mtu = \"big\"\naddrs = ["));
        assert!(e.message.contains("expected an integer"), "{e}");
        assert_eq!((e.line, e.key.as_str()), (4, "port[0].mtu"));
        let e = refuse(
            "[[port]]\nname = \"p0\"\nmac = \"02:00:00:00:00:01\"\n[ipvs]\nsloppy_tcp = 1\n",
        );
        assert_eq!((e.line, e.key.as_str()), (5, "ipvs.sloppy_tcp"));
    }

    #[test]
    fn bad_mac_is_refused() {
        let e = refuse(&edit("02:00:00:00:00:01", "02:00:00:00:0:1"));
        assert_eq!(
            e.in_file("appliance.toml").to_string(),
            "appliance.toml line 3, column 7, key port[0].mac: \"02:00:00:00:0:1\" is not a MAC address (want six hex pairs, 02:00:00:00:00:01)"
        );
        assert!(refuse(&edit("02:00:00:00:00:01", "01:00:5e:00:00:01"))
            .message
            .contains("multicast MAC"));
        assert!(refuse(&edit("02:00:00:00:00:01", "00:00:00:00:00:00"))
            .message
            .contains("zero MAC"));
        assert!(refuse(&edit("02:00:00:00:00:01", "02:00:00:00:00:01:02"))
            .message
            .contains("not a MAC"));
        let e = refuse(&edit("02:00:00:00:00:22", "02:00:00:00:00:2g"));
        assert_eq!((e.line, e.key.as_str()), (9, "neighbor[0].mac"));
    }

    #[test]
    fn bad_addresses_and_prefixes_are_refused() {
        let e = refuse(&edit("\"172.16.0.1/24\"", "\"172.16.0.1\""));
        assert_eq!(e.key, "port[0].addrs[1]");
        assert!(e.message.contains("has no prefix length"), "{e}");
        let e = refuse(&edit("\"fd00::1/64\"", "\"fd00::1/129\""));
        assert_eq!(e.key, "port[0].addrs[2]");
        assert!(
            e.message.contains("prefix length 129 is longer than 128"),
            "{e}"
        );
        assert!(refuse(&edit("\"172.16.0.1/24\"", "\"172.16.0.300/24\""))
            .message
            .contains("is not a prefix"));
        assert!(refuse(&edit("\"172.16.0.1/24\"", "\"172.16.0.0/24\""))
            .message
            .contains("network address"));
        assert!(refuse(&edit("\"172.16.0.1/24\"", "\"172.16.0.255/24\""))
            .message
            .contains("broadcast address"));
        assert!(refuse(&edit("\"172.16.0.1/24\"", "\"224.0.0.1/24\""))
            .message
            .contains("not a unicast"));
        let e = refuse(&edit("ip = \"172.16.0.2\"", "ip = \"172.16.0\""));
        assert_eq!((e.line, e.key.as_str()), (8, "neighbor[0].ip"));
        assert!(e.message.contains("is not an IP address"), "{e}");
        let e = refuse(&edit("via = \"10.0.0.254\"", "via = \"10.0.0.254/24\""));
        assert_eq!(e.key, "route[0].via");
    }

    #[test]
    fn prefix_with_host_bits_is_refused_saying_so() {
        let e = refuse(&edit(
            "prefix = \"0.0.0.0/0\"",
            "prefix = \"192.168.1.7/24\"",
        ));
        assert_eq!((e.line, e.key.as_str()), (13, "route[0].prefix"));
        assert!(
            e.message
                .contains("has host bits set (did you mean 192.168.1.0/24?)"),
            "{e}"
        );
        let e = refuse(&format!(
            "{MINIMAL}[[fwmark]]\nmark = 1\nprefix = \"fd00::1/64\"\n"
        ));
        assert_eq!(e.key, "fwmark[0].prefix");
        assert!(e.message.contains("did you mean fd00::/64?"), "{e}");
    }

    #[test]
    fn duplicate_port_name_is_refused() {
        let e = refuse(&format!(
            "{MINIMAL}\n[[port]]\nname = \"p0\"\nmac = \"02:00:00:00:00:02\"\n"
        ));
        assert_eq!((e.line, e.key.as_str()), (21, "port[1].name"));
        assert!(
            e.message
                .contains("duplicate port name \"p0\" (port[0] has it)"),
            "{e}"
        );
        let e = refuse(&format!(
            "{MINIMAL}\n[[port]]\nname = \"p1\"\nmac = \"02:00:00:00:00:01\"\n"
        ));
        assert!(e.message.contains("same MAC"), "{e}");
        let e = refuse(&format!(
            "{MINIMAL}\n[[port]]\nname = \"p 1\"\nmac = \"02:00:00:00:00:02\"\n"
        ));
        assert!(e.message.contains("not a port name"), "{e}");
    }

    #[test]
    fn unknown_port_is_refused() {
        let e = refuse(&edit("port = \"p0\"", "port = \"p9\""));
        assert_eq!((e.line, e.key.as_str()), (10, "neighbor[0].port"));
        assert!(
            e.message.contains("no port named \"p9\" (ports: p0)"),
            "{e}"
        );
        let text = MINIMAL.replace("port = \"p0\"\n\n[defense]", "port = \"eth0\"\n\n[defense]");
        let e = refuse(&text);
        assert_eq!(e.key, "route[0].port");
    }

    #[test]
    fn gateway_off_the_ports_prefixes_is_refused() {
        let e = refuse(&edit("via = \"10.0.0.254\"", "via = \"10.9.0.254\""));
        assert_eq!((e.line, e.key.as_str()), (14, "route[0].via"));
        assert!(e.message.contains("gateway 10.9.0.254 is not on a connected prefix of port p0 (10.0.0.0/24, 172.16.0.0/24, fd00::/64)"), "{e}");
        assert!(refuse(&edit("via = \"10.0.0.254\"", "via = \"fd00::9\""))
            .message
            .contains("not of the family"));
        assert!(refuse(&edit("via = \"10.0.0.254\"", "via = \"10.0.0.1\""))
            .message
            .contains("own address"));
        // A link-local IPv6 gateway is always on link.
        let ok =
            format!("{MINIMAL}\n[[route]]\nprefix = \"::/0\"\nvia = \"fe80::1\"\nport = \"p0\"\n");
        assert!(parse(&ok).is_ok());
        let e = refuse(&edit("ip = \"172.16.0.2\"", "ip = \"172.17.0.2\""));
        assert!(
            e.message
                .contains("172.17.0.2 is not on a connected prefix of port p0"),
            "{e}"
        );
        let dup = format!("{MINIMAL}\n[[route]]\nprefix = \"0.0.0.0/0\"\nport = \"p0\"\n");
        assert!(refuse(&dup).message.contains("is already route[0]"));
    }

    #[test]
    fn addresses_overlapping_between_ports_are_refused() {
        let e = refuse(&format!("{MINIMAL}\n[[port]]\nname = \"p1\"\nmac = \"02:00:00:00:00:02\"\naddrs = [\"10.0.5.1/16\"]\n"));
        assert_eq!((e.line, e.key.as_str()), (23, "port[1].addrs[0]"));
        assert!(
            e.message
                .contains("10.0.0.0/16 overlaps 10.0.0.0/24 of port p0"),
            "{e}"
        );
        let e = refuse(&format!("{MINIMAL}\n[[port]]\nname = \"p1\"\nmac = \"02:00:00:00:00:02\"\naddrs = [\"fd00::1/64\"]\n"));
        assert!(
            e.message.contains("address fd00::1 is already on port p0"),
            "{e}"
        );
        let e = refuse(&edit("\"fd00::1/64\"", "\"fd00::1/64\", \"10.0.0.1/24\""));
        assert!(e.message.contains("already on this port"), "{e}");
        // Two subnets on one port are fine.
        assert!(parse(&edit("\"fd00::1/64\"", "\"fd00::1/64\", \"10.0.0.2/16\"")).is_ok());
    }

    #[test]
    fn values_out_of_range_are_refused() {
        let cases = [
            ("drop_entry = 3", "drop_entry = 4", "defense.drop_entry"),
            ("drop_entry = 3", "am_droprate = 0", "defense.am_droprate"),
            (
                "drop_entry = 3",
                "low_watermark = 131072",
                "defense.low_watermark",
            ),
            (
                "drop_entry = 3",
                "drop_entry = 3\n[ipvs]\ntimeout_tcp = 0",
                "ipvs.timeout_tcp",
            ),
            (
                "drop_entry = 3",
                "drop_entry = 3\n[ipvs]\nconn_reuse_mode = 9",
                "ipvs.conn_reuse_mode",
            ),
            (
                "drop_entry = 3",
                "drop_entry = 3\n[engine]\nworkers = 0",
                "engine.workers",
            ),
            (
                "drop_entry = 3",
                "drop_entry = 3\n[engine]\nconns_per_worker = -1",
                "engine.conns_per_worker",
            ),
            (
                "drop_entry = 3",
                "drop_entry = 3\n[tunnel]\nmtu = 100",
                "tunnel.mtu",
            ),
            (
                "drop_entry = 3",
                "drop_entry = 3\n[tunnel]\nsource_v4 = \"10.0.0.9\"",
                "tunnel.source_v4",
            ),
            (
                "drop_entry = 3",
                "drop_entry = 3\n[tunnel]\nsource_v6 = \"10.0.0.1\"",
                "tunnel.source_v6",
            ),
            ("addrs = [", "vlan = 4095\naddrs = [", "port[0].vlan"),
            ("addrs = [", "mtu = 1000\naddrs = [", "port[0].mtu"),
            ("addrs = [", "device = \"\"\naddrs = [", "port[0].device"),
        ];
        for (from, to, key) in cases {
            let e = refuse(&edit(from, to));
            assert_eq!(e.key, key, "{e}");
            assert!(e.line > 0, "{e}");
        }
        let e = refuse(&edit("drop_entry = 3", "drop_entry = 4"));
        assert_eq!(e.message, "4 is out of range (want 0..3)");
        let e = refuse(&edit("addrs = [", "mtu = 1000\naddrs = ["));
        assert!(e.message.contains("below IPv6's minimum MTU 1280"), "{e}");
    }

    #[test]
    fn fwmark_rules_are_checked() {
        let f = |body: &str| parse(&format!("{MINIMAL}[[fwmark]]\n{body}\n"));
        let rule = |body: &str| f(body).unwrap_or_else(|e| panic!("{e}")).fwmarks[0].clone();
        let r = rule("mark = 5\nprefix = \"10.0.0.0/24\"\nports = \"80\"");
        assert_eq!((r.mark, r.proto, r.port_lo, r.port_hi), (5, None, 80, 80));
        let r = rule("mark = 5\nprefix = \"10.0.0.0/24\"\nports = \"1000-2000\"\nproto = \"sctp\"");
        assert_eq!(
            (r.proto, r.port_lo, r.port_hi),
            (Some(Proto::Sctp), 1000, 2000)
        );
        let err = |body: &str| f(body).unwrap_err();
        assert_eq!(
            err("mark = 0\nprefix = \"10.0.0.0/24\"").key,
            "fwmark[0].mark"
        );
        assert_eq!(
            err("mark = 1\nprefix = \"10.0.0.0/24\"\nports = \"90-80\"").key,
            "fwmark[0].ports"
        );
        assert!(err("mark = 1\nprefix = \"10.0.0.0/24\"\nports = \"90-80\"")
            .message
            .contains("runs backwards"));
        assert!(err("mark = 1\nprefix = \"10.0.0.0/24\"\nports = 70000")
            .message
            .contains("not a port"));
        assert!(err("mark = 1\nprefix = \"10.0.0.0/24\"\nports = \"http\"")
            .message
            .contains("not a port"));
        assert!(err("mark = 1\nprefix = \"10.0.0.0/24\"\nports = true")
            .message
            .contains("not a port"));
        assert_eq!(
            err("mark = 1\nprefix = \"10.0.0.0/24\"\nproto = \"icmp\"").key,
            "fwmark[0].proto"
        );
        let e = err("prefix = \"10.0.0.0/24\"");
        assert!(e.message.contains("missing field `mark`"), "{e}");
        assert!(e.key.starts_with("fwmark[0]"), "{e}");
    }

    #[test]
    fn rss_keys_are_random_fixed_or_spreading_bytes() {
        let f = |v: &str| parse(&format!("{MINIMAL}[engine]\nrss_key = {v}\n"));
        let key = |v: &str| f(v).unwrap_or_else(|e| panic!("{e}")).engine.rss_key;
        assert_eq!(key("\"random\""), RssKey::Random);
        assert_eq!(key("\"fixed\""), RssKey::Fixed);
        let k = rvs_dataplane::pipeline::rss::KEY;
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key(&format!("\"{hex}\"")), RssKey::Bytes(k));
        let colons: Vec<String> = k.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(key(&format!("\"{}\"", colons.join(":"))), RssKey::Bytes(k));
        for bad in ["\"secret\"", "\"0011\"", &format!("\"{}zz\"", &hex[..78])] {
            let e = f(bad).unwrap_err();
            assert_eq!(e.key, "engine.rss_key", "{e}");
            assert!(e.message.contains("40 bytes in hex"), "{e}");
        }
        let e = f(&format!("\"{}\"", "00".repeat(40))).unwrap_err();
        assert!(e.message.contains("unreachable"), "{e}");
    }

    #[test]
    fn no_port_and_syntax_errors_are_refused() {
        let e = refuse("");
        assert!(e.message.contains("at least one port"), "{e}");
        let e = refuse("[[port]\nname = 1");
        assert!(e.line >= 1, "{e}");
        let e = refuse("[[port]]\nname = \"p0\"\n");
        assert!(e.message.contains("missing field `mac`"), "{e}");
        assert_eq!(e.key, "port[0]");
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("rvs-appconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("appliance.toml");
        std::fs::write(&path, edit("02:00:00:00:00:01", "02:00:00:00:0:1")).unwrap();
        let e = load(&path).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "{} line 3, column 7, key port[0].mac: ",
                path.display()
            )),
            "{e}"
        );
        std::fs::write(&path, MINIMAL).unwrap();
        assert!(load(&path).is_ok());
        let e = load(&dir.join("missing.toml")).unwrap_err();
        assert!(e.message.starts_with("cannot read"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    proptest! {
        #[test]
        fn no_panic_on_any_text(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn no_panic_on_edited_minimal_file(pos in 0usize..700, junk in "[\\[\\]=\"a-z0-9./:#\\n -]{0,12}") {
            let mut t = MINIMAL.to_string();
            let mut p = pos.min(t.len());
            while !t.is_char_boundary(p) { p -= 1; }
            t.insert_str(p, &junk);
            if let Err(e) = parse(&t) {
                let _ = e.to_string();
            }
        }
    }
}

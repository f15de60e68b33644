//! The configuration a shard runs with: services, dests and IPVS's sysctls, as one immutable
//! snapshot. The control thread builds a new [`Config`] for every change (validating it
//! whole, so a rejected change changes nothing) and workers swap it in between bursts.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::addr::Family;
use crate::dest_stats::DestStatsRef;
use crate::proto::{Proto, Timeouts};
use crate::sched::{DestIdent, SchedFlags, SchedKind, SchedTables};

/// Forwarding method (`-m`, `-g`, `-i`), stored in the conn's FWD bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Fwd {
    /// NAT (masquerading): the LB sees both directions.
    Masq = 0,
    /// Direct routing (gatewaying), the ipvsadm default.
    #[default]
    Droute = 1,
    /// IP-in-IP (or GUE/GRE) tunnelling.
    Tunnel = 2,
}

impl Fwd {
    /// The method in a conn's two FWD bits (3, never stored, reads as DR).
    #[inline(always)]
    pub fn from_bits(b: u16) -> Fwd {
        // A table, not a match: the common DR/NAT packet takes no branch here.
        const BY_BITS: [Fwd; 4] = [Fwd::Masq, Fwd::Droute, Fwd::Tunnel, Fwd::Droute];
        BY_BITS[usize::from(b & 3)]
    }
    /// ipvsadm's listing word.
    pub fn name(self) -> &'static str {
        match self {
            Fwd::Masq => "Masq",
            Fwd::Droute => "Route",
            Fwd::Tunnel => "Tunnel",
        }
    }
}

/// How a service is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKey<A> {
    /// `-t/-u/--sctp-service VIP:PORT` (port 0 = all ports).
    Addr { proto: Proto, vaddr: A, vport: u16 },
    /// `-f MARK`: the packet path's match rules give the mark.
    Fwmark(u32),
}

/// `-p TIMEOUT -M NETMASK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    pub timeout_ms: u32,
    /// Client netmask as a prefix length (v4 /32, v6 /128 by default).
    pub prefix: u8,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct DestConfig<A> {
    pub addr: A,
    pub port: u16,
    /// 0 = quiescent (no new conns).
    pub weight: i32,
    pub fwd: Fwd,
    /// `-x`: 0 = none.
    pub u_threshold: u32,
    /// `-y`: 0 = none (then 3/4 of the upper threshold applies, as IPVS).
    pub l_threshold: u32,
    /// Tunnel encapsulation for `-i` (`--tun-type`, `--tun-port`, `--tun-*csum`).
    pub tun: TunConfig,
    /// The dest's counters across workers (the control thread's; none in tests and replay).
    pub stats: DestStatsRef,
}

/// IPVS's tunnel types (`--tun-type ipip|gue|gre`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TunKind {
    /// IP-in-IP (v4) or IPv6-in-IPv6.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation to `port`.
    Gue,
    /// GRE.
    Gre,
}

/// Tunnel checksum option (`--tun-nocsum`, `--tun-csum`, `--tun-remcsum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TunCsum {
    #[default]
    NoCsum,
    Csum,
    RemCsum,
}

/// Four bytes, aligned as a u32: copied with one move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(C, align(4))]
pub struct TunConfig {
    pub kind: TunKind,
    /// GUE destination port (0 unless `kind` is Gue).
    pub port: u16,
    pub csum: TunCsum,
}

#[derive(Clone)]
pub struct ServiceConfig<A> {
    pub key: ServiceKey<A>,
    pub sched: SchedKind,
    pub sched_flags: SchedFlags,
    pub persistence: Option<Persistence>,
    /// `-o`: one-packet scheduling (UDP only).
    pub ops: bool,
    pub dests: Vec<DestConfig<A>>,
    /// Scheduler tables (sh buckets, the mh lookup table), built once per snapshot and
    /// shared read-only by every shard.
    pub tables: Arc<SchedTables>,
    /// Each dest's last non-zero weight, kept across rebuilds (for mh).
    table_weights: Vec<(A, u16, i32)>,
}

impl<A: Family> ServiceConfig<A> {
    pub fn new(key: ServiceKey<A>, sched: SchedKind) -> Self {
        ServiceConfig {
            key,
            sched,
            sched_flags: SchedFlags::default(),
            persistence: None,
            ops: false,
            dests: Vec::new(),
            tables: Arc::new(SchedTables::build(sched, SchedFlags::default(), &[])),
            table_weights: Vec::new(),
        }
    }

    /// Rebuild the scheduler tables after dests or weights changed. mh builds from each
    /// dest's last non-zero weight (IPVS's `last_weight`), so quiescing a dest (weight 0)
    /// does not reshuffle the Maglev table: the dest is only skipped at lookup.
    pub fn rebuild_tables(&mut self) {
        let prev = std::mem::take(&mut self.table_weights);
        self.table_weights = self
            .dests
            .iter()
            .map(|d| {
                let last = prev
                    .iter()
                    .find(|p| (p.0, p.1) == (d.addr, d.port))
                    .map_or(0, |p| p.2);
                (d.addr, d.port, if d.weight > 0 { d.weight } else { last })
            })
            .collect();
        let idents: Vec<DestIdent> = self
            .dests
            .iter()
            .zip(&self.table_weights)
            .map(|(d, tw)| DestIdent {
                addr: d.addr.octets(),
                port: d.port,
                weight: if self.sched == SchedKind::Mh {
                    tw.2
                } else {
                    d.weight
                },
            })
            .collect();
        self.tables = Arc::new(SchedTables::build(self.sched, self.sched_flags, &idents));
    }

    /// Protocol of the service's conns (a fwmark service matches several: None).
    pub fn proto(&self) -> Option<Proto> {
        match self.key {
            ServiceKey::Addr { proto, .. } => Some(proto),
            ServiceKey::Fwmark(_) => None,
        }
    }
}

/// IPVS's sysctls that shape conns and the defense (`/proc/sys/net/ipv4/vs/*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysctl {
    /// 0 never, 1 automatic (idle), 2 automatic (active), 3 always.
    pub drop_entry: u8,
    pub drop_packet: u8,
    pub secure_tcp: u8,
    /// drop_packet rate in mode 3 (one of every `am_droprate` new-conn packets).
    pub am_droprate: u32,
    /// Free conn entries below which the shard is "out of memory" (IPVS amemthresh, here
    /// in entries). 0 = 1/16 of the shard's capacity.
    pub low_watermark: u32,
    pub conn_reuse_mode: u8,
    pub expire_nodest_conn: bool,
    pub expire_quiescent_template: bool,
    pub sloppy_tcp: bool,
    pub sloppy_sctp: bool,
    pub timeouts: Timeouts,
}

impl Default for Sysctl {
    fn default() -> Self {
        Sysctl {
            drop_entry: 0,
            drop_packet: 0,
            secure_tcp: 0,
            am_droprate: 10,
            low_watermark: 0,
            conn_reuse_mode: 1,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
            sloppy_sctp: false,
            timeouts: Timeouts::default(),
        }
    }
}

/// A config change that was refused, naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

/// Whether two service lists hold the same keys in the same places (a change that added,
/// removed or moved none).
pub fn same_keys<A: PartialEq>(a: &[Arc<ServiceConfig<A>>], b: &[Arc<ServiceConfig<A>>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.key == y.key)
}

/// The sysctls' ranges, as a snapshot is built.
fn check_sysctl(sysctl: &Sysctl) -> Result<(), ConfigError> {
    if sysctl.drop_entry > 3 || sysctl.drop_packet > 3 || sysctl.secure_tcp > 3 {
        return Err(ConfigError(
            "drop_entry, drop_packet and secure_tcp take 0..3".into(),
        ));
    }
    if sysctl.conn_reuse_mode > 3 {
        return Err(ConfigError("conn_reuse_mode takes 0..3".into()));
    }
    let t = &sysctl.timeouts;
    if t.tcp
        .iter()
        .chain(&t.sctp)
        .chain([&t.udp])
        .any(|&ms| ms > crate::conn::MAX_TIMEOUT_MS)
    {
        return Err(ConfigError(format!(
            "protocol timeouts must be at most {} ms (31 days)",
            crate::conn::MAX_TIMEOUT_MS
        )));
    }
    Ok(())
}

/// A multiply-rotate hasher for the small, fixed-key service maps probed once per new conn
/// (SipHash's DoS resistance buys nothing here: the keys come from the operator's config).
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// One immutable snapshot of a family's services and the sysctls.
#[derive(Clone)]
pub struct Config<A> {
    /// Shared with the snapshots before and after it while unchanged.
    pub services: Vec<Arc<ServiceConfig<A>>>,
    pub sysctl: Sysctl,
    /// Match rules that give a packet its firewall mark (IPVS takes marks from iptables;
    /// rvs owns the NIC, so the rules live here). First match wins.
    pub fwmark_rules: Vec<FwmarkRule<A>>,
    by_addr: FastMap<(u8, A, u16), usize>,
    by_mark: FastMap<u32, usize>,
}

impl<A: Family> Default for Config<A> {
    fn default() -> Self {
        Config {
            services: Vec::new(),
            sysctl: Sysctl::default(),
            fwmark_rules: Vec::new(),
            by_addr: FastMap::default(),
            by_mark: FastMap::default(),
        }
    }
}

impl<A: Family> ServiceConfig<A> {
    /// The engine's checks of one service: persistence, `-o`, its dests (each once, weights
    /// and thresholds in range). Errors name the service and field; names are only formatted
    /// for an error (a 100k-dest snapshot is checked on every change).
    pub fn check(&self) -> Result<(), ConfigError> {
        let name = || service_name(&self.key);
        if let ServiceKey::Fwmark(0) = self.key {
            return Err(ConfigError(format!(
                "service {}: fwmark 0 is no mark",
                name()
            )));
        }
        if let Some(p) = self.persistence {
            if u32::from(p.prefix) > A::BITS {
                return Err(ConfigError(format!(
                    "service {}: netmask /{} is longer than the address",
                    name(),
                    p.prefix
                )));
            }
            if p.timeout_ms == 0 || p.timeout_ms > crate::conn::MAX_TIMEOUT_MS {
                return Err(ConfigError(format!(
                    "service {}: persistence timeout must be 1..{} ms (31 days, as ipvsadm)",
                    name(),
                    crate::conn::MAX_TIMEOUT_MS
                )));
            }
        }
        if self.ops && self.proto() != Some(Proto::Udp) {
            return Err(ConfigError(format!(
                "service {}: one-packet scheduling (-o) is for UDP services only",
                name()
            )));
        }
        let mut seen: std::collections::HashSet<(A, u16), BuildHasherDefault<FastHasher>> =
            std::collections::HashSet::with_capacity_and_hasher(
                self.dests.len(),
                Default::default(),
            );
        for d in &self.dests {
            let dn = || format!("{}:{}", d.addr.to_ip(), d.port);
            if !seen.insert((d.addr, d.port)) {
                return Err(ConfigError(format!(
                    "service {}: dest {} already exists",
                    name(),
                    dn()
                )));
            }
            if !(0..=65535).contains(&d.weight) {
                return Err(ConfigError(format!(
                    "service {}: dest {}: weight {} not in 0..65535",
                    name(),
                    dn(),
                    d.weight
                )));
            }
            if d.l_threshold > d.u_threshold && d.u_threshold != 0 {
                return Err(ConfigError(format!(
                    "service {}: dest {}: lower threshold above upper",
                    name(),
                    dn()
                )));
            }
        }
        Ok(())
    }
}

impl<A: Family> Config<A> {
    /// Validate and index. Errors name the service and field.
    pub fn new(services: Vec<ServiceConfig<A>>, sysctl: Sysctl) -> Result<Self, ConfigError> {
        for s in &services {
            s.check()?;
        }
        Config::from_checked(services.into_iter().map(Arc::new).collect(), sysctl)
    }

    /// Index services that each passed [`ServiceConfig::check`] (a service unchanged since
    /// the last snapshot is shared with it, not rebuilt or checked again); the sysctls and
    /// the services' keys (each once) are checked here.
    pub fn from_checked(
        services: Vec<Arc<ServiceConfig<A>>>,
        sysctl: Sysctl,
    ) -> Result<Self, ConfigError> {
        check_sysctl(&sysctl)?;
        let mut by_addr = FastMap::with_capacity_and_hasher(services.len(), Default::default());
        let mut by_mark = FastMap::default();
        for (i, s) in services.iter().enumerate() {
            let dup = match s.key {
                ServiceKey::Addr {
                    proto,
                    vaddr,
                    vport,
                } => by_addr.insert((proto as u8, vaddr, vport), i).is_some(),
                ServiceKey::Fwmark(m) => m == 0 || by_mark.insert(m, i).is_some(),
            };
            if dup {
                return Err(ConfigError(format!(
                    "service {}: already exists (or fwmark 0)",
                    service_name(&s.key)
                )));
            }
        }
        Ok(Config {
            fwmark_rules: Vec::new(),
            services,
            sysctl,
            by_addr,
            by_mark,
        })
    }

    /// [`from_checked`](Self::from_checked) for services whose keys are `prev`'s, in the same
    /// places (a change that edits services but adds, removes or moves none, such as a
    /// `-e`): the services index is copied from `prev` rather than built again (10k
    /// services: a copy of the table instead of 10k inserts). Any other set is indexed anew.
    pub fn from_checked_like(
        services: Vec<Arc<ServiceConfig<A>>>,
        sysctl: Sysctl,
        prev: &Config<A>,
    ) -> Result<Self, ConfigError> {
        if !same_keys(&prev.services, &services) {
            return Self::from_checked(services, sysctl);
        }
        check_sysctl(&sysctl)?;
        Ok(Config {
            fwmark_rules: Vec::new(),
            services,
            sysctl,
            by_addr: prev.by_addr.clone(),
            by_mark: prev.by_mark.clone(),
        })
    }

    /// Add the firewall-mark match rules; each must name a configured fwmark service.
    pub fn with_fwmark_rules(mut self, rules: Vec<FwmarkRule<A>>) -> Result<Self, ConfigError> {
        for r in &rules {
            if !self.by_mark.contains_key(&r.mark) {
                return Err(ConfigError(format!(
                    "fwmark rule {}: no fwmark service {}",
                    r.describe(),
                    r.mark
                )));
            }
            if u32::from(r.prefix) > A::BITS || r.port_lo > r.port_hi {
                return Err(ConfigError(format!(
                    "fwmark rule {}: bad prefix or port range",
                    r.describe()
                )));
            }
        }
        self.fwmark_rules = rules;
        Ok(self)
    }

    /// The mark the rules give a packet to `vaddr:vport` (0 = none).
    #[inline]
    pub fn classify(&self, proto: Proto, vaddr: A, vport: u16) -> u32 {
        self.fwmark_rules
            .iter()
            .find(|r| r.matches(proto, vaddr, vport))
            .map_or(0, |r| r.mark)
    }

    /// Whether a firewall-mark rule covers `vaddr` for `proto`, whatever the port.
    pub fn fwmark_covers(&self, proto: Proto, vaddr: A) -> bool {
        self.fwmark_rules.iter().any(|r| r.covers(proto, vaddr))
    }

    /// IPVS's service lookup order: fwmark (the packet's, else the match rules'), then
    /// (proto, vaddr, vport), then the port-zero ("all ports") service of the VIP.
    #[inline]
    pub fn find_service(&self, fwmark: u32, proto: Proto, vaddr: A, vport: u16) -> Option<usize> {
        if !self.by_mark.is_empty() {
            let mark = if fwmark != 0 {
                fwmark
            } else {
                self.classify(proto, vaddr, vport)
            };
            if let Some(&i) = self.by_mark.get(&mark) {
                return Some(i);
            }
        }
        self.by_addr
            .get(&(proto as u8, vaddr, vport))
            .or_else(|| self.by_addr.get(&(proto as u8, vaddr, 0)))
            .copied()
    }
}

/// A firewall-mark match rule: packets of `proto` (any if `None`) to `addr/prefix` on a port
/// in `port_lo..=port_hi` get `mark`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FwmarkRule<A> {
    pub mark: u32,
    pub proto: Option<Proto>,
    pub addr: A,
    pub prefix: u8,
    pub port_lo: u16,
    pub port_hi: u16,
}

impl<A: Family> FwmarkRule<A> {
    #[inline]
    pub fn matches(&self, proto: Proto, vaddr: A, vport: u16) -> bool {
        self.covers(proto, vaddr) && (self.port_lo..=self.port_hi).contains(&vport)
    }

    /// Whether the rule covers `vaddr` for `proto`, whatever the port (a later fragment's
    /// view: it carries none).
    #[inline]
    pub fn covers(&self, proto: Proto, vaddr: A) -> bool {
        self.proto.is_none_or(|p| p == proto)
            && vaddr.mask(self.prefix) == self.addr.mask(self.prefix)
    }

    fn describe(&self) -> String {
        format!(
            "{}/{} ports {}-{}",
            self.addr.to_ip(),
            self.prefix,
            self.port_lo,
            self.port_hi
        )
    }
}

/// `TCP 10.0.0.1:80`, `FWM 7`.
pub fn service_name<A: Family>(k: &ServiceKey<A>) -> String {
    match k {
        ServiceKey::Addr {
            proto,
            vaddr,
            vport,
        } => match vaddr.to_ip() {
            std::net::IpAddr::V4(a) => format!("{} {a}:{vport}", proto.name()),
            std::net::IpAddr::V6(a) => format!("{} [{a}]:{vport}", proto.name()),
        },
        ServiceKey::Fwmark(m) => format!("FWM {m}"),
    }
}

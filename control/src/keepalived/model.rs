//! keepalived's LVS configuration as rvs runs it: virtual servers (an address and port, a
//! firewall mark, or a group of those), their real servers, and each real server's checkers,
//! with keepalived's defaults and inheritance (a virtual server's setting is its real
//! servers' default; a real server's is its checkers').

use std::net::IpAddr;
use std::time::Duration;

use rvs_dataplane::config::{Fwd, TunConfig};
use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::SchedKind;

use super::lexer::Origin;

/// What a virtual server (or a group member) stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VsKey {
    /// `virtual_server 10.0.0.1 80` (port 0: all ports, persistent services only).
    Addr { addr: IpAddr, port: u16 },
    /// `virtual_server fwmark 7` (`v6` from `ip_family inet6` or the real servers).
    Fwmark { mark: u32, v6: bool },
}

/// How a real server is forwarded to (`lvs_method` / `lb_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    pub fwd: Fwd,
    pub tun: TunConfig,
}

impl Default for Method {
    /// keepalived's default is NAT.
    fn default() -> Self {
        Method {
            fwd: Fwd::Masq,
            tun: TunConfig::default(),
        }
    }
}

/// The check timings and start state, as inherited from virtual to real server to checker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// `delay_loop`: how often a check runs (default 60 s).
    pub delay_loop: Duration,
    /// `connect_timeout` (default 5 s).
    pub connect_timeout: Duration,
    /// `retry`: failures after the first before a real server goes down (None: the
    /// checker's default, 1, or 0 for MISC_CHECK).
    pub retry: Option<u32>,
    /// `delay_before_retry` (None: the checker's default, 3 s for HTTP_GET and SSL_GET,
    /// 1 s otherwise).
    pub delay_before_retry: Option<Duration>,
    /// `alpha`: start down until a check succeeds.
    pub alpha: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            delay_loop: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            retry: None,
            delay_before_retry: None,
            alpha: false,
        }
    }
}

/// One URL of an HTTP_GET / SSL_GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub path: String,
    /// MD5 of the body, lower-case hex (`digest`).
    pub digest: Option<String>,
    /// Accepted status codes as inclusive ranges (default 200-299).
    pub status: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    Tcp,
    /// HTTP_GET, or SSL_GET (`tls`: the same over TLS, the server's certificate not
    /// verified, as keepalived without an `SSL` block; `sni`: `enable_sni`, the URL's
    /// virtualhost sent as the server name).
    Http {
        urls: Vec<Url>,
        tls: bool,
        sni: bool,
    },
    Misc {
        path: String,
        timeout: Option<Duration>,
        dynamic: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checker {
    pub kind: CheckKind,
    /// `connect_ip` (default: the real server's address).
    pub connect_ip: Option<IpAddr>,
    /// `connect_port` (default: the real server's port).
    pub connect_port: Option<u16>,
    /// `bindto`: the source address of the check.
    pub bindto: Option<IpAddr>,
    pub timing: Timing,
    pub at: Origin,
}

impl Checker {
    /// Failures after the first before the real server goes down.
    pub fn retry(&self) -> u32 {
        self.timing.retry.unwrap_or(match self.kind {
            CheckKind::Misc { .. } => 0,
            _ => 1,
        })
    }

    pub fn delay_before_retry(&self) -> Duration {
        self.timing
            .delay_before_retry
            .unwrap_or(Duration::from_secs(match self.kind {
                CheckKind::Http { .. } => 3,
                _ => 1,
            }))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RealServer {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: i32,
    pub method: Method,
    pub uthreshold: u32,
    pub lthreshold: u32,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    /// Down means weight 0 (kept in IPVS) rather than removed.
    pub inhibit_on_failure: bool,
    pub timing: Timing,
    pub checkers: Vec<Checker>,
    pub at: Origin,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SorryServer {
    pub addr: IpAddr,
    pub port: u16,
    pub method: Method,
    pub inhibit: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VirtualServer {
    /// One or more (a `virtual_server group` stands for each member of the group).
    pub keys: Vec<VsKey>,
    pub proto: Proto,
    pub sched: SchedKind,
    /// `-b` flags as ipvsadm writes them (`sh-port,mh-fallback`), if any.
    pub sched_flags: Vec<String>,
    pub ops: bool,
    /// `persistence_timeout` in seconds (None: not persistent).
    pub persistence_timeout: Option<u32>,
    /// `persistence_granularity` as a netmask or prefix length, as written.
    pub persistence_granularity: Option<String>,
    pub quorum: u32,
    pub hysteresis: u32,
    pub omega: bool,
    pub sorry: Option<SorryServer>,
    pub real_servers: Vec<RealServer>,
    pub at: Origin,
}

/// A keepalived.conf's LVS part, and the notes of what rvs ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KaConfig {
    pub virtual_servers: Vec<VirtualServer>,
    /// One line per block rvs ignores (VRRP, global_defs), for the log.
    pub notes: Vec<String>,
}

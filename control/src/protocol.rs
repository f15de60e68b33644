//! The control protocol between `rvsadm` and a running `rvsd`: one request, one reply, over
//! the control socket. Both sides use these types (githedgehog's `cliproto` idea: one
//! library for client and server), so the client can map a reply's error kind to ipvsadm's
//! exit code.
//!
//! **Framing.** A message is a 4-byte big-endian length, then that many bytes of JSON. A
//! request is at most [`MAX_REQUEST`] bytes, a reply at most [`MAX_REPLY`]. [`decode_request`]
//! never panics: anything malformed is a [`ProtoError`], which the server answers with an
//! error reply before it closes the connection.
//!
//! **What travels.** Rule changes travel as ipvsadm lines (the server parses them with the
//! one rules parser, `crate::rules`); listings travel as plain data ([`Listing`],
//! [`ConnPage`]) that the client formats as ipvsadm does (`crate::adm`).

use std::io::{self, Read, Write};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Largest request body: a `-R` or `--replace` of a 100k-dest rule set fits.
pub const MAX_REQUEST: usize = 32 << 20;
/// Largest reply body (a listing of every service and dest; conns come in pages).
pub const MAX_REPLY: usize = 256 << 20;
/// Conn entries in one [`ConnPage`] at most.
pub const CONN_PAGE: u32 = 4096;

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// ipvsadm rule lines (`-A -t 10.0.0.1:80 -s rr`, `-a ...`, `-e ...`, `-C`, `--set`, ...)
    /// applied in order as one change: all or none (`-R` is this with the whole input). The
    /// error names the line (1-based).
    Apply { lines: Vec<String> },
    /// The whole rule set replaced by `text` (rules lines) in one step; conns of dests that
    /// stay are kept.
    Replace { text: String },
    /// `-Z [service]`: zero the counters (of one service's dests, or all).
    Zero { service: Option<String> },
    /// `-L` / `-l`: services (one, when `service` names it as `-t ADDR:PORT` ...), dests,
    /// counts, stats and rates.
    List { service: Option<String> },
    /// `-L -c`: one page of the conn table, from `cursor` ([`ConnPage::next`]; 0 = start).
    Conns { cursor: u64 },
    /// `-S`: the rules in `ipvsadm-save -n` form.
    Save,
    /// `-L --timeout`.
    Timeouts,
}

/// What the server answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// Done: the change runs on every worker (its generation), or there was nothing to do.
    Ok {
        generation: u64,
    },
    Listing(Listing),
    Conns(ConnPage),
    Save {
        text: String,
    },
    Timeouts {
        tcp: u32,
        tcpfin: u32,
        udp: u32,
    },
    Error(ErrorReply),
}

/// A refused request: why, in words an ipvsadm user knows, and its kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub kind: ErrorKind,
    /// The message, as ipvsadm would print it (`Service not defined`), with the line for
    /// multi-line requests (`line 3: ...`).
    pub message: String,
}

/// Error kinds; the client's exit code comes from these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The rule or change was refused (ipvsadm: the kernel said no): exit 1 with ipvsadm's
    /// words; the running rules are unchanged.
    Refused,
    /// A rules text (`--replace`) has a line that does not parse: exit 2, as a usage error;
    /// the running rules are unchanged.
    Invalid,
    /// The request could not be read (malformed, oversized): the connection is closed.
    BadRequest,
    /// The peer may not use the socket (credentials).
    Denied,
    /// The workers did not take the change in time (it is in force on some of them, and
    /// will be on all once they catch up).
    Timeout,
    /// rvsd is stopping.
    ShuttingDown,
}

/// Per-dest or per-service counters, summed over workers (IPVS's `ip_vs_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// Rates from the 2 s estimator (IPVS's `ip_vs_est`): per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// The virtual side of a service, as a listing shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VirtualKey {
    /// `proto` is the IP protocol number (6, 17, 132).
    Addr {
        proto: u8,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        v6: bool,
    },
}

/// How a dest is reached (`-g`, `-m`, `-i`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Forward {
    Route,
    Masq,
    Tunnel,
}

/// A tunnel dest's encapsulation (ipvsadm `--tun-info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TunnelInfo {
    Ipip,
    Gue { port: u16, csum: TunCsumInfo },
    Gre { csum: TunCsumInfo },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TunCsumInfo {
    NoCsum,
    Csum,
    RemCsum,
}

/// One service of a [`Listing`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRow {
    pub key: VirtualKey,
    /// Scheduler name (`wlc`).
    pub sched: String,
    /// `IP_VS_SVC_F_SCHED1..3` as bits 0..2 (`sh-fallback` / `mh-fallback` is bit 0,
    /// `sh-port` / `mh-port` bit 1).
    pub sched_flags: u32,
    /// Persistence timeout, seconds (None: not persistent).
    pub persistent: Option<u32>,
    /// Persistence netmask as a prefix length (32 or 128 without `-M`).
    pub netmask_prefix: u8,
    /// `-o`.
    pub ops: bool,
    pub stats: Stats,
    pub rates: Rates,
    /// In the kernel's list order (newest first), as ipvsadm lists them.
    pub dests: Vec<DestRow>,
}

/// One real server of a [`ServiceRow`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestRow {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: Forward,
    pub weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// Active conns, summed over workers (ActiveConn).
    pub active: u32,
    /// Inactive conns (InActConn).
    pub inactive: u32,
    /// Persistence templates bound to it (PersistConn).
    pub persist: u32,
    /// Tunnel settings of a `-i` dest.
    pub tunnel: Option<TunnelInfo>,
    pub stats: Stats,
    pub rates: Rates,
}

/// What `-L` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The header's `(size=N)`: the conn table's capacity (all workers).
    pub conn_table_size: u64,
    /// In the order they were added (the client sorts as ipvsadm does).
    pub services: Vec<ServiceRow>,
}

/// One conn or template, as `-L -c` shows it (`/proc/net/ip_vs_conn`'s fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnRow {
    /// IP protocol number: 6, 17, 132, or 0 for a firewall-mark template ("IP").
    pub proto: u8,
    pub caddr: IpAddr,
    pub cport: u16,
    /// For a firewall-mark template, the mark as an address (as the kernel shows it).
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// The state's name as IPVS shows it (`ESTABLISHED`, `SYN_RECV`, `NONE` for templates,
    /// `UDP`, ...).
    pub state: String,
    /// Until it expires, milliseconds.
    pub expires_ms: u64,
}

/// A page of the conn table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnPage {
    pub conns: Vec<ConnRow>,
    /// The cursor of the next page; None when this was the last.
    pub next: Option<u64>,
}

/// Why a message could not be read.
#[derive(Debug)]
pub enum ProtoError {
    Io(io::Error),
    /// The length prefix says more than the limit.
    TooLarge {
        len: usize,
        max: usize,
    },
    /// The body is not a message of this protocol.
    Malformed(String),
}

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtoError::Io(e) => write!(f, "{e}"),
            ProtoError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes is over the limit of {max}")
            }
            ProtoError::Malformed(e) => write!(f, "malformed message: {e}"),
        }
    }
}

impl std::error::Error for ProtoError {}

impl From<io::Error> for ProtoError {
    fn from(e: io::Error) -> Self {
        ProtoError::Io(e)
    }
}

/// Decode a request body (the JSON after the length prefix).
pub fn decode_request(body: &[u8]) -> Result<Request, ProtoError> {
    if body.len() > MAX_REQUEST {
        return Err(ProtoError::TooLarge {
            len: body.len(),
            max: MAX_REQUEST,
        });
    }
    serde_json::from_slice(body).map_err(|e| ProtoError::Malformed(e.to_string()))
}

/// Decode a reply body.
pub fn decode_reply(body: &[u8]) -> Result<Reply, ProtoError> {
    serde_json::from_slice(body).map_err(|e| ProtoError::Malformed(e.to_string()))
}

/// Write one message: length prefix, then the JSON of `msg`.
pub fn write_message<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), ProtoError> {
    let body = serde_json::to_vec(msg).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    let len = u32::try_from(body.len()).map_err(|_| ProtoError::TooLarge {
        len: body.len(),
        max: u32::MAX as usize,
    })?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(&body)?;
    w.flush()?;
    Ok(())
}

/// Read one message body of at most `max` bytes. `Ok(None)` when the peer closed before a
/// new message began.
pub fn read_message(r: &mut impl Read, max: usize) -> Result<Option<Vec<u8>>, ProtoError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(ProtoError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside a length prefix",
                )))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(ProtoError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_through_the_framing() {
        let req = Request::Apply {
            lines: vec![
                "-A -t 10.0.0.1:80 -s rr".into(),
                "-a -t 10.0.0.1:80 -r 10.0.1.1".into(),
            ],
        };
        let mut buf = Vec::new();
        write_message(&mut buf, &req).unwrap();
        let body = read_message(&mut buf.as_slice(), MAX_REQUEST)
            .unwrap()
            .unwrap();
        assert_eq!(decode_request(&body).unwrap(), req);
    }

    #[test]
    fn oversized_and_malformed_requests_are_errors_not_panics() {
        let mut big = (MAX_REQUEST as u32 + 1).to_be_bytes().to_vec();
        big.extend_from_slice(b"{}");
        assert!(matches!(
            read_message(&mut big.as_slice(), MAX_REQUEST),
            Err(ProtoError::TooLarge { .. })
        ));
        for body in [
            &b"{"[..],
            b"null",
            b"{\"Apply\":{\"lines\":3}}",
            b"\xff\xfe",
            b"",
        ] {
            assert!(matches!(
                decode_request(body),
                Err(ProtoError::Malformed(_))
            ));
        }
        // A closed connection mid-prefix is an error; before a message, the end.
        assert!(read_message(&mut &[0u8, 0][..], 100).is_err());
        assert!(read_message(&mut &[][..], 100).unwrap().is_none());
    }
}

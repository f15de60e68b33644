//! `[engine]`: worker count, table sizes, EAL arguments, and the RSS key.

use rvs_dataplane::pipeline::rss;

use super::raw::RawEngine;
use super::values::{Ctx, R};

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

/// `[engine] conns_per_worker` when not given.
pub const DEFAULT_CONNS_PER_WORKER: u32 = 1 << 20;
/// `[engine] max_dests` when not given.
pub const DEFAULT_MAX_DESTS: u32 = 4096;

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

/// `[engine]`.
pub(super) fn read_engine(c: &Ctx, e: &RawEngine) -> R<EngineConfig> {
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
    Ok(EngineConfig {
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
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::testutil::MINIMAL;
    use super::*;

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
}

//! `[metrics]`: where `rvsd` serves the Prometheus text of its counters over HTTP.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::raw::RawMetrics;
use super::values::{Ctx, R};

/// `[metrics] listen` when not given: `127.0.0.1:9750`.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9750));

/// `[metrics]`: the HTTP listener of `GET /metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Address and port to listen on; `None`: no listener (`listen = "off"`).
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: Some(DEFAULT_METRICS_LISTEN),
        }
    }
}

/// `[metrics]`: `listen` is `ADDR:PORT` (IPv6 as `[::1]:9750`) or `"off"`.
pub(super) fn read_metrics(c: &Ctx, raw: &RawMetrics) -> R<MetricsConfig> {
    let Some(s) = &raw.listen else {
        return Ok(MetricsConfig::default());
    };
    let v = s.get_ref().trim();
    if v == "off" {
        return Ok(MetricsConfig { listen: None });
    }
    let listen: SocketAddr = v.parse().map_err(|_| {
        c.err(
            s.span(),
            "metrics.listen",
            format!(
                "{:?} is not an address and port (want 127.0.0.1:9750, [::1]:9750 or \"off\")",
                s.get_ref()
            ),
        )
    })?;
    Ok(MetricsConfig {
        listen: Some(listen),
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::super::parse;
    use super::super::testutil::{refuse, MINIMAL};

    fn listen(v: &str) -> Option<SocketAddr> {
        parse(&format!("{MINIMAL}[metrics]\nlisten = {v}\n"))
            .unwrap_or_else(|e| panic!("{e}"))
            .metrics
            .listen
    }

    #[test]
    fn metrics_listen_defaults_to_localhost_9750() {
        let c = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9750".parse().unwrap()));
        let c = parse(&format!("{MINIMAL}[metrics]\n")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9750".parse().unwrap()));
    }

    #[test]
    fn metrics_listen_takes_v4_v6_or_off() {
        assert_eq!(
            listen("\"0.0.0.0:9100\""),
            Some("0.0.0.0:9100".parse().unwrap())
        );
        assert_eq!(
            listen("\"[::1]:9750\""),
            Some("[::1]:9750".parse().unwrap())
        );
        assert_eq!(listen("\"off\""), None);
    }

    #[test]
    fn bad_metrics_listen_is_refused_naming_the_key() {
        let e = refuse(&format!("{MINIMAL}[metrics]\nlisten = \"127.0.0.1\"\n"));
        assert_eq!(
            e.to_string(),
            "line 20, column 10, key metrics.listen: \"127.0.0.1\" is not an address and port \
             (want 127.0.0.1:9750, [::1]:9750 or \"off\")"
        );
        for bad in [
            "\"::1:9750\"",
            "\"localhost:9750\"",
            "\"10.0.0.1:70000\"",
            "\"\"",
            "\"no\"",
        ] {
            let e = refuse(&format!("{MINIMAL}[metrics]\nlisten = {bad}\n"));
            assert_eq!((e.line, e.key.as_str()), (20, "metrics.listen"), "{e}");
            assert!(e.message.contains("is not an address and port"), "{e}");
        }
        let e = refuse(&format!("{MINIMAL}[metrics]\nlisten = 9750\n"));
        assert_eq!((e.line, e.key.as_str()), (20, "metrics.listen"));
        assert!(e.message.contains("expected a string"), "{e}");
        let e = refuse(&format!("{MINIMAL}[metrics]\nport = 9750\n"));
        assert_eq!(e.key, "metrics.port");
    }
}

//! `[[fwmark]]`: the firewall-mark match rules that feed `-f MARK` services (IPVS takes
//! marks from iptables; rvs owns the NIC, so the rules live in its file).

use rvs_dataplane::addr::{Family, V4, V6};
use rvs_dataplane::config::FwmarkRule;
use rvs_dataplane::proto::Proto;

use super::raw::{RawFwmark, S};
use super::values::{Ctx, Prefix, R};
use super::AppConfig;

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

impl AppConfig {
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
}

/// `[[fwmark]]`, in file order.
pub(super) fn read_fwmarks(c: &Ctx, raw: &[S<RawFwmark>]) -> R<Vec<FwmarkConfig>> {
    let mut fwmarks = Vec::new();
    for (i, sf) in raw.iter().enumerate() {
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
    Ok(fwmarks)
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
#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::testutil::{ip, MINIMAL};
    use super::*;

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
}

//! The rule set as the engine's snapshots: [`RuleSet::to_configs`] gives one `Config` per
//! address family, each service converted to the engine's `ServiceConfig`.

use std::net::IpAddr;
use std::sync::Arc;

use rvs_dataplane::addr::{Family, V4, V6};
use rvs_dataplane::config::{Config, DestConfig, Persistence, ServiceConfig, ServiceKey, Sysctl};
use rvs_dataplane::proto::MAX_TIMEOUT_S;
use rvs_dataplane::sched::SchedKind;

use super::model::{Service, ServiceId};
use super::validate::{validate_dest, validate_spec};
use super::{RuleError, RuleSet};

impl RuleSet {
    /// The engine's snapshots: IPv4 services (and IPv4 fwmark services) in the first, IPv6
    /// in the second, each with `sysctl` and the `--set` timeouts over its timeouts, and
    /// scheduler tables built. Firewall-mark match rules are the caller's to add
    /// (`Config::with_fwmark_rules`).
    pub fn to_configs(&self, sysctl: Sysctl) -> Result<(Config<V4>, Config<V6>), RuleError> {
        let sysctl = self.sysctl_over(sysctl)?;
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for s in &self.services {
            if s.spec.id.is_v6() {
                v6.push(Arc::new(engine_service::<V6>(s)?));
            } else {
                v4.push(Arc::new(engine_service::<V4>(s)?));
            }
        }
        let err = |e: rvs_dataplane::config::ConfigError| RuleError::new(e.0);
        Ok((
            Config::from_checked(v4, sysctl.clone()).map_err(err)?,
            Config::from_checked(v6, sysctl).map_err(err)?,
        ))
    }

    /// `sysctl` with the `--set` timeouts over its timeouts.
    pub fn sysctl_over(&self, mut sysctl: Sysctl) -> Result<Sysctl, RuleError> {
        let t = self.timeouts;
        if t.tcp > MAX_TIMEOUT_S || t.tcpfin > MAX_TIMEOUT_S || t.udp > MAX_TIMEOUT_S {
            return Err(RuleError::new(format!(
                "--set: timeouts must be 0..{MAX_TIMEOUT_S} seconds"
            )));
        }
        sysctl.timeouts.set_tcp_tcpfin_udp(t.tcp, t.tcpfin, t.udp);
        Ok(sysctl)
    }
}

/// One service as the engine's, checked (the rules' checks and the engine's), with its
/// scheduler tables built; its dests have no counter blocks yet.
pub fn engine_service<A: Family>(s: &Service) -> Result<ServiceConfig<A>, RuleError> {
    validate_spec(&s.spec).map_err(RuleError::new)?;
    for d in &s.dests {
        validate_dest(&s.spec.id, d).map_err(RuleError::new)?;
    }
    let sc = build_service::<A>(s)?;
    sc.check().map_err(|e| RuleError::new(e.0))?;
    Ok(sc)
}

fn engine_addr<A: Family>(a: IpAddr, what: &str) -> Result<A, RuleError> {
    A::from_ip(a).ok_or_else(|| RuleError::new(format!("{what} {a}: not an {} address", A::NAME)))
}

fn build_service<A: Family>(s: &Service) -> Result<ServiceConfig<A>, RuleError> {
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
            stats: Default::default(),
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
    use rvs_dataplane::config::{Fwd, TunConfig, TunCsum, TunKind};
    use rvs_dataplane::proto::Proto;

    use super::super::testutil::{ip, set};
    use super::*;

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
}

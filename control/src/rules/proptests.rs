//! Properties over random rule sets and commands: a save restores the same set, a valid
//! command prints as a line that parses back to it, and no line makes the parser panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use rvs_dataplane::config::{Fwd, Sysctl, TunConfig, TunCsum, TunKind};
use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::SchedKind;

use super::validate::{normalize_dest_port, validate_dest, validate_spec};
use super::*;

fn arb_v4() -> impl Strategy<Value = IpAddr> {
    (1u8..4).prop_map(|x| IpAddr::V4(Ipv4Addr::new(10, 0, 0, x)))
}
fn arb_v6() -> impl Strategy<Value = IpAddr> {
    (1u16..4).prop_map(|x| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, x)))
}

fn arb_id() -> impl Strategy<Value = ServiceId> {
    let proto = prop_oneof![Just(Proto::Tcp), Just(Proto::Udp), Just(Proto::Sctp)];
    prop_oneof![
        (
            proto.clone(),
            arb_v4(),
            prop_oneof![Just(0u16), Just(80u16), Just(443u16)]
        )
            .prop_map(|(proto, addr, port)| ServiceId::Addr { proto, addr, port }),
        (proto, arb_v6(), prop_oneof![Just(0u16), Just(53u16)])
            .prop_map(|(proto, addr, port)| ServiceId::Addr { proto, addr, port }),
        (1u32..4, any::<bool>()).prop_map(|(mark, v6)| ServiceId::Fwmark { mark, v6 }),
    ]
}

fn arb_spec(id: ServiceId) -> impl Strategy<Value = ServiceSpec> {
    let v6 = id.is_v6();
    (
        proptest::sample::select(SchedKind::ALL.to_vec()),
        any::<(bool, bool, bool)>(),
        proptest::option::of((1u32..=MAX_PERSISTENCE_S, any::<u8>())),
        any::<bool>(),
    )
        .prop_map(move |(sched, (f1, f2, f3), p, ops)| ServiceSpec {
            id,
            sched,
            flags: SchedFlagBits {
                flag1: f1,
                flag2: f2,
                flag3: f3,
            },
            persistence: p.map(|(timeout_s, m)| Persist {
                timeout_s,
                prefix: if v6 { m % 128 + 1 } else { m % 33 },
            }),
            ops,
        })
}

fn arb_dest(v6: bool) -> impl Strategy<Value = Dest> {
    let addr = if v6 {
        arb_v6().boxed()
    } else {
        arb_v4().boxed()
    };
    let tun = prop_oneof![
        Just(TunConfig::default()),
        (1u16.., 0u8..3).prop_map(|(port, c)| TunConfig {
            kind: TunKind::Gue,
            port,
            csum: [TunCsum::NoCsum, TunCsum::Csum, TunCsum::RemCsum][c as usize],
        }),
        any::<bool>().prop_map(|c| TunConfig {
            kind: TunKind::Gre,
            port: 0,
            csum: if c { TunCsum::Csum } else { TunCsum::NoCsum },
        }),
    ];
    (
        addr,
        any::<u16>(),
        0u8..3,
        0..=MAX_WEIGHT,
        0u32..5,
        0u32..5,
        tun,
    )
        .prop_map(|(addr, port, f, weight, u, l, tun)| {
            let fwd = [Fwd::Masq, Fwd::Droute, Fwd::Tunnel][f as usize];
            let (u, l) = if l > u { (l, u) } else { (u, l) };
            Dest {
                fwd,
                weight,
                u_threshold: u,
                l_threshold: l,
                tun: if fwd == Fwd::Tunnel {
                    tun
                } else {
                    TunConfig::default()
                },
                ..Dest::new(addr, port)
            }
        })
}

fn arb_command() -> impl Strategy<Value = Command> {
    arb_id().prop_flat_map(|id| {
        let v6 = id.is_v6();
        prop_oneof![
            3 => arb_spec(id).prop_map(Command::AddService),
            1 => arb_spec(id).prop_map(Command::EditService),
            1 => Just(Command::DeleteService(id)),
            6 => arb_dest(v6).prop_map(move |d| Command::AddServer(id, d)),
            2 => arb_dest(v6).prop_map(move |d| Command::EditServer(id, d)),
            1 => arb_dest(v6).prop_map(move |d| Command::DeleteServer(id, d.addr, d.port)),
            1 => (0u32..5000, 0u32..5000, 0u32..5000)
                .prop_map(|(tcp, tcpfin, udp)| Command::SetTimeouts(SetTimeouts { tcp, tcpfin, udp })),
            1 => Just(Command::Zero(Some(id))),
        ]
    })
}

/// A random rule set: a few services, then random commands on them (and some on others),
/// applied in order, the refused ones skipped.
fn arb_ruleset() -> impl Strategy<Value = RuleSet> {
    use proptest::sample::Index;
    let op = (
        any::<Index>(),
        any::<Index>(),
        0u8..13,
        arb_dest(false),
        arb_dest(true),
        arb_id().prop_flat_map(arb_spec),
        (0u32..5000, 0u32..5000, 0u32..5000),
    );
    (
        proptest::collection::vec(arb_id().prop_flat_map(arb_spec), 1..8),
        proptest::collection::vec(op, 0..60),
    )
        .prop_map(|(specs, ops)| {
            let mut rs = RuleSet::new();
            for s in specs {
                let _ = rs.apply_in_place(&Command::AddService(s));
            }
            for (si, di, op, d4, d6, spec, (tcp, tcpfin, udp)) in ops {
                let c = match rs.services.get(si.index(rs.services.len().max(1))) {
                    None => Command::AddService(spec),
                    Some(svc) => {
                        let id = svc.spec.id;
                        let d = if id.is_v6() { d6 } else { d4 };
                        let old = svc.dests.get(di.index(svc.dests.len().max(1))).cloned();
                        match (op, old) {
                            (0..=5, _) => Command::AddServer(id, d),
                            (6 | 7, Some(o)) => Command::EditServer(
                                id,
                                Dest {
                                    addr: o.addr,
                                    port: o.port,
                                    ..d
                                },
                            ),
                            (8, Some(o)) => Command::DeleteServer(id, o.addr, o.port),
                            (9, _) => Command::EditService(ServiceSpec { id, ..spec }),
                            (10, _) => Command::SetTimeouts(SetTimeouts { tcp, tcpfin, udp }),
                            (11, _) => Command::DeleteService(id),
                            _ => Command::AddService(spec),
                        }
                    }
                };
                let _ = rs.apply_in_place(&c);
            }
            rs
        })
}

#[test]
fn random_rule_sets_are_not_trivial() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut services, mut dests, mut tunnels) = (0, 0, 0);
    for _ in 0..100 {
        let rs = arb_ruleset().new_tree(&mut runner).unwrap().current();
        services += rs.services.len();
        for s in &rs.services {
            dests += s.dests.len();
            tunnels += s.dests.iter().filter(|d| d.fwd == Fwd::Tunnel).count();
        }
    }
    assert!(
        services > 250 && dests > 400 && tunnels > 100,
        "{services} {dests} {tunnels}"
    );
}

proptest! {
    #[test]
    fn save_round_trips(rs in arb_ruleset()) {
        let text = rs.save();
        let back = RuleSet::from_text(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back, &rs, "{}", text);
        prop_assert_eq!(back.save(), text);
        prop_assert!(rs.to_configs(Sysctl::default()).is_ok());
    }

    #[test]
    fn valid_commands_print_and_parse_back(c in arb_command()) {
        let mut want = c.clone();
        if let Command::AddServer(id, d) | Command::EditServer(id, d) = &mut want {
            normalize_dest_port(id, d);
        }
        // Only commands that pass the rule set's checks are ipvsadm-valid.
        let valid = match &want {
            Command::AddService(s) | Command::EditService(s) => validate_spec(s).is_ok(),
            Command::AddServer(id, d) | Command::EditServer(id, d) => validate_dest(id, d).is_ok(),
            _ => true,
        };
        if valid {
            let line = c.to_string();
            prop_assert_eq!(parse_line(&line), Ok(Some(want)), "{}", line);
        }
    }

    #[test]
    fn no_panic_on_any_line(line in "\\PC{0,80}") {
        let _ = parse_line(&line);
    }

    #[test]
    fn no_panic_on_option_soup(words in proptest::collection::vec(prop_oneof![
        Just("-A"), Just("-a"), Just("-e"), Just("-E"), Just("-d"), Just("-D"), Just("--set"),
        Just("-t"), Just("-u"), Just("-f"), Just("-6"), Just("-p"), Just("-M"), Just("-r"),
        Just("-w"), Just("-x"), Just("-y"), Just("-i"), Just("-m"), Just("--tun-type"),
        Just("gue"), Just("--tun-port"), Just("10.0.0.1:80"), Just("[fd00::1]:80"), Just("7"),
        Just("0"), Just("-b"), Just("sh-port"), Just("-s"), Just("sh"), Just("--"), Just("-"),
        Just("-pw"), Just("--weight="), Just("[::"), Just("4294967296"),
    ], 0..12)) {
        let line = words.join(" ");
        if let Ok(Some(c)) = parse_line(&line) {
            let _ = RuleSet::new().apply(&c);
            let _ = c.to_string();
        }
    }
}

/// The reference for [`RuleSet::from_text`]: every line parsed and applied on its own.
fn one_at_a_time(text: &str) -> Result<RuleSet, RuleError> {
    let mut rs = RuleSet::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(cmd) = parse_line(line).map_err(|e| e.at(i + 1).syntax())? {
            rs.apply_in_place(&cmd).map_err(|e| e.at(i + 1))?;
        }
    }
    Ok(rs)
}

/// A rules file over two services from `(op, service, n)`: mostly `-a` lines, each a new
/// dest unless `n` is `repeat_from` or more (then a recent one again: early in small services,
/// or, with 255, mostly once a service has passed the set's threshold), with `-A`, `-d`, `-e`
/// and `-D` between them.
fn rules_text(ops: &[(u8, bool, u8)], repeat_from: u8) -> String {
    let mut text = String::from("-A -t 10.0.0.1:80 -s wlc\n-A -u 10.0.0.2:53\n");
    let mut fresh = [0u32; 2];
    for &(op, second, n) in ops {
        let (svc, k) = if second {
            ("-u 10.0.0.2:53", 1)
        } else {
            ("-t 10.0.0.1:80", 0)
        };
        let dest = |i: u32| format!("10.{}.{}.{}:{}", 1 + k, i / 200, i % 200, 8080 + i % 2);
        // A recent dest of this service (it may have been deleted since).
        let old = fresh[k].saturating_sub(u32::from(n % 4));
        let line = match op {
            0..=239 if n < repeat_from => {
                fresh[k] += 1;
                format!("-a {svc} -r {} -m -w {}", dest(fresh[k]), n % 3)
            }
            0..=239 => format!("-a {svc} -r {} -m", dest(old)),
            240..=245 => format!("-A {svc} -s rr"),
            246..=250 => format!("-d {svc} -r {}", dest(old)),
            251..=254 => format!("-e {svc} -r {} -m -w 5", dest(old)),
            255 => format!("-D {svc}"),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

proptest! {
    /// Runs of `-a` lines (a set once a service passes 32 dests, one move to the front at
    /// the end) give what adding each one on its own gives: the same set, or the same error
    /// on the same line.
    #[test]
    fn from_text_is_every_line_applied_in_turn(
        ops in proptest::collection::vec((any::<u8>(), any::<bool>(), any::<u8>()), 0..300),
        repeat_from in prop_oneof![Just(250u8), Just(255u8)],
    ) {
        let text = rules_text(&ops, repeat_from);
        prop_assert_eq!(RuleSet::from_text(&text), one_at_a_time(&text));
    }
}

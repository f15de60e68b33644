//! Tests across schedulers: names, flags, and the availability property every scheduler
//! must keep on random dest lists.

use super::*;
use proptest::prelude::*;

#[test]
fn names_round_trip_and_default_is_wlc() {
    let names: Vec<&str> = SchedKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh", "lblc", "lblcr", "fo", "ovf",
            "twos"
        ]
    );
    for k in SchedKind::ALL {
        assert_eq!(SchedKind::parse(k.name()), Some(k));
        assert_eq!(k.to_string(), k.name());
    }
    assert_eq!(SchedKind::parse("WLC"), None);
    assert_eq!(SchedKind::parse("foo"), None);
    assert_eq!(SchedKind::parse(""), None);
    assert_eq!(SchedKind::default(), SchedKind::Wlc);
}

#[test]
fn flags_parse_and_print_comma_lists() {
    assert_eq!(SchedFlags::parse(""), Ok(SchedFlags::default()));
    let f = SchedFlags::parse("sh-fallback,sh-port").unwrap();
    assert!(f.sh_fallback && f.sh_port && !f.mh_fallback && !f.mh_port);
    assert_eq!(f.to_string_list(), "sh-fallback,sh-port");
    let g = SchedFlags::parse("mh-port, mh-fallback").unwrap();
    assert_eq!(g.to_string_list(), "mh-fallback,mh-port");
    assert_eq!(SchedFlags::default().to_string_list(), "");
    let all = SchedFlags {
        sh_fallback: true,
        sh_port: true,
        mh_fallback: true,
        mh_port: true,
    };
    assert_eq!(SchedFlags::parse(&all.to_string_list()), Ok(all));
}

#[test]
fn flags_parse_error_names_the_bad_flag() {
    let e = SchedFlags::parse("sh-fallback,sh-prot").unwrap_err();
    assert!(e.contains("sh-prot"), "{e}");
    let e = SchedFlags::parse("flag-1").unwrap_err();
    assert!(e.contains("flag-1"), "{e}");
    assert!(SchedFlags::parse("sh-port,,mh-port").is_err());
}

#[test]
fn dest_overhead_weighs_active_256_times_inactive() {
    let d = DestLoad {
        weight: 1,
        active: 3,
        inactive: 7,
        overloaded: false,
    };
    assert_eq!(d.overhead(), 3 * 256 + 7);
    assert!(d.available());
    assert!(!DestLoad { weight: 0, ..d }.available());
    assert!(!DestLoad {
        overloaded: true,
        ..d
    }
    .available());
}

#[test]
fn every_scheduler_returns_none_with_no_dests_or_none_available() {
    let input = SchedInput::default();
    let unavailable = [
        DestLoad::default(),
        DestLoad {
            weight: 3,
            overloaded: true,
            ..DestLoad::default()
        },
    ];
    let idents = [
        DestIdent {
            addr: [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            port: 1,
            weight: 0,
        },
        DestIdent {
            addr: [1, 2, 3, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            port: 1,
            weight: 3,
        },
    ];
    let all_flags = SchedFlags::parse("sh-fallback,sh-port,mh-fallback,mh-port").unwrap();
    for kind in SchedKind::ALL {
        for flags in [SchedFlags::default(), all_flags] {
            let t = SchedTables::build(kind, flags, &[]);
            let mut s = SchedState::new(kind, 0, 1);
            assert_eq!(
                schedule(kind, flags, &t, &mut s, &[], &input, 0),
                None,
                "{kind}"
            );
            let t = SchedTables::build(kind, flags, &idents);
            let mut s = SchedState::new(kind, 2, 1);
            for now in 0..3 {
                assert_eq!(
                    schedule(kind, flags, &t, &mut s, &unavailable, &input, now),
                    None,
                    "{kind}"
                );
            }
        }
    }
}

#[test]
fn mismatched_tables_and_loads_never_panic() {
    // Tables for 3 dests (or another kind), loads for 1 or 5: in-range answers or none.
    let idents: Vec<DestIdent> = (0..3u8)
        .map(|i| DestIdent {
            addr: [10, 0, 0, i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            port: 80,
            weight: 2,
        })
        .collect();
    let one = [DestLoad {
        weight: 1,
        ..DestLoad::default()
    }];
    let five = [DestLoad {
        weight: 1,
        ..DestLoad::default()
    }; 5];
    let flags = SchedFlags::parse("sh-fallback,mh-fallback").unwrap();
    for built in SchedKind::ALL {
        let t = SchedTables::build(built, flags, &idents);
        for kind in SchedKind::ALL {
            let mut s = SchedState::new(built, 3, 0);
            for c in 0..50u8 {
                let input = SchedInput {
                    caddr: [c; 16],
                    daddr: [c; 16],
                    ..SchedInput::default()
                };
                for loads in [&one[..], &five[..]] {
                    if let Some(i) = schedule(kind, flags, &t, &mut s, loads, &input, 0) {
                        assert!(i < loads.len());
                    }
                }
            }
        }
    }
}

fn ident(i: usize, weight: i32) -> DestIdent {
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&(0xc0a8_0100u32 + i as u32).to_be_bytes());
    DestIdent {
        addr,
        port: 80 + (i % 3) as u16,
        weight,
    }
}

fn dest_strategy() -> impl Strategy<Value = DestLoad> {
    (0i32..8, 0u32..6, 0u32..600, prop::bool::weighted(0.25)).prop_map(
        |(weight, active, inactive, overloaded)| DestLoad {
            weight,
            active,
            inactive,
            overloaded,
        },
    )
}

fn input_strategy() -> impl Strategy<Value = SchedInput> {
    (any::<bool>(), any::<[u8; 16]>(), any::<u16>(), 0u8..4).prop_map(|(v6, caddr, cport, d)| {
        let mut daddr = [0u8; 16];
        daddr[0] = 172;
        daddr[3] = d;
        SchedInput {
            v6,
            caddr,
            cport,
            daddr,
            dport: 80,
        }
    })
}

/// The dests a hashing table can reach (sh/dh buckets or mh slots) that are available.
fn reachable_available(t: &SchedTables, loads: &[DestLoad]) -> bool {
    let avail =
        |e: &u16| *e != NO_DEST && loads.get(usize::from(*e)).is_some_and(DestLoad::available);
    t.buckets().iter().any(avail) || t.mh_lookup().iter().any(avail)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every scheduler returns `None` or an available dest, and `None` only when no dest is
    /// available; the exceptions follow the kernel's own rules:
    /// - sh/dh/mh without fallback: exactly the hashed dest if available, else none;
    /// - sh/mh with fallback: none only if no available dest is in the table;
    /// - ovf: only dests with `active <= weight` count;
    /// - lblc: a remembered dest may be returned while its threshold flag is set (weight > 0
    ///   always holds), even when no dest is available; a new pick never.
    ///
    /// Loads change between picks so that cursors and remembered dests meet new flags.
    #[test]
    fn picks_are_available_and_none_means_none_available(
        dests in prop::collection::vec(dest_strategy(), 0..12),
        inputs in prop::collection::vec(input_strategy(), 1..6),
        flag_bits in 0u8..16,
        seed in any::<u64>(),
    ) {
        let flags = SchedFlags {
            sh_fallback: flag_bits & 1 != 0,
            sh_port: flag_bits & 2 != 0,
            mh_fallback: flag_bits & 4 != 0,
            mh_port: flag_bits & 8 != 0,
        };
        let idents: Vec<DestIdent> = dests.iter().enumerate().map(|(i, d)| ident(i, d.weight)).collect();
        for kind in SchedKind::ALL {
            let t = SchedTables::build(kind, flags, &idents);
            let mut s = SchedState::new(kind, dests.len(), seed);
            for (step, input) in inputs.iter().enumerate() {
                let now = step as u64 * 1000;
                // Loads change between picks: one dest's threshold flag flips each step.
                let mut dests = dests.clone();
                let n = dests.len();
                if let Some(d) = dests.get_mut(step % n.max(1)) {
                    d.overloaded = !d.overloaded;
                }
                let any_available = dests.iter().any(DestLoad::available);
                let fresh_lblc = matches!(kind, SchedKind::Lblc | SchedKind::Lblcr)
                    && !inputs[..step].iter().any(|p| p.daddr == input.daddr && p.v6 == input.v6);
                let got = schedule(kind, flags, &t, &mut s, &dests, input, now);
                if let Some(i) = got {
                    prop_assert!(i < dests.len(), "{kind}: index {i} out of range");
                    let d = dests[i];
                    prop_assert!(d.weight > 0, "{kind}: picked quiescent dest {i}");
                    if kind != SchedKind::Lblc || fresh_lblc {
                        prop_assert!(!d.overloaded, "{kind}: picked overloaded dest {i}");
                    }
                    if kind == SchedKind::Ovf {
                        prop_assert!(i64::from(d.active) <= i64::from(d.weight));
                    }
                }
                match kind {
                    SchedKind::Sh | SchedKind::Dh | SchedKind::Mh => {
                        // The hashed dest: what the same lookup gives with every dest available.
                        let all_on: Vec<DestLoad> = dests
                            .iter()
                            .map(|d| DestLoad { weight: d.weight.max(1), overloaded: false, ..*d })
                            .collect();
                        let mut s2 = SchedState::new(kind, dests.len(), seed);
                        let hashed = schedule(kind, flags, &t, &mut s2, &all_on, input, now);
                        let hashed_ok = hashed.filter(|&h| dests[h].available());
                        let fallback = match kind {
                            SchedKind::Sh => flags.sh_fallback,
                            SchedKind::Mh => flags.mh_fallback,
                            _ => false,
                        };
                        if hashed_ok.is_some() || !fallback {
                            prop_assert_eq!(got, hashed_ok, "{}", kind);
                        } else {
                            prop_assert_eq!(got.is_none(), !reachable_available(&t, &dests), "{}", kind);
                        }
                    }
                    SchedKind::Ovf => {
                        let ok = dests.iter().any(|d| d.available() && i64::from(d.active) <= i64::from(d.weight));
                        prop_assert_eq!(got.is_some(), ok);
                    }
                    SchedKind::Lblc => {
                        // None only when nothing is available; a pick with nothing available
                        // can only be a remembered dest whose threshold flag came on since.
                        if any_available {
                            prop_assert!(got.is_some());
                        } else if let Some(i) = got {
                            prop_assert!(!fresh_lblc && dests[i].overloaded && dests[i].weight > 0);
                        }
                    }
                    _ => prop_assert_eq!(got.is_some(), any_available, "{}", kind),
                }
            }
        }
    }
}

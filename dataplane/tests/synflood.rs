//! The seed's story end to end, in virtual time: a SYN flood with drop_entry active.

use rvs_dataplane::sim::{synflood, SynfloodParams};

fn run(p: SynfloodParams) -> rvs_dataplane::sim::SynfloodReport {
    synflood(&p).expect("valid parameters")
}

#[test]
fn flood_conns_survive_the_scan_about_as_the_seed_computes_and_templates_stay_bounded() {
    let p = SynfloodParams {
        seconds: 300,
        rate: 1000,
        legit: 40,
        ..SynfloodParams::default()
    };
    let r = run(p.clone());
    assert!((r.syn_recv_survival_expected - 0.1488).abs() < 1e-3);
    assert!(
        (0.12..0.18).contains(&r.syn_recv_survival),
        "survival {}",
        r.syn_recv_survival
    );
    // Near R x 30 s, far below the R x (P + 60) = 360k that would pile up without the patch.
    assert!(r.templates_end < 40_000, "templates {}", r.templates_end);
    assert_eq!(r.assured_templates_end, 40);
    assert_eq!(r.legit_clients_kept_dest, 40);
    assert_eq!(r.legit_conns_failed, 0);
    let drop = |k| r.drops.iter().find(|(n, _)| *n == k).map_or(0, |(_, v)| *v);
    // Every scan-dropped flood conn took its unassured template along (a few pending at the end).
    assert!(drop("drop_entry_conn") - drop("dropped_chain_template") < 10);
    assert!(
        drop("drop_entry_template") > 0,
        "orphaned templates are collected by the scan"
    );
}

#[test]
fn without_persistence_no_template_exists() {
    let r = run(SynfloodParams {
        seconds: 120,
        rate: 500,
        persistence: 0,
        legit: 10,
        ..SynfloodParams::default()
    });
    assert_eq!(
        (r.templates_max, r.templates_end, r.assured_templates_end),
        (0, 0, 0)
    );
    assert!(r.flood_syns == 60_000 && r.conns_max > 0);
}

#[test]
fn without_drop_entry_every_flood_conn_reaches_its_timeout() {
    let r = run(SynfloodParams {
        seconds: 120,
        rate: 500,
        drop_entry: 0,
        legit: 10,
        ..SynfloodParams::default()
    });
    assert_eq!(r.syn_recv_survival, 1.0);
    assert!(r
        .drops
        .iter()
        .all(|(n, v)| !n.starts_with("drop_entry") || *v == 0));
}

#[test]
fn a_bad_netmask_is_refused() {
    let e = synflood(&SynfloodParams {
        netmask: 33,
        ..SynfloodParams::default()
    })
    .err()
    .unwrap();
    assert!(e.0.contains("netmask"), "{e}");
}

//! Scenario tests of one shard in virtual time: each pins one IPVS behaviour.

use std::sync::Arc;

use rvs_dataplane::addr::{Family, V4, V6};
use rvs_dataplane::config::{
    Config, DestConfig, Fwd, Persistence, ServiceConfig, ServiceKey, Sysctl,
};
use rvs_dataplane::conn::flags;
use rvs_dataplane::counters::DropReason;
use rvs_dataplane::proto::tcp::{self, TcpState};
use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::shard::{DestCounts, Packet, Shard, ShardParams, Verdict, Xmit};

const S: u64 = 1000;

fn v4(s: &str) -> V4 {
    V4::from_ip(s.parse().unwrap()).unwrap()
}

fn dest(addr: &str, weight: i32, fwd: Fwd) -> DestConfig<V4> {
    DestConfig {
        addr: v4(addr),
        port: 80,
        weight,
        fwd,
        u_threshold: 0,
        l_threshold: 0,
        ..Default::default()
    }
}

fn tcp_svc(
    vip: &str,
    sched: SchedKind,
    dests: Vec<DestConfig<V4>>,
    persist_s: u32,
    prefix: u8,
) -> ServiceConfig<V4> {
    let mut s = ServiceConfig::new(
        ServiceKey::Addr {
            proto: Proto::Tcp,
            vaddr: v4(vip),
            vport: 80,
        },
        sched,
    );
    if persist_s > 0 {
        s.persistence = Some(Persistence {
            timeout_ms: persist_s * 1000,
            prefix,
        });
    }
    s.dests = dests;
    s.rebuild_tables();
    s
}

fn shard(svcs: Vec<ServiceConfig<V4>>, sysctl: Sysctl, capacity: u32) -> Shard<V4> {
    let cfg = Arc::new(Config::new(svcs, sysctl).unwrap());
    Shard::new(
        ShardParams {
            capacity,
            seed: 9,
            ..Default::default()
        },
        cfg,
        0,
    )
}

/// A non-persistent rr service on VIP:80 with one DR dest 10.1.0.1:80.
fn one_dest(sysctl: Sysctl, capacity: u32) -> Shard<V4> {
    let svc = tcp_svc(
        VIP,
        SchedKind::Rr,
        vec![dest("10.1.0.1", 1, Fwd::Droute)],
        0,
        32,
    );
    shard(vec![svc], sysctl, capacity)
}

fn key(vip: &str) -> ServiceKey<V4> {
    ServiceKey::Addr {
        proto: Proto::Tcp,
        vaddr: v4(vip),
        vport: 80,
    }
}

fn xmit<A: Family>(v: Verdict<A>) -> Xmit<A> {
    match v {
        Verdict::Xmit(x) => x,
        other => panic!("expected Xmit, got {other:?}"),
    }
}

fn pkt(c: &str, cport: u16, flags: u8) -> Packet<V4> {
    Packet::tcp(v4(c), cport, v4("192.168.100.1"), 80, flags)
}

const VIP: &str = "192.168.100.1";

#[test]
fn dr_conn_counts_inactive_then_active_then_inactive_on_its_dest() {
    let mut s = one_dest(Sysctl::default(), 64);
    let d = |s: &Shard<V4>| s.dest_counts(key(VIP), v4("10.1.0.1"), 80).unwrap();
    let x = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 0));
    assert_eq!(x.fwd, Fwd::Droute);
    assert_eq!(x.daddr, v4("10.1.0.1"));
    let c = s.conn(x.conn).unwrap();
    assert_eq!(c.state, TcpState::SynRecv as u8);
    assert!(c.has(flags::NOOUTPUT));
    assert_eq!(
        d(&s),
        DestCounts {
            active: 1,
            inactive: 0,
            persist: 0
        }
    );
    xmit(s.process(&pkt("1.1.1.1", 1000, tcp::ACK), 1));
    assert_eq!(s.conn(x.conn).unwrap().state, TcpState::Established as u8);
    // DR: the LB sees only the client's FIN: INPUT_ONLY ES -> FIN_WAIT (inactive).
    xmit(s.process(&pkt("1.1.1.1", 1000, tcp::FIN | tcp::ACK), 2));
    assert_eq!(s.conn(x.conn).unwrap().state, TcpState::FinWait as u8);
    assert_eq!(
        d(&s),
        DestCounts {
            active: 0,
            inactive: 1,
            persist: 0
        }
    );
    // FIN_WAIT lasts 120 s, then the conn is gone and the dest counts nothing.
    s.tick(2 + 120 * S - 1);
    assert!(s.conn(x.conn).is_some());
    s.tick(2 + 120 * S);
    assert!(s.conn(x.conn).is_none());
    assert_eq!(d(&s), DestCounts::default());
    assert_eq!(s.counters().conns.get(), 0);
}

#[test]
fn nat_reply_is_matched_and_clears_nooutput_semantics() {
    let mut s = shard(
        vec![tcp_svc(
            VIP,
            SchedKind::Rr,
            vec![dest("10.1.0.1", 1, Fwd::Masq)],
            0,
            32,
        )],
        Sysctl::default(),
        64,
    );
    let x = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 0));
    assert!(!s.conn(x.conn).unwrap().has(flags::NOOUTPUT));
    // The dest's SYN+ACK comes back: outbound lookup by (daddr, dport, caddr, cport).
    let reply = Packet::tcp(v4("10.1.0.1"), 80, v4("1.1.1.1"), 1000, tcp::SYN | tcp::ACK);
    let r = xmit(s.process(&reply, 1));
    assert!(r.reply);
    assert_eq!(r.conn, x.conn);
    assert_eq!((r.vaddr, r.vport), (v4(VIP), 80));
    assert_eq!(s.counters().packets_out.get(), 1);
}

#[test]
fn persistent_clients_of_one_netmask_share_a_template_and_its_dest() {
    let dests = vec![
        dest("10.1.0.1", 1, Fwd::Droute),
        dest("10.1.0.2", 1, Fwd::Droute),
        dest("10.1.0.3", 1, Fwd::Droute),
    ];
    let mut s = shard(
        vec![tcp_svc(VIP, SchedKind::Rr, dests, 300, 24)],
        Sysctl::default(),
        64,
    );
    let a = xmit(s.process(&pkt("7.7.7.1", 1000, tcp::SYN), 0));
    let b = xmit(s.process(&pkt("7.7.7.200", 2000, tcp::SYN), 1));
    let c = xmit(s.process(&pkt("7.7.8.1", 3000, tcp::SYN), 2));
    assert_eq!(a.daddr, b.daddr, "same /24, same dest");
    assert_ne!(a.daddr, c.daddr, "rr moves on for a new client group");
    assert_eq!(s.counters().templates.get(), 2);
    let tpl = s
        .conns()
        .find(|c| c.is_template() && c.caddr == v4("7.7.7.0"))
        .unwrap();
    assert_eq!((tpl.cport, tpl.vport, tpl.n_control), (0, 80, 2));
    assert_eq!(s.dest_counts(key(VIP), a.daddr, 80).unwrap().persist, 1);
}

#[test]
fn template_outlives_its_conns_until_its_timeout_and_keeps_the_dest_meanwhile() {
    let dests = vec![
        dest("10.1.0.1", 1, Fwd::Droute),
        dest("10.1.0.2", 1, Fwd::Droute),
    ];
    let mut s = shard(
        vec![tcp_svc(VIP, SchedKind::Rr, dests, 300, 32)],
        Sysctl::default(),
        64,
    );
    let a = xmit(s.process(&pkt("7.7.7.1", 1000, tcp::SYN), 0));
    s.process(&pkt("7.7.7.1", 1000, tcp::ACK), 1);
    s.process(&pkt("7.7.7.1", 1000, tcp::RST), 1); // CLOSE: 10 s (a RST in SYN_RECV keeps it)
    s.tick(20 * S);
    assert_eq!(s.counters().conns.get(), 0);
    assert_eq!(s.counters().templates.get(), 1);
    let again = xmit(s.process(&pkt("7.7.7.1", 1001, tcp::SYN), 200 * S));
    assert_eq!(again.daddr, a.daddr);
    // The template was re-armed at 200 s: it lives until 500 s once its conn is gone.
    s.process(&pkt("7.7.7.1", 1001, tcp::ACK), 200 * S + 1);
    s.process(&pkt("7.7.7.1", 1001, tcp::RST), 200 * S + 1);
    s.tick(499 * S);
    assert_eq!(s.counters().templates.get(), 1);
    s.tick(500 * S);
    assert_eq!(s.counters().templates.get(), 0);
}

#[test]
fn template_still_controlling_at_its_deadline_is_retried_every_60s() {
    let mut s = shard(
        vec![tcp_svc(
            VIP,
            SchedKind::Rr,
            vec![dest("10.1.0.1", 1, Fwd::Droute)],
            30,
            32,
        )],
        Sysctl::default(),
        64,
    );
    s.process(&pkt("7.7.7.1", 1000, tcp::SYN), 0);
    s.process(&pkt("7.7.7.1", 1000, tcp::ACK), 1); // ESTABLISHED, 900 s
    s.tick(31 * S);
    let tpl = s.conns().find(|c| c.is_template()).unwrap();
    assert_eq!(
        tpl.timeout, 60_000,
        "expire_later resets the timeout to 60 s"
    );
    assert_eq!(tpl.expires, 30 * S + 60 * S);
}

#[test]
fn conn_reuse_reschedules_a_syn_on_a_time_wait_conn() {
    let dests = vec![
        dest("10.1.0.1", 1, Fwd::Masq),
        dest("10.1.0.2", 1, Fwd::Masq),
    ];
    let mut s = shard(
        vec![tcp_svc(VIP, SchedKind::Rr, dests, 0, 32)],
        Sysctl::default(),
        64,
    );
    let a = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 0));
    s.process(&pkt("1.1.1.1", 1000, tcp::ACK), 1);
    s.process(&pkt("1.1.1.1", 1000, tcp::FIN | tcp::ACK), 2); // CLOSE_WAIT
    s.process(
        &Packet::tcp(a.daddr, 80, v4("1.1.1.1"), 1000, tcp::FIN | tcp::ACK),
        3,
    );
    assert_eq!(s.conn(a.conn).unwrap().state, TcpState::TimeWait as u8);
    let b = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 4));
    assert!(s.conn(a.conn).is_none(), "the old conn was expired");
    assert_ne!(b.conn, a.conn);
    assert_ne!(b.daddr, a.daddr, "rr scheduled anew");
    assert_eq!(s.counters().conns.get(), 1);
}

#[test]
fn conn_reuse_mode_0_keeps_the_time_wait_conn() {
    let sysctl = Sysctl {
        conn_reuse_mode: 0,
        ..Sysctl::default()
    };
    let mut s = one_dest(sysctl, 64);
    let a = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 0));
    s.process(&pkt("1.1.1.1", 1000, tcp::RST), 1); // CLOSE
    let b = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 2));
    assert_eq!(a.conn, b.conn);
    assert_eq!(s.conn(b.conn).unwrap().state, TcpState::SynRecv as u8);
}

/// A service of two dests with an established conn (at t=1) to one of them; then the
/// config of the same service with only the other dest, under `sysctl`.
fn conn_to_a_dest_that_goes(sysctl: Sysctl) -> (Shard<V4>, Xmit<V4>, Arc<Config<V4>>) {
    let two = vec![
        dest("10.1.0.1", 1, Fwd::Droute),
        dest("10.1.0.2", 1, Fwd::Droute),
    ];
    let mut s = shard(
        vec![tcp_svc(VIP, SchedKind::Rr, two, 0, 32)],
        sysctl.clone(),
        64,
    );
    let a = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 0));
    s.process(&pkt("1.1.1.1", 1000, tcp::ACK), 1);
    let keep = if a.daddr == v4("10.1.0.1") {
        "10.1.0.2"
    } else {
        "10.1.0.1"
    };
    let svc = tcp_svc(VIP, SchedKind::Rr, vec![dest(keep, 1, Fwd::Droute)], 0, 32);
    (s, a, Arc::new(Config::new(vec![svc], sysctl).unwrap()))
}

#[test]
fn removed_dest_drops_packets_unless_expire_nodest_conn() {
    for expire in [false, true] {
        let sysctl = Sysctl {
            expire_nodest_conn: expire,
            ..Sysctl::default()
        };
        let (mut s, a, cfg) = conn_to_a_dest_that_goes(sysctl);
        s.set_config(cfg, 2);
        if expire {
            // Newer kernels expire the removed dest's conns at once.
            assert!(s.conn(a.conn).is_none());
            assert!(
                s.dest_counts(key(VIP), a.daddr, 80).is_none(),
                "the dest's slot is freed"
            );
        } else {
            assert_eq!(
                s.process(&pkt("1.1.1.1", 1000, tcp::ACK), 3),
                Verdict::Drop(DropReason::DestUnavailable)
            );
            assert_eq!(
                s.dest_counts(key(VIP), a.daddr, 80).unwrap().active,
                1,
                "the detached dest keeps its counts"
            );
        }
    }
}

#[test]
fn quiescent_dest_keeps_its_persistent_clients_unless_expire_quiescent_template() {
    for expire in [false, true] {
        let sysctl = Sysctl {
            expire_quiescent_template: expire,
            ..Sysctl::default()
        };
        let two = |w1| {
            vec![
                dest("10.1.0.1", w1, Fwd::Droute),
                dest("10.1.0.2", 1, Fwd::Droute),
            ]
        };
        let mut s = shard(
            vec![tcp_svc(VIP, SchedKind::Rr, two(1), 300, 32)],
            sysctl.clone(),
            64,
        );
        let a = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 0));
        assert_eq!(a.daddr, v4("10.1.0.1"));
        let cfg = Config::new(vec![tcp_svc(VIP, SchedKind::Rr, two(0), 300, 32)], sysctl).unwrap();
        s.set_config(Arc::new(cfg), 1);
        let b = xmit(s.process(&pkt("1.1.1.1", 2000, tcp::SYN), 2));
        if expire {
            assert_eq!(
                b.daddr,
                v4("10.1.0.2"),
                "the template was invalid: rescheduled"
            );
            assert_eq!(
                s.counters().templates.get(),
                2,
                "the old template lives on for its conn"
            );
        } else {
            assert_eq!(
                b.daddr,
                v4("10.1.0.1"),
                "weight 0 alone keeps persistent clients"
            );
        }
        // New clients never go to the quiescent dest.
        let c = xmit(s.process(&pkt("2.2.2.2", 1000, tcp::SYN), 3));
        assert_eq!(c.daddr, v4("10.1.0.2"));
    }
}

#[test]
fn fwmark_service_keys_its_template_on_the_mark_across_ports() {
    let mut svc = ServiceConfig::new(ServiceKey::Fwmark(7), SchedKind::Rr);
    svc.persistence = Some(Persistence {
        timeout_ms: 300_000,
        prefix: 32,
    });
    svc.dests = vec![
        dest("10.1.0.1", 1, Fwd::Droute),
        dest("10.1.0.2", 1, Fwd::Droute),
    ];
    svc.rebuild_tables();
    let mut s = shard(vec![svc], Sysctl::default(), 64);
    let mut p80 = pkt("1.1.1.1", 1000, tcp::SYN);
    p80.fwmark = 7;
    let mut p443 = Packet::tcp(v4("1.1.1.1"), 1001, v4("192.168.100.2"), 443, tcp::SYN);
    p443.fwmark = 7;
    let a = xmit(s.process(&p80, 0));
    let b = xmit(s.process(&p443, 1));
    assert_eq!(a.daddr, b.daddr, "one template for the whole mark");
    let tpl = s.conns().find(|c| c.is_template()).unwrap();
    assert_eq!((tpl.proto, tpl.vaddr, tpl.vport), (0, V4(7), 0));
    // Without the mark the packet is not ours.
    assert_eq!(
        s.process(&pkt("1.1.1.1", 1002, tcp::SYN), 2),
        Verdict::NotOurs
    );
}

#[test]
fn udp_reply_assures_the_template_and_ops_keeps_no_conn() {
    let mut svc = ServiceConfig::new(
        ServiceKey::Addr {
            proto: Proto::Udp,
            vaddr: v4(VIP),
            vport: 53,
        },
        SchedKind::Rr,
    );
    svc.persistence = Some(Persistence {
        timeout_ms: 60_000,
        prefix: 32,
    });
    svc.dests = vec![DestConfig {
        addr: v4("10.1.0.1"),
        port: 53,
        weight: 1,
        fwd: Fwd::Masq,
        u_threshold: 0,
        l_threshold: 0,
        ..Default::default()
    }];
    svc.rebuild_tables();
    let mut ops = svc.clone();
    ops.key = ServiceKey::Addr {
        proto: Proto::Udp,
        vaddr: v4(VIP),
        vport: 54,
    };
    ops.ops = true;
    let mut s = shard(vec![svc, ops], Sysctl::default(), 64);
    xmit(s.process(&Packet::udp(v4("1.1.1.1"), 5000, v4(VIP), 53), 0));
    assert_eq!(s.counters().assured_templates.get(), 0);
    xmit(s.process(&Packet::udp(v4("10.1.0.1"), 53, v4("1.1.1.1"), 5000), 1));
    assert_eq!(s.counters().assured_templates.get(), 1);
    // OPS: every packet scheduled on its own; no conn stays, the template counts packets.
    for i in 0..3 {
        xmit(s.process(&Packet::udp(v4("2.2.2.2"), 6000, v4(VIP), 54), 10 + i));
    }
    assert_eq!(s.counters().conns.get(), 1, "only the non-OPS UDP conn");
    let tpl = s
        .conns()
        .find(|c| c.is_template() && c.caddr == v4("2.2.2.2"))
        .unwrap();
    assert_eq!((tpl.in_pkts, tpl.n_control), (3, 0));
}

#[test]
fn non_syn_miss_is_dropped_and_unknown_vip_is_not_ours() {
    let mut s = one_dest(Sysctl::default(), 64);
    assert_eq!(
        s.process(&pkt("1.1.1.1", 1000, tcp::ACK), 0),
        Verdict::Drop(DropReason::NoConnNotStart)
    );
    let other = Packet::tcp(v4("1.1.1.1"), 1000, v4("192.168.100.9"), 80, tcp::SYN);
    assert_eq!(s.process(&other, 0), Verdict::NotOurs);
    assert_eq!(s.counters().drops_of(DropReason::NoConnNotStart), 1);
}

#[test]
fn sloppy_tcp_picks_up_a_mid_stream_ack() {
    let sysctl = Sysctl {
        sloppy_tcp: true,
        ..Sysctl::default()
    };
    let mut s = one_dest(sysctl, 64);
    let x = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::ACK), 0));
    assert_eq!(s.conn(x.conn).unwrap().state, TcpState::Established as u8);
}

#[test]
fn full_table_drops_new_conns_with_table_full() {
    let mut s = one_dest(Sysctl::default(), 2);
    xmit(s.process(&pkt("1.1.1.1", 1, tcp::SYN), 0));
    xmit(s.process(&pkt("1.1.1.1", 2, tcp::SYN), 0));
    assert_eq!(
        s.process(&pkt("1.1.1.1", 3, tcp::SYN), 0),
        Verdict::Drop(DropReason::TableFull)
    );
    // The dest's counters were not touched by the refused conn.
    assert_eq!(
        s.dest_counts(key(VIP), v4("10.1.0.1"), 80).unwrap().active,
        2
    );
}

#[test]
fn no_available_dest_is_counted() {
    let mut s = shard(
        vec![tcp_svc(
            VIP,
            SchedKind::Wlc,
            vec![dest("10.1.0.1", 0, Fwd::Droute)],
            0,
            32,
        )],
        Sysctl::default(),
        8,
    );
    assert_eq!(
        s.process(&pkt("1.1.1.1", 1, tcp::SYN), 0),
        Verdict::Drop(DropReason::NoDest)
    );
    assert_eq!(s.counters().drops_of(DropReason::NoDest), 1);
}

#[test]
fn expire_nodest_conn_turned_on_later_expires_the_conns_of_a_dest_removed_before() {
    let off = Sysctl::default();
    let on = Sysctl {
        expire_nodest_conn: true,
        ..Sysctl::default()
    };
    let (mut s, a, first) = conn_to_a_dest_that_goes(off);
    let kept = first.services[0].dests[0].addr;
    s.set_config(first, 2);
    assert!(
        s.conn(a.conn).is_some(),
        "held while expire_nodest_conn is off"
    );
    let (_, _, again) = conn_to_a_dest_that_goes(on);
    assert_eq!(again.services[0].dests[0].addr, kept, "rr starts alike");
    // The same service (rebuilt: another snapshot) with the sysctl on: the conn goes.
    s.set_config(again, 3);
    assert!(s.conn(a.conn).is_none());
    assert!(s.dest_counts(key(VIP), a.daddr, 80).is_none());
}

#[test]
fn upper_threshold_overloads_a_dest_until_it_falls_below_the_lower() {
    let mut d1 = dest("10.1.0.1", 1, Fwd::Droute);
    d1.u_threshold = 2;
    d1.l_threshold = 1;
    let mut s = shard(
        vec![tcp_svc(
            VIP,
            SchedKind::Wlc,
            vec![d1, dest("10.1.0.2", 1, Fwd::Droute)],
            0,
            32,
        )],
        Sysctl::default(),
        64,
    );
    // wlc alternates while loads are equal; count where conns land.
    let mut on1 = 0;
    for p in 0..10u16 {
        let x = xmit(s.process(&pkt("1.1.1.1", 100 + p, tcp::SYN), 0));
        on1 += usize::from(x.daddr == v4("10.1.0.1"));
    }
    assert_eq!(on1, 2, "the dest took conns up to its upper threshold only");
    // Close one of them (ACK, RST: CLOSE, 10 s): total 1 is not below the lower threshold 1,
    // so the dest stays overloaded.
    let on_d1: Vec<u16> = s
        .conns()
        .filter(|c| c.daddr == v4("10.1.0.1"))
        .map(|c| c.cport)
        .collect();
    let close = |s: &mut Shard<V4>, cport, t| {
        s.process(&pkt("1.1.1.1", cport, tcp::ACK), t);
        s.process(&pkt("1.1.1.1", cport, tcp::RST), t);
    };
    close(&mut s, on_d1[0], 1);
    s.tick(12 * S);
    let x = xmit(s.process(&pkt("1.1.1.1", 500, tcp::SYN), 12 * S));
    assert_eq!(x.daddr, v4("10.1.0.2"));
    // Close the other: total 0 < 1 clears the overload; wlc prefers the idle dest again.
    close(&mut s, on_d1[1], 13 * S);
    s.tick(24 * S);
    let x = xmit(s.process(&pkt("1.1.1.1", 501, tcp::SYN), 24 * S));
    assert_eq!(x.daddr, v4("10.1.0.1"));
}

#[test]
fn shorter_timeout_is_honoured_on_time_despite_the_lazy_wheel() {
    let mut s = one_dest(Sysctl::default(), 64);
    let x = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 0));
    for t in 1..100 {
        s.process(&pkt("1.1.1.1", 1000, tcp::ACK), t * S);
        s.tick(t * S);
    }
    assert!(s.conn(x.conn).is_some(), "a busy ESTABLISHED conn lives");
    s.process(&pkt("1.1.1.1", 1000, tcp::RST), 100 * S); // CLOSE: 10 s
    s.tick(110 * S - 1);
    assert!(s.conn(x.conn).is_some());
    s.tick(110 * S);
    assert!(s.conn(x.conn).is_none());
}

#[test]
fn secure_tcp_under_pressure_holds_dr_syns_in_synack() {
    let sysctl = Sysctl {
        secure_tcp: 1,
        low_watermark: 4,
        ..Sysctl::default()
    };
    let mut s = one_dest(sysctl, 8);
    let a = xmit(s.process(&pkt("1.1.1.1", 1, tcp::SYN), 0));
    assert_eq!(s.conn(a.conn).unwrap().state, TcpState::SynRecv as u8);
    for p in 2..7 {
        s.process(&pkt("1.1.1.1", p, tcp::SYN), 1);
    }
    s.tick(S); // free 2 < 4: secure_tcp switches to its table
    assert!(s.defense().secure_tcp_active());
    let b = xmit(s.process(&pkt("1.1.1.2", 1, tcp::SYN), S + 1));
    assert_eq!(s.conn(b.conn).unwrap().state, TcpState::SynAck as u8);
}

#[test]
fn drop_packet_mode_3_refuses_one_new_conn_in_am_droprate() {
    let sysctl = Sysctl {
        drop_packet: 3,
        am_droprate: 4,
        ..Sysctl::default()
    };
    let mut s = one_dest(sysctl, 256);
    s.tick(S);
    let dropped = (0..40u16)
        .filter(|&p| {
            s.process(&pkt("1.1.1.1", 1000 + p, tcp::SYN), S)
                == Verdict::Drop(DropReason::DropPacket)
        })
        .count();
    assert_eq!(dropped, 10);
}

#[test]
fn scan_keeps_assured_templates_and_drops_unassured_ones_with_their_half_open_conns() {
    let sysctl = Sysctl {
        drop_entry: 3,
        ..Sysctl::default()
    };
    let cfg = Arc::new(
        Config::new(
            vec![tcp_svc(
                VIP,
                SchedKind::Rr,
                vec![dest("10.1.0.1", 1, Fwd::Droute)],
                300,
                32,
            )],
            sysctl,
        )
        .unwrap(),
    );
    // Visit every bucket each second so the outcome is certain.
    let mut s = Shard::new(
        ShardParams {
            capacity: 64,
            seed: 3,
            scan_shift: 0,
            ..Default::default()
        },
        cfg,
        0,
    );
    // A legit client: handshake done, then closed -> its template is ASSURED and orphaned.
    s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 0);
    s.process(&pkt("1.1.1.1", 1000, tcp::ACK), 1);
    s.process(&pkt("1.1.1.1", 1000, tcp::RST), 2);
    // A flood source: SYN only -> SYN_RECV conn controlled by an unassured template.
    s.process(&pkt("6.6.6.6", 4000, tcp::SYN), 3);
    s.tick(S);
    let c = s.counters();
    assert_eq!(
        c.drops_of(DropReason::DropEntryConn),
        1,
        "the SYN_RECV conn"
    );
    assert_eq!(
        c.drops_of(DropReason::ChainTemplate),
        1,
        "its template went with it"
    );
    assert_eq!(c.templates.get(), 1);
    assert_eq!(c.assured_templates.get(), 1);
    s.tick(20 * S);
    assert_eq!(
        c.templates.get(),
        1,
        "the assured template survives every scan"
    );
    assert_eq!(c.drops_of(DropReason::DropEntryTemplate), 0);
}

#[test]
fn ipv6_shard_groups_clients_by_prefix() {
    let vip = V6::from_ip("fd00::100".parse().unwrap()).unwrap();
    let mut svc = ServiceConfig::new(
        ServiceKey::Addr {
            proto: Proto::Tcp,
            vaddr: vip,
            vport: 80,
        },
        SchedKind::Rr,
    );
    svc.persistence = Some(Persistence {
        timeout_ms: 300_000,
        prefix: 64,
    });
    svc.dests = ["fd00:1::1", "fd00:1::2"]
        .iter()
        .map(|a| DestConfig {
            addr: V6::from_ip(a.parse().unwrap()).unwrap(),
            port: 80,
            weight: 1,
            fwd: Fwd::Droute,
            u_threshold: 0,
            l_threshold: 0,
            ..Default::default()
        })
        .collect();
    svc.rebuild_tables();
    let cfg = Arc::new(Config::new(vec![svc], Sysctl::default()).unwrap());
    let mut s = Shard::<V6>::new(
        ShardParams {
            capacity: 64,
            ..Default::default()
        },
        cfg,
        0,
    );
    let c = |a: &str, p| {
        Packet::tcp(
            V6::from_ip(a.parse().unwrap()).unwrap(),
            p,
            vip,
            80,
            tcp::SYN,
        )
    };
    let a = xmit(s.process(&c("2001:db8:1:2::1", 1000), 0));
    let b = xmit(s.process(&c("2001:db8:1:2:ffff::9", 1000), 1));
    let d = xmit(s.process(&c("2001:db8:1:3::1", 1000), 2));
    assert_eq!(a.daddr, b.daddr);
    assert_ne!(a.daddr, d.daddr);
}

#[test]
fn config_swap_keeps_dest_counters_by_identity() {
    let mut s = shard(
        vec![tcp_svc(
            VIP,
            SchedKind::Wlc,
            vec![dest("10.1.0.1", 1, Fwd::Droute)],
            0,
            32,
        )],
        Sysctl::default(),
        64,
    );
    s.process(&pkt("1.1.1.1", 1, tcp::SYN), 0);
    let more = vec![
        dest("10.1.0.9", 5, Fwd::Droute),
        dest("10.1.0.1", 2, Fwd::Droute),
    ];
    s.set_config(
        Arc::new(
            Config::new(
                vec![tcp_svc(VIP, SchedKind::Wlc, more, 0, 32)],
                Sysctl::default(),
            )
            .unwrap(),
        ),
        1,
    );
    assert_eq!(
        s.dest_counts(key(VIP), v4("10.1.0.1"), 80).unwrap().active,
        1
    );
    assert_eq!(
        s.dest_counts(key(VIP), v4("10.1.0.9"), 80).unwrap(),
        DestCounts::default()
    );
}

#[test]
fn bad_config_is_refused_naming_the_field() {
    let mut svc = tcp_svc(
        VIP,
        SchedKind::Rr,
        vec![
            dest("10.1.0.1", 1, Fwd::Droute),
            dest("10.1.0.1", 1, Fwd::Droute),
        ],
        0,
        32,
    );
    let e = Config::new(vec![svc.clone()], Sysctl::default())
        .err()
        .unwrap();
    assert!(
        e.0.contains("10.1.0.1:80") && e.0.contains("already exists"),
        "{e}"
    );
    svc.dests.truncate(1);
    svc.persistence = Some(Persistence {
        timeout_ms: 1000,
        prefix: 33,
    });
    let e = Config::new(vec![svc], Sysctl::default()).err().unwrap();
    assert!(e.0.contains("netmask"), "{e}");
}

#[test]
fn counters_are_read_from_another_thread_while_the_shard_runs() {
    let mut s = one_dest(Sysctl::default(), 1 << 16);
    let c = s.counters();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (c, stop) = (Arc::clone(&c), Arc::clone(&stop));
        std::thread::spawn(move || {
            // What a scraper sees only grows, and never runs ahead of the writer's total.
            let mut last = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let now = c.conns_created.get();
                assert!(now >= last && now <= 50_000);
                last = now;
            }
            last
        })
    };
    for p in 0..50_000u32 {
        let src = V4(0x0101_0000 + p);
        s.process(&Packet::tcp(src, 1000, v4(VIP), 80, tcp::SYN), 0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = reader.join().unwrap();
    assert!(seen <= 50_000);
    assert_eq!(c.conns_created.get(), 50_000);
    assert_eq!(c.conns_by_state[TcpState::SynRecv as usize].get(), 50_000);
}

#[test]
fn time_running_backwards_neither_hangs_nor_expires_early() {
    let mut s = one_dest(Sysctl::default(), 64);
    let x = xmit(s.process(&pkt("1.1.1.1", 1000, tcp::SYN), 100 * S));
    s.tick(100 * S + 5 * S);
    // A packet and a tick stamped in the past (e.g. an unordered capture).
    s.process(&pkt("1.1.1.1", 1000, tcp::ACK), 50 * S);
    s.tick(50 * S);
    assert!(s.conn(x.conn).is_some());
    // ESTABLISHED by the stale packet: 900 s from its own stamp, 950 s.
    s.tick(949 * S);
    assert!(s.conn(x.conn).is_some());
    s.tick(950 * S);
    assert!(s.conn(x.conn).is_none());
}

#[test]
fn fwmark_rules_give_unmarked_packets_their_mark() {
    use rvs_dataplane::config::FwmarkRule;
    let mut svc = ServiceConfig::new(ServiceKey::Fwmark(3), SchedKind::Rr);
    svc.dests = vec![dest("10.1.0.1", 1, Fwd::Droute)];
    svc.rebuild_tables();
    let rule = FwmarkRule {
        mark: 3,
        proto: Some(Proto::Tcp),
        addr: v4("192.168.100.0"),
        prefix: 24,
        port_lo: 8000,
        port_hi: 8099,
    };
    let cfg = Config::new(vec![svc.clone()], Sysctl::default())
        .unwrap()
        .with_fwmark_rules(vec![rule])
        .unwrap();
    let mut s = Shard::new(
        ShardParams {
            capacity: 16,
            ..Default::default()
        },
        Arc::new(cfg),
        0,
    );
    let to = |port| Packet::tcp(v4("1.1.1.1"), 1000, v4("192.168.100.7"), port, tcp::SYN);
    assert_eq!(xmit(s.process(&to(8042), 0)).daddr, v4("10.1.0.1"));
    assert_eq!(s.process(&to(9000), 0), Verdict::NotOurs);
    let bad = FwmarkRule { mark: 4, ..rule };
    let e = Config::new(vec![svc], Sysctl::default())
        .unwrap()
        .with_fwmark_rules(vec![bad])
        .err()
        .unwrap();
    assert!(e.0.contains("no fwmark service 4"), "{e}");
}

#[test]
fn quiescing_a_dest_keeps_the_maglev_table_unchanged() {
    let ds = |w3| {
        vec![
            dest("10.1.0.1", 1, Fwd::Droute),
            dest("10.1.0.2", 1, Fwd::Droute),
            dest("10.1.0.3", w3, Fwd::Droute),
        ]
    };
    let mut svc = tcp_svc(VIP, SchedKind::Mh, ds(1), 0, 32);
    let before = svc.tables.mh_lookup().to_vec();
    assert_eq!(before.len(), 65521);
    // Weight 0 keeps the dest in the table (its last weight): it is skipped at lookup only,
    // so no client of another dest moves.
    svc.dests = ds(0);
    svc.rebuild_tables();
    assert_eq!(svc.tables.mh_lookup(), &before[..]);
    // Removing it does reshuffle (Maglev's minimal disruption, not none).
    svc.dests.truncate(2);
    svc.rebuild_tables();
    assert_ne!(svc.tables.mh_lookup(), &before[..]);
}

#[test]
fn a_service_shared_by_the_next_snapshot_keeps_its_rr_position_and_counts() {
    let rr = Arc::new(tcp_svc(
        VIP,
        SchedKind::Rr,
        vec![
            dest("10.1.0.1", 1, Fwd::Droute),
            dest("10.1.0.2", 1, Fwd::Droute),
            dest("10.1.0.3", 1, Fwd::Droute),
        ],
        0,
        32,
    ));
    let other = |w: i32| {
        Arc::new(tcp_svc(
            "192.168.100.2",
            SchedKind::Wlc,
            vec![dest("10.2.0.1", w, Fwd::Droute)],
            0,
            32,
        ))
    };
    let cfg = |svcs: Vec<Arc<ServiceConfig<V4>>>| {
        Arc::new(Config::from_checked(svcs, Sysctl::default()).unwrap())
    };
    let mut s = Shard::new(
        ShardParams {
            capacity: 64,
            seed: 9,
            ..Default::default()
        },
        cfg(vec![Arc::clone(&rr), other(1)]),
        0,
    );
    let first: Vec<V4> = (0..2)
        .map(|i| xmit(s.process(&pkt("1.1.1.1", 100 + i, tcp::SYN), 0)).daddr)
        .collect();
    // The other service is edited (a new Arc) and now comes first; the rr service is shared.
    s.set_config(cfg(vec![other(7), Arc::clone(&rr)]), 1);
    let next = xmit(s.process(&pkt("1.1.1.1", 200, tcp::SYN), 1)).daddr;
    assert!(
        !first.contains(&next),
        "rr went on where it was ({first:?} then {next:?}), not from the start"
    );
    let active: u32 = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
        .iter()
        .map(|d| s.dest_counts(key(VIP), v4(d), 80).unwrap().active)
        .sum();
    assert_eq!(active, 3, "the shared service's dests kept their conns");
    // The edited service's dest is scheduled with its new config.
    let x = s.process(
        &Packet::tcp(v4("1.1.1.2"), 1, v4("192.168.100.2"), 80, tcp::SYN),
        2,
    );
    assert_eq!(xmit(x).daddr, v4("10.2.0.1"));
}

/// A swap rebuilds only the services it changed, whether they stay in place (a `-e`: the
/// others are not touched) or move (a service deleted before them): an untouched service's
/// round-robin position and its conns survive either way, and a changed one's dests keep
/// their counts.
#[test]
fn a_swap_rebuilds_only_what_changed_in_place_or_moved() {
    const A: &str = "192.168.100.1";
    const B: &str = "192.168.100.2";
    let rr = |vip: &str, w: i32, d: [&str; 3]| {
        Arc::new(tcp_svc(
            vip,
            SchedKind::Rr,
            d.iter().map(|a| dest(a, w, Fwd::Droute)).collect(),
            0,
            32,
        ))
    };
    let cfg = |svcs: Vec<Arc<ServiceConfig<V4>>>| {
        Arc::new(Config::from_checked(svcs, Sysctl::default()).unwrap())
    };
    let a = rr(A, 1, ["10.1.0.1", "10.1.0.2", "10.1.0.3"]);
    let b = rr(B, 1, ["10.2.0.1", "10.2.0.2", "10.2.0.3"]);
    let mut s = Shard::new(
        ShardParams {
            capacity: 64,
            seed: 9,
            ..Default::default()
        },
        cfg(vec![Arc::clone(&a), Arc::clone(&b)]),
        0,
    );
    let syn = |s: &mut Shard<V4>, vip: &str, port: u16, now: u64| {
        xmit(s.process(
            &Packet::tcp(v4("1.1.1.1"), port, v4(vip), 80, tcp::SYN),
            now,
        ))
        .daddr
    };
    // B's scheduler: two SYNs to two of its dests (a rebuilt scheduler would start again at
    // the first).
    let picks: Vec<V4> = (0..2).map(|i| syn(&mut s, B, 1000 + i, 0)).collect();
    assert_eq!(syn(&mut s, A, 2000, 0), v4("10.1.0.1"));
    let counts_a1 = s.dest_counts(key(A), v4("10.1.0.1"), 80).unwrap();
    // In place: A edited (weights), B the same Arc at the same place.
    let a2 = rr(A, 2, ["10.1.0.1", "10.1.0.2", "10.1.0.3"]);
    s.set_config(cfg(vec![Arc::clone(&a2), Arc::clone(&b)]), 1);
    let third = syn(&mut s, B, 1002, 1);
    assert!(!picks.contains(&third), "B's position survives A's edit");
    assert_eq!(
        s.dest_counts(key(A), v4("10.1.0.1"), 80).unwrap(),
        counts_a1,
        "A's dests keep their counts"
    );
    assert_eq!(syn(&mut s, B, 1003, 1), picks[0]);
    // Moved: A deleted, so B goes from the second place to the first.
    s.set_config(cfg(vec![Arc::clone(&b)]), 2);
    assert_eq!(
        syn(&mut s, B, 1004, 2),
        picks[1],
        "B's position survives a move"
    );
    // B's conns still go where they went.
    let again = xmit(s.process(&Packet::tcp(v4("1.1.1.1"), 1000, v4(B), 80, tcp::ACK), 3));
    assert_eq!(again.daddr, picks[0]);
    // A's dest with a conn was removed: detached, still counting it (IPVS's trash).
    assert_eq!(s.dest_counts(key(A), v4("10.1.0.1"), 80), Some(counts_a1));
    // B edited in place beside a new service: both built, B's dests keep their counts.
    let b2 = rr(B, 3, ["10.2.0.1", "10.2.0.2", "10.2.0.3"]);
    let before = s.dest_counts(key(B), picks[0], 80).unwrap();
    s.set_config(
        cfg(vec![
            Arc::clone(&b2),
            rr(A, 1, ["10.1.0.7", "10.1.0.8", "10.1.0.9"]),
        ]),
        4,
    );
    assert_eq!(s.dest_counts(key(B), picks[0], 80).unwrap(), before);
    assert!(s.dest_counts(key(A), v4("10.1.0.7"), 80).is_some());
}

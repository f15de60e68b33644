//! The exception path under floods, on real frames through a worker in virtual time: the
//! budget's classes (peers and neighbor answers always pass, a random-source SYN flood does
//! not starve a management client that retransmits as Linux does, echo is answered in place),
//! and floods toward next hops that never answer (held frames and solicitations bounded,
//! counted, and the service to a live dest untouched).

use std::net::Ipv4Addr;
use std::sync::Arc;

use etherparse::PacketBuilder;
use rvs_dataplane::addr::{V4, V6};
use rvs_dataplane::config::{Config, DestConfig, Fwd, ServiceConfig, ServiceKey, Sysctl};
use rvs_dataplane::l3::Route;
use rvs_dataplane::pipeline::buf::VecBuf;
use rvs_dataplane::pipeline::exception::{Class, ExceptionConfig};
use rvs_dataplane::pipeline::worker::{Out, PathDrop, PortInfo, Presence, Worker};
use rvs_dataplane::proto::Proto;
use rvs_dataplane::rng::Rng;
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::shard::ShardParams;

const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc1];
const RS1_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
const ME: [u8; 4] = [10, 0, 0, 1];
const PEER: [u8; 4] = [10, 0, 0, 2];
const GW: [u8; 4] = [10, 0, 0, 254];
const RS1: [u8; 4] = [10, 0, 0, 11];
const VIP: [u8; 4] = [10, 0, 0, 100];
const VIP2: [u8; 4] = [10, 0, 0, 102];
const ADMIN: [u8; 4] = [192, 0, 2, 50];

fn v4(a: [u8; 4]) -> V4 {
    V4(u32::from(Ipv4Addr::from(a)))
}

fn presence(budget_pps: u32) -> Arc<Presence> {
    let port = PortInfo {
        name: "p0".into(),
        mac: LB_MAC,
        // A /16: room for more on-link clients than the neighbor table holds frames for.
        addrs4: vec![(v4(ME), 16)],
        addrs6: vec![],
        mtu: 1500,
        tx_offload: Default::default(),
    };
    let default = (
        V4(0),
        0,
        Route {
            port: 0,
            via: Some(v4(GW)),
        },
    );
    let cfg = ExceptionConfig {
        budget_pps,
        peers: vec![Ipv4Addr::from(PEER).into(), "fd00::2".parse().unwrap()],
    };
    Arc::new(
        Presence::new(
            vec![port],
            &[default],
            &[],
            vec![(v4(RS1), RS1_MAC, 0), (v4(GW), [2, 0, 0, 0, 0, 0xfe], 0)],
            vec![],
        )
        .unwrap()
        .with_exception(cfg),
    )
}

/// TCP services: VIP:80 to RS1 with `fwd`; VIP2:80 NAT to two dests nobody answers ARP for.
fn services(fwd: Fwd) -> Config<V4> {
    let svc = |vip: [u8; 4], dests: &[[u8; 4]], fwd: Fwd| {
        let mut s = ServiceConfig::new(
            ServiceKey::Addr {
                proto: Proto::Tcp,
                vaddr: v4(vip),
                vport: 80,
            },
            SchedKind::Rr,
        );
        s.dests = dests
            .iter()
            .map(|&d| DestConfig {
                addr: v4(d),
                port: 80,
                weight: 1,
                fwd,
                ..Default::default()
            })
            .collect();
        s.rebuild_tables();
        s
    };
    Config::new(
        vec![
            svc(VIP, &[RS1], fwd),
            svc(VIP2, &[[10, 0, 0, 21], [10, 0, 0, 22]], Fwd::Masq),
        ],
        Sysctl::default(),
    )
    .unwrap()
}

fn worker(budget_pps: u32, fwd: Fwd) -> Worker<VecBuf> {
    Worker::new(
        0,
        1,
        ShardParams {
            capacity: 1 << 16,
            ..Default::default()
        },
        (Arc::new(services(fwd)), Arc::new(Config::<V6>::default())),
        presence(budget_pps),
        Box::new(|| Some(VecBuf::empty())),
        0,
    )
}

#[derive(Clone, Copy)]
enum Seg {
    Syn(u32),
    SynAck,
    Ack,
}

fn tcp(src_mac: [u8; 6], src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, seg: Seg) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, LB_MAC)
        .ipv4(src, dst, 64)
        .tcp(
            sport,
            dport,
            if let Seg::Syn(s) = seg { s } else { 1 },
            64240,
        );
    let b = match seg {
        Seg::Syn(_) => b.syn(),
        Seg::SynAck => b.syn().ack(1),
        Seg::Ack => b.ack(1),
    };
    let mut v = Vec::new();
    b.write(&mut v, b"").unwrap();
    v
}

fn echo(src: [u8; 4]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4(src, ME, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut v, b"ping")
        .unwrap();
    v
}

/// What one frame became.
#[derive(Debug, Default)]
struct Fate {
    tx: usize,
    kernel: usize,
    dropped: usize,
}

fn rx(w: &mut Worker<VecBuf>, frame: &[u8], now: u64) -> Fate {
    let mut f = Fate::default();
    w.rx(0, VecBuf::from_frame(frame), now, &mut |o| match o {
        Out::Tx { .. } => f.tx += 1,
        Out::Kernel { .. } => f.kernel += 1,
        Out::Drop(_) => f.dropped += 1,
        Out::Handoff { .. } => panic!("one worker hands nothing off"),
    });
    f
}

/// 20 s of a flood at the appliance's address, 10 times its budget of 1000 frames/s: random
/// source SYNs (80 times the SYN share) and echo requests from random sources. Meanwhile the
/// BGP peer's keepalives, a management client connecting twice a second (retransmitting its
/// SYN after 1 s and 3 s, as Linux does, within a 5 s connect timeout), and clients of the
/// VIP.
#[test]
fn a_flood_at_the_appliance_leaves_peers_management_and_the_vip_alone() {
    let mut w = worker(1000, Fwd::Droute);
    let mut rng = Rng::new(11);
    let (mut bgp_sent, mut bgp_in) = (0, 0);
    let (mut vip_sent, mut vip_fwd) = (0, 0);
    let (mut echoes, mut echo_replies) = (0, 0);
    // Per management connect: its start, and when its SYN got in.
    let mut admin: Vec<(u64, Option<u64>)> = Vec::new();
    let (mut admin_rest_lost, mut admin_syns) = (0, 0u64);
    for now in 1..=20_000u64 {
        for _ in 0..8 {
            let r = rng.next_u64();
            let syn = tcp(
                CLIENT_MAC,
                (r as u32).to_be_bytes(),
                (r >> 32) as u16,
                ME,
                22,
                Seg::Syn((r >> 16) as u32),
            );
            rx(&mut w, &syn, now);
        }
        for _ in 0..2 {
            echoes += 1;
            echo_replies += rx(&mut w, &echo(rng.next_u32().to_be_bytes()), now).tx;
        }
        if now % 1000 == 0 {
            bgp_sent += 1;
            bgp_in += rx(&mut w, &tcp(PEER_MAC, PEER, 179, ME, 40179, Seg::Ack), now).kernel;
        }
        if now % 4 == 0 {
            let c = [198, 51, 100, (now / 4 % 200) as u8];
            vip_sent += 1;
            vip_fwd += rx(
                &mut w,
                &tcp(CLIENT_MAC, c, 30000, VIP, 80, Seg::Syn(9)),
                now,
            )
            .tx;
        }
        if now % 500 == 0 && now <= 15_000 {
            admin.push((now, None));
        }
        for (i, (start, got)) in admin.iter_mut().enumerate() {
            let t = now - *start;
            if got.is_some() || !(t == 0 || t == 1000 || t == 3000) {
                continue;
            }
            let port = 50000 + i as u16;
            let syn = tcp(CLIENT_MAC, ADMIN, port, ME, 22, Seg::Syn(7000 + i as u32));
            admin_syns += 1;
            let k = rx(&mut w, &syn, now).kernel;
            if k == 1 {
                *got = Some(t);
                // The kernel's SYN-ACK went out; the client's ACK, its request and its FIN.
                for _ in 0..3 {
                    let seg = tcp(CLIENT_MAC, ADMIN, port, ME, 22, Seg::Ack);
                    admin_rest_lost += 1 - rx(&mut w, &seg, now).kernel;
                }
            }
        }
        w.tick(now, &mut |_| {});
    }
    let c = w.counters();
    let ok = admin.iter().filter(|(_, g)| g.is_some()).count();
    let first = admin.iter().filter(|(_, g)| *g == Some(0)).count();
    eprintln!(
        "management: {ok}/{} connected ({first} with their first SYN); passed: {}",
        admin.len(),
        Class::ALL
            .iter()
            .map(|&k| format!("{}={}", k.name(), c.passed_of(k)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(
        bgp_in, bgp_sent,
        "every BGP segment of the peer reaches the kernel"
    );
    assert!(
        ok * 100 >= admin.len() * 95,
        "management connects: {ok}/{}",
        admin.len()
    );
    assert_eq!(
        admin_rest_lost, 0,
        "a connect's later segments are never lost"
    );
    assert_eq!(vip_fwd, vip_sent, "the VIP keeps forwarding");
    assert_eq!(
        echo_replies, echoes,
        "echo is answered in place, never metered"
    );
    // The kernel got the budget's worth at most: 1000/s for 20 s, plus the full buckets at
    // the start (64 frames each), plus the peer's.
    let kernel = c.kernel.get();
    assert!(
        kernel <= 20 * 1000 + 4 * 64 + bgp_sent as u64,
        "to the kernel: {kernel}"
    );
    let passed: u64 = Class::ALL.iter().map(|&k| c.passed_of(k)).sum();
    assert_eq!(
        passed, kernel,
        "every frame to the kernel counted in its class"
    );
    assert_eq!(c.passed_of(Class::Peer), bgp_sent as u64);
    // The flood's SYNs got their share (125/s) and no more; the rest were dropped, counted.
    let syn = c.passed_of(Class::Syn);
    assert!((2400..=2500 + 64).contains(&syn), "SYNs passed: {syn}");
    let syns = c.drops_of(PathDrop::ExceptionSyn)
        + c.drops_of(PathDrop::ExceptionSynRetry)
        + syn
        + c.passed_of(Class::SynRetry);
    assert_eq!(syns, 20_000 * 8 + admin_syns);
}

fn icmp_unreachable(to: [u8; 4], quoted_src: [u8; 4], quoted_dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut quoted = Vec::new();
    PacketBuilder::ipv4(quoted_src, quoted_dst, 64)
        .tcp(40179, dport, 1, 64240)
        .syn()
        .write(&mut quoted, b"")
        .unwrap();
    let mut v = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, LB_MAC)
        .ipv4(PEER, to, 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Host,
        ))
        .write(&mut v, &quoted)
        .unwrap();
    v
}

/// An ICMP error about none of rvs's conns, addressed to the appliance itself, is about the
/// kernel's own connection (a BGP session, a health check): it goes to the kernel, metered
/// like the rest (here from the peer: never refused). Elsewhere it is dropped as before.
#[test]
fn icmp_errors_about_the_kernels_own_connections_reach_it() {
    let mut w = worker(1000, Fwd::Droute);
    let f = rx(&mut w, &icmp_unreachable(ME, ME, [192, 0, 2, 9], 179), 1);
    assert_eq!((f.kernel, f.dropped), (1, 0));
    assert_eq!(w.counters().passed_of(Class::Peer), 1);
    let f = rx(&mut w, &icmp_unreachable(VIP, VIP, [192, 0, 2, 9], 443), 1);
    assert_eq!((f.kernel, f.dropped), (0, 1));
    assert_eq!(w.counters().drops_of(PathDrop::IcmpUnknownFlow), 1);
}

/// A flood toward a NAT service whose dests never answer ARP: each dead next hop holds at
/// most 3 frames and is solicited about once a second (3 tries a second apart, then it fails
/// and the next frame starts again, as Linux's FAILED entry does); everything is counted,
/// and the VIP with a live dest keeps forwarding every frame.
#[test]
fn a_flood_toward_next_hops_that_never_answer_stays_bounded_and_counted() {
    let mut w = worker(1000, Fwd::Droute);
    let mut rng = Rng::new(5);
    let (mut flood, mut vip_sent, mut vip_fwd, mut max_held) = (0u64, 0, 0, 0);
    for now in 1..=10_000u64 {
        for _ in 0..2 {
            let r = rng.next_u64();
            flood += 1;
            let syn = tcp(
                CLIENT_MAC,
                (r as u32).to_be_bytes(),
                (r >> 32) as u16,
                VIP2,
                80,
                Seg::Syn(1),
            );
            let f = rx(&mut w, &syn, now);
            assert_eq!(f.kernel, 0);
        }
        if now % 4 == 0 {
            vip_sent += 1;
            let c = [198, 51, 100, (now / 4 % 250) as u8];
            vip_fwd += rx(
                &mut w,
                &tcp(CLIENT_MAC, c, 30000, VIP, 80, Seg::Syn(9)),
                now,
            )
            .tx;
        }
        w.tick(now, &mut |_| {});
        max_held = max_held.max(w.counters().neigh_held.get());
    }
    let c = w.counters();
    let solicits = c.solicits.get();
    let held = c.neigh_held.get();
    let (qfull, failed) = (
        c.drops_of(PathDrop::NeighQueueFull),
        c.drops_of(PathDrop::NeighFailed),
    );
    eprintln!(
        "dead next hops: {flood} frames: {qfull} over a hold queue, {failed} held and failed, \
         {held} held now (at most {max_held}); {solicits} solicitations in 10 s"
    );
    assert_eq!(vip_fwd, vip_sent, "the live VIP forwards every frame");
    assert!(
        max_held <= 6,
        "held at most 3 per dead next hop: {max_held}"
    );
    // 3 solicitations per 3 s cycle per dead next hop: 10 in 10 s each, give or take one.
    assert!((18..=22).contains(&solicits), "solicitations: {solicits}");
    assert_eq!(qfull + failed + held, flood, "every frame counted");
    assert_eq!(failed % 3, 0, "a failing entry drops its 3 held frames");
}

/// NAT replies to on-link clients nobody answers ARP for (a SYN flood from made-up addresses
/// of the port's subnet, which the dest answers): every client is a new unresolved next hop,
/// and the table holds at most `held_max` (512) frames in all, not 3 per entry of its 1024,
/// so the mbufs it pins stay within what the pool spares for frames in flight.
#[test]
fn nat_replies_to_made_up_on_link_clients_hold_at_most_the_tables_limit() {
    let mut w = worker(1000, Fwd::Masq);
    for i in 0..2000u32 {
        let client = [10, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8];
        let f = rx(
            &mut w,
            &tcp(CLIENT_MAC, client, 40000, VIP, 80, Seg::Syn(1)),
            1,
        );
        assert_eq!(f.tx, 1, "the SYN goes to the dest");
        // The dest's SYN-ACK, back to the client: its MAC is unknown.
        rx(
            &mut w,
            &tcp(RS1_MAC, RS1, 80, client, 40000, Seg::SynAck),
            2,
        );
    }
    let c = w.counters();
    assert_eq!(c.neigh_held.get(), 512);
    assert_eq!(c.drops_of(PathDrop::NeighHeldFull), 2000 - 512);
    assert_eq!(
        c.solicits.get(),
        512,
        "no entry, no solicitation past the limit"
    );
    for now in [1002, 2002, 3002] {
        w.tick(now, &mut |_| {});
    }
    assert_eq!(c.neigh_held.get(), 0);
    assert_eq!(c.drops_of(PathDrop::NeighFailed), 512);
}

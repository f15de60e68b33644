//! Property tests of the wire module as a whole:
//!
//! - frames built by `etherparse` (random MACs, 0-2 VLAN tags, IPv4 with options and
//!   fragments or IPv6 with extension headers, TCP/UDP/ICMP echo, random payload) read back
//!   field for field by our views and `parse_frame`, and our checksums equal etherparse's;
//! - RFC 1624 incremental updates equal a full recomputation for random rewrites of
//!   addresses and ports, the 0x0000/0xffff corners and UDP's zero rule included;
//! - the fast path's `classify4`, whenever it accepts a frame (built or mangled), agrees
//!   with `parse_frame` field for field, and accepts every plain TCP/UDP IPv4 frame;
//! - `parse_frame` and every checked view with all its accessors never panic on arbitrary
//!   bytes, truncations or byte flips of valid frames.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse as ep;
use proptest::collection::vec;
use proptest::prelude::*;

use super::checksum;
use super::*;

// ---------------------------------------------------------------------------------------
// Random frames, built by etherparse.

#[derive(Debug, Clone)]
struct Vlan {
    vid: u16,
    pcp: u8,
    dei: bool,
}

#[derive(Debug, Clone)]
struct V4 {
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    ident: u16,
    dscp: u8,
    ecn: u8,
    df: bool,
    options: Vec<u8>,
    /// Fragment offset in 8-byte units and the MF flag.
    frag: Option<(u16, bool)>,
}

#[derive(Debug, Clone)]
struct V6 {
    src: [u8; 16],
    dst: [u8; 16],
    hop_limit: u8,
    traffic_class: u8,
    flow_label: u32,
    hop_by_hop: Option<Vec<u8>>,
    dst_opts: Option<Vec<u8>>,
    routing: Option<Vec<u8>>,
    /// Offset in 8-byte units, M flag, identification.
    frag: Option<(u16, bool, u32)>,
    /// SPI, sequence number, ICV.
    auth: Option<(u32, u32, Vec<u8>)>,
}

#[derive(Debug, Clone)]
enum L3 {
    V4(V4),
    V6(V6),
}

#[derive(Debug, Clone)]
enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        ns: bool,
        window: u16,
        urgent: u16,
        options: Vec<u8>,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Echo {
        request: bool,
        id: u16,
        seq: u16,
    },
}

#[derive(Debug, Clone)]
struct Spec {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    vlans: Vec<Vlan>,
    l3: L3,
    l4: L4,
    payload: Vec<u8>,
}

fn words(max_words: usize) -> impl Strategy<Value = Vec<u8>> {
    (0..=max_words).prop_flat_map(|n| vec(any::<u8>(), n * 4))
}

/// An IPv6 generic extension header body: 6 + 8k bytes.
fn ext_body() -> impl Strategy<Value = Vec<u8>> {
    (0usize..3).prop_flat_map(|k| vec(any::<u8>(), 6 + 8 * k))
}

fn vlan() -> impl Strategy<Value = Vlan> {
    (0u16..4096, 0u8..8, any::<bool>()).prop_map(|(vid, pcp, dei)| Vlan { vid, pcp, dei })
}

fn v4() -> impl Strategy<Value = V4> {
    (
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u8>(),
        any::<u16>(),
        0u8..64,
        0u8..4,
        any::<bool>(),
        words(10),
        prop_oneof![
            4 => Just(None),
            1 => (prop_oneof![Just(0u16), 1u16..0x2000], any::<bool>()).prop_map(Some),
        ],
    )
        .prop_map(|(src, dst, ttl, ident, dscp, ecn, df, options, frag)| V4 {
            src,
            dst,
            ttl,
            ident,
            dscp,
            ecn,
            df,
            options,
            frag,
        })
}

fn v6() -> impl Strategy<Value = V6> {
    (
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            any::<u8>(),
            0u32..0x10_0000,
        ),
        proptest::option::of(ext_body()),
        proptest::option::of(ext_body()),
        proptest::option::of(ext_body()),
        proptest::option::weighted(
            0.3,
            (
                prop_oneof![Just(0u16), 1u16..0x2000],
                any::<bool>(),
                any::<u32>(),
            ),
        ),
        proptest::option::weighted(0.3, (any::<u32>(), any::<u32>(), words(4))),
    )
        .prop_map(
            |((src, dst, hop_limit, traffic_class, flow_label), hbh, dsto, rt, frag, auth)| V6 {
                src,
                dst,
                hop_limit,
                traffic_class,
                flow_label,
                hop_by_hop: hbh,
                dst_opts: dsto,
                routing: rt,
                frag,
                auth,
            },
        )
}

fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (
            (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()),
            (any::<u8>(), any::<bool>(), any::<u16>(), any::<u16>()),
            words(10),
        )
            .prop_map(
                |((sport, dport, seq, ack), (flags, ns, window, urgent), options)| L4::Tcp {
                    sport,
                    dport,
                    seq,
                    ack,
                    flags,
                    ns,
                    window,
                    urgent,
                    options,
                }
            ),
        (any::<u16>(), any::<u16>()).prop_map(|(sport, dport)| L4::Udp { sport, dport }),
        (any::<bool>(), any::<u16>(), any::<u16>()).prop_map(|(request, id, seq)| L4::Echo {
            request,
            id,
            seq
        }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        vec(vlan(), 0..=2),
        prop_oneof![v4().prop_map(L3::V4), v6().prop_map(L3::V6)],
        l4(),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(|(src_mac, dst_mac, vlans, l3, l4, payload)| Spec {
            src_mac,
            dst_mac,
            vlans,
            l3,
            l4,
            payload,
        })
}

fn ep_vlan(v: &Vlan) -> ep::SingleVlanHeader {
    ep::SingleVlanHeader {
        pcp: ep::VlanPcp::try_new(v.pcp).unwrap(),
        drop_eligible_indicator: v.dei,
        vlan_id: ep::VlanId::try_new(v.vid).unwrap(),
        ether_type: ep::EtherType(0),
    }
}

fn ep_ip(l3: &L3) -> ep::IpHeaders {
    match l3 {
        L3::V4(v) => {
            let mut h = ep::Ipv4Header::new(0, v.ttl, ep::IpNumber(0), v.src, v.dst).unwrap();
            h.dscp = ep::IpDscp::try_new(v.dscp).unwrap();
            h.ecn = ep::IpEcn::try_new(v.ecn).unwrap();
            h.identification = v.ident;
            h.dont_fragment = v.df;
            if let Some((off, mf)) = v.frag {
                h.fragment_offset = ep::IpFragOffset::try_new(off).unwrap();
                h.more_fragments = mf;
            }
            h.options = ep::Ipv4Options::try_from(&v.options[..]).unwrap();
            ep::IpHeaders::Ipv4(h, Default::default())
        }
        L3::V6(v) => {
            let h = ep::Ipv6Header {
                traffic_class: v.traffic_class,
                flow_label: ep::Ipv6FlowLabel::try_new(v.flow_label).unwrap(),
                payload_length: 0,
                next_header: ep::IpNumber(0),
                hop_limit: v.hop_limit,
                source: v.src,
                destination: v.dst,
            };
            let raw = |b: &Vec<u8>| ep::Ipv6RawExtHeader::new_raw(ep::IpNumber(0), b).unwrap();
            let exts = ep::Ipv6Extensions {
                hop_by_hop_options: v.hop_by_hop.as_ref().map(raw),
                destination_options: v.dst_opts.as_ref().map(raw),
                routing: v.routing.as_ref().map(|r| ep::Ipv6RoutingExtensions {
                    routing: raw(r),
                    final_destination_options: None,
                }),
                fragment: v.frag.map(|(off, m, id)| {
                    ep::Ipv6FragmentHeader::new(
                        ep::IpNumber(0),
                        ep::IpFragOffset::try_new(off).unwrap(),
                        m,
                        id,
                    )
                }),
                auth: v.auth.as_ref().map(|(spi, seq, icv)| {
                    ep::IpAuthHeader::new(ep::IpNumber(0), *spi, *seq, icv).unwrap()
                }),
            };
            ep::IpHeaders::Ipv6(h, exts)
        }
    }
}

fn build(s: &Spec) -> Vec<u8> {
    let eth = ep::PacketBuilder::ethernet2(s.src_mac, s.dst_mac);
    let ip = ep_ip(&s.l3);
    let step = match &s.vlans[..] {
        [] => eth.ip(ip),
        [one] => eth.vlan(ep::VlanHeader::Single(ep_vlan(one))).ip(ip),
        [outer, inner, ..] => eth
            .vlan(ep::VlanHeader::Double(ep::DoubleVlanHeader {
                outer: ep_vlan(outer),
                inner: ep_vlan(inner),
            }))
            .ip(ip),
    };
    let mut out = Vec::new();
    match (&s.l4, &s.l3) {
        (
            L4::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                ns,
                window,
                urgent,
                options,
            },
            _,
        ) => {
            let mut t = ep::TcpHeader::new(*sport, *dport, *seq, *window);
            t.acknowledgment_number = *ack;
            t.fin = flags & 0x01 != 0;
            t.syn = flags & 0x02 != 0;
            t.rst = flags & 0x04 != 0;
            t.psh = flags & 0x08 != 0;
            t.ack = flags & 0x10 != 0;
            t.urg = flags & 0x20 != 0;
            t.ece = flags & 0x40 != 0;
            t.cwr = flags & 0x80 != 0;
            t.ns = *ns;
            t.urgent_pointer = *urgent;
            t.set_options_raw(options).unwrap();
            step.tcp_header(t).write(&mut out, &s.payload).unwrap();
        }
        (L4::Udp { sport, dport }, _) => step
            .udp(*sport, *dport)
            .write(&mut out, &s.payload)
            .unwrap(),
        (L4::Echo { request, id, seq }, L3::V4(_)) => {
            let b = if *request {
                step.icmpv4_echo_request(*id, *seq)
            } else {
                step.icmpv4_echo_reply(*id, *seq)
            };
            b.write(&mut out, &s.payload).unwrap()
        }
        (L4::Echo { request, id, seq }, L3::V6(_)) => {
            let b = if *request {
                step.icmpv6_echo_request(*id, *seq)
            } else {
                step.icmpv6_echo_reply(*id, *seq)
            };
            b.write(&mut out, &s.payload).unwrap()
        }
    }
    out
}

fn l4_header_len(l4: &L4) -> usize {
    match l4 {
        L4::Tcp { options, .. } => 20 + options.len(),
        L4::Udp { .. } | L4::Echo { .. } => 8,
    }
}

/// Read a built frame back with our views and `parse_frame` and compare with the spec and
/// with etherparse's own reading.
fn check_frame(s: &Spec, bytes: &[u8]) -> Result<(), TestCaseError> {
    let f = parse_frame(bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(f.src_mac, MacAddr(s.src_mac));
    prop_assert_eq!(f.dst_mac, MacAddr(s.dst_mac));
    prop_assert_eq!(usize::from(f.vlan.count), s.vlans.len());
    for (i, v) in s.vlans.iter().enumerate() {
        let tci = (u16::from(v.pcp) << 13) | (u16::from(v.dei) << 12) | v.vid;
        prop_assert_eq!(f.vlan.tci[i], tci);
        prop_assert_eq!(f.vlan.vid(i), Some(v.vid));
        prop_assert_eq!(f.vlan.pcp(i), Some(v.pcp));
    }
    let ep_vids: Vec<u16> = ep::SlicedPacket::from_ethernet(bytes)
        .map(|p| p.vlan_ids().iter().map(|v| v.value()).collect())
        .unwrap_or_default();
    let our_vids: Vec<u16> = (0..2).filter_map(|i| f.vlan.vid(i)).collect();
    prop_assert_eq!(our_vids, ep_vids);
    let l3_offset = 14 + 4 * s.vlans.len();
    prop_assert_eq!(f.l3_offset, l3_offset);
    let ip = f.ip.ok_or_else(|| TestCaseError::fail("no IP summary"))?;

    let l4_len = l4_header_len(&s.l4) + s.payload.len();
    let l4_offset = bytes.len() - l4_len;
    let l4_bytes = &bytes[l4_offset..];

    // Where etherparse says the IP payload starts, and with which protocol.
    let ep_payload = match ep::SlicedPacket::from_ethernet(bytes).map(|p| p.net) {
        Ok(Some(ep::NetSlice::Ipv4(s))) => Some(s.payload().clone()),
        Ok(Some(ep::NetSlice::Ipv6(s))) => Some(s.payload().clone()),
        _ => None,
    };
    let ep_payload = ep_payload.ok_or_else(|| TestCaseError::fail("etherparse failed"))?;
    let ep_offset = ep_payload.payload.as_ptr() as usize - bytes.as_ptr() as usize;

    let (non_first, expect_protocol) = match &s.l3 {
        L3::V4(v) => {
            prop_assert_eq!(f.ethertype, EtherType::IPV4);
            prop_assert_eq!(ip.version, IpVersion::V4);
            prop_assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::from(v.src)));
            prop_assert_eq!(ip.dst, IpAddr::V4(Ipv4Addr::from(v.dst)));
            prop_assert_eq!(ip.ttl, v.ttl);
            prop_assert_eq!(ip.ip_len, bytes.len() - l3_offset);
            let p = Ipv4Packet::new_checked(&bytes[l3_offset..])
                .map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(p.version(), 4);
            prop_assert_eq!(p.header_len(), 20 + v.options.len());
            prop_assert_eq!(p.options(), &v.options[..]);
            prop_assert_eq!((p.dscp(), p.ecn()), (v.dscp, v.ecn));
            prop_assert_eq!(p.ident(), v.ident);
            prop_assert_eq!(p.dont_frag(), v.df);
            let (off, mf) = v.frag.unwrap_or((0, false));
            prop_assert_eq!(p.frag_offset(), off << 3);
            prop_assert_eq!(p.more_frags(), mf);
            prop_assert_eq!(p.is_fragment(), off != 0 || mf);
            prop_assert_eq!(p.is_first_fragment(), off == 0 && mf);
            prop_assert_eq!(
                ip.fragment,
                (off != 0 || mf).then_some(Fragment {
                    ident: u32::from(v.ident),
                    offset: off << 3,
                    more: mf
                })
            );
            prop_assert!(p.verify_checksum());
            let mut copy = bytes[l3_offset..].to_vec();
            let mut q = Ipv4Packet::new_checked(&mut copy[..]).unwrap();
            q.set_checksum(!p.checksum());
            q.fill_checksum();
            prop_assert_eq!(q.checksum(), p.checksum());
            prop_assert_eq!(p.payload(), l4_bytes);
            prop_assert_eq!(ep_offset, l4_offset);
            (off != 0, ip.protocol)
        }
        L3::V6(v) => {
            prop_assert_eq!(f.ethertype, EtherType::IPV6);
            prop_assert_eq!(ip.version, IpVersion::V6);
            prop_assert_eq!(ip.src, IpAddr::V6(Ipv6Addr::from(v.src)));
            prop_assert_eq!(ip.dst, IpAddr::V6(Ipv6Addr::from(v.dst)));
            prop_assert_eq!(ip.ttl, v.hop_limit);
            prop_assert_eq!(ip.ip_len, bytes.len() - l3_offset);
            let p = Ipv6Packet::new_checked(&bytes[l3_offset..])
                .map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(p.version(), 6);
            prop_assert_eq!(p.traffic_class(), v.traffic_class);
            prop_assert_eq!(p.flow_label(), v.flow_label);
            prop_assert_eq!(usize::from(p.payload_len()), bytes.len() - l3_offset - 40);
            let count = [
                v.hop_by_hop.is_some(),
                v.dst_opts.is_some(),
                v.routing.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count()
                + usize::from(v.frag.is_some())
                + usize::from(v.auth.is_some());
            prop_assert_eq!(
                ip.fragment,
                v.frag.map(|(off, m, id)| Fragment {
                    ident: id,
                    offset: off << 3,
                    more: m
                })
            );
            let non_first = v.frag.is_some_and(|(off, _, _)| off != 0);
            let chain = p.ext_headers().unwrap();
            if non_first {
                // We stop right after the fragment header: an AH after it is not read.
                let auth_len = v.auth.as_ref().map_or(0, |(_, _, icv)| 12 + icv.len());
                prop_assert_eq!(ip.l4_offset, l4_offset - auth_len);
                let expect = if v.auth.is_some() {
                    IpProtocol::AH
                } else {
                    ip.protocol
                };
                prop_assert_eq!(chain.protocol, expect);
                prop_assert_eq!(
                    usize::from(chain.count),
                    count - usize::from(v.auth.is_some())
                );
            } else {
                prop_assert_eq!(usize::from(chain.count), count);
                prop_assert_eq!(ep_offset, l4_offset);
                prop_assert_eq!(ip.protocol.0, ep_payload.ip_number.0);
            }
            (non_first, chain.protocol)
        }
    };
    prop_assert_eq!(ip.protocol, expect_protocol);
    if non_first {
        prop_assert_eq!(ip.l4, L4Summary::NonFirstFragment);
        prop_assert_eq!(f.ports(), None);
        return Ok(());
    }
    prop_assert_eq!(ip.l4_offset, l4_offset);
    prop_assert_eq!(ip.l4_len, l4_len);

    // Checksums: etherparse's verify with our code, and ours equal etherparse's.
    let mut copy = l4_bytes.to_vec();
    match (&s.l4, &s.l3) {
        (
            L4::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                window,
                urgent,
                options,
                ..
            },
            l3,
        ) => {
            prop_assert_eq!(ip.protocol, IpProtocol::TCP);
            prop_assert_eq!(
                ip.l4,
                L4Summary::Tcp {
                    src_port: *sport,
                    dst_port: *dport,
                    flags: TcpFlags(*flags),
                    seq: *seq,
                    ack: *ack
                }
            );
            let t = TcpPacket::new_checked(l4_bytes).unwrap();
            prop_assert_eq!(t.header_len(), 20 + options.len());
            prop_assert_eq!(t.options(), &options[..]);
            prop_assert_eq!((t.window_len(), t.urgent_at()), (*window, *urgent));
            prop_assert_eq!(t.payload(), &s.payload[..]);
            let mut c = TcpPacket::new_checked(&mut copy[..]).unwrap();
            c.set_checksum(0x1234);
            match l3 {
                L3::V4(v) => {
                    let (a, b) = (Ipv4Addr::from(v.src), Ipv4Addr::from(v.dst));
                    prop_assert!(t.verify_checksum_v4(a, b));
                    c.fill_checksum_v4(a, b);
                }
                L3::V6(v) => {
                    let (a, b) = (Ipv6Addr::from(v.src), Ipv6Addr::from(v.dst));
                    prop_assert!(t.verify_checksum_v6(a, b));
                    c.fill_checksum_v6(a, b);
                }
            }
            prop_assert_eq!(c.checksum(), t.checksum());
        }
        (L4::Udp { sport, dport }, l3) => {
            prop_assert_eq!(ip.protocol, IpProtocol::UDP);
            prop_assert_eq!(
                ip.l4,
                L4Summary::Udp {
                    src_port: *sport,
                    dst_port: *dport
                }
            );
            let u = UdpPacket::new_checked(l4_bytes).unwrap();
            prop_assert_eq!(usize::from(u.len()), l4_len);
            prop_assert_eq!(u.payload(), &s.payload[..]);
            prop_assert_ne!(u.checksum(), 0);
            let mut c = UdpPacket::new_checked(&mut copy[..]).unwrap();
            c.set_checksum(0x1234);
            match l3 {
                L3::V4(v) => {
                    let (a, b) = (Ipv4Addr::from(v.src), Ipv4Addr::from(v.dst));
                    prop_assert!(u.verify_checksum_v4(a, b));
                    c.fill_checksum_v4(a, b);
                }
                L3::V6(v) => {
                    let (a, b) = (Ipv6Addr::from(v.src), Ipv6Addr::from(v.dst));
                    prop_assert!(u.verify_checksum_v6(a, b));
                    c.fill_checksum_v6(a, b);
                }
            }
            prop_assert_eq!(c.checksum(), u.checksum());
        }
        (L4::Echo { request, id, seq }, L3::V4(_)) => {
            let L4Summary::Icmp(icmp) = ip.l4 else {
                return Err(TestCaseError::fail("not ICMP"));
            };
            prop_assert_eq!(icmp.msg_type, if *request { 8 } else { 0 });
            prop_assert_eq!((icmp.code, icmp.is_error), (0, false));
            prop_assert_eq!(icmp.echo_ident, Some(*id));
            let p = Icmpv4Packet::new_checked(l4_bytes).unwrap();
            prop_assert_eq!((p.echo_ident(), p.echo_seq_no()), (*id, *seq));
            prop_assert_eq!(p.data(), &s.payload[..]);
            prop_assert!(p.verify_checksum());
            let mut c = Icmpv4Packet::new_checked(&mut copy[..]).unwrap();
            c.fill_checksum();
            prop_assert_eq!(c.checksum(), p.checksum());
        }
        (L4::Echo { request, id, seq }, L3::V6(v)) => {
            let L4Summary::Icmp(icmp) = ip.l4 else {
                return Err(TestCaseError::fail("not ICMPv6"));
            };
            prop_assert_eq!(icmp.msg_type, if *request { 128 } else { 129 });
            prop_assert_eq!((icmp.code, icmp.is_error), (0, false));
            prop_assert_eq!(icmp.echo_ident, Some(*id));
            let p = Icmpv6Packet::new_checked(l4_bytes).unwrap();
            prop_assert_eq!((p.echo_ident(), p.echo_seq_no()), (*id, *seq));
            prop_assert_eq!(p.data(), &s.payload[..]);
            let (a, b) = (Ipv6Addr::from(v.src), Ipv6Addr::from(v.dst));
            prop_assert!(p.verify_checksum(a, b));
            let mut c = Icmpv6Packet::new_checked(&mut copy[..]).unwrap();
            c.fill_checksum(a, b);
            prop_assert_eq!(c.checksum(), p.checksum());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn etherparse_built_frames_read_back_field_for_field(s in spec()) {
        let bytes = build(&s);
        check_frame(&s, &bytes)?;
    }

    #[test]
    fn etherparse_built_frames_survive_padding(s in spec(), pad in 1usize..20) {
        let mut bytes = build(&s);
        let len = bytes.len();
        bytes.resize(len + pad, 0);
        let f = parse_frame(&bytes).unwrap();
        prop_assert_eq!(f.ip.unwrap().ip_len, len - f.l3_offset);
    }

    #[test]
    fn etherparse_built_frames_cut_short_are_truncated(s in spec(), cut in any::<prop::sample::Index>()) {
        let bytes = build(&s);
        let n = cut.index(bytes.len());
        prop_assert_eq!(parse_frame(&bytes[..n]), Err(Error::Truncated));
    }
}

// ---------------------------------------------------------------------------------------
// Incremental checksum updates against full recomputation.

/// An even-length slice that is not all zero, as every real checksummed header is.
fn data() -> impl Strategy<Value = Vec<u8>> {
    (1usize..40)
        .prop_flat_map(|n| vec(any::<u8>(), n * 2))
        .prop_filter("all zero", |d| d.iter().any(|&b| b != 0))
}

fn word(d: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([d[2 * i], d[2 * i + 1]])
}

fn set_word(d: &mut [u8], i: usize, w: u16) {
    d[2 * i..2 * i + 2].copy_from_slice(&w.to_be_bytes())
}

fn full(d: &[u8]) -> u16 {
    checksum::finish(checksum::sum(d))
}

proptest! {
    #[test]
    fn update16_equals_recompute(mut d in data(), i in any::<prop::sample::Index>(), new in any::<u16>()) {
        let i = i.index(d.len() / 2);
        let before = full(&d);
        let old = word(&d, i);
        set_word(&mut d, i, new);
        prop_assume!(d.iter().any(|&b| b != 0));
        prop_assert_eq!(checksum::update16(before, old, new), full(&d));
    }

    #[test]
    fn update16_from_zero_checksum_equals_recompute(
        mut d in data(),
        i in any::<prop::sample::Index>(),
        new in any::<u16>(),
    ) {
        // Force the stored checksum to 0x0000: make the last word complete the sum to 0xffff.
        let n = d.len() / 2;
        set_word(&mut d, n - 1, 0);
        let rest = checksum::sum(&d);
        set_word(&mut d, n - 1, !rest);
        prop_assume!(d.iter().any(|&b| b != 0));
        let before = full(&d);
        prop_assert_eq!(before, 0);
        let i = i.index(n);
        let old = word(&d, i);
        set_word(&mut d, i, new);
        prop_assume!(d.iter().any(|&b| b != 0));
        prop_assert_eq!(checksum::update16(before, old, new), full(&d));
    }

    #[test]
    fn update16_landing_on_zero_checksum_equals_recompute(
        mut d in data(),
        i in any::<prop::sample::Index>(),
    ) {
        // Pick the new word so that the recomputed checksum is 0x0000.
        let i = i.index(d.len() / 2);
        let before = full(&d);
        let old = word(&d, i);
        set_word(&mut d, i, 0);
        let new = !checksum::sum(&d);
        set_word(&mut d, i, new);
        prop_assume!(d.iter().any(|&b| b != 0));
        prop_assert_eq!(full(&d), 0);
        prop_assert_eq!(checksum::update16(before, old, new), 0);
    }

    #[test]
    fn change_of_several_words_equals_recompute(
        mut d in data(),
        i in any::<prop::sample::Index>(),
        j in any::<prop::sample::Index>(),
        new32 in any::<u32>(),
        new16 in any::<u16>(),
    ) {
        // A 32-bit field and another word (an address and a port, as NAT changes them).
        let n = d.len() / 2;
        prop_assume!(n >= 3);
        let i = i.index(n - 1);
        let j = j.index(n);
        prop_assume!(j != i && j != i + 1);
        let before = full(&d);
        let old32 = (u32::from(word(&d, i)) << 16) | u32::from(word(&d, i + 1));
        let old16 = word(&d, j);
        set_word(&mut d, i, (new32 >> 16) as u16);
        set_word(&mut d, i + 1, new32 as u16);
        set_word(&mut d, j, new16);
        prop_assume!(d.iter().any(|&b| b != 0));
        let c = checksum::Change::default().word32(old32, new32).word(old16, new16);
        prop_assert_eq!(c.apply(before), full(&d));
    }

    #[test]
    fn change_applied_at_once_equals_one_by_one(
        csum in prop_oneof![Just(0u16), Just(0xffff), any::<u16>()],
        old32 in any::<u32>(), new32 in any::<u32>(),
        old16 in prop_oneof![Just(0u16), Just(0xffff), any::<u16>()],
        new16 in prop_oneof![Just(0u16), Just(0xffff), any::<u16>()],
    ) {
        let c = checksum::Change::default().word32(old32, new32).word(old16, new16);
        prop_assert_eq!(
            c.apply(csum),
            checksum::update16(checksum::update32(csum, old32, new32), old16, new16)
        );
        prop_assert_eq!(
            c.apply_udp(csum),
            checksum::udp_update16(checksum::udp_update32(csum, old32, new32), old16, new16)
        );
    }

    #[test]
    fn update32_equals_recompute(mut d in data(), i in any::<prop::sample::Index>(), new in any::<u32>()) {
        prop_assume!(d.len() >= 4);
        let i = i.index(d.len() / 2 - 1);
        let before = full(&d);
        let old = (u32::from(word(&d, i)) << 16) | u32::from(word(&d, i + 1));
        set_word(&mut d, i, (new >> 16) as u16);
        set_word(&mut d, i + 1, new as u16);
        prop_assume!(d.iter().any(|&b| b != 0));
        prop_assert_eq!(checksum::update32(before, old, new), full(&d));
    }

    #[test]
    fn update_addr_v6_equals_recompute(
        mut d in data(),
        at in any::<prop::sample::Index>(),
        new in any::<[u8; 16]>(),
    ) {
        let mut d2 = vec![0u8; 16];
        d.append(&mut d2);
        let at = 2 * at.index((d.len() - 16) / 2 + 1);
        let before = full(&d);
        let mut old = [0u8; 16];
        old.copy_from_slice(&d[at..at + 16]);
        d[at..at + 16].copy_from_slice(&new);
        prop_assume!(d.iter().any(|&b| b != 0));
        prop_assert_eq!(checksum::update_addr_v6(before, &old, &new), full(&d));
    }
}

/// A random TCP or UDP packet over IPv4 or IPv6 and a NAT-style rewrite of it.
#[derive(Debug, Clone)]
struct Rewrite {
    v6: bool,
    tcp: bool,
    payload: Vec<u8>,
    /// Make the original checksum 0x0000 (TCP) or the computed-zero 0xffff (UDP).
    start_on_zero: bool,
    /// Pick the new destination port so that the rewritten checksum computes to zero.
    land_on_zero: bool,
    /// Send the UDP packet without checksum (IPv4 only).
    udp_no_checksum: bool,
    new_src4: [u8; 4],
    new_dst4: [u8; 4],
    new_src6: [u8; 16],
    new_dst6: [u8; 16],
    new_sport: u16,
    new_dport: u16,
    rewrite_src: bool,
    rewrite_dst: bool,
}

fn rewrite() -> impl Strategy<Value = Rewrite> {
    (
        (any::<bool>(), any::<bool>(), vec(any::<u8>(), 2..40)),
        (any::<bool>(), any::<bool>(), prop::bool::weighted(0.2)),
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
        ),
        (any::<u16>(), any::<u16>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (v6, tcp, payload),
                (start_on_zero, land_on_zero, udp_no_checksum),
                (new_src4, new_dst4, new_src6, new_dst6),
                (new_sport, new_dport, rewrite_src, rewrite_dst),
            )| Rewrite {
                v6,
                tcp,
                payload,
                start_on_zero,
                land_on_zero,
                udp_no_checksum,
                new_src4,
                new_dst4,
                new_src6,
                new_dst6,
                new_sport,
                new_dport,
                rewrite_src,
                rewrite_dst,
            },
        )
}

/// Pseudo-header addresses of the packet at `bytes` (an IP packet, no Ethernet).
#[derive(Clone, Copy)]
enum Addrs {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// Full recomputation of the L4 checksum in `l4` for `addrs`.
fn l4_full(tcp: bool, addrs: Addrs, l4: &[u8]) -> u16 {
    let mut copy = l4.to_vec();
    if tcp {
        let mut p = TcpPacket::new_checked(&mut copy[..]).unwrap();
        match addrs {
            Addrs::V4(a, b) => p.fill_checksum_v4(a, b),
            Addrs::V6(a, b) => p.fill_checksum_v6(a, b),
        }
        p.checksum()
    } else {
        let mut p = UdpPacket::new_checked(&mut copy[..]).unwrap();
        match addrs {
            Addrs::V4(a, b) => p.fill_checksum_v4(a, b),
            Addrs::V6(a, b) => p.fill_checksum_v6(a, b),
        }
        p.checksum()
    }
}

fn l4_checksum_offset(tcp: bool) -> usize {
    if tcp {
        16
    } else {
        6
    }
}

proptest! {
    #[test]
    fn nat_rewrite_incremental_checksums_equal_recompute(r in rewrite()) {
        let (src4, dst4) = ([10, 0, 0, 1], [192, 168, 7, 9]);
        let src6: [u8; 16] = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets();
        let dst6: [u8; 16] = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets();
        let ip = if r.v6 {
            ep::PacketBuilder::ipv6(src6, dst6, 64)
        } else {
            ep::PacketBuilder::ipv4(src4, dst4, 64)
        };
        let mut bytes = Vec::new();
        if r.tcp {
            ip.tcp(40000, 80, 1, 1000).write(&mut bytes, &r.payload).unwrap();
        } else {
            ip.udp(40000, 53).write(&mut bytes, &r.payload).unwrap();
        }
        let l3_len = if r.v6 { 40 } else { 20 };
        let tcp = r.tcp;
        let csum_at = l3_len + l4_checksum_offset(tcp);
        let payload_at = l3_len + if tcp { 20 } else { 8 };
        let addrs = |b: &[u8]| -> Addrs {
            if r.v6 {
                let p = Ipv6Packet::new_checked(b).unwrap();
                Addrs::V6(p.src_addr(), p.dst_addr())
            } else {
                let p = Ipv4Packet::new_checked(b).unwrap();
                Addrs::V4(p.src_addr(), p.dst_addr())
            }
        };
        let get_csum = |b: &[u8]| u16::from_be_bytes([b[csum_at], b[csum_at + 1]]);

        if r.start_on_zero {
            // Shift the first payload word so that the L4 sum becomes 0xffff.
            let c = get_csum(&bytes);
            let w = u16::from_be_bytes([bytes[payload_at], bytes[payload_at + 1]]);
            let w2 = checksum::add(w, c);
            bytes[payload_at..payload_at + 2].copy_from_slice(&w2.to_be_bytes());
            let c = l4_full(tcp, addrs(&bytes), &bytes[l3_len..]);
            bytes[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
            prop_assert_eq!(c, if tcp { 0x0000 } else { 0xffff });
        }
        let no_csum = !tcp && !r.v6 && r.udp_no_checksum;
        if no_csum {
            bytes[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
        }
        let (old_sport, old_dport) = (40000u16, if tcp { 80 } else { 53 });
        let mut new_dport = r.new_dport;
        let mut l4_csum = get_csum(&bytes);
        let mut ip_csum = if r.v6 { 0 } else { Ipv4Packet::new_checked(&bytes[..]).unwrap().checksum() };

        // Rewrite addresses: the IPv4 header checksum and the L4 pseudo-header.
        let upd16 = |c: u16, o: u16, n: u16| if tcp { checksum::update16(c, o, n) } else { checksum::udp_update16(c, o, n) };
        let upd32 = |c: u16, o: u32, n: u32| if tcp { checksum::update32(c, o, n) } else { checksum::udp_update32(c, o, n) };
        let upd6 = |c: u16, o: &[u8; 16], n: &[u8; 16]| if tcp { checksum::update_addr_v6(c, o, n) } else { checksum::udp_update_addr_v6(c, o, n) };
        for (field_at, on) in [(if r.v6 { 8 } else { 12 }, r.rewrite_src), (if r.v6 { 24 } else { 16 }, r.rewrite_dst)] {
            if !on {
                continue;
            }
            let is_src = field_at == 8 || field_at == 12;
            if r.v6 {
                let mut old = [0u8; 16];
                old.copy_from_slice(&bytes[field_at..field_at + 16]);
                let new = if is_src { r.new_src6 } else { r.new_dst6 };
                bytes[field_at..field_at + 16].copy_from_slice(&new);
                l4_csum = upd6(l4_csum, &old, &new);
            } else {
                let old = u32::from_be_bytes([bytes[field_at], bytes[field_at + 1], bytes[field_at + 2], bytes[field_at + 3]]);
                let new = u32::from_be_bytes(if is_src { r.new_src4 } else { r.new_dst4 });
                bytes[field_at..field_at + 4].copy_from_slice(&new.to_be_bytes());
                ip_csum = checksum::update32(ip_csum, old, new);
                l4_csum = upd32(l4_csum, old, new);
            }
        }
        // Rewrite the source port, then pick or set the destination port.
        bytes[l3_len..l3_len + 2].copy_from_slice(&r.new_sport.to_be_bytes());
        l4_csum = upd16(l4_csum, old_sport, r.new_sport);
        if r.land_on_zero && !no_csum {
            // With the old destination port, what would the checksum be? Move the port by it.
            bytes[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
            let c1 = l4_full(tcp, addrs(&bytes), &bytes[l3_len..]);
            let c1 = if !tcp && c1 == 0xffff { 0 } else { c1 };
            new_dport = checksum::add(old_dport, c1);
        }
        bytes[l3_len + 2..l3_len + 4].copy_from_slice(&new_dport.to_be_bytes());
        l4_csum = upd16(l4_csum, old_dport, new_dport);
        bytes[csum_at..csum_at + 2].copy_from_slice(&l4_csum.to_be_bytes());

        // Compare with full recomputation.
        if no_csum {
            prop_assert_eq!(l4_csum, 0);
        } else {
            let full = l4_full(tcp, addrs(&bytes), &bytes[l3_len..]);
            prop_assert_eq!(l4_csum, full);
            if r.land_on_zero {
                prop_assert_eq!(full, if tcp { 0x0000 } else { 0xffff });
            }
            let ok = match (tcp, addrs(&bytes)) {
                (true, Addrs::V4(a, b)) => TcpPacket::new_checked(&bytes[l3_len..]).unwrap().verify_checksum_v4(a, b),
                (true, Addrs::V6(a, b)) => TcpPacket::new_checked(&bytes[l3_len..]).unwrap().verify_checksum_v6(a, b),
                (false, Addrs::V4(a, b)) => UdpPacket::new_checked(&bytes[l3_len..]).unwrap().verify_checksum_v4(a, b),
                (false, Addrs::V6(a, b)) => UdpPacket::new_checked(&bytes[l3_len..]).unwrap().verify_checksum_v6(a, b),
            };
            prop_assert!(ok);
        }
        if !r.v6 {
            let mut p = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
            p.set_checksum(ip_csum);
            prop_assert!(p.verify_checksum());
            p.fill_checksum();
            prop_assert_eq!(p.checksum(), ip_csum);
        }
    }

    #[test]
    fn ttl_decrement_incremental_ipv4_checksum_equals_recompute(
        src in any::<[u8; 4]>(),
        dst in any::<[u8; 4]>(),
        ttl in 1u8..=255,
        proto in any::<u8>(),
    ) {
        let mut bytes = [0u8; 20];
        Ipv4Repr {
            src_addr: src.into(),
            dst_addr: dst.into(),
            protocol: IpProtocol(proto),
            payload_len: 0,
            ttl,
            tos: 0,
            ident: 0,
            dont_frag: true,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]));
        let mut p = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        let old = u16::from_be_bytes([ttl, proto]);
        let new = u16::from_be_bytes([ttl - 1, proto]);
        let c = checksum::update16(p.checksum(), old, new);
        p.set_ttl(ttl - 1);
        p.set_checksum(c);
        prop_assert!(p.verify_checksum());
        p.fill_checksum();
        prop_assert_eq!(p.checksum(), c);
    }
}

// ---------------------------------------------------------------------------------------
// Never panic.

/// Call every checked view's every accessor on `b` (and on its tail after each possible
/// header), plus the walkers. Results are thrown away: only panics matter.
fn exercise(b: &[u8]) {
    let _ = parse_frame(b);
    if let Ok(f) = EthernetFrame::new_checked(b) {
        let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload().len());
        let _ = EthernetRepr::parse(&f);
        let _ = vlan::parse_tags(f.ethertype(), f.payload());
    }
    if let Ok(v) = VlanPacket::new_checked(b) {
        let _ = (
            v.tci(),
            v.pcp(),
            v.dei(),
            v.vid(),
            v.ethertype(),
            v.payload().len(),
        );
    }
    if let Ok(a) = ArpPacket::new_checked(b) {
        let _ = (
            a.hardware_type(),
            a.protocol_type(),
            a.hardware_len(),
            a.protocol_len(),
        );
        let _ = (a.operation(), a.sha(), a.spa(), a.tha(), a.tpa());
        let _ = ArpRepr::parse(&a).map(|r| r.reply(MacAddr::ZERO));
    }
    for p in [Ipv4Packet::new_checked(b), Ipv4Packet::new_quoted(b)]
        .into_iter()
        .flatten()
    {
        let _ = (
            p.version(),
            p.header_len(),
            p.dscp(),
            p.ecn(),
            p.total_len(),
            p.ident(),
        );
        let _ = (
            p.dont_frag(),
            p.more_frags(),
            p.frag_offset(),
            p.is_fragment(),
        );
        let _ = (
            p.is_first_fragment(),
            p.fragment(),
            p.ttl(),
            p.protocol(),
            p.checksum(),
        );
        let _ = (
            p.src_addr(),
            p.dst_addr(),
            p.options().len(),
            p.payload().len(),
        );
        let _ = (p.verify_checksum(), Ipv4Repr::parse(&p));
    }
    for p in [Ipv6Packet::new_checked(b), Ipv6Packet::new_quoted(b)]
        .into_iter()
        .flatten()
    {
        let _ = (
            p.version(),
            p.traffic_class(),
            p.flow_label(),
            p.payload_len(),
        );
        let _ = (p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr());
        let _ = (p.payload().len(), p.ext_headers(), Ipv6Repr::parse(&p));
    }
    if let Some(&first) = b.first() {
        let _ = walk_ext_headers(IpProtocol(first), b.get(1..).unwrap_or(&[]));
    }
    if let Ok(h) = Ipv6FragmentHeader::new_checked(b) {
        let _ = (h.next_header(), h.frag_offset(), h.more_frags(), h.ident());
    }
    let (a4, b4) = (Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8));
    let (a6, b6) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
    if let Ok(t) = TcpPacket::new_checked(b) {
        let _ = (
            t.src_port(),
            t.dst_port(),
            t.seq_number(),
            t.ack_number(),
            t.header_len(),
        );
        let _ = (
            t.flags(),
            t.fin(),
            t.syn(),
            t.rst(),
            t.psh(),
            t.ack(),
            t.urg(),
            t.ece(),
        );
        let _ = (t.cwr(), t.window_len(), t.checksum(), t.urgent_at());
        let _ = (t.options().len(), t.payload().len());
        let _ = (t.verify_checksum_v4(a4, b4), t.verify_checksum_v6(a6, b6));
    }
    if let Ok(u) = UdpPacket::new_checked(b) {
        let _ = (
            u.src_port(),
            u.dst_port(),
            u.len(),
            u.is_empty(),
            u.checksum(),
        );
        let _ = (
            u.payload().len(),
            u.verify_checksum_v4(a4, b4),
            u.verify_checksum_v6(a6, b6),
        );
    }
    if let Ok(s) = SctpPacket::new_checked(b) {
        let _ = (
            s.src_port(),
            s.dst_port(),
            s.verification_tag(),
            s.checksum(),
        );
        let _ = (s.verify_checksum(), s.first_chunk_type());
        for c in s.chunks().flatten() {
            let _ = (
                c.chunk_type(),
                c.flags(),
                c.len(),
                c.is_empty(),
                c.value().len(),
            );
            if let Ok(i) = SctpInitChunk::new_checked(c.into_inner()) {
                let _ = (
                    i.chunk_type(),
                    i.initiate_tag(),
                    i.a_rwnd(),
                    i.initial_tsn(),
                );
                let _ = (i.outbound_streams(), i.inbound_streams(), i.params().len());
            }
        }
    }
    if let Ok(i) = SctpInitChunk::new_checked(b) {
        let _ = (i.initiate_tag(), i.params().len());
    }
    if let Ok(i) = Icmpv4Packet::new_checked(b) {
        let _ = (
            i.msg_type(),
            i.msg_code(),
            i.checksum(),
            i.echo_ident(),
            i.echo_seq_no(),
        );
        let _ = (
            i.next_hop_mtu(),
            i.pointer(),
            i.is_error(),
            i.is_frag_needed(),
        );
        let _ = (i.data().len(), i.verify_checksum());
        if let Ok(q) = i.quoted_ipv4() {
            let _ = (q.src_addr(), q.payload().len(), q.options().len());
        }
    }
    if let Ok(i) = Icmpv6Packet::new_checked(b) {
        let _ = (
            i.msg_type(),
            i.msg_code(),
            i.checksum(),
            i.echo_ident(),
            i.echo_seq_no(),
        );
        let _ = (i.mtu(), i.pointer(), i.is_error(), i.data().len());
        let _ = i.verify_checksum(a6, b6);
        if let Ok(q) = i.quoted_ipv6() {
            let _ = (q.src_addr(), q.payload().len(), q.ext_headers());
        }
    }
}

/// Setters on checked views can write lengths that disagree with the buffer; the variable
/// parts must still be cut to it.
fn exercise_setters(b: &[u8], v: u16) {
    let mut c = b.to_vec();
    if let Ok(mut p) = Ipv4Packet::new_checked(&mut c[..]) {
        p.set_header_len(usize::from(v & 0x3f));
        p.set_total_len(v);
        let _ = (p.options().len(), p.payload().len(), p.verify_checksum());
        let _ = (p.options_mut().len(), p.payload_mut().len());
        p.fill_checksum();
    }
    let mut c = b.to_vec();
    if let Ok(mut p) = Ipv6Packet::new_checked(&mut c[..]) {
        p.set_payload_len(v);
        let _ = (p.payload().len(), p.payload_mut().len(), p.ext_headers());
    }
    let mut c = b.to_vec();
    if let Ok(mut p) = TcpPacket::new_checked(&mut c[..]) {
        p.set_header_len(usize::from(v & 0x3f));
        let _ = (p.options().len(), p.payload().len());
        let _ = (p.options_mut().len(), p.payload_mut().len());
        p.fill_checksum_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
    }
    let mut c = b.to_vec();
    if let Ok(mut p) = UdpPacket::new_checked(&mut c[..]) {
        p.set_len(v);
        let _ = (p.payload().len(), p.payload_mut().len(), p.is_empty());
        p.fill_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
        let _ = p.verify_checksum_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
    }
    let mut c = b.to_vec();
    if let Ok(mut p) = SctpPacket::new_checked(&mut c[..]) {
        p.fill_checksum();
        let _ = p.chunks().count();
    }
    let mut c = b.to_vec();
    if let Ok(mut p) = SctpChunk::new_checked(&mut c[..]) {
        p.set_len(v);
        let _ = p.value().len();
    }
}

/// The sample frames of the unit tests.
fn samples() -> Vec<Vec<u8>> {
    use super::tests::*;
    vec![
        tcp_syn(),
        udp_dns_query(),
        icmp_echo(),
        arp_request(),
        vlan_tcp_syn(),
        qinq_ipv6_hbh_frag_tcp(),
        icmp_frag_needed(),
    ]
}

#[test]
fn sample_frames_cut_at_every_length_do_not_panic() {
    for frame in samples() {
        for n in 0..=frame.len() {
            exercise(&frame[..n]);
            for start in [14, 18, 22, 34, 38, 42, 54, 62, 78] {
                if let Some(tail) = frame[..n].get(start..) {
                    exercise(tail);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_do_not_panic(b in vec(any::<u8>(), 0..200), v in any::<u16>()) {
        exercise(&b);
        exercise_setters(&b, v);
    }

    #[test]
    fn flipped_sample_frames_do_not_panic(
        which in any::<prop::sample::Index>(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        v in any::<u16>(),
    ) {
        let all = samples();
        let mut frame = all[which.index(all.len())].clone();
        for (at, x) in flips {
            let i = at.index(frame.len());
            frame[i] ^= x;
        }
        let n = cut.index(frame.len() + 1);
        for start in [0, 14, 18, 22, 34, 38, 42, 54, 62, 78] {
            if let Some(tail) = frame[..n].get(start..) {
                exercise(tail);
                exercise_setters(tail, v);
            }
        }
    }
}

proptest! {
    #[test]
    fn flipped_etherparse_frames_do_not_panic(
        s in spec(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut frame = build(&s);
        for (at, x) in flips {
            let i = at.index(frame.len());
            frame[i] ^= x;
        }
        let n = cut.index(frame.len() + 1);
        exercise(&frame[..n]);
        if let Ok(f) = parse_frame(&frame[..n]) {
            if let Some(ip) = f.ip {
                if let Some(tail) = frame[..n].get(ip.l4_offset..) {
                    exercise(tail);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The fast path's classifier against parse_frame.

/// `classify4`'s answer, if any, must be what `parse_frame` says of the same bytes.
fn fast_agrees(frame: &[u8]) -> Result<(), TestCaseError> {
    let Some(f) = fast::classify4(frame) else {
        return Ok(());
    };
    let p = parse_frame(frame);
    prop_assert!(
        p.is_ok(),
        "classify4 accepted what parse_frame refuses: {:?}",
        p
    );
    let p = p.unwrap();
    prop_assert_eq!(p.vlan.count, 0);
    prop_assert_eq!(p.l3_offset, fast::Fast4::L3);
    let ip = p.ip.unwrap();
    prop_assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::from(f.saddr)));
    prop_assert_eq!(ip.dst, IpAddr::V4(Ipv4Addr::from(f.daddr)));
    prop_assert_eq!(ip.protocol.0, f.proto);
    prop_assert_eq!(ip.ttl, f.ttl);
    prop_assert_eq!(ip.ip_len, usize::from(f.ip_len));
    prop_assert_eq!(ip.l4_offset, fast::Fast4::L4);
    prop_assert!(ip.fragment.is_none());
    prop_assert_eq!(ip.l4.ports(), Some((f.sport, f.dport)));
    let flags = match ip.l4 {
        L4Summary::Tcp { flags, .. } => flags.0,
        _ => 0,
    };
    prop_assert_eq!(flags, f.tcp_flags);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn fast_classifier_agrees_with_parse_frame(
        s in spec(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        pad in 0usize..8,
    ) {
        let mut frame = build(&s);
        let plain = fast::classify4(&frame).is_some();
        let p = parse_frame(&frame).unwrap();
        let ip = p.ip.unwrap();
        // Every untagged, option-less, unfragmented TCP/UDP IPv4 frame takes the fast path.
        let common = p.vlan.count == 0
            && ip.version == IpVersion::V4
            && ip.l4_offset == fast::Fast4::L4
            && ip.fragment.is_none()
            && matches!(ip.l4, L4Summary::Tcp { .. } | L4Summary::Udp { .. });
        prop_assert_eq!(plain, common);
        fast_agrees(&frame)?;
        frame.resize(frame.len() + pad, 0);
        fast_agrees(&frame)?;
        for (at, x) in flips {
            let i = at.index(frame.len());
            frame[i] ^= x;
        }
        fast_agrees(&frame)?;
        let n = cut.index(frame.len() + 1);
        fast_agrees(&frame[..n])?;
    }
}

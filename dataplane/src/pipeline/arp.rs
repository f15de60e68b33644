//! ARP input: senders feed the neighbor table; requests for a port address or a VIP are
//! answered in place (on the request's VLAN); replies to the appliance go to the kernel and,
//! as copies, to the other workers.

use super::buf::Buf;
use super::exception::Seen;
use super::local::{self, retag, vlan_tags};
use super::path_counters::PathDrop;
use super::worker::{Cx, Out, Worker};
use crate::addr::V4;
use crate::wire::{self, ArpRepr, MacAddr, ParsedFrame};

impl<B: Buf> Worker<B> {
    pub(super) fn arp<O: FnMut(Out<B>)>(
        &mut self,
        cx: &mut Cx<'_, O>,
        mut buf: B,
        pf: &ParsedFrame,
    ) {
        let Ok(a) = wire::arp::Packet::new_checked(&buf.data()[pf.l3_offset..]) else {
            return self.drop(PathDrop::Malformed, buf, cx.out);
        };
        let (op, sha, spa, tpa) = (a.operation(), a.sha().octets(), a.spa(), a.tpa());
        let (pres, port) = (cx.pres, cx.port);
        let me = &pres.ports[port as usize];
        let tpa_v = V4(u32::from(tpa));
        let ours = me.addrs4.iter().any(|&(x, _)| x == tpa_v) || self.f4.vips.contains(&tpa_v);
        let spa_v = V4(u32::from(spa));
        let mut ready = Vec::new();
        self.f4
            .neigh
            .learn(spa_v, sha, port, cx.now, &mut |p, mac| ready.push((p, mac)));
        // Releasing held frames moves the table on (the entry turns Reachable).
        self.note_neigh_if_moved();
        for ((p, b), mac) in ready {
            self.send_resolved(cx, p, b, mac);
        }
        if cx.handed {
            // Another worker's copy of a reply to us (see `share_neigh`): learned above.
            return (cx.out)(Out::Drop(buf));
        }
        if !ours {
            return self.drop(PathDrop::ArpNotOurs, buf, cx.out);
        }
        if op == wire::arp::Operation::REPLY {
            // A reply to us answers a request of some worker or of the kernel (its interface
            // asks for its own peers, and never sees the requests rvs answers for it): the
            // other workers learn it from a copy, and the kernel gets the frame itself.
            self.share_neigh(cx, &buf);
            return self.punt(cx, buf, Seen::Neigh);
        }
        if op == wire::arp::Operation::REQUEST {
            let mac = me.mac;
            let tags = vlan_tags(buf.data(), pf);
            let reply = ArpRepr {
                operation: wire::arp::Operation::REPLY,
                source_hardware_addr: MacAddr(mac),
                source_protocol_addr: tpa,
                target_hardware_addr: MacAddr(sha),
                target_protocol_addr: spa,
            };
            if local::arp(&mut buf, sha, &reply) && retag(&mut buf, &tags) {
                self.counters.arp_replies.inc();
                self.counters.tx.inc();
                (cx.out)(Out::Tx { port, buf });
                return;
            }
            return self.drop(PathDrop::NoBuffer, buf, cx.out);
        }
        // Neither a request nor a reply: learned above; nothing to send.
        (cx.out)(Out::Drop(buf));
    }
}

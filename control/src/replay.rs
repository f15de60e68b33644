//! `rvsd replay`: the whole packet path in-process, with the capture's timestamps as the
//! clock. Frames enter on port 0 (or the port a pcapng interface id names), every worker's
//! output is written to a pcapng with one interface per port (and one per port for frames
//! handed to the kernel), and the Prometheus text of every counter goes to `--metrics-out`.
//!
//! Workers run in one thread, in turn, as the DPDK workers would run in parallel: a frame
//! enters the worker an RSS-like hash of its addresses picks (deliberately not the steering
//! function, so hand-offs happen as they do on a NIC), and frames handed to another worker go
//! through a bounded lock-free ring; a full ring is a counted drop.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::DataLink;

use rvs_dataplane::addr::{Family, V4, V6};
use rvs_dataplane::config::Config;
use rvs_dataplane::l3::Route;
use rvs_dataplane::pipeline::buf::{Buf, VecBuf};
use rvs_dataplane::pipeline::worker::{Out, PortInfo, Presence, TxOffloads, Worker};
use rvs_dataplane::shard::ShardParams;

use crate::appconfig::AppConfig;
use crate::metrics;
use crate::rules::RuleSet;

/// Frames a handoff ring holds (per worker).
pub const RING: usize = 1024;

pub struct ReplayArgs {
    pub config: PathBuf,
    pub rules: PathBuf,
    pub pcap_in: PathBuf,
    pub pcap_out: PathBuf,
    pub metrics_out: Option<PathBuf>,
    /// Overrides the config's `[engine] workers`.
    pub workers: Option<u32>,
}

/// What a replay did, for the command's summary line and for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    pub frames_in: u64,
    pub frames_out: u64,
    pub frames_kernel: u64,
    pub dropped: u64,
    pub handoffs: u64,
    pub ring_full: u64,
}

/// One captured frame.
pub struct Frame {
    pub ts: Duration,
    pub port: u16,
    pub data: Vec<u8>,
}

/// Read a pcap or pcapng file (by its magic number).
pub fn read_capture(path: &Path) -> Result<Vec<Frame>, String> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |e: pcap_file::PcapError| format!("{}: {e}", path.display());
    let mut frames = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = PcapNgReader::new(&bytes[..]).map_err(bad)?;
        while let Some(b) = r.next_block() {
            match b.map_err(bad)? {
                Block::EnhancedPacket(p) => frames.push(Frame {
                    ts: p.timestamp,
                    port: u16::try_from(p.interface_id).unwrap_or(u16::MAX),
                    data: p.data.into_owned(),
                }),
                Block::SimplePacket(p) => {
                    let ts = frames.last().map_or(Duration::ZERO, |f: &Frame| f.ts);
                    frames.push(Frame {
                        ts,
                        port: 0,
                        data: p.data.into_owned(),
                    })
                }
                _ => {}
            }
        }
    } else {
        let mut r = PcapReader::new(BufReader::new(&bytes[..])).map_err(bad)?;
        if r.header().datalink != DataLink::ETHERNET {
            return Err(format!(
                "{}: link type {:?} is not Ethernet",
                path.display(),
                r.header().datalink
            ));
        }
        while let Some(p) = r.next_packet() {
            let p = p.map_err(bad)?;
            frames.push(Frame {
                ts: p.timestamp,
                port: 0,
                data: p.data.into_owned(),
            });
        }
    }
    Ok(frames)
}

/// A pcapng writer with an interface per port and one per port's kernel path.
pub struct CaptureWriter {
    w: PcapNgWriter<BufWriter<File>>,
    ports: usize,
}

impl CaptureWriter {
    pub fn create(path: &Path, port_names: &[String]) -> Result<Self, String> {
        let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w =
            PcapNgWriter::new(BufWriter::new(f)).map_err(|e| format!("{}: {e}", path.display()))?;
        let names = port_names
            .iter()
            .cloned()
            .chain(port_names.iter().map(|n| format!("{n}-kernel")));
        for name in names {
            let idb = InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: 0,
                options: vec![InterfaceDescriptionOption::IfName(Cow::Owned(name))],
            };
            w.write_pcapng_block(idb)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(CaptureWriter {
            w,
            ports: port_names.len(),
        })
    }

    /// Write a frame sent on `port` (`kernel`: handed to that port's kernel interface).
    pub fn write(
        &mut self,
        ts: Duration,
        port: u16,
        kernel: bool,
        data: &[u8],
    ) -> Result<(), String> {
        let iface = usize::from(port) + if kernel { self.ports } else { 0 };
        let epb = EnhancedPacketBlock {
            interface_id: iface as u32,
            timestamp: ts,
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options: vec![],
        };
        self.w
            .write_pcapng_block(epb)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub fn finish(mut self) -> Result<(), String> {
        self.w.get_mut().flush().map_err(|e| e.to_string())
    }
}

/// What the ports' NICs bring to the packet path: `tx[i]` is what port `i`'s NIC checksums
/// at transmit (none where absent), `rss_key` the key its RSS hashes with. The default (no
/// NIC: replay, tests) has no offloads and the fixed key.
#[derive(Clone, Debug, Default)]
pub struct NicSetup {
    pub tx: Vec<TxOffloads>,
    pub rss_key: rvs_dataplane::pipeline::rss::Key,
}

/// The packet path's L2/L3 presence from the appliance config and what the NICs bring.
pub fn presence(cfg: &AppConfig, nic: &NicSetup) -> Result<Presence, String> {
    let tx = &nic.tx;
    let index = |name: &str| {
        cfg.ports
            .iter()
            .position(|p| p.name == name)
            .map(|i| i as u16)
    };
    let ports = cfg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| PortInfo {
            name: p.name.clone(),
            mac: p.mac,
            addrs4: p
                .addrs
                .iter()
                .filter_map(|&(a, l)| V4::from_ip(a).map(|a| (a, l)))
                .collect(),
            addrs6: p
                .addrs
                .iter()
                .filter_map(|&(a, l)| V6::from_ip(a).map(|a| (a, l)))
                .collect(),
            mtu: cfg.tunnel_mtu(p),
            tx_offload: tx.get(i).copied().unwrap_or_default(),
        })
        .collect();
    let mut r4 = Vec::new();
    let mut r6 = Vec::new();
    for r in &cfg.routes {
        let port = index(&r.port)
            .ok_or_else(|| format!("route {}/{}: no port {}", r.prefix.0, r.prefix.1, r.port))?;
        match r.prefix.0 {
            IpAddr::V4(_) => {
                let via = r.via.and_then(V4::from_ip);
                r4.push((
                    V4::from_ip(r.prefix.0).unwrap_or_default(),
                    r.prefix.1,
                    Route { port, via },
                ));
            }
            IpAddr::V6(_) => {
                let via = r.via.and_then(V6::from_ip);
                r6.push((
                    V6::from_ip(r.prefix.0).unwrap_or_default(),
                    r.prefix.1,
                    Route { port, via },
                ));
            }
        }
    }
    let mut s4 = Vec::new();
    let mut s6 = Vec::new();
    for n in &cfg.neighbors {
        let port =
            index(&n.port).ok_or_else(|| format!("neighbor {}: no port {}", n.ip, n.port))?;
        match n.ip {
            IpAddr::V4(_) => s4.push((V4::from_ip(n.ip).unwrap_or_default(), n.mac, port)),
            IpAddr::V6(_) => s6.push((V6::from_ip(n.ip).unwrap_or_default(), n.mac, port)),
        }
    }
    Ok(Presence::new(ports, &r4, &r6, s4, s6)?
        .with_rss_key(nic.rss_key.clone())
        .with_exception(cfg.exception.clone())
        .with_icmp(cfg.icmp))
}

/// One snapshot per family, as the workers run them.
pub type Configs = (Arc<Config<V4>>, Arc<Config<V6>>);

/// The engine's snapshots of a rule set under an appliance config (its sysctls and
/// firewall-mark rules).
pub fn snapshots(cfg: &AppConfig, rules: &RuleSet) -> Result<Configs, String> {
    let (c4, c6) = rules.to_configs(cfg.sysctl()).map_err(|e| e.to_string())?;
    let c4 = c4
        .with_fwmark_rules(cfg.fwmark_rules_v4())
        .map_err(|e| e.to_string())?;
    let c6 = c6
        .with_fwmark_rules(cfg.fwmark_rules_v6())
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(c4), Arc::new(c6)))
}

/// Build the workers of an appliance config and rule set, `alloc(worker)` giving each its
/// buffer source for the frames it builds itself; `nic` as for [`presence`].
pub fn workers<B: Buf>(
    cfg: &AppConfig,
    rules: &RuleSet,
    n: u32,
    t0: u64,
    nic: &NicSetup,
    alloc: impl Fn(u32) -> Box<dyn FnMut() -> Option<B> + Send>,
) -> Result<Vec<Worker<B>>, String> {
    let (c4, c6) = snapshots(cfg, rules)?;
    workers_with(cfg, (c4, c6), n, t0, nic, alloc)
}

/// [`workers`] running given snapshots (the control thread's first generation).
pub fn workers_with<B: Buf>(
    cfg: &AppConfig,
    (c4, c6): Configs,
    n: u32,
    t0: u64,
    nic: &NicSetup,
    alloc: impl Fn(u32) -> Box<dyn FnMut() -> Option<B> + Send>,
) -> Result<Vec<Worker<B>>, String> {
    let pres = Arc::new(presence(cfg, nic)?);
    let params = ShardParams {
        capacity: cfg.engine.conns_per_worker,
        max_dests: cfg.engine.max_dests,
        seed: 0x5256_5321,
        ..ShardParams::default()
    };
    Ok((0..n)
        .map(|id| {
            Worker::new(
                id,
                n,
                params.clone(),
                (Arc::clone(&c4), Arc::clone(&c6)),
                Arc::clone(&pres),
                alloc(id),
                t0,
            )
        })
        .collect())
}

/// The RSS stand-in: a hash of the frame's IP addresses (and ports) picks the entry worker.
fn rss(frame: &[u8], n: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    let mut h: u32 = 0x811c_9dc5;
    for &b in frame.get(26..38).unwrap_or(&[]) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h % n
}

pub fn replay(args: &ReplayArgs) -> Result<ReplaySummary, String> {
    let cfg = crate::appconfig::load(&args.config).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&args.rules)
        .map_err(|e| format!("{}: {e}", args.rules.display()))?;
    let rules = RuleSet::from_text(&text).map_err(|e| format!("{}: {e}", args.rules.display()))?;
    let frames = read_capture(&args.pcap_in)?;
    let n = args.workers.unwrap_or(cfg.engine.workers).max(1);
    let t0 = frames.first().map_or(0, |f| f.ts.as_millis() as u64);
    // No NIC; the key of `[engine] rss_key` when it names one, else the fixed key (a run
    // with a drawn key steers differently and cannot be replayed frame for frame).
    let nic = NicSetup {
        rss_key: cfg
            .engine
            .rss_key
            .key(rvs_dataplane::pipeline::rss::Key::fixed),
        ..NicSetup::default()
    };
    let mut ws = workers(&cfg, &rules, n, t0, &nic, |_| {
        Box::new(|| Some(VecBuf::empty()))
    })?;
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let mut out = CaptureWriter::create(&args.pcap_out, &names)?;
    let rings: Vec<ArrayQueue<(u16, VecBuf)>> = (0..n).map(|_| ArrayQueue::new(RING)).collect();
    let mut sum = ReplaySummary::default();
    let emit = |o: Out<VecBuf>,
                ts: Duration,
                sum: &mut ReplaySummary,
                out: &mut CaptureWriter|
     -> Result<(), String> {
        match o {
            Out::Tx { port, buf } => {
                sum.frames_out += 1;
                out.write(ts, port, false, buf.data())
            }
            Out::Kernel { port, buf } => {
                sum.frames_kernel += 1;
                out.write(ts, port, true, buf.data())
            }
            Out::Drop(_) => {
                sum.dropped += 1;
                Ok(())
            }
            Out::Handoff { worker, port, buf } => {
                sum.handoffs += 1;
                if let Some(r) = rings.get(worker as usize) {
                    if r.push((port, buf)).is_err() {
                        sum.ring_full += 1;
                    }
                }
                Ok(())
            }
        }
    };
    let ts0 = frames.first().map_or(Duration::ZERO, |f| f.ts);
    // Gratuitous ARP / unsolicited NA for the VIPs at start (worker 0 speaks for the box).
    let mut pending = Vec::new();
    if let Some(w) = ws.first_mut() {
        w.announce(&mut |o| pending.push(o));
    }
    for o in pending.drain(..) {
        emit(o, ts0, &mut sum, &mut out)?;
    }
    for f in &frames {
        let now = f.ts.as_millis() as u64;
        sum.frames_in += 1;
        if usize::from(f.port) >= names.len() {
            sum.dropped += 1;
            continue;
        }
        for w in ws.iter_mut() {
            w.tick(now, &mut |o| pending.push(o));
        }
        let entry = rss(&f.data, n) as usize;
        ws[entry].rx(f.port, VecBuf::from_frame(&f.data), now, &mut |o| {
            pending.push(o)
        });
        loop {
            for o in pending.drain(..) {
                emit(o, f.ts, &mut sum, &mut out)?;
            }
            let mut moved = false;
            for (i, r) in rings.iter().enumerate() {
                while let Some((port, buf)) = r.pop() {
                    moved = true;
                    ws[i].rx_handoff(port, buf, now, &mut |o| pending.push(o));
                }
            }
            if !moved && pending.is_empty() {
                break;
            }
        }
    }
    out.finish()?;
    if let Some(path) = &args.metrics_out {
        let text = metrics::render(&ws);
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(sum)
}

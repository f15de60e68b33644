//! rvsd: the rvs appliance daemon: `run` (the appliance on DPDK, driven by `rvsadm` over its
//! control socket, `/metrics` over HTTP), `demo` (the lab default), `replay` (the packet path
//! over a capture), `simulate` (the engine in virtual time), `lab-pcap` (traffic captures).

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::sim::{synflood, SynfloodParams};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "rvsd",
    version,
    about = "rvs (Rust Virtual Server) appliance daemon"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the engine in virtual time on a synthetic scenario.
    #[command(subcommand)]
    Simulate(Scenario),
    /// Run the whole packet path over a capture, with its timestamps as the clock.
    Replay(ReplayCli),
    /// Run the appliance on DPDK: `rvsd run --config appliance.toml [--rules r] -- <EAL args>`
    /// (one worker lcore per `[engine] workers`, besides the main lcore).
    Run(RunCli),
    /// Write a traffic capture (for ci/bench.sh and pktgen-scripts/replay.sh): `established`
    /// (ACKs of N distinct flows) or `synflood` (SYNs from N random sources), 54-byte TCP
    /// frames to --vip through --dst-mac (by default the lab's 10.0.0.100:80 and
    /// 02:00:00:00:00:01).
    LabPcap(LabPcapCli),
    /// The main job on the embedded lab default: DPDK with virtual devices (net_pcap), no
    /// NIC, no hugepages; generated client traffic and a SYN burst through a persistent DR
    /// service.
    Demo(DemoCli),
}

#[derive(Args)]
struct LabPcapCli {
    /// established | synflood
    #[arg(long)]
    kind: String,
    #[arg(long, default_value_t = 1_000_000)]
    flows: u32,
    #[arg(long)]
    out: std::path::PathBuf,
    /// The service the frames go to.
    #[arg(long, default_value = "10.0.0.100:80")]
    vip: std::net::SocketAddrV4,
    /// Destination MAC: the appliance port's.
    #[arg(long, default_value = "02:00:00:00:00:01", value_parser = parse_mac)]
    dst_mac: [u8; 6],
    /// Source MAC: the sender's (a router in front of the appliance).
    #[arg(long, default_value = "02:00:00:00:00:c1", value_parser = parse_mac)]
    src_mac: [u8; 6],
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    rvs_control::appconfig::parse_mac(s)
        .ok_or_else(|| format!("{s:?}: want a MAC like 02:00:00:00:00:01"))
}

/// Seconds (a decimal, at least 0.01) to milliseconds.
fn parse_period(s: &str) -> Result<u64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.01..=86_400.0).contains(&v) => Ok((v * 1000.0).round() as u64),
        _ => Err(format!(
            "{s:?}: want seconds from 0.01 to 86400, like 2 or 0.5"
        )),
    }
}

#[derive(Args)]
struct DemoCli {
    /// Clients, each opening and closing one conn.
    #[arg(long, default_value_t = 2000)]
    clients: u32,
    /// SYNs from random sources mixed in.
    #[arg(long, default_value_t = 20000)]
    flood: u32,
    /// Extra EAL arguments, after `--`.
    #[arg(last = true)]
    eal: Vec<String>,
}

#[derive(Args)]
struct RunCli {
    /// The appliance TOML (see docs/config.md).
    #[arg(long)]
    config: std::path::PathBuf,
    /// Rules in ipvsadm-save syntax.
    #[arg(long)]
    rules: Option<std::path::PathBuf>,
    /// Write the Prometheus text of every counter here when stopping.
    #[arg(long)]
    metrics_out: Option<std::path::PathBuf>,
    /// Stop after this many ms without a received frame (capture-driven tests, benchmarks).
    #[arg(long)]
    idle_exit_ms: Option<u64>,
    /// Stop after this many ms in any case.
    #[arg(long)]
    max_ms: Option<u64>,
    /// Mbufs in the pool (a net_pcap port with infinite_rx=1 holds the whole capture).
    #[arg(long)]
    mbufs: Option<u32>,
    /// No kernel interfaces (net_tap) for the exception path: frames for the kernel are
    /// counted and dropped.
    #[arg(long)]
    no_exception: bool,
    /// Print the rx, tx and drop rates of the last period every this many seconds.
    #[arg(long, value_parser = parse_period)]
    stats_period: Option<u64>,
    /// The control socket rvsadm talks to (default: `[control] socket`, /run/rvsd.sock).
    #[arg(long)]
    socket: Option<std::path::PathBuf>,
    /// Serve Prometheus /metrics here: ADDR:PORT, or off (default: `[metrics] listen`,
    /// 127.0.0.1:9750).
    #[arg(long)]
    metrics_listen: Option<String>,
    /// A keepalived.conf (keepalived 2.2's LVS part): its virtual servers join the rules
    /// and its checkers run (docs/health.md); SIGHUP re-reads it.
    #[arg(long)]
    keepalived: Option<std::path::PathBuf>,
    /// EAL arguments, after `--` (hugepages by default; `--no-huge -m 1024` in labs).
    #[arg(last = true)]
    eal: Vec<String>,
}

#[derive(Args)]
struct ReplayCli {
    /// The appliance TOML (ports, neighbors, routes, defense; see docs/config.md).
    #[arg(long)]
    config: std::path::PathBuf,
    /// Rules in ipvsadm-save syntax (`-A -t VIP:PORT -s wlc ...`, `-a -t ... -r RIP:PORT -g`).
    #[arg(long)]
    rules: std::path::PathBuf,
    /// Input capture (pcap or pcapng; a pcapng interface id names the port a frame enters).
    #[arg(long)]
    pcap_in: std::path::PathBuf,
    /// Output pcapng: one interface per port, then one per port's kernel path.
    #[arg(long)]
    pcap_out: std::path::PathBuf,
    /// Write the Prometheus text of every counter here at the end.
    #[arg(long)]
    metrics_out: Option<std::path::PathBuf>,
    /// Workers (default: the config's `[engine] workers`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: Option<u32>,
}

#[derive(Subcommand)]
enum Scenario {
    /// A SYN flood from random sources against a persistent TCP service, with legitimate
    /// persistent clients beside it (IPVS's drop_entry defense and the seed patch at work).
    Synflood(SynfloodArgs),
}

#[derive(Args)]
struct SynfloodArgs {
    /// Virtual seconds of flood (after a 60 s warm-up in which every legit client connects).
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Flood SYNs per second, each from a random source address and port.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Conn entries of the shard (its "memory"), templates included (at most 2^26).
    #[arg(long, default_value_t = 262_144, value_parser = clap::value_parser!(u32).range(1..=i64::from(rvs_dataplane::conn::MAX_CAPACITY)))]
    capacity: u32,
    /// Persistence timeout in seconds; 0 = not persistent.
    #[arg(long, default_value_t = 300)]
    persistence: u32,
    /// Persistence netmask: a prefix length (24) or a dotted IPv4 mask (255.255.255.0).
    #[arg(long, default_value = "32", value_parser = parse_netmask)]
    netmask: u8,
    /// Legitimate persistent clients (each opens a short TCP conn every 60 s).
    #[arg(long, default_value_t = 100)]
    legit: u32,
    /// drop_entry mode: 0 never, 1 automatic, 2 automatic (active), 3 always.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=3))]
    drop_entry: u8,
    /// Free entries below which the shard is out of memory; 0 = capacity/16.
    #[arg(long, default_value_t = 0)]
    low_watermark: u32,
    /// Dests behind the service.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    dests: u32,
    /// Scheduler (rr, wrr, lc, wlc, sed, nq, sh, dh, mh, lblc, lblcr, fo, ovf, twos).
    #[arg(long, default_value = "wlc", value_parser = parse_sched)]
    sched: SchedKind,
    /// Seed of every random choice (flood sources, scan starts).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_netmask(s: &str) -> Result<u8, String> {
    if let Ok(p) = s.parse::<u8>() {
        return if p <= 32 {
            Ok(p)
        } else {
            Err(format!("prefix length {p} is above 32"))
        };
    }
    let mask: std::net::Ipv4Addr = s
        .parse()
        .map_err(|_| format!("'{s}' is neither a prefix length nor a dotted mask"))?;
    rvs_dataplane::addr::v4_mask_prefix(mask)
        .ok_or_else(|| format!("netmask {s} is not contiguous"))
}

fn parse_sched(s: &str) -> Result<SchedKind, String> {
    SchedKind::parse(s).ok_or_else(|| {
        let names: Vec<&str> = SchedKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown scheduler '{s}' (one of {})", names.join(", "))
    })
}

fn main() -> ExitCode {
    rvs_control::allocator::keep_freed_memory();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::LabPcap(l) => {
            let to = rvs_control::lab::MixTarget {
                vip: *l.vip.ip(),
                vport: l.vip.port(),
                dst_mac: l.dst_mac,
                src_mac: l.src_mac,
            };
            let frames = match l.kind.as_str() {
                "established" => rvs_control::lab::established_mix_to(&to, l.flows),
                "synflood" => rvs_control::lab::synflood_to(&to, l.flows, 11),
                other => {
                    eprintln!("rvsd lab-pcap: --kind {other}: want established or synflood");
                    return ExitCode::from(2);
                }
            };
            match rvs_control::lab::write_pcap(&l.out, &frames) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rvsd lab-pcap: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Demo(d) => match rvs_control::lab::demo(d.clients, d.flood, &d.eal) {
            Ok((s, files)) => {
                let m = std::fs::read_to_string(&files.metrics).unwrap_or_default();
                let pick = |name: &str| -> String {
                    m.lines()
                        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
                        .map(|l| format!("  {l}\n"))
                        .collect()
                };
                let mut out = format!(
                    "rvsd demo: DPDK EAL (--no-huge, net_pcap), lab config, rules:\n{}\n{} frames in, {} out in {:.2} s, {} dropped at tx, {} for the kernel\n",
                    rvs_control::lab::LAB_RULES,
                    s.rx,
                    s.tx,
                    s.seconds,
                    s.tx_dropped,
                    s.kernel
                );
                for name in [
                    "rvs_conns_created_total",
                    "rvs_templates{",
                    "rvs_assured_templates{",
                    "rvs_conns{",
                    "rvs_tx_frames_total",
                    "rvs_arp_replies_total",
                ] {
                    out.push_str(&pick(name));
                }
                out.push_str(&format!(
                    "transmitted frames: {}\nall counters: {}\n",
                    files.tx_pcap.display(),
                    files.metrics.display()
                ));
                let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rvsd demo: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Run(r) => {
            let args = rvs_control::run::RunArgs {
                config: r.config,
                rules: r.rules,
                eal: r.eal,
                metrics_out: r.metrics_out,
                idle_exit_ms: r.idle_exit_ms,
                max_ms: r.max_ms,
                mbufs: r.mbufs,
                exception: !r.no_exception,
                stats_period_ms: r.stats_period,
                socket: r.socket,
                metrics_listen: r.metrics_listen,
                keepalived: r.keepalived,
            };
            match rvs_control::run::run(&args) {
                Ok(s) => {
                    let line = format!(
                        "rvsd run: {:.2} s, {} frames in, {} out ({:.3} Mpps out since the first frame), {} tx dropped, {} to the kernel, {} worker(s), {} handed over ({} ring full)\n",
                        s.seconds,
                        s.rx,
                        s.tx,
                        s.tx as f64 / s.active_seconds.max(1e-9) / 1e6,
                        s.tx_dropped,
                        s.kernel,
                        s.workers,
                        s.handoffs,
                        s.ring_full
                    );
                    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("rvsd run: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Replay(r) => {
            let args = rvs_control::replay::ReplayArgs {
                config: r.config,
                rules: r.rules,
                pcap_in: r.pcap_in,
                pcap_out: r.pcap_out,
                metrics_out: r.metrics_out,
                workers: r.workers,
            };
            match rvs_control::replay::replay(&args) {
                Ok(s) => {
                    let line = format!(
                        "rvsd replay: {} frames in, {} out, {} to the kernel, {} dropped, {} handed over ({} ring full)\n",
                        s.frames_in, s.frames_out, s.frames_kernel, s.dropped, s.handoffs, s.ring_full
                    );
                    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("rvsd replay: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Simulate(Scenario::Synflood(a)) => {
            let p = SynfloodParams {
                seconds: a.seconds,
                rate: a.rate,
                capacity: a.capacity,
                persistence: a.persistence,
                netmask: a.netmask,
                legit: a.legit,
                drop_entry: a.drop_entry,
                low_watermark: a.low_watermark,
                dests: a.dests,
                sched: a.sched,
                seed: a.seed,
            };
            let rep = match synflood(&p) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("rvsd simulate synflood: {e}");
                    return ExitCode::from(2);
                }
            };
            // One write, and a closed pipe (`| head`) is not an error worth a panic.
            let mut out = String::new();
            if a.json {
                out.push_str(&rep.to_json(&p));
                out.push('\n');
            } else {
                let _ = writeln!(out, "SYN flood: {} SYN/s for {} s, capacity {}, persistence {} s /{}, drop_entry {}", p.rate, p.seconds, p.capacity, p.persistence, p.netmask, p.drop_entry);
                let _ = writeln!(out, "  flood SYNs                {}", rep.flood_syns);
                let _ = writeln!(
                    out,
                    "  syn_recv_survival         {:.4} (seed's arithmetic {:.4})",
                    rep.syn_recv_survival, rep.syn_recv_survival_expected
                );
                let _ = writeln!(
                    out,
                    "  templates end / max       {} / {}",
                    rep.templates_end, rep.templates_max
                );
                let _ = writeln!(
                    out,
                    "  assured templates end     {}",
                    rep.assured_templates_end
                );
                let _ = writeln!(
                    out,
                    "  conns end / max           {} / {}",
                    rep.conns_end, rep.conns_max
                );
                let _ = writeln!(
                    out,
                    "  legit clients kept dest   {} of {}",
                    rep.legit_clients_kept_dest, rep.legit_clients
                );
                let _ = writeln!(
                    out,
                    "  legit conns ok / failed   {} / {}",
                    rep.legit_conns_ok, rep.legit_conns_failed
                );
                for (k, v) in &rep.drops {
                    if *v > 0 {
                        let _ = writeln!(out, "  drop {k:<26} {v}");
                    }
                }
            }
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
            ExitCode::SUCCESS
        }
    }
}

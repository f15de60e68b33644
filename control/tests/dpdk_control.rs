//! The live control plane on the real EAL with traffic flowing: `rvsd run` (two worker
//! lcores, a `net_pcap` port replaying a SYN flood forever into `net_null`) configured only
//! by `rvsadm` against its control socket.
//!
//! - 1000 rvsadm changes (services and dests added, edited, drained, deleted) while frames
//!   flow: every one returns success with every worker on its generation;
//! - draining a dest: right after `-e ... -w 0` returns, no new conn goes to it and the other
//!   dest takes them, while its own conns stay;
//! - `-S` then `-C` then `-R` of the save gives the same rules back;
//! - `--replace` and SIGHUP re-reading `--rules` swap the rule set and keep the conns of the
//!   dests that stay;
//! - at the end every frame that came in went out or was counted as a drop.
//!
//! One rvsd per test file (it owns the EAL's devices); the test drives the real binaries.
// `kill` to signal the rvsd under test.
#![allow(unsafe_code)]

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CONFIG: &str = r#"
[[port]]
name = "p0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24"]

[[neighbor]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"
port = "p0"

[[neighbor]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"
port = "p0"

[[neighbor]]
ip = "10.0.0.13"
mac = "02:00:00:00:00:13"
port = "p0"

[engine]
workers = 2
conns_per_worker = 32768

[defense]
drop_entry = 1
"#;

const RULES: &str = "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1
-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1
";

struct Rvsd {
    child: Child,
    socket: std::path::PathBuf,
    prefix: String,
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

fn rvsadm(socket: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rvsadm"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("rvsadm runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `rvsadm ARG < input` (`-R`, `--replace`); true when it succeeded.
fn rvsadm_input(socket: &std::path::Path, arg: &str, input: &[u8]) -> bool {
    let mut r = Command::new(env!("CARGO_BIN_EXE_rvsadm"))
        .arg("--socket")
        .arg(socket)
        .arg(arg)
        .stdin(Stdio::piped())
        .spawn()
        .expect("rvsadm runs");
    if let Some(mut i) = r.stdin.take() {
        i.write_all(input).expect("rvsadm reads its input");
    }
    r.wait().is_ok_and(|s| s.success())
}

fn ok(socket: &std::path::Path, args: &[&str]) -> String {
    let (code, out, err) = rvsadm(socket, args);
    assert_eq!(code, 0, "rvsadm {args:?}: {err}{out}");
    out
}

/// `-Ln --stats --exact`: (Conns, InPkts) of the dest `rip` of the first service.
fn dest_stats(socket: &std::path::Path, rip: &str) -> (u64, u64) {
    let out = ok(socket, &["-Ln", "--stats", "--exact"]);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("-> {rip}:")))
        .unwrap_or_else(|| panic!("{rip} not listed:\n{out}"));
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(2)
        .map(|x| x.parse().unwrap())
        .collect();
    (f[0], f[1])
}

/// `-Ln`: ActiveConn + InActConn of `rip`.
fn dest_conns(socket: &std::path::Path, rip: &str) -> u64 {
    let out = ok(socket, &["-Ln"]);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("-> {rip}:")))
        .unwrap_or_else(|| panic!("{rip} not listed:\n{out}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    f[4].parse::<u64>().unwrap() + f[5].parse::<u64>().unwrap()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rvsadm_drives_a_running_rvsd_while_frames_flow() {
    let dir = tmp("ctl");
    std::fs::create_dir_all(&dir).unwrap();
    let (cfg, rules, pcap, metrics) = (
        dir.join("a.toml"),
        dir.join("rules"),
        dir.join("flood.pcap"),
        dir.join("end.prom"),
    );
    std::fs::write(&cfg, CONFIG).unwrap();
    std::fs::write(&rules, RULES).unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args([
            "lab-pcap", "--kind", "synflood", "--flows", "150000", "--out",
        ])
        .arg(&pcap)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let socket = dir.join("rvsd.sock");
    let prefix = format!("rvs-ctl-{}", std::process::id());
    let child = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .arg("--rules")
        .arg(&rules)
        .arg("--socket")
        .arg(&socket)
        .args([
            "--metrics-listen",
            "off",
            "--no-exception",
            "--max-ms",
            "120000",
        ])
        .args(["--mbufs", "180000", "--metrics-out"])
        .arg(&metrics)
        .args([
            "--",
            "--no-huge",
            "-m",
            "2048",
            "--no-pci",
            "--lcores",
            "0@0,1@0,2@1",
        ])
        .args(["--file-prefix", &prefix, "--log-level", "lib.eal:error"])
        .arg("--vdev")
        .arg(format!(
            "net_pcap0,rx_pcap={},infinite_rx=1",
            pcap.display()
        ))
        .args(["--vdev", "net_null0"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut rvsd = Rvsd {
        child,
        socket: socket.clone(),
        prefix,
    };
    let s = rvsd.socket.clone();
    wait_for("rvsd's socket answers", || {
        s.exists() && rvsadm(&s, &["-Ln"]).0 == 0
    });
    wait_for("conns flow", || dest_stats(&s, "10.0.0.11").0 > 1000);

    // 1000 changes while frames flow.
    let mut n = 0;
    let mut change = |args: &[&str]| {
        ok(&s, args);
        n += 1;
    };
    for i in 0..100 {
        let vip = format!("10.0.0.{}:80", 150 + i % 50);
        change(&["-A", "-t", &vip, "-s", "wlc"]);
        change(&["-a", "-t", &vip, "-r", "10.0.0.11", "-g", "-w", "2"]);
        change(&["-a", "-t", &vip, "-r", "10.0.0.12", "-g"]);
        change(&["-e", "-t", &vip, "-r", "10.0.0.11", "-g", "-w", "0"]);
        change(&["-E", "-t", &vip, "-s", "rr", "-p", "30"]);
        change(&["-a", "-t", &vip, "-r", "10.0.0.13", "-m", "-x", "100"]);
        change(&["-d", "-t", &vip, "-r", "10.0.0.12"]);
        change(&[
            "-e",
            "-t",
            "10.0.0.100:80",
            "-r",
            "10.0.0.12",
            "-g",
            "-w",
            &(1 + i % 3).to_string(),
        ]);
        change(&[
            "-e",
            "-t",
            "10.0.0.100:80",
            "-r",
            "10.0.0.12",
            "-g",
            "-w",
            "1",
        ]);
        change(&["-D", "-t", &vip]);
    }
    assert_eq!(n, 1000);
    // A refused change: ipvsadm's error, nothing changes.
    let (code, _, err) = rvsadm(&s, &["-a", "-t", "10.0.0.100:80", "-r", "10.0.0.11"]);
    assert_ne!(code, 0);
    assert!(err.contains("Destination already exists"), "{err}");
    let (code, _, err) = rvsadm(&s, &["-d", "-t", "10.0.0.99:80", "-r", "10.0.0.11"]);
    assert_ne!(code, 0);
    assert!(err.contains("Service not defined"), "{err}");
    assert_eq!(
        ok(&s, &["-Sn"]),
        RULES,
        "after the 1000 changes, the rules of the start"
    );

    // Drain .11: from the moment -e returns, no new conn goes to it; .12 takes them.
    ok(
        &s,
        &[
            "-e",
            "-t",
            "10.0.0.100:80",
            "-r",
            "10.0.0.11",
            "-g",
            "-w",
            "0",
        ],
    );
    let (a0, _) = dest_stats(&s, "10.0.0.11");
    let (b0, _) = dest_stats(&s, "10.0.0.12");
    std::thread::sleep(Duration::from_millis(1500));
    let (a1, _) = dest_stats(&s, "10.0.0.11");
    let (b1, _) = dest_stats(&s, "10.0.0.12");
    assert_eq!(a1, a0, "a drained dest got new conns");
    assert!(b1 > b0, "the other dest took no new conns ({b0} -> {b1})");
    assert!(dest_conns(&s, "10.0.0.11") > 0, "its conns stay");
    ok(
        &s,
        &[
            "-e",
            "-t",
            "10.0.0.100:80",
            "-r",
            "10.0.0.11",
            "-g",
            "-w",
            "1",
        ],
    );

    // -S | -C | -R gives the same rules back.
    let saved = ok(&s, &["-S", "-n"]);
    ok(&s, &["-C"]);
    assert_eq!(ok(&s, &["-S", "-n"]), "");
    assert!(rvsadm_input(&s, "-R", saved.as_bytes()));
    assert_eq!(ok(&s, &["-S", "-n"]), saved);

    // --replace keeps the conns of the dests that stay.
    wait_for("conns again", || dest_conns(&s, "10.0.0.12") > 1000);
    let before = dest_conns(&s, "10.0.0.12");
    assert!(rvsadm_input(
        &s,
        "--replace",
        b"-A -t 10.0.0.100:80 -s wlc\n-a -t 10.0.0.100:80 -r 10.0.0.12 -g\n-a -t 10.0.0.100:80 -r 10.0.0.13 -g\n"
    ));
    let listed = ok(&s, &["-Ln"]);
    assert!(
        listed.contains("TCP  10.0.0.100:80 wlc") && !listed.contains("10.0.0.11:80"),
        "{listed}"
    );
    assert!(
        dest_conns(&s, "10.0.0.12") * 2 > before,
        "kept its conns: {before} -> {listed}"
    );

    // SIGHUP re-reads --rules the same way.
    std::fs::write(
        &rules,
        "-A -t 10.0.0.100:80 -s sh\n-a -t 10.0.0.100:80 -r 10.0.0.12 -g\n",
    )
    .unwrap();
    let before = dest_conns(&s, "10.0.0.12");
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(rvsd.child.id() as i32, libc::SIGHUP) };
    wait_for("SIGHUP applied", || {
        ok(&s, &["-Ln"]).contains("10.0.0.100:80 sh")
    });
    let listed = ok(&s, &["-Ln"]);
    assert!(!listed.contains("10.0.0.13"), "{listed}");
    assert!(dest_conns(&s, "10.0.0.12") * 2 > before, "kept its conns");
    // A bad file on SIGHUP changes nothing.
    std::fs::write(&rules, "-A -t 10.0.0.100:80 -s nope\n").unwrap();
    unsafe { libc::kill(rvsd.child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(ok(&s, &["-Ln"]).contains("10.0.0.100:80 sh"));

    // Stop: every frame in went out or was counted as a drop.
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(rvsd.child.id() as i32, libc::SIGTERM) };
    let out = rvsd.child.wait_with_output_ref();
    assert!(out, "rvsd stopped cleanly");
    let m = std::fs::read_to_string(&metrics).unwrap();
    let sum = |name: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter(|l| l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let rx = sum("rvs_rx_frames_total");
    let out = sum("rvs_tx_frames_total")
        + sum("rvs_path_drops_total")
        + sum("rvs_kernel_frames_total")
        + sum("rvs_handoff_ring_full_total");
    let own = sum("rvs_solicits_total") + sum("rvs_arp_replies_total") + sum("rvs_announces_total");
    // Handed to worker 1 but still in the ring when it stopped.
    let in_flight = sum("rvs_handoff_out_total")
        - sum("rvs_handoff_ring_full_total")
        - sum("rvs_handoff_in_total");
    assert!(rx > 1e6, "frames flowed: {rx}");
    assert!(
        (out + in_flight - own - rx).abs() < 0.5,
        "frames in {rx}, out or dropped {out} (own {own}, in flight {in_flight})"
    );
    assert!(sum("rvs_drops_total") > 0.0 || sum("rvs_path_drops_total") > 0.0);
    assert_eq!(
        metric(&m, "rvs_worker_config_generation{worker=\"0\"}"),
        metric(&m, "rvs_worker_config_generation{worker=\"1\"}")
    );
}

trait WaitRef {
    fn wait_with_output_ref(&mut self) -> bool;
}

impl WaitRef for Child {
    /// Wait (up to 20 s) for the child to exit; true if it exited with success.
    fn wait_with_output_ref(&mut self) -> bool {
        let t = Instant::now();
        loop {
            if let Ok(Some(s)) = self.try_wait() {
                return s.success();
            }
            if t.elapsed() > Duration::from_secs(20) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

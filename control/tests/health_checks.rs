//! The checker thread against real listeners on loopback: a TCP_CHECK whose listener goes
//! away takes its real server out and brings it back when it listens again; an HTTP_GET
//! answered with 500 takes its server out; a MISC_CHECK's exit status sets the weight; the
//! `/metrics` series say so. A reload keeps the state of what stays, and through rvsd's
//! control thread a SIGHUP re-reads the keepalived file (a bad one changes nothing).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_control::appconfig::default_lab;
use rvs_control::control_thread::ControlThread;
use rvs_control::controller::{Base, Controller};
use rvs_control::health::{add_to, Checkers, HealthSeries, Reload};
use rvs_control::keepalived;
use rvs_control::protocol::{Reply, Request};
use rvs_control::rules::RuleSet;
use rvs_control::socket::ControlSocket;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rvs-health-it-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if ok() {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not within 10 s");
}

fn wait_for(sent: &Mutex<Vec<String>>, what: &str, want: impl Fn(&str) -> bool) -> Duration {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if sent.lock().unwrap().iter().any(|l| want(l)) {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what}: not sent within 10 s; sent: {:?}",
        sent.lock().unwrap()
    );
}

/// What the checkers sent: the lines of each `Apply`, and each `Replace`'s text.
#[derive(Clone, Default)]
struct Sent {
    lines: Arc<Mutex<Vec<String>>>,
    replaced: Arc<Mutex<Vec<String>>>,
}

impl Sent {
    fn apply(&self) -> rvs_control::health::Apply {
        let s = self.clone();
        Box::new(move |req| {
            match req {
                Request::Apply { lines } => s.lines.lock().unwrap().extend(lines),
                Request::Replace { text } => s.replaced.lock().unwrap().push(text),
                other => return Err(format!("unexpected {other:?}")),
            }
            Ok(())
        })
    }
}

/// A tiny HTTP server answering every GET with `status` (shared, so a test can change it).
fn http_server(status: Arc<AtomicU16>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let code = status.load(Ordering::Relaxed);
            let _ = write!(s, "HTTP/1.0 {code} X\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    port
}

/// A listener on loopback that accepts (and closes) every connection, for as long as it
/// lives; dropping it closes the port.
struct Listener {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Listener {
    fn on(port: u16) -> Listener {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => drop(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Listener { port, stop }
    }

    fn any() -> Listener {
        Listener::on(0)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread sees the flag within 5 ms and drops the socket.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the series `name` whose labels contain every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            series
                .split_once('{')
                .is_some_and(|(n, rest)| n == name && labels.iter().all(|x| rest.contains(x)))
        })
        .map(|(_, v)| v.parse().unwrap())
}

/// The text is Prometheus exposition: every sample line is `NAME{LABELS} NUMBER` of a
/// family with a TYPE (a histogram's `_bucket`, `_sum`, `_count`).
fn check_exposition(text: &str) {
    let mut typed = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if l.starts_with('#') {
            continue;
        }
        let (series, v) = l.rsplit_once(' ').expect(l);
        v.parse::<f64>().expect(l);
        let name = series.split('{').next().unwrap();
        assert!(series.ends_with('}'), "{l}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.iter().any(|t| t == f))
            })
            .unwrap_or(name);
        assert!(typed.iter().any(|t| t == family), "no TYPE for {l}");
    }
}

#[test]
fn checks_take_real_servers_out_and_bring_them_back() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let status = Arc::new(AtomicU16::new(200));
    let http_port = http_server(Arc::clone(&status));
    let dir = dir("checks");
    let weight_file = dir.join("exit");
    std::fs::write(&weight_file, "0").unwrap();
    let script = dir.join("check.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexit $(cat {})\n", weight_file.display()),
    )
    .unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(
        &conf,
        format!(
            "virtual_server 10.0.0.1 80 {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
    delay_loop 0.1
    real_server 127.0.0.1 {tcp_port} {{
        TCP_CHECK {{
            connect_timeout 0.5
            retry 1
            delay_before_retry 0.05
        }}
    }}
    real_server 127.0.0.2 {http_port} {{
        HTTP_GET {{
            connect_ip 127.0.0.1
            url {{
                path /health
                status_code 200
            }}
            connect_timeout 0.5
            retry 0
        }}
    }}
    real_server 127.0.0.3 80 {{
        inhibit_on_failure
        MISC_CHECK {{
            misc_path \"/bin/sh {}\"
            misc_timeout 2
            misc_dynamic
        }}
    }}
}}
",
            script.display()
        ),
    )
    .unwrap();
    let cfg = keepalived::load(&conf).unwrap();
    let initial = cfg.rules(&cfg.initial()).unwrap();
    let sent = Sent::default();
    let series = HealthSeries::new();
    let checkers = Checkers::start(cfg, initial, sent.apply(), None, series.clone()).unwrap();
    // All up: nothing to change.
    std::thread::sleep(Duration::from_millis(400));
    let lines = &sent.lines;
    let early = lines.lock().unwrap().clone();
    assert!(early.is_empty(), "{early:?}");
    // The series, with the labels of the rvs_ipvs_backend_* series.
    let tcp_rs = format!(
        "local_address=\"10.0.0.1\",local_port=\"80\",remote_address=\"127.0.0.1\",remote_port=\"{tcp_port}\",proto=\"TCP\",local_mark=\"\""
    );
    let tcp_check = [tcp_rs.as_str(), "check=\"TCP_CHECK\"", "checker=\"0\""];
    wait_until("two TCP checks", || {
        sample(
            &series.render(),
            "rvs_health_check_duration_seconds_count",
            &tcp_check,
        )
        .is_some_and(|n| n >= 2.0)
    });
    let text = series.render();
    check_exposition(&text);
    assert_eq!(
        sample(&text, "rvs_health_up", &tcp_check),
        Some(1.0),
        "{text}"
    );
    let count = sample(&text, "rvs_health_check_duration_seconds_count", &tcp_check).unwrap();
    let mut inf = tcp_check.to_vec();
    inf.push("le=\"+Inf\"");
    assert_eq!(
        sample(&text, "rvs_health_check_duration_seconds_bucket", &inf),
        Some(count)
    );
    let sum = sample(&text, "rvs_health_check_duration_seconds_sum", &tcp_check).unwrap();
    assert!(sum > 0.0, "{sum}");
    assert_eq!(
        sample(&text, "rvs_health_quorum", &["local_port=\"80\""]),
        Some(1.0)
    );

    // The TCP listener goes: out after a failure and its retry.
    drop(tcp);
    let d = format!("-d -t 10.0.0.1:80 -r 127.0.0.1:{tcp_port}");
    let took = wait_for(lines, "the TCP real server's removal", |l| l == d);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let text = series.render();
    assert_eq!(sample(&text, "rvs_health_up", &tcp_check), Some(0.0));
    assert_eq!(
        sample(&text, "rvs_health_real_server_up", &[&tcp_rs]),
        Some(0.0)
    );
    let failures = sample(&text, "rvs_health_check_failures_total", &tcp_check).unwrap();
    assert!(failures >= 2.0, "a failure and its retry: {failures}");
    let down = [tcp_rs.as_str(), "direction=\"down\""];
    let up = [tcp_rs.as_str(), "direction=\"up\""];
    assert_eq!(
        sample(&text, "rvs_health_transitions_total", &down),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "rvs_health_transitions_total", &up),
        Some(0.0)
    );
    // It listens again: back on the first success.
    let _tcp = TcpListener::bind(("127.0.0.1", tcp_port)).unwrap();
    let a = format!("-a -t 10.0.0.1:80 -r 127.0.0.1:{tcp_port} -m -w 1");
    wait_for(lines, "the TCP real server's return", |l| l == a);
    let text = series.render();
    assert_eq!(sample(&text, "rvs_health_up", &tcp_check), Some(1.0));
    assert_eq!(
        sample(&text, "rvs_health_transitions_total", &up),
        Some(1.0)
    );
    // HTTP 500 with status_code 200: out.
    status.store(500, Ordering::Relaxed);
    let d = format!("-d -t 10.0.0.1:80 -r 127.0.0.2:{http_port}");
    wait_for(lines, "the HTTP real server's removal", |l| l == d);
    let http_check = [
        &format!("remote_address=\"127.0.0.2\",remote_port=\"{http_port}\""),
        "check=\"HTTP_GET\"",
    ];
    assert_eq!(
        sample(&series.render(), "rvs_health_up", &http_check),
        Some(0.0)
    );
    // The MISC_CHECK exits 9: weight 7; exits 1: down, and inhibited (weight 0). (The
    // script runs through /bin/sh: a file just written cannot be exec'd while another
    // thread's fork holds it open, ETXTBSY.)
    lines.lock().unwrap().clear();
    std::fs::write(&weight_file, "9").unwrap();
    wait_for(lines, "the MISC weight", |l| {
        l == "-e -t 10.0.0.1:80 -r 127.0.0.3:80 -m -w 7"
    });
    lines.lock().unwrap().clear();
    std::fs::write(&weight_file, "1").unwrap();
    wait_for(lines, "the MISC failure", |l| {
        l == "-e -t 10.0.0.1:80 -r 127.0.0.3:80 -m -w 0"
    });
    let text = series.render();
    check_exposition(&text);
    let misc = ["remote_address=\"127.0.0.3\"", "check=\"MISC_CHECK\""];
    assert_eq!(sample(&text, "rvs_health_up", &misc), Some(0.0), "{text}");
    assert_eq!(
        sample(&text, "rvs_health_real_server_up", &misc[..1]),
        Some(0.0)
    );
    checkers.stop();
}

/// A keepalived file with virtual server `vip:80` over loopback real servers on `ports`,
/// each with a TCP_CHECK every 0.1 s.
fn ka_conf(vss: &[(&str, &[u16])]) -> String {
    let mut t = String::new();
    for (vip, ports) in vss {
        t.push_str(&format!(
            "virtual_server {vip} 80 {{\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    delay_loop 0.1\n"
        ));
        for p in *ports {
            t.push_str(&format!(
                "    real_server 127.0.0.1 {p} {{\n        TCP_CHECK {{\n            connect_timeout 0.5\n            retry 1\n            delay_before_retry 0.05\n        }}\n    }}\n"
            ));
        }
        t.push_str("}\n");
    }
    t
}

fn write(path: &Path, text: &str) -> keepalived::KaConfig {
    std::fs::write(path, text).unwrap();
    keepalived::load(path).unwrap()
}

#[test]
fn a_reload_keeps_the_state_of_what_stays_and_changes_only_what_differs() {
    let live = Listener::any();
    let live2 = Listener::any();
    let dead = dead_port();
    let conf = dir("reload").join("keepalived.conf");
    let cfg = write(
        &conf,
        &ka_conf(&[("10.0.0.1", &[live.port, dead]), ("10.0.0.2", &[live.port])]),
    );
    let initial = cfg.rules(&cfg.initial()).unwrap();
    let sent = Sent::default();
    let series = HealthSeries::new();
    let checkers = Checkers::start(cfg, initial, sent.apply(), None, series.clone()).unwrap();
    let d = format!("-d -t 10.0.0.1:80 -r 127.0.0.1:{dead}");
    wait_for(&sent.lines, "the dead real server's removal", |l| l == d);
    let checks_before = series.totals().0;
    // The new file: 10.0.0.1 gains a real server, 10.0.0.2 goes, 10.0.0.3 comes.
    let new = write(
        &conf,
        &ka_conf(&[
            ("10.0.0.1", &[live.port, dead, live2.port]),
            ("10.0.0.3", &[live.port]),
        ]),
    );
    sent.lines.lock().unwrap().clear();
    let (tx, rx) = channel();
    checkers
        .reloader()
        .reload(Reload {
            cfg: new.clone(),
            rules: None,
            done: Some(tx),
        })
        .unwrap();
    let summary = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert!(summary.contains("2 of them kept their state"), "{summary}");
    // Only what differs, in one change: the dead server is not added back (it stays down
    // without failing again), nothing is sent for the live one.
    let got = sent.lines.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            format!("-a -t 10.0.0.1:80 -r 127.0.0.1:{} -m -w 1", live2.port),
            "-A -t 10.0.0.3:80 -s rr".to_string(),
            format!("-a -t 10.0.0.3:80 -r 127.0.0.1:{} -m -w 1", live.port),
            "-D -t 10.0.0.2:80".to_string(),
        ]
    );
    // The checkers run on the new file: the dead server's comes back when it listens; the
    // series go on (counts kept) and show the new virtual server, not the old.
    let back = Listener::on(dead);
    let a = format!("-a -t 10.0.0.1:80 -r 127.0.0.1:{dead} -m -w 1");
    wait_for(&sent.lines, "the dead server's return", |l| l == a);
    let text = series.render();
    assert!(series.totals().0 > checks_before);
    let dead_rs = format!("remote_port=\"{dead}\"");
    assert_eq!(
        sample(
            &text,
            "rvs_health_transitions_total",
            &[&dead_rs, "direction=\"down\""]
        ),
        Some(1.0),
        "the down before the reload is still counted"
    );
    assert!(sample(&text, "rvs_health_up", &["local_address=\"10.0.0.3\""]).is_some());
    assert!(sample(&text, "rvs_health_up", &["local_address=\"10.0.0.2\""]).is_none());
    // With --rules: one --replace of the rules file plus the keepalived services...
    let (tx, rx) = channel();
    checkers
        .reloader()
        .reload(Reload {
            cfg: new.clone(),
            rules: Some("-A -t 10.9.9.9:80 -s wlc\n-a -t 10.9.9.9:80 -r 10.9.9.10 -m\n".into()),
            done: Some(tx),
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    let text = sent.replaced.lock().unwrap().pop().unwrap();
    let set = RuleSet::from_text(&text).unwrap().save();
    assert!(set.contains("-A -t 10.9.9.9:80 -s wlc"), "{set}");
    assert!(
        set.contains(&format!("-a -t 10.0.0.1:80 -r 127.0.0.1:{dead} -m -w 1")),
        "{set}"
    );
    // ...refused when they clash, naming the rule; nothing is sent.
    let (tx, rx) = channel();
    checkers
        .reloader()
        .reload(Reload {
            cfg: new,
            rules: Some("-A -t 10.0.0.3:80 -s wlc\n".into()),
            done: Some(tx),
        })
        .unwrap();
    let e = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap_err();
    assert!(e.contains("-A -t 10.0.0.3:80"), "{e}");
    assert!(sent.replaced.lock().unwrap().is_empty());
    drop(back);
    checkers.stop();
}

/// rvsd's control thread with `--rules` and `--keepalived`: the checkers' changes go through
/// its socket; a SIGHUP re-reads both files, keeping the checkers' state; a bad keepalived
/// file on SIGHUP changes nothing and the checkers go on.
#[test]
fn sighup_rereads_the_keepalived_file_and_a_bad_one_changes_nothing() {
    let live = Listener::any();
    let dead = dead_port();
    let d = dir("sighup");
    let rules_path = d.join("rules");
    std::fs::write(
        &rules_path,
        "-A -t 10.9.9.9:80 -s rr\n-a -t 10.9.9.9:80 -r 10.9.9.10 -m\n",
    )
    .unwrap();
    let conf = d.join("keepalived.conf");
    let cfg = write(&conf, &ka_conf(&[("10.0.0.1", &[live.port, dead])]));
    let mut rules = RuleSet::from_text(&std::fs::read_to_string(&rules_path).unwrap()).unwrap();
    let initial = cfg.rules(&cfg.initial()).unwrap();
    add_to(&mut rules, &initial).unwrap();
    let lab = default_lab();
    let base = Base {
        sysctl: lab.sysctl(),
        fwmark_v4: Vec::new(),
        fwmark_v6: Vec::new(),
    };
    // No workers: a change is in force once the controller has it.
    let (ctl, _) = Controller::new(rules, base, 1, 4096).unwrap();
    let sock = d.join("rvsd.sock");
    let _ = std::fs::remove_file(&sock);
    let socket = ControlSocket::bind(&sock, None).unwrap();
    let mut client = rvs_control::adm::client::UnixClient::new(&sock);
    let apply: rvs_control::health::Apply = Box::new(move |req| {
        use rvs_control::adm::client::Transport;
        match client.call(&req) {
            Ok(Reply::Ok { .. }) => Ok(()),
            Ok(Reply::Error(e)) => Err(e.message),
            other => Err(format!("{other:?}")),
        }
    });
    let checkers = Checkers::start(cfg, initial, apply, None, HealthSeries::new()).unwrap();
    let hup: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let mut ct = ControlThread::new(ctl, Vec::new(), Box::new(|_| String::new()), 0)
        .with_socket(socket)
        .with_reload(Some(rules_path.clone()), hup)
        .with_keepalived(conf.clone(), checkers.reloader());
    let t0 = Instant::now();
    let poll_until = |ct: &mut ControlThread, what: &str, ok: &dyn Fn(&str) -> bool| {
        wait_until(what, || {
            ct.poll(t0.elapsed().as_millis() as u64, Duration::from_millis(10));
            ok(&ct.ctl.rules().save())
        })
    };
    let dead_dest = format!("-r 127.0.0.1:{dead} ");
    poll_until(&mut ct, "the dead server's removal", &|s| {
        !s.contains(&dead_dest)
    });
    // New files: another service in the rules, another real server in keepalived's.
    let live2 = Listener::any();
    std::fs::write(
        &rules_path,
        "-A -t 10.9.9.8:80 -s rr\n-a -t 10.9.9.8:80 -r 10.9.9.10 -m\n",
    )
    .unwrap();
    write(
        &conf,
        &ka_conf(&[("10.0.0.1", &[live.port, dead, live2.port])]),
    );
    hup.store(true, Ordering::Relaxed);
    let live2_dest = format!("-r 127.0.0.1:{} ", live2.port);
    poll_until(&mut ct, "the reload", &|s| {
        s.contains("-A -t 10.9.9.8:80") && s.contains(&live2_dest)
    });
    let s = ct.ctl.rules().save();
    assert!(!s.contains("10.9.9.9"), "the rules file replaced: {s}");
    assert!(!s.contains(&dead_dest), "the dead server stays out: {s}");
    // A bad keepalived file: refused on SIGHUP (rvsd logs its file, line and keyword);
    // nothing changes.
    let bad = format!(
        "{}virtual_server 10.0.0.5 80 {{\n    lb_algo rr\n    warmup 3\n}}\n",
        ka_conf(&[("10.0.0.1", &[live.port])])
    );
    std::fs::write(&conf, &bad).unwrap();
    let e = keepalived::load(&conf).unwrap_err().to_string();
    assert!(
        e.contains("keepalived.conf:") && e.contains("warmup"),
        "{e}"
    );
    let before = ct.ctl.rules().save();
    let generation = ct.ctl.generation();
    hup.store(true, Ordering::Relaxed);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(500) {
        ct.poll(t0.elapsed().as_millis() as u64, Duration::from_millis(10));
    }
    assert!(!hup.load(Ordering::Relaxed), "the SIGHUP was taken");
    assert_eq!(ct.ctl.rules().save(), before);
    assert_eq!(ct.ctl.generation(), generation);
    // The checkers run on the last good file: the dead server comes back when it listens.
    let _back = Listener::on(dead);
    poll_until(&mut ct, "the dead server's return", &|s| {
        s.contains(&dead_dest)
    });
    checkers.stop();
}

/// `openssl s_server -WWW` on loopback (a real TLS server, self-signed): serves the files of
/// its directory; killed when dropped.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> TlsServer {
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl is needed for the SSL_GET test (ci/setup.sh installs it)");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-subj",
            "/CN=rvs-test",
            "-days",
            "1",
        ]);
        let port = dead_port();
        let child = std::process::Command::new("openssl")
            .args([
                "s_server", "-quiet", "-WWW", "-cert", "cert.pem", "-key", "key.pem",
            ])
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server");
        wait_until("openssl s_server listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        TlsServer { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SSL_GET speaks TLS (a self-signed certificate is accepted, as keepalived accepts it),
/// checks the body's digest through it, takes its server out when the digest or the
/// connection fails, and a plain-HTTP server fails it.
#[test]
fn ssl_get_checks_over_tls() {
    use md5::{Digest, Md5};
    let d = dir("ssl");
    std::fs::write(d.join("health"), "ok\n").unwrap();
    let tls = TlsServer::start(&d);
    let plain = http_server(Arc::new(AtomicU16::new(200)));
    let digest: String = Md5::digest(b"ok\n")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let conf = d.join("keepalived.conf");
    let check = format!(
        "        SSL_GET {{\n            url {{\n                path /health\n                digest {digest}\n            }}\n            connect_timeout 1\n            retry 0\n        }}\n"
    );
    let cfg = write(
        &conf,
        &format!(
            "virtual_server 10.0.0.1 443 {{\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    delay_loop 0.1\n    real_server 127.0.0.1 {} {{\n{check}    }}\n    real_server 127.0.0.1 {plain} {{\n{check}    }}\n}}\n",
            tls.port
        ),
    );
    let initial = cfg.rules(&cfg.initial()).unwrap();
    let sent = Sent::default();
    let series = HealthSeries::new();
    let checkers = Checkers::start(cfg, initial, sent.apply(), None, series.clone()).unwrap();
    // The plain-HTTP server cannot answer a TLS handshake: out.
    let d_plain = format!("-d -t 10.0.0.1:443 -r 127.0.0.1:{plain}");
    wait_for(&sent.lines, "the plain-HTTP server's removal", |l| {
        l == d_plain
    });
    let tls_rs = format!("remote_port=\"{}\"", tls.port);
    wait_until("an SSL_GET through TLS", || {
        sample(
            &series.render(),
            "rvs_health_check_duration_seconds_count",
            &[&tls_rs, "check=\"SSL_GET\""],
        )
        .is_some_and(|n| n >= 3.0)
    });
    let text = series.render();
    assert_eq!(
        sample(&text, "rvs_health_check_failures_total", &[&tls_rs]),
        Some(0.0),
        "the TLS server's checks pass: {text}"
    );
    assert_eq!(sample(&text, "rvs_health_up", &[&tls_rs]), Some(1.0));
    // Another body: the digest differs, out; the right one again: back.
    sent.lines.lock().unwrap().clear();
    std::fs::write(d.join("health"), "bad\n").unwrap();
    let d_tls = format!("-d -t 10.0.0.1:443 -r 127.0.0.1:{}", tls.port);
    wait_for(&sent.lines, "the digest's failure", |l| l == d_tls);
    std::fs::write(d.join("health"), "ok\n").unwrap();
    let a_tls = format!("-a -t 10.0.0.1:443 -r 127.0.0.1:{} -m -w 1", tls.port);
    wait_for(&sent.lines, "the TLS server's return", |l| l == a_tls);
    // The TLS server stops: out.
    sent.lines.lock().unwrap().clear();
    drop(tls);
    wait_for(&sent.lines, "the stopped TLS server's removal", |l| {
        l == d_tls
    });
    checkers.stop();
}

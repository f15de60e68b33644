//! The checker thread against real listeners on loopback: a TCP_CHECK whose listener goes
//! away takes its real server out and brings it back when it listens again; an HTTP_GET
//! answered with 500 takes its server out; a MISC_CHECK's exit status sets the weight. The
//! rule changes are what rvsd would send to its control socket.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_control::health::Checkers;
use rvs_control::keepalived;

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

#[test]
fn checks_take_real_servers_out_and_bring_them_back() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let status = Arc::new(AtomicU16::new(200));
    let http_port = http_server(Arc::clone(&status));
    let dir = std::env::temp_dir().join(format!("rvs-health-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let weight_file = dir.join("exit");
    std::fs::write(&weight_file, "0").unwrap();
    let script = dir.join("check.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexit $(cat {})\n", weight_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
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
            misc_path \"{}\"
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
    let sent = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = Arc::clone(&sent);
    let checkers = Checkers::start(
        cfg,
        initial,
        Box::new(move |lines| {
            s.lock().unwrap().extend(lines);
            Ok(())
        }),
        None,
    )
    .unwrap();
    // All up: nothing to change.
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        sent.lock().unwrap().is_empty(),
        "{:?}",
        sent.lock().unwrap()
    );
    // The TCP listener goes: out after a failure and its retry.
    drop(tcp);
    let d = format!("-d -t 10.0.0.1:80 -r 127.0.0.1:{tcp_port}");
    let took = wait_for(&sent, "the TCP real server's removal", |l| l == d);
    assert!(took < Duration::from_secs(2), "{took:?}");
    // It listens again: back on the first success.
    let _tcp = TcpListener::bind(("127.0.0.1", tcp_port)).unwrap();
    let a = format!("-a -t 10.0.0.1:80 -r 127.0.0.1:{tcp_port} -m -w 1");
    wait_for(&sent, "the TCP real server's return", |l| l == a);
    // HTTP 500 with status_code 200: out.
    status.store(500, Ordering::Relaxed);
    let d = format!("-d -t 10.0.0.1:80 -r 127.0.0.2:{http_port}");
    wait_for(&sent, "the HTTP real server's removal", |l| l == d);
    // The MISC_CHECK exits 9: weight 7; exits 1: down, and inhibited (weight 0).
    std::fs::write(&weight_file, "9").unwrap();
    wait_for(&sent, "the MISC weight", |l| {
        l == "-e -t 10.0.0.1:80 -r 127.0.0.3:80 -m -w 7"
    });
    std::fs::write(&weight_file, "1").unwrap();
    wait_for(&sent, "the MISC failure", |l| {
        l == "-e -t 10.0.0.1:80 -r 127.0.0.3:80 -m -w 0"
    });
    checkers.stop();
}

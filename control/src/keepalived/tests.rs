//! keepalived.conf fixtures (real keepalived files: each valid one also passes Debian's
//! `keepalived --config-test`) into rules, and refusals that name the file, line and keyword.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keepalived")
        .join(name)
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rvs-ka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// keepalived's own verdict on a file (Debian's keepalived 2.2.7; CI installs it).
fn keepalived_accepts(p: &Path) -> bool {
    let out = Command::new("keepalived")
        .args(["--config-test", "-f"])
        .arg(p)
        .output()
        .expect("keepalived is needed for these tests (apt-get install keepalived)");
    out.status.success()
}

#[test]
fn the_lab_file_gives_the_rules_keepalived_would_set_up() {
    let p = fixture("lab.conf");
    assert!(
        keepalived_accepts(&p),
        "the fixture is a valid keepalived file"
    );
    let cfg = load(&p).unwrap();
    assert_eq!(cfg.notes.len(), 2, "{:?}", cfg.notes);
    assert!(cfg.notes[1].contains("VRRP blocks ignored"));
    let rules = cfg.rules(&cfg.initial()).unwrap();
    let want = "\
-A -t 10.0.0.100:80 -s wlc -p 120 -M 255.255.255.0
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 2 -x 1000 -y 100
-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1
-A -t 10.0.0.101:80 -s wlc -p 120 -M 255.255.255.0
-a -t 10.0.0.101:80 -r 10.0.0.11:80 -g -w 2 -x 1000 -y 100
-a -t 10.0.0.101:80 -r 10.0.0.12:80 -g -w 1
-A -t 10.0.0.102:80 -s wlc -p 120 -M 255.255.255.0
-a -t 10.0.0.102:80 -r 10.0.0.11:80 -g -w 2 -x 1000 -y 100
-a -t 10.0.0.102:80 -r 10.0.0.12:80 -g -w 1
-A -t 10.0.3.100:443 -s rr
-a -t 10.0.3.100:443 -r 10.0.2.11:8443 -m -w 0
-a -t 10.0.3.100:443 -r 10.0.2.12:8443 -m -w 0
-A -u [fd00::100]:53 -s sh -o -b sh-port
-a -u [fd00::100]:53 -r [fd00:2::11]:5353 -m -w 1
-A -f 7 -s mh -p 360 -b mh-fallback
-a -f 7 -r 10.0.4.11:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum
";
    assert_eq!(rules.save(), want);
    // The model kept what the checkers need, inherited as keepalived does.
    let web = &cfg.virtual_servers[0];
    assert_eq!((web.quorum, web.hysteresis), (2, 1));
    let rs11 = &web.real_servers[0];
    assert_eq!(
        rs11.notify_up.as_deref(),
        Some("/usr/local/bin/rs-up 10.0.0.11")
    );
    let tcp = &rs11.checkers[0];
    assert_eq!(tcp.kind, CheckKind::Tcp);
    assert_eq!(tcp.retry(), 2);
    assert_eq!(tcp.timing.delay_loop, std::time::Duration::from_secs(1));
    let http = &web.real_servers[1].checkers[0];
    assert_eq!(http.connect_port, Some(8080));
    assert_eq!(http.delay_before_retry(), std::time::Duration::from_secs(3));
    let CheckKind::Http { urls, .. } = &http.kind else {
        panic!("{:?}", http.kind)
    };
    assert_eq!(urls[0].status, vec![(200, 200), (204, 204)]);
    assert_eq!(urls[1].status, Vec::<(u16, u16)>::new(), "a digest alone");
    let nat = &cfg.virtual_servers[1];
    let CheckKind::Misc { path, dynamic, .. } = &nat.real_servers[1].checkers[0].kind else {
        panic!()
    };
    assert!(*dynamic && path == "/usr/local/bin/check-rs 10.0.2.12");
    assert_eq!(
        nat.real_servers[1].checkers[0].retry(),
        0,
        "MISC_CHECK's default"
    );
}

#[test]
fn quorum_lost_brings_in_the_sorry_server_and_down_servers_leave_or_go_to_zero() {
    let cfg = load(&fixture("lab.conf")).unwrap();
    let mut st = cfg.initial();
    // 10.0.0.11 down: live weight 1 < quorum 2.
    st[0].real[0].up = false;
    st[0].quorum = false;
    // 10.0.2.12 (inhibit_on_failure) up at a misc_dynamic weight.
    st[1].real[1] = Live {
        up: true,
        weight: 7,
    };
    let saved = cfg.rules(&st).unwrap().save();
    assert!(saved.contains("-a -t 10.0.0.100:80 -r 10.0.0.99:80 -g -w 1\n"));
    assert!(
        !saved.contains("-r 10.0.0.11:80"),
        "down, not inhibited: removed"
    );
    assert!(
        !saved.contains("-r 10.0.0.12:80"),
        "quorum lost: the sorry server only"
    );
    assert!(saved.contains("-a -t 10.0.3.100:443 -r 10.0.2.12:8443 -m -w 7\n"));
    assert!(saved.contains("-a -t 10.0.3.100:443 -r 10.0.2.11:8443 -m -w 0\n"));
}

/// A keepalived-valid file rvs refuses, with where and why.
fn refusal(text: &str) -> String {
    let p = tmp("refused.conf", text);
    let e = load(&p).unwrap_err();
    e.to_string().replace(&format!("{}", p.display()), "FILE")
}

#[test]
fn what_rvs_does_not_support_is_refused_naming_file_line_and_keyword() {
    let vs = |body: &str| {
        format!("virtual_server 10.0.0.1 80 {{\n    lb_kind NAT\n    lb_algo rr\n    protocol TCP\n{body}    real_server 10.0.0.11 80 {{\n        TCP_CHECK {{\n        }}\n    }}\n}}\n")
    };
    // keepalived accepts these; rvs refuses them rather than silently not doing them.
    let warmup = vs("    warmup 5\n");
    assert!(keepalived_accepts(&tmp("warmup.conf", &warmup)));
    assert_eq!(
        refusal(&warmup),
        "FILE:5: warmup: not supported by rvs in a virtual_server"
    );
    let quorum_up = vs("    quorum_up /usr/local/bin/quorum-up\n");
    assert!(keepalived_accepts(&tmp("qup.conf", &quorum_up)));
    // SSL_GET: HTTP_GET over TLS, `enable_sni` its own (keepalived takes it in HTTP_GET too,
    // where it does nothing; rvs says so).
    let ssl = "virtual_server 10.0.0.1 443 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.11 443 {\n        SSL_GET {\n            enable_sni\n            url {\n                path /\n                virtualhost www.example.com\n            }\n        }\n    }\n}\n";
    assert!(keepalived_accepts(&tmp("ssl.conf", ssl)));
    let c = load(&tmp("ssl.conf", ssl)).unwrap();
    let check = &c.virtual_servers[0].real_servers[0].checkers[0];
    let CheckKind::Http { urls, tls, sni } = &check.kind else {
        panic!("{:?}", check.kind)
    };
    assert!(*tls && *sni);
    assert_eq!(urls[0].virtualhost.as_deref(), Some("www.example.com"));
    assert_eq!(
        check.delay_before_retry(),
        std::time::Duration::from_secs(3)
    );
    // A client certificate or a CA to verify with (keepalived's top-level SSL block): refused.
    assert_eq!(
        refusal(&format!("SSL {{\n    ca /etc/ssl/ca.pem\n}}\n{ssl}")),
        "FILE:1: SSL: not supported by rvs (or not a keepalived keyword)"
    );
    let sni_http = ssl.replace("SSL_GET", "HTTP_GET");
    assert!(keepalived_accepts(&tmp("sni-http.conf", &sni_http)));
    assert_eq!(
        refusal(&sni_http),
        "FILE:7: enable_sni: not supported by rvs in a HTTP_GET"
    );
    assert_eq!(
        refusal(&quorum_up),
        "FILE:5: quorum_up: not supported by rvs in a virtual_server"
    );
    let ping = "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.11 80 {\n        PING_CHECK {\n        }\n    }\n}\n";
    assert!(keepalived_accepts(&tmp("ping.conf", ping)));
    assert_eq!(
        refusal(ping),
        "FILE:6: PING_CHECK: not supported by rvs in a real_server"
    );
    // Errors of the rules themselves name the keepalived line.
    let mixed =
        "virtual_server 10.0.0.1 80 {\n    lb_kind NAT\n    real_server fd00::11 80 {\n    }\n}\n";
    let e = refusal(mixed);
    assert!(
        e.starts_with("FILE:3: real_server: ")
            && e.contains("IPv6 real server for an IPv4 service"),
        "{e}"
    );
    assert_eq!(
        refusal("virtual_server 10.0.0.1 80 {\n    lb_algo nonesuch\n}\n"),
        "FILE:2: lb_algo: nonesuch: unknown scheduler"
    );
    assert_eq!(
        refusal("virtual_server 10.0.0.1 80 {\n    real_server 10.0.0.11 80 {\n        HTTP_GET {\n            url {\n                path /\n                status_code 2000\n            }\n        }\n    }\n}\n"),
        "FILE:6: status_code: 2000: want a status code or range (100..599)"
    );
    assert_eq!(
        refusal("include nothing-here/*.conf\n"),
        "FILE:1: include: nothing-here/*.conf: no such file"
    );
    assert_eq!(
        refusal("virtual_server 10.0.0.1 80 {\n    delay_loop 1\n"),
        "FILE:1: {: block not closed (no matching })"
    );
    assert_eq!(
        refusal("vrrp_instance X {\n}\nlvs_sync_daemon eth0 X\n"),
        "FILE:3: lvs_sync_daemon: not supported by rvs (or not a keepalived keyword)"
    );
}

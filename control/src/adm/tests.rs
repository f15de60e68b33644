//! rvsadm end to end against a stand-in rvsd: requests sent, output, exit codes.

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;

use super::client::{ClientError, Transport};
use super::names::NumericNames;
use super::*;
use crate::protocol::{ConnPage, ConnRow, ErrorKind, ErrorReply, Listing, Reply, Request};

/// Answers with the replies it was given, in order, and keeps the requests.
#[derive(Default)]
struct FakeRvsd {
    replies: VecDeque<Reply>,
    requests: Vec<Request>,
    down: bool,
}

impl FakeRvsd {
    fn answering(replies: Vec<Reply>) -> Self {
        FakeRvsd {
            replies: replies.into(),
            ..Default::default()
        }
    }
}

impl Transport for FakeRvsd {
    fn call(&mut self, req: &Request) -> Result<Reply, ClientError> {
        if self.down {
            return Err(ClientError::Connect {
                path: "/run/rvsd.sock".into(),
                err: io::Error::new(io::ErrorKind::NotFound, "No such file or directory"),
            });
        }
        self.requests.push(req.clone());
        Ok(self
            .replies
            .pop_front()
            .unwrap_or(Reply::Ok { generation: 1 }))
    }
    fn peer(&self) -> String {
        "rvsd at /run/rvsd.sock".into()
    }
}

struct Ran {
    code: u8,
    stdout: String,
    stderr: String,
}

fn run_with(args: &str, stdin: &str, rvsd: &mut FakeRvsd) -> Ran {
    let args: Vec<String> = args.split_whitespace().map(String::from).collect();
    let mut input = stdin.as_bytes();
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let mut io = Io {
        stdin: &mut input,
        stdout: &mut o,
        stderr: &mut e,
    };
    let code = run("rvsadm", &args, &mut io, rvsd, &NumericNames);
    Ran {
        code,
        stdout: String::from_utf8(o).unwrap(),
        stderr: String::from_utf8(e).unwrap(),
    }
}

fn refused(msg: &str) -> Reply {
    Reply::Error(ErrorReply {
        kind: ErrorKind::Refused,
        message: msg.into(),
    })
}

#[test]
fn socket_comes_from_the_option_then_the_environment_then_the_default() {
    let v = |s: &str| -> Vec<String> { s.split_whitespace().map(String::from).collect() };
    let mut a = v("--socket /tmp/x.sock -Ln");
    assert_eq!(
        socket_path(&mut a, Some("/env.sock".into())).unwrap(),
        "/tmp/x.sock"
    );
    assert_eq!(a, v("-Ln"));
    let mut a = v("--socket=/tmp/y.sock");
    assert_eq!(socket_path(&mut a, None).unwrap(), "/tmp/y.sock");
    assert!(a.is_empty());
    let mut a = v("-Ln");
    assert_eq!(
        socket_path(&mut a, Some("/env.sock".into())).unwrap(),
        "/env.sock"
    );
    assert_eq!(
        socket_path(&mut a, Some(String::new())).unwrap(),
        "/run/rvsd.sock"
    );
    assert_eq!(socket_path(&mut a, None).unwrap(), "/run/rvsd.sock");
    let mut a = v("--socket");
    assert_eq!(socket_path(&mut a, None).unwrap_err().code, 2);
}

#[test]
fn a_change_is_sent_as_its_canonical_line() {
    let mut rvsd = FakeRvsd::default();
    let r = run_with("-a -t 10.0.0.1:80 -r 10.0.1.1 -m", "", &mut rvsd);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    assert_eq!(
        rvsd.requests,
        vec![Request::Apply {
            lines: vec!["-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1".into()]
        }]
    );
}

#[test]
fn a_refused_change_prints_the_kernels_words_and_exits_255() {
    let mut rvsd = FakeRvsd::answering(vec![refused(
        "line 1: -t 10.0.0.1:80 -r 10.0.1.1:80: Destination already exists",
    )]);
    let r = run_with("-a -t 10.0.0.1:80 -r 10.0.1.1", "", &mut rvsd);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (255, "Destination already exists\n")
    );
    let mut rvsd = FakeRvsd::answering(vec![refused("-t 10.0.0.1:80: No such service")]);
    let r = run_with("-Z -t 10.0.0.1:80", "", &mut rvsd);
    assert_eq!((r.code, r.stderr.as_str()), (255, "No such service\n"));
}

#[test]
fn a_bad_command_line_sends_nothing() {
    let mut rvsd = FakeRvsd::default();
    let r = run_with("-a -t 10.0.0.1:80 -r 10.0.1.1 -w 99999", "", &mut rvsd);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "illegal weight specified\n")
    );
    let r = run_with("-Q", "", &mut rvsd);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            255,
            "Try `rvsadm -h' or 'rvsadm --help' for more information.\n"
        )
    );
    assert!(rvsd.requests.is_empty());
}

#[test]
fn restore_sends_every_line_at_once() {
    let mut rvsd = FakeRvsd::default();
    let input = "# saved rules\n\
                 -A -t 10.0.0.1:80 -s rr\n\
                 \n\
                 ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2   # first\n\
                 --set 900 120 300\n";
    let r = run_with("-R", input, &mut rvsd);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(
        rvsd.requests,
        vec![Request::Apply {
            lines: vec![
                "-A -t 10.0.0.1:80 -s rr".into(),
                "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2".into(),
                "--set 900 120 300".into(),
            ]
        }]
    );
}

#[test]
fn restore_names_the_bad_line_and_sends_nothing() {
    let mut rvsd = FakeRvsd::default();
    let input = "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1 -w x\n";
    let r = run_with("-R", input, &mut rvsd);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "line 2: illegal weight specified\n")
    );
    assert!(rvsd.requests.is_empty());
    // rvsd's refusal names the line; it is printed whole.
    let mut rvsd = FakeRvsd::answering(vec![refused(
        "line 2: -t 10.0.0.1:80 -r 10.0.1.1:80: Destination already exists",
    )]);
    let r = run_with(
        "-R",
        "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1\n",
        &mut rvsd,
    );
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            255,
            "line 2: -t 10.0.0.1:80 -r 10.0.1.1:80: Destination already exists\n"
        )
    );
}

#[test]
fn replace_sends_the_text_and_a_line_that_does_not_parse_exits_2() {
    let text = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1\n";
    let mut rvsd = FakeRvsd::default();
    let r = run_with("--replace", text, &mut rvsd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(rvsd.requests, vec![Request::Replace { text: text.into() }]);
    // rvsd reads the text once; what it says of it decides the exit code.
    let bad = "-A -t 10.0.0.1:80 -s nope\n";
    let base = crate::controller::Base {
        sysctl: rvs_dataplane::config::Sysctl::default(),
        fwmark_v4: Vec::new(),
        fwmark_v6: Vec::new(),
    };
    let mut c = crate::controller::Controller::new(crate::rules::RuleSet::new(), base, 1, 4096)
        .unwrap()
        .0;
    use crate::controller::Step;
    let Step::Reply(Reply::Error(e)) = c.handle(Request::Replace { text: bad.into() }) else {
        panic!("a syntax error is refused")
    };
    let mut rvsd = FakeRvsd::answering(vec![Reply::Error(e)]);
    let r = run_with("--replace", bad, &mut rvsd);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.starts_with("line 1: "), "{}", r.stderr);
    // A line that parses but is refused: 255, as ipvsadm's refusals.
    let dup = "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n";
    let Step::Reply(Reply::Error(e)) = c.handle(Request::Replace { text: dup.into() }) else {
        panic!("a duplicate is refused")
    };
    let mut rvsd = FakeRvsd::answering(vec![Reply::Error(e)]);
    let r = run_with("--replace", dup, &mut rvsd);
    assert_eq!(r.code, 255, "{}", r.stderr);
    assert!(r.stderr.starts_with("line 2: "), "{}", r.stderr);
}

#[test]
fn listing_a_missing_service_is_no_such_service() {
    let mut rvsd = FakeRvsd::answering(vec![Reply::Listing(Listing {
        conn_table_size: 4096,
        services: vec![],
    })]);
    let r = run_with("-L -n -t 10.0.0.9:80", "", &mut rvsd);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (1, "", "No such service\n")
    );
    assert_eq!(
        rvsd.requests,
        vec![Request::List {
            service: Some("-t 10.0.0.9:80".into())
        }]
    );
    let mut rvsd = FakeRvsd::answering(vec![refused("-t 10.0.0.9:80: No such service")]);
    let r = run_with("-Ln -t 10.0.0.9:80", "", &mut rvsd);
    assert_eq!((r.code, r.stderr.as_str()), (1, "No such service\n"));
}

#[test]
fn no_arguments_lists_everything() {
    let mut rvsd = FakeRvsd::answering(vec![Reply::Listing(Listing {
        conn_table_size: 4096,
        services: vec![],
    })]);
    let r = run_with("", "", &mut rvsd);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout,
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n\
         \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    );
    assert_eq!(rvsd.requests, vec![Request::List { service: None }]);
}

fn conn(cport: u16) -> ConnRow {
    let a = |s: &str| -> IpAddr { s.parse().unwrap() };
    ConnRow {
        proto: 6,
        caddr: a("192.0.2.7"),
        cport,
        vaddr: a("10.0.0.1"),
        vport: 80,
        daddr: a("10.0.1.1"),
        dport: 80,
        state: "ESTABLISHED".into(),
        expires_ms: 899_500,
    }
}

#[test]
fn conns_are_read_page_by_page() {
    let mut rvsd = FakeRvsd::answering(vec![
        Reply::Conns(ConnPage {
            conns: vec![conn(40000)],
            next: Some(7),
        }),
        Reply::Conns(ConnPage {
            conns: vec![conn(40001)],
            next: None,
        }),
    ]);
    let r = run_with("-lnc", "", &mut rvsd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        rvsd.requests,
        vec![Request::Conns { cursor: 0 }, Request::Conns { cursor: 7 }]
    );
    assert_eq!(
        r.stdout,
        "IPVS connection entries\n\
         pro expire state       source             virtual            destination\n\
         TCP 14:59  ESTABLISHED 192.0.2.7:40000    10.0.0.1:80        10.0.1.1:80\n\
         TCP 14:59  ESTABLISHED 192.0.2.7:40001    10.0.0.1:80        10.0.1.1:80\n"
    );
}

#[test]
fn save_timeouts_and_the_rest() {
    let mut rvsd = FakeRvsd::answering(vec![
        Reply::Save {
            text: "-A -t 10.0.0.1:80 -s wlc\n".into(),
        },
        Reply::Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
        },
    ]);
    let r = run_with("-S -n", "", &mut rvsd);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "-A -t 10.0.0.1:80 -s wlc\n")
    );
    let r = run_with("-L --timeout", "", &mut rvsd);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Timeout (tcp tcpfin udp): 900 120 300\n")
    );
    let r = run_with("-L --daemon", "", &mut rvsd);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    let r = run_with("--start-daemon master", "", &mut rvsd);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("sync daemon"));
    let r = run_with("-h", "", &mut rvsd);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("rvsadm -L|l [virtual-service] [options]"));
    assert_eq!(rvsd.requests.len(), 2);
}

#[test]
fn an_unreachable_rvsd_is_named() {
    let mut rvsd = FakeRvsd {
        down: true,
        ..Default::default()
    };
    let r = run_with("-Ln", "", &mut rvsd);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "rvsadm: cannot reach rvsd at /run/rvsd.sock: No such file or directory\n"
    );
}

#[test]
fn an_unexpected_reply_is_an_error() {
    let mut rvsd = FakeRvsd::answering(vec![Reply::Ok { generation: 3 }]);
    let r = run_with("-Ln", "", &mut rvsd);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unexpected Ok reply"), "{}", r.stderr);
}

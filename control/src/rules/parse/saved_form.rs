//! The two lines that make up nearly all of a large rules file, in the form `ipvsadm-save -n`
//! (and [`RuleSet::save`](crate::rules::RuleSet::save)) writes them, read without the getopt:
//!
//! ```text
//! -A -t|-u A.B.C.D:PORT [-s SCHED] [-p SECONDS]
//! -a -t|-u A.B.C.D:PORT -r A.B.C.D[:PORT] [-g|-m|-i] [-w WEIGHT]
//! ```
//!
//! A 10k-service, 100k-dest `--replace` is 110k such lines; through the general parser each
//! cost about 3k instructions (three vectors, the option table, the class checks), here a few
//! hundred. Any other line, any other order of the options, and every line with an error is
//! left to the general parser (`None`), which gives the same command for the lines read here
//! (tested below on option soup): so there is still one grammar, and one set of messages.

use std::net::IpAddr;

use rvs_dataplane::config::Fwd;
use rvs_dataplane::proto::Proto;
use rvs_dataplane::sched::SchedKind;

use super::super::model::{
    Command, Dest, Persist, ServiceId, ServiceSpec, MAX_PERSISTENCE_S, MAX_WEIGHT,
};
use super::super::validate::{check_unicast, normalize_dest_port};
use super::v4_addr_port;

/// The command of `line` if it has one of the two forms above and no error.
pub(super) fn line(line: &str) -> Option<Command> {
    let mut w = line.split_ascii_whitespace();
    let add_dest = match w.next()? {
        "-a" => true,
        "-A" => false,
        _ => return None,
    };
    let proto = match w.next()? {
        "-t" => Proto::Tcp,
        "-u" => Proto::Udp,
        _ => return None,
    };
    let (vip, port) = v4_addr_port(w.next()?)?;
    // Port 0 (all ports) is for persistent services only: the general parser says so.
    let port = port.filter(|&p| p != 0)?;
    let vip = IpAddr::V4(vip);
    check_unicast(vip).ok()?;
    let id = ServiceId::Addr {
        proto,
        addr: vip,
        port,
    };
    if add_dest {
        dest(id, w)
    } else {
        service(id, w)
    }
}

fn service<'a>(id: ServiceId, mut w: impl Iterator<Item = &'a str>) -> Option<Command> {
    let mut spec = ServiceSpec::new(id);
    let (mut sched, mut persist) = (false, false);
    while let Some(o) = w.next() {
        match o {
            "-s" if !sched => {
                spec.sched = SchedKind::parse(w.next()?)?;
                sched = true;
            }
            // `-p` with its value (without one, or with `-M`, the general parser reads it).
            "-p" if !persist => {
                let timeout_s = number(w.next()?, 1, u64::from(MAX_PERSISTENCE_S))? as u32;
                spec.persistence = Some(Persist {
                    timeout_s,
                    prefix: 32,
                });
                persist = true;
            }
            _ => return None,
        }
    }
    Some(Command::AddService(spec))
}

fn dest<'a>(id: ServiceId, mut w: impl Iterator<Item = &'a str>) -> Option<Command> {
    if w.next()? != "-r" {
        return None;
    }
    let (addr, port) = v4_addr_port(w.next()?)?;
    let addr = IpAddr::V4(addr);
    check_unicast(addr).ok()?;
    let mut d = Dest::new(addr, port.unwrap_or(id.port()));
    let (mut fwd, mut weight) = (false, false);
    while let Some(o) = w.next() {
        match o {
            "-g" | "-m" | "-i" if !fwd => {
                d.fwd = match o {
                    "-m" => Fwd::Masq,
                    "-i" => Fwd::Tunnel,
                    _ => Fwd::Droute,
                };
                fwd = true;
            }
            "-w" if !weight => {
                d.weight = number(w.next()?, 0, MAX_WEIGHT as u64)? as i32;
                weight = true;
            }
            _ => return None,
        }
    }
    normalize_dest_port(&id, &mut d);
    Some(Command::AddServer(id, d))
}

/// A decimal number in `lo..=hi`, as the general parser's `parse_num` reads it (leading
/// zeros allowed); anything else is its to refuse.
fn number(s: &str, lo: u64, hi: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = s.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    (lo..=hi).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::general_line;
    use super::*;

    #[test]
    fn the_saved_forms_are_read_here() {
        for l in [
            "-A -t 10.0.0.1:80 -s wlc",
            "-A -u 10.0.0.1:53 -s rr -p 300",
            "-A -t 10.0.0.1:443",
            "-a -t 10.0.0.1:80 -r 10.0.0.11:8080 -m -w 3",
            "-a -t 10.0.0.1:80 -r 10.0.0.11 -g -w 0",
            "-a -u 10.0.0.1:53 -r 10.0.0.12:53 -i",
            "  -a  -t 10.0.0.1:80\t-r 10.0.0.11:80 -w 1 -m ",
        ] {
            let fast = line(l).unwrap_or_else(|| panic!("not read here: {l}"));
            assert_eq!(general_line(l), Ok(Some(fast)), "{l}");
        }
    }

    #[test]
    fn other_forms_and_errors_are_left_to_the_general_parser() {
        for l in [
            "",
            "# -A -t 10.0.0.1:80",
            "ipvsadm -A -t 10.0.0.1:80",
            "-A -t 10.0.0.1:0 -s rr",
            "-A -t 10.0.0.1:80 -s nosuch",
            "-A -t 10.0.0.1:80 -s rr -s wlc",
            "-A -t 10.0.0.1:80 -p",
            "-A -t 10.0.0.1:80 -p 0",
            "-A -t 10.0.0.1:80 -p 300 -M 24",
            "-A -t [fd00::1]:80",
            "-A -t 224.0.0.1:80",
            "-A --tcp-service 10.0.0.1:80",
            "-a -t 10.0.0.1:80 -m -r 10.0.0.11",
            "-a -t 10.0.0.1:80 -r 10.0.0.11 -w 65536",
            "-a -t 10.0.0.1:80 -r 10.0.0.11 -w -1",
            "-a -t 10.0.0.1:80 -r 10.0.0.11 -g -m",
            "-a -t 10.0.0.1:80 -r 10.0.0.11 -x 10",
            "-a -t 10.0.0.1:80 -r 0.0.0.0",
            "-a -t 10.0.0.1:80 -r 10.0.0.11 # a comment",
            "-e -t 10.0.0.1:80 -r 10.0.0.11 -w 2",
        ] {
            assert_eq!(line(l), None, "{l}");
        }
    }

    proptest! {
        /// Whatever this reads, the general parser reads the same.
        #[test]
        fn agrees_with_the_general_parser(
            head in prop_oneof![
                Just("-A -t 10.0.0.1:80"), Just("-A -u 10.0.0.1:53"), Just("-A -t 10.0.0.2:0"),
                Just("-a -t 10.0.0.1:80 -r 10.0.0.3:8080"), Just("-a -u 10.0.0.1:53 -r 10.0.0.1"),
                Just("-a -t 10.0.0.1:80"), Just("-e -t 10.0.0.1:80 -r 10.0.0.3"), Just(""),
            ],
            words in proptest::collection::vec(prop_oneof![
            Just("-A"), Just("-a"), Just("-e"), Just("-t"), Just("-u"), Just("-r"), Just("-s"),
            Just("-p"), Just("-M"), Just("-w"), Just("-g"), Just("-m"), Just("-i"), Just("-x"),
            Just("rr"), Just("wlc"), Just("sh"), Just("10.0.0.1:80"), Just("10.0.0.1"),
            Just("10.0.0.2:0"), Just("10.0.0.3:8080"), Just("255.255.255.255"), Just("0"),
            Just("1"), Just("300"), Just("65535"), Just("65536"), Just("0300"), Just("#"),
            Just("2678400"), Just("2678401"), Just("99999999999999999999"),
        ], 0..6)) {
            let l = format!("{head} {}", words.join(" "));
            if let Some(c) = line(&l) {
                prop_assert_eq!(general_line(&l), Ok(Some(c)), "{}", l);
            }
        }
    }
}

//! `rvsadm`: ipvsadm 1.31's command line against a running rvsd.
//!
//! `rvsadm [--socket PATH] <ipvsadm arguments>` does what `ipvsadm <ipvsadm arguments>` does,
//! with rvsd's control socket (`--socket`, else `$RVSADM_SOCKET`, else `/run/rvsd.sock`) in
//! the kernel's place: the same options, the same listings byte for byte, the same messages
//! and exit codes. One concept per file:
//!
//! - [`args`]: the command line, as ipvsadm reads it, to an [`Action`](args::Action); rule
//!   commands are checked by the one rules parser and travel as its canonical lines.
//! - [`listing`] and [`sort`]: `-L` (services, dests, the column sets, K/M/G scaling, the
//!   order), [`conns`]: `-L -c`; [`names`]: host and service names without `-n`.
//! - [`errors`]: ipvsadm's messages and exit codes for refusals and bad command lines.
//! - [`client`]: one request and its reply over the socket ([`crate::protocol`]).
//! - [`usage`]: `-h`, `-v`.
//!
//! # Where rvsadm differs from ipvsadm
//! - `-R` sends all lines at once and rvsd applies them as one change: a bad line applies
//!   nothing (ipvsadm applies the lines before it), and the message names the line
//!   (`line 3: ...`). Blank lines and `#` comments are skipped.
//! - `--replace` (rvs's own) replaces the whole rule set with the rules on stdin in one step.
//! - `-S` prints rvsd's save text (the rules module's `ipvsadm-save -n` form, numeric with or
//!   without `-n`; see `rules` for how it differs from ipvsadm's).
//! - `--nosort` lists services in the order they were added (the kernel lists them in its hash
//!   table's order) and dests newest first, as the kernel does.
//! - A firewall mark prints unsigned (`FWM  4294967295`), as ipvsadm after 1.31 does (1.31
//!   printed marks above 2^31 as negative numbers).
//! - Refusals: what ipvsadm leaves to the kernel and rvsadm can tell beforehand is reported in
//!   the kernel's words (`Scheduler or persistence engine not found`, exit 255); what rvs does
//!   not do (`--pe`, the sync daemon, a real server of the other family) gets a message that
//!   says so, exit 2; a socket that cannot be reached is named, exit 2.

#![deny(unsafe_code)]

pub mod args;
pub mod client;
pub mod conns;
pub mod errors;
pub mod listing;
pub mod names;
pub mod sort;
pub mod usage;

use std::io::{self, Read, Write};

use crate::protocol::{Reply, Request};
use args::Action;
use client::{Transport, UnixClient};
use errors::{reply_failure, Failure, Op, EXIT_LIST, EXIT_OK, EXIT_USAGE};
use names::{Names, SystemNames};

/// Where rvsadm reads and writes.
pub struct Io<'a> {
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
}

/// The rvsadm program: the process's arguments and environment, rvsd's socket, the C
/// library's names. Returns the exit code.
pub fn main() -> u8 {
    let mut argv = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let program = argv.next().unwrap_or_else(|| "rvsadm".into());
    let mut args: Vec<String> = argv.collect();
    let (stdin, stdout, stderr) = (io::stdin(), io::stdout(), io::stderr());
    let (mut stdin, mut stdout, mut stderr) = (stdin.lock(), stdout.lock(), stderr.lock());
    let mut io = Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    let socket = match socket_path(&mut args, std::env::var("RVSADM_SOCKET").ok()) {
        Ok(p) => p,
        Err(f) => return report(&mut io, f),
    };
    let mut rvsd = UnixClient::new(socket);
    run(&program, &args, &mut io, &mut rvsd, &SystemNames)
}

/// rvsd's socket: a leading `--socket PATH` (or `--socket=PATH`, taken out of `args`), else
/// `env` (`RVSADM_SOCKET`), else [`usage::DEFAULT_SOCKET`].
pub fn socket_path(args: &mut Vec<String>, env: Option<String>) -> Result<String, Failure> {
    let given = match args.first().map(String::as_str) {
        Some("--socket") => {
            let Some(p) = args.get(1).cloned() else {
                return Err(Failure::usage("rvsadm: --socket needs a path"));
            };
            args.drain(..2);
            Some(p)
        }
        Some(a) if a.starts_with("--socket=") => {
            let p = a["--socket=".len()..].to_string();
            args.remove(0);
            Some(p)
        }
        _ => None,
    };
    Ok(given
        .or(env.filter(|e| !e.is_empty()))
        .unwrap_or_else(|| usage::DEFAULT_SOCKET.to_string()))
}

/// Run `args` (ipvsadm's arguments, without the program name and `--socket`) against `rvsd`;
/// the exit code.
pub fn run(
    program: &str,
    args: &[String],
    io: &mut Io<'_>,
    rvsd: &mut dyn Transport,
    names: &dyn Names,
) -> u8 {
    match execute(program, args, io, rvsd, names) {
        Ok(()) => EXIT_OK,
        Err(f) => report(io, f),
    }
}

fn report(io: &mut Io<'_>, f: Failure) -> u8 {
    let _ = io.stderr.write_all(f.message.as_bytes());
    let _ = io.stderr.flush();
    f.code
}

/// Write to stdout; a closed stdout ends rvsadm quietly with an error code.
fn out(io: &mut Io<'_>, s: &str) -> Result<(), Failure> {
    io.stdout
        .write_all(s.as_bytes())
        .and_then(|()| io.stdout.flush())
        .map_err(|_| Failure {
            code: EXIT_LIST,
            message: String::new(),
        })
}

fn call(rvsd: &mut dyn Transport, req: &Request) -> Result<Reply, Failure> {
    rvsd.call(req).map_err(|e| Failure {
        code: EXIT_USAGE,
        message: format!("rvsadm: {e}\n"),
    })
}

fn unexpected(rvsd: &dyn Transport, r: &Reply) -> Failure {
    let what = match r {
        Reply::Ok { .. } => "Ok",
        Reply::Listing(_) => "Listing",
        Reply::Conns(_) => "Conns",
        Reply::Save { .. } => "Save",
        Reply::Timeouts { .. } => "Timeouts",
        Reply::Error(_) => "Error",
    };
    Failure {
        code: EXIT_USAGE,
        message: format!("rvsadm: unexpected {what} reply from {}\n", rvsd.peer()),
    }
}

/// A change's reply: Ok, or the refusal in ipvsadm's words.
fn changed(rvsd: &mut dyn Transport, req: &Request, op: Op) -> Result<(), Failure> {
    match call(rvsd, req)? {
        Reply::Ok { .. } => Ok(()),
        Reply::Error(e) => Err(reply_failure(op, &e)),
        r => Err(unexpected(rvsd, &r)),
    }
}

fn read_stdin(io: &mut Io<'_>) -> Result<String, Failure> {
    let mut text = String::new();
    io.stdin
        .read_to_string(&mut text)
        .map_err(|e| Failure::usage(format!("rvsadm: cannot read the rules on stdin: {e}")))?;
    Ok(text)
}

fn execute(
    program: &str,
    args: &[String],
    io: &mut Io<'_>,
    rvsd: &mut dyn Transport,
    names: &dyn Names,
) -> Result<(), Failure> {
    if args.first().map(String::as_str) == Some("--replace") {
        if let Some(a) = args.get(1) {
            return Err(Failure::usage(format!("unexpected argument {a}")));
        }
        // rvsd reads the text (once: a syntax error comes back as `Invalid`, exit 2).
        let text = read_stdin(io)?;
        return changed(rvsd, &Request::Replace { text }, Op::Batch);
    }
    let action = args::parse(program, args, names)?;
    match &action {
        Action::Help => out(io, &usage::usage(program)),
        Action::Version => out(io, &usage::version()),
        Action::Apply(_) | Action::Zero(_) => match action.request() {
            Some(req) => changed(rvsd, &req, Op::Change),
            None => Ok(()),
        },
        Action::Restore => restore(program, io, rvsd, names),
        Action::Save => match call(rvsd, &Request::Save)? {
            Reply::Save { text } => out(io, &text),
            Reply::Error(e) => Err(reply_failure(Op::List, &e)),
            r => Err(unexpected(rvsd, &r)),
        },
        Action::List { service, format } => {
            let req = Request::List {
                service: service.map(|s| s.to_string()),
            };
            let listing = match call(rvsd, &req)? {
                Reply::Listing(l) => l,
                Reply::Error(e) => return Err(reply_failure(Op::List, &e)),
                r => return Err(unexpected(rvsd, &r)),
            };
            if service.is_some() {
                if listing.services.is_empty() {
                    return Err(Failure {
                        code: EXIT_LIST,
                        message: "No such service\n".into(),
                    });
                }
                out(io, &listing::list_service(&listing, format, names))
            } else {
                out(io, &listing::list_all(&listing, format, names))
            }
        }
        Action::Conns(format) => list_conns(io, rvsd, format, names),
        Action::Timeouts => match call(rvsd, &Request::Timeouts)? {
            Reply::Timeouts { tcp, tcpfin, udp } => out(io, &listing::timeouts(tcp, tcpfin, udp)),
            Reply::Error(e) => Err(reply_failure(Op::List, &e)),
            r => Err(unexpected(rvsd, &r)),
        },
        // rvs runs no sync daemon: ipvsadm lists nothing when none runs.
        Action::Daemons => Ok(()),
        Action::SyncDaemon => Err(Failure::usage(
            "rvsadm: rvs has no connection sync daemon (--start-daemon, --stop-daemon)",
        )),
    }
}

/// `-R`: every rule line of stdin, checked as ipvsadm checks a command line, sent as one
/// change.
fn restore(
    program: &str,
    io: &mut Io<'_>,
    rvsd: &mut dyn Transport,
    names: &dyn Names,
) -> Result<(), Failure> {
    let text = read_stdin(io)?;
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let words: Vec<String> = raw
            .split_whitespace()
            .take_while(|w| !w.starts_with('#'))
            .filter(|w| *w != "ipvsadm")
            .map(String::from)
            .collect();
        if words.is_empty() {
            continue;
        }
        let line =
            args::parse_restore_line(program, &words, names).map_err(|f| f.at_line(i + 1))?;
        lines.push(line);
    }
    changed(rvsd, &Request::Apply { lines }, Op::Batch)
}

/// `-L -c`: the conn table page by page, each printed as it comes.
fn list_conns(
    io: &mut Io<'_>,
    rvsd: &mut dyn Transport,
    format: &listing::Format,
    names: &dyn Names,
) -> Result<(), Failure> {
    let mut cursor = 0;
    let mut first = true;
    loop {
        let page = match call(rvsd, &Request::Conns { cursor })? {
            Reply::Conns(p) => p,
            Reply::Error(e) => return Err(reply_failure(Op::List, &e)),
            r => return Err(unexpected(rvsd, &r)),
        };
        let mut s = String::new();
        if first {
            conns::title(&mut s, format);
            first = false;
        }
        for c in &page.conns {
            conns::row(&mut s, c, format, names);
        }
        out(io, &s)?;
        match page.next {
            // A cursor that does not move would never end.
            Some(next) if next != cursor => cursor = next,
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;

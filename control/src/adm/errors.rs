//! What rvsadm prints when something fails, and its exit code, as ipvsadm 1.31 does.
//!
//! ipvsadm's exit codes: `fail()` (a bad command line, and the checks it makes before asking
//! the kernel) exits 2; popt's errors and "Try `ipvsadm -h'" exit 255 (`exit(-1)`); a change
//! the kernel refuses prints `ipvs_strerror()`'s words and exits 255 (the call's -1 is main's
//! return value); a listing that fails exits 1. rvs maps its [`ErrorReply`] kinds onto these.

use crate::protocol::{ErrorKind, ErrorReply};

/// Success.
pub const EXIT_OK: u8 = 0;
/// A listing (`-L`, `-S`, `-c`, `--timeout`) failed: ipvsadm's `exit(1)`.
pub const EXIT_LIST: u8 = 1;
/// ipvsadm's `fail(2, ...)`: the command line is wrong, or rvsd cannot be reached (ipvsadm's
/// "Can't initialize ipvs").
pub const EXIT_USAGE: u8 = 2;
/// ipvsadm's -1: a popt error, `-h` advice, or a change the kernel (here rvsd) refused.
pub const EXIT_REFUSED: u8 = 255;

/// A failure before or instead of a reply: the text for stderr (newline included) and the
/// exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// ipvsadm's `fail(2, msg)`.
    pub fn usage(msg: impl Into<String>) -> Self {
        let mut message = msg.into();
        message.push('\n');
        Failure {
            code: EXIT_USAGE,
            message,
        }
    }

    /// A kernel error for a change, in `ipvs_strerror()`'s words.
    pub fn refused(msg: impl Into<String>) -> Self {
        let mut message = msg.into();
        message.push('\n');
        Failure {
            code: EXIT_REFUSED,
            message,
        }
    }

    /// ipvsadm's `tryhelp_exit(program, -1)`.
    pub fn tryhelp(program: &str) -> Self {
        Failure {
            code: EXIT_REFUSED,
            message: format!("Try `{program} -h' or '{program} --help' for more information.\n"),
        }
    }

    /// A popt error after the command: `--foo: unknown option`.
    pub fn popt(word: &str, why: &str) -> Self {
        Failure {
            code: EXIT_REFUSED,
            message: format!("{word}: {why}\n"),
        }
    }

    /// The same failure, its message prefixed with `line N: ` (for `-R` input).
    pub fn at_line(mut self, line: usize) -> Self {
        self.message = format!("line {line}: {}", self.message);
        self
    }
}

/// What a request was, for the exit code and the words of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// One rule change (`-A -E -D -C -a -e -d --set -Z`): ipvsadm prints the kernel's words.
    Change,
    /// `-R` or `--replace`: all lines at once; rvsd's text names the failing line, and nothing
    /// was applied, so it is printed whole.
    Batch,
    /// A listing.
    List,
}

/// `ipvs_strerror()`'s messages (libipvs): what ipvsadm prints when the kernel says no.
pub const IPVS_MESSAGES: &[&str] = &[
    "Service already exists",
    "Scheduler or persistence engine not found",
    "No such service",
    "Service not defined",
    "Destination already exists",
    "No such destination",
    "Permission denied (you must be root)",
    "Invalid operation.  Possibly wrong module version, address not unicast, ...",
    "Protocol not available",
    "Memory allocation problem",
    "Operation not supported with IPv6",
    "Operation not supported with specified address family",
    "Module is wrong version",
    "Numerical result out of range",
];

/// The message ipvsadm prints for rvsd's refusal `text`: rvs's rules say which service and
/// line (`line 1: -t 10.0.0.1:80: Service not defined`); ipvsadm prints only the kernel's
/// words (`Service not defined`). A text with no ipvsadm equivalent is kept as it is.
pub fn ipvs_words(text: &str) -> &str {
    let t = text.trim_end();
    IPVS_MESSAGES
        .iter()
        .find(|m| t == **m || t.strip_suffix(**m).is_some_and(|head| head.ends_with(": ")))
        .copied()
        .unwrap_or(t)
}

/// The failure to report for an error reply to a request of kind `op`.
pub fn reply_failure(op: Op, e: &ErrorReply) -> Failure {
    let text = e.message.trim_end();
    let failed = if op == Op::List {
        EXIT_LIST
    } else {
        EXIT_REFUSED
    };
    let (message, code) = match e.kind {
        ErrorKind::Refused => {
            let words = if op == Op::Batch {
                text
            } else {
                ipvs_words(text)
            };
            (words.to_string(), failed)
        }
        // ipvsadm as a user who may not: ipvs_init fails with EPERM, fail(2, ...).
        ErrorKind::Denied => (
            "Can't initialize ipvs: Permission denied (you must be root)".to_string(),
            EXIT_USAGE,
        ),
        ErrorKind::Invalid => (text.to_string(), EXIT_USAGE),
        ErrorKind::BadRequest | ErrorKind::Timeout => (text.to_string(), failed),
        ErrorKind::ShuttingDown => (format!("rvsadm: rvsd is stopping: {text}"), EXIT_USAGE),
    };
    Failure {
        code,
        message: format!("{message}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(m: &str) -> ErrorReply {
        ErrorReply {
            kind: ErrorKind::Refused,
            message: m.into(),
        }
    }

    #[test]
    fn rules_messages_become_ipvsadm_words() {
        let cases = [
            ("-t 10.0.0.1:80: Service not defined", "Service not defined"),
            ("line 1: -t 10.0.0.1:80: No such service", "No such service"),
            (
                "-t 10.0.0.1:80 -r 10.0.1.1:80: Destination already exists",
                "Destination already exists",
            ),
            (
                "-u [fd00::1]:53 -r [fd00::2]:53: No such destination",
                "No such destination",
            ),
            (
                "-t 10.0.0.1:80: Service already exists",
                "Service already exists",
            ),
            ("Memory allocation problem", "Memory allocation problem"),
            // No ipvsadm equivalent: rvs's text stays.
            (
                "-t 10.0.0.1:80: port 0 (all ports) is only for persistent services (add -p)",
                "-t 10.0.0.1:80: port 0 (all ports) is only for persistent services (add -p)",
            ),
            // A phrase inside a longer text is not the kernel's words.
            (
                "conn table: No such service here",
                "conn table: No such service here",
            ),
        ];
        for (server, want) in cases {
            assert_eq!(ipvs_words(server), want, "{server}");
        }
    }

    #[test]
    fn exit_codes_follow_ipvsadm() {
        let e = refused("-t 10.0.0.1:80: Service not defined");
        let f = reply_failure(Op::Change, &e);
        assert_eq!((f.code, f.message.as_str()), (255, "Service not defined\n"));
        let f = reply_failure(Op::List, &refused("-t 10.0.0.1:80: No such service"));
        assert_eq!((f.code, f.message.as_str()), (1, "No such service\n"));
        let batch = refused("line 3: -t 10.0.0.1:80: Service not defined");
        let f = reply_failure(Op::Batch, &batch);
        assert_eq!(
            (f.code, f.message.as_str()),
            (255, "line 3: -t 10.0.0.1:80: Service not defined\n")
        );
        let denied = ErrorReply {
            kind: ErrorKind::Denied,
            message: "uid 1000 may not".into(),
        };
        let f = reply_failure(Op::List, &denied);
        assert_eq!(f.code, 2);
        assert!(f.message.contains("Permission denied (you must be root)"));
        for kind in [ErrorKind::BadRequest, ErrorKind::Timeout] {
            let e = ErrorReply {
                kind,
                message: "workers late".into(),
            };
            assert_eq!(reply_failure(Op::Change, &e).code, 255);
            assert_eq!(reply_failure(Op::List, &e).code, 1);
        }
        let stopping = ErrorReply {
            kind: ErrorKind::ShuttingDown,
            message: "bye".into(),
        };
        assert_eq!(reply_failure(Op::Change, &stopping).code, 2);
        assert_eq!(Failure::tryhelp("ipvsadm").code, 255);
        assert_eq!(
            Failure::tryhelp("rvsadm").message,
            "Try `rvsadm -h' or 'rvsadm --help' for more information.\n"
        );
        assert_eq!(Failure::usage("illegal weight specified").code, 2);
    }
}

//! The open-file limit the checkers need. Each check holds a socket (a MISC_CHECK, its
//! program's descriptors) while it runs, so a thousand checkers at a short `delay_loop` need
//! a thousand descriptors beside rvsd's own, and systemd starts a service with a soft limit
//! of 1024. As keepalived does (`set_checker_max_fds`), the soft limit is raised to what the
//! checkers need, up to the hard limit.
// getrlimit/setrlimit: the allowed `unsafe` of this file.
#![allow(unsafe_code)]

/// Descriptors for rvsd itself (DPDK, the control socket and its clients, /metrics, logs).
const OWN: u64 = 1024;
/// Per checker: its socket or its program's, and one spare for a check that outlives its
/// timeout while the next starts.
const PER_CHECKER: u64 = 2;

/// What `checkers` checkers need; the soft limit is raised to it when lower (and the hard
/// limit allows). Returns a line for the log when it changed something or falls short.
pub fn raise_for(checkers: usize) -> Option<String> {
    let want = OWN + PER_CHECKER * checkers as u64;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the one struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    let (soft, hard) = (lim.rlim_cur, lim.rlim_max);
    if soft >= want {
        return None;
    }
    let new = want.min(hard);
    if new > soft {
        lim.rlim_cur = new;
        // SAFETY: setrlimit reads the one struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Some(format!(
                "{checkers} checkers want {want} open files; the limit stays {soft}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Some(if new < want {
        format!(
            "{checkers} checkers want {want} open files; the hard limit is {hard} (raise LimitNOFILE): checks may fail with \"Too many open files\""
        )
    } else {
        format!("open files limit raised from {soft} to {new} for {checkers} checkers")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_covers_the_checkers() {
        let _ = super::raise_for(3000);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert!(lim.rlim_cur >= (1024 + 2 * 3000).min(lim.rlim_max));
        assert_eq!(super::raise_for(10), None, "already enough");
    }
}

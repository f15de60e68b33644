//! The DPDK shell's one error type.

use std::ffi::{c_int, CStr};
use std::fmt;

use dpdk_sys as sys;

/// A failed DPDK call, or a misuse the wrapper refuses before calling DPDK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DpdkError {
    /// `Eal::init` was already called in this process (DPDK initialises once).
    AlreadyInitialized,
    /// The EAL is not initialised (or already cleaned up).
    NotInitialized,
    /// `call` failed with `code`, a positive `errno`/`rte_errno` value.
    Call { call: &'static str, code: i32 },
    /// An argument the wrapper rejects before calling DPDK (`what` says which and why).
    Invalid { call: &'static str, what: String },
    /// `rte_eal_cleanup` refused: `live` mempools, ports or rings still exist.
    Busy { live: usize },
}

impl DpdkError {
    /// A failure reported through `rte_errno` (calls returning NULL or -1).
    #[cold]
    pub(crate) fn errno(call: &'static str) -> Self {
        // SAFETY: rvs_errno reads this thread's rte_errno, a thread-local int.
        let code = unsafe { sys::rvs_errno() };
        DpdkError::Call { call, code }
    }

    /// A failure reported as a negative return code (`-errno`).
    #[cold]
    pub(crate) fn rc(call: &'static str, rc: c_int) -> Self {
        DpdkError::Call {
            call,
            code: rc.saturating_abs(),
        }
    }

    #[cold]
    pub(crate) fn invalid(call: &'static str, what: impl Into<String>) -> Self {
        DpdkError::Invalid {
            call,
            what: what.into(),
        }
    }
}

/// `rte_strerror(code)`: DPDK's own messages for its codes, libc's for the rest.
pub(crate) fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror accepts any int and returns a pointer to a NUL-terminated string,
    // static or in a thread-local buffer, valid until the next call on this thread; it is
    // copied out at once.
    unsafe { CStr::from_ptr(sys::rte_strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpdkError::AlreadyInitialized => {
                write!(
                    f,
                    "rte_eal_init: the EAL was already initialised in this process"
                )
            }
            DpdkError::NotInitialized => write!(f, "the DPDK EAL is not initialised"),
            DpdkError::Call { call, code } => {
                write!(f, "{call} failed: {} (rte_errno {code})", strerror(*code))
            }
            DpdkError::Invalid { call, what } => write!(f, "{call}: {what}"),
            DpdkError::Busy { live } => write!(
                f,
                "rte_eal_cleanup: {live} mempool(s), port(s) or ring(s) still alive"
            ),
        }
    }
}

impl std::error::Error for DpdkError {}

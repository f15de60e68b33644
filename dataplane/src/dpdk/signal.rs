//! Graceful stop: SIGINT/SIGTERM set a flag the workers poll once per burst.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static STOP: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

extern "C" fn on_signal(_sig: c_int) {
    // An atomic store is async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

/// Install SIGINT and SIGTERM handlers (once per process) that set the returned flag. The
/// workers read it once per burst and return; the main lcore then waits and cleans up.
pub fn install_stop_handler() -> &'static AtomicBool {
    INSTALL.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction is a valid starting point; the handler only does an
            // atomic store (async-signal-safe); sigemptyset and sigaction get valid pointers.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = libc::SA_RESTART;
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
    &STOP
}

/// Whether a stop was requested (the flag [`install_stop_handler`] returns).
#[inline]
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

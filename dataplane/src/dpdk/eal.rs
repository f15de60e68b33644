//! The EAL: init from owned argv, lcores, launch on workers, cleanup.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use dpdk_sys as sys;

use super::DpdkError;

const UNINIT: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// Where the process's EAL is: never initialised, running, or cleaned up (or failed to init;
/// DPDK cannot be initialised twice either way).
static STATE: AtomicU8 = AtomicU8::new(UNINIT);
/// Mempools, ports and rings alive (or leaked): the EAL is cleaned up only at zero.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// `Ok` while the EAL is up: the constructors of every DPDK object check this first.
pub(crate) fn ensure_running() -> Result<(), DpdkError> {
    if STATE.load(Ordering::Acquire) == RUNNING {
        Ok(())
    } else {
        Err(DpdkError::NotInitialized)
    }
}

/// A DPDK object was created (it needs the EAL's memory until it is freed).
pub(crate) fn live_inc() {
    LIVE.fetch_add(1, Ordering::AcqRel);
}

/// A DPDK object was freed.
pub(crate) fn live_dec() {
    LIVE.fetch_sub(1, Ordering::AcqRel);
}

/// A closure run on a worker lcore; its return value is what [`Eal::wait`] gives back.
pub type LcoreFn = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// The initialised EAL of this process. Created once by [`Eal::init`], on the thread that
/// becomes the main lcore; it stays on that thread (`!Send`), as `rte_eal_cleanup` must run
/// there. Dropping it waits for the workers and cleans the EAL up (see [`Eal::cleanup`]).
#[derive(Debug)]
pub struct Eal {
    consumed: usize,
    cleaned: bool,
    /// `!Send + !Sync`: launch and cleanup belong to the main lcore.
    _main: PhantomData<*mut ()>,
}

impl Eal {
    /// `rte_eal_init` with `args` (`args[0]` is the program name, as in `argv`). The
    /// strings are copied and leaked: EAL keeps pointers into argv for the process lifetime.
    /// Returns the EAL; [`Eal::consumed`] says how many arguments it took (including
    /// `args[0]`, which is what `rte_eal_init` returns): the caller's own options follow.
    #[cold]
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|e| DpdkError::invalid("rte_eal_init", format!("argument: {e}")))?;
        let argc = c_int::try_from(owned.len())
            .map_err(|_| DpdkError::invalid("rte_eal_init", "too many arguments"))?;
        if STATE
            .compare_exchange(UNINIT, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(DpdkError::AlreadyInitialized);
        }
        // Leaked on purpose: EAL may keep (and permute) these pointers until exit.
        let owned: &'static [CString] = Vec::leak(owned);
        let argv: &'static mut [*mut c_char] = Vec::leak(
            owned
                .iter()
                .map(|a| a.as_ptr().cast_mut())
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect(),
        );
        // SAFETY: argv holds argc valid NUL-terminated strings plus a NULL, all 'static; the
        // STATE exchange above makes this the only rte_eal_init of the process.
        let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            // STATE stays DONE: DPDK does not support a second init, even after a failure.
            return Err(DpdkError::errno("rte_eal_init"));
        }
        STATE.store(RUNNING, Ordering::Release);
        Ok(Eal {
            consumed: usize::try_from(rc).unwrap_or(0),
            cleaned: false,
            _main: PhantomData,
        })
    }

    /// How many arguments `rte_eal_init` consumed (its return value).
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// The worker lcores (the main lcore excluded), in id order.
    pub fn lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = u32::MAX;
        loop {
            // SAFETY: the EAL is initialised (self exists); this reads the lcore config.
            i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
            if i >= sys::RTE_MAX_LCORE {
                return out;
            }
            out.push(i);
        }
    }

    /// The main lcore's id (the thread that called [`Eal::init`]).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: the EAL is initialised; this reads its config.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// The NUMA socket of `lcore` (0 on a single-socket machine or for unknown lcores).
    pub fn socket_of(&self, lcore: u32) -> u32 {
        if lcore >= sys::RTE_MAX_LCORE {
            return 0;
        }
        // SAFETY: the EAL is initialised and lcore < RTE_MAX_LCORE (the function indexes
        // its config array with it).
        unsafe { sys::rte_lcore_to_socket_id(lcore) }
    }

    /// TSC ticks per second, as measured by the EAL.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: the EAL is initialised; this reads a value computed at init.
        unsafe { sys::rte_get_tsc_hz() }
    }

    /// The EAL runtime directory (`/var/run/dpdk/<file-prefix>` as root). `rte_eal_cleanup`
    /// leaves it behind; a test removes it afterwards.
    pub fn runtime_dir(&self) -> PathBuf {
        // SAFETY: the EAL is initialised; the function returns a NUL-terminated string in a
        // static buffer, copied out at once.
        let dir = unsafe { CStr::from_ptr(sys::rte_eal_get_runtime_dir()) };
        PathBuf::from(dir.to_string_lossy().into_owned())
    }

    /// Run `f` on the worker `lcore` (`rte_eal_remote_launch` through a trampoline). A
    /// panic in `f` is caught there and reported as -1. Error: `lcore` is not a worker
    /// lcore, or it is busy (`EBUSY`: wait for it first).
    pub fn launch(&self, lcore: u32, f: LcoreFn) -> Result<(), DpdkError> {
        if !self.lcores().contains(&lcore) {
            return Err(DpdkError::invalid(
                "rte_eal_remote_launch",
                format!("lcore {lcore} is not a worker lcore"),
            ));
        }
        let arg = Box::into_raw(Box::new(f));
        // SAFETY: trampoline matches lcore_function_t; arg is a Box<LcoreFn> that the
        // trampoline takes back (exactly once, the launch succeeding) or we do (it failing).
        // The closure is Send + 'static, so running it on another thread is sound.
        let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg.cast(), lcore) };
        if rc != 0 {
            // SAFETY: the launch failed, so the worker never saw arg: it is still ours.
            drop(unsafe { Box::from_raw(arg) });
            return Err(DpdkError::rc("rte_eal_remote_launch", rc));
        }
        Ok(())
    }

    /// Wait for `lcore`'s launched function; its return value (0 if nothing was launched).
    pub fn wait(&self, lcore: u32) -> i32 {
        if !self.lcores().contains(&lcore) {
            return 0;
        }
        // SAFETY: lcore is a worker lcore of the running EAL; waiting has no other effect.
        unsafe { sys::rte_eal_wait_lcore(lcore) }
    }

    /// Wait for every worker lcore; their return values, in [`Eal::lcores`] order.
    pub fn wait_all(&self) -> Vec<(u32, i32)> {
        self.lcores()
            .into_iter()
            .map(|l| (l, self.wait(l)))
            .collect()
    }

    /// Wait for the workers, then `rte_eal_cleanup` (once; later calls and the drop do
    /// nothing). Error [`DpdkError::Busy`] when
    /// mempools, ports or rings are still alive (or a pool was leaked because mbufs were
    /// still out): the EAL is then left up, as their memory is the EAL's.
    #[cold]
    pub fn cleanup(&mut self) -> Result<(), DpdkError> {
        if self.cleaned {
            return Ok(());
        }
        self.wait_all();
        let live = LIVE.load(Ordering::Acquire);
        if live != 0 {
            return Err(DpdkError::Busy { live });
        }
        self.cleaned = true;
        STATE.store(DONE, Ordering::Release);
        // SAFETY: on the main lcore (Eal is !Send), every worker is idle, and no DPDK
        // object of ours is alive (LIVE is 0, and no constructor succeeds after STATE left
        // RUNNING).
        let rc = unsafe { sys::rte_eal_cleanup() };
        if rc < 0 {
            return Err(DpdkError::rc("rte_eal_cleanup", rc));
        }
        Ok(())
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            eprintln!("rvs: EAL not cleaned up: {e}");
        }
    }
}

/// `lcore_function_t` for [`Eal::launch`]: takes the boxed closure back and runs it.
extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<LcoreFn> leaked by Eal::launch for this one call.
    let f = unsafe { Box::from_raw(arg.cast::<LcoreFn>()) };
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(-1)
}

/// The lcore id of the calling thread, as a `c_uint` for the FFI (used by `lcore`).
pub(crate) fn raw_lcore_id() -> c_uint {
    // SAFETY: rvs_lcore_id reads a thread-local; valid on any thread.
    unsafe { sys::rvs_lcore_id() }
}

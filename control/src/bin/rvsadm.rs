//! rvsadm: ipvsadm's command line for a running rvsd (`rvs_control::adm`).
//!
//! `rvsadm [--socket PATH] <ipvsadm arguments>`; the socket is also `$RVSADM_SOCKET`, else
//! `/run/rvsd.sock`.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(rvs_control::adm::main())
}

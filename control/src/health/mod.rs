//! Health checks of the real servers a keepalived configuration defines.
//!
//! - `state`: keepalived's semantics, sans-IO: checker, real server and quorum states from
//!   the checks' outcomes, the events they give, and when each checker runs next.
//! - `checks`: the checks (TCP connect, HTTP GET with status and digest, a program's exit
//!   status); `tls`: SSL_GET's TLS client.
//! - `diff`: the ipvsadm lines that take the rules in force to the ones a transition wants.
//! - `driver`: the checker thread (a single-threaded tokio runtime, one task per checker),
//!   and its reload of a configuration read again.
//! - `series`: what `/metrics` shows of it (verdicts, durations, transitions, quorum).
//! - `fds`: the open-file limit the checkers need.

mod checks;
mod diff;
mod driver;
mod fds;
mod series;
mod state;
mod tls;

pub use diff::{add_to, lines as diff_lines};
pub use driver::{Apply, Checkers, Reload, Reloader};
pub use series::HealthSeries;
pub use state::{CheckerId, Event, Health, Outcome};

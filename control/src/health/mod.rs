//! Health checks of the real servers a keepalived configuration defines.
//!
//! - `state`: keepalived's semantics, sans-IO: checker, real server and quorum states from
//!   the checks' outcomes, the events they give, and when each checker runs next.
//! - `checks`: the checks (TCP connect, HTTP GET with status and digest, a program's exit
//!   status).
//! - `diff`: the ipvsadm lines that take the rules in force to the ones a transition wants.
//! - `driver`: the checker thread (a single-threaded tokio runtime, one task per checker).

mod checks;
mod diff;
mod driver;
mod state;

pub use diff::lines as diff_lines;
pub use driver::{Apply, Checkers};
pub use state::{CheckerId, Event, Health, Outcome};

//! Health checks of the real servers a keepalived configuration defines.
//!
//! - `state`: keepalived's semantics, sans-IO: checker, real server and quorum states from
//!   the checks' outcomes, the events they give, and when each checker runs next.

mod state;

pub use state::{CheckerId, Event, Health, Outcome};

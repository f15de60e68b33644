//! ipvsadm rules: the one parser of ipvsadm command lines (`rvsd replay --rules`,
//! `rvsd run --rules`, and `rvsadm` against a running `rvsd`), the rule set they build, and
//! its `ipvsadm-save -n` form.
//!
//! A line is one ipvsadm command without the program name (as `ipvsadm-save` writes and
//! `ipvsadm -R` reads); a leading `ipvsadm` word is dropped, and `#` starts a comment.
//! [`parse_line`] turns a line into a [`Command`] with ipvsadm's defaults filled in (scheduler
//! wlc, weight 1, direct routing, persistence 300 s when `-p` has no value, the service's
//! port for `-r` without one) and ipvsadm's own checks done. [`RuleSet::apply`] then runs the
//! command against a rule set with the kernel's checks ("Service already exists", "No such
//! destination", ...), returning a new set and leaving the old one as it was.
//!
//! # Where rvs follows ipvsadm, and where it differs
//! - `-E` and `-e` replace every service or dest setting with the command's, defaults
//!   included, as ipvsadm does: `-E -t VIP:80 -s rr` drops a `-p`, `-e ... -r RIP` without
//!   `-w` sets weight 1.
//! - Dests are kept in the kernel's list order, newest first (the kernel adds a dest at the
//!   head of `svc->destinations`); that is the order the schedulers walk. [`RuleSet::save`]
//!   writes them oldest first, so that restoring the file rebuilds the same order (ipvsadm
//!   sorts them by address instead, which can change rr's sequence on restore). Services keep
//!   the order they were added in (ipvsadm sorts them on listing).
//! - [`RuleSet::save`] also writes what ipvsadm-save leaves out, so that a save restores the
//!   same set: `-x`/`-y` when non-zero, and a `--set` line when timeouts were set.
//! - `-M` on an IPv4 service takes a dotted mask or a prefix length (`-M 24`); ipvsadm reads
//!   `24` as the address 0.0.0.24. A dotted mask must be contiguous. IPv6 takes 1..128.
//!   `-M` without `-p` is accepted, as by ipvsadm, and kept nowhere: it has no effect.
//! - `-6` may come anywhere on the line (ipvsadm wants it after `-f`); it is only for `-f`.
//! - Not supported (refused with a message): host and service names (addresses and ports
//!   are numeric), `--pe`, a real server of the other address family (tunnelling across
//!   families), `-o` on a firewall-mark service, and the non-rule commands (`-L`, `-S`, `-R`,
//!   the sync daemon).
//! - Also refused, where the kernel takes them without complaint: a VIP or real server that
//!   is not a unicast address, and a lower threshold above the upper one also when the upper
//!   is 0 (the kernel's rule; the engine's is looser).
//!
//! # Where each part lives
//! - `model`: what a command names and sets ([`ServiceId`], [`ServiceSpec`], [`Dest`],
//!   [`Command`], ...), with its ipvsadm line form (`Display`).
//! - `parse`: the ipvsadm option table and the line parser ([`parse_line`], [`parse_rules`]);
//!   `parse/saved_form.rs` reads the two forms ipvsadm-save writes for nearly every line of a
//!   large file (`-A -t ... -s ...`, `-a -t ... -r ... -m -w N`) without the getopt, leaving
//!   every other line and every error to it (the two agree: a proptest).
//! - `validate`: the checks a service and a real server pass, shared by the parser, the rule
//!   set and the engine conversion.
//! - `ruleset`: [`RuleSet`]: commands applied with the kernel's checks, and its save form;
//!   `dest_run` adds a text's `-a` lines in a row for one service at once (linear in a
//!   service of 40k dests; a proptest holds it to one line at a time).
//! - `engine`: [`RuleSet::to_configs`], the rule set as the engine's `Config` snapshots.
//! - [`RuleError`] (`error`): a refused rule, with its line.

mod dest_run;
mod engine;
mod error;
mod model;
mod parse;
mod ruleset;
mod validate;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testutil;

pub use engine::engine_service;
pub use error::RuleError;
pub use model::{
    Command, Dest, Persist, SchedFlagBits, Service, ServiceId, ServiceSpec, SetTimeouts,
    DEFAULT_PERSISTENCE_S, MAX_PERSISTENCE_S, MAX_THRESHOLD, MAX_WEIGHT,
};
pub use parse::{parse_line, parse_rules};
pub use ruleset::RuleSet;

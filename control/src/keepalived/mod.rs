//! The operator's keepalived.conf (keepalived 2.2's LVS configuration) as rvs's rules.
//!
//! - `lexer`: the file's syntax (blocks, comments, quotes, `include`) into items that know
//!   their file and line.
//! - `parse`: the items into the model ([`KaConfig`]), refusing what rvs does not support
//!   with the file, line and keyword; VRRP blocks and `global_defs` are ignored with a note.
//! - `model`: virtual servers, real servers and checkers, with keepalived's defaults and
//!   inheritance.
//! - `ruleset`: the rule set a given up/down state of the real servers gives (ipvsadm lines
//!   through the one rules parser), and the state at start.

mod lexer;
mod model;
mod parse;
mod ruleset;

use std::path::Path;

pub use lexer::Origin;
pub use model::{
    CheckKind, Checker, KaConfig, Method, RealServer, SorryServer, Timing, Url, VirtualServer,
    VsKey,
};
pub use ruleset::{Live, VsState};

/// A refused keepalived configuration: where, which keyword, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KaError {
    pub at: Option<Origin>,
    pub keyword: String,
    pub message: String,
}

impl KaError {
    fn at(at: &Origin, keyword: &str, message: impl Into<String>) -> Self {
        KaError {
            at: Some(at.clone()),
            keyword: keyword.to_string(),
            message: message.into(),
        }
    }

    fn file(path: &Path, message: impl Into<String>) -> Self {
        KaError {
            at: Some(Origin {
                file: path.to_path_buf(),
                line: 0,
            }),
            keyword: String::new(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for KaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.at, self.keyword.is_empty()) {
            (Some(at), false) => write!(f, "{at}: {}: {}", self.keyword, self.message),
            (Some(at), true) if at.line == 0 => {
                write!(f, "{}: {}", at.file.display(), self.message)
            }
            (Some(at), true) => write!(f, "{at}: {}", self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for KaError {}

/// Read and check a keepalived.conf: its model, whose every state (each real server up, and
/// each virtual server's quorum lost) makes a valid rule set.
pub fn load(path: &Path) -> Result<KaConfig, KaError> {
    let items = lexer::read(path)?;
    let cfg = parse::config(&items)?;
    cfg.check()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests;

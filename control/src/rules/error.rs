//! [`RuleError`]: a refused rule, with the line it came from.

use std::fmt;

/// A rule that was refused: the line (1-based; 0 when the command did not come from a text)
/// and what is wrong, naming the option or field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub line: usize,
    pub message: String,
    /// The line does not parse (as against a rule that parses and is refused): `rvsadm
    /// --replace` exits 2 for it, as for its own usage errors.
    pub syntax: bool,
}

impl RuleError {
    pub(super) fn new(message: impl Into<String>) -> Self {
        RuleError {
            line: 0,
            message: message.into(),
            syntax: false,
        }
    }
    pub(super) fn at(mut self, line: usize) -> Self {
        self.line = line;
        self
    }
    pub(super) fn syntax(mut self) -> Self {
        self.syntax = true;
        self
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for RuleError {}

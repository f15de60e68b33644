//! [`ConfigFileError`]: a refused configuration, naming the file, line, column and key; and
//! how serde's errors (a span, no key) get their line, column and key.

use std::collections::HashMap;
use std::fmt;

/// A refused configuration: where (file, 1-based line and column; 0 when not known), which
/// key (`port[0].mac`), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFileError {
    pub file: Option<String>,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl ConfigFileError {
    /// The same error, naming `file`.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.line > 0 {
            parts.push(format!("line {}", self.line));
        }
        if self.column > 0 {
            parts.push(format!("column {}", self.column));
        }
        if !self.key.is_empty() {
            parts.push(format!("key {}", self.key));
        }
        if let Some(file) = &self.file {
            f.write_str(file)?;
            if !parts.is_empty() {
                f.write_str(" ")?;
            }
        }
        f.write_str(&parts.join(", "))?;
        if self.file.is_some() || !parts.is_empty() {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigFileError {}

/// 1-based line and column (in characters) of byte `offset`.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut off = offset.min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The key path (`port[1].mac`) of the line holding byte `offset`, read from the table
/// headers above it and the key before the `=` on it (or on the nearest line above that has
/// one, for values spread over lines). For serde's errors, which carry a span but no path.
fn key_path_at(text: &str, offset: usize) -> String {
    let (line_no, _) = line_col(text, offset);
    let lines: Vec<&str> = text.lines().collect();
    let mut section = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut key = String::new();
    for (i, line) in lines.iter().enumerate().take(line_no) {
        let t = line.trim();
        if let Some(h) = t.strip_prefix("[[") {
            let name = h.split("]]").next().unwrap_or("").trim().to_string();
            let n = counts.entry(name.clone()).or_insert(0);
            section = format!("{name}[{n}]");
            *n += 1;
            key.clear();
        } else if let Some(h) = t.strip_prefix('[') {
            section = h.split(']').next().unwrap_or("").trim().to_string();
            key.clear();
        } else if !t.starts_with('#') {
            if let Some((k, _)) = t.split_once('=') {
                let k = k.trim();
                let bare = k
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
                if !k.is_empty() && bare {
                    key = k.to_string();
                }
            } else if i + 1 == line_no && t.is_empty() {
                key.clear();
            }
        }
    }
    match (section.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => section,
        (false, false) => format!("{section}.{key}"),
    }
}

pub(super) fn serde_error(text: &str, e: &toml::de::Error) -> ConfigFileError {
    // serde's words for our types, in the operator's.
    let msg = e
        .message()
        .trim()
        .replace("expected i64", "expected an integer")
        .replace(" as i128", "")
        .replace("expected a sequence", "expected an array");
    match e.span() {
        Some(span) => {
            let (line, column) = line_col(text, span.start);
            ConfigFileError {
                file: None,
                line,
                column,
                key: key_path_at(text, span.start),
                message: msg,
            }
        }
        None => ConfigFileError {
            file: None,
            line: 0,
            column: 0,
            key: String::new(),
            message: msg,
        },
    }
}

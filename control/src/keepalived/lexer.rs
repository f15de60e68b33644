//! keepalived.conf's syntax: words, `{ }` blocks, `#`/`!` comments, quoted strings, and
//! `include` (with globs, relative to the including file's directory), read into a tree of
//! [`Item`]s that each know their file and line.

use std::path::{Path, PathBuf};

use super::KaError;

/// Where a word was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A keyword, its arguments, and its block if it opens one.
#[derive(Clone, Debug)]
pub struct Item {
    pub keyword: String,
    pub args: Vec<String>,
    pub block: Option<Vec<Item>>,
    pub at: Origin,
}

/// How deep includes may nest (keepalived's own limit is about as deep).
const MAX_INCLUDE_DEPTH: usize = 32;

struct Word {
    text: String,
    at: Origin,
    /// The word starts a line (a keyword); the others are its arguments.
    first: bool,
}

/// Read `path` and what it includes into items.
pub fn read(path: &Path) -> Result<Vec<Item>, KaError> {
    let mut words = Vec::new();
    read_words(path, 0, &mut words, None)?;
    let mut it = words.into_iter().peekable();
    let items = items(&mut it, None)?;
    Ok(items)
}

fn read_words(
    path: &Path,
    depth: usize,
    out: &mut Vec<Word>,
    from: Option<&Origin>,
) -> Result<(), KaError> {
    let text = std::fs::read_to_string(path).map_err(|e| match from {
        Some(at) => KaError::at(at, "include", format!("{}: {e}", path.display())),
        None => KaError::file(path, format!("cannot read it: {e}")),
    })?;
    for (i, line) in text.lines().enumerate() {
        let at = Origin {
            file: path.to_path_buf(),
            line: i + 1,
        };
        let words = split(line).map_err(|why| KaError::at(&at, "", why))?;
        let Some(first) = words.first() else {
            continue;
        };
        if matches!(
            first.as_str(),
            "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
        ) {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(KaError::at(&at, first, "includes nest too deep"));
            }
            let [pattern] = &words[1..] else {
                return Err(KaError::at(&at, first, "takes one file name or pattern"));
            };
            for file in expand(path, pattern, &at)? {
                read_words(&file, depth + 1, out, Some(&at))?;
            }
            continue;
        }
        for (j, w) in words.into_iter().enumerate() {
            out.push(Word {
                text: w,
                at: at.clone(),
                first: j == 0,
            });
        }
    }
    Ok(())
}

/// An include pattern's files, relative to the including file's directory, sorted.
fn expand(including: &Path, pattern: &str, at: &Origin) -> Result<Vec<PathBuf>, KaError> {
    let dir = including.parent().unwrap_or(Path::new("."));
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        dir.join(pattern)
    };
    let s = full.to_string_lossy();
    let paths =
        glob::glob(&s).map_err(|e| KaError::at(at, "include", format!("{pattern}: {e}")))?;
    let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    files.sort();
    if files.is_empty() {
        // keepalived's plain include does not fail here; a rule set that silently lost a
        // file is worse for a load balancer, so rvs refuses.
        return Err(KaError::at(
            at,
            "include",
            format!("{pattern}: no such file"),
        ));
    }
    Ok(files)
}

/// The words of a line: whitespace separates them, `#` and `!` start a comment, `"` and
/// `'` quote (keeping whitespace; shell-style escapes inside quotes), and `{` and `}` are
/// words of their own.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' | '!' if !in_word || cur.is_empty() => break,
            '"' | '\'' => {
                in_word = true;
                let q = c;
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated {q}quote{q}")),
                        Some(x) if x == q => break,
                        Some('\\') => cur.push(unescape(&mut chars)),
                        Some(x) => cur.push(x),
                    }
                }
            }
            '{' | '}' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                words.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> char {
    match chars.next() {
        Some('n') => '\n',
        Some('t') => '\t',
        Some('r') => '\r',
        Some('a') => '\x07',
        Some('b') => '\x08',
        Some('f') => '\x0c',
        Some('v') => '\x0b',
        Some('E') => '\x1b',
        Some(c) => c,
        None => '\\',
    }
}

/// Items up to the `}` that closes the block opened at `open` (or the end of input).
fn items(
    it: &mut std::iter::Peekable<std::vec::IntoIter<Word>>,
    open: Option<&Origin>,
) -> Result<Vec<Item>, KaError> {
    let mut out = Vec::new();
    while let Some(w) = it.next() {
        if w.text == "}" {
            return match open {
                Some(_) => Ok(out),
                None => Err(KaError::at(&w.at, "}", "closes no block")),
            };
        }
        if w.text == "{" {
            return Err(KaError::at(&w.at, "{", "opens a block without a keyword"));
        }
        let mut item = Item {
            keyword: w.text,
            args: Vec::new(),
            block: None,
            at: w.at,
        };
        // Arguments: the rest of the keyword's line, up to a `{`.
        while let Some(next) = it.peek() {
            if next.first || next.text == "}" {
                break;
            }
            let next = it.next().expect("peeked");
            if next.text == "{" {
                item.block = Some(items(it, Some(&item.at))?);
                break;
            }
            item.args.push(next.text);
        }
        // A `{` alone on the next line opens the keyword's block too.
        if item.block.is_none() && it.peek().is_some_and(|n| n.first && n.text == "{") {
            it.next();
            item.block = Some(items(it, Some(&item.at))?);
        }
        out.push(item);
    }
    match open {
        Some(at) => Err(KaError::at(at, "{", "block not closed (no matching })")),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_comments_and_quotes() {
        assert_eq!(
            split(r#"  misc_path "/bin/check a" 'b c' d # comment"#).unwrap(),
            vec!["misc_path", "/bin/check a", "b c", "d"]
        );
        assert_eq!(
            split("real_server 10.0.0.1 80{").unwrap(),
            vec!["real_server", "10.0.0.1", "80", "{"]
        );
        assert_eq!(split("! all comment").unwrap(), Vec::<String>::new());
        assert_eq!(split(r#"x "a\"b""#).unwrap(), vec!["x", "a\"b"]);
        assert!(split(r#"x "open"#).is_err());
    }
}

//! The brace format of corosync.conf and openais.conf, as a tree with line
//! numbers; no meaning is given to any name here (that is [`super::model`]).
//!
//! ```text
//! # a comment
//! totem {
//!     version: 2
//!     interface {
//!         bindnetaddr: 192.168.1.0
//!     }
//! }
//! ```
//!
//! One item per line, as corosync's `coroparse.c` reads it:
//! - blank lines and lines whose first non-blank character is `#` are
//!   skipped (a `#` after a value is part of the value, as in corosync);
//! - `name {` opens a section (the name is one word; nothing may follow the
//!   brace);
//! - `}` alone closes the innermost open section;
//! - `key: value` sets a key; the key is one word, the value is the rest of
//!   the line trimmed, with one pair of surrounding `"` or `'` stripped.
//!
//! Deliberate deviations from corosync, all stricter: text after `{` on the
//! same line, a `}` followed by more text, a key containing blanks, and an
//! unmatched quote are errors where corosync silently drops or keeps text.
//!
//! The input is hostile (a config may be edited by hand, or be garbage): every
//! input gives a tree or a [`ParseError`], never a panic. Files are bounded by
//! [`MAX_FILE_BYTES`] and nesting by [`MAX_DEPTH`]; the parser keeps an
//! explicit stack instead of recursing.

use std::fmt;

/// Largest config file accepted, in bytes (1 MiB; real ones are a few KiB).
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Deepest nesting of sections accepted (corosync's own never exceed 3).
pub const MAX_DEPTH: usize = 16;

/// A parsed file: the top-level items in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The file name used in errors and warnings.
    pub file: String,
    /// Items outside any section, in file order.
    pub items: Vec<Item>,
}

/// One line's worth of meaning: a `key: value` pair or a whole section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// `key: value`.
    Pair(Pair),
    /// `name { ... }`.
    Section(Section),
}

/// A `key: value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// The key, never empty, without blanks.
    pub key: String,
    /// The value: rest of the line trimmed, surrounding quotes stripped; may
    /// be empty.
    pub value: String,
    /// 1-based line number.
    pub line: u32,
}

/// A `name {` ... `}` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The section name, never empty, without blanks.
    pub name: String,
    /// 1-based line number of the opening `name {`.
    pub line: u32,
    /// The section's items in file order.
    pub items: Vec<Item>,
}

/// Why a file could not be read as a config, located at a line.
///
/// Also used by [`super::model`] for values that do not parse (a word where
/// a number is needed), so that every located error reads the same way.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: expected {expected}")]
pub struct ParseError {
    /// The file name as given to [`parse`].
    pub file: String,
    /// 1-based line number of the offending line.
    pub line: u32,
    /// What would have been valid there (and what was found, when useful).
    pub expected: String,
}

/// Parses `bytes` (the contents of `file`) into a [`Document`].
///
/// # Errors
/// A [`ParseError`] at the first malformed line: the file is over
/// [`MAX_FILE_BYTES`] (at the line where the limit falls), is not UTF-8 (at
/// the line of the first bad byte), has a line that is neither `key: value`,
/// `name {` nor `}`, has an empty key or section name, an unmatched quote,
/// a `}` with no open section, sections nested deeper than [`MAX_DEPTH`],
/// or a section never closed (at the line of its opening).
pub fn parse(file: &str, bytes: &[u8]) -> Result<Document, ParseError> {
    let err = |line: usize, expected: String| ParseError {
        file: file.to_owned(),
        line: line_number(line),
        expected,
    };
    if bytes.len() > MAX_FILE_BYTES {
        let line = count_lines(&bytes[..MAX_FILE_BYTES]);
        return Err(err(
            line,
            format!(
                "a file of at most {MAX_FILE_BYTES} bytes, found {} bytes",
                bytes.len()
            ),
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let line = count_lines(&bytes[..e.valid_up_to()]);
            return Err(err(line, "UTF-8 text, found an invalid byte".to_owned()));
        }
    };

    // The open sections, innermost last; the top level is `items`.
    let mut stack: Vec<Section> = Vec::new();
    let mut items: Vec<Item> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let item = match classify(line) {
            Ok(Line::Open(name)) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err(
                        line_no,
                        format!("sections nested at most {MAX_DEPTH} deep"),
                    ));
                }
                stack.push(Section {
                    name: name.to_owned(),
                    line: line_number(line_no),
                    items: Vec::new(),
                });
                continue;
            }
            Ok(Line::Close) => match stack.pop() {
                Some(section) => Item::Section(section),
                None => {
                    return Err(err(
                        line_no,
                        "`key: value` or `name {`, found `}` with no open section".to_owned(),
                    ))
                }
            },
            Ok(Line::Pair(key, value)) => Item::Pair(Pair {
                key: key.to_owned(),
                value: value.to_owned(),
                line: line_number(line_no),
            }),
            Err(expected) => return Err(err(line_no, expected)),
        };
        match stack.last_mut() {
            Some(parent) => parent.items.push(item),
            None => items.push(item),
        }
    }
    if let Some(open) = stack.pop() {
        return Err(ParseError {
            file: file.to_owned(),
            line: open.line,
            expected: format!("`}}` closing section `{}` opened here", open.name),
        });
    }
    Ok(Document {
        file: file.to_owned(),
        items,
    })
}

/// What one non-blank, non-comment line is.
enum Line<'a> {
    Open(&'a str),
    Close,
    Pair(&'a str, &'a str),
}

/// Reads one trimmed, non-empty line; `Err` says what was expected.
fn classify(line: &str) -> Result<Line<'_>, String> {
    if line == "}" {
        return Ok(Line::Close);
    }
    let colon = line.find(':');
    let brace = line.find('{');
    let pair = match (colon, brace) {
        (Some(c), Some(b)) => c < b,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if let (true, Some(c)) = (pair, colon) {
        let key = line[..c].trim();
        check_word(key, "a key before `:`")?;
        let value = unquote(line[c + 1..].trim())?;
        return Ok(Line::Pair(key, value));
    }
    if let Some(b) = brace {
        let name = line[..b].trim();
        check_word(name, "a section name before `{`")?;
        if !line[b + 1..].trim().is_empty() {
            return Err(format!(
                "end of line after `{name} {{` (put each item on its own line)"
            ));
        }
        return Ok(Line::Open(name));
    }
    Err(format!(
        "`key: value`, `name {{` or `}}`, found `{}`",
        excerpt(line)
    ))
}

/// A key or section name: non-empty, one word.
fn check_word(word: &str, what: &str) -> Result<(), String> {
    if word.is_empty() {
        return Err(what.to_owned());
    }
    if word.chars().any(char::is_whitespace) || word.contains('}') {
        return Err(format!("{what} without blanks, found `{}`", excerpt(word)));
    }
    Ok(())
}

/// Strips one pair of surrounding quotes; a lone opening quote is an error.
fn unquote(value: &str) -> Result<&str, String> {
    for quote in ['"', '\''] {
        if let Some(rest) = value.strip_prefix(quote) {
            return match rest.strip_suffix(quote) {
                Some(inner) => Ok(inner),
                None => Err(format!("a closing {quote} at the end of the value")),
            };
        }
    }
    Ok(value)
}

/// At most 40 characters of `text`, for messages about hostile input.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut out: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push_str("...");
    }
    out.escape_debug().to_string()
}

/// The 1-based number of the line the end of `prefix` is on.
fn count_lines(prefix: &[u8]) -> usize {
    prefix.iter().filter(|&&b| b == b'\n').count() + 1
}

/// A 1-based line number from a 1-based `usize`; files are at most
/// [`MAX_FILE_BYTES`] so it always fits, saturating just in case.
fn line_number(line: usize) -> u32 {
    u32::try_from(line.max(1)).unwrap_or(u32::MAX)
}

impl fmt::Display for Item {
    /// The item as it would be written back (sections on one line, for
    /// messages only).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Pair(p) => write!(f, "{}: {}", p.key, p.value),
            Item::Section(s) => write!(f, "{} {{ ... }}", s.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Document {
        parse("t.conf", text.as_bytes()).expect("parses")
    }

    fn bad(text: &str) -> ParseError {
        parse("t.conf", text.as_bytes()).expect_err("refused")
    }

    #[test]
    fn sections_pairs_comments_and_lines() {
        let doc = ok("# head\n\ntotem {\n  version: 2\n  # inner\n  interface {\n    mcastaddr: \"226.94.1.1\"\n  }\n}\nkey:   spaced value  \n");
        assert_eq!(doc.items.len(), 2);
        let Item::Section(totem) = &doc.items[0] else {
            panic!("section expected")
        };
        assert_eq!((totem.name.as_str(), totem.line), ("totem", 3));
        assert_eq!(
            totem.items[0],
            Item::Pair(Pair {
                key: "version".into(),
                value: "2".into(),
                line: 4
            })
        );
        let Item::Section(iface) = &totem.items[1] else {
            panic!("section expected")
        };
        assert_eq!(iface.line, 6);
        let Item::Pair(p) = &iface.items[0] else {
            panic!("pair expected")
        };
        assert_eq!((p.value.as_str(), p.line), ("226.94.1.1", 7));
        let Item::Pair(p) = &doc.items[1] else {
            panic!("pair expected")
        };
        assert_eq!((p.key.as_str(), p.value.as_str()), ("key", "spaced value"));
    }

    #[test]
    fn values_keep_colons_and_hashes_and_may_be_empty() {
        let doc = ok("a: fe80::1\nb: x # not a comment\nc:\nd: 'q'\nname{\n}\r\n");
        let values: Vec<String> = doc.items.iter().map(|i| i.to_string()).collect();
        assert_eq!(
            values,
            [
                "a: fe80::1",
                "b: x # not a comment",
                "c: ",
                "d: q",
                "name { ... }"
            ]
        );
    }

    #[test]
    fn malformed_lines_say_file_line_and_expected() {
        let e = bad("totem {\n  just words\n}\n");
        assert_eq!(e.line, 2);
        assert!(
            e.to_string().starts_with("t.conf:2: expected `key: value`"),
            "{e}"
        );
        assert_eq!(bad("a {\n : v\n}\n").line, 2);
        assert_eq!(bad("a {\n}\n}\n").line, 3);
        assert!(bad("}\n").expected.contains("no open section"));
        assert_eq!(bad("x: \"open\n").line, 1);
        assert_eq!(bad("my key: 1\n").line, 1);
        assert_eq!(bad("a { b: 1 }\n").line, 1);
        assert_eq!(bad(" {\n}\n").line, 1);
        assert_eq!(bad("a {\n} x\n").line, 2);
    }

    #[test]
    fn unclosed_section_points_at_its_opening() {
        let e = bad("totem {\n  token: 1\n  interface {\n    ttl: 1\n}\n");
        assert_eq!(e.line, 1);
        assert!(e.expected.contains("`totem`"), "{e}");
        let e = bad("a {\n}\nb {\n c {\n");
        assert_eq!(e.line, 4, "innermost unclosed section");
    }

    #[test]
    fn limits_on_size_and_depth() {
        let deep_ok = "s {\n".repeat(MAX_DEPTH) + &"}\n".repeat(MAX_DEPTH);
        ok(&deep_ok);
        let too_deep = "s {\n".repeat(MAX_DEPTH + 1) + &"}\n".repeat(MAX_DEPTH + 1);
        assert_eq!(
            bad(&too_deep).line,
            u32::try_from(MAX_DEPTH + 1).expect("small")
        );
        let mut big = "# filler\n".repeat(MAX_FILE_BYTES / 9);
        big.push_str(&"x".repeat(MAX_FILE_BYTES));
        let e = bad(&big);
        assert!(e.expected.contains("at most 1048576 bytes"), "{e}");
        assert_eq!(
            e.line,
            u32::try_from(MAX_FILE_BYTES / 9 + 1).expect("small")
        );
    }

    #[test]
    fn invalid_utf8_is_located() {
        let e = parse("t.conf", b"a: 1\nb: \xff\n").expect_err("refused");
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("UTF-8"));
    }

    #[test]
    fn long_junk_is_cut_in_messages() {
        let e = bad(&"z".repeat(10_000));
        assert!(e.to_string().len() < 200, "{e}");
    }
}

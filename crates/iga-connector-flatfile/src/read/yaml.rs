//! YAML: a sequence of mappings, or a mapping with one sequence-valued key
//! (`users: [...]`).
//!
//! Block-style files — the shape exports have — are streamed: a line reader frames
//! one sequence item at a time (a `-` at the sequence's indentation starts an item,
//! deeper lines continue it) and each item is parsed on its own, so memory holds one
//! record. Files this framing cannot split safely — flow style (`[...]`), anchors and
//! aliases (an alias may point into another item), several top-level keys — are
//! parsed whole, as before.

use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::error::{ImportError, Issue, IssueKind, Location};
use crate::read::{Columns, RawRow, RowSource, object_row};

pub(crate) struct YamlSource {
    file: String,
    cols: Columns,
    items: Items,
    n: u64,
}

enum Items {
    Whole(std::vec::IntoIter<serde_json::Value>),
    Stream(Framer),
}

/// Frames block-sequence items out of a line stream.
struct Framer {
    lines: std::io::Lines<BufReader<std::fs::File>>,
    /// Indentation of the sequence's `-`.
    indent: usize,
    /// The first line of the next item, already read, with its 1-based line number.
    next: Option<(u64, String)>,
    line_no: u64,
    done: bool,
}

fn syntax(file: &str, row: u64, msg: String) -> ImportError {
    ImportError::Syntax(Issue::new(
        Location {
            file: file.to_string(),
            sheet: None,
            row,
        },
        None,
        IssueKind::Syntax,
        msg,
    ))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Blank, comment, document start or directive: carries no record content.
fn is_trivia(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#') || t == "---" || t.starts_with("%")
}

/// Whether `line`, at `indent`, starts a sequence item (`- x` or a lone `-`).
fn starts_item(line: &str, indent: usize) -> bool {
    indent_of(line) == indent && {
        let rest = &line[indent..];
        rest == "-" || rest.starts_with("- ")
    }
}

/// An anchor (`&name`) or alias (`*name`) token outside quotes, roughly: enough to
/// decide that items cannot be parsed on their own.
fn has_anchor_or_alias(line: &str) -> bool {
    let t = line.trim_start();
    if t.starts_with('#') {
        return false;
    }
    let b = t.as_bytes();
    (0..b.len()).any(|i| {
        (b[i] == b'&' || b[i] == b'*')
            && (i == 0 || b[i - 1] == b' ')
            && b.get(i + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    })
}

/// Decide whether the file can be streamed; `Some(indent)` of its item lines.
fn stream_shape(path: &Path, file: &str) -> Result<Option<usize>, ImportError> {
    let f = std::fs::File::open(path).map_err(|e| ImportError::io(file, e))?;
    let mut shape: Option<usize> = None;
    let mut top_keys = 0;
    let mut expect_items_after_key = false;
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| ImportError::io(file, e))?;
        if has_anchor_or_alias(&line) {
            return Ok(None);
        }
        if is_trivia(&line) {
            continue;
        }
        let ind = indent_of(&line);
        if shape.is_none() {
            if ind == 0 && starts_item(&line, 0) {
                shape = Some(0);
            } else if ind == 0 && expect_items_after_key {
                if starts_item(&line, 0) {
                    shape = Some(0);
                } else {
                    return Ok(None);
                }
            } else if expect_items_after_key {
                if starts_item(&line, ind) {
                    shape = Some(ind);
                } else {
                    return Ok(None);
                }
            } else if ind == 0 && line.trim_end().ends_with(':') && !line.starts_with('-') {
                top_keys += 1;
                expect_items_after_key = true;
            } else {
                return Ok(None); // flow style, scalars, inline mappings
            }
            continue;
        }
        if ind == 0 && !line.starts_with('-') {
            // A second top-level key (or `...`): not a single sequence.
            top_keys += 1;
            if top_keys > 1 || shape == Some(0) {
                return Ok(None);
            }
        }
    }
    Ok(shape)
}

impl Framer {
    fn open(path: &Path, file: &str, indent: usize) -> Result<Self, ImportError> {
        let f = std::fs::File::open(path).map_err(|e| ImportError::io(file, e))?;
        Ok(Self {
            lines: BufReader::new(f).lines(),
            indent,
            next: None,
            line_no: 0,
            done: false,
        })
    }

    /// The next item's text (de-indented) and its first line number.
    fn next_item(&mut self, file: &str) -> Option<Result<(u64, String), ImportError>> {
        if self.done {
            return None;
        }
        let mut item: Option<(u64, String)> = self.next.take();
        loop {
            let line = match self.lines.next() {
                None => {
                    self.done = true;
                    break;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(ImportError::io(file, e)));
                }
                Some(Ok(l)) => l,
            };
            self.line_no += 1;
            if starts_item(&line, self.indent) {
                let start = (self.line_no, line[self.indent..].to_string());
                if item.is_some() {
                    self.next = Some(start);
                    break;
                }
                item = Some(start);
                continue;
            }
            match &mut item {
                Some((_, text)) if is_trivia(&line) || indent_of(&line) > self.indent => {
                    text.push('\n');
                    text.push_str(line.get(self.indent..).unwrap_or(""));
                }
                Some(_) => {
                    // Back at the sequence's level or shallower without a `-`: the
                    // sequence is over (`stream_shape` refused files with more after it).
                    self.done = true;
                    break;
                }
                None => {} // before the first item (the `key:` line, comments)
            }
        }
        item.map(Ok)
    }
}

pub(crate) fn open(path: &Path, file: &str) -> Result<YamlSource, ImportError> {
    if let Some(indent) = stream_shape(path, file)? {
        return Ok(YamlSource {
            file: file.to_string(),
            cols: Columns::default(),
            items: Items::Stream(Framer::open(path, file, indent)?),
            n: 0,
        });
    }
    let f = std::fs::File::open(path).map_err(|e| ImportError::io(file, e))?;
    let doc: serde_norway::Value =
        serde_norway::from_reader(std::io::BufReader::new(f)).map_err(|e| {
            let row = e.location().map_or(0, |l| l.line() as u64);
            ImportError::Syntax(Issue::new(
                Location {
                    file: file.to_string(),
                    sheet: None,
                    row,
                },
                None,
                IssueKind::Syntax,
                format!("invalid YAML: {e}"),
            ))
        })?;
    let json = serde_json::to_value(&doc).map_err(|e| {
        ImportError::mapping(
            file,
            format!("YAML with non-string keys is not supported: {e}"),
        )
    })?;
    let items = match json {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(m) if m.len() == 1 && m.values().all(|v| v.is_array()) => {
            match m.into_iter().next() {
                Some((_, serde_json::Value::Array(a))) => a,
                _ => Vec::new(),
            }
        }
        serde_json::Value::Null => Vec::new(),
        _ => {
            return Err(ImportError::mapping(
                file,
                "expected a sequence of mappings (or a mapping holding one sequence)",
            ));
        }
    };
    Ok(YamlSource {
        file: file.to_string(),
        cols: Columns::default(),
        items: Items::Whole(items.into_iter()),
        n: 0,
    })
}

impl RowSource for YamlSource {
    fn columns(&self) -> &[String] {
        self.cols.names()
    }

    fn next_row(&mut self) -> Option<Result<RawRow, ImportError>> {
        let item = match &mut self.items {
            Items::Whole(it) => it.next()?,
            Items::Stream(f) => match f.next_item(&self.file)? {
                Err(e) => return Some(Err(e)),
                Ok((line, text)) => {
                    let parsed: Result<Vec<serde_json::Value>, String> =
                        serde_norway::from_str::<serde_norway::Value>(&text)
                            .map_err(|e| e.to_string())
                            .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string()))
                            .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()));
                    match parsed {
                        Ok(mut one) if one.len() == 1 => one.remove(0),
                        Ok(_) => serde_json::Value::Null,
                        Err(e) => {
                            let at = e
                                .split(" at line ")
                                .nth(1)
                                .and_then(|r| r.split(' ').next())
                                .and_then(|n| n.parse::<u64>().ok())
                                .map_or(line, |n| line + n - 1);
                            return Some(Err(syntax(
                                &self.file,
                                at,
                                format!("invalid YAML in the item starting at line {line}: {e}"),
                            )));
                        }
                    }
                }
            },
        };
        self.n += 1;
        Some(Ok(match item {
            serde_json::Value::Object(m) => object_row(&mut self.cols, &m, self.n),
            _ => RawRow {
                row: self.n,
                values: Vec::new(),
                issue_col: None,
                issue: Some(Issue::new(
                    Location {
                        file: self.file.clone(),
                        sheet: None,
                        row: self.n,
                    },
                    None,
                    IssueKind::Syntax,
                    "expected a mapping",
                )),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Option<usize> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.yaml");
        std::fs::write(&p, text).unwrap();
        stream_shape(&p, "x.yaml").unwrap()
    }

    #[test]
    fn block_sequences_stream_and_the_rest_is_parsed_whole() {
        assert_eq!(shape("# c\n---\n- id: a\n  x: 1\n- id: b\n"), Some(0));
        assert_eq!(shape("users:\n  - id: a\n  - id: b\n"), Some(2));
        assert_eq!(shape("users:\n- id: a\n- id: b\n"), Some(0));
        assert_eq!(shape("[{id: a}, {id: b}]\n"), None, "flow style");
        assert_eq!(shape("- &base {dept: X}\n- <<: *base\n"), None, "anchors");
        assert_eq!(
            shape("users:\n  - id: a\ngroups:\n  - id: g\n"),
            None,
            "two keys"
        );
        assert_eq!(
            shape("- id: a\nextra: 1\n"),
            None,
            "more after the sequence"
        );
        assert_eq!(shape("id: a\n"), None, "a single mapping");
    }
}

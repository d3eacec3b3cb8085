//! JSON: an array of objects (split element by element, never loaded whole) or JSON
//! lines (one object per line). Detected from the first non-blank byte.

use std::fs::File;
use std::io::{BufRead, BufReader, Bytes};
use std::path::Path;

use crate::error::{ImportError, Issue, IssueKind, Location};
use crate::read::{Columns, RawRow, RowSource, object_row};

pub(crate) struct JsonSource {
    file: String,
    cols: Columns,
    mode: Mode,
}

enum Mode {
    Lines {
        rdr: BufReader<File>,
        line: u64,
        buf: String,
    },
    Array {
        bytes: Bytes<BufReader<File>>,
        line: u64,
        done: bool,
        peeked: Option<u8>,
    },
}

impl JsonSource {
    pub(crate) fn open(path: &Path, file: &str) -> Result<Self, ImportError> {
        let f = File::open(path).map_err(|e| ImportError::io(file, e))?;
        let mut rdr = BufReader::with_capacity(128 * 1024, f);
        let mut first = None;
        let mut skipped_lines = 0u64;
        loop {
            let buf = rdr.fill_buf().map_err(|e| ImportError::io(file, e))?;
            if buf.is_empty() {
                break;
            }
            let mut used = 0;
            for &b in buf {
                // A UTF-8 BOM or whitespace before the first value.
                if b.is_ascii_whitespace() || b == 0xEF || b == 0xBB || b == 0xBF {
                    used += 1;
                    if b == b'\n' {
                        skipped_lines += 1;
                    }
                } else {
                    first = Some(b);
                    break;
                }
            }
            rdr.consume(used);
            if first.is_some() {
                break;
            }
        }
        let mode = if first == Some(b'[') {
            rdr.consume(1);
            Mode::Array {
                bytes: std::io::Read::bytes(rdr),
                line: skipped_lines + 1,
                done: false,
                peeked: None,
            }
        } else {
            Mode::Lines {
                rdr,
                line: skipped_lines,
                buf: String::new(),
            }
        };
        Ok(Self {
            file: file.to_string(),
            cols: Columns::default(),
            mode,
        })
    }

    fn loc(&self, row: u64) -> Location {
        Location {
            file: self.file.clone(),
            sheet: None,
            row,
        }
    }

    fn make_row(&mut self, text: &[u8], row: u64) -> RawRow {
        match serde_json::from_slice::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => object_row(&mut self.cols, &m, row),
            Ok(other) => RawRow {
                row,
                values: Vec::new(),
                issue_col: None,
                issue: Some(Issue::new(
                    self.loc(row),
                    None,
                    IssueKind::Syntax,
                    format!("expected an object, found {}", kind_of(&other)),
                )),
            },
            Err(e) => RawRow {
                row,
                values: Vec::new(),
                issue_col: None,
                issue: Some(Issue::new(
                    self.loc(row),
                    None,
                    IssueKind::Syntax,
                    format!("invalid JSON: {e}"),
                )),
            },
        }
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl RowSource for JsonSource {
    fn columns(&self) -> &[String] {
        self.cols.names()
    }

    fn next_row(&mut self) -> Option<Result<RawRow, ImportError>> {
        match &mut self.mode {
            Mode::Lines { rdr, line, buf } => loop {
                buf.clear();
                match rdr.read_line(buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => return Some(Err(ImportError::io(&self.file, e))),
                }
                *line += 1;
                if buf.trim().is_empty() {
                    continue;
                }
                let (text, row) = (std::mem::take(buf), *line);
                let r = self.make_row(text.trim().as_bytes(), row);
                return Some(Ok(r));
            },
            Mode::Array {
                bytes,
                line,
                done,
                peeked,
            } => {
                if *done {
                    return None;
                }
                // Skip separators and find the element start.
                let mut elem = Vec::new();
                let start_line;
                loop {
                    let b = match peeked.take().map(Ok).or_else(|| bytes.next()) {
                        None => {
                            let row = *line;
                            return Some(Err(ImportError::Syntax(Issue::new(
                                self.loc(row),
                                None,
                                IssueKind::Syntax,
                                "unterminated JSON array",
                            ))));
                        }
                        Some(Err(e)) => return Some(Err(ImportError::io(&self.file, e))),
                        Some(Ok(b)) => b,
                    };
                    match b {
                        b'\n' => *line += 1,
                        b' ' | b'\t' | b'\r' | b',' => {}
                        b']' => {
                            *done = true;
                            return None;
                        }
                        _ => {
                            start_line = *line;
                            elem.push(b);
                            break;
                        }
                    }
                }
                let (mut depth, mut in_str, mut esc) = (0i32, false, false);
                match elem[0] {
                    b'{' | b'[' => depth = 1,
                    b'"' => in_str = true,
                    _ => {}
                }
                let scalar = depth == 0 && !in_str;
                while depth > 0 || in_str || scalar {
                    let b = match bytes.next() {
                        None if scalar => break,
                        None => {
                            return Some(Err(ImportError::Syntax(Issue::new(
                                self.loc(start_line),
                                None,
                                IssueKind::Syntax,
                                "unterminated JSON value",
                            ))));
                        }
                        Some(Err(e)) => return Some(Err(ImportError::io(&self.file, e))),
                        Some(Ok(b)) => b,
                    };
                    if b == b'\n' {
                        *line += 1;
                    }
                    if in_str {
                        elem.push(b);
                        if esc {
                            esc = false;
                        } else if b == b'\\' {
                            esc = true;
                        } else if b == b'"' {
                            in_str = false;
                            if scalar {
                                break;
                            }
                        }
                        continue;
                    }
                    match b {
                        b',' | b']' if scalar => {
                            *peeked = Some(b);
                            break;
                        }
                        b'"' => in_str = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        _ => {}
                    }
                    elem.push(b);
                }
                let r = self.make_row(&elem, start_line);
                Some(Ok(r))
            }
        }
    }
}

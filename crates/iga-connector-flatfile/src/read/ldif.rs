//! LDIF content records (RFC 2849): comments, folded lines, base64 (`::`) values.
//! Attribute names are lower-cased; multi-valued attributes join with `;`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use base64::Engine;

use crate::error::{ImportError, Issue, IssueKind, Location};
use crate::read::{Columns, RawRow, RowSource};

pub(crate) struct LdifSource {
    file: String,
    rdr: BufReader<File>,
    cols: Columns,
    line: u64,
    lookahead: Option<String>,
}

impl LdifSource {
    pub(crate) fn open(path: &Path, file: &str) -> Result<Self, ImportError> {
        let f = File::open(path).map_err(|e| ImportError::io(file, e))?;
        let mut cols = Columns::default();
        cols.slot("dn");
        Ok(Self {
            file: file.to_string(),
            rdr: BufReader::new(f),
            cols,
            line: 0,
            lookahead: None,
        })
    }

    fn raw_line(&mut self) -> Result<Option<String>, ImportError> {
        if let Some(l) = self.lookahead.take() {
            return Ok(Some(l));
        }
        let mut s = String::new();
        match self.rdr.read_line(&mut s) {
            Ok(0) => Ok(None),
            Ok(_) => {
                self.line += 1;
                while s.ends_with('\n') || s.ends_with('\r') {
                    s.pop();
                }
                Ok(Some(s))
            }
            Err(e) => Err(ImportError::io(&self.file, e)),
        }
    }

    /// One logical line (folded continuation lines joined).
    fn logical_line(&mut self) -> Result<Option<String>, ImportError> {
        let Some(mut l) = self.raw_line()? else {
            return Ok(None);
        };
        loop {
            match self.raw_line()? {
                Some(next) if next.starts_with(' ') => l.push_str(&next[1..]),
                other => {
                    self.lookahead = other;
                    return Ok(Some(l));
                }
            }
        }
    }
}

impl RowSource for LdifSource {
    fn columns(&self) -> &[String] {
        self.cols.names()
    }

    fn next_row(&mut self) -> Option<Result<RawRow, ImportError>> {
        let mut values: Vec<String> = Vec::new();
        let mut start = 0u64;
        let mut issue: Option<Issue> = None;
        loop {
            let line = match self.logical_line() {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            let Some(line) = line else { break };
            // The line number of the last raw line read (minus a lookahead).
            let here = self.line - u64::from(self.lookahead.is_some());
            if line.is_empty() {
                if start == 0 {
                    continue;
                }
                break;
            }
            if line.starts_with('#') {
                continue;
            }
            let Some((name, rest)) = line.split_once(':') else {
                issue.get_or_insert_with(|| {
                    Issue::new(
                        Location {
                            file: self.file.clone(),
                            sheet: None,
                            row: here,
                        },
                        None,
                        IssueKind::Syntax,
                        format!("line {here}: expected `attribute: value`"),
                    )
                });
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            if start == 0 {
                if name == "version" {
                    continue;
                }
                start = here;
            }
            let value = if let Some(b64) = rest.strip_prefix(':') {
                match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
                    Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    Err(e) => {
                        issue.get_or_insert_with(|| {
                            Issue::new(
                                Location {
                                    file: self.file.clone(),
                                    sheet: None,
                                    row: start,
                                },
                                Some(&name),
                                IssueKind::Encoding,
                                format!("line {here}: bad base64 value: {e}"),
                            )
                        });
                        continue;
                    }
                }
            } else if rest.starts_with('<') {
                issue.get_or_insert_with(|| {
                    Issue::new(
                        Location {
                            file: self.file.clone(),
                            sheet: None,
                            row: start,
                        },
                        Some(&name),
                        IssueKind::Syntax,
                        format!("line {here}: URL values (`:<`) are not supported"),
                    )
                });
                continue;
            } else {
                rest.trim_start().to_string()
            };
            if name == "changetype" {
                issue.get_or_insert_with(|| {
                    Issue::new(
                        Location {
                            file: self.file.clone(),
                            sheet: None,
                            row: start,
                        },
                        Some("changetype"),
                        IssueKind::Syntax,
                        "LDIF change records are not supported; export content records",
                    )
                });
            }
            let i = self.cols.slot(&name);
            if i >= values.len() {
                values.resize(i + 1, String::new());
            }
            if values[i].is_empty() {
                values[i] = value;
            } else {
                values[i].push(';');
                values[i].push_str(&value);
            }
        }
        if start == 0 && issue.is_none() {
            return None;
        }
        Some(Ok(RawRow {
            row: start,
            values,
            issue,
            issue_col: None,
        }))
    }
}

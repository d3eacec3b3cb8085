//! CSV: delimiter sniffing, quoting, UTF-8 BOM, Latin-1, header detection, CRLF,
//! quoted newlines, trailing empty columns.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::config::{CsvOptions, Encoding, HeaderMode};
use crate::error::{ImportError, Issue, IssueKind, Location};
use crate::mapping::{is_integer, parse_date};
use crate::read::{RawRow, RowSource};

const SNIFF: usize = 64 * 1024;

pub(crate) struct CsvSource {
    rdr: csv::Reader<Box<dyn Read>>,
    file: String,
    columns: Vec<String>,
    latin1: bool,
    record: csv::ByteRecord,
    pending: std::collections::VecDeque<RawRow>,
}

/// Decode one field.
pub(crate) fn decode(bytes: &[u8], latin1: bool) -> Result<String, std::str::Utf8Error> {
    if latin1 {
        Ok(bytes.iter().map(|&b| b as char).collect())
    } else {
        std::str::from_utf8(bytes).map(str::to_string)
    }
}

fn sniff_delimiter(head: &[u8], quote: u8) -> u8 {
    let mut counts = [0usize; 4];
    let cands = [b',', b';', b'\t', b'|'];
    let mut in_q = false;
    for &b in head {
        if b == quote {
            in_q = !in_q;
        } else if !in_q && (b == b'\n' || b == b'\r') {
            break;
        } else if !in_q && let Some(i) = cands.iter().position(|c| *c == b) {
            counts[i] += 1;
        }
    }
    let (best, n) = counts
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, usize::MAX - *i))
        .map(|(i, n)| (i, *n))
        .unwrap_or((0, 0));
    if n == 0 { b',' } else { cands[best] }
}

/// Whether a cell looks like data rather than a column name.
pub(crate) fn looks_like_data(s: &str) -> bool {
    let t = s.trim();
    t.is_empty()
        || is_integer(t)
        || t.parse::<f64>().is_ok()
        || parse_date(t).is_some()
        || t.contains('@')
        || t.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `first` is a header: every cell non-empty, distinct and not data-like,
/// and (as Python's `csv.Sniffer` does) columns whose later values share a shape
/// (all integers, or all the same length) mostly disagree with the first cell.
fn header_votes(first: &RawRow, following: &[RawRow]) -> bool {
    let cells: Vec<&str> = first.values.iter().map(|s| s.trim()).collect();
    let n = cells
        .iter()
        .rposition(|c| !c.is_empty())
        .map_or(0, |i| i + 1);
    let mut seen = std::collections::HashSet::new();
    if n == 0
        || !cells[..n]
            .iter()
            .all(|c| !looks_like_data(c) && seen.insert(*c))
    {
        return false;
    }
    let mut votes = 0i32;
    for (i, head) in cells[..n].iter().enumerate() {
        let vals: Vec<&str> = following
            .iter()
            .filter_map(|r| r.values.get(i).map(|v| v.trim()))
            .filter(|v| !v.is_empty())
            .collect();
        if vals.is_empty() {
            continue;
        }
        if vals.iter().all(|v| is_integer(v)) {
            votes += if is_integer(head) { -1 } else { 1 };
        } else if vals
            .iter()
            .all(|v| v.chars().count() == vals[0].chars().count())
        {
            votes += if head.chars().count() == vals[0].chars().count() {
                -1
            } else {
                1
            };
        }
    }
    votes >= 0
}

impl CsvSource {
    pub(crate) fn open(path: &Path, file: &str, opts: &CsvOptions) -> Result<Self, ImportError> {
        let f = File::open(path).map_err(|e| ImportError::io(file, e))?;
        let mut br = BufReader::with_capacity(256 * 1024, f);
        // Fill enough of the buffer to sniff.
        let head = br
            .fill_buf()
            .map_err(|e| ImportError::io(file, e))?
            .to_vec();
        let bom = head.starts_with(&[0xEF, 0xBB, 0xBF]);
        if bom {
            br.consume(3);
        }
        let body = if bom { &head[3..] } else { &head[..] };
        let latin1 = match opts.encoding {
            Encoding::Utf8 => false,
            Encoding::Latin1 => true,
            Encoding::Auto => {
                !bom && match std::str::from_utf8(&body[..body.len().min(SNIFF)]) {
                    Ok(_) => false,
                    // A sequence cut at the end of the sniff window is not an error.
                    Err(e) => e.error_len().is_some(),
                }
            }
        };
        let quote = u8::try_from(opts.quote).unwrap_or(b'"');
        let delimiter = match opts.delimiter {
            Some(d) => u8::try_from(d).map_err(|_| {
                ImportError::mapping(file, format!("delimiter {d:?} is not a single byte"))
            })?,
            None => sniff_delimiter(body, quote),
        };
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .quote(quote)
            .from_reader(Box::new(br) as Box<dyn Read>);
        let mut src = Self {
            rdr,
            file: file.to_string(),
            columns: Vec::new(),
            latin1,
            record: csv::ByteRecord::new(),
            pending: std::collections::VecDeque::new(),
        };
        let Some(first) = src.read_raw()? else {
            return Ok(src);
        };
        // Up to 20 following records vote on whether the first is a header.
        let mut following = Vec::new();
        if opts.header == HeaderMode::Auto {
            while following.len() < 20 {
                match src.read_raw()? {
                    Some(r) => following.push(r),
                    None => break,
                }
            }
        }
        let is_header = match opts.header {
            HeaderMode::Present => true,
            HeaderMode::Absent => false,
            HeaderMode::Auto => first.issue.is_none() && header_votes(&first, &following),
        };
        if is_header {
            let mut cols: Vec<String> = first.values.iter().map(|s| s.trim().to_string()).collect();
            while cols.last().is_some_and(String::is_empty) {
                cols.pop();
            }
            for (i, c) in cols.iter_mut().enumerate() {
                if c.is_empty() {
                    *c = format!("column{}", i + 1);
                }
            }
            src.columns = cols;
        } else {
            src.columns = (1..=first.values.len())
                .map(|i| format!("column{i}"))
                .collect();
            src.pending.push_back(first);
        }
        src.pending.extend(following);
        Ok(src)
    }

    fn read_raw(&mut self) -> Result<Option<RawRow>, ImportError> {
        match self.rdr.read_byte_record(&mut self.record) {
            Ok(false) => return Ok(None),
            Ok(true) => {}
            Err(e) => {
                let row = e.position().map_or(0, |p| p.line());
                return Err(ImportError::Syntax(Issue::new(
                    Location {
                        file: self.file.clone(),
                        sheet: None,
                        row,
                    },
                    None,
                    IssueKind::Syntax,
                    e.to_string(),
                )));
            }
        }
        let row = self.record.position().map_or(0, |p| p.line());
        let mut values = Vec::with_capacity(self.record.len());
        let mut issue = None;
        let mut issue_col = None;
        for (i, field) in self.record.iter().enumerate() {
            match decode(field, self.latin1) {
                Ok(s) => values.push(s),
                Err(e) => {
                    values.push(String::from_utf8_lossy(field).into_owned());
                    if issue.is_none() {
                        issue_col = Some(i);
                        issue = Some(Issue::new(
                            Location {
                                file: self.file.clone(),
                                sheet: None,
                                row,
                            },
                            self.columns.get(i).map(String::as_str),
                            IssueKind::Encoding,
                            format!(
                                "invalid UTF-8 at byte {} of the field (set encoding: latin1?)",
                                e.valid_up_to()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(Some(RawRow {
            row,
            values,
            issue,
            issue_col,
        }))
    }
}

impl RowSource for CsvSource {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self) -> Option<Result<RawRow, ImportError>> {
        let mut r = match self.pending.pop_front() {
            Some(r) => r,
            None => match self.read_raw() {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            },
        };
        if let (Some(i), Some(issue)) = (r.issue_col, r.issue.as_mut())
            && issue.column.is_none()
        {
            issue.column = self.columns.get(i).cloned();
        }
        let n = self.columns.len();
        if r.values.len() > n {
            // Trailing empty columns (`a,b,c,,`) are harmless; data beyond the header is not.
            if r.values[n..].iter().all(|v| v.trim().is_empty()) {
                r.values.truncate(n);
            } else if r.issue.is_none() {
                r.issue = Some(Issue::new(
                    Location {
                        file: self.file.clone(),
                        sheet: None,
                        row: r.row,
                    },
                    None,
                    IssueKind::FieldCount,
                    format!("{} fields but the header has {n} columns", r.values.len()),
                ));
            }
        }
        Some(Ok(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_delimiters_outside_quotes() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1,2;3", b'"'), b';');
        assert_eq!(sniff_delimiter(b"\"a,b\"|c|d\n", b'"'), b'|');
        assert_eq!(sniff_delimiter(b"a\tb\n", b'"'), b'\t');
        assert_eq!(sniff_delimiter(b"single\n", b'"'), b',');
    }
}

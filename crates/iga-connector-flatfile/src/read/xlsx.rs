//! XLSX through calamine: sheet selection, header row, Excel dates, numbers stored as
//! text, blank rows, merged regions. calamine materialises one worksheet's cells.

use std::path::Path;

use calamine::{Data, Range, Reader, Xlsx, open_workbook};

use crate::config::XlsxOptions;
use crate::error::{ImportError, Issue, IssueKind, Location};
use crate::read::{RawRow, RowSource};

pub(crate) struct XlsxSource {
    file: String,
    sheet: String,
    columns: Vec<String>,
    range: Range<Data>,
    /// Absolute 0-based row of the range's first row.
    top: u32,
    /// Next relative row to read.
    next: usize,
}

/// Cell text: integral floats lose `.0`, dates become ISO, text stays text.
pub(crate) fn cell_text(c: &Data) -> Result<String, String> {
    Ok(match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                f.to_string()
            }
        }
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => {
            if dt.is_duration() {
                dt.as_f64().to_string()
            } else {
                let (y, m, d, hh, mm, ss, _) = dt.to_ymd_hms_milli();
                if (hh, mm, ss) == (0, 0, 0) {
                    format!("{y:04}-{m:02}-{d:02}")
                } else {
                    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}")
                }
            }
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => return Err(format!("spreadsheet error cell {e}")),
    })
}

impl XlsxSource {
    pub(crate) fn open(path: &Path, file: &str, opts: &XlsxOptions) -> Result<Self, ImportError> {
        let bad = |msg: String| {
            ImportError::Syntax(Issue::new(
                Location {
                    file: file.to_string(),
                    sheet: None,
                    row: 0,
                },
                None,
                IssueKind::Syntax,
                msg,
            ))
        };
        if !path.exists() {
            return Err(ImportError::io(
                file,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        let mut wb: Xlsx<_> =
            open_workbook(path).map_err(|e| bad(format!("not a readable XLSX workbook: {e}")))?;
        let names = wb.sheet_names();
        let sheet = match &opts.sheet {
            Some(s) => names.iter().find(|n| *n == s).cloned().ok_or_else(|| {
                ImportError::mapping(file, format!("no sheet named {s:?} (sheets: {names:?})"))
            })?,
            None => names
                .first()
                .cloned()
                .ok_or_else(|| bad("workbook has no worksheet".into()))?,
        };
        let mut range = wb
            .worksheet_range(&sheet)
            .map_err(|e| bad(format!("sheet {sheet:?}: {e}")))?;
        let (top, left) = range.start().unwrap_or((0, 0));
        if opts.fill_merged
            && let Ok(merged) = wb.merge_cells_by_sheet_name(&sheet)
        {
            for m in merged {
                let v = range.get_value(m.start).cloned().unwrap_or(Data::Empty);
                for r in m.start.0..=m.end.0 {
                    for c in m.start.1..=m.end.1 {
                        if (r, c) != m.start && r >= top && c >= left {
                            range.set_value((r, c), v.clone());
                        }
                    }
                }
            }
        }
        let mut src = Self {
            file: file.to_string(),
            sheet,
            columns: Vec::new(),
            range,
            top,
            next: 0,
        };
        let height = src.range.height();
        // Header row: given (1-based absolute), else the first non-blank row.
        let header_rel = match opts.header_row {
            Some(r) => (r.saturating_sub(1)).checked_sub(top).map(|x| x as usize),
            None => (0..height).find(|&i| !src.row_blank(i)),
        };
        let Some(h) = header_rel.filter(|&h| h < height) else {
            return Ok(src);
        };
        let width = src.range.width();
        let mut cols: Vec<String> = (0..width)
            .map(|c| {
                src.range
                    .get((h, c))
                    .and_then(|d| cell_text(d).ok())
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect();
        while cols.last().is_some_and(String::is_empty) {
            cols.pop();
        }
        for (i, c) in cols.iter_mut().enumerate() {
            if c.is_empty() {
                *c = format!("column{}", i + 1);
            }
        }
        src.columns = cols;
        src.next = h + 1;
        Ok(src)
    }

    fn row_blank(&self, i: usize) -> bool {
        (0..self.range.width()).all(|c| {
            self.range.get((i, c)).is_none_or(|d| {
                matches!(d, Data::Empty) || matches!(d, Data::String(s) if s.trim().is_empty())
            })
        })
    }
}

impl RowSource for XlsxSource {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn sheet(&self) -> Option<&str> {
        Some(&self.sheet)
    }

    fn numeric_cells(&self) -> bool {
        true
    }

    fn next_row(&mut self) -> Option<Result<RawRow, ImportError>> {
        if self.next >= self.range.height() {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let row = u64::from(self.top) + i as u64 + 1;
        let n = self.columns.len();
        let mut values = Vec::with_capacity(n);
        let mut issue = None;
        for c in 0..self.range.width() {
            let d = self.range.get((i, c)).unwrap_or(&Data::Empty);
            match cell_text(d) {
                Ok(s) => {
                    if c >= n && !s.trim().is_empty() && issue.is_none() {
                        issue = Some(Issue::new(
                            Location {
                                file: self.file.clone(),
                                sheet: Some(self.sheet.clone()),
                                row,
                            },
                            None,
                            IssueKind::FieldCount,
                            format!("value in column {} beyond the {n} header columns", c + 1),
                        ));
                    }
                    if c < n {
                        values.push(s);
                    }
                }
                Err(msg) => {
                    if c < n {
                        values.push(String::new());
                    }
                    issue.get_or_insert_with(|| {
                        Issue::new(
                            Location {
                                file: self.file.clone(),
                                sheet: Some(self.sheet.clone()),
                                row,
                            },
                            self.columns.get(c).map(String::as_str),
                            IssueKind::Syntax,
                            msg,
                        )
                    });
                }
            }
        }
        Some(Ok(RawRow {
            row,
            values,
            issue,
            issue_col: None,
        }))
    }
}

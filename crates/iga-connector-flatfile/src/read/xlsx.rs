//! XLSX through calamine, streamed: a reader thread owns the workbook and walks the
//! worksheet XML cell by cell (`worksheet_cells_reader`), sending one row at a time
//! through a bounded channel, so memory holds the shared-strings table, the merged
//! regions and a few hundred rows — not the sheet. Sheet selection, header row, Excel
//! dates, numbers stored as text, blank rows, merged regions.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use calamine::{Data, Dimensions, Reader, Xlsx, open_workbook};

use crate::config::XlsxOptions;
use crate::error::{ImportError, Issue, IssueKind, Location};
use crate::read::{RawRow, RowSource};

/// Rows in flight between the reader thread and the importer.
const CHANNEL_ROWS: usize = 256;

/// One worksheet row: absolute 0-based row index and its non-empty cells
/// `(absolute column, value)` in column order.
type SheetRow = (u32, Vec<(u32, Data)>);

pub(crate) struct XlsxSource {
    file: String,
    sheet: String,
    columns: Vec<String>,
    /// Absolute 0-based column of the first column.
    left: u32,
    rows: Receiver<Result<SheetRow, String>>,
    /// Rows read ahead while looking for the header.
    pending: VecDeque<SheetRow>,
    /// Absolute 0-based index of the next row to return (gaps are blank rows).
    next_row: u32,
    merged: Vec<Dimensions>,
    /// Top-left value of each merged region once seen.
    merged_values: Vec<Option<Data>>,
    done: bool,
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

fn stream_rows(
    mut wb: Xlsx<std::io::BufReader<std::fs::File>>,
    sheet: String,
    tx: SyncSender<Result<SheetRow, String>>,
) {
    let mut reader = match wb.worksheet_cells_reader(&sheet) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(format!("sheet {sheet:?}: {e}")));
            return;
        }
    };
    let mut cur: Option<SheetRow> = None;
    loop {
        match reader.next_cell() {
            Ok(Some(cell)) => {
                let (r, c) = cell.get_position();
                let v: Data = cell.get_value().clone().into();
                if matches!(v, Data::Empty) {
                    continue;
                }
                match &mut cur {
                    Some((row, cells)) if *row == r => cells.push((c, v)),
                    _ => {
                        if let Some(done) = cur.take()
                            && tx.send(Ok(done)).is_err()
                        {
                            return; // the importer stopped reading
                        }
                        cur = Some((r, vec![(c, v)]));
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(Err(format!("sheet {sheet:?}: {e}")));
                return;
            }
        }
    }
    if let Some(done) = cur {
        let _ = tx.send(Ok(done));
    }
}

fn cell_blank(d: &Data) -> bool {
    matches!(d, Data::Empty) || matches!(d, Data::String(s) if s.trim().is_empty())
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
        let merged = if opts.fill_merged {
            wb.merge_cells_by_sheet_name(&sheet).unwrap_or_default()
        } else {
            Vec::new()
        };
        // The declared used range tells the first column; check the sheet opens here
        // so a bad sheet is an error of `open`, not of the first row.
        let declared_left = {
            let r = wb
                .worksheet_cells_reader(&sheet)
                .map_err(|e| bad(format!("sheet {sheet:?}: {e}")))?;
            let dim = r.dimensions();
            (dim.start != (0, 0) || dim.end != (0, 0)).then_some(dim.start.1)
        };
        let (tx, rx) = sync_channel(CHANNEL_ROWS);
        let thread_sheet = sheet.clone();
        std::thread::Builder::new()
            .name("iga-xlsx-reader".into())
            .spawn(move || stream_rows(wb, thread_sheet, tx))
            .map_err(|e| ImportError::io(file, e))?;
        let merged_values = vec![None; merged.len()];
        let mut src = Self {
            file: file.to_string(),
            sheet,
            columns: Vec::new(),
            left: declared_left.unwrap_or(0),
            rows: rx,
            pending: VecDeque::new(),
            next_row: 0,
            merged,
            merged_values,
            done: false,
        };
        // Header row: given (1-based absolute), else the first non-blank row.
        let header = loop {
            let Some(row) = src.pull()? else {
                src.done = true;
                return Ok(src);
            };
            let blank = row.1.iter().all(|(_, d)| cell_blank(d));
            match opts.header_row {
                Some(h) if row.0 + 1 < h => continue,
                Some(h) if row.0 + 1 > h => {
                    // The header row is empty: no columns; this row is data.
                    src.next_row = h;
                    src.pending.push_back(row);
                    return Ok(src);
                }
                None if blank => continue,
                _ => break row,
            }
        };
        if declared_left.is_none() {
            src.left = header.1.first().map_or(0, |(c, _)| *c);
        }
        let mut cols: Vec<String> = Vec::new();
        for (c, d) in &header.1 {
            if *c < src.left {
                continue;
            }
            let i = (*c - src.left) as usize;
            if cols.len() <= i {
                cols.resize(i + 1, String::new());
            }
            cols[i] = cell_text(d).unwrap_or_default().trim().to_string();
        }
        while cols.last().is_some_and(String::is_empty) {
            cols.pop();
        }
        for (i, c) in cols.iter_mut().enumerate() {
            if c.is_empty() {
                *c = format!("column{}", i + 1);
            }
        }
        src.columns = cols;
        src.next_row = header.0 + 1;
        Ok(src)
    }

    /// The next row from the reader thread (merged regions filled).
    fn pull(&mut self) -> Result<Option<SheetRow>, ImportError> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(Some(r));
        }
        match self.rows.recv() {
            Ok(Ok(mut row)) => {
                self.fill_merged(&mut row);
                Ok(Some(row))
            }
            Ok(Err(msg)) => Err(ImportError::Syntax(Issue::new(
                Location {
                    file: self.file.clone(),
                    sheet: Some(self.sheet.clone()),
                    row: 0,
                },
                None,
                IssueKind::Syntax,
                msg,
            ))),
            Err(_) => Ok(None), // the reader thread finished
        }
    }

    /// Copy each merged region's top-left value into the region's other cells of
    /// this row. Rows arrive in order, so the top-left cell is seen first.
    fn fill_merged(&mut self, row: &mut SheetRow) {
        if self.merged.is_empty() {
            return;
        }
        let r = row.0;
        let mut added = false;
        for (i, m) in self.merged.iter().enumerate() {
            if r < m.start.0 || r > m.end.0 {
                continue;
            }
            if r == m.start.0 {
                self.merged_values[i] = row
                    .1
                    .iter()
                    .find(|(c, _)| *c == m.start.1)
                    .map(|(_, d)| d.clone());
            }
            let Some(v) = &self.merged_values[i] else {
                continue;
            };
            for c in m.start.1..=m.end.1 {
                if (r, c) == m.start || row.1.iter().any(|(x, _)| *x == c) {
                    continue;
                }
                row.1.push((c, v.clone()));
                added = true;
            }
        }
        if added {
            row.1.sort_by_key(|(c, _)| *c);
        }
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
        if self.done {
            return None;
        }
        let (r, cells) = match self.pending.front() {
            // A gap before the next stored row is a blank row.
            Some((r, _)) if *r > self.next_row => (self.next_row, Vec::new()),
            Some(_) => self.pending.pop_front()?,
            None => match self.pull() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some(row)) if row.0 > self.next_row => {
                    self.pending.push_back(row);
                    (self.next_row, Vec::new())
                }
                Ok(Some(row)) => row,
            },
        };
        self.next_row = r + 1;
        let row = u64::from(r) + 1;
        let n = self.columns.len();
        let mut values = vec![String::new(); n];
        let mut issue = None;
        let loc = |file: &str, sheet: &str| Location {
            file: file.to_string(),
            sheet: Some(sheet.to_string()),
            row,
        };
        for (c, d) in &cells {
            if *c < self.left {
                continue;
            }
            let i = (*c - self.left) as usize;
            match cell_text(d) {
                Ok(s) => {
                    if i >= n {
                        if !s.trim().is_empty() && issue.is_none() {
                            issue = Some(Issue::new(
                                loc(&self.file, &self.sheet),
                                None,
                                IssueKind::FieldCount,
                                format!("value in column {} beyond the {n} header columns", i + 1),
                            ));
                        }
                    } else {
                        values[i] = s;
                    }
                }
                Err(msg) => {
                    issue.get_or_insert_with(|| {
                        Issue::new(
                            loc(&self.file, &self.sheet),
                            self.columns.get(i).map(String::as_str),
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

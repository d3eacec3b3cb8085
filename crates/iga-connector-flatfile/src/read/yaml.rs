//! YAML: a sequence of mappings, or a mapping with one sequence-valued key
//! (`users: [...]`). Parsed whole (YAML has no record framing to stream on).

use std::path::Path;

use crate::error::{ImportError, Issue, IssueKind, Location};
use crate::read::{Columns, RawRow, RowSource, object_row};

pub(crate) struct YamlSource {
    file: String,
    cols: Columns,
    items: std::vec::IntoIter<serde_json::Value>,
    n: u64,
}

pub(crate) fn open(path: &Path, file: &str) -> Result<YamlSource, ImportError> {
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
        items: items.into_iter(),
        n: 0,
    })
}

impl RowSource for YamlSource {
    fn columns(&self) -> &[String] {
        self.cols.names()
    }

    fn next_row(&mut self) -> Option<Result<RawRow, ImportError>> {
        let item = self.items.next()?;
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

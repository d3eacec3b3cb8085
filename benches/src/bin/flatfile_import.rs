//! `flatfile_import`: streaming import of a generated legacy export (CSV or XLSX) through
//! `iga-connector-flatfile` — inference, mapping and validation (types, required
//! fields, duplicate keys) — compared with a bare parse of the same file in the same
//! run (`csv` `read_byte_record` for CSV, calamine `worksheet_range` + row walk for XLSX).
//!
//! ```text
//! cargo run --release -p iga-benches --bin flatfile_import -- --rows 1000000
//! cargo run --release -p iga-benches --bin flatfile_import -- --format xlsx --rows 50000
//! ```
//! Last line:
//! `flatfile_import format=<csv|xlsx> rows=<N> secs=<S> rows_per_sec=<R> raw_parse_rows_per_sec=<B> ratio=<R/B> peak_rss_mb=<M> rejected=<K>`
//!
//! The generated file has the columns `account_id, display_name, email, department,
//! roles (;-separated), active, hire_date`. One row in 5,000 is deliberately bad (a
//! repeated account id, or a hire date that is not a date); the binary checks that
//! exactly those rows were rejected and every other row imported, and exits non-zero
//! otherwise.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use iga_connector_flatfile::{ImportOptions, Importer, Record, RejectPolicy};

const DEPTS: [&str; 8] = [
    "Finance", "Sales", "Ops", "IT", "HR", "Legal", "R&D", "Support",
];
const ROLES: [&str; 12] = [
    "SYS1", "PAYROLL", "AUDITOR", "CICSUSR", "DB2READ", "DB2WRITE", "TSOUSER", "BATCH", "OPERATOR",
    "SECADM", "HELPDESK", "REPORTS",
];

/// Row `i` (0-based) as cells; `bad` tells whether it was made invalid on purpose.
fn row(i: u64, cells: &mut [String; 7]) -> bool {
    for c in cells.iter_mut() {
        c.clear();
    }
    let bad_dup = i % 5000 == 4999; // repeats the id of row i - 1
    let bad_date = i % 5000 == 2499;
    let id = if bad_dup { i - 1 } else { i };
    let _ = write!(cells[0], "U{id:07}");
    let _ = write!(cells[1], "User {i}, Test");
    let _ = write!(cells[2], "u{i:07}@corp.example");
    cells[3].push_str(DEPTS[(i % 8) as usize]);
    let n = 1 + (i % 3) as usize;
    for k in 0..n {
        if k > 0 {
            cells[4].push(';');
        }
        cells[4].push_str(ROLES[((i as usize) * 7 + k * 5) % ROLES.len()]);
    }
    cells[5].push_str(if i.is_multiple_of(10) { "N" } else { "Y" });
    if bad_date {
        cells[6].push_str("2021-02-30");
    } else {
        let _ = write!(
            cells[6],
            "{:04}-{:02}-{:02}",
            2000 + i % 24,
            1 + i % 12,
            1 + i % 28
        );
    }
    bad_dup || bad_date
}

const HEADER: [&str; 7] = [
    "account_id",
    "display_name",
    "email",
    "department",
    "roles",
    "active",
    "hire_date",
];

fn generate_csv(path: &Path, rows: u64) -> std::io::Result<u64> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(w, "{}", HEADER.join(","))?;
    let mut cells: [String; 7] = Default::default();
    let mut bad = 0;
    for i in 0..rows {
        bad += u64::from(row(i, &mut cells));
        // display_name holds a comma: quote it.
        writeln!(
            w,
            "{},\"{}\",{},{},{},{},{}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
        )?;
    }
    w.flush()?;
    Ok(bad)
}

fn generate_xlsx(path: &Path, rows: u64) -> Result<u64, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let ws = wb.add_worksheet();
    ws.set_name("Users")?;
    for (c, h) in HEADER.iter().enumerate() {
        ws.write_string(0, c as u16, *h)?;
    }
    let mut cells: [String; 7] = Default::default();
    let mut bad = 0;
    for i in 0..rows {
        let is_bad = row(i, &mut cells);
        bad += u64::from(is_bad);
        let r = (i + 1) as u32;
        for (c, cell) in cells.iter().enumerate().take(6) {
            ws.write_string(r, c as u16, cell)?;
        }
        // Real Excel dates (serials with a date format), except the bad ones.
        let d: Vec<u32> = cells[6].split('-').filter_map(|x| x.parse().ok()).collect();
        match ExcelDateTime::from_ymd(d[0] as u16, d[1] as u8, d[2] as u8) {
            Ok(dt) if !is_bad || i % 5000 != 2499 => {
                ws.write_datetime_with_format(r, 6, dt, &date)?;
            }
            _ => {
                ws.write_string(r, 6, &cells[6])?;
            }
        }
    }
    wb.save(path)?;
    Ok(bad)
}

fn raw_parse_csv(path: &Path) -> u64 {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .expect("open csv");
    let mut rec = csv::ByteRecord::new();
    let mut n = 0;
    while rdr.read_byte_record(&mut rec).expect("csv record") {
        n += 1;
    }
    n
}

fn raw_parse_xlsx(path: &Path) -> u64 {
    use calamine::{Reader, Xlsx, open_workbook};
    let mut wb: Xlsx<_> = open_workbook(path).expect("open xlsx");
    let range = wb.worksheet_range("Users").expect("sheet");
    let mut n = 0u64;
    let mut cells = 0usize;
    for r in range.rows().skip(1) {
        cells += r.len();
        n += 1;
    }
    std::hint::black_box(cells);
    n
}

fn main() -> ExitCode {
    let mut rows: Option<u64> = None;
    let mut format = String::from("csv");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rows" => rows = args.next().and_then(|v| v.parse().ok()),
            "--format" => format = args.next().unwrap_or_default(),
            other => {
                eprintln!(
                    "unknown argument {other}; usage: flatfile_import [--rows N] [--format csv|xlsx]"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if format != "csv" && format != "xlsx" {
        eprintln!("--format must be csv or xlsx");
        return ExitCode::FAILURE;
    }
    let rows = rows.unwrap_or(if format == "csv" { 1_000_000 } else { 50_000 });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("racf_export.{format}"));
    let t = Instant::now();
    let expected_bad = if format == "csv" {
        generate_csv(&path, rows).expect("generate csv")
    } else {
        generate_xlsx(&path, rows).expect("generate xlsx")
    };
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    eprintln!(
        "generated {} rows ({:.1} MB) in {:.2}s",
        rows,
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let raw_rows = if format == "csv" {
        raw_parse_csv(&path)
    } else {
        raw_parse_xlsx(&path)
    };
    let raw_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let base = ImportOptions::default().policy(RejectPolicy::SkipBadRows);
    let schema = Importer::new(base.clone()).infer(&path).expect("infer");
    let Some(mapping) = schema.suggested else {
        eprintln!("inference found no account column");
        return ExitCode::FAILURE;
    };
    let mapping = mapping.require("email").require("display_name");
    let importer = Importer::new(base.mapping(mapping));
    let (mut accounts, mut grants) = (0u64, 0u64);
    let report = match importer.import(&path, &mut |r| {
        if let Record::Account(a) = r {
            accounts += 1;
            grants += a.entitlements.len() as u64;
        }
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("import failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secs = t.elapsed().as_secs_f64();
    let rss = iga_benches::peak_rss_mb();

    let m = &report.mapping;
    let ok_mapping = m.account_id == "account_id"
        && m.email.as_deref() == Some("email")
        && m.entitlements.as_deref() == Some("roles")
        && m.enabled.as_deref() == Some("active");
    let checks = [
        (
            raw_rows == rows,
            format!("raw parse saw {raw_rows} rows, expected {rows}"),
        ),
        (
            report.rows_rejected == expected_bad,
            format!(
                "rejected {} rows, expected {expected_bad}",
                report.rows_rejected
            ),
        ),
        (
            accounts == rows - expected_bad,
            format!(
                "imported {accounts} accounts, expected {}",
                rows - expected_bad
            ),
        ),
        (ok_mapping, format!("unexpected inferred mapping {m:?}")),
        (
            grants >= accounts,
            format!("{grants} role grants for {accounts} accounts"),
        ),
    ];
    for (ok, why) in checks {
        if !ok {
            eprintln!("flatfile_import: check failed: {why}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "import: {} issues, {} entitlements discovered; raw parse {:.3}s",
        report.issue_count,
        report.entitlements.len(),
        raw_secs
    );
    let r = rows as f64 / secs;
    let b = rows as f64 / raw_secs.max(1e-9);
    println!(
        "flatfile_import format={format} rows={rows} secs={secs:.3} rows_per_sec={r:.0} raw_parse_rows_per_sec={b:.0} ratio={:.3} peak_rss_mb={rss:.1} rejected={}",
        r / b,
        report.rows_rejected
    );
    ExitCode::SUCCESS
}

//! `ledger_import`: bulk import of N ledger rules into the SQLite ledger, compared with a
//! plain rusqlite insert of the same rows into a bare table in the same run.
//!
//! ```text
//! cargo run --release -p iga-benches --bin ledger_import -- --rules 1000000 [--sync full]
//! ```
//! Last line:
//! `ledger_import rules=<N> secs=<S> rules_per_sec=<R> raw_sqlite_rules_per_sec=<B> ratio=<R/B> peak_rss_mb=<M> synchronous=<mode> integrity=ok`
//!
//! Before printing it, the binary checks the row counts, that the ledger's unique index
//! rejects a duplicate, that re-importing a sample changes nothing, and
//! `PRAGMA integrity_check`; any failure exits non-zero.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use iga_ledger::{ImportOptions, OpenOptions, RuleRow, SqliteLedger, Synchronous};

const IDENTITY_RULES: u64 = 10;
const GROUPS: u64 = 1000;

/// Reusable buffers for one generated rule.
#[derive(Default)]
struct Row {
    identity: String,
    system: String,
    entitlement: String,
    source_kind: &'static str,
    source_detail: String,
}

/// Rule `i`: identity `i / 10` holds 10 distinct groups spread over 4 systems; the
/// source is an import batch, a department birthright rule or the user's request.
fn generate(i: u64, r: &mut Row) {
    let u = i / IDENTITY_RULES;
    let j = i % IDENTITY_RULES;
    let g = (u * 37 + j * 101) % GROUPS;
    r.identity.clear();
    let _ = write!(r.identity, "user{u:07}");
    r.system.clear();
    let _ = write!(r.system, "sys-{}", g % 4);
    r.entitlement.clear();
    let _ = write!(r.entitlement, "grp-{g:04}");
    r.source_detail.clear();
    r.source_kind = match j % 3 {
        0 => {
            r.source_detail.push_str("migration-2026");
            "import"
        }
        1 => {
            let _ = write!(r.source_detail, "dept-{}", u % 50);
            "birthright"
        }
        _ => {
            let _ = write!(r.source_detail, "servicenow:RITM{u:07}");
            "request"
        }
    };
}

/// CPU time (user + system) of this process so far, from /proc/self/stat (seconds).
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which is in parentheses).
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

fn raw_sqlite(path: &std::path::Path, n: u64, sync: Synchronous) -> rusqlite::Result<f64> {
    let mut c = rusqlite::Connection::open(path)?;
    c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    c.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA cache_size = -65536;
         CREATE TABLE raw_rules (tenant TEXT, identity TEXT, system TEXT,
                                 entitlement_kind TEXT, entitlement TEXT,
                                 source_kind TEXT, source_detail TEXT);",
        sync.as_str()
    ))?;
    let start = Instant::now();
    let tx = c.transaction()?;
    {
        let mut st = tx.prepare("INSERT INTO raw_rules VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
        let mut r = Row::default();
        for i in 0..n {
            generate(i, &mut r);
            st.execute(rusqlite::params![
                "acme",
                r.identity,
                r.system,
                "group",
                r.entitlement,
                r.source_kind,
                r.source_detail
            ])?;
        }
    }
    tx.commit()?;
    let secs = start.elapsed().as_secs_f64();
    let count: i64 = c.query_row("SELECT count(*) FROM raw_rules", [], |r| r.get(0))?;
    if count as u64 != n {
        return Err(rusqlite::Error::InvalidQuery);
    }
    Ok(secs)
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ledger_import: FAILED: {msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let mut rules: u64 = 1_000_000;
    let mut sync = Synchronous::Normal;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rules" => match args.next().and_then(|v| v.replace('_', "").parse().ok()) {
                Some(v) if v > 0 => rules = v,
                _ => return fail("--rules needs a positive integer"),
            },
            "--sync" => match args.next().as_deref() {
                Some("normal" | "NORMAL") => sync = Synchronous::Normal,
                Some("full" | "FULL") => sync = Synchronous::Full,
                _ => return fail("--sync needs normal or full"),
            },
            "-h" | "--help" => {
                println!("usage: ledger_import [--rules N] [--sync normal|full]");
                return ExitCode::SUCCESS;
            }
            other => return fail(format!("unknown argument `{other}`")),
        }
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return fail(e),
    };

    // Baseline: plain rusqlite insert of the same rows into a bare table.
    let cpu0 = cpu_secs();
    let raw_secs = match raw_sqlite(&dir.path().join("raw.db"), rules, sync) {
        Ok(s) => s,
        Err(e) => return fail(format!("raw sqlite baseline: {e}")),
    };
    let raw_rate = rules as f64 / raw_secs;
    eprintln!(
        "raw sqlite: {rules} rows in {raw_secs:.3} s ({raw_rate:.0}/s), cpu {:.2} s",
        cpu_secs() - cpu0
    );

    let db = dir.path().join("ledger.db");
    let ledger = match SqliteLedger::open_with(&db, OpenOptions::default().synchronous(sync)) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let at = iga_directive::Clock::now(&iga_directive::SystemClock);
    let opts = ImportOptions::new("bench-2026", at)
        .actor("ledger_import")
        .default_tenant("acme")
        .progress(250_000, |p| eprintln!("  imported {} rows", p.rows_read));
    let cpu1 = cpu_secs();
    let start = Instant::now();
    let report = ledger.import(opts, |sink| {
        let mut r = Row::default();
        for i in 0..rules {
            generate(i, &mut r);
            sink.add(&RuleRow {
                tenant: "",
                identity: &r.identity,
                system: &r.system,
                entitlement_kind: "group",
                entitlement_id: &r.entitlement,
                source_kind: r.source_kind,
                source_detail: &r.source_detail,
            })?;
        }
        Ok(())
    });
    let secs = start.elapsed().as_secs_f64();
    let import_cpu = cpu_secs() - cpu1;
    let report = match report {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let peak = iga_benches::peak_rss_mb();
    let rate = rules as f64 / secs;
    eprintln!(
        "ledger import: {} rows ({} changed) in {secs:.3} s, cpu {import_cpu:.2} s, digest {}",
        report.rows_read, report.rows_changed, report.digest
    );

    // Verification (not timed).
    let check = || -> Result<(), String> {
        for (table, want) in [
            ("lg_grant", rules),
            ("lg_import_batch", 1),
            ("lg_history", 1),
            ("lg_entitlement", GROUPS.min(rules)),
        ] {
            let got = ledger.table_count(table).map_err(|e| e.to_string())?;
            if got != want {
                return Err(format!("{table} has {got} rows, expected {want}"));
            }
        }
        if report.rows_changed != rules {
            return Err(format!(
                "{} rows changed, expected {rules}",
                report.rows_changed
            ));
        }
        let c = rusqlite::Connection::open(&db).map_err(|e| e.to_string())?;
        let unique_pk: i64 = c
            .query_row(
                "SELECT count(*) FROM pragma_index_list('lg_grant') WHERE origin = 'pk' AND \"unique\" = 1",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if unique_pk != 1 {
            return Err("lg_grant has no unique primary-key index".into());
        }
        match c.execute(
            "INSERT INTO lg_grant SELECT identity_id, entitlement_id, source_id, 1, 1 FROM lg_grant LIMIT 1",
            [],
        ) {
            Err(e) if e.to_string().contains("UNIQUE") => {}
            other => return Err(format!("duplicate insert was not rejected: {other:?}")),
        }
        drop(c);
        // Idempotent re-import of a sample.
        let sample = rules.min(10_000);
        let again = ledger
            .import(
                ImportOptions::new("bench-2026", at).default_tenant("acme"),
                |sink| {
                    let mut r = Row::default();
                    for i in 0..sample {
                        generate(i, &mut r);
                        sink.add(&RuleRow {
                            tenant: "",
                            identity: &r.identity,
                            system: &r.system,
                            entitlement_kind: "group",
                            entitlement_id: &r.entitlement,
                            source_kind: r.source_kind,
                            source_detail: &r.source_detail,
                        })?;
                    }
                    Ok(())
                },
            )
            .map_err(|e| e.to_string())?;
        if again.rows_changed != 0 || again.batch_id.is_some() {
            return Err(format!("re-import changed {} rows", again.rows_changed));
        }
        ledger.integrity_check().map_err(|e| e.to_string())?;
        Ok(())
    };
    if let Err(e) = check() {
        return fail(e);
    }
    let mode = match ledger.synchronous() {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    println!(
        "ledger_import rules={rules} secs={secs:.3} rules_per_sec={rate:.0} raw_sqlite_rules_per_sec={raw_rate:.0} ratio={:.3} peak_rss_mb={peak:.0} synchronous={mode} integrity=ok",
        rate / raw_rate
    );
    ExitCode::SUCCESS
}

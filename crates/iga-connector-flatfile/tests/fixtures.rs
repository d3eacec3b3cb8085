//! The nasty cases, each with its expected outcome. Inputs are written by the tests
//! themselves (XLSX with rust_xlsxwriter), so no binary fixture is committed.

use std::path::{Path, PathBuf};

use iga_connector_flatfile::*;
use iga_directive::{EntitlementKind, EntitlementRef};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn accounts(
    path: &Path,
    opts: ImportOptions,
) -> Result<(ImportReport, Vec<AccountRecord>), ImportError> {
    let mut out = Vec::new();
    let report = Importer::new(opts).import(path, &mut |r| {
        if let Record::Account(a) = r {
            out.push(a);
        }
    })?;
    Ok((report, out))
}

fn skip() -> ImportOptions {
    ImportOptions::default().policy(RejectPolicy::SkipBadRows)
}

#[test]
fn utf8_bom_is_not_part_of_the_first_column_name() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "bom.csv",
        "\u{feff}account_id,name\nA1,Ann\nA2,Bob\n".as_bytes(),
    );
    let (rep, recs) = accounts(&p, ImportOptions::default()).unwrap();
    assert_eq!(rep.columns, ["account_id", "name"]);
    assert_eq!(rep.mapping.account_id, "account_id");
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].key, "A1");
    assert_eq!(recs[0].identity.display_name.as_deref(), Some("Ann"));
}

#[test]
fn crlf_line_endings_leave_no_carriage_returns() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "crlf.csv",
        b"account_id,name,dept\r\nA1,Ann,Fin\r\nA2,Bob,Ops\r\n",
    );
    let (rep, recs) = accounts(&p, ImportOptions::default()).unwrap();
    assert_eq!(rep.rows_imported, 2);
    assert_eq!(recs[1].identity.department.as_deref(), Some("Ops"));
    assert!(
        recs.iter()
            .all(|r| !format!("{:?}", r.identity).contains('\r'))
    );
}

#[test]
fn quoted_newlines_stay_in_the_value_and_rows_keep_their_line_numbers() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "quoted.csv",
        b"account_id,name,email\nA1,\"Ann\nSmith, Jr.\",ann@x.test\nA2,Bob,\n",
    );
    let opts = ImportOptions::default().mapping(
        Mapping::accounts("account_id")
            .display_name("name")
            .email("email")
            .require("email"),
    );
    let err = accounts(&p, opts).unwrap_err();
    let ImportError::Rejected { first, .. } = err else {
        panic!("{err}")
    };
    // A2 starts on line 4 because A1's value spans two lines.
    assert_eq!(first.location.row, 4);
    assert_eq!(first.column.as_deref(), Some("email"));
    assert_eq!(first.kind, IssueKind::Required);
    let (_, recs) = accounts(
        &p,
        skip().mapping(Mapping::accounts("account_id").display_name("name")),
    )
    .unwrap();
    assert_eq!(
        recs[0].identity.display_name.as_deref(),
        Some("Ann\nSmith, Jr.")
    );
}

#[test]
fn latin1_is_detected_and_decoded_and_forced_utf8_names_the_cell() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "latin1.csv",
        b"account_id;name;dept\nA1;M\xfcller;Vertrieb\nA2;Ren\xe9e;IT\n",
    );
    let (rep, recs) = accounts(&p, ImportOptions::default()).unwrap();
    assert_eq!(rep.columns.len(), 3, "delimiter `;` sniffed");
    assert_eq!(recs[0].identity.display_name.as_deref(), Some("Müller"));
    assert_eq!(recs[1].identity.display_name.as_deref(), Some("Renée"));
    let forced = ImportOptions::default().source(SourceOptions::default().encoding(Encoding::Utf8));
    let ImportError::Rejected { first, report, .. } = accounts(&p, forced).unwrap_err() else {
        panic!()
    };
    assert_eq!(first.kind, IssueKind::Encoding);
    assert_eq!(
        (first.location.row, first.column.as_deref()),
        (2, Some("name"))
    );
    assert_eq!(report.rows_rejected, 2);
}

#[test]
fn trailing_empty_columns_are_ignored_but_extra_data_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "trailing.csv",
        b"account_id,name,,\nA1,Ann,,\nA2,Bob,,surprise\nA3,Cy\n",
    );
    let rejects = d.path().join("trailing.rejects.csv");
    let (rep, recs) = accounts(&p, skip().rejects(&rejects)).unwrap();
    assert_eq!(rep.columns, ["account_id", "name"]);
    assert_eq!(
        recs.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["A1", "A3"]
    );
    assert_eq!(rep.issues[0].kind, IssueKind::FieldCount);
    assert_eq!(rep.issues[0].location.row, 3);
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        text.starts_with("file,sheet,row,column,kind,error,account_id,name"),
        "{text}"
    );
    assert!(text.contains(",3,,field_count,"), "{text}");
}

#[test]
fn duplicate_keys_reject_the_file_or_only_the_later_row() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "dups.csv",
        b"account_id,name\nA1,Ann\nA2,Bob\nA1,Imposter\n",
    );
    let err = accounts(&p, ImportOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(
            "dups.csv: row 4, column \"account_id\": duplicate account \"A1\" (first at row 2)"
        ),
        "{msg}"
    );
    let rejects = d.path().join("dups.rejects.csv");
    let (rep, recs) = accounts(&p, skip().rejects(&rejects)).unwrap();
    assert_eq!((rep.rows_imported, rep.rows_rejected), (2, 1));
    assert_eq!(
        recs[0].identity.display_name.as_deref(),
        Some("Ann"),
        "first row wins"
    );
    assert_eq!(rep.rejects_file.as_deref(), Some(rejects.as_path()));
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("Imposter"));
}

#[test]
fn blank_rows_are_skipped_and_counted() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "blank.csv",
        b"account_id,name\nA1,Ann\n\n,,\n  ,\nA2,Bob\n",
    );
    let (rep, recs) = accounts(&p, ImportOptions::default()).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        rep.blank_rows, 2,
        "`,,` and `  ,` (the empty line never reaches us)"
    );
    assert_eq!(rep.rows_rejected, 0);
}

#[test]
fn numbers_stored_as_text_stay_text_in_csv() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "ids.csv",
        b"user_id,employee_number,level\nU1,000123,3\nU2,000124,4\n",
    );
    let (rep, recs) = accounts(&p, ImportOptions::default()).unwrap();
    assert_eq!(
        rep.schema.column_type("employee_number"),
        Some(&ColumnType::String)
    );
    assert_eq!(rep.schema.column_type("level"), Some(&ColumnType::Integer));
    assert_eq!(recs[0].identity.employee_id.as_deref(), Some("000123"));
    assert_eq!(recs[0].identity.attributes["level"], serde_json::json!(3));
}

#[test]
fn type_and_required_errors_name_row_and_column() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "types.csv",
        b"account_id,active,hired,email\nA1,Y,2020-01-02,a@x.test\nA2,maybe,2020-02-30,\n,N,2021-01-01,c@x.test\n",
    );
    let opts = skip().mapping(
        Mapping::accounts("account_id")
            .enabled("active")
            .email("email")
            .require("email")
            .column_type("hired", ColumnType::Date),
    );
    let (rep, recs) = accounts(&p, opts).unwrap();
    assert_eq!(recs.len(), 1);
    let got: Vec<(u64, &str, IssueKind)> = rep
        .issues
        .iter()
        .map(|i| (i.location.row, i.column.as_deref().unwrap(), i.kind))
        .collect();
    assert_eq!(
        got,
        [
            (3, "email", IssueKind::Required),
            (3, "active", IssueKind::Type),
            (3, "hired", IssueKind::Type),
            (4, "account_id", IssueKind::Required),
        ]
    );
    assert_eq!(recs[0].enabled, Some(true));
    assert_eq!(recs[0].identity.attributes["hired"], "2020-01-02");
}

#[test]
fn headerless_file_gets_numbered_columns_and_a_mapping_override() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "noheader.csv",
        b"U1|Ann|SYS1;PAYROLL\nU2|Bob|SYS1\n",
    );
    let schema = Importer::new(ImportOptions::default()).infer(&p).unwrap();
    assert_eq!(schema.columns[0].name, "column1");
    assert_eq!(schema.key_candidates[0], "column1");
    let m = Mapping::accounts("column1")
        .display_name("column2")
        .entitlements("column3")
        .entitlement_kind(EntitlementKind::Group);
    let (rep, recs) = accounts(&p, ImportOptions::default().mapping(m)).unwrap();
    assert_eq!(rep.rows_imported, 2);
    assert_eq!(
        recs[0].entitlements,
        [
            EntitlementRef::group("SYS1"),
            EntitlementRef::group("PAYROLL")
        ]
    );
    assert_eq!(
        rep.entitlements.iter().collect::<Vec<_>>(),
        ["PAYROLL", "SYS1"]
    );
}

#[test]
fn mapping_naming_a_missing_column_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "m.csv", b"account_id,name\nA1,Ann\n");
    let err = accounts(
        &p,
        ImportOptions::default().mapping(Mapping::accounts("userid")),
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::Mapping { .. }));
    assert!(
        err.to_string()
            .contains("m.csv: mapping: mapping names column \"userid\""),
        "{err}"
    );
}

#[test]
fn assignment_files_check_referential_integrity() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "connect.csv",
        b"USERID,GROUP\nU1,SYS1\nU1,PAYROLL\nU9,SYS1\nU1,SYS1\n",
    );
    let opts = skip().known_accounts(["U1".to_string(), "U2".to_string()]);
    let mut got = Vec::new();
    let rep = Importer::new(opts)
        .import(&p, &mut |r| got.push(r))
        .unwrap();
    assert_eq!(rep.mapping.shape, Shape::Assignments, "inferred");
    assert_eq!(got.len(), 2);
    let kinds: Vec<(u64, IssueKind)> = rep
        .issues
        .iter()
        .map(|i| (i.location.row, i.kind))
        .collect();
    assert_eq!(
        kinds,
        [(4, IssueKind::UnknownAccount), (5, IssueKind::Duplicate)]
    );
}

#[test]
fn json_array_json_lines_yaml_and_ldif() {
    let d = tempfile::tempdir().unwrap();
    let arr = write(
        d.path(),
        "a.json",
        br#"[
  {"user_id": "U1", "email": "u1@x.test", "roles": ["A", "B"], "active": true},
  {"user_id": "U2", "email": "u2@x.test", "roles": [], "active": false, "note": "has ] and , inside"}
]"#,
    );
    let (rep, recs) = accounts(&arr, ImportOptions::default()).unwrap();
    assert_eq!(rep.format, Format::Json);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].entitlements.len(), 2);
    assert_eq!(recs[1].enabled, Some(false));
    assert_eq!(recs[1].identity.attributes["note"], "has ] and , inside");
    assert_eq!(recs[1].row, 3);

    let lines = write(
        d.path(),
        "l.jsonl",
        b"{\"user_id\":\"U1\"}\n\n{\"user_id\":\"U1\"}\n[1]\n",
    );
    let rep = accounts(&lines, skip()).unwrap().0;
    let got: Vec<(u64, IssueKind)> = rep
        .issues
        .iter()
        .map(|i| (i.location.row, i.kind))
        .collect();
    assert_eq!(got, [(3, IssueKind::Duplicate), (4, IssueKind::Syntax)]);

    if cfg!(feature = "yaml") {
        let yaml = write(
            d.path(),
            "u.yaml",
            b"users:\n  - user_id: U1\n    department: Fin\n  - user_id: U2\n    department: Ops\n",
        );
        let (_, recs) = accounts(&yaml, ImportOptions::default()).unwrap();
        assert_eq!(recs[1].identity.department.as_deref(), Some("Ops"));
    }

    let ldif = write(
        d.path(),
        "dir.ldif",
        b"version: 1\n\n# people\ndn: uid=u1,ou=people,dc=x\nuid: u1\ncn: Ann\n Smith\nmail: u1@x.test\nmemberOf: cn=a\nmemberOf: cn=b\n\ndn: uid=u2,ou=people,dc=x\nuid: u2\ncn:: UmVuw6ll\n",
    );
    let opts = ImportOptions::default().mapping(
        Mapping::accounts("uid")
            .display_name("cn")
            .email("mail")
            .entitlements("memberof")
            .entitlement_kind(EntitlementKind::Group),
    );
    let (rep, recs) = accounts(&ldif, opts).unwrap();
    assert_eq!(rep.format, Format::Ldif);
    assert_eq!(recs[0].identity.display_name.as_deref(), Some("AnnSmith"));
    assert_eq!(
        recs[0].entitlements,
        [EntitlementRef::group("cn=a"), EntitlementRef::group("cn=b")]
    );
    assert_eq!(recs[1].identity.display_name.as_deref(), Some("Renée"));
    assert_eq!(recs[1].row, 12);
}

#[cfg(feature = "xlsx")]
mod xlsx {
    use super::*;
    use rust_xlsxwriter::{ExcelDateTime, Format as XFormat, Workbook};

    fn workbook(path: &Path) {
        let mut wb = Workbook::new();
        let date = XFormat::new().set_num_format("yyyy-mm-dd");
        let ws = wb.add_worksheet();
        ws.set_name("Cover").unwrap();
        ws.write_string(0, 0, "RACF export, do not edit").unwrap();
        let ws = wb.add_worksheet();
        ws.set_name("Users").unwrap();
        // Title row, blank row, then the header on row 3.
        ws.write_string(0, 0, "Users as of 2024-05-01").unwrap();
        for (c, h) in ["USERID", "NAME", "EMPNO", "HIRED", "GROUPS", "LEVEL"]
            .iter()
            .enumerate()
        {
            ws.write_string(2, c as u16, *h).unwrap();
        }
        ws.write_string(3, 0, "U001").unwrap();
        ws.write_string(3, 1, "Ann").unwrap();
        ws.write_string(3, 2, "00123").unwrap(); // number stored as text
        ws.write_datetime_with_format(3, 3, ExcelDateTime::from_ymd(2021, 3, 4).unwrap(), &date)
            .unwrap();
        ws.write_string(3, 4, "SYS1;PAYROLL").unwrap();
        ws.write_number(3, 5, 3.0).unwrap();
        // Row 5 blank.
        ws.write_string(5, 0, "U002").unwrap();
        ws.write_string(5, 1, "Bob").unwrap();
        ws.write_number(5, 2, 124.0).unwrap(); // a real number in a text-ish column
        ws.write_number(5, 3, 44259.0).unwrap(); // a bare serial in a date column
        ws.write_string(5, 4, "SYS1").unwrap();
        ws.write_number(5, 5, 4.0).unwrap();
        ws.write_string(6, 0, "U001").unwrap(); // duplicate key
        ws.write_string(6, 1, "Ann again").unwrap();
        ws.write_string(6, 3, "not a date").unwrap();
        // An assignments sheet with the user id merged down two rows.
        let ws = wb.add_worksheet();
        ws.set_name("Connect").unwrap();
        ws.write_string(0, 0, "USERID").unwrap();
        ws.write_string(0, 1, "GROUP").unwrap();
        ws.merge_range(1, 0, 2, 0, "U001", &XFormat::new()).unwrap();
        ws.write_string(1, 1, "SYS1").unwrap();
        ws.write_string(2, 1, "PAYROLL").unwrap();
        ws.write_string(3, 0, "U002").unwrap();
        ws.write_string(3, 1, "SYS1").unwrap();
        wb.save(path).unwrap();
    }

    #[test]
    fn excel_dates_numbers_as_text_blank_rows_sheet_selection_and_header_row() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("racf.xlsx");
        workbook(&p);
        let m = Mapping::accounts("USERID")
            .display_name("NAME")
            .employee_id("EMPNO")
            .entitlements("GROUPS")
            .column_type("HIRED", ColumnType::Date);
        let opts = skip()
            .mapping(m)
            .source(SourceOptions::default().sheet("Users").header_row(3));
        let (rep, recs) = accounts(&p, opts).unwrap();
        assert_eq!(rep.sheet.as_deref(), Some("Users"));
        assert_eq!(rep.blank_rows, 1);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].identity.employee_id.as_deref(), Some("00123"));
        assert_eq!(recs[1].identity.employee_id.as_deref(), Some("124"));
        assert_eq!(recs[0].identity.attributes["HIRED"], "2021-03-04");
        assert_eq!(
            recs[1].identity.attributes["HIRED"], "2021-03-04",
            "serial 44259"
        );
        assert_eq!(recs[0].identity.attributes["LEVEL"], serde_json::json!(3));
        assert_eq!(recs[0].row, 4, "Excel row numbers");
        let issues: Vec<String> = rep.issues.iter().map(ToString::to_string).collect();
        assert_eq!(
            issues,
            [
                format!(
                    "{} [sheet Users]: row 7, column \"HIRED\": \"not a date\" is not a valid date (type)",
                    p.display()
                ),
                format!(
                    "{} [sheet Users]: row 7, column \"USERID\": duplicate account \"U001\" (first at row 4) (duplicate)",
                    p.display()
                ),
            ]
        );
    }

    #[test]
    fn merged_cells_fill_down_in_assignment_sheets() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("racf.xlsx");
        workbook(&p);
        let (rep, snap) = Importer::new(
            ImportOptions::default().source(SourceOptions::default().sheet("Connect")),
        )
        .import_snapshot(&p)
        .unwrap();
        assert_eq!(rep.mapping.shape, Shape::Assignments);
        assert_eq!(
            snap.holders(&EntitlementRef::group("SYS1")),
            ["U001", "U002"]
        );
        assert_eq!(snap.holders(&EntitlementRef::group("PAYROLL")), ["U001"]);
    }

    #[test]
    fn malformed_or_missing_workbooks_are_rejected_with_the_file_named() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "broken.xlsx", b"PK\x03\x04 this is not a zip");
        let err = accounts(&p, ImportOptions::default()).unwrap_err();
        assert!(matches!(err, ImportError::Syntax(_)), "{err}");
        assert!(err.to_string().contains("broken.xlsx"), "{err}");
        let good = d.path().join("ok.xlsx");
        workbook(&good);
        let err = accounts(
            &good,
            ImportOptions::default().source(SourceOptions::default().sheet("Nope")),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no sheet named \"Nope\""), "{err}");
    }
}

#[test]
fn delta_between_two_imports() {
    let d = tempfile::tempdir().unwrap();
    let imp = Importer::new(ImportOptions::default());
    let a = write(
        d.path(),
        "v1.csv",
        b"user_id,email,roles,active\nU1,u1@x.test,A;B,Y\nU2,u2@x.test,A,Y\nU3,u3@x.test,,Y\n",
    );
    let b = write(
        d.path(),
        "v2.csv",
        b"user_id,email,roles,active\nU1,u1@x.test,A,Y\nU2,u2@new.test,A;C,N\nU4,u4@x.test,B,Y\n",
    );
    let (_, s1) = imp.import_snapshot(&a).unwrap();
    let (_, s2) = imp.import_snapshot(&b).unwrap();
    let delta = s2.delta_from(&s1);
    assert_eq!(delta.new_accounts, ["U4"]);
    assert_eq!(delta.removed_accounts, ["U3"]);
    assert_eq!(delta.changed_accounts.len(), 1);
    let fields: Vec<&str> = delta.changed_accounts[0]
        .changes
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(fields, ["email", "enabled"]);
    let r = EntitlementRef::role;
    assert_eq!(
        delta.added_assignments,
        [("U2".into(), r("C")), ("U4".into(), r("B"))]
    );
    assert_eq!(delta.removed_assignments, [("U1".into(), r("B"))]);
    assert_eq!(delta.new_entitlements, [r("C")]);
    assert!(s2.delta_from(&s2).is_empty());
    let snap_path = d.path().join("prev.json");
    s2.save(&snap_path).unwrap();
    assert_eq!(Snapshot::load(&snap_path).unwrap(), s2);
    let kinds: Vec<String> = delta
        .operations("acme", "racf", &s2)
        .iter()
        .map(|o| o.kind.to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "create_account",
            "disable_account",
            "update_account",
            "delete_account",
            "grant",
            "grant",
            "revoke"
        ]
    );
}

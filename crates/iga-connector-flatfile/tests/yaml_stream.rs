//! Streamed YAML: block sequences are framed item by item and give the same records as
//! a whole-file parse; anchors and flow style fall back to the whole parse; a broken
//! item names its line.
#![cfg(feature = "yaml")]

use std::path::{Path, PathBuf};

use iga_connector_flatfile::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn departments(path: &Path) -> Result<Vec<(String, Option<String>, u64)>, ImportError> {
    let mut out = Vec::new();
    Importer::new(ImportOptions::default()).import(path, &mut |r| {
        if let Record::Account(a) = r {
            out.push((a.identity.id.clone(), a.identity.department.clone(), a.row));
        }
    })?;
    Ok(out)
}

#[test]
fn streamed_and_whole_parses_agree() {
    let d = tempfile::tempdir().unwrap();
    let mut block = String::from("# export\n---\nusers:\n");
    let mut flow = String::from("users: [");
    for i in 0..500 {
        block.push_str(&format!(
            "  - user_id: U{i}\n    # note\n    department: \"D{}\"\n    note: |\n      line one\n      line two\n\n",
            i % 7
        ));
        flow.push_str(&format!("{{user_id: U{i}, department: D{}}},", i % 7));
    }
    flow.push_str("]\n");
    let a = departments(&write(d.path(), "block.yaml", &block)).unwrap();
    let b = departments(&write(d.path(), "flow.yaml", &flow)).unwrap();
    assert_eq!(a.len(), 500);
    assert_eq!(a, b, "same records, same row numbers (item index)");
    assert_eq!(a[499], ("U499".into(), Some("D2".into()), 500));
}

#[test]
fn anchors_fall_back_to_the_whole_parse() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.yaml",
        "- &base\n  user_id: U1\n  department: Fin\n- user_id: U2\n  department: Ops\n",
    );
    let got = departments(&p).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].1.as_deref(), Some("Ops"));
}

#[test]
fn a_broken_item_names_its_line() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "bad.yaml",
        "- user_id: U1\n  department: Fin\n- user_id: U2\n  department: [unclosed\n- user_id: U3\n",
    );
    let e = departments(&p).unwrap_err().to_string();
    assert!(e.contains("bad.yaml"), "{e}");
    assert!(e.contains("item starting at line 3"), "{e}");
}

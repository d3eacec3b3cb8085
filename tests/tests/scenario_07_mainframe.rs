//! Scenario 7 — mainframe roles governed. A RACF export (CSV) is imported: its groups
//! become entitlements in the ledger with their holders. An approved request for a
//! mainframe group goes through the orchestrator to the flat-file connector, which
//! writes the updated full CSV, a change file and a signed manifest for the legacy job.
//! The next export, re-imported, shows the change confirmed — and nothing else.

use std::sync::Arc;

use iga_adapter::ProvisioningAdapter;
use iga_connector_flatfile::{
    FlatFileAdapterBuilder, ImportOptions, Importer, Mapping, SourceOptions, verify_manifest,
};
use iga_directive::{EntitlementKind, EntitlementRef, GrantSource};
use iga_ledger::{AssignmentKey, ImportRule, LedgerStore};
use iga_scenarios::*;

const KEY: &str = "racf-transfer-key";

fn racf_mapping() -> Mapping {
    Mapping::accounts("USERID")
        .display_name("NAME")
        .enabled("ACTIVE")
        .entitlements("GROUPS")
        .separator(" ")
        .entitlement_kind(EntitlementKind::Group)
}

fn importer() -> Importer {
    Importer::new(
        ImportOptions::default()
            .mapping(racf_mapping())
            .source(SourceOptions::default().delimiter(';')),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mainframe_roles_governed() {
    let racf_dir = tempfile::tempdir().unwrap();
    let export = racf_dir.path().join("racf_users.csv");
    std::fs::write(
        &export,
        b"USERID;NAME;ACTIVE;GROUPS;OWNER\r\nIBMUSER;Systemverwalter M\xfcller;Y;SYS1 SECADM;SYS1\r\nJDOE;Jane Doe;Y;SYS1;SECADM\r\nASMITH;Al Smith;Y;SYS1 PAYROLL;SECADM\r\n",
    )
    .unwrap();

    // 1. Import the export: groups are discovered with their holders.
    let (report, before) = importer().import_snapshot(&export).unwrap();
    assert_eq!(report.rows_imported, 3);
    assert_eq!(
        report
            .entitlements
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["PAYROLL", "SECADM", "SYS1"]
    );

    // 2. The connector targets the same directory; the orchestrator drives it.
    let target = FlatFileAdapterBuilder::new(racf_dir.path())
        .with_name("racf")
        .with_file("racf_users.csv")
        .with_mapping(racf_mapping())
        .with_delimiter(';')
        .with_latin1()
        .with_line_ending(iga_connector_flatfile::LineEnding::CrLf)
        .with_bool_literals("Y", "N")
        .with_manifest_key(KEY)
        .build()
        .unwrap();
    let adapter: Arc<dyn ProvisioningAdapter> = Arc::new(target.clone());
    let w = world_with(vec![], |b| b.system("racf", adapter)).await;

    // 3. Existing access goes into the ledger as imported (intended and confirmed).
    let batch = GrantSource::import("racf-export-1");
    let rules: Vec<ImportRule> = before
        .assignments
        .iter()
        .map(|(who, e)| ImportRule {
            tenant: "acme".into(),
            identity: who.clone(),
            system: "racf".into(),
            entitlement: e.clone(),
            source: batch.clone(),
        })
        .collect();
    let n = rules.len() as u64;
    let imported = w
        .store
        .import_rules(
            Box::new(rules.into_iter()),
            iga_ledger::ImportOptions::new("racf-export-1", chrono::Utc::now())
                .default_tenant("acme"),
        )
        .await
        .unwrap();
    assert_eq!(imported.rows_changed, n);
    let payroll = EntitlementRef::group("PAYROLL");
    let holders = |v: Vec<iga_ledger::AssignmentState>| -> Vec<String> {
        v.into_iter()
            .filter(|s| s.target_visible())
            .map(|s| s.key.identity)
            .collect()
    };
    assert_eq!(
        holders(w.store.holders_of("acme", "racf", &payroll).await.unwrap()),
        ["ASMITH"]
    );
    assert_eq!(
        holders(
            w.store
                .holders_of("acme", "racf", &EntitlementRef::group("SYS1"))
                .await
                .unwrap()
        ),
        ["ASMITH", "IBMUSER", "JDOE"]
    );

    // 4. An approved request for PAYROLL for JDOE.
    let request = GrantSource::request("servicenow", "RITM0070001");
    let d = grant("racf", &person("JDOE"), "PAYROLL", request.clone());
    w.orch.submit(vec![d.clone()]).await.unwrap();
    let r = w.orch.run_until_idle().await.unwrap();
    assert_eq!(r.succeeded, 1, "{r}");

    // The legacy job's inputs: updated full file (Latin-1, CRLF, foreign columns kept),
    // a change file with exactly one line, a manifest that verifies.
    let full = std::fs::read(&export).unwrap();
    assert_eq!(
        full,
        b"USERID;NAME;ACTIVE;GROUPS;OWNER\r\nIBMUSER;Systemverwalter M\xfcller;Y;SYS1 SECADM;SYS1\r\nJDOE;Jane Doe;Y;SYS1 PAYROLL;SECADM\r\nASMITH;Al Smith;Y;SYS1 PAYROLL;SECADM\r\n"
    );
    let manifest = verify_manifest(&target.manifest_path(), Some(&KEY.into())).unwrap();
    assert_eq!((manifest.sequence, manifest.full.rows), (1, 3));
    let changes = std::fs::read_to_string(target.change_file_path(1)).unwrap();
    let lines: Vec<&str> = changes.lines().collect();
    assert_eq!(lines.len(), 2, "{changes}");
    assert!(
        lines[1].contains(";grant;JDOE;PAYROLL;GROUPS;SYS1;SYS1 PAYROLL"),
        "{changes}"
    );
    assert!(
        lines[1].contains(d.id.as_str()),
        "change line names the operation: {changes}"
    );
    let key = AssignmentKey::new("acme", "JDOE", "racf", payroll.clone());
    assert!(w.store.assignment_state(&key).await.target_visible());
    assert!(
        w.verify_chains().await >= 1,
        "a signed receipt for the grant"
    );

    // 5. The same request again (a replayed webhook) and a second reason for the same
    //    access change nothing on the target: no duplicate row, no new generation.
    w.orch.submit(vec![d.clone()]).await.unwrap();
    let second = grant(
        "racf",
        &person("JDOE"),
        "PAYROLL",
        GrantSource::request("servicenow", "RITM0070002"),
    );
    w.orch.submit(vec![second]).await.unwrap();
    w.orch.run_until_idle().await.unwrap();
    assert_eq!(std::fs::read(&export).unwrap(), full);
    assert_eq!(target.sequence(), 1);

    // 6. The legacy job applied the file; its next export is re-imported: the delta is
    //    exactly the requested grant, and the ledger agrees with the target.
    let next_export = racf_dir.path().join("racf_users_export2.csv");
    std::fs::copy(&export, &next_export).unwrap();
    let (_, after) = importer().import_snapshot(&next_export).unwrap();
    let delta = after.delta_from(&before);
    assert_eq!(
        delta.added_assignments,
        [("JDOE".to_string(), payroll.clone())]
    );
    assert!(delta.removed_assignments.is_empty() && delta.new_accounts.is_empty());
    assert!(delta.changed_accounts.is_empty() && delta.removed_accounts.is_empty());
    assert_eq!(after.holders(&payroll), ["ASMITH", "JDOE"]);
    let state = w.store.assignment_state(&key).await;
    assert!(state.target_visible() && state.in_sync(), "{state:?}");
    assert_eq!(
        holders(w.store.holders_of("acme", "racf", &payroll).await.unwrap()),
        ["ASMITH", "JDOE"]
    );
}

trait StateExt {
    async fn assignment_state(&self, key: &AssignmentKey) -> iga_ledger::AssignmentState;
}

impl StateExt for iga_ledger::SqliteStore {
    async fn assignment_state(&self, key: &AssignmentKey) -> iga_ledger::AssignmentState {
        let sources = self.sources_of(key).await.unwrap();
        iga_ledger::AssignmentState {
            key: key.clone(),
            intended_sources: sources.iter().filter(|s| s.intended).count() as u32,
            confirmed_sources: sources.iter().filter(|s| s.confirmed).count() as u32,
        }
    }
}

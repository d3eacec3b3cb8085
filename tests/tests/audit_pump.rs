//! The orchestrator's audit pump delivers the store's outbox to a SIEM file sink, and
//! the outbox is empty afterwards (nothing lost, nothing delivered twice).

use std::sync::Arc;

use iga_audit::{FileSink, Format, FormatConfig, Formatter, PumpConfig, SinkBinding};
use iga_directive::{EntitlementRef, GrantSource};
use iga_scenarios::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_reaches_the_siem_file_once() {
    let w = world(vec![SystemSpec::new("ldap")]).await;
    let t = w.target("ldap");
    t.seed_entitlement(&EntitlementRef::group("G"));
    let ann = person("ann");
    t.seed_account(&ann);
    let d = grant(
        "ldap",
        &ann,
        "G",
        GrantSource::request("servicenow", "RITM0001"),
    );
    w.orch.submit(vec![d.clone()]).await.unwrap();
    w.orch.run_until_idle().await.unwrap();

    let path = w.dir.path().join("siem.jsonl");
    let sink = SinkBinding::new(
        Formatter::new(Format::JsonLines, FormatConfig::default()),
        Arc::new(FileSink::new(&path)),
    );
    let mut pump = w.orch.audit_pump(vec![sink], PumpConfig::default());
    let mut delivered = 0;
    loop {
        let n = pump.run_once().await.unwrap();
        if n == 0 {
            break;
        }
        delivered += n;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), delivered);
    assert!(
        delivered >= 3,
        "planned, executed (receipt), ledger events: {delivered}"
    );
    for kind in [
        "directive_planned",
        "operation_executed",
        "receipt_written",
        "ledger_changed",
    ] {
        assert!(text.contains(kind), "{kind} missing from\n{text}");
    }
    assert!(text.contains(d.id.as_str()) && text.contains("servicenow:RITM0001"));
    assert_eq!(
        pump.run_once().await.unwrap(),
        0,
        "outbox drained, nothing re-sent"
    );
}

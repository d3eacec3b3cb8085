//! Scenario 10 — audit evidence (receipts + JWKS + SIEM parts).
//!
//! An auditor gets (1) the receipt chains as JSON lines and the JWKS, and verifies them
//! offline with the iga-receipt verifier and with an independent JOSE library (Python
//! `jwcrypto`, from the project venv); a tampered export is caught at the right
//! sequence number; and (2) the SIEM stream: the store's audit outbox delivered by the
//! iga-audit pump as CEF, LEEF 2.0, RFC 5424 (parsed back by `syslog_loose`, also over
//! TCP with octet counting) and JSON lines, correlated with the receipts, without secrets.
//!
//! Needs `.venv` with `jwcrypto` (scripts/install-test-deps.sh) or `IGA_PYTHON`; fails
//! loudly otherwise.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use iga_audit::{
    AuditEvent, DeliveryPump, EventKind, FileSink, Format, FormatConfig, Formatter, PumpConfig,
    SinkBinding, TcpSink,
};
use iga_directive::GrantSource;
use iga_receipt::{BreakReason, ChainExport, JwsError, KeyRing, export_jsonl, import_jsonl};
use iga_scenarios::*;
use tokio::io::AsyncReadExt;

fn python() -> PathBuf {
    let p = std::env::var_os("IGA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import jwcrypto"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "independent JOSE verifier unavailable: {} cannot `import jwcrypto`. \
         Fix: run scripts/install-test-deps.sh, or set IGA_PYTHON to a python with jwcrypto",
        p.display()
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditor_verifies_receipts_and_reads_the_siem_stream() {
    let w = world(vec![SystemSpec::new("entra"), SystemSpec::new("ldap")]).await;
    let people: Vec<_> = (0..6).map(|i| person(&format!("user{i}"))).collect();
    for sys in ["entra", "ldap"] {
        let t = w.target(sys);
        for g in ["Finance-Readers", "Eng-Core"] {
            t.seed_entitlement(&iga_directive::EntitlementRef::group(g));
        }
        for p in &people {
            t.seed_account(p);
        }
    }
    let mut ds = Vec::new();
    for (i, p) in people.iter().enumerate() {
        let sys = if i % 2 == 0 { "entra" } else { "ldap" };
        ds.push(grant(
            sys,
            p,
            "Finance-Readers",
            GrantSource::request("servicenow", &format!("RITM00{i}")),
        ));
        ds.push(grant(
            sys,
            p,
            "Eng-Core",
            GrantSource::birthright("dept-eng"),
        ));
    }
    w.orch.submit(ds.clone()).await.unwrap();
    let report = w.orch.run_until_idle().await.unwrap();
    assert_eq!(report.succeeded, ds.len(), "{report}");

    // ---------------------------------------------------------------- receipts + JWKS
    let dir = tempfile::tempdir().unwrap();
    let mut chains = Vec::new();
    for (chain_id, r) in w.orch.verify_receipts().await.unwrap() {
        assert!(r.is_ok(), "{r}");
        let records = w.orch.export_chain(&chain_id).await.unwrap();
        chains.push(ChainExport::new(chain_id, None, records));
    }
    assert_eq!(chains.len(), 2, "one chain per (node, system)");
    let export = dir.path().join("receipts.jsonl");
    export_jsonl(std::fs::File::create(&export).unwrap(), &chains).unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, w.orch.jwks_json()).unwrap();

    // The auditor: nothing but the two files.
    let keys = KeyRing::from_jwks_json(&std::fs::read_to_string(&jwks_path).unwrap()).unwrap();
    let imported = import_jsonl(
        std::io::BufReader::new(std::fs::File::open(&export).unwrap()),
        "receipts.jsonl",
    )
    .unwrap();
    let mut receipt_ids = BTreeSet::new();
    let mut total = 0;
    for c in &imported {
        let r = c.verify(&keys);
        assert!(r.is_ok(), "{r}");
        total += r.verified as usize;
        for rec in &c.receipts {
            let v = iga_receipt::verify_record(rec, &keys).unwrap();
            assert!(v.receipt.outcome.is_success());
            assert!(ds.iter().any(|d| d.id == v.receipt.directive_id));
            receipt_ids.insert(v.receipt.receipt_id.clone());
        }
    }
    assert_eq!(total, ds.len(), "one receipt per executed operation");

    // Independent JOSE library, JWKS only.
    let tokens = dir.path().join("tokens.txt");
    let all: Vec<String> = imported
        .iter()
        .flat_map(|c| c.receipts.iter().map(|r| r.jws.clone()))
        .collect();
    std::fs::write(&tokens, all.join("\n")).unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/iga-receipt/tests/jose_verify.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&jwks_path)
        .arg(&tokens)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), all.len());
    for (res, tok) in results.iter().zip(&all) {
        assert_eq!(res["ok"], true, "jwcrypto rejected a receipt: {res}");
        let payload = iga_receipt::decode_payload_unverified(tok).unwrap();
        assert_eq!(res["payload"].as_str().unwrap().as_bytes(), &payload[..]);
    }

    // A tampered export is caught at the right place.
    let mut tampered = imported.clone();
    let victim = &mut tampered[0].receipts[1];
    let dot = victim.jws.find('.').unwrap() + 25;
    let mut b = victim.jws.clone().into_bytes();
    b[dot] = if b[dot] == b'A' { b'B' } else { b'A' };
    victim.jws = String::from_utf8(b).unwrap();
    let brk = tampered[0]
        .verify(&keys)
        .first_break
        .expect("tampering detected");
    assert_eq!(brk.seq, 2);
    assert!(
        matches!(brk.reason, BreakReason::Jws(JwsError::BadSignature { .. })),
        "{brk}"
    );
    let mut dropped = imported.clone();
    dropped[1].receipts.remove(0);
    let brk = dropped[1]
        .verify(&keys)
        .first_break
        .expect("removal detected");
    assert_eq!(
        (brk.seq, brk.reason),
        (1, BreakReason::Missing { found: 2 })
    );

    // ---------------------------------------------------------------- SIEM stream
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tcp_rx = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        buf
    });
    let cfg = FormatConfig::default().hostname("node-1");
    let file = |n: &str| dir.path().join(n);
    let tcp = Arc::new(TcpSink::new(addr.to_string()));
    let sinks = vec![
        SinkBinding::new(
            Formatter::new(Format::Cef, cfg.clone()),
            Arc::new(FileSink::new(file("audit.cef"))),
        ),
        SinkBinding::new(
            Formatter::new(Format::Leef, cfg.clone()),
            Arc::new(FileSink::new(file("audit.leef"))),
        ),
        SinkBinding::new(
            Formatter::new(Format::Syslog, cfg.clone()),
            Arc::new(FileSink::new(file("audit.syslog"))),
        ),
        SinkBinding::new(
            Formatter::new(Format::JsonLines, cfg.clone()),
            Arc::new(FileSink::new(file("audit.jsonl"))),
        ),
        SinkBinding::new(Formatter::new(Format::Syslog, cfg.clone()), tcp.clone()),
    ];
    let outbox = Arc::new(iga_orchestrator::StoreOutbox::new(
        w.orch.store().clone(),
        w.clock.shared(),
        "scenario-10",
        Duration::from_secs(60),
    ));
    let mut pump = DeliveryPump::new(
        outbox,
        sinks,
        PumpConfig {
            batch_size: 50,
            ..Default::default()
        },
    );
    let mut delivered = 0;
    loop {
        let n = pump.run_once().await.unwrap();
        if n == 0 {
            break;
        }
        delivered += n;
    }
    assert!(
        delivered >= ds.len() * 2,
        "received + executed events at least: {delivered}"
    );
    drop(pump);
    drop(tcp);

    let read = |n: &str| std::fs::read_to_string(file(n)).unwrap();
    let events: Vec<AuditEvent> = read("audit.jsonl")
        .lines()
        .map(|l| AuditEvent::from_json(l).unwrap())
        .collect();
    assert_eq!(events.len(), delivered);
    let kinds: BTreeSet<EventKind> = events.iter().map(|e| e.kind).collect();
    for k in [
        EventKind::OperationExecuted,
        EventKind::ReceiptWritten,
        EventKind::LedgerChanged,
    ] {
        assert!(kinds.contains(&k), "no {k} event in {kinds:?}");
    }
    // every receipt the auditor holds is announced in the stream
    let written: BTreeSet<String> = events
        .iter()
        .filter(|e| e.kind == EventKind::ReceiptWritten)
        .filter_map(|e| e.correlation.receipt_id.clone())
        .collect();
    assert_eq!(written, receipt_ids, "receipt_written events vs receipts");
    // every directive is visible in the stream, and events carry correlation ids
    for d in &ds {
        assert!(
            events
                .iter()
                .any(|e| e.correlation.directive_id.as_deref() == Some(d.id.as_str())),
            "no event for directive {}",
            d.id
        );
    }
    let event_receipts: BTreeSet<String> = events
        .iter()
        .filter_map(|e| e.correlation.receipt_id.clone())
        .collect();
    assert!(
        event_receipts.is_subset(&receipt_ids),
        "events reference receipts the auditor cannot find: {:?}",
        event_receipts.difference(&receipt_ids).collect::<Vec<_>>()
    );

    let cef = read("audit.cef");
    let leef = read("audit.leef");
    let syslog = read("audit.syslog");
    assert_eq!(cef.lines().count(), delivered);
    assert_eq!(leef.lines().count(), delivered);
    assert_eq!(syslog.lines().count(), delivered);
    assert!(
        cef.lines()
            .all(|l| l.starts_with("CEF:0|iga-connectors|iga|"))
    );
    assert!(
        leef.lines()
            .all(|l| l.starts_with("LEEF:2.0|iga-connectors|iga|"))
    );
    for (line, e) in syslog.lines().zip(&events) {
        let m = syslog_loose::parse_message_with_year_exact(
            line,
            |_| 2026,
            syslog_loose::Variant::RFC5424,
        )
        .unwrap_or_else(|err| panic!("{err}: {line}"));
        assert_eq!(m.hostname, Some("node-1"));
        assert_eq!(m.msgid, Some(e.kind.class_id()));
        let sd = &m.structured_data[0];
        let id = sd.params().find(|(k, _)| **k == "eventId").unwrap().1;
        assert_eq!(id, e.event_id);
    }
    // the same stream over TCP with RFC 6587 octet counting
    let raw = tcp_rx.await.unwrap();
    let mut rest = &raw[..];
    let mut n_tcp = 0;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
        let msg = std::str::from_utf8(&rest[sp + 1..sp + 1 + len]).unwrap();
        syslog_loose::parse_message_with_year_exact(msg, |_| 2026, syslog_loose::Variant::RFC5424)
            .unwrap();
        rest = &rest[sp + 1 + len..];
        n_tcp += 1;
    }
    assert_eq!(n_tcp, delivered);
    // no key material anywhere in the evidence
    for text in [
        &cef,
        &leef,
        &syslog,
        &read("audit.jsonl"),
        &std::fs::read_to_string(&export).unwrap(),
    ] {
        assert!(!text.contains("PRIVATE KEY"));
        assert!(!text.contains("\"d\":"));
    }
}

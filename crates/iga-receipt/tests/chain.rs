//! Chain building and tamper detection: each kind of tampering is reported at the right
//! sequence number with the right reason.

mod common;

use common::*;
use iga_receipt::*;

const N: usize = 40;

fn setup() -> (ReceiptSigner, KeyRing, Vec<ReceiptRecord>, ChainHeadRecord) {
    let s = signer(Algorithm::EdDSA);
    let keys = ring_of(&[&s]);
    let (records, head) = build_chain(&s, "node-a", "ldap-corp", N);
    (s, keys, records, head)
}

fn first_break(records: &[ReceiptRecord], head: &ChainHeadRecord, keys: &KeyRing) -> ChainBreak {
    let report = verify_chain(records, Some(head), keys);
    assert!(!report.is_ok(), "tampering not detected");
    report.first_break.unwrap()
}

#[test]
fn intact_chain_verifies_with_head_and_links() {
    let (_, keys, records, head) = setup();
    let report = verify_chain(&records, Some(&head), &keys);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.verified, N as u64);
    assert_eq!(report.chain_id, "node-a/ldap-corp");
    assert_eq!(head.seq, N as u64);
    assert_eq!(report.last_sha256, head.last_sha256);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        if i == 0 {
            assert_eq!(r.prev_sha256, GENESIS_SHA256);
        } else {
            assert_eq!(r.prev_sha256, records[i - 1].payload_sha256);
        }
    }
    // single-threaded verification gives the same report
    assert_eq!(
        ChainVerifier::new(&keys)
            .threads(1)
            .verify(&records, Some(&head)),
        report
    );
}

#[test]
fn receipt_content_is_complete() {
    let (_, keys, records, _) = setup();
    let v = verify_receipt(&records[3].jws, &keys).unwrap();
    let r = &v.receipt;
    assert_eq!(r.seq, 4);
    assert_eq!(r.directive_id.0, "d-00003");
    assert_eq!(r.operation_id.0, "d-00003.0");
    assert_eq!(r.operation, iga_directive::OperationKind::Grant);
    assert_eq!(r.tenant, "acme");
    assert_eq!(r.system, "ldap-corp");
    assert_eq!(r.identity, "user00003");
    assert_eq!(r.entitlement.as_ref().unwrap().id, "Group-3");
    assert_eq!(r.source.as_deref(), Some("request:servicenow:RITM0000003"));
    assert_eq!(r.approval.as_ref().unwrap().ticket_id, "RITM0000003");
    assert_eq!(
        r.approval.as_ref().unwrap().approver.as_deref(),
        Some("carol")
    );
    assert_eq!(
        r.outcome,
        Outcome::escalated("unavailable", "LDAP server unreachable after 5 attempts")
    );
    assert_eq!(r.attempts, 1);
    assert_eq!(r.request_sha256.len(), 64);
    assert_eq!(r.receipt_id, receipt_id("node-a/ldap-corp", 4));
    assert_eq!(v.header.alg, Algorithm::EdDSA);
    assert_eq!(v.header.typ.as_deref(), Some(RECEIPT_TYP));
    // payload is canonical JSON: sorted keys, no whitespace
    let payload = String::from_utf8(decode_payload_unverified(&records[3].jws).unwrap()).unwrap();
    assert!(
        payload.starts_with(r#"{"approval":{"approver":"carol""#),
        "{payload}"
    );
    assert!(!payload.contains(": ") && !payload.contains(", "));
    // outcomes serialise with a status tag
    assert!(payload.contains(r#""outcome":{"error_kind":"unavailable","message":"LDAP server unreachable after 5 attempts","status":"escalated"}"#), "{payload}");
}

#[test]
fn edited_payload_byte_is_a_bad_signature_at_that_seq() {
    let (_, keys, mut records, head) = setup();
    let jws = &records[16].jws;
    let dot = jws.find('.').unwrap();
    let mut bytes = jws.clone().into_bytes();
    let pos = dot + 40;
    bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
    records[16].jws = String::from_utf8(bytes).unwrap();
    let b = first_break(&records, &head, &keys);
    assert_eq!(b.seq, 17);
    assert_eq!(b.position, 16);
    assert!(
        matches!(b.reason, BreakReason::Jws(JwsError::BadSignature { .. })),
        "{b}"
    );
    assert!(
        b.to_string().contains("node-a/ldap-corp") && b.to_string().contains("seq 17"),
        "{b}"
    );
}

#[test]
fn edited_record_field_is_a_record_mismatch() {
    let (_, keys, mut records, head) = setup();
    records[9].directive_id = "d-99999".into();
    let b = first_break(&records, &head, &keys);
    assert_eq!(b.seq, 10);
    assert_eq!(
        b.reason,
        BreakReason::RecordMismatch {
            field: "directive_id"
        }
    );
}

#[test]
fn dropped_receipt_is_missing_at_its_seq() {
    let (_, keys, mut records, head) = setup();
    records.remove(24);
    let b = first_break(&records, &head, &keys);
    assert_eq!(b.seq, 25);
    assert_eq!(b.reason, BreakReason::Missing { found: 26 });
}

#[test]
fn swapped_receipts_are_out_of_order_at_the_first_of_them() {
    let (_, keys, mut records, head) = setup();
    records.swap(7, 8);
    let b = first_break(&records, &head, &keys);
    assert_eq!(b.seq, 8);
    assert_eq!(b.reason, BreakReason::OutOfOrder { found: 9 });
}

#[test]
fn duplicated_receipt_is_reported() {
    let (_, keys, mut records, head) = setup();
    let dup = records[4].clone();
    records.insert(5, dup);
    let b = first_break(&records, &head, &keys);
    assert_eq!(b.seq, 6);
    assert_eq!(b.reason, BreakReason::Duplicate);
}

#[test]
fn truncated_tail_is_detected_against_the_head() {
    let (_, keys, mut records, head) = setup();
    records.truncate(N - 3);
    // without the head the shortened chain looks fine: that is what the head is for
    assert!(verify_chain(&records, None, &keys).is_ok());
    let b = first_break(&records, &head, &keys);
    assert_eq!(b.seq, (N - 3 + 1) as u64);
    assert_eq!(b.reason, BreakReason::Truncated { head_seq: N as u64 });
}

#[test]
fn resigned_with_an_unknown_key_is_an_unknown_kid() {
    let (_, keys, mut records, head) = setup();
    let intruder = signer(Algorithm::EdDSA);
    // re-sign receipt 12's exact payload with a key the auditor does not know
    let payload = decode_payload_unverified(&records[11].jws).unwrap();
    records[11].jws = sign_compact(intruder.key(), Some(RECEIPT_TYP), &payload).unwrap();
    let b = first_break(&records, &head, &keys);
    assert_eq!(b.seq, 12);
    assert_eq!(
        b.reason,
        BreakReason::Jws(JwsError::UnknownKid(intruder.kid().to_string()))
    );
}

#[test]
fn resigned_forgery_with_a_known_key_breaks_the_next_link() {
    // An insider with the signing key edits receipt 20 and re-signs it (valid signature),
    // but receipt 21 still commits to the original payload hash.
    let (s, keys, mut records, head) = setup();
    let payload = decode_payload_unverified(&records[19].jws).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    v["identity"] = "mallory".into();
    let forged = iga_receipt::canonical::canonicalize(&v);
    records[19].jws = sign_compact(s.key(), Some(RECEIPT_TYP), &forged).unwrap();
    records[19].payload_sha256 = hex_sha(&forged);
    let b = first_break(&records, &head, &keys);
    assert_eq!(b.seq, 21);
    assert!(
        matches!(b.reason, BreakReason::PrevHashMismatch { .. }),
        "{b}"
    );
}

#[test]
fn non_canonical_payload_is_rejected() {
    let (s, keys, records, _) = setup();
    let payload = decode_payload_unverified(&records[0].jws).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let pretty = serde_json::to_vec_pretty(&v).unwrap();
    let token = sign_compact(s.key(), Some(RECEIPT_TYP), &pretty).unwrap();
    let e = verify_receipt(&token, &keys).unwrap_err();
    assert!(
        matches!(e, BreakReason::BadPayload(ref m) if m.contains("canonical")),
        "{e}"
    );
}

#[test]
fn head_problems_are_reported() {
    let (s, keys, records, head) = setup();
    // stale head (rolled back) -> receipts beyond head
    let (_, _) = (&s, &keys);
    let mut short = ChainState::genesis(ChainId::new("node-a", "ldap-corp").unwrap());
    for r in &records[..30] {
        let v = verify_record(r, &keys).unwrap();
        short = ChainState::resume(short.chain_id().clone(), v.receipt.seq, v.payload_sha256);
    }
    let stale = short.head(&s, common::t0()).unwrap();
    let b = verify_chain(&records, Some(&stale), &keys)
        .first_break
        .unwrap();
    assert_eq!(b.seq, 31);
    assert_eq!(b.reason, BreakReason::BeyondHead { head_seq: 30 });
    // edited head record
    let mut edited = head.clone();
    edited.seq += 5;
    let b = verify_chain(&records, Some(&edited), &keys)
        .first_break
        .unwrap();
    assert!(matches!(b.reason, BreakReason::HeadMismatch(_)), "{b}");
    // head signed by an unknown key
    let other = signer(Algorithm::EdDSA);
    let mut st = ChainState::resume(
        ChainId::new("node-a", "ldap-corp").unwrap(),
        head.seq,
        head.last_sha256.clone(),
    );
    let foreign = st.head(&other, common::t0()).unwrap();
    let b = verify_chain(&records, Some(&foreign), &keys)
        .first_break
        .unwrap();
    assert!(
        matches!(b.reason, BreakReason::Jws(JwsError::UnknownKid(_))),
        "{b}"
    );
    // a receipt of another chain inside this one
    let (other_chain, _) = build_chain(&s, "node-b", "ldap-corp", 3);
    let mut mixed = records.clone();
    mixed[2] = other_chain[2].clone();
    let b = verify_chain(&mixed, Some(&head), &keys)
        .first_break
        .unwrap();
    assert_eq!(b.seq, 3);
    assert_eq!(
        b.reason,
        BreakReason::WrongChain {
            found: "node-b/ldap-corp".into()
        }
    );
    let _ = st.len();
    st = ChainState::genesis(ChainId::new("n", "s").unwrap());
    assert!(st.is_empty());
}

#[test]
fn key_rotation_keeps_old_receipts_verifiable() {
    let old = signer(Algorithm::EdDSA);
    let new = signer(Algorithm::ES256);
    let mut chain = ChainState::genesis(ChainId::new("node-a", "entra").unwrap());
    let mut records = Vec::new();
    for i in 0..6 {
        let s = if i < 3 { &old } else { &new };
        records.push(append(s, &mut chain, i, "entra"));
    }
    let head = chain.head(&new, common::t0()).unwrap();
    let both = ring_of(&[&old, &new]);
    let report = verify_chain(&records, Some(&head), &both);
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        verify_record(&records[0], &both).unwrap().header.alg,
        Algorithm::EdDSA
    );
    assert_eq!(
        verify_record(&records[5], &both).unwrap().header.alg,
        Algorithm::ES256
    );
    // the JWKS round-trips both keys
    let from_jwks = KeyRing::from_jwks_json(&both.to_jwks_json()).unwrap();
    assert_eq!(from_jwks.len(), 2);
    assert!(verify_chain(&records, Some(&head), &from_jwks).is_ok());
    // dropping the old key from the ring: the first receipt has an unknown kid
    let only_new = ring_of(&[&new]);
    let b = verify_chain(&records, Some(&head), &only_new)
        .first_break
        .unwrap();
    assert_eq!(b.seq, 1);
    assert_eq!(
        b.reason,
        BreakReason::Jws(JwsError::UnknownKid(old.kid().to_string()))
    );
}

#[test]
fn seal_then_advance_and_misuse_errors() {
    let s = signer(Algorithm::EdDSA);
    let mut chain = ChainState::genesis(ChainId::new("node-a", "entra").unwrap());
    let d = directive(1, "entra");
    let op = d
        .operations(iga_directive::ExpandOptions::default())
        .remove(0);
    let draft = ReceiptDraft::for_directive(&d, &op, Outcome::Applied, t0()).unwrap();
    let r1 = chain.seal(&s, draft.clone(), t0()).unwrap();
    // sealing again without advancing gives the same position (crash-replay safe id)
    let r1b = chain.seal(&s, draft.clone(), t0()).unwrap();
    assert_eq!(r1.receipt_id(), r1b.receipt_id());
    assert_eq!(r1.jws(), r1b.jws(), "Ed25519 is deterministic");
    chain.advance(&r1).unwrap();
    let e = chain.advance(&r1).unwrap_err().to_string();
    assert!(
        e.contains("node-a/entra") && e.contains("not the next receipt"),
        "{e}"
    );
    // wrong system for the chain
    let other = directive(2, "ldap");
    let op2 = other
        .operations(iga_directive::ExpandOptions::default())
        .remove(0);
    let e = chain
        .append(
            &s,
            ReceiptDraft::for_directive(&other, &op2, Outcome::Applied, t0()).unwrap(),
            t0(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("targets system `ldap`"), "{e}");
    assert!(ChainId::new("a/b", "c").is_err());
    assert_eq!(ChainId::parse("n1/sys/x").unwrap().system(), "sys/x");
    // the record carries exactly what the store needs
    let rec = r1.to_record();
    assert_eq!(rec.receipt_id, r1.receipt_id());
    assert_eq!(rec.chain_id, "node-a/entra");
    assert_eq!(rec.seq, 1);
    assert_eq!(rec.directive_id, d.id.0);
    assert_eq!(rec.operation_id, op.id.0);
    assert_eq!(rec.jws, r1.jws());
    assert_eq!(rec.payload_sha256, r1.payload_sha256());
    assert_eq!(rec.prev_sha256, GENESIS_SHA256);
    assert_eq!(rec.created_at, t0());
}

#[test]
fn outcomes_cover_every_terminal_case() {
    let cases = [
        (Outcome::Applied, "applied", true),
        (Outcome::AlreadyInState, "already_in_state", true),
        (
            Outcome::failed("invalid_input", "bad mail"),
            "failed",
            false,
        ),
        (
            Outcome::escalated("timeout", "no answer"),
            "escalated",
            false,
        ),
        (
            Outcome::rejected("not justified", Some("dave".into())),
            "rejected",
            false,
        ),
    ];
    for (o, status, ok) in cases {
        assert_eq!(o.status(), status);
        assert_eq!(o.is_success(), ok);
        let j = serde_json::to_value(&o).unwrap();
        assert_eq!(j["status"], status);
        assert_eq!(serde_json::from_value::<Outcome>(j).unwrap(), o);
    }
}

#[test]
fn jsonl_export_import_round_trip_and_errors_name_the_line() {
    let s = signer(Algorithm::EdDSA);
    let keys = ring_of(&[&s]);
    let (a, ha) = build_chain(&s, "node-a", "entra", 5);
    let (b, hb) = build_chain(&s, "node-a", "ldap", 3);
    let mut buf = Vec::new();
    export_jsonl(
        &mut buf,
        &[
            ChainExport::new("node-a/entra", Some(ha.clone()), a.clone()),
            ChainExport::new("node-a/ldap", Some(hb), b),
        ],
    )
    .unwrap();
    let text = String::from_utf8(buf.clone()).unwrap();
    assert_eq!(text.lines().count(), 5 + 1 + 3 + 1);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with(r#"{"type":"receipt""#)
    );
    let chains = import_jsonl(&buf[..], "export.jsonl").unwrap();
    assert_eq!(chains.len(), 2);
    assert_eq!(chains[0].receipts, a);
    assert_eq!(chains[0].head.as_ref(), Some(&ha));
    for c in &chains {
        assert!(c.verify(&keys).is_ok());
    }
    let mut bad = text.lines().map(String::from).collect::<Vec<_>>();
    bad[2] = "{\"type\":\"receipt\",\"oops\":1}".into();
    let e = import_jsonl(bad.join("\n").as_bytes(), "export.jsonl")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("export.jsonl line 3:"), "{e}");
}

fn hex_sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn unsigned_append_then_parallel_signing_gives_the_same_chain() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let s = signer(alg);
        let keys = ring_of(&[&s]);
        let n = 300; // above the parallel threshold
        let (sequential, head) = build_chain(&s, "node-a", "ldap-corp", n);
        let mut chain = ChainState::genesis(ChainId::new("node-a", "ldap-corp").unwrap());
        let mut unsigned = Vec::new();
        for i in 0..n {
            let d = directive(i, "ldap-corp");
            let op = d
                .operations(iga_directive::ExpandOptions::default())
                .remove(0);
            let at = t0() + chrono::Duration::seconds(i as i64);
            let outcome = match i % 4 {
                0 | 1 => Outcome::Applied,
                2 => Outcome::AlreadyInState,
                _ => Outcome::escalated("unavailable", "LDAP server unreachable after 5 attempts"),
            };
            let draft = ReceiptDraft::for_directive(&d, &op, outcome, at)
                .unwrap()
                .attempts(1 + (i % 3) as u32);
            unsigned.push(chain.append_unsigned(draft, at).unwrap());
        }
        let records: Vec<ReceiptRecord> = sign_all(&s, unsigned)
            .unwrap()
            .into_iter()
            .map(SignedReceipt::into_record)
            .collect();
        // Same order, same links and payload hashes as signing one by one.
        for (a, b) in records.iter().zip(&sequential) {
            assert_eq!(
                (&a.receipt_id, a.seq, &a.payload_sha256, &a.prev_sha256),
                (&b.receipt_id, b.seq, &b.payload_sha256, &b.prev_sha256)
            );
        }
        if alg == Algorithm::EdDSA {
            assert_eq!(records, sequential, "Ed25519 signatures are deterministic");
        }
        let report = verify_chain(&records, Some(&head), &keys);
        assert!(report.is_ok(), "{alg:?}: {report:?}");
        assert_eq!(chain.len(), n as u64);
    }
}

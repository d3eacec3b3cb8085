#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, Duration, Utc};
use iga_directive::*;
use iga_receipt::*;

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn directive(i: usize, system: &str) -> AccessDirective {
    AccessDirective::builder(
        "acme",
        system,
        Identity::person(format!("user{i:05}")),
        Action::Grant,
    )
    .id(format!("d-{i:05}"))
    .entitlement(EntitlementRef::group(format!("Group-{}", i % 7)))
    .source(GrantSource::request("servicenow", &format!("RITM{i:07}")))
    .approval(
        ApprovalRef::new("servicenow", format!("RITM{i:07}"))
            .approver("carol")
            .decided_at(t0()),
    )
    .requested_at(t0())
    .build()
    .unwrap()
}

/// A chain of `n` receipts on `node/system`, with its head.
pub fn build_chain(
    signer: &ReceiptSigner,
    node: &str,
    system: &str,
    n: usize,
) -> (Vec<ReceiptRecord>, ChainHeadRecord) {
    let mut chain = ChainState::genesis(ChainId::new(node, system).unwrap());
    let mut out = Vec::new();
    for i in 0..n {
        out.push(append(signer, &mut chain, i, system));
    }
    let head = chain
        .head(signer, t0() + Duration::seconds(n as i64))
        .unwrap();
    (out, head)
}

pub fn append(
    signer: &ReceiptSigner,
    chain: &mut ChainState,
    i: usize,
    system: &str,
) -> ReceiptRecord {
    let d = directive(i, system);
    let op = d.operations(ExpandOptions::default()).remove(0);
    let at = t0() + Duration::seconds(i as i64);
    let outcome = match i % 4 {
        0 | 1 => Outcome::Applied,
        2 => Outcome::AlreadyInState,
        _ => Outcome::escalated("unavailable", "LDAP server unreachable after 5 attempts"),
    };
    let draft = ReceiptDraft::for_directive(&d, &op, outcome, at)
        .unwrap()
        .attempts(1 + (i % 3) as u32);
    chain.append(signer, draft, at).unwrap().to_record()
}

pub fn signer(alg: Algorithm) -> ReceiptSigner {
    ReceiptSigner::new(SigningKey::generate(alg).unwrap()).unwrap()
}

pub fn ring_of(signers: &[&ReceiptSigner]) -> KeyRing {
    let mut r = KeyRing::new();
    for s in signers {
        r.insert(s.key().verifying_key().clone());
    }
    r
}

//! Property tests: the fast receipt serializer equals the generic canonicaliser for
//! arbitrary strings, and verification accepts exactly what was signed.

use iga_directive::{ApprovalRef, EntitlementRef, Identity, Operation, OperationKind};
use iga_receipt::*;
use proptest::prelude::*;

fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-03-01T09:00:00.5Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fast_canonical_bytes_equal_generic_and_verify(
        identity in "\\PC{0,24}",
        group in "[\\x00-\\x7f]{1,16}|\\PC{1,8}",
        approver in proptest::option::of("\\PC{0,12}"),
        message in "\\PC{0,40}",
        kind in 0usize..3,
    ) {
        let signer = ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap();
        let keys = KeyRing::new().with(signer.key().verifying_key().clone());
        let op = Operation::new("acme", "entra", OperationKind::Grant, Identity::person(identity.clone()))
            .with_entitlement(EntitlementRef::group(group));
        let outcome = match kind {
            0 => Outcome::Applied,
            1 => Outcome::escalated("unavailable", message),
            _ => Outcome::rejected(message, approver.clone()),
        };
        let mut approval = ApprovalRef::new("servicenow", "RITM1");
        if let Some(a) = approver {
            approval = approval.approver(a);
        }
        let draft = ReceiptDraft::for_operation(&op, outcome, t0()).unwrap().approval(approval);
        let mut chain = ChainState::genesis(ChainId::new("n", "entra").unwrap());
        let signed = chain.append(&signer, draft, t0()).unwrap();
        let fast = receipt_canonical_bytes(signed.receipt()).unwrap();
        let generic = canonical::to_canonical_json(signed.receipt()).unwrap();
        prop_assert_eq!(&fast, &generic);
        let v = verify_record(&signed.to_record(), &keys).unwrap();
        prop_assert_eq!(&v.receipt, signed.receipt());
        prop_assert_eq!(v.receipt.identity, identity);
    }
}

//! # iga-receipt — signed, hash-chained execution receipts
//!
//! Every operation that reaches a terminal outcome gets an [`ExecutionReceipt`]: what
//! was executed, where, on whose approval, with which outcome, the SHA-256 of the
//! canonical request and the SHA-256 of the previous receipt in the same chain. The
//! receipt is signed as a compact JWS (RFC 7515) with Ed25519 (`EdDSA`, default) or
//! ES256, and its `kid` is the RFC 7638 JWK thumbprint of the signing key, so any JOSE
//! library verifies it with the published JWKS ([`KeyRing::to_jwks_json`]).
//!
//! Chains are per (node, system) ([`ChainId`]) with gap-free sequence numbers; a signed
//! chain head ([`ChainHeadRecord`]) stored with every append makes a truncated tail
//! detectable. [`ChainVerifier`] finds the first break: edited payload or record, bad
//! signature, unknown kid, removed, reordered or duplicated receipt, truncated tail.
//!
//! The crate is pure: no storage, no network (only [`SigningKey::load_pkcs8_file`]
//! reads a file). The store persists [`ReceiptRecord`]s ([`SignedReceipt::to_record`]).
//!
//! ```
//! use iga_directive::*;
//! use iga_receipt::*;
//!
//! let signer = ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA)?)?;
//! let keys = KeyRing::new().with(signer.key().verifying_key().clone());
//! let mut chain = ChainState::genesis(ChainId::new("node-1", "entra")?);
//!
//! let op = Operation::new("acme", "entra", OperationKind::Grant, Identity::person("alice"))
//!     .with_entitlement(EntitlementRef::group("Finance-Readers"));
//! let now = chrono::Utc::now();
//! let draft = ReceiptDraft::for_operation(&op, Outcome::Applied, now)?;
//! let receipt = chain.append(&signer, draft, now)?;
//! let head = chain.head(&signer, now)?;
//!
//! assert_eq!(receipt.seq(), 1);
//! assert!(verify_chain(&[receipt.to_record()], Some(&head), &keys).is_ok());
//! # Ok::<(), ReceiptError>(())
//! ```
//!
//! ## Canonical JSON
//! Payloads are hashed and signed in the canonical form described in [`canonical`]:
//! sorted member names, no whitespace, minimal string escaping (an RFC 8785 subset).
//! The verifier rejects a payload that is not byte-identical to its canonical form.
#![deny(missing_docs)]

mod b64;
pub mod canonical;
mod chain;
mod error;
mod export;
mod jws;
mod keys;
mod receipt;
mod verify;

pub use b64::{b64url_decode, b64url_encode};
pub use chain::{
    CHAIN_HEAD_TYP, ChainHead, ChainHeadRecord, ChainId, ChainState, ReceiptRecord, ReceiptSigner,
    SignedReceipt, UnsignedReceipt, receipt_id, sign_all,
};
pub use error::{JwsError, ReceiptError};
pub use export::{ChainExport, export_jsonl, import_jsonl};
pub use jws::{
    JwsHeader, VerifiedJws, decode_payload_unverified, protected_header_b64, sign_compact,
    sign_with_header, verify_compact,
};
pub use keys::{Algorithm, Jwk, Jwks, KeyRing, KeyType, SigningKey, VerifyingKey};
pub use receipt::{
    ExecutionReceipt, GENESIS_SHA256, Outcome, RECEIPT_TYP, RECEIPT_VERSION, ReceiptDraft,
    receipt_canonical_bytes, request_digest,
};
pub use verify::{
    BreakReason, ChainBreak, ChainReport, ChainVerifier, VerifiedReceipt, verify_chain,
    verify_head, verify_receipt, verify_record,
};

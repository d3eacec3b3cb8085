//! Chains: sealing drafts into signed, hash-linked receipts; chain heads; store records.

use std::fmt;

use iga_directive::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ReceiptError;
use crate::jws::{protected_header_b64, sign_with_header};
use crate::keys::SigningKey;
use crate::receipt::{
    ExecutionReceipt, GENESIS_SHA256, RECEIPT_TYP, RECEIPT_VERSION, ReceiptDraft,
};

/// The JWS `typ` of a chain head.
pub const CHAIN_HEAD_TYP: &str = "iga-chain-head+jws";

/// Namespace of receipt ids (UUIDv5 over `chain_id \u{1f} seq`).
const RECEIPT_NS: Uuid = Uuid::from_bytes([
    0x2f, 0x8a, 0x61, 0x0e, 0x93, 0x4c, 0x4b, 0x7d, 0xa5, 0x12, 0x6e, 0x3b, 0xc9, 0x70, 0x14, 0xd8,
]);

/// Identifier of a receipt chain: one per (node, system), written `<node>/<system>`, so
/// parallel workers on different nodes or systems never contend for one chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChainId(String);

impl ChainId {
    /// The chain of `system` on `node`. The node name must be non-empty and must not
    /// contain `/`; the system name must be non-empty.
    pub fn new(node: &str, system: &str) -> Result<Self, ReceiptError> {
        if node.is_empty() || node.contains('/') || system.is_empty() {
            return Err(ReceiptError::Invalid {
                context: format!("chain id for node `{node}` system `{system}`"),
                reason: "node must be non-empty without '/', system non-empty".into(),
            });
        }
        Ok(Self(format!("{node}/{system}")))
    }

    /// Parse `<node>/<system>`.
    pub fn parse(s: &str) -> Result<Self, ReceiptError> {
        let (node, system) = s.split_once('/').ok_or_else(|| ReceiptError::Invalid {
            context: format!("chain id `{s}`"),
            reason: "expected <node>/<system>".into(),
        })?;
        Self::new(node, system)
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The node part.
    pub fn node(&self) -> &str {
        self.0.split_once('/').map(|(n, _)| n).unwrap_or(&self.0)
    }

    /// The system part.
    pub fn system(&self) -> &str {
        self.0.split_once('/').map(|(_, s)| s).unwrap_or("")
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A signing key prepared for receipts (protected headers encoded once).
///
/// Rotation: build a new signer from the new key and keep the old key's public half in
/// the [`crate::KeyRing`] / JWKS; receipts signed with it keep verifying.
#[derive(Debug)]
pub struct ReceiptSigner {
    key: SigningKey,
    receipt_header: String,
    head_header: String,
}

impl ReceiptSigner {
    /// Wrap a key.
    pub fn new(key: SigningKey) -> Result<Self, ReceiptError> {
        Ok(Self {
            receipt_header: protected_header_b64(&key, Some(RECEIPT_TYP))?,
            head_header: protected_header_b64(&key, Some(CHAIN_HEAD_TYP))?,
            key,
        })
    }

    /// The key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The kid receipts are signed with.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }
}

/// Hex SHA-256 of bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The receipt id of position `seq` in `chain_id`.
pub fn receipt_id(chain_id: &str, seq: u64) -> String {
    Uuid::new_v5(&RECEIPT_NS, format!("{chain_id}\u{1f}{seq}").as_bytes()).to_string()
}

/// A receipt whose chain position and payload hash are fixed but which is not signed
/// yet ([`ChainState::append_unsigned`]); [`UnsignedReceipt::sign`] or [`sign_all`]
/// turn it into a [`SignedReceipt`].
#[derive(Debug, Clone, PartialEq)]
pub struct UnsignedReceipt {
    receipt: ExecutionReceipt,
    payload: Vec<u8>,
    payload_sha256: String,
}

impl UnsignedReceipt {
    /// The payload.
    pub fn receipt(&self) -> &ExecutionReceipt {
        &self.receipt
    }
    /// Hex SHA-256 of the canonical payload bytes.
    pub fn payload_sha256(&self) -> &str {
        &self.payload_sha256
    }
    /// Sign it.
    pub fn sign(self, signer: &ReceiptSigner) -> Result<SignedReceipt, ReceiptError> {
        let jws = sign_with_header(&signer.key, &signer.receipt_header, &self.payload)?;
        Ok(SignedReceipt {
            receipt: self.receipt,
            jws,
            payload_sha256: self.payload_sha256,
        })
    }
}

/// Below this many receipts [`sign_all`] signs on the calling thread.
const PARALLEL_SIGN_MIN: usize = 64;

/// Sign a batch of receipts, in order, spreading the signatures over the machine's
/// cores when the batch is large (Ed25519/ECDSA signing is the costly part of issuing a
/// receipt; the chain order was fixed by [`ChainState::append_unsigned`]).
pub fn sign_all(
    signer: &ReceiptSigner,
    receipts: Vec<UnsignedReceipt>,
) -> Result<Vec<SignedReceipt>, ReceiptError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(8);
    if receipts.len() < PARALLEL_SIGN_MIN || threads < 2 {
        return receipts.into_iter().map(|u| u.sign(signer)).collect();
    }
    let chunk = receipts.len().div_ceil(threads);
    let mut chunks: Vec<Vec<UnsignedReceipt>> = Vec::with_capacity(threads);
    let mut it = receipts.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(chunk).collect());
    }
    let signed: Vec<Result<Vec<SignedReceipt>, ReceiptError>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| s.spawn(move || c.into_iter().map(|u| u.sign(signer)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signing thread panicked"))
            .collect()
    });
    let mut out = Vec::new();
    for part in signed {
        out.extend(part?);
    }
    Ok(out)
}

/// A sealed receipt: the payload, its compact JWS and the payload hash.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedReceipt {
    receipt: ExecutionReceipt,
    jws: String,
    payload_sha256: String,
}

impl SignedReceipt {
    /// The payload.
    pub fn receipt(&self) -> &ExecutionReceipt {
        &self.receipt
    }
    /// Receipt id.
    pub fn receipt_id(&self) -> &str {
        &self.receipt.receipt_id
    }
    /// Chain id.
    pub fn chain_id(&self) -> &str {
        &self.receipt.chain_id
    }
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        self.receipt.seq
    }
    /// The compact JWS (what auditors verify).
    pub fn jws(&self) -> &str {
        &self.jws
    }
    /// Hex SHA-256 of the canonical payload bytes (the next receipt's `prev_sha256`).
    pub fn payload_sha256(&self) -> &str {
        &self.payload_sha256
    }
    /// Hex SHA-256 of the previous receipt's payload.
    pub fn prev_sha256(&self) -> &str {
        &self.receipt.prev_sha256
    }
    /// When the receipt was issued.
    pub fn created_at(&self) -> Timestamp {
        self.receipt.issued_at
    }

    /// The row a store persists, consuming the receipt (no copy of the JWS).
    pub fn into_record(self) -> ReceiptRecord {
        let r = self.receipt;
        ReceiptRecord {
            receipt_id: r.receipt_id,
            chain_id: r.chain_id,
            seq: r.seq,
            directive_id: r.directive_id.0,
            operation_id: r.operation_id.0,
            jws: self.jws,
            payload_sha256: self.payload_sha256,
            prev_sha256: r.prev_sha256,
            created_at: r.issued_at,
        }
    }

    /// The row a store persists.
    pub fn to_record(&self) -> ReceiptRecord {
        ReceiptRecord {
            receipt_id: self.receipt.receipt_id.clone(),
            chain_id: self.receipt.chain_id.clone(),
            seq: self.receipt.seq,
            directive_id: self.receipt.directive_id.0.clone(),
            operation_id: self.receipt.operation_id.0.clone(),
            jws: self.jws.clone(),
            payload_sha256: self.payload_sha256.clone(),
            prev_sha256: self.receipt.prev_sha256.clone(),
            created_at: self.receipt.issued_at,
        }
    }
}

/// A receipt as a store keeps it (and as a JSON-lines export carries it). Only `jws` is
/// authoritative; the other fields are indexes that the verifier checks against the
/// signed payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReceiptRecord {
    /// Receipt id.
    pub receipt_id: String,
    /// Chain id.
    pub chain_id: String,
    /// Sequence number.
    pub seq: u64,
    /// Directive id.
    pub directive_id: String,
    /// Operation id.
    pub operation_id: String,
    /// Compact JWS.
    pub jws: String,
    /// Hex SHA-256 of the payload.
    pub payload_sha256: String,
    /// Hex SHA-256 of the previous payload.
    pub prev_sha256: String,
    /// Issue time.
    pub created_at: Timestamp,
}

impl ReceiptRecord {
    /// A record from its fields (for stores reading rows back).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        receipt_id: String,
        chain_id: String,
        seq: u64,
        directive_id: String,
        operation_id: String,
        jws: String,
        payload_sha256: String,
        prev_sha256: String,
        created_at: Timestamp,
    ) -> Self {
        Self {
            receipt_id,
            chain_id,
            seq,
            directive_id,
            operation_id,
            jws,
            payload_sha256,
            prev_sha256,
            created_at,
        }
    }
}

/// The signed statement "chain X has `seq` receipts, the last with payload hash H".
/// Stored next to the chain and updated in the same transaction as each append, it
/// makes a truncated tail detectable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChainHead {
    /// Chain id.
    pub chain_id: String,
    /// Number of receipts (= last sequence number; 0 for an empty chain).
    pub seq: u64,
    /// Payload hash of the last receipt ([`GENESIS_SHA256`] when empty).
    pub last_sha256: String,
    /// When the head was signed.
    pub updated_at: Timestamp,
}

/// A chain head as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChainHeadRecord {
    /// Chain id.
    pub chain_id: String,
    /// Last sequence number.
    pub seq: u64,
    /// Last payload hash.
    pub last_sha256: String,
    /// Compact JWS over the [`ChainHead`] (authoritative).
    pub jws: String,
    /// When signed.
    pub updated_at: Timestamp,
}

impl ChainHeadRecord {
    /// A record from its fields.
    pub fn new(
        chain_id: String,
        seq: u64,
        last_sha256: String,
        jws: String,
        updated_at: Timestamp,
    ) -> Self {
        Self {
            chain_id,
            seq,
            last_sha256,
            jws,
            updated_at,
        }
    }
}

/// The append position of one chain: next sequence number and previous hash.
///
/// `seal` signs without changing the state; `advance` moves it after the store has
/// committed; `append` does both (for callers whose store append cannot fail, or that
/// rebuild the state from the store after a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    chain_id: ChainId,
    next_seq: u64,
    prev_sha256: String,
}

impl ChainState {
    /// A new, empty chain.
    pub fn genesis(chain_id: ChainId) -> Self {
        Self {
            chain_id,
            next_seq: 1,
            prev_sha256: GENESIS_SHA256.into(),
        }
    }

    /// Resume after the last stored receipt (`last_seq` 0 = empty chain).
    pub fn resume(chain_id: ChainId, last_seq: u64, last_sha256: impl Into<String>) -> Self {
        Self {
            chain_id,
            next_seq: last_seq + 1,
            prev_sha256: last_sha256.into(),
        }
    }

    /// Resume from a stored chain head.
    pub fn from_head(head: &ChainHeadRecord) -> Result<Self, ReceiptError> {
        Ok(Self::resume(
            ChainId::parse(&head.chain_id)?,
            head.seq,
            head.last_sha256.clone(),
        ))
    }

    /// The chain id.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The sequence number the next receipt gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The `prev_sha256` the next receipt gets.
    pub fn prev_sha256(&self) -> &str {
        &self.prev_sha256
    }

    /// Number of receipts in the chain so far.
    pub fn len(&self) -> u64 {
        self.next_seq - 1
    }

    /// Whether the chain has no receipt yet.
    pub fn is_empty(&self) -> bool {
        self.next_seq == 1
    }

    /// Build the next receipt of this chain from `draft` (canonical payload and its
    /// hash) without signing it and without advancing the chain.
    fn build(
        &self,
        draft: ReceiptDraft,
        issued_at: Timestamp,
    ) -> Result<UnsignedReceipt, ReceiptError> {
        if draft.system != self.chain_id.system() {
            return Err(ReceiptError::Chain {
                chain_id: self.chain_id.to_string(),
                reason: format!(
                    "operation {} targets system `{}`, not this chain's system",
                    draft.operation_id, draft.system
                ),
            });
        }
        let receipt = ExecutionReceipt {
            version: RECEIPT_VERSION,
            receipt_id: receipt_id(self.chain_id.as_str(), self.next_seq),
            chain_id: self.chain_id.to_string(),
            seq: self.next_seq,
            prev_sha256: self.prev_sha256.clone(),
            directive_id: draft.directive_id,
            operation_id: draft.operation_id,
            operation: draft.operation,
            tenant: draft.tenant,
            system: draft.system,
            identity: draft.identity,
            native_id: draft.native_id,
            entitlement: draft.entitlement,
            source: draft.source,
            approval: draft.approval,
            outcome: draft.outcome,
            request_sha256: draft.request_sha256,
            attempts: draft.attempts.max(1),
            requested_at: draft.requested_at,
            started_at: draft.started_at,
            completed_at: draft.completed_at,
            issued_at,
        };
        let payload = crate::receipt::receipt_canonical_bytes(&receipt)?;
        let payload_sha256 = sha256_hex(&payload);
        Ok(UnsignedReceipt {
            receipt,
            payload,
            payload_sha256,
        })
    }

    /// Sign `draft` as the next receipt without advancing the state.
    pub fn seal(
        &self,
        signer: &ReceiptSigner,
        draft: ReceiptDraft,
        issued_at: Timestamp,
    ) -> Result<SignedReceipt, ReceiptError> {
        self.build(draft, issued_at)?.sign(signer)
    }

    /// Append the next receipt without signing it yet: the chain links payload
    /// hashes, not signatures, so the chain can advance now and a batch of receipts be
    /// signed later, in parallel, with [`sign_all`]. The receipt is not valid proof
    /// until signed.
    pub fn append_unsigned(
        &mut self,
        draft: ReceiptDraft,
        issued_at: Timestamp,
    ) -> Result<UnsignedReceipt, ReceiptError> {
        let u = self.build(draft, issued_at)?;
        self.prev_sha256.clone_from(&u.payload_sha256);
        self.next_seq += 1;
        Ok(u)
    }

    /// Move past `receipt` (which must be the next one of this chain).
    pub fn advance(&mut self, receipt: &SignedReceipt) -> Result<(), ReceiptError> {
        if receipt.chain_id() != self.chain_id.as_str()
            || receipt.seq() != self.next_seq
            || receipt.prev_sha256() != self.prev_sha256
        {
            return Err(ReceiptError::Chain {
                chain_id: self.chain_id.to_string(),
                reason: format!(
                    "receipt {} (chain {}, seq {}) is not the next receipt (seq {})",
                    receipt.receipt_id(),
                    receipt.chain_id(),
                    receipt.seq(),
                    self.next_seq
                ),
            });
        }
        self.next_seq += 1;
        self.prev_sha256 = receipt.payload_sha256.clone();
        Ok(())
    }

    /// Seal and advance.
    pub fn append(
        &mut self,
        signer: &ReceiptSigner,
        draft: ReceiptDraft,
        issued_at: Timestamp,
    ) -> Result<SignedReceipt, ReceiptError> {
        let r = self.seal(signer, draft, issued_at)?;
        self.advance(&r)?;
        Ok(r)
    }

    /// The signed head for the current state (store it with the last append).
    pub fn head(
        &self,
        signer: &ReceiptSigner,
        at: Timestamp,
    ) -> Result<ChainHeadRecord, ReceiptError> {
        let head = ChainHead {
            chain_id: self.chain_id.to_string(),
            seq: self.len(),
            last_sha256: self.prev_sha256.clone(),
            updated_at: at,
        };
        let payload = crate::canonical::to_canonical_json(&head)?;
        let jws = sign_with_header(&signer.key, &signer.head_header, &payload)?;
        Ok(ChainHeadRecord {
            chain_id: head.chain_id,
            seq: head.seq,
            last_sha256: head.last_sha256,
            jws,
            updated_at: at,
        })
    }
}

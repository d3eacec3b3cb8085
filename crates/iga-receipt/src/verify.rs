//! Offline verification of single receipts and whole chains.

use std::fmt;

use serde_json::Value;

use crate::JwsError;
use crate::chain::{CHAIN_HEAD_TYP, ChainHead, ChainHeadRecord, ReceiptRecord, sha256_hex};
use crate::jws::{JwsHeader, verify_compact};
use crate::keys::KeyRing;
use crate::receipt::{ExecutionReceipt, GENESIS_SHA256, RECEIPT_TYP, RECEIPT_VERSION};

/// A receipt whose signature verified and whose payload is canonical.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifiedReceipt {
    /// The payload.
    pub receipt: ExecutionReceipt,
    /// The JWS header (alg, kid, typ).
    pub header: JwsHeader,
    /// Hex SHA-256 of the payload bytes.
    pub payload_sha256: String,
}

/// Why a receipt or a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakReason {
    /// The JWS is malformed, has an unacceptable header or a bad signature, or names an unknown kid.
    Jws(JwsError),
    /// The signed payload is not a receipt, or not in canonical form.
    BadPayload(String),
    /// A store/export field disagrees with the signed payload (edited record).
    RecordMismatch {
        /// Field name.
        field: &'static str,
    },
    /// The receipt belongs to another chain.
    WrongChain {
        /// The chain the receipt names.
        found: String,
    },
    /// The receipt at this position has a higher sequence number than expected and the
    /// expected one appears nowhere later: receipts were removed.
    Missing {
        /// The sequence number found instead.
        found: u64,
    },
    /// The expected receipt exists but at another position: receipts were reordered.
    OutOfOrder {
        /// The sequence number found at this position.
        found: u64,
    },
    /// A sequence number occurs twice.
    Duplicate,
    /// `prev_sha256` does not match the previous receipt's payload hash.
    PrevHashMismatch {
        /// The hash expected (previous payload's SHA-256).
        expected: String,
        /// The hash in the receipt.
        found: String,
    },
    /// The chain head says there are more receipts than present: the tail was truncated.
    Truncated {
        /// The head's sequence number.
        head_seq: u64,
    },
    /// The chain head does not verify or does not match the last receipt.
    HeadMismatch(String),
    /// Receipts exist beyond the head's sequence number (head rolled back or not updated).
    BeyondHead {
        /// The head's sequence number.
        head_seq: u64,
    },
}

impl fmt::Display for BreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Jws(e) => write!(f, "{e}"),
            Self::BadPayload(r) => write!(f, "payload is not a canonical receipt: {r}"),
            Self::RecordMismatch { field } => {
                write!(
                    f,
                    "record field `{field}` differs from the signed payload (edited record)"
                )
            }
            Self::WrongChain { found } => write!(f, "receipt belongs to chain `{found}`"),
            Self::Missing { found } => write!(
                f,
                "receipt missing (found seq {found} instead): removed receipt"
            ),
            Self::OutOfOrder { found } => {
                write!(f, "found seq {found} at this position: reordered receipts")
            }
            Self::Duplicate => write!(f, "sequence number occurs twice"),
            Self::PrevHashMismatch { expected, found } => {
                write!(
                    f,
                    "prev_sha256 {found} does not match previous payload hash {expected}"
                )
            }
            Self::Truncated { head_seq } => {
                write!(f, "chain head says {head_seq} receipts: tail truncated")
            }
            Self::HeadMismatch(r) => write!(f, "chain head: {r}"),
            Self::BeyondHead { head_seq } => {
                write!(f, "receipt beyond the chain head (head seq {head_seq})")
            }
        }
    }
}

/// The first place a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainBreak {
    /// The chain.
    pub chain_id: String,
    /// The sequence number where the chain breaks (the one expected at that position).
    pub seq: u64,
    /// 0-based position in the input (equal to the number of records for a truncated tail).
    pub position: usize,
    /// Why.
    pub reason: BreakReason,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chain {} breaks at seq {} (record #{}): {}",
            self.chain_id,
            self.seq,
            self.position + 1,
            self.reason
        )
    }
}

/// The result of verifying one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainReport {
    /// The chain id (from the head or the first record).
    pub chain_id: String,
    /// Number of records given.
    pub records: usize,
    /// Receipts verified in order before the first break (all of them when intact).
    pub verified: u64,
    /// Payload hash of the last verified receipt.
    pub last_sha256: String,
    /// Whether a chain head was checked.
    pub head_checked: bool,
    /// The first break, if any.
    pub first_break: Option<ChainBreak>,
}

impl ChainReport {
    /// Whether the chain is intact.
    pub fn is_ok(&self) -> bool {
        self.first_break.is_none()
    }
}

impl fmt::Display for ChainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_break {
            None => write!(
                f,
                "chain {}: {} receipts verified{}",
                self.chain_id,
                self.verified,
                if self.head_checked {
                    ", head matches"
                } else {
                    " (no chain head given)"
                }
            ),
            Some(b) => write!(f, "{b} ({} receipts verified before it)", self.verified),
        }
    }
}

/// Verify one compact JWS receipt: signature (kid from the ring, algorithm pinned),
/// canonical payload, receipt structure.
pub fn verify_receipt(jws: &str, keys: &KeyRing) -> Result<VerifiedReceipt, BreakReason> {
    let v = verify_compact(jws, keys).map_err(BreakReason::Jws)?;
    if v.header.typ.as_deref() != Some(RECEIPT_TYP) {
        return Err(BreakReason::BadPayload(format!(
            "JWS typ is {:?}, expected {RECEIPT_TYP}",
            v.header.typ
        )));
    }
    // Fast path: decode straight into the struct and compare with its canonical bytes.
    // Unknown members (a newer payload version) or duplicates take the generic path.
    let receipt = match serde_json::from_slice::<ExecutionReceipt>(&v.payload) {
        Ok(r)
            if r.version <= RECEIPT_VERSION
                && crate::receipt::receipt_canonical_bytes(&r).ok().as_deref()
                    == Some(&v.payload[..]) =>
        {
            r
        }
        _ => {
            let value: Value = serde_json::from_slice(&v.payload)
                .map_err(|e| BreakReason::BadPayload(e.to_string()))?;
            if crate::canonical::canonicalize(&value) != v.payload {
                return Err(BreakReason::BadPayload(
                    "payload is not in canonical JSON form".into(),
                ));
            }
            serde_json::from_value(value).map_err(|e| BreakReason::BadPayload(e.to_string()))?
        }
    };
    Ok(VerifiedReceipt {
        receipt,
        header: v.header,
        payload_sha256: sha256_hex(&v.payload),
    })
}

/// Verify a stored record: the JWS as [`verify_receipt`], plus every index field
/// against the signed payload.
pub fn verify_record(
    record: &ReceiptRecord,
    keys: &KeyRing,
) -> Result<VerifiedReceipt, BreakReason> {
    let v = verify_receipt(&record.jws, keys)?;
    let r = &v.receipt;
    let mismatch = |field| Err(BreakReason::RecordMismatch { field });
    if record.receipt_id != r.receipt_id {
        return mismatch("receipt_id");
    }
    if record.chain_id != r.chain_id {
        return mismatch("chain_id");
    }
    if record.seq != r.seq {
        return mismatch("seq");
    }
    if record.directive_id != r.directive_id.0 {
        return mismatch("directive_id");
    }
    if record.operation_id != r.operation_id.0 {
        return mismatch("operation_id");
    }
    if record.payload_sha256 != v.payload_sha256 {
        return mismatch("payload_sha256");
    }
    if record.prev_sha256 != r.prev_sha256 {
        return mismatch("prev_sha256");
    }
    if record.created_at != r.issued_at {
        return mismatch("created_at");
    }
    Ok(v)
}

/// Verify a signed chain head.
pub fn verify_head(head: &ChainHeadRecord, keys: &KeyRing) -> Result<ChainHead, BreakReason> {
    let v = verify_compact(&head.jws, keys).map_err(BreakReason::Jws)?;
    if v.header.typ.as_deref() != Some(CHAIN_HEAD_TYP) {
        return Err(BreakReason::HeadMismatch(format!(
            "JWS typ is {:?}, expected {CHAIN_HEAD_TYP}",
            v.header.typ
        )));
    }
    let h: ChainHead = serde_json::from_slice(&v.payload)
        .map_err(|e| BreakReason::HeadMismatch(format!("payload: {e}")))?;
    if h.chain_id != head.chain_id || h.seq != head.seq || h.last_sha256 != head.last_sha256 {
        return Err(BreakReason::HeadMismatch(
            "record fields differ from the signed head (edited record)".into(),
        ));
    }
    Ok(h)
}

/// Verifies whole chains. Signatures are checked on `threads` threads (default: the
/// available parallelism); linkage is checked in order afterwards.
#[derive(Debug, Clone)]
pub struct ChainVerifier<'k> {
    keys: &'k KeyRing,
    threads: usize,
}

impl<'k> ChainVerifier<'k> {
    /// A verifier over `keys`.
    pub fn new(keys: &'k KeyRing) -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Self { keys, threads }
    }

    /// Set the number of signature-checking threads (at least 1).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Verify `records` (in stored order, starting at seq 1) of one chain, and the tail
    /// against `head` when given. Reports the first break.
    pub fn verify(&self, records: &[ReceiptRecord], head: Option<&ChainHeadRecord>) -> ChainReport {
        let chain_id = head
            .map(|h| h.chain_id.clone())
            .or_else(|| records.first().map(|r| r.chain_id.clone()))
            .unwrap_or_default();
        let checked = self.check_signatures(records);
        let mut report = ChainReport {
            chain_id: chain_id.clone(),
            records: records.len(),
            verified: 0,
            last_sha256: GENESIS_SHA256.into(),
            head_checked: head.is_some(),
            first_break: None,
        };
        let brk = |seq: u64, position: usize, reason: BreakReason| ChainBreak {
            chain_id: chain_id.clone(),
            seq,
            position,
            reason,
        };
        let mut prev_sha = GENESIS_SHA256.to_string();
        for (i, result) in checked.into_iter().enumerate() {
            let expected = i as u64 + 1;
            let v = match result {
                Ok(v) => v,
                Err(reason) => {
                    report.first_break = Some(brk(expected, i, reason));
                    return report;
                }
            };
            let r = &v.receipt;
            if r.chain_id != chain_id {
                report.first_break = Some(brk(
                    expected,
                    i,
                    BreakReason::WrongChain {
                        found: r.chain_id.clone(),
                    },
                ));
                return report;
            }
            if r.seq != expected {
                let reason = if r.seq < expected {
                    if records[..i].iter().any(|x| x.seq == r.seq) {
                        BreakReason::Duplicate
                    } else {
                        BreakReason::OutOfOrder { found: r.seq }
                    }
                } else if records[i + 1..].iter().any(|x| x.seq == expected) {
                    BreakReason::OutOfOrder { found: r.seq }
                } else {
                    BreakReason::Missing { found: r.seq }
                };
                report.first_break = Some(brk(expected, i, reason));
                return report;
            }
            if r.prev_sha256 != prev_sha {
                report.first_break = Some(brk(
                    expected,
                    i,
                    BreakReason::PrevHashMismatch {
                        expected: prev_sha,
                        found: r.prev_sha256.clone(),
                    },
                ));
                return report;
            }
            prev_sha = v.payload_sha256;
            report.verified = expected;
            report.last_sha256 = prev_sha.clone();
        }
        if let Some(head) = head {
            let n = records.len();
            let last = n as u64;
            let h = match verify_head(head, self.keys) {
                Ok(h) => h,
                Err(reason) => {
                    report.first_break = Some(brk(head.seq, n, reason));
                    return report;
                }
            };
            if h.chain_id != chain_id {
                report.first_break = Some(brk(
                    last + 1,
                    n,
                    BreakReason::HeadMismatch(format!("head is for chain `{}`", h.chain_id)),
                ));
            } else if h.seq > last {
                report.first_break =
                    Some(brk(last + 1, n, BreakReason::Truncated { head_seq: h.seq }));
            } else if h.seq < last {
                report.first_break = Some(brk(
                    h.seq + 1,
                    h.seq as usize,
                    BreakReason::BeyondHead { head_seq: h.seq },
                ));
            } else if h.last_sha256 != prev_sha {
                report.first_break = Some(brk(
                    last,
                    n.saturating_sub(1),
                    BreakReason::HeadMismatch(format!(
                        "head hash {} differs from the last receipt's payload hash {prev_sha}",
                        h.last_sha256
                    )),
                ));
            }
        }
        report
    }

    fn check_signatures(
        &self,
        records: &[ReceiptRecord],
    ) -> Vec<Result<VerifiedReceipt, BreakReason>> {
        let threads = self.threads.min(records.len().max(1));
        if threads <= 1 || records.len() < 256 {
            return records
                .iter()
                .map(|r| verify_record(r, self.keys))
                .collect();
        }
        let chunk = records.len().div_ceil(threads);
        let keys = self.keys;
        std::thread::scope(|s| {
            let handles: Vec<_> = records
                .chunks(chunk)
                .map(|c| {
                    s.spawn(move || c.iter().map(|r| verify_record(r, keys)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("signature verification thread panicked"))
                .collect()
        })
    }
}

/// Verify one chain with default settings (see [`ChainVerifier::verify`]).
pub fn verify_chain(
    records: &[ReceiptRecord],
    head: Option<&ChainHeadRecord>,
    keys: &KeyRing,
) -> ChainReport {
    ChainVerifier::new(keys).verify(records, head)
}

//! Export and import of chains as JSON lines.
//!
//! One JSON object per line, tagged by `type`:
//! `{"type":"receipt", <ReceiptRecord fields>}` and
//! `{"type":"chain_head", <ChainHeadRecord fields>}`. Several chains may share one file;
//! import groups lines by `chain_id` in order of first appearance and keeps receipt
//! order as written (the verifier, not the importer, judges order).

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::ReceiptError;
use crate::chain::{ChainHeadRecord, ReceiptRecord};
use crate::keys::KeyRing;
use crate::verify::{ChainReport, ChainVerifier};

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Receipt(ReceiptRecord),
    ChainHead(ChainHeadRecord),
}

/// One chain's receipts and head, as exported or imported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainExport {
    /// Chain id.
    pub chain_id: String,
    /// The signed head, when exported.
    pub head: Option<ChainHeadRecord>,
    /// Receipts, in stored order.
    pub receipts: Vec<ReceiptRecord>,
}

impl ChainExport {
    /// A bundle from records and head.
    pub fn new(
        chain_id: impl Into<String>,
        head: Option<ChainHeadRecord>,
        receipts: Vec<ReceiptRecord>,
    ) -> Self {
        Self {
            chain_id: chain_id.into(),
            head,
            receipts,
        }
    }

    /// Verify the chain (see [`ChainVerifier::verify`]).
    pub fn verify(&self, keys: &KeyRing) -> ChainReport {
        let mut r = ChainVerifier::new(keys).verify(&self.receipts, self.head.as_ref());
        if r.chain_id.is_empty() {
            r.chain_id = self.chain_id.clone();
        }
        r
    }
}

/// Write chains as JSON lines: each chain's receipts, then its head.
pub fn export_jsonl<W: Write>(mut w: W, chains: &[ChainExport]) -> std::io::Result<()> {
    for c in chains {
        for r in &c.receipts {
            serde_json::to_writer(&mut w, &Line::Receipt(r.clone()))?;
            w.write_all(b"\n")?;
        }
        if let Some(h) = &c.head {
            serde_json::to_writer(&mut w, &Line::ChainHead(h.clone()))?;
            w.write_all(b"\n")?;
        }
    }
    w.flush()
}

/// Read chains from JSON lines; `source_name` names the input in errors (which give
/// the 1-based line number). Blank lines are skipped; a second head for one chain is
/// an error.
pub fn import_jsonl<R: BufRead>(r: R, source_name: &str) -> Result<Vec<ChainExport>, ReceiptError> {
    let mut chains: Vec<ChainExport> = Vec::new();
    let err = |line: usize, reason: String| ReceiptError::Import {
        source_name: source_name.to_string(),
        line,
        reason,
    };
    for (i, line) in r.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| err(n, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line).map_err(|e| err(n, e.to_string()))?;
        let chain_id = match &parsed {
            Line::Receipt(r) => r.chain_id.clone(),
            Line::ChainHead(h) => h.chain_id.clone(),
        };
        let idx = match chains.iter().position(|c| c.chain_id == chain_id) {
            Some(p) => p,
            None => {
                chains.push(ChainExport {
                    chain_id,
                    ..Default::default()
                });
                chains.len() - 1
            }
        };
        match parsed {
            Line::Receipt(r) => chains[idx].receipts.push(r),
            Line::ChainHead(h) => {
                if chains[idx].head.is_some() {
                    return Err(err(
                        n,
                        format!("second chain head for chain `{}`", h.chain_id),
                    ));
                }
                chains[idx].head = Some(h);
            }
        }
    }
    Ok(chains)
}

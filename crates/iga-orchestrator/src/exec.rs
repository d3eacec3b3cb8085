//! Executes one wave of operations on one system within a pass: native batches,
//! bounded concurrency, per-item short retries honouring Retry-After.

use std::time::Duration;

use futures::stream::{self, StreamExt};
use iga_adapter::{Error, Outcome, ProvisioningAdapter};
use iga_directive::Operation;
use rand::Rng;

use crate::SystemSettings;

/// The final result of one operation in a pass, with every error seen.
#[derive(Debug, Clone)]
pub(crate) struct ItemResult {
    pub(crate) result: Result<Outcome, Error>,
    pub(crate) errors: Vec<Error>,
    pub(crate) attempts: u32,
}

/// Execute `ops` (all on `adapter`'s system). One result per input, in order.
pub(crate) async fn execute(
    adapter: &dyn ProvisioningAdapter,
    ops: &[Operation],
    settings: &SystemSettings,
) -> Vec<ItemResult> {
    let caps = adapter.capabilities();
    let batch = caps.batch_max.max(1);
    let concurrency = caps.max_concurrency.unwrap_or(4).max(1);
    let mut out: Vec<Option<ItemResult>> = vec![None; ops.len()];
    let mut errors: Vec<Vec<Error>> = vec![Vec::new(); ops.len()];
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    let max_attempts = settings.pass_attempts.max(1);
    for attempt in 1..=max_attempts {
        let chunks: Vec<Vec<usize>> = pending.chunks(batch).map(|c| c.to_vec()).collect();
        let results: Vec<(Vec<usize>, Vec<Result<Outcome, Error>>)> = stream::iter(chunks)
            .map(|idx| async move {
                let slice: Vec<Operation> = idx.iter().map(|&i| ops[i].clone()).collect();
                let r = if slice.len() == 1 {
                    vec![adapter.apply(&slice[0]).await]
                } else {
                    adapter.apply_batch(&slice).await
                };
                (idx, r)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut retry = Vec::new();
        let mut wait = Duration::ZERO;
        for (idx, rs) in results {
            for (i, r) in idx.into_iter().zip(rs) {
                match r {
                    Err(e)
                        if e.is_retryable()
                            && attempt < max_attempts
                            && e.retry_after().unwrap_or_default() <= settings.pass_max_wait =>
                    {
                        wait = wait.max(e.retry_after().unwrap_or_default());
                        errors[i].push(e);
                        retry.push(i);
                    }
                    r => {
                        if let Err(e) = &r {
                            errors[i].push(e.clone());
                        }
                        out[i] = Some(ItemResult {
                            result: r,
                            errors: std::mem::take(&mut errors[i]),
                            attempts: attempt,
                        });
                    }
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        // Exponential backoff with full jitter, at least the longest Retry-After.
        let cap = 100u64 << attempt.min(8);
        let jitter = Duration::from_millis(rand::rng().random_range(0..=cap));
        tokio::time::sleep(wait.max(jitter)).await;
        retry.sort_unstable();
        pending = retry;
    }
    out.into_iter()
        .map(|r| r.expect("every item reaches a final result within the pass"))
        .collect()
}

//! Helpers for `apply_batch` implementations of adapters without a native batch.

use futures::stream::{self, StreamExt};
use iga_directive::Operation;

use crate::{Outcome, ProvisioningAdapter, Result};

/// Apply operations one after another, in order. For adapters with no native batch
/// (their `batch_max` is 1) and for targets where order within a slice matters.
pub async fn sequential<A: ProvisioningAdapter + ?Sized>(
    adapter: &A,
    ops: &[Operation],
) -> Vec<Result<Outcome>> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(adapter.apply(op).await);
    }
    out
}

/// Apply operations with at most `limit` in flight; results keep input order.
pub async fn concurrent<A: ProvisioningAdapter + ?Sized>(
    adapter: &A,
    ops: &[Operation],
    limit: usize,
) -> Vec<Result<Outcome>> {
    stream::iter(ops.iter().map(|op| adapter.apply(op)))
        .buffered(limit.max(1))
        .collect()
        .await
}

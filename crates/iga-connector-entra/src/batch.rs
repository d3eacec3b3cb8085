//! `apply_batch` on Graph JSON batching (`POST /$batch`, protocols §1.2).
//!
//! - Membership changes (groups, owners, administrative units) and user deletes
//!   are packed up to `batch_max` (≤ 20) per `$batch`; every other operation runs
//!   through [`ProvisioningAdapter::apply`] (they need a read first).
//! - Accounts without a native id are resolved first, also by `$batch`.
//! - Inner requests are independent, so the batch is fully parallel; only when two
//!   items of one chunk touch the same (member, container) pair does the chunk become
//!   a strict `dependsOn` chain (the shape Graph recommends); a dependent of a failed
//!   item comes back 424 and is sent again in the next round.
//! - Responses are mapped to inputs by id, whatever their order; an id missing from
//!   the response is an error for that item, never a lost item.
//! - Inner 429s are re-sent alone in a new `$batch` after the largest inner
//!   `Retry-After` (up to `inner_throttle_retries` rounds, waits up to
//!   `max_inline_wait`); then they are returned as `RateLimited` with the wait.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use http::Method;
use iga_adapter::{Error, ErrorKind, NoOpReason, Outcome, ProvisioningAdapter, Result};
use iga_directive::{Operation, OperationKind};
use serde_json::{Value, json};

use crate::KIND;
use crate::adapter::{EntraAdapter, path, str_of};
use crate::commands::command;
use crate::error::{Direction, GraphError};
use crate::grants::container_path;
use crate::target::Target;

/// One inner request.
#[derive(Debug, Clone)]
pub(crate) struct InnerRequest {
    pub(crate) id: String,
    pub(crate) method: &'static str,
    pub(crate) url: String,
    pub(crate) body: Option<Value>,
    pub(crate) depends_on: Option<String>,
}

/// One inner response.
#[derive(Debug, Clone)]
pub(crate) struct InnerResponse {
    pub(crate) status: u16,
    pub(crate) headers: Option<Value>,
    pub(crate) body: Option<Value>,
}

impl InnerResponse {
    fn error(&self) -> GraphError {
        GraphError::from_inner(self.status, self.headers.as_ref(), self.body.as_ref())
    }
}

/// Send one `$batch`; returns the inner responses keyed by lower-case id.
pub(crate) async fn post_batch(
    a: &EntraAdapter,
    reqs: &[InnerRequest],
) -> Result<HashMap<String, InnerResponse>> {
    let requests: Vec<Value> = reqs
        .iter()
        .map(|r| {
            let mut v = json!({"id": r.id, "method": r.method, "url": r.url});
            if let Some(b) = &r.body {
                v["headers"] = json!({"Content-Type": "application/json"});
                v["body"] = b.clone();
            }
            if let Some(d) = &r.depends_on {
                v["dependsOn"] = json!([d]);
            }
            v
        })
        .collect();
    let client = a.client();
    client.batch_requests.fetch_add(1, Ordering::Relaxed);
    let resp = client
        .send(
            Method::POST,
            &command("batch").path(&[])?,
            Some(&json!({ "requests": requests })),
            &[],
        )
        .await?;
    let body = resp.into_result()?;
    let mut out = HashMap::new();
    for r in body
        .as_ref()
        .and_then(|b| b.get("responses"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = str_of(r, "id") else { continue };
        let status = r.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
        let headers = r.get("headers").cloned();
        if status == 429 {
            let mut t = client.throttle.lock().expect("throttle");
            t.throttled += 1;
            if let Some(s) = headers
                .as_ref()
                .and_then(|h| h.get("x-ms-throttle-scope"))
                .and_then(Value::as_str)
            {
                t.scope = Some(s.to_string());
            }
        }
        out.insert(
            id.to_ascii_lowercase(),
            InnerResponse {
                status,
                headers,
                body: r.get("body").cloned(),
            },
        );
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct Prep {
    op: usize,
    method: &'static str,
    url: String,
    body: Option<Value>,
    dir: Direction,
    /// For `$ref` removes: the container to check before trusting a 404.
    container: Option<String>,
    /// (member, container) — two items with the same key must run in order.
    key: String,
    delete: bool,
    native_id: String,
}

fn batchable(op: &Operation) -> Option<Target> {
    match op.kind {
        OperationKind::DeleteAccount => Some(Target::Group(String::new())),
        OperationKind::Grant | OperationKind::Revoke => {
            let t = Target::parse(op.entitlement.as_ref()?).ok()?;
            matches!(
                t,
                Target::Group(_) | Target::GroupOwner(_) | Target::AdministrativeUnit(_)
            )
            .then_some(t)
        }
        _ => None,
    }
}

fn ctx(e: Error, op: &Operation) -> Error {
    e.with_connector(KIND)
        .with_operation(op.kind.as_str())
        .with_context("operation_id", &op.id)
}

/// Resolve the object ids of accounts without a native id, by `$batch` of
/// `GET /users/{upn}`. Returns per op: Ok(Some(id)), Ok(None) (no such user) or Err.
async fn resolve_users(
    a: &EntraAdapter,
    ops: &[Operation],
    which: &[usize],
) -> HashMap<usize, Result<Option<String>>> {
    let mut out = HashMap::new();
    let mut wanted: Vec<(usize, String)> = Vec::new();
    for &i in which {
        let op = &ops[i];
        if let Some(n) = &op.native_id {
            out.insert(i, Ok(Some(n.clone())));
            continue;
        }
        match a.upn(&op.identity) {
            Err(e) => {
                out.insert(i, Err(e));
            }
            Ok(upn) => match a.cached_user(&upn) {
                Some(id) => {
                    out.insert(i, Ok(Some(id)));
                }
                None => wanted.push((i, upn)),
            },
        }
    }
    let mut upns: Vec<String> = wanted.iter().map(|(_, u)| u.to_ascii_lowercase()).collect();
    upns.sort();
    upns.dedup();
    let max = a.inner.config.batch_max;
    let mut found: HashMap<String, Result<Option<String>>> = HashMap::new();
    for chunk in upns.chunks(max) {
        let reqs: Vec<InnerRequest> = chunk
            .iter()
            .enumerate()
            .map(|(n, upn)| InnerRequest {
                id: n.to_string(),
                method: "GET",
                url: path("user.get", &[("user", upn)]).unwrap_or_default(),
                body: None,
                depends_on: None,
            })
            .collect();
        match post_batch(a, &reqs).await {
            Err(e) => {
                for upn in chunk {
                    found.insert(upn.clone(), Err(e.clone()));
                }
            }
            Ok(map) => {
                for (n, upn) in chunk.iter().enumerate() {
                    let r = match map.get(&n.to_string()) {
                        None => Err(Error::new(
                            ErrorKind::Unexpected,
                            "the $batch response has no answer for this item",
                        )
                        .with_connector(KIND)),
                        Some(r) if r.status == 404 => Ok(None),
                        Some(r) if (200..300).contains(&r.status) => {
                            let id = r
                                .body
                                .as_ref()
                                .and_then(|b| str_of(b, "id"))
                                .unwrap_or_default()
                                .to_string();
                            a.remember_user(upn, &id);
                            Ok(Some(id))
                        }
                        Some(r) => Err(r.error().to_error()),
                    };
                    found.insert(upn.clone(), r);
                }
            }
        }
    }
    for (i, upn) in wanted {
        let r = found
            .get(&upn.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| {
                Err(Error::new(ErrorKind::Unexpected, "unresolved").with_connector(KIND))
            });
        out.insert(i, r);
    }
    out
}

async fn prepare(
    a: &EntraAdapter,
    op: &Operation,
    i: usize,
    t: &Target,
    uid: String,
) -> Result<Prep> {
    if op.kind == OperationKind::DeleteAccount {
        return Ok(Prep {
            op: i,
            method: "DELETE",
            url: path("user.delete", &[("id", &uid)])?,
            body: None,
            dir: Direction::Remove,
            container: None,
            key: format!("user:{uid}"),
            delete: true,
            native_id: uid,
        });
    }
    let grant = op.kind == OperationKind::Grant;
    let (container, cmd_add, cmd_remove, key_name, collection) = match t {
        Target::Group(g) => (
            a.group_id(g).await?,
            "group.add_member",
            "group.remove_member",
            "groupId",
            "directoryObjects",
        ),
        Target::GroupOwner(g) => (
            a.group_id(g).await?,
            "group.add_owner",
            "group.remove_owner",
            "groupId",
            "directoryObjects",
        ),
        Target::AdministrativeUnit(au) => (
            au.clone(),
            "au.add_member",
            "au.remove_member",
            "auId",
            "users",
        ),
        _ => unreachable!("only batchable targets are prepared"),
    };
    let key = format!("{uid}@{container}");
    Ok(if grant {
        Prep {
            op: i,
            method: "POST",
            url: path(cmd_add, &[(key_name, &container)])?,
            body: Some(json!({"@odata.id": a.client().object_ref(collection, &uid)})),
            dir: Direction::Add,
            container: None,
            key,
            delete: false,
            native_id: uid,
        }
    } else {
        Prep {
            op: i,
            method: "DELETE",
            url: path(cmd_remove, &[(key_name, &container), ("id", &uid)])?,
            body: None,
            dir: Direction::Remove,
            container: Some(container_path(cmd_remove, &container)?),
            key,
            delete: false,
            native_id: uid,
        }
    })
}

pub(crate) async fn apply_batch(a: &EntraAdapter, ops: &[Operation]) -> Vec<Result<Outcome>> {
    let mut results: Vec<Option<Result<Outcome>>> = (0..ops.len()).map(|_| None).collect();
    let caps = a.capabilities();
    let mut batch_idx = Vec::new();
    let mut single_idx = Vec::new();
    let mut targets: HashMap<usize, Target> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = caps.check(op) {
            results[i] = Some(Err(ctx(e, op)));
            continue;
        }
        match batchable(op) {
            Some(t) => {
                targets.insert(i, t);
                batch_idx.push(i);
            }
            None => single_idx.push(i),
        }
    }
    // Accounts first (by $batch), then the requests.
    let mut ids = resolve_users(a, ops, &batch_idx).await;
    let mut preps = Vec::new();
    for i in batch_idx {
        let op = &ops[i];
        match ids.remove(&i).expect("resolved") {
            Err(e) => results[i] = Some(Err(ctx(e, op))),
            Ok(None) => {
                results[i] = Some(match op.kind {
                    OperationKind::Grant => Err(ctx(
                        Error::not_found(format!("user `{}` does not exist", op.identity.id))
                            .set_permanent(),
                        op,
                    )),
                    OperationKind::Revoke => Ok(Outcome::no_op(NoOpReason::AlreadyAbsent)),
                    _ => Ok(Outcome::no_op(NoOpReason::AccountAbsent)),
                })
            }
            Ok(Some(uid)) => match prepare(a, op, i, &targets[&i], uid).await {
                Ok(p) => preps.push(p),
                Err(e) => results[i] = Some(Err(ctx(e, op))),
            },
        }
    }
    run_rounds(a, ops, &preps, &mut results).await;
    // Everything else needs a read first: through apply, a few at a time.
    let singles: Vec<(usize, Result<Outcome>)> = futures::stream::iter(single_idx)
        .map(|i| async move { (i, a.apply(&ops[i]).await) })
        .buffered(4)
        .collect()
        .await;
    for (i, r) in singles {
        results[i] = Some(r);
    }
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                Err(ctx(
                    Error::new(
                        ErrorKind::Unexpected,
                        "no result was recorded for this item",
                    ),
                    &ops[i],
                ))
            })
        })
        .collect()
}

async fn run_rounds(
    a: &EntraAdapter,
    ops: &[Operation],
    preps: &[Prep],
    results: &mut [Option<Result<Outcome>>],
) {
    let cfg = &a.inner.config;
    let mut pending: Vec<usize> = (0..preps.len()).collect();
    let mut round = 0u32;
    while !pending.is_empty() {
        let mut throttled: Vec<(usize, Error)> = Vec::new();
        let mut redo: Vec<usize> = Vec::new();
        let mut check404: Vec<usize> = Vec::new();
        for chunk in pending.chunks(cfg.batch_max) {
            let mut keys: Vec<&str> = chunk.iter().map(|&p| preps[p].key.as_str()).collect();
            keys.sort();
            let chain = keys.windows(2).any(|w| w[0] == w[1]);
            let reqs: Vec<InnerRequest> = chunk
                .iter()
                .enumerate()
                .map(|(n, &p)| InnerRequest {
                    id: p.to_string(),
                    method: preps[p].method,
                    url: preps[p].url.clone(),
                    body: preps[p].body.clone(),
                    depends_on: (chain && n > 0).then(|| chunk[n - 1].to_string()),
                })
                .collect();
            let map = match post_batch(a, &reqs).await {
                Ok(m) => m,
                Err(e) => {
                    for &p in chunk {
                        if e.kind() == ErrorKind::RateLimited {
                            throttled.push((p, e.clone()));
                        } else {
                            results[preps[p].op] = Some(Err(ctx(e.clone(), &ops[preps[p].op])));
                        }
                    }
                    continue;
                }
            };
            for &p in chunk {
                let prep = &preps[p];
                let op = &ops[prep.op];
                let Some(r) = map.get(&p.to_string()) else {
                    results[prep.op] = Some(Err(ctx(
                        Error::new(
                            ErrorKind::Unexpected,
                            "the $batch response has no answer for this item",
                        )
                        .set_temporary(None),
                        op,
                    )));
                    continue;
                };
                if (200..300).contains(&r.status) {
                    results[prep.op] = Some(Ok(Outcome::Applied {
                        native_id: prep.delete.then(|| prep.native_id.clone()),
                    }));
                    continue;
                }
                let g = r.error();
                match (r.status, g.no_op(prep.dir)) {
                    (429, _) => throttled.push((p, ctx(g.to_error(), op))),
                    (424, _) => redo.push(p),
                    (404, Some(_)) if prep.delete => {
                        results[prep.op] = Some(Ok(Outcome::AlreadyInState {
                            reason: NoOpReason::AccountAbsent,
                            native_id: Some(prep.native_id.clone()),
                        }));
                    }
                    (_, Some(_)) if prep.dir == Direction::Remove => check404.push(p),
                    (_, Some(reason)) => results[prep.op] = Some(Ok(Outcome::no_op(reason))),
                    _ => results[prep.op] = Some(Err(ctx(g.to_error(), op))),
                }
            }
        }
        for p in check404 {
            let prep = &preps[p];
            let op = &ops[prep.op];
            let c = prep.container.as_deref().unwrap_or_default();
            results[prep.op] = Some(match a.container_exists(c).await {
                Ok(true) => Ok(Outcome::no_op(NoOpReason::AlreadyAbsent)),
                Ok(false) => Err(ctx(
                    Error::not_found("the group or administrative unit does not exist")
                        .set_permanent(),
                    op,
                )),
                Err(e) => Err(ctx(e, op)),
            });
        }
        let mut wait = throttled
            .iter()
            .map(|(_, e)| {
                e.retry_after()
                    .unwrap_or(Duration::from_secs(1 << round.min(5)))
            })
            .max()
            .unwrap_or_default();
        if !throttled.is_empty()
            && (round >= cfg.inner_throttle_retries || wait > cfg.max_inline_wait)
        {
            // Give the wait to the caller (engine / orchestrator) instead.
            for (p, e) in throttled.drain(..) {
                results[preps[p].op] = Some(Err(e));
            }
            wait = Duration::ZERO;
        }
        if throttled.is_empty() && redo.is_empty() {
            break;
        }
        if round >= 64 {
            for p in redo.drain(..) {
                results[preps[p].op] = Some(Err(ctx(
                    Error::new(
                        ErrorKind::Conflict,
                        "not executed: a request it depended on kept failing (424)",
                    )
                    .set_temporary(None),
                    &ops[preps[p].op],
                )));
            }
            break;
        }
        if !wait.is_zero() {
            tracing::debug!(
                throttled = throttled.len(),
                wait_ms = wait.as_millis() as u64,
                "inner $batch items throttled; re-sending them alone"
            );
            tokio::time::sleep(wait).await;
        }
        pending = throttled.into_iter().map(|(p, _)| p).chain(redo).collect();
        pending.sort_unstable();
        round += 1;
    }
}

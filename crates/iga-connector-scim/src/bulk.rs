//! `apply_batch` through `/Bulk` (RFC 7644 §3.7).
//!
//! Every input is first *planned*: capability check, account/group lookups and the
//! read-before-write idempotency decision happen per item (cheap GETs), so an item
//! that is already in state or cannot be resolved gets its result immediately. The
//! rest (creates, membership PATCHes, deletes) become bulk operations, packed into
//! requests of at most `maxOperations` (and `maxPayloadSize`), each with a
//! `bulkId` that maps its per-operation status back to its input. A grant for an
//! identity created earlier in the same batch references it as `bulkId:<id>`.
//! Update/disable/enable need a GET-and-compare anyway and run one by one.

use std::collections::{HashMap, HashSet};

use iga_adapter::{AccountRef, Error, ErrorKind, NoOpReason, Outcome, ProvisioningAdapter, Result};
use iga_directive::{Operation, OperationKind};
use reqwest::Method;
use serde_json::{Value, json};

use crate::adapter::ScimAdapter;
use crate::mapping::{self, str_field};
use crate::{KIND, error};

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

struct Planned {
    input: usize,
    method: &'static str,
    path: String,
    data: Option<Value>,
    /// Native id reported on success (membership changes and deletes).
    native_id: Option<String>,
    /// bulkId of a create in this batch whose id this operation's member value needs.
    member_ref: Option<String>,
    add: bool,
}

fn bulk_id(i: usize) -> String {
    format!("op{i}")
}

fn status_of(v: &Value) -> u16 {
    match v.get("status") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(500) as u16,
        Some(Value::String(s)) => s.trim().parse().unwrap_or(500),
        _ => 500,
    }
}

fn id_from_location(v: &Value) -> Option<String> {
    let loc = v.get("location")?.as_str()?;
    loc.trim_end_matches('/')
        .rsplit('/')
        .next()
        .map(str::to_string)
}

pub(crate) async fn apply_bulk(a: &ScimAdapter, ops: &[Operation]) -> Vec<Result<Outcome>> {
    let mut results: Vec<Option<Result<Outcome>>> = (0..ops.len()).map(|_| None).collect();
    let mut planned: Vec<Planned> = Vec::new();
    // identity id → bulkId of its create in this batch
    let mut creates: HashMap<String, String> = HashMap::new();
    // (user, group, add) already planned in this batch
    let mut seen: HashSet<(String, String, bool)> = HashSet::new();
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = a.capabilities().check(op) {
            results[i] = Some(Err(e));
            continue;
        }
        match plan(a, i, op, &creates, &mut seen).await {
            Ok(Some(p)) => {
                if op.kind == OperationKind::CreateAccount {
                    creates.insert(op.identity.id.clone(), bulk_id(i));
                }
                planned.push(p);
            }
            Ok(None) => {}
            Err(r) => results[i] = Some(r),
        }
        if results[i].is_none() && !planned.iter().any(|p| p.input == i) {
            // Planned as "run alone" (update/disable/enable).
            results[i] = Some(a.apply(op).await);
        }
    }
    send_chunks(a, ops, planned, &mut results).await;
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Error::new(ErrorKind::Unexpected, "no bulk result").with_connector(KIND))
            })
        })
        .collect()
}

/// `Ok(Some)` = a bulk operation; `Ok(None)` = run alone; `Err(result)` = done.
async fn plan(
    a: &ScimAdapter,
    i: usize,
    op: &Operation,
    creates: &HashMap<String, String>,
    seen: &mut HashSet<(String, String, bool)>,
) -> std::result::Result<Option<Planned>, Result<Outcome>> {
    let ctx = |e: Error| -> Result<Outcome> {
        Err(e.with_connector(KIND).with_operation(op.kind.as_str()))
    };
    match op.kind {
        OperationKind::CreateAccount => Ok(Some(Planned {
            input: i,
            method: "POST",
            path: "/Users".into(),
            data: Some(mapping::user_resource(&op.identity)),
            native_id: None,
            member_ref: None,
            add: true,
        })),
        OperationKind::DeleteAccount => {
            let user = a
                .find_user(&AccountRef::of_operation(op))
                .await
                .map_err(ctx)?;
            let Some(id) = user.and_then(|u| str_field(&u, "id")) else {
                return Err(Ok(Outcome::no_op(NoOpReason::AccountAbsent)));
            };
            Ok(Some(Planned {
                input: i,
                method: "DELETE",
                path: format!("/Users/{id}"),
                data: None,
                native_id: Some(id),
                member_ref: None,
                add: false,
            }))
        }
        OperationKind::Grant | OperationKind::Revoke => {
            let add = op.kind == OperationKind::Grant;
            let Some(e) = op.entitlement.as_ref() else {
                return Err(ctx(Error::invalid_input(
                    "grant/revoke needs an entitlement",
                )));
            };
            let user = a
                .find_user(&AccountRef::of_operation(op))
                .await
                .map_err(ctx)?;
            let uid = user.and_then(|u| str_field(&u, "id"));
            let member_ref = match (&uid, creates.get(&op.identity.id)) {
                (None, Some(b)) if add => Some(b.clone()),
                (None, _) if !add => return Err(Ok(Outcome::no_op(NoOpReason::AlreadyAbsent))),
                (None, _) => return Err(ctx(Error::not_found("account not found"))),
                (Some(_), _) => None,
            };
            let Some((gid, group)) = a.read_group(e).await.map_err(ctx)? else {
                return Err(ctx(Error::not_found(format!("group {} not found", e.id))
                    .with_context("entitlement", &e.id)));
            };
            let key_user = uid
                .clone()
                .or_else(|| member_ref.clone())
                .unwrap_or_default();
            if let Some(u) = &uid {
                let is_member = group
                    .get("members")
                    .and_then(Value::as_array)
                    .is_some_and(|m| {
                        m.iter()
                            .any(|x| str_field(x, "value").as_deref() == Some(u))
                    });
                if is_member == add || seen.contains(&(key_user.clone(), gid.clone(), add)) {
                    let reason = if add {
                        NoOpReason::AlreadyGranted
                    } else {
                        NoOpReason::AlreadyAbsent
                    };
                    return Err(Ok(Outcome::AlreadyInState {
                        reason,
                        native_id: uid,
                    }));
                }
            }
            seen.insert((key_user, gid.clone(), add));
            let member = uid.clone().unwrap_or_default();
            Ok(Some(Planned {
                input: i,
                method: "PATCH",
                path: format!("/Groups/{gid}"),
                data: Some(ScimAdapter::membership_patch(add, &member)),
                native_id: uid,
                member_ref,
                add,
            }))
        }
        _ => Ok(None),
    }
}

async fn send_chunks(
    a: &ScimAdapter,
    ops: &[Operation],
    planned: Vec<Planned>,
    results: &mut [Option<Result<Outcome>>],
) {
    let max_ops = a.capabilities().batch_max.max(1);
    let max_payload = match a.features().bulk_max_payload {
        0 => usize::MAX,
        n => n.saturating_sub(1024).max(1024),
    };
    // bulkId → created native id, for references across requests.
    let mut created: HashMap<String, Option<String>> = HashMap::new();
    let mut queue = planned.into_iter().peekable();
    while queue.peek().is_some() {
        let mut chunk: Vec<(Planned, Value)> = Vec::new();
        let mut in_chunk: HashSet<String> = HashSet::new();
        let mut size = 256;
        while let Some(p) = queue.peek() {
            let mut data = p.data.clone();
            if let Some(r) = &p.member_ref {
                let value = if in_chunk.contains(r) {
                    Some(format!("bulkId:{r}"))
                } else {
                    created.get(r).cloned().flatten()
                };
                match value {
                    Some(v) => {
                        data = Some(ScimAdapter::membership_patch(p.add, &v));
                    }
                    None => {
                        let p = queue.next().expect("peeked");
                        results[p.input] = Some(Err(Error::not_found(
                            "account creation failed earlier in this batch",
                        )
                        .with_connector(KIND)));
                        continue;
                    }
                }
            }
            let mut item = json!({"method": p.method, "path": p.path, "bulkId": bulk_id(p.input)});
            if let Some(d) = data {
                item["data"] = d;
            }
            let item_size = item.to_string().len() + 1;
            if !chunk.is_empty() && (chunk.len() >= max_ops || size + item_size > max_payload) {
                break;
            }
            size += item_size;
            let p = queue.next().expect("peeked");
            in_chunk.insert(bulk_id(p.input));
            chunk.push((p, item));
        }
        if chunk.is_empty() {
            continue;
        }
        let body = json!({
            "schemas": [BULK_REQUEST],
            "Operations": chunk.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        });
        let resp = a.call(Method::POST, "/Bulk", &[], Some(&body)).await;
        let answers: Vec<Value> = match resp {
            Ok(r) => r
                .body
                .as_ref()
                .and_then(|b| b.get("Operations"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            Err(e) => {
                let e = e.with_operation("apply_batch");
                for (p, _) in &chunk {
                    results[p.input] = Some(Err(e.clone()));
                }
                continue;
            }
        };
        let by_id: HashMap<String, &Value> = answers
            .iter()
            .filter_map(|v| Some((str_field(v, "bulkId")?, v)))
            .collect();
        for (pos, (p, _)) in chunk.iter().enumerate() {
            let bid = bulk_id(p.input);
            let answer = by_id.get(&bid).copied().or_else(|| {
                // Servers that do not echo bulkId for non-POST answer in request order.
                answers
                    .get(pos)
                    .filter(|v| str_field(v, "bulkId").is_none())
            });
            let op = &ops[p.input];
            let r = match answer {
                None => Err(Error::new(
                    ErrorKind::Unexpected,
                    "bulk response has no result for this operation",
                )
                .with_connector(KIND)
                .set_temporary(None)),
                Some(v) => {
                    let status = status_of(v);
                    if (200..300).contains(&status) {
                        let native = if p.method == "POST" {
                            id_from_location(v)
                        } else {
                            p.native_id.clone().or_else(|| {
                                let r = p.member_ref.as_ref()?;
                                created.get(r).cloned().flatten()
                            })
                        };
                        if p.method == "POST" {
                            created.insert(bid.clone(), native.clone());
                        }
                        Ok(Outcome::Applied { native_id: native })
                    } else {
                        let resp = v.get("response");
                        let t = resp.and_then(|r| r.get("scimType")).and_then(Value::as_str);
                        let d = resp.and_then(|r| r.get("detail")).and_then(Value::as_str);
                        let e = error::classify(status, t, d);
                        if p.method == "POST" {
                            created.insert(bid.clone(), None);
                        }
                        match (p.method, status, e.kind()) {
                            ("POST", _, ErrorKind::AlreadyExists | ErrorKind::Conflict) => {
                                let linked = a.link_existing(op).await;
                                if let Ok(o) = &linked {
                                    created.insert(bid.clone(), o.native_id().map(str::to_string));
                                }
                                linked
                            }
                            ("DELETE", 404, _) => Ok(Outcome::AlreadyInState {
                                reason: NoOpReason::AccountAbsent,
                                native_id: p.native_id.clone(),
                            }),
                            _ => Err(e),
                        }
                    }
                }
            };
            results[p.input] = Some(r.map_err(|e| {
                e.with_operation(op.kind.as_str())
                    .with_context("operation_id", &op.id)
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_location_parsing() {
        assert_eq!(status_of(&json!({"status": "201"})), 201);
        assert_eq!(status_of(&json!({"status": 409})), 409);
        assert_eq!(status_of(&json!({})), 500);
        assert_eq!(
            id_from_location(&json!({"location": "http://x/v2/Users/abc"})).as_deref(),
            Some("abc")
        );
    }
}

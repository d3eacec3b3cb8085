//! Assignments, reference counting (the pure rules of `iga_ledger::logic`), history,
//! replay and ledger queries.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use iga_directive::{EntitlementKind, EntitlementRef, GrantSource};
use iga_ledger::logic::{self, Rows};
use iga_ledger::{
    AssignmentKey, AssignmentState, ChangeContext, ChangeKind, ConfirmKind, ConfirmOutcome,
    Confirmation, Decision, DecisionOutcome, LedgerChange, LedgerError, LedgerSnapshot, Result,
    SourceFlags, SourceState,
};

use crate::PgStore;
use crate::db::{exec, one, opt, read_rows, rows, ts};

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> LedgerError {
    LedgerError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

pub(crate) fn validate_key(k: &AssignmentKey) -> Result<()> {
    for (field, v) in [
        ("tenant", &k.tenant),
        ("identity", &k.identity),
        ("system", &k.system),
        ("entitlement.id", &k.entitlement.id),
    ] {
        if v.trim().is_empty() {
            return Err(invalid(field, "must not be empty in an assignment key"));
        }
    }
    Ok(())
}

fn validate_source(s: &GrantSource) -> Result<()> {
    if s.detail().trim().is_empty() {
        return Err(invalid(
            "source",
            format!("`{}` has an empty detail", s.key()),
        ));
    }
    Ok(())
}

pub(crate) async fn identity_id(
    tx: &Transaction<'_>,
    tenant: &str,
    name: &str,
    create: bool,
) -> Result<Option<i64>> {
    if let Some(r) = opt(
        tx,
        "SELECT id FROM lg_identity WHERE tenant = $1 AND name = $2",
        &[&tenant, &name],
    )
    .await?
    {
        return Ok(Some(r.get(0)));
    }
    if !create {
        return Ok(None);
    }
    if let Some(r) = opt(
        tx,
        "INSERT INTO lg_identity (tenant, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id",
        &[&tenant, &name],
    )
    .await?
    {
        return Ok(Some(r.get(0)));
    }
    let r = one(
        tx,
        "SELECT id FROM lg_identity WHERE tenant = $1 AND name = $2",
        &[&tenant, &name],
    )
    .await?;
    Ok(Some(r.get(0)))
}

pub(crate) async fn entitlement_id(
    tx: &Transaction<'_>,
    system: &str,
    e: &EntitlementRef,
    create: bool,
) -> Result<Option<i64>> {
    let kind = e.kind.to_string();
    let sel = "SELECT id FROM lg_entitlement WHERE system = $1 AND kind = $2 AND ext_id = $3";
    if let Some(r) = opt(tx, sel, &[&system, &kind, &e.id]).await? {
        return Ok(Some(r.get(0)));
    }
    if !create {
        return Ok(None);
    }
    if let Some(r) = opt(
        tx,
        "INSERT INTO lg_entitlement (system, kind, ext_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING id",
        &[&system, &kind, &e.id],
    )
    .await?
    {
        return Ok(Some(r.get(0)));
    }
    Ok(Some(one(tx, sel, &[&system, &kind, &e.id]).await?.get(0)))
}

pub(crate) async fn source_id(
    tx: &Transaction<'_>,
    key: &str,
    create: bool,
) -> Result<Option<i64>> {
    let sel = "SELECT id FROM lg_source WHERE skey = $1";
    if let Some(r) = opt(tx, sel, &[&key]).await? {
        return Ok(Some(r.get(0)));
    }
    if !create {
        return Ok(None);
    }
    if let Some(r) = opt(
        tx,
        "INSERT INTO lg_source (skey) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id",
        &[&key],
    )
    .await?
    {
        return Ok(Some(r.get(0)));
    }
    Ok(Some(one(tx, sel, &[&key]).await?.get(0)))
}

/// Serialize writers of one assignment for the rest of the transaction (the rows may
/// not exist yet, so row locks are not enough).
async fn lock_assignment(tx: &Transaction<'_>, iid: i64, eid: i64) -> Result<()> {
    let k = (iid << 32) ^ eid;
    exec(tx, "SELECT pg_advisory_xact_lock($1)", &[&k]).await?;
    Ok(())
}

pub(crate) async fn load_rows(tx: &Transaction<'_>, iid: i64, eid: i64) -> Result<Rows<i64>> {
    let rs = rows(
        tx,
        "SELECT source_id, intended, confirmed FROM lg_grant
         WHERE identity_id = $1 AND entitlement_id = $2",
        &[&iid, &eid],
    )
    .await?;
    Ok(rs
        .into_iter()
        .map(|r| {
            (
                r.get::<_, i64>(0),
                SourceFlags {
                    intended: r.get(1),
                    confirmed: r.get(2),
                },
            )
        })
        .collect())
}

async fn write_rows(
    tx: &Transaction<'_>,
    iid: i64,
    eid: i64,
    before: &Rows<i64>,
    after: &Rows<i64>,
) -> Result<()> {
    for (sid, f) in after {
        if before.get(sid) != Some(f) {
            exec(
                tx,
                "INSERT INTO lg_grant (identity_id, entitlement_id, source_id, intended, confirmed)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (identity_id, entitlement_id, source_id)
                 DO UPDATE SET intended = excluded.intended, confirmed = excluded.confirmed",
                &[&iid, &eid, sid, &f.intended, &f.confirmed],
            )
            .await?;
        }
    }
    for sid in before.keys() {
        if !after.contains_key(sid) {
            exec(
                tx,
                "DELETE FROM lg_grant
                 WHERE identity_id = $1 AND entitlement_id = $2 AND source_id = $3",
                &[&iid, &eid, sid],
            )
            .await?;
        }
    }
    Ok(())
}

async fn history(
    tx: &Transaction<'_>,
    event: &str,
    iid: i64,
    eid: i64,
    sid: Option<i64>,
    ctx: &ChangeContext,
) -> Result<()> {
    let approval = ctx
        .approval
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    exec(
        tx,
        "INSERT INTO lg_history
           (at, event, identity_id, entitlement_id, source_id, directive_id, actor, approval_json)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &ts(ctx.at),
            &event,
            &iid,
            &eid,
            &sid,
            &ctx.directive_id,
            &ctx.actor,
            &approval,
        ],
    )
    .await?;
    Ok(())
}

/// One grant or revoke inside an open transaction.
pub(crate) async fn apply_change(tx: &Transaction<'_>, ch: &LedgerChange) -> Result<Decision> {
    validate_key(&ch.key)?;
    validate_source(&ch.source)?;
    let skey = ch.source.key();
    let create = ch.kind == ChangeKind::Grant;
    let iid = identity_id(tx, &ch.key.tenant, &ch.key.identity, create).await?;
    let eid = entitlement_id(tx, &ch.key.system, &ch.key.entitlement, create).await?;
    let sid = source_id(tx, &skey, create).await?;
    let (Some(iid), Some(eid), Some(sid)) = (iid, eid, sid) else {
        let rows = match (iid, eid) {
            (Some(iid), Some(eid)) => load_rows(tx, iid, eid).await?,
            _ => Rows::new(),
        };
        return Ok(Decision {
            outcome: DecisionOutcome::RevokeNotHeld,
            intended_sources: logic::intended_count(&rows),
            confirmed_sources: logic::confirmed_count(&rows),
        });
    };
    lock_assignment(tx, iid, eid).await?;
    let before = load_rows(tx, iid, eid).await?;
    let mut rows = before.clone();
    let outcome = match ch.kind {
        ChangeKind::Grant => logic::grant(&mut rows, sid),
        ChangeKind::Revoke => logic::revoke(&mut rows, &sid),
    };
    if !outcome.is_noop() {
        write_rows(tx, iid, eid, &before, &rows).await?;
        let event = match ch.kind {
            ChangeKind::Grant => "grant",
            ChangeKind::Revoke => "revoke",
        };
        history(tx, event, iid, eid, Some(sid), &ch.ctx).await?;
    }
    Ok(Decision {
        outcome,
        intended_sources: logic::intended_count(&rows),
        confirmed_sources: logic::confirmed_count(&rows),
    })
}

/// One confirmation inside an open transaction.
pub(crate) async fn apply_confirm(
    tx: &Transaction<'_>,
    cf: &Confirmation,
) -> Result<ConfirmOutcome> {
    validate_key(&cf.key)?;
    validate_source(&cf.source)?;
    let missing = || LedgerError::Internal("interning did not create an id".into());
    let iid = identity_id(tx, &cf.key.tenant, &cf.key.identity, true)
        .await?
        .ok_or_else(missing)?;
    let eid = entitlement_id(tx, &cf.key.system, &cf.key.entitlement, true)
        .await?
        .ok_or_else(missing)?;
    let sid = source_id(tx, &cf.source.key(), true)
        .await?
        .ok_or_else(missing)?;
    lock_assignment(tx, iid, eid).await?;
    let before = load_rows(tx, iid, eid).await?;
    let mut rows = before.clone();
    let (revoke_needed, regrant_needed, event) = match cf.kind {
        ConfirmKind::Grant => (logic::confirm_grant(&mut rows, sid), false, "confirm_grant"),
        ConfirmKind::Revoke => (false, logic::confirm_revoke(&mut rows), "confirm_revoke"),
    };
    write_rows(tx, iid, eid, &before, &rows).await?;
    history(tx, event, iid, eid, Some(sid), &cf.ctx).await?;
    Ok(ConfirmOutcome {
        revoke_needed,
        regrant_needed,
        intended_sources: logic::intended_count(&rows),
        confirmed_sources: logic::confirmed_count(&rows),
    })
}

/// Bulk import of one rule inside an open transaction; whether it changed anything.
pub(crate) async fn apply_import(
    tx: &Transaction<'_>,
    key: &AssignmentKey,
    source: &GrantSource,
    batch_id: i64,
    at: i64,
    actor: Option<&str>,
) -> Result<bool> {
    let missing = || LedgerError::Internal("interning did not create an id".into());
    let iid = identity_id(tx, &key.tenant, &key.identity, true)
        .await?
        .ok_or_else(missing)?;
    let eid = entitlement_id(tx, &key.system, &key.entitlement, true)
        .await?
        .ok_or_else(missing)?;
    let sid = source_id(tx, &source.key(), true)
        .await?
        .ok_or_else(missing)?;
    lock_assignment(tx, iid, eid).await?;
    let before = load_rows(tx, iid, eid).await?;
    let mut rows = before.clone();
    if !logic::import(&mut rows, sid) {
        return Ok(false);
    }
    write_rows(tx, iid, eid, &before, &rows).await?;
    exec(
        tx,
        "INSERT INTO lg_history (at, event, identity_id, entitlement_id, source_id, batch_id, actor)
         VALUES ($1, 'import', $2, $3, $4, $5, $6)",
        &[&at, &iid, &eid, &sid, &batch_id, &actor],
    )
    .await?;
    Ok(true)
}

fn parse_source(skey: &str) -> Result<GrantSource> {
    GrantSource::parse_key(skey)
        .map_err(|e| LedgerError::Storage(format!("stored grant source `{skey}`: {e}")))
}

fn ent_ref(kind: &str, id: String) -> EntitlementRef {
    EntitlementRef::new(EntitlementKind::parse(kind), id)
}

fn count(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

pub(crate) async fn sources_of(s: &PgStore, key: &AssignmentKey) -> Result<Vec<SourceState>> {
    let c = s.conn().await?;
    let kind = key.entitlement.kind.to_string();
    let rs = read_rows(
        &c,
        "SELECT s.skey, g.intended, g.confirmed FROM lg_grant g
         JOIN lg_source s ON s.id = g.source_id
         JOIN lg_identity i ON i.id = g.identity_id
         JOIN lg_entitlement e ON e.id = g.entitlement_id
         WHERE i.tenant = $1 AND i.name = $2 AND e.system = $3 AND e.kind = $4 AND e.ext_id = $5
         ORDER BY s.skey COLLATE \"C\"",
        &[
            &key.tenant,
            &key.identity,
            &key.system,
            &kind,
            &key.entitlement.id,
        ],
    )
    .await?;
    rs.into_iter()
        .map(|r| {
            Ok(SourceState {
                source: parse_source(r.get(0))?,
                intended: r.get(1),
                confirmed: r.get(2),
            })
        })
        .collect()
}

pub(crate) async fn assignments_of_identity(
    s: &PgStore,
    tenant: &str,
    identity: &str,
) -> Result<Vec<AssignmentState>> {
    let c = s.conn().await?;
    let rs = read_rows(
        &c,
        "SELECT e.system, e.kind, e.ext_id,
                count(*) FILTER (WHERE g.intended), count(*) FILTER (WHERE g.confirmed)
         FROM lg_grant g JOIN lg_entitlement e ON e.id = g.entitlement_id
         JOIN lg_identity i ON i.id = g.identity_id
         WHERE i.tenant = $1 AND i.name = $2
         GROUP BY g.entitlement_id, e.system, e.kind, e.ext_id
         ORDER BY e.system COLLATE \"C\", e.kind COLLATE \"C\", e.ext_id COLLATE \"C\"",
        &[&tenant, &identity],
    )
    .await?;
    Ok(rs
        .into_iter()
        .map(|r| AssignmentState {
            key: AssignmentKey::new(
                tenant,
                identity,
                r.get::<_, String>(0),
                ent_ref(r.get(1), r.get(2)),
            ),
            intended_sources: count(r.get(3)),
            confirmed_sources: count(r.get(4)),
        })
        .collect())
}

pub(crate) async fn holders_of(
    s: &PgStore,
    tenant: &str,
    system: &str,
    entitlement: &EntitlementRef,
) -> Result<Vec<AssignmentState>> {
    let c = s.conn().await?;
    let kind = entitlement.kind.to_string();
    let rs = read_rows(
        &c,
        "SELECT i.name, count(*) FILTER (WHERE g.intended), count(*) FILTER (WHERE g.confirmed)
         FROM lg_grant g JOIN lg_identity i ON i.id = g.identity_id
         JOIN lg_entitlement e ON e.id = g.entitlement_id
         WHERE e.system = $1 AND e.kind = $2 AND e.ext_id = $3 AND i.tenant = $4
         GROUP BY g.identity_id, i.name ORDER BY i.name COLLATE \"C\"",
        &[&system, &kind, &entitlement.id, &tenant],
    )
    .await?;
    Ok(rs
        .into_iter()
        .map(|r| AssignmentState {
            key: AssignmentKey::new(tenant, r.get::<_, String>(0), system, entitlement.clone()),
            intended_sources: count(r.get(1)),
            confirmed_sources: count(r.get(2)),
        })
        .collect())
}

pub(crate) async fn system_assignments(
    s: &PgStore,
    tenant: &str,
    system: &str,
    only_drift: bool,
) -> Result<Vec<AssignmentState>> {
    let c = s.conn().await?;
    let rs = read_rows(
        &c,
        "SELECT i.name, e.kind, e.ext_id,
                count(*) FILTER (WHERE g.intended) AS ni, count(*) FILTER (WHERE g.confirmed) AS nc
         FROM lg_entitlement e
         JOIN lg_grant g ON g.entitlement_id = e.id
         JOIN lg_identity i ON i.id = g.identity_id
         WHERE e.system = $1 AND i.tenant = $2
         GROUP BY g.identity_id, g.entitlement_id, i.name, e.kind, e.ext_id
         HAVING NOT $3 OR ((count(*) FILTER (WHERE g.intended) > 0)
                           <> (count(*) FILTER (WHERE g.confirmed) > 0))
         ORDER BY i.name COLLATE \"C\", e.kind COLLATE \"C\", e.ext_id COLLATE \"C\"",
        &[&system, &tenant, &only_drift],
    )
    .await?;
    Ok(rs
        .into_iter()
        .map(|r| AssignmentState {
            key: AssignmentKey::new(
                tenant,
                r.get::<_, String>(0),
                system,
                ent_ref(r.get(1), r.get(2)),
            ),
            intended_sources: count(r.get(3)),
            confirmed_sources: count(r.get(4)),
        })
        .collect())
}

pub(crate) async fn snapshot(s: &PgStore) -> Result<LedgerSnapshot> {
    let c = s.conn().await?;
    let rs = read_rows(
        &c,
        "SELECT i.tenant, i.name, e.system, e.kind, e.ext_id, s.skey, g.intended, g.confirmed
         FROM lg_grant g
         JOIN lg_identity i ON i.id = g.identity_id
         JOIN lg_entitlement e ON e.id = g.entitlement_id
         JOIN lg_source s ON s.id = g.source_id",
        &[],
    )
    .await?;
    Ok(rs
        .into_iter()
        .map(|r| {
            (
                (
                    AssignmentKey::new(
                        r.get::<_, String>(0),
                        r.get::<_, String>(1),
                        r.get::<_, String>(2),
                        ent_ref(r.get(3), r.get(4)),
                    ),
                    r.get::<_, String>(5),
                ),
                SourceFlags {
                    intended: r.get(6),
                    confirmed: r.get(7),
                },
            )
        })
        .collect())
}

pub(crate) async fn replay_history(s: &PgStore) -> Result<LedgerSnapshot> {
    let c = s.conn().await?;
    let mut state: HashMap<(i64, i64), Rows<i64>> = HashMap::new();
    let rs = read_rows(
        &c,
        "SELECT event, identity_id, entitlement_id, source_id FROM lg_history ORDER BY seq",
        &[],
    )
    .await?;
    for r in rs {
        let event: String = r.get(0);
        let (iid, eid, sid): (Option<i64>, Option<i64>, Option<i64>) =
            (r.get(1), r.get(2), r.get(3));
        let bad = || LedgerError::Storage(format!("history event `{event}` is incomplete"));
        let (Some(iid), Some(eid)) = (iid, eid) else {
            return Err(bad());
        };
        let rows = state.entry((iid, eid)).or_default();
        match event.as_str() {
            "grant" => {
                logic::grant(rows, sid.ok_or_else(bad)?);
            }
            "revoke" => {
                logic::revoke(rows, &sid.ok_or_else(bad)?);
            }
            "confirm_grant" => {
                logic::confirm_grant(rows, sid.ok_or_else(bad)?);
            }
            "confirm_revoke" => {
                logic::confirm_revoke(rows);
            }
            "import" => {
                logic::import(rows, sid.ok_or_else(bad)?);
            }
            other => {
                return Err(LedgerError::Storage(format!(
                    "unknown history event `{other}`"
                )));
            }
        }
    }
    let idents: HashMap<i64, (String, String)> =
        read_rows(&c, "SELECT id, tenant, name FROM lg_identity", &[])
            .await?
            .into_iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect();
    let ents: HashMap<i64, (String, String, String)> = read_rows(
        &c,
        "SELECT id, system, kind, ext_id FROM lg_entitlement",
        &[],
    )
    .await?
    .into_iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
    .collect();
    let sources: HashMap<i64, String> = read_rows(&c, "SELECT id, skey FROM lg_source", &[])
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let missing = |what: &str, id: i64| {
        LedgerError::Storage(format!("history references unknown {what} id {id}"))
    };
    let mut out = LedgerSnapshot::new();
    for ((iid, eid), rows) in state {
        let (tenant, name) = idents.get(&iid).ok_or_else(|| missing("identity", iid))?;
        let (system, kind, ext) = ents.get(&eid).ok_or_else(|| missing("entitlement", eid))?;
        let key = AssignmentKey::new(tenant, name, system, ent_ref(kind, ext.clone()));
        for (sid, flags) in rows {
            let skey = sources.get(&sid).ok_or_else(|| missing("source", sid))?;
            out.insert((key.clone(), skey.clone()), flags);
        }
    }
    Ok(out)
}
